"""The automation editor: what its page (``designer/automation.html``, ``static/automation.js``) needs
beyond the shell. (To be built.)"""
