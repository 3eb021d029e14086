/*
 * CBOR codec (RFC 8949).
 *
 * First the examples of RFC 8949 Appendix A: each one hsmc accepts is
 * encoded to exactly the listed bytes and decoded back to its value; each
 * one hsmc rejects by design (floats, simple values other than
 * false/true/null/undefined, indefinite lengths) fails with
 * HSMC_ERR_FORMAT. Then every strict rule of the decoder on its own,
 * truncation at every length, the encoder's size-only pass and buffer
 * limits, nesting depth, and the map key checks.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "hsmc_test.h"

/* ---- helpers ----------------------------------------------------------- */

#define MAXBUF 256

typedef struct {
    uint8_t b[MAXBUF];
    size_t n;
} bytes_t;

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex text (spaces ignored) to bytes; aborts the test run on bad text. */
static bytes_t hex(const char *s)
{
    bytes_t r;
    r.n = 0;
    while (*s != '\0') {
        int hi, lo;
        if (*s == ' ') {
            s++;
            continue;
        }
        hi = hexval(s[0]);
        lo = s[1] != '\0' ? hexval(s[1]) : -1;
        if (hi < 0 || lo < 0 || r.n >= MAXBUF) {
            fprintf(stderr, "bad hex in test: %s\n", s);
            exit(2);
        }
        r.b[r.n++] = (uint8_t)(hi * 16 + lo);
        s += 2;
    }
    return r;
}

static int same(const uint8_t *a, size_t alen, const bytes_t *want)
{
    return alen == want->n && (alen == 0 || memcmp(a, want->b, alen) == 0);
}

/*
 * Generic decode-and-re-encode of one item with an explicit stack (the
 * pull API only, no skip), so tests can push any input through every
 * getter. Returns the first decoder or encoder error.
 */
static hsmc_err_t reencode_item(hsmc_cbor_dec_t *d, hsmc_cbor_enc_t *e)
{
    size_t left[HSMC_CBOR_MAX_DEPTH + 1];
    int top = 0;
    hsmc_err_t err = HSMC_OK;

    left[0] = 1;
    while (top >= 0 && err == HSMC_OK) {
        hsmc_cbor_type_t t;
        uint64_t u;
        const uint8_t *p;
        const char *s;
        size_t n;
        uint8_t sv;

        if (left[top] == 0) {
            top--;
            continue;
        }
        left[top]--;
        err = hsmc_cbor_peek(d, &t);
        if (err != HSMC_OK)
            break;
        switch (t) {
        case HSMC_CBOR_UINT:
            if ((err = hsmc_cbor_get_uint(d, &u)) == HSMC_OK)
                err = hsmc_cbor_put_uint(e, u);
            break;
        case HSMC_CBOR_NINT:
            if ((err = hsmc_cbor_get_nint(d, &u)) == HSMC_OK)
                err = hsmc_cbor_put_nint(e, u);
            break;
        case HSMC_CBOR_BSTR:
            if ((err = hsmc_cbor_get_bstr(d, &p, &n)) == HSMC_OK)
                err = hsmc_cbor_put_bstr(e, p, n);
            break;
        case HSMC_CBOR_TSTR:
            if ((err = hsmc_cbor_get_tstr(d, &s, &n)) == HSMC_OK)
                err = hsmc_cbor_put_tstr(e, s, n);
            break;
        case HSMC_CBOR_ARRAY:
        case HSMC_CBOR_MAP:
            if (t == HSMC_CBOR_ARRAY)
                err = hsmc_cbor_get_array(d, &n);
            else
                err = hsmc_cbor_get_map(d, &n);
            if (err != HSMC_OK)
                break;
            err = t == HSMC_CBOR_ARRAY ? hsmc_cbor_put_array(e, n) : hsmc_cbor_put_map(e, n);
            if (top >= HSMC_CBOR_MAX_DEPTH)
                return HSMC_ERR_INTERNAL; /* the decoder should have refused */
            left[++top] = t == HSMC_CBOR_ARRAY ? n : 2 * n;
            break;
        case HSMC_CBOR_TAG:
            if ((err = hsmc_cbor_get_tag(d, &u)) == HSMC_OK)
                err = hsmc_cbor_put_tag(e, u);
            left[top]++; /* the tagged item still has to come */
            break;
        default:
            if ((err = hsmc_cbor_get_simple(d, &sv)) == HSMC_OK)
                err = hsmc_cbor_put_simple(e, sv);
            break;
        }
    }
    return err;
}

/* Decode all of `in` generically, re-encode into out; then finish. */
static hsmc_err_t roundtrip(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    hsmc_cbor_dec_t d;
    hsmc_cbor_enc_t e;
    hsmc_err_t err = HSMC_OK;

    hsmc_cbor_dec_init(&d, in, len);
    hsmc_cbor_enc_init(&e, out, cap);
    do {
        err = reencode_item(&d, &e);
    } while (err == HSMC_OK && !hsmc_cbor_dec_at_end(&d));
    if (err != HSMC_OK)
        return err;
    err = hsmc_cbor_dec_finish(&d);
    if (err != HSMC_OK)
        return err;
    return hsmc_cbor_enc_finish(&e, outlen);
}

/* skip() over one whole item then finish. */
static hsmc_err_t skip_all(const uint8_t *in, size_t len)
{
    hsmc_cbor_dec_t d;
    hsmc_cbor_dec_init(&d, in, len);
    if (hsmc_cbor_skip(&d) != HSMC_OK)
        return d.err;
    return hsmc_cbor_dec_finish(&d);
}

/* The input must be rejected as malformed by every path: peek/get walk,
 * skip, and get_raw. */
static void check_rejected(const char *hx, const char *why_part)
{
    bytes_t in = hex(hx);
    uint8_t out[MAXBUF];
    size_t n = 0;
    hsmc_cbor_dec_t d;
    const uint8_t *p;

    CHECK_ERR(roundtrip(in.b, in.n, out, sizeof out, &n), HSMC_ERR_FORMAT);
    CHECK_ERR(skip_all(in.b, in.n), HSMC_ERR_FORMAT);
    hsmc_cbor_dec_init(&d, in.b, in.n);
    CHECK_ERR(hsmc_cbor_get_raw(&d, &p, &n), HSMC_ERR_FORMAT);
    CHECK(d.err_msg != NULL);
    if (why_part != NULL && (d.err_msg == NULL || strstr(d.err_msg, why_part) == NULL)) {
        fprintf(stderr, "  %s: message \"%s\" lacks \"%s\"\n", hx,
                d.err_msg ? d.err_msg : "(null)", why_part);
        CHECK(0);
    }
}

/* Valid input: round-trips byte for byte and skips as one item. */
static void check_roundtrip(const char *hx)
{
    bytes_t in = hex(hx);
    uint8_t out[MAXBUF];
    size_t n = 0;

    CHECK_ERR(roundtrip(in.b, in.n, out, sizeof out, &n), HSMC_OK);
    if (!same(out, n, &in)) {
        fprintf(stderr, "  %s did not round-trip\n", hx);
        CHECK(0);
    }
    CHECK_ERR(skip_all(in.b, in.n), HSMC_OK);
}

/* Finish e: its bytes must be `want` (shown when they differ); then start d
 * on want. */
static void check_encoded(hsmc_cbor_enc_t *e, const uint8_t *buf, const bytes_t *want,
                          hsmc_cbor_dec_t *d)
{
    size_t len = 0, i;
    CHECK_ERR(hsmc_cbor_enc_finish(e, &len), HSMC_OK);
    if (!same(buf, len, want)) {
        fprintf(stderr, "  encoding differs from ");
        for (i = 0; i < want->n; i++)
            fprintf(stderr, "%02x", want->b[i]);
        fprintf(stderr, "\n");
    }
    CHECK(same(buf, len, want));
    hsmc_cbor_dec_init(d, want->b, want->n);
}

/* d's next item: an array of n items. */
static void check_array(hsmc_cbor_dec_t *d, size_t n)
{
    size_t got = 0;
    CHECK_ERR(hsmc_cbor_get_array(d, &got), HSMC_OK);
    CHECK(got == n);
}

/* d's next item: a map of n pairs; with `keys`, its keys are unique and in
 * order too. */
static void check_map(hsmc_cbor_dec_t *d, size_t n, int keys)
{
    size_t got = 0;
    CHECK_ERR(hsmc_cbor_get_map(d, &got), HSMC_OK);
    CHECK(got == n);
    if (keys) {
        CHECK_ERR(hsmc_cbor_map_unique(d, got), HSMC_OK);
        CHECK_ERR(hsmc_cbor_map_sorted(d, got), HSMC_OK);
    }
}

