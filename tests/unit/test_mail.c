/* Unit tests for formats/mail.c: header block, fields, Date, RFC 2047
 * decoding and Message-ID, with the hostile input real mail holds. */
#include "formats/mail.h"
#include "tests/unit/check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 2025-11-24 10:00:00 UTC */
#define T0 INT64_C(1763978400)

/* An exact-size heap copy, so the sanitizer catches any read past len. */
static char *
exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    memcpy(p, s, n);
    return p;
}

static int
is_valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, need;
        uint32_t v, min;
        if (c < 0x80) {
            p++;
            continue;
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
        p += need + 1;
    }
    return 1;
}

static int64_t
date_of(const char *s)
{
    int64_t t = INT64_MIN;
    char *p = exact(s, strlen(s));
    if (mail_parse_date(p, strlen(s), &t) != 0)
        t = -999999;
    free(p);
    return t;
}

static char *
decode(const char *s)
{
    char *p = exact(s, strlen(s));
    char *r = mail_decode_words(p, strlen(s));
    free(p);
    return r;
}

#define CHECK_DECODE(in, want)                                                           \
    do {                                                                                 \
        char *got_ = decode(in);                                                         \
        CHECK_STR(got_, want);                                                           \
        CHECK(is_valid_utf8(got_));                                                      \
        free(got_);                                                                      \
    } while (0)

static char *
get(const char *msg, size_t len, const char *name)
{
    char *p = exact(msg, len);
    char *r = mail_header_get(p, len, name);
    free(p);
    return r;
}

/* ---- header block ---- */

static void
test_header_len(void)
{
    CHECK(mail_header_len("A: 1\r\nB: 2\r\n\r\nbody", 18) == 14);
    CHECK(mail_header_len("A: 1\nB: 2\n\nbody", 15) == 11);
    CHECK(mail_header_len("A: 1\r\nB: 2\n\r\nbody", 17) == 13); /* mixed */
    CHECK(mail_header_len("A: 1\nB: 2\n", 10) == 10);           /* no body */
    CHECK(mail_header_len("A: 1\nB: 2", 9) == 9);
    CHECK(mail_header_len("", 0) == 0);
    CHECK(mail_header_len(NULL, 0) == 0);
    CHECK(mail_header_len("\r\nbody", 6) == 2);
    CHECK(mail_header_len("\nbody", 5) == 1);
    /* a line of spaces is not the blank line */
    CHECK(mail_header_len("A: 1\n \nB: 2\n\nx", 14) == 13);
    /* len is a hard limit, NUL bytes are ordinary */
    char *p = exact("A: \0\0\n\nrest", 11);
    CHECK(mail_header_len(p, 11) == 7);
    CHECK(mail_header_len(p, 6) == 6);
    free(p);
}

static void
test_header_get(void)
{
    const char *m = "From: a@b\r\nsubject: Hello\r\nX-Long: one\r\n two\r\n\tthree\r\n"
                    "Subject: second\r\n\r\nBody: not a header\r\n";
    size_t n = strlen(m);
    char *v = get(m, n, "Subject");
    CHECK_STR(v, "Hello"); /* case-insensitive, first one */
    free(v);
    v = get(m, n, "X-LONG");
    CHECK_STR(v, "one two\tthree");
    free(v);
    CHECK(get(m, n, "Body") == NULL);
    CHECK(get(m, n, "To") == NULL);

    const char *lf = "X: a\n  b\nY:c  \n\n";
    v = get(lf, strlen(lf), "X");
    CHECK_STR(v, "a  b");
    free(v);
    v = get(lf, strlen(lf), "Y");
    CHECK_STR(v, "c");
    free(v);
}

