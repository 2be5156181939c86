/* test_store: the sqlite store: schema creation and migration, refusal of a
 * newer or damaged database, folders, items, unique names, listings,
 * content files and change records. */
#include "check.h"

#include "common/util.h"
#include "store/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *
tmpdir(void)
{
    char tmpl[] = "/tmp/mailfs-store-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? xasprintf("%s/store", d) : NULL;
}

static void
rm_rf(const char *dir)
{
    /* The store is DIR/store inside the temporary DIR. */
    char *cmd = xasprintf("rm -rf '%.*s'", (int)(strrchr(dir, '/') - dir), dir);
    (void)!system(cmd);
    free(cmd);
}

static struct store *
open_new(char **dir)
{
    *dir = tmpdir();
    struct store *st = NULL;
    char *err = NULL;
    CHECK(store_open(*dir, STORE_CREATE, &st, &err) == STORE_OK);
    free(err);
    return st;
}

static int64_t
add_folder(struct store *st, int64_t parent, const char *name, const char *server)
{
    struct store_folder f;
    memset(&f, 0, sizeof f);
    f.parent_id = parent;
    f.kind = STORE_KIND_MAIL;
    snprintf(f.name, sizeof f.name, "%s", name);
    f.server_name = (char *)server;
    f.selectable = true;
    CHECK(store_folder_add(st, &f) == STORE_OK);
    return f.id;
}

static int64_t
add_item(struct store *st, int64_t folder, uint32_t uid, const char *name, const char *body,
         char *name_out)
{
    struct store_item_new n = {
        .folder_id = folder,
        .uid = uid,
        .date = 1700000000,
        .wanted_name = name,
        .flags = "seen",
        .message_id = "<a@b>",
        .content = body,
        .size = strlen(body),
    };
    int64_t id = 0;
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_add(st, &n, &id, name_out) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    return id;
}

static void
test_create_and_reopen(void)
{
    char *dir;
    struct store *st = open_new(&dir);
    struct stat sb;
    CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
    int64_t inbox = add_folder(st, 0, "Inbox", "INBOX");
    add_item(st, inbox, 7, "2026-01-01 10.00 Hello.eml", "Subject: Hello\r\n\r\nbody", NULL);
    store_close(st);
    char *err = NULL;
    CHECK(store_open(dir, 0, &st, &err) == STORE_OK);
    struct store_item it;
    CHECK(store_item_by_uid(st, inbox, 7, &it) == STORE_OK);
    CHECK_STR(it.name, "2026-01-01 10.00 Hello.eml");
    CHECK(it.size == (int64_t)strlen("Subject: Hello\r\n\r\nbody"));
    store_close(st);
    free(err);
    rm_rf(dir);
    free(dir);
}

static void
test_missing_store_without_create(void)
{
    char *dir = tmpdir();
    util_mkdirs(dir, 0700);
    struct store *st = NULL;
    char *err = NULL;
    CHECK(store_open(dir, 0, &st, &err) == STORE_NOTFOUND);
    CHECK(err && strstr(err, "no store yet"));
    free(err);
    rm_rf(dir);
    free(dir);
}

