/*
 * Key wrapping with token keys (crypto.h): RFC 3394 (CKM_AES_KEY_WRAP),
 * RFC 5649, RSA-OAEP, and AES-CBC-PAD where nothing better exists; token
 * keys (hsmc_wrap / hsmc_unwrap) and host key bytes (hsmc_wrap_bytes /
 * hsmc_unwrap_bytes, through temporary session objects destroyed inside the
 * same session unit on every path).
 *
 * RFC 5649 is CKM_AES_KEY_WRAP_KWP (0x210B, PKCS#11 3.0) when the token
 * lists it, else 0x210A (2.40's CKM_AES_KEY_WRAP_PAD), under which SoftHSM2
 * implements RFC 5649. SoftHSM2 2.6 zero-pads the key to a multiple of 8
 * before wrapping with it, so its output for other lengths is RFC 5649 of
 * the padded key, which no one else unwraps to the same bytes. Under 0x210A
 * hsmc therefore wraps only keys whose length is a multiple of 8 and checks
 * the output length; unwrapping is unaffected.
 *
 * AES-CBC-PAD output is the 16-byte IV (from the token RNG) followed by the
 * ciphertext. It is not authenticated: use it only where the token offers
 * nothing else.
 */
#include <stdint.h>
#include <string.h>

#include "hsmc_crypto_int.h"

/* RFC 5649 key wrap: PKCS#11 3.0 number, and the 2.40 number SoftHSM2 uses. */
#define HSMC_CKM_KWP 0x210BUL
#define HSMC_CKM_KWP_LEGACY 0x210AUL
#define HSMC_CBC_IV 16u

static const CK_BBOOL hsmc_yes = CK_TRUE;
static const CK_BBOOL hsmc_no = CK_FALSE;
static const CK_OBJECT_CLASS hsmc_secret_class = CKO_SECRET_KEY;
static const CK_KEY_TYPE hsmc_generic_type = CKK_GENERIC_SECRET;
static const CK_BYTE hsmc_zero_iv[HSMC_CBC_IV] = {0};

#define HSMC_ATTR(type, ptr, len) {(type), HSMC_CIN(ptr), (CK_ULONG)(len)}
#define HSMC_BOOL(type, v) HSMC_ATTR((type), &(v), sizeof(CK_BBOOL))
#define HSMC_TMPL_LEN(t) ((CK_ULONG)(sizeof(t) / sizeof((t)[0])))

/* Temporary key unwrapped for its bytes: a readable session object that
 * may do nothing else. hsmc_tmp_create reuses it with CKA_SENSITIVE TRUE. */
#define HSMC_TMP_SENSITIVE 4 /* index of CKA_SENSITIVE below */
static const CK_ATTRIBUTE hsmc_tmp_unwrap_tmpl[] = {
    HSMC_ATTR(CKA_CLASS, &hsmc_secret_class, sizeof(CK_OBJECT_CLASS)),
    HSMC_ATTR(CKA_KEY_TYPE, &hsmc_generic_type, sizeof(CK_KEY_TYPE)),
    HSMC_BOOL(CKA_TOKEN, hsmc_no),
    HSMC_BOOL(CKA_PRIVATE, hsmc_yes),
    HSMC_BOOL(CKA_SENSITIVE, hsmc_no),
    HSMC_BOOL(CKA_EXTRACTABLE, hsmc_yes),
    HSMC_BOOL(CKA_ENCRYPT, hsmc_no),
    HSMC_BOOL(CKA_DECRYPT, hsmc_no),
    HSMC_BOOL(CKA_WRAP, hsmc_no),
    HSMC_BOOL(CKA_UNWRAP, hsmc_no),
    HSMC_BOOL(CKA_SIGN, hsmc_no),
    HSMC_BOOL(CKA_VERIFY, hsmc_no),
    HSMC_BOOL(CKA_DERIVE, hsmc_no),
};

/* ---- Key wrapping: mechanisms ------------------------------------------------- */

typedef struct hsmc_wrap_plan {
    CK_MECHANISM m;
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    hsmc_wrap_mech_t mech;
    int rsa;          /* the KEK is an RSA pair: public half wraps, private half unwraps */
    int legacy;       /* RFC 5649 under 0x210A: wrap lengths that are multiples of 8 only */
    size_t iv;        /* IV bytes in front of the wrapped key (CBC-PAD) */
    const char *what; /* for messages */
} hsmc_wrap_plan_t;

