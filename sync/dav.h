/* dav: the CalDAV/CardDAV operations a driver needs (discovery, changes
 * since a sync token, multiget or fetch-all, conditional PUT/DELETE, MOVE,
 * MKCALENDAR and MKCOL), each one request on a kept-alive connection,
 * knowing nothing of the store.
 *
 * Hrefs passed in and handed out are normalised (dav_xml.h: absolute,
 * percent-decoded paths; compare them with strcmp or dav_href_equal).
 * Strings handed to callbacks are borrowed for the call; everything returned
 * through an out-parameter belongs to the caller. Every function returns 0 on
 * success and -1 with *err filled on failure (some return a distinct positive
 * result, said below). A connection belongs to one thread. */
#ifndef MAILFS_DAV_H
#define MAILFS_DAV_H

#include <stdbool.h>
#include <stddef.h>

#include "common/dynbuf.h"
#include "sync/dav_xml.h"
#include "sync/error.h"
#include "sync/http.h"

enum dav_kind {
    DAV_KIND_CALDAV,  /* calendars: events, tasks, notes */
    DAV_KIND_CARDDAV, /* address books */
};

struct dav_conn;

/* A connection to one service (the caldav or the carddav URL of an account).
 * Checks the config like http_open (https, or http:// only with tls_none);
 * nothing is sent yet. */
int dav_open(const struct http_config *cfg, enum dav_kind kind, struct dav_conn **out,
             struct sync_error *err);
void dav_close(struct dav_conn *c);

/* --- discovery ---------------------------------------------------------------- */

struct dav_collection {
    char *href;        /* owned, normalised, ends in '/' */
    char *displayname; /* owned; NULL when the server has none */
    unsigned comps;    /* DAV_COMP_* of a calendar; all three when the server does
                          not restrict them (RFC 4791 section 5.2.3); 0 for a book */
    bool is_default;   /* the server names it (schedule-default-calendar-URL) */
    char *ctag;        /* owned or NULL */
    char *sync_token;  /* owned or NULL */
};

struct dav_collections {
    struct dav_collection *v; /* owned, n entries, in the server's order */
    size_t n;
    char *principal; /* owned; NULL when the URL was a collection */
    char *homes;     /* owned: the home set, one per line; NULL as principal */
    char *default_cal; /* owned; the default calendar, or NULL */
};

/* Find the calendars (CALDAV) or address books (CARDDAV). When the base URL
 * is a collection of the kind, that one alone; otherwise RFC 6764 and
 * RFC 4791/6352: current-user-principal (from the URL, else
 * /.well-known/caldav or /.well-known/carddav, redirects followed on the
 * same server), its home sets, then each home listed with Depth 1. Schedule
 * inbox and outbox are not collections of items and are left out. An empty
 * list is no error. Errors: as http_request, plus SYNC_ERR_SERVER or
 * SYNC_ERR_PROTOCOL (scope ACCOUNT) when no principal or home can be found. */
int dav_discover(struct dav_conn *c, struct dav_collections *out, struct sync_error *err);

/* Discovery from what an earlier one found (principal, homes, default
 * calendar): each home listed at once, skipping the probes. Returns 1 when
 * that worked; 0 when the server answered a home with an error (moved,
 * gone, refused: run dav_discover); -1 with *err when the server could not
 * be reached (as http_request). */
int dav_discover_known(struct dav_conn *c, const char *principal, const char *homes,
                       const char *default_cal, struct dav_collections *out,
                       struct sync_error *err);
void dav_collections_free(struct dav_collections *l);

/* --- changes -------------------------------------------------------------------- */

/* Results besides 0 and -1. */
#define DAV_TOKEN_REJECTED 1   /* the server no longer knows the token: full resync */
#define DAV_SYNC_UNSUPPORTED 2 /* no sync-collection here: use dav_list */

/* A member of a collection: etag is its ETag ("" when the server sent none:
 * fetch it to learn it), or NULL when the member was removed. Return 0 to
 * go on, -1 to stop (fill err). */
typedef int (*dav_change_fn)(void *ctx, const char *href, const char *etag,
                             struct sync_error *err);

/* REPORT sync-collection (RFC 6578, sync-level 1, getetag) on `collection`.
 * token NULL or "": the initial sync, every member reported. fn is called
 * for each member changed or removed since the token; *new_token gets the
 * token to store once the caller has applied every change (NULL when the
 * server sent none). A truncated answer (507 on the collection) is
 * continued here, so fn sees the whole set. Returns 0, DAV_TOKEN_REJECTED
 * (Radicale: 403 with DAV:valid-sync-token; the standard's 409; Xandikos:
 * 500; nothing reported, *new_token NULL), DAV_SYNC_UNSUPPORTED (only for
 * an initial sync), or -1. */
int dav_sync(struct dav_conn *c, const char *collection, const char *token,
             dav_change_fn fn, void *ctx, char **new_token, struct sync_error *err);

/* PROPFIND Depth 1 on `collection`: fn for every member that is not a
 * collection, with its getetag. The fallback without sync-collection. */
int dav_list(struct dav_conn *c, const char *collection, dav_change_fn fn, void *ctx,
             struct sync_error *err);

