/* note: the text of a VJOURNAL for a .txt file, and the VJOURNAL for an
 * edited text, changing only the lines that must change. */
#include "formats/note.h"
#include "common/dynbuf.h"
#include "common/utf8.h"
#include "common/util.h"
#include "formats/ical.h"

#include <libical/ical.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NOTE_PRODID "-//mailfs//mailfs//EN"

/* s[0..n) as note text: CR LF and CR become LF, bytes that are not UTF-8
 * are read as Latin-1. NULL when it holds a NUL byte. */
static char *
clean_text(const char *s, size_t n, size_t *outlen)
{
    const unsigned char *p = (const unsigned char *)s;
    struct dynbuf b;
    size_t i = 0;
    dynbuf_init(&b, SIZE_MAX / 2);
    while (i < n) {
        uint32_t cp;
        size_t l;
        if (p[i] == '\0') {
            dynbuf_free(&b);
            return NULL;
        }
        if (p[i] == '\r') {
            dynbuf_addc(&b, '\n');
            i += i + 1 < n && p[i + 1] == '\n' ? 2 : 1;
        } else if (p[i] < 0x80) {
            dynbuf_addc(&b, (char)p[i++]);
        } else if ((l = utf8_next(p + i, n - i, &cp)) > 0) {
            dynbuf_add(&b, s + i, l);
            i += l;
        } else {
            char enc[4];
            dynbuf_add(&b, enc, utf8_encode(p[i++], enc));
        }
    }
    if (outlen)
        *outlen = b.len;
    return dynbuf_take(&b);
}

char *
note_text(const char *ics, size_t len, size_t *textlen)
{
    struct ical_info info;
    if (ical_parse(ics, len, &info, NULL) < 0)
        return NULL;
    char *t = NULL;
    if (info.kind == ICAL_ITEM_JOURNAL) {
        const char *d = info.description ? info.description : "";
        t = clean_text(d, strlen(d), textlen);
    }
    ical_info_free(&info);
    return t;
}

char *
note_title(const char *ics, size_t len)
{
    struct ical_info info;
    if (ical_parse(ics, len, &info, NULL) < 0)
        return NULL;
    char *t = NULL;
    if (info.kind == ICAL_ITEM_JOURNAL && info.summary) {
        t = info.summary;
        info.summary = NULL;
    }
    ical_info_free(&info);
    return t;
}

static struct icaltimetype
now_utc(void)
{
    return icaltime_from_timet_with_zone((time_t)util_now(), 0,
                                         icaltimezone_get_utc_timezone());
}

static char *
new_note(const char *title, const char *text, const char *uid, size_t *outlen)
{
    if (!ical_uid_ok(uid))
        return NULL;
    icalcomponent *cal = icalcomponent_new(ICAL_VCALENDAR_COMPONENT);
    icalcomponent_add_property(cal, icalproperty_new_version("2.0"));
    icalcomponent_add_property(cal, icalproperty_new_prodid(NOTE_PRODID));
    icalcomponent *j = icalcomponent_new(ICAL_VJOURNAL_COMPONENT);
    icalcomponent_add_property(j, icalproperty_new_uid(uid));
    icalcomponent_add_property(j, icalproperty_new_dtstamp(now_utc()));
    if (title && *title)
        icalcomponent_add_property(j, icalproperty_new_summary(title));
    if (*text)
        icalcomponent_add_property(j, icalproperty_new_description(text));
    icalcomponent_add_component(cal, j);
    char *s = icalcomponent_as_ical_string_r(cal);
    icalcomponent_free(cal);
    if (strlen(s) > ICAL_SIZE_MAX) { /* ical_parse would refuse it */
        free(s);
        return NULL;
    }
    if (outlen)
        *outlen = strlen(s);
    return s;
}

/* Where the lines of the note's main VJOURNAL are in the old text. */
struct target {
    struct ical_line begin, end;
    struct ical_line desc, summary, dtstamp, lastmod;
    bool has_desc, has_summary, has_dtstamp, has_lastmod;
    struct ical_line altdesc[8]; /* X-ALT-DESC lines to drop */
    unsigned n_altdesc;
};

/* The master VJOURNAL (no RECURRENCE-ID), else the first: the same one
 * ical_parse reads. The text has passed ical_parse; false if it is not
 * found all the same (then nothing is edited). */
