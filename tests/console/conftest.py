"""Console test helpers: an app over a store (SQLite, or PostgreSQL in its own schema), users of each role, and
a logged-in client that sends the CSRF token the way the pages do."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from central.accounts import Accounts
from central.console import create_app
from central.org_admin import OrgAdmin
from central.store import CentralStore
from smileloop_core.clock import FakeClock
from tests.central.conftest import BACKENDS, ORG, TUESDAY_10, make_store

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Client(TestClient):
    """A TestClient that remembers its session's CSRF token (``csrf``) and sends it with every change."""

    csrf: str = ""

    def act(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        """A form post as the page makes it (with ``csrf_token``)."""
        return self.post(path, data={**(data or {}), "csrf_token": self.csrf}, **kw)


def login(app: Any, name: str, password: str = PASSWORD) -> Client:
    c = Client(app, follow_redirects=False)
    page = c.get("/login")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    r = c.post("/login", data={"username": name, "password": password, "csrf_token": token, "next": "/alerts"})
    assert r.status_code == 303, r.text
    c.csrf = CSRF.search(c.get("/alerts").text).group(1)  # type: ignore[union-attr]
    return c


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its real cost takes ~0.5 s a hash on the test machine's two cores: tests use a cheap one
    (test_security checks the real parameters)."""
    from argon2 import PasswordHasher

    import central.accounts

    monkeypatch.setattr(central.accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(TUESDAY_10)


def _setup(store: CentralStore, clock: FakeClock) -> CentralStore:
    OrgAdmin(store, "test", clock=clock).replace(ORG)
    accounts = Accounts(store, clock=clock)
    accounts.add_user("admin", "admin", PASSWORD)
    accounts.add_user("anna", "manager", PASSWORD, sites=("store-1",))
    accounts.add_user("bo", "manager", PASSWORD, sites=("store-2",))
    accounts.add_user("vera", "viewer", PASSWORD, sites=("store-1",))
    return store


@pytest.fixture
def console_store(tmp_path: Path, clock: FakeClock) -> Iterator[CentralStore]:
    """A SQLite store with the test org and users admin, anna (manager of store-1), bo (manager of store-2),
    vera (viewer of store-1); all with the password ``PASSWORD``."""
    store = _setup(make_store("sqlite", tmp_path), clock)
    yield store
    store.close()


@pytest.fixture(params=BACKENDS)
def any_console_store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[CentralStore]:
    """:func:`console_store` on SQLite and on PostgreSQL."""
    store = _setup(make_store(request.param, tmp_path), clock)
    try:
        yield store
    finally:
        store.drop()
        store.close()


@pytest.fixture
def app(console_store: CentralStore, clock: FakeClock) -> Any:
    return create_app(console_store, clock=clock, secure_cookies=False)


@pytest.fixture
def as_user(app: Any) -> Callable[[str], Client]:
    """``as_user("anna")``: a client logged in as that user."""
    clients: list[Client] = []

    def make(name: str) -> Client:
        clients.append(login(app, name))
        return clients[-1]

    yield make  # type: ignore[misc]
    for c in clients:
        c.close()
