/* write: changes through the mount. Bytes written to a file go to a draft
 * (store/draft.h): the item's file in drafts/, made on the first write or
 * truncate from the current content. Every write and truncate is synced to
 * disk before it returns: the kernel sends no FLUSH at close (it is
 * declined, so that reading a file costs no round trip at close), and a
 * crash commits at the next start what was written. A draft is committed
 * (the store and the journal record the new content in one transaction,
 * then the file is put in place) when its writer is done: at release of a
 * file the kernel created, at fsync, before a rename or a control command,
 * at unmount, or once nothing was written to it for DRAFT_IDLE_MS.
 *
 * Names, folders, flags and deletions go straight to store/local.c. The sync
 * thread is woken after every change; nothing here waits on the network. */
#include "fs/mount.h"

#include "common/log.h"
#include "common/utf8.h"
#include "common/util.h"
#include "formats/flags.h"
#include "store/conflict.h"
#include "store/draft.h"
#include "store/local.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* A draft nobody wrote to for this long is committed: the writer is done. */
#define DRAFT_IDLE_MS 1000

struct draft {
    uint64_t ino;
    int64_t item_id;
    int fd;            /* the staged file, read-write; owned */
    int64_t size;
    int64_t mtime;     /* set by utime while written; -1 when not */
    int64_t touched;   /* util_now_ms() of the last write or truncate */
    bool crlf;         /* line ends become CRLF at commit: not for notes */
    struct draft *next;
};

/* Wakes the committer thread (below); waited on with drafts_lock. */
static pthread_cond_t c_cond = PTHREAD_COND_INITIALIZER;