static void
test_too_new(void)
{
    char *dir;
    struct store *st = open_new(&dir);
    store_close(st);
    char *db = xasprintf("%s/store.db", dir);
    sqlite3 *h;
    CHECK(sqlite3_open(db, &h) == SQLITE_OK);
    CHECK(sqlite3_exec(h, "PRAGMA user_version = 999", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(h);
    char *err = NULL;
    CHECK(store_open(dir, 0, &st, &err) == STORE_TOO_NEW);
    CHECK(err && strstr(err, "newer mailfs") && strstr(err, "999"));
    free(err);
    free(db);
    rm_rf(dir);
    free(dir);
}

static void
write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

static void
test_garbage_database(void)
{
    char *dir = tmpdir();
    util_mkdirs(dir, 0700);
    char *db = xasprintf("%s/store.db", dir);
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    write_file(db, junk, sizeof junk);
    struct store *st = NULL;
    char *err = NULL;
    enum store_status s = store_open(dir, STORE_CREATE, &st, &err);
    CHECK(s == STORE_CORRUPT);
    CHECK(st == NULL);
    CHECK(err && strstr(err, "damaged") && strstr(err, "reindex"));
    free(err);
    free(db);
    rm_rf(dir);
    free(dir);
}

static void
test_truncated_database(void)
{
    char *dir;
    struct store *st = open_new(&dir);
    int64_t f = add_folder(st, 0, "Inbox", "INBOX");
    for (int i = 0; i < 200; i++) {
        char name[64];
        snprintf(name, sizeof name, "m%d.eml", i);
        add_item(st, f, (uint32_t)i + 1, name, "x", NULL);
    }
    store_close(st);
    char *db = xasprintf("%s/store.db", dir);
    /* Cut the file in the middle of a page. */
    CHECK(truncate(db, 5000) == 0);
    char *err = NULL;
    enum store_status s = store_open(dir, 0, &st, &err);
    if (s == STORE_OK) {
        /* sqlite may open it; then reading must fail cleanly, not crash. */
        struct store_item it;
        enum store_status r = store_item_by_uid(st, f, 150, &it);
        CHECK(r == STORE_CORRUPT || r == STORE_NOTFOUND || r == STORE_ERROR);
        store_close(st);
    } else {
        CHECK(err != NULL);
    }
    free(err);
    free(db);
    rm_rf(dir);
    free(dir);
}

static void
test_migrate_from_v1(void)
{
    /* A store written by the first format (folders and items, no journal). */
    char *dir = tmpdir();
    util_mkdirs(dir, 0700);
    char *db = xasprintf("%s/store.db", dir);
    sqlite3 *h;
    CHECK(sqlite3_open(db, &h) == SQLITE_OK);
    const char *v1 =
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE folders (id INTEGER PRIMARY KEY AUTOINCREMENT, parent_id INTEGER NOT "
        "NULL, kind INTEGER NOT NULL, name TEXT NOT NULL, server_name TEXT, delimiter "
        "INTEGER NOT NULL DEFAULT 0, selectable INTEGER NOT NULL DEFAULT 1, mode INTEGER NOT "
        "NULL DEFAULT 0, uidvalidity INTEGER NOT NULL DEFAULT 0, highestmodseq INTEGER NOT "
        "NULL DEFAULT 0, uidnext INTEGER NOT NULL DEFAULT 0, server_count INTEGER NOT NULL "
        "DEFAULT 0, sync_token TEXT, last_sync INTEGER NOT NULL DEFAULT 0, error TEXT, "
        "UNIQUE (parent_id, name));"
        "CREATE UNIQUE INDEX folders_server ON folders(kind, server_name) WHERE server_name "
        "IS NOT NULL;"
        "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, folder_id INTEGER NOT "
        "NULL, uid INTEGER NOT NULL DEFAULT 0, modseq INTEGER NOT NULL DEFAULT 0, name TEXT "
        "NOT NULL, size INTEGER NOT NULL, date INTEGER NOT NULL, flags TEXT NOT NULL "
        "DEFAULT '', message_id TEXT, state INTEGER NOT NULL DEFAULT 0, has_content INTEGER "
        "NOT NULL DEFAULT 1, UNIQUE (folder_id, name));"
        "CREATE UNIQUE INDEX items_uid ON items(folder_id, uid) WHERE uid <> 0;"
        "CREATE INDEX items_folder ON items(folder_id);"
        "INSERT INTO folders(parent_id, kind, name, server_name) VALUES (0, 1, 'Inbox', "
        "'INBOX');"
        "INSERT INTO items(folder_id, uid, name, size, date) VALUES (1, 5, 'old.eml', 0, 0);"
        "PRAGMA user_version = 1;";
    CHECK(sqlite3_exec(h, v1, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(h);
    struct store *st = NULL;
    char *err = NULL;
    CHECK(store_open(dir, 0, &st, &err) == STORE_OK);
    if (st) {
        struct store_item it;
        CHECK(store_item_by_uid(st, 1, 5, &it) == STORE_OK);
        CHECK_STR(it.name, "old.eml");
        store_close(st);
    }
    CHECK(sqlite3_open(db, &h) == SQLITE_OK);
    sqlite3_stmt *s;
    CHECK(sqlite3_prepare_v2(h, "SELECT count(*) FROM journal", -1, &s, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(s) == SQLITE_ROW);
    sqlite3_finalize(s);
    sqlite3_close(h);
    free(err);
    free(db);
    rm_rf(dir);
    free(dir);
}

static void
test_unique_names(void)
{
    char *dir;
    struct store *st = open_new(&dir);
    int64_t f = add_folder(st, 0, "Inbox", "INBOX");
    char n1[NAMES_MAX + 1], n2[NAMES_MAX + 1], n3[NAMES_MAX + 1];
    add_item(st, f, 1, "2026-01-01 10.00 Same.eml", "a", n1);
    add_item(st, f, 2, "2026-01-01 10.00 Same.eml", "b", n2);
    add_item(st, f, 3, "2026-01-01 10.00 Same.eml", "c", n3);
    CHECK_STR(n1, "2026-01-01 10.00 Same.eml");
    CHECK_STR(n2, "2026-01-01 10.00 Same (2).eml");
    CHECK_STR(n3, "2026-01-01 10.00 Same (3).eml");
    /* Folders and items share a directory. */
    int64_t sub = add_folder(st, f, "2026-01-01 10.00 Same (4).eml", "INBOX/x");
    char n4[NAMES_MAX + 1];
    add_item(st, f, 4, "2026-01-01 10.00 Same.eml", "d", n4);
    CHECK_STR(n4, "2026-01-01 10.00 Same (5).eml");
    CHECK(sub > 0);
    /* Two folders wanting one name. */
    int64_t a = add_folder(st, 0, "Archive", "Archive");
    int64_t b = add_folder(st, 0, "Archive", "Archive2");
    struct store_folder fa, fb;
    CHECK(store_folder_get(st, a, &fa) == STORE_OK);
    CHECK(store_folder_get(st, b, &fb) == STORE_OK);
    CHECK_STR(fa.name, "Archive");
    CHECK_STR(fb.name, "Archive (2)");
    store_folder_clear(&fa);
    store_folder_clear(&fb);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

struct listing {
    char names[64][NAMES_MAX + 1];
    uint64_t inos[64];
    int n;
    int stop_after;
};

static int
list_cb(void *ctx, const struct store_dirent *e)
{
    struct listing *l = ctx;
    if (l->stop_after && l->n == l->stop_after)
        return 1;
    snprintf(l->names[l->n], sizeof l->names[0], "%s", e->name);
    l->inos[l->n++] = e->ino;
    return 0;
}

static void
test_dir_list_cursor(void)
{
    char *dir;
    struct store *st = open_new(&dir);
    int64_t f = add_folder(st, 0, "Inbox", "INBOX");
    add_folder(st, f, "Sub1", "INBOX/Sub1");
    add_folder(st, f, "Sub2", "INBOX/Sub2");
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "m%d.eml", i);
        add_item(st, f, (uint32_t)i + 1, name, "x", NULL);
    }
    struct listing all = {0};
    CHECK(store_dir_list(st, f, 0, list_cb, &all) == STORE_OK);
    CHECK(all.n == 7);
    CHECK_STR(all.names[0], "Sub1");
    CHECK_STR(all.names[2], "m0.eml");
    /* Resume after each entry gives exactly the rest. */
    for (int k = 0; k < all.n; k++) {
        struct listing rest = {0};
        CHECK(store_dir_list(st, f, all.inos[k], list_cb, &rest) == STORE_OK);
        CHECK(rest.n == all.n - k - 1);
        if (rest.n)
            CHECK_STR(rest.names[0], all.names[k + 1]);
    }
    /* An entry removed under a cursor does not break the listing. */
    struct store_item it;
    CHECK(store_item_lookup(st, f, "m1.eml", &it) == STORE_OK);
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_remove(st, it.id) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    struct listing rest = {0};
    CHECK(store_dir_list(st, f, store_ino_item(it.id), list_cb, &rest) == STORE_OK);
    CHECK(rest.n == 3);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void
test_content_files(void)
{
    char *dir;
    struct store *st = open_new(&dir);
    int64_t f = add_folder(st, 0, "Inbox", "INBOX");
    int64_t id = add_item(st, f, 1, "a.eml", "hello world", NULL);
    int fd = store_content_open(st, id);
    CHECK(fd >= 0);
    char buf[64] = {0};
    CHECK(read(fd, buf, sizeof buf) == 11);
    close(fd);
    CHECK_STR(buf, "hello world");
    char path[4096];
    store_content_path(st, id, path, sizeof path);
    CHECK(strstr(path, "/content/") != NULL);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_remove(st, id) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    CHECK(stat(path, &sb) < 0);
    CHECK(store_content_open(st, id) < 0);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void
count_change(void *ctx, const struct store_change *c)
{
    (*(int *)ctx)++;
}

static void
test_changes_follow_commit(void)
{
    char *dir;
    struct store *st = open_new(&dir);
    int64_t f = add_folder(st, 0, "Inbox", "INBOX");
    int n = 0;
    store_take_changes(st, count_change, &n);
    CHECK(n == 1); /* the folder */
    struct store_item_new it = {.folder_id = f, .uid = 9, .wanted_name = "x.eml",
                                .content = "x", .size = 1};
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_add(st, &it, NULL, NULL) == STORE_OK);
    store_rollback(st);
    n = 0;
    store_take_changes(st, count_change, &n);
    CHECK(n == 0); /* rolled back: nothing to tell the kernel */
    struct store_item got;
    CHECK(store_item_by_uid(st, f, 9, &got) == STORE_NOTFOUND);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static int
first_match(void *ctx, const struct store_item *it)
{
    *(int64_t *)ctx = it->id;
    return 1;
}

static void
test_uid_remap(void)
{
    char *dir;
    struct store *st = open_new(&dir);
    int64_t f = add_folder(st, 0, "Inbox", "INBOX");
    int64_t id = add_item(st, f, 10, "a.eml", "abc", NULL);
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_folder_unmap_uids(st, f) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    struct store_item it;
    CHECK(store_item_by_uid(st, f, 10, &it) == STORE_NOTFOUND);
    int64_t found = 0;
    CHECK(store_item_each_unmapped_match(st, f, "<a@b>", 3, first_match, &found) == STORE_OK);
    CHECK(found == id);
    found = 0;
    CHECK(store_item_each_unmapped_match(st, f, "<a@b>", 4, first_match, &found) == STORE_OK);
    CHECK(found == 0);
    CHECK(store_item_each_unmapped_match(st, f, NULL, 3, first_match, &found) == STORE_OK);
    CHECK(found == 0);
    CHECK(store_item_set_uid(st, id, 1, 0, "seen") == STORE_OK);
    CHECK(store_item_by_uid(st, f, 1, &it) == STORE_OK && it.id == id);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void
test_folder_remove_recursive(void)
{
    char *dir;
    struct store *st = open_new(&dir);
    int64_t a = add_folder(st, 0, "Archive", "Archive");
    int64_t b = add_folder(st, a, "2025", "Archive/2025");
    int64_t id = add_item(st, b, 1, "x.eml", "x", NULL);
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_folder_remove(st, a) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    struct store_folder f;
    CHECK(store_folder_get(st, b, &f) == STORE_NOTFOUND);
    CHECK(store_content_open(st, id) < 0);
    struct store_item it;
    CHECK(store_item_get(st, id, &it) == STORE_NOTFOUND);
    store_close(st);
    rm_rf(dir);
    free(dir);
}

static void
test_inode_numbers(void)
{
    CHECK(store_ino_folder(0) == 1);
    CHECK(store_ino_id(store_ino_folder(7)) == 7);
    CHECK(!store_ino_is_item(store_ino_folder(7)));
    CHECK(store_ino_id(store_ino_item(7)) == 7);
    CHECK(store_ino_is_item(store_ino_item(7)));
    CHECK(store_ino_item(1) != store_ino_folder(1));
    CHECK(!store_ino_is_item(STORE_INO_ROOT));
}

int
main(void)
{
    RUN(test_create_and_reopen);
    RUN(test_missing_store_without_create);
    RUN(test_too_new);
    RUN(test_garbage_database);
    RUN(test_truncated_database);
    RUN(test_migrate_from_v1);
    RUN(test_unique_names);
    RUN(test_dir_list_cursor);
    RUN(test_content_files);
    RUN(test_changes_follow_commit);
    RUN(test_uid_remap);
    RUN(test_folder_remove_recursive);
    RUN(test_inode_numbers);
    return check_done();
}
