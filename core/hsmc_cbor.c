/*
 * CBOR (RFC 8949): deterministic encoder, strict decoder. See
 * include/hsmc/cbor.h for the rules and contracts.
 *
 * The decoder keeps, per open array/map, how many items are still unread
 * (open[]); every completed item decrements the innermost count and a
 * container whose count reaches 0 is itself a completed item of its
 * parent. That is what bounds nesting without recursion, and what lets
 * hsmc_cbor_dec_finish() notice a container left half read.
 */
#include <string.h>

#include "hsmc/cbor.h"

enum {
    MT_UINT = 0,
    MT_NINT = 1,
    MT_BSTR = 2,
    MT_TSTR = 3,
    MT_ARRAY = 4,
    MT_MAP = 5,
    MT_TAG = 6,
    MT_SIMPLE = 7
};

#define AI_1BYTE 24u     /* argument in the next 1, 2, 4 or 8 bytes: 24..27 */
#define AI_INDEFINITE 31u
#define HEAD_MAX 9u      /* initial byte + 8-byte argument */

/* ---- UTF-8 (RFC 3629) -------------------------------------------------- */

/* Well-formed UTF-8: shortest forms only, no surrogates, <= U+10FFFF. The
 * ranges of the second byte are those of RFC 3629 section 4. */
static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = s[i];
        uint8_t lo = 0x80, hi = 0xbf;
        size_t k, j;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong below U+0800 */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates U+D800..DFFF */
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong below U+10000 */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return false; /* continuation byte, 0xc0/0xc1, 0xf5.. */
        }
        if (n - i - 1 < k)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (j = 2; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
        }
        i += k + 1;
    }
    return true;
}

/* ---- Encoder ----------------------------------------------------------- */

void hsmc_cbor_enc_init(hsmc_cbor_enc_t *enc, uint8_t *buf, size_t cap)
{
    if (enc == NULL)
        return;
    enc->buf = buf;
    enc->cap = buf != NULL ? cap : 0;
    enc->len = 0;
    enc->err = HSMC_OK;
}

hsmc_err_t hsmc_cbor_enc_finish(const hsmc_cbor_enc_t *enc, size_t *len)
{
    if (enc == NULL)
        return HSMC_ERR_ARG;
    if (len != NULL)
        *len = enc->len;
    return enc->err;
}

/* A bad argument is a caller bug a bigger buffer will not fix, so it wins
 * over an earlier HSMC_ERR_BUFFER. */
static hsmc_err_t enc_bad(hsmc_cbor_enc_t *enc)
{
    enc->err = HSMC_ERR_ARG;
    return enc->err;
}

/* Append head then payload, all or nothing; always count. */
static hsmc_err_t enc_write(hsmc_cbor_enc_t *enc, const uint8_t *head, size_t hlen,
                            const uint8_t *payload, size_t plen)
{
    size_t total;

    if (plen > SIZE_MAX - hlen || enc->len > SIZE_MAX - (hlen + plen)) {
        enc->len = SIZE_MAX;
        return enc_bad(enc);
    }
    total = hlen + plen;
    if (enc->err == HSMC_OK && enc->buf != NULL) {
        /* enc->len <= enc->cap holds while no error has occurred. */
        if (total > enc->cap - enc->len) {
            enc->err = HSMC_ERR_BUFFER;
        } else {
            if (hlen > 0)
                memcpy(enc->buf + enc->len, head, hlen);
            if (plen > 0)
                memcpy(enc->buf + enc->len + hlen, payload, plen);
        }
    }
    enc->len += total;
    return enc->err;
}

