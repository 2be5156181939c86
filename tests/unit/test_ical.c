/* Unit tests for formats/ical.c: what one CalDAV item's text says (kind, UID,
 * times in every zone form), what is refused and why, and UIDs added without
 * touching other bytes. */
#include "formats/ical.h"
#include "formats/note.h"
#include "common/dynbuf.h"
#include "common/util.h"
#include "tests/unit/check.h"

#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CRLF "\r\n"

/* 2025-11-03 09:30 Europe/Berlin (CET) */
#define T_BERLIN INT64_C(1762158600)
/* 2025-07-04 12:00 America/New_York (EDT) */
#define T_NEWYORK INT64_C(1751644800)
/* 2025-11-24 10:00 UTC */
#define T_UTC INT64_C(1763978400)
/* 2025-11-01 12:00 UTC */
#define T_DTSTAMP INT64_C(1761998400)

static void
set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

/* Parse an exact-size copy (no NUL after it), so the sanitizers catch any
 * read past len. */
static int
parse_n(const char *text, size_t n, struct ical_info *info, char **err)
{
    char *p = calloc(1, n ? n : 1);
    memcpy(p, text, n);
    int r = ical_parse(p, n, info, err);
    free(p);
    return r;
}

static int
parse(const char *text, struct ical_info *info, char **err)
{
    return parse_n(text, strlen(text), info, err);
}

/* The item must be refused with an error that contains `want`. */
#define CHECK_REFUSED(text, want)                                                        \
    do {                                                                                 \
        struct ical_info i_;                                                             \
        char *e_ = NULL;                                                                 \
        CHECK(parse(text, &i_, &e_) == -1);                                              \
        CHECK(e_ &&strstr(e_, want));                                                    \
        if (!e_ || !strstr(e_, want))                                                    \
            printf("# error was: %s\n", e_ ? e_ : "(none)");                             \
        CHECK(i_.uid == NULL && i_.summary == NULL && i_.kind == ICAL_ITEM_NONE);        \
        free(e_);                                                                        \
    } while (0)

static char *
with_uid(const char *text, const char *uid, size_t *outlen)
{
    size_t n = strlen(text);
    char *p = calloc(1, n ? n : 1);
    memcpy(p, text, n);
    char *r = ical_with_uid(p, n, uid, outlen);
    free(p);
    return r;
}

static const char berlin_tz[] =
    "BEGIN:VTIMEZONE" CRLF "TZID:Europe/Berlin" CRLF "BEGIN:DAYLIGHT" CRLF
    "TZOFFSETFROM:+0100" CRLF "TZOFFSETTO:+0200" CRLF "TZNAME:CEST" CRLF
    "DTSTART:19700329T020000" CRLF "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU" CRLF
    "END:DAYLIGHT" CRLF "BEGIN:STANDARD" CRLF "TZOFFSETFROM:+0200" CRLF
    "TZOFFSETTO:+0100" CRLF "TZNAME:CET" CRLF "DTSTART:19701025T030000" CRLF
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU" CRLF "END:STANDARD" CRLF
    "END:VTIMEZONE" CRLF;

static char *
event(const char *props)
{
    return xasprintf("BEGIN:VCALENDAR" CRLF "VERSION:2.0" CRLF "PRODID:-//test//EN" CRLF
                     "BEGIN:VEVENT" CRLF "%s"
                     "END:VEVENT" CRLF "END:VCALENDAR" CRLF,
                     props);
}

static void
test_event_tzid(void)
{
    set_tz("UTC");
    char *text = xasprintf(
        "BEGIN:VCALENDAR" CRLF "VERSION:2.0" CRLF "PRODID:-//test//EN" CRLF "%s"
        "BEGIN:VEVENT" CRLF "UID:tz-1@example.com" CRLF "DTSTAMP:20251101T120000Z" CRLF
        "DTSTART;TZID=Europe/Berlin:20251103T093000" CRLF
        "DTEND;TZID=Europe/Berlin:20251103T103000" CRLF "SUMMARY:Planning" CRLF
        "END:VEVENT" CRLF "END:VCALENDAR" CRLF,
        berlin_tz);
    struct ical_info i;
    char *err = NULL;
    CHECK(parse(text, &i, &err) == 0);
    CHECK(err == NULL);
    CHECK(i.kind == ICAL_ITEM_EVENT);
    CHECK_STR(i.uid, "tz-1@example.com");
    CHECK(!i.uid_missing);
    CHECK_STR(i.summary, "Planning");
    CHECK(i.description == NULL); /* only read for notes */
    CHECK(i.start == T_BERLIN && !i.all_day);
    CHECK(i.due == ICAL_NO_TIME);
    CHECK(i.modified == T_DTSTAMP);
    CHECK(!i.recurs && i.overrides == 0);
    ical_info_free(&i);
    /* the local zone does not change a time with a zone */
    set_tz("EST5");
    CHECK(parse(text, &i, NULL) == 0 && i.start == T_BERLIN);
    ical_info_free(&i);
    set_tz("UTC");
    free(text);

    /* a TZID without VTIMEZONE: the system's zone of that name */
    text = event("UID:tz-2" CRLF "DTSTAMP:20251101T120000Z" CRLF
                 "DTSTART;TZID=America/New_York:20250704T120000" CRLF);
    CHECK(parse(text, &i, NULL) == 0 && i.start == T_NEWYORK);
    ical_info_free(&i);
    free(text);
    /* libical's own prefixed ids */
    text = event("UID:tz-3" CRLF "DTSTAMP:20251101T120000Z" CRLF
                 "DTSTART;TZID=/freeassociation.sourceforge.net/America/New_York:"
                 "20250704T120000" CRLF);
    CHECK(parse(text, &i, NULL) == 0 && i.start == T_NEWYORK);
    ical_info_free(&i);
    free(text);
    /* a VTIMEZONE of the file wins over the system's zone of the same name:
     * here "Europe/Berlin" is made +05:30 all year */
    text = xasprintf("BEGIN:VCALENDAR" CRLF "VERSION:2.0" CRLF "BEGIN:VTIMEZONE" CRLF
                     "TZID:Europe/Berlin" CRLF "BEGIN:STANDARD" CRLF
                     "TZOFFSETFROM:+0530" CRLF "TZOFFSETTO:+0530" CRLF
                     "DTSTART:19700101T000000" CRLF "END:STANDARD" CRLF
                     "END:VTIMEZONE" CRLF "BEGIN:VEVENT" CRLF "UID:tz-4" CRLF
                     "DTSTART;TZID=Europe/Berlin:20250110T090000" CRLF "END:VEVENT" CRLF
                     "END:VCALENDAR" CRLF);
    CHECK(parse(text, &i, NULL) == 0 && i.start == INT64_C(1736479800));
    ical_info_free(&i);
    free(text);
    /* an unknown TZID without VTIMEZONE: taken as floating (local) */
    set_tz("EST5");
    text = event("UID:tz-5" CRLF "DTSTART;TZID=Mars/Olympus_Mons:20251224T180000" CRLF);
    CHECK(parse(text, &i, NULL) == 0 && i.start == INT64_C(1766617200));
    ical_info_free(&i);
    free(text);
    /* a TZID that looks like a path is only a name */
    text = event("UID:tz-6" CRLF "DTSTART;TZID=../../../etc/passwd:20251224T180000" CRLF);
    CHECK(parse(text, &i, NULL) == 0 && i.start == INT64_C(1766617200));
    ical_info_free(&i);
    free(text);
    set_tz("UTC");
}

