/* config: reads the account file of DESIGN section 7 and runs an account's
 * password_command. */

/*
 * The config file, as the README describes it:
 *
 *   - UTF-8 text, at most 1 MiB, lines at most 4096 bytes (not counting the
 *     line end). LF or CRLF line ends; a UTF-8 byte order mark at the start is
 *     skipped. NUL bytes and other control characters except tab are errors.
 *   - Blank lines are ignored. A line whose first non-blank character is ';'
 *     or '#' is a comment.
 *   - "[account NAME]" starts an account. NAME is 1 to 64 bytes of letters,
 *     digits and "-_.@"; it names the store's directory, so it may not be "."
 *     or contain "..", and it may not start with '-' (it would read as an
 *     option on the command line). Names are case-sensitive and appear once.
 *   - "key = value" sets a key of the account above it; blanks around '=' and
 *     around the value are ignored. Keys are lower case: imap, caldav,
 *     carddav, user, password_command, cafile, tls, poll. Each at most once
 *     per account; no value may be empty.
 *   - Comments after a value or a section header start at a ';' or '#' that
 *     is preceded by a blank (space or tab) or starts the value:
 *         imap = imaps://mail.example.com   ; imaps: TLS
 *     A ';' or '#' glued to the text before it is part of the value
 *     ("pass show mail#work" keeps its '#').
 *   - A value that starts with '"' is quoted when its closing '"' is followed
 *     only by blanks and, optionally, a comment. Inside the quotes, \" stands
 *     for " and \\ for \; any other backslash is kept as it is. Quotes keep
 *     ';', '#' and leading or trailing blanks:
 *         password_command = "printf '%s\n' 'a ;b'"   ; quotes kept for sh
 *     When other text follows the closing quote, the value is read unquoted
 *     and keeps its quotes, so a shell command may start with one:
 *         password_command = "$HOME/bin/getpw" work
 *     A value that starts with '"' and has no closing '"' is an error.
 *
 * What is stored: imap as "scheme://host[:port]" (scheme in lower case, no
 * trailing slash, as libcurl normalises it); caldav and carddav as libcurl
 * normalises them (lower-case scheme, "/" path when none was given); cafile
 * as an absolute path ("~/" is $HOME, a relative path is relative to the
 * directory holding the config file, symlinks in that directory resolved).
 *
 * Every account in the file is checked, not only the one asked for, so a
 * mistake is reported as soon as the file is used. The first error wins.
 *
 * password_command runs as `/bin/sh -c -- COMMAND` in a new process group,
 * stdin /dev/null, stdout a pipe, stderr inherited, every other descriptor
 * closed, default signal handling. The first line of its output (at most
 * 64 KiB; a trailing CR is dropped) is the password; the rest is read and
 * discarded. It must exit 0 within 60 s, else its process group is killed.
 * Tests shorten the 60 s with config_test_set_password_timeout() below.
 */
#include "fs/config.h"
#include "common/dynbuf.h"
#include "common/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CONFIG_MAX_FILE (1024 * 1024)
#define CONFIG_MAX_LINE 4096
#define CONFIG_MAX_NAME 64
#define POLL_MIN 1
#define POLL_MAX 86400
#define POLL_DEFAULT 60
#define PASSWORD_MAX (64 * 1024)
#define PASSWORD_TIMEOUT_MS 60000

extern char **environ;

enum key {
    KEY_IMAP,
    KEY_CALDAV,
    KEY_CARDDAV,
    KEY_USER,
    KEY_PASSWORD_COMMAND,
    KEY_CAFILE,
    KEY_TLS,
    KEY_POLL,
    KEY_SYNC_MODE,
    KEY_COUNT
};

static const char *const key_names[KEY_COUNT] = {
    "imap", "caldav", "carddav", "user", "password_command", "cafile", "tls", "poll",
    "sync_mode",
};

#define KEY_LIST                                                                          \
    "imap, caldav, carddav, user, password_command, cafile, tls, poll, sync_mode"

struct section {
    struct config_account *acct; /* owned until handed out */
    int key_line[KEY_COUNT];     /* where each key was set; 0 when unset */
};

struct parser {
    const char *path;
    char *dir; /* absolute directory of the config file; computed when needed */
    char *err; /* the first error; owned */
    struct section *secs;
    size_t nsecs, secs_alloc;
    bool in_section; /* the last of secs is open */
};

