/* dav_probe: a test-only command line over sync/dav.h, so that pytest can
 * drive the DAV layer against real servers. Prints one JSON object per line;
 * the last line says {"ok": true|false, ...}. Not installed.
 *
 *   dav_probe --url URL [--user U --password-file F] [--carddav] [--tls-none]
 *             [--cafile F] [--connect-timeout MS] [--io-timeout MS] COMMAND...
 *   discover | sync COLLECTION [TOKEN] | list COLLECTION
 *   | multiget COLLECTION HREF... (or "-": hrefs from stdin) [--batch N]
 *   | fetch-all COLLECTION | get HREF | put HREF FILE [--if-match E | --create]
 * [--content-type T] | delete HREF [--if-match E] | move FROM TO | mkcol HREF NAME COMPS
 *   | join COLLECTION NAME | normalize HREF [BASE] | equal A B
 * Exit status: 0 ok, 1 the operation failed, 2 usage. SIGINT/SIGTERM set the
 * cancel flag, as the daemon's shutdown does. */
#include "sync/dav.h"
#include "common/utf8.h"
#include "common/util.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_bool cancel_flag;

static void
on_signal(int sig)
{
    atomic_store(&cancel_flag, true);
}

static void
json_str(const char *s, size_t n)
{
    putchar('"');
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
            i++;
        } else if (c == '\n') {
            fputs("\\n", stdout);
            i++;
        } else if (c == '\r') {
            fputs("\\r", stdout);
            i++;
        } else if (c == '\t') {
            fputs("\\t", stdout);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            printf("\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            putchar(c);
            i++;
        } else {
            uint32_t cp;
            size_t k = utf8_next(p + i, n - i, &cp);
            if (k == 0) {
                printf("\\u%04x", c); /* not UTF-8: shown as Latin-1 */
                i++;
            } else {
                fwrite(p + i, 1, k, stdout);
                i += k;
            }
        }
    }
    putchar('"');
}

static void
json_cstr(const char *s)
{
    if (s)
        json_str(s, strlen(s));
    else
        fputs("null", stdout);
}

static const char *
scope_name(enum sync_scope s)
{
    switch (s) {
    case SYNC_SCOPE_ITEM:
        return "item";
    case SYNC_SCOPE_FOLDER:
        return "folder";
    case SYNC_SCOPE_ACCOUNT:
        return "account";
    }
    return "?";
}

static const char *
retry_name(enum sync_retry r)
{
    switch (r) {
    case SYNC_RETRY_NOW:
        return "now";
    case SYNC_RETRY_LATER:
        return "later";
    case SYNC_RETRY_NEVER:
        return "never";
    }
    return "?";
}

static const char *
code_name(enum sync_code c)
{
    switch (c) {
    case SYNC_OK:
        return "ok";
    case SYNC_ERR_CONNECT:
        return "connect";
    case SYNC_ERR_TLS:
        return "tls";
    case SYNC_ERR_AUTH:
        return "auth";
    case SYNC_ERR_TIMEOUT:
        return "timeout";
    case SYNC_ERR_PROTOCOL:
        return "protocol";
    case SYNC_ERR_SERVER:
        return "server";
    case SYNC_ERR_STORE:
        return "store";
    case SYNC_ERR_CANCELLED:
        return "cancelled";
    }
    return "?";
}

static int
fail(const struct sync_error *err, const struct dav_result *res)
{
    printf("{\"ok\": false, \"code\": \"%s\", \"scope\": \"%s\", \"retry\": \"%s\", "
           "\"message\": ",
           code_name(err->code), scope_name(err->scope), retry_name(err->retry));
    json_cstr(err->msg);
    if (res) {
        printf(", \"status\": %d, \"precondition\": ", res->status);
        json_cstr(res->precondition);
    }
    printf("}\n");
    return 1;
}

static void
result_line(const struct dav_result *res)
{
    printf("{\"ok\": true, \"result\": \"ok\", \"status\": %d, \"etag\": ", res->status);
    json_cstr(res->etag);
    printf("}\n");
}

static int
usage(void)
{
    fprintf(stderr, "usage: dav_probe --url URL [--user U --password-file F] [--carddav] "
                    "[--tls-none] [--cafile F] [--connect-timeout MS] [--io-timeout MS] "
                    "COMMAND...\n");
    return 2;
}

