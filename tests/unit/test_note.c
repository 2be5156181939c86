/* Unit tests for formats/note.c: a VJOURNAL's text as a file and back, with
 * every property a text file cannot show kept byte for byte. */
#include "formats/note.h"
#include "common/dynbuf.h"
#include "common/utf8.h"
#include "formats/ical.h"
#include "tests/unit/check.h"

#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* As Radicale 3.1.8 returned note.ics after a PUT. */
static const char radicale_note[] =
    "BEGIN:VCALENDAR\r\n"
    "VERSION:2.0\r\n"
    "PRODID:-//mailfs test//EN\r\n"
    "BEGIN:VJOURNAL\r\n"
    "ATTACH;FMTTYPE=text/plain:https://example.com/list.txt\r\n"
    "CATEGORIES:home,shopping\r\n"
    "CLASS:PRIVATE\r\n"
    "DESCRIPTION;LANGUAGE=en:Milk\\, eggs\\nBread\\; butter\\nGrüße\r\n"
    "DTSTAMP:20251101T120000Z\r\n"
    "LAST-MODIFIED:20251101T120000Z\r\n"
    "SUMMARY:Groceries\r\n"
    "UID:note-1@example.com\r\n"
    "X-NEXTCLOUD-FOO;X-P=1:keep me\r\n"
    "END:VJOURNAL\r\n"
    "END:VCALENDAR\r\n";

/* s with its folds removed, for looking for whole lines in it. */
static char *
unfold(const char *s)
{
    char *r = strdup(s ? s : ""), *w = r;
    for (const char *p = r; *p;) {
        if ((p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t')))
            p += 3;
        else if (p[0] == '\n' && (p[1] == ' ' || p[1] == '\t'))
            p += 2;
        else
            *w++ = *p++;
    }
    *w = '\0';
    return r;
}

static char *
text_of(const char *ics, size_t *n)
{
    size_t len = strlen(ics);
    char *p = calloc(1, len ? len : 1);
    memcpy(p, ics, len);
    char *t = note_text(p, len, n);
    free(p);
    return t;
}

static char *
update(const char *old, const char *title, const char *text, size_t *outlen)
{
    return note_update(old, old ? strlen(old) : 0, title, text, text ? strlen(text) : 0,
                       "new-uid", outlen);
}

/* Every line of `a` that starts with one of the names in `names` ("X-FOO;",
 * "CLASS:" ...) is in `b` too, byte for byte. */
static int
lines_kept(const char *a, const char *b, const char *const *names, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        const char *p = strstr(a, names[k]);
        if (!p)
            return 0;
        const char *e = strstr(p, "\r\n");
        char *line = strndup(p, (size_t)(e - p) + 2);
        int found = strstr(b, line) != NULL;
        if (!found)
            printf("# lost: %s", line);
        free(line);
        if (!found)
            return 0;
    }
    return 1;
}

static void
test_text(void)
{
    size_t n;
    char *t = text_of(radicale_note, &n);
    CHECK_STR(t, "Milk, eggs\nBread; butter\nGrüße");
    CHECK(t && n == strlen(t));
    free(t);
    char *title = note_title(radicale_note, strlen(radicale_note));
    CHECK_STR(title, "Groceries");
    free(title);

    /* CR LF and lone CR in a DESCRIPTION become LF; Latin-1 becomes UTF-8 */
    t = text_of("BEGIN:VCALENDAR\nBEGIN:VJOURNAL\nUID:x\n"
                "DESCRIPTION:a\r\n \\r\\nb\\rc caf\xe9\nEND:VJOURNAL\nEND:VCALENDAR\n",
                &n);
    CHECK(t != NULL);
    CHECK(t && utf8_valid(t, n));
    free(t);
    /* no DESCRIPTION: empty text; no SUMMARY: no title */
    const char *bare =
        "BEGIN:VCALENDAR\nBEGIN:VJOURNAL\nUID:x\nEND:VJOURNAL\nEND:VCALENDAR\n";
    t = text_of(bare, &n);
    CHECK_STR(t, "");
    CHECK(n == 0);
    free(t);
    CHECK(note_title(bare, strlen(bare)) == NULL);
    /* not a note */
    const char *ev = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nSUMMARY:s\nEND:VEVENT\n"
                     "END:VCALENDAR\n";
    CHECK(text_of(ev, &n) == NULL);
    CHECK(note_title(ev, strlen(ev)) == NULL);
    CHECK(text_of("garbage", &n) == NULL);
    CHECK(note_title("", 0) == NULL);
}

static void
test_round_trip_keeps_properties(void)
{
    static const char *const kept[] = {
        "BEGIN:VCALENDAR\r\n", "PRODID:",  "ATTACH;", "CATEGORIES:", "CLASS:", "UID:",
        "X-NEXTCLOUD-FOO;",    "SUMMARY:",
    };
    size_t n;
    const char *text = "Milk, eggs\nBread; butter\nGrüße\nand cheese \\o/\n";
    char *r = update(radicale_note, NULL, text, &n);
    CHECK(r && n == strlen(r));
    if (!r)
        return;
    CHECK(lines_kept(radicale_note, r, kept, sizeof(kept) / sizeof(kept[0])));
    /* the new text, with its parameter, escaped (and folded) */
    char *u = unfold(r);
    CHECK(strstr(u,
                 "DESCRIPTION;LANGUAGE=en:Milk\\, eggs\\nBread\\; butter\\nGrüße\\nand "
                 "cheese \\\\o/\\n\r\n"));
    free(u);
    /* stamps bumped */
    CHECK(!strstr(r, "DTSTAMP:20251101T120000Z"));
    CHECK(!strstr(r, "LAST-MODIFIED:20251101T120000Z"));
    CHECK(strstr(r, "\r\nDTSTAMP:") && strstr(r, "\r\nLAST-MODIFIED:"));
    /* the order of lines stays */
    CHECK(strstr(r, "CLASS:PRIVATE\r\nDESCRIPTION;") &&
          strstr(r, "Z\r\nSUMMARY:Groceries\r\n"));
    /* and reads back */
    char *t = text_of(r, &n);
    CHECK_STR(t, text);
    free(t);
    struct ical_info i;
    CHECK(ical_parse(r, strlen(r), &i, NULL) == 0);
    CHECK_STR(i.uid, "note-1@example.com");
    CHECK(i.modified > INT64_C(1761998400));
    ical_info_free(&i);

    /* nothing changed: the same bytes */
    char *same = update(r, "Groceries", text, &n);
    CHECK(same && strcmp(same, r) == 0 && n == strlen(r));
    free(same);
    same = update(r, NULL, text, &n);
    CHECK(same && strcmp(same, r) == 0);
    free(same);
    /* CR LF written by the user is the same text */
    same = update(r, "", "Milk, eggs\r\nBread; butter\r\nGrüße\rand cheese \\o/\r\n", &n);
    CHECK(same && strcmp(same, r) == 0);
    free(same);
    free(r);

    /* the text as written comes back exactly: any escapes, no final newline
     * added or taken */
    const char *texts[] = {"", "x", "\n", "a\n\nb\n\n", "tab\there", ",;\\:\"", "é日😀"};
    for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
        r = update(radicale_note, NULL, texts[k], &n);
        t = r ? text_of(r, &n) : NULL;
        CHECK_STR(t, texts[k]);
        free(t);
        free(r);
    }
}