static int fail(struct parser *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct parser *p, int line, const char *fmt, ...)
{
    if (p->err)
        return -1;
    struct dynbuf b;
    dynbuf_init(&b, 4 * CONFIG_MAX_FILE);
    if (line > 0)
        dynbuf_printf(&b, "%s:%d: ", p->path, line);
    else
        dynbuf_printf(&b, "%s: ", p->path);
    va_list ap;
    va_start(ap, fmt);
    dynbuf_vprintf(&b, fmt, ap);
    va_end(ap);
    p->err = dynbuf_take(&b);
    return -1;
}

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static char *
skip_blanks(char *s)
{
    while (is_blank(*s))
        s++;
    return s;
}

static void
trim_end(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && is_blank(s[n - 1]))
        s[--n] = '\0';
}

/* True when `s` holds only blanks and, optionally, a comment. */
static bool
rest_is_empty(const char *s)
{
    while (is_blank(*s))
        s++;
    return *s == '\0' || *s == ';' || *s == '#';
}

static int
ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Edit distance of `a` to `b`, ignoring ASCII case; `b` is one of the short
 * key names, so one row of 32 is enough. Long inputs are far from every key. */
static size_t
edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 32 || m >= 32)
        return SIZE_MAX;
    size_t row[33];
    for (size_t j = 0; j <= m; j++)
        row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];
            size_t cost = ascii_lower((unsigned char)a[i - 1]) ==
                                  ascii_lower((unsigned char)b[j - 1])
                              ? 0
                              : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

static int
unknown_key(struct parser *p, int line, const char *key)
{
    if (strcasecmp(key, "password") == 0 || strcasecmp(key, "pass") == 0 ||
        strcasecmp(key, "passwd") == 0)
        return fail(
            p, line,
            "unknown key '%s'; mailfs never reads a password from the config: set "
            "password_command to a command that prints it (e.g. pass show mail/work)",
            key);
    size_t best = SIZE_MAX;
    const char *guess = NULL;
    for (int k = 0; k < KEY_COUNT; k++) {
        size_t d = edit_distance(key, key_names[k]);
        if (d < best) {
            best = d;
            guess = key_names[k];
        }
    }
    if (guess && best <= 2 && best < strlen(key))
        return fail(p, line,
                    "unknown key '%s'; did you mean '%s'? The keys are " KEY_LIST, key,
                    guess);
    return fail(p, line, "unknown key '%s'; the keys are " KEY_LIST, key);
}

/* Reads the value that starts at `s` (just after '=') following the quoting
 * rules at the top of this file. Returns a new string, or NULL after fail(). */
static char *
parse_value(struct parser *p, int line, char *s)
{
    s = skip_blanks(s);
    if (*s == '"') {
        struct dynbuf b;
        dynbuf_init(&b, CONFIG_MAX_LINE);
        size_t i = 1;
        for (;;) {
            char c = s[i];
            if (c == '\0') {
                dynbuf_free(&b);
                fail(p, line,
                     "the quoted value has no closing '\"'; end it with '\"' (write \\\" "
                     "for a quote inside it)");
                return NULL;
            }
            if (c == '\\' && (s[i + 1] == '"' || s[i + 1] == '\\')) {
                dynbuf_addc(&b, s[i + 1]);
                i += 2;
            } else if (c == '"') {
                i++;
                break;
            } else {
                dynbuf_addc(&b, c);
                i++;
            }
        }
        if (rest_is_empty(s + i))
            return dynbuf_take(&b);
        /* Text after the closing quote: the quotes belong to the value
         * (e.g. a shell command starting with a quoted program path). */
        dynbuf_free(&b);
    }
    for (size_t i = 0; s[i]; i++) {
        if ((s[i] == ';' || s[i] == '#') && (i == 0 || is_blank(s[i - 1]))) {
            s[i] = '\0';
            break;
        }
    }
    trim_end(s);
    return xstrdup(s);
}

static bool
valid_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '@';
}

