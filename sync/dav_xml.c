/* dav_xml: streaming multistatus parser on libxml2's xmlTextReader (only one
 * response is held at a time), request body builders, href normalisation. */
#include "sync/dav_xml.h"

#include "common/dynbuf.h"
#include "common/utf8.h"
#include "common/util.h"

#include <libxml/xmlreader.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void
dav_xml_init(void)
{
    xmlInitParser();
}

/* --- hrefs ------------------------------------------------------------------ */

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool
is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void
add_escape(struct dynbuf *b, unsigned char byte)
{
    static const char hex[] = "0123456789ABCDEF";
    char e[3] = {'%', hex[byte >> 4], hex[byte & 15]};
    dynbuf_add(b, e, 3);
}

/* Bytes a decoded path keeps escaped: see the header. */
static bool
keep_escaped(unsigned char byte)
{
    return byte == '/' || byte == '%' || byte == '?' || byte == '#' || byte < 0x20 ||
           byte == 0x7f;
}

/* Decode s[0..n) into b, escaping what must stay escaped, then escape the
 * bytes that are not valid UTF-8. */
static void
decode_path(struct dynbuf *b, const char *s, size_t n)
{
    struct dynbuf tmp;
    dynbuf_init(&tmp, SIZE_MAX / 2);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            unsigned char byte =
                (unsigned char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            if (keep_escaped(byte))
                add_escape(&tmp, byte);
            else
                dynbuf_addc(&tmp, (char)byte);
            i += 2;
        } else if (keep_escaped(ch) && ch != '/' && ch != '?' && ch != '#') {
            add_escape(&tmp, ch);
        } else {
            dynbuf_addc(&tmp, (char)ch);
        }
    }
    /* a '%' in tmp always starts a three-byte escape now */
    const unsigned char *p = (const unsigned char *)(tmp.data ? tmp.data : "");
    size_t len = tmp.len;
    for (size_t i = 0; i < len;) {
        if (p[i] == '%') {
            dynbuf_add(b, p + i, 3);
            i += 3;
        } else if (p[i] < 0x80) {
            dynbuf_addc(b, (char)p[i]);
            i++;
        } else {
            uint32_t cp;
            size_t k = utf8_next(p + i, len - i, &cp);
            if (k == 0) {
                add_escape(b, p[i]);
                i++;
            } else {
                dynbuf_add(b, p + i, k);
                i += k;
            }
        }
    }
    /* a blank at the very end would be trimmed as layout by the next
     * reader: keep it visible */
    if (b->len && b->data[b->len - 1] == ' ') {
        b->len--;
        add_escape(b, ' ');
    }
    dynbuf_free(&tmp);
}

/* RFC 3986 section 5.2.4 on a path that starts with '/'. */
static char *
remove_dots(const char *path)
{
    size_t n = strlen(path);
    char *out = xmalloc(n + 2);
    size_t *starts = xmalloc((n + 2) * sizeof *starts);
    size_t olen = 1, nseg = 0;
    out[0] = '/';
    const char *s = path + 1;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t sl = slash ? (size_t)(slash - s) : strlen(s);
        bool last = !slash;
        if (sl == 1 && s[0] == '.') {
            /* nothing: "." names the directory itself */
        } else if (sl == 2 && s[0] == '.' && s[1] == '.') {
            if (nseg > 0)
                olen = starts[--nseg];
        } else if (!(last && sl == 0)) {
            starts[nseg++] = olen;
            memcpy(out + olen, s, sl);
            olen += sl;
            if (!last)
                out[olen++] = '/';
        }
        if (last)
            break;
        s = slash + 1;
    }
    out[olen] = '\0';
    free(starts);
    return out;
}

