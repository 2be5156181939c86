/* config: the account file of DESIGN section 7 ($XDG_CONFIG_HOME/mailfs/config,
 * --config FILE), one INI section per account, and password_command.
 *
 * Every error message names the file, the line and the fix. A password is
 * never stored in the config, never logged, never in argv. */
#ifndef MAILFS_CONFIG_H
#define MAILFS_CONFIG_H

#include <stdbool.h>

enum config_tls {
    CONFIG_TLS_REQUIRED, /* default: imaps:// TLS, imap:// STARTTLS required */
    CONFIG_TLS_NONE,     /* tls = none: plain imap:// (same machine only) */
};

/* sync_mode: the mode of every mail folder that has none set with
 * user.sync.mode. Unset, DESIGN section 4's defaults apply (Inbox full,
 * other mail folders headers). */
enum config_sync_mode {
    CONFIG_SYNC_DEFAULT = 0, /* unset: Inbox full, other mail folders headers */
    CONFIG_SYNC_HEADERS,     /* set: every mail folder, Inbox too */
    CONFIG_SYNC_FULL,
    CONFIG_SYNC_OFF,
};

struct config_account {
    char *name;             /* [account NAME]; owned */
    char *file;             /* the config file it came from; owned */
    int line;               /* line of the [account] header */
    char *imap;             /* "imaps://host[:port]" or "imap://..."; NULL if unset */
    char *caldav;           /* http(s) URL or NULL */
    char *carddav;          /* http(s) URL or NULL */
    char *user;             /* owned */
    char *password_command; /* run by /bin/sh -c; owned */
    char *cafile;           /* absolute path or NULL */
    enum config_tls tls;
    int poll;               /* seconds between polls, default 60, 1..86400 */
    enum config_sync_mode sync_mode;
};

/* The default config path ($XDG_CONFIG_HOME/mailfs/config or
 * $HOME/.config/mailfs/config), owned by the caller; NULL if neither
 * variable is set. */
char *config_default_path(void);

/* Read `path` and return the account called `account`. On failure returns -1
 * and sets *err to a message (owned by the caller) such as
 * "/home/a/.config/mailfs/config:7: unknown key 'imaps'; the keys are imap, ...".
 * Checks: the file exists and is readable; syntax; known keys; no duplicate
 * key or account; URL schemes (imap/imaps, http/https) and hosts; tls = none
 * only with imap://; poll a whole number in range; cafile readable; user and
 * password_command present when imap is set; the account exists (else the
 * message lists the accounts that do). */
int config_load(const char *path, const char *account, struct config_account **out,
                char **err);
void config_account_free(struct config_account *a);

/* Run the account's password_command with /bin/sh -c, stdin from /dev/null,
 * and return the first line of its output (without the newline) in *out
 * (owned by the caller; wipe and free it after use). Fails with a message in
 * *err when the command exits non-zero, prints nothing, or takes longer than
 * 60 s. The message never holds the command's output. */
int config_password(const struct config_account *a, char **out, char **err);

#endif
