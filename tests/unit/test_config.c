/* test_config: the account file (every valid form, every error with its file,
 * line and fix) and password_command. */
#include "fs/config.h"
#include "common/util.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Test-only hook defined in fs/config.c. */
void config_test_set_password_timeout(int ms);

static char tmpdir[PATH_MAX];
static char cfg_path[PATH_MAX + 32];
static char ca_path[PATH_MAX + 32];

#define CA "cafile = ca.pem\n"
/* A complete account, to which a test adds or from which it varies one key. */
#define BASE "imap = imaps://mail.example.com\nuser = alice\npassword_command = echo pw\n"

static void
write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(fwrite(data, 1, len, f) == len);
    fclose(f);
}

static void
write_cfg(const char *text)
{
    write_file(cfg_path, text, strlen(text));
}

static struct config_account *
load_ok(const char *text, const char *account)
{
    write_cfg(text);
    struct config_account *a = NULL;
    char *err = NULL;
    int rc = config_load(cfg_path, account, &a, &err);
    if (rc != 0)
        printf("# unexpected error: %s\n", err ? err : "(null)");
    CHECK(rc == 0);
    CHECK(err == NULL);
    CHECK(rc != 0 || a != NULL);
    free(err);
    return a;
}

/* Checks that loading fails with "PATH:LINE: " (or "PATH: " for line 0) and
 * that the message holds each non-NULL needle. */
static void
check_err(const char *path, const char *account, int line, const char *n1, const char *n2)
{
    struct config_account *a = (struct config_account *)1;
    char *err = NULL;
    int rc = config_load(path, account, &a, &err);
    CHECK(rc == -1);
    CHECK(a == NULL);
    CHECK(err != NULL);
    if (rc == 0)
        config_account_free(a);
    if (!err)
        return;
    char prefix[PATH_MAX + 64];
    if (line > 0)
        snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
    else
        snprintf(prefix, sizeof(prefix), "%s: ", path);
    bool ok = strncmp(err, prefix, strlen(prefix)) == 0 && (!n1 || strstr(err, n1)) &&
              (!n2 || strstr(err, n2));
    if (!ok)
        printf("# error \"%s\"\n#   wanted prefix \"%s\", \"%s\", \"%s\"\n", err, prefix,
               n1 ? n1 : "", n2 ? n2 : "");
    CHECK(ok);
    free(err);
}

static void
expect_err(const char *text, const char *account, int line, const char *n1,
           const char *n2)
{
    write_cfg(text);
    check_err(cfg_path, account, line, n1, n2);
}

/* Like expect_err, and the message must not contain `secret`. */
static void
expect_err_hiding(const char *text, int line, const char *n1, const char *secret)
{
    write_cfg(text);
    struct config_account *a = NULL;
    char *err = NULL;
    CHECK(config_load(cfg_path, "a", &a, &err) == -1);
    CHECK(err && !strstr(err, secret));
    free(err);
    check_err(cfg_path, "a", line, n1, NULL);
}

static void
test_default_path(void)
{
    char *old_xdg = getenv("XDG_CONFIG_HOME") ? xstrdup(getenv("XDG_CONFIG_HOME")) : NULL;
    char *old_home = getenv("HOME") ? xstrdup(getenv("HOME")) : NULL;

    setenv("XDG_CONFIG_HOME", "/x/conf", 1);
    setenv("HOME", "/home/a", 1);
    char *p = config_default_path();
    CHECK_STR(p, "/x/conf/mailfs/config");
    free(p);

    setenv("XDG_CONFIG_HOME", "relative/conf", 1);
    p = config_default_path();
    CHECK_STR(p, "/home/a/.config/mailfs/config");
    free(p);

    setenv("XDG_CONFIG_HOME", "", 1);
    p = config_default_path();
    CHECK_STR(p, "/home/a/.config/mailfs/config");
    free(p);

    unsetenv("XDG_CONFIG_HOME");
    p = config_default_path();
    CHECK_STR(p, "/home/a/.config/mailfs/config");
    free(p);

    unsetenv("HOME");
    CHECK(config_default_path() == NULL);

    if (old_xdg)
        setenv("XDG_CONFIG_HOME", old_xdg, 1);
    if (old_home)
        setenv("HOME", old_home, 1);
    free(old_xdg);
    free(old_home);
}

