#!/usr/bin/python3
"""Sample mail for the demo: a few folders (nested, non-ASCII), messages with
encoded subjects, flags, a duplicate subject. Usage: demo-data.py SERVER_JSON."""
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "servers"))
import dovecot  # noqa: E402

info = json.load(open(sys.argv[1]))
import imaplib  # noqa: E402

cli = imaplib.IMAP4(info["host"], info["port"])
cli.login("alice", info["users"]["alice"])
for folder in ("Sent", "Archive/2025", "Lists/dev", "Entwürfe"):
    cli.create(dovecot.mailbox_arg(folder))

day = datetime.datetime(2026, 11, 24, 9, 0, tzinfo=datetime.timezone.utc)
samples = [
    ("INBOX", "Quarterly report", "Numbers are up.\nSee you Monday.\n", ("\\Seen",)),
    ("INBOX", "Lunch on Friday?", "Pizza or sushi?\n", ()),
    ("INBOX", "Réunion de l'équipe", "L'ordre du jour est en pièce jointe.\n", ("\\Flagged",)),
    ("INBOX", "会議の議事録", "議事録を送ります。\n", ()),
    ("INBOX", "Quarterly report", "Corrected numbers attached.\n", ()),
    ("Sent", "Re: Lunch on Friday?", "Sushi.\n", ("\\Seen",)),
    ("Archive/2025", "Invoice 2025-117", "Please find the invoice below.\n", ("\\Seen",)),
    ("Lists/dev", "[dev] mailfs 0.1 released", "Mount your mail.\n", ()),
    ("Entwürfe", "Entwurf: Urlaub", "Noch nicht fertig.\n", ("\\Draft",)),
]
for i, (folder, subject, body, flags) in enumerate(samples):
    msg = dovecot.make_message(subject, day + datetime.timedelta(minutes=37 * i), body)
    dovecot.append(cli, folder, msg, flags=flags)
cli.logout()
print("loaded %d sample messages" % len(samples))
