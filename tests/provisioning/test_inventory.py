"""The inventory's plumbing: one rolled-back transaction per staff action, migrations recorded once."""

from __future__ import annotations

import sqlite3

import pytest

from provisioning.errors import InvalidInput
from provisioning.inventory import DeviceSpec, Inventory


def test_a_failed_action_leaves_nothing_behind(tmp_path):
    inv = Inventory(tmp_path / "inventory.db")
    inv.add_site("store-1")
    with pytest.raises(RuntimeError), inv._write() as c:
        c.execute("INSERT INTO locations VALUES ('store-1', 'exit', NULL, NULL)")
        raise RuntimeError("the action fails after its first write")
    assert inv.locations() == []
    inv.add_location("store-1", "exit")  # the connection is usable again: no transaction was left open
    assert [r["id"] for r in inv.locations()] == ["exit"]
    inv.close()


def test_foreign_keys_are_enforced_and_roll_back(tmp_path):
    inv = Inventory(tmp_path / "inventory.db")
    with pytest.raises(sqlite3.IntegrityError), inv._write() as c:
        c.execute("INSERT INTO sites VALUES ('s', NULL, 'UTC', NULL)")
        c.execute("INSERT INTO locations VALUES ('nowhere', 'exit', NULL, NULL)")
    assert inv.sites() == []
    inv.close()


def test_reopening_keeps_data_and_applies_no_migration_twice(tmp_path):
    inv = Inventory(tmp_path / "inventory.db")
    inv.add_site("store-1")
    inv.add_location("store-1", "exit")
    inv.create_device(DeviceSpec(site="store-1", location="exit", device_id="k1"))
    inv.close()
    again = Inventory(tmp_path / "inventory.db")
    assert again.device("k1").state == "new"
    names = [r[0] for r in again._conn.execute("SELECT name FROM _migrations")]
    assert names == ["001_inventory", "002_claim_hashes"]
    assert again._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_a_file_that_is_not_an_inventory_is_refused_clearly(tmp_path):
    bad = tmp_path / "inventory.db"
    bad.write_bytes(b"certainly not SQLite " * 200)
    with pytest.raises(InvalidInput, match="is not a smileloop inventory"):
        Inventory(bad)
