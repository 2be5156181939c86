"""Checks of the Dovecot test server itself (tests/servers/dovecot.py): that it
starts fast, speaks TLS with its own CA, hides capabilities, nests folders with
'/', keeps bytes and stops without leaving a process."""

import datetime
import imaplib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dovecot  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def basedir():
    d = dovecot.make_basedir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server(basedir):
    srv = dovecot.Dovecot(basedir)
    srv.start()
    yield srv
    srv.stop()


def _no_process_left(srv, pids):
    for p in pids:
        assert not dovecot._alive(p), "dovecot process %d left" % p
    out = subprocess.run(["pgrep", "-f", srv.basedir], capture_output=True, text=True).stdout
    assert out.strip() == ""


def test_start_fast_and_login(basedir):
    srv = dovecot.Dovecot(basedir)
    srv.start()
    try:
        assert srv.start_seconds < 1.0, srv.start_seconds
        c = srv.client()
        typ, _ = c.select("INBOX")
        assert typ == "OK"
        c.logout()
        with pytest.raises(imaplib.IMAP4.error):
            srv.client(password="wrong")
    finally:
        srv.stop()


def test_stop_leaves_no_process(basedir):
    srv = dovecot.Dovecot(basedir)
    srv.start()
    c = srv.client()  # an imap process too
    c.select("INBOX")
    pids = srv.pids()
    assert len(pids) >= 4
    srv.stop()
    _no_process_left(srv, pids)
    with pytest.raises(OSError):
        socket.create_connection((srv.host, srv.port), timeout=1)


def test_restart_keeps_port_and_mail(basedir):
    srv = dovecot.Dovecot(basedir)
    srv.start()
    try:
        port = srv.port
        c = srv.client()
        msg = dovecot.make_message("kept", datetime.datetime(2025, 1, 2, 3, 4))
        dovecot.append(c, "INBOX", msg)
        c.logout()
        srv.stop()
        srv.start()
        assert srv.port == port
        c = srv.client()
        assert [b for _, b in dovecot.fetch_all(c, "INBOX").values()] == [msg]
        c.logout()
    finally:
        srv.stop()


def test_nested_and_unicode_folders(server):
    c = server.client()
    c.select("INBOX")
    for name in ("Archive", "Archive/2025", "Entwürfe"):
        assert c.create(dovecot.mailbox_arg(name))[0] == "OK"
    typ, data = c.list('""', '"*"')
    assert b'(\\HasChildren) "/" Archive' in data
    assert b'(\\HasNoChildren) "/" Entw&APw-rfe' in data
    assert set(dovecot.list_folders(c)) == {"INBOX", "Archive", "Archive/2025", "Entwürfe"}
    assert os.path.isdir(os.path.join(server.folder_dir("Archive/2025"), "cur"))
    assert os.path.isdir(os.path.join(server.folder_dir("INBOX"), "cur"))
    assert dovecot.imap_utf7_encode("Entwürfe") == "Entw&APw-rfe"
    assert dovecot.imap_utf7_decode(b"Entw&APw-rfe") == "Entwürfe"
    assert dovecot.imap_utf7_encode("a&b") == "a&-b"
    for s in ("日本語/テスト", "x∕y", "a & b ü", "\u202eevil"):
        assert dovecot.imap_utf7_decode(dovecot.imap_utf7_encode(s)) == s
    c.logout()


def test_message_bytes_kept(server):
    c = server.client()
    date = datetime.datetime(2025, 3, 4, 5, 6, 7, tzinfo=datetime.timezone.utc)
    msg = dovecot.make_message("Grüße", date, "line one\nline two\n",
                               extra_headers=[("X-Test", "1")])
    assert b"\r\n" in msg and b"\n" not in msg.replace(b"\r\n", b"")
    assert b"Subject: =?utf-8?" in msg
    assert b"Date: Tue, 04 Mar 2025 05:06:07 +0000" in msg
    uid = dovecot.append(c, "INBOX", msg, flags=("\\Seen", "$Forwarded"), date_time=date)
    assert uid == 1
    got = dovecot.fetch_all(c, "INBOX")
    flags, body = got[uid]
    assert body == msg
    assert set(flags) - {"\\Recent"} == {"\\Seen", "$Forwarded"}
    c.logout()