static int
check_name(struct parser *p, int line, const char *name)
{
    size_t n = strlen(name);
    if (n == 0)
        return fail(p, line, "the account has no name; write [account NAME]");
    if (n > CONFIG_MAX_NAME)
        return fail(p, line, "the account name is longer than %d bytes; shorten it",
                    CONFIG_MAX_NAME);
    for (size_t i = 0; i < n; i++) {
        if (!valid_name_char(name[i]))
            return fail(
                p, line,
                "account name '%s' has a character other than letters, digits and "
                "- _ . @; rename it (the name becomes a directory name)",
                name);
    }
    if (strcmp(name, ".") == 0 || strstr(name, ".."))
        return fail(p, line,
                    "account name '%s' cannot be a directory name ('.' or '..' in it); "
                    "rename it",
                    name);
    static const char *const commands[] = {"sync", "status", "online", "offline",
                                           "reindex", "reset"};
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (strcmp(name, commands[i]) == 0)
            return fail(p, line,
                        "account name '%s' is a mailfs command (mailfs %s ...); rename "
                        "the account",
                        name, name);
    if (name[0] == '-')
        return fail(p, line,
                    "account name '%s' starts with '-' and would read as an option; "
                    "rename it",
                    name);
    return 0;
}

static struct section *
current(struct parser *p)
{
    return p->in_section ? &p->secs[p->nsecs - 1] : NULL;
}

/* The checks that need the whole section; errors point at its header, or at
 * the tls line for the one contradiction between two keys. */
static int
finish_section(struct parser *p)
{
    struct section *sec = current(p);
    p->in_section = false;
    if (!sec)
        return 0;
    struct config_account *a = sec->acct;
    if (!a->imap && !a->caldav && !a->carddav)
        return fail(p, a->line,
                    "account '%s' has none of imap, caldav, carddav; add at least one, "
                    "e.g. imap = imaps://mail.example.com",
                    a->name);
    if (!a->user)
        return fail(p, a->line, "account '%s' has no user; add user = LOGIN", a->name);
    if (!a->password_command)
        return fail(
            p, a->line,
            "account '%s' has no password_command; add password_command = COMMAND "
            "(it prints the password on its first line)",
            a->name);
    if (a->tls == CONFIG_TLS_NONE && a->imap && strncmp(a->imap, "imaps:", 6) == 0)
        return fail(p, sec->key_line[KEY_TLS],
                    "tls = none contradicts imap = imaps://... on line %d; write "
                    "imap://HOST to connect without TLS, or remove the tls line",
                    sec->key_line[KEY_IMAP]);
    return 0;
}

static int
parse_section(struct parser *p, int line, char *s)
{
    /* Checks of the section above come first: their line is earlier. */
    if (finish_section(p) < 0)
        return -1;
    char *close = strchr(s, ']');
    if (!close)
        return fail(p, line,
                    "the section header has no closing ']'; write [account NAME]");
    if (!rest_is_empty(close + 1))
        return fail(p, line,
                    "text after the section header's ']'; remove it or start a comment "
                    "with ';'");
    *close = '\0';
    char *inner = skip_blanks(s + 1);
    trim_end(inner);
    if (strcmp(inner, "account") == 0)
        return fail(p, line, "the account has no name; write [account NAME]");
    if (strncmp(inner, "account", 7) != 0 || !is_blank(inner[7]))
        return fail(p, line,
                    "unknown section '[%s]'; an account starts with [account NAME]",
                    inner);
    const char *name = skip_blanks(inner + 7);
    if (check_name(p, line, name) < 0)
        return -1;
    for (size_t i = 0; i < p->nsecs; i++) {
        if (strcmp(p->secs[i].acct->name, name) == 0)
            return fail(p, line,
                        "account '%s' is defined twice (first on line %d); rename or "
                        "merge one",
                        name, p->secs[i].acct->line);
    }
    if (p->nsecs == p->secs_alloc) {
        p->secs_alloc = p->secs_alloc ? 2 * p->secs_alloc : 4;
        p->secs = xrealloc(p->secs, p->secs_alloc * sizeof(*p->secs));
    }
    struct section *sec = &p->secs[p->nsecs++];
    memset(sec, 0, sizeof(*sec));
    struct config_account *a = xcalloc(1, sizeof(*a));
    a->name = xstrdup(name);
    a->file = xstrdup(p->path);
    a->line = line;
    a->tls = CONFIG_TLS_REQUIRED;
    a->poll = POLL_DEFAULT;
    sec->acct = a;
    p->in_section = true;
    return 0;
}

