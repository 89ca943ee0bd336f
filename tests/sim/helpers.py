"""Small helpers for simulated-world tests."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from netsim.api import Address


@dataclass
class Inbox:
    """A DatagramHandler that keeps what it receives, with the virtual time."""

    clock: object
    received: list[tuple[float, bytes, Address]] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)

    def datagram_received(self, data: bytes, src: Address) -> None:
        self.received.append((self.clock.monotonic(), data, src))  # type: ignore[attr-defined]

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)

    @property
    def payloads(self) -> list[bytes]:
        return [data for _, data, _ in self.received]


def self_signed(directory: Path, ip: str) -> tuple[Path, Path]:
    """A self-signed server certificate for `ip` (IP SAN), written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)])
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{ip}.crt", directory / f"{ip}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def client_context(trusted: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(trusted))
    return context
