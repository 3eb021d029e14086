/**
 * @file key.h
 * @brief Keys that never leave the token: generation with safe templates,
 *        purpose profiles, find-or-create, versioned rotation, import,
 *        public-key export, deletion.
 *
 * Templates (DESIGN.md section 4): token, private, sensitive, not
 * extractable, and only the usage flags the purpose needs; every other
 * usage flag is set FALSE explicitly (SoftHSM2 defaults CKA_DECRYPT and
 * CKA_UNWRAP to TRUE). After generation hsmc reads back CKA_LOCAL,
 * CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE and destroys a key where
 * they are wrong (HSMC_ERR_KEY_ATTRS). A key pair shares one CKA_ID.
 *
 * Versioned labels: `<base>-v0001`, `<base>-v0002`, ... "Latest" is the
 * highest version present; older versions stay for decryption until
 * deleted.
 */
#ifndef HSMC_KEY_H
#define HSMC_KEY_H

#include "hsmc/object.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Key algorithm and size. */
typedef enum hsmc_key_alg {
    HSMC_ALG_NONE = 0,
    HSMC_ALG_AES128,
    HSMC_ALG_AES192,
    HSMC_ALG_AES256,
    HSMC_ALG_RSA2048,
    HSMC_ALG_RSA3072,
    HSMC_ALG_RSA4096,
    HSMC_ALG_P256,
    HSMC_ALG_P384,
    HSMC_ALG_P521,
    HSMC_ALG_SECP256K1,
    HSMC_ALG_ED25519,
    HSMC_ALG_COUNT
} hsmc_key_alg_t;

/** What a key is for; decides the default algorithm and usage flags. */
typedef enum hsmc_purpose {
    HSMC_PURPOSE_NONE = 0,       /**< caller gives alg and usage */
    HSMC_PURPOSE_CA_ROOT,        /**< P-384, sign (certificates, CRLs) */
    HSMC_PURPOSE_CA_INTERMEDIATE,/**< P-256, sign */
    HSMC_PURPOSE_MTLS_SERVER,    /**< P-256, sign */
    HSMC_PURPOSE_MTLS_CLIENT,    /**< P-256, sign */
    HSMC_PURPOSE_SIGNING,        /**< P-256, sign */
    HSMC_PURPOSE_CONFIDENTIALITY,/**< RSA-3072, decrypt + unwrap (RSA-OAEP) */
    HSMC_PURPOSE_KEK,            /**< AES-256, wrap + unwrap only */
    HSMC_PURPOSE_DATA,           /**< AES-256, encrypt + decrypt only */
    HSMC_PURPOSE_COUNT
} hsmc_purpose_t;

/** How to make a key. */
typedef struct hsmc_key_spec {
    hsmc_key_alg_t alg;
    unsigned usage;          /**< HSMC_USE_* of the private/secret key */
    const uint8_t *id;       /**< CKA_ID; NULL: 16 random bytes from the token RNG */
    size_t id_len;
    int session;             /**< 1: session object (gone at close), for tests and probes */
} hsmc_key_spec_t;

/** A key: the private or secret object, and the public object of a pair. */
typedef struct hsmc_key {
    hsmc_obj_t priv;         /**< private key or secret key */
    hsmc_obj_t pub;          /**< public key (pairs only) */
    int has_pub;
    hsmc_key_alg_t alg;
    unsigned version;        /**< from a versioned label, 0 if none */
} hsmc_key_t;

/** Default spec of a purpose. @return HSMC_OK or HSMC_ERR_ARG. */
hsmc_err_t hsmc_purpose_spec(hsmc_purpose_t purpose, hsmc_key_spec_t *spec);
/** "ca_root", "mtls_client", ... */
const char *hsmc_purpose_name(hsmc_purpose_t purpose);
/** Parse a purpose name. @return HSMC_OK or HSMC_ERR_ARG. */
hsmc_err_t hsmc_purpose_parse(const char *name, hsmc_purpose_t *purpose);
/** "aes256", "rsa3072", "p256", "secp256k1", "ed25519", ... */
const char *hsmc_alg_name(hsmc_key_alg_t alg);
/** Parse an algorithm name. @return HSMC_OK or HSMC_ERR_ARG. */
hsmc_err_t hsmc_alg_parse(const char *name, hsmc_key_alg_t *alg);

/**
 * Generate a key in the token under `label`.
 * @return HSMC_OK; HSMC_ERR_ARG; HSMC_ERR_EXISTS (a key with that label
 *   exists); HSMC_ERR_UNSUPPORTED (token lacks the mechanism or curve,
 *   named in detail); HSMC_ERR_KEY_ATTRS (the token made a key whose
 *   CKA_LOCAL / CKA_ALWAYS_SENSITIVE / CKA_NEVER_EXTRACTABLE are wrong; it
 *   was destroyed); session and token errors. On failure no object is left.
 */
