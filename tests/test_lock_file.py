"""The lock file `make` installs from holds every pin of pyproject.toml, with hashes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_pin_is_locked_at_its_version_with_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    wanted = {}
    for pin in pins:
        name, _, version = pin.partition("==")
        assert version, f"{pin} is not pinned"
        wanted[normalized(name.split("[")[0])] = version
    lock = (ROOT / "requirements.lock").read_text()
    locked = {
        normalized(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+) \\$", lock, re.M)
    }
    assert {name: locked.get(name) for name in wanted} == wanted
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 2)[2])
    assert all("--hash=sha256:" in entry for entry in entries if "==" in entry)
