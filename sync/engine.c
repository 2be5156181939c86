/* engine: the sync thread of an account: connect with backoff, run passes
 * over every folder, wait for pushes, polls and requests, and tell the mount
 * what changed. */
#include "sync/sync.h"

#include "common/log.h"
#include "common/util.h"
#include "sync/driver.h"
#include "sync/imap_sync.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
/* Login and certificate failures will not heal by themselves soon. */
#define BACKOFF_NEVER_MS 300000

/* Folder 0 in a request means every folder. */
#define REQ_NONE (-1)
#define REQ_ALL 0

struct folder_progress {
    int64_t folder_id;
    int64_t done, total;
    bool active;
    char *error; /* owned; the last sync's failure */
};

struct sync {
    struct sync_options opt;
    struct imap_config imap;        /* opt.imap with our cancel flag */
    struct store *st;               /* owned; used by the sync thread only */
    struct sync_host host;
    struct sync_driver *drivers[1]; /* owned */
    size_t ndrivers;
    atomic_bool stop;
    int wake_fd;                    /* eventfd */
    pthread_t thread;
    bool running;

    pthread_mutex_t lock;           /* protects everything below */
    pthread_cond_t cond;
    uint64_t req_gen, done_gen;
    int64_t req_folder;             /* REQ_NONE, REQ_ALL or a folder id */
    int done_rc;
    char *done_msg;                 /* owned */
    char *conn_state;               /* owned */
    struct folder_progress *prog;   /* owned */
    size_t nprog;
};

