/* reindex: checking a store against itself (database, folder tree, items and
 * their content files, journal, stray files) and repairing what can be
 * repaired; see maintain.h for what each repair does. It runs with the
 * store's lock held, so no mount or sync writes meanwhile. */
#include "store/journal.h"
#include "store/maintain.h"
#include "store/store_p.h"

#include "common/dynbuf.h"
#include "common/utf8.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Rows read and checked at a time: memory stays flat whatever the store's
 * size, and no statement stays open while rows are repaired. */
#define RX_BATCH 256
/* Lines of PRAGMA integrity_check shown; the rest are counted. */
#define RX_DB_LINES 8
#define RX_PATH_MAX 4096

struct fent {
    int64_t id, parent;
    int kind;
    char *name;         /* owned; raw bytes from the row (may be unsafe) */
    size_t len;         /* bytes of name as stored */
    char *server_name;  /* owned; may be NULL */
};

struct rx {
    struct store *st;
    store_say_fn say;
    void *ctx;
    bool repair;        /* false: the second pass, which only looks */
    unsigned found, repaired, lost;
    struct fent *f;     /* owned; every folder, sorted by id */
    size_t nf;
    /* Statements of this run, prepared once (the store's own cache is
     * sized for the store's statements). */
    struct {
        const char *sql; /* borrowed: a string literal */
        sqlite3_stmt *s; /* owned */
    } cache[64];
    size_t ncache;
};

/* ---- helpers ---- */

static sqlite3_stmt *
q(struct rx *rx, const char *sql)
{
    for (size_t i = 0; i < rx->ncache; i++) {
        if (rx->cache[i].sql == sql) {
            sqlite3_reset(rx->cache[i].s);
            sqlite3_clear_bindings(rx->cache[i].s);
            return rx->cache[i].s;
        }
    }
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(store_db(rx->st), sql, -1, &s, NULL);
    if (rc != SQLITE_OK) {
        store_sqlite_status(rx->st, rc);
        return NULL;
    }
    if (rx->ncache == ARRAY_SIZE(rx->cache)) {
        /* More statements than expected: the oldest goes (none stays
         * active between calls). */
        sqlite3_finalize(rx->cache[0].s);
        memmove(rx->cache, rx->cache + 1, (rx->ncache - 1) * sizeof rx->cache[0]);
        rx->ncache--;
    }
    rx->cache[rx->ncache].sql = sql;
    rx->cache[rx->ncache++].s = s;
    return s;
}

/* Run a statement to its end; STORE_OK or the mapped error. */
static enum store_status
done(struct rx *rx, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(rx->st, rc);
}

static void
free_folders(struct rx *rx)
{
    for (size_t i = 0; i < rx->nf; i++) {
        free(rx->f[i].name);
        free(rx->f[i].server_name);
    }
    free(rx->f);
    rx->f = NULL;
    rx->nf = 0;
}

static void
rx_clear(struct rx *rx)
{
    free_folders(rx);
    for (size_t i = 0; i < rx->ncache; i++)
        sqlite3_finalize(rx->cache[i].s);
    rx->ncache = 0;
}

/* A name as it may be shown on a terminal: bytes that are not printable
 * UTF-8 become \xNN. Owned by the caller. */
static char *
shown(const char *s, size_t len)
{
    char *out = xmalloc(len * 4 + 1);
    size_t o = 0, i = 0;
    while (i < len) {
        uint32_t cp;
        size_t l = utf8_next((const unsigned char *)s + i, len - i, &cp);
        if (l == 0 || cp < 0x20 || cp == 0x7f) {
            o += (size_t)sprintf(out + o, "\\x%02x", (unsigned char)s[i]);
            i++;
            continue;
        }
        memcpy(out + o, s + i, l);
        o += l;
        i += l;
    }
    out[o] = '\0';
    return out;
}

/* One problem: what was found, and with repair on, what was done about it
 * (NULL when nothing could be). */
static void report(struct rx *rx, const char *did, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
report(struct rx *rx, const char *did, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = NULL;
    if (vasprintf(&what, fmt, ap) < 0)
        what = NULL;
    va_end(ap);
    rx->found++;
    char *line;
    if (!rx->repair)
        line = xasprintf("still: %s", what ? what : "?");
    else if (did)
        line = xasprintf("%s: %s", what ? what : "?", did);
    else
        line = xasprintf("%s: not repaired", what ? what : "?");
    if (rx->repair && did)
        rx->repaired++;
    if (rx->say)
        rx->say(rx->ctx, line);
    free(line);
    free(what);
}

/* A name that follows the rules of names.h: 1 to NAMES_MAX bytes of valid
 * UTF-8, no NUL, '/' or control characters, not "." or "..". */
static bool
name_ok(const char *s, size_t len)
{
    if (!s || len == 0 || len > NAMES_MAX || strlen(s) != len || !utf8_valid(s, len))
        return false;
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '/')
            return false;
    return true;
}

/* The safe form of an item name, keeping its extension. Owned. */
static char *
safe_item_name(const char *s, size_t len)
{
    static const char *const exts[] = {".eml", ".ics", ".vcf", ".txt"};
    for (size_t i = 0; len > 4 && i < ARRAY_SIZE(exts); i++) {
        if (util_ascii_eq(s + len - 4, 4, exts[i])) {
            char *base = names_sanitize(s, len - 4, NAMES_MAX - 4);
            char *r = xasprintf("%s%.4s", base, s + len - 4);
            free(base);
            return r;
        }
    }
    return names_sanitize(s, len, NAMES_MAX);
}

static void
partial_path(const struct store *st, int64_t id, char *buf, size_t size)
{
    snprintf(buf, size, "%s/content/%02x/%lld.p", store_dir(st), (unsigned)(id & 0xff),
             (long long)id);
}

/* Size of a regular file, or -1 when there is none. */
static int64_t
file_size(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) < 0 || !S_ISREG(sb.st_mode))
        return -1;
    return (int64_t)sb.st_size;
}

/* ---- the folder table ---- */

static enum store_status
load_folders(struct rx *rx)
{
    free_folders(rx);
    sqlite3_stmt *s = q(rx, "SELECT id, parent_id, kind, name, server_name FROM folders "
                            "ORDER BY id");
    if (!s)
        return STORE_ERROR;
    size_t alloc = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (rx->nf == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            rx->f = xrealloc(rx->f, alloc * sizeof *rx->f);
        }
        struct fent *e = &rx->f[rx->nf++];
        e->id = sqlite3_column_int64(s, 0);
        e->parent = sqlite3_column_int64(s, 1);
        e->kind = sqlite3_column_int(s, 2);
        const char *n = (const char *)sqlite3_column_text(s, 3);
        e->len = (size_t)sqlite3_column_bytes(s, 3);
        e->name = xmalloc(e->len + 1);
        if (n)
            memcpy(e->name, n, e->len);
        e->name[e->len] = '\0';
        const char *sn = (const char *)sqlite3_column_text(s, 4);
        e->server_name = sn ? xstrdup(sn) : NULL;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(rx->st, rc);
}

