/* engine: the sync thread of an account: connect with backoff, run passes
 * over every folder, wait for pushes, polls and requests, and tell the mount
 * what changed. */
#include "sync/sync.h"

#include "common/log.h"
#include "common/util.h"
#include "sync/driver.h"
#include "sync/dav_sync.h"
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

/* One protocol of the account and its connection's fortunes. */
struct slot {
    struct sync_driver *d;  /* owned */
    unsigned kinds;         /* store kinds it syncs (bits 1 << kind) */
    int64_t backoff;        /* ms; 0 after a good pass */
    int64_t next_attempt;   /* monotonic ms of the next connect attempt */
    char *error;            /* why it is not connected; owned, NULL when fine */
};

#define MAX_SLOTS 3

struct sync {
    struct sync_options opt;
    struct imap_config imap;        /* opt.imap with our cancel flag */
    struct store *st;               /* owned; used by the sync thread only */
    struct sync_host host;
    struct slot slots[MAX_SLOTS];
    size_t nslots;
    atomic_bool stop;
    atomic_bool offline;            /* no network at all */
    /* Drivers give up what they are doing (a pass, a request in the
     * network): set to stop, to pause for a reset, or to go offline. */
    atomic_bool cancel;
    atomic_bool reconnect;          /* back online: forget the backoff */
    /* The mail server could not be reached the last time it was tried:
     * reads of messages kept in part serve the part at once. */
    atomic_bool mail_down;
    bool pause_wanted, paused;      /* protected by lock: sync_pause */
    atomic_int_fast64_t hint;       /* a folder the user just opened, 0 none */
    int64_t first_folder;           /* the folder opened last in the previous session */
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
    /* Readers waiting for a partial item to be fetched whole. */
    struct fetch_req {
        int64_t item_id;
        int state;                  /* 0 waiting, 1 done, -1 failed */
        struct fetch_req *next;     /* borrowed: each lives on its reader's stack */
    } *fetches;
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
host_item_ready(struct sync_host *h, int64_t item_id, int result)
{
    struct sync *s = (struct sync *)((char *)h - offsetof(struct sync, host));
    pthread_mutex_lock(&s->lock);
    for (struct fetch_req *r = s->fetches; r; r = r->next)
        if (r->item_id == item_id && r->state == 0)
            r->state = result == 0 ? 1 : -1;
    pthread_cond_broadcast(&s->cond);
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
    s->host.cancel = &s->cancel;
    s->host.item_ready = host_item_ready;
    s->host.mail_default = o->mail_default;
    if (o->imap) {
        /* Stopping must interrupt a connect or a stalled server at once. */
        s->imap = *o->imap;
        s->imap.cancel = &s->cancel;
        struct slot *sl = &s->slots[s->nslots++];
        sl->d = imap_sync_new(&s->imap, s->st, &s->host);
        sl->kinds = 1u << STORE_KIND_MAIL;
    }
    const struct http_config *dav[] = {o->caldav, o->carddav};
    for (int k = 0; k < 2; k++) {
        if (!dav[k])
            continue;
        enum dav_kind kind = k == 0 ? DAV_KIND_CALDAV : DAV_KIND_CARDDAV;
        struct slot *sl = &s->slots[s->nslots++];
        sl->d = dav_sync_new(dav[k], kind, s->st, &s->host);
        sl->kinds = dav_sync_kinds(kind);
    }
    char *v = NULL;
    if (store_meta_get(s->st, "mode", &v) == STORE_OK && strcmp(v, "offline") == 0)
        atomic_store(&s->offline, true);
    free(v);
    v = NULL;
    if (store_meta_get(s->st, "last_opened", &v) == STORE_OK)
        s->first_folder = strtoll(v, NULL, 10);
    free(v);
    *out = s;
    return 0;
}

void
sync_free(struct sync *s)
{
    if (!s)
        return;
    sync_stop(s);
    for (size_t i = 0; i < s->nslots; i++) {
        s->slots[i].d->ops->free(s->slots[i].d);
        free(s->slots[i].error);
    }
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
    unsigned kinds;
};

static int
collect_folder(void *ctx, const struct store_folder *f)
{
    struct folder_ids *ids = ctx;
    if (!f->selectable || !f->server_name || f->local_only || !(ids->kinds & (1u << f->kind)))
        return 0;
    if (ids->n == ids->alloc) {
        ids->alloc = ids->alloc ? ids->alloc * 2 : 16;
        ids->v = xrealloc(ids->v, ids->alloc * sizeof *ids->v);
    }
    ids->v[ids->n++] = f->id;
    return 0;
}

/* Move folder `id` to position `pos` of the list if it is there (at or after
 * pos). */
static void
bring_forward(struct folder_ids *ids, size_t pos, int64_t id)
{
    for (size_t k = pos; k < ids->n; k++) {
        if (ids->v[k] != id)
            continue;
        memmove(ids->v + pos + 1, ids->v + pos, (k - pos) * sizeof *ids->v);
        ids->v[pos] = id;
        return;
    }
}

static int64_t
inbox_folder(struct store *st)
{
    struct store_folder f;
    if (store_folder_by_server_name(st, STORE_KIND_MAIL, "INBOX", &f) != STORE_OK)
        return 0;
    int64_t id = f.id;
    store_folder_clear(&f);
    return id;
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
    sync_error_clear(err);
    int r = d->ops->sync_folder(d, fid, err);
    record_folder_result(s, fid, r < 0 ? err : NULL);
    return r;
}

/* Readers waiting for whole messages go before everything else. */
static void
serve_fetches(struct sync *s)
{
    for (;;) {
        pthread_mutex_lock(&s->lock);
        int64_t id = 0;
        for (struct fetch_req *r = s->fetches; r && !id; r = r->next)
            if (r->state == 0)
                id = r->item_id;
        pthread_mutex_unlock(&s->lock);
        if (!id)
            return;
        struct store_item it;
        struct store_folder f;
        struct slot *sl = NULL;
        if (store_item_get(s->st, id, &it) == STORE_OK &&
            store_folder_get(s->st, it.folder_id, &f) == STORE_OK) {
            for (size_t i = 0; i < s->nslots && !sl; i++)
                if ((s->slots[i].kinds & (1u << f.kind)) && s->slots[i].d->ops->fetch_whole &&
                    s->slots[i].d->ops->connected(s->slots[i].d))
                    sl = &s->slots[i];
            store_folder_clear(&f);
        }
        struct sync_error err;
        sync_error_clear(&err);
        int r = sl ? sl->d->ops->fetch_whole(sl->d, id, &err) : -1;
        if (r < 0) {
            host_item_ready(&s->host, id, -1);
            if (sl)
                log_warn("fetching a whole message: %s", err.msg);
            if (sl && err.scope == SYNC_SCOPE_ACCOUNT) {
                sl->d->ops->disconnect(sl->d);
                return;
            }
        } else {
            host_item_ready(&s->host, id, 0); /* in case the driver did not */
        }
        host_committed(&s->host);
    }
}

/* One pass of one protocol: local changes first (the folder sync must not
 * undo them), then the folder list, then every folder that may have changed
 * (or only `only`, forced) — the one the user opened first, then the one
 * opened last time, then INBOX, then the rest. */
static int
run_pass(struct sync *s, struct slot *sl, int64_t only, struct sync_error *err)
{
    struct sync_driver *d = sl->d;
    sync_error_clear(err);
    if (d->ops->push(d, err) < 0 || d->ops->list(d, err) < 0)
        return -1;
    struct folder_ids ids = {.kinds = sl->kinds};
    if (store_folder_each(s->st, 0, collect_folder, &ids) != STORE_OK) {
        sync_error_set(err, SYNC_ERR_STORE, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "reading folders: %s", store_errmsg(s->st));
        free(ids.v);
        return -1;
    }
    int64_t inbox = inbox_folder(s->st);
    if (inbox)
        bring_forward(&ids, 0, inbox);
    if (s->first_folder)
        bring_forward(&ids, 0, s->first_folder);
    int result = 0;
    for (size_t k = 0; k < ids.n && !atomic_load(&s->cancel) && !atomic_load(&s->offline);
         k++) {
        serve_fetches(s);
        /* A folder opened meanwhile goes next. */
        int64_t hint = atomic_exchange(&s->hint, 0);
        if (hint)
            bring_forward(&ids, k, hint);
        int64_t fid = ids.v[k];
        if (only > 0 && fid != only)
            continue;
        if (only <= 0) {
            struct store_folder f;
            if (store_folder_get(s->st, fid, &f) != STORE_OK)
                continue;
            bool changed = d->ops->maybe_changed(d, &f);
            store_folder_clear(&f);
            if (!changed) {
                /* Checked and current: that is a completed sync too. */
                if (store_folder_set_last_sync(s->st, fid, util_now()) != STORE_OK)
                    log_warn("sync: recording the time of a sync: %s", store_errmsg(s->st));
                continue;
            }
        }
        struct sync_error ferr;
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
    return result;
}

int
sync_check(struct sync *s, struct sync_error *err)
{
    for (size_t i = 0; i < s->nslots; i++) {
        struct sync_driver *d = s->slots[i].d;
        if (!d->ops->connected(d) && d->ops->connect(d, err) < 0)
            return -1;
    }
    return 0;
}

int
sync_once(struct sync *s, const char *folder_path, struct sync_error *err)
{
    sync_error_clear(err);
    if (atomic_load(&s->offline)) {
        sync_error_set(err, SYNC_ERR_CANCELLED, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_NEVER,
                       "the account is offline; `mailfs online ACCOUNT` brings it back");
        return -1;
    }
    int64_t only = REQ_ALL;
    if (folder_path && folder_path[0]) {
        /* The folder list may be new: list first, then resolve. */
        for (size_t i = 0; i < s->nslots; i++) {
            struct sync_driver *d = s->slots[i].d;
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
    int r = 0;
    for (size_t i = 0; i < s->nslots && r == 0; i++) {
        struct sync_driver *d = s->slots[i].d;
        if (!d->ops->connected(d) && d->ops->connect(d, err) < 0)
            r = -1;
        else
            r = run_pass(s, &s->slots[i], only, err);
    }
    for (size_t i = 0; i < s->nslots; i++)
        s->slots[i].d->ops->disconnect(s->slots[i].d);
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

static int
forget_partial(void *ctx, const struct store_item *it)
{
    struct sync *s = ctx;
    struct store_change c = {.kind = STORE_CHANGE_INODE, .ino = store_ino_item(it->id)};
    s->opt.on_change(s->opt.on_change_ctx, &c);
    return 0;
}

/* Whether the mail server is reachable decides the size a message kept in
 * part shows (see sync_mail_reachable): the kernel forgets those sizes
 * when it changes. Sync thread only (it owns s->st). */
static void
update_mail_down(struct sync *s)
{
    bool down = false;
    for (size_t i = 0; i < s->nslots; i++) {
        struct slot *sl = &s->slots[i];
        if ((sl->kinds & (1u << STORE_KIND_MAIL)) && !sl->d->ops->connected(sl->d) && sl->error)
            down = true;
    }
    if (atomic_exchange(&s->mail_down, down) == down || !s->opt.on_change || !s->st)
        return;
    if (store_item_each_partial(s->st, 0, forget_partial, s) != STORE_OK)
        log_warn("sync: listing partial messages: %s", store_errmsg(s->st));
    s->opt.on_change(s->opt.on_change_ctx, NULL);
}

/* The root's user.mailfs.connection, from every protocol's state. */
static void
update_conn_state(struct sync *s)
{
    update_mail_down(s);
    if (atomic_load(&s->offline)) {
        set_conn_state(s, "offline");
        return;
    }
    for (size_t i = 0; i < s->nslots; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->d->ops->connected(sl->d))
            continue;
        int64_t in = (sl->next_attempt - util_now_ms() + 999) / 1000;
        if (sl->error && in > 0)
            set_conn_state(s, "reconnecting in %lld s: %s", (long long)in, sl->error);
        else if (sl->error)
            set_conn_state(s, "reconnecting: %s", sl->error);
        else
            set_conn_state(s, "connecting");
        return;
    }
    set_conn_state(s, "connected");
}

/* A protocol's connection failed or broke: back off before trying again. */
static void
slot_failed(struct sync *s, struct slot *sl, const struct sync_error *err)
{
    sl->d->ops->disconnect(sl->d);
    if (err->retry == SYNC_RETRY_NEVER)
        sl->backoff = BACKOFF_NEVER_MS;
    else
        sl->backoff = sl->backoff ? sl->backoff * 2 : BACKOFF_MIN_MS;
    if (sl->backoff > BACKOFF_MAX_MS && err->retry != SYNC_RETRY_NEVER)
        sl->backoff = BACKOFF_MAX_MS;
    sl->next_attempt = util_now_ms() + sl->backoff;
    free(sl->error);
    sl->error = xstrdup(err->msg);
    log_warn("%s (retrying in %lld s)", err->msg, (long long)(sl->backoff / 1000));
    update_conn_state(s);
}

/* Wait for something to do: the server's push (IDLE) on the one protocol
 * that has it, a wake-up, or the time. Returns the driver's answer (1 with
 * *fid when a folder changed) and which slot answered. */
static int
wait_for_work(struct sync *s, int timeout_ms, struct slot **who, int64_t *fid,
              struct sync_error *err)
{
    *who = NULL;
    for (size_t i = 0; i < s->nslots; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->d->ops->connected(sl->d) && sl->d->ops->wait) {
            *who = sl;
            return sl->d->ops->wait(sl->d, s->wake_fd, timeout_ms, fid, err);
        }
    }
    struct pollfd p = {.fd = s->wake_fd, .events = POLLIN};
    int n = poll(&p, 1, timeout_ms);
    return n > 0 ? 2 : 0;
}

static void *
thread_main(void *arg)
{
    struct sync *s = arg;
    int64_t last_pass = 0;
    bool pass_due = true;
    struct sync_error err;

    while (!atomic_load(&s->stop)) {
        pthread_mutex_lock(&s->lock);
        if (s->pause_wanted) {
            /* Another thread works on the store (reset): stand still. */
            for (size_t i = 0; i < s->nslots; i++)
                s->slots[i].d->ops->disconnect(s->slots[i].d);
            s->paused = true;
            pthread_cond_broadcast(&s->cond);
            while (s->pause_wanted && !atomic_load(&s->stop))
                pthread_cond_wait(&s->cond, &s->lock);
            s->paused = false;
            pthread_mutex_unlock(&s->lock);
            pass_due = true;
            continue;
        }
        if (!atomic_load(&s->offline) && !atomic_load(&s->stop))
            atomic_store(&s->cancel, false); /* what cancelled the last work is over */
        uint64_t gen = s->req_gen;
        bool requested = gen > s->done_gen;
        int64_t folder = s->req_folder;
        s->req_folder = REQ_NONE;
        pthread_mutex_unlock(&s->lock);

        if (atomic_load(&s->offline) || s->nslots == 0) {
            /* No network at all: everything works from the store. */
            for (size_t i = 0; i < s->nslots; i++) {
                s->slots[i].d->ops->disconnect(s->slots[i].d);
                s->slots[i].backoff = 0;
                s->slots[i].next_attempt = 0;
            }
            update_conn_state(s);
            complete_requests(s, gen, s->nslots ? -1 : 0,
                              s->nslots ? "the account is offline" : NULL);
            struct pollfd p = {.fd = s->wake_fd, .events = POLLIN};
            poll(&p, 1, -1);
            drain_wake(s);
            pass_due = true; /* back online: catch up at once */
            continue;
        }

        if (atomic_exchange(&s->reconnect, false))
            for (size_t i = 0; i < s->nslots; i++) {
                s->slots[i].next_attempt = 0;
                s->slots[i].backoff = 0;
            }
        /* Connect what is due (or asked for). */
        int64_t now = util_now_ms(), next_try = INT64_MAX;
        bool any = false;
        for (size_t i = 0; i < s->nslots; i++) {
            struct slot *sl = &s->slots[i];
            if (sl->d->ops->connected(sl->d)) {
                any = true;
                continue;
            }
            if (now < sl->next_attempt && !requested) {
                if (sl->next_attempt < next_try)
                    next_try = sl->next_attempt;
                continue;
            }
            set_conn_state(s, "connecting");
            if (sl->d->ops->connect(sl->d, &err) < 0) {
                if (err.code == SYNC_ERR_CANCELLED)
                    goto cancelled;
                slot_failed(s, sl, &err);
                if (sl->next_attempt < next_try)
                    next_try = sl->next_attempt;
                continue;
            }
            free(sl->error);
            sl->error = NULL;
            log_info("connected (%s)", sl->d->ops->name);
            any = true;
            pass_due = true;
        }
        update_conn_state(s);
        if (!any) {
            complete_requests(s, gen, -1, s->slots[0].error ? s->slots[0].error
                                                             : "cannot connect");
            int64_t ms = next_try == INT64_MAX ? 1000 : next_try - util_now_ms();
            struct slot *who;
            int64_t fid;
            if (ms > 0 && wait_for_work(s, (int)ms, &who, &fid, &err) == 2)
                drain_wake(s);
            continue;
        }

        serve_fetches(s);
        if (pass_due || requested) {
            int64_t only = requested && folder > 0 ? folder : REQ_ALL;
            int result = 0;
            char *msg = NULL;
            for (size_t i = 0; i < s->nslots; i++) {
                struct slot *sl = &s->slots[i];
                if (!sl->d->ops->connected(sl->d))
                    continue;
                int r = run_pass(s, sl, only, &err);
                if (r < 0 && err.code == SYNC_ERR_CANCELLED) {
                    free(msg);
                    goto cancelled;
                }
                if (r < 0 && !msg)
                    msg = xstrdup(err.msg);
                if (r < 0)
                    result = -1;
                if (r < 0 && err.scope == SYNC_SCOPE_ACCOUNT)
                    slot_failed(s, sl, &err); /* a pass that keeps failing must not spin */
                else if (r == 0)
                    sl->backoff = 0;
            }
            last_pass = util_now_ms();
            pass_due = false;
            complete_requests(s, gen, result, msg);
            free(msg);
            continue; /* requests may have come in meanwhile */
        }

        /* Local changes go out as soon as they are made. */
        for (size_t i = 0; i < s->nslots; i++) {
            struct slot *sl = &s->slots[i];
            if (sl->d->ops->connected(sl->d) && sl->d->ops->push(sl->d, &err) < 0) {
                if (err.code == SYNC_ERR_CANCELLED)
                    goto cancelled;
                log_warn("sending local changes: %s", err.msg);
                slot_failed(s, sl, &err);
            }
        }

        int64_t wait_ms = last_pass + (int64_t)s->opt.poll_seconds * 1000 - util_now_ms();
        if (next_try != INT64_MAX && next_try - util_now_ms() < wait_ms)
            wait_ms = next_try - util_now_ms(); /* time to reconnect something */
        if (wait_ms <= 0) {
            pass_due = next_try == INT64_MAX || wait_ms <= 0;
            continue;
        }
        struct slot *who = NULL;
        int64_t fid = 0;
        int w = wait_for_work(s, (int)wait_ms, &who, &fid, &err);
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
            if (util_now_ms() >= last_pass + (int64_t)s->opt.poll_seconds * 1000)
                pass_due = true;
            continue;
        }
        if (w == 1 && who) {
            struct sync_error ferr;
            if (sync_one_folder(s, who->d, fid, &ferr) < 0) {
                log_warn("sync: %s", ferr.msg);
                if (ferr.code == SYNC_ERR_CANCELLED)
                    goto cancelled;
                if (ferr.scope == SYNC_SCOPE_ACCOUNT)
                    slot_failed(s, who, &ferr);
            }
            continue;
        }
        /* w < 0: the connection broke while waiting. */
        if (err.code == SYNC_ERR_CANCELLED)
            goto cancelled;
        if (who)
            slot_failed(s, who, &err);
        continue;
    cancelled:
        /* Stopping, or a pause or going offline interrupted the work: the
         * connections may be mid-command; start them afresh afterwards. */
        if (atomic_load(&s->stop))
            break;
        for (size_t i = 0; i < s->nslots; i++)
            s->slots[i].d->ops->disconnect(s->slots[i].d);
        pass_due = true;
    }
    for (size_t i = 0; i < s->nslots; i++)
        s->slots[i].d->ops->disconnect(s->slots[i].d);
    complete_requests(s, UINT64_MAX, -1, "the mount is shutting down");
    return NULL;
}

void
sync_set_offline(struct sync *s, bool offline)
{
    atomic_store(&s->offline, offline);
    if (offline)
        atomic_store(&s->cancel, true);
    if (!offline)
        atomic_store(&s->reconnect, true); /* at once, whatever the backoff said */
    set_conn_state(s, offline ? "offline" : "connecting");
    sync_kick(s);
}

bool
sync_is_offline(struct sync *s)
{
    return atomic_load(&s->offline);
}

int
sync_fetch_whole(struct sync *s, int64_t item_id, int timeout_ms)
{
    if (!sync_mail_reachable(s))
        return -1; /* no wait: the part kept here is what there is */
    struct fetch_req req = {.item_id = item_id};
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    req.next = s->fetches;
    s->fetches = &req;
    pthread_mutex_unlock(&s->lock);
    sync_kick(s);
    pthread_mutex_lock(&s->lock);
    while (req.state == 0)
        if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT)
            break;
    struct fetch_req **pp = &s->fetches;
    while (*pp && *pp != &req)
        pp = &(*pp)->next;
    if (*pp)
        *pp = req.next;
    int state = req.state;
    pthread_mutex_unlock(&s->lock);
    return state == 1 ? 0 : -1;
}

bool
sync_mail_reachable(struct sync *s)
{
    return !atomic_load(&s->offline) && !atomic_load(&s->mail_down);
}

void
sync_pause(struct sync *s)
{
    pthread_mutex_lock(&s->lock);
    s->pause_wanted = true;
    atomic_store(&s->cancel, true); /* a long pass stops at once */
    pthread_mutex_unlock(&s->lock);
    sync_kick(s);
    pthread_mutex_lock(&s->lock);
    while (s->running && !s->paused && !atomic_load(&s->stop))
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

void
sync_resume(struct sync *s)
{
    pthread_mutex_lock(&s->lock);
    s->pause_wanted = false;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    sync_kick(s);
}

void
sync_request(struct sync *s, int64_t folder_id)
{
    pthread_mutex_lock(&s->lock);
    s->req_gen++;
    if (s->req_folder == REQ_NONE)
        s->req_folder = folder_id;
    else if (s->req_folder != folder_id)
        s->req_folder = REQ_ALL;
    pthread_mutex_unlock(&s->lock);
    sync_kick(s);
}

void
sync_hint_folder(struct sync *s, int64_t folder_id)
{
    atomic_store(&s->hint, folder_id);
}

int
sync_start(struct sync *s)
{
    if (s->running)
        return 0;
    /* A new connection for the thread: the one opened in sync_new may have
     * crossed a fork (fuse_daemonize), and sqlite's POSIX locks stay with
     * the parent. Without them another process (mailfs status) would take
     * itself for the last user of the database, checkpoint and delete the
     * WAL under us, and damage the store. */
    struct store *fresh;
    char *err = NULL;
    if (store_open(s->opt.store_dir, 0, &fresh, &err) != STORE_OK) {
        log_error("sync: reopening the store: %s", err ? err : "failed");
        free(err);
        return -EIO;
    }
    store_close(s->st);
    s->st = fresh;
    for (size_t i = 0; i < s->nslots; i++)
        s->slots[i].d->st = fresh;
    atomic_store(&s->stop, false);
    atomic_store(&s->cancel, false);
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
    atomic_store(&s->cancel, true);
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->cond); /* a paused thread wakes and ends */
    pthread_mutex_unlock(&s->lock);
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
    if (atomic_load(&s->offline)) {
        *msg = xstrdup("the account is offline; `mailfs online` brings it back");
        return -1;
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
