/* names: file and directory names that are readable, stable, unique in their
 * directory and safe: valid UTF-8, no '/', NUL or control characters, never
 * "." or "..", at most 255 bytes. The store assigns a name once, when an item
 * or folder first appears, and keeps it; these functions only compute names.
 * Every returned string is owned by the caller. */
#ifndef MAILFS_NAMES_H
#define MAILFS_NAMES_H

#include <stdbool.h>
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

/* The names of DAV items. Each is "[prefix ]Text.ext": the text sanitized
 * (a fallback when NULL or blank) and cut so the whole fits NAMES_MAX, the
 * prefix and the extension always whole. Without a date prefix, a text that
 * would begin with '.' begins with U+FF0E (FULLWIDTH FULL STOP) instead, so an
 * item is never a hidden file. Dates are in the local time zone. */

/* An event, by start: "YYYY-MM-DD HH.MM Summary.ics", or "YYYY-MM-DD
 * Summary.ics" when all_day; "(no title)" without a summary. A start before
 * 1970 is a date like any other (birthdays); INT64_MIN (no start) or a year
 * outside 0..9999 gives "0000-00-00 00.00" / "0000-00-00". */
char *names_event(int64_t start, bool all_day, const char *summary);

/* A task: "Summary.ics", or "YYYY-MM-DD Summary.ics" with the day it is due
 * when due >= 0 (the day only: a listing then sorts dated tasks first, by
 * due day, and undated ones after them by title). "(no title)" without a
 * summary. */
char *names_task(int64_t due, const char *summary);

/* A note: "Title.txt"; "(untitled).txt" without a title. */
char *names_note(const char *title);

/* A contact: "Full Name.vcf"; "(no name).vcf" without one. */
char *names_contact(const char *fn);

/* The note title a user gave as a file name: the name without its ".txt"
 * (any case); a name without it is the title whole. Not the inverse of
 * names_note for titles that sanitizing changed ('/' and the like), so use
 * it only for names users chose. May be "" (for ".txt"). */
char *names_title_from_file(const char *file_name);

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
