/* folder: folder rows (directories of the tree) and their sync state. */
#include "store/store_p.h"

#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? xstrdup((const char *)t) : NULL;
}

static void
read_folder(sqlite3_stmt *s, struct store_folder *f)
{
    f->id = sqlite3_column_int64(s, 0);
    f->parent_id = sqlite3_column_int64(s, 1);
    f->kind = (enum store_kind)sqlite3_column_int(s, 2);
    snprintf(f->name, sizeof f->name, "%s", (const char *)sqlite3_column_text(s, 3));
    f->server_name = col_dup(s, 4);
    f->delimiter = (char)sqlite3_column_int(s, 5);
    f->selectable = sqlite3_column_int(s, 6) != 0;
    f->mode = (enum store_mode)sqlite3_column_int(s, 7);
    f->uidvalidity = (uint32_t)sqlite3_column_int64(s, 8);
    f->highestmodseq = (uint64_t)sqlite3_column_int64(s, 9);
    f->uidnext = (uint32_t)sqlite3_column_int64(s, 10);
    f->server_count = (uint32_t)sqlite3_column_int64(s, 11);
    f->sync_token = col_dup(s, 12);
    f->last_sync = sqlite3_column_int64(s, 13);
    f->error = col_dup(s, 14);
    f->local_only = sqlite3_column_int(s, 15) != 0;
    f->mtime = sqlite3_column_int64(s, 16);
}

void
store_folder_clear(struct store_folder *f)
{
    free(f->server_name);
    free(f->sync_token);
    free(f->error);
    f->server_name = NULL;
    f->sync_token = NULL;
    f->error = NULL;
}

/* Run a statement expected to give at most one folder row. */
static enum store_status
one_folder(struct store *st, sqlite3_stmt *s, struct store_folder *out)
{
    memset(out, 0, sizeof *out);
    int rc = sqlite3_step(s);
    enum store_status r;
    if (rc == SQLITE_ROW) {
        read_folder(s, out);
        r = STORE_OK;
    } else if (rc == SQLITE_DONE) {
        r = STORE_NOTFOUND;
    } else {
        r = store_sqlite_status(st, rc);
    }
    sqlite3_reset(s);
    return r;
}

enum store_status
store_folder_get(struct store *st, int64_t id, struct store_folder *out)
{
    sqlite3_stmt *s = store_stmt(st, ST_FOLDER_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    return one_folder(st, s, out);
}

enum store_status
store_folder_lookup(struct store *st, int64_t parent_id, const char *name,
                    struct store_folder *out)
{
    sqlite3_stmt *s = store_stmt(st, ST_FOLDER_LOOKUP);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, parent_id);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    return one_folder(st, s, out);
}

enum store_status
store_folder_by_server_name(struct store *st, enum store_kind kind, const char *server_name,
                            struct store_folder *out)
{
    sqlite3_stmt *s = store_stmt(st, ST_FOLDER_BY_SERVER);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int(s, 1, kind);
    sqlite3_bind_text(s, 2, server_name, -1, SQLITE_STATIC);
    return one_folder(st, s, out);
}

static bool
name_taken(struct store *st, enum store_stmt which, int64_t parent, const char *name,
           enum store_status *err)
{
    sqlite3_stmt *s = store_stmt(st, which);
    if (!s) {
        *err = STORE_ERROR;
        return true;
    }
    sqlite3_bind_int64(s, 1, parent);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW)
        return true;
    if (rc != SQLITE_DONE) {
        *err = store_sqlite_status(st, rc);
        return true;
    }
    return false;
}

/* Pick the first free variant of `wanted` in the directory; writes it to out.
 * Folder and item names share a directory, so both tables are checked. */
static enum store_status
unique_name(struct store *st, int64_t folder_id, const char *wanted, char *out)
{
    enum store_status err = STORE_OK;
    snprintf(out, NAMES_MAX + 1, "%s", wanted);
    for (unsigned n = 2;; n++) {
        bool taken = name_taken(st, ST_FOLDER_NAME_TAKEN, folder_id, out, &err) ||
                     name_taken(st, ST_ITEM_NAME_TAKEN, folder_id, out, &err);
        if (err != STORE_OK)
            return err;
        if (!taken)
            return STORE_OK;
        if (n > 100000) {
            store_set_error(st, "no free name for %s", wanted);
            return STORE_EXISTS;
        }
        char *v = names_variant(wanted, n);
        snprintf(out, NAMES_MAX + 1, "%s", v);
        free(v);
    }
}

enum store_status
store_unique_name(struct store *st, int64_t folder_id, const char *wanted, char *out)
{
    return unique_name(st, folder_id, wanted, out);
}

