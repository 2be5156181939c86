/* mail: reading what mailfs needs from an RFC 5322 message: the header block,
 * Date, Subject (RFC 2047 decoded to UTF-8), Message-ID. Tolerant of what real
 * mail holds: folded lines, bare LF, 8-bit headers in UTF-8 or Latin-1,
 * broken encoded-words, missing or malformed fields. Never reads past `len`. */
#ifndef MAILFS_MAIL_H
#define MAILFS_MAIL_H

#include <stddef.h>
#include <stdint.h>

struct mail_info {
    int64_t date;      /* Date: as seconds since the epoch (UTC), or -1 */
    char *subject;     /* decoded, unfolded, valid UTF-8; NULL when absent; owned */
    char *message_id;  /* Message-ID without surrounding space, "<...>" kept;
                          NULL when absent; owned */
};

/* Length of the header block, including the empty line that ends it (CRLF
 * CRLF, or LF LF); `len` when the message has no body separator. */
size_t mail_header_len(const char *msg, size_t len);

/* Fill *out from the message's header block. Returns 0; fields that are
 * missing or unreadable are left -1 / NULL. Free with mail_info_free. */
int mail_info_parse(const char *msg, size_t len, struct mail_info *out);
void mail_info_free(struct mail_info *mi);

/* The unfolded raw value of the first header field called `name`
 * (case-insensitive), without the leading space; NULL when absent. Owned by
 * the caller. */
char *mail_header_get(const char *msg, size_t len, const char *name);

/* Decode an unstructured header value (RFC 2047 encoded-words in any charset
 * iconv knows, adjacent encoded-words joined, raw 8-bit taken as UTF-8 when
 * valid else Latin-1) into valid UTF-8. Owned by the caller; never NULL. */
char *mail_decode_words(const char *s, size_t len);

/* Parse an RFC 5322 date-time (also the obsolete forms: two-digit years,
 * named zones, missing seconds or weekday). 0 and *out, or -1. */
int mail_parse_date(const char *s, size_t len, int64_t *out);

/* An unstructured header value for a message we write: printable ASCII as
 * it is, anything else as RFC 2047 "B" encoded-words of UTF-8 (each at most
 * 75 characters, split between characters, joined by folding). Owned. */
char *mail_encode_words(const char *utf8);

/* An RFC 5322 date-time in UTC ("Wed, 25 Nov 2026 12:00:00 +0000"). */
void mail_format_date(int64_t t, char out[40]);

#endif
