/* journal: the table of local changes waiting for the server. */
#include "store/journal.h"
#include "store/store_p.h"

#include "common/util.h"

#include <stdlib.h>
#include <string.h>

#define JOURNAL_COLS                                                                      \
    "id, op, state, item_id, folder_id, src, uid, uidvalidity, base, arg, hint, "         \
    "message_id, size, created, attempts, error, kind, href"

void
journal_entry_clear(struct journal_entry *e)
{
    free(e->src);
    free(e->base);
    free(e->arg);
    free(e->message_id);
    free(e->error);
    free(e->href);
    e->src = e->base = e->arg = e->message_id = e->error = e->href = NULL;
}

const char *
journal_op_name(enum journal_op op)
{
    switch (op) {
    case JOURNAL_APPEND: return "append";
    case JOURNAL_REPLACE: return "replace";
    case JOURNAL_DELETE: return "delete";
    case JOURNAL_MOVE: return "move";
    case JOURNAL_FLAGS: return "flags";
    case JOURNAL_MKDIR: return "mkdir";
    case JOURNAL_RMDIR: return "rmdir";
    case JOURNAL_RENAME: return "rename";
    }
    return "?";
}

static char *
col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? xstrdup((const char *)t) : NULL;
}

static void
read_entry(sqlite3_stmt *s, struct journal_entry *e)
{
    e->id = sqlite3_column_int64(s, 0);
    e->op = (enum journal_op)sqlite3_column_int(s, 1);
    e->state = (enum journal_state)sqlite3_column_int(s, 2);
    e->item_id = sqlite3_column_int64(s, 3);
    e->folder_id = sqlite3_column_int64(s, 4);
    e->src = col_dup(s, 5);
    e->uid = (uint32_t)sqlite3_column_int64(s, 6);
    e->uidvalidity = (uint32_t)sqlite3_column_int64(s, 7);
    e->base = col_dup(s, 8);
    e->arg = col_dup(s, 9);
    e->hint = (uint32_t)sqlite3_column_int64(s, 10);
    e->message_id = col_dup(s, 11);
    e->size = sqlite3_column_int64(s, 12);
    e->created = sqlite3_column_int64(s, 13);
    e->attempts = sqlite3_column_int(s, 14);
    e->error = col_dup(s, 15);
    e->kind = (enum store_kind)sqlite3_column_int(s, 16);
    e->href = col_dup(s, 17);
}

static enum store_status
one_entry(struct store *st, sqlite3_stmt *s, struct journal_entry *out)
{
    memset(out, 0, sizeof *out);
    int rc = sqlite3_step(s);
    enum store_status r;
    if (rc == SQLITE_ROW) {
        read_entry(s, out);
        r = STORE_OK;
    } else {
        r = rc == SQLITE_DONE ? STORE_NOTFOUND : store_sqlite_status(st, rc);
    }
    sqlite3_reset(s);
    return r;
}

static void
bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

enum store_status
journal_add(struct store *st, const struct journal_entry *e, int64_t *id_out)
{
    sqlite3_stmt *s = store_sql(
        st, "INSERT INTO journal(op, state, item_id, folder_id, src, uid, uidvalidity, base, "
            "arg, hint, message_id, size, created, kind, href) VALUES (?1, 0, ?2, ?3, ?4, ?5, "
            "?6, ?7, ?8, ?9, ?10, ?11, ?12, CASE WHEN ?13 > 0 THEN ?13 ELSE coalesce((SELECT "
            "kind FROM folders WHERE id = ?3), 1) END, ?14)");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int(s, 1, e->op);
    sqlite3_bind_int64(s, 2, e->item_id);
    sqlite3_bind_int64(s, 3, e->folder_id);
    bind_text_or_null(s, 4, e->src);
    sqlite3_bind_int64(s, 5, e->uid);
    sqlite3_bind_int64(s, 6, e->uidvalidity);
    bind_text_or_null(s, 7, e->base);
    bind_text_or_null(s, 8, e->arg);
    sqlite3_bind_int64(s, 9, e->hint);
    bind_text_or_null(s, 10, e->message_id);
    sqlite3_bind_int64(s, 11, e->size);
    sqlite3_bind_int64(s, 12, e->created ? e->created : util_now());
    sqlite3_bind_int(s, 13, e->kind);
    bind_text_or_null(s, 14, e->href);
    enum store_status r = store_step_done(st, s);
    if (r == STORE_OK && id_out)
        *id_out = sqlite3_last_insert_rowid(store_db(st));
    return r;
}