enum store_status
store_folder_add(struct store *st, struct store_folder *f)
{
    char name[NAMES_MAX + 1];
    enum store_status r = unique_name(st, f->parent_id, f->name, name);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *s = store_stmt(st, ST_FOLDER_ADD);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, f->parent_id);
    sqlite3_bind_int(s, 2, f->kind);
    sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
    if (f->server_name)
        sqlite3_bind_text(s, 4, f->server_name, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, (unsigned char)f->delimiter);
    sqlite3_bind_int(s, 6, f->selectable);
    sqlite3_bind_int(s, 7, f->mode);
    sqlite3_bind_int(s, 8, f->local_only);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store_sqlite_status(st, rc);
    f->id = sqlite3_last_insert_rowid(st->db);
    memcpy(f->name, name, sizeof name);
    store_record(st, STORE_CHANGE_ENTRY, store_ino_folder(f->parent_id),
                 store_ino_folder(f->id), name);
    return STORE_OK;
}

enum store_status
store_folder_update_sync(struct store *st, const struct store_folder *f)
{
    sqlite3_stmt *s = store_stmt(st, ST_FOLDER_UPDATE_SYNC);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, f->id);
    sqlite3_bind_int64(s, 2, f->uidvalidity);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)f->highestmodseq);
    sqlite3_bind_int64(s, 4, f->uidnext);
    sqlite3_bind_int64(s, 5, f->server_count);
    if (f->sync_token)
        sqlite3_bind_text(s, 6, f->sync_token, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, f->last_sync);
    if (f->error)
        sqlite3_bind_text(s, 8, f->error, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 9, f->selectable);
    sqlite3_bind_int(s, 10, (unsigned char)f->delimiter);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_DONE && sqlite3_changes(st->db) == 0)
        return STORE_NOTFOUND;
    return store_sqlite_status(st, rc);
}

/* Collect the ids of a folder's direct children. */
static enum store_status
children(struct store *st, int64_t id, int64_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    size_t alloc = 0;
    sqlite3_stmt *s = store_stmt(st, ST_FOLDER_CHILDREN);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == alloc) {
            alloc = alloc ? alloc * 2 : 8;
            *ids = xrealloc(*ids, alloc * sizeof **ids);
        }
        (*ids)[(*n)++] = sqlite3_column_int64(s, 0);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
}

enum store_status
store_folder_remove(struct store *st, int64_t id)
{
    struct store_folder f;
    enum store_status r = store_folder_get(st, id, &f);
    if (r != STORE_OK)
        return r;
    store_folder_clear(&f);
    int64_t *kids;
    size_t nkids;
    r = children(st, id, &kids, &nkids);
    for (size_t i = 0; r == STORE_OK && i < nkids; i++)
        r = store_folder_remove(st, kids[i]);
    free(kids);
    if (r != STORE_OK)
        return r;

    /* Items first, each with its content file. */
    sqlite3_stmt *s = store_stmt(st, ST_ITEM_IDS_IN_FOLDER);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    int64_t *items = NULL;
    size_t nitems = 0, alloc = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (nitems == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            items = xrealloc(items, alloc * sizeof *items);
        }
        items[nitems++] = sqlite3_column_int64(s, 0);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        free(items);
        return store_sqlite_status(st, rc);
    }
    for (size_t i = 0; r == STORE_OK && i < nitems; i++)
        r = store_item_remove(st, items[i]);
    free(items);
    if (r != STORE_OK)
        return r;

    s = store_stmt(st, ST_FOLDER_DELETE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store_sqlite_status(st, rc);
    store_record(st, STORE_CHANGE_ENTRY, store_ino_folder(f.parent_id), store_ino_folder(id),
                 f.name);
    return STORE_OK;
}

enum store_status
store_folder_each(struct store *st, enum store_kind kind,
                  int (*fn)(void *ctx, const struct store_folder *f), void *ctx)
{
    /* Rows are read into memory first: fn may use the same connection. */
    sqlite3_stmt *s = store_stmt(st, kind ? ST_FOLDER_EACH_KIND : ST_FOLDER_EACH);
    if (!s)
        return STORE_ERROR;
    if (kind)
        sqlite3_bind_int(s, 1, kind);
    struct store_folder *all = NULL;
    size_t n = 0, alloc = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            all = xrealloc(all, alloc * sizeof *all);
        }
        memset(&all[n], 0, sizeof all[n]);
        read_folder(s, &all[n++]);
    }
    sqlite3_reset(s);
    enum store_status r = rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
    bool stop = r != STORE_OK;
    for (size_t i = 0; i < n; i++) {
        if (!stop && fn(ctx, &all[i]))
            stop = true;
        store_folder_clear(&all[i]);
    }
    free(all);
    return r;
}

