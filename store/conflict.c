/* conflict: see conflict.h. */
#include "store/conflict.h"
#include "store/journal.h"
#include "store/store_p.h"

#include "common/dynbuf.h"
#include "common/util.h"
#include "formats/mail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CF_PATH_MAX 4096

enum store_status
conflict_folder(struct store *st, int64_t *id_out)
{
    *id_out = 0;
    sqlite3_stmt *s = store_sql(st, "SELECT id FROM folders WHERE kind = 6 ORDER BY "
                                    "parent_id <> 0, name <> 'Conflicts', id LIMIT 1");
    if (!s)
        return STORE_ERROR;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *id_out = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_sqlite_status(st, rc);
    if (*id_out)
        return STORE_OK;
    struct store_folder f;
    memset(&f, 0, sizeof f);
    f.kind = STORE_KIND_CONFLICTS;
    snprintf(f.name, sizeof f.name, "Conflicts");
    f.selectable = true;
    enum store_status r = store_folder_add(st, &f);
    *id_out = f.id;
    return r;
}

char *
conflict_folder_path(struct store *st, int64_t id)
{
    char *path = xstrdup("");
    for (int depth = 0; id && depth < 64; depth++) {
        struct store_folder f;
        if (store_folder_get(st, id, &f) != STORE_OK) {
            char *p = xasprintf("(folder %lld)%s%s", (long long)id, path[0] ? "/" : "", path);
            free(path);
            return p;
        }
        char *p = xasprintf("%s%s%s", f.name, path[0] ? "/" : "", path);
        free(path);
        path = p;
        id = f.parent_id;
        store_folder_clear(&f);
    }
    return path;
}

/* "NAME (from FOLDER)" with the item's extension kept last, cut to fit.
 * Owned. */
static char *
from_name(const char *name, const char *folder)
{
    size_t len = strlen(name);
    size_t ext = names_has_item_ext(name) ? 4 : 0;
    /* '/' in the folder's path and anything unsafe become safe here. */
    char *where = folder[0] ? names_sanitize(folder, strlen(folder), 100) : xstrdup("the top");
    size_t room = NAMES_MAX - strlen(" (from )") - strlen(where) - ext;
    char *base = names_sanitize(name, len - ext, room);
    char *r = xasprintf("%s (from %s)%s", base, where, name + len - ext);
    free(where);
    free(base);
    return r;
}

/* Hard-link (else copy) src to dst, making dst's directory when needed. */
static int
link_or_copy(const char *src, const char *dst)
{
    if (link(src, dst) == 0)
        return 0;
    if (errno == ENOENT && access(src, F_OK) == 0) {
        char *dir = xstrndup(dst, (size_t)(strrchr(dst, '/') - dst));
        int r = mkdir(dir, 0700) < 0 && errno != EEXIST ? -errno : 0;
        free(dir);
        if (r < 0)
            return r;
        if (link(src, dst) == 0)
            return 0;
    }
    if (errno != EXDEV && errno != EPERM && errno != EMLINK)
        return -errno;
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -errno;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        return -e;
    }
    char buf[65536];
    ssize_t n;
    int r = 0;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if ((r = util_write_all(out, buf, (size_t)n)) < 0)
            break;
    if (n < 0)
        r = -errno;
    if (close(out) < 0 && r == 0)
        r = -errno;
    close(in);
    return r;
}

