/* imap_sync: the mail driver. LIST into folder rows; per folder SELECT, find
 * what changed (QRESYNC, CONDSTORE or a full UID/FLAGS compare, whichever the
 * server offers), then download new messages in pipelined batches and
 * commit them to the store in short transactions that never wait on the
 * network. */
#include "sync/imap_sync_p.h"

#include "common/log.h"
#include "common/util.h"
#include "formats/flags.h"
#include "formats/mail.h"
#include "formats/mutf7.h"
#include "sync/imap_body.h"
#include "store/conflict.h"
#include "store/journal.h"
#include "store/names.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Download batching: a FETCH command asks for at most this many messages or
 * bytes, and this many commands are in flight at once so the connection
 * never idles between batches. */
#define FETCH_CHUNK_MSGS 250
#define FETCH_CHUNK_BYTES (4u << 20)
#define FETCH_INFLIGHT 4
/* Messages received are committed to the store in batches of this size. */
#define COMMIT_BYTES (8u << 20)
#define COMMIT_MSGS 500
/* IDLE is renewed well within the 29 minutes RFC 2177 allows. */
#define IDLE_MAX_MS (25 * 60 * 1000)

/* A message as the server describes it before download. */
struct srv_msg {
    uint32_t uid;
    uint32_t size;
    uint64_t modseq;
    char *flags; /* normalised; owned */
};

struct srv_list {
    struct srv_msg *v;
    size_t n, alloc;
};

static void
srv_list_free(struct srv_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].flags);
    free(l->v);
    l->v = NULL;
    l->n = l->alloc = 0;
}

static struct srv_msg *
srv_list_add(struct srv_list *l)
{
    if (l->n == l->alloc) {
        l->alloc = l->alloc ? l->alloc * 2 : 256;
        l->v = xrealloc(l->v, l->alloc * sizeof *l->v);
    }
    struct srv_msg *m = &l->v[l->n++];
    memset(m, 0, sizeof *m);
    return m;
}

static int
srv_cmp(const void *a, const void *b)
{
    uint32_t x = ((const struct srv_msg *)a)->uid, y = ((const struct srv_msg *)b)->uid;
    return x < y ? -1 : x > y;
}

/* qsort with an empty array is undefined when the pointer is NULL. */
static void
sort_any(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

/* ---- flags ---- */

char *
imap_sync_flags(const struct imap_value *list)
{
    struct flags_builder b = {0};
    if (list && list->kind == IMAP_LIST)
        for (size_t i = 0; i < list->n; i++)
            if (list->items[i].kind == IMAP_ATOM)
                flags_builder_add(&b, list->items[i].data, list->items[i].len);
    return flags_builder_take(&b);
}

/* ---- helpers over responses ---- */

static char *
value_str(const struct imap_value *v)
{
    if (!v || (v->kind != IMAP_ATOM && v->kind != IMAP_STRING))
        return NULL;
    if (memchr(v->data, '\0', v->len))
        return NULL;
    return xstrndup(v->data, v->len);
}

bool
imap_sync_u32(const struct imap_value *v, uint32_t *out)
{
    uint64_t x;
    if (!v || imap_value_u64(v, &x) < 0 || x > UINT32_MAX)
        return false;
    *out = (uint32_t)x;
    return true;
}

/* The MODSEQ of a FETCH item list: "MODSEQ (123)". */
uint64_t
imap_sync_modseq(const struct imap_value *attrs)
{
    const struct imap_value *m = imap_fetch_item(attrs, "MODSEQ");
    uint64_t x = 0;
    if (m && m->kind == IMAP_LIST && m->n == 1 && imap_value_u64(&m->items[0], &x) == 0)
        return x;
    return 0;
}

/* INTERNALDATE "17-Jul-1996 02:44:25 -0700" → seconds, via the RFC 5322
 * parser once the dashes are spaces. */
static int64_t
internaldate(const struct imap_value *v)
{
    if (!v || v->kind != IMAP_STRING || v->len >= 64)
        return -1;
    char buf[64];
    memcpy(buf, v->data, v->len);
    buf[v->len] = '\0';
    for (int i = 0, dashes = 0; buf[i] && dashes < 2; i++)
        if (buf[i] == '-') {
            buf[i] = ' ';
            dashes++;
        }
    int64_t t;
    return mail_parse_date(buf, strlen(buf), &t) == 0 ? t : -1;
}

int
imap_sync_store_fail(struct sync_error *err, struct store *st, const char *what)
{
    sync_error_set(err, SYNC_ERR_STORE, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER, "%s: %s", what,
                   store_errmsg(st));
    return -1;
}

/* ---- connect ---- */

static int
op_connect(struct sync_driver *d, struct sync_error *err)
{
    struct imap_driver *id = imap_driver_of(d);
    if (id->conn)
        return 0;
    if (imap_connect(id->cfg, &id->conn, err) < 0)
        return -1;
    free(id->selected);
    id->selected = NULL;
    id->changed_while_selected = false;
    return 0;
}

static void
op_disconnect(struct sync_driver *d)
{
    struct imap_driver *id = imap_driver_of(d);
    imap_close(id->conn);
    id->conn = NULL;
    free(id->selected);
    id->selected = NULL;
}

static bool
op_connected(const struct sync_driver *d)
{
    return ((const struct imap_driver *)d)->conn != NULL;
}

/* A connection-level failure leaves the connection unusable. */
int
imap_sync_conn_fail(struct imap_driver *id, struct sync_error *err)
{
    if (err->scope == SYNC_SCOPE_ACCOUNT)
        op_disconnect(&id->base);
    return -1;
}

/* ---- list ---- */

static const char *const reserved_top[] = {"Calendar", "Tasks", "Notes", "Contacts",
                                           "Conflicts"};

char *
imap_sync_top_name(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(reserved_top); i++)
        if (strcasecmp(name, reserved_top[i]) == 0)
            return xasprintf("%s (mail)", name);
    if (strcasecmp(name, "Inbox") == 0)
        return xasprintf("%s (mail)", name); /* only INBOX itself is "Inbox" */
    return xstrdup(name);
}

struct list_entry {
    char *name;      /* server name; owned */
    char delim;
    bool selectable;
};

struct list_ctx {
    struct imap_driver *id;
    struct list_entry *v;
    size_t n, alloc;
};

static bool
is_inbox(const char *name)
{
    return strcasecmp(name, "INBOX") == 0;
}

static struct mbox_status *
status_find(struct imap_driver *id, const char *name)
{
    for (size_t i = 0; i < id->nstatus; i++)
        if (strcmp(id->status[i].name, name) == 0)
            return &id->status[i];
    return NULL;
}

static void
status_parse(struct imap_driver *id, const struct imap_response *r)
{
    if (r->args.n < 2 || r->args.items[1].kind != IMAP_LIST)
        return;
    char *name = value_str(&r->args.items[0]);
    if (!name)
        return;
    if (is_inbox(name)) {
        free(name);
        name = xstrdup("INBOX");
    }
    struct mbox_status *s = status_find(id, name);
    if (!s) {
        id->status = xrealloc(id->status, (id->nstatus + 1) * sizeof *id->status);
        s = &id->status[id->nstatus++];
        memset(s, 0, sizeof *s);
        s->name = name;
    } else {
        free(name);
    }
    const struct imap_value *l = &r->args.items[1];
    s->have = true;
    for (size_t i = 0; i + 1 < l->n; i += 2) {
        uint64_t x;
        if (imap_value_u64(&l->items[i + 1], &x) < 0)
            continue;
        if (imap_value_is(&l->items[i], "MESSAGES"))
            s->messages = (uint32_t)x;
        else if (imap_value_is(&l->items[i], "UIDNEXT"))
            s->uidnext = (uint32_t)x;
        else if (imap_value_is(&l->items[i], "UIDVALIDITY"))
            s->uidvalidity = (uint32_t)x;
        else if (imap_value_is(&l->items[i], "HIGHESTMODSEQ"))
            s->highestmodseq = x;
    }
}

static int
list_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct list_ctx *lc = ctx;
    if (!r->name)
        return 0;
    if (strcmp(r->name, "STATUS") == 0) {
        status_parse(lc->id, r);
        return 0;
    }
    if (strcmp(r->name, "LIST") != 0 || r->args.n < 3)
        return 0;
    const struct imap_value *fl = &r->args.items[0];
    const struct imap_value *dl = &r->args.items[1];
    char *name = value_str(&r->args.items[2]);
    if (!name || name[0] == '\0' || fl->kind != IMAP_LIST) {
        free(name);
        return 0;
    }
    bool selectable = true;
    for (size_t i = 0; i < fl->n; i++)
        if (imap_value_is(&fl->items[i], "\\Noselect") ||
            imap_value_is(&fl->items[i], "\\NonExistent"))
            selectable = false;
    char delim = 0;
    if (dl->kind == IMAP_STRING && dl->len == 1)
        delim = dl->data[0];
    if (is_inbox(name)) {
        free(name);
        name = xstrdup("INBOX");
    }
    if (lc->n == lc->alloc) {
        lc->alloc = lc->alloc ? lc->alloc * 2 : 32;
        lc->v = xrealloc(lc->v, lc->alloc * sizeof *lc->v);
    }
    lc->v[lc->n++] = (struct list_entry){name, delim, selectable};
    return 0;
}

/* The folder row for a server name, created with its parents when new.
 * Sets *id_out. Marks every folder it touches in `seen`. */
