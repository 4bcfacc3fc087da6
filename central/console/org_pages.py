"""The organisation page: sites (time zone, hours, language), locations, devices with their lifecycle state,
contacts (never their URLs: they hold tokens), the rule settings and the org audit — and, for admins, one change
at a time through :class:`central.org_admin.OrgAdmin`, so each is validated, versioned and audited with the
logged-in user's name exactly as the ``smileloop org`` and ``smileloop rules`` commands do.

A manager or viewer sees only their sites (and the org-wide contacts and rules); changes are admin-only.
"""

from __future__ import annotations

import json
import tomllib
from typing import Annotated, Any
from urllib.parse import urlencode

import tomli_w
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from central.console.deps import Console, Who, check_csrf, console, render, require_admin, who
from central.errors import OrgError, RuleError
from central.org import Org
from central.org_admin import LIFECYCLE, OrgAdmin
from central.rulebook import COMMON, RULES, validate_rules
from smileloop_core.hours import WEEKDAYS, HoursError
from smileloop_core.i18n import available_languages

router = APIRouter(include_in_schema=False)
AUDIT_SHOWN = 50
Field = Annotated[str, Form(max_length=200)]
Long = Annotated[str, Form(max_length=100_000)]
Admin = Annotated[Who, Depends(check_csrf)]


def _hours_text(org: Org, site: str) -> dict[str, str]:
    """Each weekday as the form writes it: spans, ``closed``, or "" for a day not listed (open all day)."""
    weekly = org.site(site).hours.weekly
    return {d: (",".join(f"{a}-{b}" for a, b in weekly[d]) or "closed") if d in weekly else "" for d in WEEKDAYS}


def _sites(org: Org, asking: Who) -> list[dict[str, Any]]:
    """The user's sites; contacts as :meth:`Org.summary` shows them (a channel count, never a URL)."""
    summary = org.summary()["sites"]
    out = []
    for sid in sorted(s for s in org.sites if asking.user.sees(s)):
        site, shown = org.sites[sid], summary[sid]
        locations = [{"id": lid, "name": loc["name"], "contacts": loc["contacts"],
                      "devices": [(d, org.state_of(sid, d) or "") for d in loc["devices"]]}
                     for lid, loc in sorted(shown["locations"].items())]
        out.append({"id": sid, "name": site.name, "timezone": site.hours.timezone, "language": site.language,
                    "hours": _hours_text(org, sid), "contacts": shown["contacts"],
                    "locations": locations})
    return out


def _devices(org: Org, asking: Who) -> list[dict[str, str]]:
    """Every device the organisation knows at the user's sites (retired ones too: they left their location)."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for key, state in org.lifecycle.items():
        site, _, device = key.partition("/")
        found[(site, device)] = {"site": site, "device": device, "state": state,
                                 "location": org.location_of(site, device) or ""}
    for sid, described in org.sites.items():
        for lid, loc in described.locations.items():
            for d in loc.devices:
                found.setdefault((sid, d), {"site": sid, "device": d, "state": "", "location": lid})
    return [row for key, row in sorted(found.items()) if asking.user.sees(key[0])]


def _audit_site(target: str) -> str | None:
    """The site an org audit entry is about (None: org-wide), from its target: ``site``, ``site/location``,
    ``site/device``, ``scope:contact``, ``org``, ``rules``."""
    site = target.partition(":")[0].partition("/")[0]
    return None if site in ("org", "rules", "") else site


def _audit(c: Console, asking: Who) -> list[dict[str, Any]]:
    rows = c.store.org_audit_entries(AUDIT_SHOWN * 4 if asking.user.scope() is not None else AUDIT_SHOWN)
    seen = [r for r in rows if (site := _audit_site(str(r["target"]))) is None or asking.user.sees(site)]
    return seen[:AUDIT_SHOWN]


def _rules_text(c: Console) -> str:
    doc = c.store.document("rules")[0]
    return tomli_w.dumps(doc) if doc else ""


def _page(request: Request, status_code: int = 200, **extra: Any) -> Response:
    asking, c = who(request), console(request)
    org = c.org()
    sites = _sites(org, asking)
    scopes = ["org"] + [s["id"] for s in sites] + [f"{s['id']}/{loc['id']}" for s in sites for loc in s["locations"]]
    context: dict[str, Any] = {
        "nav": "org", "org_name": org.name, "org_contacts": org.summary()["contacts"], "sites": sites,
        "devices": _devices(org, asking), "audit": _audit(c, asking), "rules_text": _rules_text(c),
        "rules": [(r, RULES[r].severity, RULES[r].summary, {**COMMON, **RULES[r].defaults}) for r in RULES],
        "may_edit": asking.user.is_admin, "lifecycle": LIFECYCLE, "weekdays": WEEKDAYS, "scopes": scopes,
        "languages_available": available_languages(), "failed": None, "error": None, "values": {},
        "saved": request.query_params.get("saved"), "version": request.query_params.get("version"), **extra}
    return render(request, "org.html", status_code=status_code, **context)


@router.get("/org")
def org_page(request: Request) -> Response:
    """The organisation as the user may see it; the admin's forms beside it."""
    who(request)
    return _page(request)


def _admin(request: Request, asking: Who) -> OrgAdmin:
    require_admin(asking)
    c = console(request)
    return OrgAdmin(c.store, actor=asking.user.name, clock=c.clock)


def _saved(what: str, version: int, anchor: str) -> Response:
    return RedirectResponse(f"/org?{urlencode({'saved': what, 'version': version})}#{anchor}", status_code=303)


