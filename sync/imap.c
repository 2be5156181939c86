/* imap: an IMAP connection: libcurl for connect, TLS and login, then our own
 * pipelined command queue and streaming response parser. */
#include "sync/imap.h"

#include "common/log.h"
#include "common/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One response may hold a whole message; the cap bounds what a server can
 * make us allocate. Messages above IMAP_MAX_MESSAGE are reported, not
 * fetched; the rest of a response (flags, dates) gets a little room. */
#define IMAP_MAX_RESPONSE (IMAP_MAX_MESSAGE + (1u << 20))
/* Unsent command bytes (commands are small; APPEND literals are not). */
#define IMAP_MAX_OUT (512u << 20)
#define IMAP_RECV_CHUNK (256u << 10)

struct imap_conn {
    CURL *curl;
    curl_socket_t sock;
    struct imap_parser *parser; /* owned */
    struct dynbuf out;          /* queued bytes, [sent, len) not sent yet */
    size_t sent;
    size_t *holds;              /* offsets where a "+" is needed first; owned */
    size_t nholds, aholds;
    uint32_t next_tag;
    uint32_t cur_tag;           /* the command being built */
    unsigned caps;
    bool qresync;
    int io_timeout_ms;
    atomic_bool *cancel;
    char *recvbuf;              /* owned */
    struct imap_response *last_completion; /* borrowed from the parser */
    char host[256];
    uint64_t bytes_in;          /* received since connected (for the log) */
};

struct curl_cancel {
    atomic_bool *cancel;
};

static int
xferinfo(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct curl_cancel *cc = p;
    return cc->cancel && atomic_load(cc->cancel) ? 1 : 0;
}

static void
map_curl_error(CURLcode rc, const char *errbuf, const char *url, struct sync_error *err)
{
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_LOGIN_DENIED:
        sync_error_set(err, SYNC_ERR_AUTH, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_NEVER,
                       "login to %s failed: the server refused the user name or password "
                       "(check user and password_command)",
                       url);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        sync_error_set(err, SYNC_ERR_TLS, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_NEVER,
                       "TLS to %s failed: the server certificate could not be verified "
                       "(%s); for a private CA set cafile in the config",
                       url, detail);
        break;
    case CURLE_SSL_CONNECT_ERROR:
        sync_error_set(err, SYNC_ERR_TLS, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "TLS to %s failed: %s", url, detail);
        break;
    case CURLE_USE_SSL_FAILED:
        sync_error_set(err, SYNC_ERR_TLS, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_NEVER,
                       "%s does not offer STARTTLS, so the password would go in clear; "
                       "use imaps://, or `tls = none` for a server on this machine",
                       url);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
        sync_error_set(err, SYNC_ERR_CONNECT, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "cannot reach %s: %s", url, detail);
        break;
    case CURLE_ABORTED_BY_CALLBACK:
        sync_error_set(err, SYNC_ERR_CANCELLED, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "connecting to %s was cancelled", url);
        break;
    default:
        sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "connecting to %s failed: %s", url, detail);
        break;
    }
}

static void
parse_caps(struct imap_conn *c, const struct imap_value *list)
{
    static const struct {
        const char *name;
        unsigned bit;
    } known[] = {
        {"UIDPLUS", IMAP_CAP_UIDPLUS},     {"CONDSTORE", IMAP_CAP_CONDSTORE},
        {"QRESYNC", IMAP_CAP_QRESYNC},     {"MOVE", IMAP_CAP_MOVE},
        {"IDLE", IMAP_CAP_IDLE},           {"LITERAL+", IMAP_CAP_LITERAL_PLUS},
        {"ENABLE", IMAP_CAP_ENABLE},       {"ESEARCH", IMAP_CAP_ESEARCH},
        {"LIST-STATUS", IMAP_CAP_LIST_STATUS}, {"LITERAL-", IMAP_CAP_LITERAL_MINUS},
    };
    c->caps = 0;
    for (size_t i = 0; i < list->n; i++)
        for (size_t k = 0; k < ARRAY_SIZE(known); k++)
            if (imap_value_is(&list->items[i], known[k].name))
                c->caps |= known[k].bit;
}

static int
caps_cb(void *ctx, const struct imap_response *r, struct sync_error *err)
{
    struct imap_conn *c = ctx;
    if (r->name && strcmp(r->name, "CAPABILITY") == 0)
        parse_caps(c, &r->args);
    else if (r->name && strcmp(r->name, "ENABLED") == 0)
        for (size_t i = 0; i < r->args.n; i++)
            if (imap_value_is(&r->args.items[i], "QRESYNC"))
                c->qresync = true;
    return 0;
}

