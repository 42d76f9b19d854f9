from __future__ import annotations

import pytest

from opsconsole.env import ImproperlyConfiguredEnv, database_from_url, env_bool, env_int


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


def test_worker_switches_read_the_seed_s_lowercase_variable_too(monkeypatch):
    from opsconsole.env import worker_switches

    monkeypatch.setenv("hosted_recovery_worker_enabled", "false")
    monkeypatch.setenv("DLQ_SWEEPER_ENABLED", "false")
    monkeypatch.delenv("HOSTED_RECOVERY_WORKER_ENABLED", raising=False)
    switches = worker_switches(
        "hosted_recovery_worker", "refund_retry_worker", ("dlq_sweeper", "DLQ_SWEEPER_ENABLED")
    )
    assert switches == {
        "hosted_recovery_worker": False,
        "refund_retry_worker": True,
        "dlq_sweeper": False,
    }
    monkeypatch.setenv("HOSTED_RECOVERY_WORKER_ENABLED", "true")  # the uppercase one wins
    assert worker_switches("hosted_recovery_worker") == {"hosted_recovery_worker": True}
