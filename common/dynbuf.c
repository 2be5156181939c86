/* dynbuf: growable capped byte buffer. */
#include "common/dynbuf.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
dynbuf_init(struct dynbuf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
}

void
dynbuf_free(struct dynbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}

void
dynbuf_reset(struct dynbuf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *
dynbuf_reserve(struct dynbuf *b, size_t n)
{
    if (n > b->cap || b->len > b->cap - n)
        return NULL;
    size_t need = b->len + n + 1;
    if (need > b->alloc) {
        size_t a = b->alloc ? b->alloc : 64;
        while (a < need)
            a *= 2;
        b->data = xrealloc(b->data, a);
        b->alloc = a;
    }
    return b->data + b->len;
}

void
dynbuf_commit(struct dynbuf *b, size_t n)
{
    b->len += n;
    b->data[b->len] = '\0';
}

int
dynbuf_add(struct dynbuf *b, const void *p, size_t n)
{
    char *dst = dynbuf_reserve(b, n);
    if (!dst)
        return -1;
    if (n)
        memcpy(dst, p, n);
    dynbuf_commit(b, n);
    return 0;
}

int
dynbuf_adds(struct dynbuf *b, const char *s)
{
    return dynbuf_add(b, s, strlen(s));
}

int
dynbuf_addc(struct dynbuf *b, char c)
{
    return dynbuf_add(b, &c, 1);
}

int
dynbuf_vprintf(struct dynbuf *b, const char *fmt, va_list ap)
{
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n < 0)
        return -1;
    char *dst = dynbuf_reserve(b, (size_t)n);
    if (!dst)
        return -1;
    vsnprintf(dst, (size_t)n + 1, fmt, ap);
    dynbuf_commit(b, (size_t)n);
    return 0;
}

int
dynbuf_printf(struct dynbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = dynbuf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

void
dynbuf_consume(struct dynbuf *b, size_t n)
{
    if (n >= b->len) {
        dynbuf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *
dynbuf_take(struct dynbuf *b)
{
    char *p = b->data ? b->data : xstrdup("");
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    return p;
}
