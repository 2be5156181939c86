/* draft: content written through the mount, from the first write to the
 * commit (store/draft.h). */
#include "store/draft.h"

#include "common/crash.h"
#include "common/log.h"
#include "common/util.h"
#include "formats/mail.h"
#include "store/local.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A message header larger than this is not looked at for Date/Message-ID. */
#define HEADER_SCAN_MAX (256u << 10)
#define COPY_CHUNK (256u << 10)

/* fsync a directory: a name made or replaced in it survives a crash. */
static int
sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return r;
}

static int
sync_drafts_dir(const struct store *st)
{
    char *dir = xasprintf("%s/drafts", store_dir(st));
    int r = sync_dir(dir);
    free(dir);
    return r;
}

/* Copy the whole file from into to. 0 or -errno. */
static int
copy_fd(int from, int to)
{
    char *buf = xmalloc(COPY_CHUNK);
    int r = 0;
    for (;;) {
        ssize_t n = read(from, buf, COPY_CHUNK);
        if (n < 0) {
            r = -errno;
            break;
        }
        if (n == 0)
            break;
        r = util_write_all(to, buf, (size_t)n);
        if (r < 0)
            break;
    }
    free(buf);
    return r;
}

int
store_draft_create(struct store *st, int64_t item_id, bool keep)
{
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s/tmp/draft-%lld", store_dir(st), (long long)item_id);
    store_content_staged_path(st, item_id, path, sizeof path);
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    int r = 0;
    if (keep) {
        int from = store_content_open(st, item_id);
        if (from >= 0) {
            r = copy_fd(from, fd);
            close(from);
        } else if (from != -ENOENT) {
            r = from;
        }
    }
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r == 0)
        r = sync_drafts_dir(st);
    if (r < 0) {
        close(fd);
        unlink(tmp);
        unlink(path);
        return r;
    }
    return fd;
}

bool
store_draft_kind_crlf(enum store_kind kind)
{
    return kind != STORE_KIND_NOTES;
}

enum store_status
store_draft_crlf(struct store *st, int64_t item_id, bool *crlf)
{
    struct store_item it;
    enum store_status s = store_item_get(st, item_id, &it);
    if (s != STORE_OK)
        return s;
    struct store_folder f;
    s = store_folder_get(st, it.folder_id, &f);
    if (s != STORE_OK)
        return s;
    *crlf = store_draft_kind_crlf(f.kind);
    store_folder_clear(&f);
    return STORE_OK;
}

/* Rewrite bare LF as CRLF (RFC 5322; servers do it anyway, and the file
 * must show what the server holds) into a new draft file that replaces the
 * old one. Returns 1 when the file changed, 0 when it was already clean,
 * -errno on failure; *size gets the new size. */
static int
normalize_crlf(struct store *st, int64_t item_id, int fd, int64_t *size)
{
    char *buf = xmalloc(COPY_CHUNK);
    bool bare = false;
    char prev = 0;
    off_t off = 0;
    int r = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, COPY_CHUNK, off);
        if (n < 0) {
            r = -errno;
            break;
        }
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n && !bare; i++) {
            if (buf[i] == '\n' && prev != '\r')
                bare = true;
            prev = buf[i];
        }
        if (bare)
            break;
        off += n;
    }
    if (r < 0 || !bare) {
        free(buf);
        return r;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/tmp/crlf-%lld", store_dir(st), (long long)item_id);
    int out = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        free(buf);
        return -errno;
    }
    char *obuf = xmalloc(COPY_CHUNK * 2);
    prev = 0;
    off = 0;
    int64_t total = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, COPY_CHUNK, off);
        if (n < 0) {
            r = -errno;
            break;
        }
        if (n == 0)
            break;
        size_t o = 0;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' && prev != '\r')
                obuf[o++] = '\r';
            obuf[o++] = buf[i];
            prev = buf[i];
        }
        r = util_write_all(out, obuf, o);
        if (r < 0)
            break;
        total += (int64_t)o;
        off += n;
    }
    free(buf);
    free(obuf);
    char staged[4096];
    store_content_staged_path(st, item_id, staged, sizeof staged);
    if (r == 0 && fsync(out) < 0)
        r = -errno;
    /* The draft is replaced whole: before or after, it is what was written
     * (normalizing again is harmless). */
    if (r == 0 && rename(tmp, staged) < 0)
        r = -errno;
    close(out);
    if (r < 0) {
        unlink(tmp);
        return r;
    }
    *size = total;
    return 1;
}

