"""The ``smileloop`` command: a thin click group over each part's library API.

Subcommands load lazily, so a kiosk without the central extras (or a server without Kivy) still runs
its own commands. Errors raised on purpose by any part become one clear line and an exit code:
2 for bad input (a config, a value, a usage mistake), 1 for a condition (broker unreachable).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from smileloop_core.errors import SmileloopError

BAD_INPUT = 2
FAILED = 1


# Each command is imported when it is asked for, so a kiosk without the central extras (or a server without
# Kivy) still runs its own commands; the imports are plain ones, so the layers stay visible.
def _tap() -> click.Command:
    from device import tap
    return tap


def _simulate() -> click.Command:
    from device import simulate
    return simulate


def _sync() -> click.Command:
    from sync_agent.cli import sync
    return sync


def _central() -> click.Command:
    from central.cli import central
    return central


def _alerts() -> click.Command:
    from central.cli import alerts
    return alerts


def _org() -> click.Command:
    from central.cli import org
    return org


def _rules() -> click.Command:
    from central.cli import rules_cmd
    return rules_cmd


def _fleet() -> click.Command:
    from central.fleet_cli import fleet_cmd
    return fleet_cmd


def _privacy() -> click.Command:
    from central.privacy_cli import privacy_cmd
    return privacy_cmd


def _backup() -> click.Command:
    from central.privacy_cli import backup
    return backup


def _restore() -> click.Command:
    from central.privacy_cli import restore
    return restore


def _console() -> click.Command:
    from central.console_cli import console_cmd
    return console_cmd


def _users() -> click.Command:
    from central.console_cli import users_cmd
    return users_cmd


def _demo() -> click.Command:
    from smileloop.demo import demo
    return demo


def _provision() -> click.Command:
    from provisioning.cli import provision
    return provision


def _enroll() -> click.Command:
    from provisioning.cli import enroll
    return enroll


def _kiosk() -> click.Command:
    from kiosk_ui.cli import kiosk
    return kiosk


def _panel() -> click.Command:
    from hardware.cli import panel
    return panel


# name → loader; a part adds its commands here.
COMMANDS: dict[str, Callable[[], click.Command]] = {
    "tap": _tap, "simulate": _simulate, "sync": _sync, "central": _central, "alerts": _alerts, "org": _org,
    "rules": _rules, "fleet": _fleet, "demo": _demo, "provision": _provision, "enroll": _enroll, "kiosk": _kiosk,
    "panel": _panel, "privacy": _privacy, "backup": _backup, "restore": _restore, "console": _console,
    "users": _users,
}


def _error_exit_code(exc: BaseException) -> int | None:
    """The exit code for an error a part raised on purpose (every part's base is a SmileloopError), or None
    for a bug."""
    if isinstance(exc, SmileloopError):
        return BAD_INPUT if isinstance(exc, ValueError) else FAILED
    return None


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        load = COMMANDS.get(cmd_name)
        if load is None:
            return None
        try:
            return load()
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