static hsmc_err_t hsmc_wrap_plan(hsmc_t *h, const char *fn, hsmc_wrap_mech_t mech,
                                 hsmc_wrap_plan_t *p)
{
    memset(p, 0, sizeof *p);
    p->mech = mech;
    switch (mech) {
    case HSMC_WRAP_AES_KW:
        p->m.mechanism = CKM_AES_KEY_WRAP;
        p->what = "AES-KW";
        return HSMC_OK;
    case HSMC_WRAP_AES_KWP:
        p->m.mechanism = HSMC_CKM_KWP; /* hsmc_wrap_resolve picks the number */
        p->what = "AES-KWP";
        return HSMC_OK;
    case HSMC_WRAP_RSA_OAEP_SHA1:
    case HSMC_WRAP_RSA_OAEP_SHA256:
        p->m.mechanism = CKM_RSA_PKCS_OAEP;
        p->oaep.source = CKZ_DATA_SPECIFIED;
        p->oaep.hashAlg = mech == HSMC_WRAP_RSA_OAEP_SHA1 ? CKM_SHA_1 : CKM_SHA256;
        p->oaep.mgf = mech == HSMC_WRAP_RSA_OAEP_SHA1 ? CKG_MGF1_SHA1 : CKG_MGF1_SHA256;
        p->rsa = 1;
        p->what = mech == HSMC_WRAP_RSA_OAEP_SHA1 ? "RSA-OAEP-SHA1" : "RSA-OAEP-SHA256";
        return HSMC_OK;
    case HSMC_WRAP_AES_CBC_PAD:
        p->m.mechanism = CKM_AES_CBC_PAD;
        p->iv = HSMC_CBC_IV;
        p->what = "AES-CBC-PAD";
        return HSMC_OK;
    default:
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: unknown wrap mechanism %d", fn, (int)mech);
    }
}

/* The padding of an RSA-OAEP wrap as plain RSA encryption names it
 * (hsmc__rsa_enc_run / hsmc__rsa_dec_run). */
static hsmc_rsa_pad_t hsmc_wrap_oaep(hsmc_wrap_mech_t mech)
{
    return mech == HSMC_WRAP_RSA_OAEP_SHA1 ? HSMC_RSA_OAEP_SHA1 : HSMC_RSA_OAEP_SHA256;
}

/* RFC 5649: the number this token has (asked after the key checks, so a
 * refused key never reaches the token). */
static void hsmc_wrap_resolve(hsmc_t *h, hsmc_wrap_plan_t *p)
{
    CK_MECHANISM_INFO info;
    CK_SLOT_ID slot;

    if (p->mech != HSMC_WRAP_AES_KWP)
        return;
    if (hsmc_slot(h, &slot) == HSMC_OK &&
        h->fl->C_GetMechanismInfo(slot, HSMC_CKM_KWP, &info) == CKR_OK)
        return;
    p->m.mechanism = HSMC_CKM_KWP_LEGACY;
    p->legacy = 1;
    p->what = "AES-KWP (as 0x210A)";
}

/* Point the mechanism at its parameters (the plan stays in the caller's
 * frame until the call is done). */
static void hsmc_wrap_mech(hsmc_wrap_plan_t *p, const uint8_t *iv)
{
    if (p->rsa) {
        p->m.pParameter = &p->oaep;
        p->m.ulParameterLen = sizeof p->oaep;
    } else if (p->iv != 0) {
        p->m.pParameter = HSMC_CIN(iv);
        p->m.ulParameterLen = HSMC_CBC_IV;
    }
}

/* Wrap `target` with one C_WrapKey straight into the caller's buffer (after
 * a fresh IV for CBC-PAD); CKR_BUFFER_TOO_SMALL then reports the size, as it
 * does without a buffer. Wrapping twice (size, then data) would make the
 * token do the whole wrap twice. *wlen: wrapped bytes written or needed. */
static CK_RV hsmc_wrap_call(hsmc_t *h, CK_SESSION_HANDLE sh, hsmc_wrap_plan_t *p, hsmc_kop_t *op,
                            CK_OBJECT_HANDLE kek, CK_OBJECT_HANDLE target, uint8_t *out,
                            size_t cap, CK_ULONG *wlen)
{
    CK_RV rv = CKR_OK;

    *wlen = 0;
    hsmc_wrap_mech(p, hsmc_zero_iv);
    if (out == NULL || cap <= p->iv) {
        op->call = "C_WrapKey";
        return h->fl->C_WrapKey(sh, &p->m, kek, target, NULL, wlen);
    }
    if (p->iv != 0) {
        op->call = "C_GenerateRandom";
        rv = h->fl->C_GenerateRandom(sh, out, HSMC_CBC_IV);
        hsmc_wrap_mech(p, out);
    }
    if (rv == CKR_OK) {
        op->call = "C_WrapKey";
        *wlen = (CK_ULONG)(cap - p->iv);
        rv = h->fl->C_WrapKey(sh, &p->m, kek, target, out + p->iv, wlen);
        if (rv == CKR_BUFFER_TOO_SMALL)
            rv = CKR_OK; /* *wlen is the size needed; the caller reports it */
    }
    return rv;
}

/* Refusal of an unaligned length under the legacy RFC 5649 number. */
static hsmc_err_t hsmc_legacy_refuse(hsmc_t *h, const char *fn, unsigned len)
{
    return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                      "%s: this token has RFC 5649 only as 0x210A, which wraps a %u-byte key "
                      "padded (SoftHSM2 2.6): only multiples of 8 bytes interoperate",
                      fn, len);
}

/* The KEK object for wrapping (use = HSMC_USE_WRAP: public half of an RSA
 * pair, else the AES key) or unwrapping (private half, or the AES key). */
