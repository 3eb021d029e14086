/*
 * COSE (RFC 9052/9053) over hsmc's CBOR codec: COSE_Encrypt0 with token
 * AES-GCM, COSE_Encrypt with software AES-GCM under a fresh content key
 * wrapped by token keys, COSE_Sign1 signed in the token and verified in the
 * token or in software. The stream (hsmc_cose_stream.c) reuses the
 * COSE_Encrypt writer and reader below. Formats: docs/FORMATS.md.
 *
 * Memory: the message decoder, the key a resolver found, the content key,
 * mbedTLS's GCM/SHA-2 state and the Enc_structure/Sig_structure all live in
 * the caller's hsmc_cose_t; frames here stay small. Ciphertext, IVs,
 * wrapped keys and signatures are written in place into the caller's
 * output after a size pass has shown that everything fits.
 */
#include <string.h>

#include <mbedtls/version.h>
#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include <mbedtls/sha512.h>

#include "hsmc_cose_int.h"

/* The opaque storage must hold mbedTLS's contexts (HSMC_COSE_CRYPTO_LEN). */
typedef char hsmc_cose_crypto_len_too_small_for_mbedtls[
    (sizeof(mbedtls_gcm_context) <= HSMC_COSE_CRYPTO_LEN &&
     sizeof(mbedtls_sha256_context) <= HSMC_COSE_CRYPTO_LEN &&
     sizeof(mbedtls_sha512_context) <= HSMC_COSE_CRYPTO_LEN)
        ? 1
        : -1];

/* mbedTLS 3 dropped the _ret suffix of the SHA-2 functions. */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define HSMC_SHA256_STARTS mbedtls_sha256_starts
#define HSMC_SHA256_UPDATE mbedtls_sha256_update
#define HSMC_SHA256_FINISH mbedtls_sha256_finish
#define HSMC_SHA512_STARTS mbedtls_sha512_starts
#define HSMC_SHA512_UPDATE mbedtls_sha512_update
#define HSMC_SHA512_FINISH mbedtls_sha512_finish
#else
#define HSMC_SHA256_STARTS mbedtls_sha256_starts_ret
#define HSMC_SHA256_UPDATE mbedtls_sha256_update_ret
#define HSMC_SHA256_FINISH mbedtls_sha256_finish_ret
#define HSMC_SHA512_STARTS mbedtls_sha512_starts_ret
#define HSMC_SHA512_UPDATE mbedtls_sha512_update_ret
#define HSMC_SHA512_FINISH mbedtls_sha512_finish_ret
#endif

#define HSMC_COSE_GCM(c) ((mbedtls_gcm_context *)(void *)(c)->crypto.bytes)
#define HSMC_COSE_SHA256(c) ((mbedtls_sha256_context *)(void *)(c)->crypto.bytes)
#define HSMC_COSE_SHA512(c) ((mbedtls_sha512_context *)(void *)(c)->crypto.bytes)

#define HSMC_COSE_CEK_LEN 32u  /* content key of what hsmc writes (A256GCM) */
#define HSMC_COSE_KW_EXTRA 8u  /* RFC 3394 adds one 64-bit block */

static const uint8_t hsmc_cose_empty[1] = {0};

/* ---- Small helpers -------------------------------------------------------- */

uint8_t *hsmc__cose_reserve_bstr(hsmc_cbor_enc_t *enc, size_t n)
{
    uint8_t *p = NULL;

    (void)hsmc_cbor_put_bstr_header(enc, n);
    if (n > SIZE_MAX - enc->len) {
        enc->len = SIZE_MAX;
        enc->err = HSMC_ERR_ARG;
        return NULL;
    }
    if (enc->err == HSMC_OK && enc->buf != NULL) {
        if (n > enc->cap - enc->len)
            enc->err = HSMC_ERR_BUFFER;
        else
            p = enc->buf + enc->len;
    }
    enc->len += n;
    return p;
}

const char *hsmc__cose_kid_text(const uint8_t *kid, size_t len, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, o = 0;
    int printable = len > 0;

    if (cap < 8)
        return "";
    if (kid == NULL || len == 0) {
        memcpy(buf, "(none)", 7);
        return buf;
    }
    for (i = 0; i < len; i++) {
        if (kid[i] < 0x20 || kid[i] > 0x7e || kid[i] == '\'')
            printable = 0;
    }
    if (printable && len + 3 <= cap) {
        buf[o++] = '\'';
        memcpy(buf + o, kid, len);
        o += len;
        buf[o++] = '\'';
        buf[o] = '\0';
        return buf;
    }
    buf[o++] = 'h';
    buf[o++] = '\'';
    for (i = 0; i < len && o + 6 <= cap; i++) {
        buf[o++] = hex[kid[i] >> 4];
        buf[o++] = hex[kid[i] & 15];
    }
    if (i < len) {
        buf[o++] = '.';
        buf[o++] = '.';
    }
    buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

hsmc_err_t hsmc__cose_dec_fail(hsmc_cose_t *c, const char *what, const hsmc_cbor_dec_t *dec)
{
    return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK, "%s: %s (byte %lu)", what,
                      dec->err_msg != NULL ? dec->err_msg : "malformed CBOR",
                      (unsigned long)dec->err_off);
}

hsmc_err_t hsmc__cose_tag(hsmc_cose_t *c, const char *what, hsmc_cbor_dec_t *dec, uint64_t tag,
                          unsigned flags)
{
    hsmc_cbor_type_t t;
    uint64_t v;

    if (hsmc_cbor_peek(dec, &t) != HSMC_OK)
        return hsmc__cose_dec_fail(c, what, dec);
    if (t != HSMC_CBOR_TAG) {
        if (flags & HSMC_COSE_UNTAGGED)
            return HSMC_OK;
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: the message lacks its COSE tag %lu (pass HSMC_COSE_UNTAGGED to "
                          "accept it untagged)",
                          what, (unsigned long)tag);
    }
    if (hsmc_cbor_get_tag(dec, &v) != HSMC_OK)
        return hsmc__cose_dec_fail(c, what, dec);
    if (v != tag)
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: CBOR tag %lu where COSE tag %lu was expected", what,
                          (unsigned long)v, (unsigned long)tag);
    return HSMC_OK;
}

/* ---- Header parameters ---------------------------------------------------- */

/* The HSMC_COSE_H_* bit of a label this structure understands, else 0. */
static unsigned hsmc_cose_label_bit(int64_t label, unsigned allowed)
{
    unsigned bit;

    switch (label) {
    case HSMC_COSE_HDR_ALG:
        bit = HSMC_COSE_H_ALG;
        break;
    case HSMC_COSE_HDR_CRIT:
        bit = HSMC_COSE_H_CRIT;
        break;
    case HSMC_COSE_HDR_CONTENT_TYPE:
        bit = HSMC_COSE_H_CTYPE;
        break;
    case HSMC_COSE_HDR_KID:
        bit = HSMC_COSE_H_KID;
        break;
    case HSMC_COSE_HDR_IV:
        bit = HSMC_COSE_H_IV;
        break;
    case HSMC_COSE_HDR_CHUNK_SIZE:
        bit = HSMC_COSE_H_CHUNK;
        break;
    default:
        return 0;
    }
    return (bit & (allowed | HSMC_COSE_H_CRIT)) ? bit : 0;
}

/* 1 when the protected map (already checked) has a key encoded as key[0..klen). */
HSMC_NOINLINE static int hsmc_cose_prot_has(const hsmc_cose_hdrs_t *hd, const uint8_t *key,
                                            size_t klen)
{
    hsmc_cbor_dec_t d;
    const uint8_t *k;
    size_t n, i, kl;

    if (hd->prot_len == 0)
        return 0;
    hsmc_cbor_dec_init(&d, hd->prot, hd->prot_len);
    if (hsmc_cbor_get_map(&d, &n) != HSMC_OK)
        return 0;
    for (i = 0; i < n; i++) {
        if (hsmc_cbor_get_raw(&d, &k, &kl) != HSMC_OK || hsmc_cbor_skip(&d) != HSMC_OK)
            return 0;
        if (kl == klen && memcmp(k, key, kl) == 0)
            return 1;
    }
    return 0;
}

/*
 * Content type (3, RFC 9052 §3.1): a media type as text (UTF-8, checked by
 * the decoder; not empty) or a CoAP Content-Format number (0..65535).
 */
static hsmc_err_t hsmc_cose_ctype(hsmc_cose_t *c, const char *what, hsmc_cbor_dec_t *dec,
                                  hsmc_cbor_type_t t, hsmc_cose_hdrs_t *hd)
{
    uint64_t v = 0;

    if (t == HSMC_CBOR_TSTR) {
        if (hsmc_cbor_get_tstr(dec, &hd->ctype, &hd->ctype_len) != HSMC_OK)
            return hsmc__cose_dec_fail(c, what, dec);
        if (hd->ctype_len == 0)
            return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: the content type (3) is empty text", what);
        return HSMC_OK;
    }
    if (t != HSMC_CBOR_UINT)
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: the content type (3) is neither text nor an unsigned integer",
                          what);
    if (hsmc_cbor_get_uint(dec, &v) != HSMC_OK)
        return hsmc__cose_dec_fail(c, what, dec);
    if (v > 65535u)
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: the content type (3) is a number above 65535, not a CoAP "
                          "Content-Format",
                          what);
    hd->cformat = (int64_t)v;
    return HSMC_OK;
}

/* Value of a label hsmc understands, type-checked, into *hd. */
static hsmc_err_t hsmc_cose_value(hsmc_cose_t *c, const char *what, hsmc_cbor_dec_t *dec,
                                  unsigned bit, hsmc_cose_hdrs_t *hd, const uint8_t **crit,
                                  size_t *crit_len)
{
    hsmc_cbor_type_t t;
    hsmc_err_t err;

    if (hsmc_cbor_peek(dec, &t) != HSMC_OK)
        return hsmc__cose_dec_fail(c, what, dec);
    switch (bit) {
    case HSMC_COSE_H_ALG:
        if (t == HSMC_CBOR_TSTR)
            return hsmc__fail(c->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                              "%s: algorithms named by text are not supported", what);
        if (t != HSMC_CBOR_UINT && t != HSMC_CBOR_NINT)
            return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK, "%s: alg (1) is not an integer",
                              what);
        err = hsmc_cbor_get_int(dec, &hd->alg);
        break;
    case HSMC_COSE_H_CRIT:
        if (t != HSMC_CBOR_ARRAY)
            return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK, "%s: crit (2) is not an array",
                              what);
        err = hsmc_cbor_get_raw(dec, crit, crit_len);
        break;
    case HSMC_COSE_H_CTYPE:
        return hsmc_cose_ctype(c, what, dec, t, hd);
    case HSMC_COSE_H_KID:
        if (t != HSMC_CBOR_BSTR)
            return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK, "%s: kid (4) is not a byte string",
                              what);
        err = hsmc_cbor_get_bstr(dec, &hd->kid, &hd->kid_len);
        break;
    case HSMC_COSE_H_IV:
        if (t != HSMC_CBOR_BSTR)
            return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK, "%s: IV (5) is not a byte string",
                              what);
        err = hsmc_cbor_get_bstr(dec, &hd->iv, &hd->iv_len);
        break;
    default: /* HSMC_COSE_H_CHUNK */
        if (t != HSMC_CBOR_UINT)
            return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: the chunk size (-65537) is not an unsigned integer", what);
        err = hsmc_cbor_get_uint(dec, &hd->chunk);
        break;
    }
    return err == HSMC_OK ? HSMC_OK : hsmc__cose_dec_fail(c, what, dec);
}

/*
 * One header bucket: the map at dec. Labels this structure understands go
 * into *hd (a second occurrence, i.e. in both buckets, is refused); other
 * labels are skipped, after checking (unprotected bucket) that the
 * protected one does not have them too.
 */
