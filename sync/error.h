/* error: what a sync failure is, how far it reaches, and when to retry.
 * Backoff and status reporting read scope and retry, never the message. */
#ifndef MAILFS_SYNC_ERROR_H
#define MAILFS_SYNC_ERROR_H

enum sync_code {
    SYNC_OK = 0,
    SYNC_ERR_CONNECT,   /* server unreachable, connection lost */
    SYNC_ERR_TLS,       /* certificate not verified, TLS failed, STARTTLS missing */
    SYNC_ERR_AUTH,      /* login refused */
    SYNC_ERR_TIMEOUT,   /* the server stopped answering */
    SYNC_ERR_PROTOCOL,  /* the server said something we cannot parse */
    SYNC_ERR_SERVER,    /* the server refused a command (NO/BAD, 4xx/5xx) */
    SYNC_ERR_STORE,     /* the local store failed */
    SYNC_ERR_CANCELLED, /* we are shutting down or going offline */
};

enum sync_scope {
    SYNC_SCOPE_ITEM,    /* one message or item; others go on */
    SYNC_SCOPE_FOLDER,  /* one folder; other folders go on */
    SYNC_SCOPE_ACCOUNT, /* the connection: everything waits for a reconnect */
};

enum sync_retry {
    SYNC_RETRY_NOW,   /* try again at once (e.g. after reconnecting) */
    SYNC_RETRY_LATER, /* with backoff */
    SYNC_RETRY_NEVER, /* until something changes (config, user action) */
};

struct sync_error {
    enum sync_code code;
    enum sync_scope scope;
    enum sync_retry retry;
    char msg[512]; /* for people: logs and user.sync.state; never a password */
};

void sync_error_set(struct sync_error *e, enum sync_code code, enum sync_scope scope,
                    enum sync_retry retry, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void sync_error_clear(struct sync_error *e);
const char *sync_code_str(enum sync_code c);

#endif
