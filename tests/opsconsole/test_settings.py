from __future__ import annotations

import pytest

from opsconsole.settings import ImproperlyConfiguredEnv, database_from_url, env_bool, env_int


@pytest.mark.smoke
def test_it_fails_loudly_on_malformed_environment_values(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")
    monkeypatch.setenv("SOME_NUMBER", "ten")
    with pytest.raises(ImproperlyConfiguredEnv):
        env_bool("SOME_FLAG", False)
    with pytest.raises(ImproperlyConfiguredEnv):
        env_int("SOME_NUMBER", 1)


@pytest.mark.smoke
def test_it_parses_a_postgres_database_url():
    config = database_from_url("postgres://ops:s%40cret@db.local:6543/console")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == ("console", "ops", "s@cret")
    assert (config["HOST"], config["PORT"]) == ("db.local", "6543")


def test_it_refuses_an_unknown_database_scheme():
    with pytest.raises(ImproperlyConfiguredEnv):
        database_from_url("mysql://x@y/z")
