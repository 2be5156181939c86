/* store: opening the database, statements, transactions, settings and change
 * records. Folders, items and content files have their own files. */
#include "store/store_p.h"

#include "common/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const stmt_sql[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_SET] = "INSERT INTO meta(key, value) VALUES (?1, ?2) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
#define FOLDER_COLS                                                                       \
    "id, parent_id, kind, name, server_name, delimiter, selectable, mode, uidvalidity, " \
    "highestmodseq, uidnext, server_count, sync_token, last_sync, error, local_only, mtime"
    [ST_FOLDER_GET] = "SELECT " FOLDER_COLS " FROM folders WHERE id = ?1",
    [ST_FOLDER_LOOKUP] = "SELECT " FOLDER_COLS
                         " FROM folders WHERE parent_id = ?1 AND name = ?2",
    [ST_FOLDER_BY_SERVER] = "SELECT " FOLDER_COLS
                            " FROM folders WHERE kind = ?1 AND server_name = ?2",
    [ST_FOLDER_ADD] = "INSERT INTO folders(parent_id, kind, name, server_name, delimiter, "
                      "selectable, mode, local_only) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_FOLDER_UPDATE_SYNC] = "UPDATE folders SET uidvalidity = ?2, highestmodseq = ?3, "
                              "uidnext = ?4, server_count = ?5, sync_token = ?6, "
                              "last_sync = ?7, error = ?8, selectable = ?9, "
                              "delimiter = ?10 WHERE id = ?1",
    [ST_FOLDER_DELETE] = "DELETE FROM folders WHERE id = ?1",
    [ST_FOLDER_EACH] = "SELECT " FOLDER_COLS " FROM folders ORDER BY id",
    [ST_FOLDER_EACH_KIND] = "SELECT " FOLDER_COLS " FROM folders WHERE kind = ?1 ORDER BY id",
    [ST_FOLDER_CHILDREN] = "SELECT id FROM folders WHERE parent_id = ?1",
    [ST_FOLDER_NAME_TAKEN] = "SELECT 1 FROM folders WHERE parent_id = ?1 AND name = ?2",
#define ITEM_COLS "id, folder_id, uid, modseq, size, date, state, has_content, name, full_size"
    [ST_ITEM_GET] = "SELECT " ITEM_COLS " FROM items WHERE id = ?1",
    [ST_ITEM_LOOKUP] = "SELECT " ITEM_COLS " FROM items WHERE folder_id = ?1 AND name = ?2",
    /* "uid <> 0" lets sqlite use the partial index items_uid. */
    [ST_ITEM_BY_UID] = "SELECT " ITEM_COLS " FROM items WHERE folder_id = ?1 AND uid = ?2 "
                       "AND uid <> 0",
    [ST_ITEM_ADD] = "INSERT INTO items(folder_id, uid, modseq, name, size, date, flags, "
                    "message_id, state, has_content, full_size) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10)",
    [ST_ITEM_DELETE] = "DELETE FROM items WHERE id = ?1",
    [ST_ITEM_NAME_TAKEN] = "SELECT 1 FROM items WHERE folder_id = ?1 AND name = ?2",
    [ST_ITEM_FLAGS] = "SELECT flags FROM items WHERE id = ?1",
    [ST_ITEM_SET_FLAGS] = "UPDATE items SET flags = ?2, modseq = ?3 WHERE id = ?1",
    [ST_ITEM_UNMAP] = "UPDATE items SET uid = 0 WHERE folder_id = ?1",
    [ST_ITEM_FIND_UNMAPPED] = "SELECT " ITEM_COLS " FROM items WHERE folder_id = ?1 AND "
                              "uid = 0 AND message_id IS ?2 AND size = ?3 AND "
                              "state IN (0, 1) ORDER BY id",
    [ST_ITEM_SET_UID] = "UPDATE items SET uid = ?2, modseq = ?3, flags = ?4 WHERE id = ?1",
    [ST_ITEM_EACH_UID] = "SELECT uid, modseq, flags, id FROM items WHERE folder_id = ?1 "
                         "AND uid <> 0 ORDER BY uid",
    [ST_ITEM_EACH_UNMAPPED] = "SELECT " ITEM_COLS " FROM items WHERE folder_id = ?1 "
                              "AND uid = 0 ORDER BY id",
    [ST_ITEM_COUNT] = "SELECT count(*) FROM items WHERE folder_id = ?1",
    [ST_ITEM_COUNT_UID] = "SELECT count(*) FROM items WHERE folder_id = ?1 AND uid <> 0",
    [ST_ITEM_IDS_IN_FOLDER] = "SELECT id, name FROM items WHERE folder_id = ?1",
    [ST_DIR_FOLDERS] = "SELECT id, name, mtime FROM folders WHERE parent_id = ?1 AND id > ?2 "
                       "ORDER BY id",
    [ST_DIR_ITEMS] = "SELECT id, name, size, date, state, full_size FROM items WHERE "
                     "folder_id = ?1 AND "
                     "id > ?2 ORDER BY id",
};

