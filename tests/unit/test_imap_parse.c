/* Unit tests for sync/imap_parse: response framing and tokenizing, hostile and
 * truncated input, astring quoting, sequence sets and modified UTF-7. */
#include "formats/mutf7.h"
#include "sync/imap_parse.h"
#include "common/dynbuf.h"
#include "common/util.h"
#include "tests/unit/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAP (1024 * 1024)

/* A canonical text form of values and responses, so that tests can compare
 * whole responses and a split stream can be compared with an unsplit one. */
static void
dump_value(struct dynbuf *b, const struct imap_value *v)
{
    switch (v->kind) {
    case IMAP_ATOM:
        dynbuf_add(b, v->data, v->len);
        break;
    case IMAP_NIL:
        dynbuf_adds(b, "NIL");
        break;
    case IMAP_STRING:
        if (v->literal)
            dynbuf_printf(b, "{%zu}", v->len);
        dynbuf_addc(b, '"');
        for (size_t i = 0; i < v->len; i++) {
            unsigned char c = (unsigned char)v->data[i];
            if (c == '"' || c == '\\')
                dynbuf_printf(b, "\\%c", c);
            else if (c < 0x20 || c > 0x7e)
                dynbuf_printf(b, "\\x%02x", c);
            else
                dynbuf_addc(b, (char)c);
        }
        dynbuf_addc(b, '"');
        break;
    case IMAP_LIST:
        dynbuf_addc(b, '(');
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                dynbuf_addc(b, ' ');
            dump_value(b, &v->items[i]);
        }
        dynbuf_addc(b, ')');
        break;
    }
}

static const char *
status_name(enum imap_status st)
{
    static const char *names[] = {"NONE", "OK", "NO", "BAD", "BYE", "PREAUTH"};
    return names[st];
}

static void
dump_response(struct dynbuf *b, const struct imap_response *r)
{
    if (r->kind == IMAP_RESP_CONTINUATION) {
        dynbuf_printf(b, "+ |%s|", r->text);
        return;
    }
    if (r->kind == IMAP_RESP_TAGGED)
        dynbuf_printf(b, "%s %s", r->tag, status_name(r->status));
    else if (r->status != IMAP_ST_NONE)
        dynbuf_printf(b, "* %s", status_name(r->status));
    if (r->status != IMAP_ST_NONE) {
        if (r->code) {
            dynbuf_printf(b, " [%s", r->code);
            for (size_t i = 0; i < r->code_args.n; i++) {
                dynbuf_addc(b, ' ');
                dump_value(b, &r->code_args.items[i]);
            }
            dynbuf_addc(b, ']');
        }
        dynbuf_printf(b, " |%s|", r->text);
        return;
    }
    dynbuf_adds(b, "*");
    if (r->has_number)
        dynbuf_printf(b, " %u", r->number);
    dynbuf_printf(b, " %s", r->name);
    for (size_t i = 0; i < r->args.n; i++) {
        dynbuf_addc(b, ' ');
        dump_value(b, &r->args.items[i]);
    }
}

/* Drain every response, dumping each on its own line. */
static enum imap_parse_result
drain(struct imap_parser *p, struct dynbuf *out)
{
    struct imap_response *r;
    enum imap_parse_result res;
    while ((res = imap_parser_next(p, &r)) == IMAP_PARSE_OK) {
        dump_response(out, r);
        dynbuf_addc(out, '\n');
    }
    return res;
}

/* Parse s whole with the given cap; returns the final result, dumps into out
 * (which the caller frees). */
static enum imap_parse_result
parse_capped(const char *s, size_t len, size_t cap, struct dynbuf *out)
{
    struct imap_parser *p = imap_parser_new(cap);
    dynbuf_init(out, SIZE_MAX / 2);
    dynbuf_adds(out, "");
    enum imap_parse_result res = IMAP_PARSE_TOO_BIG;
    if (imap_parser_feed(p, s, len) == 0)
        res = drain(p, out);
    imap_parser_free(p);
    return res;
}

/* Parse the C string s, expect `want` as the dump and MORE at the end. */
static int
expect_dump(const char *s, const char *want)
{
    struct dynbuf out;
    enum imap_parse_result res = parse_capped(s, strlen(s), CAP, &out);
    int ok = res == IMAP_PARSE_MORE && strcmp(out.data, want) == 0;
    if (!ok)
        printf("# input: %s# got (%d): %s# want: %s", s, res, out.data, want);
    dynbuf_free(&out);
    return ok;
}

/* Parse s and expect a failure of kind `want` before any response. */
static int
expect_fail(const char *s, size_t len, enum imap_parse_result want)
{
    struct imap_parser *p = imap_parser_new(CAP);
    struct imap_response *r = NULL;
    enum imap_parse_result res = IMAP_PARSE_TOO_BIG;
    if (imap_parser_feed(p, s, len) == 0)
        res = imap_parser_next(p, &r);
    int ok = res == want && r == NULL && imap_parser_error(p)[0] != '\0';
    if (!ok)
        printf("# input %.*s: got %d want %d\n", (int)len, s, res, want);
    /* failures are sticky */
    if (ok && imap_parser_next(p, &r) != want)
        ok = 0;
    imap_parser_free(p);
    return ok;
}

static void
test_simple_untagged(void)
{
    const char *s = "* 3 EXISTS\r\n* CAPABILITY IMAP4rev1 LITERAL+ IDLE\r\n"
                    "* FLAGS (\\Answered \\Flagged $Forwarded \\*)\r\n";
    struct imap_parser *p = imap_parser_new(CAP);
    CHECK(imap_parser_feed(p, s, strlen(s)) == 0);
    struct imap_response *r;
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
    CHECK(r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_ST_NONE);
    CHECK(r->has_number && r->number == 3);
    CHECK_STR(r->name, "EXISTS");
    CHECK(r->args.kind == IMAP_LIST && r->args.n == 0);
    CHECK(r->code == NULL);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
    CHECK(!r->has_number);
    CHECK_STR(r->name, "CAPABILITY");
    CHECK(r->args.n == 3 && imap_value_is(&r->args.items[1], "literal+"));
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
    CHECK_STR(r->name, "FLAGS");
    CHECK(r->args.n == 1 && r->args.items[0].kind == IMAP_LIST);
    const struct imap_value *fl = &r->args.items[0];
    CHECK(fl->n == 4 && imap_value_is(&fl->items[0], "\\answered") &&
          imap_value_is(&fl->items[2], "$Forwarded") &&
          imap_value_is(&fl->items[3], "\\*"));
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_MORE && r == NULL);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_MORE);
    imap_parser_free(p);
    /* lower-case names are upper-cased */
    CHECK(expect_dump("* 1 fetch (uid 5)\r\n", "* 1 FETCH (uid 5)\n"));
}

