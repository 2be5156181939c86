/* imap_push: sending the journal to the IMAP server, in order. Uploads are
 * pipelined in batches; before anything that creates a message on the
 * server (APPEND, COPY, MOVE) the entries are marked in flight with how to
 * find the result again, so a crash between sending and recording is
 * resolved by looking, never by sending twice. A refusal is recorded on the
 * entry and its item (user.sync.state "error: ...") and the rest goes on.
 * Deletions happen only here, only for entries a user's rm or mv made, and
 * never when the folder's UIDVALIDITY no longer matches the entry's. */
#include "sync/imap_sync_p.h"
#include "sync/replay.h"

#include "common/crash.h"
#include "common/log.h"
#include "common/util.h"
#include "formats/flags.h"
#include "formats/mail.h"
#include "store/conflict.h"
#include "store/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The journal entries this driver sends. */
#define MAIL_KINDS JOURNAL_BIT(STORE_KIND_MAIL)

/* One pipelined batch of uploads: at most this many, or this many bytes. */
#define UPLOAD_BATCH 100
#define UPLOAD_BATCH_BYTES (32u << 20)
/* A message above this is refused locally rather than held in memory. */
#define UPLOAD_MAX (200u << 20)

static struct store *
store_of(struct imap_driver *id)
{
    return id->base.st;
}

static int
txn_begin(struct imap_driver *id, struct sync_error *err)
{
    return replay_begin(&id->base, err);
}

static int
txn_end(struct imap_driver *id, int rc, const char *what, struct sync_error *err)
{
    return replay_end(&id->base, rc, what, err);
}

/* Record a refusal on the entry and its item, in the open transaction. */
static int
refuse(struct imap_driver *id, struct journal_entry *e, const char *why,
       struct sync_error *err)
{
    return replay_refuse(&id->base, e, STORE_ITEM_ERROR, why, err);
}

static int
done(struct imap_driver *id, const struct journal_entry *e, struct sync_error *err)
{
    return replay_done(&id->base, e, err);
}

static int
drop_entry(struct imap_driver *id, struct journal_entry *e, const char *why,
           struct sync_error *err)
{
    return replay_drop(&id->base, e, why, err);
}

static char *
read_content(struct store *st, int64_t item_id, size_t *len)
{
    return store_content_read(st, item_id, UPLOAD_MAX, len);
}

/* ---- finding what was sent before a crash ---- */

struct find_ctx {
    struct imap_driver *id;
    int64_t folder_id;
    uint32_t hint;
    int64_t size;
    const char *message_id;
    uint32_t *cands;
    size_t n, alloc;
};

static int
find_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct find_ctx *fc = ctx;
    if (!r->name || strcmp(r->name, "FETCH") != 0 || r->args.n != 1 ||
        r->args.items[0].kind != IMAP_LIST) {
        imap_sync_note(fc->id, r);
        return 0;
    }
    const struct imap_value *a = &r->args.items[0];
    uint32_t uid, size;
    if (!imap_sync_u32(imap_fetch_item(a, "UID"), &uid) || uid < fc->hint ||
        !imap_sync_u32(imap_fetch_item(a, "RFC822.SIZE"), &size) || size != fc->size)
        return 0;
    struct store_item it;
    if (store_item_by_uid(store_of(fc->id), fc->folder_id, uid, &it) == STORE_OK)
        return 0; /* already someone's */
    if (fc->message_id) {
        const struct imap_value *h = imap_fetch_item(a, "BODY[HEADER.FIELDS (MESSAGE-ID)]");
        if (!h || h->kind != IMAP_STRING)
            return 0;
        char *mid = mail_header_get(h->data, h->len, "Message-ID");
        bool same = mid && strstr(mid, fc->message_id) != NULL;
        free(mid);
        if (!same)
            return 0;
    }
    if (fc->n == fc->alloc) {
        fc->alloc = fc->alloc ? fc->alloc * 2 : 4;
        fc->cands = xrealloc(fc->cands, fc->alloc * sizeof *fc->cands);
    }
    fc->cands[fc->n++] = uid;
    return 0;
}

struct body_ctx {
    struct imap_driver *id;
    uint32_t uid;
    char *data;
    size_t len;
};

static int
body_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct body_ctx *bc = ctx;
    if (!r->name || strcmp(r->name, "FETCH") != 0 || r->args.n != 1) {
        imap_sync_note(bc->id, r);
        return 0;
    }
    const struct imap_value *a = &r->args.items[0];
    uint32_t uid;
    const struct imap_value *b = imap_fetch_item(a, "BODY[]");
    if (!imap_sync_u32(imap_fetch_item(a, "UID"), &uid) || uid != bc->uid || !b ||
        b->kind != IMAP_STRING || bc->data)
        return 0;
    bc->data = xstrndup(b->data, b->len);
    bc->len = b->len;
    return 0;
}

/* Look in a (selected) folder for a message we may have created: UID >= hint,
 * the size we sent, our Message-ID, not mapped to another item, and, when
 * `content` is given, exactly those bytes. 0 with *uid (0: not there), -1 on
 * a connection error. */
static int
find_sent(struct imap_driver *id, int64_t folder_id, uint32_t hint, int64_t size,
          const char *message_id, const char *content, size_t content_len, uint32_t *uid,
          struct sync_error *err)
{
    *uid = 0;
    struct imap_conn *c = id->conn;
    struct find_ctx fc = {.id = id, .folder_id = folder_id, .hint = hint ? hint : 1,
                          .size = size, .message_id = message_id};
    uint32_t tag = imap_cmd(c, "UID FETCH %u:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS "
                               "(MESSAGE-ID)])",
                            fc.hint);
    if (imap_wait(c, tag, find_cb, &fc, NULL, err) < 0) {
        free(fc.cands);
        return -1;
    }
    for (size_t i = 0; i < fc.n && !*uid; i++) {
        if (!content) {
            *uid = fc.cands[i];
            break;
        }
        struct body_ctx bc = {.id = id, .uid = fc.cands[i]};
        tag = imap_cmd(c, "UID FETCH %u (UID BODY.PEEK[])", fc.cands[i]);
        if (imap_wait(c, tag, body_cb, &bc, NULL, err) < 0) {
            free(fc.cands);
            free(bc.data);
            return -1;
        }
        if (bc.data && bc.len == content_len && memcmp(bc.data, content, content_len) == 0)
            *uid = fc.cands[i];
        free(bc.data);
    }
    free(fc.cands);
    return 0;
}

/* ---- what the server says of messages, and conflicts ---- */

/* Flags the server reported back for a UID. */
struct flags_seen {
    uint32_t uid;
    uint64_t modseq;
    char *flags; /* owned */
};

struct flags_ctx {
    struct imap_driver *id;
    struct flags_seen *v; /* owned */
    size_t n, alloc;
};

static int
flags_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct flags_ctx *fc = ctx;
    if (!r->name || strcmp(r->name, "FETCH") != 0 || r->args.n != 1) {
        imap_sync_note(fc->id, r);
        return 0;
    }
    const struct imap_value *a = &r->args.items[0];
    uint32_t uid;
    const struct imap_value *fl = imap_fetch_item(a, "FLAGS");
    if (!imap_sync_u32(imap_fetch_item(a, "UID"), &uid) || !fl)
        return 0;
    if (fc->n == fc->alloc) {
        fc->alloc = fc->alloc ? fc->alloc * 2 : 16;
        fc->v = xrealloc(fc->v, fc->alloc * sizeof *fc->v);
    }
    fc->v[fc->n++] = (struct flags_seen){uid, imap_sync_modseq(a), imap_sync_flags(fl)};
    return 0;
}

