/**
 * @file cbor.h
 * @brief hsmc's CBOR codec (RFC 8949): a deterministic encoder and a strict
 *        decoder, both over caller-owned memory.
 *
 * Encoder. hsmc_cbor_enc_t writes into a caller buffer. Every argument is
 * written in its shortest form and every length is definite (RFC 8949
 * §4.2.1). The first put that does not fit sets a sticky HSMC_ERR_BUFFER;
 * later puts write nothing but keep counting, so hsmc_cbor_enc_finish()
 * reports the size a second pass needs. A NULL buffer is a size-only pass.
 * Each put is all-or-nothing: the bytes before the first failing put are
 * valid CBOR, nothing is ever written past the capacity. Map key order is
 * the caller's duty; hsmc_cbor_key_cmp() gives the §4.2.1 order.
 *
 * Decoder. hsmc_cbor_dec_t reads items one at a time from a caller view,
 * in place (strings are views into the input, nothing is copied). It is
 * strict, because hsmc only reads what deterministic encoders wrote:
 *  - indefinite lengths (additional information 31) and the reserved
 *    additional information 28..30 are rejected;
 *  - floats (major type 7 with additional information 25..27) and every
 *    simple value other than false, true, null and undefined are rejected;
 *  - with HSMC_CBOR_STRICT_SHORTEST (on by default) an argument that has
 *    a shorter encoding is rejected; hsmc_cbor_dec_set_flags() relaxes it;
 *  - every string length and container count is checked against the bytes
 *    that remain before it is used; a count that the remaining bytes could
 *    not possibly hold (one byte per item at least) is rejected at once;
 *  - arrays and maps nested deeper than HSMC_CBOR_MAX_DEPTH are rejected;
 *  - text strings must be valid UTF-8 (no overlong forms, no surrogates,
 *    nothing above U+10FFFF);
 *  - hsmc_cbor_dec_finish() rejects trailing bytes and unread items.
 * Every violation is HSMC_ERR_FORMAT. Decoder errors are sticky: after the
 * first one every call returns it and reads nothing, err_msg says what was
 * wrong and err_off where. Only HSMC_ERR_ARG (a NULL output pointer) is
 * returned without becoming sticky. Duplicate and unsorted map keys are
 * found by hsmc_cbor_map_unique() and hsmc_cbor_map_sorted(), which the
 * caller runs where its format requires it.
 *
 * Nothing here allocates or recurses; hsmc_cbor_skip() walks nested items
 * with a fixed counter stack of HSMC_CBOR_MAX_DEPTH entries.
 */
#ifndef HSMC_CBOR_H
#define HSMC_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hsmc/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Encoder ------------------------------------------------------------ */

/** Encoder state. Caller-allocated; fields are private (read them through
 *  hsmc_cbor_enc_finish()). */
typedef struct hsmc_cbor_enc {
    uint8_t *buf;   /**< output, NULL in a size-only pass */
    size_t cap;     /**< capacity of buf */
    size_t len;     /**< bytes needed so far (written ones while err is 0) */
    hsmc_err_t err; /**< first error, sticky */
} hsmc_cbor_enc_t;

/**
 * Start encoding into buf[0..cap). Cannot fail.
 * @param buf output buffer owned by the caller, or NULL for a size-only
 *            pass (then cap is ignored and nothing is written).
 * A NULL enc is ignored.
 */
void hsmc_cbor_enc_init(hsmc_cbor_enc_t *enc, uint8_t *buf, size_t cap);

/**
 * Finish: the result of the whole encoding.
 * @param len out (may be NULL): bytes written on success; on HSMC_ERR_BUFFER
 *            the size the buffer would have needed.
 * @return HSMC_OK; HSMC_ERR_BUFFER when the output did not fit; HSMC_ERR_ARG
 *         when enc is NULL or a put had a bad argument (NULL data with a
 *         length, invalid UTF-8 text, a simple value other than 20..23, a
 *         total past SIZE_MAX). HSMC_ERR_ARG wins over an earlier
 *         HSMC_ERR_BUFFER, since a bigger buffer would not fix it.
 */
hsmc_err_t hsmc_cbor_enc_finish(const hsmc_cbor_enc_t *enc, size_t *len);