static void
test_header_get_hostile(void)
{
    /* continuation at the start, a line without colon, "Name :" (obsolete) */
    const char *m = "  orphan\r\nFrom foo@bar Mon Nov 24 10:00:00 2025\r\n"
                    "garbage line\r\n  with continuation: x\r\nSubject : ok\r\n";
    char *v = get(m, strlen(m), "Subject");
    CHECK_STR(v, "ok");
    free(v);
    CHECK(get(m, strlen(m), "garbage line") == NULL);
    CHECK(get(m, strlen(m), "with continuation") == NULL);
    CHECK(get(m, strlen(m), "") == NULL);

    /* NUL bytes are dropped, and nothing past len is read */
    const char h[] = "Subject: a\0b\0\r\nTo: x\0y";
    v = get(h, sizeof(h) - 1, "Subject");
    CHECK_STR(v, "ab");
    free(v);
    v = get(h, sizeof(h) - 1, "To");
    CHECK_STR(v, "xy");
    free(v);
    v = get(h, sizeof(h) - 3, "To");
    CHECK_STR(v, "x");
    free(v);

    /* empty value, colon at the end of the data */
    v = get("Subject:", 8, "Subject");
    CHECK_STR(v, "");
    free(v);
    v = get("Subject:\r", 9, "Subject");
    CHECK_STR(v, "");
    free(v);
    CHECK(get(":x\r\n", 4, "") == NULL);
}

/* ---- Date ---- */

static void
test_date_basic(void)
{
    CHECK(date_of("Mon, 24 Nov 2025 10:00:00 +0000") == T0);
    CHECK(date_of("Mon, 24 Nov 2025 11:00:00 +0100") == T0);
    CHECK(date_of("Mon, 24 Nov 2025 05:30:00 -0430") == T0);
    CHECK(date_of("24 Nov 2025 10:00:00 +0000") == T0);   /* no weekday */
    CHECK(date_of("Mon, 24 Nov 2025 10:00 +0000") == T0); /* no seconds */
    CHECK(date_of("Monday, 24 November 2025 10:00:00 +0000") == T0);
    CHECK(date_of("mon, 24 nov 2025 10:00:00 +0000") == T0);
    CHECK(date_of("Mon 24 Nov 2025 10:00:00 +0000") == T0);
    CHECK(date_of("Mon,24 Nov 2025 10:00:00 +0000") == T0);
    CHECK(date_of("Mon, 24 Nov 2025 10:00:07 +0000") == T0 + 7);
    CHECK(date_of("Tue, 1 Jan 1970 00:00:00 +0000") == 0); /* weekday not checked */
    CHECK(date_of("Thu, 01 Jan 1970 00:00:00 -0000") == 0);
    CHECK(date_of("Tue, 29 Feb 2000 00:00:00 +0000") == 951782400);
    CHECK(date_of("Thu, 29 Feb 2024 12:00:00 +0000") == 1709208000);
    CHECK(date_of("Fri, 31 Dec 9999 23:59:59 +0000") == INT64_C(253402300799));
    CHECK(date_of("Fri, 31 Dec 1999 23:59:60 +0000") == 946684800); /* leap second */
    /* no zone at all: read as -0000 */
    CHECK(date_of("Mon, 24 Nov 2025 10:00:00") == T0);
}

static void
test_date_zones(void)
{
    /* named, military (taken as +0000, RFC 5322 section 4.3), unknown names
     * (meaning -0000) and numeric zones */
    static const struct {
        const char *zone;
        int hours;
    } z[] = {
        {"UT", 0},     {"GMT", 0},     {"UTC", 0},   {"EST", -5},  {"EDT", -4},
        {"CST", -6},   {"CDT", -5},    {"MST", -7},  {"MDT", -6},  {"PST", -8},
        {"PDT", -7},   {"gmt", 0},     {"est", -5},  {"Z", 0},     {"A", 0},
        {"M", 0},      {"N", 0},       {"Y", 0},     {"z", 0},     {"CET", 0},
        {"MEZ", 0},    {"+0000", 0},   {"-0000", 0}, {"+0100", 1}, {"-0800", -8},
        {"+1400", 14}, {"-1200", -12},
    };
    for (size_t i = 0; i < sizeof(z) / sizeof(z[0]); i++) {
        char buf[80];
        snprintf(buf, sizeof(buf), "Mon, 24 Nov 2025 10:00:00 %s", z[i].zone);
        int64_t want = T0 - (int64_t)z[i].hours * 3600;
        if (date_of(buf) != want) {
            printf("# zone %s: got %lld want %lld\n", z[i].zone, (long long)date_of(buf),
                   (long long)want);
            CHECK(0);
        }
    }
    CHECK(date_of("Mon, 24 Nov 2025 10:00:00 GMT+0100") == T0 - 3600);
    CHECK(date_of("Mon, 24 Nov 2025 10:00:00 +0530") == T0 - 5 * 3600 - 30 * 60);
    CHECK(date_of("Mon, 24 Nov 2025 10:00:00 +05:30") == T0 - 5 * 3600 - 30 * 60);
    CHECK(date_of("Mon, 24 Nov 2025 10:00:00 GMT-02:00") == T0 + 2 * 3600);
    CHECK(date_of("Mon, 24 Nov 2025 10:00:00 GMT+1") == T0); /* no offset after all */
    CHECK(date_of("Mon, 24 Nov 2025 10:00:00 +0100 (CET)") == T0 - 3600);
    CHECK(date_of("Mon, 24 Nov 2025 10:00:00 -0500 (EST) trailing junk") ==
          T0 + 5 * 3600);
}

