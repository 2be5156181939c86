/* ical: reading and checking the iCalendar text of one CalDAV item (an event,
 * task or note with its recurrence overrides) with libical, and small edits
 * that keep every byte the user or server wrote except the ones that change.
 * Every returned string is owned by the caller (free()). Thread-safe: libical
 * is set up once (errors never fatal, never printed) by ical_init. */
#ifndef MAILFS_ICAL_H
#define MAILFS_ICAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"

/* Larger texts are refused before libical sees them: a calendar item with
 * inline attachments stays far below this, and libical needs several times
 * the text's size in memory. */
#define ICAL_SIZE_MAX (16 * 1024 * 1024)
/* libical keeps a few hundred bytes per property: a 16 MiB file of tiny
 * lines would take about 900 MB. Real items are far below this (a weekly
 * meeting with 500 changed instances has some 10,000 lines). */
#define ICAL_LINES_MAX 20000
/* A UID longer than this is refused (real ones are UUIDs or short ids). */
#define ICAL_UID_MAX 1024
/* A time that is not there (no DTSTART, no DUE...). */
#define ICAL_NO_TIME INT64_MIN

enum ical_kind {
    ICAL_ITEM_NONE = 0,
    ICAL_ITEM_EVENT,   /* VEVENT */
    ICAL_ITEM_TODO,    /* VTODO */
    ICAL_ITEM_JOURNAL, /* VJOURNAL */
};

/* What mailfs needs to know about one item. The "main" component is the
 * master (the one without RECURRENCE-ID), else the first override when the
 * file holds only overrides (RFC 4791 allows that for invitations).
 *
 * Times are seconds since the epoch (UTC). A DATE-TIME in UTC is exact; one
 * with a TZID is resolved with the VTIMEZONE of that TZID in the file, else
 * with the system's zone of that name (tzdata, as libical finds it), else it
 * is taken as floating. Floating times and DATE values are read in the local
 * time zone of the process (TZ), so that an all-day event is local midnight
 * of its day and names show the day the user means. */
struct ical_info {
    enum ical_kind kind;
    char *uid;          /* the UID the components share; NULL when none has one; owned */
    bool uid_missing;   /* some item component has no UID: see ical_with_uid */
    char *summary;      /* SUMMARY of the main component, unescaped; NULL; owned */
    char *description;  /* DESCRIPTION of the main VJOURNAL (not filled for other
                           kinds), unescaped by libical; NULL; owned */
    int64_t start;      /* DTSTART, or ICAL_NO_TIME */
    bool all_day;       /* DTSTART is a DATE */
    int64_t due;        /* DUE of a VTODO, or ICAL_NO_TIME */
    bool due_all_day;   /* DUE is a DATE */
    int64_t modified;   /* LAST-MODIFIED, else DTSTAMP, or ICAL_NO_TIME */
    bool recurs;        /* the master has an RRULE or RDATE */
    unsigned overrides; /* components with a RECURRENCE-ID */
};

/* Set libical up for mailfs: errors are never fatal (no abort, nothing on
 * stderr). Called by every function here and in note.h; idempotent and
 * thread-safe, so other users of libical call it first too. (libical 3.0
 * still prints, whatever its settings, for the two properties whose value
 * type it cannot read from text; ical_parse hides those from it.) */
void ical_init(void);

/* Check that data[0..len) is one item and fill *out. Accepted: one VCALENDAR
 * holding components of ONE kind (VEVENT, VTODO or VJOURNAL) that share one
 * UID — at most one master plus RECURRENCE-ID overrides — and any number of
 * VTIMEZONEs; CRLF or LF line ends; a UTF-8 BOM. Refused, with a sentence in
 * *err (owned by the caller, set only on failure): an empty file, more than
 * ICAL_SIZE_MAX bytes or ICAL_LINES_MAX content lines, a NUL byte, text that
 * does not begin with BEGIN:VCALENDAR, a line that is not
 * "NAME[;PARAMS]:VALUE", BEGIN/END that do not match or are missing
 * (truncated), text after END:VCALENDAR, two VCALENDARs, no item component,
 * other top-level components (VFREEBUSY...), mixed kinds, two different
 * UIDs, two masters, an item nested in another, and a DTSTART, DTEND, DUE,
 * RECURRENCE-ID or UID that libical cannot read. Other property values
 * libical cannot read are tolerated (their bytes are kept anyway). err may
 * be NULL. Returns 0, or -1 with *out zeroed. Free with ical_info_free. */
