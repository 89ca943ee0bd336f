"""Each host's TLS identity: a certificate authority of its own and a server
certificate signed by it (G-S2: a Conductor peer's certificates are peer-specific).

A node (Conductor peer, VCS, bridge) makes its CA at first start and a server
certificate naming its address (IP SAN) and FQDN, with `cryptography`. A client
verifies the node's HTTPS against that CA once it is in the client's trusted CA
list (the VCS's policy-service certificate verification, G-R7).
"""

from __future__ import annotations

import datetime
import ipaddress
import random
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY_DAYS = 3650


@dataclass(frozen=True)
class CertificateSet:
    ca_cert_pem: str
    ca_key_pem: str
    server_cert_pem: str
    server_key_pem: str


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _serial(rng: random.Random) -> int:
    return rng.getrandbits(120) | 1


def make_certificates(
    *, host_name: str, ip: str, fqdn: str, serial: str, now: datetime.datetime, rng: random.Random
) -> CertificateSet:
    """A CA named after this peer and a server certificate for `ip` and `fqdn`.

    Key pairs come from the system's secure random source (never from `rng`, which
    only numbers the certificates so simulated runs stay reproducible)."""
    start = now - datetime.timedelta(days=1)
    end = now + datetime.timedelta(days=VALIDITY_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tplab"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{host_name} CA {serial}"),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(_serial(rng))
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip))]
    if fqdn:
        names.append(x509.DNSName(fqdn))
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn or ip)]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(_serial(rng))
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return CertificateSet(
        ca_cert.public_bytes(serialization.Encoding.PEM).decode(),
        _pem_key(ca_key),
        server_cert.public_bytes(serialization.Encoding.PEM).decode(),
        _pem_key(server_key),
    )


def describe(cert_pem: str) -> dict[str, str]:
    """What the Security certificates page shows of a certificate."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        alt = ", ".join(str(v) for v in san.get_values_for_type(x509.IPAddress)) or ""
        dns = ", ".join(san.get_values_for_type(x509.DNSName))
        alt_names = ", ".join(part for part in (alt, dns) if part)
    except x509.ExtensionNotFound:
        alt_names = ""
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "X"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "alt_names": alt_names,
        "fingerprint_sha256": cert.fingerprint(hashes.SHA256()).hex(":").upper(),
    }


def server_ssl_context(cert_pem: str, key_pem: str, ca_pem: str, tls_dir: Path) -> ssl.SSLContext:
    """A server-side TLS context serving `cert_pem` with its CA as the chain (the
    files go to `tls_dir`, private to the node: `ssl` loads keys only from files)."""
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    chain, key = tls_dir / "server-chain.pem", tls_dir / "server-key.pem"
    chain.write_text(cert_pem + ca_pem)
    key.touch(mode=0o600)
    key.write_text(key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key)
    return context
