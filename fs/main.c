/* main: the mailfs command line: mount, and the subcommands that work on an
 * account or a mount point. */
#include "fs/cli.h"
#include "fs/mount.h"

#include "common/crash.h"
#include "common/log.h"
#include "common/util.h"
#include "sync/dav.h"
#include "sync/dav_xml.h"
#include "sync/sync.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: mailfs [--config FILE] ACCOUNT MOUNTPOINT [-f] [-o FUSE_OPTIONS]\n"
    "       mailfs [--config FILE] sync ACCOUNT|MOUNTPOINT [FOLDER]\n"
    "       mailfs online|offline|status ACCOUNT|MOUNTPOINT\n"
    "       mailfs reindex|reset ACCOUNT\n"
    "       mailfs --help | --version\n"
    "\n"
    "Mounts a groupware account -- mail (IMAP), calendars, tasks and notes\n"
    "(CalDAV), contacts (CardDAV) -- as a directory tree backed by a local store.\n"
    "  -f              stay in the foreground, log to stderr\n"
    "  -o OPTIONS      FUSE mount options (comma-separated); -o offline mounts\n"
    "                  without any network traffic (sticky: see mailfs online)\n"
    "  --config FILE   the account file (default $XDG_CONFIG_HOME/mailfs/config,\n"
    "                  else ~/.config/mailfs/config)\n"
    "  sync            sync now and wait until done: through the running mount,\n"
    "                  or once into the store when the account is not mounted\n"
    "  online, offline set the account online or offline (it lasts across mounts)\n"
    "  status          mode, connection, folders, pending changes, conflicts\n"
    "  reindex         check the local store and repair it (not while mounted)\n"
    "  reset           drop the local copy and sync it again from the server;\n"
    "                  changes not yet on the server are kept in Conflicts/\n"
    "Unmount with: fusermount3 -u MOUNTPOINT\n"
    "\n"
    "The config file has one section per account:\n"
    "  [account work]\n"
    "  imap = imaps://mail.example.com\n"
    "  user = alice@example.com\n"
    "  caldav = https://dav.example.com/     ; optional, as is imap\n"
    "  carddav = https://dav.example.com/\n"
    "  password_command = pass show mail/work\n"
    "  ; cafile = /etc/ssl/private-ca.pem   tls = none   poll = 60\n"
    "  ; sync_mode = headers   (default mode of mail folders: full, headers, off)\n"
    "The environment variable MAILFS_LOG=debug|info|warning|error sets the log level.\n";

static const char *const subcommands[] = {"sync", "online", "offline", "status", "reindex",
                                          "reset"};

char *
cli_store_dir(const char *account)
{
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg && xdg[0] == '/')
        return xasprintf("%s/mailfs/%s", xdg, account);
    const char *home = getenv("HOME");
    return xasprintf("%s/.local/share/mailfs/%s", home && home[0] ? home : "/", account);
}

static void
http_from_account(const struct config_account *a, const char *url, const char *password,
                  struct http_config *h)
{
    memset(h, 0, sizeof *h);
    h->base_url = url;
    h->user = a->user;
    h->password = password;
    h->cafile = a->cafile;
    h->tls_none = a->tls == CONFIG_TLS_NONE;
    h->connect_timeout_ms = 15000;
    h->io_timeout_ms = 60000;
}

int
cli_open_account(const struct cli *cli, struct cli_account *acc)
{
    const struct config_account *a = cli->account;
    memset(acc, 0, sizeof *acc);
    char *err = NULL;
    if (config_password(a, &acc->password, &err) < 0) {
        fprintf(stderr, "mailfs: %s\n", err);
        free(err);
        return -1;
    }
    if (a->imap) {
        acc->imap.url = a->imap;
        acc->imap.user = a->user;
        acc->imap.password = acc->password;
        acc->imap.cafile = a->cafile;
        acc->imap.tls_none = a->tls == CONFIG_TLS_NONE;
        acc->imap.connect_timeout_ms = 15000;
        acc->imap.io_timeout_ms = 60000;
    }
    if (a->caldav)
        http_from_account(a, a->caldav, acc->password, &acc->caldav);
    if (a->carddav)
        http_from_account(a, a->carddav, acc->password, &acc->carddav);
    return 0;
}

void
cli_account_clear(struct cli_account *acc)
{
    if (acc->password) {
        explicit_bzero(acc->password, strlen(acc->password));
        free(acc->password);
    }
    memset(acc, 0, sizeof *acc);
}

