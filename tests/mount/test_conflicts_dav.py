"""Conflicts of events, tasks, notes and contacts (issue 7, DESIGN section
6), end to end against real Radicale and Xandikos (the server side read
with DavClient, never through mailfs). The account also has mail on a real
Dovecot, so that the notices have an Inbox/ to go to (checked with imaplib
never to reach the server); one test has no mail (no notice, the copy all
the same).

- edited here and on the server (412 on If-Match): the server's version in
  place, the user's in Conflicts/ (state conflict, user.conflict.origin),
  a notice with the exact mv and rm commands; the mv puts the user's
  version back on the server at the same href, a note's other properties
  kept;
- edited here, deleted on the server: the deletion stands, the user's
  version in Conflicts/; a restore creates it again;
- deleted here, edited on the server: the server's version comes back;
- moved here to another collection, deleted on the server: the deletion
  stands, the user's version in Conflicts/;
- a collection deleted on the server with changes inside: it goes, the
  changed items are kept;
- copies survive a remount and `mailfs reset`; mv to a folder of another
  kind is EXDEV, mv inside Conflicts/ local, rm a discard;
- 100 conflicts at once.

Clashes are made offline (`mailfs offline`, the server changed, the local
change, `mailfs online`) and by racing the server while online (poll =
3600: the push meets the server's change before any sync sees it)."""

import errno
import os
import time

import pytest

from mailfs_testlib import ACCOUNT, SLOW, xattr
from dav_env import (dav, dav_server, event, ical_text, journal, prop, todo,  # noqa: F401
                     vcard)
from conflict_env import (assert_no_notice_on_server, check_copy, check_notice, copies,
                          errno_of, log_tail, mailfs_cmd, notices, offline, online, read,
                          run_in_mount, state, sync, wait_copies, wait_for, wait_notice, write,
                          NOTICE_RE)

PUSH = 15  # s: a change on the server (the contract says about a second)

EV = "2026-01-05 10.00 Standup.ics"
TK = "2026-01-10 Report.ics"
NT = "Ideas.txt"
CT = "Erika Muster.vcf"


class MailDav:
    """One test's account: the DAV side (dav_env.DavAccount) and a Dovecot
    with the same user, both in one mailfs account."""

    def __init__(self, dav, dovecot, mailfs_env):
        self.dav = dav
        self.imap = dovecot
        self.mfenv = mailfs_env

    def configure(self, poll=1, mail=True):
        acc = self.dav.account_config(poll=poll)
        if mail:
            acc["imap"] = "imap://%s:%d" % (self.imap.host, self.imap.port)
        self.mfenv.write_config({ACCOUNT: acc})

    def imap_client(self):
        return self.imap.client(self.dav.user, self.dav.password)

    def start(self, mount, run_mailfs, how="offline", mail=True):
        self.how = how
        self.run_mailfs = run_mailfs
        self.configure(poll=3600 if how == "racing" else 1, mail=mail)
        self.m = mount()
        sync(run_mailfs, self.m)
        return self.m

    def clash(self, server_change, local_change):
        if self.how == "offline":
            offline(self.run_mailfs, self.m)
            server_change()
            local_change()
            online(self.run_mailfs, self.m)
        else:
            server_change()
            local_change()


@pytest.fixture
def acct(dav, dovecot_factory, mailfs_env):
    srv = dovecot_factory(users={dav.user: dav.password})
    c = srv.client(dav.user, dav.password)
    c.select("INBOX")  # Dovecot makes INBOX on first use
    c.logout()
    return MailDav(dav, srv, mailfs_env)


def put_all_kinds(dav):
    """An event, a task, a note and a contact on the server."""
    items = {
        "ev": (dav.cal + "ev.ics", event("ev", "Standup", "20260105T100000Z", "LOCATION:base")),
        "tk": (dav.cal + "tk.ics", todo("tk", "Report", "20260110", "PRIORITY:5")),
        "nt": (dav.cal + "nt.ics", journal("nt", "Ideas", "base text\n",
                                           "CATEGORIES:keep-me\nX-MAILFS-TEST:kept")),
        "ct": (dav.book + "ct.vcf", vcard("ct", "Erika Muster", "TEL:+1 555 0100")),
    }
    for href, data in items.values():
        dav.put(href, data)
    return items


