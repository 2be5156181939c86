"""A scripted HTTP server for DAV edge cases no real server shows on demand
(a named default calendar, truncated sync answers, redirects to another
host, huge or stalled answers, Digest authentication). Answers come from a
table of (method, path) -> handler; every request is recorded."""

import hashlib
import http.server
import socket
import threading
import time


class Request:
    def __init__(self, method, path, headers, body):
        self.method, self.path, self.headers, self.body = method, path, headers, body


class FakeDav:
    """Routes: fake.route(method, path, status, body, headers) or
    fake.route(method, path, handler=fn) where fn(req) returns
    (status, headers dict, body bytes). Unrouted requests get 404."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.routes = {}
        self.requests = []
        self.lock = threading.Lock()
        self.digest = None  # (user, password, realm): Digest only, no Basic
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                req = Request(self.command, self.path, dict(self.headers), body)
                with fake.lock:
                    fake.requests.append(req)
                if fake.digest and not fake._digest_ok(req):
                    self._answer(401, {"WWW-Authenticate": 'Digest realm="%s", nonce="n0nce", '
                                       'qop="auth", algorithm=MD5' % fake.digest[2]}, b"")
                    return
                h = fake.routes.get((self.command, self.path))
                if h is None:
                    self._answer(404, {"Content-Type": "text/plain"}, b"not here")
                    return
                status, headers, data = h(req)
                self._answer(status, headers, data)

            def _answer(self, status, headers, data):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if callable(data):
                    # a generator of chunks, sent with a length announced first
                    total, chunks = data()
                    self.send_header("Content-Length", str(total))
                    self.end_headers()
                    try:
                        for c in chunks:
                            self.wfile.write(c)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def __getattr__(self, name):
                if name.startswith("do_"):
                    return self.handle_any
                raise AttributeError(name)

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)

    @property
    def url(self):
        return "http://%s:%d/" % (self.host, self.port)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def route(self, method, path, status=200, body=b"", headers=None, handler=None):
        if handler is None:
            if isinstance(body, str):
                body = body.encode()
            h = dict(headers or {})
            if body and "Content-Type" not in h:
                h["Content-Type"] = 'application/xml; charset="utf-8"'

            def handler(req, status=status, h=h, body=body):
                return status, h, body
        self.routes[(method, path)] = handler

    def seen(self, method=None, path=None):
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and (path is None or r.path == path)]

    def _digest_ok(self, req):
        auth = req.headers.get("Authorization", "")
        if not auth.startswith("Digest "):
            return False
        fields = {}
        for part in auth[7:].split(","):
            k, _, v = part.strip().partition("=")
            fields[k] = v.strip('"')
        user, password, realm = self.digest
        ha1 = hashlib.md5(("%s:%s:%s" % (user, realm, password)).encode()).hexdigest()
        ha2 = hashlib.md5(("%s:%s" % (req.method, fields.get("uri", ""))).encode()).hexdigest()
        want = hashlib.md5(("%s:%s:%s:%s:%s:%s" % (ha1, fields.get("nonce"), fields.get("nc"),
                                                   fields.get("cnonce"), fields.get("qop"),
                                                   ha2)).encode()).hexdigest()
        return fields.get("username") == user and fields.get("response") == want


def multistatus(*responses, token=None):
    """A DAV:multistatus body from response fragments."""
    t = "<D:sync-token>%s</D:sync-token>" % token if token else ""
    return ('<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:" '
            'xmlns:C="urn:ietf:params:xml:ns:caldav" '
            'xmlns:A="urn:ietf:params:xml:ns:carddav">%s%s</D:multistatus>'
            % ("".join(responses), t))


def propstat(href, props, status="HTTP/1.1 200 OK"):
    return ("<D:response><D:href>%s</D:href><D:propstat><D:prop>%s</D:prop>"
            "<D:status>%s</D:status></D:propstat></D:response>" % (href, props, status))


def status_response(href, status):
    return "<D:response><D:href>%s</D:href><D:status>%s</D:status></D:response>" % (href, status)


class StallServer:
    """Accepts connections, reads what comes, never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d/" % self.port

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        self.sock.settimeout(0.1)
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except socket.timeout:
                continue
            except OSError:
                return

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


def wait_for(pred, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


__all__ = ["FakeDav", "StallServer", "multistatus", "propstat", "status_response",
           "wait_for"]