void
cli_sync_options(const struct cli_account *acc, struct sync_options *so)
{
    so->imap = acc->imap.url ? &acc->imap : NULL;
    so->caldav = acc->caldav.base_url ? &acc->caldav : NULL;
    so->carddav = acc->carddav.base_url ? &acc->carddav : NULL;
}

int
cli_check_account(const struct cli_account *acc, bool dav, struct sync_error *err)
{
    if (acc->imap.url) {
        struct imap_conn *c;
        if (imap_connect(&acc->imap, &c, err) < 0)
            return -1;
        imap_close(c);
    }
    const struct http_config *svc[] = {&acc->caldav, &acc->carddav};
    for (int k = 0; dav && k < 2; k++) {
        if (!svc[k]->base_url)
            continue;
        struct dav_conn *c;
        struct dav_collections cols = {0};
        if (dav_open(svc[k], k ? DAV_KIND_CARDDAV : DAV_KIND_CALDAV, &c, err) < 0)
            return -1;
        int r = dav_discover(c, &cols, err);
        dav_collections_free(&cols);
        dav_close(c);
        if (r < 0)
            return -1;
    }
    return 0;
}

int
cli_lock_store(const char *store_dir, char **err)
{
    int r = util_mkdirs(store_dir, 0700);
    if (r < 0) {
        *err = xasprintf("%s: cannot create the store directory: %s", store_dir,
                         strerror(-r));
        return -1;
    }
    char *path = xasprintf("%s/lock", store_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        *err = xasprintf("the account's store %s is in use by another mailfs (mounted "
                         "already?)",
                         store_dir);
        free(path);
        close(fd);
        return -1;
    }
    free(path);
    return fd;
}

static int
load_account(struct cli *cli, const char *name)
{
    char *deflt = NULL;
    const char *path = cli->config_path;
    if (!path) {
        deflt = config_default_path();
        if (!deflt) {
            fprintf(stderr, "mailfs: neither XDG_CONFIG_HOME nor HOME is set; use "
                            "--config FILE\n");
            return -1;
        }
        path = deflt;
    }
    char *err = NULL;
    int r = config_load(path, name, &cli->account, &err);
    if (r < 0) {
        fprintf(stderr, "mailfs: %s\n", err);
        free(err);
    }
    free(deflt);
    return r;
}

/* Undo the octal escapes of /proc/self/mountinfo (\040 for a space). */
static void
unescape_mountinfo(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* If path is a mailfs mount point, the store directory of the account
 * mounted there (owned): the mount's source is "mailfs:STORE_DIR". */
static char *
mounted_store(const char *path)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return NULL;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return NULL;
    char *line = NULL, *found = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        /* id parent major:minor root mountpoint options ... - fstype source super */
        char *fields[6] = {0};
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        for (int i = 0; tok && i < 6; i++, tok = strtok_r(NULL, " ", &save))
            fields[i] = tok;
        if (!fields[4])
            continue;
        while (tok && strcmp(tok, "-") != 0)
            tok = strtok_r(NULL, " ", &save);
        char *fstype = tok ? strtok_r(NULL, " ", &save) : NULL;
        char *source = fstype ? strtok_r(NULL, " ", &save) : NULL;
        if (!source || strcmp(fstype, "fuse.mailfs") != 0)
            continue;
        unescape_mountinfo(fields[4]);
        unescape_mountinfo(source);
        if (strcmp(fields[4], real) == 0 && strncmp(source, "mailfs:", 7) == 0) {
            free(found);
            found = xstrdup(source + 7);
        }
    }
    free(line);
    fclose(f);
    return found;
}