static void
test_tagged(void)
{
    const char *s = "a1 OK [READ-WRITE] SELECT completed\r\n"
                    "A0002 no [TRYCREATE] no such mailbox\r\n"
                    "x.3 BAD\r\n";
    struct imap_parser *p = imap_parser_new(CAP);
    CHECK(imap_parser_feed(p, s, strlen(s)) == 0);
    struct imap_response *r;
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
    CHECK(r->kind == IMAP_RESP_TAGGED && r->status == IMAP_ST_OK);
    CHECK_STR(r->tag, "a1");
    CHECK_STR(r->code, "READ-WRITE");
    CHECK(r->code_args.kind == IMAP_LIST && r->code_args.n == 0);
    CHECK_STR(r->text, "SELECT completed");
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
    CHECK(r->status == IMAP_ST_NO);
    CHECK_STR(r->tag, "A0002");
    CHECK_STR(r->code, "TRYCREATE");
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
    CHECK(r->status == IMAP_ST_BAD && r->code == NULL);
    CHECK_STR(r->tag, "x.3");
    CHECK_STR(r->text, "");
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_MORE);
    imap_parser_free(p);
}

static void
test_resp_codes(void)
{
    CHECK(expect_dump("* OK [PERMANENTFLAGS (\\Seen \\Deleted \\*)] Limited\r\n",
                      "* OK [PERMANENTFLAGS (\\Seen \\Deleted \\*)] |Limited|\n"));
    CHECK(expect_dump("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
                      "* OK [UIDVALIDITY 3857529045] |UIDs valid|\n"));
    CHECK(expect_dump("A003 OK [APPENDUID 38505 3955] APPEND completed\r\n",
                      "A003 OK [APPENDUID 38505 3955] |APPEND completed|\n"));
    CHECK(expect_dump("A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
                      "A004 OK [COPYUID 38505 304,319:320 3956:3958] |Done|\n"));
    CHECK(expect_dump("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready.\r\n",
                      "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] |ready.|\n"));
    CHECK(expect_dump("d105 OK [MODIFIED 7,9] Conditional STORE failed\r\n",
                      "d105 OK [MODIFIED 7,9] |Conditional STORE failed|\n"));
    CHECK(expect_dump("* OK [CLOSED] Previous mailbox is now closed\r\n",
                      "* OK [CLOSED] |Previous mailbox is now closed|\n"));
    CHECK(expect_dump("* NO [ALERT] Disk (almost) full\r\n",
                      "* NO [ALERT] |Disk (almost) full|\n"));
    CHECK(expect_dump("* OK [HIGHESTMODSEQ 715194045007]\r\n",
                      "* OK [HIGHESTMODSEQ 715194045007] ||\n"));
    CHECK(expect_dump("* ok [uidnext 4392] Predicted next UID\r\n",
                      "* OK [UIDNEXT 4392] |Predicted next UID|\n"));
    CHECK(expect_dump("* BYE [UNAVAILABLE] shutting down\r\n",
                      "* BYE [UNAVAILABLE] |shutting down|\n"));
    CHECK(expect_dump("* PREAUTH [CAPABILITY IMAP4rev1] Hi\r\n",
                      "* PREAUTH [CAPABILITY IMAP4rev1] |Hi|\n"));
    CHECK(expect_dump("* OK [BADCHARSET (UTF-8 \"US-ASCII\")] x\r\n",
                      "* OK [BADCHARSET (UTF-8 \"US-ASCII\")] |x|\n"));

    /* Arguments that do not tokenize are kept raw, as the grammar allows any
     * text there; a '[' that forms no code is text. */
    CHECK(
        expect_dump("* OK [X-ODD a \"b (c] rest\r\n", "* OK [X-ODD a \"b (c] |rest|\n"));
    CHECK(expect_dump("* NO [X-PAREN (a] b\r\n", "* NO [X-PAREN (a] |b|\n"));
    CHECK(expect_dump("* OK [no closing bracket\r\n", "* OK |[no closing bracket|\n"));
    CHECK(expect_dump("* OK [] empty\r\n", "* OK |[] empty|\n"));
    CHECK(expect_dump("a1 OK [ALERT]\r\n", "a1 OK [ALERT] ||\n"));

    /* Typed access to the arguments. */
    struct imap_parser *p = imap_parser_new(CAP);
    const char *s = "A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n";
    CHECK(imap_parser_feed(p, s, strlen(s)) == 0);
    struct imap_response *r;
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
    uint64_t v = 0;
    CHECK(r->code_args.n == 3 && imap_value_u64(&r->code_args.items[0], &v) == 0 &&
          v == 38505);
    CHECK(imap_value_u64(&r->code_args.items[1], &v) == -1);
    imap_parser_free(p);
}

static void
test_text_not_tokenized(void)
{
    CHECK(expect_dump("* OK hello \"world\r\n", "* OK |hello \"world|\n"));
    CHECK(expect_dump("a2 NO [ALERT] can't (do \"it ]\r\n",
                      "a2 NO [ALERT] |can't (do \"it ]|\n"));
    /* A "{5}" at the end of status text is text: no literal follows. */
    CHECK(expect_dump("a3 BAD Error in argument {5}\r\n* 1 EXISTS\r\n",
                      "a3 BAD |Error in argument {5}|\n* 1 EXISTS\n"));
    CHECK(expect_dump("* BYE {5}\r\n", "* BYE |{5}|\n"));
    CHECK(expect_dump("+ {5}\r\n", "+ |{5}|\n"));
    CHECK(expect_dump("* OK\r\n", "* OK ||\n"));
    /* not status words: data responses */
    CHECK(expect_dump("* OKAY 1\r\n", "* OKAY 1\n"));
    CHECK(expect_dump("* 5 OK\r\n", "* 5 OK\n"));
}

static void
test_continuation(void)
{
    CHECK(expect_dump("+ Ready for literal data\r\n", "+ |Ready for literal data|\n"));
    CHECK(expect_dump("+\r\n", "+ ||\n"));
    CHECK(expect_dump("+ \r\n", "+ ||\n"));
    CHECK(expect_dump("+ YGgGCSqGSIb3EgECAgIBAAD/////6jcyG4GE3KkTzQ==\r\n",
                      "+ |YGgGCSqGSIb3EgECAgIBAAD/////6jcyG4GE3KkTzQ==|\n"));
    struct imap_parser *p = imap_parser_new(CAP);
    CHECK(imap_parser_feed(p, "+ go\r\n", 6) == 0);
    struct imap_response *r;
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
    CHECK(r->kind == IMAP_RESP_CONTINUATION && r->status == IMAP_ST_NONE);
    CHECK_STR(r->text, "go");
    imap_parser_free(p);
}

static void
test_literal_hides_lines(void)
{
    const char *body = "* 2 EXISTS\r\na1 OK done\r\n+ more\r\n)\r\n";
    char s[256];
    snprintf(s, sizeof(s), "* 1 FETCH (UID 7 BODY[] {%zu}\r\n%s)\r\na1 OK Fetch done\r\n",
             strlen(body), body);
    CHECK(expect_dump(s, "* 1 FETCH (UID 7 BODY[] {35}\"* 2 EXISTS\\x0d\\x0aa1 OK "
                         "done\\x0d\\x0a+ more\\x0d\\x0a)\\x0d\\x0a\")\n"
                         "a1 OK |Fetch done|\n"));
}