HSMC_NOINLINE static hsmc_err_t hsmc_cose_bucket(hsmc_cose_t *c, const char *what,
                                                 hsmc_cbor_dec_t *dec, int prot, unsigned allowed,
                                                 hsmc_cose_hdrs_t *hd, const uint8_t **crit,
                                                 size_t *crit_len, size_t *count)
{
    hsmc_cbor_type_t t;
    const uint8_t *key;
    size_t n, i, klen;
    int64_t label;
    unsigned bit;
    hsmc_err_t err;

    if (hsmc_cbor_get_map(dec, &n) != HSMC_OK || hsmc_cbor_map_unique(dec, n) != HSMC_OK)
        return hsmc__cose_dec_fail(c, what, dec);
    *count = n;
    for (i = 0; i < n; i++) {
        if (hsmc_cbor_peek(dec, &t) != HSMC_OK)
            return hsmc__cose_dec_fail(c, what, dec);
        if (t != HSMC_CBOR_UINT && t != HSMC_CBOR_NINT && t != HSMC_CBOR_TSTR)
            return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: a header label is neither an integer nor text", what);
        key = dec->buf + dec->pos; /* the label's encoding, for the cross-bucket check */
        bit = 0;
        label = 0;
        if (t != HSMC_CBOR_TSTR) {
            if (hsmc_cbor_get_int(dec, &label) != HSMC_OK)
                return hsmc__cose_dec_fail(c, what, dec);
            bit = hsmc_cose_label_bit(label, allowed);
            if (label == HSMC_COSE_HDR_PARTIAL_IV)
                return hsmc__fail(c->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                                  "%s: Partial IV (6) is not supported; give the full IV (5)",
                                  what);
        } else if (hsmc_cbor_skip(dec) != HSMC_OK) {
            return hsmc__cose_dec_fail(c, what, dec);
        }
        klen = (size_t)(dec->buf + dec->pos - key);
        if (bit == HSMC_COSE_H_CRIT && !prot)
            return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: crit (2) must be in the protected bucket", what);
        if (bit != 0) {
            if (hd->have & bit)
                return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                                  "%s: header %ld is in both buckets", what, (long)label);
            hd->have |= bit;
            if (prot)
                hd->prot_have |= bit;
            err = hsmc_cose_value(c, what, dec, bit, hd, crit, crit_len);
            if (err != HSMC_OK)
                return err;
            continue;
        }
        if (!prot && hsmc_cose_prot_has(hd, key, klen))
            return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: a header label is in both buckets", what);
        if (hsmc_cbor_skip(dec) != HSMC_OK) /* not hsmc's to interpret */
            return hsmc__cose_dec_fail(c, what, dec);
    }
    return HSMC_OK;
}

/* crit (RFC 9052 §3.1): non-empty, every label understood and protected. */
HSMC_NOINLINE static hsmc_err_t hsmc_cose_crit(hsmc_cose_t *c, const char *what,
                                               const uint8_t *crit, size_t crit_len,
                                               unsigned allowed, const hsmc_cose_hdrs_t *hd)
{
    hsmc_cbor_dec_t d;
    hsmc_cbor_type_t t;
    size_t n, i;
    int64_t label;
    unsigned bit;

    hsmc_cbor_dec_init(&d, crit, crit_len);
    if (hsmc_cbor_get_array(&d, &n) != HSMC_OK)
        return hsmc__cose_dec_fail(c, what, &d);
    if (n == 0)
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK, "%s: crit (2) is empty", what);
    for (i = 0; i < n; i++) {
        if (hsmc_cbor_peek(&d, &t) != HSMC_OK)
            return hsmc__cose_dec_fail(c, what, &d);
        if (t == HSMC_CBOR_TSTR)
            return hsmc__fail(c->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                              "%s: a critical header named by text is not understood", what);
        if (t != HSMC_CBOR_UINT && t != HSMC_CBOR_NINT)
            return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: crit (2) lists something that is not a label", what);
        if (hsmc_cbor_get_int(&d, &label) != HSMC_OK)
            return hsmc__cose_dec_fail(c, what, &d);
        bit = hsmc_cose_label_bit(label, allowed);
        if (bit == 0 || bit == HSMC_COSE_H_CRIT)
            return hsmc__fail(c->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                              "%s: critical header %ld is not understood here", what,
                              (long)label);
        if (!(hd->prot_have & bit))
            return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: critical header %ld is not in the protected bucket", what,
                              (long)label);
    }
    if (hsmc_cbor_dec_finish(&d) != HSMC_OK)
        return hsmc__cose_dec_fail(c, what, &d);
    return HSMC_OK;
}

hsmc_err_t hsmc__cose_headers(hsmc_cose_t *c, const char *what, hsmc_cbor_dec_t *dec,
                              unsigned allowed, hsmc_cose_hdrs_t *hd)
{
    hsmc_cbor_dec_t pd;
    const uint8_t *crit = NULL;
    size_t crit_len = 0, n = 0;
    hsmc_err_t err;

    memset(hd, 0, sizeof *hd);
    if (hsmc_cbor_get_bstr(dec, &hd->prot, &hd->prot_len) != HSMC_OK)
        return hsmc__cose_dec_fail(c, what, dec);
    if (hd->prot_len > 0) {
        hsmc_cbor_dec_init(&pd, hd->prot, hd->prot_len);
        err = hsmc_cose_bucket(c, what, &pd, 1, allowed, hd, &crit, &crit_len, &n);
        if (err != HSMC_OK)
            return err;
        if (hsmc_cbor_dec_finish(&pd) != HSMC_OK)
            return hsmc__cose_dec_fail(c, what, &pd);
    }
    hd->prot_n = n;
    err = hsmc_cose_bucket(c, what, dec, 0, allowed, hd, &crit, &crit_len, &n);
    if (err != HSMC_OK)
        return err;
    if (crit != NULL)
        return hsmc_cose_crit(c, what, crit, crit_len, allowed, hd);
    return HSMC_OK;
}

/* ---- Software crypto in the context (mbedTLS) ----------------------------- */

void hsmc__cose_crypto_release(hsmc_cose_t *c)
{
    switch (c->crypto_state) {
    case HSMC_COSE_CS_GCM:
        mbedtls_gcm_free(HSMC_COSE_GCM(c));
        break;
    case HSMC_COSE_CS_SHA256:
        mbedtls_sha256_free(HSMC_COSE_SHA256(c));
        break;
    case HSMC_COSE_CS_SHA512:
        mbedtls_sha512_free(HSMC_COSE_SHA512(c));
        break;
    default:
        break;
    }
    c->crypto_state = HSMC_COSE_CS_NONE;
    hsmc__wipe(c->crypto.bytes, sizeof c->crypto.bytes);
}

hsmc_err_t hsmc__cose_gcm_key(hsmc_cose_t *c, const uint8_t *key, size_t len)
{
    hsmc__cose_crypto_release(c);
    mbedtls_gcm_init(HSMC_COSE_GCM(c));
    c->crypto_state = HSMC_COSE_CS_GCM;
    if (mbedtls_gcm_setkey(HSMC_COSE_GCM(c), MBEDTLS_CIPHER_ID_AES, key,
                           (unsigned int)(8u * len)) != 0) {
        hsmc__cose_crypto_release(c);
        return HSMC_ERR_INTERNAL;
    }
    return HSMC_OK;
}

hsmc_err_t hsmc__cose_gcm_seal(hsmc_cose_t *c, const uint8_t iv[HSMC_GCM_IV_LEN],
                               const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t len,
                               uint8_t *out)
{
    if (c->crypto_state != HSMC_COSE_CS_GCM)
        return HSMC_ERR_INTERNAL;
    if (mbedtls_gcm_crypt_and_tag(HSMC_COSE_GCM(c), MBEDTLS_GCM_ENCRYPT, len, iv,
                                  HSMC_GCM_IV_LEN, aad != NULL ? aad : hsmc_cose_empty, aad_len,
                                  pt != NULL ? pt : hsmc_cose_empty, out, HSMC_GCM_TAG_LEN,
                                  out + len) != 0) {
        hsmc__wipe(out, len + HSMC_GCM_TAG_LEN);
        return HSMC_ERR_INTERNAL;
    }
    return HSMC_OK;
}

hsmc_err_t hsmc__cose_gcm_open(hsmc_cose_t *c, const uint8_t iv[HSMC_GCM_IV_LEN],
                               const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                               uint8_t *out)
{
    size_t n = len - HSMC_GCM_TAG_LEN;

    if (c->crypto_state != HSMC_COSE_CS_GCM || len < HSMC_GCM_TAG_LEN)
        return HSMC_ERR_DECRYPT;
    /* mbedTLS checks the tag after decrypting and zeroes out on a mismatch;
     * wiping here too keeps that promise whatever the GCM implementation. */
    if (mbedtls_gcm_auth_decrypt(HSMC_COSE_GCM(c), n, iv, HSMC_GCM_IV_LEN,
                                 aad != NULL ? aad : hsmc_cose_empty, aad_len, in + n,
                                 HSMC_GCM_TAG_LEN, in, out) != 0) {
        if (n > 0)
            hsmc__wipe(out, n);
        return HSMC_ERR_DECRYPT;
    }
    return HSMC_OK;
}

/* Start a SHA-2 hash of the Sig_structure or Stream_structure. */
static hsmc_err_t hsmc_cose_sha_start(hsmc_cose_t *c, hsmc_hash_t hash)
{
    int rc;

    hsmc__cose_crypto_release(c);
    if (hash == HSMC_HASH_SHA256) {
        mbedtls_sha256_init(HSMC_COSE_SHA256(c));
        c->crypto_state = HSMC_COSE_CS_SHA256;
        rc = HSMC_SHA256_STARTS(HSMC_COSE_SHA256(c), 0);
    } else if (hash == HSMC_HASH_SHA384 || hash == HSMC_HASH_SHA512) {
        mbedtls_sha512_init(HSMC_COSE_SHA512(c));
        c->crypto_state = HSMC_COSE_CS_SHA512;
        rc = HSMC_SHA512_STARTS(HSMC_COSE_SHA512(c), hash == HSMC_HASH_SHA384);
    } else {
        return HSMC_ERR_UNSUPPORTED;
    }
    return rc == 0 ? HSMC_OK : HSMC_ERR_INTERNAL;
}

hsmc_err_t hsmc__cose_sha256_start(hsmc_cose_t *c)
{
    return hsmc_cose_sha_start(c, HSMC_HASH_SHA256);
}

hsmc_err_t hsmc__cose_sha_update(hsmc_cose_t *c, const uint8_t *p, size_t n)
{
    int rc;

    if (n == 0)
        return HSMC_OK;
    if (c->crypto_state == HSMC_COSE_CS_SHA256)
        rc = HSMC_SHA256_UPDATE(HSMC_COSE_SHA256(c), p, n);
    else if (c->crypto_state == HSMC_COSE_CS_SHA512)
        rc = HSMC_SHA512_UPDATE(HSMC_COSE_SHA512(c), p, n);
    else
        return HSMC_ERR_INTERNAL;
    return rc == 0 ? HSMC_OK : HSMC_ERR_INTERNAL;
}

hsmc_err_t hsmc__cose_sha_finish(hsmc_cose_t *c, uint8_t *out)
{
    int rc;

    if (c->crypto_state == HSMC_COSE_CS_SHA256)
        rc = HSMC_SHA256_FINISH(HSMC_COSE_SHA256(c), out);
    else if (c->crypto_state == HSMC_COSE_CS_SHA512)
        rc = HSMC_SHA512_FINISH(HSMC_COSE_SHA512(c), out);
    else
        return HSMC_ERR_INTERNAL;
    hsmc__cose_crypto_release(c);
    return rc == 0 ? HSMC_OK : HSMC_ERR_INTERNAL;
}

hsmc_err_t hsmc__cose_sha_tail(hsmc_cose_t *c, hsmc_err_t err, size_t n, const hsmc_view_t *a,
                               const hsmc_view_t *b, uint8_t *out)
{
    hsmc_cbor_enc_t e;

    if (err == HSMC_OK)
        err = hsmc__cose_sha_update(c, c->scratch, n);
    if (err == HSMC_OK)
        err = hsmc__cose_sha_update(c, a->ptr, a->len);
    if (err == HSMC_OK) {
        hsmc_cbor_enc_init(&e, c->scratch, sizeof c->scratch);
        (void)hsmc_cbor_put_bstr_header(&e, b->len);
        err = hsmc_cbor_enc_finish(&e, &n);
    }
    if (err == HSMC_OK)
        err = hsmc__cose_sha_update(c, c->scratch, n);
    if (err == HSMC_OK)
        err = hsmc__cose_sha_update(c, b->ptr, b->len);
    if (err == HSMC_OK)
        err = hsmc__cose_sha_finish(c, out);
    hsmc__cose_crypto_release(c);
    return err;
}

/* ---- Names ------------------------------------------------------------------- */

