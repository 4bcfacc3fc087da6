"""The hook for tap-to-thank-you on the real Kivy app: ``bench/kiosk_tap.py`` belongs to the kiosk's owners.

It is run in its own process (Kivy wants its window and environment set before import) and may return
a list of seconds per tap, or a dict of figures; either is kept in the results as it came.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from bench.footprint import kivy_env
from bench.stats import quantiles, summary

CANDIDATES = ("measure", "measure_tap_to_thank_you", "tap_to_thank_you", "run")

_CHILD = textwrap.dedent("""
    import inspect, json, sys
    from pathlib import Path
    import bench.kiosk_tap as k
    fn = next(getattr(k, n) for n in {candidates!r} if callable(getattr(k, n, None)))
    args = json.loads(sys.argv[1])
    params = inspect.signature(fn).parameters
    kwargs = {{}}
    for name in params:
        if name in ("workdir", "tmp", "tmp_path", "path", "directory"):
            kwargs[name] = Path(args["workdir"])
        elif name in ("taps", "n", "count", "repeats"):
            kwargs[name] = args["taps"]
    result = fn(**kwargs)
    print("KIOSK_TAP_RESULT " + json.dumps(result, default=str))
""")


def available() -> bool:
    return importlib.util.find_spec("bench.kiosk_tap") is not None


def run(workdir: Path, *, taps: int, timeout: float = 300.0) -> dict[str, Any]:
    if not available():
        return {"unavailable": "bench/kiosk_tap.py is not there yet; tap to thank-you on the real Kivy app is "
                               "measured once it is (the runner calls its measure function)"}
    workdir.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-c", _CHILD.format(candidates=CANDIDATES),
                           json.dumps({"workdir": str(workdir), "taps": taps})],
                          env={**kivy_env(workdir / "kivy"), "PYTHONPATH": str(root)}, cwd=root,
                          capture_output=True, text=True, timeout=timeout)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("KIOSK_TAP_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        return {"error": f"bench/kiosk_tap.py exited {proc.returncode}: {(proc.stderr or proc.stdout)[-600:]}"}
    result = json.loads(line.split(" ", 1)[1])
    if isinstance(result, list) and all(isinstance(x, int | float) for x in result):
        ms = [x * 1e3 for x in result]
        return {"what": "tap to thank-you on the real Kivy app", "tap_ms": summary(ms),
                "quantiles_ms": quantiles(ms)}
    if isinstance(result, dict):
        return result
    return {"what": "tap to thank-you on the real Kivy app", "result": result}
