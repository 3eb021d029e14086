/*
 * Cross-check driver for hsmc's CBOR codec (used by
 * test/scripts/test_cbor_cross.sh and, included, by test/fuzz/fuzz_cbor.c).
 *
 * usage: cbor_cross_driver RECORDS
 * RECORDS holds inputs as <4-byte big-endian length><bytes>. For each, one
 * line on stdout:
 *   OK <maps> <tags> <hex>   accepted; <hex> is hsmc's re-encoding,
 *                            <maps> one letter per map of >= 2 pairs in
 *                            document order: s = keys in RFC 8949 order
 *                            (hsmc_cbor_map_sorted), u = not ("-": none),
 *                            <tags> 1 when the input holds a tag
 *   REJECT <offset> <why>    the decoder refused it
 *   BUG <why>                hsmc contradicted itself (always a failure)
 * The first line is "DEPTH <HSMC_CBOR_MAX_DEPTH>".
 *
 * Every input goes through three independent paths that must agree: the
 * generic pull walk (peek + get_*) re-encoding into a size-only encoder,
 * the same walk into a buffer of exactly the size the first pass gave, and
 * skip()/get_raw() over each top-level item.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsmc/cbor.h"

#define CROSS_MAX_MAPS 16384

typedef struct {
    int accepted;
    size_t err_off;
    const char *err_msg;
    const char *bug; /* non-NULL: hsmc contradicted itself */
    uint8_t *out;    /* re-encoding, malloc'd, out_len bytes */
    size_t out_len;
    char maps[CROSS_MAX_MAPS + 1];
    size_t nmaps;
    int saw_tag;
} cross_result_t;

/*
 * Decode every item of in[0..len) with the pull API and re-encode it into
 * e. With check_maps, every map's keys must be unique (map_unique, for
 * maps up to HSMC_CBOR_MAP_CHECK_MAX pairs) and its order is recorded
 * (map_sorted on a copy, which must not disturb the real decoder).
 */
static hsmc_err_t cross_walk(const uint8_t *in, size_t len, hsmc_cbor_enc_t *e, int check_maps,
                             cross_result_t *r)
{
    hsmc_cbor_dec_t d;
    size_t left[HSMC_CBOR_MAX_DEPTH + 1];
    int top;
    hsmc_err_t err = HSMC_OK;

    hsmc_cbor_dec_init(&d, in, len);
    while (err == HSMC_OK && !hsmc_cbor_dec_at_end(&d)) {
        top = 0;
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
            if ((err = hsmc_cbor_peek(&d, &t)) != HSMC_OK)
                break;
            switch (t) {
            case HSMC_CBOR_UINT:
                if ((err = hsmc_cbor_get_uint(&d, &u)) == HSMC_OK)
                    err = hsmc_cbor_put_uint(e, u);
                break;
            case HSMC_CBOR_NINT:
                if ((err = hsmc_cbor_get_nint(&d, &u)) == HSMC_OK)
                    err = hsmc_cbor_put_nint(e, u);
                break;
            case HSMC_CBOR_BSTR:
                if ((err = hsmc_cbor_get_bstr(&d, &p, &n)) == HSMC_OK)
                    err = hsmc_cbor_put_bstr(e, p, n);
                break;
            case HSMC_CBOR_TSTR:
                if ((err = hsmc_cbor_get_tstr(&d, &s, &n)) == HSMC_OK)
                    err = hsmc_cbor_put_tstr(e, s, n);
                break;
            case HSMC_CBOR_ARRAY:
                if ((err = hsmc_cbor_get_array(&d, &n)) != HSMC_OK)
                    break;
                err = hsmc_cbor_put_array(e, n);
                if (top >= HSMC_CBOR_MAX_DEPTH) {
                    r->bug = "get_array went deeper than HSMC_CBOR_MAX_DEPTH";
                    return HSMC_ERR_INTERNAL;
                }
                left[++top] = n;
                break;
            case HSMC_CBOR_MAP:
                if ((err = hsmc_cbor_get_map(&d, &n)) != HSMC_OK)
                    break;
                if (check_maps && n >= 2) {
                    hsmc_cbor_dec_t copy = d;
                    size_t pos = d.pos;
                    hsmc_err_t sorted = hsmc_cbor_map_sorted(&copy, n);
                    if (n <= HSMC_CBOR_MAP_CHECK_MAX &&
                        (err = hsmc_cbor_map_unique(&d, n)) != HSMC_OK)
                        break;
                    if (d.pos != pos) {
                        r->bug = "map_unique moved the decoder";
                        return HSMC_ERR_INTERNAL;
                    }
                    if (r->nmaps < CROSS_MAX_MAPS)
                        r->maps[r->nmaps++] = sorted == HSMC_OK ? 's' : 'u';
                }
                err = hsmc_cbor_put_map(e, n);
                if (top >= HSMC_CBOR_MAX_DEPTH) {
                    r->bug = "get_map went deeper than HSMC_CBOR_MAX_DEPTH";
                    return HSMC_ERR_INTERNAL;
                }
                left[++top] = 2 * n;
                break;
            case HSMC_CBOR_TAG:
                if ((err = hsmc_cbor_get_tag(&d, &u)) == HSMC_OK)
                    err = hsmc_cbor_put_tag(e, u);
                r->saw_tag = 1;
                left[top]++; /* the tagged item still has to come */
                break;
            default:
                if ((err = hsmc_cbor_get_simple(&d, &sv)) == HSMC_OK)
                    err = hsmc_cbor_put_simple(e, sv);
                break;
            }
        }
    }
    if (err == HSMC_OK)
        err = hsmc_cbor_dec_finish(&d);
    if (err != HSMC_OK && d.err != HSMC_OK) {
        r->err_off = d.err_off;
        r->err_msg = d.err_msg;
    }
    return err;
}

