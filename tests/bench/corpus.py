#!/usr/bin/python3
"""Deterministic mail corpus for the mailfs benchmark (DESIGN section 8).

10,000 messages per unit of scale (--scale 10 gives 100,000) in 7 folders, about
0.92 GB per unit: ~70% 2-8 KB text/plain, ~25% 20-80 KB multipart/alternative
(text + html), ~5% multipart/mixed with one 0.2-2 MB base64 attachment. Headers
carry RFC 2047 Subjects and From names in several languages; line ends are CRLF;
some messages are seen, flagged or answered. Message i depends only on (seed, i),
so any subset can be rebuilt (the write floor and later "new mail" scenarios do).

load() writes the messages straight into the Maildir of a running Dovecot
(tests/servers/dovecot.py) with proper maildir file names, lets Dovecot index
them, and checks the count and flags per folder through imaplib.

    /usr/bin/python3 tests/bench/corpus.py --stats [--scale N]   # sizes only
    /usr/bin/python3 tests/bench/corpus.py --maildir DIR          # plain Maildir
"""

import argparse
import base64
import binascii
import datetime
import email.header
import email.utils
import os
import random
import re
import sys
import time
import unicodedata

SEED = 20250101
MESSAGES_PER_SCALE = 10_000
ME = ("Alice Example", "alice@example.org")

# (IMAP name, share of messages, first date, last date), dates as (y, m, d).
FOLDERS = [
    ("INBOX", 0.30, (2025, 10, 1), (2026, 1, 31)),
    ("Sent", 0.10, (2024, 1, 1), (2026, 1, 31)),
    ("Archive/2024", 0.20, (2024, 1, 1), (2024, 12, 31)),
    ("Archive/2025", 0.15, (2025, 1, 1), (2025, 9, 30)),
    ("Lists/dev", 0.12, (2024, 6, 1), (2026, 1, 31)),
    ("Lists/announce", 0.05, (2023, 1, 1), (2026, 1, 31)),
    ("Projects/mailfs", 0.08, (2025, 6, 1), (2026, 1, 31)),
]
FOLDER_NAMES = [f[0] for f in FOLDERS]

# Size classes: (share, kind, low, high). Text sizes are whole-message bytes; the
# attachment range is the decoded attachment (base64 adds 4/3 plus line ends).
# The attachment range is tuned so that one unit of scale lands near 0.92 GB.
KINDS = [
    (0.70, "plain", 2_000, 8_000),
    (0.25, "alternative", 20_000, 80_000),
    (0.05, "attachment", 200_000, 2_000_000),
]

# --- text material ---------------------------------------------------------