static int
ensure_folder(struct imap_driver *id, const char *server_name, char delim, bool selectable,
              bool listed, int64_t *id_out, struct sync_error *err)
{
    struct store *st = id->base.st;
    struct store_folder f;
    enum store_status s = store_folder_by_server_name(st, STORE_KIND_MAIL, server_name, &f);
    if (s == STORE_OK) {
        if (listed && (f.selectable != selectable || f.delimiter != delim)) {
            f.selectable = selectable;
            f.delimiter = delim;
            if (store_folder_update_sync(st, &f) != STORE_OK) {
                store_folder_clear(&f);
                return imap_sync_store_fail(err, st, "updating a folder");
            }
        }
        *id_out = f.id;
        store_folder_clear(&f);
        return 0;
    }
    if (s != STORE_NOTFOUND)
        return imap_sync_store_fail(err, st, "reading folders");

    int64_t parent = 0;
    const char *leaf = server_name;
    const char *cut = delim ? strrchr(server_name, delim) : NULL;
    if (cut && cut != server_name && cut[1] != '\0') {
        char *pname = xstrndup(server_name, (size_t)(cut - server_name));
        int r = ensure_folder(id, pname, delim, false, false, &parent, err);
        free(pname);
        if (r < 0)
            return -1;
        leaf = cut + 1;
    }
    char *local;
    if (parent == 0 && strcmp(server_name, "INBOX") == 0) {
        local = xstrdup("Inbox");
    } else {
        char *decoded = mutf7_decode(leaf, strlen(leaf));
        const char *use = decoded ? decoded : leaf;
        char *safe = names_folder(use, strlen(use));
        free(decoded);
        if (parent == 0) {
            local = imap_sync_top_name(safe);
            free(safe);
        } else {
            local = safe;
        }
    }
    memset(&f, 0, sizeof f);
    f.parent_id = parent;
    f.kind = STORE_KIND_MAIL;
    snprintf(f.name, sizeof f.name, "%s", local);
    free(local);
    f.server_name = (char *)server_name;
    f.delimiter = delim;
    f.selectable = selectable;
    s = store_folder_add(st, &f);
    if (s != STORE_OK)
        return imap_sync_store_fail(err, st, "adding a folder");
    log_info("new folder %s", f.name);
    *id_out = f.id;
    return 0;
}

struct stale_ctx {
    struct store *st;
    int64_t *keep;  /* sorted ids of folders still on the server */
    size_t nkeep;
    int64_t *drop;
    size_t ndrop, alloc;
};

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int
stale_cb(void *ctx, const struct store_folder *f)
{
    struct stale_ctx *sc = ctx;
    if (sc->nkeep && bsearch(&f->id, sc->keep, sc->nkeep, sizeof *sc->keep, cmp_i64))
        return 0;
    /* Made here and not yet created there, or renamed here and not yet
     * there: not a folder the server removed. */
    bool named = false;
    if (f->local_only ||
        (f->server_name && journal_names_folder(sc->st, f->server_name, &named) == STORE_OK &&
         named))
        return 0;
    if (sc->ndrop == sc->alloc) {
        sc->alloc = sc->alloc ? sc->alloc * 2 : 8;
        sc->drop = xrealloc(sc->drop, sc->alloc * sizeof *sc->drop);
    }
    sc->drop[sc->ndrop++] = f->id;
    return 0;
}

/* Record the folder and all its ancestors as present. */
static void
keep_chain(struct store *st, int64_t fid, int64_t **keep, size_t *n, size_t *alloc)
{
    while (fid) {
        if (*n == *alloc) {
            *alloc = *alloc ? *alloc * 2 : 32;
            *keep = xrealloc(*keep, *alloc * sizeof **keep);
        }
        (*keep)[(*n)++] = fid;
        struct store_folder f;
        if (store_folder_get(st, fid, &f) != STORE_OK)
            return;
        fid = f.parent_id;
        store_folder_clear(&f);
    }
}

static int
op_list(struct sync_driver *d, struct sync_error *err)
{
    struct imap_driver *id = imap_driver_of(d);
    struct store *st = d->st;
    for (size_t i = 0; i < id->nstatus; i++)
        free(id->status[i].name);
    free(id->status);
    id->status = NULL;
    id->nstatus = 0;

    bool condstore = imap_has(id->conn, IMAP_CAP_CONDSTORE);
    const char *items = condstore ? "MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ"
                                  : "MESSAGES UIDNEXT UIDVALIDITY";
    struct list_ctx lc = {.id = id};
    uint32_t tag;
    if (imap_has(id->conn, IMAP_CAP_LIST_STATUS))
        tag = imap_cmd(id->conn, "LIST \"\" \"*\" RETURN (STATUS (%s))", items);
    else
        tag = imap_cmd(id->conn, "LIST \"\" \"*\"");
    int rc = imap_wait(id->conn, tag, list_cb, &lc, NULL, err);
    if (rc == 0 && !imap_has(id->conn, IMAP_CAP_LIST_STATUS) && condstore) {
        /* STATUS for every folder, pipelined: one round trip in all. */
        uint32_t last = 0;
        for (size_t i = 0; i < lc.n; i++) {
            if (!lc.v[i].selectable)
                continue;
            imap_cmd_begin(id->conn);
            imap_cmd_add(id->conn, "STATUS ");
            imap_cmd_add_astring(id->conn, lc.v[i].name);
            imap_cmd_add(id->conn, " (%s)", items);
            last = imap_cmd_end(id->conn);
        }
        for (uint32_t t = tag + 1; rc == 0 && last && t <= last; t++) {
            enum imap_status sst;
            rc = imap_wait(id->conn, t, list_cb, &lc, &sst, err);
        }
    }
    if (rc < 0) {
        for (size_t i = 0; i < lc.n; i++)
            free(lc.v[i].name);
        free(lc.v);
        return imap_sync_conn_fail(id, err);
    }

    int64_t *keep = NULL;
    size_t nkeep = 0, akeep = 0;
    if (store_begin(st) != STORE_OK) {
        rc = imap_sync_store_fail(err, st, "starting a transaction");
    } else {
        for (size_t i = 0; rc == 0 && i < lc.n; i++) {
            int64_t fid;
            /* A folder the journal is about to rename or delete stays out. */
            struct store_folder known;
            bool named = false;
            if (store_folder_by_server_name(st, STORE_KIND_MAIL, lc.v[i].name, &known) ==
                STORE_OK) {
                store_folder_clear(&known);
            } else if (journal_names_folder(st, lc.v[i].name, &named) == STORE_OK && named) {
                continue;
            }
            rc = ensure_folder(id, lc.v[i].name, lc.v[i].delim, lc.v[i].selectable, true,
                               &fid, err);
            if (rc == 0)
                keep_chain(st, fid, &keep, &nkeep, &akeep);
        }
        /* Folders gone from the server leave the store (never the other
         * way round: a folder missing locally is not deleted remotely). */
        if (rc == 0 && lc.n > 0) {
            sort_any(keep, nkeep, sizeof *keep, cmp_i64);
            struct stale_ctx sc = {.st = st, .keep = keep, .nkeep = nkeep};
            if (store_folder_each(st, STORE_KIND_MAIL, stale_cb, &sc) != STORE_OK)
                rc = imap_sync_store_fail(err, st, "reading folders");
            for (size_t i = 0; rc == 0 && i < sc.ndrop; i++) {
                struct store_folder f;
                /* A parent may already have taken its children along. */
                if (store_folder_get(st, sc.drop[i], &f) != STORE_OK)
                    continue;
                log_info("folder %s is gone from the server", f.name);
                store_folder_clear(&f);
                /* Changes made in it go to Conflicts/ (DESIGN section 6). */
                unsigned kept = 0;
                if (conflict_drop_folder(st, sc.drop[i], &kept) != STORE_OK)
                    rc = imap_sync_store_fail(err, st, "removing a folder");
            }
            free(sc.drop);
        }
        if (rc == 0 && store_commit(st) != STORE_OK)
            rc = imap_sync_store_fail(err, st, "committing folders");
        else if (rc != 0)
            store_rollback(st);
    }
    free(keep);
    for (size_t i = 0; i < lc.n; i++)
        free(lc.v[i].name);
    free(lc.v);
    if (rc == 0 && d->host)
        d->host->committed(d->host);
    return rc;
}

static bool
op_maybe_changed(struct sync_driver *d, const struct store_folder *f)
{
    struct imap_driver *id = imap_driver_of(d);
    if (!f->server_name || f->last_sync == 0 || f->error)
        return true;
    /* Set to full (maybe while offline): what is kept in part comes whole. */
    bool partial = false;
    if (store_folder_mode(f, d->host ? d->host->mail_default : STORE_MODE_DEFAULT) ==
            STORE_MODE_FULL &&
        (store_folder_has_partial(d->st, f->id, &partial) != STORE_OK || partial))
        return true;
    if (!id->conn || !imap_has(id->conn, IMAP_CAP_CONDSTORE))
        return true; /* flag changes cannot be seen without a SELECT */
    struct mbox_status *s = status_find(id, f->server_name);
    if (!s || !s->have)
        return true;
    return s->uidvalidity != f->uidvalidity || s->uidnext != f->uidnext ||
           s->messages != f->server_count || s->highestmodseq != f->highestmodseq ||
           s->highestmodseq == 0;
}

/* ---- folder sync ---- */

struct select_ctx {
    struct imap_driver *id;
    uint32_t exists, uidvalidity, uidnext;
    uint64_t highestmodseq;
    bool nomodseq;
    char *vanished;           /* QRESYNC VANISHED (EARLIER) sets, ','-joined; owned */
    struct srv_list updates;  /* FETCH responses: flag changes and new UIDs */
};

static void
collect_vanished(struct select_ctx *sc, const struct imap_response *r)
{
    /* "* VANISHED (EARLIER) 1:3,5": the last argument is the set. */
    if (r->args.n == 0)
        return;
    const struct imap_value *set = &r->args.items[r->args.n - 1];
    if (set->kind != IMAP_ATOM)
        return;
    size_t old = sc->vanished ? strlen(sc->vanished) : 0;
    sc->vanished = xrealloc(sc->vanished, old + set->len + 2);
    if (old)
        sc->vanished[old++] = ',';
    memcpy(sc->vanished + old, set->data, set->len);
    sc->vanished[old + set->len] = '\0';
}

/* A FETCH with UID and FLAGS (no body): a flag change or a new message. */
static void
collect_fetch_flags(struct srv_list *l, const struct imap_response *r)
{
    if (r->args.n != 1 || r->args.items[0].kind != IMAP_LIST)
        return;
    const struct imap_value *a = &r->args.items[0];
    uint32_t uid, size = 0;
    if (!imap_sync_u32(imap_fetch_item(a, "UID"), &uid) || uid == 0)
        return;
    const struct imap_value *fl = imap_fetch_item(a, "FLAGS");
    if (!fl)
        return;
    imap_sync_u32(imap_fetch_item(a, "RFC822.SIZE"), &size);
    struct srv_msg *m = srv_list_add(l);
    m->uid = uid;
    m->size = size;
    m->modseq = imap_sync_modseq(a);
    m->flags = imap_sync_flags(fl);
}

