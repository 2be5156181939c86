/* Unit tests for formats/vcard.c: names and UIDs from vCard 2.1, 3.0 and 4.0
 * as servers and phones write them, hostile cards refused with the reason,
 * and UIDs added without touching other bytes. */
#include "formats/vcard.h"
#include "common/dynbuf.h"
#include "common/utf8.h"
#include "tests/unit/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse an exact-size copy, so the sanitizers catch a read past len. */
static int
parse_n(const char *text, size_t n, struct vcard_info *vi, char **err)
{
    char *p = calloc(1, n ? n : 1);
    memcpy(p, text, n);
    int r = vcard_parse(p, n, vi, err);
    free(p);
    return r;
}

static int
parse(const char *text, struct vcard_info *vi, char **err)
{
    return parse_n(text, strlen(text), vi, err);
}

static char *
with_uid(const char *text, const char *uid, size_t *outlen)
{
    size_t n = strlen(text);
    char *p = calloc(1, n ? n : 1);
    memcpy(p, text, n);
    char *r = vcard_with_uid(p, n, uid, outlen);
    free(p);
    return r;
}

#define CHECK_REFUSED_N(text, n, want)                                                   \
    do {                                                                                 \
        struct vcard_info v_;                                                            \
        char *e_ = NULL;                                                                 \
        CHECK(parse_n(text, n, &v_, &e_) == -1);                                         \
        CHECK(e_ &&strstr(e_, want));                                                    \
        if (!e_ || !strstr(e_, want))                                                    \
            printf("# error was: %s\n", e_ ? e_ : "(none)");                             \
        CHECK(v_.name == NULL && v_.fn == NULL && v_.uid == NULL);                       \
        free(e_);                                                                        \
    } while (0)

#define CHECK_REFUSED(text, want) CHECK_REFUSED_N(text, strlen(text), want)

/* The name of the card in `text`. */
#define CHECK_NAME(text, want)                                                           \
    do {                                                                                 \
        struct vcard_info v_;                                                            \
        char *e_ = NULL;                                                                 \
        CHECK(parse(text, &v_, &e_) == 0);                                               \
        if (e_)                                                                          \
            printf("# error: %s\n", e_);                                                 \
        CHECK_STR(v_.name, want);                                                        \
        vcard_info_free(&v_);                                                            \
        free(e_);                                                                        \
    } while (0)

/* As Radicale 3.1.8 returned card.vcf after a PUT (X-ABLabel upper-cased,
 * properties reordered). */
static const char radicale_card[] = "BEGIN:VCARD\r\n"
                                    "VERSION:3.0\r\n"
                                    "UID:card-1@example.com\r\n"
                                    "item1.EMAIL;TYPE=INTERNET,work:jm@example.com\r\n"
                                    "FN:Jürgen Müller\r\n"
                                    "N:Müller;Jürgen;;Dr.;\r\n"
                                    "NOTE:line one\\nline two\\, with comma\r\n"
                                    "item1.X-ABLABEL:Büro\r\n"
                                    "END:VCARD\r\n";

static void
test_v3(void)
{
    struct vcard_info v;
    char *err = NULL;
    CHECK(parse(radicale_card, &v, &err) == 0);
    CHECK(err == NULL);
    CHECK(v.version == 30);
    CHECK_STR(v.fn, "Jürgen Müller");
    CHECK_STR(v.name, "Jürgen Müller");
    CHECK_STR(v.family, "Müller");
    CHECK_STR(v.given, "Jürgen");
    CHECK(v.additional == NULL && v.suffix == NULL);
    CHECK_STR(v.prefix, "Dr.");
    CHECK_STR(v.uid, "card-1@example.com");
    vcard_info_free(&v);
    CHECK(v.fn == NULL && v.name == NULL);
    vcard_info_free(&v); /* twice is harmless */
    vcard_info_free(NULL);
}

