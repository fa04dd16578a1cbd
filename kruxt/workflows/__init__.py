"""Deterministic orchestration only: the TicketWorkflow and its routing rules.

Imports ``kruxt.models`` and temporalio; activities are referenced, never run, from here.
"""
