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

/* CK_GCM_PARAMS as PKCS#11 2.40 first published it (no ulIvBits), still
 * expected by some tokens. Layout 1 is p11-kit's CK_GCM_PARAMS. */
typedef struct hsmc_gcm_params_v2 {
    CK_BYTE_PTR pIv;
    CK_ULONG ulIvLen;
    CK_BYTE_PTR pAAD;
    CK_ULONG ulAADLen;
    CK_ULONG ulTagBits;
} hsmc_gcm_params_v2_t;

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
            op.call = "C_Encrypt";
            op.rvc = 0;
            olen = (CK_ULONG)need;
            rv = hsmc__data_call(h, s.handle, HSMC_DC_ENCRYPT, pt, len, out, &olen, &op.dirty);
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
            op.call = "C_Decrypt";
            op.rvc = HSMC_RVC_DECRYPT;
            olen = (CK_ULONG)len;
            rv = hsmc__data_call(h, s.handle, HSMC_DC_DECRYPT, in, len, out, &olen, &op.dirty);
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

/* Mechanism of an RSA padding; *overhead is what the padding takes from
 * the modulus. */
static hsmc_err_t hsmc_rsa_pad(hsmc_t *h, const char *fn, hsmc_rsa_pad_t pad, CK_MECHANISM *m,
                               CK_RSA_PKCS_OAEP_PARAMS *oaep, size_t *overhead,
                               const char **what)
{
    memset(oaep, 0, sizeof *oaep);
    oaep->source = CKZ_DATA_SPECIFIED;
    m->pParameter = oaep;
    m->ulParameterLen = sizeof *oaep;
    m->mechanism = CKM_RSA_PKCS_OAEP;
    switch (pad) {
    case HSMC_RSA_OAEP_SHA1:
        oaep->hashAlg = CKM_SHA_1;
        oaep->mgf = CKG_MGF1_SHA1;
        *overhead = 2u * 20u + 2u;
        *what = "RSA-OAEP-SHA1";
        return HSMC_OK;
    case HSMC_RSA_OAEP_SHA256:
        oaep->hashAlg = CKM_SHA256;
        oaep->mgf = CKG_MGF1_SHA256;
        *overhead = 2u * 32u + 2u;
        *what = "RSA-OAEP-SHA256";
        return HSMC_OK;
    case HSMC_RSA_PKCS1_V15:
        m->mechanism = CKM_RSA_PKCS;
        m->pParameter = NULL;
        m->ulParameterLen = 0;
        *overhead = 11u;
        *what = "RSA-PKCS1-v1.5 encryption";
        return HSMC_OK;
    default:
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: unknown RSA padding %d", fn, (int)pad);
    }
}

/* hsmc__rsa_enc_run (hsmc_crypto_int.h). */
HSMC_NOINLINE hsmc_err_t hsmc__rsa_enc_run(hsmc_t *h, const char *fn, hsmc_key_alg_t kalg,
                                                 const hsmc_obj_t *obj, hsmc_rsa_pad_t pad,
                                                 const uint8_t *pt, size_t len, uint8_t *out,
                                                 size_t cap, size_t *out_len)
{
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_MECHANISM m;
    CK_OBJECT_HANDLE ho = CK_INVALID_HANDLE;
    CK_ULONG olen = 0;
    const char *what = "";
    size_t k, overhead = 0;
    hsmc_kop_t op;
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv;

    err = hsmc_rsa_pad(h, fn, pad, &m, &oaep, &overhead, &what);
    if (err != HSMC_OK)
        return err;
    err = hsmc__key_size(h, fn, obj, CKK_RSA, kalg, &k);
    if (err != HSMC_OK)
        return err;
    if (k <= overhead || len > k - overhead)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: %s with the %u-bit key '%s' carries at most %u bytes, not %u", fn,
                          what, (unsigned)(8u * k), obj->label,
                          (unsigned)(k > overhead ? k - overhead : 0u), (unsigned)len);
    *out_len = k;
    if (out == NULL)
        return HSMC_OK;
    if (cap < k)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: the ciphertext of key '%s' takes %u bytes; the buffer has %u", fn,
                          obj->label, (unsigned)k, (unsigned)cap);
    hsmc__kop_init(&op, fn, what, obj);
    memset(&s, 0, sizeof s);
    do {
        err = hsmc__op_begin(h, &s, obj, &ho, NULL, NULL);
        if (err != HSMC_OK)
            return err;
        op.call = "C_EncryptInit";
        op.rvc = HSMC_RVC_PARAMS;
        op.dirty = 0;
        rv = h->fl->C_EncryptInit(s.handle, &m, ho);
        if (rv == CKR_OK) {
            op.call = "C_Encrypt";
            op.rvc = 0;
            olen = (CK_ULONG)k;
            rv = hsmc__data_call(h, s.handle, HSMC_DC_ENCRYPT, pt, len, out, &olen, &op.dirty);
        }
        err = hsmc__op_end(&s, &op, rv);
    } while (err == HSMC_RETRY);
    if (err == HSMC_OK && olen != (CK_ULONG)k)
        err = hsmc__fail(h, HSMC_ERR_TOKEN, CKR_OK, "%s: C_Encrypt gave %lu bytes, not %u", fn,
                         (unsigned long)olen, (unsigned)k);
    return err;
}

