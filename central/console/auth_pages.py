"""Logging in and out, and the language a user picks (kept with their account)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from central.console.deps import COOKIE, CsrfFailed, Who, check_csrf, console, render, who
from central.errors import LoginRefused
from smileloop_core.i18n import available_languages

router = APIRouter(include_in_schema=False)
LOGIN_CSRF = "smileloop_login_csrf"  # double-submit token: the login form has no session yet


@router.get("/login")
def login_page(request: Request, next: str = "/alerts") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", csrf=token, next=_local(next), error=None)
    response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", secure=console(request).secure_cookies,
                        max_age=3600, path="/login")
    return response


@router.post("/login")
def login(request: Request, username: Annotated[str, Form(max_length=200)] = "",
          password: Annotated[str, Form(max_length=2048)] = "", csrf_token: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/alerts") -> Response:
    expected = request.cookies.get(LOGIN_CSRF, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        raise CsrfFailed("the login form's security token is missing or old; reload the page and try again")
    c = console(request)
    source = request.client.host if request.client else "unknown"
    try:
        session = c.accounts.login(username.strip().lower(), password, source)
    except LoginRefused as e:
        status = 429 if e.retry_after else 401
        refused = render(request, "login.html", status_code=status, csrf=expected, next=_local(next), error=str(e),
                          username=username[:64])
        if e.retry_after:
            refused.headers["Retry-After"] = str(int(e.retry_after) + 1)
        return refused
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(COOKIE, session.cookie, httponly=True, samesite="lax", secure=c.secure_cookies,
                        max_age=int((session.expires_at - c.clock.now()).total_seconds()), path="/")
    response.delete_cookie(LOGIN_CSRF, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, _who: Annotated[Who, Depends(check_csrf)]) -> Response:
    console(request).accounts.logout(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.post("/language")
def language(request: Request, asking: Annotated[Who, Depends(check_csrf)],
             lang: Annotated[str, Form(max_length=8)] = "en", next: Annotated[str, Form()] = "/alerts") -> Response:
    if lang in available_languages() and not asking.by_token:
        console(request).accounts.set_language(asking.user, lang)
    return RedirectResponse(_local(next), status_code=303)


@router.get("/")
def home(request: Request) -> Response:
    who(request)
    return RedirectResponse("/alerts", status_code=303)


def _local(path: str) -> str:
    """Only a path on this site: never another host after login."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path or len(path) > 500:
        return "/alerts"
    return path