static void
test_literal_partial(void)
{
    struct imap_parser *p = imap_parser_new(CAP);
    struct imap_response *r;
    const char *a = "* 1 FETCH (BODY[] {10}\r\n01234";
    CHECK(imap_parser_feed(p, a, strlen(a)) == 0);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_MORE);
    CHECK(imap_parser_feed(p, "56789", 5) == 0);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_MORE); /* line after it missing */
    CHECK(imap_parser_feed(p, ")\r", 2) == 0);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_MORE);
    CHECK(imap_parser_feed(p, "\n", 1) == 0);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
    const struct imap_value *body = imap_fetch_item(&r->args.items[0], "body[]");
    CHECK(body && body->kind == IMAP_STRING && body->literal && body->len == 10 &&
          memcmp(body->data, "0123456789", 10) == 0);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_MORE);
    imap_parser_free(p);
}

static void
test_literal_too_big(void)
{
    struct imap_parser *p = imap_parser_new(1000);
    struct imap_response *r;
    const char *a = "* 1 FETCH (BODY[] {1000}\r\n";
    CHECK(imap_parser_feed(p, a, strlen(a)) == 0);
    /* refused before a byte of it arrives */
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_TOO_BIG);
    CHECK(strstr(imap_parser_error(p), "1000") != NULL);
    CHECK(imap_parser_feed(p, "x", 1) == -1);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_TOO_BIG);
    imap_parser_free(p);

    /* the same response fits a larger cap */
    struct dynbuf out;
    char *big = xmalloc(2000);
    memcpy(big, a, strlen(a));
    memset(big + strlen(a), 'x', 1000);
    memcpy(big + strlen(a) + 1000, ")\r\n", 3);
    size_t n = strlen(a) + 1003;
    CHECK(parse_capped(big, n, n, &out) == IMAP_PARSE_MORE && out.len > 1000);
    dynbuf_free(&out);
    CHECK(parse_capped(big, n, n - 1, &out) == IMAP_PARSE_TOO_BIG && out.len == 0);
    dynbuf_free(&out);
    free(big);

    /* a line that never ends */
    p = imap_parser_new(100);
    char line[64];
    memset(line, 'a', sizeof(line));
    CHECK(imap_parser_feed(p, line, 64) == 0);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_MORE);
    CHECK(imap_parser_feed(p, line, 64) == 0);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_TOO_BIG);
    imap_parser_free(p);

    /* the receive buffer itself is capped */
    p = imap_parser_new(100);
    char lots[300];
    memset(lots, 'a', sizeof(lots));
    CHECK(imap_parser_feed(p, lots, sizeof(lots)) == -1);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_TOO_BIG);
    imap_parser_free(p);
}

static void
test_nil_and_strings(void)
{
    CHECK(expect_dump("* X NIL nil \"NIL\" {3}\r\nNIL NILS \"\"\r\n",
                      "* X NIL NIL \"NIL\" {3}\"NIL\" NILS \"\"\n"));
    struct imap_parser *p = imap_parser_new(CAP);
    const char *s = "* X NIL \"NIL\" Nil\r\n";
    CHECK(imap_parser_feed(p, s, strlen(s)) == 0);
    struct imap_response *r;
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
    CHECK(r->args.n == 3);
    CHECK(r->args.items[0].kind == IMAP_NIL);
    CHECK(r->args.items[1].kind == IMAP_STRING && !r->args.items[1].literal &&
          r->args.items[1].len == 3);
    CHECK(r->args.items[2].kind == IMAP_NIL);
    CHECK(!imap_value_is(&r->args.items[1], "NIL"));
    imap_parser_free(p);
}

static void
test_quoted_escapes(void)
{
    CHECK(expect_dump("* X \"a\\\"b\" \"c\\\\d\" \"\\\\\" \"(\" \"say \\\"hi\\\"\"\r\n",
                      "* X \"a\\\"b\" \"c\\\\d\" \"\\\\\" \"(\" \"say \\\"hi\\\"\"\n"));
    struct imap_parser *p = imap_parser_new(CAP);
    const char *s = "* X \"a\\\"b\\\\c\" \"caf\xc3\xa9\"\r\n";
    CHECK(imap_parser_feed(p, s, strlen(s)) == 0);
    struct imap_response *r;
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
    CHECK(r->args.n == 2 && r->args.items[0].len == 5 &&
          memcmp(r->args.items[0].data, "a\"b\\c", 5) == 0);
    CHECK(r->args.items[1].len == 5); /* 8-bit (UTF8=ACCEPT) is kept */
    imap_parser_free(p);
}

static void
test_nested_lists(void)
{
    CHECK(expect_dump("* X (a (b (c d) ()) e) ((())) f\r\n",
                      "* X (a (b (c d) ()) e) ((())) f\n"));
    CHECK(expect_dump("* X (a(b)c)\r\n", "* X (a (b) c)\n"));
}

static void
test_bodystructure(void)
{
    const char *s =
        "* 12 FETCH (UID 4827 BODYSTRUCTURE (((\"TEXT\" \"PLAIN\" (\"CHARSET\" "
        "\"UTF-8\") "
        "NIL NIL \"QUOTED-PRINTABLE\" 1204 34 NIL NIL NIL NIL)(\"TEXT\" \"HTML\" "
        "(\"CHARSET\" \"UTF-8\") NIL NIL \"QUOTED-PRINTABLE\" 5302 110 NIL NIL NIL NIL) "
        "\"ALTERNATIVE\" (\"BOUNDARY\" \"b2\") NIL NIL NIL)(\"APPLICATION\" \"PDF\" "
        "(\"NAME\" \"report.pdf\") NIL NIL \"BASE64\" 84310 NIL (\"ATTACHMENT\" "
        "(\"FILENAME\" \"report.pdf\")) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"b1\") NIL "
        "\"en\" NIL) MODSEQ (12345))\r\n";
    struct imap_parser *p = imap_parser_new(CAP);
    CHECK(imap_parser_feed(p, s, strlen(s)) == 0);
    struct imap_response *r;
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
    if (!r) {
        imap_parser_free(p);
        return;
    }
    CHECK(r->number == 12);
    CHECK_STR(r->name, "FETCH");
    CHECK(r->args.n == 1);
    const struct imap_value *att = &r->args.items[0];
    uint64_t v = 0;
    CHECK(imap_value_u64(imap_fetch_item(att, "UID"), &v) == 0 && v == 4827);
    const struct imap_value *ms = imap_fetch_item(att, "modseq");
    CHECK(ms && ms->kind == IMAP_LIST && ms->n == 1 &&
          imap_value_u64(&ms->items[0], &v) == 0 && v == 12345);
    const struct imap_value *bs = imap_fetch_item(att, "BODYSTRUCTURE");
    CHECK(bs && bs->kind == IMAP_LIST && bs->n == 7);
    if (bs && bs->n == 7) {
        const struct imap_value *alt = &bs->items[0];
        CHECK(alt->kind == IMAP_LIST && alt->n == 7);
        CHECK(alt->items[0].kind == IMAP_LIST && alt->items[0].n == 12);
        CHECK(alt->items[2].kind == IMAP_STRING && alt->items[2].len == 11 &&
              memcmp(alt->items[2].data, "ALTERNATIVE", 11) == 0);
        CHECK(alt->items[0].items[3].kind == IMAP_NIL);
        const struct imap_value *pdf = &bs->items[1];
        CHECK(pdf->kind == IMAP_LIST && pdf->n == 11);
        CHECK(imap_value_u64(&pdf->items[6], &v) == 0 && v == 84310);
        CHECK(pdf->items[8].kind == IMAP_LIST && pdf->items[8].n == 2 &&
              pdf->items[8].items[1].kind == IMAP_LIST);
        CHECK(bs->items[2].kind == IMAP_STRING && bs->items[2].len == 5);
        CHECK(bs->items[5].kind == IMAP_STRING && bs->items[6].kind == IMAP_NIL);
    }
    imap_parser_free(p);
}