/* Store what the server reported, in the open transaction. */
static int
flags_apply(struct imap_driver *id, int64_t folder_id, struct flags_ctx *fc,
            struct sync_error *err)
{
    struct store *st = store_of(id);
    for (size_t i = 0; i < fc->n; i++) {
        struct store_item it;
        if (store_item_by_uid(st, folder_id, fc->v[i].uid, &it) != STORE_OK)
            continue;
        if (store_item_set_flags(st, it.id, fc->v[i].flags, fc->v[i].modseq) != STORE_OK)
            return imap_sync_store_fail(err, st, "recording flags");
    }
    return 0;
}

/* The user's version of a message clashed with the server's: copy it into
 * Conflicts/ and leave a notice (the caller then puts the server's version
 * in place). In the open transaction. */
static int
keep_conflict(struct imap_driver *id, int64_t item_id, const char *happened,
              struct sync_error *err)
{
    struct store *st = store_of(id);
    struct store_item it;
    if (store_item_get(st, item_id, &it) != STORE_OK)
        return 0; /* gone meanwhile: nothing to keep */
    char *dir = conflict_folder_path(st, it.folder_id);
    char *path = dir[0] ? xasprintf("%s/%s", dir, it.name) : xstrdup(it.name);
    char copy[NAMES_MAX + 1];
    int64_t copy_id = 0;
    enum store_status s = conflict_keep_item(st, item_id, &copy_id, copy);
    if (s == STORE_OK)
        s = conflict_notice(st, path, happened, copy);
    if (s == STORE_OK)
        log_warn("conflict: %s: %s; the local version is in Conflicts/%s", path, happened,
                 copy);
    free(path);
    free(dir);
    return s == STORE_OK ? 0 : imap_sync_store_fail(err, st, "keeping a conflict");
}

static void
flags_ctx_free(struct flags_ctx *fc)
{
    for (size_t i = 0; i < fc->n; i++)
        free(fc->v[i].flags);
    free(fc->v);
}

/* ---- removing messages (rm, the old copy of an edit or a move) ---- */

/* Whether the server reported exactly `flags` (text as stored, any order)
 * for uid in fc: a change on the server that only repeats ours. */
static bool
server_flags_are(const struct flags_ctx *fc, uint32_t uid, const char *flags)
{
    char *want = flags_parse(flags, strlen(flags));
    bool same = false;
    for (size_t k = 0; want && k < fc->n; k++)
        if (fc->v[k].uid == uid && fc->v[k].flags && strcmp(fc->v[k].flags, want) == 0)
            same = true;
    free(want);
    return same;
}

/* f's server name as it was when journal entry entry_id was made (renames
 * queued after it are still to come and take its messages along). */
static enum store_status
name_when_queued(struct store *st, int64_t entry_id, struct store_folder *f)
{
    if (!f->server_name)
        return STORE_OK;
    char *at = NULL;
    enum store_status s = journal_name_at(st, entry_id, f->server_name, f->delimiter, &at);
    free(f->server_name);
    f->server_name = at;
    return s;
}

/* With CONDSTORE, mark each deletion that knows the MODSEQ the user saw
 * \Deleted only if unchanged since; modified[i] for those the server had
 * changed (they stay). 0 or -1. */
static int
mark_checked(struct imap_driver *id, const struct journal_entry *batch, size_t n,
             bool *modified, struct sync_error *err)
{
    struct imap_conn *c = id->conn;
    if (!imap_has(c, IMAP_CAP_CONDSTORE))
        return 0;
    uint32_t *tags = xcalloc(n, sizeof *tags);
    for (size_t i = 0; i < n; i++) {
        unsigned long long base = batch[i].base ? strtoull(batch[i].base, NULL, 10) : 0;
        if (base)
            tags[i] = imap_cmd(c, "UID STORE %u (UNCHANGEDSINCE %llu) +FLAGS.SILENT (\\Deleted)",
                               batch[i].uid, base);
    }
    int rc = 0;
    bool any = false;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!tags[i])
            continue;
        enum imap_status st;
        rc = imap_wait(c, tags[i], NULL, NULL, &st, err);
        const struct imap_response *r = imap_last_completion(c);
        if (rc == 0 && st == IMAP_ST_OK && r && r->code && strcmp(r->code, "MODIFIED") == 0)
            any = modified[i] = true;
    }
    free(tags);
    if (rc < 0 || !any)
        return rc;
    /* A change that only repeats the flags the user saw is ours (a flag
     * change sent before a crash whose answer was never recorded): the
     * deletion goes ahead. */
    struct flags_ctx fc = {.id = id};
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!modified[i])
            continue;
        uint32_t tag = imap_cmd(c, "UID FETCH %u (UID FLAGS)", batch[i].uid);
        rc = imap_wait(c, tag, flags_cb, &fc, NULL, err);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *sp = modified[i] && batch[i].base ? strchr(batch[i].base, ' ') : NULL;
        if (!sp || !server_flags_are(&fc, batch[i].uid, sp + 1))
            continue;
        log_info("delete of UID %u in %s: the server's change was ours; deleting",
                 batch[i].uid, batch[i].src);
        modified[i] = false;
        uint32_t t2 = imap_cmd(c, "UID STORE %u +FLAGS.SILENT (\\Deleted)", batch[i].uid);
        rc = imap_wait(c, t2, NULL, NULL, NULL, err);
    }
    flags_ctx_free(&fc);
    return rc;
}

/* A deletion the server's change outlived: the message comes back (the
 * folder is listed whole next), the user is told. In the open
 * transaction. */
static int
deletion_yields(struct imap_driver *id, const struct journal_entry *e, struct sync_error *err)
{
    struct store *st = store_of(id);
    char *dir = conflict_folder_path(st, e->folder_id);
    char *what = xasprintf("%s%s%s", dir, dir[0] ? "/" : "",
                           e->arg ? e->arg : "a message");
    log_warn("conflict: %s was changed on the server after you deleted it; it comes back",
             what);
    enum store_status s = conflict_notice(st, what,
                                          "you deleted it here, but it was changed on the "
                                          "server; the server's version comes back",
                                          NULL);
    free(what);
    free(dir);
    return s == STORE_OK ? 0 : imap_sync_store_fail(err, st, "writing a conflict notice");
}

/* Make the next sync of a folder compare every UID (a message the store
 * dropped must come back). In the open transaction. */
static int
resync_folder(struct imap_driver *id, const char *server_name, struct sync_error *err)
{
    struct store *st = store_of(id);
    struct store_folder f;
    if (store_folder_by_server_name(st, STORE_KIND_MAIL, server_name, &f) != STORE_OK)
        return 0;
    f.highestmodseq = 0;
    enum store_status s = store_folder_update_sync(st, &f);
    store_folder_clear(&f);
    return s == STORE_OK ? 0 : imap_sync_store_fail(err, st, "recording a folder to resync");
}

static int
search_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct dynbuf *b = ctx;
    if (r->name && (strcmp(r->name, "SEARCH") == 0)) {
        for (size_t i = 0; i < r->args.n; i++)
            if (r->args.items[i].kind == IMAP_ATOM) {
                dynbuf_add(b, r->args.items[i].data, r->args.items[i].len);
                dynbuf_addc(b, ',');
            }
    }
    return 0;
}

/* true when every UID in the comma list `found` is in the sorted uids[]. */
static bool
all_ours(const char *found, const uint32_t *uids, size_t n)
{
    const char *p = found;
    while (*p) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p)
            break;
        bool ours = false;
        for (size_t i = 0; i < n; i++)
            if (uids[i] == v)
                ours = true;
        if (!ours)
            return false;
        p = *end == ',' ? end + 1 : end;
    }
    return true;
}

