"""The benchmark runner's smallest configuration, end to end, so ``python -m bench`` cannot rot unnoticed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.runner import run_suite, save
from bench.stats import percentile, quantiles, ratios

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_percentiles_interpolate_and_ratios_pair_repeats() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert quantiles([1.0, 3.0], points=3) == [1.0, 2.0, 3.0]
    assert ratios([2.0, 9.0], [1.0, 3.0]) == [2.0, 3.0]


def test_smoke_suite_runs_every_benchmark_and_writes_results(tmp_path: Path) -> None:
    results = run_suite("smoke", workdir=tmp_path, log=lambda _: None)
    errors = {k: v["error"] for k, v in results.items() if isinstance(v, dict) and "error" in v}
    assert not errors, errors
    assert results["tap"]["raw_ms"]["n"] == results["tap"]["recorder_ms"]["n"] > 0
    drain = results["drain"]
    assert drain["lost"] == 0 and drain["duplicated"] == 0 and drain["drain_rps"] > 0
    assert drain["bare_rps"] > 0 and drain["vs_bare"] > 0 and drain["fresh_rps"] > 0  # the baseline ran too
    assert results["alert"]["webhook_ms"]["n"] == 3
    for run in ("single", "fleet1", "fleet2"):
        assert results["fleet"][run]["lost"] == 0 and results["fleet"][run]["duplicated"] == 0
    assert results["ingest"]["sqlite"]["central_rps"] > 0
    assert results["ingest"]["sqlite_burst"]["vs_raw"] > 0
    assert results["fleet"]["fleet2_vs_fleet1"] > 0

    written = save(results, tmp_path / "out", tmp_path / "plots", tmp_path / "BENCHMARKS.md")
    names = {p.name for p in written}
    assert {"smoke.json", "smoke.md", "tap.png", "fleet.png", "BENCHMARKS.md"} <= names
    assert json.loads((tmp_path / "out" / "smoke.json").read_text())["mode"] == "smoke"
    doc = (tmp_path / "BENCHMARKS.md").read_text()
    assert "Tap to durable" in doc and "<!-- bench:results:end -->" in doc
