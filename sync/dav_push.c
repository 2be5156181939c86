/* dav_push: the journal's changes of events, tasks, notes and contacts sent
 * to the server.
 *
 * New items go to "<collection>/<UID>.ics" (or .vcf) with If-None-Match: *,
 * so a resend after a crash can never make a second copy: the name is
 * recorded in the entry before the PUT, and a 412 on a resend means the
 * first one arrived. Edits go with If-Match on the ETag the user's version
 * was based on; a 412 there is a conflict: the entry stays (refused), the
 * item takes state "conflict" and neither side is overwritten. After every
 * write the item is read back, so the file shows what the server holds
 * (servers re-serialise; a UID may have been added).
 *
 * A file that is not a valid item is not sent: the entry is refused with the
 * reason and the item keeps its content with state "error: not valid
 * iCalendar: ..." until the user fixes it (the close itself succeeds: an
 * editor's save must never lose the text). */
#include "sync/dav_sync_p.h"

#include "common/log.h"
#include "common/util.h"
#include "formats/ical.h"
#include "formats/note.h"
#include "formats/vcard.h"
#include "store/conflict.h"
#include "store/journal.h"
#include "sync/replay.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An item above this is refused locally rather than held in memory. */
#define ITEM_MAX (ICAL_SIZE_MAX)

static const char *
content_type(const struct dav_driver *dd)
{
    return dd->kind == DAV_KIND_CARDDAV ? "text/vcard; charset=utf-8"
                                        : "text/calendar; charset=utf-8";
}

static const char *
extension(const struct dav_driver *dd)
{
    return dd->kind == DAV_KIND_CARDDAV ? ".vcf" : ".ics";
}

/* A resource name from a UID when it is plainly safe in a URL and on every
 * server, else a fresh UUID. */
