/* names: turns subjects, dates and server folder names into file names that
 * are safe, readable and fit in one path component. */
#include "store/names.h"
#include "common/dynbuf.h"
#include "common/utf8.h"
#include "common/util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPLACEMENT 0xFFFD
#define FULLWIDTH_SOLIDUS 0xFF0F
/* The shortest answer names_sanitize can give is ".._". */
#define SANITIZE_MIN 3
#define FOLDER_SUFFIX " (folder)"

enum char_class { CH_KEEP, CH_SPACE, CH_DROP };

/* Control characters (C0, DEL, C1) and Unicode white space all become one
 * space, so a name never holds a tab, a newline or an invisible blank at
 * either end.
 *
 * Dropped entirely: the invisible formatting characters that can make a name
 * display as something it is not: the bidi embeddings, overrides and isolates
 * (U+202A-202E, U+2066-2069, so "evil<RLO>lmth.eml" cannot show as
 * "evilhtml.eml"), the bidi marks (U+200E, U+200F, U+061C), and zero-width
 * characters with no visible effect (U+200B, U+2060-2064, U+180E, U+FEFF),
 * plus the deprecated format controls U+206A-206F. ZWNJ and ZWJ (U+200C,
 * U+200D) are kept: scripts such as Persian and emoji sequences need them. */
static enum char_class
classify(uint32_t cp)
{
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
        return CH_SPACE;
    switch (cp) {
    case 0x20:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return CH_SPACE;
    case 0x061C:
    case 0x180E:
    case 0x200B:
    case 0x200E:
    case 0x200F:
    case 0xFEFF:
        return CH_DROP;
    }
    if (cp >= 0x2000 && cp <= 0x200A)
        return CH_SPACE;
    if ((cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x206F))
        return CH_DROP;
    return CH_KEEP;
}

/* Append the safe form of s[0..len) to b (empty on entry), at most `max`
 * bytes, stopping at the first character that does not fit. Empty when
 * nothing visible is left. */
static void
clean(const char *s, size_t len, size_t max, struct dynbuf *b)
{
    const unsigned char *p = (const unsigned char *)s;
    bool space = false;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t l = utf8_next(p + i, len - i, &cp);
        if (!l)
            cp = REPLACEMENT, l = 1;
        i += l;
        if (cp == '/')
            cp = FULLWIDTH_SOLIDUS;
        enum char_class k = classify(cp);
        if (k == CH_DROP)
            continue;
        if (k == CH_SPACE) {
            space = true;
            continue;
        }
        char enc[5];
        size_t el = 0;
        if (space && b->len > 0)
            enc[el++] = ' ';
        el += utf8_encode(cp, enc + el);
        if (b->len + el > max)
            break;
        dynbuf_add(b, enc, el);
        space = false;
    }
}

char *
names_sanitize(const char *s, size_t len, size_t max)
{
    struct dynbuf b;
    if (max > NAMES_MAX)
        max = NAMES_MAX;
    if (max < SANITIZE_MIN)
        max = SANITIZE_MIN;
    dynbuf_init(&b, NAMES_MAX);
    clean(s ? s : "", s ? len : 0, max, &b);
    char *r = dynbuf_take(&b);
    if (strcmp(r, "") == 0 || strcmp(r, ".") == 0 || strcmp(r, "..") == 0) {
        char *fixed = xasprintf("%s_", r);
        free(r);
        r = fixed;
    }
    return r;
}

#define FULLWIDTH_FULL_STOP "\xef\xbc\x8e" /* U+FF0E */

/* "[prefix ]text.ext" with the text made safe ("fallback" when nothing of it
 * is left) and cut so that the prefix and the extension stay whole. */
static char *
compose(const char *prefix, const char *text, const char *fallback, const char *ext)
{
    const char *sep = *prefix ? " " : "";
    size_t fixed = strlen(prefix) + strlen(sep) + strlen(ext);
    size_t room = fixed < NAMES_MAX ? NAMES_MAX - fixed : 0;
    struct dynbuf b;
    dynbuf_init(&b, NAMES_MAX);
    if (text)
        clean(text, strlen(text), room, &b);
    if (b.len == 0)
        clean(fallback, strlen(fallback), room, &b);
    char *t = dynbuf_take(&b);
    char *name;
    if (!*prefix && t[0] == '.') {
        /* never a hidden file: the dot becomes its fullwidth twin, and the
         * text is cut again for the two bytes that adds */
        size_t keep = utf8_cut(t + 1, strlen(t + 1), room - strlen(FULLWIDTH_FULL_STOP));
        while (keep > 0 && t[keep] == ' ')
            keep--;
        name = xasprintf("%s%.*s%s", FULLWIDTH_FULL_STOP, (int)keep, t + 1, ext);
    } else {
        name = xasprintf("%s%s%s%s", prefix, sep, t, ext);
    }
    free(t);
    return name;
}

