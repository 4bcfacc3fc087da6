"""The kiosk: a Kivy touchscreen app a visitor understands in one second.

It only draws and records through :class:`device.Recorder`; storage lives in ``device`` and all network
work in the sync agent. :mod:`kiosk_ui.flow` holds the rules (no Kivy), :mod:`kiosk_ui.app` and
:mod:`kiosk_ui.screens` draw them. Start it with ``smileloop kiosk --config device.toml``.
"""
