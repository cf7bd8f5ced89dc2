"""Named SQL queries and numbered migrations, one file per dialect.

``queries.sql`` files hold blocks headed ``-- name: NAME``; migrations are
``NNNN_description.sql`` files applied in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

_NAME = re.compile(r"^--\s*name:\s*([\w-]+)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def queries(dialect: str) -> dict[str, str]:
    """The named queries of ``dialect`` (``sqlite`` or ``postgres``)."""
    text = (files(__package__) / f"{dialect}.sql").read_text("utf-8")
    parts = _NAME.split(text)
    return {
        name: body.strip().rstrip(";") for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


@cache
def migrations(dialect: str) -> tuple[Migration, ...]:
    """The numbered migrations of ``dialect``, oldest first."""
    found = []
    for entry in (files(__package__) / dialect).iterdir():
        match = re.fullmatch(r"(\d{4})_([\w-]+)\.sql", entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    return tuple(sorted(found, key=lambda m: m.version))