static void
test_date_obsolete(void)
{
    CHECK(date_of("Mon, 24 Nov 25 10:00:00 +0000") == T0);
    CHECK(date_of("Fri, 1 Jan 49 00:00:00 +0000") == INT64_C(2493072000)); /* 2049 */
    CHECK(date_of("Sun, 1 Jan 50 00:00:00 +0000") == INT64_C(-631152000)); /* 1950 */
    CHECK(date_of("Sat, 1 Jan 00 00:00:00 +0000") == INT64_C(946684800));  /* 2000 */
    CHECK(date_of("Fri, 31 Dec 99 23:59:59 +0000") == INT64_C(946684799)); /* 1999 */
    CHECK(date_of("Mon, 24 Nov 125 10:00:00 +0000") == T0);                /* 1900+125 */
    /* comments, folding and extra white space anywhere CFWS may be */
    CHECK(date_of("  (the day) Mon (x) , (y) 24 (z) Nov (w) 2025 (v) 10 : 00 : 00 (u) "
                  "+0000 (zone (nested \\) paren))  ") == T0);
    CHECK(date_of("Mon,\r\n 24 Nov 2025\r\n\t10:00:00\r\n +0000\r\n") == T0);
    CHECK(date_of("Mon,\n 24   Nov\t2025    10:00:00     +0000") == T0);
    CHECK(date_of("Mon, 24 Nov 2025 10:00:00 +0000 (unterminated") == T0);
    CHECK(date_of("Mon, 4 Nov 2025 9:5:3 +0000") == T0 - 20 * 86400 - 3600 + 5 * 60 + 3);
}

static void
test_date_before_1970(void)
{
    CHECK(date_of("Tue, 15 Jun 1965 12:30:00 +0000") == INT64_C(-143465400));
    CHECK(date_of("Mon, 1 Jan 1900 00:00:00 +0000") == INT64_C(-2208988800));
    CHECK(date_of("Wed, 31 Dec 1969 23:59:59 +0000") == -1);
    CHECK(date_of("Thu, 1 Jan 1970 00:59:59 +0100") == -1);
}