/* Encode the unsigned integers first..last. */
static void put_uints(hsmc_cbor_enc_t *e, uint64_t first, uint64_t last)
{
    uint64_t k;
    for (k = first; k <= last; k++)
        hsmc_cbor_put_uint(e, k);
}

/* d's next items: the unsigned integers first..last. */
static void check_uints(hsmc_cbor_dec_t *d, uint64_t first, uint64_t last)
{
    uint64_t k, u = 0;
    for (k = first; k <= last; k++) {
        CHECK_ERR(hsmc_cbor_get_uint(d, &u), HSMC_OK);
        CHECK(u == k);
    }
}

/* ---- RFC 8949 Appendix A: integers --------------------------------------- */

typedef struct {
    const char *hex;
    int neg;        /* 0: unsigned v; 1: signed via put_int/get_int; 2: -1 - v only via nint */
    uint64_t u;
    int64_t i;
} int_vec_t;

static const int_vec_t rfc_ints[] = {
    {"00", 0, 0, 0},
    {"01", 0, 1, 0},
    {"0a", 0, 10, 0},
    {"17", 0, 23, 0},
    {"1818", 0, 24, 0},
    {"1819", 0, 25, 0},
    {"1864", 0, 100, 0},
    {"1903e8", 0, 1000, 0},
    {"1a000f4240", 0, 1000000, 0},
    {"1b000000e8d4a51000", 0, 1000000000000ull, 0},
    {"1bffffffffffffffff", 0, UINT64_MAX, 0},
    {"3bffffffffffffffff", 2, UINT64_MAX, 0}, /* -18446744073709551616 */
    {"20", 1, 0, -1},
    {"29", 1, 0, -10},
    {"3863", 1, 0, -100},
    {"3903e7", 1, 0, -1000},
};

static void test_rfc_integers(void)
{
    size_t k;
    for (k = 0; k < sizeof rfc_ints / sizeof rfc_ints[0]; k++) {
        const int_vec_t *v = &rfc_ints[k];
        bytes_t want = hex(v->hex);
        uint8_t buf[16];
        hsmc_cbor_enc_t e;
        hsmc_cbor_dec_t d;
        hsmc_cbor_type_t t;
        uint64_t u = 0;
        int64_t i = 0;

        hsmc_cbor_enc_init(&e, buf, sizeof buf);
        if (v->neg == 0)
            hsmc_cbor_put_uint(&e, v->u);
        else if (v->neg == 1)
            hsmc_cbor_put_int(&e, v->i);
        else
            hsmc_cbor_put_nint(&e, v->u);
        check_encoded(&e, buf, &want, &d);
        CHECK_ERR(hsmc_cbor_peek(&d, &t), HSMC_OK);
        if (v->neg == 0) {
            CHECK(t == HSMC_CBOR_UINT);
            CHECK_ERR(hsmc_cbor_get_uint(&d, &u), HSMC_OK);
            CHECK(u == v->u);
        } else if (v->neg == 1) {
            CHECK(t == HSMC_CBOR_NINT);
            CHECK_ERR(hsmc_cbor_get_int(&d, &i), HSMC_OK);
            CHECK(i == v->i);
        } else {
            CHECK(t == HSMC_CBOR_NINT);
            CHECK_ERR(hsmc_cbor_get_nint(&d, &u), HSMC_OK);
            CHECK(u == v->u);
        }
        CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);
        check_roundtrip(v->hex);
    }

    /* Unsigned values up to INT64_MAX also read through get_int. */
    {
        bytes_t in = hex("1b000000e8d4a51000");
        hsmc_cbor_dec_t d;
        int64_t i = 0;
        hsmc_cbor_dec_init(&d, in.b, in.n);
        CHECK_ERR(hsmc_cbor_get_int(&d, &i), HSMC_OK);
        CHECK(i == 1000000000000ll);
    }
    /* Bignums (tags 2 and 3) are a tag over a byte string. */
    {
        static const uint8_t mag[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
        bytes_t want = hex("c249010000000000000000");
        uint8_t buf[16];
        size_t len = 0;
        hsmc_cbor_enc_t e;
        hsmc_cbor_dec_t d;
        uint64_t tag = 0;
        const uint8_t *p = NULL;

        hsmc_cbor_enc_init(&e, buf, sizeof buf);
        hsmc_cbor_put_tag(&e, 2);
        hsmc_cbor_put_bstr(&e, mag, sizeof mag);
        check_encoded(&e, buf, &want, &d);
        CHECK_ERR(hsmc_cbor_get_tag(&d, &tag), HSMC_OK);
        CHECK(tag == 2);
        CHECK_ERR(hsmc_cbor_get_bstr(&d, &p, &len), HSMC_OK);
        CHECK(len == 9 && memcmp(p, mag, 9) == 0);
        CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);
        check_roundtrip("c349010000000000000000");
    }
}

/* int64 edges: get_int takes exactly [INT64_MIN, INT64_MAX]. */
static void test_int64_range(void)
{
    static const struct {
        const char *hex;
        int64_t v;
        hsmc_err_t err;
    } vec[] = {
        {"1b7fffffffffffffff", INT64_MAX, HSMC_OK},
        {"1b8000000000000000", 0, HSMC_ERR_FORMAT},
        {"3b7fffffffffffffff", INT64_MIN, HSMC_OK},
        {"3b8000000000000000", 0, HSMC_ERR_FORMAT},
        {"3bffffffffffffffff", 0, HSMC_ERR_FORMAT},
    };
    size_t k;
    for (k = 0; k < sizeof vec / sizeof vec[0]; k++) {
        bytes_t in = hex(vec[k].hex);
        uint8_t buf[16];
        size_t len = 0;
        hsmc_cbor_dec_t d;
        hsmc_cbor_enc_t e;
        int64_t v = 0;

        hsmc_cbor_dec_init(&d, in.b, in.n);
        CHECK_ERR(hsmc_cbor_get_int(&d, &v), vec[k].err);
        if (vec[k].err == HSMC_OK) {
            CHECK(v == vec[k].v);
            hsmc_cbor_enc_init(&e, buf, sizeof buf);
            hsmc_cbor_put_int(&e, v);
            CHECK_ERR(hsmc_cbor_enc_finish(&e, &len), HSMC_OK);
            CHECK(same(buf, len, &in));
        } else {
            CHECK(d.err_msg != NULL && strstr(d.err_msg, "int64") != NULL);
        }
    }
}

/* Every argument width boundary, both major types 0 and 1. */
static void test_width_boundaries(void)
{
    static const struct {
        uint64_t v;
        size_t len;
    } vec[] = {
        {0, 1}, {23, 1}, {24, 2}, {0xff, 2}, {0x100, 3}, {0xffff, 3},
        {0x10000, 5}, {0xffffffffu, 5}, {0x100000000ull, 9}, {UINT64_MAX, 9},
    };
    size_t k;
    for (k = 0; k < sizeof vec / sizeof vec[0]; k++) {
        int major;
        for (major = 0; major < 2; major++) {
            uint8_t buf[16];
            size_t len = 0;
            uint64_t back = 0;
            hsmc_cbor_enc_t e;
            hsmc_cbor_dec_t d;

            hsmc_cbor_enc_init(&e, buf, sizeof buf);
            if (major == 0)
                hsmc_cbor_put_uint(&e, vec[k].v);
            else
                hsmc_cbor_put_nint(&e, vec[k].v);
            CHECK_ERR(hsmc_cbor_enc_finish(&e, &len), HSMC_OK);
            CHECK(len == vec[k].len);
            CHECK((buf[0] >> 5) == major);
            hsmc_cbor_dec_init(&d, buf, len);
            if (major == 0)
                CHECK_ERR(hsmc_cbor_get_uint(&d, &back), HSMC_OK);
            else
                CHECK_ERR(hsmc_cbor_get_nint(&d, &back), HSMC_OK);
            CHECK(back == vec[k].v);
            CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);
        }
    }
}

/* ---- Appendix A: simple values, strings, tags ---------------------------- */

