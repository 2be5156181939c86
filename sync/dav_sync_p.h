/* dav_sync_p: what the groupware driver's files share (dav_sync.c: the
 * folder list and downloads; dav_push.c: the journal). */
#ifndef MAILFS_DAV_SYNC_P_H
#define MAILFS_DAV_SYNC_P_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sync/dav.h"
#include "sync/dav_sync.h"
#include "sync/driver.h"

struct dav_driver {
    struct sync_driver base;
    struct http_config cfg;       /* the caller's, with our cancel flag */
    enum dav_kind kind;
    unsigned kinds;               /* store kinds (bits 1 << kind) */
    struct dav_conn *conn;        /* owned; NULL when disconnected */
    struct dav_collections cols;  /* owned: what the last discovery found */
    bool cols_fresh;              /* found by this connect, not used by a list yet */
    char **done;                  /* owned: collections synced in this pass */
    size_t ndone;
};

static inline struct dav_driver *
dav_driver_of(struct sync_driver *d)
{
    return (struct dav_driver *)d;
}

/* An item as the server holds it, read for the store. */
struct dav_item {
    enum store_kind kind; /* the folder kind it belongs in; 0 when not valid */
    char *name;           /* the file name it would get; owned */
    int64_t date;         /* its last change */
    char *text;           /* notes: the text shown (the file); owned; NULL otherwise */
    size_t textlen;
    char *error;          /* why it is not a valid item; owned; NULL */
};

/* Read data[0..len) (an item of the driver's service). Invalid items get
 * kind 0, an error and a name from the href's last segment. */
void dav_item_read(const struct dav_driver *dd, const char *href, const char *data,
                   size_t len, struct dav_item *out);
void dav_item_free(struct dav_item *it);

/* Put the server's version of an item in the store (the row exists): its
 * file (for notes the text, beside it the iCalendar text), href, ETag,
 * state SYNCED. Notes whose title changed are renamed. In the caller's
 * transaction. */
int dav_sync_store_item(struct dav_driver *dd, int64_t item_id, const char *href,
                        const char *etag, const char *data, size_t len,
                        struct sync_error *err);

/* true when the item has journal entries (queued, in flight or refused):
 * the server's version must not replace what the user has. */
bool dav_sync_item_busy(struct store *st, int64_t item_id);

/* Forget a collection's sync token (on every folder row of it), so the
 * next sync lists it whole (after a change whose result is unsure). */
int dav_sync_forget_token(struct dav_driver *dd, const char *href, struct sync_error *err);

/* The folder of `kind` at the top of the tree, or 0. */
int64_t dav_sync_top_folder(struct dav_driver *dd, enum store_kind kind);

/* The DAV_COMP_* component of a calendar kind (0 for contacts). */
unsigned dav_sync_comp_of(enum store_kind kind);

/* Where new collections go: the parent of a known collection, else the
 * principal. Owned, ends in '/'; NULL when unknown. */
char *dav_sync_home(struct dav_driver *dd);

/* A fresh random UUID (36 characters and NUL). */
void dav_sync_uuid(char out[37]);

/* Send the journal's entries of the driver's kinds (dav_push.c). */
int dav_push(struct dav_driver *dd, struct sync_error *err);

#endif
