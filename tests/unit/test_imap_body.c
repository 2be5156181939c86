/* test_imap_body: what headers mode keeps of a message, from real
 * BODYSTRUCTURE answers, and that the kept pieces make a valid message. */
#include "check.h"

#include "common/util.h"
#include "formats/mail.h"
#include "sync/imap_body.h"
#include "sync/imap_parse.h"

#include <stdlib.h>
#include <string.h>

/* Parse "* 1 FETCH (BODYSTRUCTURE <bs>)" and make the plan. */
static void
plan_of(const char *bs, struct body_plan *plan)
{
    struct imap_parser *p = imap_parser_new(1 << 20);
    char *line = xasprintf("* 1 FETCH (BODYSTRUCTURE %s)\r\n", bs);
    imap_parser_feed(p, line, strlen(line));
    struct imap_response *r;
    const struct imap_value *v = NULL;
    if (imap_parser_next(p, &r) == IMAP_PARSE_OK && r->args.n == 1)
        v = imap_fetch_item(&r->args.items[0], "BODYSTRUCTURE");
    /* What the parser refuses reaches the plan as nothing at all. */
    body_plan_make(v, plan);
    imap_parser_free(p);
    free(line);
}

static const char HTML_ALT[] =
    "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 120 4 NIL NIL NIL NIL)"
    "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 4000 80 NIL NIL "
    "NIL NIL) \"alternative\" (\"boundary\" \"alt-b\") NIL NIL NIL)";

static void
test_plain_text_is_kept_whole(void)
{
    struct body_plan plan;
    plan_of("(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 300 10 NIL NIL "
            "NIL NIL)",
            &plan);
    CHECK(plan.kind == BODY_PLAN_WHOLE);
    body_plan_clear(&plan);
}

static void
test_alternative_keeps_plain(void)
{
    struct body_plan plan;
    plan_of(HTML_ALT, &plan);
    CHECK(plan.kind == BODY_PLAN_PART);
    CHECK_STR(plan.section, "1");
    CHECK_STR(plan.boundary, "alt-b");
    CHECK(plan.alternative);
    CHECK(strstr(plan.omitted, "text/html") != NULL);
    struct dynbuf out;
    dynbuf_init(&out, 1 << 20);
    const char hdr[] = "Subject: hi\r\nContent-Type: multipart/alternative; boundary=alt-b\r\n\r\n";
    const char mime[] = "Content-Type: text/plain; charset=utf-8\r\n\r\n";
    CHECK(body_assemble(&out, &plan, hdr, strlen(hdr), mime, strlen(mime), "hello", 5) == 0);
    CHECK_STR(out.data, "Subject: hi\r\nContent-Type: multipart/alternative; boundary=alt-b\r\n"
                        "\r\n--alt-b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n"
                        "--alt-b--\r\n");
    dynbuf_free(&out);
    body_plan_clear(&plan);
}

static void
test_mixed_with_attachment(void)
{
    char *bs = xasprintf("(%s(\"application\" \"pdf\" (\"name\" \"report.pdf\") NIL NIL "
                         "\"base64\" 1234567 NIL (\"attachment\" (\"filename\" \"report.pdf\")) "
                         "NIL NIL) \"mixed\" (\"boundary\" \"mix-b\") NIL NIL NIL)",
                         HTML_ALT);
    struct body_plan plan;
    plan_of(bs, &plan);
    CHECK(plan.kind == BODY_PLAN_PART);
    CHECK_STR(plan.section, "1.1");
    CHECK_STR(plan.boundary, "mix-b");
    CHECK(!plan.alternative);
    CHECK(strstr(plan.omitted, "report.pdf (application/pdf, 1234567 bytes)") != NULL);
    CHECK(strstr(plan.omitted, "text/html") != NULL);
    struct dynbuf out;
    dynbuf_init(&out, 1 << 20);
    const char hdr[] = "Subject: report\r\nMessage-ID: <r@x>\r\nContent-Type: multipart/mixed; "
                       "boundary=mix-b\r\n\r\n";
    CHECK(body_assemble(&out, &plan, hdr, strlen(hdr), "Content-Type: text/plain\r\n\r\n", 28,
                        "see attached", 12) == 0);
    CHECK(strstr(out.data, "--mix-b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--mix-b\r\n"));
    CHECK(strstr(out.data, "report.pdf") != NULL);
    size_t n = strlen(out.data);
    CHECK(n > 11 && strcmp(out.data + n - 11, "--mix-b--\r\n") == 0);
    /* Still a message with its header. */
    struct mail_info mi;
    mail_info_parse(out.data, out.len, &mi);
    CHECK_STR(mi.subject, "report");
    CHECK_STR(mi.message_id, "<r@x>");
    mail_info_free(&mi);
    dynbuf_free(&out);
    body_plan_clear(&plan);
    free(bs);
}

