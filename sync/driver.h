/* driver: what the sync engine asks of a protocol. IMAP implements it for
 * mail; CalDAV and CardDAV will for events, tasks, notes and contacts. The
 * engine decides when and in which order; a driver knows how. */
#ifndef MAILFS_DRIVER_H
#define MAILFS_DRIVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "sync/error.h"

/* What the engine offers a driver while it works. */
struct sync_host {
    /* Call after every store commit so the mount learns what changed. */
    void (*committed)(struct sync_host *h);
    /* Progress of a folder sync: done of total items downloaded. */
    void (*progress)(struct sync_host *h, int64_t folder_id, int64_t done, int64_t total);
    atomic_bool *cancel; /* set when the engine stops */
    /* The sync mode of mail folders that have none of their own (config
     * sync_mode; see store_folder_mode). */
    enum store_mode mail_default;
    /* A partial item asked for by a reader is whole on disk (its row is
     * updated next): wake the reader before anything tells the kernel. */
    void (*item_ready)(struct sync_host *h, int64_t item_id, int result);
};

struct sync_driver;

struct sync_driver_ops {
    const char *name;
    /* Connect and authenticate. 0 or -1 (err scope ACCOUNT). */
    int (*connect)(struct sync_driver *d, struct sync_error *err);
    void (*disconnect)(struct sync_driver *d);
    bool (*connected)(const struct sync_driver *d);
    /* Send the journal's entries for this driver's kinds, in order. */
    int (*push)(struct sync_driver *d, struct sync_error *err);
    /* Bring the store's folder list of this driver's kinds up to date. */
    int (*list)(struct sync_driver *d, struct sync_error *err);
    /* After list: may the folder have changed since its last sync? A driver
     * that cannot tell cheaply says true. */
    bool (*maybe_changed)(struct sync_driver *d, const struct store_folder *f);
    /* Bring one folder of the store up to date with the server. */
    int (*sync_folder)(struct sync_driver *d, int64_t folder_id, struct sync_error *err);
    /* Fetch one item whole now (a reader opened a partial one), calling
     * host->item_ready once its file is in place. 0 or -1. May be NULL. */
    int (*fetch_whole)(struct sync_driver *d, int64_t item_id, struct sync_error *err);
    /* Wait up to timeout_ms for the server to announce a change (IMAP IDLE)
     * or for wake_fd. Returns 1 and *folder_id when a folder changed, 0 on
     * timeout, 2 when woken, -1 on error. A driver without push sleeps. */
    int (*wait)(struct sync_driver *d, int wake_fd, int timeout_ms, int64_t *folder_id,
                struct sync_error *err);
    void (*free)(struct sync_driver *d);
};

struct sync_driver {
    const struct sync_driver_ops *ops;
    struct store *st;       /* borrowed: the sync thread's connection */
    struct sync_host *host; /* borrowed */
};

#endif