static char *
resource_name(const struct dav_driver *dd, const char *uid)
{
    bool ok = uid && uid[0] && uid[0] != '.' && strlen(uid) <= 128;
    for (const char *p = uid; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || strchr("@._-+", *p);
    if (ok)
        return xasprintf("%s%s", uid, extension(dd));
    char u[37];
    dav_sync_uuid(u);
    return xasprintf("%s%s", u, extension(dd));
}

/* The parent collection of an item's href (owned). */
static char *
parent_of(const char *href)
{
    size_t n = strlen(href);
    while (n > 0 && href[n - 1] == '/')
        n--;
    while (n > 0 && href[n - 1] != '/')
        n--;
    return xstrndup(href, n);
}

static const char *
last_segment(const char *href)
{
    const char *s = strrchr(href, '/');
    return s ? s + 1 : href;
}

/* true when name is `base` or one of its variants "stem (N).ext". */
static bool
same_or_variant(const char *name, const char *base)
{
    if (strcmp(name, base) == 0)
        return true;
    const char *dot = strrchr(base, '.');
    size_t stem = dot ? (size_t)(dot - base) : strlen(base);
    const char *ext = base + stem;
    size_t n = strlen(name), e = strlen(ext);
    if (n < stem + e + 4 || strncmp(name, base, stem) != 0 || strcmp(name + n - e, ext) != 0)
        return false;
    const char *p = name + stem, *end = name + n - e;
    if (p[0] != ' ' || p[1] != '(' || end[-1] != ')')
        return false;
    for (p += 2; p < end - 1; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    return p > name + stem + 2;
}

/* ---- building what is sent ---- */

struct body {
    char *data; /* owned */
    size_t len;
    char *uid;  /* owned: the item's UID (names a new resource) */
};

static void
body_free(struct body *b)
{
    free(b->data);
    free(b->uid);
    memset(b, 0, sizeof *b);
}

/* The note's iCalendar text for its file `text` (the item's name is its
 * title when the user renamed it). old: the server's version, or NULL. */
static int
note_body(const struct store_item *it, const char *old, size_t oldlen, const char *text,
          size_t len, struct body *out, char **why)
{
    char *title = NULL;
    if (!old) {
        title = names_title_from_file(it->name);
    } else {
        char *t = note_title(old, oldlen);
        char *shown = names_note(t);
        if (!same_or_variant(it->name, shown))
            title = names_title_from_file(it->name);
        free(shown);
        free(t);
    }
    char u[37];
    dav_sync_uuid(u);
    out->data = note_update(old, old ? oldlen : 0, title, text, len, u, &out->len);
    free(title);
    if (!out->data) {
        *why = xstrdup(memchr(text, '\0', len) ? "a note cannot hold a NUL byte"
                                               : "the note cannot be written");
        return -1;
    }
    struct ical_info ii;
    if (ical_parse(out->data, out->len, &ii, NULL) == 0) {
        out->uid = ii.uid;
        ii.uid = NULL;
        ical_info_free(&ii);
    }
    return 0;
}

static int
ical_body(const char *data, size_t len, struct body *out, char **why)
{
    struct ical_info ii;
    char *perr = NULL;
    if (ical_parse(data, len, &ii, &perr) < 0) {
        *why = xasprintf("not valid iCalendar: %s", perr ? perr : "unreadable");
        free(perr);
        return -1;
    }
    char u[37];
    dav_sync_uuid(u);
    if (ii.uid_missing || !ii.uid) {
        out->data = ical_with_uid(data, len, ii.uid ? ii.uid : u, &out->len);
        out->uid = xstrdup(ii.uid ? ii.uid : u);
    } else {
        out->data = xstrndup(data, len); /* parsed: holds no NUL */
        out->len = len;
        out->uid = xstrdup(ii.uid);
    }
    ical_info_free(&ii);
    if (!out->data) {
        *why = xstrdup("not valid iCalendar: a UID cannot be added");
        return -1;
    }
    return 0;
}

static int
vcard_body(const char *data, size_t len, struct body *out, char **why)
{
    struct vcard_info vi;
    char *perr = NULL;
    if (vcard_parse(data, len, &vi, &perr) < 0) {
        *why = xasprintf("not a valid vCard: %s", perr ? perr : "unreadable");
        free(perr);
        return -1;
    }
    if (vi.uid && vi.uid[0]) {
        out->data = xstrndup(data, len); /* parsed: holds no NUL */
        out->len = len;
        out->uid = xstrdup(vi.uid);
    } else {
        char u[37];
        dav_sync_uuid(u);
        out->data = vcard_with_uid(data, len, u, &out->len);
        out->uid = xstrdup(u);
    }
    vcard_info_free(&vi);
    if (!out->data) {
        *why = xstrdup("not a valid vCard: a UID cannot be added");
        return -1;
    }
    return 0;
}

/* GET href into *data (reset) with its ETag in *etag (owned, may be NULL). */
static int
read_back(struct dav_driver *dd, const char *href, struct dynbuf *data, char **etag,
          int *status, struct sync_error *err)
{
    struct dav_result res;
    dav_result_init(&res);
    int r = dav_get(dd->conn, href, data, &res, err);
    *status = res.status;
    *etag = res.etag;
    res.etag = NULL;
    dav_result_free(&res);
    return r;
}

/* ---- a default collection where there is none ---- */

static const char *const default_slugs[] = {
    [STORE_KIND_EVENTS] = "calendar",
    [STORE_KIND_TASKS] = "tasks",
    [STORE_KIND_NOTES] = "notes",
    [STORE_KIND_CONTACTS] = "contacts",
};

/* A file saved in Calendar/ (or Tasks/, Notes/, Contacts/) of an account
 * whose server has no collection of that kind: make one, so the item has a
 * home. Its href is fixed, so a crash before it is recorded just finds it
 * again. */
static int
make_default(struct dav_driver *dd, struct store_folder *top, struct sync_error *err)
{
    char *home = dav_sync_home(dd);
    if (!home) {
        sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_ITEM, SYNC_RETRY_NEVER,
                       "the server has no collection of this kind and no home to make one in");
        return -1;
    }
    char *href = xasprintf("%s%s-mailfs/", home, default_slugs[top->kind]);
    free(home);
    struct dav_result res;
    dav_result_init(&res);
    int r = dav_mkcol(dd->conn, href, top->name, dav_sync_comp_of(top->kind), &res, err);
    if (r < 0 && res.status == 405)
        r = 0; /* there already: made by us before a crash */
    dav_result_free(&res);
    struct store *st = dd->base.st;
    if (r == 0 && replay_begin(&dd->base, err) == 0) {
        enum store_status s = store_folder_set_server_name(st, top->id, href);
        if (s == STORE_OK)
            s = store_meta_set(st, top->kind == STORE_KIND_EVENTS     ? "default.events"
                                   : top->kind == STORE_KIND_TASKS    ? "default.tasks"
                                   : top->kind == STORE_KIND_NOTES    ? "default.notes"
                                                                      : "default.contacts",
                               href);
        r = replay_end(&dd->base, s == STORE_OK ? 0 : replay_store_fail(err, st, "recording"),
                       "default collection", err);
        if (r == 0) {
            free(top->server_name);
            top->server_name = xstrdup(href);
            dd->cols_fresh = false;
        }
    } else if (r == 0) {
        r = -1;
    }
    free(href);
    return r;
}

/* ---- conflicts ---- */

/* The path of an item in the tree (owned). */
static char *
item_path(struct store *st, const struct store_item *it)
{
    char *dir = conflict_folder_path(st, it->folder_id);
    char *p = dir[0] ? xasprintf("%s/%s", dir, it->name) : xstrdup(it->name);
    free(dir);
    return p;
}

/* The user's version clashed with the server's (DESIGN section 6): it is
 * kept in Conflicts/, the server's version takes its place (server NULL:
 * the server deleted it, and the deletion stands), the user gets a notice,
 * and the entry is done (with the item's other queued changes: they were
 * made to the version now in Conflicts/). */
static int
settle_conflict(struct dav_driver *dd, struct journal_entry *e, const char *href,
                const char *etag, const struct dynbuf *server, const char *happened,
                struct sync_error *err)
{
    struct store *st = dd->base.st;
    if (replay_begin(&dd->base, err) < 0)
        return -1;
    int rc = 0;
    struct store_item it;
    enum store_status s = store_item_get(st, e->item_id, &it);
    char copy[NAMES_MAX + 1] = "";
    char *path = NULL;
    int64_t copy_id = 0;
    if (s == STORE_OK) {
        path = item_path(st, &it);
        s = conflict_keep_item(st, it.id, &copy_id, copy);
    }
    if (s == STORE_OK && !server)
        s = store_item_remove(st, it.id);
    if (s == STORE_OK && server) {
        /* (a note's properties: the copy links the old ID.src; the new one
         * is written beside, not over it) */
        rc = dav_sync_store_item(dd, it.id, href, etag, server->data, server->len, err);
    }
    if (s == STORE_OK && rc == 0) {
        s = journal_drop_item(st, e->item_id, ~0u);
        if (s == STORE_OK)
            s = conflict_notice(st, path, happened, copy);
    }
    if (rc == 0 && s != STORE_OK && s != STORE_NOTFOUND)
        rc = replay_store_fail(err, st, "keeping a conflict");
    if (rc == 0)
        rc = replay_done(&dd->base, e, err);
    /* The copy is on disk before the server's version replaces the item. */
    if (rc == 0 && store_content_sync(st) < 0) {
        sync_error_set(err, SYNC_ERR_STORE, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "syncing a conflict copy failed");
        rc = -1;
    }
    if (rc == 0)
        log_warn("conflict: %s: %s; the local version is in Conflicts/%s", path ? path : "?",
                 happened, copy);
    free(path);
    return replay_end(&dd->base, rc, "conflict", err);
}

/* ---- uploads ---- */

/* Refuse an entry in its own transaction. */
static int
refuse_now(struct dav_driver *dd, struct journal_entry *e, enum store_item_state state,
           const char *why, struct sync_error *err)
{
    if (replay_begin(&dd->base, err) < 0)
        return -1;
    return replay_end(&dd->base, replay_refuse(&dd->base, e, state, why, err), "refused", err);
}

/* Record what the server now holds at href for the item: its bytes when the
 * user did not change the item meanwhile (gen), href and ETag always; the
 * entry is done and entries queued behind it learn the href. */
static int
record_written(struct dav_driver *dd, struct journal_entry *e, int64_t gen, const char *href,
               const char *etag, const struct dynbuf *data, struct sync_error *err)
{
    struct store *st = dd->base.st;
    if (replay_begin(&dd->base, err) < 0)
        return -1;
    int rc = 0;
    int64_t now_gen = -1;
    bool staged = true;
    enum store_status s = store_item_gen(st, e->item_id, &now_gen, &staged);
    if (s == STORE_OK && data && now_gen == gen && !staged)
        rc = dav_sync_store_item(dd, e->item_id, href, etag, data->data, data->len, err);
    else if (s == STORE_OK && store_item_set_dav(st, e->item_id, href, etag) != STORE_OK)
        rc = replay_store_fail(err, st, "recording an upload");
    if (rc == 0 && journal_fill_href(st, e->item_id, href, etag) != STORE_OK)
        rc = replay_store_fail(err, st, "recording an upload");
    if (rc == 0)
        rc = replay_done(&dd->base, e, err);
    /* Other changes of the item still wait: it is not synced yet. */
    if (rc == 0 && s == STORE_OK && dav_sync_item_busy(st, e->item_id) &&
        store_item_set_state(st, e->item_id, STORE_ITEM_PENDING, NULL) != STORE_OK)
        rc = replay_store_fail(err, st, "recording an upload");
    return replay_end(&dd->base, rc, "uploaded", err);
}

static int
push_put(struct dav_driver *dd, struct journal_entry *e, struct sync_error *err)
{
    struct store *st = dd->base.st;
    bool resend = e->state == JOURNAL_INFLIGHT;
    struct store_item it;
    enum store_status s = store_item_get(st, e->item_id, &it);
    if (s == STORE_NOTFOUND) {
        if (resend && e->href && e->op == JOURNAL_APPEND) {
            /* Deleted while its first upload was under way: it may have
             * arrived; the user wants it gone. */
            struct dav_result res;
            dav_result_init(&res);
            int r = dav_delete(dd->conn, e->href, NULL, &res, err);
            int status = res.status;
            dav_result_free(&res);
            if (r < 0 && status != 404 && err->scope != SYNC_SCOPE_ITEM)
                return -1;
        }
        return replay_drop(&dd->base, e, "the item was removed", err);
    }
    struct store_folder f;
    if (s != STORE_OK || store_folder_get(st, it.folder_id, &f) != STORE_OK)
        return replay_store_fail(err, st, "reading an item to upload");
    int rc = 0;
    char *href = NULL, *etag = NULL, *content = NULL, *old = NULL, *why = NULL;
    struct body b = {0};
    struct dynbuf back;
    dynbuf_init(&back, HTTP_MAX_BODY);
    if (!(dd->kinds & (1u << f.kind))) {
        rc = replay_drop(&dd->base, e, "the item is no longer of this service", err);
        goto out;
    }
    if (!f.server_name && f.parent_id == 0 && !f.local_only) {
        if (make_default(dd, &f, err) < 0) {
            rc = err->scope == SYNC_SCOPE_ITEM
                     ? refuse_now(dd, e, STORE_ITEM_ERROR, err->msg, err)
                     : -1;
            goto out;
        }
    }
    if (!f.server_name) {
        rc = refuse_now(dd, e, STORE_ITEM_ERROR, "its collection does not exist on the server",
                        err);
        goto out;
    }
    int64_t gen = 0;
    bool staged = false;
    if (store_item_gen(st, it.id, &gen, &staged) != STORE_OK) {
        rc = replay_store_fail(err, st, "reading an item to upload");
        goto out;
    }
    if (staged)
        goto out; /* new content is being put in place: the next push sends it */
    size_t len = 0;
    content = store_content_read(st, it.id, ITEM_MAX, &len);
    if (!content) {
        rc = refuse_now(dd, e, STORE_ITEM_ERROR, "its content cannot be read (too large?)",
                        err);
        goto out;
    }
    if (store_item_dav(st, it.id, &href, &etag) != STORE_OK) {
        rc = replay_store_fail(err, st, "reading an item to upload");
        goto out;
    }
    bool creating = !href;
    /* A restore from Conflicts/ (base "*"): replaces whatever the server
     * holds now (a PUT without precondition). */
    bool force = !creating && e->base && strcmp(e->base, "*") == 0;
    int brc;
    if (f.kind == STORE_KIND_NOTES) {
        size_t oldlen = 0;
        old = store_sidecar_read(st, it.id, &oldlen);
        if (!old && href) {
            /* No copy of the server's version here (a crash lost it): read
             * it, so every property but the text survives. */
            char *tag = NULL;
            int status = 0;
            if (read_back(dd, href, &back, &tag, &status, err) == 0) {
                old = dynbuf_take(&back);
                oldlen = strlen(old);
            } else if (status != 404) {
                free(tag);
                rc = -1;
                goto out;
            }
            free(tag);
        }
        brc = note_body(&it, old, oldlen, content, len, &b, &why);
    } else if (dd->kind == DAV_KIND_CARDDAV) {
        brc = vcard_body(content, len, &b, &why);
    } else {
        brc = ical_body(content, len, &b, &why);
    }
    if (brc < 0) {
        rc = refuse_now(dd, e, STORE_ITEM_ERROR, why, err);
        goto out;
    }
    char *target;
    if (!creating) {
        target = xstrdup(href);
    } else if (resend && e->href) {
        target = xstrdup(e->href);
    } else {
        char *name = resource_name(dd, b.uid);
        target = dav_href_join(f.server_name, name, err);
        free(name);
        if (!target) {
            rc = refuse_now(dd, e, STORE_ITEM_ERROR, err->msg, err);
            goto out;
        }
    }
    /* In flight, with where it goes: the content sent is the content read
     * (a change since then waits for the next push). */
    rc = replay_begin(&dd->base, err);
    if (rc == 0) {
        int64_t g2 = -1;
        bool st2 = true;
        store_item_gen(st, it.id, &g2, &st2);
        if (g2 != gen || st2) {
            free(target);
            rc = replay_end(&dd->base, 0, "upload deferred", err);
            goto out;
        }
        e->state = JOURNAL_INFLIGHT;
        free(e->href);
        e->href = xstrdup(target);
        free(e->base);
        e->base = force ? xstrdup("*") : etag ? xstrdup(etag) : NULL;
        e->folder_id = it.folder_id;
        e->size = (int64_t)b.len;
        e->attempts++;
        if (journal_update(st, e) != STORE_OK)
            rc = replay_store_fail(err, st, "marking an upload in flight");
        rc = replay_end(&dd->base, rc, "upload in flight", err);
    }
    if (rc < 0) {
        free(target);
        goto out;
    }
    struct dav_result res;
    dav_result_init(&res);
    int r = dav_put(dd->conn, target, content_type(dd), b.data, b.len,
                    creating ? NULL : force ? "*" : etag, &res, err);
    int status = res.status;
    dav_result_free(&res);
    bool written = r == 0;
    if (!written && status == 412 && (resend || creating)) {
        /* Maybe ours already: sent before a crash (resend), or sent again
         * by libcurl itself when a kept-alive connection died before any
         * answer. A new item is ours when it was in flight (its name is
         * ours) or when the server holds exactly what we send; else another
         * item has the UID (refused below). An edit is ours when the server
         * holds exactly what we send. */
        char *tag = NULL;
        int st3 = 0;
        if (read_back(dd, target, &back, &tag, &st3, err) < 0 && (resend || st3 != 404)) {
            free(target);
            rc = st3 == 404 ? refuse_now(dd, e, STORE_ITEM_CONFLICT,
                                         "deleted on the server while being replaced", err)
                            : -1;
            goto out;
        }
        bool same = st3 != 404 && back.len == b.len && memcmp(back.data, b.data, b.len) == 0;
        written = (creating && resend) || same;
        free(tag);
    }
    if (!written) {
        if (status == 412 && creating) {
            rc = refuse_now(dd, e, STORE_ITEM_ERROR,
                            "the collection already holds an item with this UID", err);
        } else if (status == 412 || status == 404) {
            /* Changed or deleted on the server since the user's version was
             * read: the server's version wins, the user's is kept. */
            char *tag = NULL;
            int st5 = 404;
            if (status == 412 && read_back(dd, target, &back, &tag, &st5, err) < 0 &&
                st5 != 404) {
                free(target);
                rc = -1;
                goto out;
            }
            rc = st5 == 404 ? settle_conflict(dd, e, target, NULL, NULL,
                                              "it was deleted on the server after you "
                                              "changed it here; the deletion stands",
                                              err)
                            : settle_conflict(dd, e, target, tag, &back,
                                              "it was changed on the server after you "
                                              "changed it here; the server's version is in "
                                              "place",
                                              err);
            free(tag);
        } else if (err->scope == SYNC_SCOPE_ITEM && status) {
            rc = refuse_now(dd, e, STORE_ITEM_ERROR, err->msg, err);
        } else {
            rc = -1;
        }
        free(target);
        goto out;
    }
    /* Read it back: the file shows what the server holds, with its ETag. */
    char *newtag = NULL;
    int st4 = 0;
    if (read_back(dd, target, &back, &newtag, &st4, err) < 0) {
        free(target);
        rc = -1;
        goto out;
    }
    rc = record_written(dd, e, gen, target, newtag, &back, err);
    free(newtag);
    free(target);
out:
    dynbuf_free(&back);
    body_free(&b);
    free(why);
    free(old);
    free(content);
    free(href);
    free(etag);
    store_folder_clear(&f);
    return rc;
}

/* ---- deletes ---- */

static int
push_delete(struct dav_driver *dd, struct journal_entry *e, struct sync_error *err)
{
    struct store *st = dd->base.st;
    if (!e->href)
        return replay_drop(&dd->base, e, "it never reached the server", err);
    struct dav_result res;
    dav_result_init(&res);
    int r = dav_delete(dd->conn, e->href, e->base, &res, err);
    int status = res.status;
    dav_result_free(&res);
    if (r == 0 || status == 404)
        return replay_drop(&dd->base, e, NULL, err);
    if (status == 412) {
        /* Changed on the server since: its new version is not deleted; the
         * next sync lists the collection whole and brings it back. */
        log_warn("dav: %s changed on the server; not deleted", e->href);
        char *col = parent_of(e->href);
        char *dir = conflict_folder_path(st, e->folder_id);
        char *what = xasprintf("%s%s%s", dir, dir[0] ? "/" : "",
                               e->arg ? e->arg : last_segment(e->href));
        int rc = replay_begin(&dd->base, err);
        if (rc == 0)
            rc = dav_sync_forget_token(dd, col, err);
        if (rc == 0 && conflict_notice(st, what,
                                       "you deleted it here, but it was changed on the "
                                       "server; the server's version comes back",
                                       NULL) != STORE_OK)
            rc = replay_store_fail(err, st, "writing a conflict notice");
        if (rc == 0)
            rc = replay_done(&dd->base, e, err);
        rc = replay_end(&dd->base, rc, "delete dropped", err);
        free(what);
        free(dir);
        free(col);
        return rc;
    }
    if (err->scope == SYNC_SCOPE_ITEM && status)
        return refuse_now(dd, e, STORE_ITEM_ERROR, err->msg, err);
    return -1;
}

/* ---- moves ---- */

/* Where an item is on the server after a move: record it (the item keeps
 * its content: a MOVE keeps the bytes). */
static int
record_moved(struct dav_driver *dd, struct journal_entry *e, const char *href,
             const char *etag, struct sync_error *err)
{
    struct store *st = dd->base.st;
    if (replay_begin(&dd->base, err) < 0)
        return -1;
    int rc = 0;
    enum store_status s = store_item_set_dav(st, e->item_id, href, etag);
    if ((s != STORE_OK && s != STORE_NOTFOUND) ||
        journal_fill_href(st, e->item_id, href, etag) != STORE_OK)
        rc = replay_store_fail(err, st, "recording a move");
    if (rc == 0)
        rc = replay_done(&dd->base, e, err);
    return replay_end(&dd->base, rc, "moved", err);
}

static int
push_move(struct dav_driver *dd, struct journal_entry *e, struct sync_error *err)
{
    struct store *st = dd->base.st;
    if (!e->href)
        return replay_drop(&dd->base, e, "it never reached the server", err);
    struct store_item it;
    struct store_folder f = {0};
    enum store_status s = store_item_get(st, e->item_id, &it);
    if (s == STORE_OK)
        s = store_folder_get(st, it.folder_id, &f);
    if (s == STORE_NOTFOUND && e->state == JOURNAL_INFLIGHT) {
        /* Deleted while moving: the DELETE queued behind waits for where it
         * ended up: the target when it arrived there, else the source. */
        struct store_folder to;
        char *there = NULL, *tag = NULL;
        if (store_folder_get(st, e->folder_id, &to) == STORE_OK) {
            if (to.server_name)
                there = dav_href_join(to.server_name, last_segment(e->href), err);
            store_folder_clear(&to);
        }
        struct dynbuf data;
        dynbuf_init(&data, HTTP_MAX_BODY);
        int status = 0;
        int rc;
        if (there && read_back(dd, there, &data, &tag, &status, err) == 0)
            rc = record_moved(dd, e, there, tag, err);
        else if (there && status != 404)
            rc = -1;
        else
            rc = record_moved(dd, e, e->href, e->base, err);
        dynbuf_free(&data);
        free(there);
        free(tag);
        return rc;
    }
    if (s == STORE_NOTFOUND)
        return replay_drop(&dd->base, e, "the item was removed", err);
    if (s != STORE_OK)
        return replay_store_fail(err, st, "reading an item to move");
    int rc = 0;
    char *dest = NULL, *tag = NULL;
    struct dynbuf data;
    dynbuf_init(&data, HTTP_MAX_BODY);
    if (!f.server_name) {
        rc = refuse_now(dd, e, STORE_ITEM_ERROR, "its collection does not exist on the server",
                        err);
        goto out;
    }
    if (dav_href_is_member(f.server_name, e->href)) {
        rc = record_moved(dd, e, e->href, e->base, err); /* moved back: nothing to do */
        goto out;
    }
    dest = dav_href_join(f.server_name, last_segment(e->href), err);
    if (!dest) {
        rc = refuse_now(dd, e, STORE_ITEM_ERROR, err->msg, err);
        goto out;
    }
    bool resend = e->state == JOURNAL_INFLIGHT;
    rc = replay_begin(&dd->base, err);
    if (rc == 0) {
        e->state = JOURNAL_INFLIGHT;
        e->folder_id = it.folder_id;
        e->attempts++;
        rc = replay_end(&dd->base,
                        journal_update(st, e) == STORE_OK
                            ? 0
                            : replay_store_fail(err, st, "marking a move in flight"),
                        "move in flight", err);
    }
    if (rc < 0)
        goto out;
    int status = 0;
    if (resend && read_back(dd, dest, &data, &tag, &status, err) == 0) {
        /* Moved before a crash (a PUT+DELETE may have left the source). */
        struct dav_result res;
        dav_result_init(&res);
        dav_delete(dd->conn, e->href, e->base, &res, err);
        dav_result_free(&res);
        rc = record_moved(dd, e, dest, tag, err);
        goto out;
    }
    if (resend && status != 404) {
        rc = -1;
        goto out;
    }
    struct dav_result res;
    dav_result_init(&res);
    int r = dav_move(dd->conn, e->href, dest, &res, err);
    status = res.status;
    dav_result_free(&res);
    if (r == DAV_MOVE_UNSUPPORTED) {
        /* PUT the server's bytes there, then DELETE here. */
        char *srctag = NULL;
        r = read_back(dd, e->href, &data, &srctag, &status, err);
        if (r == 0) {
            dav_result_init(&res);
            r = dav_put(dd->conn, dest, content_type(dd), data.data, data.len, NULL, &res,
                        err);
            status = res.status;
            dav_result_free(&res);
        }
        if (r == 0) {
            dav_result_init(&res);
            if (dav_delete(dd->conn, e->href, srctag ? srctag : e->base, &res, err) < 0 &&
                res.status != 404) {
                log_warn("dav: %s stays where it was too: %s", e->href, err->msg);
                if (err->scope == SYNC_SCOPE_ACCOUNT) {
                    dav_result_free(&res);
                    free(srctag);
                    rc = -1;
                    goto out;
                }
            }
            dav_result_free(&res);
        }
        free(srctag);
    }
    if (r == 0) {
        int st2 = 0;
        if (read_back(dd, dest, &data, &tag, &st2, err) < 0) {
            rc = -1;
            goto out;
        }
        rc = record_moved(dd, e, dest, tag, err);
    } else if (status == 404) {
        /* Deleted on the server while the user moved it: the deletion
         * stands, the user's version is kept. */
        rc = settle_conflict(dd, e, NULL, NULL, NULL,
                             "it was deleted on the server after you moved it here; the "
                             "deletion stands",
                             err);
    } else if (status == 412) {
        rc = refuse_now(dd, e, STORE_ITEM_ERROR,
                        "an item of that name is already in the target collection", err);
    } else if (err->scope == SYNC_SCOPE_ITEM && status) {
        rc = refuse_now(dd, e, STORE_ITEM_ERROR, err->msg, err);
    } else {
        rc = -1;
    }
out:
    free(dest);
    free(tag);
    dynbuf_free(&data);
    store_folder_clear(&f);
    return rc;
}

/* ---- collections ---- */

/* A path segment for a new collection: its name in lower-case ASCII letters,
 * digits and '-', else a UUID. */
static char *
collection_slug(const char *name)
{
    char s[64];
    size_t n = 0;
    for (const char *p = name; *p && n < sizeof s - 1; p++) {
        unsigned char c = (unsigned char)*p;
        if (isalnum(c) && c < 0x80)
            s[n++] = (char)tolower(c);
        else if (n && s[n - 1] != '-')
            s[n++] = '-';
    }
    while (n && s[n - 1] == '-')
        n--;
    s[n] = '\0';
    if (n == 0) {
        char u[37];
        dav_sync_uuid(u);
        return xstrdup(u);
    }
    return xstrdup(s);
}

static int
push_mkdir(struct dav_driver *dd, struct journal_entry *e, struct sync_error *err)
{
    struct store *st = dd->base.st;
    struct store_folder f;
    enum store_status s = store_folder_get(st, e->folder_id, &f);
    if (s == STORE_NOTFOUND)
        return replay_drop(&dd->base, e, "the folder was removed", err);
    if (s != STORE_OK)
        return replay_store_fail(err, st, "reading a folder");
    int rc = 0;
    char *home = NULL, *href = NULL;
    if (f.server_name) {
        rc = replay_drop(&dd->base, e, NULL, err);
        goto out;
    }
    bool resend = e->state == JOURNAL_INFLIGHT && e->href;
    home = dav_sync_home(dd);
    if (!home && !resend) {
        if (replay_begin(&dd->base, err) == 0)
            rc = replay_end(&dd->base,
                            replay_refuse(&dd->base, e, STORE_ITEM_ERROR,
                                          "no place for new collections is known on the "
                                          "server",
                                          err),
                            "refused", err);
        goto out;
    }
    for (int attempt = 0;; attempt++) {
        if (resend) {
            href = xstrdup(e->href);
        } else {
            char *slug = collection_slug(f.name);
            char u[37];
            dav_sync_uuid(u);
            href = attempt ? xasprintf("%s%s-%.8s/", home, slug, u)
                           : xasprintf("%s%s/", home, slug);
            free(slug);
        }
        rc = replay_begin(&dd->base, err);
        if (rc == 0) {
            e->state = JOURNAL_INFLIGHT;
            free(e->href);
            e->href = xstrdup(href);
            e->attempts++;
            rc = replay_end(&dd->base,
                            journal_update(st, e) == STORE_OK
                                ? 0
                                : replay_store_fail(err, st, "marking a folder in flight"),
                            "mkdir in flight", err);
        }
        if (rc < 0)
            goto out;
        struct dav_result res;
        dav_result_init(&res);
        int r = dav_mkcol(dd->conn, href, f.name, dav_sync_comp_of(f.kind), &res, err);
        int status = res.status;
        dav_result_free(&res);
        if (r == 0 || (resend && status == 405))
            break;
        if ((status == 405 || status == 409 || status == 412) && attempt < 3) {
            free(href);
            href = NULL;
            continue; /* the name is taken: another one */
        }
        if (err->scope != SYNC_SCOPE_ACCOUNT && status) {
            if (replay_begin(&dd->base, err) == 0)
                rc = replay_end(&dd->base,
                                replay_refuse(&dd->base, e, STORE_ITEM_ERROR, err->msg, err),
                                "refused", err);
        } else {
            rc = -1;
        }
        goto out;
    }
    dd->cols_fresh = false; /* the next list must see it */
    rc = replay_begin(&dd->base, err);
    if (rc == 0) {
        s = store_folder_set_server_name(st, f.id, href);
        if (s == STORE_OK)
            s = store_folder_set_local_only(st, f.id, false);
        rc = s == STORE_OK ? replay_done(&dd->base, e, err)
                           : replay_store_fail(err, st, "recording a new collection");
        rc = replay_end(&dd->base, rc, "mkdir", err);
    }
out:
    free(home);
    free(href);
    store_folder_clear(&f);
    return rc;
}

static int
count_member(void *ctx, const char *href, const char *etag, struct sync_error *err)
{
    (void)href, (void)etag, (void)err;
    (*(size_t *)ctx)++;
    return 0;
}

static int
push_rmdir(struct dav_driver *dd, struct journal_entry *e, struct sync_error *err)
{
    if (!e->src)
        return replay_drop(&dd->base, e, "it never reached the server", err);
    /* Only what the user deleted goes: items the server has and this store
     * never saw keep the collection (it comes back with them). */
    size_t members = 0;
    if (dav_list(dd->conn, e->src, count_member, &members, err) < 0) {
        if (err->scope == SYNC_SCOPE_ACCOUNT)
            return -1;
        return replay_drop(&dd->base, e, err->msg, err);
    }
    dd->cols_fresh = false;
    if (members) {
        log_warn("dav: %s holds %zu items not seen here; it stays", e->src, members);
        return replay_drop(&dd->base, e, "the collection is not empty on the server", err);
    }
    struct dav_result res;
    dav_result_init(&res);
    int r = dav_delete(dd->conn, e->src, NULL, &res, err);
    int status = res.status;
    dav_result_free(&res);
    if (r == 0 || status == 404)
        return replay_drop(&dd->base, e, NULL, err);
    if (err->scope != SYNC_SCOPE_ACCOUNT && status)
        return refuse_now(dd, e, STORE_ITEM_ERROR, err->msg, err);
    return -1;
}

static int
push_rename(struct dav_driver *dd, struct journal_entry *e, struct sync_error *err)
{
    struct store *st = dd->base.st;
    struct store_folder f;
    enum store_status s = store_folder_get(st, e->folder_id, &f);
    if (s == STORE_NOTFOUND)
        return replay_drop(&dd->base, e, "the folder was removed", err);
    if (s != STORE_OK)
        return replay_store_fail(err, st, "reading a folder");
    int rc;
    if (!f.server_name) {
        rc = replay_drop(&dd->base, e, "its creation sends the name", err);
    } else {
        struct dav_result res;
        dav_result_init(&res);
        int r = dav_set_displayname(dd->conn, f.server_name, f.name, &res, err);
        int status = res.status;
        dav_result_free(&res);
        if (r == 0)
            rc = replay_drop(&dd->base, e, NULL, err);
        else if (err->scope != SYNC_SCOPE_ACCOUNT && status)
            rc = refuse_now(dd, e, STORE_ITEM_ERROR, err->msg, err);
        else
            rc = -1;
    }
    store_folder_clear(&f);
    return rc;
}

int
dav_push(struct dav_driver *dd, struct sync_error *err)
{
    struct store *st = dd->base.st;
    int64_t after = 0;
    for (;;) {
        if (replay_cancelled(&dd->base, err))
            return -1;
        struct journal_entry e;
        enum store_status s = journal_next(st, after, dd->kinds, &e);
        if (s == STORE_NOTFOUND)
            return 0;
        if (s != STORE_OK)
            return replay_store_fail(err, st, "reading the journal");
        int64_t next_after = e.id;
        int rc;
        switch (e.op) {
        case JOURNAL_APPEND:
        case JOURNAL_REPLACE:
            rc = push_put(dd, &e, err);
            break;
        case JOURNAL_DELETE:
            rc = push_delete(dd, &e, err);
            break;
        case JOURNAL_MOVE:
            rc = push_move(dd, &e, err);
            break;
        case JOURNAL_MKDIR:
            rc = push_mkdir(dd, &e, err);
            break;
        case JOURNAL_RMDIR:
            rc = push_rmdir(dd, &e, err);
            break;
        case JOURNAL_RENAME:
            rc = push_rename(dd, &e, err);
            break;
        default:
            rc = replay_drop(&dd->base, &e, "not an operation on groupware items", err);
            break;
        }
        journal_entry_clear(&e);
        if (rc < 0)
            return -1;
        after = next_after;
    }
}
