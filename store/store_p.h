/* store_p: what the store's own files share: the connection struct and its
 * prepared-statement cache. Not for use outside store/. */
#ifndef MAILFS_STORE_P_H
#define MAILFS_STORE_P_H

#include <sqlite3.h>

#include "store/store.h"

/* Every statement the store runs, prepared once per connection. */
enum store_stmt {
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
    ST_META_GET, ST_META_SET,
    ST_FOLDER_GET, ST_FOLDER_LOOKUP, ST_FOLDER_BY_SERVER, ST_FOLDER_ADD,
    ST_FOLDER_UPDATE_SYNC, ST_FOLDER_DELETE, ST_FOLDER_EACH, ST_FOLDER_EACH_KIND,
    ST_FOLDER_CHILDREN, ST_FOLDER_NAME_TAKEN,
    ST_ITEM_GET, ST_ITEM_LOOKUP, ST_ITEM_BY_UID, ST_ITEM_ADD, ST_ITEM_DELETE,
    ST_ITEM_NAME_TAKEN, ST_ITEM_FLAGS, ST_ITEM_SET_FLAGS, ST_ITEM_UNMAP,
    ST_ITEM_FIND_UNMAPPED, ST_ITEM_SET_UID, ST_ITEM_EACH_UID, ST_ITEM_EACH_UNMAPPED,
    ST_ITEM_COUNT, ST_ITEM_COUNT_UID, ST_ITEM_IDS_IN_FOLDER,
    ST_DIR_FOLDERS, ST_DIR_ITEMS,
    ST__COUNT
};

struct store {
    sqlite3 *db;
    char *dir;                        /* owned */
    char *errmsg;                     /* owned; last error */
    sqlite3_stmt *stmts[ST__COUNT];   /* owned; prepared lazily */
    bool in_txn;
    bool readonly;
    /* Change records: [0, committed) are committed and wait for
     * store_take_changes; [committed, n) belong to the open transaction. */
    struct store_change *changes;     /* owned */
    size_t nchanges, committed, alloc;
    bool recording;                   /* false: changes are not recorded */
    /* Content files of items removed in the open transaction: unlinked once
     * it commits (a crash or rollback before that must find them). Item ids
     * are never reused (AUTOINCREMENT), so a file left by a crash after the
     * commit is only an orphan for reindex to sweep. */
    int64_t *trash;                   /* owned */
    size_t ntrash, atrash;
    /* Statements prepared by store_sql, keyed by their (static) SQL text:
     * one per call site, so the array stays small (about 60). */
    struct store_sql_entry {
        const char *sql;              /* borrowed: a string literal */
        sqlite3_stmt *stmt;           /* owned */
    } *sql_cache;                     /* owned */
    size_t nsql, asql;
};

/* The connection's sqlite handle (for last_insert_rowid and the like). */
static inline sqlite3 *
store_db(struct store *st)
{
    return st->db;
}

/* A statement for a string-literal SQL text, prepared once per connection
 * (the pointer is the key), reset and unbound; NULL on error. */
sqlite3_stmt *store_sql(struct store *st, const char *sql);
/* Step a statement expected to finish without rows; maps the result. */
enum store_status store_step_done(struct store *st, sqlite3_stmt *s);

/* The statement, reset and with bindings cleared; NULL on a prepare error
 * (the message is in st->errmsg). */
sqlite3_stmt *store_stmt(struct store *st, enum store_stmt which);
/* Map a sqlite result code to a status and remember sqlite's message. */
enum store_status store_sqlite_status(struct store *st, int rc);
/* Remember a message (printf-style). */
void store_set_error(struct store *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Record a change in the current transaction (or as committed outside one). */
void store_record(struct store *st, enum store_change_kind kind, uint64_t parent_ino,
                  uint64_t ino, const char *name);
/* The first free variant of `wanted` among the folder's entries (folders and
 * items share a directory), into out (NAMES_MAX + 1 bytes). */
enum store_status store_unique_name(struct store *st, int64_t folder_id, const char *wanted,
                                    char *out);
/* Bring the schema to the current version; see schema.c. */
enum store_status store_schema_upgrade(struct store *st, char **err);
/* Remove an item's content file; 0 or -errno (ENOENT counts as success). */
int store_content_unlink(const struct store *st, int64_t item_id);
/* Remove an item's content files when the open transaction commits (at
 * once outside a transaction). */
void store_trash_content(struct store *st, int64_t item_id);
/* Rename a finished file (in tmp/) to an item's content file (or partial
 * one); a whole one replaces a partial one. 0 or -errno. */
int store_content_place(const struct store *st, int64_t item_id, bool partial, const char *from);
/* Write an item's content file (the partial one when `partial`): 0 or -errno. */
int store_content_write(const struct store *st, int64_t item_id, bool partial,
                        const void *data, size_t len);

#endif