static void
test_v4(void)
{
    struct vcard_info v;
    const char *card = "BEGIN:VCARD\r\n"
                       "VERSION:4.0\r\n"
                       "UID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1\r\n"
                       "FN;PID=1.1:J. Doe\r\n"
                       "N:Doe;J.;;;\r\n"
                       "EMAIL;PID=1.1:jdoe@example.com\r\n"
                       "CLIENTPIDMAP:1;urn:uuid:53e374d9-337e-4727-8803-a1e9c14e0556\r\n"
                       "END:VCARD\r\n";
    CHECK(parse(card, &v, NULL) == 0);
    CHECK(v.version == 40);
    CHECK_STR(v.fn, "J. Doe");
    CHECK_STR(v.uid, "urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1");
    CHECK_STR(v.family, "Doe");
    CHECK_STR(v.given, "J.");
    vcard_info_free(&v);

    /* the RFC 6350 example of N: several values in one component */
    const char *n_only = "BEGIN:VCARD\nVERSION:4.0\n"
                         "N:Stevenson;John;Philip,Paul;Dr.;Jr.,M.D.,A.C.P.\nEND:VCARD\n";
    CHECK(parse(n_only, &v, NULL) == 0);
    CHECK(v.fn == NULL);
    CHECK_STR(v.additional, "Philip Paul");
    CHECK_STR(v.suffix, "Jr. M.D. A.C.P.");
    CHECK_STR(v.name, "Dr. John Philip Paul Stevenson Jr. M.D. A.C.P.");
    vcard_info_free(&v);
    /* a blank FN gives way to N; a blank card has an empty name */
    CHECK_NAME("BEGIN:VCARD\nVERSION:3.0\nFN:  \nN:Doe;Jane\nEND:VCARD\n", "Jane Doe");
    CHECK_NAME("BEGIN:VCARD\nVERSION:3.0\nFN:\nN:;;;;\nEND:VCARD\n", "");
    CHECK_NAME("BEGIN:VCARD\nVERSION:3.0\nN:Doe\nEND:VCARD\n", "Doe");
    /* the first FN counts; more N components than five are ignored */
    CHECK_NAME("BEGIN:VCARD\nFN:first\nFN:second\nEND:VCARD\n", "first");
    CHECK_NAME("BEGIN:VCARD\nN:a;b;c;d;e;f;g\nEND:VCARD\n", "d b c a e");
    /* no VERSION: tolerated */
    CHECK(parse("BEGIN:VCARD\nFN:x\nEND:VCARD\n", &v, NULL) == 0 && v.version == 0);
    vcard_info_free(&v);
    CHECK(parse("BEGIN:VCARD\nVERSION: 2.1 \nFN:x\nEND:VCARD\n", &v, NULL) == 0 &&
          v.version == 21);
    vcard_info_free(&v);
}

static void
test_folding(void)
{
    /* CRLF and LF, space and tab; a fold inside a UTF-8 sequence */
    CHECK_NAME("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:J\r\n \xc3\r\n\t\xbc"
               "rgen\r\n  M\xc3\xbcller\r\nEND:VCARD\r\n",
               "Jürgen M\xc3\xbcller");
    CHECK_NAME("BEGIN:VCARD\nVERSION:3.0\nF\n N:Jane\n Doe\nEND:VCARD\n", "JaneDoe");
    /* a folded BEGIN and END, blank lines, a BOM, no last line end */
    CHECK_NAME("\xEF\xBB\xBF\r\n\r\nBEGIN:VC\r\n ARD\r\n\r\nFN:x\r\nE\r\n ND:VCARD", "x");
    /* lower case names and values */
    CHECK_NAME("begin:vcard\nversion:3.0\nfn:lower\nend:vcard\n", "lower");
}

static void
test_groups_params_escapes(void)
{
    struct vcard_info v;
    const char *card =
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        "item1.EMAIL;TYPE=work:a@example.com\r\n"
        "item1.X-ABLabel:_$!<Other>!$_\r\n"
        "a.b.FN;LANGUAGE=\"de:x;y\";X-P=\"q\":Doe\\, John\\nJr\\;\\\\ \\x\r\n"
        "N:O\\;Brien;Mary\\,Ann;;;\r\n"
        "UID:a\\,b\r\n"
        "END:VCARD\r\n";
    char *err = NULL;
    CHECK(parse(card, &v, &err) == 0);
    if (err)
        printf("# %s\n", err);
    free(err);
    CHECK_STR(v.fn, "Doe, John\nJr;\\ \\x");
    CHECK_STR(v.family, "O;Brien");
    CHECK_STR(v.given, "Mary,Ann");
    CHECK_STR(v.uid, "a,b");
    vcard_info_free(&v);
    /* a property called like ours in a parameter value is not ours */
    CHECK_NAME("BEGIN:VCARD\nX-A;P=\"FN:no\":x\nN:Yes\nEND:VCARD\n", "Yes");
}

