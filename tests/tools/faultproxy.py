#!/usr/bin/python3
r"""A fault-injecting TCP proxy on a free loopback port, for tests: put it
between a client (mailfs) and a server (Dovecot, Radicale, ...) and break
the connection in the ways networks do.

    from faultproxy import FaultProxy
    p = FaultProxy("127.0.0.1", server_port)      # forwards to the server
    ... point the client at 127.0.0.1:p.port ...
    p.set_mode("drop")        # every connection reset, new ones reset at once
    p.set_mode("blackhole")   # connections accepted, nothing answered, bytes eaten
    p.set_mode("stall")       # nothing moves; held bytes flow on at "pass"
    p.set_mode("pass")        # normal forwarding again
    p.reset_after(down=1_000_000, times=1)   # RST a connection after 1 MB more
                                             # from the server (up=: from the client)
    p.reset_after(down=[5000, 800], after=[rb"BODY\.PEEK\[\]", rb"BODYSTRUCTURE"])
                              # cut one connection 5000 bytes into the answer to a
                              # whole-message FETCH, the next 800 bytes into the
                              # answer to a BODYSTRUCTURE FETCH
    p.stall_after(down=500_000, seconds=3)   # stall everything for 3 s then
    p.reset_all()             # RST every open connection now
    p.stats()                 # connections, active, bytes_up, bytes_down, resets
    p.mark(); p.since(mark)   # what clients sent (with record=True), per connection
    p.close()

Byte counts of a trigger start when it is armed: for connections open then,
from that moment; for later ones, from their start. A reset forwards exactly
the bytes up to the limit, then closes both sides with RST (SO_LINGER 0), so
the peer sees "connection reset" in the middle of whatever was being sent.
"times" is how many connections the trigger hits before it disarms.

Everything runs in daemon threads (one accept loop, two pumps per
connection); close() ends them. As a command-line tool:

    /usr/bin/python3 tests/tools/faultproxy.py HOST:PORT [--port N]
reads commands on stdin, one a line: "mode pass|drop|blackhole|stall",
"reset up|down N [TIMES]", "stall up|down N SECONDS", "resetall", "stats",
"quit".
"""

import argparse
import re
import socket
import struct
import sys
import threading
import time

MODES = ("pass", "drop", "blackhole", "stall")


