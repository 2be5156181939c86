/* vcard: a bounded reader of one vCard's names and UID (content lines,
 * parameters, escapes, vCard 2.1 encodings), and adding a missing UID. */
#include "formats/vcard.h"
#include "common/dynbuf.h"
#include "common/utf8.h"
#include "common/util.h"

#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Property names are short; a longer one is kept only by its length. */
#define VCARD_NAME_MAX 63
/* A CHARSET or ENCODING value longer than this is not one iconv knows. */
#define VCARD_PARAM_MAX 64
/* RFC 6350 3.2: lines SHOULD NOT be longer than 75 octets. */
#define VCARD_FOLD 75
/* A decoded value can grow: 2 bytes per Latin-1 byte, 3 per U+FFFD. */
#define VCARD_DECODED_MAX (3 * VCARD_TEXT_MAX)
#define REPLACEMENT 0xFFFD

enum { N_FAMILY, N_GIVEN, N_ADDITIONAL, N_PREFIX, N_SUFFIX, N_PARTS };

/* One content line: raw position in the text, and its name and parts in the
 * cursor's unfolded copy. */
struct vline {
    size_t start, end;             /* raw bytes, folds and line end included */
    bool crlf;                     /* its last physical line ends in CRLF */
    unsigned lineno;               /* of its first physical line, from 1 */
    char name[VCARD_NAME_MAX + 1]; /* without the group; truncated when long */
    size_t name_len;
    size_t params; /* in the unfolded copy: where the parameters start */
    size_t colon;  /* ... and the ':' before the value */
};

struct vcursor {
    const char *data; /* borrowed */
    size_t len, pos;
    unsigned lineno;
    struct dynbuf u; /* the current line, unfolded */
};

static bool
is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static bool
is_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_'; /* '_' is not in the grammar, but real cards use it */
}

static bool
eq_ci(const char *a, size_t n, const char *b)
{
    return util_ascii_eq(a, n, b);
}

/* Does s[0..n) contain `needle` (ASCII, case-insensitive)? */
static bool
contains_ci(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (strncasecmp(s + i, needle, m) == 0)
            return true;
    return false;
}

static void
cursor_init(struct vcursor *c, const char *data, size_t len)
{
    c->data = data;
    c->len = len;
    c->pos = 0;
    c->lineno = 1;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        c->pos = 3;
    dynbuf_init(&c->u, VCARD_SIZE_MAX);
}

static void
cursor_free(struct vcursor *c)
{
    dynbuf_free(&c->u);
}

/* One past the '\n' ending the physical line at p, or len. */
static size_t
phys_end(const char *d, size_t len, size_t p)
{
    const char *nl = memchr(d + p, '\n', len - p);
    return nl ? (size_t)(nl - d) + 1 : len;
}

static bool
phys_blank(const char *d, size_t p, size_t e)
{
    for (; p < e; p++)
        if (!is_wsp(d[p]) && d[p] != '\r' && d[p] != '\n')
            return false;
    return true;
}

/* Append the physical line at p (from p + skip) without its line end to the
 * unfolded copy; returns where the next one starts. */
static size_t
add_phys(struct vcursor *c, size_t p, size_t skip, struct vline *l)
{
    size_t e = phys_end(c->data, c->len, p);
    size_t ce = e;
    l->crlf = false;
    if (ce > p && c->data[ce - 1] == '\n') {
        ce--;
        if (ce > p && c->data[ce - 1] == '\r') {
            ce--;
            l->crlf = true;
        }
    }
    if (p + skip < ce)
        dynbuf_add(&c->u, c->data + p + skip,
                   ce - p - skip); /* fits: u's cap is the input's */
    c->lineno++;
    return e;
}

/* Split the unfolded line into group, name, parameters and value. */
static bool
parse_head(const char *u, size_t n, struct vline *l)
{
    size_t i = 0, tok;
    for (;;) {
        tok = i;
        while (i < n && is_name_char(u[i]))
            i++;
        if (i == tok)
            return false;
        if (i < n && u[i] == '.') { /* a group: the name follows */
            i++;
            continue;
        }
        break;
    }
    size_t nl = i - tok;
    memcpy(l->name, u + tok, nl < VCARD_NAME_MAX ? nl : VCARD_NAME_MAX);
    l->name[nl < VCARD_NAME_MAX ? nl : VCARD_NAME_MAX] = '\0';
    l->name_len = nl;
    if (i >= n || (u[i] != ';' && u[i] != ':'))
        return false;
    l->params = i;
    bool quoted = false;
    for (; i < n; i++) {
        if (u[i] == '"')
            quoted = !quoted;
        else if (u[i] == ':' && !quoted)
            break;
    }
    if (i >= n)
        return false;
    l->colon = i;
    return true;
}

