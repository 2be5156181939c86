/* ops: the FUSE low-level operations. Every answer comes from the store on
 * the calling thread's own connection; nothing here waits on the network.
 * Entries, attributes and pages are cached by the kernel for long and
 * invalidated explicitly when the sync thread changes something
 * (mount_on_change). Each handler replies exactly once. */
#include "fs/mount.h"
#include "store/conflict.h"

#include "common/log.h"
#include "common/util.h"
#include "store/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Long kernel cache lifetimes: correctness comes from explicit invalidation. */
#define CACHE_TIMEOUT 86400.0

static struct mount *
mnt(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* The calling FUSE thread's store connection, opened on first use. */
struct store *
mount_store(struct mount *m)
{
    struct store *st = pthread_getspecific(m->store_key);
    if (st)
        return st;
    char *err = NULL;
    if (store_open(m->store_dir, 0, &st, &err) != STORE_OK) {
        log_error("%s", err);
        free(err);
        return NULL;
    }
    /* The kernel learns of this thread's changes from the replies. */
    store_set_recording(st, false);
    pthread_setspecific(m->store_key, st);
    return st;
}

void
mount_opened(struct mount *m, int64_t folder_id)
{
    if (folder_id <= 0 || !m->sync)
        return;
    /* Cheap enough for every lookup: two atomic stores. */
    if (atomic_exchange(&m->last_opened, folder_id) != folder_id)
        sync_hint_folder(m->sync, folder_id);
}

int
mount_errno(enum store_status s)
{
    switch (s) {
    case STORE_OK: return 0;
    case STORE_NOTFOUND: return ENOENT;
    case STORE_EXISTS: return EEXIST;
    case STORE_BUSY: return EAGAIN;
    case STORE_INVALID: return EINVAL;
    default: return EIO;
    }
}

void
mount_dir_attr(struct mount *m, uint64_t ino, int64_t mtime, struct stat *sb)
{
    memset(sb, 0, sizeof *sb);
    sb->st_ino = ino;
    sb->st_mode = S_IFDIR | 0700;
    sb->st_nlink = 2;
    sb->st_uid = m->uid;
    sb->st_gid = m->gid;
    sb->st_size = 4096;
    sb->st_blksize = 4096;
    sb->st_mtime = sb->st_ctime = sb->st_atime = mtime > 0 ? mtime : m->mount_time;
}

void
mount_file_attr(struct mount *m, uint64_t ino, int64_t size, int64_t date, struct stat *sb)
{
    memset(sb, 0, sizeof *sb);
    sb->st_ino = ino;
    sb->st_mode = S_IFREG | 0600;
    sb->st_nlink = 1;
    sb->st_uid = m->uid;
    sb->st_gid = m->gid;
    sb->st_size = size;
    sb->st_blksize = 4096;
    sb->st_blocks = (size + 511) / 512;
    sb->st_mtime = sb->st_ctime = sb->st_atime = date;
}

void
mount_fill_entry(struct fuse_entry_param *e)
{
    e->generation = 1;
    e->attr_timeout = CACHE_TIMEOUT;
    e->entry_timeout = CACHE_TIMEOUT;
}

bool
mount_online(struct mount *m)
{
    return m->sync && !sync_is_offline(m->sync);
}

bool
mount_mail_reachable(struct mount *m)
{
    return m->sync && sync_mail_reachable(m->sync);
}

/* The size a file shows. A message kept in part shows its whole size while
 * online (reading it fetches the whole message, so cat, cp and stat agree)
 * and the size of the part kept here while offline or while the server
 * cannot be reached (that is what reading gives then). Switching modes, or
 * the server going away or coming back, drops the kernel's cached sizes. */
static int64_t
item_size(struct mount *m, bool partial, int64_t size, int64_t full_size)
{
    return partial && full_size > size && mount_mail_reachable(m) ? full_size : size;
}

static bool
is_dir_ino(fuse_ino_t ino)
{
    return !store_ino_is_item(ino);
}

static void
op_init(void *userdata, struct fuse_conn_info *conn)
{
    struct mount *m = userdata;
    /* Opens cost a round trip per file; files never change under an open
     * handle, so let the kernel skip them where it can (DESIGN section 8). */
    m->no_open = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
    /* ls -l should get attributes with the listing, every time. */
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
    /* Without open requests, O_TRUNC must reach us as a setattr. */
    conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
}

static void
op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct mount *m = mnt(req);
    if (strlen(name) > NAMES_MAX) {
        fuse_reply_err(req, ENAMETOOLONG);
        return;
    }
    if (!is_dir_ino(parent)) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    struct store *st = mount_store(m);
    if (!st) {
        fuse_reply_err(req, EIO);
        return;
    }
    int64_t fid = store_ino_id(parent);
    mount_opened(m, fid);
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    mount_fill_entry(&e);
    struct store_folder f;
    enum store_status s = store_folder_lookup(st, fid, name, &f);
    if (s == STORE_OK) {
        e.ino = store_ino_folder(f.id);
        mount_dir_attr(m, e.ino, f.mtime, &e.attr);
        store_folder_clear(&f);
        fuse_reply_entry(req, &e);
        return;
    }
    if (s != STORE_NOTFOUND) {
        fuse_reply_err(req, mount_errno(s));
        return;
    }
    struct store_item it;
    s = fid == 0 ? STORE_NOTFOUND : store_item_lookup(st, fid, name, &it);
    if (s == STORE_OK) {
        e.ino = store_ino_item(it.id);
        mount_file_attr(m, e.ino, item_size(m, it.state == STORE_ITEM_PARTIAL, it.size,
                                            it.full_size),
                        it.date, &e.attr);
        fuse_reply_entry(req, &e);
        return;
    }
    if (s == STORE_NOTFOUND) {
        /* A cached negative entry: the sync thread invalidates the name when
         * it appears. */
        e.ino = 0;
        fuse_reply_entry(req, &e);
        return;
    }
    fuse_reply_err(req, mount_errno(s));
}

