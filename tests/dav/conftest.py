"""Fixtures of the DAV protocol-layer tests: one real Radicale and one real
Xandikos for the whole session (each test makes its own collections, so
tests do not see each other's items), the `dav` fixture that runs a test
against both, and scripted servers for edge cases.

Run (Debian's radicale and xandikos installed, mailfs built):
    /usr/bin/python3 -m pytest -q tests/dav
DAV_PROBE=/path/to/dav_probe picks the binary (default: build-asan's, else
build's); sanitizer reports in its output fail the test."""

import os
import shutil
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from davlib import PROBE, Target, radicale_srv, xandikos_srv  # noqa: E402
from fakedav import FakeDav  # noqa: E402


@pytest.fixture(scope="session")
def probe_bin():
    """The dav_probe binary; fails (never skips) when it is missing."""
    if not os.access(PROBE, os.X_OK):
        pytest.fail("no dav_probe at %s: build it (bash scripts/build) or set DAV_PROBE"
                    % PROBE, pytrace=False)
    return PROBE


def _server(kind, **kw):
    base = radicale_srv.make_basedir("mailfs-dav-%s-" % kind)
    srv = radicale_srv.Radicale(base, **kw) if kind == "radicale" else xandikos_srv.Xandikos(base)
    try:
        srv.start()
    except Exception:
        shutil.rmtree(base, ignore_errors=True)
        raise
    return base, srv


@pytest.fixture(scope="session")
def radicale_target(probe_bin):
    base, srv = _server("radicale")
    yield Target("radicale", srv, base)
    srv.stop()
    assert not srv.running()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def xandikos_target(probe_bin):
    base, srv = _server("xandikos")
    yield Target("xandikos", srv, base)
    srv.stop()
    assert not srv.running()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["radicale", "xandikos"])
def dav(request):
    """A Target for each real server in turn."""
    return request.getfixturevalue(request.param + "_target")


@pytest.fixture
def https_radicale(probe_bin, tmp_path):
    """A Radicale serving https with a certificate from its own CA."""
    base, srv = _server("radicale", ssl=True)
    yield Target("radicale", srv, base)
    srv.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fake(probe_bin):
    f = FakeDav().start()
    yield f
    f.stop()