enum store_status
store_folder_rename(struct store *st, int64_t id, int64_t parent_id, const char *name,
                    const char *server_name)
{
    struct store_folder f;
    enum store_status r = store_folder_get(st, id, &f);
    if (r != STORE_OK)
        return r;
    char got[NAMES_MAX + 1];
    bool same = f.parent_id == parent_id && strcmp(f.name, name) == 0;
    if (!same) {
        r = store_unique_name(st, parent_id, name, got);
        if (r == STORE_OK && strcmp(got, name) != 0)
            r = STORE_EXISTS;
    }
    sqlite3_stmt *s = r == STORE_OK ? store_sql(st, "UPDATE folders SET parent_id = ?2, "
                                                    "name = ?3, server_name = ?4 WHERE id = ?1")
                                    : NULL;
    if (r == STORE_OK && !s)
        r = STORE_ERROR;
    if (r == STORE_OK) {
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, parent_id);
        sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
        if (server_name)
            sqlite3_bind_text(s, 4, server_name, -1, SQLITE_STATIC);
        r = store_step_done(st, s);
    }
    /* Folders below follow: "Old/x" becomes "New/x". */
    if (r == STORE_OK && f.server_name && server_name && strcmp(f.server_name, server_name)) {
        s = store_sql(st, "UPDATE folders SET server_name = ?2 || substr(server_name, ?3) "
                          "WHERE kind = ?4 AND server_name <> ?1 AND "
                          "substr(server_name, 1, length(?1)) = ?1 AND "
                          "substr(server_name, length(?1) + 1, 1) = ?5");
        if (!s) {
            r = STORE_ERROR;
        } else {
            char delim[2] = {f.delimiter ? f.delimiter : '/', 0};
            sqlite3_bind_text(s, 1, f.server_name, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, server_name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 3, (sqlite3_int64)strlen(f.server_name) + 1);
            sqlite3_bind_int(s, 4, f.kind);
            sqlite3_bind_text(s, 5, delim, -1, SQLITE_TRANSIENT);
            r = store_step_done(st, s);
        }
    }
    if (r == STORE_OK) {
        store_record(st, STORE_CHANGE_ENTRY, store_ino_folder(f.parent_id),
                     store_ino_folder(id), f.name);
        store_record(st, STORE_CHANGE_ENTRY, store_ino_folder(parent_id), store_ino_folder(id),
                     name);
    }
    store_folder_clear(&f);
    return r;
}

enum store_status
store_folder_set_local_only(struct store *st, int64_t id, bool on)
{
    sqlite3_stmt *s = store_sql(st, "UPDATE folders SET local_only = ?2 WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, on);
    return store_step_done(st, s);
}

enum store_status
store_folder_set_server_name(struct store *st, int64_t id, const char *server_name)
{
    sqlite3_stmt *s = store_sql(st, "UPDATE folders SET server_name = ?2 WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    if (server_name)
        sqlite3_bind_text(s, 2, server_name, -1, SQLITE_STATIC);
    return store_step_done(st, s);
}

enum store_status
store_folder_set_mtime(struct store *st, int64_t id, int64_t mtime)
{
    sqlite3_stmt *s = store_sql(st, "UPDATE folders SET mtime = ?2 WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, mtime);
    return store_step_done(st, s);
}

enum store_status
store_folder_set_last_sync(struct store *st, int64_t id, int64_t when)
{
    /* Only a folder synced before: 0 means "never completed" to the drivers. */
    sqlite3_stmt *s = store_sql(st, "UPDATE folders SET last_sync = ?2 "
                                    "WHERE id = ?1 AND last_sync != 0");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, when);
    return store_step_done(st, s);
}

enum store_status
store_folder_is_empty(struct store *st, int64_t id, bool *empty)
{
    sqlite3_stmt *s = store_sql(st, "SELECT (SELECT count(*) FROM folders WHERE parent_id = ?1)"
                                    " + (SELECT count(*) FROM items WHERE folder_id = ?1)");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *empty = sqlite3_column_int64(s, 0) == 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(st, rc);
}

enum store_status
store_folder_set_mode(struct store *st, int64_t id, enum store_mode mode)
{
    sqlite3_stmt *s = store_sql(st, "UPDATE folders SET mode = ?2 WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, mode);
    return store_step_done(st, s);
}

enum store_mode
store_folder_mode(const struct store_folder *f, enum store_mode mail_default)
{
    if (f->mode != STORE_MODE_DEFAULT)
        return f->mode;
    if (f->kind != STORE_KIND_MAIL)
        return STORE_MODE_FULL;
    if (mail_default != STORE_MODE_DEFAULT)
        return mail_default;
    if (f->parent_id == 0 && f->server_name && strcmp(f->server_name, "INBOX") == 0)
        return STORE_MODE_FULL;
    return STORE_MODE_HEADERS;
}
