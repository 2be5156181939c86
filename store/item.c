/* item: item rows (files of the tree), their flags and server ids, and the
 * directory listing that joins folders and items. */
#include "store/store_p.h"

#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
read_item(sqlite3_stmt *s, struct store_item *it)
{
    it->id = sqlite3_column_int64(s, 0);
    it->folder_id = sqlite3_column_int64(s, 1);
    it->uid = (uint32_t)sqlite3_column_int64(s, 2);
    it->modseq = (uint64_t)sqlite3_column_int64(s, 3);
    it->size = sqlite3_column_int64(s, 4);
    it->date = sqlite3_column_int64(s, 5);
    it->state = (enum store_item_state)sqlite3_column_int(s, 6);
    it->has_content = sqlite3_column_int(s, 7) != 0;
    snprintf(it->name, sizeof it->name, "%s", (const char *)sqlite3_column_text(s, 8));
    it->full_size = sqlite3_column_int64(s, 9);
}

static enum store_status
one_item(struct store *st, sqlite3_stmt *s, struct store_item *out)
{
    int rc = sqlite3_step(s);
    enum store_status r;
    if (rc == SQLITE_ROW) {
        read_item(s, out);
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
store_item_get(struct store *st, int64_t id, struct store_item *out)
{
    sqlite3_stmt *s = store_stmt(st, ST_ITEM_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    return one_item(st, s, out);
}

enum store_status
store_item_lookup(struct store *st, int64_t folder_id, const char *name,
                  struct store_item *out)
{
    sqlite3_stmt *s = store_stmt(st, ST_ITEM_LOOKUP);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    return one_item(st, s, out);
}

enum store_status
store_item_by_uid(struct store *st, int64_t folder_id, uint32_t uid, struct store_item *out)
{
    sqlite3_stmt *s = store_stmt(st, ST_ITEM_BY_UID);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    sqlite3_bind_int64(s, 2, uid);
    return one_item(st, s, out);
}

enum store_status
store_item_add(struct store *st, const struct store_item_new *n, int64_t *id_out,
               char *name_out)
{
    char name[NAMES_MAX + 1];
    enum store_status r = store_unique_name(st, n->folder_id, n->wanted_name, name);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *s = store_stmt(st, ST_ITEM_ADD);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, n->folder_id);
    sqlite3_bind_int64(s, 2, n->uid);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)n->modseq);
    sqlite3_bind_text(s, 4, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)n->size);
    sqlite3_bind_int64(s, 6, n->date);
    sqlite3_bind_text(s, 7, n->flags ? n->flags : "", -1, SQLITE_STATIC);
    if (n->message_id)
        sqlite3_bind_text(s, 8, n->message_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 9, n->state);
    sqlite3_bind_int64(s, 10, n->full_size ? n->full_size : (sqlite3_int64)n->size);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store_sqlite_status(st, rc);
    int64_t id = sqlite3_last_insert_rowid(st->db);
    int err =
        store_content_write(st, id, n->state == STORE_ITEM_PARTIAL, n->content, n->size);
    if (err < 0) {
        store_set_error(st, "writing the content of item %lld: %s", (long long)id,
                        strerror(-err));
        return STORE_IO;
    }
    if (id_out)
        *id_out = id;
    if (name_out)
        memcpy(name_out, name, sizeof name);
    store_record(st, STORE_CHANGE_ENTRY, store_ino_folder(n->folder_id), store_ino_item(id),
                 name);
    return STORE_OK;
}

enum store_status
store_item_add_file(struct store *st, const struct store_item_new *n, const char *tmp_path,
                    int64_t *id_out)
{
    char name[NAMES_MAX + 1];
    enum store_status r = store_unique_name(st, n->folder_id, n->wanted_name, name);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *s = store_stmt(st, ST_ITEM_ADD);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, n->folder_id);
    sqlite3_bind_int64(s, 2, n->uid);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)n->modseq);
    sqlite3_bind_text(s, 4, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)n->size);
    sqlite3_bind_int64(s, 6, n->date);
    sqlite3_bind_text(s, 7, n->flags ? n->flags : "", -1, SQLITE_STATIC);
    if (n->message_id)
        sqlite3_bind_text(s, 8, n->message_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 9, n->state);
    sqlite3_bind_int64(s, 10, n->full_size ? n->full_size : (sqlite3_int64)n->size);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store_sqlite_status(st, rc);
    int64_t id = sqlite3_last_insert_rowid(st->db);
    int err = store_content_place(st, id, n->state == STORE_ITEM_PARTIAL, tmp_path);
    if (err < 0) {
        store_set_error(st, "placing the content of item %lld: %s", (long long)id,
                        strerror(-err));
        return STORE_IO;
    }
    if (id_out)
        *id_out = id;
    store_record(st, STORE_CHANGE_ENTRY, store_ino_folder(n->folder_id), store_ino_item(id),
                 name);
    return STORE_OK;
}

