/*
 * Shared parts of the key operations (crypto.h): key checks made before
 * anything reaches the token, the session unit with stale-handle refresh,
 * what a token result means for each operation, key sizes; host hashing
 * (mbedTLS), COSE algorithm ids and the token digest.
 *
 * Signatures live in hsmc_sign.c; AES-GCM, key wrapping and RSA encryption
 * in hsmc_cipher.c.
 */
#include <stdint.h>
#include <string.h>

#include <mbedtls/md.h>

#include "hsmc_crypto_int.h"

/* ---- Hashes ---------------------------------------------------------------- */

size_t hsmc_hash_len(hsmc_hash_t hash)
{
    switch (hash) {
    case HSMC_HASH_SHA1:
        return 20;
    case HSMC_HASH_SHA224:
        return 28;
    case HSMC_HASH_SHA256:
        return 32;
    case HSMC_HASH_SHA384:
        return 48;
    case HSMC_HASH_SHA512:
        return 64;
    default:
        return 0;
    }
}

const char *hsmc__hash_name(hsmc_hash_t hash)
{
    switch (hash) {
    case HSMC_HASH_NONE:
        return "none";
    case HSMC_HASH_SHA1:
        return "SHA-1";
    case HSMC_HASH_SHA224:
        return "SHA-224";
    case HSMC_HASH_SHA256:
        return "SHA-256";
    case HSMC_HASH_SHA384:
        return "SHA-384";
    case HSMC_HASH_SHA512:
        return "SHA-512";
    default:
        return "?";
    }
}

CK_MECHANISM_TYPE hsmc__hash_ckm(hsmc_hash_t hash)
{
    switch (hash) {
    case HSMC_HASH_SHA1:
        return CKM_SHA_1;
    case HSMC_HASH_SHA224:
        return CKM_SHA224;
    case HSMC_HASH_SHA256:
        return CKM_SHA256;
    case HSMC_HASH_SHA384:
        return CKM_SHA384;
    case HSMC_HASH_SHA512:
        return CKM_SHA512;
    default:
        return CK_UNAVAILABLE_INFORMATION;
    }
}

CK_RSA_PKCS_MGF_TYPE hsmc__hash_mgf(hsmc_hash_t hash)
{
    switch (hash) {
    case HSMC_HASH_SHA1:
        return CKG_MGF1_SHA1;
    case HSMC_HASH_SHA224:
        return CKG_MGF1_SHA224;
    case HSMC_HASH_SHA256:
        return CKG_MGF1_SHA256;
    case HSMC_HASH_SHA384:
        return CKG_MGF1_SHA384;
    case HSMC_HASH_SHA512:
        return CKG_MGF1_SHA512;
    default:
        return 0;
    }
}

/*
 * hsmc_hash (crypto.h). The generic mbedtls_md interface is the same in
 * mbedTLS 2.28 and 3.x; a hash left out of the integrator's mbedTLS
 * configuration is HSMC_ERR_UNSUPPORTED.
 */
hsmc_err_t hsmc_hash(hsmc_hash_t hash, const uint8_t *msg, size_t len, uint8_t *out)
{
    static const uint8_t empty = 0;
    const mbedtls_md_info_t *info;
    mbedtls_md_type_t type;

    if (out == NULL || (msg == NULL && len > 0))
        return HSMC_ERR_ARG;
    switch (hash) {
    case HSMC_HASH_SHA1:
        type = MBEDTLS_MD_SHA1;
        break;
    case HSMC_HASH_SHA224:
        type = MBEDTLS_MD_SHA224;
        break;
    case HSMC_HASH_SHA256:
        type = MBEDTLS_MD_SHA256;
        break;
    case HSMC_HASH_SHA384:
        type = MBEDTLS_MD_SHA384;
        break;
    case HSMC_HASH_SHA512:
        type = MBEDTLS_MD_SHA512;
        break;
    default:
        return HSMC_ERR_ARG;
    }
    info = mbedtls_md_info_from_type(type);
    if (info == NULL)
        return HSMC_ERR_UNSUPPORTED;
    if (mbedtls_md(info, msg != NULL ? msg : &empty, len, out) != 0)
        return HSMC_ERR_INTERNAL;
    return HSMC_OK;
}

