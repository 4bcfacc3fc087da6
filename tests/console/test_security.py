"""The console's security promises (docs/CONSOLE.md, "Accounts and access"), checked through HTTP on every route.

Routes are read from the app itself, so a page or API added later is covered without touching this file: nothing
but ``/login`` and ``/static/`` answers without a login, and no change is accepted without the session's CSRF
token. Then: lockout per account and per address on an injected clock, session expiry, cookie flags, headers,
the open redirect after login, and hostile form input that must never cause a 500.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

import central.accounts as accounts
from central.accounts import Accounts
from central.console import create_app
from central.records import Candidate
from central.store import CentralStore
from smileloop_core.clock import FakeClock
from tests.console.conftest import CSRF, PASSWORD, login

PUBLIC = ("/login", "/static")
PARAMS = {"site": "store-1", "location": "exit", "device": "kiosk-1", "device_id": "kiosk-1", "name": "anna",
          "user": "anna", "kind": "negative_rating", "rule": "negative_rating", "path": "console.css"}


def open_alert(store: CentralStore, clock: FakeClock, site: str = "store-1", key: str = "k1") -> str:
    c = Candidate(kind="negative_rating", site=site, location="exit", group_key=f"{site}/{key}",
                  title="Unhappy visitor at exit", detail={"value": 1})
    return str(store.open_alert(c, clock.now()).alert["id"])


def routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, path template) the app serves, HEAD aside; a mount as ``GET <path>/{path}``.

    Walks included routers too (FastAPI ≥ 0.160 keeps them as ``_IncludedRouter`` with ``original_router``)."""
    found: list[tuple[str, str]] = []

    def walk(items: Any, prefix: str) -> None:
        for r in items:
            if hasattr(r, "original_router"):
                walk(r.original_router.routes, prefix + getattr(r.include_context, "prefix", ""))
            elif getattr(r, "methods", None):
                found.extend((m, prefix + r.path) for m in sorted(r.methods) if m != "HEAD")
            elif hasattr(r, "path"):  # a Mount (static files)
                found.append(("GET", prefix + r.path + "/{path}"))

    walk(app.routes, "")
    return sorted(set(found))


def fill(template: str, alert_id: str) -> str:
    """A path template with real values: the alert's id for ``{alert_id}``, a known site/device/… otherwise."""
    def value(m: re.Match[str]) -> str:
        name = m.group(1).split(":")[0]
        return alert_id if name.endswith("alert_id") or name == "id" else PARAMS.get(name, "x")
    return re.sub(r"{([^}]+)}", value, template)


def is_public(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PUBLIC)


def wants_401(path: str) -> bool:
    """The API, CSV exports and the live stream answer 401 JSON; a page redirects to /login instead."""
    return path.startswith("/api/") or path.endswith((".csv", "/stream"))


PRODUCTION_HASHER = accounts.HASHER  # before conftest's cheap_hashing swaps in a cheap one for each test


def test_passwords_are_hashed_with_argon2id_at_a_recommended_cost(console_store):
    from argon2 import Type

    assert PRODUCTION_HASHER.type is Type.ID
    assert PRODUCTION_HASHER.memory_cost >= 19 * 1024 and PRODUCTION_HASHER.time_cost >= 2  # OWASP's minimum
    [row] = [console_store.query("SELECT password_hash FROM users WHERE name = 'anna'")[0]["password_hash"]]
    assert row.startswith("$argon2id$") and PASSWORD not in row


@pytest.fixture
def alert_id(console_store: CentralStore, clock: FakeClock) -> str:
    return open_alert(console_store, clock)


@pytest.fixture
def anon(app: Any) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


def login_form(c: TestClient, name: str, password: str, next: str = "/alerts") -> Any:
    """Post the login form the way a browser does: first the page (its double-submit cookie and token)."""
    token = CSRF.search(c.get("/login").text).group(1)  # type: ignore[union-attr]
    return c.post("/login", data={"username": name, "password": password, "csrf_token": token, "next": next})


# --- nothing without a login -------------------------------------------------------------------------------------
def test_the_route_walk_finds_the_console(app):
    """The walk below sees every kind of route (or it would pass on nothing)."""
    found = set(routes(app))
    for expected in [("GET", "/alerts"), ("GET", "/alerts/{alert_id}"), ("POST", "/alerts/{alert_id}/resolve"),
                     ("GET", "/api/alerts"), ("POST", "/api/alerts/{alert_id}/ack"), ("GET", "/alerts/stream"),
                     ("GET", "/api/openapi.json"), ("POST", "/login"), ("GET", "/static/{path}")]:
        assert expected in found, expected


