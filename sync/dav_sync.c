/* dav_sync: discovery into folders, and collections into the store.
 *
 * Folders: Calendar/, Tasks/ and Notes/ (CalDAV) and Contacts/ (CardDAV) are
 * the default collection of their kind; the other collections of a kind are
 * their subdirectories, named by display name. A collection with several
 * components has one folder row per kind, all with its href as server name:
 * its events show under Calendar/, its tasks under Tasks/. The default is
 * chosen once (the server's schedule-default-calendar-URL, else the first
 * collection of the kind by href) and kept in the store's meta table.
 *
 * A collection syncs by sync-collection from its stored token (a rejected
 * token lists it whole; without sync-collection a PROPFIND lists it), then
 * downloads what changed: everything in one calendar-query on a first sync,
 * else multiget in batches. An item with local changes waiting is never
 * replaced by the server's version (the push decides: a 412 is a conflict). */
#include "sync/dav_sync_p.h"

#include "common/log.h"
#include "common/util.h"
#include "formats/ical.h"
#include "formats/note.h"
#include "formats/vcard.h"
#include "store/conflict.h"
#include "store/journal.h"
#include "sync/replay.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* Items per multiget: far below HTTP_MAX_BODY for ordinary items. */
#define MULTIGET_BATCH 200
/* Items per store transaction while downloading. */
#define APPLY_BATCH 200
/* What discovery found is used again for this long: a sync with nothing new
 * then costs one request per home instead of the probes of RFC 6764 too. */
#define DISCOVERY_MAX_AGE (24 * 3600)

static const char *const top_names[] = {
    [STORE_KIND_EVENTS] = "Calendar",
    [STORE_KIND_TASKS] = "Tasks",
    [STORE_KIND_NOTES] = "Notes",
    [STORE_KIND_CONTACTS] = "Contacts",
};

static const char *const meta_keys[] = {
    [STORE_KIND_EVENTS] = "default.events",
    [STORE_KIND_TASKS] = "default.tasks",
    [STORE_KIND_NOTES] = "default.notes",
    [STORE_KIND_CONTACTS] = "default.contacts",
};

unsigned
dav_sync_kinds(enum dav_kind kind)
{
    return kind == DAV_KIND_CARDDAV ? 1u << STORE_KIND_CONTACTS
                                    : (1u << STORE_KIND_EVENTS) | (1u << STORE_KIND_TASKS) |
                                          (1u << STORE_KIND_NOTES);
}

unsigned
dav_sync_comp_of(enum store_kind kind)
{
    switch (kind) {
    case STORE_KIND_EVENTS: return DAV_COMP_VEVENT;
    case STORE_KIND_TASKS: return DAV_COMP_VTODO;
    case STORE_KIND_NOTES: return DAV_COMP_VJOURNAL;
    default: return 0;
    }
}

