"""The workflow editor: what its page (``designer/workflow.html``, ``static/workflow.js``) needs
beyond the shell. (To be built.)"""
