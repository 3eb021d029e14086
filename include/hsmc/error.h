/**
 * @file error.h
 * @brief hsmc error codes.
 *
 * Every hsmc function returns hsmc_err_t: 0 is success, every failure a
 * specific negative value. The context (hsmc_t) also keeps the last
 * PKCS#11 return value and a short detail text; see hsmc_last_rv() and
 * hsmc_detail() in token.h.
 */
#ifndef HSMC_ERROR_H
#define HSMC_ERROR_H

#include <p11-kit/pkcs11.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hsmc_err {
    HSMC_OK = 0,                      /**< success */
    HSMC_ERR_ARG = -1,                /**< an argument is NULL, empty or out of range */
    HSMC_ERR_BUFFER = -2,             /**< the output buffer is too small; the needed size was returned */
    HSMC_ERR_STATE = -3,              /**< the context is not open, or already open */
    HSMC_ERR_CONFIG = -4,             /**< the configuration is contradictory or incomplete */
    HSMC_ERR_LIMIT = -5,              /**< the token reported more than a compile-time limit allows */
    HSMC_ERR_URI = -6,                /**< the PKCS#11 URI is malformed or uses an unknown attribute */
    HSMC_ERR_MODULE_LOAD = -7,        /**< the module file could not be loaded (missing, unreadable, wrong architecture) */
    HSMC_ERR_MODULE_INVALID = -8,     /**< the file loaded but is not a PKCS#11 module (no usable C_GetFunctionList) */
    HSMC_ERR_MODULE_INIT = -9,        /**< C_Initialize of the module failed */
    HSMC_ERR_TOKEN_NOT_FOUND = -10,   /**< no token matches the selection */
    HSMC_ERR_TOKEN_AMBIGUOUS = -11,   /**< more than one token matches the selection */
    HSMC_ERR_TOKEN_NOT_PRESENT = -12, /**< the token was removed and did not come back */
    HSMC_ERR_PIN_SOURCE = -13,        /**< the PIN could not be read (missing file, empty, unset variable, too long) */
    HSMC_ERR_PIN_INCORRECT = -14,     /**< the token rejected the PIN (not retried) */
    HSMC_ERR_PIN_LOCKED = -15,        /**< the user PIN is locked; the security officer must reset it */
    HSMC_ERR_PIN_FINAL_TRY = -16,     /**< one wrong PIN would lock the token; login refused */
    HSMC_ERR_PIN_EXPIRED = -17,       /**< the PIN must be changed before use */
    HSMC_ERR_PIN_REFUSED = -18,       /**< a PIN was given where it must not be (command line) */
    HSMC_ERR_NOT_LOGGED_IN = -19,     /**< the operation needs a login and no PIN source was given */
    HSMC_ERR_SESSION = -20,           /**< a session could not be opened */
    HSMC_ERR_BUSY = -21,              /**< every pool session stayed busy for HSMC_SESSION_WAIT_MS */
    HSMC_ERR_RECOVERY = -22,          /**< a lost session/token could not be recovered within HSMC_RECOVER_RETRIES */
    HSMC_ERR_OBJECT_NOT_FOUND = -23,  /**< no object matches the lookup */
    HSMC_ERR_OBJECT_AMBIGUOUS = -24,  /**< more than one object matches the lookup (count in detail) */
    HSMC_ERR_UNSUPPORTED = -25,       /**< the token lacks the mechanism or function (named in detail) */
    HSMC_ERR_TOKEN = -26,             /**< the token returned another error (CK_RV in hsmc_last_rv) */
    HSMC_ERR_IO = -27,                /**< reading or writing a file or terminal failed */
    HSMC_ERR_PORT = -28,              /**< the port cannot do this on this platform (e.g. no terminal) */
    HSMC_ERR_INTERNAL = -29,          /**< an internal invariant failed; please report it */
    HSMC_ERR_FORMAT = -30,            /**< input is not well-formed or violates hsmc's strict CBOR/COSE rules */
    HSMC_ERR_EXISTS = -31,            /**< an object with that label already exists */
    HSMC_ERR_KEY_ATTRS = -32,         /**< the token made a key with unsafe attributes (destroyed) */
    HSMC_ERR_KEY_USAGE = -33,         /**< the key is not allowed this operation (usage flag, type) */
    HSMC_ERR_SIGNATURE = -34,         /**< the signature does not verify */
    HSMC_ERR_DECRYPT = -35,           /**< decryption failed: wrong key, tampered data or wrong AAD */
    HSMC_ERR_TRUNCATED = -36,         /**< the stream ended before its last chunk */
    HSMC_ERR_SEQUENCE = -37,          /**< a stream chunk is out of order, from another stream, or after the last one */
    HSMC_ERR_POLICY = -38,            /**< refused by the certificate policy (role, root gate, names, validity); the rule is in the detail */
    HSMC_ERR_CSR = -39,               /**< the CSR is malformed: not DER or PEM, truncated, or bad attributes */
    HSMC_ERR_CSR_EXT = -40,           /**< the CSR asks for CA powers (cA=TRUE, keyCertSign, cRLSign) its profile does not grant */
    HSMC_ERR_KEY_WEAK = -41,          /**< the key is too weak for the profile (RSA size or EC curve) */
    HSMC_ERR_CERT_KEY = -42,          /**< the certificate's public key is not the key's */
    HSMC_ERR_AUDIT_CHAIN = -43        /**< the audit chain is broken: a record was removed, reordered, inserted or repeated */
} hsmc_err_t;

/** Lowest (most negative) error value; for tables and tests. */
#define HSMC_ERR_MIN HSMC_ERR_AUDIT_CHAIN

/**
 * One-line English description of an error code, for users.
 * @return a static string; never NULL (unknown codes give "unknown error").
 */
const char *hsmc_strerror(hsmc_err_t err);

/**
 * Symbolic name of an error code, e.g. "HSMC_ERR_PIN_INCORRECT".
 * @return a static string; never NULL.
 */
const char *hsmc_err_name(hsmc_err_t err);

/**
 * Symbolic name of a PKCS#11 return value, e.g. "CKR_PIN_INCORRECT".
 * @return a static string; vendor or unknown values give "CKR_VENDOR_DEFINED"
 *         or "CKR_UNKNOWN".
 */
const char *hsmc_ckr_name(CK_RV rv);

#ifdef __cplusplus
}
#endif

#endif /* HSMC_ERROR_H */
