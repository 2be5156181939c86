/* fuzz_vcard: libFuzzer harness for formats/vcard.c. Any input must parse or
 * be refused without a memory error, what it reads must be valid UTF-8, and
 * a UID added must read back while every other byte stays.
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
 *   common/dynbuf.c common/util.c common/utf8.c formats/vcard.c store/names.c \
 *   tests/fuzz/fuzz_vcard.c -o fuzz_vcard
 * Run: ./fuzz_vcard -max_len=65536 -timeout=10 CORPUS_DIR */
#include "formats/vcard.h"
#include "store/names.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                    \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_vcard: %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* Strict UTF-8 (no surrogates, overlongs or values past U+10FFFF). */
static int
utf8_ok(const char *s)
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
        p += need + 1;
    }
    return 1;
}

static void
check_text(const char *s, size_t max)
{
    if (!s)
        return;
    REQUIRE(utf8_ok(s));
    REQUIRE(strlen(s) <= max);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct vcard_info vi;
    char *err = NULL;
    int rc = vcard_parse(text, size, &vi, &err);
    REQUIRE(rc == 0 || rc == -1);
    if (rc < 0) {
        REQUIRE(err && *err && utf8_ok(err) && strlen(err) < 1024);
        REQUIRE(!vi.fn && !vi.name && !vi.uid && !vi.family && !vi.given);
        free(err);
        REQUIRE(vcard_with_uid(text, size, "fuzz-uid", NULL) == NULL);
        return 0;
    }
    REQUIRE(err == NULL);
    REQUIRE(vi.name != NULL);
    REQUIRE(vi.version == 0 || vi.version == 21 || vi.version == 30 || vi.version == 40);
    /* decoded text is bounded: 3 bytes per raw byte at the very most */
    check_text(vi.fn, 3 * VCARD_TEXT_MAX);
    check_text(vi.family, 3 * VCARD_TEXT_MAX);
    check_text(vi.given, 3 * VCARD_TEXT_MAX);
    check_text(vi.additional, 3 * VCARD_TEXT_MAX);
    check_text(vi.prefix, 3 * VCARD_TEXT_MAX);
    check_text(vi.suffix, 3 * VCARD_TEXT_MAX);
    check_text(vi.name, 3 * VCARD_TEXT_MAX + 5 * 3 * VCARD_TEXT_MAX);
    if (vi.uid)
        REQUIRE(strlen(vi.uid) <= VCARD_UID_MAX);

    char *name = names_contact(vi.name);
    size_t nl = strlen(name);
    REQUIRE(nl > 4 && nl <= NAMES_MAX && strcmp(name + nl - 4, ".vcf") == 0);
    REQUIRE(utf8_ok(name) && !strchr(name, '/') && name[0] != '.');
    free(name);

    size_t outlen = 0;
    char *out = vcard_with_uid(text, size, "fuzz-uid", &outlen);
    REQUIRE(out != NULL);
    if (vi.uid) {
        REQUIRE(outlen == size && memcmp(out, text, size) == 0);
    } else {
        REQUIRE(outlen == size + strlen("UID:fuzz-uid") + 1 ||
                outlen == size + strlen("UID:fuzz-uid") + 2);
        struct vcard_info v2;
        char *err2 = NULL;
        int rc2 = vcard_parse(out, outlen, &v2, &err2);
        if (rc2 != 0)
            fprintf(stderr, "fuzz_vcard: re-parse: %s\n", err2);
        REQUIRE(rc2 == 0);
        REQUIRE(v2.uid && strcmp(v2.uid, "fuzz-uid") == 0);
        REQUIRE(strcmp(v2.name, vi.name) == 0);
        vcard_info_free(&v2);
    }
    free(out);
    vcard_info_free(&vi);
    return 0;
}
