/*
 * Internals shared by hsmc_cose.c and hsmc_cose_stream.c. Not installed.
 */
#ifndef HSMC_COSE_INT_H
#define HSMC_COSE_INT_H

#include "hsmc_internal.h"

/* What hsmc_cose_t.crypto holds. */
#define HSMC_COSE_CS_NONE 0
#define HSMC_COSE_CS_GCM 1    /* an mbedtls_gcm_context (keyed or not) */
#define HSMC_COSE_CS_SHA256 2 /* an mbedtls_sha256_context */
#define HSMC_COSE_CS_SHA512 3 /* an mbedtls_sha512_context (also SHA-384) */

/* Header parameters hsmc reads (bits of hsmc_cose_hdrs_t.have). */
#define HSMC_COSE_H_ALG 0x01u
#define HSMC_COSE_H_CRIT 0x02u
#define HSMC_COSE_H_CTYPE 0x04u
#define HSMC_COSE_H_KID 0x08u
#define HSMC_COSE_H_IV 0x10u
#define HSMC_COSE_H_CHUNK 0x20u

/* Overhead of an Enc_structure around the external AAD, and the bound the
 * header promises callers (HSMC_COSE_SCRATCH_LEN - 32). */
#define HSMC_COSE_STRUCT_SLACK 32u

/* A view is valid when its bytes exist (NULL only with length 0). */
#define HSMC_VIEW_OK(v) ((v).ptr != NULL || (v).len == 0)

/* Length of the stream id carried in clear by every chunk. */
#define HSMC_COSE_SID_LEN 8u

/* The header parameters of one structure (both buckets). Views point
 * into the message. */
typedef struct hsmc_cose_hdrs {
    const uint8_t *prot; /* protected bucket as sent (the bstr's payload) */
    size_t prot_len;
    size_t prot_n;      /* parameters in the protected bucket */
    const uint8_t *kid;
    size_t kid_len;
    const uint8_t *iv;
    size_t iv_len;
    const char *ctype;  /* content type (3) as text, else NULL */
    size_t ctype_len;
    int64_t cformat;    /* content type (3) as a CoAP Content-Format, else 0 */
    int64_t alg;
    uint64_t chunk;
    unsigned have;      /* HSMC_COSE_H_* present in either bucket */
    unsigned prot_have; /* HSMC_COSE_H_* present in the protected bucket */
    const uint8_t *rcp; /* COSE_Encrypt: the encoded recipients array */
    size_t rcp_len;
} hsmc_cose_hdrs_t;

/** Report the decoder's first error as HSMC_ERR_FORMAT for `what`. */
hsmc_err_t hsmc__cose_dec_fail(hsmc_cose_t *c, const char *what, const hsmc_cbor_dec_t *dec);

/**
 * Read the optional tag of a message: `tag` must be it, or absent when
 * flags has HSMC_COSE_UNTAGGED. Nothing but that one tag is accepted.
 */
hsmc_err_t hsmc__cose_tag(hsmc_cose_t *c, const char *what, hsmc_cbor_dec_t *dec, uint64_t tag,
                          unsigned flags);

/**
 * Read the protected bstr and the unprotected map at dec into *hd:
 * `allowed` are the HSMC_COSE_H_* this structure understands (others are
 * ignored unless critical); crit is checked; a label in both buckets, a
 * duplicate key, a wrongly typed value are HSMC_ERR_FORMAT; a critical
 * label hsmc does not understand, a Partial IV or a text alg are
 * HSMC_ERR_UNSUPPORTED.
 */
hsmc_err_t hsmc__cose_headers(hsmc_cose_t *c, const char *what, hsmc_cbor_dec_t *dec,
                              unsigned allowed, hsmc_cose_hdrs_t *hd);

/** Clear *info (NULL is ignored): no content type, content_format -1. */
void hsmc__cose_info_reset(hsmc_cose_info_t *info);

/** Printable form of a kid for messages: its text when printable, else hex. */
const char *hsmc__cose_kid_text(const uint8_t *kid, size_t len, char *buf, size_t cap);