static struct fent *
fget(const struct rx *rx, int64_t id)
{
    size_t lo = 0, hi = rx->nf;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (rx->f[mid].id == id)
            return &rx->f[mid];
        if (rx->f[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The folder's path from the root, for messages (shown form). Owned. A
 * missing folder is "(folder N)"; a cycle stops the walk. */
static char *
fpath(const struct rx *rx, int64_t id)
{
    if (id == 0)
        return xstrdup("");
    const struct fent *chain[64];
    size_t n = 0;
    const struct fent *e = fget(rx, id);
    if (!e)
        return xasprintf("(folder %lld)", (long long)id);
    while (e && n < ARRAY_SIZE(chain)) {
        chain[n++] = e;
        if (e->parent == 0)
            break;
        const struct fent *p = fget(rx, e->parent);
        for (size_t k = 0; p && k < n; k++)
            if (chain[k] == p)
                p = NULL; /* a cycle: stop here */
        e = p;
    }
    size_t total = 1;
    char **parts = xcalloc(n, sizeof *parts);
    for (size_t i = 0; i < n; i++) {
        parts[i] = shown(chain[i]->name, chain[i]->len);
        total += strlen(parts[i]) + 1;
    }
    char *out = xmalloc(total);
    out[0] = '\0';
    for (size_t i = n; i-- > 0;) {
        strcat(out, parts[i]);
        if (i)
            strcat(out, "/");
        free(parts[i]);
    }
    free(parts);
    return out;
}

/* "FOLDER/NAME" of an item, shown form. Owned. */
static char *
ipath(const struct rx *rx, int64_t folder_id, const char *name, size_t len)
{
    char *fp = folder_id ? fpath(rx, folder_id) : xstrdup("(no folder)");
    char *n = shown(name, len);
    char *r = fp[0] ? xasprintf("%s/%s", fp, n) : xstrdup(n);
    free(fp);
    free(n);
    return r;
}

static void
fent_rename(struct fent *e, int64_t parent, const char *name)
{
    free(e->name);
    e->name = xstrdup(name);
    e->len = strlen(name);
    e->parent = parent;
}

/* Give folder e a new parent and a name free there (from `wanted`). */
static enum store_status
move_folder(struct rx *rx, struct fent *e, int64_t parent, const char *wanted, char *got)
{
    enum store_status r = store_unique_name(rx->st, parent, wanted, got);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *s = q(rx, "UPDATE folders SET parent_id = ?2, name = ?3 WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, e->id);
    sqlite3_bind_int64(s, 2, parent);
    sqlite3_bind_text(s, 3, got, -1, SQLITE_STATIC);
    r = done(rx, s);
    if (r == STORE_OK)
        fent_rename(e, parent, got);
    return r;
}

/* The folder of kind Conflicts that the tree shows (at the top, named
 * "Conflicts"), else the first of that kind; 0 when there is none. */
static int64_t
conflicts_folder(const struct rx *rx)
{
    int64_t any = 0;
    for (size_t i = 0; i < rx->nf; i++) {
        const struct fent *e = &rx->f[i];
        if (e->kind != STORE_KIND_CONFLICTS)
            continue;
        if (e->parent == 0 && strcmp(e->name, "Conflicts") == 0)
            return e->id;
        if (!any)
            any = e->id;
    }
    return any;
}

/* ---- folders ---- */

static const struct {
    const char *name;
    enum store_kind kind;
} reserved_top[] = {
    {"Calendar", STORE_KIND_EVENTS}, {"Tasks", STORE_KIND_TASKS},
    {"Notes", STORE_KIND_NOTES},     {"Contacts", STORE_KIND_CONTACTS},
    {"Conflicts", STORE_KIND_CONFLICTS},
};

/* Whether a top-level folder holds a name that belongs to another kind (or
 * "Inbox" without being INBOX). */
static bool
holds_reserved(const struct fent *e)
{
    if (e->parent != 0)
        return false;
    for (size_t i = 0; i < ARRAY_SIZE(reserved_top); i++)
        if (strcasecmp(e->name, reserved_top[i].name) == 0 && e->kind != (int)reserved_top[i].kind)
            return true;
    return e->kind == STORE_KIND_MAIL && strcasecmp(e->name, "Inbox") == 0 &&
           (!e->server_name || strcmp(e->server_name, "INBOX") != 0);
}

static enum store_status
check_kinds(struct rx *rx)
{
    for (size_t i = 0; i < rx->nf; i++) {
        struct fent *e = &rx->f[i];
        if (e->kind >= STORE_KIND_MAIL && e->kind <= STORE_KIND_CONFLICTS)
            continue;
        const struct fent *p = e->parent ? fget(rx, e->parent) : NULL;
        int kind = p && p->kind >= STORE_KIND_MAIL && p->kind < STORE_KIND_CONFLICTS
                       ? p->kind
                       : STORE_KIND_MAIL;
        char *path = fpath(rx, e->id);
        char did[64];
        snprintf(did, sizeof did, "now of kind %d (%s)", kind,
                 p ? "its parent's" : "mail");
        report(rx, did, "folder %s: unknown kind %d", path, e->kind);
        free(path);
        if (!rx->repair)
            continue;
        sqlite3_stmt *s = q(rx, "UPDATE folders SET kind = ?2 WHERE id = ?1");
        if (!s)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, e->id);
        sqlite3_bind_int(s, 2, kind);
        enum store_status r = done(rx, s);
        if (r != STORE_OK)
            return r;
        e->kind = kind;
    }
    return STORE_OK;
}

static enum store_status
check_parents(struct rx *rx)
{
    for (size_t i = 0; i < rx->nf; i++) {
        struct fent *e = &rx->f[i];
        if (e->parent == 0 || fget(rx, e->parent))
            continue;
        char *n = shown(e->name, e->len);
        int64_t parent = e->parent;
        char got[NAMES_MAX + 1] = "";
        enum store_status r = rx->repair ? move_folder(rx, e, 0, e->name, got) : STORE_OK;
        if (r != STORE_OK) {
            free(n);
            return r;
        }
        char *did = xasprintf("re-attached at the top as '%s'", got);
        report(rx, did, "folder '%s' (id %lld): its parent folder %lld does not exist", n,
               (long long)e->id, (long long)parent);
        free(did);
        free(n);
    }
    return STORE_OK;
}

static enum store_status
check_cycles(struct rx *rx)
{
    /* ok[i]: folder i reaches the root (or was dealt with). */
    bool *ok = xcalloc(rx->nf ? rx->nf : 1, sizeof *ok);
    enum store_status r = STORE_OK;
    for (size_t i = 0; r == STORE_OK && i < rx->nf; i++) {
        size_t cur = i, steps = 0;
        bool cycle = false;
        for (;;) {
            if (ok[cur])
                break;
            const struct fent *p = rx->f[cur].parent ? fget(rx, rx->f[cur].parent) : NULL;
            if (!p)
                break;
            cur = (size_t)(p - rx->f);
            if (++steps > rx->nf) {
                cycle = true;
                break;
            }
        }
        if (cycle) {
            /* cur is on the cycle: go round it once. */
            size_t k = cur, lowest = cur;
            struct dynbuf names;
            dynbuf_init(&names, 1 << 16);
            do {
                char *n = shown(rx->f[k].name, rx->f[k].len);
                dynbuf_printf(&names, "%s'%s'", names.len ? ", " : "", n);
                free(n);
                if (rx->f[k].id < rx->f[lowest].id)
                    lowest = k;
                ok[k] = true;
                k = (size_t)(fget(rx, rx->f[k].parent) - rx->f);
            } while (k != cur);
            char got[NAMES_MAX + 1] = "";
            struct fent *low = &rx->f[lowest];
            char *lname = shown(low->name, low->len);
            if (rx->repair)
                r = move_folder(rx, low, 0, low->name, got);
            char *did = xasprintf("broken: '%s' moved to the top as '%s'", lname, got);
            report(rx, did, "folders %s are each other's parents (a cycle)",
                   names.data ? names.data : "");
            free(did);
            free(lname);
            dynbuf_free(&names);
        }
        /* Everything from i up is settled now. */
        for (size_t k = i; !ok[k];) {
            ok[k] = true;
            const struct fent *p = rx->f[k].parent ? fget(rx, rx->f[k].parent) : NULL;
            if (!p)
                break;
            k = (size_t)(p - rx->f);
        }
    }
    free(ok);
    return r;
}

static enum store_status
check_reserved(struct rx *rx)
{
    for (size_t i = 0; i < rx->nf; i++) {
        struct fent *e = &rx->f[i];
        if (!holds_reserved(e))
            continue;
        char *n = shown(e->name, e->len);
        char *wanted = e->kind == STORE_KIND_MAIL ? xasprintf("%s (mail)", e->name)
                                                  : names_variant(e->name, 2);
        char got[NAMES_MAX + 1] = "";
        enum store_status r = rx->repair ? move_folder(rx, e, 0, wanted, got) : STORE_OK;
        free(wanted);
        if (r != STORE_OK) {
            free(n);
            return r;
        }
        char *did = xasprintf("renamed '%s'", got);
        report(rx, did, "top-level folder '%s' (kind %d) holds a name reserved for another "
                        "tree",
               n, e->kind);
        free(did);
        free(n);
    }
    /* The Conflicts folder is the one at the top called "Conflicts" (the
     * mount and the sync look it up so). */
    int64_t cid = conflicts_folder(rx);
    struct fent *c = cid ? fget(rx, cid) : NULL;
    if (c && (c->parent != 0 || strcmp(c->name, "Conflicts") != 0)) {
        char *path = fpath(rx, c->id);
        char got[NAMES_MAX + 1] = "";
        enum store_status r = rx->repair ? move_folder(rx, c, 0, "Conflicts", got) : STORE_OK;
        if (r != STORE_OK) {
            free(path);
            return r;
        }
        char *did = xasprintf("moved to the top as '%s'", got);
        report(rx, did, "the Conflicts folder is at '%s'", path);
        free(did);
        free(path);
    }
    return STORE_OK;
}

static enum store_status
check_folder_names(struct rx *rx)
{
    for (size_t i = 0; i < rx->nf; i++) {
        struct fent *e = &rx->f[i];
        if (name_ok(e->name, e->len))
            continue;
        char *where = fpath(rx, e->parent);
        char *n = shown(e->name, e->len);
        char *safe = names_folder(e->name, e->len);
        char got[NAMES_MAX + 1] = "";
        enum store_status r = rx->repair ? move_folder(rx, e, e->parent, safe, got) : STORE_OK;
        free(safe);
        if (r == STORE_OK) {
            char *did = xasprintf("renamed '%s'", got);
            report(rx, did, "folder '%s' in '%s': not a safe name (invalid UTF-8, '/', "
                            "control characters or too long)",
                   n, where[0] ? where : "/");
            free(did);
        }
        free(n);
        free(where);
        if (r != STORE_OK)
            return r;
    }
    return STORE_OK;
}

static enum store_status
check_folders(struct rx *rx)
{
    enum store_status r = load_folders(rx);
    if (r == STORE_OK)
        r = check_kinds(rx);
    if (r == STORE_OK)
        r = check_parents(rx);
    if (r == STORE_OK)
        r = check_cycles(rx);
    if (r == STORE_OK)
        r = check_reserved(rx);
    if (r == STORE_OK)
        r = check_folder_names(rx);
    return r;
}

/* ---- items ---- */

struct irow {
    int64_t id, folder;
    uint32_t uid;
    bool href;
    char *name;        /* owned; raw */
    size_t len;
    int64_t size, full_size;
    int state;
    bool has_content, staged;
};

static bool
has_journal(struct rx *rx, int64_t item_id, enum store_status *err)
{
    sqlite3_stmt *s = q(rx, "SELECT 1 FROM journal WHERE item_id = ?1 LIMIT 1");
    if (!s) {
        *err = STORE_ERROR;
        return false;
    }
    sqlite3_bind_int64(s, 1, item_id);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        *err = store_sqlite_status(rx->st, rc);
    return rc == SQLITE_ROW;
}

/* Remove the item's uploads (their content is gone): how many. */
static enum store_status
drop_uploads(struct rx *rx, int64_t item_id, int *n)
{
    sqlite3_stmt *s = q(rx, "DELETE FROM journal WHERE item_id = ?1 AND op IN (1, 2)");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, item_id);
    enum store_status r = done(rx, s);
    *n = r == STORE_OK ? sqlite3_changes(store_db(rx->st)) : 0;
    return r;
}

static enum store_status
ensure_conflicts(struct rx *rx, int64_t *id)
{
    *id = conflicts_folder(rx);
    if (*id)
        return STORE_OK;
    struct store_folder f;
    memset(&f, 0, sizeof f);
    f.kind = STORE_KIND_CONFLICTS;
    snprintf(f.name, sizeof f.name, "Conflicts");
    f.selectable = true;
    enum store_status r = store_folder_add(rx->st, &f);
    if (r != STORE_OK)
        return r;
    *id = f.id;
    return load_folders(rx);
}

static enum store_status
rename_item(struct rx *rx, struct irow *it, const char *wanted, char *got)
{
    enum store_status r = store_unique_name(rx->st, it->folder, wanted, got);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *s = q(rx, "UPDATE items SET name = ?2 WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, it->id);
    sqlite3_bind_text(s, 2, got, -1, SQLITE_STATIC);
    r = done(rx, s);
    if (r == STORE_OK) {
        free(it->name);
        it->name = xstrdup(got);
        it->len = strlen(got);
    }
    return r;
}

/* An item whose folder is gone. Returns whether the item still exists. */
static enum store_status
item_orphan(struct rx *rx, struct irow *it, bool *kept)
{
    enum store_status r = STORE_OK;
    bool local = (it->state != STORE_ITEM_SYNCED && it->state != STORE_ITEM_PARTIAL) ||
                 has_journal(rx, it->id, &r);
    if (r != STORE_OK)
        return r;
    char *path = ipath(rx, it->folder, it->name, it->len);
    *kept = local;
    if (!local) {
        /* What the server has comes back in its folder at the next sync. */
        report(rx, "dropped (a copy of what the server has)", "%s: its folder does not exist",
               path);
        free(path);
        if (!rx->repair)
            return STORE_OK;
        sqlite3_stmt *s = q(rx, "DELETE FROM items WHERE id = ?1");
        if (!s)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, it->id);
        r = done(rx, s);
        if (r == STORE_OK)
            store_content_unlink(rx->st, it->id);
        *kept = false;
        return r;
    }
    int64_t conf = 0;
    char got[NAMES_MAX + 1] = "";
    int dropped = 0;
    if (rx->repair) {
        r = ensure_conflicts(rx, &conf);
        if (r == STORE_OK)
            r = store_unique_name(rx->st, conf, name_ok(it->name, it->len) ? it->name : "item",
                                  got);
        sqlite3_stmt *s = r == STORE_OK
                              ? q(rx, "UPDATE items SET folder_id = ?2, name = ?3, uid = 0, "
                                      "href = NULL, etag = NULL, state = 4, origin = ?4 "
                                      "WHERE id = ?1")
                              : NULL;
        if (r == STORE_OK && !s)
            r = STORE_ERROR;
        if (r == STORE_OK) {
            sqlite3_bind_int64(s, 1, it->id);
            sqlite3_bind_int64(s, 2, conf);
            sqlite3_bind_text(s, 3, got, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 4, path, -1, SQLITE_STATIC);
            r = done(rx, s);
        }
        /* Its entries acted in the folder that is gone; a deletion of a
         * known UID still can be sent. */
        s = r == STORE_OK ? q(rx, "DELETE FROM journal WHERE item_id = ?1 AND NOT (op = 3 AND "
                                  "uid <> 0 AND (src IS NOT NULL OR href IS NOT NULL))")
                          : NULL;
        if (r == STORE_OK && !s)
            r = STORE_ERROR;
        if (r == STORE_OK) {
            sqlite3_bind_int64(s, 1, it->id);
            r = done(rx, s);
            dropped = sqlite3_changes(store_db(rx->st));
        }
        if (r != STORE_OK) {
            free(path);
            return r;
        }
    }
    char *did = xasprintf("it holds local changes: moved to Conflicts/%s%s", got,
                          dropped ? " (its queued changes cannot be sent without the folder: "
                                    "dropped)"
                                  : "");
    report(rx, did, "%s: its folder does not exist", path);
    free(did);
    free(path);
    if (rx->repair) {
        it->folder = conf;
        it->uid = 0;
        it->href = false;
        it->state = STORE_ITEM_CONFLICT;
        free(it->name);
        it->name = xstrdup(got);
        it->len = strlen(got);
    }
    return STORE_OK;
}

/* The state an item should have when its state is not one we know. */
static enum store_status
guess_state(struct rx *rx, const struct irow *it, int *state)
{
    sqlite3_stmt *s = q(rx, "SELECT max(state = 2), max(state IN (0, 1)) FROM journal "
                            "WHERE item_id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, it->id);
    int rc = sqlite3_step(s);
    bool refused = rc == SQLITE_ROW && sqlite3_column_int(s, 0);
    bool queued = rc == SQLITE_ROW && sqlite3_column_int(s, 1);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return store_sqlite_status(rx->st, rc);
    *state = refused                ? STORE_ITEM_ERROR
             : queued               ? STORE_ITEM_PENDING
             : it->uid || it->href  ? STORE_ITEM_SYNCED
                                    : STORE_ITEM_LOCAL;
    return STORE_OK;
}

static const char *
state_name(int s)
{
    switch (s) {
    case STORE_ITEM_SYNCED: return "synced";
    case STORE_ITEM_PARTIAL: return "partial";
    case STORE_ITEM_LOCAL: return "local";
    case STORE_ITEM_PENDING: return "pending";
    case STORE_ITEM_CONFLICT: return "conflict";
    case STORE_ITEM_ERROR: return "error";
    }
    return "?";
}

/* Is the name taken in the item's directory by a subfolder or by an item
 * that came first? */
static enum store_status
name_clash(struct rx *rx, const struct irow *it, bool *clash)
{
    sqlite3_stmt *s = q(rx, "SELECT (SELECT count(*) FROM folders WHERE parent_id = ?1 AND "
                            "name = ?2) + (SELECT count(*) FROM items WHERE folder_id = ?1 AND "
                            "name = ?2 AND id < ?3)");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, it->folder);
    sqlite3_bind_text(s, 2, it->name, (int)it->len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, it->id);
    int rc = sqlite3_step(s);
    *clash = rc == SQLITE_ROW && sqlite3_column_int64(s, 0) > 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(rx->st, rc);
}

/* The content file is missing or has the wrong size: a synced item is
 * fetched again, a local one is lost. */
static enum store_status
content_bad(struct rx *rx, struct irow *it, const char *path, const char *why)
{
    bool on_server = it->uid != 0 || it->href;
    enum store_status r = STORE_OK;
    int dropped = 0;
    char w[RX_PATH_MAX], p[RX_PATH_MAX];
    store_content_path(rx->st, it->id, w, sizeof w);
    partial_path(rx->st, it->id, p, sizeof p);
    if (rx->repair) {
        r = drop_uploads(rx, it->id, &dropped);
        if (r != STORE_OK)
            return r;
        unlink(w);
        unlink(p);
    }
    if (on_server && it->uid) {
        /* Mail: a message of which nothing is kept yet (an empty partial
         * file): a full-mode folder fetches it whole at its next sync, and
         * reading it online fetches it in any mode. */
        int64_t whole = it->state == STORE_ITEM_PARTIAL
                            ? (it->full_size > it->size ? it->full_size : it->size)
                            : (it->size > 0 ? it->size : it->full_size);
        char *did = xasprintf("it will be fetched again from the server%s",
                              dropped ? " (its local edit is lost with it)" : "");
        report(rx, did, "%s: content file %s", path, why);
        free(did);
        if (!rx->repair)
            return STORE_OK;
        int e = store_content_write(rx->st, it->id, true, "", 0);
        if (e < 0) {
            store_set_error(rx->st, "%s: %s", p, strerror(-e));
            return STORE_IO;
        }
        sqlite3_stmt *s = q(rx, "UPDATE items SET has_content = 0, state = 1, size = 0, "
                                "full_size = ?2, staged = 0 WHERE id = ?1");
        if (!s)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, it->id);
        sqlite3_bind_int64(s, 2, whole);
        r = done(rx, s);
        if (r != STORE_OK)
            return r;
        s = q(rx, "UPDATE folders SET last_sync = 0 WHERE id = ?1");
        if (!s)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, it->folder);
        return done(rx, s);
    }
    if (on_server) {
        /* Groupware: no ETag, so the next comparison with the server's
         * fetches it; no sync token, so that comparison happens. */
        char *did = xasprintf("it will be fetched again from the server%s",
                              dropped ? " (its local edit is lost with it)" : "");
        report(rx, did, "%s: content file %s", path, why);
        free(did);
        if (!rx->repair)
            return STORE_OK;
        int e = store_content_write(rx->st, it->id, false, "", 0);
        if (e < 0) {
            store_set_error(rx->st, "%s: %s", w, strerror(-e));
            return STORE_IO;
        }
        sqlite3_stmt *s = q(rx, "UPDATE items SET has_content = 0, state = 0, size = 0, "
                                "full_size = 0, etag = NULL, staged = 0 WHERE id = ?1");
        if (!s)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, it->id);
        r = done(rx, s);
        if (r != STORE_OK)
            return r;
        s = q(rx, "UPDATE folders SET sync_token = NULL, ctag = NULL, last_sync = 0 "
                  "WHERE id = ?1");
        if (!s)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, it->folder);
        return done(rx, s);
    }
    /* Made here and never sent: nothing has a copy. The row stays (empty)
     * so the user sees what was lost. */
    report(rx, "its content is lost (it was never on the server); kept as an empty file "
               "marked error",
           "%s: content file %s", path, why);
    if (!rx->repair)
        return STORE_OK;
    rx->lost++;
    int e = store_content_write(rx->st, it->id, false, "", 0);
    if (e < 0) {
        store_set_error(rx->st, "%s: %s", w, strerror(-e));
        return STORE_IO;
    }
    sqlite3_stmt *s = q(rx, "UPDATE items SET has_content = 0, size = 0, full_size = 0, "
                            "staged = 0, state = CASE WHEN state = 4 THEN 4 ELSE 5 END, "
                            "error = ?2 WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, it->id);
    sqlite3_bind_text(s, 2, "its content was missing from the store (found by mailfs reindex)",
                      -1, SQLITE_STATIC);
    return done(rx, s);
}

