/* imap: one IMAP connection. libcurl (CONNECT_ONLY) connects, does TLS or
 * STARTTLS and logs in; after that mailfs speaks IMAP itself over
 * curl_easy_send/recv: commands are queued and pipelined, responses come
 * back one at a time from the streaming parser (imap_parse.h).
 *
 * A connection belongs to one thread (the sync thread). Nothing here touches
 * the store. */
#ifndef MAILFS_IMAP_H
#define MAILFS_IMAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "sync/error.h"
#include "sync/imap_parse.h"

/* The largest message mailfs downloads: one response holds it whole. */
#define IMAP_MAX_MESSAGE (256u << 20)

struct imap_config {
    const char *url;       /* imap://host[:port] or imaps://...; borrowed */
    const char *user;      /* borrowed */
    const char *password;  /* borrowed; never logged */
    const char *cafile;    /* borrowed; NULL: the system's CAs */
    bool tls_none;         /* plain imap:// allowed (tls = none) */
    int connect_timeout_ms;
    int io_timeout_ms;     /* a command's answer may pause this long */
    atomic_bool *cancel;   /* borrowed; when set, waits give up (may be NULL) */
};

/* Capabilities the client uses, as bits. */
enum imap_caps {
    IMAP_CAP_UIDPLUS = 1 << 0,
    IMAP_CAP_CONDSTORE = 1 << 1,
    IMAP_CAP_QRESYNC = 1 << 2,
    IMAP_CAP_MOVE = 1 << 3,
    IMAP_CAP_IDLE = 1 << 4,
    IMAP_CAP_LITERAL_PLUS = 1 << 5,
    IMAP_CAP_ENABLE = 1 << 6,
    IMAP_CAP_ESEARCH = 1 << 7,
    IMAP_CAP_LIST_STATUS = 1 << 8,
    IMAP_CAP_LITERAL_MINUS = 1 << 9,
};

struct imap_conn;

/* Connect and log in, then read the capabilities (and ENABLE QRESYNC when
 * offered). 0, or -1 with *err filled (scope ACCOUNT). */
int imap_connect(const struct imap_config *cfg, struct imap_conn **out,
                 struct sync_error *err);
void imap_close(struct imap_conn *c);

unsigned imap_caps(const struct imap_conn *c);
bool imap_has(const struct imap_conn *c, enum imap_caps cap);
/* True once ENABLE QRESYNC succeeded. */
bool imap_qresync_enabled(const struct imap_conn *c);

/* Building a command: begin, add arguments, end. The text is queued, not
 * sent; the next imap_read or imap_flush sends it. Returns the tag number
 * from imap_cmd_end. Arguments that need a synchronising literal are handled
 * here: the rest of the command waits for the server's "+". */
void imap_cmd_begin(struct imap_conn *c);
void imap_cmd_add(struct imap_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void imap_cmd_add_astring(struct imap_conn *c, const char *s);
/* A literal of raw bytes (for APPEND). */
void imap_cmd_add_literal(struct imap_conn *c, const void *data, size_t len);
uint32_t imap_cmd_end(struct imap_conn *c);
/* One-line convenience: begin + add + end. */
uint32_t imap_cmd(struct imap_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Raw text for IDLE's DONE (no tag). */
void imap_send_raw(struct imap_conn *c, const char *text);

/* Read the next response. Queued output is sent meanwhile. Returns:
 *   1  *resp holds a response (valid until the next imap_read);
 *   0  timeout_ms passed without one (timeout_ms < 0: the io timeout is an
 *      error instead);
 *   2  wake_fd (>= 0) became readable (nothing consumed from it);
 *  -1  error, *err filled; the connection is unusable.
 * Continuation requests for literals are handled inside. */
int imap_read(struct imap_conn *c, struct imap_response **resp, int timeout_ms, int wake_fd,
              struct sync_error *err);
/* Send everything queued. 0 or -1. */
int imap_flush(struct imap_conn *c, struct sync_error *err);
/* Tag number of a tagged response, or 0 if it is not one of ours. */
uint32_t imap_resp_tag(const struct imap_response *r);

/* Called for each untagged response while waiting for a tagged one. Return 0
 * to go on, -1 to fail (fill err). */
typedef int (*imap_untagged_fn)(void *ctx, const struct imap_response *r,
                                struct sync_error *err);
/* Wait for the completion of command `tag`, passing every untagged response
 * (and completions of other tags, as untagged) to fn (may be NULL). A NO or
 * BAD fills *err (scope FOLDER, code SERVER) and returns -1; *status gets the
 * status when not NULL (then NO/BAD return 0 and leave err untouched). */
int imap_wait(struct imap_conn *c, uint32_t tag, imap_untagged_fn fn, void *ctx,
              enum imap_status *status, struct sync_error *err);

/* The text of the last tagged completion read (borrowed, until the next
 * read): useful for the server's reason in a NO. */
const char *imap_last_text(const struct imap_conn *c);
/* The response code name and arguments of the last tagged completion
 * (APPENDUID, COPYUID, MODIFIED...), or NULL. Valid until the next read. */
const struct imap_response *imap_last_completion(const struct imap_conn *c);

#endif
