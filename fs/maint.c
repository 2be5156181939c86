/* maint: `mailfs reindex ACCOUNT` (check and repair the store) and `mailfs
 * reset ACCOUNT` (drop the local copy and sync it again from the server,
 * keeping unsent changes in Conflicts/). */
#include "fs/cli.h"
#include "fs/mount.h"

#include "common/util.h"
#include "store/maintain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
print_line(void *ctx, const char *line)
{
    fprintf(ctx, "%s\n", line);
    fflush(ctx);
}

/* An account name names a directory of the data home: one component. */
static bool
account_ok(const char *a)
{
    return a[0] && !strchr(a, '/') && strcmp(a, ".") != 0 && strcmp(a, "..") != 0;
}

/* Undo the octal escapes of /proc/self/mountinfo (\040 for a space). */
static void
unescape(char *s)
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

/* Where the store is mounted (owned), or NULL: a mailfs mount's source is
 * "mailfs:STORE_DIR" (mount.c). */
static char *
mount_point_of(const char *store_dir)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return NULL;
    char *line = NULL, *found = NULL;
    size_t cap = 0;
    while (!found && getline(&line, &cap, f) > 0) {
        /* id parent major:minor root mountpoint options ... - fstype source super */
        char *fields[5] = {0};
        char *save = NULL, *tok = strtok_r(line, " \n", &save);
        for (int i = 0; tok && i < 5; i++, tok = strtok_r(NULL, " \n", &save))
            fields[i] = tok;
        while (tok && strcmp(tok, "-") != 0)
            tok = strtok_r(NULL, " \n", &save);
        char *fstype = tok ? strtok_r(NULL, " \n", &save) : NULL;
        char *source = fstype ? strtok_r(NULL, " \n", &save) : NULL;
        if (!fields[4] || !source || strcmp(fstype, "fuse.mailfs") != 0)
            continue;
        unescape(source);
        if (strncmp(source, "mailfs:", 7) == 0 && strcmp(source + 7, store_dir) == 0) {
            unescape(fields[4]);
            found = xstrdup(fields[4]);
        }
    }
    free(line);
    fclose(f);
    return found;
}

/* The store's lock, or -1 after saying why it cannot be had. */
static int
lock_or_explain(const char *account, const char *store_dir, const char *cmd)
{
    char *err = NULL;
    int fd = cli_lock_store(store_dir, &err);
    if (fd >= 0)
        return fd;
    char *mnt = mount_point_of(store_dir);
    if (mnt)
        fprintf(stderr, "mailfs: %s is mounted at %s; unmount it first (fusermount3 -u %s), "
                        "or run mailfs %s while it is not mounted\n",
                account, mnt, mnt, cmd);
    else
        fprintf(stderr, "mailfs: %s\n", err);
    free(mnt);
    free(err);
    return -1;
}

int
cli_reindex(int argc, char **argv)
{
    if (argc != 1 || !account_ok(argv[0])) {
        fprintf(stderr, "usage: mailfs reindex ACCOUNT\n");
        return 2;
    }
    const char *account = argv[0];
    char *store_dir = cli_store_dir(account);
    int rc = 1;
    int lock = -1;
    if (!store_exists(store_dir)) {
        fprintf(stderr, "mailfs: %s: no store for account %s: nothing to check\n", store_dir,
                account);
        goto out;
    }
    lock = lock_or_explain(account, store_dir, "reindex");
    if (lock < 0)
        goto out;
    printf("checking %s\n", store_dir);
    fflush(stdout);
    struct store_reindex_result res;
    char *err = NULL;
    enum store_status s = store_reindex(store_dir, print_line, stdout, &res, &err);
    if (s != STORE_OK) {
        fprintf(stderr, "mailfs: %s\n", err ? err : store_status_str(s));
        free(err);
        goto out;
    }
    printf("reindex: %u problem%s found, %u repaired", res.found, res.found == 1 ? "" : "s",
           res.repaired);
    if (res.lost)
        printf(", %u item%s whose content is lost (kept empty, marked error)", res.lost,
               res.lost == 1 ? "" : "s");
    if (res.remaining)
        printf("; %u problem%s remain: the store is still inconsistent\n", res.remaining,
               res.remaining == 1 ? "" : "s");
    else
        printf("; the store is consistent\n");
    rc = res.remaining ? 1 : 0;
out:
    if (lock >= 0)
        close(lock);
    free(store_dir);
    return rc;
}

/* Not mounted: reset the store here. */
static int
reset_here(const char *account, const char *store_dir)
{
    int lock = lock_or_explain(account, store_dir, "reset");
    if (lock < 0)
        return 1;
    int rc = 1;
    char *err = NULL;
    struct store *st = NULL;
    enum store_status s = store_open(store_dir, 0, &st, &err);
    if (s == STORE_CORRUPT) {
        /* Nothing can be read from it, so nothing can be sorted out: it is
         * kept whole, aside, and the next mount starts afresh. */
        char *where = NULL, *err2 = NULL;
        if (store_move_aside(store_dir, &where, &err2) != STORE_OK) {
            fprintf(stderr, "mailfs: %s\n", err2);
        } else {
            printf("%s/store.db cannot be read: the damaged store was moved to %s (nothing in "
                   "it is deleted; changes not yet on the server, if any, are in its content/ "
                   "directory)\n",
                   store_dir, where);
            printf("reset: the next mount of %s syncs everything again from the server\n",
                   account);
            rc = 0;
        }
        free(where);
        free(err2);
        goto out;
    }
    if (s != STORE_OK) {
        fprintf(stderr, "mailfs: %s\n", err);
        goto out;
    }
    store_set_recording(st, false);
    /* We own the store: finish what a crash interrupted first, so the
     * newest bytes of every file are the ones kept. */
    if (store_recover(st) != STORE_OK) {
        fprintf(stderr, "mailfs: %s: %s\n", store_dir, store_errmsg(st));
        goto out;
    }
    struct store_reset_result res;
    s = store_reset(st, false, print_line, stdout, &res);
    if (s != STORE_OK) {
        fprintf(stderr, "mailfs: reset of %s failed, nothing changed: %s\n", account,
                store_errmsg(st));
        goto out;
    }
    printf("reset: %u change%s kept in Conflicts/, %u folder%s and %u item%s dropped; the "
           "next mount of %s syncs everything again from the server\n",
           res.saved, res.saved == 1 ? "" : "s", res.dropped_folders,
           res.dropped_folders == 1 ? "" : "s", res.dropped_items,
           res.dropped_items == 1 ? "" : "s", account);
    rc = 0;
out:
    store_close(st);
    free(err);
    close(lock);
    return rc;
}

int
cli_reset(int argc, char **argv)
{
    if (argc != 1 || !account_ok(argv[0])) {
        fprintf(stderr, "usage: mailfs reset ACCOUNT\n");
        return 2;
    }
    const char *account = argv[0];
    char *store_dir = cli_store_dir(account);
    int rc = 1;
    if (!store_exists(store_dir)) {
        fprintf(stderr, "mailfs: %s: no store for account %s: nothing to reset\n", store_dir,
                account);
        free(store_dir);
        return 1;
    }
    char *reply = NULL;
    int r = control_request(store_dir, "reset", &reply);
    if (r == 0) {
        /* The mount did it and told us what. */
        fputs(reply, stdout);
        rc = 0;
    } else if (r == 1) {
        fprintf(stderr, "mailfs: reset of %s failed: %s\n", account, reply);
    } else {
        rc = reset_here(account, store_dir);
    }
    free(reply);
    free(store_dir);
    return rc;
}
