/* local: changes made through the mount, applied to the store and the
 * journal in one transaction each (see local.h). */
#include "store/local.h"
#include "store/conflict.h"
#include "store/journal.h"
#include "store/store_p.h"

#include "common/crash.h"
#include "common/util.h"
#include "formats/mutf7.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPS(...) ops_mask(__VA_ARGS__, 0)
#define Q JOURNAL_BIT(JOURNAL_QUEUED)
#define F JOURNAL_BIT(JOURNAL_INFLIGHT)

static unsigned
ops_mask(int first, ...)
{
    unsigned m = 0;
    va_list ap;
    va_start(ap, first);
    for (int op = first; op; op = va_arg(ap, int))
        m |= JOURNAL_BIT(op);
    va_end(ap);
    return m;
}

static bool
has_entry(struct store *st, int64_t item_id, unsigned ops, unsigned states,
          struct journal_entry *out, enum store_status *err)
{
    struct journal_entry e;
    enum store_status r = journal_find_item(st, item_id, ops, states, &e);
    if (r == STORE_NOTFOUND)
        return false;
    if (r != STORE_OK) {
        *err = r;
        return false;
    }
    if (out)
        *out = e;
    else
        journal_entry_clear(&e);
    return true;
}

static enum store_status
finish(struct store *st, enum store_status r, const char *what)
{
    if (r != STORE_OK) {
        store_rollback(st);
        return r;
    }
    r = store_commit(st);
    if (r == STORE_OK)
        crash_point(what);
    return r;
}

static enum store_status
add_entry(struct store *st, enum journal_op op, int64_t item_id, int64_t folder_id,
          const char *src, uint32_t uid, uint32_t uidvalidity)
{
    struct journal_entry e = {
        .op = op,
        .item_id = item_id,
        .folder_id = folder_id,
        .src = (char *)src,
        .uid = uid,
        .uidvalidity = uidvalidity,
    };
    return journal_add(st, &e, NULL);
}

/* Groupware kinds: their items live at hrefs, with ETags, not UIDs. */
static bool
is_dav(enum store_kind k)
{
    return k == STORE_KIND_EVENTS || k == STORE_KIND_TASKS || k == STORE_KIND_NOTES ||
           k == STORE_KIND_CONTACTS;
}

/* Items that live here only: conflict copies and notices. */
static bool
is_local_only(struct store *st, int64_t item_id, enum store_kind folder_kind)
{
    int64_t of;
    enum store_kind k;
    bool notice = false;
    if (folder_kind == STORE_KIND_CONFLICTS)
        return true;
    return conflict_info(st, item_id, &of, &k, &notice) == STORE_OK && notice;
}

static enum store_status
item_kind(struct store *st, int64_t item_id, enum store_kind *kind)
{
    struct store_item it;
    struct store_folder f;
    enum store_status r = store_item_get(st, item_id, &it);
    if (r == STORE_OK)
        r = store_folder_get(st, it.folder_id, &f);
    if (r == STORE_OK) {
        *kind = f.kind;
        store_folder_clear(&f);
    }
    return r;
}

/* A DAV entry acting on the item's resource (href and the ETag it was based
 * on, captured now: the row may change or go before it is sent). */
static enum store_status
add_dav_entry(struct store *st, enum journal_op op, int64_t item_id, int64_t folder_id,
              const char *href, const char *etag)
{
    struct journal_entry e = {
        .op = op,
        .item_id = item_id,
        .folder_id = folder_id,
        .href = (char *)href,
        .base = (char *)etag,
    };
    return journal_add(st, &e, NULL);
}

/* The DAV side of new content: PUT new (APPEND) or over what the server has
 * or will have once the entries before it are sent (REPLACE: the push reads
 * href and ETag from the row when it sends; without an href by then it
 * creates). */
static enum store_status
dav_content(struct store *st, const struct store_item *it)
{
    enum store_status err = STORE_OK;
    char *href = NULL, *etag = NULL;
    enum store_status r = store_item_dav(st, it->id, &href, &etag);
    unsigned uploads = OPS(JOURNAL_APPEND, JOURNAL_REPLACE);
    if (r == STORE_OK && !has_entry(st, it->id, uploads, Q, NULL, &err) && err == STORE_OK) {
        bool before = href || has_entry(st, it->id, OPS(JOURNAL_APPEND, JOURNAL_REPLACE,
                                                        JOURNAL_MOVE), Q | F, NULL, &err);
        if (err == STORE_OK)
            r = add_dav_entry(st, before ? JOURNAL_REPLACE : JOURNAL_APPEND, it->id,
                              it->folder_id, NULL, NULL);
    }
    free(href);
    free(etag);
    return r == STORE_OK ? err : r;
}

/* A DELETE of a groupware item; arg keeps the file's name for the notice,
 * should the server's version come back. */
static enum store_status
add_dav_delete(struct store *st, const struct store_item *it, const char *href,
               const char *etag)
{
    struct journal_entry e = {
        .op = JOURNAL_DELETE,
        .item_id = it->id,
        .folder_id = it->folder_id,
        .href = (char *)href,
        .base = (char *)etag,
        .arg = (char *)it->name,
    };
    return journal_add(st, &e, NULL);
}

