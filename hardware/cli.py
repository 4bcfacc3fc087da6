"""``smileloop panel``: run a button panel, or copy the firmware to a MicroPython board."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import click

from device import config_option, open_recorder
from hardware.errors import PanelConfigError

FIRMWARE_DIR = Path(__file__).parent / "firmware"
FIRMWARE_FILES = ("panel.py", "main.py")


def parse_buttons(specs: tuple[str, ...]) -> dict[int | str, int]:
    """``17=1`` or ``GPIO17=1`` → {17: 1}; each pin once."""
    buttons: dict[int | str, int] = {}
    for spec in specs:
        pin_text, sep, value_text = spec.partition("=")
        if not sep or not value_text.strip().lstrip("-").isdigit():
            raise PanelConfigError(f"--button {spec!r}: write PIN=VALUE, e.g. 17=1")
        pin: int | str = int(pin_text) if pin_text.isdigit() else pin_text
        if pin in buttons:
            raise PanelConfigError(f"--button {spec!r}: pin {pin} is given twice")
        buttons[pin] = int(value_text)
    if not buttons:
        raise PanelConfigError("give at least one --button PIN=VALUE")
    return buttons


def _run_until_stopped(target: threading.Event) -> None:
    signal.signal(signal.SIGTERM, lambda *_: target.set())
    try:
        while not target.wait(0.5):
            pass
    except KeyboardInterrupt:
        target.set()


@click.group()
def panel() -> None:
    """Button panels: GPIO buttons on this board, or a MicroPython panel on a serial line.

    \b
    Example:
        smileloop panel serial --config device.toml --port /dev/ttyACM0
    """


@panel.command()
@config_option
@click.option("--button", "buttons", multiple=True, metavar="PIN=VALUE", help="A button and its rating (repeat).")
@click.option("--led-ok", help="LED pin lit briefly after each recorded press.")
@click.option("--led-error", help="LED pin lit while presses cannot be recorded.")
def gpio(config_path: Path, buttons: tuple[str, ...], led_ok: str | None, led_error: str | None) -> None:
    """Record presses of buttons wired to this board's GPIO.

    \b
    Example:
        smileloop panel gpio --config device.toml --button 17=1 --button 27=2 --button 22=3 --button 5=4 --led-ok 6
    """
    from hardware.gpio_panel import GpioPanel

    _, recorder = open_recorder(config_path)
    gp = GpioPanel(recorder, parse_buttons(buttons), led_ok=led_ok, led_error=led_error)
    click.echo(f"listening on {len(gp.buttons)} buttons; Ctrl-C to stop", err=True)
    stop = threading.Event()
    _run_until_stopped(stop)
    gp.close()


@panel.command("serial")
@config_option
@click.option("--port", required=True, help="Serial port or pyserial URL: /dev/ttyACM0, loop://, socket://…")
@click.option("--baudrate", type=int, default=115200, show_default=True)
def serial_cmd(config_path: Path, port: str, baudrate: int) -> None:
    """Record taps from a MicroPython button panel on a serial line.

    \b
    Example:
        smileloop panel serial --config device.toml --port /dev/ttyACM0
    """
    from hardware.serial_panel import SerialPanelBridge

    _, recorder = open_recorder(config_path)
    bridge = SerialPanelBridge(port, recorder, baudrate=baudrate)
    stop = threading.Event()
    thread = threading.Thread(target=bridge.run, args=(stop,), daemon=True)
    thread.start()
    click.echo(f"listening on {port}; Ctrl-C to stop", err=True)
    _run_until_stopped(stop)
    thread.join(2)
    bridge.close()


def flash_command(port: str, site_config: Path | None) -> list[str]:
    """One chained mpremote call: copy the firmware, then the site settings as panel_config.py, then reset."""
    config = site_config or FIRMWARE_DIR / "panel_config.py"
    return [sys.executable, "-m", "mpremote", "connect", port,
            "fs", "cp", *(str(FIRMWARE_DIR / name) for name in FIRMWARE_FILES), ":",
            "+", "fs", "cp", str(config), ":panel_config.py", "+", "reset"]


@panel.command()
@click.option("--port", required=True, help="The board's serial port, e.g. /dev/ttyACM0.")
@click.option("--site-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Your edited copy of panel_config.py (pins, panel id).")
@click.option("--dry-run", is_flag=True, help="Print the mpremote commands instead of running them.")
def flash(port: str, site_config: Path | None, dry_run: bool) -> None:
    """Copy the panel firmware to a MicroPython board with mpremote, then reset it.

    \b
    Example:
        smileloop panel flash --port /dev/ttyACM0 --site-config my_panel_config.py
    """
    cmd = flash_command(port, site_config)
    click.echo(shlex.join(cmd))
    if not dry_run:
        result = subprocess.run(cmd)
        if result.returncode != 0:
            raise click.ClickException(f"mpremote failed with exit code {result.returncode}")
