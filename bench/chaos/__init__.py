"""The accounting harness: taps through real processes while faults are injected; nothing lost, nothing twice.

``python -m bench.chaos --taps 10000 --faults 20`` (docs/RELIABILITY.md). The small run is in the test suite
(tests/fault).
"""

from bench.chaos.harness import FAULT_KINDS, ChaosPlan, ChaosReport, run_chaos

__all__ = ["FAULT_KINDS", "ChaosPlan", "ChaosReport", "run_chaos"]