static enum store_status
dav_delete(struct store *st, const struct store_item *it)
{
    enum store_status err = STORE_OK, r = STORE_OK;
    char *href = NULL, *etag = NULL;
    r = store_item_dav(st, it->id, &href, &etag);
    struct journal_entry mv = {0};
    if (r != STORE_OK) {
        /* nothing */
    } else if (has_entry(st, it->id, OPS(JOURNAL_APPEND), Q, NULL, &err)) {
        r = journal_drop_item(st, it->id, ~0u); /* never reached the server */
    } else if (err == STORE_OK && has_entry(st, it->id, OPS(JOURNAL_MOVE), Q, &mv, &err)) {
        /* Still where the queued move would take it from. */
        r = journal_drop_item(st, it->id, ~0u);
        if (r == STORE_OK && mv.href)
            r = add_dav_delete(st, it, mv.href, mv.base);
        journal_entry_clear(&mv);
    } else if (err == STORE_OK && href) {
        r = journal_drop_item(st, it->id, OPS(JOURNAL_REPLACE));
        if (r == STORE_OK)
            r = add_dav_delete(st, it, href, etag);
    } else if (err == STORE_OK &&
               has_entry(st, it->id, OPS(JOURNAL_APPEND, JOURNAL_REPLACE, JOURNAL_MOVE), F,
                         NULL, &err)) {
        /* Its href comes when the upload under way completes. */
        r = journal_drop_item(st, it->id, OPS(JOURNAL_REPLACE));
        if (r == STORE_OK)
            r = add_dav_delete(st, it, NULL, NULL);
    } else if (err == STORE_OK) {
        r = journal_drop_refused(st, it->id);
    }
    free(href);
    free(etag);
    return r == STORE_OK ? err : r;
}

/* A file renamed over a groupware item in its directory (how editors and
 * sed -i save) is a new version of that item, not a new item: it takes the
 * old one's href, ETag and note properties, so the upload is a PUT with
 * If-Match that notices a change on the server. false when this does not
 * apply (not groupware, nothing on the server, an upload of either under
 * way): the caller deletes the old one as usual. */
static bool
dav_successor(struct store *st, const struct store_item *old, int64_t new_id, bool force,
              enum store_status *r)
{
    enum store_kind kind = STORE_KIND_MAIL;
    enum store_status err = STORE_OK;
    if (item_kind(st, old->id, &kind) != STORE_OK || !is_dav(kind))
        return false;
    unsigned busy = OPS(JOURNAL_APPEND, JOURNAL_REPLACE, JOURNAL_MOVE);
    if (has_entry(st, old->id, busy, F, NULL, &err) || has_entry(st, new_id, busy, F, NULL, &err) ||
        has_entry(st, old->id, OPS(JOURNAL_MOVE), Q, NULL, &err) || err != STORE_OK)
        return false;
    char *href = NULL, *etag = NULL;
    if (store_item_dav(st, old->id, &href, &etag) != STORE_OK || !href) {
        free(href);
        free(etag);
        return false;
    }
    *r = journal_drop_item(st, old->id, ~0u);
    if (*r == STORE_OK)
        *r = journal_drop_refused(st, old->id);
    if (*r == STORE_OK && store_sidecar_move(st, old->id, new_id) < 0) {
        store_set_error(st, "moving a note's properties failed");
        *r = STORE_IO;
    }
    if (*r == STORE_OK)
        *r = store_item_remove(st, old->id);
    if (*r == STORE_OK)
        *r = store_item_set_dav(st, new_id, href, etag);
    /* Its upload (queued with its content) now replaces the old version. */
    if (*r == STORE_OK && !has_entry(st, new_id, OPS(JOURNAL_APPEND, JOURNAL_REPLACE), Q, NULL,
                                     &err) && err == STORE_OK)
        *r = add_dav_entry(st, JOURNAL_REPLACE, new_id, old->folder_id, NULL,
                           force ? "*" : NULL);
    if (*r == STORE_OK)
        *r = err;
    if (*r == STORE_OK)
        *r = store_item_set_state(st, new_id, STORE_ITEM_PENDING, NULL);
    free(href);
    free(etag);
    return true;
}

/* mv of a DAV item: to another collection of its kind (MOVE, or PUT there
 * and DELETE here); a note's new name is its new title (a REPLACE). */