def local_paths(m):
    return {"ev": m / ("Calendar/" + EV), "tk": m / ("Tasks/" + TK), "nt": m / ("Notes/" + NT),
            "ct": m / ("Contacts/" + CT)}


FOLDERS = {"ev": "Calendar", "tk": "Tasks", "nt": "Notes", "ct": "Contacts"}
NAMES = {"ev": EV, "tk": TK, "nt": NT, "ct": CT}


# --- 1. edited here and on the server --------------------------------------------------------

@pytest.mark.parametrize("dav_server,how", [("radicale", "offline"), ("radicale", "racing"),
                                            ("xandikos", "offline")],
                         indirect=["dav_server"])
@pytest.mark.time_limit(180)
def test_edit_both_sides_every_kind(acct, dav, mount, run_mailfs, how):
    items = put_all_kinds(dav)
    m = acct.start(mount, run_mailfs, how)
    paths = local_paths(m)
    for k, p in paths.items():
        wait_for(m, lambda: os.path.isfile(p), "%s after the first sync" % p)

    server_new = {
        "ev": event("ev", "Standup", "20260105T100000Z", "LOCATION:server room"),
        "tk": todo("tk", "Report", "20260110", "PRIORITY:1"),
        "nt": journal("nt", "Ideas", "server text\n", "CATEGORIES:keep-me\nX-MAILFS-TEST:kept"),
        "ct": vcard("ct", "Erika Muster", "TEL:+1 555 0199"),
    }
    local = {}

    def server_change():
        for k, data in server_new.items():
            dav.put(items[k][0], data)

    def local_change():
        local["ev"] = read(paths["ev"]).replace(b"LOCATION:base", b"LOCATION:my office")
        local["tk"] = read(paths["tk"]).replace(b"PRIORITY:5", b"PRIORITY:9")
        local["nt"] = b"my text\n"
        local["ct"] = read(paths["ct"]).replace(b"555 0100", b"555 0142")
        for k in ("ev", "tk", "ct"):
            assert local[k] != read(paths[k]), "the test's edit of %s changed nothing" % k
        for k, data in local.items():
            write(paths[k], data)

    acct.clash(server_change, local_change)
    server_bytes = {k: dav.get(href) for k, (href, _) in items.items()}

    wait_copies(m, 4)
    assert sorted(copies(m)) == sorted(NAMES.values()), copies(m)
    for k in NAMES:
        if k == "nt":
            check_copy(m, NT, "Notes/" + NT, text=local["nt"])
        else:
            check_copy(m, NAMES[k], "%s/%s" % (FOLDERS[k], NAMES[k]), content=local[k])
    # the server's version in place, and still on the server
    for k, p in paths.items():
        if k == "nt":
            wait_for(m, lambda: read(p).replace(b"\r\n", b"\n") == b"server text\n",
                     "the server's note text in place (now %r)" % read(p))
        else:
            wait_for(m, lambda: read(p) == server_bytes[k],
                     "the server's version of %s in place" % NAMES[k])
        wait_for(m, lambda: state(p) == "synced", "%s synced (now %s)" % (p, state(p)))
    sync(run_mailfs, m)
    for k, (href, _) in items.items():
        assert dav.get(href) == server_bytes[k], "the server's %s was overwritten" % k
    # a notice for each, with the commands
    cmds = {}
    for k in NAMES:
        n = wait_notice(m, NAMES[k], FOLDERS[k])
        _, mv, rm = check_notice(m, n, NAMES[k], FOLDERS[k], copy=NAMES[k],
                                 happened="changed on the server")
        cmds[k] = mv
    assert_no_notice_on_server(acct.imap_client())

    # restore each with the notice's own command: the user's version goes
    # back to the server, at the same href, over the server's newer one
    for k in NAMES:
        run_in_mount(m, cmds[k])
    assert copies(m) == [], "Conflicts/ after restoring: %r" % copies(m)
    c = dav.client()

    def on_server(k, name, value):
        st, _, body = c.get(items[k][0])
        return st == 200 and value in prop(body, name)

    wait_for(m, lambda: on_server("ev", "LOCATION", "my office"),
             "the user's event on the server at %s" % items["ev"][0], PUSH)
    wait_for(m, lambda: on_server("tk", "PRIORITY", "9"), "the user's task on the server", PUSH)
    wait_for(m, lambda: on_server("ct", "TEL", "+1 555 0142"), "the user's contact on the server",
             PUSH)
    wait_for(m, lambda: [ical_text(x) for x in prop(dav.get(items["nt"][0]), "DESCRIPTION")]
             == ["my text\n"] or [ical_text(x) for x in prop(dav.get(items["nt"][0]),
                                                             "DESCRIPTION")] == ["my text"],
             "the user's note text on the server (now %r)"
             % prop(dav.get(items["nt"][0]), "DESCRIPTION"), PUSH)
    note = dav.get(items["nt"][0])
    assert prop(note, "CATEGORIES") == ["keep-me"] and prop(note, "X-MAILFS-TEST") == ["kept"], \
        "a restored note lost its other properties:\n%s" % note.decode()
    # one resource each, where it was
    assert set(dav.members(dav.cal)) == {items[k][0] for k in ("ev", "tk", "nt")}, \
        dav.members(dav.cal)
    assert set(dav.members(dav.book)) == {items["ct"][0]}, dav.members(dav.book)
    for k, p in paths.items():
        wait_for(m, lambda: state(p) == "synced", "%s synced after the restore (%s)"
                 % (p, state(p)), PUSH)
    assert read(paths["nt"]).replace(b"\r\n", b"\n") == b"my text\n"
    assert_no_notice_on_server(acct.imap_client())