static void
test_event_all_day_floating_utc(void)
{
    struct ical_info i;
    /* all-day: local midnight of that day */
    set_tz("CET-1");
    char *text = event("UID:d-1" CRLF "DTSTART;VALUE=DATE:20251224" CRLF
                       "DTEND;VALUE=DATE:20251225" CRLF "SUMMARY:Christmas Eve" CRLF);
    CHECK(parse(text, &i, NULL) == 0);
    CHECK(i.start == INT64_C(1766530800) && i.all_day);
    ical_info_free(&i);
    set_tz("UTC");
    CHECK(parse(text, &i, NULL) == 0);
    CHECK(i.start == INT64_C(1766534400) && i.all_day);
    ical_info_free(&i);
    free(text);
    /* a birthday series from before 1970 */
    text = event("UID:d-2" CRLF "DTSTART;VALUE=DATE:19600315" CRLF
                 "RRULE:FREQ=YEARLY" CRLF "SUMMARY:Birthday" CRLF);
    CHECK(parse(text, &i, NULL) == 0);
    CHECK(i.start == INT64_C(-309225600) && i.all_day && i.recurs);
    ical_info_free(&i);
    free(text);

    /* floating: local time */
    set_tz("EST5");
    text = event("UID:f-1" CRLF "DTSTART:20251224T180000" CRLF);
    CHECK(parse(text, &i, NULL) == 0);
    CHECK(i.start == INT64_C(1766617200) && !i.all_day);
    ical_info_free(&i);
    free(text);

    /* UTC */
    text = event("UID:u-1" CRLF "DTSTART:20251124T100000Z" CRLF
                 "LAST-MODIFIED:20251102T081530Z" CRLF "DTSTAMP:20251101T120000Z" CRLF);
    CHECK(parse(text, &i, NULL) == 0);
    CHECK(i.start == T_UTC && !i.all_day);
    CHECK(i.modified == INT64_C(1762071330)); /* LAST-MODIFIED before DTSTAMP */
    ical_info_free(&i);
    free(text);
    set_tz("UTC");

    /* no DTSTART at all */
    text = event("UID:n-1" CRLF "SUMMARY:whenever" CRLF);
    CHECK(parse(text, &i, NULL) == 0);
    CHECK(i.start == ICAL_NO_TIME && i.modified == ICAL_NO_TIME);
    ical_info_free(&i);
    free(text);
}

static void
test_recurring_overrides(void)
{
    set_tz("UTC");
    char *text = xasprintf(
        "BEGIN:VCALENDAR" CRLF "VERSION:2.0" CRLF "%s"
        /* an override first: order does not matter */
        "BEGIN:VEVENT" CRLF "UID:rec-1" CRLF
        "RECURRENCE-ID;TZID=Europe/Berlin:20251110T093000" CRLF
        "DTSTART;TZID=Europe/Berlin:20251110T100000" CRLF "SUMMARY:Stand-up (late)" CRLF
        "END:VEVENT" CRLF "BEGIN:VEVENT" CRLF "UID:rec-1" CRLF
        "DTSTART;TZID=Europe/Berlin:20251103T093000" CRLF
        "RRULE:FREQ=WEEKLY;BYDAY=MO" CRLF "SUMMARY:Stand-up" CRLF "BEGIN:VALARM" CRLF
        "ACTION:DISPLAY" CRLF "TRIGGER:-PT5M" CRLF "DESCRIPTION:soon" CRLF
        "END:VALARM" CRLF "END:VEVENT" CRLF "BEGIN:VEVENT" CRLF "UID:rec-1" CRLF
        "RECURRENCE-ID;TZID=Europe/Berlin:20251117T093000" CRLF
        "DTSTART;TZID=Europe/Berlin:20251117T093000" CRLF "SUMMARY:Stand-up" CRLF
        "LOCATION:Room 4" CRLF "END:VEVENT" CRLF "END:VCALENDAR" CRLF,
        berlin_tz);
    struct ical_info i;
    CHECK(parse(text, &i, NULL) == 0);
    CHECK(i.kind == ICAL_ITEM_EVENT);
    CHECK_STR(i.uid, "rec-1");
    CHECK_STR(i.summary, "Stand-up"); /* the master's */
    CHECK(i.start == T_BERLIN);
    CHECK(i.recurs && i.overrides == 2);
    ical_info_free(&i);
    free(text);

    /* only overrides (an invitation to some instances): the first is main */
    text = event("UID:rec-2" CRLF "RECURRENCE-ID:20251110T083000Z" CRLF
                 "DTSTART:20251124T100000Z" CRLF "SUMMARY:just this one" CRLF);
    CHECK(parse(text, &i, NULL) == 0);
    CHECK(!i.recurs && i.overrides == 1 && i.start == T_UTC);
    CHECK_STR(i.summary, "just this one");
    ical_info_free(&i);
    free(text);

    /* RDATE counts as recurring */
    text = event("UID:rec-3" CRLF "DTSTART:20251124T100000Z" CRLF
                 "RDATE:20251201T100000Z" CRLF);
    CHECK(parse(text, &i, NULL) == 0 && i.recurs);
    ical_info_free(&i);
    free(text);
}

