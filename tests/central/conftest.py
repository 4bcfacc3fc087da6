"""Central test helpers: a store on SQLite or PostgreSQL (own schema per test), ratings, an org tree."""

from __future__ import annotations

import functools
import json
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from central.ingest import IncomingRating
from central.org import Org
from central.rules import RuleBook
from central.store import CentralStore
from smileloop_core.clock import FakeClock
from smileloop_core.scales import get_scale

PG_URL = os.environ.get("SMILELOOP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
TUESDAY_10 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # 11:00 in Stockholm, a Tuesday

ORG: dict[str, Any] = {
    "name": "Acme",
    "contacts": [{"name": "cx-team", "urls": ["json://127.0.0.1:9/cx"]}],
    "sites": {
        "store-1": {
            "name": "Store 1",
            "hours": {"timezone": "Europe/Stockholm", "mon": "08:00-20:00", "tue": "08:00-20:00",
                      "wed": "08:00-20:00", "thu": "08:00-20:00", "fri": "08:00-20:00", "sat": "10:00-16:00",
                      "sun": "closed"},
            "contacts": [{"name": "site-manager", "urls": ["json://127.0.0.1:9/manager"]}],
            "locations": {
                "exit": {"devices": ["kiosk-1"], "contacts": [{"name": "exit-lead", "urls": ["json://127.0.0.1:9/lead"]}]},
                "cafe": {"devices": ["kiosk-2"]},
            },
        },
        "store-2": {"hours": {"timezone": "UTC"}},
    },
}


@functools.cache
def pg_problem() -> str | None:
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
        return None
    except Exception as e:
        return str(e).strip().splitlines()[0]


def make_store(backend: str, tmp_path: Path) -> CentralStore:
    """A store on SQLite, or in a fresh schema of PostgreSQL. Without a reachable PostgreSQL its tests are
    skipped with the reason, unless SMILELOOP_REQUIRE_POSTGRES=1 (as on the project's test machine) fails them."""
    if backend == "postgres":
        problem = pg_problem()
        if problem:
            message = f"PostgreSQL not reachable at {PG_URL}: {problem}"
            if os.environ.get("SMILELOOP_REQUIRE_POSTGRES") == "1":
                pytest.fail(message)
            pytest.skip(message)
        return CentralStore(PG_URL, schema=f"t_{uuid.uuid4().hex[:16]}")
    return CentralStore(tmp_path / "central.db")


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CentralStore]:
    """Every store-backed test runs on SQLite and on PostgreSQL (its own schema, dropped afterwards)."""
    s = make_store(request.param, tmp_path)
    try:
        yield s
    finally:
        s.drop()
        s.close()


@pytest.fixture
def any_store(store: CentralStore) -> CentralStore:
    return store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(TUESDAY_10)


@pytest.fixture
def org() -> Org:
    return Org.from_dict(json.loads(json.dumps(ORG)))


@pytest.fixture
def book() -> RuleBook:
    return RuleBook()


def rating(value: int = 1, *, ts: datetime, location: str = "exit", scale: str = "smiley4", seq: int = 1,
           reason: str | None = None, comment: str | None = None, flags: tuple[str, ...] = (),
           contact: str | None = None,
           rid: str | None = None, rev: int = 0, boot: str | None = None, mono: float | None = None) -> IncomingRating:
    return IncomingRating(id=rid or str(uuid.uuid4()), seq=seq, ts=ts, scale=scale, value=value,
                          sentiment=get_scale(scale).sentiment(value), location=location, reason=reason,
                          comment=comment, contact=contact, flags=flags, boot_id=boot, mono=mono, rev=rev)


class Receiver:
    """A local HTTP endpoint for apprise ``json://`` deliveries; ``fail`` makes the next N requests answer 500."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.fail > 0:
                    receiver.fail -= 1
                    self.send_response(500)
                else:
                    receiver.requests.append({"path": self.path, "body": json.loads(body or b"{}")})
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()