static struct mount *
mnt(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* ---- names and places ---- */

/* A name a user gives: valid UTF-8, no control characters, at most 255
 * bytes. 0 or an errno. */
static int
check_name(const char *name)
{
    size_t n = strlen(name);
    if (n > NAMES_MAX)
        return ENAMETOOLONG;
    if (!utf8_valid(name, n))
        return EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return EINVAL;
    return 0;
}

/* The trees reserved at the top (DESIGN section 2). */
static bool
reserved_top(const char *name)
{
    static const char *const names[] = {"Inbox", "Calendar", "Tasks", "Notes", "Contacts",
                                        "Conflicts"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    return false;
}

/* The folder of a directory inode; 0 or an errno. The root is folder 0 with
 * no row (f->kind 0). */
static int
dir_folder(struct store *st, fuse_ino_t ino, struct store_folder *f)
{
    memset(f, 0, sizeof *f);
    if (store_ino_is_item(ino))
        return ENOTDIR;
    if (ino == FUSE_ROOT_ID)
        return 0;
    enum store_status s = store_folder_get(st, store_ino_id(ino), f);
    return s == STORE_OK ? 0 : mount_errno(s);
}

/* Folders that hold items the user may write: selectable mail folders and
 * the groupware collections (not Conflicts/, not the root). */
static bool
item_kind(enum store_kind k)
{
    return k != 0 && k != STORE_KIND_CONFLICTS;
}

static int
item_folder(struct store *st, fuse_ino_t ino, struct store_folder *f)
{
    int e = dir_folder(st, ino, f);
    if (e)
        return e;
    if (!item_kind(f->kind) || !f->selectable) {
        store_folder_clear(f);
        return EPERM;
    }
    return 0;
}

static void
reply_item_entry(fuse_req_t req, struct mount *m, int64_t id, int64_t size, int64_t date,
                 struct fuse_file_info *fi)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    mount_fill_entry(&e);
    e.ino = store_ino_item(id);
    mount_file_attr(m, e.ino, size, date, &e.attr);
    if (fi)
        fuse_reply_create(req, &e, fi);
    else
        fuse_reply_entry(req, &e);
}

static void
kick(struct mount *m)
{
    if (m->sync)
        sync_kick(m->sync);
}

/* ---- drafts ---- */

static struct draft *
draft_find(struct mount *m, uint64_t ino)
{
    for (struct draft *d = m->drafts; d; d = d->next)
        if (d->ino == ino)
            return d;
    return NULL;
}

static void
draft_free(struct mount *m, struct draft *d, bool remove_file, struct store *st)
{
    struct draft **pp = &m->drafts;
    while (*pp && *pp != d)
        pp = &(*pp)->next;
    if (*pp)
        *pp = d->next;
    close(d->fd);
    if (remove_file && st) {
        char path[4096];
        store_content_staged_path(st, d->item_id, path, sizeof path);
        unlink(path);
    }
    free(d);
}

/* The draft of ino, made on first use. With `keep` the current content is
 * its start (a write into the middle); without it the draft starts empty
 * (a truncate to zero). Called with drafts_lock held. */
static int
draft_get(struct mount *m, struct store *st, uint64_t ino, bool keep, struct draft **out)
{
    struct draft *d = draft_find(m, ino);
    if (d) {
        *out = d;
        return 0;
    }
    int64_t id = store_ino_id(ino);
    struct store_item it;
    enum store_status s = store_item_get(st, id, &it);
    if (s != STORE_OK)
        return mount_errno(s);
    struct store_folder f;
    int e = item_folder(st, store_ino_folder(it.folder_id), &f);
    if (e)
        return e;
    bool crlf = store_draft_kind_crlf(f.kind);
    store_folder_clear(&f);
    int fd = store_draft_create(st, id, keep);
    if (fd < 0)
        return -fd;
    d = xcalloc(1, sizeof *d);
    d->ino = ino;
    d->item_id = id;
    d->fd = fd;
    d->size = keep ? it.size : 0;
    d->mtime = -1;
    d->touched = util_now_ms();
    d->crlf = crlf;
    d->next = m->drafts;
    m->drafts = d;
    pthread_cond_signal(&c_cond);
    *out = d;
    return 0;
}

bool
write_draft_size(struct mount *m, uint64_t ino, int64_t *size)
{
    pthread_mutex_lock(&m->drafts_lock);
    struct draft *d = draft_find(m, ino);
    if (d)
        *size = d->size;
    pthread_mutex_unlock(&m->drafts_lock);
    return d != NULL;
}

int
write_draft_fd(struct mount *m, uint64_t ino)
{
    pthread_mutex_lock(&m->drafts_lock);
    struct draft *d = draft_find(m, ino);
    int fd = d ? fcntl(d->fd, F_DUPFD_CLOEXEC, 0) : -1;
    pthread_mutex_unlock(&m->drafts_lock);
    return fd;
}

int64_t
write_drafts_in(struct mount *m, struct store *st, int64_t folder_id)
{
    int64_t n = 0;
    pthread_mutex_lock(&m->drafts_lock);
    for (struct draft *d = m->drafts; d; d = d->next) {
        struct store_item it;
        if (store_item_get(st, d->item_id, &it) == STORE_OK && it.folder_id == folder_id)
            n++;
    }
    pthread_mutex_unlock(&m->drafts_lock);
    return n;
}

/* Commit a draft: called with drafts_lock held. 0 or an errno; on failure
 * the draft stays so a later commit can try again. */
static int
draft_commit(struct mount *m, struct store *st, struct draft *d)
{
    int r = store_draft_commit(st, d->item_id, d->fd, d->size, d->crlf, d->mtime, NULL);
    if (r < 0)
        return -r;
    uint64_t ino = d->ino;
    /* Committed (r == 0) or the item is gone (1): the draft file is no
     * longer in drafts/ either way. */
    draft_free(m, d, false, st);
    if (r == 0) {
        /* The kernel's attributes (size after CRLF, the date from the
         * header) may differ from what it computed while it was written. */
        notify_inode_later(ino);
        kick(m);
    }
    return 0;
}

/* Commit ino's draft if it has one. */
static int
commit_ino(struct mount *m, uint64_t ino)
{
    struct store *st = mount_store(m);
    if (!st)
        return EIO;
    pthread_mutex_lock(&m->drafts_lock);
    struct draft *d = draft_find(m, ino);
    int e = d ? draft_commit(m, st, d) : 0;
    pthread_mutex_unlock(&m->drafts_lock);
    return e;
}

/* Commit every draft nobody wrote to for idle_ms (0: every draft). One
 * that fails stays a draft (on disk, committed at the next start at the
 * latest) and is tried again later. */
static void
commit_idle(struct mount *m, int64_t idle_ms)
{
    pthread_mutex_lock(&m->drafts_lock);
    bool any = m->drafts != NULL;
    pthread_mutex_unlock(&m->drafts_lock);
    if (!any)
        return; /* the common case: no store connection needed */
    struct store *st = mount_store(m);
    if (!st)
        return;
    pthread_mutex_lock(&m->drafts_lock);
    int64_t now = util_now_ms();
    for (struct draft *d = m->drafts, *next; d; d = next) {
        next = d->next;
        if (now - d->touched < idle_ms)
            continue;
        int64_t id = d->item_id;
        int e = draft_commit(m, st, d);
        if (e)
            log_warn("item %lld: committing what was written: %s (tried again later)",
                     (long long)id, strerror(e));
    }
    pthread_mutex_unlock(&m->drafts_lock);
}

void
write_commit_all(struct mount *m)
{
    commit_idle(m, 0);
}

void
write_flush_all(struct mount *m)
{
    commit_idle(m, 0);
    pthread_mutex_lock(&m->drafts_lock);
    while (m->drafts)
        draft_free(m, m->drafts, false, NULL); /* kept on disk for the next start */
    pthread_mutex_unlock(&m->drafts_lock);
}

/* ---- the committer thread: drafts whose writer is done ---- */

static bool c_stop, c_running;
static pthread_t c_thread;

static void *
committer_main(void *arg)
{
    struct mount *m = arg;
    pthread_mutex_lock(&m->drafts_lock);
    while (!c_stop) {
        if (!m->drafts) {
            pthread_cond_wait(&c_cond, &m->drafts_lock);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (DRAFT_IDLE_MS / 4) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c_cond, &m->drafts_lock, &until);
        if (c_stop)
            break;
        pthread_mutex_unlock(&m->drafts_lock);
        commit_idle(m, DRAFT_IDLE_MS);
        pthread_mutex_lock(&m->drafts_lock);
    }
    pthread_mutex_unlock(&m->drafts_lock);
    return NULL;
}

int
write_start(struct mount *m)
{
    c_stop = false;
    if (pthread_create(&c_thread, NULL, committer_main, m) != 0)
        return -1;
    c_running = true;
    return 0;
}

void
write_stop(struct mount *m)
{
    if (!c_running)
        return;
    pthread_mutex_lock(&m->drafts_lock);
    c_stop = true;
    pthread_cond_signal(&c_cond);
    pthread_mutex_unlock(&m->drafts_lock);
    pthread_join(c_thread, NULL);
    c_running = false;
}

/* ---- file operations ---- */

static void
create_item(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
            struct fuse_file_info *fi)
{
    struct mount *m = mnt(req);
    write_commit_all(m); /* the journal keeps the user's order */
    int e = check_name(name);
    if (!e && !S_ISREG(mode))
        e = EPERM;
    struct store *st = e ? NULL : mount_store(m);
    if (!e && !st)
        e = EIO;
    struct store_folder f;
    if (!e)
        e = item_folder(st, parent, &f);
    if (e) {
        fuse_reply_err(req, e);
        return;
    }
    int64_t id, now = util_now();
    enum store_status s = local_item_create(st, f.id, name, now, &id);
    store_folder_clear(&f);
    if (s != STORE_OK) {
        fuse_reply_err(req, mount_errno(s));
        return;
    }
    reply_item_entry(req, m, id, 0, now, fi);
}

void
write_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
             struct fuse_file_info *fi)
{
    create_item(req, parent, name, mode, fi);
}