static void
test_design_example(void)
{
    /* DESIGN section 7, without its tls = none (which contradicts imaps://). */
    char *text = xasprintf(
        "[account work]\n"
        "imap = imaps://mail.example.com           ; imaps: TLS; imap: STARTTLS, "
        "required\n"
        "caldav = https://mail.example.com/        ; where discovery starts, or one "
        "collection\n"
        "carddav = https://mail.example.com/\n"
        "user = alice@example.com\n"
        "password_command = pass show mail/work    ; first line of its output\n"
        "cafile = %s          ; optional\n"
        "poll = 60                                 ; seconds between polls\n",
        ca_path);
    struct config_account *a = load_ok(text, "work");
    free(text);
    if (!a)
        return;
    CHECK_STR(a->name, "work");
    CHECK_STR(a->file, cfg_path);
    CHECK(a->line == 1);
    CHECK_STR(a->imap, "imaps://mail.example.com");
    CHECK_STR(a->caldav, "https://mail.example.com/");
    CHECK_STR(a->carddav, "https://mail.example.com/");
    CHECK_STR(a->user, "alice@example.com");
    CHECK_STR(a->password_command, "pass show mail/work");
    CHECK_STR(a->cafile, ca_path);
    CHECK(a->tls == CONFIG_TLS_REQUIRED);
    CHECK(a->poll == 60);
    config_account_free(a);
}

static void
test_defaults_and_minimal(void)
{
    struct config_account *a = load_ok("[account a]\n" BASE, "a");
    if (!a)
        return;
    CHECK(a->poll == 60);
    CHECK(a->tls == CONFIG_TLS_REQUIRED);
    CHECK(a->caldav == NULL);
    CHECK(a->carddav == NULL);
    CHECK(a->cafile == NULL);
    config_account_free(a);
}

static void
test_syntax_tolerance(void)
{
    /* BOM, CRLF, both comment styles, tabs, no blanks around '=', blank lines,
     * comments after the header, a '#' glued to a word. */
    const char *text = "\xEF\xBB\xBF; leading comment\r\n"
                       "# another\r\n"
                       "\r\n"
                       "   \t\r\n"
                       "  [account a]   ; the header may have a comment\r\n"
                       "imap=imaps://mail.example.com\r\n"
                       "\tuser\t=\talice\t\r\n"
                       "password_command =pass show mail#work # comment\r\n"
                       "  ; indented comment\r\n"
                       "poll= 300\r\n";
    struct config_account *a = load_ok(text, "a");
    if (!a)
        return;
    CHECK(a->line == 5);
    CHECK_STR(a->imap, "imaps://mail.example.com");
    CHECK_STR(a->user, "alice");
    CHECK_STR(a->password_command, "pass show mail#work");
    CHECK(a->poll == 300);
    config_account_free(a);

    /* No trailing newline at the end of the file. */
    a = load_ok("[account a]\nimap = imaps://h\nuser = u\npassword_command = x", "a");
    if (a)
        CHECK_STR(a->password_command, "x");
    config_account_free(a);

    /* [ account NAME ] with blanks inside the brackets. */
    a = load_ok("[ account  a ]\n" BASE, "a");
    if (a)
        CHECK_STR(a->name, "a");
    config_account_free(a);
}

static void
test_quoting(void)
{
    const char *text = "[account a]\n"
                       "imap = imaps://h\n"
                       "user = \"  spaced ; user # x  \"   ; comment\n"
                       "password_command = \"printf '%s\\n' \\\"q\\\" \\\\\"\n";
    struct config_account *a = load_ok(text, "a");
    if (!a)
        return;
    CHECK_STR(a->user, "  spaced ; user # x  ");
    /* \" and \\ are escapes; \n is kept as it is. */
    CHECK_STR(a->password_command, "printf '%s\\n' \"q\" \\");
    config_account_free(a);

    /* A comment may follow the closing quote directly. */
    a = load_ok("[account a]\nimap = imaps://h\nuser = \"u\";c\npassword_command = x\n",
                "a");
    if (a)
        CHECK_STR(a->user, "u");
    config_account_free(a);

    /* Text after the closing quote: the value is taken unquoted, quotes kept. */
    a = load_ok("[account a]\nimap = imaps://h\nuser = u\n"
                "password_command = \"$HOME/bin/getpw\" work  ; comment\n",
                "a");
    if (a)
        CHECK_STR(a->password_command, "\"$HOME/bin/getpw\" work");
    config_account_free(a);

    /* A quote in the middle of an unquoted value is literal. */
    a = load_ok("[account a]\nimap = imaps://h\nuser = u\n"
                "password_command = pass show \"mail/work\"\n",
                "a");
    if (a)
        CHECK_STR(a->password_command, "pass show \"mail/work\"");
    config_account_free(a);
}