static int
select_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct select_ctx *sc = ctx;
    if (r->status == IMAP_ST_OK && r->code) {
        uint32_t x;
        const struct imap_value *arg = r->code_args.n ? &r->code_args.items[0] : NULL;
        if (strcmp(r->code, "UIDVALIDITY") == 0 && imap_sync_u32(arg, &x))
            sc->uidvalidity = x;
        else if (strcmp(r->code, "UIDNEXT") == 0 && imap_sync_u32(arg, &x))
            sc->uidnext = x;
        else if (strcmp(r->code, "HIGHESTMODSEQ") == 0 && arg)
            imap_value_u64(arg, &sc->highestmodseq);
        else if (strcmp(r->code, "NOMODSEQ") == 0)
            sc->nomodseq = true;
        return 0;
    }
    if (!r->name)
        return 0;
    if (strcmp(r->name, "EXISTS") == 0 && r->has_number)
        sc->exists = r->number;
    else if (strcmp(r->name, "VANISHED") == 0)
        collect_vanished(sc, r);
    else if (strcmp(r->name, "FETCH") == 0)
        collect_fetch_flags(&sc->updates, r);
    return 0;
}

/* Untagged responses outside SELECT: remember that the mailbox moved on. */
static void
note_unsolicited(struct imap_driver *id, const struct imap_response *r, uint32_t exists)
{
    if (!r->name)
        return;
    if ((strcmp(r->name, "EXISTS") == 0 && r->number != exists) ||
        strcmp(r->name, "EXPUNGE") == 0 || strcmp(r->name, "VANISHED") == 0 ||
        strcmp(r->name, "FETCH") == 0)
        id->changed_while_selected = true;
}

void
imap_sync_note(struct imap_driver *id, const struct imap_response *r)
{
    note_unsolicited(id, r, UINT32_MAX);
}

static int
generic_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct select_ctx *sc = ctx;
    note_unsolicited(sc->id, r, sc->exists);
    return 0;
}

static int
uidlist_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct select_ctx *sc = ctx;
    if (r->name && strcmp(r->name, "FETCH") == 0) {
        collect_fetch_flags(&sc->updates, r);
        return 0;
    }
    note_unsolicited(sc->id, r, sc->exists);
    return 0;
}

/* UIDs from "* SEARCH 1 2 3" or "* ESEARCH (TAG "t") UID ALL 1:3,5". */
struct uidset_ctx {
    struct srv_list list;
    size_t max;     /* a server that names far more UIDs than it has messages */
    bool truncated; /* ... is not believed: nothing is removed on its word */
};

static int
uidset_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct uidset_ctx *uc = ctx;
    struct srv_list *l = &uc->list;
    if (!r->name)
        return 0;
    if (strcmp(r->name, "SEARCH") == 0) {
        for (size_t i = 0; i < r->args.n; i++) {
            uint32_t uid;
            if (imap_sync_u32(&r->args.items[i], &uid) && uid) {
                if (l->n >= uc->max)
                    uc->truncated = true;
                else
                    srv_list_add(l)->uid = uid;
            }
        }
    } else if (strcmp(r->name, "ESEARCH") == 0) {
        for (size_t i = 0; i + 1 < r->args.n; i++) {
            if (!imap_value_is(&r->args.items[i], "ALL"))
                continue;
            const struct imap_value *set = &r->args.items[i + 1];
            struct imap_seqset_iter it;
            imap_seqset_begin(&it, set->data, set->len);
            uint32_t lo, hi;
            while (imap_seqset_next(&it, &lo, &hi) == 1 && hi != UINT32_MAX)
                for (uint64_t u = lo; u <= hi; u++) {
                    if (l->n >= uc->max) {
                        uc->truncated = true;
                        break;
                    }
                    srv_list_add(l)->uid = (uint32_t)u;
                }
        }
    }
    return 0;
}

/* One message received, waiting for its batch to be committed. */
struct pending {
    uint32_t uid;
    uint64_t modseq;
    int64_t date;
    char *flags;      /* owned */
    char *message_id; /* owned, may be NULL */
    char *name;       /* wanted file name; owned */
    char *data;       /* owned */
    size_t size;
    bool partial;     /* what headers mode keeps, not the whole message */
    int64_t full_size;
    /* Decided when the batch is staged: */
    enum { PENDING_ADD, PENDING_UPGRADE, PENDING_REMAP, PENDING_SKIP } action;
    int64_t target;   /* UPGRADE, REMAP: the item */
    char tmp[64];     /* ADD, UPGRADE: its file in the store's tmp/ */
};

struct fetch_ctx {
    struct imap_driver *id;
    struct select_ctx *sc;
    int64_t folder_id;
    bool remap;             /* UIDVALIDITY changed: match unmapped items */
    struct pending *batch;  /* owned */
    size_t nbatch, abatch, batch_bytes;
    int64_t done, total;
    const struct srv_msg *want; /* borrowed: what was asked for, sorted by UID */
    bool *got;              /* owned: got[i] once want[i] arrived */
    size_t nwant;
    bool failed;            /* something asked for did not arrive */
    char failmsg[256];
    char skipped[128];      /* what is left out on purpose (too large) */
    size_t too_big;
    /* The batch written to files and waiting for its syncfs, then commit:
     * the next batch downloads meanwhile. */
    struct pending *staged; /* owned */
    size_t nstaged;
    pthread_t syncer;
    bool syncing;           /* a staged batch waits for commit_staged */
    bool sync_thread;       /* its syncfs runs in `syncer` */
    int sync_result;
    int64_t *remapped;      /* owned: items a staged batch takes over */
    size_t nremapped, aremapped;
};

/* A size a server announces is only a claim: a message said to be over the
 * limit is asked for with a partial fetch one byte past the limit, which
 * brings small liars whole and tells real giants apart without holding
 * them. */
static bool
claims_too_big(const struct srv_msg *m)
{
    return (uint64_t)m->size > IMAP_MAX_MESSAGE;
}

static bool
poisoned(const struct imap_driver *id, int64_t folder_id, uint32_t uid)
{
    for (size_t i = 0; i < id->npoison; i++)
        if (id->poison[i].folder_id == folder_id && id->poison[i].uid == uid)
            return true;
    return false;
}

/* Index of uid in the requested list, or -1: a server may answer with
 * messages nobody asked for, which must not be stored. */
