/*
 * Encryption with token keys (crypto.h): AES-GCM with a 96-bit IV from the
 * token RNG, and RSA encryption (public key) / decryption (in the token).
 * Key wrapping is in hsmc_wrap.c.
 *
 * Output sizes are worked out before the data call, so a short buffer is
 * refused before the token sees it: PKCS#11 leaves an operation active after
 * CKR_BUFFER_TOO_SMALL, and a pool session must not carry one to its next
 * user. Decryption therefore asks for room for the whole input (AES-GCM) or
 * the modulus (RSA), as tokens may (SoftHSM2 does), and wipes the output
 * when it fails.
 */
#include <stdint.h>
#include <string.h>

#include "hsmc_crypto_int.h"

typedef union hsmc_gcm_params {
    CK_GCM_PARAMS v1;
    hsmc_gcm_params_v2_t v2;
} hsmc_gcm_params_t;

/* ---- AES-GCM ---------------------------------------------------------------- */

/*
 * C_EncryptInit / C_DecryptInit for AES-GCM with the parameters in `p`
 * (kept by the caller until the data call is done). The context's layout is
 * used when known; otherwise layout 1, then 2 when the token refuses the
 * parameters. *layout receives the one accepted.
 */
static CK_RV hsmc_gcm_init(hsmc_t *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k, int enc,
                           hsmc_gcm_params_t *p, CK_BYTE *iv, const uint8_t *aad,
                           size_t aad_len, unsigned *layout)
{
    CK_MECHANISM m;
    unsigned l = h->gcm_layout, last;
    CK_RV rv = CKR_MECHANISM_PARAM_INVALID;

    last = l != 0u ? l : 2u;
    if (l == 0u)
        l = 1u;
    for (; l <= last; l++) {
        memset(p, 0, sizeof *p);
        m.mechanism = CKM_AES_GCM;
        if (l == 1u) {
            p->v1.pIv = iv;
            p->v1.ulIvLen = HSMC_GCM_IV_LEN;
            p->v1.ulIvBits = 8u * HSMC_GCM_IV_LEN;
            p->v1.pAAD = (CK_BYTE_PTR)HSMC_CIN(aad);
            p->v1.ulAADLen = (CK_ULONG)aad_len;
            p->v1.ulTagBits = 8u * HSMC_GCM_TAG_LEN;
            m.pParameter = &p->v1;
            m.ulParameterLen = sizeof p->v1;
        } else {
            p->v2.pIv = iv;
            p->v2.ulIvLen = HSMC_GCM_IV_LEN;
            p->v2.pAAD = (CK_BYTE_PTR)HSMC_CIN(aad);
            p->v2.ulAADLen = (CK_ULONG)aad_len;
            p->v2.ulTagBits = 8u * HSMC_GCM_TAG_LEN;
            m.pParameter = &p->v2;
            m.ulParameterLen = sizeof p->v2;
        }
        rv = enc ? h->fl->C_EncryptInit(s, &m, k) : h->fl->C_DecryptInit(s, &m, k);
        if (rv == CKR_OK) {
            *layout = l;
            return rv;
        }
        if (rv != CKR_MECHANISM_PARAM_INVALID && rv != CKR_ARGUMENTS_BAD)
            break;
    }
    return rv;
}

/* Arguments common to both directions. */
static hsmc_err_t hsmc_gcm_args(hsmc_t *h, const char *fn, const hsmc_key_t *key,
                                const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                                const void *iv, const size_t *out_len, unsigned use)
{
    if (key == NULL || iv == NULL || out_len == NULL || (aad == NULL && aad_len > 0) ||
        (in == NULL && len > 0))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: key, iv and out_len must be given, and data for non-zero lengths",
                          fn);
    if (len > (size_t)-1 - HSMC_GCM_TAG_LEN || !hsmc__fits(len + HSMC_GCM_TAG_LEN) ||
        !hsmc__fits(aad_len))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: the input is too long", fn);
    return hsmc__key_use(h, fn, &key->priv, CKO_SECRET_KEY, CKK_AES, use);
}

/*
 * hsmc_gcm_encrypt (crypto.h). An empty plaintext is allowed: the output is
 * the tag alone, which authenticates the AAD.
 */
