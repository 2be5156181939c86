/* mail: reads the header block of an RFC 5322 message (fields, Date, RFC 2047
 * Subject, Message-ID), tolerantly and in bounded time and memory. */
#include "formats/mail.h"
#include "common/dynbuf.h"
#include "common/utf8.h"
#include "common/util.h"

#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* At most this much of an unstructured value is decoded: RFC 5322 lines stop
 * at 998 bytes, so real subjects are far shorter, and a hostile 1 MB Subject
 * costs no more than this. */
#define MAIL_DECODE_IN_MAX (64 * 1024)
/* Decoded text is for names and notices; this bounds its size whatever the
 * charset expansion. */
#define MAIL_TEXT_MAX (16 * 1024)
/* A Message-ID longer than a whole header line is not one we could match. */
#define MAIL_MSGID_MAX 998
/* Charset names are short ("ISO-2022-JP", "windows-1252"). */
#define MAIL_CHARSET_MAX 64

#define REPLACEMENT 0xFFFD

static bool
is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* ---- header fields ---- */

struct field {
    const char *name;
    size_t name_len;
    const char *value; /* raw: after the colon, folds and line end included */
    size_t value_len;
};

static size_t
line_end(const char *h, size_t hlen, size_t p)
{
    const char *nl = memchr(h + p, '\n', hlen - p);
    return nl ? (size_t)(nl - h) : hlen;
}

size_t
mail_header_len(const char *msg, size_t len)
{
    size_t p = 0;
    if (!msg)
        return 0;
    while (p < len) {
        size_t eol = line_end(msg, len, p);
        if (eol == len)
            return len;
        if (eol == p || (eol == p + 1 && msg[p] == '\r'))
            return eol + 1;
        p = eol + 1;
    }
    return len;
}

/* The next field of the header block h[0..hlen) from *pos. Lines without a
 * colon (an mbox "From " line, garbage) are skipped with their continuation
 * lines; false at the blank line or the end. */
static bool
next_field(const char *h, size_t hlen, size_t *pos, struct field *f)
{
    size_t p = *pos;
    while (p < hlen) {
        size_t start = p;
        size_t eol = line_end(h, hlen, p);
        if (eol == p || (eol == p + 1 && h[p] == '\r'))
            break;
        size_t end = eol < hlen ? eol + 1 : hlen;
        while (end < hlen && is_wsp(h[end])) {
            size_t e = line_end(h, hlen, end);
            end = e < hlen ? e + 1 : hlen;
        }
        p = end;
        if (is_wsp(h[start]))
            continue; /* a continuation with nothing to continue */
        const char *colon = memchr(h + start, ':', eol - start);
        if (!colon)
            continue;
        size_t nl = (size_t)(colon - (h + start));
        while (nl > 0 && is_wsp(h[start + nl - 1])) /* obs: "Subject :" */
            nl--;
        if (nl == 0)
            continue;
        f->name = h + start;
        f->name_len = nl;
        f->value = colon + 1;
        f->value_len = (size_t)((h + end) - (colon + 1));
        *pos = p;
        return true;
    }
    *pos = hlen;
    return false;
}

