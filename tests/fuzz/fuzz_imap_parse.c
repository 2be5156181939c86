/* libFuzzer entry point for sync/imap_parse: feeds the input whole and in
 * pieces of varying sizes, checks both give the same responses, and walks
 * every value through the helpers (mUTF-7, sequence sets, astring quoting). */
#include "formats/mutf7.h"
#include "sync/imap_parse.h"
#include "common/dynbuf.h"
#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BIG_CAP (1u << 20)
#define MAX_HELPER_CALLS 64

static void
dump_value(struct dynbuf *b, const struct imap_value *v, int depth)
{
    if (depth > 64)
        abort(); /* the parser promised a bounded depth */
    switch (v->kind) {
    case IMAP_ATOM:
    case IMAP_NIL:
        if (v->len == 0 && v->kind == IMAP_ATOM)
            abort(); /* atoms are never empty */
        dynbuf_printf(b, "%c%zu:", v->kind == IMAP_ATOM ? 'A' : 'N', v->len);
        dynbuf_add(b, v->data, v->len);
        break;
    case IMAP_STRING:
        dynbuf_printf(b, "%c%zu:", v->literal ? 'L' : 'S', v->len);
        dynbuf_add(b, v->data, v->len);
        break;
    case IMAP_LIST:
        if (v->n && !v->items)
            abort();
        dynbuf_printf(b, "(%zu", v->n);
        for (size_t i = 0; i < v->n; i++) {
            dynbuf_addc(b, ' ');
            dump_value(b, &v->items[i], depth + 1);
        }
        dynbuf_addc(b, ')');
        break;
    default:
        abort();
    }
}

static void
dump_response(struct dynbuf *b, const struct imap_response *r)
{
    if (!r->tag || !r->name || !r->text)
        abort();
    if (r->code_args.kind != IMAP_LIST || r->args.kind != IMAP_LIST)
        abort();
    dynbuf_printf(b, "%d %d [%s] [%s] %d %u [%s] |%s| ", r->kind, r->status, r->tag,
                  r->code ? r->code : "-", r->has_number, r->number, r->name, r->text);
    dump_value(b, &r->code_args, 0);
    dynbuf_addc(b, ' ');
    dump_value(b, &r->args, 0);
    dynbuf_addc(b, '\n');
}

static uint32_t
rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Decoding then encoding a valid mUTF-7 name gives it back, and the other
 * way round for UTF-8. */
static void
check_mutf7(const char *s, size_t len)
{
    char *d = mutf7_decode(s, len);
    if (d) {
        char *e = mutf7_encode(d);
        if (!e || strlen(e) != len || memcmp(e, s, len) != 0)
            abort();
        free(e);
        free(d);
    }
    if (memchr(s, '\0', len))
        return;
    char *z = xstrndup(s, len);
    char *e = mutf7_encode(z);
    if (e) {
        char *back = mutf7_decode(e, strlen(e));
        if (!back || strcmp(back, z) != 0)
            abort();
        free(back);
        free(e);
    }
    free(z);
}