void
write_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    create_item(req, parent, name, mode, NULL);
}

/* A write that keeps part of a file's bytes starts from its content: a
 * message kept in part must be whole first, or the server would lose what
 * is not here. Online it is fetched (waiting a few seconds at most); else
 * the write is refused with EAGAIN (try again online). 0 or an errno. */
static int
whole_before_write(struct mount *m, struct store *st, fuse_ino_t ino)
{
    pthread_mutex_lock(&m->drafts_lock);
    bool drafted = draft_find(m, ino) != NULL;
    pthread_mutex_unlock(&m->drafts_lock);
    if (drafted)
        return 0; /* the draft holds what is written */
    for (int attempt = 0;; attempt++) {
        bool partial = false;
        int fd = store_content_open_any(st, store_ino_id(ino), &partial);
        if (fd >= 0)
            close(fd);
        if (fd < 0 || !partial)
            return 0;
        if (attempt > 0 || !mount_mail_reachable(m)) {
            log_warn("item %lld: not written: only part of the message is here (the whole "
                     "one comes online)", (long long)store_ino_id(ino));
            return EAGAIN;
        }
        sync_fetch_whole(m->sync, store_ino_id(ino), FETCH_WHOLE_WAIT_MS);
    }
}

void
write_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
            struct fuse_file_info *fi)
{
    struct mount *m = mnt(req);
    if (!store_ino_is_item(ino)) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    struct store *st = mount_store(m);
    if (!st) {
        fuse_reply_err(req, EIO);
        return;
    }
    int e = whole_before_write(m, st, ino);
    if (e) {
        fuse_reply_err(req, e);
        return;
    }
    pthread_mutex_lock(&m->drafts_lock);
    struct draft *d;
    e = draft_get(m, st, ino, true, &d);
    ssize_t n = 0;
    int fd = -1;
    if (!e) {
        n = pwrite(d->fd, buf, size, off);
        if (n < 0)
            e = errno;
        else if (off + n > d->size)
            d->size = off + n;
        d->touched = util_now_ms();
        fd = e ? -1 : fcntl(d->fd, F_DUPFD_CLOEXEC, 0);
        if (!e && fd < 0)
            e = errno;
    }
    pthread_mutex_unlock(&m->drafts_lock);
    /* On disk before the write returns (no FLUSH comes at close). Outside
     * the lock: a commit in between synced the same bytes first. */
    if (fd >= 0 && fdatasync(fd) < 0)
        e = errno;
    if (fd >= 0)
        close(fd);
    if (e)
        fuse_reply_err(req, e);
    else
        fuse_reply_write(req, (size_t)n);
}

