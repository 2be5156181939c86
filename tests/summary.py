#!/usr/bin/python3
"""Counts the results of every test layer run by scripts/test and prints the
final line "N passed, N failed". Unit test programs speak TAP (one line per
test function); the valgrind run counts one test per program (clean or not);
pytest's JUnit XML gives the mount tests. A skipped test counts as failed:
nothing that CI can run is skipped."""
import json
import os
import re
import sys
import xml.etree.ElementTree as ET


def meson_tests(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return None


def main(out):
    passed = failed = 0
    notes = []
    asan = meson_tests(os.path.join(out, "unit-asan.json"))
    if asan is None:
        failed += 1
        notes.append("unit tests (ASan) did not run")
    else:
        for t in asan:
            ok = len(re.findall(r"^ok \d+", t.get("stdout", ""), re.M))
            bad = len(re.findall(r"^not ok \d+", t.get("stdout", ""), re.M))
            if t.get("result") != "OK" and bad == 0:
                bad = 1  # crashed or timed out outside a TAP line
                notes.append("unit %s: %s" % (t.get("name"), t.get("result")))
            passed += ok
            failed += bad
    vg = meson_tests(os.path.join(out, "unit-valgrind.json"))
    if vg is None:
        failed += 1
        notes.append("unit tests (valgrind) did not run")
    else:
        for t in vg:
            if t.get("result") == "OK":
                passed += 1
            else:
                failed += 1
                notes.append("valgrind %s: %s" % (t.get("name"), t.get("result")))
    try:
        root = ET.parse(os.path.join(out, "mount.xml")).getroot()
        for case in root.iter("testcase"):
            name = case.get("classname", "") + "::" + case.get("name", "")
            bad = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
            if bad:
                failed += 1
                notes.append("%s: %s" % (name, bad[0]))
            else:
                passed += 1
    except (OSError, ET.ParseError):
        failed += 1
        notes.append("mount tests did not run")
    for n in notes:
        print("FAILED", n)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
