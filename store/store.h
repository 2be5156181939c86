/* store: the local copy of one account. A directory (mode 0700) holding a
 * sqlite database in WAL mode (folders, items, journal, settings) and one
 * content file per item under content/, keyed by the item's row id, never by
 * a server or user name.
 *
 * Threads: a struct store is one sqlite connection and must be used by one
 * thread at a time; every thread that needs the store opens its own (the
 * sync thread one, each FUSE worker one). WAL lets readers run while the sync
 * thread writes. Write transactions are short and never span a network wait.
 *
 * Ownership: strings inside structs filled by store_* belong to the struct
 * and are released by the matching *_clear function; memory returned through
 * char ** belongs to the caller. */
#ifndef MAILFS_STORE_H
#define MAILFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/names.h"

enum store_status {
    STORE_OK = 0,
    STORE_NOTFOUND,  /* no such row */
    STORE_EXISTS,    /* a name or key is taken */
    STORE_BUSY,      /* another process holds the store (or sqlite stayed locked) */
    STORE_CORRUPT,   /* the database or a content file is damaged */
    STORE_TOO_NEW,   /* written by a newer mailfs */
    STORE_IO,        /* a file operation failed (errno in the message) */
    STORE_INVALID,   /* the request cannot be done (a name the server cannot hold...) */
    STORE_ERROR,     /* anything else sqlite reported */
};

const char *store_status_str(enum store_status s);

/* Kinds of folder. A folder of each kind is a directory in the tree. */
enum store_kind {
    STORE_KIND_MAIL = 1,
    STORE_KIND_EVENTS = 2,
    STORE_KIND_TASKS = 3,
    STORE_KIND_NOTES = 4,
    STORE_KIND_CONTACTS = 5,
    STORE_KIND_CONFLICTS = 6,
};

/* Per-folder sync modes (DESIGN section 4). */
enum store_mode {
    STORE_MODE_DEFAULT = 0, /* not set: the kind's default applies */
    STORE_MODE_FULL = 1,
    STORE_MODE_HEADERS = 2,
    STORE_MODE_OFF = 3,
};

/* The state of an item (its user.sync.state). */
enum store_item_state {
    STORE_ITEM_SYNCED = 0,
    STORE_ITEM_PARTIAL = 1,
    STORE_ITEM_LOCAL = 2,
    STORE_ITEM_PENDING = 3,
    STORE_ITEM_CONFLICT = 4,
    STORE_ITEM_ERROR = 5,
};

struct store;

enum store_open_flags {
    STORE_CREATE = 1,   /* create the directory and database when missing */
    STORE_READONLY = 2, /* never write (status commands) */
};

/* Open the store in `dir`. On failure returns a status and sets *err to a
 * message naming the path and the fix (owned by the caller). A database
 * written by a newer mailfs gives STORE_TOO_NEW, a damaged one STORE_CORRUPT;
 * an older one is migrated in place. */
enum store_status store_open(const char *dir, unsigned flags, struct store **out,
                             char **err);
void store_close(struct store *st);
/* Finish what a crash interrupted (staged content, drafts, tmp/). Only the
 * process that owns the store (it holds the lock) may call this, before any
 * other thread uses the store. */
enum store_status store_recover(struct store *st);
/* true when dir holds a store database. */
bool store_exists(const char *dir);

/* The directory of the store (borrowed). */
const char *store_dir(const struct store *st);
/* The last error message on this connection (borrowed, valid until the next
 * call). */
const char *store_errmsg(const struct store *st);

/* Transactions (BEGIN IMMEDIATE: the write lock is taken at once, so a
 * transaction never fails half-way for lock reasons). Nesting is not
 * supported. On commit, the changes recorded since begin become visible to
 * store_take_changes; on rollback they are dropped. */
enum store_status store_begin(struct store *st);
enum store_status store_commit(struct store *st);
void store_rollback(struct store *st);

/* Durability of this connection's commits. FULL (the default): a commit is
 * on disk when it returns (local changes, the journal). Relaxed: a commit
 * may be lost to a power cut but never half-applied (data a server can
 * send again). */
enum store_status store_set_durable(struct store *st, bool full);

/* Settings: a small key/value table (account-wide state such as the
 * online/offline mode). *out owned by the caller. */
enum store_status store_meta_get(struct store *st, const char *key, char **out);
enum store_status store_meta_set(struct store *st, const char *key, const char *value);