hsmc_err_t hsmc_gcm_encrypt(hsmc_t *h, const hsmc_key_t *key, const uint8_t *aad,
                            size_t aad_len, const uint8_t *pt, size_t len,
                            uint8_t iv[HSMC_GCM_IV_LEN], uint8_t *out, size_t cap,
                            size_t *out_len)
{
    static const char fn[] = "hsmc_gcm_encrypt";
    hsmc_gcm_params_t p;
    CK_OBJECT_HANDLE hk = CK_INVALID_HANDLE;
    CK_ULONG olen = 0;
    unsigned layout = 0;
    size_t need;
    hsmc_kop_t op;
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv;

    if (h == NULL)
        return HSMC_ERR_ARG;
    err = hsmc_gcm_args(h, fn, key, aad, aad_len, pt, len, iv, out_len, HSMC_USE_ENCRYPT);
    if (err != HSMC_OK)
        return err;
    need = len + HSMC_GCM_TAG_LEN;
    *out_len = need;
    if (out == NULL)
        return HSMC_OK;
    if (cap < need)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: %u bytes encrypt to %u (ciphertext and tag); the buffer has %u",
                          fn, (unsigned)len, (unsigned)need, (unsigned)cap);
    hsmc__kop_init(&op, fn, "AES-GCM", &key->priv);
    memset(&s, 0, sizeof s);
    do {
        err = hsmc__op_begin(h, &s, &key->priv, &hk, NULL, NULL);
        if (err != HSMC_OK)
            return err;
        op.call = "C_GenerateRandom";
        op.rvc = 0;
        op.dirty = 0;
        rv = h->fl->C_GenerateRandom(s.handle, iv, HSMC_GCM_IV_LEN);
        if (rv == CKR_OK) {
            op.call = "C_EncryptInit";
            op.rvc = HSMC_RVC_PARAMS;
            rv = hsmc_gcm_init(h, s.handle, hk, 1, &p, iv, aad, aad_len, &layout);
        }
        if (rv == CKR_OK) {
            olen = (CK_ULONG)need;
            rv = hsmc__data_call(h, s.handle, &op, HSMC_DC_ENCRYPT, pt, len, out, &olen);
        }
        err = hsmc__op_end(&s, &op, rv);
    } while (err == HSMC_RETRY);
    if (err == HSMC_OK && olen != (CK_ULONG)need)
        err = hsmc__fail(h, HSMC_ERR_TOKEN, CKR_OK, "%s: C_Encrypt gave %lu bytes, not %u", fn,
                         (unsigned long)olen, (unsigned)need);
    if (err != HSMC_OK) {
        hsmc__wipe(out, need);
        return err;
    }
    if (h->gcm_layout == 0u)
        h->gcm_layout = (unsigned char)layout;
    return HSMC_OK;
}

/*
 * hsmc_gcm_decrypt (crypto.h). out needs room for `len` bytes (the whole
 * input, as SoftHSM2 asks); *out_len receives len - 16. The size-only pass
 * gives `len`. On failure out is wiped: no unauthenticated plaintext leaks.
 */
hsmc_err_t hsmc_gcm_decrypt(hsmc_t *h, const hsmc_key_t *key, const uint8_t *aad,
                            size_t aad_len, const uint8_t iv[HSMC_GCM_IV_LEN],
                            const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                            size_t *out_len)
{
    static const char fn[] = "hsmc_gcm_decrypt";
    hsmc_gcm_params_t p;
    CK_BYTE ivc[HSMC_GCM_IV_LEN]; /* writable: PKCS#11 lets tokens write pIv */
    CK_OBJECT_HANDLE hk = CK_INVALID_HANDLE;
    CK_ULONG olen = 0;
    unsigned layout = 0;
    hsmc_kop_t op;
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv;

    if (h == NULL)
        return HSMC_ERR_ARG;
    err = hsmc_gcm_args(h, fn, key, aad, aad_len, in, len, iv, out_len, HSMC_USE_DECRYPT);
    if (err != HSMC_OK)
        return err;
    if (len < HSMC_GCM_TAG_LEN)
        return hsmc__fail(h, HSMC_ERR_DECRYPT, CKR_OK,
                          "%s: %u bytes cannot be AES-GCM output (the tag alone is %u)", fn,
                          (unsigned)len, HSMC_GCM_TAG_LEN);
    *out_len = len;
    if (out == NULL)
        return HSMC_OK;
    if (cap < len)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: decrypting %u bytes needs a buffer of %u (tokens may use room for "
                          "the tag); it has %u",
                          fn, (unsigned)len, (unsigned)len, (unsigned)cap);
    memcpy(ivc, iv, sizeof ivc);
    hsmc__kop_init(&op, fn, "AES-GCM decryption", &key->priv);
    memset(&s, 0, sizeof s);
    do {
        err = hsmc__op_begin(h, &s, &key->priv, &hk, NULL, NULL);
        if (err != HSMC_OK)
            return err;
        op.call = "C_DecryptInit";
        op.rvc = HSMC_RVC_PARAMS;
        op.dirty = 0;
        rv = hsmc_gcm_init(h, s.handle, hk, 0, &p, ivc, aad, aad_len, &layout);
        if (rv == CKR_OK) {
            olen = (CK_ULONG)len;
            rv = hsmc__data_call(h, s.handle, &op, HSMC_DC_DECRYPT, in, len, out, &olen);
        }
        err = hsmc__op_end(&s, &op, rv);
    } while (err == HSMC_RETRY);
    if (err == HSMC_OK && olen != (CK_ULONG)(len - HSMC_GCM_TAG_LEN))
        err = hsmc__fail(h, HSMC_ERR_TOKEN, CKR_OK, "%s: C_Decrypt gave %lu bytes, not %u", fn,
                         (unsigned long)olen, (unsigned)(len - HSMC_GCM_TAG_LEN));
    if (err != HSMC_OK) {
        hsmc__wipe(out, len);
        return err;
    }
    if (h->gcm_layout == 0u)
        h->gcm_layout = (unsigned char)layout;
    *out_len = (size_t)olen;
    return HSMC_OK;
}