static bool
find_target(const char *ics, size_t len, struct target *t)
{
    struct ical_cursor c;
    struct ical_line l;
    struct target cur, first;
    bool have_first = false, have_master = false, rid = false, in_item = false;
    unsigned depth = 0;

    memset(&cur, 0, sizeof(cur));
    memset(&first, 0, sizeof(first));
    ical_cursor_init(&c, ics, len);
    while (ical_cursor_next(&c, &l) > 0) {
        if (ical_line_is(&l, "BEGIN")) {
            if (depth == 1) {
                memset(&cur, 0, sizeof(cur));
                cur.begin = l;
                rid = false;
                char name[ICAL_NAME_MAX + 1];
                in_item = ical_line_component(&c, &l, name) &&
                          util_ascii_eq(name, strlen(name), "VJOURNAL");
            }
            depth++;
            continue;
        }
        if (ical_line_is(&l, "END")) {
            if (--depth == 1 && in_item) {
                cur.end = l;
                in_item = false;
                if (!have_first) {
                    first = cur;
                    have_first = true;
                }
                if (!rid && !have_master) {
                    *t = cur;
                    have_master = true;
                }
            }
            continue;
        }
        if (depth != 2 || !in_item)
            continue;
        if (ical_line_is(&l, "RECURRENCE-ID")) {
            rid = true;
        } else if (ical_line_is(&l, "DESCRIPTION") && !cur.has_desc) {
            cur.desc = l, cur.has_desc = true;
        } else if (ical_line_is(&l, "SUMMARY") && !cur.has_summary) {
            cur.summary = l, cur.has_summary = true;
        } else if (ical_line_is(&l, "DTSTAMP") && !cur.has_dtstamp) {
            cur.dtstamp = l, cur.has_dtstamp = true;
        } else if (ical_line_is(&l, "LAST-MODIFIED") && !cur.has_lastmod) {
            cur.lastmod = l, cur.has_lastmod = true;
        } else if (ical_line_is(&l, "X-ALT-DESC") &&
                   cur.n_altdesc < ARRAY_SIZE(cur.altdesc)) {
            cur.altdesc[cur.n_altdesc++] = l;
        }
    }
    if (!have_master)
        *t = first;
    return have_first;
}

/* One change to the old text: bytes [from, to) become `text` (owned). */
struct edit {
    size_t from, to;
    char *text;
};

static int
edit_cmp(const void *a, const void *b)
{
    const struct edit *x = a, *y = b;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    return 0;
}

/* The property of line l rebuilt by libical with a new text value and the
 * same parameters (but ALTREP, which points at the old text's other form);
 * a fresh property when libical cannot read the old line. */
static char *
text_line(const struct ical_cursor *c, const struct ical_line *l, icalproperty_kind kind,
          const char *value, const char *eol)
{
    struct dynbuf u, out;
    dynbuf_init(&u, ICAL_SIZE_MAX);
    icalproperty *p = NULL;
    if (ical_line_unfold(c, l, &u) == 0 && u.data && !memchr(u.data, '\r', u.len))
        p = icalproperty_new_from_string(u.data);
    dynbuf_free(&u);
    if (p && icalproperty_isa(p) != kind) {
        icalproperty_free(p);
        p = NULL;
    }
    if (!p)
        p = icalproperty_new(kind);
    icalproperty_remove_parameter_by_kind(p, ICAL_ALTREP_PARAMETER);
    icalproperty_set_value(p, icalvalue_new_text(value));
    char *s = icalproperty_as_ical_string_r(p);
    icalproperty_free(p);
    dynbuf_init(&out, SIZE_MAX / 2);
    ical_add_lines(&out, s, eol);
    free(s);
    return dynbuf_take(&out);
}

/* A new line for a property libical makes from scratch. */
static char *
prop_line(icalproperty *p, const char *eol)
{
    struct dynbuf out;
    char *s = icalproperty_as_ical_string_r(p);
    icalproperty_free(p);
    dynbuf_init(&out, SIZE_MAX / 2);
    ical_add_lines(&out, s, eol);
    free(s);
    return dynbuf_take(&out);
}

