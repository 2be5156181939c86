/* dav_sync: the groupware drivers: CalDAV collections (events, tasks, notes)
 * and CardDAV address books (contacts) into the store, and the journal's
 * changes of those kinds back to the server. */
#ifndef MAILFS_DAV_SYNC_H
#define MAILFS_DAV_SYNC_H

#include "sync/dav.h"
#include "sync/driver.h"

/* A driver for one service (the caldav or the carddav URL of an account).
 * cfg and its strings are borrowed and must outlive the driver; its cancel
 * flag is replaced by the host's. */
struct sync_driver *dav_sync_new(const struct http_config *cfg, enum dav_kind kind,
                                 struct store *st, struct sync_host *host);

/* The store kinds a service syncs (bits 1 << kind). */
unsigned dav_sync_kinds(enum dav_kind kind);

#endif
