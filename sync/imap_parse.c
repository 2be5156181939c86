/* imap_parse: the streaming IMAP response parser (framing, then tokenizing into
 * values), astring quoting and sequence sets. */
#include "sync/imap_parse.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds on what one response may make us build; the byte cap comes from the
 * caller. 1M values is about 40 MB of struct imap_value. */
#define IMAP_MAX_DEPTH 64
#define IMAP_MAX_TOKENS 1000000
#define ARENA_MIN 256
#define ARENA_KEEP 16384
/* Internal buffers whose size is already bounded by the response cap. */
#define UNCAPPED (SIZE_MAX / 2)

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    struct imap_value v[];
};

struct imap_parser {
    size_t max_response;
    size_t buf_limit;      /* most unparsed bytes we hold (see imap_parser_new) */
    struct dynbuf buf;     /* received bytes; [start, buf.len) not yet released */
    size_t start;          /* offset of the first byte of the current response */
    bool holding;          /* a returned response still lives at start */
    size_t held;           /* its length */
    struct dynbuf pending; /* bytes fed while holding: buf must not move then */

    /* Framing of the response at buf.data + start; offsets relative to start,
     * kept across calls so a large literal is never rescanned. */
    size_t scan;       /* where the search for the next LF resumes */
    size_t line_start; /* first byte of the line being scanned */
    size_t lit_end;    /* in_literal: offset just past the literal */
    bool in_literal;
    bool classified;  /* first line seen; single_line is known */
    bool single_line; /* status and continuation lines carry no literal */

    enum imap_parse_result failed; /* IMAP_PARSE_OK while usable */
    const char *err;
    char errbuf[160];

    struct imap_response resp;
    struct imap_value *vstack; /* values of the lists still open */
    size_t vlen, valloc;
    size_t ntok;
    struct arena_chunk *arena; /* finished lists' items; freed per response */
    struct dynbuf strs;        /* tag, name and code, NUL-separated */
};

/* The tokenizer's position within one complete response. */
struct tok {
    struct imap_parser *p;
    char *pos;     /* next byte */
    char *lend;    /* end of the current line's content (its CR or LF) */
    char *eol;     /* the current line's LF */
    char *rend;    /* one past the response's last LF */
    char *rb_from; /* cache of the next ']' at or after rb_from ... */
    char *rb;      /* ... or lend when there is none */
};

static const char empty[] = "";

static bool
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 3501 ATOM-CHAR, widened as servers need: 8-bit bytes, list wildcards
 * and backslash (flags) are accepted, and ']' too except inside a response
 * code, where it ends the code. */
static bool
is_atom_char(unsigned char c, bool in_code)
{
    if (c <= 0x20 || c == 0x7f)
        return false;
    if (c == '(' || c == ')' || c == '{' || c == '"')
        return false;
    return !(in_code && c == ']');
}

/* Characters of a response name, a status word or a code name. */
static bool
is_name_char(unsigned char c)
{
    return is_atom_char(c, true) && c != '[';
}

static char
ascii_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
}

static enum imap_status
status_word(const char *w, size_t n)
{
    static const struct {
        const char *s;
        enum imap_status st;
    } words[] = {
        {"OK", IMAP_ST_OK},   {"NO", IMAP_ST_NO},           {"BAD", IMAP_ST_BAD},
        {"BYE", IMAP_ST_BYE}, {"PREAUTH", IMAP_ST_PREAUTH},
    };
    for (size_t i = 0; i < ARRAY_SIZE(words); i++)
        if (util_ascii_eq(w, n, words[i].s))
            return words[i].st;
    return IMAP_ST_NONE;
}

/* The status word at w (before lend), when it is one followed by SP or the
 * end of the line; the framing and the tokenizer share this so that they
 * always agree on which lines are status responses. */
static enum imap_status
status_at(const char *w, const char *lend, const char **after)
{
    const char *e = w;
    while (e < lend && e - w < 8 && is_name_char((unsigned char)*e))
        e++;
    if (e < lend && *e != ' ')
        return IMAP_ST_NONE;
    if (after)
        *after = e;
    return status_word(w, (size_t)(e - w));
}

static enum imap_parse_result
fail(struct imap_parser *p, enum imap_parse_result r, const char *why)
{
    p->failed = r;
    p->err = why;
    return r;
}

