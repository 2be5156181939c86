/* error: filling and naming sync errors. */
#include "sync/error.h"

#include <stdarg.h>
#include <stdio.h>

void
sync_error_set(struct sync_error *e, enum sync_code code, enum sync_scope scope,
               enum sync_retry retry, const char *fmt, ...)
{
    e->code = code;
    e->scope = scope;
    e->retry = retry;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

void
sync_error_clear(struct sync_error *e)
{
    e->code = SYNC_OK;
    e->scope = SYNC_SCOPE_ITEM;
    e->retry = SYNC_RETRY_NOW;
    e->msg[0] = '\0';
}

const char *
sync_code_str(enum sync_code c)
{
    switch (c) {
    case SYNC_OK: return "ok";
    case SYNC_ERR_CONNECT: return "cannot connect";
    case SYNC_ERR_TLS: return "TLS failed";
    case SYNC_ERR_AUTH: return "login failed";
    case SYNC_ERR_TIMEOUT: return "timed out";
    case SYNC_ERR_PROTOCOL: return "protocol error";
    case SYNC_ERR_SERVER: return "refused by the server";
    case SYNC_ERR_STORE: return "store error";
    case SYNC_ERR_CANCELLED: return "cancelled";
    }
    return "error";
}