static void
test_todo_and_journal(void)
{
    set_tz("UTC");
    struct ical_info i;
    const char *todo = "BEGIN:VCALENDAR" CRLF "VERSION:2.0" CRLF "BEGIN:VTODO" CRLF
                       "UID:todo-1" CRLF "DTSTAMP:20251101T120000Z" CRLF
                       "DUE:20251130T170000Z" CRLF "SUMMARY:Pay rent" CRLF
                       "STATUS:NEEDS-ACTION" CRLF "END:VTODO" CRLF "END:VCALENDAR" CRLF;
    CHECK(parse(todo, &i, NULL) == 0);
    CHECK(i.kind == ICAL_ITEM_TODO);
    CHECK_STR(i.summary, "Pay rent");
    CHECK(i.due == INT64_C(1764522000) && !i.due_all_day);
    CHECK(i.start == ICAL_NO_TIME);
    ical_info_free(&i);

    const char *todo_date =
        "BEGIN:VCALENDAR" CRLF "VERSION:2.0" CRLF "BEGIN:VTODO" CRLF "UID:todo-2" CRLF
        "DUE;VALUE=DATE:20251224" CRLF "END:VTODO" CRLF "END:VCALENDAR" CRLF;
    CHECK(parse(todo_date, &i, NULL) == 0);
    CHECK(i.due == INT64_C(1766534400) && i.due_all_day && i.summary == NULL);
    ical_info_free(&i);

    const char *journal =
        "BEGIN:VCALENDAR" CRLF "VERSION:2.0" CRLF "BEGIN:VJOURNAL" CRLF "UID:j-1" CRLF
        "DTSTAMP:20251101T120000Z" CRLF "SUMMARY:Ideas" CRLF
        "DESCRIPTION:one\\, two\\; three\\nfour \\\\ five" CRLF "CATEGORIES:a,b" CRLF
        "END:VJOURNAL" CRLF "END:VCALENDAR" CRLF;
    CHECK(parse(journal, &i, NULL) == 0);
    CHECK(i.kind == ICAL_ITEM_JOURNAL);
    CHECK_STR(i.summary, "Ideas");
    CHECK_STR(i.description, "one, two; three\nfour \\ five");
    CHECK(i.due == ICAL_NO_TIME);
    ical_info_free(&i);

    CHECK_STR(ical_kind_name(ICAL_ITEM_EVENT), "VEVENT");
    CHECK_STR(ical_kind_name(ICAL_ITEM_TODO), "VTODO");
    CHECK_STR(ical_kind_name(ICAL_ITEM_JOURNAL), "VJOURNAL");
    CHECK_STR(ical_kind_name(ICAL_ITEM_NONE), "");
}