# --- 2. edited here, deleted on the server ---------------------------------------------------

@pytest.mark.parametrize("dav_server,how", [("radicale", "offline"), ("radicale", "racing"),
                                            ("xandikos", "racing")],
                         indirect=["dav_server"])
def test_edit_vs_server_delete(acct, dav, mount, run_mailfs, how):
    items = put_all_kinds(dav)
    m = acct.start(mount, run_mailfs, how)
    paths = local_paths(m)
    wait_for(m, lambda: all(os.path.isfile(p) for p in paths.values()), "the first sync")
    local = {}

    def server_change():
        dav.delete(items["ev"][0])
        dav.delete(items["ct"][0])

    def local_change():
        local["ev"] = read(paths["ev"]).replace(b"LOCATION:base", b"LOCATION:my office")
        local["ct"] = read(paths["ct"]).replace(b"555 0100", b"555 0142")
        write(paths["ev"], local["ev"])
        write(paths["ct"], local["ct"])

    acct.clash(server_change, local_change)
    wait_copies(m, 2)
    check_copy(m, EV, "Calendar/" + EV, content=local["ev"])
    check_copy(m, CT, "Contacts/" + CT, content=local["ct"])
    wait_for(m, lambda: not os.path.exists(paths["ev"]) and not os.path.exists(paths["ct"]),
             "the deleted items gone (the deletion stands)")
    ev_notice = wait_notice(m, EV, "Calendar")
    _, mv, _ = check_notice(m, ev_notice, EV, "Calendar", copy=EV, happened="deleted")
    ct_notice = wait_notice(m, CT, "Contacts")
    _, _, rm = check_notice(m, ct_notice, CT, "Contacts", copy=CT, happened="deleted")
    sync(run_mailfs, m)
    assert not dav.exists(items["ev"][0]) and not dav.exists(items["ct"][0]), \
        "a deleted item came back on the server"
    assert not os.path.exists(paths["ev"]) and not os.path.exists(paths["ct"])

    # restore the event: it is created again; discard the contact
    run_in_mount(m, mv)
    run_in_mount(m, rm)
    assert copies(m) == []
    c = dav.client()

    def event_back():
        for href in dav.members(dav.cal):
            st, _, body = c.get(href)
            if st == 200 and prop(body, "UID") == ["ev"]:
                return prop(body, "LOCATION") == ["my office"]
        return False

    wait_for(m, event_back, "the restored event on the server", PUSH)
    wait_for(m, lambda: state(paths["ev"]) == "synced", "the restored event synced (%s)"
             % state(paths["ev"]), PUSH)
    sync(run_mailfs, m)
    assert not any(prop(b, "UID") == ["ct"] for b in dav.items(dav.book).values()), \
        "a discarded copy reached the server"
    assert not os.path.exists(paths["ct"])
    assert_no_notice_on_server(acct.imap_client())