const char *hsmc_cose_alg_name(int alg)
{
    static const struct {
        int alg;
        const char *name;
    } names[] = {
        {HSMC_COSE_A128GCM, "A128GCM"},   {HSMC_COSE_A192GCM, "A192GCM"},
        {HSMC_COSE_A256GCM, "A256GCM"},   {HSMC_COSE_A128KW, "A128KW"},
        {HSMC_COSE_A192KW, "A192KW"},     {HSMC_COSE_A256KW, "A256KW"},
        {HSMC_COSE_RSA_OAEP, "RSA-OAEP"}, {HSMC_COSE_RSA_OAEP_256, "RSA-OAEP-256"},
        {HSMC_COSE_ES256, "ES256"},       {HSMC_COSE_ES384, "ES384"},
        {HSMC_COSE_ES512, "ES512"},       {HSMC_COSE_EDDSA, "EdDSA"},
        {HSMC_COSE_PS256, "PS256"},       {HSMC_COSE_PS384, "PS384"},
        {HSMC_COSE_PS512, "PS512"},       {HSMC_COSE_RS256, "RS256"},
        {HSMC_COSE_RS384, "RS384"},       {HSMC_COSE_RS512, "RS512"},
    };
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].alg == alg)
            return names[i].name;
    return NULL;
}

/* ---- Context ----------------------------------------------------------------- */

void hsmc_cose_init(hsmc_cose_t *c, hsmc_t *h)
{
    if (c == NULL)
        return;
    memset(c, 0, sizeof *c);
    c->h = h;
    c->resolve = hsmc_cose_resolve_label;
}

void hsmc_cose_set_resolver(hsmc_cose_t *c, hsmc_cose_resolve_fn fn, void *user)
{
    if (c == NULL)
        return;
    c->resolve = fn != NULL ? fn : hsmc_cose_resolve_label;
    c->resolve_user = fn != NULL ? user : NULL;
}

hsmc_err_t hsmc_cose_set_content_type(hsmc_cose_t *c, const char *ct)
{
    hsmc_cbor_enc_t e;
    size_t len, n = 0, i;

    if (c == NULL)
        return HSMC_ERR_ARG;
    c->content_type = NULL;
    c->content_type_len = 0;
    if (ct == NULL)
        return HSMC_OK;
    len = strlen(ct);
    /* The encoder's UTF-8 check, in a size-only pass. */
    hsmc_cbor_enc_init(&e, NULL, 0);
    (void)hsmc_cbor_put_tstr(&e, ct, len);
    for (i = 0; i < len; i++) {
        if ((unsigned char)ct[i] < 0x20u || (unsigned char)ct[i] == 0x7fu)
            break;
    }
    if (len == 0 || i < len || hsmc_cbor_enc_finish(&e, &n) != HSMC_OK)
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK,
                          "hsmc_cose_set_content_type: the content type must be non-empty UTF-8 "
                          "text without control characters (a media type such as "
                          "\"application/json\"); none is set");
    c->content_type = ct;
    c->content_type_len = len;
    return HSMC_OK;
}

void hsmc__cose_info_reset(hsmc_cose_info_t *info)
{
    if (info == NULL)
        return;
    memset(info, 0, sizeof *info);
    info->content_format = -1;
}

/* The content type of a parsed body for the caller: only a protected one,
 * since only that one is authenticated. */
static void hsmc_cose_info_ctype(hsmc_cose_info_t *info, const hsmc_cose_hdrs_t *hd)
{
    if (info == NULL || !(hd->prot_have & HSMC_COSE_H_CTYPE))
        return;
    if (hd->ctype != NULL) {
        info->content_type.ptr = (const uint8_t *)hd->ctype;
        info->content_type.len = hd->ctype_len;
    } else {
        info->content_format = hd->cformat;
    }
}

void hsmc_cose_free(hsmc_cose_t *c)
{
    if (c == NULL)
        return;
    hsmc__cose_crypto_release(c);
    hsmc__wipe(c, sizeof *c);
}

/* End of an operation: content key, key copy and software state go. */
static void hsmc_cose_done(hsmc_cose_t *c)
{
    hsmc__cose_crypto_release(c);
    hsmc__wipe(c->cek, sizeof c->cek);
    hsmc__wipe(&c->key, sizeof c->key);
}

hsmc_err_t hsmc_cose_resolve_label(void *user, hsmc_t *h, const uint8_t *kid, size_t kid_len,
                                   hsmc_key_t *key)
{
    char label[HSMC_MAX_LABEL_LEN + 1];
    char txt[40];
    hsmc_err_t err;

    (void)user;
    if (h == NULL || key == NULL || (kid == NULL && kid_len > 0))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "hsmc_cose_resolve_label: NULL argument");
    if (kid_len == 0)
        return hsmc__fail(h, HSMC_ERR_OBJECT_NOT_FOUND, CKR_OK,
                          "the COSE message names no key (no kid); set a resolver that picks "
                          "one (hsmc_cose_set_resolver)");
    if (kid_len > HSMC_MAX_LABEL_LEN || memchr(kid, 0, kid_len) != NULL)
        return hsmc__fail(h, HSMC_ERR_OBJECT_NOT_FOUND, CKR_OK,
                          "kid %s cannot be a key label (at most %u bytes, no NUL)",
                          hsmc__cose_kid_text(kid, kid_len, txt, sizeof txt),
                          (unsigned)HSMC_MAX_LABEL_LEN);
    memcpy(label, kid, kid_len);
    label[kid_len] = '\0';
    err = hsmc_key_open(h, label, key);
    if (err == HSMC_ERR_OBJECT_NOT_FOUND)
        return hsmc__fail(h, err, CKR_OK, "no key labelled %s (the kid) on the token",
                          hsmc__cose_kid_text(kid, kid_len, txt, sizeof txt));
    return err;
}

hsmc_err_t hsmc_cose_resolve_fixed(void *user, hsmc_t *h, const uint8_t *kid, size_t kid_len,
                                   hsmc_key_t *key)
{
    (void)kid;
    (void)kid_len;
    if (user == NULL || key == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "hsmc_cose_resolve_fixed: no key given as the resolver's argument");
    *key = *(const hsmc_key_t *)user;
    return HSMC_OK;
}

/* Find the key for kid through the resolver into c->key. */
static hsmc_err_t hsmc_cose_resolve(hsmc_cose_t *c, const uint8_t *kid, size_t kid_len)
{
    hsmc_err_t err;

    memset(&c->key, 0, sizeof c->key);
    err = c->resolve(c->resolve_user, c->h, kid, kid_len, &c->key);
    if (err == HSMC_OK && c->key.priv.label_len == 0 && c->key.priv.handle == 0)
        err = hsmc__fail(c->h, HSMC_ERR_INTERNAL, CKR_OK,
                         "the COSE resolver returned success without a key");
    return err;
}

/* ---- The protected bucket hsmc writes ---------------------------------------- */

/*
 * The map of a body's protected bucket into e: {1: alg}, then for a stream
 * header (chunk > 0) 2: [-65537], then 3: the context's content type when
 * set, then -65537: chunk: RFC 8949 bytewise key order (01, 02, 03, 3a..).
 */
static void hsmc_cose_prot_map(hsmc_cbor_enc_t *e, const hsmc_cose_t *c, int64_t alg,
                               size_t chunk)
{
    (void)hsmc_cbor_put_map(e, 1u + (chunk != 0 ? 2u : 0u) + (c->content_type != NULL ? 1u : 0u));
    (void)hsmc_cbor_put_int(e, HSMC_COSE_HDR_ALG);
    (void)hsmc_cbor_put_int(e, alg);
    if (chunk != 0) {
        (void)hsmc_cbor_put_int(e, HSMC_COSE_HDR_CRIT);
        (void)hsmc_cbor_put_array(e, 1);
        (void)hsmc_cbor_put_int(e, HSMC_COSE_HDR_CHUNK_SIZE);
    }
    if (c->content_type != NULL) {
        (void)hsmc_cbor_put_int(e, HSMC_COSE_HDR_CONTENT_TYPE);
        (void)hsmc_cbor_put_tstr(e, c->content_type, c->content_type_len);
    }
    if (chunk != 0) {
        (void)hsmc_cbor_put_int(e, HSMC_COSE_HDR_CHUNK_SIZE);
        (void)hsmc_cbor_put_uint(e, (uint64_t)chunk);
    }
}

/*
 * The protected bucket as a bstr into e (written in place, so a long
 * content type needs no buffer of its own). @return the length of the map
 * inside the bstr: when e has a buffer and no error, the map is the last
 * that many bytes written.
 */
static size_t hsmc_cose_put_prot(hsmc_cbor_enc_t *e, const hsmc_cose_t *c, int64_t alg,
                                 size_t chunk)
{
    hsmc_cbor_enc_t sz;
    size_t n = 0;

    hsmc_cbor_enc_init(&sz, NULL, 0);
    hsmc_cose_prot_map(&sz, c, alg, chunk);
    (void)hsmc_cbor_enc_finish(&sz, &n); /* an error recurs in e, which is sticky */
    (void)hsmc_cbor_put_bstr_header(e, n);
    hsmc_cose_prot_map(e, c, alg, chunk);
    return n;
}

/* The start of a message hsmc writes: its tag, its array of n items and
 * the protected bucket (hsmc_cose_put_prot: @return its map's length). */
static size_t hsmc_cose_put_start(hsmc_cbor_enc_t *e, const hsmc_cose_t *c, uint64_t tag,
                                  size_t n, int64_t alg, size_t chunk)
{
    (void)hsmc_cbor_put_tag(e, tag);
    (void)hsmc_cbor_put_array(e, n);
    return hsmc_cose_put_prot(e, c, alg, chunk);
}

/* The kid (4) of a key hsmc writes for: its label, which the default
 * resolver (hsmc_cose_resolve_label) opens again. */
static void hsmc_cose_put_kid(hsmc_cbor_enc_t *e, const hsmc_key_t *key)
{
    (void)hsmc_cbor_put_int(e, HSMC_COSE_HDR_KID);
    (void)hsmc_cbor_put_bstr(e, (const uint8_t *)key->priv.label, key->priv.label_len);
}

/* ---- Enc_structure / Sig_structure ---------------------------------------- */

/*
 * Enc_structure ["Encrypt0"/"Encrypt", protected, external_aad] (RFC 9052
 * §5.3) into the scratch; write 0 only checks that it fits. *len its size.
 * The protected bucket is prot[0..prot_len) as received, or (own_alg != 0)
 * the one hsmc writes for content alg own_alg.
 */
static hsmc_err_t hsmc_cose_enc_structure(hsmc_cose_t *c, const char *fn, const char *context,
                                          const uint8_t *prot, size_t prot_len, int64_t own_alg,
                                          hsmc_view_t aad, int write, size_t *len)
{
    hsmc_cbor_enc_t e;
    hsmc_err_t err;

    hsmc_cbor_enc_init(&e, write ? c->scratch : NULL, sizeof c->scratch);
    (void)hsmc_cbor_put_array(&e, 3);
    (void)hsmc_cbor_put_tstr(&e, context, strlen(context));
    if (own_alg != 0)
        (void)hsmc_cose_put_prot(&e, c, own_alg, 0);
    else
        (void)hsmc_cbor_put_bstr(&e, prot, prot_len);
    (void)hsmc_cbor_put_bstr(&e, aad.ptr, aad.len);
    err = hsmc_cbor_enc_finish(&e, len);
    if (err == HSMC_OK && *len > sizeof c->scratch)
        err = HSMC_ERR_BUFFER;
    if (err == HSMC_ERR_BUFFER)
        return hsmc__fail(c->h, HSMC_ERR_LIMIT, CKR_OK,
                          "%s: the Enc_structure (protected header%s and %lu bytes of external "
                          "AAD) takes %lu bytes; HSMC_COSE_SCRATCH_LEN is %u",
                          fn, own_alg != 0 && c->content_type != NULL ? " with the content type" : "",
                          (unsigned long)aad.len, (unsigned long)*len,
                          (unsigned)HSMC_COSE_SCRATCH_LEN);
    if (err != HSMC_OK)
        return hsmc__fail(c->h, err, CKR_OK, "%s: cannot encode the Enc_structure", fn);
    return HSMC_OK;
}

/* Sig_structure ["Signature1", protected, external_aad, payload] in the
 * scratch (EdDSA signs it whole). */