SENTENCES = {
    "en": [
        "I had a look at the numbers you sent over and they mostly line up with ours.",
        "Can we move the review to Thursday afternoon?",
        "The build on the release branch has been failing since the last merge.",
        "Please find the updated figures below; the totals changed slightly.",
        "Thanks for the quick turnaround on this, it really helped the team.",
        "We still need a decision on the storage layout before the end of the week.",
        "The customer asked whether the export can run every night instead of weekly.",
        "I think the simplest fix is to retry the request with a longer timeout.",
        "Let me know if anything in the draft is unclear or needs more detail.",
        "The meeting notes are attached to the ticket together with the action items.",
        "Our benchmark shows the new parser is about three times faster on large inputs.",
        "Could you double-check the permissions on the shared folder?",
        "The vendor confirmed the shipment will arrive on Monday morning.",
        "I will be out of the office next week with limited access to email.",
        "As discussed, we will keep the old endpoint running until the migration is done.",
        "The logs show a spike in connection resets around midnight.",
        "Here is a short summary of what changed since the previous version.",
        "We should document the failure modes before we ship this to users.",
        "The invoice for the third quarter is overdue by two weeks.",
        "Happy to jump on a call if that is easier than going back and forth here.",
        "Regarding your question about the cache: entries expire after one hour.",
        "The integration tests pass locally but time out on the CI machines.",
        "Attached is the proposal we talked about, with the budget in the appendix.",
        "Nothing urgent, just wanted to make sure this did not fall through the cracks.",
    ],
    "de": [
        "Vielen Dank für die schnelle Rückmeldung zu unserem Angebot.",
        "Können wir den Termin auf nächsten Dienstag verschieben?",
        "Die Änderungen am Entwurf habe ich grün markiert.",
        "Bitte prüfen Sie die Rechnung und geben Sie mir kurz Bescheid.",
        "Die Übersicht über die Größenänderungen liegt im gemeinsamen Ordner.",
        "Wir müssen noch klären, wer die Schlüsselübergabe übernimmt.",
        "Der Server wird am Wochenende für Wartungsarbeiten heruntergefahren.",
        "Mit freundlichen Grüßen aus dem Büro in München.",
    ],
    "fr": [
        "Merci beaucoup pour votre réponse rapide et détaillée.",
        "Pourriez-vous m'envoyer le document révisé avant vendredi ?",
        "La réunion de l'équipe est déplacée à jeudi prochain à 14 h.",
        "Je reste à votre disposition pour toute question complémentaire.",
        "Les résultats de l'étude préliminaire sont très encourageants.",
        "Nous avons reçu la facture, mais le montant ne correspond pas au devis.",
        "Bien cordialement, et à très bientôt à Besançon.",
    ],
    "es": [
        "Muchas gracias por la información, la revisaré esta tarde.",
        "¿Podemos reunirnos el miércoles para hablar del presupuesto?",
        "El envío salió ayer desde el almacén de Málaga.",
        "Te adjunto la versión corregida del informe anual.",
        "La próxima actualización incluirá las mejoras que pediste.",
        "Un saludo cordial desde la oficina de Córdoba.",
    ],
    "pl": [
        "Dziękuję za szybką odpowiedź w tej sprawie.",
        "Czy możemy przełożyć spotkanie na przyszły poniedziałek?",
        "Załączam poprawioną wersję umowy do akceptacji.",
        "Proszę o potwierdzenie otrzymania przesyłki.",
        "Pozdrawiam serdecznie z Łodzi.",
    ],
    "ru": [
        "Спасибо за быстрый ответ, всё получили.",
        "Можно ли перенести встречу на следующую неделю?",
        "Во вложении исправленная версия отчёта за квартал.",
        "Сервер будет недоступен в субботу с десяти до двенадцати.",
        "Пожалуйста, проверьте цифры в таблице ещё раз.",
        "С уважением, отдел разработки.",
    ],
    "el": [
        "Ευχαριστώ πολύ για την άμεση απάντηση.",
        "Μπορούμε να μεταφέρουμε τη συνάντηση για την Πέμπτη;",
        "Σας επισυνάπτω την ενημερωμένη έκδοση του εγγράφου.",
        "Με εκτίμηση, η ομάδα υποστήριξης.",
    ],
    "ja": [
        "いつもお世話になっております。",
        "先日の会議の議事録をお送りいたします。",
        "来週の打ち合わせの日程について確認させてください。",
        "資料の修正版を添付しましたので、ご確認をお願いいたします。",
        "サーバーのメンテナンスは土曜日の午前中に予定しています。",
        "引き続きよろしくお願いいたします。",
    ],
    "zh": [
        "感谢您的及时回复。",
        "附件是本季度的最新报告，请查收。",
        "我们能否把会议改到下周三下午？",
        "服务器将于周六凌晨进行维护。",
        "如有任何问题，请随时与我联系。",
        "祝好，项目组。",
    ],
}
# Body transfer encoding per language, as real mailers tend to choose.
LANG_CTE = {"en": "7bit", "de": "quoted-printable", "fr": "quoted-printable",
            "es": "quoted-printable", "pl": "quoted-printable", "ru": "8bit",
            "el": "8bit", "ja": "base64", "zh": "base64"}
LANG_WEIGHTS = [("en", 0.72), ("de", 0.07), ("fr", 0.05), ("es", 0.04), ("pl", 0.02),
                ("ru", 0.04), ("el", 0.01), ("ja", 0.03), ("zh", 0.02)]