static hsmc_err_t hsmc_kek(hsmc_t *h, const char *fn, const hsmc_key_t *kek,
                           const hsmc_wrap_plan_t *p, unsigned use, const hsmc_obj_t **obj)
{
    if (!p->rsa) {
        *obj = &kek->priv;
        return hsmc__key_use(h, fn, *obj, CKO_SECRET_KEY, CKK_AES, use);
    }
    if (use == HSMC_USE_UNWRAP) {
        *obj = &kek->priv;
        return hsmc__key_use(h, fn, *obj, CKO_PRIVATE_KEY, CKK_RSA, use);
    }
    *obj = hsmc__key_pub(kek);
    if (*obj == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: %s wraps with a public key, and key '%s' has none", fn, p->what,
                          kek->priv.label);
    return hsmc__key_use(h, fn, *obj, CKO_PUBLIC_KEY, CKK_RSA, use);
}

/* The KEK object for unwrapping, and wrapped data longer than the plan's
 * IV (both unwrap entry points check these, in this order). */
static hsmc_err_t hsmc_unwrap_kek(hsmc_t *h, const char *fn, const hsmc_key_t *kek,
                                  const hsmc_wrap_plan_t *p, size_t len, const hsmc_obj_t **obj)
{
    hsmc_err_t err = hsmc_kek(h, fn, kek, p, HSMC_USE_UNWRAP, obj);

    if (err != HSMC_OK)
        return err;
    if (len <= p->iv)
        return hsmc__fail(h, HSMC_ERR_DECRYPT, CKR_OK, "%s: %u bytes are too short for %s", fn,
                          (unsigned)len, p->what);
    return HSMC_OK;
}

/* ---- Key wrapping: token keys --------------------------------------------------- */

/* CKA_VALUE_LEN of a secret key; 0 when the token does not say. */
HSMC_NOINLINE static CK_RV hsmc_value_len(hsmc_t *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                                          CK_ULONG *len)
{
    CK_ATTRIBUTE t;
    CK_RV rv;

    *len = 0;
    t.type = CKA_VALUE_LEN;
    t.pValue = len;
    t.ulValueLen = sizeof *len;
    rv = h->fl->C_GetAttributeValue(s, o, &t, 1);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
        (rv == CKR_OK && t.ulValueLen != sizeof *len)) {
        *len = 0;
        rv = CKR_OK;
    }
    return rv;
}

hsmc_err_t hsmc_wrap(hsmc_t *h, const hsmc_key_t *kek, hsmc_wrap_mech_t mech,
                     const hsmc_key_t *target, uint8_t *out, size_t cap, size_t *out_len)
{
    static const char fn[] = "hsmc_wrap";
    hsmc_wrap_plan_t p;
    const hsmc_obj_t *kobj = NULL, *tobj;
    CK_OBJECT_HANDLE hk = CK_INVALID_HANDLE, ht = CK_INVALID_HANDLE;
    CK_ULONG wlen = 0, vlen = 0;
    size_t need = 0;
    hsmc_kop_t op;
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (kek == NULL || target == NULL || out_len == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: kek, target and out_len must be given",
                          fn);
    err = hsmc_wrap_plan(h, fn, mech, &p);
    if (err == HSMC_OK)
        err = hsmc_kek(h, fn, kek, &p, HSMC_USE_WRAP, &kobj);
    if (err != HSMC_OK)
        return err;
    tobj = &target->priv;
    if (tobj->handle == CK_INVALID_HANDLE ||
        (tobj->cls != CKO_SECRET_KEY && tobj->cls != CKO_PRIVATE_KEY))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: the key to wrap must be an opened secret or private key", fn);
    if (!(tobj->usage & HSMC_ATTR_EXTRACTABLE))
        return hsmc__fail(h, HSMC_ERR_KEY_USAGE, CKR_OK,
                          "%s: key '%s' cannot be wrapped (CKA_EXTRACTABLE is FALSE)", fn,
                          tobj->label);
    hsmc_wrap_resolve(h, &p);
    if (p.legacy && tobj->cls != CKO_SECRET_KEY)
        return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "%s: this token has RFC 5649 only as 0x210A, which pads private keys "
                          "wrongly (SoftHSM2 2.6); wrap them on a token with "
                          "CKM_AES_KEY_WRAP_KWP",
                          fn);
    hsmc__kop_init(&op, fn, p.what, kobj);
    memset(&s, 0, sizeof s);
    do {
        err = hsmc__op_begin(h, &s, kobj, &hk, tobj, &ht);
        if (err != HSMC_OK)
            return err;
        op.call = "C_GetAttributeValue";
        op.rvc = 0;
        rv = p.legacy ? hsmc_value_len(h, s.handle, ht, &vlen) : CKR_OK;
        if (rv == CKR_OK && (!p.legacy || (vlen != 0 && vlen % 8u == 0))) {
            op.rvc = HSMC_RVC_PARAMS;
            rv = hsmc_wrap_call(h, s.handle, &p, &op, hk, ht, out, cap, &wlen);
            need = p.iv + (size_t)wlen;
        }
        err = hsmc__op_end(&s, &op, rv);
    } while (err == HSMC_RETRY);
    if (err != HSMC_OK)
        return err;
    if (p.legacy && (vlen == 0 || vlen % 8u != 0))
        return hsmc_legacy_refuse(h, fn, (unsigned)vlen);
    if (p.legacy && wlen != vlen + 8u) /* 2.40's padded variant, not RFC 5649 */
        return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "%s: 0x210A on this token is not RFC 5649 (%lu bytes for a %lu-byte "
                          "key)",
                          fn, (unsigned long)wlen, (unsigned long)vlen);
    *out_len = need;
    if (out != NULL && cap < need)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: key '%s' wraps to %u bytes; the buffer has %u", fn, tobj->label,
                          (unsigned)need, (unsigned)cap);
    return HSMC_OK;
}

