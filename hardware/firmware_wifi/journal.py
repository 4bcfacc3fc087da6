# ruff: noqa: SIM105  (MicroPython has no contextlib: try/except/pass it is)
# The press journal: every recorded press, in flash, until central's receipt names it.
#
# Runs unchanged on MicroPython and CPython (only the builtin open() and os.rename/os.remove are used).
#
# The file is append-only text, one record a line, each line ending in "*<crc32 hex>\n":
#   N,<next seq>,<refused>                          the head, written when the file is compacted
#   P,<seq>,<id>,<value>,<ts ms>,<boot>,<mono ms>,<flags>   a press
#   D,<seq>[,<seq>...]                              presses central has receipted (stored or rejected)
# A power cut mid-write leaves at most the last line torn (no newline, or a checksum that does not match):
# loading drops it and rewrites the file cleanly before anything is appended, so a torn tail never glues
# itself to the next record and never touches the records before it. A bad line elsewhere (worn flash) is
# skipped and counted; the lines after it still load.
#
# Bounded: at most `limit` presses wait for a receipt. When the journal is full a new press is REFUSED (not
# recorded, the visitor gets no thank-you, `refused` counts it in the status): the presses already kept are
# never pushed out by newer ones. The file is compacted (rewritten to a temporary file, then renamed over the
# old one: atomic on LittleFS and on POSIX) when receipted records make up most of it.
import os

try:
    from binascii import crc32
except ImportError:  # a port built without it
    def crc32(data, crc=0):  # type: ignore[misc]
        crc ^= 0xFFFFFFFF
        for b in data:
            crc ^= b
            for _ in range(8):
                crc = (crc >> 1) ^ (0xEDB88320 & -(crc & 1))
        return crc ^ 0xFFFFFFFF


class Press:
    __slots__ = ("boot", "flags", "id", "mono_ms", "seq", "ts_ms", "value")

    def __init__(self, seq, id, value, ts_ms, boot, mono_ms, flags=""):
        self.seq = seq
        self.id = id
        self.value = value
        self.ts_ms = ts_ms
        self.boot = boot
        self.mono_ms = mono_ms
        self.flags = flags

    def fields(self):
        return "P,%d,%s,%d,%d,%s,%d,%s" % (self.seq, self.id, self.value, self.ts_ms, self.boot,  # noqa: UP031
                                          self.mono_ms, self.flags)


def _line(body):
    data = body.encode()
    return data + b"*%08x\n" % (crc32(data) & 0xFFFFFFFF)


def _check(line):
    """The body of a whole line whose checksum matches, else None."""
    star = line.rfind(b"*")
    if star < 0 or len(line) - star != 9:
        return None
    body = line[:star]
    try:
        if int(line[star + 1:], 16) != crc32(body) & 0xFFFFFFFF:
            return None
        return body.decode()
    except (ValueError, UnicodeError):
        return None


class Journal:
    def __init__(self, path, limit=1000, compact_bytes=16384):
        self.path = path
        self.limit = limit
        self.compact_bytes = compact_bytes
        self.pending = []  # Press, oldest first
        self.next_seq = 1
        self.refused = 0  # presses not recorded because the journal was full
        self.torn = 0  # torn last lines dropped at load
        self.corrupt = 0  # bad lines elsewhere, skipped
        self._size = 0
        self._load()

    # --- loading -------------------------------------------------------------------------------------------
    def _load(self):
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        _remove(self.path + ".tmp")  # a compaction the power cut interrupted: the old file is still whole
        lines = data.split(b"\n")
        tail = lines.pop()  # after the last newline: empty unless the last write was torn
        if tail:
            self.torn += 1
        presses: dict = {}
        done: set = set()
        for i, raw in enumerate(lines):
            body = _check(raw)
            if body is None:
                if i == len(lines) - 1 and not tail:
                    self.torn += 1  # the last line, whole length written but not its content
                else:
                    self.corrupt += 1
                continue
            self._apply(body, presses, done)
        self.pending = [presses[s] for s in sorted(presses) if s not in done]
        if self.pending:
            self.next_seq = max(self.next_seq, self.pending[-1].seq + 1)
        self._size = len(data)
        if self.torn or self.corrupt:
            self._compact()  # a clean file before the next append

    def _apply(self, body, presses, done):
        parts = body.split(",")
        kind = parts[0]
        try:
            if kind == "P" and len(parts) == 8:
                p = Press(int(parts[1]), parts[2], int(parts[3]), int(parts[4]), parts[5], int(parts[6]), parts[7])
                presses[p.seq] = p
                self.next_seq = max(self.next_seq, p.seq + 1)
            elif kind == "D":
                for s in parts[1:]:
                    done.add(int(s))
            elif kind == "N" and len(parts) == 3:
                self.next_seq = max(self.next_seq, int(parts[1]))
                self.refused = int(parts[2])
            else:
                self.corrupt += 1
        except ValueError:
            self.corrupt += 1

    # --- writing -------------------------------------------------------------------------------------------
    def _append(self, body):
        data = _line(body)
        with open(self.path, "ab") as f:
            f.write(data)
        self._size += len(data)

    def _compact(self):
        tmp = self.path + ".tmp"
        out = [_line("N,%d,%d" % (self.next_seq, self.refused))]  # noqa: UP031
        out.extend(_line(p.fields()) for p in self.pending)
        data = b"".join(out)
        with open(tmp, "wb") as f:
            f.write(data)
        _remove(self.path)  # some ports' rename does not replace an existing file
        os.rename(tmp, self.path)
        self._size = len(data)

    def full(self):
        return len(self.pending) >= self.limit

    def add(self, value, ts_ms, boot, mono_ms, flags, new_id):
        """Record a press durably; the Press, or None if the journal is full (the press is refused)."""
        if self.full():
            self.refused += 1
            return None
        p = Press(self.next_seq, new_id, value, ts_ms, boot, mono_ms, flags)
        self._append(p.fields())
        self.next_seq += 1
        self.pending.append(p)
        return p

    def remove(self, ids):
        """Drop the presses whose ids central's receipt named; how many were ours."""
        ids = set(ids)
        gone = [p.seq for p in self.pending if p.id in ids]
        if not gone:
            return 0
        self._append("D," + ",".join(str(s) for s in gone))
        self.pending = [p for p in self.pending if p.id not in ids]
        if self._size > self.compact_bytes or not self.pending:
            self._compact()
        return len(gone)

    def batch(self, n):
        return self.pending[:n]


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass
