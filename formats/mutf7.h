/* mutf7: modified UTF-7 mailbox names of IMAP (RFC 3501 section 5.1.3). */
#ifndef MAILFS_MUTF7_H
#define MAILFS_MUTF7_H

#include <stddef.h>

/* Both return a new NUL-terminated string owned by the caller, or NULL for
 * invalid input (unterminated or misplaced shifts, bad base64, leftover bits,
 * encoded printable ASCII, unpaired surrogates, NUL or control bytes). */
char *mutf7_decode(const char *s, size_t len);
char *mutf7_encode(const char *utf8);

#endif
