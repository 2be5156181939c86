/* journal: local changes waiting for the server, in the order they were made.
 *
 * A FUSE thread writes a change to the store and its journal entry in one
 * transaction before the call returns; the sync thread sends entries in id
 * order and removes each one in the transaction that records its result.
 * Before sending an entry that creates something on the server (APPEND,
 * COPY, MOVE) the sync thread marks it in flight and records how to find
 * the result again (the folder's UIDNEXT, the Message-ID, the size), so a
 * crash between "sent" and "recorded" never duplicates anything.
 *
 * Entries name items by id; the UID they act on is resolved when they are
 * sent (an entry queued behind an APPEND learns the new UID when the APPEND
 * completes). Deletions exist only here: nothing else deletes on a server.
 *
 * Ownership as in store.h: strings in a struct journal_entry belong to it. */
#ifndef MAILFS_JOURNAL_H
#define MAILFS_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* IMAP meaning / DAV meaning (href and base then name the resource and the
 * ETag the change was based on). */
enum journal_op {
    JOURNAL_APPEND = 1,  /* item: upload it to its folder / PUT If-None-Match */
    JOURNAL_REPLACE = 2, /* item: upload its new content, then delete uid in src /
                            PUT If-Match the row's ETag at the row's href */
    JOURNAL_DELETE = 3,  /* uid in src (or the uid item_id receives) / href */
    JOURNAL_MOVE = 4,    /* uid in src to the item's folder / href to the item's
                            collection */
    JOURNAL_FLAGS = 5,   /* item: set its flags (arg) on the server, based on base */
    JOURNAL_MKDIR = 6,   /* folder_id: create arg on the server / a collection */
    JOURNAL_RMDIR = 7,   /* delete folder src on the server (a collection's href) */
    JOURNAL_RENAME = 8,  /* rename folder src to arg on the server */
};

enum journal_state {
    JOURNAL_QUEUED = 0,
    JOURNAL_INFLIGHT = 1, /* sent or about to be: find the result before resending */
    JOURNAL_REFUSED = 2,  /* the server said no; kept for the user to see */
};

struct journal_entry {
    int64_t id;
    enum journal_op op;
    enum journal_state state;
    int64_t item_id;
    int64_t folder_id;
    char *src;            /* server name of the source folder; owned, may be NULL */
    uint32_t uid;
    uint32_t uidvalidity; /* of src when uid was recorded */
    char *base;           /* MODSEQ the change was based on; owned, may be NULL */
    char *arg;            /* FLAGS: flags; MKDIR/RENAME: server name; owned */
    uint32_t hint;        /* UIDNEXT of the target before sending */
    char *message_id;     /* owned, may be NULL */
    int64_t size;
    int64_t created;
    int attempts;
    char *error;          /* owned, may be NULL */
    enum store_kind kind; /* the kind of folder it acts in (0 on add: from folder_id) */
    char *href;           /* DAV: the resource it acts on; owned, may be NULL */
};

void journal_entry_clear(struct journal_entry *e);
const char *journal_op_name(enum journal_op op);

/* Append an entry (state QUEUED); its id in *id_out (may be NULL). Must be
 * called inside the transaction that makes the local change. */
enum store_status journal_add(struct store *st, const struct journal_entry *e,
                              int64_t *id_out);
enum store_status journal_get(struct store *st, int64_t id, struct journal_entry *out);
/* The first entry after `after_id` that is queued or in flight, among the
 * kinds in kind_mask (bit 1 << kind; ~0u for all). */
enum store_status journal_next(struct store *st, int64_t after_id, unsigned kind_mask,
                               struct journal_entry *out);
/* Write back state, uid, uidvalidity, src, hint, message_id, size, attempts,
 * error, op and arg of e. */
enum store_status journal_update(struct store *st, const struct journal_entry *e);
enum store_status journal_remove(struct store *st, int64_t id);
/* The latest entry for an item with one of the ops in op_mask (bit 1 << op)
 * and states in state_mask (bit 1 << state). */
enum store_status journal_find_item(struct store *st, int64_t item_id, unsigned op_mask,
                                    unsigned state_mask, struct journal_entry *out);
/* The latest entry of a folder (folder_id) with an op in op_mask and a state
 * in state_mask. */
enum store_status journal_find_folder(struct store *st, int64_t folder_id, unsigned op_mask,
                                      unsigned state_mask, struct journal_entry *out);
/* Forget refused entries of an item (the user changed it again). */
enum store_status journal_drop_refused(struct store *st, int64_t item_id);
/* Remove every queued entry of an item with an op in op_mask. */
enum store_status journal_drop_item(struct store *st, int64_t item_id, unsigned op_mask);
/* An item received its UID: entries waiting for it (uid 0) take it. */
enum store_status journal_fill_uid(struct store *st, int64_t item_id, const char *src,
                                   uint32_t uid, uint32_t uidvalidity);
/* DAV: an item's upload or move completed at href with etag: entries queued
 * behind it without an href (DELETE, MOVE) take them. */
enum store_status journal_fill_href(struct store *st, int64_t item_id, const char *href,
                                    const char *etag);
/* DAV: true when a queued or in-flight DELETE or MOVE acts on href: a sync
 * must not bring that resource back meanwhile. */
enum store_status journal_href_leaving(struct store *st, const char *href, bool *out);
/* Entries not yet done (queued or in flight), all or those of items in one
 * folder (folder_id > 0). */
enum store_status journal_count(struct store *st, int64_t folder_id, int64_t *out);
/* UIDs of src that entries are about to delete or move away: a sync must not
 * download them again meanwhile. fn gets each one. */
enum store_status journal_each_leaving_uid(struct store *st, const char *src,
                                           int (*fn)(void *ctx, uint32_t uid), void *ctx);
/* true when an entry still refers to the folder name (as src or arg): the
 * folder list from the server must not add or drop it yet. */
/* The server name a folder now called `name` had when entry entry_id was
 * made: renames queued after it are undone (an upload queued before a
 * folder's rename goes to the old name, which the rename then takes
 * along). *out owned by the caller, also on failure. */
enum store_status journal_name_at(struct store *st, int64_t entry_id, const char *name,
                                  char delimiter, char **out);
enum store_status journal_names_folder(struct store *st, const char *server_name,
                                       bool *out);

#define JOURNAL_BIT(x) (1u << (x))

#endif
