/* maintain: repairing a store (reindex) and dropping the local copy so it
 * is synced again from the server (reset). Both report what they find and do
 * one line at a time through a `say` callback, so the command line prints
 * them and the mount sends them back over its control socket.
 *
 * Neither ever deletes anything on a server: the journal is the only source
 * of server deletions, and neither adds to it.
 *
 * Ownership as in store.h: *err strings belong to the caller. */
#ifndef MAILFS_MAINTAIN_H
#define MAILFS_MAINTAIN_H

#include <stdbool.h>

#include "store/store.h"

/* One line of report (no newline), borrowed for the call. */
typedef void (*store_say_fn)(void *ctx, const char *line);

/* ---- reindex (store/reindex.c) ----
 *
 * What is checked, in this order, and what a repair does:
 *  - the database (PRAGMA integrity_check): a damaged one that sqlite can
 *    still read is rebuilt with VACUUM INTO and swapped in (the old file is
 *    kept as store.db.before-reindex); one it cannot read is reported
 *    (STORE_CORRUPT) and nothing else is touched;
 *  - folders: parent missing (re-attached at the top), cycles (broken at
 *    their lowest id, which moves to the top), top-level names reserved for
 *    other kinds ("Conflicts", "Calendar", ..., renamed "NAME (mail)"), the
 *    Conflicts folder at the top under its own name, unknown kinds, unsafe
 *    names (names.h rules: renamed to their safe form);
 *  - items: folder missing (a synced copy is dropped, the server still has
 *    it; a local one goes to Conflicts/), unknown state, unsafe names, a
 *    name taken by a subfolder or by another item (renamed with
 *    names_variant), staged content (put in place), and the content file
 *    against the row (see "fetch again" and "lost" below);
 *  - the journal: unknown op or kind, invalid state, an entry whose item or
 *    folder is gone or that lacks what its op needs: removed only when it
 *    cannot be replayed; a valid entry with a bad state is kept (in flight
 *    for uploads and moves, so nothing is sent twice; queued otherwise);
 *  - files: content and partial files and sidecars with no row, drafts with
 *    no staged mark, anything in tmp/: removed.
 *
 * "Fetch again" (a synced item, uid or href set, whose content file is
 * missing or has the wrong size): has_content = 0, size = 0 and an empty
 * content file; for mail (uid set) state = PARTIAL, full_size = the whole
 * size, the empty file is the partial one (ID.p), and the folder's
 * last_sync = 0; for DAV items (href set) state = SYNCED, etag = NULL and
 * the folder's sync_token, ctag = NULL and last_sync = 0. Uploads queued for
 * it (APPEND, REPLACE) are dropped: their content is gone.
 * "Lost" (a local-only item, no uid and no href, whose content is missing):
 * the row stays, with size = 0, an empty content file, has_content = 0,
 * state = ERROR (CONFLICT in Conflicts/) and error = what happened; its
 * uploads are dropped.
 *
 * The checks run twice: the second pass only looks, and what it still finds
 * is `remaining`. */
struct store_reindex_result {
    unsigned found;     /* problems the first pass found */
    unsigned repaired;  /* of those, repaired */
    unsigned lost;      /* items whose content is gone for good (kept, empty) */
    unsigned remaining; /* problems the second pass still found */
};

/* Check and repair the store in `dir`. The caller holds the store's lock (no
 * mount and no other process uses it). STORE_OK when both passes ran (the
 * store is consistent when res->remaining is 0); STORE_NOTFOUND without a
 * store; STORE_CORRUPT when the database cannot be read or rebuilt; any other
 * status when a repair failed. *err says why (owned by the caller) whenever
 * the status is not STORE_OK. */
enum store_status store_reindex(const char *dir, store_say_fn say, void *ctx,
                                struct store_reindex_result *res, char **err);

/* Remove the files of the store that no row refers to: content/XX/ID[.suffix]
 * without an item (or in the wrong bucket, or a partial file beside a whole
 * one), and when `all`, drafts without a staged mark and everything in tmp/
 * (only when no mount is writing: drafts/ and tmp/ hold its work). With
 * repair false nothing is removed. Returns how many were found. */
unsigned store_sweep_files(struct store *st, bool all, bool repair, store_say_fn say,
                           void *ctx);

/* ---- reset (store/reset.c) ---- */
struct store_reset_result {
    unsigned saved;           /* items copied into Conflicts/ */
    unsigned unsent;          /* changes that could not be kept (deletions,
                                 folder operations): they are reported */
    unsigned dropped_items;   /* items dropped (not counting Conflicts/) */
    unsigned dropped_folders; /* folders dropped */
};

/* Drop the local copy. Every change not yet on the server (an item with a
 * journal entry queued, in flight or refused, or in state local, pending or
 * error) is first copied into the Conflicts folder (made when missing) as a
 * new item with the same content, a readable unique name ("NAME", else
 * "NAME (from FOLDER)"), state CONFLICT and origin = the path it had; then
 * every other folder and item, their content files, the journal and
 * last_opened go (the settings "mode" and "sync_mode" stay). The next sync
 * brings everything back from the server.
 *
 * `mounted`: a mount is running on this store (its drafts/ and tmp/ are left
 * alone); else the caller holds the lock and store_recover has run. One
 * transaction: on failure nothing changed. */
enum store_status store_reset(struct store *st, bool mounted, store_say_fn say, void *ctx,
                              struct store_reset_result *res);

/* The store's database cannot be opened at all: move store.db (and its
 * -wal, -shm), content/ and drafts/ into DIR/damaged-YYYYMMDD-HHMMSS/ so the
 * next mount starts afresh and nothing is deleted. *where (owned by the
 * caller) names the directory. The caller holds the lock. */
enum store_status store_move_aside(const char *dir, char **where, char **err);

#endif