static void test_rfc_simple(void)
{
    static const struct {
        const char *hex;
        uint8_t v;
        hsmc_cbor_type_t t;
    } vec[] = {
        {"f4", HSMC_CBOR_SIMPLE_FALSE, HSMC_CBOR_FALSE},
        {"f5", HSMC_CBOR_SIMPLE_TRUE, HSMC_CBOR_TRUE},
        {"f6", HSMC_CBOR_SIMPLE_NULL, HSMC_CBOR_NULL},
        {"f7", HSMC_CBOR_SIMPLE_UNDEFINED, HSMC_CBOR_UNDEFINED},
    };
    size_t k;
    for (k = 0; k < sizeof vec / sizeof vec[0]; k++) {
        bytes_t want = hex(vec[k].hex);
        uint8_t buf[4];
        uint8_t sv = 0;
        hsmc_cbor_enc_t e;
        hsmc_cbor_dec_t d;
        hsmc_cbor_type_t t;

        hsmc_cbor_enc_init(&e, buf, sizeof buf);
        hsmc_cbor_put_simple(&e, vec[k].v);
        check_encoded(&e, buf, &want, &d);
        CHECK_ERR(hsmc_cbor_peek(&d, &t), HSMC_OK);
        CHECK(t == vec[k].t);
        CHECK_ERR(hsmc_cbor_get_simple(&d, &sv), HSMC_OK);
        CHECK(sv == vec[k].v);
        CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);
    }
    /* The typed helpers. */
    {
        uint8_t buf[4];
        size_t len = 0;
        bool b = false;
        hsmc_cbor_enc_t e;
        hsmc_cbor_dec_t d;
        bytes_t want = hex("f5f4f6");

        hsmc_cbor_enc_init(&e, buf, sizeof buf);
        hsmc_cbor_put_bool(&e, true);
        hsmc_cbor_put_bool(&e, false);
        hsmc_cbor_put_null(&e);
        CHECK_ERR(hsmc_cbor_enc_finish(&e, &len), HSMC_OK);
        CHECK(same(buf, len, &want));
        hsmc_cbor_dec_init(&d, buf, len);
        CHECK_ERR(hsmc_cbor_get_bool(&d, &b), HSMC_OK);
        CHECK(b);
        CHECK_ERR(hsmc_cbor_get_bool(&d, &b), HSMC_OK);
        CHECK(!b);
        CHECK_ERR(hsmc_cbor_get_null(&d), HSMC_OK);
        CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);
    }
    /* Other simple values are never produced. */
    {
        uint8_t buf[4];
        hsmc_cbor_enc_t e;
        hsmc_cbor_enc_init(&e, buf, sizeof buf);
        CHECK_ERR(hsmc_cbor_put_simple(&e, 16), HSMC_ERR_ARG);
        hsmc_cbor_enc_init(&e, buf, sizeof buf);
        CHECK_ERR(hsmc_cbor_put_simple(&e, 24), HSMC_ERR_ARG);
    }
}

static void test_rfc_strings(void)
{
    static const struct {
        const char *hex;
        int text;
        const char *val;
        size_t len;
    } vec[] = {
        {"40", 0, "", 0},
        {"4401020304", 0, "\x01\x02\x03\x04", 4},
        {"60", 1, "", 0},
        {"6161", 1, "a", 1},
        {"6449455446", 1, "IETF", 4},
        {"62225c", 1, "\"\\", 2},
        {"62c3bc", 1, "\xc3\xbc", 2},                 /* U+00FC */
        {"63e6b0b4", 1, "\xe6\xb0\xb4", 3},           /* U+6C34 */
        {"64f0908591", 1, "\xf0\x90\x85\x91", 4},     /* U+10151 */
    };
    size_t k;
    for (k = 0; k < sizeof vec / sizeof vec[0]; k++) {
        bytes_t want = hex(vec[k].hex);
        uint8_t buf[16];
        size_t len = 0;
        hsmc_cbor_enc_t e;
        hsmc_cbor_dec_t d;
        hsmc_cbor_type_t t;

        hsmc_cbor_enc_init(&e, buf, sizeof buf);
        if (vec[k].text)
            hsmc_cbor_put_tstr(&e, vec[k].val, vec[k].len);
        else
            hsmc_cbor_put_bstr(&e, (const uint8_t *)vec[k].val, vec[k].len);
        check_encoded(&e, buf, &want, &d);
        CHECK_ERR(hsmc_cbor_peek(&d, &t), HSMC_OK);
        if (vec[k].text) {
            const char *s = NULL;
            CHECK(t == HSMC_CBOR_TSTR);
            CHECK_ERR(hsmc_cbor_get_tstr(&d, &s, &len), HSMC_OK);
            CHECK(len == vec[k].len && memcmp(s, vec[k].val, len) == 0);
            /* Zero-copy: the view points into the input. */
            CHECK(s == (const char *)want.b + want.n - len);
        } else {
            const uint8_t *p = NULL;
            CHECK(t == HSMC_CBOR_BSTR);
            CHECK_ERR(hsmc_cbor_get_bstr(&d, &p, &len), HSMC_OK);
            CHECK(len == vec[k].len && memcmp(p, vec[k].val, len) == 0);
            CHECK(p == want.b + want.n - len);
        }
        CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);
    }
}

static void test_rfc_tags(void)
{
    static const struct {
        const char *hex;
        uint64_t tag;
        int kind; /* 0 tstr, 1 uint, 2 bstr */
        const char *s;
        size_t slen;
        uint64_t u;
    } vec[] = {
        {"c074323031332d30332d32315432303a30343a30305a", 0, 0, "2013-03-21T20:04:00Z", 20, 0},
        {"c11a514b67b0", 1, 1, NULL, 0, 1363896240},
        {"d74401020304", 23, 2, "\x01\x02\x03\x04", 4, 0},
        {"d818456449455446", 24, 2, "dIETF", 5, 0},
        {"d82076687474703a2f2f7777772e6578616d706c652e636f6d", 32, 0,
         "http://www.example.com", 22, 0},
    };
    size_t k;
    for (k = 0; k < sizeof vec / sizeof vec[0]; k++) {
        bytes_t want = hex(vec[k].hex);
        uint8_t buf[64];
        size_t len = 0;
        uint64_t tag = 0, u = 0;
        hsmc_cbor_enc_t e;
        hsmc_cbor_dec_t d;
        hsmc_cbor_type_t t;

        hsmc_cbor_enc_init(&e, buf, sizeof buf);
        hsmc_cbor_put_tag(&e, vec[k].tag);
        if (vec[k].kind == 0)
            hsmc_cbor_put_tstr(&e, vec[k].s, vec[k].slen);
        else if (vec[k].kind == 1)
            hsmc_cbor_put_uint(&e, vec[k].u);
        else
            hsmc_cbor_put_bstr(&e, (const uint8_t *)vec[k].s, vec[k].slen);
        check_encoded(&e, buf, &want, &d);
        CHECK_ERR(hsmc_cbor_peek(&d, &t), HSMC_OK);
        CHECK(t == HSMC_CBOR_TAG);
        CHECK_ERR(hsmc_cbor_get_tag(&d, &tag), HSMC_OK);
        CHECK(tag == vec[k].tag);
        if (vec[k].kind == 0) {
            const char *s = NULL;
            CHECK_ERR(hsmc_cbor_get_tstr(&d, &s, &len), HSMC_OK);
            CHECK(len == vec[k].slen && memcmp(s, vec[k].s, len) == 0);
        } else if (vec[k].kind == 1) {
            CHECK_ERR(hsmc_cbor_get_uint(&d, &u), HSMC_OK);
            CHECK(u == vec[k].u);
        } else {
            const uint8_t *p = NULL;
            CHECK_ERR(hsmc_cbor_get_bstr(&d, &p, &len), HSMC_OK);
            CHECK(len == vec[k].slen && memcmp(p, vec[k].s, len) == 0);
        }
        CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);
        check_roundtrip(vec[k].hex);
    }
    /* A tag with nothing after it. */
    {
        bytes_t in = hex("c1");
        hsmc_cbor_dec_t d;
        uint64_t tag;
        hsmc_cbor_dec_init(&d, in.b, in.n);
        CHECK_ERR(hsmc_cbor_get_tag(&d, &tag), HSMC_ERR_FORMAT);
        check_rejected("c1", "tag");
        check_rejected("82c101", NULL);
    }
}

/* ---- Appendix A: arrays and maps ----------------------------------------- */

