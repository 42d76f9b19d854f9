"""Shared set-up for the benchmarks: a fresh PostgreSQL database next to the test one.

Run through `make bench`, which starts the private cluster (scripts/with-postgres.sh).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def setup(name: str) -> None:
    """Create (or recreate) database `opsconsole_bench_<name>`, point Django at it, migrate."""
    import psycopg

    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        raise SystemExit("benchmarks run on PostgreSQL: use `make bench`")
    parts = urlsplit(base)
    database = f"opsconsole_bench_{name}"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{database}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Benchmarks run with DEBUG off, so they need a key, and call the local stand-in endpoint.
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-7d1e0c9b3a5f2e8d6c4b0a9f1e3d5c7b")
    os.environ.setdefault("OUTBOUND_ALLOWED_HOSTS", "127.0.0.1,localhost")
    os.environ.setdefault("METRICS_BEARER_TOKEN", "bench-metrics-token")
    # The benchmarks measure the console, not providers: the sandbox stands in for them.
    os.environ.setdefault("PROVIDERS_SANDBOX", "true")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started
