"""The benchmark suite: sizes per mode, each benchmark in turn, results JSON, Markdown and plots.

A benchmark that fails (another part mid-change, a missing server) is recorded as an error and the
others still run; the exit code says whether everything ran.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sqlite3
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import alert, cluster, console, drain, fleet, footprint, ingest, kiosk, plots, report, scale, tap
from bench.profiles import profile_call
from bench.stats import rounded

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("tap", "kiosk", "drain", "alert", "fleet", "ingest", "footprint", "console", "cluster")


@dataclass(frozen=True)
class Sizes:
    tap_rounds: int
    tap_taps: int
    drain_ratings: int
    drain_repeats: int
    naive_max_s: float
    drain_max_s: float
    alert_taps: int
    fleet_devices: int
    fleet_backlog: int
    fleet_repeats: int
    ingest_messages: int
    ingest_repeats: int
    footprint_rounds: int
    kiosk_taps: int
    profile_ratings: int  # 0: no profiles
    cluster_devices: int = 3
    cluster_ratings: int = 2_000  # per device
    cluster_repeats: int = 1
    console_ratings: int = 5_000  # ratings behind the dashboards (bench/console.py)
    console_repeats: int = 5


MODES = {
    # the smallest configuration: seconds, for the smoke test; no Kivy, no profiles
    "smoke": Sizes(2, 20, 300, 1, 0.5, 60.0, 3, 10, 5, 1, 3, 1, 0, 0, 0, console_ratings=5_000, console_repeats=3),
    "quick": Sizes(5, 200, 3_000, 2, 2.0, 20.0, 30, 200, 10, 2, 20, 3, 1, 10, 3_000, console_ratings=50_000,
                   console_repeats=10),
    "full": Sizes(9, 1_000, 100_000, 3, 10.0, 90.0, 200, 2_000, 10, 3, 100, 3, 3, 50, 20_000,
                  console_ratings=1_000_000, console_repeats=50),
}


def machine() -> dict[str, Any]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    cpu = next((line.split(":", 1)[1].strip() for line in read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next((int(line.split()[1]) for line in read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal")), 0)
    osname = next((line.split("=", 1)[1].strip('"') for line in read("/etc/os-release").splitlines()
                   if line.startswith("PRETTY_NAME=")), platform.platform())

    def run(*cmd: str) -> str:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=ROOT)
            return (p.stdout or p.stderr).strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    from importlib.metadata import version

    from smileloop_core.mosquitto import mosquitto_binary

    mosq = mosquitto_binary()
    mosq_version = next((line for line in run(mosq, "-h").splitlines() if "version" in line), "") if mosq else ""
    return {
        "cpu": cpu, "cores": os.cpu_count(), "mem_gb": round(mem_kb / 1024 / 1024, 1), "os": osname,
        "python": platform.python_version(), "mosquitto": mosq_version or "mosquitto", "paho": version("paho-mqtt"),
        "sqlite": sqlite3.sqlite_version, "loadavg": " ".join(read("/proc/loadavg").split()[:3]),
        **_commit(),
    }


def _commit() -> dict[str, Any]:
    """The commit measured; a snapshot without .git (``git archive``) names it in SMILELOOP_BENCH_COMMIT."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10)
        if head.returncode == 0:
            dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=ROOT, capture_output=True,
                                   timeout=10).returncode != 0
            return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        pass
    return {"commit": os.environ.get("SMILELOOP_BENCH_COMMIT", "unknown"), "dirty": False}


def _benches(sizes: Sizes, work: Path) -> dict[str, Callable[[], dict[str, Any]]]:
    s = sizes
    return {
        "tap": lambda: tap.run(work / "tap", rounds=s.tap_rounds, taps=s.tap_taps),
        "kiosk": lambda: kiosk.run(work / "kiosk", taps=s.kiosk_taps),
        "drain": lambda: drain.run(work / "drain", ratings=s.drain_ratings, repeats=s.drain_repeats,
                                   naive_max_s=s.naive_max_s, max_s=s.drain_max_s),
        "alert": lambda: alert.run(work / "alert", taps=s.alert_taps),
        "fleet": lambda: fleet.run(work / "fleet", devices=s.fleet_devices, backlog=s.fleet_backlog,
                                   repeats=s.fleet_repeats),
        "ingest": lambda: ingest.run(work / "ingest", messages=s.ingest_messages, repeats=s.ingest_repeats),
        "footprint": lambda: footprint.run(work / "footprint", rounds=s.footprint_rounds),
        "cluster": lambda: cluster.run(work / "cluster", devices=s.cluster_devices, ratings=s.cluster_ratings,
                                       repeats=s.cluster_repeats, fleet_devices=s.fleet_devices,
                                       fleet_backlog=s.fleet_backlog),
        "console": lambda: console.run(work / "console", ratings=s.console_ratings, repeats=s.console_repeats),
    }


