/* ical: checks the iCalendar text of one CalDAV item (structure by our own
 * line scanner, meaning by libical) and adds missing UIDs in place. */
#include "formats/ical.h"
#include "common/dynbuf.h"
#include "common/utf8.h"
#include "common/util.h"

#include <libical/ical.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* VCALENDAR > VEVENT > VALARM is three; VTIMEZONE > STANDARD two. Anything
 * much deeper is not a calendar. */
#define ICAL_DEPTH_MAX 16
/* How much of a UID or of libical's message an error text quotes. */
#define ICAL_ERR_QUOTE 64
#define ICAL_ERR_LIBICAL 160
/* RFC 5545 3.1: lines SHOULD NOT be longer than 75 octets. */
#define ICAL_FOLD 75

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Debian builds libical with ICAL_ERRORS_ARE_FATAL off, but another build
 * may not: with it on, a parse error calls assert() or abort(). Every error
 * is also made non-fatal by itself, so nothing depends on that default.
 * (icalparser_parse_string saves and restores the MALFORMEDDATA state around
 * each parse, unlocked; with errors non-fatal, whatever value it restores is
 * harmless.) Non-fatal errors print nothing: libical only records them in
 * icalerrno and in X-LIC-ERROR properties. */
static void
init_libical(void)
{
    icalerror_set_errors_are_fatal(0);
    for (int e = ICAL_BADARG_ERROR; e <= ICAL_UNKNOWN_ERROR; e++)
        icalerror_set_error_state((icalerrorenum)e, ICAL_ERROR_NONFATAL);
}

void
ical_init(void)
{
    pthread_once(&init_once, init_libical);
}

const char *
ical_kind_name(enum ical_kind kind)
{
    switch (kind) {
    case ICAL_ITEM_EVENT:
        return "VEVENT";
    case ICAL_ITEM_TODO:
        return "VTODO";
    case ICAL_ITEM_JOURNAL:
        return "VJOURNAL";
    case ICAL_ITEM_NONE:
        break;
    }
    return "";
}

static enum ical_kind
kind_from_name(const char *name)
{
    if (util_ascii_eq(name, strlen(name), "VEVENT"))
        return ICAL_ITEM_EVENT;
    if (util_ascii_eq(name, strlen(name), "VTODO"))
        return ICAL_ITEM_TODO;
    if (util_ascii_eq(name, strlen(name), "VJOURNAL"))
        return ICAL_ITEM_JOURNAL;
    return ICAL_ITEM_NONE;
}

/* ---- content lines ---- */

static bool
is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 5545 names are letters, digits and '-'; '_' is not in the grammar,
 * but some writers use it in X- names and libical reads them. */
static bool
is_name_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* One past the '\n' that ends the physical line at p, or len. */
static size_t
phys_end(const char *d, size_t len, size_t p)
{
    const char *nl = memchr(d + p, '\n', len - p);
    return nl ? (size_t)(nl - d) + 1 : len;
}

static bool
is_blank(const char *d, size_t p, size_t e)
{
    for (; p < e; p++)
        if (!is_wsp(d[p]) && d[p] != '\r' && d[p] != '\n')
            return false;
    return true;
}

/* The next character of a logical line d[*i..e), folds skipped; its offset
 * in *at. -1 at the end. Inside a logical line every '\n' is a fold. */
static int
lc_get(const char *d, size_t e, size_t *i, size_t *at)
{
    size_t p = *i;
    for (;;) {
        if (p < e && d[p] == '\r' && p + 1 < e && d[p + 1] == '\n')
            p += 2;
        else if (p < e && d[p] == '\n')
            p += 1;
        else
            break;
        if (p < e && is_wsp(d[p]))
            p++;
    }
    if (p >= e) {
        *i = p;
        return -1;
    }
    *at = p;
    *i = p + 1;
    return (unsigned char)d[p];
}