static void
op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    /* Inodes are store rows: nothing is held per lookup. */
    fuse_reply_none(req);
}

static void
op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    fuse_reply_none(req);
}

static int
node_attr(struct mount *m, struct store *st, fuse_ino_t ino, struct stat *sb)
{
    if (ino == FUSE_ROOT_ID) {
        mount_dir_attr(m, ino, 0, sb);
        return 0;
    }
    if (is_dir_ino(ino)) {
        struct store_folder f;
        enum store_status s = store_folder_get(st, store_ino_id(ino), &f);
        if (s != STORE_OK)
            return mount_errno(s);
        store_folder_clear(&f);
        mount_dir_attr(m, ino, f.mtime, sb);
        return 0;
    }
    struct store_item it;
    enum store_status s = store_item_get(st, store_ino_id(ino), &it);
    if (s != STORE_OK)
        return mount_errno(s);
    /* Bytes written but not yet committed count: the kernel must not see
     * the file shrink under a writer. */
    int64_t size = item_size(m, it.state == STORE_ITEM_PARTIAL, it.size, it.full_size);
    write_draft_size(m, ino, &size);
    mount_file_attr(m, ino, size, it.date, sb);
    return 0;
}

static void
op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mount *m = mnt(req);
    struct store *st = mount_store(m);
    struct stat sb;
    int e = st ? node_attr(m, st, ino, &sb) : EIO;
    if (e)
        fuse_reply_err(req, e);
    else
        fuse_reply_attr(req, &sb, CACHE_TIMEOUT);
}

static void
op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (!is_dir_ino(ino)) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    /* The kernel keeps the listing until the sync thread invalidates the
     * directory. */
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
    mount_opened(mnt(req), store_ino_id(ino));
    fuse_reply_open(req, fi);
}

struct dir_fill {
    struct mount *m;
    fuse_req_t req;
    char *buf;
    size_t size, used;
    bool plus;
};