/* ---- COSE signature algorithms -------------------------------------------- */

typedef struct hsmc_cose_sig {
    int cose;
    hsmc_sig_scheme_t scheme;
    hsmc_hash_t hash;
} hsmc_cose_sig_t;

static const hsmc_cose_sig_t hsmc_cose_sigs[] = {
    {HSMC_COSE_ES256, HSMC_SIG_ECDSA, HSMC_HASH_SHA256},
    {HSMC_COSE_ES384, HSMC_SIG_ECDSA, HSMC_HASH_SHA384},
    {HSMC_COSE_ES512, HSMC_SIG_ECDSA, HSMC_HASH_SHA512},
    {HSMC_COSE_EDDSA, HSMC_SIG_EDDSA, HSMC_HASH_NONE},
    {HSMC_COSE_PS256, HSMC_SIG_RSA_PSS, HSMC_HASH_SHA256},
    {HSMC_COSE_PS384, HSMC_SIG_RSA_PSS, HSMC_HASH_SHA384},
    {HSMC_COSE_PS512, HSMC_SIG_RSA_PSS, HSMC_HASH_SHA512},
    {HSMC_COSE_RS256, HSMC_SIG_RSA_PKCS1, HSMC_HASH_SHA256},
    {HSMC_COSE_RS384, HSMC_SIG_RSA_PKCS1, HSMC_HASH_SHA384},
    {HSMC_COSE_RS512, HSMC_SIG_RSA_PKCS1, HSMC_HASH_SHA512},
};
#define HSMC_COSE_SIGS (sizeof hsmc_cose_sigs / sizeof hsmc_cose_sigs[0])

hsmc_err_t hsmc_sig_alg_from_cose(int cose_alg, hsmc_sig_alg_t *alg)
{
    size_t i;

    if (alg == NULL)
        return HSMC_ERR_ARG;
    for (i = 0; i < HSMC_COSE_SIGS; i++) {
        if (hsmc_cose_sigs[i].cose == cose_alg) {
            alg->scheme = hsmc_cose_sigs[i].scheme;
            alg->hash = hsmc_cose_sigs[i].hash;
            return HSMC_OK;
        }
    }
    return HSMC_ERR_UNSUPPORTED;
}

int hsmc_sig_alg_to_cose(hsmc_sig_alg_t alg)
{
    size_t i;

    for (i = 0; i < HSMC_COSE_SIGS; i++) {
        if (hsmc_cose_sigs[i].scheme == alg.scheme && hsmc_cose_sigs[i].hash == alg.hash)
            return hsmc_cose_sigs[i].cose;
    }
    return 0;
}

/* ---- Key checks ------------------------------------------------------------ */

int hsmc__fits(size_t n)
{
    CK_ULONG c = (CK_ULONG)n;
    return (size_t)c == n;
}

void hsmc__kop_init(hsmc_kop_t *op, const char *fn, const char *what, const hsmc_obj_t *key)
{
    op->fn = fn;
    op->what = what;
    op->key = key;
    op->call = fn;
    op->rvc = 0;
    op->dirty = 0;
}

/* The attribute behind a usage bit, and the verb for messages. */
static const char *hsmc_use_attr(unsigned use, const char **verb)
{
    switch (use) {
    case HSMC_USE_SIGN:
        *verb = "sign";
        return "CKA_SIGN";
    case HSMC_USE_VERIFY:
        *verb = "verify";
        return "CKA_VERIFY";
    case HSMC_USE_ENCRYPT:
        *verb = "encrypt";
        return "CKA_ENCRYPT";
    case HSMC_USE_DECRYPT:
        *verb = "decrypt";
        return "CKA_DECRYPT";
    case HSMC_USE_WRAP:
        *verb = "wrap";
        return "CKA_WRAP";
    case HSMC_USE_UNWRAP:
        *verb = "unwrap";
        return "CKA_UNWRAP";
    case HSMC_USE_DERIVE:
        *verb = "derive";
        return "CKA_DERIVE";
    default:
        *verb = "be used so";
        return "a usage attribute";
    }
}