static enum imap_parse_result
failf(struct imap_parser *p, enum imap_parse_result r, const char *fmt,
      unsigned long long a, unsigned long long b)
{
    snprintf(p->errbuf, sizeof(p->errbuf), fmt, a, b);
    return fail(p, r, p->errbuf);
}

struct imap_parser *
imap_parser_new(size_t max_response)
{
    struct imap_parser *p = xcalloc(1, sizeof(*p));
    p->max_response = max_response;
    /* A caller that drains after every feed holds at most one unfinished
     * response (<= the cap) plus one read; twice the cap lets a read of up to
     * the cap arrive without a spurious failure, and still bounds memory. */
    p->buf_limit = max_response > UNCAPPED / 2 ? UNCAPPED : max_response * 2;
    dynbuf_init(&p->buf, UNCAPPED);
    dynbuf_init(&p->pending, UNCAPPED);
    dynbuf_init(&p->strs, UNCAPPED);
    p->failed = IMAP_PARSE_OK;
    p->err = "no error";
    return p;
}

static void
arena_reset(struct imap_parser *p, bool all)
{
    struct arena_chunk *c = p->arena;
    if (!c)
        return;
    /* Keep the newest (largest) chunk for the next response, unless a huge
     * response made it big. */
    struct arena_chunk *next = c->next;
    c->next = NULL;
    c->used = 0;
    if (all || c->cap > ARENA_KEEP) {
        free(c);
        p->arena = NULL;
    }
    while (next) {
        struct arena_chunk *n = next->next;
        free(next);
        next = n;
    }
}

void
imap_parser_free(struct imap_parser *p)
{
    if (!p)
        return;
    dynbuf_free(&p->buf);
    dynbuf_free(&p->pending);
    dynbuf_free(&p->strs);
    free(p->vstack);
    arena_reset(p, true);
    free(p);
}

/* Move the unreleased bytes to the front when that costs no more than the
 * bytes it frees, so the copying stays linear in what was consumed. */
static void
compact(struct imap_parser *p)
{
    if (p->start == 0)
        return;
    size_t rest = p->buf.len - p->start;
    if (rest == 0) {
        dynbuf_reset(&p->buf);
        p->start = 0;
    } else if (p->start >= rest) {
        dynbuf_consume(&p->buf, p->start);
        p->start = 0;
    }
}

int
imap_parser_feed(struct imap_parser *p, const char *data, size_t len)
{
    if (p->failed != IMAP_PARSE_OK)
        return -1;
    size_t unparsed = p->buf.len - p->start - p->held + p->pending.len;
    if (len > p->buf_limit || unparsed > p->buf_limit - len) {
        failf(p, IMAP_PARSE_TOO_BIG, "%llu unparsed bytes exceed the cap of %llu",
              (unsigned long long)unparsed + len, (unsigned long long)p->buf_limit);
        return -1;
    }
    if (len == 0)
        return 0;
    if (p->holding)
        return dynbuf_add(&p->pending, data, len);
    compact(p);
    return dynbuf_add(&p->buf, data, len);
}

const char *
imap_parser_error(const struct imap_parser *p)
{
    return p->err;
}

/* Framing */

/* When the line [ls, lf) (lf at its LF) ends with a literal announcement
 * "{n}", "{n+}" or "~{n}", store n and return 1; 0 when it announces none;
 * -1 when the size does not fit in 64 bits. */
static int
literal_at_eol(const char *ls, const char *lf, uint64_t *n)
{
    const char *e = lf;
    if (e > ls && e[-1] == '\r')
        e--;
    if (e == ls || e[-1] != '}')
        return 0;
    e--;
    if (e > ls && e[-1] == '+')
        e--;
    const char *d = e;
    while (d > ls && is_digit((unsigned char)d[-1]) && e - d < 21)
        d--;
    if (d == e || d == ls || d[-1] != '{')
        return 0;
    uint64_t v = 0;
    for (; d < e; d++) {
        unsigned dig = (unsigned)(*d - '0');
        if (v > (UINT64_MAX - dig) / 10)
            return -1;
        v = v * 10 + dig;
    }
    *n = v;
    return 1;
}

/* Whether a response whose first line is [base, lf) is one line only:
 * continuation, tagged and untagged status responses. Their text is free-form
 * and a trailing "{5}" there is text, not a literal. */