hsmc_err_t hsmc_key_generate(hsmc_t *h, const char *label, const hsmc_key_spec_t *spec,
                             hsmc_key_t *out);

/**
 * Open the key labelled `label` (private/secret object; public object with
 * the same CKA_ID when it is a pair).
 * @return HSMC_OK, HSMC_ERR_OBJECT_NOT_FOUND, HSMC_ERR_OBJECT_AMBIGUOUS, ...
 */
hsmc_err_t hsmc_key_open(hsmc_t *h, const char *label, hsmc_key_t *out);

/** Open `label`, or generate it with the purpose's spec. `created` (optional) says which. */
hsmc_err_t hsmc_key_find_or_create(hsmc_t *h, const char *label, hsmc_purpose_t purpose,
                                   hsmc_key_t *out, int *created);

/** Destroy the key's objects (private/secret and public). */
hsmc_err_t hsmc_key_delete(hsmc_t *h, hsmc_key_t *key);

/**
 * Destroy the public keys labelled `label` that have no private key on the
 * token: what a key-pair generation cut short (a killed process, a token
 * pulled) can leave, and why hsmc_key_open() then finds nothing while
 * hsmc_key_generate() and hsmc_key_find_or_create() report
 * HSMC_ERR_EXISTS. A public key stays when a private key with its CKA_ID
 * exists (under any label, as hsmc_key_open() pairs them; for an empty
 * CKA_ID, one with the same label). Private and secret keys, certificates
 * and other objects are never touched. A public key stored on purpose
 * without its private key (a peer's verification key) under `label` is
 * removed too: name the label of the interrupted key. Needs the user
 * login (private keys are invisible without it).
 * @param removed optional: how many were destroyed, also when an error
 *   stopped the call part-way.
 * @return HSMC_OK (none found is HSMC_OK with *removed = 0); HSMC_ERR_ARG
 *   (label NULL, empty or longer than HSMC_MAX_LABEL_LEN);
 *   HSMC_ERR_NOT_LOGGED_IN; session and token errors.
 */
hsmc_err_t hsmc_key_remove_orphans(hsmc_t *h, const char *label, unsigned *removed);

/**
 * Import a software key as sensitive, non-extractable token objects.
 * `data` is raw bytes for AES, or a DER private key (PKCS#8, SEC1 or
 * PKCS#1) for EC/RSA. CKA_LOCAL is FALSE on imported keys by definition.
 */
hsmc_err_t hsmc_key_import(hsmc_t *h, const char *label, const hsmc_key_spec_t *spec,
                           const uint8_t *data, size_t len, hsmc_key_t *out);

/**
 * The public key as SubjectPublicKeyInfo DER (size-only pass with der NULL).
 * @return HSMC_OK, HSMC_ERR_ARG (secret key), HSMC_ERR_BUFFER (*len set), ...
 */
hsmc_err_t hsmc_key_export_pub(hsmc_t *h, const hsmc_key_t *key, uint8_t *der, size_t cap,
                               size_t *len);

/* ---- Versions ------------------------------------------------------------ */

/** Maximum versions of one base label hsmc tracks in a plan. */
#ifndef HSMC_MAX_VERSIONS
#define HSMC_MAX_VERSIONS 16
#endif

/** Write "<base>-vNNNN" into out. @return HSMC_OK, HSMC_ERR_ARG, HSMC_ERR_BUFFER. */
hsmc_err_t hsmc_key_version_label(const char *base, unsigned version, char *out, size_t cap);

/** Open the highest version of `base`. */
hsmc_err_t hsmc_key_latest(hsmc_t *h, const char *base, hsmc_key_t *out);

/** What a rotation would do. */
typedef struct hsmc_rotation_plan {
    unsigned versions[HSMC_MAX_VERSIONS]; /**< versions present, ascending */
    size_t count;
    unsigned next;                        /**< the version rotation would create */
    char next_label[HSMC_MAX_LABEL_LEN + 1];
} hsmc_rotation_plan_t;

/** Describe a rotation of `base` without changing anything. */
hsmc_err_t hsmc_key_plan(hsmc_t *h, const char *base, hsmc_rotation_plan_t *plan);

/** Create the next version of `base` with `spec` (older versions stay). */
hsmc_err_t hsmc_key_rotate(hsmc_t *h, const char *base, const hsmc_key_spec_t *spec,
                           hsmc_key_t *out);

#ifdef __cplusplus
}
#endif

#endif /* HSMC_KEY_H */
