/* Unit tests for store/names.c: safe, readable names from hostile subjects
 * and folder names. */
#include "store/names.h"
#include "tests/unit/check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 2025-11-24 10:00:00 UTC */
#define T0 INT64_C(1763978400)

/* Decode one UTF-8 character (strictly); 0 when invalid. */
static size_t
next_cp(const unsigned char *p, uint32_t *cp)
{
    unsigned c = p[0], need;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF)
        need = 1, v = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        need = 2, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 3, v = c & 0x07, min = 0x10000;
    else
        return 0;
    for (unsigned i = 1; i <= need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return need + 1;
}

/* Every name property the contract promises (DESIGN.md section 2). */
static int
name_ok(const char *s)
{
    if (!s || strlen(s) > NAMES_MAX || !strcmp(s, "") || !strcmp(s, ".") ||
        !strcmp(s, ".."))
        return 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        size_t l = next_cp(p, &cp);
        if (!l || cp == '/' || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) ||
            (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069))
            return 0;
        p += l;
    }
    return 1;
}

static int
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static char *
sanitize(const char *s, size_t max)
{
    /* an exact-size copy: the sanitizer catches reads past len */
    size_t n = strlen(s);
    char *p = malloc(n ? n : 1);
    memcpy(p, s, n);
    char *r = names_sanitize(p, n, max);
    free(p);
    return r;
}

#define CHECK_SAN(in, want)                                                              \
    do {                                                                                 \
        char *got_ = sanitize(in, NAMES_MAX);                                            \
        CHECK_STR(got_, want);                                                           \
        CHECK(name_ok(got_));                                                            \
        free(got_);                                                                      \
    } while (0)

#define FFFD "\xef\xbf\xbd"

static void
test_sanitize_basic(void)
{
    CHECK_SAN("Inbox", "Inbox");
    CHECK_SAN("Grüße 日本語 😀", "Grüße 日本語 😀");
    CHECK_SAN("a/b/c", "a／b／c");
    CHECK_SAN("/", "／");
    CHECK_SAN("", "_");
    CHECK_SAN(".", "._");
    CHECK_SAN("..", ".._");
    CHECK_SAN(" .. ", ".._");
    CHECK_SAN("...", "...");
    CHECK_SAN(".hidden", ".hidden");
    CHECK_SAN("   ", "_");
    CHECK_SAN("\t\r\n", "_");
    CHECK_SAN("  a   b\t\tc  ", "a b c");
    CHECK_SAN("a\tb\nc\rd", "a b c d");
    CHECK_SAN("a\x01\x1f\x7f"
              "b",
              "a b");
    CHECK_SAN("a\xc2\x85"
              "b\xc2\x9b"
              "c\xc2\x80",
              "a b c"); /* C1: NEL, CSI, PAD */
    CHECK_SAN("\xc2\xa0nbsp\xe3\x80\x80wide\xe2\x80\xa8sep\xc2\xa0", "nbsp wide sep");
    CHECK_SAN("\xc2\xa0\xe2\x80\x83", "_");

    /* NUL inside the given length is a control character, not the end */
    char *r = names_sanitize("a\0b", 3, NAMES_MAX);
    CHECK_STR(r, "a b");
    free(r);
    r = names_sanitize(NULL, 0, NAMES_MAX);
    CHECK_STR(r, "_");
    free(r);
    r = names_sanitize("abc", 2, NAMES_MAX);
    CHECK_STR(r, "ab");
    free(r);
}