/* Shortest head for (major, arg), RFC 8949 §4.2.1. */
static size_t head_encode(uint8_t out[HEAD_MAX], unsigned major, uint64_t arg)
{
    size_t n, i;
    uint8_t mt = (uint8_t)(major << 5);

    if (arg < AI_1BYTE) {
        out[0] = (uint8_t)(mt | arg);
        return 1;
    }
    if (arg <= 0xffu) {
        out[0] = (uint8_t)(mt | 24u);
        n = 1;
    } else if (arg <= 0xffffu) {
        out[0] = (uint8_t)(mt | 25u);
        n = 2;
    } else if (arg <= 0xffffffffu) {
        out[0] = (uint8_t)(mt | 26u);
        n = 4;
    } else {
        out[0] = (uint8_t)(mt | 27u);
        n = 8;
    }
    for (i = 0; i < n; i++)
        out[1 + i] = (uint8_t)(arg >> (8 * (n - 1 - i)));
    return n + 1;
}

static hsmc_err_t enc_head(hsmc_cbor_enc_t *enc, unsigned major, uint64_t arg,
                           const uint8_t *payload, size_t plen)
{
    uint8_t head[HEAD_MAX];
    size_t hlen;

    if (enc == NULL)
        return HSMC_ERR_ARG;
    hlen = head_encode(head, major, arg);
    return enc_write(enc, head, hlen, payload, plen);
}

hsmc_err_t hsmc_cbor_put_uint(hsmc_cbor_enc_t *enc, uint64_t v)
{
    return enc_head(enc, MT_UINT, v, NULL, 0);
}

hsmc_err_t hsmc_cbor_put_int(hsmc_cbor_enc_t *enc, int64_t v)
{
    /* -1 - v as unsigned is ~v in two's complement, without overflow. */
    if (v < 0)
        return enc_head(enc, MT_NINT, ~(uint64_t)v, NULL, 0);
    return enc_head(enc, MT_UINT, (uint64_t)v, NULL, 0);
}

hsmc_err_t hsmc_cbor_put_nint(hsmc_cbor_enc_t *enc, uint64_t arg)
{
    return enc_head(enc, MT_NINT, arg, NULL, 0);
}

hsmc_err_t hsmc_cbor_put_bstr(hsmc_cbor_enc_t *enc, const uint8_t *p, size_t len)
{
    if (enc == NULL)
        return HSMC_ERR_ARG;
    if (p == NULL && len > 0)
        return enc_bad(enc);
    return enc_head(enc, MT_BSTR, (uint64_t)len, p, len);
}

hsmc_err_t hsmc_cbor_put_tstr(hsmc_cbor_enc_t *enc, const char *p, size_t len)
{
    if (enc == NULL)
        return HSMC_ERR_ARG;
    if (p == NULL && len > 0)
        return enc_bad(enc);
    if (len > 0 && !utf8_valid((const uint8_t *)p, len))
        return enc_bad(enc);
    return enc_head(enc, MT_TSTR, (uint64_t)len, (const uint8_t *)p, len);
}

hsmc_err_t hsmc_cbor_put_array(hsmc_cbor_enc_t *enc, size_t n)
{
    return enc_head(enc, MT_ARRAY, (uint64_t)n, NULL, 0);
}

hsmc_err_t hsmc_cbor_put_map(hsmc_cbor_enc_t *enc, size_t n)
{
    return enc_head(enc, MT_MAP, (uint64_t)n, NULL, 0);
}

hsmc_err_t hsmc_cbor_put_tag(hsmc_cbor_enc_t *enc, uint64_t tag)
{
    return enc_head(enc, MT_TAG, tag, NULL, 0);
}

hsmc_err_t hsmc_cbor_put_simple(hsmc_cbor_enc_t *enc, uint8_t v)
{
    if (enc == NULL)
        return HSMC_ERR_ARG;
    if (v < HSMC_CBOR_SIMPLE_FALSE || v > HSMC_CBOR_SIMPLE_UNDEFINED)
        return enc_bad(enc);
    return enc_head(enc, MT_SIMPLE, v, NULL, 0);
}

hsmc_err_t hsmc_cbor_put_bool(hsmc_cbor_enc_t *enc, bool v)
{
    return hsmc_cbor_put_simple(enc, v ? HSMC_CBOR_SIMPLE_TRUE : HSMC_CBOR_SIMPLE_FALSE);
}

