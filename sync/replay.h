/* replay: the store side of sending journal entries, shared by the drivers:
 * short transactions, and what an entry's outcome does to the journal and
 * its item (done, dropped, refused). Every function returns 0 or -1 with
 * *err filled (scope ACCOUNT for store failures). */
#ifndef MAILFS_REPLAY_H
#define MAILFS_REPLAY_H

#include "store/journal.h"
#include "sync/driver.h"

/* A store failure as a sync error; returns -1. */
int replay_store_fail(struct sync_error *err, struct store *st, const char *what);

/* Begin a transaction (rolling back whatever a failure left open). */
int replay_begin(struct sync_driver *d, struct sync_error *err);
/* Commit (rc 0) or roll back (rc < 0, returned as is); after a commit, a
 * crash point named `what` and the host is told. */
int replay_end(struct sync_driver *d, int rc, const char *what, struct sync_error *err);

/* The entry is done: removed, and its item marked synced when nothing else
 * of it waits. In the open transaction. */
int replay_done(struct sync_driver *d, const struct journal_entry *e, struct sync_error *err);
/* The server refused the entry: it stays, refused, with the reason, and its
 * item takes `state` (ERROR, or CONFLICT) with the reason. In the open
 * transaction. */
int replay_refuse(struct sync_driver *d, struct journal_entry *e, enum store_item_state state,
                  const char *why, struct sync_error *err);
/* The entry need not be sent (why: logged; may be NULL): done, in its own
 * transaction. */
int replay_drop(struct sync_driver *d, struct journal_entry *e, const char *why,
                struct sync_error *err);

/* true when the host asks the engine to stop (err filled). */
bool replay_cancelled(struct sync_driver *d, struct sync_error *err);

#endif
