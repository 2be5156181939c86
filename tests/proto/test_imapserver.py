"""The scripted server itself, checked with Python's imaplib (an independent
client): if it spoke IMAP wrongly, the protocol tests would prove nothing."""

import imaplib
import re
import socket
import threading

import pytest

from imapserver import (ALL_CAPS, ImapServer, astring, in_seqset, parse_seqset, seqset,
                        tokenize)


@pytest.fixture
def srv():
    s = ImapServer().start()
    yield s
    assert s.stop() == []
    assert s.errors == []


def client(s, user="alice", password="secret"):
    c = imaplib.IMAP4(s.host, s.port)
    c.login(user, password)
    return c


def test_codecs():
    assert astring(b"INBOX") == b"INBOX"
    assert astring(b"a b") == b'"a b"'
    assert astring(b'q"\\') == b'"q\\"\\\\"'
    assert astring(b"cr\r") == b"{3}\r\ncr\r"
    assert astring(b"\xe9") == b"{1}\r\n\xe9"
    assert astring(b"NIL") == b'"NIL"'
    assert seqset([5, 1, 2, 3, 9]) == b"1:3,5,9"
    assert parse_seqset(b"1:3,7", 10) == [(1, 3), (7, 7)]
    assert parse_seqset(b"4:*", 3) == [(3, 4)]       # matches 3, the highest
    assert parse_seqset(b"1:*", 0) == []
    assert in_seqset(parse_seqset(b"1:4294967295", 5), 4000000000)
    assert tokenize(b'"a \\"b" (X {3}\r\nc\rd) BODY.PEEK[HEADER.FIELDS (A B)]') == \
        [b'a "b', [b"X", b"c\rd"], b"BODY.PEEK[HEADER.FIELDS (A B)]"]


def test_login_list_select_fetch(srv):
    srv.add_folder("Archive")
    srv.add_folder(b"odd\rname")
    u = srv.append("INBOX", b"Subject: hi\r\n\r\nbody\r\n", flags=("\\Seen",))
    srv.append("Archive", b"Subject: a\r\n\r\nx\r\n")
    c = client(srv)
    typ, caps = c.capability()
    assert set(ALL_CAPS) <= set(caps[0].decode().split())
    typ, data = c.list()
    assert typ == "OK"
    names = [d for d in data if d]
    assert any(b"Archive" in (d if isinstance(d, bytes) else d[0]) for d in names)
    assert any(isinstance(d, tuple) and d[1] == b"odd\rname" for d in names)
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    typ, data = c.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK"
    assert data[0][1] == b"Subject: hi\r\n\r\nbody\r\n"
    assert b"UID %d" % u in data[0][0] and b"\\Seen" in data[0][0]
    typ, data = c.status("Archive", "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)")
    assert typ == "OK" and b"MESSAGES 1" in data[0] and b"UIDNEXT 2" in data[0]
    # a read-only account: changes are refused and logged
    typ, _ = c.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    assert typ == "NO"
    assert [e[2] for e in srv.writes()] == ["UID STORE"]
    c.logout()


def test_wrong_password(srv):
    with pytest.raises(imaplib.IMAP4.error):
        client(srv, password="nope")


def test_condstore_and_qresync(srv):
    srv.append("INBOX", b"one\r\n")
    srv.append("INBOX", b"two\r\n")
    srv.append("INBOX", b"three\r\n")
    c = client(srv)
    typ, data = c._simple_command("ENABLE", "QRESYNC")
    assert typ == "OK"
    c.select("INBOX")
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b" ".join(
        x for x in c.untagged_responses.get("OK", []))).group(1))
    c.close()
    srv.set_flags("INBOX", 1, ["\\Flagged"])
    srv.expunge("INBOX", 2)
    uidv = srv.folder("INBOX").uidvalidity
    typ, _ = c._simple_command("SELECT", "INBOX (QRESYNC (%d %d))" % (uidv, hms))
    assert typ == "OK"
    c.state = "SELECTED"                  # imaplib does not know SELECT with parameters
    assert c.untagged_responses.get("VANISHED") == [b"(EARLIER) 2"]
    fetched = c.untagged_responses.get("FETCH")
    assert fetched and b"UID 1 FLAGS (\\Flagged)" in fetched[0]
    c.untagged_responses.clear()
    typ, data = c.uid("FETCH", "1:*", "(UID FLAGS)", "(CHANGEDSINCE %d)" % hms)
    assert typ == "OK" and len([d for d in data if d]) == 1


def test_idle_push_and_hooks(srv):
    srv.append("INBOX", b"one\r\n")
    srv.on("NOOP", lambda cmd: b"* 1 FETCH (UID 1 X)\r\n" + cmd.ok(b"hooked"), times=1)
    c = client(srv)
    c.select("INBOX")
    typ, data = c.noop()
    assert data == [b"hooked"]
    assert c.noop()[1] != [b"hooked"]     # times=1: the hook is gone
    sock = c.socket()
    sock.sendall(b"i1 IDLE\r\n")
    f = sock.makefile("rb")
    assert f.readline().startswith(b"+ ")
    assert srv.idling("INBOX")
    srv.append("INBOX", b"two\r\n")
    assert f.readline() == b"* 2 EXISTS\r\n"
    srv.inject(b"* OK [ALERT] injected\r\n")
    assert f.readline() == b"* OK [ALERT] injected\r\n"
    sock.sendall(b"DONE\r\n")
    assert f.readline().startswith(b"i1 OK")


def test_silent_greeting_and_stop(srv):
    srv.greeting = None
    s = socket.create_connection((srv.host, srv.port), timeout=5)
    s.settimeout(0.3)
    with pytest.raises(socket.timeout):
        s.recv(10)
    # stop() ends the stalled connection too (checked by the fixture)
    t = threading.Thread(target=s.close)
    t.start()
    t.join()