def _rst(sock):
    """Close sock with a TCP RST (and wake any thread blocked on it)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Trigger:
    def __init__(self, direction, nbytes, action, times, seconds=0.0, after=None):
        assert direction in ("up", "down")
        self.direction = direction
        self.nbytes_list = list(nbytes) if isinstance(nbytes, (list, tuple)) else None
        self.nbytes = int(self.nbytes_list[0] if self.nbytes_list else nbytes)
        if after is not None and not isinstance(after, (list, tuple)):
            after = [after] * (len(self.nbytes_list) if self.nbytes_list else 1)
        self.after_list = [re.compile(a) for a in after] if after is not None else None
        self.after = self.after_list[0] if self.after_list else None
        self.action = action  # "reset" or "stall"
        self.times = times
        self.seconds = seconds
        self.start = {}  # conn id -> byte count of that direction when armed
        self.last_fired = self.nbytes


class _Conn:
    def __init__(self, cid, client, server):
        self.id = cid
        self.client = client
        self.server = server
        self.counts = {"up": 0, "down": 0}
        self.closed = False
        self.stream = bytearray()  # what the client sent (when recording)
        self.tail = b""  # the last bytes the client sent (for `after` patterns)


class FaultProxy:
    def __init__(self, host, port, record=False, listen_port=0):
        self.target = (host, port)
        self.record = record
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.mode = "pass"
        self.conns = []
        self.triggers = []
        self.connections = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.resets = 0
        self.connect_errors = []
        self.events = []  # (monotonic time, text): what the proxy did
        self.closing = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", listen_port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._timer = None
        threading.Thread(target=self._accept, daemon=True, name="faultproxy-accept").start()

    # -- control ------------------------------------------------------------------

    def set_mode(self, mode):
        """pass, drop (reset every connection, and new ones at once),
        blackhole (accept, answer nothing, swallow what comes) or stall
        (forward nothing until the mode changes; nothing is lost)."""
        if mode not in MODES:
            raise ValueError("mode must be one of %s" % ", ".join(MODES))
        with self.cond:
            self.mode = mode
            self._event("mode " + mode)
            victims = [c for c in self.conns if not c.closed] if mode == "drop" else []
            self.cond.notify_all()
        for c in victims:
            self._reset(c, "mode drop")

    def reset_after(self, up=None, down=None, times=1, after=None):
        """RST the next `times` connections that carry `up` more bytes from
        the client (or `down` more from the server) than when this is armed.
        A list of counts instead: one reset for each, in turn, each counted
        afresh (from when the one before fired) -- to cut successive
        connections at different points. after: a bytes regex (or a list,
        one for each count): count only from the moment the client sends
        something that matches it on that connection (to cut in the middle
        of the answer to a given command)."""
        n = up if up is not None else down
        if isinstance(n, (list, tuple)):
            times = len(n)
        self._arm(up, down, "reset", times, after=after)

    def stall_after(self, up=None, down=None, seconds=3.0, times=1):
        """After that many more bytes on a connection, stall every
        connection for `seconds`, then pass again."""
        self._arm(up, down, "stall", times, seconds)

    def _arm(self, up, down, action, times, seconds=0.0, after=None):
        if (up is None) == (down is None):
            raise ValueError("give exactly one of up= and down=")
        t = _Trigger("up" if up is not None else "down", up if up is not None else down,
                     action, times, seconds, after)
        if isinstance(t.nbytes_list, list) and not t.nbytes_list:
            raise ValueError("an empty list of byte counts")
        with self.lock:
            if t.after is None:
                for c in self.conns:
                    t.start[c.id] = c.counts[t.direction]
            self.triggers.append(t)

    def disarm(self):
        with self.lock:
            self.triggers = []

    def reset_all(self):
        """RST every open connection now."""
        with self.lock:
            victims = [c for c in self.conns if not c.closed]
        for c in victims:
            self._reset(c, "reset_all")

    def stats(self):
        with self.lock:
            return {"connections": self.connections,
                    "active": sum(1 for c in self.conns if not c.closed),
                    "bytes_up": self.bytes_up, "bytes_down": self.bytes_down,
                    "resets": self.resets, "mode": self.mode}

    def mark(self):
        """A position in what clients sent so far (for since())."""
        with self.lock:
            return [len(c.stream) for c in self.conns]

    def since(self, mark=None):
        """[bytes] each client sent after mark (every byte when mark is
        None), one entry per connection; later connections whole. Needs
        record=True."""
        mark = mark or []
        with self.lock:
            return [bytes(c.stream[mark[i]:] if i < len(mark) else c.stream)
                    for i, c in enumerate(self.conns)]

    def close(self):
        self.closing = True
        if self._timer:
            self._timer.cancel()
        try:
            self.sock.close()
        except OSError:
            pass
        with self.cond:
            self.mode = "pass"
            self.cond.notify_all()
            victims = [c for c in self.conns if not c.closed]
        for c in victims:
            self._close(c)

    # -- machinery ----------------------------------------------------------------

    def _event(self, text):
        self.events.append((time.monotonic(), text))

    def _accept(self):
        while not self.closing:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                mode = self.mode
            if mode == "drop":
                with self.lock:
                    self.resets += 1
                    self._event("connection reset at accept")
                _rst(client)
                continue
            server = None
            if mode != "blackhole":
                try:
                    server = socket.create_connection(self.target, timeout=10)
                    server.settimeout(None)
                except OSError as e:
                    self.connect_errors.append(e)
                    _rst(client)
                    continue
            with self.lock:
                c = _Conn(len(self.conns), client, server)
                self.conns.append(c)
                for t in self.triggers:
                    if t.after is None:
                        t.start.setdefault(c.id, 0)
            threading.Thread(target=self._pump, args=(c, "up"), daemon=True).start()
            if server is not None:
                threading.Thread(target=self._pump, args=(c, "down"), daemon=True).start()

    def _pump(self, c, direction):
        src, dst = (c.client, c.server) if direction == "up" else (c.server, c.client)
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.cond:
                    # stall: hold the bytes until the mode changes
                    while self.mode == "stall" and not c.closed and not self.closing:
                        self.cond.wait(0.1)
                    if c.closed:
                        break
                    if self.mode == "blackhole" or dst is None:
                        continue  # eaten
                    cut, action = self._check(c, direction, len(data))
                    if cut is not None:
                        data = data[:cut]
                    c.counts[direction] += len(data)
                    if direction == "up":
                        self.bytes_up += len(data)
                        if self.record:
                            c.stream += data
                        self._watch(c, data)
                    else:
                        self.bytes_down += len(data)
                if data:
                    dst.sendall(data)
                if action is not None:
                    self._fire(c, action)
                    if action.action == "reset":
                        return
        except OSError:
            pass
        self._close(c)

    def _watch(self, c, data):
        """Under the lock: start the count of `after` triggers on c when
        the client sent what they wait for."""
        seen = c.tail + data
        c.tail = seen[-256:]
        for t in self.triggers:
            if t.after is not None and c.id not in t.start and t.after.search(seen):
                t.start[c.id] = c.counts[t.direction]

    def _check(self, c, direction, n):
        """Under the lock: (bytes to forward, trigger) when a trigger fires
        within the next n bytes of this connection, else (None, None)."""
        for t in self.triggers:
            if t.direction != direction or t.times <= 0 or c.id not in t.start:
                continue
            left = t.start[c.id] + t.nbytes - c.counts[direction]
            if left < n:
                t.last_fired = t.nbytes
                t.times -= 1
                t.start.pop(c.id, None)
                if t.times <= 0:
                    self.triggers.remove(t)
                elif t.nbytes_list:
                    # the next count, from now, for every connection
                    t.nbytes_list.pop(0)
                    t.nbytes = int(t.nbytes_list[0])
                    if t.after_list:
                        t.after_list.pop(0)
                        t.after = t.after_list[0]
                        t.start = {}
                    else:
                        for o in self.conns:
                            if o is not c and not o.closed:
                                t.start[o.id] = o.counts[direction]
                # a reset cuts right at the limit; a stall lets this chunk through
                return (max(left, 0) if t.action == "reset" else None), t
        return None, None

    def _fire(self, c, t):
        if t.action == "reset":
            self._reset(c, "reset after %d bytes %s" % (t.last_fired, t.direction))
        else:
            with self.cond:
                self.mode = "stall"
                self._event("stall for %.1f s after %d bytes %s" % (t.seconds, t.last_fired,
                                                                   t.direction))
            self._timer = threading.Timer(t.seconds, self._unstall)
            self._timer.daemon = True
            self._timer.start()

    def _unstall(self):
        with self.cond:
            if self.mode == "stall":
                self.mode = "pass"
                self._event("stall over")
            self.cond.notify_all()

    def _reset(self, c, why):
        with self.cond:
            if c.closed:
                return
            c.closed = True
            self.resets += 1
            self._event("connection %d reset: %s" % (c.id, why))
            self.cond.notify_all()
        _rst(c.client)
        if c.server is not None:
            _rst(c.server)

    def _close(self, c):
        with self.cond:
            if c.closed:
                return
            c.closed = True
            self.cond.notify_all()
        for s in (c.client, c.server):
            if s is None:
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _cli(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", metavar="HOST:PORT")
    ap.add_argument("--port", type=int, default=0, help="port to listen on (default: free)")
    a = ap.parse_args(argv)
    host, _, port = a.target.rpartition(":")
    p = FaultProxy(host or "127.0.0.1", int(port), listen_port=a.port)
    print("listening on 127.0.0.1:%d" % p.port, flush=True)
    for line in sys.stdin:
        w = line.split()
        try:
            if not w:
                continue
            if w[0] == "quit":
                break
            if w[0] == "mode":
                p.set_mode(w[1])
            elif w[0] in ("reset", "stall") and len(w) >= 3:
                kw = {w[1]: int(w[2])}
                if w[0] == "reset":
                    p.reset_after(times=int(w[3]) if len(w) > 3 else 1, **kw)
                else:
                    p.stall_after(seconds=float(w[3]) if len(w) > 3 else 3.0, **kw)
            elif w[0] == "resetall":
                p.reset_all()
            elif w[0] == "stats":
                pass
            else:
                print("unknown command: %s" % line.strip(), flush=True)
                continue
            print(p.stats(), flush=True)
        except (ValueError, IndexError) as e:
            print("error: %s" % e, flush=True)
    p.close()
    return 0


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
