"""The broker's files: ``mosquitto.conf`` with its listeners, the password file, the ACL, the CA, the server
certificate and the revocation list, all in one folder that ``mosquitto -c DIR/mosquitto.conf`` runs as is.

Every device change re-writes the password file, ACL and CRL from the inventory and sends the running broker
SIGHUP (Mosquitto re-reads them then), so a revoked device is refused at its next connect.

On the TLS listener a client's certificate *is* its identity (``use_identity_as_username``): the broker takes
the username from the certificate's CN, so the claim certificate every kiosk image holds is only ever the
``claim`` account, whatever username and password come with it (docs/SECURITY.md).
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from provisioning.acl import CENTRAL, CLAIM, PROVISIONER, render_acl, render_passwd
from provisioning.claimbox import create_responder_key, load_responder_key, public_b64
from provisioning.credentials import mosquitto_hash, new_password, write_public, write_secret
from provisioning.errors import BrokerSetupMissing, InvalidInput
from provisioning.inventory import Inventory
from provisioning.tls import CertificateAuthority, ca_passphrase, is_encrypted

log = logging.getLogger("provisioning.broker")

ACCOUNTS = {CENTRAL: CENTRAL, PROVISIONER: PROVISIONER, CLAIM: CLAIM}  # username → role


@dataclass(frozen=True)
class BrokerDir:
    """Where each file of one broker setup lives."""

    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "mosquitto.conf"

    @property
    def passwd(self) -> Path:
        return self.root / "passwd"

    @property
    def acl(self) -> Path:
        return self.root / "acl"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def claim_key(self) -> Path:
        """The claim responder's private key: only it can read the codes kiosks send."""
        return self.root / "claim-responder.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key"

    @property
    def crl(self) -> Path:
        return self.root / "crl.pem"

    @property
    def pid(self) -> Path:
        return self.data / "mosquitto.pid"  # the broker writes it after dropping to its user, who owns data/

    @property
    def data(self) -> Path:
        return self.root / "data"

    def account_password(self, username: str) -> Path:
        return self.root / "accounts" / f"{username}.password"

    def account_cert(self, username: str) -> tuple[Path, Path]:
        return self.root / "accounts" / f"{username}.pem", self.root / "accounts" / f"{username}.key"

    @property
    def enrol(self) -> Path:
        """The enrolment profile that goes into every kiosk image: how to reach the claim responder."""
        return self.root / "enrol" / "enrol.toml"


@dataclass(frozen=True)
class BrokerSetup:
    directory: BrokerDir
    port: int
    tls_port: int | None
    device_url: str
    written: list[Path]


def broker_dir(inventory: Inventory) -> BrokerDir:
    root = inventory.setting("broker_dir")
    if root is None:
        raise BrokerSetupMissing(f"{inventory.path}: no broker set up yet; run 'smileloop provision broker-config "
                                 "--out DIR --port P' first")
    return BrokerDir(Path(root))


