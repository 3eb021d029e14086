/*
 * Internals shared by the key-operation sources (hsmc_crypto.c,
 * hsmc_sign.c, hsmc_cipher.c). Not installed.
 */
#ifndef HSMC_CRYPTO_INT_H
#define HSMC_CRYPTO_INT_H

#include <stdint.h>

#include "hsmc_internal.h"

/* PKCS#11 takes input data, parameters and templates as non-const pointers;
 * tokens only read them. The uintptr_t step keeps -Wcast-qual quiet. */
#define HSMC_CIN(p) ((void *)(uintptr_t)(const void *)(p))

/* PKCS#11 3.0 numbers, for headers older than p11-kit 0.24's. */
#ifndef CKK_EC_EDWARDS
#define CKK_EC_EDWARDS 0x40UL
#endif
#ifndef CKM_EDDSA
#define CKM_EDDSA 0x1057UL
#endif

/* Longest digest (SHA-512). */
#define HSMC_HASH_MAX 64u
/* Largest RSA modulus hsmc works with (RSA-8192), in bytes. */
#define HSMC_RSA_MAX_BYTES 1024u
/* Largest ECDSA field size (P-521), in bytes. */
#define HSMC_ECDSA_MAX_N 66u

/* Meaning of a failed call for the operation in hand (hsmc_kop_t.rvc). */
#define HSMC_RVC_PARAMS 0x1u  /* mechanism set-up: a refused parameter is UNSUPPORTED */
#define HSMC_RVC_DECRYPT 0x2u /* data errors mean HSMC_ERR_DECRYPT */
#define HSMC_RVC_VERIFY 0x4u  /* signature errors mean HSMC_ERR_SIGNATURE */

/* One key operation in progress: what to name in messages, and the state
 * needed to end its session correctly. */
typedef struct hsmc_kop {
    const char *fn;        /* public function */
    const char *what;      /* mechanism in words, e.g. "RSA-OAEP-SHA256" */
    const hsmc_obj_t *key; /* key named in messages (may be NULL) */
    const char *call;      /* the PKCS#11 call that ran last */
    unsigned rvc;          /* HSMC_RVC_* for `call` */
    int dirty;             /* an operation may still be active on the session */
} hsmc_kop_t;

/* Single-part data calls (hsmc__data_call). */
typedef enum hsmc_dcall {
    HSMC_DC_ENCRYPT,
    HSMC_DC_DECRYPT,
    HSMC_DC_SIGN,
    HSMC_DC_DIGEST,
    HSMC_DC_VERIFY /* out = the signature, *out_len its length (both input) */
} hsmc_dcall_t;

/** Prepare `op` for `fn` on `key` (may be NULL). */
void hsmc__kop_init(hsmc_kop_t *op, const char *fn, const char *what, const hsmc_obj_t *key);

/**
 * Check `o` before anything reaches the token: a found object of class
 * `cls`, key type `kt` (CK_UNAVAILABLE_INFORMATION: any) with every usage
 * bit in `use`. @return HSMC_OK, HSMC_ERR_ARG (missing object, wrong class
 * or type), HSMC_ERR_KEY_USAGE (a usage flag is FALSE); the detail names
 * the key label and the attribute.
 */
hsmc_err_t hsmc__key_use(hsmc_t *h, const char *fn, const hsmc_obj_t *o, CK_OBJECT_CLASS cls,
                         CK_KEY_TYPE kt, unsigned use);

/** The public-key object of a key (its pair half, or the key itself), or NULL. */
const hsmc_obj_t *hsmc__key_pub(const hsmc_key_t *key);

/**
 * Borrow a session in which the handles of `a` and `b` (either may be NULL)
 * are valid: objects found before a recovery are looked up again
 * (hsmc_obj_refresh on a copy, since keys are passed const).
 */
hsmc_err_t hsmc__op_begin(hsmc_t *h, hsmc_sess_t *s, const hsmc_obj_t *a, CK_OBJECT_HANDLE *ha,
                          const hsmc_obj_t *b, CK_OBJECT_HANDLE *hb);