static bool
is_space_or_eol(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A byte unfolding removes: the line breaks of folds, and NUL (a C string
 * cannot hold it, RFC 5322 forbids it). */
static bool
unfold_drops(const char *v, size_t i, size_t n)
{
    return v[i] == '\0' || v[i] == '\n' ||
           (v[i] == '\r' && i + 1 < n && v[i + 1] == '\n');
}

/* Append the unfolded value v[0..n) to b, surrounding white space trimmed
 * (the white space after a fold stays). Copies what fits under the buffer's
 * cap; -1 when something did not fit. */
static int
unfold(const char *v, size_t n, struct dynbuf *b)
{
    size_t i = 0;
    while (i < n && is_space_or_eol(v[i]))
        i++;
    while (n > i && is_space_or_eol(v[n - 1]))
        n--;
    size_t room = b->cap - b->len;
    size_t want = n - i < room ? n - i : room;
    char *dst = dynbuf_reserve(b, want);
    size_t o = 0;
    for (; i < n; i++) {
        if (unfold_drops(v, i, n))
            continue;
        if (o == want)
            break;
        dst[o++] = v[i];
    }
    dynbuf_commit(b, o);
    return i < n ? -1 : 0;
}

char *
mail_header_get(const char *msg, size_t len, const char *name)
{
    size_t hlen = mail_header_len(msg, len);
    size_t pos = 0;
    struct field f;
    while (next_field(msg, hlen, &pos, &f)) {
        if (!util_ascii_eq(f.name, f.name_len, name))
            continue;
        struct dynbuf b;
        dynbuf_init(&b, f.value_len);
        unfold(f.value, f.value_len, &b);
        return dynbuf_take(&b);
    }
    return NULL;
}

/* ---- Date (RFC 5322 section 3.3 and the obsolete forms of 4.3) ---- */

enum tok_kind { TOK_END, TOK_NUM, TOK_WORD, TOK_PUNCT };

struct tok {
    enum tok_kind kind;
    const char *s;
    size_t n;   /* bytes of the token */
    long value; /* TOK_NUM: its value, or -1 when it has too many digits */
    char c;     /* TOK_PUNCT */
};

struct lexer {
    const char *s;
    size_t len, pos;
};

/* Skip CFWS: white space, folds, and (possibly nested) comments with quoted
 * pairs. An unterminated comment runs to the end. */
static void
skip_cfws(struct lexer *lx)
{
    size_t depth = 0;
    while (lx->pos < lx->len) {
        char c = lx->s[lx->pos];
        if (depth > 0) {
            if (c == '\\' && lx->pos + 1 < lx->len)
                lx->pos++;
            else if (c == '(')
                depth++;
            else if (c == ')')
                depth--;
        } else if (c == '(') {
            depth = 1;
        } else if (!is_space_or_eol(c)) {
            return;
        }
        lx->pos++;
    }
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static struct tok
next_tok(struct lexer *lx)
{
    struct tok t = {TOK_END, NULL, 0, 0, 0};
    skip_cfws(lx);
    if (lx->pos >= lx->len)
        return t;
    const char *s = lx->s;
    size_t p = lx->pos;
    t.s = s + p;
    if (is_digit(s[p])) {
        t.kind = TOK_NUM;
        while (p < lx->len && is_digit(s[p])) {
            if (t.value >= 0)
                t.value = p - lx->pos < 9 ? t.value * 10 + (s[p] - '0') : -1;
            p++;
        }
    } else if (is_alpha(s[p])) {
        t.kind = TOK_WORD;
        while (p < lx->len && is_alpha(s[p]))
            p++;
    } else {
        t.kind = TOK_PUNCT;
        t.c = s[p++];
    }
    t.n = p - lx->pos;
    lx->pos = p;
    return t;
}

static const char *const day_names[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                        "Friday", "Saturday", "Sunday"};
static const char *const month_names[] = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December"};

/* Index of the word in names[] by its three-letter abbreviation or its full
 * name (case-insensitive), or -1. */
static int
name_index(const struct tok *t, const char *const *names, int count)
{
    if (t->kind != TOK_WORD)
        return -1;
    for (int i = 0; i < count; i++) {
        if (util_ascii_eq(t->s, t->n, names[i]) ||
            (t->n == 3 && strncasecmp(t->s, names[i], 3) == 0))
            return i;
    }
    return -1;
}

/* Offset in minutes of a named zone. RFC 5322 section 4.3: the military
 * letters had their signs wrong in RFC 822 and any unknown name means
 * "-0000", so both are taken as UTC. */
static int
zone_by_name(const struct tok *t)
{
    static const struct {
        const char *name;
        int minutes;
    } zones[] = {
        {"UT", 0},        {"GMT", 0},       {"UTC", 0},       {"EST", -5 * 60},
        {"EDT", -4 * 60}, {"CST", -6 * 60}, {"CDT", -5 * 60}, {"MST", -7 * 60},
        {"MDT", -6 * 60}, {"PST", -8 * 60}, {"PDT", -7 * 60},
    };
    for (size_t i = 0; i < ARRAY_SIZE(zones); i++)
        if (util_ascii_eq(t->s, t->n, zones[i].name))
            return zones[i].minutes;
    return 0;
}

/* "+HHMM" / "-HHMM" after the sign token (or "+HH:MM", which some senders
 * write): offset in minutes, or false. */
static bool
numeric_zone(struct lexer *lx, char sign, int *minutes)
{
    struct tok t = next_tok(lx);
    long hh, mm;
    if (t.kind == TOK_NUM && t.n == 4) {
        hh = t.value / 100, mm = t.value % 100;
    } else if (t.kind == TOK_NUM && t.n == 2) {
        hh = t.value;
        t = next_tok(lx);
        if (t.kind != TOK_PUNCT || t.c != ':')
            return false;
        t = next_tok(lx);
        if (t.kind != TOK_NUM || t.n != 2)
            return false;
        mm = t.value;
    } else {
        return false;
    }
    if (hh > 23 || mm > 59)
        return false;
    *minutes = (int)(hh * 60 + mm) * (sign == '-' ? -1 : 1);
    return true;
}

static bool
is_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1 January of year 1 (proleptic Gregorian) to 1 January of y. */
static int64_t
days_before_year(int64_t y)
{
    int64_t p = y - 1;
    return p * 365 + p / 4 - p / 100 + p / 400;
}

/* Days since 1970-01-01 of a valid civil date. */
static int64_t
days_from_civil(long y, int m, int d)
{
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t days = days_before_year(y) - days_before_year(1970);
    return days + before[m - 1] + (m > 2 && is_leap(y)) + (d - 1);
}

static bool
small_num(const struct tok *t, size_t max_digits)
{
    return t->kind == TOK_NUM && t->n <= max_digits;
}

int
mail_parse_date(const char *s, size_t len, int64_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    struct lexer lx = {s, s ? len : 0, 0};
    struct tok t = next_tok(&lx);

    if (t.kind == TOK_WORD) {
        /* the weekday is redundant and often wrong: checked as a word only */
        if (name_index(&t, day_names, 7) < 0)
            return -1;
        t = next_tok(&lx);
        if (t.kind == TOK_PUNCT && t.c == ',')
            t = next_tok(&lx);
    }
    if (!small_num(&t, 2))
        return -1;
    long day = t.value;
    t = next_tok(&lx);
    int month = name_index(&t, month_names, 12) + 1;
    if (month < 1)
        return -1;
    t = next_tok(&lx);
    if (t.kind != TOK_NUM || t.n < 2 || t.value < 0)
        return -1;
    long year = t.value;
    if (t.n == 2) /* RFC 5322 section 4.3 */
        year += year < 50 ? 2000 : 1900;
    else if (t.n == 3)
        year += 1900;
    t = next_tok(&lx);
    if (!small_num(&t, 2))
        return -1;
    long hour = t.value;
    t = next_tok(&lx);
    if (t.kind != TOK_PUNCT || t.c != ':')
        return -1;
    t = next_tok(&lx);
    if (!small_num(&t, 2))
        return -1;
    long minute = t.value, second = 0;
    t = next_tok(&lx);
    if (t.kind == TOK_PUNCT && t.c == ':') {
        t = next_tok(&lx);
        if (!small_num(&t, 2))
            return -1;
        second = t.value;
        t = next_tok(&lx);
    }

    int zone = 0; /* a missing zone is read as "-0000": time known, zone not */
    if (t.kind == TOK_PUNCT && (t.c == '+' || t.c == '-')) {
        if (!numeric_zone(&lx, t.c, &zone))
            return -1;
    } else if (t.kind == TOK_WORD) {
        zone = zone_by_name(&t);
        if (zone == 0) {
            /* "GMT+0100" and the like: the offset that follows counts */
            struct lexer save = lx;
            struct tok sign = next_tok(&lx);
            int z;
            if (sign.kind == TOK_PUNCT && (sign.c == '+' || sign.c == '-') &&
                numeric_zone(&lx, sign.c, &z))
                zone = z;
            else
                lx = save;
        }
    } else if (t.kind != TOK_END) {
        return -1;
    }
    /* anything after the zone is ignored: it is a comment in practice */

    if (year < 1900 || year > 9999 || day < 1 || hour > 23 || minute > 59 || second > 60)
        return -1;
    if (day > mdays[month - 1] + (month == 2 && is_leap(year)))
        return -1;
    *out = days_from_civil(year, month, (int)day) * 86400 + hour * 3600 + minute * 60 +
           second - (int64_t)zone * 60;
    return 0;
}

/* ---- RFC 2047 encoded-words ---- */

struct decoder {
    struct dynbuf out;  /* the result, capped at MAIL_TEXT_MAX */
    bool full;          /* the cap was reached: stop */
    struct dynbuf word; /* the bytes of the encoded-word being decoded */
    struct dynbuf pend; /* bytes of adjacent encoded-words in one charset, kept
                           together so a character split across words (which
                           senders do) converts whole */
    char pend_cs[MAIL_CHARSET_MAX + 1];
    iconv_t cd; /* converter for cd_cs, or (iconv_t)-1 */
    char cd_cs[MAIL_CHARSET_MAX + 1];
};

static void
put_cp(struct decoder *d, uint32_t cp)
{
    char b[4];
    size_t n;
    if (d->full)
        return;
    if (cp == 0) /* a C string cannot carry it */
        cp = REPLACEMENT;
    if (cp < 0x80) {
        b[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (char)(0x80 | (cp & 0x3F)),
        n = 4;
    }
    if (dynbuf_add(&d->out, b, n) < 0)
        d->full = true; /* whole characters only: the cut stays valid UTF-8 */
}

/* Copy UTF-8, each invalid byte becoming U+FFFD. */
static void
put_utf8(struct decoder *d, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n && !d->full) {
        uint32_t cp;
        size_t l = utf8_next(p + i, n - i, &cp);
        if (!l)
            cp = REPLACEMENT, l = 1;
        put_cp(d, cp);
        i += l;
    }
}

/* Text outside encoded-words: UTF-8 when it is valid UTF-8, else Latin-1. */
static void
put_raw(struct decoder *d, const char *s, size_t n)
{
    if (utf8_valid(s, n)) {
        put_utf8(d, s, n);
        return;
    }
    for (size_t i = 0; i < n && !d->full; i++)
        put_cp(d, (unsigned char)s[i]);
}

/* The converter from charset cs to UTF-8, or (iconv_t)-1 when iconv does not
 * know it. The last one is kept: a subject usually has one charset. */
static iconv_t
get_converter(struct decoder *d, const char *cs)
{
    if (strcasecmp(d->cd_cs, cs) == 0)
        return d->cd;
    if (d->cd != (iconv_t)-1)
        iconv_close(d->cd);
    snprintf(d->cd_cs, sizeof(d->cd_cs), "%s", cs);
    d->cd = iconv_open("UTF-8", cs);
    return d->cd;
}

/* Convert the pending encoded-word bytes to UTF-8 into the output. Bytes the
 * charset cannot read become U+FFFD; iconv's output is checked again so the
 * result is valid UTF-8 whatever the converter does. */
static void
flush_pending(struct decoder *d)
{
    if (d->pend.len == 0)
        return;
    iconv_t cd = get_converter(d, d->pend_cs);
    if (cd == (iconv_t)-1) { /* not expected: the charset opened before */
        put_cp(d, REPLACEMENT);
        dynbuf_reset(&d->pend);
        return;
    }
    char obuf[1024];
    char *in = d->pend.data;
    size_t inleft = d->pend.len;
    iconv(cd, NULL, NULL, NULL, NULL);
    while (inleft > 0 && !d->full) {
        char *o = obuf;
        size_t oleft = sizeof(obuf);
        size_t r = iconv(cd, &in, &inleft, &o, &oleft);
        int err = errno;
        put_utf8(d, obuf, (size_t)(o - obuf));
        if (r != (size_t)-1)
            break;
        if (err == E2BIG && o > obuf)
            continue;
        put_cp(d, REPLACEMENT);
        if (err != EILSEQ)
            break; /* EINVAL: a sequence cut short at the end */
        in++, inleft--;
    }
    char *o = obuf;
    size_t oleft = sizeof(obuf);
    iconv(cd, NULL, NULL, &o, &oleft);
    put_utf8(d, obuf, (size_t)(o - obuf));
    dynbuf_reset(&d->pend);
}

struct encoded_word {
    char charset[MAIL_CHARSET_MAX + 1]; /* without an RFC 2231 "*lang" */
    char enc;                           /* 'B' or 'Q' */
    const char *text;
    size_t text_len;
    size_t end; /* index just past "?=" */
};

static bool
is_charset_char(char c)
{
    return c > 0x20 && c < 0x7F && !strchr("()<>@,;:\"/[]?.=", c);
}

/* Recognise "=?charset?B|Q?text?=" at s[i]. */
static bool
parse_encoded_word(const char *s, size_t len, size_t i, struct encoded_word *ew)
{
    size_t p = i + 2, cs = p;
    while (p < len && is_charset_char(s[p]))
        p++;
    if (p == cs || p - cs > MAIL_CHARSET_MAX || p >= len || s[p] != '?')
        return false;
    size_t cs_len = p - cs;
    const char *star = memchr(s + cs, '*', cs_len);
    if (star)
        cs_len = (size_t)(star - (s + cs));
    if (cs_len == 0)
        return false;
    memcpy(ew->charset, s + cs, cs_len);
    ew->charset[cs_len] = '\0';
    p++;
    if (p + 1 >= len || s[p + 1] != '?')
        return false;
    ew->enc = s[p] == 'b' || s[p] == 'B' ? 'B' : s[p] == 'q' || s[p] == 'Q' ? 'Q' : 0;
    if (!ew->enc)
        return false;
    p += 2;
    ew->text = s + p;
    while (p < len && s[p] > 0x20 && s[p] < 0x7F && s[p] != '?')
        p++;
    if (p + 1 >= len || s[p] != '?' || s[p + 1] != '=')
        return false;
    ew->text_len = (size_t)(s + p - ew->text);
    ew->end = p + 2;
    return true;
}

static int
b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (is_digit(c))
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static int
hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* B: strict alphabet, padding optional (commonly left out). A character
 * outside the alphabet, data after padding, or a lone final sextet make the
 * word malformed. */
static int
decode_b(const char *s, size_t n, struct dynbuf *out)
{
    unsigned acc = 0, bits = 0;
    size_t i = 0, count = 0;
    for (; i < n && s[i] != '='; i++, count++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (unsigned)v) & 0xFFFF;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dynbuf_addc(out, (char)(acc >> bits));
        }
    }
    for (; i < n; i++)
        if (s[i] != '=')
            return -1;
    return count % 4 == 1 ? -1 : 0;
}

