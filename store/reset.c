/* reset: dropping the local copy of an account so that the next sync brings
 * it back from the server, after copying every change that is not on the
 * server yet into Conflicts/ (nothing the user wrote is lost). */
#include "store/conflict.h"
#include "store/journal.h"
#include "store/maintain.h"
#include "store/store_p.h"

#include "common/dynbuf.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RS_PATH_MAX 4096

/* An item to keep: what it was and where it came from. */
struct saved {
    int64_t id;
    char *name;       /* owned */
    char *origin;     /* owned: "Archive/2025/x.eml" */
    char *folder;     /* owned: "Archive/2025" */
    char *flags;      /* owned */
    char *message_id; /* owned; may be NULL */
    char *why;        /* owned: what was not on the server */
    int64_t date;
    bool staged;
    enum store_kind kind; /* of the folder it was in */
};

static void
saved_free(struct saved *s)
{
    free(s->name);
    free(s->origin);
    free(s->folder);
    free(s->flags);
    free(s->message_id);
    free(s->why);
}

/* Report lines wait in a buffer (NUL-separated) until the reset has
 * committed: a failed one changed nothing and has nothing to report. */
static void say(struct dynbuf *lines, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
say(struct dynbuf *lines, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dynbuf_vprintf(lines, fmt, ap);
    va_end(ap);
    dynbuf_addc(lines, '\0');
}

static void
say_all(const struct dynbuf *lines, store_say_fn fn, void *ctx)
{
    for (size_t off = 0; fn && off < lines->len; off += strlen(lines->data + off) + 1)
        fn(ctx, lines->data + off);
}

static char *
col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? xstrdup((const char *)t) : NULL;
}

/* Why an item is not on the server, for the report. Owned. */
static char *
why_local(struct store *st, int64_t id, int state)
{
    struct journal_entry e;
    enum store_status r = journal_find_item(st, id, ~0u, ~0u, &e);
    char *why;
    if (r == STORE_OK && e.state == JOURNAL_REFUSED)
        why = xasprintf("refused by the server: %s", e.error ? e.error : "no reason given");
    else if (r == STORE_OK)
        why = xasprintf("%s not sent yet", journal_op_name(e.op));
    else if (state == STORE_ITEM_ERROR)
        why = xstrdup("in error");
    else if (state == STORE_ITEM_CONFLICT)
        why = xstrdup("a conflict copy");
    else
        why = xstrdup("made here, not on the server");
    if (r == STORE_OK)
        journal_entry_clear(&e);
    return why;
}

static enum store_status
collect_saved(struct store *st, int64_t conflicts, struct saved **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *s = store_sql(st, "SELECT id, folder_id, name, date, flags, message_id, "
                                    "state, staged FROM items WHERE folder_id <> ?1 AND "
                                    "(state IN (2, 3, 4, 5) OR EXISTS (SELECT 1 FROM journal j "
                                    "WHERE j.item_id = items.id)) ORDER BY id");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, conflicts);
    struct rowinfo {
        int64_t folder;
        int state;
    } *info = NULL;
    size_t alloc = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            *out = xrealloc(*out, alloc * sizeof **out);
            info = xrealloc(info, alloc * sizeof *info);
        }
        struct saved *v = &(*out)[*n];
        memset(v, 0, sizeof *v);
        v->id = sqlite3_column_int64(s, 0);
        info[*n].folder = sqlite3_column_int64(s, 1);
        v->name = col_dup(s, 2);
        if (!v->name)
            v->name = xstrdup("item");
        v->date = sqlite3_column_int64(s, 3);
        v->flags = col_dup(s, 4);
        v->message_id = col_dup(s, 5);
        info[*n].state = sqlite3_column_int(s, 6);
        v->staged = sqlite3_column_int(s, 7) != 0;
        (*n)++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        free(info);
        return store_sqlite_status(st, rc);
    }
    /* Paths and reasons need the connection: after the statement is done. */
    for (size_t i = 0; i < *n; i++) {
        struct saved *v = &(*out)[i];
        v->folder = conflict_folder_path(st, info[i].folder);
        struct store_folder f;
        if (store_folder_get(st, info[i].folder, &f) == STORE_OK) {
            v->kind = f.kind;
            store_folder_clear(&f);
        }
        v->origin = v->folder[0] ? xasprintf("%s/%s", v->folder, v->name) : xstrdup(v->name);
        v->why = why_local(st, v->id, info[i].state);
    }
    free(info);
    return STORE_OK;
}

/* Changes the journal holds that no item carries (deletions, folder
 * operations): they cannot be kept, so they are told. */
