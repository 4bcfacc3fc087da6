"""The live stream over a real HTTP server: a new alert reaches a logged-in page within a second, only in the
user's sites, and a changed one is sent again; without a login the stream answers 401."""

from __future__ import annotations

import json
import queue
import threading
import time

import httpx
import pytest
import uvicorn

from smileloop_core.mosquitto import reserve_port
from tests.console.test_alert_pages import open_alert


@pytest.fixture
def served(app):
    reservation = reserve_port()
    port = reservation.port
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    reservation.release()


def follow(base: str, token: str, events: queue.Queue, stop: threading.Event) -> None:
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c, \
                c.stream("GET", "/alerts/stream") as r:
            events.put(("status", r.status_code))
            kind = None
            for line in r.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "alert":
                    events.put(("alert", json.loads(line[6:])))
    except httpx.HTTPError:  # the server stopping at the end of the test ends the stream
        return


def next_alert(events: queue.Queue, seconds: float) -> dict | None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            kind, value = events.get(timeout=left)
        except queue.Empty:
            return None
        if kind == "alert":
            return value
    return None


def test_a_new_alert_reaches_the_stream_of_its_sites_only(console_store, clock, served):
    from central import lifecycle
    from central.accounts import Accounts

    accounts = Accounts(console_store, clock=clock)
    events: dict[str, queue.Queue] = {"anna": queue.Queue(), "bo": queue.Queue()}
    stop = threading.Event()
    for name, q in events.items():
        threading.Thread(target=follow, args=(served, accounts.new_token(name), q, stop), daemon=True).start()
        assert q.get(timeout=10) == ("status", 200)
    try:
        started = time.monotonic()
        mine = open_alert(console_store, clock, site="store-1")
        got = next_alert(events["anna"], 5)
        assert got is not None and got["id"] == mine and "Long queue at exit" in got["html"]
        assert time.monotonic() - started < 5
        assert mine in got["html"]
        lifecycle.acknowledge(console_store, mine, "anna", clock.now())
        again = next_alert(events["anna"], 5)
        assert again is not None and again["id"] == mine and "acknowledged" in again["html"]
        open_alert(console_store, clock, site="store-2", key="other")
        theirs = next_alert(events["bo"], 5)
        assert theirs is not None and theirs["id"] != mine
        assert next_alert(events["bo"], 0.2) is None and next_alert(events["anna"], 1.0) is None
    finally:
        stop.set()


def test_the_stream_needs_a_login(served):
    r = httpx.get(f"{served}/alerts/stream", timeout=5)
    assert r.status_code == 401 and r.json()["error"]
