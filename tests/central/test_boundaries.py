"""Central's layering holds: SQL only in the store's modules, every module short enough to read at once, and
every error central raises on purpose under its one base."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from central import errors, notify

CENTRAL = Path(__file__).parents[2] / "central"
STORE = {"db.py", "schema.py"} | {p.name for p in CENTRAL.glob("store*.py")}  # the store's own modules
SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b|\.db\.|\.query\(")


def test_only_the_store_holds_sql():
    found = [f"{path.name}:{n}: {line.strip()}" for path in sorted(CENTRAL.rglob("*.py")) if path.name not in STORE
             for n, line in enumerate(path.read_text().splitlines(), 1) if SQL.search(line)]
    assert found == []


@pytest.mark.parametrize("path", sorted(CENTRAL.rglob("*.py")), ids=lambda p: p.name)
def test_every_module_stays_under_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400


def test_a_failed_delivery_is_a_central_error():
    assert notify.DeliveryFailed is errors.DeliveryFailed
    assert issubclass(errors.DeliveryFailed, errors.CentralError)
