/**
 * @file x509.h
 * @brief X.509 and TLS with token keys, through mbedTLS: a token key bound
 *        to an mbedtls_pk_context (so mbedTLS's CSR and certificate writers
 *        and its TLS stack sign in the token), CSR creation, PEM <-> DER,
 *        a token-seeded random generator, and a TLS configuration helper.
 *
 * Not part of hsmc/hsmc.h: this header needs mbedTLS's headers (pk, ssl,
 * x509_crt, ctr_drbg). libhsmc links mbedtls, mbedx509 and mbedcrypto.
 *
 * mbedTLS version: 2.28 (Debian bookworm). Everything that depends on
 * mbedTLS internals is in x509/hsmc_pk_mbedtls28.c; see the note there
 * for the mbedTLS 3.6 / 4.x route (PSA opaque keys).
 *
 * Memory: hsmc itself allocates nothing. mbedTLS allocates its bignums,
 * name lists and handshake state internally (mbedtls_calloc), as it always
 * does; the bound key contexts come from a static pool of
 * HSMC_X509_PK_POOL entries.
 */
#ifndef HSMC_X509_H
#define HSMC_X509_H

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "hsmc/crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Token key as an mbedTLS key ---------------------------------------- */

/**
 * Bind a token key (EC P-256/384/521 or secp256k1, or RSA) to an
 * mbedtls_pk_context (caller-initialised with mbedtls_pk_init, not set up).
 * The pk's key context comes from a static pool of HSMC_X509_PK_POOL
 * entries; signing goes to the token through h (hsmc_sign_digest), the
 * public key is read from the token once, here. Verification, key size and
 * the public-key writers work on that public key as for any mbedTLS key.
 *
 * EC: mbedTLS's hash is truncated to the order's byte length on the host
 * and signed with CKM_ECDSA; the raw r||s becomes a DER ECDSA-Sig-Value.
 * RSA: PKCS#1 v1.5 (DigestInfo + CKM_RSA_PKCS), or RSASSA-PSS (salt =
 * hash length) when the RSA context's padding is MBEDTLS_RSA_PKCS_V21
 * (mbedtls_rsa_set_padding(mbedtls_pk_rsa(*pk), ...)). Private-key
 * decryption (TLS RSA key exchange) and ECDH with the key are not offered.
 * The random generator mbedTLS passes to sign is not used: the token signs.
 *
 * h and the token key must stay open while pk is in use. A pk must not be
 * used by two threads at once (as any mbedTLS key); different pks may.
 *
 * @return HSMC_OK; HSMC_ERR_ARG (NULL, pk already set up, key is not a
 *   private key of a pair, no public key); HSMC_ERR_KEY_USAGE (no
 *   CKA_SIGN); HSMC_ERR_UNSUPPORTED (key type or curve mbedTLS lacks, e.g.
 *   Ed25519); HSMC_ERR_LIMIT (pool full); token errors of
 *   hsmc_key_export_pub.
 */
hsmc_err_t hsmc_pk_bind(hsmc_t *h, const hsmc_key_t *key, mbedtls_pk_context *pk);

/** Release a bound pk (mbedtls_pk_free + return the pool slot; mbedtls_pk_free
 *  alone does the same). Accepts NULL and unbound contexts (freed too). */
void hsmc_pk_unbind(mbedtls_pk_context *pk);

/** 1 when pk is bound to a token key by hsmc_pk_bind, else 0. */
int hsmc_pk_is_bound(const mbedtls_pk_context *pk);

/**
 * Error of the last token signature made through pk (HSMC_OK when it
 * succeeded or none was made), e.g. HSMC_ERR_KEY_USAGE or
 * HSMC_ERR_PIN_INCORRECT after a re-login. mbedTLS only sees a generic
 * MBEDTLS_ERR_PK_* code; the detail text is in the hsmc_t. HSMC_ERR_ARG
 * for a pk that is not bound.
 */
hsmc_err_t hsmc_pk_last_err(const mbedtls_pk_context *pk);