static enum store_status
check_content(struct rx *rx, struct irow *it, const char *path)
{
    char w[RX_PATH_MAX], p[RX_PATH_MAX];
    store_content_path(rx->st, it->id, w, sizeof w);
    partial_path(rx->st, it->id, p, sizeof p);
    enum store_status r = STORE_OK;
    if (it->staged) {
        /* A commit of new content that a crash interrupted. */
        char d[RX_PATH_MAX];
        store_content_staged_path(rx->st, it->id, d, sizeof d);
        bool have = file_size(d) >= 0;
        report(rx, have ? "put in place" : "the mark cleared (nothing was waiting)",
               "%s: new content was waiting to be put in place", path);
        if (rx->repair) {
            int e = have ? store_content_commit_staged(rx->st, it->id) : 0;
            if (e < 0) {
                store_set_error(rx->st, "%s: %s", d, strerror(-e));
                return STORE_IO;
            }
            r = store_item_clear_staged(rx->st, it->id);
            if (r != STORE_OK)
                return r;
            it->staged = false;
        }
    }
    int64_t ws = file_size(w), ps = file_size(p);
    if (it->state == STORE_ITEM_PARTIAL && ws >= 0) {
        /* Readers take a whole file before a partial one, so one beside a
         * message kept in part is either that message arrived whole (its
         * row not updated yet) or a stray that readers would be served. */
        if (ws == it->full_size && ws > 0) {
            report(rx, "recorded as whole", "%s: kept in part, but the whole message is "
                                            "there",
                   path);
            if (!rx->repair)
                return STORE_OK;
            unlink(p);
            sqlite3_stmt *s = q(rx, "UPDATE items SET state = 0, size = full_size, "
                                    "has_content = 1 WHERE id = ?1");
            if (!s)
                return STORE_ERROR;
            sqlite3_bind_int64(s, 1, it->id);
            return done(rx, s);
        }
        report(rx, "removed", "%s: kept in part, but a whole file of %lld bytes (not the "
                              "message's %lld) is beside it",
               path, (long long)ws, (long long)it->full_size);
        if (rx->repair)
            unlink(w);
    }
    if (it->state == STORE_ITEM_PARTIAL) {
        if (ps == it->size)
            return STORE_OK;
        char why[96];
        if (ps < 0)
            snprintf(why, sizeof why, "missing");
        else
            snprintf(why, sizeof why, "has %lld bytes where %lld were stored", (long long)ps,
                     (long long)it->size);
        return content_bad(rx, it, path, why);
    }
    if (ws == it->size)
        return STORE_OK;
    if (ws < 0 && ps >= 0 && ps == it->size && it->uid && it->state == STORE_ITEM_SYNCED) {
        /* A message kept in part whose row lost that mark: readers and
         * full-mode syncs then never fetch the rest. */
        report(rx, "recorded as kept in part", "%s: only a part of the message is here, but "
                                               "it is recorded as whole",
               path);
        if (!rx->repair)
            return STORE_OK;
        sqlite3_stmt *s = q(rx, "UPDATE items SET state = 1, full_size = max(full_size, size) "
                                "WHERE id = ?1");
        if (!s)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, it->id);
        return done(rx, s);
    }
    char why[96];
    if (ws < 0)
        snprintf(why, sizeof why, "missing");
    else
        snprintf(why, sizeof why, "has %lld bytes where %lld were stored", (long long)ws,
                 (long long)it->size);
    return content_bad(rx, it, path, why);
}

