"""A 2,000-event calendar (DESIGN section 8 asks the DAV initial sync to be
fast): loaded straight into the server's storage (bulk_put), then mounted;
every event must be present under its name with the server's bytes. The
times are printed, not asserted: the mount's initial sync with the build
under test (a sanitizer build is several times slower) and, when
MAILFS_RELEASE_BIN is set, a one-shot `mailfs sync ACCOUNT` of the release
build into a fresh store."""

import datetime
import os
import subprocess
import time

import pytest

from dav_env import dav, dav_server, event, files, sync  # noqa: F401
from mailfs_testlib import MAILFS_BIN, SLOW, wait_until, while_alive

N = 2000
RELEASE_BIN = os.environ.get("MAILFS_RELEASE_BIN")
T0 = datetime.datetime(2026, 1, 1, 8, 0)


def bulk_items():
    """({resource name: bytes}, {file name: resource name})."""
    items, names = {}, {}
    for i in range(N):
        start = T0 + datetime.timedelta(minutes=37 * i)
        uid = "bulk-%04d" % i
        summary = "Bulk %04d – Termin" % i
        items[uid + ".ics"] = event(uid, summary, start.strftime("%Y%m%dT%H%M%SZ"),
                                    "LOCATION:Raum %d\nDESCRIPTION:Item %d of the bulk test"
                                    % (i % 50, i))
        names["%s %s.ics" % (start.strftime("%Y-%m-%d %H.%M"), summary)] = uid + ".ics"
    return items, names


@pytest.mark.time_limit(300)
def test_two_thousand_events(dav, mount, run_mailfs, mailfs_env, capsys):
    items, names = bulk_items()
    dav.bulk_put(dav.cal, items)
    members = dav.members(dav.cal)
    assert len(members) == N, "the server lists %d items" % len(members)

    t = time.monotonic()
    m = mount()
    sync(run_mailfs, m, timeout=240)
    wait_until(while_alive(m, lambda: len(os.listdir(m / "Calendar")) >= N), 120 * SLOW,
               interval=0.2, what="%d files in Calendar/" % N)
    mounted = time.monotonic() - t
    got = files(m / "Calendar")
    assert sorted(got) == sorted(names), \
        "names: missing %s, unexpected %s" % (sorted(set(names) - set(got))[:5],
                                              sorted(set(got) - set(names))[:5])
    # the server's bytes, sampled (Xandikos re-serialises: compare with GET)
    c = dav.client()
    for fname in sorted(names)[::199]:
        st, _, body = c.get(dav.cal + names[fname])
        with open(m / "Calendar" / fname, "rb") as f:
            assert f.read() == body, fname
    t = time.monotonic()
    sync(run_mailfs, m)
    nochange = time.monotonic() - t
    m.unmount()

    release = None
    if RELEASE_BIN and os.access(RELEASE_BIN, os.X_OK):
        # a second account on the same server: a fresh store for a one-shot sync
        cfg = dict(dav.account_config())
        mailfs_env.write_config({"test": dav.account_config(), "rel": cfg})
        env = dict(mailfs_env.env, MAILFS_LOG="info")
        t = time.monotonic()
        r = subprocess.run([RELEASE_BIN, "--config", mailfs_env.config_path, "sync", "rel"],
                           capture_output=True, text=True, timeout=300, env=env,
                           cwd=mailfs_env.cwd)
        release = time.monotonic() - t
        assert r.returncode == 0, r.stderr
        t = time.monotonic()
        r = subprocess.run([RELEASE_BIN, "--config", mailfs_env.config_path, "sync", "rel"],
                           capture_output=True, text=True, timeout=300, env=env,
                           cwd=mailfs_env.cwd)
        release_nochange = time.monotonic() - t
        assert r.returncode == 0, r.stderr
        rel_store = os.path.join(mailfs_env.data_home, "mailfs", "rel")
        assert os.path.isdir(rel_store)
    with capsys.disabled():
        print("\n%s: %d events: mount + initial sync %.2f s, no-change `mailfs sync` %.2f s "
              "(%s)" % (dav.kind, N, mounted, nochange, os.path.basename(os.path.dirname(
                  os.path.dirname(MAILFS_BIN))) or MAILFS_BIN))
        if release is not None:
            print("%s: %d events: release build one-shot `mailfs sync` %.2f s, no change "
                  "%.2f s" % (dav.kind, N, release, release_nochange))