/* Expunge exactly uids[] (sorted) from the selected folder. Without UIDPLUS
 * a plain EXPUNGE would also remove messages others marked \Deleted, so it
 * is used only when no other message carries the flag. 0, 1 when the server
 * refused (reason in err), -1 on a connection error. */
static int
expunge_uids(struct imap_driver *id, const uint32_t *uids, size_t n, struct sync_error *err)
{
    struct imap_conn *c = id->conn;
    struct dynbuf set;
    dynbuf_init(&set, 1 << 22);
    imap_seqset_format(&set, uids, n);
    uint32_t t1 = imap_cmd(c, "UID STORE %s +FLAGS.SILENT (\\Deleted)", set.data);
    enum imap_status st1, st2 = IMAP_ST_OK;
    int rc = imap_wait(c, t1, NULL, NULL, &st1, err);
    if (rc == 0 && st1 != IMAP_ST_OK) {
        sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_ITEM, SYNC_RETRY_NEVER, "%s",
                       imap_last_text(c));
        dynbuf_free(&set);
        return 1;
    }
    if (rc == 0 && imap_has(c, IMAP_CAP_UIDPLUS)) {
        uint32_t t2 = imap_cmd(c, "UID EXPUNGE %s", set.data);
        rc = imap_wait(c, t2, NULL, NULL, &st2, err);
    } else if (rc == 0) {
        struct dynbuf found;
        dynbuf_init(&found, 1 << 22);
        uint32_t t2 = imap_cmd(c, "UID SEARCH DELETED");
        rc = imap_wait(c, t2, search_cb, &found, &st2, err);
        if (rc == 0 && st2 == IMAP_ST_OK) {
            if (all_ours(found.data ? found.data : "", uids, n)) {
                uint32_t t3 = imap_cmd(c, "EXPUNGE");
                rc = imap_wait(c, t3, NULL, NULL, &st2, err);
            } else {
                log_warn("folder %s: other messages are marked deleted and the server has no "
                         "UIDPLUS; ours stay marked \\Deleted until they are expunged",
                         id->selected ? id->selected : "?");
            }
        }
        dynbuf_free(&found);
    }
    dynbuf_free(&set);
    if (rc < 0)
        return -1;
    if (st2 != IMAP_ST_OK) {
        sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_ITEM, SYNC_RETRY_NEVER, "%s",
                       imap_last_text(c));
        return 1;
    }
    return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* DELETE entries: e and the ones right after it in the same folder. */
static int
push_deletes(struct imap_driver *id, struct journal_entry *first, int64_t *after,
             struct sync_error *err)
{
    struct store *st = store_of(id);
    struct journal_entry *batch = xcalloc(1, sizeof *batch);
    size_t n = 1;
    batch[0] = *first;
    memset(first, 0, sizeof *first);
    for (;;) {
        struct journal_entry e;
        if (journal_next(st, batch[n - 1].id, MAIL_KINDS, &e) != STORE_OK)
            break;
        bool same = e.op == JOURNAL_DELETE && e.src && batch[0].src &&
                    strcmp(e.src, batch[0].src) == 0 && e.uidvalidity == batch[0].uidvalidity &&
                    e.uid != 0 && n < 5000;
        if (!same) {
            journal_entry_clear(&e);
            break;
        }
        batch = xrealloc(batch, (n + 1) * sizeof *batch);
        batch[n++] = e;
    }
    *after = batch[n - 1].id;
    int rc = 0;
    const char *skip = NULL;
    char why[600] = "";
    bool *modified = xcalloc(n, sizeof *modified);
    size_t n_modified = 0;
    if (!batch[0].src || batch[0].uid == 0) {
        skip = "it never reached the server";
    } else {
        struct imap_mailbox mb;
        int s = imap_sync_select(id, batch[0].src, &mb, err);
        if (s < 0) {
            rc = -1;
        } else if (s > 0) {
            snprintf(why, sizeof why, "the folder is gone (%s)", err->msg);
            skip = why;
        } else if (batch[0].uidvalidity && mb.uidvalidity != batch[0].uidvalidity) {
            /* Never delete by a UID that may now name another message. */
            skip = "the folder's UIDVALIDITY changed; nothing is deleted";
            log_warn("folder %s: %s", batch[0].src, skip);
        } else {
            /* Deletions based on a MODSEQ yield to a change on the server
             * since (DESIGN section 6: the server's version comes back). */
            rc = mark_checked(id, batch, n, modified, err);
            uint32_t *uids = xmalloc(n * sizeof *uids);
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                if (!modified[i])
                    uids[m++] = batch[i].uid;
            n_modified = n - m;
            qsort(uids, m, sizeof *uids, cmp_u32);
            size_t k = 0;
            for (size_t i = 0; i < m; i++)
                if (i == 0 || uids[i] != uids[i - 1])
                    uids[k++] = uids[i];
            int x = rc < 0 ? -1 : k ? expunge_uids(id, uids, k, err) : 0;
            free(uids);
            if (x < 0)
                rc = -1;
            else if (x > 0) {
                snprintf(why, sizeof why, "%s", err->msg);
                rc = txn_begin(id, err);
                if (rc == 0) {
                    for (size_t i = 0; rc == 0 && i < n; i++)
                        rc = refuse(id, &batch[i], why, err);
                    rc = txn_end(id, rc, "delete refused", err);
                }
                goto out;
            }
        }
    }
    if (rc == 0) {
        if (skip)
            log_info("journal: delete not sent: %s", skip);
        rc = txn_begin(id, err);
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (modified[i])
                rc = deletion_yields(id, &batch[i], err);
        if (rc == 0 && n_modified)
            rc = resync_folder(id, batch[0].src, err);
        if (rc == 0) {
            for (size_t i = 0; rc == 0 && i < n; i++)
                rc = done(id, &batch[i], err);
            rc = txn_end(id, rc, "deleted", err);
        }
    }
out:
    free(modified);
    for (size_t i = 0; i < n; i++)
        journal_entry_clear(&batch[i]);
    free(batch);
    return rc;
}

/* ---- uploads (new messages and new versions) ---- */

struct upload {
    struct journal_entry e;
    struct store_item item;
    struct store_folder folder;
    char *content;     /* owned */
    size_t len;
    char *flags;       /* owned */
    uint32_t tag;
    enum imap_status status;
    uint32_t uid, uidvalidity;
    char reason[256];
    int64_t gen;       /* of the content read */
    bool deferred;     /* changed while being read: next time */
};

static void
upload_clear(struct upload *u)
{
    journal_entry_clear(&u->e);
    store_folder_clear(&u->folder);
    free(u->content);
    free(u->flags);
}

/* Load what an upload sends. Returns 1 to send, 0 when the entry was
 * settled without sending (item gone, folder not on the server), -1. */
static int
upload_prepare(struct imap_driver *id, struct upload *u, struct sync_error *err)
{
    struct store *st = store_of(id);
    enum store_status s = store_item_get(st, u->e.item_id, &u->item);
    if (s == STORE_NOTFOUND)
        return drop_entry(id, &u->e, "the item was removed", err) < 0 ? -1 : 0;
    if (s != STORE_OK || store_folder_get(st, u->item.folder_id, &u->folder) != STORE_OK)
        return imap_sync_store_fail(err, st, "reading an item to upload");
    if (u->folder.local_only || !u->folder.server_name) {
        if (txn_begin(id, err) < 0)
            return -1;
        return txn_end(id, refuse(id, &u->e, "its folder does not exist on the server", err),
                       "upload refused", err) < 0
                   ? -1
                   : 0;
    }
    /* The folder as it was named when the upload was queued: a rename
     * queued after it comes later (and takes the message along). */
    if (name_when_queued(st, u->e.id, &u->folder) != STORE_OK)
        return imap_sync_store_fail(err, st, "reading the journal");
    bool staged = false;
    if (store_item_gen(st, u->e.item_id, &u->gen, &staged) != STORE_OK)
        return imap_sync_store_fail(err, st, "reading an item to upload");
    if (staged)
        return 2; /* new content is being put in place: the next push sends it */
    u->content = read_content(st, u->e.item_id, &u->len);
    if (!u->content) {
        if (txn_begin(id, err) < 0)
            return -1;
        return txn_end(id, refuse(id, &u->e, "its content cannot be read (too large?)", err),
                       "upload refused", err) < 0
                   ? -1
                   : 0;
    }
    if (store_item_flags(st, u->e.item_id, &u->flags) != STORE_OK)
        u->flags = xstrdup("");
    return 1;
}

/* An upload's item moved to folder_id after it was loaded: send it there.
 * 0, or -1 when that folder cannot take it now (the next push retries). */
static int
upload_refolder(struct imap_driver *id, struct upload *u, int64_t folder_id)
{
    struct store *st = store_of(id);
    struct store_folder f;
    if (store_folder_get(st, folder_id, &f) != STORE_OK)
        return -1;
    if (f.local_only || !f.server_name || name_when_queued(st, u->e.id, &f) != STORE_OK) {
        store_folder_clear(&f);
        return -1;
    }
    store_folder_clear(&u->folder);
    u->folder = f;
    u->item.folder_id = folder_id;
    return 0;
}

static int
appenduid(struct imap_conn *c, uint32_t *uidvalidity, uint32_t *uid)
{
    const struct imap_response *r = imap_last_completion(c);
    if (!r || !r->code || strcmp(r->code, "APPENDUID") != 0 || r->code_args.n != 2)
        return -1;
    if (!imap_sync_u32(&r->code_args.items[0], uidvalidity) ||
        !imap_sync_u32(&r->code_args.items[1], uid))
        return -1;
    return 0;
}

/* Record a completed upload in the open transaction. */
static int
upload_record(struct imap_driver *id, struct upload *u, struct sync_error *err)
{
    struct store *st = store_of(id);
    if (u->uid == 0) {
        log_warn("uploaded item %lld to %s but could not find its UID", (long long)u->e.item_id,
                 u->folder.server_name);
        return done(id, &u->e, err);
    }
    /* Moved to another folder while the upload was under way: the UID is
     * not its UID there; the queued move takes it (journal_fill_uid). */
    struct store_item now;
    enum store_status s = store_item_get(st, u->e.item_id, &now);
    if (s == STORE_OK && now.folder_id == u->folder.id)
        s = store_item_refresh(st, u->e.item_id, NULL, 0, u->uid, NULL);
    if (s != STORE_OK && s != STORE_NOTFOUND)
        return imap_sync_store_fail(err, st, "recording an upload");
    if (journal_fill_uid(st, u->e.item_id, u->folder.server_name, u->uid, u->uidvalidity) !=
        STORE_OK)
        return imap_sync_store_fail(err, st, "recording an upload");
    if (u->e.op == JOURNAL_REPLACE && u->e.uid != 0) {
        /* The new version is there: the old one goes next (same entry). */
        u->e.op = JOURNAL_DELETE;
        u->e.state = JOURNAL_QUEUED;
        if (journal_update(st, &u->e) != STORE_OK)
            return imap_sync_store_fail(err, st, "recording an upload");
        return 0;
    }
    return done(id, &u->e, err);
}

/* Before resending an upload that was in flight at a crash: is it there? */
static int
upload_recover(struct imap_driver *id, struct upload *u, bool *found, struct sync_error *err)
{
    *found = false;
    struct imap_mailbox mb;
    struct store_folder f;
    if (store_folder_get(store_of(id), u->e.folder_id, &f) != STORE_OK)
        return 0; /* the folder it went to is gone: send again where the item is */
    int s = imap_sync_select(id, f.server_name, &mb, err);
    if (s != 0) {
        store_folder_clear(&f);
        return s < 0 ? -1 : 0;
    }
    bool same_bytes = (int64_t)u->len == u->e.size;
    uint32_t uid = 0;
    int rc = find_sent(id, f.id, u->e.hint, u->e.size, u->e.message_id,
                       same_bytes ? u->content : NULL, u->len, &uid, err);
    if (rc == 0 && uid) {
        log_info("item %lld was uploaded before an interruption: UID %u in %s",
                 (long long)u->e.item_id, uid, f.server_name);
        u->uid = uid;
        u->uidvalidity = mb.uidvalidity;
        /* Where it went, which need not be where the item is now. */
        store_folder_clear(&u->folder);
        u->folder = f;
        *found = true;
        return rc;
    }
    store_folder_clear(&f);
    return rc;
}

struct probe {
    uint32_t uid;
    bool found;
    uint64_t modseq;
    int64_t size;
    char *flags; /* owned */
};

static int
probe_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct probe *p = ctx;
    if (!r->name || strcmp(r->name, "FETCH") != 0 || r->args.n != 1)
        return 0;
    const struct imap_value *a = &r->args.items[0];
    uint32_t uid, size;
    const struct imap_value *fl = imap_fetch_item(a, "FLAGS");
    if (!imap_sync_u32(imap_fetch_item(a, "UID"), &uid) || uid != p->uid || !fl)
        return 0;
    p->found = true;
    p->modseq = imap_sync_modseq(a);
    p->size = imap_sync_u32(imap_fetch_item(a, "RFC822.SIZE"), &size) ? size : 0;
    free(p->flags);
    p->flags = imap_sync_flags(fl);
    return 0;
}

/* An edit (REPLACE) of a message that the server deleted, or whose flags it
 * changed, since the user's version was based on it: the server's version
 * wins (DESIGN section 6) and the user's goes to Conflicts/. Returns 1 when
 * settled here (its entries are gone), 0 to upload, -1. */
static int
replace_check(struct imap_driver *id, struct upload *u, struct sync_error *err)
{
    struct imap_conn *c = id->conn;
    struct store *st = store_of(id);
    if (u->e.op != JOURNAL_REPLACE || u->e.state != JOURNAL_QUEUED || !u->e.uid || !u->e.src)
        return 0;
    struct imap_mailbox mb;
    int s = imap_sync_select(id, u->e.src, &mb, err);
    if (s < 0)
        return -1;
    if (s > 0 || (u->e.uidvalidity && mb.uidvalidity != u->e.uidvalidity))
        return 0; /* cannot tell: the upload goes, the old copy's removal decides */
    bool condstore = imap_has(c, IMAP_CAP_CONDSTORE);
    struct probe p = {.uid = u->e.uid};
    enum imap_status status;
    uint32_t tag = imap_cmd(c, "UID FETCH %u (UID FLAGS RFC822.SIZE%s)", u->e.uid,
                            condstore ? " MODSEQ" : "");
    if (imap_wait(c, tag, probe_cb, &p, &status, err) < 0) {
        free(p.flags);
        return -1;
    }
    bool changed = p.found && condstore && u->item.modseq && p.modseq > u->item.modseq;
    if (status != IMAP_ST_OK || (p.found && !changed)) {
        free(p.flags);
        return 0;
    }
    int rc = txn_begin(id, err);
    if (rc == 0)
        rc = keep_conflict(id, u->e.item_id,
                           p.found ? "its flags were changed on the server after you changed "
                                     "the message here; the server's version stands"
                                   : "it was deleted on the server after you changed it "
                                     "here; the deletion stands",
                           err);
    enum store_status ss = STORE_OK;
    if (rc == 0 && !p.found)
        ss = store_item_remove(st, u->e.item_id);
    if (rc == 0 && p.found) {
        ss = store_item_refetch(st, u->e.item_id, p.size);
        if (ss == STORE_OK)
            ss = store_item_set_flags(st, u->e.item_id, p.flags, p.modseq);
    }
    if (rc == 0 && ss == STORE_OK)
        ss = journal_drop_item(st, u->e.item_id, ~0u);
    if (rc == 0 && ss != STORE_OK)
        rc = imap_sync_store_fail(err, st, "settling a conflict");
    if (rc == 0 && store_content_sync(st) < 0)
        rc = imap_sync_store_fail(err, st, "syncing a conflict copy");
    free(p.flags);
    rc = txn_end(id, rc, "conflict", err);
    return rc < 0 ? -1 : 1;
}

