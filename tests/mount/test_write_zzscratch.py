import os, subprocess, time, errno
from mailfs_testlib import *
from mailfs_testlib import dovecot as srv

def test_scratch(account, mount, run_mailfs, tmp_path):
    c = account.client()
    populate_basic(c)
    m = mount()
    wait_until(lambda: len(os.listdir(m / "Inbox")) == 3, 30)
    msg = srv.make_message("Hello there", dt(2026,1,1,1,1), "line1\nline2\n").replace(b"\r\n", b"\n")
    p = tmp_path / "x.eml"
    p.write_bytes(msg)
    t0 = time.monotonic()
    subprocess.run(["cp", str(p), str(m / "Inbox/my file.eml")], check=True)
    print("cp took", time.monotonic() - t0)
    print(subprocess.run(["getfattr", "-d", str(m / "Inbox/my file.eml")], capture_output=True, text=True).stdout)
    t0 = time.monotonic()
    wait_until(lambda: srv.count(c, "INBOX") == 4, 30)
    print("on server after", time.monotonic() - t0)
    time.sleep(1)
    print(subprocess.run(["getfattr", "-d", str(m / "Inbox/my file.eml")], capture_output=True, text=True).stdout)
    print(open(m / "Inbox/my file.eml", "rb").read())
    print(os.listdir(m / "Inbox"))
    print(srv.fetch_all(c, "INBOX"))
    rc, out, err = run_mailfs("sync", m.path)
    print("sync", rc, out, err)
    print(os.listdir(m))
    print(subprocess.run(["getfattr", "-d", m.path], capture_output=True, text=True).stdout)
