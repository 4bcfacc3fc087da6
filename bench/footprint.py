"""Footprint: resident memory of the kiosk, the sync agent and central vs a bare Kivy window and a bare
paho client, each its own process started in the same run (round by round, interleaved).

RSS is read from /proc once it has settled (no growth over a second), so import-time spikes and lazy
loading are both counted as the running process holds them. The kiosk runs under SDL's offscreen driver.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import tomli_w

from bench import harness
from bench.stats import median

BARE_PAHO = textwrap.dedent("""
    import sys, paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bare", protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", int(sys.argv[1]))
    c.subscribe("bench/bare", 1)
    c.loop_forever()
""")

BARE_KIVY = textwrap.dedent("""
    from kivy.app import App
    from kivy.uix.label import Label
    class Bare(App):
        def build(self):
            return Label(text="hello")
    Bare().run()
""")


def kivy_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "SDL_VIDEODRIVER": "offscreen", "KIVY_NO_ARGS": "1", "KIVY_HOME": str(home),
            "KIVY_NO_FILELOG": "1", "KIVY_NO_CONSOLELOG": "1"}


def settled_rss(proc: subprocess.Popen[bytes], max_wait: float, min_wait: float = 1.5) -> float:
    """RSS in MB once it stopped growing for a second (or after ``max_wait``); NaN if the process died."""
    t0 = time.monotonic()
    last, last_change = 0.0, t0
    while time.monotonic() - t0 < max_wait:
        if proc.poll() is not None:
            return float("nan")
        rss = harness.rss_mb(proc.pid)
        now = time.monotonic()
        if rss > last * 1.01:
            last, last_change = rss, now
        elif now - last_change >= 1.0 and now - t0 >= min_wait:
            return last
        time.sleep(0.2)
    return last


def _measure(cmd: list[str], env: dict[str, str], log: Path, max_wait: float) -> float:
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return settled_rss(proc, max_wait)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def kiosk_available() -> bool:
    out = subprocess.run([sys.executable, "-m", "smileloop", "kiosk", "--help"], capture_output=True, text=True,
                         timeout=60)
    return out.returncode == 0 and "unavailable" not in out.stdout and "--config" in out.stdout


def run(workdir: Path, *, rounds: int, max_wait: float = 20.0, kiosk: bool = True) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    results: dict[str, list[float]] = {}
    notes: dict[str, str] = {}
    with harness.broker(workdir / "broker") as b:
        dev = workdir / "device"
        dev.mkdir(exist_ok=True)
        (dev / "device.toml").write_text(tomli_w.dumps({
            "device": {"id": "kiosk-mem", "site": harness.BENCH_SITE, "location": "exit"},
            "broker": {"url": b.url}, "storage": {"path": "device.db"}}))
        (workdir / "bare_paho.py").write_text(BARE_PAHO)
        (workdir / "bare_kivy.py").write_text(BARE_KIVY)  # Kivy's App wants a source file, not -c
        subjects: dict[str, tuple[list[str], dict[str, str]]] = {
            "bare_paho": ([py, str(workdir / "bare_paho.py"), str(b.port)], dict(os.environ)),
            "sync_agent": ([py, "-m", "smileloop", "sync", "--config", str(dev / "device.toml")], dict(os.environ)),
            "central": ([py, "-m", "smileloop", "central", "--broker", b.url, "--db", str(workdir / "c.db")],
                        dict(os.environ)),
        }
        if kiosk:
            subjects["bare_kivy"] = ([py, str(workdir / "bare_kivy.py")], kivy_env(workdir / "kivy-bare"))
            if kiosk_available():
                subjects["kiosk"] = ([py, "-m", "smileloop", "kiosk", "--config", str(dev / "device.toml"),
                                      "--windowed"], kivy_env(workdir / "kivy-kiosk"))
            else:
                notes["kiosk"] = "`smileloop kiosk` is not available in this tree yet"
        for _ in range(rounds):
            for name, (cmd, env) in subjects.items():
                results.setdefault(name, []).append(_measure(cmd, env, workdir / f"{name}.log", max_wait))
    rss = {k: median(v) for k, v in results.items()}
    out: dict[str, Any] = {"what": "resident memory (MB) once settled", "rounds": rounds, "rss_mb": rss,
                           "per_round": results, "notes": notes}
    base_paho, base_kivy = rss.get("bare_paho"), rss.get("bare_kivy")
    ratios: dict[str, float] = {}
    if base_paho:
        for k in ("sync_agent", "central"):
            if k in rss:
                ratios[f"{k}_vs_bare_paho"] = rss[k] / base_paho
    if base_kivy and "kiosk" in rss:
        ratios["kiosk_vs_bare_kivy"] = rss["kiosk"] / base_kivy
    out["ratios"] = ratios
    return out