char *
dav_href_normalize(const char *href, const char *base_path)
{
    if (!href)
        return NULL;
    const char *s = href;
    while (is_blank((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_blank((unsigned char)s[n - 1]))
        n--;
    if (n == 0)
        return NULL;
    /* an absolute URL: http(s), its colon perhaps encoded (Xandikos sends
     * "http%3A//host%3Aport/path" in some answers) */
    size_t skip = 0;
    if (n >= 5 && strncasecmp(s, "http:", 5) == 0)
        skip = 5;
    else if (n >= 6 && strncasecmp(s, "https:", 6) == 0)
        skip = 6;
    else if (n >= 7 && strncasecmp(s, "http%3A", 7) == 0)
        skip = 7;
    else if (n >= 8 && strncasecmp(s, "https%3A", 8) == 0)
        skip = 8;
    if (skip && n >= skip + 2 && s[skip] == '/' && s[skip + 1] == '/') {
        size_t a = skip + 2;
        while (a < n && s[a] != '/' && s[a] != '?' && s[a] != '#')
            a++;
        s += a;
        n -= a;
    }
    size_t cut = 0;
    while (cut < n && s[cut] != '?' && s[cut] != '#')
        cut++;
    n = cut;

    struct dynbuf raw;
    dynbuf_init(&raw, SIZE_MAX / 2);
    if (n == 0 || s[0] != '/') {
        /* relative: against the base path's directory */
        const char *base = base_path && base_path[0] == '/' ? base_path : "/";
        const char *q = base;
        while (*q && *q != '?' && *q != '#')
            q++;
        size_t blen = (size_t)(q - base);
        while (blen > 0 && base[blen - 1] != '/')
            blen--;
        dynbuf_add(&raw, base, blen);
    }
    dynbuf_add(&raw, s, n);
    struct dynbuf dec;
    dynbuf_init(&dec, SIZE_MAX / 2);
    decode_path(&dec, raw.data ? raw.data : "/", raw.len ? raw.len : 1);
    dynbuf_free(&raw);
    char *out = remove_dots(dec.data ? dec.data : "/");
    dynbuf_free(&dec);
    return out;
}

static int
upper_hex(int c)
{
    return c >= 'a' && c <= 'f' ? c - 'a' + 'A' : c;
}

static bool
unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

char *
dav_href_encode(const char *href)
{
    struct dynbuf b;
    dynbuf_init(&b, SIZE_MAX / 2);
    for (const unsigned char *p = (const unsigned char *)href; *p; p++) {
        if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            dynbuf_addc(&b, '%');
            dynbuf_addc(&b, (char)upper_hex(p[1]));
            dynbuf_addc(&b, (char)upper_hex(p[2]));
            p += 2;
        } else if (unreserved(*p) || *p == '/') {
            dynbuf_addc(&b, (char)*p);
        } else {
            add_escape(&b, *p);
        }
    }
    return dynbuf_take(&b);
}

static size_t
len_without_slash(const char *s)
{
    size_t n = strlen(s);
    return n > 1 && s[n - 1] == '/' ? n - 1 : n;
}

bool
dav_href_equal(const char *a, const char *b)
{
    char *na = dav_href_normalize(a, "/");
    char *nb = dav_href_normalize(b, "/");
    bool eq = false;
    if (na && nb) {
        size_t la = len_without_slash(na), lb = len_without_slash(nb);
        eq = la == lb && memcmp(na, nb, la) == 0;
    }
    free(na);
    free(nb);
    return eq;
}

char *
dav_href_join(const char *collection, const char *name, struct sync_error *err)
{
    size_t n = name ? strlen(name) : 0;
    const char *why = NULL;
    if (n == 0)
        why = "an empty name";
    else if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        why = "\".\" and \"..\" name no item";
    else if (strchr(name, '/'))
        why = "a '/' would leave the collection";
    else if (!utf8_valid(name, n))
        why = "not valid UTF-8";
    else
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
                why = "a control character";
    char *coll = why ? NULL : dav_href_normalize(collection, "/");
    if (!why && !coll)
        why = "no collection";
    if (why) {
        sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_ITEM, SYNC_RETRY_NEVER,
                       "cannot name a server item \"%.200s\": %s", name ? name : "", why);
        return NULL;
    }
    struct dynbuf b;
    dynbuf_init(&b, SIZE_MAX / 2);
    dynbuf_adds(&b, coll);
    if (b.data[b.len - 1] != '/')
        dynbuf_addc(&b, '/');
    for (size_t i = 0; i < n; i++) {
        if (keep_escaped((unsigned char)name[i]) || (i == n - 1 && name[i] == ' '))
            add_escape(&b, (unsigned char)name[i]);
        else
            dynbuf_addc(&b, name[i]);
    }
    free(coll);
    return dynbuf_take(&b);
}

bool
dav_href_is_member(const char *collection, const char *href)
{
    char *c = dav_href_normalize(collection, "/");
    char *h = dav_href_normalize(href, "/");
    bool r = false;
    if (c && h) {
        size_t cl = strlen(c);
        if (c[cl - 1] != '/') {
            c = xrealloc(c, cl + 2);
            c[cl++] = '/';
            c[cl] = '\0';
        }
        size_t hl = len_without_slash(h);
        if (hl > cl && strncmp(h, c, cl) == 0 && !memchr(h + cl, '/', hl - cl))
            r = true;
    }
    free(c);
    free(h);
    return r;
}

/* --- XML reading -------------------------------------------------------------- */

enum tok {
    T_OTHER,
    T_MULTISTATUS,
    T_RESPONSE,
    T_HREF,
    T_STATUS,
    T_PROPSTAT,
    T_PROP,
    T_ERROR,
    T_RESPDESC,
    T_SYNC_TOKEN,
    T_GETETAG,
    T_DISPLAYNAME,
    T_RESOURCETYPE,
    T_COLLECTION,
    T_PRINCIPAL,
    T_CUP,
    T_GETCONTENTTYPE,
    T_CALDATA,
    T_CALENDAR,
    T_SCCS,
    T_COMP,
    T_CHS,
    T_SDCU,
    T_SIU,
    T_SINBOX,
    T_SOUTBOX,
    T_ADDRDATA,
    T_ADDRESSBOOK,
    T_ABHS,
    T_GETCTAG,
};

