"""A small loopback TCP proxy between the sync agent and the broker that can cut every connection at once.

Cutting closes both sockets with an RST (``SO_LINGER`` 0), as a dropped Wi-Fi link or a NAT timeout does
from the client's point of view: whatever was in flight is gone, and nobody said goodbye.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading


class CuttingProxy:
    """``127.0.0.1:<port>`` → ``127.0.0.1:<upstream>``; ``cut()`` drops every live connection."""

    def __init__(self, upstream_port: int, port: int = 0) -> None:
        self.upstream_port = upstream_port
        self._server = socket.create_server(("127.0.0.1", port))
        self.port = int(self._server.getsockname()[1])
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.cuts = 0
        self._thread = threading.Thread(target=self._accept, name="proxy", daemon=True)

    def start(self) -> CuttingProxy:
        self._thread.start()
        return self

    def cut(self) -> int:
        """Reset every live connection; returns how many were cut."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            _reset(a)
            _reset(b)
        self.cuts += 1
        return len(pairs)

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        self.cut()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:
                _reset(client)  # the broker is down: the client sees the connection refused-ish
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True, name="proxy-pipe").start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                if self._stop.is_set():
                    break
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        raise ConnectionError
                    peers[s].sendall(data)
        except (OSError, ValueError, ConnectionError):
            pass
        finally:
            with self._lock:
                if (a, b) in self._pairs:
                    self._pairs.remove((a, b))
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()


def _reset(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        s.close()