hsmc_err_t hsmc_cbor_put_null(hsmc_cbor_enc_t *enc)
{
    return hsmc_cbor_put_simple(enc, HSMC_CBOR_SIMPLE_NULL);
}

hsmc_err_t hsmc_cbor_put_raw(hsmc_cbor_enc_t *enc, const uint8_t *p, size_t len)
{
    if (enc == NULL)
        return HSMC_ERR_ARG;
    if (p == NULL && len > 0)
        return enc_bad(enc);
    return enc_write(enc, NULL, 0, p, len);
}

hsmc_err_t hsmc_cbor_put_bstr_header(hsmc_cbor_enc_t *enc, size_t len)
{
    return enc_head(enc, MT_BSTR, (uint64_t)len, NULL, 0);
}

int hsmc_cbor_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;

    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* ---- Decoder ----------------------------------------------------------- */

typedef struct {
    unsigned major;
    unsigned ai;
    uint64_t arg;
    size_t hlen; /* bytes of the head */
} head_t;

static hsmc_err_t dec_fail(hsmc_cbor_dec_t *dec, size_t off, const char *why)
{
    if (dec->err == HSMC_OK) {
        dec->err = HSMC_ERR_FORMAT;
        dec->err_msg = why;
        dec->err_off = off;
    }
    return dec->err;
}

void hsmc_cbor_dec_init(hsmc_cbor_dec_t *dec, const uint8_t *p, size_t len)
{
    if (dec == NULL)
        return;
    memset(dec, 0, sizeof *dec);
    dec->buf = p;
    dec->len = len;
    dec->flags = HSMC_CBOR_DEFAULT_FLAGS;
    if (p == NULL && len > 0) {
        dec->len = 0;
        dec->err = HSMC_ERR_ARG;
        dec->err_msg = "no input buffer";
    }
}

void hsmc_cbor_dec_set_flags(hsmc_cbor_dec_t *dec, unsigned flags)
{
    if (dec != NULL)
        dec->flags = flags & HSMC_CBOR_STRICT_SHORTEST;
}

/* Read and check the head at pos (does not move the decoder). */
static hsmc_err_t read_head(hsmc_cbor_dec_t *dec, size_t pos, head_t *h)
{
    static const uint64_t min_arg[4] = {24u, 0x100u, 0x10000u, 0x100000000u};
    size_t rem = dec->len - pos;
    size_t n, i;
    uint8_t ib;

    if (rem == 0)
        return dec_fail(dec, pos, "input ends where an item was expected");
    ib = dec->buf[pos];
    h->major = ib >> 5;
    h->ai = ib & 0x1fu;
    h->hlen = 1;
    h->arg = h->ai;
    if (h->major == MT_SIMPLE) {
        if (h->ai >= 25 && h->ai <= 27)
            return dec_fail(dec, pos, "floating-point value (not accepted)");
        if (h->ai == AI_INDEFINITE)
            return dec_fail(dec, pos, "break code (indefinite lengths are not accepted)");
        if (h->ai < HSMC_CBOR_SIMPLE_FALSE || h->ai > HSMC_CBOR_SIMPLE_UNDEFINED)
            return dec_fail(dec, pos, "simple value other than false/true/null/undefined");
        return HSMC_OK;
    }
    if (h->ai < AI_1BYTE)
        return HSMC_OK;
    if (h->ai == AI_INDEFINITE)
        return dec_fail(dec, pos, "indefinite length (not accepted)");
    if (h->ai > 27)
        return dec_fail(dec, pos, "reserved additional information 28..30");
    n = (size_t)1 << (h->ai - AI_1BYTE);
    if (rem - 1 < n)
        return dec_fail(dec, pos, "input ends inside an item head");
    h->arg = 0;
    for (i = 0; i < n; i++)
        h->arg = (h->arg << 8) | dec->buf[pos + 1 + i];
    if ((dec->flags & HSMC_CBOR_STRICT_SHORTEST) != 0 && h->arg < min_arg[h->ai - AI_1BYTE])
        return dec_fail(dec, pos, "argument not in its shortest form");
    h->hlen = n + 1;
    return HSMC_OK;
}