static enum store_status
report_unsent(struct store *st, struct dynbuf *lines, unsigned *count)
{
    sqlite3_stmt *s = store_sql(st, "SELECT op, src, uid, arg, href, folder_id FROM journal "
                                    "WHERE item_id = 0 OR item_id NOT IN (SELECT id FROM items) "
                                    "ORDER BY id");
    if (!s)
        return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int op = sqlite3_column_int(s, 0);
        const char *src = (const char *)sqlite3_column_text(s, 1);
        uint32_t uid = (uint32_t)sqlite3_column_int64(s, 2);
        const char *arg = (const char *)sqlite3_column_text(s, 3);
        const char *href = (const char *)sqlite3_column_text(s, 4);
        const char *where = src ? src : href ? href : "?";
        (*count)++;
        switch (op) {
        case JOURNAL_DELETE:
            if (uid)
                say(lines, "not sent: the deletion of message UID %u in %s (it comes back "
                             "from the server)",
                    uid, where);
            else
                say(lines, "not sent: the deletion of an item in %s (it comes back from "
                             "the server)",
                    where);
            break;
        case JOURNAL_MKDIR:
            say(lines, "not sent: the new folder %s (dropped; what was in it is in "
                         "Conflicts/)",
                arg ? arg : "?");
            break;
        case JOURNAL_RMDIR:
            say(lines, "not sent: the removal of folder %s (it comes back from the server)",
                where);
            break;
        case JOURNAL_RENAME:
            say(lines, "not sent: renaming folder %s to %s (it keeps its old name)", where,
                arg ? arg : "?");
            break;
        default:
            say(lines, "not sent: the %s of an item removed since (nothing to keep)",
                op >= JOURNAL_APPEND && op <= JOURNAL_RENAME
                    ? journal_op_name((enum journal_op)op)
                    : "change");
            break;
        }
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
}

/* Save one item into Conflicts/ as a new row. *new_id is set once its
 * content file exists (for cleanup on failure). */
static enum store_status
save_item(struct store *st, int64_t conflicts, const struct saved *v, int64_t *new_id,
          char *got)
{
    char whole[RS_PATH_MAX], part[RS_PATH_MAX + 8], draft[RS_PATH_MAX], side[RS_PATH_MAX + 8];
    store_content_path(st, v->id, whole, sizeof whole);
    snprintf(part, sizeof part, "%s.p", whole);
    snprintf(side, sizeof side, "%s.src", whole);
    store_content_staged_path(st, v->id, draft, sizeof draft);
    /* The newest bytes: a staged draft, the whole file, or the part kept. */
    struct stat sb;
    const char *from = NULL;
    if (v->staged && stat(draft, &sb) == 0)
        from = draft;
    else if (stat(whole, &sb) == 0)
        from = whole;
    else if (stat(part, &sb) == 0)
        from = part;
    struct conflict_copy c = {
        .name = v->name,
        .folder = v->folder,
        .content_path = from,
        .sidecar_path = side,
        .flags = v->flags,
        .message_id = v->message_id,
        .date = v->date,
        .kind = v->kind,
    };
    return conflict_keep(st, conflicts, &c, new_id, got);
}

static enum store_status
count_rows(struct store *st, const char *sql, int64_t arg, unsigned *out)
{
    sqlite3_stmt *s = store_sql(st, sql);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, arg);
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? (unsigned)sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(st, rc);
}

/* Run a statement with one integer parameter (or none). */
static enum store_status
run1(struct store *st, const char *sql, int64_t arg)
{
    sqlite3_stmt *s = store_sql(st, sql);
    if (!s)
        return STORE_ERROR;
    if (sqlite3_bind_parameter_count(s) > 0)
        sqlite3_bind_int64(s, 1, arg);
    return store_step_done(st, s);
}

static void
no_say(void *ctx, const char *line)
{
}