static const struct {
    const char *ns;
    const char *name;
    enum tok tok;
} known_elements[] = {
    {DAV_NS_DAV, "multistatus", T_MULTISTATUS},
    {DAV_NS_DAV, "response", T_RESPONSE},
    {DAV_NS_DAV, "href", T_HREF},
    {DAV_NS_DAV, "status", T_STATUS},
    {DAV_NS_DAV, "propstat", T_PROPSTAT},
    {DAV_NS_DAV, "prop", T_PROP},
    {DAV_NS_DAV, "error", T_ERROR},
    {DAV_NS_DAV, "responsedescription", T_RESPDESC},
    {DAV_NS_DAV, "sync-token", T_SYNC_TOKEN},
    {DAV_NS_DAV, "getetag", T_GETETAG},
    {DAV_NS_DAV, "displayname", T_DISPLAYNAME},
    {DAV_NS_DAV, "resourcetype", T_RESOURCETYPE},
    {DAV_NS_DAV, "collection", T_COLLECTION},
    {DAV_NS_DAV, "principal", T_PRINCIPAL},
    {DAV_NS_DAV, "current-user-principal", T_CUP},
    {DAV_NS_DAV, "getcontenttype", T_GETCONTENTTYPE},
    {DAV_NS_CALDAV, "calendar-data", T_CALDATA},
    {DAV_NS_CALDAV, "calendar", T_CALENDAR},
    {DAV_NS_CALDAV, "supported-calendar-component-set", T_SCCS},
    {DAV_NS_CALDAV, "comp", T_COMP},
    {DAV_NS_CALDAV, "calendar-home-set", T_CHS},
    {DAV_NS_CALDAV, "schedule-default-calendar-URL", T_SDCU},
    {DAV_NS_CALDAV, "schedule-inbox-URL", T_SIU},
    {DAV_NS_CALDAV, "schedule-inbox", T_SINBOX},
    {DAV_NS_CALDAV, "schedule-outbox", T_SOUTBOX},
    {DAV_NS_CARDDAV, "address-data", T_ADDRDATA},
    {DAV_NS_CARDDAV, "addressbook", T_ADDRESSBOOK},
    {DAV_NS_CARDDAV, "addressbook-home-set", T_ABHS},
    {DAV_NS_CS, "getctag", T_GETCTAG},
};

/* Which property an element under <prop> is, or -1. */
static int
tok_prop(enum tok t)
{
    switch (t) {
    case T_GETETAG:
        return DAV_PROP_GETETAG;
    case T_CALDATA:
        return DAV_PROP_CALENDAR_DATA;
    case T_ADDRDATA:
        return DAV_PROP_ADDRESS_DATA;
    case T_DISPLAYNAME:
        return DAV_PROP_DISPLAYNAME;
    case T_RESOURCETYPE:
        return DAV_PROP_RESOURCETYPE;
    case T_SCCS:
        return DAV_PROP_SUPPORTED_COMPS;
    case T_GETCTAG:
        return DAV_PROP_GETCTAG;
    case T_SYNC_TOKEN:
        return DAV_PROP_SYNC_TOKEN;
    case T_CUP:
        return DAV_PROP_CURRENT_USER_PRINCIPAL;
    case T_CHS:
        return DAV_PROP_CALENDAR_HOME_SET;
    case T_ABHS:
        return DAV_PROP_ADDRESSBOOK_HOME_SET;
    case T_SDCU:
        return DAV_PROP_SCHEDULE_DEFAULT_CALENDAR;
    case T_SIU:
        return DAV_PROP_SCHEDULE_INBOX;
    case T_GETCONTENTTYPE:
        return DAV_PROP_GETCONTENTTYPE;
    default:
        return -1;
    }
}

static bool
prop_is_href(int p)
{
    return p == DAV_PROP_CURRENT_USER_PRINCIPAL || p == DAV_PROP_CALENDAR_HOME_SET ||
           p == DAV_PROP_ADDRESSBOOK_HOME_SET ||
           p == DAV_PROP_SCHEDULE_DEFAULT_CALENDAR || p == DAV_PROP_SCHEDULE_INBOX;
}

static bool
prop_is_data(int p)
{
    return p == DAV_PROP_CALENDAR_DATA || p == DAV_PROP_ADDRESS_DATA;
}

static enum tok
classify(xmlTextReaderPtr r)
{
    const char *ns = (const char *)xmlTextReaderConstNamespaceUri(r);
    const char *name = (const char *)xmlTextReaderConstLocalName(r);
    if (!ns || !name)
        return T_OTHER;
    for (size_t i = 0; i < ARRAY_SIZE(known_elements); i++)
        if (strcmp(name, known_elements[i].name) == 0 &&
            strcmp(ns, known_elements[i].ns) == 0)
            return known_elements[i].tok;
    return T_OTHER;
}

/* "HTTP/1.1 404 Not Found" -> 404; 0 when there is no status code. */
static int
parse_status(const char *s)
{
    while (is_blank((unsigned char)*s))
        s++;
    if (strncmp(s, "HTTP/", 5) != 0)
        return 0;
    const char *sp = strchr(s, ' ');
    if (!sp)
        return 0;
    int v = 0, digits = 0;
    for (sp++; *sp >= '0' && *sp <= '9' && digits < 3; sp++, digits++)
        v = v * 10 + (*sp - '0');
    return digits == 3 ? v : 0;
}

