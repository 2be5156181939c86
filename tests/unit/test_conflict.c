/* test_conflict: the conflict module (store/conflict.c, DESIGN section 6)
 * and the restore and discard paths of store/local.c that act on its
 * copies: how a copy in Conflicts/ is named, that it holds the user's bytes
 * (a hard link that outlives the original being replaced), the notice and
 * its name, dropping a folder while keeping only what changed in it, and a
 * copy moved back (mail: flags only, or the whole message; events). */
#include "check.h"

#include "common/util.h"
#include "store/conflict.h"
#include "store/journal.h"
#include "store/local.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *dir;
static struct store *st;

static void
setup(void)
{
    char tmpl[] = "/tmp/mailfs-conflict-XXXXXX";
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
    char *cmd = xasprintf("rm -rf '%.*s'", (int)(strrchr(dir, '/') - dir), dir);
    (void)!system(cmd);
    free(cmd);
    free(dir);
}

static int64_t
folder_of(enum store_kind kind, int64_t parent, const char *name, const char *server,
          uint32_t uidvalidity)
{
    struct store_folder f;
    memset(&f, 0, sizeof f);
    f.parent_id = parent;
    f.kind = kind;
    snprintf(f.name, sizeof f.name, "%s", name);
    f.server_name = (char *)server;
    f.delimiter = kind == STORE_KIND_MAIL ? '/' : 0;
    f.selectable = true;
    CHECK(store_folder_add(st, &f) == STORE_OK);
    f.uidvalidity = uidvalidity;
    f.server_name = NULL;
    CHECK(store_folder_update_sync(st, &f) == STORE_OK);
    return f.id;
}

static int64_t
mail_folder(int64_t parent, const char *name, const char *server)
{
    return folder_of(STORE_KIND_MAIL, parent, name, server, 42);
}

/* An item that came from the server, with these bytes and flags. */
static int64_t
synced(int64_t fid, uint32_t uid, const char *name, const char *content, const char *flags)
{
    struct store_item_new n = {.folder_id = fid, .uid = uid, .modseq = 7, .wanted_name = name,
                               .flags = flags, .message_id = "<m@x>", .content = content,
                               .size = strlen(content), .date = 1000};
    int64_t id = 0;
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_add(st, &n, &id, NULL) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    return id;
}

/* A DAV item from the server at href with etag. */
static int64_t
dav_item(int64_t fid, const char *name, const char *content, const char *href,
         const char *etag)
{
    int64_t id = synced(fid, 0, name, content, NULL);
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_set_dav(st, id, href, etag) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    return id;
}

/* conflict_keep_item in its own transaction; the copy's id. */
static int64_t
keep(int64_t item, char name_out[NAMES_MAX + 1])
{
    int64_t copy = 0;
    name_out[0] = '\0';
    CHECK(store_begin(st) == STORE_OK);
    enum store_status r = conflict_keep_item(st, item, &copy, name_out);
    CHECK(r == STORE_OK);
    if (r == STORE_OK) {
        CHECK(store_commit(st) == STORE_OK);
    } else {
        printf("# conflict_keep_item: %s\n", store_errmsg(st));
        store_rollback(st);
    }
    CHECK(copy > 0);
    return copy;
}

static char *
content(int64_t id)
{
    size_t len = 0;
    char *c = store_content_read(st, id, 1 << 20, &len);
    if (!c)
        return xstrdup("(none)");
    char *s = xasprintf("%.*s", (int)len, c);
    free(c);
    return s;
}

#define CHECK_CONTENT(id, want)                                                          \
    do {                                                                                 \
        char *got_ = content(id);                                                        \
        CHECK_STR(got_, want);                                                           \
        free(got_);                                                                      \
    } while (0)

static char *
origin_of(int64_t id)
{
    char *o = NULL;
    CHECK(conflict_origin(st, id, &o) == STORE_OK);
    return o;
}

#define CHECK_ORIGIN(id, want)                                                           \
    do {                                                                                 \
        char *got_ = origin_of(id);                                                      \
        CHECK_STR(got_, want);                                                           \
        free(got_);                                                                      \
    } while (0)

static char *
flags_of(int64_t id)
{
    char *f = NULL;
    CHECK(store_item_flags(st, id, &f) == STORE_OK);
    return f ? f : xstrdup("(null)");
}

#define CHECK_FLAGS(id, want)                                                            \
    do {                                                                                 \
        char *got_ = flags_of(id);                                                       \
        CHECK_STR(got_, want);                                                           \
        free(got_);                                                                      \
    } while (0)