void
write_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
              struct fuse_file_info *fi)
{
    struct mount *m = mnt(req);
    struct store *st = mount_store(m);
    if (!st) {
        fuse_reply_err(req, EIO);
        return;
    }
    if (((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != m->uid) ||
        ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != m->gid)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    struct stat sb;
    if (!store_ino_is_item(ino)) {
        if (to_set & FUSE_SET_ATTR_SIZE) {
            fuse_reply_err(req, EISDIR);
            return;
        }
        /* Directory modes are fixed (0700); times are kept, locally only,
         * so rsync -a and cp -a find what they set. */
        int64_t dmtime = 0;
        if (ino != FUSE_ROOT_ID) {
            struct store_folder f;
            if (store_folder_get(st, store_ino_id(ino), &f) == STORE_OK) {
                dmtime = f.mtime;
                store_folder_clear(&f);
            }
            int64_t want = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? util_now()
                           : (to_set & FUSE_SET_ATTR_MTIME)   ? (int64_t)attr->st_mtime
                                                              : -1;
            if (want > 0 && store_folder_set_mtime(st, store_ino_id(ino), want) == STORE_OK)
                dmtime = want;
        }
        mount_dir_attr(m, ino, dmtime, &sb);
        fuse_reply_attr(req, &sb, 86400.0);
        return;
    }
    int e = 0;
    if ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size > 0)
        e = whole_before_write(m, st, ino); /* a truncate keeps bytes */
    if (e) {
        fuse_reply_err(req, e);
        return;
    }
    int64_t mtime = -1;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW)
        mtime = util_now();
    else if (to_set & FUSE_SET_ATTR_MTIME)
        mtime = attr->st_mtime;
    pthread_mutex_lock(&m->drafts_lock);
    struct draft *d = draft_find(m, ino);
    if (to_set & FUSE_SET_ATTR_SIZE) {
        e = draft_get(m, st, ino, attr->st_size > 0, &d);
        if (!e && ftruncate(d->fd, attr->st_size) < 0)
            e = errno;
        if (!e && fdatasync(d->fd) < 0) /* durable on return, as a write */
            e = errno;
        if (!e) {
            d->size = attr->st_size;
            d->touched = util_now_ms();
        }
    }
    if (!e && mtime >= 0 && d)
        d->mtime = mtime;
    int64_t draft_size = d ? d->size : -1;
    if (mtime < 0 && d && d->mtime >= 0)
        mtime = d->mtime; /* set earlier, applied at the commit */
    pthread_mutex_unlock(&m->drafts_lock);
    if (!e && mtime >= 0 && !d) {
        enum store_status s = local_item_date(st, store_ino_id(ino), mtime);
        e = mount_errno(s);
    }
    struct store_item it;
    if (!e) {
        enum store_status s = store_item_get(st, store_ino_id(ino), &it);
        e = mount_errno(s);
    }
    if (e) {
        fuse_reply_err(req, e);
        return;
    }
    mount_file_attr(m, ino, draft_size >= 0 ? draft_size : it.size,
                    mtime >= 0 ? mtime : it.date, &sb);
    fuse_reply_attr(req, &sb, 86400.0);
}

