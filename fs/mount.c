/* mount: putting an account on a mount point: check the account, open the
 * store, start the FUSE session, daemonise, start the sync thread and the
 * control socket, serve until unmounted. */
#include "fs/mount.h"
#include "fs/cli.h"

#include "common/dynbuf.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
close_store(void *p)
{
    store_close(p);
}

/* FUSE options: ours first, the user's after. default_permissions lets the
 * kernel enforce the 0700/0600 modes, which matters if the user adds
 * allow_other. */
static void
build_args(struct fuse_args *args, const char *store_dir, const char *user_opts)
{
    fuse_opt_add_arg(args, "mailfs");
    /* The source shown by mount and df is the store: `mailfs sync MOUNTPOINT`
     * finds the control socket there, whatever the caller's environment. */
    struct dynbuf b;
    dynbuf_init(&b, 1 << 16);
    dynbuf_adds(&b, "-odefault_permissions,subtype=mailfs,fsname=mailfs:");
    for (const char *p = store_dir; *p; p++) {
        if (*p == ',' || *p == '\\')
            dynbuf_addc(&b, '\\');
        dynbuf_addc(&b, *p);
    }
    fuse_opt_add_arg(args, b.data);
    dynbuf_free(&b);
    char *o;
    if (user_opts && user_opts[0]) {
        o = xasprintf("-o%s", user_opts);
        fuse_opt_add_arg(args, o);
        free(o);
    }
}