/* The ops of the journal in order ("append,delete"). */
static char *
ops(void)
{
    char buf[1024] = "";
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

#define CHECK_OPS(want)                                                                  \
    do {                                                                                 \
        char *got_ = ops();                                                              \
        CHECK_STR(got_, want);                                                           \
        free(got_);                                                                      \
    } while (0)

static void
clear_journal(void)
{
    struct journal_entry e;
    CHECK(store_begin(st) == STORE_OK);
    while (journal_next(st, 0, ~0u, &e) == STORE_OK) {
        CHECK(journal_remove(st, e.id) == STORE_OK);
        journal_entry_clear(&e);
    }
    CHECK(store_commit(st) == STORE_OK);
}

struct names {
    char v[32][NAMES_MAX + 1];
    int64_t ids[32];
    size_t n;
};

static int
names_cb(void *ctx, const struct store_dirent *e)
{
    struct names *nm = ctx;
    if (nm->n < 32) {
        snprintf(nm->v[nm->n], NAMES_MAX + 1, "%s", e->name);
        nm->ids[nm->n] = store_ino_id(e->ino);
        nm->n++;
    }
    return 0;
}

static struct names
list(int64_t folder_id)
{
    struct names nm;
    memset(&nm, 0, sizeof nm);
    CHECK(store_dir_list(st, folder_id, 0, names_cb, &nm) == STORE_OK);
    return nm;
}

static int64_t
conflicts_folder(void)
{
    int64_t id = 0;
    CHECK(store_begin(st) == STORE_OK);
    CHECK(conflict_folder(st, &id) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    return id;
}

static bool
folder_exists(int64_t id)
{
    struct store_folder f;
    if (store_folder_get(st, id, &f) != STORE_OK)
        return false;
    store_folder_clear(&f);
    return true;
}

static bool
item_exists(int64_t id)
{
    struct store_item it;
    return store_item_get(st, id, &it) == STORE_OK;
}

static enum store_item_state
state_of(int64_t id)
{
    struct store_item it;
    memset(&it, 0, sizeof it);
    it.state = (enum store_item_state)-1;
    CHECK(store_item_get(st, id, &it) == STORE_OK);
    return it.state;
}

/* ---- naming ---- */

static void
test_copy_names_same_then_from_folder_then_variants(void)
{
    setup();
    int64_t inbox = mail_folder(0, "Inbox", "INBOX");
    int64_t archive = mail_folder(0, "Archive", "Archive");
    int64_t y2025 = mail_folder(archive, "2025", "Archive/2025");
    int64_t a = synced(inbox, 1, "2026-01-02 03.04 Hello.eml", "A", "seen");
    int64_t b = synced(y2025, 2, "2026-01-02 03.04 Hello.eml", "B", "");
    int64_t c = synced(y2025, 3, "2026-01-02 03.04 Hello (2).eml", "C", "");
    int64_t d = synced(archive, 4, "2026-01-02 03.04 Hello.eml", "D", "flagged");
    int64_t cf = conflicts_folder();
    char n1[NAMES_MAX + 1], n2[NAMES_MAX + 1], n3[NAMES_MAX + 1], n4[NAMES_MAX + 1];
    char n5[NAMES_MAX + 1];
    int64_t c1 = keep(a, n1);
    int64_t c2 = keep(b, n2);
    int64_t c3 = keep(b, n3); /* the same item a second time */
    int64_t c4 = keep(d, n4);
    int64_t c5 = keep(c, n5);
    /* its own name first */
    CHECK_STR(n1, "2026-01-02 03.04 Hello.eml");
    /* taken: "NAME (from FOLDER)", the path's '/' made safe, the extension last */
    CHECK_STR(n2, "2026-01-02 03.04 Hello (from Archive\xef\xbc\x8f" "2025).eml");
    /* that taken too: " (2)" */
    CHECK_STR(n3, "2026-01-02 03.04 Hello (from Archive\xef\xbc\x8f" "2025) (2).eml");
    CHECK_STR(n4, "2026-01-02 03.04 Hello (from Archive).eml");
    /* a name free in Conflicts/ is kept, even one that looks like a variant */
    CHECK_STR(n5, "2026-01-02 03.04 Hello (2).eml");
    struct names nm = list(cf);
    CHECK(nm.n == 5);
    /* every copy: state conflict, origin the path it had, its flags, its bytes */
    CHECK(state_of(c1) == STORE_ITEM_CONFLICT && state_of(c2) == STORE_ITEM_CONFLICT);
    CHECK_ORIGIN(c1, "Inbox/2026-01-02 03.04 Hello.eml");
    CHECK_ORIGIN(c2, "Archive/2025/2026-01-02 03.04 Hello.eml");
    CHECK_ORIGIN(c4, "Archive/2026-01-02 03.04 Hello.eml");
    CHECK_ORIGIN(c5, "Archive/2025/2026-01-02 03.04 Hello (2).eml");
    CHECK_FLAGS(c1, "seen");
    CHECK_FLAGS(c4, "flagged");
    CHECK_CONTENT(c1, "A");
    CHECK_CONTENT(c2, "B");
    CHECK_CONTENT(c3, "B");
    CHECK_CONTENT(c5, "C");
    /* what a restore needs */
    int64_t of = 0;
    enum store_kind kind = 0;
    bool notice = true;
    CHECK(conflict_info(st, c2, &of, &kind, &notice) == STORE_OK);
    CHECK(of == b && kind == STORE_KIND_MAIL && !notice);
    /* the originals are untouched; nothing is queued for a server */
    CHECK(item_exists(a) && item_exists(b) && item_exists(d));
    CHECK(state_of(a) == STORE_ITEM_SYNCED);
    CHECK_OPS("");
    /* a plain item has no origin */
    char *o = (char *)"x";
    CHECK(conflict_origin(st, a, &o) == STORE_OK);
    CHECK(o == NULL);
    free(o);
    /* one Conflicts folder, at the top */
    int64_t again = 0;
    CHECK(store_begin(st) == STORE_OK);
    CHECK(conflict_folder(st, &again) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    CHECK(again == cf);
    char *path = conflict_folder_path(st, y2025);
    CHECK_STR(path, "Archive/2025");
    free(path);
    path = conflict_folder_path(st, 0);
    CHECK_STR(path, "");
    free(path);
    teardown();
}

static void
test_copy_of_a_long_name_is_cut_to_fit(void)
{
    setup();
    int64_t cal = folder_of(STORE_KIND_EVENTS, 0, "Calendar", "/u/cal/", 0);
    int64_t team = folder_of(STORE_KIND_EVENTS, cal, "Team", "/u/team/", 0);
    /* a name at the limit: the "(from ...)" form is cut to fit, keeps .ics */
    char longname[NAMES_MAX + 1];
    memset(longname, 'x', 251);
    memcpy(longname + 251, ".ics", 5);
    int64_t e1 = dav_item(cal, longname, "E1", "/u/cal/e1.ics", "\"1\"");
    int64_t e2 = dav_item(team, longname, "E2", "/u/team/e2.ics", "\"2\"");
    char n1[NAMES_MAX + 1], n2[NAMES_MAX + 1];
    keep(e1, n1);
    int64_t c2 = keep(e2, n2);
    CHECK_STR(n1, longname);
    CHECK(strlen(n2) <= NAMES_MAX);
    CHECK(strstr(n2, " (from Calendar\xef\xbc\x8fTeam).ics") != NULL);
    CHECK(strlen(n2) > 4 && strcmp(n2 + strlen(n2) - 4, ".ics") == 0);
    char want[NAMES_MAX + 32];
    snprintf(want, sizeof want, "Calendar/Team/%s", longname);
    CHECK_ORIGIN(c2, want);
    int64_t of = 0;
    enum store_kind kind = 0;
    bool notice = true;
    CHECK(conflict_info(st, c2, &of, &kind, &notice) == STORE_OK);
    CHECK(of == e2 && kind == STORE_KIND_EVENTS && !notice);
    teardown();
}

/* ---- content ---- */

static void
test_copy_is_a_link_that_outlives_a_replace(void)
{
    setup();
    int64_t inbox = mail_folder(0, "Inbox", "INBOX");
    int64_t a = synced(inbox, 1, "a.eml", "Subject: mine\r\n\r\nthe user's version\r\n", "");
    char name[NAMES_MAX + 1];
    int64_t c = keep(a, name);
    char pa[4096], pc[4096];
    store_content_path(st, a, pa, sizeof pa);
    store_content_path(st, c, pc, sizeof pc);
    struct stat sa, sc;
    CHECK(stat(pa, &sa) == 0 && stat(pc, &sc) == 0);
    CHECK(sa.st_ino == sc.st_ino); /* a hard link, not a second copy of the bytes */
    struct store_item it;
    CHECK(store_item_get(st, c, &it) == STORE_OK);
    CHECK(it.size == (int64_t)strlen("Subject: mine\r\n\r\nthe user's version\r\n"));
    /* the server's version takes the original's place */
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_set_server_content(st, a, "Subject: theirs\r\n\r\nserver\r\n", 27, -1) ==
          STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    CHECK_CONTENT(a, "Subject: theirs\r\n\r\nserver\r\n");
    CHECK_CONTENT(c, "Subject: mine\r\n\r\nthe user's version\r\n");
    /* and goes: the copy stays */
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_remove(st, a) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    CHECK_CONTENT(c, "Subject: mine\r\n\r\nthe user's version\r\n");
    int64_t of = -1;
    enum store_kind kind = 0;
    bool notice = true;
    CHECK(conflict_info(st, c, &of, &kind, &notice) == STORE_OK);
    CHECK(of == 0); /* the original is gone */
    CHECK(kind == STORE_KIND_MAIL);
    teardown();
}

static void
test_copy_takes_the_newest_bytes_a_staged_draft(void)
{
    setup();
    int64_t inbox = mail_folder(0, "Inbox", "INBOX");
    int64_t a = synced(inbox, 1, "a.eml", "old", "");
    /* new content written and synced to the staged file, not yet in place */
    char staged[4096];
    store_content_staged_path(st, a, staged, sizeof staged);
    FILE *f = fopen(staged, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("newest", f);
        fclose(f);
    }
    CHECK(local_item_content(st, a, 6, 1000, "<m@x>") == STORE_OK);
    char name[NAMES_MAX + 1];
    int64_t c = keep(a, name);
    CHECK_CONTENT(c, "newest");
    teardown();
}

static void
test_note_copy_keeps_its_properties(void)
{
    setup();
    int64_t notes = folder_of(STORE_KIND_NOTES, 0, "Notes", "/u/cal/", 0);
    int64_t n = dav_item(notes, "Todo.txt", "my text\n", "/u/cal/n.ics", "\"1\"");
    const char *ics = "BEGIN:VCALENDAR\r\nBEGIN:VJOURNAL\r\nUID:n\r\nCATEGORIES:keep\r\n"
                      "DESCRIPTION:base\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n";
    CHECK(store_sidecar_write(st, n, ics, strlen(ics)) == 0);
    char name[NAMES_MAX + 1];
    int64_t c = keep(n, name);
    CHECK_STR(name, "Todo.txt");
    CHECK_CONTENT(c, "my text\n");
    size_t len = 0;
    char *side = store_sidecar_read(st, c, &len);
    CHECK(side != NULL && len == strlen(ics) && memcmp(side, ics, len) == 0);
    free(side);
    /* the server's properties replace the original's: the copy keeps its own */
    const char *theirs = "BEGIN:VCALENDAR\r\nBEGIN:VJOURNAL\r\nUID:n\r\nDESCRIPTION:server"
                         "\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n";
    CHECK(store_sidecar_write(st, n, theirs, strlen(theirs)) == 0);
    side = store_sidecar_read(st, c, &len);
    CHECK(side != NULL && len == strlen(ics) && memcmp(side, ics, len) == 0);
    free(side);
    teardown();
}

/* ---- the notice ---- */

/* The notice in folder `box` (the only item there), its id. */
static int64_t
only_item(int64_t box, char name[NAMES_MAX + 1])
{
    struct names nm = list(box);
    CHECK(nm.n == 1);
    if (nm.n < 1)
        return 0;
    snprintf(name, NAMES_MAX + 1, "%s", nm.v[0]);
    return nm.ids[0];
}

static void
test_notice_name_and_content(void)
{
    setup();
    int64_t inbox = mail_folder(0, "Inbox", "INBOX");
    int64_t before = time(NULL);
    CHECK(store_begin(st) == STORE_OK);
    CHECK(conflict_notice(st, "Calendar/Team/2026-01-05 10.00 Stand'up.ics",
                          "it was changed on the server after you changed it here; the "
                          "server's version is in place",
                          "2026-01-05 10.00 Stand'up.ics") == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    int64_t after = time(NULL);
    char name[NAMES_MAX + 1] = "";
    int64_t id = only_item(inbox, name);
    /* "YYYY-MM-DD HH.MM Synchronization conflict: NAME (FOLDER).eml", local time */
    char stamp[32], stamp2[32];
    struct tm tm;
    time_t t = (time_t)before;
    localtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H.%M", &tm);
    t = (time_t)after;
    localtime_r(&t, &tm);
    strftime(stamp2, sizeof stamp2, "%Y-%m-%d %H.%M", &tm);
    const char *rest = " Synchronization conflict: 2026-01-05 10.00 Stand'up "
                       "(Calendar\xef\xbc\x8fTeam).eml";
    char *want1 = xasprintf("%s%s", stamp, rest), *want2 = xasprintf("%s%s", stamp2, rest);
    CHECK(strcmp(name, want1) == 0 || strcmp(name, want2) == 0);
    if (strcmp(name, want1) != 0 && strcmp(name, want2) != 0)
        printf("# notice name: \"%s\", want \"%s\"\n", name, want1);
    free(want1);
    free(want2);
    CHECK(state_of(id) == STORE_ITEM_LOCAL);
    int64_t of = -1;
    enum store_kind kind = -1;
    bool notice = false;
    CHECK(conflict_info(st, id, &of, &kind, &notice) == STORE_OK);
    CHECK(notice && of == 0);
    char *body = content(id);
    CHECK(strstr(body, "\r\nSubject: Synchronization conflict: 2026-01-05 10.00 Stand'up "
                       "(Calendar/Team)\r\n") != NULL);
    CHECK(strncmp(body, "From: ", 6) == 0);
    CHECK(strstr(body, "\r\nDate: ") != NULL && strstr(body, "\r\nMessage-ID: <") != NULL);
    CHECK(strstr(body, "Calendar/Team/2026-01-05 10.00 Stand'up.ics was changed both here "
                       "and on the server") != NULL);
    CHECK(strstr(body, "What happened: it was changed on the server after you changed it "
                       "here; the server's version is in place") != NULL);
    CHECK(strstr(body, "Your version is kept in Conflicts/2026-01-05 10.00 Stand'up.ics") !=
          NULL);
    /* commands to paste, quoted for a shell */
    CHECK(strstr(body, "mv 'Conflicts/2026-01-05 10.00 Stand'\\''up.ics' 'Calendar/Team/'") !=
          NULL);
    CHECK(strstr(body, "rm 'Conflicts/2026-01-05 10.00 Stand'\\''up.ics'") != NULL);
    CHECK(strstr(body, "never sends it to the server") != NULL);
    free(body);
    CHECK_OPS(""); /* never sent */
    teardown();
}

static void
test_notice_without_copy_and_at_the_top(void)
{
    setup();
    int64_t inbox = mail_folder(0, "Inbox", "INBOX");
    CHECK(store_begin(st) == STORE_OK);
    CHECK(conflict_notice(st, "Work", "the folder was removed on the server", NULL) ==
          STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    char name[NAMES_MAX + 1] = "";
    int64_t id = only_item(inbox, name);
    CHECK(strstr(name, " Synchronization conflict: Work.eml") != NULL);
    char *body = content(id);
    CHECK(strstr(body, "Subject: Synchronization conflict: Work\r\n") != NULL);
    CHECK(strstr(body, "What happened: the folder was removed on the server") != NULL);
    CHECK(strstr(body, "mv ") == NULL && strstr(body, "rm ") == NULL);
    free(body);
    teardown();
}

static void
test_notice_is_local_only_whatever_the_user_does(void)
{
    setup();
    int64_t inbox = mail_folder(0, "Inbox", "INBOX");
    int64_t work = mail_folder(0, "Work", "Work");
    CHECK(store_begin(st) == STORE_OK);
    CHECK(conflict_notice(st, "Inbox/x.eml", "something", "x.eml") == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    char name[NAMES_MAX + 1] = "";
    int64_t id = only_item(inbox, name);
    /* flags, new content, a rename, a move: nothing for the server */
    CHECK(local_item_flags(st, id, "seen flagged") == STORE_OK);
    CHECK_FLAGS(id, "seen flagged");
    char staged[4096];
    store_content_staged_path(st, id, staged, sizeof staged);
    FILE *f = fopen(staged, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("Subject: edited\r\n\r\nedited\r\n", f);
        fclose(f);
    }
    CHECK(local_item_content(st, id, 27, 1000, NULL) == STORE_OK);
    CHECK(store_content_commit_staged(st, id) == 0);
    CHECK(local_item_content_placed(st, id) == STORE_OK);
    CHECK_OPS("");
    CHECK(state_of(id) == STORE_ITEM_LOCAL);
    CHECK(local_item_rename(st, id, inbox, "renamed.eml", false) == STORE_OK);
    CHECK_OPS("");
    CHECK(local_item_rename(st, id, work, "renamed.eml", false) == STORE_OK);
    CHECK_OPS("");
    CHECK(local_item_delete(st, id) == STORE_OK);
    CHECK_OPS("");
    CHECK(!item_exists(id));
    teardown();
}

static void
test_no_notice_without_mail(void)
{
    setup();
    int64_t cal = folder_of(STORE_KIND_EVENTS, 0, "Calendar", "/u/cal/", 0);
    int64_t e = dav_item(cal, "e.ics", "E", "/u/cal/e.ics", "\"1\"");
    char name[NAMES_MAX + 1];
    int64_t c = keep(e, name); /* the copy is kept all the same */
    CHECK(c > 0);
    CHECK(store_begin(st) == STORE_OK);
    CHECK(conflict_notice(st, "Calendar/e.ics", "x", name) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    struct names nm = list(cal);
    CHECK(nm.n == 1); /* only the event */
    int64_t cf = conflicts_folder();
    nm = list(cf);
    CHECK(nm.n == 1);
    teardown();
}

/* ---- a folder removed on the server ---- */

static void
test_drop_folder_keeps_only_what_changed(void)
{
    setup();
    int64_t inbox = mail_folder(0, "Inbox", "INBOX");
    int64_t work = mail_folder(0, "Work", "Work");
    int64_t sub = mail_folder(work, "Sub", "Work/Sub");
    int64_t a = synced(work, 1, "a.eml", "A", "");        /* unchanged */
    int64_t b = synced(work, 2, "b.eml", "B", "");        /* flags changed here */
    int64_t d = synced(sub, 3, "d.eml", "D-old", "");     /* edited here */
    int64_t e = synced(sub, 4, "e.eml", "E", "seen");     /* unchanged */
    CHECK(local_item_flags(st, b, "flagged") == STORE_OK);
    int64_t c = 0;
    CHECK(local_item_create(st, work, "c.eml", 1000, &c) == STORE_OK); /* new here */
    char staged[4096];
    store_content_staged_path(st, c, staged, sizeof staged);
    FILE *f = fopen(staged, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("C-new", f);
        fclose(f);
    }
    CHECK(local_item_content(st, c, 5, 1000, NULL) == STORE_OK);
    CHECK(store_content_commit_staged(st, c) == 0);
    CHECK(local_item_content_placed(st, c) == STORE_OK);
    store_content_staged_path(st, d, staged, sizeof staged);
    f = fopen(staged, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("D-new", f);
        fclose(f);
    }
    CHECK(local_item_content(st, d, 5, 1000, "<m@x>") == STORE_OK);
    CHECK(store_content_commit_staged(st, d) == 0);
    CHECK(local_item_content_placed(st, d) == STORE_OK);
    CHECK_OPS("flags,append,replace");

    unsigned kept = 99;
    CHECK(store_begin(st) == STORE_OK);
    CHECK(conflict_drop_folder(st, work, &kept) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    CHECK(kept == 3);
    CHECK(!folder_exists(work) && !folder_exists(sub));
    CHECK(!item_exists(a) && !item_exists(b) && !item_exists(c) && !item_exists(d) &&
          !item_exists(e));
    CHECK_OPS(""); /* the changes went with the folder; the copies are local */
    int64_t cf = conflicts_folder();
    struct names nm = list(cf);
    CHECK(nm.n == 3);
    bool sb = false, sc = false, sd = false;
    for (size_t i = 0; i < nm.n; i++) {
        char *o = origin_of(nm.ids[i]);
        CHECK(state_of(nm.ids[i]) == STORE_ITEM_CONFLICT);
        if (strcmp(nm.v[i], "b.eml") == 0) {
            sb = true;
            CHECK_STR(o, "Work/b.eml");
            CHECK_FLAGS(nm.ids[i], "flagged");
            CHECK_CONTENT(nm.ids[i], "B");
        } else if (strcmp(nm.v[i], "c.eml") == 0) {
            sc = true;
            CHECK_STR(o, "Work/c.eml");
            CHECK_CONTENT(nm.ids[i], "C-new");
        } else if (strcmp(nm.v[i], "d.eml") == 0) {
            sd = true;
            CHECK_STR(o, "Work/Sub/d.eml");
            CHECK_CONTENT(nm.ids[i], "D-new");
        } else {
            printf("# unexpected copy %s\n", nm.v[i]);
            CHECK(0);
        }
        free(o);
    }
    CHECK(sb && sc && sd);
    /* one notice, about the folder */
    char name[NAMES_MAX + 1] = "";
    int64_t n = only_item(inbox, name);
    CHECK(strstr(name, "Synchronization conflict: Work.eml") != NULL);
    char *body = content(n);
    CHECK(strstr(body, "3 items") != NULL);
    CHECK(strstr(body, "Conflicts/") != NULL);
    free(body);
    teardown();
}

static void
test_drop_unchanged_folder_is_quiet(void)
{
    setup();
    int64_t inbox = mail_folder(0, "Inbox", "INBOX");
    int64_t work = mail_folder(0, "Work", "Work");
    int64_t a = synced(work, 1, "a.eml", "A", "");
    unsigned kept = 99;
    CHECK(store_begin(st) == STORE_OK);
    CHECK(conflict_drop_folder(st, work, &kept) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    CHECK(kept == 0);
    CHECK(!folder_exists(work) && !item_exists(a));
    CHECK(list(inbox).n == 0); /* no notice */
    int64_t cf = conflicts_folder();
    CHECK(list(cf).n == 0);
    teardown();
}

static void
test_drop_collection_keeps_edited_events(void)
{
    setup();
    mail_folder(0, "Inbox", "INBOX");
    int64_t cal = folder_of(STORE_KIND_EVENTS, 0, "Calendar", "/u/cal/", 0);
    int64_t team = folder_of(STORE_KIND_EVENTS, cal, "Team", "/u/team/", 0);
    int64_t x = dav_item(team, "x.ics", "X-old", "/u/team/x.ics", "\"1\"");
    int64_t y = dav_item(team, "y.ics", "Y", "/u/team/y.ics", "\"1\"");
    char staged[4096];
    store_content_staged_path(st, x, staged, sizeof staged);
    FILE *f = fopen(staged, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("X-new", f);
        fclose(f);
    }
    CHECK(local_item_content(st, x, 5, 1000, NULL) == STORE_OK);
    CHECK(store_content_commit_staged(st, x) == 0);
    CHECK(local_item_content_placed(st, x) == STORE_OK);
    unsigned kept = 0;
    CHECK(store_begin(st) == STORE_OK);
    CHECK(conflict_drop_folder(st, team, &kept) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    CHECK(kept == 1);
    CHECK(!folder_exists(team) && folder_exists(cal) && !item_exists(y));
    CHECK_OPS("");
    struct names nm = list(conflicts_folder());
    CHECK(nm.n == 1);
    if (nm.n == 1) {
        CHECK_STR(nm.v[0], "x.ics");
        CHECK_ORIGIN(nm.ids[0], "Calendar/Team/x.ics");
        CHECK_CONTENT(nm.ids[0], "X-new");
        int64_t of = -1;
        enum store_kind kind = 0;
        bool notice = true;
        CHECK(conflict_info(st, nm.ids[0], &of, &kind, &notice) == STORE_OK);
        CHECK(kind == STORE_KIND_EVENTS && of == 0 && !notice);
    }
    teardown();
}

/* ---- restore and discard through local.c ---- */

static void
test_restore_mail_flags_only_sets_flags_on_the_same_uid(void)
{
    setup();
    int64_t inbox = mail_folder(0, "Inbox", "INBOX");
    int64_t a = synced(inbox, 9, "a.eml", "Subject: x\r\n\r\nsame bytes\r\n", "");
    /* the user's flags ... */
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_set_flags(st, a, "seen $Mine", 7) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    char name[NAMES_MAX + 1];
    int64_t c = keep(a, name);
    /* ... lost to the server's (a newer MODSEQ) */
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_set_flags(st, a, "flagged", 12) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    CHECK_FLAGS(c, "seen $Mine");
    CHECK_OPS("");
    int64_t cf = conflicts_folder();
    /* mv Conflicts/a.eml Inbox/ (over the server's version) */
    enum store_status r = local_item_rename(st, c, inbox, "a.eml", true);
    CHECK(r == STORE_OK);
    if (r != STORE_OK)
        printf("# rename: %s\n", store_errmsg(st));
    CHECK(!item_exists(c));      /* the copy went into the message */
    CHECK(list(cf).n == 0);
    CHECK(item_exists(a));
    struct store_item it;
    CHECK(store_item_get(st, a, &it) == STORE_OK);
    CHECK(it.uid == 9 && it.folder_id == inbox);
    CHECK_STR(it.name, "a.eml");
    CHECK(it.state == STORE_ITEM_PENDING);
    CHECK_FLAGS(a, "seen $Mine");
    CHECK_CONTENT(a, "Subject: x\r\n\r\nsame bytes\r\n");
    CHECK_OPS("flags"); /* no APPEND, no DELETE: the same message */
    struct journal_entry e;
    memset(&e, 0, sizeof e);
    CHECK(journal_next(st, 0, ~0u, &e) == STORE_OK);
    CHECK(e.op == JOURNAL_FLAGS && e.uid == 9 && e.item_id == a && e.uidvalidity == 42);
    CHECK_STR(e.src, "INBOX");
    CHECK_STR(e.arg, "seen $Mine");
    /* whatever the server's MODSEQ is now: no UNCHANGEDSINCE that could fail */
    CHECK(e.base == NULL || strcmp(e.base, "0") == 0);
    journal_entry_clear(&e);
    teardown();
}

static void
test_restore_mail_content_replaces_the_servers_message(void)
{
    setup();
    int64_t inbox = mail_folder(0, "Inbox", "INBOX");
    int64_t work = mail_folder(0, "Work", "Work");
    int64_t a = synced(inbox, 9, "a.eml", "Subject: x\r\n\r\nmine\r\n", "seen");
    char name[NAMES_MAX + 1];
    int64_t c = keep(a, name);
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_set_server_content(st, a, "Subject: x\r\n\r\ntheirs\r\n", 21, -1) ==
          STORE_OK);
    CHECK(store_item_set_flags(st, a, "flagged", 30) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    /* not over an existing file without replace */
    CHECK(local_item_rename(st, c, inbox, "a.eml", false) == STORE_EXISTS);
    CHECK(item_exists(c) && item_exists(a));
    CHECK_OPS("");
    /* to a folder of another kind: refused, nothing changes */
    int64_t cal = folder_of(STORE_KIND_EVENTS, 0, "Calendar", "/u/cal/", 0);
    CHECK(local_item_rename(st, c, cal, "a.eml", false) == STORE_INVALID);
    CHECK(item_exists(c) && state_of(c) == STORE_ITEM_CONFLICT);
    CHECK_ORIGIN(c, "Inbox/a.eml");
    CHECK_OPS("");
    /* mv Conflicts/a.eml Inbox/ */
    enum store_status r = local_item_rename(st, c, inbox, "a.eml", true);
    CHECK(r == STORE_OK);
    if (r != STORE_OK)
        printf("# rename: %s\n", store_errmsg(st));
    CHECK(!item_exists(a)); /* the server's version makes way ... */
    struct store_item it;
    CHECK(store_item_get(st, c, &it) == STORE_OK);
    CHECK(it.folder_id == inbox && it.uid == 0 && it.state == STORE_ITEM_PENDING);
    CHECK_STR(it.name, "a.eml");
    CHECK_CONTENT(c, "Subject: x\r\n\r\nmine\r\n");
    CHECK_FLAGS(c, "seen");
    char *o = (char *)"x";
    CHECK(conflict_origin(st, c, &o) == STORE_OK);
    CHECK(o == NULL); /* no longer a copy */
    free(o);
    CHECK_OPS("delete,append"); /* ... on the server too, and ours is uploaded */
    struct journal_entry e;
    memset(&e, 0, sizeof e);
    CHECK(journal_next(st, 0, ~0u, &e) == STORE_OK);
    CHECK(e.op == JOURNAL_DELETE && e.uid == 9);
    CHECK_STR(e.src, "INBOX");
    /* unconditional: the user chose to replace whatever the server has now */
    CHECK(e.base == NULL);
    int64_t after = e.id;
    journal_entry_clear(&e);
    CHECK(journal_next(st, after, ~0u, &e) == STORE_OK);
    CHECK(e.op == JOURNAL_APPEND && e.item_id == c && e.folder_id == inbox);
    journal_entry_clear(&e);
    (void)work;
    teardown();
}

static void
test_restore_mail_under_another_name_and_elsewhere(void)
{
    setup();
    int64_t inbox = mail_folder(0, "Inbox", "INBOX");
    int64_t work = mail_folder(0, "Work", "Work");
    int64_t a = synced(inbox, 9, "a.eml", "mine", "");
    int64_t b = synced(inbox, 10, "b.eml", "mine too", "");
    char name[NAMES_MAX + 1];
    int64_t ca = keep(a, name);
    int64_t cb = keep(b, name);
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_set_server_content(st, a, "theirs", 6, -1) == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    /* same folder, a new name: the server's version still makes way */
    CHECK(local_item_rename(st, ca, inbox, "mine.eml", false) == STORE_OK);
    CHECK(!item_exists(a));
    CHECK_OPS("delete,append");
    clear_journal();
    /* another mail folder: a new message there, the original stays */
    CHECK(local_item_rename(st, cb, work, "b.eml", false) == STORE_OK);
    CHECK(item_exists(b) && state_of(b) == STORE_ITEM_SYNCED);
    struct store_item it;
    CHECK(store_item_get(st, cb, &it) == STORE_OK);
    CHECK(it.folder_id == work && it.state == STORE_ITEM_PENDING);
    CHECK_OPS("append");
    teardown();
}

static void
test_restore_event_replaces_at_the_same_href(void)
{
    setup();
    int64_t cal = folder_of(STORE_KIND_EVENTS, 0, "Calendar", "/u/cal/", 0);
    int64_t team = folder_of(STORE_KIND_EVENTS, cal, "Team", "/u/team/", 0);
    int64_t book = folder_of(STORE_KIND_CONTACTS, 0, "Contacts", "/u/book/", 0);
    int64_t x = dav_item(team, "x.ics", "MINE", "/u/team/x.ics", "\"1\"");
    char name[NAMES_MAX + 1];
    int64_t c = keep(x, name);
    /* the server's version in place, with its new ETag */
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_set_server_content(st, x, "THEIRS", 6, -1) == STORE_OK);
    CHECK(store_item_set_dav(st, x, "/u/team/x.ics", "\"2\"") == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    CHECK(local_item_rename(st, c, book, "x.ics", false) == STORE_INVALID);
    CHECK_OPS("");
    /* mv within Conflicts/: local */
    int64_t cf = conflicts_folder();
    CHECK(local_item_rename(st, c, cf, "renamed.ics", false) == STORE_OK);
    CHECK(state_of(c) == STORE_ITEM_CONFLICT);
    CHECK_ORIGIN(c, "Calendar/Team/x.ics");
    CHECK_OPS("");
    /* mv Conflicts/renamed.ics Calendar/Team/x.ics */
    enum store_status r = local_item_rename(st, c, team, "x.ics", true);
    CHECK(r == STORE_OK);
    if (r != STORE_OK)
        printf("# rename: %s\n", store_errmsg(st));
    CHECK(!item_exists(x));
    struct store_item it;
    CHECK(store_item_get(st, c, &it) == STORE_OK);
    CHECK(it.folder_id == team && it.state == STORE_ITEM_PENDING);
    CHECK_STR(it.name, "x.ics");
    char *href = NULL, *etag = NULL;
    CHECK(store_item_dav(st, c, &href, &etag) == STORE_OK);
    CHECK_STR(href, "/u/team/x.ics"); /* the same resource ... */
    CHECK_STR(etag, "\"2\"");         /* ... over the server's version as it is now */
    free(href);
    free(etag);
    CHECK_CONTENT(c, "MINE");
    CHECK_OPS("replace");
    teardown();
}

static void
test_restore_event_deleted_on_the_server_creates_it(void)
{
    setup();
    int64_t cal = folder_of(STORE_KIND_EVENTS, 0, "Calendar", "/u/cal/", 0);
    int64_t x = dav_item(cal, "x.ics", "MINE", "/u/cal/x.ics", "\"1\"");
    char name[NAMES_MAX + 1];
    int64_t c = keep(x, name);
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_remove(st, x) == STORE_OK); /* the deletion stood */
    CHECK(store_commit(st) == STORE_OK);
    CHECK(local_item_rename(st, c, cal, "x.ics", false) == STORE_OK);
    CHECK(state_of(c) == STORE_ITEM_PENDING);
    CHECK_OPS("append");
    teardown();
}

static void
test_restore_note_keeps_properties(void)
{
    setup();
    int64_t notes = folder_of(STORE_KIND_NOTES, 0, "Notes", "/u/cal/", 0);
    int64_t n = dav_item(notes, "Todo.txt", "my text\n", "/u/cal/n.ics", "\"1\"");
    const char *ics = "BEGIN:VCALENDAR\r\nBEGIN:VJOURNAL\r\nUID:n\r\nCATEGORIES:keep\r\n"
                      "DESCRIPTION:base\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n";
    CHECK(store_sidecar_write(st, n, ics, strlen(ics)) == 0);
    char name[NAMES_MAX + 1];
    int64_t c = keep(n, name);
    CHECK(store_begin(st) == STORE_OK);
    CHECK(store_item_set_server_content(st, n, "server text\n", 12, -1) == STORE_OK);
    CHECK(store_item_set_dav(st, n, "/u/cal/n.ics", "\"2\"") == STORE_OK);
    CHECK(store_commit(st) == STORE_OK);
    CHECK(local_item_rename(st, c, notes, "Todo.txt", true) == STORE_OK);
    CHECK(!item_exists(n));
    CHECK_CONTENT(c, "my text\n");
    size_t len = 0;
    char *side = store_sidecar_read(st, c, &len);
    CHECK(side != NULL);
    if (side) {
        char *text = xasprintf("%.*s", (int)len, side);
        CHECK(strstr(text, "UID:n") != NULL); /* its properties travel with it */
        free(text);
    }
    free(side);
    char *href = NULL, *etag = NULL;
    CHECK(store_item_dav(st, c, &href, &etag) == STORE_OK);
    CHECK_STR(href, "/u/cal/n.ics");
    free(href);
    free(etag);
    CHECK_OPS("replace");
    teardown();
}

static void
test_discard_is_local(void)
{
    setup();
    int64_t inbox = mail_folder(0, "Inbox", "INBOX");
    int64_t cal = folder_of(STORE_KIND_EVENTS, 0, "Calendar", "/u/cal/", 0);
    int64_t a = synced(inbox, 9, "a.eml", "mine", "seen");
    int64_t x = dav_item(cal, "x.ics", "MINE", "/u/cal/x.ics", "\"1\"");
    char name[NAMES_MAX + 1];
    int64_t ca = keep(a, name);
    int64_t cx = keep(x, name);
    CHECK_FLAGS(ca, "seen");
    CHECK(local_item_delete(st, ca) == STORE_OK);
    CHECK(local_item_delete(st, cx) == STORE_OK);
    CHECK_OPS("");
    CHECK(!item_exists(ca) && !item_exists(cx));
    CHECK(item_exists(a) && item_exists(x));
    CHECK(state_of(a) == STORE_ITEM_SYNCED && state_of(x) == STORE_ITEM_SYNCED);
    CHECK_CONTENT(a, "mine");
    teardown();
}

int
main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    RUN(test_copy_names_same_then_from_folder_then_variants);
    RUN(test_copy_of_a_long_name_is_cut_to_fit);
    RUN(test_copy_is_a_link_that_outlives_a_replace);
    RUN(test_copy_takes_the_newest_bytes_a_staged_draft);
    RUN(test_note_copy_keeps_its_properties);
    RUN(test_notice_name_and_content);
    RUN(test_notice_without_copy_and_at_the_top);
    RUN(test_notice_is_local_only_whatever_the_user_does);
    RUN(test_no_notice_without_mail);
    RUN(test_drop_folder_keeps_only_what_changed);
    RUN(test_drop_unchanged_folder_is_quiet);
    RUN(test_drop_collection_keeps_edited_events);
    RUN(test_restore_mail_flags_only_sets_flags_on_the_same_uid);
    RUN(test_restore_mail_content_replaces_the_servers_message);
    RUN(test_restore_mail_under_another_name_and_elsewhere);
    RUN(test_restore_event_replaces_at_the_same_href);
    RUN(test_restore_event_deleted_on_the_server_creates_it);
    RUN(test_restore_note_keeps_properties);
    RUN(test_discard_is_local);
    return check_done();
}