static enum store_status
check_item(struct rx *rx, struct irow *it)
{
    enum store_status r = STORE_OK;
    if (!fget(rx, it->folder)) {
        bool kept = false;
        r = item_orphan(rx, it, &kept);
        if (r != STORE_OK || !kept || !rx->repair)
            return r;
    }
    char *path = ipath(rx, it->folder, it->name, it->len);
    if (it->state < STORE_ITEM_SYNCED || it->state > STORE_ITEM_ERROR) {
        int state = 0;
        r = guess_state(rx, it, &state);
        if (r == STORE_OK) {
            char did[64];
            snprintf(did, sizeof did, "now %s", state_name(state));
            report(rx, did, "%s: unknown state %d", path, it->state);
        }
        if (r == STORE_OK && rx->repair) {
            sqlite3_stmt *s = q(rx, "UPDATE items SET state = ?2 WHERE id = ?1");
            if (!s) {
                r = STORE_ERROR;
            } else {
                sqlite3_bind_int64(s, 1, it->id);
                sqlite3_bind_int(s, 2, state);
                r = done(rx, s);
                it->state = state;
            }
        }
    }
    if (r == STORE_OK && !name_ok(it->name, it->len)) {
        char *safe = safe_item_name(it->name, it->len);
        char got[NAMES_MAX + 1] = "";
        if (rx->repair)
            r = rename_item(rx, it, safe, got);
        if (r == STORE_OK) {
            char *did = xasprintf("renamed '%s'", got);
            report(rx, did, "%s: not a safe name (invalid UTF-8, '/', control characters "
                            "or too long)",
                   path);
            free(did);
        }
        free(safe);
    }
    bool clash = false;
    if (r == STORE_OK)
        r = name_clash(rx, it, &clash);
    if (r == STORE_OK && clash) {
        char got[NAMES_MAX + 1] = "";
        if (rx->repair)
            r = rename_item(rx, it, it->name, got);
        if (r == STORE_OK) {
            char *did = xasprintf("renamed '%s'", got);
            report(rx, did, "%s: another entry of its folder has the same name", path);
            free(did);
        }
    }
    if (r == STORE_OK) {
        free(path);
        path = ipath(rx, it->folder, it->name, it->len);
        r = check_content(rx, it, path);
    }
    free(path);
    return r;
}

