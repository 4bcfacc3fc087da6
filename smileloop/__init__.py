"""smileloop: on-site feedback that closes the loop. This package holds the glue the parts share:
the root CLI, MQTT connection settings, a private Mosquitto for tests and the demo, and topics."""

__version__ = "0.1.0"
