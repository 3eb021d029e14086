/**
 * @file cose.h
 * @brief COSE envelopes (RFC 9052/9053) over hsmc's deterministic CBOR:
 *        COSE_Encrypt0 with a token AES-GCM key, COSE_Encrypt with key-wrap
 *        or RSA-OAEP recipients, a chunked stream for data of any size, and
 *        COSE_Sign1 (attached or detached). Every format is written down in
 *        docs/FORMATS.md.
 *
 *   hsmc_cose_t c;
 *   hsmc_cose_init(&c, &h);                    // kid = key label (default)
 *   hsmc_cose_encrypt0(&c, &key, aad, pt, NULL, 0, &n);   // size-only pass
 *   hsmc_cose_encrypt0(&c, &key, aad, pt, buf, n, &n);
 *   hsmc_cose_decrypt0(&c, msg, aad, 0, out, cap, &len, NULL);
 *   hsmc_cose_free(&c);
 *
 * Memory. Every context is a plain struct the caller owns; nothing here
 * allocates (mbedTLS may, inside its own GCM/RSA code, as configured by the
 * integrator). Inputs are views the caller keeps alive for the call;
 * outputs go to caller buffers, and a NULL output buffer asks for the size
 * (the token is then not asked to encrypt or sign anything). Large scratch
 * (the AEAD's Enc_structure, an RSA unwrap) lives in the context, sized by
 * HSMC_COSE_SCRATCH_LEN; that bound limits the external AAD (with the
 * content type) of COSE_Encrypt0/COSE_Encrypt and the Sig_structure of
 * EdDSA (see each function). The stream has no such bound.
 *
 * Keys. kid is the key's label, versions included ("data-v0002"), so data
 * sealed before a rotation still opens after it. Decryption and token
 * verification find keys through a resolver (kid -> hsmc_key_t); the
 * default one opens the key whose label equals the kid.
 *
 * Input is read strictly: the expected COSE tag (untagged only with
 * HSMC_COSE_UNTAGGED), definite lengths and shortest heads, the nesting
 * limit, duplicate map keys, a label in both header buckets, unknown
 * critical headers (label 2), unknown algorithms, a wrong IV length, a
 * content type (label 3) that is not text or a number 0..65535, and
 * trailing bytes are all rejected. The body's alg must be protected.
 *
 * Content type. hsmc_cose_set_content_type() labels what a context
 * encrypts or signs (e.g. "application/json"); decoders report the
 * protected label 3 in hsmc_cose_info_t. Messages without one still open.
 *
 * Errors: HSMC_ERR_FORMAT (malformed), HSMC_ERR_UNSUPPORTED (algorithm or
 * critical header hsmc does not implement, or the token lacks it),
 * HSMC_ERR_DECRYPT (authentication failed: wrong key, wrong AAD, tampered),
 * HSMC_ERR_SIGNATURE, HSMC_ERR_OBJECT_NOT_FOUND (no key for the kid, the
 * detail names it), HSMC_ERR_TRUNCATED and HSMC_ERR_SEQUENCE (streams),
 * HSMC_ERR_LIMIT (a compile-time bound), HSMC_ERR_BUFFER (*len set),
 * HSMC_ERR_ARG. The hsmc_t detail text says what was wrong. Plaintext of
 * input that fails authentication is never returned: the output is wiped.
 */
#ifndef HSMC_COSE_H
#define HSMC_COSE_H

#include <stddef.h>
#include <stdint.h>

#include "hsmc/cbor.h"
#include "hsmc/crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Identifiers ---------------------------------------------------------- */

/** CBOR tags of the COSE messages hsmc reads and writes (RFC 9052 §2). */
#define HSMC_COSE_TAG_ENCRYPT0 16u
#define HSMC_COSE_TAG_ENCRYPT 96u
#define HSMC_COSE_TAG_SIGN1 18u

/** Header parameter labels (RFC 9052 §3.1) hsmc uses. */
#define HSMC_COSE_HDR_ALG 1
#define HSMC_COSE_HDR_CRIT 2
#define HSMC_COSE_HDR_CONTENT_TYPE 3
#define HSMC_COSE_HDR_KID 4
#define HSMC_COSE_HDR_IV 5
#define HSMC_COSE_HDR_PARTIAL_IV 6
/** Private-use label (RFC 9052 §16.2 range < -65536): plaintext bytes per
 *  full chunk of an hsmc stream; protected and listed in crit. */
