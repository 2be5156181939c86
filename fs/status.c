/* status: the report of `mailfs status`: mode, connection, every folder with
 * its sync mode, last sync, pending changes and state, and the conflicts
 * waiting in Conflicts/. Built from the store, plus the running engine's
 * live state when the account is mounted. */
#include "fs/mount.h"

#include "common/util.h"
#include "store/journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct status_ctx {
    enum store_mode mail_default;
    struct store *st;
    struct sync *sync;
    struct dynbuf *out;
    int64_t conflicts;
};

/* The folder's path from the root, into out. */
static void
folder_path(struct store *st, const struct store_folder *f, char *out, size_t size)
{
    char parts[16][NAMES_MAX + 1];
    int n = 0;
    snprintf(parts[n++], sizeof parts[0], "%s", f->name);
    int64_t p = f->parent_id;
    while (p && n < 16) {
        struct store_folder pf;
        if (store_folder_get(st, p, &pf) != STORE_OK)
            break;
        snprintf(parts[n++], sizeof parts[0], "%s", pf.name);
        p = pf.parent_id;
        store_folder_clear(&pf);
    }
    out[0] = '\0';
    for (int i = n - 1; i >= 0; i--) {
        strncat(out, parts[i], size - strlen(out) - 1);
        if (i)
            strncat(out, "/", size - strlen(out) - 1);
    }
}

static int
one_folder(void *ctx, const struct store_folder *f)
{
    struct status_ctx *sc = ctx;
    char path[1024];
    folder_path(sc->st, f, path, sizeof path);
    if (f->kind == STORE_KIND_CONFLICTS) {
        store_item_count(sc->st, f->id, false, &sc->conflicts);
        return 0;
    }
    int64_t pending = 0;
    journal_count(sc->st, f->id, &pending);
    char last[32] = "never";
    if (f->last_sync)
        util_iso8601(f->last_sync, last);
    char *state = sc->sync ? sync_folder_state(sc->sync, f->id) : NULL;
    if (!state || ((strcmp(state, "waiting") == 0 || strcmp(state, "idle") == 0) &&
                   f->last_sync)) {
        free(state);
        state = f->error ? xasprintf("error: %s", f->error)
                         : xstrdup(f->last_sync ? "idle" : "waiting");
    }
    if (!f->selectable) {
        free(state);
        state = xstrdup("-");
    }
    int64_t items = 0;
    store_item_count(sc->st, f->id, false, &items);
    dynbuf_printf(sc->out, "  %-32s %-8s %7lld items  last sync %-20s pending %-4lld %s\n",
                  path,
                  f->selectable ? mount_mode_name(store_folder_mode(f, sc->mail_default)) : "-",
                  (long long)items, last,
                  (long long)pending, state);
    free(state);
    return 0;
}

char *
status_text(struct store *st, struct sync *sync, const char *account)
{
    struct dynbuf out;
    dynbuf_init(&out, 1 << 24);
    char *mode = NULL;
    if (sync)
        mode = xstrdup(sync_is_offline(sync) ? "offline" : "online");
    else if (store_meta_get(st, "mode", &mode) != STORE_OK)
        mode = xstrdup("online");
    char *conn = sync ? sync_connection_state(sync) : xstrdup("not mounted");
    int64_t pending = 0;
    journal_count(st, 0, &pending);
    dynbuf_printf(&out, "account: %s\nmode: %s\nconnection: %s\npending changes: %lld\n"
                        "folders:\n",
                  account, mode, conn, (long long)pending);
    struct status_ctx sc = {.st = st, .sync = sync, .out = &out,
                            .mail_default = STORE_MODE_DEFAULT};
    char *dm = NULL;
    if (store_meta_get(st, "sync_mode", &dm) == STORE_OK)
        sc.mail_default = strcmp(dm, "full") == 0      ? STORE_MODE_FULL
                          : strcmp(dm, "off") == 0     ? STORE_MODE_OFF
                          : strcmp(dm, "headers") == 0 ? STORE_MODE_HEADERS
                                                       : STORE_MODE_DEFAULT;
    free(dm);
    store_folder_each(st, 0, one_folder, &sc);
    dynbuf_printf(&out, "conflicts: %lld\n", (long long)sc.conflicts);
    free(mode);
    free(conn);
    return dynbuf_take(&out);
}
