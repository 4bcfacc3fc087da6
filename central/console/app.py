"""The console's app: routes, static files, security headers, and one answer per kind of error.

``create_app(store)`` serves a store that central fills; the console only reads it and makes the changes
people make (lifecycle steps, assignments, org edits, config pushes), each through the same library calls as
the CLI, each audited with the logged-in user's name.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central.accounts import Accounts
from central.console import alert_pages, api, api_data, auth_pages, dashboard_pages, fleet_pages, org_pages
from central.console.deps import HERE, Console, CsrfFailed, NeedLogin, render, who
from central.errors import AccessDenied, AlertNotFound, CentralError, LoginRefused
from central.store import CentralStore
from smileloop_core.clock import Clock, SystemClock

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def create_app(store: CentralStore, *, clock: Clock | None = None, secure_cookies: bool = True,
               public_url: str | None = None) -> FastAPI:
    """The console over ``store``. ``secure_cookies=False`` only for plain HTTP on a loopback address (the demo)."""
    clock = clock or SystemClock()
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.autoescape = True
    app = FastAPI(title="smileloop console API", version="1", openapi_url=None, docs_url=None,
                  redoc_url=None, description="Alerts, ratings and aggregates of the smileloop central store. "
                  "Log in at /login (session cookie) or send `Authorization: Bearer <token>` "
                  "(`smileloop users token NAME`). Every answer is limited to the caller's sites.")
    app.state.console = Console(store, Accounts(store, clock=clock), clock, templates, secure_cookies, public_url)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (auth_pages, alert_pages, api, api_data, dashboard_pages, fleet_pages, org_pages):
        app.include_router(module.router)

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi(request: Request) -> JSONResponse:
        """The API's OpenAPI description, for logged-in users and tokens only (like everything but /login)."""
        who(request)
        return JSONResponse(app.openapi())

    app.add_middleware(SecurityHeaders)
    _handlers(app)
    return app


class SecurityHeaders:
    """Security headers on every answer. A plain ASGI middleware (not Starlette's BaseHTTPMiddleware), so the
    live stream is passed through untouched and ends cleanly when the server stops."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        secure = scope["app"].state.console.secure_cookies if "app" in scope else True

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS:
                    headers.setdefault(name, value)
                if not path.startswith("/static/"):
                    headers.setdefault("Cache-Control", "no-store")
                if secure:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, with_headers)


_HEADERS = (("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "same-origin"), ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"))


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error(request: Request, status: int, reason: str) -> Response:
    if _is_api(request):
        return JSONResponse({"error": reason, "status": status}, status_code=status)
    if request.headers.get("hx-request"):  # an htmx action: show the reason where the result would go
        response = render(request, "fragments/error.html", status_code=200, reason=reason, status=status)
        response.headers["HX-Retarget"] = "#action-result"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return render(request, "error.html", status_code=status, reason=reason, status=status)


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, exc: NeedLogin) -> Response:
        if _is_api(request) or request.url.path.endswith((".csv", "/stream")):
            return JSONResponse({"error": str(exc) or "log in first", "status": 401}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
        if request.headers.get("hx-request"):
            response.headers["HX-Redirect"] = "/login"
        return response

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        return _error(request, 403, str(exc))

    @app.exception_handler(LoginRefused)
    async def login_refused(request: Request, exc: LoginRefused) -> Response:
        return _error(request, 429 if exc.retry_after else 401, str(exc))

    @app.exception_handler(AccessDenied)
    async def denied(request: Request, exc: AccessDenied) -> Response:
        return _error(request, 403, str(exc))

    @app.exception_handler(AlertNotFound)
    async def not_found(request: Request, exc: AlertNotFound) -> Response:
        return _error(request, 404, str(exc))

    @app.exception_handler(CentralError)
    async def refused(request: Request, exc: CentralError) -> Response:
        return _error(request, 400 if isinstance(exc, ValueError) else 503, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return _error(request, 422, problems or "invalid request")


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/?=&")
