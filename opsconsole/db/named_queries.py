"""SQL statements kept whole in .sql files, each under a `-- name: <name>` line, as
procrastinate keeps its queries: a statement reads top to bottom in one place, and the code
names it. `{placeholders}` (column lists the models decide) are filled once, on load."""

from __future__ import annotations

import re
from pathlib import Path

NAME_LINE = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load_queries(path: Path, **fill: str) -> dict[str, str]:
    """The statements in `path` by name, with `fill`'s values put in their placeholders."""
    text = path.read_text()
    parts = NAME_LINE.split(text)[1:]
    queries: dict[str, str] = {}
    for name, body in zip(parts[::2], parts[1::2], strict=True):
        # Comment lines explain the statement; they are not sent.
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        queries[name] = "\n".join(lines).strip().rstrip(";").format(**fill)
    return queries
