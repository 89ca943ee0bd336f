"""Building blocks every node's store shares: a durable SQLAlchemy engine and
password hashing.

- `open_engine(url)`: SQLite runs in WAL mode with synchronous=FULL, so a write
  committed before it is acknowledged survives a kill -9; any SQLAlchemy URL works.
- `hash_password` / `check_password`: scrypt (N=2^14, r=8, p=1), the stored form
  `scrypt$<salt b64>$<digest b64>`.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import Engine, create_engine, event


def open_engine(url: str) -> Engine:
    engine = create_engine(url)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def hash_password(password: str, salt: bytes) -> str:
    kdf = Scrypt(salt=salt, length=32, n=2**14, r=8, p=1)
    digest = kdf.derive(password.encode())
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_password(password: str, stored: str) -> bool:
    try:
        _, salt_b64, digest_b64 = stored.split("$")
        kdf = Scrypt(salt=base64.b64decode(salt_b64), length=32, n=2**14, r=8, p=1)
        kdf.verify(password.encode(), base64.b64decode(digest_b64))
    except (ValueError, InvalidKey):
        return False
    return True