/* "YYYY-MM-DD" or "YYYY-MM-DD HH.MM" of t in local time into out; zeros
 * when t is INT64_MIN or its year is not four digits. */
static void
local_stamp(int64_t t, bool with_time, char out[64])
{
    struct tm tm;
    time_t tt = (time_t)t;
    bool ok = t != INT64_MIN && localtime_r(&tt, &tm) && tm.tm_year >= -1900 &&
              tm.tm_year <= 9999 - 1900;
    if (!ok)
        memset(&tm, 0, sizeof(tm)), tm.tm_year = -1900, tm.tm_mon = -1;
    if (with_time)
        snprintf(out, 64, "%04d-%02d-%02d %02d.%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min);
    else
        snprintf(out, 64, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

char *
names_item(int64_t date, const char *subject, const char *ext)
{
    char prefix[64];
    /* mail before 1970 is a broken Date: header, not history */
    local_stamp(date >= 0 ? date : INT64_MIN, true, prefix);
    return compose(prefix, subject, "(no subject)", ext ? ext : "");
}

char *
names_event(int64_t start, bool all_day, const char *summary)
{
    char prefix[64];
    local_stamp(start, !all_day, prefix);
    return compose(prefix, summary, "(no title)", ".ics");
}

char *
names_task(int64_t due, const char *summary)
{
    char prefix[64] = "";
    if (due >= 0)
        local_stamp(due, false, prefix);
    return compose(prefix, summary, "(no title)", ".ics");
}

char *
names_note(const char *title)
{
    return compose("", title, "(untitled)", ".txt");
}

char *
names_contact(const char *fn)
{
    return compose("", fn, "(no name)", ".vcf");
}

char *
names_title_from_file(const char *file_name)
{
    size_t n = file_name ? strlen(file_name) : 0;
    if (n >= 4 && util_ascii_eq(file_name + n - 4, 4, ".txt"))
        n -= 4;
    return xstrndup(file_name ? file_name : "", n);
}

int
names_has_item_ext(const char *name)
{
    static const char *const exts[] = {".eml", ".ics", ".vcf", ".txt"};
    size_t n = strlen(name);
    if (n < 4)
        return 0;
    /* case-insensitive, so "X.EML" is an item name too and folders keep clear */
    for (size_t i = 0; i < ARRAY_SIZE(exts); i++)
        if (util_ascii_eq(name + n - 4, 4, exts[i]))
            return 1;
    return 0;
}

char *
names_variant(const char *name, unsigned n)
{
    if (n < 2)
        return xstrdup(name);
    size_t len = strlen(name);
    size_t ext = names_has_item_ext(name) ? 4 : 0;
    char suffix[32];
    snprintf(suffix, sizeof(suffix), " (%u)", n);
    size_t slen = strlen(suffix);

    size_t base = len - ext;
    size_t room = NAMES_MAX - slen - ext;
    if (base > room) {
        base = room;
        while (base > 0 && ((unsigned char)name[base] & 0xC0) == 0x80)
            base--; /* never cut inside a UTF-8 character */
    }
    while (base > 0 && name[base - 1] == ' ')
        base--;
    const char *sep = base > 0 ? suffix : suffix + 1; /* no leading space */
    return xasprintf("%.*s%s%s", (int)base, name, sep, name + len - ext);
}

char *
names_folder(const char *component, size_t len)
{
    char *s = names_sanitize(component, len, NAMES_MAX);
    if (!names_has_item_ext(s))
        return s;
    free(s);
    s = names_sanitize(component, len, NAMES_MAX - strlen(FOLDER_SUFFIX));
    char *r = xasprintf("%s%s", s, FOLDER_SUFFIX);
    free(s);
    return r;
}
