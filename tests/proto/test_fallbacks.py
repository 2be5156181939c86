"""Protocol paths chosen by capability (DESIGN section 1: use CONDSTORE,
QRESYNC and IDLE when offered, work without them), VANISHED ranges, a
UIDVALIDITY change, and IDLE pushes, against the scripted server. Nothing
here may make mailfs change the account: the server fixture fails a test
in which mailfs sent STORE, EXPUNGE, COPY, MOVE, DELETE or the like."""

import os
import re
import time

import pytest

from imapserver import ALL_CAPS
from mailfs_testlib import dovecot as srvlib, dt, tree_identity, wait_until
from protolib import IDLE, POLLED, SYNC, assert_alive, paths_of, wait_contents

NO_CONDSTORE = tuple(c for c in ALL_CAPS if c not in ("CONDSTORE", "QRESYNC"))
NO_QRESYNC = tuple(c for c in ALL_CAPS if c != "QRESYNC")
NO_IDLE = tuple(c for c in ALL_CAPS if c != "IDLE")
BARE = ()                       # IMAP4rev1 and nothing else
AFTER_SYNC = 2


def fill(server, folder, n, tag, flags=()):
    msgs = []
    for i in range(n):
        msg = srvlib.make_message("%s %d" % (tag, i), dt(2025, 8, 1, 10, i), "%s %d\n" % (tag, i))
        server.append(folder, msg, flags=flags)
        msgs.append(msg)
    return msgs


def flags_of(path):
    return set(os.getxattr(path, "user.mail.flags").decode().split())


def forced_sync(run_mailfs, m, *folder):
    rc, out, err = run_mailfs("sync", m.path, *folder)
    assert rc == 0, err


def sent(server, pattern):
    """Commands (NAME + arguments) matching the regular expression."""
    rx = re.compile(pattern)
    return [("%s %s" % (name, raw.decode("latin-1"))) for _, _, name, raw in server.commands()
            if rx.search("%s %s" % (name, raw.decode("latin-1")))]


# --- change detection by capability ------------------------------------------------

@pytest.mark.parametrize("server", [{"caps": NO_CONDSTORE}, {"caps": BARE}],
                         ids=["no-condstore", "bare-imap4rev1"], indirect=True)
def test_changes_without_condstore(server, mount):
    """Without CONDSTORE every sync compares the full UID/FLAGS list: flag
    changes, expunges and new messages all show."""
    inbox = fill(server, "INBOX", 1, "inbox")
    server.add_folder("Archive")
    arch = fill(server, "Archive", 3, "archived")
    m = mount()
    files = wait_contents(m.path, inbox + arch)
    first = "Archive/" + os.path.basename(paths_of(files, arch[0])[0])

    server.set_flags("Archive", 1, ["\\Seen", "\\Flagged", "$Label"])
    server.expunge("Archive", 2)
    new = fill(server, "Archive", 1, "new")
    wait_contents(m.path, inbox + [arch[0], arch[2]] + new, POLLED,
                  what="the expunge and the new message by polling")
    wait_until(lambda: flags_of(m / first) == {"seen", "flagged", "$Label"}, POLLED,
               what="the flag change by polling")
    assert not sent(server, r"MODSEQ|CHANGEDSINCE|QRESYNC|CONDSTORE|HIGHESTMODSEQ"), \
        "mailfs used CONDSTORE or QRESYNC, which the server does not offer"
    assert sent(server, r"^UID FETCH 1:\* \(UID FLAGS RFC822\.SIZE\)$")
    if server.caps == ["IMAP4rev1"]:
        assert not sent(server, r"^(IDLE|ENABLE)|RETURN"), \
            "IDLE, ENABLE or LIST-STATUS without the capability"
    assert_alive(m)


@pytest.mark.parametrize("server", [{"caps": NO_QRESYNC}], indirect=True)
def test_condstore_without_qresync(server, mount):
    """CONDSTORE without QRESYNC: flag changes by CHANGEDSINCE, expunges by
    comparing the UID list when the counts disagree."""
    inbox = fill(server, "INBOX", 1, "inbox")
    server.add_folder("Archive")
    arch = fill(server, "Archive", 3, "archived")
    m = mount()
    files = wait_contents(m.path, inbox + arch)
    first = "Archive/" + os.path.basename(paths_of(files, arch[0])[0])

    server.set_flags("Archive", 1, ["\\Answered", "$Work"])
    wait_until(lambda: flags_of(m / first) == {"answered", "$Work"}, POLLED,
               what="the flag change")
    assert sent(server, r"^UID FETCH 1:\* \(UID FLAGS\) \(CHANGEDSINCE \d+\)$")
    server.expunge("Archive", 2)
    wait_contents(m.path, inbox + [arch[0], arch[2]], POLLED, what="the expunge")
    new = fill(server, "Archive", 1, "new")
    wait_contents(m.path, inbox + [arch[0], arch[2]] + new, POLLED, what="the new message")
    assert not sent(server, r"QRESYNC")
    assert_alive(m)