static bool
add_entry(struct dir_fill *df, const char *name, const struct stat *sb, uint64_t off,
          bool real)
{
    size_t room = df->size - df->used;
    size_t n;
    if (df->plus) {
        struct fuse_entry_param e;
        memset(&e, 0, sizeof e);
        e.attr = *sb;
        if (real) {
            e.ino = sb->st_ino;
            mount_fill_entry(&e);
        }
        n = fuse_add_direntry_plus(df->req, df->buf + df->used, room, name, &e, (off_t)off);
    } else {
        n = fuse_add_direntry(df->req, df->buf + df->used, room, name, sb, (off_t)off);
    }
    if (n > room)
        return false;
    df->used += n;
    return true;
}

static int
dir_cb(void *ctx, const struct store_dirent *d)
{
    struct dir_fill *df = ctx;
    struct stat sb;
    if (d->is_dir)
        mount_dir_attr(df->m, d->ino, d->date, &sb);
    else
        mount_file_attr(df->m, d->ino, item_size(df->m, d->partial, d->size, d->full_size),
                        d->date, &sb);
    return add_entry(df, d->name, &sb, d->ino, true) ? 0 : 1;
}

/* Offsets: 1 after ".", 2 after "..", then the inode number of the last
 * entry returned (store_dir_list cursors). */
static void
do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
    struct mount *m = mnt(req);
    struct store *st = mount_store(m);
    if (!st) {
        fuse_reply_err(req, EIO);
        return;
    }
    struct dir_fill df = {.m = m, .req = req, .size = size, .plus = plus};
    df.buf = xmalloc(size);
    struct stat sb;
    bool full = false;
    /* "." and "..": the times shown come with their own lookups. */
    if (off < 1) {
        mount_dir_attr(m, ino, 0, &sb);
        full = !add_entry(&df, ".", &sb, 1, false);
    }
    if (!full && off < 2) {
        mount_dir_attr(m, ino, 0, &sb);
        full = !add_entry(&df, "..", &sb, 2, false);
    }
    enum store_status s = STORE_OK;
    if (!full)
        s = store_dir_list(st, store_ino_id(ino), off <= 2 ? 0 : (uint64_t)off, dir_cb, &df);
    if (s != STORE_OK && df.used == 0)
        fuse_reply_err(req, mount_errno(s));
    else
        fuse_reply_buf(req, df.buf, df.used);
    free(df.buf);
}

static void
op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, false);
}

static void
op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
               struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, true);
}

static void
op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fuse_reply_err(req, 0);
}

static void
op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mount *m = mnt(req);
    if (is_dir_ino(ino)) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if (m->no_open) {
        /* From now on the kernel opens files without asking. */
        fuse_reply_err(req, ENOSYS);
        return;
    }
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
}

static void
op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    struct mount *m = mnt(req);
    if (is_dir_ino(ino)) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    /* Content files are found from the inode alone: no database read. */
    struct store *st = mount_store(m);
    if (!st) {
        fuse_reply_err(req, EIO);
        return;
    }
    int fd = write_draft_fd(m, ino);
    bool partial = false;
    if (fd < 0)
        fd = store_content_open_any(st, store_ino_id(ino), &partial);
    if (((fd >= 0 && partial) || fd == -ENOENT) && mount_mail_reachable(m)) {
        /* Read while online: fetch it whole (once, then kept), waiting a
         * few seconds at most; else the part kept here is what there is.
         * A content file lost from the store is asked for the same way. */
        if (fd >= 0)
            close(fd);
        sync_fetch_whole(m->sync, store_ino_id(ino), FETCH_WHOLE_WAIT_MS);
        fd = store_content_open_any(st, store_ino_id(ino), &partial);
    }
    if (fd < 0) {
        log_warn("content of item %lld missing: %s", (long long)store_ino_id(ino),
                 strerror(-fd));
        fuse_reply_err(req, -fd == ENOENT ? EIO : -fd);
        return;
    }
    struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    buf.buf[0].fd = fd;
    buf.buf[0].pos = off;
    fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
    close(fd);
}

static void
op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct mount *m = mnt(req);
    struct statvfs sv;
    if (statvfs(m->store_dir, &sv) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    sv.f_namemax = NAMES_MAX;
    fuse_reply_statfs(req, &sv);
}

/* ---- extended attributes ---- */

