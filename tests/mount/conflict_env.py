"""Helpers of the conflict tests (tests/mount/test_conflicts_*.py, DESIGN
section 6): reading the copies in Conflicts/ and the notices in Inbox/, and
checking on the server (imaplib) that a notice never went there.

A copy: a file in Conflicts/ named like the item (else "NAME (from
FOLDER).ext", else " (2)"...), user.sync.state `conflict`,
user.conflict.origin the path it had, the user's bytes.
A notice: "YYYY-MM-DD HH.MM Synchronization conflict: ITEM (FOLDER).eml" in
Inbox/, local only (user.sync.state `local`), telling what happened, where
the copy is, and the exact `mv` and `rm` commands."""

import datetime
import email
import email.header
import email.policy
import os
import re
import shlex
import subprocess
import time

from mailfs_testlib import SLOW, dovecot as srvlib, wait_until, while_alive, xattr

SYNC = 30    # s: `mailfs sync`, a pass over a small account (SLOW applies on top)
SETTLE = 15  # s: a conflict settled once the change was pushed (SLOW applies)

NOTICE_RE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d\.\d\d) Synchronization conflict: (.*)\.eml$")
NOTICE_SUBJECT = "Synchronization conflict"


def read(path):
    with open(str(path), "rb") as f:
        return f.read()


def write(path, data):
    if isinstance(data, str):
        data = data.encode()
    with open(str(path), "wb") as f:
        f.write(data)


def state(path):
    try:
        return xattr(path, "user.sync.state")
    except OSError as e:
        return "<%s>" % os.strerror(e.errno)


def origin(path):
    try:
        return xattr(path, "user.conflict.origin")
    except OSError as e:
        return "<%s>" % os.strerror(e.errno)


