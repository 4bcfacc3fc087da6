# A fake of the `socket` module for the firmware under MicroPython: the other end is a tiny in-memory MQTT
# broker (BROKER) the scenario inspects and drives: what was published, a receipt to deliver, a dead link.
import struct

AF_INET, SOCK_STREAM = 2, 1


def getaddrinfo(host, port, *args):
    return [(AF_INET, SOCK_STREAM, 0, "", (host, port))]


def _varlen(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(first, body):
    return bytes([first]) + _varlen(len(body)) + body


class Broker:
    def __init__(self):
        self.up = True  # accepts connections
        self.answer = True  # sends PUBACK/SUBACK/CONNACK (False: a link that died silently)
        self.published = []  # (topic, payload bytes, retain)
        self.subscribed = []
        self.connects = 0
        self.will = None
        self.conn = None
        self.on_wait = None  # called with the seconds a read timed out after (a scenario's clock moves on)

    def deliver(self, topic, payload, retain=False):
        """A QoS 0 message from the broker to the panel (a receipt, a config push)."""
        t = topic.encode()
        self.conn.inbox += _packet(0x30 | (1 if retain else 0), struct.pack("!H", len(t)) + t + payload)

    def cut(self):
        """The connection dies: every later read or write fails."""
        if self.conn is not None:
            self.conn.dead = True


BROKER = Broker()


class socket:
    def __init__(self, *args):
        self.inbox = bytearray()
        self.dead = False
        self.timeout = None

    def settimeout(self, t):
        self.timeout = t

    def connect(self, addr):
        if not BROKER.up:
            raise OSError(113)  # EHOSTUNREACH
        BROKER.conn = self

    def sendall(self, data):
        if self.dead:
            raise OSError(104)  # ECONNRESET
        i = 0
        while i < len(data):
            first = data[i]
            n, shift, j = 0, 0, i + 1
            while True:
                b = data[j]
                n |= (b & 0x7F) << shift
                shift += 7
                j += 1
                if not b & 0x80:
                    break
            self._handle(first, bytes(data[j:j + n]))
            i = j + n

    def _handle(self, first, body):
        kind = first >> 4
        if kind == 1:  # CONNECT
            BROKER.connects += 1
            flags = body[7]
            if flags & 0x04:
                k = 10
                k += 2 + struct.unpack("!H", body[k:k + 2])[0]  # client id
                tl = struct.unpack("!H", body[k:k + 2])[0]
                topic = body[k + 2:k + 2 + tl].decode()
                ml = struct.unpack("!H", body[k + 2 + tl:k + 4 + tl])[0]
                BROKER.will = (topic, body[k + 4 + tl:k + 4 + tl + ml])
            if BROKER.answer:
                self.inbox += _packet(0x20, b"\x00\x00")
        elif kind == 3:  # PUBLISH
            tl = struct.unpack("!H", body[:2])[0]
            topic = body[2:2 + tl].decode()
            rest = body[2 + tl:]
            if (first >> 1) & 3:
                pid, rest = rest[:2], rest[2:]
                if BROKER.answer:
                    self.inbox += _packet(0x40, pid)
            BROKER.published.append((topic, rest, bool(first & 1)))
        elif kind == 8:  # SUBSCRIBE
            pid = body[:2]
            tl = struct.unpack("!H", body[2:4])[0]
            BROKER.subscribed.append(body[4:4 + tl].decode())
            if BROKER.answer:
                self.inbox += _packet(0x90, pid + b"\x01")
        elif kind == 12:  # PINGREQ
            self.inbox += _packet(0xD0, b"")

    def recv(self, n):
        if self.dead:
            raise OSError(104)
        if not self.inbox:
            if BROKER.on_wait is not None:
                BROKER.on_wait(self.timeout)
            raise OSError(110)  # ETIMEDOUT: nothing within the socket's timeout
        out = bytes(self.inbox[:n])
        self.inbox = self.inbox[n:]
        return out

    def close(self):
        if BROKER.conn is self:
            BROKER.conn = None