static void
test_imap_forms(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"imaps://mail.example.com", "imaps://mail.example.com"},
        {"imaps://mail.example.com/", "imaps://mail.example.com"},
        {"IMAPS://mail.example.com:993", "imaps://mail.example.com:993"},
        {"imap://mail.example.com:143/", "imap://mail.example.com:143"},
        {"imap://[::1]:1143", "imap://[::1]:1143"},
        {"imaps://127.0.0.1:65535", "imaps://127.0.0.1:65535"},
        {"imaps://h:1", "imaps://h:1"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char text[512];
        snprintf(text, sizeof(text),
                 "[account a]\nimap = %s\nuser = u\npassword_command = x\n", cases[i].in);
        struct config_account *a = load_ok(text, "a");
        if (a)
            CHECK_STR(a->imap, cases[i].out);
        config_account_free(a);
    }
}

static void
test_tls_none(void)
{
    struct config_account *a =
        load_ok("[account a]\nimap = imap://localhost:1143\ntls = none\nuser = u\n"
                "password_command = x\n",
                "a");
    if (a) {
        CHECK(a->tls == CONFIG_TLS_NONE);
        CHECK_STR(a->imap, "imap://localhost:1143");
    }
    config_account_free(a);

    /* Case does not matter; a DAV-only account records it for the DAV code. */
    a = load_ok("[account a]\ncaldav = http://localhost:5232/\ntls = NONE\nuser = u\n"
                "password_command = x\n",
                "a");
    if (a)
        CHECK(a->tls == CONFIG_TLS_NONE);
    config_account_free(a);

    /* imap:// without tls = none means STARTTLS, required. */
    a = load_ok(
        "[account a]\nimap = imap://mail.example.com\nuser = u\npassword_command = x\n",
        "a");
    if (a)
        CHECK(a->tls == CONFIG_TLS_REQUIRED);
    config_account_free(a);
}

static void
test_dav_only(void)
{
    struct config_account *a =
        load_ok("[account cal]\ncaldav = HTTPS://dav.example.com/cal/"
                "alice/\nuser = u\npassword_command = x\n",
                "cal");
    if (a) {
        CHECK(a->imap == NULL);
        CHECK_STR(a->caldav, "https://dav.example.com/cal/alice/");
        CHECK(a->carddav == NULL);
    }
    config_account_free(a);

    a = load_ok("[account card]\ncarddav = https://dav.example.com\nuser = u\n"
                "password_command = x\n",
                "card");
    if (a)
        CHECK_STR(a->carddav, "https://dav.example.com/");
    config_account_free(a);
}

static void
test_several_accounts(void)
{
    const char *text = "[account work]\n" BASE "poll = 5\n"
                       "\n"
                       "[account home]\n"
                       "imap = imaps://home.example.org\n"
                       "user = bob\n"
                       "password_command = echo home\n"
                       "poll = 86400\n";
    struct config_account *a = load_ok(text, "home");
    if (a) {
        CHECK_STR(a->name, "home");
        CHECK(a->line == 7);
        CHECK_STR(a->imap, "imaps://home.example.org");
        CHECK_STR(a->user, "bob");
        CHECK(a->poll == 86400);
    }
    config_account_free(a);
    a = load_ok(text, "work");
    if (a)
        CHECK(a->poll == 5);
    config_account_free(a);
}