void
ical_cursor_init(struct ical_cursor *c, const char *data, size_t len)
{
    c->data = data;
    c->len = data ? len : 0;
    c->pos = 0;
    c->lineno = 1;
    if (c->len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        c->pos = 3;
}

int
ical_cursor_next(struct ical_cursor *c, struct ical_line *l)
{
    const char *d = c->data;
    size_t len = c->len;
    memset(l, 0, sizeof(*l));
    while (c->pos < len) {
        size_t e = phys_end(d, len, c->pos);
        if (!is_blank(d, c->pos, e))
            break;
        c->pos = e;
        c->lineno++;
    }
    if (c->pos >= len)
        return 0;

    size_t start = c->pos;
    unsigned lines = 1;
    size_t end = phys_end(d, len, start);
    while (end < len && is_wsp(d[end])) {
        end = phys_end(d, len, end);
        lines++;
    }
    size_t ve = end;
    if (ve > start && d[ve - 1] == '\n') {
        ve--;
        if (ve > start && d[ve - 1] == '\r') {
            ve--;
            l->crlf = true;
        }
    }
    l->start = start;
    l->end = end;
    l->value_end = ve;
    l->lineno = c->lineno;
    if (is_wsp(d[start]))
        return -1; /* a continuation with nothing to continue */

    size_t i = start, at = start, n = 0;
    int ch;
    while ((ch = lc_get(d, ve, &i, &at)) >= 0 && is_name_char(ch)) {
        if (n < ICAL_NAME_MAX)
            l->name[n] = (char)ch;
        n++;
    }
    l->name[n < ICAL_NAME_MAX ? n : ICAL_NAME_MAX] = '\0';
    l->name_len = n;
    if (n == 0 || (ch != ';' && ch != ':'))
        return -1;
    bool quoted = false;
    while (ch != ':' || quoted) {
        if (ch == '"')
            quoted = !quoted;
        ch = lc_get(d, ve, &i, &at);
        if (ch < 0)
            return -1;
    }
    l->colon = at;
    c->pos = end;
    c->lineno += lines;
    return 1;
}

bool
ical_line_is(const struct ical_line *l, const char *name)
{
    return l->name_len <= ICAL_NAME_MAX && util_ascii_eq(l->name, l->name_len, name);
}

/* Append d[p..e) with its folds removed. */
static int
unfold_range(const char *d, size_t p, size_t e, struct dynbuf *out)
{
    while (p < e) {
        const char *nl = memchr(d + p, '\n', e - p);
        size_t seg = nl ? (size_t)(nl - d) : e;
        size_t cut = seg;
        if (nl && cut > p && d[cut - 1] == '\r')
            cut--;
        if (dynbuf_add(out, d + p, cut - p) < 0)
            return -1;
        if (!nl)
            break;
        p = seg + 1;
        if (p < e && is_wsp(d[p]))
            p++;
    }
    return 0;
}

int
ical_line_value(const struct ical_cursor *c, const struct ical_line *l,
                struct dynbuf *out)
{
    return unfold_range(c->data, l->colon + 1, l->value_end, out);
}

int
ical_line_unfold(const struct ical_cursor *c, const struct ical_line *l,
                 struct dynbuf *out)
{
    return unfold_range(c->data, l->start, l->value_end, out);
}

int
ical_fold(struct dynbuf *out, const char *line, size_t len, const char *eol)
{
    size_t room = ICAL_FOLD, p = 0;
    do {
        size_t n = len - p;
        if (n > room) {
            n = room;
            /* never split a UTF-8 sequence (at most 3 continuation bytes) */
            while (n > room - 3 && ((unsigned char)line[p + n] & 0xC0) == 0x80)
                n--;
            if (((unsigned char)line[p + n] & 0xC0) == 0x80)
                n = room; /* not UTF-8 anyway */
        }
        if (dynbuf_add(out, line + p, n) < 0 || dynbuf_adds(out, eol) < 0)
            return -1;
        p += n;
        if (p < len && dynbuf_addc(out, ' ') < 0)
            return -1;
        room = ICAL_FOLD - 1;
    } while (p < len);
    return 0;
}

/* ---- errors ---- */

static void set_err(char **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
set_err(char **err, const char *fmt, ...)
{
    if (!err)
        return;
    struct dynbuf b;
    va_list ap;
    dynbuf_init(&b, 4096);
    va_start(ap, fmt);
    dynbuf_vprintf(&b, fmt, ap);
    va_end(ap);
    free(*err);
    *err = dynbuf_take(&b);
}

/* Text from the file, made safe to quote in an error: at most `max` bytes,
 * control characters and invalid UTF-8 as '?', "..." when cut. */
static char *
quote_text(const char *s, size_t max)
{
    struct dynbuf b;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    dynbuf_init(&b, max + 8);
    while (i < n) {
        uint32_t cp;
        size_t l = utf8_next(p + i, n - i, &cp);
        if (b.len + (l ? l : 1) > max) {
            dynbuf_adds(&b, "...");
            break;
        }
        if (!l || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
            dynbuf_addc(&b, '?');
            i += l ? l : 1;
            continue;
        }
        dynbuf_add(&b, s + i, l);
        i += l;
    }
    return dynbuf_take(&b);
}

/* ---- structure ---- */

bool
ical_line_component(const struct ical_cursor *c, const struct ical_line *l,
                    char name[ICAL_NAME_MAX + 1])
{
    struct dynbuf v;
    bool ok = false;
    dynbuf_init(&v, l->end - l->start);
    if (ical_line_value(c, l, &v) == 0) {
        while (v.len > 0 && is_wsp(v.data[v.len - 1]))
            v.len--;
        ok = v.len > 0 && v.len <= ICAL_NAME_MAX;
        for (size_t i = 0; ok && i < v.len; i++)
            ok = is_name_char((unsigned char)v.data[i]);
        if (ok) {
            memcpy(name, v.data, v.len);
            name[v.len] = '\0';
        }
    }
    dynbuf_free(&v);
    return ok;
}

static bool
name_is(const char *name, const char *want)
{
    return util_ascii_eq(name, strlen(name), want);
}

/* libical 3.0 prints to stderr, whatever its error settings, when it meets
 * a property whose value type it cannot read from text: TASK-MODE and
 * X-LIC-CLASS (found by fuzzing; every property kind was then tried). In the
 * copy libical reads, their names become unknown X- names ("X-ZK-MODE",
 * "X-ZIC-CLASS"): mailfs never reads them, and the file keeps its bytes.
 * false when the name is folded so early that it cannot be changed. */
static bool
quiet_line(char *text, const struct ical_line *l)
{
    if (!ical_line_is(l, "TASK-MODE") && !ical_line_is(l, "X-LIC-CLASS"))
        return true;
    for (size_t i = 0; i < 3; i++)
        if (!is_name_char((unsigned char)text[l->start + i]))
            return false;
    memcpy(text + l->start, "X-Z", 3);
    return true;
}

/* The structure libical is too lenient to check: one VCALENDAR, BEGIN and
 * END matched, only items and VTIMEZONEs at the top, every line a content
 * line. Quiets the text for libical as it goes (see quiet_line). */
static int
check_structure(char *data, size_t len, char **err)
{
    struct ical_cursor c;
    struct ical_line l;
    char stack[ICAL_DEPTH_MAX][ICAL_NAME_MAX + 1];
    unsigned begun[ICAL_DEPTH_MAX];
    unsigned depth = 0, items = 0, lines = 0;
    bool first = true, done = false;
    char name[ICAL_NAME_MAX + 1];
    int rc;

    ical_cursor_init(&c, data, len);
    while ((rc = ical_cursor_next(&c, &l)) > 0) {
        bool begin = ical_line_is(&l, "BEGIN"), end = ical_line_is(&l, "END");
        if (++lines > ICAL_LINES_MAX) {
            set_err(err, "more than %d lines: too big for one item", ICAL_LINES_MAX);
            return -1;
        }
        if (!quiet_line(data, &l)) {
            set_err(err, "line %u: %s folded inside its name", l.lineno, l.name);
            return -1;
        }
        if ((begin || end) && !ical_line_component(&c, &l, name)) {
            set_err(err, "line %u: %s without a valid component name", l.lineno,
                    begin ? "BEGIN" : "END");
            return -1;
        }
        if (first) {
            if (!begin || !name_is(name, "VCALENDAR")) {
                set_err(err,
                        "not iCalendar: the text does not begin with BEGIN:VCALENDAR");
                return -1;
            }
            first = false;
        } else if (done) {
            if (begin && name_is(name, "VCALENDAR"))
                set_err(err, "more than one VCALENDAR (line %u): a file holds one item",
                        l.lineno);
            else
                set_err(err, "line %u: text after END:VCALENDAR", l.lineno);
            return -1;
        }
        if (begin) {
            if (depth == ICAL_DEPTH_MAX) {
                set_err(err, "line %u: components nested more than %d deep", l.lineno,
                        ICAL_DEPTH_MAX);
                return -1;
            }
            enum ical_kind k = kind_from_name(name);
            bool tz = name_is(name, "VTIMEZONE");
            if (depth == 1 && k == ICAL_ITEM_NONE && !tz) {
                set_err(err,
                        "line %u: a %s is not an event, task or note (a VCALENDAR here "
                        "holds VEVENT, VTODO or VJOURNAL, and VTIMEZONE)",
                        l.lineno, name);
                return -1;
            }
            if (depth > 1 && (k != ICAL_ITEM_NONE || tz || name_is(name, "VCALENDAR"))) {
                set_err(err, "line %u: BEGIN:%s inside %s", l.lineno, name,
                        stack[depth - 1]);
                return -1;
            }
            if (depth == 1 && k != ICAL_ITEM_NONE)
                items++;
            memcpy(stack[depth], name, sizeof(name));
            begun[depth] = l.lineno;
            depth++;
        } else if (end) {
            if (!util_ascii_eq(name, strlen(name), stack[depth - 1])) {
                set_err(err, "line %u: END:%s does not close BEGIN:%s of line %u",
                        l.lineno, name, stack[depth - 1], begun[depth - 1]);
                return -1;
            }
            if (--depth == 0)
                done = true;
        }
    }
    if (rc < 0 && first) {
        set_err(err, "not iCalendar: the text does not begin with BEGIN:VCALENDAR");
        return -1;
    }
    if (rc < 0) {
        set_err(err, "line %u is not an iCalendar content line (NAME:VALUE)", l.lineno);
        return -1;
    }
    if (first) {
        set_err(err, "empty file");
        return -1;
    }
    if (depth > 0) {
        set_err(err, "truncated: BEGIN:%s of line %u has no END", stack[depth - 1],
                begun[depth - 1]);
        return -1;
    }
    if (items == 0) {
        set_err(err, "no VEVENT, VTODO or VJOURNAL in the VCALENDAR");
        return -1;
    }
    return 0;
}

/* ---- meaning, by libical ---- */

static int64_t
local_time(int year, int mon, int day, int hour, int min, int sec)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

/* Zones from items' VTIMEZONEs, kept for the life of the process: libical
 * expands a zone's rules year by year from 1970 the first time it converts a
 * time with it, which costs about 0.7 ms, and thousands of items carry the
 * same VTIMEZONE (measured: 83% of a 2,000-event sync went there). The key
 * is the VTIMEZONE's whole text, so a zone is reused only when its
 * definition is the same. The lock covers the conversions too: a zone
 * expands itself lazily. */
#define ZONE_CACHE 32

static struct zone_entry {
    uint64_t hash;
    char *text;           /* owned: the VTIMEZONE as libical writes it */
    icaltimezone *zone;   /* owned */
    uint64_t used;
} zone_cache[ZONE_CACHE];
static uint64_t zone_clock;
static pthread_mutex_t zone_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t
fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static icalcomponent *
find_vtimezone(icalcomponent *cal, const char *tzid)
{
    for (icalcomponent *z = icalcomponent_get_first_component(cal, ICAL_VTIMEZONE_COMPONENT); z;
         z = icalcomponent_get_next_component(cal, ICAL_VTIMEZONE_COMPONENT)) {
        icalproperty *p = icalcomponent_get_first_property(z, ICAL_TZID_PROPERTY);
        const char *id = p ? icalproperty_get_tzid(p) : NULL;
        if (id && strcmp(id, tzid) == 0)
            return z;
    }
    return NULL;
}

/* t in the zone the item's own VTIMEZONE vtz defines, as UTC seconds. */
static int64_t
time_in_vtimezone(icalcomponent *vtz, struct icaltimetype t)
{
    char *text = icalcomponent_as_ical_string_r(vtz);
    if (!text)
        return ICAL_NO_TIME;
    uint64_t h = fnv1a(text);
    pthread_mutex_lock(&zone_lock);
    struct zone_entry *e = NULL, *oldest = &zone_cache[0];
    for (size_t i = 0; i < ZONE_CACHE && !e; i++) {
        if (zone_cache[i].zone && zone_cache[i].hash == h && strcmp(zone_cache[i].text, text) == 0)
            e = &zone_cache[i];
        else if (zone_cache[i].used < oldest->used)
            oldest = &zone_cache[i];
    }
    if (!e) {
        icaltimezone *z = icaltimezone_new();
        if (z && icaltimezone_set_component(z, icalcomponent_new_clone(vtz))) {
            if (oldest->zone)
                icaltimezone_free(oldest->zone, 1);
            free(oldest->text);
            oldest->zone = z;
            oldest->text = text;
            oldest->hash = h;
            text = NULL;
            e = oldest;
        } else if (z) {
            icaltimezone_free(z, 1);
        }
    }
    int64_t r = ICAL_NO_TIME;
    if (e) {
        e->used = ++zone_clock;
        r = (int64_t)icaltime_as_timet_with_zone(t, e->zone);
    }
    pthread_mutex_unlock(&zone_lock);
    free(text);
    return r;
}

/* The time of a DATE or DATE-TIME property as UTC seconds (see ical.h for
 * how zones are resolved); ICAL_NO_TIME when it has no such value. */
static int64_t
prop_time(icalcomponent *cal, icalproperty *p, bool *is_date)
{
    icalvalue *v = p ? icalproperty_get_value(p) : NULL;
    struct icaltimetype t;
    if (is_date)
        *is_date = false;
    if (!v)
        return ICAL_NO_TIME;
    switch (icalvalue_isa(v)) {
    case ICAL_DATE_VALUE:
        t = icalvalue_get_date(v);
        break;
    case ICAL_DATETIME_VALUE:
        t = icalvalue_get_datetime(v);
        break;
    default:
        return ICAL_NO_TIME;
    }
    if (icaltime_is_null_time(t))
        return ICAL_NO_TIME;
    if (t.is_date) {
        if (is_date)
            *is_date = true;
        return local_time(t.year, t.month, t.day, 0, 0, 0);
    }
    if (icaltime_is_utc(t))
        return (int64_t)icaltime_as_timet_with_zone(t, icaltimezone_get_utc_timezone());

    icalparameter *tp = icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER);
    const char *tzid = tp ? icalparameter_get_tzid(tp) : NULL;
    icaltimezone *zone = NULL;
    if (tzid && *tzid) {
        icalcomponent *vtz = find_vtimezone(cal, tzid);
        if (vtz) {
            int64_t r = time_in_vtimezone(vtz, t);
            if (r != ICAL_NO_TIME)
                return r;
        }
        zone = icalcomponent_get_timezone(cal, tzid);
        if (!zone)
            zone = icaltimezone_get_builtin_timezone(tzid);
        if (!zone) /* libical's own "/freeassociation.sourceforge.net/..." ids */
            zone = icaltimezone_get_builtin_timezone_from_tzid(tzid);
    }
    if (zone)
        return (int64_t)icaltime_as_timet_with_zone(t, zone);
    return local_time(t.year, t.month, t.day, t.hour, t.minute, t.second);
}

/* libical drops a property whose value it cannot read and leaves an
 * X-LIC-ERROR ("Can't parse as DATE-TIME value in DTSTART property...", "No
 * value for UID property..."). Those on the properties that place and
 * identify an item are refused; the rest only lose their meaning to libical,
 * not their bytes. */
static int
check_lost_props(icalcomponent *k, char **err)
{
    static const char *const vital[] = {" DTSTART property", " DTEND property",
                                        " DUE property", " RECURRENCE-ID property",
                                        " UID property"};
    for (icalproperty *p = icalcomponent_get_first_property(k, ICAL_XLICERROR_PROPERTY);
         p; p = icalcomponent_get_next_property(k, ICAL_XLICERROR_PROPERTY)) {
        const char *msg = icalproperty_get_xlicerror(p);
        if (!msg)
            continue;
        for (size_t i = 0; i < ARRAY_SIZE(vital); i++) {
            if (strstr(msg, vital[i])) {
                char *q = quote_text(msg, ICAL_ERR_LIBICAL);
                set_err(err, "the %s's%.*s cannot be read (libical: %s)",
                        icalcomponent_kind_to_string(icalcomponent_isa(k)),
                        (int)(strlen(vital[i]) - strlen(" property")), vital[i], q);
                free(q);
                return -1;
            }
        }
    }
    return 0;
}

static const char *
first_text(icalcomponent *k, icalproperty_kind kind)
{
    icalproperty *p = icalcomponent_get_first_property(k, kind);
    if (!p)
        return NULL;
    icalvalue *v = icalproperty_get_value(p);
    return v ? icalvalue_get_text(v) : NULL;
}

static int
read_items(icalcomponent *cal, struct ical_info *out, char **err)
{
    icalcomponent *master = NULL, *first = NULL;
    icalcomponent_kind kind = ICAL_NO_COMPONENT;
    unsigned masters = 0;

    for (icalcomponent *k = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT); k;
         k = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT)) {
        icalcomponent_kind kk = icalcomponent_isa(k);
        if (kk == ICAL_VTIMEZONE_COMPONENT)
            continue;
        if (kk != ICAL_VEVENT_COMPONENT && kk != ICAL_VTODO_COMPONENT &&
            kk != ICAL_VJOURNAL_COMPONENT) {
            set_err(err, "a %s is not an event, task or note",
                    icalcomponent_kind_to_string(kk));
            return -1;
        }
        if (kind == ICAL_NO_COMPONENT) {
            kind = kk;
            first = k;
        } else if (kk != kind) {
            set_err(err, "mixed kinds: %s and %s in one file (a file holds one item)",
                    icalcomponent_kind_to_string(kind), icalcomponent_kind_to_string(kk));
            return -1;
        }
        if (check_lost_props(k, err) < 0)
            return -1;

        const char *uid = first_text(k, ICAL_UID_PROPERTY);
        if (!uid || !*uid) {
            out->uid_missing = true;
        } else if (strlen(uid) > ICAL_UID_MAX) {
            set_err(err, "a UID longer than %d bytes", ICAL_UID_MAX);
            return -1;
        } else if (!out->uid) {
            out->uid = xstrdup(uid);
        } else if (strcmp(out->uid, uid) != 0) {
            char *a = quote_text(out->uid, ICAL_ERR_QUOTE),
                 *b = quote_text(uid, ICAL_ERR_QUOTE);
            set_err(err, "two different UIDs, \"%s\" and \"%s\" (a file holds one item)",
                    a, b);
            free(a);
            free(b);
            return -1;
        }
        if (icalcomponent_get_first_property(k, ICAL_RECURRENCEID_PROPERTY)) {
            out->overrides++;
        } else {
            master = k;
            if (++masters > 1) {
                set_err(err,
                        "two %ss without RECURRENCE-ID: a file holds one item (and the "
                        "overrides of its recurrences)",
                        icalcomponent_kind_to_string(kind));
                return -1;
            }
        }
    }
    if (!first) {
        set_err(err, "no VEVENT, VTODO or VJOURNAL in the VCALENDAR");
        return -1;
    }

    icalcomponent *main = master ? master : first;
    out->kind = kind == ICAL_VEVENT_COMPONENT  ? ICAL_ITEM_EVENT
                : kind == ICAL_VTODO_COMPONENT ? ICAL_ITEM_TODO
                                               : ICAL_ITEM_JOURNAL;
    const char *s = first_text(main, ICAL_SUMMARY_PROPERTY);
    if (s)
        out->summary = xstrdup(s);
    if (out->kind == ICAL_ITEM_JOURNAL) {
        s = first_text(main, ICAL_DESCRIPTION_PROPERTY);
        if (s)
            out->description = xstrdup(s);
    }
    out->start =
        prop_time(cal, icalcomponent_get_first_property(main, ICAL_DTSTART_PROPERTY),
                  &out->all_day);
    if (out->kind == ICAL_ITEM_TODO)
        out->due =
            prop_time(cal, icalcomponent_get_first_property(main, ICAL_DUE_PROPERTY),
                      &out->due_all_day);
    icalproperty *m = icalcomponent_get_first_property(main, ICAL_LASTMODIFIED_PROPERTY);
    out->modified = prop_time(cal, m, NULL);
    if (out->modified == ICAL_NO_TIME)
        out->modified = prop_time(
            cal, icalcomponent_get_first_property(main, ICAL_DTSTAMP_PROPERTY), NULL);
    out->recurs =
        master && (icalcomponent_get_first_property(master, ICAL_RRULE_PROPERTY) ||
                   icalcomponent_get_first_property(master, ICAL_RDATE_PROPERTY));
    return 0;
}