static void
on_xml_error(void *arg, xmlErrorPtr e)
{
    char *msg = arg;
    if (msg[0] || !e || !e->message)
        return;
    snprintf(msg, 256, "line %d: %s", e->line, e->message);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
}

static void
quiet(void *ctx, const char *fmt, ...)
{
}

/* A reader over body with the safe options only (DESIGN section 1). NULL
 * when the body is too big for it. */
static xmlTextReaderPtr
open_reader(const char *body, size_t len, char *errmsg)
{
    if (len > DAV_XML_MAX || len > INT_MAX)
        return NULL;
    /* some errors (encoding conversion) bypass the reader's handler and go
     * to libxml2's generic one, which prints to stderr; the handler is per
     * thread */
    xmlSetGenericErrorFunc(NULL, quiet);
    /* never XML_PARSE_NOENT, XML_PARSE_HUGE or the DTD options */
    xmlTextReaderPtr r = xmlReaderForMemory(body, (int)len, NULL, NULL, XML_PARSE_NONET);
    if (r)
        xmlTextReaderSetStructuredErrorHandler(r, on_xml_error, errmsg);
    return r;
}

#define MAX_DEPTH 16

enum collect {
    C_NONE,
    C_RHREF,
    C_RSTATUS,
    C_PSSTATUS,
    C_PROP,
    C_PROPHREF,
    C_TOPTOKEN,
    C_RESPDESC,
};

struct ms {
    const char *base_path;
    dav_response_fn fn;
    void *ctx;
    struct sync_error *err;
    enum tok stack[MAX_DEPTH];
    /* the response being read */
    struct dynbuf hrefs; /* normalised, each NUL-terminated */
    size_t nhrefs;
    int rstatus;
    struct dynbuf val[DAV_PROP_COUNT];
    int pstatus[DAV_PROP_COUNT];
    bool have[DAV_PROP_COUNT];
    unsigned rt, comps;
    unsigned ps_mask;
    int ps_status;
    bool ps_has_status;
    char errname[64];
    struct dynbuf desc;
    /* text being collected */
    enum collect collect;
    int collect_depth;
    int collect_prop;
    struct dynbuf text;
    char *top_token;
};

static void
ms_init(struct ms *m)
{
    memset(m, 0, sizeof *m);
    dynbuf_init(&m->hrefs, DAV_XML_MAX);
    for (int p = 0; p < DAV_PROP_COUNT; p++)
        dynbuf_init(&m->val[p], 2 * (size_t)DAV_XML_MAX);
    dynbuf_init(&m->desc, DAV_XML_MAX);
    dynbuf_init(&m->text, DAV_XML_MAX);
}

static void
ms_free(struct ms *m)
{
    dynbuf_free(&m->hrefs);
    for (int p = 0; p < DAV_PROP_COUNT; p++)
        dynbuf_free(&m->val[p]);
    dynbuf_free(&m->desc);
    dynbuf_free(&m->text);
    free(m->top_token);
}

static void
response_reset(struct ms *m)
{
    dynbuf_reset(&m->hrefs);
    m->nhrefs = 0;
    m->rstatus = 0;
    for (int p = 0; p < DAV_PROP_COUNT; p++) {
        dynbuf_reset(&m->val[p]);
        m->pstatus[p] = 0;
        m->have[p] = false;
    }
    m->rt = m->comps = 0;
    m->errname[0] = '\0';
    dynbuf_reset(&m->desc);
}

/* The text collected, blanks trimmed: a pointer into m->text. */
static const char *
trimmed(struct ms *m, size_t *len)
{
    const char *s = m->text.data ? m->text.data : "";
    size_t n = m->text.len;
    while (n > 0 && is_blank((unsigned char)*s))
        s++, n--;
    while (n > 0 && is_blank((unsigned char)s[n - 1]))
        n--;
    *len = n;
    return s;
}

static int
add_href(struct ms *m, struct dynbuf *to, char sep)
{
    size_t n;
    const char *s = trimmed(m, &n);
    char *raw = xstrndup(s, n);
    char *h = dav_href_normalize(raw, m->base_path);
    free(raw);
    if (!h)
        return 0;
    int r = 0;
    if (sep && to->len)
        r = dynbuf_addc(to, sep);
    if (r == 0)
        r = dynbuf_add(to, h, strlen(h) + (sep ? 0 : 1));
    free(h);
    return r;
}

/* Data props: LF back to CRLF (XML parsing normalised the line ends). */
static int
set_data(struct dynbuf *to, const struct dynbuf *text)
{
    dynbuf_reset(to);
    const char *s = text->data ? text->data : "";
    size_t start = 0;
    for (size_t i = 0; i < text->len; i++) {
        if (s[i] != '\n' || (i > 0 && s[i - 1] == '\r'))
            continue;
        if (dynbuf_add(to, s + start, i - start) < 0 || dynbuf_add(to, "\r\n", 2) < 0)
            return -1;
        start = i + 1;
    }
    return dynbuf_add(to, s + start, text->len - start);
}

