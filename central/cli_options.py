"""What central's commands share: ``--db``/``--schema`` opened into a store, ``--json``, TOML files, the org tree."""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from central.errors import OrgError
from central.org import Org
from central.store import CentralStore


def db_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--db`` (SQLite file or postgresql:// URL) and ``--schema``, opened into a ``store`` argument; a SQLite
    file that does not exist is an error (exit 2), not a new empty store."""
    return _db_options(fn, create=False)


def db_options_creating(fn: Callable[..., Any]) -> Callable[..., Any]:
    """:func:`db_options` for the commands that set a store up (``org load``, ``rules load``): they create it."""
    return _db_options(fn, create=True)


def _db_options(fn: Callable[..., Any], *, create: bool) -> Callable[..., Any]:
    @click.option("--db", "db_target", default="central.db", show_default=True, envvar="SMILELOOP_CENTRAL_DB",
                  help="SQLite file, or a postgresql:// URL (env SMILELOOP_CENTRAL_DB).")
    @click.option("--schema", envvar="SMILELOOP_CENTRAL_SCHEMA", help="PostgreSQL schema (default: the URL's).")
    @functools.wraps(fn)
    def wrapper(db_target: str, schema: str | None, **kwargs: Any) -> Any:
        store = CentralStore(db_target, schema=schema, create=create)
        try:
            return fn(store=store, **kwargs)
        finally:
            store.close()
    return wrapper


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(fn)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def load_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise OrgError(f"{path}: not valid TOML: {e}") from None


def org_of(store: CentralStore) -> Org:
    return Org.from_dict(store.document("org")[0])


def checked_org(doc: dict[str, Any]) -> dict[str, Any]:
    Org.from_dict(doc)
    return doc
