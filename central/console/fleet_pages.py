"""The fleet page: every device of the user's sites as central last heard it (:func:`central.fleet.fleet_status`),
and, for admins, config pushes — checked, versioned, kept and published exactly as ``smileloop fleet push`` does
(docs/FLEET.md), with the logged-in user as ``pushed_by``.

The console publishes to the broker named by the same environment variables as ``smileloop fleet push`` and
``smileloop central`` (``SMILELOOP_BROKER``, ``SMILELOOP_BROKER_USERNAME``, ``SMILELOOP_BROKER_PASSWORD_FILE``,
plus ``SMILELOOP_BROKER_CA_FILE`` for a private CA). Without ``SMILELOOP_BROKER`` it pushes nothing: guessing a
local broker would keep a push that no device ever gets.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from central import fleet
from central.console.deps import Console, Who, check_csrf, console, render, who
from central.errors import AccessDenied, FleetError, PublishFailed
from central.fleet_cli import build_tables
from central.store_fleet import PushLog, PushRecord
from smileloop_core.hours import WEEKDAYS
from smileloop_core.ids import id_problem
from smileloop_core.mqtt import BrokerSettings
from smileloop_core.pin import hash_pin
from smileloop_core.scales import SCALES

router = APIRouter(include_in_schema=False)
STATE_CLASS = {"silent": "stale", "offline": "dead", "never seen": "never"}  # what makes a kiosk stand out
PUSH_FIELDS = ("target", "question", "scale", "languages", "reasons_negative", "reasons_positive", "timezone",
               "idle_reset", "response_interval", *WEEKDAYS)


def broker_settings(environ: Mapping[str, str] = os.environ) -> BrokerSettings | None:
    """The broker pushes go to, from ``smileloop fleet push``'s environment variables; None when none is set."""
    url = environ.get("SMILELOOP_BROKER", "").strip()
    if not url:
        return None
    ca = environ.get("SMILELOOP_BROKER_CA_FILE") or None
    settings = BrokerSettings.from_url(url, username=environ.get("SMILELOOP_BROKER_USERNAME") or None,
                                       ca_file=Path(ca) if ca else None)
    password_file = environ.get("SMILELOOP_BROKER_PASSWORD_FILE") or None
    try:
        return settings.with_password_file(Path(password_file) if password_file else None)
    except OSError as e:
        raise PublishFailed(f"SMILELOOP_BROKER_PASSWORD_FILE: cannot read it ({e.__class__.__name__})") from None


def _visible_rows(c: Console, asking: Who, site: str | None, state: str | None) -> list[fleet.DeviceRow]:
    if site is not None:
        if problem := id_problem(site, "site"):
            raise FleetError(problem)
        asking.user.require_site(site)
    if state is not None and state not in fleet.STATES:
        raise FleetError(f"state: {state!r} is not one of {', '.join(fleet.STATES)}")
    rows = fleet.fleet_status(c.store, c.org(), c.clock.now(), site=site, state=state)
    return [r for r in rows if asking.user.sees(r.site)]


def _pushes(c: Console, asking: Who, site: str | None, limit: int = 20) -> list[dict[str, Any]]:
    """The latest pushes of the sites shown, one line per push (site and version) with its devices."""
    log = PushLog(c.store)
    scope = asking.user.scope()
    wanted = [site] if site else (list(scope) if scope is not None else [None])
    records: list[PushRecord] = [p for s in wanted for p in log.pushes(site=s, limit=limit * 10)]
    grouped: dict[tuple[str, int], dict[str, Any]] = {}
    for p in sorted(records, key=lambda p: (p.pushed_at, p.version), reverse=True):
        line = grouped.setdefault((p.site, p.version), {
            "site": p.site, "version": p.version, "at": p.pushed_at, "by": p.pushed_by, "devices": [],
            "body": json.dumps(p.body, ensure_ascii=False, sort_keys=True)})
        line["devices"].append(p.device_id)
    return list(grouped.values())[:limit]


def _targets(rows: list[fleet.DeviceRow], c: Console, asking: Who) -> list[tuple[str, str]]:
    """The push form's choices, as (value, label): a whole site, a location, one device."""
    places: dict[str, dict[str, set[str]]] = {}
    for sid, described in c.org().sites.items():
        if asking.user.sees(sid):
            for loc in described.locations:
                places.setdefault(sid, {}).setdefault(loc, set())
    for r in rows:
        places.setdefault(r.site, {}).setdefault(r.location or "", set()).add(r.device)
    out: list[tuple[str, str]] = []
    for sid in sorted(places):
        out.append((sid, sid))
        for loc in sorted(places[sid]):
            if loc:
                out.append((f"{sid}/{loc}", f"{sid} / {loc}"))
            out += [(f"{sid}/{loc}/{d}", f"{sid} / {loc or '?'} / {d}") for d in sorted(places[sid][loc])]
    return out


