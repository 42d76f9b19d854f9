from tests.security.conftest import world  # noqa: F401  (the demo world, one user per role)
