/* dav: CalDAV/CardDAV operations on top of http.c and dav_xml.c: discovery,
 * sync-collection with its fallbacks, multiget, and conditional writes that
 * look inside a 207 for the real status. */
#include "sync/dav.h"

#include "common/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XML_CT "application/xml; charset=utf-8"
/* Truncated sync-collection answers (507) continued at most this often. */
#define DAV_SYNC_MAX_ROUNDS 1000

struct dav_conn {
    struct http_conn *http;
    enum dav_kind kind;
    char *base;   /* normalised path of the base URL */
    char *origin; /* "scheme://host[:port] user": whose listings may be shared */
};

/* ---- one home listing for both services ----
 * Most servers keep a user's calendars and address books in one home
 * (Radicale, Xandikos), and listing it is the costly request of a sync with
 * no change: the server computes a sync token from every item of every
 * collection. The CalDAV and CardDAV drivers of an account list it back to
 * back in each pass, CalDAV first: its listing (which has every property
 * CardDAV needs) is kept for the CardDAV driver, once, and only for
 * HOME_SHARE_MS. */

#define HOME_SHARE_MS 300

struct home_entry {
    char *href;        /* owned */
    unsigned rt;       /* DAV_RT_* */
    char *displayname; /* owned, may be NULL */
    bool comps_known;
    unsigned comps;
    char *token;       /* owned, may be NULL */
};

static pthread_mutex_t share_lock = PTHREAD_MUTEX_INITIALIZER;
static char *share_key;              /* owned: origin + home; NULL when empty */
static int64_t share_at;             /* util_now_ms() of the listing */
static struct home_entry *share_v;   /* owned */
static size_t share_n;

static void
home_entries_free(struct home_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].href);
        free(v[i].displayname);
        free(v[i].token);
    }
    free(v);
}

static void
home_share_clear(void)
{
    pthread_mutex_lock(&share_lock);
    home_entries_free(share_v, share_n);
    free(share_key);
    share_key = NULL;
    share_v = NULL;
    share_n = 0;
    pthread_mutex_unlock(&share_lock);
}

/* Keep a listing (takes ownership of v). */
static void
home_share_put(const char *key, struct home_entry *v, size_t n)
{
    pthread_mutex_lock(&share_lock);
    home_entries_free(share_v, share_n);
    free(share_key);
    share_key = xstrdup(key);
    share_at = util_now_ms();
    share_v = v;
    share_n = n;
    pthread_mutex_unlock(&share_lock);
}

/* Take the kept listing of key if it is fresh (the caller owns it), else
 * NULL. It is taken once: the next pass lists again. */
static struct home_entry *
home_share_take(const char *key, size_t *n)
{
    struct home_entry *v = NULL;
    pthread_mutex_lock(&share_lock);
    if (share_key && strcmp(share_key, key) == 0 && util_now_ms() - share_at <= HOME_SHARE_MS) {
        v = share_v;
        *n = share_n;
        free(share_key);
        share_key = NULL;
        share_v = NULL;
        share_n = 0;
    }
    pthread_mutex_unlock(&share_lock);
    return v;
}

int
dav_open(const struct http_config *cfg, enum dav_kind kind, struct dav_conn **out,
         struct sync_error *err)
{
    *out = NULL;
    dav_xml_init();
    struct http_conn *h;
    if (http_open(cfg, &h, err) < 0)
        return -1;
    struct dav_conn *c = xcalloc(1, sizeof *c);
    c->http = h;
    c->kind = kind;
    c->base = dav_href_normalize(http_base_path(h), "/");
    if (!c->base)
        c->base = xstrdup("/");
    const char *u = cfg->base_url ? cfg->base_url : "";
    const char *host = strstr(u, "://");
    const char *path = host ? strchr(host + 3, '/') : NULL;
    c->origin = xasprintf("%.*s %s", (int)(path ? (size_t)(path - u) : strlen(u)), u,
                          cfg->user ? cfg->user : "");
    *out = c;
    return 0;
}

void
dav_close(struct dav_conn *c)
{
    if (!c)
        return;
    http_close(c->http);
    free(c->base);
    free(c->origin);
    free(c);
    home_share_clear();
}

void
dav_result_init(struct dav_result *r)
{
    r->status = 0;
    r->etag = NULL;
    r->precondition[0] = '\0';
}

void
dav_result_free(struct dav_result *r)
{
    free(r->etag);
    dav_result_init(r);
}

/* --- requests ------------------------------------------------------------------ */

static void
what_of(char *buf, size_t size, enum http_method m, const char *href)
{
    snprintf(buf, size, "%s %.300s", http_method_name(m), href);
}

/* The normalised path a response came from, for relative hrefs in it. */
static char *
answer_path(const struct http_response *resp, const char *fallback)
{
    char *p = resp->url ? dav_href_normalize(resp->url, "/") : NULL;
    return p ? p : xstrdup(fallback);
}

/* An XML request on a normalised path whose answer must be a 207: fn for
 * each response. body is consumed. On another status: -1 with err filled
 * (scope), the answer left in *resp for the caller to look at. */