/**
 * End the session after `rv` from op->call. Losses go to hsmc_session_end
 * (HSMC_RETRY after a recovery); a session that may hold an active
 * operation is closed; other failures become the error op->rvc gives them,
 * with a detail naming op->fn, the call, the mechanism and the key.
 */
hsmc_err_t hsmc__op_end(hsmc_sess_t *s, const hsmc_kop_t *op, CK_RV rv);

/**
 * C_Encrypt / C_Decrypt / C_Sign / C_Digest / C_Verify in one part, named
 * in op (op->call, and op->rvc as the call's failures mean: decryption,
 * signature or neither). A failed call is repeated once:
 * CKR_OPERATION_NOT_INITIALIZED (or success) shows the operation ended;
 * otherwise op->dirty is set. Empty input is passed as a valid pointer.
 * @return the first call's result.
 */
CK_RV hsmc__data_call(hsmc_t *h, CK_SESSION_HANDLE s, hsmc_kop_t *op, hsmc_dcall_t kind,
                      const uint8_t *in, size_t len, uint8_t *out, CK_ULONG *out_len);

/**
 * A single-part operation as one session unit, run again after a
 * recovery: C_EncryptInit / C_DecryptInit / C_SignInit / C_DigestInit /
 * C_VerifyInit (by kind) with mechanism m on op->key (NULL: no key, as for
 * a digest), then hsmc__data_call. *olen: in, the output room the token is
 * given (HSMC_DC_VERIFY: the signature length); out, what the token gave.
 * op comes from hsmc__kop_init. @return as hsmc__op_begin / hsmc__op_end.
 */
hsmc_err_t hsmc__op_single(hsmc_t *h, hsmc_kop_t *op, hsmc_dcall_t kind, CK_MECHANISM *m,
                           const uint8_t *in, size_t len, uint8_t *out, CK_ULONG *olen);

/**
 * Size hsmc needs for key `o` of type `kt`: the ECDSA field size, the EdDSA
 * signature size or the RSA modulus size, in bytes. Taken from `alg` when it
 * is known, else read from the token (CKA_EC_PARAMS / CKA_MODULUS) in its
 * own session unit. @return HSMC_OK; HSMC_ERR_UNSUPPORTED (unknown curve);
 * token errors.
 */
hsmc_err_t hsmc__key_size(hsmc_t *h, const char *fn, const hsmc_obj_t *o, CK_KEY_TYPE kt,
                          hsmc_key_alg_t alg, size_t *n);

/**
 * RSA encryption with the public-key object `obj` (already checked): input
 * at most modulus - padding bytes, output the modulus size (size-only pass
 * with out NULL). Shared by hsmc_rsa_encrypt and RSA-OAEP hsmc_wrap_bytes.
 */
hsmc_err_t hsmc__rsa_enc_run(hsmc_t *h, const char *fn, hsmc_key_alg_t kalg, const hsmc_obj_t *obj,
                             hsmc_rsa_pad_t pad, const uint8_t *pt, size_t len, uint8_t *out,
                             size_t cap, size_t *out_len);

/**
 * RSA decryption with the private-key object `obj` (already checked). out
 * needs room for the modulus size and is wiped on failure; *out_len is the
 * plaintext length. Shared by hsmc_rsa_decrypt and hsmc_unwrap_bytes.
 */
hsmc_err_t hsmc__rsa_dec_run(hsmc_t *h, const char *fn, hsmc_key_alg_t kalg, const hsmc_obj_t *obj,
                             hsmc_rsa_pad_t pad, const uint8_t *ct, size_t len, uint8_t *out,
                             size_t cap, size_t *out_len);

/** 1 when n fits a CK_ULONG. */
int hsmc__fits(size_t n);

/** "SHA-256", ... ("none" for HSMC_HASH_NONE, "?" when unknown). */
const char *hsmc__hash_name(hsmc_hash_t hash);
/** CKM_SHA256, ...; CK_UNAVAILABLE_INFORMATION when unknown. */
CK_MECHANISM_TYPE hsmc__hash_ckm(hsmc_hash_t hash);
/** CKG_MGF1_SHA256, ...; 0 when unknown. */
CK_RSA_PKCS_MGF_TYPE hsmc__hash_mgf(hsmc_hash_t hash);

#endif /* HSMC_CRYPTO_INT_H */
