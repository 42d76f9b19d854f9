"""A real OpenID Connect provider for the sign-in tests: django-oauth-toolkit's OIDC in a
process of its own, on its own SQLite database (server.py starts, stops and restarts it)."""