static ssize_t
wanted(const struct fetch_ctx *fc, uint32_t uid)
{
    size_t lo = 0, hi = fc->nwant;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (fc->want[mid].uid == uid)
            return (ssize_t)mid;
        if (fc->want[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static void
pending_free(struct pending *p)
{
    free(p->flags);
    free(p->message_id);
    free(p->name);
    free(p->data);
}

/* Same bytes as the content file of an item? */
bool
imap_sync_content_equal(struct store *st, int64_t item_id, const char *data, size_t len)
{
    bool partial = false; /* a message kept in part compares its part */
    int fd = store_content_open_any(st, item_id, &partial);
    if (fd < 0)
        return false;
    char buf[65536];
    size_t off = 0;
    bool same = true;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            same = false;
            break;
        }
        if (n == 0)
            break;
        if (off + (size_t)n > len || memcmp(buf, data + off, (size_t)n) != 0) {
            same = false;
            break;
        }
        off += (size_t)n;
    }
    close(fd);
    return same && off == len;
}

static bool
remapped_already(const struct fetch_ctx *fc, int64_t id)
{
    for (size_t i = 0; i < fc->nremapped; i++)
        if (fc->remapped[i] == id)
            return true;
    return false;
}

struct remap_ctx {
    struct store *st;
    struct fetch_ctx *fc;
    const char *data;
    size_t len;
    int64_t id; /* the match, 0 when none */
};

static int
remap_cb(void *ctx, const struct store_item *it)
{
    struct remap_ctx *rm = ctx;
    if (remapped_already(rm->fc, it->id) ||
        !imap_sync_content_equal(rm->st, it->id, rm->data, rm->len))
        return 0;
    rm->id = it->id;
    return 1;
}

static void *
syncer_main(void *p)
{
    struct fetch_ctx *fc = p;
    fc->sync_result = store_content_sync(fc->id->base.st);
    return NULL;
}


/* Commit the staged batch once its files are on disk: a row is never
 * durable before its file. */
static int
commit_staged(struct fetch_ctx *fc, struct sync_error *err)
{
    if (!fc->syncing)
        return 0;
    if (fc->sync_thread)
        pthread_join(fc->syncer, NULL);
    fc->syncing = false;
    struct store *st = fc->id->base.st;
    int rc = 0;
    if (fc->sync_result < 0) {
        sync_error_set(err, SYNC_ERR_STORE, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "syncing message files: %s", strerror(-fc->sync_result));
        rc = -1;
    }
    /* Downloads can be fetched again: their commits need not wait for the
     * disk beyond the syncfs above. */
    store_set_durable(st, false);
    if (rc == 0 && store_begin(st) != STORE_OK)
        rc = imap_sync_store_fail(err, st, "starting a transaction");
    else if (rc == 0) {
        for (size_t i = 0; rc == 0 && i < fc->nstaged; i++) {
            struct pending *p = &fc->staged[i];
            char path[4096];
            store_tmp_path(st, p->tmp, path, sizeof path);
            enum store_status r = STORE_OK;
            if (p->action == PENDING_ADD) {
                struct store_item_new n = {
                    .folder_id = fc->folder_id,
                    .uid = p->uid,
                    .modseq = p->modseq,
                    .date = p->date,
                    .wanted_name = p->name,
                    .flags = p->flags,
                    .message_id = p->message_id,
                    .state = p->partial ? STORE_ITEM_PARTIAL : STORE_ITEM_SYNCED,
                    .size = p->size,
                    .full_size = p->partial ? p->full_size : 0,
                };
                r = store_item_add_file(st, &n, path, NULL);
            } else if (p->action == PENDING_UPGRADE) {
                r = store_item_upgrade_file(st, p->target, path, (int64_t)p->size, p->uid,
                                            p->flags);
            } else if (p->action == PENDING_REMAP) {
                r = store_item_set_uid(st, p->target, p->uid, p->modseq, p->flags);
            }
            if (r != STORE_OK)
                rc = imap_sync_store_fail(err, st, "storing messages");
            else
                p->tmp[0] = '\0'; /* placed */
        }
        if (rc == 0 && store_commit(st) != STORE_OK)
            rc = imap_sync_store_fail(err, st, "committing messages");
        else if (rc != 0)
            store_rollback(st);
    }
    store_set_durable(st, true);
    fc->done += (int64_t)fc->nstaged;
    for (size_t i = 0; i < fc->nstaged; i++) {
        if (fc->staged[i].tmp[0]) {
            char path[4096];
            store_tmp_path(st, fc->staged[i].tmp, path, sizeof path);
            unlink(path);
        }
        pending_free(&fc->staged[i]);
    }
    free(fc->staged);
    fc->staged = NULL;
    fc->nstaged = 0;
    fc->nremapped = 0;
    struct sync_host *h = fc->id->base.host;
    if (rc == 0 && h) {
        h->committed(h);
        h->progress(h, fc->folder_id, fc->done, fc->total);
    }
    return rc;
}

/* Write the current batch's files, commit the previous batch (its syncfs
 * has run meanwhile), and start this one's syncfs. */
static int
flush_batch(struct fetch_ctx *fc, struct sync_error *err)
{
    if (fc->nbatch == 0)
        return commit_staged(fc, err);
    struct store *st = fc->id->base.st;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < fc->nbatch; i++) {
        struct pending *p = &fc->batch[i];
        struct store_item it;
        p->action = PENDING_ADD;
        /* The same UID may already be here: a repeated FETCH, or a message
         * kept in part that is now fetched whole. */
        if (store_item_by_uid(st, fc->folder_id, p->uid, &it) == STORE_OK) {
            p->action = it.state == STORE_ITEM_PARTIAL && !p->partial ? PENDING_UPGRADE
                                                                       : PENDING_SKIP;
            p->target = it.id;
        } else if (fc->remap) {
            /* The same message under its new UID keeps its name and inode:
             * same Message-ID (or none), same size, same bytes. */
            struct remap_ctx rm = {.st = st, .fc = fc, .data = p->data, .len = p->size};
            if (store_item_each_unmapped_match(st, fc->folder_id, p->message_id,
                                               (int64_t)p->size, remap_cb, &rm) != STORE_OK)
                rc = imap_sync_store_fail(err, st, "remapping a message");
            if (rc == 0 && rm.id) {
                p->action = PENDING_REMAP;
                p->target = rm.id;
                if (fc->nremapped == fc->aremapped) {
                    fc->aremapped = fc->aremapped ? fc->aremapped * 2 : 16;
                    fc->remapped = xrealloc(fc->remapped, fc->aremapped * sizeof *fc->remapped);
                }
                fc->remapped[fc->nremapped++] = rm.id;
            }
        }
        if (rc == 0 && (p->action == PENDING_ADD || p->action == PENDING_UPGRADE)) {
            snprintf(p->tmp, sizeof p->tmp, "dl-%lld-%u", (long long)fc->folder_id, p->uid);
            char path[4096];
            store_tmp_path(st, p->tmp, path, sizeof path);
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            int e = fd < 0 ? -errno : util_write_all(fd, p->data, p->size);
            if (fd >= 0 && close(fd) < 0 && e == 0)
                e = -errno;
            if (e < 0) {
                sync_error_set(err, SYNC_ERR_STORE, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                               "writing a message: %s", strerror(-e));
                rc = -1;
            }
        }
        free(p->data); /* on disk now, or not needed */
        p->data = NULL;
    }
    if (rc == 0)
        rc = commit_staged(fc, err);
    if (rc == 0) {
        fc->staged = fc->batch;
        fc->nstaged = fc->nbatch;
        fc->batch = NULL;
        fc->nbatch = fc->abatch = 0;
        fc->batch_bytes = 0;
        fc->syncing = true;
        fc->sync_thread = pthread_create(&fc->syncer, NULL, syncer_main, fc) == 0;
        if (!fc->sync_thread)
            fc->sync_result = store_content_sync(st); /* no thread: here and now */
        return 0;
    }
    for (size_t i = 0; i < fc->nbatch; i++) {
        if (fc->batch[i].tmp[0]) {
            char path[4096];
            store_tmp_path(st, fc->batch[i].tmp, path, sizeof path);
            unlink(path);
        }
        pending_free(&fc->batch[i]);
    }
    fc->nbatch = 0;
    fc->batch_bytes = 0;
    return rc;
}

/* Queue a received message for the next commit. flags: canonical, owned by
 * the queue from now on; idate: INTERNALDATE (-1 unknown), used when the
 * Date header is missing or broken. */
static void
add_pending_raw(struct fetch_ctx *fc, uint32_t uid, char *flags, uint64_t modseq,
                int64_t idate, const char *data, size_t len, bool partial, int64_t full_size)
{
    struct mail_info mi;
    mail_info_parse(data, len, &mi);
    int64_t date = mi.date >= 0 ? mi.date : idate >= 0 ? idate : 0;
    if (fc->nbatch == fc->abatch) {
        fc->abatch = fc->abatch ? fc->abatch * 2 : 64;
        fc->batch = xrealloc(fc->batch, fc->abatch * sizeof *fc->batch);
    }
    struct pending *p = &fc->batch[fc->nbatch++];
    p->uid = uid;
    p->modseq = modseq;
    p->date = date;
    p->flags = flags;
    p->message_id = mi.message_id;
    mi.message_id = NULL;
    p->name = names_item(date, mi.subject, ".eml");
    p->data = xmalloc(len ? len : 1);
    memcpy(p->data, data, len);
    p->size = len;
    p->partial = partial;
    p->full_size = full_size;
    fc->batch_bytes += len;
    mail_info_free(&mi);
}

static void
add_pending(struct fetch_ctx *fc, uint32_t uid, const struct imap_value *attrs,
            const char *data, size_t len, bool partial, int64_t full_size)
{
    add_pending_raw(fc, uid, imap_sync_flags(imap_fetch_item(attrs, "FLAGS")),
                    imap_sync_modseq(attrs), internaldate(imap_fetch_item(attrs, "INTERNALDATE")),
                    data, len, partial, full_size);
}

static int
fetch_body_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct fetch_ctx *fc = ctx;
    if (!r->name || strcmp(r->name, "FETCH") != 0 || r->args.n != 1 ||
        r->args.items[0].kind != IMAP_LIST) {
        note_unsolicited(fc->id, r, fc->sc->exists);
        return 0;
    }
    const struct imap_value *a = &r->args.items[0];
    const struct imap_value *body = imap_fetch_item(a, "BODY[]");
    bool partial = false;
    if (!body) {
        body = imap_fetch_item(a, "BODY[]<0>");
        partial = body != NULL;
    }
    uint32_t uid;
    if (!body || !imap_sync_u32(imap_fetch_item(a, "UID"), &uid) || uid == 0) {
        /* A flag change of another message during the download. */
        fc->id->changed_while_selected = true;
        return 0;
    }
    ssize_t w = wanted(fc, uid);
    if (w < 0 || fc->got[w] || (partial && !claims_too_big(&fc->want[w]))) {
        log_warn("the server sent message UID %u, which was not asked for; ignored", uid);
        return 0;
    }
    if (body->kind != IMAP_STRING) {
        log_warn("message UID %u has no body (NIL); it is asked for again later", uid);
        return 0;
    }
    fc->got[w] = true;
    if (partial && body->len > IMAP_MAX_MESSAGE) {
        log_warn("message UID %u is larger than %u MiB: not downloaded", uid,
                 IMAP_MAX_MESSAGE >> 20);
        fc->too_big++;
        return 0;
    }
    add_pending(fc, uid, a, body->data, body->len, false, 0);
    if (fc->batch_bytes >= COMMIT_BYTES || fc->nbatch >= COMMIT_MSGS)
        return flush_batch(fc, err);
    return 0;
}

