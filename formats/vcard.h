/* vcard: reading what mailfs needs from the vCard (2.1, 3.0 or 4.0) of one
 * CardDAV contact — the names and the UID — and adding a missing UID. A
 * small parser of our own (libical does not read vCard): it unfolds lines
 * (CRLF or LF, then a space or tab), reads groups ("item1.EMAIL"),
 * parameters (quoted or not, vCard 2.1's bare ones), escapes (\n \, \; \\)
 * and, for FN and N, vCard 2.1's QUOTED-PRINTABLE (with its soft line
 * breaks) and CHARSET. Bounded: inputs over VCARD_SIZE_MAX are refused,
 * decoded values are capped, and it never reads past `len`. Every returned
 * string is owned by the caller (free()). Thread-safe. */
#ifndef MAILFS_VCARD_H
#define MAILFS_VCARD_H

#include <stddef.h>

/* A contact with an inline photo stays far below this. */
#define VCARD_SIZE_MAX (16 * 1024 * 1024)
/* At most this much of the raw value of FN or N is decoded; names are cut
 * to 255 bytes anyway. */
#define VCARD_TEXT_MAX (64 * 1024)
/* A longer UID is refused. */
#define VCARD_UID_MAX 1024

/* Every string is owned. The components of N are read like FN; commas
 * between several values of one component become spaces ("Philip,Paul" ->
 * "Philip Paul"). */
struct vcard_info {
    unsigned version; /* 21, 30 or 40; 0 when the card has no VERSION */
    char *fn;         /* the first FN, decoded, unescaped, valid UTF-8; NULL if absent */
    char *family;     /* the components of the first N: */
    char *given;      /* NULL when N is absent or the component blank */
    char *additional;
    char *prefix;
    char *suffix;
    char *name; /* what to call the contact: FN unless it is blank, else N as
                   "prefix given additional family suffix"; never NULL, "" when
                   both are blank */
    char *uid;  /* the first UID, unescaped; NULL when absent */
};

/* Check that data[0..len) is one vCard and fill *out. Refused, with a
 * sentence in *err (owned by the caller, set only on failure; err may be
 * NULL): an empty file, more than VCARD_SIZE_MAX bytes, a NUL byte, text that
 * does not begin with BEGIN:VCARD ("not a vCard"), a line that is not
 * "[GROUP.]NAME[;PARAMS]:VALUE", BEGIN:VCARD inside the card, no END:VCARD
 * (truncated), two cards, other text after END:VCARD, a VERSION other than
 * 2.1, 3.0 and 4.0, a UID longer than VCARD_UID_MAX, and a card with neither
 * FN nor N. A missing VERSION is tolerated. Returns 0, or -1 with *out
 * zeroed. Free with vcard_info_free. */
int vcard_parse(const char *data, size_t len, struct vcard_info *out, char **err);
void vcard_info_free(struct vcard_info *vi);

/* A copy of data with "UID:uid" added when the card has no UID (new files
 * made by users often have none; the server needs one): the line goes right
 * after the VERSION line (else after BEGIN:VCARD) with the same line end,
 * folded at 75 octets; every other byte is kept. When the card has a UID the
 * copy is byte for byte the input. NULL when vcard_parse refuses the card or
 * `uid` is empty, longer than VCARD_UID_MAX, not UTF-8, or holds control
 * characters or any of , ; \ (a UID is text in 3.0 and a URI in 4.0; without
 * those it needs no escaping in either). *outlen gets the length (the result
 * is also NUL-terminated). */
char *vcard_with_uid(const char *data, size_t len, const char *uid, size_t *outlen);

#endif