static bool
line_is(const struct vline *l, const char *name)
{
    return l->name_len <= VCARD_NAME_MAX && eq_ci(l->name, l->name_len, name);
}

/* A vCard 2.1 quoted-printable value ending in '=' goes on in the next
 * physical line (a soft line break), which need not start with white space.
 * Never across END:VCARD, which some writers put right after a stray '='. */
static bool
qp_continues(const struct vcursor *c, const struct vline *l, size_t p)
{
    const char *u = c->u.data;
    if (p >= c->len || c->u.len == 0 || u[c->u.len - 1] != '=' ||
        c->u.len - 1 <= l->colon)
        return false;
    if (!contains_ci(u + l->params, l->colon - l->params, "QUOTED-PRINTABLE"))
        return false;
    size_t e = phys_end(c->data, c->len, p);
    if (phys_blank(c->data, p, e))
        return false;
    return !(e - p >= 9 && strncasecmp(c->data + p, "END:VCARD", 9) == 0 &&
             phys_blank(c->data, p + 9, e));
}

/* The next content line: 1, 0 at the end, -1 when it is not one. */
static int
next_line(struct vcursor *c, struct vline *l)
{
    const char *d = c->data;
    memset(l, 0, sizeof(*l));
    dynbuf_reset(&c->u);
    while (c->pos < c->len) {
        size_t e = phys_end(d, c->len, c->pos);
        if (!phys_blank(d, c->pos, e))
            break;
        c->pos = e;
        c->lineno++;
    }
    if (c->pos >= c->len)
        return 0;
    l->start = c->pos;
    l->lineno = c->lineno;
    if (is_wsp(d[c->pos]))
        return -1; /* a continuation with nothing to continue */

    size_t p = add_phys(c, c->pos, 0, l);
    while (p < c->len && is_wsp(d[p]))
        p = add_phys(c, p, 1, l);
    if (!c->u.data || !parse_head(c->u.data, c->u.len, l))
        return -1;
    for (;;) {
        if (p < c->len && is_wsp(d[p])) {
            p = add_phys(c, p, 1, l);
        } else if (qp_continues(c, l, p)) {
            c->u.len--; /* the '=' of the soft break */
            p = add_phys(c, p, 0, l);
        } else {
            break;
        }
    }
    l->end = p;
    c->pos = p;
    return 1;
}

/* The line's value, in the cursor's copy. */
static const char *
line_value(const struct vcursor *c, const struct vline *l, size_t *n)
{
    *n = c->u.len - l->colon - 1;
    return c->u.data + l->colon + 1;
}

/* Is the value `want`, white space around forgiven? */
static bool
value_is(const struct vcursor *c, const struct vline *l, const char *want)
{
    size_t n;
    const char *v = line_value(c, l, &n);
    while (n > 0 && is_wsp(*v))
        v++, n--;
    while (n > 0 && is_wsp(v[n - 1]))
        n--;
    return eq_ci(v, n, want);
}

/* ---- parameters ---- */

/* The value of parameter `name` (or true for a bare vCard 2.1 parameter
 * equal to `bare`), copied into out[VCARD_PARAM_MAX + 1] without quotes.
 * false when absent or too long. */
static bool
get_param(const struct vcursor *c, const struct vline *l, const char *name,
          const char *bare, char *out)
{
    const char *u = c->u.data;
    size_t i = l->params;
    while (i < l->colon && u[i] == ';') {
        size_t s = ++i;
        bool quoted = false;
        while (i < l->colon && (quoted || u[i] != ';')) {
            if (u[i] == '"')
                quoted = !quoted;
            i++;
        }
        const char *eq = memchr(u + s, '=', i - s);
        const char *v;
        size_t vn;
        if (eq && eq_ci(u + s, (size_t)(eq - (u + s)), name)) {
            v = eq + 1;
            vn = (size_t)((u + i) - v);
        } else if (!eq && bare && eq_ci(u + s, i - s, bare)) {
            v = bare;
            vn = strlen(bare);
        } else {
            continue;
        }
        if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"')
            v++, vn -= 2;
        if (vn > VCARD_PARAM_MAX)
            return false;
        memcpy(out, v, vn);
        out[vn] = '\0';
        return true;
    }
    return false;
}

/* ---- decoding text ---- */

static void
put_cp(struct dynbuf *out, uint32_t cp)
{
    char b[4];
    if (cp == 0) /* a C string cannot carry it */
        cp = REPLACEMENT;
    dynbuf_add(out, b, utf8_encode(cp, b)); /* whole characters or nothing */
}

