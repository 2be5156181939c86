/* note: a note, stored on the server as a VJOURNAL, shown as a text file.
 * The file holds the note's text (DESCRIPTION) and its name is the title
 * (SUMMARY); every other property and parameter survives an edit. Every
 * returned string is owned by the caller (free()).
 *
 * Line ends: a text file on Linux uses LF, and iCalendar writes a line break
 * inside a value as "\n", so the text is always shown with LF: a CR LF or a
 * lone CR in a DESCRIPTION becomes LF, and so does one in text written by
 * the user. Nothing else is added or taken away (no final newline is made
 * up), so what is written is what is read back. Bytes that are not UTF-8 are
 * read as Latin-1, both ways, so the file and the server only see UTF-8. */
#ifndef MAILFS_NOTE_H
#define MAILFS_NOTE_H

#include <stddef.h>

/* The text of the note: the first DESCRIPTION of the main VJOURNAL (see
 * ical.h), unescaped, with LF line ends, valid UTF-8; "" when there is none.
 * *textlen gets its length. NULL when ics is not one note (ical_parse
 * refuses it, or it holds events or tasks). */
char *note_text(const char *ics, size_t len, size_t *textlen);

/* The title: SUMMARY of the main VJOURNAL, unescaped; NULL when there is
 * none or ics is not one note. */
char *note_title(const char *ics, size_t len);

/* New iCalendar text for a note whose text is text[0..textlen) (any bytes
 * but NUL; line ends as above). *outlen gets the length (the result is also
 * NUL-terminated).
 *
 * With old_ics (the note as the server has it): its bytes are kept except
 * for the main VJOURNAL's first DESCRIPTION (replaced with the same
 * parameters but ALTREP, removed when the text is empty, added when
 * missing), its SUMMARY when `title` is given and differs from it, and
 * DTSTAMP and LAST-MODIFIED (set to now, added when missing). When the text
 * changes, X-ALT-DESC (another client's HTML copy of the old text) is
 * dropped, since it would show the old text. When neither text nor title
 * changes the result is old_ics byte for byte. Pass title NULL (or "") when
 * the file was not renamed: a file name is a sanitized title, not the title.
 *
 * Without old_ics: a new VCALENDAR with one VJOURNAL holding UID
 * (uid_for_new), DTSTAMP, SUMMARY (when title is given) and DESCRIPTION
 * (when the text is not empty).
 *
 * NULL when the text holds a NUL byte, old_ics is not one note, uid_for_new
 * is needed and missing or not a usable UID, or the result would pass
 * ICAL_SIZE_MAX. */
char *note_update(const char *old_ics, size_t oldlen, const char *title, const char *text,
                  size_t textlen, const char *uid_for_new, size_t *outlen);

#endif
