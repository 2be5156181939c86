/* test_reindex: stores damaged in many ways (content files deleted or cut,
 * rows corrupted with SQL, bad journal rows, stray files, folder cycles, a
 * damaged, truncated or foreign database) and what reindex makes of them:
 * what it repairs, and that a second run finds nothing. Also reset: unsent
 * changes kept in Conflicts/, everything else dropped. */
#include "check.h"

#include "common/dynbuf.h"
#include "common/util.h"
#include "store/journal.h"
#include "store/maintain.h"
#include "store/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *top;  /* temporary directory, removed at teardown */
static char *dir;  /* the store: top/store */
static struct store *st;
static struct dynbuf said; /* report lines of the last run */

static void
setup(void)
{
    char tmpl[] = "/tmp/mailfs-reindex-XXXXXX";
    top = xstrdup(mkdtemp(tmpl));
    dir = xasprintf("%s/store", top);
    char *err = NULL;
    CHECK(store_open(dir, STORE_CREATE, &st, &err) == STORE_OK);
    free(err);
    dynbuf_init(&said, 1 << 24);
}

static void
teardown(void)
{
    store_close(st);
    st = NULL;
    char *cmd = xasprintf("rm -rf '%s'", top);
    (void)!system(cmd);
    free(cmd);
    free(dir);
    free(top);
    dynbuf_free(&said);
}

static void
reopen(void)
{
    store_close(st);
    char *err = NULL;
    st = NULL;
    CHECK(store_open(dir, 0, &st, &err) == STORE_OK);
    free(err);
}