void
write_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mount *m = mnt(req);
    int e = store_ino_is_item(ino) ? commit_ino(m, ino) : 0;
    /* When the kernel opens files without asking, a FLUSH at every close
     * would be the only round trip of reading a file (cat, grep -r took 2x
     * and 3x native). Writes are durable as they come, so decline it: the
     * kernel then stops sending it (ENOSYS counts as success). */
    if (!e && m->no_open)
        log_debug("FLUSH declined: writes are synced as they come");
    fuse_reply_err(req, e ? e : m->no_open ? ENOSYS : 0);
}

void
write_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    fuse_reply_err(req, store_ino_is_item(ino) ? commit_ino(mnt(req), ino) : 0);
}

void
write_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    /* Errors here reach nobody (close returned already); a draft that
     * fails stays for the committer thread or the next start. */
    if (store_ino_is_item(ino))
        commit_ino(mnt(req), ino);
    fuse_reply_err(req, 0);
}

void
write_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                struct fuse_file_info *fi)
{
    fuse_reply_err(req, EOPNOTSUPP);
}

void
write_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, EPERM);
}

void
write_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    fuse_reply_err(req, EPERM);
}

/* ---- names ---- */

void
write_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct mount *m = mnt(req);
    write_commit_all(m); /* the journal keeps the user's order */
    struct store *st = mount_store(m);
    struct store_folder f;
    int e = st ? dir_folder(st, parent, &f) : EIO;
    if (e) {
        fuse_reply_err(req, e);
        return;
    }
    struct store_item it;
    enum store_status s = f.id ? store_item_lookup(st, f.id, name, &it) : STORE_NOTFOUND;
    if (s == STORE_NOTFOUND) {
        struct store_folder sub;
        e = store_folder_lookup(st, f.id, name, &sub) == STORE_OK ? EISDIR : ENOENT;
        if (e == EISDIR)
            store_folder_clear(&sub);
    } else if (s != STORE_OK) {
        e = mount_errno(s);
    } else if (!item_kind(f.kind) && f.kind != STORE_KIND_CONFLICTS) {
        e = EPERM; /* rm in Conflicts/ discards a copy */
    }
    store_folder_clear(&f);
    if (!e) {
        pthread_mutex_lock(&m->drafts_lock);
        struct draft *d = draft_find(m, store_ino_item(it.id));
        if (d)
            draft_free(m, d, true, st);
        s = local_item_delete(st, it.id);
        pthread_mutex_unlock(&m->drafts_lock);
        e = mount_errno(s);
    }
    if (!e)
        kick(m);
    fuse_reply_err(req, e);
}

void
write_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct mount *m = mnt(req);
    write_commit_all(m); /* the journal keeps the user's order */
    int e = check_name(name);
    struct store *st = e ? NULL : mount_store(m);
    if (!e && !st)
        e = EIO;
    struct store_folder f;
    if (!e)
        e = dir_folder(st, parent, &f);
    if (e) {
        fuse_reply_err(req, e);
        return;
    }
    if (f.id == 0 && reserved_top(name))
        e = EEXIST; /* Inbox and the groupware trees are not mail folders to make */
    else if (f.id == 0 && !m->has_mail)
        e = EPERM; /* a mail folder could never reach a server */
    else if (f.id != 0 && !item_kind(f.kind))
        e = EPERM;
    int64_t id = 0;
    if (!e) {
        struct store_item it;
        if (f.id && store_item_lookup(st, f.id, name, &it) == STORE_OK) {
            e = EEXIST;
        } else {
            enum store_status s = local_folder_create(st, f.id, name, &id);
            e = mount_errno(s);
        }
    }
    store_folder_clear(&f);
    if (e) {
        fuse_reply_err(req, e);
        return;
    }
    kick(m);
    struct fuse_entry_param ep;
    memset(&ep, 0, sizeof ep);
    mount_fill_entry(&ep);
    ep.ino = store_ino_folder(id);
    mount_dir_attr(m, ep.ino, 0, &ep.attr);
    fuse_reply_entry(req, &ep);
}

/* The folders a user may not remove or rename: Conflicts/, INBOX and the
 * top directories of the groupware kinds. */
static bool
fixed_folder(const struct store_folder *f)
{
    if (!item_kind(f->kind))
        return true;
    if (f->parent_id != 0)
        return false;
    return f->kind != STORE_KIND_MAIL || (f->server_name && strcmp(f->server_name, "INBOX") == 0);
}