static void
test_envelope(void)
{
    const char *s =
        "* 2 FETCH (ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" {25}\r\n"
        "IMAP4rev1 WG mtg (summary ((\"Terry Gray\" NIL \"gray\" "
        "\"cac.washington.edu\")) "
        "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL "
        "\"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) "
        "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" "
        "\"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\") FLAGS "
        "(\\Seen))\r\n";
    struct imap_parser *p = imap_parser_new(CAP);
    CHECK(imap_parser_feed(p, s, strlen(s)) == 0);
    struct imap_response *r;
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
    if (!r) {
        imap_parser_free(p);
        return;
    }
    const struct imap_value *env = imap_fetch_item(&r->args.items[0], "ENVELOPE");
    CHECK(env && env->kind == IMAP_LIST && env->n == 10);
    if (env && env->n == 10) {
        /* the subject literal holds an unbalanced "(" */
        CHECK(env->items[1].literal && env->items[1].len == 25 &&
              memcmp(env->items[1].data, "IMAP4rev1 WG mtg (summary", 25) == 0);
        CHECK(env->items[2].kind == IMAP_LIST && env->items[2].n == 1 &&
              env->items[2].items[0].n == 4 &&
              env->items[2].items[0].items[1].kind == IMAP_NIL);
        CHECK(env->items[6].n == 2);
        CHECK(env->items[7].kind == IMAP_NIL && env->items[8].kind == IMAP_NIL);
        CHECK(env->items[9].kind == IMAP_STRING);
    }
    const struct imap_value *fl = imap_fetch_item(&r->args.items[0], "FLAGS");
    CHECK(fl && fl->n == 1 && imap_value_is(&fl->items[0], "\\seen"));
    imap_parser_free(p);
}

static void
test_fetch_items(void)
{
    const char *s = "* 4 FETCH (UID 9 BODY[HEADER.FIELDS (DATE FROM)]<0> {6}\r\n"
                    "Date: BINARY[1.2] ~{3}\r\n\x00\x01\x02"
                    " BODY[TEXT] {4+}\r\nabcd X-GM-LABELS (\\Inbox \"a b\")"
                    " MODSEQ (12345))\r\n";
    size_t len = strlen("* 4 FETCH (UID 9 BODY[HEADER.FIELDS (DATE FROM)]<0> {6}\r\n"
                        "Date: BINARY[1.2] ~{3}\r\n") +
                 3 +
                 strlen(" BODY[TEXT] {4+}\r\nabcd X-GM-LABELS (\\Inbox \"a b\")"
                        " MODSEQ (12345))\r\n");
    struct imap_parser *p = imap_parser_new(CAP);
    CHECK(imap_parser_feed(p, s, len) == 0);
    struct imap_response *r;
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
    if (!r) {
        imap_parser_free(p);
        return;
    }
    const struct imap_value *att = &r->args.items[0];
    CHECK(att->n == 12);
    const struct imap_value *h =
        imap_fetch_item(att, "body[header.fields (date from)]<0>");
    CHECK(h && h->literal && h->len == 6 && memcmp(h->data, "Date: ", 6) == 0);
    CHECK(imap_fetch_item(att, "BODY[HEADER.FIELDS (DATE FROM)]") == NULL);
    const struct imap_value *bin = imap_fetch_item(att, "BINARY[1.2]");
    CHECK(bin && bin->len == 3 && bin->data[0] == 0 && bin->data[2] == 2);
    const struct imap_value *t = imap_fetch_item(att, "BODY[TEXT]");
    CHECK(t && t->len == 4 && memcmp(t->data, "abcd", 4) == 0);
    CHECK(imap_fetch_item(att, "RFC822.SIZE") == NULL);
    CHECK(imap_fetch_item(NULL, "UID") == NULL);
    uint64_t v;
    const struct imap_value big = {
        .kind = IMAP_ATOM, .data = "18446744073709551615", .len = 20};
    CHECK(imap_value_u64(&big, &v) == 0 && v == UINT64_MAX);
    const struct imap_value over = {
        .kind = IMAP_ATOM, .data = "18446744073709551616", .len = 20};
    CHECK(imap_value_u64(&over, &v) == -1);
    const struct imap_value empty_atom = {.kind = IMAP_ATOM, .data = "", .len = 0};
    CHECK(imap_value_u64(&empty_atom, &v) == -1);
    const struct imap_value str = {.kind = IMAP_STRING, .data = "12", .len = 2};
    CHECK(imap_value_u64(&str, &v) == -1);
    imap_parser_free(p);

    /* a '[' without ']' is an ordinary atom character */
    CHECK(expect_dump("* LIST () \"/\" foo[bar\r\n", "* LIST () \"/\" foo[bar\n"));
    CHECK(expect_dump("* LIST () \"/\" a]b\r\n", "* LIST () \"/\" a]b\n"));
}

static void
test_vanished_esearch(void)
{
    CHECK(expect_dump("* VANISHED (EARLIER) 1:3,5,7:*\r\n",
                      "* VANISHED (EARLIER) 1:3,5,7:*\n"));
    CHECK(expect_dump("* VANISHED 405,407,410\r\n", "* VANISHED 405,407,410\n"));
    CHECK(expect_dump("* ESEARCH (TAG \"a1\") UID ALL 1:10\r\n",
                      "* ESEARCH (TAG \"a1\") UID ALL 1:10\n"));
    CHECK(expect_dump("* ESEARCH (TAG \"a2\") UID MIN 2 MAX 4711 COUNT 20\r\n",
                      "* ESEARCH (TAG \"a2\") UID MIN 2 MAX 4711 COUNT 20\n"));
    CHECK(expect_dump("* SEARCH 2 84 882 (MODSEQ 917162500)\r\n",
                      "* SEARCH 2 84 882 (MODSEQ 917162500)\n"));
    CHECK(expect_dump("* SEARCH\r\n", "* SEARCH\n"));
    CHECK(
        expect_dump("* ENABLED CONDSTORE QRESYNC\r\n", "* ENABLED CONDSTORE QRESYNC\n"));
}