int ical_parse(const char *data, size_t len, struct ical_info *out, char **err);
void ical_info_free(struct ical_info *info);

/* "VEVENT", "VTODO", "VJOURNAL", or "" for ICAL_ITEM_NONE. */
const char *ical_kind_name(enum ical_kind kind);

/* A copy of data with a UID line added to every item component that has
 * none (new files made by users often have none; the server needs one). The
 * UID added is the one the other components already share, else `uid`. Every
 * other byte is kept: the line goes right after the component's BEGIN line,
 * with the same line end (CRLF or LF), folded as RFC 5545 says. When nothing
 * lacks a UID the copy is byte for byte the input. NULL when the input is not
 * accepted by ical_parse or `uid` is empty, longer than ICAL_UID_MAX, not
 * UTF-8 or holds control characters. *outlen gets the length (the result is
 * also NUL-terminated). */
char *ical_with_uid(const char *data, size_t len, const char *uid, size_t *outlen);

/* true when `uid` can be given to ical_with_uid or note_update: not empty,
 * at most ICAL_UID_MAX bytes, UTF-8, no control characters. */
bool ical_uid_ok(const char *uid);

/* Append text libical wrote (CRLF line ends) with every CRLF replaced by
 * `eol`, to match the line ends of the text it goes into. -1 past the cap. */
int ical_add_lines(struct dynbuf *out, const char *crlf_text, const char *eol);

/* ---- content lines, for modules that edit iCalendar text in place ---- */

/* Names longer than this are kept only by length (no standard name is). */
#define ICAL_NAME_MAX 63

/* One content line as written: its folds and line end included. Offsets
 * are into the text given to ical_cursor_init. */
struct ical_line {
    size_t start;                 /* first byte */
    size_t end;                   /* one past the line end of its last physical line */
    size_t colon;                 /* the ':' that ends the name and parameters */
    size_t value_end;             /* one past the value (before the line end) */
    char name[ICAL_NAME_MAX + 1]; /* unfolded, as written (truncated when long) */
    size_t name_len;              /* full length of the name */
    unsigned lineno;              /* physical line number of its first line, from 1 */
    bool crlf; /* its last physical line ends in CRLF (else LF or none) */
};

struct ical_cursor {
    const char *data; /* borrowed */
    size_t len;
    size_t pos;
    unsigned lineno;
};

void ical_cursor_init(struct ical_cursor *c, const char *data, size_t len);
/* The next content line (blank lines are skipped): 1 with *l filled; 0 at
 * the end; -1 when the line there is not a content line (l->lineno and
 * l->start say where; the cursor does not move on). */
int ical_cursor_next(struct ical_cursor *c, struct ical_line *l);
/* true when the line's name is `name` (ASCII, case-insensitive). */
bool ical_line_is(const struct ical_line *l, const char *name);
/* The component name of a BEGIN or END line into name[] (trailing white
 * space forgiven); false when it is empty, longer than ICAL_NAME_MAX or not
 * a name. */
bool ical_line_component(const struct ical_cursor *c, const struct ical_line *l,
                         char name[ICAL_NAME_MAX + 1]);
/* Append the line's value, unfolded, to out (raw: escapes kept). -1 past
 * out's cap. */
int ical_line_value(const struct ical_cursor *c, const struct ical_line *l,
                    struct dynbuf *out);
/* Append the line, unfolded and without its line end, to out. -1 past the
 * cap. */
int ical_line_unfold(const struct ical_cursor *c, const struct ical_line *l,
                     struct dynbuf *out);
/* Append `line` (one unfolded content line, no line end) folded at 75 octets
 * between UTF-8 characters, each physical line ended by `eol`. -1 past the
 * cap. */
int ical_fold(struct dynbuf *out, const char *line, size_t len, const char *eol);

#endif