/*
 * Checks of a string's payload or a container's count against the input
 * after the head at pos, shared by the getters and the skipper so both
 * apply the same rules. *items: items a container holds (2 per map pair).
 */
static hsmc_err_t check_body(hsmc_cbor_dec_t *dec, size_t pos, const head_t *h, size_t *items)
{
    size_t rem = dec->len - pos - h->hlen;

    *items = 0;
    switch (h->major) {
    case MT_BSTR:
    case MT_TSTR:
        /* Compare against what remains; pos + arg could overflow. */
        if (h->arg > (uint64_t)rem)
            return dec_fail(dec, pos, "string longer than the remaining input");
        if (h->major == MT_TSTR && !utf8_valid(dec->buf + pos + h->hlen, (size_t)h->arg))
            return dec_fail(dec, pos, "text string is not valid UTF-8");
        return HSMC_OK;
    case MT_ARRAY:
        if (h->arg > (uint64_t)rem)
            return dec_fail(dec, pos, "array count exceeds what the remaining input can hold");
        *items = (size_t)h->arg;
        return HSMC_OK;
    case MT_MAP:
        if (h->arg > (uint64_t)(rem / 2))
            return dec_fail(dec, pos, "map count exceeds what the remaining input can hold");
        *items = (size_t)h->arg * 2;
        return HSMC_OK;
    case MT_TAG:
        if (rem == 0)
            return dec_fail(dec, pos, "tag without a tagged item");
        return HSMC_OK;
    default:
        return HSMC_OK;
    }
}

/* One item is complete: close every container it completes. */
static void item_done(hsmc_cbor_dec_t *dec)
{
    while (dec->depth > 0) {
        if (--dec->open[dec->depth - 1] != 0)
            return;
        dec->depth--;
    }
}

/* Read the head of the next item and require its major type (and, for
 * major type 7, its simple value when want_simple is non-zero). */
static hsmc_err_t expect(hsmc_cbor_dec_t *dec, unsigned major, unsigned want_simple, head_t *h)
{
    if (dec->err != HSMC_OK)
        return dec->err;
    if (read_head(dec, dec->pos, h) != HSMC_OK)
        return dec->err;
    if (h->major != major || (want_simple != 0 && h->arg != want_simple))
        return dec_fail(dec, dec->pos, "item of another type than expected");
    return HSMC_OK;
}

hsmc_err_t hsmc_cbor_peek(hsmc_cbor_dec_t *dec, hsmc_cbor_type_t *type)
{
    head_t h;

    if (dec == NULL || type == NULL)
        return HSMC_ERR_ARG;
    if (dec->err != HSMC_OK)
        return dec->err;
    if (read_head(dec, dec->pos, &h) != HSMC_OK)
        return dec->err;
    if (h.major == MT_SIMPLE)
        *type = (hsmc_cbor_type_t)(HSMC_CBOR_FALSE + (h.arg - HSMC_CBOR_SIMPLE_FALSE));
    else
        *type = (hsmc_cbor_type_t)h.major;
    return HSMC_OK;
}

/* Consume a head-only item (integer, simple value). */
static hsmc_err_t take_scalar(hsmc_cbor_dec_t *dec, const head_t *h)
{
    dec->pos += h->hlen;
    item_done(dec);
    return HSMC_OK;
}

/* Take a head-only item of `major` and give its argument. */
static hsmc_err_t get_arg(hsmc_cbor_dec_t *dec, unsigned major, uint64_t *arg)
{
    head_t h;

    if (expect(dec, major, 0, &h) != HSMC_OK)
        return dec->err;
    *arg = h.arg;
    return take_scalar(dec, &h);
}

