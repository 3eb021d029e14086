/**
 * @file probe.h
 * @brief What a token can really do, per hsmc operation.
 *
 * Mechanism lists lie in both directions (a listed mechanism may reject the
 * parameters hsmc needs, e.g. RSA-OAEP with SHA-256 on SoftHSM2). The probe
 * therefore tries each operation with temporary session keys and reports
 * the mechanism hsmc would use. Tokens that cannot make session objects
 * (tpm2-pkcs11) get list-based answers marked HSMC_CAP_LISTED.
 */
#ifndef HSMC_PROBE_H
#define HSMC_PROBE_H

#include "hsmc/token.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Operations hsmc offers. */
typedef enum hsmc_op {
    HSMC_OP_RANDOM = 0,     /**< C_GenerateRandom */
    HSMC_OP_DIGEST_SHA256,  /**< CKM_SHA256 */
    HSMC_OP_KEYGEN_AES,     /**< CKM_AES_KEY_GEN */
    HSMC_OP_KEYGEN_EC,      /**< CKM_EC_KEY_PAIR_GEN, P-256 */
    HSMC_OP_KEYGEN_RSA,     /**< CKM_RSA_PKCS_KEY_PAIR_GEN */
    HSMC_OP_SIGN_ECDSA,     /**< CKM_ECDSA over a host digest */
    HSMC_OP_SIGN_RSA_PKCS,  /**< CKM_RSA_PKCS with DigestInfo */
    HSMC_OP_SIGN_RSA_PSS,   /**< CKM_RSA_PKCS_PSS, SHA-256 */
    HSMC_OP_AES_GCM,        /**< CKM_AES_GCM (layout in hsmc_caps_t.gcm_layout) */
    HSMC_OP_AES_KEY_WRAP,   /**< CKM_AES_KEY_WRAP (RFC 3394) */
    HSMC_OP_AES_KEY_WRAP_PAD, /**< RFC 5649: CKM_AES_KEY_WRAP_KWP or 0x210A */
    HSMC_OP_AES_CBC_PAD,    /**< CKM_AES_CBC_PAD */
    HSMC_OP_RSA_OAEP_SHA1,  /**< CKM_RSA_PKCS_OAEP, SHA-1/MGF1-SHA1 */
    HSMC_OP_RSA_OAEP_SHA256,/**< CKM_RSA_PKCS_OAEP, SHA-256/MGF1-SHA256 */
    HSMC_OP_EDDSA,          /**< CKM_EDDSA, Ed25519 */
    HSMC_OP_COUNT
} hsmc_op_t;

/** What the probe found for one operation. */
typedef enum hsmc_cap_status {
    HSMC_CAP_UNKNOWN = 0, /**< not probed */
    HSMC_CAP_WORKS,       /**< a real call succeeded */
    HSMC_CAP_LISTED,      /**< listed; could not be tried (no session keys) */
    HSMC_CAP_BROKEN,      /**< listed, but the call failed (rv says how) */
    HSMC_CAP_MISSING      /**< not listed and not working */
} hsmc_cap_status_t;

typedef struct hsmc_cap {
    hsmc_cap_status_t status;
    CK_MECHANISM_TYPE mech; /**< the mechanism hsmc uses for it */
    CK_RV rv;               /**< the failing call's result for BROKEN/MISSING */
} hsmc_cap_t;

typedef struct hsmc_caps {
    hsmc_cap_t op[HSMC_OP_COUNT];
    unsigned gcm_layout;    /**< 1 CK_GCM_PARAMS with ulIvBits, 2 without, 0 none */
} hsmc_caps_t;

/** hsmc_probe flags */
#define HSMC_PROBE_LIST_ONLY 0x1u /**< do not try calls; only read the lists */

/**
 * Probe the selected token. Temporary keys are session objects, destroyed
 * before return (also on failure). Needs a login for key generation; without
 * one, key-based operations are reported from the list only. Remembers the
 * GCM parameter layout in the context.
 * @return HSMC_OK (per-op results in caps), HSMC_ERR_ARG, HSMC_ERR_STATE,
 *         session errors.
 */
hsmc_err_t hsmc_probe(hsmc_t *h, unsigned flags, hsmc_caps_t *caps);

/** "random", "sign-ecdsa", "aes-gcm", ... */
const char *hsmc_op_name(hsmc_op_t op);
/** "works", "listed", "broken", "missing", "unknown" */
const char *hsmc_cap_status_name(hsmc_cap_status_t st);
/** "CKM_ECDSA", ... ("CKM_VENDOR_DEFINED" / "CKM_UNKNOWN" otherwise) */
const char *hsmc_ckm_name(CK_MECHANISM_TYPE mech);

#ifdef __cplusplus
}
#endif

#endif /* HSMC_PROBE_H */