static const char *const item_attrs[] = {"user.sync.state", "user.mail.flags"};
static const char *const folder_attrs[] = {"user.sync.mode", "user.sync.state",
                                           "user.sync.last", "user.sync.pending"};
static const char *const root_attrs[] = {"user.mailfs.mode", "user.mailfs.connection"};

static const char *
item_state_name(enum store_item_state s)
{
    switch (s) {
    case STORE_ITEM_SYNCED: return "synced";
    case STORE_ITEM_PARTIAL: return "partial";
    case STORE_ITEM_LOCAL: return "local";
    case STORE_ITEM_PENDING: return "pending";
    case STORE_ITEM_CONFLICT: return "conflict";
    case STORE_ITEM_ERROR: return "error";
    }
    return "synced";
}

const char *
mount_mode_name(enum store_mode mode)
{
    switch (mode) {
    case STORE_MODE_FULL: return "full";
    case STORE_MODE_HEADERS: return "headers";
    case STORE_MODE_OFF: return "off";
    case STORE_MODE_DEFAULT: break;
    }
    return "full";
}

/* A copy in Conflicts/ says where it came from. */
static bool
item_has_origin(struct mount *m, fuse_ino_t ino)
{
    struct store *st = mount_store(m);
    char *origin = NULL;
    bool has = st && conflict_origin(st, store_ino_id(ino), &origin) == STORE_OK && origin;
    free(origin);
    return has;
}

/* Only messages have flags. */
static bool
item_is_mail(struct mount *m, fuse_ino_t ino)
{
    struct store *st = mount_store(m);
    struct store_item it;
    struct store_folder f;
    if (!st || store_item_get(st, store_ino_id(ino), &it) != STORE_OK ||
        store_folder_get(st, it.folder_id, &f) != STORE_OK)
        return false;
    bool mail = f.kind == STORE_KIND_MAIL;
    if (f.kind == STORE_KIND_CONFLICTS) {
        /* a copy of a message keeps its flags (a restore sends them) */
        int64_t of;
        enum store_kind kind;
        bool notice;
        mail = conflict_info(st, it.id, &of, &kind, &notice) == STORE_OK &&
               kind == STORE_KIND_MAIL;
    }
    store_folder_clear(&f);
    return mail;
}

/* The value of attribute `name` on node ino, or NULL with *e set. */
static char *
xattr_value(struct mount *m, struct store *st, fuse_ino_t ino, const char *name, int *e)
{
    *e = ENODATA;
    if (ino == FUSE_ROOT_ID) {
        if (strcmp(name, "user.mailfs.mode") == 0)
            return xstrdup(m->sync && sync_is_offline(m->sync) ? "offline" : "online");
        if (strcmp(name, "user.mailfs.connection") == 0)
            return m->sync ? sync_connection_state(m->sync) : xstrdup("offline");
        return NULL;
    }
    if (is_dir_ino(ino)) {
        struct store_folder f;
        enum store_status s = store_folder_get(st, store_ino_id(ino), &f);
        if (s != STORE_OK) {
            *e = mount_errno(s);
            return NULL;
        }
        char *v = NULL;
        if (strcmp(name, "user.sync.mode") == 0) {
            /* Conflicts/ never syncs. */
            v = xstrdup(f.kind == STORE_KIND_CONFLICTS
                            ? "off"
                            : mount_mode_name(store_folder_mode(&f, m->mail_default)));
        } else if (strcmp(name, "user.sync.state") == 0) {
            if (f.kind == STORE_KIND_CONFLICTS)
                v = xstrdup("idle");
            else
                v = m->sync ? sync_folder_state(m->sync, f.id) : xstrdup("idle");
            if ((strcmp(v, "waiting") == 0 && f.last_sync) ||
                (strcmp(v, "idle") == 0 && f.error)) {
                free(v);
                v = f.error ? xasprintf("error: %s", f.error) : xstrdup("idle");
            }
        } else if (strcmp(name, "user.sync.last") == 0) {
            char iso[32] = "";
            if (f.last_sync)
                util_iso8601(f.last_sync, iso);
            v = xstrdup(f.last_sync ? iso : "never");
        } else if (strcmp(name, "user.sync.pending") == 0) {
            int64_t n = 0;
            enum store_status js = journal_count(st, f.id, &n);
            if (js != STORE_OK)
                *e = mount_errno(js);
            else
                v = xasprintf("%lld", (long long)(n + write_drafts_in(m, st, f.id)));
        }
        store_folder_clear(&f);
        return v;
    }
    struct store_item it;
    enum store_status s = store_item_get(st, store_ino_id(ino), &it);
    if (s != STORE_OK) {
        *e = mount_errno(s);
        return NULL;
    }
    if (strcmp(name, "user.sync.state") == 0) {
        int64_t drafted;
        if (write_draft_size(m, ino, &drafted))
            return xstrdup("pending"); /* written here, committed soon */
        char *why = NULL;
        if (it.state == STORE_ITEM_ERROR && store_item_error(st, it.id, &why) == STORE_OK &&
            why) {
            char *v = xasprintf("error: %s", why);
            free(why);
            return v;
        }
        return xstrdup(item_state_name(it.state));
    }
    if (strcmp(name, "user.conflict.origin") == 0) {
        char *origin = NULL;
        s = conflict_origin(st, it.id, &origin);
        if (s != STORE_OK)
            *e = mount_errno(s);
        return origin; /* NULL: ENODATA, not a copy */
    }
    if (strcmp(name, "user.mail.flags") == 0 && item_is_mail(m, ino)) {
        char *flags;
        s = store_item_flags(st, it.id, &flags);
        if (s != STORE_OK) {
            *e = mount_errno(s);
            return NULL;
        }
        return flags;
    }
    return NULL;
}