def _refused(request: Request, failed: str, error: Exception, values: dict[str, str]) -> Response:
    """The page again with the reason beside the form that failed, its values kept; nothing was changed."""
    return _page(request, status_code=400, failed=failed, error=str(error), values=values)


@router.post("/org/sites")
def add_site(request: Request, asking: Admin, site: Field = "", name: Field = "", timezone: Field = "UTC",
             language: Field = "") -> Response:
    """A new site, or a site's name, time zone and language (its opening hours are kept)."""
    admin = _admin(request, asking)
    values = {"site": site, "name": name, "timezone": timezone, "language": language}
    try:
        site, timezone = site.strip(), timezone.strip() or "UTC"
        if language and language not in available_languages():
            raise OrgError(f"language {language!r} is not one of {', '.join(available_languages())}")
        kept = admin.document().get("sites", {}).get(site, {}).get("hours")
        # the hours table's own "timezone" would win over the new one: keep the days only
        hours = {k: v for k, v in kept.items() if k != "timezone"} if isinstance(kept, dict) else None
        version = admin.add_site(site, name=name.strip() or None, timezone=timezone, hours=hours,
                                 language=language or None)
    except ValueError as e:
        return _refused(request, "site", e, values)
    return _saved("org", version, f"site-{site}")


@router.post("/org/sites/{site}/hours")
def set_hours(request: Request, site: str, asking: Admin, mon: Field = "", tue: Field = "", wed: Field = "",
              thu: Field = "", fri: Field = "", sat: Field = "", sun: Field = "") -> Response:
    """A site's opening hours, per weekday: spans (``08:00-20:00``, ``10:00-12:00,13:00-16:00``), ``closed``,
    or empty for open all day."""
    admin = _admin(request, asking)
    values = dict(zip(WEEKDAYS, (mon, tue, wed, thu, fri, sat, sun), strict=True))
    hours: dict[str, Any] = {}
    for day, text in values.items():
        spans = [s.strip() for s in text.split(",") if s.strip()]
        if spans:
            hours[day] = spans[0] if len(spans) == 1 else spans
    try:
        # OrgAdmin.set_hours replaces the table; the site's zone may live in it (org load), so carry it over
        hours["timezone"] = admin.org().site(site).hours.timezone
        version = admin.set_hours(site, hours)
    except HoursError as e:
        return _refused(request, f"hours:{site}", OrgError(f"sites.{site}.hours.{e.key}: {e.problem}"), values)
    except ValueError as e:
        return _refused(request, f"hours:{site}", e, values)
    return _saved("org", version, f"site-{site}")


@router.post("/org/locations")
def add_location(request: Request, asking: Admin, site: Field = "", location: Field = "",
                 name: Field = "") -> Response:
    admin = _admin(request, asking)
    values = {"site": site, "location": location, "name": name}
    try:
        version = admin.add_location(site, location.strip(), name=name.strip() or None)
    except ValueError as e:
        return _refused(request, f"location:{site}", e, values)
    return _saved("org", version, f"site-{site}")


@router.post("/org/contacts")
def add_contact(request: Request, asking: Admin, scope: Field = "org", name: Field = "",
                urls: Annotated[str, Form(max_length=20_000)] = "", digest: Field = "0",
                quiet: Field = "") -> Response:
    """Someone to tell at the org, a site or a location (a contact of that name there is replaced). The URLs
    are never shown again: they hold tokens."""
    admin = _admin(request, asking)
    values = {"scope": scope, "name": name, "digest": digest, "quiet": quiet}  # never the URLs back
    try:
        found = [line.strip() for line in urls.splitlines() if line.strip() and not line.startswith("#")]
        try:
            minutes = int(digest.strip() or "0")
        except ValueError:
            raise OrgError(f"digest: {digest[:20]!r} is not a whole number of minutes") from None
        version = admin.add_contact(scope, name.strip(), found, digest=minutes, quiet=quiet.strip() or None)
    except ValueError as e:
        return _refused(request, "contact", e, values)
    return _saved("org", version, "contacts")


@router.post("/org/devices/state")
def device_state(request: Request, asking: Admin, site: Field = "", device: Field = "",
                 state: Field = "") -> Response:
    """provisioned → active → inactive → retired (a retired device leaves its location and the push targets)."""
    admin = _admin(request, asking)
    try:
        org = admin.org()
        where = org.location_of(site, device)
        if org.state_of(site, device) is None and where is not None:  # listed at a location, never registered
            version = admin.add_device(site, where, device, state=state)
        else:
            version = admin.set_device_state(site, device, state)
    except ValueError as e:
        return _refused(request, f"device:{site}/{device}", e, {"state": state})
    return _saved("org", version, "devices")


def parse_rules(text: str) -> dict[str, Any]:
    """A rules document as TOML (the file ``smileloop rules load`` reads) or JSON, checked by the same
    :func:`validate_rules`; the error names the scope, rule and key."""
    stripped = text.strip()
    try:
        doc = json.loads(stripped) if stripped.startswith("{") else tomllib.loads(text)
    except json.JSONDecodeError as e:
        raise RuleError(f"rules: not valid JSON: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise RuleError(f"rules: not valid TOML: {e}") from None
    return validate_rules(doc)


@router.post("/org/rules")
def set_rules(request: Request, asking: Admin, rules: Long = "") -> Response:
    """Replace the rule settings (like ``smileloop rules load``); audited like the organisation."""
    admin = _admin(request, asking)
    try:
        version = admin.set_rules(parse_rules(rules))
    except ValueError as e:
        return _refused(request, "rules", e, {"rules": rules})
    return _saved("rules", version, "rules")
