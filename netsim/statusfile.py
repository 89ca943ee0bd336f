"""A node's `status.json`: what the lab supervisor's status table reads of it.

`StatusFile.publish()` is cheap to call after every change: the file is written
at once when nothing was written in the last `interval_s`, otherwise once at the
end of that interval, and only when its text changed. It is replaced
atomically (write a temporary file, rename), so a reader never sees half of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

PUBLISH_INTERVAL_S = 1.0


class StatusFile:
    def __init__(
        self,
        path: Path,
        build: Callable[[], dict[str, Any]],
        *,
        interval_s: float = PUBLISH_INTERVAL_S,
    ) -> None:
        self.path = path
        self._build = build
        self._interval_s = interval_s
        self._written = ""
        self._handle: asyncio.TimerHandle | None = None
        self._dirty = False

    def publish(self, *, force: bool = False) -> None:
        self._dirty = True
        if self._handle is None or force:
            self._write()

    def close(self) -> None:
        """Write what is pending and stop the timer."""
        if self._dirty:
            self._write()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _write(self) -> None:
        self._dirty = False
        text = json.dumps(self._build(), sort_keys=True, indent=1)
        if text != self._written:
            self._written = text
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, self.path)
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to schedule
            self._handle = asyncio.get_running_loop().call_later(self._interval_s, self._due)

    def _due(self) -> None:
        self._handle = None
        if self._dirty:
            self._write()
