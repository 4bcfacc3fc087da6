"""Scale on paper: what one broker and one central worker carry, from this run's measured figures.

The arithmetic is kept here (and its inputs in the results JSON) so the numbers in docs/BENCHMARKS.md
come from a run, not from a guess. Assumptions are explicit and deliberately on the busy side.
"""

from __future__ import annotations

import math
from typing import Any

ASSUME = {
    "taps_per_device_day": 400,  # a busy exit kiosk
    "open_hours": 12,
    "peak_factor": 3.0,  # the busiest hour against the open-hours average
    "heartbeat_s": 60.0,  # sync.heartbeat: one retained status per device per minute
    "headroom": 0.5,  # plan each process at half a core at peak: room for reconnect storms
    "batch_live": 1,  # live taps go one per message (negatives at once, the rest within batch_delay)
}


def estimate(results: dict[str, Any]) -> dict[str, Any]:
    fleet = results.get("fleet") or {}
    f1 = fleet.get("fleet1") or {}
    if not f1 or "central_cpu_us_per_rating" not in f1:
        return {"unavailable": "needs the fleet figures"}
    a = ASSUME
    devices = fleet["devices"]
    batches = math.ceil(fleet["backlog_per_device"] / 100)
    # broker message handlings in the fleet run: status + ratings in, ratings out to central, receipt in and out
    handlings = devices * (1 + 4 * batches)
    broker_us_per_msg = 1e6 * (f1["broker_cpu_us_per_rating"] * fleet["ratings"] / 1e6) / handlings
    central_us = f1["central_cpu_us_per_rating"]
    # central, batched (a backlog) and live (one rating per message: the per-message cost dominates)
    ingest = results.get("ingest") or {}
    batched, single = ingest.get("sqlite") or {}, ingest.get("sqlite_single") or {}
    if batched.get("central_rps") and single.get("central_rps"):
        # live taps come one per message: scale the process's measured cost by handle()'s single/batched ratio
        central_us_live = central_us * batched["central_rps"] / single["central_rps"]
    else:
        central_us_live = central_us * 10  # no ingest figures: a pessimistic guess, flagged below
    central_rps_batched = a["headroom"] * 1e6 / central_us if central_us > 0 else float("nan")
    central_rps_live = a["headroom"] * 1e6 / central_us_live if central_us_live > 0 else float("nan")
    peak_per_device = a["taps_per_device_day"] / (a["open_hours"] * 3600) * a["peak_factor"]
    devices_per_central_live = central_rps_live / peak_per_device
    taps_day_central_live = central_rps_live / a["peak_factor"] * a["open_hours"] * 3600
    # broker: per device per second at peak: taps × 4 handlings + heartbeat (in, and out to central)
    per_device_msgs = peak_per_device * 4 + 2 / a["heartbeat_s"]
    if broker_us_per_msg <= 0 or central_us <= 0:  # too short a run for the CPU clock's 10 ms ticks
        return {"unavailable": "the fleet run was too short to measure CPU per rating"}
    broker_msgs_per_s = a["headroom"] * 1e6 / broker_us_per_msg
    devices_per_broker_cpu = broker_msgs_per_s / per_device_msgs
    kb = f1.get("broker_kb_per_device") or float("nan")
    return {
        "assumptions": a,
        "broker_us_per_message": broker_us_per_msg,
        "broker_messages_per_s_at_headroom": broker_msgs_per_s,
        "broker_kb_per_connection": kb,
        "devices_per_broker_by_cpu": devices_per_broker_cpu,
        "broker_mb_for_100k_devices": kb * 100_000 / 1024 if kb == kb else None,
        "reconnect_storm_devices_per_s": devices / f1["all_connected_s"] if f1.get("all_connected_s") else None,
        "central_us_per_rating": central_us,
        "central_ratings_per_s_batched_at_headroom": central_rps_batched,
        "central_ratings_per_s_live_at_headroom": central_rps_live,
        "peak_taps_per_s_per_device": peak_per_device,
        "devices_per_central_worker": devices_per_central_live,
        "taps_per_day_per_central_worker": taps_day_central_live,
        "central_us_per_live_rating": central_us_live,
        "live_cost_measured": bool(batched.get("central_rps") and single.get("central_rps")),
        "backlog_drain_after_outage_s_per_100k": 1e5 / f1["ratings_per_s"] if f1.get("ratings_per_s") else None,
    }