def _page(request: Request, site: str | None, state: str | None, status_code: int = 200,
          **extra: Any) -> Response:
    asking, c = who(request), console(request)
    rows = _visible_rows(c, asking, site, state)
    all_rows = rows if site is None and state is None else _visible_rows(c, asking, None, None)
    sites = sorted({r.site for r in all_rows} | {s for s in c.org().sites if asking.user.sees(s)}
                   | set(asking.user.sites))
    counts = {s: sum(1 for r in rows if r.state == s) for s in fleet.STATES}
    context: dict[str, Any] = {
        "nav": "fleet", "rows": rows, "sites": sites, "counts": counts, "states": fleet.STATES,
        "args": {"site": site or "", "state": state or ""}, "state_class": STATE_CLASS,
        "pushes": _pushes(c, asking, site), "may_push": asking.user.is_admin, "weekdays": WEEKDAYS,
        "scales": list(SCALES), "targets": _targets(all_rows, c, asking) if asking.user.is_admin else [],
        "form": {}, "push_error": None, "preview": None, "pushed": None, **extra}
    if asking.user.is_admin:
        try:
            settings = broker_settings()
            context["broker"] = settings.redacted() if settings else None
        except (ValueError, PublishFailed) as e:
            context["broker"], context["broker_problem"] = None, str(e)
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "fleet-list":
        return render(request, "fragments/fleet_list.html", status_code=status_code, **context)
    return render(request, "fleet.html", status_code=status_code, **context)


@router.get("/fleet")
def fleet_page(request: Request, site: str = "", state: str = "", pushed: int = 0, devices: int = 0) -> Response:
    """Every device of the user's sites; silent and offline ones stand out."""
    who(request)
    done = {"version": pushed, "devices": devices} if pushed > 0 else None
    return _page(request, site or None, state or None, pushed=done)


def _target(text: str) -> tuple[str, str | None, str | None]:
    """``site``, ``site/location``, ``site/location/device`` (``site//device``: a device without location)."""
    parts = text.strip().split("/")
    if not text.strip() or len(parts) > 3:
        raise FleetError("choose where to push: a site, a location or a device")
    for what, value in zip(("site", "location", "device"), parts, strict=False):
        if value and (problem := id_problem(value, what)):
            raise FleetError(problem)
    site, location, device = [*parts, "", ""][:3]
    return site, location or None, device or None


def _seconds(value: str, key: str) -> float | None:
    if not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise FleetError(f"{key}: {value.strip()[:40]!r} is not a number of seconds") from None


def _tables(form: Mapping[str, str], pin: str, pin_again: str) -> dict[str, Any]:
    """The push's tables from the form, through the same builder as ``smileloop fleet push``."""
    if pin != pin_again:
        raise FleetError("staff PIN: the two entries differ")
    questions = tuple(line.strip() for line in form["question"].splitlines() if line.strip())
    hours = tuple(f"{day}={form[day].strip()}" for day in WEEKDAYS if form[day].strip())
    return build_tables(
        question=questions, scale=form["scale"].strip() or None,
        reasons_negative=form["reasons_negative"] or None, reasons_positive=form["reasons_positive"] or None,
        languages=form["languages"] or None, hours=hours, timezone=form["timezone"].strip() or None,
        idle_reset=_seconds(form["idle_reset"], "survey.idle_reset"),
        response_interval=_seconds(form["response_interval"], "survey.response_interval"),
        pin_hash=hash_pin(pin) if pin else None)


Field = Annotated[str, Form(max_length=2000)]


@router.post("/fleet/push")
def push(request: Request, asking: Annotated[Who, Depends(check_csrf)], target: Field = "", question: Field = "",
         scale: Field = "", languages: Field = "", reasons_negative: Field = "", reasons_positive: Field = "",
         timezone: Field = "", idle_reset: Field = "", response_interval: Field = "", mon: Field = "",
         tue: Field = "", wed: Field = "", thu: Field = "", fri: Field = "", sat: Field = "", sun: Field = "",
         pin: Field = "", pin_again: Field = "", do: Field = "push") -> Response:
    """Check (``do=check``: shows what would be sent) or push. A setting the device would refuse is shown with
    the device's own message and nothing is kept or sent; a kept push the broker refused says so."""
    if not asking.user.is_admin:
        raise AccessDenied(f"{asking.user.name} ({asking.user.role}) may not push settings to devices")
    c = console(request)
    form = dict(zip(PUSH_FIELDS, (target, question, scale, languages, reasons_negative, reasons_positive, timezone,
                                  idle_reset, response_interval, mon, tue, wed, thu, fri, sat, sun), strict=True))
    site: str | None = None
    try:
        site, location, device = _target(target)
        if not asking.user.sees(site):
            raise AccessDenied(f"{asking.user.name} may not push to site {site!r}")
        plan = fleet.plan_push(c.store, c.org(), _tables(form, pin, pin_again), site, location, device)
        if do == "check":
            return _page(request, site, None, form=form, preview={  # one payload, the same for every device
                "version": plan.version, "devices": plan.devices,
                "json": json.dumps(json.loads(plan.payload()), indent=2, ensure_ascii=False)})
        settings = broker_settings()
        if settings is None:
            raise FleetError("the console has no broker configured (set SMILELOOP_BROKER where it runs); "
                             "nothing was kept or sent")
    except (ValueError, PublishFailed) as e:  # user mistakes (FleetError, ConfigError, PinError…), an unreadable
        # broker password file: nothing was kept or sent yet
        return _page(request, site if site and asking.user.sees(site) else None, None, status_code=400,
                     form=form, push_error=str(e))
    fleet.record(c.store, plan, c.clock.now(), asking.user.name)
    try:
        fleet.publish(settings, plan.messages(), client_id=f"smileloop-console-{uuid.uuid4().hex[:8]}",
                      timeout=5.0)
    except PublishFailed as e:
        return _page(request, site, None, status_code=503, form=form,
                     push_error=f"config version {plan.version} was kept but not sent: {e}")
    query = urlencode({"site": site, "pushed": plan.version, "devices": len(plan.devices)})
    return RedirectResponse(f"/fleet?{query}#pushes", status_code=303)