SUBJECTS = {
    "en": ["Quarterly report", "Re: build failures on the release branch",
           "Meeting notes {n}", "Invoice #{n}", "Question about the export job",
           "Fwd: shipment schedule", "Draft proposal v{n}", "Lunch on Friday?",
           "Re: Re: storage layout decision", "Your order {n} has shipped"],
    "de": ["Angebot für die Büroräume", "Rückfrage zur Rechnung {n}",
           "Terminänderung: Besprechung am Dienstag", "Grüße aus München",
           "Übergabe der Schlüssel"],
    "fr": ["Réunion d'équipe déplacée", "Facture n° {n} — écart de montant",
           "Résultats de l'étude préliminaire", "Votre commande est expédiée"],
    "es": ["Presupuesto para el próximo año", "Envío desde Málaga",
           "Actualización del informe anual nº {n}"],
    "pl": ["Umowa do podpisu — poprawki", "Spotkanie w przyszły poniedziałek"],
    "ru": ["Отчёт за квартал", "Перенос встречи", "Счёт № {n}"],
    "el": ["Ενημέρωση εγγράφου", "Συνάντηση την Πέμπτη"],
    "ja": ["会議の議事録", "資料の修正版について", "サーバーメンテナンスのお知らせ"],
    "zh": ["季度报告", "会议时间调整", "服务器维护通知"],
}
NAMES = {
    "en": ["Bob Smith", "Carol Jones", "Dave O'Brien", "Erin Walker", "Frank Miller"],
    "de": ["Jürgen Müller", "Gisela Größer", "Stefan Weiß", "Anja Schäfer"],
    "fr": ["François Dupont", "Hélène Lefèvre", "Jérôme Gaëtan"],
    "es": ["José García", "María Peña", "Íñigo Muñoz"],
    "pl": ["Łukasz Wiśniewski", "Małgorzata Żak"],
    "ru": ["Дмитрий Иванов", "Анна Смирнова", "Сергей Кузнецов"],
    "el": ["Γιώργος Παπαδόπουλος", "Ελένη Νικολάου"],
    "ja": ["山田太郎", "佐藤花子", "鈴木一郎"],
    "zh": ["王芳", "李伟", "张敏"],
}
DOMAINS = ["example.com", "example.net", "mail.example.de", "corp.example.fr",
           "example.co.jp", "lists.example.org", "shop.example.es", "example.ru"]
LISTS = {"Lists/dev": ("dev", "dev.lists.example.org"),
         "Lists/announce": ("announce", "announce.lists.example.org")}
MAILERS = ["Mozilla Thunderbird 115.6.0", "Microsoft Outlook 16.0", "Mutt/2.2.9",
           "Apple Mail (2.3774)", "aerc 0.16.0", "Roundcube Webmail/1.6.5"]
ATTACHMENTS = [("application/pdf", "report-{n}.pdf"), ("image/jpeg", "IMG_{n}.jpg"),
               ("application/zip", "logs-{n}.zip"),
               ("application/vnd.openxmlformats-officedocument.presentationml.presentation",
                "Präsentation {n}.pptx"),
               ("application/pdf", "Счёт {n}.pdf"), ("image/png", "スクリーンショット {n}.png")]
TIMEZONES = [0, 60, 60, 60, 120, -300, -480, 540, 330]  # minutes east of UTC

HTML_HEAD = ('<!DOCTYPE html>\n<html><head><meta charset="utf-8">\n<style type="text/css">\n'
             'body { font-family: Arial, Helvetica, sans-serif; font-size: 14px; color: #222222; }\n'
             '.content { max-width: 640px; margin: 0 auto; padding: 16px; }\n'
             'p { margin: 0 0 12px 0; line-height: 1.4; }\n'
             'a { color: #1a73e8; text-decoration: none; }\n'
             '</style></head>\n<body><div class="content">\n'
             '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
             'border="0"><tr><td>\n')
HTML_TAIL = ('</td></tr></table>\n<p style="font-size:11px;color:#888888">You received '
             'this message because you are subscribed. <a href="https://example.org/u">'
             'Unsubscribe</a></p>\n</div></body></html>\n')


def _wrap(text, lang):
    """Wrap one paragraph: 72 columns, or 36 characters for CJK text."""
    if lang in ("ja", "zh"):
        return [text[k:k + 36] for k in range(0, len(text), 36)]
    lines, cur = [], ""
    for word in text.split(" "):
        if cur and len(cur) + 1 + len(word) > 72:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    lines.append(cur)
    return lines


def _qp(data):
    """Quoted-printable with CRLF line ends (soft breaks included)."""
    return binascii.b2a_qp(data).replace(b"\n", b"\r\n")


