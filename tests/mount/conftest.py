"""Fixtures of the mount tests: a real Dovecot per test, a private
environment (HOME, XDG dirs, config, password file), a mount factory that runs
`mailfs ... -f` and always unmounts, and run_mailfs for the subcommands.

Every test gets its own servers, store and mount point, and everything it
started is stopped at teardown, also when the test fails. A watchdog aborts
the test's FUSE mounts when a test runs longer than its time limit (a hung
daemon would otherwise block the whole run): mark a test with
@pytest.mark.time_limit(SECONDS) to change the default of 120 s.

Run (as root, with fuse3, dovecot-imapd, openssl and attr installed):
    /usr/bin/python3 -m pytest tests/mount            # build/fs/mailfs
    MAILFS_BIN=/path/to/mailfs /usr/bin/python3 -m pytest tests/mount
    MAILFS_BIN=build-asan/fs/mailfs MAILFS_ASAN=1 /usr/bin/python3 -m pytest tests/mount
MAILFS_ASAN=1 scales the timeouts that are not part of the contract by 3 and
loosens the memory bound of the 10,000-message test. The daemon runs with
TZ=UTC and MAILFS_LOG=debug (set MAILFS_LOG to override); its stderr is in
tmp_path/mailfs-N.stderr and Dovecot's log in tmp_path/dovecot.log."""

import os
import shutil
import signal
import stat
import subprocess
import threading

import pytest

from mailfs_testlib import (ACCOUNT, ASAN, MAILFS_BIN, POLL, SLOW, Mount, TcpRecorder,
                            bad_output, dovecot as srvlib, fuse_abort, is_mounted, wait_until)

DEFAULT_TIME_LIMIT = 120


def pytest_configure(config):
    config.addinivalue_line("markers", "time_limit(seconds): watchdog limit of a mount test")


@pytest.fixture(scope="session")
def mailfs_bin():
    """The mailfs binary under test; fails (never skips) when it is missing."""
    if not os.access(MAILFS_BIN, os.X_OK):
        pytest.fail("no mailfs binary at %s: build it (meson setup build && ninja -C build) "
                    "or set MAILFS_BIN" % MAILFS_BIN, pytrace=False)
    return MAILFS_BIN


# --- servers ---------------------------------------------------------------------

@pytest.fixture
def dovecot_factory(tmp_path):
    """make(name="dovecot", **Dovecot kwargs) -> a started Dovecot. Its
    directory is made under /tmp (see dovecot.make_basedir) and linked as
    tmp_path/name; at teardown the server is stopped (a process left is an
    error), its log is copied to tmp_path/name.log and the directory removed."""
    servers = []

    def make(name="dovecot", **kw):
        base = srvlib.make_basedir()
        os.symlink(base, tmp_path / name)
        srv = srvlib.Dovecot(base, **kw)
        servers.append((name, srv))
        srv.start()
        return srv

    yield make
    errors = []
    for name, srv in servers:
        try:
            srv.stop()
        except Exception as e:  # noqa: BLE001 - report every server
            errors.append("%s: %s" % (srv.basedir, e))
        try:
            shutil.copy(srv.log_path, tmp_path / (name + ".log"))
        except OSError:
            pass
        shutil.rmtree(srv.basedir, ignore_errors=True)
    if errors:
        pytest.fail("dovecot did not stop cleanly: " + "; ".join(errors), pytrace=False)


@pytest.fixture
def dovecot(request, dovecot_factory):
    """A started Dovecot with user alice/secret. Parametrize indirectly with a
    dict of Dovecot kwargs, e.g. {"ssl": True} or
    {"hide_capabilities": ("CONDSTORE", "QRESYNC")}."""
    kw = getattr(request, "param", None) or {}
    return dovecot_factory(**kw)


@pytest.fixture
def recorder():
    """recorder(server) -> a TcpRecorder (mailfs_testlib) forwarding to the
    server's plain IMAP port, to see what mailfs sends; closed at teardown.
    Point an account at it with mailfs_env.configure(server, port=rec.port)."""
    made = []

    def make(server):
        rec = TcpRecorder(server.host, server.port)
        made.append(rec)
        return rec

    yield make
    for rec in made:
        rec.close()


@pytest.fixture
def faultproxy():
    """faultproxy(server, record=True) -> a FaultProxy (tests/tools/faultproxy.py)
    forwarding to the server's plain IMAP port, to count connections and
    bytes and to break them (drop, reset after N bytes, stall); closed at
    teardown. Point an account at it with mailfs_env.configure(server,
    port=proxy.port)."""
    import sys
    tools = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    from faultproxy import FaultProxy
    made = []

    def make(server, record=True):
        p = FaultProxy(server.host, server.port, record=record)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


# --- environment -------------------------------------------------------------------