static void
test_account_names(void)
{
    char name64[65];
    memset(name64, 'n', 64);
    name64[64] = '\0';
    const char *good[] = {"a", "alice@example.com", "a-b_c.d", "A1", name64};
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        char text[512];
        snprintf(text, sizeof(text), "[account %s]\n" BASE, good[i]);
        struct config_account *a = load_ok(text, good[i]);
        if (a)
            CHECK_STR(a->name, good[i]);
        config_account_free(a);
    }

    char name65[66];
    memset(name65, 'n', 65);
    name65[65] = '\0';
    char text[512];
    snprintf(text, sizeof(text), "; x\n[account %s]\n" BASE, name65);
    expect_err(text, "a", 2, "longer than 64 bytes", "shorten");

    expect_err("[account a/b]\n" BASE, "a/b", 1, "'a/b'", "rename it");
    expect_err("[account a b]\n" BASE, "a", 1, "'a b'", "rename it");
    expect_err("[account ..]\n" BASE, "..", 1, "directory name", "rename it");
    expect_err("[account .]\n" BASE, ".", 1, "directory name", "rename it");
    expect_err("[account a..b]\n" BASE, "a..b", 1, "directory name", "rename it");
    expect_err("[account -f]\n" BASE, "-f", 1, "option", "rename it");
    expect_err("[account é]\n" BASE, "é", 1, "letters, digits", "rename it");
    expect_err("[account]\n" BASE, "a", 1, "no name", "[account NAME]");
    expect_err("[account   ]\n" BASE, "a", 1, "no name", "[account NAME]");
}

static void
test_missing_file(void)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/nonexistent", tmpdir);
    check_err(path, "a", 0, "cannot read config: No such file or directory",
              "create it with an [account NAME] section (see mailfs --help)");
    /* A directory is not a config file. */
    check_err(tmpdir, "a", 0, "cannot read config", NULL);
}

static void
test_bad_lines(void)
{
    /* A stray line is reported but never quoted back: it may be a password. */
    expect_err_hiding("[account a]\n" BASE "hunter2secret\n", 5, "key = value",
                      "hunter2secret");
    expect_err("[account a]\n" BASE "= x\n", "a", 5, "no key before '='", "key = value");
    expect_err("[account a\n" BASE, "a", 1, "no closing ']'", "[account NAME]");
    expect_err("[account a] x\n" BASE, "a", 1, "after the section header", "remove it");
    expect_err("[server a]\n" BASE, "a", 1, "unknown section '[server a]'",
               "[account NAME]");
    expect_err("[accounts a]\n" BASE, "a", 1, "unknown section", "[account NAME]");
    expect_err("[Account a]\n" BASE, "a", 1, "unknown section", "[account NAME]");
    expect_err("# first\nimap = imaps://h\n[account a]\n" BASE, "a", 2,
               "'imap' is outside any account", "add an [account NAME] line above it");
    expect_err("[account a]\nuser = u\x01x\n" BASE, "a", 2, "control character 0x01",
               "remove it");
    expect_err("[account a]\nuser = a\rb\n", "a", 2, "control character 0x0d",
               "remove it");
}

static void
test_duplicates(void)
{
    expect_err("[account a]\n" BASE "\n[account b]\n" BASE "[account a]\n" BASE, "a", 10,
               "account 'a' is defined twice (first on line 1)", "rename or merge");
    expect_err("[account a]\n" BASE "user = bob\n", "a", 5,
               "user is set twice in [account a] (first on line 3)", "remove one");
    expect_err("[account a]\n" BASE "poll = 60\npoll = 60\n", "a", 6, "poll is set twice",
               "first on line 5");
}

static void
test_unknown_keys(void)
{
    expect_err("[account a]\n" BASE "imaps = imaps://h\n", "a", 5, "unknown key 'imaps'",
               "did you mean 'imap'?");
    expect_err("[account a]\n" BASE "pol = 5\n", "a", 5, "did you mean 'poll'?",
               "imap, caldav, carddav, user, password_command, cafile, tls, poll");
    expect_err("[account a]\n" BASE "calldav = https://h/\n", "a", 5,
               "did you mean 'caldav'?", NULL);
    expect_err("[account a]\n" BASE "IMAP = imaps://h\n", "a", 5, "did you mean 'imap'?",
               NULL);
    expect_err(
        "[account a]\n" BASE "frobnicate = 1\n", "a", 5, "unknown key 'frobnicate'",
        "the keys are imap, caldav, carddav, user, password_command, cafile, tls, poll");
    write_cfg("[account a]\n" BASE "frobnicate = 1\n");
    char *err = NULL;
    struct config_account *a = NULL;
    CHECK(config_load(cfg_path, "a", &a, &err) == -1);
    CHECK(err && !strstr(err, "did you mean"));
    free(err);
    /* A password in the config is refused, and its value is not quoted back. */
    expect_err_hiding("[account a]\n" BASE "password = s3cr3t\n", 5, "password_command",
                      "s3cr3t");
}

