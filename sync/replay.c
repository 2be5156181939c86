/* replay: see replay.h. */
#include "sync/replay.h"

#include "common/crash.h"
#include "common/log.h"
#include "common/util.h"

#include <stdlib.h>

int
replay_store_fail(struct sync_error *err, struct store *st, const char *what)
{
    sync_error_set(err, SYNC_ERR_STORE, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER, "%s: %s", what,
                   store_errmsg(st));
    return -1;
}

int
replay_begin(struct sync_driver *d, struct sync_error *err)
{
    /* Whatever failed before must not leave a transaction behind (a store
     * that can never begin again would stop the journal for good). */
    store_rollback(d->st);
    if (store_begin(d->st) != STORE_OK)
        return replay_store_fail(err, d->st, "starting a transaction");
    return 0;
}

int
replay_end(struct sync_driver *d, int rc, const char *what, struct sync_error *err)
{
    if (rc < 0) {
        store_rollback(d->st);
        return rc;
    }
    if (store_commit(d->st) != STORE_OK)
        return replay_store_fail(err, d->st, "committing the journal");
    crash_point(what);
    if (d->host)
        d->host->committed(d->host);
    return 0;
}

int
replay_refuse(struct sync_driver *d, struct journal_entry *e, enum store_item_state state,
              const char *why, struct sync_error *err)
{
    struct store *st = d->st;
    log_warn("the server refused %s: %s", journal_op_name(e->op), why);
    free(e->error);
    e->error = xstrdup(why);
    e->state = JOURNAL_REFUSED;
    if (journal_update(st, e) != STORE_OK)
        return replay_store_fail(err, st, "recording a refusal");
    if (e->item_id) {
        enum store_status s = store_item_set_state(st, e->item_id, state, why);
        if (s != STORE_OK && s != STORE_NOTFOUND)
            return replay_store_fail(err, st, "recording a refusal");
    }
    return 0;
}

int
replay_done(struct sync_driver *d, const struct journal_entry *e, struct sync_error *err)
{
    struct store *st = d->st;
    if (journal_remove(st, e->id) != STORE_OK)
        return replay_store_fail(err, st, "removing a journal entry");
    if (!e->item_id)
        return 0;
    struct journal_entry other;
    enum store_status s = journal_find_item(st, e->item_id, ~0u,
                                            JOURNAL_BIT(JOURNAL_QUEUED) |
                                                JOURNAL_BIT(JOURNAL_INFLIGHT) |
                                                JOURNAL_BIT(JOURNAL_REFUSED),
                                            &other);
    if (s == STORE_OK) {
        journal_entry_clear(&other);
        return 0;
    }
    /* Only the marks a change gave it go: a message kept in part stays
     * partial, a conflict stays until the user settles it. */
    struct store_item it;
    if (s == STORE_NOTFOUND && store_item_get(st, e->item_id, &it) == STORE_OK &&
        (it.state == STORE_ITEM_PENDING || it.state == STORE_ITEM_ERROR) &&
        store_item_set_state(st, e->item_id, STORE_ITEM_SYNCED, NULL) != STORE_OK)
        return replay_store_fail(err, st, "marking an item synced");
    return 0;
}

int
replay_drop(struct sync_driver *d, struct journal_entry *e, const char *why,
            struct sync_error *err)
{
    if (why)
        log_info("journal: %s of item %lld not sent: %s", journal_op_name(e->op),
                 (long long)e->item_id, why);
    if (replay_begin(d, err) < 0)
        return -1;
    return replay_end(d, replay_done(d, e, err), "journal entry dropped", err);
}

bool
replay_cancelled(struct sync_driver *d, struct sync_error *err)
{
    if (d->host && d->host->cancel && atomic_load(d->host->cancel)) {
        sync_error_set(err, SYNC_ERR_CANCELLED, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "cancelled");
        return true;
    }
    return false;
}
