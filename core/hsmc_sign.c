/*
 * Signatures with token keys (crypto.h). The message is hashed on the host
 * (mbedTLS) and the token signs the digest with CKM_ECDSA, CKM_RSA_PKCS over
 * a DigestInfo, or CKM_RSA_PKCS_PSS (MGF1 with the same hash, salt = hash
 * length): mechanisms every token here has, unlike the combined
 * CKM_SHAxxx_* ones. EdDSA (CKM_EDDSA) signs the message itself.
 *
 * ECDSA digests longer than the curve (SHA-512 with P-256) are passed whole:
 * the token truncates them to the order as FIPS 186-4 and OpenSSL do.
 *
 * Also here: ECDSA raw r||s <-> DER ECDSA-Sig-Value, written by hand with
 * a strict parser (minimal lengths and integers, no trailing bytes).
 */
#include <stdint.h>
#include <string.h>

#include "hsmc_crypto_int.h"

/* DigestInfo prefixes (RFC 8017 section 9.2, note 1): DER of
 * SEQUENCE { AlgorithmIdentifier { hash OID, NULL }, OCTET STRING (hash) }
 * up to the digest bytes. */
#define HSMC_DI_PREFIX 19u
static const uint8_t hsmc_di_sha224[HSMC_DI_PREFIX] = {
    0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c};
static const uint8_t hsmc_di_sha256[HSMC_DI_PREFIX] = {
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t hsmc_di_sha384[HSMC_DI_PREFIX] = {
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
static const uint8_t hsmc_di_sha512[HSMC_DI_PREFIX] = {
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};

/* The token side of a signature algorithm. */
typedef struct hsmc_sig_plan {
    CK_MECHANISM_TYPE mech;
    CK_KEY_TYPE kt;
    const char *what; /* for messages */
} hsmc_sig_plan_t;

/* Names by scheme (row) and hash SHA-224..SHA-512 (column). */
static const char *const hsmc_sig_names[3][4] = {
    {"ECDSA-SHA224", "ECDSA-SHA256", "ECDSA-SHA384", "ECDSA-SHA512"},
    {"RSA-PKCS1-SHA224", "RSA-PKCS1-SHA256", "RSA-PKCS1-SHA384", "RSA-PKCS1-SHA512"},
    {"RSA-PSS-SHA224", "RSA-PSS-SHA256", "RSA-PSS-SHA384", "RSA-PSS-SHA512"},
};

/*
 * Check a signature algorithm: known scheme, a SHA-2 hash (none for EdDSA).
 * SHA-1 signatures are refused on purpose.
 */
static hsmc_err_t hsmc_sig_plan(hsmc_t *h, const char *fn, hsmc_sig_alg_t alg, hsmc_sig_plan_t *p)
{
    int row;

    switch (alg.scheme) {
    case HSMC_SIG_ECDSA:
        p->mech = CKM_ECDSA;
        p->kt = CKK_EC;
        row = 0;
        break;
    case HSMC_SIG_RSA_PKCS1:
        p->mech = CKM_RSA_PKCS;
        p->kt = CKK_RSA;
        row = 1;
        break;
    case HSMC_SIG_RSA_PSS:
        p->mech = CKM_RSA_PKCS_PSS;
        p->kt = CKK_RSA;
        row = 2;
        break;
    case HSMC_SIG_EDDSA:
        p->mech = CKM_EDDSA;
        p->kt = CKK_EC_EDWARDS;
        p->what = "EdDSA";
        if (alg.hash != HSMC_HASH_NONE)
            return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                              "%s: EdDSA signs the message itself: give HSMC_HASH_NONE, not %s",
                              fn, hsmc__hash_name(alg.hash));
        return HSMC_OK;
    default:
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: unknown signature scheme %d", fn,
                          (int)alg.scheme);
    }
    if (alg.hash == HSMC_HASH_SHA1)
        return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "%s: hsmc neither makes nor checks SHA-1 signatures", fn);
    if (alg.hash < HSMC_HASH_SHA224 || alg.hash > HSMC_HASH_SHA512)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: this signature scheme needs a hash: SHA-224, -256, -384 or -512",
                          fn);
    p->what = hsmc_sig_names[row][alg.hash - HSMC_HASH_SHA224];
    return HSMC_OK;
}