static void
test_sanitize_invalid_utf8(void)
{
    CHECK_SAN("caf\xe9", "caf" FFFD);                   /* Latin-1 */
    CHECK_SAN("\xc0\xaf", FFFD FFFD);                   /* overlong "/" */
    CHECK_SAN("\xe0\x80\xaf", FFFD FFFD FFFD);          /* overlong "/" */
    CHECK_SAN("\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD); /* overlong "/" */
    CHECK_SAN("\xc0\x80", FFFD FFFD);                   /* overlong NUL */
    CHECK_SAN("\xed\xa0\x80", FFFD FFFD FFFD);          /* surrogate */
    CHECK_SAN("\xed\xbf\xbf", FFFD FFFD FFFD);          /* surrogate */
    CHECK_SAN("a\xe2\x82", "a" FFFD FFFD);              /* truncated */
    CHECK_SAN("\xf0\x9f\x98", FFFD FFFD FFFD);          /* truncated */
    CHECK_SAN("\x80x\xbf", FFFD "x" FFFD);              /* lone continuation */
    CHECK_SAN("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD); /* > U+10FFFF */
    CHECK_SAN("\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD);
    CHECK_SAN("\xfe\xff", FFFD FFFD);
    CHECK_SAN("\xef\xbf\xbe", "\xef\xbf\xbe");         /* U+FFFE is valid UTF-8 */
    CHECK_SAN("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
}

static void
test_sanitize_bidi(void)
{
    CHECK_SAN("evil\xe2\x80\xaelmth.eml", "evillmth.eml"); /* RLO */
    CHECK_SAN("a\xe2\x80\xaa"
              "b\xe2\x80\xab"
              "c\xe2\x80\xac"
              "d\xe2\x80\xad"
              "e",
              "abcde");
    CHECK_SAN("\xe2\x81\xa6"
              "a\xe2\x81\xa7"
              "b\xe2\x81\xa8"
              "c\xe2\x81\xa9",
              "abc"); /* isolates */
    CHECK_SAN("a\xe2\x80\x8e"
              "b\xe2\x80\x8f"
              "c\xd8\x9c"
              "d",
              "abcd"); /* LRM RLM ALM */
    CHECK_SAN("zero\xe2\x80\x8bwidth\xef\xbb\xbf\xe2\x81\xa0", "zerowidth");
    CHECK_SAN("\xe2\x80\xae", "_");
    CHECK_SAN("\xe2\x80\xae.\xe2\x80\xae.\xe2\x80\xae", ".._");
    CHECK_SAN(" \xe2\x80\xae a", "a");
    /* ZWJ sequences and ZWNJ stay */
    CHECK_SAN("👨‍👩‍👧", "👨‍👩‍👧");
    CHECK_SAN("\xd9\x85\xe2\x80\x8c\xd9\x8a", "\xd9\x85\xe2\x80\x8c\xd9\x8a");
}

static void
test_sanitize_cut(void)
{
    char buf[600];
    memset(buf, 'a', 300);
    buf[300] = '\0';
    char *r = sanitize(buf, NAMES_MAX);
    CHECK(strlen(r) == NAMES_MAX && name_ok(r));
    free(r);
    r = sanitize(buf, 1000); /* max above NAMES_MAX is clamped */
    CHECK(strlen(r) == NAMES_MAX);
    free(r);
    r = sanitize(buf, 10);
    CHECK(strlen(r) == 10);
    free(r);
    r = sanitize("..", 0); /* the smallest answer still fits */
    CHECK_STR(r, ".._");
    free(r);

    /* a 4-byte emoji exactly at the boundary: kept when it fits, dropped whole
     * when it does not */
    memset(buf, 'a', 251);
    strcpy(buf + 251, "😀");
    r = sanitize(buf, NAMES_MAX);
    CHECK(strlen(r) == 255 && ends_with(r, "😀") && name_ok(r));
    free(r);
    memset(buf, 'a', 252);
    strcpy(buf + 252, "😀");
    r = sanitize(buf, NAMES_MAX);
    CHECK(strlen(r) == 252 && name_ok(r));
    free(r);
    /* 3-byte characters never split */
    buf[0] = '\0';
    for (int i = 0; i < 100; i++)
        strcat(buf, "日");
    for (size_t max = 3; max < 300; max++) {
        r = sanitize(buf, max);
        CHECK(strlen(r) <= max && strlen(r) % 3 == 0 && name_ok(r));
        free(r);
    }
    /* a cut right after a space leaves no trailing space */
    memset(buf, 0, sizeof(buf));
    memset(buf, 'a', 254);
    buf[254] = ' ';
    buf[255] = 'b';
    r = sanitize(buf, NAMES_MAX);
    CHECK(strlen(r) == 254 && r[253] == 'a');
    free(r);
}

static void
set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

#define CHECK_ITEM(date, subj, ext, want)                                                \
    do {                                                                                 \
        char *got_ = names_item(date, subj, ext);                                        \
        CHECK_STR(got_, want);                                                           \
        CHECK(name_ok(got_));                                                            \
        free(got_);                                                                      \
    } while (0)

static void
test_item_basic(void)
{
    set_tz("UTC");
    CHECK_ITEM(T0, "Quarterly report", ".eml", "2025-11-24 10.00 Quarterly report.eml");
    CHECK_ITEM(T0 + 59, "x", ".ics", "2025-11-24 10.00 x.ics");
    CHECK_ITEM(0, "epoch", ".eml", "1970-01-01 00.00 epoch.eml");
    CHECK_ITEM(-1, "no date", ".eml", "0000-00-00 00.00 no date.eml");
    CHECK_ITEM(INT64_C(-143465400), "1965", ".eml", "0000-00-00 00.00 1965.eml");
    CHECK_ITEM(T0, NULL, ".eml", "2025-11-24 10.00 (no subject).eml");
    CHECK_ITEM(T0, "", ".eml", "2025-11-24 10.00 (no subject).eml");
    CHECK_ITEM(T0, " \t\r\n ", ".eml", "2025-11-24 10.00 (no subject).eml");
    CHECK_ITEM(T0, "\xe2\x80\xae\xe2\x80\x8b", ".eml",
               "2025-11-24 10.00 (no subject).eml");
    CHECK_ITEM(T0, "Re: a/b ../../etc/passwd", ".eml",
               "2025-11-24 10.00 Re: a／b ..／..／etc／passwd.eml");
    CHECK_ITEM(T0, ".", ".eml", "2025-11-24 10.00 ..eml");
    CHECK_ITEM(T0, "..", ".eml", "2025-11-24 10.00 ...eml");
    CHECK_ITEM(T0, "line\r\nbreak\x1b[31mred", ".eml",
               "2025-11-24 10.00 line break [31mred.eml");
    CHECK_ITEM(T0, "evil\xe2\x80\xaelmth.exe", ".eml",
               "2025-11-24 10.00 evillmth.exe.eml");
    CHECK_ITEM(T0, "caf\xe9", ".eml", "2025-11-24 10.00 caf" FFFD ".eml");
    /* the date is local time */
    set_tz("CET-1");
    CHECK_ITEM(T0, "x", ".eml", "2025-11-24 11.00 x.eml");
    set_tz("EST5");
    CHECK_ITEM(T0, "x", ".eml", "2025-11-24 05.00 x.eml");
    set_tz("UTC");
}

static void
test_item_length(void)
{
    char subj[2000];
    set_tz("UTC");
    /* "2025-11-24 10.00 " is 17 bytes and ".eml" 4: the subject gets 234 */
    memset(subj, 'a', 230);
    strcpy(subj + 230, "😀");
    char *r = names_item(T0, subj, ".eml");
    CHECK(strlen(r) == 255 && ends_with(r, "😀.eml") && name_ok(r));
    free(r);
    memset(subj, 'a', 231);
    strcpy(subj + 231, "😀");
    r = names_item(T0, subj, ".eml");
    CHECK(strlen(r) == 252 && ends_with(r, "a.eml") && name_ok(r));
    free(r);
    memset(subj, 'a', 233);
    strcpy(subj + 233, "😀😀");
    r = names_item(T0, subj, ".eml");
    CHECK(strlen(r) == 254 && ends_with(r, "a.eml") && name_ok(r));
    free(r);
    /* very long subjects of every width */
    const char *chars[] = {"a", "é", "日", "😀", " ", "\xff", "/", "\xe2\x80\xae"};
    for (size_t c = 0; c < sizeof(chars) / sizeof(chars[0]); c++) {
        subj[0] = '\0';
        while (strlen(subj) + strlen(chars[c]) < sizeof(subj))
            strcat(subj, chars[c]);
        r = names_item(T0, subj, ".eml");
        CHECK(name_ok(r) && ends_with(r, ".eml") && strlen(r) <= NAMES_MAX);
        CHECK(strlen(r) > NAMES_MAX - 4 || c >= 4);
        free(r);
    }
    /* a subject of a megabyte */
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    r = names_item(T0, big, ".vcf");
    CHECK(strlen(r) == NAMES_MAX && ends_with(r, "x.vcf"));
    free(r);
    free(big);
}

static void
test_variant(void)
{
    char *r = names_variant("Quarterly report.eml", 2);
    CHECK_STR(r, "Quarterly report (2).eml");
    free(r);
    r = names_variant("Calendar event.ics", 17);
    CHECK_STR(r, "Calendar event (17).ics");
    free(r);
    r = names_variant("Photo.EML", 3);
    CHECK_STR(r, "Photo (3).EML");
    free(r);
    r = names_variant("Team", 2);
    CHECK_STR(r, "Team (2)");
    free(r);
    r = names_variant("archive.tar.gz", 2);
    CHECK_STR(r, "archive.tar.gz (2)");
    free(r);
    r = names_variant(".eml", 2);
    CHECK_STR(r, "(2).eml");
    free(r);
    r = names_variant("x .eml", 2);
    CHECK_STR(r, "x (2).eml");
    free(r);
    r = names_variant("same.eml", 1);
    CHECK_STR(r, "same.eml");
    free(r);
    r = names_variant("x.eml", 4294967295u);
    CHECK_STR(r, "x (4294967295).eml");
    free(r);

    /* a 255-byte name stays within 255 bytes, ext intact, never split */
    char name[300];
    memset(name, 'a', 251);
    strcpy(name + 251, ".eml");
    r = names_variant(name, 2);
    CHECK(strlen(r) == NAMES_MAX && ends_with(r, "a (2).eml") && name_ok(r));
    free(r);
    r = names_variant(name, 4294967295u);
    CHECK(strlen(r) == NAMES_MAX && ends_with(r, " (4294967295).eml") && name_ok(r));
    free(r);
    name[0] = '\0';
    for (int i = 0; i < 83; i++)
        strcat(name, "日");
    strcat(name, ".txt"); /* 253 bytes */
    for (unsigned n = 2; n < 100000; n = n * 3 + 1) {
        r = names_variant(name, n);
        CHECK(strlen(r) <= NAMES_MAX && ends_with(r, ").txt") && name_ok(r));
        free(r);
    }
    memset(name, 'b', 255);
    name[255] = '\0';
    r = names_variant(name, 2);
    CHECK(strlen(r) == NAMES_MAX && ends_with(r, "b (2)"));
    free(r);
}

static void
test_has_item_ext(void)
{
    CHECK(names_has_item_ext("a.eml"));
    CHECK(names_has_item_ext("a.ics"));
    CHECK(names_has_item_ext("a.vcf"));
    CHECK(names_has_item_ext("a.txt"));
    CHECK(names_has_item_ext("A.TXT"));
    CHECK(names_has_item_ext(".eml"));
    CHECK(!names_has_item_ext("eml"));
    CHECK(!names_has_item_ext("a.emlx"));
    CHECK(!names_has_item_ext("a.pdf"));
    CHECK(!names_has_item_ext("a_eml"));
    CHECK(!names_has_item_ext(""));
}

static void
test_folder(void)
{
    char *r = names_folder("Archive", 7);
    CHECK_STR(r, "Archive");
    free(r);
    r = names_folder("notes.txt", 9);
    CHECK_STR(r, "notes.txt (folder)");
    free(r);
    r = names_folder("OLD.ICS", 7);
    CHECK_STR(r, "OLD.ICS (folder)");
    free(r);
    r = names_folder("a/b", 3);
    CHECK_STR(r, "a／b");
    free(r);
    r = names_folder("..", 2);
    CHECK_STR(r, ".._");
    free(r);
    r = names_folder("", 0);
    CHECK_STR(r, "_");
    free(r);
    r = names_folder("Archive.eml-not", 7); /* only `len` bytes count */
    CHECK_STR(r, "Archive");
    free(r);

    char name[300];
    memset(name, 'x', 251);
    memcpy(name + 251, ".eml", 4);
    r = names_folder(name, 255);
    CHECK(strlen(r) <= NAMES_MAX && ends_with(r, " (folder)") && name_ok(r));
    CHECK(!names_has_item_ext(r));
    free(r);
    memset(name, 'x', 300);
    r = names_folder(name, 300);
    CHECK(strlen(r) == NAMES_MAX && name_ok(r));
    free(r);
}

#define CHECK_NAME(expr, want)                                                           \
    do {                                                                                 \
        char *got_ = (expr);                                                             \
        CHECK_STR(got_, want);                                                           \
        CHECK(name_ok(got_));                                                            \
        free(got_);                                                                      \
    } while (0)

static void
test_event(void)
{
    set_tz("UTC");
    CHECK_NAME(names_event(T0, false, "Planning"), "2025-11-24 10.00 Planning.ics");
    CHECK_NAME(names_event(T0, true, "Holiday"), "2025-11-24 Holiday.ics");
    CHECK_NAME(names_event(T0, false, NULL), "2025-11-24 10.00 (no title).ics");
    CHECK_NAME(names_event(T0, true, " \t"), "2025-11-24 (no title).ics");
    CHECK_NAME(names_event(T0, false, "a/b\nc"), "2025-11-24 10.00 a／b c.ics");
    CHECK_NAME(names_event(T0, false, ".hidden"), "2025-11-24 10.00 .hidden.ics");
    /* before 1970 is a date like any other; no start is zeros */
    CHECK_NAME(names_event(INT64_C(-309225600), true, "Birthday"),
               "1960-03-15 Birthday.ics");
    CHECK_NAME(names_event(-1, false, "x"), "1969-12-31 23.59 x.ics");
    CHECK_NAME(names_event(INT64_MIN, false, "x"), "0000-00-00 00.00 x.ics");
    CHECK_NAME(names_event(INT64_MIN, true, "x"), "0000-00-00 x.ics");
    CHECK_NAME(names_event(INT64_MAX, false, "x"), "0000-00-00 00.00 x.ics");
    CHECK_NAME(names_event(INT64_C(253402300800), true, "y10k"), "0000-00-00 y10k.ics");
    CHECK_NAME(names_event(INT64_C(-62167219200), true, "year 0"),
               "0000-01-01 year 0.ics");
    /* local time */
    set_tz("CET-1");
    CHECK_NAME(names_event(T0, false, "x"), "2025-11-24 11.00 x.ics");
    CHECK_NAME(names_event(T0 - 11 * 3600, true, "x"), "2025-11-24 x.ics");
    set_tz("EST5");
    CHECK_NAME(names_event(T0, false, "x"), "2025-11-24 05.00 x.ics");
    set_tz("UTC");
}

static void
test_task_note_contact(void)
{
    set_tz("UTC");
    CHECK_NAME(names_task(-1, "Pay rent"), "Pay rent.ics");
    CHECK_NAME(names_task(INT64_MIN, "Pay rent"), "Pay rent.ics");
    CHECK_NAME(names_task(T0, "Pay rent"), "2025-11-24 Pay rent.ics");
    CHECK_NAME(names_task(-1, NULL), "(no title).ics");
    CHECK_NAME(names_task(T0, ""), "2025-11-24 (no title).ics");
    set_tz("EST5");
    CHECK_NAME(names_task(T0 - 11 * 3600, "x"), "2025-11-23 x.ics");
    set_tz("UTC");

    CHECK_NAME(names_note("Groceries"), "Groceries.txt");
    CHECK_NAME(names_note(NULL), "(untitled).txt");
    CHECK_NAME(names_note("\xe2\x80\xae"), "(untitled).txt");
    CHECK_NAME(names_note("notes.txt"), "notes.txt.txt");
    CHECK_NAME(names_note("Reise / Urlaub"), "Reise ／ Urlaub.txt");
    CHECK_NAME(names_contact("Jürgen Müller"), "Jürgen Müller.vcf");
    CHECK_NAME(names_contact(""), "(no name).vcf");
    CHECK_NAME(names_contact("Doe, John\nJr."), "Doe, John Jr..vcf");

    /* never a hidden file, ".", ".." or a bare extension */
    CHECK_NAME(names_note(".plan"), "\xef\xbc\x8eplan.txt");
    CHECK_NAME(names_note("."), "\xef\xbc\x8e.txt");
    CHECK_NAME(names_note(".."), "\xef\xbc\x8e..txt");
    CHECK_NAME(names_contact(" .x"), "\xef\xbc\x8ex.vcf");
    CHECK_NAME(names_task(-1, ".ics"), "\xef\xbc\x8eics.ics");
}

static void
test_dav_length(void)
{
    char big[2000];
    set_tz("UTC");
    const char *chars[] = {"a", "é", "日", "😀", " ", "\xff", "/", "\xe2\x80\xae", "."};
    for (size_t c = 0; c < sizeof(chars) / sizeof(chars[0]); c++) {
        big[0] = '\0';
        while (strlen(big) + strlen(chars[c]) < sizeof(big))
            strcat(big, chars[c]);
        char *names[] = {names_event(T0, false, big),
                         names_event(T0, true, big),
                         names_task(T0, big),
                         names_task(-1, big),
                         names_note(big),
                         names_contact(big)};
        const char *exts[] = {".ics", ".ics", ".ics", ".ics", ".txt", ".vcf"};
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            CHECK(name_ok(names[k]) && ends_with(names[k], exts[k]));
            CHECK(names[k][0] != '.');
            /* space and invisible characters collapse to the fallback */
            CHECK(strlen(names[k]) > NAMES_MAX - 4 || c == 4 || c == 7);
            if (c == 0 && k == 0)
                CHECK(strncmp(names[k], "2025-11-24 10.00 aaa", 20) == 0 &&
                      strlen(names[k]) == NAMES_MAX);
            free(names[k]);
        }
    }
    /* a leading dot on a name cut to the limit */
    memset(big, 'a', 300);
    big[0] = '.';
    big[300] = '\0';
    char *r = names_note(big);
    CHECK(name_ok(r) && strlen(r) <= NAMES_MAX && ends_with(r, "a.txt"));
    CHECK(strncmp(r,
                  "\xef\xbc\x8e"
                  "aaa",
                  6) == 0);
    free(r);
    /* a megabyte */
    size_t n = 1 << 20;
    char *huge = malloc(n + 1);
    memset(huge, 'x', n);
    huge[n] = '\0';
    r = names_contact(huge);
    CHECK(strlen(r) == NAMES_MAX && ends_with(r, "x.vcf"));
    free(r);
    free(huge);
}

static void
test_title_from_file(void)
{
    CHECK_NAME(names_title_from_file("Groceries.txt"), "Groceries");
    CHECK_NAME(names_title_from_file("Groceries.TXT"), "Groceries");
    CHECK_NAME(names_title_from_file("notes.txt.txt"), "notes.txt");
    CHECK_NAME(names_title_from_file("no extension"), "no extension");
    CHECK_NAME(names_title_from_file("archive.tar.gz"), "archive.tar.gz");
    CHECK_NAME(names_title_from_file("Reise ／ Urlaub.txt"), "Reise ／ Urlaub");
    char *r = names_title_from_file(".txt");
    CHECK_STR(r, "");
    free(r);
    r = names_title_from_file("txt");
    CHECK_STR(r, "txt");
    free(r);
    r = names_title_from_file(NULL);
    CHECK_STR(r, "");
    free(r);
    /* a title given as a name comes back as the title */
    const char *titles[] = {"Groceries", "Einkauf, Wochenende", "日本語のメモ", "a.txt",
                            "(untitled)"};
    for (size_t k = 0; k < sizeof(titles) / sizeof(titles[0]); k++) {
        char *name = names_note(titles[k]);
        char *t = names_title_from_file(name);
        CHECK_STR(t, titles[k]);
        free(t);
        free(name);
    }
}

int
main(void)
{
    RUN(test_sanitize_basic);
    RUN(test_sanitize_invalid_utf8);
    RUN(test_sanitize_bidi);
    RUN(test_sanitize_cut);
    RUN(test_item_basic);
    RUN(test_item_length);
    RUN(test_variant);
    RUN(test_has_item_ext);
    RUN(test_folder);
    RUN(test_event);
    RUN(test_task_note_contact);
    RUN(test_dav_length);
    RUN(test_title_from_file);
    return check_done();
}
