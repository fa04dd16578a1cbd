"""KRUXT Support Autopilot.

Durable, human-approved support triage for the KRUXT app, built on Temporal.
"""