def test_append_many_fast(server):
    c = server.client()
    c.create("Big")
    msgs = [dovecot.make_message("m %d" % i, datetime.datetime(2024, 1, 1)
                                 + datetime.timedelta(minutes=i)) for i in range(2000)]
    t = time.monotonic()
    uids = server.append_many("Big", msgs, flags=("\\Seen",))
    assert time.monotonic() - t < 5
    assert uids == list(range(1, 2001))
    assert dovecot.count(c, "Big") == 2000
    got = dovecot.fetch_all(c, "Big")
    assert got[1234][1] == msgs[1233]
    c.logout()


def test_ssl(basedir):
    srv = dovecot.Dovecot(basedir, ssl=True)
    srv.start()
    try:
        assert srv.imaps_port and srv.imaps_port != srv.port
        assert os.path.isfile(srv.ca_file)
        c = srv.client(tls="imaps")
        assert c.select("INBOX")[0] == "OK"
        c.logout()
        c = srv.client(tls="starttls")
        assert c.select("INBOX")[0] == "OK"
        c.logout()
        # the plain port offers STARTTLS
        c = imaplib.IMAP4(srv.host, srv.port)
        assert "STARTTLS" in c.capabilities
        c.shutdown()
        # the certificate names localhost too, and is not trusted without the CA
        ctx = ssl.create_default_context(cafile=srv.ca_file)
        with socket.create_connection((srv.host, srv.imaps_port)) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                assert t.recv(100).startswith(b"* OK")
        ctx = ssl.create_default_context()
        with socket.create_connection((srv.host, srv.imaps_port)) as s:
            with pytest.raises(ssl.SSLCertVerificationError):
                ctx.wrap_socket(s, server_hostname="127.0.0.1")
        # openssl agrees (what libcurl will do)
        r = subprocess.run(["openssl", "verify", "-CAfile", srv.ca_file,
                            os.path.join(os.path.dirname(srv.ca_file), "server.pem")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    finally:
        srv.stop()


def test_no_ssl_offers_no_starttls(server):
    c = imaplib.IMAP4(server.host, server.port)
    assert "STARTTLS" not in c.capabilities
    c.shutdown()
    assert server.imaps_port is None and server.ca_file is None


@pytest.mark.parametrize("hide", [("CONDSTORE", "QRESYNC"), dovecot.ALL_EXTENSIONS])
def test_hidden_capabilities(basedir, hide):
    srv = dovecot.Dovecot(basedir, hide_capabilities=hide)
    srv.start()
    try:
        pre = imaplib.IMAP4(srv.host, srv.port)
        pre_caps = set(pre.capabilities)
        pre.shutdown()
        c = srv.client()
        post = set(c.capability()[1][0].decode().upper().split())
        c.logout()
        for cap in hide:
            assert cap not in pre_caps and cap not in post, cap
        assert "IMAP4REV1" in post and "NAMESPACE" in post
        assert "LITERAL-" not in post
        if "LITERAL+" not in hide:
            assert "LITERAL+" in post
        if "IDLE" not in hide:
            assert "IDLE" in post
    finally:
        srv.stop()


def test_default_capabilities_match_server(server):
    c = server.client()
    post = c.capability()[1][0].decode().split()
    c.logout()
    assert set(dovecot.default_capabilities()) <= set(post)
    for cap in dovecot.ALL_EXTENSIONS:
        assert cap in post


def test_cli(basedir):
    d = os.path.join(basedir, "cli")
    script = os.path.join(HERE, "dovecot.py")
    r = subprocess.run([sys.executable, script, "start", "--dir", str(d), "--user",
                        "bob:pw1", "--ssl"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info == json.load(open(os.path.join(d, "server.json")))
    assert info["users"] == {"bob": "pw1"}
    assert info["host"] == "127.0.0.1" and info["imaps_port"] and info["ca_file"]
    c = imaplib.IMAP4(info["host"], info["port"])
    c.login("bob", "pw1")
    c.logout()
    pids = dovecot.process_tree(info["master_pid"])
    assert pids
    r = subprocess.run([sys.executable, script, "stop", "--dir", str(d)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    for p in pids:
        assert not dovecot._alive(p)
