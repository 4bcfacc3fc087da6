"""``smileloop kiosk``: run the touchscreen app, make a staff PIN hash, render the screens."""

from __future__ import annotations

from pathlib import Path

import click

from kiosk_ui.pin import hash_pin


def _size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r} must look like 800x480") from None
    if not (200 <= w <= 8000 and 200 <= h <= 8000):
        raise click.BadParameter(f"{value!r} must be between 200x200 and 8000x8000")
    return w, h


@click.group(invoke_without_command=True)
@click.option("--config", "config_path", type=click.Path(path_type=Path), envvar="SMILELOOP_CONFIG",
              help="Device config TOML (env SMILELOOP_CONFIG).")
@click.option("--windowed", is_flag=True, help="A window instead of full screen (for trying it on a desktop).")
@click.option("--size", default="800x480", show_default=True, help="Window size when --windowed.")
@click.option("--backlight", type=click.Path(file_okay=False, path_type=Path),
              help="Backlight device to dim outside opening hours, e.g. /sys/class/backlight/10-0045.")
@click.pass_context
def kiosk(ctx: click.Context, config_path: Path | None, windowed: bool, size: str, backlight: Path | None) -> None:
    """Run the touchscreen kiosk, full screen, until staff close it from staff mode.

    Taps are stored through the device Recorder; run `smileloop sync` beside it to deliver them.

    \b
    Example:
        smileloop kiosk --config /etc/smileloop/device.toml
    """
    if ctx.invoked_subcommand is not None:
        return
    if config_path is None:
        raise click.UsageError("--config is required (or set SMILELOOP_CONFIG)")
    from kiosk_ui.window import run_kiosk

    run_kiosk(config_path, fullscreen=not windowed, size=_size(size), backlight=backlight)


@kiosk.command("hash-pin")
@click.option("--pin", prompt="Staff PIN (4-12 digits, 6 or more advised)", hide_input=True, confirmation_prompt=True,
              help="The PIN; prompted for (hidden) when left out.")
def hash_pin_command(pin: str) -> None:
    """Print a salted hash of a staff PIN for [staff] pin_hash in device.toml.

    \b
    Example:
        smileloop kiosk hash-pin      # paste the printed line under [staff] in device.toml
    """
    click.echo(f'pin_hash = "{hash_pin(pin)}"')


@kiosk.command("screenshots")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("docs/screens"),
              show_default=True, help="Folder for the PNG files.")
@click.option("--size", default="800x480", show_default=True, help="Screen size.")
def screenshots(out: Path, size: str) -> None:
    """Render every kiosk screen (English and Swedish) to PNG, headless, with sample data.

    \b
    Example:
        smileloop kiosk screenshots --out docs/screens
    """
    from kiosk_ui.shots import render_all_headless

    for path in render_all_headless(out, _size(size)):
        click.echo(str(path))
