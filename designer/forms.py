"""The form editor: what its page (``designer/form.html``, ``static/form.js``) needs
beyond the shell. (To be built.)"""
