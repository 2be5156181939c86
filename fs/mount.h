/* mount: the mounted filesystem of one account: the FUSE session, the
 * kernel-facing operations (ops.c), the sync engine and the control socket.
 * Shared by fs/ files only. */
#ifndef MAILFS_MOUNT_H
#define MAILFS_MOUNT_H

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"
#include "sync/sync.h"

struct mount {
    char *store_dir;              /* owned */
    char *account;                /* owned */
    struct sync *sync;            /* owned; NULL until started */
    struct fuse_session *se;      /* owned */
    uid_t uid;                    /* the mounting user: owner of every node */
    gid_t gid;
    int64_t mount_time;           /* mtime of directories */
    bool no_open;                 /* the kernel skips open/release */
    pthread_key_t store_key;      /* each FUSE thread's store connection */
    /* Parents whose listing changed in the current batch (sync thread only). */
    uint64_t *dirty_dirs;         /* owned */
    size_t ndirty, adirty;
};

/* The low-level operations table (ops.c). */
extern const struct fuse_lowlevel_ops mount_ops;

/* Called by the sync engine for each committed change and with NULL at the
 * end of each batch: tells the kernel what to forget (ops.c). */
void mount_on_change(void *ctx, const struct store_change *c);

/* The control socket: `mailfs sync MOUNTPOINT` talks to the running mount
 * through STORE/control.sock (control.c). */
int control_start(struct mount *m, char **err);
void control_stop(void);
/* Client side: send one request line and wait for the answer line. Returns
 * 0 for "ok", 1 for an error answer (message in *reply), -1 when no mount
 * listens (errno-style message in *reply). */
int control_request(const char *store_dir, const char *request, char **reply);

#endif