static void
info_clear(struct ical_info *out)
{
    memset(out, 0, sizeof(*out));
    out->start = ICAL_NO_TIME;
    out->due = ICAL_NO_TIME;
    out->modified = ICAL_NO_TIME;
}

int
ical_parse(const char *data, size_t len, struct ical_info *out, char **err)
{
    ical_init();
    info_clear(out);
    if (!data || is_blank(data, 0, len)) {
        set_err(err, "empty file");
        return -1;
    }
    if (len > ICAL_SIZE_MAX) {
        set_err(err, "larger than %d MiB", ICAL_SIZE_MAX / (1024 * 1024));
        return -1;
    }
    if (memchr(data, '\0', len)) {
        set_err(err, "not iCalendar: it holds a NUL byte");
        return -1;
    }
    /* libical reads a copy: NUL-terminated, and quieted by check_structure */
    size_t skip = len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    char *text = xstrndup(data + skip, len - skip);
    if (check_structure(text, len - skip, err) < 0) {
        free(text);
        return -1;
    }
    icalcomponent *cal = icalparser_parse_string(text);
    free(text);
    int rc = -1;
    if (!cal || icalcomponent_isa(cal) != ICAL_VCALENDAR_COMPONENT)
        set_err(err, "libical cannot read it as one VCALENDAR");
    else
        rc = read_items(cal, out, err);
    if (cal)
        icalcomponent_free(cal);
    if (rc < 0) {
        ical_info_free(out);
        info_clear(out);
    }
    return rc;
}

