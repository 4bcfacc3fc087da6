"""Host side of the button panels: gpiozero's MockFactory and a real pty pair stand in for the hardware."""

from __future__ import annotations

import os
import threading
import tty

import pytest
from gpiozero.pins.mock import MockFactory

from device.config import parse_config
from device.errors import StoreError
from device.recorder import Recorder
from device.store import DeviceStore
from hardware.cli import flash_command, parse_buttons
from hardware.errors import PanelConfigError
from hardware.gpio_panel import GpioPanel
from hardware.serial_panel import SerialPanelBridge, parse_tap
from smileloop_core.clock import FakeClock
from tests.conftest import wait_for


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def recorder(tmp_path, clock):
    cfg = parse_config({"device": {"id": "pi-1", "site": "s1", "location": "exit"},
                        "survey": {"response_interval": 0}}, base=tmp_path)
    return Recorder(DeviceStore(cfg.storage.path), cfg, clock=clock)


@pytest.fixture
def full_recorder(tmp_path, clock):
    """A Recorder whose store finds the disk full (the reserve it keeps is larger than any disk)."""
    cfg = parse_config({"device": {"id": "pi-1", "site": "s1", "location": "exit"}}, base=tmp_path)
    return Recorder(DeviceStore(cfg.storage.path, reserve_bytes=10**18), cfg, clock=clock)


def values(recorder):
    return [r["value"] for r in recorder.store.all_ratings()]


# --- GPIO -------------------------------------------------------------------------------------------
def test_gpio_presses_are_recorded_debounced_and_blink_the_ok_led(recorder, clock):
    factory = MockFactory()
    panel = GpioPanel(recorder, {17: 1, 27: 2, 22: 3, 5: 4}, led_ok=6, led_error=13, pin_factory=factory)
    try:
        pin17, pin5 = factory.pin(17), factory.pin(5)
        pin17.drive_low()
        wait_for(lambda: values(recorder) == [1], message="press on 17 recorded")
        pin17.drive_high()
        clock.advance(0.01)
        pin17.drive_low()  # bounce 10 ms later: not a second press
        pin17.drive_high()
        clock.advance(1.0)
        pin5.drive_low()
        pin5.drive_high()
        wait_for(lambda: values(recorder) == [1, 4], message="press on 5 recorded")
        wait_for(lambda: any(s.state for s in factory.pin(6).states), message="the OK LED lit")
        assert factory.pin(13).state is False
    finally:
        panel.close()


def test_gpio_store_failure_lights_the_error_led(full_recorder):
    factory = MockFactory()
    panel = GpioPanel(full_recorder, {17: 1}, led_error=13, pin_factory=factory)
    try:
        factory.pin(17).drive_low()
        wait_for(lambda: factory.pin(13).state is True, message="error LED on")
    finally:
        panel.close()


def test_gpio_refuses_a_button_off_the_scale(recorder):
    with pytest.raises(PanelConfigError, match="outside scale smiley4"):
        GpioPanel(recorder, {17: 7}, pin_factory=MockFactory())


# --- serial -----------------------------------------------------------------------------------------
@pytest.fixture
def pty_bridge(recorder):
    """The bridge on one end of a real pty pair; the test plays the panel on the other end."""
    panel_fd, host_fd = os.openpty()
    tty.setraw(panel_fd)
    tty.setraw(host_fd)
    bridge = SerialPanelBridge(os.ttyname(host_fd), recorder)
    stop = threading.Event()
    thread = threading.Thread(target=bridge.run, args=(stop,), daemon=True)
    thread.start()
    received: list[str] = []

    def send(line: str) -> None:
        os.write(panel_fd, line.encode() + b"\n")

    def reader() -> None:
        buf = b""
        while not stop.is_set():
            try:
                buf += os.read(panel_fd, 256)
            except OSError:
                return
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                received.append(line.decode())

    threading.Thread(target=reader, daemon=True).start()
    yield bridge, send, received
    stop.set()
    thread.join(2)
    bridge.close()
    os.close(panel_fd)
    os.close(host_fd)


def test_serial_taps_are_recorded_once_and_acknowledged(pty_bridge, recorder, clock):
    bridge, send, received = pty_bridge
    send("HELLO panel-7 b1 0")
    send("TAP b1 1 1 0")
    send("TAP b1 2 4 5000")  # held five seconds on the panel while the host was busy
    wait_for(lambda: received == ["ACK b1 1", "ACK b1 2"], message="two ACKs")
    send("TAP b1 2 4 7000")  # the ACK was lost; the panel offers it again
    wait_for(lambda: len(received) == 3, message="third ACK")
    assert received[2] == "ACK b1 2"
    rows = recorder.store.all_ratings()
    assert [r["value"] for r in rows] == [1, 4]
    assert rows[1]["ts"] == "2026-11-24T08:59:55.000Z", "a held tap keeps the time it was pressed"
    assert bridge.panel_id == "panel-7" and bridge.duplicates == 1


def test_serial_garbage_gets_an_error_and_records_nothing(pty_bridge, recorder):
    _, send, received = pty_bridge
    send("TAP b1 x 1 0")
    send("HELLO")
    send("TAP b1 3 9 0")  # off the scale: acknowledged so the panel stops, but not recorded
    wait_for(lambda: len(received) == 2, message="two replies")
    assert received[0].startswith("ERR ") and "whole numbers" in received[0]
    assert received[1] == "ACK b1 3"
    assert recorder.store.all_ratings() == []


def test_serial_store_failure_leaves_the_tap_on_the_panel(full_recorder):
    bridge = SerialPanelBridge("loop://", full_recorder)
    assert bridge.handle_line("TAP b1 1 1 0") is None  # no ACK: the panel keeps it and offers it again
    with pytest.raises(StoreError, match="full"):
        full_recorder.record(1)
    assert full_recorder.store.all_ratings() == []


@pytest.mark.parametrize("line", ["TAP", "TAP b 1 2", "TAP b 0 1 0", "TAP b 1 1 -5", "NOPE b 1 1 0"])
def test_parse_tap_refuses_malformed_lines(line):
    with pytest.raises(ValueError):
        parse_tap(line)


# --- CLI --------------------------------------------------------------------------------------------
def test_button_specs():
    assert parse_buttons(("17=1", "GPIO27=2")) == {17: 1, "GPIO27": 2}
    for bad in (("17",), ("17=x",), ("17=1", "17=2"), ()):
        with pytest.raises(PanelConfigError):
            parse_buttons(bad)


def test_flash_copies_firmware_and_site_settings_then_resets(tmp_path):
    site = tmp_path / "my_panel.py"
    site.write_text("PANEL_ID = 'p'\n")
    cmd = flash_command("/dev/ttyACM0", site)
    assert cmd[1:5] == ["-m", "mpremote", "connect", "/dev/ttyACM0"]
    joined = " ".join(cmd)
    assert "panel.py" in joined and "main.py" in joined
    assert f"cp {site} :panel_config.py" in joined and cmd[-1] == "reset"
