/* fuzz_mail: libFuzzer harness for formats/mail.c and store/names.c. Any
 * input must parse without a memory error, and every name made from it must
 * keep the promises of DESIGN.md section 2.
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
 *   common/dynbuf.c common/util.c formats/mail.c store/names.c \
 *   tests/fuzz/fuzz_mail.c -o fuzz_mail */
#include "formats/mail.h"
#include "store/names.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                    \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_mail: %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* Strict UTF-8 check that also rejects what a name must not hold: NUL,
 * '/', C0, DEL, C1 and the bidi controls (when `name` is set). */
static int
text_ok(const char *s, int name)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, need;
        uint32_t v, min;
        if (c < 0x80)
            need = 0, v = c, min = 0;
        else if (c >= 0xC2 && c <= 0xDF)
            need = 1, v = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0)
            need = 2, v = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 3, v = c & 0x07, min = 0x10000;
        else
            return 0;
        for (unsigned i = 1; i <= need; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            v = v << 6 | (p[i] & 0x3F);
        }
        if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            return 0;
        if (name && (v == '/' || v < 0x20 || (v >= 0x7F && v <= 0x9F) ||
                     (v >= 0x202A && v <= 0x202E) || (v >= 0x2066 && v <= 0x2069)))
            return 0;
        p += need + 1;
    }
    return 1;
}

static void
check_name(const char *n, const char *ext)
{
    size_t len = strlen(n);
    REQUIRE(len > 0 && len <= NAMES_MAX);
    REQUIRE(strcmp(n, ".") != 0 && strcmp(n, "..") != 0);
    REQUIRE(text_ok(n, 1));
    if (ext) {
        REQUIRE(len >= strlen(ext) && strcmp(n + len - strlen(ext), ext) == 0);
    }
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;

    size_t hlen = mail_header_len(msg, size);
    REQUIRE(hlen <= size);

    struct mail_info mi;
    REQUIRE(mail_info_parse(msg, size, &mi) == 0);
    if (mi.subject)
        REQUIRE(text_ok(mi.subject, 0));
    if (mi.date != -1) {
        /* years 1900..9999 and zones within a day */
        REQUIRE(mi.date >= INT64_C(-2208988800) - 86400);
        REQUIRE(mi.date <= INT64_C(253402300799) + 86400);
    }

    char *name = names_item(mi.date, mi.subject, ".eml");
    check_name(name, ".eml");
    char *v = names_variant(name, 2 + (unsigned)(size % 1000));
    check_name(v, ".eml");
    free(v);
    v = names_variant(name, 4294967295u);
    check_name(v, ".eml");
    free(v);
    free(name);
    mail_info_free(&mi);

    /* the raw bytes as a subject, a folder name and through the decoder */
    char *text = mail_decode_words(msg, size);
    REQUIRE(text_ok(text, 0));
    name = names_item(size % 2 ? -1 : (int64_t)size * 1000003, text, ".ics");
    check_name(name, ".ics");
    free(name);
    free(text);

    name = names_sanitize(msg, size, NAMES_MAX);
    check_name(name, NULL);
    free(name);
    name = names_folder(msg, size);
    check_name(name, NULL);
    REQUIRE(!names_has_item_ext(name));
    free(name);

    char *h = mail_header_get(msg, size, "Subject");
    if (h) {
        REQUIRE(strlen(h) <= hlen);
        free(h);
    }
    int64_t t;
    (void)mail_parse_date(msg, size, &t);
    return 0;
}