def test_every_route_needs_a_login_except_login_and_static(app, anon, alert_id):
    wrong: list[str] = []
    checked = 0
    for method, template in routes(app):
        path = fill(template, alert_id)
        r = anon.request(method, path, data={"csrf_token": "x"} if method == "POST" else None)
        checked += 1
        if is_public(template):
            continue
        if wants_401(path):
            ok = r.status_code == 401 and r.headers["content-type"].startswith("application/json") \
                and r.json().get("status") == 401
        else:
            location = r.headers.get("location", "")
            ok = r.status_code == 303 and location.startswith("/login?next=") and \
                unquote(location.partition("next=")[2]) == path
        if not ok:
            wrong.append(f"{method} {path} → {r.status_code} {r.headers.get('location', '')} {r.text[:80]!r}")
    assert checked >= 10
    assert not wrong, "answered without a login:\n" + "\n".join(wrong)


def test_login_and_static_answer_without_a_login(anon):
    assert anon.get("/login").status_code == 200
    assert anon.get("/static/console.css").status_code == 200
    assert anon.get("/static/console.js").status_code == 200


def test_a_page_redirect_keeps_where_the_user_was_going(anon, alert_id):
    r = anon.get(f"/alerts/{alert_id}")
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=/alerts/{alert_id}"
    r = anon.get("/alerts?state=open&site=store-1")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/alerts?state=open&site=store-1"


def test_a_bad_or_foreign_authorization_header_is_no_login(anon, alert_id):
    for auth in ("Basic YWRtaW46eA==", "Bearer ", "Bearer slt_nope_nope", "Bearer " + "a" * 5000):
        r = anon.get("/api/alerts", headers={"Authorization": auth})
        assert r.status_code in (401, 403), (auth[:20], r.status_code)
        assert r.headers["content-type"].startswith("application/json")
    r = anon.get("/alerts", headers={"Authorization": "Basic YWRtaW46eA=="})
    assert r.status_code == 303


# --- CSRF --------------------------------------------------------------------------------------------------------
def test_every_form_post_without_or_with_a_wrong_csrf_token_is_refused(app, as_user, alert_id, console_store):
    admin = as_user("admin")
    posts = [t for m, t in routes(app) if m == "POST" and not is_public(t)]
    assert len(posts) >= 6
    wrong: list[str] = []
    for template in posts:
        path = fill(template, alert_id)
        fields = {"note": "n", "assignee": "anna", "root_cause": "r", "action": "a", "why": "w", "lang": "sv"}
        for label, extra in (("no token", {}), ("wrong token", {"csrf_token": "not-" + admin.csrf})):
            r = admin.post(path, data={**fields, **extra})
            if r.status_code != 403:
                wrong.append(f"{label}: POST {path} → {r.status_code} {r.text[:80]!r}")
        # the header htmx sends is checked the same way
        r = admin.post(path, data=fields, headers={"X-CSRF-Token": "forged"})
        if r.status_code != 403:
            wrong.append(f"forged header: POST {path} → {r.status_code}")
    assert not wrong, "a change went through without the session's CSRF token:\n" + "\n".join(wrong)
    a = console_store.alert(alert_id)
    assert (a["state"], a["assignee"]) == ("open", None)
    assert [e["action"] for e in console_store.audit_trail(alert_id)] == ["opened"]
    assert admin.get("/alerts").status_code == 200  # still logged in: /logout was refused too