static void
test_v21(void)
{
    /* quoted-printable UTF-8 with a soft line break */
    CHECK_NAME("BEGIN:VCARD\r\nVERSION:2.1\r\n"
               "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BC=\r\n"
               "rgen;;;\r\n"
               "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:J=C3=BCrgen =\r\n"
               "M=C3=BCller\r\n"
               "TEL;CELL:+49 1\r\nEND:VCARD\r\n",
               "Jürgen Müller");
    struct vcard_info v;
    CHECK(parse("BEGIN:VCARD\r\nVERSION:2.1\r\n"
                "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BC=\r\n"
                "rgen;;;\r\nEND:VCARD\r\n",
                &v, NULL) == 0);
    CHECK_STR(v.family, "Müller");
    CHECK_STR(v.given, "Jürgen");
    CHECK_STR(v.name, "Jürgen Müller");
    vcard_info_free(&v);
    /* bare QUOTED-PRINTABLE and a Latin-1 charset */
    CHECK_NAME(
        "BEGIN:VCARD\nVERSION:2.1\nFN;QUOTED-PRINTABLE;CHARSET=ISO-8859-1:Ren=E9e\n"
        "END:VCARD\n",
        "Renée");
    /* windows-1252 */
    CHECK_NAME(
        "BEGIN:VCARD\nVERSION:2.1\nFN;ENCODING=QUOTED-PRINTABLE;CHARSET=windows-1252:"
        "=80 Euro\nEND:VCARD\n",
        "€ Euro");
    /* 8-bit without charset: UTF-8 when it is, else Latin-1 */
    CHECK_NAME("BEGIN:VCARD\nVERSION:2.1\nFN:Ren\xe9"
               "e\nEND:VCARD\n",
               "Renée");
    CHECK_NAME("BEGIN:VCARD\nVERSION:2.1\nFN:Ren\xc3\xa9"
               "e\nEND:VCARD\n",
               "Renée");
    /* a charset iconv does not know, or that could be a path */
    CHECK_NAME("BEGIN:VCARD\nVERSION:2.1\nFN;CHARSET=X-NOPE:Ren\xe9"
               "e\nEND:VCARD\n",
               "Renée");
    CHECK_NAME("BEGIN:VCARD\nVERSION:2.1\nFN;CHARSET=../../x:a\nEND:VCARD\n", "a");
    /* bytes the charset cannot read become U+FFFD; a NUL from QP too */
    CHECK_NAME("BEGIN:VCARD\nVERSION:2.1\nFN;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:"
               "a=FFb=00c\nEND:VCARD\n",
               "a\xef\xbf\xbd"
               "b\xef\xbf\xbd"
               "c");
    /* broken QP stays as it is */
    CHECK_NAME(
        "BEGIN:VCARD\nVERSION:2.1\nFN;ENCODING=QUOTED-PRINTABLE:100=% =G1 =\nEND:VCARD\n",
        "100=% =G1 =");
    /* a soft break never swallows END:VCARD */
    CHECK_NAME(
        "BEGIN:VCARD\r\nVERSION:2.1\r\nFN;ENCODING=QUOTED-PRINTABLE:x=\r\nEND:VCARD\r\n",
        "x=");
    /* a base64 photo block of 2.1, continuation lines indented, then a blank */
    CHECK_NAME("BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Photo\r\n"
               "PHOTO;ENCODING=BASE64;TYPE=JPEG:\r\n  /9j/4AAQSkZJRgABAQEASABIAAD\r\n"
               "  AAQSkZJRgABAQEASABIAAD\r\n\r\nEND:VCARD\r\n",
               "Photo");
    /* Shift_JIS: its 0x5C trail byte is not a backslash */
    CHECK_NAME("BEGIN:VCARD\nVERSION:2.1\nFN;CHARSET=SHIFT_JIS:\x95\x5c\nEND:VCARD\n",
               "表");
}

