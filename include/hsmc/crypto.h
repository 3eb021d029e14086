/**
 * @file crypto.h
 * @brief Operations with token keys: sign/verify, AES-GCM, key wrap,
 *        RSA encryption, digest. Hashing of messages happens on the host
 *        (mbedTLS); the token signs the digest with CKM_ECDSA,
 *        CKM_RSA_PKCS (DigestInfo) or CKM_RSA_PKCS_PSS, which every token
 *        here has.
 *
 * Algorithms are COSE integer ids (RFC 9053) where COSE has one.
 * A mechanism the token lacks is HSMC_ERR_UNSUPPORTED naming it.
 */
#ifndef HSMC_CRYPTO_H
#define HSMC_CRYPTO_H

#include "hsmc/key.h"

#ifdef __cplusplus
extern "C" {
#endif

/* COSE algorithm identifiers (IANA COSE Algorithms registry). */
#define HSMC_COSE_ES256 (-7)
#define HSMC_COSE_ES384 (-35)
#define HSMC_COSE_ES512 (-36)
#define HSMC_COSE_EDDSA (-8)
#define HSMC_COSE_PS256 (-37)
#define HSMC_COSE_PS384 (-38)
#define HSMC_COSE_PS512 (-39)
#define HSMC_COSE_RS256 (-257)
#define HSMC_COSE_RS384 (-258)
#define HSMC_COSE_RS512 (-259)
#define HSMC_COSE_A128GCM 1
#define HSMC_COSE_A192GCM 2
#define HSMC_COSE_A256GCM 3
#define HSMC_COSE_A128KW (-3)
#define HSMC_COSE_A192KW (-4)
#define HSMC_COSE_A256KW (-5)
#define HSMC_COSE_RSA_OAEP (-40)     /**< RSAES-OAEP w/ SHA-1 */
#define HSMC_COSE_RSA_OAEP_256 (-41) /**< RSAES-OAEP w/ SHA-256 */

/** Hash functions. */
typedef enum hsmc_hash {
    HSMC_HASH_NONE = 0,
    HSMC_HASH_SHA1,
    HSMC_HASH_SHA224,
    HSMC_HASH_SHA256,
    HSMC_HASH_SHA384,
    HSMC_HASH_SHA512
} hsmc_hash_t;

/** Signature schemes. */
typedef enum hsmc_sig_scheme {
    HSMC_SIG_ECDSA = 1,   /**< output raw r||s (COSE); see hsmc_ecdsa_raw_to_der */
    HSMC_SIG_RSA_PKCS1,   /**< RSASSA-PKCS1-v1_5 */
    HSMC_SIG_RSA_PSS,     /**< RSASSA-PSS, MGF1 with the same hash, salt = hash length */
    HSMC_SIG_EDDSA        /**< Ed25519 (message, not digest) */
} hsmc_sig_scheme_t;

/** A signature algorithm: scheme + hash. */
typedef struct hsmc_sig_alg {
    hsmc_sig_scheme_t scheme;
    hsmc_hash_t hash;
} hsmc_sig_alg_t;

/** Map a COSE signature alg id to scheme + hash. @return HSMC_OK or HSMC_ERR_UNSUPPORTED. */
hsmc_err_t hsmc_sig_alg_from_cose(int cose_alg, hsmc_sig_alg_t *alg);
/** The COSE id of scheme + hash, or 0 when COSE has none (e.g. RSA PKCS#1 SHA-224). */
int hsmc_sig_alg_to_cose(hsmc_sig_alg_t alg);
/** Digest length of a hash in bytes (0 for NONE). */
size_t hsmc_hash_len(hsmc_hash_t hash);

/** Host hash (mbedTLS). out must hold hsmc_hash_len(hash) bytes.
 *  @return HSMC_OK; HSMC_ERR_ARG; HSMC_ERR_UNSUPPORTED (not in this mbedTLS build). */
hsmc_err_t hsmc_hash(hsmc_hash_t hash, const uint8_t *msg, size_t len, uint8_t *out);

/**
 * Sign a message (hashed on the host, except EdDSA) with the key's private
 * object. Size-only pass with sig NULL. Hashes are SHA-224..SHA-512 (SHA-1
 * is refused with HSMC_ERR_UNSUPPORTED); EdDSA takes HSMC_HASH_NONE.
 * @return HSMC_OK; HSMC_ERR_ARG (scheme does not fit the key type, empty
 *   message); HSMC_ERR_KEY_USAGE (key lacks CKA_SIGN); HSMC_ERR_BUFFER
 *   (*sig_len set); HSMC_ERR_UNSUPPORTED; token errors.
 */
hsmc_err_t hsmc_sign(hsmc_t *h, const hsmc_key_t *key, hsmc_sig_alg_t alg, const uint8_t *msg,
                     size_t len, uint8_t *sig, size_t cap, size_t *sig_len);

/** Sign a precomputed digest (its length must match alg.hash). Not for EdDSA. */
hsmc_err_t hsmc_sign_digest(hsmc_t *h, const hsmc_key_t *key, hsmc_sig_alg_t alg,
                            const uint8_t *digest, size_t dlen, uint8_t *sig, size_t cap,
                            size_t *sig_len);

/**
 * Verify with the key's public object in the token.
 * @return HSMC_OK; HSMC_ERR_SIGNATURE (does not verify); other errors.
 */
hsmc_err_t hsmc_verify(hsmc_t *h, const hsmc_key_t *key, hsmc_sig_alg_t alg, const uint8_t *msg,
                       size_t len, const uint8_t *sig, size_t sig_len);

/** Verify a signature over a precomputed digest. */
hsmc_err_t hsmc_verify_digest(hsmc_t *h, const hsmc_key_t *key, hsmc_sig_alg_t alg,
                              const uint8_t *digest, size_t dlen, const uint8_t *sig,
                              size_t sig_len);

/** Convert raw r||s (2*n bytes) to a DER ECDSA-Sig-Value. Size-only with der NULL. */
hsmc_err_t hsmc_ecdsa_raw_to_der(const uint8_t *raw, size_t raw_len, uint8_t *der, size_t cap,
                                 size_t *der_len);
/** Convert DER ECDSA-Sig-Value to raw r||s of 2*n bytes (n = field size). */
hsmc_err_t hsmc_ecdsa_der_to_raw(const uint8_t *der, size_t der_len, size_t n, uint8_t *raw);

/* ---- AES-GCM in the token ------------------------------------------------ */

#define HSMC_GCM_IV_LEN 12u
#define HSMC_GCM_TAG_LEN 16u

/**
 * Encrypt with AES-GCM in the token. The 96-bit IV comes from the token
 * RNG and is written to iv. out receives ciphertext || 16-byte tag
 * (len + 16 bytes; size-only with out NULL). Random 96-bit IVs are safe
 * for about 2^32 messages per key: rotate keys well before (key.h).
 * @return HSMC_OK; HSMC_ERR_ARG; HSMC_ERR_KEY_USAGE; HSMC_ERR_BUFFER;
 *   HSMC_ERR_UNSUPPORTED (no CKM_AES_GCM, or neither CK_GCM_PARAMS layout).
 */
hsmc_err_t hsmc_gcm_encrypt(hsmc_t *h, const hsmc_key_t *key, const uint8_t *aad,
                            size_t aad_len, const uint8_t *pt, size_t len,
                            uint8_t iv[HSMC_GCM_IV_LEN], uint8_t *out, size_t cap,
                            size_t *out_len);

/**
 * Decrypt ciphertext||tag. out needs room for `len` bytes (the whole input:
 * tokens may ask for it); *out_len receives len - 16 (the size-only pass
 * with out NULL gives len). On failure out is wiped.
 * @return HSMC_OK or HSMC_ERR_DECRYPT (tag mismatch, wrong key or AAD).
 */
hsmc_err_t hsmc_gcm_decrypt(hsmc_t *h, const hsmc_key_t *key, const uint8_t *aad,
                            size_t aad_len, const uint8_t iv[HSMC_GCM_IV_LEN],
                            const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                            size_t *out_len);

/* ---- Key wrapping -------------------------------------------------------- */

/** Wrapping mechanisms. */
typedef enum hsmc_wrap_mech {
    HSMC_WRAP_AES_KW = 1,   /**< RFC 3394 (CKM_AES_KEY_WRAP) */
    HSMC_WRAP_AES_KWP,      /**< RFC 5649 (CKM_AES_KEY_WRAP_KWP / 0x210A) */
    HSMC_WRAP_RSA_OAEP_SHA1,
    HSMC_WRAP_RSA_OAEP_SHA256,
    HSMC_WRAP_AES_CBC_PAD   /**< only where nothing better exists; not authenticated;
                                 output is the 16-byte IV, then the ciphertext */
} hsmc_wrap_mech_t;

/**
 * Wrap the token key `target` (CKA_EXTRACTABLE TRUE) with `kek`. Size-only
 * with out NULL. HSMC_WRAP_AES_KWP on a token that has RFC 5649 only as
 * 0x210A (SoftHSM2) wraps secret keys whose length is a multiple of 8 only
 * (SoftHSM2 2.6 pads other lengths first): HSMC_ERR_UNSUPPORTED otherwise.
 */
hsmc_err_t hsmc_wrap(hsmc_t *h, const hsmc_key_t *kek, hsmc_wrap_mech_t mech,
                     const hsmc_key_t *target, uint8_t *out, size_t cap, size_t *out_len);

/**
 * Unwrap into a new token key `label` made by `spec` (sensitive,
 * non-extractable unless spec->session), using `kek`.
 * @return HSMC_OK; HSMC_ERR_EXISTS (label taken); HSMC_ERR_ARG (spec, or
 *   a key of another size than spec->alg: not kept); HSMC_ERR_DECRYPT.
 */
hsmc_err_t hsmc_unwrap(hsmc_t *h, const hsmc_key_t *kek, hsmc_wrap_mech_t mech,
                       const uint8_t *wrapped, size_t len, const char *label,
                       const hsmc_key_spec_t *spec, hsmc_key_t *out);

/**
 * Wrap host key bytes (e.g. a fresh content key) with a token KEK: the
 * bytes are loaded as a temporary session key, wrapped, and destroyed.
 * RSA-OAEP wraps may be computed with the public key.
 */
hsmc_err_t hsmc_wrap_bytes(hsmc_t *h, const hsmc_key_t *kek, hsmc_wrap_mech_t mech,
                           const uint8_t *key_bytes, size_t key_len, uint8_t *out, size_t cap,
                           size_t *out_len);

/**
 * Unwrap to host key bytes (the content key of an envelope): the key is
 * unwrapped as a temporary extractable session key, read, and destroyed.
 * key_bytes NULL gives the length in *key_len. An RSA key without
 * CKA_UNWRAP but with CKA_DECRYPT is used with C_Decrypt, which needs a
 * buffer of the modulus size. key_bytes is wiped on failure.
 */
hsmc_err_t hsmc_unwrap_bytes(hsmc_t *h, const hsmc_key_t *kek, hsmc_wrap_mech_t mech,
                             const uint8_t *wrapped, size_t len, uint8_t *key_bytes, size_t cap,
                             size_t *key_len);

/* ---- RSA encryption ------------------------------------------------------ */

/** RSA encryption paddings. */
typedef enum hsmc_rsa_pad {
    HSMC_RSA_OAEP_SHA1 = 1,
    HSMC_RSA_OAEP_SHA256,
    HSMC_RSA_PKCS1_V15
} hsmc_rsa_pad_t;

/** Encrypt with the key's public object. Size-only with out NULL. */
hsmc_err_t hsmc_rsa_encrypt(hsmc_t *h, const hsmc_key_t *key, hsmc_rsa_pad_t pad,
                            const uint8_t *pt, size_t len, uint8_t *out, size_t cap,
                            size_t *out_len);

/**
 * Decrypt in the token with the private key. out needs room for the
 * modulus size (size-only pass with out NULL); *out_len is the plaintext
 * length. @return ... HSMC_ERR_DECRYPT on bad padding or length.
 */
hsmc_err_t hsmc_rsa_decrypt(hsmc_t *h, const hsmc_key_t *key, hsmc_rsa_pad_t pad,
                            const uint8_t *ct, size_t len, uint8_t *out, size_t cap,
                            size_t *out_len);

/* ---- Digest through the token -------------------------------------------- */

/** Digest computed by the token (C_Digest). out holds hsmc_hash_len(hash) bytes. */
hsmc_err_t hsmc_token_digest(hsmc_t *h, hsmc_hash_t hash, const uint8_t *msg, size_t len,
                             uint8_t *out, size_t cap, size_t *out_len);

#ifdef __cplusplus
}
#endif

#endif /* HSMC_CRYPTO_H */
