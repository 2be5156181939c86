/* flags: the text form of mail flags used by the store and user.mail.flags:
 * "seen answered flagged deleted draft" (those set, in that order) followed
 * by keywords sorted, space-separated. Conversions from what users type and
 * to IMAP flag lists. Returned strings are owned by the caller. */
#ifndef MAILFS_FLAGS_H
#define MAILFS_FLAGS_H

#include <stddef.h>

#include "common/dynbuf.h"

/* Parse flags as a user writes them (any order, any white space, system
 * flags by name or as \Seen, keywords as IMAP atoms) into the canonical form.
 * Returns NULL for anything invalid: unknown \-flags, characters IMAP atoms
 * cannot hold, more than 64 flags, a flag over 128 bytes. */
char *flags_parse(const char *text, size_t len);

/* Add one flag as the server sent it (\Seen, $Forwarded) to a canonical
 * builder: call flags_builder_add for each, then flags_builder_take. */
struct flags_builder {
    unsigned system;  /* bits of the system flags */
    char **keywords;  /* owned */
    size_t n, alloc;
};
void flags_builder_add(struct flags_builder *b, const char *flag, size_t len);
char *flags_builder_take(struct flags_builder *b);

/* Append the canonical flags as an IMAP flag list "(\Seen $Label1)". */
int flags_to_imap(struct dynbuf *out, const char *canonical);

#endif
