/* notify: telling the kernel what to forget. The sync thread calls
 * mount_on_change after each commit (it never serves a FUSE request, so it
 * may wait on the kernel); FUSE threads must not notify from inside a
 * request, so they queue invalidations for a small thread of their own. */
#include "fs/mount.h"

#include "common/util.h"

#include <pthread.h>
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

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static uint64_t *q_inos;     /* owned; protected by q_lock */
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
        uint64_t ino = q_inos[--q_n];
        pthread_mutex_unlock(&q_lock);
        fuse_lowlevel_notify_inval_inode(m->se, ino, 0, 0);
        pthread_mutex_lock(&q_lock);
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
    free(q_inos);
    q_inos = NULL;
    q_n = q_alloc = 0;
}

void
notify_inode_later(uint64_t ino)
{
    pthread_mutex_lock(&q_lock);
    if (q_running) {
        if (q_n == q_alloc) {
            q_alloc = q_alloc ? q_alloc * 2 : 16;
            q_inos = xrealloc(q_inos, q_alloc * sizeof *q_inos);
        }
        q_inos[q_n++] = ino;
        pthread_cond_signal(&q_cond);
    }
    pthread_mutex_unlock(&q_lock);
}