class _Material:
    """Paragraph pools and a random byte pool, built once per seed."""

    def __init__(self, seed):
        rng = random.Random(seed)
        self.text = {}   # lang -> list of encoded text/plain paragraphs (CRLF)
        self.raw = {}    # lang -> list of utf-8 paragraphs (for base64 bodies)
        self.html = {}   # lang -> list of QP-encoded html paragraphs
        for lang, sents in SENTENCES.items():
            enc, raw, html = [], [], []
            sep = "" if lang in ("ja", "zh") else " "
            for _ in range(200):
                para = sep.join(rng.choice(sents) for _ in range(rng.randint(2, 7)))
                body = ("\r\n".join(_wrap(para, lang)) + "\r\n\r\n").encode()
                raw.append(body)
                cte = LANG_CTE[lang]
                enc.append(_qp(body.replace(b"\r\n", b"\n")) if cte == "quoted-printable"
                           else body)
                h = ('<p style="margin:0 0 12px 0;font-family:Arial,sans-serif;'
                     f'font-size:14px;color:#222222">{para}</p>\n')
                html.append(_qp(h.encode()))
            self.text[lang], self.raw[lang], self.html[lang] = enc, raw, html
        self.html_head = _qp(HTML_HEAD.encode())
        self.html_tail = _qp(HTML_TAIL.encode())
        # Attachments: slices of one base64-encoded random pool (57 bytes per
        # 76-character line), doubled so a slice may wrap around.
        pool = rng.randbytes(57 * 80_000)  # ~4.6 MB decoded
        lines = base64.encodebytes(pool).replace(b"\n", b"\r\n")
        assert len(lines) == 78 * 80_000
        self.b64_lines = 80_000
        self.b64 = lines + lines


_MATERIAL = {}


def _material(seed):
    if seed not in _MATERIAL:
        _MATERIAL[seed] = _Material(seed)
    return _MATERIAL[seed]


# --- messages ----------------------------------------------------------------

class Message:
    """One generated message: where it goes and its bytes."""
    __slots__ = ("index", "folder", "kind", "flags", "time", "data")

    def __init__(self, index, folder, kind, flags, when, data):
        self.index = index      # position in the corpus, 0-based
        self.folder = folder    # IMAP folder name ('/' separated)
        self.kind = kind        # "plain", "alternative" or "attachment"
        self.flags = flags      # maildir flag letters, sorted ("FRS")
        self.time = when        # delivery time, seconds since the epoch
        self.data = data        # the message, CRLF line ends

    def maildir_name(self):
        """time.Pn.host,S=size,W=vsize:2,FLAGS (W equals S: the file is CRLF)."""
        n = len(self.data)
        return f"{self.time}.P{self.index}.mailfs-bench,S={n},W={n}:2,{self.flags}"


def _pick(rng, weighted):
    x = rng.random()
    for item, w in weighted:
        if x < w:
            return item
        x -= w
    return weighted[-1][0]


def _ts(ymd):
    return int(datetime.datetime(*ymd, tzinfo=datetime.timezone.utc).timestamp())


def _kind_slots(seed, block):
    """Size classes of the 100 messages of one block: exact shares, shuffled, each
    as (class, stratum, strata) so that sizes are stratified within the class and
    the corpus total hardly depends on the seed."""
    key = (seed, block)
    if key not in _SLOTS:
        slots = []
        for k, (share, *_rest) in enumerate(KINDS):
            n = round(share * 100)
            slots += [(k, j, n) for j in range(n)]
        random.Random(seed * 31 + block).shuffle(slots)
        _SLOTS.clear()
        _SLOTS[key] = slots
    return _SLOTS[key]


_SLOTS = {}


def message_id(seed, index):
    """The Message-ID of message `index`: a pure function, so replies can cite it."""
    rng = random.Random(seed * 7_919 + index)
    return f"<{rng.getrandbits(64):016x}.{index}@{rng.choice(DOMAINS)}>"


