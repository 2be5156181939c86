/* dynbuf: a growable byte buffer with a hard size cap (every buffer fed by a
 * server has one; hitting it is an error, never a crash). */
#ifndef MAILFS_DYNBUF_H
#define MAILFS_DYNBUF_H

#include <stdarg.h>
#include <stddef.h>

/* The buffer owns `data`; it is always NUL-terminated when len > 0 or after
 * any successful add, so it can be used as a C string when it holds text. */
struct dynbuf {
    char *data;   /* owned; NULL until the first add */
    size_t len;   /* bytes in use, not counting the terminating NUL */
    size_t alloc; /* bytes allocated */
    size_t cap;   /* the most `len` may ever reach */
};

void dynbuf_init(struct dynbuf *b, size_t cap);
void dynbuf_free(struct dynbuf *b);
/* Forget the contents but keep the allocation. */
void dynbuf_reset(struct dynbuf *b);
/* All adders return 0, or -1 when the cap would be exceeded (the buffer is
 * then unchanged). Memory exhaustion aborts, as in the rest of mailfs. */
int dynbuf_add(struct dynbuf *b, const void *p, size_t n);
int dynbuf_adds(struct dynbuf *b, const char *s);
int dynbuf_addc(struct dynbuf *b, char c);
int dynbuf_printf(struct dynbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int dynbuf_vprintf(struct dynbuf *b, const char *fmt, va_list ap);
/* Make room for at least `n` more bytes; returns a pointer to the free space
 * (the caller writes there then calls dynbuf_commit), or NULL past the cap. */
char *dynbuf_reserve(struct dynbuf *b, size_t n);
void dynbuf_commit(struct dynbuf *b, size_t n);
/* Drop the first `n` bytes. */
void dynbuf_consume(struct dynbuf *b, size_t n);
/* Hand the contents to the caller (who must free() them); the buffer is
 * left empty. Never returns NULL: an empty buffer gives "". */
char *dynbuf_take(struct dynbuf *b);

#endif