/* Object class and key type an hsmc_key_alg_t unwraps into; *bytes is the
 * AES key length (0 for pairs). */
static int hsmc_unwrap_kind(hsmc_key_alg_t alg, CK_OBJECT_CLASS *cls, CK_KEY_TYPE *kt,
                            size_t *bytes)
{
    *cls = CKO_PRIVATE_KEY;
    *bytes = 0;
    switch (alg) {
    case HSMC_ALG_AES128:
    case HSMC_ALG_AES192:
    case HSMC_ALG_AES256:
        *cls = CKO_SECRET_KEY;
        *kt = CKK_AES;
        *bytes = alg == HSMC_ALG_AES128 ? 16u : alg == HSMC_ALG_AES192 ? 24u : 32u;
        return 1;
    case HSMC_ALG_RSA2048:
    case HSMC_ALG_RSA3072:
    case HSMC_ALG_RSA4096:
        *kt = CKK_RSA;
        return 1;
    case HSMC_ALG_P256:
    case HSMC_ALG_P384:
    case HSMC_ALG_P521:
    case HSMC_ALG_SECP256K1:
        *kt = CKK_EC;
        return 1;
    case HSMC_ALG_ED25519:
        *kt = CKK_EC_EDWARDS;
        return 1;
    default:
        return 0;
    }
}

/* Usage attributes a secret key may have, and the subset for private keys. */
typedef struct hsmc_use_attr {
    unsigned bit;
    CK_ATTRIBUTE_TYPE type;
    int priv; /* also valid on a private key */
} hsmc_use_attr_t;

static const hsmc_use_attr_t hsmc_use_attrs[] = {
    {HSMC_USE_SIGN, CKA_SIGN, 1},       {HSMC_USE_VERIFY, CKA_VERIFY, 0},
    {HSMC_USE_ENCRYPT, CKA_ENCRYPT, 0}, {HSMC_USE_DECRYPT, CKA_DECRYPT, 1},
    {HSMC_USE_WRAP, CKA_WRAP, 0},       {HSMC_USE_UNWRAP, CKA_UNWRAP, 1},
    {HSMC_USE_DERIVE, CKA_DERIVE, 1},
};
#define HSMC_USE_ATTRS (sizeof hsmc_use_attrs / sizeof hsmc_use_attrs[0])

/* What the new key of hsmc_unwrap is. */
typedef struct hsmc_new_key {
    const char *label;
    const hsmc_key_spec_t *spec;
    CK_OBJECT_CLASS cls;
    CK_KEY_TYPE kt;
    const uint8_t *id;
    size_t id_len;
} hsmc_new_key_t;

/*
 * C_UnwrapKey into the key `nk` describes: sensitive; a token object and
 * not extractable unless spec->session; every usage flag set explicitly.
 * The template is the largest local here (14 attributes).
 */
HSMC_NOINLINE static CK_RV hsmc_unwrap_new(hsmc_t *h, CK_SESSION_HANDLE s, CK_MECHANISM *m,
                                           CK_OBJECT_HANDLE hk, const uint8_t *in, size_t len,
                                           const hsmc_new_key_t *nk, CK_OBJECT_HANDLE *out)
{
    CK_ATTRIBUTE t[8 + HSMC_USE_ATTRS];
    const CK_BBOOL *session = nk->spec->session ? &hsmc_yes : &hsmc_no;
    const CK_BBOOL *token = nk->spec->session ? &hsmc_no : &hsmc_yes;
    CK_ULONG n = 0;
    size_t i;

#define HSMC_ADD(ty, ptr, ln)                                                        \
    do {                                                                             \
        t[n].type = (ty);                                                            \
        t[n].pValue = HSMC_CIN(ptr);                                                 \
        t[n].ulValueLen = (CK_ULONG)(ln);                                            \
        n++;                                                                         \
    } while (0)
    HSMC_ADD(CKA_CLASS, &nk->cls, sizeof nk->cls);
    HSMC_ADD(CKA_KEY_TYPE, &nk->kt, sizeof nk->kt);
    HSMC_ADD(CKA_TOKEN, token, sizeof(CK_BBOOL));
    HSMC_ADD(CKA_PRIVATE, &hsmc_yes, sizeof(CK_BBOOL));
    HSMC_ADD(CKA_SENSITIVE, &hsmc_yes, sizeof(CK_BBOOL));
    HSMC_ADD(CKA_EXTRACTABLE, session, sizeof(CK_BBOOL));
    HSMC_ADD(CKA_LABEL, nk->label, strlen(nk->label));
    HSMC_ADD(CKA_ID, nk->id, nk->id_len);
    for (i = 0; i < HSMC_USE_ATTRS; i++) {
        if (nk->cls == CKO_SECRET_KEY || hsmc_use_attrs[i].priv)
            HSMC_ADD(hsmc_use_attrs[i].type,
                     (nk->spec->usage & hsmc_use_attrs[i].bit) ? &hsmc_yes : &hsmc_no,
                     sizeof(CK_BBOOL));
    }
#undef HSMC_ADD
    return h->fl->C_UnwrapKey(s, m, hk, (CK_BYTE_PTR)HSMC_CIN(in), (CK_ULONG)len, t, n, out);
}