static void test_rfc_arrays(void)
{
    uint8_t buf[64];
    size_t k;
    hsmc_cbor_enc_t e;
    hsmc_cbor_dec_t d;
    bytes_t want;

    /* [] */
    want = hex("80");
    hsmc_cbor_enc_init(&e, buf, sizeof buf);
    hsmc_cbor_put_array(&e, 0);
    check_encoded(&e, buf, &want, &d);
    check_array(&d, 0);
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);

    /* [1, 2, 3] */
    want = hex("83010203");
    hsmc_cbor_enc_init(&e, buf, sizeof buf);
    hsmc_cbor_put_array(&e, 3);
    put_uints(&e, 1, 3);
    check_encoded(&e, buf, &want, &d);
    check_array(&d, 3);
    check_uints(&d, 1, 3);
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);

    /* [1, [2, 3], [4, 5]] */
    want = hex("8301820203820405");
    hsmc_cbor_enc_init(&e, buf, sizeof buf);
    hsmc_cbor_put_array(&e, 3);
    hsmc_cbor_put_uint(&e, 1);
    hsmc_cbor_put_array(&e, 2);
    put_uints(&e, 2, 3);
    hsmc_cbor_put_array(&e, 2);
    put_uints(&e, 4, 5);
    check_encoded(&e, buf, &want, &d);
    check_array(&d, 3);
    check_uints(&d, 1, 1);
    for (k = 0; k < 2; k++) {
        uint64_t a = 0, b = 0;
        check_array(&d, 2);
        CHECK_ERR(hsmc_cbor_get_uint(&d, &a), HSMC_OK);
        CHECK_ERR(hsmc_cbor_get_uint(&d, &b), HSMC_OK);
        CHECK(a == 2 + 2 * k && b == 3 + 2 * k);
    }
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);

    /* [1, 2, ..., 25]: the count needs a one-byte argument. */
    want = hex("98190102030405060708090a0b0c0d0e0f101112131415161718181819");
    hsmc_cbor_enc_init(&e, buf, sizeof buf);
    hsmc_cbor_put_array(&e, 25);
    put_uints(&e, 1, 25);
    check_encoded(&e, buf, &want, &d);
    check_array(&d, 25);
    check_uints(&d, 1, 25);
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);

    check_roundtrip("80");
    check_roundtrip("83010203");
    check_roundtrip("8301820203820405");
    check_roundtrip("98190102030405060708090a0b0c0d0e0f101112131415161718181819");
}

static int tstr_is(hsmc_cbor_dec_t *d, const char *want)
{
    const char *s = NULL;
    size_t len = 0;
    return hsmc_cbor_get_tstr(d, &s, &len) == HSMC_OK && len == strlen(want) &&
           memcmp(s, want, len) == 0;
}

static void test_rfc_maps(void)
{
    uint8_t buf[64];
    size_t k;
    hsmc_cbor_enc_t e;
    hsmc_cbor_dec_t d;
    bytes_t want;
    static const char *const letters[] = {"a", "b", "c", "d", "e"};
    static const char *const upper[] = {"A", "B", "C", "D", "E"};

    /* {} */
    want = hex("a0");
    hsmc_cbor_enc_init(&e, buf, sizeof buf);
    hsmc_cbor_put_map(&e, 0);
    check_encoded(&e, buf, &want, &d);
    check_map(&d, 0, 1);
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);

    /* {1: 2, 3: 4} */
    want = hex("a201020304");
    hsmc_cbor_enc_init(&e, buf, sizeof buf);
    hsmc_cbor_put_map(&e, 2);
    put_uints(&e, 1, 4);
    check_encoded(&e, buf, &want, &d);
    check_map(&d, 2, 1);
    check_uints(&d, 1, 4);
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);

    /* {"a": 1, "b": [2, 3]} */
    want = hex("a26161016162820203");
    hsmc_cbor_enc_init(&e, buf, sizeof buf);
    hsmc_cbor_put_map(&e, 2);
    hsmc_cbor_put_tstr(&e, "a", 1);
    hsmc_cbor_put_uint(&e, 1);
    hsmc_cbor_put_tstr(&e, "b", 1);
    hsmc_cbor_put_array(&e, 2);
    put_uints(&e, 2, 3);
    check_encoded(&e, buf, &want, &d);
    check_map(&d, 2, 1);
    CHECK(tstr_is(&d, "a"));
    check_uints(&d, 1, 1);
    CHECK(tstr_is(&d, "b"));
    check_array(&d, 2);
    check_uints(&d, 2, 3);
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);

    /* ["a", {"b": "c"}] */
    want = hex("826161a161626163");
    hsmc_cbor_enc_init(&e, buf, sizeof buf);
    hsmc_cbor_put_array(&e, 2);
    hsmc_cbor_put_tstr(&e, "a", 1);
    hsmc_cbor_put_map(&e, 1);
    hsmc_cbor_put_tstr(&e, "b", 1);
    hsmc_cbor_put_tstr(&e, "c", 1);
    check_encoded(&e, buf, &want, &d);
    check_array(&d, 2);
    CHECK(tstr_is(&d, "a"));
    check_map(&d, 1, 0);
    CHECK(tstr_is(&d, "b"));
    CHECK(tstr_is(&d, "c"));
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);

    /* {"a": "A", ..., "e": "E"} */
    want = hex("a56161614161626142616361436164614461656145");
    hsmc_cbor_enc_init(&e, buf, sizeof buf);
    hsmc_cbor_put_map(&e, 5);
    for (k = 0; k < 5; k++) {
        hsmc_cbor_put_tstr(&e, letters[k], 1);
        hsmc_cbor_put_tstr(&e, upper[k], 1);
    }
    check_encoded(&e, buf, &want, &d);
    check_map(&d, 5, 1);
    for (k = 0; k < 5; k++) {
        CHECK(tstr_is(&d, letters[k]));
        CHECK(tstr_is(&d, upper[k]));
    }
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);

    check_roundtrip("a0");
    check_roundtrip("a201020304");
    check_roundtrip("a26161016162820203");
    check_roundtrip("826161a161626163");
    check_roundtrip("a56161614161626142616361436164614461656145");
}

/* ---- Appendix A examples hsmc rejects ------------------------------------ */

static void test_rfc_floats_rejected(void)
{
    static const char *const floats[] = {
        "f90000", "f98000", "f93c00", "fb3ff199999999999a", "f93e00", "f97bff",
        "fa47c35000", "fa7f7fffff", "fb7e37e43c8800759c", "f90001", "f90400",
        "f9c400", "fbc010666666666666", "f97c00", "f97e00", "f9fc00",
        "fa7f800000", "fa7fc00000", "faff800000", "fb7ff0000000000000",
        "fb7ff8000000000000", "fbfff0000000000000",
        "c1fb41d452d9ec200000", /* 1(1363896240.5) */
    };
    size_t k;
    for (k = 0; k < sizeof floats / sizeof floats[0]; k++)
        check_rejected(floats[k], "floating-point");
    /* peek names the problem too. */
    {
        bytes_t in = hex("f93c00");
        hsmc_cbor_dec_t d;
        hsmc_cbor_type_t t;
        hsmc_cbor_dec_init(&d, in.b, in.n);
        CHECK_ERR(hsmc_cbor_peek(&d, &t), HSMC_ERR_FORMAT);
        CHECK(d.err_off == 0);
    }
}

static void test_rfc_simple_rejected(void)
{
    check_rejected("f0", "simple value");   /* simple(16) */
    check_rejected("f818", "simple value"); /* simple(24) */
    check_rejected("f8ff", "simple value"); /* simple(255) */
    check_rejected("e0", "simple value");   /* simple(0) */
    check_rejected("f3", "simple value");   /* simple(19) */
    check_rejected("f814", "simple value"); /* simple(20) in two bytes: not well-formed */
}

static void test_rfc_indefinite_rejected(void)
{
    static const char *const indef[] = {
        "5f42010243030405ff",
        "7f657374726561646d696e67ff",
        "9fff",
        "9f018202039f0405ffff",
        "9f01820203820405ff",
        "83018202039f0405ff",
        "83019f0203ff820405",
        "9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff",
        "bf61610161629f0203ffff",
        "826161bf61626163ff",
        "bf6346756ef563416d7421ff",
    };
    size_t k;
    for (k = 0; k < sizeof indef / sizeof indef[0]; k++)
        check_rejected(indef[k], "indefinite");
    /* A lone break code. */
    check_rejected("ff", "break");
    check_rejected("8201ff", "break");
}

/* ---- strict rules, one at a time ----------------------------------------- */