const char *
store_status_str(enum store_status s)
{
    switch (s) {
    case STORE_OK: return "ok";
    case STORE_NOTFOUND: return "not found";
    case STORE_EXISTS: return "already exists";
    case STORE_BUSY: return "store busy";
    case STORE_CORRUPT: return "store damaged";
    case STORE_TOO_NEW: return "store written by a newer mailfs";
    case STORE_IO: return "store I/O error";
    case STORE_INVALID: return "invalid request";
    case STORE_ERROR: return "store error";
    }
    return "unknown store status";
}

void
store_set_error(struct store *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    free(st->errmsg);
    st->errmsg = m;
}

enum store_status
store_sqlite_status(struct store *st, int rc)
{
    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW)
        return STORE_OK;
    store_set_error(st, "%s", st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_BUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return STORE_CORRUPT;
    case SQLITE_CONSTRAINT:
        return STORE_EXISTS;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
        return STORE_IO;
    default:
        return STORE_ERROR;
    }
}

sqlite3_stmt *
store_stmt(struct store *st, enum store_stmt which)
{
    sqlite3_stmt *s = st->stmts[which];
    if (!s) {
        int rc = sqlite3_prepare_v3(st->db, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s, NULL);
        if (rc != SQLITE_OK) {
            store_sqlite_status(st, rc);
            return NULL;
        }
        st->stmts[which] = s;
    } else {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    return s;
}

sqlite3_stmt *
store_sql(struct store *st, const char *sql)
{
    for (size_t i = 0; i < st->nsql; i++) {
        if (st->sql_cache[i].sql == sql) {
            sqlite3_stmt *s = st->sql_cache[i].stmt;
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            return s;
        }
    }
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK) {
        store_sqlite_status(st, rc);
        return NULL;
    }
    if (st->nsql == st->asql) {
        st->asql = st->asql ? st->asql * 2 : 64;
        st->sql_cache = xrealloc(st->sql_cache, st->asql * sizeof *st->sql_cache);
    }
    st->sql_cache[st->nsql].sql = sql;
    st->sql_cache[st->nsql++].stmt = s;
    return s;
}

enum store_status
store_step_done(struct store *st, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
}

void
store_set_recording(struct store *st, bool on)
{
    st->recording = on;
    if (!on) {
        st->nchanges = 0;
        st->committed = 0;
    }
}

bool
store_exists(const char *dir)
{
    char *p = xasprintf("%s/store.db", dir);
    struct stat sb;
    bool ok = stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
    free(p);
    return ok;
}

static int
exec_pragma(struct store *st, const char *sql)
{
    return sqlite3_exec(st->db, sql, NULL, NULL, NULL);
}

