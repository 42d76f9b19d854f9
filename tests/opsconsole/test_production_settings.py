"""Production settings refuse to start on a dangerous configuration, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start_django(**overrides: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        {"OPSCONSOLE_READ_ENV_FILE": "false", "DJANGO_SETTINGS_MODULE": "opsconsole.settings"}
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.smoke
def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    result = start_django(SECRET_KEY=None, DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "started" not in result.stdout


def test_it_starts_without_a_secret_key_only_in_debug():
    result = start_django(SECRET_KEY=None, DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_it_refuses_a_stripe_tolerance_of_zero():
    result = start_django(STRIPE_WEBHOOK_TOLERANCE_SECONDS="0")
    assert result.returncode != 0
    assert "STRIPE_WEBHOOK_TOLERANCE_SECONDS" in result.stderr


def test_it_starts_with_a_real_key_and_debug_off():
    result = start_django(SECRET_KEY="x" * 60, DEBUG="false")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("key", ["dev-only-insecure-secret-key-change-me", "short-key"])
def test_it_refuses_a_public_or_short_secret_key(key):
    result = start_django(SECRET_KEY=key, DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY is a public or short value" in result.stderr