static int
xml_request(struct dav_conn *c, enum http_method method, const char *path,
            const char *depth, char *body, bool follow, dav_response_fn fn, void *ctx,
            char **sync_token, struct http_response *resp, enum sync_scope scope,
            struct sync_error *err)
{
    char what[400];
    what_of(what, sizeof what, method, path);
    if (!body) {
        sync_error_set(err, SYNC_ERR_PROTOCOL, scope, SYNC_RETRY_NEVER,
                       "%s: a value cannot be written as XML", what);
        return -1;
    }
    char *url = dav_href_encode(path);
    struct http_request req = {
        .method = method,
        .url = url,
        .depth = depth,
        .content_type = XML_CT,
        .body = body,
        .body_len = strlen(body),
        .follow_redirects = follow,
        /* leave out the 404 propstats of props the server lacks */
        .prefer = method == HTTP_PROPFIND ? "return=minimal" : NULL,
    };
    int r = http_request(c->http, &req, resp, err);
    free(url);
    free(body);
    if (r < 0)
        return -1;
    if (resp->status != 207) {
        http_status_error(resp, what, scope, err);
        return -1;
    }
    char *base = answer_path(resp, path);
    r = dav_multistatus_parse(resp->body.data, resp->body.len, base, fn, ctx, sync_token,
                              err);
    free(base);
    if (r < 0 && err->code == SYNC_ERR_PROTOCOL) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, " (%s)", what);
        err->scope = scope;
    }
    return r;
}

static char *
prop_dup(const struct dav_response *r, int p)
{
    if (r->prop[p].status != 200 || !r->prop[p].text)
        return NULL;
    return xstrndup(r->prop[p].text, r->prop[p].len);
}

/* The first line of a '\n'-separated href list, or NULL. */
static char *
first_href(const char *list)
{
    if (!list || !*list)
        return NULL;
    const char *nl = strchr(list, '\n');
    return nl ? xstrndup(list, (size_t)(nl - list)) : xstrdup(list);
}

/* --- discovery ------------------------------------------------------------------ */

/* What a Depth 0 PROPFIND said about its resource (the first response). */
struct probe {
    bool got;
    int status; /* the response's own status, 0 when it has propstats */
    char *href;
    unsigned rt;
    unsigned comps;
    bool comps_known;
    char *displayname, *ctag, *token;
    char *principal;   /* first href */
    char *homes;       /* '\n'-separated */
    char *default_cal; /* first href */
    bool default_known;
    char *inbox; /* first href */
};

static void
probe_free(struct probe *p)
{
    free(p->href);
    free(p->displayname);
    free(p->ctag);
    free(p->token);
    free(p->principal);
    free(p->homes);
    free(p->default_cal);
    free(p->inbox);
    memset(p, 0, sizeof *p);
}

static int
probe_cb(void *ctx, const struct dav_response *r, struct sync_error *err)
{
    struct probe *p = ctx;
    if (p->got)
        return 0;
    p->got = true;
    p->status = r->status;
    p->href = xstrdup(r->href);
    p->rt = r->prop[DAV_PROP_RESOURCETYPE].status == 200 ? r->resourcetype : 0;
    p->comps_known = r->prop[DAV_PROP_SUPPORTED_COMPS].status == 200;
    p->comps = r->comps;
    p->displayname = prop_dup(r, DAV_PROP_DISPLAYNAME);
    p->ctag = prop_dup(r, DAV_PROP_GETCTAG);
    p->token = prop_dup(r, DAV_PROP_SYNC_TOKEN);
    char *cup = prop_dup(r, DAV_PROP_CURRENT_USER_PRINCIPAL);
    p->principal = first_href(cup);
    free(cup);
    p->homes = prop_dup(r, DAV_PROP_CALENDAR_HOME_SET);
    char *ab = prop_dup(r, DAV_PROP_ADDRESSBOOK_HOME_SET);
    if (ab) {
        free(p->homes);
        p->homes = ab;
    }
    char *def = prop_dup(r, DAV_PROP_SCHEDULE_DEFAULT_CALENDAR);
    p->default_cal = first_href(def);
    free(def);
    char *inbox = prop_dup(r, DAV_PROP_SCHEDULE_INBOX);
    p->inbox = first_href(inbox);
    free(inbox);
    return 0;
}

static bool
of_kind(const struct dav_conn *c, unsigned rt)
{
    return c->kind == DAV_KIND_CALDAV ? (rt & DAV_RT_CALENDAR) != 0
                                      : (rt & DAV_RT_ADDRESSBOOK) != 0;
}

static char *
with_slash(const char *href)
{
    size_t n = strlen(href);
    if (n && href[n - 1] == '/')
        return xstrdup(href);
    return xasprintf("%s/", href);
}

static void
add_collection(struct dav_conn *c, struct dav_collections *l, const char *href,
               const char *displayname, bool comps_known, unsigned comps,
               const char *ctag, const char *token)
{
    for (size_t i = 0; i < l->n; i++)
        if (dav_href_equal(l->v[i].href, href))
            return;
    l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    struct dav_collection *col = &l->v[l->n++];
    memset(col, 0, sizeof *col);
    col->href = with_slash(href);
    col->displayname = displayname ? xstrdup(displayname) : NULL;
    if (c->kind == DAV_KIND_CALDAV) {
        const unsigned all = DAV_COMP_VEVENT | DAV_COMP_VTODO | DAV_COMP_VJOURNAL;
        col->comps = comps_known ? comps & all : all;
    }
    col->ctag = ctag ? xstrdup(ctag) : NULL;
    col->sync_token = token ? xstrdup(token) : NULL;
}

