"""The ``smileloop`` command: a thin click group over each part's library API.

Subcommands load lazily, so a kiosk without the central extras (or a server without Kivy) still runs
its own commands. Errors raised on purpose by any part become one clear line and an exit code:
2 for bad input (a config, a value, a usage mistake), 1 for a condition (broker unreachable).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click

# name → "module:attribute"; a part adds its commands here.
COMMANDS: dict[str, str] = {
    "tap": "device.cli:tap",
    "simulate": "device.cli:simulate",
    "sync": "sync_agent.cli:sync",
    "central": "central.cli:central",
    "alerts": "central.cli:alerts",
    "org": "central.cli:org",
    "rules": "central.cli:rules_cmd",
    "demo": "smileloop.demo:demo",
    "provision": "provisioning.cli:provision",
    "enroll": "provisioning.cli:enroll",
    "kiosk": "kiosk_ui.cli:kiosk",
    "panel": "hardware.cli:panel",
}

BAD_INPUT = 2
FAILED = 1


def _error_exit_code(exc: BaseException) -> int | None:
    """The exit code for an error a part raised on purpose, or None if it is a bug."""
    from device.errors import ConfigError, DeviceError, InvalidRating
    from smileloop.errors import BrokerUrlError, SmileloopError

    if isinstance(exc, ConfigError | InvalidRating | BrokerUrlError):
        return BAD_INPUT
    bases: list[type[BaseException]] = [DeviceError, SmileloopError]
    for mod, name in (("sync_agent.errors", "SyncError"), ("central.errors", "CentralError"),
                      ("provisioning.errors", "ProvisioningError"), ("hardware.errors", "HardwareError"),
                      ("kiosk_ui.errors", "KioskError")):
        try:
            bases.append(getattr(importlib.import_module(mod), name))
        except (ImportError, AttributeError):
            continue
    if isinstance(exc, tuple(bases)):
        return BAD_INPUT if isinstance(exc, ValueError) else FAILED
    return None


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        except ImportError as e:
            missing = e.name or str(e)

            @click.command(cmd_name, help=f"(unavailable: {missing} is not installed)")
            def unavailable() -> None:
                raise click.ClickException(
                    f"'smileloop {cmd_name}' needs {missing}; install the extra, e.g. pip install 'smileloop[all]'")

            return unavailable

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as e:
            code = _error_exit_code(e)
            if code is None:
                raise
            click.echo(f"error: {e}", err=True)
            ctx.exit(code)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smileloop")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """smileloop: on-site feedback that closes the loop.

    \b
    A tap is stored on the device at once, the sync agent delivers it over MQTT,
    and central raises an alert for a negative one.
    \b
    Example:
        smileloop demo
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    try:
        result = cli.main(args=argv, prog_name="smileloop", standalone_mode=False)
    except click.exceptions.Exit as e:
        return int(e.exit_code or 0)
    except click.ClickException as e:
        e.show()
        return int(e.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    # With standalone_mode=False click returns an Exit's code instead of raising it.
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