static void
test_missing_uid(void)
{
    struct ical_info i;
    size_t n;
    /* CRLF file: the UID goes right after BEGIN:VEVENT, CRLF */
    const char *crlf = "BEGIN:VCALENDAR" CRLF "VERSION:2.0" CRLF "BEGIN:VEVENT" CRLF
                       "DTSTART:20251124T100000Z" CRLF "SUMMARY:new" CRLF
                       "END:VEVENT" CRLF "END:VCALENDAR" CRLF;
    CHECK(parse(crlf, &i, NULL) == 0);
    CHECK(i.uid == NULL && i.uid_missing);
    ical_info_free(&i);
    char *r = with_uid(crlf, "new-uid-1", &n);
    CHECK_STR(r, "BEGIN:VCALENDAR" CRLF "VERSION:2.0" CRLF "BEGIN:VEVENT" CRLF
                 "UID:new-uid-1" CRLF "DTSTART:20251124T100000Z" CRLF "SUMMARY:new" CRLF
                 "END:VEVENT" CRLF "END:VCALENDAR" CRLF);
    CHECK(r && n == strlen(r));
    CHECK(parse(r, &i, NULL) == 0 && !i.uid_missing);
    CHECK_STR(i.uid, "new-uid-1");
    ical_info_free(&i);
    free(r);

    /* LF file, odd spacing kept as it is: only the new line is added, LF */
    const char *lf = "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VTODO\nSUMMARY:x\\,y  \n"
                     "END:VTODO\nEND:VCALENDAR\n";
    r = with_uid(lf, "u;2,x\\y", &n);
    CHECK_STR(r, "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VTODO\nUID:u\\;2\\,x\\\\y\n"
                 "SUMMARY:x\\,y  \nEND:VTODO\nEND:VCALENDAR\n");
    CHECK(parse(r, &i, NULL) == 0);
    CHECK_STR(i.uid, "u;2,x\\y");
    ical_info_free(&i);
    free(r);

    /* an override without UID gets the master's, not the one offered */
    const char *partial =
        "BEGIN:VCALENDAR" CRLF "BEGIN:VEVENT" CRLF "UID:master" CRLF
        "DTSTART:20251124T100000Z" CRLF "RRULE:FREQ=DAILY" CRLF "END:VEVENT" CRLF
        "BEGIN:VEVENT" CRLF "RECURRENCE-ID:20251125T100000Z" CRLF
        "DTSTART:20251125T110000Z" CRLF "END:VEVENT" CRLF "END:VCALENDAR" CRLF;
    CHECK(parse(partial, &i, NULL) == 0);
    CHECK_STR(i.uid, "master");
    CHECK(i.uid_missing);
    ical_info_free(&i);
    r = with_uid(partial, "other", &n);
    CHECK(r && strstr(r, "BEGIN:VEVENT" CRLF "UID:master" CRLF "RECURRENCE-ID"));
    CHECK(r && !strstr(r, "other"));
    CHECK(parse(r, &i, NULL) == 0 && !i.uid_missing && i.overrides == 1);
    ical_info_free(&i);
    free(r);

    /* the shared UID is copied as it is written, escapes and all (libical
     * would drop a control character when writing it again) */
    const char *raw = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nRECURRENCE-ID:20251125T100000Z\n"
                      "END:VEVENT\nBEGIN:VEVENT\nUID:odd\\;uid\\n\x0c\n"
                      "DTSTART:20251124T100000Z\nEND:VEVENT\nEND:VCALENDAR\n";
    r = with_uid(raw, "other", &n);
    CHECK(r && strstr(r, "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:odd\\;uid\\n\x0c\n"
                         "RECURRENCE-ID"));
    CHECK(parse(r, &i, NULL) == 0 && !i.uid_missing);
    ical_info_free(&i);
    free(r);

    /* ... parameters too: libical reads "UID;:x" as ":x" (found by fuzzing) */
    raw = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nRECURRENCE-ID:20251125T100000Z\r\n"
          "END:VEVENT\r\nBEGIN:VEVENT\r\nUID;:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    r = with_uid(raw, "other", &n);
    CHECK(r && strstr(r, "BEGIN:VEVENT\r\nUID;:x\r\nRECURRENCE-ID"));
    CHECK(parse(r, &i, NULL) == 0 && !i.uid_missing);
    ical_info_free(&i);
    free(r);

    /* nothing missing: the same bytes, even an odd file; a VALARM's lines
     * never count as the event's */
    const char *odd =
        "\xEF\xBB\xBF"
        "BEGIN:VCALENDAR\r\n\r\nbegin:vevent\n"
        "uid:lower\r\n"
        "BEGIN:VALARM\r\nUID:alarm-uid\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\n"
        "END:VALARM\r\nend:vevent\r\nEND:VCALENDAR";
    r = with_uid(odd, "x", &n);
    CHECK(r && n == strlen(odd) && memcmp(r, odd, n) == 0);
    free(r);
    const char *alarm_only =
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nBEGIN:VALARM\nUID:alarm-uid\n"
        "ACTION:DISPLAY\nTRIGGER:-PT5M\nEND:VALARM\nEND:VEVENT\n"
        "END:VCALENDAR\n";
    CHECK(parse(alarm_only, &i, NULL) == 0 && i.uid == NULL && i.uid_missing);
    ical_info_free(&i);
    r = with_uid(alarm_only, "x", &n);
    CHECK_STR(r,
              "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nBEGIN:VALARM\nUID:alarm-uid\n"
              "ACTION:DISPLAY\nTRIGGER:-PT5M\nEND:VALARM\nEND:VEVENT\nEND:VCALENDAR\n");
    free(r);

    /* a long UID is folded, between characters */
    char uid[300] = "";
    for (int k = 0; k < 90; k++)
        strcat(uid, "é");
    r = with_uid(crlf, uid, &n);
    CHECK(r != NULL);
    if (r) {
        for (const char *p = r; *p;) {
            const char *e = strstr(p, CRLF);
            CHECK(e && e - p <= 75);
            if (!e)
                break;
            if (e > p)
                CHECK(((unsigned char)e[-1] & 0xC0) != 0xC0); /* no lead byte cut off */
            p = e + 2;
        }
        CHECK(parse(r, &i, NULL) == 0);
        CHECK_STR(i.uid, uid);
        ical_info_free(&i);
    }
    free(r);

    /* bad UIDs and bad files */
    CHECK(with_uid(crlf, "", &n) == NULL);
    CHECK(with_uid(crlf, "a\nb", &n) == NULL);
    CHECK(with_uid(crlf, "a\x7f", &n) == NULL);
    CHECK(with_uid(crlf, "caf\xe9", &n) == NULL);
    CHECK(ical_with_uid(crlf, strlen(crlf), NULL, &n) == NULL);
    char big[ICAL_UID_MAX + 2];
    memset(big, 'u', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK(with_uid(crlf, big, &n) == NULL);
    big[ICAL_UID_MAX] = '\0';
    r = with_uid(crlf, big, &n);
    CHECK(r != NULL);
    free(r);
    CHECK(with_uid("garbage", "x", &n) == NULL);
    CHECK(with_uid("", "x", &n) == NULL);
    CHECK(ical_with_uid(NULL, 0, "x", &n) == NULL);
}

static void
test_refused(void)
{
    CHECK_REFUSED("", "empty file");
    CHECK_REFUSED(" \r\n\t\n", "empty file");
    CHECK_REFUSED("garbage", "not iCalendar");
    CHECK_REFUSED("hello: world\n", "not iCalendar");
    CHECK_REFUSED("BEGIN:VCARD\r\nFN:x\r\nEND:VCARD\r\n", "not iCalendar");
    CHECK_REFUSED("\x89PNG\r\n\x1a\n", "not iCalendar");
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "no VEVENT, VTODO or VJOURNAL");
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:x\r\nEND:VTIMEZONE\r\n"
                  "END:VCALENDAR\r\n",
                  "no VEVENT, VTODO or VJOURNAL");
    /* truncated anywhere */
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\n",
                  "truncated: BEGIN:VEVENT");
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\n",
                  "truncated: BEGIN:VCALENDAR");
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\nEND:VCAL",
                  "does not close");
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nSUMM", "line 4 is not");
    CHECK_REFUSED(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
        "END:VTODO does not close BEGIN:VEVENT of line 2");
    /* two UIDs, mixed kinds, two masters */
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\n"
                  "BEGIN:VEVENT\r\nUID:b\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                  "two different UIDs, \"a\" and \"b\"");
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\n"
                  "BEGIN:VTODO\r\nUID:a\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
                  "mixed kinds: VEVENT and VTODO");
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VJOURNAL\r\nUID:a\r\nEND:VJOURNAL\r\n"
                  "BEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                  "mixed kinds: VJOURNAL and VEVENT");
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\n"
                  "BEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                  "two VEVENTs without RECURRENCE-ID");
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:one\r\nEND:VEVENT\r\n"
                  "BEGIN:VEVENT\r\nSUMMARY:two\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                  "two VEVENTs without RECURRENCE-ID");
    /* a UID quoted in an error is made harmless */
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\\nb\x1b[31m\r\nEND:VEVENT\r\n"
                  "BEGIN:VEVENT\r\nUID:b\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                  "\"a?b?[31m\" and \"b\"");
    /* several calendars, text after the end */
    CHECK_REFUSED(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        "more than one VCALENDAR");
    CHECK_REFUSED(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        "X-TRAILER:x\r\n",
        "line 6: text after END:VCALENDAR");
    /* components that are not items, items inside items */
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VFREEBUSY\r\nUID:a\r\nEND:VFREEBUSY\r\n"
                  "END:VCALENDAR\r\n",
                  "a VFREEBUSY is not an event, task or note");
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nBEGIN:VTODO\r\nUID:a\r\n"
                  "END:VTODO\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                  "BEGIN:VTODO inside VEVENT");
    CHECK_REFUSED(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n",
        "BEGIN:VCALENDAR inside VEVENT");
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nBEGIN:\r\n",
                  "BEGIN without a valid");
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nBEGIN:a b\r\n",
                  "BEGIN without a valid");
    /* lines that are not content lines */
    CHECK_REFUSED(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nwhat is this\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n",
        "line 4 is not an iCalendar content line");
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\n;X=1:v\r\nEND:VEVENT\r\n"
                  "END:VCALENDAR\r\n",
                  "line 4 is not");
    CHECK_REFUSED(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nX-A;P=\"unclosed:v\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n",
        "line 3 is not");
    CHECK_REFUSED(" BEGIN:VCALENDAR\r\n", "not iCalendar");
    CHECK_REFUSED("BEGIN:VCALENDAR\r\n\r\n folded after a blank line\r\n",
                  "line 3 is not");
    /* the values that place and identify an item must be readable */
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:2025XX\r\n"
                  "END:VEVENT\r\nEND:VCALENDAR\r\n",
                  "the VEVENT's DTSTART cannot be read");
    CHECK_REFUSED("BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:a\r\nDUE:tomorrow\r\n"
                  "END:VTODO\r\nEND:VCALENDAR\r\n",
                  "the VTODO's DUE cannot be read");
    CHECK_REFUSED(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        "UID cannot be read");
    /* NUL bytes: libical would stop reading there */
    const char nul[] = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\0b\r\nEND:VEVENT\r\n"
                       "END:VCALENDAR\r\n";
    struct ical_info i;
    char *err = NULL;
    CHECK(parse_n(nul, sizeof(nul) - 1, &i, &err) == -1);
    CHECK(err && strstr(err, "NUL byte"));
    free(err);
    /* nesting */
    struct dynbuf deep;
    dynbuf_init(&deep, 1 << 20);
    dynbuf_adds(&deep, "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n");
    for (int k = 0; k < 100; k++)
        dynbuf_adds(&deep, "BEGIN:X-DEEP\r\n");
    err = NULL;
    CHECK(parse_n(deep.data, deep.len, &i, &err) == -1);
    CHECK(err && strstr(err, "nested more than 16 deep"));
    free(err);
    dynbuf_free(&deep);
    /* err may be NULL */
    CHECK(parse("garbage", &i, NULL) == -1);
    CHECK(ical_parse(NULL, 0, &i, NULL) == -1);
}