static hsmc_err_t hsmc_cose_sig_structure(hsmc_cose_t *c, const char *fn, const uint8_t *prot,
                                          size_t prot_len, hsmc_view_t aad, hsmc_view_t payload,
                                          size_t *len)
{
    hsmc_cbor_enc_t e;
    hsmc_err_t err;

    hsmc_cbor_enc_init(&e, c->scratch, sizeof c->scratch);
    (void)hsmc_cbor_put_array(&e, 4);
    (void)hsmc_cbor_put_tstr(&e, "Signature1", 10);
    (void)hsmc_cbor_put_bstr(&e, prot, prot_len);
    (void)hsmc_cbor_put_bstr(&e, aad.ptr, aad.len);
    (void)hsmc_cbor_put_bstr(&e, payload.ptr, payload.len);
    err = hsmc_cbor_enc_finish(&e, len);
    if (err == HSMC_ERR_BUFFER)
        return hsmc__fail(c->h, HSMC_ERR_LIMIT, CKR_OK,
                          "%s: EdDSA signs the whole Sig_structure, %lu bytes here; "
                          "HSMC_COSE_SCRATCH_LEN is %u",
                          fn, (unsigned long)*len, (unsigned)HSMC_COSE_SCRATCH_LEN);
    if (err != HSMC_OK)
        return hsmc__fail(c->h, err, CKR_OK, "%s: cannot encode the Sig_structure", fn);
    return HSMC_OK;
}

/* Hash the Sig_structure as it would be encoded, piece by piece (no size
 * bound). dig receives hsmc_hash_len(hash) bytes. */
HSMC_NOINLINE static hsmc_err_t hsmc_cose_sig_digest(hsmc_cose_t *c, const char *fn,
                                                     hsmc_hash_t hash, const uint8_t *prot,
                                                     size_t prot_len, hsmc_view_t aad,
                                                     hsmc_view_t payload, uint8_t *dig)
{
    hsmc_cbor_enc_t e;
    size_t n = 0;
    hsmc_err_t err;

    err = hsmc_cose_sha_start(c, hash);
    if (err != HSMC_OK)
        return hsmc__fail(c->h, err, CKR_OK, "%s: cannot start %s in mbedTLS", fn,
                          hash == HSMC_HASH_SHA256 ? "SHA-256" : "SHA-384/512");
    hsmc_cbor_enc_init(&e, c->scratch, sizeof c->scratch);
    (void)hsmc_cbor_put_array(&e, 4);
    (void)hsmc_cbor_put_tstr(&e, "Signature1", 10);
    (void)hsmc_cbor_put_bstr(&e, prot, prot_len);
    (void)hsmc_cbor_put_bstr_header(&e, aad.len);
    err = hsmc_cbor_enc_finish(&e, &n);
    err = hsmc__cose_sha_tail(c, err, n, &aad, &payload, dig);
    if (err != HSMC_OK)
        return hsmc__fail(c->h, err == HSMC_ERR_BUFFER ? HSMC_ERR_LIMIT : err, CKR_OK,
                          "%s: hashing the Sig_structure failed", fn);
    return HSMC_OK;
}

/* ---- Reading and writing messages ------------------------------------------ */

/* Start reading the message msg[0..len) in c->dec: its COSE tag
 * (hsmc__cose_tag) and an array of n items; `name` is the structure, for
 * messages. */
static hsmc_err_t hsmc_cose_open_msg(hsmc_cose_t *c, const char *fn, const uint8_t *msg,
                                     size_t len, unsigned flags, uint64_t tag, size_t n,
                                     const char *name)
{
    hsmc_cbor_dec_t *d = &c->dec;
    size_t m;
    hsmc_err_t err;

    hsmc_cbor_dec_init(d, msg, len);
    err = hsmc__cose_tag(c, fn, d, tag, flags);
    if (err != HSMC_OK)
        return err;
    if (hsmc_cbor_get_array(d, &m) != HSMC_OK)
        return hsmc__cose_dec_fail(c, fn, d);
    if (m != n)
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK, "%s: a %s is an array of %lu, not %lu",
                          fn, name, (unsigned long)n, (unsigned long)m);
    return HSMC_OK;
}

/*
 * The outcome of the size pass of a message writer (err from the encoder,
 * `need` bytes; `name` the structure): *out_len = need; a message too long
 * to count is HSMC_ERR_ARG; with an output buffer, one that does not fit is
 * HSMC_ERR_BUFFER. Callers stop when out is NULL.
 */
static hsmc_err_t hsmc_cose_fits(hsmc_cose_t *c, const char *fn, const char *name,
                                 hsmc_err_t err, size_t need, const uint8_t *out, size_t cap,
                                 size_t *out_len)
{
    *out_len = need;
    if (err == HSMC_ERR_ARG)
        return hsmc__fail(c->h, err, CKR_OK, "%s: the message would be too long", fn);
    if (out == NULL)
        return HSMC_OK;
    if (err != HSMC_OK)
        return hsmc__fail(c->h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: the %s takes %lu bytes; the buffer has %lu", fn, name,
                          (unsigned long)need, (unsigned long)cap);
    return HSMC_OK;
}

/* Checks common to the decrypting calls, before anything is parsed; info
 * is reset. */
static hsmc_err_t hsmc_cose_dec_args(hsmc_cose_t *c, const char *fn, hsmc_view_t msg,
                                     hsmc_view_t aad, const size_t *out_len,
                                     hsmc_cose_info_t *info)
{
    if (out_len == NULL || msg.ptr == NULL || !HSMC_VIEW_OK(aad))
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK,
                          "%s: msg and out_len must be given, and aad bytes for a non-zero length",
                          fn);
    hsmc__cose_info_reset(info);
    return HSMC_OK;
}

/* End of a decrypting call with result err: out[0..cap) is wiped on
 * failure; the scratch, keys and software state go. @return err. */
static hsmc_err_t hsmc_cose_dec_end(hsmc_cose_t *c, hsmc_err_t err, uint8_t *out, size_t cap)
{
    if (err != HSMC_OK && out != NULL)
        hsmc__wipe(out, cap);
    hsmc__wipe(c->scratch, sizeof c->scratch);
    hsmc_cose_done(c);
    return err;
}

/* ---- COSE_Encrypt0 ------------------------------------------------------------- */

/* AES-GCM alg id for an AES key size (0: unknown size). */
static int hsmc_cose_gcm_alg(hsmc_key_alg_t alg)
{
    switch (alg) {
    case HSMC_ALG_AES128:
        return HSMC_COSE_A128GCM;
    case HSMC_ALG_AES192:
        return HSMC_COSE_A192GCM;
    case HSMC_ALG_AES256:
        return HSMC_COSE_A256GCM;
    default:
        return 0;
    }
}

/* Key bytes of an AES-GCM alg id (0: not AES-GCM). */
static size_t hsmc_cose_gcm_key_len(int64_t alg)
{
    switch (alg) {
    case HSMC_COSE_A128GCM:
        return 16;
    case HSMC_COSE_A192GCM:
        return 24;
    case HSMC_COSE_A256GCM:
        return 32;
    default:
        return 0;
    }
}

hsmc_err_t hsmc_cose_encrypt0(hsmc_cose_t *c, const hsmc_key_t *key, hsmc_view_t aad,
                              hsmc_view_t pt, uint8_t *out, size_t cap, size_t *out_len)
{
    static const char fn[] = "hsmc_cose_encrypt0";
    uint8_t *ivp, *ctp;
    hsmc_cbor_enc_t e;
    size_t need = 0, elen = 0, olen = 0;
    hsmc_err_t err;
    int alg;

    if (c == NULL)
        return HSMC_ERR_ARG;
    if (key == NULL || out_len == NULL || !HSMC_VIEW_OK(aad) || !HSMC_VIEW_OK(pt))
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK,
                          "%s: key and out_len must be given, and data for non-zero lengths", fn);
    if (key->priv.key_type != CKK_AES || key->priv.label_len == 0)
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK,
                          "%s: key '%s' is not a labelled AES key (COSE_Encrypt0 uses the "
                          "token's AES-GCM; the label becomes the kid)",
                          fn, key->priv.label);
    alg = hsmc_cose_gcm_alg(key->alg);
    if (alg == 0)
        return hsmc__fail(c->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "%s: the size of AES key '%s' is unknown, so no alg can be named", fn,
                          key->priv.label);
    err = hsmc_cose_enc_structure(c, fn, "Encrypt0", NULL, 0, alg, aad, 0, &elen);
    if (err != HSMC_OK)
        return err;
    if (pt.len > SIZE_MAX / 2)
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK, "%s: the plaintext is too long", fn);
    hsmc_cbor_enc_init(&e, out, cap);
    (void)hsmc_cose_put_start(&e, c, HSMC_COSE_TAG_ENCRYPT0, 3, alg, 0);
    (void)hsmc_cbor_put_map(&e, 2);
    hsmc_cose_put_kid(&e, key);
    (void)hsmc_cbor_put_int(&e, HSMC_COSE_HDR_IV);
    ivp = hsmc__cose_reserve_bstr(&e, HSMC_GCM_IV_LEN);
    ctp = hsmc__cose_reserve_bstr(&e, pt.len + HSMC_GCM_TAG_LEN);
    err = hsmc_cbor_enc_finish(&e, &need);
    err = hsmc_cose_fits(c, fn, "COSE_Encrypt0", err, need, out, cap, out_len);
    if (err != HSMC_OK || out == NULL)
        return err;
    err = hsmc_cose_enc_structure(c, fn, "Encrypt0", NULL, 0, alg, aad, 1, &elen);
    if (err == HSMC_OK)
        err = hsmc_gcm_encrypt(c->h, key, c->scratch, elen, pt.ptr, pt.len, ivp, ctp,
                               pt.len + HSMC_GCM_TAG_LEN, &olen);
    hsmc__wipe(c->scratch, sizeof c->scratch);
    if (err == HSMC_OK && olen != pt.len + HSMC_GCM_TAG_LEN)
        err = hsmc__fail(c->h, HSMC_ERR_INTERNAL, CKR_OK, "%s: AES-GCM gave %lu bytes", fn,
                         (unsigned long)olen);
    if (err != HSMC_OK)
        hsmc__wipe(out, need);
    return err;
}

/* Body checks shared by COSE_Encrypt0 and COSE_Encrypt: a protected
 * AES-GCM alg and a 12-byte IV. */
static hsmc_err_t hsmc_cose_check_body(hsmc_cose_t *c, const char *fn,
                                       const hsmc_cose_hdrs_t *hd)
{
    if (!(hd->prot_have & HSMC_COSE_H_ALG))
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: the protected header has no alg (1)", fn);
    if (hsmc_cose_gcm_key_len(hd->alg) == 0)
        return hsmc__fail(c->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "%s: content alg %ld is not A128GCM, A192GCM or A256GCM", fn,
                          (long)hd->alg);
    if (!(hd->have & HSMC_COSE_H_IV))
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK, "%s: no IV (5)", fn);
    if (hd->iv_len != HSMC_GCM_IV_LEN)
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: the IV is %lu bytes; AES-GCM here takes %u", fn,
                          (unsigned long)hd->iv_len, HSMC_GCM_IV_LEN);
    return HSMC_OK;
}

/* Parse a COSE_Encrypt0 into *hd and *ct (c->dec). */
HSMC_NOINLINE static hsmc_err_t hsmc_cose_parse0(hsmc_cose_t *c, const char *fn, hsmc_view_t msg,
                                                 unsigned flags, hsmc_cose_hdrs_t *hd,
                                                 hsmc_view_t *ct)
{
    hsmc_cbor_dec_t *d = &c->dec;
    hsmc_cbor_type_t t;
    hsmc_err_t err;

    err = hsmc_cose_open_msg(c, fn, msg.ptr, msg.len, flags, HSMC_COSE_TAG_ENCRYPT0, 3,
                             "COSE_Encrypt0");
    if (err != HSMC_OK)
        return err;
    err = hsmc__cose_headers(c, fn, d, HSMC_COSE_H_ALG | HSMC_COSE_H_KID | HSMC_COSE_H_IV |
                                           HSMC_COSE_H_CTYPE, hd);
    if (err != HSMC_OK)
        return err;
    if (hsmc_cbor_peek(d, &t) != HSMC_OK)
        return hsmc__cose_dec_fail(c, fn, d);
    if (t == HSMC_CBOR_NULL)
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: detached ciphertext (nil) is not supported", fn);
    if (hsmc_cbor_get_bstr(d, &ct->ptr, &ct->len) != HSMC_OK ||
        hsmc_cbor_dec_finish(d) != HSMC_OK)
        return hsmc__cose_dec_fail(c, fn, d);
    err = hsmc_cose_check_body(c, fn, hd);
    if (err != HSMC_OK)
        return err;
    if (ct->len < HSMC_GCM_TAG_LEN)
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: the ciphertext (%lu bytes) is shorter than the GCM tag", fn,
                          (unsigned long)ct->len);
    return HSMC_OK;
}