static void
test_title_change(void)
{
    size_t n;
    char *r = update(radicale_note, "Shopping / weekend",
                     "Milk, eggs\nBread; butter\nGrüße", &n);
    CHECK(r != NULL);
    if (!r)
        return;
    /* the text did not change: its line is untouched */
    CHECK(
        strstr(r, "DESCRIPTION;LANGUAGE=en:Milk\\, eggs\\nBread\\; butter\\nGrüße\r\n"));
    CHECK(strstr(r, "SUMMARY:Shopping / weekend\r\n") && !strstr(r, "Groceries"));
    char *title = note_title(r, n);
    CHECK_STR(title, "Shopping / weekend");
    free(title);
    free(r);

    /* a SUMMARY with parameters keeps them; one that is missing is added */
    const char *lf = "BEGIN:VCALENDAR\nBEGIN:VJOURNAL\nUID:x\n"
                     "SUMMARY;LANGUAGE=de;X-Y=\"a:b\":Alt\nEND:VJOURNAL\nEND:VCALENDAR\n";
    r = update(lf, "Neu, ja", "", &n);
    CHECK(r && strstr(r, "\nSUMMARY;LANGUAGE=de;X-Y=\"a:b\":Neu\\, ja\n"));
    CHECK(r && !strstr(r, "\r")); /* an LF file stays LF */
    free(r);
    r = update("BEGIN:VCALENDAR\nBEGIN:VJOURNAL\nUID:x\nEND:VJOURNAL\nEND:VCALENDAR\n",
               "Title", "", &n);
    CHECK(r && strstr(r, "\nSUMMARY:Title\n"));
    title = r ? note_title(r, n) : NULL;
    CHECK_STR(title, "Title");
    free(title);
    free(r);
}