#define HSMC_COSE_HDR_CHUNK_SIZE (-65537)

/** Largest chunk size a stream may declare (bytes of plaintext). */
#define HSMC_COSE_CHUNK_MAX (1ul << 30)

/* Flags for the decoding functions and hsmc_cose_sign1(). */
/** Accept a message without its COSE tag (the caller knows its type). */
#define HSMC_COSE_UNTAGGED 0x1u
/** hsmc_cose_sign1(): leave the payload out (nil); the verifier supplies it. */
#define HSMC_COSE_DETACHED 0x2u

/* ---- Context ---------------------------------------------------------------- */

/**
 * Resolver: find the token key named by `kid` (kid_len bytes; kid is NULL
 * when the message has none) and fill *key. Return HSMC_OK, or
 * HSMC_ERR_OBJECT_NOT_FOUND when this kid is not one of ours (COSE_Encrypt
 * then tries the next recipient); any other error ends the operation.
 * Called with the context's hsmc_t.
 */
typedef hsmc_err_t (*hsmc_cose_resolve_fn)(void *user, hsmc_t *h, const uint8_t *kid,
                                           size_t kid_len, hsmc_key_t *key);

/** Software crypto state (mbedTLS GCM or hash context); opaque. A build of
 *  hsmc_cose.c fails when the integrator's mbedTLS needs more than
 *  HSMC_COSE_CRYPTO_LEN bytes. */
typedef union hsmc_cose_crypto {
    unsigned char bytes[HSMC_COSE_CRYPTO_LEN];
    uint64_t align_u64;
    void *align_ptr;
} hsmc_cose_crypto_t;

/**
 * COSE context: the token, the resolver and the working memory of one
 * operation at a time (not shared between threads). Fields are private:
 * set them through the functions below.
 */
typedef struct hsmc_cose {
    hsmc_t *h;                     /**< token context; may be unopened for the SPKI path */
    hsmc_cose_resolve_fn resolve;  /**< kid -> key */
    void *resolve_user;            /**< resolver argument */
    const char *content_type;      /**< label 3 to write, or NULL (private) */
    size_t content_type_len;       /**< its length in bytes (private) */
    int crypto_state;              /**< what `crypto` holds (private) */
    hsmc_key_t key;                /**< the key a resolver found (private) */
    uint8_t cek[32];               /**< content key while in use, else zero (private) */
    hsmc_cbor_dec_t dec;           /**< message decoder (private) */
    hsmc_cose_crypto_t crypto;     /**< GCM or hash state (private) */
    uint8_t scratch[HSMC_COSE_SCRATCH_LEN]; /**< Enc/Sig_structure, unwrap output (private) */
} hsmc_cose_t;

/**
 * Prepare a context for the token context h (which must outlive it). The
 * resolver is hsmc_cose_resolve_label. Cannot fail; a NULL c is ignored.
 * h may be NULL or an initialised but unopened hsmc_t for
 * hsmc_cose_verify1_spki() alone; error details go to h when it is given.
 */
void hsmc_cose_init(hsmc_cose_t *c, hsmc_t *h);

/** Replace the resolver (NULL fn restores hsmc_cose_resolve_label). */
void hsmc_cose_set_resolver(hsmc_cose_t *c, hsmc_cose_resolve_fn fn, void *user);

/**
 * Content type (label 3, RFC 9052 §3.1) of what this context encrypts or
 * signs from now on: hsmc_cose_encrypt0, hsmc_cose_encrypt,
 * hsmc_cose_stream_seal_init (set it on &s->cose) and hsmc_cose_sign1 put
 * it as text in the protected bucket, where it is authenticated with the
 * content. It stays set until the next call (NULL: none, as after
 * hsmc_cose_init) or hsmc_cose_free. The context keeps the pointer, not a
 * copy: ct must stay valid and unchanged while it is set.
 * Decoders report what they find in hsmc_cose_info_t.content_type and
 * content_format; setting one here does not affect them.
 * @param ct a media type such as "application/json" (non-empty UTF-8,
 *           NUL-terminated, no control characters), or NULL for none.
 * @return HSMC_OK; HSMC_ERR_ARG (c NULL, or ct empty, not UTF-8 or with
 *   control characters: the context then has no content type). Its length
 *   counts against the bounds of HSMC_COSE_SCRATCH_LEN (see
 *   hsmc_cose_encrypt0).
 */