/* A scheme worth quoting back in a message: short and plainly a scheme. */
static bool
printable_scheme(const char *s, size_t n)
{
    if (n == 0 || n > 16)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* Checks an imap (is_imap) or DAV URL and stores its normalised form in *out.
 * The URL itself is never quoted back: it may hold a password. */
static int
check_url(struct parser *p, int line, const char *key, const char *v, bool is_imap,
          char **out)
{
    const char *form = is_imap ? "imaps://HOST[:PORT] or imap://HOST[:PORT]"
                               : "https://HOST/PATH or http://HOST/PATH";
    const char *sep = strstr(v, "://");
    if (!sep || sep == v)
        return fail(p, line, "%s must be a URL; write it as %s", key, form);
    size_t slen = (size_t)(sep - v);
    bool ok_scheme =
        is_imap ? util_ascii_eq(v, slen, "imap") || util_ascii_eq(v, slen, "imaps")
                : util_ascii_eq(v, slen, "http") || util_ascii_eq(v, slen, "https");
    if (!ok_scheme) {
        if (printable_scheme(v, slen))
            return fail(p, line, "%s cannot use %.*s://; write it as %s", key, (int)slen,
                        v, form);
        return fail(p, line, "%s has an unknown scheme; write it as %s", key, form);
    }
    if (sep[3] == '\0' || sep[3] == '/')
        return fail(p, line, "%s has no host; write it as %s", key, form);

    CURLU *u = curl_url();
    if (!u)
        return fail(p, line, "out of memory while reading %s", key);
    int rc = -1;
    char *user = NULL, *password = NULL, *options = NULL, *host = NULL, *port = NULL;
    char *path = NULL, *query = NULL, *fragment = NULL, *url = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, v, CURLU_NON_SUPPORT_SCHEME);
    if (uc == CURLUE_BAD_PORT_NUMBER) {
        fail(p, line, "%s has a bad port; a port is a number from 1 to 65535", key);
        goto out;
    }
    if (uc != CURLUE_OK) {
        fail(p, line, "%s is not a valid URL (%s); write it as %s", key,
             curl_url_strerror(uc), form);
        goto out;
    }
    curl_url_get(u, CURLUPART_USER, &user, 0);
    curl_url_get(u, CURLUPART_PASSWORD, &password, 0);
    curl_url_get(u, CURLUPART_OPTIONS, &options, 0);
    if (user || password || options) {
        fail(p, line,
             "%s has a user name or password in the URL; remove it from the URL and use "
             "the user and password_command keys instead",
             key);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
        fail(p, line, "%s has no host; write it as %s", key, form);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port) {
        char *end;
        errno = 0;
        long n = strtol(port, &end, 10);
        if (errno || *end || n < 1 || n > 65535) {
            fail(p, line, "%s has a bad port; a port is a number from 1 to 65535", key);
            goto out;
        }
    }
    if (is_imap) {
        curl_url_get(u, CURLUPART_PATH, &path, 0);
        curl_url_get(u, CURLUPART_QUERY, &query, 0);
        curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0);
        if ((path && *path && strcmp(path, "/") != 0) || query || fragment) {
            fail(p, line,
                 "%s has a path, query or fragment; mailfs mounts every folder, so write "
                 "it as %s",
                 key, form);
            goto out;
        }
    }
    if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK || !url) {
        fail(p, line, "%s is not a valid URL; write it as %s", key, form);
        goto out;
    }
    size_t n = strlen(url);
    if (is_imap && n > 0 && url[n - 1] == '/')
        n--;
    *out = xstrndup(url, n);
    rc = 0;
out:
    curl_free(user);
    curl_free(password);
    curl_free(options);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_free(fragment);
    curl_free(url);
    curl_url_cleanup(u);
    return rc;
}

/* The absolute directory of the config file as named (a symlinked file is
 * not followed, so a relative cafile sits next to the name the user gave). */
static const char *
config_dir(struct parser *p)
{
    if (p->dir)
        return p->dir;
    const char *slash = strrchr(p->path, '/');
    char *dir;
    if (!slash)
        dir = xstrdup(".");
    else if (slash == p->path)
        dir = xstrdup("/");
    else
        dir = xstrndup(p->path, (size_t)(slash - p->path));
    p->dir = realpath(dir, NULL);
    free(dir);
    return p->dir;
}

