"""Faults on the way to a CalDAV/CardDAV server (issue 6, DESIGN section 5):
a fault-injecting proxy (tests/tools/faultproxy.py) between mailfs and
Radicale or Xandikos resets connections in the middle of PUT uploads (changes
made offline, replayed when going online) and in the middle of the download
of a collection. Each time: every item reaches its place exactly once (UIDs
counted on the server with an independent client and in the mount), the
mount answers at once, and everything converges."""

import collections
import os
import sys
import time
import urllib.parse

import pytest

from dav_env import (dav, dav_server, event, files, mailfs_cmd, prop, read,  # noqa: F401
                     state, sync, vcard, wait_for, write)
from mailfs_testlib import SLOW, timed, xattr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tools"))
from faultproxy import FaultProxy  # noqa: E402

CONVERGE = 60  # s (scaled): everything in place after the faults


@pytest.fixture
def proxied(dav):
    """The account's config pointed at a FaultProxy in front of its server."""
    u = urllib.parse.urlsplit(dav.url)
    p = FaultProxy(u.hostname, u.port)
    url = "%s://127.0.0.1:%d%s" % (u.scheme, p.port, u.path or "/")
    dav.configure(caldav=url, carddav=url)
    yield p
    p.close()


def uids_on_server(dav, collection):
    """Every UID of a collection's items, repeats kept."""
    out = []
    for body in dav.items(collection).values():
        out += prop(body, "UID")[:1]
    return out


def uids_in_mount(path):
    out = []
    for n in files(path):
        out += prop(read(path / n), "UID")[:1]
    return out


def no_repeats(uids, where):
    twice = [k for k, v in collections.Counter(uids).items() if v > 1]
    assert not twice, "twice in %s: %r" % (where, twice)


def test_reset_mid_put(dav, proxied, mount, run_mailfs):
    """50 items made offline; going online, the connection is cut three times
    in the middle of the answer to an upload."""
    m = dav.mount(mount, run_mailfs)
    mailfs_cmd(run_mailfs, "offline", m.path)
    ev = ["fault-ev-%02d" % i for i in range(30)]
    ct = ["fault-ct-%02d" % i for i in range(20)]
    for i, u in enumerate(ev):
        write(m / "Calendar" / ("e%02d.ics" % i),
              event(u, "Fault %02d" % i, "202601%02dT100000Z" % (1 + i % 28),
                    "DESCRIPTION:" + "x" * 200))
    for i, u in enumerate(ct):
        write(m / "Contacts" / ("c%02d.vcf" % i), vcard(u, "Fault Person %02d" % i))
    assert xattr(m / "Calendar", "user.sync.pending") == "30"
    # cut three answers to a PUT after their first bytes: the server took the
    # item, mailfs does not know (Radicale answers each request on its own
    # connection, so a cut inside what mailfs sends never comes)
    proxied.reset_after(down=[5, 12, 1], after=[rb"PUT "] * 3)
    mailfs_cmd(run_mailfs, "online", m.path)
    # the mount answers at once while the uploads are cut
    for _ in range(5):
        took, _ = timed(os.listdir, m / "Calendar")
        assert took < 1.0 * SLOW, "ls took %.2f s during a fault" % took
        time.sleep(0.1)
    wait_for(m, lambda: xattr(m / "Calendar", "user.sync.pending") == "0" and
             xattr(m / "Contacts", "user.sync.pending") == "0", "nothing pending",
             CONVERGE * SLOW)
    sync(run_mailfs, m)
    sync(run_mailfs, m)
    assert proxied.stats()["resets"] >= 1, "no connection was cut: %r" % proxied.stats()
    on_cal, on_book = uids_on_server(dav, dav.cal), uids_on_server(dav, dav.book)
    no_repeats(on_cal, "the calendar on the server")
    no_repeats(on_book, "the address book on the server")
    assert sorted(on_cal) == sorted(ev) and sorted(on_book) == sorted(ct)
    here_cal, here_book = uids_in_mount(m / "Calendar"), uids_in_mount(m / "Contacts")
    no_repeats(here_cal, "Calendar/")
    no_repeats(here_book, "Contacts/")
    assert sorted(here_cal) == sorted(ev) and sorted(here_book) == sorted(ct)
    for d in ("Calendar", "Contacts"):
        bad = {n: state(m / d / n) for n in files(m / d) if state(m / d / n) != "synced"}
        assert not bad, bad
    assert files(m / "Conflicts") == []


def test_reset_mid_download(dav, proxied, mount, run_mailfs):
    """300 events arrive on the server; their download is cut twice in the
    middle of the answer; the mount converges to every event once."""
    m = dav.mount(mount, run_mailfs)
    items = {}
    for i in range(300):
        u = "dl-%03d" % i
        items[u + ".ics"] = event(u, "Download %03d" % i, "202602%02dT0900%02dZ" % (
            1 + i % 28, i % 60), "DESCRIPTION:" + "y" * 300)
    dav.bulk_put(dav.cal, items)
    # cut the answers to two downloads (calendar-query, multiget) midway
    proxied.reset_after(down=[6000, 3000], after=[rb"REPORT "] * 2)
    run_mailfs("sync", m.path)  # cut: it may fail; the mount goes on by itself
    wait_for(m, lambda: len(files(m / "Calendar")) == 300, "300 events in Calendar/",
             CONVERGE * SLOW)
    sync(run_mailfs, m)
    assert proxied.stats()["resets"] >= 1, "no connection was cut: %r" % proxied.stats()
    here = uids_in_mount(m / "Calendar")
    no_repeats(here, "Calendar/")
    assert sorted(here) == sorted(k[:-4] for k in items)
    assert sorted(uids_on_server(dav, dav.cal)) == sorted(here)
