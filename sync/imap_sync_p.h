/* imap_sync_p: what the files of the IMAP driver share (imap_sync.c syncs
 * folders down, imap_push.c sends the journal up). Not for use elsewhere. */
#ifndef MAILFS_IMAP_SYNC_P_H
#define MAILFS_IMAP_SYNC_P_H

#include "sync/imap_sync.h"

/* What LIST and STATUS said about a mailbox. */
struct mbox_status {
    char *name;          /* server name; owned */
    bool have;           /* a STATUS response was seen */
    uint32_t messages, uidnext, uidvalidity;
    uint64_t highestmodseq;
};

struct imap_driver {
    struct sync_driver base;
    const struct imap_config *cfg; /* borrowed */
    struct imap_conn *conn;        /* owned; NULL when disconnected */
    char *selected;                /* server name of the selected mailbox; owned */
    bool changed_while_selected;   /* the server reported a change we did not act on */
    struct mbox_status *status;    /* owned, from the last list */
    size_t nstatus;
    /* Messages whose download broke the connection (a server announcing
     * more than the limit): skipped for the rest of this mount. */
    struct poisoned {
        int64_t folder_id;
        uint32_t uid;
    } *poison;                     /* owned */
    size_t npoison;
};

/* What SELECT said about a mailbox. */
struct imap_mailbox {
    uint32_t exists, uidvalidity, uidnext;
    uint64_t highestmodseq;
};

static inline struct imap_driver *
imap_driver_of(struct sync_driver *d)
{
    return (struct imap_driver *)d;
}

/* SELECT a mailbox by server name. 0 and *out; 1 when the server refused
 * (no such mailbox: *err says why, scope FOLDER); -1 on a connection error. */
int imap_sync_select(struct imap_driver *id, const char *server_name,
                     struct imap_mailbox *out, struct sync_error *err);
/* A store failure: fills err (scope ACCOUNT) and returns -1. */
int imap_sync_store_fail(struct sync_error *err, struct store *st, const char *what);
/* After a failure: drop the connection when it is unusable. Returns -1. */
int imap_sync_conn_fail(struct imap_driver *id, struct sync_error *err);
/* Canonical flags (formats/flags.h) of an IMAP flag list; owned by the caller. */
char *imap_sync_flags(const struct imap_value *list);
/* A number atom that fits 32 bits. */
bool imap_sync_u32(const struct imap_value *v, uint32_t *out);
/* The MODSEQ of a FETCH attribute list, 0 when absent. */
uint64_t imap_sync_modseq(const struct imap_value *attrs);
/* Untagged data that says the selected mailbox changed (for IDLE). */
void imap_sync_note(struct imap_driver *id, const struct imap_response *r);
/* true when an item's content file holds exactly data[0..len). */
bool imap_sync_content_equal(struct store *st, int64_t item_id, const char *data, size_t len);

/* imap_push.c: send the journal. 0, or -1 with err (scope ACCOUNT: the
 * connection or the store failed; other failures are recorded per entry). */
int imap_push(struct imap_driver *id, struct sync_error *err);

#endif