static void
test_date_malformed(void)
{
    static const char *const bad[] = {
        "",
        "   ",
        "(only a comment)",
        "Mon, 32 Foo 2025 25:61:00 +9999",
        "Mon, 32 Nov 2025 10:00:00 +0000",
        "Mon, 0 Nov 2025 10:00:00 +0000",
        "Mon, 24 Foo 2025 10:00:00 +0000",
        "Mon, 24 Nov 2025 24:00:00 +0000",
        "Mon, 24 Nov 2025 10:60:00 +0000",
        "Mon, 24 Nov 2025 10:00:61 +0000",
        "Mon, 24 Nov 2025 10:00:00 +9999",
        "Mon, 24 Nov 2025 10:00:00 +0060",
        "Mon, 24 Nov 2025 10:00:00 +2400",
        "Mon, 24 Nov 2025 10:00:00 +100",
        "Mon, 24 Nov 2025 10:00:00 +01000",
        "Mon, 24 Nov 2025 10:00:00 +",
        "Mon, 24 Nov 2025 10:00:00 +01",
        "Mon, 24 Nov 2025 10:00:00 +01:",
        "Mon, 24 Nov 2025 10:00:00 +01:5",
        "Mon, 24 Nov 2025 10:00:00 +01:60",
        "Mon, 24 Nov 2025 10:00:00 +24:00",
        "Mon, 24 Nov 2025 10:00:00 ?",
        "Mon, 29 Feb 2023 10:00:00 +0000",
        "Mon, 29 Feb 1900 10:00:00 +0000",
        "Mon, 31 Apr 2025 10:00:00 +0000",
        "Mon, 24 Nov 5 10:00:00 +0000",
        "Mon, 24 Nov 1899 10:00:00 +0000",
        "Mon, 24 Nov 10000 10:00:00 +0000",
        "Mon, 24 Nov 99999999999999999999 10:00:00 +0000",
        "Mon, 024 Nov 2025 10:00:00 +0000",
        "Mon, 24 Nov 2025 100:00:00 +0000",
        "Mon, 24 Nov 2025 10:000 +0000",
        "Mon, 24 Nov 2025 10 +0000",
        "Mon, 24 Nov 2025",
        "Mon, 24 Nov",
        "Foo, 24 Nov 2025 10:00:00 +0000",
        "Nov 24 2025 10:00:00 +0000",
        "2025-11-24T10:00:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t t = 12345;
        char *p = exact(bad[i], strlen(bad[i]));
        int rc = mail_parse_date(p, strlen(bad[i]), &t);
        free(p);
        if (rc != -1 || t != 12345) {
            printf("# accepted bad date \"%s\"\n", bad[i]);
            CHECK(0);
        }
    }
    /* trailing junk after the zone is ignored */
    CHECK(date_of("Mon, 24 Nov 2025 10:00:00 +0000 \xff") == T0);
    int64_t t = 5;
    CHECK(mail_parse_date(NULL, 0, &t) == -1 && t == 5);
    /* NUL inside, and a length that stops early */
    const char d[] = "Mon, 24 Nov 2025 10:00:00 +0000";
    char *p = exact(d, sizeof(d) - 1);
    p[4] = '\0';
    CHECK(mail_parse_date(p, sizeof(d) - 1, &t) == -1);
    p[4] = ' ';
    CHECK(mail_parse_date(p, 22, &t) == 0 && t == T0); /* "... 10:00" */
    CHECK(mail_parse_date(p, 20, &t) == -1);           /* "... 10:" */
    free(p);
}

/* ---- RFC 2047 ---- */

static void
test_decode_charsets(void)
{
    CHECK_DECODE("plain ASCII", "plain ASCII");
    CHECK_DECODE("=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=", "Grüße aus Köln");
    CHECK_DECODE("=?utf-8?b?5pel5pys6Kqe?=", "日本語");
    CHECK_DECODE("=?ISO-8859-1?Q?caf=E9?=", "café");
    CHECK_DECODE("=?iso-8859-1?q?caf=e9_cr=E8me?=", "café crème");
    CHECK_DECODE("=?windows-1252?Q?=80_5?=", "€ 5");
    CHECK_DECODE("=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=", "こんにちは");
    CHECK_DECODE("=?KOI8-R?B?8NLJ18XU?=", "Привет");
    CHECK_DECODE("=?UTF-16BE?B?AOkAdADp?=", "été");
    /* RFC 2231 language suffix */
    CHECK_DECODE("=?ISO-8859-1*fr?Q?caf=E9?=", "café");
    CHECK_DECODE("=?UTF-8*en-US?B?4oKs?=", "€");
    /* missing base64 padding is common and accepted */
    CHECK_DECODE("=?UTF-8?B?4oKs?= =?UTF-8?B?5pel5g?=", "€日\xef\xbf\xbd");
    CHECK_DECODE("=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4?=", "Grüße aus Köln");
    CHECK_DECODE("=?UTF-8?Q?\?=", "");
}