static void
test_signed_is_whole(void)
{
    struct body_plan plan;
    plan_of("((\"text\" \"plain\" NIL NIL NIL \"7bit\" 10 1 NIL NIL NIL NIL)(\"application\" "
            "\"pgp-signature\" NIL NIL NIL \"7bit\" 500 NIL NIL NIL NIL) \"signed\" "
            "(\"boundary\" \"s\" \"protocol\" \"application/pgp-signature\") NIL NIL NIL)",
            &plan);
    CHECK(plan.kind == BODY_PLAN_WHOLE);
    body_plan_clear(&plan);
    plan_of("(\"application\" \"pkcs7-mime\" (\"smime-type\" \"enveloped-data\") NIL NIL "
            "\"base64\" 9000 NIL NIL NIL NIL)",
            &plan);
    CHECK(plan.kind == BODY_PLAN_WHOLE);
    body_plan_clear(&plan);
}

static void
test_single_attachment_becomes_note(void)
{
    struct body_plan plan;
    plan_of("(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"base64\" 99999 NIL NIL NIL "
            "NIL)",
            &plan);
    CHECK(plan.kind == BODY_PLAN_HEADER);
    struct dynbuf out;
    dynbuf_init(&out, 1 << 20);
    const char hdr[] = "Subject: pdf\r\nContent-Type: application/pdf;\r\n name=a.pdf\r\n"
                       "Content-Transfer-Encoding: base64\r\nX-Keep: yes\r\n\r\n";
    CHECK(body_assemble(&out, &plan, hdr, strlen(hdr), NULL, 0, NULL, 0) == 0);
    CHECK(strstr(out.data, "application/pdf") == NULL || strstr(out.data, "a.pdf (application/pdf"));
    CHECK(strstr(out.data, "Content-Type: text/plain; charset=utf-8\r\n") != NULL);
    CHECK(strstr(out.data, "base64\r\n") == NULL);
    CHECK(strstr(out.data, "X-Keep: yes\r\n") != NULL);
    CHECK(strstr(out.data, " name=a.pdf") == NULL); /* the folded line went too */
    dynbuf_free(&out);
    body_plan_clear(&plan);
}

static void
test_odd_structures_are_whole(void)
{
    struct body_plan plan;
    const char *odd[] = {
        "NIL",
        "()",
        "(\"text\")",
        /* multipart without a boundary: cannot be rebuilt */
        "((\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1) \"mixed\" NIL)",
        "((\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1) \"mixed\" (\"boundary\" \"\"))",
    };
    for (size_t i = 0; i < ARRAY_SIZE(odd); i++) {
        plan_of(odd[i], &plan);
        CHECK(plan.kind == BODY_PLAN_WHOLE);
        body_plan_clear(&plan);
    }
    /* Deep nesting: whole, not a stack overflow. */
    struct dynbuf deep;
    dynbuf_init(&deep, 1 << 20);
    for (int i = 0; i < 40; i++)
        dynbuf_adds(&deep, "(");
    dynbuf_adds(&deep, "\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1");
    for (int i = 0; i < 40; i++)
        dynbuf_adds(&deep, ") \"mixed\" (\"boundary\" \"b\")");
    plan_of(deep.data + 1, &plan); /* the outer parenthesis is the item's own */
    CHECK(plan.kind == BODY_PLAN_WHOLE);
    body_plan_clear(&plan);
    dynbuf_free(&deep);
}

int
main(void)
{
    RUN(test_plain_text_is_kept_whole);
    RUN(test_alternative_keeps_plain);
    RUN(test_mixed_with_attachment);
    RUN(test_signed_is_whole);
    RUN(test_single_attachment_becomes_note);
    RUN(test_odd_structures_are_whole);
    return check_done();
}
