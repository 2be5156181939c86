/* imap_body: choosing and assembling what headers mode keeps of a message. */
#include "sync/imap_body.h"

#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 16
#define MAX_OMITTED_LINES 50

void
body_plan_clear(struct body_plan *p)
{
    free(p->omitted);
    p->omitted = NULL;
}

static bool
is_str(const struct imap_value *v)
{
    return v && v->kind == IMAP_STRING;
}

static bool
str_eq(const struct imap_value *v, const char *s)
{
    return is_str(v) && util_ascii_eq(v->data, v->len, s);
}

/* A multipart body is a list whose first element is a list. */
static bool
is_multipart(const struct imap_value *b)
{
    return b->kind == IMAP_LIST && b->n >= 2 && b->items[0].kind == IMAP_LIST;
}

/* Number of child parts of a multipart (the leading lists). */
static size_t
nparts(const struct imap_value *b)
{
    size_t k = 0;
    while (k < b->n && b->items[k].kind == IMAP_LIST)
        k++;
    return k;
}

/* The value of parameter `name` in a body-fld-param list, or NULL. */
static const struct imap_value *
param(const struct imap_value *params, const char *name)
{
    if (!params || params->kind != IMAP_LIST)
        return NULL;
    for (size_t i = 0; i + 1 < params->n; i += 2)
        if (str_eq(&params->items[i], name) && is_str(&params->items[i + 1]))
            return &params->items[i + 1];
    return NULL;
}

/* Single part: is it an attachment (Content-Disposition: attachment)? */
static bool
is_attachment(const struct imap_value *b)
{
    /* text parts have one field more (lines) before the extension data */
    bool text = str_eq(&b->items[0], "TEXT");
    bool msg = str_eq(&b->items[0], "MESSAGE") && str_eq(&b->items[1], "RFC822");
    size_t dsp = msg ? 11 : text ? 9 : 8;
    if (b->n <= dsp || b->items[dsp].kind != IMAP_LIST || b->items[dsp].n < 1)
        return false;
    return str_eq(&b->items[dsp].items[0], "ATTACHMENT");
}

static const struct imap_value *
disposition_params(const struct imap_value *b)
{
    bool text = str_eq(&b->items[0], "TEXT");
    bool msg = str_eq(&b->items[0], "MESSAGE") && str_eq(&b->items[1], "RFC822");
    size_t dsp = msg ? 11 : text ? 9 : 8;
    if (b->n <= dsp || b->items[dsp].kind != IMAP_LIST || b->items[dsp].n < 2)
        return NULL;
    return &b->items[dsp].items[1];
}

static bool
well_formed_part(const struct imap_value *b)
{
    return b->kind == IMAP_LIST && b->n >= 7 && is_str(&b->items[0]) && is_str(&b->items[1]);
}

static bool
is_signed_or_encrypted(const struct imap_value *b)
{
    if (is_multipart(b)) {
        const struct imap_value *sub = &b->items[nparts(b)];
        return str_eq(sub, "SIGNED") || str_eq(sub, "ENCRYPTED");
    }
    return well_formed_part(b) && str_eq(&b->items[0], "APPLICATION") &&
           (str_eq(&b->items[1], "PKCS7-MIME") || str_eq(&b->items[1], "X-PKCS7-MIME") ||
            str_eq(&b->items[1], "PGP-ENCRYPTED"));
}

struct walk {
    char plain[64], html[64]; /* first candidates, "" when none */
    bool protect;             /* a signed or encrypted part somewhere */
    bool bad;                 /* something we do not understand */
};

