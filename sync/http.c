/* http: HTTP requests for DAV over one reused libcurl easy handle: origin and
 * TLS policy, headers, capped bodies, redirects for discovery, error mapping. */
#include "sync/http.h"

#include "common/util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct http_conn {
    CURL *curl;
    char *scheme;    /* "http" or "https"; owned */
    char *host;      /* owned, lower case */
    char *port;      /* owned, explicit or the scheme's default */
    char *origin;    /* "scheme://host:port"; owned */
    char *base_path; /* owned, percent-encoded, at least "/" */
    char *user;      /* owned; NULL: no authentication */
    char *password;  /* owned, wiped on close; never logged */
    char *cafile;    /* owned or NULL */
    bool tls_none;
    long auth; /* CURLAUTH_BASIC until a server asks for Digest only */
    int connect_timeout_ms;
    int io_timeout_ms;
    int total_timeout_ms;
    size_t max_body;
    atomic_bool *cancel;
};

/* What the callbacks of one transfer fill. */
struct transfer {
    struct http_conn *c;
    struct http_response *resp;
    bool too_big;
    bool digest_offered; /* a WWW-Authenticate: Digest challenge came */
    bool basic_offered;
};

static const char *const method_names[] = {
    [HTTP_GET] = "GET",
    [HTTP_PUT] = "PUT",
    [HTTP_DELETE] = "DELETE",
    [HTTP_PROPFIND] = "PROPFIND",
    [HTTP_REPORT] = "REPORT",
    [HTTP_MKCOL] = "MKCOL",
    [HTTP_MKCALENDAR] = "MKCALENDAR",
    [HTTP_MOVE] = "MOVE",
    [HTTP_PROPPATCH] = "PROPPATCH",
};

const char *
http_method_name(enum http_method m)
{
    if ((size_t)m < ARRAY_SIZE(method_names) && method_names[m])
        return method_names[m];
    return "?";
}

void
http_response_init(struct http_response *r)
{
    r->status = 0;
    r->etag = r->location = r->content_type = r->dav = r->url = NULL;
    dynbuf_init(&r->body, HTTP_MAX_BODY);
}

static void
response_clear_headers(struct http_response *r)
{
    free(r->etag);
    free(r->location);
    free(r->content_type);
    free(r->dav);
    r->etag = r->location = r->content_type = r->dav = NULL;
}

void
http_response_free(struct http_response *r)
{
    response_clear_headers(r);
    free(r->url);
    dynbuf_free(&r->body);
    http_response_init(r);
}

/* --- URLs ----------------------------------------------------------------- */

static char *
url_part(CURLU *u, CURLUPart part)
{
    char *s = NULL;
    if (curl_url_get(u, part, &s, 0) != CURLUE_OK)
        return NULL;
    char *copy = xstrdup(s);
    curl_free(s);
    return copy;
}