/**
 * Turn a failed mbedTLS call into an hsmc error with a detail text in h
 * ("what: mbedTLS -0x2880: X509 - ..." ). When pk (may be NULL) is bound and
 * its last token signature failed, that error is returned (its detail is
 * already in h). BUF_TOO_SMALL codes map to HSMC_ERR_BUFFER, allocation
 * failures to HSMC_ERR_LIMIT, parse errors to HSMC_ERR_FORMAT, signature
 * verification failures to HSMC_ERR_SIGNATURE, others to HSMC_ERR_INTERNAL.
 * ret >= 0 gives HSMC_OK.
 */
hsmc_err_t hsmc_x509_fail(hsmc_t *h, const mbedtls_pk_context *pk, int ret, const char *what);

/* ---- Random numbers for mbedTLS ----------------------------------------- */

/**
 * f_rng for mbedTLS straight from the token (C_GenerateRandom per call);
 * p_rng is the hsmc_t. Returns 0 or MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED.
 */
int hsmc_token_random(void *h, unsigned char *out, size_t len);

/**
 * A CTR_DRBG (AES-256) seeded and reseeded from the token RNG: the f_rng
 * of TLS handshakes, which ask for random bytes many times (one token call
 * each would be slow on a real HSM). Caller-owned; h must stay open.
 */
typedef struct hsmc_rng {
    mbedtls_ctr_drbg_context drbg;
    hsmc_t *h;
} hsmc_rng_t;

/** Seed rng from the token. @return HSMC_OK, HSMC_ERR_ARG, token errors. */
hsmc_err_t hsmc_rng_init(hsmc_rng_t *rng, hsmc_t *h);
/** Wipe rng. Accepts NULL. */
void hsmc_rng_free(hsmc_rng_t *rng);
/** f_rng for mbedTLS; p_rng is the hsmc_rng_t. */
int hsmc_rng_random(void *rng, unsigned char *out, size_t len);

/* ---- PEM ------------------------------------------------------------------ */

/**
 * DER -> PEM with the label (e.g. "CERTIFICATE", "CERTIFICATE REQUEST",
 * "X509 CRL"): BEGIN line, base64 in 64-column lines, END line, each ending
 * in "\n", then a terminating NUL. *out_len is the text length without the
 * NUL, so out needs *out_len + 1 bytes (size-only pass with out NULL). der
 * may overlap out (e.g. DER written at the end of out, converted in place).
 * @return HSMC_OK; HSMC_ERR_ARG (NULL, empty DER, empty or control
 *   characters in label); HSMC_ERR_BUFFER (*out_len set).
 */
hsmc_err_t hsmc_pem_write(const char *label, const uint8_t *der, size_t len, char *out,
                          size_t cap, size_t *out_len);

/**
 * PEM -> DER: the first "-----BEGIN <label>-----" block of pem (len bytes,
 * a trailing NUL is allowed; text before the block is skipped), up to its
 * matching END line. label NULL accepts any label. Size-only pass with der
 * NULL. @return HSMC_OK; HSMC_ERR_ARG; HSMC_ERR_FORMAT (no such block, no
 * END line (truncated), encrypted-PEM headers, bad base64, empty body);
 * HSMC_ERR_BUFFER (*der_len set).
 */
hsmc_err_t hsmc_pem_read(const char *label, const char *pem, size_t len, uint8_t *der,
                         size_t cap, size_t *der_len);

/* ---- Subject alternative names ------------------------------------------ */

/** Subject alternative name kinds (GeneralName choices). */
typedef enum hsmc_san_type {
    HSMC_SAN_DNS = 1, /**< dNSName: LDH labels, "*" allowed as the whole first label */
    HSMC_SAN_IP,      /**< iPAddress: dotted IPv4 or IPv6 text (RFC 4291 forms) */
    HSMC_SAN_URI,     /**< uniformResourceIdentifier: "scheme:..." printable ASCII */
    HSMC_SAN_EMAIL    /**< rfc822Name: local@domain, printable ASCII */
} hsmc_san_type_t;