hsmc_err_t hsmc__key_use(hsmc_t *h, const char *fn, const hsmc_obj_t *o, CK_OBJECT_CLASS cls,
                         CK_KEY_TYPE kt, unsigned use)
{
    const char *verb, *attr;
    unsigned missing, bit;

    if (o == NULL || o->handle == CK_INVALID_HANDLE)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: the key has no %s object (open or generate it first)", fn,
                          hsmc_class_name(cls));
    if (o->cls != cls)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: key '%s' is a %s; this needs a %s", fn,
                          o->label, hsmc_class_name(o->cls), hsmc_class_name(cls));
    if (kt != CK_UNAVAILABLE_INFORMATION && o->key_type != kt)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: key '%s' is an %s key; this operation needs an %s key", fn,
                          o->label, hsmc_key_type_name(o->key_type), hsmc_key_type_name(kt));
    missing = use & ~o->usage;
    if (missing != 0u) {
        bit = missing & (0u - missing); /* name the lowest missing flag */
        attr = hsmc_use_attr(bit, &verb);
        return hsmc__fail(h, HSMC_ERR_KEY_USAGE, CKR_OK, "%s: key '%s' may not %s (%s is FALSE)",
                          fn, o->label, verb, attr);
    }
    return HSMC_OK;
}

const hsmc_obj_t *hsmc__key_pub(const hsmc_key_t *key)
{
    if (key->has_pub && key->pub.handle != CK_INVALID_HANDLE)
        return &key->pub;
    if (key->priv.cls == CKO_PUBLIC_KEY && key->priv.handle != CK_INVALID_HANDLE)
        return &key->priv;
    return NULL;
}

/* ---- Session unit ------------------------------------------------------------ */

/*
 * A handle for `o` valid in the current generation, and that generation.
 * The copy lives in this frame only (keys are passed const, so the caller's
 * key keeps its old handle and is looked up again on each call until the
 * caller opens it again).
 */
HSMC_NOINLINE static hsmc_err_t hsmc_fresh(hsmc_t *h, const hsmc_obj_t *o,
                                           CK_OBJECT_HANDLE *handle, unsigned long *gen)
{
    hsmc_obj_t copy;
    hsmc_err_t err;

    if (o->generation == h->generation) {
        *handle = o->handle;
        *gen = o->generation;
        return HSMC_OK;
    }
    copy = *o;
    err = hsmc_obj_refresh(h, &copy);
    if (err != HSMC_OK)
        return err;
    *handle = copy.handle;
    *gen = copy.generation;
    return HSMC_OK;
}

hsmc_err_t hsmc__op_begin(hsmc_t *h, hsmc_sess_t *s, const hsmc_obj_t *a, CK_OBJECT_HANDLE *ha,
                          const hsmc_obj_t *b, CK_OBJECT_HANDLE *hb)
{
    unsigned long ga = 0, gb = 0;
    unsigned tries;
    hsmc_err_t err;

    for (tries = 0;; tries++) {
        if (a != NULL) {
            err = hsmc_fresh(h, a, ha, &ga);
            if (err != HSMC_OK)
                return err;
        }
        if (b != NULL) {
            err = hsmc_fresh(h, b, hb, &gb);
            if (err != HSMC_OK)
                return err;
        }
        err = hsmc_session_begin(h, s);
        if (err != HSMC_OK)
            return err;
        /* A recovery between the lookup and the session makes the handles
         * stale again (they could even name another object): look again. */
        if ((a == NULL || ga == s->generation) && (b == NULL || gb == s->generation))
            return HSMC_OK;
        (void)hsmc_session_end(s, CKR_OK, NULL);
        if (tries >= HSMC_RECOVER_RETRIES)
            return hsmc__fail(h, HSMC_ERR_RECOVERY, CKR_OK,
                              "key handles went stale %u times in a row: the token keeps "
                              "being recovered",
                              tries + 1u);
    }
}