void
write_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct mount *m = mnt(req);
    write_commit_all(m); /* the journal keeps the user's order */
    struct store *st = mount_store(m);
    struct store_folder f;
    int e = st ? dir_folder(st, parent, &f) : EIO;
    if (e) {
        fuse_reply_err(req, e);
        return;
    }
    struct store_folder sub;
    enum store_status s = store_folder_lookup(st, f.id, name, &sub);
    store_folder_clear(&f);
    if (s != STORE_OK) {
        struct store_item it;
        e = f.id && store_item_lookup(st, f.id, name, &it) == STORE_OK ? ENOTDIR
                                                                       : mount_errno(s);
        fuse_reply_err(req, e);
        return;
    }
    if (fixed_folder(&sub)) {
        e = EPERM;
    } else {
        s = local_folder_delete(st, sub.id);
        e = s == STORE_EXISTS ? ENOTEMPTY : mount_errno(s);
    }
    store_folder_clear(&sub);
    if (!e)
        kick(m);
    fuse_reply_err(req, e);
}

static void
rename_folder(fuse_req_t req, struct mount *m, struct store *st, struct store_folder *src,
              const struct store_folder *dst_parent, const char *newname, unsigned flags)
{
    int e = 0;
    if (fixed_folder(src))
        e = EPERM;
    else if (dst_parent->id == 0 && reserved_top(newname))
        e = EPERM;
    else if (dst_parent->id != 0 && dst_parent->kind != src->kind)
        e = item_kind(dst_parent->kind) ? EXDEV : EPERM;
    else if (dst_parent->id == 0 && src->kind != STORE_KIND_MAIL)
        e = EXDEV;
    struct store_item it;
    if (!e && dst_parent->id && store_item_lookup(st, dst_parent->id, newname, &it) == STORE_OK)
        e = ENOTDIR;
    struct store_folder t;
    if (!e && store_folder_lookup(st, dst_parent->id, newname, &t) == STORE_OK) {
        if (t.id != src->id && ((flags & RENAME_NOREPLACE) || fixed_folder(&t)))
            e = (flags & RENAME_NOREPLACE) ? EEXIST : EPERM;
        store_folder_clear(&t);
    }
    if (!e) {
        enum store_status s = local_folder_rename(st, src->id, dst_parent->id, newname, true);
        e = s == STORE_EXISTS ? ENOTEMPTY : mount_errno(s);
    }
    if (!e)
        kick(m);
    fuse_reply_err(req, e);
}

/* Where a copy in Conflicts/ may go: within Conflicts/, or back to a
 * folder of the kind it came from (EXDEV elsewhere, as across kinds). */
static int
restore_check(struct store *st, int64_t item_id, const struct store_folder *to)
{
    if (to->kind == STORE_KIND_CONFLICTS)
        return 0;
    if (!item_kind(to->kind) || !to->selectable)
        return EPERM;
    int64_t of;
    enum store_kind kind;
    bool notice;
    if (conflict_info(st, item_id, &of, &kind, &notice) != STORE_OK)
        return EIO;
    return kind && kind != to->kind ? EXDEV : 0;
}

void
write_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
             const char *newname, unsigned int flags)
{
    struct mount *m = mnt(req);
    write_commit_all(m); /* the journal keeps the user's order */
    if (flags & RENAME_EXCHANGE) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    int e = check_name(newname);
    struct store *st = e ? NULL : mount_store(m);
    if (!e && !st)
        e = EIO;
    struct store_folder from = {0}, to = {0};
    if (!e)
        e = dir_folder(st, parent, &from);
    if (!e)
        e = dir_folder(st, newparent, &to);
    if (e) {
        store_folder_clear(&from);
        fuse_reply_err(req, e);
        return;
    }
    struct store_folder sub;
    if (store_folder_lookup(st, from.id, name, &sub) == STORE_OK) {
        rename_folder(req, m, st, &sub, &to, newname, flags);
        store_folder_clear(&sub);
        store_folder_clear(&from);
        store_folder_clear(&to);
        return;
    }
    struct store_item it;
    enum store_status s = from.id ? store_item_lookup(st, from.id, name, &it) : STORE_NOTFOUND;
    if (s != STORE_OK)
        e = mount_errno(s);
    else if (from.kind == STORE_KIND_CONFLICTS)
        e = restore_check(st, it.id, &to); /* mv out of Conflicts/ restores */
    else if (!item_kind(from.kind) || !item_kind(to.kind) || !to.selectable)
        e = EPERM;
    else if (from.kind != to.kind)
        e = EXDEV; /* a message is no contact: mv copies and deletes, which fails */
    if (!e && store_folder_lookup(st, to.id, newname, &sub) == STORE_OK) {
        store_folder_clear(&sub);
        e = EISDIR;
    }
    if (!e) {
        /* A write under way that could not be committed above: the move
         * must take the latest bytes. */
        e = commit_ino(m, store_ino_item(it.id));
    }
    if (!e) {
        s = local_item_rename(st, it.id, to.id, newname, !(flags & RENAME_NOREPLACE));
        e = mount_errno(s);
        struct store_item still;
        if (!e && store_item_get(st, it.id, &still) == STORE_NOTFOUND) {
            /* The file merged into the item already there (a copy restored
             * from Conflicts/ that differed only by its flags): the kernel
             * will take the name for the moved file's inode, which is gone. */
            notify_entry_later(newparent, newname);
        }
    }
    store_folder_clear(&from);
    store_folder_clear(&to);
    if (!e)
        kick(m);
    fuse_reply_err(req, e);
}