static enum store_status
check_items(struct rx *rx)
{
    int64_t after = 0;
    for (;;) {
        sqlite3_stmt *s = q(rx, "SELECT id, folder_id, uid, href IS NOT NULL, name, size, "
                                "full_size, state, has_content, staged FROM items WHERE id > ?1 "
                                "ORDER BY id LIMIT ?2");
        if (!s)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, after);
        sqlite3_bind_int(s, 2, RX_BATCH);
        struct irow rows[RX_BATCH];
        size_t n = 0;
        int rc;
        while (n < RX_BATCH && (rc = sqlite3_step(s)) == SQLITE_ROW) {
            struct irow *it = &rows[n++];
            it->id = sqlite3_column_int64(s, 0);
            it->folder = sqlite3_column_int64(s, 1);
            it->uid = (uint32_t)sqlite3_column_int64(s, 2);
            it->href = sqlite3_column_int(s, 3) != 0;
            const char *name = (const char *)sqlite3_column_text(s, 4);
            it->len = (size_t)sqlite3_column_bytes(s, 4);
            it->name = xmalloc(it->len + 1);
            if (name)
                memcpy(it->name, name, it->len);
            it->name[it->len] = '\0';
            it->size = sqlite3_column_int64(s, 5);
            it->full_size = sqlite3_column_int64(s, 6);
            it->state = sqlite3_column_int(s, 7);
            it->has_content = sqlite3_column_int(s, 8) != 0;
            it->staged = sqlite3_column_int(s, 9) != 0;
        }
        if (n < RX_BATCH)
            rc = sqlite3_step(s);
        sqlite3_reset(s);
        enum store_status r =
            rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(rx->st, rc);
        for (size_t i = 0; i < n; i++) {
            if (r == STORE_OK)
                r = check_item(rx, &rows[i]);
            free(rows[i].name);
        }
        if (r != STORE_OK || n < RX_BATCH)
            return r;
        after = rows[n - 1].id;
    }
}

/* ---- journal ---- */

struct jrow {
    int64_t id, item_id, folder_id;
    int op, state, kind;
    uint32_t uid;
    bool src, arg, href;
};

/* The item's folder id (0 when the item does not exist). */
static enum store_status
item_folder(struct rx *rx, int64_t item_id, int64_t *folder, uint32_t *uid)
{
    *folder = 0;
    *uid = 0;
    sqlite3_stmt *s = q(rx, "SELECT folder_id, uid FROM items WHERE id = ?1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, item_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *folder = sqlite3_column_int64(s, 0);
        *uid = (uint32_t)sqlite3_column_int64(s, 1);
        if (*folder == 0)
            *folder = -1; /* exists, in no folder */
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(rx->st, rc);
}

/* Another entry of the item that can give it a UID (an upload or a move). */
static enum store_status
uid_coming(struct rx *rx, const struct jrow *e, bool *out)
{
    sqlite3_stmt *s = q(rx, "SELECT 1 FROM journal WHERE item_id = ?1 AND id <> ?2 AND "
                            "op IN (1, 2, 4) AND state IN (0, 1) LIMIT 1");
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, e->item_id);
    sqlite3_bind_int64(s, 2, e->id);
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW;
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(rx->st, rc);
}