/* ---- folders ----
 * A folder row is a directory. parent_id 0 is the mount's root. server_name
 * is the protocol's name for it (IMAP mailbox name as the server sends it,
 * or a DAV collection href); NULL for local-only folders (Conflicts). */
struct store_folder {
    int64_t id;
    int64_t parent_id;
    enum store_kind kind;
    char name[NAMES_MAX + 1];
    char *server_name;      /* owned; may be NULL */
    char delimiter;         /* IMAP hierarchy delimiter, 0 when none */
    bool selectable;        /* false for IMAP \Noselect / \NonExistent */
    enum store_mode mode;   /* as set by the user; DEFAULT when unset */
    uint32_t uidvalidity;   /* 0 when never synced */
    uint64_t highestmodseq; /* 0 when unknown */
    uint32_t uidnext;       /* 0 when unknown */
    uint32_t server_count;  /* messages on the server at the last sync */
    char *sync_token;       /* DAV sync token; owned; may be NULL */
    int64_t last_sync;      /* wall-clock time of the last completed sync, 0 */
    char *error;            /* last sync error, NULL when none; owned */
    bool local_only;        /* made here and not yet created on the server */
    int64_t mtime;          /* set by the user (utime), 0 when never */
};

void store_folder_clear(struct store_folder *f);

enum store_status store_folder_get(struct store *st, int64_t id, struct store_folder *out);
enum store_status store_folder_lookup(struct store *st, int64_t parent_id,
                                      const char *name, struct store_folder *out);
enum store_status store_folder_by_server_name(struct store *st, enum store_kind kind,
                                              const char *server_name,
                                              struct store_folder *out);
/* Add a folder. f->name is the wanted name; when it is taken in the parent,
 * " (2)", " (3)"… are tried. The chosen name and the new id are written back
 * into *f. Records an "entry added" change. */
enum store_status store_folder_add(struct store *st, struct store_folder *f);
/* Write the sync fields of f (uidvalidity, highestmodseq, uidnext,
 * server_count, sync_token, last_sync, error, selectable, delimiter). */
enum store_status store_folder_update_sync(struct store *st, const struct store_folder *f);
/* Remove a folder and everything in it (rows and content files) from the
 * store only. Records changes. */
enum store_status store_folder_remove(struct store *st, int64_t id);
/* Call fn for each folder (all when kind is 0), ordered by id. fn returns
 * non-zero to stop. */
enum store_status store_folder_each(struct store *st, enum store_kind kind,
                                    int (*fn)(void *ctx, const struct store_folder *f),
                                    void *ctx);

/* ---- items ---- */
struct store_item {
    int64_t id;
    int64_t folder_id;
    uint32_t uid;       /* IMAP UID, 0 when not known */
    uint64_t modseq;    /* IMAP MODSEQ of the flags, 0 when unknown */
    int64_t size;       /* bytes of the content file */
    int64_t date;       /* mtime: the message date or last change */
    enum store_item_state state;
    bool has_content;   /* false: the content must be fetched again */
    char name[NAMES_MAX + 1];
    int64_t full_size;  /* the whole message's size (PARTIAL: more than size) */
};

/* Attributes needed to add an item; the store picks the unique name. */
struct store_item_new {
    int64_t folder_id;
    uint32_t uid;
    uint64_t modseq;
    int64_t date;
    const char *wanted_name; /* from names_item(); borrowed */
    const char *flags;       /* space-separated; borrowed; NULL = "" */
    const char *message_id;  /* borrowed; may be NULL */
    enum store_item_state state;  /* PARTIAL: content is what headers mode keeps */
    const void *content;     /* borrowed; written to the content file */
    size_t size;
    int64_t full_size;       /* the whole message's size; 0: size */
};

enum store_status store_item_get(struct store *st, int64_t id, struct store_item *out);
enum store_status store_item_lookup(struct store *st, int64_t folder_id, const char *name,
                                    struct store_item *out);
enum store_status store_item_by_uid(struct store *st, int64_t folder_id, uint32_t uid,
                                    struct store_item *out);
/* Insert the row and write its content file. The id is returned in *id_out
 * and the final name in name_out (NAMES_MAX + 1 bytes, may be NULL). Must be
 * inside a transaction: the row becomes visible at commit, and a crash before
 * the commit leaves at most an unreferenced content file. */
enum store_status store_item_add(struct store *st, const struct store_item_new *n,
                                 int64_t *id_out, char *name_out);
