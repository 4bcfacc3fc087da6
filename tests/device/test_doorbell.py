"""The doorbell: a tap recorded in one process wakes a listener in another at once."""

import select
import subprocess
import sys

from device.doorbell import Bell, BellListener


def test_a_ring_from_another_process_wakes_the_listener(tmp_path):
    store = tmp_path / "device.db"
    listener = BellListener(store)
    try:
        assert listener.listening
        assert listener.drain() is False
        subprocess.run([sys.executable, "-c", f"from device.doorbell import Bell; Bell({str(store)!r}).ring()"],
                       check=True, timeout=30)
        readable, _, _ = select.select([listener.fileno()], [], [], 5)
        assert readable, "no ring within 5 s"
        assert listener.drain() is True and listener.drain() is False
    finally:
        listener.close()


def test_rings_are_per_store_and_harmless_without_a_listener(tmp_path):
    Bell(tmp_path / "nobody.db").ring()  # no listener: nothing happens, nothing raised
    a, b = BellListener(tmp_path / "a.db"), BellListener(tmp_path / "b.db")
    second_a = BellListener(tmp_path / "a.db")
    try:
        assert not second_a.listening, "one listener per store; a second agent falls back to polling"
        Bell(tmp_path / "a.db").ring()
        select.select([a.fileno()], [], [], 5)
        assert a.drain() is True and b.drain() is False
    finally:
        a.close()
        b.close()
