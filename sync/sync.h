/* sync: the sync engine of one account. It owns a thread (when mounted) that
 * connects, brings every folder of the store up to date, then waits for
 * changes (IMAP IDLE on INBOX, polling for the rest) and for requests from
 * other threads. It is also run once, in the calling thread, by `mailfs sync`
 * when the account is not mounted.
 *
 * Threads: sync_start/sync_stop/sync_free from the owning thread; sync_kick,
 * sync_now and the status getters from any thread. The engine never calls
 * into FUSE except through on_change, from its own thread, after a commit. */
#ifndef MAILFS_SYNC_H
#define MAILFS_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "sync/error.h"
#include "sync/http.h"
#include "sync/imap.h"

struct sync_options {
    const char *store_dir;          /* borrowed */
    const struct imap_config *imap; /* borrowed; NULL when the account has no mail */
    const struct http_config *caldav;  /* borrowed; NULL: no calendars, tasks, notes */
    const struct http_config *carddav; /* borrowed; NULL: no contacts */
    int poll_seconds;
    /* Mail folders without a mode of their own (config sync_mode);
     * STORE_MODE_DEFAULT: INBOX full, the others headers. */
    enum store_mode mail_default;
    /* Called on the sync thread for every committed change, then with NULL
     * at the end of each batch (may be NULL). */
    void (*on_change)(void *ctx, const struct store_change *c);
    void *on_change_ctx;
};

struct sync;

/* Open the engine's own store connection and prepare the drivers. *err owned
 * by the caller on failure. */
int sync_new(const struct sync_options *o, struct sync **out, char **err);
void sync_free(struct sync *s);

/* Make sure the local-only folders (Conflicts) exist. */
int sync_prepare_store(struct sync *s, char **err);

/* One pass in the calling thread: connect, sync every folder (or only the one
 * at `folder_path`, relative to the mount root, e.g. "Archive/2025"),
 * disconnect. 0 or -1 with *err. Used by `mailfs sync` without a mount. */
int sync_once(struct sync *s, const char *folder_path, struct sync_error *err);

/* Connect once to check the account works (login, TLS). 0 or -1. */
int sync_check(struct sync *s, struct sync_error *err);

/* Start and stop the engine's thread. */
int sync_start(struct sync *s);
void sync_stop(struct sync *s);

/* Wake the thread (something local changed). */
void sync_kick(struct sync *s);

/* Ask for a pass now (all folders, or the one at folder_path) and wait until
 * it completed, at most timeout_ms. Returns 0 when it succeeded, -1 with a
 * message in *msg (owned by the caller) otherwise. */
int sync_now(struct sync *s, const char *folder_path, int timeout_ms, char **msg);

/* Offline: no network traffic at all; changes wait in the journal. Going
 * online reconnects at once and catches up. The caller keeps the setting
 * (store meta "mode") so it lasts across remounts. */
void sync_set_offline(struct sync *s, bool offline);
bool sync_is_offline(struct sync *s);
/* Online, and the mail server was not unreachable at the last attempt: a
 * message kept in part can be fetched whole (and shows its whole size). */
bool sync_mail_reachable(struct sync *s);
/* A reader opened a message kept in part: fetch it whole now and wait at
 * most timeout_ms. 0 when the whole message is in the store. */
int sync_fetch_whole(struct sync *s, int64_t item_id, int timeout_ms);
/* Stop the engine's work and wait until it stands still (it holds no
 * connection and does not touch the store); sync_resume lets it go on with a
 * full pass. For work that changes the whole store (reset). */
void sync_pause(struct sync *s);
void sync_resume(struct sync *s);
/* Sync a folder soon (without waiting for it). */
void sync_request(struct sync *s, int64_t folder_id);
/* The user opened this folder: if a pass is under way, it syncs next. */
void sync_hint_folder(struct sync *s, int64_t folder_id);

/* Status for the mount's attributes and `mailfs status`; strings owned by
 * the caller. */
char *sync_connection_state(struct sync *s);
/* "idle", "syncing 812/10000", "error: ..." or "waiting" (not synced yet). */
char *sync_folder_state(struct sync *s, int64_t folder_id);

#endif
