/* conflict: the user's version of an item that clashed with the server's,
 * kept in Conflicts/, and the notice that tells the user (DESIGN section 6).
 *
 * A copy is a new item of the Conflicts folder: the same bytes (a hard link
 * of the content file: content files are never changed in place), the same
 * flags, a note's iCalendar text beside it, state CONFLICT, `origin` = the
 * path it had in the tree, `conflict_of` = the item it is a copy of (for a
 * restore by mv), `origin_kind` = the kind of folder it came from. Copies
 * and notices are local only: nothing here is ever sent to a server.
 *
 * Every function works inside the caller's transaction. Copies are files:
 * call store_content_sync before the commit that drops the original. */
#ifndef MAILFS_CONFLICT_H
#define MAILFS_CONFLICT_H

#include <stdbool.h>
#include <stdint.h>

#include "store/names.h"
#include "store/store.h"

/* What to keep. Strings borrowed. */
struct conflict_copy {
    const char *name;         /* the file name it had */
    const char *folder;       /* the path of its folder ("Calendar/Team"; "" at the top) */
    const char *content_path; /* its bytes: a file linked (else copied); NULL: empty */
    const char *sidecar_path; /* a note's iCalendar text, or NULL */
    const char *flags;        /* NULL: none */
    const char *message_id;   /* may be NULL */
    int64_t date;
    int64_t of;               /* the item it is a copy of, 0 when none */
    enum store_kind kind;     /* of the folder it came from; 0 unknown */
};

/* The Conflicts folder (made when missing). */
enum store_status conflict_folder(struct store *st, int64_t *id_out);

/* The path of a folder from the root ("" for the root). Owned. */
char *conflict_folder_path(struct store *st, int64_t folder_id);

/* Keep c in Conflicts/ (folder `conflicts`): named c->name, else "NAME (from
 * FOLDER)", else with " (2)"… The new item's id in *id_out (0 until its
 * content file exists: on failure the caller removes it) and its name in
 * name_out. */
enum store_status conflict_keep(struct store *st, int64_t conflicts,
                                const struct conflict_copy *c, int64_t *id_out,
                                char name_out[NAMES_MAX + 1]);

/* Keep item `item_id` as it is now (its newest bytes: a staged draft, the
 * whole file, or the part kept). */
enum store_status conflict_keep_item(struct store *st, int64_t item_id, int64_t *id_out,
                                     char name_out[NAMES_MAX + 1]);

/* A notice in INBOX, local only ("Synchronization conflict: WHAT"): what
 * clashed (`what`: the item's path), what happened (`happened`, a
 * sentence), where the local copy is (`copy`: its name in Conflicts/, or
 * NULL when nothing was kept) and how to restore it. Without an INBOX (an
 * account without mail) nothing is written. */
enum store_status conflict_notice(struct store *st, const char *what, const char *happened,
                                  const char *copy);

/* A folder removed on the server: it goes with everything in it, after the
 * items with changes not on the server (journal entries, or a state other
 * than synced or partial) are kept in Conflicts/ (their entries dropped);
 * *kept counts them and a notice tells of them. Syncs the copies. */
enum store_status conflict_drop_folder(struct store *st, int64_t folder_id, unsigned *kept);

/* For a restore: the item a copy was made of (0: none or gone), the kind of
 * folder it came from (0: unknown), and whether it is a notice. */
enum store_status conflict_info(struct store *st, int64_t item_id, int64_t *of,
                                enum store_kind *kind, bool *notice);

/* The item's origin (owned; NULL when it has none). */
enum store_status conflict_origin(struct store *st, int64_t item_id, char **out);

#endif