static void
lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* Split an absolute URL into lower-case scheme and host, the port (the
 * scheme's default when absent) and the path. Returns 0 or -1. */
static int
split_url(const char *url, char **scheme, char **host, char **port, char **path,
          bool *has_userinfo)
{
    CURLU *u = curl_url();
    if (!u)
        return -1;
    int r = -1;
    *scheme = *host = *port = *path = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
        goto out;
    *scheme = url_part(u, CURLUPART_SCHEME);
    *host = url_part(u, CURLUPART_HOST);
    *path = url_part(u, CURLUPART_PATH);
    char *p = NULL;
    if (curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        *port = xstrdup(p);
        curl_free(p);
    }
    if (has_userinfo) {
        char *ui = NULL;
        *has_userinfo = false;
        if (curl_url_get(u, CURLUPART_USER, &ui, 0) == CURLUE_OK) {
            *has_userinfo = true;
            curl_free(ui);
        }
        if (curl_url_get(u, CURLUPART_PASSWORD, &ui, 0) == CURLUE_OK) {
            *has_userinfo = true;
            curl_free(ui);
        }
    }
    if (!*scheme || !*host || !*port || !*path)
        goto out;
    lower(*scheme);
    lower(*host);
    r = 0;
out:
    if (r < 0) {
        free(*scheme);
        free(*host);
        free(*port);
        free(*path);
        *scheme = *host = *port = *path = NULL;
    }
    curl_url_cleanup(u);
    return r;
}

static bool
is_absolute_url(const char *s)
{
    return strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0;
}

/* The URL to send for `target` (an absolute path or a URL on our origin):
 * a new string, or NULL with *err filled. */
static char *
resolve_url(struct http_conn *c, const char *target, struct sync_error *err)
{
    if (!target || !*target) {
        sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ITEM, SYNC_RETRY_NEVER,
                       "empty URL");
        return NULL;
    }
    for (const unsigned char *p = (const unsigned char *)target; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) {
            sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ITEM, SYNC_RETRY_NEVER,
                           "URL with a blank or control character refused (not "
                           "percent-encoded)");
            return NULL;
        }
    if (target[0] == '/' && target[1] != '/')
        return xasprintf("%s%s", c->origin, target);
    if (!is_absolute_url(target)) {
        sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ITEM, SYNC_RETRY_NEVER,
                       "not an absolute path or http(s) URL: %.200s", target);
        return NULL;
    }
    char *scheme, *host, *port, *path;
    bool userinfo;
    if (split_url(target, &scheme, &host, &port, &path, &userinfo) < 0) {
        sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ITEM, SYNC_RETRY_NEVER,
                       "malformed URL: %.200s", target);
        return NULL;
    }
    char *out = NULL;
    if (userinfo || strcmp(scheme, c->scheme) != 0 || strcmp(host, c->host) != 0 ||
        strcmp(port, c->port) != 0)
        sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_ITEM, SYNC_RETRY_NEVER,
                       "%.200s is not on %s: mailfs sends the account's password only "
                       "to the configured server",
                       target, c->origin);
    else
        out = xasprintf("%s%s", c->origin, path);
    free(scheme);
    free(host);
    free(port);
    free(path);
    return out;
}

int
http_open(const struct http_config *cfg, struct http_conn **out, struct sync_error *err)
{
    *out = NULL;
    const char *url = cfg->base_url ? cfg->base_url : "";
    char *scheme, *host, *port, *path;
    bool userinfo;
    if (!is_absolute_url(url) ||
        split_url(url, &scheme, &host, &port, &path, &userinfo) < 0) {
        sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_NEVER,
                       "%s is not an http:// or https:// URL", url);
        return -1;
    }
    int r = -1;
    if (userinfo) {
        sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_NEVER,
                       "the URL holds a user name or password: put the user in `user =` "
                       "and the password in `password_command =`");
    } else if (strcmp(scheme, "http") == 0 && !cfg->tls_none) {
        sync_error_set(err, SYNC_ERR_TLS, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_NEVER,
                       "%s is plain http://: the password and data would travel "
                       "unencrypted; use https://, or set `tls = none` for a server on "
                       "this machine",
                       url);
    } else {
        r = 0;
    }
    if (r < 0) {
        free(scheme);
        free(host);
        free(port);
        free(path);
        return -1;
    }
    struct http_conn *c = xcalloc(1, sizeof *c);
    c->curl = curl_easy_init();
    if (!c->curl) {
        free(scheme);
        free(host);
        free(port);
        free(path);
        free(c);
        sync_error_set(err, SYNC_ERR_CONNECT, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "libcurl could not make a handle");
        return -1;
    }
    c->scheme = scheme;
    c->host = host;
    c->port = port;
    /* IPv6 literals keep their brackets in a URL */
    if (strchr(host, ':'))
        c->origin = xasprintf("%s://[%s]:%s", scheme, host, port);
    else
        c->origin = xasprintf("%s://%s:%s", scheme, host, port);
    c->base_path = path; /* libcurl gives "/" at least */
    c->user = cfg->user ? xstrdup(cfg->user) : NULL;
    c->password = cfg->password ? xstrdup(cfg->password) : NULL;
    c->cafile = cfg->cafile ? xstrdup(cfg->cafile) : NULL;
    c->tls_none = cfg->tls_none;
    c->auth = CURLAUTH_BASIC;
    c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 30000;
    c->io_timeout_ms = cfg->io_timeout_ms > 0 ? cfg->io_timeout_ms : 60000;
    c->total_timeout_ms = cfg->total_timeout_ms > 0 ? cfg->total_timeout_ms : 0;
    c->max_body = cfg->max_body ? cfg->max_body : HTTP_MAX_BODY;
    c->cancel = cfg->cancel;
    *out = c;
    return 0;
}