enum store_status
store_item_upgrade_file(struct store *st, int64_t id, const char *tmp_path, int64_t size,
                        uint32_t uid, const char *flags)
{
    int err = store_content_place(st, id, false, tmp_path);
    if (err < 0) {
        store_set_error(st, "placing the content of item %lld: %s", (long long)id,
                        strerror(-err));
        return STORE_IO;
    }
    sqlite3_stmt *s = store_sql(st, "UPDATE items SET uid = ?2, flags = coalesce(?3, flags), "
                                    "size = ?4, full_size = ?4, state = 0, error = NULL, "
                                    "has_content = 1 WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, uid);
    if (flags)
        sqlite3_bind_text(s, 3, flags, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, size);
    enum store_status r = store_step_done(st, s);
    if (r == STORE_OK)
        store_record(st, STORE_CHANGE_INODE, 0, store_ino_item(id), NULL);
    return r;
}

enum store_status
store_item_remove(struct store *st, int64_t id)
{
    struct store_item it;
    enum store_status r = store_item_get(st, id, &it);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *s = store_stmt(st, ST_ITEM_DELETE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store_sqlite_status(st, rc);
    /* The file goes when the removal commits: before that a crash or a
     * rollback keeps the row, which must still have its content. */
    store_trash_content(st, id);
    store_record(st, STORE_CHANGE_ENTRY, store_ino_folder(it.folder_id), store_ino_item(id),
                 it.name);
    return STORE_OK;
}

enum store_status
store_item_flags(struct store *st, int64_t id, char **out)
{
    *out = NULL;
    sqlite3_stmt *s = store_stmt(st, ST_ITEM_FLAGS);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    enum store_status r;
    if (rc == SQLITE_ROW) {
        *out = xstrdup((const char *)sqlite3_column_text(s, 0));
        r = STORE_OK;
    } else {
        r = rc == SQLITE_DONE ? STORE_NOTFOUND : store_sqlite_status(st, rc);
    }
    sqlite3_reset(s);
    return r;
}

enum store_status
store_item_set_flags(struct store *st, int64_t id, const char *flags, uint64_t modseq)
{
    sqlite3_stmt *s = store_stmt(st, ST_ITEM_SET_FLAGS);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, flags, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)modseq);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return store_sqlite_status(st, rc);
}

enum store_status
store_folder_unmap_uids(struct store *st, int64_t folder_id)
{
    sqlite3_stmt *s = store_stmt(st, ST_ITEM_UNMAP);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return store_sqlite_status(st, rc);
}

enum store_status
store_item_each_unmapped_match(struct store *st, int64_t folder_id, const char *message_id,
                               int64_t size, int (*fn)(void *ctx, const struct store_item *it),
                               void *ctx)
{
    sqlite3_stmt *s = store_stmt(st, ST_ITEM_FIND_UNMAPPED);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    if (message_id)
        sqlite3_bind_text(s, 2, message_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, size);
    /* Read them all first: fn reads content files and the statement must
     * not stay open across it. Twins are rare; the list is short. */
    struct store_item *all = NULL;
    size_t n = 0, alloc = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < 1000) {
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 4;
            all = xrealloc(all, alloc * sizeof *all);
        }
        read_item(s, &all[n++]);
    }
    sqlite3_reset(s);
    enum store_status r =
        rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(st, rc);
    for (size_t i = 0; r == STORE_OK && i < n; i++)
        if (fn(ctx, &all[i]))
            break;
    free(all);
    return r;
}

enum store_status
store_item_set_uid(struct store *st, int64_t id, uint32_t uid, uint64_t modseq,
                   const char *flags)
{
    sqlite3_stmt *s = store_stmt(st, ST_ITEM_SET_UID);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, uid);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)modseq);
    sqlite3_bind_text(s, 4, flags ? flags : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return store_sqlite_status(st, rc);
}