/*
 * Checks shared by the four entry points, all before the token is called:
 * algorithm, key object (private for signing, public for verifying), key
 * type and usage flag. *obj is the object to use.
 */
static hsmc_err_t hsmc_sig_start(hsmc_t *h, const char *fn, const hsmc_key_t *key,
                                 hsmc_sig_alg_t alg, int sign, hsmc_sig_plan_t *p,
                                 const hsmc_obj_t **obj)
{
    hsmc_err_t err;

    if (key == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: key is NULL", fn);
    err = hsmc_sig_plan(h, fn, alg, p);
    if (err != HSMC_OK)
        return err;
    if (sign) {
        *obj = &key->priv;
        return hsmc__key_use(h, fn, *obj, CKO_PRIVATE_KEY, p->kt, HSMC_USE_SIGN);
    }
    *obj = hsmc__key_pub(key);
    if (*obj == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: key '%s' has no public-key object to verify with", fn,
                          key->priv.label);
    return hsmc__key_use(h, fn, *obj, CKO_PUBLIC_KEY, p->kt, HSMC_USE_VERIFY);
}

/*
 * Mechanism and token input for `data` (a digest; the message for EdDSA).
 * RSA PKCS#1 v1.5 input is the DigestInfo, built in `di`.
 */
static void hsmc_sig_mech(hsmc_sig_alg_t alg, const hsmc_sig_plan_t *p, const uint8_t *data,
                          size_t dlen, CK_BYTE *di, CK_MECHANISM *m, CK_RSA_PKCS_PSS_PARAMS *pss,
                          const uint8_t **in, size_t *in_len)
{
    const uint8_t *prefix;

    m->mechanism = p->mech;
    m->pParameter = NULL;
    m->ulParameterLen = 0;
    *in = data;
    *in_len = dlen;
    if (alg.scheme == HSMC_SIG_RSA_PSS) {
        pss->hashAlg = hsmc__hash_ckm(alg.hash);
        pss->mgf = hsmc__hash_mgf(alg.hash);
        pss->sLen = (CK_ULONG)dlen;
        m->pParameter = pss;
        m->ulParameterLen = sizeof *pss;
    } else if (alg.scheme == HSMC_SIG_RSA_PKCS1) {
        switch (alg.hash) {
        case HSMC_HASH_SHA224:
            prefix = hsmc_di_sha224;
            break;
        case HSMC_HASH_SHA256:
            prefix = hsmc_di_sha256;
            break;
        case HSMC_HASH_SHA384:
            prefix = hsmc_di_sha384;
            break;
        default:
            prefix = hsmc_di_sha512;
            break;
        }
        memcpy(di, prefix, HSMC_DI_PREFIX);
        memcpy(di + HSMC_DI_PREFIX, data, dlen);
        *in = di;
        *in_len = HSMC_DI_PREFIX + dlen;
    }
}

/*
 * Sign `data` (digest, or message for EdDSA) with `obj`. The signature size
 * is known before the token is asked (key algorithm, else CKA_EC_PARAMS /
 * CKA_MODULUS), so a short buffer never reaches C_Sign.
 */
HSMC_NOINLINE static hsmc_err_t hsmc_sign_run(hsmc_t *h, const char *fn, hsmc_key_alg_t kalg,
                                              const hsmc_obj_t *obj, hsmc_sig_alg_t alg,
                                              const hsmc_sig_plan_t *p, const uint8_t *data,
                                              size_t dlen, uint8_t *sig, size_t cap,
                                              size_t *sig_len)
{
    CK_BYTE di[HSMC_DI_PREFIX + HSMC_HASH_MAX];
    CK_RSA_PKCS_PSS_PARAMS pss;
    CK_MECHANISM m;
    CK_ULONG slen;
    const uint8_t *in;
    size_t n, need, in_len;
    hsmc_kop_t op;
    hsmc_err_t err;

    err = hsmc__key_size(h, fn, obj, p->kt, kalg, &n);
    if (err != HSMC_OK)
        return err;
    need = alg.scheme == HSMC_SIG_ECDSA ? 2u * n : n;
    *sig_len = need;
    if (sig == NULL)
        return HSMC_OK;
    if (cap < need)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: a %s signature with key '%s' takes %u bytes; the buffer has %u", fn,
                          p->what, obj->label, (unsigned)need, (unsigned)cap);
    hsmc_sig_mech(alg, p, data, dlen, di, &m, &pss, &in, &in_len);
    hsmc__kop_init(&op, fn, p->what, obj);
    slen = (CK_ULONG)need;
    err = hsmc__op_single(h, &op, HSMC_DC_SIGN, &m, in, in_len, sig, &slen);
    if (err != HSMC_OK)
        return err;
    if (slen != (CK_ULONG)need)
        return hsmc__fail(h, HSMC_ERR_TOKEN, CKR_OK,
                          "%s: C_Sign gave a %lu-byte %s signature; expected %u bytes", fn,
                          (unsigned long)slen, p->what, (unsigned)need);
    return HSMC_OK;
}