def test_a_json_post_with_a_session_cookie_needs_the_csrf_header(as_user, alert_id, console_store):
    anna = as_user("anna")
    r = anna.post(f"/api/alerts/{alert_id}/ack", json={"note": "mine"})
    assert r.status_code == 403 and r.json()["status"] == 403
    r = anna.post(f"/api/alerts/{alert_id}/ack", json={"note": "mine"}, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    assert console_store.alert(alert_id)["state"] == "open"
    r = anna.post(f"/api/alerts/{alert_id}/ack", json={"note": "mine"}, headers={"X-CSRF-Token": anna.csrf})
    assert r.status_code == 200 and r.json()["acked_by"] == "anna"


def test_a_bearer_token_needs_no_csrf(app, console_store, clock, alert_id):
    token = Accounts(console_store, clock=clock).new_token("anna")
    with TestClient(app) as c:
        auth = {"Authorization": f"Bearer {token}"}
        r = c.post(f"/api/alerts/{alert_id}/ack", json={"note": "by token"}, headers=auth)
        assert r.status_code == 200, r.text
    assert console_store.alert(alert_id)["acked_by"] == "anna"


def test_the_login_form_needs_its_double_submit_token(anon):
    anon.get("/login")
    r = anon.post("/login", data={"username": "admin", "password": PASSWORD, "next": "/alerts"})
    assert r.status_code == 403 and "smileloop_session" not in r.headers.get("set-cookie", "")
    r = anon.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": "guess"})
    assert r.status_code == 403
    with TestClient(anon.app, follow_redirects=False) as fresh:  # a token without its cookie
        token = CSRF.search(anon.get("/login").text).group(1)  # type: ignore[union-attr]
        r = fresh.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 403


# --- failed logins -----------------------------------------------------------------------------------------------
def test_the_fifth_failure_locks_the_account_and_the_lock_doubles(anon, clock):
    for i in range(5):
        r = login_form(anon, "anna", f"wrong password {i}")
        assert r.status_code == 401, (i, r.status_code)
        assert "wrong user name or password" in r.text
    locked = login_form(anon, "anna", PASSWORD)  # even the right password, while locked
    assert locked.status_code == 429 and "smileloop_session" not in locked.headers.get("set-cookie", "")
    assert 29 <= int(locked.headers["Retry-After"]) <= 32
    clock.advance(29)
    assert login_form(anon, "anna", PASSWORD).status_code == 429
    clock.advance(2)  # 31 s after the fifth failure: free again, for one more try
    assert login_form(anon, "anna", "wrong again").status_code == 401
    doubled = login_form(anon, "anna", PASSWORD)
    assert doubled.status_code == 429 and 59 <= int(doubled.headers["Retry-After"]) <= 62
    clock.advance(45)
    assert login_form(anon, "anna", PASSWORD).status_code == 429
    clock.advance(16)
    ok = login_form(anon, "anna", PASSWORD)
    assert ok.status_code == 303 and ok.headers["location"] == "/alerts"
    # a good login forgives: four more failures do not lock
    for i in range(4):
        assert login_form(anon, "anna", f"wrong {i}").status_code == 401
    assert login_form(anon, "anna", PASSWORD).status_code == 303


def test_another_account_is_not_locked_by_annas_failures(anon):
    for i in range(6):
        login_form(anon, "anna", f"wrong {i}")
    assert login_form(anon, "anna", PASSWORD).status_code == 429
    assert login_form(anon, "bo", PASSWORD).status_code == 303


def test_an_address_guessing_many_names_is_locked_after_twenty_failures(app, clock):
    with TestClient(app, follow_redirects=False, client=("203.0.113.7", 4000)) as guesser, \
            TestClient(app, follow_redirects=False, client=("198.51.100.2", 4000)) as other:
        for i in range(20):
            r = login_form(guesser, f"name-{i}", "not the password")
            assert r.status_code == 401, (i, r.status_code)
        r = login_form(guesser, "admin", PASSWORD)
        assert r.status_code == 429 and "address" in r.text and int(r.headers["Retry-After"]) >= 29
        assert login_form(other, "admin", PASSWORD).status_code == 303  # the account itself is not locked
        clock.advance(31)
        assert login_form(guesser, "admin", PASSWORD).status_code == 303


def test_an_unknown_name_costs_the_same_argon2_work_and_gets_the_same_answer(anon, monkeypatch):
    import argon2._password_hasher as hasher  # a spy on argon2's own verify: the work really done

    verified: list[bytes] = []
    real = hasher.verify_secret

    def spy(hash_: bytes, secret: bytes, type_: Any) -> bool:
        verified.append(hash_)
        return bool(real(hash_, secret, type_))

    monkeypatch.setattr(hasher, "verify_secret", spy)
    answers = {}
    for label, name in (("wrong password", "anna"), ("unknown", "nobody-here"), ("not a name", "Ünïcode Name")):
        verified.clear()
        r = login_form(anon, name, "a wrong password")
        answers[label] = (r.status_code, re.sub(r'value="[^"]*"', "", r.text))
        assert len(verified) == 1, (label, len(verified))
        assert verified[0].startswith(b"$argon2id$")
    assert {s for s, _ in answers.values()} == {401}
    errors = {re.search(r'class="error"[^>]*>([^<]*)<', text).group(1) for _, text in answers.values()}  # type: ignore[union-attr]
    assert errors == {"wrong user name or password"}


# --- sessions ----------------------------------------------------------------------------------------------------
def test_a_session_ends_after_twelve_hours_unused(app, clock):
    c = login(app, "anna")
    clock.advance(11 * 3600)
    assert c.get("/alerts").status_code == 200  # used: the idle timer starts again
    clock.advance(11 * 3600 + 3500)
    assert c.get("/alerts").status_code == 200
    clock.advance(12 * 3600 + 1)
    r = c.get("/alerts")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert c.get("/api/alerts").status_code == 401
    c.close()


def test_a_session_ends_after_fourteen_days_however_busy(app, clock):
    c = login(app, "anna")
    elapsed, step, limit = 0, 11 * 3600, 14 * 86400
    while elapsed + step < limit:  # used every 11 hours: never idle for 12
        clock.advance(step)
        elapsed += step
        assert c.get("/api/alerts").status_code == 200, elapsed
    clock.advance(limit - elapsed - 1)
    assert c.get("/api/alerts").status_code == 200
    clock.advance(2)
    assert c.get("/api/alerts").status_code == 401
    assert c.get("/alerts").status_code == 303
    c.close()


def test_logout_ends_the_session_on_the_server(app):
    c = login(app, "anna")
    cookie = c.cookies.get("smileloop_session")
    assert c.act("/logout").status_code == 303
    with TestClient(app, follow_redirects=False, cookies={"smileloop_session": cookie}) as replay:
        assert replay.get("/api/alerts").status_code == 401


# --- cookies and headers -----------------------------------------------------------------------------------------
def _cookie(response: Any, name: str) -> str:
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]
    return header.lower()


