"""A small certificate authority for one installation: the broker's server certificate and one client
certificate per device, made with the ``cryptography`` package (no openssl command line needed).

Keys are ECDSA P-256: small enough for a MicroPython board's TLS, supported by every Mosquitto build.

The CA key (``ca.key``) may be kept encrypted (PKCS#8, the best encryption ``cryptography`` offers) with a
passphrase read from ``SMILELOOP_CA_PASSPHRASE_FILE`` (a file, e.g. systemd's ``$CREDENTIALS_DIRECTORY``)
or ``SMILELOOP_CA_PASSPHRASE`` — never from the command line, where ``ps`` and shell history would show it.
Mosquitto never needs this key; only the commands that sign (device certificates, the revocation list) do.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning.credentials import write_public, write_secret
from provisioning.errors import BrokerSetupMissing, InvalidInput

PASSPHRASE_ENV, PASSPHRASE_FILE_ENV = "SMILELOOP_CA_PASSPHRASE", "SMILELOOP_CA_PASSPHRASE_FILE"

CA_YEARS = 10
LEAF_DAYS = 825  # the longest validity browsers and most TLS stacks still accept for a leaf


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, PEM-encoded; ``serial`` identifies it for revocation."""

    cert_pem: bytes
    key_pem: bytes
    serial: int


def _key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def ca_passphrase() -> bytes | None:
    """The CA key's passphrase from the environment (a file first), or None when none is set."""
    path = os.environ.get(PASSPHRASE_FILE_ENV)
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as e:
            raise BrokerSetupMissing(f"{PASSPHRASE_FILE_ENV}={path}: cannot read it ({e.strerror})") from None
    else:
        text = os.environ.get(PASSPHRASE_ENV, "")
    if text and len(text) < 12:
        raise InvalidInput("the CA passphrase must be at least 12 characters")
    return text.encode() or None


def is_encrypted(key_path: Path) -> bool:
    return b"ENCRYPTED" in key_path.read_bytes()[:64]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def create_ca(common_name: str = "smileloop CA", *, now: dt.datetime | None = None) -> Issued:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "smileloop")])
    start = now or _now()
    serial = x509.random_serial_number()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(start - dt.timedelta(minutes=5))
            .not_valid_after(start + dt.timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), serial)


class CertificateAuthority:
    """Signs server and client certificates with a CA kept in two files (``ca.pem``, ``ca.key`` 0600)."""

    def __init__(self, cert_path: Path, key_path: Path, passphrase: bytes | None = None) -> None:
        self.cert_path, self.key_path = cert_path, key_path
        self.cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        encrypted = is_encrypted(key_path)
        if encrypted and not passphrase:
            raise BrokerSetupMissing(f"{key_path} is encrypted: set {PASSPHRASE_FILE_ENV} to a file holding its "
                                     f"passphrase (or {PASSPHRASE_ENV})")
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=passphrase if encrypted else None)
        except ValueError:
            raise BrokerSetupMissing(f"{key_path}: wrong passphrase for the CA key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidInput(f"{key_path}: the CA key must be an EC key")
        self._key = key

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> CertificateAuthority:
        """The CA with the passphrase from the environment (:func:`ca_passphrase`), if its key is encrypted."""
        return cls(cert_path, key_path, ca_passphrase() if is_encrypted(key_path) else None)

    @classmethod
    def create(cls, directory: Path, common_name: str = "smileloop CA", *,
               passphrase: bytes | None = None) -> CertificateAuthority:
        ca = create_ca(common_name)
        write_public(directory / "ca.pem", ca.cert_pem)
        key = serialization.load_pem_private_key(ca.key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        write_secret(directory / "ca.key", _key_pem(key, passphrase))
        return cls(directory / "ca.pem", directory / "ca.key", passphrase)

    def encrypt_key(self, passphrase: bytes) -> None:
        """Re-write ``ca.key`` encrypted with ``passphrase`` (the same key: every certificate stays valid)."""
        write_secret(self.key_path, _key_pem(self._key, passphrase))

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, common_name: str, *, server_names: list[str] | None = None, client: bool = True,
              days: int = LEAF_DAYS, now: dt.datetime | None = None) -> Issued:
        """A leaf certificate: a client one (CN = the MQTT username), or a server one for ``server_names``."""
        key = ec.generate_private_key(ec.SECP256R1())
        start = now or _now()
        serial = x509.random_serial_number()
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                   .issuer_name(self.cert.subject).public_key(key.public_key()).serial_number(serial)
                   .not_valid_before(start - dt.timedelta(minutes=5)).not_valid_after(start + dt.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                                  critical=False))
        if server_names:
            alt: list[x509.GeneralName] = []
            for name in server_names:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(name)))
                except ValueError:
                    alt.append(x509.DNSName(name))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), serial)

    def crl(self, revoked_serials: list[int], *, now: dt.datetime | None = None) -> bytes:
        """A certificate revocation list naming ``revoked_serials``, valid for a year (PEM)."""
        start = now or _now()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
                   .last_update(start - dt.timedelta(minutes=5)).next_update(start + dt.timedelta(days=365)))
        for serial in revoked_serials:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(start).build())
        return builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