static void
test_tolerated(void)
{
    struct ical_info i;
    /* what real files hold: lower case, LF, a BOM, blank lines, a last line
     * without line end, trailing blanks after BEGIN values, X- components
     * inside items, values libical cannot read on other properties */
    const char *text = "\xEF\xBB\xBF"
                       "begin:vcalendar\n\nversion:2.0\nBEGIN:VEVENT  \n"
                       "UID:tol-1\nDTSTART:20251124T100000Z\nRRULE:FREQ=BOGUS\n"
                       "STATUS:WHATEVER\nATTENDEE;ROLE=NOBODY;X-Q=\"a:b;c\":mailto:a@b\n"
                       "BEGIN:X-THING\nX_A:1\nEND:X-THING\n"
                       "END:VEVENT\nEND:VCALENDAR";
    char *err = NULL;
    CHECK(parse(text, &i, &err) == 0);
    if (err)
        printf("# %s\n", err);
    CHECK_STR(i.uid, "tol-1");
    CHECK(i.start == T_UTC && !i.recurs); /* the unreadable RRULE is not a rule */
    ical_info_free(&i);
    free(err);

    /* any amount of white space after a component name */
    struct dynbuf b;
    dynbuf_init(&b, 4096);
    dynbuf_adds(&b, "BEGIN:VCALENDAR\nBEGIN:VEVENT");
    for (int k = 0; k < 500; k++)
        dynbuf_addc(&b, k % 2 ? ' ' : '\t');
    dynbuf_adds(&b, "\nEND:VEVENT \nEND:VCALENDAR\n");
    CHECK(parse_n(b.data, b.len, &i, NULL) == 0 && i.kind == ICAL_ITEM_EVENT);
    ical_info_free(&i);
    size_t n;
    char *r = ical_with_uid(b.data, b.len, "w", &n);
    CHECK(r && n == b.len + 6 && strstr(r, "\t \nUID:w\nEND:VEVENT"));
    free(r);
    dynbuf_free(&b);
}