static int
push_uploads(struct imap_driver *id, struct journal_entry *first, int64_t *after,
             bool *deferred, struct sync_error *err)
{
    struct store *st = store_of(id);
    struct imap_conn *c = id->conn;
    struct upload *ups = NULL;
    size_t n = 0, bytes = 0;
    int rc = 0;
    struct journal_entry e = *first;
    memset(first, 0, sizeof *first);
    /* Gather a batch: consecutive uploads, each loaded. */
    for (;;) {
        *after = e.id;
        if (e.op == JOURNAL_REPLACE && e.uid == 0 && e.state == JOURNAL_QUEUED) {
            /* What it was to replace never got a UID: it is a new upload. */
            e.op = JOURNAL_APPEND;
        }
        ups = xrealloc(ups, (n + 1) * sizeof *ups);
        struct upload *u = &ups[n];
        memset(u, 0, sizeof *u);
        u->e = e;
        int p = upload_prepare(id, u, err);
        if (p < 0) {
            rc = -1;
            n++;
            break;
        }
        if (p == 0 || p == 2) {
            if (p == 2)
                *deferred = true;
            upload_clear(u);
        } else {
            bytes += u->len;
            n++;
        }
        if (n >= UPLOAD_BATCH || bytes >= UPLOAD_BATCH_BYTES)
            break;
        if (journal_next(st, *after, MAIL_KINDS, &e) != STORE_OK)
            break;
        if (e.op != JOURNAL_APPEND && e.op != JOURNAL_REPLACE) {
            journal_entry_clear(&e);
            break;
        }
    }

    /* Uploads in flight at a crash: find them before sending again. */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct upload *u = &ups[i];
        if (u->e.state != JOURNAL_INFLIGHT)
            continue;
        bool found = false;
        rc = upload_recover(id, u, &found, err);
        if (rc == 0 && found) {
            u->status = IMAP_ST_OK;
            u->tag = UINT32_MAX; /* settled */
        }
    }

    /* Edits of messages the server deleted or changed since: conflicts. */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct upload *u = &ups[i];
        if (u->tag == UINT32_MAX)
            continue;
        int x = replace_check(id, u, err);
        if (x < 0)
            rc = -1;
        else if (x > 0)
            u->tag = UINT32_MAX, u->deferred = true; /* settled: nothing to record */
    }

    /* Mark in flight, with how to find each one again. */
    bool began = false;
    if (rc == 0)
        began = (rc = txn_begin(id, err)) == 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct upload *u = &ups[i];
        if (u->tag == UINT32_MAX)
            continue;
        /* A local change committed since the content was read: this
         * transaction and that one are ordered, so checking here means the
         * bytes and flags sent are the item's (a later change sees the
         * upload in flight and queues its own). */
        int64_t gen = -1;
        bool staged = true;
        store_item_gen(st, u->e.item_id, &gen, &staged);
        /* Moved to another folder since it was read: the move was journaled
         * against the old UID, so the new version goes where the item is
         * now (as if the move had come first). */
        struct store_item now;
        bool moved = false;
        if (store_item_get(st, u->e.item_id, &now) != STORE_OK)
            moved = true; /* gone: the next push drops it */
        else if (now.folder_id != u->item.folder_id)
            moved = upload_refolder(id, u, now.folder_id) != 0;
        if (gen != u->gen || staged || moved) {
            u->deferred = true;
            u->tag = UINT32_MAX;
            *deferred = true;
            continue;
        }
        free(u->flags);
        if (store_item_flags(st, u->e.item_id, &u->flags) != STORE_OK)
            u->flags = xstrdup("");
        u->e.state = JOURNAL_INFLIGHT;
        u->e.folder_id = u->item.folder_id;
        u->e.hint = u->folder.uidnext ? u->folder.uidnext : 1;
        free(u->e.message_id);
        u->e.message_id = NULL;
        store_item_message_id(st, u->e.item_id, &u->e.message_id);
        u->e.size = (int64_t)u->len;
        u->e.attempts++;
        if (journal_update(st, &u->e) != STORE_OK)
            rc = imap_sync_store_fail(err, st, "marking uploads in flight");
    }
    if (began)
        rc = txn_end(id, rc, "uploads in flight", err);

    /* Send them all, then read the answers. */
    struct dynbuf fl;
    dynbuf_init(&fl, 1 << 20);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct upload *u = &ups[i];
        if (u->tag == UINT32_MAX)
            continue;
        imap_cmd_begin(c);
        imap_cmd_add(c, "APPEND ");
        imap_cmd_add_astring(c, u->folder.server_name);
        if (u->flags[0]) {
            dynbuf_reset(&fl);
            flags_to_imap(&fl, u->flags);
            imap_cmd_add(c, " %s", fl.data);
        }
        imap_cmd_add(c, " ");
        imap_cmd_add_literal(c, u->content, u->len);
        u->tag = imap_cmd_end(c);
    }
    dynbuf_free(&fl);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct upload *u = &ups[i];
        if (u->tag == UINT32_MAX)
            continue;
        rc = imap_wait(c, u->tag, NULL, NULL, &u->status, err);
        if (rc < 0)
            break;
        if (u->status == IMAP_ST_OK) {
            if (appenduid(c, &u->uidvalidity, &u->uid) < 0)
                u->uid = 0;
        } else {
            snprintf(u->reason, sizeof u->reason, "%s", imap_last_text(c));
        }
    }
    /* Without APPENDUID, look for each one. */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct upload *u = &ups[i];
        if (u->tag == UINT32_MAX || u->status != IMAP_ST_OK || u->uid || u->deferred)
            continue;
        struct imap_mailbox mb;
        int s = imap_sync_select(id, u->folder.server_name, &mb, err);
        if (s < 0) {
            rc = -1;
            break;
        }
        if (s == 0) {
            u->uidvalidity = mb.uidvalidity;
            rc = find_sent(id, u->folder.id, u->e.hint, (int64_t)u->len, u->e.message_id,
                           u->content, u->len, &u->uid, err);
        }
    }

    /* Record every result at once. */
    began = false;
    if (rc == 0)
        began = (rc = txn_begin(id, err)) == 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct upload *u = &ups[i];
        if (u->deferred)
            continue;
        if (u->status == IMAP_ST_OK)
            rc = upload_record(id, u, err);
        else
            rc = refuse(id, &u->e, u->reason[0] ? u->reason : "APPEND refused", err);
    }
    if (began)
        rc = txn_end(id, rc, "uploads recorded", err);
    for (size_t i = 0; i < n; i++)
        upload_clear(&ups[i]);
    free(ups);
    return rc;
}

/* ---- moves ---- */

struct copyuid_ctx {
    struct imap_driver *id;
    uint32_t uidvalidity, uid;
};