static bool
first_line_is_single(const char *base, const char *lf)
{
    const char *lend = lf > base && lf[-1] == '\r' ? lf - 1 : lf;
    if (lend == base || base[0] != '*')
        return true;
    if (lend - base < 2 || base[1] != ' ')
        return false;
    return status_at(base + 2, lend, NULL) != IMAP_ST_NONE;
}

static void
frame_reset(struct imap_parser *p)
{
    p->scan = 0;
    p->line_start = 0;
    p->lit_end = 0;
    p->in_literal = false;
    p->classified = false;
    p->single_line = false;
}

/* Find the extent of the response at start: its first line and every literal
 * it announces with the line that follows each. */
static enum imap_parse_result
frame(struct imap_parser *p, size_t *len_out)
{
    size_t avail = p->buf.len - p->start;
    if (avail == 0)
        return IMAP_PARSE_MORE;
    const char *base = p->buf.data + p->start;
    for (;;) {
        if (p->in_literal) {
            if (avail < p->lit_end)
                return IMAP_PARSE_MORE;
            p->in_literal = false;
            p->line_start = p->scan = p->lit_end;
        }
        const char *lf = NULL;
        if (p->scan < avail)
            lf = memchr(base + p->scan, '\n', avail - p->scan);
        if (!lf) {
            p->scan = avail;
            if (avail > p->max_response)
                return failf(p, IMAP_PARSE_TOO_BIG,
                             "response of over %llu bytes exceeds the cap of %llu",
                             (unsigned long long)avail - 1,
                             (unsigned long long)p->max_response);
            return IMAP_PARSE_MORE;
        }
        size_t le = (size_t)(lf - base);
        if (le >= p->max_response)
            return failf(p, IMAP_PARSE_TOO_BIG,
                         "response of over %llu bytes exceeds the cap of %llu",
                         (unsigned long long)le, (unsigned long long)p->max_response);
        if (!p->classified) {
            p->single_line = first_line_is_single(base, lf);
            p->classified = true;
        }
        uint64_t n = 0;
        int r = p->single_line ? 0 : literal_at_eol(base + p->line_start, lf, &n);
        if (r < 0)
            return fail(p, IMAP_PARSE_ERROR, "literal size does not fit in 64 bits");
        if (r == 0) {
            *len_out = le + 1;
            frame_reset(p);
            return IMAP_PARSE_OK;
        }
        if (n > p->max_response - (le + 1))
            return failf(p, IMAP_PARSE_TOO_BIG,
                         "literal of %llu bytes exceeds the response cap of %llu",
                         (unsigned long long)n, (unsigned long long)p->max_response);
        p->lit_end = le + 1 + (size_t)n;
        p->in_literal = true;
    }
}

/* Tokenizing */

static enum imap_parse_result
tok_fail(struct tok *t, const char *why)
{
    t->p->err = why;
    return IMAP_PARSE_ERROR;
}

/* Set up the line that starts at t->pos. */
static enum imap_parse_result
tok_line(struct tok *t)
{
    char *lf = t->pos < t->rend ? memchr(t->pos, '\n', (size_t)(t->rend - t->pos)) : NULL;
    if (!lf)
        return tok_fail(t, "missing line after a literal");
    t->eol = lf;
    t->lend = lf > t->pos && lf[-1] == '\r' ? lf - 1 : lf;
    t->rb_from = t->rb = NULL;
    return IMAP_PARSE_OK;
}

/* The first ']' at or after `from` on this line, or NULL. Cached so that a
 * line full of '[' without ']' is still scanned once, not once per '['. */
static char *
tok_rbracket(struct tok *t, char *from)
{
    if (!t->rb || from < t->rb_from || from > t->rb) {
        char *r = memchr(from, ']', (size_t)(t->lend - from));
        t->rb_from = from;
        t->rb = r ? r : t->lend;
    }
    return t->rb == t->lend ? NULL : t->rb;
}