# --- 3. deleted here, edited on the server ---------------------------------------------------

@pytest.mark.parametrize("dav_server,how", [("radicale", "offline"), ("radicale", "racing"),
                                            ("xandikos", "offline")],
                         indirect=["dav_server"])
def test_delete_vs_server_edit(acct, dav, mount, run_mailfs, how):
    items = put_all_kinds(dav)
    m = acct.start(mount, run_mailfs, how)
    paths = local_paths(m)
    wait_for(m, lambda: all(os.path.isfile(p) for p in paths.values()), "the first sync")
    notices0 = notices(m)

    acct.clash(lambda: dav.put(items["ev"][0], event("ev", "Standup", "20260105T100000Z",
                                                     "LOCATION:moved to the big room")),
               lambda: os.unlink(paths["ev"]))
    server = dav.get(items["ev"][0])
    wait_for(m, lambda: len(notices(m)) > len(notices0), "a notice in Inbox/")
    sync(run_mailfs, m)
    wait_for(m, lambda: os.path.isfile(paths["ev"]), "the server's version back after a sync")
    sync(run_mailfs, m)
    assert read(paths["ev"]) == server
    assert state(paths["ev"]) == "synced"
    assert dav.get(items["ev"][0]) == server, "the server's edit was lost"
    assert copies(m) == [], "nothing to keep, yet Conflicts/ holds %r" % copies(m)
    assert_no_notice_on_server(acct.imap_client())
    # the notice names the item as the user knew it
    new = sorted(set(notices(m)) - set(notices0))
    assert len(new) == 1, new
    mt = NOTICE_RE.match(new[0])
    assert mt.group(2) == "%s (Calendar)" % EV[:-4], \
        ("the notice of a deletion that yielded is named %r: it names the server's "
         "resource (%s), not the file the user deleted (%s)"
         % (new[0], items["ev"][0].rsplit("/", 1)[-1], EV))
    check_notice(m, new[0], EV, "Calendar", happened="comes back")


# --- 4. moved here, deleted on the server ----------------------------------------------------

@pytest.mark.parametrize("dav_server,how", [("radicale", "offline"), ("radicale", "racing"),
                                            ("xandikos", "offline")],
                         indirect=["dav_server"])
def test_move_vs_server_delete(acct, dav, mount, run_mailfs, how):
    items = put_all_kinds(dav)
    team = dav.calendar("team", "Team")
    m = acct.start(mount, run_mailfs, how)
    paths = local_paths(m)
    wait_for(m, lambda: all(os.path.isfile(p) for p in paths.values()) and
             os.path.isdir(m / "Calendar/Team"), "the first sync")
    mine = read(paths["ev"])
    moved = m / ("Calendar/Team/" + EV)

    acct.clash(lambda: dav.delete(items["ev"][0]), lambda: os.rename(paths["ev"], moved))
    wait_copies(m, 1)
    org = xattr(m / ("Conflicts/" + EV), "user.conflict.origin")
    assert org in ("Calendar/Team/" + EV, "Calendar/" + EV), "origin %r" % org
    check_copy(m, EV, org, content=mine)
    wait_for(m, lambda: not os.path.exists(moved), "the moved event gone (the deletion stands)")
    n = wait_notice(m, EV, org.rsplit("/", 1)[0])
    check_notice(m, n, EV, org.rsplit("/", 1)[0], copy=EV, happened="deleted")
    sync(run_mailfs, m)
    assert not os.path.exists(moved) and not os.path.exists(paths["ev"])
    for col in (dav.cal, team):
        assert not any(prop(b, "UID") == ["ev"] for b in dav.items(col).values()), \
            "the event deleted on the server is back in %s" % col
    assert_no_notice_on_server(acct.imap_client())


# --- 9. a collection deleted on the server with changes inside --------------------------------

@pytest.mark.parametrize("dav_server,how", [("radicale", "offline"), ("radicale", "racing"),
                                            ("xandikos", "offline")],
                         indirect=["dav_server"])
