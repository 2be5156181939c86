/* notify: telling the kernel what to forget. The sync thread calls
 * mount_on_change after each commit (it never serves a FUSE request, so it
 * may wait on the kernel); FUSE threads must not notify from inside a
 * request, so they queue invalidations for a small thread of their own. */
#include "fs/mount.h"

#include "common/util.h"

#include <pthread.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

static void
mark_dirty(struct mount *m, uint64_t ino)
{
    for (size_t i = 0; i < m->ndirty; i++)
        if (m->dirty_dirs[i] == ino)
            return;
    if (m->ndirty == m->adirty) {
        m->adirty = m->adirty ? m->adirty * 2 : 16;
        m->dirty_dirs = xrealloc(m->dirty_dirs, m->adirty * sizeof *m->dirty_dirs);
    }
    m->dirty_dirs[m->ndirty++] = ino;
}

void
mount_on_change(void *ctx, const struct store_change *c)
{
    struct mount *m = ctx;
    if (!m->se)
        return;
    if (!c) {
        /* End of a batch: drop the cached listings of changed directories. */
        for (size_t i = 0; i < m->ndirty; i++)
            fuse_lowlevel_notify_inval_inode(m->se, m->dirty_dirs[i], 0, 0);
        m->ndirty = 0;
        return;
    }
    if (c->kind == STORE_CHANGE_ENTRY) {
        /* Errors mean the kernel did not have the name cached: fine. */
        fuse_lowlevel_notify_inval_entry(m->se, c->parent_ino, c->name, strlen(c->name));
        mark_dirty(m, c->parent_ino);
    } else {
        fuse_lowlevel_notify_inval_inode(m->se, c->ino, 0, 0);
    }
}

/* ---- the notifier thread, for changes made by FUSE threads ---- */

/* An inode to forget (parent 0), or a name in a parent directory. */
struct later {
    uint64_t ino;
    uint64_t parent;
    char *name; /* owned; NULL for an inode */
};

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t q_idle = PTHREAD_COND_INITIALIZER; /* the queue ran dry */
static bool q_busy;          /* one taken off the queue, being told */
static struct later *q_v;    /* owned; protected by q_lock */
static size_t q_n, q_alloc;
static bool q_stop, q_running;
static pthread_t q_thread;

static void *
notifier_main(void *arg)
{
    struct mount *m = arg;
    pthread_mutex_lock(&q_lock);
    for (;;) {
        while (!q_stop && q_n == 0)
            pthread_cond_wait(&q_cond, &q_lock);
        if (q_stop)
            break;
        struct later l = q_v[--q_n];
        q_busy = true;
        pthread_mutex_unlock(&q_lock);
        /* The kernel takes the directory's lock first, so an entry is
         * forgotten only after the request that made it has finished. */
        if (l.name)
            fuse_lowlevel_notify_inval_entry(m->se, l.parent, l.name, strlen(l.name));
        else
            fuse_lowlevel_notify_inval_inode(m->se, l.ino, 0, 0);
        free(l.name);
        pthread_mutex_lock(&q_lock);
        q_busy = false;
        if (q_n == 0)
            pthread_cond_broadcast(&q_idle);
    }
    pthread_mutex_unlock(&q_lock);
    return NULL;
}

int
notify_start(struct mount *m)
{
    q_stop = false;
    if (pthread_create(&q_thread, NULL, notifier_main, m) != 0)
        return -1;
    q_running = true;
    return 0;
}

void
notify_stop(void)
{
    if (!q_running)
        return;
    pthread_mutex_lock(&q_lock);
    q_stop = true;
    pthread_cond_signal(&q_cond);
    pthread_mutex_unlock(&q_lock);
    pthread_join(q_thread, NULL);
    q_running = false;
    for (size_t i = 0; i < q_n; i++)
        free(q_v[i].name);
    free(q_v);
    q_v = NULL;
    q_n = q_alloc = 0;
}

static void
queue(uint64_t ino, uint64_t parent, const char *name)
{
    pthread_mutex_lock(&q_lock);
    if (q_running) {
        if (q_n == q_alloc) {
            q_alloc = q_alloc ? q_alloc * 2 : 16;
            q_v = xrealloc(q_v, q_alloc * sizeof *q_v);
        }
        q_v[q_n++] = (struct later){ino, parent, name ? xstrdup(name) : NULL};
        pthread_cond_signal(&q_cond);
    }
    pthread_mutex_unlock(&q_lock);
}

void
notify_inode_later(uint64_t ino)
{
    queue(ino, 0, NULL);
}

void
notify_entry_later(uint64_t parent, const char *name)
{
    queue(0, parent, name);
}

void
notify_drain(int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q_lock);
    while (q_running && !q_stop && (q_n > 0 || q_busy))
        if (pthread_cond_timedwait(&q_idle, &q_lock, &until) != 0)
            break;
    pthread_mutex_unlock(&q_lock);
}
