"""The sealed envelopes of a claim: the kiosk's request to the responder, and the responder's reply.

- **Request** (``claim v2``): the kiosk makes a fresh X25519 key pair and encrypts ``{"code": …}`` to the
  claim responder's public key, which comes with the enrolment profile (X25519 + HKDF-SHA256 + AES-256-GCM,
  the requester's client id as associated data). Only the holder of the responder's private key, on the
  broker's host, can read the code; the request cannot be replayed under another requester's topic.
- **Reply**: everything — the bundle, the device's name, or the reason for a refusal — is encrypted to the
  kiosk's fresh public key with a fresh responder key. Only a request that could not be read at all gets a
  short plain refusal (it had no key to seal to).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from provisioning.codes import normalize_code
from provisioning.credentials import write_secret
from provisioning.errors import BrokerSetupMissing, ClaimRefused, InvalidInput

VERSION = 2
_REQUEST, _REPLY = b"smileloop claim request v2", b"smileloop claim reply v2"


def _key(shared: bytes, requester: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=requester.encode(), info=info).derive(shared)


def public_b64(key: X25519PrivateKey | X25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return base64.b64encode(pub.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def public_key(encoded: object, what: str = "the claim request's public key") -> X25519PublicKey:
    """A base64 X25519 public key, or :class:`InvalidInput` naming ``what``."""
    try:
        if not isinstance(encoded, str):
            raise ValueError(encoded)
        return X25519PublicKey.from_public_bytes(base64.b64decode(encoded, validate=True))
    except (ValueError, binascii.Error):
        raise InvalidInput(f"{what} is not a valid X25519 public key") from None


def _seal(mine: X25519PrivateKey, peer: X25519PublicKey, requester: str, info: bytes, data: dict[str, Any]) -> str:
    nonce = os.urandom(12)
    box = AESGCM(_key(mine.exchange(peer), requester, info)).encrypt(nonce, json.dumps(data).encode(),
                                                                     requester.encode())
    return base64.b64encode(nonce + box).decode()


def _open(mine: X25519PrivateKey, peer: X25519PublicKey, requester: str, info: bytes, box: object) -> dict[str, Any]:
    if not isinstance(box, str):
        raise ValueError("no box")
    raw = base64.b64decode(box, validate=True)
    plain = AESGCM(_key(mine.exchange(peer), requester, info)).decrypt(raw[:12], raw[12:], requester.encode())
    data = json.loads(plain)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    return data


# --- the kiosk's side -----------------------------------------------------------------------------------------
def seal_request(responder: X25519PublicKey, requester: str, code: str) -> tuple[dict[str, Any], X25519PrivateKey]:
    """The request proving this kiosk holds ``code``, and the private key its reply will be sealed to."""
    mine = X25519PrivateKey.generate()
    box = _seal(mine, responder, requester, _REQUEST, {"code": normalize_code(code)})
    return {"v": VERSION, "pub": public_b64(mine), "box": box}, mine


def open_reply(requester: str, mine: X25519PrivateKey, answer: object) -> dict[str, Any]:
    """The reply's contents: ``{"ok": true, "device": …, "files": …}`` or ``{"ok": false, "error": …}``."""
    if isinstance(answer, dict) and "box" not in answer and isinstance(answer.get("error"), str):
        return {"ok": False, "error": answer["error"]}  # our request could not be read: nothing to seal to
    try:
        if not isinstance(answer, dict):
            raise ValueError("not an object")
        return _open(mine, public_key(answer.get("pub")), requester, _REPLY, answer.get("box"))
    except (TypeError, ValueError, binascii.Error, InvalidTag):
        raise ClaimRefused("the claim answer could not be read (not for this request)") from None


# --- the responder's side -------------------------------------------------------------------------------------
def open_request(private: X25519PrivateKey, requester: str, payload: bytes) -> tuple[str, X25519PublicKey]:
    """The code and the kiosk's reply key from a request, or :class:`InvalidInput` (nothing is learnt)."""
    try:
        request = json.loads(payload)
        if not isinstance(request, dict) or request.get("v") != VERSION:
            raise ValueError("not a v2 claim request")
        peer = public_key(request.get("pub"))
        code = _open(private, peer, requester, _REQUEST, request.get("box")).get("code")
        return normalize_code(code if isinstance(code, str) else ""), peer
    except (TypeError, ValueError, binascii.Error, InvalidTag):
        raise InvalidInput("the claim request could not be read (is the kiosk's enrolment profile current?)") from None


def seal_reply(requester: str, peer: X25519PublicKey, data: dict[str, Any]) -> dict[str, Any]:
    mine = X25519PrivateKey.generate()  # a fresh responder key for every reply
    return {"v": VERSION, "pub": public_b64(mine), "box": _seal(mine, peer, requester, _REPLY, data)}


def create_responder_key(path: Path) -> X25519PrivateKey:
    """The claim responder's key pair (0600); its public half goes into every kiosk's enrolment profile."""
    key = X25519PrivateKey.generate()
    write_secret(path, key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
    return key


def load_responder_key(path: Path) -> X25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise BrokerSetupMissing(f"{path} is missing: run 'smileloop provision broker-config' again "
                                 "(it makes the claim responder's key and a new enrolment profile)") from None
    if not isinstance(key, X25519PrivateKey):
        raise InvalidInput(f"{path}: not an X25519 key")
    return key
