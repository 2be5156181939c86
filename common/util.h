/* util: allocation that aborts on exhaustion, and small string and time helpers
 * shared by every module. */
#ifndef MAILFS_UTIL_H
#define MAILFS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Memory exhaustion is not recoverable in a filesystem daemon that must keep
 * its state consistent; these abort with a message instead of returning NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string, owned by the caller. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic time in milliseconds. */
int64_t util_now_ms(void);
/* Wall-clock time, seconds since the epoch. */
int64_t util_now(void);
/* Format `t` as ISO 8601 UTC ("2026-11-24T10:00:00Z") into out[32]. */
void util_iso8601(int64_t t, char out[32]);

/* Case-insensitive ASCII comparison of `a` (len bytes) with the C string `b`. */
bool util_ascii_eq(const char *a, size_t len, const char *b);

/* Write all `n` bytes to fd, retrying on EINTR and short writes: 0 or -errno. */
int util_write_all(int fd, const void *p, size_t n);
/* mkdir -p with the given mode for each created component: 0 or -errno. */
int util_mkdirs(const char *path, unsigned mode);

#endif
