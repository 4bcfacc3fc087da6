"""Benchmarks and the fleet simulation: how fast and how big, each figure a ratio against a baseline.

The machines these run on are shared and noisy, so every subject is measured interleaved with a
baseline in the same script (baseline, subject, baseline, subject…) and reported as the median of
the repeats. ``python -m bench --quick`` (under two minutes) or ``--full``; see docs/BENCHMARKS.md.
"""