static int
cmd_sync(struct cli *cli, int argc, char **argv)
{
    if (argc < 1 || argc > 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *target = argv[0];
    const char *folder = argc == 2 ? argv[1] : NULL;
    char *store_dir = mounted_store(target);
    bool is_mount = store_dir != NULL;
    char *account = is_mount ? xstrdup(strrchr(store_dir, '/') + 1) : xstrdup(target);
    if (!is_mount)
        store_dir = cli_store_dir(account);
    char *request = folder ? xasprintf("sync %s", folder) : xstrdup("sync");
    char *reply = NULL;
    int r = control_request(store_dir, request, &reply);
    free(request);
    int rc;
    if (r == 0) {
        rc = 0;
    } else if (r == 1) {
        fprintf(stderr, "mailfs: sync of %s failed: %s\n", account, reply);
        rc = 1;
    } else if (is_mount) {
        fprintf(stderr, "mailfs: %s is mounted but does not answer: %s\n", target, reply);
        rc = 1;
    } else {
        /* Not mounted: sync once into the store, as mbsync would. */
        free(reply);
        reply = NULL;
        rc = 1;
        struct cli_account acc = {0};
        char *err = NULL;
        int lock_fd = -1;
        struct sync *s = NULL;
        if (load_account(cli, account) < 0 || cli_open_account(cli, &acc) < 0)
            goto done;
        if (!store_exists(store_dir)) {
            struct sync_error se;
            /* The one-shot sync discovers the DAV services itself and
             * reports their failures: checking them first would do it twice. */
            if (cli_check_account(&acc, false, &se) < 0) {
                fprintf(stderr, "mailfs: %s\n", se.msg);
                goto done;
            }
        }
        lock_fd = cli_lock_store(store_dir, &err);
        if (lock_fd < 0) {
            fprintf(stderr, "mailfs: %s\n", err);
            goto done;
        }
        struct sync_options so = {
            .store_dir = store_dir,
            .poll_seconds = cli->account->poll,
            .mail_default = config_store_mode(cli->account->sync_mode),
        };
        cli_sync_options(&acc, &so);
        if (sync_new(&so, &s, &err) < 0 || sync_prepare_store(s, &err) < 0) {
            fprintf(stderr, "mailfs: %s\n", err);
            goto done;
        }
        struct sync_error se;
        if (sync_once(s, folder, &se) < 0) {
            fprintf(stderr, "mailfs: sync of %s failed: %s\n", account, se.msg);
            goto done;
        }
        rc = 0;
    done:
        sync_free(s);
        if (lock_fd >= 0)
            close(lock_fd);
        cli_account_clear(&acc);
        free(err);
    }
    free(reply);
    free(store_dir);
    free(account);
    return rc;
}

/* The store directory and account of ACCOUNT|MOUNTPOINT; *mounted when it
 * is a mount point. Both strings owned by the caller. */
static void
target_store(const char *target, char **store_dir, char **account, bool *mounted)
{
    *store_dir = mounted_store(target);
    *mounted = *store_dir != NULL;
    if (*mounted) {
        *account = xstrdup(strrchr(*store_dir, '/') + 1);
    } else {
        *account = xstrdup(target);
        *store_dir = cli_store_dir(*account);
    }
}

static int
cmd_mode(int argc, char **argv, bool offline)
{
    if (argc != 1) {
        fputs(usage, stderr);
        return 2;
    }
    char *store_dir, *account, *reply = NULL, *err = NULL;
    bool mounted;
    target_store(argv[0], &store_dir, &account, &mounted);
    int rc = 1;
    int r = control_request(store_dir, offline ? "offline" : "online", &reply);
    if (r == 0) {
        rc = 0;
    } else if (r == 1 || mounted) {
        fprintf(stderr, "mailfs: %s: %s\n", argv[0], reply);
    } else {
        /* Not mounted: the setting waits in the store for the next mount. */
        int lock = cli_lock_store(store_dir, &err);
        struct store *st = NULL;
        if (lock < 0) {
            fprintf(stderr, "mailfs: %s\n", err);
        } else if (store_open(store_dir, STORE_CREATE, &st, &err) != STORE_OK) {
            fprintf(stderr, "mailfs: %s\n", err);
        } else if (store_meta_set(st, "mode", offline ? "offline" : "online") != STORE_OK) {
            fprintf(stderr, "mailfs: %s: %s\n", store_dir, store_errmsg(st));
        } else {
            rc = 0;
        }
        store_close(st);
        if (lock >= 0)
            close(lock);
    }
    free(reply);
    free(err);
    free(store_dir);
    free(account);
    return rc;
}

static int
cmd_status(int argc, char **argv)
{
    if (argc != 1) {
        fputs(usage, stderr);
        return 2;
    }
    char *store_dir, *account, *reply = NULL, *err = NULL;
    bool mounted;
    target_store(argv[0], &store_dir, &account, &mounted);
    int rc = 1;
    int r = control_request(store_dir, "status", &reply);
    if (r == 0) {
        fputs(reply, stdout);
        rc = 0;
    } else if (r == 1 || mounted) {
        fprintf(stderr, "mailfs: %s: %s\n", argv[0], reply);
    } else {
        struct store *st = NULL;
        if (store_open(store_dir, STORE_READONLY, &st, &err) != STORE_OK) {
            fprintf(stderr, "mailfs: %s\n", err);
        } else {
            char *text = status_text(st, NULL, account);
            fputs(text, stdout);
            free(text);
            rc = 0;
        }
        store_close(st);
    }
    free(reply);
    free(err);
    free(store_dir);
    free(account);
    return rc;
}

static enum log_level
env_log_level(void)
{
    const char *v = getenv("MAILFS_LOG");
    if (!v)
        return LOG_LVL_INFO;
    if (strcmp(v, "debug") == 0)
        return LOG_LVL_DEBUG;
    if (strcmp(v, "warning") == 0 || strcmp(v, "warn") == 0)
        return LOG_LVL_WARN;
    if (strcmp(v, "error") == 0)
        return LOG_LVL_ERROR;
    return LOG_LVL_INFO;
}

static void
add_fuse_opt1(struct cli *cli, const char *o)
{
    if (!cli->fuse_opts) {
        cli->fuse_opts = xstrdup(o);
    } else {
        char *n = xasprintf("%s,%s", cli->fuse_opts, o);
        free(cli->fuse_opts);
        cli->fuse_opts = n;
    }
}

/* Options of ours among -o ones: "offline" sets the account offline. */
static void
add_fuse_opt(struct cli *cli, const char *o)
{
    char *copy = xstrdup(o), *save = NULL;
    for (char *opt = strtok_r(copy, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
        if (strcmp(opt, "offline") == 0)
            cli->offline = true;
        else
            add_fuse_opt1(cli, opt);
    }
    free(copy);
}


int
main(int argc, char **argv)
{
    struct cli cli = {.log_level = env_log_level()};
    char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            free(pos);
            return 0;
        }
        if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            printf("mailfs %s\n", MAILFS_VERSION);
            free(pos);
            return 0;
        }
        if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            if (++i >= argc) {
                fprintf(stderr, "mailfs: --config needs a file\n");
                free(pos);
                return 2;
            }
            cli.config_path = argv[i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            cli.config_path = a + 9;
        } else if (strcmp(a, "-f") == 0) {
            cli.foreground = true;
        } else if (strcmp(a, "-o") == 0) {
            if (++i >= argc) {
                fprintf(stderr, "mailfs: -o needs options\n");
                free(pos);
                return 2;
            }
            add_fuse_opt(&cli, argv[i]);
        } else if (strncmp(a, "-o", 2) == 0) {
            add_fuse_opt(&cli, a + 2);
        } else if (strcmp(a, "--") == 0) {
            while (++i < argc)
                pos[npos++] = argv[i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mailfs: unknown option %s\n%s", a, usage);
            free(pos);
            return 2;
        } else {
            pos[npos++] = argv[i];
        }
    }
    log_open(NULL, cli.log_level);
    crash_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* libxml2's first initialisation is not thread-safe. */
    dav_xml_init();
    int rc;
    bool sub = false;
    for (size_t k = 0; npos > 0 && k < ARRAY_SIZE(subcommands); k++)
        sub = sub || strcmp(pos[0], subcommands[k]) == 0;
    if (sub && strcmp(pos[0], "sync") == 0) {
        rc = cmd_sync(&cli, npos - 1, pos + 1);
    } else if (sub && (strcmp(pos[0], "online") == 0 || strcmp(pos[0], "offline") == 0)) {
        rc = cmd_mode(npos - 1, pos + 1, strcmp(pos[0], "offline") == 0);
    } else if (sub && strcmp(pos[0], "status") == 0) {
        rc = cmd_status(npos - 1, pos + 1);
    } else if (sub && strcmp(pos[0], "reindex") == 0) {
        rc = cli_reindex(npos - 1, pos + 1);
    } else if (sub && strcmp(pos[0], "reset") == 0) {
        rc = cli_reset(npos - 1, pos + 1);
    } else if (npos == 2) {
        rc = load_account(&cli, pos[0]) < 0 ? 1 : cli_mount(&cli, pos[1]);
    } else {
        fputs(usage, stderr);
        rc = 2;
    }
    config_account_free(cli.account);
    free(cli.fuse_opts);
    free(pos);
    curl_global_cleanup();
    return rc;
}
