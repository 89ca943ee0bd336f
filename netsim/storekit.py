"""Building blocks every node's store shares: a durable SQLAlchemy engine, password
hashing, and the meta and event-log tables.

- `open_engine(url)`: SQLite runs in WAL mode with synchronous=FULL, so a write
  committed before it is acknowledged survives a kill -9; any SQLAlchemy URL works.
- `hash_password` / `check_password`: scrypt (N=2^14, r=8, p=1), the stored form
  `scrypt$<salt b64>$<digest b64>`.
- `MetaColumns` / `EventColumns`: declarative mixins of a node store's `meta`
  (key/value) and `event_log` tables; each store maps them on its own base
  (`class EventRow(EventColumns, Base)`), so each database keeps its own tables.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Self

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import Engine, Integer, String, Text, create_engine, event
from sqlalchemy.orm import Mapped, mapped_column


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


class MetaColumns:
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class EventColumns:
    """One event-log line: when, how bad, what, and its details as JSON."""

    __tablename__ = "event_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    wall: Mapped[str] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(8))
    event: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)

    @classmethod
    def new(cls, wall: str, event_name: str, level: str, detail: dict[str, Any]) -> Self:
        row = cls()
        row.wall, row.level, row.event = wall, level, event_name
        row.detail = json.dumps(detail, sort_keys=True, default=str)
        return row

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.wall,
            "level": self.level,
            "event": self.event,
            "detail": json.loads(self.detail),
        }