static int
finish_collect(struct ms *m)
{
    size_t n;
    const char *s;
    int r = 0;
    switch (m->collect) {
    case C_NONE:
        break;
    case C_RHREF:
        r = add_href(m, &m->hrefs, 0);
        if (r == 0 && m->hrefs.len)
            m->nhrefs++;
        break;
    case C_RSTATUS:
        m->rstatus = parse_status(m->text.data ? m->text.data : "");
        break;
    case C_PSSTATUS:
        m->ps_status = parse_status(m->text.data ? m->text.data : "");
        m->ps_has_status = true;
        break;
    case C_PROP:
        if (prop_is_data(m->collect_prop)) {
            r = set_data(&m->val[m->collect_prop], &m->text);
        } else {
            s = trimmed(m, &n);
            dynbuf_reset(&m->val[m->collect_prop]);
            r = dynbuf_add(&m->val[m->collect_prop], s, n);
        }
        break;
    case C_PROPHREF:
        r = add_href(m, &m->val[m->collect_prop], '\n');
        break;
    case C_TOPTOKEN:
        s = trimmed(m, &n);
        free(m->top_token);
        m->top_token = n ? xstrndup(s, n) : NULL;
        break;
    case C_RESPDESC:
        s = trimmed(m, &n);
        dynbuf_reset(&m->desc);
        r = dynbuf_add(&m->desc, s, n);
        break;
    }
    m->collect = C_NONE;
    dynbuf_reset(&m->text);
    if (r < 0)
        sync_error_set(m->err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_FOLDER, SYNC_RETRY_LATER,
                       "a value in the server's answer is too large");
    return r;
}

static void
start_collect(struct ms *m, enum collect what, int depth, int prop)
{
    m->collect = what;
    m->collect_depth = depth;
    m->collect_prop = prop;
    dynbuf_reset(&m->text);
}

static int
emit_response(struct ms *m)
{
    if (m->nhrefs == 0)
        return 0; /* nothing names it: nothing to report */
    struct dav_response resp;
    memset(&resp, 0, sizeof resp);
    resp.status = m->rstatus;
    resp.resourcetype = m->rt;
    resp.comps = m->comps;
    for (int p = 0; p < DAV_PROP_COUNT; p++) {
        resp.prop[p].status = m->have[p] ? m->pstatus[p] : 0;
        resp.prop[p].text = m->val[p].len ? m->val[p].data : NULL;
        resp.prop[p].len = m->val[p].len;
    }
    resp.error = m->errname[0] ? m->errname : NULL;
    resp.description = m->desc.len ? m->desc.data : NULL;
    /* several hrefs share one status (RFC 4918 section 14.24); with
     * propstats only the first href means anything */
    size_t count = m->rstatus ? m->nhrefs : 1;
    const char *h = m->hrefs.data;
    for (size_t i = 0; i < count; i++) {
        resp.href = h;
        if (m->fn(m->ctx, &resp, m->err) < 0)
            return -1;
        h += strlen(h) + 1;
    }
    return 0;
}

static int
ms_start(struct ms *m, xmlTextReaderPtr r, int d, enum tok t)
{
    enum tok parent = d >= 1 && d - 1 < MAX_DEPTH ? m->stack[d - 1] : T_OTHER;
    enum tok grand = d >= 2 && d - 2 < MAX_DEPTH ? m->stack[d - 2] : T_OTHER;
    if (d == 0) {
        if (t != T_MULTISTATUS) {
            sync_error_set(m->err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_FOLDER, SYNC_RETRY_LATER,
                           "the server's answer is not a DAV multistatus (root <%s>)",
                           (const char *)xmlTextReaderConstLocalName(r));
            return -1;
        }
        return 0;
    }
    if (m->collect != C_NONE)
        return 0; /* markup inside a value: its text is part of the value */
    if (d == 1 && t == T_RESPONSE) {
        response_reset(m);
    } else if (d == 1 && t == T_SYNC_TOKEN) {
        start_collect(m, C_TOPTOKEN, d, -1);
    } else if (d == 2 && parent == T_RESPONSE) {
        if (t == T_HREF)
            start_collect(m, C_RHREF, d, -1);
        else if (t == T_STATUS)
            start_collect(m, C_RSTATUS, d, -1);
        else if (t == T_RESPDESC)
            start_collect(m, C_RESPDESC, d, -1);
        else if (t == T_PROPSTAT) {
            m->ps_mask = 0;
            m->ps_status = 0;
            m->ps_has_status = false;
        }
    } else if (d == 3 && parent == T_PROPSTAT && t == T_STATUS) {
        start_collect(m, C_PSSTATUS, d, -1);
    } else if (d == 3 && parent == T_ERROR && grand == T_RESPONSE) {
        if (!m->errname[0])
            snprintf(m->errname, sizeof m->errname, "%s",
                     (const char *)xmlTextReaderConstLocalName(r));
    } else if (d == 4 && parent == T_PROP && grand == T_PROPSTAT) {
        int p = tok_prop(t);
        if (p < 0)
            return 0;
        m->ps_mask |= 1u << p;
        m->have[p] = true;
        dynbuf_reset(&m->val[p]);
        if (p == DAV_PROP_RESOURCETYPE)
            m->rt = 0;
        else if (p == DAV_PROP_SUPPORTED_COMPS)
            m->comps = 0;
        else if (!prop_is_href(p))
            start_collect(m, C_PROP, d, p);
    } else if (d == 5 && grand == T_PROP) {
        int p = tok_prop(parent);
        if (p >= 0 && prop_is_href(p) && t == T_HREF) {
            start_collect(m, C_PROPHREF, d, p);
        } else if (p == DAV_PROP_RESOURCETYPE) {
            if (t == T_COLLECTION)
                m->rt |= DAV_RT_COLLECTION;
            else if (t == T_CALENDAR)
                m->rt |= DAV_RT_CALENDAR;
            else if (t == T_ADDRESSBOOK)
                m->rt |= DAV_RT_ADDRESSBOOK;
            else if (t == T_PRINCIPAL)
                m->rt |= DAV_RT_PRINCIPAL;
            else if (t == T_SINBOX)
                m->rt |= DAV_RT_SCHEDULE_INBOX;
            else if (t == T_SOUTBOX)
                m->rt |= DAV_RT_SCHEDULE_OUTBOX;
        } else if (p == DAV_PROP_SUPPORTED_COMPS && t == T_COMP) {
            xmlChar *name = xmlTextReaderGetAttribute(r, (const xmlChar *)"name");
            if (name) {
                const char *nm = (const char *)name;
                if (strcasecmp(nm, "VEVENT") == 0)
                    m->comps |= DAV_COMP_VEVENT;
                else if (strcasecmp(nm, "VTODO") == 0)
                    m->comps |= DAV_COMP_VTODO;
                else if (strcasecmp(nm, "VJOURNAL") == 0)
                    m->comps |= DAV_COMP_VJOURNAL;
                else
                    m->comps |= DAV_COMP_OTHER;
                xmlFree(name);
            }
        }
    }
    return 0;
}

