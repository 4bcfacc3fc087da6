"""One-time claim codes: a new kiosk fetches its own bundle once over MQTT, staff only type or scan a code.

- Staff make a code for a device (``smileloop provision claim new``): 12 characters of Crockford base32
  (60 random bits), shown as ``K7QF-9XRT-M2PA`` and as a QR code, valid at most 7 days. The inventory keeps
  only a selector and a slow salted hash of it (:mod:`provisioning.codes`).
- The kiosk connects with the shared ``claim`` account (from the enrolment profile in its image) under a
  random client id, and may only write ``smileloop/v1/_claim/claim/<its client id>/request`` and read the
  ``…/reply`` beside it (:mod:`provisioning.acl`).
- Its request carries the code encrypted to the claim responder's public key (:mod:`provisioning.claimbox`).
  The responder (``smileloop provision serve-claims``) checks the code against the stored hash, uses it up on
  every answer (a failed preparation too), issues fresh credentials, reloads the broker and answers with
  everything sealed to the kiosk's fresh key: no device name, no reason, nothing in clear.
- Requests are rate-limited per requester, per code and in total, in memory, before the inventory is read.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from provisioning.acl import CLAIM, CLAIM_PREFIX, claim_reply_topic, claim_request_topic
from provisioning.bundle import Bundle, bundle_from_files, commit_bundle, prepare_bundle
from provisioning.claimbox import load_responder_key, open_reply, open_request, public_key, seal_reply, seal_request
from provisioning.codes import ALPHABET, CODE_LEN, new_code, normalize_code, selector
from provisioning.errors import ClaimRefused, ClaimTimeout, InvalidInput, ProvisioningError
from provisioning.inventory import Inventory
from provisioning.ratelimit import RateLimiter
from smileloop_core.clock import Clock, SystemClock
from smileloop_core.connection import Connection
from smileloop_core.mqtt import Backoff, BrokerSettings
from smileloop_core.service import BackgroundService

log = logging.getLogger("provisioning.claims")

__all__ = ["ALPHABET", "CODE_LEN", "DEFAULT_TTL", "MAX_TTL", "ClaimCode", "ClaimLimits", "ClaimResponder",
           "EnrolProfile", "check_ttl", "claim", "create_claim", "new_code", "normalize_code", "qr_file", "qr_text"]

DEFAULT_TTL = timedelta(hours=72)
MAX_TTL = timedelta(days=7)
ASK_AGAIN = 3.0  # seconds between repeated requests while no answer came
_HEX = frozenset("0123456789abcdef")


def check_ttl(ttl: timedelta) -> timedelta:
    """A claim code's lifetime: more than 0 and at most 7 days, or :class:`InvalidInput` saying so."""
    if ttl <= timedelta(0):
        raise InvalidInput("a claim code must live longer than 0 seconds")
    if ttl > MAX_TTL:
        raise InvalidInput(f"a claim code lives at most 7 days ({MAX_TTL.total_seconds() / 3600:g} hours), not "
                           f"{ttl.total_seconds() / 3600:g} hours: make it when the kiosk is about to be installed")
    return ttl


def qr_text(code: str) -> str | None:
    """The code as a QR code drawn in text (for a terminal or a label printer), or None without ``qrcode``."""
    try:
        import io

        import qrcode
    except ImportError:
        return None
    qr = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(normalize_code(code))
    qr.make(fit=True)
    out = io.StringIO()
    qr.print_ascii(out=out)
    return out.getvalue()


def qr_file(code: str, path: Path) -> Path:
    """Write the QR code to ``path``: ``.svg`` (no extra package) or ``.png`` (needs Pillow), for a label."""
    try:
        import qrcode
    except ImportError:
        raise InvalidInput("QR files need the 'qrcode' package: pip install 'smileloop[provisioning]'") from None
    suffix = path.suffix.lower()
    if suffix == ".svg":
        import qrcode.image.svg

        img = qrcode.make(normalize_code(code), image_factory=qrcode.image.svg.SvgPathImage)
    elif suffix == ".png":
        try:
            import PIL  # noqa: F401
        except ImportError:
            raise InvalidInput("PNG QR codes need Pillow; use a .svg file instead") from None
        img = qrcode.make(normalize_code(code))
    else:
        raise InvalidInput(f"QR file {str(path)!r} must end in .svg or .png")
    with path.open("wb") as f:
        img.save(f)
    return path


@dataclass(frozen=True)
class ClaimCode:
    code: str
    device_id: str
    expires_at: datetime