int
imap_connect(const struct imap_config *cfg, struct imap_conn **out, struct sync_error *err)
{
    *out = NULL;
    sync_error_clear(err);
    struct imap_conn *c = xcalloc(1, sizeof *c);
    c->curl = curl_easy_init();
    if (!c->curl) {
        free(c);
        sync_error_set(err, SYNC_ERR_CONNECT, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "libcurl could not start");
        return -1;
    }
    c->io_timeout_ms = cfg->io_timeout_ms > 0 ? cfg->io_timeout_ms : 60000;
    c->cancel = cfg->cancel;
    c->next_tag = 1;
    dynbuf_init(&c->out, IMAP_MAX_OUT);
    c->parser = imap_parser_new(IMAP_MAX_RESPONSE);
    c->recvbuf = xmalloc(IMAP_RECV_CHUNK);

    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_cancel cc = {cfg->cancel};
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_URL, cfg->url);
    curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(h, CURLOPT_USERNAME, cfg->user);
    curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->password);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    /* Never verbose: libcurl would print AUTHENTICATE PLAIN with the
     * base64 of the password. */
    curl_easy_setopt(h, CURLOPT_VERBOSE, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 15000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->io_timeout_ms);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "imap,imaps");
    curl_easy_setopt(h, CURLOPT_USE_SSL, (long)(cfg->tls_none ? CURLUSESSL_NONE : CURLUSESSL_ALL));
    if (cfg->cafile)
        curl_easy_setopt(h, CURLOPT_CAINFO, cfg->cafile);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &cc);
    CURLcode rc = curl_easy_perform(h);
    /* The error buffer and progress context live on this stack frame. */
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, NULL);
    if (rc != CURLE_OK) {
        map_curl_error(rc, errbuf, cfg->url, err);
        imap_close(c);
        return -1;
    }
    rc = curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &c->sock);
    if (rc != CURLE_OK || c->sock == CURL_SOCKET_BAD) {
        sync_error_set(err, SYNC_ERR_CONNECT, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "connection to %s has no socket", cfg->url);
        imap_close(c);
        return -1;
    }
    snprintf(c->host, sizeof c->host, "%s", cfg->url);

    /* The capabilities after login may differ from the greeting's. */
    uint32_t tag = imap_cmd(c, "CAPABILITY");
    if (imap_wait(c, tag, caps_cb, c, NULL, err) < 0) {
        imap_close(c);
        return -1;
    }
    if ((c->caps & IMAP_CAP_QRESYNC) && (c->caps & IMAP_CAP_ENABLE)) {
        tag = imap_cmd(c, "ENABLE QRESYNC");
        enum imap_status st;
        if (imap_wait(c, tag, caps_cb, c, &st, err) < 0) {
            imap_close(c);
            return -1;
        }
    }
    log_debug("connected to %s (capabilities 0x%x%s)", cfg->url, c->caps,
              c->qresync ? ", QRESYNC enabled" : "");
    *out = c;
    return 0;
}

void
imap_close(struct imap_conn *c)
{
    if (!c)
        return;
    if (c->host[0])
        log_info("disconnected from %s (%llu bytes received)", c->host,
                 (unsigned long long)c->bytes_in);
    if (c->curl)
        curl_easy_cleanup(c->curl);
    imap_parser_free(c->parser);
    dynbuf_free(&c->out);
    free(c->holds);
    free(c->recvbuf);
    free(c);
}

unsigned
imap_caps(const struct imap_conn *c)
{
    return c->caps;
}

bool
imap_has(const struct imap_conn *c, enum imap_caps cap)
{
    return (c->caps & cap) != 0;
}

bool
imap_qresync_enabled(const struct imap_conn *c)
{
    return c->qresync;
}

static void
out_add(struct imap_conn *c, const void *p, size_t n)
{
    if (dynbuf_add(&c->out, p, n) < 0) {
        /* Only a runaway caller queues half a gigabyte unsent. */
        log_error("imap: command queue over its cap");
        abort();
    }
}

static void
add_hold(struct imap_conn *c)
{
    if (c->nholds == c->aholds) {
        c->aholds = c->aholds ? c->aholds * 2 : 4;
        c->holds = xrealloc(c->holds, c->aholds * sizeof *c->holds);
    }
    c->holds[c->nholds++] = c->out.len;
}