static void test_reserved_ai(void)
{
    static const char *const bad[] = {
        "1c", "1d", "1e", "3c", "3d", "3e", "5c", "5d", "5e", "7c", "7d", "7e",
        "9c", "9d", "9e", "bc", "bd", "be", "dc", "dd", "de",
    };
    size_t k;
    for (k = 0; k < sizeof bad / sizeof bad[0]; k++)
        check_rejected(bad[k], "reserved");
    /* Major type 7 with 28..30 is not a simple value either. */
    check_rejected("fc", NULL);
    check_rejected("fd", NULL);
    check_rejected("fe", NULL);
    /* Indefinite integers/tags are not even well-formed. */
    check_rejected("1f", "indefinite");
    check_rejected("3f", "indefinite");
    check_rejected("df00", "indefinite");
}

static void test_non_shortest(void)
{
    static const char *const bad[] = {
        "1817",               /* 23 in one extra byte */
        "1900ff",             /* 255 in two bytes */
        "1a0000ffff",         /* 65535 in four */
        "1b00000000ffffffff", /* 2^32-1 in eight */
        "3817",               /* -24 */
        "3b00000000ffffffff",
        "5800",               /* empty bstr, length in an extra byte */
        "79000161",           /* "a", length in two bytes */
        "9800",               /* [] */
        "b800",               /* {} */
        "d81700",             /* tag 23 */
        "d9001800",           /* tag 24 in two bytes */
        "8218170a",           /* inside an array */
    };
    size_t k;
    for (k = 0; k < sizeof bad / sizeof bad[0]; k++)
        check_rejected(bad[k], "shortest");

    /* A caller may relax it: the value is then read normally. */
    {
        bytes_t in = hex("1900ff");
        hsmc_cbor_dec_t d;
        uint64_t u = 0;
        hsmc_cbor_dec_init(&d, in.b, in.n);
        hsmc_cbor_dec_set_flags(&d, 0);
        CHECK_ERR(hsmc_cbor_get_uint(&d, &u), HSMC_OK);
        CHECK(u == 255);
        CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);
    }
    {
        bytes_t in = hex("9800");
        hsmc_cbor_dec_t d;
        hsmc_cbor_dec_init(&d, in.b, in.n);
        hsmc_cbor_dec_set_flags(&d, 0);
        CHECK_ERR(hsmc_cbor_skip(&d), HSMC_OK);
        CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);
    }
    /* The relaxation covers only the argument width. */
    {
        bytes_t in = hex("9fff");
        hsmc_cbor_dec_t d;
        hsmc_cbor_dec_init(&d, in.b, in.n);
        hsmc_cbor_dec_set_flags(&d, 0);
        CHECK_ERR(hsmc_cbor_skip(&d), HSMC_ERR_FORMAT);
    }
}

static void test_huge_lengths(void)
{
    static const char *const bad[] = {
        "5bffffffffffffffff",
        "5bffffffffffffffff00",
        "7bffffffffffffffff",
        "7b7fffffffffffffff61",
        "5b8000000000000000",
        "5affffffff0102",
        "5a0000000501020304", /* 5 declared, 4 present */
        "4501020304",
        "9bffffffffffffffff",
        "9b800000000000000000",
        "bbffffffffffffffff",
        "bb800000000000000001",
        "9affffffff00",
        "8201",
        "a101",               /* one pair needs two items */
        "a2010203",           /* second value missing */
    };
    size_t k;
    for (k = 0; k < sizeof bad / sizeof bad[0]; k++)
        check_rejected(bad[k], NULL);

    /* The count check is early: get_array refuses before reading items. */
    {
        bytes_t in = hex("9b7fffffffffffffff00");
        hsmc_cbor_dec_t d;
        size_t n = 0;
        hsmc_cbor_dec_init(&d, in.b, in.n);
        CHECK_ERR(hsmc_cbor_get_array(&d, &n), HSMC_ERR_FORMAT);
        CHECK(d.err_msg != NULL && strstr(d.err_msg, "count") != NULL);
        CHECK(d.pos == 0);
    }
    {
        bytes_t in = hex("a2010203"); /* 2 pairs need >= 4 bytes, 3 remain */
        hsmc_cbor_dec_t d;
        size_t n = 0;
        hsmc_cbor_dec_init(&d, in.b, in.n);
        CHECK_ERR(hsmc_cbor_get_map(&d, &n), HSMC_ERR_FORMAT);
        CHECK(d.err_msg != NULL && strstr(d.err_msg, "count") != NULL);
    }
    {
        bytes_t in = hex("b8030102"); /* 3 pairs need >= 6 bytes, 2 remain */
        hsmc_cbor_dec_t d;
        size_t n = 0;
        hsmc_cbor_dec_init(&d, in.b, in.n);
        CHECK_ERR(hsmc_cbor_get_map(&d, &n), HSMC_ERR_FORMAT);
    }
    {
        bytes_t in = hex("5bffffffffffffffff00");
        hsmc_cbor_dec_t d;
        const uint8_t *p = NULL;
        size_t n = 0;
        hsmc_cbor_dec_init(&d, in.b, in.n);
        CHECK_ERR(hsmc_cbor_get_bstr(&d, &p, &n), HSMC_ERR_FORMAT);
        CHECK(d.err_msg != NULL && strstr(d.err_msg, "longer") != NULL);
    }
    /* Exactly as many one-byte items as remain is fine. */
    {
        uint8_t in[2 + 32], out[64];
        size_t n = 0;
        memset(in, 0, sizeof in);
        in[0] = 0x98;
        in[1] = 32;
        CHECK_ERR(roundtrip(in, sizeof in, out, sizeof out, &n), HSMC_OK);
        CHECK(n == sizeof in && memcmp(in, out, n) == 0);
        CHECK_ERR(skip_all(in, sizeof in), HSMC_OK);
        in[1] = 33; /* one more than remains */
        CHECK_ERR(skip_all(in, sizeof in), HSMC_ERR_FORMAT);
    }
}

static void test_utf8(void)
{
    static const char *const bad[] = {
        "62c080",       /* overlong NUL */
        "62c1bf",       /* overlong U+007F */
        "63e08080",     /* overlong 3-byte */
        "63e09fbf",     /* overlong U+07FF */
        "64f0808080",   /* overlong 4-byte */
        "64f08fbfbf",   /* overlong U+FFFF */
        "63eda080",     /* surrogate U+D800 */
        "63edbfbf",     /* surrogate U+DFFF */
        "64f4908080",   /* U+110000 */
        "64f7bfbfbf",
        "61f5",
        "61ff",
        "6180",         /* lone continuation */
        "62e6b0",       /* truncated 3-byte */
        "61c3",         /* truncated 2-byte */
        "62c341",       /* bad continuation */
        "63e641b4",
        "64f09085c1",
        "83616162c0806162", /* ["a", bad, "b"] */
    };
    static const char *const good[] = {
        "62c280",       /* U+0080 */
        "62dfbf",       /* U+07FF */
        "63e0a080",     /* U+0800 */
        "63ed9fbf",     /* U+D7FF */
        "63ee8080",     /* U+E000 */
        "63efbfbf",     /* U+FFFF */
        "64f0908080",   /* U+10000 */
        "64f48fbfbf",   /* U+10FFFF */
        "6100",         /* NUL is a character */
    };
    size_t k;
    for (k = 0; k < sizeof bad / sizeof bad[0]; k++)
        check_rejected(bad[k], "UTF-8");
    for (k = 0; k < sizeof good / sizeof good[0]; k++)
        check_roundtrip(good[k]);
    /* Byte strings are not text: anything goes. */
    check_roundtrip("42c080");
    /* The encoder refuses to produce invalid text. */
    {
        uint8_t buf[8];
        hsmc_cbor_enc_t e;
        size_t len;
        hsmc_cbor_enc_init(&e, buf, sizeof buf);
        CHECK_ERR(hsmc_cbor_put_tstr(&e, "\xed\xa0\x80", 3), HSMC_ERR_ARG);
        CHECK_ERR(hsmc_cbor_put_uint(&e, 1), HSMC_ERR_ARG);
        CHECK_ERR(hsmc_cbor_enc_finish(&e, &len), HSMC_ERR_ARG);
    }
}