struct home_ctx {
    struct dav_conn *c;
    struct dav_collections *out;
    struct home_entry *all; /* owned: every member, for home_share_put */
    size_t nall;
    const char *home;       /* the home listed */
    bool self;              /* the home itself answered as a collection */
};

/* A member of a home: a collection of c's kind is added to out. */
static void
home_member(struct dav_conn *c, struct dav_collections *out, const struct home_entry *e)
{
    if (!of_kind(c, e->rt) || (e->rt & (DAV_RT_SCHEDULE_INBOX | DAV_RT_SCHEDULE_OUTBOX)))
        return;
    add_collection(c, out, e->href, e->displayname, e->comps_known, e->comps, NULL, e->token);
}

static int
home_cb(void *ctx, const struct dav_response *r, struct sync_error *err)
{
    struct home_ctx *h = ctx;
    if (r->prop[DAV_PROP_RESOURCETYPE].status != 200)
        return 0;
    if (h->home && dav_href_equal(r->href, h->home) && (r->resourcetype & DAV_RT_COLLECTION))
        h->self = true;
    struct home_entry e = {
        .href = xstrdup(r->href),
        .rt = r->resourcetype,
        .displayname = prop_dup(r, DAV_PROP_DISPLAYNAME),
        .comps_known = r->prop[DAV_PROP_SUPPORTED_COMPS].status == 200,
        .comps = r->comps,
        .token = prop_dup(r, DAV_PROP_SYNC_TOKEN),
    };
    home_member(h->c, h->out, &e);
    /* Kept for the other service's driver (of the other kind). */
    h->all = xrealloc(h->all, (h->nall + 1) * sizeof *h->all);
    h->all[h->nall++] = e;
    return 0;
}

static unsigned
collection_mask(const struct dav_conn *c)
{
    /* Not getctag: servers compute it from every item, like the sync token,
     * and the token alone tells whether a collection changed (measured on
     * Radicale: a home listing with both takes 228 ms, with the token alone
     * 133 ms, at 4,000 items). */
    unsigned m = DAV_PROP_BIT(DAV_PROP_RESOURCETYPE) |
                 DAV_PROP_BIT(DAV_PROP_DISPLAYNAME) | DAV_PROP_BIT(DAV_PROP_SYNC_TOKEN);
    if (c->kind == DAV_KIND_CALDAV)
        m |= DAV_PROP_BIT(DAV_PROP_SUPPORTED_COMPS);
    return m;
}

static unsigned
principal_mask(const struct dav_conn *c)
{
    unsigned m = DAV_PROP_BIT(DAV_PROP_CURRENT_USER_PRINCIPAL);
    if (c->kind == DAV_KIND_CALDAV)
        m |= DAV_PROP_BIT(DAV_PROP_CALENDAR_HOME_SET) |
             DAV_PROP_BIT(DAV_PROP_SCHEDULE_DEFAULT_CALENDAR) |
             DAV_PROP_BIT(DAV_PROP_SCHEDULE_INBOX);
    else
        m |= DAV_PROP_BIT(DAV_PROP_ADDRESSBOOK_HOME_SET);
    return m;
}

/* Depth 0 PROPFIND into *p (freed first). -1 with err on failure; *status
 * the HTTP status (0 without an answer). */
static int
probe(struct dav_conn *c, const char *path, unsigned mask, struct probe *p, int *status,
      struct sync_error *err)
{
    probe_free(p);
    struct http_response resp;
    http_response_init(&resp);
    int r = xml_request(c, HTTP_PROPFIND, path, "0", dav_xml_propfind(mask), true,
                        probe_cb, p, NULL, &resp, SYNC_SCOPE_ACCOUNT, err);
    *status = resp.status;
    http_response_free(&resp);
    if (r == 0 && !p->got) {
        sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "PROPFIND %s: the server's answer names no resource", path);
        r = -1;
    } else if (r == 0 && p->status && (p->status < 200 || p->status > 299)) {
        /* Xandikos answers a PROPFIND on nothing with a 207 holding a 404 */
        sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_NEVER,
                       "PROPFIND %s: HTTP %d", path, p->status);
        *status = p->status;
        r = -1;
    }
    return r;
}

/* A failure that a discovery step may step over: the server answered, but
 * not with what we asked for. */
static bool
soft_failure(const struct sync_error *err, int status)
{
    return status != 0 && err->code == SYNC_ERR_SERVER;
}

/* List each home (one per line) with Depth 1 into out. 0, or -1 with *err
 * (and *status, when not NULL: the HTTP status, 0 when none came; with
 * status, a listing without the home itself as a collection fails too). */
