"""What every console route shares: the store, accounts, clock and templates (:class:`Console`); who is asking
(a session cookie or a bearer token: :func:`who`); the CSRF check on every form; rendering in the user's
language with times in the site's time zone."""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from central.accounts import Accounts, User
from central.errors import AccessDenied, OrgError
from central.org import Org
from central.store import CentralStore
from smileloop_core.clock import Clock, parse_utc
from smileloop_core.i18n import SOURCE_LANGUAGE, available_languages, language_name, translations

HERE = Path(__file__).parent
COOKIE = "smileloop_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class NeedLogin(Exception):
    """No session and no token: a page redirects to /login, the API answers 401."""


class CsrfFailed(Exception):
    """A form post without the session's CSRF token: 403."""


@dataclass
class Console:
    """One per app: ``request.app.state.console``."""

    store: CentralStore
    accounts: Accounts
    clock: Clock
    templates: Jinja2Templates
    secure_cookies: bool = True
    public_url: str | None = None
    _org: tuple[int, Org] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def org(self) -> Org:
        """The org tree, parsed again only when its version changes."""
        body, version = self.store.document("org")
        with self._lock:
            if self._org is None or self._org[0] != version:
                try:
                    self._org = (version, Org.from_dict(body))
                except OrgError:  # a tree central refuses too: show sites by id, in UTC
                    self._org = (version, Org())
            return self._org[1]

    def timezone(self, site: str | None) -> str:
        return self.org().site(site).hours.timezone if site else "UTC"


@dataclass(frozen=True)
class Who:
    """The person behind a request: their user, and their session's CSRF token (None for a bearer token)."""

    user: User
    csrf: str | None

    @property
    def by_token(self) -> bool:
        return self.csrf is None


def console(request: Request) -> Console:
    c: Console = request.app.state.console
    return c


def who(request: Request) -> Who:
    """The logged-in user of this request; :class:`NeedLogin` if none."""
    found: Who | None = getattr(request.state, "who", None)
    if found is not None:
        return found
    c = console(request)
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NeedLogin("use Authorization: Bearer <token>")
        found = Who(c.accounts.token_user(token.strip()), None)
    else:
        session = c.accounts.session(request.cookies.get(COOKIE))
        if session is None:
            raise NeedLogin("log in first")
        found = Who(session[0], session[1])
    request.state.who = found
    return found


async def check_csrf(request: Request) -> Who:
    """Who is asking, and for a change made with a session cookie, the CSRF token must come with it (the form
    field ``csrf_token`` or the ``X-CSRF-Token`` header htmx sends). A bearer token needs none: no cookie."""
    asking = who(request)
    if request.method in SAFE_METHODS or asking.csrf is None:
        return asking
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), asking.csrf.encode()):
        raise CsrfFailed("the form's security token is missing or old; reload the page and try again")
    return asking


def may_act(asking: Who, site: str | None) -> None:
    if not asking.user.may_act(site):
        raise AccessDenied(f"{asking.user.name} ({asking.user.role}) may not change alerts of site {site!r}")


def require_admin(asking: Who) -> None:
    if not asking.user.is_admin:
        raise AccessDenied(f"{asking.user.name} ({asking.user.role}) may not change the organisation")


def language_of(request: Request, user: User | None) -> str:
    """The user's choice, else the browser's first language we have, else English."""
    langs = available_languages()
    if user and user.language in langs:
        return str(user.language)
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in langs:
            return code
    return SOURCE_LANGUAGE


def local_time(c: Console, ts: str | None, site: str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time in the site's time zone ("" for none)."""
    if not ts:
        return ""
    try:
        when: datetime = parse_utc(ts)
        return when.astimezone(ZoneInfo(c.timezone(site))).strftime(fmt)
    except (ValueError, KeyError):
        return ts


def base_context(request: Request) -> dict[str, Any]:
    """What every template sees: ``user``, ``csrf``, ``_``/``ngettext`` in the user's language, ``lang``,
    ``local(ts, site)`` for a time in the site's zone."""
    c = console(request)
    asking: Who | None = getattr(request.state, "who", None)
    lang = language_of(request, asking.user if asking else None)
    t = translations(lang)
    return {"request": request, "user": asking.user if asking else None, "csrf": asking.csrf if asking else "",
            "_": t.gettext, "ngettext": t.ngettext, "lang": lang,
            "languages": [(code, language_name(code)) for code in available_languages()],
            "local": lambda ts, site, fmt="%Y-%m-%d %H:%M": local_time(c, ts, site, fmt), "nav": ""}


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page (or an htmx fragment) rendered in the user's language."""
    return console(request).templates.TemplateResponse(request, name, {**base_context(request), **context},
                                                       status_code=status_code)


def fragment(request: Request, name: str, **context: Any) -> str:
    """A template rendered to a string (a row for the live stream)."""
    template = console(request).templates.get_template(name)
    return str(template.render({**base_context(request), **context}))