/* ---- RSA encryption ---------------------------------------------------------- */

/* What RSA encryption with one key and padding takes: the mechanism, what
 * the padding takes from the modulus, the modulus size (hsmc__key_size). */
typedef struct hsmc_rsa_plan {
    CK_MECHANISM m;
    CK_RSA_PKCS_OAEP_PARAMS oaep; /* m's parameters (OAEP) */
    size_t overhead;
    size_t k;         /* modulus bytes */
    const char *what; /* for messages */
} hsmc_rsa_plan_t;

/* The mechanism of padding `pad` and what it takes from the modulus. */
static hsmc_err_t hsmc_rsa_plan(hsmc_t *h, const char *fn, hsmc_rsa_pad_t pad, hsmc_rsa_plan_t *p)
{
    memset(&p->oaep, 0, sizeof p->oaep);
    p->oaep.source = CKZ_DATA_SPECIFIED;
    p->m.pParameter = &p->oaep;
    p->m.ulParameterLen = sizeof p->oaep;
    p->m.mechanism = CKM_RSA_PKCS_OAEP;
    switch (pad) {
    case HSMC_RSA_OAEP_SHA1:
        p->oaep.hashAlg = CKM_SHA_1;
        p->oaep.mgf = CKG_MGF1_SHA1;
        p->overhead = 2u * 20u + 2u;
        p->what = "RSA-OAEP-SHA1";
        break;
    case HSMC_RSA_OAEP_SHA256:
        p->oaep.hashAlg = CKM_SHA256;
        p->oaep.mgf = CKG_MGF1_SHA256;
        p->overhead = 2u * 32u + 2u;
        p->what = "RSA-OAEP-SHA256";
        break;
    case HSMC_RSA_PKCS1_V15:
        p->m.mechanism = CKM_RSA_PKCS;
        p->m.pParameter = NULL;
        p->m.ulParameterLen = 0;
        p->overhead = 11u;
        p->what = "RSA-PKCS1-v1.5 encryption";
        break;
    default:
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: unknown RSA padding %d", fn, (int)pad);
    }
    return HSMC_OK;
}

/* hsmc__rsa_enc_run (hsmc_crypto_int.h). */
HSMC_NOINLINE hsmc_err_t hsmc__rsa_enc_run(hsmc_t *h, const char *fn, hsmc_key_alg_t kalg,
                                                 const hsmc_obj_t *obj, hsmc_rsa_pad_t pad,
                                                 const uint8_t *pt, size_t len, uint8_t *out,
                                                 size_t cap, size_t *out_len)
{
    hsmc_rsa_plan_t p;
    CK_ULONG olen;
    hsmc_kop_t op;
    hsmc_err_t err;

    err = hsmc_rsa_plan(h, fn, pad, &p);
    if (err == HSMC_OK)
        err = hsmc__key_size(h, fn, obj, CKK_RSA, kalg, &p.k);
    if (err != HSMC_OK)
        return err;
    if (p.k <= p.overhead || len > p.k - p.overhead)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: %s with the %u-bit key '%s' carries at most %u bytes, not %u", fn,
                          p.what, (unsigned)(8u * p.k), obj->label,
                          (unsigned)(p.k > p.overhead ? p.k - p.overhead : 0u), (unsigned)len);
    *out_len = p.k;
    if (out == NULL)
        return HSMC_OK;
    if (cap < p.k)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: the ciphertext of key '%s' takes %u bytes; the buffer has %u", fn,
                          obj->label, (unsigned)p.k, (unsigned)cap);
    hsmc__kop_init(&op, fn, p.what, obj);
    olen = (CK_ULONG)p.k;
    err = hsmc__op_single(h, &op, HSMC_DC_ENCRYPT, &p.m, pt, len, out, &olen);
    if (err == HSMC_OK && olen != (CK_ULONG)p.k)
        err = hsmc__fail(h, HSMC_ERR_TOKEN, CKR_OK, "%s: C_Encrypt gave %lu bytes, not %u", fn,
                         (unsigned long)olen, (unsigned)p.k);
    return err;
}