static struct imap_value *
arena_copy(struct imap_parser *p, const struct imap_value *src, size_t n)
{
    struct arena_chunk *c = p->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = c ? c->cap * 2 : ARENA_MIN;
        if (cap < n)
            cap = n;
        struct arena_chunk *nc = xmalloc(sizeof(*nc) + cap * sizeof(struct imap_value));
        nc->cap = cap;
        nc->used = 0;
        if (c && c->used == 0) {
            /* An empty head is too small: replace it rather than chain. */
            p->arena = c->next;
            free(c);
        }
        nc->next = p->arena;
        p->arena = c = nc;
    }
    struct imap_value *dst = c->v + c->used;
    memcpy(dst, src, n * sizeof(*dst));
    c->used += n;
    return dst;
}

static enum imap_parse_result
push(struct imap_parser *p, const struct imap_value *v)
{
    if (++p->ntok > IMAP_MAX_TOKENS) {
        p->err = "too many tokens in one response";
        return IMAP_PARSE_TOO_BIG;
    }
    if (p->vlen == p->valloc) {
        p->valloc = p->valloc ? p->valloc * 2 : 64;
        p->vstack = xrealloc(p->vstack, p->valloc * sizeof(*p->vstack));
    }
    p->vstack[p->vlen++] = *v;
    return IMAP_PARSE_OK;
}

/* Turn the values stacked since `mark` into a list. */
static void
make_list(struct imap_parser *p, size_t mark, struct imap_value *out)
{
    size_t n = p->vlen - mark;
    memset(out, 0, sizeof(*out));
    out->kind = IMAP_LIST;
    out->items = n ? arena_copy(p, p->vstack + mark, n) : NULL;
    out->n = n;
    p->vlen = mark;
}

/* A quoted string, unescaped in place once its end is known (so an
 * unterminated one is never modified). */
static enum imap_parse_result
parse_quoted(struct tok *t, struct imap_value *v)
{
    char *s = t->pos + 1, *q = s;
    bool esc = false;
    for (;;) {
        if (q >= t->lend)
            return tok_fail(t, "unterminated quoted string");
        char c = *q;
        if (c == '"')
            break;
        if (c == '\\') {
            esc = true;
            q++;
            if (q >= t->lend)
                return tok_fail(t, "unterminated quoted string");
            c = *q;
        }
        if (c == '\0' || c == '\r')
            return tok_fail(t, "NUL or CR in a quoted string");
        q++;
    }
    char *w = q;
    if (esc) {
        /* Any escaped byte stands for itself, as most servers expect. */
        w = s;
        for (char *r = s; r < q; r++) {
            if (*r == '\\')
                r++;
            *w++ = *r;
        }
    }
    v->kind = IMAP_STRING;
    v->data = s;
    v->len = (size_t)(w - s);
    t->pos = q + 1;
    return IMAP_PARSE_OK;
}

static enum imap_parse_result
parse_literal(struct tok *t, struct imap_value *v)
{
    char *d = t->pos;
    if (*d == '~')
        d++;
    d++;
    uint64_t n = 0;
    const char *digits = d;
    while (d < t->lend && is_digit((unsigned char)*d)) {
        unsigned dig = (unsigned)(*d - '0');
        if (n > (UINT64_MAX - dig) / 10)
            return tok_fail(t, "literal size does not fit in 64 bits");
        n = n * 10 + dig;
        d++;
    }
    if (d == digits)
        return tok_fail(t, "bad literal announcement");
    if (d < t->lend && *d == '+')
        d++;
    if (d >= t->lend || *d != '}')
        return tok_fail(t, "bad literal announcement");
    if (d + 1 != t->lend)
        return tok_fail(t, "literal announcement not at the end of a line");
    char *data = t->eol + 1;
    if (n > (uint64_t)(t->rend - data))
        return tok_fail(t, "literal runs past the response");
    v->kind = IMAP_STRING;
    v->literal = true;
    v->data = data;
    v->len = (size_t)n;
    t->pos = data + n;
    return tok_line(t);
}

static void
parse_atom(struct tok *t, bool in_code, struct imap_value *v)
{
    char *s = t->pos, *q = s;
    while (q < t->lend) {
        unsigned char c = (unsigned char)*q;
        if (c == '[' && !in_code) {
            /* A FETCH item such as BODY[HEADER.FIELDS (DATE)]<0> is one atom;
             * a '[' with no ']' after it is an ordinary atom character. */
            char *rb = tok_rbracket(t, q + 1);
            if (rb) {
                q = rb + 1;
                continue;
            }
        }
        if (!is_atom_char(c, in_code))
            break;
        q++;
    }
    v->kind = util_ascii_eq(s, (size_t)(q - s), "NIL") ? IMAP_NIL : IMAP_ATOM;
    v->data = s;
    v->len = (size_t)(q - s);
    t->pos = q;
}