static void
test_refused(void)
{
    CHECK_REFUSED("", "empty file");
    CHECK_REFUSED("\r\n \n", "empty file");
    CHECK_REFUSED("hello", "not a vCard");
    CHECK_REFUSED("BEGIN:VCALENDAR\nEND:VCALENDAR\n", "not a vCard");
    CHECK_REFUSED("FN:x\nBEGIN:VCARD\nFN:x\nEND:VCARD\n", "not a vCard");
    CHECK_REFUSED(" BEGIN:VCARD\nFN:x\nEND:VCARD\n", "not a vCard");
    /* unterminated */
    CHECK_REFUSED("BEGIN:VCARD\nVERSION:3.0\nFN:x\n",
                  "truncated: BEGIN:VCARD has no END");
    CHECK_REFUSED("BEGIN:VCARD\nVERSION:3.0\nFN:x\nEND:VCA", "this END does not close");
    CHECK_REFUSED("BEGIN:VCARD\nVERSION:3.0\nFN:x\nEND",
                  "line 4 is not a vCard content line");
    /* nested, two cards, text after */
    CHECK_REFUSED("BEGIN:VCARD\nVERSION:2.1\nFN:x\nAGENT:\nBEGIN:VCARD\nFN:y\nEND:VCARD\n"
                  "END:VCARD\n",
                  "line 5: BEGIN inside a card");
    CHECK_REFUSED("BEGIN:VCARD\nFN:x\nEND:VCARD\nBEGIN:VCARD\nFN:y\nEND:VCARD\n",
                  "two cards (the second begins on line 4)");
    CHECK_REFUSED("BEGIN:VCARD\nFN:x\nEND:VCARD\nX-MORE:1\n",
                  "line 4: text after END:VCARD");
    CHECK_REFUSED("BEGIN:VCARD\nFN:x\nEND:VCALENDAR\n",
                  "line 3: this END does not close");
    /* contents */
    CHECK_REFUSED("BEGIN:VCARD\nVERSION:3.0\nEMAIL:a@b\nEND:VCARD\n",
                  "no FN and no N: a contact needs a name");
    CHECK_REFUSED("BEGIN:VCARD\nVERSION:5.0\nFN:x\nEND:VCARD\n",
                  "line 2: VERSION is not 2.1, 3.0 or 4.0");
    CHECK_REFUSED("BEGIN:VCARD\nFN:x\njust text\nEND:VCARD\n",
                  "line 3 is not a vCard content line");
    CHECK_REFUSED("BEGIN:VCARD\nFN:x\n.EMAIL:a\nEND:VCARD\n", "line 3 is not");
    CHECK_REFUSED("BEGIN:VCARD\nFN:x\nitem1.:a\nEND:VCARD\n", "line 3 is not");
    CHECK_REFUSED("BEGIN:VCARD\nFN:x\nX;P=\"open:a\nEND:VCARD\n", "line 3 is not");
    CHECK_REFUSED("BEGIN:VCARD\nFN:x\n\n folded after a blank\nEND:VCARD\n",
                  "line 4 is not");
    /* NUL bytes */
    const char nul[] = "BEGIN:VCARD\nFN:a\0b\nEND:VCARD\n";
    CHECK_REFUSED_N(nul, sizeof(nul) - 1, "NUL byte");
    const char nul2[] = "\0BEGIN:VCARD\nFN:a\nEND:VCARD\n";
    CHECK_REFUSED_N(nul2, sizeof(nul2) - 1, "NUL byte");
    /* a UID too long */
    struct dynbuf b;
    dynbuf_init(&b, 1 << 20);
    dynbuf_adds(&b, "BEGIN:VCARD\nFN:x\nUID:");
    for (int k = 0; k < VCARD_UID_MAX + 1; k++)
        dynbuf_addc(&b, 'u');
    dynbuf_adds(&b, "\nEND:VCARD\n");
    CHECK_REFUSED(b.data, "UID longer than 1024 bytes");
    dynbuf_free(&b);
    /* too big */
    char *huge = calloc(1, VCARD_SIZE_MAX + 1);
    memcpy(huge, "BEGIN:VCARD\n", 12);
    memset(huge + 12, ' ', VCARD_SIZE_MAX + 1 - 12);
    CHECK_REFUSED_N(huge, VCARD_SIZE_MAX + 1, "larger than 16 MiB");
    free(huge);
    struct vcard_info v;
    CHECK(vcard_parse(NULL, 0, &v, NULL) == -1);
}

/* A megabyte on one line: a PHOTO is fine; a FN that long is read only in
 * part. */