static void
test_list_status(void)
{
    CHECK(expect_dump("* LIST (\\HasNoChildren) \"/\" INBOX\r\n",
                      "* LIST (\\HasNoChildren) \"/\" INBOX\n"));
    CHECK(expect_dump("* LIST (\\Noselect) \"\\\\\" \"Entw&APw-rfe\"\r\n",
                      "* LIST (\\Noselect) \"\\\\\" \"Entw&APw-rfe\"\n"));
    CHECK(expect_dump("* LIST (\\NoInferiors) NIL Archive\r\n",
                      "* LIST (\\NoInferiors) NIL Archive\n"));
    CHECK(expect_dump("* LIST () \".\" {9}\r\nodd \"name\r\n",
                      "* LIST () \".\" {9}\"odd \\\"name\"\n"));
    CHECK(expect_dump("* LSUB () \".\" #news.comp.mail.misc\r\n",
                      "* LSUB () \".\" #news.comp.mail.misc\n"));
    CHECK(expect_dump("* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n",
                      "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\n"));
    CHECK(expect_dump("* STATUS \"Sent Items\" (MESSAGES 3 HIGHESTMODSEQ 7011231777)\r\n",
                      "* STATUS \"Sent Items\" (MESSAGES 3 HIGHESTMODSEQ 7011231777)\n"));
    CHECK(expect_dump("* CAPABILITY IMAP4rev1 STARTTLS AUTH=GSSAPI LOGINDISABLED\r\n",
                      "* CAPABILITY IMAP4rev1 STARTTLS AUTH=GSSAPI LOGINDISABLED\n"));
    CHECK(expect_dump("* NAMESPACE ((\"\" \"/\")) NIL ((\"Public Folders/\" \"/\"))\r\n",
                      "* NAMESPACE ((\"\" \"/\")) NIL ((\"Public Folders/\" \"/\"))\n"));
}

static void
test_bare_lf(void)
{
    CHECK(expect_dump("* 1 EXISTS\n* 1 FETCH (BODY[] {3}\nab\n)\na1 OK done\n",
                      "* 1 EXISTS\n* 1 FETCH (BODY[] {3}\"ab\\x0a\")\na1 OK |done|\n"));
}

static void
test_garbage(void)
{
    static const char *bad[] = {
        "*\r\n",
        "* \r\n",
        "* (\r\n",
        "* X (\r\n",
        "a1\r\n",
        "a1 \r\n",
        "a1 FOO bar\r\n",
        "a1 BYE x\r\n",
        "* X a)\r\n",
        "* X )\r\n",
        "* X {12x}\r\n",
        "* X {}\r\n",
        "* X {5} y\r\n",
        "* X {99999999999999999999}\r\n",
        "* X {999999999999999999999999999999}\r\n",
        "* X \"unterminated\r\n",
        "* X \"a\rb\"\r\n",
        "* X a\x01 b\r\n",
        "\r\n",
        "\n",
        "(a1 OK\r\n",
        "* 99999999999 EXISTS\r\n",
        "* 12\r\n",
        "* 12 (x)\r\n",
        "a\"1 OK x\r\n",
        "+ a\0b\r\n",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        size_t len = strlen(bad[i]);
        if (bad[i][0] == '+')
            len = 7;
        CHECK(expect_fail(bad[i], len, IMAP_PARSE_ERROR));
    }
    /* the first good response still comes out before the bad one */
    struct imap_parser *p = imap_parser_new(CAP);
    const char *s = "* 1 EXISTS\r\n* X )\r\n* 2 EXISTS\r\n";
    CHECK(imap_parser_feed(p, s, strlen(s)) == 0);
    struct imap_response *r;
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_ERROR && r == NULL);
    CHECK(strstr(imap_parser_error(p), ")") != NULL);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_ERROR);
    CHECK(imap_parser_feed(p, "x", 1) == -1);
    imap_parser_free(p);
}

static void
test_deep_nesting(void)
{
    char s[512];
    size_t n = 0;
    n += (size_t)sprintf(s, "* X ");
    for (int i = 0; i < 64; i++)
        s[n++] = '(';
    for (int i = 0; i < 64; i++)
        s[n++] = ')';
    memcpy(s + n, "\r\n", 3);
    struct dynbuf out;
    CHECK(parse_capped(s, strlen(s), CAP, &out) == IMAP_PARSE_MORE && out.len > 0);
    dynbuf_free(&out);
    n = (size_t)sprintf(s, "* X ");
    for (int i = 0; i < 65; i++)
        s[n++] = '(';
    for (int i = 0; i < 65; i++)
        s[n++] = ')';
    memcpy(s + n, "\r\n", 3);
    CHECK(expect_fail(s, strlen(s), IMAP_PARSE_ERROR));
}

static void
test_token_cap(void)
{
    /* 1,000,001 tokens in one response */
    size_t n = 1000001;
    char *s = xmalloc(n * 2 + 16);
    size_t len = (size_t)sprintf(s, "* X");
    for (size_t i = 0; i < n; i++) {
        s[len++] = ' ';
        s[len++] = 'a';
    }
    memcpy(s + len, "\r\n", 2);
    len += 2;
    struct imap_parser *p = imap_parser_new(len * 2);
    struct imap_response *r;
    CHECK(imap_parser_feed(p, s, len) == 0);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_TOO_BIG);
    imap_parser_free(p);
    /* one fewer is fine */
    memmove(s + 3, s + 5, len - 5);
    len -= 2;
    p = imap_parser_new(len * 2);
    CHECK(imap_parser_feed(p, s, len) == 0);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK && r->args.n == n - 1);
    imap_parser_free(p);
    free(s);
}

static void
test_many_brackets(void)
{
    /* a long line of '[' without ']' must be scanned once, not once per '[' */
    size_t n = 400000;
    char *s = xmalloc(n + 16);
    size_t len = (size_t)sprintf(s, "* X a");
    memset(s + len, '[', n);
    len += n;
    memcpy(s + len, " b\r\n", 4);
    len += 4;
    struct imap_parser *p = imap_parser_new(len);
    struct imap_response *r;
    int64_t t0 = util_now_ms();
    CHECK(imap_parser_feed(p, s, len) == 0);
    CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK && r->args.n == 2 &&
          r->args.items[0].len == n + 1);
    CHECK(util_now_ms() - t0 < 2000);
    imap_parser_free(p);
    free(s);
}

/* A stream with several literals (including ones that hold response-like
 * lines, an empty one and one at the end of a line of its own) and every
 * kind of response. */
