"""Loaded by every Python process of `make test-night` (it puts this folder on PYTHONPATH).

The suite runs under libfaketime with the wall clock moved and the monotonic clock left real
(``FAKETIME_DONT_FAKE_MONOTONIC=1``): a faked monotonic clock makes Python's timed lock waits (``Event.wait``,
``Queue.get``) hang, since glibc hands their deadline to the kernel directly. But libfaketime 0.9.10 (Debian)
then breaks ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``, which ``time.sleep`` uses from Python 3.11
(``OSError: [Errno 22]``; wolfcw/libfaketime#426). So under faketime, ``time.sleep`` waits in ``select`` instead.
Anywhere else this file does nothing.
"""

import os

if os.environ.get("FAKETIME") and os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1":
    import select
    import time

    def _sleep(secs: float) -> None:
        if secs < 0:
            raise ValueError("sleep length must be non-negative")
        deadline = time.monotonic() + secs
        while (left := deadline - time.monotonic()) > 0:
            select.select([], [], [], left)

    time.sleep = _sleep