int
store_draft_commit(struct store *st, int64_t item_id, int fd, int64_t size, bool crlf,
                   int64_t date, int64_t *size_out)
{
    if (fsync(fd) < 0)
        return -errno;
    int changed = crlf ? normalize_crlf(st, item_id, fd, &size) : 0;
    if (changed < 0) {
        log_error("item %lld: %s", (long long)item_id, strerror(-changed));
        return changed;
    }
    char staged[4096];
    store_content_staged_path(st, item_id, staged, sizeof staged);
    int rfd = open(staged, O_RDONLY | O_CLOEXEC);
    if (rfd < 0)
        return -errno;
    size_t want = size < (int64_t)HEADER_SCAN_MAX ? (size_t)size : HEADER_SCAN_MAX;
    char *head = xmalloc(want ? want : 1);
    ssize_t got = pread(rfd, head, want, 0);
    close(rfd);
    struct mail_info mi = {.date = -1};
    if (got > 0)
        mail_info_parse(head, (size_t)got, &mi);
    free(head);
    if (date < 0)
        date = mi.date >= 0 ? mi.date : util_now();
    enum store_status s = local_item_content(st, item_id, size, date, mi.message_id);
    mail_info_free(&mi);
    if (s == STORE_NOTFOUND) {
        /* Deleted while being written: nothing to keep. */
        unlink(staged);
        return 1;
    }
    if (s != STORE_OK) {
        log_error("item %lld: recording new content failed: %s", (long long)item_id,
                  store_errmsg(st));
        return s == STORE_BUSY ? -EAGAIN : -EIO;
    }
    int r = store_content_commit_staged(st, item_id);
    if (r < 0) {
        /* The row says staged: the next start puts the file in place. */
        log_error("item %lld: %s", (long long)item_id, strerror(-r));
        return -EIO;
    }
    crash_point("content in place");
    if (local_item_content_placed(st, item_id) != STORE_OK)
        log_warn("item %lld: %s", (long long)item_id, store_errmsg(st));
    if (size_out)
        *size_out = size;
    return 0;
}

/* Whether the file at fd holds exactly the item's content. */
static bool
same_as_content(struct store *st, int64_t item_id, int fd)
{
    int cfd = store_content_open(st, item_id);
    if (cfd < 0)
        return false;
    struct stat a, b;
    bool same = fstat(fd, &a) == 0 && fstat(cfd, &b) == 0 && a.st_size == b.st_size;
    char *x = same ? xmalloc(COPY_CHUNK) : NULL, *y = same ? xmalloc(COPY_CHUNK) : NULL;
    for (off_t off = 0; same && off < a.st_size;) {
        ssize_t n = pread(fd, x, COPY_CHUNK, off), k = pread(cfd, y, COPY_CHUNK, off);
        if (n <= 0 || n != k || memcmp(x, y, (size_t)n) != 0)
            same = false;
        else
            off += n;
    }
    free(x);
    free(y);
    close(cfd);
    return same;
}

int
store_draft_recover(struct store *st, int64_t item_id)
{
    char path[4096];
    store_content_staged_path(st, item_id, path, sizeof path);
    bool crlf = true;
    enum store_status s = store_draft_crlf(st, item_id, &crlf);
    if (s == STORE_NOTFOUND) {
        log_info("removing the draft of item %lld, deleted since", (long long)item_id);
        return unlink(path) < 0 ? -errno : 0;
    }
    if (s != STORE_OK)
        return -EIO;
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    struct store_item it;
    bool had_content = store_item_get(st, item_id, &it) == STORE_OK && it.size > 0;
    if (same_as_content(st, item_id, fd) || (sb.st_size == 0 && had_content)) {
        /* Made for a write that never came: nothing changed. An empty one
         * is the truncate of `cp` or `>` onto the file whose bytes never
         * followed: the file keeps its content rather than ending up empty
         * (what ext4 does for the same pattern, auto_da_alloc). */
        close(fd);
        return unlink(path) < 0 ? -errno : 0;
    }
    int r = store_draft_commit(st, item_id, fd, sb.st_size, crlf, -1, NULL);
    close(fd);
    if (r >= 0)
        log_info("item %lld: what was written before an interruption is committed",
                 (long long)item_id);
    return r < 0 ? r : 0;
}
