"""The HTTP side of the DAV layer (sync/http.c) through dav_probe: TLS
verified against a private CA (refused without it), plain http:// refused
unless tls = none, a wrong password, a server that is down or stalls, the
cancel flag, Digest authentication, and the password kept out of every
output."""

import os
import signal
import subprocess
import time

from davlib import PROBE, radicale_srv, run_probe
from fakedav import StallServer, multistatus, propstat, wait_for


def test_https_verified_with_cafile(https_radicale):
    t = https_radicale
    assert t.url.startswith("https://")
    cal = t.new_calendar("Secure")
    r = run_probe(t.base_args(tls_none=False) + ["--cafile", t.server.ca_file, "discover"])
    assert r.rc == 0, r
    assert cal in [x["collection"] for x in r.items]
    # without the CA: refused, with a message that says what to do
    r = run_probe(t.base_args(tls_none=False) + ["discover"])
    assert r.rc == 1 and r.final["code"] == "tls" and r.final["retry"] == "never"
    assert "could not be verified" in r.final["message"]
    assert "cafile" in r.final["message"]
    # tls = none does not turn verification off
    r = run_probe(t.base_args(tls_none=True) + ["discover"])
    assert r.rc == 1 and r.final["code"] == "tls"
    # a CA file that is not this server's
    other = os.path.join(t.workdir, "other-ca")
    radicale_srv.make_ca_and_cert(other)
    r = run_probe(t.base_args(tls_none=False) + ["--cafile", os.path.join(other, "ca.pem"),
                                                 "discover"])
    assert r.rc == 1 and r.final["code"] == "tls"


def test_plain_http_needs_tls_none(dav):
    r = dav.probe("discover", tls_none=False)
    assert r.rc == 1 and r.final["code"] == "tls" and r.final["scope"] == "account"
    msg = r.final["message"]
    assert "https://" in msg and "tls = none" in msg and "this machine" in msg


def test_bad_urls(dav):
    for url, words in (("ftp://127.0.0.1/", "not an http"),
                       ("http://alice:secret@127.0.0.1:1/", "user name or password"),
                       ("not a url", "not an http")):
        r = run_probe(["--url", url, "--tls-none", "discover"])
        assert r.rc == 1 and words in r.final["message"], r
        assert "secret" not in r.stdout + r.stderr


def test_wrong_password(radicale_target):
    t = radicale_target
    bad = os.path.join(t.workdir, "bad-password")
    with open(bad, "w") as f:
        f.write("Wr0ng-Pa55\n")
    r = run_probe(["--url", t.url, "--tls-none", "--user", "alice", "--password-file", bad,
                   "discover"])
    assert r.rc == 1 and r.final["code"] == "auth" and r.final["retry"] == "never"
    assert "password_command" in r.final["message"]
    assert "Wr0ng-Pa55" not in r.stdout + r.stderr
    # no credentials at all
    r = run_probe(["--url", t.url, "--tls-none", "sync", "/alice/"])
    assert r.rc == 1 and r.final["code"] == "auth"


def test_server_down():
    port = radicale_srv.free_port()
    t0 = time.monotonic()
    r = run_probe(["--url", "http://127.0.0.1:%d/" % port, "--tls-none", "discover"])
    assert r.rc == 1 and r.final["code"] == "connect" and r.final["retry"] == "later"
    assert r.final["scope"] == "account"
    assert time.monotonic() - t0 < 5


def test_stalled_server_times_out():
    s = StallServer().start()
    try:
        t0 = time.monotonic()
        r = run_probe(["--url", s.url, "--tls-none", "--io-timeout", "1000", "discover"])
        dt = time.monotonic() - t0
        assert r.rc == 1 and r.final["code"] == "timeout", r
        assert dt < 12  # libcurl averages the speed over 5 s
    finally:
        s.stop()


def test_cancel_interrupts_a_stalled_server():
    """The cancel flag (set here by SIGTERM, by shutdown in the daemon) ends
    a request that waits on a silent server within about a second."""
    s = StallServer().start()
    try:
        p = subprocess.Popen([PROBE, "--url", s.url, "--tls-none", "--io-timeout", "60000",
                              "discover"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        assert wait_for(lambda: len(s.conns) > 0, 10)
        time.sleep(0.2)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
        dt = time.monotonic() - t0
        assert p.returncode == 1, (out, err)
        assert '"code": "cancelled"' in out
        assert dt < 2.5
    finally:
        s.stop()


def test_digest_auth(fake):
    """A server that takes Digest only: the layer switches to it after the
    first 401 and then answers the challenge."""
    fake.digest = ("alice", "s3cr3t-digest", "test realm")
    fake.route("PROPFIND", "/c/", 207, multistatus(
        propstat("/c/", "<D:resourcetype><D:collection/><C:calendar/></D:resourcetype>"
                 "<D:displayname>Digested</D:displayname>")))
    pw = os.path.join(os.environ.get("TMPDIR", "/tmp"), "dav-digest-pw-%d" % os.getpid())
    with open(pw, "w") as f:
        f.write("s3cr3t-digest\n")
    try:
        r = run_probe(["--url", fake.url + "c/", "--tls-none", "--user", "alice",
                       "--password-file", pw, "discover"])
    finally:
        os.unlink(pw)
    assert r.rc == 0, r
    assert r.items[0]["displayname"] == "Digested"
    assert "s3cr3t-digest" not in r.stdout + r.stderr
    for q in fake.requests:
        assert "s3cr3t-digest" not in q.headers.get("Authorization", "")


def test_password_never_in_output(radicale_target):
    t = radicale_target
    cal = t.new_calendar()
    r = t.must("sync", cal)
    assert t.password not in r.stdout + r.stderr
    r = t.probe("sync", "/alice/nonexistent/")
    assert r.rc == 1 and t.password not in r.stdout + r.stderr