static int
ms_end(struct ms *m, int d)
{
    if (m->collect != C_NONE) {
        if (d != m->collect_depth)
            return 0;
        return finish_collect(m);
    }
    enum tok t = d < MAX_DEPTH ? m->stack[d] : T_OTHER;
    if (d == 2 && t == T_PROPSTAT) {
        for (int p = 0; p < DAV_PROP_COUNT; p++)
            if (m->ps_mask & (1u << p))
                m->pstatus[p] = m->ps_has_status ? m->ps_status : 200;
    } else if (d == 1 && t == T_RESPONSE) {
        return emit_response(m);
    }
    return 0;
}

int
dav_multistatus_parse(const char *body, size_t len, const char *base_path,
                      dav_response_fn fn, void *ctx, char **sync_token,
                      struct sync_error *err)
{
    if (sync_token)
        *sync_token = NULL;
    if (len > DAV_XML_MAX) {
        sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_FOLDER, SYNC_RETRY_LATER,
                       "the server's answer is larger than %u MiB: refused",
                       DAV_XML_MAX >> 20);
        return -1;
    }
    char xmlerr[256] = "";
    xmlTextReaderPtr r = open_reader(body, len, xmlerr);
    if (!r) {
        sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_FOLDER, SYNC_RETRY_LATER,
                       "the server's answer cannot be parsed");
        return -1;
    }
    struct ms m;
    ms_init(&m);
    m.base_path = base_path;
    m.fn = fn;
    m.ctx = ctx;
    m.err = err;
    int rc = 0, ret;
    bool root_seen = false;
    while ((ret = xmlTextReaderRead(r)) == 1) {
        int type = xmlTextReaderNodeType(r);
        int d = xmlTextReaderDepth(r);
        if (type == XML_READER_TYPE_DOCUMENT_TYPE ||
            type == XML_READER_TYPE_ENTITY_REFERENCE || type == XML_READER_TYPE_ENTITY) {
            sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_FOLDER, SYNC_RETRY_LATER,
                           "the server's answer holds a DTD or entities: refused");
            rc = -1;
            break;
        }
        if (type == XML_READER_TYPE_ELEMENT) {
            enum tok t = classify(r);
            if (d < MAX_DEPTH)
                m.stack[d] = t;
            if (d == 0)
                root_seen = true;
            if (ms_start(&m, r, d, t) < 0) {
                rc = -1;
                break;
            }
            if (xmlTextReaderIsEmptyElement(r) && ms_end(&m, d) < 0) {
                rc = -1;
                break;
            }
        } else if (type == XML_READER_TYPE_END_ELEMENT) {
            if (ms_end(&m, d) < 0) {
                rc = -1;
                break;
            }
        } else if (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA ||
                   type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE ||
                   type == XML_READER_TYPE_WHITESPACE) {
            if (m.collect == C_NONE)
                continue;
            const char *v = (const char *)xmlTextReaderConstValue(r);
            if (v && dynbuf_adds(&m.text, v) < 0) {
                sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_FOLDER,
                               SYNC_RETRY_LATER,
                               "a value in the server's answer is too large");
                rc = -1;
                break;
            }
        }
    }
    if (rc == 0 && (ret < 0 || !root_seen)) {
        sync_error_set(err, SYNC_ERR_PROTOCOL, SYNC_SCOPE_FOLDER, SYNC_RETRY_LATER,
                       "the server's answer is not well-formed XML (%s)",
                       xmlerr[0] ? xmlerr : "empty");
        rc = -1;
    }
    if (rc == 0 && sync_token) {
        *sync_token = m.top_token;
        m.top_token = NULL;
    }
    xmlFreeTextReader(r);
    ms_free(&m);
    return rc;
}

