/* imap_sync: the mail driver: IMAP folders and messages into the store. */
#ifndef MAILFS_IMAP_SYNC_H
#define MAILFS_IMAP_SYNC_H

#include "sync/driver.h"
#include "sync/imap.h"

/* A driver for the IMAP account in cfg. cfg and its strings are borrowed
 * and must outlive the driver. */
struct sync_driver *imap_sync_new(const struct imap_config *cfg, struct store *st,
                                  struct sync_host *host);

/* The local name of a top-level mail folder whose server name clashes with
 * a tree reserved for other kinds (Calendar, Tasks, Notes, Contacts,
 * Conflicts): "NAME (mail)". Returns the name to use (owned by the caller). */
char *imap_sync_top_name(const char *name);

#endif
