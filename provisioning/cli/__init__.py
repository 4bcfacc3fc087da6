"""``smileloop provision`` (staff) and ``smileloop enroll`` (a new kiosk): thin commands over the library.

Secrets never reach the terminal or a log unless ``--show-secret`` says so; ``--json`` prints one JSON
document for scripts. Every command's docstring has an example (a test checks that).

One module per command group: :mod:`.common` (the group and shared options), :mod:`.broker` (broker-config,
account, serve-claims), :mod:`.places` (site, location), :mod:`.devices` (device) and :mod:`.claims` (claim,
enroll). Importing this package registers them all on ``provision``.
"""

from provisioning.cli import broker, devices, places
from provisioning.cli.claims import enroll
from provisioning.cli.common import _staff_settings, provision

__all__ = ["_staff_settings", "broker", "devices", "enroll", "places", "provision"]