/* Size of the unwrapped key `o` (AES: CKA_VALUE_LEN, RSA: modulus bytes) in
 * `*n`; 0 when the token does not say (SoftHSM2 sets no CKA_VALUE_LEN on
 * unwrapped keys) or for EC keys (the curve comes with the PKCS#8). */
HSMC_NOINLINE static CK_RV hsmc_unwrapped_size(hsmc_t *h, CK_SESSION_HANDLE s,
                                               CK_OBJECT_HANDLE o, const hsmc_new_key_t *nk,
                                               size_t *n)
{
    CK_ULONG vlen = 0;
    CK_ATTRIBUTE t;
    CK_RV rv;

    *n = 0;
    if (nk->cls == CKO_SECRET_KEY) {
        rv = hsmc_value_len(h, s, o, &vlen);
        *n = (size_t)vlen;
        return rv;
    }
    if (nk->kt != CKK_RSA)
        return CKR_OK;
    t.type = CKA_MODULUS;
    t.pValue = NULL;
    t.ulValueLen = 0;
    rv = h->fl->C_GetAttributeValue(s, o, &t, 1);
    if (rv == CKR_OK && t.ulValueLen != CK_UNAVAILABLE_INFORMATION)
        *n = (size_t)t.ulValueLen;
    return rv;
}

/* 0 when `len` wrapped bytes (after any IV) cannot carry a key of `bytes`
 * under the plan's mechanism; 1 when they can or the mechanism cannot tell. */
static int hsmc_wrapped_fits(const hsmc_wrap_plan_t *p, size_t len, size_t bytes)
{
    switch (p->mech) {
    case HSMC_WRAP_AES_KW:
        return len == bytes + 8u;
    case HSMC_WRAP_AES_KWP:
        return len == (bytes + 7u) / 8u * 8u + 8u;
    case HSMC_WRAP_AES_CBC_PAD:
        return len == (bytes / 16u + 1u) * 16u;
    default:
        return 1;
    }
}

/* "-vNNNN" at the end of a label: the version, else 0. */
static unsigned hsmc_label_version(const char *label)
{
    const char *v = strrchr(label, 'v');
    unsigned long ver = 0;
    size_t digits = 0;

    if (v == NULL || v == label || v[-1] != '-')
        return 0;
    for (v++; *v >= '0' && *v <= '9' && digits < 9u; v++, digits++)
        ver = ver * 10u + (unsigned long)(*v - '0');
    return (*v == '\0' && digits >= 4u) ? (unsigned)ver : 0u;
}

/* Expected size of the unwrapped key for `alg` (0: not checked). */
static size_t hsmc_unwrap_expect(hsmc_key_alg_t alg)
{
    switch (alg) {
    case HSMC_ALG_AES128:
        return 16;
    case HSMC_ALG_AES192:
        return 24;
    case HSMC_ALG_AES256:
        return 32;
    case HSMC_ALG_RSA2048:
        return 256;
    case HSMC_ALG_RSA3072:
        return 384;
    case HSMC_ALG_RSA4096:
        return 512;
    default:
        return 0;
    }
}

/* Arguments of hsmc_unwrap, checked before the token is called. */
static hsmc_err_t hsmc_unwrap_args(hsmc_t *h, const char *fn, const uint8_t *wrapped, size_t len,
                                   const char *label, const hsmc_key_spec_t *spec,
                                   hsmc_new_key_t *nk)
{
    size_t bytes, i, ll;
    unsigned allowed = 0;

    if (wrapped == NULL || len == 0 || !hsmc__fits(len) || label == NULL || spec == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: wrapped data, a label and a spec must be given", fn);
    ll = strlen(label);
    if (ll == 0 || ll > HSMC_MAX_LABEL_LEN)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: the label must be 1 to %d bytes", fn,
                          HSMC_MAX_LABEL_LEN);
    if ((spec->id == NULL) != (spec->id_len == 0) || spec->id_len > HSMC_MAX_ID_LEN)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: spec id must be 1 to %d bytes, or none",
                          fn, HSMC_MAX_ID_LEN);
    nk->label = label;
    nk->spec = spec;
    if (!hsmc_unwrap_kind(spec->alg, &nk->cls, &nk->kt, &bytes))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: spec alg %d is not a key algorithm", fn,
                          (int)spec->alg);
    for (i = 0; i < HSMC_USE_ATTRS; i++) {
        if (nk->cls == CKO_SECRET_KEY || hsmc_use_attrs[i].priv)
            allowed |= hsmc_use_attrs[i].bit;
    }
    if ((spec->usage & ~allowed) != 0u)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: usage 0x%x has flags a %s cannot carry (allowed: 0x%x)", fn,
                          spec->usage, hsmc_class_name(nk->cls), allowed);
    return HSMC_OK;
}