/* A SUMMARY of a megabyte, folded the RFC way, and one not folded at all. */
static void
test_big_summary(void)
{
    size_t n = 1 << 20;
    struct dynbuf b;
    struct ical_info i;
    dynbuf_init(&b, 4 << 20);
    dynbuf_adds(&b, "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:big\r\n");
    struct dynbuf line;
    dynbuf_init(&line, 2 << 20);
    dynbuf_adds(&line, "SUMMARY:");
    for (size_t k = 0; k < n; k++)
        dynbuf_addc(&line, (char)('a' + k % 26));
    CHECK(ical_fold(&b, line.data, line.len, "\r\n") == 0);
    dynbuf_adds(&b, "END:VEVENT\r\nEND:VCALENDAR\r\n");
    CHECK(parse_n(b.data, b.len, &i, NULL) == 0);
    CHECK(i.summary && strlen(i.summary) == n &&
          memcmp(i.summary, line.data + 8, n) == 0);
    ical_info_free(&i);
    size_t outlen;
    char *r = ical_with_uid(b.data, b.len, "x", &outlen);
    CHECK(r && outlen == b.len && memcmp(r, b.data, b.len) == 0);
    free(r);

    dynbuf_reset(&b);
    dynbuf_adds(&b, "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n");
    dynbuf_add(&b, line.data, line.len);
    dynbuf_adds(&b, "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n");
    CHECK(parse_n(b.data, b.len, &i, NULL) == 0);
    CHECK(i.summary && strlen(i.summary) == n && i.uid_missing);
    ical_info_free(&i);
    r = ical_with_uid(b.data, b.len, "x", &outlen);
    CHECK(r && outlen == b.len + strlen("UID:x\r\n"));
    free(r);
    dynbuf_free(&line);

    /* many tiny lines cost libical far more than their bytes: capped */
    for (int extra = 0; extra <= 1; extra++) {
        dynbuf_reset(&b);
        dynbuf_adds(&b, "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n");
        for (int k = 0; k < ICAL_LINES_MAX - 5 + extra; k++)
            dynbuf_adds(&b, "X-A:1\r\n");
        dynbuf_adds(&b, "END:VEVENT\r\nEND:VCALENDAR\r\n");
        char *e = NULL;
        CHECK(parse_n(b.data, b.len, &i, &e) == (extra ? -1 : 0));
        CHECK(extra ? e && strstr(e, "more than 20000 lines") : e == NULL);
        if (!extra)
            ical_info_free(&i);
        free(e);
    }

    /* past the cap: refused before libical sees it */
    char *huge = malloc(ICAL_SIZE_MAX + 1);
    memset(huge, ' ', ICAL_SIZE_MAX + 1);
    memcpy(huge, "BEGIN:VCALENDAR", 15);
    char *err = NULL;
    CHECK(ical_parse(huge, ICAL_SIZE_MAX + 1, &i, &err) == -1);
    CHECK(err && strstr(err, "larger than 16 MiB"));
    free(err);
    free(huge);
    dynbuf_free(&b);
}

static void
test_non_ascii(void)
{
    struct ical_info i;
    set_tz("UTC");
    /* a fold in the middle of a UTF-8 sequence (allowed: RFC 5545 3.1) */
    const char *text =
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:\xe6\x97\xa5\xe6\x9c\xac\r\n"
        "SUMMARY:Gr\xc3\r\n \xbc\xc3\x9f"
        "e aus Z\xc3\xbcrich \xf0\x9f\x98"
        "\r\n\t\x80\r\nDTSTART:20251124T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    CHECK(parse(text, &i, NULL) == 0);
    CHECK_STR(i.summary, "Grüße aus Zürich 😀");
    CHECK_STR(i.uid, "日本");
    ical_info_free(&i);
}

/* As Xandikos 0.2.8 returned rec.ics after a PUT: properties reordered,
 * RRULE parts reordered. */