static int
check_cafile(struct parser *p, int line, const char *v, char **out)
{
    char *path;
    if (v[0] == '/') {
        path = xstrdup(v);
    } else if (v[0] == '~' && v[1] == '/') {
        const char *home = getenv("HOME");
        if (!home || home[0] != '/')
            return fail(p, line,
                        "cafile starts with ~/ but HOME is not set; write an "
                        "absolute path");
        path = xasprintf("%s/%s", home, v + 2);
    } else {
        const char *dir = config_dir(p);
        if (!dir)
            return fail(p, line,
                        "cannot find the directory of the config file for the relative "
                        "cafile (%s); write an absolute path",
                        strerror(errno));
        path = xasprintf("%s/%s", dir, v);
    }
    struct stat st;
    if (stat(path, &st) < 0) {
        fail(p, line, "cafile %s: %s; give the path of a readable PEM file", path,
             strerror(errno));
        free(path);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        fail(p, line, "cafile %s is not a regular file; give the path of a PEM file",
             path);
        free(path);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        fail(p, line, "cafile %s cannot be read: %s; check its permissions", path,
             strerror(errno));
        free(path);
        return -1;
    }
    close(fd);
    *out = path;
    return 0;
}

static int
check_poll(struct parser *p, int line, const char *v)
{
    long n = 0;
    bool big = false;
    for (const char *c = v; *c; c++) {
        if (*c < '0' || *c > '9')
            return fail(
                p, line,
                "poll = %.40s is not a whole number of seconds; write e.g. poll = 60", v);
        if (!big) {
            n = n * 10 + (*c - '0');
            big = n > POLL_MAX;
        }
    }
    if (big || n < POLL_MIN)
        return fail(p, line, "poll = %.40s is out of range; use %d to %d seconds", v,
                    POLL_MIN, POLL_MAX);
    current(p)->acct->poll = (int)n;
    return 0;
}

static int
set_key(struct parser *p, int line, enum key k, char *v)
{
    struct config_account *a = current(p)->acct;
    switch (k) {
    case KEY_IMAP:
        return check_url(p, line, "imap", v, true, &a->imap);
    case KEY_CALDAV:
        return check_url(p, line, "caldav", v, false, &a->caldav);
    case KEY_CARDDAV:
        return check_url(p, line, "carddav", v, false, &a->carddav);
    case KEY_USER:
        a->user = xstrdup(v);
        return 0;
    case KEY_PASSWORD_COMMAND:
        a->password_command = xstrdup(v);
        return 0;
    case KEY_CAFILE:
        return check_cafile(p, line, v, &a->cafile);
    case KEY_TLS:
        if (strcasecmp(v, "none") == 0) {
            a->tls = CONFIG_TLS_NONE;
            return 0;
        }
        return fail(
            p, line,
            "tls = %.40s is not a setting; the only one is tls = none (plain imap:// "
            "to this machine); remove the line to require TLS",
            v);
    case KEY_POLL:
        return check_poll(p, line, v);
    case KEY_SYNC_MODE:
        if (strcmp(v, "full") == 0)
            a->sync_mode = CONFIG_SYNC_FULL;
        else if (strcmp(v, "headers") == 0)
            a->sync_mode = CONFIG_SYNC_HEADERS;
        else if (strcmp(v, "off") == 0)
            a->sync_mode = CONFIG_SYNC_OFF;
        else
            return fail(p, line,
                        "sync_mode = %.40s is not a mode; write full, headers or off (the "
                        "mode of the mail folders that have none of their own)",
                        v);
        return 0;
    case KEY_COUNT:
        break;
    }
    return fail(p, line, "internal error: key %d", (int)k);
}

static int
parse_line(struct parser *p, int line, char *s)
{
    s = skip_blanks(s);
    trim_end(s);
    if (*s == '\0' || *s == ';' || *s == '#')
        return 0;
    if (*s == '[')
        return parse_section(p, line, s);
    char *eq = strchr(s, '=');
    if (!eq)
        /* The line is not quoted back: it may be a stray password. */
        return fail(p, line,
                    "this line is not a section header, key = value, or comment; write "
                    "key = value, or start a comment with ';'");
    *eq = '\0';
    trim_end(s);
    if (*s == '\0')
        return fail(p, line, "no key before '='; write key = value");
    struct section *sec = current(p);
    if (!sec)
        return fail(p, line,
                    "'%s' is outside any account; add an [account NAME] line above it",
                    s);
    int k = -1;
    for (int i = 0; i < KEY_COUNT; i++) {
        if (strcmp(s, key_names[i]) == 0)
            k = i;
    }
    if (k < 0)
        return unknown_key(p, line, s);
    if (sec->key_line[k])
        return fail(p, line,
                    "%s is set twice in [account %s] (first on line %d); remove one",
                    key_names[k], sec->acct->name, sec->key_line[k]);
    char *v = parse_value(p, line, eq + 1);
    if (!v)
        return -1;
    int rc;
    if (*v == '\0')
        rc = fail(p, line, "%s has an empty value; give it a value or remove the line",
                  key_names[k]);
    else
        rc = set_key(p, line, (enum key)k, v);
    free(v);
    if (rc == 0)
        sec->key_line[k] = line;
    return rc;
}

