#!/usr/bin/python3
"""Measures the two ways the store could keep message content: one file per
item beside the database, or blobs inside sqlite. Writes N messages of the
benchmark corpus's size mix, then reads them all back, each way.
Usage: content_store.py [N] [DIR]"""
import os
import random
import shutil
import sqlite3
import sys
import time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
base = sys.argv[2] if len(sys.argv) > 2 else "/tmp/mailfs-content-bench"
rng = random.Random(1)
sizes = []
for i in range(n):
    r = rng.random()
    sizes.append(rng.randint(2000, 8000) if r < 0.70 else
                 rng.randint(20000, 80000) if r < 0.95 else rng.randint(200000, 2000000))
blob = os.urandom(2_000_000)
shutil.rmtree(base, ignore_errors=True)
os.makedirs(base)


def files():
    d = os.path.join(base, "files")
    t = time.time()
    for i, s in enumerate(sizes):
        sub = os.path.join(d, "%02x" % (i & 0xff))
        if i < 256:
            os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, str(i)), "wb") as f:
            f.write(blob[:s])
    os.sync()
    w = time.time() - t
    t = time.time()
    total = 0
    for i in range(n):
        with open(os.path.join(d, "%02x" % (i & 0xff), str(i)), "rb") as f:
            total += len(f.read())
    return w, time.time() - t, total


def blobs():
    db = sqlite3.connect(os.path.join(base, "blobs.db"))
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE c (id INTEGER PRIMARY KEY, data BLOB)")
    t = time.time()
    for start in range(0, n, 500):
        with db:
            db.executemany("INSERT INTO c VALUES (?, ?)",
                           ((i, blob[:sizes[i]]) for i in range(start, min(n, start + 500))))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    os.sync()
    w = time.time() - t
    t = time.time()
    total = 0
    for i in range(n):
        total += len(db.execute("SELECT data FROM c WHERE id = ?", (i,)).fetchone()[0])
    return w, time.time() - t, total


print("%d messages, %.0f MB" % (n, sum(sizes) / 1e6))
for name, fn in (("files", files), ("sqlite blobs", blobs)):
    w, r, total = fn()
    print("%-13s write+sync %.2f s   read all %.2f s   (%d bytes)" % (name, w, r, total))
shutil.rmtree(base, ignore_errors=True)
