#!/usr/bin/python3
"""Delivers one message to the demo's INBOX, as another mail client would.
Usage: demo-send.py SERVER_JSON SUBJECT"""
import datetime
import imaplib
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "servers"))
import dovecot  # noqa: E402

info = json.load(open(sys.argv[1]))
cli = imaplib.IMAP4(info["host"], info["port"])
cli.login("alice", info["users"]["alice"])
msg = dovecot.make_message(sys.argv[2], datetime.datetime.now(datetime.timezone.utc),
                           "Sent with scripts/demo-send.py\n")
dovecot.append(cli, "INBOX", msg)
cli.logout()