/* Tokens up to the end of the response (or, in a response code, up to the
 * ']' that closes it, left at t->pos) into the list *out. */
static enum imap_parse_result
parse_values(struct tok *t, bool in_code, struct imap_value *out)
{
    struct imap_parser *p = t->p;
    size_t base = p->vlen;
    size_t marks[IMAP_MAX_DEPTH];
    size_t depth = 0;
    enum imap_parse_result r;
    for (;;) {
        while (t->pos < t->lend && *t->pos == ' ')
            t->pos++;
        if (t->pos == t->lend) {
            if (in_code)
                return tok_fail(t, "unterminated response code");
            if (depth)
                return tok_fail(t, "unterminated list");
            if (t->eol + 1 != t->rend)
                return tok_fail(t, "data after the end of the response");
            break;
        }
        unsigned char c = (unsigned char)*t->pos;
        if (in_code && c == ']' && depth == 0)
            break;
        struct imap_value v;
        memset(&v, 0, sizeof(v));
        if (c == '(') {
            if (depth == IMAP_MAX_DEPTH)
                return tok_fail(t, "lists nested too deeply");
            marks[depth++] = p->vlen;
            t->pos++;
            continue;
        }
        if (c == ')') {
            if (depth == 0)
                return tok_fail(t, "unbalanced ')'");
            make_list(p, marks[--depth], &v);
            t->pos++;
        } else if (c == '"') {
            if ((r = parse_quoted(t, &v)) != IMAP_PARSE_OK)
                return r;
        } else if (c == '{' || (c == '~' && t->pos + 1 < t->lend && t->pos[1] == '{')) {
            if (in_code)
                return tok_fail(t, "literal in a response code");
            if ((r = parse_literal(t, &v)) != IMAP_PARSE_OK)
                return r;
        } else if (is_atom_char(c, in_code)) {
            parse_atom(t, in_code, &v);
        } else {
            return tok_fail(t, "unexpected character");
        }
        if ((r = push(p, &v)) != IMAP_PARSE_OK)
            return r;
    }
    make_list(p, base, out);
    return IMAP_PARSE_OK;
}

/* Copy s into strs, upper-cased when asked; returns its offset. */
static size_t
add_str(struct imap_parser *p, const char *s, size_t n, bool upper)
{
    size_t off = p->strs.len;
    dynbuf_add(&p->strs, s, n);
    dynbuf_addc(&p->strs, '\0');
    if (upper)
        for (size_t i = off; i < off + n; i++)
            p->strs.data[i] = ascii_upper(p->strs.data[i]);
    return off;
}

/* "[CODE args]" at t->pos; leaves t->pos at the text. A bracket that does not
 * form a code is left as text; code arguments that do not tokenize become
 * one atom holding their raw bytes, since the generic grammar allows any
 * text there. */
static enum imap_parse_result
parse_code(struct tok *t, size_t *code_off)
{
    struct imap_parser *p = t->p;
    char *open = t->pos, *name = open + 1, *nend = name;
    while (nend < t->lend && is_name_char((unsigned char)*nend))
        nend++;
    if (nend == name)
        return IMAP_PARSE_OK;
    char *after = NULL;
    struct imap_value *args = &p->resp.code_args;
    if (nend < t->lend && *nend == ']') {
        after = nend + 1;
    } else if (nend < t->lend && *nend == ' ') {
        size_t mark = p->vlen, ntok = p->ntok;
        t->pos = nend + 1;
        enum imap_parse_result r = parse_values(t, true, args);
        if (r == IMAP_PARSE_OK && t->pos < t->lend && *t->pos == ']') {
            after = t->pos + 1;
        } else {
            p->vlen = mark;
            p->ntok = ntok;
        }
    }
    if (!after) {
        char *rb = memchr(nend, ']', (size_t)(t->lend - nend));
        if (!rb) {
            t->pos = open;
            return IMAP_PARSE_OK;
        }
        char *s = nend;
        while (s < rb && *s == ' ')
            s++;
        memset(args, 0, sizeof(*args));
        args->kind = IMAP_LIST;
        if (s < rb) {
            struct imap_value raw;
            memset(&raw, 0, sizeof(raw));
            raw.kind = IMAP_ATOM;
            raw.data = s;
            raw.len = (size_t)(rb - s);
            args->items = arena_copy(p, &raw, 1);
            args->n = 1;
        }
        after = rb + 1;
    }
    *code_off = add_str(p, name, (size_t)(nend - name), true);
    t->pos = after;
    if (t->pos < t->lend && *t->pos == ' ')
        t->pos++;
    return IMAP_PARSE_OK;
}

