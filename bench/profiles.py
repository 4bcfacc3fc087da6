"""Profiles for missed targets: the top of a cProfile table, trimmed to paths inside the repository."""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parent.parent) + "/"


def top(source: cProfile.Profile | Path, lines: int = 14, sort: str = "tottime") -> str:
    """The ``lines`` costliest functions (by own time unless ``sort`` says otherwise), as a text table."""
    out = io.StringIO()
    stats = pstats.Stats(str(source) if isinstance(source, Path) else source, stream=out)
    stats.sort_stats(sort).print_stats(lines)
    text = out.getvalue()
    start = text.find("   ncalls")
    body = text[start:] if start >= 0 else text
    for prefix in (ROOT, sys.prefix + "/lib/python3.11/site-packages/", sys.base_prefix + "/lib/python3.11/"):
        body = body.replace(prefix, "")
    return "\n".join(line.rstrip() for line in body.strip().splitlines())


def profile_call(fn: Callable[[], Any], lines: int = 14) -> str:
    prof = cProfile.Profile()
    prof.enable()
    try:
        fn()
    finally:
        prof.disable()
    return top(prof, lines)