@pytest.mark.parametrize("secure", [True, False])
def test_cookie_flags(console_store, clock, secure):
    app = create_app(console_store, clock=clock, secure_cookies=secure)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        page = c.get("/login")
        login_cookie = _cookie(page, "smileloop_login_csrf")
        assert "httponly" in login_cookie and "samesite=strict" in login_cookie
        assert ("; secure" in login_cookie) is secure
        r = login_form(c, "anna", PASSWORD)
        assert r.status_code == 303
        session = _cookie(r, "smileloop_session")
        assert "httponly" in session and "samesite=lax" in session and "path=/" in session
        assert ("; secure" in session) is secure
        assert ("strict-transport-security" in c.get("/alerts").headers) is secure


def test_pages_carry_the_security_headers_and_no_inline_script_or_style(app, as_user, alert_id, anon):
    admin = as_user("admin")
    pages = [fill(t, alert_id) for m, t in routes(app) if m == "GET" and not t.startswith(("/api/", "/static"))
             and not t.endswith(("/stream", ".csv"))]
    responses = {p: admin.get(p) for p in pages}
    responses["/login (anonymous)"] = anon.get("/login")
    responses["403 page"] = as_user("bo").get(f"/alerts/{alert_id}")
    responses["404 page"] = admin.get("/alerts/no-such-alert")
    responses["API"] = admin.get("/api/alerts")
    assert responses["403 page"].status_code == 403 and responses["404 page"].status_code == 404
    wrong: list[str] = []
    for name, r in responses.items():
        if r.status_code >= 500:
            wrong.append(f"{name}: {r.status_code}")
        csp = r.headers.get("content-security-policy", "")
        if "'unsafe-inline'" in csp or "'unsafe-eval'" in csp or "script-src 'self'" not in csp \
                or "frame-ancestors 'none'" not in csp:
            wrong.append(f"{name}: CSP {csp!r}")
        if r.headers.get("x-frame-options") != "DENY" or r.headers.get("x-content-type-options") != "nosniff":
            wrong.append(f"{name}: framing/sniffing headers {dict(r.headers)}")
        if r.headers.get("cache-control") != "no-store" or r.headers.get("referrer-policy") != "same-origin":
            wrong.append(f"{name}: cache/referrer headers")
        # what the CSP would block in a browser: inline scripts, handlers and style attributes
        if r.headers.get("content-type", "").startswith("text/html") and (
                re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text) or re.search(r"\son[a-z]+\s*=", r.text)
                or re.search(r"\sstyle\s*=", r.text)):
            wrong.append(f"{name}: inline script, handler or style the CSP refuses")
    assert not wrong, "\n".join(wrong)


# --- open redirect -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["//evil.example", "//evil.example/alerts", "https://evil.example/",
                                    "/\\evil.example", "\\\\evil.example", "/\t/evil.example", "/%2F%2Fevil.example",
                                    "http:evil.example", "javascript:alert(1)", " //evil.example", "/" + "a" * 600])