@pytest.mark.parametrize("server", [{"caps": NO_QRESYNC}], indirect=True)
def test_condstore_expunge_and_new_mail_in_one_sync(server, mount, run_mailfs):
    """CONDSTORE without QRESYNC: one message expunged and one delivered
    between two syncs leave the count unchanged; the expunge must still be
    seen (the count is no proof that nothing went)."""
    inbox = fill(server, "INBOX", 1, "inbox")
    server.add_folder("Archive")
    arch = fill(server, "Archive", 3, "archived")
    m = mount()
    wait_contents(m.path, inbox + arch)
    server.expunge("Archive", 2)
    new = fill(server, "Archive", 1, "new")
    forced_sync(run_mailfs, m, "Archive")
    wait_contents(m.path, inbox + [arch[0], arch[2]] + new, AFTER_SYNC,
                  what="UID 2 gone and the new message there after `mailfs sync Archive`")
    assert_alive(m)


def test_qresync_vanished_ranges(server, mount, run_mailfs):
    """VANISHED (EARLIER) naming UIDs mailfs never saw (and the highest UID
    there can be) removes exactly the messages that went."""
    inbox = fill(server, "INBOX", 1, "inbox")
    server.add_folder("Archive")
    arch = fill(server, "Archive", 5, "archived")
    m = mount()
    wait_contents(m.path, inbox + arch)
    server.expunge("Archive", 2)
    server.expunge("Archive", 4)

    def vanished(cmd):
        if not cmd.args or cmd.args[0] != b"Archive" or b"QRESYNC" not in cmd.raw:
            return None
        out = re.sub(rb"\* VANISHED \(EARLIER\) [^\r]*\r\n", b"", cmd.untagged())
        return out + b"* VANISHED (EARLIER) 2,4,6:1000,3000000000:4294967295\r\n" + cmd.tagged()

    server.on("SELECT", vanished)
    forced_sync(run_mailfs, m, "Archive")
    wait_contents(m.path, inbox + [arch[0], arch[2], arch[4]], AFTER_SYNC,
                  what="UIDs 2 and 4 gone, 1, 3 and 5 kept")
    assert sent(server, r"^SELECT Archive \(QRESYNC \(\d+ \d+\)\)$")
    assert_alive(m)


# --- UIDVALIDITY -------------------------------------------------------------------

def test_uidvalidity_change_rematches(server, mount, run_mailfs):
    """The folder comes back with a new UIDVALIDITY and new UIDs: messages
    with the same Message-ID and bytes keep their names and inode numbers,
    the one that is gone goes, a new one arrives, and nothing is sent that
    would change the server."""
    inbox = fill(server, "INBOX", 1, "inbox")
    server.add_folder("Archive")
    arch = fill(server, "Archive", 3, "archived")
    # two messages with one Message-ID, one size and one date: told apart by bytes
    twin_a = srvlib.make_message("twin", dt(2025, 8, 2, 10, 0), "twin A\n", message_id="<twin@x>")
    twin_b = srvlib.make_message("twin", dt(2025, 8, 2, 10, 0), "twin B\n", message_id="<twin@x>")
    server.append("Archive", twin_a)
    server.append("Archive", twin_b)
    arch += [twin_a, twin_b]
    m = mount()
    files = wait_contents(m.path, inbox + arch)
    ident = tree_identity(m.path)
    where = {msg: paths_of(files, msg)[0] for msg in arch}

    old_v = server.folder("Archive").uidvalidity
    server.recreate("Archive", renumber=lambda uid: None if uid == 2 else 100 - uid)
    assert server.folder("Archive").uidvalidity != old_v
    new = fill(server, "Archive", 1, "after")
    forced_sync(run_mailfs, m)
    kept = [arch[0], arch[2], twin_a, twin_b]
    files = wait_contents(m.path, inbox + kept + new, AFTER_SYNC,
                          what="the same messages, the dropped one gone, the new one there")
    after = tree_identity(m.path)
    for msg in kept:
        assert paths_of(files, msg) == [where[msg]], "renamed: %r" % where[msg]
        assert after[where[msg]] == ident[where[msg]], "new inode for %s" % where[msg]
    assert server.writes() == []
    assert_alive(m)