hsmc_err_t hsmc_cose_decrypt0(hsmc_cose_t *c, hsmc_view_t msg, hsmc_view_t aad, unsigned flags,
                              uint8_t *out, size_t cap, size_t *out_len, hsmc_cose_info_t *info)
{
    static const char fn[] = "hsmc_cose_decrypt0";
    hsmc_cose_hdrs_t hd;
    hsmc_view_t ct = {NULL, 0};
    size_t elen = 0;
    char txt[40];
    hsmc_err_t err;

    if (c == NULL)
        return HSMC_ERR_ARG;
    err = hsmc_cose_dec_args(c, fn, msg, aad, out_len, info);
    if (err != HSMC_OK)
        return err;
    err = hsmc_cose_parse0(c, fn, msg, flags, &hd, &ct);
    if (err == HSMC_OK)
        err = hsmc_cose_enc_structure(c, fn, "Encrypt0", hd.prot, hd.prot_len, 0, aad, 0, &elen);
    if (err != HSMC_OK)
        goto done;
    if (info != NULL) {
        info->alg = (int)hd.alg;
        info->kid.ptr = hd.kid;
        info->kid.len = hd.kid_len;
        hsmc_cose_info_ctype(info, &hd);
    }
    *out_len = ct.len; /* tokens want room for the tag */
    if (out == NULL)
        return HSMC_OK;
    if (cap < ct.len) {
        err = hsmc__fail(c->h, HSMC_ERR_BUFFER, CKR_OK,
                         "%s: decrypting needs a buffer of %lu bytes (plaintext and tag); it "
                         "has %lu",
                         fn, (unsigned long)ct.len, (unsigned long)cap);
        goto done;
    }
    err = hsmc_cose_resolve(c, hd.kid, hd.kid_len);
    if (err != HSMC_OK)
        goto done;
    if (c->key.priv.key_type != CKK_AES ||
        (c->key.alg != HSMC_ALG_NONE && hsmc_cose_gcm_alg(c->key.alg) != (int)hd.alg)) {
        err = hsmc__fail(c->h, HSMC_ERR_KEY_USAGE, CKR_OK,
                         "%s: key '%s' (for kid %s) is not an AES key of the size alg %ld needs",
                         fn, c->key.priv.label,
                         hsmc__cose_kid_text(hd.kid, hd.kid_len, txt, sizeof txt), (long)hd.alg);
        goto done;
    }
    err = hsmc_cose_enc_structure(c, fn, "Encrypt0", hd.prot, hd.prot_len, 0, aad, 1, &elen);
    if (err == HSMC_OK)
        err = hsmc_gcm_decrypt(c->h, &c->key, c->scratch, elen, hd.iv, ct.ptr, ct.len, out, cap,
                               out_len);
    if (err == HSMC_ERR_DECRYPT)
        err = hsmc__fail(c->h, err, CKR_OK,
                         "%s: the message does not authenticate with key '%s' (wrong key, wrong "
                         "AAD, or altered)",
                         fn, c->key.priv.label);
done:
    return hsmc_cose_dec_end(c, err, out, cap);
}

/* ---- COSE_Encrypt -------------------------------------------------------------- */

/* Wrapping mechanism of a recipient alg; 0 when hsmc has none for it. */
static hsmc_wrap_mech_t hsmc_cose_wrap_mech(int64_t alg, size_t *kek_len)
{
    *kek_len = 0;
    switch (alg) {
    case HSMC_COSE_A128KW:
        *kek_len = 16;
        return HSMC_WRAP_AES_KW;
    case HSMC_COSE_A192KW:
        *kek_len = 24;
        return HSMC_WRAP_AES_KW;
    case HSMC_COSE_A256KW:
        *kek_len = 32;
        return HSMC_WRAP_AES_KW;
    case HSMC_COSE_RSA_OAEP:
        return HSMC_WRAP_RSA_OAEP_SHA1;
    case HSMC_COSE_RSA_OAEP_256:
        return HSMC_WRAP_RSA_OAEP_SHA256;
    default:
        return (hsmc_wrap_mech_t)0;
    }
}

/* Bytes of an AES key algorithm (0 for others). */
static size_t hsmc_cose_aes_len(hsmc_key_alg_t alg)
{
    return alg == HSMC_ALG_AES128 ? 16u : alg == HSMC_ALG_AES192 ? 24u
         : alg == HSMC_ALG_AES256 ? 32u : 0u;
}

/* Does key fit recipient alg (AES KEK of the alg's size, or RSA)? */
static hsmc_err_t hsmc_cose_kek_fits(hsmc_cose_t *c, const char *fn, const hsmc_key_t *key,
                                     int64_t alg, hsmc_err_t err)
{
    size_t kek_len;
    hsmc_wrap_mech_t mech = hsmc_cose_wrap_mech(alg, &kek_len);

    if (mech == HSMC_WRAP_AES_KW) {
        if (key->priv.key_type == CKK_AES &&
            (key->alg == HSMC_ALG_NONE || hsmc_cose_aes_len(key->alg) == kek_len))
            return HSMC_OK;
        return hsmc__fail(c->h, err, CKR_OK,
                          "%s: recipient alg %ld needs an AES-%u key; '%s' is not one", fn,
                          (long)alg, (unsigned)(8u * kek_len), key->priv.label);
    }
    if (key->priv.key_type == CKK_RSA)
        return HSMC_OK;
    return hsmc__fail(c->h, err, CKR_OK, "%s: recipient alg %ld needs an RSA key; '%s' is not one",
                      fn, (long)alg, key->priv.label);
}

/* Bytes the wrapped cek_len-byte CEK of recipient r takes. */
static hsmc_err_t hsmc_cose_wrapped_len(hsmc_cose_t *c, const hsmc_cose_recipient_t *r,
                                        size_t cek_len, size_t *len)
{
    size_t kek_len;
    hsmc_wrap_mech_t mech = hsmc_cose_wrap_mech(r->alg, &kek_len);

    if (mech == HSMC_WRAP_AES_KW) {
        *len = cek_len + HSMC_COSE_KW_EXTRA;
        return HSMC_OK;
    }
    /* RSA: the modulus size (the token may be asked). */
    return hsmc_wrap_bytes(c->h, r->key, mech, c->cek, cek_len, NULL, 0, len);
}

/* Check the new recipients r[0..n) before anything is written. */
static hsmc_err_t hsmc_cose_check_rcpts(hsmc_cose_t *c, const char *fn,
                                        const hsmc_cose_recipient_t *r, size_t n)
{
    size_t i, kek_len;
    hsmc_err_t err;

    if (r == NULL || n == 0)
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK, "%s: at least one recipient is needed",
                          fn);
    for (i = 0; i < n; i++) {
        if (r[i].key == NULL || r[i].key->priv.label_len == 0)
            return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK,
                              "%s: recipient %lu has no labelled key (the label is the kid)", fn,
                              (unsigned long)i);
        if (hsmc_cose_wrap_mech(r[i].alg, &kek_len) == 0)
            return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK,
                              "%s: recipient %lu: alg %d is not A128KW, A192KW, A256KW, "
                              "RSA-OAEP or RSA-OAEP-256",
                              fn, (unsigned long)i, r[i].alg);
        err = hsmc_cose_kek_fits(c, fn, r[i].key, r[i].alg, HSMC_ERR_ARG);
        if (err != HSMC_OK)
            return err;
    }
    return HSMC_OK;
}

/*
 * The recipients array for r[0..n) into e, each wrapping the cek_len-byte
 * CEK in c->cek. write 0: sizes only; 1: wrapped keys written in place.
 */
HSMC_NOINLINE static hsmc_err_t hsmc_cose_emit_rcpts(hsmc_cose_t *c, const char *fn,
                                                     hsmc_cbor_enc_t *e,
                                                     const hsmc_cose_recipient_t *r, size_t n,
                                                     size_t cek_len, int write)
{
    size_t i, wlen = 0, got = 0, kek_len;
    uint8_t *p;
    hsmc_err_t err;

    (void)hsmc_cbor_put_array(e, n);
    for (i = 0; i < n; i++) {
        (void)hsmc_cbor_put_array(e, 3);
        (void)hsmc_cbor_put_bstr(e, NULL, 0); /* key wrap/transport: protected is empty */
        (void)hsmc_cbor_put_map(e, 2);
        (void)hsmc_cbor_put_int(e, HSMC_COSE_HDR_ALG);
        (void)hsmc_cbor_put_int(e, r[i].alg);
        hsmc_cose_put_kid(e, r[i].key);
        err = hsmc_cose_wrapped_len(c, &r[i], cek_len, &wlen);
        if (err != HSMC_OK)
            return err;
        p = hsmc__cose_reserve_bstr(e, wlen);
        if (write && p != NULL) {
            err = hsmc_wrap_bytes(c->h, r[i].key, hsmc_cose_wrap_mech(r[i].alg, &kek_len), c->cek,
                                  cek_len, p, wlen, &got);
            if (err != HSMC_OK)
                return err;
            if (got != wlen)
                return hsmc__fail(c->h, HSMC_ERR_INTERNAL, CKR_OK,
                                  "%s: recipient %lu wrapped to %lu bytes, not the %lu announced",
                                  fn, (unsigned long)i, (unsigned long)got, (unsigned long)wlen);
        }
    }
    return HSMC_OK;
}

/*
 * Emit the COSE_Encrypt into e. write 0: sizes only (e may have a NULL
 * buffer). write 1: c->cek and iv are set, the Enc_structure (elen bytes)
 * is in the scratch and GCM is keyed; ciphertext and wrapped keys are
 * written in place.
 */
HSMC_NOINLINE static hsmc_err_t hsmc_cose_emit(hsmc_cose_t *c, const char *fn, hsmc_cbor_enc_t *e,
                                               const hsmc_cose_recipient_t *r, size_t n,
                                               size_t chunk, hsmc_view_t pt, const uint8_t *iv,
                                               size_t elen, int write)
{
    uint8_t *p;
    hsmc_err_t err;

    (void)hsmc_cose_put_start(e, c, HSMC_COSE_TAG_ENCRYPT, 4, HSMC_COSE_A256GCM, chunk);
    (void)hsmc_cbor_put_map(e, 1);
    (void)hsmc_cbor_put_int(e, HSMC_COSE_HDR_IV);
    (void)hsmc_cbor_put_bstr(e, iv, HSMC_GCM_IV_LEN);
    if (chunk != 0) {
        (void)hsmc_cbor_put_null(e);
    } else {
        p = hsmc__cose_reserve_bstr(e, pt.len + HSMC_GCM_TAG_LEN);
        if (write && p != NULL) {
            err = hsmc__cose_gcm_seal(c, iv, c->scratch, elen, pt.ptr, pt.len, p);
            if (err != HSMC_OK)
                return hsmc__fail(c->h, err, CKR_OK, "%s: software AES-GCM failed", fn);
        }
    }
    return hsmc_cose_emit_rcpts(c, fn, e, r, n, HSMC_COSE_CEK_LEN, write);
}