/* Why the entry cannot be replayed, or NULL when it can. */
static enum store_status
unreplayable(struct rx *rx, const struct jrow *e, const char **why)
{
    *why = NULL;
    int64_t folder = 0;
    uint32_t uid = 0;
    bool coming = false;
    bool mail = e->kind == STORE_KIND_MAIL;
    enum store_status r = STORE_OK;
    if (e->item_id)
        r = item_folder(rx, e->item_id, &folder, &uid);
    if (r != STORE_OK)
        return r;
    switch (e->op) {
    case JOURNAL_APPEND:
    case JOURNAL_REPLACE:
    case JOURNAL_FLAGS:
    case JOURNAL_MOVE:
        if (folder == 0) {
            *why = "its item does not exist";
            return STORE_OK;
        }
        if (folder < 0 || !fget(rx, folder)) {
            *why = "its item is in no folder";
            return STORE_OK;
        }
        if (!mail || e->op == JOURNAL_APPEND || e->op == JOURNAL_REPLACE)
            return STORE_OK;
        /* A flag change or move acts on a UID: known, or coming from an
         * upload or move queued before it. */
        if (e->uid || (e->op == JOURNAL_FLAGS && uid))
            return STORE_OK;
        r = uid_coming(rx, e, &coming);
        if (r == STORE_OK && !coming)
            *why = "it has no UID to act on and nothing will give it one";
        return r;
    case JOURNAL_DELETE:
        if (e->href || (e->uid && (e->src || !mail)))
            return STORE_OK;
        if (e->item_id)
            r = uid_coming(rx, e, &coming);
        if (r == STORE_OK && !coming)
            *why = "it names nothing to delete";
        return r;
    case JOURNAL_MKDIR:
        if (!fget(rx, e->folder_id))
            *why = "its folder does not exist";
        else if (mail && !e->arg)
            *why = "it has no server name";
        return STORE_OK;
    case JOURNAL_RMDIR:
        if (!e->src && !e->href)
            *why = "it names no folder";
        return STORE_OK;
    case JOURNAL_RENAME:
        if ((!e->src && !e->href) || (mail && !e->arg))
            *why = "it lacks the old or the new name";
        return STORE_OK;
    }
    *why = "unknown operation";
    return STORE_OK;
}

static enum store_status
check_entry(struct rx *rx, const struct jrow *e)
{
    char desc[128];
    const char *opname = e->op >= JOURNAL_APPEND && e->op <= JOURNAL_RENAME
                             ? journal_op_name((enum journal_op)e->op)
                             : "?";
    if (e->item_id)
        snprintf(desc, sizeof desc, "journal entry %lld (%s of item %lld)", (long long)e->id,
                 opname, (long long)e->item_id);
    else if (e->folder_id)
        snprintf(desc, sizeof desc, "journal entry %lld (%s of folder %lld)", (long long)e->id,
                 opname, (long long)e->folder_id);
    else
        snprintf(desc, sizeof desc, "journal entry %lld (%s)", (long long)e->id, opname);
    enum store_status r;
    const char *why = NULL;
    if (e->op < JOURNAL_APPEND || e->op > JOURNAL_RENAME) {
        why = "unknown operation";
    } else {
        r = unreplayable(rx, e, &why);
        if (r != STORE_OK)
            return r;
    }
    /* A refused entry is only kept for the user to see it on its item. */
    if (!why && e->state == JOURNAL_REFUSED && e->item_id && e->op <= JOURNAL_FLAGS) {
        int64_t folder;
        uint32_t uid;
        r = item_folder(rx, e->item_id, &folder, &uid);
        if (r != STORE_OK)
            return r;
        if (folder == 0)
            why = "refused by the server, and its item is gone";
    }
    if (why) {
        report(rx, "removed (it cannot be replayed)", "%s: %s", desc, why);
        if (!rx->repair)
            return STORE_OK;
        sqlite3_stmt *s = q(rx, "DELETE FROM journal WHERE id = ?1");
        if (!s)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, e->id);
        return done(rx, s);
    }
    if (e->kind < STORE_KIND_MAIL || e->kind > STORE_KIND_CONTACTS) {
        /* From the folder it acts in. */
        int64_t folder = e->folder_id;
        uint32_t uid;
        if (e->item_id) {
            r = item_folder(rx, e->item_id, &folder, &uid);
            if (r != STORE_OK)
                return r;
        }
        const struct fent *f = folder > 0 ? fget(rx, folder) : NULL;
        int kind = f && f->kind >= STORE_KIND_MAIL && f->kind <= STORE_KIND_CONTACTS
                       ? f->kind
                       : STORE_KIND_MAIL;
        char did[64];
        snprintf(did, sizeof did, "now of kind %d", kind);
        report(rx, did, "%s: unknown kind %d", desc, e->kind);
        if (rx->repair) {
            sqlite3_stmt *s = q(rx, "UPDATE journal SET kind = ?2 WHERE id = ?1");
            if (!s)
                return STORE_ERROR;
            sqlite3_bind_int64(s, 1, e->id);
            sqlite3_bind_int(s, 2, kind);
            r = done(rx, s);
            if (r != STORE_OK)
                return r;
        }
    }
    if (e->state < JOURNAL_QUEUED || e->state > JOURNAL_REFUSED) {
        /* Never dropped, never sent twice: what creates something on the
         * server is looked for there before it is sent again. */
        int state = e->op == JOURNAL_APPEND || e->op == JOURNAL_REPLACE || e->op == JOURNAL_MOVE
                        ? JOURNAL_INFLIGHT
                        : JOURNAL_QUEUED;
        report(rx, state == JOURNAL_INFLIGHT ? "kept, marked in flight (the server is checked "
                                               "before it is sent again)"
                                             : "kept, queued",
               "%s: unknown state %d", desc, e->state);
        if (rx->repair) {
            sqlite3_stmt *s = q(rx, "UPDATE journal SET state = ?2 WHERE id = ?1");
            if (!s)
                return STORE_ERROR;
            sqlite3_bind_int64(s, 1, e->id);
            sqlite3_bind_int(s, 2, state);
            r = done(rx, s);
            if (r != STORE_OK)
                return r;
        }
    }
    return STORE_OK;
}

static enum store_status
check_journal(struct rx *rx)
{
    int64_t after = 0;
    for (;;) {
        sqlite3_stmt *s = q(rx, "SELECT id, op, state, item_id, folder_id, uid, src IS NOT NULL, "
                                "arg IS NOT NULL, kind, href IS NOT NULL FROM journal "
                                "WHERE id > ?1 ORDER BY id LIMIT ?2");
        if (!s)
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, after);
        sqlite3_bind_int(s, 2, RX_BATCH);
        struct jrow rows[RX_BATCH];
        size_t n = 0;
        int rc;
        while (n < RX_BATCH && (rc = sqlite3_step(s)) == SQLITE_ROW) {
            struct jrow *e = &rows[n++];
            e->id = sqlite3_column_int64(s, 0);
            e->op = sqlite3_column_int(s, 1);
            e->state = sqlite3_column_int(s, 2);
            e->item_id = sqlite3_column_int64(s, 3);
            e->folder_id = sqlite3_column_int64(s, 4);
            e->uid = (uint32_t)sqlite3_column_int64(s, 5);
            e->src = sqlite3_column_int(s, 6) != 0;
            e->arg = sqlite3_column_int(s, 7) != 0;
            e->kind = sqlite3_column_int(s, 8);
            e->href = sqlite3_column_int(s, 9) != 0;
        }
        if (n < RX_BATCH)
            rc = sqlite3_step(s);
        sqlite3_reset(s);
        enum store_status r =
            rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(rx->st, rc);
        for (size_t i = 0; r == STORE_OK && i < n; i++)
            r = check_entry(rx, &rows[i]);
        if (r != STORE_OK || n < RX_BATCH)
            return r;
        after = rows[n - 1].id;
    }
}

/* ---- files ---- */

struct sweep {
    struct store *st;
    store_say_fn say;
    void *ctx;
    bool repair;
    unsigned found;
};