class MailfsEnv:
    """A private HOME with XDG_DATA_HOME and XDG_CONFIG_HOME inside it, a
    config file written from a dict, password files (0600) outside HOME, an
    empty working directory and TMPDIR for the daemon."""

    def __init__(self, tmp_path):
        self.root = str(tmp_path)
        self.home = os.path.join(self.root, "home")
        self.data_home = os.path.join(self.home, ".local", "share")
        self.config_home = os.path.join(self.home, ".config")
        self.config_path = os.path.join(self.config_home, "mailfs", "config")
        self.secrets = os.path.join(self.root, "secrets")
        self.cwd = os.path.join(self.root, "cwd")
        self.tmpdir = os.path.join(self.root, "tmp")
        for d in (self.home, self.data_home, os.path.dirname(self.config_path),
                  self.cwd, self.tmpdir):
            os.makedirs(d, exist_ok=True)
        os.makedirs(self.secrets, mode=0o700, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
        env.update(HOME=self.home, XDG_DATA_HOME=self.data_home,
                   XDG_CONFIG_HOME=self.config_home, TZ="UTC", TMPDIR=self.tmpdir,
                   LC_ALL="C.UTF-8")
        env.setdefault("MAILFS_LOG", "debug")
        self.env = env

    def store(self, account=ACCOUNT):
        return os.path.join(self.data_home, "mailfs", account)

    def password_file(self, password, name="pw"):
        path = os.path.join(self.secrets, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        return path

    def account_for(self, server, tls="none", user="alice", password=None, poll=POLL,
                    cafile=True, port=None, **extra):
        """The config dict of an account on a Dovecot server.
        tls: "none" (imap:// plus tls = none), "starttls" (imap://, TLS
        required), "imaps" (imaps:// on the implicit TLS port). cafile: True
        for the server's CA (when it has one), False for none, or a path."""
        if password is None:
            password = server.users[user]
        pw = self.password_file(password, "pw-%s-%s" % (user, tls))
        if tls == "imaps":
            url = "imaps://%s:%d" % (server.host, port or server.imaps_port)
        else:
            url = "imap://%s:%d" % (server.host, port or server.port)
        acc = {"imap": url, "user": user, "password_command": "cat %s" % pw}
        if cafile is True and server.ca_file:
            acc["cafile"] = server.ca_file
        elif isinstance(cafile, str):
            acc["cafile"] = cafile
        if tls == "none":
            acc["tls"] = "none"
        acc["poll"] = str(poll)
        acc.update({k: str(v) for k, v in extra.items()})
        return acc

    def write_config(self, accounts=None, raw=None, path=None):
        """Write the config file from {account: {key: value}} (or raw text);
        return its path."""
        path = path or self.config_path
        if raw is None:
            lines = []
            for name, keys in accounts.items():
                lines.append("[account %s]" % name)
                lines += ["%s = %s" % kv for kv in keys.items()]
                lines.append("")
            raw = "\n".join(lines)
        with open(path, "w") as f:
            f.write(raw)
        return path

    def configure(self, server, account=ACCOUNT, **kw):
        """Write a config holding one account on server; return the path."""
        return self.write_config({account: self.account_for(server, **kw)})


@pytest.fixture
def mailfs_env(tmp_path):
    return MailfsEnv(tmp_path)


# --- the daemon ----------------------------------------------------------------------

class MountFactory:
    """mount(account=ACCOUNT, mnt=None, options=(), config=None, env=None,
    expect_rc=0) -> Mount: runs `mailfs --config CFG ACCOUNT MNT -f [-o ...]`
    and waits until MNT is a mount point (10 s). expect_failure(...) runs the
    same command and expects it to exit non-zero without mounting."""

    def __init__(self, binary, env, tmp_path):
        self.binary = binary
        self.mfenv = env
        self.tmp = str(tmp_path)
        self.mounts = []
        self.count = 0

    def _argv(self, account, mnt, options, config):
        argv = [self.binary, "--config", str(config or self.mfenv.config_path),
                str(account), str(mnt), "-f"]
        if options:
            argv += ["-o", ",".join(options)]
        return argv

    def _start(self, account, mnt, options, config, env):
        self.count += 1
        if mnt is None:
            mnt = os.path.join(self.tmp, "mnt")
        mnt = str(mnt)
        os.makedirs(mnt, exist_ok=True)
        assert not is_mounted(mnt), "%s is mounted already" % mnt
        errpath = os.path.join(self.tmp, "mailfs-%d.stderr" % self.count)
        e = dict(self.mfenv.env)
        e.update(env or {})
        with open(errpath, "wb") as err:
            proc = subprocess.Popen(self._argv(account, mnt, options, config),
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                    env=e, cwd=self.mfenv.cwd)
        return proc, mnt, errpath

    def __call__(self, account=ACCOUNT, mnt=None, options=(), config=None, env=None,
                 expect_rc=0, timeout=10):
        proc, mnt, errpath = self._start(account, mnt, options, config, env)
        m = Mount(proc, mnt, errpath, account, expect_rc)
        self.mounts.append(m)

        def ready():
            if proc.poll() is not None:
                raise pytest.fail.Exception(
                    "mailfs exited with %d before mounting %s:\n%s"
                    % (proc.returncode, mnt, m.stderr()))
            return is_mounted(mnt)

        try:
            wait_until(ready, timeout * SLOW, what="mailfs mounted %s" % mnt)
        except AssertionError as e:
            pytest.fail("%s\n--- mailfs stderr ---\n%s" % (e, m.stderr()), pytrace=False)
        return m

    def expect_failure(self, account=ACCOUNT, mnt=None, options=(), config=None, env=None,
                       timeout=10):
        """Run the mount command, expect a non-zero exit within timeout and no
        mount. Returns (exit status, stderr text)."""
        proc, mnt, errpath = self._start(account, mnt, options, config, env)
        m = Mount(proc, mnt, errpath, account, expect_rc=None)
        self.mounts.append(m)
        try:
            rc = proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            mounted = is_mounted(mnt)
            pytest.fail("mailfs did not exit within %d s (%s); stderr:\n%s"
                        % (timeout * SLOW, "it mounted" if mounted else "not mounted",
                           m.stderr()), pytrace=False)
        m.unmounted = True
        text = m.stderr()
        assert not is_mounted(mnt), "mailfs exited but left %s mounted" % mnt
        assert rc != 0, "mailfs exited 0 where it should have failed; stderr:\n" + text
        bad = bad_output(text)
        assert not bad, "crash or sanitizer report:\n" + text
        return rc, text

    def abort_all(self):
        for m in self.mounts:
            if not m.unmounted:
                fuse_abort(m.path)
                try:
                    m.proc.send_signal(signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def teardown(self):
        problems = []
        for m in self.mounts:
            if not m.unmounted:
                try:
                    rc = m.unmount()
                except AssertionError as e:
                    problems.append(str(e))
                    continue
                if m.expect_rc is not None and rc != m.expect_rc:
                    problems.append("mailfs exited with %r (expected %r)" % (rc, m.expect_rc))
            bad = bad_output(m.stderr())
            if bad:
                problems.append("crash or sanitizer report in %s:\n%s"
                                % (m.stderr_path, "\n".join(bad[:20])))
            if problems and m.stderr():
                problems.append("--- %s ---\n%s" % (m.stderr_path, m.stderr()[-20000:]))
        return problems


@pytest.fixture
def mount(request, mailfs_bin, mailfs_env, tmp_path):
    factory = MountFactory(mailfs_bin, mailfs_env, tmp_path)
    marker = request.node.get_closest_marker("time_limit")
    limit = (marker.args[0] if marker else DEFAULT_TIME_LIMIT) * SLOW
    fired = []

    def watchdog():
        fired.append(True)
        factory.abort_all()

    timer = threading.Timer(limit, watchdog)
    timer.daemon = True
    timer.start()
    try:
        yield factory
    finally:
        timer.cancel()
        problems = factory.teardown()
        if fired:
            problems.insert(0, "test ran over its time limit of %d s: mounts aborted" % limit)
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def run_mailfs(mailfs_bin, mailfs_env):
    """run_mailfs(*args, config=True, timeout=60, env=None) -> (rc, stdout,
    stderr) of `mailfs [--config CFG] ARGS...`; a crash report in the output
    fails the test."""

    def run(*args, config=True, timeout=60, env=None):
        argv = [mailfs_bin]
        if config is True:
            argv += ["--config", mailfs_env.config_path]
        elif config:
            argv += ["--config", str(config)]
        argv += [str(a) for a in args]
        e = dict(mailfs_env.env)
        e.update(env or {})
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout * SLOW, env=e, cwd=mailfs_env.cwd)
        except subprocess.TimeoutExpired as ex:
            pytest.fail("%s did not finish within %d s; stderr:\n%s"
                        % (" ".join(argv), timeout * SLOW,
                           (ex.stderr or b"").decode("utf-8", "replace")), pytrace=False)
        out = r.stdout.decode("utf-8", "replace")
        err = r.stderr.decode("utf-8", "replace")
        bad = bad_output(out + err)
        if bad:
            pytest.fail("crash or sanitizer report from %s:\n%s" % (" ".join(argv), err),
                        pytrace=False)
        return r.returncode, out, err

    return run


@pytest.fixture
def account(dovecot, mailfs_env):
    """The common case: alice on a plain Dovecot (tls = none), config written.
    Returns the server."""
    mailfs_env.configure(dovecot)
    return dovecot


def store_mode_ok(path):
    return stat.S_IMODE(os.stat(path).st_mode) == 0o700


__all__ = ["ASAN", "POLL", "SLOW", "store_mode_ok"]
