"""Button panels: GPIO buttons on the kiosk's own board, and MicroPython panels over a serial line.

Both record through :class:`device.Recorder`, like the touchscreen. Hardware is injected
(gpiozero pin factories, pyserial URLs), so ``MockFactory`` and ``loop://`` or pty pairs serve in tests.
The board firmware is in ``hardware/firmware`` (MicroPython).
"""

from hardware.errors import HardwareError, PanelProtocolError

__all__ = ["HardwareError", "PanelProtocolError"]