/* The free text from t->pos to the end of a one-line response, terminated in
 * place (over its CR or LF). */
static enum imap_parse_result
parse_text(struct tok *t)
{
    if (t->eol + 1 != t->rend)
        return tok_fail(t, "data after the end of the response");
    if (memchr(t->pos, '\0', (size_t)(t->lend - t->pos)))
        return tok_fail(t, "NUL in response text");
    *t->lend = '\0';
    t->p->resp.text = t->pos;
    return IMAP_PARSE_OK;
}

/* After a status word: " [CODE args] text". */
static enum imap_parse_result
parse_status_rest(struct tok *t, size_t *code_off)
{
    if (t->pos < t->lend) {
        /* status_at() guarantees a space here */
        while (t->pos < t->lend && *t->pos == ' ')
            t->pos++;
        if (t->pos < t->lend && *t->pos == '[') {
            enum imap_parse_result r = parse_code(t, code_off);
            if (r != IMAP_PARSE_OK)
                return r;
        }
    }
    return parse_text(t);
}

static enum imap_parse_result
parse_untagged(struct tok *t, size_t *name_off, size_t *code_off)
{
    struct imap_parser *p = t->p;
    struct imap_response *resp = &p->resp;
    if (t->pos >= t->lend || *t->pos != ' ')
        return tok_fail(t, "expected a space after '*'");
    t->pos++;
    const char *after;
    enum imap_status st = status_at(t->pos, t->lend, &after);
    if (st != IMAP_ST_NONE) {
        resp->status = st;
        *name_off = add_str(p, t->pos, (size_t)(after - t->pos), true);
        t->pos = (char *)after;
        return parse_status_rest(t, code_off);
    }
    char *w = t->pos, *e = w;
    while (e < t->lend && is_name_char((unsigned char)*e))
        e++;
    bool numeric = e > w;
    for (char *q = w; q < e && numeric; q++)
        numeric = is_digit((unsigned char)*q);
    if (numeric) {
        uint64_t n = 0;
        for (char *q = w; q < e; q++) {
            n = n * 10 + (uint64_t)(*q - '0');
            if (n > UINT32_MAX)
                return tok_fail(t, "message number out of range");
        }
        resp->has_number = true;
        resp->number = (uint32_t)n;
        if (e >= t->lend || *e != ' ')
            return tok_fail(t, "expected a name after the number");
        w = e = e + 1;
        while (e < t->lend && is_name_char((unsigned char)*e))
            e++;
    }
    if (e == w)
        return tok_fail(t, "missing response name");
    *name_off = add_str(p, w, (size_t)(e - w), true);
    t->pos = e;
    return parse_values(t, false, &resp->args);
}

static enum imap_parse_result
parse_tagged(struct tok *t, size_t *tag_off, size_t *code_off)
{
    struct imap_response *resp = &t->p->resp;
    char *s = t->pos, *e = s;
    /* tag = 1*<ASTRING-CHAR except "+"> */
    while (e < t->lend && is_atom_char((unsigned char)*e, false) && *e != '+' &&
           *e != '%' && *e != '*' && *e != '\\')
        e++;
    if (e == s || e >= t->lend || *e != ' ')
        return tok_fail(t, "bad tag");
    resp->kind = IMAP_RESP_TAGGED;
    *tag_off = add_str(t->p, s, (size_t)(e - s), false);
    const char *after;
    enum imap_status st = status_at(e + 1, t->lend, &after);
    if (st != IMAP_ST_OK && st != IMAP_ST_NO && st != IMAP_ST_BAD)
        return tok_fail(t, "tagged response without OK, NO or BAD");
    resp->status = st;
    t->pos = (char *)after;
    return parse_status_rest(t, code_off);
}