static char *
read_password(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    fclose(f);
    if (n < 0) {
        free(line);
        return xstrdup("");
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct dynbuf b;
    dynbuf_init(&b, HTTP_MAX_BODY);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (dynbuf_add(&b, chunk, n) < 0)
            break;
    fclose(f);
    *len = b.len;
    return dynbuf_take(&b);
}

static int
change_cb(void *ctx, const char *href, const char *etag, struct sync_error *err)
{
    size_t *count = ctx;
    (*count)++;
    if (etag) {
        printf("{\"changed\": ");
        json_cstr(href);
        printf(", \"etag\": ");
        json_cstr(etag);
    } else {
        printf("{\"removed\": ");
        json_cstr(href);
    }
    printf("}\n");
    return 0;
}

static int
item_cb(void *ctx, const char *href, int status, const char *etag, const char *data,
        size_t len, struct sync_error *err)
{
    size_t *count = ctx;
    (*count)++;
    printf("{\"href\": ");
    json_cstr(href);
    printf(", \"status\": %d, \"etag\": ", status);
    json_cstr(etag);
    printf(", \"data\": ");
    if (data)
        json_str(data, len);
    else
        fputs("null", stdout);
    printf("}\n");
    return 0;
}

static void
comps_json(unsigned comps)
{
    const char *sep = "";
    putchar('[');
    if (comps & DAV_COMP_VEVENT)
        printf("%s\"VEVENT\"", sep), sep = ", ";
    if (comps & DAV_COMP_VTODO)
        printf("%s\"VTODO\"", sep), sep = ", ";
    if (comps & DAV_COMP_VJOURNAL)
        printf("%s\"VJOURNAL\"", sep);
    putchar(']');
}

static unsigned
parse_comps(const char *s)
{
    unsigned c = 0;
    if (strstr(s, "VEVENT"))
        c |= DAV_COMP_VEVENT;
    if (strstr(s, "VTODO"))
        c |= DAV_COMP_VTODO;
    if (strstr(s, "VJOURNAL"))
        c |= DAV_COMP_VJOURNAL;
    return c;
}

static int
cmd_discover(struct dav_conn *c)
{
    struct dav_collections l;
    struct sync_error err;
    if (dav_discover(c, &l, &err) < 0)
        return fail(&err, NULL);
    for (size_t i = 0; i < l.n; i++) {
        const struct dav_collection *col = &l.v[i];
        printf("{\"collection\": ");
        json_cstr(col->href);
        printf(", \"displayname\": ");
        json_cstr(col->displayname);
        printf(", \"comps\": ");
        comps_json(col->comps);
        printf(", \"default\": %s, \"ctag\": ", col->is_default ? "true" : "false");
        json_cstr(col->ctag);
        printf(", \"sync_token\": ");
        json_cstr(col->sync_token);
        printf("}\n");
    }
    printf("{\"ok\": true, \"count\": %zu, \"principal\": ", l.n);
    json_cstr(l.principal);
    printf("}\n");
    dav_collections_free(&l);
    return 0;
}

static int
cmd_sync(struct dav_conn *c, const char *coll, const char *token)
{
    struct sync_error err;
    char *next = NULL;
    size_t count = 0;
    int r = dav_sync(c, coll, token, change_cb, &count, &next, &err);
    if (r < 0)
        return fail(&err, NULL);
    const char *result = r == DAV_TOKEN_REJECTED     ? "token-rejected"
                         : r == DAV_SYNC_UNSUPPORTED ? "unsupported"
                                                     : "ok";
    printf("{\"ok\": true, \"result\": \"%s\", \"count\": %zu, \"token\": ", result,
           count);
    json_cstr(next);
    if (r != 0) {
        printf(", \"message\": ");
        json_cstr(err.msg);
    }
    printf("}\n");
    free(next);
    return 0;
}

static int
cmd_list(struct dav_conn *c, const char *coll)
{
    struct sync_error err;
    size_t count = 0;
    if (dav_list(c, coll, change_cb, &count, &err) < 0)
        return fail(&err, NULL);
    printf("{\"ok\": true, \"count\": %zu}\n", count);
    return 0;
}

static int
cmd_multiget(struct dav_conn *c, const char *coll, char **hrefs, size_t n, size_t batch)
{
    char **list = hrefs;
    size_t cap = 0;
    if (n == 1 && strcmp(hrefs[0], "-") == 0) {
        list = NULL;
        n = 0;
        char *line = NULL;
        size_t lcap = 0;
        ssize_t len;
        while ((len = getline(&line, &lcap, stdin)) > 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = '\0';
            if (!len)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                list = xrealloc(list, cap * sizeof *list);
            }
            list[n++] = xstrdup(line);
        }
        free(line);
    }
    struct sync_error err;
    size_t count = 0, requests = 0;
    int r = 0;
    if (batch == 0)
        batch = n ? n : 1;
    for (size_t i = 0; i < n && r == 0; i += batch, requests++)
        r = dav_multiget(c, coll, (const char *const *)list + i,
                         n - i < batch ? n - i : batch, item_cb, &count, &err);
    if (list != hrefs) {
        for (size_t i = 0; i < n; i++)
            free(list[i]);
        free(list);
    }
    if (r < 0)
        return fail(&err, NULL);
    printf("{\"ok\": true, \"count\": %zu, \"requests\": %zu}\n", count, requests);
    return 0;
}