static enum store_status
dav_rename(struct store *st, const struct store_item *it, int64_t folder_id, bool renamed,
           enum store_kind kind)
{
    enum store_status err = STORE_OK, r = STORE_OK;
    char *href = NULL, *etag = NULL;
    r = store_item_dav(st, it->id, &href, &etag);
    bool queued_new = r == STORE_OK &&
                      has_entry(st, it->id, OPS(JOURNAL_APPEND, JOURNAL_MOVE), Q, NULL, &err);
    if (r == STORE_OK && err == STORE_OK && folder_id != it->folder_id && !queued_new) {
        if (href) {
            r = add_dav_entry(st, JOURNAL_MOVE, it->id, folder_id, href, etag);
            if (r == STORE_OK)
                r = store_item_set_dav(st, it->id, NULL, NULL);
        } else if (has_entry(st, it->id, OPS(JOURNAL_APPEND, JOURNAL_REPLACE, JOURNAL_MOVE), F,
                             NULL, &err)) {
            r = add_dav_entry(st, JOURNAL_MOVE, it->id, folder_id, NULL, NULL);
        }
    }
    /* A note's file name is its title: a rename sends the new SUMMARY, after
     * the move when it moved too (the queued upload renders the name at send
     * time, so a note not yet on the server needs nothing more). */
    if (r == STORE_OK && err == STORE_OK && renamed && kind == STORE_KIND_NOTES &&
        !has_entry(st, it->id, OPS(JOURNAL_APPEND), Q, NULL, &err) && err == STORE_OK &&
        (href || has_entry(st, it->id, OPS(JOURNAL_APPEND, JOURNAL_MOVE), Q | F, NULL, &err)) &&
        err == STORE_OK) {
        if (!has_entry(st, it->id, OPS(JOURNAL_REPLACE), Q, NULL, &err) && err == STORE_OK)
            r = add_dav_entry(st, JOURNAL_REPLACE, it->id, folder_id, NULL, NULL);
    }
    if (r == STORE_OK && err == STORE_OK && it->state == STORE_ITEM_SYNCED &&
        (folder_id != it->folder_id || (renamed && kind == STORE_KIND_NOTES)))
        r = store_item_set_state(st, it->id, STORE_ITEM_PENDING, NULL);
    free(href);
    free(etag);
    return r == STORE_OK ? err : r;
}

enum store_status
local_item_create(struct store *st, int64_t folder_id, const char *name, int64_t date,
                  int64_t *id_out)
{
    enum store_status r = store_begin(st);
    if (r != STORE_OK)
        return r;
    r = store_item_create(st, folder_id, name, date, id_out);
    return finish(st, r, "create");
}

/* What will give the item its UID: an upload or move under way or queued. */
static bool
uid_coming(struct store *st, int64_t item_id, enum store_status *err)
{
    return has_entry(st, item_id, OPS(JOURNAL_APPEND, JOURNAL_REPLACE, JOURNAL_MOVE), F, NULL,
                     err) ||
           has_entry(st, item_id, OPS(JOURNAL_MOVE), Q, NULL, err);
}

enum store_status
local_item_content(struct store *st, int64_t item_id, int64_t size, int64_t date,
                   const char *message_id)
{
    enum store_status r = store_begin(st);
    if (r != STORE_OK)
        return r;
    struct store_item it;
    struct store_folder f = {0};
    r = store_item_get(st, item_id, &it);
    if (r == STORE_OK)
        r = store_folder_get(st, it.folder_id, &f);
    enum store_status err = STORE_OK;
    /* An empty file is not a message (servers refuse it): it stays local
     * until it has content; the server keeps what it had. A conflict notice
     * is never sent. */
    bool journal = r == STORE_OK && size > 0 && !is_local_only(st, item_id, f.kind);
    if (r == STORE_OK)
        r = journal_drop_refused(st, item_id);
    if (r == STORE_OK)
        r = store_item_set_content(st, item_id, size, date, message_id,
                                   journal ? STORE_ITEM_PENDING : STORE_ITEM_LOCAL);
    if (r == STORE_OK && !journal) {
        r = journal_drop_item(st, item_id, OPS(JOURNAL_APPEND, JOURNAL_REPLACE));
    } else if (r == STORE_OK && is_dav(f.kind)) {
        r = dav_content(st, &it);
    } else if (r == STORE_OK && it.uid == 0) {
        if (uid_coming(st, item_id, &err)) {
            /* Upload the new content once the UID is known. */
            if (!has_entry(st, item_id, OPS(JOURNAL_REPLACE), Q, NULL, &err) && err == STORE_OK)
                r = add_entry(st, JOURNAL_REPLACE, item_id, it.folder_id, NULL, 0, 0);
        } else if (!has_entry(st, item_id, OPS(JOURNAL_APPEND, JOURNAL_REPLACE), Q, NULL,
                              &err) &&
                   err == STORE_OK) {
            r = add_entry(st, JOURNAL_APPEND, item_id, it.folder_id, NULL, 0, 0);
        }
    } else if (r == STORE_OK) {
        if (!has_entry(st, item_id, OPS(JOURNAL_REPLACE), Q, NULL, &err) && err == STORE_OK)
            r = add_entry(st, JOURNAL_REPLACE, item_id, it.folder_id, f.server_name, it.uid,
                          f.uidvalidity);
    }
    if (r == STORE_OK)
        r = err;
    store_folder_clear(&f);
    return finish(st, r, "content");
}

enum store_status
local_item_content_placed(struct store *st, int64_t item_id)
{
    enum store_status r = store_begin(st);
    if (r != STORE_OK)
        return r;
    return finish(st, store_item_clear_staged(st, item_id), "content placed");
}