static void
resp_reset(struct imap_parser *p)
{
    struct imap_response *r = &p->resp;
    memset(r, 0, sizeof(*r));
    r->tag = empty;
    r->name = empty;
    r->text = empty;
    r->code_args.kind = IMAP_LIST;
    r->args.kind = IMAP_LIST;
    arena_reset(p, false);
    dynbuf_reset(&p->strs);
    p->vlen = 0;
    p->ntok = 0;
}

static enum imap_parse_result
parse_response(struct imap_parser *p, char *data, size_t len)
{
    struct tok t = {.p = p, .pos = data, .rend = data + len};
    resp_reset(p);
    enum imap_parse_result r = tok_line(&t);
    if (r != IMAP_PARSE_OK)
        return r;
    if (t.pos == t.lend)
        return tok_fail(&t, "empty line");
    size_t none = SIZE_MAX, tag_off = none, name_off = none, code_off = none;
    char c = *t.pos;
    if (c == '+') {
        p->resp.kind = IMAP_RESP_CONTINUATION;
        t.pos++;
        if (t.pos < t.lend && *t.pos == ' ')
            t.pos++;
        r = parse_text(&t);
    } else if (c == '*') {
        p->resp.kind = IMAP_RESP_UNTAGGED;
        t.pos++;
        r = parse_untagged(&t, &name_off, &code_off);
    } else {
        r = parse_tagged(&t, &tag_off, &code_off);
    }
    if (r != IMAP_PARSE_OK)
        return r;
    /* strs is complete: its addresses are stable from here on. */
    if (tag_off != none)
        p->resp.tag = p->strs.data + tag_off;
    if (name_off != none)
        p->resp.name = p->strs.data + name_off;
    if (code_off != none)
        p->resp.code = p->strs.data + code_off;
    return IMAP_PARSE_OK;
}

/* Give back the bytes of the response returned last time, and take in what
 * was fed meanwhile. */
static void
release(struct imap_parser *p)
{
    if (!p->holding)
        return;
    p->start += p->held;
    p->held = 0;
    p->holding = false;
    if (p->start == p->buf.len) {
        dynbuf_reset(&p->buf);
        p->start = 0;
    }
    if (p->pending.len) {
        compact(p);
        dynbuf_add(&p->buf, p->pending.data, p->pending.len);
        dynbuf_reset(&p->pending);
    }
}

enum imap_parse_result
imap_parser_next(struct imap_parser *p, struct imap_response **out)
{
    *out = NULL;
    if (p->failed != IMAP_PARSE_OK)
        return p->failed;
    release(p);
    size_t len = 0;
    enum imap_parse_result r = frame(p, &len);
    if (r != IMAP_PARSE_OK)
        return r;
    r = parse_response(p, p->buf.data + p->start, len);
    if (r != IMAP_PARSE_OK)
        return fail(p, r, p->err);
    p->holding = true;
    p->held = len;
    *out = &p->resp;
    return IMAP_PARSE_OK;
}

/* Value helpers */

bool
imap_value_is(const struct imap_value *v, const char *s)
{
    return v && v->kind == IMAP_ATOM && util_ascii_eq(v->data, v->len, s);
}

int
imap_value_u64(const struct imap_value *v, uint64_t *out)
{
    if (!v || v->kind != IMAP_ATOM || v->len == 0)
        return -1;
    uint64_t n = 0;
    for (size_t i = 0; i < v->len; i++) {
        unsigned char c = (unsigned char)v->data[i];
        if (!is_digit(c))
            return -1;
        unsigned dig = c - '0';
        if (n > (UINT64_MAX - dig) / 10)
            return -1;
        n = n * 10 + dig;
    }
    *out = n;
    return 0;
}

const struct imap_value *
imap_fetch_item(const struct imap_value *list, const char *name)
{
    if (!list || list->kind != IMAP_LIST)
        return NULL;
    for (size_t i = 0; i + 1 < list->n; i += 2)
        if (imap_value_is(&list->items[i], name))
            return &list->items[i + 1];
    return NULL;
}

/* Command arguments */