static void
parse_copyuid(const struct imap_response *r, struct copyuid_ctx *cc)
{
    if (!r->code || strcmp(r->code, "COPYUID") != 0 || r->code_args.n != 3)
        return;
    uint32_t v, u;
    if (imap_sync_u32(&r->code_args.items[0], &v) && imap_sync_u32(&r->code_args.items[2], &u)) {
        cc->uidvalidity = v;
        cc->uid = u;
    }
}

static int
copyuid_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct copyuid_ctx *cc = ctx;
    if (r->status == IMAP_ST_OK)
        parse_copyuid(r, cc);
    else
        imap_sync_note(cc->id, r);
    return 0;
}

struct exists_ctx {
    struct imap_driver *id;
    bool present;
};

static int
exists_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct exists_ctx *ec = ctx;
    if (r->name && strcmp(r->name, "FETCH") == 0 && r->args.n == 1) {
        char *flags = imap_sync_flags(imap_fetch_item(&r->args.items[0], "FLAGS"));
        ec->present = !strstr(flags, "deleted");
        free(flags);
    } else {
        imap_sync_note(ec->id, r);
    }
    return 0;
}

/* A move whose item was deleted after it was queued: delete the message
 * where it still is. */
static int
move_became_delete(struct imap_driver *id, struct journal_entry *e, struct sync_error *err)
{
    struct store *st = store_of(id);
    e->op = JOURNAL_DELETE;
    e->state = JOURNAL_QUEUED;
    if (txn_begin(id, err) < 0)
        return -1;
    if (journal_update(st, e) != STORE_OK)
        return txn_end(id, imap_sync_store_fail(err, st, "journal"), "", err);
    return txn_end(id, 0, "move became delete", err);
}

static int
push_move(struct imap_driver *id, struct journal_entry *e, struct sync_error *err)
{
    struct store *st = store_of(id);
    struct imap_conn *c = id->conn;
    if (e->uid == 0 || !e->src)
        return drop_entry(id, e, "it has no copy on the server", err);
    struct store_item it;
    enum store_status s = store_item_get(st, e->item_id, &it);
    struct store_folder dst = {0};
    bool gone = s == STORE_NOTFOUND;
    if (gone && e->state == JOURNAL_INFLIGHT && e->folder_id &&
        store_folder_get(st, e->folder_id, &dst) == STORE_OK && dst.server_name &&
        strcmp(dst.server_name, e->src) != 0) {
        /* Deleted while this move was in flight at a crash: the message
         * may be in the destination already. The move is settled first;
         * the delete queued behind it takes the UID it ends with
         * (journal_fill_uid), so no copy survives. */
        memset(&it, 0, sizeof it);
        it.id = e->item_id;
        it.folder_id = dst.id;
    } else if (gone) {
        store_folder_clear(&dst);
        return move_became_delete(id, e, err);
    } else if (s != STORE_OK || store_folder_get(st, it.folder_id, &dst) != STORE_OK) {
        return imap_sync_store_fail(err, st, "reading a moved item");
    }
    /* Where it went as the folder was named then (see upload_prepare). */
    if (name_when_queued(st, e->id, &dst) != STORE_OK) {
        store_folder_clear(&dst);
        return imap_sync_store_fail(err, st, "reading the journal");
    }
    int rc = 0;
    if (gone && (!dst.server_name || strcmp(dst.server_name, e->src) == 0)) {
        store_folder_clear(&dst);
        return move_became_delete(id, e, err);
    }
    if (dst.local_only || !dst.server_name) {
        rc = txn_begin(id, err);
        if (rc == 0)
            rc = txn_end(id, refuse(id, e, "its folder does not exist on the server", err),
                         "move refused", err);
        store_folder_clear(&dst);
        return rc;
    }
    if (it.uid != 0 || strcmp(dst.server_name, e->src) == 0) {
        /* Moved back, or already replaced in its new folder by a newer
         * upload: nothing to move. */
        if (it.uid == 0) {
            rc = txn_begin(id, err);
            if (rc == 0 && store_item_refresh(st, it.id, NULL, 0, e->uid, NULL) != STORE_OK)
                rc = imap_sync_store_fail(err, st, "recording a move");
            if (rc == 0 && journal_fill_uid(st, it.id, e->src, e->uid, e->uidvalidity) != STORE_OK)
                rc = imap_sync_store_fail(err, st, "recording a move");
            if (rc == 0)
                rc = done(id, e, err);
            rc = txn_end(id, rc, "move settled", err);
        } else {
            rc = drop_entry(id, e, NULL, err);
        }
        store_folder_clear(&dst);
        return rc;
    }
    struct imap_mailbox src_mb;
    int sel = imap_sync_select(id, e->src, &src_mb, err);
    if (sel < 0) {
        store_folder_clear(&dst);
        return -1;
    }
    if (sel > 0 || (e->uidvalidity && src_mb.uidvalidity != e->uidvalidity)) {
        rc = txn_begin(id, err);
        if (rc == 0)
            rc = txn_end(id,
                         refuse(id, e,
                                sel > 0 ? "its old folder is gone from the server"
                                        : "its old folder changed on the server (UIDVALIDITY)",
                                err),
                         "move refused", err);
        store_folder_clear(&dst);
        return rc;
    }
    struct copyuid_ctx cc = {.id = id};
    if (e->state == JOURNAL_INFLIGHT) {
        /* Interrupted: is it still here, or already there? "There" is where
         * it was sent, which may not be where the item is now (moved again
         * meanwhile: the move queued behind takes it on from there). */
        struct store_folder sent;
        if (e->folder_id && e->folder_id != dst.id &&
            store_folder_get(st, e->folder_id, &sent) == STORE_OK) {
            if (sent.server_name && !sent.local_only) {
                store_folder_clear(&dst);
                dst = sent;
            } else {
                store_folder_clear(&sent);
            }
        }
        struct exists_ctx ec = {.id = id};
        uint32_t tag = imap_cmd(c, "UID FETCH %u (UID FLAGS)", e->uid);
        if (imap_wait(c, tag, exists_cb, &ec, NULL, err) < 0) {
            store_folder_clear(&dst);
            return -1;
        }
        struct imap_mailbox dmb;
        int ds = imap_sync_select(id, dst.server_name, &dmb, err);
        uint32_t uid = 0;
        if (ds < 0 || (ds == 0 && find_sent(id, dst.id, e->hint, e->size, e->message_id, NULL,
                                            0, &uid, err) < 0)) {
            store_folder_clear(&dst);
            return -1;
        }
        if (uid) {
            cc.uid = uid;
            cc.uidvalidity = dmb.uidvalidity;
            if (ec.present) {
                /* Copied but not yet removed from the old folder. */
                if (imap_sync_select(id, e->src, &src_mb, err) < 0 ||
                    expunge_uids(id, &e->uid, 1, err) < 0) {
                    store_folder_clear(&dst);
                    return -1;
                }
            }
            goto record;
        }
        if (!ec.present) {
            rc = txn_begin(id, err);
            if (rc == 0)
                rc = txn_end(id, refuse(id, e, "the message was removed on the server", err),
                             "move refused", err);
            store_folder_clear(&dst);
            return rc;
        }
        if (imap_sync_select(id, e->src, &src_mb, err) != 0) {
            store_folder_clear(&dst);
            return -1;
        }
    }
    /* Mark in flight with how to find it in the destination. */
    e->state = JOURNAL_INFLIGHT;
    e->folder_id = dst.id;
    e->hint = dst.uidnext ? dst.uidnext : 1;
    e->attempts++;
    if (txn_begin(id, err) < 0 ||
        txn_end(id, journal_update(st, e) == STORE_OK ? 0 : imap_sync_store_fail(err, st, "journal"),
                "move in flight", err) < 0) {
        store_folder_clear(&dst);
        return -1;
    }
    enum imap_status status;
    imap_cmd_begin(c);
    imap_cmd_add(c, imap_has(c, IMAP_CAP_MOVE) ? "UID MOVE %u " : "UID COPY %u ", e->uid);
    imap_cmd_add_astring(c, dst.server_name);
    uint32_t tag = imap_cmd_end(c);
    if (imap_wait(c, tag, copyuid_cb, &cc, &status, err) < 0) {
        store_folder_clear(&dst);
        return -1;
    }
    if (status == IMAP_ST_OK && imap_last_completion(c))
        parse_copyuid(imap_last_completion(c), &cc);
    if (status != IMAP_ST_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", imap_last_text(c));
        rc = txn_begin(id, err);
        if (rc == 0)
            rc = txn_end(id, refuse(id, e, why, err), "move refused", err);
        store_folder_clear(&dst);
        return rc;
    }
    if (!imap_has(c, IMAP_CAP_MOVE)) {
        int x = expunge_uids(id, &e->uid, 1, err);
        if (x < 0) {
            store_folder_clear(&dst);
            return -1;
        }
    }
    if (!cc.uid) {
        struct imap_mailbox dmb;
        int ds = imap_sync_select(id, dst.server_name, &dmb, err);
        if (ds < 0 || (ds == 0 && find_sent(id, dst.id, e->hint, e->size, e->message_id, NULL, 0,
                                            &cc.uid, err) < 0)) {
            store_folder_clear(&dst);
            return -1;
        }
        cc.uidvalidity = dmb.uidvalidity;
    }
record:
    rc = txn_begin(id, err);
    if (rc == 0 && cc.uid) {
        /* The UID is the item's only where the item still is; moved on
         * meanwhile, the move queued behind takes it (journal_fill_uid). */
        struct store_item now;
        enum store_status ns = store_item_get(st, it.id, &now);
        if (ns == STORE_OK && now.folder_id == dst.id)
            ns = store_item_refresh(st, it.id, NULL, 0, cc.uid, NULL);
        if ((ns != STORE_OK && ns != STORE_NOTFOUND) ||
            journal_fill_uid(st, it.id, dst.server_name, cc.uid, cc.uidvalidity) != STORE_OK)
            rc = imap_sync_store_fail(err, st, "recording a move");
    }
    if (rc == 0)
        rc = done(id, e, err);
    rc = txn_end(id, rc, "moved", err);
    store_folder_clear(&dst);
    return rc;
}