static int
list_homes(struct dav_conn *c, const char *homes, struct dav_collections *out, int *status,
           struct sync_error *err)
{
    char *copy = xstrdup(homes);
    for (char *h = copy; h && *h;) {
        char *nl = strchr(h, '\n');
        if (nl)
            *nl = '\0';
        char *norm = dav_href_normalize(h, "/");
        char *key = xasprintf("%s %s", c->origin, norm ? norm : h);
        free(norm);
        /* CalDAV lists first in a pass and needs the component sets
         * anyway; CardDAV reads its listing, and asks for none of them
         * (Xandikos: 37 ms with them, 19 ms without). */
        const bool cal_kind = c->kind == DAV_KIND_CALDAV;
        size_t nshared = 0;
        struct home_entry *shared = cal_kind ? NULL : home_share_take(key, &nshared);
        if (shared) {
            for (size_t i = 0; i < nshared; i++)
                home_member(c, out, &shared[i]);
            home_entries_free(shared, nshared);
        } else {
            struct home_ctx hc = {c, out, NULL, 0, h, false};
            struct http_response resp;
            http_response_init(&resp);
            int hr = xml_request(c, HTTP_PROPFIND, h, "1",
                                 dav_xml_propfind(collection_mask(c)), false, home_cb, &hc,
                                 NULL, &resp, SYNC_SCOPE_ACCOUNT, err);
            if (status)
                *status = resp.status;
            http_response_free(&resp);
            if (hr < 0) {
                home_entries_free(hc.all, hc.nall);
                free(key);
                free(copy);
                return -1;
            }
            if (status && !hc.self) {
                /* A listing that is not of a collection (some servers
                 * answer any path): not the home remembered. */
                sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_NEVER,
                               "%s is no collection", h);
                *status = 404;
                home_entries_free(hc.all, hc.nall);
                free(key);
                free(copy);
                return -1;
            }
            if (cal_kind)
                home_share_put(key, hc.all, hc.nall);
            else
                home_entries_free(hc.all, hc.nall);
        }
        free(key);
        h = nl ? nl + 1 : NULL;
    }
    free(copy);
    return 0;
}

static void
mark_default(struct dav_collections *out, const char *default_cal)
{
    if (default_cal)
        for (size_t i = 0; i < out->n; i++)
            if (dav_href_equal(out->v[i].href, default_cal))
                out->v[i].is_default = true;
}

int
dav_discover_known(struct dav_conn *c, const char *principal, const char *homes,
                   const char *default_cal, struct dav_collections *out,
                   struct sync_error *err)
{
    memset(out, 0, sizeof *out);
    int status = 0;
    if (list_homes(c, homes, out, &status, err) < 0) {
        dav_collections_free(out);
        if (status == 0)
            return -1; /* not reached: asking again would not help */
        sync_error_clear(err);
        return 0;
    }
    mark_default(out, default_cal);
    out->principal = xstrdup(principal);
    out->homes = xstrdup(homes);
    out->default_cal = default_cal ? xstrdup(default_cal) : NULL;
    return 1;
}

int
dav_discover(struct dav_conn *c, struct dav_collections *out, struct sync_error *err)
{
    memset(out, 0, sizeof *out);
    const bool cal = c->kind == DAV_KIND_CALDAV;
    const char *service = cal ? "caldav" : "carddav";
    struct probe p = {0};
    int status = 0, r = -1;
    char *principal = NULL;
    char *homes = NULL;
    char *default_cal = NULL, *inbox = NULL;

    if (strcmp(c->base, "/") != 0) {
        if (probe(c, c->base, collection_mask(c) | principal_mask(c), &p, &status, err) <
            0)
            goto out;
        if (of_kind(c, p.rt)) {
            /* the URL is one collection: that one alone */
            add_collection(c, out, p.href, p.displayname, p.comps_known, p.comps, p.ctag,
                           p.token);
            r = 0;
            goto out;
        }
        if (p.principal)
            principal = xstrdup(p.principal);
        else if (p.rt & DAV_RT_PRINCIPAL)
            principal = xstrdup(p.href);
    }
    if (!principal) {
        /* RFC 6764 section 5: the well-known URI, which usually redirects */
        char wk[64];
        snprintf(wk, sizeof wk, "/.well-known/%s", service);
        if (probe(c, wk, principal_mask(c), &p, &status, err) < 0 &&
            !soft_failure(err, status))
            goto out;
        if (p.got && p.principal)
            principal = xstrdup(p.principal);
    }
    if (!principal && strcmp(c->base, "/") == 0) {
        if (probe(c, "/", principal_mask(c), &p, &status, err) < 0)
            goto out;
        if (p.principal)
            principal = xstrdup(p.principal);
    }
    if (!principal) {
        sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_NEVER,
                       "no %s principal found from %s (neither the URL nor "
                       "/.well-known/%s names one): set %s to a collection URL",
                       service, c->base, service, service);
        goto out;
    }
    out->principal = xstrdup(principal);
    if (probe(c, principal, principal_mask(c), &p, &status, err) < 0)
        goto out;
    homes = p.homes ? xstrdup(p.homes) : xstrdup(principal);
    default_cal = p.default_cal ? xstrdup(p.default_cal) : NULL;
    inbox = p.inbox ? xstrdup(p.inbox) : NULL;
    if (cal && !default_cal && inbox) {
        /* RFC 6638 puts the default on the schedule inbox; a server may lack
         * it: that is no error */
        struct sync_error ignored;
        sync_error_clear(&ignored);
        if (probe(c, inbox, DAV_PROP_BIT(DAV_PROP_SCHEDULE_DEFAULT_CALENDAR), &p, &status,
                  &ignored) == 0 &&
            p.default_cal)
            default_cal = xstrdup(p.default_cal);
        else if (status == 0 && ignored.code != SYNC_OK) {
            *err = ignored;
            goto out;
        }
    }
    if (list_homes(c, homes, out, NULL, err) < 0)
        goto out;
    mark_default(out, default_cal);
    out->homes = homes;
    homes = NULL;
    out->default_cal = default_cal;
    default_cal = NULL;
    r = 0;
