"""Secrets never reach a screen or a log: URLs shown without their password or tokens.

A database URL keeps its host and database name (``postgresql://central:***@db:5432/smileloop``); a
notification URL (apprise) keeps only its scheme and host, since its path and query often *are* the token
(``tgram://<bot token>/<chat>``, ``json://host/hook?key=…``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

_DATABASES = ("postgresql", "postgres")


def redact_url(url: str) -> str:
    """``url`` fit to print; a plain path (a SQLite file) is returned as it is."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return url.split("://", 1)[0] + "://…"
    user = f"{parts.username}:***@" if parts.password else (f"{parts.username}@" if parts.username else "")
    rest = parts.path if parts.scheme in _DATABASES else ("/…" if parts.path.strip("/") or parts.query else "")
    return f"{parts.scheme}://{user}{host}{port}{rest}"


def secrets_of(url: str) -> list[str]:
    """The parts of ``url`` that may be secret (password, path segments, query values), longest first."""
    if "://" not in url:
        return []
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return [url]
    found = [password or ""]
    if parts.scheme not in _DATABASES:
        found += [seg for seg in parts.path.split("/") if len(seg) >= 4]
        found += [kv.split("=", 1)[-1] for kv in parts.query.split("&") if len(kv.split("=", 1)[-1]) >= 4]
    return sorted({s for s in found if s}, key=len, reverse=True)


def scrub(text: str, *urls: str) -> str:
    """``text`` (an error message, a log line) with every secret part of ``urls`` replaced by ``***``."""
    for url in urls:
        text = text.replace(url, redact_url(url))
        for secret in secrets_of(url):
            text = text.replace(secret, "***")
    return text
