/* imap_body: what a folder in headers mode keeps of a message. From the
 * BODYSTRUCTURE the server sends, choose the text to keep (the plain-text
 * part, else the HTML one), list what is left out, and put the kept pieces
 * together as a valid MIME message: the original header, the kept text part
 * with its own MIME header, and a short text part naming what was left out.
 * Signed and encrypted messages are kept whole: a part of them is useless.
 * Pure functions: no network, no store. */
#ifndef MAILFS_IMAP_BODY_H
#define MAILFS_IMAP_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "sync/imap_parse.h"

enum body_plan_kind {
    BODY_PLAN_WHOLE,   /* fetch the whole message (single text part, signed, ...) */
    BODY_PLAN_PART,    /* fetch the header and one section */
    BODY_PLAN_HEADER,  /* fetch the header only (no text part at all) */
};

struct body_plan {
    enum body_plan_kind kind;
    char section[64];      /* BODY_PLAN_PART: e.g. "1" or "1.2" */
    char boundary[256];    /* the top-level multipart boundary, "" if single part */
    bool alternative;      /* the top level is multipart/alternative */
    char *omitted;         /* owned: one line per part left out, "" if none */
};

void body_plan_clear(struct body_plan *p);

/* Decide from a BODYSTRUCTURE value. Hostile or odd structures give
 * BODY_PLAN_WHOLE (the safe choice: nothing is lost). */
void body_plan_make(const struct imap_value *bodystructure, struct body_plan *out);

/* Assemble the partial message: header (as fetched with BODY[HEADER], ending
 * in its blank line), and for BODY_PLAN_PART the section's MIME header and
 * content. Appends to out; 0 or -1 at out's cap. */
int body_assemble(struct dynbuf *out, const struct body_plan *plan, const char *header,
                  size_t header_len, const char *part_mime, size_t part_mime_len,
                  const char *part, size_t part_len);

#endif
