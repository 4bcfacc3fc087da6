"""Every page of the console in headless Chromium, on a store full of realistic demo data, saved as full-page PNGs.

The data go in through the store's own ingest path (``store_ratings`` with the real ``negative_rating`` rule, so
alerts are what central would open), the lifecycle functions (acknowledge, assign, resolve, reopen) and the SLA's
escalation, each with its audit entry; device statuses as central keeps them, one kiosk silent, one offline, one
never heard from. Three sites, thirty days, test taps and repeat presses among the visitors.

Each page must answer 200 and log no console error or page error (a CSP violation is a console error). With
``SMILELOOP_SCREENSHOTS=1`` (``make screenshots``) the PNGs go to ``docs/console/``; otherwise to the test's
temporary folder, so an ordinary run checks the pages without touching the repository.
"""

from __future__ import annotations

import json
import os
import random
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from central import lifecycle
from central.accounts import Accounts
from central.console import create_app
from central.ingest import IncomingRating
from central.org_admin import OrgAdmin
from central.rules import negative_rating
from central.sla import escalate
from central.store import CentralStore
from smileloop_core.clock import FakeClock
from smileloop_core.mosquitto import reserve_port
from smileloop_core.scales import get_scale
from tests.conftest import wait_for
from tests.console.live import PASSWORD, Browser, log_in, urlpath

pytestmark = pytest.mark.slow

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday, 11:00 in Stockholm
DOCS = Path(__file__).resolve().parents[2] / "docs" / "console"
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 800}
ORG: dict[str, Any] = {
    "name": "Acme Retail",
    "sites": {
        "store-042": {"name": "Stockholm City", "timezone": "Europe/Stockholm",
                      "hours": {"timezone": "Europe/Stockholm", "mon": "08:00-20:00", "tue": "08:00-20:00",
                                "wed": "08:00-20:00", "thu": "08:00-20:00", "fri": "08:00-20:00",
                                "sat": "10:00-17:00", "sun": "closed"},
                      "locations": {"exit-north": {"devices": ["kiosk-042-1"]},
                                    "checkout": {"devices": ["kiosk-042-2"]},
                                    "cafe": {"devices": ["kiosk-042-3"]}}},
        "store-017": {"name": "Göteborg Nordstan", "timezone": "Europe/Stockholm",
                      "locations": {"entrance": {"devices": ["kiosk-017-1"]},
                                    "fitting-rooms": {"devices": ["kiosk-017-2"]}}},
        "store-101": {"name": "London Oxford St", "timezone": "Europe/London",
                      "locations": {"entrance": {"devices": ["kiosk-101-1", "kiosk-101-2"]}}},
    },
}
SCALE_OF = {"cafe": "nps", "checkout": "csat5"}  # smiley4 elsewhere
VALUES = {"smiley4": (7, 10, 35, 48), "csat5": (4, 7, 15, 34, 40), "nps": (2, 1, 1, 2, 2, 4, 6, 12, 20, 25, 25)}
REASONS = ("waiting_time", "staff", "cleanliness", "price", "stock")
COMMENTS = ("The queue was far too long", "Nobody at the till", "Lovely staff!", "Toilets need cleaning",
            "Could not find my size")


def build_demo(store: CentralStore, now: datetime = NOW, seed: int = 14) -> None:
    """Org, users, 30 days of ratings and the alerts they raise, worked by people; fleet statuses."""
    rng = random.Random(seed)
    clock = FakeClock(now - timedelta(days=31))
    OrgAdmin(store, "setup", clock=clock).replace(ORG)
    accounts = Accounts(store, clock=clock)
    accounts.add_user("admin", "admin", PASSWORD)
    accounts.add_user("anna", "manager", PASSWORD, sites=("store-042",))
    accounts.add_user("erik", "manager", PASSWORD, sites=("store-042", "store-017"))
    accounts.add_user("olivia", "viewer", PASSWORD, sites=("store-101",), language="en")
    devices = [(site, loc, dev) for site, s in ORG["sites"].items() for loc, place in s["locations"].items()
               for dev in place["devices"]]
    seqs: dict[str, int] = {}
    for day in range(30, -1, -1):
        date = (now - timedelta(days=day)).date()
        for site, location, device in devices:
            tz = ZoneInfo(ORG["sites"][site]["timezone"])
            scale = SCALE_OF.get(location, "smiley4")
            batch: list[IncomingRating] = []
            for hour in range(9, 20):
                opened = datetime(date.year, date.month, date.day, hour, tzinfo=tz).astimezone(UTC)
                if opened > now:
                    break
                for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
                    ts = opened + timedelta(minutes=rng.randrange(60))
                    if ts > now:
                        continue
                    value = rng.choices(range(len(VALUES[scale])), VALUES[scale])[0] + get_scale(scale).low
                    sentiment = get_scale(scale).sentiment(value)
                    flags: tuple[str, ...] = ()
                    if rng.random() < 0.03:
                        flags = ("test",)
                    elif rng.random() < 0.04:
                        flags = ("repeat",)
                    seqs[device] = seqs.get(device, 0) + 1
                    batch.append(IncomingRating(
                        id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), seq=seqs[device], ts=ts,
                        scale=scale, value=value, sentiment=sentiment, location=location,
                        reason=rng.choice(REASONS) if sentiment == "negative" and rng.random() < 0.7 else None,
                        comment=rng.choice(COMMENTS) if rng.random() < 0.04 else None, contact=None, flags=flags,
                        boot_id=None, mono=None, rev=0))
                if len(batch) >= 6 or hour == 19:
                    if batch:
                        store.store_ratings(site, device, batch, max(r.ts for r in batch) + timedelta(seconds=5),
                                            rule=negative_rating, cooldown=1800)
                    batch = []
    _work_the_alerts(store, rng, now)
    _statuses(store, now)