hsmc_err_t hsmc_cose_set_content_type(hsmc_cose_t *c, const char *ct);

/** Release mbedTLS state and wipe the context (keys, scratch). NULL is ignored. */
void hsmc_cose_free(hsmc_cose_t *c);

/**
 * Default resolver: the kid is a key label (UTF-8, at most
 * HSMC_MAX_LABEL_LEN bytes, no NUL); the key is hsmc_key_open(h, label).
 * @return HSMC_OK; HSMC_ERR_OBJECT_NOT_FOUND (no kid, a kid that cannot be
 *   a label, or no such key; the detail names the kid); errors of
 *   hsmc_key_open.
 */
hsmc_err_t hsmc_cose_resolve_label(void *user, hsmc_t *h, const uint8_t *kid, size_t kid_len,
                                   hsmc_key_t *key);

/**
 * Resolver that ignores the kid and always answers with the key `user`
 * points to (a const hsmc_key_t that outlives the context): "decrypt or
 * verify with this key".
 */
hsmc_err_t hsmc_cose_resolve_fixed(void *user, hsmc_t *h, const uint8_t *kid, size_t kid_len,
                                   hsmc_key_t *key);

/**
 * What a decoder found; every view points into the caller's input (for a
 * stream: the header bytes given to hsmc_cose_stream_open_init).
 *
 * The content type (label 3) is reported only from the body's protected
 * bucket, where it is authenticated; one in the unprotected bucket is
 * type-checked and otherwise ignored. Text is a media type such as
 * "text/plain; charset=utf-8" (valid UTF-8, not NUL-terminated); a number
 * is a CoAP Content-Format (0..65535; e.g. 0 text/plain;charset=utf-8,
 * 42 application/octet-stream, 50 application/json). A message without
 * one has content_type {NULL, 0} and content_format -1.
 */
typedef struct hsmc_cose_info {
    int alg;                  /**< content (AES-GCM) or signature algorithm, COSE id */
    int key_alg;              /**< COSE_Encrypt/stream: algorithm of the recipient used, else 0 */
    size_t recipient;         /**< COSE_Encrypt/stream: index of the recipient used */
    hsmc_view_t kid;          /**< kid of the key used ({NULL, 0} when the message has none) */
    hsmc_view_t payload;      /**< Sign1: the verified payload (attached, or the detached one) */
    size_t chunk;             /**< stream: plaintext bytes of a full chunk, else 0 */
    hsmc_view_t content_type; /**< protected content type as text, else {NULL, 0} */
    int64_t content_format;   /**< protected content type as a number, else -1 */
} hsmc_cose_info_t;

/* ---- COSE_Encrypt0: a token AES key encrypts directly --------------------- */

/**
 * COSE_Encrypt0 (tag 16) of `pt` under the token AES key `key`:
 * protected {1: A128GCM|A192GCM|A256GCM from the key size, 3: content type
 * when set (hsmc_cose_set_content_type)}, unprotected {4: kid = key label,
 * 5: 12-byte IV from the token RNG}, ciphertext = AES-GCM(pt) || 16-byte
 * tag with AAD = Enc_structure ["Encrypt0", protected, aad]. The
 * Enc_structure is built in the context's scratch, so aad plus the content
 * type may be at most HSMC_COSE_SCRATCH_LEN - 32 bytes.
 * @param aad   external AAD ({NULL, 0} for none); the decrypter must give it.
 * @param out   output, or NULL for the size (no token call); *out_len the
 *              bytes written or needed.
 * @return HSMC_OK; HSMC_ERR_ARG (NULL arguments, key not AES or without a
 *   label); HSMC_ERR_LIMIT (aad too long for the scratch); HSMC_ERR_BUFFER
 *   (*out_len set); HSMC_ERR_KEY_USAGE; HSMC_ERR_UNSUPPORTED (no CKM_AES_GCM:
 *   use hsmc_cose_encrypt); token errors. On failure out is wiped.
 */
hsmc_err_t hsmc_cose_encrypt0(hsmc_cose_t *c, const hsmc_key_t *key, hsmc_view_t aad,
                              hsmc_view_t pt, uint8_t *out, size_t cap, size_t *out_len);