int
cli_mount(const struct cli *cli, const char *mountpoint)
{
    const struct config_account *acct = cli->account;
    struct mount m;
    memset(&m, 0, sizeof m);
    m.store_dir = cli_store_dir(acct->name);
    m.account = xstrdup(acct->name);
    m.uid = getuid();
    m.gid = getgid();
    m.mount_time = util_now();
    m.mail_default = config_store_mode(acct->sync_mode);
    int rc = 1;
    int lock_fd = -1;
    char *err = NULL;
    struct cli_account acc = {0};
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    bool session_mounted = false, handlers = false, key_made = false;

    if (cli_open_account(cli, &acc) < 0)
        goto out;
    m.has_mail = acc.imap.url != NULL;
    bool had_store = store_exists(m.store_dir);
    if (!had_store && !cli->offline) {
        /* No store to serve from: the account must work now. */
        struct sync_error se;
        if (cli_check_account(&acc, true, &se) < 0) {
            fprintf(stderr, "mailfs: %s\n", se.msg);
            goto out;
        }
    }
    lock_fd = cli_lock_store(m.store_dir, &err);
    if (lock_fd < 0) {
        fprintf(stderr, "mailfs: %s\n", err);
        goto out;
    }
    struct sync_options so = {
        .store_dir = m.store_dir,
        .poll_seconds = acct->poll,
        .mail_default = m.mail_default,
        .on_change = mount_on_change,
        .on_change_ctx = &m,
    };
    cli_sync_options(&acc, &so);
    if (cli->offline) {
        /* Sticky: kept in the store before anything connects. */
        struct store *st0;
        if (store_open(m.store_dir, STORE_CREATE, &st0, &err) != STORE_OK ||
            store_meta_set(st0, "mode", "offline") != STORE_OK) {
            fprintf(stderr, "mailfs: %s\n", err ? err : store_errmsg(st0));
            store_close(st0);
            goto out;
        }
        store_close(st0);
    }
    if (sync_new(&so, &m.sync, &err) < 0 || sync_prepare_store(m.sync, &err) < 0) {
        fprintf(stderr, "mailfs: %s\n", err);
        goto out;
    }
    /* For `mailfs status` without the config. */
    struct store *st2;
    if (store_open(m.store_dir, 0, &st2, &err) == STORE_OK) {
        store_meta_set(st2, "sync_mode", m.mail_default == STORE_MODE_DEFAULT
                                             ? "default"
                                             : mount_mode_name(m.mail_default));
        store_close(st2);
    }
    /* Check that FUSE threads can open the store too (a damaged file is
     * reported here, not as EIO later). */
    struct store *probe;
    if (store_open(m.store_dir, 0, &probe, &err) != STORE_OK) {
        fprintf(stderr, "mailfs: %s\n", err);
        goto out;
    }
    store_close(probe);
    if (pthread_key_create(&m.store_key, close_store) != 0)
        goto out;
    key_made = true;
    pthread_mutex_init(&m.drafts_lock, NULL);

    build_args(&args, m.store_dir, cli->fuse_opts);
    m.se = fuse_session_new(&args, &mount_ops, sizeof mount_ops, &m);
    if (!m.se) {
        fprintf(stderr, "mailfs: bad FUSE options: %s\n", cli->fuse_opts ? cli->fuse_opts : "");
        goto out;
    }
    if (fuse_set_signal_handlers(m.se) != 0)
        goto out;
    handlers = true;
    if (fuse_session_mount(m.se, mountpoint) != 0) {
        fprintf(stderr, "mailfs: cannot mount on %s\n", mountpoint);
        goto out;
    }
    session_mounted = true;
    if (!cli->foreground) {
        char *logpath = xasprintf("%s/mailfs.log", m.store_dir);
        log_open(logpath, cli->log_level);
        free(logpath);
    }
    if (fuse_daemonize(cli->foreground) != 0)
        goto out;
    /* Threads start after the fork of fuse_daemonize. */
    if (sync_start(m.sync) != 0) {
        log_error("cannot start the sync thread");
        goto out;
    }
    if (control_start(&m, &err) < 0) {
        log_error("%s", err);
        goto out;
    }
    if (notify_start(&m) < 0) {
        log_error("cannot start the notifier thread");
        goto out;
    }
    if (write_start(&m) < 0) {
        log_error("cannot start the committer thread");
        goto out;
    }
    log_info("mounted %s on %s", acct->name, mountpoint);
    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(lc, 16);
    fuse_loop_cfg_set_idle_threads(lc, 4);
    int lr = fuse_session_loop_mt(m.se, lc);
    fuse_loop_cfg_destroy(lc);
    rc = lr == 0 ? 0 : 1;
    log_info("unmounted %s", mountpoint);
out:
    write_stop(&m);
    if (m.store_dir) {
        write_flush_all(&m);
        /* This thread's connection, if the flush opened one: closed now,
         * so the last close checkpoints the WAL (no thread exit will). */
        struct store *own = key_made ? pthread_getspecific(m.store_key) : NULL;
        if (own) {
            pthread_setspecific(m.store_key, NULL);
            store_close(own);
        }
    }
    if (m.se && atomic_load(&m.last_opened) > 0) {
        /* The next mount syncs this folder first. */
        struct store *st1;
        char *e1 = NULL;
        if (store_open(m.store_dir, 0, &st1, &e1) == STORE_OK) {
            char v[32];
            snprintf(v, sizeof v, "%lld", (long long)atomic_load(&m.last_opened));
            store_meta_set(st1, "last_opened", v);
            store_close(st1);
        }
        free(e1);
    }
    notify_stop();
    control_stop();
    if (m.sync) {
        sync_stop(m.sync);
        /* Notifications need the session: none after this point. */
    }
    if (session_mounted)
        fuse_session_unmount(m.se);
    if (handlers)
        fuse_remove_signal_handlers(m.se);
    if (m.se) {
        struct fuse_session *se = m.se;
        m.se = NULL;
        fuse_session_destroy(se);
    }
    sync_free(m.sync);
    fuse_opt_free_args(&args);
    if (lock_fd >= 0)
        close(lock_fd);
    cli_account_clear(&acc);
    free(err);
    free(m.dirty_dirs);
    free(m.store_dir);
    free(m.account);
    log_close();
    return rc;
}
