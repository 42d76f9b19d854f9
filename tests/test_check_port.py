"""`make run` checks its port before it prints logins for it (scripts/check-port.py): a taken
port stops the run with the command that works, a free one lets it go on."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check-port.py"


@pytest.fixture
def script(tmp_path: Path) -> Path:
    """The script in a checkout of its own, so a developer's .env does not answer for it."""
    (tmp_path / "scripts").mkdir()
    return Path(shutil.copy(SCRIPT, tmp_path / "scripts" / SCRIPT.name))


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port a server listens on, as another `make run` (or anything else) would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def check(script: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("OPSCONSOLE_HOST", "OPSCONSOLE_PORT")
    }
    return subprocess.run(
        [sys.executable, str(script)],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_taken_port_stops_the_run_and_names_a_free_one(script, taken_port):
    result = check(script, OPSCONSOLE_PORT=str(taken_port))
    assert result.returncode == 1
    message = result.stderr.strip()
    prefix = f"port {taken_port} is in use; run OPSCONSOLE_PORT="
    assert message.startswith(prefix) and message.endswith(" make run"), message
    suggested = int(message.removeprefix(prefix).removesuffix(" make run"))
    assert suggested > taken_port
    assert check(script, OPSCONSOLE_PORT=str(suggested)).returncode == 0


def test_a_free_port_lets_the_run_go_on(script):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    result = check(script, OPSCONSOLE_PORT=str(free))
    assert (result.returncode, result.stderr) == (0, "")


def test_the_port_in_env_file_is_the_one_checked_as_honcho_serves_it(script, taken_port):
    (script.parents[1] / ".env").write_text(f"SECRET_KEY=x\nOPSCONSOLE_PORT={taken_port}\n")
    result = check(script, OPSCONSOLE_PORT="1")
    assert result.returncode == 1
    assert result.stderr.startswith(f"port {taken_port} is in use")


def test_a_port_that_is_no_number_is_refused(script):
    result = check(script, OPSCONSOLE_PORT="80a")
    assert result.returncode == 2
    assert "OPSCONSOLE_PORT='80a' is not a port number" in result.stderr