/* What a failed call means for the operation (HSMC_OK: nothing special). */
static hsmc_err_t hsmc_rv_meaning(CK_RV rv, unsigned rvc)
{
    switch (rv) {
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_FUNCTION_NOT_SUPPORTED:
        return HSMC_ERR_UNSUPPORTED;
    case CKR_ARGUMENTS_BAD:
        /* At set-up only the mechanism can be wrong: SoftHSM2 answers this
         * to RSA-OAEP with SHA-256. */
        return (rvc & HSMC_RVC_PARAMS) ? HSMC_ERR_UNSUPPORTED : HSMC_OK;
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_WRAPPING_KEY_TYPE_INCONSISTENT:
    case CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_UNEXTRACTABLE:
    case CKR_KEY_NOT_WRAPPABLE:
        return HSMC_ERR_KEY_USAGE;
    case CKR_SIGNATURE_INVALID:
    case CKR_SIGNATURE_LEN_RANGE:
        return (rvc & HSMC_RVC_VERIFY) ? HSMC_ERR_SIGNATURE : HSMC_OK;
    case CKR_ENCRYPTED_DATA_INVALID:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
    case CKR_WRAPPED_KEY_INVALID:
    case CKR_WRAPPED_KEY_LEN_RANGE:
    case CKR_GENERAL_ERROR: /* SoftHSM2's answer to a bad tag or padding */
    case CKR_FUNCTION_FAILED:
        return (rvc & HSMC_RVC_DECRYPT) ? HSMC_ERR_DECRYPT : HSMC_OK;
    default:
        return HSMC_OK;
    }
}

hsmc_err_t hsmc__op_end(hsmc_sess_t *s, const hsmc_kop_t *op, CK_RV rv)
{
    hsmc_t *h = s->h;
    const char *label = op->key != NULL ? op->key->label : "";
    hsmc_err_t err;

    if (rv == CKR_OK || hsmc__rv_is_loss(rv))
        return hsmc_session_end(s, rv, op->call);
    if (op->dirty) {
        /* The next user of this session would find the operation still
         * active: close it, and let hsmc reopen the pool (a recovery). */
        HSMC_LOG(h, HSMC_LOG_WARN, "%s: %s left an operation active; closing the session",
                 op->fn, op->call);
        (void)h->fl->C_CloseSession(s->handle);
        (void)hsmc_session_end(s, CKR_SESSION_CLOSED, op->call);
    } else {
        (void)hsmc_session_end(s, CKR_OK, op->call);
    }
    err = hsmc_rv_meaning(rv, op->rvc);
    switch (err) {
    case HSMC_ERR_UNSUPPORTED:
        return hsmc__fail(h, err, rv, "%s: %s: the token does not support %s (%s)", op->fn,
                          op->call, op->what, hsmc_ckr_name(rv));
    case HSMC_ERR_KEY_USAGE:
        return hsmc__fail(h, err, rv, "%s: %s: the token refuses key '%s' for %s (%s)", op->fn,
                          op->call, label, op->what, hsmc_ckr_name(rv));
    case HSMC_ERR_SIGNATURE:
        return hsmc__fail(h, err, rv, "%s: the %s signature does not verify with key '%s' (%s)",
                          op->fn, op->what, label, hsmc_ckr_name(rv));
    case HSMC_ERR_DECRYPT:
        return hsmc__fail(h, err, rv,
                          "%s: %s with key '%s' failed: wrong key, tampered data or wrong AAD "
                          "(%s: %s)",
                          op->fn, op->what, label, op->call, hsmc_ckr_name(rv));
    default:
        return hsmc_map_rv(h, rv, op->call);
    }
}