def test_collection_deleted_on_server(acct, dav, mount, run_mailfs, how):
    team = dav.calendar("team", "Team")
    dav.put(team + "a.ics", event("a", "Planning", "20260201T090000Z", "LOCATION:base"))
    dav.put(team + "b.ics", event("b", "Review", "20260202T090000Z"))
    put_all_kinds(dav)
    m = acct.start(mount, run_mailfs, how)
    A = m / "Calendar/Team/2026-02-01 09.00 Planning.ics"
    B = m / "Calendar/Team/2026-02-02 09.00 Review.ics"
    C = m / "Calendar/Team/Offsite.ics"
    wait_for(m, lambda: os.path.isfile(A) and os.path.isfile(B), "the first sync")
    new = event("c", "Offsite", "20260203T090000Z")
    local = {}

    def local_change():
        local["a"] = read(A).replace(b"LOCATION:base", b"LOCATION:my office")
        write(A, local["a"])
        write(C, new)

    acct.clash(lambda: dav.client().delete(team), local_change)
    if how == "racing":
        time.sleep(1)
    sync(run_mailfs, m)
    wait_for(m, lambda: not os.path.exists(m / "Calendar/Team"), "Calendar/Team gone")
    wait_copies(m, 2)
    assert sorted(copies(m)) == sorted([A.name, C.name]), \
        "Conflicts/ should hold the two changed items only, holds %r" % copies(m)
    check_copy(m, A.name, "Calendar/Team/" + A.name, content=local["a"])
    check_copy(m, C.name, "Calendar/Team/" + C.name, content=new)
    assert any("Team" in n for n in notices(m)), "no notice about Team: %r" % notices(m)
    sync(run_mailfs, m)
    assert not dav.exists(team), "the collection deleted on the server came back"
    assert not os.path.exists(m / "Calendar/Team")
    assert_no_notice_on_server(acct.imap_client())


# --- a restore over a server version newer than the one in place ------------------------------

@pytest.mark.parametrize("dav_server", ["radicale", "xandikos"], indirect=True)
def test_restore_over_a_newer_server_version(acct, dav, mount, run_mailfs):
    """The server changes the item again after the conflict, before the
    restore (poll = 3600: not seen here yet): the restore still replaces
    it -- the user chose their version over the server's."""
    items = put_all_kinds(dav)
    m = acct.start(mount, run_mailfs, "racing")
    paths = local_paths(m)
    wait_for(m, lambda: os.path.isfile(paths["ev"]), "the first sync")
    mine = read(paths["ev"]).replace(b"LOCATION:base", b"LOCATION:my office")
    acct.clash(lambda: dav.put(items["ev"][0], event("ev", "Standup", "20260105T100000Z",
                                                     "LOCATION:server 1")),
               lambda: write(paths["ev"], mine))
    wait_copies(m, 1)
    wait_for(m, lambda: prop(read(paths["ev"]), "LOCATION") == ["server 1"],
             "the server's version in place")
    n0 = len(notices(m))
    dav.put(items["ev"][0], event("ev", "Standup", "20260105T100000Z", "LOCATION:server 2"))
    os.rename(m / ("Conflicts/" + EV), paths["ev"])
    try:
        wait_for(m, lambda: prop(dav.get(items["ev"][0]), "LOCATION") == ["my office"],
                 "the user's version on the server at %s" % items["ev"][0], PUSH)
    except AssertionError as e:
        raise AssertionError("%s\nthe server holds LOCATION %r; Conflicts/ holds %r; %d new "
                             "notice(s); the file's state is %r" % (
                                 e, prop(dav.get(items["ev"][0]), "LOCATION"), copies(m),
                                 len(notices(m)) - n0, state(paths["ev"]))) from None
    wait_for(m, lambda: state(paths["ev"]) == "synced", "the restored event synced", PUSH)
    assert copies(m) == []


# --- no mail: no notice, the copy all the same ------------------------------------------------