static void
stray(struct sweep *sw, const char *path, const char *why)
{
    sw->found++;
    const char *rel = path + strlen(store_dir(sw->st)) + 1;
    char *line = sw->repair ? xasprintf("%s: %s: removed", rel, why)
                            : xasprintf("still: %s: %s", rel, why);
    if (sw->say)
        sw->say(sw->ctx, line);
    free(line);
    if (sw->repair)
        unlink(path);
}

/* The state and staged mark of an item; false when it has no row. */
static bool
item_row(struct store *st, int64_t id, int *state, bool *staged)
{
    sqlite3_stmt *s = store_sql(st, "SELECT state, staged FROM items WHERE id = ?1");
    if (!s)
        return true; /* when in doubt, keep the file */
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *state = sqlite3_column_int(s, 0);
        *staged = sqlite3_column_int(s, 1) != 0;
    }
    sqlite3_reset(s);
    return rc != SQLITE_DONE;
}

/* A file name "ID[.suffix]": the id, and *suffix at what follows it. */
static bool
parse_id(const char *name, int64_t *id, const char **suffix)
{
    if (name[0] < '0' || name[0] > '9')
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(name, &end, 10);
    if (errno || v <= 0 || (*end && *end != '.'))
        return false;
    *id = v;
    *suffix = end;
    return true;
}

static void
sweep_bucket(struct sweep *sw, const char *dir, unsigned bucket)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        int64_t id;
        const char *suffix;
        int state = 0;
        bool staged = false;
        struct stat sb;
        if (lstat(path, &sb) < 0 || S_ISDIR(sb.st_mode)) {
            /* not ours to judge */
        } else if (!parse_id(e->d_name, &id, &suffix)) {
            /* Nothing but ID[.suffix] files are made here. */
        } else if ((unsigned)(id & 0xff) != bucket) {
            stray(sw, path, "in the wrong directory for its item");
        } else if (!item_row(sw->st, id, &state, &staged)) {
            stray(sw, path, "no item refers to it");
        } else if (strcmp(suffix, ".p") == 0 && state != STORE_ITEM_PARTIAL) {
            char w[RX_PATH_MAX];
            store_content_path(sw->st, id, w, sizeof w);
            if (file_size(w) >= 0)
                stray(sw, path, "a part kept beside the whole message");
        }
        free(path);
    }
    closedir(d);
}

static unsigned
sweep_files(struct store *st, bool all, bool repair, store_say_fn say, void *ctx)
{
    struct sweep sw = {.st = st, .say = say, .ctx = ctx, .repair = repair};
    char *content = xasprintf("%s/content", store_dir(st));
    DIR *d = opendir(content);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        /* Buckets are two lower-case hex digits (content.c). */
        const char *hex = "0123456789abcdef";
        if (strlen(e->d_name) != 2 || !strchr(hex, e->d_name[0]) || !strchr(hex, e->d_name[1]))
            continue;
        unsigned bucket = (unsigned)strtoul(e->d_name, NULL, 16);
        char *sub = xasprintf("%s/%s", content, e->d_name);
        sweep_bucket(&sw, sub, bucket);
        free(sub);
    }
    if (d)
        closedir(d);
    free(content);
    if (!all)
        return sw.found;
    char *drafts = xasprintf("%s/drafts", store_dir(st));
    d = opendir(drafts);
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *path = xasprintf("%s/%s", drafts, e->d_name);
        int64_t id;
        const char *suffix;
        int state = 0;
        bool staged = false;
        if (!parse_id(e->d_name, &id, &suffix) || *suffix)
            stray(&sw, path, "not a draft of mailfs");
        else if (!item_row(st, id, &state, &staged))
            stray(&sw, path, "a draft of an item that does not exist");
        else if (!staged)
            stray(&sw, path, "a draft that was never committed");
        free(path);
    }
    if (d)
        closedir(d);
    free(drafts);
    char *tmp = xasprintf("%s/tmp", store_dir(st));
    d = opendir(tmp);
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *path = xasprintf("%s/%s", tmp, e->d_name);
        struct stat sb;
        if (lstat(path, &sb) == 0 && !S_ISDIR(sb.st_mode))
            stray(&sw, path, "left over in tmp/");
        free(path);
    }
    if (d)
        closedir(d);
    free(tmp);
    return sw.found;
}

unsigned
store_sweep_files(struct store *st, bool all, bool repair, store_say_fn say, void *ctx)
{
    return sweep_files(st, all, repair, say, ctx);
}

/* ---- the database ---- */

/* PRAGMA integrity_check: its messages other than "ok" (up to RX_DB_LINES
 * shown through say when say_prefix is set) and how many there were, or a
 * sqlite error code when it could not run. */
static int
integrity(sqlite3 *db, struct rx *rx, const char *say_prefix, unsigned *bad)
{
    *bad = 0;
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(s, 0);
        if (!m || strcmp(m, "ok") == 0)
            continue;
        /* One row may hold several messages, a line each. */
        for (const char *p = m; *p;) {
            size_t n = strcspn(p, "\n");
            if (strncmp(p, "*** in database", 15) == 0) {
                /* a heading, not a problem */
                p += n;
                if (*p)
                    p++;
                continue;
            }
            if (n && say_prefix && *bad < RX_DB_LINES && rx->say) {
                char *line = xasprintf("%sstore.db: %.*s", say_prefix, (int)n, p);
                rx->say(rx->ctx, line);
                free(line);
            }
            if (n)
                (*bad)++;
            p += n;
            if (*p)
                p++;
        }
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Run SQL on db; sqlite's result code. */
static int
exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* A copy of the database in `to` made row by row: what VACUUM INTO does,
 * but without its shortcut of copying index pages as they are (a damaged
 * index is exactly what must not be copied). Tables first, their rows read
 * through the tables only, then the indexes built afresh. */
static int
copy_rows(sqlite3 *db, const char *to)
{
    /* This connection may not create files: an empty one is a database. */
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return SQLITE_CANTOPEN;
    close(fd);
    char *sql = sqlite3_mprintf("ATTACH %Q AS fresh", to);
    int rc = exec(db, sql);
    sqlite3_free(sql);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_stmt *s = NULL;
    rc = exec(db, "BEGIN");
    for (int pass = 0; rc == SQLITE_OK && pass < 2; pass++) {
        /* pass 0: tables and their rows; pass 1: indexes */
        const char *list = pass == 0 ? "SELECT name, sql FROM main.sqlite_master WHERE "
                                       "type = 'table' AND name NOT LIKE 'sqlite_%'"
                                     : "SELECT name, sql FROM main.sqlite_master WHERE "
                                       "type = 'index' AND sql IS NOT NULL";
        rc = sqlite3_prepare_v2(db, list, -1, &s, NULL);
        while (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(s, 0);
            const char *def = (const char *)sqlite3_column_text(s, 1);
            /* "CREATE [UNIQUE] INDEX|TABLE name ...": the same in fresh. */
            const char *kw = pass == 0 ? "TABLE " : "INDEX ";
            const char *at = def ? strstr(def, kw) : NULL;
            if (!at || !name) {
                rc = SQLITE_CORRUPT;
                break;
            }
            at += strlen(kw);
            char *create = sqlite3_mprintf("%.*sfresh.%s", (int)(at - def), def, at);
            rc = exec(db, create);
            sqlite3_free(create);
            if (rc == SQLITE_OK && pass == 0) {
                /* A WHERE clause keeps sqlite from copying pages whole. */
                char *ins = sqlite3_mprintf("INSERT INTO fresh.\"%w\" SELECT * FROM "
                                            "main.\"%w\" WHERE 1",
                                            name, name);
                rc = exec(db, ins);
                sqlite3_free(ins);
            }
        }
        sqlite3_finalize(s);
        s = NULL;
    }
    /* Row ids are never reused (inode numbers): the counters come along. */
    if (rc == SQLITE_OK)
        rc = exec(db, "DELETE FROM fresh.sqlite_sequence");
    if (rc == SQLITE_OK)
        rc = exec(db, "INSERT INTO fresh.sqlite_sequence SELECT * FROM main.sqlite_sequence "
                      "WHERE 1");
    int version = 0;
    if (rc == SQLITE_OK && sqlite3_prepare_v2(db, "PRAGMA main.user_version", -1, &s, NULL) ==
                               SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            version = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
    }
    if (rc == SQLITE_OK) {
        sql = sqlite3_mprintf("PRAGMA fresh.user_version = %d", version);
        rc = exec(db, sql);
        sqlite3_free(sql);
    }
    int end = exec(db, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK");
    if (rc == SQLITE_OK)
        rc = end;
    exec(db, "DETACH fresh");
    return rc;
}

static bool
db_empty(sqlite3 *db)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name = 'items'", -1,
                           &s, NULL) != SQLITE_OK)
        return false;
    bool empty = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == 0;
    sqlite3_finalize(s);
    return empty;
}