/* Download the messages `want` (sorted UIDs, sizes alongside when known). */
/* Download the messages `want` (sorted UIDs, sizes alongside when known). */
static int
fetch_bodies(struct fetch_ctx *fc, const struct srv_msg *want, size_t n,
             struct sync_error *err)
{
    struct imap_conn *c = fc->id->conn;
    bool condstore = imap_has(c, IMAP_CAP_CONDSTORE) && !fc->sc->nomodseq;
    fc->want = want;
    fc->nwant = n;
    fc->got = xcalloc(n ? n : 1, sizeof *fc->got);
    fc->too_big = 0;
    fc->total = (int64_t)n;
    size_t next = 0;
    uint32_t inflight[FETCH_INFLIGHT];
    uint32_t inflight_big[FETCH_INFLIGHT]; /* the UID of a partial fetch, else 0 */
    size_t ninflight = 0;
    uint32_t *uids = xmalloc((n ? n : 1) * sizeof *uids);
    struct dynbuf set;
    dynbuf_init(&set, 1 << 20);
    int rc = 0;
    while (rc == 0 && (next < n || ninflight > 0)) {
        while (next < n && ninflight < FETCH_INFLIGHT) {
            if (poisoned(fc->id, fc->folder_id, want[next].uid)) {
                fc->got[next++] = true;
                fc->too_big++;
                continue;
            }
            if (claims_too_big(&want[next])) {
                inflight_big[ninflight] = want[next].uid;
                inflight[ninflight++] = imap_cmd(
                    c, "UID FETCH %u (UID FLAGS INTERNALDATE BODY.PEEK[]<0.%u>%s)",
                    want[next].uid, IMAP_MAX_MESSAGE + 1, condstore ? " MODSEQ" : "");
                next++;
                continue;
            }
            size_t k = 0, bytes = 0;
            while (next < n && k < FETCH_CHUNK_MSGS && !claims_too_big(&want[next]) &&
                   !poisoned(fc->id, fc->folder_id, want[next].uid) &&
                   (k == 0 || bytes + want[next].size <= FETCH_CHUNK_BYTES)) {
                bytes += want[next].size;
                uids[k++] = want[next++].uid;
            }
            dynbuf_reset(&set);
            imap_seqset_format(&set, uids, k);
            inflight_big[ninflight] = 0;
            inflight[ninflight++] = imap_cmd(
                c, "UID FETCH %s (UID FLAGS INTERNALDATE BODY.PEEK[]%s)", set.data,
                condstore ? " MODSEQ" : "");
        }
        if (ninflight == 0)
            break; /* the rest was skipped */
        if (inflight_big[0]) {
            /* What came before is kept even if this one breaks the connection. */
            rc = flush_batch(fc, err);
            if (rc < 0)
                break;
        }
        enum imap_status status;
        rc = imap_wait(c, inflight[0], fetch_body_cb, fc, &status, err);
        if (rc < 0) {
            if (inflight_big[0] && err->code == SYNC_ERR_PROTOCOL) {
                struct imap_driver *id = fc->id;
                id->poison = xrealloc(id->poison, (id->npoison + 1) * sizeof *id->poison);
                id->poison[id->npoison++] = (struct poisoned){fc->folder_id, inflight_big[0]};
                log_warn("message UID %u broke the connection; it is skipped from now on",
                         inflight_big[0]);
            }
            break;
        }
        if (status != IMAP_ST_OK) {
            fc->failed = true;
            snprintf(fc->failmsg, sizeof fc->failmsg, "%s", imap_last_text(c));
            log_warn("the server refused to send some messages: %s", fc->failmsg);
        }
        memmove(inflight, inflight + 1, (ninflight - 1) * sizeof *inflight);
        memmove(inflight_big, inflight_big + 1, (ninflight - 1) * sizeof *inflight_big);
        ninflight--;
    }
    dynbuf_free(&set);
    free(uids);
    if (rc == 0)
        rc = flush_batch(fc, err);
    if (rc == 0)
        rc = commit_staged(fc, err);
    size_t missing = 0;
    for (size_t i = 0; i < n; i++)
        if (!fc->got[i])
            missing++;
    if (rc == 0 && missing) {
        /* Keep the folder's old position so the next sync asks again. */
        fc->failed = true;
        if (!fc->failmsg[0])
            snprintf(fc->failmsg, sizeof fc->failmsg,
                     "%zu message(s) did not arrive; they are asked for again", missing);
    }
    if (fc->too_big)
        snprintf(fc->skipped, sizeof fc->skipped,
                 "%zu message(s) larger than %u MiB are not downloaded", fc->too_big,
                 IMAP_MAX_MESSAGE >> 20);
    free(fc->got);
    fc->got = NULL;
    return rc;
}

/* ---- headers mode ----
 * First the header and BODYSTRUCTURE of each message; from them the part to
 * keep (imap_body.c); then that part for all messages that keep the same
 * section, in one command per section. Messages best kept whole (a single
 * text part, signed, encrypted, odd) go the usual way. */

#define PARTIAL_CHUNK 250

struct part_msg {
    uint32_t uid;
    char *flags;        /* owned */
    uint64_t modseq;
    int64_t idate;
    int64_t full_size;
    char *header;       /* owned */
    size_t header_len;
    struct body_plan plan;
    bool done;
};

struct partial_ctx {
    struct fetch_ctx *fc;
    struct part_msg *v;  /* sorted by uid */
    size_t n;
    struct srv_msg *whole; /* owned: to fetch whole */
    size_t nwhole;
    const char *section;   /* round 2: the section asked for */
    int rc;
    struct sync_error *err;
};

static struct part_msg *
part_find(struct partial_ctx *pc, uint32_t uid)
{
    size_t lo = 0, hi = pc->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pc->v[mid].uid == uid)
            return &pc->v[mid];
        if (pc->v[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void
partial_keep(struct partial_ctx *pc, struct part_msg *m, const char *mime, size_t mime_len,
             const char *part, size_t part_len)
{
    struct dynbuf out;
    dynbuf_init(&out, IMAP_MAX_MESSAGE);
    if (body_assemble(&out, &m->plan, m->header, m->header_len, mime, mime_len, part,
                      part_len) == 0) {
        add_pending_raw(pc->fc, m->uid, m->flags, m->modseq, m->idate, out.data, out.len, true,
                        m->full_size);
        m->flags = NULL;
        m->done = true;
    }
    dynbuf_free(&out);
    if (pc->fc->batch_bytes >= COMMIT_BYTES || pc->fc->nbatch >= COMMIT_MSGS)
        if (flush_batch(pc->fc, pc->err) < 0)
            pc->rc = -1;
}

static int
partial_head_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct partial_ctx *pc = ctx;
    if (!r->name || strcmp(r->name, "FETCH") != 0 || r->args.n != 1 ||
        r->args.items[0].kind != IMAP_LIST) {
        note_unsolicited(pc->fc->id, r, pc->fc->sc->exists);
        return 0;
    }
    const struct imap_value *a = &r->args.items[0];
    uint32_t uid;
    const struct imap_value *hdr = imap_fetch_item(a, "BODY[HEADER]");
    const struct imap_value *bs = imap_fetch_item(a, "BODYSTRUCTURE");
    if (!imap_sync_u32(imap_fetch_item(a, "UID"), &uid) || !hdr || hdr->kind != IMAP_STRING ||
        !bs)
        return 0;
    struct part_msg *m = part_find(pc, uid);
    if (!m || m->header)
        return 0; /* not asked for, or a repeat */
    uint32_t size = 0;
    imap_sync_u32(imap_fetch_item(a, "RFC822.SIZE"), &size);
    m->full_size = size;
    m->flags = imap_sync_flags(imap_fetch_item(a, "FLAGS"));
    m->modseq = imap_sync_modseq(a);
    m->idate = internaldate(imap_fetch_item(a, "INTERNALDATE"));
    m->header = xstrndup(hdr->data, hdr->len);
    m->header_len = hdr->len;
    body_plan_make(bs, &m->plan);
    if (m->plan.kind == BODY_PLAN_WHOLE) {
        pc->whole = xrealloc(pc->whole, (pc->nwhole + 1) * sizeof *pc->whole);
        pc->whole[pc->nwhole++] = (struct srv_msg){.uid = uid, .size = size};
        m->done = true;
    } else if (m->plan.kind == BODY_PLAN_HEADER) {
        partial_keep(pc, m, NULL, 0, NULL, 0);
    }
    return 0;
}

static int
partial_part_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct partial_ctx *pc = ctx;
    if (!r->name || strcmp(r->name, "FETCH") != 0 || r->args.n != 1 ||
        r->args.items[0].kind != IMAP_LIST) {
        note_unsolicited(pc->fc->id, r, pc->fc->sc->exists);
        return 0;
    }
    const struct imap_value *a = &r->args.items[0];
    uint32_t uid;
    char mime_name[96], part_name[96];
    snprintf(mime_name, sizeof mime_name, "BODY[%s.MIME]", pc->section);
    snprintf(part_name, sizeof part_name, "BODY[%s]", pc->section);
    const struct imap_value *mime = imap_fetch_item(a, mime_name);
    const struct imap_value *part = imap_fetch_item(a, part_name);
    if (!imap_sync_u32(imap_fetch_item(a, "UID"), &uid) || !part || part->kind != IMAP_STRING)
        return 0;
    struct part_msg *m = part_find(pc, uid);
    if (!m || m->done || m->plan.kind != BODY_PLAN_PART || strcmp(m->plan.section, pc->section))
        return 0;
    bool has_mime = mime && mime->kind == IMAP_STRING;
    partial_keep(pc, m, has_mime ? mime->data : NULL, has_mime ? mime->len : 0, part->data,
                 part->len);
    return 0;
}

static int
cmp_part(const void *a, const void *b)
{
    uint32_t x = ((const struct part_msg *)a)->uid, y = ((const struct part_msg *)b)->uid;
    return x < y ? -1 : x > y;
}