/* Append s[0..n) as valid UTF-8: valid sequences kept, other bytes read as
 * Latin-1 (what vCard 2.1 files without CHARSET mostly hold) or, when the
 * text says it is UTF-8, as U+FFFD; NUL as U+FFFD. */
static void
add_utf8(struct dynbuf *out, const char *s, size_t n, bool latin1)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = utf8_next(p + i, n - i, &cp);
        if (!l)
            cp = latin1 ? p[i] : REPLACEMENT, l = 1;
        put_cp(out, cp);
        i += l;
    }
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Quoted-printable: "=XX" is a byte; anything else, a broken "=" included,
 * stays as it is. Soft line breaks were joined by next_line. */
static void
qp_decode(const char *s, size_t n, struct dynbuf *out)
{
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '=' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 &&
            (l = hexval(s[i + 2])) >= 0) {
            dynbuf_addc(out, (char)(h << 4 | l));
            i += 2;
        } else {
            dynbuf_addc(out, s[i]);
        }
    }
}

static bool
charset_ok(const char *cs)
{
    if (!*cs)
        return false;
    for (const char *p = cs; *p; p++)
        if (!is_name_char(*p) && !strchr(".:+()", *p))
            return false;
    return true;
}

/* Convert s[0..n) from charset cs to UTF-8; bytes it cannot read become
 * U+FFFD. Unknown charsets fall back to add_utf8. */
static void
convert(const char *s, size_t n, const char *cs, struct dynbuf *out)
{
    if (eq_ci(cs, strlen(cs), "UTF-8") || eq_ci(cs, strlen(cs), "UTF8")) {
        add_utf8(out, s, n, false);
        return;
    }
    iconv_t cd = charset_ok(cs) ? iconv_open("UTF-8", cs) : (iconv_t)-1;
    if (cd == (iconv_t)-1) {
        add_utf8(out, s, n, true);
        return;
    }
    struct dynbuf tmp;
    char *ip = (char *)s;
    size_t il = n;
    char buf[1024];
    dynbuf_init(&tmp, VCARD_DECODED_MAX);
    for (;;) {
        char *op = buf;
        size_t ol = sizeof(buf);
        size_t r = iconv(cd, il ? &ip : NULL, il ? &il : NULL, &op, &ol);
        int e = errno;
        if (dynbuf_add(&tmp, buf, (size_t)(op - buf)) < 0)
            break;
        if (r != (size_t)-1 && il == 0)
            break;
        if (r == (size_t)-1 && e == E2BIG)
            continue;
        if (r == (size_t)-1) { /* EILSEQ, EINVAL: skip one byte */
            put_cp(&tmp, REPLACEMENT);
            ip++, il--;
            iconv(cd, NULL, NULL, NULL, NULL);
            if (il == 0)
                break;
        }
    }
    iconv_close(cd);
    add_utf8(out, tmp.data ? tmp.data : "", tmp.len,
             false); /* again: NUL, odd converters */
    dynbuf_free(&tmp);
}

/* The decoded (not yet unescaped) value of a text property into out:
 * at most VCARD_TEXT_MAX raw bytes, QUOTED-PRINTABLE and CHARSET applied,
 * valid UTF-8. */
static void
decode_value(const struct vcursor *c, const struct vline *l, struct dynbuf *out)
{
    size_t n;
    const char *v = line_value(c, l, &n);
    char enc[VCARD_PARAM_MAX + 1], cs[VCARD_PARAM_MAX + 1];
    bool qp = get_param(c, l, "ENCODING", "QUOTED-PRINTABLE", enc) &&
              eq_ci(enc, strlen(enc), "QUOTED-PRINTABLE");
    bool has_cs = get_param(c, l, "CHARSET", NULL, cs);
    n = utf8_cut(v, n, VCARD_TEXT_MAX);
    struct dynbuf raw;
    dynbuf_init(&raw, VCARD_TEXT_MAX);
    if (qp)
        qp_decode(v, n, &raw);
    else
        dynbuf_add(&raw, v, n);
    convert(raw.data ? raw.data : "", raw.len, has_cs ? cs : "", out);
    dynbuf_free(&raw);
}

/* Unescape s[0..n) (\n \N \, \; \\; any other backslash stays) into a new
 * string; unescaped commas become spaces when `commas` is set (they
 * separate the values of one N component). */
