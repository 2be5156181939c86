/* flags: canonical mail flags (see flags.h). */
#include "formats/flags.h"

#include "common/util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FLAGS_MAX 64
#define FLAG_LEN_MAX 128

static const char *const system_names[][2] = {
    {"seen", "\\Seen"},       {"answered", "\\Answered"}, {"flagged", "\\Flagged"},
    {"deleted", "\\Deleted"}, {"draft", "\\Draft"},
};

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* An IMAP atom character that a keyword may hold (RFC 3501 atom-char minus
 * resp-specials; '\' only starts system flags). */
static bool
keyword_char(unsigned char c)
{
    if (c <= 0x20 || c >= 0x7f)
        return false;
    return !strchr("(){%*\"\\]", c);
}

void
flags_builder_add(struct flags_builder *b, const char *flag, size_t len)
{
    for (size_t k = 0; k < ARRAY_SIZE(system_names); k++) {
        const char *imap = system_names[k][1];
        if (len == strlen(imap) && strncasecmp(flag, imap, len) == 0) {
            b->system |= 1u << k;
            return;
        }
    }
    if (len == 0 || flag[0] == '\\')
        return; /* \Recent and unknown system flags are not kept */
    if (b->n == b->alloc) {
        b->alloc = b->alloc ? b->alloc * 2 : 8;
        b->keywords = xrealloc(b->keywords, b->alloc * sizeof *b->keywords);
    }
    b->keywords[b->n++] = xstrndup(flag, len);
}

char *
flags_builder_take(struct flags_builder *b)
{
    struct dynbuf out;
    dynbuf_init(&out, 1 << 20);
    for (size_t k = 0; k < ARRAY_SIZE(system_names); k++)
        if (b->system & (1u << k)) {
            if (out.len)
                dynbuf_addc(&out, ' ');
            dynbuf_adds(&out, system_names[k][0]);
        }
    if (b->n > 1)
        qsort(b->keywords, b->n, sizeof *b->keywords, cmp_str);
    for (size_t i = 0; i < b->n; i++) {
        if (i == 0 || strcmp(b->keywords[i], b->keywords[i - 1]) != 0) {
            if (out.len)
                dynbuf_addc(&out, ' ');
            dynbuf_adds(&out, b->keywords[i]);
        }
    }
    for (size_t i = 0; i < b->n; i++)
        free(b->keywords[i]);
    free(b->keywords);
    memset(b, 0, sizeof *b);
    return dynbuf_take(&out);
}

char *
flags_parse(const char *text, size_t len)
{
    struct flags_builder b = {0};
    size_t count = 0;
    bool ok = true;
    size_t i = 0;
    while (ok && i < len) {
        while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n'))
            i++;
        size_t start = i;
        while (i < len && text[i] != ' ' && text[i] != '\t' && text[i] != '\n')
            i++;
        size_t n = i - start;
        if (n == 0)
            break;
        const char *w = text + start;
        if (++count > FLAGS_MAX || n > FLAG_LEN_MAX) {
            ok = false;
            break;
        }
        bool known = false;
        for (size_t k = 0; k < ARRAY_SIZE(system_names); k++) {
            const char *name = system_names[k][0];
            const char *imap = system_names[k][1];
            if ((n == strlen(name) && strncasecmp(w, name, n) == 0) ||
                (n == strlen(imap) && strncasecmp(w, imap, n) == 0)) {
                b.system |= 1u << k;
                known = true;
            }
        }
        if (known)
            continue;
        for (size_t k = 0; k < n; k++)
            if (!keyword_char((unsigned char)w[k]))
                ok = false;
        if (ok)
            flags_builder_add(&b, w, n);
    }
    char *r = flags_builder_take(&b);
    if (!ok) {
        free(r);
        return NULL;
    }
    return r;
}

int
flags_to_imap(struct dynbuf *out, const char *canonical)
{
    int r = dynbuf_addc(out, '(');
    const char *p = canonical;
    bool first = true;
    while (r == 0 && *p) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        if (e == p)
            break;
        const char *word = NULL;
        for (size_t k = 0; k < ARRAY_SIZE(system_names); k++)
            if ((size_t)(e - p) == strlen(system_names[k][0]) &&
                strncmp(p, system_names[k][0], (size_t)(e - p)) == 0)
                word = system_names[k][1];
        if (!first)
            r = dynbuf_addc(out, ' ');
        first = false;
        if (r == 0)
            r = word ? dynbuf_adds(out, word) : dynbuf_add(out, p, (size_t)(e - p));
        p = e;
    }
    if (r == 0)
        r = dynbuf_addc(out, ')');
    return r;
}