static void
build_stream(struct dynbuf *b)
{
    static const char *hdr = "From: a@b\r\n* 9 EXISTS\r\na1 OK fake\r\n\r\n";
    static const char *text = "body (with\r\n{5}\r\n\"quote\r\n";
    dynbuf_adds(b, "* OK [CAPABILITY IMAP4rev1 LITERAL+] hello \"there\r\n");
    dynbuf_printf(b,
                  "* 1 FETCH (UID 10 BODY[HEADER] {%zu}\r\n%s BODY[TEXT] {%zu}\r\n%s"
                  " BODY[1] {0}\r\n FLAGS (\\Seen $Junk))\r\n",
                  strlen(hdr), hdr, strlen(text), text);
    dynbuf_adds(b, "* VANISHED (EARLIER) 1:3,5\r\n");
    dynbuf_adds(b, "* LIST (\\HasChildren) NIL {4}\r\nA\"(B\r\n");
    dynbuf_adds(b, "+ go on\r\n");
    dynbuf_adds(b, "* 2 FETCH (BODY[] ~{2}\r\n\r\n)\n");
    dynbuf_adds(b, "* ESEARCH (TAG \"a1\") UID ALL 1:10\r\n");
    dynbuf_adds(b, "a1 OK [MODIFIED 7,9] done {3}\r\n");
}

static const char stream_dump[] =
    "* OK [CAPABILITY IMAP4rev1 LITERAL+] |hello \"there|\n"
    "* 1 FETCH (UID 10 BODY[HEADER] {37}\"From: a@b\\x0d\\x0a* 9 EXISTS\\x0d\\x0aa1 OK "
    "fake\\x0d\\x0a\\x0d\\x0a\" BODY[TEXT] {25}\"body "
    "(with\\x0d\\x0a{5}\\x0d\\x0a\\\"quote"
    "\\x0d\\x0a\" BODY[1] {0}\"\" FLAGS (\\Seen $Junk))\n"
    "* VANISHED (EARLIER) 1:3,5\n"
    "* LIST (\\HasChildren) NIL {4}\"A\\\"(B\"\n"
    "+ |go on|\n"
    "* 2 FETCH (BODY[] {2}\"\\x0d\\x0a\")\n"
    "* ESEARCH (TAG \"a1\") UID ALL 1:10\n"
    "a1 OK [MODIFIED 7,9] |done {3}|\n";

static void
test_split_everywhere(void)
{
    struct dynbuf s, whole;
    dynbuf_init(&s, SIZE_MAX / 2);
    build_stream(&s);
    CHECK(parse_capped(s.data, s.len, CAP, &whole) == IMAP_PARSE_MORE);
    CHECK_STR(whole.data, stream_dump);

    /* one split at every point */
    for (size_t i = 0; i <= s.len; i++) {
        struct imap_parser *p = imap_parser_new(CAP);
        struct dynbuf out;
        dynbuf_init(&out, SIZE_MAX / 2);
        dynbuf_adds(&out, "");
        CHECK(imap_parser_feed(p, s.data, i) == 0);
        CHECK(drain(p, &out) == IMAP_PARSE_MORE);
        CHECK(imap_parser_feed(p, s.data + i, s.len - i) == 0);
        CHECK(drain(p, &out) == IMAP_PARSE_MORE);
        if (strcmp(out.data, whole.data) != 0) {
            printf("# split at %zu differs\n", i);
            check_current_failed = 1;
        }
        dynbuf_free(&out);
        imap_parser_free(p);
    }

    /* byte by byte, draining after each */
    struct imap_parser *p = imap_parser_new(CAP);
    struct dynbuf out;
    dynbuf_init(&out, SIZE_MAX / 2);
    dynbuf_adds(&out, "");
    for (size_t i = 0; i < s.len; i++) {
        CHECK(imap_parser_feed(p, s.data + i, 1) == 0);
        CHECK(drain(p, &out) == IMAP_PARSE_MORE);
    }
    CHECK_STR(out.data, whole.data);
    dynbuf_free(&out);
    imap_parser_free(p);

    /* every prefix alone: only whole responses, then MORE, never an error */
    for (size_t i = 0; i < s.len; i++) {
        struct dynbuf pre;
        CHECK(parse_capped(s.data, i, CAP, &pre) == IMAP_PARSE_MORE);
        CHECK(strncmp(pre.data, whole.data, pre.len) == 0);
        dynbuf_free(&pre);
    }
    dynbuf_free(&whole);
    dynbuf_free(&s);
}

/* Bytes fed while a response is held must not move it. */
static void
test_feed_while_holding(void)
{
    struct dynbuf s;
    dynbuf_init(&s, SIZE_MAX / 2);
    build_stream(&s);
    struct imap_parser *p = imap_parser_new(CAP);
    struct dynbuf out;
    dynbuf_init(&out, SIZE_MAX / 2);
    dynbuf_adds(&out, "");
    size_t off = 0;
    struct imap_response *r;
    for (;;) {
        enum imap_parse_result res = imap_parser_next(p, &r);
        if (res == IMAP_PARSE_OK) {
            /* feed a few bytes, then look at the held response */
            size_t n = s.len - off < 7 ? s.len - off : 7;
            CHECK(imap_parser_feed(p, s.data + off, n) == 0);
            off += n;
            dump_response(&out, r);
            dynbuf_addc(&out, '\n');
            continue;
        }
        CHECK(res == IMAP_PARSE_MORE);
        if (off == s.len)
            break;
        size_t n = s.len - off < 13 ? s.len - off : 13;
        CHECK(imap_parser_feed(p, s.data + off, n) == 0);
        off += n;
    }
    CHECK_STR(out.data, stream_dump);
    dynbuf_free(&out);
    dynbuf_free(&s);
    imap_parser_free(p);
}

static void
make_fetch(struct dynbuf *b, unsigned i, size_t size)
{
    dynbuf_printf(
        b,
        "* %u FETCH (UID %u FLAGS (\\Seen $Forwarded) INTERNALDATE "
        "\"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE %zu MODSEQ (%u) BODY[] {%zu}\r\n",
        i, i, size, 1000 + i, size);
    char *d = dynbuf_reserve(b, size);
    for (size_t k = 0; k < size; k++)
        d[k] = (k % 78 == 77) ? '\n' : (char)('a' + (k + i) % 26);
    dynbuf_commit(b, size);
    dynbuf_adds(b, ")\r\n");
}

/* Feed about `total` bytes of `count` FETCH responses with literals of `size`,
 * in pieces of `piece`, draining after each; returns MB/s. */
