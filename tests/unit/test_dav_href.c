/* Unit tests for the href helpers of sync/dav_xml: normalising hrefs that
 * servers encode differently, encoding them for requests, comparing them,
 * and joining a collection with a file name without escaping it. */
#include "sync/dav_xml.h"
#include "common/util.h"
#include "tests/unit/check.h"

#include <stdlib.h>
#include <string.h>

static void
check_norm(const char *in, const char *base, const char *want)
{
    char *got = dav_href_normalize(in, base);
    if (!want) {
        if (got)
            printf("# normalize(\"%s\") = \"%s\", wanted NULL\n", in ? in : "(null)",
                   got);
        CHECK(got == NULL);
    } else {
        if (!got || strcmp(got, want) != 0)
            printf("# normalize(\"%s\", \"%s\")\n", in ? in : "(null)",
                   base ? base : "(null)");
        CHECK_STR(got, want);
    }
    free(got);
}

static void
test_normalize(void)
{
    check_norm("/a/b%20c.ics", "/", "/a/b c.ics");
    check_norm("/a/b c.ics", "/", "/a/b c.ics");
    check_norm("/a/%C3%A9t%c3%a9.ics", "/", "/a/\xc3\xa9t\xc3\xa9.ics");
    check_norm("/a/%62.ics", "/", "/a/b.ics");
    check_norm("http://h:1/a/x.ics", "/", "/a/x.ics");
    check_norm("HTTPS://user@h/a/", "/", "/a/");
    check_norm("http%3A//127.0.0.1%3A5233/user/c/dup.ics", "/", "/user/c/dup.ics");
    check_norm("https%3a//h/x", "/", "/x");
    check_norm("http://host", "/", "/");
    check_norm("http://host?x", "/", "/");
    check_norm("e.ics", "/cal/", "/cal/e.ics");
    check_norm("e.ics", "/cal/other.ics", "/cal/e.ics");
    check_norm("e.ics", "/cal", "/e.ics");
    check_norm("sub/", "/cal/", "/cal/sub/");
    check_norm("e.ics", NULL, "/e.ics");
    check_norm("/a/b/../c", "/", "/a/c");
    check_norm("/a/b/..", "/", "/a/");
    check_norm("/a/./b/.", "/", "/a/b/");
    check_norm("/../../etc/passwd", "/", "/etc/passwd");
    check_norm("../../x", "/cal/", "/x");
    check_norm("/a/%2e%2e/b", "/", "/b");
    check_norm("/a/%2E/b", "/", "/a/b");
    check_norm("/a/...", "/", "/a/...");
    check_norm("/a/x%2fy", "/", "/a/x%2Fy");
    check_norm("/a/x%2F..%2Fy", "/", "/a/x%2F..%2Fy");
    check_norm("/a/100%25.ics", "/", "/a/100%25.ics");
    check_norm("/a/100%.ics", "/", "/a/100%25.ics");
    check_norm("/a/%zz", "/", "/a/%25zz");
    check_norm("/a/%4", "/", "/a/%254");
    check_norm("/a/%FF%fe.ics", "/", "/a/%FF%FE.ics");
    check_norm("/a/%C3.ics", "/", "/a/%C3.ics");
    check_norm("/a/\xff.ics", "/", "/a/%FF.ics");
    check_norm("/a/%0A%00x", "/", "/a/%0A%00x");
    check_norm("/a/tab\there", "/", "/a/tab%09here");
    check_norm("/a/x.ics?query=1", "/", "/a/x.ics");
    check_norm("/a/x.ics#frag", "/", "/a/x.ics");
    check_norm("/a/x%3F%23.ics", "/", "/a/x%3F%23.ics");
    check_norm("/a/x%3f.ics", "/", "/a/x%3F.ics");
    check_norm("  /a/x.ics\n", "/", "/a/x.ics");
    check_norm("/a//b", "/", "/a//b");
    check_norm("/a/b%20", "/", "/a/b%20");
    check_norm("/a/b%20%20", "/", "/a/b %20");
    check_norm("/a/b%20/", "/", "/a/b /");
    check_norm("", "/", NULL);
    check_norm("   ", "/", NULL);
    check_norm(NULL, "/", NULL);
}

static void
test_idempotent_and_round_trip(void)
{
    const char *samples[] = {
        "/a/b%20c.ics", "/a/x%2fy",      "/a/100%25",
        "/a/%zz",       "/a/%FF",        "/a/\xc3\xa9 \xe2\x82\xac",
        "/a/%0D%0A",    "/a/?#",         "/a/%3F%23",
        "/a/b+c&d=e;f", "/a/~x_y-z.ics", "/",
    };
    for (size_t i = 0; i < ARRAY_SIZE(samples); i++) {
        char *n1 = dav_href_normalize(samples[i], "/");
        char *n2 = dav_href_normalize(n1, "/");
        CHECK_STR(n2, n1);
        char *enc = dav_href_encode(n1);
        for (const char *p = enc; *p; p++)
            CHECK(*p > 0x20 && *p < 0x7f && *p != ' ' && *p != '?' && *p != '#' &&
                  *p != '&');
        char *back = dav_href_normalize(enc, "/");
        CHECK_STR(back, n1);
        free(n1);
        free(n2);
        free(enc);
        free(back);
    }
}