/* ---- flags ---- */

static int
push_flags(struct imap_driver *id, struct journal_entry *first, int64_t *after,
           struct sync_error *err)
{
    struct store *st = store_of(id);
    struct imap_conn *c = id->conn;
    struct journal_entry *batch = xcalloc(1, sizeof *batch);
    size_t n = 1;
    batch[0] = *first;
    memset(first, 0, sizeof *first);
    for (;;) {
        struct journal_entry e;
        if (journal_next(st, batch[n - 1].id, MAIL_KINDS, &e) != STORE_OK)
            break;
        bool same = e.op == JOURNAL_FLAGS && e.src && batch[0].src &&
                    strcmp(e.src, batch[0].src) == 0 && e.uid && n < 2000;
        if (!same) {
            journal_entry_clear(&e);
            break;
        }
        batch = xrealloc(batch, (n + 1) * sizeof *batch);
        batch[n++] = e;
    }
    *after = batch[n - 1].id;
    int rc = 0;
    const char *skip = NULL;
    struct imap_mailbox mb;
    struct store_folder f = {0};
    if (!batch[0].src || !batch[0].uid) {
        skip = "it has no copy on the server";
    } else {
        int s = imap_sync_select(id, batch[0].src, &mb, err);
        if (s < 0)
            rc = -1;
        else if (s > 0)
            skip = "its folder is gone";
        else if (batch[0].uidvalidity && mb.uidvalidity != batch[0].uidvalidity)
            skip = "its folder changed on the server (UIDVALIDITY)";
        else if (store_folder_by_server_name(st, STORE_KIND_MAIL, batch[0].src, &f) != STORE_OK)
            skip = "its folder is gone";
    }
    uint32_t *tags = xcalloc(n, sizeof *tags);
    enum imap_status *status = xcalloc(n, sizeof *status);
    bool *modified = xcalloc(n, sizeof *modified);
    struct flags_ctx fc = {.id = id};
    if (rc == 0 && !skip) {
        bool condstore = imap_has(c, IMAP_CAP_CONDSTORE);
        struct dynbuf fl;
        dynbuf_init(&fl, 1 << 20);
        for (size_t i = 0; i < n; i++) {
            dynbuf_reset(&fl);
            flags_to_imap(&fl, batch[i].arg ? batch[i].arg : "");
            unsigned long long base = batch[i].base ? strtoull(batch[i].base, NULL, 10) : 0;
            if (condstore && base)
                tags[i] = imap_cmd(c, "UID STORE %u (UNCHANGEDSINCE %llu) FLAGS %s",
                                   batch[i].uid, base, fl.data);
            else
                tags[i] = imap_cmd(c, "UID STORE %u FLAGS %s", batch[i].uid, fl.data);
        }
        dynbuf_free(&fl);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            rc = imap_wait(c, tags[i], flags_cb, &fc, &status[i], err);
            const struct imap_response *r = imap_last_completion(c);
            if (rc == 0 && r && r->code && strcmp(r->code, "MODIFIED") == 0)
                modified[i] = true;
        }
        /* A change on the server since ours was based: the server's flags
         * stand; the message with the user's flags is kept in Conflicts/. */
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if (!modified[i])
                continue;
            log_warn("flags of UID %u in %s changed on the server too; the server's stand",
                     batch[i].uid, batch[i].src);
            uint32_t tag = imap_cmd(c, "UID FETCH %u (UID FLAGS%s)", batch[i].uid,
                                    condstore ? " MODSEQ" : "");
            rc = imap_wait(c, tag, flags_cb, &fc, NULL, err);
        }
        if (rc == 0)
            rc = txn_begin(id, err);
        bool kept = false;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if (!modified[i] || !batch[i].item_id)
                continue;
            /* The server holds the flags we send: our own change reached it
             * before (sent before a crash), not a clash. */
            if (server_flags_are(&fc, batch[i].uid, batch[i].arg ? batch[i].arg : ""))
                continue;
            rc = keep_conflict(id, batch[i].item_id,
                               "its flags were changed on the server after you changed them "
                               "here; the server's flags stand",
                               err);
            kept = true;
        }
        if (rc == 0 && kept && store_content_sync(st) < 0)
            rc = imap_sync_store_fail(err, st, "syncing conflict copies");
        if (rc == 0) {
            rc = flags_apply(id, f.id, &fc, err);
            for (size_t i = 0; rc == 0 && i < n; i++) {
                if (status[i] == IMAP_ST_OK)
                    rc = done(id, &batch[i], err);
                else
                    rc = refuse(id, &batch[i], "the server refused the flags", err);
            }
            rc = txn_end(id, rc, "flags", err);
        }
    } else if (rc == 0) {
        log_info("journal: flags not sent: %s", skip);
        rc = txn_begin(id, err);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = done(id, &batch[i], err);
        rc = txn_end(id, rc, "flags dropped", err);
    }
    store_folder_clear(&f);
    flags_ctx_free(&fc);
    free(tags);
    free(status);
    free(modified);
    for (size_t i = 0; i < n; i++)
        journal_entry_clear(&batch[i]);
    free(batch);
    return rc;
}

/* ---- folders ---- */

struct status_ctx {
    uint32_t messages;
    bool have;
};