static void
test_empty_values(void)
{
    expect_err("[account a]\n" BASE "poll =\n", "a", 5, "poll has an empty value",
               "give it a value or remove the line");
    expect_err(
        "[account a]\nimap = imaps://h\nuser =    ; nobody\npassword_command = x\n", "a",
        3, "user has an empty value", "remove the line");
    expect_err("[account a]\nimap = imaps://h\nuser = \"\"\npassword_command = x\n", "a",
               3, "user has an empty value", NULL);
    expect_err("[account a]\nimap = imaps://h\nuser = ;x\npassword_command = x\n", "a", 3,
               "user has an empty value", NULL);
    expect_err("[account a]\nimap = imaps://h\nuser = \"abc\npassword_command = x\n", "a",
               3, "no closing '\"'", "end it with");
}

static void
test_imap_errors(void)
{
    static const struct {
        const char *url, *n1, *n2;
    } cases[] = {
        {"http://mail.example.com", "imap cannot use http://", "imaps://HOST[:PORT]"},
        {"mail.example.com", "imap must be a URL", "imaps://HOST[:PORT]"},
        {"imaps://", "imap has no host", "imaps://HOST[:PORT]"},
        {"imaps:///INBOX", "imap has no host", "imaps://HOST[:PORT]"},
        {"imaps://h:0", "bad port", "1 to 65535"},
        {"imaps://h:65536", "bad port", "1 to 65535"},
        {"imaps://h:abc", "imap has a bad port", "1 to 65535"},
        {"imaps://h/INBOX", "path, query or fragment", "imaps://HOST[:PORT]"},
        {"imaps://h/?x", "path, query or fragment", NULL},
        {"imaps://h/#x", "path, query or fragment", NULL},
        {"imaps://a b", "not a valid URL", "imaps://HOST[:PORT]"},
        {"imaps://alice@h", "user name or password in the URL",
         "use the user and password_command keys instead"},
        {"imaps://h;AUTH=PLAIN@h", "user name or password in the URL", NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char text[512];
        snprintf(text, sizeof(text),
                 "[account a]\nuser = u\n\nimap = %s\npassword_command = x\n",
                 cases[i].url);
        expect_err(text, "a", 4, cases[i].n1, cases[i].n2);
    }
    /* The URL's password never appears in the message. */
    expect_err_hiding("[account a]\nuser = u\nimap = imaps://alice:Pa55word@h:993\n"
                      "password_command = x\n",
                      3, "use the user and password_command keys instead", "Pa55word");
}

static void
test_dav_errors(void)
{
    expect_err("[account a]\nuser = u\npassword_command = x\ncaldav = ftp://h/\n", "a", 4,
               "caldav cannot use ftp://", "https://HOST/PATH");
    expect_err("[account a]\nuser = u\npassword_command = x\ncarddav = imaps://h/\n", "a",
               4, "carddav cannot use imaps://", "https://HOST/PATH");
    expect_err("[account a]\nuser = u\npassword_command = x\ncaldav = https:///dav\n",
               "a", 4, "caldav has no host", NULL);
    expect_err(
        "[account a]\nuser = u\npassword_command = x\ncaldav = dav.example.com/x\n", "a",
        4, "caldav must be a URL", "https://HOST/PATH");
    expect_err_hiding("[account a]\nuser = u\npassword_command = x\n"
                      "carddav = https://u:Dav5ecret@h/card/\n",
                      4, "user name or password in the URL", "Dav5ecret");
}

static void
test_tls_errors(void)
{
    expect_err("[account a]\n" BASE "tls = yes\n", "a", 5, "tls = yes is not a setting",
               "remove the line");
    expect_err("[account a]\n" BASE "tls = starttls\n", "a", 5, "tls = none",
               "remove the line");
    /* The contradiction is reported at the tls line, wherever imap is. */
    expect_err("[account a]\ntls = none\n" BASE, "a", 2, "contradicts imap = imaps://",
               "line 3");
    expect_err("[account a]\n" BASE "tls = none\n[account b]\n" BASE, "b", 5,
               "contradicts", "imap://HOST");
}

static void
test_poll_errors(void)
{
    const char *bad[] = {"abc", "-1", "10x", "+10", "1.5", "6 0"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char text[512];
        snprintf(text, sizeof(text), "[account a]\n" BASE "poll = %s\n", bad[i]);
        expect_err(text, "a", 5, "not a whole number of seconds", "poll = 60");
    }
    const char *range[] = {"99999999999999999999", "0", "86401"};
    for (size_t i = 0; i < ARRAY_SIZE(range); i++) {
        char text[512];
        snprintf(text, sizeof(text), "[account a]\n" BASE "poll = %s\n", range[i]);
        expect_err(text, "a", 5, "out of range", "1 to 86400 seconds");
    }
    struct config_account *a = load_ok("[account a]\n" BASE "poll = 0060\n", "a");
    if (a)
        CHECK(a->poll == 60);
    config_account_free(a);
}

static void
test_cafile(void)
{
    /* Relative to the config's directory, reached through a relative path. */
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    CHECK(chdir("/") == 0);
    write_cfg("[account a]\n" BASE CA);
    struct config_account *a = NULL;
    char *err = NULL;
    CHECK(config_load(cfg_path + 1, "a", &a, &err) == 0); /* "tmp/..." from / */
    if (a)
        CHECK_STR(a->cafile, ca_path);
    config_account_free(a);
    free(err);
    CHECK(chdir(cwd) == 0);

    /* ~/ is $HOME. */
    char *old_home = getenv("HOME") ? xstrdup(getenv("HOME")) : NULL;
    setenv("HOME", tmpdir, 1);
    a = load_ok("[account a]\n" BASE "cafile = ~/ca.pem\n", "a");
    if (a)
        CHECK_STR(a->cafile, ca_path);
    config_account_free(a);
    if (old_home)
        setenv("HOME", old_home, 1);
    else
        unsetenv("HOME");
    free(old_home);

    expect_err("[account a]\n" BASE "cafile = missing.pem\n", "a", 5, "No such file",
               "readable PEM file");
    expect_err("[account a]\n" BASE "cafile = /\n", "a", 5, "not a regular file",
               "PEM file");

    if (geteuid() != 0) {
        char locked[PATH_MAX + 32];
        snprintf(locked, sizeof(locked), "%s/locked.pem", tmpdir);
        write_file(locked, "x", 1);
        chmod(locked, 0);
        expect_err("[account a]\n" BASE "cafile = locked.pem\n", "a", 5, "cannot be read",
                   "permissions");
        unlink(locked);
    }
}

static void
test_required_keys(void)
{
    expect_err("[account a]\n" BASE "\n[account b]\nuser = u\npassword_command = x\n"
               "poll = 60\n",
               "a", 6, "account 'b' has none of imap, caldav, carddav",
               "add at least one");
    expect_err("[account a]\nimap = imaps://h\npassword_command = x\n", "a", 1,
               "account 'a' has no user", "add user = ");
    expect_err("[account a]\ncaldav = https://h/\nuser = u\n", "a", 1,
               "account 'a' has no password_command", "add password_command = ");
    expect_err("; only an empty account\n[account a]\n", "a", 2, "has none of imap",
               NULL);
}

static void
test_unknown_account(void)
{
    expect_err("[account work]\n" BASE "[account home]\n" BASE, "x", 0,
               "no account 'x'; defined accounts: work, home", NULL);
    expect_err("; nothing here\n", "x", 0, "no account 'x'",
               "add an [account x] section");
    expect_err("", "x", 0, "no account 'x'", "add an [account x] section");
    /* An error in another account still stops the load. */
    expect_err("[account a]\n" BASE "[account b]\n" BASE "poll = 0\n", "a", 9,
               "out of range", NULL);
}

static void
test_command_names(void)
{
    expect_err("[account sync]\n" BASE, "sync", 1, "is a mailfs command", "rename");
    expect_err("[account reset]\n" BASE, "reset", 1, "is a mailfs command", "rename");
}

static void
test_limits(void)
{
    /* 4096 bytes is fine, 4097 is not; the CR of a CRLF does not count. */
    char line[4097];
    memcpy(line, "user = ", 7);
    memset(line + 7, 'u', 4096 - 7);
    line[4096] = '\0';
    char *good =
        xasprintf("[account a]\nimap = imaps://h\npassword_command = x\n%s\r\n", line);
    struct config_account *a = load_ok(good, "a");
    if (a)
        CHECK(a->user && strlen(a->user) == 4096 - 7);
    config_account_free(a);
    char *bad =
        xasprintf("[account a]\nimap = imaps://h\npassword_command = x\n%su\n", line);
    expect_err(bad, "a", 4, "longer than 4096 bytes", "shorten it");
    free(good);
    free(bad);

    /* A huge line without any newline. */
    size_t big = 100000;
    char *huge = xmalloc(big + 1);
    memset(huge, 'x', big);
    huge[big] = '\0';
    expect_err(huge, "a", 1, "longer than 4096 bytes", NULL);
    free(huge);

    /* More than 1 MiB of comments. */
    size_t mib = 1024 * 1024 + 10;
    char *large = xmalloc(mib + 1);
    for (size_t i = 0; i < mib; i++)
        large[i] = (i % 64 == 63) ? '\n' : '#';
    large[mib] = '\0';
    expect_err(large, "a", 0, "larger than 1 MiB", NULL);
    free(large);

    /* NUL bytes. */
    const char nul[] = "[account a]\nuser = a\0b\n";
    write_file(cfg_path, nul, sizeof(nul) - 1);
    check_err(cfg_path, "a", 2, "NUL byte", "text file");
}

/* Loads a one-account config with the given password_command. */
static struct config_account *
pw_account(const char *cmd)
{
    char *text = xasprintf(
        "[account pw]\nimap = imaps://h\nuser = u\npassword_command = %s\n", cmd);
    struct config_account *a = load_ok(text, "pw");
    free(text);
    return a;
}

static void
expect_password(const char *cmd, const char *want)
{
    struct config_account *a = pw_account(cmd);
    if (!a)
        return;
    char *pw = NULL, *err = NULL;
    int rc = config_password(a, &pw, &err);
    if (rc != 0)
        printf("# %s: %s\n", cmd, err ? err : "(null)");
    CHECK(rc == 0);
    CHECK(err == NULL);
    CHECK_STR(pw, want);
    if (pw)
        explicit_bzero(pw, strlen(pw));
    free(pw);
    free(err);
    config_account_free(a);
}

static void
expect_password_err(const char *cmd, const char *n1, const char *hidden)
{
    struct config_account *a = pw_account(cmd);
    if (!a)
        return;
    char *pw = (char *)1, *err = NULL;
    int rc = config_password(a, &pw, &err);
    CHECK(rc == -1);
    CHECK(pw == NULL);
    CHECK(err && strstr(err, "account 'pw'"));
    CHECK(err && strstr(err, n1));
    if (hidden)
        CHECK(err && !strstr(err, hidden));
    if (err && !strstr(err, n1))
        printf("# %s: %s\n", cmd, err);
    free(err);
    config_account_free(a);
}

static void
test_password_ok(void)
{
    expect_password("printf 'pw\\nsecond'", "pw");
    expect_password("printf 'pw\\r\\n'", "pw");
    expect_password("printf 'no newline'", "no newline");
    /* Spaces, ';' and '#' in the password, through a quoted value. */
    expect_password("\"printf '%s\\n' ' a b ;c # d '\"", " a b ;c # d ");
    /* stdin is /dev/null, so read gets nothing and does not hang. */
    expect_password("read x; echo \"got[$x]\"", "got[]");
    /* Long output after the first line is drained, not a failure. */
    expect_password("echo pw; head -c 300000 /dev/zero", "pw");
    /* A background process that keeps stdout open does not delay the answer. */
    int64_t t0 = util_now_ms();
    expect_password("sleep 3 & echo bg", "bg");
    CHECK(util_now_ms() - t0 < 2000);
}

static void
test_password_stderr(void)
{
    /* stderr is inherited (the user sees why a command failed), and is not
     * part of the password. */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/stderr", tmpdir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    expect_password("echo to-stderr >&2; echo pw", "pw");
    dup2(saved, 2);
    close(saved);
    char got[64] = "";
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f) {
        CHECK(fgets(got, sizeof(got), f) != NULL);
        fclose(f);
    }
    CHECK_STR(got, "to-stderr\n");
    unlink(path);
}