static char *
update_note(const char *old, size_t oldlen, const char *title, bool title_changed,
            const char *text, bool text_changed, size_t *outlen)
{
    struct target t;
    struct ical_cursor c;
    struct edit edits[16];
    size_t n = 0;

    memset(&t, 0, sizeof(t));
    if (!find_target(old, oldlen, &t))
        return NULL;
    ical_cursor_init(&c, old, oldlen);
    const char *eol = t.begin.crlf ? "\r\n" : "\n";
    size_t at_end = t.end.start; /* new lines go just before END:VJOURNAL */

    if (text_changed) {
        if (t.has_desc)
            edits[n++] =
                (struct edit){t.desc.start, t.desc.end,
                              *text ? text_line(&c, &t.desc, ICAL_DESCRIPTION_PROPERTY,
                                                text, t.desc.crlf ? "\r\n" : "\n")
                                    : xstrdup("")};
        else if (*text)
            edits[n++] = (struct edit){
                at_end, at_end, prop_line(icalproperty_new_description(text), eol)};
        for (unsigned i = 0; i < t.n_altdesc; i++)
            edits[n++] = (struct edit){t.altdesc[i].start, t.altdesc[i].end, xstrdup("")};
    }
    if (title_changed) {
        if (t.has_summary)
            edits[n++] = (struct edit){t.summary.start, t.summary.end,
                                       text_line(&c, &t.summary, ICAL_SUMMARY_PROPERTY,
                                                 title, t.summary.crlf ? "\r\n" : "\n")};
        else
            edits[n++] = (struct edit){at_end, at_end,
                                       prop_line(icalproperty_new_summary(title), eol)};
    }
    struct icaltimetype now = now_utc();
    if (t.has_dtstamp)
        edits[n++] = (struct edit){
            t.dtstamp.start, t.dtstamp.end,
            prop_line(icalproperty_new_dtstamp(now), t.dtstamp.crlf ? "\r\n" : "\n")};
    else
        edits[n++] =
            (struct edit){at_end, at_end, prop_line(icalproperty_new_dtstamp(now), eol)};
    if (t.has_lastmod)
        edits[n++] = (struct edit){t.lastmod.start, t.lastmod.end,
                                   prop_line(icalproperty_new_lastmodified(now),
                                             t.lastmod.crlf ? "\r\n" : "\n")};
    else
        edits[n++] = (struct edit){at_end, at_end,
                                   prop_line(icalproperty_new_lastmodified(now), eol)};

    /* stable for equal offsets: insertions keep the order they were made in */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && edit_cmp(&edits[j - 1], &edits[j]) > 0; j--) {
            struct edit tmp = edits[j - 1];
            edits[j - 1] = edits[j];
            edits[j] = tmp;
        }

    struct dynbuf out;
    size_t copied = 0;
    bool full = false;
    dynbuf_init(&out, ICAL_SIZE_MAX);
    for (size_t i = 0; i < n; i++) {
        if (dynbuf_add(&out, old + copied, edits[i].from - copied) < 0 ||
            dynbuf_adds(&out, edits[i].text) < 0)
            full = true;
        copied = edits[i].to;
        free(edits[i].text);
    }
    if (dynbuf_add(&out, old + copied, oldlen - copied) < 0)
        full = true;
    if (full) {
        dynbuf_free(&out);
        return NULL;
    }
    if (outlen)
        *outlen = out.len;
    return dynbuf_take(&out);
}

char *
note_update(const char *old_ics, size_t oldlen, const char *title, const char *text,
            size_t textlen, const char *uid_for_new, size_t *outlen)
{
    size_t cl;
    if (!text && textlen)
        return NULL;
    char *clean = clean_text(text ? text : "", text ? textlen : 0, &cl);
    if (!clean || cl > ICAL_SIZE_MAX) {
        free(clean);
        return NULL;
    }
    ical_init();
    if (!old_ics) {
        char *s = new_note(title, clean, uid_for_new, outlen);
        free(clean);
        return s;
    }

    struct ical_info info;
    char *r = NULL;
    if (ical_parse(old_ics, oldlen, &info, NULL) < 0) {
        free(clean);
        return NULL;
    }
    if (info.kind == ICAL_ITEM_JOURNAL) {
        const char *d = info.description ? info.description : "";
        size_t ol;
        char *old_text = clean_text(d, strlen(d), &ol);
        bool text_changed = ol != cl || memcmp(old_text, clean, cl) != 0;
        bool title_changed =
            title && *title && (!info.summary || strcmp(title, info.summary) != 0);
        free(old_text);
        if (!text_changed && !title_changed) {
            r = xstrndup(old_ics, oldlen);
            if (outlen)
                *outlen = oldlen;
        } else {
            r = update_note(old_ics, oldlen, title, title_changed, clean, text_changed,
                            outlen);
        }
    }
    ical_info_free(&info);
    free(clean);
    return r;
}