out:
    probe_free(&p);
    free(principal);
    free(homes);
    free(default_cal);
    free(inbox);
    if (r < 0)
        dav_collections_free(out);
    return r;
}

void
dav_collections_free(struct dav_collections *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].href);
        free(l->v[i].displayname);
        free(l->v[i].ctag);
        free(l->v[i].sync_token);
    }
    free(l->v);
    free(l->principal);
    free(l->homes);
    free(l->default_cal);
    memset(l, 0, sizeof *l);
}

/* --- changes -------------------------------------------------------------------- */

struct sync_ctx {
    const char *collection;
    dav_change_fn fn;
    void *ctx;
    bool truncated;
};

static int
member_cb(void *ctx, const struct dav_response *r, struct sync_error *err)
{
    struct sync_ctx *s = ctx;
    size_t n = strlen(r->href);
    if (dav_href_equal(r->href, s->collection)) {
        if (r->status == 507)
            s->truncated = true;
        return 0;
    }
    if (r->status == 507) {
        s->truncated = true;
        return 0;
    }
    /* members that are collections are not items */
    if ((n && r->href[n - 1] == '/') || (r->prop[DAV_PROP_RESOURCETYPE].status == 200 &&
                                         (r->resourcetype & DAV_RT_COLLECTION)))
        return 0;
    if (r->status == 404 || r->status == 410)
        return s->fn(s->ctx, r->href, NULL, err);
    if (r->status != 0 && (r->status < 200 || r->status > 299))
        return 0;
    const struct dav_propval *e = &r->prop[DAV_PROP_GETETAG];
    return s->fn(s->ctx, r->href, e->status == 200 && e->text ? e->text : "", err);
}

int
dav_sync(struct dav_conn *c, const char *collection, const char *token, dav_change_fn fn,
         void *ctx, char **new_token, struct sync_error *err)
{
    *new_token = NULL;
    char *tok = token && *token ? xstrdup(token) : NULL;
    int r = -1;
    for (int round = 0; round < DAV_SYNC_MAX_ROUNDS; round++) {
        struct sync_ctx s = {collection, fn, ctx, false};
        struct http_response resp;
        http_response_init(&resp);
        char *next = NULL;
        char *body = dav_xml_sync_collection(tok);
        if (!body) {
            /* a token no XML can carry is no token of this server's */
            sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_FOLDER, SYNC_RETRY_NOW,
                           "sync token of %s unusable: full resync", collection);
            r = DAV_TOKEN_REJECTED;
            http_response_free(&resp);
            break;
        }
        struct sync_error xerr;
        sync_error_clear(&xerr);
        r = xml_request(c, HTTP_REPORT, collection, "0", body, false, member_cb, &s,
                        &next, &resp, SYNC_SCOPE_FOLDER, &xerr);
        if (r < 0 && resp.status != 207 && resp.status != 0) {
            int st = resp.status;
            char ename[64];
            dav_error_parse(resp.body.data, resp.body.len, ename, sizeof ename, NULL, 0);
            if (strcmp(ename, "valid-sync-token") == 0 ||
                (tok &&
                 (st == 400 || st == 403 || st == 409 || st == 410 || st == 412 ||
                  st == 500) &&
                 strcmp(ename, "supported-report") != 0)) {
                /* Xandikos answers a token it does not know with 500 */
                sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_FOLDER, SYNC_RETRY_NOW,
                               "REPORT sync-collection %s: the server rejected the sync "
                               "token (HTTP %d%s%s): full resync",
                               collection, st, ename[0] ? " " : "", ename);
                r = DAV_TOKEN_REJECTED;
            } else if (strcmp(ename, "supported-report") == 0 || st == 501 || st == 405 ||
                       (!tok && (st == 400 || st == 403 || st == 409 || st == 415 ||
                                 st == 422))) {
                sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_FOLDER, SYNC_RETRY_NOW,
                               "REPORT sync-collection %s: not supported (HTTP %d): list "
                               "with PROPFIND instead",
                               collection, st);
                r = DAV_SYNC_UNSUPPORTED;
            } else {
                *err = xerr;
            }
        } else if (r < 0) {
            *err = xerr;
        }
        http_response_free(&resp);
        if (r != 0) {
            free(next);
            break;
        }
        free(*new_token);
        *new_token = next;
        if (!s.truncated)
            break;
        if (!next || (tok && strcmp(next, tok) == 0)) {
            sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_FOLDER, SYNC_RETRY_LATER,
                           "REPORT sync-collection %s: truncated answer without a new "
                           "token",
                           collection);
            r = -1;
            break;
        }
        free(tok);
        tok = xstrdup(next);
        if (round == DAV_SYNC_MAX_ROUNDS - 1) {
            sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_FOLDER, SYNC_RETRY_LATER,
                           "REPORT sync-collection %s: still truncated after %d answers",
                           collection, DAV_SYNC_MAX_ROUNDS);
            r = -1;
        }
    }
    free(tok);
    if (r != 0) {
        free(*new_token);
        *new_token = NULL;
    }
    return r;
}