/* ---- attributes ---- */

static int
forget_size(void *ctx, const struct store_item *it)
{
    notify_inode_later(store_ino_item(it->id));
    return 0;
}

/* Online or offline: kept in the store (it lasts across remounts), then
 * applied. Shared with the control socket. */
int
mount_set_mode(struct mount *m, struct store *st, bool offline)
{
    if (store_meta_set(st, "mode", offline ? "offline" : "online") != STORE_OK) {
        log_error("saving the mode: %s", store_errmsg(st));
        return EIO;
    }
    if (m->sync)
        sync_set_offline(m->sync, offline);
    /* Messages kept in part show another size now (see item_size): the
     * kernel forgets the old one before the switch returns, so a stat right
     * after it agrees with a read. */
    store_item_each_partial(st, 0, forget_size, NULL);
    notify_drain(2000);
    log_info("account is now %s", offline ? "offline" : "online");
    return 0;
}

/* ---- sync modes (user.sync.mode, .recursive) ---- */

static int collect_subfolder(void *ctx, const struct store_dirent *e);
static bool value_is(const char *value, size_t size, const char *word);

struct mode_ctx {
    struct store *st;
    enum store_mode mode;
    int64_t *ids; /* owned: the folders to set */
    size_t n, alloc;
};

static void
mode_add(struct mode_ctx *mc, int64_t id)
{
    if (mc->n == mc->alloc) {
        mc->alloc = mc->alloc ? mc->alloc * 2 : 16;
        mc->ids = xrealloc(mc->ids, mc->alloc * sizeof *mc->ids);
    }
    mc->ids[mc->n++] = id;
}

/* The folder and every folder below it that exists now, that the mode fits
 * (headers only on mail folders; never Conflicts). */
static void
mode_collect(struct mode_ctx *mc, int64_t id)
{
    struct store_folder f;
    if (id && store_folder_get(mc->st, id, &f) == STORE_OK) {
        bool fits = f.kind != STORE_KIND_CONFLICTS &&
                    (mc->mode != STORE_MODE_HEADERS || f.kind == STORE_KIND_MAIL);
        store_folder_clear(&f);
        if (fits)
            mode_add(mc, id);
    }
    struct mode_ctx kids = {.st = mc->st};
    store_dir_list(mc->st, id, 0, collect_subfolder, &kids);
    for (size_t i = 0; i < kids.n; i++)
        mode_collect(mc, kids.ids[i]);
    free(kids.ids);
}

static int
collect_subfolder(void *ctx, const struct store_dirent *e)
{
    struct mode_ctx *mc = ctx;
    if (!e->is_dir)
        return 1; /* folders come first: the rest are items */
    mode_add(mc, store_ino_id(e->ino));
    return 0;
}

static bool
parse_mode(const char *value, size_t size, enum store_mode *out)
{
    if (value_is(value, size, "full"))
        *out = STORE_MODE_FULL;
    else if (value_is(value, size, "headers"))
        *out = STORE_MODE_HEADERS;
    else if (value_is(value, size, "off"))
        *out = STORE_MODE_OFF;
    else
        return false;
    return true;
}

