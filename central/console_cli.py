"""``smileloop console`` (serve the web console) and ``smileloop users`` (its accounts): thin click layers over
:mod:`central.console` and :mod:`central.accounts`."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import click

from central.accounts import ROLES, Accounts
from central.cli_options import db_options, db_options_creating, echo_json, json_option
from central.errors import AccountError
from central.store import CentralStore


@click.group("users")
def users_cmd() -> None:
    """Console accounts: add (or change) a user, make an API token, list, disable.

    \b
    Example:
        smileloop users add anna --role manager --site store-042 --password-file anna.pass
        smileloop users add cx-lead --role admin --password-file lead.pass
        smileloop users token anna --label "BI export"
    """


@users_cmd.command("add")
@db_options_creating
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="admin: everything; manager: sees and acts on --site only; viewer: reads only.")
@click.option("--site", "sites", multiple=True, help="A site the user may see (repeat for several).")
@click.option("--password-file", type=click.Path(dir_okay=False, allow_dash=True), required=True,
              help="A file whose first line is the password ('-': standard input). Never on the command line.")
@click.option("--language", type=click.Choice(["en", "sv"]), help="The console's language for this user.")
def users_add(store: CentralStore, name: str, role: str, sites: tuple[str, ...], password_file: str,
              language: str | None) -> None:
    """Add a user, or change an existing one's role, sites and password (their failed logins are forgiven)."""
    password = _read_password(password_file)
    created = Accounts(store).add_user(name, role, password, sites=sites, language=language)
    where = f" for {', '.join(sites)}" if sites else ""
    click.echo(f"{'added' if created else 'updated'} {name} ({role}{where})")


@users_cmd.command("token")
@db_options
@click.argument("name")
@click.option("--label", help="What the token is for (shown in the list).")
def users_token(store: CentralStore, name: str, label: str | None) -> None:
    """Make an API token for NAME: printed once, only its hash is kept. Send it as 'Authorization: Bearer …'."""
    click.echo(Accounts(store).new_token(name, label))


@users_cmd.command("list")
@db_options
@json_option
def users_list(store: CentralStore, as_json: bool) -> None:
    """Every user with role and sites (never a hash)."""
    users = Accounts(store).users()
    if as_json:
        echo_json([{"name": u.name, "role": u.role, "sites": list(u.sites), "language": u.language} for u in users])
        return
    for u in users:
        click.echo(f"{u.name:<20} {u.role:<8} {', '.join(u.sites) or '(all sites)'}")


@users_cmd.command("disable")
@db_options
@click.argument("name")
def users_disable(store: CentralStore, name: str) -> None:
    """NAME can no longer log in; their sessions and API tokens end now."""
    if not Accounts(store).rows.disable(name):
        raise AccountError(f"no user {name!r}")
    click.echo(f"disabled {name}")


@click.command("console")
@db_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8400, show_default=True, type=click.IntRange(1, 65535))
@click.option("--public-url", envvar="SMILELOOP_CONSOLE_URL", help="How people reach it (for links), e.g. "
              "https://feedback.example.com.")
@click.option("--cert-file", type=click.Path(exists=True, dir_okay=False), help="Serve HTTPS with this certificate.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False), help="… and this key.")
@click.option("--secure-cookies/--no-secure-cookies", default=None,
              help="Mark cookies Secure (HTTPS only). Default: on, except for plain HTTP on a loopback address.")
def console_cmd(store: CentralStore, host: str, port: int, public_url: str | None, cert_file: str | None,
                key_file: str | None, secure_cookies: bool | None) -> None:
    """Serve the web console over central's store: live alerts, dashboards, fleet, organisation.

    \b
    Example:
        smileloop users add admin --role admin --password-file admin.pass
        smileloop console --db central.db --host 0.0.0.0 --port 8443 --cert-file console.crt --key-file console.key
    """
    import uvicorn

    from central.console import create_app

    if bool(cert_file) != bool(key_file):
        raise AccountError("give both --cert-file and --key-file, or neither")
    if secure_cookies is None:
        secure_cookies = bool(cert_file) or not _loopback(host)
    app = create_app(store, secure_cookies=secure_cookies, public_url=public_url)
    scheme = "https" if cert_file else "http"
    click.echo(f"console on {scheme}://{host}:{port}/ (log in with a user from 'smileloop users add')", err=True)
    uvicorn.run(app, host=host, port=port, ssl_certfile=cert_file, ssl_keyfile=key_file, log_level="warning",
                proxy_headers=False, timeout_graceful_shutdown=2)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _read_password(path: str) -> str:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AccountError(f"--password-file {path}: cannot read it ({e.__class__.__name__})") from None
    lines = text.splitlines()
    return lines[0] if lines else ""
