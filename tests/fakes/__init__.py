"""Fakes of external services that speak their real protocols, for tests."""