enum store_status
store_item_each_uid(struct store *st, int64_t folder_id,
                    int (*fn)(void *ctx, uint32_t uid, uint64_t modseq, const char *flags,
                              int64_t id),
                    void *ctx)
{
    /* fn must not use this connection: the statement stays active. */
    sqlite3_stmt *s = store_stmt(st, ST_ITEM_EACH_UID);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (fn(ctx, (uint32_t)sqlite3_column_int64(s, 0),
               (uint64_t)sqlite3_column_int64(s, 1), (const char *)sqlite3_column_text(s, 2),
               sqlite3_column_int64(s, 3))) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
}

enum store_status
store_item_each_unmapped(struct store *st, int64_t folder_id,
                         int (*fn)(void *ctx, const struct store_item *it), void *ctx)
{
    sqlite3_stmt *s = store_stmt(st, ST_ITEM_EACH_UNMAPPED);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    struct store_item *all = NULL;
    size_t n = 0, alloc = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            all = xrealloc(all, alloc * sizeof *all);
        }
        read_item(s, &all[n++]);
    }
    sqlite3_reset(s);
    enum store_status r = rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
    for (size_t i = 0; r == STORE_OK && i < n; i++)
        if (fn(ctx, &all[i]))
            break;
    free(all);
    return r;
}

enum store_status
store_item_count(struct store *st, int64_t folder_id, bool with_uid, int64_t *out)
{
    sqlite3_stmt *s = store_stmt(st, with_uid ? ST_ITEM_COUNT_UID : ST_ITEM_COUNT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(st, rc);
}

enum store_status
store_item_count_unmapped_synced(struct store *st, int64_t folder_id, int64_t *out)
{
    sqlite3_stmt *s = store_sql(st, "SELECT count(*) FROM items WHERE folder_id = ?1 AND "
                                    "uid = 0 AND state IN (0, 1)");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(st, rc);
}

enum store_status
store_dir_list(struct store *st, int64_t folder_id, uint64_t after,
               int (*fn)(void *ctx, const struct store_dirent *e), void *ctx)
{
    /* Subfolders first (even inode numbers), then items (odd): a cursor that
     * is an item's inode means every subfolder was already listed. */
    int rc = SQLITE_DONE;
    bool stop = false;
    int64_t after_item = 0;
    if (after == 0 || !store_ino_is_item(after)) {
        sqlite3_stmt *s = store_stmt(st, ST_DIR_FOLDERS);
        if (!s)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, folder_id);
        sqlite3_bind_int64(s, 2, after ? store_ino_id(after) : 0);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            struct store_dirent e = {
                .ino = store_ino_folder(sqlite3_column_int64(s, 0)),
                .is_dir = true,
                .name = (const char *)sqlite3_column_text(s, 1),
                .date = sqlite3_column_int64(s, 2),
            };
            if (fn(ctx, &e)) {
                stop = true;
                break;
            }
        }
        sqlite3_reset(s);
        if (!stop && rc != SQLITE_DONE)
            return store_sqlite_status(st, rc);
        if (stop)
            return STORE_OK;
    } else {
        after_item = store_ino_id(after);
    }
    sqlite3_stmt *s = store_stmt(st, ST_DIR_ITEMS);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    sqlite3_bind_int64(s, 2, after_item);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_dirent e = {
            .ino = store_ino_item(sqlite3_column_int64(s, 0)),
            .is_dir = false,
            .name = (const char *)sqlite3_column_text(s, 1),
            .size = sqlite3_column_int64(s, 2),
            .date = sqlite3_column_int64(s, 3),
            .partial = sqlite3_column_int(s, 4) == STORE_ITEM_PARTIAL,
            .full_size = sqlite3_column_int64(s, 5),
        };
        if (fn(ctx, &e)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
}

/* ---- changes made through the mount ---- */

static bool
name_free(struct store *st, int64_t folder_id, const char *name, enum store_status *err)
{
    char got[NAMES_MAX + 1];
    *err = store_unique_name(st, folder_id, name, got);
    return *err == STORE_OK && strcmp(got, name) == 0;
}