static double
run_bench(size_t count, size_t size, size_t piece, size_t total, int *ok)
{
    struct dynbuf s;
    dynbuf_init(&s, SIZE_MAX / 2);
    for (unsigned i = 1; i <= count; i++)
        make_fetch(&s, i, size);
    size_t rounds = total / s.len + 1, nresp = 0, bytes = 0;
    struct imap_parser *p = imap_parser_new(size + 1024);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t k = 0; k < rounds; k++) {
        for (size_t off = 0; off < s.len; off += piece) {
            size_t n = s.len - off < piece ? s.len - off : piece;
            if (imap_parser_feed(p, s.data + off, n) != 0)
                *ok = 0;
            struct imap_response *r;
            enum imap_parse_result res;
            while ((res = imap_parser_next(p, &r)) == IMAP_PARSE_OK) {
                const struct imap_value *body =
                    imap_fetch_item(&r->args.items[0], "BODY[]");
                if (!body || body->len != size)
                    *ok = 0;
                nresp++;
            }
            if (res != IMAP_PARSE_MORE)
                *ok = 0;
        }
        bytes += s.len;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (nresp != rounds * count)
        *ok = 0;
    double secs =
        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    imap_parser_free(p);
    dynbuf_free(&s);
    return (double)bytes / 1e6 / (secs > 0 ? secs : 1e-9);
}

static void
test_large_literal_throughput(void)
{
    int ok = 1;
    /* A 1 MB literal fed one byte at a time: quadratic rescanning would take
     * minutes here. */
    double byte_rate = run_bench(2, 1 << 20, 1, 2 << 20, &ok);
    CHECK(ok);
    /* IMAP_PARSE_BENCH=1 for a 1 GB run (build with -O2, no sanitizers). */
    size_t total = getenv("IMAP_PARSE_BENCH") ? (size_t)1 << 30 : (size_t)64 << 20;
    double big = run_bench(32, 2 << 20, 16 << 10, total, &ok);
    CHECK(ok);
    /* typical mail: 1000 messages of 40 KB, a 40 MB source (not in cache) */
    double mail = run_bench(1000, 40 << 10, 16 << 10, total, &ok);
    CHECK(ok);
    printf("# throughput (%zu MB, 16 KB pieces): %.0f MB/s with 2 MB literals, "
           "%.0f MB/s with 40 KB messages; %.1f MB/s fed byte by byte\n",
           total >> 20, big, mail, byte_rate);
}

static void
test_seqset_parse(void)
{
    struct imap_seqset_iter it;
    uint32_t lo, hi;
    imap_seqset_begin(&it, "1:3,5,7:*", 9);
    CHECK(imap_seqset_next(&it, &lo, &hi) == 1 && lo == 1 && hi == 3);
    CHECK(imap_seqset_next(&it, &lo, &hi) == 1 && lo == 5 && hi == 5);
    CHECK(imap_seqset_next(&it, &lo, &hi) == 1 && lo == 7 && hi == UINT32_MAX);
    CHECK(imap_seqset_next(&it, &lo, &hi) == 0);
    CHECK(imap_seqset_next(&it, &lo, &hi) == 0);

    imap_seqset_begin(&it, "9:7", 3);
    CHECK(imap_seqset_next(&it, &lo, &hi) == 1 && lo == 7 && hi == 9);
    CHECK(imap_seqset_next(&it, &lo, &hi) == 0);
    imap_seqset_begin(&it, "*:4", 3);
    CHECK(imap_seqset_next(&it, &lo, &hi) == 1 && lo == 4 && hi == UINT32_MAX);
    imap_seqset_begin(&it, "4294967295", 10);
    CHECK(imap_seqset_next(&it, &lo, &hi) == 1 && lo == UINT32_MAX);

    static const char *bad[] = {"1::2", ",",          "",      "1,",  ",1", "0",
                                "1:0",  "01",         "1:",    ":3",  "a",  "1 2",
                                "1,,2", "4294967296", "1:2:3", "*:*x"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        imap_seqset_begin(&it, bad[i], strlen(bad[i]));
        int r;
        while ((r = imap_seqset_next(&it, &lo, &hi)) == 1)
            ;
        if (r != -1)
            printf("# seqset \"%s\" accepted\n", bad[i]);
        CHECK(r == -1);
        CHECK(imap_seqset_next(&it, &lo, &hi) == -1); /* stays failed */
    }
}

static void
test_seqset_format(void)
{
    struct dynbuf b;
    dynbuf_init(&b, 1024);
    static const uint32_t u1[] = {1, 2, 3, 5, 7, 8, 9};
    CHECK(imap_seqset_format(&b, u1, ARRAY_SIZE(u1)) == 0);
    CHECK_STR(b.data, "1:3,5,7:9");
    dynbuf_reset(&b);
    static const uint32_t u2[] = {42};
    CHECK(imap_seqset_format(&b, u2, 1) == 0);
    CHECK_STR(b.data, "42");
    dynbuf_reset(&b);
    static const uint32_t u3[] = {4294967294u, 4294967295u};
    CHECK(imap_seqset_format(&b, u3, 2) == 0);
    CHECK_STR(b.data, "4294967294:4294967295");
    dynbuf_reset(&b);
    static const uint32_t unsorted[] = {3, 2};
    dynbuf_adds(&b, "UID FETCH ");
    CHECK(imap_seqset_format(&b, unsorted, 2) == -1);
    CHECK_STR(b.data, "UID FETCH "); /* unchanged on failure */
    static const uint32_t dup[] = {2, 2};
    CHECK(imap_seqset_format(&b, dup, 2) == -1);
    static const uint32_t zero[] = {0, 1};
    CHECK(imap_seqset_format(&b, zero, 2) == -1);
    CHECK(imap_seqset_format(&b, u1, 0) == -1);
    dynbuf_free(&b);

    /* the cap: unchanged on failure */
    dynbuf_init(&b, 8);
    dynbuf_adds(&b, "x");
    CHECK(imap_seqset_format(&b, u1, ARRAY_SIZE(u1)) == -1);
    CHECK_STR(b.data, "x");
    dynbuf_free(&b);

    /* format and parse agree */
    uint32_t many[1000];
    size_t n = 0;
    for (uint32_t v = 1; n < ARRAY_SIZE(many); v += 1 + (v * 7919) % 3)
        many[n++] = v;
    dynbuf_init(&b, 1 << 20);
    CHECK(imap_seqset_format(&b, many, n) == 0);
    struct imap_seqset_iter it;
    imap_seqset_begin(&it, b.data, b.len);
    uint32_t lo, hi;
    size_t k = 0;
    int r;
    while ((r = imap_seqset_next(&it, &lo, &hi)) == 1)
        for (uint64_t v = lo; v <= hi; v++)
            CHECK(k < n && many[k++] == v);
    CHECK(r == 0 && k == n);
    dynbuf_free(&b);
}