static int
cmd_fetch_all(struct dav_conn *c, const char *coll)
{
    struct sync_error err;
    size_t count = 0;
    if (dav_fetch_all(c, coll, item_cb, &count, &err) < 0)
        return fail(&err, NULL);
    printf("{\"ok\": true, \"count\": %zu}\n", count);
    return 0;
}

static int
cmd_get(struct dav_conn *c, const char *href)
{
    struct sync_error err;
    struct dav_result res;
    dav_result_init(&res);
    struct dynbuf data;
    dynbuf_init(&data, HTTP_MAX_BODY);
    int r = dav_get(c, href, &data, &res, &err);
    if (r < 0)
        r = fail(&err, &res);
    else {
        printf("{\"ok\": true, \"status\": %d, \"etag\": ", res.status);
        json_cstr(res.etag);
        printf(", \"data\": ");
        json_str(data.data ? data.data : "", data.len);
        printf("}\n");
    }
    dynbuf_free(&data);
    dav_result_free(&res);
    return r;
}

static int
write_done(int r, struct sync_error *err, struct dav_result *res)
{
    if (r < 0)
        r = fail(err, res);
    else
        result_line(res);
    dav_result_free(res);
    return r;
}

int
main(int argc, char **argv)
{
    const char *url = NULL, *user = NULL, *pwfile = NULL, *cafile = NULL;
    const char *if_match = NULL, *ctype = NULL;
    bool carddav = false, tls_none = false, create = false;
    int connect_ms = 5000, io_ms = 30000;
    size_t batch = 0;
    char **args = xcalloc((size_t)argc + 1, sizeof *args);
    int nargs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (strcmp(a, "--url") == 0 && more)
            url = argv[++i];
        else if (strcmp(a, "--user") == 0 && more)
            user = argv[++i];
        else if (strcmp(a, "--password-file") == 0 && more)
            pwfile = argv[++i];
        else if (strcmp(a, "--cafile") == 0 && more)
            cafile = argv[++i];
        else if (strcmp(a, "--if-match") == 0 && more)
            if_match = argv[++i];
        else if (strcmp(a, "--content-type") == 0 && more)
            ctype = argv[++i];
        else if (strcmp(a, "--connect-timeout") == 0 && more)
            connect_ms = atoi(argv[++i]);
        else if (strcmp(a, "--io-timeout") == 0 && more)
            io_ms = atoi(argv[++i]);
        else if (strcmp(a, "--batch") == 0 && more)
            batch = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(a, "--carddav") == 0)
            carddav = true;
        else if (strcmp(a, "--tls-none") == 0)
            tls_none = true;
        else if (strcmp(a, "--create") == 0)
            create = true;
        else
            args[nargs++] = argv[i];
    }
    if (nargs < 1) {
        free(args);
        return usage();
    }
    const char *cmd = args[0];
    int rc = 2;

    /* commands on hrefs alone: no server */
    if (strcmp(cmd, "join") == 0 && nargs == 3) {
        struct sync_error err;
        char *h = dav_href_join(args[1], args[2], &err);
        if (!h)
            rc = fail(&err, NULL);
        else {
            char *enc = dav_href_encode(h);
            printf("{\"ok\": true, \"href\": ");
            json_cstr(h);
            printf(", \"encoded\": ");
            json_cstr(enc);
            printf("}\n");
            free(enc);
            free(h);
            rc = 0;
        }
        free(args);
        return rc;
    }
    if (strcmp(cmd, "normalize") == 0 && (nargs == 2 || nargs == 3)) {
        char *h = dav_href_normalize(args[1], nargs == 3 ? args[2] : "/");
        printf("{\"ok\": true, \"href\": ");
        json_cstr(h);
        printf("}\n");
        free(h);
        free(args);
        return 0;
    }
    if (strcmp(cmd, "equal") == 0 && nargs == 3) {
        printf("{\"ok\": true, \"equal\": %s}\n",
               dav_href_equal(args[1], args[2]) ? "true" : "false");
        free(args);
        return 0;
    }

    if (!url) {
        free(args);
        return usage();
    }
    char *password = NULL;
    if (pwfile) {
        password = read_password(pwfile);
        if (!password) {
            fprintf(stderr, "dav_probe: cannot read %s\n", pwfile);
            free(args);
            return 2;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    dav_xml_init();

    struct http_config cfg = {
        .base_url = url,
        .user = user,
        .password = password,
        .cafile = cafile,
        .tls_none = tls_none,
        .connect_timeout_ms = connect_ms,
        .io_timeout_ms = io_ms,
        .cancel = &cancel_flag,
    };
    struct sync_error err;
    struct dav_conn *c = NULL;
    struct dav_result res;
    dav_result_init(&res);
    if (dav_open(&cfg, carddav ? DAV_KIND_CARDDAV : DAV_KIND_CALDAV, &c, &err) < 0) {
        rc = fail(&err, NULL);
    } else if (strcmp(cmd, "discover") == 0 && nargs == 1) {
        rc = cmd_discover(c);
    } else if (strcmp(cmd, "sync") == 0 && (nargs == 2 || nargs == 3)) {
        rc = cmd_sync(c, args[1], nargs == 3 ? args[2] : NULL);
    } else if (strcmp(cmd, "list") == 0 && nargs == 2) {
        rc = cmd_list(c, args[1]);
    } else if (strcmp(cmd, "multiget") == 0 && nargs >= 3) {
        rc = cmd_multiget(c, args[1], args + 2, (size_t)nargs - 2, batch);
    } else if (strcmp(cmd, "fetch-all") == 0 && nargs == 2) {
        rc = cmd_fetch_all(c, args[1]);
    } else if (strcmp(cmd, "get") == 0 && nargs == 2) {
        rc = cmd_get(c, args[1]);
    } else if (strcmp(cmd, "put") == 0 && nargs == 3 && (create != (if_match != NULL))) {
        size_t len;
        char *data = read_file(args[2], &len);
        if (!data) {
            fprintf(stderr, "dav_probe: cannot read %s\n", args[2]);
            rc = 2;
        } else {
            const char *t = ctype     ? ctype
                            : carddav ? "text/vcard; charset=utf-8"
                                      : "text/calendar; charset=utf-8";
            rc = write_done(dav_put(c, args[1], t, data, len, if_match, &res, &err), &err,
                            &res);
            free(data);
        }
    } else if (strcmp(cmd, "delete") == 0 && nargs == 2) {
        rc = write_done(dav_delete(c, args[1], if_match, &res, &err), &err, &res);
    } else if (strcmp(cmd, "move") == 0 && nargs == 3) {
        int r = dav_move(c, args[1], args[2], &res, &err);
        if (r == DAV_MOVE_UNSUPPORTED) {
            printf(
                "{\"ok\": true, \"result\": \"fallback\", \"status\": %d, \"message\": ",
                res.status);
            json_cstr(err.msg);
            printf("}\n");
            dav_result_free(&res);
            rc = 0;
        } else {
            rc = write_done(r, &err, &res);
        }
    } else if (strcmp(cmd, "mkcol") == 0 && nargs == 4) {
        rc = write_done(dav_mkcol(c, args[1], args[2], parse_comps(args[3]), &res, &err),
                        &err, &res);
    } else {
        rc = usage();
    }
    dav_close(c);
    if (password) {
        explicit_bzero(password, strlen(password));
        free(password);
    }
    free(args);
    curl_global_cleanup();
    return rc;
}