hsmc_err_t hsmc_unwrap(hsmc_t *h, const hsmc_key_t *kek, hsmc_wrap_mech_t mech,
                       const uint8_t *wrapped, size_t len, const char *label,
                       const hsmc_key_spec_t *spec, hsmc_key_t *out)
{
    static const char fn[] = "hsmc_unwrap";
    hsmc_wrap_plan_t p;
    hsmc_new_key_t nk;
    hsmc_obj_query_t q;
    const hsmc_obj_t *kobj = NULL;
    CK_OBJECT_HANDLE hk = CK_INVALID_HANDLE, nh = CK_INVALID_HANDLE;
    size_t got = 0, want;
    hsmc_kop_t op;
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (kek == NULL || out == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: kek and out must be given", fn);
    err = hsmc_unwrap_args(h, fn, wrapped, len, label, spec, &nk);
    if (err == HSMC_OK)
        err = hsmc_wrap_plan(h, fn, mech, &p);
    if (err == HSMC_OK)
        err = hsmc_unwrap_kek(h, fn, kek, &p, len, &kobj);
    if (err != HSMC_OK)
        return err;
    want = hsmc_unwrap_expect(spec->alg);
    /* Tokens need not report the length of what they unwrapped: check what
     * the wrapped length already tells. */
    if (nk.cls == CKO_SECRET_KEY && !hsmc_wrapped_fits(&p, len - p.iv, want))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: %u bytes of %s cannot hold the %u-byte key the spec asks for",
                          fn, (unsigned)len, p.what, (unsigned)want);
    hsmc_wrap_resolve(h, &p);
    /* Refuse a label in use; out->priv is the scratch for the lookup. */
    memset(&q, 0, sizeof q);
    q.label = label;
    q.has_class = 1;
    q.cls = nk.cls;
    err = hsmc_find(h, &q, &out->priv);
    if (err == HSMC_OK || err == HSMC_ERR_OBJECT_AMBIGUOUS)
        return hsmc__fail(h, HSMC_ERR_EXISTS, CKR_OK, "%s: a %s labelled '%s' already exists",
                          fn, hsmc_class_name(nk.cls), label);
    if (err != HSMC_ERR_OBJECT_NOT_FOUND)
        return err;
    hsmc__clear_err(h);
    memset(out, 0, sizeof *out);
    /* CKA_ID: the spec's, or 16 random bytes (kept in out until read back). */
    if (spec->id != NULL) {
        memcpy(out->priv.id, spec->id, spec->id_len);
        nk.id_len = spec->id_len;
    } else {
        err = hsmc_random(h, out->priv.id, 16);
        if (err != HSMC_OK)
            return err;
        nk.id_len = 16;
    }
    nk.id = out->priv.id;
    hsmc__kop_init(&op, fn, p.what, kobj);
    memset(&s, 0, sizeof s);
    do {
        err = hsmc__op_begin(h, &s, kobj, &hk, NULL, NULL);
        if (err != HSMC_OK)
            return err;
        hsmc_wrap_mech(&p, wrapped);
        op.call = "C_UnwrapKey";
        op.rvc = HSMC_RVC_PARAMS | HSMC_RVC_DECRYPT;
        nh = CK_INVALID_HANDLE;
        rv = hsmc_unwrap_new(h, s.handle, &p.m, hk, wrapped + p.iv, len - p.iv, &nk, &nh);
        if (rv == CKR_OK) {
            op.call = "C_GetAttributeValue";
            op.rvc = 0;
            rv = hsmc_unwrapped_size(h, s.handle, nh, &nk, &got);
            /* A key of another size than the spec says is not kept. */
            if (rv != CKR_OK || (want != 0 && got != 0 && got != want))
                (void)h->fl->C_DestroyObject(s.handle, nh);
        }
        err = hsmc__op_end(&s, &op, rv);
    } while (err == HSMC_RETRY);
    if (err != HSMC_OK)
        return err;
    if (want != 0 && got != 0 && got != want)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: the wrapped key is %u bytes, but the spec's algorithm has %u; "
                          "not kept",
                          fn, (unsigned)got, (unsigned)want);
    err = hsmc_find(h, &q, &out->priv);
    if (err != HSMC_OK)
        return err;
    out->alg = spec->alg;
    out->version = hsmc_label_version(label);
    return HSMC_OK;
}

/* ---- Key wrapping: host key bytes ------------------------------------------------ */

/*
 * The temporary session key holding host key bytes to be wrapped: generic
 * secret (any length), sensitive but extractable, no usage.
 */