/**
 * Open a COSE_Encrypt0: parse strictly, find the key from the kid through
 * the resolver, check alg against the key size, decrypt in the token.
 * @param flags HSMC_COSE_UNTAGGED or 0.
 * @param out   room for the ciphertext length (plaintext + 16: tokens use
 *              room for the tag), or NULL to ask that size (no token
 *              call). *out_len: the plaintext length on success.
 * @param info  optional: alg, kid, content type (filled by the size pass too).
 * @return HSMC_OK; HSMC_ERR_FORMAT; HSMC_ERR_UNSUPPORTED (alg, critical
 *   header); HSMC_ERR_OBJECT_NOT_FOUND (kid); HSMC_ERR_KEY_USAGE (key type
 *   or size does not fit alg); HSMC_ERR_DECRYPT (wrong key, wrong AAD,
 *   tampered); HSMC_ERR_LIMIT; HSMC_ERR_BUFFER; token errors. On failure
 *   out is wiped.
 */
hsmc_err_t hsmc_cose_decrypt0(hsmc_cose_t *c, hsmc_view_t msg, hsmc_view_t aad, unsigned flags,
                              uint8_t *out, size_t cap, size_t *out_len, hsmc_cose_info_t *info);

/**
 * Name of a COSE algorithm hsmc uses ("A256GCM", "A256KW", "RSA-OAEP",
 * "ES256", ...), or NULL for any other number. For messages and listings.
 */
const char *hsmc_cose_alg_name(int alg);

/* ---- COSE_Encrypt: fresh content key, wrapped for each recipient ---------- */

/** One recipient of a COSE_Encrypt or stream. */
typedef struct hsmc_cose_recipient {
    const hsmc_key_t *key; /**< token KEK (AES) or RSA key pair; its label is the kid */
    int alg;               /**< HSMC_COSE_A128KW/A192KW/A256KW (KEK of that size),
                                HSMC_COSE_RSA_OAEP (SHA-1) or HSMC_COSE_RSA_OAEP_256 */
} hsmc_cose_recipient_t;

/**
 * COSE_Encrypt (tag 96): a 32-byte content key (CEK) from the token RNG
 * encrypts `pt` in software (mbedTLS AES-256-GCM, 12-byte IV from the token
 * RNG, AAD = Enc_structure ["Encrypt", protected, aad]; protected is
 * {1: A256GCM, 3: content type when set}); each recipient
 * wraps the CEK in the token: [h'' , {1: alg, 4: kid}, wrapped CEK] (key
 * wrap leaves the protected bucket empty, RFC 9053 §6.2.1). The CEK is
 * wiped before returning. Works on tokens without AES-GCM.
 * @param r, n  1 or more recipients.
 * @param aad   external AAD; with the content type at most
 *              HSMC_COSE_SCRATCH_LEN - 32 bytes.
 * @param out   output or NULL for the size (RSA recipients may ask the token
 *              their modulus size).
 * @return HSMC_OK; HSMC_ERR_ARG (no recipient, an alg that does not fit the
 *   key); HSMC_ERR_LIMIT; HSMC_ERR_BUFFER; HSMC_ERR_KEY_USAGE (KEK without
 *   wrap/encrypt); HSMC_ERR_UNSUPPORTED (e.g. RSA-OAEP-256 on a token
 *   without it); token errors. On failure out is wiped.
 */
hsmc_err_t hsmc_cose_encrypt(hsmc_cose_t *c, const hsmc_cose_recipient_t *r, size_t n,
                             hsmc_view_t aad, hsmc_view_t pt, uint8_t *out, size_t cap,
                             size_t *out_len);

/**
 * Open a COSE_Encrypt: parse strictly, take the first recipient whose alg
 * hsmc knows and whose kid the resolver finds, unwrap the CEK in the token,
 * decrypt in software. Content algs A128GCM/A192GCM/A256GCM.
 * @param out   room for the plaintext (ciphertext - 16), or NULL for that size.
 * @param info  optional: alg, key_alg, recipient, kid, content type.
 * @return HSMC_OK; HSMC_ERR_FORMAT (also a detached/nil ciphertext: that is
 *   a stream header); HSMC_ERR_UNSUPPORTED (no recipient with a known alg,
 *   or the token lacks it); HSMC_ERR_OBJECT_NOT_FOUND (no recipient kid
 *   resolves; the detail names them); HSMC_ERR_DECRYPT (unwrap or content
 *   authentication failed); HSMC_ERR_KEY_USAGE; HSMC_ERR_LIMIT;
 *   HSMC_ERR_BUFFER; token errors. On failure out is wiped.
 */
