"""CSV exports that a spreadsheet cannot execute.

A cell that begins with `=`, `+`, `-` or `@` (or a tab or carriage return) is read as a
formula by Excel and LibreOffice: a campaign name or an error text chosen by a customer
could run on a staff member's machine. Such cells get a leading apostrophe (OWASP's advice),
which spreadsheets show as text.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class SafeCsvWriter:
    def __init__(self, handle: Any) -> None:
        self._writer = csv.writer(handle)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell(cell) for cell in row])