void
http_close(struct http_conn *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    if (c->password) {
        explicit_bzero(c->password, strlen(c->password));
        free(c->password);
    }
    free(c->user);
    free(c->cafile);
    free(c->scheme);
    free(c->host);
    free(c->port);
    free(c->origin);
    free(c->base_path);
    free(c);
}

const char *
http_base_path(const struct http_conn *c)
{
    return c->base_path;
}

/* --- callbacks -------------------------------------------------------------- */

static size_t
on_body(char *data, size_t size, size_t n, void *p)
{
    struct transfer *t = p;
    if (dynbuf_add(&t->resp->body, data, n) < 0) {
        t->too_big = true;
        return 0;
    }
    return n;
}

static char *
header_value(const char *line, size_t len, const char *name)
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return NULL;
    const char *v = line + nl + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v &&
           (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return xstrndup(v, (size_t)(end - v));
}

static void
keep_header(char **slot, char *value)
{
    if (!value)
        return;
    free(*slot);
    *slot = value;
}

static size_t
on_header(char *line, size_t size, size_t n, void *p)
{
    struct transfer *t = p;
    struct http_response *r = t->resp;
    /* each answer (100 Continue, a 401 before Digest, the final one) starts
     * with its status line: keep the headers of the last one only */
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        response_clear_headers(r);
        t->digest_offered = t->basic_offered = false;
        return n;
    }
    keep_header(&r->etag, header_value(line, n, "ETag"));
    keep_header(&r->location, header_value(line, n, "Location"));
    keep_header(&r->content_type, header_value(line, n, "Content-Type"));
    keep_header(&r->dav, header_value(line, n, "DAV"));
    char *auth = header_value(line, n, "WWW-Authenticate");
    if (auth) {
        if (strncasecmp(auth, "Digest", 6) == 0)
            t->digest_offered = true;
        if (strncasecmp(auth, "Basic", 5) == 0)
            t->basic_offered = true;
        free(auth);
    }
    return n;
}

static int
on_progress(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct http_conn *c = p;
    return c->cancel && atomic_load(c->cancel) ? 1 : 0;
}

/* --- errors ----------------------------------------------------------------- */

static void
map_curl_error(struct http_conn *c, CURLcode rc, const char *errbuf, const char *what,
               struct transfer *t, struct sync_error *err)
{
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        sync_error_set(err, SYNC_ERR_TLS, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_NEVER,
                       "TLS to %s failed: the server certificate could not be verified "
                       "(%s); for a private CA set cafile in the config",
                       c->origin, detail);
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_SHUTDOWN_FAILED:
        sync_error_set(err, SYNC_ERR_TLS, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "TLS to %s failed: %s", c->origin, detail);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        sync_error_set(err, SYNC_ERR_CONNECT, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "cannot reach %s (%s): %s", c->origin, what, detail);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        sync_error_set(err, SYNC_ERR_TIMEOUT, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "%s on %s timed out: %s", what, c->origin, detail);
        break;
    case CURLE_ABORTED_BY_CALLBACK:
        sync_error_set(err, SYNC_ERR_CANCELLED, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "%s on %s was cancelled", what, c->origin);
        break;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (t->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
            sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_FOLDER, SYNC_RETRY_LATER,
                           "the answer to %s is larger than %zu MiB: refused", what,
                           c->max_body >> 20);
            break;
        }
        /* fall through */
    default:
        sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "%s on %s failed: %s", what, c->origin, detail);
        break;
    }
}