/* Verify `sig` over `data` (digest, or message for EdDSA) with `obj`. */
HSMC_NOINLINE static hsmc_err_t hsmc_verify_run(hsmc_t *h, const char *fn, const hsmc_obj_t *obj,
                                                hsmc_sig_alg_t alg, const hsmc_sig_plan_t *p,
                                                const uint8_t *data, size_t dlen,
                                                const uint8_t *sig, size_t sig_len)
{
    CK_BYTE di[HSMC_DI_PREFIX + HSMC_HASH_MAX];
    CK_RSA_PKCS_PSS_PARAMS pss;
    CK_MECHANISM m;
    CK_ULONG slen;
    const uint8_t *in;
    size_t in_len;
    hsmc_kop_t op;

    if (sig_len == 0)
        return hsmc__fail(h, HSMC_ERR_SIGNATURE, CKR_OK, "%s: the signature is empty", fn);
    if (!hsmc__fits(sig_len))
        return hsmc__fail(h, HSMC_ERR_SIGNATURE, CKR_OK, "%s: the signature is too long", fn);
    hsmc_sig_mech(alg, p, data, dlen, di, &m, &pss, &in, &in_len);
    hsmc__kop_init(&op, fn, p->what, obj);
    slen = (CK_ULONG)sig_len;
    return hsmc__op_single(h, &op, HSMC_DC_VERIFY, &m, in, in_len, (uint8_t *)HSMC_CIN(sig),
                           &slen);
}

/*
 * What the token signs or verifies for message msg[0..len): the message
 * itself for EdDSA, else its digest, computed into dig (HSMC_HASH_MAX
 * bytes) when `hash` is set (the size-only pass of signing needs none).
 */
static hsmc_err_t hsmc_sig_input(hsmc_t *h, const char *fn, hsmc_sig_alg_t alg,
                                 const uint8_t *msg, size_t len, int hash, uint8_t *dig,
                                 const uint8_t **data, size_t *dlen)
{
    hsmc_err_t err;

    if (msg == NULL || len == 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: the message is empty", fn);
    if (alg.scheme == HSMC_SIG_EDDSA) {
        if (!hsmc__fits(len))
            return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: the message is too long", fn);
        *data = msg;
        *dlen = len;
        return HSMC_OK;
    }
    if (hash) {
        err = hsmc_hash(alg.hash, msg, len, dig);
        if (err != HSMC_OK)
            return hsmc__fail(h, err, CKR_OK, "%s: hashing with %s failed (%s)", fn,
                              hsmc__hash_name(alg.hash), hsmc_strerror(err));
    }
    *data = dig;
    *dlen = hsmc_hash_len(alg.hash);
    return HSMC_OK;
}

/*
 * Checks of the two digest entry points, in this order: not EdDSA (which
 * signs messages), the key (hsmc_sig_start), a digest of the hash's length.
 */
static hsmc_err_t hsmc_sig_digest_start(hsmc_t *h, const char *fn, const hsmc_key_t *key,
                                        hsmc_sig_alg_t alg, int sign, const uint8_t *digest,
                                        size_t dlen, hsmc_sig_plan_t *p, const hsmc_obj_t **obj)
{
    hsmc_err_t err;

    if (alg.scheme == HSMC_SIG_EDDSA)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: EdDSA signs messages, not digests: use %s", fn,
                          sign ? "hsmc_sign" : "hsmc_verify");
    err = hsmc_sig_start(h, fn, key, alg, sign, p, obj);
    if (err != HSMC_OK)
        return err;
    if (digest == NULL || dlen != hsmc_hash_len(alg.hash))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: the digest is %u bytes; %s gives %u", fn,
                          digest == NULL ? 0u : (unsigned)dlen, hsmc__hash_name(alg.hash),
                          (unsigned)hsmc_hash_len(alg.hash));
    return HSMC_OK;
}