static void
test_password_errors(void)
{
    expect_password_err("echo s3cret; exit 3", "exited with status 3", "s3cret");
    expect_password_err("false", "exited with status 1", NULL);
    expect_password_err("true", "printed nothing", NULL);
    expect_password_err("printf '\\nsecond'", "empty first line", "second");
    expect_password_err("printf '\\r\\nsecond'", "empty first line", "second");
    expect_password_err("kill -9 $$", "killed by signal 9", NULL);
    expect_password_err("head -c 70000 /dev/zero | tr '\\0' a", "longer than 64 KiB",
                        NULL);
    expect_password_err("printf 'a\\0b\\n'", "NUL byte", NULL);
    expect_password_err("/nonexistent/command 2>/dev/null", "exited with status 127",
                        NULL);
}

static void
test_password_timeout(void)
{
    config_test_set_password_timeout(300);
    int64_t t0 = util_now_ms();
    expect_password_err("echo partial; sleep 30", "did not finish within 0.3 s",
                        "partial");
    /* Output closed but the command still running. */
    expect_password_err("exec >&-; sleep 30", "did not finish", NULL);
    /* A child in the background is killed with the group. */
    char marker[PATH_MAX + 32];
    snprintf(marker, sizeof(marker), "%s/survived", tmpdir);
    char *cmd = xasprintf("(sleep 1; touch %s) & sleep 30", marker);
    expect_password_err(cmd, "did not finish", NULL);
    free(cmd);
    CHECK(util_now_ms() - t0 < 3000);
    config_test_set_password_timeout(0);
    usleep(1500 * 1000);
    CHECK(access(marker, F_OK) != 0);
}