static void
test_astring(void)
{
    struct dynbuf b;
    dynbuf_init(&b, 1024);
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"INBOX", "INBOX"},
        {"Sent.2025", "Sent.2025"},
        {"", "\"\""},
        {"NIL", "\"NIL\""},
        {"nil", "\"nil\""},
        {"NILS", "NILS"},
        {"a b", "\"a b\""},
        {"a\"b\\c", "\"a\\\"b\\\\c\""},
        {"50%", "\"50%\""},
        {"*", "\"*\""},
        {"(x)", "\"(x)\""},
        {"{5}", "\"{5}\""},
        {"a]", "\"a]\""},
        {"\\Seen", "\"\\\\Seen\""},
        {"Entw\xc3\xbcrfe", "{9}\r\nEntw\xc3\xbcrfe"},
        {"two\r\nlines", "{10}\r\ntwo\r\nlines"},
        {"tab\there", "{8}\r\ntab\there"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        dynbuf_reset(&b);
        size_t len = strlen(cases[i].in);
        CHECK(imap_append_astring(&b, cases[i].in, len, false) == 0);
        CHECK_STR(b.data, cases[i].want);
        CHECK(imap_astring_needs_literal(cases[i].in, len) == (cases[i].want[0] == '{'));
    }
    dynbuf_reset(&b);
    CHECK(imap_append_astring(&b, "a\0b", 3, true) == 0);
    CHECK(b.len == 9 && memcmp(b.data, "{3+}\r\na\0b", 9) == 0);
    dynbuf_free(&b);

    dynbuf_init(&b, 6);
    dynbuf_adds(&b, "ab");
    CHECK(imap_append_astring(&b, "a b c", 5, false) == -1);
    CHECK_STR(b.data, "ab");
    CHECK(imap_append_astring(&b, "abcd", 4, false) == 0);
    CHECK_STR(b.data, "ababcd");
    dynbuf_free(&b);

    /* what we quote, the parser reads back unchanged */
    static const char *round[] = {"plain", "sp ace",      "q\"uo\\te", "",
                                  "NIL",   "8\xc3\xa9it", "cr\rlf\n",  "(paren"};
    for (size_t i = 0; i < ARRAY_SIZE(round); i++) {
        dynbuf_init(&b, 1024);
        dynbuf_adds(&b, "* X ");
        CHECK(imap_append_astring(&b, round[i], strlen(round[i]), false) == 0);
        dynbuf_adds(&b, "\r\n");
        struct imap_parser *p = imap_parser_new(CAP);
        struct imap_response *r;
        CHECK(imap_parser_feed(p, b.data, b.len) == 0);
        CHECK(imap_parser_next(p, &r) == IMAP_PARSE_OK);
        CHECK(r && r->args.n == 1 && r->args.items[0].kind != IMAP_NIL &&
              r->args.items[0].len == strlen(round[i]) &&
              memcmp(r->args.items[0].data, round[i], strlen(round[i])) == 0);
        imap_parser_free(p);
        dynbuf_free(&b);
    }
}

static int
mutf7_pair(const char *enc, const char *utf8)
{
    char *d = mutf7_decode(enc, strlen(enc));
    char *e = mutf7_encode(utf8);
    int ok = d && e && strcmp(d, utf8) == 0 && strcmp(e, enc) == 0;
    if (!ok)
        printf("# mutf7 %s <-> %s: decoded %s, encoded %s\n", enc, utf8, d ? d : "(null)",
               e ? e : "(null)");
    free(d);
    free(e);
    return ok;
}

static void
test_mutf7(void)
{
    CHECK(mutf7_pair("Entw&APw-rfe", "Entw\xc3\xbcrfe"));
    CHECK(mutf7_pair("&-", "&"));
    CHECK(mutf7_pair("A&-B&-&-", "A&B&&"));
    CHECK(mutf7_pair("INBOX", "INBOX"));
    CHECK(mutf7_pair("", ""));
    CHECK(mutf7_pair(
        "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
        "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"));
    /* U+1F600 as a surrogate pair */
    CHECK(mutf7_pair("&2D3eAA-", "\xf0\x9f\x98\x80"));
    CHECK(mutf7_pair("a&2D3eAA-b&AOk-", "a\xf0\x9f\x98\x80"
                                        "b\xc3\xa9"));
    /* a control character is encoded too */
    CHECK(mutf7_pair("&AAk-", "\t"));
    CHECK(mutf7_pair("&AOkA6QDp-", "\xc3\xa9\xc3\xa9\xc3\xa9"));

    static const char *bad[] = {
        "&",               /* unterminated */
        "Entw&APw",        /* unterminated */
        "&APw.-",          /* not base64 */
        "&AP/-",           /* '/' is not in the modified alphabet */
        "&APx-",           /* leftover bits not zero */
        "&APwA-",          /* 6 or more leftover bits */
        "&A-",             /* too short for one unit */
        "&AGE-",           /* encoded printable ASCII 'a' */
        "&ACY-",           /* encoded '&' */
        "&2D0-",           /* lone high surrogate */
        "&3gA-",           /* lone low surrogate */
        "&2D3YPQ-",        /* high surrogate followed by a high surrogate */
        "&AAA-",           /* NUL */
        "&APw-&APw-",      /* two adjacent runs */
        "Entw\xc3\xbcrfe", /* raw 8-bit */
        "a\tb",            /* raw control */
        "&&-",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *d = mutf7_decode(bad[i], strlen(bad[i]));
        if (d)
            printf("# mutf7 decode accepted \"%s\"\n", bad[i]);
        CHECK(d == NULL);
        free(d);
    }
    /* length-bounded: a NUL inside the range is invalid, bytes after it unread */
    char *d = mutf7_decode("ab\0c", 4);
    CHECK(d == NULL);
    d = mutf7_decode("abcdef", 3);
    CHECK_STR(d, "abc");
    free(d);

    static const char *bad_utf8[] = {
        "\xc3",             /* truncated */
        "\xc0\xaf",         /* overlong */
        "\xe0\x80\xaf",     /* overlong */
        "\xed\xa0\x80",     /* surrogate */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "\xff",
        "a\x80",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad_utf8); i++) {
        char *e = mutf7_encode(bad_utf8[i]);
        CHECK(e == NULL);
        free(e);
    }
}

int
main(void)
{
    RUN(test_simple_untagged);
    RUN(test_tagged);
    RUN(test_resp_codes);
    RUN(test_text_not_tokenized);
    RUN(test_continuation);
    RUN(test_literal_hides_lines);
    RUN(test_literal_partial);
    RUN(test_literal_too_big);
    RUN(test_nil_and_strings);
    RUN(test_quoted_escapes);
    RUN(test_nested_lists);
    RUN(test_bodystructure);
    RUN(test_envelope);
    RUN(test_fetch_items);
    RUN(test_vanished_esearch);
    RUN(test_list_status);
    RUN(test_bare_lf);
    RUN(test_garbage);
    RUN(test_deep_nesting);
    RUN(test_token_cap);
    RUN(test_many_brackets);
    RUN(test_split_everywhere);
    RUN(test_feed_while_holding);
    RUN(test_large_literal_throughput);
    RUN(test_seqset_parse);
    RUN(test_seqset_format);
    RUN(test_astring);
    RUN(test_mutf7);
    return check_done();
}
