/* mutf7: modified UTF-7, the encoding of IMAP mailbox names (RFC 3501
 * section 5.1.3). Strict: every name it accepts encodes back to exactly the
 * same string. */
#include "formats/mutf7.h"

#include "common/dynbuf.h"
#include "common/utf8.h"
#include "common/util.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Names are short; the buffers only grow as far as the input. */
#define UNCAPPED (SIZE_MAX / 2)

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == ',')
        return 63;
    return -1;
}

static void
put_utf8(struct dynbuf *b, uint32_t cp)
{
    char u[4];
    dynbuf_add(b, u, utf8_encode(cp, u));
}

/* Decode the base64 run at s[*i] up to its '-', appending UTF-8. 0 or -1. */
static int
mutf7_decode_run(const char *s, size_t len, size_t *i, struct dynbuf *out)
{
    uint32_t bits = 0, hi = 0;
    unsigned nbits = 0;
    size_t units = 0;
    for (;;) {
        if (*i == len)
            return -1; /* unterminated */
        unsigned char c = (unsigned char)s[(*i)++];
        if (c == '-')
            break;
        int v = b64val(c);
        if (v < 0)
            return -1;
        bits = (bits << 6) | (uint32_t)v;
        nbits += 6;
        if (nbits < 16)
            continue;
        nbits -= 16;
        uint32_t u = (bits >> nbits) & 0xffff;
        bits &= (1u << nbits) - 1;
        units++;
        if (hi) {
            if (u < 0xdc00 || u > 0xdfff)
                return -1;
            put_utf8(out, 0x10000 + ((hi - 0xd800) << 10) + (u - 0xdc00));
            hi = 0;
        } else if (u >= 0xd800 && u <= 0xdbff) {
            hi = u;
        } else if (u >= 0xdc00 && u <= 0xdfff) {
            return -1;
        } else if (u == 0 || (u >= 0x20 && u <= 0x7e)) {
            /* printable ASCII must stand for itself; NUL cannot be named */
            return -1;
        } else {
            put_utf8(out, u);
        }
    }
    /* Padding: fewer than 6 leftover bits, all zero, and no empty run. */
    if (hi || nbits >= 6 || bits != 0 || units == 0)
        return -1;
    return 0;
}

char *
mutf7_decode(const char *s, size_t len)
{
    struct dynbuf out;
    dynbuf_init(&out, UNCAPPED);
    bool after_run = false;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i++];
        if (c < 0x20 || c > 0x7e)
            goto bad;
        if (c != '&') {
            dynbuf_addc(&out, (char)c);
            after_run = false;
            continue;
        }
        if (i < len && s[i] == '-') {
            dynbuf_addc(&out, '&');
            i++;
            after_run = false;
            continue;
        }
        /* Two adjacent runs are one run split in two: not the canonical form,
         * which would not survive a round trip through encode. */
        if (after_run || mutf7_decode_run(s, len, &i, &out) < 0)
            goto bad;
        after_run = true;
    }
    return dynbuf_take(&out);
bad:
    dynbuf_free(&out);
    return NULL;
}

/* The next code point of NUL-terminated UTF-8 at *s, or -1 when invalid
 * (overlong forms, surrogates and values past U+10FFFF included). */
static int32_t
next_cp(const unsigned char **s)
{
    const unsigned char *p = *s;
    uint32_t cp;
    int n;
    if (p[0] < 0x80) {
        *s = p + 1;
        return p[0];
    } else if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        cp = p[0] & 0x1f;
        n = 1;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        cp = p[0] & 0x0f;
        n = 2;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        cp = p[0] & 0x07;
        n = 3;
    } else {
        return -1;
    }
    for (int k = 1; k <= n; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return -1; /* also stops at the NUL */
        cp = (cp << 6) | (p[k] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *s = p + n + 1;
    return (int32_t)cp;
}

char *
mutf7_encode(const char *utf8)
{
    struct dynbuf out;
    dynbuf_init(&out, UNCAPPED);
    const unsigned char *s = (const unsigned char *)utf8;
    bool in_run = false;
    uint32_t bits = 0;
    unsigned nbits = 0;
    while (*s || in_run) {
        int32_t cp = *s ? next_cp(&s) : 0;
        if (cp < 0) {
            dynbuf_free(&out);
            return NULL;
        }
        bool direct = cp == 0 || (cp >= 0x20 && cp <= 0x7e);
        if (direct && in_run) {
            if (nbits)
                dynbuf_addc(&out, b64chars[(bits << (6 - nbits)) & 0x3f]);
            dynbuf_addc(&out, '-');
            in_run = false;
            bits = nbits = 0;
        }
        if (cp == 0)
            break;
        if (direct) {
            if (cp == '&')
                dynbuf_adds(&out, "&-");
            else
                dynbuf_addc(&out, (char)cp);
            continue;
        }
        if (!in_run) {
            dynbuf_addc(&out, '&');
            in_run = true;
        }
        uint32_t units[2];
        int nu = 1;
        units[0] = (uint32_t)cp;
        if (cp >= 0x10000) {
            units[0] = 0xd800 + (((uint32_t)cp - 0x10000) >> 10);
            units[1] = 0xdc00 + (((uint32_t)cp - 0x10000) & 0x3ff);
            nu = 2;
        }
        for (int k = 0; k < nu; k++) {
            bits = (bits << 16) | units[k];
            nbits += 16;
            while (nbits >= 6) {
                nbits -= 6;
                dynbuf_addc(&out, b64chars[(bits >> nbits) & 0x3f]);
            }
            bits &= (1u << nbits) - 1;
        }
    }
    return dynbuf_take(&out);
}
