"""The contracts: pydantic models and enums that cross process and workflow boundaries.

Nothing here performs I/O or imports other ``kruxt`` packages.
"""
