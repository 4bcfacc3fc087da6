"""Property-based runs over the console's JSON API, from its own OpenAPI description (schemathesis).

The schema is loaded from ``/api/openapi.json`` with an admin's bearer token (it is not public), and every
operation it describes is called with generated parameters and bodies on a store holding alerts of two sites.
No answer may be a server error. Each generated case is sent twice: as generated, and with its ``alert_id``
(when it has one) replaced by a real alert's id, so the generated bodies reach the lifecycle code and not only
the 404 path. Valid and invalid cases are generated (schemathesis' positive and negative modes). Bounded:
``MAX_EXAMPLES`` cases per operation, no deadline (two shared cores), derandomized so a run is repeatable.

Why one test looping over the operations with ``operation.as_strategy()`` and ``@given`` rather than
``@schema.parametrize()``: the schema needs a store and a token, i.e. fixtures, and schemathesis 4.32's
``schemathesis.pytest.from_fixture`` fails under pytest 9.2 (``'Function' object has no attribute '_nodeid'`` in
``schemathesis/pytest/lazy.py``). The loop still runs every operation the schema describes (new ones included) and
reports each that failed.
"""

from __future__ import annotations

import collections
import itertools
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup, ServerError
from schemathesis.generation import GenerationMode

from central.accounts import Accounts
from central.records import Candidate
from central.store import CentralStore
from smileloop_core.clock import FakeClock

MAX_EXAMPLES = 30
EXPECTED = {("GET", "/api/alerts"), ("GET", "/api/alerts/{alert_id}"), ("POST", "/api/alerts/{alert_id}/ack"),
            ("POST", "/api/alerts/{alert_id}/assign"), ("POST", "/api/alerts/{alert_id}/resolve"),
            ("POST", "/api/alerts/{alert_id}/reopen")}


class Api:
    """What a fuzzed call needs: the bearer header and the ids of real alerts, taken in turn."""

    def __init__(self, token: str, alert_ids: list[str]) -> None:
        self.headers = {"Authorization": f"Bearer {token}"}
        self.ids = itertools.cycle(alert_ids)


def _seed(store: CentralStore, clock: FakeClock) -> list[str]:
    ids = []
    for i, (site, location) in enumerate([("store-1", "exit"), ("store-1", "cafe"), ("store-2", "door")] * 3):
        c = Candidate(kind="negative_rating" if i % 2 else "negative_share", site=site, location=location,
                      group_key=f"{site}/{location}/{i}", title=f"Alert {i} at {site}/{location}",
                      detail={"value": 1, "reason": "waiting_time"})
        ids.append(str(store.open_alert(c, clock.now()).alert["id"]))
        clock.advance(600)
    return ids


@pytest.fixture
def api(console_store: CentralStore, clock: FakeClock) -> Api:
    ids = _seed(console_store, clock)
    return Api(Accounts(console_store, clock=clock).new_token("admin", "fuzz"), ids)


def test_no_operation_answers_a_server_error(app: Any, api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, headers=api.headers)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {(op.method.upper(), op.path) for op in operations} >= EXPECTED
    failures: list[str] = []
    answers: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    for op in operations:
        try:
            _fuzz(op, api, answers[op.method.upper(), op.path])
        except Exception as e:  # every operation is run; the report names each that failed
            failures.append(f"{op.method.upper()} {op.path}: {type(e).__name__}: {str(e)[:2000]}")
    assert not failures, "\n\n".join(failures)
    # the run reached the code, not only the validation: real alerts read and changed, bad input refused
    print({f"{m} {p}": collections.Counter(v) for (m, p), v in answers.items()})
    assert all(len(v) >= 10 for v in answers.values()), {k: len(v) for k, v in answers.items()}
    assert 200 in answers["GET", "/api/alerts/{alert_id}"] and 200 in answers["POST", "/api/alerts/{alert_id}/resolve"]
    assert 404 in answers["GET", "/api/alerts/{alert_id}"] and 422 in answers["POST", "/api/alerts/{alert_id}/resolve"]


def _fuzz(op: Any, api: Api, statuses: list[int]) -> None:
    """``MAX_EXAMPLES`` cases of one operation, valid and invalid; each also sent for a real alert."""

    @given(case=st.one_of(op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        statuses.append(case.call_and_validate(headers=api.headers, checks=[not_a_server_error]).status_code)
        if "alert_id" in (case.path_parameters or {}):
            case.path_parameters = {**case.path_parameters, "alert_id": next(api.ids)}
            statuses.append(case.call_and_validate(headers=api.headers, checks=[not_a_server_error]).status_code)

    run()


def test_the_schema_needs_a_login_and_describes_the_alert_api(app, api):
    with TestClient(app) as c:
        assert c.get("/api/openapi.json").status_code == 401
        spec = c.get("/api/openapi.json", headers=api.headers).json()
    operations = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert operations >= EXPECTED, EXPECTED - operations
    assert all(p.startswith("/api/") for _, p in operations), "a page leaked into the API description"


def test_the_fuzz_check_would_catch_a_server_error(app, api):
    """The check is live: an app that fails on one operation is reported (a guard against a run that checks
    nothing, e.g. if schemathesis stopped calling the app)."""

    broken = FastAPI(openapi_url="/openapi.json")

    @broken.get("/boom")
    def boom(n: int = 0) -> JSONResponse:
        return JSONResponse({"error": "boom"}, status_code=500 if n == 1 else 200)

    loaded = schemathesis.openapi.from_asgi("/openapi.json", broken)
    [op] = [r.ok() for r in loaded.get_all_operations()]  # type: ignore[union-attr]
    case = op.Case(query={"n": 1})
    op.Case(query={"n": 0}).call_and_validate(checks=[not_a_server_error])
    with pytest.raises((ServerError, FailureGroup)) as failed:
        case.call_and_validate(checks=[not_a_server_error])
    found = failed.value.exceptions if isinstance(failed.value, FailureGroup) else [failed.value]
    assert any(isinstance(f, ServerError) for f in found)