hsmc_err_t hsmc_cbor_get_uint(hsmc_cbor_dec_t *dec, uint64_t *v)
{
    if (dec == NULL || v == NULL)
        return HSMC_ERR_ARG;
    return get_arg(dec, MT_UINT, v);
}

hsmc_err_t hsmc_cbor_get_nint(hsmc_cbor_dec_t *dec, uint64_t *arg)
{
    if (dec == NULL || arg == NULL)
        return HSMC_ERR_ARG;
    return get_arg(dec, MT_NINT, arg);
}

hsmc_err_t hsmc_cbor_get_int(hsmc_cbor_dec_t *dec, int64_t *v)
{
    head_t h;

    if (dec == NULL || v == NULL)
        return HSMC_ERR_ARG;
    if (dec->err != HSMC_OK)
        return dec->err;
    if (read_head(dec, dec->pos, &h) != HSMC_OK)
        return dec->err;
    if (h.major != MT_UINT && h.major != MT_NINT)
        return dec_fail(dec, dec->pos, "item of another type than expected");
    if (h.arg > (uint64_t)INT64_MAX)
        return dec_fail(dec, dec->pos, "integer outside the int64 range");
    /* Major type 1 is -1 - arg; arg <= INT64_MAX keeps this in range. */
    *v = h.major == MT_UINT ? (int64_t)h.arg : -1 - (int64_t)h.arg;
    return take_scalar(dec, &h);
}

static hsmc_err_t get_string(hsmc_cbor_dec_t *dec, unsigned major, const uint8_t **p, size_t *len)
{
    head_t h;
    size_t items;

    if (expect(dec, major, 0, &h) != HSMC_OK)
        return dec->err;
    if (check_body(dec, dec->pos, &h, &items) != HSMC_OK)
        return dec->err;
    *p = dec->buf + dec->pos + h.hlen;
    *len = (size_t)h.arg;
    dec->pos += h.hlen + (size_t)h.arg;
    item_done(dec);
    return HSMC_OK;
}

hsmc_err_t hsmc_cbor_get_bstr(hsmc_cbor_dec_t *dec, const uint8_t **p, size_t *len)
{
    if (dec == NULL || p == NULL || len == NULL)
        return HSMC_ERR_ARG;
    return get_string(dec, MT_BSTR, p, len);
}

hsmc_err_t hsmc_cbor_get_tstr(hsmc_cbor_dec_t *dec, const char **p, size_t *len)
{
    const uint8_t *u = NULL;
    hsmc_err_t err;

    if (dec == NULL || p == NULL || len == NULL)
        return HSMC_ERR_ARG;
    err = get_string(dec, MT_TSTR, &u, len);
    if (err == HSMC_OK)
        *p = (const char *)u;
    return err;
}

static hsmc_err_t get_container(hsmc_cbor_dec_t *dec, unsigned major, size_t *n)
{
    head_t h;
    size_t items;

    if (expect(dec, major, 0, &h) != HSMC_OK)
        return dec->err;
    if (check_body(dec, dec->pos, &h, &items) != HSMC_OK)
        return dec->err;
    /* Even an empty container counts as a level: skip() sees it the same. */
    if (dec->depth >= HSMC_CBOR_MAX_DEPTH)
        return dec_fail(dec, dec->pos, "arrays/maps nested deeper than HSMC_CBOR_MAX_DEPTH");
    dec->pos += h.hlen;
    *n = (size_t)h.arg;
    if (items == 0)
        item_done(dec);
    else
        dec->open[dec->depth++] = items;
    return HSMC_OK;
}

hsmc_err_t hsmc_cbor_get_array(hsmc_cbor_dec_t *dec, size_t *n)
{
    if (dec == NULL || n == NULL)
        return HSMC_ERR_ARG;
    return get_container(dec, MT_ARRAY, n);
}

hsmc_err_t hsmc_cbor_get_map(hsmc_cbor_dec_t *dec, size_t *n)
{
    if (dec == NULL || n == NULL)
        return HSMC_ERR_ARG;
    return get_container(dec, MT_MAP, n);
}