static void
set_conn_state(struct sync *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_conn_state(struct sync *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    pthread_mutex_lock(&s->lock);
    free(s->conn_state);
    s->conn_state = m;
    pthread_mutex_unlock(&s->lock);
}

static struct folder_progress *
prog_get(struct sync *s, int64_t folder_id)
{
    for (size_t i = 0; i < s->nprog; i++)
        if (s->prog[i].folder_id == folder_id)
            return &s->prog[i];
    s->prog = xrealloc(s->prog, (s->nprog + 1) * sizeof *s->prog);
    struct folder_progress *p = &s->prog[s->nprog++];
    memset(p, 0, sizeof *p);
    p->folder_id = folder_id;
    return p;
}

static void
host_progress(struct sync_host *h, int64_t folder_id, int64_t done, int64_t total)
{
    struct sync *s = (struct sync *)((char *)h - offsetof(struct sync, host));
    pthread_mutex_lock(&s->lock);
    struct folder_progress *p = prog_get(s, folder_id);
    p->done = done;
    p->total = total;
    pthread_mutex_unlock(&s->lock);
}

static void
forward_change(void *ctx, const struct store_change *c)
{
    struct sync *s = ctx;
    s->opt.on_change(s->opt.on_change_ctx, c);
}

static void
drop_change(void *ctx, const struct store_change *c)
{
}

static void
host_committed(struct sync_host *h)
{
    struct sync *s = (struct sync *)((char *)h - offsetof(struct sync, host));
    store_take_changes(s->st, s->opt.on_change ? forward_change : drop_change, s);
    if (s->opt.on_change)
        s->opt.on_change(s->opt.on_change_ctx, NULL); /* end of the batch */
}

int
sync_new(const struct sync_options *o, struct sync **out, char **err)
{
    *out = NULL;
    struct sync *s = xcalloc(1, sizeof *s);
    s->opt = *o;
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0) {
        *err = xasprintf("eventfd: %s", strerror(errno));
        free(s);
        return -1;
    }
    if (store_open(o->store_dir, STORE_CREATE, &s->st, err) != STORE_OK) {
        close(s->wake_fd);
        free(s);
        return -1;
    }
    if (store_recover(s->st) != STORE_OK) {
        *err = xasprintf("%s: recovering after an interruption: %s", o->store_dir,
                         store_errmsg(s->st));
        store_close(s->st);
        close(s->wake_fd);
        free(s);
        return -1;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->req_folder = REQ_NONE;
    s->conn_state = xstrdup("connecting");
    s->host.committed = host_committed;
    s->host.progress = host_progress;
    s->host.cancel = &s->stop;
    if (o->imap) {
        /* Stopping must interrupt a connect or a stalled server at once. */
        s->imap = *o->imap;
        s->imap.cancel = &s->stop;
        s->drivers[s->ndrivers++] = imap_sync_new(&s->imap, s->st, &s->host);
    }
    *out = s;
    return 0;
}

void
sync_free(struct sync *s)
{
    if (!s)
        return;
    sync_stop(s);
    for (size_t i = 0; i < s->ndrivers; i++)
        s->drivers[i]->ops->free(s->drivers[i]);
    store_close(s->st);
    close(s->wake_fd);
    for (size_t i = 0; i < s->nprog; i++)
        free(s->prog[i].error);
    free(s->prog);
    free(s->conn_state);
    free(s->done_msg);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

int
sync_prepare_store(struct sync *s, char **err)
{
    struct store_folder f;
    enum store_status r = store_folder_lookup(s->st, 0, "Conflicts", &f);
    if (r == STORE_OK) {
        store_folder_clear(&f);
        return 0;
    }
    if (r != STORE_NOTFOUND) {
        *err = xasprintf("%s: %s", store_dir(s->st), store_errmsg(s->st));
        return -1;
    }
    memset(&f, 0, sizeof f);
    f.kind = STORE_KIND_CONFLICTS;
    snprintf(f.name, sizeof f.name, "Conflicts");
    f.selectable = true;
    if (store_folder_add(s->st, &f) != STORE_OK) {
        *err = xasprintf("%s: %s", store_dir(s->st), store_errmsg(s->st));
        return -1;
    }
    host_committed(&s->host);
    return 0;
}

/* The folder at a path relative to the mount root; 0 and *id, or -1. */
static int
resolve_path(struct store *st, const char *path, int64_t *id)
{
    int64_t cur = 0;
    char *copy = xstrdup(path);
    char *save = NULL;
    int rc = 0;
    for (char *part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
        struct store_folder f;
        if (store_folder_lookup(st, cur, part, &f) != STORE_OK) {
            rc = -1;
            break;
        }
        cur = f.id;
        store_folder_clear(&f);
    }
    free(copy);
    if (rc == 0 && cur == 0)
        rc = -1;
    *id = cur;
    return rc;
}

struct folder_ids {
    int64_t *v;
    size_t n, alloc;
    int64_t first; /* INBOX goes first */
};

static int
collect_folder(void *ctx, const struct store_folder *f)
{
    struct folder_ids *ids = ctx;
    if (!f->selectable || !f->server_name)
        return 0;
    if (ids->n == ids->alloc) {
        ids->alloc = ids->alloc ? ids->alloc * 2 : 16;
        ids->v = xrealloc(ids->v, ids->alloc * sizeof *ids->v);
    }
    if (strcmp(f->server_name, "INBOX") == 0 && ids->n > 0) {
        ids->v[ids->n++] = ids->v[0];
        ids->v[0] = f->id;
    } else {
        ids->v[ids->n++] = f->id;
    }
    return 0;
}

static void
record_folder_result(struct sync *s, int64_t folder_id, const struct sync_error *e)
{
    pthread_mutex_lock(&s->lock);
    struct folder_progress *p = prog_get(s, folder_id);
    p->active = false;
    free(p->error);
    p->error = e ? xstrdup(e->msg) : NULL;
    pthread_mutex_unlock(&s->lock);
}

static int
sync_one_folder(struct sync *s, struct sync_driver *d, int64_t fid, struct sync_error *err)
{
    pthread_mutex_lock(&s->lock);
    struct folder_progress *p = prog_get(s, fid);
    p->active = true;
    p->done = p->total = 0;
    pthread_mutex_unlock(&s->lock);
    int r = d->ops->sync_folder(d, fid, err);
    record_folder_result(s, fid, r < 0 ? err : NULL);
    return r;
}

/* One pass: every folder that may have changed (or only `only`, forced). */
static int
run_pass(struct sync *s, int64_t only, struct sync_error *err)
{
    sync_error_clear(err);
    int result = 0;
    for (size_t i = 0; i < s->ndrivers; i++) {
        struct sync_driver *d = s->drivers[i];
        if (!d->ops->connected(d) && d->ops->connect(d, err) < 0)
            return -1;
        /* Local changes first: the folder sync must not undo them. */
        if (d->ops->push(d, err) < 0)
            return -1;
        if (d->ops->list(d, err) < 0)
            return -1;
        struct folder_ids ids = {0};
        if (store_folder_each(s->st, STORE_KIND_MAIL, collect_folder, &ids) != STORE_OK) {
            sync_error_set(err, SYNC_ERR_STORE, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                           "reading folders: %s", store_errmsg(s->st));
            free(ids.v);
            return -1;
        }
        for (size_t k = 0; k < ids.n && !atomic_load(&s->stop); k++) {
            int64_t fid = ids.v[k];
            if (only > 0 && fid != only)
                continue;
            if (only <= 0) {
                struct store_folder f;
                if (store_folder_get(s->st, fid, &f) != STORE_OK)
                    continue;
                bool changed = d->ops->maybe_changed(d, &f);
                store_folder_clear(&f);
                if (!changed)
                    continue;
            }
            struct sync_error ferr;
            sync_error_clear(&ferr);
            if (sync_one_folder(s, d, fid, &ferr) < 0) {
                log_warn("sync: %s", ferr.msg);
                if (ferr.scope == SYNC_SCOPE_ACCOUNT) {
                    *err = ferr;
                    free(ids.v);
                    return -1;
                }
                if (result == 0) {
                    *err = ferr;
                    result = -1;
                }
            }
        }
        free(ids.v);
    }
    return result;
}

int
sync_check(struct sync *s, struct sync_error *err)
{
    for (size_t i = 0; i < s->ndrivers; i++) {
        struct sync_driver *d = s->drivers[i];
        if (!d->ops->connected(d) && d->ops->connect(d, err) < 0)
            return -1;
    }
    return 0;
}

int
sync_once(struct sync *s, const char *folder_path, struct sync_error *err)
{
    sync_error_clear(err);
    int64_t only = REQ_ALL;
    if (folder_path && folder_path[0]) {
        /* The folder list may be new: list first, then resolve. */
        for (size_t i = 0; i < s->ndrivers; i++) {
            struct sync_driver *d = s->drivers[i];
            if ((!d->ops->connected(d) && d->ops->connect(d, err) < 0) ||
                d->ops->list(d, err) < 0)
                return -1;
        }
        if (resolve_path(s->st, folder_path, &only) < 0) {
            sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_FOLDER, SYNC_RETRY_NEVER,
                           "no folder %s", folder_path);
            return -1;
        }
    }
    int r = run_pass(s, only, err);
    for (size_t i = 0; i < s->ndrivers; i++)
        s->drivers[i]->ops->disconnect(s->drivers[i]);
    return r;
}

/* ---- the thread ---- */

static void
drain_wake(struct sync *s)
{
    uint64_t v;
    while (read(s->wake_fd, &v, sizeof v) > 0)
        ;
}

static void
complete_requests(struct sync *s, uint64_t gen, int rc, const char *msg)
{
    pthread_mutex_lock(&s->lock);
    if (gen > s->done_gen) {
        s->done_gen = gen;
        s->done_rc = rc;
        free(s->done_msg);
        s->done_msg = msg ? xstrdup(msg) : NULL;
    }
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void *
thread_main(void *arg)
{
    struct sync *s = arg;
    int64_t backoff = 0, next_attempt = 0, last_pass = 0;
    bool pass_due = true;
    struct sync_error err;
    struct sync_driver *d = s->ndrivers ? s->drivers[0] : NULL;

    while (!atomic_load(&s->stop)) {
        pthread_mutex_lock(&s->lock);
        uint64_t gen = s->req_gen;
        bool requested = gen > s->done_gen;
        int64_t folder = s->req_folder;
        s->req_folder = REQ_NONE;
        pthread_mutex_unlock(&s->lock);
        if (!d) {
            /* No protocol configured (yet): nothing to sync. */
            complete_requests(s, gen, 0, NULL);
            struct pollfd p = {.fd = s->wake_fd, .events = POLLIN};
            poll(&p, 1, 1000);
            drain_wake(s);
            continue;
        }

        if (!d->ops->connected(d)) {
            int64_t now = util_now_ms();
            if (now < next_attempt && !requested) {
                int64_t fid;
                d->ops->wait(d, s->wake_fd, (int)(next_attempt - now), &fid, &err);
                drain_wake(s);
                continue;
            }
            set_conn_state(s, "connecting");
            if (d->ops->connect(d, &err) < 0) {
                if (err.code == SYNC_ERR_CANCELLED)
                    break;
                backoff = err.retry == SYNC_RETRY_NEVER
                              ? BACKOFF_NEVER_MS
                              : (backoff ? backoff * 2 : BACKOFF_MIN_MS);
                if (backoff > BACKOFF_MAX_MS && err.retry != SYNC_RETRY_NEVER)
                    backoff = BACKOFF_MAX_MS;
                next_attempt = util_now_ms() + backoff;
                set_conn_state(s, "reconnecting in %lld s: %s", (long long)(backoff / 1000),
                               err.msg);
                log_warn("%s (retrying in %lld s)", err.msg, (long long)(backoff / 1000));
                complete_requests(s, gen, -1, err.msg);
                continue;
            }
            set_conn_state(s, "connected");
            log_info("connected");
            pass_due = true;
        }

        if (!pass_due && !requested && d->ops->push(d, &err) < 0) {
            if (err.code == SYNC_ERR_CANCELLED)
                break;
            log_warn("sending local changes: %s", err.msg);
            d->ops->disconnect(d);
            set_conn_state(s, "reconnecting: %s", err.msg);
            next_attempt = util_now_ms() + BACKOFF_MIN_MS;
            continue;
        }

        if (pass_due || requested) {
            int64_t only = requested && folder > 0 ? folder : REQ_ALL;
            int r = run_pass(s, only, &err);
            if (r == 0 || err.scope != SYNC_SCOPE_ACCOUNT) {
                last_pass = util_now_ms();
                pass_due = false;
            }
            complete_requests(s, gen, r, r < 0 ? err.msg : NULL);
            if (r < 0 && err.scope == SYNC_SCOPE_ACCOUNT) {
                if (err.code == SYNC_ERR_CANCELLED)
                    break;
                /* A pass that keeps failing (a server that breaks the
                 * connection on one message) must not spin. */
                backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
                if (backoff > BACKOFF_MAX_MS)
                    backoff = BACKOFF_MAX_MS;
                log_warn("sync interrupted: %s (retrying in %lld s)", err.msg,
                         (long long)(backoff / 1000));
                d->ops->disconnect(d);
                set_conn_state(s, "reconnecting in %lld s: %s", (long long)(backoff / 1000),
                               err.msg);
                next_attempt = util_now_ms() + backoff;
                continue;
            }
            if (r == 0)
                backoff = 0;
            continue; /* requests may have come in meanwhile */
        }

        int64_t wait_ms = last_pass + (int64_t)s->opt.poll_seconds * 1000 - util_now_ms();
        if (wait_ms <= 0) {
            pass_due = true;
            continue;
        }
        int64_t fid = 0;
        int w = d->ops->wait(d, s->wake_fd, (int)wait_ms, &fid, &err);
        if (w == 2) {
            /* Let a burst of local changes settle (a shell redirect closes
             * twice, cp -r writes many files) so they go out together. */
            int64_t until = util_now_ms() + 1000;
            do {
                drain_wake(s);
                struct pollfd p = {.fd = s->wake_fd, .events = POLLIN};
                if (poll(&p, 1, 150) <= 0)
                    break;
            } while (util_now_ms() < until && !atomic_load(&s->stop));
            continue;
        }
        if (w == 0) {
            pass_due = true;
            continue;
        }
        if (w == 1) {
            struct sync_error ferr;
            if (sync_one_folder(s, d, fid, &ferr) < 0) {
                log_warn("sync: %s", ferr.msg);
                if (ferr.scope == SYNC_SCOPE_ACCOUNT) {
                    d->ops->disconnect(d);
                    set_conn_state(s, "reconnecting: %s", ferr.msg);
                    next_attempt = util_now_ms() + BACKOFF_MIN_MS;
                }
            }
            continue;
        }
        /* w < 0: the connection broke while waiting. */
        if (err.code == SYNC_ERR_CANCELLED)
            break;
        log_warn("connection lost: %s", err.msg);
        d->ops->disconnect(d);
        set_conn_state(s, "reconnecting: %s", err.msg);
        next_attempt = util_now_ms() + BACKOFF_MIN_MS;
    }
    if (d)
        d->ops->disconnect(d);
    complete_requests(s, UINT64_MAX, -1, "the mount is shutting down");
    return NULL;
}

int
sync_start(struct sync *s)
{
    if (s->running)
        return 0;
    atomic_store(&s->stop, false);
    int r = pthread_create(&s->thread, NULL, thread_main, s);
    if (r != 0)
        return -r;
    s->running = true;
    return 0;
}

void
sync_stop(struct sync *s)
{
    if (!s->running)
        return;
    atomic_store(&s->stop, true);
    sync_kick(s);
    pthread_join(s->thread, NULL);
    s->running = false;
}

void
sync_kick(struct sync *s)
{
    uint64_t one = 1;
    (void)!write(s->wake_fd, &one, sizeof one);
}

int
sync_now(struct sync *s, const char *folder_path, int timeout_ms, char **msg)
{
    *msg = NULL;
    int64_t folder = REQ_ALL;
    if (folder_path && folder_path[0]) {
        /* Resolve with a connection of our own: the engine's belongs to
         * its thread. */
        struct store *st;
        char *err;
        if (store_open(s->opt.store_dir, STORE_READONLY, &st, &err) != STORE_OK) {
            *msg = err;
            return -1;
        }
        int r = resolve_path(st, folder_path, &folder);
        store_close(st);
        if (r < 0) {
            *msg = xasprintf("no folder %s", folder_path);
            return -1;
        }
    }
    pthread_mutex_lock(&s->lock);
    uint64_t my = ++s->req_gen;
    if (s->req_folder == REQ_NONE)
        s->req_folder = folder;
    else if (s->req_folder != folder)
        s->req_folder = REQ_ALL;
    pthread_mutex_unlock(&s->lock);
    sync_kick(s);

    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    while (s->done_gen < my) {
        if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT) {
            rc = -1;
            *msg = xstrdup("timed out waiting for the sync");
            break;
        }
    }
    if (rc == 0 && s->done_rc != 0) {
        rc = -1;
        *msg = xstrdup(s->done_msg ? s->done_msg : "sync failed");
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

char *
sync_connection_state(struct sync *s)
{
    pthread_mutex_lock(&s->lock);
    char *r = xstrdup(s->conn_state ? s->conn_state : "");
    pthread_mutex_unlock(&s->lock);
    return r;
}

char *
sync_folder_state(struct sync *s, int64_t folder_id)
{
    char *r = NULL;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nprog; i++) {
        struct folder_progress *p = &s->prog[i];
        if (p->folder_id != folder_id)
            continue;
        if (p->active)
            r = xasprintf("syncing %lld/%lld", (long long)p->done, (long long)p->total);
        else if (p->error)
            r = xasprintf("error: %s", p->error);
        else
            r = xstrdup("idle");
    }
    pthread_mutex_unlock(&s->lock);
    return r ? r : xstrdup("waiting");
}