enum store_status
conflict_keep(struct store *st, int64_t conflicts, const struct conflict_copy *c,
              int64_t *id_out, char name_out[NAMES_MAX + 1])
{
    *id_out = 0;
    struct stat sb;
    const char *from = c->content_path && stat(c->content_path, &sb) == 0 ? c->content_path
                                                                         : NULL;
    int64_t size = from ? (int64_t)sb.st_size : 0;
    enum store_status r = store_unique_name(st, conflicts, c->name, name_out);
    if (r == STORE_OK && strcmp(name_out, c->name) != 0) {
        char *alt = from_name(c->name, c->folder);
        r = store_unique_name(st, conflicts, alt, name_out);
        free(alt);
    }
    if (r != STORE_OK)
        return r;
    char *origin = c->folder[0] ? xasprintf("%s/%s", c->folder, c->name) : xstrdup(c->name);
    sqlite3_stmt *s = store_sql(st, "INSERT INTO items(folder_id, uid, modseq, name, size, "
                                    "date, flags, message_id, state, has_content, full_size, "
                                    "origin, conflict_of, origin_kind) VALUES (?1, 0, 0, ?2, "
                                    "?3, ?4, ?5, ?6, 4, 1, ?3, ?7, ?8, ?9)");
    if (!s) {
        free(origin);
        return STORE_ERROR;
    }
    sqlite3_bind_int64(s, 1, conflicts);
    sqlite3_bind_text(s, 2, name_out, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, size);
    sqlite3_bind_int64(s, 4, c->date);
    sqlite3_bind_text(s, 5, c->flags ? c->flags : "", -1, SQLITE_STATIC);
    if (c->message_id)
        sqlite3_bind_text(s, 6, c->message_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, origin, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, c->of);
    sqlite3_bind_int(s, 9, (int)c->kind);
    r = store_step_done(st, s);
    if (r != STORE_OK) {
        free(origin);
        return r;
    }
    int64_t id = sqlite3_last_insert_rowid(store_db(st));
    char dst[CF_PATH_MAX];
    store_content_path(st, id, dst, sizeof dst);
    int e = from ? link_or_copy(from, dst) : store_content_write(st, id, false, "", 0);
    if (e < 0) {
        store_set_error(st, "keeping %s: %s", origin, strerror(-e));
        free(origin);
        return STORE_IO;
    }
    *id_out = id;
    /* A note's server form travels with its text (content.c: ID.src). */
    if (c->sidecar_path && access(c->sidecar_path, F_OK) == 0) {
        char side[CF_PATH_MAX + 8];
        snprintf(side, sizeof side, "%s.src", dst);
        e = link_or_copy(c->sidecar_path, side);
        if (e < 0) {
            store_set_error(st, "keeping %s: %s", origin, strerror(-e));
            free(origin);
            return STORE_IO;
        }
    }
    store_record(st, STORE_CHANGE_ENTRY, store_ino_folder(conflicts), store_ino_item(id),
                 name_out);
    free(origin);
    return STORE_OK;
}

enum store_status
conflict_keep_item(struct store *st, int64_t item_id, int64_t *id_out,
                   char name_out[NAMES_MAX + 1])
{
    *id_out = 0;
    struct store_item it;
    struct store_folder f;
    enum store_status r = store_item_get(st, item_id, &it);
    if (r != STORE_OK)
        return r;
    r = store_folder_get(st, it.folder_id, &f);
    if (r != STORE_OK)
        return r;
    int64_t conflicts = 0;
    r = conflict_folder(st, &conflicts);
    char whole[CF_PATH_MAX], part[CF_PATH_MAX + 8], draft[CF_PATH_MAX], side[CF_PATH_MAX + 8];
    store_content_path(st, item_id, whole, sizeof whole);
    snprintf(part, sizeof part, "%s.p", whole);
    snprintf(side, sizeof side, "%s.src", whole);
    store_content_staged_path(st, item_id, draft, sizeof draft);
    int64_t gen = 0;
    bool staged = false;
    if (r == STORE_OK)
        r = store_item_gen(st, item_id, &gen, &staged);
    /* The newest bytes: a staged draft, the whole file, or the part kept. */
    const char *from = staged && access(draft, F_OK) == 0   ? draft
                       : access(whole, F_OK) == 0           ? whole
                       : access(part, F_OK) == 0            ? part
                                                            : NULL;
    char *flags = NULL, *msgid = NULL;
    if (r == STORE_OK)
        r = store_item_flags(st, item_id, &flags);
    if (r == STORE_OK)
        r = store_item_message_id(st, item_id, &msgid);
    char *folder = conflict_folder_path(st, it.folder_id);
    if (r == STORE_OK) {
        struct conflict_copy c = {
            .name = it.name,
            .folder = folder,
            .content_path = from,
            .sidecar_path = side,
            .flags = flags,
            .message_id = msgid,
            .date = it.date,
            .of = item_id,
            .kind = f.kind,
        };
        r = conflict_keep(st, conflicts, &c, id_out, name_out);
    }
    free(folder);
    free(flags);
    free(msgid);
    store_folder_clear(&f);
    return r;
}