hsmc_err_t hsmc_cbor_get_tag(hsmc_cbor_dec_t *dec, uint64_t *tag)
{
    head_t h;
    size_t items;

    if (dec == NULL || tag == NULL)
        return HSMC_ERR_ARG;
    if (expect(dec, MT_TAG, 0, &h) != HSMC_OK)
        return dec->err;
    if (check_body(dec, dec->pos, &h, &items) != HSMC_OK)
        return dec->err;
    /* Not a complete item: the tagged item that follows is. */
    *tag = h.arg;
    dec->pos += h.hlen;
    return HSMC_OK;
}

hsmc_err_t hsmc_cbor_get_simple(hsmc_cbor_dec_t *dec, uint8_t *v)
{
    uint64_t arg = 0;

    if (dec == NULL || v == NULL)
        return HSMC_ERR_ARG;
    if (get_arg(dec, MT_SIMPLE, &arg) != HSMC_OK)
        return dec->err;
    *v = (uint8_t)arg;
    return HSMC_OK;
}

hsmc_err_t hsmc_cbor_get_bool(hsmc_cbor_dec_t *dec, bool *v)
{
    head_t h;

    if (dec == NULL || v == NULL)
        return HSMC_ERR_ARG;
    if (expect(dec, MT_SIMPLE, 0, &h) != HSMC_OK)
        return dec->err;
    if (h.arg != HSMC_CBOR_SIMPLE_FALSE && h.arg != HSMC_CBOR_SIMPLE_TRUE)
        return dec_fail(dec, dec->pos, "item of another type than expected");
    *v = h.arg == HSMC_CBOR_SIMPLE_TRUE;
    return take_scalar(dec, &h);
}

hsmc_err_t hsmc_cbor_get_null(hsmc_cbor_dec_t *dec)
{
    head_t h;

    if (dec == NULL)
        return HSMC_ERR_ARG;
    if (expect(dec, MT_SIMPLE, HSMC_CBOR_SIMPLE_NULL, &h) != HSMC_OK)
        return dec->err;
    return take_scalar(dec, &h);
}

/*
 * Walk one whole item starting at *pos, checking everything, without
 * touching the decoder's position or open[] (errors are recorded in dec).
 * Nesting is tracked in a local counter stack; together with the levels
 * already open in dec it may not exceed HSMC_CBOR_MAX_DEPTH.
 */
static hsmc_err_t walk(hsmc_cbor_dec_t *dec, size_t *pos)
{
    size_t stack[HSMC_CBOR_MAX_DEPTH];
    unsigned top = 0;
    size_t at = *pos;
    head_t h;
    size_t items;

    if (dec->err != HSMC_OK)
        return dec->err;
    for (;;) {
        if (read_head(dec, at, &h) != HSMC_OK || check_body(dec, at, &h, &items) != HSMC_OK)
            return dec->err;
        if (h.major == MT_TAG) {
            at += h.hlen; /* the tagged item follows; nothing completed yet */
            continue;
        }
        if (h.major == MT_ARRAY || h.major == MT_MAP) {
            if (dec->depth + top >= HSMC_CBOR_MAX_DEPTH)
                return dec_fail(dec, at, "arrays/maps nested deeper than HSMC_CBOR_MAX_DEPTH");
            at += h.hlen;
            if (items > 0) {
                stack[top++] = items;
                continue;
            }
        } else if (h.major == MT_BSTR || h.major == MT_TSTR) {
            at += h.hlen + (size_t)h.arg;
        } else {
            at += h.hlen;
        }
        /* An item is complete; it may complete its containers too. */
        while (top > 0 && --stack[top - 1] == 0)
            top--;
        if (top == 0)
            break;
    }
    *pos = at;
    return HSMC_OK;
}