def test_uidvalidity_change_keeps_names_without_message_id(server, mount, run_mailfs):
    """A message without Message-ID cannot be matched by it; it comes back
    as a new item, but it must not come back under another name (DESIGN
    section 2: names are stable) nor twice."""
    server.add_folder("Archive")
    msg = b"Subject: no message-id\r\nDate: Sat, 2 Aug 2025 10:00:00 +0000\r\n\r\nbody\r\n"
    server.append("Archive", msg)
    m = mount()
    files = wait_contents(m.path, [msg])
    (before,) = files
    server.recreate("Archive", renumber=lambda uid: uid + 10)
    forced_sync(run_mailfs, m)
    files = wait_contents(m.path, [msg], AFTER_SYNC)
    assert list(files) == [before], "the name changed from %r to %r" % (before, list(files))
    assert_alive(m)


# --- IDLE ------------------------------------------------------------------------------

@pytest.mark.parametrize("server", [{}, {"caps": NO_QRESYNC}, {"caps": NO_CONDSTORE}],
                         ids=["qresync", "condstore", "plain"], indirect=True)
def test_idle_pushes(server, mount):
    """EXISTS, FETCH (a flag change) and EXPUNGE/VANISHED pushed during IDLE
    show in the mount within 1 s each."""
    inbox = fill(server, "INBOX", 2, "inbox")
    m = mount()
    files = wait_contents(m.path, inbox)
    first = paths_of(files, inbox[0])[0]
    server.wait_for(lambda: server.idling("INBOX"), SYNC, "mailfs idles on INBOX")

    new = srvlib.make_message("pushed", dt(2025, 8, 3, 10, 0), "pushed\n")
    t = time.monotonic()
    server.append("INBOX", new)
    wait_contents(m.path, inbox + [new], IDLE, what="new mail within %.0f s" % IDLE)
    pushed = time.monotonic() - t

    server.wait_for(lambda: server.idling("INBOX"), SYNC, "mailfs idles again")
    server.set_flags("INBOX", 1, ["\\Seen", "$Pushed"])
    wait_until(lambda: flags_of(m / first) == {"seen", "$Pushed"}, IDLE,
               what="a flag change within %.0f s" % IDLE)

    server.wait_for(lambda: server.idling("INBOX"), SYNC, "mailfs idles again")
    server.expunge("INBOX", 2)
    wait_contents(m.path, [inbox[0], new], IDLE, what="an expunge within %.0f s" % IDLE)
    assert pushed < IDLE
    assert_alive(m)


@pytest.mark.parametrize("server", [{"caps": NO_IDLE}], indirect=True)
def test_without_idle_inbox_is_polled(server, mount):
    inbox = fill(server, "INBOX", 1, "inbox")
    m = mount()
    wait_contents(m.path, inbox)
    new = fill(server, "INBOX", 1, "polled")
    wait_contents(m.path, inbox + new, POLLED, what="new INBOX mail by polling")
    assert not sent(server, r"^IDLE"), "IDLE sent to a server without it"
    assert_alive(m)


def test_idle_refused(server, mount):
    """A server that offers IDLE but refuses it: mailfs polls instead."""
    inbox = fill(server, "INBOX", 1, "inbox")
    server.on("IDLE", lambda cmd: cmd.no(b"not now"))
    m = mount()
    wait_contents(m.path, inbox)
    server.wait_for(lambda: sent(server, r"^IDLE"), SYNC, "mailfs tried IDLE")
    new = fill(server, "INBOX", 1, "polled")
    wait_contents(m.path, inbox + new, POLLED, what="new INBOX mail by polling")
    assert_alive(m)


@pytest.mark.parametrize("trouble", ["garbage", "bye", "drop"])
def test_trouble_during_idle(server, mount, trouble):
    """The connection goes bad while mailfs idles: it reconnects and new
    mail still arrives."""
    inbox = fill(server, "INBOX", 1, "inbox")
    m = mount()
    wait_contents(m.path, inbox)
    server.wait_for(lambda: server.idling("INBOX"), SYNC, "mailfs idles on INBOX")
    before = server.connections
    if trouble == "garbage":
        server.inject(b"* ((((\r\n")
    elif trouble == "bye":
        server.inject(b"* BYE going away\r\n")
    else:
        server.drop_connections()
    if trouble != "bye":
        server.wait_for(lambda: server.connections > before, POLLED, "mailfs reconnected")
    new = fill(server, "INBOX", 1, "after")
    wait_contents(m.path, inbox + new, POLLED, what="new mail after the trouble")
    assert_alive(m)