static void test_trailing_and_unread(void)
{
    hsmc_cbor_dec_t d;
    bytes_t in;
    uint64_t u = 0;
    size_t n = 0;

    /* Two top-level items where one was read. */
    in = hex("0000");
    hsmc_cbor_dec_init(&d, in.b, in.n);
    CHECK_ERR(hsmc_cbor_get_uint(&d, &u), HSMC_OK);
    CHECK(!hsmc_cbor_dec_at_end(&d));
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_ERR_FORMAT);
    CHECK(d.err_msg != NULL && strstr(d.err_msg, "trailing") != NULL);
    CHECK(d.err_off == 1);

    /* The same bytes read as a CBOR sequence (RFC 8742) are fine. */
    hsmc_cbor_dec_init(&d, in.b, in.n);
    CHECK_ERR(hsmc_cbor_get_uint(&d, &u), HSMC_OK);
    CHECK_ERR(hsmc_cbor_get_uint(&d, &u), HSMC_OK);
    CHECK(hsmc_cbor_dec_at_end(&d));
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);

    /* An array left half read. */
    in = hex("820102");
    hsmc_cbor_dec_init(&d, in.b, in.n);
    CHECK_ERR(hsmc_cbor_get_array(&d, &n), HSMC_OK);
    CHECK_ERR(hsmc_cbor_get_uint(&d, &u), HSMC_OK);
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_ERR_FORMAT);
    CHECK(d.err_msg != NULL && strstr(d.err_msg, "not read to its end") != NULL);

    /* A skipped item followed by garbage. */
    in = hex("8101ff");
    hsmc_cbor_dec_init(&d, in.b, in.n);
    CHECK_ERR(hsmc_cbor_skip(&d), HSMC_OK);
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_ERR_FORMAT);

    /* Empty input: nothing to read, nothing left. */
    hsmc_cbor_dec_init(&d, NULL, 0);
    CHECK(hsmc_cbor_dec_at_end(&d));
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);
    hsmc_cbor_dec_init(&d, NULL, 0);
    CHECK_ERR(hsmc_cbor_get_uint(&d, &u), HSMC_ERR_FORMAT);
}

/* Errors stick; type mismatches consume nothing; HSMC_ERR_ARG does not stick. */
static void test_sticky_errors(void)
{
    bytes_t in = hex("8201f93c00");
    hsmc_cbor_dec_t d;
    uint64_t u = 0;
    size_t n = 0;
    const uint8_t *p;
    hsmc_cbor_type_t t;

    hsmc_cbor_dec_init(&d, in.b, in.n);
    CHECK_ERR(hsmc_cbor_get_uint(&d, NULL), HSMC_ERR_ARG);
    CHECK(d.err == HSMC_OK);
    CHECK_ERR(hsmc_cbor_get_uint(&d, &u), HSMC_ERR_FORMAT); /* an array */
    CHECK(d.pos == 0);
    CHECK(d.err_msg != NULL && strstr(d.err_msg, "type") != NULL);
    CHECK_ERR(hsmc_cbor_get_array(&d, &n), HSMC_ERR_FORMAT); /* sticky */
    CHECK_ERR(hsmc_cbor_peek(&d, &t), HSMC_ERR_FORMAT);
    CHECK_ERR(hsmc_cbor_skip(&d), HSMC_ERR_FORMAT);
    CHECK(hsmc_cbor_dec_at_end(&d));
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_ERR_FORMAT);

    /* The first error is the one reported. */
    hsmc_cbor_dec_init(&d, in.b, in.n);
    CHECK_ERR(hsmc_cbor_get_array(&d, &n), HSMC_OK);
    CHECK_ERR(hsmc_cbor_get_uint(&d, &u), HSMC_OK);
    CHECK_ERR(hsmc_cbor_get_raw(&d, &p, &n), HSMC_ERR_FORMAT);
    CHECK(d.err_off == 2);
    CHECK(strstr(d.err_msg, "floating") != NULL);
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_ERR_FORMAT);
    CHECK(d.err_off == 2);

    /* NULL input with a length: every call fails. */
    hsmc_cbor_dec_init(&d, NULL, 5);
    CHECK_ERR(hsmc_cbor_get_uint(&d, &u), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_ERR_ARG);

    /* NULL decoders and outputs. */
    CHECK_ERR(hsmc_cbor_get_uint(NULL, &u), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cbor_peek(NULL, &t), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cbor_skip(NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cbor_dec_finish(NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cbor_map_unique(NULL, 1), HSMC_ERR_ARG);
    hsmc_cbor_dec_init(NULL, in.b, in.n); /* ignored, no crash */
}

/* ---- truncation ----------------------------------------------------------- */

static void test_truncation(void)
{
    static const char *const valid[] = {
        "8301820203820405",
        "a26161016162820203",
        "826161a161626163",
        "98190102030405060708090a0b0c0d0e0f101112131415161718181819",
        "c074323031332d30332d32315432303a30343a30305a",
        "1bffffffffffffffff",
        "64f0908591",
        /* COSE_Sign1-like: 18([h'a10126', {4: h'6b6964'}, null, h'5369675369']) */
        "d28443a10126a104436b6964f6455369675369",
        /* COSE_Encrypt-like, nested 4 deep with tags and maps. */
        "d8608443a10101a1054c000102030405060708090a0b5820"
        "0000000000000000000000000000000000000000000000000000000000000000"
        "818340a101224a0102030405060708090a",
        "a3016161200a3a000f423f83f5f4f7",
    };
    size_t k, cut;
    for (k = 0; k < sizeof valid / sizeof valid[0]; k++) {
        bytes_t in = hex(valid[k]);
        uint8_t out[MAXBUF];
        size_t n = 0;

        CHECK_ERR(roundtrip(in.b, in.n, out, sizeof out, &n), HSMC_OK);
        CHECK(same(out, n, &in));
        CHECK_ERR(skip_all(in.b, in.n), HSMC_OK);
        for (cut = 0; cut < in.n; cut++) {
            /* A copy of exactly `cut` bytes, so ASan sees any over-read. */
            uint8_t *part = malloc(cut > 0 ? cut : 1);
            hsmc_err_t a, b;
            REQUIRE(part != NULL);
            memcpy(part, in.b, cut);
            a = roundtrip(cut > 0 ? part : NULL, cut, out, sizeof out, &n);
            b = skip_all(cut > 0 ? part : NULL, cut);
            free(part);
            if (a != HSMC_ERR_FORMAT || b != HSMC_ERR_FORMAT) {
                fprintf(stderr, "  prefix %zu of %s: walk %s, skip %s\n", cut, valid[k],
                        hsmc_err_name(a), hsmc_err_name(b));
                CHECK(0);
            }
        }
    }
}

/* ---- encoder buffers ------------------------------------------------------ */

/* A COSE_Sign1-shaped structure, the protected header wrapped without copy. */
static void build_sign1(hsmc_cbor_enc_t *e)
{
    static const uint8_t prot[] = {0xa1, 0x01, 0x26}; /* {1: -7} */
    static const uint8_t sig[64] = {1, 2, 3};
    hsmc_cbor_put_tag(e, 18);
    hsmc_cbor_put_array(e, 4);
    hsmc_cbor_put_bstr_header(e, sizeof prot);
    hsmc_cbor_put_raw(e, prot, sizeof prot);
    hsmc_cbor_put_map(e, 1);
    hsmc_cbor_put_int(e, 4);
    hsmc_cbor_put_bstr(e, (const uint8_t *)"kid", 3);
    hsmc_cbor_put_null(e);
    hsmc_cbor_put_bstr(e, sig, sizeof sig);
}

static void test_encoder_buffers(void)
{
    uint8_t full[128], buf[128 + 16];
    size_t need = 0, len = 0, cap;
    hsmc_cbor_enc_t e;
    hsmc_cbor_dec_t d;
    bytes_t head = hex("d28443a10126a104436b6964f65840");

    /* Size-only pass. */
    hsmc_cbor_enc_init(&e, NULL, 0);
    build_sign1(&e);
    CHECK_ERR(hsmc_cbor_enc_finish(&e, &need), HSMC_OK);
    CHECK(need == head.n + 64);
    /* A NULL buffer with a capacity is still size-only. */
    hsmc_cbor_enc_init(&e, NULL, 1000);
    build_sign1(&e);
    CHECK_ERR(hsmc_cbor_enc_finish(&e, &len), HSMC_OK);
    CHECK(len == need);

    /* Real pass with exactly that size. */
    hsmc_cbor_enc_init(&e, full, need);
    build_sign1(&e);
    CHECK_ERR(hsmc_cbor_enc_finish(&e, &len), HSMC_OK);
    CHECK(len == need);
    CHECK(memcmp(full, head.b, head.n) == 0);
    hsmc_cbor_dec_init(&d, full, len);
    CHECK_ERR(hsmc_cbor_skip(&d), HSMC_OK);
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);

    /* Every smaller capacity: HSMC_ERR_BUFFER, the needed size, no byte
     * written past the capacity, and what was written is a prefix. */
    for (cap = 0; cap < need; cap++) {
        size_t i;
        int guard_ok = 1, prefix_ok = 1;
        memset(buf, 0xa5, sizeof buf);
        hsmc_cbor_enc_init(&e, buf, cap);
        build_sign1(&e);
        CHECK_ERR(hsmc_cbor_enc_finish(&e, &len), HSMC_ERR_BUFFER);
        CHECK(len == need);
        for (i = cap; i < sizeof buf; i++)
            guard_ok &= buf[i] == 0xa5;
        for (i = 0; i < cap && buf[i] != 0xa5; i++)
            prefix_ok &= buf[i] == full[i];
        if (!guard_ok || !prefix_ok) {
            fprintf(stderr, "  cap %zu: guard %d prefix %d\n", cap, guard_ok, prefix_ok);
            CHECK(0);
        }
    }
    /* One byte too small, the case callers hit. */
    hsmc_cbor_enc_init(&e, buf, need - 1);
    build_sign1(&e);
    CHECK_ERR(hsmc_cbor_enc_finish(&e, &len), HSMC_ERR_BUFFER);
    CHECK(len == need);

    /* Bad arguments: sticky HSMC_ERR_ARG, winning over HSMC_ERR_BUFFER. */
    hsmc_cbor_enc_init(&e, buf, 1);
    hsmc_cbor_put_uint(&e, 1000);
    CHECK(e.err == HSMC_ERR_BUFFER);
    CHECK_ERR(hsmc_cbor_put_bstr(&e, NULL, 2), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cbor_enc_finish(&e, &len), HSMC_ERR_ARG);
    hsmc_cbor_enc_init(&e, buf, sizeof buf);
    CHECK_ERR(hsmc_cbor_put_raw(&e, NULL, 1), HSMC_ERR_ARG);
    hsmc_cbor_enc_init(&e, buf, sizeof buf);
    CHECK_ERR(hsmc_cbor_put_tstr(&e, NULL, 0), HSMC_OK);
    CHECK_ERR(hsmc_cbor_put_bstr(&e, NULL, 0), HSMC_OK);
    CHECK_ERR(hsmc_cbor_put_raw(&e, NULL, 0), HSMC_OK);
    CHECK_ERR(hsmc_cbor_enc_finish(&e, &len), HSMC_OK);
    CHECK(len == 2 && buf[0] == 0x60 && buf[1] == 0x40);
    CHECK_ERR(hsmc_cbor_put_uint(NULL, 1), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cbor_enc_finish(NULL, &len), HSMC_ERR_ARG);
    /* A total past SIZE_MAX cannot be counted (size-only: nothing is read). */
    hsmc_cbor_enc_init(&e, NULL, 0);
    hsmc_cbor_put_uint(&e, 1);
    CHECK_ERR(hsmc_cbor_put_raw(&e, buf, SIZE_MAX), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cbor_enc_finish(&e, &len), HSMC_ERR_ARG);
}