int
dav_error_parse(const char *body, size_t len, char *name, size_t name_size, char *ns,
                size_t ns_size)
{
    if (name && name_size)
        name[0] = '\0';
    if (ns && ns_size)
        ns[0] = '\0';
    char xmlerr[256] = "";
    xmlTextReaderPtr r = open_reader(body, len, xmlerr);
    if (!r)
        return 0;
    int found = 0, ret;
    while ((ret = xmlTextReaderRead(r)) == 1) {
        int type = xmlTextReaderNodeType(r);
        if (type == XML_READER_TYPE_DOCUMENT_TYPE ||
            type == XML_READER_TYPE_ENTITY_REFERENCE) {
            found = 0;
            break;
        }
        if (type != XML_READER_TYPE_ELEMENT)
            continue;
        int d = xmlTextReaderDepth(r);
        const char *nsu = (const char *)xmlTextReaderConstNamespaceUri(r);
        const char *local = (const char *)xmlTextReaderConstLocalName(r);
        if (d == 0) {
            if (!nsu || strcmp(nsu, DAV_NS_DAV) != 0 || strcmp(local, "error") != 0)
                break;
            found = 1;
        } else if (d == 1) {
            if (name && name_size)
                snprintf(name, name_size, "%s", local);
            if (ns && ns_size)
                snprintf(ns, ns_size, "%s", nsu ? nsu : "");
            break;
        }
    }
    if (ret < 0)
        found = 0;
    xmlFreeTextReader(r);
    return found;
}

/* --- request bodies ------------------------------------------------------------ */

#define XML_HEAD "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"