enum store_status
store_open(const char *dir, unsigned flags, struct store **out, char **err)
{
    *out = NULL;
    *err = NULL;
    bool create = flags & STORE_CREATE;
    bool readonly = flags & STORE_READONLY;
    struct stat sb;
    if (stat(dir, &sb) < 0) {
        if (errno != ENOENT || !create) {
            *err = xasprintf("%s: %s", dir, strerror(errno));
            return STORE_IO;
        }
        int r = util_mkdirs(dir, 0700);
        if (r < 0) {
            *err = xasprintf("%s: cannot create the store directory: %s", dir,
                             strerror(-r));
            return STORE_IO;
        }
    } else if (!S_ISDIR(sb.st_mode)) {
        *err = xasprintf("%s: not a directory; move it away so mailfs can create its "
                         "store there", dir);
        return STORE_IO;
    }
    if (!readonly) {
        /* The store holds mail: keep it private whatever the umask was. */
        chmod(dir, 0700);
        for (int i = 0; i < 3; i++) {
            char *sub = xasprintf("%s/%s", dir, i == 0 ? "content" : i == 1 ? "tmp" : "drafts");
            int r = mkdir(sub, 0700) < 0 && errno != EEXIST ? -errno : 0;
            free(sub);
            if (r < 0) {
                *err = xasprintf("%s: cannot create its subdirectories: %s", dir,
                                 strerror(-r));
                return STORE_IO;
            }
        }
    }

    struct store *st = xcalloc(1, sizeof *st);
    st->dir = xstrdup(dir);
    st->recording = true;
    st->readonly = readonly;
    char *path = xasprintf("%s/store.db", dir);
    if (!create && !store_exists(dir)) {
        *err = xasprintf("%s: no store yet; mount the account or run `mailfs sync` "
                         "to create it", path);
        free(path);
        store_close(st);
        return STORE_NOTFOUND;
    }
    int oflags = SQLITE_OPEN_NOMUTEX |
                 (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(path, &st->db, oflags, NULL);
    enum store_status s = STORE_OK;
    if (rc == SQLITE_OK) {
        sqlite3_extended_result_codes(st->db, 1);
        sqlite3_busy_timeout(st->db, 10000);
        /* journal_mode is the first statement that reads the file: a
         * damaged or foreign file is noticed here. */
        rc = exec_pragma(st, readonly ? "PRAGMA query_only = 1" : "PRAGMA journal_mode = WAL");
        if (rc == SQLITE_OK)
            rc = exec_pragma(st, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;"
                                 "PRAGMA cache_size = -2000; PRAGMA temp_store = MEMORY");
    }
    if (rc != SQLITE_OK) {
        s = store_sqlite_status(st, rc);
        if (s == STORE_CORRUPT)
            *err = xasprintf("%s is damaged (%s): run `mailfs reindex ACCOUNT` to repair "
                             "it, or `mailfs reset ACCOUNT` to sync it again from the "
                             "server",
                             path, store_errmsg(st));
        else
            *err = xasprintf("%s: %s", path, store_errmsg(st));
        free(path);
        store_close(st);
        return s;
    }
    free(path);
    s = store_schema_upgrade(st, err);
    if (s != STORE_OK) {
        if (s == STORE_CORRUPT) {
            free(*err);
            *err = xasprintf("%s/store.db is damaged: run `mailfs reindex ACCOUNT` to "
                             "repair it, or `mailfs reset ACCOUNT` to sync it again from "
                             "the server",
                             dir);
        }
        store_close(st);
        return s;
    }
    *out = st;
    return STORE_OK;
}

void
store_close(struct store *st)
{
    if (!st)
        return;
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(st->stmts[i]);
    for (size_t i = 0; i < st->nsql; i++)
        sqlite3_finalize(st->sql_cache[i].stmt);
    free(st->sql_cache);
    free(st->trash);
    if (st->db)
        sqlite3_close(st->db);
    free(st->changes);
    free(st->errmsg);
    free(st->dir);
    free(st);
}

const char *
store_dir(const struct store *st)
{
    return st->dir;
}

const char *
store_errmsg(const struct store *st)
{
    return st->errmsg ? st->errmsg : "no error";
}

static enum store_status
run_simple(struct store *st, enum store_stmt which)
{
    sqlite3_stmt *s = store_stmt(st, which);
    if (!s)
        return STORE_ERROR;
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return store_sqlite_status(st, rc);
}

enum store_status
store_set_durable(struct store *st, bool full)
{
    int rc = sqlite3_exec(st->db, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                          NULL, NULL, NULL);
    return store_sqlite_status(st, rc);
}

enum store_status
store_begin(struct store *st)
{
    if (sqlite3_get_autocommit(st->db) == 0) {
        /* A caller's failure left one open: never let that stop everything
         * that comes after. */
        store_set_error(st, "a transaction was left open; rolled back");
        store_rollback(st);
    }
    enum store_status s = run_simple(st, ST_BEGIN);
    if (s == STORE_OK)
        st->in_txn = true;
    return s;
}

void
store_trash_content(struct store *st, int64_t item_id)
{
    if (!st->in_txn) {
        store_content_unlink(st, item_id); /* committed already (autocommit) */
        return;
    }
    if (st->ntrash == st->atrash) {
        st->atrash = st->atrash ? st->atrash * 2 : 64;
        st->trash = xrealloc(st->trash, st->atrash * sizeof *st->trash);
    }
    st->trash[st->ntrash++] = item_id;
}

enum store_status
store_commit(struct store *st)
{
    enum store_status s = run_simple(st, ST_COMMIT);
    if (s == STORE_OK) {
        st->in_txn = false;
        st->committed = st->nchanges;
        /* A file that cannot be removed now is an orphan, not an error: the
         * removal is committed. */
        for (size_t i = 0; i < st->ntrash; i++)
            store_content_unlink(st, st->trash[i]);
        st->ntrash = 0;
    } else {
        store_rollback(st);
    }
    return s;
}

void
store_rollback(struct store *st)
{
    if (sqlite3_get_autocommit(st->db) == 0)
        run_simple(st, ST_ROLLBACK);
    st->in_txn = false;
    st->nchanges = st->committed;
    st->ntrash = 0;
}

enum store_status
store_meta_get(struct store *st, const char *key, char **out)
{
    *out = NULL;
    sqlite3_stmt *s = store_stmt(st, ST_META_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    enum store_status r;
    if (rc == SQLITE_ROW) {
        *out = xstrdup((const char *)sqlite3_column_text(s, 0));
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
store_meta_set(struct store *st, const char *key, const char *value)
{
    sqlite3_stmt *s = store_stmt(st, ST_META_SET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return store_sqlite_status(st, rc);
}

void
store_record(struct store *st, enum store_change_kind kind, uint64_t parent_ino,
             uint64_t ino, const char *name)
{
    if (!st->recording)
        return;
    if (st->nchanges == st->alloc) {
        st->alloc = st->alloc ? st->alloc * 2 : 64;
        st->changes = xrealloc(st->changes, st->alloc * sizeof *st->changes);
    }
    struct store_change *c = &st->changes[st->nchanges++];
    c->kind = kind;
    c->parent_ino = parent_ino;
    c->ino = ino;
    snprintf(c->name, sizeof c->name, "%s", name ? name : "");
    if (!st->in_txn)
        st->committed = st->nchanges;
}

void
store_take_changes(struct store *st, void (*fn)(void *ctx, const struct store_change *c),
                   void *ctx)
{
    size_t n = st->committed;
    for (size_t i = 0; i < n; i++)
        fn(ctx, &st->changes[i]);
    if (st->nchanges > n)
        memmove(st->changes, st->changes + n, (st->nchanges - n) * sizeof *st->changes);
    st->nchanges -= n;
    st->committed = 0;
    /* A long initial sync records many changes; give the memory back. */
    if (st->nchanges == 0 && st->alloc > 4096) {
        free(st->changes);
        st->changes = NULL;
        st->alloc = 0;
    }
}
