"""Rooms stay small as the house grows: no module outside migrations over 400 lines."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("opsconsole", "recovery", "payments", "bookings", "notifications", "tests", "bench")
LIMIT = 400


def project_modules() -> list[Path]:
    return [
        path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    ]


def test_no_module_outside_migrations_is_over_400_lines():
    modules = project_modules()
    assert len(modules) > 100  # the walk found the project
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in modules
        if (lines := len(path.read_text().splitlines())) > LIMIT
    }
    assert too_long == {}