/* --- reading -------------------------------------------------------------------- */

/* One item of a multiget: status 200 with data (CRLF line ends, len bytes,
 * NUL-terminated) and etag ("" if none); 404 (or another status) when the
 * server has no such item (data NULL); 0 when the server did not mention a
 * requested href at all (ask again later). href is the caller's string. */
typedef int (*dav_item_fn)(void *ctx, const char *href, int status, const char *etag,
                           const char *data, size_t len, struct sync_error *err);

/* calendar-multiget or addressbook-multiget of n hrefs of `collection` in one
 * REPORT; batch sizes are the caller's (a few hundred keep the answer far
 * under HTTP_MAX_BODY). fn is called once per requested href. An item whose
 * text exceeds libxml2's limit of 10 MB fails the whole answer
 * (SYNC_ERR_PROTOCOL): fetch it alone with dav_get. */
int dav_multiget(struct dav_conn *c, const char *collection, const char *const *hrefs,
                 size_t n, dav_item_fn fn, void *ctx, struct sync_error *err);

/* Every item of `collection` with its data in one REPORT (calendar-query or
 * addressbook-query without a condition): for an initial download it is
 * far cheaper than multiget on servers whose multiget costs grow with the
 * collection (Xandikos 0.2.8: 2,000 events by multiget take 28 s, this way
 * 0.3 s). fn gets the server's hrefs (normalised), status 200, etag, data.
 * The whole answer must fit HTTP_MAX_BODY: on SYNC_ERR_PROTOCOL "larger
 * than", list (dav_sync/dav_list) and multiget in batches instead. */
int dav_fetch_all(struct dav_conn *c, const char *collection, dav_item_fn fn, void *ctx,
                  struct sync_error *err);

/* --- writing -------------------------------------------------------------------- */

/* What the server answered to a write. */
struct dav_result {
    int status; /* the real status: a 207 Multi-Status answer's inner status (Xandikos
                   wraps a refused PUT in one); 0 when no answer came */
    char *etag; /* owned: the new strong ETag when the server sent one, else NULL (then
                   re-read the item to learn it) */
    char precondition[64]; /* the DAV/CalDAV/CardDAV precondition the server named
                              ("no-uid-conflict", "valid-calendar-data"...), or "" */
};

void dav_result_init(struct dav_result *r);
void dav_result_free(struct dav_result *r);

/* GET one item into *data (reset first; capped at HTTP_MAX_BODY); res gets
 * the status and ETag. 404 is a failure with res->status 404. */
int dav_get(struct dav_conn *c, const char *href, struct dynbuf *data,
            struct dav_result *res, struct sync_error *err);

/* PUT data to href: if_match NULL creates (If-None-Match: *), "*" writes
 * whatever is there (no precondition), else replaces only that version
 * (If-Match). On failure res->status says why: 412 when a
 * precondition failed (the item exists, or changed since if_match; also when
 * the server said so inside a 207), 409 or 403 with res->precondition for
 * refused content (Radicale: 409 no-uid-conflict), 0 without an answer.
 * Refusals have scope ITEM; 412 retry NEVER (a conflict for the caller). */
int dav_put(struct dav_conn *c, const char *href, const char *content_type,
            const void *data, size_t len, const char *if_match, struct dav_result *res,
            struct sync_error *err);

/* DELETE href, only that version when if_match is not NULL. res->status 412:
 * changed on the server since; 404: already gone (the caller may count that
 * as done). Also deletes a collection (if_match NULL). */
int dav_delete(struct dav_conn *c, const char *href, const char *if_match,
               struct dav_result *res, struct sync_error *err);

/* Result of dav_move besides 0 and -1: do PUT to the new href (If-None-Match)
 * and DELETE of the old one (If-Match) instead. */
#define DAV_MOVE_UNSUPPORTED 1

/* MOVE from to (Overwrite: F). Returns 0 when moved (the new ETag is not
 * known: re-read `to`); DAV_MOVE_UNSUPPORTED, with res->status 405, 501 or
 * 502, when the server has no MOVE (Xandikos: 405) or cannot take the
 * Destination, and also without asking (res->status 0) when `to` needs
 * percent-encoding, since Radicale 3.1 stores such a destination under its
 * still-encoded name; -1 otherwise (res->status 412: `to` exists). */
int dav_move(struct dav_conn *c, const char *from, const char *to, struct dav_result *res,
             struct sync_error *err);

/* Make a collection at href: MKCALENDAR with displayname and the component
 * set `comps` (DAV_COMP_*; 0: the server's choice) for CALDAV, extended MKCOL
 * (RFC 5689) of an address book for CARDDAV (comps unused). Servers may
 * ignore the component set (Xandikos does): rediscover to learn it. */
int dav_mkcol(struct dav_conn *c, const char *href, const char *displayname,
              unsigned comps, struct dav_result *res, struct sync_error *err);

/* PROPPATCH the collection's DAV:displayname (how mv of its directory
 * renames it). A refusal inside the 207 is a failure with its status. */
int dav_set_displayname(struct dav_conn *c, const char *href, const char *displayname,
                        struct dav_result *res, struct sync_error *err);

#endif