/* Keep the messages `want` in part (sorted by UID). */
static int
fetch_partials(struct fetch_ctx *fc, const struct srv_msg *want, size_t n,
               struct sync_error *err)
{
    struct imap_conn *c = fc->id->conn;
    bool condstore = imap_has(c, IMAP_CAP_CONDSTORE) && !fc->sc->nomodseq;
    struct dynbuf set;
    dynbuf_init(&set, 1 << 20);
    uint32_t *uids = xmalloc((n ? n : 1) * sizeof *uids);
    int rc = 0;
    size_t missing = 0;
    struct srv_msg *whole_all = NULL;
    size_t nwhole_all = 0;
    for (size_t start = 0; rc == 0 && start < n; start += PARTIAL_CHUNK) {
        size_t k = n - start < PARTIAL_CHUNK ? n - start : PARTIAL_CHUNK;
        struct partial_ctx pc = {.fc = fc, .err = err};
        pc.v = xcalloc(k, sizeof *pc.v);
        pc.n = k;
        for (size_t i = 0; i < k; i++) {
            pc.v[i].uid = want[start + i].uid;
            uids[i] = want[start + i].uid;
        }
        qsort(pc.v, k, sizeof *pc.v, cmp_part);
        dynbuf_reset(&set);
        imap_seqset_format(&set, uids, k);
        uint32_t tag = imap_cmd(c, "UID FETCH %s (UID FLAGS INTERNALDATE RFC822.SIZE "
                                   "BODYSTRUCTURE BODY.PEEK[HEADER]%s)",
                                set.data, condstore ? " MODSEQ" : "");
        enum imap_status status;
        rc = imap_wait(c, tag, partial_head_cb, &pc, &status, err);
        if (rc == 0)
            rc = pc.rc;
        if (rc == 0 && status != IMAP_ST_OK) {
            /* A server that cannot say BODYSTRUCTURE: keep them whole. */
            log_warn("the server refused BODYSTRUCTURE (%s); fetching whole", imap_last_text(c));
            for (size_t i = 0; i < k; i++)
                if (!pc.v[i].header) {
                    pc.whole = xrealloc(pc.whole, (pc.nwhole + 1) * sizeof *pc.whole);
                    pc.whole[pc.nwhole++] = (struct srv_msg){.uid = pc.v[i].uid};
                    pc.v[i].done = true;
                    pc.v[i].header = xstrdup(""); /* counted as handled */
                }
        }
        /* One command per section kept, for all messages that keep it. */
        for (size_t i = 0; rc == 0 && i < k; i++) {
            struct part_msg *m = &pc.v[i];
            if (m->done || m->plan.kind != BODY_PLAN_PART || !m->header)
                continue;
            size_t nu = 0;
            for (size_t j = i; j < k; j++)
                if (!pc.v[j].done && pc.v[j].plan.kind == BODY_PLAN_PART && pc.v[j].header &&
                    strcmp(pc.v[j].plan.section, m->plan.section) == 0)
                    uids[nu++] = pc.v[j].uid;
            char section[64];
            snprintf(section, sizeof section, "%s", m->plan.section);
            pc.section = section;
            dynbuf_reset(&set);
            imap_seqset_format(&set, uids, nu);
            tag = imap_cmd(c, "UID FETCH %s (UID BODY.PEEK[%s.MIME] BODY.PEEK[%s])", set.data,
                           section, section);
            rc = imap_wait(c, tag, partial_part_cb, &pc, &status, err);
            if (rc == 0)
                rc = pc.rc;
            /* Any of this section that did not come: not asked again now. */
            for (size_t j = i; j < k; j++)
                if (!pc.v[j].done && pc.v[j].plan.kind == BODY_PLAN_PART &&
                    strcmp(pc.v[j].plan.section, section) == 0) {
                    pc.v[j].done = true;
                    missing++;
                }
        }
        for (size_t i = 0; i < k; i++) {
            if (!pc.v[i].header)
                missing++;
            free(pc.v[i].flags);
            free(pc.v[i].header);
            body_plan_clear(&pc.v[i].plan);
        }
        free(pc.v);
        whole_all = xrealloc(whole_all, (nwhole_all + pc.nwhole + 1) * sizeof *whole_all);
        if (pc.nwhole)
            memcpy(whole_all + nwhole_all, pc.whole, pc.nwhole * sizeof *pc.whole);
        nwhole_all += pc.nwhole;
        free(pc.whole);
        if (rc == 0)
            rc = flush_batch(fc, err);
    }
    if (rc == 0)
        rc = commit_staged(fc, err);
    dynbuf_free(&set);
    free(uids);
    if (rc == 0 && missing) {
        fc->failed = true;
        snprintf(fc->failmsg, sizeof fc->failmsg,
                 "%zu message(s) did not arrive; they are asked for again", missing);
    }
    if (rc == 0 && nwhole_all) {
        bool failed = fc->failed;
        char failmsg[sizeof fc->failmsg];
        memcpy(failmsg, fc->failmsg, sizeof failmsg);
        sort_any(whole_all, nwhole_all, sizeof *whole_all, srv_cmp);
        rc = fetch_bodies(fc, whole_all, nwhole_all, err);
        if (failed && !fc->failed) {
            fc->failed = true;
            memcpy(fc->failmsg, failmsg, sizeof failmsg);
        }
    }
    free(whole_all);
    return rc;
}

/* Local state of a folder, read once per sync: uid → (flags, item id). */
struct local_msg {
    uint32_t uid;
    int64_t id;
    char *flags; /* owned */
};

struct local_list {
    struct local_msg *v;
    size_t n, alloc;
};

static int
local_cb(void *ctx, uint32_t uid, uint64_t modseq, const char *flags, int64_t id)
{
    struct local_list *l = ctx;
    if (l->n == l->alloc) {
        l->alloc = l->alloc ? l->alloc * 2 : 256;
        l->v = xrealloc(l->v, l->alloc * sizeof *l->v);
    }
    l->v[l->n++] = (struct local_msg){uid, id, xstrdup(flags ? flags : "")};
    return 0;
}

static void
local_free(struct local_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].flags);
    free(l->v);
}

