"""A service that runs its own loop (``run(stop)``) in a CLI process, or on a background thread in tests
and the demo, with a ``ready`` signal (set once it is subscribed)."""

from __future__ import annotations

import threading
from typing import Self


class BackgroundService:
    thread_name = "service"

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, stop: threading.Event) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        """Run on a background thread; ``wait_ready`` tells when it is subscribed."""
        self._thread = threading.Thread(target=self.run, args=(self._stop,), name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def wait_ready(self, timeout: float = 10.0) -> bool:
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
