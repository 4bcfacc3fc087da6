"""Starting Kivy for the kiosk: window settings must be set before ``kivy.core.window`` is imported.

Nothing in ``kiosk_ui`` outside ``app``/``screens``/``faces`` imports Kivy, so ``hash-pin`` and the
flow work on a machine without a display.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from device import load_config
from smileloop_core.clock import Clock

log = logging.getLogger(__name__)


def configure_kivy(*, fullscreen: bool, size: tuple[int, int] = (800, 480), home: Path | None = None) -> None:
    """Kiosk settings: full screen, no cursor, no Esc-to-quit, Kivy logging through Python's logging."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    if home is not None:
        os.environ.setdefault("KIVY_HOME", str(home))
    if "kivy.core.window" in sys.modules:
        log.warning("Kivy's window already exists; window settings are ignored")
        return
    from kivy.config import Config

    Config.set("graphics", "width", str(size[0]))
    Config.set("graphics", "height", str(size[1]))
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("graphics", "show_cursor", "0" if fullscreen else "1")
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("kivy", "keyboard_mode", "")
    Config.set("input", "mouse", "mouse,disable_multitouch")


def run_kiosk(config_path: Path, *, fullscreen: bool = True, size: tuple[int, int] = (800, 480),
              backlight: Path | None = None, clock: Clock | None = None) -> None:
    """Load the config, open the store and run the app until staff close it."""
    config = load_config(config_path)  # a bad file stops here with a clear ConfigError, before any window
    from kiosk_ui.backlight import Backlight, NoBacklight, SysfsBacklight

    light: Backlight = SysfsBacklight(backlight) if backlight else NoBacklight()
    configure_kivy(fullscreen=fullscreen, size=size)
    from kivy.base import ExceptionHandler, ExceptionManager

    from kiosk_ui.app import KioskApp
    from kiosk_ui.flow import KioskFlow

    class _LogAndGoOn(ExceptionHandler):
        """A bug in one touch handler is logged; the kiosk keeps serving the next visitor."""

        def handle_exception(self, inst: Any) -> Any:
            if isinstance(inst, KeyboardInterrupt | SystemExit):
                return ExceptionManager.RAISE
            log.exception("kiosk event failed")
            return ExceptionManager.PASS

    ExceptionManager.add_handler(_LogAndGoOn())
    flow = KioskFlow(config, clock=clock, config_path=Path(config_path))
    from kiosk_ui.backlight import follow

    follow(flow, light)
    log.info("kiosk %s starting at %s / %s (config version %s)", config.device_id, config.site,
             config.location, config.version)
    KioskApp(flow).run()