static void
test_encode(void)
{
    char *s = dav_href_encode("/a/b c \xc3\xa9.ics");
    CHECK_STR(s, "/a/b%20c%20%C3%A9.ics");
    free(s);
    s = dav_href_encode("/a/x%2Fy%25");
    CHECK_STR(s, "/a/x%2Fy%25");
    free(s);
    s = dav_href_encode("/a/x%2fy");
    CHECK_STR(s, "/a/x%2Fy");
    free(s);
    s = dav_href_encode("/a/b&c<d>\"e'?#:@+");
    CHECK_STR(s, "/a/b%26c%3Cd%3E%22e%27%3F%23%3A%40%2B");
    free(s);
    s = dav_href_encode("/A-Z_a.z~09/");
    CHECK_STR(s, "/A-Z_a.z~09/");
    free(s);
}

static void
test_equal(void)
{
    CHECK(dav_href_equal("/a/b%20c.ics", "/a/b c.ics"));
    CHECK(dav_href_equal("/a/%62.ics", "/a/b.ics"));
    CHECK(dav_href_equal("/a/%c3%a9", "/a/%C3%A9"));
    CHECK(dav_href_equal("/a/%C3%A9", "/a/\xc3\xa9"));
    CHECK(dav_href_equal("/cal", "/cal/"));
    CHECK(dav_href_equal("http://h:8/cal/x", "/cal/x"));
    CHECK(dav_href_equal("/cal/./x", "/cal/y/../x"));
    CHECK(!dav_href_equal("/a/x%2Fy", "/a/x/y"));
    CHECK(!dav_href_equal("/a/x%25", "/a/x%"
                                     "2"));
    CHECK(!dav_href_equal("/a/b", "/a/B"));
    CHECK(!dav_href_equal("/cal//", "/cal"));
    CHECK(!dav_href_equal("", ""));
    CHECK(!dav_href_equal(NULL, "/"));
}

static void
check_join(const char *coll, const char *name, const char *want)
{
    struct sync_error err;
    sync_error_clear(&err);
    char *got = dav_href_join(coll, name, &err);
    if (!want) {
        CHECK(got == NULL);
        CHECK(err.code == SYNC_ERR_PROTOCOL && err.scope == SYNC_SCOPE_ITEM &&
              err.retry == SYNC_RETRY_NEVER);
        CHECK(strstr(err.msg, "cannot name") != NULL);
    } else {
        CHECK_STR(got, want);
        if (got) {
            CHECK(dav_href_is_member(coll, got));
            char *norm = dav_href_normalize(got, "/");
            CHECK_STR(norm, got);
            free(norm);
        }
    }
    free(got);
}

static void
test_join(void)
{
    check_join("/cal/", "a b.ics", "/cal/a b.ics");
    check_join("/cal", "x.ics", "/cal/x.ics");
    check_join("/cal%20x/", "\xc3\xa9.ics", "/cal x/\xc3\xa9.ics");
    check_join("/cal/", "100%.ics", "/cal/100%25.ics");
    check_join("/cal/", "a%2Fb", "/cal/a%252Fb");
    check_join("/cal/", "...", "/cal/...");
    check_join("/cal/", "ends in a blank ", "/cal/ends in a blank%20");
    check_join("/cal/", " ", "/cal/%20");
    check_join("/cal/", ".hidden", "/cal/.hidden");
    check_join("/cal/", "a?b#c&d.ics", "/cal/a%3Fb%23c&d.ics");
    check_join("/cal/", "", NULL);
    check_join("/cal/", ".", NULL);
    check_join("/cal/", "..", NULL);
    check_join("/cal/", "a/b", NULL);
    check_join("/cal/", "../x", NULL);
    check_join("/cal/", "/etc/passwd", NULL);
    check_join("/cal/", "a\nb", NULL);
    check_join("/cal/", "a\x7f", NULL);
    check_join("/cal/", "bad \xff utf8", NULL);
    check_join("/cal/", NULL, NULL);
    check_join("", "x", NULL);

    /* what goes on the wire for a joined name stays inside the collection */
    struct sync_error err;
    char *h = dav_href_join("/cal/", "a%2F..%2F..%2Fx", &err);
    char *enc = dav_href_encode(h);
    CHECK_STR(enc, "/cal/a%252F..%252F..%252Fx");
    char *back = dav_href_normalize(enc, "/");
    CHECK(dav_href_is_member("/cal/", back));
    free(h);
    free(enc);
    free(back);
}

static void
test_is_member(void)
{
    CHECK(dav_href_is_member("/cal/", "/cal/x.ics"));
    CHECK(dav_href_is_member("/cal", "/cal/x.ics"));
    CHECK(dav_href_is_member("/cal/", "/cal/sub/"));
    CHECK(dav_href_is_member("/cal%20a/", "/cal a/x"));
    CHECK(!dav_href_is_member("/cal/", "/cal/sub/x.ics"));
    CHECK(!dav_href_is_member("/cal/", "/cal/"));
    CHECK(!dav_href_is_member("/cal/", "/cal"));
    CHECK(!dav_href_is_member("/cal/", "/calx/y"));
    CHECK(!dav_href_is_member("/cal/", "/cal/../x"));
    CHECK(!dav_href_is_member("/cal/", "/other/x"));
    CHECK(dav_href_is_member("/cal/", "/cal/a%2Fb"));
}

int
main(void)
{
    RUN(test_normalize);
    RUN(test_idempotent_and_round_trip);
    RUN(test_encode);
    RUN(test_equal);
    RUN(test_join);
    RUN(test_is_member);
    return check_done();
}