/* The same for content already written to a file of the store's tmp/
 * directory (and synced by the caller): the file is renamed into place. */
enum store_status store_item_add_file(struct store *st, const struct store_item_new *n,
                                      const char *tmp_path, int64_t *id_out);
/* A message kept in part arrived whole in tmp_path: put it in place and
 * record it (size, uid, flags, state SYNCED). Records a change. */
enum store_status store_item_upgrade_file(struct store *st, int64_t id, const char *tmp_path,
                                          int64_t size, uint32_t uid, const char *flags);
/* A path in the store's tmp/ directory for `name`, into buf. */
void store_tmp_path(const struct store *st, const char *name, char *buf, size_t bufsz);
/* Remove the row and its content file (store only). Records a change. */
enum store_status store_item_remove(struct store *st, int64_t id);
/* Flags: *out is owned by the caller. */
enum store_status store_item_flags(struct store *st, int64_t id, char **out);
enum store_status store_item_set_flags(struct store *st, int64_t id, const char *flags,
                                       uint64_t modseq);
/* Set uid to 0 for every item of the folder (after a UIDVALIDITY change), so
 * that messages can be matched again by Message-ID and size. */
enum store_status store_folder_unmap_uids(struct store *st, int64_t folder_id);
/* For remapping after a UIDVALIDITY change: call fn for each item of the
 * folder that was synced and lost its uid, with this Message-ID (NULL: items
 * without one) and size, until fn returns non-zero (it found its match). */
enum store_status store_item_each_unmapped_match(struct store *st, int64_t folder_id,
                                                 const char *message_id, int64_t size,
                                                 int (*fn)(void *ctx,
                                                           const struct store_item *it),
                                                 void *ctx);
enum store_status store_item_set_uid(struct store *st, int64_t id, uint32_t uid,
                                     uint64_t modseq, const char *flags);
/* Call fn(ctx, uid, modseq, flags, item_id) for each item of the folder with
 * a uid, in uid order. flags is borrowed for the call. */
enum store_status store_item_each_uid(struct store *st, int64_t folder_id,
                                      int (*fn)(void *ctx, uint32_t uid, uint64_t modseq,
                                                const char *flags, int64_t id),
                                      void *ctx);
/* Items of the folder without a uid (unmapped or local). */
enum store_status store_item_each_unmapped(struct store *st, int64_t folder_id,
                                           int (*fn)(void *ctx, const struct store_item *it),
                                           void *ctx);
/* Items of the folder that were synced once and have lost their UID (an
 * interrupted UIDVALIDITY remap). */
enum store_status store_item_count_unmapped_synced(struct store *st, int64_t folder_id,
                                                   int64_t *out);
/* Number of items in a folder; with_uid: only those with a uid. */
enum store_status store_item_count(struct store *st, int64_t folder_id, bool with_uid,
                                   int64_t *out);

/* ---- changes made through the mount ---- */

/* A new, empty item made by the user: no uid, state LOCAL, the name exactly as
 * given (STORE_EXISTS when taken), an empty content file. */
enum store_status store_item_create(struct store *st, int64_t folder_id, const char *name,
                                    int64_t date, int64_t *id_out);
/* Record new content of an item whose staged file (store_content_staged_path)
 * is written and synced: size, date, Message-ID, state, and staged = 1 so
 * that a crash before store_content_commit_staged is finished on reopen. */
enum store_status store_item_set_content(struct store *st, int64_t id, int64_t size,
                                         int64_t date, const char *message_id,
                                         enum store_item_state state);
enum store_status store_item_clear_staged(struct store *st, int64_t id);
/* Items whose staged content may not be in place yet. */
enum store_status store_item_each_staged(struct store *st,
                                         int (*fn)(void *ctx, int64_t id), void *ctx);
/* The generation of an item's local content (bumped by every commit of new
 * content) and whether it is staged (not yet in place): an upload checks
 * that what it read is still what the item holds. */
enum store_status store_item_gen(struct store *st, int64_t id, int64_t *gen, bool *staged);
/* Groupware items: the resource's href (NULL: not on the server yet) and
 * ETag. Strings owned by the caller. */
enum store_status store_item_dav(struct store *st, int64_t id, char **href, char **etag);
enum store_status store_item_set_dav(struct store *st, int64_t id, const char *href,
                                     const char *etag);
enum store_status store_item_by_href(struct store *st, int64_t folder_id, const char *href,
                                     struct store_item *out);