/* Escaped text; -1 for what XML 1.0 cannot hold. */
static int
add_text(struct dynbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (!utf8_valid(s, n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
            return -1;
        switch (c) {
        case '&':
            dynbuf_adds(b, "&amp;");
            break;
        case '<':
            dynbuf_adds(b, "&lt;");
            break;
        case '>':
            dynbuf_adds(b, "&gt;");
            break;
        case '"':
            dynbuf_adds(b, "&quot;");
            break;
        case '\'':
            dynbuf_adds(b, "&apos;");
            break;
        case '\r':
            dynbuf_adds(b, "&#13;");
            break;
        default:
            dynbuf_addc(b, (char)c);
            break;
        }
    }
    return 0;
}

static char *
finish(struct dynbuf *b, int ok)
{
    if (ok < 0) {
        dynbuf_free(b);
        return NULL;
    }
    return dynbuf_take(b);
}

char *
dav_xml_propfind(unsigned mask)
{
    static const char *const names[DAV_PROP_COUNT] = {
        [DAV_PROP_GETETAG] = "D:getetag",
        [DAV_PROP_CALENDAR_DATA] = "C:calendar-data",
        [DAV_PROP_ADDRESS_DATA] = "A:address-data",
        [DAV_PROP_DISPLAYNAME] = "D:displayname",
        [DAV_PROP_RESOURCETYPE] = "D:resourcetype",
        [DAV_PROP_SUPPORTED_COMPS] = "C:supported-calendar-component-set",
        [DAV_PROP_GETCTAG] = "CS:getctag",
        [DAV_PROP_SYNC_TOKEN] = "D:sync-token",
        [DAV_PROP_CURRENT_USER_PRINCIPAL] = "D:current-user-principal",
        [DAV_PROP_CALENDAR_HOME_SET] = "C:calendar-home-set",
        [DAV_PROP_ADDRESSBOOK_HOME_SET] = "A:addressbook-home-set",
        [DAV_PROP_SCHEDULE_DEFAULT_CALENDAR] = "C:schedule-default-calendar-URL",
        [DAV_PROP_SCHEDULE_INBOX] = "C:schedule-inbox-URL",
        [DAV_PROP_GETCONTENTTYPE] = "D:getcontenttype",
    };
    struct dynbuf b;
    dynbuf_init(&b, DAV_XML_MAX);
    dynbuf_adds(&b, XML_HEAD "<D:propfind xmlns:D=\"DAV:\" xmlns:C=\"" DAV_NS_CALDAV
                             "\" xmlns:A=\"" DAV_NS_CARDDAV "\" xmlns:CS=\"" DAV_NS_CS
                             "\"><D:prop>");
    for (int p = 0; p < DAV_PROP_COUNT; p++)
        if (mask & DAV_PROP_BIT(p))
            dynbuf_printf(&b, "<%s/>", names[p]);
    dynbuf_adds(&b, "</D:prop></D:propfind>\n");
    return dynbuf_take(&b);
}

char *
dav_xml_sync_collection(const char *token)
{
    struct dynbuf b;
    dynbuf_init(&b, DAV_XML_MAX);
    dynbuf_adds(&b, XML_HEAD "<D:sync-collection xmlns:D=\"DAV:\">");
    int ok = 0;
    if (token && *token) {
        dynbuf_adds(&b, "<D:sync-token>");
        ok = add_text(&b, token);
        dynbuf_adds(&b, "</D:sync-token>");
    } else {
        dynbuf_adds(&b, "<D:sync-token/>");
    }
    dynbuf_adds(&b, "<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop>"
                    "</D:sync-collection>\n");
    return finish(&b, ok);
}

char *
dav_xml_multiget(bool addressbook, const char *const *hrefs, size_t n)
{
    struct dynbuf b;
    dynbuf_init(&b, DAV_XML_MAX);
    if (addressbook)
        dynbuf_adds(&b, XML_HEAD
                    "<A:addressbook-multiget xmlns:D=\"DAV:\" xmlns:A=\"" DAV_NS_CARDDAV
                    "\"><D:prop><D:getetag/><A:address-data/></D:prop>");
    else
        dynbuf_adds(&b, XML_HEAD
                    "<C:calendar-multiget xmlns:D=\"DAV:\" xmlns:C=\"" DAV_NS_CALDAV
                    "\"><D:prop><D:getetag/><C:calendar-data/></D:prop>");
    int ok = 0;
    for (size_t i = 0; i < n && ok == 0; i++) {
        char *enc = dav_href_encode(hrefs[i]);
        dynbuf_adds(&b, "<D:href>");
        ok = add_text(&b, enc);
        ok |= dynbuf_adds(&b, "</D:href>");
        free(enc);
    }
    dynbuf_adds(&b,
                addressbook ? "</A:addressbook-multiget>\n" : "</C:calendar-multiget>\n");
    return finish(&b, ok);
}

char *
dav_xml_query_all(bool addressbook)
{
    if (addressbook)
        return xstrdup(XML_HEAD
                       "<A:addressbook-query xmlns:D=\"DAV:\" xmlns:A=\"" DAV_NS_CARDDAV
                       "\"><D:prop><D:getetag/><A:address-data/></D:prop><A:filter/>"
                       "</A:addressbook-query>\n");
    return xstrdup(XML_HEAD
                   "<C:calendar-query xmlns:D=\"DAV:\" xmlns:C=\"" DAV_NS_CALDAV
                   "\"><D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter>"
                   "<C:comp-filter name=\"VCALENDAR\"/></C:filter></C:calendar-query>\n");
}

char *
dav_xml_mkcalendar(const char *displayname, unsigned comps)
{
    struct dynbuf b;
    dynbuf_init(&b, DAV_XML_MAX);
    dynbuf_adds(&b, XML_HEAD "<C:mkcalendar xmlns:D=\"DAV:\" xmlns:C=\"" DAV_NS_CALDAV
                             "\"><D:set><D:prop>");
    int ok = 0;
    if (displayname) {
        dynbuf_adds(&b, "<D:displayname>");
        ok = add_text(&b, displayname);
        dynbuf_adds(&b, "</D:displayname>");
    }
    if (comps & (DAV_COMP_VEVENT | DAV_COMP_VTODO | DAV_COMP_VJOURNAL)) {
        dynbuf_adds(&b, "<C:supported-calendar-component-set>");
        if (comps & DAV_COMP_VEVENT)
            dynbuf_adds(&b, "<C:comp name=\"VEVENT\"/>");
        if (comps & DAV_COMP_VTODO)
            dynbuf_adds(&b, "<C:comp name=\"VTODO\"/>");
        if (comps & DAV_COMP_VJOURNAL)
            dynbuf_adds(&b, "<C:comp name=\"VJOURNAL\"/>");
        dynbuf_adds(&b, "</C:supported-calendar-component-set>");
    }
    dynbuf_adds(&b, "</D:prop></D:set></C:mkcalendar>\n");
    return finish(&b, ok);
}

char *
dav_xml_mkaddressbook(const char *displayname)
{
    struct dynbuf b;
    dynbuf_init(&b, DAV_XML_MAX);
    dynbuf_adds(&b, XML_HEAD
                "<D:mkcol xmlns:D=\"DAV:\" xmlns:A=\"" DAV_NS_CARDDAV
                "\"><D:set><D:prop><D:resourcetype><D:collection/><A:addressbook/>"
                "</D:resourcetype>");
    int ok = 0;
    if (displayname) {
        dynbuf_adds(&b, "<D:displayname>");
        ok = add_text(&b, displayname);
        dynbuf_adds(&b, "</D:displayname>");
    }
    dynbuf_adds(&b, "</D:prop></D:set></D:mkcol>\n");
    return finish(&b, ok);
}

char *
dav_xml_set_displayname(const char *displayname)
{
    struct dynbuf b;
    dynbuf_init(&b, DAV_XML_MAX);
    dynbuf_adds(&b, XML_HEAD "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop>"
                             "<D:displayname>");
    int ok = add_text(&b, displayname);
    dynbuf_adds(&b, "</D:displayname></D:prop></D:set></D:propertyupdate>\n");
    return finish(&b, ok);
}
