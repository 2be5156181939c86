/* mount: the mounted filesystem of one account: the FUSE session, the
 * kernel-facing operations (ops.c), the sync engine and the control socket.
 * Shared by fs/ files only. */
#ifndef MAILFS_MOUNT_H
#define MAILFS_MOUNT_H

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "store/store.h"
#include "sync/sync.h"

struct mount {
    char *store_dir;              /* owned */
    char *account;                /* owned */
    struct sync *sync;            /* owned; NULL until started */
    struct fuse_session *se;      /* owned */
    uid_t uid;                    /* the mounting user: owner of every node */
    enum store_mode mail_default; /* config sync_mode */
    bool has_mail;                /* the account has an imap server */
    gid_t gid;
    int64_t mount_time;           /* mtime of directories */
    bool no_open;                 /* the kernel skips open/release */
    pthread_key_t store_key;      /* each FUSE thread's store connection */
    /* Parents whose listing changed in the current batch (sync thread only). */
    uint64_t *dirty_dirs;         /* owned */
    size_t ndirty, adirty;
    /* The folder the user opened last (kept at unmount for the next mount's
     * first sync). */
    atomic_int_fast64_t last_opened;
    /* Files being written (write.c). Lock order: drafts_lock, then a store. */
    pthread_mutex_t drafts_lock;
    struct draft *drafts;         /* owned; protected by drafts_lock */
};

/* How long a read of (or a write into) a message kept in part waits for
 * the whole one. */
#define FETCH_WHOLE_WAIT_MS 5000

/* ---- ops.c: the operations table and the read side ---- */
extern const struct fuse_lowlevel_ops mount_ops;
/* The calling FUSE thread's store connection, opened on first use; NULL
 * after logging why it could not be opened. */
struct store *mount_store(struct mount *m);
/* "full", "headers" or "off". */
const char *mount_mode_name(enum store_mode mode);
/* The account is online (not offline; connected or trying to be). */
bool mount_online(struct mount *m);
/* Online and the mail server not found unreachable: a message kept in part
 * can be fetched whole. */
bool mount_mail_reachable(struct mount *m);
/* The user looked into a folder: it syncs next if a pass is under way. */
void mount_opened(struct mount *m, int64_t folder_id);
/* errno for a store status (EIO when nothing more precise fits). */
int mount_errno(enum store_status s);
/* mtime 0: the mount's start. */
void mount_dir_attr(struct mount *m, uint64_t ino, int64_t mtime, struct stat *sb);
void mount_file_attr(struct mount *m, uint64_t ino, int64_t size, int64_t date,
                     struct stat *sb);
/* Timeouts and generation of an entry reply. */
void mount_fill_entry(struct fuse_entry_param *e);

/* ---- write.c: the write side (files being written are "drafts") ---- */
void write_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                  struct fuse_file_info *fi);
void write_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void write_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                 struct fuse_file_info *fi);
void write_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                   struct fuse_file_info *fi);
void write_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void write_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void write_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void write_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void write_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void write_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void write_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                  const char *newname, unsigned int flags);
void write_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void write_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void write_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                    size_t size, int flags);
void write_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
void write_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                     struct fuse_file_info *fi);
/* While a file is being written: its current size (true) and a duplicate
 * descriptor of its bytes (>= 0, owned by the caller), else false / -1. */
bool write_draft_size(struct mount *m, uint64_t ino, int64_t *size);
int write_draft_fd(struct mount *m, uint64_t ino);
/* How many files of folder_id were written and are not committed yet. */
int64_t write_drafts_in(struct mount *m, struct store *st, int64_t folder_id);
/* Set the account online or offline (kept in the store). 0 or an errno. */
int mount_set_mode(struct mount *m, struct store *st, bool offline);
/* Commit every draft: before any other change through the mount (so the
 * journal keeps the order the user made them in) and before a control
 * command acts. One that fails stays for a later try. */
void write_commit_all(struct mount *m);
/* Commit every draft and forget them (at unmount; one that fails is
 * committed at the next start). */
void write_flush_all(struct mount *m);
/* The committer thread: drafts nobody writes to any more are committed. */
int write_start(struct mount *m);
void write_stop(struct mount *m);

/* ---- notify.c: cache invalidation ---- */
/* Called by the sync engine for each committed change and with NULL at the
 * end of each batch. */
void mount_on_change(void *ctx, const struct store_change *c);
/* For FUSE threads: invalidate an inode soon, from another thread. */
int notify_start(struct mount *m);
void notify_stop(void);
void notify_inode_later(uint64_t ino);
/* Forget a name in a directory (from a FUSE thread: queued). */
void notify_entry_later(uint64_t parent, const char *name);
/* Wait (at most timeout_ms) until the kernel was told everything queued: a
 * call whose reply must find the kernel's caches already dropped. */
void notify_drain(int timeout_ms);

/* The control socket: `mailfs sync MOUNTPOINT` talks to the running mount
 * through STORE/control.sock (control.c). */
int control_start(struct mount *m, char **err);
void control_stop(void);
/* Client side: send one request line and wait for the answer: a first line
 * "ok" or "error MESSAGE", then any text until the connection closes.
 * Returns 0 for "ok" (*reply: the text after the first line, owned), 1 for an
 * error answer (*reply: the message), -1 when no mount listens. */
int control_request(const char *store_dir, const char *request, char **reply);

/* ---- status.c: `mailfs status` ---- */
/* The status report of an account: mode, connection, folders (mode, last
 * sync, pending changes, state), conflicts. sync is NULL when the account
 * is not mounted. Owned by the caller. */
char *status_text(struct store *st, struct sync *sync, const char *account);

#endif