/* Q: "_" is a space, "=XX" a byte; an "=" without two hex digits is kept as
 * it is, as RFC 2045 section 6.7 advises for robust decoders. */
static int
decode_q(const char *s, size_t n, struct dynbuf *out)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int hi, lo;
        if (c == '_') {
            c = ' ';
        } else if (c == '=' && i + 2 < n && (hi = hex_value(s[i + 1])) >= 0 &&
                   (lo = hex_value(s[i + 2])) >= 0) {
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        dynbuf_addc(out, c);
    }
    return 0;
}

static bool
all_wsp(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_space_or_eol(s[i]))
            return false;
    return true;
}

char *
mail_decode_words(const char *s, size_t len)
{
    struct decoder d;
    if (!s)
        len = 0;
    len = utf8_cut(s, len, MAIL_DECODE_IN_MAX);
    dynbuf_init(&d.out, MAIL_TEXT_MAX);
    dynbuf_init(&d.word, MAIL_DECODE_IN_MAX);
    dynbuf_init(&d.pend, MAIL_DECODE_IN_MAX);
    d.full = false;
    d.pend_cs[0] = '\0';
    d.cd = (iconv_t)-1;
    d.cd_cs[0] = '\0';

    size_t i = 0, lit = 0; /* s[lit..i) is plain text not yet written */
    bool after_word = false;
    while (i + 1 < len && !d.full) {
        struct encoded_word ew;
        if (s[i] != '=' || s[i + 1] != '?' || !parse_encoded_word(s, len, i, &ew)) {
            i++;
            continue;
        }
        /* a charset change ends the run of pending words */
        if (d.pend.len && strcasecmp(d.pend_cs, ew.charset) != 0)
            flush_pending(&d);
        dynbuf_reset(&d.word);
        int rc = ew.enc == 'B' ? decode_b(ew.text, ew.text_len, &d.word)
                               : decode_q(ew.text, ew.text_len, &d.word);
        if (rc < 0 || get_converter(&d, ew.charset) == (iconv_t)-1) {
            i++; /* malformed or unknown charset: stays literal text */
            continue;
        }
        /* white space between two encoded-words is not part of the text */
        if (!after_word || !all_wsp(s + lit, i - lit)) {
            flush_pending(&d);
            put_raw(&d, s + lit, i - lit);
        }
        snprintf(d.pend_cs, sizeof(d.pend_cs), "%s", ew.charset);
        dynbuf_add(&d.pend, d.word.data, d.word.len);
        i = lit = ew.end;
        after_word = true;
    }
    flush_pending(&d);
    put_raw(&d, s + lit, len - lit);

    if (d.cd != (iconv_t)-1)
        iconv_close(d.cd);
    dynbuf_free(&d.word);
    dynbuf_free(&d.pend);
    return dynbuf_take(&d.out);
}

