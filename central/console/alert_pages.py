"""The alert pages: the live list with its filters, one alert with its timeline, and the lifecycle actions
(acknowledge, assign, resolve with root cause and action, reopen) — each a call to :mod:`central.lifecycle`
with the logged-in user as its author."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from central import lifecycle
from central.console.deps import Who, check_csrf, console, fragment, may_act, render, who
from central.console.filters import alert_filter, matches
from central.notify import Dispatcher, deliveries_of
from central.records import Alert
from central.store_console import ConsoleReads

router = APIRouter(include_in_schema=False)
PAGE = 50
POLL = 0.3  # seconds between two looks at the store for the live stream
KEEPALIVE = 15.0
RECHECK_LOGIN = 60.0


def _filter_args(site: str = "", location: str = "", kind: str = "", state: str = "live", start: str = "",
                 end: str = "", assignee: str = "") -> dict[str, str]:
    return {"site": site, "location": location, "kind": kind, "state": state, "start": start, "end": end,
            "assignee": assignee}


Filters = Annotated[dict[str, str], Depends(_filter_args)]


@router.get("/alerts")
def alerts_page(request: Request, args: Filters, page: int = 1) -> Response:
    asking = who(request)
    c = console(request)
    f = alert_filter(c, asking.user, **args)
    reads = ConsoleReads(c.store)
    cursor = reads.cursor()  # before the rows: a change in between is sent by the stream, not lost
    page = max(1, min(page, 10_000))
    rows, total = reads.alerts(f, limit=PAGE, offset=(page - 1) * PAGE)
    kinds, places = reads.kinds_and_locations(asking.user.scope())
    context: dict[str, Any] = {"alerts": rows, "total": total, "page": page, "pages": max(1, -(-total // PAGE)),
                               "args": args, "query": urlencode(args), "kinds": kinds, "places": places,
                               "nav": "alerts",
                               "sites": sorted({s for s, _ in places} | set(asking.user.sites)),
                               "counts": reads.sla_counts(asking.user.scope()), "cursor": cursor}
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "alert-list":
        return render(request, "fragments/alert_list.html", **context)
    return render(request, "alerts.html", **context)


@router.get("/alerts/stream")
async def alerts_stream(request: Request, args: Filters,
                        after: Annotated[int | None, Query(ge=0, le=2**62)] = None) -> Response:
    """Server-sent events: one ``alert`` event (the row's HTML and id) for each alert opened or changed in the
    user's sites that the list's filter shows; the page puts it on top or replaces the row."""
    asking = who(request)
    c = console(request)
    f = alert_filter(c, asking.user, **args)
    reads = ConsoleReads(c.store)
    # The page says which changes it already shows (its cursor when rendered); without one, from now.
    cursor = after if after is not None else await run_in_threadpool(reads.cursor)
    shown = cursor
    cookie = request.cookies.get("smileloop_session")

    async def events() -> AsyncIterator[str]:
        nonlocal cursor
        sent: dict[str, tuple[Any, ...]] = {}
        idle = since_login_check = 0.0
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            changed, cursor = await run_in_threadpool(reads.changed_since, cursor, f.sites)
            for a, audit_id in changed:
                mark = (a["state"], a["assignee"], a["hits"], a["level"], a["parent_id"])
                if audit_id <= shown or sent.get(a["id"]) == mark or not matches(f, a):
                    continue
                sent[a["id"]] = mark
                html = fragment(request, "fragments/alert_row.html", a=a, fresh=True)
                yield f"event: alert\ndata: {json.dumps({'id': a['id'], 'html': html})}\n\n"
                idle = 0.0
            if len(sent) > 5000:
                sent.clear()
            await asyncio.sleep(POLL)
            idle += POLL
            since_login_check += POLL
            if idle >= KEEPALIVE:
                idle = 0.0
                yield ": keepalive\n\n"
            if since_login_check >= RECHECK_LOGIN and not asking.by_token:
                since_login_check = 0.0
                if await run_in_threadpool(c.accounts.session, cookie) is None:
                    yield "event: logout\ndata: {}\n\n"
                    return

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, alert_id: str) -> Response:
    asking = who(request)
    c = console(request)
    alert = c.store.alert(alert_id[:64])
    asking.user.require_site(alert["site"])
    return render(request, "alert.html", **_detail(request, alert))


def _detail(request: Request, alert: Alert) -> dict[str, Any]:
    c, asking = console(request), who(request)
    people = [u.name for u in c.accounts.users() if u.may_act(alert["site"])]
    return {"a": alert, "audit": c.store.audit_trail(alert["id"]), "deliveries": deliveries_of(c.store, alert["id"]),
            "grouped": c.store.grouped_under(alert["id"]), "people": people, "nav": "alerts",
            "may_act": asking.user.may_act(alert["site"])}


def _done(request: Request, alert: Alert) -> Response:
    if request.headers.get("hx-request"):
        return render(request, "fragments/alert_detail.html", **_detail(request, alert))
    return RedirectResponse(f"/alerts/{alert['id']}", status_code=303)


def _target(request: Request, asking: Who, alert_id: str) -> Alert:
    alert = console(request).store.alert(alert_id[:64])
    asking.user.require_site(alert["site"])
    may_act(asking, alert["site"])
    return alert


Text = Annotated[str, Form(max_length=2000)]


@router.post("/alerts/{alert_id}/ack")
def ack(request: Request, alert_id: str, asking: Annotated[Who, Depends(check_csrf)], note: Text = "") -> Response:
    c = console(request)
    alert = _target(request, asking, alert_id)
    return _done(request, lifecycle.acknowledge(c.store, alert["id"], asking.user.name, c.clock.now(), note or None))


@router.post("/alerts/{alert_id}/assign")
def assign(request: Request, alert_id: str, asking: Annotated[Who, Depends(check_csrf)],
           assignee: Annotated[str, Form(max_length=64)] = "") -> Response:
    c = console(request)
    alert = _target(request, asking, alert_id)
    person = c.accounts.user(assignee) if assignee else None
    if assignee and (person is None or not person.may_act(alert["site"])):
        from central.errors import InvalidTransition

        raise InvalidTransition(f"{assignee!r} is not a user who can act on site {alert['site']}")
    return _done(request, lifecycle.assign(c.store, alert["id"], asking.user.name, assignee or None, c.clock.now()))


@router.post("/alerts/{alert_id}/resolve")
def resolve(request: Request, alert_id: str, asking: Annotated[Who, Depends(check_csrf)], root_cause: Text = "",
            action: Text = "", action_sv: Text = "", outcome: Text = "", tell_kiosks: Annotated[str, Form()] = ""
            ) -> Response:
    c = console(request)
    alert = _target(request, asking, alert_id)
    dispatcher = Dispatcher(c.store, c.org)
    done = lifecycle.resolve(c.store, alert["id"], asking.user.name, root_cause, action, c.clock.now(),
                             outcome=outcome or None, publish=tell_kiosks == "on", dispatcher=dispatcher,
                             actions={"sv": action_sv} if action_sv.strip() else None, org=c.org())
    return _done(request, done)


@router.post("/alerts/{alert_id}/reopen")
def reopen(request: Request, alert_id: str, asking: Annotated[Who, Depends(check_csrf)], why: Text = "") -> Response:
    c = console(request)
    alert = _target(request, asking, alert_id)
    dispatcher = Dispatcher(c.store, c.org)
    return _done(request, lifecycle.reopen(c.store, alert["id"], asking.user.name, why, c.clock.now(), dispatcher))