def _work_the_alerts(store: CentralStore, rng: random.Random, now: datetime) -> None:
    """Old alerts resolved (a few reopened), recent ones acknowledged, assigned, escalated or still open."""
    people = {"store-042": ["anna", "erik"], "store-017": ["erik"], "store-101": ["admin"]}
    causes = [("one till open at lunch", "We opened a second till at lunch"),
              ("bins not emptied", "Bins are emptied every hour now"),
              ("new staff unsure", "Team lead does a daily check-in"),
              ("sizes out of stock", "Restocking before opening")]
    alerts = sorted(store.query("SELECT id, site, opened_at, parent_id FROM alerts"), key=lambda a: a["opened_at"])
    for i, a in enumerate(alerts):
        if store.alert(a["id"])["state"] != "open":  # resolved with the alert it is grouped under
            continue
        opened = datetime.fromisoformat(a["opened_at"].replace("Z", "+00:00"))
        age = now - opened
        who = rng.choice(people[a["site"]])
        if age > timedelta(days=2) or (age > timedelta(hours=6) and i % 3 == 0):
            lifecycle.acknowledge(store, a["id"], who, opened + timedelta(minutes=rng.randrange(3, 40)))
            cause, action = rng.choice(causes)
            lifecycle.resolve(store, a["id"], who, cause, action, opened + timedelta(hours=rng.randrange(1, 6)),
                              publish=False)
            if i % 17 == 0 and age < timedelta(days=10):
                lifecycle.reopen(store, a["id"], "admin", "it happened again the same day",
                                 opened + timedelta(hours=7))
        elif i % 4 == 1:
            lifecycle.acknowledge(store, a["id"], who, opened + timedelta(minutes=12), "on my way")
        elif i % 4 == 2:
            lifecycle.assign(store, a["id"], "admin", who, opened + timedelta(minutes=5))
    live = [store.alert(x["id"]) for x in alerts[-8:]]
    for alert in [x for x in live if x["state"] == "open"][:2]:
        escalate(store, alert, now - timedelta(minutes=20), 1200)


def _statuses(store: CentralStore, now: datetime) -> None:
    """Every kiosk online and heard a minute ago, except: one silent (says online, heard 3 h ago), one offline
    (its last will), one never heard from (kiosk-101-2)."""
    for site, s in ORG["sites"].items():
        for location, place in s["locations"].items():
            for i, device in enumerate(place["devices"]):
                if device == "kiosk-101-2":
                    continue
                state, heard = "online", now - timedelta(minutes=1)
                if device == "kiosk-017-2":
                    heard = now - timedelta(hours=3)
                if device == "kiosk-042-3":
                    state, heard = "offline", now - timedelta(minutes=40)
                body = {"v": 1, "state": state, "device": device, "site": site, "location": location,
                        "ts": heard.isoformat().replace("+00:00", "Z"), "backlog": 0 if state == "online" else 12,
                        "oldest_unsent": None, "disk_free_mb": 5120.4 - 300 * i, "version": "0.1.0",
                        "clock_offset": -0.2 * (i + 1), "config_version": 2,
                        "config": {"version": 2, "state": "applied", "reason": None}}
                store.upsert_status(site, device, body, json.dumps(body), heard)


