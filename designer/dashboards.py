"""The dashboard editor: what its page (``designer/dashboard.html``, ``static/dashboard.js``) needs
beyond the shell. (To be built.)"""
