/* schema: the database layout and its migrations. PRAGMA user_version holds
 * the number of migrations applied; each step runs in its own transaction, so
 * an interrupted upgrade resumes where it stopped. */
#include "store/store_p.h"

#include "common/util.h"

#include <stdlib.h>

/* Append-only: never edit a released step, add a new one. */
static const char *const migrations[] = {
    /* 1: folders and items. */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE folders ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  parent_id INTEGER NOT NULL,"     /* 0: the mount's root */
    "  kind INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  server_name TEXT,"
    "  delimiter INTEGER NOT NULL DEFAULT 0,"
    "  selectable INTEGER NOT NULL DEFAULT 1,"
    "  mode INTEGER NOT NULL DEFAULT 0,"
    "  uidvalidity INTEGER NOT NULL DEFAULT 0,"
    "  highestmodseq INTEGER NOT NULL DEFAULT 0,"
    "  uidnext INTEGER NOT NULL DEFAULT 0,"
    "  server_count INTEGER NOT NULL DEFAULT 0,"
    "  sync_token TEXT,"
    "  last_sync INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT,"
    "  UNIQUE (parent_id, name));"
    "CREATE UNIQUE INDEX folders_server ON folders(kind, server_name)"
    "  WHERE server_name IS NOT NULL;"
    "CREATE TABLE items ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  folder_id INTEGER NOT NULL,"
    "  uid INTEGER NOT NULL DEFAULT 0,"  /* 0: not known on the server */
    "  modseq INTEGER NOT NULL DEFAULT 0,"
    "  name TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  date INTEGER NOT NULL,"
    "  flags TEXT NOT NULL DEFAULT '',"
    "  message_id TEXT,"
    "  state INTEGER NOT NULL DEFAULT 0,"
    "  has_content INTEGER NOT NULL DEFAULT 1,"
    "  UNIQUE (folder_id, name));"
    "CREATE UNIQUE INDEX items_uid ON items(folder_id, uid) WHERE uid <> 0;"
    "CREATE INDEX items_folder ON items(folder_id);",

    /* 2: the journal of local changes, replayed to the server in id order. */
    "CREATE TABLE journal ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  op INTEGER NOT NULL,"
    "  folder_id INTEGER NOT NULL DEFAULT 0,"
    "  item_id INTEGER NOT NULL DEFAULT 0,"
    "  base_version TEXT,"   /* MODSEQ or ETag the change was based on */
    "  arg TEXT,"
    "  created INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT);",

    /* 3: finding unmapped messages again after a UIDVALIDITY change. */
    "CREATE INDEX items_unmapped ON items(folder_id, message_id, size) WHERE uid = 0;",

    /* 4: the journal as the write path uses it (the table of step 2 was never
     * written to), staged content, item errors, folders not yet on the server. */
    "DROP TABLE journal;"
    "CREATE TABLE journal ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  op INTEGER NOT NULL,"
    "  state INTEGER NOT NULL DEFAULT 0,"   /* queued, in flight, refused */
    "  item_id INTEGER NOT NULL DEFAULT 0,"
    "  folder_id INTEGER NOT NULL DEFAULT 0,"
    "  src TEXT,"                            /* server name of the source folder */
    "  uid INTEGER NOT NULL DEFAULT 0,"
    "  uidvalidity INTEGER NOT NULL DEFAULT 0,"
    "  base TEXT,"                           /* MODSEQ or ETag the change is based on */
    "  arg TEXT,"
    "  hint INTEGER NOT NULL DEFAULT 0,"     /* UIDNEXT before an APPEND, COPY or MOVE */
    "  message_id TEXT,"
    "  size INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT);"
    "CREATE INDEX journal_item ON journal(item_id) WHERE item_id <> 0;"
    "ALTER TABLE items ADD COLUMN staged INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE items ADD COLUMN error TEXT;"
    "ALTER TABLE folders ADD COLUMN local_only INTEGER NOT NULL DEFAULT 0;",

    /* 5: groupware items (DAV href and ETag), the full size of messages kept
     * in part, where a conflict copy came from, collection names and the
     * default collection, and which protocol a journal entry is for. */
    "ALTER TABLE items ADD COLUMN href TEXT;"
    "ALTER TABLE items ADD COLUMN etag TEXT;"
    "ALTER TABLE items ADD COLUMN full_size INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE items ADD COLUMN origin TEXT;"
    "CREATE UNIQUE INDEX items_href ON items(folder_id, href) WHERE href IS NOT NULL;"
    "ALTER TABLE folders ADD COLUMN display_name TEXT;"
    "ALTER TABLE folders ADD COLUMN ctag TEXT;"
    "ALTER TABLE folders ADD COLUMN is_default INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE journal ADD COLUMN kind INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE journal ADD COLUMN href TEXT;",

    /* 6: a generation counter of local content (an upload must send the
     * bytes it saw), and directory times set by users (rsync -a). */
    "ALTER TABLE items ADD COLUMN gen INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE folders ADD COLUMN mtime INTEGER NOT NULL DEFAULT 0;",

    /* 7: conflicts: which item a copy in Conflicts/ was made of and the kind
     * of folder it came from (a restore by mv replaces that item), and the
     * local-only notices in INBOX. */
    "ALTER TABLE items ADD COLUMN conflict_of INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE items ADD COLUMN origin_kind INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE items ADD COLUMN notice INTEGER NOT NULL DEFAULT 0;",

    /* 8: messages kept in part, found without a scan: a full folder that
     * still has some is synced although the server has no change. */
    "CREATE INDEX items_partial ON items(folder_id) WHERE state = 1;",
};

#define SCHEMA_VERSION ((int)ARRAY_SIZE(migrations))

static int
read_version(struct store *st, int *out)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(s, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

enum store_status
store_schema_upgrade(struct store *st, char **err)
{
    int version = 0;
    int rc = read_version(st, &version);
    if (rc != SQLITE_OK) {
        enum store_status s = store_sqlite_status(st, rc);
        *err = xasprintf("%s/store.db: cannot read the store: %s", st->dir,
                         store_errmsg(st));
        return s;
    }
    if (version > SCHEMA_VERSION) {
        *err = xasprintf("%s/store.db was written by a newer mailfs (format %d; this "
                         "mailfs reads up to %d): upgrade mailfs, or move the "
                         "directory away and run `mailfs reset`",
                         st->dir, version, SCHEMA_VERSION);
        return STORE_TOO_NEW;
    }
    if (version < SCHEMA_VERSION && st->readonly) {
        *err = xasprintf("%s/store.db is in an older format (%d): mount the account "
                         "once to upgrade it", st->dir, version);
        return STORE_ERROR;
    }
    for (int v = version; v < SCHEMA_VERSION; v++) {
        char *msg = NULL;
        char *sql = xasprintf("BEGIN IMMEDIATE; %s PRAGMA user_version = %d; COMMIT;",
                              migrations[v], v + 1);
        rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
        free(sql);
        if (rc != SQLITE_OK) {
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            enum store_status s = store_sqlite_status(st, rc);
            *err = xasprintf("%s/store.db: upgrading to format %d failed: %s", st->dir,
                             v + 1, msg ? msg : sqlite3_errstr(rc));
            sqlite3_free(msg);
            return s;
        }
    }
    return STORE_OK;
}