hsmc_err_t hsmc_cose_decrypt(hsmc_cose_t *c, hsmc_view_t msg, hsmc_view_t aad, unsigned flags,
                             uint8_t *out, size_t cap, size_t *out_len, hsmc_cose_info_t *info);

/* ---- Key rotation: re-wrap the content key, keep the content ---------------- */

/**
 * Re-wrap the content key (CEK) of a COSE_Encrypt message or of an hsmc
 * stream header for new recipients, without touching the content: the
 * output is the same item (tag, protected bucket, IV, ciphertext or nil,
 * byte for byte) with the recipients array replaced by one for r[0..n).
 * The CEK is unwrapped in the token through the resolver (first usable
 * recipient whose kid resolves, as hsmc_cose_decrypt), wrapped for each
 * new recipient in the token, and wiped. The content is not decrypted
 * (the key wrap's own integrity check authenticates the CEK; the content
 * is authenticated when it is opened), so this costs two token calls per
 * message whatever its size. A stream's chunks stay valid under the new
 * header (their binding covers the protected bucket, the base IV and the
 * external AAD, not the recipients): write the new header, then the old
 * chunks unchanged.
 * @param msg  a whole COSE_Encrypt, or a stream header item (only the
 *             header: trailing bytes are HSMC_ERR_FORMAT).
 * @param r, n new recipients (1 or more); may include the old KEK.
 * @param out  output, or NULL for its size (no token unwrap is done then;
 *             RSA recipients may ask the token their modulus size).
 * @param info optional: alg, key_alg / recipient / kid of the recipient
 *             used to unwrap (views into msg), chunk (streams), content
 *             type.
 * @return HSMC_OK; HSMC_ERR_ARG (no recipient, an alg that does not fit its
 *   key); HSMC_ERR_FORMAT; HSMC_ERR_UNSUPPORTED; HSMC_ERR_OBJECT_NOT_FOUND
 *   (no recipient kid resolves); HSMC_ERR_DECRYPT (the CEK does not
 *   unwrap); HSMC_ERR_KEY_USAGE; HSMC_ERR_BUFFER; token errors. On failure
 *   out is wiped.
 */
hsmc_err_t hsmc_cose_rewrap(hsmc_cose_t *c, hsmc_view_t msg, unsigned flags,
                            const hsmc_cose_recipient_t *r, size_t n, uint8_t *out, size_t cap,
                            size_t *out_len, hsmc_cose_info_t *info);

/**
 * Recipient i of a COSE_Encrypt message or stream header, without
 * unwrapping anything (no token call): its kid (a view into msg; empty
 * when it has none) and alg. *count (may be NULL) receives the number of
 * recipients, so a caller can walk them all (e.g. to find which key
 * versions are still referenced before retiring one).
 * @return HSMC_OK; HSMC_ERR_FORMAT; HSMC_ERR_ARG (i >= count: *count is
 *   still set).
 */
hsmc_err_t hsmc_cose_recipient_at(hsmc_cose_t *c, hsmc_view_t msg, unsigned flags, size_t i,
                                  hsmc_view_t *kid, int *alg, size_t *count);

/* ---- COSE_Sign1 ------------------------------------------------------------- */

/**
 * COSE_Sign1 (tag 18): protected {1: alg, 3: content type when set},
 * unprotected {4: kid = key label}, payload (or nil with
 * HSMC_COSE_DETACHED), signature over Sig_structure ["Signature1",
 * protected, aad, payload]. The Sig_structure is hashed on the host as it
 * is produced (no size bound) and the digest signed in the token; EdDSA
 * signs the Sig_structure itself, which is then built in the scratch
 * (aad + payload + content type at most HSMC_COSE_SCRATCH_LEN - 32).
 * ECDSA signatures are r||s.
 * @param alg   HSMC_COSE_ES256/384/512, PS256/384/512, RS256/384/512,
 *              EDDSA; 0 picks from the key (P-256 ES256, P-384 ES384,
 *              P-521 ES512, RSA PS256, Ed25519 EdDSA).
 * @param flags HSMC_COSE_DETACHED or 0.
 * @return HSMC_OK; HSMC_ERR_ARG; HSMC_ERR_UNSUPPORTED (alg); HSMC_ERR_LIMIT;
 *   HSMC_ERR_BUFFER; HSMC_ERR_KEY_USAGE; token errors.
 */