/* The longest heads: 9 bytes, tag and count forms included. */
static void test_encoder_heads(void)
{
    uint8_t buf[64];
    size_t len = 0;
    hsmc_cbor_enc_t e;
    bytes_t want = hex("db0000000100000000" "d9ffff" "9a00010000" "b90100" "5818");

    hsmc_cbor_enc_init(&e, buf, sizeof buf);
    hsmc_cbor_put_tag(&e, 0x100000000ull);
    hsmc_cbor_put_tag(&e, 0xffff);
    hsmc_cbor_put_array(&e, 0x10000);
    hsmc_cbor_put_map(&e, 0x100);
    hsmc_cbor_put_bstr_header(&e, 24);
    CHECK_ERR(hsmc_cbor_enc_finish(&e, &len), HSMC_OK);
    CHECK(same(buf, len, &want));
}

/* ---- nesting depth -------------------------------------------------------- */

/* `levels` nested containers (0x81 arrays or 0xa1 maps with key 0) around 0. */
static bytes_t nested(unsigned levels, int maps, int empty_inner)
{
    bytes_t r;
    unsigned i;
    r.n = 0;
    for (i = 0; i < levels; i++) {
        int last = i + 1 == levels;
        if (maps) {
            r.b[r.n++] = (last && empty_inner) ? 0xa0 : 0xa1;
            if (!(last && empty_inner))
                r.b[r.n++] = 0x00;
        } else {
            r.b[r.n++] = (last && empty_inner) ? 0x80 : 0x81;
        }
    }
    if (levels == 0 || !empty_inner)
        r.b[r.n++] = 0x00;
    return r;
}

/* Descend with get_array/get_map level by level. */
static hsmc_err_t descend(const bytes_t *in, unsigned levels, int maps, int empty_inner)
{
    hsmc_cbor_dec_t d;
    unsigned i;
    size_t n;
    uint64_t u;

    hsmc_cbor_dec_init(&d, in->b, in->n);
    for (i = 0; i < levels; i++) {
        hsmc_err_t err = maps ? hsmc_cbor_get_map(&d, &n) : hsmc_cbor_get_array(&d, &n);
        if (err != HSMC_OK)
            return err;
        if (maps && n > 0 && hsmc_cbor_get_uint(&d, &u) != HSMC_OK)
            return d.err;
    }
    if (!empty_inner && hsmc_cbor_get_uint(&d, &u) != HSMC_OK)
        return d.err;
    return hsmc_cbor_dec_finish(&d);
}

static void test_depth(void)
{
    int maps, empty;
    for (maps = 0; maps < 2; maps++) {
        for (empty = 0; empty < 2; empty++) {
            bytes_t ok = nested(HSMC_CBOR_MAX_DEPTH, maps, empty);
            bytes_t deep = nested(HSMC_CBOR_MAX_DEPTH + 1, maps, empty);
            uint8_t out[MAXBUF];
            size_t n;

            CHECK_ERR(descend(&ok, HSMC_CBOR_MAX_DEPTH, maps, empty), HSMC_OK);
            CHECK_ERR(skip_all(ok.b, ok.n), HSMC_OK);
            CHECK_ERR(roundtrip(ok.b, ok.n, out, sizeof out, &n), HSMC_OK);
            CHECK(same(out, n, &ok));

            CHECK_ERR(descend(&deep, HSMC_CBOR_MAX_DEPTH + 1, maps, empty), HSMC_ERR_FORMAT);
            CHECK_ERR(skip_all(deep.b, deep.n), HSMC_ERR_FORMAT);
            CHECK_ERR(roundtrip(deep.b, deep.n, out, sizeof out, &n), HSMC_ERR_FORMAT);
        }
    }
    /* Depth adds up: levels entered with get_array count for skip(). */
    {
        bytes_t in = nested(HSMC_CBOR_MAX_DEPTH, 0, 0);
        hsmc_cbor_dec_t d;
        size_t n;
        unsigned i;

        hsmc_cbor_dec_init(&d, in.b, in.n);
        for (i = 0; i < 3; i++)
            CHECK_ERR(hsmc_cbor_get_array(&d, &n), HSMC_OK);
        CHECK_ERR(hsmc_cbor_skip(&d), HSMC_OK);
        CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_OK);

        in = nested(HSMC_CBOR_MAX_DEPTH + 1, 0, 0);
        hsmc_cbor_dec_init(&d, in.b, in.n);
        for (i = 0; i < 3; i++)
            CHECK_ERR(hsmc_cbor_get_array(&d, &n), HSMC_OK);
        CHECK_ERR(hsmc_cbor_skip(&d), HSMC_ERR_FORMAT);
        CHECK(d.err_msg != NULL && strstr(d.err_msg, "deeper") != NULL);
    }
    /* Tags do not nest: a long chain of them is just walked. */
    {
        bytes_t in;
        size_t i;
        in.n = 0;
        for (i = 0; i < 100; i++)
            in.b[in.n++] = 0xc6;
        in.b[in.n++] = 0x00;
        CHECK_ERR(skip_all(in.b, in.n), HSMC_OK);
    }
    /* Siblings after a deep branch close it properly. */
    check_roundtrip("83818181010203"); /* [[[[1]]], 2, 3] */
}

/* ---- map keys ------------------------------------------------------------- */