def create_claim(inventory: Inventory, device_id: str, ttl: timedelta = DEFAULT_TTL) -> ClaimCode:
    """A new one-time code for ``device_id``; only its selector and salted hash are stored."""
    code = new_code()
    expires = inventory.add_claim(code, device_id, check_ttl(ttl))
    return ClaimCode(code, device_id, expires)


@dataclass(frozen=True)
class ClaimLimits:
    """(requests, seconds) windows: per requester (client id), per code (wrong guesses at it), and in total."""

    per_requester: tuple[int, float] = (5, 60.0)
    per_code: tuple[int, float] = (10, 3600.0)
    total: tuple[int, float] = (120, 60.0)


@dataclass
class _Limiters:
    requester: RateLimiter
    code: RateLimiter
    total: RateLimiter
    noted: set[str] = field(default_factory=set)


class ClaimResponder(BackgroundService):
    """Answers claim requests on the broker; run by staff beside the broker's files (it reloads the broker).

    ``answer(requester, payload)`` is the whole decision, usable without a broker.
    """

    thread_name = "claims"

    def __init__(self, inventory: Inventory, settings: BrokerSettings | None, *, client_id: str = "smileloop-claims",
                 clock: Clock | None = None, limits: ClaimLimits = ClaimLimits()) -> None:
        super().__init__()
        self.inventory = inventory
        self.settings = settings
        self.answered = 0
        self.refused = 0
        clock = clock or SystemClock()
        self._limits = _Limiters(RateLimiter(*limits.per_requester, clock), RateLimiter(*limits.per_code, clock),
                                 RateLimiter(*limits.total, clock))
        self._key: X25519PrivateKey | None = None
        self.conn: Connection | None = None
        if settings is not None:
            self.conn = Connection(settings, client_id, backoff=Backoff(0.5, 10.0), on_connect=self._on_connect,
                                   on_message=self._on_message, name="claims")

    def _private_key(self) -> X25519PrivateKey:
        if self._key is None:
            from provisioning.broker import broker_dir

            self._key = load_responder_key(broker_dir(self.inventory).claim_key)
        return self._key

    def _throttled(self, kind: str, key: str, wait: float) -> str:
        noted = self._limits.noted
        if f"{kind}:{key}" not in noted:  # one log line per throttled key, not one per request
            if len(noted) > 10_000:
                noted.clear()
            noted.add(f"{kind}:{key}")
            log.warning("claim requests throttled (%s %s…) for %.0fs", kind, key[:8], wait)
        return f"too many claim attempts; wait {wait:.0f} s and try again"

    def answer(self, requester: str, payload: bytes) -> dict[str, Any]:
        """The reply to one claim request: everything sealed to the requester's key, or a bare refusal when the
        request could not be read (then nothing was looked up, and nothing was spent)."""
        wait = self._limits.requester.hit(requester) or self._limits.total.hit("*")
        try:
            code, peer = open_request(self._private_key(), requester, payload)
        except (InvalidInput, ProvisioningError) as e:
            self.refused += 1
            return {"v": 2, "error": self._throttled("requester", requester, wait) if wait else str(e)}
        if wait:
            return self._refuse(requester, peer, self._throttled("requester", requester, wait))
        sel = selector(code)
        wait = self._limits.code.wait(sel)
        if wait:
            return self._refuse(requester, peer, self._throttled("code", sel, wait))
        try:
            device_id = self.inventory.redeem_claim(code)  # used up from here on, whatever happens next
        except ClaimRefused as e:
            if str(e).startswith("unknown"):
                self._limits.code.hit(sel)
            return self._refuse(requester, peer, str(e))
        try:
            bundle = commit_bundle(self.inventory, prepare_bundle(self.inventory, device_id))
        except (ProvisioningError, ValueError, OSError) as e:
            log.error("claim for device %s used up, but its bundle failed: %s", device_id, e)
            return self._refuse(requester, peer, "the claim could not be completed on the server; this code is "
                                                 "used up: ask staff for a new code")
        self.answered += 1
        log.info("claim answered with the bundle of device %s", device_id)
        files = {name: base64.b64encode(data).decode() for name, data in bundle.files.items()}
        return seal_reply(requester, peer, {"ok": True, "device": device_id, "files": files})

    def _refuse(self, requester: str, peer: X25519PublicKey, reason: str) -> dict[str, Any]:
        self.refused += 1
        log.info("claim refused: %s", reason)
        return seal_reply(requester, peer, {"ok": False, "error": reason})

    # --- running --------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        assert self.conn is not None, "a responder without broker settings only answers in tests"
        try:
            while not stop.is_set():
                if not self.conn.ensure(stop):
                    continue
                self.conn.step(timeout=0.05)
        finally:
            self.conn.close()

    def _on_connect(self, client: mqtt.Client) -> None:
        client.subscribe(f"{CLAIM_PREFIX}/{CLAIM}/+/request", qos=1)
        self._ready.set()

    def _on_message(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 6 or parts[3] != CLAIM or parts[5] != "request" or not _is_requester(parts[4]):
            return
        reply = self.answer(parts[4], bytes(msg.payload))
        client.publish(claim_reply_topic(parts[4]), json.dumps(reply), qos=1)


def _is_requester(level: str) -> bool:
    return len(level) == 32 and set(level) <= _HEX


@dataclass(frozen=True)
class EnrolProfile:
    """How a new kiosk reaches the claim responder (``enrol/enrol.toml`` from ``broker-config``)."""

    settings: BrokerSettings
    responder_key: X25519PublicKey

    @classmethod
    def load(cls, path: Path) -> EnrolProfile:
        import tomllib

        try:
            data = tomllib.loads(path.read_text())
            b = data["broker"]
            base = path.resolve().parent
            files = {k: base / b[k] if b.get(k) else None for k in ("ca_file", "cert_file", "key_file")}
            settings = BrokerSettings.from_url(b["url"], username=b.get("username"), connect_timeout=5.0, **files)
            if b.get("password_file"):
                settings = settings.with_password_file(base / b["password_file"])
            if "claim" not in data:
                raise InvalidInput(f"{path}: this enrolment profile is from before claim codes were encrypted; "
                                   "copy the new enrol/ folder from the broker ('smileloop provision broker-config')")
            key = public_key(data["claim"].get("responder_key"), f"{path}: [claim] responder_key")
        except FileNotFoundError as e:
            raise InvalidInput(f"{path}: enrolment profile or a file it names is missing: {e.filename}") from None
        except (tomllib.TOMLDecodeError, KeyError, TypeError, AttributeError) as e:
            raise InvalidInput(f"{path}: not an enrolment profile ({e})") from None
        return cls(settings, key)


def claim(settings: BrokerSettings, code: str, *, responder_key: X25519PublicKey, timeout: float = 30.0) -> Bundle:
    """Fetch this kiosk's bundle with a one-time code: subscribe for the answer, ask, wait, decrypt."""
    normalize_code(code)  # a typo is refused here, before anything goes out
    requester = secrets.token_hex(16)  # the client id: only this connection may read its reply topic
    got: list[bytes] = []
    subscribed = threading.Event()

    def on_connect(client: mqtt.Client) -> None:
        client.on_subscribe = lambda *_: subscribed.set()
        client.subscribe(claim_reply_topic(requester), qos=1)

    conn = Connection(settings, requester, backoff=Backoff(0.2, 2.0), on_connect=on_connect,
                      on_message=lambda c, m: got.append(bytes(m.payload)), name="enroll")
    deadline = time.monotonic() + timeout
    stop = threading.Event()
    request, mine = seal_request(responder_key, requester, code)
    try:
        while not conn.ensure(stop, deadline):
            if time.monotonic() >= deadline:
                raise ClaimTimeout(f"could not reach the broker at {settings.redacted()} within {timeout:g}s "
                                   f"({conn.last_error})")
        while not subscribed.is_set() and time.monotonic() < deadline:  # ask only once the answer can arrive
            conn.step()
        next_ask = 0.0
        while not got and time.monotonic() < deadline:
            if time.monotonic() >= next_ask:  # asked again in case the responder was (re)starting: not retained
                conn.publish(claim_request_topic(requester), json.dumps(request))
                next_ask = time.monotonic() + ASK_AGAIN
            if not conn.step(0.05):
                raise ClaimTimeout(f"lost the broker while waiting for the claim answer ({conn.last_error})")
        if not got:
            raise ClaimTimeout(f"no claim responder answered within {timeout:g}s (is 'smileloop provision "
                               "serve-claims' running?)")
    finally:
        conn.close()
    answers = [open_reply(requester, mine, _json(raw)) for raw in got]
    answer = next((a for a in answers if a.get("ok")), answers[0])  # a repeated ask is refused: already used
    if not answer.get("ok"):
        raise ClaimRefused(str(answer.get("error", "refused")))
    files = {name: base64.b64decode(b64) for name, b64 in answer["files"].items()}
    return bundle_from_files(files)


def _json(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None