hsmc_err_t hsmc__cose_write_encrypt(hsmc_cose_t *c, const char *fn, const hsmc_cose_recipient_t *r,
                                    size_t n, size_t chunk, hsmc_view_t aad, hsmc_view_t pt,
                                    uint8_t *out, size_t cap, size_t *out_len,
                                    uint8_t iv_out[HSMC_GCM_IV_LEN])
{
    uint8_t iv[HSMC_GCM_IV_LEN];
    size_t need = 0, elen = 0;
    hsmc_cbor_enc_t e;
    hsmc_err_t err;

    if (out_len == NULL || !HSMC_VIEW_OK(aad) || !HSMC_VIEW_OK(pt))
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK,
                          "%s: out_len must be given, and data for non-zero lengths", fn);
    err = hsmc_cose_check_rcpts(c, fn, r, n);
    if (err != HSMC_OK)
        return err;
    if (pt.len > SIZE_MAX / 2)
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK, "%s: the plaintext is too long", fn);
    if (chunk == 0) {
        err = hsmc_cose_enc_structure(c, fn, "Encrypt", NULL, 0, HSMC_COSE_A256GCM, aad, 0,
                                      &elen);
        if (err != HSMC_OK)
            return err;
    }
    memset(iv, 0, sizeof iv);
    hsmc_cbor_enc_init(&e, NULL, 0);
    err = hsmc_cose_emit(c, fn, &e, r, n, chunk, pt, iv, 0, 0);
    if (err == HSMC_OK)
        err = hsmc_cbor_enc_finish(&e, &need);
    if (err != HSMC_OK)
        return err == HSMC_ERR_ARG
                   ? hsmc__fail(c->h, err, CKR_OK, "%s: the message would be too long", fn)
                   : err;
    *out_len = need;
    if (out == NULL)
        return HSMC_OK;
    if (cap < need)
        return hsmc__fail(c->h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: the COSE_Encrypt takes %lu bytes; the buffer has %lu", fn,
                          (unsigned long)need, (unsigned long)cap);
    err = hsmc_random(c->h, c->cek, HSMC_COSE_CEK_LEN);
    if (err == HSMC_OK)
        err = hsmc_random(c->h, iv, sizeof iv);
    if (err == HSMC_OK && chunk == 0)
        err = hsmc_cose_enc_structure(c, fn, "Encrypt", NULL, 0, HSMC_COSE_A256GCM, aad, 1,
                                      &elen);
    if (err == HSMC_OK && chunk == 0) {
        err = hsmc__cose_gcm_key(c, c->cek, HSMC_COSE_CEK_LEN);
        if (err != HSMC_OK)
            err = hsmc__fail(c->h, err, CKR_OK, "%s: mbedTLS cannot set up AES-256-GCM", fn);
    }
    if (err == HSMC_OK) {
        hsmc_cbor_enc_init(&e, out, cap);
        err = hsmc_cose_emit(c, fn, &e, r, n, chunk, pt, iv, elen, 1);
        if (err == HSMC_OK && (hsmc_cbor_enc_finish(&e, out_len) != HSMC_OK || *out_len != need))
            err = hsmc__fail(c->h, HSMC_ERR_INTERNAL, CKR_OK,
                             "%s: the message changed size between passes", fn);
    }
    hsmc__cose_crypto_release(c);
    hsmc__wipe(c->scratch, sizeof c->scratch);
    if (err != HSMC_OK) {
        hsmc__wipe(out, cap);
        hsmc__wipe(c->cek, sizeof c->cek);
        *out_len = need;
        return err;
    }
    if (chunk == 0)
        hsmc__wipe(c->cek, sizeof c->cek); /* a stream keeps it for its GCM key */
    if (iv_out != NULL)
        memcpy(iv_out, iv, sizeof iv);
    return HSMC_OK;
}

hsmc_err_t hsmc_cose_encrypt(hsmc_cose_t *c, const hsmc_cose_recipient_t *r, size_t n,
                             hsmc_view_t aad, hsmc_view_t pt, uint8_t *out, size_t cap,
                             size_t *out_len)
{
    if (c == NULL)
        return HSMC_ERR_ARG;
    return hsmc__cose_write_encrypt(c, "hsmc_cose_encrypt", r, n, 0, aad, pt, out, cap, out_len,
                                    NULL);
}

/*
 * One recipient at d: [protected, unprotected, wrapped key]. *usable is 0
 * for one hsmc cannot use (unknown alg, nested recipients, nil key), whose
 * items are still checked.
 */
HSMC_NOINLINE static hsmc_err_t hsmc_cose_recipient(hsmc_cose_t *c, const char *fn,
                                                    hsmc_cbor_dec_t *d, size_t i,
                                                    hsmc_cose_hdrs_t *rh, hsmc_view_t *w,
                                                    int *usable)
{
    hsmc_cbor_type_t t;
    size_t m, kek_len;
    hsmc_err_t err;

    *usable = 0;
    if (hsmc_cbor_get_array(d, &m) != HSMC_OK)
        return hsmc__cose_dec_fail(c, fn, d);
    if (m != 3 && m != 4)
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: recipient %lu is an array of %lu, not 3 or 4", fn,
                          (unsigned long)i, (unsigned long)m);
    err = hsmc__cose_headers(c, fn, d, HSMC_COSE_H_ALG | HSMC_COSE_H_KID, rh);
    if (err != HSMC_OK)
        return err;
    if (hsmc_cbor_peek(d, &t) != HSMC_OK)
        return hsmc__cose_dec_fail(c, fn, d);
    w->ptr = NULL;
    w->len = 0;
    if (t == HSMC_CBOR_NULL) {
        if (hsmc_cbor_get_null(d) != HSMC_OK)
            return hsmc__cose_dec_fail(c, fn, d);
    } else if (t != HSMC_CBOR_BSTR || hsmc_cbor_get_bstr(d, &w->ptr, &w->len) != HSMC_OK) {
        return t != HSMC_CBOR_BSTR
                   ? hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                                "%s: recipient %lu: the key is neither bytes nor nil", fn,
                                (unsigned long)i)
                   : hsmc__cose_dec_fail(c, fn, d);
    }
    if (m == 4 && hsmc_cbor_skip(d) != HSMC_OK) /* nested recipients: not for hsmc */
        return hsmc__cose_dec_fail(c, fn, d);
    if (!(rh->have & HSMC_COSE_H_ALG))
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK, "%s: recipient %lu has no alg (1)", fn,
                          (unsigned long)i);
    if (m == 4 || w->ptr == NULL || hsmc_cose_wrap_mech(rh->alg, &kek_len) == 0)
        return HSMC_OK;
    if (kek_len != 0 && rh->prot_n != 0) /* RFC 9053 §6.2.1 */
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: recipient %lu: key wrap needs an empty protected bucket", fn,
                          (unsigned long)i);
    if (w->len == 0)
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: recipient %lu: the wrapped key is empty", fn, (unsigned long)i);
    *usable = 1;
    return HSMC_OK;
}

/* Unwrap the CEK of recipient rh/w with c->key into c->cek (cek_len bytes). */
HSMC_NOINLINE static hsmc_err_t hsmc_cose_unwrap(hsmc_cose_t *c, const char *fn, size_t i,
                                                 const hsmc_cose_hdrs_t *rh, hsmc_view_t w,
                                                 size_t cek_len)
{
    size_t kek_len, got = 0;
    hsmc_wrap_mech_t mech = hsmc_cose_wrap_mech(rh->alg, &kek_len);
    char txt[40];
    hsmc_err_t err;

    err = hsmc_cose_kek_fits(c, fn, &c->key, rh->alg, HSMC_ERR_KEY_USAGE);
    if (err != HSMC_OK)
        return err;
    /* The scratch takes an RSA modulus, as C_Decrypt needs. */
    err = hsmc_unwrap_bytes(c->h, &c->key, mech, w.ptr, w.len, c->scratch, sizeof c->scratch,
                            &got);
    if (err == HSMC_OK && got != cek_len)
        err = hsmc__fail(c->h, HSMC_ERR_DECRYPT, CKR_OK,
                         "%s: recipient %lu unwraps to a %lu-byte key; the content alg needs %lu",
                         fn, (unsigned long)i, (unsigned long)got, (unsigned long)cek_len);
    else if (err == HSMC_ERR_DECRYPT)
        err = hsmc__fail(c->h, err, CKR_OK,
                         "%s: the key of recipient %lu (kid %s) does not unwrap with '%s' "
                         "(wrong key, or altered)",
                         fn, (unsigned long)i,
                         hsmc__cose_kid_text(rh->kid, rh->kid_len, txt, sizeof txt),
                         c->key.priv.label);
    if (err == HSMC_OK)
        memcpy(c->cek, c->scratch, cek_len);
    hsmc__wipe(c->scratch, sizeof c->scratch);
    return err;
}

/*
 * The recipients array rp[0..rl). use 0: check every recipient. use 1:
 * take the first usable one whose kid resolves and unwrap its CEK.
 */
HSMC_NOINLINE static hsmc_err_t hsmc_cose_recipients(hsmc_cose_t *c, const char *fn,
                                                     const uint8_t *rp, size_t rl, int use,
                                                     size_t cek_len, hsmc_cose_info_t *info)
{
    hsmc_cbor_dec_t *d = &c->dec;
    hsmc_cose_hdrs_t rh;
    hsmc_view_t w, first = {NULL, 0};
    size_t n, i, missing = 0;
    char txt[40];
    int usable;
    hsmc_err_t err;

    hsmc_cbor_dec_init(d, rp, rl);
    if (hsmc_cbor_get_array(d, &n) != HSMC_OK)
        return hsmc__cose_dec_fail(c, fn, d);
    if (n == 0)
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK, "%s: the message has no recipient", fn);
    for (i = 0; i < n; i++) {
        err = hsmc_cose_recipient(c, fn, d, i, &rh, &w, &usable);
        if (err != HSMC_OK)
            return err;
        if (!use || !usable)
            continue;
        err = hsmc_cose_resolve(c, rh.kid, rh.kid_len);
        if (err == HSMC_ERR_OBJECT_NOT_FOUND) {
            if (missing++ == 0) {
                first.ptr = rh.kid;
                first.len = rh.kid_len;
            }
            continue;
        }
        if (err == HSMC_OK)
            err = hsmc_cose_unwrap(c, fn, i, &rh, w, cek_len);
        if (err == HSMC_OK && info != NULL) {
            info->key_alg = (int)rh.alg;
            info->recipient = i;
            info->kid.ptr = rh.kid;
            info->kid.len = rh.kid_len;
        }
        return err;
    }
    if (hsmc_cbor_dec_finish(d) != HSMC_OK)
        return hsmc__cose_dec_fail(c, fn, d);
    if (!use)
        return HSMC_OK;
    if (missing > 0)
        return hsmc__fail(c->h, HSMC_ERR_OBJECT_NOT_FOUND, CKR_OK,
                          "%s: no key on the token for any recipient: kid %s%s", fn,
                          hsmc__cose_kid_text(first.ptr, first.len, txt, sizeof txt),
                          missing > 1 ? " and others" : "");
    return hsmc__fail(c->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                      "%s: no recipient uses A128KW, A192KW, A256KW, RSA-OAEP or RSA-OAEP-256",
                      fn);
}

hsmc_err_t hsmc__cose_open_encrypt(hsmc_cose_t *c, const char *fn, const uint8_t *msg, size_t len,
                                   unsigned flags, int stream, int size_only,
                                   hsmc_cose_hdrs_t *hd, hsmc_view_t *ct, size_t *cek_len,
                                   hsmc_cose_info_t *info)
{
    hsmc_cbor_dec_t *d = &c->dec;
    hsmc_cbor_type_t t;
    const uint8_t *rp = NULL;
    size_t rl = 0;
    hsmc_err_t err;

    ct->ptr = NULL;
    ct->len = 0;
    err = hsmc_cose_open_msg(c, fn, msg, len, flags, HSMC_COSE_TAG_ENCRYPT, 4, "COSE_Encrypt");
    if (err != HSMC_OK)
        return err;
    /* The chunk size is read either way, so a stream header handed to
     * hsmc_cose_decrypt is named as such instead of failing its crit. */
    err = hsmc__cose_headers(c, fn, d,
                             HSMC_COSE_H_ALG | HSMC_COSE_H_KID | HSMC_COSE_H_IV |
                                 HSMC_COSE_H_CTYPE | HSMC_COSE_H_CHUNK,
                             hd);
    if (err != HSMC_OK)
        return err;
    if (stream == 2)
        stream = (hd->have & HSMC_COSE_H_CHUNK) != 0;
    if (!stream && (hd->have & HSMC_COSE_H_CHUNK))
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: this is a stream header (it has a chunk size): open it with "
                          "hsmc_cose_stream_open_init",
                          fn);
    if (hsmc_cbor_peek(d, &t) != HSMC_OK)
        return hsmc__cose_dec_fail(c, fn, d);
    if (stream && t != HSMC_CBOR_NULL)
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: this is a COSE_Encrypt with its ciphertext, not a stream "
                          "header: open it with hsmc_cose_decrypt",
                          fn);
    if (!stream && t == HSMC_CBOR_NULL)
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: the ciphertext is detached (nil): a stream header? open it with "
                          "hsmc_cose_stream_open_init",
                          fn);
    err = stream ? hsmc_cbor_get_null(d) : hsmc_cbor_get_bstr(d, &ct->ptr, &ct->len);
    if (err == HSMC_OK)
        err = hsmc_cbor_peek(d, &t);
    if (err != HSMC_OK)
        return hsmc__cose_dec_fail(c, fn, d);
    if (t != HSMC_CBOR_ARRAY)
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK, "%s: the recipients are not an array",
                          fn);
    if (hsmc_cbor_get_raw(d, &rp, &rl) != HSMC_OK || hsmc_cbor_dec_finish(d) != HSMC_OK)
        return hsmc__cose_dec_fail(c, fn, d);
    hd->rcp = rp;
    hd->rcp_len = rl;
    err = hsmc_cose_check_body(c, fn, hd);
    if (err != HSMC_OK)
        return err;
    *cek_len = hsmc_cose_gcm_key_len(hd->alg);
    if (stream) {
        if (!(hd->prot_have & HSMC_COSE_H_CHUNK))
            return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: not a stream header: no chunk size (-65537) in the "
                              "protected bucket",
                              fn);
        if (hd->chunk == 0 || hd->chunk > HSMC_COSE_CHUNK_MAX)
            return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: chunk size %lu is outside 1..%lu", fn,
                              (unsigned long)hd->chunk, (unsigned long)HSMC_COSE_CHUNK_MAX);
    } else if (ct->len < HSMC_GCM_TAG_LEN) {
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: the ciphertext (%lu bytes) is shorter than the GCM tag", fn,
                          (unsigned long)ct->len);
    }
    if (info != NULL) {
        info->alg = (int)hd->alg;
        info->chunk = stream ? (size_t)hd->chunk : 0u;
        hsmc_cose_info_ctype(info, hd);
    }
    err = hsmc_cose_recipients(c, fn, rp, rl, 0, *cek_len, NULL);
    if (err != HSMC_OK || size_only)
        return err;
    return hsmc_cose_recipients(c, fn, rp, rl, 1, *cek_len, info);
}