/*
 * The puts below each append one head (and payload) and return the
 * encoder's sticky error after the call (HSMC_ERR_ARG when enc is NULL).
 */

/** Unsigned integer (major type 0). */
hsmc_err_t hsmc_cbor_put_uint(hsmc_cbor_enc_t *enc, uint64_t v);
/** Signed integer: major type 0 when v >= 0, else major type 1. */
hsmc_err_t hsmc_cbor_put_int(hsmc_cbor_enc_t *enc, int64_t v);
/** Negative integer -1 - arg (major type 1), the full range down to -2^64. */
hsmc_err_t hsmc_cbor_put_nint(hsmc_cbor_enc_t *enc, uint64_t arg);
/** Byte string; p may be NULL only when len is 0. The bytes are copied. */
hsmc_err_t hsmc_cbor_put_bstr(hsmc_cbor_enc_t *enc, const uint8_t *p, size_t len);
/** Text string of len bytes of UTF-8 (no NUL needed); invalid UTF-8 is
 *  HSMC_ERR_ARG. p may be NULL only when len is 0. */
hsmc_err_t hsmc_cbor_put_tstr(hsmc_cbor_enc_t *enc, const char *p, size_t len);
/** Array head for n items; the caller then puts exactly n items. */
hsmc_err_t hsmc_cbor_put_array(hsmc_cbor_enc_t *enc, size_t n);
/** Map head for n pairs; the caller then puts n keys and values, keys in
 *  hsmc_cbor_key_cmp() order and unique. */
hsmc_err_t hsmc_cbor_put_map(hsmc_cbor_enc_t *enc, size_t n);
/** Tag head; the caller then puts the one tagged item. */
hsmc_err_t hsmc_cbor_put_tag(hsmc_cbor_enc_t *enc, uint64_t tag);
/** false or true. */
hsmc_err_t hsmc_cbor_put_bool(hsmc_cbor_enc_t *enc, bool v);
/** null. */
hsmc_err_t hsmc_cbor_put_null(hsmc_cbor_enc_t *enc);
/** Simple value: only HSMC_CBOR_SIMPLE_FALSE/TRUE/NULL/UNDEFINED (20..23);
 *  anything else is HSMC_ERR_ARG. */
hsmc_err_t hsmc_cbor_put_simple(hsmc_cbor_enc_t *enc, uint8_t v);
/**
 * Bytes that are already CBOR (e.g. a nested structure encoded before), or
 * the payload after hsmc_cbor_put_bstr_header(). Copied as they are: the
 * caller vouches that they are deterministic CBOR. p may be NULL when len
 * is 0.
 */
hsmc_err_t hsmc_cbor_put_raw(hsmc_cbor_enc_t *enc, const uint8_t *p, size_t len);
/** Byte string head only; the caller then appends exactly len bytes with
 *  hsmc_cbor_put_raw() (wraps encoded data in a bstr without a copy). */
hsmc_err_t hsmc_cbor_put_bstr_header(hsmc_cbor_enc_t *enc, size_t len);

/**
 * RFC 8949 §4.2.1 order of two encoded map keys: bytewise lexicographic,
 * a shorter key that is a prefix of the longer one first.
 * @return <0, 0 or >0 like memcmp. NULL is allowed only with length 0.
 */
int hsmc_cbor_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* ---- Decoder ------------------------------------------------------------ */

/** Simple values hsmc accepts. */
#define HSMC_CBOR_SIMPLE_FALSE 20u
#define HSMC_CBOR_SIMPLE_TRUE 21u
#define HSMC_CBOR_SIMPLE_NULL 22u
#define HSMC_CBOR_SIMPLE_UNDEFINED 23u

/** Decoder flag: reject arguments not in their shortest form (RFC 8949
 *  §4.2.1). On by default; clear it with hsmc_cbor_dec_set_flags() to
 *  read preferred-but-not-shortest input. Nothing else is relaxable. */
#define HSMC_CBOR_STRICT_SHORTEST 0x1u
/** Flags a fresh decoder has. */
#define HSMC_CBOR_DEFAULT_FLAGS HSMC_CBOR_STRICT_SHORTEST