/* The journal part of deleting an item, inside the caller's transaction. */
/* checked: a deletion that yields to a change on the server since (the
 * server's version comes back); a restore from Conflicts/ deletes whatever
 * the server has now. */
static enum store_status
delete_in_txn(struct store *st, int64_t item_id, bool checked)
{
    struct store_item it;
    struct store_folder f = {0};
    enum store_status r = store_item_get(st, item_id, &it);
    if (r == STORE_OK)
        r = store_folder_get(st, it.folder_id, &f);
    enum store_status err = STORE_OK;
    struct journal_entry mv = {0};
    if (r != STORE_OK) {
        /* nothing */
    } else if (is_local_only(st, item_id, f.kind)) {
        /* a copy discarded, a notice read: the server never knew them */
    } else if (is_dav(f.kind)) {
        r = dav_delete(st, &it);
    } else if (it.uid != 0) {
        /* Queued edits of a message about to be deleted are moot. */
        r = journal_drop_item(st, item_id, OPS(JOURNAL_FLAGS, JOURNAL_REPLACE));
        /* base: the MODSEQ the user saw, then the flags the user saw (a
         * change on the server that only repeats ours is not a clash: our
         * own flag change may have reached it before a crash). */
        char *base = NULL, *seen = NULL;
        if (checked && it.modseq) {
            if (store_item_flags(st, item_id, &seen) != STORE_OK)
                seen = NULL;
            base = xasprintf("%llu %s", (unsigned long long)it.modseq, seen ? seen : "");
            free(seen);
        }
        struct journal_entry e = {
            .op = JOURNAL_DELETE,
            .item_id = item_id,
            .folder_id = it.folder_id,
            .src = f.server_name,
            .uid = it.uid,
            .uidvalidity = f.uidvalidity,
            .base = base,
            .arg = it.name, /* for a notice, should it clash */
        };
        if (r == STORE_OK)
            r = journal_add(st, &e, NULL);
        free(base);
    } else if (has_entry(st, item_id, OPS(JOURNAL_APPEND), Q, NULL, &err)) {
        /* Never reached the server: forget it entirely. */
        r = journal_drop_item(st, item_id, ~0u);
    } else if (err == STORE_OK && has_entry(st, item_id, OPS(JOURNAL_MOVE), Q, &mv, &err)) {
        /* Still where the queued move would take it from. */
        r = journal_drop_item(st, item_id, ~0u);
        if (r == STORE_OK && mv.uid)
            r = add_entry(st, JOURNAL_DELETE, item_id, it.folder_id, mv.src, mv.uid,
                          mv.uidvalidity);
        journal_entry_clear(&mv);
    } else if (err == STORE_OK && uid_coming(st, item_id, &err)) {
        r = journal_drop_item(st, item_id, OPS(JOURNAL_FLAGS, JOURNAL_REPLACE));
        if (r == STORE_OK)
            r = add_entry(st, JOURNAL_DELETE, item_id, it.folder_id, NULL, 0, 0);
    } else if (err == STORE_OK) {
        r = journal_drop_refused(st, item_id);
    }
    if (r == STORE_OK)
        r = err;
    if (r == STORE_OK)
        r = store_item_remove(st, item_id);
    store_folder_clear(&f);
    return r;
}

enum store_status
local_item_delete(struct store *st, int64_t item_id)
{
    enum store_status r = store_begin(st);
    if (r != STORE_OK)
        return r;
    return finish(st, delete_in_txn(st, item_id, true), "delete");
}

