"""Thin typed clients: Postgres repositories, embedded services, settings, telemetry.

Adapters import ``kruxt.models`` and nothing else of ours.
"""