void
imap_cmd_begin(struct imap_conn *c)
{
    char t[16];
    c->cur_tag = c->next_tag++;
    int n = snprintf(t, sizeof t, "m%u ", c->cur_tag);
    out_add(c, t, (size_t)n);
}

void
imap_cmd_add(struct imap_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = dynbuf_vprintf(&c->out, fmt, ap);
    va_end(ap);
    if (r < 0) {
        log_error("imap: command queue over its cap");
        abort();
    }
}

static void
add_literal(struct imap_conn *c, const void *data, size_t len)
{
    bool nonsync = (c->caps & IMAP_CAP_LITERAL_PLUS) ||
                   ((c->caps & IMAP_CAP_LITERAL_MINUS) && len <= 4096);
    char hdr[32];
    int n = snprintf(hdr, sizeof hdr, nonsync ? "{%zu+}\r\n" : "{%zu}\r\n", len);
    out_add(c, hdr, (size_t)n);
    if (!nonsync)
        add_hold(c);
    out_add(c, data, len);
}

void
imap_cmd_add_astring(struct imap_conn *c, const char *s)
{
    size_t len = strlen(s);
    if (imap_astring_needs_literal(s, len))
        add_literal(c, s, len);
    else if (imap_append_astring(&c->out, s, len, false) < 0)
        abort();
}

void
imap_cmd_add_literal(struct imap_conn *c, const void *data, size_t len)
{
    add_literal(c, data, len);
}

uint32_t
imap_cmd_end(struct imap_conn *c)
{
    out_add(c, "\r\n", 2);
    return c->cur_tag;
}

uint32_t
imap_cmd(struct imap_conn *c, const char *fmt, ...)
{
    imap_cmd_begin(c);
    va_list ap;
    va_start(ap, fmt);
    int r = dynbuf_vprintf(&c->out, fmt, ap);
    va_end(ap);
    if (r < 0)
        abort();
    return imap_cmd_end(c);
}

void
imap_send_raw(struct imap_conn *c, const char *text)
{
    out_add(c, text, strlen(text));
}

static void
conn_lost(struct imap_conn *c, struct sync_error *err, const char *why)
{
    sync_error_set(err, SYNC_ERR_CONNECT, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                   "connection to %s lost: %s", c->host, why);
}

/* The end of what may be sent now: up to the first hold. */
static size_t
send_limit(const struct imap_conn *c)
{
    return c->nholds ? c->holds[0] : c->out.len;
}

/* Send what can go without blocking. 0 or -1. */
static int
try_send(struct imap_conn *c, struct sync_error *err)
{
    size_t lim = send_limit(c);
    while (c->sent < lim) {
        size_t n = 0;
        CURLcode rc = curl_easy_send(c->curl, c->out.data + c->sent, lim - c->sent, &n);
        if (rc == CURLE_AGAIN)
            break;
        if (rc != CURLE_OK) {
            conn_lost(c, err, curl_easy_strerror(rc));
            return -1;
        }
        c->sent += n;
    }
    if (c->sent == c->out.len && c->nholds == 0) {
        dynbuf_reset(&c->out);
        c->sent = 0;
    }
    return 0;
}

/* Receive what is available without blocking: bytes read, 0 for none yet,
 * -1 on error or end of stream. */
static ssize_t
try_recv(struct imap_conn *c, struct sync_error *err)
{
    size_t n = 0;
    CURLcode rc = curl_easy_recv(c->curl, c->recvbuf, IMAP_RECV_CHUNK, &n);
    if (rc == CURLE_AGAIN)
        return 0;
    if (rc != CURLE_OK) {
        conn_lost(c, err, curl_easy_strerror(rc));
        return -1;
    }
    if (n == 0) {
        conn_lost(c, err, "closed by the server");
        return -1;
    }
    c->bytes_in += n;
    if (imap_parser_feed(c->parser, c->recvbuf, n) < 0) {
        sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                       "%s sent a response larger than %u MiB", c->host,
                       IMAP_MAX_RESPONSE >> 20);
        return -1;
    }
    return (ssize_t)n;
}

int
imap_flush(struct imap_conn *c, struct sync_error *err)
{
    while (c->sent < send_limit(c)) {
        if (try_send(c, err) < 0)
            return -1;
        if (c->sent < send_limit(c)) {
            struct pollfd p = {.fd = c->sock, .events = POLLOUT};
            if (poll(&p, 1, c->io_timeout_ms) == 0) {
                sync_error_set(err, SYNC_ERR_TIMEOUT, SYNC_SCOPE_ACCOUNT,
                               SYNC_RETRY_LATER, "%s stopped accepting data", c->host);
                return -1;
            }
        }
    }
    return 0;
}