/* fn(ctx, item id, href, etag, state) for each item of the folder with an
 * href; strings borrowed for the call. Read first, so fn may use the store. */
enum store_status store_item_each_href(struct store *st, int64_t folder_id,
                                       int (*fn)(void *ctx, int64_t id, const char *href,
                                                 const char *etag,
                                                 enum store_item_state state),
                                       void *ctx);
/* A note's server form (its iCalendar text) beside the text file shown:
 * kept so an edit of the text keeps every other property. */
int store_sidecar_write(const struct store *st, int64_t item_id, const void *data,
                        size_t len);
/* Give item to_id the sidecar of from_id (none: nothing happens). */
int store_sidecar_move(const struct store *st, int64_t from_id, int64_t to_id);
/* The sidecar's bytes (owned by the caller) or NULL when there is none. */
char *store_sidecar_read(const struct store *st, int64_t item_id, size_t *len);
/* Replace an item's content and record a change (the server's newer
 * version, or what the server made of ours). */
enum store_status store_item_set_server_content(struct store *st, int64_t id,
                                                const void *data, size_t len, int64_t date);
/* State and the reason for an error (NULL for none). */
enum store_status store_item_set_state(struct store *st, int64_t id,
                                       enum store_item_state state, const char *error);
/* *out: the error text or NULL; owned by the caller. */
enum store_status store_item_error(struct store *st, int64_t id, char **out);
/* *out: the Message-ID or NULL; owned by the caller. */
enum store_status store_item_message_id(struct store *st, int64_t id, char **out);
enum store_status store_item_set_date(struct store *st, int64_t id, int64_t date);
/* Give an item a new folder and name (kept exactly; STORE_EXISTS when taken)
 * and uid (0 after a move to another folder: the new UID is not known yet).
 * Records the changes. */
enum store_status store_item_move(struct store *st, int64_t id, int64_t folder_id,
                                  const char *name, uint32_t uid);
/* Refresh an item from the server after it was written: new content (may be
 * NULL to keep the file), size, uid, flags, state SYNCED. Records a change. */
enum store_status store_item_refresh(struct store *st, int64_t id, const void *content,
                                     size_t size, uint32_t uid, const char *flags);

/* A user's sync mode for a folder (STORE_MODE_DEFAULT: back to the default). */
enum store_status store_folder_set_mode(struct store *st, int64_t id, enum store_mode mode);
/* The mode a folder syncs in: its own; else for mail folders `mail_default`
 * when the account sets one (config sync_mode); else INBOX and every
 * non-mail folder full and other mail folders headers. */
enum store_mode store_folder_mode(const struct store_folder *f, enum store_mode mail_default);
/* Whether a folder has messages kept in part. */
enum store_status store_folder_has_partial(struct store *st, int64_t folder_id, bool *out);
/* Items of a folder (all folders when folder_id is 0) kept in part. */
enum store_status store_item_each_partial(struct store *st, int64_t folder_id,
                                          int (*fn)(void *ctx, const struct store_item *it),
                                          void *ctx);
/* A message whose content must come from the server again (the server's
 * version won a conflict): kept as an empty part of full_size bytes, so a
 * full sync or a read online fetches it whole. Records a change. */
enum store_status store_item_refetch(struct store *st, int64_t id, int64_t full_size);
/* A partial item became whole: its content file is in place; record size
 * and state without telling the kernel (the reader that asked is filling
 * its cache with the whole bytes). */
enum store_status store_item_set_whole(struct store *st, int64_t id, int64_t size);

/* Rename or move a folder: new parent, name and server name; the server
 * names of every folder below it follow (prefix replaced). Records changes. */
enum store_status store_folder_rename(struct store *st, int64_t id, int64_t parent_id,
                                      const char *name, const char *server_name);
enum store_status store_folder_set_local_only(struct store *st, int64_t id, bool on);
/* A directory time the user set (local only). */
enum store_status store_folder_set_mtime(struct store *st, int64_t id, int64_t mtime);
/* The folder was found unchanged by a sync pass: its user.sync.last moves to
 * `when`. Leaves a folder never synced (last_sync 0) alone. */
enum store_status store_folder_set_last_sync(struct store *st, int64_t id, int64_t when);
/* A collection's href (after MKCOL), or NULL. */
enum store_status store_folder_set_server_name(struct store *st, int64_t id,
                                               const char *server_name);