def errno_of(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return None


def log_tail(m, n=40):
    return "\n".join(m.stderr().splitlines()[-n:])


def wait_for(m, predicate, what, timeout=SETTLE):
    """wait_until while the daemon lives; the daemon's log tail on failure."""
    try:
        return wait_until(while_alive(m, predicate), timeout * SLOW, interval=0.1, what=what)
    except AssertionError as e:
        raise AssertionError("%s\n--- mailfs log (tail) ---\n%s" % (e, log_tail(m))) from None


def mailfs_cmd(run_mailfs, *args, timeout=SYNC):
    rc, out, err = run_mailfs(*args, timeout=timeout)
    assert rc == 0, "mailfs %s failed (%d): %s%s" % (" ".join(map(str, args)), rc, out, err)
    return out


def sync(run_mailfs, m):
    return mailfs_cmd(run_mailfs, "sync", m.path)


def offline(run_mailfs, m):
    mailfs_cmd(run_mailfs, "offline", m.path)
    assert xattr(m.path, "user.mailfs.mode") == "offline"


def online(run_mailfs, m):
    mailfs_cmd(run_mailfs, "online", m.path)


# --- the Conflicts folder --------------------------------------------------------------

def copies(m):
    """Sorted names of the files in Conflicts/ ([] when it does not exist)."""
    d = os.path.join(m.path, "Conflicts")
    if not os.path.isdir(d):
        return []
    return sorted(os.listdir(d))


def wait_copies(m, n, what=None, timeout=SETTLE):
    """Until Conflicts/ holds at least n files; their names."""
    wait_for(m, lambda: len(copies(m)) >= n, what or "%d copies in Conflicts/ (now %r)"
             % (n, copies(m)), timeout)
    return copies(m)


def check_copy(m, name, want_origin, content=None, flags=None, text=None):
    """A copy in Conflicts/: state conflict, its origin, its bytes (or, for a
    note, its text with either line end), for mail its flags."""
    p = os.path.join(m.path, "Conflicts", name)
    assert os.path.isfile(p), "no Conflicts/%s; Conflicts/ holds %r" % (name, copies(m))
    assert state(p) == "conflict", "user.sync.state of Conflicts/%s is %r" % (name, state(p))
    assert origin(p) == want_origin, \
        "user.conflict.origin of Conflicts/%s is %r, want %r" % (name, origin(p), want_origin)
    data = read(p)
    if content is not None:
        assert data == content, "Conflicts/%s does not hold the user's version:\n%r\nwant\n%r" \
            % (name, data, content)
    if text is not None:
        assert data.replace(b"\r\n", b"\n") == text.replace(b"\r\n", b"\n"), \
            "Conflicts/%s holds %r, want the text %r" % (name, data, text)
    if flags is not None:
        got = set(xattr(p, "user.mail.flags").split())
        assert got == set(flags.split()), \
            "user.mail.flags of Conflicts/%s is %r, want %r" % (name, got, flags)
    names = os.listxattr(p)
    assert "user.conflict.origin" in names, "listxattr of a copy lacks user.conflict.origin: %r" \
        % names
    return data


# --- notices ---------------------------------------------------------------------------

def notices(m):
    """Sorted names of the notices in Inbox/."""
    d = os.path.join(m.path, "Inbox")
    if not os.path.isdir(d):
        return []
    return sorted(n for n in os.listdir(d) if NOTICE_RE.match(n))


def notice_about(name, item, folder):
    """Does a notice's file name name `item` (without its extension) in
    `folder` ("" for none)?"""
    mt = NOTICE_RE.match(name)
    if not mt:
        return False
    want = item if not folder else "%s (%s)" % (item, folder.replace("/", "\uff0f"))
    return mt.group(2) == want or re.fullmatch(re.escape(want) + r" \(\d+\)", mt.group(2))


def strip_ext(name):
    return name[:-4] if name[-4:] in (".eml", ".ics", ".vcf", ".txt") else name


def wait_notice(m, item, folder, timeout=SETTLE):
    """Until Inbox/ holds a notice about item (a file name) in folder; its
    name."""
    base = strip_ext(item)

    def find():
        hits = [n for n in notices(m) if notice_about(n, base, folder)]
        return hits[0] if hits else None

    try:
        return wait_for(m, find, "a notice about %s in %s" % (item, folder), timeout)
    except AssertionError as e:
        raise AssertionError("%s\nnotices in Inbox/: %r" % (e, notices(m))) from None


def parse_notice(m, name):
    """(email.message.EmailMessage, body text) of a notice."""
    raw = read(os.path.join(m.path, "Inbox", name))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    body = msg.get_content() if not msg.is_multipart() else ""
    return msg, body, raw


def check_notice(m, name, item, folder, copy=None, happened=None):
    """A notice: its file name, state local, Subject, Date of now, and a
    body that says what clashed, what happened, where the copy is and the
    exact commands to restore or discard it. Returns (body, mv command, rm
    command) (None, None without a copy)."""
    mt = NOTICE_RE.match(name)
    assert mt, "not a notice name: %r" % name
    stamp = datetime.datetime.strptime(mt.group(1), "%Y-%m-%d %H.%M").replace(
        tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - stamp).total_seconds()) < 600, \
        "notice %r is not dated now (TZ=UTC)" % name
    p = os.path.join(m.path, "Inbox", name)
    assert state(p) == "local", "user.sync.state of the notice %s is %r" % (name, state(p))
    msg, body, raw = parse_notice(m, name)
    base = strip_ext(item)
    subject = str(msg["Subject"])
    want = "%s: %s" % (NOTICE_SUBJECT, base) + (" (%s)" % folder if folder else "")
    assert subject == want, "notice Subject %r, want %r" % (subject, want)
    assert msg["Date"] and msg["From"], "notice lacks Date or From:\n%r" % raw[:400]
    path = "%s/%s" % (folder, item) if folder else item
    assert path in body, "notice does not name %s:\n%s" % (path, body)
    if happened:
        assert happened in body, "notice does not say %r:\n%s" % (happened, body)
    if copy is None:
        return body, None, None
    assert "Conflicts/" + copy in body, "notice does not say where the copy is:\n%s" % body
    mv = "mv %s %s" % (shlex.quote("Conflicts/" + copy), shlex.quote(folder + "/"))
    rm = "rm %s" % shlex.quote("Conflicts/" + copy)
    # the notice quotes every argument
    mv_q = "mv '%s' '%s/'" % (("Conflicts/" + copy).replace("'", "'\\''"),
                              folder.replace("'", "'\\''"))
    rm_q = "rm '%s'" % ("Conflicts/" + copy).replace("'", "'\\''")
    lines = [x.strip() for x in body.splitlines()]
    assert mv_q in lines or mv in lines, \
        "notice lacks the exact command %r:\n%s" % (mv_q, body)
    assert rm_q in lines or rm in lines, \
        "notice lacks the exact command %r:\n%s" % (rm_q, body)
    return body, (mv_q if mv_q in lines else mv), (rm_q if rm_q in lines else rm)


def run_in_mount(m, command):
    """Run a shell command line (from a notice) in the mount's root."""
    r = subprocess.run(command, shell=True, cwd=m.path, capture_output=True, text=True,
                       timeout=60 * SLOW)
    assert r.returncode == 0, "%r in %s: exit %d: %s" % (command, m.path, r.returncode, r.stderr)


def server_notice_hits(client):
    """[(folder, uid)] of messages on the server whose Subject holds
    "Synchronization conflict" (there must never be any)."""
    hits = []
    for f in srvlib.list_folders(client):
        typ, data = client.select(srvlib.mailbox_arg(f), readonly=True)
        if typ != "OK":
            continue
        typ, data = client.uid("SEARCH", None, "SUBJECT", '"%s"' % NOTICE_SUBJECT)
        assert typ == "OK", data
        hits += [(f, int(u)) for u in (data[0] or b"").split()]
        client.close()
    return hits


def assert_no_notice_on_server(client, what=""):
    hits = server_notice_hits(client)
    assert not hits, "a conflict notice reached the server %s: %r" % (what, hits)


def copy_name_for(origin_path, names):
    """The copy in `names` whose expected name fits origin_path: the item's
    own name, or its "(from FOLDER)" form, or a numbered variant."""
    item = origin_path.rsplit("/", 1)[-1]
    base, ext = (item[:-4], item[-4:]) if item[-4:] in (".eml", ".ics", ".vcf", ".txt") \
        else (item, "")
    for n in names:
        if n == item or (n.startswith(base + " (") and n.endswith(ext)):
            return n
    return None


def elapsed(t0):
    return time.monotonic() - t0