def _header(name, value):
    """One header, RFC 2047-encoded when not ASCII, folded with CRLF."""
    try:
        value.encode("ascii")
        h = email.header.Header(value, "us-ascii", header_name=name)
    except UnicodeEncodeError:
        # Latin-1 text sometimes as ISO-8859-1 (Q), the rest UTF-8 (shortest of Q/B).
        try:
            value.encode("latin-1")
            cs = "iso-8859-1" if len(value) % 2 else "utf-8"
        except UnicodeEncodeError:
            cs = "utf-8"
        h = email.header.Header(value, cs, header_name=name)
    return f"{name}: {h.encode(linesep=chr(13) + chr(10))}\r\n"


def _address(display, addr):
    try:
        display.encode("ascii")
        if re.search(r"[^\w .-]", display):
            display = '"' + display.replace('"', "") + '"'
        return f"{display} <{addr}>"
    except UnicodeEncodeError:
        return f"{email.header.Header(display, 'utf-8').encode()} <{addr}>"


def _ascii_local(name, rng):
    plain = unicodedata.normalize("NFKD", name.lower()).replace("ł", "l")
    base = re.sub(r"[^a-z]", "", plain.encode("ascii", "ignore").decode())
    return (base or "user") + str(rng.randint(1, 99))


def _body(rng, pool, target):
    """Paragraphs from pool until at least `target` bytes."""
    out, n = [], 0
    while n < target:
        p = rng.choice(pool)
        out.append(p)
        n += len(p)
    return b"".join(out)