/* The Init call of `kind` (k is ignored for a digest), named in op. */
static CK_RV hsmc_init_call(CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE s, hsmc_kop_t *op,
                            hsmc_dcall_t kind, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
    switch (kind) {
    case HSMC_DC_ENCRYPT:
        op->call = "C_EncryptInit";
        return fl->C_EncryptInit(s, m, k);
    case HSMC_DC_DECRYPT:
        op->call = "C_DecryptInit";
        return fl->C_DecryptInit(s, m, k);
    case HSMC_DC_SIGN:
        op->call = "C_SignInit";
        return fl->C_SignInit(s, m, k);
    case HSMC_DC_DIGEST:
        op->call = "C_DigestInit";
        return fl->C_DigestInit(s, m);
    case HSMC_DC_VERIFY:
        op->call = "C_VerifyInit";
        return fl->C_VerifyInit(s, m, k);
    default:
        return CKR_GENERAL_ERROR;
    }
}

/* One call of `kind`, named in op with what its failure means. */
static CK_RV hsmc_dcall(CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE s, hsmc_kop_t *op,
                        hsmc_dcall_t kind, CK_BYTE_PTR in, CK_ULONG len, CK_BYTE_PTR out,
                        CK_ULONG *out_len)
{
    switch (kind) {
    case HSMC_DC_ENCRYPT:
        op->call = "C_Encrypt";
        op->rvc = 0;
        return fl->C_Encrypt(s, in, len, out, out_len);
    case HSMC_DC_DECRYPT:
        op->call = "C_Decrypt";
        op->rvc = HSMC_RVC_DECRYPT;
        return fl->C_Decrypt(s, in, len, out, out_len);
    case HSMC_DC_SIGN:
        op->call = "C_Sign";
        op->rvc = 0;
        return fl->C_Sign(s, in, len, out, out_len);
    case HSMC_DC_DIGEST:
        op->call = "C_Digest";
        op->rvc = 0;
        return fl->C_Digest(s, in, len, out, out_len);
    case HSMC_DC_VERIFY:
        op->call = "C_Verify";
        op->rvc = HSMC_RVC_VERIFY;
        return fl->C_Verify(s, in, len, out, *out_len);
    default:
        return CKR_GENERAL_ERROR;
    }
}

CK_RV hsmc__data_call(hsmc_t *h, CK_SESSION_HANDLE s, hsmc_kop_t *op, hsmc_dcall_t kind,
                      const uint8_t *in, size_t len, uint8_t *out, CK_ULONG *out_len)
{
    static const CK_BYTE none = 0; /* some tokens refuse NULL even for 0 bytes */
    CK_BYTE_PTR p = (CK_BYTE_PTR)HSMC_CIN(in != NULL ? in : &none);
    CK_ULONG cap = *out_len, first;
    CK_RV rv, again;

    rv = hsmc_dcall(h->fl, s, op, kind, p, (CK_ULONG)len, out, out_len);
    if (rv == CKR_OK || hsmc__rv_is_loss(rv))
        return rv;
    /* A failed single-part call ends its operation, except
     * CKR_BUFFER_TOO_SMALL; some tokens keep it active anyway. */
    first = *out_len;
    *out_len = cap;
    again = hsmc_dcall(h->fl, s, op, kind, p, (CK_ULONG)len, out, out_len);
    if (again != CKR_OPERATION_NOT_INITIALIZED && again != CKR_OK)
        op->dirty = 1;
    *out_len = first;
    return rv;
}

hsmc_err_t hsmc__op_single(hsmc_t *h, hsmc_kop_t *op, hsmc_dcall_t kind, CK_MECHANISM *m,
                           const uint8_t *in, size_t len, uint8_t *out, CK_ULONG *olen)
{
    CK_OBJECT_HANDLE hk = CK_INVALID_HANDLE;
    CK_ULONG room = *olen;
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv;

    memset(&s, 0, sizeof s);
    do {
        err = hsmc__op_begin(h, &s, op->key, &hk, NULL, NULL);
        if (err != HSMC_OK)
            return err;
        op->rvc = HSMC_RVC_PARAMS;
        op->dirty = 0;
        rv = hsmc_init_call(h->fl, s.handle, op, kind, m, hk);
        if (rv == CKR_OK) {
            *olen = room;
            rv = hsmc__data_call(h, s.handle, op, kind, in, len, out, olen);
        }
        err = hsmc__op_end(&s, op, rv);
    } while (err == HSMC_RETRY);
    return err;
}

