/* http: a small HTTP client for CalDAV/CardDAV on one reused libcurl easy
 * handle (keep-alive), with verified TLS, capped bodies and a cancel flag.
 *
 * A connection belongs to one thread (the sync thread). Strings returned in a
 * response belong to the response until http_response_free(). The password is
 * handed to libcurl only (CURLOPT_PASSWORD): it is never put in a URL, a
 * header built here, a log line or an error message. curl_global_init() must
 * have been called before http_open(). */
#ifndef MAILFS_HTTP_H
#define MAILFS_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/dynbuf.h"
#include "sync/error.h"

/* The largest answer body kept: above it the request fails (never a crash). */
#define HTTP_MAX_BODY (64u << 20)
/* Redirects followed for a request that allows them (discovery only). */
#define HTTP_MAX_REDIRECTS 5

struct http_config {
    const char *base_url;   /* http(s)://host[:port][/path]; borrowed */
    const char *user;       /* borrowed; NULL: no authentication */
    const char *password;   /* borrowed; never logged */
    const char *cafile;     /* borrowed; NULL: the system's CAs */
    bool tls_none;          /* plain http:// allowed (tls = none) */
    int connect_timeout_ms; /* 0: 30 s */
    int io_timeout_ms;      /* the server may stall this long (0: 60 s); libcurl
                               averages speed over 5 s, so a stall right after
                               sending is noticed up to 5 s later */
    int total_timeout_ms;   /* a whole request, 0: no limit beyond the stall */
    size_t max_body;        /* 0: HTTP_MAX_BODY */
    atomic_bool *cancel;    /* borrowed; when set, a request gives up (may be NULL) */
};

enum http_method {
    HTTP_GET,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_PROPFIND,
    HTTP_REPORT,
    HTTP_MKCOL,
    HTTP_MKCALENDAR,
    HTTP_MOVE,
    HTTP_PROPPATCH,
};

/* One request. Every pointer is borrowed for the call. A URL is either
 * absolute (http:// or https://, on the base URL's scheme, host and port:
 * credentials never go to another server) or an absolute path joined to the
 * base URL; it must be percent-encoded already (dav_href_encode). */
struct http_request {
    enum http_method method;
    const char *url;
    const char *depth;         /* "0", "1", "infinity" or NULL */
    const char *if_match;      /* an ETag, sent as given, or NULL */
    const char *if_none_match; /* "*" or NULL */
    const char *content_type;  /* required with a body */
    const char *destination;   /* MOVE: absolute path or URL, joined like url */
    const char *overwrite;     /* "F", "T" or NULL */
    const char *prefer;        /* e.g. "return=minimal", or NULL */
    const void *body;          /* NULL: none */
    size_t body_len;
    bool follow_redirects; /* at most HTTP_MAX_REDIRECTS, same origin only */
};

struct http_response {
    int status;         /* the final answer's status code */
    char *etag;         /* owned, NULL when absent */
    char *location;     /* owned, NULL when absent */
    char *content_type; /* owned, NULL when absent */
    char *dav;          /* owned: the DAV header (compliance classes), or NULL */
    char *url;          /* owned: the URL answered (after redirects) */
    struct dynbuf body; /* owned, capped at the config's max_body */
};

struct http_conn;

/* Check the config (scheme, no credentials in the URL, http:// only with
 * tls_none) and make the handle; nothing is sent yet. 0, or -1 with *err
 * filled (scope ACCOUNT, retry NEVER: a config problem). Authentication is
 * Basic, sent with every request (no extra round trip); a server that
 * answers 401 offering Digest only gets Digest from then on. */
int http_open(const struct http_config *cfg, struct http_conn **out,
              struct sync_error *err);
void http_close(struct http_conn *c);

/* The base URL's path ("/" at least), percent-encoded; borrowed. */
const char *http_base_path(const struct http_conn *c);

void http_response_init(struct http_response *r);
/* Free what the response owns and init it again. */
void http_response_free(struct http_response *r);

/* Send one request and read the whole answer into *resp (freed and refilled).
 * Returns 0 when the server answered with any status other than 401/407
 * (look at resp->status), or -1 with *err filled:
 *   SYNC_ERR_AUTH      401/407 (scope ACCOUNT, retry NEVER);
 *   SYNC_ERR_TLS       certificate not verified (retry NEVER) or handshake failed;
 *   SYNC_ERR_CONNECT   cannot resolve or connect, connection lost;
 *   SYNC_ERR_TIMEOUT   the server stalled past the timeouts;
 *   SYNC_ERR_PROTOCOL  an answer larger than the cap, a bad redirect;
 *   SYNC_ERR_CANCELLED the cancel flag was set;
 *   SYNC_ERR_SERVER    the URL is refused (http:// without tls_none, other origin).
 * Transport errors have scope ACCOUNT. resp->status is 0 when no answer came. */
int http_request(struct http_conn *c, const struct http_request *req,
                 struct http_response *resp, struct sync_error *err);

/* Fill *err for a non-2xx status of an answer to `what` (e.g. "PUT /x.ics"):
 * 401/407 AUTH; 408, 429 and 5xx SERVER retry LATER; other statuses SERVER
 * retry NEVER. `scope` is the caller's (ITEM for one item, FOLDER for a
 * collection). The server's reason (body text, first line) is quoted when
 * it is short plain text. */
void http_status_error(const struct http_response *resp, const char *what,
                       enum sync_scope scope, struct sync_error *err);

/* "PROPFIND", "PUT"... */
const char *http_method_name(enum http_method m);

#endif
