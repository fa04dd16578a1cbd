"""The HTTP API (FastAPI): intake, ticket reads, health.

``create_app`` takes its dependencies; ``kruxt api`` builds them from settings.
"""