HSMC_NOINLINE static CK_RV hsmc_tmp_create(hsmc_t *h, CK_SESSION_HANDLE s, const uint8_t *bytes,
                                           size_t len, CK_OBJECT_HANDLE *out)
{
    CK_ATTRIBUTE t[HSMC_TMPL_LEN(hsmc_tmp_unwrap_tmpl) + 1];
    CK_ULONG n = HSMC_TMPL_LEN(hsmc_tmp_unwrap_tmpl);

    memcpy(t, hsmc_tmp_unwrap_tmpl, sizeof hsmc_tmp_unwrap_tmpl);
    t[HSMC_TMP_SENSITIVE].pValue = HSMC_CIN(&hsmc_yes); /* these bytes leave wrapped only */
    t[n].type = CKA_VALUE;
    t[n].pValue = HSMC_CIN(bytes);
    t[n].ulValueLen = (CK_ULONG)len;
    return h->fl->C_CreateObject(s, t, n + 1u, out);
}

hsmc_err_t hsmc_wrap_bytes(hsmc_t *h, const hsmc_key_t *kek, hsmc_wrap_mech_t mech,
                           const uint8_t *key_bytes, size_t key_len, uint8_t *out, size_t cap,
                           size_t *out_len)
{
    static const char fn[] = "hsmc_wrap_bytes";
    hsmc_wrap_plan_t p;
    const hsmc_obj_t *kobj = NULL;
    CK_OBJECT_HANDLE hk = CK_INVALID_HANDLE, tmp;
    CK_ULONG wlen = 0;
    size_t need = 0;
    hsmc_kop_t op;
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv, rv2;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (kek == NULL || out_len == NULL || key_bytes == NULL || key_len == 0 ||
        !hsmc__fits(key_len))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: kek, out_len and non-empty key bytes must be given", fn);
    err = hsmc_wrap_plan(h, fn, mech, &p);
    if (err != HSMC_OK)
        return err;
    if (mech == HSMC_WRAP_AES_KW && (key_len < 16u || key_len % 8u != 0))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: AES-KW wraps 16 or more bytes in multiples of 8, not %u; use "
                          "AES-KWP",
                          fn, (unsigned)key_len);
    if (p.rsa) {
        /* RSA-OAEP is plain encryption with the public key: no object needed
         * (tokens without session objects, like tpm2-pkcs11, can do it). */
        kobj = hsmc__key_pub(kek);
        if (kobj != NULL && (kobj->usage & HSMC_USE_ENCRYPT) &&
            hsmc__key_use(h, fn, kobj, CKO_PUBLIC_KEY, CKK_RSA, HSMC_USE_ENCRYPT) == HSMC_OK)
            return hsmc__rsa_enc_run(h, fn, kek->alg, kobj, hsmc_wrap_oaep(mech), key_bytes,
                                    key_len, out, cap, out_len);
    }
    err = hsmc_kek(h, fn, kek, &p, HSMC_USE_WRAP, &kobj);
    if (err != HSMC_OK)
        return err;
    hsmc_wrap_resolve(h, &p);
    if (p.legacy && key_len % 8u != 0)
        return hsmc_legacy_refuse(h, fn, (unsigned)key_len);
    hsmc__kop_init(&op, fn, p.what, kobj);
    memset(&s, 0, sizeof s);
    do {
        err = hsmc__op_begin(h, &s, kobj, &hk, NULL, NULL);
        if (err != HSMC_OK)
            return err;
        op.call = "C_CreateObject";
        op.rvc = 0;
        tmp = CK_INVALID_HANDLE;
        rv = hsmc_tmp_create(h, s.handle, key_bytes, key_len, &tmp);
        if (rv != CKR_OK) {
            tmp = CK_INVALID_HANDLE;
        } else {
            op.rvc = HSMC_RVC_PARAMS;
            rv = hsmc_wrap_call(h, s.handle, &p, &op, hk, tmp, out, cap, &wlen);
            need = p.iv + (size_t)wlen;
        }
        if (tmp != CK_INVALID_HANDLE) {
            rv2 = h->fl->C_DestroyObject(s.handle, tmp);
            if (rv == CKR_OK && rv2 != CKR_OK) {
                op.call = "C_DestroyObject";
                op.rvc = 0;
                rv = rv2;
            }
        }
        err = hsmc__op_end(&s, &op, rv);
    } while (err == HSMC_RETRY);
    if (err != HSMC_OK)
        return err;
    if (p.legacy && wlen != (CK_ULONG)key_len + 8u) { /* 2.40's padded variant */
        if (out != NULL)
            hsmc__wipe(out, cap);
        return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "%s: 0x210A on this token is not RFC 5649 (%lu bytes for %u)", fn,
                          (unsigned long)wlen, (unsigned)key_len);
    }
    *out_len = need;
    if (out != NULL && cap < need)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: %u key bytes wrap to %u bytes with %s; the buffer has %u", fn,
                          (unsigned)key_len, (unsigned)need, p.what, (unsigned)cap);
    return HSMC_OK;
}

/*
 * Unwrap into a temporary readable session key, read CKA_VALUE into
 * key_bytes (when it fits), destroy the key. *vlen is the key length.
 */