def test_login_never_sends_the_user_to_another_host(app, target):
    with TestClient(app, follow_redirects=False) as c:
        r = login_form(c, "anna", PASSWORD, next=target)
        assert r.status_code == 303
        location = r.headers["location"]
        # as a browser reads it: tabs and newlines dropped, backslashes as slashes
        browser = re.sub(r"[\t\n\r]", "", location).replace("\\", "/")
        assert urlsplit(urljoin("http://testserver/login", browser)).netloc == "testserver", location
        assert location.startswith("/") and not location.startswith("//")
    with TestClient(app, follow_redirects=False) as c:
        page = c.get("/login", params={"next": target})
        kept = re.search(r'name="next" value="([^"]*)"', page.text).group(1)  # type: ignore[union-attr]
        assert kept.startswith("/") and not kept.startswith("//") and "\\" not in kept, kept


def test_the_next_field_is_escaped_on_the_login_page(anon):
    page = anon.get("/login", params={"next": '/"><script>alert(1)</script>'})
    assert page.status_code == 200 and "<script>alert(1)" not in page.text


# --- hostile input -----------------------------------------------------------------------------------------------
HOSTILE = ["", "\x00", "a\x00b", "x" * 2_000_001, "😀" * 3000, "\u202eevil", "' OR 1=1 --", "<script>x</script>",
           "%00", "../../etc/passwd", "\ud7ff\ue000\uffff", "  ", "Ünïcode"]


def test_hostile_login_input_never_fails_the_server(anon):
    token = CSRF.search(anon.get("/login").text).group(1)  # type: ignore[union-attr]
    for value in HOSTILE:
        for field in ("username", "password", "next"):
            data = {"username": "anna", "password": "x", "csrf_token": token, "next": "/alerts", field: value}
            r = anon.post("/login", data=data)
            assert r.status_code < 500, (field, value[:20], r.status_code)
    raw = anon.post("/login", content=b"username=%ff%fe%00&password=%c3%28&csrf_token=" + token.encode(),
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert raw.status_code < 500
    multipart = anon.post("/login", files={"username": ("u.txt", b"\x00" * 100)}, data={"csrf_token": token})
    assert multipart.status_code < 500


def test_hostile_form_and_query_input_never_fails_the_server(app, as_user, alert_id, console_store):
    admin = as_user("admin")
    wrong: list[str] = []
    posts = [fill(t, alert_id) for m, t in routes(app) if m == "POST" and not is_public(t)
             and not t.startswith("/api/") and t != "/logout"]
    fields = ("note", "assignee", "root_cause", "action", "action_sv", "outcome", "why", "lang", "next", "tell_kiosks")
    for path in posts:
        for value in HOSTILE:
            r = admin.act(path, {f: value for f in fields})
            if r.status_code >= 500:
                wrong.append(f"POST {path} with {value[:12]!r}: {r.status_code}")
    for value in [*HOSTILE[:-3], "99999999999999999999999", "-1", "2026-02-30", "0001-01-01"]:
        for key in ("site", "location", "kind", "state", "start", "end", "assignee", "page"):
            r = admin.get("/alerts", params={key: value[:20_000]})
            if r.status_code >= 500:
                wrong.append(f"GET /alerts?{key}={value[:12]!r}: {r.status_code}")
        for key in ("site", "location", "kind", "state", "from", "to", "limit", "offset"):
            r = admin.get("/api/alerts", params={key: value[:20_000]})
            if r.status_code >= 500:
                wrong.append(f"GET /api/alerts?{key}={value[:12]!r}: {r.status_code}")
        r = admin.get("/alerts/" + quote(value[:3000], safe=""))
        if r.status_code >= 500:
            wrong.append(f"GET /alerts/{value[:12]!r}: {r.status_code}")
    for body in (b"{", b"null", b"[]", b'{"note": 5}', b'{"root_cause": "\\u0000", "action": "\\u0000"}',
                 b'{"assignee": {"$ne": 1}}', b"\xff\xfe", b'{"why": "' + b"x" * 3000 + b'"}'):
        for step in ("ack", "assign", "resolve", "reopen"):
            r = admin.post(f"/api/alerts/{alert_id}/{step}", content=body,
                           headers={"content-type": "application/json", "X-CSRF-Token": admin.csrf})
            if r.status_code >= 500:
                wrong.append(f"POST /api/alerts/…/{step} {body[:20]!r}: {r.status_code}")
    assert not wrong, "\n".join(wrong)
    assert admin.get(f"/alerts/{alert_id}").status_code == 200