def default_run_as() -> str | None:
    """As root, Mosquitto drops to ``mosquitto``; the files it reads must belong to that account then."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam("mosquitto")
        return "mosquitto"
    except KeyError:
        return "root"


def write_broker_config(inventory: Inventory, out: Path, port: int, *, bind: str = "127.0.0.1",
                        plain_bind: str | None = None, tls_port: int | None = None,
                        hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), public_url: str | None = None,
                        run_as: str | None = None,
                        require_client_cert: bool = True) -> BrokerSetup:
    """Write (or re-write) a complete broker setup in ``out`` and remember it in the inventory.

    Re-running keeps the CA and the account passwords that exist, so devices already out there stay valid.
    With a TLS port, the plain listener stays on loopback (for central and the claim responder on the same
    host) unless ``plain_bind`` says otherwise; ``bind`` is where devices connect.
    """
    for name, value in (("--port", port), ("--tls-port", tls_port)):
        if value is not None and not 1 <= value <= 65535:
            raise InvalidInput(f"{name} {value} must be 1-65535")
    if tls_port is not None and tls_port == port:
        raise InvalidInput("--tls-port must differ from --port")
    d = BrokerDir(out.resolve())
    d.root.mkdir(parents=True, exist_ok=True)
    d.data.mkdir(exist_ok=True)
    if run_as and run_as != "root" and os.geteuid() == 0:
        import pwd

        try:
            entry = pwd.getpwnam(run_as)
        except KeyError:
            raise InvalidInput(f"--run-as {run_as!r}: no such user on this machine") from None
        os.chown(d.data, entry.pw_uid, entry.pw_gid)  # the broker writes its persistence file here
    written: list[Path] = []
    passphrase = ca_passphrase()
    if not (d.ca_cert.exists() and d.ca_key.exists()):
        CertificateAuthority.create(d.root, passphrase=passphrase)
        written += [d.ca_cert, d.ca_key]
    ca = CertificateAuthority.load(d.ca_cert, d.ca_key)
    if passphrase and not is_encrypted(d.ca_key):
        ca.encrypt_key(passphrase)  # asked for now: the same key, so every certificate stays valid
        written.append(d.ca_key)
    if not d.claim_key.exists():
        create_responder_key(d.claim_key)
        written.append(d.claim_key)
    if tls_port is not None:
        server = ca.issue(hosts[0], server_names=list(hosts), client=False)
        write_public(d.server_cert, server.cert_pem)
        write_secret(d.server_key, server.key_pem, owner=run_as)
        written += [d.server_cert, d.server_key]
    for username, role in ACCOUNTS.items():
        pw_file = d.account_password(username)
        if not pw_file.exists() or username not in inventory.accounts():
            password = new_password()
            write_secret(pw_file, password + "\n")
            inventory.set_account(username, role, mosquitto_hash(password))
            written.append(pw_file)
        if tls_port is not None:
            cert_path, key_path = d.account_cert(username)
            if not cert_path.exists():
                issued = ca.issue(username)
                write_public(cert_path, issued.cert_pem)
                write_secret(key_path, issued.key_pem)
                written += [cert_path, key_path]
    first_host = hosts[0] if hosts else "127.0.0.1"
    device_url = public_url or (f"mqtts://{first_host}:{tls_port}" if tls_port else f"mqtt://{first_host}:{port}")
    inventory.set_settings(broker_dir=str(d.root), device_url=device_url, tls="1" if tls_port else "0",
                           client_certs="1" if (tls_port and require_client_cert) else "0")
    plain = plain_bind or ("127.0.0.1" if tls_port is not None else bind)
    d.conf.write_text(_conf_text(d, port, plain, bind, tls_port, run_as, require_client_cert))
    written.append(d.conf)
    written += sync_broker_files(inventory, run_as=run_as)
    _write_enrol_profile(d, device_url, tls=tls_port is not None, client_cert=bool(tls_port and require_client_cert))
    written.append(d.enrol)
    return BrokerSetup(d, port, tls_port, device_url, written)


def _conf_text(d: BrokerDir, port: int, plain_bind: str, bind: str, tls_port: int | None, run_as: str | None,
               require_client_cert: bool) -> str:
    lines = [
        "# smileloop broker, written by 'smileloop provision broker-config'; run: mosquitto -c " + str(d.conf),
        "# passwd, acl and crl.pem are re-written on every device change, then the broker gets SIGHUP.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {d.passwd}",
        f"acl_file {d.acl}",
        f"pid_file {d.pid}",
        "persistence true",
        f"persistence_location {d.data}/",
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages true",
    ]
    if run_as:
        lines.append(f"user {run_as}")
    lines += ["", f"listener {port} {plain_bind}"]
    if tls_port is not None:
        lines += ["", f"listener {tls_port} {bind}", f"cafile {d.ca_cert}", f"certfile {d.server_cert}",
                  f"keyfile {d.server_key}", "tls_version tlsv1.2"]
        if require_client_cert:
            # The certificate is the identity: its CN becomes the username (a password sent along is not
            # used), so no certificate can act as another account. The CRL shuts out replaced certificates.
            lines += ["require_certificate true", "use_identity_as_username true", f"crlfile {d.crl}"]
    return "\n".join(lines) + "\n"


def _write_enrol_profile(d: BrokerDir, url: str, *, tls: bool, client_cert: bool) -> None:
    """``enrol/``: the claim account's URL, password, CA (and certificate) — the same in every kiosk image.

    It opens only the kiosk's own claim topics; the kiosk encrypts its code to the responder's public key
    (``[claim] responder_key``) and the answer is encrypted for the kiosk that asked.
    """
    folder = d.enrol.parent
    folder.mkdir(exist_ok=True)
    write_secret(folder / "claim.password", d.account_password(CLAIM).read_text())
    broker: dict[str, str] = {"url": url, "username": CLAIM, "password_file": "claim.password"}
    claim = {"responder_key": public_b64(load_responder_key(d.claim_key))}
    if tls:
        write_public(folder / "ca.pem", d.ca_cert.read_bytes())
        broker["ca_file"] = "ca.pem"
    if client_cert:
        cert, key = d.account_cert(CLAIM)
        write_public(folder / "claim.pem", cert.read_bytes())
        write_secret(folder / "claim.key", key.read_bytes())
        broker |= {"cert_file": "claim.pem", "key_file": "claim.key"}
    write_public(d.enrol, "# How a new kiosk reaches the claim responder: smileloop enroll --profile THIS --code …\n"
                 + tomli_w.dumps({"broker": broker, "claim": claim}))


def rotate_account(inventory: Inventory, username: str) -> Path:
    """A new password (and, with TLS, a new certificate) for a broker account (``central``, ``provisioner`` or
    ``claim``); returns the password file. The old certificate goes on the revocation list.

    The claim password and certificate also go into ``enrol/``: kiosk images made before still hold the old ones.
    """
    if username not in ACCOUNTS:
        raise InvalidInput(f"account {username!r} is not one of {', '.join(ACCOUNTS)}; devices use 'device rotate'")
    d = broker_dir(inventory)
    password = new_password()
    write_secret(d.account_password(username), password + "\n")
    inventory.set_account(username, ACCOUNTS[username], mosquitto_hash(password))
    cert_path, key_path = d.account_cert(username)
    if cert_path.exists():
        from cryptography import x509

        old_serial = x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number
        issued = CertificateAuthority.load(d.ca_cert, d.ca_key).issue(username)
        write_public(cert_path, issued.cert_pem)
        write_secret(key_path, issued.key_pem)
        inventory.revoke_serial(old_serial, username)
    if username == CLAIM and d.enrol.parent.exists():
        write_secret(d.enrol.parent / "claim.password", password + "\n")
        if cert_path.exists() and (d.enrol.parent / "claim.pem").exists():
            write_public(d.enrol.parent / "claim.pem", cert_path.read_bytes())
            write_secret(d.enrol.parent / "claim.key", key_path.read_bytes())
    apply_to_broker(inventory)
    return d.account_password(username)


@contextmanager
def _files_lock(d: BrokerDir) -> Iterator[None]:
    """One writer of the broker's files at a time (staff commands and the claim responder may overlap).

    Each caller has committed its inventory change before it waits here and renders after, so the last file
    written always holds every change.
    """
    with (d.root / ".lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def sync_broker_files(inventory: Inventory, *, run_as: str | None = None) -> list[Path]:
    """Re-write the password file, ACL and CRL from the inventory (atomically, 0600)."""
    d = broker_dir(inventory)
    with _files_lock(d):
        return _write_files(inventory, d, run_as)


def _write_files(inventory: Inventory, d: BrokerDir, run_as: str | None) -> list[Path]:
    owner = run_as if run_as is not None else inventory.setting("run_as")
    if run_as is not None:
        inventory.set_settings(run_as=run_as)
    accounts = inventory.accounts()
    hashes = {user: hashed for user, (_, hashed) in accounts.items()}
    device_hashes = inventory.device_hashes()
    clash = set(hashes) & set(device_hashes)
    if clash:
        raise InvalidInput(f"device ids clash with broker accounts: {', '.join(sorted(clash))}")
    hashes.update(device_hashes)
    write_secret(d.passwd, render_passwd(hashes), owner=owner)
    write_secret(d.acl, render_acl({u: role for u, (role, _) in accounts.items()}, inventory.devices()), owner=owner)
    written = [d.passwd, d.acl]
    if d.ca_key.exists():
        try:
            ca = CertificateAuthority.load(d.ca_cert, d.ca_key)
        except BrokerSetupMissing as e:  # passwords and ACL still apply now; a revoked device can do nothing
            log.warning("revocation list not updated: %s", e)
        else:
            write_secret(d.crl, ca.crl(inventory.revoked_serials()), mode=0o644, owner=owner)
            written.append(d.crl)
    return written


def reload_broker(inventory: Inventory) -> int | None:
    """SIGHUP the broker running from this setup (its pid file), so it re-reads passwords and ACL.

    Returns the pid signalled, or None when no broker from this setup is running (it reads the files when
    it starts). A pid file left by a dead broker, or naming another program, is ignored.
    """
    d = broker_dir(inventory)
    try:
        pid = int(d.pid.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None
    if "mosquitto" not in comm:
        log.warning("%s names pid %d (%s), not mosquitto; not signalled", d.pid, pid, comm)
        return None
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return None
    log.info("broker pid %d told to reload its password file and ACL", pid)
    return pid


def apply_to_broker(inventory: Inventory) -> int | None:
    """Re-write the broker's files from the inventory and make a running broker reload them."""
    sync_broker_files(inventory)
    return reload_broker(inventory)