/* Run SQL on the database directly (the damage). */
static void sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
sql(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *q = NULL;
    if (vasprintf(&q, fmt, ap) < 0)
        q = NULL;
    va_end(ap);
    char *path = xasprintf("%s/store.db", dir);
    sqlite3 *h;
    CHECK(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(h, q, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        printf("# %s: %s\n", q, msg ? msg : "?");
    CHECK(rc == SQLITE_OK);
    sqlite3_free(msg);
    sqlite3_close(h);
    free(path);
    free(q);
}

/* One integer from a query (-1 when there is no row). */
static int64_t sql_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int64_t
sql_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *q = NULL;
    if (vasprintf(&q, fmt, ap) < 0)
        q = NULL;
    va_end(ap);
    char *path = xasprintf("%s/store.db", dir);
    sqlite3 *h;
    sqlite3_stmt *s;
    int64_t v = -1;
    CHECK(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(h, q, -1, &s, NULL) == SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(h);
    free(path);
    free(q);
    return v;
}

/* One text from a query (owned; NULL when none). */
static char *sql_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
sql_text(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *q = NULL;
    if (vasprintf(&q, fmt, ap) < 0)
        q = NULL;
    va_end(ap);
    char *path = xasprintf("%s/store.db", dir);
    sqlite3 *h;
    sqlite3_stmt *s;
    char *v = NULL;
    CHECK(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(h, q, -1, &s, NULL) == SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
        v = xstrdup((const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(h);
    free(path);
    free(q);
    return v;
}

static void
say(void *ctx, const char *line)
{
    dynbuf_printf(&said, "%s\n", line);
    printf("#   %s\n", line);
}

static bool
said_has(const char *text)
{
    return said.data && strstr(said.data, text) != NULL;
}

/* Close our connection, reindex, and check that the store ends consistent. */
static struct store_reindex_result
reindex(void)
{
    store_close(st);
    st = NULL;
    dynbuf_reset(&said);
    struct store_reindex_result res;
    char *err = NULL;
    enum store_status r = store_reindex(dir, say, NULL, &res, &err);
    if (r != STORE_OK)
        printf("# reindex: %s\n", err ? err : "?");
    CHECK(r == STORE_OK);
    CHECK(res.remaining == 0);
    free(err);
    reopen();
    return res;
}

/* Reindex a second time: nothing to find. */
static void
clean_again(void)
{
    struct store_reindex_result res = reindex();
    CHECK(res.found == 0);
    CHECK(res.remaining == 0);
}

static int64_t
folder(int64_t parent, const char *name, const char *server)
{
    struct store_folder f;
    memset(&f, 0, sizeof f);
    f.parent_id = parent;
    f.kind = STORE_KIND_MAIL;
    snprintf(f.name, sizeof f.name, "%s", name);
    f.server_name = (char *)server;
    f.delimiter = '/';
    f.selectable = true;
    CHECK(store_folder_add(st, &f) == STORE_OK);
    f.server_name = NULL;
    f.uidvalidity = 7;
    f.last_sync = 1000;
    CHECK(store_folder_update_sync(st, &f) == STORE_OK);
    return f.id;
}

static int64_t
conflicts(void)
{
    struct store_folder f;
    memset(&f, 0, sizeof f);
    f.kind = STORE_KIND_CONFLICTS;
    snprintf(f.name, sizeof f.name, "Conflicts");
    f.selectable = true;
    CHECK(store_folder_add(st, &f) == STORE_OK);
    return f.id;
}

/* An item: from the server (uid) or made here (uid 0, state LOCAL). */
static int64_t
item(int64_t fid, uint32_t uid, const char *name, const char *content,
     enum store_item_state state)
{
    struct store_item_new n = {.folder_id = fid, .uid = uid, .modseq = 3, .date = 1700000000,
                               .wanted_name = name, .flags = "seen", .state = state,
                               .content = content, .size = strlen(content)};
    int64_t id = 0;
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_add(st, &n, &id, NULL) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    return id;
}

static int64_t
journal(enum journal_op op, int64_t item_id, int64_t folder_id, const char *src, uint32_t uid,
        const char *arg)
{
    struct journal_entry e = {.op = op, .item_id = item_id, .folder_id = folder_id,
                              .src = (char *)src, .uid = uid, .arg = (char *)arg};
    int64_t id = 0;
    CHECK(store_begin(st) == STORE_OK);
    CHECK(journal_add(st, &e, &id) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    return id;
}

/* A content file's path (suffix "" or ".p"); owned. */
static char *
cpath(int64_t id, const char *suffix)
{
    return xasprintf("%s/content/%02x/%lld%s", dir, (unsigned)(id & 0xff), (long long)id,
                     suffix);
}

static int64_t
fsize(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static void
write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, data, strlen(data)) == (ssize_t)strlen(data));
    close(fd);
}

static char *
read_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return xstrdup(buf);
}

/* ---- reindex ---- */

static void
test_clean_store(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    conflicts();
    item(inbox, 1, "a.eml", "Subject: a\r\n\r\na", STORE_ITEM_SYNCED);
    item(inbox, 2, "b.eml", "Subject: b\r\n\r\nbb", STORE_ITEM_PARTIAL);
    struct store_reindex_result res = reindex();
    CHECK(res.found == 0);
    CHECK(res.repaired == 0);
    CHECK(said.len == 0);
    teardown();
}

static void
test_missing_and_cut_content(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    int64_t gone = item(inbox, 1, "gone.eml", "Subject: gone\r\n\r\nbody", STORE_ITEM_SYNCED);
    int64_t cut = item(inbox, 2, "cut.eml", "Subject: cut\r\n\r\nlonger body", STORE_ITEM_SYNCED);
    int64_t part = item(inbox, 3, "part.eml", "Subject: p\r\n\r\n", STORE_ITEM_PARTIAL);
    sql("UPDATE items SET full_size = 5000 WHERE id = %lld", (long long)part);
    int64_t fine = item(inbox, 4, "fine.eml", "Subject: fine\r\n\r\nok", STORE_ITEM_SYNCED);
    /* a queued edit of the cut one: its content is gone with it */
    journal(JOURNAL_REPLACE, cut, inbox, "INBOX", 2, NULL);
    journal(JOURNAL_FLAGS, cut, inbox, "INBOX", 2, "seen flagged");
    char *p;
    CHECK(unlink(p = cpath(gone, "")) == 0);
    free(p);
    CHECK(truncate(p = cpath(cut, ""), 5) == 0);
    free(p);
    CHECK(unlink(p = cpath(part, ".p")) == 0);
    free(p);

    struct store_reindex_result res = reindex();
    CHECK(res.found == 3);
    CHECK(res.repaired == 3);
    CHECK(res.lost == 0);
    CHECK(said_has("Inbox/gone.eml: content file missing: it will be fetched again"));
    CHECK(said_has("Inbox/cut.eml: content file has 5 bytes where 27 were stored"));
    /* "fetch again": has_content 0, state PARTIAL, size 0, the whole size
     * kept, an empty partial file, and the folder synced again */
    int64_t ids[] = {gone, cut, part};
    int64_t whole[] = {(int64_t)strlen("Subject: gone\r\n\r\nbody"),
                       (int64_t)strlen("Subject: cut\r\n\r\nlonger body"), 5000};
    for (int i = 0; i < 3; i++) {
        CHECK(sql_int("SELECT has_content FROM items WHERE id = %lld", (long long)ids[i]) == 0);
        CHECK(sql_int("SELECT state FROM items WHERE id = %lld", (long long)ids[i]) ==
              STORE_ITEM_PARTIAL);
        CHECK(sql_int("SELECT size FROM items WHERE id = %lld", (long long)ids[i]) == 0);
        CHECK(sql_int("SELECT full_size FROM items WHERE id = %lld", (long long)ids[i]) ==
              whole[i]);
        CHECK(fsize(p = cpath(ids[i], ".p")) == 0);
        free(p);
        CHECK(fsize(p = cpath(ids[i], "")) == -1);
        free(p);
    }
    CHECK(sql_int("SELECT last_sync FROM folders WHERE id = %lld", (long long)inbox) == 0);
    /* the upload of lost bytes went; the flag change stays */
    CHECK(sql_int("SELECT count(*) FROM journal WHERE item_id = %lld AND op = 2",
                  (long long)cut) == 0);
    CHECK(sql_int("SELECT count(*) FROM journal WHERE item_id = %lld AND op = 5",
                  (long long)cut) == 1);
    CHECK(sql_int("SELECT has_content FROM items WHERE id = %lld", (long long)fine) == 1);
    clean_again();
    teardown();
}

static void
test_dav_item_fetched_again(void)
{
    setup();
    int64_t cal = folder(0, "Calendar", "/dav/cal/");
    sql("UPDATE folders SET kind = 2, sync_token = 'tok', ctag = 'c1' WHERE id = %lld",
        (long long)cal);
    int64_t ev = item(cal, 0, "x.ics", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", STORE_ITEM_SYNCED);
    sql("UPDATE items SET href = '/dav/cal/x.ics', etag = '\"e1\"' WHERE id = %lld",
        (long long)ev);
    char *p = cpath(ev, "");
    unlink(p);
    struct store_reindex_result res = reindex();
    CHECK(res.found == 1 && res.repaired == 1);
    CHECK(sql_int("SELECT has_content FROM items WHERE id = %lld", (long long)ev) == 0);
    CHECK(sql_int("SELECT state FROM items WHERE id = %lld", (long long)ev) == 0);
    CHECK(sql_int("SELECT etag IS NULL FROM items WHERE id = %lld", (long long)ev) == 1);
    CHECK(sql_int("SELECT sync_token IS NULL AND ctag IS NULL AND last_sync = 0 FROM folders "
                  "WHERE id = %lld",
                  (long long)cal) == 1);
    CHECK(fsize(p) == 0);
    free(p);
    clean_again();
    teardown();
}

static void
test_local_content_lost(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    int64_t mine = item(inbox, 0, "mine.eml", "Subject: mine\r\n\r\nwritten here",
                        STORE_ITEM_PENDING);
    journal(JOURNAL_APPEND, mine, inbox, NULL, 0, NULL);
    char *p = cpath(mine, "");
    CHECK(unlink(p) == 0);
    struct store_reindex_result res = reindex();
    CHECK(res.found == 1);
    CHECK(res.lost == 1);
    CHECK(said_has("Inbox/mine.eml: content file missing: its content is lost"));
    /* the row stays so the user sees it: empty, in error, nothing to upload */
    CHECK(sql_int("SELECT count(*) FROM items WHERE id = %lld", (long long)mine) == 1);
    CHECK(sql_int("SELECT state FROM items WHERE id = %lld", (long long)mine) ==
          STORE_ITEM_ERROR);
    CHECK(sql_int("SELECT size FROM items WHERE id = %lld", (long long)mine) == 0);
    CHECK(sql_int("SELECT has_content FROM items WHERE id = %lld", (long long)mine) == 0);
    char *e = sql_text("SELECT error FROM items WHERE id = %lld", (long long)mine);
    CHECK(e && strstr(e, "missing"));
    free(e);
    CHECK(sql_int("SELECT count(*) FROM journal") == 0);
    CHECK(fsize(p) == 0);
    free(p);
    clean_again();
    teardown();
}

static void
test_partial_upgraded_half_way(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    int64_t id = item(inbox, 5, "p.eml", "Subject: p\r\n\r\n", STORE_ITEM_PARTIAL);
    /* the whole message was put in place, the row never said so */
    char *p = cpath(id, ".p"), *w = cpath(id, "");
    unlink(p);
    write_file(w, "Subject: p\r\n\r\nthe whole body");
    sql("UPDATE items SET full_size = %lld WHERE id = %lld", (long long)fsize(w), (long long)id);
    struct store_reindex_result res = reindex();
    CHECK(res.found == 1 && res.repaired == 1);
    CHECK(said_has("recorded as whole"));
    CHECK(sql_int("SELECT state FROM items WHERE id = %lld", (long long)id) == 0);
    CHECK(sql_int("SELECT size FROM items WHERE id = %lld", (long long)id) == fsize(w));
    free(p);
    free(w);
    clean_again();

    /* the same with the part still there; and a stray whole file beside
     * another part, which readers would take for the message */
    int64_t id2 = item(inbox, 6, "q.eml", "Subject: q\r\n\r\n", STORE_ITEM_PARTIAL);
    int64_t id3 = item(inbox, 7, "r.eml", "Subject: r\r\n\r\n", STORE_ITEM_PARTIAL);
    w = cpath(id2, "");
    write_file(w, "Subject: q\r\n\r\nwhole");
    sql("UPDATE items SET full_size = %lld WHERE id = %lld", (long long)fsize(w), (long long)id2);
    sql("UPDATE items SET full_size = 5000 WHERE id = %lld", (long long)id3);
    free(w);
    w = cpath(id3, "");
    write_file(w, "junk");
    res = reindex();
    CHECK(res.found == 2 && res.repaired == 2);
    CHECK(fsize(w) == -1);
    free(w);
    p = cpath(id2, ".p");
    CHECK(fsize(p) == -1);
    free(p);
    p = cpath(id3, ".p");
    CHECK(fsize(p) == (int64_t)strlen("Subject: r\r\n\r\n"));
    free(p);
    CHECK(sql_int("SELECT state FROM items WHERE id = %lld", (long long)id2) == 0);
    CHECK(sql_int("SELECT state FROM items WHERE id = %lld", (long long)id3) == 1);
    clean_again();

    /* a part recorded as whole (a flag change sent for it marked it synced):
     * the part stays, the mark comes back */
    int64_t id4 = item(inbox, 8, "s.eml", "Subject: s\r\n\r\n", STORE_ITEM_PARTIAL);
    sql("UPDATE items SET state = 0, full_size = 9000 WHERE id = %lld", (long long)id4);
    res = reindex();
    CHECK(res.found == 1 && res.repaired == 1);
    CHECK(said_has("recorded as kept in part"));
    CHECK(sql_int("SELECT state FROM items WHERE id = %lld", (long long)id4) == 1);
    p = cpath(id4, ".p");
    CHECK(fsize(p) == (int64_t)strlen("Subject: s\r\n\r\n"));
    free(p);
    clean_again();
    teardown();
}

static void
test_staged_content_put_in_place(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    int64_t id = item(inbox, 0, "new.eml", "", STORE_ITEM_LOCAL);
    /* a commit of new content that a crash cut short: row says staged */
    char *d = xasprintf("%s/drafts/%lld", dir, (long long)id);
    write_file(d, "Subject: new\r\n\r\nstaged");
    sql("UPDATE items SET staged = 1, size = 22, state = 3 WHERE id = %lld", (long long)id);
    journal(JOURNAL_APPEND, id, inbox, NULL, 0, NULL);
    struct store_reindex_result res = reindex();
    /* Finished by the recovery that runs first, before the checks. */
    CHECK(res.found == 0 && res.remaining == 0);
    char *w = cpath(id, "");
    char *got = read_file(w);
    CHECK_STR(got, "Subject: new\r\n\r\nstaged");
    CHECK(fsize(d) == -1);
    CHECK(sql_int("SELECT staged FROM items WHERE id = %lld", (long long)id) == 0);
    CHECK(sql_int("SELECT count(*) FROM journal") == 1);
    free(got);
    free(w);
    free(d);
    clean_again();
    teardown();
}

static void
test_item_without_folder(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    conflicts();
    int64_t copy = item(inbox, 1, "copy.eml", "Subject: c\r\n\r\nc", STORE_ITEM_SYNCED);
    int64_t mine = item(inbox, 0, "mine.eml", "Subject: m\r\n\r\nmine", STORE_ITEM_PENDING);
    journal(JOURNAL_APPEND, mine, inbox, NULL, 0, NULL);
    store_close(st);
    st = NULL;
    sql("UPDATE items SET folder_id = 4242 WHERE id IN (%lld, %lld)", (long long)copy,
        (long long)mine);
    reopen();
    struct store_reindex_result res = reindex();
    CHECK(res.found == 2 && res.repaired == 2);
    /* the server's copy comes back with its folder; ours went to Conflicts */
    CHECK(sql_int("SELECT count(*) FROM items WHERE id = %lld", (long long)copy) == 0);
    char *p = cpath(copy, "");
    CHECK(fsize(p) == -1);
    free(p);
    CHECK(sql_int("SELECT f.kind FROM items i JOIN folders f ON f.id = i.folder_id WHERE "
                  "i.id = %lld",
                  (long long)mine) == STORE_KIND_CONFLICTS);
    CHECK(sql_int("SELECT state FROM items WHERE id = %lld", (long long)mine) ==
          STORE_ITEM_CONFLICT);
    char *origin = sql_text("SELECT origin FROM items WHERE id = %lld", (long long)mine);
    CHECK_STR(origin, "(folder 4242)/mine.eml");
    free(origin);
    /* its upload went nowhere: dropped */
    CHECK(sql_int("SELECT count(*) FROM journal") == 0);
    p = cpath(mine, "");
    char *got = read_file(p);
    CHECK_STR(got, "Subject: m\r\n\r\nmine");
    free(got);
    free(p);
    clean_again();
    teardown();
}

static void
test_duplicate_and_unsafe_names(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    folder(inbox, "Sub", "INBOX/Sub");
    int64_t tab = folder(inbox, "Tab", "INBOX/Tab");
    int64_t a = item(inbox, 1, "Sub.eml", "x", STORE_ITEM_SYNCED);
    int64_t slash = item(inbox, 2, "s.eml", "y", STORE_ITEM_SYNCED);
    int64_t bad = item(inbox, 3, "u.eml", "z", STORE_ITEM_SYNCED);
    int64_t nul = item(inbox, 4, "n.eml", "w", STORE_ITEM_SYNCED);
    int64_t lng = item(inbox, 5, "l.eml", "v", STORE_ITEM_SYNCED);
    int64_t dot = item(inbox, 6, "d.eml", "t", STORE_ITEM_SYNCED);
    store_close(st);
    st = NULL;
    /* an item named like its sibling folder; '/', invalid UTF-8, NUL,
     * 300 bytes, ".." */
    sql("UPDATE items SET name = 'Sub' WHERE id = %lld", (long long)a);
    sql("UPDATE items SET name = 'a/b.eml' WHERE id = %lld", (long long)slash);
    sql("UPDATE items SET name = CAST(X'41FF422E656D6C' AS TEXT) WHERE id = %lld",
        (long long)bad);
    sql("UPDATE items SET name = CAST(X'6100622E656D6C' AS TEXT) WHERE id = %lld",
        (long long)nul);
    sql("UPDATE items SET name = substr(replace(hex(zeroblob(150)), '0', 'x'), 1, 296) || "
        "'.eml' WHERE id = %lld",
        (long long)lng);
    sql("UPDATE items SET name = '..' WHERE id = %lld", (long long)dot);
    /* a folder with a control character */
    sql("UPDATE folders SET name = 'Ta' || char(9) || 'b' WHERE id = %lld", (long long)tab);
    reopen();
    struct store_reindex_result res = reindex();
    CHECK(res.found == 7 && res.repaired == 7);
    char *n = sql_text("SELECT name FROM folders WHERE id = %lld", (long long)tab);
    CHECK_STR(n, "Ta b");
    free(n);
    n = sql_text("SELECT name FROM items WHERE id = %lld", (long long)a);
    CHECK_STR(n, "Sub (2)");
    free(n);
    n = sql_text("SELECT name FROM items WHERE id = %lld", (long long)slash);
    CHECK_STR(n, "a\xef\xbc\x8f" "b.eml");
    free(n);
    n = sql_text("SELECT name FROM items WHERE id = %lld", (long long)bad);
    CHECK_STR(n, "A\xef\xbf\xbd" "B.eml");
    free(n);
    n = sql_text("SELECT name FROM items WHERE id = %lld", (long long)nul);
    CHECK_STR(n, "a b.eml");
    free(n);
    n = sql_text("SELECT name FROM items WHERE id = %lld", (long long)lng);
    CHECK(n && strlen(n) <= 255 && strcmp(n + strlen(n) - 4, ".eml") == 0);
    free(n);
    n = sql_text("SELECT name FROM items WHERE id = %lld", (long long)dot);
    CHECK_STR(n, ".._");
    free(n);
    CHECK(said_has("another entry of its folder has the same name"));
    clean_again();
    teardown();
}

static void
test_item_named_like_folder(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    int64_t rep = folder(inbox, "Reports", "INBOX/Reports");
    int64_t a = item(inbox, 1, "a.eml", "x", STORE_ITEM_SYNCED);
    int64_t b = item(inbox, 2, "b.eml", "y", STORE_ITEM_SYNCED);
    item(inbox, 3, "Reports (2)", "z", STORE_ITEM_SYNCED);
    store_close(st);
    st = NULL;
    sql("UPDATE items SET name = 'Reports' WHERE id IN (%lld, %lld)", (long long)a,
        (long long)0);
    /* and a folder named like an item, at the top */
    sql("UPDATE items SET name = 'Inbox', folder_id = 0 WHERE id = %lld", (long long)b);
    reopen();
    struct store_reindex_result res = reindex();
    CHECK(res.found == 2 && res.repaired == 2);
    /* folders keep their names (they are the server's); the item moves aside */
    char *n = sql_text("SELECT name FROM folders WHERE id = %lld", (long long)rep);
    CHECK_STR(n, "Reports");
    free(n);
    n = sql_text("SELECT name FROM items WHERE id = %lld", (long long)a);
    CHECK_STR(n, "Reports (3)");
    free(n);
    /* an item at the top (folder 0) has no folder: the server's copy goes */
    CHECK(sql_int("SELECT count(*) FROM items WHERE id = %lld", (long long)b) == 0);
    clean_again();
    teardown();
}

static void
test_bad_journal(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    int64_t x = item(inbox, 1, "x.eml", "x", STORE_ITEM_PENDING);
    int64_t y = item(inbox, 0, "y.eml", "y", STORE_ITEM_PENDING);
    int64_t ok_flags = journal(JOURNAL_FLAGS, x, inbox, "INBOX", 1, "seen");
    int64_t ok_delete = journal(JOURNAL_DELETE, 777, inbox, "INBOX", 9, NULL);
    int64_t ok_append = journal(JOURNAL_APPEND, y, inbox, NULL, 0, NULL);
    int64_t ok_rmdir = journal(JOURNAL_RMDIR, 0, 0, "Old", 0, NULL);
    int64_t unknown_op = journal(JOURNAL_FLAGS, x, inbox, "INBOX", 1, "seen");
    int64_t gone_item = journal(JOURNAL_APPEND, 9999, inbox, NULL, 0, NULL);
    int64_t no_target = journal(JOURNAL_DELETE, 8888, inbox, NULL, 0, NULL);
    int64_t gone_folder = journal(JOURNAL_MKDIR, 0, 5555, NULL, 0, "New");
    int64_t no_name = journal(JOURNAL_RENAME, 0, 0, "A", 0, NULL);
    int64_t bad_state = journal(JOURNAL_APPEND, y, inbox, NULL, 0, NULL);
    int64_t bad_state2 = journal(JOURNAL_FLAGS, x, inbox, "INBOX", 1, "flagged");
    int64_t bad_kind = journal(JOURNAL_FLAGS, x, inbox, "INBOX", 1, "seen");
    int64_t refused_gone = journal(JOURNAL_FLAGS, 4444, inbox, "INBOX", 3, "seen");
    int64_t waiting = journal(JOURNAL_FLAGS, y, inbox, NULL, 0, "seen"); /* UID from append */
    store_close(st);
    st = NULL;
    sql("UPDATE journal SET op = 99 WHERE id = %lld", (long long)unknown_op);
    sql("UPDATE journal SET state = 7 WHERE id IN (%lld, %lld)", (long long)bad_state,
        (long long)bad_state2);
    sql("UPDATE journal SET kind = 0 WHERE id = %lld", (long long)bad_kind);
    sql("UPDATE journal SET state = 2 WHERE id = %lld", (long long)refused_gone);
    reopen();
    struct store_reindex_result res = reindex();
    CHECK(res.found == 9);
    CHECK(res.repaired == 9);
    /* valid pending changes are never dropped */
    int64_t kept[] = {ok_flags, ok_delete, ok_append, ok_rmdir, bad_state, bad_state2,
                      bad_kind, waiting};
    for (size_t i = 0; i < ARRAY_SIZE(kept); i++)
        CHECK(sql_int("SELECT count(*) FROM journal WHERE id = %lld", (long long)kept[i]) == 1);
    int64_t gone[] = {unknown_op, gone_item, no_target, gone_folder, no_name, refused_gone};
    for (size_t i = 0; i < ARRAY_SIZE(gone); i++)
        CHECK(sql_int("SELECT count(*) FROM journal WHERE id = %lld", (long long)gone[i]) == 0);
    /* an upload of unknown state is in flight (looked for before resending) */
    CHECK(sql_int("SELECT state FROM journal WHERE id = %lld", (long long)bad_state) ==
          JOURNAL_INFLIGHT);
    CHECK(sql_int("SELECT state FROM journal WHERE id = %lld", (long long)bad_state2) ==
          JOURNAL_QUEUED);
    CHECK(sql_int("SELECT kind FROM journal WHERE id = %lld", (long long)bad_kind) ==
          STORE_KIND_MAIL);
    CHECK(said_has("unknown operation"));
    clean_again();
    teardown();
}

/* Drafts left by a crash (store_recover, which reindex runs first): an
 * empty one over an item with content is a truncate whose bytes never came
 * (cp onto the file killed in between): the content stays; one equal to
 * the content changes nothing; a draft of a new, empty item is committed. */
static void
test_drafts_at_start(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    int64_t a = item(inbox, 1, "a.eml", "aaaa", STORE_ITEM_SYNCED);
    int64_t b = item(inbox, 2, "b.eml", "bbbb", STORE_ITEM_SYNCED);
    int64_t c = item(inbox, 0, "c.eml", "", STORE_ITEM_LOCAL);
    char *da = xasprintf("%s/drafts/%lld", dir, (long long)a);
    char *db = xasprintf("%s/drafts/%lld", dir, (long long)b);
    char *dc = xasprintf("%s/drafts/%lld", dir, (long long)c);
    write_file(da, "");
    write_file(db, "bbbb");
    write_file(dc, "Subject: c\n\nnew\n");
    struct store_reindex_result res = reindex();
    CHECK(res.remaining == 0);
    CHECK(fsize(da) == -1 && fsize(db) == -1 && fsize(dc) == -1);
    char *wa = cpath(a, ""), *wb = cpath(b, ""), *wc = cpath(c, "");
    CHECK(fsize(wa) == 4 && fsize(wb) == 4);
    char *got = read_file(wc);
    CHECK_STR(got, "Subject: c\r\n\r\nnew\r\n"); /* committed: CRLF made */
    CHECK(sql_int("SELECT count(*) FROM journal WHERE item_id IN (%lld, %lld)", (long long)a,
                  (long long)b) == 0);
    CHECK(sql_int("SELECT count(*) FROM journal WHERE item_id = %lld", (long long)c) == 1);
    free(got);
    free(wa);
    free(wb);
    free(wc);
    free(da);
    free(db);
    free(dc);
    clean_again();
    teardown();
}

static void
test_stray_files(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    int64_t a = item(inbox, 1, "a.eml", "aaaa", STORE_ITEM_SYNCED);
    int64_t b = item(inbox, 2, "b.eml", "bb", STORE_ITEM_PARTIAL);
    char *orphan = cpath(9999, ""), *orphan_p = cpath(9999, ".p");
    char *misplaced = xasprintf("%s/content/%02x/%lld", dir, (unsigned)((a + 1) & 0xff),
                                (long long)a);
    char *leftover = cpath(a, ".p");
    char *sidecar = cpath(a, ".src");
    char *draft = xasprintf("%s/drafts/%lld", dir, (long long)a);
    char *draft2 = xasprintf("%s/drafts/123456", dir);
    char *tmp = xasprintf("%s/tmp/dl-1-2", dir);
    char *bucket = xasprintf("%s/content/%02x", dir, (unsigned)((a + 1) & 0xff));
    mkdir(bucket, 0700);
    char *obucket = xasprintf("%s/content/%02x", dir, 9999 & 0xff);
    mkdir(obucket, 0700);
    write_file(orphan, "x");
    write_file(orphan_p, "x");
    write_file(misplaced, "x");
    write_file(leftover, "x");
    write_file(sidecar, "BEGIN:VCALENDAR"); /* belongs to a: kept */
    write_file(draft, "x");
    write_file(draft2, "x");
    write_file(tmp, "x");
    struct store_reindex_result res = reindex();
    /* The draft of a is what a write through the mount left before a crash:
     * committed as a's new content (and journaled), not swept; the draft
     * of an item that does not exist is removed, by the recovery that runs
     * before the checks. */
    CHECK(res.found == 4 && res.repaired == 4); /* tmp/ is emptied by recovery too */
    CHECK(fsize(orphan) == -1 && fsize(orphan_p) == -1 && fsize(misplaced) == -1);
    CHECK(fsize(leftover) == -1 && fsize(draft) == -1 && fsize(draft2) == -1);
    CHECK(fsize(tmp) == -1);
    CHECK(fsize(sidecar) > 0);
    char *wa = cpath(a, ""), *pb = cpath(b, ".p");
    CHECK(fsize(wa) == 1 && fsize(pb) == 2);
    CHECK(sql_int("SELECT count(*) FROM journal WHERE item_id = %lld", (long long)a) == 1);
    CHECK(said_has("no item refers to it: removed"));
    free(wa);
    free(pb);
    free(orphan);
    free(orphan_p);
    free(misplaced);
    free(leftover);
    free(sidecar);
    free(draft);
    free(draft2);
    free(tmp);
    free(bucket);
    free(obucket);
    clean_again();
    teardown();
}

static void
test_folder_tree(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    int64_t conf = conflicts();
    int64_t a = folder(0, "A", "A");
    int64_t b = folder(a, "B", "A/B");
    int64_t c = folder(b, "C", "A/B/C");
    int64_t lost = folder(0, "Lost", "Lost");
    int64_t fake = folder(0, "Other", "Other");
    int64_t odd = folder(inbox, "Odd", "INBOX/Odd");
    int64_t in_c = item(c, 1, "m.eml", "mm", STORE_ITEM_SYNCED);
    store_close(st);
    st = NULL;
    /* a cycle A -> C -> B -> A, a folder whose parent is gone, a mail
     * folder holding "Conflicts" at the top (the real one moved below
     * Inbox), an unknown kind */
    sql("UPDATE folders SET parent_id = %lld WHERE id = %lld", (long long)c, (long long)a);
    sql("UPDATE folders SET parent_id = 31337 WHERE id = %lld", (long long)lost);
    sql("UPDATE folders SET parent_id = %lld, name = 'Confl' WHERE id = %lld",
        (long long)inbox, (long long)conf);
    sql("UPDATE folders SET name = 'Conflicts' WHERE id = %lld", (long long)fake);
    sql("UPDATE folders SET kind = 42 WHERE id = %lld", (long long)odd);
    reopen();
    struct store_reindex_result res = reindex();
    CHECK(res.found == 5 && res.repaired == 5);
    /* the cycle is broken at its lowest id, which goes to the top */
    CHECK(sql_int("SELECT parent_id FROM folders WHERE id = %lld", (long long)a) == 0);
    CHECK(sql_int("SELECT parent_id FROM folders WHERE id = %lld", (long long)b) == a);
    CHECK(sql_int("SELECT parent_id FROM folders WHERE id = %lld", (long long)c) == b);
    CHECK(sql_int("SELECT parent_id FROM folders WHERE id = %lld", (long long)lost) == 0);
    char *n = sql_text("SELECT name FROM folders WHERE id = %lld", (long long)fake);
    CHECK_STR(n, "Conflicts (mail)");
    free(n);
    n = sql_text("SELECT name FROM folders WHERE id = %lld", (long long)conf);
    CHECK_STR(n, "Conflicts");
    free(n);
    CHECK(sql_int("SELECT parent_id FROM folders WHERE id = %lld", (long long)conf) == 0);
    CHECK(sql_int("SELECT kind FROM folders WHERE id = %lld", (long long)odd) ==
          STORE_KIND_MAIL);
    CHECK(sql_int("SELECT folder_id FROM items WHERE id = %lld", (long long)in_c) == c);
    CHECK(said_has("(a cycle)"));
    clean_again();
    teardown();
}

static void
test_state_unknown(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    int64_t a = item(inbox, 1, "a.eml", "a", STORE_ITEM_SYNCED);
    int64_t b = item(inbox, 0, "b.eml", "b", STORE_ITEM_PENDING);
    journal(JOURNAL_APPEND, b, inbox, NULL, 0, NULL);
    store_close(st);
    st = NULL;
    sql("UPDATE items SET state = 17 WHERE id IN (%lld, %lld)", (long long)a, (long long)b);
    reopen();
    struct store_reindex_result res = reindex();
    CHECK(res.found == 2);
    CHECK(sql_int("SELECT state FROM items WHERE id = %lld", (long long)a) == STORE_ITEM_SYNCED);
    CHECK(sql_int("SELECT state FROM items WHERE id = %lld", (long long)b) ==
          STORE_ITEM_PENDING);
    clean_again();
    teardown();
}

/* The damage a disk does: bytes of an index page overwritten. */
static void
test_damaged_index_rebuilt(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    for (int i = 1; i <= 300; i++) {
        char name[32];
        snprintf(name, sizeof name, "m%03d.eml", i);
        item(inbox, (uint32_t)i, name, "x", STORE_ITEM_SYNCED);
    }
    int64_t root = 0;
    store_close(st);
    st = NULL;
    root = sql_int("SELECT rootpage FROM sqlite_master WHERE name = 'items_folder'");
    int64_t psize = sql_int("PRAGMA page_size");
    CHECK(root > 1 && psize > 0);
    /* Scribble over the cells (not the header) of the index's root page. */
    char *path = xasprintf("%s/store.db", dir);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    char junk[512];
    memset(junk, 0x7e, sizeof junk);
    CHECK(pwrite(fd, junk, sizeof junk, (off_t)((root - 1) * psize + psize - sizeof junk)) ==
          (ssize_t)sizeof junk);
    close(fd);
    dynbuf_reset(&said);
    struct store_reindex_result res;
    char *err = NULL;
    enum store_status r = store_reindex(dir, say, NULL, &res, &err);
    if (r != STORE_OK)
        printf("# %s\n", err ? err : "?");
    CHECK(r == STORE_OK);
    free(err);
    CHECK(res.found >= 1 && res.remaining == 0);
    CHECK(said_has("rebuilt"));
    char *kept = xasprintf("%s.before-reindex", path);
    CHECK(fsize(kept) > 0);
    free(kept);
    free(path);
    CHECK(sql_int("SELECT count(*) FROM items") == 300);
    CHECK(sql_int("PRAGMA user_version") >= 6);
    reopen();
    clean_again();
    teardown();
}

/* A database that cannot be read: a clear message, nothing touched. */
static void
unreadable(const char *what, void (*damage)(const char *path))
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    int64_t a = item(inbox, 1, "a.eml", "precious", STORE_ITEM_SYNCED);
    for (int i = 2; i < 200; i++)
        item(inbox, (uint32_t)i, "x.eml", "x", STORE_ITEM_SYNCED);
    store_close(st);
    st = NULL;
    char *path = xasprintf("%s/store.db", dir);
    damage(path);
    struct store_reindex_result res;
    char *err = NULL;
    enum store_status r = store_reindex(dir, say, NULL, &res, &err);
    printf("# %s: %s -> %s\n", what, store_status_str(r), err ? err : "(no message)");
    CHECK(r == STORE_CORRUPT);
    CHECK(err && strstr(err, "mailfs reset"));
    free(err);
    /* nothing else was touched: the content is still there */
    char *w = cpath(a, "");
    CHECK(fsize(w) == 8);
    free(w);
    /* reset moves such a store aside, whole */
    char *where = NULL;
    CHECK(store_move_aside(dir, &where, &err) == STORE_OK);
    CHECK(where != NULL);
    char *moved = xasprintf("%s/content/%02x/%lld", where, (unsigned)(a & 0xff), (long long)a);
    CHECK(fsize(moved) == 8);
    CHECK(!store_exists(dir));
    free(moved);
    free(where);
    free(err);
    free(path);
    teardown();
}

static void
garbage(const char *path)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
    close(fd);
}

static void
truncated(const char *path)
{
    CHECK(truncate(path, fsize(path) / 3) == 0);
}

static void
emptied(const char *path)
{
    CHECK(truncate(path, 0) == 0);
}

static void
test_garbage_database(void)
{
    unreadable("garbage", garbage);
}

static void
test_truncated_database(void)
{
    unreadable("truncated", truncated);
}

static void
test_empty_database(void)
{
    unreadable("empty", emptied);
}

static void
test_no_store(void)
{
    char tmpl[] = "/tmp/mailfs-reindex-XXXXXX";
    char *d = mkdtemp(tmpl);
    struct store_reindex_result res;
    char *err = NULL;
    CHECK(store_reindex(d, say, NULL, &res, &err) == STORE_NOTFOUND);
    CHECK(err && strstr(err, "no store"));
    free(err);
    rmdir(d);
}

/* ---- reset ---- */

static void
test_reset_keeps_unsent(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    int64_t conf = conflicts();
    int64_t arch = folder(0, "Archive", "Archive");
    int64_t y25 = folder(arch, "2025", "Archive/2025");
    int64_t newf = folder(0, "New", NULL);
    sql("UPDATE folders SET local_only = 1 WHERE id = %lld", (long long)newf);
    int64_t synced = item(inbox, 1, "synced.eml", "Subject: s\r\n\r\nserver", STORE_ITEM_SYNCED);
    int64_t edited = item(y25, 4, "x.eml", "Subject: x\r\n\r\nmy edit", STORE_ITEM_PENDING);
    journal(JOURNAL_REPLACE, edited, y25, "Archive/2025", 4, NULL);
    int64_t added = item(inbox, 0, "x.eml", "Subject: x\r\n\r\nnew here", STORE_ITEM_PENDING);
    journal(JOURNAL_APPEND, added, inbox, NULL, 0, NULL);
    int64_t refused = item(inbox, 0, "r.eml", "Subject: r\r\n\r\nrefused", STORE_ITEM_ERROR);
    int64_t jr = journal(JOURNAL_APPEND, refused, inbox, NULL, 0, NULL);
    sql("UPDATE journal SET state = 2, error = 'quota exceeded' WHERE id = %lld", (long long)jr);
    int64_t in_new = item(newf, 0, "n.eml", "Subject: n\r\n\r\nin a new folder", STORE_ITEM_LOCAL);
    int64_t old_conflict = item(conf, 0, "old.eml", "kept as it is", STORE_ITEM_CONFLICT);
    journal(JOURNAL_DELETE, 0, inbox, "INBOX", 77, NULL);
    journal(JOURNAL_MKDIR, 0, newf, NULL, 0, "New");
    CHECK(store_meta_set(st, "mode", "offline") == STORE_OK);
    CHECK(store_meta_set(st, "sync_mode", "full") == STORE_OK);
    CHECK(store_meta_set(st, "last_opened", "3") == STORE_OK);
    char *w_synced = cpath(synced, "");
    char *w_edited = cpath(edited, "");

    dynbuf_reset(&said);
    struct store_reset_result res;
    store_set_recording(st, false);
    CHECK(store_reset(st, false, say, NULL, &res) == STORE_OK);
    CHECK(res.saved == 4);
    CHECK(res.unsent == 2);
    CHECK(res.dropped_folders == 4);
    CHECK(res.dropped_items == 5);
    CHECK(said_has("Conflicts/x.eml <- Archive/2025/x.eml (replace not sent yet)"));
    CHECK(said_has("Conflicts/x (from Inbox).eml <- Inbox/x.eml (append not sent yet)"));
    CHECK(said_has("Conflicts/r.eml <- Inbox/r.eml (refused by the server: quota exceeded)"));
    CHECK(said_has("Conflicts/n.eml <- New/n.eml"));
    CHECK(said_has("the deletion of message UID 77 in INBOX"));
    /* only Conflicts is left, holding the old conflict and the four */
    CHECK(sql_int("SELECT count(*) FROM folders") == 1);
    CHECK(sql_int("SELECT id FROM folders") == conf);
    CHECK(sql_int("SELECT count(*) FROM items") == 5);
    CHECK(sql_int("SELECT count(*) FROM items WHERE folder_id <> %lld", (long long)conf) == 0);
    CHECK(sql_int("SELECT count(*) FROM items WHERE state <> 4") == 0);
    CHECK(sql_int("SELECT count(*) FROM journal") == 0);
    CHECK(sql_int("SELECT count(*) FROM items WHERE id = %lld", (long long)old_conflict) == 1);
    char *origin = sql_text("SELECT origin FROM items WHERE name = 'x.eml'");
    CHECK_STR(origin, "Archive/2025/x.eml");
    free(origin);
    int64_t nid = sql_int("SELECT id FROM items WHERE name = 'x (from Inbox).eml'");
    char *w = cpath(nid, "");
    char *got = read_file(w);
    CHECK_STR(got, "Subject: x\r\n\r\nnew here");
    CHECK(sql_int("SELECT size FROM items WHERE id = %lld", (long long)nid) ==
          (int64_t)strlen("Subject: x\r\n\r\nnew here"));
    free(got);
    free(w);
    /* settings stay, the folder opened last goes */
    char *v = NULL;
    CHECK(store_meta_get(st, "mode", &v) == STORE_OK);
    CHECK_STR(v, "offline");
    free(v);
    CHECK(store_meta_get(st, "sync_mode", &v) == STORE_OK);
    free(v);
    CHECK(store_meta_get(st, "last_opened", &v) == STORE_NOTFOUND);
    /* the dropped items' files are gone */
    CHECK(fsize(w_synced) == -1 && fsize(w_edited) == -1);
    free(w_synced);
    free(w_edited);
    (void)in_new;
    /* and the result is a consistent store */
    clean_again();
    teardown();
}

static void
test_reset_without_conflicts_folder(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    /* a mail folder holds the name: it is dropped like the rest */
    folder(0, "Conflicts", "Conflicts");
    int64_t mine = item(inbox, 0, "m.eml", "mine", STORE_ITEM_LOCAL);
    (void)mine;
    struct store_reset_result res;
    CHECK(store_reset(st, false, say, NULL, &res) == STORE_OK);
    CHECK(res.saved == 1);
    CHECK(sql_int("SELECT count(*) FROM folders WHERE kind = 6 AND parent_id = 0 AND "
                  "name = 'Conflicts'") == 1);
    CHECK(sql_int("SELECT count(*) FROM folders") == 1);
    CHECK(sql_int("SELECT count(*) FROM items WHERE origin = 'Inbox/m.eml'") == 1);
    clean_again();
    teardown();
}

static void
test_reset_nothing_pending(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX");
    conflicts();
    for (int i = 1; i <= 20; i++)
        item(inbox, (uint32_t)i, "m.eml", "server copy", STORE_ITEM_SYNCED);
    struct store_reset_result res;
    dynbuf_reset(&said);
    CHECK(store_reset(st, false, say, NULL, &res) == STORE_OK);
    CHECK(res.saved == 0 && res.unsent == 0 && res.dropped_items == 20);
    CHECK(said.len == 0);
    CHECK(sql_int("SELECT count(*) FROM items") == 0);
    /* no content file is left behind */
    char *cmd = xasprintf("test -z \"$(find '%s/content' -type f)\"", dir);
    CHECK(system(cmd) == 0);
    free(cmd);
    teardown();
}

int
main(void)
{
    RUN(test_clean_store);
    RUN(test_missing_and_cut_content);
    RUN(test_dav_item_fetched_again);
    RUN(test_local_content_lost);
    RUN(test_partial_upgraded_half_way);
    RUN(test_staged_content_put_in_place);
    RUN(test_item_without_folder);
    RUN(test_duplicate_and_unsafe_names);
    RUN(test_item_named_like_folder);
    RUN(test_bad_journal);
    RUN(test_stray_files);
    RUN(test_drafts_at_start);
    RUN(test_folder_tree);
    RUN(test_state_unknown);
    RUN(test_damaged_index_rebuilt);
    RUN(test_garbage_database);
    RUN(test_truncated_database);
    RUN(test_empty_database);
    RUN(test_no_store);
    RUN(test_reset_keeps_unsent);
    RUN(test_reset_without_conflicts_folder);
    RUN(test_reset_nothing_pending);
    return check_done();
}
