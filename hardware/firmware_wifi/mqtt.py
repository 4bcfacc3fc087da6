# ruff: noqa: SIM105  (MicroPython has no contextlib: try/except/pass it is)
# mypy: disable-error-code="union-attr"
# (self.sock is None only between connections; a call then fails as a dead link should.)
# A small MQTT 3.1.1 client for the panel: QoS 0/1 publish, subscribe, last will, keepalive.
#
# Why not micropython-lib's umqtt.simple: its QoS 1 publish waits for the PUBACK with no time limit (a link
# that dies after the PUBLISH blocks the panel until the watchdog), a retained message arriving during that
# wait is handled re-entrantly, and it uses the MicroPython-only socket.read/write, so it cannot run under
# CPython against a real broker in tests. This client uses only socket.socket, settimeout, connect, sendall,
# recv, close and socket.getaddrinfo — the same on MicroPython and CPython — and every wait has a deadline:
# a dead link raises OSError within `timeout` seconds, never hangs. The socket module and the tick functions
# are passed in; nothing else differs between a board and a PC.
import struct

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 1, 2, 3, 4, 8, 9, 12, 13, 14


class MQTTError(OSError):
    """The broker refused something, or did not answer in time."""


def timed_out(e):
    """A socket timeout, as MicroPython (ETIMEDOUT/EAGAIN) and CPython (TimeoutError) raise it."""
    arg = e.args[0] if e.args else None
    return arg in (11, 110, 116, "timed out") or type(e).__name__ in ("TimeoutError", "timeout")


def _varlen(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    data = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(data)) + data


class MQTTClient:
    def __init__(self, client_id, host, port, socket_module, ticks, user=None, password=None, keepalive=60,
                 timeout=5.0):
        self.client_id = client_id
        self.host, self.port = host, port
        self.sm = socket_module
        self.ticks = ticks  # .ticks_ms() and .ticks_diff(a, b), as MicroPython's time module has them
        self.user, self.password = user, password
        self.keepalive = keepalive
        self.timeout = timeout
        self.sock = None
        self.will = None
        self.on_message = None  # (topic: str, payload: bytes, retained: bool); its errors go to on_error
        self.on_error = None
        self._pid = 0
        self._acked = set()
        self.last_rx = 0

    def set_last_will(self, topic, payload, retain=True, qos=1):
        self.will = (topic, payload, retain, qos)

    # --- the wire ------------------------------------------------------------------------------------------
    def _send(self, ptype_flags, body):
        self.sock.sendall(bytes([ptype_flags]) + _varlen(len(body)) + body)

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise OSError("the broker closed the connection")
            buf += chunk
        return buf

    def _read_packet(self, wait_s):
        """One packet (type, flags, body), or None if nothing began to arrive within ``wait_s``."""
        self.sock.settimeout(wait_s)
        try:
            first = self.sock.recv(1)
        except OSError as e:
            if timed_out(e):
                return None
            raise
        if not first:
            raise OSError("the broker closed the connection")
        self.sock.settimeout(self.timeout)  # the rest of a begun packet must follow promptly
        n, shift = 0, 0
        while True:
            b = self._recv_exact(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift > 21:
                raise MQTTError("malformed packet length")
        body = self._recv_exact(n) if n else b""
        self.last_rx = self.ticks.ticks_ms()
        return first[0] >> 4, first[0] & 0x0F, body

    def _handle(self, ptype, flags, body):
        if ptype == PUBLISH:
            tlen = struct.unpack("!H", body[:2])[0]
            topic = body[2:2 + tlen].decode()
            rest = body[2 + tlen:]
            qos = (flags >> 1) & 3
            if qos:
                pid, rest = rest[:2], rest[2:]
                self._send(PUBACK << 4, pid)
            if self.on_message is not None:
                try:
                    self.on_message(topic, rest, bool(flags & 1))
                except Exception as e:  # a handler's bug must never take the link down
                    if self.on_error is not None:
                        self.on_error("message on " + topic + ": " + repr(e))
        elif ptype in (PUBACK, SUBACK):
            self._acked.add((ptype, struct.unpack("!H", body[:2])[0], body[2:]))

    def _wait_for(self, ptype, pid):
        deadline = self.ticks.ticks_ms() + int(self.timeout * 1000)
        while True:
            for item in self._acked:
                if item[0] == ptype and item[1] == pid:
                    self._acked.discard(item)
                    return item[2]
            left = self.ticks.ticks_diff(deadline, self.ticks.ticks_ms())
            if left <= 0:
                raise MQTTError("no answer from the broker within %gs" % self.timeout)  # noqa: UP031
            packet = self._read_packet(left / 1000)
            if packet is not None:
                self._handle(*packet)

    def _next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    # --- what the panel calls ------------------------------------------------------------------------------
    def connect(self, clean=True):
        addr = self.sm.getaddrinfo(self.host, self.port)[0][-1]
        self.sock = self.sm.socket()
        self.sock.settimeout(self.timeout)
        try:
            self.sock.connect(addr)
            flags = 0x02 if clean else 0
            payload = _str(self.client_id)
            if self.will is not None:
                topic, msg, retain, qos = self.will
                flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
                payload += _str(topic) + _str(msg)
            if self.user is not None:
                flags |= 0x80
                payload += _str(self.user)
                if self.password is not None:
                    flags |= 0x40
                    payload += _str(self.password)
            self._send(CONNECT << 4, _str("MQTT") + bytes([4, flags]) + struct.pack("!H", self.keepalive) + payload)
            packet = self._read_packet(self.timeout)
            if packet is None or packet[0] != CONNACK or len(packet[2]) < 2:
                raise MQTTError("no CONNACK from the broker")
            if packet[2][1] != 0:
                raise MQTTError("the broker refused the connection (code %d)" % packet[2][1])  # noqa: UP031
        except Exception:
            self.close()
            raise

    def publish(self, topic, payload, retain=False, qos=1):
        """QoS 1 returns once the broker's PUBACK is in; OSError if it is not, within the timeout."""
        body = _str(topic)
        pid = None
        if qos:
            pid = self._next_pid()
            body += struct.pack("!H", pid)
        self._send((PUBLISH << 4) | (qos << 1) | (1 if retain else 0), body + payload)
        if qos:
            self._wait_for(PUBACK, pid)

    def subscribe(self, topic, qos=1):
        pid = self._next_pid()
        self._send((SUBSCRIBE << 4) | 0x02, struct.pack("!H", pid) + _str(topic) + bytes([qos]))
        granted = self._wait_for(SUBACK, pid)
        if not granted or granted[0] == 0x80:
            raise MQTTError("the broker refused the subscription to " + topic)

    def check_msg(self, wait_s=0.0):
        """Handle whatever has arrived (waiting up to ``wait_s`` for the first packet); packets handled."""
        n = 0
        packet = self._read_packet(wait_s)
        while packet is not None:
            ptype, flags, body = packet
            if ptype != PINGRESP:
                self._handle(ptype, flags, body)
            n += 1
            packet = self._read_packet(0.001)
        return n

    def ping(self):
        self._send(PINGREQ << 4, b"")

    def disconnect(self):
        """A clean goodbye: the broker drops the last will."""
        try:
            self._send(DISCONNECT << 4, b"")
        except OSError:
            pass
        self.close()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