static void
test_decode_adjacent(void)
{
    /* white space between encoded-words goes, around plain text it stays */
    CHECK_DECODE("=?UTF-8?Q?a?= =?UTF-8?Q?b?=", "ab");
    CHECK_DECODE("=?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?=", "ab");
    CHECK_DECODE("=?UTF-8?Q?a?= \t =?ISO-8859-1?Q?=E9?=", "aé");
    CHECK_DECODE("=?UTF-8?Q?a_?= =?UTF-8?Q?b?=", "a b");
    CHECK_DECODE("Re: =?UTF-8?Q?a?= and =?UTF-8?Q?b?= end", "Re: a and b end");
    CHECK_DECODE("x =?UTF-8?Q?a?=  y", "x a  y");
    /* a character split across two words (senders do it) comes out whole */
    CHECK_DECODE("=?UTF-8?B?5pel5g==?= =?UTF-8?B?nKzoqp4=?=", "日本語");
    CHECK_DECODE("=?utf-8?q?=E6=97?= =?UTF-8?Q?=A5?=", "日");
    /* an encoded-word inside a word is decoded as well */
    CHECK_DECODE("pre=?UTF-8?Q?x?=post", "prexpost");
    /* a bad word between two good ones keeps its surrounding space */
    CHECK_DECODE("=?UTF-8?Q?a?= =?UTF-8?B?!!!?= =?UTF-8?Q?b?=", "a =?UTF-8?B?!!!?= b");
}

