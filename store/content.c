/* content: one file per item under content/XX/ID, XX the low byte of the id,
 * so no directory grows past a few hundred entries per thousand items. */
#include "store/store_p.h"

#include "common/dynbuf.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
store_content_path(const struct store *st, int64_t item_id, char *buf, size_t bufsz)
{
    snprintf(buf, bufsz, "%s/content/%02x/%lld", st->dir, (unsigned)(item_id & 0xff),
             (long long)item_id);
}

static void
partial_path(const struct store *st, int64_t item_id, char *buf, size_t bufsz)
{
    snprintf(buf, bufsz, "%s/content/%02x/%lld.p", st->dir, (unsigned)(item_id & 0xff),
             (long long)item_id);
}

static void
sidecar_path(const struct store *st, int64_t item_id, char *buf, size_t bufsz)
{
    snprintf(buf, bufsz, "%s/content/%02x/%lld.src", st->dir, (unsigned)(item_id & 0xff),
             (long long)item_id);
}

int
store_content_open(const struct store *st, int64_t item_id)
{
    char path[4096];
    store_content_path(st, item_id, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    return fd < 0 ? -errno : fd;
}

int
store_content_open_any(const struct store *st, int64_t item_id, bool *partial)
{
    *partial = false;
    int fd = store_content_open(st, item_id);
    if (fd != -ENOENT)
        return fd;
    char path[4096];
    partial_path(st, item_id, path, sizeof path);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    *partial = true;
    return fd;
}

int
store_content_write(const struct store *st, int64_t item_id, bool partial, const void *data,
                    size_t len)
{
    char path[4096];
    if (partial)
        partial_path(st, item_id, path, sizeof path);
    else
        store_content_path(st, item_id, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == ENOENT) {
        /* First item in this bucket. */
        char *dir = xstrndup(path, (size_t)(strrchr(path, '/') - path));
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
            int e = errno;
            free(dir);
            return -e;
        }
        free(dir);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    }
    if (fd < 0)
        return -errno;
    int r = util_write_all(fd, data, len);
    if (close(fd) < 0 && r == 0)
        r = -errno;
    return r;
}

int
store_content_unlink(const struct store *st, int64_t item_id)
{
    char path[4096];
    store_content_path(st, item_id, path, sizeof path);
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    partial_path(st, item_id, path, sizeof path);
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    sidecar_path(st, item_id, path, sizeof path);
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

void
store_content_staged_path(const struct store *st, int64_t item_id, char *buf, size_t bufsz)
{
    /* A directory of their own: finding leftovers never scans content/. */
    snprintf(buf, bufsz, "%s/drafts/%lld", st->dir, (long long)item_id);
}

int
store_content_sync(const struct store *st)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/content", st->dir);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = syncfs(fd) < 0 ? -errno : 0;
    close(fd);
    return r;
}

int
store_content_commit_staged(const struct store *st, int64_t item_id)
{
    char from[4096], to[4096];
    store_content_staged_path(st, item_id, from, sizeof from);
    store_content_path(st, item_id, to, sizeof to);
    if (rename(from, to) < 0)
        return -errno;
    return 0;
}

void
store_tmp_path(const struct store *st, const char *name, char *buf, size_t bufsz)
{
    snprintf(buf, bufsz, "%s/tmp/%s", st->dir, name);
}

int
store_content_place(const struct store *st, int64_t item_id, bool partial, const char *from)
{
    char to[4096];
    if (partial)
        partial_path(st, item_id, to, sizeof to);
    else
        store_content_path(st, item_id, to, sizeof to);
    int r = rename(from, to) < 0 ? -errno : 0;
    if (r == -ENOENT && access(from, F_OK) == 0) {
        /* First item in this bucket. */
        char *dir = xstrndup(to, (size_t)(strrchr(to, '/') - to));
        r = mkdir(dir, 0700) < 0 && errno != EEXIST ? -errno : 0;
        free(dir);
        if (r == 0 && rename(from, to) < 0)
            r = -errno;
    }
    if (r == 0 && !partial) {
        /* Whole now: the partial file goes. */
        char part[4096];
        partial_path(st, item_id, part, sizeof part);
        unlink(part);
    }
    return r;
}

int
store_content_replace(const struct store *st, int64_t item_id, const void *data, size_t len)
{
    /* Write beside, then rename: a reader never sees half a message. */
    char tmp[4096], to[4096];
    snprintf(tmp, sizeof tmp, "%s/tmp/replace-%lld", st->dir, (long long)item_id);
    store_content_path(st, item_id, to, sizeof to);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    int r = util_write_all(fd, data, len);
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, to) < 0)
        r = -errno;
    if (r < 0) {
        unlink(tmp);
        return r;
    }
    /* Whole now: the partial file goes (after, so a reader never finds none). */
    char part[4096];
    partial_path(st, item_id, part, sizeof part);
    unlink(part);
    return 0;
}


int
store_sidecar_write(const struct store *st, int64_t item_id, const void *data, size_t len)
{
    char tmp[4096], to[4096];
    snprintf(tmp, sizeof tmp, "%s/tmp/src-%lld", st->dir, (long long)item_id);
    sidecar_path(st, item_id, to, sizeof to);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    int r = util_write_all(fd, data, len);
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, to) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
    return r;
}

/* Read a whole file of at most max bytes; NULL when it is missing, unreadable
 * or larger. */
static char *
read_file(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    struct dynbuf b;
    dynbuf_init(&b, max);
    char chunk[65536];
    ssize_t n;
    bool ok = true;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        if (dynbuf_add(&b, chunk, (size_t)n) < 0) {
            ok = false;
            break;
        }
    close(fd);
    if (n < 0 || !ok) {
        dynbuf_free(&b);
        return NULL;
    }
    *len = b.len;
    return dynbuf_take(&b);
}

char *
store_sidecar_read(const struct store *st, int64_t item_id, size_t *len)
{
    char path[4096];
    sidecar_path(st, item_id, path, sizeof path);
    return read_file(path, 64u << 20, len);
}

char *
store_content_read(const struct store *st, int64_t item_id, size_t max, size_t *len)
{
    char path[4096];
    store_content_path(st, item_id, path, sizeof path);
    return read_file(path, max, len);
}

int
store_sidecar_move(const struct store *st, int64_t from_id, int64_t to_id)
{
    char from[4096], to[4096];
    sidecar_path(st, from_id, from, sizeof from);
    sidecar_path(st, to_id, to, sizeof to);
    if (rename(from, to) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}
