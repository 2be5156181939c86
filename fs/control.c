/* control: a unix socket in the store directory through which `mailfs sync`,
 * status, online, offline and reset reach the running mount. One request
 * line, one answer line: "ok" or "error MESSAGE". Only the mounting user may
 * connect (the directory is 0700 and the peer's uid is checked). */
#include "fs/mount.h"

#include "common/dynbuf.h"
#include "common/log.h"
#include "common/util.h"
#include "store/maintain.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CONTROL_LINE_MAX 4096
/* A requested sync may take long (an initial sync of a big account). */
#define CONTROL_SYNC_TIMEOUT_MS (6 * 3600 * 1000)

static int listen_fd = -1;
static int stop_pipe[2] = {-1, -1};
static pthread_t accept_thread;
static struct mount *control_mount;

static char *
socket_path(const char *store_dir)
{
    return xasprintf("%s/control.sock", store_dir);
}

/* Read one line (without its newline) of at most CONTROL_LINE_MAX bytes. */
static char *
read_line(int fd, int timeout_ms)
{
    struct dynbuf b;
    dynbuf_init(&b, CONTROL_LINE_MAX);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (timeout_ms >= 0 && poll(&p, 1, timeout_ms) <= 0)
            break;
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (c == '\n')
            return dynbuf_take(&b);
        if (dynbuf_addc(&b, c) < 0)
            break;
    }
    dynbuf_free(&b);
    return NULL;
}

static void
answer(int fd, const char *status, const char *msg)
{
    char *line = msg ? xasprintf("%s %s\n", status, msg) : xasprintf("%s\n", status);
    /* A message is one line. */
    for (char *p = line; p[0] && p[1]; p++)
        if (*p == '\n')
            *p = ' ';
    (void)util_write_all(fd, line, strlen(line));
    free(line);
}

/* ---- reset while mounted ---- */

/* One reset at a time. */
static pthread_mutex_t reset_lock = PTHREAD_MUTEX_INITIALIZER;

struct tree_ctx {
    uint64_t *inos;  /* owned: every folder's inode */
    size_t n, alloc;
    struct dynbuf tops; /* the top-level names, NUL-separated */
};

static int
remember_folder(void *ctx, const struct store_folder *f)
{
    struct tree_ctx *t = ctx;
    if (t->n == t->alloc) {
        t->alloc = t->alloc ? t->alloc * 2 : 64;
        t->inos = xrealloc(t->inos, t->alloc * sizeof *t->inos);
    }
    t->inos[t->n++] = store_ino_folder(f->id);
    /* Conflicts/ stays (same inode; its listing is refreshed): a shell in
     * it keeps its place. Every other folder goes. */
    if (f->parent_id == 0 && f->kind != STORE_KIND_CONFLICTS)
        dynbuf_add(&t->tops, f->name, strlen(f->name) + 1);
    return 0;
}

static void
say_into(void *ctx, const char *line)
{
    dynbuf_printf(ctx, "%s\n", line);
}

/* Reset the store under the running mount: the engine stands still while
 * the store changes under it, then the kernel forgets the old tree (this
 * thread serves no FUSE request, so it may notify), then a full sync runs.
 * The report goes into out. 0, or -1 with *msg (owned by the caller). */
static int
reset_mounted(struct mount *m, struct dynbuf *out, char **msg)
{
    struct store *st = NULL;
    if (store_open(m->store_dir, 0, &st, msg) != STORE_OK)
        return -1;
    store_set_recording(st, false);
    pthread_mutex_lock(&reset_lock);
    sync_pause(m->sync);
    struct tree_ctx t = {0};
    dynbuf_init(&t.tops, 1 << 24);
    enum store_status s = store_folder_each(st, 0, remember_folder, &t);
    struct store_reset_result res;
    if (s == STORE_OK)
        s = store_reset(st, true, say_into, out, &res);
    if (s == STORE_OK) {
        /* Errors mean the kernel had nothing cached there: fine. */
        fuse_lowlevel_notify_inval_inode(m->se, STORE_INO_ROOT, 0, 0);
        for (size_t i = 0; i < t.n; i++)
            fuse_lowlevel_notify_inval_inode(m->se, t.inos[i], 0, 0);
        for (size_t off = 0; off < t.tops.len;) {
            const char *name = t.tops.data + off;
            size_t len = strlen(name);
            fuse_lowlevel_notify_inval_entry(m->se, STORE_INO_ROOT, name, len);
            off += len + 1;
        }
        log_info("reset: %u changes kept in Conflicts/, %u folders and %u items dropped",
                 res.saved, res.dropped_folders, res.dropped_items);
    } else {
        *msg = xasprintf("reset failed, nothing changed: %s", store_errmsg(st));
    }
    sync_resume(m->sync);
    pthread_mutex_unlock(&reset_lock);
    free(t.inos);
    dynbuf_free(&t.tops);
    store_close(st);
    if (s != STORE_OK)
        return -1;
    dynbuf_printf(out, "reset: %u change%s kept in Conflicts/, %u folder%s and %u item%s "
                       "dropped\n",
                  res.saved, res.saved == 1 ? "" : "s", res.dropped_folders,
                  res.dropped_folders == 1 ? "" : "s", res.dropped_items,
                  res.dropped_items == 1 ? "" : "s");
    if (sync_is_offline(m->sync)) {
        dynbuf_adds(out, "the account is offline: everything comes back from the server "
                         "once it is online (mailfs online)\n");
        return 0;
    }
    char *why = NULL;
    if (sync_now(m->sync, NULL, CONTROL_SYNC_TIMEOUT_MS, &why) == 0)
        dynbuf_adds(out, "synced again from the server\n");
    else
        dynbuf_printf(out, "the sync from the server did not complete (%s); it goes on in "
                           "the background\n",
                      why ? why : "?");
    free(why);
    return 0;
}

