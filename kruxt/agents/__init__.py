"""The agents' reasoning that needs no I/O: the rules triager and the Knowledge agent's drafting.

Imports kruxt.models only.
"""