def _profiles(results: dict[str, Any], sizes: Sizes, work: Path) -> dict[str, Any]:
    """Profile what missed its target: the evidence of where the time goes."""
    out: dict[str, Any] = {}
    t = results.get("tap") or {}
    if t.get("met") is False:
        out["tap"] = {"recorder": profile_call(tap.profile_target(work / "profile-tap", 2_000))}
    d = results.get("drain") or {}
    a = results.get("alert") or {}
    if d.get("met") is False or a.get("met") is False:
        out["drain"] = drain.profile(work / "profile-drain", ratings=sizes.profile_ratings,
                                     max_s=min(60.0, sizes.drain_max_s))
    i = results.get("ingest") or {}
    if i.get("met") is False:
        out["ingest"] = ingest.profile(work / "profile-ingest", messages=max(20, sizes.profile_ratings // 100))
    f = results.get("fleet") or {}
    if f.get("met") is False:
        out["fleet"] = fleet.profile(work / "profile-fleet", devices=sizes.fleet_devices, backlog=sizes.fleet_backlog)
    return out


def run_suite(mode: str, *, only: tuple[str, ...] = (), workdir: Path | None = None,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    sizes = MODES[mode]
    names = [n for n in ORDER if not only or n in only]
    if mode == "smoke":
        names = [n for n in names if n not in ("footprint", "kiosk")]
    tmp = Path(tempfile.mkdtemp(prefix="smileloop-bench-", dir=workdir))
    started = time.monotonic()
    results: dict[str, Any] = {
        "mode": mode, "only": list(only),
        "command": f"python -m bench --size {mode}" + (f" --only {','.join(only)}" if only else ""),
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(), "sizes": asdict(sizes),
    }
    try:
        for name in names:
            t0 = time.monotonic()
            log(f"bench {name} …")
            try:
                results[name] = _benches(sizes, tmp)[name]()
            except Exception as e:
                results[name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
            results[name]["took_s"] = time.monotonic() - t0
            log(f"bench {name}: {_line(name, results[name])} ({results[name]['took_s']:.1f}s)")
        try:
            results["scale"] = scale.estimate(results)
        except Exception as e:
            results["scale"] = {"error": f"{type(e).__name__}: {e}"}
        if sizes.profile_ratings:
            try:
                results["profiles"] = _profiles(results, sizes, tmp)
            except Exception as e:
                results["profiles"] = {"error": {"profile": f"{type(e).__name__}: {e}"}}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["took_s"] = time.monotonic() - started
    return rounded(results)


def _line(name: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"ERROR {r['error']}"
    if "unavailable" in r:
        return f"not measured: {r['unavailable']}"
    picks = {"tap": ("p50_ratio", "met"), "drain": ("drain_rps", "bare_rps", "vs_bare", "fresh_vs_bare", "met"),
             "alert": ("p99_ratio_webhook", "met"), "fleet": ("fleet1_vs_single", "fleet2_vs_fleet1", "met"),
             "ingest": ("met",), "footprint": ("ratios",), "kiosk": ("tap_ms",),
             "cluster": ("nats1_vs_mosquitto1", "nats2_vs_mosquitto2", "nats2_vs_nats1", "safe"), "console": ("met",)}
    line = ", ".join(f"{k}={r.get(k)!r:.60}" for k in picks.get(name, ()) if k in r)
    if name == "console":
        line += "".join(f", {k} all sites p99={r[k]['all_sites_ms']['p99']:.0f} ms" for k in ("sqlite", "postgres")
                        if "all_sites_ms" in (r.get(k) or {}))
    if name == "ingest":
        line += "".join(f", {k}={r[k]['vs_raw']:.3g}" for k in ("sqlite_burst", "postgres_burst")
                        if "vs_raw" in (r.get(k) or {}))
    return line or "done"


def save(results: dict[str, Any], out_dir: Path, plots_dir: Path | None, doc: Path | None) -> list[Path]:
    """results/<mode>.json and .md, the plots, and (``doc``) the generated region of docs/BENCHMARKS.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    mode = results["mode"]
    if results.get("only"):  # a subset never overwrites the results of a whole run
        mode += "-" + "-".join(results["only"])
    slim = {k: ({kk: vv for kk, vv in v.items() if kk != "traceback"} if isinstance(v, dict) else v)
            for k, v in results.items()}
    written = [out_dir / f"{mode}.json", out_dir / f"{mode}.md"]
    written[0].write_text(json.dumps(slim, indent=1, ensure_ascii=False) + "\n")
    rel = os.path.relpath(plots_dir, doc.parent) if plots_dir and doc else None
    text = report.markdown(results, plots_rel=rel)
    written[1].write_text(text)
    if plots_dir is not None:
        written += plots.draw_all(results, plots_dir)
    if doc is not None:
        report.write_docs(doc, text)
        written.append(doc)
    return written
