"""One-time claim codes: a new kiosk fetches its own bundle once over MQTT, staff only type or scan a code.

- Staff make a code for a device (``smileloop provision claim new``): 12 characters of Crockford base32
  (60 random bits), shown as ``K7QF-9XRT-M2PA`` and as a QR code. The inventory stores only a hash of it.
- The kiosk connects with the shared ``claim`` account (from the enrolment profile in its image), which may
  only publish ``smileloop/v1/_claim/<code id>/request`` and read ``…/reply``.
- The kiosk's request carries a fresh X25519 public key. The claim responder
  (``smileloop provision serve-claims``) marks the code used, issues fresh credentials, reloads the broker and
  answers with the bundle encrypted to that key (X25519 + HKDF + AES-256-GCM). Another kiosk reading the claim
  replies sees only ciphertext; a used, expired or unknown code gets a refusal saying which.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from provisioning.acl import CLAIM_PREFIX, claim_reply_topic, claim_request_topic
from provisioning.bundle import Bundle, bundle_from_files, commit_bundle, prepare_bundle
from provisioning.errors import ClaimRefused, ClaimTimeout, InvalidInput, ProvisioningError
from provisioning.inventory import Inventory
from smileloop_core.connection import Connection
from smileloop_core.mqtt import Backoff, BrokerSettings
from smileloop_core.service import BackgroundService

log = logging.getLogger("provisioning.claims")

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_LEN = 12
DEFAULT_TTL = timedelta(hours=72)
ASK_AGAIN = 3.0  # seconds between repeated requests while no answer came
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LEN))
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LEN, 4))


def normalize_code(code: str) -> str:
    """What a person typed → the canonical code: case, dashes, spaces and O/0, I/L/1 mix-ups forgiven."""
    raw = code.upper().translate(_CONFUSABLE)
    if len(raw) != CODE_LEN or any(c not in ALPHABET for c in raw):
        raise InvalidInput(f"claim code {code!r} must be {CODE_LEN} letters and digits like K7QF-9XRT-M2PA")
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LEN, 4))


def code_id(code: str) -> str:
    """The public name of a code (its topic and inventory key); reveals nothing about the code itself."""
    return hashlib.sha256(b"smileloop-claim-id:" + normalize_code(code).encode()).hexdigest()[:32]


def _box_key(shared: bytes, cid: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=cid.encode(), info=b"smileloop claim v1").derive(shared)


def _pub_b64(key: X25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def peer_key(encoded: object) -> X25519PublicKey:
    """The kiosk's public key from a claim request, or :class:`InvalidInput`."""
    try:
        if not isinstance(encoded, str):
            raise ValueError(encoded)
        return X25519PublicKey.from_public_bytes(base64.b64decode(encoded, validate=True))
    except (ValueError, binascii.Error):
        raise InvalidInput("the claim request carries no valid public key") from None


def seal(cid: str, peer: X25519PublicKey, payload: dict[str, Any]) -> dict[str, str]:
    """Encrypt ``payload`` for the kiosk holding ``peer``'s private key (a fresh responder key each time)."""
    mine = X25519PrivateKey.generate()
    nonce = os.urandom(12)
    box = AESGCM(_box_key(mine.exchange(peer), cid)).encrypt(nonce, json.dumps(payload).encode(), cid.encode())
    return {"pub": _pub_b64(mine), "box": base64.b64encode(nonce + box).decode()}


def open_sealed(cid: str, mine: X25519PrivateKey, answer: dict[str, Any]) -> dict[str, Any]:
    try:
        peer = X25519PublicKey.from_public_bytes(base64.b64decode(answer["pub"], validate=True))
        raw = base64.b64decode(answer["box"], validate=True)
        plain = AESGCM(_box_key(mine.exchange(peer), cid)).decrypt(raw[:12], raw[12:], cid.encode())
        data: dict[str, Any] = json.loads(plain)
    except (KeyError, TypeError, ValueError, binascii.Error, InvalidTag):
        raise ClaimRefused("the claim answer could not be read (not for this request)") from None
    return data


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
    """A new one-time code for ``device_id``; only its hash is stored."""
    if ttl <= timedelta(0):
        raise InvalidInput("a claim code must live longer than 0 seconds")
    code = new_code()
    expires = inventory.add_claim(code_id(code), device_id, ttl)
    return ClaimCode(code, device_id, expires)


