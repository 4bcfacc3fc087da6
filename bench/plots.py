"""PNG plots of a results dict (so a figure can be redrawn from the JSON alone): Agg backend, no display."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

FRACTIONS = [i / 100 for i in range(101)]


def _cdf(ax: Any, series: dict[str, list[float]], labels: dict[str, str]) -> None:
    for key, label in labels.items():
        q = series.get(key) or []
        if q:
            ax.plot(q, FRACTIONS[:len(q)], label=label, linewidth=1.8)
    ax.set_xscale("log")
    ax.set_ylabel("fraction of taps ≤ x")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")


def tap(r: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    _cdf(ax, r["quantiles_ms"], {"raw": "raw sqlite3 insert+commit", "recorder": "Recorder.record"})
    ax.set_xlabel("ms per tap (WAL, synchronous=FULL)")
    ax.set_title(f"Tap to durable: Recorder p50 = {r['p50_ratio']:.2f}× raw (target ≤ 1.5×)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def alert(r: dict[str, Any], path: Path) -> None:
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    _cdf(ax, r["quantiles_ms"], {"raw": "raw publish→subscribe", "topic": "tap → alerts topic",
                                 "webhook": "tap → webhook"})
    ax.set_xlabel("ms")
    ax.set_title(f"Tap to alert: p99 = {r['p99_ratio_webhook']:.0f}× raw p99 (target ≤ 20×)")
    stages = r.get("stages_ms_p50") or {}
    left = 0.0
    for name, ms in stages.items():
        bx.barh(["p50"], [ms], left=left, label=name.replace("_", " "))
        left += ms
    bx.set_xlabel("ms (median per stage)")
    bx.set_title("where the time goes")
    bx.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def drain(r: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 4))
    series = [("naive: 1 msg/rating,\nwait each PUBACK", r.get("naive_rps"), "#999"),
              ("central, fresh\n(an alert each)", r.get("fresh_rps"), "#7c7"),
              ("central, late\n(backlog summary)", r.get("drain_rps"), "#2a7"),
              ("bare durable\nsubscriber", r.get("bare_rps", r.get("happy_rps")), "#c83"),
              ("raw paho QoS 1,\npre-built batches", r.get("raw_rps"), "#36c")]
    series = [(n, v, c) for n, v, c in series if v is not None and v == v]
    bars = ax.bar([n for n, _, _ in series], [v for _, v, _ in series], color=[c for _, _, c in series])
    ax.set_yscale("log")
    ax.set_ylabel("ratings/s (log)")
    for b, (_, v, _) in zip(bars, series, strict=True):
        ax.annotate(f"{v:,.0f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=9)
    if "vs_bare" in r:
        ax.set_title(f"Drain {r['ratings']:,}, same SyncAgent: central {r['vs_bare']:.2f}× the bare durable "
                     f"subscriber (target ≥ 0.5)")
    else:
        ax.set_title(f"Drain {r['ratings']:,}: {r['vs_raw']:.2g}× raw (≥0.25), {r['vs_naive']:.2g}× naive (≥10)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fleet(r: dict[str, Any], path: Path) -> None:
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("fleet1", "1 central worker"), ("fleet2", "2 workers, shared subscription")):
        q = (r.get(key) or {}).get("done_curve_s") or []
        if q:
            ax.plot(q, FRACTIONS[:len(q)], label=label)
    ax.set_xlabel("s since all devices reconnected at once")
    ax.set_ylabel("fraction of devices fully receipted")
    ax.set_title(f"{r['devices']:,} devices × {r['backlog_per_device']} ratings backlog")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    keys = [k for k in ("single", "fleet1", "fleet2") if k in r]
    labels = {"single": "same messages,\n1 connection", "fleet1": f"{r['devices']} devices,\n1 worker",
              "fleet2": f"{r['devices']} devices,\n2 workers"}
    x = range(len(keys))
    bx.bar([i - 0.2 for i in x], [r[k]["central_cpu_pct"] for k in keys], width=0.4, label="central CPU %")
    bx.bar([i + 0.2 for i in x], [r[k]["broker_cpu_pct"] for k in keys], width=0.4, label="broker CPU %")
    bx.set_xticks(list(x), [labels[k] for k in keys])
    bx.set_ylabel("% of one core during the drain")
    bx2 = bx.twinx()
    bx2.plot(list(x), [r[k]["ratings_per_s"] for k in keys], "ko-", label="ratings/s")
    bx2.set_ylabel("ratings/s")
    bx2.set_ylim(bottom=0)
    bx.legend(loc="lower left", fontsize=8, framealpha=0.9)
    bx.set_title("throughput and CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


INGEST_NAMES = {"sqlite_burst": "SQLite,\nbursts of 20", "sqlite_burst_late": "SQLite, bursts,\nlate stamps",
                "sqlite": "SQLite,\n1 msg/handle",
                "sqlite_single": "SQLite, 1/msg,\n1 msg/handle", "postgres_burst": "PostgreSQL,\nbursts of 20",
                "postgres_burst_late": "PostgreSQL, bursts,\nlate stamps",
                "postgres": "PostgreSQL,\n1 msg/handle", "postgres_single": "PostgreSQL, 1/msg,\n1 msg/handle"}


def ingest(r: dict[str, Any], path: Path) -> None:
    keys = [k for k in INGEST_NAMES if "central_rps" in (r.get(k) or {})]
    if not keys:
        return
    fig, ax = plt.subplots(figsize=(9, 4))
    x = range(len(keys))
    ax.bar([i - 0.2 for i in x], [r[k]["raw_rps"] for k in keys], width=0.4, label="raw executemany", color="#36c")
    ax.bar([i + 0.2 for i in x], [r[k]["central_rps"] for k in keys], width=0.4, label="CentralService",
           color="#2a7")
    ax.set_xticks(list(x), [INGEST_NAMES[k] for k in keys], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ratings/s per worker (log)")
    ax.legend()
    ax.set_title("Central ingest per worker")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def footprint(r: dict[str, Any], path: Path) -> None:
    rss = r.get("rss_mb") or {}
    order = [k for k in ("bare_paho", "sync_agent", "central", "bare_kivy", "kiosk") if rss.get(k) == rss.get(k)
             and k in rss]
    if not order:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = ["#999" if k.startswith("bare") else "#2a7" for k in order]
    bars = ax.bar([k.replace("_", " ") for k in order], [rss[k] for k in order], color=colors)
    for b, k in zip(bars, order, strict=True):
        ax.annotate(f"{rss[k]:.0f}", (b.get_x() + b.get_width() / 2, rss[k]), ha="center", va="bottom")
    ax.set_ylabel("resident memory, MB")
    ax.set_title("Footprint (grey: baselines in the same run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


PLOTS = {"tap": tap, "alert": alert, "drain": drain, "fleet": fleet, "ingest": ingest, "footprint": footprint}


def draw_all(results: dict[str, Any], out: Path) -> list[Path]:
    """One PNG per benchmark that ran without error; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fn in PLOTS.items():
        r = results.get(name)
        if not isinstance(r, dict) or "error" in r or "unavailable" in r:
            continue
        path = out / f"{name}.png"
        fn(r, path)
        if path.exists():
            written.append(path)
    return written