/* true when the folder holds no items and no folders. */
enum store_status store_folder_is_empty(struct store *st, int64_t id, bool *empty);

/* ---- directory listing ----
 * One directory is the folder's subfolders (in id order) then its items (in
 * id order). A listing resumes after a cursor: 0 for the start, else the
 * cursor of the last entry returned. Cursors are the entries' inode numbers
 * (see store_ino_*), so they stay valid while the directory changes. */
struct store_dirent {
    uint64_t ino;
    bool is_dir;
    const char *name;   /* borrowed for the call */
    int64_t size;
    int64_t date;
    bool partial;       /* a message kept in part (headers mode) */
    int64_t full_size;  /* its whole size */
};
enum store_status store_dir_list(struct store *st, int64_t folder_id, uint64_t after,
                                 int (*fn)(void *ctx, const struct store_dirent *e),
                                 void *ctx);

/* Inode numbers are store row ids: the root is 1, a folder 2 * id + 2, an
 * item 2 * id + 1. They are stable across remounts and never reused
 * (AUTOINCREMENT ids). */
#define STORE_INO_ROOT 1
static inline uint64_t
store_ino_folder(int64_t folder_id)
{
    return folder_id == 0 ? STORE_INO_ROOT : (uint64_t)folder_id * 2 + 2;
}
static inline uint64_t
store_ino_item(int64_t item_id)
{
    return (uint64_t)item_id * 2 + 1;
}
static inline bool
store_ino_is_item(uint64_t ino)
{
    return ino != STORE_INO_ROOT && (ino & 1);
}
static inline int64_t
store_ino_id(uint64_t ino)
{
    if (ino == STORE_INO_ROOT)
        return 0;
    return (ino & 1) ? (int64_t)((ino - 1) / 2) : (int64_t)((ino - 2) / 2);
}

/* ---- content ---- */
/* The path of an item's content file into buf (PATH_MAX bytes). */
void store_content_path(const struct store *st, int64_t item_id, char *buf, size_t bufsz);
/* The path of an item's staged content (new content being written through the
 * mount, put in place by store_content_commit_staged). */
void store_content_staged_path(const struct store *st, int64_t item_id, char *buf,
                               size_t bufsz);
/* Make every content file written so far durable (one syncfs for a batch:
 * cheaper than an fsync per file, and done before the rows that point at
 * the files commit). 0 or -errno. */
int store_content_sync(const struct store *st);
/* Put staged content in place (rename over the content file): 0 or -errno;
 * -ENOENT when there is nothing staged. */
int store_content_commit_staged(const struct store *st, int64_t item_id);
/* Write an item's whole content (replacing it atomically, and dropping a
 * partial one): 0 or -errno. */
int store_content_replace(const struct store *st, int64_t item_id, const void *data,
                          size_t len);
/* Open the content file read-only: an fd (owned by the caller) or -errno.
 * A message kept in part (headers mode) has its content in a file of its
 * own name (ID.p), so the read path tells the two apart without a query:
 * store_content_open opens only whole content; with `partial` non-NULL a
 * partial file is opened too and *partial says which it was. */
int store_content_open(const struct store *st, int64_t item_id);
/* The whole content of an item (owned by the caller; NUL-terminated beyond
 * *len), or NULL when it is missing, unreadable or larger than max. */
char *store_content_read(const struct store *st, int64_t item_id, size_t max, size_t *len);
int store_content_open_any(const struct store *st, int64_t item_id, bool *partial);

/* ---- change records ----
 * Every committed change to the tree is recorded so the mount can tell the
 * kernel (cache invalidation). Kinds: */
enum store_change_kind {
    STORE_CHANGE_ENTRY,  /* a name appeared or disappeared in a directory */
    STORE_CHANGE_INODE,  /* an entry's attributes or content changed */
};
struct store_change {
    enum store_change_kind kind;
    uint64_t parent_ino;  /* ENTRY: the directory */
    uint64_t ino;         /* INODE: the entry; ENTRY: the entry (0 unknown) */
    char name[NAMES_MAX + 1];
};
/* Connections whose changes nobody reads (FUSE threads: the kernel learns
 * from the replies) turn recording off. On by default. */
void store_set_recording(struct store *st, bool on);
/* Hand committed changes to fn in order and forget them. */
void store_take_changes(struct store *st, void (*fn)(void *ctx, const struct store_change *c),
                        void *ctx);

#endif