/* ---- Key sizes ------------------------------------------------------------- */

/* CKA_EC_PARAMS values: named-curve OIDs, and Edwards curves as PKCS#11 3.0
 * names them (PrintableString) or as RFC 8410 does (OID). */
static const uint8_t hsmc_ec_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t hsmc_ec_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t hsmc_ec_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const uint8_t hsmc_ec_k256[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};
static const uint8_t hsmc_ed25519_oid[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
static const uint8_t hsmc_ed448_oid[] = {0x06, 0x03, 0x2b, 0x65, 0x71};
static const uint8_t hsmc_ed25519_name[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd',
                                            's',  '2',  '5', '5', '1', '9'};
static const uint8_t hsmc_ed448_name[] = {0x13, 0x0a, 'e', 'd', 'w', 'a',
                                          'r',  'd',  's', '4', '4', '8'};

typedef struct hsmc_curve {
    const uint8_t *params;
    size_t len;
    CK_KEY_TYPE kt;
    size_t size; /* ECDSA: field bytes; EdDSA: signature bytes */
} hsmc_curve_t;

static const hsmc_curve_t hsmc_curves[] = {
    {hsmc_ec_p256, sizeof hsmc_ec_p256, CKK_EC, 32},
    {hsmc_ec_p384, sizeof hsmc_ec_p384, CKK_EC, 48},
    {hsmc_ec_p521, sizeof hsmc_ec_p521, CKK_EC, 66},
    {hsmc_ec_k256, sizeof hsmc_ec_k256, CKK_EC, 32},
    {hsmc_ed25519_oid, sizeof hsmc_ed25519_oid, CKK_EC_EDWARDS, 64},
    {hsmc_ed25519_name, sizeof hsmc_ed25519_name, CKK_EC_EDWARDS, 64},
    {hsmc_ed448_oid, sizeof hsmc_ed448_oid, CKK_EC_EDWARDS, 114},
    {hsmc_ed448_name, sizeof hsmc_ed448_name, CKK_EC_EDWARDS, 114},
};

/* Size from the algorithm, when it is known and fits the key type. */
static size_t hsmc_alg_size(hsmc_key_alg_t alg, CK_KEY_TYPE kt)
{
    switch (alg) {
    case HSMC_ALG_RSA2048:
        return kt == CKK_RSA ? 256 : 0;
    case HSMC_ALG_RSA3072:
        return kt == CKK_RSA ? 384 : 0;
    case HSMC_ALG_RSA4096:
        return kt == CKK_RSA ? 512 : 0;
    case HSMC_ALG_P256:
    case HSMC_ALG_SECP256K1:
        return kt == CKK_EC ? 32 : 0;
    case HSMC_ALG_P384:
        return kt == CKK_EC ? 48 : 0;
    case HSMC_ALG_P521:
        return kt == CKK_EC ? 66 : 0;
    case HSMC_ALG_ED25519:
        return kt == CKK_EC_EDWARDS ? 64 : 0;
    default:
        return 0;
    }
}

/* Read the size from the token: CKA_MODULUS length, or CKA_EC_PARAMS. */
HSMC_NOINLINE static CK_RV hsmc_size_read(CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE s,
                                          CK_OBJECT_HANDLE o, CK_KEY_TYPE kt, size_t *n)
{
    CK_BYTE params[16];
    CK_ATTRIBUTE t;
    CK_RV rv;
    size_t i;

    *n = 0;
    if (kt == CKK_RSA) {
        t.type = CKA_MODULUS;
        t.pValue = NULL;
        t.ulValueLen = 0;
        rv = fl->C_GetAttributeValue(s, o, &t, 1);
        if (rv == CKR_OK && t.ulValueLen != CK_UNAVAILABLE_INFORMATION &&
            t.ulValueLen <= HSMC_RSA_MAX_BYTES)
            *n = (size_t)t.ulValueLen;
        return rv;
    }
    t.type = CKA_EC_PARAMS;
    t.pValue = params;
    t.ulValueLen = sizeof params;
    rv = fl->C_GetAttributeValue(s, o, &t, 1);
    if (rv == CKR_BUFFER_TOO_SMALL || rv == CKR_ATTRIBUTE_TYPE_INVALID)
        return CKR_OK; /* not a curve hsmc knows: *n stays 0 */
    if (rv != CKR_OK || t.ulValueLen > sizeof params)
        return rv;
    for (i = 0; i < sizeof hsmc_curves / sizeof hsmc_curves[0]; i++) {
        if (hsmc_curves[i].kt == kt && hsmc_curves[i].len == (size_t)t.ulValueLen &&
            memcmp(hsmc_curves[i].params, params, hsmc_curves[i].len) == 0) {
            *n = hsmc_curves[i].size;
            break;
        }
    }
    return CKR_OK;
}

hsmc_err_t hsmc__key_size(hsmc_t *h, const char *fn, const hsmc_obj_t *o, CK_KEY_TYPE kt,
                          hsmc_key_alg_t alg, size_t *n)
{
    CK_OBJECT_HANDLE ho = CK_INVALID_HANDLE;
    hsmc_kop_t op;
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv;

    *n = hsmc_alg_size(alg, kt);
    if (*n != 0)
        return HSMC_OK;
    hsmc__kop_init(&op, fn, "reading the key size", o);
    op.call = "C_GetAttributeValue";
    memset(&s, 0, sizeof s);
    do {
        err = hsmc__op_begin(h, &s, o, &ho, NULL, NULL);
        if (err != HSMC_OK)
            return err;
        rv = hsmc_size_read(h->fl, s.handle, ho, kt, n);
        err = hsmc__op_end(&s, &op, rv);
    } while (err == HSMC_RETRY);
    if (err != HSMC_OK)
        return err;
    if (*n == 0)
        return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "%s: key '%s' (%s) is of a size or curve hsmc does not know", fn,
                          o->label, hsmc_key_type_name(kt));
    return HSMC_OK;
}