static void
test_big_lines(void)
{
    size_t n = 1 << 20;
    struct dynbuf b;
    struct vcard_info v;
    dynbuf_init(&b, 4 << 20);
    dynbuf_adds(&b,
                "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Big\r\nPHOTO;ENCODING=b;TYPE=JPEG:");
    for (size_t k = 0; k < n; k++)
        dynbuf_addc(&b, 'A' + (char)(k % 26));
    dynbuf_adds(&b, "\r\nEND:VCARD\r\n");
    CHECK(parse_n(b.data, b.len, &v, NULL) == 0);
    CHECK_STR(v.name, "Big");
    vcard_info_free(&v);

    dynbuf_reset(&b);
    dynbuf_adds(&b, "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:");
    for (size_t k = 0; k < n; k++)
        dynbuf_adds(&b, k % 2 ? "\xc3\xa9" : "a");
    dynbuf_adds(&b, "\r\nEND:VCARD\r\n");
    CHECK(parse_n(b.data, b.len, &v, NULL) == 0);
    CHECK(v.fn && strlen(v.fn) <= VCARD_TEXT_MAX && strlen(v.fn) > VCARD_TEXT_MAX - 4);
    CHECK(v.fn && utf8_valid(v.fn, strlen(v.fn)));
    vcard_info_free(&v);

    /* a megabyte folded into 75-octet lines, and one of QP soft breaks */
    dynbuf_reset(&b);
    dynbuf_adds(&b, "BEGIN:VCARD\r\nVERSION:2.1\r\nFN;ENCODING=QUOTED-PRINTABLE:");
    for (size_t k = 0; k < n / 8; k++)
        dynbuf_adds(&b, "=41=42=\r\n");
    dynbuf_adds(&b, "end\r\nNOTE:x\r\n");
    for (size_t k = 0; k < n / 64; k++)
        dynbuf_adds(&b,
                    " 0123456789012345678901234567890123456789012345678901234567890\r\n");
    dynbuf_adds(&b, "END:VCARD\r\n");
    CHECK(parse_n(b.data, b.len, &v, NULL) == 0);
    CHECK(v.fn && strncmp(v.fn, "ABABAB", 6) == 0);
    vcard_info_free(&v);
    dynbuf_free(&b);
}

static void
test_with_uid(void)
{
    size_t n;
    struct vcard_info v;
    /* after VERSION, with its line end */
    char *r =
        with_uid("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:x\r\nEND:VCARD\r\n", "abc-1", &n);
    CHECK_STR(r, "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:abc-1\r\nFN:x\r\nEND:VCARD\r\n");
    CHECK(r && n == strlen(r));
    free(r);
    r = with_uid("BEGIN:VCARD\nFN:x\nVERSION:4.0\nEND:VCARD", "abc-2", &n);
    CHECK_STR(r, "BEGIN:VCARD\nFN:x\nVERSION:4.0\nUID:abc-2\nEND:VCARD");
    free(r);
    /* no VERSION: after BEGIN */
    r = with_uid("BEGIN:VCARD\nFN:x\r\nEND:VCARD\n", "abc-3", &n);
    CHECK_STR(r, "BEGIN:VCARD\nUID:abc-3\nFN:x\r\nEND:VCARD\n");
    free(r);
    /* a folded VERSION line: after its last physical line */
    r = with_uid("BEGIN:VCARD\r\nVER\r\n SION:3.0\r\nFN:x\r\nEND:VCARD\r\n", "u", &n);
    CHECK_STR(r, "BEGIN:VCARD\r\nVER\r\n SION:3.0\r\nUID:u\r\nFN:x\r\nEND:VCARD\r\n");
    free(r);
    /* a UID already there: the very same bytes */
    r = with_uid(radicale_card, "other", &n);
    CHECK(r && n == strlen(radicale_card) && strcmp(r, radicale_card) == 0);
    free(r);
    /* a long UID, folded between characters, reads back whole */
    char uid[400] = "";
    for (int k = 0; k < 100; k++)
        strcat(uid, "ü");
    r = with_uid("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:x\r\nEND:VCARD\r\n", uid, &n);
    CHECK(r != NULL);
    if (r) {
        for (const char *p = r; *p;) {
            const char *e = strstr(p, "\r\n");
            CHECK(e && e - p <= 75);
            if (!e)
                break;
            p = e + 2;
        }
        CHECK(parse(r, &v, NULL) == 0);
        CHECK_STR(v.uid, uid);
        vcard_info_free(&v);
    }
    free(r);
    /* refused */
    const char *ok = "BEGIN:VCARD\nFN:x\nEND:VCARD\n";
    CHECK(with_uid(ok, "", &n) == NULL);
    CHECK(with_uid(ok, "a,b", &n) == NULL);
    CHECK(with_uid(ok, "a;b", &n) == NULL);
    CHECK(with_uid(ok, "a\\b", &n) == NULL);
    CHECK(with_uid(ok, "a\nb", &n) == NULL);
    CHECK(with_uid(ok, "\xff", &n) == NULL);
    CHECK(vcard_with_uid(ok, strlen(ok), NULL, &n) == NULL);
    CHECK(with_uid("BEGIN:VCARD\nEND:VCARD\n", "x", &n) == NULL);
    CHECK(with_uid("junk", "x", &n) == NULL);
}

int
main(void)
{
    RUN(test_v3);
    RUN(test_v4);
    RUN(test_folding);
    RUN(test_groups_params_escapes);
    RUN(test_v21);
    RUN(test_refused);
    RUN(test_big_lines);
    RUN(test_with_uid);
    return check_done();
}