/** Largest map hsmc_cbor_map_unique() checks (it compares every pair). */
#define HSMC_CBOR_MAP_CHECK_MAX 64u

/** Kind of the next item, from hsmc_cbor_peek(). */
typedef enum hsmc_cbor_type {
    HSMC_CBOR_UINT = 0,     /**< major type 0 */
    HSMC_CBOR_NINT = 1,     /**< major type 1 (negative integer) */
    HSMC_CBOR_BSTR = 2,     /**< byte string */
    HSMC_CBOR_TSTR = 3,     /**< text string */
    HSMC_CBOR_ARRAY = 4,    /**< array */
    HSMC_CBOR_MAP = 5,      /**< map */
    HSMC_CBOR_TAG = 6,      /**< tag (the tagged item follows) */
    HSMC_CBOR_FALSE = 7,    /**< simple value false */
    HSMC_CBOR_TRUE = 8,     /**< simple value true */
    HSMC_CBOR_NULL = 9,     /**< simple value null */
    HSMC_CBOR_UNDEFINED = 10 /**< simple value undefined */
} hsmc_cbor_type_t;

/** Decoder state. Caller-allocated; fields are private except err_msg and
 *  err_off, which explain the first error. */
typedef struct hsmc_cbor_dec {
    const uint8_t *buf;  /**< input (the caller keeps it alive) */
    size_t len;          /**< input length */
    size_t pos;          /**< next byte to read */
    hsmc_err_t err;      /**< first error, sticky */
    unsigned flags;      /**< HSMC_CBOR_* flags */
    unsigned depth;      /**< containers open */
    const char *err_msg; /**< static text of the first error, NULL before */
    size_t err_off;      /**< input offset of the first error */
    size_t open[HSMC_CBOR_MAX_DEPTH]; /**< items still unread per open container */
} hsmc_cbor_dec_t;

/**
 * Start decoding p[0..len). Cannot fail: a NULL p with len > 0 makes the
 * decoder fail every call with HSMC_ERR_ARG. Flags are
 * HSMC_CBOR_DEFAULT_FLAGS. The input must stay alive and unchanged while
 * the decoder or any view taken from it is used. A NULL dec is ignored.
 */
void hsmc_cbor_dec_init(hsmc_cbor_dec_t *dec, const uint8_t *p, size_t len);

/** Replace the decoder flags (HSMC_CBOR_STRICT_SHORTEST or 0). Unknown bits
 *  are ignored. */
void hsmc_cbor_dec_set_flags(hsmc_cbor_dec_t *dec, unsigned flags);

/**
 * Kind of the next item, without consuming it. The item's head is fully
 * checked (a float, an unknown simple value, an indefinite or non-shortest
 * head, a truncated head all fail here).
 * @return HSMC_OK; HSMC_ERR_FORMAT (sticky) at the end of input or on a bad
 *         head; HSMC_ERR_ARG for NULL pointers.
 */
hsmc_err_t hsmc_cbor_peek(hsmc_cbor_dec_t *dec, hsmc_cbor_type_t *type);

/*
 * The getters below consume one item of the named kind. An item of another
 * kind, or a value out of the output's range, is HSMC_ERR_FORMAT: sticky,
 * and nothing is consumed. Use hsmc_cbor_peek() first where more than one
 * kind is allowed.
 */

/** Unsigned integer (major type 0). */
hsmc_err_t hsmc_cbor_get_uint(hsmc_cbor_dec_t *dec, uint64_t *v);
/** Integer of major type 0 or 1 that fits int64_t (else HSMC_ERR_FORMAT). */
hsmc_err_t hsmc_cbor_get_int(hsmc_cbor_dec_t *dec, int64_t *v);
/** Negative integer (major type 1) as its argument: the value is -1 - arg. */
hsmc_err_t hsmc_cbor_get_nint(hsmc_cbor_dec_t *dec, uint64_t *arg);
/** Byte string: *p points into the input (not copied), *len its length. */
hsmc_err_t hsmc_cbor_get_bstr(hsmc_cbor_dec_t *dec, const uint8_t **p, size_t *len);
/** Text string, checked to be UTF-8: *p points into the input and is not
 *  NUL-terminated; *len is its length in bytes. */