/* ---- Digest through the token ---------------------------------------------- */

hsmc_err_t hsmc_token_digest(hsmc_t *h, hsmc_hash_t hash, const uint8_t *msg, size_t len,
                             uint8_t *out, size_t cap, size_t *out_len)
{
    static const char fn[] = "hsmc_token_digest";
    size_t need = hsmc_hash_len(hash);
    CK_MECHANISM m;
    CK_ULONG olen;
    hsmc_kop_t op;
    hsmc_err_t err;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (out_len == NULL || (msg == NULL && len > 0) || !hsmc__fits(len))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: out_len is NULL, or no message", fn);
    if (need == 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: unknown hash %d", fn, (int)hash);
    *out_len = need;
    if (out == NULL)
        return HSMC_OK;
    if (cap < need)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK, "%s: %s needs %u bytes, the buffer has %u",
                          fn, hsmc__hash_name(hash), (unsigned)need, (unsigned)cap);
    hsmc__kop_init(&op, fn, hsmc__hash_name(hash), NULL);
    m.mechanism = hsmc__hash_ckm(hash);
    m.pParameter = NULL;
    m.ulParameterLen = 0;
    olen = (CK_ULONG)need;
    err = hsmc__op_single(h, &op, HSMC_DC_DIGEST, &m, msg, len, out, &olen);
    if (err != HSMC_OK)
        return err;
    if (olen != (CK_ULONG)need)
        return hsmc__fail(h, HSMC_ERR_TOKEN, CKR_OK, "%s: C_Digest gave %lu bytes for %s, not %u",
                          fn, (unsigned long)olen, hsmc__hash_name(hash), (unsigned)need);
    return HSMC_OK;
}