static void
test_decode_malformed(void)
{
    /* unknown charset: left exactly as it was */
    CHECK_DECODE("=?x-no-such-charset?Q?abc?=", "=?x-no-such-charset?Q?abc?=");
    CHECK_DECODE("a =?unknown-8bit?B?4oKs?= b", "a =?unknown-8bit?B?4oKs?= b");
    /* broken base64 */
    CHECK_DECODE("=?UTF-8?B?4o*s?=", "=?UTF-8?B?4o*s?=");
    CHECK_DECODE("=?UTF-8?B?4oKsA?=", "=?UTF-8?B?4oKsA?="); /* lone sextet */
    CHECK_DECODE("=?UTF-8?B?4o=Ks?=", "=?UTF-8?B?4o=Ks?="); /* data after pad */
    /* broken QP: a stray "=" is kept */
    CHECK_DECODE("=?UTF-8?Q?100=ZZ=?=", "100=ZZ=");
    CHECK_DECODE("=?UTF-8?Q?a=4?=", "a=4");
    /* not encoded-words at all */
    CHECK_DECODE("=?UTF-8?X?abc?=", "=?UTF-8?X?abc?=");
    CHECK_DECODE("=??Q?abc?=", "=??Q?abc?=");
    CHECK_DECODE("=?*en?Q?abc?=", "=?*en?Q?abc?=");
    CHECK_DECODE("=?UTF-8?Q?abc", "=?UTF-8?Q?abc");
    CHECK_DECODE("=?UTF-8?Q?abc?", "=?UTF-8?Q?abc?");
    CHECK_DECODE("=?UTF-8?Q?a b?=", "=?UTF-8?Q?a b?=");
    CHECK_DECODE("=?UTF-8?Q", "=?UTF-8?Q");
    CHECK_DECODE("=?", "=?");
    CHECK_DECODE("=", "=");
    CHECK_DECODE("", "");
    CHECK_DECODE("=?UTF/8?Q?a?=", "=?UTF/8?Q?a?=");
    CHECK_DECODE("=?UTF-8//TRANSLIT?Q?a?=", "=?UTF-8//TRANSLIT?Q?a?=");
    CHECK_DECODE("=?=?UTF-8?Q?ok?=", "=?ok");
    /* a charset name longer than any real one */
    char longcs[200];
    memset(longcs, 0, sizeof(longcs));
    strcpy(longcs, "=?");
    memset(longcs + 2, 'a', 100);
    strcat(longcs, "?Q?x?=");
    CHECK_DECODE(longcs, longcs);
    /* bytes the charset cannot hold become U+FFFD */
    CHECK_DECODE("=?UTF-8?Q?a=FFb?=", "a\xef\xbf\xbd"
                                      "b");
    CHECK_DECODE("=?UTF-8?Q?=C0=AF?=", "\xef\xbf\xbd\xef\xbf\xbd"); /* overlong */
    CHECK_DECODE("=?UTF-8?Q?=ED=A0=80?=", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    CHECK_DECODE("=?US-ASCII?Q?a=E9?=", "a\xef\xbf\xbd");
    CHECK_DECODE("=?UTF-8?Q?ab=E2=82?=", "ab\xef\xbf\xbd"); /* cut short */
    /* NUL cannot live in a C string */
    CHECK_DECODE("=?UTF-8?Q?a=00b?=", "a\xef\xbf\xbd"
                                      "b");
    char *r = mail_decode_words(NULL, 0);
    CHECK_STR(r, "");
    free(r);
}

static void
test_decode_raw_8bit(void)
{
    CHECK_DECODE("Grüße", "Grüße"); /* valid UTF-8 stays */
    CHECK_DECODE("Gr\xfc\xdf"
                 "e",
                 "Grüße"); /* else Latin-1 */
    CHECK_DECODE("caf\xe9 =?UTF-8?Q?=E2=82=AC?=", "café €");
    CHECK_DECODE("\xc3\xa9 then \xe9", "Ã© then é");
    CHECK_DECODE("\xed\xa0\x80", "í\xc2\xa0\xc2\x80"); /* surrogate: not UTF-8 */
    CHECK_DECODE("\xc0\xaf", "À¯");                    /* overlong: not UTF-8 */
    CHECK_DECODE("\xf0\x9f\x98", "ð\xc2\x9f\xc2\x98"); /* truncated */
    CHECK_DECODE("😀", "😀");
    const char nul[] = "a\0b";
    char *r = mail_decode_words(nul, 3);
    CHECK_STR(r, "a\xef\xbf\xbd"
                 "b");
    free(r);
}

static void
test_decode_huge(void)
{
    /* 1 MB of text, of encoded-words, of invalid bytes: capped, valid, quick */
    size_t n = 1 << 20;
    char *s = malloc(n);
    clock_t start = clock();

    memset(s, 'x', n);
    char *r = mail_decode_words(s, n);
    CHECK(strlen(r) > 0 && strlen(r) <= 64 * 1024);
    CHECK(is_valid_utf8(r));
    free(r);

    memset(s, 0xe9, n);
    r = mail_decode_words(s, n);
    CHECK(strlen(r) > 0 && strlen(r) <= 64 * 1024);
    CHECK(is_valid_utf8(r));
    free(r);

    const char *w = "=?UTF-8?B?5pel5pys6Kqe?= ";
    size_t wl = strlen(w);
    for (size_t i = 0; i + wl <= n; i += wl)
        memcpy(s + i, w, wl);
    r = mail_decode_words(s, n);
    CHECK(strlen(r) > 1000 && strlen(r) <= 64 * 1024);
    CHECK(strncmp(r, "日本語日本語", 18) == 0);
    CHECK(is_valid_utf8(r));
    free(r);

    /* alternating charsets and unknown ones */
    const char *w2 = "=?KOI8-R?B?8NLJ18XU?= =?x-bogus?Q?a?= =?ISO-8859-1?Q?=E9?= ";
    wl = strlen(w2);
    memset(s, ' ', n);
    for (size_t i = 0; i + wl <= n; i += wl)
        memcpy(s + i, w2, wl);
    r = mail_decode_words(s, n);
    CHECK(strncmp(r, "Привет =?x-bogus?Q?a?= é", strlen("Привет =?x-bogus?Q?a?= é")) ==
          0);
    CHECK(is_valid_utf8(r));
    free(r);

    /* "=?" over and over: no quadratic rescanning */
    for (size_t i = 0; i + 1 < n; i += 2)
        s[i] = '=', s[i + 1] = '?';
    r = mail_decode_words(s, n);
    CHECK(strncmp(r, "=?=?=?", 6) == 0);
    free(r);

    /* one encoded-word of a megabyte */
    memset(s, 'Q', n);
    memcpy(s, "=?UTF-8?B?", 10);
    memcpy(s + n - 2, "?=", 2);
    r = mail_decode_words(s, n);
    CHECK(is_valid_utf8(r) && strlen(r) <= 64 * 1024);
    free(r);

    CHECK((clock() - start) / CLOCKS_PER_SEC < 5);
    free(s);
}

/* ---- the whole message ---- */

static void
test_info_parse(void)
{
    const char *m = "Return-Path: <a@b>\r\n"
                    "Date: Mon, 24 Nov 2025 11:00:00 +0100 (CET)\r\n"
                    "Subject: =?UTF-8?Q?Quarterly_report?=\r\n"
                    " =?UTF-8?B?4oCU?= draft\r\n"
                    "Message-ID:\r\n <abc.123@example.com> (comment)\r\n"
                    "\r\n"
                    "Date: Tue, 1 Jan 2030 00:00:00 +0000\r\n"
                    "Subject: in the body\r\n";
    size_t n = strlen(m);
    char *p = exact(m, n);
    struct mail_info mi;
    CHECK(mail_info_parse(p, n, &mi) == 0);
    CHECK(mi.date == T0);
    CHECK_STR(mi.subject, "Quarterly report— draft");
    CHECK_STR(mi.message_id, "<abc.123@example.com>");
    mail_info_free(&mi);
    mail_info_free(&mi); /* safe twice */
    free(p);

    /* nothing there */
    CHECK(mail_info_parse("X: y\r\n\r\nbody", 12, &mi) == 0);
    CHECK(mi.date == -1 && mi.subject == NULL && mi.message_id == NULL);
    mail_info_free(&mi);
    CHECK(mail_info_parse(NULL, 0, &mi) == 0);
    CHECK(mi.date == -1 && mi.subject == NULL && mi.message_id == NULL);
    mail_info_free(&mi);

    /* bare LF, no body separator, a bad Date, an empty Subject, an id
     * without brackets */
    m = "date: yesterday\nSUBJECT:\nmessage-id: id-without-brackets@x  \n";
    n = strlen(m);
    p = exact(m, n);
    CHECK(mail_info_parse(p, n, &mi) == 0);
    CHECK(mi.date == -1);
    CHECK_STR(mi.subject, "");
    CHECK_STR(mi.message_id, "id-without-brackets@x");
    mail_info_free(&mi);
    free(p);
}

static void
test_info_hostile(void)
{
    struct mail_info mi;

    /* NUL bytes in the header */
    const char h[] = "Subject: a\0b\r\nDate: Mon, 24 Nov 2025 10:00:00 +0000\r\n"
                     "Message-ID: <x\0y@z>\r\n\r\n";
    char *p = exact(h, sizeof(h) - 1);
    mail_info_parse(p, sizeof(h) - 1, &mi);
    CHECK(is_valid_utf8(mi.subject) && strlen(mi.subject) == 2);
    CHECK(mi.date == T0);
    CHECK_STR(mi.message_id, "<xy@z>");
    mail_info_free(&mi);
    free(p);

    /* raw 8-bit subjects */
    const char *l1 = "Subject: Gr\xfc\xdf"
                     "e\r\n\r\n";
    mail_info_parse(l1, strlen(l1), &mi);
    CHECK_STR(mi.subject, "Grüße");
    mail_info_free(&mi);
    const char *u8 = "Subject: Grüße 😀\n\n";
    mail_info_parse(u8, strlen(u8), &mi);
    CHECK_STR(mi.subject, "Grüße 😀");
    mail_info_free(&mi);

    /* a Message-ID too long to be real, a missing ">" */
    size_t n = 5000;
    char *big = malloc(n);
    memset(big, 'a', n);
    memcpy(big, "Message-ID: <", 13);
    memcpy(big + n - 3, ">\n\n", 3);
    mail_info_parse(big, n, &mi);
    CHECK(mi.message_id == NULL);
    mail_info_free(&mi);
    free(big);
    /* exactly at the cap, with bytes that unfolding drops after it */
    n = 12 + 998 + 4;
    big = malloc(n);
    memset(big, 'b', n);
    memcpy(big, "Message-ID: <", 13);
    big[12 + 997] = '>';
    memcpy(big + 12 + 998, "\0\0\n\n", 4);
    mail_info_parse(big, n, &mi);
    CHECK(mi.message_id && strlen(mi.message_id) == 998);
    mail_info_free(&mi);
    free(big);
    mail_info_parse("Message-ID: <open\n\n", 19, &mi);
    CHECK_STR(mi.message_id, "<open");
    mail_info_free(&mi);
    mail_info_parse("Message-ID:   \n\n", 16, &mi);
    CHECK(mi.message_id == NULL);
    mail_info_free(&mi);
}

static void
test_info_huge(void)
{
    struct mail_info mi;
    /* a Subject of 1 MB, folded, in a multi-megabyte message */
    const char *unit = "Grüße Grüße Grüße\r\n ";
    size_t ul = strlen(unit), sub = ((1 << 20) / ul) * ul, body = 8 << 20;
    size_t n = 9 + sub + 4 + body;
    char *m = malloc(n);
    memcpy(m, "Subject: ", 9);
    for (size_t i = 0; i < sub; i += ul)
        memcpy(m + 9 + i, unit, ul);
    memcpy(m + 9 + sub, "\r\n\r\n", 4);
    memset(m + 13 + sub, 'b', body);
    clock_t start = clock();
    mail_info_parse(m, n, &mi);
    CHECK(mi.subject && strlen(mi.subject) <= 64 * 1024 && strlen(mi.subject) > 1000);
    CHECK(is_valid_utf8(mi.subject));
    CHECK(strncmp(mi.subject, "Grüße", 7) == 0);
    mail_info_free(&mi);
    CHECK(mail_header_len(m, n) == 13 + sub);
    CHECK((clock() - start) / CLOCKS_PER_SEC < 3);
    free(m);

    /* the cap falls inside a character: the text is cut before it, and
     * stays UTF-8 rather than turning into Latin-1 */
    n = 9 + 1 + 2 * 40000 + 4;
    m = malloc(n);
    memcpy(m, "Subject: a", 10);
    for (size_t i = 0; i < 40000; i++)
        memcpy(m + 10 + 2 * i, "é", 2);
    memcpy(m + n - 4, "\r\n\r\n", 4);
    mail_info_parse(m, n, &mi);
    CHECK(mi.subject && strncmp(mi.subject, "aéé", 5) == 0);
    CHECK(is_valid_utf8(mi.subject) && !strstr(mi.subject, "Ã"));
    mail_info_free(&mi);
    for (size_t i = 0; i < 40000; i++)
        memcpy(m + 10 + 2 * i, "\xe9\xe9", 2); /* Latin-1 stays Latin-1 */
    mail_info_parse(m, n, &mi);
    CHECK(mi.subject && strncmp(mi.subject, "aéé", 5) == 0 && is_valid_utf8(mi.subject));
    mail_info_free(&mi);
    free(m);

    /* a header without a Subject: only the header block is scanned, so a
     * "Subject:" deep in the body is not found */
    const char *hdr = "From: a\r\n\r\n";
    n = strlen(hdr) + body + 20;
    m = malloc(n);
    memcpy(m, hdr, strlen(hdr));
    memset(m + strlen(hdr), '\n', body);
    memcpy(m + n - 20, "Subject: not me\r\n\r\n", 19);
    m[n - 1] = 'x';
    mail_info_parse(m, n, &mi);
    CHECK(mi.subject == NULL);
    mail_info_free(&mi);
    free(m);
}

int
main(void)
{
    RUN(test_header_len);
    RUN(test_header_get);
    RUN(test_header_get_hostile);
    RUN(test_date_basic);
    RUN(test_date_zones);
    RUN(test_date_obsolete);
    RUN(test_date_before_1970);
    RUN(test_date_malformed);
    RUN(test_decode_charsets);
    RUN(test_decode_adjacent);
    RUN(test_decode_malformed);
    RUN(test_decode_raw_8bit);
    RUN(test_decode_huge);
    RUN(test_info_parse);
    RUN(test_info_hostile);
    RUN(test_info_huge);
    return check_done();
}
