/* test_flags: the text form of mail flags (user.mail.flags) and its IMAP
 * form: parsing what users type, refusing what IMAP cannot carry. */
#include "check.h"

#include "common/util.h"
#include "formats/flags.h"

#include <stdlib.h>
#include <string.h>

static void
check_parse(const char *in, const char *want)
{
    char *got = flags_parse(in, strlen(in));
    if (want)
        CHECK_STR(got, want);
    else
        CHECK(got == NULL);
    free(got);
}

static void
test_parse(void)
{
    check_parse("", "");
    check_parse("seen", "seen");
    check_parse("  flagged   seen\n", "seen flagged");
    check_parse("\\Seen \\Answered $Label1 $Forwarded", "seen answered $Forwarded $Label1");
    check_parse("SEEN Draft deleted", "seen deleted draft");
    check_parse("work work", "work");
    check_parse("\\Bogus", NULL);
    check_parse("bad(paren", NULL);
    check_parse("quote\"d", NULL);
    check_parse("caf\xc3\xa9", NULL); /* IMAP keywords are ASCII atoms */
    char many[2000] = "";
    for (int i = 0; i < 65; i++)
        sprintf(many + strlen(many), "k%d ", i);
    check_parse(many, NULL);
    char longw[200];
    memset(longw, 'a', 150);
    longw[150] = 0;
    check_parse(longw, NULL);
}

static void
test_builder_and_imap(void)
{
    struct flags_builder b = {0};
    flags_builder_add(&b, "\\Recent", 7);
    flags_builder_add(&b, "\\Flagged", 8);
    flags_builder_add(&b, "$Junk", 5);
    flags_builder_add(&b, "\\seen", 5);
    char *c = flags_builder_take(&b);
    CHECK_STR(c, "seen flagged $Junk");
    struct dynbuf d;
    dynbuf_init(&d, 1024);
    CHECK(flags_to_imap(&d, c) == 0);
    CHECK_STR(d.data, "(\\Seen \\Flagged $Junk)");
    dynbuf_reset(&d);
    CHECK(flags_to_imap(&d, "") == 0);
    CHECK_STR(d.data, "()");
    dynbuf_free(&d);
    free(c);
}

int
main(void)
{
    RUN(test_parse);
    RUN(test_builder_and_imap);
    return check_done();
}