/* hsmc__rsa_dec_run (hsmc_crypto_int.h). */
HSMC_NOINLINE hsmc_err_t hsmc__rsa_dec_run(hsmc_t *h, const char *fn, hsmc_key_alg_t kalg,
                                                 const hsmc_obj_t *obj, hsmc_rsa_pad_t pad,
                                                 const uint8_t *ct, size_t len, uint8_t *out,
                                                 size_t cap, size_t *out_len)
{
    hsmc_rsa_plan_t p;
    CK_ULONG olen;
    hsmc_kop_t op;
    hsmc_err_t err;

    err = hsmc_rsa_plan(h, fn, pad, &p);
    if (err == HSMC_OK)
        err = hsmc__key_size(h, fn, obj, CKK_RSA, kalg, &p.k);
    if (err != HSMC_OK)
        return err;
    if (len != p.k)
        return hsmc__fail(h, HSMC_ERR_DECRYPT, CKR_OK,
                          "%s: the ciphertext is %u bytes; key '%s' makes %u-byte ciphertexts",
                          fn, (unsigned)len, obj->label, (unsigned)p.k);
    *out_len = p.k;
    if (out == NULL)
        return HSMC_OK;
    if (cap < p.k)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: RSA decryption with key '%s' needs room for %u bytes (the modulus "
                          "size); the buffer has %u",
                          fn, obj->label, (unsigned)p.k, (unsigned)cap);
    hsmc__kop_init(&op, fn, p.what, obj);
    olen = (CK_ULONG)cap;
    err = hsmc__op_single(h, &op, HSMC_DC_DECRYPT, &p.m, ct, len, out, &olen);
    if (err == HSMC_OK && olen > (CK_ULONG)(p.k - p.overhead))
        err = hsmc__fail(h, HSMC_ERR_TOKEN, CKR_OK,
                         "%s: C_Decrypt gave %lu bytes, more than %s can carry", fn,
                         (unsigned long)olen, p.what);
    if (err != HSMC_OK) {
        hsmc__wipe(out, cap);
        return err;
    }
    *out_len = (size_t)olen;
    return HSMC_OK;
}

hsmc_err_t hsmc_rsa_encrypt(hsmc_t *h, const hsmc_key_t *key, hsmc_rsa_pad_t pad,
                            const uint8_t *pt, size_t len, uint8_t *out, size_t cap,
                            size_t *out_len)
{
    static const char fn[] = "hsmc_rsa_encrypt";
    const hsmc_obj_t *obj;
    hsmc_err_t err;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (key == NULL || out_len == NULL || pt == NULL || len == 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: key, out_len and a non-empty plaintext must be given", fn);
    obj = hsmc__key_pub(key);
    if (obj == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: key '%s' has no public-key object", fn,
                          key->priv.label);
    err = hsmc__key_use(h, fn, obj, CKO_PUBLIC_KEY, CKK_RSA, HSMC_USE_ENCRYPT);
    if (err != HSMC_OK)
        return err;
    return hsmc__rsa_enc_run(h, fn, key->alg, obj, pad, pt, len, out, cap, out_len);
}

hsmc_err_t hsmc_rsa_decrypt(hsmc_t *h, const hsmc_key_t *key, hsmc_rsa_pad_t pad,
                            const uint8_t *ct, size_t len, uint8_t *out, size_t cap,
                            size_t *out_len)
{
    static const char fn[] = "hsmc_rsa_decrypt";
    hsmc_err_t err;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (key == NULL || out_len == NULL || ct == NULL || len == 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: key, out_len and a non-empty ciphertext must be given", fn);
    err = hsmc__key_use(h, fn, &key->priv, CKO_PRIVATE_KEY, CKK_RSA, HSMC_USE_DECRYPT);
    if (err != HSMC_OK)
        return err;
    return hsmc__rsa_dec_run(h, fn, key->alg, &key->priv, pad, ct, len, out, cap, out_len);
}