static int
set_sync_mode(struct mount *m, fuse_ino_t ino, bool recursive, const char *value,
              size_t size)
{
    struct store *st = mount_store(m);
    if (!st)
        return EIO;
    enum store_mode mode;
    if (!parse_mode(value, size, &mode))
        return EINVAL;
    struct mode_ctx mc = {.st = st, .mode = mode};
    int e = 0;
    if (ino == FUSE_ROOT_ID) {
        if (!recursive)
            return ENOTSUP; /* the root is not a folder; .recursive covers all */
        mode_collect(&mc, 0);
    } else {
        struct store_folder f;
        e = dir_folder(st, ino, &f);
        if (e)
            return e;
        if (f.kind == STORE_KIND_CONFLICTS ||
            (mode == STORE_MODE_HEADERS && f.kind != STORE_KIND_MAIL))
            e = EINVAL;
        store_folder_clear(&f);
        if (e)
            return e;
        if (recursive)
            mode_collect(&mc, f.id);
        else
            mode_add(&mc, f.id);
    }
    enum store_status s = store_begin(st);
    for (size_t i = 0; s == STORE_OK && i < mc.n; i++) {
        /* A collection that was off missed changes its sync token moved
         * past: list it whole once. */
        struct store_folder f;
        if (mode != STORE_MODE_OFF && store_folder_get(st, mc.ids[i], &f) == STORE_OK) {
            if (f.kind != STORE_KIND_MAIL && f.mode == STORE_MODE_OFF && f.sync_token) {
                free(f.sync_token);
                f.sync_token = NULL;
                s = store_folder_update_sync(st, &f);
            }
            store_folder_clear(&f);
        }
        if (s == STORE_OK)
            s = store_folder_set_mode(st, mc.ids[i], mode);
    }
    if (s == STORE_OK)
        s = store_commit(st);
    else
        store_rollback(st);
    e = mount_errno(s);
    /* What the new mode asks to download comes at once. */
    for (size_t i = 0; !e && m->sync && mode != STORE_MODE_OFF && i < mc.n; i++)
        sync_request(m->sync, mc.ids[i]);
    free(mc.ids);
    return e;
}

static bool
value_is(const char *value, size_t size, const char *word)
{
    return size == strlen(word) && memcmp(value, word, size) == 0;
}

void
write_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
               size_t size, int flags)
{
    struct mount *m = mnt(req);
    write_commit_all(m); /* the journal keeps the user's order */
    if (ino == FUSE_ROOT_ID && strcmp(name, "user.mailfs.mode") == 0) {
        bool off = value_is(value, size, "offline");
        if (!off && !value_is(value, size, "online")) {
            fuse_reply_err(req, EINVAL);
            return;
        }
        struct store *st = mount_store(m);
        fuse_reply_err(req, st ? mount_set_mode(m, st, off) : EIO);
        return;
    }
    if (!store_ino_is_item(ino) && (strcmp(name, "user.sync.mode") == 0 ||
                                    strcmp(name, "user.sync.mode.recursive") == 0)) {
        fuse_reply_err(req, set_sync_mode(m, ino, strcmp(name, "user.sync.mode") != 0, value,
                                          size));
        return;
    }
    if (strcmp(name, "user.mail.flags") != 0 || !store_ino_is_item(ino)) {
        /* Read-only attributes; names not known here. */
        bool readonly = strcmp(name, "user.sync.state") == 0 ||
                        strcmp(name, "user.sync.last") == 0 ||
                        strcmp(name, "user.sync.pending") == 0 ||
                        strcmp(name, "user.mailfs.connection") == 0;
        fuse_reply_err(req, readonly ? EPERM : ENOTSUP);
        return;
    }
    char *flags_text = flags_parse(value, size);
    if (!flags_text || memchr(value, '\0', size)) {
        free(flags_text);
        fuse_reply_err(req, EINVAL);
        return;
    }
    struct store *st = mount_store(m);
    struct store_item it;
    enum store_status s = st ? store_item_get(st, store_ino_id(ino), &it) : STORE_ERROR;
    struct store_folder f = {0};
    int e = mount_errno(s);
    if (!e)
        e = item_folder(st, store_ino_folder(it.folder_id), &f);
    if (!e && f.kind != STORE_KIND_MAIL)
        e = ENOTSUP; /* only messages have flags */
    if (!e) {
        s = local_item_flags(st, it.id, flags_text);
        e = mount_errno(s);
    }
    store_folder_clear(&f);
    free(flags_text);
    if (!e)
        kick(m);
    fuse_reply_err(req, e);
}

void
write_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    fuse_reply_err(req, strcmp(name, "user.mail.flags") == 0 ? EPERM : ENOTSUP);
}