int
dav_list(struct dav_conn *c, const char *collection, dav_change_fn fn, void *ctx,
         struct sync_error *err)
{
    struct sync_ctx s = {collection, fn, ctx, false};
    struct http_response resp;
    http_response_init(&resp);
    int r = xml_request(c, HTTP_PROPFIND, collection, "1",
                        dav_xml_propfind(DAV_PROP_BIT(DAV_PROP_GETETAG) |
                                         DAV_PROP_BIT(DAV_PROP_RESOURCETYPE)),
                        false, member_cb, &s, NULL, &resp, SYNC_SCOPE_FOLDER, err);
    http_response_free(&resp);
    return r;
}

/* --- multiget ------------------------------------------------------------------- */

struct mg_entry {
    char *norm;       /* owned */
    const char *href; /* the caller's */
    bool done;
};

struct mg_ctx {
    struct mg_entry *v;
    size_t n;
    int data_prop;
    dav_item_fn fn;
    void *ctx;
};

static int
mg_cmp(const void *a, const void *b)
{
    return strcmp(((const struct mg_entry *)a)->norm, ((const struct mg_entry *)b)->norm);
}

static int
mg_cb(void *ctx, const struct dav_response *r, struct sync_error *err)
{
    struct mg_ctx *m = ctx;
    struct mg_entry key = {.norm = (char *)r->href};
    struct mg_entry *e = bsearch(&key, m->v, m->n, sizeof *m->v, mg_cmp);
    if (!e)
        return 0; /* not asked for */
    while (e > m->v && strcmp(e[-1].norm, r->href) == 0)
        e--;
    const struct dav_propval *d = &r->prop[m->data_prop];
    const struct dav_propval *t = &r->prop[DAV_PROP_GETETAG];
    int status = r->status;
    if (status == 0)
        status = d->status == 200 ? 200 : d->status ? d->status : 404;
    const char *data = status == 200 ? (d->text ? d->text : "") : NULL;
    size_t len = status == 200 ? d->len : 0;
    const char *etag =
        status == 200 ? (t->status == 200 && t->text ? t->text : "") : NULL;
    for (; e < m->v + m->n && strcmp(e->norm, r->href) == 0; e++) {
        if (e->done)
            continue;
        e->done = true;
        if (m->fn(m->ctx, e->href, status, etag, data, len, err) < 0)
            return -1;
    }
    return 0;
}

int
dav_multiget(struct dav_conn *c, const char *collection, const char *const *hrefs,
             size_t n, dav_item_fn fn, void *ctx, struct sync_error *err)
{
    if (n == 0)
        return 0;
    const bool book = c->kind == DAV_KIND_CARDDAV;
    struct mg_ctx m = {
        .v = xcalloc(n, sizeof *m.v),
        .n = n,
        .data_prop = book ? DAV_PROP_ADDRESS_DATA : DAV_PROP_CALENDAR_DATA,
        .fn = fn,
        .ctx = ctx,
    };
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        m.v[i].href = hrefs[i];
        m.v[i].norm = dav_href_normalize(hrefs[i], collection);
        if (!m.v[i].norm) {
            m.v[i].norm = xstrdup("");
            m.v[i].done = true; /* an empty href names nothing */
        }
    }
    qsort(m.v, n, sizeof *m.v, mg_cmp);
    char **list = xcalloc(n, sizeof *list);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!m.v[i].done && (k == 0 || strcmp(list[k - 1], m.v[i].norm) != 0))
            list[k++] = m.v[i].norm;
    struct http_response resp;
    http_response_init(&resp);
    if (k)
        r = xml_request(c, HTTP_REPORT, collection, "1",
                        dav_xml_multiget(book, (const char *const *)list, k), false,
                        mg_cb, &m, NULL, &resp, SYNC_SCOPE_FOLDER, err);
    http_response_free(&resp);
    free(list);
    /* what the answer did not mention: the caller asks again later */
    for (size_t i = 0; r == 0 && i < n; i++)
        if (!m.v[i].done && m.v[i].norm[0])
            r = fn(ctx, m.v[i].href, 0, NULL, NULL, 0, err);
    for (size_t i = 0; i < n; i++)
        free(m.v[i].norm);
    free(m.v);
    return r;
}

struct all_ctx {
    const char *collection;
    int data_prop;
    dav_item_fn fn;
    void *ctx;
};

