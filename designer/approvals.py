"""The approval editor: what its page (``designer/approval.html``, ``static/approval.js``) needs
beyond the shell. (To be built.)"""
