"""The shared ground of smileloop: what every part imports, importing no part.

Domain: ``clock`` (injected time), ``hours`` (opening hours), ``scales`` and ``model`` (a rating), ``ids``
(the identifier pattern), ``wire`` (the v1 messages), ``topics``, ``errors`` (the root error), ``i18n`` and
``locale/`` (the gettext catalogues of the kiosk and central), ``reasons`` (reason labels).
Glue: ``mqtt`` (broker settings), ``connection`` (one MQTT connection with our own reconnect loop),
``service`` (a background thread with start/wait_ready/stop), ``sqlite`` (open, write transaction,
migrations), ``mosquitto`` and ``embedded_broker`` (a private broker for the demo and tests).
Import the module you need: ``from smileloop_core.topics import ratings``.
"""

__version__ = "0.1.0"  # the software version devices report in their status