/* true when two items hold the same bytes. */
static bool
same_content(struct store *st, int64_t a, int64_t b)
{
    size_t la = 0, lb = 0;
    char *x = store_content_read(st, a, 256u << 20, &la);
    char *y = x ? store_content_read(st, b, 256u << 20, &lb) : NULL;
    bool same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

/* mv of a copy out of Conflicts/ into folder_id: the user's version goes
 * back and replaces the server's (the item it was made of, when it is in
 * that folder), whatever the server's version is now. A message that
 * differs from the server's only by its flags gives the server those flags
 * (the copy goes: the message itself is the same). In the open
 * transaction; the caller moves the row. */
static enum store_status
restore(struct store *st, struct store_item *it, int64_t folder_id, enum store_kind to_kind,
        const char *name, bool *gone)
{
    *gone = false;
    int64_t of = 0;
    enum store_kind from_kind = 0;
    bool notice = false;
    enum store_status r = conflict_info(st, it->id, &of, &from_kind, &notice);
    if (r == STORE_OK && from_kind && from_kind != to_kind) {
        store_set_error(st, "a copy goes back to a folder of the kind it came from");
        return STORE_INVALID;
    }
    struct store_item orig;
    bool have = r == STORE_OK && of && store_item_get(st, of, &orig) == STORE_OK &&
                orig.folder_id == folder_id;
    /* The item it was made of is gone (a reset synced the folder again):
     * the server's version now under the name the copy goes to is it. */
    if (r == STORE_OK && !have && store_item_lookup(st, folder_id, name, &orig) == STORE_OK)
        have = orig.id != it->id && !is_local_only(st, orig.id, to_kind);
    sqlite3_stmt *s = r == STORE_OK ? store_sql(st, "UPDATE items SET conflict_of = 0, "
                                                    "origin = NULL, origin_kind = 0 "
                                                    "WHERE id = ?1")
                                    : NULL;
    if (r == STORE_OK && !s)
        r = STORE_ERROR;
    if (r == STORE_OK) {
        sqlite3_bind_int64(s, 1, it->id);
        r = store_step_done(st, s);
    }
    if (r != STORE_OK)
        return r;
    /* A PUT without precondition: whatever the server holds now, the user chose. */
    if (have && is_dav(to_kind) && dav_successor(st, &orig, it->id, true, &r))
        return r;
    if (have && to_kind == STORE_KIND_MAIL && orig.uid && same_content(st, orig.id, it->id)) {
        /* Only the flags differed: the copy's flags go to the message. */
        char *flags = NULL;
        r = store_item_flags(st, it->id, &flags);
        if (r == STORE_OK)
            r = store_item_remove(st, it->id);
        *gone = true;
        if (r == STORE_OK) {
            struct store_folder f;
            r = store_folder_get(st, orig.folder_id, &f);
            if (r == STORE_OK) {
                char zero[] = "0"; /* no UNCHANGEDSINCE: the user's choice wins */
                r = store_item_set_flags(st, orig.id, flags, orig.modseq);
                struct journal_entry e = {
                    .op = JOURNAL_FLAGS,
                    .item_id = orig.id,
                    .folder_id = orig.folder_id,
                    .src = f.server_name,
                    .uid = orig.uid,
                    .uidvalidity = f.uidvalidity,
                    .base = zero,
                    .arg = flags,
                };
                if (r == STORE_OK)
                    r = journal_drop_item(st, orig.id, OPS(JOURNAL_FLAGS));
                if (r == STORE_OK)
                    r = journal_add(st, &e, NULL);
                if (r == STORE_OK)
                    r = store_item_set_state(st, orig.id, STORE_ITEM_PENDING, NULL);
                store_folder_clear(&f);
            }
        }
        free(flags);
        return r;
    }
    if (have)
        r = delete_in_txn(st, orig.id, false); /* the server's version makes way */
    if (r == STORE_OK)
        r = store_item_set_state(st, it->id, STORE_ITEM_PENDING, NULL);
    if (r == STORE_OK)
        r = add_entry(st, JOURNAL_APPEND, it->id, folder_id, NULL, 0, 0);
    return r;
}

enum store_status
local_item_rename(struct store *st, int64_t item_id, int64_t folder_id, const char *name,
                  bool replace)
{
    enum store_status r = store_begin(st);
    if (r != STORE_OK)
        return r;
    struct store_item it, target;
    struct store_folder src = {0};
    enum store_kind kind = STORE_KIND_MAIL, to_kind = STORE_KIND_MAIL;
    r = store_item_get(st, item_id, &it);
    if (r == STORE_OK)
        r = item_kind(st, item_id, &kind);
    if (r == STORE_OK) {
        struct store_folder tf;
        r = store_folder_get(st, folder_id, &tf);
        if (r == STORE_OK) {
            to_kind = tf.kind;
            store_folder_clear(&tf);
        }
    }
    /* A copy moved out of Conflicts/ goes back to the server. */
    bool restoring = kind == STORE_KIND_CONFLICTS && to_kind != STORE_KIND_CONFLICTS;
    bool gone = false;
    uint32_t uid = it.uid;
    if (r == STORE_OK && restoring) {
        if (!replace && store_item_lookup(st, folder_id, name, &target) == STORE_OK)
            r = STORE_EXISTS;
        else
            r = restore(st, &it, folder_id, to_kind, name, &gone);
        uid = 0;
    }
    if (r == STORE_OK && !gone) {
        enum store_status t = store_item_lookup(st, folder_id, name, &target);
        if (t == STORE_OK && target.id != item_id && !replace)
            r = STORE_EXISTS;
        else if (t == STORE_OK && target.id != item_id && folder_id == it.folder_id &&
                 dav_successor(st, &target, item_id, false, &r))
            ; /* an editor's save of a groupware item: the same item */
        else if (t == STORE_OK && target.id != item_id)
            r = delete_in_txn(st, target.id, !restoring);
        else if (t != STORE_OK && t != STORE_NOTFOUND)
            r = t;
    }
    if (r != STORE_OK || restoring) {
        /* done above */
    } else if (r == STORE_OK && (kind == STORE_KIND_CONFLICTS ||
                                 is_local_only(st, item_id, kind))) {
        /* renamed inside Conflicts/, or a notice moved: still local only */
    } else if (r == STORE_OK && is_dav(kind)) {
        r = dav_rename(st, &it, folder_id, strcmp(it.name, name) != 0, kind);
    } else if (r == STORE_OK && folder_id != it.folder_id) {
        enum store_status err = STORE_OK;
        r = store_folder_get(st, it.folder_id, &src);
        bool uploading =
            r == STORE_OK &&
            has_entry(st, item_id, OPS(JOURNAL_APPEND, JOURNAL_REPLACE), F, NULL, &err);
        if (r == STORE_OK && it.uid != 0 && !uploading) {
            char *msgid = NULL;
            r = store_item_message_id(st, item_id, &msgid);
            struct journal_entry e = {
                .op = JOURNAL_MOVE,
                .item_id = item_id,
                .folder_id = folder_id,
                .src = src.server_name,
                .uid = it.uid,
                .uidvalidity = src.uidvalidity,
                .message_id = msgid,
                .size = it.size,
            };
            if (r == STORE_OK)
                r = journal_add(st, &e, NULL);
            free(msgid);
            uid = 0;
        } else if (r == STORE_OK && uploading) {
            /* A new version is on its way to the old folder: move that one
             * once its UID is known (the old one is deleted by the edit). */
            r = add_entry(st, JOURNAL_MOVE, item_id, folder_id, NULL, 0, 0);
            uid = 0;
        } else if (r == STORE_OK &&
                   !has_entry(st, item_id, OPS(JOURNAL_APPEND, JOURNAL_MOVE), Q, NULL, &err) &&
                   err == STORE_OK &&
                   has_entry(st, item_id, OPS(JOURNAL_APPEND, JOURNAL_REPLACE, JOURNAL_MOVE), F,
                             NULL, &err)) {
            /* The UID comes when the upload or move under way completes. */
            r = add_entry(st, JOURNAL_MOVE, item_id, folder_id, NULL, 0, 0);
        }
        if (r == STORE_OK)
            r = err;
        if (r == STORE_OK && uid == 0 && it.state == STORE_ITEM_SYNCED)
            r = store_item_set_state(st, item_id, STORE_ITEM_PENDING, NULL);
    }
    if (r == STORE_OK && !gone)
        r = store_item_move(st, item_id, folder_id, name, uid);
    store_folder_clear(&src);
    return finish(st, r, "rename");
}

enum store_status
local_item_flags(struct store *st, int64_t item_id, const char *flags)
{
    enum store_status r = store_begin(st);
    if (r != STORE_OK)
        return r;
    struct store_item it;
    struct store_folder f = {0};
    enum store_status err = STORE_OK;
    r = store_item_get(st, item_id, &it);
    if (r == STORE_OK)
        r = store_folder_get(st, it.folder_id, &f);
    if (r == STORE_OK && f.kind != STORE_KIND_MAIL) {
        store_set_error(st, "only messages have flags");
        r = STORE_INVALID;
    }
    if (r == STORE_OK)
        r = store_item_set_flags(st, item_id, flags, it.modseq);
    struct journal_entry q = {0};
    bool journal = false;
    if (r != STORE_OK || is_local_only(st, item_id, f.kind)) {
        /* nothing to send */
    } else if (has_entry(st, item_id, OPS(JOURNAL_FLAGS), Q, &q, &err)) {
        /* One flag change in the queue is enough: it carries the latest. */
        free(q.arg);
        q.arg = xstrdup(flags);
        r = journal_update(st, &q);
        journal_entry_clear(&q);
        journal = true;
    } else if (err != STORE_OK) {
        /* fall through with err */
    } else if (it.uid != 0) {
        char base[32];
        snprintf(base, sizeof base, "%llu", (unsigned long long)it.modseq);
        struct journal_entry e = {
            .op = JOURNAL_FLAGS,
            .item_id = item_id,
            .folder_id = it.folder_id,
            .src = f.server_name,
            .uid = it.uid,
            .uidvalidity = f.uidvalidity,
            .base = base,
            .arg = (char *)flags,
        };
        r = journal_add(st, &e, NULL);
        journal = true;
    } else if (!has_entry(st, item_id, OPS(JOURNAL_APPEND), Q, NULL, &err) && err == STORE_OK &&
               uid_coming(st, item_id, &err)) {
        char zero[] = "0";
        struct journal_entry e = {
            .op = JOURNAL_FLAGS,
            .item_id = item_id,
            .folder_id = it.folder_id,
            .base = zero,
            .arg = (char *)flags,
        };
        r = journal_add(st, &e, NULL);
        journal = true;
    }
    if (r == STORE_OK)
        r = err;
    if (r == STORE_OK && journal && it.state == STORE_ITEM_SYNCED)
        r = store_item_set_state(st, item_id, STORE_ITEM_PENDING, NULL);
    store_folder_clear(&f);
    return finish(st, r, "flags");
}

enum store_status
local_item_date(struct store *st, int64_t item_id, int64_t date)
{
    enum store_status r = store_begin(st);
    if (r != STORE_OK)
        return r;
    return finish(st, store_item_set_date(st, item_id, date), "date");
}

/* ---- folders ---- */

struct delim_ctx {
    char delim;
};

static int
find_delim(void *ctx, const struct store_folder *f)
{
    struct delim_ctx *dc = ctx;
    if (f->delimiter && !dc->delim)
        dc->delim = f->delimiter;
    return dc->delim != 0;
}

/* The server name of a folder called `name` under parent (0: the root). */
static enum store_status
server_name_for(struct store *st, int64_t parent_id, const char *name, char own_delim,
                char **out, char *delim_out)
{
    *out = NULL;
    struct store_folder p = {0};
    char delim = own_delim;
    if (parent_id) {
        enum store_status r = store_folder_get(st, parent_id, &p);
        if (r != STORE_OK)
            return r;
        if (p.kind != STORE_KIND_MAIL || !p.server_name) {
            store_folder_clear(&p);
            store_set_error(st, "not a mail folder");
            return STORE_INVALID;
        }
        if (!delim)
            delim = p.delimiter;
    }
    if (!delim) {
        struct delim_ctx dc = {0};
        store_folder_each(st, STORE_KIND_MAIL, find_delim, &dc);
        delim = dc.delim ? dc.delim : '/';
    }
    char *enc = mutf7_encode(name);
    if (!enc || strchr(name, delim)) {
        free(enc);
        store_folder_clear(&p);
        store_set_error(st, "a folder name cannot hold '%c' on this server", delim);
        return STORE_INVALID;
    }
    *out = parent_id ? xasprintf("%s%c%s", p.server_name, delim, enc) : xstrdup(enc);
    *delim_out = delim;
    free(enc);
    store_folder_clear(&p);
    return STORE_OK;
}

static bool
name_taken(struct store *st, int64_t parent_id, const char *name, enum store_status *err)
{
    char got[NAMES_MAX + 1];
    *err = store_unique_name(st, parent_id, name, got);
    return *err == STORE_OK && strcmp(got, name) != 0;
}

/* mkdir under Calendar/, Tasks/, Notes/ or Contacts/: a new collection of
 * the parent's kind. Collections live side by side in the home set, so only
 * the top directory of a kind takes them. */
static enum store_status
dav_folder_create(struct store *st, const struct store_folder *parent, const char *name,
                  int64_t *id_out)
{
    enum store_status err = STORE_OK, r = STORE_OK;
    if (parent->parent_id != 0) {
        store_set_error(st, "collections do not nest: make it in the top directory of its kind");
        r = STORE_INVALID;
    } else if (name_taken(st, parent->id, name, &err)) {
        r = STORE_EXISTS;
    } else if (err != STORE_OK) {
        r = err;
    }
    struct store_folder f;
    memset(&f, 0, sizeof f);
    if (r == STORE_OK) {
        f.parent_id = parent->id;
        f.kind = parent->kind;
        snprintf(f.name, sizeof f.name, "%s", name);
        f.selectable = true;
        f.local_only = true;
        r = store_folder_add(st, &f);
        *id_out = f.id;
    }
    if (r == STORE_OK) {
        struct journal_entry e = {.op = JOURNAL_MKDIR, .folder_id = f.id, .arg = (char *)name};
        r = journal_add(st, &e, NULL);
    }
    return r;
}

enum store_status
local_folder_create(struct store *st, int64_t parent_id, const char *name, int64_t *id_out)
{
    enum store_status r = store_begin(st);
    if (r != STORE_OK)
        return r;
    if (parent_id) {
        struct store_folder p;
        r = store_folder_get(st, parent_id, &p);
        if (r == STORE_OK && is_dav(p.kind)) {
            r = dav_folder_create(st, &p, name, id_out);
            store_folder_clear(&p);
            return finish(st, r, "mkdir");
        }
        if (r == STORE_OK)
            store_folder_clear(&p);
        else
            return finish(st, r, "mkdir");
    }
    char *server = NULL, delim = 0;
    r = server_name_for(st, parent_id, name, 0, &server, &delim);
    enum store_status err = STORE_OK;
    if (r == STORE_OK && name_taken(st, parent_id, name, &err))
        r = STORE_EXISTS;
    if (r == STORE_OK)
        r = err;
    struct store_folder f;
    if (r == STORE_OK) {
        if (store_folder_by_server_name(st, STORE_KIND_MAIL, server, &f) == STORE_OK) {
            store_folder_clear(&f);
            r = STORE_EXISTS;
        }
    }
    if (r == STORE_OK) {
        memset(&f, 0, sizeof f);
        f.parent_id = parent_id;
        f.kind = STORE_KIND_MAIL;
        snprintf(f.name, sizeof f.name, "%s", name);
        f.server_name = server;
        f.delimiter = delim;
        f.selectable = true;
        f.local_only = true;
        r = store_folder_add(st, &f);
        *id_out = f.id;
    }
    if (r == STORE_OK) {
        struct journal_entry e = {.op = JOURNAL_MKDIR, .folder_id = f.id, .arg = server};
        r = journal_add(st, &e, NULL);
    }
    free(server);
    return finish(st, r, "mkdir");
}

static enum store_status
folder_delete_in_txn(struct store *st, int64_t folder_id)
{
    struct store_folder f;
    enum store_status r = store_folder_get(st, folder_id, &f);
    if (r != STORE_OK)
        return r;
    bool empty = false;
    r = store_folder_is_empty(st, folder_id, &empty);
    if (r == STORE_OK && !empty)
        r = STORE_EXISTS;
    if (r == STORE_OK && is_dav(f.kind) && f.parent_id == 0) {
        store_set_error(st, "the top directory of a kind stays");
        r = STORE_INVALID;
    }
    struct journal_entry mk;
    enum store_status q = STORE_NOTFOUND;
    if (r == STORE_OK)
        q = journal_find_folder(st, folder_id, OPS(JOURNAL_MKDIR), Q, &mk);
    if (r == STORE_OK && q == STORE_OK) {
        /* Never created on the server: forget it. */
        r = journal_remove(st, mk.id);
        journal_entry_clear(&mk);
    } else if (r == STORE_OK && q == STORE_NOTFOUND) {
        struct journal_entry e = {.op = JOURNAL_RMDIR, .folder_id = folder_id,
                                  .src = f.server_name};
        r = journal_add(st, &e, NULL);
    } else if (r == STORE_OK) {
        r = q;
    }
    if (r == STORE_OK)
        r = store_folder_remove(st, folder_id);
    store_folder_clear(&f);
    return r;
}

enum store_status
local_folder_delete(struct store *st, int64_t folder_id)
{
    enum store_status r = store_begin(st);
    if (r != STORE_OK)
        return r;
    return finish(st, folder_delete_in_txn(st, folder_id), "rmdir");
}

/* mv of a collection's directory: its display name changes (PROPPATCH; the
 * push reads the name and href from the row when it sends). It stays where
 * it is: collections do not nest and kinds do not mix. */
static enum store_status
dav_folder_rename(struct store *st, const struct store_folder *f, int64_t parent_id,
                  const char *name, bool replace)
{
    enum store_status r = STORE_OK;
    if (f->parent_id == 0 || parent_id != f->parent_id) {
        store_set_error(st, "a collection can only be renamed in place");
        return STORE_INVALID;
    }
    struct store_folder t;
    enum store_status e = store_folder_lookup(st, parent_id, name, &t);
    if (e == STORE_OK) {
        if (t.id != f->id)
            r = replace ? folder_delete_in_txn(st, t.id) : STORE_EXISTS;
        store_folder_clear(&t);
    } else if (e != STORE_NOTFOUND) {
        r = e;
    } else {
        struct store_item it;
        e = store_item_lookup(st, parent_id, name, &it);
        if (e == STORE_OK)
            r = STORE_EXISTS;
        else if (e != STORE_NOTFOUND)
            r = e;
    }
    struct journal_entry q;
    if (r == STORE_OK && journal_find_folder(st, f->id, OPS(JOURNAL_MKDIR, JOURNAL_RENAME), Q,
                                             &q) == STORE_OK) {
        journal_entry_clear(&q); /* what is queued sends the name it finds then */
    } else if (r == STORE_OK) {
        struct journal_entry je = {.op = JOURNAL_RENAME, .folder_id = f->id,
                                   .src = f->server_name, .arg = (char *)name};
        r = journal_add(st, &je, NULL);
    }
    if (r == STORE_OK)
        r = store_folder_rename(st, f->id, parent_id, name, f->server_name);
    return r;
}

enum store_status
local_folder_rename(struct store *st, int64_t folder_id, int64_t parent_id, const char *name,
                    bool replace)
{
    enum store_status r = store_begin(st);
    if (r != STORE_OK)
        return r;
    struct store_folder f = {0};
    char *server = NULL, delim = 0;
    r = store_folder_get(st, folder_id, &f);
    if (r == STORE_OK && is_dav(f.kind)) {
        r = dav_folder_rename(st, &f, parent_id, name, replace);
        store_folder_clear(&f);
        return finish(st, r, "rename folder");
    }
    /* Not into itself or below it. */
    for (int64_t p = parent_id; r == STORE_OK && p; ) {
        if (p == folder_id) {
            store_set_error(st, "a folder cannot move into itself");
            r = STORE_INVALID;
            break;
        }
        struct store_folder pf;
        if (store_folder_get(st, p, &pf) != STORE_OK)
            break;
        p = pf.parent_id;
        store_folder_clear(&pf);
    }
    if (r == STORE_OK)
        r = server_name_for(st, parent_id, name, f.delimiter, &server, &delim);
    if (r == STORE_OK) {
        struct store_folder t;
        enum store_status e = store_folder_lookup(st, parent_id, name, &t);
        if (e == STORE_OK && t.id != folder_id)
            r = replace ? folder_delete_in_txn(st, t.id) : STORE_EXISTS;
        else if (e == STORE_NOTFOUND) {
            struct store_item it;
            if (store_item_lookup(st, parent_id, name, &it) == STORE_OK)
                r = STORE_EXISTS;
        }
        if (e == STORE_OK)
            store_folder_clear(&t);
    }
    if (r == STORE_OK && f.server_name && strcmp(f.server_name, server) != 0) {
        struct journal_entry e = {.op = JOURNAL_RENAME, .folder_id = folder_id,
                                  .src = f.server_name, .arg = server};
        r = journal_add(st, &e, NULL);
    }
    if (r == STORE_OK)
        r = store_folder_rename(st, folder_id, parent_id, name, server);
    free(server);
    store_folder_clear(&f);
    return finish(st, r, "rename folder");
}
