# device.json (written by provisioning; docs/PROTOCOL.md "Device bundle") -> the settings the uplink needs.
# Runs unchanged on MicroPython and CPython.
try:
    import ujson as json
except ImportError:
    import json


def broker_address(url):
    """mqtt://host[:port] -> (host, port). The panel speaks plain MQTT (docs/PANELS.md, "Limits")."""
    if not url.startswith("mqtt://"):
        raise ValueError("broker.url " + repr(url) + ": the panel needs mqtt://host:port")
    rest = url[7:].split("?")[0].split("/")[0]
    host, _, port = rest.partition(":")
    return host, int(port or 1883)


def load(folder):
    with open(folder + "/device.json") as f:
        cfg = json.loads(f.read())
    dev, broker, survey = cfg["device"], cfg["broker"], cfg.get("survey", {})
    host, port = broker_address(broker["url"])
    password = None
    if broker.get("password_file"):
        with open(folder + "/" + broker["password_file"]) as f:
            password = f.read().strip()
    return {"device": dev["id"], "site": dev["site"], "location": dev["location"],
            "scale": survey.get("scale", "smiley4"), "response_interval": survey.get("response_interval", 3.0),
            "host": host, "port": port, "username": broker.get("username"), "password": password,
            "hours": cfg.get("hours", {})}
