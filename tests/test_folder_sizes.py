"""The folder tree is the architecture: every package of the apps groups one concern, and no
folder holds more than 25 modules side by side (a folder that grows past that is two
concerns, and becomes two packages). Migrations are history, not rooms, and stay out."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The tests mirror the apps' rooms and keep to the same rule.
APPS = (
    "opsconsole",
    "recovery",
    "payments",
    "bookings",
    "notifications",
    "storefront",
    "bench",
    "tests",
)
LIMIT = 25


def code_folders() -> list[Path]:
    return [
        folder
        for app in APPS
        for folder in [ROOT / app, *(ROOT / app).rglob("*")]
        if folder.is_dir()
        and "migrations" not in folder.parts
        and "__pycache__" not in folder.parts
    ]


def test_no_folder_of_the_apps_or_their_tests_holds_more_than_25_modules():
    folders = code_folders()
    assert len(folders) > 20  # the walk found the project
    crowded = {
        str(folder.relative_to(ROOT)): count
        for folder in folders
        if (count := len(list(folder.glob("*.py")))) > LIMIT
    }
    assert crowded == {}


def test_the_platform_and_recovery_rooms_are_packages_by_concern():
    opsconsole = {path.stem for path in (ROOT / "opsconsole").glob("*.py")}
    assert opsconsole <= {
        "__init__",
        "apps",
        "demo_world",
        "env",
        "models",
        "settings",
        "tasks",
        "urls",
        "wsgi",
    }
    recovery = {path.stem for path in (ROOT / "recovery").glob("*.py")}
    assert recovery <= {"__init__", "apps", "errors", "failures", "tasks", "workers"}