/* ---- the whole header ---- */

static char *
decode_subject(const struct field *f)
{
    struct dynbuf raw;
    /* a little more than the decoder takes, so that it can cut the text at
     * a character boundary */
    dynbuf_init(&raw, MAIL_DECODE_IN_MAX + 4);
    unfold(f->value, f->value_len, &raw);
    char *s = mail_decode_words(raw.data ? raw.data : "", raw.len);
    dynbuf_free(&raw);
    return s;
}

/* "<id@host>" out of the value, dropping comments or junk around it; a
 * value without angle brackets is kept as it is (some senders omit them). */
static char *
extract_message_id(const struct field *f)
{
    struct dynbuf b;
    dynbuf_init(&b, MAIL_MSGID_MAX);
    if (unfold(f->value, f->value_len, &b) < 0 || b.len == 0) {
        dynbuf_free(&b);
        return NULL;
    }
    char *id;
    const char *lt = memchr(b.data, '<', b.len);
    const char *gt = lt ? memchr(lt, '>', b.len - (size_t)(lt - b.data)) : NULL;
    if (gt)
        id = xstrndup(lt, (size_t)(gt - lt) + 1);
    else
        id = xstrndup(b.data, b.len);
    dynbuf_free(&b);
    return id;
}

int
mail_info_parse(const char *msg, size_t len, struct mail_info *out)
{
    out->date = -1;
    out->subject = NULL;
    out->message_id = NULL;
    size_t hlen = mail_header_len(msg, len);
    size_t pos = 0;
    bool seen_date = false, seen_id = false;
    struct field f;
    while (next_field(msg, hlen, &pos, &f)) {
        if (!seen_date && util_ascii_eq(f.name, f.name_len, "Date")) {
            int64_t t;
            seen_date = true;
            if (mail_parse_date(f.value, f.value_len, &t) == 0)
                out->date = t;
        } else if (!out->subject && util_ascii_eq(f.name, f.name_len, "Subject")) {
            out->subject = decode_subject(&f);
        } else if (!seen_id && util_ascii_eq(f.name, f.name_len, "Message-ID")) {
            seen_id = true;
            out->message_id = extract_message_id(&f);
        }
        if (seen_date && seen_id && out->subject)
            break;
    }
    return 0;
}

