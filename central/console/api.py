"""The JSON API over alerts (``/api/alerts…``), with the same scoping as the pages: a session cookie (and the
``X-CSRF-Token`` header for a change) or ``Authorization: Bearer <token>``. Errors are JSON with a reason.
Ratings and aggregates are in :mod:`central.console.api_data`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from central import lifecycle
from central.console.deps import Who, check_csrf, console, may_act, who
from central.console.filters import STATES, alert_filter
from central.errors import InvalidTransition
from central.notify import Dispatcher, deliveries_of
from central.records import Alert
from central.store_console import ConsoleReads

router = APIRouter(prefix="/api", tags=["alerts"])
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad input; `error` names what was wrong"}, 401: {"description": "Not logged in"},
    403: {"description": "Not allowed for this user or site"}, 404: {"description": "No such alert"},
    422: {"description": "A parameter of the wrong type or out of range"}}


class AlertPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class Note(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class Assignment(BaseModel):
    assignee: str | None = Field(default=None, max_length=64, description="A user who may act on the site; "
                                 "null to unassign")


class Resolution(BaseModel):
    root_cause: str = Field(min_length=1, max_length=2000, description="Why it happened")
    action: str = Field(min_length=1, max_length=2000, description="What was done about it")
    action_sv: str | None = Field(default=None, max_length=2000, description="The action worded in Swedish")
    outcome: str | None = Field(default=None, max_length=2000, description="The 'you said, we did' text as typed")
    tell_kiosks: bool = Field(default=True, description="Publish 'you said, we did' to the location's kiosks")


class Reopening(BaseModel):
    why: str = Field(min_length=1, max_length=2000)


@router.get("/alerts", response_model=AlertPage, responses=ERRORS)
def list_alerts(request: Request, site: Annotated[str | None, Query(max_length=64)] = None,
                location: Annotated[str | None, Query(max_length=64)] = None,
                kind: Annotated[str | None, Query(max_length=64)] = None,
                state: Annotated[str, Query(pattern="^(" + "|".join(STATES) + ")$")] = "all",
                start: Annotated[str | None, Query(alias="from", max_length=10, description="YYYY-MM-DD")] = None,
                end: Annotated[str | None, Query(alias="to", max_length=10, description="YYYY-MM-DD, inclusive")
                               ] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 50,
                offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> AlertPage:
    """Alerts newest first, only of the caller's sites."""
    asking = who(request)
    f = alert_filter(console(request), asking.user, site=site, location=location, kind=kind, state=state,
                     start=start, end=end)
    rows, total = ConsoleReads(console(request).store).alerts(f, limit=limit, offset=offset)
    return AlertPage(items=[dict(r) for r in rows], total=total, limit=limit, offset=offset,
                     next_offset=offset + limit if offset + limit < total else None)


@router.get("/alerts/{alert_id}", responses=ERRORS)
def get_alert(request: Request, alert_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    """One alert with its audit trail and every delivery."""
    alert = _visible(request, who(request), alert_id)
    c = console(request)
    return {**alert, "audit": c.store.audit_trail(alert["id"]), "deliveries": deliveries_of(c.store, alert["id"])}


@router.post("/alerts/{alert_id}/ack", responses=ERRORS)
def ack_alert(request: Request, alert_id: str, asking: Annotated[Who, Depends(check_csrf)],
              body: Note | None = None) -> dict[str, Any]:
    c = console(request)
    alert = _actionable(request, asking, alert_id)
    return dict(lifecycle.acknowledge(c.store, alert["id"], asking.user.name, c.clock.now(), (body or Note()).note))


@router.post("/alerts/{alert_id}/assign", responses=ERRORS)
def assign_alert(request: Request, alert_id: str, asking: Annotated[Who, Depends(check_csrf)],
                 body: Assignment) -> dict[str, Any]:
    c = console(request)
    alert = _actionable(request, asking, alert_id)
    if body.assignee:
        person = c.accounts.user(body.assignee)
        if person is None or not person.may_act(alert["site"]):
            raise InvalidTransition(f"{body.assignee!r} is not a user who can act on site {alert['site']}")
    return dict(lifecycle.assign(c.store, alert["id"], asking.user.name, body.assignee, c.clock.now()))


@router.post("/alerts/{alert_id}/resolve", responses=ERRORS)
def resolve_alert(request: Request, alert_id: str, asking: Annotated[Who, Depends(check_csrf)],
                  body: Resolution) -> dict[str, Any]:
    c = console(request)
    alert = _actionable(request, asking, alert_id)
    return dict(lifecycle.resolve(c.store, alert["id"], asking.user.name, body.root_cause, body.action, c.clock.now(),
                                  outcome=body.outcome, publish=body.tell_kiosks,
                                  dispatcher=Dispatcher(c.store, c.org), org=c.org(),
                                  actions={"sv": body.action_sv} if body.action_sv else None))


@router.post("/alerts/{alert_id}/reopen", responses=ERRORS)
def reopen_alert(request: Request, alert_id: str, asking: Annotated[Who, Depends(check_csrf)],
                 body: Reopening) -> dict[str, Any]:
    c = console(request)
    alert = _actionable(request, asking, alert_id)
    return dict(lifecycle.reopen(c.store, alert["id"], asking.user.name, body.why, c.clock.now(),
                                 Dispatcher(c.store, c.org)))


def _visible(request: Request, asking: Who, alert_id: str) -> Alert:
    alert = console(request).store.alert(alert_id[:64])
    asking.user.require_site(alert["site"])
    return alert


def _actionable(request: Request, asking: Who, alert_id: str) -> Alert:
    alert = _visible(request, asking, alert_id)
    may_act(asking, alert["site"])
    return alert