@pytest.mark.parametrize("dav_server", ["radicale"], indirect=True)
def test_without_mail_no_notice(acct, dav, mount, run_mailfs):
    items = put_all_kinds(dav)
    m = acct.start(mount, run_mailfs, "offline", mail=False)
    paths = local_paths(m)
    wait_for(m, lambda: os.path.isfile(paths["ev"]), "the first sync")
    mine = read(paths["ev"]).replace(b"LOCATION:base", b"LOCATION:my office")
    acct.clash(lambda: dav.put(items["ev"][0], event("ev", "Standup", "20260105T100000Z",
                                                     "LOCATION:server")),
               lambda: write(paths["ev"], mine))
    wait_copies(m, 1)
    check_copy(m, EV, "Calendar/" + EV, content=mine)
    sync(run_mailfs, m)
    assert not os.path.exists(m / "Inbox"), "an Inbox/ in an account without mail"
    assert prop(dav.get(items["ev"][0]), "LOCATION") == ["server"]
    assert sorted(os.listdir(m.path)) == sorted(["Calendar", "Tasks", "Notes", "Contacts",
                                                 "Conflicts"]), os.listdir(m.path)


# --- the Conflicts folder: rules, remount, reset -----------------------------------------------

@pytest.mark.parametrize("dav_server", ["radicale"], indirect=True)
def test_restore_rules_and_discard(acct, dav, mount, run_mailfs):
    items = put_all_kinds(dav)
    m = acct.start(mount, run_mailfs, "offline")
    paths = local_paths(m)
    wait_for(m, lambda: all(os.path.isfile(p) for p in paths.values()), "the first sync")
    local = {}

    def local_change():
        local["ev"] = read(paths["ev"]).replace(b"LOCATION:base", b"LOCATION:my office")
        local["ct"] = read(paths["ct"]).replace(b"555 0100", b"555 0142")
        write(paths["ev"], local["ev"])
        write(paths["ct"], local["ct"])

    acct.clash(lambda: (dav.put(items["ev"][0], event("ev", "Standup", "20260105T100000Z",
                                                      "LOCATION:server")),
                        dav.put(items["ct"][0], vcard("ct", "Erika Muster", "TEL:+1 9"))),
               local_change)
    wait_copies(m, 2)
    server = {k: dav.get(items[k][0]) for k in ("ev", "ct")}
    conf = m / "Conflicts"

    # to a folder of another kind: EXDEV, nothing changes
    for target in ("Contacts", "Tasks", "Notes", "Inbox"):
        e = errno_of(os.rename, conf / EV, m / target / EV)
        assert e == errno.EXDEV, "mv Conflicts/%s %s/: %s, want EXDEV" % (
            EV, target, errno.errorcode.get(e, e))
    e = errno_of(os.rename, conf / CT, m / "Calendar" / CT)
    assert e == errno.EXDEV, "mv of a contact copy to Calendar/: %r" % e
    check_copy(m, EV, "Calendar/" + EV, content=local["ev"])
    # nothing new can be made in Conflicts/
    assert errno_of(write, conf / "new.ics", local["ev"]) == errno.EPERM
    # mv inside Conflicts/: local, still a copy
    os.rename(conf / EV, conf / "mine.ics")
    check_copy(m, "mine.ics", "Calendar/" + EV, content=local["ev"])
    sync(run_mailfs, m)
    assert {k: dav.get(items[k][0]) for k in ("ev", "ct")} == server, \
        "a mv inside Conflicts/ changed the server"

    # rm: discarded here, the server untouched
    os.unlink(conf / CT)
    sync(run_mailfs, m)
    assert dav.get(items["ct"][0]) == server["ct"]
    assert read(paths["ct"]) == server["ct"]

    # back under another name in its folder: the server's version is replaced
    # at the same href, and the old name goes
    os.rename(conf / "mine.ics", m / "Calendar/mine.ics")
    assert copies(m) == []
    wait_for(m, lambda: prop(dav.get(items["ev"][0]), "LOCATION") == ["my office"],
             "the user's event on the server at %s" % items["ev"][0], PUSH)
    assert list(dav.members(dav.cal)).count(items["ev"][0]) == 1
    assert sum(1 for b in dav.items(dav.cal).values() if prop(b, "UID") == ["ev"]) == 1, \
        "the restore made a second event"
    wait_for(m, lambda: not os.path.exists(paths["ev"]), "the old name gone")
    wait_for(m, lambda: state(m / "Calendar/mine.ics") == "synced", "the restored event synced")


