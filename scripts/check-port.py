#!/usr/bin/env python3
"""Before `make run` starts the web server: is OPSCONSOLE_HOST:OPSCONSOLE_PORT free?

gunicorn dies on a taken port after the demo login has been printed for it, so make run
asks first. A taken port stops the run (exit 1) with the command that would work, naming
the next free port: the console never moves to a port nobody asked for.

It reads OPSCONSOLE_HOST and OPSCONSOLE_PORT as honcho hands them to the Procfile: from
.env when set there, else from the environment.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

DEFAULT_PORT = 8000
TRIES = 50


def setting(name: str, env_file: Path) -> str:
    """honcho's precedence: a value in .env wins over the environment's."""
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            key, sep, value = line.strip().removeprefix("export ").partition("=")
            if sep and key.strip() == name:
                return value.strip().strip("'\"")
    return os.environ.get(name, "")


def port_is_free(host: str, port: int) -> bool:
    """Free when we can bind it as gunicorn would (SO_REUSEADDR, so a port left in
    TIME_WAIT by a stopped server counts as free, as it does for gunicorn)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def next_free_port(host: str, port: int) -> int | None:
    return next(
        (p for p in range(port + 1, min(port + 1 + TRIES, 65536)) if port_is_free(host, p)),
        None,
    )


def main() -> int:
    env_file = Path(__file__).resolve().parent.parent / ".env"
    host = setting("OPSCONSOLE_HOST", env_file) or "127.0.0.1"
    raw = setting("OPSCONSOLE_PORT", env_file) or str(DEFAULT_PORT)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        print(f"OPSCONSOLE_PORT={raw!r} is not a port number (1-65535)", file=sys.stderr)
        return 2
    port = int(raw)
    if port_is_free(host, port):
        return 0
    free = next_free_port(host, port)
    hint = f"; run OPSCONSOLE_PORT={free} make run" if free else ""
    print(f"port {port} is in use{hint}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