static const char *
status_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 207:
        return "Multi-Status";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 407:
        return "Proxy Authentication Required";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 423:
        return "Locked";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 507:
        return "Insufficient Storage";
    }
    return "";
}

void
http_status_error(const struct http_response *resp, const char *what,
                  enum sync_scope scope, struct sync_error *err)
{
    int st = resp->status;
    /* a short plain-text reason from the server helps people; XML and HTML
     * bodies are left to the caller */
    char reason[160] = "";
    if (resp->body.len && resp->content_type &&
        strncasecmp(resp->content_type, "text/plain", 10) == 0) {
        size_t i = 0;
        for (; i < resp->body.len && i < sizeof reason - 1; i++) {
            unsigned char ch = (unsigned char)resp->body.data[i];
            if (ch == '\r' || ch == '\n')
                break;
            reason[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
        }
        reason[i] = '\0';
    }
    enum sync_code code = SYNC_ERR_SERVER;
    enum sync_retry retry = SYNC_RETRY_NEVER;
    if (st == 401 || st == 407) {
        code = SYNC_ERR_AUTH;
        scope = SYNC_SCOPE_ACCOUNT;
    } else if (st == 408 || st == 429 || st >= 500) {
        retry = SYNC_RETRY_LATER;
    }
    sync_error_set(err, code, scope, retry, "%s: HTTP %d %s%s%s%s", what, st,
                   status_phrase(st), reason[0] ? " (" : "", reason,
                   reason[0] ? ")" : "");
}

/* --- requests --------------------------------------------------------------- */

static bool
header_safe(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static int
add_header(struct curl_slist **list, const char *name, const char *value,
           struct sync_error *err)
{
    if (!value)
        return 0;
    /* values such as ETags come from servers: a line break would let a
     * hostile one add headers of its own */
    if (!header_safe(value)) {
        sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ITEM, SYNC_RETRY_NEVER,
                       "%s header value with a control character refused", name);
        return -1;
    }
    char *line = xasprintf("%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(*list, line);
    free(line);
    if (!l)
        abort();
    *list = l;
    return 0;
}

static void
set_common(struct http_conn *c, struct transfer *t, char *errbuf)
{
    CURL *h = c->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    /* redirects are followed here, not by libcurl: only for discovery and
     * only on our origin, since they carry the password */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->cafile)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->cafile);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->total_timeout_ms);
    /* a stalled server: under 1 byte/s for the io timeout */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)((c->io_timeout_ms + 999) / 1000));
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_body);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "mailfs/" MAILFS_VERSION);
    if (c->user) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, c->auth);
        curl_easy_setopt(h, CURLOPT_USERNAME, c->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->password ? c->password : "");
    }
}

static int
build_headers(struct http_conn *c, const struct http_request *req,
              struct curl_slist **list, struct sync_error *err)
{
    *list = NULL;
    char *dest = NULL;
    if (req->destination) {
        /* servers want an absolute URL here (Radicale answers 502 to a path) */
        dest = resolve_url(c, req->destination, err);
        if (!dest)
            return -1;
    }
    int r = 0;
    r |= add_header(list, "Depth", req->depth, err);
    r |= add_header(list, "If-Match", req->if_match, err);
    r |= add_header(list, "If-None-Match", req->if_none_match, err);
    r |= add_header(list, "Content-Type", req->body ? req->content_type : NULL, err);
    r |= add_header(list, "Destination", dest, err);
    r |= add_header(list, "Overwrite", req->overwrite, err);
    r |= add_header(list, "Prefer", req->prefer, err);
    free(dest);
    if (r)
        return -1;
    /* no "Expect: 100-continue" wait before a body: the servers answer at
     * once and the wait costs a round trip (or a second on HTTP/1.0) */
    struct curl_slist *l = curl_slist_append(*list, "Expect:");
    if (!l)
        abort();
    *list = l;
    return 0;
}