static const char xandikos_rec[] = "BEGIN:VCALENDAR\r\n"
                                   "VERSION:2.0\r\n"
                                   "PRODID:-//mailfs test//EN\r\n"
                                   "BEGIN:VTIMEZONE\r\n"
                                   "TZID:Europe/Berlin\r\n"
                                   "BEGIN:DAYLIGHT\r\n"
                                   "DTSTART:19700329T020000\r\n"
                                   "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\n"
                                   "TZNAME:CEST\r\n"
                                   "TZOFFSETFROM:+0100\r\n"
                                   "TZOFFSETTO:+0200\r\n"
                                   "END:DAYLIGHT\r\n"
                                   "BEGIN:STANDARD\r\n"
                                   "DTSTART:19701025T030000\r\n"
                                   "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\n"
                                   "TZNAME:CET\r\n"
                                   "TZOFFSETFROM:+0200\r\n"
                                   "TZOFFSETTO:+0100\r\n"
                                   "END:STANDARD\r\n"
                                   "END:VTIMEZONE\r\n"
                                   "BEGIN:VEVENT\r\n"
                                   "SUMMARY:Weekly stand-up\r\n"
                                   "DTSTART;TZID=Europe/Berlin:20251103T093000\r\n"
                                   "DTEND;TZID=Europe/Berlin:20251103T094500\r\n"
                                   "DTSTAMP:20251101T120000Z\r\n"
                                   "UID:weekly-standup-1@example.com\r\n"
                                   "RRULE:FREQ=WEEKLY;BYDAY=MO\r\n"
                                   "X-MOZ-GENERATION:3\r\n"
                                   "END:VEVENT\r\n"
                                   "BEGIN:VEVENT\r\n"
                                   "SUMMARY:Weekly stand-up (late)\r\n"
                                   "DTSTART;TZID=Europe/Berlin:20251110T100000\r\n"
                                   "DTEND;TZID=Europe/Berlin:20251110T101500\r\n"
                                   "DTSTAMP:20251101T120000Z\r\n"
                                   "UID:weekly-standup-1@example.com\r\n"
                                   "RECURRENCE-ID;TZID=Europe/Berlin:20251110T093000\r\n"
                                   "END:VEVENT\r\n"
                                   "BEGIN:VEVENT\r\n"
                                   "SUMMARY:Weekly stand-up\r\n"
                                   "DTSTART;TZID=Europe/Berlin:20251117T093000\r\n"
                                   "DTEND;TZID=Europe/Berlin:20251117T094500\r\n"
                                   "DTSTAMP:20251101T120000Z\r\n"
                                   "UID:weekly-standup-1@example.com\r\n"
                                   "RECURRENCE-ID;TZID=Europe/Berlin:20251117T093000\r\n"
                                   "LOCATION:Room 4\\, second floor\r\n"
                                   "END:VEVENT\r\n"
                                   "END:VCALENDAR\r\n";

/* As Radicale 3.1.8 returned long.ics: folded every 75 characters (not
 * octets), between characters. */
static const char radicale_long[] =
    "BEGIN:VCALENDAR\r\n"
    "VERSION:2.0\r\n"
    "PRODID:-//mailfs test//EN\r\n"
    "BEGIN:VEVENT\r\n"
    "UID:long-1@example.com\r\n"
    "DTSTART;VALUE=DATE:20251224\r\n"
    "DESCRIPTION:Zürich Grüße 日本語 Zürich Grüße 日本語 Zürich Gr\r\n"
    " üße 日本語 Zürich Grüße 日本語 Zürich Grüße 日本語 Züric\r\n"
    " h Grüße 日本語 Zürich Grüße 日本語 Zürich Grüße 日本語 Z\r\n"
    " ürich Grüße 日本語 Zürich Grüße 日本語 Zürich Grüße 日本\r\n"
    " 語 Zürich Grüße 日本語 end\r\n"
    "DTSTAMP:20251101T120000Z\r\n"
    "SUMMARY:Heiligabend – Grüße\r\n"
    "END:VEVENT\r\n"
    "END:VCALENDAR\r\n";

static void
test_servers(void)
{
    struct ical_info i;
    set_tz("UTC");
    CHECK(parse(xandikos_rec, &i, NULL) == 0);
    CHECK(i.kind == ICAL_ITEM_EVENT);
    CHECK_STR(i.uid, "weekly-standup-1@example.com");
    CHECK_STR(i.summary, "Weekly stand-up");
    CHECK(i.start == T_BERLIN && i.recurs && i.overrides == 2);
    CHECK(i.modified == T_DTSTAMP);
    ical_info_free(&i);
    size_t n;
    char *r = with_uid(xandikos_rec, "x", &n);
    CHECK(r && n == strlen(xandikos_rec) && strcmp(r, xandikos_rec) == 0);
    free(r);

    set_tz("CET-1");
    CHECK(parse(radicale_long, &i, NULL) == 0);
    CHECK_STR(i.summary, "Heiligabend – Grüße");
    CHECK(i.start == INT64_C(1766530800) && i.all_day);
    ical_info_free(&i);
    set_tz("UTC");
}