static void
test_new_note(void)
{
    size_t n;
    char *r = update(NULL, "Ideas", "one\ntwo, three", &n);
    CHECK(r && n == strlen(r));
    if (!r)
        return;
    struct ical_info i;
    CHECK(ical_parse(r, n, &i, NULL) == 0);
    CHECK(i.kind == ICAL_ITEM_JOURNAL);
    CHECK_STR(i.uid, "new-uid");
    CHECK_STR(i.summary, "Ideas");
    CHECK_STR(i.description, "one\ntwo, three");
    CHECK(i.modified != ICAL_NO_TIME); /* DTSTAMP */
    ical_info_free(&i);
    CHECK(strncmp(r, "BEGIN:VCALENDAR\r\n", 17) == 0 &&
          strstr(r, "\r\nVERSION:2.0\r\n") && strstr(r, "\r\nPRODID:"));
    free(r);

    /* no title, empty text: no SUMMARY, no DESCRIPTION */
    r = update(NULL, NULL, "", &n);
    CHECK(r && !strstr(r, "SUMMARY") && !strstr(r, "DESCRIPTION") &&
          strstr(r, "UID:new-uid"));
    char *t = r ? text_of(r, &n) : NULL;
    CHECK_STR(t, "");
    free(t);
    free(r);

    /* a UID is needed and must be usable */
    const char *x = "x";
    CHECK(note_update(NULL, 0, "t", x, 1, NULL, &n) == NULL);
    CHECK(note_update(NULL, 0, "t", x, 1, "", &n) == NULL);
    CHECK(note_update(NULL, 0, "t", x, 1, "a\nb", &n) == NULL);

    /* a megabyte of text, non-ASCII: folded between characters */
    struct dynbuf b;
    dynbuf_init(&b, 4 << 20);
    for (int k = 0; k < (1 << 20) / 8; k++)
        dynbuf_adds(&b, k % 100 == 99 ? "\n" : "é日a😀");
    r = note_update(NULL, 0, "Big", b.data, b.len, "u", &n);
    CHECK(r != NULL);
    t = r ? text_of(r, &n) : NULL;
    CHECK(t && n == b.len && memcmp(t, b.data, n) == 0);
    free(t);
    /* the same through an update */
    char *r2 = r ? note_update(radicale_note, strlen(radicale_note), NULL, b.data, b.len,
                               "u", &n)
                 : NULL;
    t = r2 ? text_of(r2, &n) : NULL;
    CHECK(t && n == b.len && memcmp(t, b.data, n) == 0);
    free(t);
    free(r2);
    free(r);
    dynbuf_free(&b);
}

static void
test_text_cleaning(void)
{
    size_t n;
    /* CR LF and lone CR from the user become LF; Latin-1 becomes UTF-8 */
    const char in[] = "a\r\nb\rc caf\xe9 \xc3\xa9";
    char *r = note_update(NULL, 0, NULL, in, sizeof(in) - 1, "u", &n);
    char *t = r ? text_of(r, &n) : NULL;
    CHECK_STR(t, "a\nb\nc café é");
    free(t);
    free(r);
    /* NUL: refused */
    const char nul[] = "a\0b";
    CHECK(note_update(NULL, 0, NULL, nul, 3, "u", &n) == NULL);
    CHECK(note_update(radicale_note, strlen(radicale_note), NULL, nul, 3, "u", &n) ==
          NULL);
    CHECK(note_update(NULL, 0, NULL, NULL, 3, "u", &n) == NULL);
    /* NULL text of length 0 is empty */
    r = note_update(NULL, 0, "t", NULL, 0, "u", &n);
    CHECK(r && !strstr(r, "DESCRIPTION"));
    free(r);
}