static void
walk(const struct imap_value *b, const char *sec, int depth, struct walk *w)
{
    if (depth > MAX_DEPTH || b->kind != IMAP_LIST) {
        w->bad = true;
        return;
    }
    if (is_signed_or_encrypted(b))
        w->protect = true;
    if (is_multipart(b)) {
        size_t k = nparts(b);
        for (size_t i = 0; i < k; i++) {
            char child[64];
            int n = sec[0] ? snprintf(child, sizeof child, "%s.%zu", sec, i + 1)
                           : snprintf(child, sizeof child, "%zu", i + 1);
            if (n < 0 || (size_t)n >= sizeof child) {
                w->bad = true;
                return;
            }
            walk(&b->items[i], child, depth + 1, w);
        }
        return;
    }
    if (!well_formed_part(b)) {
        w->bad = true;
        return;
    }
    if (!str_eq(&b->items[0], "TEXT") || is_attachment(b))
        return;
    const char *s = sec[0] ? sec : "1";
    if (str_eq(&b->items[1], "PLAIN") && !w->plain[0])
        snprintf(w->plain, sizeof w->plain, "%s", s);
    else if (str_eq(&b->items[1], "HTML") && !w->html[0])
        snprintf(w->html, sizeof w->html, "%s", s);
}

static void
describe(const struct imap_value *b, const char *sec, const char *keep, int depth,
         struct dynbuf *out, int *lines)
{
    if (depth > MAX_DEPTH || b->kind != IMAP_LIST)
        return;
    if (is_multipart(b)) {
        size_t k = nparts(b);
        for (size_t i = 0; i < k; i++) {
            char child[64];
            if (sec[0])
                snprintf(child, sizeof child, "%s.%zu", sec, i + 1);
            else
                snprintf(child, sizeof child, "%zu", i + 1);
            describe(&b->items[i], child, keep, depth + 1, out, lines);
        }
        return;
    }
    const char *s = sec[0] ? sec : "1";
    if (!well_formed_part(b) || strcmp(s, keep) == 0)
        return;
    if (++*lines > MAX_OMITTED_LINES) {
        if (*lines == MAX_OMITTED_LINES + 1)
            dynbuf_adds(out, "  ... and more\r\n");
        return;
    }
    const struct imap_value *name = param(disposition_params(b), "FILENAME");
    if (!name)
        name = param(&b->items[2], "NAME");
    uint64_t size = 0;
    imap_value_u64(&b->items[6], &size);
    dynbuf_adds(out, "  ");
    if (name) {
        /* Keep the line a line: no CR/LF from the server. */
        for (size_t i = 0; i < name->len && i < 200; i++)
            dynbuf_addc(out, name->data[i] == '\r' || name->data[i] == '\n' ? ' '
                                                                            : name->data[i]);
        dynbuf_adds(out, " ");
    }
    dynbuf_printf(out, "(%.*s/%.*s, %llu bytes)\r\n", (int)(b->items[0].len > 60 ? 60 : b->items[0].len),
                  b->items[0].data, (int)(b->items[1].len > 60 ? 60 : b->items[1].len),
                  b->items[1].data, (unsigned long long)size);
}

void
body_plan_make(const struct imap_value *bs, struct body_plan *out)
{
    memset(out, 0, sizeof *out);
    out->kind = BODY_PLAN_WHOLE;
    out->omitted = xstrdup("");
    if (!bs || bs->kind != IMAP_LIST)
        return;
    struct walk w = {0};
    walk(bs, "", 0, &w);
    if (w.bad || w.protect)
        return;
    if (!is_multipart(bs)) {
        /* One part: text is the message itself; anything else is kept out
         * and replaced by a note. */
        if (str_eq(&bs->items[0], "TEXT") && !is_attachment(bs))
            return;
        out->kind = BODY_PLAN_HEADER;
    } else {
        const struct imap_value *b = param(&bs->items[nparts(bs) + 1], "BOUNDARY");
        if (nparts(bs) + 1 >= bs->n || !b || b->len == 0 || b->len >= sizeof out->boundary ||
            memchr(b->data, '\r', b->len) || memchr(b->data, '\n', b->len))
            return; /* cannot rebuild it: keep it whole */
        memcpy(out->boundary, b->data, b->len);
        out->boundary[b->len] = '\0';
        out->alternative = str_eq(&bs->items[nparts(bs)], "ALTERNATIVE");
        const char *keep = w.plain[0] ? w.plain : w.html;
        if (keep[0]) {
            out->kind = BODY_PLAN_PART;
            snprintf(out->section, sizeof out->section, "%s", keep);
        } else {
            out->kind = BODY_PLAN_HEADER;
        }
    }
    struct dynbuf d;
    dynbuf_init(&d, 1 << 16);
    int lines = 0;
    describe(bs, "", out->kind == BODY_PLAN_PART ? out->section : "", 0, &d, &lines);
    free(out->omitted);
    out->omitted = dynbuf_take(&d);
}