static void
test_cursor_and_fold(void)
{
    struct ical_cursor c;
    struct ical_line l;
    struct dynbuf v;
    const char *text =
        "BEGIN:VCALENDAR\r\nX-LONG-NA\r\n ME;P=\"a:b\";Q=c:val\r\n ue\\, x\n"
        "\n\nsummary:s\nEND:VCALENDAR";
    dynbuf_init(&v, 1024);
    ical_cursor_init(&c, text, strlen(text));
    CHECK(ical_cursor_next(&c, &l) == 1 && ical_line_is(&l, "begin") && l.crlf);
    CHECK(l.lineno == 1 && l.start == 0 && l.end == 17);
    CHECK(ical_cursor_next(&c, &l) == 1);
    CHECK(ical_line_is(&l, "X-LONG-NAME") && l.lineno == 2 && !l.crlf);
    CHECK(ical_line_value(&c, &l, &v) == 0);
    CHECK_STR(v.data, "value\\, x");
    dynbuf_reset(&v);
    CHECK(ical_line_unfold(&c, &l, &v) == 0);
    CHECK_STR(v.data, "X-LONG-NAME;P=\"a:b\";Q=c:value\\, x");
    CHECK(ical_cursor_next(&c, &l) == 1 && ical_line_is(&l, "SUMMARY") && l.lineno == 7);
    CHECK(ical_cursor_next(&c, &l) == 1 && ical_line_is(&l, "END") &&
          l.end == strlen(text));
    CHECK(ical_cursor_next(&c, &l) == 0);
    CHECK(ical_cursor_next(&c, &l) == 0);

    /* a name too long to keep is still matched by length only */
    char longname[200];
    memset(longname, 'X', 150);
    strcpy(longname + 150, ":v\r\n");
    ical_cursor_init(&c, longname, strlen(longname));
    CHECK(ical_cursor_next(&c, &l) == 1 && l.name_len == 150 &&
          !ical_line_is(&l, longname));

    /* folding: 75 octets per line, continuation lines start with a space,
     * UTF-8 never split; unfolding gives the line back */
    const char *samples[] = {"", "short", "x", NULL, NULL};
    char a[400], u[400];
    memset(a, 'a', 300);
    a[300] = '\0';
    u[0] = '\0';
    for (int k = 0; k < 33; k++)
        strcat(u, "日本😀"); /* 3 + 3 + 4 bytes */
    samples[3] = a;
    samples[4] = u;
    for (size_t s = 0; s < 5; s++) {
        struct dynbuf f;
        dynbuf_init(&f, 4096);
        CHECK(ical_fold(&f, samples[s], strlen(samples[s]), "\r\n") == 0);
        for (const char *p = f.data; *p;) {
            const char *e = strstr(p, "\r\n");
            CHECK(e && e - p <= 75);
            if (!e)
                break;
            CHECK(e == p || ((unsigned char)e[0 - 1] & 0xC0) != 0xC0);
            CHECK(((unsigned char)p[p == f.data ? 0 : 1] & 0xC0) != 0x80 || !*p);
            p = e + 2;
        }
        /* unfold it again through the cursor, as a value */
        struct dynbuf line;
        dynbuf_init(&line, 8192);
        dynbuf_adds(&line, "X:");
        dynbuf_add(&line, f.data, f.len);
        ical_cursor_init(&c, line.data, line.len);
        dynbuf_reset(&v);
        if (ical_cursor_next(&c, &l) == 1) {
            CHECK(ical_line_value(&c, &l, &v) == 0);
            CHECK_STR(v.data ? v.data : "", samples[s]);
        } else {
            CHECK(!*samples[s]);
        }
        dynbuf_free(&line);
        dynbuf_free(&f);
    }
    dynbuf_free(&v);
    CHECK(ical_uid_ok("abc") && !ical_uid_ok("") && !ical_uid_ok(NULL));
}

/* libical must never abort or print: errors are only ever returned. */
static void
test_quiet(void)
{
    static const char *const hostile[] = {
        /* properties whose value type libical 3.0 cannot read print a
         * warning whatever the error settings (found by fuzzing) */
        "BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:a\r\nTASK-MODE:20251117T093000\r\n"
        "X-LIC-CLASS:x\r\ntask-mode;X-P=1:y\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
        "BEGIN:VCALENDAR\r\nBEGIN:VJOURNAL\r\nTASK-MODE:x\r\nDESCRIPTION;X-A;=b:c\r\n"
        "SUMMARY;VALUE=BINARY;ENCODING=BASE64:!!\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n",
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART;TZID=:2025\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n",
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nRRULE:FREQ=SECONDLY;COUNT=-1;"
        "BYDAY=999MO\r\nDTSTART;VALUE=PERIOD:20250101T000000Z/PT1H\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n",
        "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:x\r\nBEGIN:STANDARD\r\n"
        "TZOFFSETTO:+9999\r\nDTSTART:00000000T000000\r\nRRULE:FREQ=YEARLY;BYMONTH=13\r\n"
        "END:STANDARD\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:a\r\n"
        "DTSTART;TZID=x:99991231T235959\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nATTENDEE;=x;;;:\r\nX-;:\r\n"
        "DESCRIPTION;VALUE=BINARY;ENCODING=BASE64:!!!\r\nGEO:x;y\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n",
    };
    fflush(stderr);
    FILE *tmp = tmpfile();
    int saved = dup(2);
    CHECK(tmp && saved >= 0);
    if (!tmp || saved < 0)
        return;
    dup2(fileno(tmp), 2);
    for (size_t k = 0; k < sizeof(hostile) / sizeof(hostile[0]); k++) {
        struct ical_info i;
        char *err = NULL;
        if (parse(hostile[k], &i, &err) == 0)
            ical_info_free(&i);
        free(err);
        size_t n;
        free(with_uid(hostile[k], "x", &n));
        size_t len = strlen(hostile[k]);
        char *t = note_text(hostile[k], len, &n);
        if (t)
            free(note_update(hostile[k], len, NULL, "new", 3, "x", &n));
        free(t);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    CHECK(ftell(tmp) == 0 && fseek(tmp, 0, SEEK_END) == 0 && ftell(tmp) == 0);
    fclose(tmp);
    CHECK(icalerror_get_errors_are_fatal() == 0);
}

int
main(void)
{
    RUN(test_event_tzid);
    RUN(test_event_all_day_floating_utc);
    RUN(test_recurring_overrides);
    RUN(test_todo_and_journal);
    RUN(test_missing_uid);
    RUN(test_refused);
    RUN(test_tolerated);
    RUN(test_big_summary);
    RUN(test_non_ascii);
    RUN(test_servers);
    RUN(test_cursor_and_fold);
    RUN(test_quiet);
    /* libical caches the system zones it loaded for the process's life */
    icaltimezone_free_builtin_timezones();
    return check_done();
}
