"""The accounting harness at a small size: real processes, every fault kind a few times, 0 lost, 0 duplicated.

The large run (≥ 10,000 taps, ≥ 20 faults of each kind) is in docs/RELIABILITY.md with its command.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import FAULT_KINDS, ChaosPlan, run_chaos

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_taps_survive_every_fault_kind_exactly_once(tmp_path: Path):
    plan = ChaosPlan(workdir=tmp_path / "chaos", taps=400, rate=30.0, faults=3, seed=11, drain_timeout=90)
    report = run_chaos(plan)
    summary = "\n".join(report.lines())
    assert report.faults == {kind: 3 for kind in FAULT_KINDS}, summary
    assert report.taps_made == 400, summary
    assert report.lost == 0, summary
    assert report.duplicated == 0, summary
    assert report.phantom == 0 and report.undelivered_on_device == 0, summary
    assert report.rows_at_central == report.taps_made + report.unconfirmed, summary
    assert report.integrity_checks == 3 and not report.integrity_failures, summary
    assert report.recorder_crashes == 0, summary
    assert report.clock_jumps_seconds == -3 * 3600, summary
    assert report.drain_seconds is not None, summary
    # the faults really bit: the agent found the broker gone and had to reconnect
    assert "unreachable" in (plan.workdir / "agent.log").read_text(), summary


def test_unknown_fault_kind_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown fault kind 'meteor'"):
        run_chaos(ChaosPlan(workdir=tmp_path, taps=5, rate=50, faults=1, kinds=("meteor",)))