static void
test_password_fd_hygiene(void)
{
    /* A descriptor left open without O_CLOEXEC does not reach the command. */
    int fd = open("/dev/null", O_RDONLY);
    CHECK(fd > 2);
    char *cmd = xasprintf(
        "if [ -e /proc/self/fd/%d ]; then echo leaked; else echo clean; fi", fd);
    expect_password(cmd, "clean");
    free(cmd);
    close(fd);
    /* The command runs in its own process group. */
    expect_password("set -- $(cut -d' ' -f5 /proc/$$/stat); "
                    "if [ \"$1\" = $$ ]; then echo own; else echo shared; fi",
                    "own");
}

int
main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "%s/mailfs-test-config-XXXXXX",
             getenv("TMPDIR") && getenv("TMPDIR")[0] == '/' ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    /* Canonical, so that the cafile paths config_load resolves compare equal. */
    char *real = realpath(tmpdir, NULL);
    if (!real) {
        perror("realpath");
        return 1;
    }
    snprintf(tmpdir, sizeof(tmpdir), "%s", real);
    free(real);
    snprintf(cfg_path, sizeof(cfg_path), "%s/config", tmpdir);
    snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", tmpdir);
    write_file(ca_path, "not really a PEM\n", 17);

    RUN(test_default_path);
    RUN(test_design_example);
    RUN(test_defaults_and_minimal);
    RUN(test_syntax_tolerance);
    RUN(test_quoting);
    RUN(test_imap_forms);
    RUN(test_tls_none);
    RUN(test_dav_only);
    RUN(test_several_accounts);
    RUN(test_account_names);
    RUN(test_missing_file);
    RUN(test_bad_lines);
    RUN(test_duplicates);
    RUN(test_unknown_keys);
    RUN(test_empty_values);
    RUN(test_imap_errors);
    RUN(test_dav_errors);
    RUN(test_tls_errors);
    RUN(test_poll_errors);
    RUN(test_command_names);
    RUN(test_cafile);
    RUN(test_required_keys);
    RUN(test_unknown_account);
    RUN(test_limits);
    RUN(test_password_ok);
    RUN(test_password_stderr);
    RUN(test_password_errors);
    RUN(test_password_timeout);
    RUN(test_password_fd_hygiene);

    unlink(cfg_path);
    unlink(ca_path);
    rmdir(tmpdir);
    return check_done();
}