static int
read_whole(struct parser *p, struct dynbuf *buf)
{
    int fd = open(p->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return fail(
                p, 0,
                "cannot read config: %s; create it with an [account NAME] section "
                "(see mailfs --help)",
                strerror(e));
        return fail(p, 0, "cannot read config: %s; check the path and its permissions",
                    strerror(e));
    }
    for (;;) {
        size_t room = buf->cap - buf->len;
        if (room == 0) {
            close(fd);
            return fail(p, 0,
                        "the config is larger than 1 MiB; it holds accounts only, "
                        "so check that this is the right file");
        }
        if (room > 65536)
            room = 65536;
        char *dst = dynbuf_reserve(buf, room);
        ssize_t r = read(fd, dst, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            if (e == EISDIR)
                return fail(p, 0, "cannot read config: %s; give the path of a file",
                            strerror(e));
            return fail(p, 0,
                        "cannot read config: %s; check the path and its permissions",
                        strerror(e));
        }
        if (r == 0)
            break;
        dynbuf_commit(buf, (size_t)r);
    }
    close(fd);
    if (buf->len > CONFIG_MAX_FILE)
        return fail(p, 0,
                    "the config is larger than 1 MiB; it holds accounts only, so "
                    "check that this is the right file");
    return 0;
}

static int
parse_text(struct parser *p, char *data, size_t len)
{
    size_t pos = 0;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    int line = 0;
    while (pos < len) {
        line++;
        char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len;
        size_t n = end - pos;
        if (n > 0 && data[pos + n - 1] == '\r')
            n--;
        if (n > CONFIG_MAX_LINE)
            return fail(p, line, "the line is longer than %d bytes; shorten it",
                        CONFIG_MAX_LINE);
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)data[pos + i];
            if (c == '\0')
                return fail(p, line,
                            "NUL byte in the line; the config must be a text file");
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return fail(p, line, "control character 0x%02x in the line; remove it",
                            c);
        }
        /* Overwrites the line end; data[len] is dynbuf's terminating NUL. */
        data[pos + n] = '\0';
        if (parse_line(p, line, data + pos) < 0)
            return -1;
        pos = end + 1;
    }
    return finish_section(p);
}

static int
pick_account(struct parser *p, const char *account, struct config_account **out)
{
    for (size_t i = 0; i < p->nsecs; i++) {
        if (strcmp(p->secs[i].acct->name, account) == 0) {
            *out = p->secs[i].acct;
            p->secs[i].acct = NULL;
            return 0;
        }
    }
    if (p->nsecs == 0)
        return fail(p, 0,
                    "no account '%s'; the file defines no accounts; add an "
                    "[account %s] section",
                    account, account);
    struct dynbuf names;
    dynbuf_init(&names, 2 * CONFIG_MAX_FILE);
    for (size_t i = 0; i < p->nsecs; i++)
        dynbuf_printf(&names, "%s%s", i ? ", " : "", p->secs[i].acct->name);
    fail(p, 0, "no account '%s'; defined accounts: %s", account, names.data);
    dynbuf_free(&names);
    return -1;
}

char *
config_default_path(void)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (xdg && xdg[0] == '/')
        return xasprintf("%s/mailfs/config", xdg);
    const char *home = getenv("HOME");
    if (home && home[0])
        return xasprintf("%s/.config/mailfs/config", home);
    return NULL;
}