static int
all_cb(void *ctx, const struct dav_response *r, struct sync_error *err)
{
    struct all_ctx *a = ctx;
    size_t n = strlen(r->href);
    if (dav_href_equal(r->href, a->collection) || (n && r->href[n - 1] == '/'))
        return 0;
    const struct dav_propval *d = &r->prop[a->data_prop];
    const struct dav_propval *t = &r->prop[DAV_PROP_GETETAG];
    int status = r->status          ? r->status
                 : d->status == 200 ? 200
                 : d->status        ? d->status
                                    : 404;
    if (status != 200)
        return a->fn(a->ctx, r->href, status, NULL, NULL, 0, err);
    return a->fn(a->ctx, r->href, 200, t->status == 200 && t->text ? t->text : "",
                 d->text ? d->text : "", d->len, err);
}

int
dav_fetch_all(struct dav_conn *c, const char *collection, dav_item_fn fn, void *ctx,
              struct sync_error *err)
{
    const bool book = c->kind == DAV_KIND_CARDDAV;
    struct all_ctx a = {
        .collection = collection,
        .data_prop = book ? DAV_PROP_ADDRESS_DATA : DAV_PROP_CALENDAR_DATA,
        .fn = fn,
        .ctx = ctx,
    };
    struct http_response resp;
    http_response_init(&resp);
    int r = xml_request(c, HTTP_REPORT, collection, "1", dav_xml_query_all(book), false,
                        all_cb, &a, NULL, &resp, SYNC_SCOPE_FOLDER, err);
    http_response_free(&resp);
    return r;
}

/* --- writes --------------------------------------------------------------------- */

struct inner {
    bool got;
    int status;
    char error[64];
    char desc[160];
};

static int
inner_cb(void *ctx, const struct dav_response *r, struct sync_error *err)
{
    struct inner *in = ctx;
    if (in->got)
        return 0;
    in->got = true;
    in->status = r->status;
    if (in->status == 0) {
        /* a propstat form: the first status that is not a success */
        in->status = 200;
        for (int p = 0; p < DAV_PROP_COUNT; p++)
            if (r->prop[p].status &&
                (r->prop[p].status < 200 || r->prop[p].status > 299)) {
                in->status = r->prop[p].status;
                break;
            }
    }
    snprintf(in->error, sizeof in->error, "%s", r->error ? r->error : "");
    snprintf(in->desc, sizeof in->desc, "%s", r->description ? r->description : "");
    return 0;
}

static bool
is_2xx(int st)
{
    return st >= 200 && st <= 299;
}

/* Turn the answer to a write into *res and a result. */
static int
finish_write(enum http_method m, const char *href, struct http_response *resp,
             enum sync_scope scope, struct dav_result *res, struct sync_error *err)
{
    char what[400];
    what_of(what, sizeof what, m, href);
    res->status = resp->status;
    char desc[160] = "";
    if (resp->status == 207) {
        /* a 2xx that may hold a refusal (Xandikos: a PUT refused with 412) */
        struct inner in = {0};
        char *base = answer_path(resp, href);
        int r = dav_multistatus_parse(resp->body.data, resp->body.len, base, inner_cb,
                                      &in, NULL, err);
        free(base);
        if (r < 0 || !in.got) {
            if (r == 0)
                sync_error_set(err, SYNC_ERR_PROTOCOL, scope, SYNC_RETRY_LATER,
                               "%s: a 207 answer without a status", what);
            res->status = 0;
            return -1;
        }
        res->status = in.status;
        snprintf(res->precondition, sizeof res->precondition, "%s", in.error);
        snprintf(desc, sizeof desc, "%s", in.desc);
    } else if (!is_2xx(resp->status)) {
        dav_error_parse(resp->body.data, resp->body.len, res->precondition,
                        sizeof res->precondition, NULL, 0);
    }
    if (is_2xx(res->status)) {
        free(res->etag);
        res->etag = NULL;
        /* a weak ETag cannot be used with If-Match: better none */
        if (resp->status != 207 && resp->etag && strncmp(resp->etag, "W/", 2) != 0)
            res->etag = xstrdup(resp->etag);
        return 0;
    }
    struct http_response shown = *resp;
    shown.status = res->status;
    if (resp->status == 207)
        shown.content_type = NULL;
    http_status_error(&shown, what, scope, err);
    if (res->precondition[0] || desc[0]) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, " [%s%s%s]", res->precondition,
                 res->precondition[0] && desc[0] ? ": " : "", desc);
    }
    return -1;
}

static int
write_request(struct dav_conn *c, const struct http_request *req, const char *href,
              enum sync_scope scope, struct dav_result *res, struct sync_error *err)
{
    dav_result_free(res);
    struct http_response resp;
    http_response_init(&resp);
    int r = http_request(c->http, req, &resp, err);
    if (r == 0)
        r = finish_write(req->method, href, &resp, scope, res, err);
    else
        res->status = resp.status;
    http_response_free(&resp);
    return r;
}

