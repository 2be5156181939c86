/* local: changes a user makes through the mount. Each function applies one
 * change to the store and writes what the server must be told into the
 * journal, in one transaction that it begins and commits itself: when it
 * returns STORE_OK the change is durable (DESIGN section 3).
 *
 * Coalescing keeps the journal short and never sends what no longer
 * matters: an item created and deleted before the sync thread saw it costs
 * the server nothing; a second edit of a queued upload changes nothing in
 * the journal (the upload reads the content when it is sent).
 *
 * Entries name items by id; when an item has no UID yet because its upload
 * is under way, entries behind it wait for the UID (journal_fill_uid). */
#ifndef MAILFS_LOCAL_H
#define MAILFS_LOCAL_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* A new empty file in a mail folder, named exactly `name` (STORE_EXISTS when
 * the name is taken). Nothing is journaled until it has content. */
enum store_status local_item_create(struct store *st, int64_t folder_id, const char *name,
                                    int64_t date, int64_t *id_out);

/* New content was written and synced to the item's staged file: record it
 * and journal its upload (APPEND, or REPLACE of what the server has). The
 * caller then puts the staged file in place (store_content_commit_staged)
 * and clears the staged mark (local_item_content_placed). */
enum store_status local_item_content(struct store *st, int64_t item_id, int64_t size,
                                     int64_t date, const char *message_id);
enum store_status local_item_content_placed(struct store *st, int64_t item_id);

/* rm: the item leaves the store; the server copy (if any, or once its
 * upload completes) is deleted. */
enum store_status local_item_delete(struct store *st, int64_t item_id);

/* mv of a file: a new name in the same folder (local only), or a move to
 * another mail folder (MOVE on the server). When the target name is taken
 * by another item and `replace` is set, that item is deleted first (POSIX
 * rename over a file); otherwise STORE_EXISTS. */
enum store_status local_item_rename(struct store *st, int64_t item_id, int64_t folder_id,
                                    const char *name, bool replace);

/* user.mail.flags: canonical flags (formats/flags.h). */
enum store_status local_item_flags(struct store *st, int64_t item_id, const char *flags);

/* touch/utime: the file's mtime (local only). */
enum store_status local_item_date(struct store *st, int64_t item_id, int64_t date);

/* mkdir in a mail folder or the root: the server name is the parent's plus
 * the folder delimiter plus the name in modified UTF-7. STORE_EXISTS when the
 * name is taken; STORE_ERROR with a message when the name cannot be a
 * server name (it holds the delimiter). */
enum store_status local_folder_create(struct store *st, int64_t parent_id, const char *name,
                                      int64_t *id_out);
/* rmdir: the folder must be empty (STORE_EXISTS otherwise). */
enum store_status local_folder_delete(struct store *st, int64_t folder_id);
/* mv of a folder: new parent (a mail folder or the root) and name. An empty
 * folder at the target is replaced when `replace` is set. */
enum store_status local_folder_rename(struct store *st, int64_t folder_id, int64_t parent_id,
                                      const char *name, bool replace);

#endif