hsmc_err_t hsmc_cose_decrypt(hsmc_cose_t *c, hsmc_view_t msg, hsmc_view_t aad, unsigned flags,
                             uint8_t *out, size_t cap, size_t *out_len, hsmc_cose_info_t *info)
{
    static const char fn[] = "hsmc_cose_decrypt";
    hsmc_cose_hdrs_t hd;
    hsmc_view_t ct;
    size_t cek_len = 0, elen = 0;
    hsmc_err_t err;

    if (c == NULL)
        return HSMC_ERR_ARG;
    err = hsmc_cose_dec_args(c, fn, msg, aad, out_len, info);
    if (err != HSMC_OK)
        return err;
    err = hsmc__cose_open_encrypt(c, fn, msg.ptr, msg.len, flags, 0, 1, &hd, &ct, &cek_len, NULL);
    if (err == HSMC_OK)
        err = hsmc_cose_enc_structure(c, fn, "Encrypt", hd.prot, hd.prot_len, 0, aad, 0, &elen);
    if (err != HSMC_OK)
        goto done;
    *out_len = ct.len - HSMC_GCM_TAG_LEN;
    if (out == NULL)
        return HSMC_OK;
    if (cap < ct.len - HSMC_GCM_TAG_LEN) {
        err = hsmc__fail(c->h, HSMC_ERR_BUFFER, CKR_OK,
                         "%s: the plaintext is %lu bytes; the buffer has %lu", fn,
                         (unsigned long)(ct.len - HSMC_GCM_TAG_LEN), (unsigned long)cap);
        goto done;
    }
    err = hsmc__cose_open_encrypt(c, fn, msg.ptr, msg.len, flags, 0, 0, &hd, &ct, &cek_len, info);
    if (err == HSMC_OK)
        err = hsmc_cose_enc_structure(c, fn, "Encrypt", hd.prot, hd.prot_len, 0, aad, 1, &elen);
    if (err == HSMC_OK) {
        err = hsmc__cose_gcm_key(c, c->cek, cek_len);
        if (err != HSMC_OK)
            err = hsmc__fail(c->h, err, CKR_OK, "%s: mbedTLS cannot set up AES-GCM", fn);
    }
    if (err == HSMC_OK) {
        err = hsmc__cose_gcm_open(c, hd.iv, c->scratch, elen, ct.ptr, ct.len, out);
        if (err != HSMC_OK)
            err = hsmc__fail(c->h, err, CKR_OK,
                             "%s: the content does not authenticate (wrong AAD, or altered)", fn);
    }
done:
    return hsmc_cose_dec_end(c, err, out, cap);
}

/* ---- Re-wrapping for a new KEK --------------------------------------------------- */

hsmc_err_t hsmc_cose_rewrap(hsmc_cose_t *c, hsmc_view_t msg, unsigned flags,
                            const hsmc_cose_recipient_t *r, size_t n, uint8_t *out, size_t cap,
                            size_t *out_len, hsmc_cose_info_t *info)
{
    static const char fn[] = "hsmc_cose_rewrap";
    hsmc_cose_hdrs_t hd;
    hsmc_view_t ct;
    hsmc_cbor_enc_t e;
    size_t cek_len = 0, need = 0, pre = 0;
    hsmc_err_t err;

    if (c == NULL)
        return HSMC_ERR_ARG;
    if (msg.ptr == NULL || out_len == NULL)
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK, "%s: msg and out_len must be given", fn);
    hsmc__cose_info_reset(info);
    err = hsmc_cose_check_rcpts(c, fn, r, n);
    if (err == HSMC_OK)
        err = hsmc__cose_open_encrypt(c, fn, msg.ptr, msg.len, flags, 2, 1, &hd, &ct, &cek_len,
                                      NULL);
    if (err != HSMC_OK)
        goto done;
    /* Everything before the recipients is kept byte for byte. */
    pre = (size_t)(hd.rcp - msg.ptr);
    hsmc_cbor_enc_init(&e, NULL, 0);
    (void)hsmc_cbor_put_raw(&e, msg.ptr, pre);
    err = hsmc_cose_emit_rcpts(c, fn, &e, r, n, cek_len, 0);
    if (err == HSMC_OK)
        err = hsmc_cbor_enc_finish(&e, &need);
    if (err != HSMC_OK)
        goto done;
    *out_len = need;
    if (out == NULL)
        return HSMC_OK;
    if (cap < need) {
        err = hsmc__fail(c->h, HSMC_ERR_BUFFER, CKR_OK,
                         "%s: the re-wrapped message takes %lu bytes; the buffer has %lu", fn,
                         (unsigned long)need, (unsigned long)cap);
        goto done;
    }
    err = hsmc__cose_open_encrypt(c, fn, msg.ptr, msg.len, flags, 2, 0, &hd, &ct, &cek_len, info);
    if (err == HSMC_OK) {
        hsmc_cbor_enc_init(&e, out, cap);
        (void)hsmc_cbor_put_raw(&e, msg.ptr, pre);
        err = hsmc_cose_emit_rcpts(c, fn, &e, r, n, cek_len, 1);
        if (err == HSMC_OK && (hsmc_cbor_enc_finish(&e, out_len) != HSMC_OK || *out_len != need))
            err = hsmc__fail(c->h, HSMC_ERR_INTERNAL, CKR_OK,
                             "%s: the message changed size between passes", fn);
    }
done:
    if (err != HSMC_OK) {
        *out_len = need;
        hsmc__cose_info_reset(info);
    }
    return hsmc_cose_dec_end(c, err, out, cap); /* CEK and KEK handle wiped either way */
}

hsmc_err_t hsmc_cose_recipient_at(hsmc_cose_t *c, hsmc_view_t msg, unsigned flags, size_t i,
                                  hsmc_view_t *kid, int *alg, size_t *count)
{
    static const char fn[] = "hsmc_cose_recipient_at";
    hsmc_cose_hdrs_t hd;
    hsmc_view_t ct, w;
    const uint8_t *rp;
    size_t cek_len = 0, n = 0, j, rl;
    int usable;
    hsmc_err_t err;

    if (c == NULL)
        return HSMC_ERR_ARG;
    if (msg.ptr == NULL || kid == NULL || alg == NULL)
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK, "%s: msg, kid and alg must be given", fn);
    kid->ptr = NULL;
    kid->len = 0;
    *alg = 0;
    if (count != NULL)
        *count = 0;
    /* Parses and checks the whole message and every recipient. */
    err = hsmc__cose_open_encrypt(c, fn, msg.ptr, msg.len, flags, 2, 1, &hd, &ct, &cek_len, NULL);
    if (err != HSMC_OK)
        return err;
    rp = hd.rcp;
    rl = hd.rcp_len;
    hsmc_cbor_dec_init(&c->dec, rp, rl);
    if (hsmc_cbor_get_array(&c->dec, &n) != HSMC_OK)
        return hsmc__cose_dec_fail(c, fn, &c->dec);
    if (count != NULL)
        *count = n;
    if (i >= n)
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK, "%s: recipient %lu of %lu", fn,
                          (unsigned long)i, (unsigned long)n);
    for (j = 0; j <= i; j++) {
        err = hsmc_cose_recipient(c, fn, &c->dec, j, &hd, &w, &usable);
        if (err != HSMC_OK)
            return err;
    }
    kid->ptr = hd.kid;
    kid->len = hd.kid != NULL ? hd.kid_len : 0u;
    *alg = (int)hd.alg;
    return HSMC_OK;
}

/* ---- COSE_Sign1 ---------------------------------------------------------------- */

/* Default signature alg for a key. */
static int hsmc_cose_default_sig(hsmc_key_alg_t alg)
{
    switch (alg) {
    case HSMC_ALG_P256:
        return HSMC_COSE_ES256;
    case HSMC_ALG_P384:
        return HSMC_COSE_ES384;
    case HSMC_ALG_P521:
        return HSMC_COSE_ES512;
    case HSMC_ALG_RSA2048:
    case HSMC_ALG_RSA3072:
    case HSMC_ALG_RSA4096:
        return HSMC_COSE_PS256;
    case HSMC_ALG_ED25519:
        return HSMC_COSE_EDDSA;
    default:
        return 0;
    }
}

/* Signature length of key for alg (size-only pass of the token functions). */
static hsmc_err_t hsmc_cose_sig_len(hsmc_cose_t *c, const hsmc_key_t *key, hsmc_sig_alg_t sa,
                                    size_t *len)
{
    static const uint8_t zero[64] = {0};

    if (sa.scheme == HSMC_SIG_EDDSA)
        return hsmc_sign(c->h, key, sa, zero, 1, NULL, 0, len);
    return hsmc_sign_digest(c->h, key, sa, zero, hsmc_hash_len(sa.hash), NULL, 0, len);
}

/* Sign the Sig_structure into sig[0..cap); *len the signature length. */
HSMC_NOINLINE static hsmc_err_t hsmc_cose_sign_into(hsmc_cose_t *c, const char *fn,
                                                    const hsmc_key_t *key, hsmc_sig_alg_t sa,
                                                    const uint8_t *prot, size_t prot_len,
                                                    hsmc_view_t aad, hsmc_view_t payload,
                                                    uint8_t *sig, size_t cap, size_t *len)
{
    uint8_t dig[64];
    size_t n = 0;
    hsmc_err_t err;

    if (sa.scheme == HSMC_SIG_EDDSA) {
        err = hsmc_cose_sig_structure(c, fn, prot, prot_len, aad, payload, &n);
        if (err == HSMC_OK)
            err = hsmc_sign(c->h, key, sa, c->scratch, n, sig, cap, len);
        hsmc__wipe(c->scratch, sizeof c->scratch);
        return err;
    }
    err = hsmc_cose_sig_digest(c, fn, sa.hash, prot, prot_len, aad, payload, dig);
    if (err == HSMC_OK)
        err = hsmc_sign_digest(c->h, key, sa, dig, hsmc_hash_len(sa.hash), sig, cap, len);
    return err;
}

hsmc_err_t hsmc_cose_sign1(hsmc_cose_t *c, const hsmc_key_t *key, int alg, hsmc_view_t aad,
                           hsmc_view_t payload, unsigned flags, uint8_t *out, size_t cap,
                           size_t *out_len)
{
    static const char fn[] = "hsmc_cose_sign1";
    hsmc_sig_alg_t sa;
    hsmc_cbor_enc_t e;
    size_t prot_len = 0, slen = 0, got = 0, need = 0;
    const uint8_t *prot = NULL;
    uint8_t *sig;
    hsmc_err_t err;

    if (c == NULL)
        return HSMC_ERR_ARG;
    if (key == NULL || out_len == NULL || !HSMC_VIEW_OK(aad) || !HSMC_VIEW_OK(payload))
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK,
                          "%s: key and out_len must be given, and data for non-zero lengths", fn);
    if (key->priv.label_len == 0)
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK,
                          "%s: the key has no label (the label is the kid)", fn);
    if (alg == 0)
        alg = hsmc_cose_default_sig(key->alg);
    if (alg == 0 || hsmc_sig_alg_from_cose(alg, &sa) != HSMC_OK)
        return hsmc__fail(c->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "%s: no COSE signature algorithm for alg %d and key '%s'", fn, alg,
                          key->priv.label);
    err = hsmc_cose_sig_len(c, key, sa, &slen);
    if (err != HSMC_OK)
        return err;
    hsmc_cbor_enc_init(&e, out, cap);
    prot_len = hsmc_cose_put_start(&e, c, HSMC_COSE_TAG_SIGN1, 4, alg, 0);
    if (out != NULL && e.err == HSMC_OK)
        prot = out + e.len - prot_len; /* signed from where it was written */
    (void)hsmc_cbor_put_map(&e, 1);
    hsmc_cose_put_kid(&e, key);
    if (flags & HSMC_COSE_DETACHED)
        (void)hsmc_cbor_put_null(&e);
    else
        (void)hsmc_cbor_put_bstr(&e, payload.ptr, payload.len);
    sig = hsmc__cose_reserve_bstr(&e, slen);
    err = hsmc_cbor_enc_finish(&e, &need);
    if (err == HSMC_OK && prot == NULL) /* with a buffer: nothing to sign from */
        err = HSMC_ERR_BUFFER;
    err = hsmc_cose_fits(c, fn, "COSE_Sign1", err, need, out, cap, out_len);
    if (err != HSMC_OK || out == NULL)
        return err;
    err = hsmc_cose_sign_into(c, fn, key, sa, prot, prot_len, aad, payload, sig, slen, &got);
    if (err == HSMC_OK && got != slen)
        err = hsmc__fail(c->h, HSMC_ERR_INTERNAL, CKR_OK,
                         "%s: the signature is %lu bytes, not the %lu announced", fn,
                         (unsigned long)got, (unsigned long)slen);
    if (err != HSMC_OK)
        hsmc__wipe(out, need);
    return err;
}