static char *
unescape(const char *s, size_t n, bool commas)
{
    struct dynbuf b;
    dynbuf_init(&b, VCARD_DECODED_MAX);
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '\\' && i + 1 < n) {
            char nx = s[i + 1];
            if (nx == 'n' || nx == 'N')
                ch = '\n', i++;
            else if (nx == ',' || nx == ';' || nx == '\\')
                ch = nx, i++;
        } else if (ch == ',' && commas) {
            ch = ' ';
        }
        dynbuf_addc(&b, ch);
    }
    return dynbuf_take(&b);
}

static bool
blank(const char *s)
{
    for (; s && *s; s++)
        if (!strchr(" \t\r\n", *s))
            return false;
    return true;
}

static void
read_fn(const struct vcursor *c, const struct vline *l, struct vcard_info *out)
{
    struct dynbuf d;
    dynbuf_init(&d, VCARD_DECODED_MAX);
    decode_value(c, l, &d);
    out->fn = unescape(d.data ? d.data : "", d.len, false);
    dynbuf_free(&d);
}

static void
read_n(const struct vcursor *c, const struct vline *l, struct vcard_info *out)
{
    char **parts[N_PARTS] = {&out->family, &out->given, &out->additional, &out->prefix,
                             &out->suffix};
    struct dynbuf d;
    dynbuf_init(&d, VCARD_DECODED_MAX);
    decode_value(c, l, &d);
    const char *s = d.data ? d.data : "";
    size_t i = 0, start = 0;
    unsigned k = 0;
    for (; k < N_PARTS; i++) {
        if (i < d.len && s[i] == '\\' && i + 1 < d.len) {
            i++;
            continue;
        }
        if (i < d.len && s[i] != ';')
            continue;
        char *p = unescape(s + start, i - start, true);
        if (blank(p)) {
            free(p);
            p = NULL;
        }
        *parts[k++] = p;
        start = i + 1;
        if (i >= d.len)
            break;
    }
    dynbuf_free(&d);
}

/* FN unless blank, else "prefix given additional family suffix". */
static char *
display_name(const struct vcard_info *vi)
{
    if (!blank(vi->fn))
        return xstrdup(vi->fn);
    const char *order[] = {vi->prefix, vi->given, vi->additional, vi->family, vi->suffix};
    struct dynbuf b;
    dynbuf_init(&b, SIZE_MAX / 2);
    for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
        if (!order[i])
            continue;
        if (b.len)
            dynbuf_addc(&b, ' ');
        dynbuf_adds(&b, order[i]);
    }
    return dynbuf_take(&b);
}

/* ---- the card ---- */

