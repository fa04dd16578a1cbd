"""One module per playbook: its declaration and its step activities side by side.

The catalog the router reads is ``kruxt.models.catalog``.
"""
