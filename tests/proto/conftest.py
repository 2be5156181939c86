"""Fixtures of the protocol tests: the mount tests' fixtures (mount,
run_mailfs, mailfs_env, mailfs_bin: loaded from tests/mount/conftest.py, not
copied) plus a scripted IMAP server (imapserver.py) per test.

    def test_x(server, mount):          # server first: it outlives the mount
        server.append("INBOX", msg)
        m = mount()

`server` is a started ImapServer with the account's config already written
(plain imap://, tls = none, poll = 1 s). Parametrize it indirectly with a
dict of ImapServer kwargs, e.g. {"caps": ("IDLE",)}. At teardown (after the
mount's) every connection and thread of the server must end, nothing inside
the server may have raised, mailfs must not have sent a single command that
changes the account (no test here changes anything through the mount, so
any STORE, EXPUNGE, COPY, MOVE, DELETE... would be a change nobody asked
for: DESIGN section 3), and the command log goes to tmp_path/imapserver.log.

Run:
    MAILFS_BIN=$PWD/build-asan/fs/mailfs MAILFS_ASAN=1 /usr/bin/python3 -m pytest -q tests/proto
"""

import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MOUNT_TESTS = os.path.join(os.path.dirname(HERE), "mount")
for _p in (HERE, MOUNT_TESTS):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# The mount tests' fixtures, from their own file (a second module object of
# the same source, so that both directories can run in one pytest session).
_spec = importlib.util.spec_from_file_location("mailfs_mount_conftest",
                                               os.path.join(MOUNT_TESTS, "conftest.py"))
_mount_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mount_conftest)
mailfs_bin = _mount_conftest.mailfs_bin
mailfs_env = _mount_conftest.mailfs_env
mount = _mount_conftest.mount
run_mailfs = _mount_conftest.run_mailfs

from imapserver import ImapServer  # noqa: E402


@pytest.fixture
def imap_server_factory(tmp_path):
    """make(**ImapServer kwargs) -> a started scripted server, stopped at
    teardown."""
    servers = []

    def make(**kw):
        srv = ImapServer(**kw).start()
        servers.append(srv)
        return srv

    yield make
    problems = []
    for i, srv in enumerate(servers):
        left = srv.stop()
        with open(tmp_path / ("imapserver-%d.log" % i), "w") as f:
            f.write(srv.transcript() + "\n")
        if left:
            problems.append("server threads still running: %s" % ", ".join(left))
        if srv.writes():
            # nothing was changed through the mount: a STORE, EXPUNGE, COPY,
            # MOVE, DELETE... would be a change nobody asked for
            problems.append("mailfs sent commands that change the account: %r" % srv.writes())
        if srv.errors:
            problems.append("the scripted server failed:\n" + "\n".join(srv.errors))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def server(request, imap_server_factory, mailfs_env):
    """A started scripted server holding an empty INBOX, with the account's
    config written for it."""
    kw = getattr(request, "param", None) or {}
    srv = imap_server_factory(**kw)
    mailfs_env.configure(srv)
    return srv
