/* utf8: strict UTF-8 decoding and encoding shared by the modules that read
 * names and text from servers and users. */
#ifndef MAILFS_UTF8_H
#define MAILFS_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s (n > 0 bytes available), storing
 * its code point, or 0 when invalid (overlong forms, surrogates, values past
 * U+10FFFF, truncated sequences). */
size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp);
/* true when s[0..n) is entirely valid UTF-8. */
bool utf8_valid(const char *s, size_t n);
/* Where to cut s[0..len) so that at most `max` bytes remain without
 * splitting a sequence. */
size_t utf8_cut(const char *s, size_t len, size_t max);
/* Encode a code point (<= U+10FFFF) into b; returns its length (1-4). */
size_t utf8_encode(uint32_t cp, char b[4]);

#endif
