/* test_local: the local-change policy (store/local.c) and the journal it
 * writes: what each user action queues for the server, and how queued
 * entries coalesce so nothing is sent twice and nothing moot is sent. */
#include "check.h"

#include "common/util.h"
#include "store/journal.h"
#include "store/local.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir;
static struct store *st;

static void
setup(void)
{
    char tmpl[] = "/tmp/mailfs-local-XXXXXX";
    char *d = mkdtemp(tmpl);
    dir = xasprintf("%s/store", d);
    char *err = NULL;
    CHECK(store_open(dir, STORE_CREATE, &st, &err) == STORE_OK);
    free(err);
}

static void
teardown(void)
{
    store_close(st);
    /* The store is DIR/store inside the temporary DIR. */
    char *cmd = xasprintf("rm -rf '%.*s'", (int)(strrchr(dir, '/') - dir), dir);
    (void)!system(cmd);
    free(cmd);
    free(dir);
}

static int64_t
folder(int64_t parent, const char *name, const char *server, uint32_t uidvalidity)
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
    f.uidvalidity = uidvalidity;
    f.server_name = NULL;
    CHECK(store_folder_update_sync(st, &f) == STORE_OK);
    return f.id;
}

/* A message that came from the server. */
static int64_t
synced(int64_t fid, uint32_t uid, const char *name)
{
    struct store_item_new n = {.folder_id = fid, .uid = uid, .modseq = 7, .wanted_name = name,
                               .message_id = "<m@x>", .content = "Subject: x\r\n\r\nx",
                               .size = 14};
    int64_t id;
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_add(st, &n, &id, NULL) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    return id;
}

/* The ops of the journal, in order, as a string such as "append,delete". */
static char *
ops(void)
{
    char buf[512] = "";
    int64_t after = 0;
    struct journal_entry e;
    while (journal_next(st, after, ~0u, &e) == STORE_OK) {
        if (buf[0])
            strcat(buf, ",");
        strcat(buf, journal_op_name(e.op));
        after = e.id;
        journal_entry_clear(&e);
    }
    return xstrdup(buf);
}

#define CHECK_OPS(want)                                                                   \
    do {                                                                                  \
        char *got_ = ops();                                                               \
        CHECK_STR(got_, want);                                                            \
        free(got_);                                                                       \
    } while (0)

static struct journal_entry
first_entry(void)
{
    struct journal_entry e;
    memset(&e, 0, sizeof e);
    CHECK(journal_next(st, 0, ~0u, &e) == STORE_OK);
    return e;
}

static void
test_create_then_content_queues_one_append(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX", 1);
    int64_t id;
    CHECK(local_item_create(st, inbox, "mine.eml", 100, &id) == STORE_OK);
    CHECK_OPS(""); /* an empty file is not sent */
    CHECK(local_item_content(st, id, 20, 100, "<a@b>") == STORE_OK);
    CHECK(local_item_content(st, id, 25, 100, "<a@b>") == STORE_OK);
    CHECK_OPS("append");
    struct store_item it;
    CHECK(store_item_get(st, id, &it) == STORE_OK);
    CHECK(it.state == STORE_ITEM_PENDING && it.size == 25);
    CHECK(local_item_create(st, inbox, "mine.eml", 100, &id) == STORE_EXISTS);
    teardown();
}

static void
test_create_and_delete_before_sending_costs_nothing(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX", 1);
    int64_t id;
    CHECK(local_item_create(st, inbox, "tmp.eml", 100, &id) == STORE_OK);
    CHECK(local_item_content(st, id, 20, 100, NULL) == STORE_OK);
    CHECK(local_item_flags(st, id, "seen") == STORE_OK);
    CHECK(local_item_delete(st, id) == STORE_OK);
    CHECK_OPS("");
    struct store_item it;
    CHECK(store_item_get(st, id, &it) == STORE_NOTFOUND);
    teardown();
}