/** One subject alternative name. */
typedef struct hsmc_san {
    hsmc_san_type_t type;
    const char *value; /**< NUL-terminated text */
} hsmc_san_t;

/**
 * DER of the subjectAltName extension value (GeneralNames SEQUENCE) for
 * `count` names, checking each. Size-only pass with out NULL.
 * @return HSMC_OK; HSMC_ERR_ARG (NULL, count 0, unknown type, empty
 *   value); HSMC_ERR_FORMAT (a malformed value; *bad, if not NULL, gets
 *   its index); HSMC_ERR_BUFFER (*out_len set).
 */
hsmc_err_t hsmc_san_der(const hsmc_san_t *san, size_t count, uint8_t *out, size_t cap,
                        size_t *out_len, size_t *bad);

/* ---- CSRs --------------------------------------------------------------- */

/** Output encodings. */
typedef enum hsmc_x509_fmt {
    HSMC_X509_DER = 0,
    HSMC_X509_PEM = 1 /**< NUL-terminated text, *out_len without the NUL */
} hsmc_x509_fmt_t;

/* Key usage bits requested in a CSR: mbedTLS's MBEDTLS_X509_KU_* values. */
#define HSMC_KU_DIGITAL_SIGNATURE 0x80u
#define HSMC_KU_NON_REPUDIATION 0x40u
#define HSMC_KU_KEY_ENCIPHERMENT 0x20u
#define HSMC_KU_DATA_ENCIPHERMENT 0x10u
#define HSMC_KU_KEY_AGREEMENT 0x08u
#define HSMC_KU_KEY_CERT_SIGN 0x04u
#define HSMC_KU_CRL_SIGN 0x02u
#define HSMC_KU_ENCIPHER_ONLY 0x01u
#define HSMC_KU_DECIPHER_ONLY 0x8000u

/* Extended key usage purposes requested in a CSR. */
#define HSMC_EKU_SERVER_AUTH 0x01u      /**< id-kp-serverAuth */
#define HSMC_EKU_CLIENT_AUTH 0x02u      /**< id-kp-clientAuth */
#define HSMC_EKU_CODE_SIGNING 0x04u     /**< id-kp-codeSigning */
#define HSMC_EKU_EMAIL_PROTECTION 0x08u /**< id-kp-emailProtection */
#define HSMC_EKU_TIME_STAMPING 0x10u    /**< id-kp-timeStamping */
#define HSMC_EKU_OCSP_SIGNING 0x20u     /**< id-kp-OCSPSigning */

/**
 * What a CSR asks for. Give the subject either as one string or as fields
 * (not both). Requests are requests: the CA decides what it certifies.
 */
typedef struct hsmc_csr_req {
    /** mbedTLS name syntax, written in the order given:
     *  "C=DE,O=Acme,OU=Gateways,CN=dev-0001" (keys CN, O, OU, C, ST, L,
     *  serialNumber, emailAddress, DC, ...; "\\," for a comma in a value;
     *  each attribute type once). */
    const char *subject;
    /* Fields, written in the order C, ST, L, O, OU, CN, serialNumber;
     * NULL or "" leaves one out. Commas are escaped for you; a backslash
     * cannot be represented (mbedTLS 2.28) and is refused. */
    const char *c;             /**< countryName: two letters */
    const char *st;            /**< stateOrProvinceName */
    const char *l;             /**< localityName */
    const char *o;             /**< organizationName */
    const char *ou;            /**< organizationalUnitName */
    const char *cn;            /**< commonName */
    const char *serial_number; /**< serialNumber (the device serial, not the certificate's) */
    const hsmc_san_t *san;     /**< subject alternative names, or NULL */
    size_t san_count;
    unsigned key_usage;        /**< HSMC_KU_* bits; 0: no keyUsage request */
    unsigned ext_key_usage;    /**< HSMC_EKU_* bits; 0: no extKeyUsage request */
    hsmc_hash_t hash;          /**< NONE: SHA-384 for P-384, SHA-512 for P-521, else SHA-256 */
} hsmc_csr_req_t;

