# The v1 messages the panel sends and reads (docs/PROTOCOL.md): the same bytes as the kiosk's sync agent.
#
# The ratings message is built by hand, in the agent's key order and compact form, so it equals what
# `json.dumps({"v": 1, "device", "site", "sent", "ratings": [Rating.to_wire()...]}, separators=(",", ":"))`
# gives on the kiosk byte for byte; times are whole milliseconds, written as the kiosk writes them
# (RFC 3339 UTC with milliseconds and "Z"; monotonic seconds rounded to 3 places, as Python's repr shows them).
# Runs unchanged on MicroPython and CPython.
try:
    import ujson as json
except ImportError:
    import json

PREFIX = "smileloop/v1"


def topic(site, device, kind):
    return PREFIX + "/" + site + "/" + device + "/" + kind


def civil(days):
    """Days since 1970-01-01 -> (year, month, day) (Howard Hinnant's algorithm; no port's epoch involved)."""
    days += 719468
    era = (days if days >= 0 else days - 146096) // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


def days_from_civil(y, m, d):
    y -= 1 if m <= 2 else 0
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def iso(ms):
    """Milliseconds since 1970 (UTC) -> "2026-11-24T09:15:02.113Z"."""
    days, rest = divmod(ms, 86400000)
    y, mo, d = civil(days)
    s, milli = divmod(rest, 1000)
    return f"{y:04d}-{mo:02d}-{d:02d}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.{milli:03d}Z"


def seconds(ms):
    """Whole milliseconds as Python's repr of round(ms / 1000, 3): 81234512 -> "81234.512", 5000 -> "5.0"."""
    whole, frac = divmod(ms, 1000)
    digits = f"{frac:03d}".rstrip("0") or "0"
    return f"{whole}.{digits}"


def _s(text):
    return json.dumps(text)


def rating(p, scale, location):
    out = (f'{{"id":{_s(p.id)},"seq":{p.seq},"ts":{_s(iso(p.ts_ms))},"scale":{_s(scale)},"value":{p.value},'
           f'"location":{_s(location)},"reason":null,"boot":{_s(p.boot)},"mono":{seconds(p.mono_ms)}')
    if p.flags:
        out += ',"flags":[' + ",".join(_s(f) for f in p.flags.split(" ")) + "]"
    return out + "}"


def ratings(device, site, scale, location, sent, presses):
    """The ratings message as bytes. ``sent``: (wall ms, boot id, monotonic ms) at publish."""
    ts_ms, boot, mono_ms = sent
    body = (f'{{"v":1,"device":{_s(device)},"site":{_s(site)},'
            f'"sent":{{"ts":{_s(iso(ts_ms))},"boot":{_s(boot)},"mono":{seconds(mono_ms)}}},"ratings":['
            + ",".join(rating(p, scale, location) for p in presses) + "]}")
    return body.encode()


def receipt(payload):
    """Central's receipt -> (ids to drop from the journal, [(id, reason)] rejected, central's ts or None).

    Raises ValueError for anything that is not a v1 receipt (the caller ignores it)."""
    msg = json.loads(payload)
    if not isinstance(msg, dict) or msg.get("v") != 1:
        raise ValueError("not a v1 receipt")
    done = [item[0] for item in msg.get("stored") or [] if isinstance(item, list) and item]
    rejected = [(item[0], item[1] if len(item) > 1 else None)
                for item in msg.get("rejected") or [] if isinstance(item, list) and item]
    return done + [r[0] for r in rejected], rejected, msg.get("ts")


def status(fields):
    body = {"v": 1}
    body.update(fields)
    return json.dumps(body).encode()


def config_push(payload):
    """A config push -> (version, tables) or None for an empty retained message; ValueError if malformed."""
    if not payload:
        return None
    msg = json.loads(payload)
    if not isinstance(msg, dict) or msg.get("v") != 1:
        raise ValueError("not a v1 config push")
    version, tables = msg.get("version"), msg.get("config")
    if not isinstance(version, int) or version < 1 or not isinstance(tables, dict):
        raise ValueError("config push needs a whole 'version' >= 1 and a 'config' table")
    for name in tables:
        if name not in ("survey", "hours", "sync", "staff"):
            raise ValueError("config push may not change '" + str(name) + "'")
    return version, tables