int
dav_get(struct dav_conn *c, const char *href, struct dynbuf *data, struct dav_result *res,
        struct sync_error *err)
{
    dav_result_free(res);
    dynbuf_reset(data);
    char *url = dav_href_encode(href);
    struct http_request req = {.method = HTTP_GET, .url = url};
    struct http_response resp;
    http_response_init(&resp);
    int r = http_request(c->http, &req, &resp, err);
    free(url);
    res->status = resp.status;
    if (r == 0 && resp.status != 200) {
        char what[400];
        what_of(what, sizeof what, HTTP_GET, href);
        http_status_error(&resp, what, SYNC_SCOPE_ITEM, err);
        r = -1;
    }
    if (r == 0) {
        if (resp.etag && strncmp(resp.etag, "W/", 2) != 0)
            res->etag = xstrdup(resp.etag);
        if (dynbuf_add(data, resp.body.data ? resp.body.data : "", resp.body.len) < 0) {
            sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ITEM, SYNC_RETRY_NEVER,
                           "GET %s: the item is larger than %zu bytes", href, data->cap);
            r = -1;
        }
    }
    http_response_free(&resp);
    return r;
}

int
dav_put(struct dav_conn *c, const char *href, const char *content_type, const void *data,
        size_t len, const char *if_match, struct dav_result *res, struct sync_error *err)
{
    char *url = dav_href_encode(href);
    /* "*": no precondition at all. If-Match: * would say the same, but
     * Radicale compares it with the ETag and answers 412. */
    bool any = if_match && strcmp(if_match, "*") == 0;
    struct http_request req = {
        .method = HTTP_PUT,
        .url = url,
        .if_match = any ? NULL : if_match,
        .if_none_match = if_match ? NULL : "*",
        .content_type = content_type,
        .body = data ? data : "",
        .body_len = len,
    };
    int r = write_request(c, &req, href, SYNC_SCOPE_ITEM, res, err);
    free(url);
    return r;
}

int
dav_delete(struct dav_conn *c, const char *href, const char *if_match,
           struct dav_result *res, struct sync_error *err)
{
    char *url = dav_href_encode(href);
    struct http_request req = {.method = HTTP_DELETE, .url = url, .if_match = if_match};
    size_t n = strlen(href);
    int r = write_request(c, &req, href,
                          n && href[n - 1] == '/' ? SYNC_SCOPE_FOLDER : SYNC_SCOPE_ITEM,
                          res, err);
    free(url);
    return r;
}

int
dav_move(struct dav_conn *c, const char *from, const char *to, struct dav_result *res,
         struct sync_error *err)
{
    char *dest = dav_href_encode(to);
    if (strcmp(dest, to) != 0 || strchr(to, '%')) {
        dav_result_free(res);
        sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_ITEM, SYNC_RETRY_NOW,
                       "MOVE %.200s: the destination needs percent-encoding, which some "
                       "servers keep in the name: PUT and DELETE instead",
                       from);
        free(dest);
        return DAV_MOVE_UNSUPPORTED;
    }
    char *url = dav_href_encode(from);
    struct http_request req = {
        .method = HTTP_MOVE,
        .url = url,
        .destination = dest,
        .overwrite = "F",
    };
    int r = write_request(c, &req, from, SYNC_SCOPE_ITEM, res, err);
    free(url);
    free(dest);
    if (r < 0 && (res->status == 405 || res->status == 501 || res->status == 502)) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, ": PUT and DELETE instead");
        err->retry = SYNC_RETRY_NOW;
        r = DAV_MOVE_UNSUPPORTED;
    }
    return r;
}

int
dav_mkcol(struct dav_conn *c, const char *href, const char *displayname, unsigned comps,
          struct dav_result *res, struct sync_error *err)
{
    const bool book = c->kind == DAV_KIND_CARDDAV;
    char *body = book ? dav_xml_mkaddressbook(displayname)
                      : dav_xml_mkcalendar(displayname, comps);
    if (!body) {
        dav_result_free(res);
        sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_FOLDER, SYNC_RETRY_NEVER,
                       "the name \"%.200s\" cannot be sent to the server",
                       displayname ? displayname : "");
        return -1;
    }
    char *slashed = with_slash(href);
    char *url = dav_href_encode(slashed);
    struct http_request req = {
        .method = book ? HTTP_MKCOL : HTTP_MKCALENDAR,
        .url = url,
        .content_type = XML_CT,
        .body = body,
        .body_len = strlen(body),
    };
    int r = write_request(c, &req, slashed, SYNC_SCOPE_FOLDER, res, err);
    free(url);
    free(slashed);
    free(body);
    return r;
}

int
dav_set_displayname(struct dav_conn *c, const char *href, const char *displayname,
                    struct dav_result *res, struct sync_error *err)
{
    char *body = dav_xml_set_displayname(displayname);
    if (!body) {
        dav_result_free(res);
        sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_FOLDER, SYNC_RETRY_NEVER,
                       "the name \"%.200s\" cannot be sent to the server", displayname);
        return -1;
    }
    char *slashed = with_slash(href);
    char *url = dav_href_encode(slashed);
    struct http_request req = {
        .method = HTTP_PROPPATCH,
        .url = url,
        .content_type = XML_CT,
        .body = body,
        .body_len = strlen(body),
    };
    int r = write_request(c, &req, slashed, SYNC_SCOPE_FOLDER, res, err);
    free(url);
    free(slashed);
    free(body);
    return r;
}