/* The skip()/get_raw() path: accepted exactly when the walk accepts. */
static hsmc_err_t cross_skip(const uint8_t *in, size_t len, cross_result_t *r)
{
    hsmc_cbor_dec_t d;
    const uint8_t *p;
    size_t n, expect = 0;

    hsmc_cbor_dec_init(&d, in, len);
    while (!hsmc_cbor_dec_at_end(&d)) {
        size_t start = d.pos;
        if (hsmc_cbor_get_raw(&d, &p, &n) != HSMC_OK)
            return d.err;
        if (p != in + start || start != expect || n == 0) {
            r->bug = "get_raw returned a wrong span";
            return HSMC_ERR_INTERNAL;
        }
        expect = start + n;
    }
    return hsmc_cbor_dec_finish(&d);
}

/* Run every path over one input. r->out must be freed by the caller. */
static void cross_check(const uint8_t *in, size_t len, cross_result_t *r)
{
    hsmc_cbor_enc_t e;
    hsmc_err_t walk, skip, real;
    size_t need = 0, got = 0;

    memset(r, 0, sizeof *r);
    hsmc_cbor_enc_init(&e, NULL, 0);
    walk = cross_walk(in, len, &e, 0, r);
    if (r->bug != NULL)
        return;
    skip = cross_skip(in, len, r);
    if (r->bug != NULL)
        return;
    if ((walk == HSMC_OK) != (skip == HSMC_OK)) {
        r->bug = walk == HSMC_OK ? "skip() rejects what the get_* walk accepts"
                                 : "skip() accepts what the get_* walk rejects";
        return;
    }
    if (walk != HSMC_OK) {
        if (walk != HSMC_ERR_FORMAT || r->err_msg == NULL)
            r->bug = "rejection is not HSMC_ERR_FORMAT with a message";
        return;
    }
    if (hsmc_cbor_enc_finish(&e, &need) != HSMC_OK) {
        r->bug = "size-only pass failed";
        return;
    }
    r->out = malloc(need > 0 ? need : 1);
    if (r->out == NULL) {
        r->bug = "out of memory";
        return;
    }
    hsmc_cbor_enc_init(&e, r->out, need);
    real = cross_walk(in, len, &e, 1, r);
    if (r->bug != NULL)
        return;
    if (real != HSMC_OK) {
        /* Only the key checks may add a rejection here. */
        if (real != HSMC_ERR_FORMAT || r->err_msg == NULL ||
            strstr(r->err_msg, "duplicate") == NULL)
            r->bug = "second pass rejected for a reason the first did not see";
        return;
    }
    if (hsmc_cbor_enc_finish(&e, &got) != HSMC_OK || got != need) {
        r->bug = "real pass length differs from the size-only pass";
        return;
    }
    r->out_len = got;
    r->accepted = 1;
}

#ifndef HSMC_CBOR_CROSS_NO_MAIN

static void print_hex(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        putchar(digits[p[i] >> 4]);
        putchar(digits[p[i] & 15]);
    }
}

int main(int argc, char **argv)
{
    FILE *f;
    uint8_t hdr[4];
    unsigned long records = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s RECORDS\n", argv[0]);
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (f == NULL) {
        perror(argv[1]);
        return 2;
    }
    printf("DEPTH %d\n", HSMC_CBOR_MAX_DEPTH);
    while (fread(hdr, 1, 4, f) == 4) {
        size_t len = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
        /* Exactly len bytes, so a sanitizer sees any read past the input. */
        uint8_t *in = malloc(len > 0 ? len : 1);
        cross_result_t r;

        if (in == NULL || fread(in, 1, len, f) != len) {
            fprintf(stderr, "record %lu: truncated records file\n", records);
            free(in);
            fclose(f);
            return 2;
        }
        cross_check(len > 0 ? in : NULL, len, &r);
        if (r.bug != NULL) {
            printf("BUG %s\n", r.bug);
        } else if (!r.accepted) {
            printf("REJECT %zu %s\n", r.err_off, r.err_msg);
        } else {
            r.maps[r.nmaps] = '\0';
            printf("OK %s %d ", r.nmaps > 0 ? r.maps : "-", r.saw_tag);
            print_hex(r.out, r.out_len);
            putchar('\n');
        }
        free(r.out);
        free(in);
        records++;
    }
    fclose(f);
    return 0;
}

#endif /* HSMC_CBOR_CROSS_NO_MAIN */