static int
add_note(struct dynbuf *out, const struct body_plan *plan)
{
    int r = dynbuf_adds(out, "This message is kept in part here: its folder syncs headers "
                             "and text only (user.sync.mode = headers).\r\n"
                             "Not downloaded:\r\n");
    if (r == 0)
        r = dynbuf_adds(out, plan->omitted[0] ? plan->omitted : "  (nothing else)\r\n");
    if (r == 0)
        r = dynbuf_adds(out, "Read the file while online to fetch the whole message.\r\n");
    return r;
}

/* The header without its Content-Type and Content-Transfer-Encoding fields
 * (with their folded lines), for a single-part message whose only part is
 * replaced by the note. */
static int
add_header_without_content_fields(struct dynbuf *out, const char *h, size_t len)
{
    size_t i = 0;
    bool skipping = false;
    int r = 0;
    while (i < len && r == 0) {
        size_t e = i;
        while (e < len && h[e] != '\n')
            e++;
        size_t line_end = e < len ? e + 1 : e;
        bool cont = h[i] == ' ' || h[i] == '\t';
        bool blank = (e == i) || (e == i + 1 && h[i] == '\r');
        if (blank)
            break;
        if (!cont)
            skipping = (e - i >= 13 && strncasecmp(h + i, "Content-Type:", 13) == 0) ||
                       (e - i >= 26 &&
                        strncasecmp(h + i, "Content-Transfer-Encoding:", 26) == 0);
        if (!skipping)
            r = dynbuf_add(out, h + i, line_end - i);
        i = line_end;
    }
    return r;
}

int
body_assemble(struct dynbuf *out, const struct body_plan *plan, const char *header,
              size_t header_len, const char *part_mime, size_t part_mime_len, const char *part,
              size_t part_len)
{
    int r = 0;
    if (plan->kind == BODY_PLAN_HEADER && !plan->boundary[0]) {
        r = add_header_without_content_fields(out, header, header_len);
        if (r == 0)
            r = dynbuf_adds(out, "Content-Type: text/plain; charset=utf-8\r\n"
                                 "Content-Transfer-Encoding: 8bit\r\n\r\n");
        if (r == 0)
            r = add_note(out, plan);
        return r;
    }
    r = dynbuf_add(out, header, header_len);
    if (r == 0 && plan->kind == BODY_PLAN_PART) {
        r = dynbuf_printf(out, "--%s\r\n", plan->boundary);
        if (r == 0) {
            if (part_mime && part_mime_len)
                r = dynbuf_add(out, part_mime, part_mime_len);
            else
                r = dynbuf_adds(out, "Content-Type: text/plain\r\n\r\n");
        }
        if (r == 0)
            r = dynbuf_add(out, part ? part : "", part ? part_len : 0);
        if (r == 0)
            r = dynbuf_adds(out, "\r\n");
    }
    if (r == 0 && !(plan->kind == BODY_PLAN_PART && plan->alternative)) {
        r = dynbuf_printf(out, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                               "Content-Transfer-Encoding: 8bit\r\n\r\n",
                          plan->boundary);
        if (r == 0)
            r = add_note(out, plan);
    }
    if (r == 0)
        r = dynbuf_printf(out, "--%s--\r\n", plan->boundary);
    return r;
}