@pytest.mark.parametrize("dav_server", ["radicale"], indirect=True)
@pytest.mark.time_limit(180)
def test_copies_survive_remount_and_reset(acct, dav, mount, run_mailfs):
    items = put_all_kinds(dav)
    m = acct.start(mount, run_mailfs, "offline")
    paths = local_paths(m)
    wait_for(m, lambda: all(os.path.isfile(p) for p in paths.values()), "the first sync")
    mine = read(paths["ev"]).replace(b"LOCATION:base", b"LOCATION:my office")
    acct.clash(lambda: dav.put(items["ev"][0], event("ev", "Standup", "20260105T100000Z",
                                                     "LOCATION:server")),
               lambda: write(paths["ev"], mine))
    wait_copies(m, 1)
    n = wait_notice(m, EV, "Calendar")
    check_copy(m, EV, "Calendar/" + EV, content=mine)

    m.unmount()
    m = mount()
    check_copy(m, EV, "Calendar/" + EV, content=mine)
    assert n in notices(m), "the notice did not survive a remount"

    m.unmount()
    rc, out, err = run_mailfs("reset", ACCOUNT, timeout=60)
    assert rc == 0, "mailfs reset failed (%d): %s%s" % (rc, out, err)
    m = mount()
    sync(run_mailfs, m)
    paths = local_paths(m)
    wait_for(m, lambda: os.path.isfile(paths["ev"]), "Calendar/ back after the reset")
    check_copy(m, EV, "Calendar/" + EV, content=mine)
    assert prop(read(paths["ev"]), "LOCATION") == ["server"]

    # a copy kept across the reset still restores, over the server's version
    os.rename(m / ("Conflicts/" + EV), paths["ev"])
    try:
        wait_for(m, lambda: prop(dav.get(items["ev"][0]), "LOCATION") == ["my office"],
                 "the copy restored after a reset on the server at %s" % items["ev"][0], PUSH)
    except AssertionError as e:
        st, _, body = dav.client().get(items["ev"][0])
        raise AssertionError("%s\nGET %s: %d %r\nlocal state: %s" % (
            e, items["ev"][0], st, body[:300], state(paths["ev"]))) from None
    wait_for(m, lambda: state(paths["ev"]) == "synced", "the restored event synced (%s)"
             % state(paths["ev"]), PUSH)


# --- 100 at once ------------------------------------------------------------------------------

@pytest.mark.parametrize("dav_server", ["radicale"], indirect=True)
@pytest.mark.time_limit(240)
def test_hundred_event_conflicts(acct, dav, mount, run_mailfs):
    c = dav.client()
    hrefs = {}
    for i in range(100):
        uid = "bulk%03d" % i
        href = dav.cal + uid + ".ics"
        st, _ = c.put(href, event(uid, "Bulk %03d" % i, "20260301T%02d%02d00Z" % (8 + i // 60,
                                                                              i % 60),
                                  "LOCATION:base"))
        assert st in (200, 201, 204), st
        hrefs[uid] = href
    m = acct.start(mount, run_mailfs, "offline")
    cal = m / "Calendar"
    wait_for(m, lambda: len(os.listdir(cal)) == 100, "100 events in Calendar/")
    names = sorted(os.listdir(cal))

    offline(run_mailfs, m)
    for uid, href in hrefs.items():
        st, _ = c.put(href, event(uid, "Bulk %s" % uid[4:], "20260301T%02d%02d00Z"
                                  % (8 + int(uid[4:]) // 60, int(uid[4:]) % 60),
                                  "LOCATION:server"))
        assert st in (200, 201, 204), st
    local = {}
    for n in names:
        data = read(cal / n).replace(b"LOCATION:base", b"LOCATION:mine")
        write(cal / n, data)
        local[n] = data
    t0 = time.monotonic()
    online(run_mailfs, m)
    wait_copies(m, 100, timeout=90)
    took = time.monotonic() - t0
    sync(run_mailfs, m)
    assert sorted(copies(m)) == names, "Conflicts/ should hold the 100 events"
    for n in names:
        check_copy(m, n, "Calendar/" + n, content=local[n])
        assert prop(read(cal / n), "LOCATION") == ["server"], \
            "the server's version of %s is not in place" % n
    for uid, href in hrefs.items():
        assert prop(dav.get(href), "LOCATION") == ["server"], "the server's %s overwritten" % uid
    assert len(dav.members(dav.cal)) == 100
    assert took < 60 * SLOW, "100 conflicts took %.1f s" % took
    assert notices(m), "no notice"
    assert_no_notice_on_server(acct.imap_client())