static bool
is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 ||
           status == 308;
}

/* The absolute URL a Location header points to, resolved against `from`. */
static char *
resolve_location(const char *from, const char *location)
{
    CURLU *u = curl_url();
    if (!u)
        return NULL;
    char *out = NULL;
    if (curl_url_set(u, CURLUPART_URL, from, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, location, 0) == CURLUE_OK) {
        char *s = NULL;
        if (curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK) {
            out = xstrdup(s);
            curl_free(s);
        }
    }
    curl_url_cleanup(u);
    return out;
}

/* One exchange on `url`: 0 with resp filled, or -1. */
static int
perform(struct http_conn *c, const struct http_request *req, const char *url,
        struct curl_slist *headers, struct http_response *resp, struct sync_error *err)
{
    const char *mname = http_method_name(req->method);
    char what[300];
    snprintf(what, sizeof what, "%s %.250s", mname, url + strlen(c->origin));
    for (int attempt = 0; attempt < 2; attempt++) {
        char errbuf[CURL_ERROR_SIZE] = "";
        struct transfer t = {.c = c, .resp = resp};
        http_response_free(resp);
        resp->body.cap = c->max_body;
        set_common(c, &t, errbuf);
        CURL *h = c->curl;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        if (req->method == HTTP_GET) {
            curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        } else {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, mname);
            if (req->body) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                                 (curl_off_t)req->body_len);
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
            }
        }
        CURLcode rc = curl_easy_perform(h);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
        if (rc != CURLE_OK) {
            map_curl_error(c, rc, errbuf, what, &t, err);
            resp->status = 0;
            return -1;
        }
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        resp->status = (int)code;
        resp->url = xstrdup(url);
        if ((code == 401 || code == 407) && attempt == 0 && c->user &&
            c->auth == CURLAUTH_BASIC && t.digest_offered && !t.basic_offered) {
            /* the server takes Digest only: from now on libcurl answers its
             * challenge (one extra exchange per request) */
            c->auth = CURLAUTH_DIGEST;
            continue;
        }
        if (code == 401 || code == 407) {
            sync_error_set(err, SYNC_ERR_AUTH, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_NEVER,
                           "%s refused the login (HTTP %ld, %s): check user and "
                           "password_command",
                           c->origin, code, what);
            return -1;
        }
        return 0;
    }
    return 0;
}

int
http_request(struct http_conn *c, const struct http_request *req,
             struct http_response *resp, struct sync_error *err)
{
    if (req->body && !req->content_type) {
        sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ITEM, SYNC_RETRY_NEVER,
                       "%s with a body but no content type",
                       http_method_name(req->method));
        return -1;
    }
    char *url = resolve_url(c, req->url, err);
    if (!url)
        return -1;
    struct curl_slist *headers;
    if (build_headers(c, req, &headers, err) < 0) {
        curl_slist_free_all(headers);
        free(url);
        return -1;
    }
    int r;
    for (int hops = 0;; hops++) {
        r = perform(c, req, url, headers, resp, err);
        if (r < 0 || !req->follow_redirects || !is_redirect(resp->status) ||
            !resp->location)
            break;
        if (hops == HTTP_MAX_REDIRECTS) {
            sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                           "more than %d redirects from %s", HTTP_MAX_REDIRECTS,
                           req->url);
            r = -1;
            break;
        }
        char *next = resolve_location(url, resp->location);
        if (!next) {
            sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                           "bad redirect from %s", req->url);
            r = -1;
            break;
        }
        char *checked = resolve_url(c, next, err);
        if (!checked) {
            sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_NEVER,
                           "%s redirects to %.200s, another server: set the URL in the "
                           "config to it",
                           req->url, next);
            free(next);
            r = -1;
            break;
        }
        free(next);
        free(url);
        url = checked;
    }
    curl_slist_free_all(headers);
    free(url);
    return r;
}