static void set_err(char **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
set_err(char **err, const char *fmt, ...)
{
    if (!err)
        return;
    struct dynbuf b;
    va_list ap;
    dynbuf_init(&b, 1024);
    va_start(ap, fmt);
    dynbuf_vprintf(&b, fmt, ap);
    va_end(ap);
    free(*err);
    *err = dynbuf_take(&b);
}

static int
read_card(struct vcursor *c, struct vcard_info *out, char **err,
          struct vline *version_line, struct vline *begin_line)
{
    struct vline l;
    enum { BEFORE, IN, AFTER } state = BEFORE;
    bool has_n = false, has_version = false;
    int rc;

    while ((rc = next_line(c, &l)) > 0) {
        bool begin = line_is(&l, "BEGIN"), end = line_is(&l, "END");
        if (state == BEFORE) {
            if (!begin || !value_is(c, &l, "VCARD"))
                break;
            state = IN;
            *begin_line = l;
        } else if (state == AFTER) {
            if (begin && value_is(c, &l, "VCARD"))
                set_err(err,
                        "two cards (the second begins on line %u): a file holds one "
                        "contact",
                        l.lineno);
            else
                set_err(err, "line %u: text after END:VCARD", l.lineno);
            return -1;
        } else if (begin) {
            set_err(err, "line %u: BEGIN inside a card (nested cards are not read)",
                    l.lineno);
            return -1;
        } else if (end) {
            if (!value_is(c, &l, "VCARD")) {
                set_err(err, "line %u: this END does not close BEGIN:VCARD", l.lineno);
                return -1;
            }
            state = AFTER;
        } else if (line_is(&l, "VERSION") && !has_version) {
            has_version = true;
            *version_line = l;
            if (value_is(c, &l, "2.1"))
                out->version = 21;
            else if (value_is(c, &l, "3.0"))
                out->version = 30;
            else if (value_is(c, &l, "4.0"))
                out->version = 40;
            else {
                set_err(err, "line %u: VERSION is not 2.1, 3.0 or 4.0", l.lineno);
                return -1;
            }
        } else if (line_is(&l, "FN") && !out->fn) {
            read_fn(c, &l, out);
        } else if (line_is(&l, "N") && !has_n) {
            has_n = true;
            read_n(c, &l, out);
        } else if (line_is(&l, "UID") && !out->uid) {
            size_t n;
            const char *v = line_value(c, &l, &n);
            if (n > VCARD_UID_MAX) {
                set_err(err, "line %u: a UID longer than %d bytes", l.lineno,
                        VCARD_UID_MAX);
                return -1;
            }
            out->uid = unescape(v, n, false);
        }
    }
    if (state == BEFORE) {
        set_err(err, "not a vCard: the text does not begin with BEGIN:VCARD");
        return -1;
    }
    if (rc < 0) {
        set_err(err, "line %u is not a vCard content line ([GROUP.]NAME[;PARAMS]:VALUE)",
                l.lineno);
        return -1;
    }
    if (state == IN) {
        set_err(err, "truncated: BEGIN:VCARD has no END:VCARD");
        return -1;
    }
    if (!out->fn && !has_n) {
        set_err(err, "no FN and no N: a contact needs a name");
        return -1;
    }
    if (!has_version)
        version_line->end = 0;
    return 0;
}

static int
parse(const char *data, size_t len, struct vcard_info *out, char **err,
      struct vline *version_line, struct vline *begin_line)
{
    memset(out, 0, sizeof(*out));
    if (!data || phys_blank(data, 0, len)) {
        set_err(err, "empty file");
        return -1;
    }
    if (len > VCARD_SIZE_MAX) {
        set_err(err, "larger than %d MiB", VCARD_SIZE_MAX / (1024 * 1024));
        return -1;
    }
    if (memchr(data, '\0', len)) {
        set_err(err, "not a vCard: it holds a NUL byte");
        return -1;
    }
    struct vcursor c;
    cursor_init(&c, data, len);
    int rc = read_card(&c, out, err, version_line, begin_line);
    cursor_free(&c);
    if (rc == 0)
        out->name = display_name(out);
    else
        vcard_info_free(out);
    return rc;
}

int
vcard_parse(const char *data, size_t len, struct vcard_info *out, char **err)
{
    struct vline v, b;
    return parse(data, len, out, err, &v, &b);
}

void
vcard_info_free(struct vcard_info *vi)
{
    if (!vi)
        return;
    free(vi->fn);
    free(vi->family);
    free(vi->given);
    free(vi->additional);
    free(vi->prefix);
    free(vi->suffix);
    free(vi->name);
    free(vi->uid);
    memset(vi, 0, sizeof(*vi));
}

static bool
uid_ok(const char *uid)
{
    size_t n = uid ? strlen(uid) : 0;
    if (n == 0 || n > VCARD_UID_MAX || !utf8_valid(uid, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)uid[i];
        if (ch < 0x20 || ch == 0x7F || ch == ',' || ch == ';' || ch == '\\')
            return false;
    }
    return true;
}

/* Append "UID:uid" folded at 75 octets between UTF-8 characters. */
static void
add_uid_line(struct dynbuf *out, const char *uid, const char *eol)
{
    struct dynbuf line;
    dynbuf_init(&line, VCARD_UID_MAX + 8);
    dynbuf_adds(&line, "UID:");
    dynbuf_adds(&line, uid);
    size_t room = VCARD_FOLD, p = 0;
    while (p < line.len) {
        size_t n = line.len - p;
        if (n > room) {
            n = room;
            while (n > 0 && ((unsigned char)line.data[p + n] & 0xC0) == 0x80)
                n--;
        }
        if (p > 0)
            dynbuf_addc(out, ' ');
        dynbuf_add(out, line.data + p, n);
        dynbuf_adds(out, eol);
        p += n;
        room = VCARD_FOLD - 1;
    }
    dynbuf_free(&line);
}

char *
vcard_with_uid(const char *data, size_t len, const char *uid, size_t *outlen)
{
    struct vcard_info vi;
    struct vline version_line, begin_line;
    if (!uid_ok(uid) || parse(data, len, &vi, NULL, &version_line, &begin_line) < 0)
        return NULL;
    struct dynbuf out;
    dynbuf_init(&out, SIZE_MAX / 2);
    if (vi.uid) {
        dynbuf_add(&out, data, len);
    } else {
        const struct vline *after = version_line.end ? &version_line : &begin_line;
        dynbuf_add(&out, data, after->end);
        add_uid_line(&out, uid, after->crlf ? "\r\n" : "\n");
        dynbuf_add(&out, data + after->end, len - after->end);
    }
    vcard_info_free(&vi);
    if (outlen)
        *outlen = out.len;
    return dynbuf_take(&out);
}