static void *
serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
        cred.uid != control_mount->uid) {
        answer(fd, "error", "permission denied");
        close(fd);
        return NULL;
    }
    char *req = read_line(fd, 5000);
    if (!req) {
        close(fd);
        return NULL;
    }
    /* What was written is committed first: a sync pushes it, status
     * counts it, a reset keeps it. */
    write_commit_all(control_mount);
    if (strcmp(req, "sync") == 0 || strncmp(req, "sync ", 5) == 0) {
        const char *folder = req[4] ? req + 5 : NULL;
        char *msg = NULL;
        if (sync_now(control_mount->sync, folder, CONTROL_SYNC_TIMEOUT_MS, &msg) == 0)
            answer(fd, "ok", NULL);
        else
            answer(fd, "error", msg);
        free(msg);
    } else if (strcmp(req, "online") == 0 || strcmp(req, "offline") == 0 ||
               strcmp(req, "status") == 0) {
        struct store *st = NULL;
        char *err = NULL;
        if (store_open(control_mount->store_dir, 0, &st, &err) != STORE_OK) {
            answer(fd, "error", err);
        } else if (strcmp(req, "status") == 0) {
            char *text = status_text(st, control_mount->sync, control_mount->account);
            answer(fd, "ok", NULL);
            (void)util_write_all(fd, text, strlen(text));
            free(text);
        } else if (mount_set_mode(control_mount, st, strcmp(req, "offline") == 0) == 0) {
            answer(fd, "ok", NULL);
        } else {
            answer(fd, "error", "could not save the mode");
        }
        free(err);
        store_close(st);
    } else if (strcmp(req, "reset") == 0) {
        struct dynbuf out;
        dynbuf_init(&out, 1 << 24);
        char *msg = NULL;
        if (reset_mounted(control_mount, &out, &msg) == 0) {
            answer(fd, "ok", NULL);
            (void)util_write_all(fd, out.data ? out.data : "", out.len);
        } else {
            answer(fd, "error", msg);
        }
        free(msg);
        dynbuf_free(&out);
    } else {
        answer(fd, "error", "unknown request");
    }
    free(req);
    close(fd);
    return NULL;
}

static void *
accept_loop(void *arg)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = listen_fd, .events = POLLIN},
                              {.fd = stop_pipe[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, serve, (void *)(intptr_t)fd) != 0)
            close(fd);
        pthread_attr_destroy(&attr);
    }
    return NULL;
}

int
control_start(struct mount *m, char **err)
{
    char *path = socket_path(m->store_dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        *err = xasprintf("%s: path too long for a unix socket", path);
        free(path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    /* We hold the store lock: a leftover socket is from a dead mount. */
    unlink(path);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(listen_fd, 16) < 0 || pipe2(stop_pipe, O_CLOEXEC) < 0) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        free(path);
        if (listen_fd >= 0)
            close(listen_fd);
        listen_fd = -1;
        return -1;
    }
    free(path);
    control_mount = m;
    if (pthread_create(&accept_thread, NULL, accept_loop, NULL) != 0) {
        *err = xstrdup("cannot start the control thread");
        return -1;
    }
    return 0;
}

void
control_stop(void)
{
    if (listen_fd < 0)
        return;
    (void)!write(stop_pipe[1], "x", 1);
    pthread_join(accept_thread, NULL);
    close(listen_fd);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    listen_fd = -1;
    char *path = socket_path(control_mount->store_dir);
    unlink(path);
    free(path);
}

int
control_request(const char *store_dir, const char *request, char **reply)
{
    *reply = NULL;
    char *path = socket_path(store_dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        *reply = xasprintf("%s: path too long", path);
        free(path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    free(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        *reply = xstrdup(strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char *line = xasprintf("%s\n", request);
    int w = util_write_all(fd, line, strlen(line));
    free(line);
    char *ans = w == 0 ? read_line(fd, -1) : NULL;
    if (!ans) {
        close(fd);
        *reply = xstrdup("the mount closed the connection");
        return 1;
    }
    if (strcmp(ans, "ok") == 0) {
        /* Anything after the first line is the answer's text. */
        struct dynbuf b;
        dynbuf_init(&b, 1 << 24);
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            if (dynbuf_add(&b, buf, (size_t)n) < 0)
                break;
        close(fd);
        free(ans);
        *reply = dynbuf_take(&b);
        return 0;
    }
    close(fd);
    *reply = xstrdup(strncmp(ans, "error ", 6) == 0 ? ans + 6 : ans);
    free(ans);
    return 1;
}
