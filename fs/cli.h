/* cli: the mailfs command: options, accounts and the subcommands. */
#ifndef MAILFS_CLI_H
#define MAILFS_CLI_H

#include <stdbool.h>

#include "common/log.h"
#include "fs/config.h"
#include "store/store.h"
#include "sync/http.h"
#include "sync/imap.h"
#include "sync/sync.h"

struct cli {
    const char *config_path;        /* borrowed from argv or owned default */
    struct config_account *account; /* owned; loaded for commands that need it */
    bool foreground;
    bool offline;                   /* -o offline: mount offline (sticky) */
    char *fuse_opts;                /* owned; joined -o options */
    enum log_level log_level;
};

/* $XDG_DATA_HOME/mailfs/NAME (or ~/.local/share/mailfs/NAME); owned. */
char *cli_store_dir(const char *account);
/* What the sync engine needs of an account: its services' settings
 * (strings borrowed from cli->account and `password`). */
struct cli_account {
    struct imap_config imap;    /* imap.url NULL: no mail */
    struct http_config caldav;  /* base_url NULL: no calendars */
    struct http_config carddav; /* base_url NULL: no contacts */
    char *password;             /* owned; wiped by cli_account_clear */
};

/* Run password_command and fill *acc from the account. 0 or -1 after
 * printing the reason. */
int cli_open_account(const struct cli *cli, struct cli_account *acc);
void cli_account_clear(struct cli_account *acc);
/* The engine's options for the account's services (the rest zero). */
void cli_sync_options(const struct cli_account *acc, struct sync_options *so);
/* Connect and log in once to IMAP and (dav) each DAV service. 0 or -1 with
 * *err. */
int cli_check_account(const struct cli_account *acc, bool dav, struct sync_error *err);
/* Take the store's lock (one process per store): an fd or -1 with *err. */
int cli_lock_store(const char *store_dir, char **err);

/* The store's mode for a config sync_mode. */
static inline enum store_mode
config_store_mode(enum config_sync_mode m)
{
    return m == CONFIG_SYNC_FULL      ? STORE_MODE_FULL
           : m == CONFIG_SYNC_HEADERS ? STORE_MODE_HEADERS
           : m == CONFIG_SYNC_OFF     ? STORE_MODE_OFF
                                      : STORE_MODE_DEFAULT;
}

/* mount.c */
int cli_mount(const struct cli *cli, const char *mountpoint);

/* maint.c: `mailfs reindex ACCOUNT` and `mailfs reset ACCOUNT` (argv holds
 * what follows the subcommand). Exit status: 0, 1 (failed, or the store is
 * still inconsistent), 2 (usage). */
int cli_reindex(int argc, char **argv);
int cli_reset(int argc, char **argv);

#endif