/**
 * Write a COSE_Encrypt for r[0..n): content under a fresh CEK and IV from
 * the token RNG; the protected bucket carries c's content type when set. chunk 0: ciphertext of pt with external aad (Enc_structure
 * in the scratch). chunk > 0: a stream header (nil ciphertext, chunk size
 * in the protected bucket); the CEK is left in c->cek and the base IV in
 * iv_out for the caller. out NULL: size only. out is wiped on failure.
 */
hsmc_err_t hsmc__cose_write_encrypt(hsmc_cose_t *c, const char *fn, const hsmc_cose_recipient_t *r,
                                    size_t n, size_t chunk, hsmc_view_t aad, hsmc_view_t pt,
                                    uint8_t *out, size_t cap, size_t *out_len,
                                    uint8_t iv_out[HSMC_GCM_IV_LEN]);

/**
 * Parse a COSE_Encrypt msg[0..len) (stream 1: a header with nil ciphertext
 * and a chunk size; 0: a message with a ciphertext; 2: either, as the
 * chunk size says), pick a recipient through the
 * resolver and unwrap its CEK into c->cek. *hd: the body's headers; *ct:
 * the ciphertext (stream: empty); *cek_len the CEK length; info filled
 * (alg, key_alg, recipient, kid). size_only: stop after parsing.
 */
hsmc_err_t hsmc__cose_open_encrypt(hsmc_cose_t *c, const char *fn, const uint8_t *msg, size_t len,
                                   unsigned flags, int stream, int size_only,
                                   hsmc_cose_hdrs_t *hd, hsmc_view_t *ct, size_t *cek_len,
                                   hsmc_cose_info_t *info);

/* Software AES-GCM in c->crypto (mbedTLS). */
hsmc_err_t hsmc__cose_gcm_key(hsmc_cose_t *c, const uint8_t *key, size_t len);
hsmc_err_t hsmc__cose_gcm_seal(hsmc_cose_t *c, const uint8_t iv[HSMC_GCM_IV_LEN],
                               const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t len,
                               uint8_t *out);
/** Decrypt ct||tag (len >= 16) into out (len - 16 bytes); out wiped on failure.
 *  @return HSMC_OK or HSMC_ERR_DECRYPT (no detail set). */
hsmc_err_t hsmc__cose_gcm_open(hsmc_cose_t *c, const uint8_t iv[HSMC_GCM_IV_LEN],
                               const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                               uint8_t *out);
/** Release whatever c->crypto holds (frees mbedTLS state, wipes). */
void hsmc__cose_crypto_release(hsmc_cose_t *c);

/* SHA-256 over pieces, in c->crypto. */
hsmc_err_t hsmc__cose_sha256_start(hsmc_cose_t *c);
hsmc_err_t hsmc__cose_sha_update(hsmc_cose_t *c, const uint8_t *p, size_t n);
hsmc_err_t hsmc__cose_sha_finish(hsmc_cose_t *c, uint8_t *out);

/**
 * Finish a hash started in c->crypto over a structure that ends with two
 * byte strings a and b: the scratch holds its first n encoded bytes (up to
 * the head of a); a, the head of b and b follow, and the digest goes to
 * out. err is the caller's result so far: nothing more is hashed unless it
 * is HSMC_OK. c->crypto is released either way. @return HSMC_OK, or an
 * encoder / mbedTLS error.
 */
hsmc_err_t hsmc__cose_sha_tail(hsmc_cose_t *c, hsmc_err_t err, size_t n, const hsmc_view_t *a,
                               const hsmc_view_t *b, uint8_t *out);

/**
 * Write the head of an n-byte byte string and reserve its n bytes for the
 * caller to fill (e.g. ciphertext written in place). @return the place, or
 * NULL in a size-only pass or once the encoder failed (the length is
 * counted either way).
 */
uint8_t *hsmc__cose_reserve_bstr(hsmc_cbor_enc_t *enc, size_t n);

#endif /* HSMC_COSE_INT_H */