enum store_status
store_item_create(struct store *st, int64_t folder_id, const char *name, int64_t date,
                  int64_t *id_out)
{
    enum store_status r;
    if (!name_free(st, folder_id, name, &r))
        return r == STORE_OK ? STORE_EXISTS : r;
    sqlite3_stmt *s = store_sql(st, "INSERT INTO items(folder_id, uid, name, size, date, "
                                    "state, has_content) VALUES (?1, 0, ?2, 0, ?3, ?4, 1)");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, date);
    sqlite3_bind_int(s, 4, STORE_ITEM_LOCAL);
    r = store_step_done(st, s);
    if (r != STORE_OK)
        return r;
    int64_t id = sqlite3_last_insert_rowid(st->db);
    int err = store_content_write(st, id, false, "", 0);
    if (err < 0) {
        store_set_error(st, "creating the content of item %lld: %s", (long long)id,
                        strerror(-err));
        return STORE_IO;
    }
    *id_out = id;
    store_record(st, STORE_CHANGE_ENTRY, store_ino_folder(folder_id), store_ino_item(id),
                 name);
    return STORE_OK;
}

enum store_status
store_item_set_content(struct store *st, int64_t id, int64_t size, int64_t date,
                       const char *message_id, enum store_item_state state)
{
    sqlite3_stmt *s = store_sql(st, "UPDATE items SET size = ?2, date = ?3, message_id = ?4, "
                                    "state = ?5, staged = 1, error = NULL, has_content = 1, "
                                    "gen = gen + 1 WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, size);
    sqlite3_bind_int64(s, 3, date);
    if (message_id)
        sqlite3_bind_text(s, 4, message_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, state);
    return store_step_done(st, s);
}

enum store_status
store_item_gen(struct store *st, int64_t id, int64_t *gen, bool *staged)
{
    sqlite3_stmt *s = store_sql(st, "SELECT gen, staged FROM items WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    enum store_status r = STORE_OK;
    if (rc == SQLITE_ROW) {
        *gen = sqlite3_column_int64(s, 0);
        *staged = sqlite3_column_int(s, 1) != 0;
    } else {
        r = rc == SQLITE_DONE ? STORE_NOTFOUND : store_sqlite_status(st, rc);
    }
    sqlite3_reset(s);
    return r;
}

enum store_status
store_item_clear_staged(struct store *st, int64_t id)
{
    sqlite3_stmt *s = store_sql(st, "UPDATE items SET staged = 0 WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    return store_step_done(st, s);
}

enum store_status
store_item_each_staged(struct store *st, int (*fn)(void *ctx, int64_t id), void *ctx)
{
    sqlite3_stmt *s = store_sql(st, "SELECT id FROM items WHERE staged <> 0");
    if (!s)
        return STORE_ERROR;
    int64_t *ids = NULL;
    size_t n = 0, alloc = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            ids = xrealloc(ids, alloc * sizeof *ids);
        }
        ids[n++] = sqlite3_column_int64(s, 0);
    }
    sqlite3_reset(s);
    enum store_status r = rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
    for (size_t i = 0; r == STORE_OK && i < n; i++)
        if (fn(ctx, ids[i]))
            break;
    free(ids);
    return r;
}

enum store_status
store_item_set_state(struct store *st, int64_t id, enum store_item_state state,
                     const char *error)
{
    sqlite3_stmt *s = store_sql(st, "UPDATE items SET state = ?2, error = ?3 WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, state);
    if (error)
        sqlite3_bind_text(s, 3, error, -1, SQLITE_STATIC);
    return store_step_done(st, s);
}

static enum store_status
item_text(struct store *st, const char *sql, int64_t id, char **out)
{
    *out = NULL;
    sqlite3_stmt *s = store_sql(st, sql);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    enum store_status r = STORE_OK;
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        *out = t ? xstrdup((const char *)t) : NULL;
    } else {
        r = rc == SQLITE_DONE ? STORE_NOTFOUND : store_sqlite_status(st, rc);
    }
    sqlite3_reset(s);
    return r;
}

enum store_status
store_item_error(struct store *st, int64_t id, char **out)
{
    return item_text(st, "SELECT error FROM items WHERE id = ?1", id, out);
}

enum store_status
store_item_message_id(struct store *st, int64_t id, char **out)
{
    return item_text(st, "SELECT message_id FROM items WHERE id = ?1", id, out);
}

enum store_status
store_item_set_date(struct store *st, int64_t id, int64_t date)
{
    sqlite3_stmt *s = store_sql(st, "UPDATE items SET date = ?2 WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, date);
    return store_step_done(st, s);
}

enum store_status
store_item_move(struct store *st, int64_t id, int64_t folder_id, const char *name,
                uint32_t uid)
{
    struct store_item it;
    enum store_status r = store_item_get(st, id, &it);
    if (r != STORE_OK)
        return r;
    bool same = it.folder_id == folder_id && strcmp(it.name, name) == 0;
    if (!same && !name_free(st, folder_id, name, &r))
        return r == STORE_OK ? STORE_EXISTS : r;
    sqlite3_stmt *s = store_sql(st, "UPDATE items SET folder_id = ?2, name = ?3, uid = ?4 "
                                    "WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, folder_id);
    sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, uid);
    r = store_step_done(st, s);
    if (r != STORE_OK)
        return r;
    store_record(st, STORE_CHANGE_ENTRY, store_ino_folder(it.folder_id), store_ino_item(id),
                 it.name);
    store_record(st, STORE_CHANGE_ENTRY, store_ino_folder(folder_id), store_ino_item(id),
                 name);
    return STORE_OK;
}

enum store_status
store_item_refresh(struct store *st, int64_t id, const void *content, size_t size,
                   uint32_t uid, const char *flags)
{
    if (content) {
        int err = store_content_replace(st, id, content, size);
        if (err < 0) {
            store_set_error(st, "replacing the content of item %lld: %s", (long long)id,
                            strerror(-err));
            return STORE_IO;
        }
    }
    /* A new UID: the MODSEQ belonged to the old message. */
    sqlite3_stmt *s = store_sql(st, "UPDATE items SET modseq = CASE WHEN uid <> ?2 THEN 0 "
                                    "ELSE modseq END, uid = ?2, flags = coalesce(?3, flags), "
                                    "size = CASE WHEN ?5 THEN ?4 ELSE size END, "
                                    "full_size = CASE WHEN ?5 THEN ?4 ELSE full_size END, "
                                    "state = ?6, error = NULL WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, uid);
    if (flags)
        sqlite3_bind_text(s, 3, flags, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)size);
    sqlite3_bind_int(s, 5, content != NULL);
    sqlite3_bind_int(s, 6, STORE_ITEM_SYNCED);
    enum store_status r = store_step_done(st, s);
    if (r == STORE_OK && content)
        store_record(st, STORE_CHANGE_INODE, 0, store_ino_item(id), NULL);
    return r;
}

enum store_status
store_folder_has_partial(struct store *st, int64_t folder_id, bool *out)
{
    sqlite3_stmt *s = store_sql(st, "SELECT 1 FROM items WHERE folder_id = ?1 AND state = 1 "
                                    "LIMIT 1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW;
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
}

enum store_status
store_item_each_partial(struct store *st, int64_t folder_id,
                        int (*fn)(void *ctx, const struct store_item *it), void *ctx)
{
    sqlite3_stmt *s = store_sql(st, "SELECT id, folder_id, uid, modseq, size, date, state, "
                                    "has_content, name, full_size FROM items WHERE state = 1 "
                                    "AND (?1 = 0 OR folder_id = ?1) ORDER BY uid");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    struct store_item *all = NULL;
    size_t n = 0, alloc = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            all = xrealloc(all, alloc * sizeof *all);
        }
        read_item(s, &all[n++]);
    }
    sqlite3_reset(s);
    enum store_status r = rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
    for (size_t i = 0; r == STORE_OK && i < n; i++)
        if (fn(ctx, &all[i]))
            break;
    free(all);
    return r;
}

enum store_status
store_item_set_whole(struct store *st, int64_t id, int64_t size)
{
    sqlite3_stmt *s = store_sql(st, "UPDATE items SET size = ?2, full_size = ?2, state = 0, "
                                    "has_content = 1 WHERE id = ?1 AND state = 1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, size);
    return store_step_done(st, s);
}

/* ---- groupware items ---- */

static char *
text_col(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? xstrdup((const char *)t) : NULL;
}

enum store_status
store_item_dav(struct store *st, int64_t id, char **href, char **etag)
{
    *href = *etag = NULL;
    sqlite3_stmt *s = store_sql(st, "SELECT href, etag FROM items WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    enum store_status r = STORE_OK;
    if (rc == SQLITE_ROW) {
        *href = text_col(s, 0);
        *etag = text_col(s, 1);
    } else {
        r = rc == SQLITE_DONE ? STORE_NOTFOUND : store_sqlite_status(st, rc);
    }
    sqlite3_reset(s);
    return r;
}

enum store_status
store_item_set_dav(struct store *st, int64_t id, const char *href, const char *etag)
{
    sqlite3_stmt *s = store_sql(st, "UPDATE items SET href = ?2, etag = ?3 WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    if (href)
        sqlite3_bind_text(s, 2, href, -1, SQLITE_STATIC);
    if (etag)
        sqlite3_bind_text(s, 3, etag, -1, SQLITE_STATIC);
    return store_step_done(st, s);
}

enum store_status
store_item_by_href(struct store *st, int64_t folder_id, const char *href,
                   struct store_item *out)
{
    sqlite3_stmt *s = store_sql(st, "SELECT id, folder_id, uid, modseq, size, date, state, "
                                    "has_content, name, full_size FROM items WHERE "
                                    "folder_id = ?1 AND href = ?2");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    sqlite3_bind_text(s, 2, href, -1, SQLITE_STATIC);
    return one_item(st, s, out);
}

struct href_row {
    int64_t id;
    char *href, *etag;
    int state;
};

enum store_status
store_item_each_href(struct store *st, int64_t folder_id,
                     int (*fn)(void *ctx, int64_t id, const char *href, const char *etag,
                               enum store_item_state state),
                     void *ctx)
{
    sqlite3_stmt *s = store_sql(st, "SELECT id, href, etag, state FROM items WHERE "
                                    "folder_id = ?1 AND href IS NOT NULL ORDER BY id");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, folder_id);
    struct href_row *v = NULL;
    size_t n = 0, alloc = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            v = xrealloc(v, alloc * sizeof *v);
        }
        v[n++] = (struct href_row){sqlite3_column_int64(s, 0), text_col(s, 1), text_col(s, 2),
                                   sqlite3_column_int(s, 3)};
    }
    sqlite3_reset(s);
    enum store_status r = rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
    bool stop = r != STORE_OK;
    for (size_t i = 0; i < n; i++) {
        if (!stop && fn(ctx, v[i].id, v[i].href, v[i].etag, (enum store_item_state)v[i].state))
            stop = true;
        free(v[i].href);
        free(v[i].etag);
    }
    free(v);
    return r;
}

enum store_status
store_item_set_server_content(struct store *st, int64_t id, const void *data, size_t len,
                              int64_t date)
{
    int err = store_content_replace(st, id, data, len);
    if (err < 0) {
        store_set_error(st, "replacing the content of item %lld: %s", (long long)id,
                        strerror(-err));
        return STORE_IO;
    }
    sqlite3_stmt *s = store_sql(st, "UPDATE items SET size = ?2, full_size = ?2, "
                                    "date = CASE WHEN ?3 >= 0 THEN ?3 ELSE date END, "
                                    "has_content = 1 WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)len);
    sqlite3_bind_int64(s, 3, date);
    enum store_status r = store_step_done(st, s);
    if (r == STORE_OK)
        store_record(st, STORE_CHANGE_INODE, 0, store_ino_item(id), NULL);
    return r;
}

enum store_status
store_item_refetch(struct store *st, int64_t id, int64_t full_size)
{
    /* An empty part first: the read path never finds no file at all. */
    int err = store_content_write(st, id, true, "", 0);
    char path[4096];
    store_content_path(st, id, path, sizeof path);
    if (err == 0 && unlink(path) < 0 && errno != ENOENT)
        err = -errno;
    if (err < 0) {
        store_set_error(st, "dropping the content of item %lld: %s", (long long)id,
                        strerror(-err));
        return STORE_IO;
    }
    sqlite3_stmt *s = store_sql(st, "UPDATE items SET has_content = 0, state = 1, size = 0, "
                                    "full_size = ?2, staged = 0, error = NULL WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, full_size);
    enum store_status r = store_step_done(st, s);
    if (r == STORE_OK)
        store_record(st, STORE_CHANGE_INODE, 0, store_ino_item(id), NULL);
    return r;
}
