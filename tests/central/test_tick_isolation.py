"""The periodic tick never dies of one bad row: each item is handled on its own, logged and skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from central.store import CentralStore
from tests.central.test_service import Peer, start_service
from tests.conftest import wait_for

pytestmark = pytest.mark.broker


def test_an_outcome_for_a_wildcard_location_cannot_stop_the_others(broker: Any, tmp_path: Any,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    store = CentralStore(tmp_path / "central.db")
    now = datetime.now(UTC)
    # A row written before ids were strict (or by hand): its topic would be a wildcard, which paho refuses.
    store.add_outcome("a-1", "store-1", "exit/#", {"en": "We did"}, now)
    store.add_outcome("a-2", "store-1", "cafe", {"en": "We cleaned the tables"}, now)
    service = start_service(broker.url, store)
    peer = Peer(broker.url)
    try:
        for _ in range(2):  # and again: the bad one stays bad, the tick goes on
            service.tick(now, silence=False)
        got = wait_for(lambda: peer.on("/outcomes/cafe"), 10, message="the good location's outcomes")
        assert got[0]["items"][0]["text"] == {"en": "We cleaned the tables"}
        assert "outcomes of store-1/exit/#" in caplog.text
    finally:
        peer.close()
        service.stop()
        store.close()