int
imap_read(struct imap_conn *c, struct imap_response **resp, int timeout_ms, int wake_fd,
          struct sync_error *err)
{
    int64_t limit = timeout_ms >= 0 ? timeout_ms : c->io_timeout_ms;
    int64_t deadline = util_now_ms() + limit;
    for (;;) {
        struct imap_response *r;
        enum imap_parse_result pr = imap_parser_next(c->parser, &r);
        if (pr == IMAP_PARSE_OK) {
            if (r->kind == IMAP_RESP_CONTINUATION && c->nholds > 0) {
                /* The server is ready for the literal we held back. */
                memmove(c->holds, c->holds + 1, (c->nholds - 1) * sizeof *c->holds);
                c->nholds--;
                continue;
            }
            if (r->kind == IMAP_RESP_TAGGED)
                c->last_completion = r;
            *resp = r;
            return 1;
        }
        if (pr != IMAP_PARSE_MORE) {
            sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                           "%s sent something that is not IMAP: %s", c->host,
                           imap_parser_error(c->parser));
            return -1;
        }
        if (try_send(c, err) < 0)
            return -1;
        ssize_t got = try_recv(c, err);
        if (got < 0)
            return -1;
        if (got > 0) {
            if (timeout_ms < 0)
                deadline = util_now_ms() + limit; /* inactivity, not total time */
            continue;
        }
        if (c->cancel && atomic_load(c->cancel)) {
            sync_error_set(err, SYNC_ERR_CANCELLED, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                           "cancelled");
            return -1;
        }
        int64_t left = deadline - util_now_ms();
        if (left <= 0) {
            if (timeout_ms >= 0)
                return 0;
            sync_error_set(err, SYNC_ERR_TIMEOUT, SYNC_SCOPE_ACCOUNT, SYNC_RETRY_LATER,
                           "%s did not answer for %d s", c->host, c->io_timeout_ms / 1000);
            return -1;
        }
        struct pollfd p[2] = {
            {.fd = c->sock, .events = POLLIN},
            {.fd = wake_fd, .events = POLLIN},
        };
        if (c->sent < send_limit(c))
            p[0].events |= POLLOUT;
        /* Short slices so a cancel is noticed without a wake fd. */
        int slice = left > 500 ? 500 : (int)left;
        int n = poll(p, wake_fd >= 0 ? 2 : 1, slice);
        if (n < 0 && errno != EINTR) {
            conn_lost(c, err, strerror(errno));
            return -1;
        }
        if (n > 0 && wake_fd >= 0 && (p[1].revents & POLLIN))
            return 2;
    }
}

uint32_t
imap_resp_tag(const struct imap_response *r)
{
    if (r->kind != IMAP_RESP_TAGGED || !r->tag || r->tag[0] != 'm')
        return 0;
    char *end;
    unsigned long v = strtoul(r->tag + 1, &end, 10);
    return *end == '\0' && v <= UINT32_MAX ? (uint32_t)v : 0;
}

int
imap_wait(struct imap_conn *c, uint32_t tag, imap_untagged_fn fn, void *ctx,
          enum imap_status *status, struct sync_error *err)
{
    for (;;) {
        struct imap_response *r;
        int n = imap_read(c, &r, -1, -1, err);
        if (n < 0)
            return -1;
        if (r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_ST_BYE) {
            conn_lost(c, err, r->text && r->text[0] ? r->text : "server said BYE");
            return -1;
        }
        if (r->kind == IMAP_RESP_TAGGED && imap_resp_tag(r) == tag) {
            if (status) {
                *status = r->status;
                return 0;
            }
            if (r->status != IMAP_ST_OK) {
                sync_error_set(err, SYNC_ERR_SERVER, SYNC_SCOPE_FOLDER, SYNC_RETRY_LATER,
                               "%s", r->text && r->text[0] ? r->text : "command refused");
                return -1;
            }
            return 0;
        }
        if (fn && fn(ctx, r, err) < 0)
            return -1;
    }
}

const char *
imap_last_text(const struct imap_conn *c)
{
    return c->last_completion && c->last_completion->text ? c->last_completion->text : "";
}

const struct imap_response *
imap_last_completion(const struct imap_conn *c)
{
    return c->last_completion;
}
