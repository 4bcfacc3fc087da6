"""A small certificate authority for one installation: the broker's server certificate and one client
certificate per device, made with the ``cryptography`` package (no openssl command line needed).

Keys are ECDSA P-256: small enough for a MicroPython board's TLS, supported by every Mosquitto build.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning.credentials import write_public, write_secret
from provisioning.errors import InvalidInput

CA_YEARS = 10
LEAF_DAYS = 825  # the longest validity browsers and most TLS stacks still accept for a leaf


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, PEM-encoded; ``serial`` identifies it for revocation."""

    cert_pem: bytes
    key_pem: bytes
    serial: int


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


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

    def __init__(self, cert_path: Path, key_path: Path) -> None:
        self.cert_path, self.key_path = cert_path, key_path
        self.cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidInput(f"{key_path}: the CA key must be an EC key")
        self._key = key

    @classmethod
    def create(cls, directory: Path, common_name: str = "smileloop CA") -> CertificateAuthority:
        ca = create_ca(common_name)
        write_public(directory / "ca.pem", ca.cert_pem)
        write_secret(directory / "ca.key", ca.key_pem)
        return cls(directory / "ca.pem", directory / "ca.key")

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