static void
test_edit_then_delete_of_a_server_message(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX", 42);
    int64_t id = synced(inbox, 9, "a.eml");
    CHECK(local_item_content(st, id, 30, 100, "<m@x>") == STORE_OK);
    CHECK(local_item_content(st, id, 31, 100, "<m@x>") == STORE_OK);
    CHECK_OPS("replace");
    struct journal_entry e = first_entry();
    CHECK(e.uid == 9 && e.uidvalidity == 42);
    CHECK_STR(e.src, "INBOX");
    journal_entry_clear(&e);
    CHECK(local_item_delete(st, id) == STORE_OK);
    CHECK_OPS("delete"); /* the edit is moot */
    e = first_entry();
    CHECK(e.uid == 9 && e.uidvalidity == 42);
    journal_entry_clear(&e);
    teardown();
}

static void
test_rename_is_local_move_is_not(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX", 1);
    int64_t arch = folder(0, "Archive", "Archive", 5);
    int64_t id = synced(inbox, 3, "a.eml");
    CHECK(local_item_rename(st, id, inbox, "b.eml", false) == STORE_OK);
    CHECK_OPS("");
    CHECK(local_item_rename(st, id, arch, "b.eml", false) == STORE_OK);
    CHECK_OPS("move");
    struct journal_entry e = first_entry();
    CHECK(e.uid == 3 && e.uidvalidity == 1 && e.folder_id == arch);
    CHECK_STR(e.src, "INBOX");
    CHECK(e.message_id && strcmp(e.message_id, "<m@x>") == 0);
    journal_entry_clear(&e);
    struct store_item it;
    CHECK(store_item_get(st, id, &it) == STORE_OK);
    CHECK(it.uid == 0 && it.folder_id == arch); /* its UID there is not known yet */
    /* The UID it had must not be downloaded again meanwhile. */
    teardown();
}

static int
count_uid(void *ctx, uint32_t uid)
{
    *(uint32_t *)ctx = uid;
    return 0;
}

static void
test_move_then_delete_deletes_at_the_source(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX", 1);
    int64_t arch = folder(0, "Archive", "Archive", 5);
    int64_t id = synced(inbox, 3, "a.eml");
    CHECK(local_item_rename(st, id, arch, "a.eml", false) == STORE_OK);
    CHECK(local_item_delete(st, id) == STORE_OK);
    CHECK_OPS("delete");
    struct journal_entry e = first_entry();
    CHECK(e.uid == 3 && e.uidvalidity == 1);
    CHECK_STR(e.src, "INBOX");
    journal_entry_clear(&e);
    uint32_t leaving = 0;
    CHECK(journal_each_leaving_uid(st, "INBOX", count_uid, &leaving) == STORE_OK);
    CHECK(leaving == 3);
    teardown();
}

static void
test_delete_during_upload_waits_for_the_uid(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX", 1);
    int64_t id;
    CHECK(local_item_create(st, inbox, "n.eml", 100, &id) == STORE_OK);
    CHECK(local_item_content(st, id, 20, 100, "<n@x>") == STORE_OK);
    /* The sync thread takes the upload. */
    struct journal_entry up = first_entry();
    up.state = JOURNAL_INFLIGHT;
    CHECK(journal_update(st, &up) == STORE_OK);
    /* Meanwhile: a new version, a flag change, then rm. */
    CHECK(local_item_content(st, id, 22, 100, "<n@x>") == STORE_OK);
    CHECK(local_item_flags(st, id, "flagged") == STORE_OK);
    CHECK_OPS("append,replace,flags");
    CHECK(local_item_delete(st, id) == STORE_OK);
    CHECK_OPS("append,delete");
    /* The upload completes with UID 77: the delete learns it. */
    CHECK(journal_fill_uid(st, id, "INBOX", 77, 1) == STORE_OK);
    struct journal_entry del;
    CHECK(journal_next(st, up.id, ~0u, &del) == STORE_OK);
    CHECK(del.op == JOURNAL_DELETE && del.uid == 77 && del.uidvalidity == 1);
    CHECK_STR(del.src, "INBOX");
    journal_entry_clear(&del);
    journal_entry_clear(&up);
    teardown();
}