/* hsmc__rsa_dec_run (hsmc_crypto_int.h). */
HSMC_NOINLINE hsmc_err_t hsmc__rsa_dec_run(hsmc_t *h, const char *fn, hsmc_key_alg_t kalg,
                                                 const hsmc_obj_t *obj, hsmc_rsa_pad_t pad,
                                                 const uint8_t *ct, size_t len, uint8_t *out,
                                                 size_t cap, size_t *out_len)
{
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_MECHANISM m;
    CK_OBJECT_HANDLE ho = CK_INVALID_HANDLE;
    CK_ULONG olen = 0;
    const char *what = "";
    size_t k, overhead = 0;
    hsmc_kop_t op;
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv;

    err = hsmc_rsa_pad(h, fn, pad, &m, &oaep, &overhead, &what);
    if (err != HSMC_OK)
        return err;
    err = hsmc__key_size(h, fn, obj, CKK_RSA, kalg, &k);
    if (err != HSMC_OK)
        return err;
    if (len != k)
        return hsmc__fail(h, HSMC_ERR_DECRYPT, CKR_OK,
                          "%s: the ciphertext is %u bytes; key '%s' makes %u-byte ciphertexts",
                          fn, (unsigned)len, obj->label, (unsigned)k);
    *out_len = k;
    if (out == NULL)
        return HSMC_OK;
    if (cap < k)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: RSA decryption with key '%s' needs room for %u bytes (the modulus "
                          "size); the buffer has %u",
                          fn, obj->label, (unsigned)k, (unsigned)cap);
    hsmc__kop_init(&op, fn, what, obj);
    memset(&s, 0, sizeof s);
    do {
        err = hsmc__op_begin(h, &s, obj, &ho, NULL, NULL);
        if (err != HSMC_OK)
            return err;
        op.call = "C_DecryptInit";
        op.rvc = HSMC_RVC_PARAMS;
        op.dirty = 0;
        rv = h->fl->C_DecryptInit(s.handle, &m, ho);
        if (rv == CKR_OK) {
            op.call = "C_Decrypt";
            op.rvc = HSMC_RVC_DECRYPT;
            olen = (CK_ULONG)cap;
            rv = hsmc__data_call(h, s.handle, HSMC_DC_DECRYPT, ct, len, out, &olen, &op.dirty);
        }
        err = hsmc__op_end(&s, &op, rv);
    } while (err == HSMC_RETRY);
    if (err == HSMC_OK && olen > (CK_ULONG)(k - overhead))
        err = hsmc__fail(h, HSMC_ERR_TOKEN, CKR_OK,
                         "%s: C_Decrypt gave %lu bytes, more than %s can carry", fn,
                         (unsigned long)olen, what);
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