void
dav_sync_uuid(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        /* Never expected on Linux; a time-based value is still unique enough
         * for a resource name the server checks (If-None-Match). */
        uint64_t t = (uint64_t)util_now_ms() ^ ((uint64_t)getpid() << 40);
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (unsigned char)(t >> ((i % 8) * 8)) ^ (unsigned char)(i * 37);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static void
committed(struct dav_driver *dd)
{
    if (dd->base.host)
        dd->base.host->committed(dd->base.host);
}

/* ---- items ---- */

/* The last segment of an href, for naming an item that cannot be read. */
static char *
href_base(const char *href)
{
    size_t n = strlen(href);
    while (n > 0 && href[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && href[b - 1] != '/')
        b--;
    return xstrndup(href + b, n - b);
}

void
dav_item_read(const struct dav_driver *dd, const char *href, const char *data, size_t len,
              struct dav_item *out)
{
    memset(out, 0, sizeof *out);
    out->date = util_now();
    if (dd->kind == DAV_KIND_CARDDAV) {
        struct vcard_info vi;
        if (vcard_parse(data, len, &vi, &out->error) == 0) {
            out->kind = STORE_KIND_CONTACTS;
            out->name = names_contact(vi.name);
            vcard_info_free(&vi);
            return;
        }
    } else {
        struct ical_info ii;
        if (ical_parse(data, len, &ii, &out->error) == 0) {
            if (ii.modified != ICAL_NO_TIME)
                out->date = ii.modified;
            switch (ii.kind) {
            case ICAL_ITEM_EVENT:
                out->kind = STORE_KIND_EVENTS;
                out->name = names_event(ii.start, ii.all_day, ii.summary);
                break;
            case ICAL_ITEM_TODO:
                out->kind = STORE_KIND_TASKS;
                out->name = names_task(ii.due, ii.summary);
                break;
            case ICAL_ITEM_JOURNAL:
                out->text = note_text(data, len, &out->textlen);
                if (out->text) {
                    out->kind = STORE_KIND_NOTES;
                    out->name = names_note(ii.summary);
                } else {
                    out->error = xstrdup("the note cannot be read");
                }
                break;
            case ICAL_ITEM_NONE:
                out->error = xstrdup("no event, task or note in it");
                break;
            }
            ical_info_free(&ii);
            if (out->kind)
                return;
        }
    }
    /* Shown as it is, under a name from its href, with the reason. */
    char *base = href_base(href);
    out->name = names_sanitize(base, strlen(base), NAMES_MAX);
    free(base);
    if (!out->error)
        out->error = xstrdup("not a valid item");
}

void
dav_item_free(struct dav_item *it)
{
    free(it->name);
    free(it->text);
    free(it->error);
    memset(it, 0, sizeof *it);
}

bool
dav_sync_item_busy(struct store *st, int64_t item_id)
{
    struct journal_entry e;
    enum store_status s =
        journal_find_item(st, item_id, ~0u,
                          JOURNAL_BIT(JOURNAL_QUEUED) | JOURNAL_BIT(JOURNAL_INFLIGHT) |
                              JOURNAL_BIT(JOURNAL_REFUSED),
                          &e);
    if (s == STORE_OK)
        journal_entry_clear(&e);
    return s != STORE_NOTFOUND; /* an error counts as busy: never overwrite in doubt */
}

/* Rename an item to `wanted` or a free variant of it. */
static enum store_status
rename_item(struct store *st, const struct store_item *it, const char *wanted)
{
    enum store_status r = store_item_move(st, it->id, it->folder_id, wanted, it->uid);
    for (unsigned n = 2; r == STORE_EXISTS && n < 1000; n++) {
        char *v = names_variant(wanted, n);
        r = store_item_move(st, it->id, it->folder_id, v, it->uid);
        free(v);
    }
    return r;
}

int
dav_sync_store_item(struct dav_driver *dd, int64_t item_id, const char *href,
                    const char *etag, const char *data, size_t len, struct sync_error *err)
{
    struct store *st = dd->base.st;
    struct store_item it;
    if (store_item_get(st, item_id, &it) != STORE_OK)
        return replay_store_fail(err, st, "reading an item");
    struct dav_item di;
    dav_item_read(dd, href, data, len, &di);
    enum store_status r;
    if (di.kind == STORE_KIND_NOTES) {
        /* The file name of a note is its title: a new title renames it (an
         * unchanged one keeps the name, variants like "x (2).txt" too). */
        size_t oldlen = 0;
        char *old = store_sidecar_read(st, item_id, &oldlen);
        char *old_title = old ? note_title(old, oldlen) : NULL;
        char *new_title = note_title(data, len);
        bool retitled = old && !(old_title && new_title && strcmp(old_title, new_title) == 0) &&
                        (old_title || new_title);
        free(old);
        free(old_title);
        free(new_title);
        r = store_item_set_server_content(st, item_id, di.text, di.textlen, di.date);
        if (r == STORE_OK && store_sidecar_write(st, item_id, data, len) < 0)
            r = STORE_IO;
        if (r == STORE_OK && retitled && strcmp(it.name, di.name) != 0)
            r = rename_item(st, &it, di.name);
    } else {
        r = store_item_set_server_content(st, item_id, data, len, di.date);
    }
    if (r == STORE_OK)
        r = store_item_set_dav(st, item_id, href, etag);
    if (r == STORE_OK)
        r = store_item_set_state(st, item_id,
                                 di.kind ? STORE_ITEM_SYNCED : STORE_ITEM_ERROR,
                                 di.kind ? NULL : di.error);
    dav_item_free(&di);
    return r == STORE_OK ? 0 : replay_store_fail(err, st, "storing an item");
}

/* ---- folders ---- */

struct top_find {
    enum store_kind kind;
    int64_t id;
};

static int
find_top(void *ctx, const struct store_folder *f)
{
    struct top_find *t = ctx;
    if (f->parent_id == 0 && f->kind == t->kind) {
        t->id = f->id;
        return 1;
    }
    return 0;
}

int64_t
dav_sync_top_folder(struct dav_driver *dd, enum store_kind kind)
{
    struct top_find t = {kind, 0};
    store_folder_each(dd->base.st, kind, find_top, &t);
    return t.id;
}

char *
dav_sync_home(struct dav_driver *dd)
{
    for (size_t i = 0; i < dd->cols.n; i++) {
        const char *h = dd->cols.v[i].href;
        size_t n = strlen(h);
        while (n > 0 && h[n - 1] == '/')
            n--;
        while (n > 0 && h[n - 1] != '/')
            n--;
        if (n > 0)
            return xstrndup(h, n);
    }
    if (dd->cols.principal) {
        size_t n = strlen(dd->cols.principal);
        return n && dd->cols.principal[n - 1] == '/' ? xstrdup(dd->cols.principal)
                                                     : xasprintf("%s/", dd->cols.principal);
    }
    return NULL;
}

static bool
col_has(const struct dav_collection *c, enum store_kind kind)
{
    return kind == STORE_KIND_CONTACTS || (c->comps & dav_sync_comp_of(kind));
}

static const struct dav_collection *
col_find(const struct dav_driver *dd, const char *href)
{
    for (size_t i = 0; i < dd->cols.n; i++)
        if (strcmp(dd->cols.v[i].href, href) == 0)
            return &dd->cols.v[i];
    return NULL;
}

/* The default collection of a kind: the one chosen before while it exists,
 * else the server's default, else the first by href. NULL when none. */
static const struct dav_collection *
pick_default(struct dav_driver *dd, enum store_kind kind, struct sync_error *err, int *rc)
{
    struct store *st = dd->base.st;
    *rc = 0;
    char *kept = NULL;
    if (store_meta_get(st, meta_keys[kind], &kept) == STORE_OK) {
        const struct dav_collection *c = col_find(dd, kept);
        free(kept);
        if (c && col_has(c, kind))
            return c;
    }
    const struct dav_collection *best = NULL;
    for (size_t i = 0; i < dd->cols.n; i++) {
        const struct dav_collection *c = &dd->cols.v[i];
        if (!col_has(c, kind))
            continue;
        if (!best || (c->is_default && !best->is_default) ||
            (c->is_default == best->is_default && strcmp(c->href, best->href) < 0))
            best = c;
    }
    if (best && store_meta_set(st, meta_keys[kind], best->href) != STORE_OK)
        *rc = replay_store_fail(err, st, "keeping the default collection");
    return best;
}

/* The folder name of a further collection: its display name, else the last
 * segment of its href. */
static char *
col_name(const struct dav_collection *c)
{
    char *raw = c->displayname && c->displayname[0] ? xstrdup(c->displayname)
                                                    : href_base(c->href);
    char *n = names_sanitize(raw, strlen(raw), NAMES_MAX);
    free(raw);
    return n;
}

struct stale_ctx {
    struct dav_driver *dd;
    enum store_kind kind;
    int64_t top;
    int64_t *gone;
    size_t n;
};

static int
find_stale(void *ctx, const struct store_folder *f)
{
    struct stale_ctx *sc = ctx;
    if (f->parent_id != sc->top || f->local_only || !f->server_name)
        return 0;
    const struct dav_collection *c = col_find(sc->dd, f->server_name);
    if (c && col_has(c, sc->kind))
        return 0;
    sc->gone = xrealloc(sc->gone, (sc->n + 1) * sizeof *sc->gone);
    sc->gone[sc->n++] = f->id;
    return 0;
}

/* A collection renamed on the server (its display name): its folder takes
 * the new name, unless the user renamed it and that is still to be sent, or
 * the name is a variant already (two collections of one name). */
static int
follow_name(struct store *st, const struct store_folder *f, const struct dav_collection *c,
            struct sync_error *err)
{
    char *want = col_name(c);
    bool same = strcmp(f->name, want) == 0;
    for (unsigned n = 2; !same && n < 100; n++) {
        char *v = names_variant(want, n);
        same = strcmp(v, f->name) == 0;
        free(v);
    }
    struct journal_entry q;
    enum store_status e = STORE_NOTFOUND;
    if (!same) {
        e = journal_find_folder(st, f->id, JOURNAL_BIT(JOURNAL_MKDIR) | JOURNAL_BIT(JOURNAL_RENAME),
                                JOURNAL_BIT(JOURNAL_QUEUED) | JOURNAL_BIT(JOURNAL_INFLIGHT) |
                                    JOURNAL_BIT(JOURNAL_REFUSED),
                                &q);
        if (e == STORE_OK)
            journal_entry_clear(&q);
    }
    int rc = 0;
    if (!same && e == STORE_NOTFOUND) {
        enum store_status r = STORE_EXISTS;
        char *got = NULL;
        for (unsigned n = 1; r == STORE_EXISTS && n < 100; n++) {
            free(got);
            got = n == 1 ? xstrdup(want) : names_variant(want, n);
            r = store_folder_rename(st, f->id, f->parent_id, got, f->server_name);
        }
        if (r != STORE_OK)
            rc = replay_store_fail(err, st, "renaming a folder");
        else
            log_info("dav: %s: renamed on the server: %s is now %s", c->href, f->name, got);
        free(got);
    } else if (!same && e != STORE_OK) {
        rc = replay_store_fail(err, st, "reading the journal");
    }
    free(want);
    return rc;
}

/* Bring the folders of one kind in line with the collections found. In the
 * caller's transaction. */
static int
list_kind(struct dav_driver *dd, enum store_kind kind, struct sync_error *err)
{
    struct store *st = dd->base.st;
    int rc = 0;
    const struct dav_collection *def = pick_default(dd, kind, err, &rc);
    if (rc < 0)
        return -1;
    int64_t top = dav_sync_top_folder(dd, kind);
    struct store_folder f;
    if (!top) {
        memset(&f, 0, sizeof f);
        f.kind = kind;
        snprintf(f.name, sizeof f.name, "%s", top_names[kind]);
        f.server_name = def ? def->href : NULL;
        f.selectable = true;
        if (store_folder_add(st, &f) != STORE_OK)
            return replay_store_fail(err, st, "adding a folder");
        top = f.id;
    } else if (store_folder_get(st, top, &f) == STORE_OK) {
        bool same = (!def && !f.server_name) ||
                    (def && f.server_name && strcmp(def->href, f.server_name) == 0);
        if (!same && def) {
            /* A new default (the old one is gone): list it whole. */
            free(f.sync_token);
            f.sync_token = NULL;
            if (store_folder_set_server_name(st, top, def->href) != STORE_OK ||
                store_folder_update_sync(st, &f) != STORE_OK) {
                store_folder_clear(&f);
                return replay_store_fail(err, st, "updating a folder");
            }
        }
        store_folder_clear(&f);
    } else {
        return replay_store_fail(err, st, "reading a folder");
    }
    /* Further collections of the kind: subdirectories. */
    for (size_t i = 0; i < dd->cols.n; i++) {
        const struct dav_collection *c = &dd->cols.v[i];
        if (!col_has(c, kind) || c == def)
            continue;
        struct store_folder have;
        if (store_folder_by_server_name(st, kind, c->href, &have) == STORE_OK) {
            rc = follow_name(st, &have, c, err);
            store_folder_clear(&have);
            if (rc < 0)
                return -1;
            continue;
        }
        memset(&f, 0, sizeof f);
        f.parent_id = top;
        f.kind = kind;
        char *name = col_name(c);
        snprintf(f.name, sizeof f.name, "%s", name);
        free(name);
        f.server_name = c->href;
        f.selectable = true;
        if (store_folder_add(st, &f) != STORE_OK)
            return replay_store_fail(err, st, "adding a folder");
    }
    /* Collections gone from the server: their folders go; changes made in
     * them are kept in Conflicts/ (DESIGN section 6). */
    struct stale_ctx sc = {dd, kind, top, NULL, 0};
    store_folder_each(st, kind, find_stale, &sc);
    for (size_t i = 0; i < sc.n && rc == 0; i++) {
        unsigned kept = 0;
        if (conflict_drop_folder(st, sc.gone[i], &kept) != STORE_OK)
            rc = replay_store_fail(err, st, "removing a folder");
    }
    free(sc.gone);
    return rc;
}

/* Discovery: from what the last full one found (kept in the store's meta,
 * for the same URL and user, at most DISCOVERY_MAX_AGE old), else the
 * whole way, whose findings are then kept. Called outside any store
 * transaction (the meta write commits on its own). */
static int
discover(struct dav_driver *dd, struct dav_collections *cols, struct sync_error *err)
{
    struct store *st = dd->base.st;
    const char *key = dd->kind == DAV_KIND_CALDAV ? "dav.caldav.where" : "dav.carddav.where";
    const char *url = dd->cfg.base_url ? dd->cfg.base_url : "";
    const char *user = dd->cfg.user ? dd->cfg.user : "";
    char *kept = NULL;
    if (store_meta_get(st, key, &kept) == STORE_OK && kept) {
        /* "TIME\nURL\nUSER\nPRINCIPAL\nDEFAULT\nHOME..." */
        char *f[5] = {0};
        char *p = kept;
        for (int i = 0; i < 5 && p; i++) {
            f[i] = p;
            p = strchr(p, '\n');
            if (p)
                *p++ = '\0';
        }
        long long at = f[0] ? strtoll(f[0], NULL, 10) : 0;
        if (p && *p && f[4] && *f[3] && strcmp(f[1], url) == 0 && strcmp(f[2], user) == 0 &&
            util_now() - at >= 0 && util_now() - at < DISCOVERY_MAX_AGE) {
            int r = dav_discover_known(dd->conn, f[3], p, *f[4] ? f[4] : NULL, cols, err);
            if (r != 0) {
                free(kept);
                return r < 0 ? -1 : 0;
            }
            log_info("%s: a home did not answer as before: discovering again", url);
        }
    }
    free(kept);
    if (dav_discover(dd->conn, cols, err) < 0)
        return -1;
    if (cols->principal && cols->homes) {
        char *v = xasprintf("%lld\n%s\n%s\n%s\n%s\n%s", (long long)util_now(), url, user,
                            cols->principal, cols->default_cal ? cols->default_cal : "",
                            cols->homes);
        if (!strchr(url, '\n') && !strchr(user, '\n') && !strchr(cols->principal, '\n') &&
            (!cols->default_cal || !strchr(cols->default_cal, '\n')) &&
            store_meta_set(st, key, v) != STORE_OK)
            log_warn("keeping what discovery found: %s", store_errmsg(st));
        free(v);
    }
    return 0;
}

static int
op_list(struct sync_driver *d, struct sync_error *err)
{
    struct dav_driver *dd = dav_driver_of(d);
    struct store *st = d->st;
    for (size_t i = 0; i < dd->ndone; i++)
        free(dd->done[i]);
    dd->ndone = 0;
    store_rollback(st);
    if (!dd->cols_fresh) {
        struct dav_collections cols = {0};
        if (discover(dd, &cols, err) < 0)
            return -1;
        dav_collections_free(&dd->cols);
        dd->cols = cols;
    }
    dd->cols_fresh = false;
    if (store_begin(st) != STORE_OK)
        return replay_store_fail(err, st, "starting a transaction");
    int rc = 0;
    for (int k = STORE_KIND_EVENTS; k <= STORE_KIND_CONTACTS && rc == 0; k++)
        if (dd->kinds & (1u << k))
            rc = list_kind(dd, (enum store_kind)k, err);
    if (rc < 0) {
        store_rollback(st);
        return -1;
    }
    if (store_commit(st) != STORE_OK)
        return replay_store_fail(err, st, "committing the folder list");
    committed(dd);
    return 0;
}

static bool
op_maybe_changed(struct sync_driver *d, const struct store_folder *f)
{
    struct dav_driver *dd = dav_driver_of(d);
    if (!f->server_name)
        return false;
    for (size_t i = 0; i < dd->ndone; i++)
        if (strcmp(dd->done[i], f->server_name) == 0)
            return false;
    const struct dav_collection *c = col_find(dd, f->server_name);
    /* The collection's token from discovery equals the one stored after the
     * last complete sync: nothing changed, no request needed. */
    return !(c && c->sync_token && f->sync_token && f->last_sync &&
             strcmp(c->sync_token, f->sync_token) == 0);
}

/* ---- one collection ---- */

/* A member the server reported: etag NULL when it was removed. */
struct change {
    char *href;
    char *etag;
    size_t seq; /* order of arrival: ties sort by it, so the last report wins */
};

struct listing {
    struct change *v;
    size_t n, alloc;
};

static int
add_change(void *ctx, const char *href, const char *etag, struct sync_error *err)
{
    (void)err;
    struct listing *l = ctx;
    if (l->n == l->alloc) {
        l->alloc = l->alloc ? l->alloc * 2 : 256;
        l->v = xrealloc(l->v, l->alloc * sizeof *l->v);
    }
    l->v[l->n] = (struct change){xstrdup(href), etag ? xstrdup(etag) : NULL, l->n};
    l->n++;
    return 0;
}

static void
listing_free(struct listing *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].href);
        free(l->v[i].etag);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int
cmp_change(const void *a, const void *b)
{
    const struct change *x = a, *y = b;
    int c = strcmp(x->href, y->href);
    if (c)
        return c;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* What the store has of a collection: href -> item, sorted by href. */
struct local {
    char *href;
    char *etag;
    int64_t id;
    bool seen; /* in the server's full listing */
};

struct collection {
    const char *href;                   /* borrowed */
    int64_t rows[STORE_KIND_CONFLICTS]; /* the folder of each kind, 0 none */
    int64_t first;                      /* a row for items of no known kind */
    bool off[STORE_KIND_CONFLICTS];     /* the row's sync mode is off: leave it be */
    bool untokened;                     /* a row (not off) has no token: list whole */
    struct local *loc;                  /* owned */
    size_t nloc, aloc;
    unsigned kinds;
};

static int
collect_row(void *ctx, const struct store_folder *f)
{
    struct collection *c = ctx;
    if (!(c->kinds & (1u << f->kind)) || !f->server_name || strcmp(f->server_name, c->href))
        return 0;
    c->rows[f->kind] = f->id;
    c->off[f->kind] = store_folder_mode(f, STORE_MODE_DEFAULT) == STORE_MODE_OFF;
    if (!c->off[f->kind] && (!f->sync_token || !f->sync_token[0]))
        c->untokened = true;
    if (!c->first)
        c->first = f->id;
    return 0;
}

static int
collect_local(void *ctx, int64_t id, const char *href, const char *etag,
              enum store_item_state state)
{
    (void)state;
    struct collection *c = ctx;
    if (c->nloc == c->aloc) {
        c->aloc = c->aloc ? c->aloc * 2 : 256;
        c->loc = xrealloc(c->loc, c->aloc * sizeof *c->loc);
    }
    c->loc[c->nloc++] = (struct local){xstrdup(href), etag ? xstrdup(etag) : NULL, id, false};
    return 0;
}

static int
cmp_local(const void *a, const void *b)
{
    return strcmp(((const struct local *)a)->href, ((const struct local *)b)->href);
}

static struct local *
local_find(struct collection *c, const char *href)
{
    struct local key = {.href = (char *)href};
    if (c->nloc == 0)
        return NULL; /* c->loc may be NULL: bsearch wants an array */
    return bsearch(&key, c->loc, c->nloc, sizeof *c->loc, cmp_local);
}

static void
collection_free(struct collection *c)
{
    for (size_t i = 0; i < c->nloc; i++) {
        free(c->loc[i].href);
        free(c->loc[i].etag);
    }
    free(c->loc);
}

/* Is folder row `id` of the collection off (nothing downloaded, nothing
 * removed: what is here stays)? */
static bool
row_off(const struct collection *c, int64_t id)
{
    for (int k = 0; k < STORE_KIND_CONFLICTS; k++)
        if (c->rows[k] == id)
            return c->off[k];
    return false;
}

/* Downloads applied to the store in short transactions. */
struct apply {
    struct dav_driver *dd;
    struct collection *c;
    int64_t folder_id; /* the folder whose sync this is (progress) */
    bool txn;
    size_t in_txn;
    int64_t done, total;
    bool missing; /* the server left some asked-for item out: keep the old token */
};

static int
apply_begin(struct apply *a, struct sync_error *err)
{
    if (a->txn)
        return 0;
    struct store *st = a->dd->base.st;
    store_rollback(st);
    if (store_begin(st) != STORE_OK)
        return replay_store_fail(err, st, "starting a transaction");
    a->txn = true;
    a->in_txn = 0;
    return 0;
}

/* Commit what was applied: content files reach the disk first, so a row
 * never names a file a power cut emptied (rows are relaxed: the server sends
 * them again). */
static int
apply_commit(struct apply *a, struct sync_error *err)
{
    if (!a->txn)
        return 0;
    struct store *st = a->dd->base.st;
    a->txn = false;
    if (a->in_txn) {
        int fd = open(store_dir(st), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || syncfs(fd) < 0) {
            if (fd >= 0)
                close(fd);
            store_rollback(st);
            sync_error_set(err, SYNC_ERR_STORE, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                           "syncing the store's files failed");
            return -1;
        }
        close(fd);
    }
    if (store_commit(st) != STORE_OK)
        return replay_store_fail(err, st, "committing downloads");
    committed(a->dd);
    if (a->dd->base.host && a->dd->base.host->progress)
        a->dd->base.host->progress(a->dd->base.host, a->folder_id, a->done, a->total);
    return 0;
}

static int
apply_fail(struct apply *a, struct sync_error *err)
{
    if (a->txn)
        store_rollback(a->dd->base.st);
    a->txn = false;
    (void)err;
    return -1;
}

/* The server no longer has href: its item leaves the store, unless local
 * changes wait (the push finds out and keeps them). */
static int
apply_removed(struct apply *a, const char *href, struct sync_error *err)
{
    struct store *st = a->dd->base.st;
    struct local *l = local_find(a->c, href);
    if (!l || !l->id)
        return 0;
    struct store_item it;
    if (store_item_get(st, l->id, &it) == STORE_OK && row_off(a->c, it.folder_id))
        return 0;
    if (dav_sync_item_busy(st, l->id)) {
        a->missing = true; /* ask again until the user's change is settled */
        return 0;
    }
    if (apply_begin(a, err) < 0)
        return -1;
    enum store_status s = store_item_remove(st, l->id);
    if (s != STORE_OK && s != STORE_NOTFOUND)
        return replay_store_fail(err, st, "removing an item");
    l->id = 0;
    a->in_txn++;
    return 0;
}

static int
apply_item(void *ctx, const char *href, int status, const char *etag, const char *data,
           size_t len, struct sync_error *err)
{
    struct apply *a = ctx;
    struct dav_driver *dd = a->dd;
    struct store *st = dd->base.st;
    if (status == 0) {
        a->missing = true;
        return 0;
    }
    if (status != 200 || !data)
        return apply_removed(a, href, err);
    a->done++;
    if (apply_begin(a, err) < 0)
        return -1;
    const char *tag = etag && etag[0] ? etag : NULL;
    struct local *l = local_find(a->c, href);
    struct store_item it;
    if (l && l->id && store_item_get(st, l->id, &it) == STORE_OK) {
        if (row_off(a->c, it.folder_id))
            return 0;
        if (dav_sync_item_busy(st, l->id)) {
            a->missing = true; /* the user's version waits to be sent: ask again */
            return 0;
        }
        /* An item that changed kind (a VEVENT rewritten as a VTODO) moves to
         * the folder of its kind in the same collection. */
        struct dav_item di;
        dav_item_read(dd, href, data, len, &di);
        int64_t to = di.kind ? a->c->rows[di.kind] : 0;
        enum store_status s = STORE_OK;
        if (to && to != it.folder_id) {
            s = store_item_move(st, it.id, to, it.name, 0);
            for (unsigned n = 2; s == STORE_EXISTS && n < 1000; n++) {
                char *v = names_variant(it.name, n);
                s = store_item_move(st, it.id, to, v, 0);
                free(v);
            }
        }
        dav_item_free(&di);
        if (s != STORE_OK)
            return replay_store_fail(err, st, "moving an item");
        if (dav_sync_store_item(dd, it.id, href, tag, data, len, err) < 0)
            return -1;
    } else {
        bool leaving = false;
        if (journal_href_leaving(st, href, &leaving) != STORE_OK)
            return replay_store_fail(err, st, "reading the journal");
        if (leaving)
            return 0; /* the user deleted or moved it; the journal sends that */
        struct dav_item di;
        dav_item_read(dd, href, data, len, &di);
        int64_t folder = di.kind && a->c->rows[di.kind] ? a->c->rows[di.kind] : a->c->first;
        if (row_off(a->c, folder)) {
            dav_item_free(&di);
            return 0;
        }
        if (!di.kind)
            log_warn("dav: %s is kept as it is: %s", href, di.error);
        struct store_item_new n = {
            .folder_id = folder,
            .date = di.date,
            .wanted_name = di.name,
            .state = di.kind ? STORE_ITEM_SYNCED : STORE_ITEM_ERROR,
            .content = di.kind == STORE_KIND_NOTES ? di.text : data,
            .size = di.kind == STORE_KIND_NOTES ? di.textlen : len,
        };
        int64_t id = 0;
        enum store_status s = store_item_add(st, &n, &id, NULL);
        if (s == STORE_OK)
            s = store_item_set_dav(st, id, href, tag);
        if (s == STORE_OK && di.kind == STORE_KIND_NOTES &&
            store_sidecar_write(st, id, data, len) < 0)
            s = STORE_IO;
        if (s == STORE_OK && !di.kind)
            s = store_item_set_state(st, id, STORE_ITEM_ERROR, di.error);
        dav_item_free(&di);
        if (s != STORE_OK)
            return replay_store_fail(err, st, "adding an item");
    }
    if (++a->in_txn >= APPLY_BATCH)
        return apply_commit(a, err);
    return 0;
}

/* Fetch hrefs[0..n) by multiget in batches; an answer that fails as a whole
 * (an item past libxml2's limit) is fetched again item by item. */
static int
fetch_some(struct apply *a, const char *const *hrefs, size_t n, struct sync_error *err)
{
    struct dav_driver *dd = a->dd;
    for (size_t at = 0; at < n; at += MULTIGET_BATCH) {
        if (replay_cancelled(&dd->base, err))
            return apply_fail(a, err);
        size_t k = n - at < MULTIGET_BATCH ? n - at : MULTIGET_BATCH;
        if (apply_commit(a, err) < 0)
            return -1;
        int r = dav_multiget(dd->conn, a->c->href, hrefs + at, k, apply_item, a, err);
        if (r < 0 && err->code == SYNC_ERR_PROTOCOL && err->scope != SYNC_SCOPE_ACCOUNT) {
            apply_fail(a, err);
            log_info("dav: %s", err->msg);
            struct dynbuf body;
            dynbuf_init(&body, HTTP_MAX_BODY);
            r = 0;
            for (size_t i = at; i < at + k && r == 0; i++) {
                struct dav_result res;
                dav_result_init(&res);
                if (dav_get(dd->conn, hrefs[i], &body, &res, err) == 0) {
                    r = apply_item(a, hrefs[i], 200, res.etag ? res.etag : "", body.data,
                                   body.len, err);
                } else if (res.status == 404) {
                    r = apply_item(a, hrefs[i], 404, NULL, NULL, 0, err);
                } else if (err->scope == SYNC_SCOPE_ITEM) {
                    log_warn("dav: %s", err->msg);
                    a->missing = true;
                } else {
                    r = -1;
                }
                dav_result_free(&res);
            }
            dynbuf_free(&body);
        }
        if (r < 0)
            return apply_fail(a, err);
    }
    return apply_commit(a, err);
}

static void
mark_done(struct dav_driver *dd, const char *href)
{
    dd->done = xrealloc(dd->done, (dd->ndone + 1) * sizeof *dd->done);
    dd->done[dd->ndone++] = xstrdup(href);
}

/* Record the token (NULL: none) and the time on every row of the collection. */
static int
store_token(struct dav_driver *dd, struct collection *c, const char *token,
            struct sync_error *err)
{
    struct store *st = dd->base.st;
    store_rollback(st);
    if (store_begin(st) != STORE_OK)
        return replay_store_fail(err, st, "starting a transaction");
    for (int k = 0; k < STORE_KIND_CONFLICTS; k++) {
        struct store_folder f;
        if (!c->rows[k] || store_folder_get(st, c->rows[k], &f) != STORE_OK)
            continue;
        free(f.sync_token);
        f.sync_token = token ? xstrdup(token) : NULL;
        f.last_sync = util_now();
        free(f.error);
        f.error = NULL;
        enum store_status s = store_folder_update_sync(st, &f);
        store_folder_clear(&f);
        if (s != STORE_OK) {
            store_rollback(st);
            return replay_store_fail(err, st, "recording a sync");
        }
    }
    if (store_commit(st) != STORE_OK)
        return replay_store_fail(err, st, "recording a sync");
    return 0;
}

int
dav_sync_forget_token(struct dav_driver *dd, const char *href, struct sync_error *err)
{
    struct collection c = {.href = href, .kinds = dd->kinds};
    if (store_folder_each(dd->base.st, 0, collect_row, &c) != STORE_OK)
        return replay_store_fail(err, dd->base.st, "reading folders");
    struct store *st = dd->base.st;
    for (int k = 0; k < STORE_KIND_CONFLICTS; k++) {
        struct store_folder f;
        if (!c.rows[k] || store_folder_get(st, c.rows[k], &f) != STORE_OK)
            continue;
        free(f.sync_token);
        f.sync_token = NULL;
        enum store_status s = store_folder_update_sync(st, &f);
        store_folder_clear(&f);
        if (s != STORE_OK)
            return replay_store_fail(err, st, "forgetting a sync token");
    }
    return 0;
}

static int
sync_collection(struct dav_driver *dd, int64_t folder_id, const char *href, const char *token,
                struct sync_error *err)
{
    struct store *st = dd->base.st;
    struct collection c = {.href = href, .kinds = dd->kinds};
    struct listing l = {0};
    char *new_token = NULL;
    int rc = -1;
    if (store_folder_each(st, 0, collect_row, &c) != STORE_OK) {
        replay_store_fail(err, st, "reading folders");
        goto out;
    }
    bool all_off = true;
    for (int k = 0; k < STORE_KIND_CONFLICTS; k++)
        if (c.rows[k] && !c.off[k])
            all_off = false;
    if (all_off) {
        rc = 0;
        goto out;
    }
    bool full = !token || !token[0] || c.untokened;
    int r = dav_sync(dd->conn, href, full ? NULL : token, add_change, &l, &new_token, err);
    if (r == DAV_TOKEN_REJECTED) {
        log_info("dav: %s: the server forgot our sync token; listing it whole", href);
        listing_free(&l);
        full = true;
        r = dav_sync(dd->conn, href, NULL, add_change, &l, &new_token, err);
    }
    if (r == DAV_SYNC_UNSUPPORTED) {
        listing_free(&l);
        full = true;
        free(new_token);
        new_token = NULL;
        r = dav_list(dd->conn, href, add_change, &l, err);
    }
    if (r != 0)
        goto out;
    for (int k = 0; k < STORE_KIND_CONFLICTS; k++)
        if (c.rows[k] &&
            store_item_each_href(st, c.rows[k], collect_local, &c) != STORE_OK) {
            replay_store_fail(err, st, "reading items");
            goto out;
        }
    /* Guarded: qsort of a NULL array (an empty collection) is undefined. */
    if (c.nloc > 1)
        qsort(c.loc, c.nloc, sizeof *c.loc, cmp_local);
    /* The last report of an href counts (a change then a removal). */
    if (l.n > 1)
        qsort(l.v, l.n, sizeof *l.v, cmp_change);

    struct apply a = {.dd = dd, .c = &c, .folder_id = folder_id};
    const char **want = xcalloc(l.n + 1, sizeof *want);
    size_t nwant = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (i + 1 < l.n && strcmp(l.v[i].href, l.v[i + 1].href) == 0)
            continue; /* reported twice: the later one */
        struct local *lo = local_find(&c, l.v[i].href);
        if (lo)
            lo->seen = true;
        if (!l.v[i].etag) {
            if (apply_removed(&a, l.v[i].href, err) < 0)
                goto fail;
            continue;
        }
        if (lo && lo->etag && l.v[i].etag[0] && strcmp(lo->etag, l.v[i].etag) == 0)
            continue;
        want[nwant++] = l.v[i].href;
    }
    if (full)
        for (size_t i = 0; i < c.nloc; i++)
            if (!c.loc[i].seen && apply_removed(&a, c.loc[i].href, err) < 0)
                goto fail;
    if (apply_commit(&a, err) < 0)
        goto fail;
    a.total = (int64_t)nwant;
    if (nwant && c.nloc == 0 && full) {
        /* A first sync: everything in one answer. */
        r = dav_fetch_all(dd->conn, href, apply_item, &a, err);
        if (r < 0 && err->code == SYNC_ERR_PROTOCOL && err->scope != SYNC_SCOPE_ACCOUNT) {
            log_info("dav: %s; fetching in batches", err->msg);
            apply_fail(&a, err);
            a.done = 0;
            r = fetch_some(&a, want, nwant, err);
        } else if (r < 0) {
            apply_fail(&a, err);
        } else {
            r = apply_commit(&a, err);
        }
    } else {
        r = fetch_some(&a, want, nwant, err);
    }
    if (r < 0)
        goto fail;
    rc = a.missing ? 0 : store_token(dd, &c, new_token, err);
    if (rc == 0)
        mark_done(dd, href);
    free(want);
    goto out;
fail:
    apply_fail(&a, err);
    free(want);
out:
    free(new_token);
    listing_free(&l);
    collection_free(&c);
    return rc;
}

static int
op_sync_folder(struct sync_driver *d, int64_t folder_id, struct sync_error *err)
{
    struct dav_driver *dd = dav_driver_of(d);
    struct store *st = d->st;
    struct store_folder f;
    enum store_status s = store_folder_get(st, folder_id, &f);
    if (s == STORE_NOTFOUND)
        return 0;
    if (s != STORE_OK)
        return replay_store_fail(err, st, "reading a folder");
    int rc = 0;
    if (f.server_name && !f.local_only && (dd->kinds & (1u << f.kind))) {
        store_set_durable(st, false);
        rc = sync_collection(dd, folder_id, f.server_name, f.sync_token, err);
        store_set_durable(st, true);
    }
    store_folder_clear(&f);
    return rc;
}

/* ---- the driver ---- */

static int
op_connect(struct sync_driver *d, struct sync_error *err)
{
    struct dav_driver *dd = dav_driver_of(d);
    if (dd->conn)
        return 0;
    if (dav_open(&dd->cfg, dd->kind, &dd->conn, err) < 0)
        return -1;
    /* Discovery is the login check: it is the first request that needs the
     * password. */
    struct dav_collections cols = {0};
    if (discover(dd, &cols, err) < 0) {
        dav_close(dd->conn);
        dd->conn = NULL;
        err->scope = SYNC_SCOPE_ACCOUNT;
        return -1;
    }
    dav_collections_free(&dd->cols);
    dd->cols = cols;
    dd->cols_fresh = true;
    return 0;
}

static void
op_disconnect(struct sync_driver *d)
{
    struct dav_driver *dd = dav_driver_of(d);
    dav_close(dd->conn);
    dd->conn = NULL;
    dd->cols_fresh = false;
}

static bool
op_connected(const struct sync_driver *d)
{
    return ((const struct dav_driver *)d)->conn != NULL;
}

static int
op_push(struct sync_driver *d, struct sync_error *err)
{
    int r = dav_push(dav_driver_of(d), err);
    if (r < 0 && err->scope == SYNC_SCOPE_ACCOUNT)
        op_disconnect(d);
    return r;
}

static void
op_free(struct sync_driver *d)
{
    struct dav_driver *dd = dav_driver_of(d);
    op_disconnect(d);
    dav_collections_free(&dd->cols);
    for (size_t i = 0; i < dd->ndone; i++)
        free(dd->done[i]);
    free(dd->done);
    free(dd);
}

static const struct sync_driver_ops dav_ops_caldav = {
    .name = "caldav",
    .connect = op_connect,
    .disconnect = op_disconnect,
    .connected = op_connected,
    .push = op_push,
    .list = op_list,
    .maybe_changed = op_maybe_changed,
    .sync_folder = op_sync_folder,
    .free = op_free,
};

static const struct sync_driver_ops dav_ops_carddav = {
    .name = "carddav",
    .connect = op_connect,
    .disconnect = op_disconnect,
    .connected = op_connected,
    .push = op_push,
    .list = op_list,
    .maybe_changed = op_maybe_changed,
    .sync_folder = op_sync_folder,
    .free = op_free,
};

struct sync_driver *
dav_sync_new(const struct http_config *cfg, enum dav_kind kind, struct store *st,
             struct sync_host *host)
{
    struct dav_driver *dd = xcalloc(1, sizeof *dd);
    dd->base.ops = kind == DAV_KIND_CARDDAV ? &dav_ops_carddav : &dav_ops_caldav;
    dd->base.st = st;
    dd->base.host = host;
    dd->cfg = *cfg;
    if (host && host->cancel)
        dd->cfg.cancel = host->cancel;
    dd->kind = kind;
    dd->kinds = dav_sync_kinds(kind);
    return &dd->base;
}