enum store_status
journal_get(struct store *st, int64_t id, struct journal_entry *out)
{
    sqlite3_stmt *s = store_sql(st, "SELECT " JOURNAL_COLS " FROM journal WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    return one_entry(st, s, out);
}

enum store_status
journal_next(struct store *st, int64_t after_id, unsigned kind_mask, struct journal_entry *out)
{
    sqlite3_stmt *s = store_sql(st, "SELECT " JOURNAL_COLS " FROM journal WHERE id > ?1 AND "
                                    "state IN (0, 1) AND ((1 << kind) & ?2) <> 0 "
                                    "ORDER BY id LIMIT 1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, after_id);
    sqlite3_bind_int64(s, 2, kind_mask);
    return one_entry(st, s, out);
}

enum store_status
journal_update(struct store *st, const struct journal_entry *e)
{
    sqlite3_stmt *s = store_sql(st, "UPDATE journal SET state = ?2, uid = ?3, uidvalidity = ?4,"
                                    " src = ?5, hint = ?6, message_id = ?7, size = ?8, "
                                    "attempts = ?9, error = ?10, op = ?11, arg = ?12, "
                                    "base = ?13, href = ?14, folder_id = ?15 WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, e->id);
    sqlite3_bind_int(s, 2, e->state);
    sqlite3_bind_int64(s, 3, e->uid);
    sqlite3_bind_int64(s, 4, e->uidvalidity);
    bind_text_or_null(s, 5, e->src);
    sqlite3_bind_int64(s, 6, e->hint);
    bind_text_or_null(s, 7, e->message_id);
    sqlite3_bind_int64(s, 8, e->size);
    sqlite3_bind_int(s, 9, e->attempts);
    bind_text_or_null(s, 10, e->error);
    sqlite3_bind_int(s, 11, e->op);
    bind_text_or_null(s, 12, e->arg);
    bind_text_or_null(s, 13, e->base);
    bind_text_or_null(s, 14, e->href);
    sqlite3_bind_int64(s, 15, e->folder_id);
    return store_step_done(st, s);
}

enum store_status
journal_remove(struct store *st, int64_t id)
{
    sqlite3_stmt *s = store_sql(st, "DELETE FROM journal WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    return store_step_done(st, s);
}

enum store_status
journal_find_item(struct store *st, int64_t item_id, unsigned op_mask, unsigned state_mask,
                  struct journal_entry *out)
{
    sqlite3_stmt *s = store_sql(st, "SELECT " JOURNAL_COLS " FROM journal WHERE item_id = ?1 "
                                    "AND ((1 << op) & ?2) <> 0 AND ((1 << state) & ?3) <> 0 "
                                    "ORDER BY id DESC LIMIT 1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, item_id);
    sqlite3_bind_int64(s, 2, op_mask);
    sqlite3_bind_int64(s, 3, state_mask);
    return one_entry(st, s, out);
}

enum store_status
journal_find_folder(struct store *st, int64_t folder_id, unsigned op_mask, unsigned state_mask,
                    struct journal_entry *out)
{
    sqlite3_stmt *s = store_sql(st, "SELECT " JOURNAL_COLS " FROM journal WHERE folder_id = ?1 "
                                    "AND item_id = 0 AND ((1 << op) & ?2) <> 0 AND "
                                    "((1 << state) & ?3) <> 0 ORDER BY id DESC LIMIT 1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    sqlite3_bind_int64(s, 2, op_mask);
    sqlite3_bind_int64(s, 3, state_mask);
    return one_entry(st, s, out);
}

enum store_status
journal_drop_refused(struct store *st, int64_t item_id)
{
    sqlite3_stmt *s = store_sql(st, "DELETE FROM journal WHERE item_id = ?1 AND state = 2");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, item_id);
    return store_step_done(st, s);
}

enum store_status
journal_drop_item(struct store *st, int64_t item_id, unsigned op_mask)
{
    sqlite3_stmt *s = store_sql(st, "DELETE FROM journal WHERE item_id = ?1 AND state = 0 AND "
                                    "((1 << op) & ?2) <> 0");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, item_id);
    sqlite3_bind_int64(s, 2, op_mask);
    return store_step_done(st, s);
}

enum store_status
journal_fill_uid(struct store *st, int64_t item_id, const char *src, uint32_t uid,
                 uint32_t uidvalidity)
{
    sqlite3_stmt *s = store_sql(st, "UPDATE journal SET uid = ?2, uidvalidity = ?3, "
                                    "src = coalesce(src, ?4) WHERE item_id = ?1 AND uid = 0 "
                                    "AND op IN (2, 3, 4, 5) AND state = 0");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, item_id);
    sqlite3_bind_int64(s, 2, uid);
    sqlite3_bind_int64(s, 3, uidvalidity);
    bind_text_or_null(s, 4, src);
    return store_step_done(st, s);
}

enum store_status
journal_fill_href(struct store *st, int64_t item_id, const char *href, const char *etag)
{
    sqlite3_stmt *s = store_sql(st, "UPDATE journal SET href = ?2, base = ?3 WHERE "
                                    "item_id = ?1 AND href IS NULL AND op IN (3, 4) AND "
                                    "state = 0");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, item_id);
    bind_text_or_null(s, 2, href);
    bind_text_or_null(s, 3, etag);
    return store_step_done(st, s);
}

enum store_status
journal_href_leaving(struct store *st, const char *href, bool *out)
{
    *out = false;
    sqlite3_stmt *s = store_sql(st, "SELECT 1 FROM journal WHERE href = ?1 AND op IN (3, 4) "
                                    "AND state IN (0, 1) LIMIT 1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, href, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW;
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
}

enum store_status
journal_count(struct store *st, int64_t folder_id, int64_t *out)
{
    sqlite3_stmt *s = store_sql(st, "SELECT count(*) FROM journal WHERE state IN (0, 1) AND "
                                    "(?1 = 0 OR folder_id = ?1)");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(st, rc);
}

enum store_status
journal_each_leaving_uid(struct store *st, const char *src, int (*fn)(void *ctx, uint32_t uid),
                         void *ctx)
{
    sqlite3_stmt *s = store_sql(st, "SELECT uid FROM journal WHERE src = ?1 AND uid <> 0 AND "
                                    "op IN (2, 3, 4) AND state IN (0, 1, 2)");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, src, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (fn(ctx, (uint32_t)sqlite3_column_int64(s, 0))) {
            rc = SQLITE_DONE;
            break;
        }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
}

enum store_status
journal_names_folder(struct store *st, const char *server_name, bool *out)
{
    sqlite3_stmt *s = store_sql(st, "SELECT 1 FROM journal WHERE op IN (6, 7, 8) AND "
                                    "state IN (0, 1, 2) AND (src = ?1 OR arg = ?1) LIMIT 1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, server_name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW;
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
}

enum store_status
journal_name_at(struct store *st, int64_t entry_id, const char *name, char delimiter,
                char **out)
{
    *out = xstrdup(name);
    sqlite3_stmt *s = store_sql(st, "SELECT src, arg FROM journal WHERE op = 8 AND "
                                    "state IN (0, 1) AND id > ?1 ORDER BY id DESC");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, entry_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *src = (const char *)sqlite3_column_text(s, 0);
        const char *arg = (const char *)sqlite3_column_text(s, 1);
        if (!src || !arg)
            continue;
        size_t n = strlen(arg);
        /* The renamed folder itself, or one below it. */
        if (strncmp(*out, arg, n) != 0 ||
            ((*out)[n] != '\0' && (!delimiter || (*out)[n] != delimiter)))
            continue;
        char *was = xasprintf("%s%s", src, *out + n);
        free(*out);
        *out = was;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
}
