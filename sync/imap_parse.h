/* imap_parse: a streaming, literal-aware parser of IMAP server responses
 * (RFC 3501 section 7 and 9, plus RFC 7162 and RFC 4731 forms), and the
 * small codecs an IMAP client needs: quoting of command arguments and
 * sequence sets (modified UTF-7 names are in formats/mutf7.h).
 *
 * Bytes from the server are fed in as they arrive; complete responses (a
 * line plus every literal it announces) come out one at a time as a tree of
 * values. Every size is capped: a literal or response larger than the cap is
 * an error, never an allocation the server chose.
 *
 * Ownership: the parser owns every response it returns and every value and
 * byte inside; they stay valid until the next call of imap_parser_next() or
 * imap_parser_free(). Nothing here touches the network. */
#ifndef MAILFS_IMAP_PARSE_H
#define MAILFS_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"

enum imap_value_kind {
    IMAP_ATOM,    /* atom, number, flag (\Seen), or a FETCH item name such as
                     BODY[HEADER.FIELDS (DATE)]<0> (brackets kept whole) */
    IMAP_STRING,  /* quoted string (unescaped) or literal */
    IMAP_NIL,     /* the atom NIL */
    IMAP_LIST,    /* parenthesised list */
};

struct imap_value {
    enum imap_value_kind kind;
    bool literal;        /* IMAP_STRING came as a {n} literal */
    const char *data;    /* ATOM/STRING bytes; not NUL-terminated for literals
                            in general; borrowed from the parser */
    size_t len;          /* length of data */
    struct imap_value *items; /* IMAP_LIST: the elements; borrowed */
    size_t n;            /* IMAP_LIST: the number of elements */
};

enum imap_resp_kind {
    IMAP_RESP_UNTAGGED,     /* "* ..." */
    IMAP_RESP_TAGGED,       /* "tag OK|NO|BAD ..." */
    IMAP_RESP_CONTINUATION, /* "+ ..." */
};

enum imap_status {
    IMAP_ST_NONE,    /* not a status response (e.g. "* 3 EXISTS") */
    IMAP_ST_OK,
    IMAP_ST_NO,
    IMAP_ST_BAD,
    IMAP_ST_BYE,
    IMAP_ST_PREAUTH,
};

struct imap_response {
    enum imap_resp_kind kind;
    const char *tag;          /* TAGGED: the tag, NUL-terminated */
    enum imap_status status;  /* TAGGED always; UNTAGGED OK/NO/BAD/BYE/PREAUTH */

    /* Status responses: optional response code "[NAME args...]" and the text.
     * code is NULL when there is none; code_args holds the tokens after the
     * code name (e.g. UIDVALIDITY 3857529045 -> one ATOM; PERMANENTFLAGS
     * (\Seen) -> one LIST). */
    const char *code;         /* upper-cased, NUL-terminated */
    struct imap_value code_args; /* kind IMAP_LIST */
    const char *text;         /* the rest of the line, NUL-terminated */

    /* Untagged data responses: "* 12 FETCH (...)" has number 12 and name
     * "FETCH"; "* CAPABILITY IMAP4rev1 ..." has no number and name
     * "CAPABILITY". name is upper-cased and NUL-terminated; args holds the
     * remaining tokens as a list. CONTINUATION: text only. */
    bool has_number;
    uint32_t number;
    const char *name;
    struct imap_value args;   /* kind IMAP_LIST */
};

enum imap_parse_result {
    IMAP_PARSE_OK,        /* *out holds the next response */
    IMAP_PARSE_MORE,      /* no complete response yet: feed more bytes */
    IMAP_PARSE_ERROR,     /* malformed input; the connection is unusable */
    IMAP_PARSE_TOO_BIG,   /* a literal or response exceeds the cap */
};

struct imap_parser;

/* max_response caps one response including all its literals (bytes). */
struct imap_parser *imap_parser_new(size_t max_response);
void imap_parser_free(struct imap_parser *p);
/* Append bytes read from the server. Returns 0, or -1 when the buffered but
 * unparsed data would exceed the cap (IMAP_PARSE_TOO_BIG follows). */
int imap_parser_feed(struct imap_parser *p, const char *data, size_t len);
/* Take the next complete response. Work is incremental: feeding a large
 * literal in small pieces costs linear time overall. */
enum imap_parse_result imap_parser_next(struct imap_parser *p,
                                        struct imap_response **out);
/* A human-readable reason for the last ERROR / TOO_BIG (static or owned by
 * the parser). */
const char *imap_parser_error(const struct imap_parser *p);

/* Helpers over values. */
/* true when v is an ATOM equal (ASCII case-insensitive) to s. */
bool imap_value_is(const struct imap_value *v, const char *s);
/* Parse an ATOM holding a decimal number that fits in 64 bits. 0 or -1. */
int imap_value_u64(const struct imap_value *v, uint64_t *out);
/* In a FETCH attribute list (name value name value ...), the value for the
 * item named `name` (case-insensitive, exact including brackets), or NULL. */
const struct imap_value *imap_fetch_item(const struct imap_value *list,
                                         const char *name);

/* Command arguments. */
/* Append s as an IMAP astring: an atom when safe, a quoted string when
 * possible, otherwise a literal; with literal_plus a non-synchronising
 * "{n+}" literal, else "{n}" (the caller must then wait for "+" before
 * sending the bytes: imap_needs_sync_literal() tells). 0 or -1 at cap. */
int imap_append_astring(struct dynbuf *b, const char *s, size_t len,
                        bool literal_plus);
/* true when imap_append_astring would emit a literal for s. */
bool imap_astring_needs_literal(const char *s, size_t len);

/* Sequence sets ("1:3,5,7:*"). Iterate the ranges in order; '*' reads as
 * UINT32_MAX. */
struct imap_seqset_iter {
    const char *p, *end;
};
void imap_seqset_begin(struct imap_seqset_iter *it, const char *s, size_t len);
/* Returns 1 and a range (lo <= hi after normalising "5:3"), 0 at the end, -1
 * on malformed input. */
int imap_seqset_next(struct imap_seqset_iter *it, uint32_t *lo, uint32_t *hi);
/* Append a compact sequence set for the sorted, duplicate-free uids[]. */
int imap_seqset_format(struct dynbuf *b, const uint32_t *uids, size_t n);

#endif