int
config_load(const char *path, const char *account, struct config_account **out,
            char **err)
{
    struct parser p = {.path = path ? path : "(no config file)"};
    struct dynbuf buf;
    dynbuf_init(&buf, CONFIG_MAX_FILE + 1);
    char empty[1] = "";
    *out = NULL;
    *err = NULL;
    int rc = -1;
    if (!path)
        fail(&p, 0, "no config file; give one with --config FILE or set HOME");
    else if (!account || !*account)
        fail(&p, 0, "no account given; name one of the [account NAME] sections");
    else if (read_whole(&p, &buf) == 0 &&
             parse_text(&p, buf.data ? buf.data : empty, buf.len) == 0)
        rc = pick_account(&p, account, out);
    for (size_t i = 0; i < p.nsecs; i++)
        config_account_free(p.secs[i].acct);
    free(p.secs);
    free(p.dir);
    dynbuf_free(&buf);
    if (rc < 0)
        *err = p.err ? p.err : xasprintf("%s: cannot read config", p.path);
    else
        free(p.err);
    return rc;
}

void
config_account_free(struct config_account *a)
{
    if (!a)
        return;
    free(a->name);
    free(a->file);
    free(a->imap);
    free(a->caldav);
    free(a->carddav);
    free(a->user);
    free(a->password_command);
    free(a->cafile);
    free(a);
}

static int password_timeout_ms = PASSWORD_TIMEOUT_MS;

/* Test-only: tests/unit/test_config.c shortens the 60 s timeout so that the
 * timeout test is quick. Deliberately not in config.h; ms <= 0 restores 60 s. */
void config_test_set_password_timeout(int ms);

void
config_test_set_password_timeout(int ms)
{
    password_timeout_ms = ms > 0 ? ms : PASSWORD_TIMEOUT_MS;
}

/* Starts `/bin/sh -c -- cmd` in its own process group (so a timeout kills
 * everything it started), stdin /dev/null, stdout `out_fd`, stderr inherited,
 * no other descriptor, default signal handling. Returns 0 or an errno. */
static int
spawn_shell(const char *cmd, int out_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc)
        return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    /* dup2 before the open, in case the pipe got descriptor 0. */
    rc = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    if (!rc)
        rc =
            posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
    /* Descriptors some other thread opened without O_CLOEXEC stay here. */
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
#endif
    sigset_t empty, dflt;
    sigemptyset(&empty);
    sigemptyset(&dflt);
    /* An ignored signal stays ignored across exec; the daemon may ignore these. */
    const int sigs[] = {SIGPIPE, SIGHUP,  SIGINT,  SIGQUIT, SIGTERM,
                        SIGCHLD, SIGALRM, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        sigaddset(&dflt, sigs[i]);
    if (!rc)
        rc = posix_spawnattr_setsigmask(&attr, &empty);
    if (!rc)
        rc = posix_spawnattr_setsigdefault(&attr, &dflt);
    if (!rc)
        rc = posix_spawnattr_setpgroup(&attr, 0);
    if (!rc)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                                 POSIX_SPAWN_SETSIGMASK |
                                                 POSIX_SPAWN_SETSIGDEF);
    if (!rc) {
        char *argv[] = {(char *)"sh", (char *)"-c", (char *)"--", (char *)cmd, NULL};
        rc = posix_spawn(pid, "/bin/sh", &fa, &attr, argv, environ);
    }
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* Reads what is available on the non-blocking `fd`: up to the room left in
 * buf, the rest into a scratch buffer that is wiped. Returns 1 at end of
 * file, 0 when nothing more is available now, -1 on error (errno set). */
static int
drain(int fd, char *buf, size_t *len, bool *overflow)
{
    char scratch[4096];
    int rc = 0;
    for (;;) {
        char *dst = *len < PASSWORD_MAX ? buf + *len : scratch;
        size_t room = *len < PASSWORD_MAX ? PASSWORD_MAX - *len : sizeof(scratch);
        ssize_t r = read(fd, dst, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
            break;
        }
        if (r == 0) {
            rc = 1;
            break;
        }
        if (dst == scratch)
            *overflow = true;
        else
            *len += (size_t)r;
    }
    int e = errno;
    explicit_bzero(scratch, sizeof(scratch));
    errno = e;
    return rc;
}

/* Waits for `pid` until `deadline` (util_now_ms time): 0 when it exited
 * (status in *status), 1 on timeout, -1 on error. */
static int
wait_until(pid_t pid, int64_t deadline, int *status)
{
    long sleep_us = 1000;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        int64_t left = deadline - util_now_ms();
        if (left <= 0)
            return 1;
        long us = sleep_us < left * 1000 ? sleep_us : (long)left * 1000;
        struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
        nanosleep(&ts, NULL);
        if (sleep_us < 50000)
            sleep_us *= 2;
    }
}