hsmc_err_t hsmc_sign(hsmc_t *h, const hsmc_key_t *key, hsmc_sig_alg_t alg, const uint8_t *msg,
                     size_t len, uint8_t *sig, size_t cap, size_t *sig_len)
{
    static const char fn[] = "hsmc_sign";
    uint8_t dig[HSMC_HASH_MAX];
    const hsmc_obj_t *obj = NULL;
    const uint8_t *data = NULL;
    size_t dlen = 0;
    hsmc_sig_plan_t p;
    hsmc_err_t err;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (sig_len == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: sig_len is NULL", fn);
    err = hsmc_sig_start(h, fn, key, alg, 1, &p, &obj);
    if (err == HSMC_OK)
        err = hsmc_sig_input(h, fn, alg, msg, len, sig != NULL, dig, &data, &dlen);
    if (err != HSMC_OK)
        return err;
    return hsmc_sign_run(h, fn, key->alg, obj, alg, &p, data, dlen, sig, cap, sig_len);
}

hsmc_err_t hsmc_sign_digest(hsmc_t *h, const hsmc_key_t *key, hsmc_sig_alg_t alg,
                            const uint8_t *digest, size_t dlen, uint8_t *sig, size_t cap,
                            size_t *sig_len)
{
    static const char fn[] = "hsmc_sign_digest";
    const hsmc_obj_t *obj = NULL;
    hsmc_sig_plan_t p;
    hsmc_err_t err;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (sig_len == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: sig_len is NULL", fn);
    err = hsmc_sig_digest_start(h, fn, key, alg, 1, digest, dlen, &p, &obj);
    if (err != HSMC_OK)
        return err;
    return hsmc_sign_run(h, fn, key->alg, obj, alg, &p, digest, dlen, sig, cap, sig_len);
}

hsmc_err_t hsmc_verify(hsmc_t *h, const hsmc_key_t *key, hsmc_sig_alg_t alg, const uint8_t *msg,
                       size_t len, const uint8_t *sig, size_t sig_len)
{
    static const char fn[] = "hsmc_verify";
    uint8_t dig[HSMC_HASH_MAX];
    const hsmc_obj_t *obj = NULL;
    const uint8_t *data = NULL;
    size_t dlen = 0;
    hsmc_sig_plan_t p;
    hsmc_err_t err;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (sig == NULL && sig_len > 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: sig is NULL", fn);
    err = hsmc_sig_start(h, fn, key, alg, 0, &p, &obj);
    if (err == HSMC_OK)
        err = hsmc_sig_input(h, fn, alg, msg, len, 1, dig, &data, &dlen);
    if (err != HSMC_OK)
        return err;
    return hsmc_verify_run(h, fn, obj, alg, &p, data, dlen, sig, sig_len);
}

hsmc_err_t hsmc_verify_digest(hsmc_t *h, const hsmc_key_t *key, hsmc_sig_alg_t alg,
                              const uint8_t *digest, size_t dlen, const uint8_t *sig,
                              size_t sig_len)
{
    static const char fn[] = "hsmc_verify_digest";
    const hsmc_obj_t *obj = NULL;
    hsmc_sig_plan_t p;
    hsmc_err_t err;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (sig == NULL && sig_len > 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: sig is NULL", fn);
    err = hsmc_sig_digest_start(h, fn, key, alg, 0, digest, dlen, &p, &obj);
    if (err != HSMC_OK)
        return err;
    return hsmc_verify_run(h, fn, obj, alg, &p, digest, dlen, sig, sig_len);
}

/* ---- ECDSA signature encodings --------------------------------------------- */

/* A big-endian unsigned integer without its leading zero bytes (one byte
 * stays for zero); *len is updated. */
static const uint8_t *hsmc_uint_strip(const uint8_t *v, size_t *len)
{
    while (*len > 1 && v[0] == 0) {
        v++;
        (*len)--;
    }
    return v;
}

/* Write a DER INTEGER for the n-byte unsigned value v; @return bytes written. */
static size_t hsmc_der_put_uint(uint8_t *out, const uint8_t *v, size_t n)
{
    size_t pad = (v[0] & 0x80u) ? 1u : 0u; /* keep it positive */

    out[0] = 0x02;
    out[1] = (uint8_t)(n + pad);
    if (pad)
        out[2] = 0x00;
    memcpy(out + 2 + pad, v, n);
    return 2u + pad + n;
}

hsmc_err_t hsmc_ecdsa_raw_to_der(const uint8_t *raw, size_t raw_len, uint8_t *der, size_t cap,
                                 size_t *der_len)
{
    const uint8_t *r, *s;
    size_t n, rl, sl, body, total, off;

    if (raw == NULL || der_len == NULL || raw_len == 0 || (raw_len % 2u) != 0 ||
        raw_len > 2u * HSMC_ECDSA_MAX_N)
        return HSMC_ERR_ARG;
    n = raw_len / 2u;
    rl = sl = n;
    r = hsmc_uint_strip(raw, &rl);
    s = hsmc_uint_strip(raw + n, &sl);
    /* INTEGER headers are 2 bytes (content <= 67 bytes); so is the
     * SEQUENCE header below 128 bytes of content, else 0x81 LEN. */
    body = 2u + rl + ((r[0] & 0x80u) ? 1u : 0u) + 2u + sl + ((s[0] & 0x80u) ? 1u : 0u);
    total = (body < 0x80u ? 2u : 3u) + body;
    *der_len = total;
    if (der == NULL)
        return HSMC_OK;
    if (cap < total)
        return HSMC_ERR_BUFFER;
    der[0] = 0x30;
    if (body < 0x80u) {
        der[1] = (uint8_t)body;
        off = 2;
    } else {
        der[1] = 0x81;
        der[2] = (uint8_t)body;
        off = 3;
    }
    off += hsmc_der_put_uint(der + off, r, rl);
    (void)hsmc_der_put_uint(der + off, s, sl);
    return HSMC_OK;
}

/*
 * Read one DER INTEGER at *p (before end) into out (n bytes, left-padded).
 * Strict: short-form length, minimal encoding, positive, non-zero, at most
 * n value bytes.
 */
static hsmc_err_t hsmc_der_get_uint(const uint8_t **p, const uint8_t *end, size_t n, uint8_t *out)
{
    const uint8_t *v = *p;
    size_t len;

    if (end - v < 2 || v[0] != 0x02 || v[1] == 0 || v[1] >= 0x80u)
        return HSMC_ERR_FORMAT;
    len = v[1];
    v += 2;
    if ((size_t)(end - v) < len)
        return HSMC_ERR_FORMAT;
    *p = v + len;
    if (v[0] & 0x80u)
        return HSMC_ERR_FORMAT; /* negative */
    if (v[0] == 0 && len > 1) {
        if (!(v[1] & 0x80u))
            return HSMC_ERR_FORMAT; /* a zero byte that was not needed */
        v++;
        len--;
    }
    if (len > n || (len == 1 && v[0] == 0))
        return HSMC_ERR_FORMAT; /* too large for the curve, or zero */
    memset(out, 0, n - len);
    memcpy(out + (n - len), v, len);
    return HSMC_OK;
}

hsmc_err_t hsmc_ecdsa_der_to_raw(const uint8_t *der, size_t der_len, size_t n, uint8_t *raw)
{
    const uint8_t *p, *end;
    size_t body;
    hsmc_err_t err;

    if (der == NULL || raw == NULL || n == 0 || n > HSMC_ECDSA_MAX_N)
        return HSMC_ERR_ARG;
    if (der_len < 2 || der[0] != 0x30)
        return HSMC_ERR_FORMAT;
    if (der[1] < 0x80u) {
        body = der[1];
        p = der + 2;
    } else if (der[1] == 0x81 && der_len >= 3 && der[2] >= 0x80u) {
        body = der[2];
        p = der + 3;
    } else {
        return HSMC_ERR_FORMAT; /* long form where short fits, or too long for ECDSA */
    }
    if ((size_t)(der + der_len - p) != body)
        return HSMC_ERR_FORMAT; /* truncated, or bytes after the SEQUENCE */
    end = p + body;
    err = hsmc_der_get_uint(&p, end, n, raw);
    if (err == HSMC_OK)
        err = hsmc_der_get_uint(&p, end, n, raw + n);
    if (err == HSMC_OK && p != end)
        err = HSMC_ERR_FORMAT; /* a third element */
    if (err != HSMC_OK)
        memset(raw, 0, 2u * n);
    return err;
}