hsmc_err_t hsmc_cbor_get_tstr(hsmc_cbor_dec_t *dec, const char **p, size_t *len);
/**
 * Enter an array: *n items follow, read them with further calls. Fails
 * when the nesting would exceed HSMC_CBOR_MAX_DEPTH or when *n items could
 * not fit in the remaining input.
 */
hsmc_err_t hsmc_cbor_get_array(hsmc_cbor_dec_t *dec, size_t *n);
/** Enter a map: *n key/value pairs follow (2 * *n items). Same checks as
 *  hsmc_cbor_get_array(); keys are not checked here (see map_unique/sorted). */
hsmc_err_t hsmc_cbor_get_map(hsmc_cbor_dec_t *dec, size_t *n);
/** Tag number; the tagged item follows and is read by the next call. Any
 *  tag number is returned: the caller decides which it accepts. */
hsmc_err_t hsmc_cbor_get_tag(hsmc_cbor_dec_t *dec, uint64_t *tag);
/** false or true. */
hsmc_err_t hsmc_cbor_get_bool(hsmc_cbor_dec_t *dec, bool *v);
/** null. */
hsmc_err_t hsmc_cbor_get_null(hsmc_cbor_dec_t *dec);
/** false, true, null or undefined as HSMC_CBOR_SIMPLE_* (20..23). */
hsmc_err_t hsmc_cbor_get_simple(hsmc_cbor_dec_t *dec, uint8_t *v);

/**
 * Skip one whole item: a scalar, a string, or an array/map with all it
 * contains, tags included (any tag number). Everything skipped gets the
 * same checks as when read (heads, lengths, UTF-8, depth).
 * @return HSMC_OK or HSMC_ERR_FORMAT (sticky).
 */
hsmc_err_t hsmc_cbor_skip(hsmc_cbor_dec_t *dec);

/**
 * Like hsmc_cbor_skip(), and return the skipped item's encoded bytes
 * (a view into the input), e.g. to compare or copy it.
 */
hsmc_err_t hsmc_cbor_get_raw(hsmc_cbor_dec_t *dec, const uint8_t **p, size_t *len);

/**
 * Check that the n keys of a map are pairwise distinct (byte-identical
 * encodings are duplicates; with strict shortest heads that is the same as
 * equal values). dec must be positioned at the first key, i.e. just after
 * hsmc_cbor_get_map() returned n. dec is not moved: the check walks
 * copies, comparing every pair (O(n^2) re-scans, no memory).
 * @return HSMC_OK; HSMC_ERR_FORMAT (set in dec, sticky) on a duplicate, on
 *         malformed entries, or when n > HSMC_CBOR_MAP_CHECK_MAX;
 *         HSMC_ERR_ARG (not sticky) when dec is NULL or not positioned at
 *         the first key of a map of n pairs.
 */
hsmc_err_t hsmc_cbor_map_unique(hsmc_cbor_dec_t *dec, size_t n);

/**
 * Check that the n keys of a map are in strictly increasing
 * hsmc_cbor_key_cmp() order (RFC 8949 §4.2.1), which also excludes
 * duplicates. Positioned and non-moving like hsmc_cbor_map_unique(); O(n).
 * @return HSMC_OK; HSMC_ERR_FORMAT (set in dec, sticky) on an out-of-order
 *         or repeated key or malformed entries; HSMC_ERR_ARG as for
 *         hsmc_cbor_map_unique(). To only ask whether a map is sorted, run
 *         it on a copy of the decoder (a plain struct copy is fine).
 */
hsmc_err_t hsmc_cbor_map_sorted(hsmc_cbor_dec_t *dec, size_t n);

/** true when every input byte has been read (an errored decoder: true). */
bool hsmc_cbor_dec_at_end(const hsmc_cbor_dec_t *dec);

/**
 * End of decoding.
 * @return HSMC_OK when no error happened, every opened array/map was read
 *         to its end and no input byte remains; otherwise the sticky error
 *         or HSMC_ERR_FORMAT (trailing bytes, unread items); HSMC_ERR_ARG
 *         when dec is NULL.
 */
hsmc_err_t hsmc_cbor_dec_finish(hsmc_cbor_dec_t *dec);

#ifdef __cplusplus
}
#endif

#endif /* HSMC_CBOR_H */
