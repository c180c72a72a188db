"""The view editor: what its page (``designer/view.html``, ``static/view.js``) needs
beyond the shell. (To be built.)"""