def _text_part(rng, mat, lang, target):
    """(Content-Type/CTE headers, encoded body) of a text/plain part."""
    cte = LANG_CTE[lang]
    charset = "us-ascii" if lang == "en" else "utf-8"
    if cte == "base64":
        raw = _body(rng, mat.raw[lang], target * 3 // 4)
        body = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    else:
        body = _body(rng, mat.text[lang], target)
    flowed = "; format=flowed" if rng.random() < 0.3 else ""
    head = (f"Content-Type: text/plain; charset={charset}{flowed}\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n")
    return head, body


def _html_part(rng, mat, lang, target):
    body = mat.html_head + _body(rng, mat.html[lang], target) + mat.html_tail
    head = ("Content-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n")
    return head, body


def _attachment_part(rng, mat, n_decoded, index):
    ctype, fname = rng.choice(ATTACHMENTS)
    fname = fname.format(n=index)
    nlines = max(1, n_decoded // 57)
    start = rng.randrange(mat.b64_lines)
    body = mat.b64[start * 78:(start + nlines) * 78]
    try:
        fname.encode("ascii")
        disp = f'attachment; filename="{fname}"'
        name = f'; name="{fname}"'
    except UnicodeEncodeError:
        # RFC 2231 in the disposition, RFC 2047 in name= (what Outlook sends).
        from urllib.parse import quote
        disp = f"attachment;\r\n filename*=utf-8''{quote(fname)}"
        name = f';\r\n name="{email.header.Header(fname, "utf-8").encode()}"'
    head = (f"Content-Type: {ctype}{name}\r\n"
            f"Content-Disposition: {disp}\r\n"
            "Content-Transfer-Encoding: base64\r\n")
    return head, body


def _multipart(subtype, boundary, parts):
    out = [f"Content-Type: multipart/{subtype};\r\n boundary=\"{boundary}\"\r\n\r\n"
           "This is a multi-part message in MIME format.\r\n".encode()]
    for head, body in parts:
        out.append(f"\r\n--{boundary}\r\n{head}\r\n".encode())
        out.append(body)
    out.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(out)


def make_message(index, seed=SEED, folder=None):
    """Build message `index` (deterministic in seed and index).

    `folder` overrides the folder drawn for it (for scenarios that deliver
    new mail to a chosen folder)."""
    mat = _material(seed)
    rng = random.Random(seed * 1_000_003 + index)
    x = rng.random()
    for name, share, first, last in FOLDERS:
        if x < share or name == FOLDERS[-1][0]:
            break
        x -= share
    if folder is not None:
        name, share, first, last = next(f for f in FOLDERS if f[0] == folder)
    folder = name
    when = rng.randrange(_ts(first), _ts(last) + 86_400)
    tz = datetime.timezone(datetime.timedelta(minutes=rng.choice(TIMEZONES)))
    date = email.utils.format_datetime(datetime.datetime.fromtimestamp(when - 7, tz))

    k, stratum, strata = _kind_slots(seed, index // 100)[index % 100]
    share, kind, lo, hi = KINDS[k]
    size = lo + int((hi - lo) * (stratum + rng.random()) / strata)
    lang = _pick(rng, LANG_WEIGHTS)
    peer_lang = lang if rng.random() < 0.8 else "en"
    peer = rng.choice(NAMES[peer_lang])
    peer_addr = f"{_ascii_local(peer, rng)}@{rng.choice(DOMAINS)}"
    subject = rng.choice(SUBJECTS[lang]).format(n=rng.randint(100, 99999))

    h = []
    sent = folder == "Sent"
    if not sent:
        relay = rng.randint(1, 254)
        h.append(f"Return-Path: <{peer_addr}>\r\n")
        h.append(f"Delivered-To: {ME[1]}\r\n")
        h.append(f"Received: from mx{relay % 4}.example.net (mx{relay % 4}.example.net "
                 f"[198.51.100.{relay}])\r\n\tby mail.example.org (Postfix) with ESMTPS id "
                 f"{rng.getrandbits(40):010X}\r\n\tfor <{ME[1]}>; {date}\r\n")
        h.append(f"Received: by mail-out.example.net with SMTP id {rng.getrandbits(64):x};"
                 f"\r\n\t{date}\r\n")
        if rng.random() < 0.6:
            sig = base64.b64encode(rng.randbytes(256)).decode()
            bh = base64.b64encode(rng.randbytes(32)).decode()
            h.append(f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n\t"
                     f"d=example.net; s=2024; t={when - 9};\r\n\th=from:to:subject:date:"
                     f"message-id:mime-version;\r\n\tbh={bh};\r\n\tb="
                     + "\r\n\t ".join(sig[k:k + 64] for k in range(0, len(sig), 64))
                     + "\r\n")
    h.append(f"Message-ID: {message_id(seed, index)}\r\n")
    h.append(f"Date: {date}\r\n")
    me = _address(*ME)
    them = _address(peer, peer_addr)
    if folder in LISTS:
        lname, lid = LISTS[folder]
        h.append(f"From: {them}\r\n")
        h.append(f"To: {lname}@lists.example.org\r\n")
        h.append(f"List-Id: {lname.capitalize()} list <{lid}>\r\n")
        h.append(f"List-Unsubscribe: <mailto:{lname}-unsubscribe@lists.example.org>\r\n")
        h.append("Precedence: list\r\n")
    else:
        h.append(f"From: {me if sent else them}\r\n")
        h.append(f"To: {them if sent else me}\r\n")
        if rng.random() < 0.25:
            other = rng.choice(NAMES[rng.choice(list(NAMES))])
            h.append(f"Cc: {_address(other, _ascii_local(other, rng) + '@example.com')}\r\n")
    h.append(_header("Subject", subject))
    if index > 0 and rng.random() < 0.3:
        refs = sorted({rng.randrange(index) for _ in range(rng.randint(1, 4))})
        ids = [message_id(seed, r) for r in refs]
        h.append(f"In-Reply-To: {ids[-1]}\r\n")
        h.append("References: " + "\r\n ".join(ids) + "\r\n")
    h.append(f"User-Agent: {rng.choice(MAILERS)}\r\n")
    h.append("MIME-Version: 1.0\r\n")
    head = "".join(h).encode()

    left = max(500, size - len(head))
    if kind == "plain":
        ph, pb = _text_part(rng, mat, lang, left)
        data = head + ph.encode() + b"\r\n" + pb
    elif kind == "alternative":
        text = _text_part(rng, mat, lang, left * 35 // 100)
        html = _html_part(rng, mat, lang, left * 65 // 100)
        boundary = f"----=_Part_{index}_{rng.getrandbits(48):012x}"
        data = head + _multipart("alternative", boundary,
                                 [(text[0], text[1]), (html[0], html[1])])
    else:
        text = _text_part(rng, mat, lang, rng.randint(1_500, 6_000))
        att = _attachment_part(rng, mat, size, index)
        boundary = f"----=_Part_{index}_{rng.getrandbits(48):012x}"
        data = head + _multipart("mixed", boundary, [text, att])

    # Flags: maildir letters, sorted. Sent mail is seen; lists are read less.
    flags = set()
    seen_p = {"INBOX": 0.80, "Lists/dev": 0.60, "Lists/announce": 0.50}.get(folder, 0.97)
    if sent or rng.random() < seen_p:
        flags.add("S")
    if rng.random() < 0.03:
        flags.add("F")
    if not sent and folder not in LISTS and rng.random() < 0.12:
        flags.add("R")
    return Message(index, folder, kind, "".join(sorted(flags)), when, data)


def count(scale):
    return int(MESSAGES_PER_SCALE * scale)


def generate(scale=1, seed=SEED, start=0, stop=None):
    """Yield messages start..stop-1 (default: the whole corpus) in order."""
    stop = count(scale) if stop is None else stop
    for i in range(start, stop):
        yield make_message(i, seed)


def folder_dir(root, folder):
    """Maildir of an IMAP folder in the layout the benchmark uses everywhere (the
    Dovecot module's LAYOUT=fs:INBOX=~/Maildir/INBOX, mbsync's SubFolders Verbatim):
    root/INBOX, root/Archive/2024, ..."""
    return os.path.join(root, *folder.split("/"))


def write_maildir(root, messages, uid=-1, gid=-1, dir_of=None):
    """Write messages into a Maildir tree; returns their Stats.

    dir_of(folder) gives a folder's Maildir (default: folder_dir under root).
    Files go straight into cur/ with their flags in the name, owned by uid:gid
    (directories made here too), with the delivery time as mtime (Dovecot's
    INTERNALDATE)."""
    dir_of = dir_of or (lambda folder: folder_dir(root, folder))
    stats = Stats()
    made = {}
    for m in messages:
        d = made.get(m.folder)
        if d is None:
            d = made[m.folder] = dir_of(m.folder)
            _make_dirs(root, d, uid, gid)
        path = os.path.join(d, "cur", m.maildir_name())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, m.data)
            if uid >= 0:
                os.fchown(fd, uid, gid)
            os.utime(fd, (m.time, m.time))
        finally:
            os.close(fd)
        stats.add(m)
    return stats


def _make_dirs(root, d, uid, gid):
    """d/{cur,new,tmp}, and chown what is new from d up to root."""
    todo = []
    p = d
    while not os.path.isdir(p):
        todo.append(p)
        if os.path.abspath(p) == os.path.abspath(root):
            break
        p = os.path.dirname(p)
    for sub in ("cur", "new", "tmp"):
        if not os.path.isdir(os.path.join(d, sub)):
            todo.append(os.path.join(d, sub))
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(d, sub), mode=0o700, exist_ok=True)
    if uid >= 0:
        for p in todo:
            os.chown(p, uid, gid)


class Stats:
    """Per-folder message count, bytes and flag counts."""

    def __init__(self):
        self.folders = {}   # folder -> dict(messages, bytes, S, F, R)
        self.kinds = {}     # kind -> [messages, bytes]

    def add(self, m):
        f = self.folders.setdefault(m.folder, {"messages": 0, "bytes": 0,
                                                "S": 0, "F": 0, "R": 0})
        f["messages"] += 1
        f["bytes"] += len(m.data)
        for c in m.flags:
            f[c] += 1
        k = self.kinds.setdefault(m.kind, [0, 0])
        k[0] += 1
        k[1] += len(m.data)

    @property
    def messages(self):
        return sum(f["messages"] for f in self.folders.values())

    @property
    def bytes(self):
        return sum(f["bytes"] for f in self.folders.values())

    def summary(self):
        lines = [f"corpus: {self.messages} messages, {self.bytes / 1e9:.3f} GB "
                 f"({self.bytes / 2**30:.3f} GiB) in {len(self.folders)} folders"]
        for name in FOLDER_NAMES:
            f = self.folders.get(name)
            if f:
                lines.append(f"  {name:16} {f['messages']:7} msgs {f['bytes'] / 1e6:9.1f} MB"
                             f"  seen {f['S']} flagged {f['F']} answered {f['R']}")
        for kind, (n, b) in self.kinds.items():
            lines.append(f"  {kind:16} {n:7} msgs {b / 1e6:9.1f} MB  (avg {b / n / 1e3:.1f} KB)")
        return "\n".join(lines)


# --- loading into Dovecot ----------------------------------------------------

def _imap_quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def load(dovecot, user="alice", scale=1, seed=SEED, log=print):
    """Fill `user`'s Maildir on a running Dovecot with the corpus and check it.

    Creates the folders over IMAP (so Dovecot's layout decides where they live),
    writes the files directly (owned like the Maildir root), lets Dovecot index
    them with a SELECT and `UID FETCH 1:* (UID FLAGS)` per folder, and checks the
    message count and flag counts per folder through imaplib. Returns Stats."""
    t0 = time.monotonic()
    root = dovecot.maildir(user)
    imap = dovecot.client(user)
    try:
        typ, data = imap.list('""', '"INBOX"')
        sep = "/"
        m = re.match(rb'\([^)]*\) "(.)"', data[0] or b"")
        if m:
            sep = m.group(1).decode()
        for folder in FOLDER_NAMES[1:]:
            typ, data = imap.create(_imap_quote(folder.replace("/", sep)))
            if typ != "OK" and b"exists" not in (data[0] or b"").lower():
                raise RuntimeError(f"CREATE {folder}: {data}")
        imap.select("INBOX")
    finally:
        imap.logout()
    if hasattr(dovecot, "folder_dir"):
        def dir_of(folder):
            return dovecot.folder_dir(folder, user)
    else:
        def dir_of(folder):
            return folder_dir(root, folder)
    probe = FOLDER_NAMES[2]
    if not os.path.isdir(os.path.join(dir_of(probe), "cur")):
        raise RuntimeError(f"Dovecot made no Maildir for {probe} at {dir_of(probe)}")
    st = os.stat(dir_of(probe))
    stats = write_maildir(root, generate(scale, seed), st.st_uid, st.st_gid, dir_of)
    t1 = time.monotonic()
    log(f"corpus: wrote {stats.messages} messages, {stats.bytes / 1e9:.3f} GB "
        f"in {t1 - t0:.1f} s (owner {st.st_uid}:{st.st_gid})")

    imap = dovecot.client(user)
    try:
        for folder in FOLDER_NAMES:
            want = stats.folders.get(folder, {"messages": 0, "S": 0, "F": 0, "R": 0})
            typ, data = imap.select(_imap_quote(folder.replace("/", sep)), readonly=True)
            if typ != "OK":
                raise RuntimeError(f"SELECT {folder}: {data}")
            exists = int(data[0])
            typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS)")
            fetched = [d for d in data if d]
            got = {"S": 0, "F": 0, "R": 0}
            for d in fetched:
                got["S"] += b"\\Seen" in d
                got["F"] += b"\\Flagged" in d
                got["R"] += b"\\Answered" in d
            if exists != want["messages"] or len(fetched) != want["messages"]:
                raise RuntimeError(f"{folder}: Dovecot has {exists} messages "
                                   f"({len(fetched)} fetched), expected {want['messages']}")
            for c in "SFR":
                if got[c] != want[c]:
                    raise RuntimeError(f"{folder}: {got[c]} messages with flag {c}, "
                                       f"expected {want[c]}")
    finally:
        imap.logout()
    log(f"corpus: Dovecot indexed and verified {stats.messages} messages in "
        f"{len(FOLDER_NAMES)} folders in {time.monotonic() - t1:.1f} s")
    return stats


# --- DAV (later) ---------------------------------------------------------------

def generate_dav(scale=1, seed=SEED):
    """Hook for the DAV part of the corpus (DESIGN section 8: 4,700 items per unit
    of scale: events, tasks, contacts). To be built with the CalDAV/CardDAV
    benchmark; it should yield (collection, href name, iCalendar/vCard bytes),
    deterministic in (seed, index) like make_message, and a load_dav(radicale)
    should write them into the server's storage and verify them over HTTP."""
    raise NotImplementedError("DAV corpus: not built yet (see the docstring)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1,
                    help="units of 10,000 messages (10 = 100,000)")
    ap.add_argument("--seed", type=int, default=SEED)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--stats", action="store_true", help="generate and print sizes only")
    g.add_argument("--maildir", metavar="DIR", help="write a plain Maildir (fs layout)")
    a = ap.parse_args()
    t0 = time.monotonic()
    if a.stats:
        stats = Stats()
        for m in generate(a.scale, a.seed):
            stats.add(m)
    else:
        stats = write_maildir(a.maildir, generate(a.scale, a.seed))
    print(stats.summary())
    print(f"{time.monotonic() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