static int
status_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct status_ctx *sc = ctx;
    if (!r->name || strcmp(r->name, "STATUS") != 0 || r->args.n < 2)
        return 0;
    const struct imap_value *l = &r->args.items[1];
    for (size_t i = 0; l->kind == IMAP_LIST && i + 1 < l->n; i += 2)
        if (imap_value_is(&l->items[i], "MESSAGES") &&
            imap_sync_u32(&l->items[i + 1], &sc->messages))
            sc->have = true;
    return 0;
}

static bool
code_is(struct imap_conn *c, const char *code)
{
    const struct imap_response *r = imap_last_completion(c);
    return r && r->code && strcmp(r->code, code) == 0;
}

/* Deselect `name` without expunging anything (EXAMINE another mailbox: CLOSE
 * would expunge, UNSELECT is an extension). */
static int
leave_selected(struct imap_driver *id, const char *name, struct sync_error *err)
{
    /* The mailbox itself or one below it (a rename takes those along). */
    size_t n = strlen(name);
    if (!id->selected || strncmp(id->selected, name, n) != 0)
        return 0;
    free(id->selected);
    id->selected = NULL;
    enum imap_status st;
    uint32_t t = imap_cmd(id->conn, "EXAMINE INBOX");
    return imap_wait(id->conn, t, NULL, NULL, &st, err);
}

static int
push_folder(struct imap_driver *id, struct journal_entry *e, struct sync_error *err)
{
    struct store *st = store_of(id);
    struct imap_conn *c = id->conn;
    enum imap_status status = IMAP_ST_OK;
    char why[300] = "";
    uint32_t tag;
    if (e->op == JOURNAL_MKDIR) {
        if (!e->arg)
            return drop_entry(id, e, "no name", err);
        imap_cmd_begin(c);
        imap_cmd_add(c, "CREATE ");
        imap_cmd_add_astring(c, e->arg);
        tag = imap_cmd_end(c);
        if (imap_wait(c, tag, NULL, NULL, &status, err) < 0)
            return -1;
        if (status != IMAP_ST_OK && code_is(c, "ALREADYEXISTS"))
            status = IMAP_ST_OK;
        if (status != IMAP_ST_OK)
            snprintf(why, sizeof why, "%s", imap_last_text(c));
    } else if (e->op == JOURNAL_RMDIR) {
        if (!e->src)
            return drop_entry(id, e, "no name", err);
        /* Never let a folder's deletion take messages that arrived on the
         * server after the user emptied it here. */
        struct status_ctx sc = {0};
        imap_cmd_begin(c);
        imap_cmd_add(c, "STATUS ");
        imap_cmd_add_astring(c, e->src);
        imap_cmd_add(c, " (MESSAGES)");
        tag = imap_cmd_end(c);
        enum imap_status sst;
        if (imap_wait(c, tag, status_cb, &sc, &sst, err) < 0)
            return -1;
        if (sst != IMAP_ST_OK) {
            return drop_entry(id, e, "the folder is already gone", err);
        } else if (!sc.have || sc.messages > 0) {
            status = IMAP_ST_NO;
            snprintf(why, sizeof why, "the folder holds %u messages on the server; "
                     "they are not deleted", sc.messages);
        } else {
            if (leave_selected(id, e->src, err) < 0)
                return -1;
            imap_cmd_begin(c);
            imap_cmd_add(c, "DELETE ");
            imap_cmd_add_astring(c, e->src);
            tag = imap_cmd_end(c);
            if (imap_wait(c, tag, NULL, NULL, &status, err) < 0)
                return -1;
            if (status != IMAP_ST_OK && code_is(c, "NONEXISTENT"))
                status = IMAP_ST_OK;
            if (status != IMAP_ST_OK)
                snprintf(why, sizeof why, "%s", imap_last_text(c));
        }
    } else {
        if (!e->src || !e->arg)
            return drop_entry(id, e, "no name", err);
        /* Servers end the session when the selected mailbox is renamed. */
        if (leave_selected(id, e->src, err) < 0)
            return -1;
        imap_cmd_begin(c);
        imap_cmd_add(c, "RENAME ");
        imap_cmd_add_astring(c, e->src);
        imap_cmd_add(c, " ");
        imap_cmd_add_astring(c, e->arg);
        tag = imap_cmd_end(c);
        if (imap_wait(c, tag, NULL, NULL, &status, err) < 0)
            return -1;
        if (status != IMAP_ST_OK && code_is(c, "NONEXISTENT")) {
            /* Renamed or removed on the server meanwhile: the server's side
             * stands; the folder here no longer matches one there, so the
             * next list drops it, keeping changes made in it in Conflicts/. */
            if (txn_begin(id, err) < 0)
                return -1;
            char *what = conflict_folder_path(st, e->folder_id);
            int rc = conflict_notice(st, what,
                                     "you renamed it here, but it was renamed or removed on "
                                     "the server; the server's side stands",
                                     NULL) == STORE_OK
                         ? done(id, e, err)
                         : imap_sync_store_fail(err, st, "writing a conflict notice");
            free(what);
            return txn_end(id, rc, "rename yields", err);
        }
        if (status != IMAP_ST_OK)
            snprintf(why, sizeof why, "%s", imap_last_text(c));
        if (id->selected && strcmp(id->selected, e->src) == 0) {
            free(id->selected);
            id->selected = NULL;
        }
    }
    if (txn_begin(id, err) < 0)
        return -1;
    int rc;
    if (status == IMAP_ST_OK) {
        rc = done(id, e, err);
        if (rc == 0 && e->op == JOURNAL_MKDIR &&
            store_folder_set_local_only(st, e->folder_id, false) != STORE_OK)
            rc = imap_sync_store_fail(err, st, "recording a new folder");
    } else {
        rc = refuse(id, e, why, err);
    }
    return txn_end(id, rc, "folder change", err);
}

int
imap_push(struct imap_driver *id, struct sync_error *err)
{
    struct store *st = store_of(id);
    int64_t after = 0;
    for (;;) {
        if (id->base.host && id->base.host->cancel && atomic_load(id->base.host->cancel)) {
            sync_error_set(err, SYNC_ERR_CANCELLED, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                           "cancelled");
            return -1;
        }
        struct journal_entry e;
        enum store_status s = journal_next(st, after, MAIL_KINDS, &e);
        if (s == STORE_NOTFOUND)
            return 0;
        if (s != STORE_OK)
            return imap_sync_store_fail(err, st, "reading the journal");
        int64_t next_after = e.id;
        int rc;
        switch (e.op) {
        case JOURNAL_APPEND:
        case JOURNAL_REPLACE:
            bool deferred = false;
            rc = push_uploads(id, &e, &next_after, &deferred, err);
            /* Edits leave a delete of the old version behind: take it next
             * (unless an upload waits for its content: then go on, it comes
             * with the next push). */
            if (!deferred)
                next_after = after;
            break;
        case JOURNAL_DELETE:
            rc = push_deletes(id, &e, &next_after, err);
            break;
        case JOURNAL_MOVE:
            rc = push_move(id, &e, err);
            /* A move that became a delete is taken again. */
            if (rc == 0 && e.op == JOURNAL_DELETE)
                next_after = e.id - 1;
            break;
        case JOURNAL_FLAGS:
            rc = push_flags(id, &e, &next_after, err);
            break;
        case JOURNAL_MKDIR:
        case JOURNAL_RMDIR:
        case JOURNAL_RENAME:
            rc = push_folder(id, &e, err);
            break;
        default:
            rc = drop_entry(id, &e, "unknown operation", err);
            break;
        }
        journal_entry_clear(&e);
        if (rc < 0)
            return imap_sync_conn_fail(id, err);
        after = next_after;
    }
}