/* The INBOX, or 0. */
static int64_t
inbox(struct store *st)
{
    struct store_folder f;
    if (store_folder_by_server_name(st, STORE_KIND_MAIL, "INBOX", &f) != STORE_OK)
        return 0;
    int64_t id = f.id;
    store_folder_clear(&f);
    return id;
}

/* A path quoted for a shell command line in the notice. */
static void
add_quoted(struct dynbuf *b, const char *path)
{
    dynbuf_addc(b, '\'');
    for (const char *p = path; *p; p++) {
        if (*p == '\'')
            dynbuf_adds(b, "'\\''");
        else
            dynbuf_addc(b, *p);
    }
    dynbuf_addc(b, '\'');
}

enum store_status
conflict_notice(struct store *st, const char *what, const char *happened, const char *copy)
{
    int64_t box = inbox(st);
    if (!box)
        return STORE_OK;
    int64_t now = util_now();
    char date[40];
    mail_format_date(now, date);
    /* "Synchronization conflict: 2026-11-23 10.00 Hello (Inbox)": the
     * item's name without its extension, then its folder. */
    const char *sep = strrchr(what, '/');
    const char *base = sep ? sep + 1 : what;
    size_t blen = strlen(base);
    if (names_has_item_ext(base))
        blen -= 4;
    char *subject = sep ? xasprintf("Synchronization conflict: %.*s (%.*s)", (int)blen, base,
                                    (int)(sep - what), what)
                        : xasprintf("Synchronization conflict: %.*s", (int)blen, base);
    char *encoded = mail_encode_words(subject);
    struct dynbuf b;
    dynbuf_init(&b, 1 << 20);
    dynbuf_printf(&b, "From: mailfs <mailfs@localhost.invalid>\r\nDate: %s\r\nSubject: %s\r\n"
                      "Message-ID: <conflict-%lld-%d@mailfs.invalid>\r\nMIME-Version: 1.0\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\n"
                      "Content-Transfer-Encoding: 8bit\r\n\r\n",
                  date, encoded, (long long)now, (int)getpid());
    dynbuf_printf(&b, "%s was changed both here and on the server between two syncs.\r\n\r\n",
                  what);
    dynbuf_printf(&b, "What happened: %s\r\n\r\n", happened);
    if (copy) {
        dynbuf_printf(&b, "Your version is kept in Conflicts/%s.\r\n\r\n", copy);
        dynbuf_adds(&b, "To put your version back (it replaces the server's), run in the "
                        "mount:\r\n    mv ");
        char *c = xasprintf("Conflicts/%s", copy);
        add_quoted(&b, c);
        free(c);
        dynbuf_addc(&b, ' ');
        char *dir = xstrdup(what);
        char *slash = strrchr(dir, '/');
        if (slash)
            slash[1] = '\0';
        else
            strcpy(dir, "./");
        add_quoted(&b, dir);
        free(dir);
        dynbuf_adds(&b, "\r\nTo discard it:\r\n    rm ");
        c = xasprintf("Conflicts/%s", copy);
        add_quoted(&b, c);
        free(c);
        dynbuf_adds(&b, "\r\n\r\n");
    }
    dynbuf_printf(&b, "When: %s\r\n\r\nThis message exists only on this computer: mailfs "
                      "never sends it to the server.\r\n",
                  date);
    char *name = names_item(now, subject, ".eml");
    struct store_item_new n = {
        .folder_id = box,
        .date = now,
        .wanted_name = name,
        .state = STORE_ITEM_LOCAL,
        .content = b.data,
        .size = b.len,
    };
    int64_t id = 0;
    enum store_status r = store_item_add(st, &n, &id, NULL);
    if (r == STORE_OK) {
        sqlite3_stmt *s = store_sql(st, "UPDATE items SET notice = 1 WHERE id = ?1");
        if (!s) {
            r = STORE_ERROR;
        } else {
            sqlite3_bind_int64(s, 1, id);
            r = store_step_done(st, s);
        }
    }
    free(name);
    free(subject);
    free(encoded);
    dynbuf_free(&b);
    return r;
}

