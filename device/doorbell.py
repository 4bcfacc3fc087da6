"""Wake the sync agent the moment a tap is durable, across processes.

The Recorder rings (one datagram on an abstract UNIX socket named after the store's path); the sync agent
listens and wakes from its socket wait at once, instead of finding the tap at its next poll. It is only a
hint: a lost ring, no listener, or a platform without abstract sockets just leaves the agent's poll to find it.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import sys
from pathlib import Path

SUPPORTED = sys.platform.startswith("linux")


def _address(store_path: Path) -> str:
    digest = hashlib.sha1(str(Path(store_path).resolve()).encode()).hexdigest()[:24]
    return f"\0smileloop-{digest}"  # abstract namespace: no file to clean up, no path-length limit


class Bell:
    """The ringing side (the Recorder): never blocks, never fails the tap."""

    def __init__(self, store_path: Path) -> None:
        self._address = _address(store_path)
        self._sock: socket.socket | None = None
        if SUPPORTED:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)

    def ring(self) -> None:
        if self._sock is None:
            return
        # nobody listening, or the listener's queue is full (it is awake anyway): nothing to do
        with contextlib.suppress(OSError):
            self._sock.sendto(b"!", self._address)


class BellListener:
    """The listening side (the sync agent). ``fileno`` goes into its select; ``drain`` says whether it rang."""

    def __init__(self, store_path: Path) -> None:
        self._sock: socket.socket | None = None
        if not SUPPORTED:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(_address(store_path))
        except OSError:  # another agent listens for this store already: poll instead
            sock.close()
            return
        sock.setblocking(False)
        self._sock = sock

    @property
    def listening(self) -> bool:
        return self._sock is not None

    def fileno(self) -> int | None:
        return self._sock.fileno() if self._sock is not None else None

    def drain(self) -> bool:
        rang = False
        while self._sock is not None:
            try:
                self._sock.recv(64)
                rang = True
            except (BlockingIOError, InterruptedError):
                return rang
            except OSError:
                return rang
        return rang

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
