/* recover: finishing what a crash interrupted, when the store is opened by
 * the process that owns it (the mount or a one-shot sync): staged content
 * whose row was committed is put in place, drafts that were written but
 * not yet committed are committed (each write was durable when it returned:
 * store/draft.h), and tmp/ is emptied. */
#include "store/store_p.h"

#include "store/draft.h"

#include "common/log.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct staged_ids {
    int64_t *v;
    size_t n, alloc;
};

static int
collect(void *ctx, int64_t id)
{
    struct staged_ids *s = ctx;
    if (s->n == s->alloc) {
        s->alloc = s->alloc ? s->alloc * 2 : 16;
        s->v = xrealloc(s->v, s->alloc * sizeof *s->v);
    }
    s->v[s->n++] = id;
    return 0;
}

static bool
is_staged(const struct staged_ids *s, int64_t id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == id)
            return true;
    return false;
}

/* Remove every file in dir (not recursively). */
static void
empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *p = xasprintf("%s/%s", dir, e->d_name);
        unlink(p);
        free(p);
    }
    closedir(d);
}

enum store_status
store_recover(struct store *st)
{
    struct staged_ids staged = {0};
    enum store_status r = store_item_each_staged(st, collect, &staged);
    if (r != STORE_OK)
        return r;
    for (size_t i = 0; i < staged.n; i++) {
        int e = store_content_commit_staged(st, staged.v[i]);
        if (e < 0 && e != -ENOENT)
            log_warn("item %lld: putting new content in place: %s", (long long)staged.v[i],
                     strerror(-e));
        else if (e == 0)
            log_info("item %lld: new content put in place after an interruption",
                     (long long)staged.v[i]);
    }
    if (staged.n) {
        r = store_begin(st);
        for (size_t i = 0; r == STORE_OK && i < staged.n; i++)
            r = store_item_clear_staged(st, staged.v[i]);
        if (r == STORE_OK)
            r = store_commit(st);
        else
            store_rollback(st);
    }
    /* Drafts written but not committed: the writer was told its bytes
     * were kept. Listed first: committing renames files in drafts/. */
    struct staged_ids written = {0};
    char *drafts = xasprintf("%s/drafts", st->dir);
    DIR *d = opendir(drafts);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *end;
        long long id = strtoll(e->d_name, &end, 10);
        if (*end || id <= 0) {
            char *p = xasprintf("%s/%s", drafts, e->d_name);
            log_info("removing %s: not a draft of mailfs", p);
            unlink(p);
            free(p);
        } else if (!is_staged(&staged, id)) {
            collect(&written, id);
        }
    }
    if (d)
        closedir(d);
    free(drafts);
    for (size_t i = 0; i < written.n; i++) {
        int de = store_draft_recover(st, written.v[i]);
        if (de < 0)
            log_warn("item %lld: committing what was written: %s (kept for the next start)",
                     (long long)written.v[i], strerror(-de));
    }
    free(written.v);
    char *tmp = xasprintf("%s/tmp", st->dir);
    empty_dir(tmp);
    free(tmp);
    free(staged.v);
    return r;
}