class Served:
    """The console app over a store, served by uvicorn on a free loopback port in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self._reservation = reserve_port()
        self.url = f"http://127.0.0.1:{self._reservation.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self._reservation.port,
                                                    log_level="warning", timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, name="console", daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 20, message="uvicorn serving the console")
        self._reservation.release()

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        assert not self.thread.is_alive(), "uvicorn did not stop"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    store = CentralStore(tmp_path_factory.mktemp("screens") / "central.db")
    build_demo(store)
    served = Served(create_app(store, clock=FakeClock(NOW), secure_cookies=False))
    try:
        yield served
    finally:
        served.close()
        store.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("SMILELOOP_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        return DOCS
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()


def settle(page: Any) -> None:
    """Fonts loaded and every chart drawn and done animating (when the page has charts)."""
    page.wait_for_function("document.fonts.status === 'loaded'")
    page.wait_for_function("""() => [...document.querySelectorAll('canvas[data-chart]')].every(c => c.chart &&
        !(window.Chart && window.Chart.animator && window.Chart.animator.running(c.chart)))""", timeout=10_000)


def shoot(page: Any, path: str, out: Path | None, name: str) -> None:
    """Open ``path`` (it must answer 200 and stay there), let it settle, save it as ``out/name.png``."""
    response = page.goto(path)
    assert response is not None and response.status == 200, f"{path}: {response and response.status}"
    assert urlpath(page.url) == urlpath(path), f"{path} went to {page.url}"
    settle(page)
    if out is not None:
        page.screenshot(path=str(out / f"{name}.png"), full_page=True)


def wider_than_the_window(page: Any) -> int:
    """CSS pixels the page is wider than the viewport it was given (a phone scrolls sideways by that much)."""
    return int(page.evaluate("document.documentElement.scrollWidth")) - int(page.viewport_size["width"])


def phone(browser: Browser, demo: Served, user: str) -> Any:
    page = browser.page(demo.url, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    log_in(page, user)
    return page


def nav_links(page: Any) -> list[str]:
    nav = page.eval_on_selector_all("header nav a", "links => links.map(a => a.getAttribute('href'))")
    assert {"/alerts", "/dashboard", "/fleet", "/org"} <= set(nav), nav
    return list(nav)


def richest_alert(page: Any, site: str | None = None) -> str:
    """The listed alert with the longest timeline (of ``site``, if given)."""
    page.goto("/alerts")
    rows = page.eval_on_selector_all("#alert-rows tr.alert-row", "rows => rows.map(r => r.dataset.id)")
    assert len(rows) >= 5, "the demo data should fill the list"
    found = [page.request.get(f"/api/alerts/{i}").json() for i in rows]
    return str(max((a for a in found if site in (None, a["site"])), key=lambda a: len(a["audit"]))["id"])


def test_every_page_of_the_nav_renders_and_is_saved(demo, shots, browser):
    page = browser.page(demo.url, viewport=DESK)
    shoot(page, "/login", shots, "login")
    log_in(page, "admin")
    for href in nav_links(page):
        shoot(page, href, shots, href.strip("/").replace("/", "-") or "home")
    shoot(page, f"/alerts/{richest_alert(page)}", shots, "alert")
    for name in ("login", "alerts", "dashboard", "fleet", "org", "alert"):
        assert (shots / f"{name}.png").stat().st_size > 5_000, name
    assert not browser.errors, browser.errors


def test_the_pages_at_phone_width(demo, shots, browser):
    """A site manager's phone (390 px): the alert list and an alert saved; every nav page renders."""
    page = phone(browser, demo, "anna")
    shoot(page, "/alerts", shots, "alerts-phone")
    shoot(page, f"/alerts/{richest_alert(page, 'store-042')}", shots, "alert-phone")
    for href in nav_links(page):
        shoot(page, href, shots, href.strip("/").replace("/", "-") + "-phone")
    assert (shots / "alerts-phone.png").stat().st_size > 5_000
    assert not browser.errors, browser.errors


def test_no_page_is_wider_than_a_phone(demo, browser):
    page = phone(browser, demo, "admin")
    wider = {}
    for href in [*nav_links(page), f"/alerts/{richest_alert(page)}"]:
        shoot(page, href, None, "")
        if (extra := wider_than_the_window(page)) > 0:
            wider[href] = extra
    assert not wider, f"wider than a 390 px phone, by (CSS px): {wider}"


def _site_of(page: Any, alert_id: str) -> str:
    return str(page.request.get(f"/api/alerts/{alert_id}").json()["site"])