class ClaimResponder(BackgroundService):
    thread_name = "claims"

    """Answers claim requests on the broker; run by staff beside the broker's files (it reloads the broker).

    ``answer(cid, payload)`` is the whole decision, usable without a broker.
    """

    def __init__(self, inventory: Inventory, settings: BrokerSettings, *,
                 client_id: str = "smileloop-claims") -> None:
        super().__init__()
        self.inventory = inventory
        self.settings = settings
        self.answered = 0
        self.refused = 0
        self.conn = Connection(settings, client_id, backoff=Backoff(0.5, 10.0), on_connect=self._on_connect,
                               on_message=self._on_message, name="claims")

    def answer(self, cid: str, payload: bytes) -> dict[str, Any]:
        """The reply to one claim request: the sealed bundle, or a refusal saying why."""
        try:
            request = json.loads(payload)
            peer = peer_key(request.get("pub") if isinstance(request, dict) else None)  # before the code is spent
            # Prepare first: if credentials cannot be made (broker files missing), the code is not spent.
            prepared = prepare_bundle(self.inventory, self.inventory.redeem_claim(cid, peek=True))
            self.inventory.redeem_claim(cid)
            bundle = commit_bundle(self.inventory, prepared)
        except ClaimRefused as e:
            self.refused += 1
            log.warning("claim %s… refused: %s", cid[:8], e)
            return {"v": 1, "ok": False, "error": str(e)}
        except (ProvisioningError, ValueError) as e:
            self.refused += 1
            log.error("claim %s… failed: %s", cid[:8], e)
            return {"v": 1, "ok": False, "error": f"claim not answered: {e}"}
        self.answered += 1
        log.info("claim %s… answered with the bundle of device %s", cid[:8], bundle.device.device_id)
        files = {name: base64.b64encode(data).decode() for name, data in bundle.files.items()}
        sealed = seal(cid, peer, {"device": bundle.device.device_id, "files": files})
        return {"v": 1, "ok": True, "device": bundle.device.device_id, **sealed}

    # --- running --------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                if not self.conn.ensure(stop):
                    continue
                self.conn.step(timeout=0.05)
        finally:
            self.conn.close()

    def _on_connect(self, client: mqtt.Client) -> None:
        client.subscribe(f"{CLAIM_PREFIX}/+/request", qos=1)
        self._ready.set()

    def _on_message(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 5 or parts[4] != "request" or len(parts[3]) != 32:
            return
        reply = self.answer(parts[3], bytes(msg.payload))
        client.publish(claim_reply_topic(parts[3]), json.dumps(reply), qos=1)


@dataclass(frozen=True)
class EnrolProfile:
    """How a new kiosk reaches the claim responder (``enrol/enrol.toml`` from ``broker-config``)."""

    settings: BrokerSettings

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
        except FileNotFoundError as e:
            raise InvalidInput(f"{path}: enrolment profile or a file it names is missing: {e.filename}") from None
        except (tomllib.TOMLDecodeError, KeyError, TypeError) as e:
            raise InvalidInput(f"{path}: not an enrolment profile ({e})") from None
        return cls(settings)


def claim(settings: BrokerSettings, code: str, *, timeout: float = 30.0) -> Bundle:
    """Fetch this kiosk's bundle with a one-time code: subscribe for the answer, ask, wait, decrypt."""
    cid = code_id(code)
    mine = X25519PrivateKey.generate()
    got: list[dict[str, Any]] = []
    subscribed = threading.Event()

    def on_connect(client: mqtt.Client) -> None:
        client.on_subscribe = lambda *_: subscribed.set()
        client.subscribe(claim_reply_topic(cid), qos=1)

    conn = Connection(settings, f"claim-{cid[:12]}-{secrets.token_hex(3)}", backoff=Backoff(0.2, 2.0),
                      on_connect=on_connect, on_message=lambda c, m: got.append(json.loads(m.payload)),
                      name="enroll")
    deadline = time.monotonic() + timeout
    stop = threading.Event()
    try:
        while not conn.ensure(stop, deadline):
            if time.monotonic() >= deadline:
                raise ClaimTimeout(f"could not reach the broker at {settings.redacted()} within {timeout:g}s "
                                   f"({conn.last_error})")
        while not subscribed.is_set() and time.monotonic() < deadline:  # ask only once the answer can arrive
            conn.step()
        request = json.dumps({"v": 1, "pub": _pub_b64(mine)})
        next_ask = 0.0
        while not got and time.monotonic() < deadline:
            if time.monotonic() >= next_ask:  # asked again in case the responder was (re)starting: not retained
                conn.publish(claim_request_topic(cid), request)
                next_ask = time.monotonic() + ASK_AGAIN
            if not conn.step(0.05):
                raise ClaimTimeout(f"lost the broker while waiting for the claim answer ({conn.last_error})")
        if not got:
            raise ClaimTimeout(f"no claim responder answered within {timeout:g}s (is 'smileloop provision "
                               "serve-claims' running?)")
    finally:
        conn.close()
    answer = next((a for a in got if isinstance(a, dict) and a.get("ok")), got[0])  # a repeated ask may be refused
    if not answer.get("ok"):
        raise ClaimRefused(str(answer.get("error", "refused")))
    data = open_sealed(cid, mine, answer)
    files = {name: base64.b64decode(b64) for name, b64 in data["files"].items()}
    return bundle_from_files(files)