hsmc_err_t hsmc_cose_sign1(hsmc_cose_t *c, const hsmc_key_t *key, int alg, hsmc_view_t aad,
                           hsmc_view_t payload, unsigned flags, uint8_t *out, size_t cap,
                           size_t *out_len);

/**
 * Verify a COSE_Sign1 with a token public key found from the kid by the
 * resolver (hsmc_verify in the token).
 * @param detached the payload of a detached message (ptr non-NULL, len may
 *                 be 0); {NULL, 0} for an attached one. Giving one for an
 *                 attached message, or none for a detached one, is
 *                 HSMC_ERR_ARG.
 * @param info     optional: alg, kid, payload, content type.
 * @return HSMC_OK; HSMC_ERR_SIGNATURE; HSMC_ERR_FORMAT; HSMC_ERR_UNSUPPORTED;
 *   HSMC_ERR_OBJECT_NOT_FOUND; HSMC_ERR_LIMIT (EdDSA); HSMC_ERR_ARG; token
 *   errors.
 */
hsmc_err_t hsmc_cose_verify1(hsmc_cose_t *c, hsmc_view_t msg, hsmc_view_t aad,
                             hsmc_view_t detached, unsigned flags, hsmc_cose_info_t *info);

/**
 * Verify a COSE_Sign1 with a public key given as SubjectPublicKeyInfo DER
 * (e.g. from hsmc_key_export_pub or a certificate), in software (mbedTLS):
 * for machines without the token. The kid is not used. EdDSA is
 * HSMC_ERR_UNSUPPORTED (mbedTLS 2.28 has no Ed25519).
 * @return as hsmc_cose_verify1; HSMC_ERR_FORMAT also for an spki mbedTLS
 *   cannot parse; HSMC_ERR_SIGNATURE also for a key that does not fit alg.
 */
hsmc_err_t hsmc_cose_verify1_spki(hsmc_cose_t *c, hsmc_view_t msg, hsmc_view_t spki,
                                  hsmc_view_t aad, hsmc_view_t detached, unsigned flags,
                                  hsmc_cose_info_t *info);

/* ---- Stream: COSE_Encrypt header + chunks (RFC 8742 CBOR sequence) --------- */

/**
 * Stream state. RAM is this struct plus the caller's chunk buffers,
 * whatever the data size. The header is a COSE_Encrypt with nil
 * ciphertext whose protected bucket carries the chunk size
 * (HSMC_COSE_HDR_CHUNK_SIZE, critical); each chunk is the CBOR item
 * [stream id, index, ciphertext] sealed with AES-256-GCM under the CEK,
 * nonce = base IV XOR index, AAD binding the header's protected bucket,
 * the base IV, the external AAD, the index and a last-chunk flag
 * (docs/FORMATS.md). The recipients are not bound, so hsmc_cose_rewrap()
 * can re-wrap the CEK for a new key without re-sealing the chunks. Full
 * chunks hold exactly the chunk size; the last one holds less (possibly
 * nothing), which is how a reader knows it is last. Fields are private;
 * set the resolver of an opening stream with
 * hsmc_cose_set_resolver(&s->cose, ...).
 */
typedef struct hsmc_cose_stream {
    hsmc_cose_t cose;                 /**< token, resolver, GCM keyed with the CEK */
    uint64_t next;                    /**< index of the next chunk */
    size_t chunk;                     /**< plaintext bytes of a full chunk */
    uint8_t iv[HSMC_GCM_IV_LEN];      /**< base IV */
    uint8_t bind[32];                 /**< SHA-256 of the Stream_structure */
    int mode;                         /**< 0 idle, 1 sealing, 2 opening, 3 ended */
    hsmc_err_t err;                   /**< first failure, sticky */
} hsmc_cose_stream_t;

/** Prepare a stream on token context h. Cannot fail; NULL s is ignored. */
void hsmc_cose_stream_init(hsmc_cose_stream_t *s, hsmc_t *h);

/** Release mbedTLS state and wipe (CEK, GCM key). NULL is ignored. */
void hsmc_cose_stream_free(hsmc_cose_stream_t *s);

/**
 * Start sealing: write the header item (tag 96) for recipients r[0..n)
 * and `chunk_size` plaintext bytes per full chunk (1..HSMC_COSE_CHUNK_MAX).
 * The external aad (any length, hashed) must be given again to open. The
 * content type set with hsmc_cose_set_content_type(&s->cose, ...) goes
 * into the header's protected bucket (no length bound).
 * @param out header output, or NULL for its size (the stream stays idle).
 * @return as hsmc_cose_encrypt; HSMC_ERR_STATE when s is not idle.
 */