static void
test_flags_coalesce(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX", 1);
    int64_t id = synced(inbox, 4, "a.eml");
    CHECK(local_item_flags(st, id, "seen") == STORE_OK);
    CHECK(local_item_flags(st, id, "seen flagged") == STORE_OK);
    CHECK_OPS("flags");
    struct journal_entry e = first_entry();
    CHECK_STR(e.arg, "seen flagged");
    CHECK_STR(e.base, "7"); /* the MODSEQ the change was based on */
    CHECK(e.uid == 4);
    journal_entry_clear(&e);
    char *fl;
    CHECK(store_item_flags(st, id, &fl) == STORE_OK);
    CHECK_STR(fl, "seen flagged");
    free(fl);
    teardown();
}

static void
test_rename_over_replaces_the_target(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX", 1);
    int64_t a = synced(inbox, 1, "a.eml");
    int64_t b = synced(inbox, 2, "b.eml");
    CHECK(local_item_rename(st, a, inbox, "b.eml", false) == STORE_EXISTS);
    CHECK_OPS("");
    CHECK(local_item_rename(st, a, inbox, "b.eml", true) == STORE_OK);
    CHECK_OPS("delete");
    struct journal_entry e = first_entry();
    CHECK(e.uid == 2);
    journal_entry_clear(&e);
    struct store_item it;
    CHECK(store_item_get(st, b, &it) == STORE_NOTFOUND);
    CHECK(store_item_lookup(st, inbox, "b.eml", &it) == STORE_OK && it.id == a);
    teardown();
}

static void
test_empty_content_stays_local(void)
{
    setup();
    int64_t inbox = folder(0, "Inbox", "INBOX", 1);
    int64_t id = synced(inbox, 5, "a.eml");
    CHECK(local_item_content(st, id, 0, 100, NULL) == STORE_OK);
    CHECK_OPS("");
    struct store_item it;
    CHECK(store_item_get(st, id, &it) == STORE_OK && it.state == STORE_ITEM_LOCAL);
    CHECK(local_item_content(st, id, 10, 100, NULL) == STORE_OK);
    CHECK_OPS("replace");
    teardown();
}

static void
test_folders(void)
{
    setup();
    folder(0, "Inbox", "INBOX", 1);
    int64_t arch = folder(0, "Archive", "Archive", 2);
    int64_t y25 = folder(arch, "2025", "Archive/2025", 3);
    int64_t id;
    CHECK(local_folder_create(st, arch, "Entwürfe", &id) == STORE_OK);
    struct store_folder f;
    CHECK(store_folder_get(st, id, &f) == STORE_OK);
    CHECK_STR(f.server_name, "Archive/Entw&APw-rfe");
    CHECK(f.local_only);
    store_folder_clear(&f);
    CHECK_OPS("mkdir");
    CHECK(local_folder_delete(st, id) == STORE_OK);
    CHECK_OPS(""); /* never created there */
    CHECK(local_folder_create(st, arch, "a/b", &id) == STORE_INVALID);
    CHECK(local_folder_create(st, 0, "Archive", &id) == STORE_EXISTS);
    /* Rename: the children's server names follow. */
    CHECK(local_folder_rename(st, arch, 0, "Old", false) == STORE_OK);
    CHECK_OPS("rename");
    CHECK(store_folder_get(st, y25, &f) == STORE_OK);
    CHECK_STR(f.server_name, "Old/2025");
    store_folder_clear(&f);
    CHECK(local_folder_rename(st, arch, y25, "x", false) == STORE_INVALID);
    synced(y25, 1, "m.eml");
    CHECK(local_folder_delete(st, y25) == STORE_EXISTS);
    teardown();
}

int
main(void)
{
    RUN(test_create_then_content_queues_one_append);
    RUN(test_create_and_delete_before_sending_costs_nothing);
    RUN(test_edit_then_delete_of_a_server_message);
    RUN(test_rename_is_local_move_is_not);
    RUN(test_move_then_delete_deletes_at_the_source);
    RUN(test_delete_during_upload_waits_for_the_uid);
    RUN(test_flags_coalesce);
    RUN(test_rename_over_replaces_the_target);
    RUN(test_empty_content_stays_local);
    RUN(test_folders);
    return check_done();
}
