from __future__ import annotations

import csv
import io

import pytest

from opsconsole.evidence.csv_export import SafeCsvWriter, safe_cell


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("value", "exported"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+351910000002", "'+351910000002"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("plain", "plain"),
        (42, 42),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_exported_as_text(value, exported):
    assert safe_cell(value) == exported


@pytest.mark.smoke
def test_the_writer_escapes_every_cell():
    out = io.StringIO()
    SafeCsvWriter(out).writerow(["=1+1", "ok", "@me"])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == ["'=1+1", "ok", "'@me"]