/* Strict RFC 3501 ATOM-CHAR, for what we send. */
static bool
is_strict_atom_char(unsigned char c)
{
    if (c <= 0x20 || c >= 0x7f)
        return false;
    return !strchr("(){%*\"\\]", c);
}

enum astring_form { AS_ATOM, AS_QUOTED, AS_LITERAL };

static enum astring_form
astring_form(const char *s, size_t len)
{
    bool atom = len > 0 && !util_ascii_eq(s, len, "NIL");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e)
            return AS_LITERAL;
        if (atom && !is_strict_atom_char(c))
            atom = false;
    }
    return atom ? AS_ATOM : AS_QUOTED;
}

bool
imap_astring_needs_literal(const char *s, size_t len)
{
    return astring_form(s, len) == AS_LITERAL;
}

int
imap_append_astring(struct dynbuf *b, const char *s, size_t len, bool literal_plus)
{
    size_t orig = b->len;
    int r = 0;
    switch (astring_form(s, len)) {
    case AS_ATOM:
        r = dynbuf_add(b, s, len);
        break;
    case AS_QUOTED:
        r = dynbuf_addc(b, '"');
        for (size_t i = 0; i < len && r == 0; i++) {
            if (s[i] == '"' || s[i] == '\\')
                r = dynbuf_addc(b, '\\');
            if (r == 0)
                r = dynbuf_addc(b, s[i]);
        }
        if (r == 0)
            r = dynbuf_addc(b, '"');
        break;
    case AS_LITERAL:
        r = dynbuf_printf(b, "{%zu%s}\r\n", len, literal_plus ? "+" : "");
        if (r == 0)
            r = dynbuf_add(b, s, len);
        break;
    }
    if (r != 0 && b->data) {
        b->len = orig;
        b->data[orig] = '\0';
    }
    return r;
}

/* Sequence sets */

void
imap_seqset_begin(struct imap_seqset_iter *it, const char *s, size_t len)
{
    /* An empty set is malformed: mark it like an iterator that failed. */
    it->p = len ? s : NULL;
    it->end = len ? s + len : NULL;
}

static int
seq_number(struct imap_seqset_iter *it, uint32_t *out)
{
    if (it->p == it->end)
        return -1;
    if (*it->p == '*') {
        it->p++;
        *out = UINT32_MAX;
        return 0;
    }
    if (*it->p < '1' || *it->p > '9')
        return -1;
    uint64_t n = 0;
    while (it->p < it->end && is_digit((unsigned char)*it->p)) {
        n = n * 10 + (uint64_t)(*it->p - '0');
        if (n > UINT32_MAX)
            return -1;
        it->p++;
    }
    *out = (uint32_t)n;
    return 0;
}

int
imap_seqset_next(struct imap_seqset_iter *it, uint32_t *lo, uint32_t *hi)
{
    if (!it->p)
        return -1;
    if (it->p == it->end)
        return 0;
    uint32_t a, b;
    if (seq_number(it, &a) < 0)
        goto bad;
    b = a;
    if (it->p < it->end && *it->p == ':') {
        it->p++;
        if (seq_number(it, &b) < 0)
            goto bad;
    }
    if (it->p < it->end) {
        /* A separator must be followed by another range. */
        if (*it->p != ',' || ++it->p == it->end)
            goto bad;
    }
    *lo = a < b ? a : b;
    *hi = a < b ? b : a;
    return 1;
bad:
    it->p = it->end = NULL;
    return -1;
}

int
imap_seqset_format(struct dynbuf *b, const uint32_t *uids, size_t n)
{
    if (n == 0)
        return -1;
    size_t orig = b->len;
    int r = 0;
    for (size_t i = 0; i < n && r == 0;) {
        if (uids[i] == 0 || (i > 0 && uids[i] <= uids[i - 1])) {
            r = -1;
            break;
        }
        size_t j = i;
        while (j + 1 < n && uids[j + 1] == uids[j] + 1 && uids[j] != UINT32_MAX)
            j++;
        if (j == i)
            r = dynbuf_printf(b, "%s%u", i ? "," : "", uids[i]);
        else
            r = dynbuf_printf(b, "%s%u:%u", i ? "," : "", uids[i], uids[j]);
        i = j + 1;
    }
    if (r != 0 && b->data) {
        b->len = orig;
        b->data[orig] = '\0';
    }
    return r;
}
