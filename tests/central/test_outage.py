"""A store that is unavailable for a while, and a message the store cannot take: central holds, backs off and
resumes — nothing lost, nothing duplicated, and nobody else's messages kept waiting behind a bad one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central.intake import Inbound, Intake
from central.store import CentralStore
from smileloop_core import topics
from tests.central.conftest import BACKENDS, make_store
from tests.central.test_service import Peer, message, rating, start_service
from tests.conftest import wait_for

pytestmark = pytest.mark.broker


@pytest.fixture(params=BACKENDS)
def short_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CentralStore]:
    """A store whose writes give up after 0.3 s of waiting for a lock, so a longer lock is an outage."""
    s = make_store(request.param, tmp_path)
    target, schema = s.target, getattr(s.db, "schema", None)
    s.close()
    store = CentralStore(target, schema=schema, busy_timeout=0.3)
    try:
        yield store
    finally:
        store.drop()
        store.close()


class Locker:
    """Another client holding the store's write lock (SQLite) or the ratings table (PostgreSQL)."""

    def __init__(self, store: CentralStore) -> None:
        self.other = CentralStore(store.target, schema=getattr(store.db, "schema", None))
        self._tx: Any = self.other.db.transaction()

    def __enter__(self) -> Locker:
        self._tx.__enter__()
        if self.other.db.dialect == "postgresql":
            self.other.db.execute("LOCK TABLE ratings IN ACCESS EXCLUSIVE MODE")
        else:
            self.other.db.execute("INSERT INTO rejected (received_at, topic, reason, raw) VALUES ('x','x','x','x')")
        return self

    def __exit__(self, *exc: object) -> None:
        self._tx.__exit__(RuntimeError, RuntimeError("rollback"), None)
        self.other.close()


def test_a_store_outage_holds_messages_and_loses_none(broker: Any, short_store: CentralStore) -> None:
    service = start_service(broker.url, short_store)
    peer = Peer(broker.url)
    sent: dict[str, list[str]] = {"kiosk-1": [], "kiosk-2": []}
    try:
        with Locker(short_store):
            for i in range(20):  # more than the broker's in-flight window of 20: the rest wait at the broker
                for device in sent:
                    r = rating(4, seq=i + 1)
                    sent[device].append(r["id"])
                    peer.publish(topics.ratings("store-1", device), message(device, r))
            wait_for(lambda: service.intake.outage_since is not None, 10, message="central noticing the outage")
            assert not peer.on("/kiosk-2/ack"), "a receipt before the rating was stored"
        wait_for(lambda: short_store.count("ratings") == 40, 20, message="every rating stored after the outage")
        wait_for(lambda: len({rid for r in peer.on("/kiosk-2/ack") for rid, _ in r["stored"]}) == 20, 10,
                 message="kiosk-2's receipts")
        rows = short_store.query("SELECT device_id, count(*) AS n, count(DISTINCT id) AS d FROM ratings "
                                 "GROUP BY device_id ORDER BY device_id")
        assert [(r["device_id"], r["n"], r["d"]) for r in rows] == [("kiosk-1", 20, 20), ("kiosk-2", 20, 20)]
        assert service.intake.outage_since is None and service.intake.dead == 0
    finally:
        peer.close()
        service.stop()


def test_a_message_the_store_cannot_take_is_dead_lettered_and_others_go_through(broker: Any,
                                                                                 tmp_path: Path) -> None:
    store = CentralStore(tmp_path / "central.db")
    # One message the store refuses (a trigger stands in for whatever a real store might choke on).
    store.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON ratings WHEN NEW.comment = 'refused' "
                     "BEGIN SELECT RAISE(ABORT, 'this store will not take it'); END")
    service = start_service(broker.url, store)
    peer = Peer(broker.url)
    try:
        bad = rating(1, comment="refused")
        peer.publish(topics.ratings("store-1", "kiosk-1"), message("kiosk-1", bad))
        goods = [rating(4, seq=i + 2) for i in range(5)]
        for r in goods:
            peer.publish(topics.ratings("store-1", "kiosk-2"), message("kiosk-2", r))
        wait_for(lambda: store.count("ratings") == 5, 10, message="the good ratings, past the bad one")
        [dead] = wait_for(lambda: store.query("SELECT reason FROM rejected WHERE reason LIKE 'dead letter%'"), 10,
                          message="the dead letter")
        assert "this store will not take it" in dead["reason"]
        assert not peer.on("/kiosk-1/ack"), "no receipt: the device keeps the rating and offers it again"
        # the row is written before the intake counts it and lets the message go: wait for both
        wait_for(lambda: service.intake.dead == 1 and not service.intake.pending, 10,
                 message="the intake counting its dead letter and holding nothing")
    finally:
        peer.close()
        service.stop()
        store.close()


def test_intake_backs_off_while_the_store_cannot_write_and_isolates_a_poison_message() -> None:
    now = [0.0]
    down = threading.Event()
    committed: list[str] = []
    acked: list[str] = []
    dead: list[tuple[str, str]] = []

    def commit(batch: list[Inbound]) -> Any:
        if down.is_set() or any(m.topic == "poison" for m in batch):
            raise RuntimeError("store says no")
        committed.extend(m.topic for m in batch)
        return lambda: None

    intake = Intake(commit, lambda m: acked.append(m.topic), lambda m, why: dead.append((m.topic, why)),
                    lambda: not down.is_set(), max_tries=3, retry_min=1.0, retry_max=4.0, monotonic=lambda: now[0])
    down.set()
    for t in ("a", "b"):
        intake.add(Inbound(t, b""))
    assert intake.flush() == 0 and intake.retry_at == 1.0 and acked == []
    assert intake.flush() == 0, "no retry before the backoff has passed"
    now[0] = 1.0
    assert intake.flush() == 0 and intake.retry_at == 3.0  # doubled
    down.clear()
    now[0] = 3.0
    intake.add(Inbound("poison", b""))
    intake.add(Inbound("c", b""))
    assert intake.flush() == 3 and acked == ["a", "b", "c"]  # the poison waits for its next tries
    for _ in range(2):
        now[0] = intake.retry_at
        intake.flush()
    assert dead and dead[0][0] == "poison" and "after 3 tries" in dead[0][1]
    assert acked == ["a", "b", "c", "poison"] and not intake.pending
