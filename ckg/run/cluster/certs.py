"""A cluster's own certificate authority: who may send work to a ``ckg worker``.

Dask runs whatever a client that reaches the scheduler sends, on every worker, as the
worker's user, and a worker's own port takes commands too. With Dask's TLS every connection
(client to scheduler, scheduler to worker, worker to worker; loopback included) must show a
certificate signed by the cluster's CA, checked both ways. ``ckg cluster certs`` (:func:`make`)
writes that CA's certificate and a key and certificate for the scheduler, the workers and
the clients (``ckg run --cluster``) in one folder private to its owner; a copy of that folder
makes a machine a member. Every member can run code on every worker: Dask has no roles.

The CA's own key is not kept: nobody can sign a member afterwards, and a new folder (with
the scheduler and workers restarted on it) shuts out whoever held a copy of the old one.
"""

import os
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ckg.core import config
from ckg.core.errors import UsageError, require_extra
from ckg.run.cluster import resources

#: Where ``ckg worker`` and ``ckg run --cluster`` look when no folder is named.
ENV = "CKG_CLUSTER_CERTS"
HOME_FOLDER = "cluster"
ROLES = ("scheduler", "worker", "client")
CA = "ca.pem"
DAYS = 730


def folder(given: str | os.PathLike | None = None, home: Path | None = None) -> Path:
    """The certificates' folder: ``given``, else ``$CKG_CLUSTER_CERTS``, else ``cluster`` in
    ``home`` (ckg's home, :func:`ckg.core.config.home`, by default)."""
    chosen = given or os.environ.get(ENV)
    return Path(chosen).expanduser() if chosen else (home or config.home()) / HOME_FOLDER


def files(where: Path, role: str, now: datetime | None = None) -> tuple[str, str, str]:
    """The CA certificate, and ``role``'s certificate and key, in ``where``: Dask's TLS files.

    Raises
    ------
    UsageError
        A file missing, a key other users can read, or a certificate out of its dates;
        naming the file and the command that makes new ones.
    """
    from cryptography import x509

    make_them = f"make them with `ckg cluster certs {where}` and copy that folder here"
    ca, cert, key = where / CA, where / f"{role}.pem", where / f"{role}.key"
    for path in (ca, cert, key):
        if not path.is_file():
            raise UsageError(
                f"no cluster certificate {path}: {make_them}, or name the "
                f"folder with --certs or {ENV}"
            )
    mode = key.stat().st_mode & 0o777
    if mode & 0o077:
        raise UsageError(
            f"{key} can be read by other users (mode {mode:04o}): whoever reads "
            f"it can run code on every worker; chmod 600 {key}"
        )
    now = now or datetime.now(UTC)
    for path in (ca, cert):
        loaded = x509.load_pem_x509_certificate(path.read_bytes())
        if not loaded.not_valid_before_utc <= now <= loaded.not_valid_after_utc:
            raise UsageError(
                f"{path} is valid from {loaded.not_valid_before_utc:%Y-%m-%d} "
                f"to {loaded.not_valid_after_utc:%Y-%m-%d} only: {make_them}"
            )
    return str(ca), str(cert), str(key)


def security_for(address: str, role: str, given=None, home: Path | None = None):
    """Dask's settings for ``role`` (``client`` or ``worker``) at ``address``: TLS with the
    certificates of :func:`folder` (``given``, ``home``), whose peer must show one of the
    same CA (Dask's TLS checks both ends); for a ``tcp://`` address, which only ``insecure``
    lets through (:func:`~ckg.run.cluster.resources.check_address`), None and a warning of what
    it allows."""
    if address.startswith("tcp://"):
        warnings.warn(resources.insecure_risk(address, role), resources.Insecure, stacklevel=4)
        return None
    from distributed.security import Security

    ca, cert, key = files(folder(given, home), role)
    return Security(
        tls_ca_file=ca,
        require_encryption=True,
        **{f"tls_{role}_cert": cert, f"tls_{role}_key": key},
    )


def issue(days: int = DAYS, now: datetime | None = None) -> dict[str, bytes]:
    """A new CA's certificate and a key and certificate per role, as file name to PEM bytes.

    Keys are ECDSA P-256; each member certificate serves both ends of a connection (Dask's
    workers and scheduler both listen and connect). No host names: Dask checks the CA only.

    >>> sorted(issue(1))  # doctest: +NORMALIZE_WHITESPACE
    ['ca.pem', 'client.key', 'client.pem', 'scheduler.key', 'scheduler.pem',
     'worker.key', 'worker.pem']
    """
    require_extra("cluster", "cryptography", what="ckg cluster certs")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = now or datetime.now(UTC)
    start, end = now - timedelta(minutes=5), now + timedelta(days=days)  # clocks differ a bit
    cluster = os.urandom(6).hex()

    def name(role):
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"ckg cluster {cluster}"),
                x509.NameAttribute(NameOID.COMMON_NAME, role),
            ]
        )

    def certificate(subject, key, issuer, issuer_key, *extensions):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(issuer_key, hashes.SHA256())

    def pem(cert):
        return cert.public_bytes(serialization.Encoding.PEM)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("ckg cluster CA")
    ca = certificate(
        ca_name,
        ca_key,
        ca_name,
        ca_key,
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (_key_usage(key_cert_sign=True, crl_sign=True), True),
    )
    signer = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    issued = {CA: pem(ca)}
    for role in ROLES:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = certificate(
            name(role),
            key,
            ca_name,
            ca_key,
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (_key_usage(digital_signature=True), True),
            (
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                False,
            ),
            (signer, False),
        )
        issued[f"{role}.pem"] = pem(cert)
        issued[f"{role}.key"] = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return issued


def make(where: Path, days: int = DAYS) -> datetime:
    """Write a new cluster's certificates (:func:`issue`) into the new or empty folder
    ``where``, made 0700, each file 0600; the date they end.

    Raises
    ------
    UsageError
        ``where`` holds anything already (certificates in use would be replaced, and a
        shared folder would be made private), or belongs to another user; ``days`` < 1.
    """
    if days < 1:
        raise UsageError(f"--days {days}: the certificates must be valid for a day at least")
    where = Path(where)
    if where.exists() and (not where.is_dir() or any(where.iterdir())):
        raise UsageError(
            f"{where} is not an empty folder: name a new one (a cluster's "
            "certificates are replaced by making new ones in a new folder)"
        )
    try:
        config.private_dir(where)  # refuses another user's folder
    except OSError as exc:
        raise UsageError(f"{where} cannot be made: {exc.strerror}") from None
    now = datetime.now(UTC)
    for file_name, content in issue(days, now).items():
        fd = os.open(where / file_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(fd, "wb") as handle:
            handle.write(content)
    return now + timedelta(days=days)


def _key_usage(**allowed):
    from cryptography import x509

    uses = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{use: allowed.get(use, False) for use in uses})