void
ical_info_free(struct ical_info *info)
{
    if (!info)
        return;
    free(info->uid);
    free(info->summary);
    free(info->description);
    info->uid = info->summary = info->description = NULL;
}

/* ---- adding UIDs ---- */

bool
ical_uid_ok(const char *uid)
{
    size_t n = uid ? strlen(uid) : 0;
    if (n == 0 || n > ICAL_UID_MAX || !utf8_valid(uid, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)uid[i];
        if (ch < 0x20 || ch == 0x7F)
            return false;
    }
    return true;
}

int
ical_add_lines(struct dynbuf *out, const char *s, const char *eol)
{
    while (*s) {
        const char *nl = strstr(s, "\r\n");
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        if (dynbuf_add(out, s, n) < 0 || (nl && dynbuf_adds(out, eol) < 0))
            return -1;
        s += n + (nl ? 2 : 0);
    }
    return 0;
}

/* The first UID line of an item component, unfolded then folded again
 * with CRLF: the UID other components share, copied whole as it is written
 * (parameters too), so that libical reads the same UID from the copy
 * whatever the line holds. NULL when there is none. */
static char *
uid_line_of(const char *data, size_t len)
{
    struct ical_cursor c;
    struct ical_line l;
    unsigned depth = 0;
    bool in_item = false;
    ical_cursor_init(&c, data, len);
    while (ical_cursor_next(&c, &l) > 0) {
        char name[ICAL_NAME_MAX + 1];
        if (ical_line_is(&l, "BEGIN") && ical_line_component(&c, &l, name)) {
            if (depth == 1)
                in_item = kind_from_name(name) != ICAL_ITEM_NONE;
            depth++;
        } else if (ical_line_is(&l, "END")) {
            depth--;
        } else if (depth == 2 && in_item && ical_line_is(&l, "UID")) {
            struct dynbuf u, out;
            dynbuf_init(&u, len);
            dynbuf_init(&out, SIZE_MAX / 2);
            ical_line_unfold(&c, &l, &u);
            ical_fold(&out, u.data, u.len, "\r\n");
            dynbuf_free(&u);
            return dynbuf_take(&out);
        }
    }
    return NULL;
}

