"""What mailfs refuses (DESIGN section 7 and the foundation issue): writes to
the read-only tree, bad or missing configs, unknown accounts, wrong
passwords, TLS that cannot be verified, plain text that was not asked for."""

import base64
import errno
import os
import re
import subprocess

import pytest

from mailfs_testlib import (SLOW, TcpRecorder, dovecot as srvlib, dt, expected_name,
                            message_files, populate_basic, server_state, tree_files,
                            wait_until)

SYNC = 10


def mailfs_message(err):
    """The `mailfs: ` lines of stderr; asserts there is at least one."""
    lines = [ln for ln in err.splitlines() if ln.startswith("mailfs: ")]
    assert lines, "no line beginning 'mailfs: ' in stderr:\n" + err
    return "\n".join(lines)


def assert_names_file_and_line(err, path, lines):
    """The message names the file and one of `lines` (an int or a tuple), as
    FILE:LINE or as "line LINE"."""
    msg = mailfs_message(err)
    assert path in msg, "message does not name %s:\n%s" % (path, msg)
    lines = (lines,) if isinstance(lines, int) else lines
    assert any(re.search(re.escape(path) + r":%d\b" % n, msg) or
               re.search(r"\bline %d\b" % n, msg) for n in lines), \
        "message does not name line %s:\n%s" % (" or ".join(map(str, lines)), msg)


# --- read-only -------------------------------------------------------------------------

def erofs_problem(fn, *args):
    """None when fn(*args) fails with EROFS, else what happened."""
    what = "%s(%s)" % (fn.__name__, ", ".join(os.path.basename(str(a)) for a in args))
    try:
        fn(*args)
    except OSError as e:
        if e.errno == errno.EROFS:
            return None
        return "%s: %s instead of EROFS" % (what, e)
    return "%s succeeded" % what


def write_existing(path):
    # open() may succeed when the file system lets the kernel skip opens
    # (FUSE_CAP_NO_OPEN_SUPPORT); the write must fail then
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, b"x")
        os.fsync(fd)
    finally:
        os.close(fd)


def append_existing(path):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)


def open_trunc(path):
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    os.close(fd)