void
mail_info_free(struct mail_info *mi)
{
    if (!mi)
        return;
    free(mi->subject);
    free(mi->message_id);
    mi->subject = NULL;
    mi->message_id = NULL;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void
add_base64(struct dynbuf *b, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63],
                     i + 1 < n ? b64[(v >> 6) & 63] : '=', i + 2 < n ? b64[v & 63] : '='};
        dynbuf_add(b, q, 4);
    }
}

char *
mail_encode_words(const char *utf8)
{
    bool plain = true;
    for (const unsigned char *p = (const unsigned char *)utf8; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            plain = false;
    if (plain)
        return xstrdup(utf8);
    struct dynbuf b;
    dynbuf_init(&b, 1 << 20);
    /* 45 bytes of text make 60 of base64: "=?UTF-8?B?" + 60 + "?=" = 72. */
    const unsigned char *p = (const unsigned char *)utf8;
    size_t len = strlen(utf8);
    bool first = true;
    while (len > 0) {
        size_t n = len < 45 ? len : 45;
        while (n < len && n > 0 && (p[n] & 0xc0) == 0x80)
            n--; /* never split a character */
        if (n == 0)
            n = len < 45 ? len : 45;
        if (!first)
            dynbuf_adds(&b, "\r\n ");
        dynbuf_adds(&b, "=?UTF-8?B?");
        add_base64(&b, p, n);
        dynbuf_adds(&b, "?=");
        p += n;
        len -= n;
        first = false;
    }
    return dynbuf_take(&b);
}

void
mail_format_date(int64_t t, char out[40])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(out, 40, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