static void
test_old_note_shapes(void)
{
    size_t n;
    /* an override before its master: the master is the note */
    const char *rec =
        "BEGIN:VCALENDAR\r\nBEGIN:VJOURNAL\r\nUID:r\r\n"
        "RECURRENCE-ID:20251110T000000Z\r\nDESCRIPTION:override\r\n"
        "END:VJOURNAL\r\nBEGIN:VJOURNAL\r\nUID:r\r\nDTSTART:20251103T000000Z\r\n"
        "RRULE:FREQ=WEEKLY\r\nDESCRIPTION:master\r\nEND:VJOURNAL\r\n"
        "END:VCALENDAR\r\n";
    char *t = text_of(rec, &n);
    CHECK_STR(t, "master");
    free(t);
    char *r = update(rec, NULL, "edited", &n);
    CHECK(r && strstr(r, "DESCRIPTION:override\r\n") &&
          strstr(r, "DESCRIPTION:edited\r\n"));
    CHECK(r && strstr(r, "RRULE:FREQ=WEEKLY\r\nDESCRIPTION:edited\r\n"));
    t = r ? text_of(r, &n) : NULL;
    CHECK_STR(t, "edited");
    free(t);
    free(r);

    /* missing lines are added before END:VJOURNAL; a VTIMEZONE is not the
     * note; the second DESCRIPTION stays */
    const char *sparse = "BEGIN:VCALENDAR\nBEGIN:VTIMEZONE\nTZID:Z\nBEGIN:STANDARD\n"
                         "TZOFFSETFROM:+0000\nTZOFFSETTO:+0000\nDTSTART:19700101T000000\n"
                         "END:STANDARD\nEND:VTIMEZONE\nBEGIN:VJOURNAL\nUID:s\n"
                         "END:VJOURNAL\nEND:VCALENDAR\n";
    r = update(sparse, "T", "body", &n);
    CHECK(r && strstr(r, "\nUID:s\nDESCRIPTION:body\nSUMMARY:T\nDTSTAMP:"));
    CHECK(r && strstr(r, "\nLAST-MODIFIED:") && strstr(r, "Z\nEND:VJOURNAL\n"));
    CHECK(r && strstr(r, "BEGIN:VTIMEZONE\nTZID:Z\nBEGIN:STANDARD\n"));
    free(r);
    const char *two = "BEGIN:VCALENDAR\nBEGIN:VJOURNAL\nUID:s\nDESCRIPTION:first\n"
                      "DESCRIPTION:second\nEND:VJOURNAL\nEND:VCALENDAR\n";
    r = update(two, NULL, "new", &n);
    CHECK(r && strstr(r, "\nDESCRIPTION:new\nDESCRIPTION:second\n"));
    free(r);

    /* empty text removes DESCRIPTION; ALTREP and X-ALT-DESC follow the text */
    const char *alt = "BEGIN:VCALENDAR\r\nBEGIN:VJOURNAL\r\nUID:a\r\n"
                      "DESCRIPTION;ALTREP=\"cid:x\";LANGUAGE=en:old\r\n"
                      "X-ALT-DESC;FMTTYPE=text/html:<b>old</b>\r\n"
                      "X-OTHER:keep\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n";
    r = update(alt, NULL, "", &n);
    CHECK(r && !strstr(r, "DESCRIPTION") && !strstr(r, "X-ALT-DESC") &&
          strstr(r, "X-OTHER:keep\r\n"));
    free(r);
    r = update(alt, NULL, "new", &n);
    CHECK(r && strstr(r, "\r\nDESCRIPTION;LANGUAGE=en:new\r\n") && !strstr(r, "ALTREP") &&
          !strstr(r, "X-ALT-DESC"));
    free(r);
    r = update(alt, "renamed", "old", &n);
    CHECK(r && strstr(r, "DESCRIPTION;ALTREP=\"cid:x\";LANGUAGE=en:old\r\n") &&
          strstr(r, "X-ALT-DESC;FMTTYPE=text/html:<b>old</b>\r\n"));
    free(r);

    /* a long DESCRIPTION line folded by another client is replaced whole */
    const char *folded =
        "BEGIN:VCALENDAR\r\nBEGIN:VJOURNAL\r\nUID:f\r\n"
        "DESCRIPTION:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
        " bbbbbbbbbbbbbbbbb\r\n\tccccc\r\nX-AFTER:1\r\nEND:VJOURNAL\r\n"
        "END:VCALENDAR\r\n";
    r = update(folded, NULL, "short", &n);
    CHECK(r && strstr(r, "\r\nDESCRIPTION:short\r\nX-AFTER:1\r\n") && !strstr(r, "bbb"));
    free(r);

    /* a BEGIN line with much trailing white space (found by fuzzing) */
    struct dynbuf sp;
    dynbuf_init(&sp, 4096);
    dynbuf_adds(&sp, "BEGIN:VCALENDAR\r\nBEGIN:VJOURNAL");
    for (int k = 0; k < 300; k++)
        dynbuf_addc(&sp, ' ');
    dynbuf_adds(&sp, "\r\nUID:w\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n");
    r = update(sp.data, "T", "text", &n);
    CHECK(r && strncmp(r, sp.data, sp.len - 30) == 0 &&
          strstr(r, "UID:w\r\nDESCRIPTION:text\r\nSUMMARY:T\r\n"));
    t = r ? text_of(r, &n) : NULL;
    CHECK_STR(t, "text");
    free(t);
    free(r);
    dynbuf_free(&sp);

    /* not a note, or not iCalendar */
    const char *ev = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nEND:VEVENT\nEND:VCALENDAR\n";
    CHECK(update(ev, NULL, "x", &n) == NULL);
    CHECK(update("garbage", NULL, "x", &n) == NULL);
}

int
main(void)
{
    RUN(test_text);
    RUN(test_round_trip_keeps_properties);
    RUN(test_title_change);
    RUN(test_new_note);
    RUN(test_text_cleaning);
    RUN(test_old_note_shapes);
    icaltimezone_free_builtin_timezones();
    return check_done();
}