static struct local_msg *
local_find(struct local_list *l, uint32_t uid)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (l->v[mid].uid == uid)
            return &l->v[mid];
        if (l->v[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Apply flag updates; return the messages that are not in the store yet. */
static int
apply_updates(struct imap_driver *id, int64_t folder_id, struct local_list *local,
              struct srv_list *upd, struct srv_list *missing, struct sync_error *err)
{
    struct store *st = id->base.st;
    if (upd->n == 0)
        return 0;
    sort_any(upd->v, upd->n, sizeof *upd->v, srv_cmp);
    int rc = 0;
    if (store_begin(st) != STORE_OK)
        return imap_sync_store_fail(err, st, "starting a transaction");
    for (size_t i = 0; rc == 0 && i < upd->n; i++) {
        struct srv_msg *m = &upd->v[i];
        if (i > 0 && upd->v[i - 1].uid == m->uid)
            continue;
        /* The same UID twice (CHANGEDSINCE and the new-mail listing): take
         * the size where one of them has it. */
        for (size_t j = i + 1; j < upd->n && upd->v[j].uid == m->uid; j++)
            if (!m->size)
                m->size = upd->v[j].size;
        struct local_msg *l = local_find(local, m->uid);
        if (!l) {
            struct srv_msg *x = srv_list_add(missing);
            *x = *m;
            x->flags = xstrdup(m->flags);
            continue;
        }
        struct journal_entry pend;
        if (strcmp(l->flags, m->flags) != 0 &&
            journal_find_item(st, l->id, JOURNAL_BIT(JOURNAL_FLAGS),
                              JOURNAL_BIT(JOURNAL_QUEUED) | JOURNAL_BIT(JOURNAL_INFLIGHT),
                              &pend) == STORE_OK) {
            /* The user's change is on its way: it is not undone here. */
            journal_entry_clear(&pend);
        } else if (strcmp(l->flags, m->flags) != 0) {
            if (store_item_set_flags(st, l->id, m->flags, m->modseq) != STORE_OK)
                rc = imap_sync_store_fail(err, st, "updating flags");
            free(l->flags);
            l->flags = xstrdup(m->flags);
        }
    }
    if (rc == 0 && store_commit(st) != STORE_OK)
        rc = imap_sync_store_fail(err, st, "committing flags");
    else if (rc != 0)
        store_rollback(st);
    return rc;
}

/* Remove from the store the messages whose UIDs are in `gone` (a test). */
static int
remove_local(struct imap_driver *id, struct local_list *local,
             bool (*gone)(void *ctx, uint32_t uid), void *ctx, struct sync_error *err)
{
    struct store *st = id->base.st;
    int rc = 0;
    bool any = false;
    for (size_t i = 0; i < local->n; i++)
        if (gone(ctx, local->v[i].uid)) {
            any = true;
            break;
        }
    if (!any)
        return 0;
    if (store_begin(st) != STORE_OK)
        return imap_sync_store_fail(err, st, "starting a transaction");
    size_t kept = 0;
    for (size_t i = 0; i < local->n; i++) {
        struct store_item it;
        if (rc == 0 && gone(ctx, local->v[i].uid) &&
            store_item_get(st, local->v[i].id, &it) == STORE_OK) {
            if (it.state != STORE_ITEM_SYNCED && it.state != STORE_ITEM_PARTIAL) {
                /* Changed here, removed there: keep what the user wrote
                 * (the conflicts issue decides where it goes). */
                log_warn("message %s was removed on the server but has local changes; kept",
                         it.name);
                local->v[kept++] = local->v[i];
                continue;
            }
            if (store_item_remove(st, local->v[i].id) != STORE_OK)
                rc = imap_sync_store_fail(err, st, "removing an expunged message");
            free(local->v[i].flags);
            continue;
        }
        local->v[kept++] = local->v[i];
    }
    local->n = kept;
    if (rc == 0 && store_commit(st) != STORE_OK)
        rc = imap_sync_store_fail(err, st, "committing expunges");
    else if (rc != 0)
        store_rollback(st);
    return rc;
}

static bool
gone_not_on_server(void *ctx, uint32_t uid)
{
    struct srv_list *srv = ctx; /* sorted */
    size_t lo = 0, hi = srv->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (srv->v[mid].uid == uid)
            return false;
        if (srv->v[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return true;
}

static bool
gone_vanished(void *ctx, uint32_t uid)
{
    const char *set = ctx;
    struct imap_seqset_iter it;
    imap_seqset_begin(&it, set, strlen(set));
    uint32_t lo, hi;
    while (imap_seqset_next(&it, &lo, &hi) == 1)
        if (uid >= lo && uid <= hi)
            return true;
    return false;
}

/* After a UIDVALIDITY change: items that found no new UID are gone. Only
 * items that were in sync go; local changes (later issues) stay. */
struct unmapped_ctx {
    struct store *st;
    int rc;
};

static int
drop_unmapped_cb(void *ctx, const struct store_item *it)
{
    struct unmapped_ctx *uc = ctx;
    if (it->state != STORE_ITEM_SYNCED && it->state != STORE_ITEM_PARTIAL)
        return 0;
    if (store_item_remove(uc->st, it->id) != STORE_OK) {
        uc->rc = -1;
        return 1;
    }
    return 0;
}

static int
select_folder(struct imap_driver *id, const struct store_folder *f, bool resync,
              struct select_ctx *sc, struct sync_error *err)
{
    struct imap_conn *c = id->conn;
    imap_cmd_begin(c);
    imap_cmd_add(c, "SELECT ");
    imap_cmd_add_astring(c, f->server_name);
    if (imap_qresync_enabled(c) && resync && f->uidvalidity && f->highestmodseq)
        imap_cmd_add(c, " (QRESYNC (%u %llu))", f->uidvalidity,
                     (unsigned long long)f->highestmodseq);
    else if (imap_has(c, IMAP_CAP_CONDSTORE))
        imap_cmd_add(c, " (CONDSTORE)");
    uint32_t tag = imap_cmd_end(c);
    free(id->selected);
    id->selected = NULL;
    id->changed_while_selected = false;
    enum imap_status status;
    if (imap_wait(c, tag, select_cb, sc, &status, err) < 0)
        return -1;
    if (status != IMAP_ST_OK) {
        sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_FOLDER, SYNC_RETRY_LATER,
                       "cannot open folder %s: %s", f->name, imap_last_text(c));
        return -1;
    }
    id->selected = xstrdup(f->server_name);
    return 0;
}

struct leaving {
    uint32_t *v;
    size_t n, alloc;
};

static int
leaving_cb(void *ctx, uint32_t uid)
{
    struct leaving *lv = ctx;
    if (lv->n == lv->alloc) {
        lv->alloc = lv->alloc ? lv->alloc * 2 : 16;
        lv->v = xrealloc(lv->v, lv->alloc * sizeof *lv->v);
    }
    lv->v[lv->n++] = uid;
    return 0;
}

static int
cmp_uid(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int
imap_sync_select(struct imap_driver *id, const char *server_name, struct imap_mailbox *out,
                 struct sync_error *err)
{
    struct imap_conn *c = id->conn;
    imap_cmd_begin(c);
    imap_cmd_add(c, "SELECT ");
    imap_cmd_add_astring(c, server_name);
    if (imap_has(c, IMAP_CAP_CONDSTORE))
        imap_cmd_add(c, " (CONDSTORE)");
    uint32_t tag = imap_cmd_end(c);
    free(id->selected);
    id->selected = NULL;
    id->changed_while_selected = false;
    struct select_ctx sc = {.id = id};
    enum imap_status status;
    int rc = imap_wait(c, tag, select_cb, &sc, &status, err);
    srv_list_free(&sc.updates);
    free(sc.vanished);
    if (rc < 0)
        return imap_sync_conn_fail(id, err);
    if (status != IMAP_ST_OK) {
        sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_FOLDER, SYNC_RETRY_LATER,
                       "cannot open folder %s: %s", server_name, imap_last_text(c));
        return 1;
    }
    id->selected = xstrdup(server_name);
    out->exists = sc.exists;
    out->uidvalidity = sc.uidvalidity;
    out->uidnext = sc.uidnext;
    out->highestmodseq = sc.highestmodseq;
    return 0;
}

/* In headers mode, a message this small is fetched whole. */
#define WHOLE_BELOW (16u << 10)

struct upgrade_ctx {
    struct srv_list *list;
};

static int
upgrade_cb(void *ctx, const struct store_item *it)
{
    struct upgrade_ctx *up = ctx;
    if (it->uid) {
        struct srv_msg *m = srv_list_add(up->list);
        m->uid = it->uid;
        m->size = (uint32_t)(it->full_size > UINT32_MAX ? UINT32_MAX : it->full_size);
    }
    return 0;
}

static int
op_sync_folder(struct sync_driver *d, int64_t folder_id, struct sync_error *err)
{
    struct imap_driver *id = imap_driver_of(d);
    struct store *st = d->st;
    struct imap_conn *c = id->conn;
    struct store_folder f;
    if (store_folder_get(st, folder_id, &f) != STORE_OK)
        return imap_sync_store_fail(err, st, "reading a folder");
    enum store_mode mode =
        store_folder_mode(&f, d->host ? d->host->mail_default : STORE_MODE_DEFAULT);
    if (!f.selectable || !f.server_name || mode == STORE_MODE_OFF) {
        /* off: nothing is downloaded; what is here stays (local changes still
         * go out: the journal does not look at modes). */
        store_folder_clear(&f);
        return 0;
    }
    struct select_ctx sc = {.id = id};
    struct local_list local = {0};
    struct srv_list server = {0}, missing = {0};
    struct fetch_ctx fc = {.id = id, .sc = &sc, .folder_id = folder_id};
    int rc = select_folder(id, &f, true, &sc, err);
    if (rc < 0)
        goto out;

    bool validity_changed = f.uidvalidity != 0 && sc.uidvalidity != f.uidvalidity;
    bool condstore = imap_has(c, IMAP_CAP_CONDSTORE) && !sc.nomodseq && sc.highestmodseq;
    bool full = f.uidvalidity == 0 || validity_changed || !condstore || f.highestmodseq == 0;
    if (validity_changed) {
        log_warn("folder %s: UIDVALIDITY changed (%u -> %u); matching messages again",
                 f.name, f.uidvalidity, sc.uidvalidity);
        if (store_begin(st) != STORE_OK || store_folder_unmap_uids(st, folder_id) != STORE_OK ||
            store_commit(st) != STORE_OK) {
            store_rollback(st);
            rc = imap_sync_store_fail(err, st, "unmapping UIDs");
            goto out;
        }
        fc.remap = true;
    }
    if (store_item_each_uid(st, folder_id, local_cb, &local) != STORE_OK) {
        rc = imap_sync_store_fail(err, st, "reading messages");
        goto out;
    }
    if (!fc.remap) {
        /* Leftovers of an interrupted remap still need their match (items
         * made here have no UID either, but they are not synced ones). */
        int64_t unmapped = 0;
        store_item_count_unmapped_synced(st, folder_id, &unmapped);
        fc.remap = unmapped > 0;
    }

    if (full) {
        /* Every UID and its flags: expunges, flag changes and new ones at once. */
        if (sc.exists > 0) {
            uint32_t tag = imap_cmd(c, "UID FETCH 1:* (UID FLAGS RFC822.SIZE%s)",
                                    condstore ? " MODSEQ" : "");
            rc = imap_wait(c, tag, uidlist_cb, &sc, NULL, err);
            if (rc < 0)
                goto out;
        }
        server = sc.updates;
        memset(&sc.updates, 0, sizeof sc.updates);
        sort_any(server.v, server.n, sizeof *server.v, srv_cmp);
        rc = remove_local(id, &local, gone_not_on_server, &server, err);
        if (rc == 0)
            rc = apply_updates(id, folder_id, &local, &server, &missing, err);
    } else {
        if (!imap_qresync_enabled(c) && sc.highestmodseq != f.highestmodseq) {
            uint32_t tag = imap_cmd(c, "UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE %llu)",
                                    (unsigned long long)f.highestmodseq);
            rc = imap_wait(c, tag, uidlist_cb, &sc, NULL, err);
            if (rc < 0)
                goto out;
        }
        if (sc.uidnext > f.uidnext && f.uidnext) {
            uint32_t tag = imap_cmd(c, "UID FETCH %u:* (UID FLAGS RFC822.SIZE)", f.uidnext);
            rc = imap_wait(c, tag, uidlist_cb, &sc, NULL, err);
            if (rc < 0)
                goto out;
        }
        if (imap_qresync_enabled(c)) {
            if (sc.vanished)
                rc = remove_local(id, &local, gone_vanished, sc.vanished, err);
        } else if (rc == 0 && (sc.highestmodseq != f.highestmodseq ||
                               sc.uidnext != f.uidnext || sc.exists != f.server_count)) {
            /* CONDSTORE without QRESYNC cannot name expunged UIDs: compare
             * the server's UID list (one compact answer with ESEARCH). */
            struct uidset_ctx all = {.max = ((size_t)sc.exists + 1000) * 2};
            uint32_t tag = imap_has(c, IMAP_CAP_ESEARCH)
                               ? imap_cmd(c, "UID SEARCH RETURN (ALL) ALL")
                               : imap_cmd(c, "UID SEARCH ALL");
            rc = imap_wait(c, tag, uidset_cb, &all, NULL, err);
            if (rc == 0 && all.truncated) {
                log_warn("folder %s: the server listed more UIDs than it has messages; "
                         "nothing removed", f.name);
            } else if (rc == 0) {
                sort_any(all.list.v, all.list.n, sizeof *all.list.v, srv_cmp);
                rc = remove_local(id, &local, gone_not_on_server, &all.list, err);
            }
            srv_list_free(&all.list);
        }
        if (rc == 0)
            rc = apply_updates(id, folder_id, &local, &sc.updates, &missing, err);
    }
    if (rc < 0)
        goto out;

    sort_any(missing.v, missing.n, sizeof *missing.v, srv_cmp);
    /* Messages the journal is about to delete or move away stay away. */
    struct leaving lv = {0};
    if (journal_each_leaving_uid(st, f.server_name, leaving_cb, &lv) != STORE_OK) {
        rc = imap_sync_store_fail(err, st, "reading the journal");
        goto out;
    }
    if (lv.n) {
        sort_any(lv.v, lv.n, sizeof *lv.v, cmp_uid);
        size_t k = 0;
        for (size_t i = 0; i < missing.n; i++) {
            if (bsearch(&missing.v[i].uid, lv.v, lv.n, sizeof *lv.v, cmp_uid)) {
                free(missing.v[i].flags);
                continue;
            }
            missing.v[k++] = missing.v[i];
        }
        missing.n = k;
    }
    free(lv.v);
    if (mode == STORE_MODE_FULL) {
        /* Whole now: what headers mode kept in part comes in full. */
        struct upgrade_ctx up = {.list = &missing};
        if (store_item_each_partial(st, folder_id, upgrade_cb, &up) != STORE_OK) {
            rc = imap_sync_store_fail(err, st, "reading messages kept in part");
            goto out;
        }
        sort_any(missing.v, missing.n, sizeof *missing.v, srv_cmp);
    }
    if (missing.n && mode == STORE_MODE_HEADERS) {
        /* Small messages cost no more whole than in part. */
        struct srv_list small = {0}, big = {0};
        for (size_t i = 0; i < missing.n; i++) {
            struct srv_list *l = missing.v[i].size && missing.v[i].size <= WHOLE_BELOW
                                     ? &small : &big;
            struct srv_msg *m = srv_list_add(l);
            *m = missing.v[i];
            m->flags = NULL;
        }
        log_info("folder %s: downloading %zu messages (%zu in part)", f.name, missing.n,
                 big.n);
        rc = fetch_bodies(&fc, small.v, small.n, err);
        if (rc == 0)
            rc = fetch_partials(&fc, big.v, big.n, err);
        srv_list_free(&small);
        srv_list_free(&big);
        if (rc < 0)
            goto out;
    } else if (missing.n) {
        log_info("folder %s: downloading %zu messages", f.name, missing.n);
        rc = fetch_bodies(&fc, missing.v, missing.n, err);
        if (rc < 0)
            goto out;
    }
    if (fc.remap && !fc.failed) {
        struct unmapped_ctx uc = {.st = st};
        if (store_begin(st) != STORE_OK ||
            store_item_each_unmapped(st, folder_id, drop_unmapped_cb, &uc) != STORE_OK ||
            uc.rc < 0 || store_commit(st) != STORE_OK) {
            store_rollback(st);
            rc = imap_sync_store_fail(err, st, "dropping messages gone after a UIDVALIDITY change");
            goto out;
        }
        if (d->host)
            d->host->committed(d->host);
    }

    /* Record where we are. After a refused download the old position stays,
     * so the next sync asks again for what is missing. */
    free(f.error);
    f.error = NULL;
    if (fc.failed) {
        f.error = xasprintf("some messages could not be downloaded: %s", fc.failmsg);
    } else {
        if (fc.skipped[0])
            f.error = xstrdup(fc.skipped);
        f.uidvalidity = sc.uidvalidity;
        f.uidnext = sc.uidnext;
        f.highestmodseq = condstore ? sc.highestmodseq : 0;
        f.server_count = sc.exists;
    }
    f.last_sync = util_now();
    if (store_folder_update_sync(st, &f) != STORE_OK) {
        rc = imap_sync_store_fail(err, st, "saving the folder state");
        goto out;
    }
    if (d->host)
        d->host->committed(d->host);
    if (fc.failed) {
        sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_FOLDER, SYNC_RETRY_LATER, "%s",
                       f.error);
        rc = -1;
    }
out:
    if (fc.syncing) {
        /* A failure left a batch waiting: it is not committed. */
        struct sync_error ignored;
        fc.sync_result = -EIO;
        if (fc.sync_thread)
            pthread_join(fc.syncer, NULL);
        fc.sync_thread = false;
        fc.sync_result = -EIO;
        commit_staged(&fc, &ignored);
    }
    free(fc.remapped);
    for (size_t i = 0; i < fc.nbatch; i++)
        pending_free(&fc.batch[i]);
    free(fc.batch);
    free(sc.vanished);
    srv_list_free(&sc.updates);
    srv_list_free(&server);
    srv_list_free(&missing);
    local_free(&local);
    store_folder_clear(&f);
    if (rc < 0)
        return imap_sync_conn_fail(id, err);
    return 0;
}

/* ---- waiting for changes ---- */

/* INBOX's folder, when it syncs (a mode other than off): -1 when it does
 * not, so nobody waits on it. */
static int
inbox_id(struct imap_driver *id, int64_t *out)
{
    struct store_folder f;
    if (store_folder_by_server_name(id->base.st, STORE_KIND_MAIL, "INBOX", &f) != STORE_OK)
        return -1;
    *out = f.id;
    enum store_mode mode =
        store_folder_mode(&f, id->base.host ? id->base.host->mail_default : STORE_MODE_DEFAULT);
    store_folder_clear(&f);
    return mode == STORE_MODE_OFF ? -1 : 0;
}

static int
sleep_wait(int wake_fd, int timeout_ms, atomic_bool *cancel)
{
    int64_t deadline = util_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - util_now_ms();
        if (left <= 0)
            return 0;
        if (cancel && atomic_load(cancel))
            return 2;
        struct pollfd p = {.fd = wake_fd, .events = POLLIN};
        int n = poll(&p, wake_fd >= 0 ? 1 : 0, left > 500 ? 500 : (int)left);
        if (n > 0)
            return 2;
    }
}

static int
op_wait(struct sync_driver *d, int wake_fd, int timeout_ms, int64_t *folder_id,
        struct sync_error *err)
{
    struct imap_driver *id = imap_driver_of(d);
    struct imap_conn *c = id->conn;
    int64_t inbox;
    if (!c || !imap_has(c, IMAP_CAP_IDLE) || inbox_id(id, &inbox) < 0)
        return sleep_wait(wake_fd, timeout_ms, d->host ? d->host->cancel : NULL);
    *folder_id = inbox;
    if (timeout_ms > IDLE_MAX_MS)
        timeout_ms = IDLE_MAX_MS;
    if (!id->selected || strcmp(id->selected, "INBOX") != 0) {
        /* Changes since INBOX was last synced would not be announced: sync
         * it first, which leaves it selected. */
        return 1;
    }
    if (id->changed_while_selected)
        return 1;
    uint32_t tag = imap_cmd(c, "IDLE");
    int result = 0;
    bool idling = false;
    int64_t deadline = util_now_ms() + timeout_ms;
    for (;;) {
        struct imap_response *r;
        int64_t left = deadline - util_now_ms();
        if (left < 0)
            left = 0;
        int n = imap_read(c, &r, (int)left, wake_fd, err);
        if (n < 0)
            return imap_sync_conn_fail(id, err);
        if (n == 0) {
            result = 0;
            break;
        }
        if (n == 2) {
            result = 2;
            break;
        }
        if (r->kind == IMAP_RESP_CONTINUATION) {
            idling = true;
            continue;
        }
        if (r->kind == IMAP_RESP_TAGGED && imap_resp_tag(r) == tag) {
            /* The server ended IDLE (or refused it). */
            return r->status == IMAP_ST_OK ? 1 : sleep_wait(wake_fd, timeout_ms, NULL);
        }
        if (r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_ST_BYE) {
            sync_error_set(err, SYNC_ERR_CONNECT, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                           "the server closed the connection: %s", r->text ? r->text : "");
            return imap_sync_conn_fail(id, err);
        }
        if (r->name && (strcmp(r->name, "EXISTS") == 0 || strcmp(r->name, "EXPUNGE") == 0 ||
                        strcmp(r->name, "FETCH") == 0 || strcmp(r->name, "VANISHED") == 0)) {
            result = 1;
            break;
        }
    }
    (void)idling;
    imap_send_raw(c, "DONE\r\n");
    struct select_ctx sc = {.id = id, .exists = UINT32_MAX};
    if (imap_wait(c, tag, generic_cb, &sc, NULL, err) < 0)
        return imap_sync_conn_fail(id, err);
    if (id->changed_while_selected && result != 2)
        result = 1;
    return result;
}

static void
op_free(struct sync_driver *d)
{
    struct imap_driver *id = imap_driver_of(d);
    op_disconnect(d);
    for (size_t i = 0; i < id->nstatus; i++)
        free(id->status[i].name);
    free(id->status);
    free(id->poison);
    free(id);
}

struct whole_ctx {
    struct imap_driver *id;
    uint32_t uid;
    char *data; /* owned */
    size_t len;
};

static int
whole_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct whole_ctx *wc = ctx;
    if (!r->name || strcmp(r->name, "FETCH") != 0 || r->args.n != 1) {
        imap_sync_note(wc->id, r);
        return 0;
    }
    const struct imap_value *a = &r->args.items[0];
    uint32_t uid;
    const struct imap_value *b = imap_fetch_item(a, "BODY[]");
    if (!imap_sync_u32(imap_fetch_item(a, "UID"), &uid) || uid != wc->uid || !b ||
        b->kind != IMAP_STRING || wc->data)
        return 0;
    wc->data = xmalloc(b->len ? b->len : 1);
    memcpy(wc->data, b->data, b->len);
    wc->len = b->len;
    return 0;
}

