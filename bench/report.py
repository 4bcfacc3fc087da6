"""The results as Markdown tables: written beside the JSON, and into docs/BENCHMARKS.md by ``--write-docs``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"


def _f(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:
            return "–"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}"
    return str(v)


def _ok(r: dict[str, Any]) -> bool:
    return isinstance(r, dict) and "error" not in r and "unavailable" not in r


INGEST_LABELS = {
    "sqlite_burst": "SQLite, bursts of 20 × 100/msg (handle_many), fresh stamps",
    "sqlite_burst_late": "SQLite, the same with late stamps (backlog summary, no per-rating alerts)",
    "sqlite": "SQLite, 100/msg, one per handle",
    "sqlite_single": "SQLite, 1/msg, one per handle",
    "postgres_burst": "PostgreSQL, bursts of 20 × 100/msg (handle_many), fresh stamps",
    "postgres_burst_late": "PostgreSQL, the same with late stamps (backlog summary, no per-rating alerts)",
    "postgres": "PostgreSQL, 100/msg, one per handle", "postgres_single": "PostgreSQL, 1/msg, one per handle",
}


def _range(s: dict[str, float]) -> str:
    return f"{s['min']:.2f}–{s['max']:.2f}"


def summary_rows(res: dict[str, Any]) -> list[list[str]]:
    rows = []
    t = res.get("tap")
    if _ok(t):
        rows.append(["Tap to durable, p50", f"{_f(t['recorder_ms']['p50'])} ms",
                     f"raw insert {_f(t['raw_ms']['p50'])} ms", f"{t['p50_ratio']:.2f}×", "≤ 1.5×", _f(t["met"])])
    d = res.get("drain")
    if _ok(d):
        late = f" (stopped after {_f(d['repeats_detail'][0]['central']['s'])} s: {d['receipted']:,} receipted)" \
            if d.get("timed_out") else ""
        if "vs_bare" in d:
            rows.append([f"Drain {d['ratings']:,} ratings (old stamps: backlog summary)",
                         f"{_f(d['drain_rps'])} ratings/s{late}", f"bare durable subscriber {_f(d['bare_rps'])}/s",
                         f"{d['vs_bare']:.2f}× ({_range(d['vs_bare_spread'])})", "≥ 0.5×", _f(d["met"])])
            if "fresh_rps" in d:
                rows.append([f"Drain {d['ratings']:,} ratings, fresh stamps (an alert per unhappy rating)",
                             f"{_f(d['fresh_rps'])} ratings/s" + (" (stopped at the bound)" if d.get(
                                 "fresh_timed_out") else ""), "bare durable subscriber",
                             f"{d['fresh_vs_bare']:.2f}× ({_range(d['fresh_vs_bare_spread'])})", "–", ""])
        if "vs_bare" in d:  # the old baselines, kept for comparison with earlier runs; the target is vs bare
            rows.append(["", "", f"raw paho batches {_f(d['raw_rps'])}/s", f"{d['vs_raw']:.2g}×",
                         "earlier: ≥ 0.25×", ""])
            rows.append(["", "", f"naive {_f(d['naive_rps'])}/s", f"{d['vs_naive']:.2g}×", "earlier: ≥ 10×", ""])
        else:
            rows.append([f"Drain {d['ratings']:,} ratings", f"{_f(d['drain_rps'])} ratings/s{late}",
                         f"raw batches {_f(d['raw_rps'])}/s", f"{d['vs_raw']:.2g}×", "≥ 0.25×",
                         _f(d["vs_raw"] >= 0.25)])
            rows.append(["", "", f"naive {_f(d['naive_rps'])}/s", f"{d['vs_naive']:.2g}×", "≥ 10×",
                         _f(d["vs_naive"] >= 10)])
        if "happy_rps" in d:
            late = " (stopped at the bound)" if d.get("happy_timed_out") else ""
            rows.append(["Drain, same size, no negatives (no alerts)", f"{_f(d['happy_rps'])} ratings/s{late}",
                         "raw batches / naive", f"{d['happy_vs_raw']:.2g}× / {d['happy_vs_naive']:.2g}×", "", ""])
    a = res.get("alert")
    if _ok(a):
        rows.append(["Tap to alert (webhook), p99", f"{_f(a['webhook_ms']['p99'])} ms",
                     f"raw pub→sub p99 {_f(a['raw_ms']['p99'])} ms", f"{a['p99_ratio_webhook']:.1f}×", "≤ 20×",
                     _f(a["p99_ratio_webhook"] <= 20)])
        rows.append(["Tap to alert (topic), p99", f"{_f(a['topic_ms']['p99'])} ms", "", f"{a['p99_ratio_topic']:.1f}×",
                     "≤ 20×", _f(a["p99_ratio_topic"] <= 20)])
    f = res.get("fleet")
    if _ok(f):
        for k, label in (("fleet1", "1 worker"), ("fleet2", "2 workers")):
            x = f[k]
            rows.append([f"Fleet {f['devices']:,} devices, {label}: lost / duplicated",
                         f"{x['lost']} / {x['duplicated']}", "", "", "0 / 0",
                         _f(x["lost"] == 0 and x["duplicated"] == 0 and not x["timed_out"])])
        rows.append(["Fleet drain rate, 1 worker", f"{_f(f['fleet1']['ratings_per_s'])} ratings/s",
                     f"same messages, 1 connection {_f(f['single']['ratings_per_s'])}/s",
                     f"{f['fleet1_vs_single']:.2f}×", "–", ""])
        spread = f" ({_range(f['fleet2_vs_fleet1_spread'])})" if "fleet2_vs_fleet1_spread" in f else ""
        two = "≥ 1.6×" if "fleet2_vs_fleet1_spread" in f else "–"
        rows.append([f"Fleet drain rate, 2 workers ({f.get('store', 'sqlite')})",
                     f"{_f(f['fleet2']['ratings_per_s'])} ratings/s", "1 worker",
                     f"{f['fleet2_vs_fleet1']:.2f}×{spread}", two,
                     _f(f["fleet2_vs_fleet1"] >= 1.6) if spread else ""])
    i = res.get("ingest")
    if isinstance(i, dict) and "error" not in i:
        for k, label in INGEST_LABELS.items():
            x = i.get(k) or {}
            burst = k.endswith("_burst")  # the target's figures: fresh stamps, as the broker delivers
            if "central_rps" in x:
                spread = f" ({_range(x['vs_raw_spread'])})" if "vs_raw_spread" in x else ""
                rows.append([f"Central ingest per worker, {label}", f"{_f(x['central_rps'])} ratings/s",
                             f"raw executemany {_f(x['raw_rps'])}/s", f"{x['vs_raw']:.2f}×{spread}",
                             "≥ 0.3×" if burst else "–", _f(x["vs_raw"] >= 0.3) if burst else ""])
            elif "unavailable" in x:
                rows.append([f"Central ingest per worker, {label}", "not measured", f"raw {_f(x.get('raw_rps'))}/s",
                             "", "", x["unavailable"]])
    fp = res.get("footprint")
    if _ok(fp):
        rss, ratios = fp["rss_mb"], fp["ratios"]
        for k, base, rk in (("sync_agent", "bare_paho", "sync_agent_vs_bare_paho"),
                            ("central", "bare_paho", "central_vs_bare_paho"),
                            ("kiosk", "bare_kivy", "kiosk_vs_bare_kivy")):
            if k in rss:
                rows.append([f"Footprint, {k.replace('_', ' ')}", f"{_f(rss[k])} MB", f"{base.replace('_', ' ')} "
                             f"{_f(rss.get(base))} MB", f"{ratios.get(rk, float('nan')):.2f}×", "–", ""])
            elif k in fp.get("notes", {}):
                rows.append([f"Footprint, {k}", "not measured", "", "", "", fp["notes"][k]])
    k = res.get("kiosk")
    if isinstance(k, dict):
        if "tap_to_thank_you_ms" in k:
            t, base = k["tap_to_thank_you_ms"], k.get("baseline_frame_ms") or {}
            rows.append(["Kiosk tap to thank-you drawn, p50", f"{_f(t.get('p50'))} ms",
                         f"one frame redrawn {_f(base.get('p50'))} ms", f"{_f(k.get('tap_vs_frame_ratio'))}×", "–", ""])
            if "tap_to_follow_up_ms" in k:
                rows.append(["Kiosk negative tap to follow-up drawn, p50",
                             f"{_f(k['tap_to_follow_up_ms'].get('p50'))} ms", "", "", "", ""])
        elif "tap_ms" in k:
            rows.append(["Kiosk tap to thank-you, p50 / p99", f"{_f(k['tap_ms']['p50'])} / {_f(k['tap_ms']['p99'])} ms",
                         "", "", "", ""])
        elif "unavailable" in k or "error" in k:
            why = k.get("unavailable") or k.get("error", "")
            rows.append(["Kiosk tap to thank-you", "not measured", "", "", "", why])
    for name in ("tap", "drain", "alert", "fleet", "ingest", "footprint", "kiosk"):
        r = res.get(name)
        if isinstance(r, dict) and "error" in r:
            rows.append([name, "**error**", "", "", "", r["error"][:200]])
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows]
    return "\n".join(out)


def markdown(res: dict[str, Any], plots_rel: str | None = None) -> str:
    m = res.get("machine", {})
    parts = [
        f"Run: `{res.get('command')}` ({res.get('mode')} mode), {res.get('started')}, {res.get('took_s', 0):.0f} s; "
        f"commit `{m.get('commit')}`{' (with local changes)' if m.get('dirty') else ''}.",
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('mem_gb')} GB, {m.get('os')}; Python "
        f"{m.get('python')}, {m.get('mosquitto')}, paho-mqtt {m.get('paho')}, SQLite {m.get('sqlite')}, "
        f"load average at start {m.get('loadavg')} (shared machine: read ratios, not absolutes).",
        "",
        _table(["figure", "measured", "baseline (same run)", "ratio", "target", "met"], summary_rows(res)),
    ]
    a = res.get("alert")
    if _ok(a):
        parts += ["", "Tap to alert, where the time goes (ms):", "",
                  _table(["stage", "p50", "p99"], [[k.replace("_", " "), _f(a["stages_ms_p50"][k]),
                                                   _f(a["stages_ms_p99"][k])] for k in a["stages_ms_p50"]])]
    f = res.get("fleet")
    if _ok(f):
        rows = []
        for key, label in (("single", "same messages, 1 connection"), ("fleet1", f"{f['devices']:,} devices, 1 worker"),
                           ("fleet2", f"{f['devices']:,} devices, 2 workers")):
            x = f[key]
            per_k = x.get("cpu_s_per_1k") or {}
            budget = sum(per_k.values())
            rows.append([label, _f(x["drain_s"]), _f(x["all_connected_s"]), _f(x["ratings_per_s"]),
                         _f(x["central_cpu_pct"]), _f(x.get("postgres_cpu_pct")), _f(x["broker_cpu_pct"]),
                         _f(x["fleet_cpu_pct"]), _f(x.get("machine_busy_pct")),
                         _f(budget * 1000 if per_k else None), _f(x["broker_rss_mb"]),
                         f"{x['lost']} / {x['duplicated']} / {x['resent']}"
                         + (f" (timed out, {x['pending_at_timeout']:,} not yet stored)" if x.get("timed_out") else "")])
        parts += ["", f"Fleet: {f['devices']:,} devices × {f['backlog_per_device']} ratings offline backlog "
                      f"({f['ratings']:,} ratings), all reconnecting at once, central storing into "
                      f"{f.get('store', 'sqlite')}; median of {f['repeats']} interleaved repeats. CPU % is of one "
                      "core (the machine has {0}); machine busy % is of all cores; CPU ms per 1,000 ratings sums "
                      "every process in the loop:".format(res.get("machine", {}).get("cores", "?")), "",
                  _table(["run", "drain s", "all connected s", "ratings/s", "central CPU %", "PostgreSQL CPU %",
                          "broker CPU %", "simulator CPU %", "machine busy %", "CPU ms / 1k ratings",
                          "broker RSS MB", "lost / dup / resent"], rows)]
    s = res.get("scale")
    if isinstance(s, dict) and "assumptions" in s:
        parts += ["", "Scale on paper (arithmetic in bench/scale.py, inputs from this run):", "",
                  _table(["quantity", "value"], [[k.replace("_", " "), _f(v)] for k, v in s.items()
                                                 if k != "assumptions"]),
                  "", "Assumptions: " + ", ".join(f"{k} = {v}" for k, v in s["assumptions"].items()) + "."]
    profiles = res.get("profiles") or {}
    for name, prof in profiles.items():
        if isinstance(prof, dict):
            for part, text in prof.items():
                parts += ["", f"Profile, {name} — {part.replace('_', ' ')} (cProfile, top by own time):", "",
                          "```text", text, "```"]
    if plots_rel:
        parts += [""] + [f"![{n}]({plots_rel}/{n}.png)" for n in ("tap", "drain", "alert", "fleet", "ingest",
                                                                   "footprint") if _ok(res.get(n) or {})]
    return "\n".join(parts) + "\n"


def write_docs(doc: Path, text: str) -> None:
    """Replace the generated region of docs/BENCHMARKS.md, leaving the prose around it alone."""
    body = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in body or END not in body:
        body = body.rstrip() + f"\n\n{START}\n{END}\n"
    head, rest = body.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{text}{END}{tail}")