enum store_status
store_reset(struct store *st, bool mounted, store_say_fn fn, void *ctx,
            struct store_reset_result *res)
{
    memset(res, 0, sizeof *res);
    enum store_status r = store_begin(st);
    if (r != STORE_OK)
        return r;
    struct dynbuf lines;
    dynbuf_init(&lines, 1 << 26);
    /* The Conflicts folder the tree shows, else any of its kind. */
    int64_t conflicts = 0;
    sqlite3_stmt *s = store_sql(st, "SELECT id FROM folders WHERE kind = 6 ORDER BY "
                                    "parent_id <> 0, name <> 'Conflicts', id LIMIT 1");
    if (!s) {
        r = STORE_ERROR;
    } else {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            conflicts = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        r = rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(st, rc);
    }
    struct saved *keep = NULL;
    size_t nkeep = 0;
    int64_t *made = NULL;
    size_t nmade = 0;
    if (r == STORE_OK)
        r = collect_saved(st, conflicts, &keep, &nkeep);
    if (r == STORE_OK)
        r = report_unsent(st, &lines, &res->unsent);
    if (r == STORE_OK)
        r = count_rows(st, "SELECT count(*) FROM items WHERE folder_id <> ?1", conflicts,
                       &res->dropped_items);
    if (r == STORE_OK)
        r = count_rows(st, "SELECT count(*) FROM folders WHERE id <> ?1", conflicts,
                       &res->dropped_folders);
    /* Rows go now; their content files after the commit (the copies below
     * are made from them first). */
    if (r == STORE_OK)
        r = run1(st, "DELETE FROM journal", 0);
    if (r == STORE_OK)
        r = run1(st, "DELETE FROM items WHERE folder_id <> ?1", conflicts);
    if (r == STORE_OK)
        r = run1(st, "DELETE FROM folders WHERE id <> ?1", conflicts);
    if (r == STORE_OK)
        r = run1(st, "DELETE FROM meta WHERE key = 'last_opened'", 0);
    if (r == STORE_OK && conflicts) {
        r = run1(st, "UPDATE folders SET parent_id = 0, name = 'Conflicts', uidvalidity = 0, "
                     "highestmodseq = 0, uidnext = 0, server_count = 0, sync_token = NULL, "
                     "ctag = NULL, last_sync = 0, error = NULL WHERE id = ?1",
                 conflicts);
    } else if (r == STORE_OK) {
        struct store_folder f;
        memset(&f, 0, sizeof f);
        f.kind = STORE_KIND_CONFLICTS;
        snprintf(f.name, sizeof f.name, "Conflicts");
        f.selectable = true;
        r = store_folder_add(st, &f);
        conflicts = f.id;
    }
    if (nkeep)
        made = xcalloc(nkeep, sizeof *made);
    for (size_t i = 0; r == STORE_OK && i < nkeep; i++) {
        char got[NAMES_MAX + 1];
        r = save_item(st, conflicts, &keep[i], &made[nmade], got);
        if (made[nmade])
            nmade++;
        if (r == STORE_OK) {
            res->saved++;
            say(&lines, "Conflicts/%s <- %s (%s)", got, keep[i].origin, keep[i].why);
        }
    }
    /* The copies are on disk before the rows that own them commit, and
     * before the originals can go. */
    int synced = r == STORE_OK && nmade ? store_content_sync(st) : 0;
    if (synced < 0) {
        store_set_error(st, "syncing the copies kept in Conflicts/: %s", strerror(-synced));
        r = STORE_IO;
    }
    if (r == STORE_OK)
        r = store_commit(st);
    else
        store_rollback(st);
    if (r != STORE_OK) {
        /* Nothing changed: the copies made go again. */
        for (size_t i = 0; i < nmade; i++)
            store_content_unlink(st, made[i]);
        memset(res, 0, sizeof *res);
    } else {
        /* The dropped items' files: everything no row refers to now. A
         * mount's drafts/ and tmp/ are its own business. */
        store_sweep_files(st, !mounted, true, no_say, NULL);
        say_all(&lines, fn, ctx);
    }
    dynbuf_free(&lines);
    for (size_t i = 0; i < nkeep; i++)
        saved_free(&keep[i]);
    free(keep);
    free(made);
    return r;
}

enum store_status
store_move_aside(const char *dir, char **where, char **err)
{
    *where = NULL;
    *err = NULL;
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    char *aside = xasprintf("%s/damaged-%s", dir, stamp);
    if (mkdir(aside, 0700) < 0) {
        *err = xasprintf("%s: %s", aside, strerror(errno));
        free(aside);
        return STORE_IO;
    }
    static const char *const names[] = {"store.db", "store.db-wal", "store.db-shm",
                                        "store.db.before-reindex",
                                        "store.db.before-reindex-wal", "content", "drafts"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        char *from = xasprintf("%s/%s", dir, names[i]);
        char *to = xasprintf("%s/%s", aside, names[i]);
        int e = rename(from, to) < 0 && errno != ENOENT ? errno : 0;
        free(from);
        free(to);
        if (e) {
            *err = xasprintf("moving %s/%s aside: %s", dir, names[i], strerror(e));
            free(aside);
            return STORE_IO;
        }
    }
    *where = aside;
    return STORE_OK;
}