static int
op_fetch_whole(struct sync_driver *d, int64_t item_id, struct sync_error *err)
{
    struct imap_driver *id = imap_driver_of(d);
    struct store *st = d->st;
    struct store_item it;
    struct store_folder f;
    if (store_item_get(st, item_id, &it) != STORE_OK || it.uid == 0 ||
        it.state != STORE_ITEM_PARTIAL) {
        sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_ITEM, SYNC_RETRY_NEVER,
                       "not a message kept in part");
        return -1;
    }
    if (store_folder_get(st, it.folder_id, &f) != STORE_OK || !f.server_name)
        return imap_sync_store_fail(err, st, "reading a folder");
    struct imap_mailbox mb;
    int rc = 0;
    if (!id->selected || strcmp(id->selected, f.server_name) != 0) {
        int s = imap_sync_select(id, f.server_name, &mb, err);
        rc = s < 0 ? -1 : s > 0 ? -1 : 0;
        if (s == 0 && f.uidvalidity && mb.uidvalidity != f.uidvalidity) {
            sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_ITEM, SYNC_RETRY_LATER,
                           "the folder changed on the server");
            rc = -1;
        }
    }
    struct whole_ctx wc = {.id = id, .uid = it.uid};
    if (rc == 0) {
        uint32_t tag = imap_cmd(id->conn, "UID FETCH %u (UID BODY.PEEK[])", it.uid);
        rc = imap_wait(id->conn, tag, whole_cb, &wc, NULL, err);
    }
    if (rc == 0 && !wc.data) {
        sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_ITEM, SYNC_RETRY_LATER,
                       "the server did not send message UID %u", it.uid);
        rc = -1;
        err->scope = SYNC_SCOPE_ITEM;
    }
    if (rc == 0) {
        int e = store_content_replace(st, item_id, wc.data, wc.len);
        if (e < 0) {
            sync_error_set(err, SYNC_ERR_STORE, SYNC_SCOPE_ITEM, SYNC_RETRY_LATER,
                           "writing message %s: %s", it.name, strerror(-e));
            rc = -1;
        }
    }
    if (rc == 0) {
        /* The reader waits for the file, not for the row. */
        if (d->host && d->host->item_ready)
            d->host->item_ready(d->host, item_id, 0);
        if (store_begin(st) != STORE_OK || store_item_set_whole(st, item_id, (int64_t)wc.len) !=
                                               STORE_OK || store_commit(st) != STORE_OK) {
            store_rollback(st);
            rc = imap_sync_store_fail(err, st, "recording a whole message");
        }
    }
    free(wc.data);
    store_folder_clear(&f);
    if (rc < 0 && err->scope == SYNC_SCOPE_ACCOUNT)
        return imap_sync_conn_fail(id, err);
    return rc;
}

static int
op_push(struct sync_driver *d, struct sync_error *err)
{
    return imap_push(imap_driver_of(d), err);
}

static const struct sync_driver_ops imap_ops = {
    .name = "imap",
    .connect = op_connect,
    .disconnect = op_disconnect,
    .connected = op_connected,
    .push = op_push,
    .fetch_whole = op_fetch_whole,
    .list = op_list,
    .maybe_changed = op_maybe_changed,
    .sync_folder = op_sync_folder,
    .wait = op_wait,
    .free = op_free,
};

struct sync_driver *
imap_sync_new(const struct imap_config *cfg, struct store *st, struct sync_host *host)
{
    struct imap_driver *id = xcalloc(1, sizeof *id);
    id->base.ops = &imap_ops;
    id->base.st = st;
    id->base.host = host;
    id->cfg = cfg;
    return &id->base;
}