/** Zero every field (no subject, no SANs, default hash). */
void hsmc_csr_req_init(hsmc_csr_req_t *req);

/**
 * Create a PKCS#10 CSR signed in the token by `key` (bound for the call
 * with hsmc_pk_bind; one pool entry while it runs). RSA keys sign with
 * PKCS#1 v1.5.
 *
 * Sizes: ECDSA signatures vary by a few bytes, so the size-only pass (out
 * NULL) gives an upper bound computed from the inputs without using the
 * token; the created CSR is at most that long. A smaller buffer is tried,
 * and HSMC_ERR_BUFFER (with the bound in *out_len) is returned when the CSR
 * does not fit. out is also scratch for the subject and extensions.
 *
 * @return HSMC_OK; HSMC_ERR_ARG (NULL, empty subject, subject given twice,
 *   SAN count without array, unknown bits or format); HSMC_ERR_FORMAT
 *   (malformed subject string or field, malformed SAN, named in the
 *   detail); HSMC_ERR_UNSUPPORTED (SHA-1, key type); HSMC_ERR_BUFFER;
 *   the errors of hsmc_pk_bind and hsmc_sign_digest.
 */
hsmc_err_t hsmc_csr_create(hsmc_t *h, const hsmc_key_t *key, const hsmc_csr_req_t *req,
                           hsmc_x509_fmt_t fmt, uint8_t *out, size_t cap, size_t *out_len);

/* ---- TLS -------------------------------------------------------------- */

/** How the peer's certificate is checked (zero value: required). */
typedef enum hsmc_tls_verify {
    HSMC_TLS_VERIFY_REQUIRED = 0, /**< handshake fails without a valid peer chain
                                       (a server asks for and requires a client certificate) */
    HSMC_TLS_VERIFY_OPTIONAL = 1, /**< checked, result in mbedtls_ssl_get_verify_result */
    HSMC_TLS_VERIFY_NONE = 2      /**< not checked (a server does not ask for one) */
} hsmc_tls_verify_t;

/** TLS configuration of an endpoint with a token key. */
typedef struct hsmc_tls_cfg {
    int endpoint;              /**< MBEDTLS_SSL_IS_CLIENT (0) or MBEDTLS_SSL_IS_SERVER (1) */
    mbedtls_pk_context *key;   /**< bound by hsmc_pk_bind; NULL for a client without a certificate */
    mbedtls_x509_crt *chain;   /**< key's certificate first, then intermediates (with key) */
    mbedtls_x509_crt *ca;      /**< trust anchors for the peer's chain (not for VERIFY_NONE) */
    hsmc_tls_verify_t verify;  /**< peer certificate check */
    hsmc_rng_t *rng;           /**< seeded by hsmc_rng_init */
} hsmc_tls_cfg_t;

/** Zero cfg: client, verification required, nothing set. */
void hsmc_tls_cfg_init(hsmc_tls_cfg_t *cfg);

/**
 * Configure conf (caller-initialised with mbedtls_ssl_config_init) for
 * TLS 1.2 with the token key: defaults of mbedTLS, TLS 1.2 only, ECDHE key
 * exchange with AEAD ciphers only (the token key signs; it never decrypts
 * or does ECDH), own certificate chain + key, CA chain and verify mode,
 * random generator. conf keeps pointers to cfg's objects: they must
 * outlive it. Checks that the chain's first certificate holds the key's
 * public key. The caller adds what else it needs (hostname on the
 * mbedtls_ssl_context, ALPN, timeouts, debug) and frees conf itself.
 * @return HSMC_OK; HSMC_ERR_ARG (NULL, key not bound, key without chain,
 *   server without key, no CA with verification, bad endpoint);
 *   HSMC_ERR_KEY_USAGE (the certificate is not the key's); HSMC_ERR_INTERNAL
 *   (mbedTLS refused the defaults).
 */
hsmc_err_t hsmc_tls_setup(hsmc_t *h, mbedtls_ssl_config *conf, const hsmc_tls_cfg_t *cfg);

#ifdef __cplusplus
}
#endif

#endif /* HSMC_X509_H */
