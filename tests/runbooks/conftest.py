"""The runbook walks share the browser and page fixtures of tests/conftest.py."""