static void
kill_group(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
}

int
config_password(const struct config_account *a, char **out, char **err)
{
    *out = NULL;
    *err = NULL;
    const char *name = a && a->name ? a->name : "?";
    if (!a || !a->password_command || !*a->password_command) {
        *err = xasprintf("account '%s' has no password_command; add password_command = "
                         "COMMAND to its section",
                         name);
        return -1;
    }
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        *err = xasprintf("cannot run password_command for account '%s': %s", name,
                         strerror(errno));
        return -1;
    }
    pid_t pid;
    int e = spawn_shell(a->password_command, pfd[1], &pid);
    close(pfd[1]);
    if (e) {
        close(pfd[0]);
        *err = xasprintf("cannot run password_command for account '%s': /bin/sh: %s",
                         name, strerror(e));
        return -1;
    }
    fcntl(pfd[0], F_SETFL, fcntl(pfd[0], F_GETFL) | O_NONBLOCK);

    char *buf = xmalloc(PASSWORD_MAX);
    size_t len = 0;
    bool overflow = false, exited = false, eof = false;
    int status = 0, read_errno = 0;
    int64_t deadline = util_now_ms() + password_timeout_ms;
    enum { RUN_OK, RUN_TIMEOUT, RUN_ERROR } run = RUN_OK;
    while (!eof) {
        int64_t left = deadline - util_now_ms();
        if (left <= 0) {
            run = RUN_TIMEOUT;
            break;
        }
        /* Wake up now and then: a background process the command started may
         * hold the pipe open after the command itself has exited. */
        struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
        int r = poll(&pf, 1, left < 50 ? (int)left : 50);
        if (r < 0 && errno != EINTR) {
            read_errno = errno;
            run = RUN_ERROR;
            break;
        }
        int d = drain(pfd[0], buf, &len, &overflow);
        if (d < 0) {
            read_errno = errno;
            run = RUN_ERROR;
            break;
        }
        eof = d == 1;
        if (!eof && waitpid(pid, &status, WNOHANG) == pid) {
            exited = true;
            if (drain(pfd[0], buf, &len, &overflow) < 0) {
                read_errno = errno;
                run = RUN_ERROR;
            }
            break;
        }
    }
    close(pfd[0]);
    if (run == RUN_OK && !exited) {
        int w = wait_until(pid, deadline, &status);
        if (w == 1)
            run = RUN_TIMEOUT;
        else if (w < 0) {
            read_errno = errno;
            run = RUN_ERROR;
            exited = true; /* nothing left to reap */
        } else
            exited = true;
    }
    if (!exited)
        kill_group(pid);

    int rc = -1;
    char *nl = memchr(buf, '\n', len);
    size_t line = nl ? (size_t)(nl - buf) : len;
    if (line > 0 && buf[line - 1] == '\r')
        line--;
    if (run == RUN_TIMEOUT)
        *err = xasprintf(
            "password_command for account '%s' did not finish within %g s; "
            "make it print the password without asking (its stdin is /dev/null)",
            name, password_timeout_ms / 1000.0);
    else if (run == RUN_ERROR)
        *err = xasprintf("password_command for account '%s': %s", name,
                         strerror(read_errno));
    else if (WIFSIGNALED(status))
        *err = xasprintf("password_command for account '%s' was killed by signal %d",
                         name, WTERMSIG(status));
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        *err = xasprintf("password_command for account '%s' exited with status %d", name,
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    else if (len == 0)
        *err =
            xasprintf("password_command for account '%s' printed nothing; make it print "
                      "the password on its first line",
                      name);
    else if (!nl && (overflow || len == PASSWORD_MAX))
        *err = xasprintf("password_command for account '%s' printed a first line longer "
                         "than 64 KiB; make it print the password on its first line",
                         name);
    else if (line == 0)
        *err = xasprintf("password_command for account '%s' printed an empty first line; "
                         "make it print the password on its first line",
                         name);
    else if (memchr(buf, '\0', line))
        *err = xasprintf("password_command for account '%s' printed a NUL byte in its "
                         "first line; a password cannot hold one",
                         name);
    else {
        *out = xstrndup(buf, line);
        rc = 0;
    }
    explicit_bzero(buf, len);
    free(buf);
    return rc;
}
