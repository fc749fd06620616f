"""Strict input checks shared by the seed envs: CSV reading where every error names the file
and the row, and range checks of constructor arguments naming the argument.

Rows are counted as lines of the file, the header being row 1, so an editor's line
number points straight at the offending row.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path


class CsvDataError(ValueError):
    """A CSV file that cannot be used; the message starts with ``<file>: row <n>:``."""

    def __init__(self, path: str | Path, row: int | None, message: str):
        self.path = str(path)
        self.row = row
        where = f"{self.path}: row {row}" if row is not None else self.path
        super().__init__(f"{where}: {message}")


def check_ranges(owner: str, checks: Sequence[tuple[str, object, float, float]]) -> None:
    """Refuse an argument outside its documented range: ValueError "owner: name=value: expected low..high"
    (NaN, infinities and non-numbers included)."""
    for name, value, low, high in checks:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not (ok and low <= value <= high):
            raise ValueError(f"{owner}: {name}={value!r}: expected a number within {low:g}..{high:g}")


def read_rows(path: str | Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(row_number, {column: text})`` for each data row, checking the header."""
    path = Path(path)
    if not path.is_file():
        raise CsvDataError(path, None, "no such file")
    try:
        yield from _read_rows(path, columns)
    except UnicodeDecodeError as exc:
        raise CsvDataError(path, None, f"not UTF-8 text (byte {exc.start}); save the CSV as UTF-8") from None


def _read_rows(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in columns if c not in header]
        if missing:
            raise CsvDataError(path, 1, f"missing column(s) {missing}; header is {header}")
        reader.fieldnames = header
        for row in reader:
            line = reader.line_num
            if all(not (v or "").strip() for k, v in row.items() if k is not None):
                continue  # blank line
            values = {}
            for c in columns:
                text = (row.get(c) or "").strip()
                if not text:
                    raise CsvDataError(path, line, f"empty value in column '{c}'")
                values[c] = text
            yield line, values


def parse_number(path: str | Path, row: int, column: str, text: str) -> float:
    """A finite float, or a CsvDataError naming the row."""
    try:
        value = float(text)
    except ValueError:
        raise CsvDataError(path, row, f"bad number {text!r} in column '{column}'") from None
    if not math.isfinite(value):
        raise CsvDataError(path, row, f"non-finite number {text!r} in column '{column}'")
    return value


def parse_time(path: str | Path, row: int, column: str, text: str, fmt: str | None = None) -> datetime:
    """An ISO 8601 date or date-time (or ``fmt``, a strptime format), or a CsvDataError naming the row."""
    try:
        value = datetime.fromisoformat(text) if fmt is None else datetime.strptime(text, fmt)
    except ValueError:
        want = "ISO 8601" if fmt is None else f"format {fmt!r}"
        raise CsvDataError(path, row, f"bad date/time {text!r} in column '{column}' (want {want})") from None
    if value.tzinfo is not None:  # compare everything as naive UTC
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value
