"""What starts and signals workflows: the HTTP API and the ``kruxt`` CLI.

With ``workers``, the only packages that read settings.
"""