hsmc_err_t hsmc_cbor_get_raw(hsmc_cbor_dec_t *dec, const uint8_t **p, size_t *len)
{
    size_t at;

    if (dec == NULL || p == NULL || len == NULL)
        return HSMC_ERR_ARG;
    at = dec->pos;
    if (walk(dec, &at) != HSMC_OK)
        return dec->err;
    *p = dec->buf + dec->pos;
    *len = at - dec->pos;
    dec->pos = at;
    item_done(dec);
    return HSMC_OK;
}

hsmc_err_t hsmc_cbor_skip(hsmc_cbor_dec_t *dec)
{
    const uint8_t *p;
    size_t len;

    return hsmc_cbor_get_raw(dec, &p, &len);
}

/* Common entry checks of the map helpers: dec just entered a map of n pairs. */
static hsmc_err_t map_check_args(const hsmc_cbor_dec_t *dec, size_t n)
{
    if (dec == NULL)
        return HSMC_ERR_ARG;
    if (dec->err != HSMC_OK)
        return dec->err;
    if (n == 0)
        return HSMC_OK;
    if (n > SIZE_MAX / 2 || dec->depth == 0 || dec->open[dec->depth - 1] != 2 * n)
        return HSMC_ERR_ARG; /* not positioned at the first key of such a map */
    return HSMC_OK;
}

hsmc_err_t hsmc_cbor_map_unique(hsmc_cbor_dec_t *dec, size_t n)
{
    size_t i, j, ki, vi, next, kj, vj;
    hsmc_err_t err = map_check_args(dec, n);

    if (err != HSMC_OK || n == 0)
        return err;
    if (n > HSMC_CBOR_MAP_CHECK_MAX)
        return dec_fail(dec, dec->pos, "map too large for the duplicate-key check");
    /* Offsets only: key i is [ki, vi), its pair ends at next. */
    ki = dec->pos;
    for (i = 0; i < n; i++) {
        vi = ki;
        if (walk(dec, &vi) != HSMC_OK)
            return dec->err;
        next = vi;
        if (walk(dec, &next) != HSMC_OK)
            return dec->err;
        kj = next;
        for (j = i + 1; j < n; j++) {
            vj = kj;
            if (walk(dec, &vj) != HSMC_OK)
                return dec->err;
            if (vj - kj == vi - ki && memcmp(dec->buf + kj, dec->buf + ki, vi - ki) == 0)
                return dec_fail(dec, kj, "duplicate map key");
            kj = vj;
            if (walk(dec, &kj) != HSMC_OK)
                return dec->err;
        }
        ki = next;
    }
    return HSMC_OK;
}

hsmc_err_t hsmc_cbor_map_sorted(hsmc_cbor_dec_t *dec, size_t n)
{
    size_t i, key, val, prev = 0, prev_len = 0;
    hsmc_err_t err = map_check_args(dec, n);

    if (err != HSMC_OK || n == 0)
        return err;
    key = dec->pos;
    for (i = 0; i < n; i++) {
        val = key;
        if (walk(dec, &val) != HSMC_OK)
            return dec->err;
        if (i > 0 && hsmc_cbor_key_cmp(dec->buf + prev, prev_len, dec->buf + key, val - key) >= 0)
            return dec_fail(dec, key, "map keys not in deterministic order (or repeated)");
        prev = key;
        prev_len = val - key;
        key = val;
        if (walk(dec, &key) != HSMC_OK)
            return dec->err;
    }
    return HSMC_OK;
}

bool hsmc_cbor_dec_at_end(const hsmc_cbor_dec_t *dec)
{
    return dec == NULL || dec->err != HSMC_OK || dec->pos == dec->len;
}

hsmc_err_t hsmc_cbor_dec_finish(hsmc_cbor_dec_t *dec)
{
    if (dec == NULL)
        return HSMC_ERR_ARG;
    if (dec->err != HSMC_OK)
        return dec->err;
    if (dec->depth != 0)
        return dec_fail(dec, dec->pos, "array or map not read to its end");
    if (dec->pos != dec->len)
        return dec_fail(dec, dec->pos, "trailing bytes after the last item");
    return HSMC_OK;
}