char *
ical_with_uid(const char *data, size_t len, const char *uid, size_t *outlen)
{
    struct ical_info info;
    if (!ical_uid_ok(uid) || ical_parse(data, len, &info, NULL) < 0)
        return NULL;

    struct dynbuf out;
    dynbuf_init(&out, SIZE_MAX / 2);
    if (!info.uid_missing) {
        dynbuf_add(&out, data, len);
        goto done;
    }

    struct ical_cursor c;
    struct ical_line l;
    char *line = info.uid ? uid_line_of(data, len) : NULL;
    if (!line) {
        /* libical writes the line: escapes and folds as RFC 5545 says */
        icalproperty *p = icalproperty_new_uid(uid);
        line = icalproperty_as_ical_string_r(p);
        icalproperty_free(p);
    }

    unsigned depth = 0;
    size_t copied = 0, insert_at = 0;
    bool in_item = false, has_uid = false, crlf = true;
    ical_cursor_init(&c, data, len);
    while (ical_cursor_next(&c, &l) > 0) {
        char name[ICAL_NAME_MAX + 1];
        if (ical_line_is(&l, "BEGIN") && ical_line_component(&c, &l, name)) {
            if (depth == 1 && kind_from_name(name) != ICAL_ITEM_NONE) {
                in_item = true;
                has_uid = false;
                insert_at = l.end;
                crlf = l.crlf;
            }
            depth++;
        } else if (ical_line_is(&l, "END")) {
            if (--depth == 1 && in_item) {
                if (!has_uid) {
                    dynbuf_add(&out, data + copied, insert_at - copied);
                    ical_add_lines(&out, line, crlf ? "\r\n" : "\n");
                    copied = insert_at;
                }
                in_item = false;
            }
        } else if (depth == 2 && in_item && ical_line_is(&l, "UID")) {
            has_uid = true;
        }
    }
    dynbuf_add(&out, data + copied, len - copied);
    free(line);
done:
    ical_info_free(&info);
    if (outlen)
        *outlen = out.len;
    return dynbuf_take(&out);
}