def create_new(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def test_read_only(account, mount, run_mailfs, tmp_path):
    """Writes work now (tests/mount/test_write_*.py); what is still refused:
    files in the mount's root or in the local-only Conflicts/, links, names
    over 255 bytes, and making or removing the fixed top-level trees."""
    c = account.client()
    expected = populate_basic(c)
    state = server_state(c)
    m = mount()
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    f = m / ("Inbox/" + expected_name("Quarterly report", dt(2026, 11, 24, 10, 0)))
    outside = str(tmp_path / "outside.eml")
    with open(outside, "wb") as o:
        o.write(expected["Inbox/" + os.path.basename(f)])

    def problem(want, fn, *args):
        what = "%s(%s)" % (fn.__name__, ", ".join(os.path.basename(str(a)) for a in args))
        want = want if isinstance(want, tuple) else (want,)
        names = "/".join(errno.errorcode[w] for w in want)
        try:
            fn(*args)
        except OSError as e:
            return None if e.errno in want else "%s: %s instead of %s" % (what, e, names)
        return "%s succeeded instead of failing with %s" % (what, names)

    checks = [
        (errno.EPERM, create_new, m / "top.eml"),
        (errno.EPERM, create_new, m / "Conflicts/mine.eml"),
        (errno.EPERM, os.mkdir, m / "Conflicts/sub"),
        (errno.EPERM, os.symlink, "x", m / "Inbox/link"),
        (errno.EPERM, os.link, f, m / "Inbox/hard.eml"),
        (errno.ENAMETOOLONG, create_new, m / "Inbox" / ("x" * 252 + ".eml")),
        (errno.ENAMETOOLONG, os.mkdir, m / ("d" * 256)),
        (errno.ENAMETOOLONG, os.mkdir, m / "Archive" / ("d" * 256)),
        (errno.EEXIST, os.mkdir, m / "Inbox"),
        (errno.EEXIST, os.mkdir, m / "Conflicts"),
        (errno.EEXIST, os.mkdir, m / "Calendar"),
        (errno.EEXIST, os.mkdir, m / "Tasks"),
        (errno.EEXIST, os.mkdir, m / "Notes"),
        (errno.EEXIST, os.mkdir, m / "Contacts"),
        (errno.EPERM, os.rename, m / "Inbox", m / "Mailbox"),
        (errno.EPERM, os.rename, m / "Archive", m / "Conflicts/Archive"),
        (errno.EPERM, os.rename, f, m / "top.eml"),
        ((errno.EXDEV, errno.EPERM), os.rename, f, m / "Conflicts/moved.eml"),
    ]
    problems = [p for p in (problem(*c) for c in checks) if p]

    env = dict(os.environ, LC_ALL="C")
    for cmd in (["touch", m / "touched.eml"],
                ["sh", "-c", 'echo hi > "$1"', "sh", m / "echoed.eml"],
                ["cp", outside, m / "Conflicts/copied.eml"],
                ["ln", "-s", outside, m / "Inbox/link.eml"],
                ["mv", f, m / "Conflicts/"]):
        r = subprocess.run([str(x) for x in cmd], capture_output=True, text=True, env=env,
                           timeout=30 * SLOW)
        if r.returncode == 0:
            problems.append("%s: succeeded" % " ".join(map(str, cmd)))
    assert problems == [], "refusals:\n" + "\n".join(problems)

    assert tree_files(m.path) == expected  # nothing added, removed or changed
    assert os.listdir(m / "Conflicts") == []
    assert sorted(os.listdir(m.path)) == sorted(
        ["Inbox", "Archive", "Sent", "Entwürfe", "Conflicts"])
    rc, out, err = run_mailfs("sync", m.path)
    assert rc == 0, err
    assert server_state(c) == state


# --- configuration -------------------------------------------------------------------------

def test_help_and_version(run_mailfs):
    rc, out, err = run_mailfs("--help", config=False)
    assert rc == 0, err
    text = out + err
    assert "sync" in text and "MOUNTPOINT" in text.upper(), text
    rc, out, err = run_mailfs("--version", config=False)
    assert rc == 0, err
    assert re.search(r"\d+\.\d+", out + err), out + err
    rc, out, err = run_mailfs(config=False)
    assert rc != 0 and "usage" in err.lower(), err


def test_missing_config(dovecot, mailfs_env, mount, run_mailfs, tmp_path):
    path = str(tmp_path / "no-such-config")
    rc, err = mount.expect_failure(config=path)
    assert path in mailfs_message(err), err
    rc, out, err = run_mailfs("sync", "test", config=path)
    assert rc != 0
    assert path in mailfs_message(err), err
    # the default path, $XDG_CONFIG_HOME/mailfs/config, when there is no --config
    rc, out, err = run_mailfs("sync", "test", config=False)
    assert rc != 0
    assert mailfs_env.config_path in mailfs_message(err), err


BAD_CONFIGS = {
    # name: (lines after the [account test] header, 1-based line(s) of the
    # fault in the file, a word the message must hold)
    "unknown key": (["imap = {url}", "user = alice", "password_command = {pw}",
                     "tls = none", "imaps = {url}", "poll = 1"], 6, "imaps"),
    "bad scheme": (["imap = ftp://127.0.0.1:{port}", "user = alice",
                    "password_command = {pw}"], 2, "ftp"),
    "poll not a number": (["imap = {url}", "user = alice", "password_command = {pw}",
                           "tls = none", "poll = often"], 6, "poll"),
    "bad tls value": (["imap = {url}", "user = alice", "password_command = {pw}",
                       "tls = maybe"], 5, "tls"),
    "not key = value": (["imap = {url}", "this line is wrong", "user = alice"], 3, None),
    "duplicate key": (["imap = {url}", "user = alice", "user = bob",
                       "password_command = {pw}", "tls = none"], 4, "user"),
    # either line is right: the imap URL's or the tls setting's
    "tls none with imaps": (["imap = imaps://127.0.0.1:{port}", "user = alice",
                             "password_command = {pw}", "tls = none"], (2, 5), "tls"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config(case, dovecot, mailfs_env, mount, run_mailfs):
    lines, line, word = BAD_CONFIGS[case]
    pw = "cat " + mailfs_env.password_file("secret")
    text = "\n".join(["[account test]"] + [ln.format(url="imap://127.0.0.1:%d" % dovecot.port,
                                                     port=dovecot.port, pw=pw)
                                           for ln in lines]) + "\n"
    path = mailfs_env.write_config(raw=text)
    rc, err = mount.expect_failure()
    assert_names_file_and_line(err, path, line)
    if word:
        assert word in mailfs_message(err), err
    rc, out, err = run_mailfs("sync", "test")
    assert rc != 0
    assert_names_file_and_line(err, path, line)


def test_missing_password_command(dovecot, mailfs_env, mount):
    path = mailfs_env.write_config(raw="[account test]\nimap = imap://127.0.0.1:%d\n"
                                       "user = alice\ntls = none\n" % dovecot.port)
    rc, err = mount.expect_failure()
    msg = mailfs_message(err)
    assert path in msg and "password_command" in msg, msg


def test_unknown_account(account, mailfs_env, mount, run_mailfs):
    rc, err = mount.expect_failure(account="nosuch")
    msg = mailfs_message(err)
    assert "nosuch" in msg, msg
    rc, out, err = run_mailfs("sync", "nosuch")
    assert rc != 0
    assert "nosuch" in mailfs_message(err)


def test_password_command_fails(dovecot, mailfs_env, mount):
    acc = mailfs_env.account_for(dovecot)
    acc["password_command"] = "false"
    mailfs_env.write_config({"test": acc})
    rc, err = mount.expect_failure()
    assert "password" in mailfs_message(err).lower(), err


# --- login ------------------------------------------------------------------------------

WRONG = "Wr0ng-Passw0rd-Zq9"


def test_wrong_password(dovecot, mailfs_env, mount, run_mailfs):
    mailfs_env.configure(dovecot, password=WRONG)
    rc, err = mount.expect_failure()
    msg = mailfs_message(err)
    assert re.search(r"login|authenticat", msg, re.I), msg
    b64 = base64.b64encode(b"\0alice\0" + WRONG.encode()).decode()
    assert WRONG not in err and b64 not in err
    rc, out, err = run_mailfs("sync", "test")
    assert rc != 0
    assert re.search(r"login|authenticat", mailfs_message(err), re.I), err
    assert WRONG not in out + err and b64 not in out + err


# --- TLS ----------------------------------------------------------------------------------

SSL = [{"ssl": True}]


@pytest.mark.parametrize("dovecot", SSL, indirect=True, ids=["ssl"])
@pytest.mark.parametrize("tls", ["imaps", "starttls"])
def test_tls_with_cafile(dovecot, mailfs_env, mount, tls):
    mailfs_env.configure(dovecot, tls=tls)
    c = dovecot.client()
    expected = populate_basic(c)
    m = mount()
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="sync over TLS")
    # the session was encrypted: Dovecot marks TLS logins
    logins = [ln for ln in dovecot.log().splitlines() if "Login: user=<alice>" in ln]
    mailfs_logins = [ln for ln in logins if "TLS" in ln]
    assert mailfs_logins, "no TLS login in the Dovecot log:\n" + "\n".join(logins)


@pytest.mark.parametrize("dovecot", SSL, indirect=True, ids=["ssl"])
@pytest.mark.parametrize("tls", ["imaps", "starttls"])
@pytest.mark.parametrize("ca", ["none", "other"])
def test_tls_unverified_refused(dovecot, mailfs_env, mount, tmp_path, tls, ca):
    if ca == "none":
        mailfs_env.configure(dovecot, tls=tls, cafile=False)
    else:
        other = srvlib.Dovecot(tmp_path / "other-ca", ssl=True)
        other._make_certs()  # a CA that did not sign the server's certificate
        mailfs_env.configure(dovecot, tls=tls, cafile=other.ca_file)
    rc, err = mount.expect_failure()
    assert "certificate" in mailfs_message(err).lower(), err
    assert "Login: user=<alice>" not in dovecot.log()


def test_plain_needs_tls_none(dovecot_factory, mailfs_env, mount):
    pw = "Plain-Text-Never-9f"
    srv = dovecot_factory(users={"alice": pw})  # ssl = no: no STARTTLS offered
    rec = TcpRecorder(srv.host, srv.port)
    try:
        # imap:// without tls = none: STARTTLS is required and not offered
        mailfs_env.configure(srv, tls="starttls", port=rec.port)
        rc, err = mount.expect_failure()
        assert re.search(r"starttls|tls", mailfs_message(err), re.I), err
    finally:
        rec.close()
    sent = bytes(rec.sent)
    assert pw.encode() not in sent
    assert base64.b64encode(b"\0alice\0" + pw.encode()) not in sent
    assert b"LOGIN" not in sent.upper().replace(b"LOGINDISABLED", b"")
    assert b"AUTHENTICATE" not in sent.upper()
    assert "Login: user=<alice>" not in srv.log()
    # with tls = none written out it works
    mailfs_env.configure(srv, tls="none")
    c = srv.client()
    expected = populate_basic(c)
    m = mount()
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="plain sync")