/* Parse a COSE_Sign1 (c->dec): headers, payload (or the detached one),
 * signature, and a known signature alg from the protected bucket. */
HSMC_NOINLINE static hsmc_err_t hsmc_cose_parse1(hsmc_cose_t *c, const char *fn, hsmc_view_t msg,
                                                 unsigned flags, hsmc_view_t detached,
                                                 hsmc_cose_hdrs_t *hd, hsmc_view_t *payload,
                                                 hsmc_view_t *sig, hsmc_sig_alg_t *sa)
{
    hsmc_cbor_dec_t *d = &c->dec;
    hsmc_cbor_type_t t;
    int nil = 0;
    hsmc_err_t err;

    err = hsmc_cose_open_msg(c, fn, msg.ptr, msg.len, flags, HSMC_COSE_TAG_SIGN1, 4,
                             "COSE_Sign1");
    if (err != HSMC_OK)
        return err;
    err = hsmc__cose_headers(c, fn, d, HSMC_COSE_H_ALG | HSMC_COSE_H_KID | HSMC_COSE_H_CTYPE, hd);
    if (err != HSMC_OK)
        return err;
    if (hsmc_cbor_peek(d, &t) != HSMC_OK)
        return hsmc__cose_dec_fail(c, fn, d);
    if (t == HSMC_CBOR_NULL) {
        nil = 1;
        err = hsmc_cbor_get_null(d);
    } else if (t == HSMC_CBOR_BSTR) {
        err = hsmc_cbor_get_bstr(d, &payload->ptr, &payload->len);
    } else {
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: the payload is neither bytes nor nil", fn);
    }
    if (err != HSMC_OK || hsmc_cbor_get_bstr(d, &sig->ptr, &sig->len) != HSMC_OK ||
        hsmc_cbor_dec_finish(d) != HSMC_OK)
        return hsmc__cose_dec_fail(c, fn, d);
    if (!(hd->prot_have & HSMC_COSE_H_ALG))
        return hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: the protected header has no alg (1)", fn);
    if (hd->alg < -65536 || hd->alg > 65535 || hsmc_sig_alg_from_cose((int)hd->alg, sa) != HSMC_OK)
        return hsmc__fail(c->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "%s: signature alg %ld is not supported", fn, (long)hd->alg);
    if (nil && detached.ptr == NULL)
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK,
                          "%s: the payload is detached; pass it to verify", fn);
    if (!nil && detached.ptr != NULL)
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK,
                          "%s: the message carries its payload; do not pass a detached one", fn);
    if (nil)
        *payload = detached;
    return HSMC_OK;
}

/* mbedTLS hash id of an hsmc hash. */
static mbedtls_md_type_t hsmc_cose_md(hsmc_hash_t hash)
{
    switch (hash) {
    case HSMC_HASH_SHA256:
        return MBEDTLS_MD_SHA256;
    case HSMC_HASH_SHA384:
        return MBEDTLS_MD_SHA384;
    case HSMC_HASH_SHA512:
        return MBEDTLS_MD_SHA512;
    default:
        return MBEDTLS_MD_NONE;
    }
}

/* Check sig over dig with the parsed public key pk. */
HSMC_NOINLINE static hsmc_err_t hsmc_cose_pk_verify(hsmc_cose_t *c, const char *fn,
                                                    mbedtls_pk_context *pk, hsmc_sig_alg_t sa,
                                                    const uint8_t *dig, hsmc_view_t sig)
{
    mbedtls_pk_rsassa_pss_options pss;
    mbedtls_md_type_t md = hsmc_cose_md(sa.hash);
    size_t dlen = hsmc_hash_len(sa.hash), n, der_len = 0;
    int rc;

    n = (mbedtls_pk_get_bitlen(pk) + 7u) / 8u;
    if (sa.scheme == HSMC_SIG_ECDSA) {
        if (!mbedtls_pk_can_do(pk, MBEDTLS_PK_ECDSA))
            return hsmc__fail(c->h, HSMC_ERR_SIGNATURE, CKR_OK,
                              "%s: the public key is not an EC key, as ECDSA needs", fn);
        if (sig.len != 2u * n ||
            hsmc_ecdsa_raw_to_der(sig.ptr, sig.len, c->scratch, sizeof c->scratch, &der_len) !=
                HSMC_OK)
            return hsmc__fail(c->h, HSMC_ERR_SIGNATURE, CKR_OK,
                              "%s: an ECDSA signature of this key is %lu bytes (r||s), not %lu",
                              fn, (unsigned long)(2u * n), (unsigned long)sig.len);
        rc = mbedtls_pk_verify(pk, md, dig, dlen, c->scratch, der_len);
    } else {
        if (!mbedtls_pk_can_do(pk, MBEDTLS_PK_RSA))
            return hsmc__fail(c->h, HSMC_ERR_SIGNATURE, CKR_OK,
                              "%s: the public key is not an RSA key, as alg needs", fn);
        if (sig.len != n)
            return hsmc__fail(c->h, HSMC_ERR_SIGNATURE, CKR_OK,
                              "%s: an RSA signature of this key is %lu bytes, not %lu", fn,
                              (unsigned long)n, (unsigned long)sig.len);
        if (sa.scheme == HSMC_SIG_RSA_PSS) {
            pss.mgf1_hash_id = md;
            pss.expected_salt_len = (int)dlen;
            rc = mbedtls_pk_verify_ext(MBEDTLS_PK_RSASSA_PSS, &pss, pk, md, dig, dlen, sig.ptr,
                                       sig.len);
        } else {
            rc = mbedtls_pk_verify(pk, md, dig, dlen, sig.ptr, sig.len);
        }
    }
    if (rc != 0)
        return hsmc__fail(c->h, HSMC_ERR_SIGNATURE, CKR_OK,
                          "%s: the signature does not verify with the given public key (mbedTLS "
                          "-0x%04x)",
                          fn, (unsigned)-rc);
    return HSMC_OK;
}

/*
 * Check the signature of a parsed COSE_Sign1: with c->key in the token, or
 * with pk in software when pk is given. The digest stays in this frame.
 */
HSMC_NOINLINE static hsmc_err_t hsmc_cose_check_sig(hsmc_cose_t *c, const char *fn,
                                                    const hsmc_cose_hdrs_t *hd, hsmc_sig_alg_t sa,
                                                    hsmc_view_t aad, hsmc_view_t payload,
                                                    hsmc_view_t sig, mbedtls_pk_context *pk)
{
    uint8_t dig[64];
    size_t n = 0;
    hsmc_err_t err;

    if (sa.scheme == HSMC_SIG_EDDSA) {
        if (pk != NULL)
            return hsmc__fail(c->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                              "%s: EdDSA cannot be checked in software here (mbedTLS has no "
                              "Ed25519): use hsmc_cose_verify1 with the token",
                              fn);
        err = hsmc_cose_sig_structure(c, fn, hd->prot, hd->prot_len, aad, payload, &n);
        if (err == HSMC_OK)
            err = hsmc_verify(c->h, &c->key, sa, c->scratch, n, sig.ptr, sig.len);
    } else {
        err = hsmc_cose_sig_digest(c, fn, sa.hash, hd->prot, hd->prot_len, aad, payload, dig);
        if (err == HSMC_OK && pk != NULL)
            err = hsmc_cose_pk_verify(c, fn, pk, sa, dig, sig);
        else if (err == HSMC_OK)
            err = hsmc_verify_digest(c->h, &c->key, sa, dig, hsmc_hash_len(sa.hash), sig.ptr,
                                     sig.len);
    }
    if (err == HSMC_ERR_SIGNATURE && pk == NULL)
        err = hsmc__fail(c->h, err, CKR_OK,
                         "%s: the signature does not verify with key '%s' (wrong key, wrong "
                         "AAD or payload, or altered)",
                         fn, c->key.priv.label);
    hsmc__wipe(c->scratch, sizeof c->scratch);
    return err;
}

/* Results of a verified COSE_Sign1 for the caller. */
static void hsmc_cose_sig_info(hsmc_cose_info_t *info, const hsmc_cose_hdrs_t *hd,
                               hsmc_view_t payload)
{
    if (info == NULL)
        return;
    info->alg = (int)hd->alg;
    info->kid.ptr = hd->kid;
    info->kid.len = hd->kid_len;
    info->payload = payload;
    hsmc_cose_info_ctype(info, hd);
}

hsmc_err_t hsmc_cose_verify1(hsmc_cose_t *c, hsmc_view_t msg, hsmc_view_t aad,
                             hsmc_view_t detached, unsigned flags, hsmc_cose_info_t *info)
{
    static const char fn[] = "hsmc_cose_verify1";
    hsmc_cose_hdrs_t hd;
    hsmc_view_t payload = {NULL, 0}, sig = {NULL, 0};
    hsmc_sig_alg_t sa;
    hsmc_err_t err;

    if (c == NULL)
        return HSMC_ERR_ARG;
    if (msg.ptr == NULL || !HSMC_VIEW_OK(aad))
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK,
                          "%s: msg must be given, and aad bytes for a non-zero length", fn);
    hsmc__cose_info_reset(info);
    err = hsmc_cose_parse1(c, fn, msg, flags, detached, &hd, &payload, &sig, &sa);
    if (err == HSMC_OK)
        err = hsmc_cose_resolve(c, hd.kid, hd.kid_len);
    if (err == HSMC_OK)
        err = hsmc_cose_check_sig(c, fn, &hd, sa, aad, payload, sig, NULL);
    if (err == HSMC_OK)
        hsmc_cose_sig_info(info, &hd, payload);
    hsmc_cose_done(c);
    return err;
}

hsmc_err_t hsmc_cose_verify1_spki(hsmc_cose_t *c, hsmc_view_t msg, hsmc_view_t spki,
                                  hsmc_view_t aad, hsmc_view_t detached, unsigned flags,
                                  hsmc_cose_info_t *info)
{
    static const char fn[] = "hsmc_cose_verify1_spki";
    hsmc_cose_hdrs_t hd;
    hsmc_view_t payload = {NULL, 0}, sig = {NULL, 0};
    mbedtls_pk_context pk;
    hsmc_sig_alg_t sa;
    hsmc_err_t err;

    if (c == NULL)
        return HSMC_ERR_ARG;
    if (msg.ptr == NULL || spki.ptr == NULL || spki.len == 0 || !HSMC_VIEW_OK(aad))
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK,
                          "%s: msg and spki must be given, and aad bytes for a non-zero length",
                          fn);
    hsmc__cose_info_reset(info);
    err = hsmc_cose_parse1(c, fn, msg, flags, detached, &hd, &payload, &sig, &sa);
    if (err != HSMC_OK)
        return err;
    if (sa.scheme == HSMC_SIG_EDDSA) /* before mbedTLS refuses the Ed25519 SPKI */
        return hsmc_cose_check_sig(c, fn, &hd, sa, aad, payload, sig, &pk);
    mbedtls_pk_init(&pk);
    if (mbedtls_pk_parse_public_key(&pk, spki.ptr, spki.len) != 0)
        err = hsmc__fail(c->h, HSMC_ERR_FORMAT, CKR_OK,
                         "%s: spki is not a SubjectPublicKeyInfo mbedTLS can read", fn);
    else
        err = hsmc_cose_check_sig(c, fn, &hd, sa, aad, payload, sig, &pk);
    mbedtls_pk_free(&pk);
    if (err == HSMC_OK)
        hsmc_cose_sig_info(info, &hd, payload);
    return err;
}