static void
sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Check the database file; rebuild it when it is damaged but readable. */
static enum store_status
check_db(struct rx *rx, const char *dir, char **err)
{
    char *path = xasprintf("%s/store.db", dir);
    char *rebuilt = xasprintf("%s/store.db.rebuild", dir);
    sqlite3 *db = NULL;
    enum store_status r = STORE_OK;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    unsigned bad = 0;
    if (rc == SQLITE_OK) {
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, 10000);
        rc = integrity(db, rx, "", &bad);
    }
    if (rc != SQLITE_OK) {
        *err = xasprintf("%s cannot be read (%s): it is not a mailfs database, or it is "
                         "cut or overwritten past what sqlite can read, so reindex cannot "
                         "repair it; `mailfs reset "
                         "ACCOUNT` moves it aside and syncs everything again from the server",
                         path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        r = (rc & 0xff) == SQLITE_CANTOPEN ? STORE_IO : STORE_CORRUPT;
        goto out;
    }
    if (db_empty(db)) {
        /* Every content file would look like a stray: touch nothing. */
        *err = xasprintf("%s holds no store (an empty database), so reindex has nothing to "
                         "check the content files against; `mailfs reset ACCOUNT` moves it "
                         "aside and syncs everything again from the server",
                         path);
        r = STORE_CORRUPT;
        goto out;
    }
    if (bad == 0)
        goto out;
    rx->found++;
    if (bad > RX_DB_LINES && rx->say) {
        char *line = xasprintf("store.db: ... %u problems in all", bad);
        rx->say(rx->ctx, line);
        free(line);
    }
    /* VACUUM INTO writes a new file with fresh pages; when it stumbles on
     * the damage, the copy is made row by row through the tables. */
    unlink(rebuilt);
    sqlite3_stmt *s;
    rc = sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, rebuilt, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        sqlite3_finalize(s);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK) {
        unlink(rebuilt);
        rc = copy_rows(db, rebuilt);
    }
    if (rc != SQLITE_OK) {
        *err = xasprintf("%s is damaged and sqlite cannot read all of it (%s), so reindex "
                         "cannot rebuild it; `mailfs reset ACCOUNT` moves it aside and syncs "
                         "everything again from the server",
                         path, sqlite3_errmsg(db));
        unlink(rebuilt);
        r = STORE_CORRUPT;
        goto out;
    }
    sqlite3 *ndb = NULL;
    unsigned nbad = 0;
    rc = sqlite3_open_v2(rebuilt, &ndb, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = integrity(ndb, rx, NULL, &nbad);
    sqlite3_close(ndb);
    if (rc != SQLITE_OK || nbad) {
        *err = xasprintf("%s is damaged and rebuilding it did not give a sound copy; `mailfs "
                         "reset ACCOUNT` moves it aside and syncs everything again from the "
                         "server",
                         path);
        unlink(rebuilt);
        r = STORE_CORRUPT;
        goto out;
    }
    sqlite3_close(db);
    db = NULL;
    /* Swap: the damaged file (with its WAL, which belongs to it) is kept
     * beside, never replayed onto the new one. */
    char *keep = xasprintf("%s/store.db.before-reindex", dir);
    char *wal = xasprintf("%s/store.db-wal", dir), *kwal = xasprintf("%s-wal", keep);
    char *shm = xasprintf("%s/store.db-shm", dir);
    int e = 0;
    unlink(kwal);
    if (rename(path, keep) < 0)
        e = errno;
    if (!e && rename(wal, kwal) < 0 && errno != ENOENT)
        e = errno;
    unlink(shm);
    if (!e && rename(rebuilt, path) < 0) {
        e = errno;
        /* Never leave the store without a database. */
        rename(keep, path);
        rename(kwal, wal);
    }
    sync_dir(dir);
    if (e) {
        *err = xasprintf("%s: putting the rebuilt database in place: %s", path, strerror(e));
        r = STORE_IO;
    } else {
        rx->repaired++;
        if (rx->say)
            rx->say(rx->ctx, "store.db: damaged: rebuilt from what sqlite could read (the "
                             "damaged file is kept as store.db.before-reindex)");
    }
    free(keep);
    free(wal);
    free(kwal);
    free(shm);
out:
    sqlite3_close(db);
    free(path);
    free(rebuilt);
    return r;
}

/* ---- the passes ---- */

typedef enum store_status (*check_fn)(struct rx *rx);

static enum store_status
run_pass(struct rx *rx)
{
    static const check_fn checks[] = {check_folders, check_items, check_journal};
    for (size_t i = 0; i < ARRAY_SIZE(checks); i++) {
        enum store_status r = rx->repair ? store_begin(rx->st) : STORE_OK;
        if (r == STORE_OK)
            r = checks[i](rx);
        if (rx->repair && r == STORE_OK)
            r = store_commit(rx->st);
        else if (rx->repair)
            store_rollback(rx->st);
        if (r != STORE_OK)
            return r;
    }
    /* The folder table is current again for the next pass. */
    free_folders(rx);
    unsigned n = sweep_files(rx->st, true, rx->repair, rx->say, rx->ctx);
    rx->found += n;
    if (rx->repair)
        rx->repaired += n;
    return STORE_OK;
}

enum store_status
store_reindex(const char *dir, store_say_fn say, void *ctx, struct store_reindex_result *res,
              char **err)
{
    memset(res, 0, sizeof *res);
    *err = NULL;
    if (!store_exists(dir)) {
        *err = xasprintf("%s: no store here: nothing to check", dir);
        return STORE_NOTFOUND;
    }
    struct rx rx = {.say = say, .ctx = ctx, .repair = true};
    enum store_status r = check_db(&rx, dir, err);
    if (r != STORE_OK)
        return r;
    struct store *st;
    r = store_open(dir, 0, &st, err);
    if (r != STORE_OK)
        return r;
    store_set_recording(st, false);
    rx.st = st;
    /* Drafts on disk hold writes that returned: committed, not swept. */
    r = store_recover(st);
    if (r == STORE_OK)
        r = run_pass(&rx);
    res->found = rx.found;
    res->repaired = rx.repaired;
    res->lost = rx.lost;
    rx_clear(&rx);
    if (r == STORE_OK) {
        /* The proof: the same checks again, looking only. */
        struct rx again = {.st = st, .say = say, .ctx = ctx, .repair = false};
        unsigned bad = 0;
        int rc = integrity(store_db(st), &again, "still: ", &bad);
        if (rc != SQLITE_OK)
            r = store_sqlite_status(st, rc);
        again.found += bad;
        if (r == STORE_OK)
            r = run_pass(&again);
        res->remaining = again.found;
        rx_clear(&again);
    }
    if (r != STORE_OK)
        *err = xasprintf("%s: %s", dir, store_errmsg(st));
    store_close(st);
    return r;
}