HSMC_NOINLINE static CK_RV hsmc_tmp_unwrap(hsmc_t *h, CK_SESSION_HANDLE s, hsmc_kop_t *op,
                                           CK_MECHANISM *m, CK_OBJECT_HANDLE hk,
                                           const uint8_t *in, size_t len, uint8_t *key_bytes,
                                           size_t cap, CK_ULONG *vlen)
{
    CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
    CK_ATTRIBUTE t;
    CK_RV rv, rv2;

    op->call = "C_UnwrapKey";
    op->rvc = HSMC_RVC_PARAMS | HSMC_RVC_DECRYPT;
    rv = h->fl->C_UnwrapKey(s, m, hk, (CK_BYTE_PTR)HSMC_CIN(in), (CK_ULONG)len,
                            (CK_ATTRIBUTE_PTR)HSMC_CIN(hsmc_tmp_unwrap_tmpl),
                            HSMC_TMPL_LEN(hsmc_tmp_unwrap_tmpl), &tmp);
    if (rv != CKR_OK)
        return rv;
    op->call = "C_GetAttributeValue";
    op->rvc = 0;
    t.type = CKA_VALUE;
    t.pValue = NULL;
    t.ulValueLen = 0;
    rv = h->fl->C_GetAttributeValue(s, tmp, &t, 1);
    if (rv == CKR_OK && (t.ulValueLen == CK_UNAVAILABLE_INFORMATION || t.ulValueLen == 0))
        rv = CKR_ATTRIBUTE_SENSITIVE; /* the token would not let the value out */
    if (rv == CKR_OK) {
        *vlen = t.ulValueLen;
        if (key_bytes != NULL && (size_t)t.ulValueLen <= cap) {
            t.pValue = key_bytes;
            t.ulValueLen = (CK_ULONG)cap;
            rv = h->fl->C_GetAttributeValue(s, tmp, &t, 1);
            *vlen = t.ulValueLen;
        }
    }
    rv2 = h->fl->C_DestroyObject(s, tmp);
    if (rv == CKR_OK && rv2 != CKR_OK) {
        op->call = "C_DestroyObject";
        rv = rv2;
    }
    return rv;
}

/*
 * hsmc_unwrap_bytes (crypto.h). key_bytes NULL asks for the length (the
 * key is unwrapped to learn it). An RSA key without CKA_UNWRAP but with
 * CKA_DECRYPT is used with C_Decrypt, which needs a buffer of the modulus
 * size. key_bytes is wiped on failure.
 */
hsmc_err_t hsmc_unwrap_bytes(hsmc_t *h, const hsmc_key_t *kek, hsmc_wrap_mech_t mech,
                             const uint8_t *wrapped, size_t len, uint8_t *key_bytes, size_t cap,
                             size_t *key_len)
{
    static const char fn[] = "hsmc_unwrap_bytes";
    hsmc_wrap_plan_t p;
    const hsmc_obj_t *kobj = NULL;
    CK_OBJECT_HANDLE hk = CK_INVALID_HANDLE;
    CK_ULONG vlen = 0;
    hsmc_kop_t op;
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (kek == NULL || key_len == NULL || wrapped == NULL || len == 0 || !hsmc__fits(len))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: kek, key_len and non-empty wrapped data must be given", fn);
    err = hsmc_wrap_plan(h, fn, mech, &p);
    if (err != HSMC_OK)
        return err;
    if (p.rsa && !(kek->priv.usage & HSMC_USE_UNWRAP) && (kek->priv.usage & HSMC_USE_DECRYPT) &&
        hsmc__key_use(h, fn, &kek->priv, CKO_PRIVATE_KEY, CKK_RSA, HSMC_USE_DECRYPT) == HSMC_OK)
        return hsmc__rsa_dec_run(h, fn, kek->alg, &kek->priv, hsmc_wrap_oaep(mech), wrapped,
                                len, key_bytes, cap, key_len);
    err = hsmc_unwrap_kek(h, fn, kek, &p, len, &kobj);
    if (err != HSMC_OK)
        return err;
    hsmc_wrap_resolve(h, &p);
    hsmc__kop_init(&op, fn, p.what, kobj);
    memset(&s, 0, sizeof s);
    do {
        err = hsmc__op_begin(h, &s, kobj, &hk, NULL, NULL);
        if (err != HSMC_OK)
            return err;
        hsmc_wrap_mech(&p, wrapped);
        vlen = 0;
        rv = hsmc_tmp_unwrap(h, s.handle, &op, &p.m, hk, wrapped + p.iv, len - p.iv, key_bytes,
                             cap, &vlen);
        err = hsmc__op_end(&s, &op, rv);
    } while (err == HSMC_RETRY);
    if (err != HSMC_OK) {
        if (key_bytes != NULL)
            hsmc__wipe(key_bytes, cap);
        return err;
    }
    *key_len = (size_t)vlen;
    if (key_bytes != NULL && (size_t)vlen > cap) {
        hsmc__wipe(key_bytes, cap);
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: the unwrapped key is %u bytes; the buffer has %u", fn,
                          (unsigned)vlen, (unsigned)cap);
    }
    return HSMC_OK;
}
