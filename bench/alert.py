"""Tap to alert: a negative tap on a device until the alert reaches a local webhook and the alerts topic.

The device records through the real Recorder (WAL, synchronous=FULL) with its sync agent running in this
process and woken by the tap; central runs as its own process with an apprise ``json://`` notifier
pointed at a webhook receiver here. Baseline, interleaved tap by tap: a raw QoS 1 publish → subscribe
round trip on the same broker. Target: tap-to-alert p99 within 20× the raw p99.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench import harness
from bench.stats import quantiles, summary
from device.recorder import Recorder
from device.store import DeviceStore
from smileloop_core import topics
from sync_agent.agent import SyncAgent

TARGET_P99_RATIO = 20.0


class Webhook:
    """A loopback HTTP receiver; each POST's alert id and arrival time go on a queue."""

    def __init__(self) -> None:
        self.arrivals: queue.Queue[tuple[str, float]] = queue.Queue()  # (message text, arrival)
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                t = time.perf_counter()
                self.send_response(200)
                self.end_headers()
                try:
                    message = str(json.loads(body).get("message", ""))
                except ValueError:
                    message = body.decode(errors="replace")
                arrivals.put((message, t))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Listener:
    """One paho client on its own thread: the alerts topic and the raw ping topic, arrival times queued."""

    def __init__(self, url: str) -> None:
        host, port = harness._host_port(url)
        self.alerts: queue.Queue[tuple[dict[str, Any], float]] = queue.Queue()
        self.pings: queue.Queue[tuple[bytes, float]] = queue.Queue()
        self.published: dict[str, float] = {}  # rating id → when its ratings message passed the broker
        self.ready = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-listener", protocol=mqtt.MQTTv5)
        c.on_message = self._on_message
        c.on_subscribe = lambda *a: self.ready.set()
        c.connect(host, port)
        c.subscribe([(topics.alerts(harness.BENCH_SITE), 1), ("bench/ping", 1),
                     (topics.ratings(harness.BENCH_SITE, "+"), 1)])
        c.loop_start()
        self.client = c

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        t = time.perf_counter()
        if msg.topic == "bench/ping":
            self.pings.put((bytes(msg.payload), t))
        elif msg.topic.endswith("/ratings"):
            for r in json.loads(msg.payload).get("ratings", []):
                self.published.setdefault(r["id"], t)
        else:
            self.alerts.put((json.loads(msg.payload), t))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _ping(pub: mqtt.Client, listener: Listener, i: int, timeout: float) -> float:
    token = str(i).encode()
    t0 = time.perf_counter()
    pub.publish("bench/ping", token, qos=1)
    while True:
        got, t = listener.pings.get(timeout=timeout)
        if got == token:
            return t - t0


def _tap_to_alert(recorder: Recorder, listener: Listener, hook: Webhook, timeout: float,
                  stages: dict[str, list[float]] | None = None) -> tuple[float, float]:
    """One negative tap at a location of its own (central groups a location's alerts within a cooldown)."""
    where = f"{harness.BENCH_SITE} / {recorder.config.location}"
    t0 = time.perf_counter()
    rating = recorder.record(1)
    t_durable = time.perf_counter()
    deadline = t0 + timeout
    t_topic = t_hook = None
    while t_topic is None:
        alert, t = listener.alerts.get(timeout=max(0.01, deadline - time.perf_counter()))
        if alert.get("rating_id") == rating.id:
            t_topic = t
    while t_hook is None:
        message, t = hook.arrivals.get(timeout=max(0.01, deadline - time.perf_counter()))
        if where in message:
            t_hook = t
    if stages is not None:  # where the time goes: the device, the agent, central
        t_pub = listener.published.get(rating.id, t_topic)
        stages["tap_to_durable"].append(t_durable - t0)
        stages["durable_to_broker"].append(t_pub - t_durable)
        stages["broker_to_alert_topic"].append(t_topic - t_pub)
        stages["alert_topic_to_webhook"].append(t_hook - t_topic)
    return t_topic - t0, t_hook - t0


def run(workdir: Path, *, taps: int, gap_s: float = 0.05, timeout: float = 10.0) -> dict[str, Any]:
    raw: list[float] = []
    topic: list[float] = []
    webhook: list[float] = []
    stages: dict[str, list[float]] = {k: [] for k in ("tap_to_durable", "durable_to_broker", "broker_to_alert_topic",
                                                      "alert_topic_to_webhook")}
    hook = Webhook()
    stop = threading.Event()
    with harness.broker(workdir / "broker") as b:
        central = harness.CentralProcess(b.url, workdir / "central.db", notify=[hook.url])
        listener = Listener(b.url)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pinger", protocol=mqtt.MQTTv5)
        host, port = harness._host_port(b.url)
        pub.connect(host, port)
        pub.loop_start()
        config = harness.device_config(workdir / "device", b.url, device_id="kiosk-alert", batch_delay=0.5)
        tap_store = DeviceStore(config.storage.path)
        agent = SyncAgent(config, DeviceStore(config.storage.path, synchronous="NORMAL"))

        def recorder(k: int) -> Recorder:
            rec = Recorder(tap_store, replace(config, location=f"exit-{k}"))
            rec.on_record(agent.wake)
            return rec
        agent_thread = threading.Thread(target=agent.run, args=(stop,), name="sync", daemon=True)
        try:
            harness.probe_central(b.url)
            listener.ready.wait(5)
            agent_thread.start()
            for i in range(3):  # warm-up: connections, imports in central, apprise's first request
                _tap_to_alert(recorder(-i - 1), listener, hook, timeout * 3)
                _ping(pub, listener, -i - 1, timeout)
            for i in range(taps):
                raw.append(_ping(pub, listener, i, timeout))
                t_topic, t_hook = _tap_to_alert(recorder(i), listener, hook, timeout, stages)
                topic.append(t_topic)
                webhook.append(t_hook)
                time.sleep(gap_s)  # visitors are not back to back; lets the agent go idle as in real life
        finally:
            stop.set()
            agent_thread.join(10) if agent_thread.is_alive() else None
            pub.disconnect()
            pub.loop_stop()
            listener.close()
            central.stop()
            hook.close()
    raw_s, topic_s, hook_s = summary(raw, 1e3), summary(topic, 1e3), summary(webhook, 1e3)
    ratio_hook = hook_s["p99"] / raw_s["p99"]
    ratio_topic = topic_s["p99"] / raw_s["p99"]
    return {
        "what": "negative tap → alert on the alerts topic and at a local webhook (apprise json://)",
        "taps": taps, "raw_ms": raw_s, "topic_ms": topic_s, "webhook_ms": hook_s,
        "p99_ratio_topic": ratio_topic, "p99_ratio_webhook": ratio_hook,
        "p50_ratio_webhook": hook_s["p50"] / raw_s["p50"],
        "stages_ms_p50": {k: summary(v, 1e3)["p50"] for k, v in stages.items()},
        "stages_ms_p99": {k: summary(v, 1e3)["p99"] for k, v in stages.items()},
        "target": f"p99 ≤ {TARGET_P99_RATIO:g}× raw p99", "met": max(ratio_hook, ratio_topic) <= TARGET_P99_RATIO,
        "quantiles_ms": {"raw": quantiles([x * 1e3 for x in raw]), "topic": quantiles([x * 1e3 for x in topic]),
                         "webhook": quantiles([x * 1e3 for x in webhook])},
    }