enum store_status
conflict_info(struct store *st, int64_t item_id, int64_t *of, enum store_kind *kind,
              bool *notice)
{
    *of = 0;
    *kind = 0;
    *notice = false;
    sqlite3_stmt *s = store_sql(st, "SELECT i.conflict_of, i.origin_kind, i.notice, "
                                    "(SELECT count(*) FROM items o WHERE o.id = i.conflict_of) "
                                    "FROM items i WHERE i.id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, item_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *of = sqlite3_column_int64(s, 3) ? sqlite3_column_int64(s, 0) : 0;
        *kind = (enum store_kind)sqlite3_column_int(s, 1);
        *notice = sqlite3_column_int(s, 2) != 0;
    }
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return STORE_NOTFOUND;
    return rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(st, rc);
}

enum store_status
conflict_origin(struct store *st, int64_t item_id, char **out)
{
    *out = NULL;
    sqlite3_stmt *s = store_sql(st, "SELECT origin FROM items WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, item_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_text(s, 0))
        *out = xstrdup((const char *)sqlite3_column_text(s, 0));
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return STORE_NOTFOUND;
    return rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(st, rc);
}

struct ids {
    int64_t *v; /* owned */
    size_t n, alloc;
    bool dirs;  /* collect folders (else items) */
};

static int
collect_ids(void *ctx, const struct store_dirent *e)
{
    struct ids *ids = ctx;
    if (e->is_dir != ids->dirs)
        return e->is_dir ? 0 : 1; /* folders come first, then items */
    if (ids->n == ids->alloc) {
        ids->alloc = ids->alloc ? ids->alloc * 2 : 32;
        ids->v = xrealloc(ids->v, ids->alloc * sizeof *ids->v);
    }
    ids->v[ids->n++] = store_ino_id(e->ino);
    return 0;
}

/* Has the item changes the server has not seen? */
static bool
item_changed(struct store *st, int64_t id)
{
    struct store_item it;
    if (store_item_get(st, id, &it) != STORE_OK)
        return false;
    if (it.state != STORE_ITEM_SYNCED && it.state != STORE_ITEM_PARTIAL)
        return true;
    struct journal_entry e;
    if (journal_find_item(st, id, ~0u, ~0u, &e) != STORE_OK)
        return false;
    journal_entry_clear(&e);
    return true;
}

static enum store_status
drop_tree(struct store *st, int64_t folder_id, unsigned *kept)
{
    struct ids sub = {.dirs = true}, items = {.dirs = false};
    enum store_status r = store_dir_list(st, folder_id, 0, collect_ids, &sub);
    for (size_t i = 0; r == STORE_OK && i < sub.n; i++)
        r = drop_tree(st, sub.v[i], kept);
    if (r == STORE_OK)
        r = store_dir_list(st, folder_id, 0, collect_ids, &items);
    for (size_t i = 0; r == STORE_OK && i < items.n; i++) {
        if (!item_changed(st, items.v[i]))
            continue;
        int64_t copy = 0;
        char name[NAMES_MAX + 1];
        r = conflict_keep_item(st, items.v[i], &copy, name);
        if (r == STORE_OK)
            r = journal_drop_item(st, items.v[i], ~0u);
        if (r == STORE_OK)
            r = journal_drop_refused(st, items.v[i]);
        if (r == STORE_OK)
            (*kept)++;
    }
    free(sub.v);
    free(items.v);
    return r;
}

enum store_status
conflict_drop_folder(struct store *st, int64_t folder_id, unsigned *kept)
{
    *kept = 0;
    char *path = conflict_folder_path(st, folder_id);
    enum store_status r = drop_tree(st, folder_id, kept);
    if (r == STORE_OK && *kept && store_content_sync(st) < 0) {
        store_set_error(st, "syncing the copies kept in Conflicts/");
        r = STORE_IO;
    }
    if (r == STORE_OK)
        r = store_folder_remove(st, folder_id);
    if (r == STORE_OK && *kept) {
        char *happened = xasprintf("the folder was removed on the server while %u item%s in "
                                   "it had changes made here; the removal stands and your "
                                   "version%s of %s in Conflicts/ (see user.conflict.origin)",
                                   *kept, *kept == 1 ? "" : "s", *kept == 1 ? "" : "s",
                                   *kept == 1 ? "it is" : "them are");
        r = conflict_notice(st, path, happened, NULL);
        free(happened);
    }
    free(path);
    return r;
}