static void
reply_sized(fuse_req_t req, const char *data, size_t len, size_t size)
{
    if (size == 0)
        fuse_reply_xattr(req, len);
    else if (size < len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, data, len);
}

static void
op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct mount *m = mnt(req);
    struct store *st = mount_store(m);
    if (!st) {
        fuse_reply_err(req, EIO);
        return;
    }
    if (strncmp(name, "user.", 5) != 0) {
        /* No security.*, system.* (ACLs) or trusted.* attributes here. Saying
         * "not supported" rather than "no such attribute" lets ls -l stop
         * asking for every file (coreutils caches it per device). */
        fuse_reply_err(req, ENOTSUP);
        return;
    }
    int e;
    char *v = xattr_value(m, st, ino, name, &e);
    if (!v) {
        fuse_reply_err(req, e);
        return;
    }
    reply_sized(req, v, strlen(v), size);
    free(v);
}

static void
op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    const char *const *names;
    size_t n;
    if (ino == FUSE_ROOT_ID) {
        names = root_attrs;
        n = ARRAY_SIZE(root_attrs);
    } else if (is_dir_ino(ino)) {
        names = folder_attrs;
        n = ARRAY_SIZE(folder_attrs);
    } else {
        names = item_attrs;
        n = item_is_mail(mnt(req), ino) ? ARRAY_SIZE(item_attrs) : 1; /* flags: mail only */
    }
    struct dynbuf b;
    dynbuf_init(&b, 4096);
    for (size_t i = 0; i < n; i++)
        dynbuf_add(&b, names[i], strlen(names[i]) + 1);
    if (!is_dir_ino(ino) && ino != FUSE_ROOT_ID && item_has_origin(mnt(req), ino))
        dynbuf_add(&b, "user.conflict.origin", sizeof "user.conflict.origin");
    reply_sized(req, b.data, b.len, size);
    dynbuf_free(&b);
}

const struct fuse_lowlevel_ops mount_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = write_setattr,
    .mknod = write_mknod,
    .mkdir = write_mkdir,
    .unlink = write_unlink,
    .rmdir = write_rmdir,
    .symlink = write_symlink,
    .rename = write_rename,
    .link = write_link,
    .open = op_open,
    .read = op_read,
    .write = write_write,
    .flush = write_flush,
    .fsync = write_fsync,
    .release = write_release,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .statfs = op_statfs,
    .setxattr = write_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = write_removexattr,
    .create = write_create,
    .fallocate = write_fallocate,
};