static hsmc_err_t map_check(const char *hx, int sorted)
{
    bytes_t in = hex(hx);
    hsmc_cbor_dec_t d;
    size_t n = 0, pos;
    hsmc_err_t err;

    hsmc_cbor_dec_init(&d, in.b, in.n);
    if (hsmc_cbor_get_map(&d, &n) != HSMC_OK)
        return d.err;
    pos = d.pos;
    err = sorted ? hsmc_cbor_map_sorted(&d, n) : hsmc_cbor_map_unique(&d, n);
    if (err == HSMC_OK) {
        /* The check does not move the decoder, and the map reads fine. */
        if (d.pos != pos)
            return HSMC_ERR_INTERNAL;
        while (!hsmc_cbor_dec_at_end(&d))
            if (hsmc_cbor_skip(&d) != HSMC_OK)
                return d.err;
        return hsmc_cbor_dec_finish(&d);
    }
    return err;
}

static void test_map_keys(void)
{
    uint8_t big[MAXBUF];
    hsmc_cbor_enc_t e;
    hsmc_cbor_dec_t d;
    size_t len = 0, n = 0, k;

    /* Unique. */
    CHECK_ERR(map_check("a201020304", 0), HSMC_OK);
    CHECK_ERR(map_check("a201020102", 0), HSMC_ERR_FORMAT);            /* {1:2, 1:2} */
    CHECK_ERR(map_check("a30100020003f6", 0), HSMC_OK);
    CHECK_ERR(map_check("a30100020001f6", 0), HSMC_ERR_FORMAT);        /* 1 twice, apart */
    CHECK_ERR(map_check("a2616101616102", 0), HSMC_ERR_FORMAT);        /* "a" twice */
    CHECK_ERR(map_check("a2820102f6820102f5", 0), HSMC_ERR_FORMAT);    /* [1,2] twice */
    CHECK_ERR(map_check("a2820102f6820201f5", 0), HSMC_OK);
    CHECK_ERR(map_check("a2c10100c10101", 0), HSMC_ERR_FORMAT);        /* 1(1) twice */
    CHECK_ERR(map_check("a2014101410101", 0), HSMC_OK);                /* 1 vs h'01' */
    CHECK_ERR(map_check("a2018201020182010a", 0), HSMC_ERR_FORMAT);    /* values nest */
    {
        bytes_t in = hex("a30100020001f6");
        hsmc_cbor_dec_init(&d, in.b, in.n);
        CHECK_ERR(hsmc_cbor_get_map(&d, &n), HSMC_OK);
        CHECK_ERR(hsmc_cbor_map_unique(&d, n), HSMC_ERR_FORMAT);
        CHECK(d.err_off == 5 && strstr(d.err_msg, "duplicate") != NULL);
    }

    /* Sorted (RFC 8949 §4.2.1 bytewise order of the encoded keys). */
    CHECK_ERR(map_check("a201020304", 1), HSMC_OK);
    CHECK_ERR(map_check("a203040102", 1), HSMC_ERR_FORMAT);
    CHECK_ERR(map_check("a201020102", 1), HSMC_ERR_FORMAT);            /* repeated */
    CHECK_ERR(map_check("a30a00181800200a", 1), HSMC_OK);              /* 10, 24, -1 */
    CHECK_ERR(map_check("a30a002000181800", 1), HSMC_ERR_FORMAT);      /* 10, -1, 24: length-first */
    CHECK_ERR(map_check("a20100616100", 1), HSMC_OK);                  /* 1, "a" */
    CHECK_ERR(map_check("a26161000100", 1), HSMC_ERR_FORMAT);
    CHECK_ERR(map_check("a261610062616100", 1), HSMC_OK);              /* "a" < "aa" */

    /* Malformed entries are reported by the checks. */
    CHECK_ERR(map_check("a201f93c000203", 0), HSMC_ERR_FORMAT);
    CHECK_ERR(map_check("a201f93c000203", 1), HSMC_ERR_FORMAT);

    /* Must be called right after get_map with its count. */
    {
        bytes_t in = hex("a201020304");
        hsmc_cbor_dec_init(&d, in.b, in.n);
        CHECK_ERR(hsmc_cbor_get_map(&d, &n), HSMC_OK);
        CHECK_ERR(hsmc_cbor_map_unique(&d, 3), HSMC_ERR_ARG);
        CHECK_ERR(hsmc_cbor_map_sorted(&d, 1), HSMC_ERR_ARG);
        CHECK(d.err == HSMC_OK);
        CHECK_ERR(hsmc_cbor_map_unique(&d, 2), HSMC_OK);
    }

    /* The duplicate check takes maps up to HSMC_CBOR_MAP_CHECK_MAX pairs. */
    for (k = HSMC_CBOR_MAP_CHECK_MAX; k <= HSMC_CBOR_MAP_CHECK_MAX + 1; k++) {
        size_t i;
        hsmc_cbor_enc_init(&e, big, sizeof big);
        hsmc_cbor_put_map(&e, k);
        for (i = 0; i < k; i++) {
            hsmc_cbor_put_uint(&e, i);
            hsmc_cbor_put_null(&e);
        }
        CHECK_ERR(hsmc_cbor_enc_finish(&e, &len), HSMC_OK);
        hsmc_cbor_dec_init(&d, big, len);
        CHECK_ERR(hsmc_cbor_get_map(&d, &n), HSMC_OK);
        CHECK_ERR(hsmc_cbor_map_sorted(&d, n), HSMC_OK);
        CHECK_ERR(hsmc_cbor_map_unique(&d, n),
                  k <= HSMC_CBOR_MAP_CHECK_MAX ? HSMC_OK : HSMC_ERR_FORMAT);
    }

    /* key_cmp itself. */
    {
        static const uint8_t k01[] = {0x01}, k20[] = {0x20}, k1818[] = {0x18, 0x18},
                             ka[] = {0x61, 0x61}, kaa[] = {0x62, 0x61, 0x61};
        CHECK(hsmc_cbor_key_cmp(k01, 1, k20, 1) < 0);
        CHECK(hsmc_cbor_key_cmp(k20, 1, k01, 1) > 0);
        CHECK(hsmc_cbor_key_cmp(k1818, 2, k20, 1) < 0); /* bytewise, not length-first */
        CHECK(hsmc_cbor_key_cmp(ka, 2, kaa, 3) < 0);
        CHECK(hsmc_cbor_key_cmp(k1818, 1, k1818, 2) < 0); /* prefix first */
        CHECK(hsmc_cbor_key_cmp(k1818, 2, k1818, 2) == 0);
        CHECK(hsmc_cbor_key_cmp(NULL, 0, NULL, 0) == 0);
        CHECK(hsmc_cbor_key_cmp(NULL, 0, k01, 1) < 0);
    }
}

/* get_raw hands back the exact encoded span of a nested item. */
static void test_get_raw(void)
{
    bytes_t in = hex("8302a101820304c24041ff"); /* [2, {1: [3, 4]}, 2(h'')] h'ff' */
    hsmc_cbor_dec_t d;
    const uint8_t *p = NULL;
    size_t n = 0, len = 0;
    uint64_t u = 0;

    hsmc_cbor_dec_init(&d, in.b, in.n);
    CHECK_ERR(hsmc_cbor_get_array(&d, &n), HSMC_OK);
    CHECK(n == 3);
    CHECK_ERR(hsmc_cbor_get_uint(&d, &u), HSMC_OK);
    CHECK_ERR(hsmc_cbor_get_raw(&d, &p, &len), HSMC_OK);
    CHECK(p == in.b + 2 && len == 5);
    CHECK_ERR(hsmc_cbor_get_raw(&d, &p, &len), HSMC_OK);
    CHECK(p == in.b + 7 && len == 2); /* the tag with its item */
    CHECK(!hsmc_cbor_dec_at_end(&d));
    CHECK_ERR(hsmc_cbor_dec_finish(&d), HSMC_ERR_FORMAT); /* h'ff' is trailing */
}

int main(void)
{
    RUN(test_rfc_integers);
    RUN(test_int64_range);
    RUN(test_width_boundaries);
    RUN(test_rfc_simple);
    RUN(test_rfc_strings);
    RUN(test_rfc_tags);
    RUN(test_rfc_arrays);
    RUN(test_rfc_maps);
    RUN(test_rfc_floats_rejected);
    RUN(test_rfc_simple_rejected);
    RUN(test_rfc_indefinite_rejected);
    RUN(test_reserved_ai);
    RUN(test_non_shortest);
    RUN(test_huge_lengths);
    RUN(test_utf8);
    RUN(test_trailing_and_unread);
    RUN(test_sticky_errors);
    RUN(test_truncation);
    RUN(test_encoder_buffers);
    RUN(test_encoder_heads);
    RUN(test_depth);
    RUN(test_map_keys);
    RUN(test_get_raw);
    return TEST_END();
}