/* What imap_append_astring writes, the parser reads back unchanged. */
static void
check_astring(const char *s, size_t len)
{
    struct dynbuf b;
    dynbuf_init(&b, 1 << 16);
    dynbuf_adds(&b, "* X ");
    if (imap_append_astring(&b, s, len, len & 1) != 0)
        abort();
    bool lit = b.data[4] == '{';
    if (lit != imap_astring_needs_literal(s, len))
        abort();
    dynbuf_adds(&b, "\r\n");
    struct imap_parser *p = imap_parser_new(1 << 16);
    struct imap_response *r;
    if (imap_parser_feed(p, b.data, b.len) != 0 ||
        imap_parser_next(p, &r) != IMAP_PARSE_OK)
        abort();
    if (r->args.n != 1 || r->args.items[0].kind == IMAP_NIL ||
        r->args.items[0].len != len || memcmp(r->args.items[0].data, s, len) != 0)
        abort();
    imap_parser_free(p);
    dynbuf_free(&b);
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Ranges come out normalised; formatting the set they cover and parsing that
 * again gives the same set. */
static void
check_seqset(const char *s, size_t len)
{
    struct imap_seqset_iter it;
    uint32_t lo, hi, uids[256];
    size_t n = 0;
    bool small = true;
    imap_seqset_begin(&it, s, len);
    int r;
    while ((r = imap_seqset_next(&it, &lo, &hi)) == 1) {
        if (lo > hi || lo == 0)
            abort();
        for (uint64_t v = lo; v <= hi && small; v++) {
            if (n == 256)
                small = false;
            else
                uids[n++] = (uint32_t)v;
        }
    }
    if (r != 0 || !small || n == 0)
        return;
    qsort(uids, n, sizeof(uids[0]), cmp_u32);
    size_t m = 1;
    for (size_t i = 1; i < n; i++)
        if (uids[i] != uids[m - 1])
            uids[m++] = uids[i];
    struct dynbuf b;
    dynbuf_init(&b, 1 << 16);
    if (imap_seqset_format(&b, uids, m) != 0)
        abort();
    size_t k = 0;
    imap_seqset_begin(&it, b.data, b.len);
    while ((r = imap_seqset_next(&it, &lo, &hi)) == 1)
        for (uint64_t v = lo; v <= hi; v++)
            if (k >= m || uids[k++] != v)
                abort();
    if (r != 0 || k != m)
        abort();
    dynbuf_free(&b);
}

static void
walk_helpers(const struct imap_value *v, int *budget)
{
    if (*budget <= 0)
        return;
    --*budget;
    uint64_t n;
    switch (v->kind) {
    case IMAP_ATOM:
        imap_value_u64(v, &n);
        imap_value_is(v, "NIL");
        check_seqset(v->data, v->len);
        /* fall through */
    case IMAP_STRING:
        if (v->len < 256) {
            check_mutf7(v->data, v->len);
            check_astring(v->data, v->len);
        }
        break;
    case IMAP_LIST:
        imap_fetch_item(v, "BODY[]");
        for (size_t i = 0; i < v->n; i++)
            walk_helpers(&v->items[i], budget);
        break;
    case IMAP_NIL:
        break;
    }
}

/* Feed `data` in pieces (all at once when seed is 0), draining after each;
 * returns the final status and dumps the responses into out. */
static enum imap_parse_result
run(const uint8_t *data, size_t size, size_t cap, uint32_t seed, struct dynbuf *out,
    bool helpers)
{
    struct imap_parser *p = imap_parser_new(cap);
    enum imap_parse_result res = IMAP_PARSE_MORE;
    struct imap_response *r;
    int budget = MAX_HELPER_CALLS;
    size_t off = 0;
    do {
        size_t n = size - off;
        if (seed) {
            uint32_t x = rnd(&seed);
            size_t want = (x & 3) == 0 ? (x >> 8) % 4096 : 1 + (x >> 8) % 16;
            if (want < n)
                n = want;
        }
        imap_parser_feed(p, (const char *)data + off, n);
        off += n;
        while ((res = imap_parser_next(p, &r)) == IMAP_PARSE_OK) {
            /* Sometimes feed while holding a response: it must not move. */
            if (seed && (rnd(&seed) & 7) == 0 && off < size) {
                size_t m = 1 + rnd(&seed) % 8;
                if (m > size - off)
                    m = size - off;
                imap_parser_feed(p, (const char *)data + off, m);
                off += m;
            }
            dump_response(out, r);
            if (helpers) {
                walk_helpers(&r->args, &budget);
                walk_helpers(&r->code_args, &budget);
            }
        }
    } while (res == IMAP_PARSE_MORE && off < size);
    if (res == IMAP_PARSE_ERROR || res == IMAP_PARSE_TOO_BIG) {
        const char *e = imap_parser_error(p);
        if (!e || !*e || imap_parser_next(p, &r) != res || r)
            abort();
    }
    imap_parser_free(p);
    return res;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t seed = ((uint32_t)data[0] << 8 | data[1]) + 1;
    size_t small_cap = 16 + (size_t)data[0] * 4;
    data += 2;
    size -= 2;

    struct dynbuf whole, pieces, capped;
    dynbuf_init(&whole, SIZE_MAX / 2);
    dynbuf_init(&pieces, SIZE_MAX / 2);
    dynbuf_init(&capped, SIZE_MAX / 2);
    dynbuf_adds(&whole, "");
    dynbuf_adds(&pieces, "");
    dynbuf_adds(&capped, "");

    enum imap_parse_result a = run(data, size, BIG_CAP, 0, &whole, true);
    enum imap_parse_result b = run(data, size, BIG_CAP, seed, &pieces, false);
    /* Splitting never changes what comes out. */
    if (a != b || whole.len != pieces.len || memcmp(whole.data, pieces.data, whole.len))
        abort();
    if (a == IMAP_PARSE_OK)
        abort();

    /* A smaller cap only cuts the same sequence short. */
    enum imap_parse_result c = run(data, size, small_cap, seed, &capped, false);
    if (capped.len > whole.len || memcmp(capped.data, whole.data, capped.len))
        abort();
    if (c == IMAP_PARSE_MORE && (a != IMAP_PARSE_MORE || capped.len != whole.len))
        abort();
    if (c == IMAP_PARSE_ERROR && (a != IMAP_PARSE_ERROR || capped.len != whole.len))
        abort();

    if (size < 512)
        check_mutf7((const char *)data, size);
    dynbuf_free(&whole);
    dynbuf_free(&pieces);
    dynbuf_free(&capped);
    return 0;
}
