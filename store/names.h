/* names: file and directory names that are readable, stable, unique in their
 * directory and safe: valid UTF-8, no '/', NUL or control characters, never
 * "." or "..", at most 255 bytes. The store assigns a name once, when an item
 * or folder first appears, and keeps it; these functions only compute names.
 * Every returned string is owned by the caller. */
#ifndef MAILFS_NAMES_H
#define MAILFS_NAMES_H

#include <stddef.h>
#include <stdint.h>

#define NAMES_MAX 255

/* Make any byte string (a server folder name component, a subject) safe as
 * one path component: invalid UTF-8 bytes become U+FFFD, '/' becomes U+FF0F
 * (FULLWIDTH SOLIDUS), control characters become spaces, runs of white space
 * collapse to one space, leading and trailing white space is trimmed, the
 * result is cut at a character boundary to `max` bytes (max <= NAMES_MAX);
 * "", "." and ".." become "_", "._" and ".._" respectively. */
char *names_sanitize(const char *s, size_t len, size_t max);

/* The file name of a message: "YYYY-MM-DD HH.MM Subject.eml" with the date
 * in the local time zone (date < 0: "0000-00-00 00.00"), the subject
 * sanitized ("(no subject)" when NULL or empty) and cut so the whole name fits
 * NAMES_MAX bytes. ext includes the dot (".eml"). */
char *names_item(int64_t date, const char *subject, const char *ext);

/* The n-th alternative (n >= 2) of `name` for uniqueness: "base (n).ext",
 * where ext is the part from the last '.' when name ends in a known item
 * extension (.eml .ics .vcf .txt), else "name (n)". The base is cut at a
 * character boundary so the result fits NAMES_MAX. */
char *names_variant(const char *name, unsigned n);

/* true when the name ends in an item extension (.eml .ics .vcf .txt). Such a
 * name is kept for items: a folder whose safe name would end in one gets
 * " (folder)" appended by names_folder. */
int names_has_item_ext(const char *name);

/* The directory name for one component of a server folder name, already
 * decoded to UTF-8: sanitized, and a component ending in an item extension
 * gets " (folder)" appended so folders and items never collide. */
char *names_folder(const char *component, size_t len);

#endif