hsmc_err_t hsmc_cose_stream_seal_init(hsmc_cose_stream_t *s, const hsmc_cose_recipient_t *r,
                                      size_t n, size_t chunk_size, hsmc_view_t aad, uint8_t *out,
                                      size_t cap, size_t *out_len);

/**
 * Seal one full chunk: exactly chunk_size bytes in, one CBOR item out.
 * @param out item output (hsmc_cose_stream_item_max() bytes suffice), or
 *            NULL for its size (the stream does not advance).
 * @return HSMC_OK; HSMC_ERR_ARG (len != chunk_size); HSMC_ERR_STATE (not
 *   sealing); HSMC_ERR_BUFFER; HSMC_ERR_LIMIT (2^64 chunks).
 */
hsmc_err_t hsmc_cose_stream_seal_chunk(hsmc_cose_stream_t *s, const uint8_t *pt, size_t len,
                                       uint8_t *out, size_t cap, size_t *out_len);

/**
 * Seal the last chunk: 0..chunk_size-1 bytes (the remainder; 0 when the
 * data was a multiple of the chunk size) and end the stream: the GCM key
 * is released and wiped. Errors as hsmc_cose_stream_seal_chunk.
 */
hsmc_err_t hsmc_cose_stream_seal_finish(hsmc_cose_stream_t *s, const uint8_t *pt, size_t len,
                                        uint8_t *out, size_t cap, size_t *out_len);

/** Largest chunk item of this stream (after seal_init/open_init), 0 before. */
size_t hsmc_cose_stream_item_max(const hsmc_cose_stream_t *s);

/**
 * Start opening: read the header item from the front of in[0..len) (in
 * must hold all of it; chunks may follow, *used says how many bytes the
 * header took), find a recipient
 * key through the resolver, unwrap the CEK in the token.
 * @param max_chunk largest chunk size the caller's buffers take; a header
 *                  declaring more is HSMC_ERR_LIMIT.
 * @param info      optional: alg, key_alg, recipient, kid, chunk, content
 *                  type (views into in). The header is authenticated only
 *                  when the first chunk opens (its AAD binds the header):
 *                  act on info after that.
 * @return as hsmc_cose_decrypt (HSMC_ERR_FORMAT also for a COSE_Encrypt
 *   that is not a stream header); HSMC_ERR_LIMIT; HSMC_ERR_STATE.
 */
hsmc_err_t hsmc_cose_stream_open_init(hsmc_cose_stream_t *s, const uint8_t *in, size_t len,
                                      size_t *used, hsmc_view_t aad, size_t max_chunk,
                                      unsigned flags, hsmc_cose_info_t *info);

/**
 * Open the next chunk from the front of in[0..len): in must hold the
 * whole item (hsmc_cose_stream_item_max() bytes, or all that is left of the
 * stream). *used is the item's size; out receives its plaintext (at most
 * chunk_size bytes; NULL asks the size without advancing). *last (may be
 * NULL) is set to 1 for the last chunk.
 * @return HSMC_OK; HSMC_ERR_TRUNCATED (in ends inside the item);
 *   HSMC_ERR_SEQUENCE (an index other than the next one, a chunk of another
 *   stream, anything after the last chunk); HSMC_ERR_DECRYPT (the chunk does
 *   not authenticate: tampered, or wrong AAD); HSMC_ERR_FORMAT;
 *   HSMC_ERR_BUFFER; HSMC_ERR_ARG; HSMC_ERR_STATE. TRUNCATED, SEQUENCE,
 *   DECRYPT and FORMAT end the stream (sticky: later calls return them);
 *   out is wiped on failure.
 */
hsmc_err_t hsmc_cose_stream_open_chunk(hsmc_cose_stream_t *s, const uint8_t *in, size_t len,
                                       size_t *used, uint8_t *out, size_t cap, size_t *out_len,
                                       int *last);

/**
 * End of the input: HSMC_OK only when the last chunk was opened (then the
 * GCM key is released and wiped); HSMC_ERR_TRUNCATED when the stream ended
 * before it; the sticky error of an earlier failure.
 */
hsmc_err_t hsmc_cose_stream_open_finish(hsmc_cose_stream_t *s);

#ifdef __cplusplus
}
#endif

#endif /* HSMC_COSE_H */
