"""Every side effect of the workflows, as activity classes whose adapters are injected.

One concern a module; the worker registers the bound methods.
"""
