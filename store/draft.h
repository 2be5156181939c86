/* draft: bytes written through the mount before they become an item's
 * content. A draft is the file drafts/ID. The mount makes every write into
 * it durable before the write returns, because the kernel tells it nothing
 * at close (fs/write.c: FLUSH is declined so that reads need no round trip).
 * A draft on disk is therefore what the user wrote: committing it (line
 * ends, header fields, store + journal, file in place) happens when the
 * writer is done, or at the next start after a crash (store_recover). */
#ifndef MAILFS_DRAFT_H
#define MAILFS_DRAFT_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* Make the draft of item_id: a copy of its content (keep) or empty. It is
 * built in tmp/ and synced before it is put in drafts/ (and the directory
 * synced), so a draft on disk is never half a copy. Returns a descriptor
 * open read-write on it, owned by the caller, or -errno. */
int store_draft_create(struct store *st, int64_t item_id, bool keep);

/* Whether items of a kind have CRLF line ends by their standard: messages,
 * events and contacts; not notes, whose text is the user's own. */
bool store_draft_kind_crlf(enum store_kind kind);
/* The same for one item (its folder's kind). */
enum store_status store_draft_crlf(struct store *st, int64_t item_id, bool *crlf);

/* Commit the draft of item_id, open as fd (size bytes): synced, bare LF
 * made CRLF when crlf, Date and Message-ID read from its header (date >= 0
 * overrides the header's date), the new content recorded and journaled in
 * one transaction, the file put in place. Returns 0; 1 when the item no
 * longer exists (the draft is removed); -errno with the draft left on disk
 * for a later try. *size_out (may be NULL) gets the committed size. */
int store_draft_commit(struct store *st, int64_t item_id, int fd, int64_t size, bool crlf,
                       int64_t date, int64_t *size_out);

/* Commit the draft file of item_id found on disk at start (no writer holds
 * it). A draft equal to the content, or empty where the item has content
 * (a truncate whose write never came), is only removed. 0 or -errno. */
int store_draft_recover(struct store *st, int64_t item_id);

#endif
