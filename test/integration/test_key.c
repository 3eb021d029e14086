/*
 * Keys against real SoftHSM2 tokens ("test", "test2" from with-token.sh):
 * generation of every algorithm with every attribute read back through
 * raw PKCS#11, purposes, find-or-create, duplicates, versioned rotation,
 * import of software keys (made by openssl), SubjectPublicKeyInfo export
 * checked by openssl and mbedTLS (and by verifying token signatures with
 * the exported key), deletion, bad input, injected token faults (fault
 * proxy), and interoperation with pkcs11-tool in both directions.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <unistd.h>

#include <mbedtls/pk.h>

#include "hsmc_test.h"
#include "fault/hsmc_fault.h"

/* ---- helpers ------------------------------------------------------------ */

static hsmc_t H; /* the "test" token, open for the whole run */

/* Raw PKCS#11 reads, outside hsmc's key code. */
static CK_RV raw_get(hsmc_t *h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE *t, CK_ULONG n)
{
    hsmc_sess_t s;
    CK_RV rv;
    memset(&s, 0, sizeof s);
    if (hsmc_session_begin(h, &s) != HSMC_OK)
        return CKR_GENERAL_ERROR;
    rv = hsmc_functions(h)->C_GetAttributeValue(s.handle, o, t, n);
    (void)hsmc_session_end(&s, CKR_OK, NULL);
    return rv;
}

/* -1 when unavailable */
static int get_bool(hsmc_t *h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL v = 2;
    CK_ATTRIBUTE t = {type, &v, sizeof v};
    if (raw_get(h, o, &t, 1) != CKR_OK || t.ulValueLen != sizeof v)
        return -1;
    return v == CK_TRUE;
}

static CK_ULONG get_ulong(hsmc_t *h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
    CK_ULONG v = CK_UNAVAILABLE_INFORMATION;
    CK_ATTRIBUTE t = {type, &v, sizeof v};
    if (raw_get(h, o, &t, 1) != CKR_OK || t.ulValueLen != sizeof v)
        return CK_UNAVAILABLE_INFORMATION;
    return v;
}

/* Length, or (size_t)-1. buf may be NULL for the length only. */
static size_t get_bytes(hsmc_t *h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, uint8_t *buf,
                        size_t cap)
{
    CK_ATTRIBUTE t = {type, buf, buf != NULL ? cap : 0};
    if (raw_get(h, o, &t, 1) != CKR_OK || t.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return (size_t)-1;
    return t.ulValueLen;
}

static int count_cb(void *user, const hsmc_obj_t *obj)
{
    (void)user;
    (void)obj;
    return 0;
}

static size_t count_objects(hsmc_t *h, const char *label)
{
    hsmc_obj_query_t q;
    size_t n = 0;
    memset(&q, 0, sizeof q);
    q.label = label;
    if (hsmc_list(h, &q, count_cb, NULL, &n) != HSMC_OK)
        return (size_t)-1;
    return n;
}

static char hexbuf[4][80];
static const char *hex(const uint8_t *p, size_t n)
{
    static int i;
    size_t k;
    i = (i + 1) % 4;
    for (k = 0; k < n && k < 39; k++)
        sprintf(hexbuf[i] + 2 * k, "%02x", p[k]);
    hexbuf[i][2 * k] = '\0';
    return hexbuf[i];
}

/* ---- expectations per algorithm ----------------------------------------- */

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t oid_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const uint8_t oid_k256[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};
static const uint8_t oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
static const uint8_t name_ed25519[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd',
                                       's',  '2',  '5', '5', '1', '9'};

typedef struct {
    hsmc_key_alg_t alg;
    CK_KEY_TYPE kt;
    unsigned size; /* AES bytes, RSA bits */
    const uint8_t *oid;
    size_t oid_len;
} alg_exp_t;

static const alg_exp_t exps[] = {
    {HSMC_ALG_AES128, CKK_AES, 16, NULL, 0},
    {HSMC_ALG_AES192, CKK_AES, 24, NULL, 0},
    {HSMC_ALG_AES256, CKK_AES, 32, NULL, 0},
    {HSMC_ALG_RSA2048, CKK_RSA, 2048, NULL, 0},
    {HSMC_ALG_RSA3072, CKK_RSA, 3072, NULL, 0},
    {HSMC_ALG_RSA4096, CKK_RSA, 4096, NULL, 0},
    {HSMC_ALG_P256, CKK_EC, 0, oid_p256, sizeof oid_p256},
    {HSMC_ALG_P384, CKK_EC, 0, oid_p384, sizeof oid_p384},
    {HSMC_ALG_P521, CKK_EC, 0, oid_p521, sizeof oid_p521},
    {HSMC_ALG_SECP256K1, CKK_EC, 0, oid_k256, sizeof oid_k256},
    {HSMC_ALG_ED25519, CKK_EC_EDWARDS, 0, oid_ed25519, sizeof oid_ed25519},
};

static const alg_exp_t *exp_of(hsmc_key_alg_t alg)
{
    size_t i;
    for (i = 0; i < sizeof exps / sizeof exps[0]; i++)
        if (exps[i].alg == alg)
            return &exps[i];
    return NULL;
}

static const struct {
    CK_ATTRIBUTE_TYPE type;
    unsigned bit;
    const char *name;
} use_attrs[] = {
    {CKA_SIGN, HSMC_USE_SIGN, "CKA_SIGN"},       {CKA_VERIFY, HSMC_USE_VERIFY, "CKA_VERIFY"},
    {CKA_ENCRYPT, HSMC_USE_ENCRYPT, "CKA_ENCRYPT"}, {CKA_DECRYPT, HSMC_USE_DECRYPT, "CKA_DECRYPT"},
    {CKA_WRAP, HSMC_USE_WRAP, "CKA_WRAP"},       {CKA_UNWRAP, HSMC_USE_UNWRAP, "CKA_UNWRAP"},
    {CKA_DERIVE, HSMC_USE_DERIVE, "CKA_DERIVE"},
};

#define CHECK_ATTR(cond, what)                                                             \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "FAIL %s: key '%s': %s\n", hsmc_test_name, key->priv.label,    \
                    what);                                                                 \
            hsmc_test_cur_failed = 1;                                                      \
        }                                                                                  \
    } while (0)

/*
 * Every attribute of a key hsmc made, read with raw PKCS#11: class, type,
 * size, protection flags, each usage flag, the pair's shared CKA_ID.
 */
static void check_key(hsmc_t *h, const hsmc_key_t *key, hsmc_key_alg_t alg, unsigned usage,
                      int imported)
{
    const alg_exp_t *e = exp_of(alg);
    CK_OBJECT_HANDLE priv = key->priv.handle, pub = key->pub.handle;
    uint8_t buf[64], buf2[64];
    size_t n, n2, i;
    int secret = e->kt == CKK_AES;
    char msg[160];

    CHECK_ATTR(key->alg == alg, "hsmc_key_t.alg");
    CHECK_ATTR(key->has_pub == !secret, "has_pub");
    CHECK_ATTR(get_ulong(h, priv, CKA_CLASS) == (secret ? CKO_SECRET_KEY : CKO_PRIVATE_KEY),
               "CKA_CLASS");
    CHECK_ATTR(get_ulong(h, priv, CKA_KEY_TYPE) == e->kt, "CKA_KEY_TYPE");
    CHECK_ATTR(key->priv.key_type == e->kt, "hsmc_obj_t.key_type");
    /* size */
    if (secret) {
        CHECK_ATTR(get_ulong(h, priv, CKA_VALUE_LEN) == e->size, "CKA_VALUE_LEN");
    } else if (e->kt == CKK_RSA) {
        CHECK_ATTR(get_ulong(h, pub, CKA_MODULUS_BITS) == e->size, "CKA_MODULUS_BITS");
        CHECK_ATTR(get_bytes(h, priv, CKA_MODULUS, NULL, 0) == e->size / 8, "CKA_MODULUS length");
    } else {
        n = get_bytes(h, priv, CKA_EC_PARAMS, buf, sizeof buf);
        n2 = get_bytes(h, pub, CKA_EC_PARAMS, buf2, sizeof buf2);
        /* Ed25519 has two spellings; SoftHSM2 2.6 keeps the OID hsmc gives
         * on the public key and names the curve on the private one. */
        CHECK_ATTR((n == e->oid_len && memcmp(buf, e->oid, n) == 0) ||
                       (alg == HSMC_ALG_ED25519 && n == sizeof name_ed25519 &&
                        memcmp(buf, name_ed25519, n) == 0),
                   "CKA_EC_PARAMS of the private key");
        CHECK_ATTR((n2 == e->oid_len && memcmp(buf2, e->oid, n2) == 0) ||
                       (alg == HSMC_ALG_ED25519 && n2 == sizeof name_ed25519 &&
                        memcmp(buf2, name_ed25519, n2) == 0),
                   "CKA_EC_PARAMS of the public key");
    }
    /* protection */
    CHECK_ATTR(get_bool(h, priv, CKA_SENSITIVE) == 1, "CKA_SENSITIVE not TRUE");
    CHECK_ATTR(get_bool(h, priv, CKA_EXTRACTABLE) == 0, "CKA_EXTRACTABLE not FALSE");
    CHECK_ATTR(get_bool(h, priv, CKA_TOKEN) == 1, "CKA_TOKEN not TRUE");
    CHECK_ATTR(get_bool(h, priv, CKA_PRIVATE) == 1, "CKA_PRIVATE not TRUE");
    CHECK_ATTR(get_bool(h, priv, CKA_LOCAL) == !imported, "CKA_LOCAL");
    if (!imported) {
        CHECK_ATTR(get_bool(h, priv, CKA_ALWAYS_SENSITIVE) == 1, "CKA_ALWAYS_SENSITIVE");
        CHECK_ATTR(get_bool(h, priv, CKA_NEVER_EXTRACTABLE) == 1, "CKA_NEVER_EXTRACTABLE");
    }
    /* usage, exactly */
    for (i = 0; i < sizeof use_attrs / sizeof use_attrs[0]; i++) {
        int want = (usage & use_attrs[i].bit) != 0, got = get_bool(h, priv, use_attrs[i].type);
        if (!secret && (use_attrs[i].bit & (HSMC_USE_VERIFY | HSMC_USE_ENCRYPT | HSMC_USE_WRAP)))
            continue; /* not private-key attributes */
        snprintf(msg, sizeof msg, "%s is %d, want %d", use_attrs[i].name, got, want);
        CHECK_ATTR(got == want, msg);
    }
    CHECK_ATTR((key->priv.usage & 0x7Fu) == usage, "hsmc_obj_t.usage");
    if (!secret)
        CHECK_ATTR(get_bool(h, priv, CKA_SIGN_RECOVER) == 0, "CKA_SIGN_RECOVER not FALSE");
    /* label and id */
    n = get_bytes(h, priv, CKA_LABEL, buf, sizeof buf);
    CHECK_ATTR(n == key->priv.label_len && memcmp(buf, key->priv.label, n) == 0, "CKA_LABEL");
    n = get_bytes(h, priv, CKA_ID, buf, sizeof buf);
    CHECK_ATTR(n == key->priv.id_len && n > 0 && memcmp(buf, key->priv.id, n) == 0, "CKA_ID");
    if (secret)
        return;
    /* the public half */
    CHECK_ATTR(get_ulong(h, pub, CKA_CLASS) == CKO_PUBLIC_KEY, "public CKA_CLASS");
    CHECK_ATTR(get_ulong(h, pub, CKA_KEY_TYPE) == e->kt, "public CKA_KEY_TYPE");
    n2 = get_bytes(h, pub, CKA_ID, buf2, sizeof buf2);
    CHECK_ATTR(n2 == n && memcmp(buf, buf2, n) == 0, "the pair does not share one CKA_ID");
    n2 = get_bytes(h, pub, CKA_LABEL, buf2, sizeof buf2);
    CHECK_ATTR(n2 == key->priv.label_len && memcmp(buf2, key->priv.label, n2) == 0,
               "public CKA_LABEL");
    CHECK_ATTR(get_bool(h, pub, CKA_TOKEN) == 1, "public CKA_TOKEN");
    CHECK_ATTR(get_bool(h, pub, CKA_PRIVATE) == 0, "public CKA_PRIVATE");
    CHECK_ATTR(get_bool(h, pub, CKA_VERIFY) == ((usage & HSMC_USE_SIGN) != 0), "CKA_VERIFY");
    CHECK_ATTR(get_bool(h, pub, CKA_ENCRYPT) == ((usage & HSMC_USE_DECRYPT) != 0), "CKA_ENCRYPT");
    CHECK_ATTR(get_bool(h, pub, CKA_WRAP) == ((usage & HSMC_USE_UNWRAP) != 0), "CKA_WRAP");
    CHECK_ATTR(get_bool(h, pub, CKA_DERIVE) == 0, "public CKA_DERIVE");
    CHECK_ATTR(get_bool(h, pub, CKA_VERIFY_RECOVER) == 0, "public CKA_VERIFY_RECOVER");
}

/* hsmc_key_open gives the same objects as generate did. */
static void check_open_same(const hsmc_key_t *a)
{
    hsmc_key_t b;
    CHECK_ERR(hsmc_key_open(&H, a->priv.label, &b), HSMC_OK);
    CHECK(b.priv.handle == a->priv.handle);
    CHECK(b.has_pub == a->has_pub);
    CHECK(!a->has_pub || b.pub.handle == a->pub.handle);
    CHECK(b.alg == a->alg);
    CHECK(b.version == a->version);
    CHECK(b.priv.usage == a->priv.usage);
    CHECK(!a->has_pub || b.pub.usage == a->pub.usage);
    CHECK(b.priv.id_len == a->priv.id_len && memcmp(b.priv.id, a->priv.id, b.priv.id_len) == 0);
}

/* ---- token signatures checked by openssl with the exported key --------- */

static CK_RV raw_sign(hsmc_t *h, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mech, const uint8_t *in,
                      size_t in_len, uint8_t *sig, CK_ULONG *sig_len)
{
    CK_MECHANISM m = {mech, NULL, 0};
    hsmc_sess_t s;
    CK_RV rv;
    memset(&s, 0, sizeof s);
    if (hsmc_session_begin(h, &s) != HSMC_OK)
        return CKR_GENERAL_ERROR;
    rv = hsmc_functions(h)->C_SignInit(s.handle, &m, key);
    if (rv == CKR_OK)
        rv = hsmc_functions(h)->C_Sign(s.handle, (CK_BYTE_PTR)in, (CK_ULONG)in_len, sig, sig_len);
    (void)hsmc_session_end(&s, CKR_OK, NULL);
    return rv;
}

/* r||s -> DER ECDSA-Sig-Value. */
static size_t ecdsa_der(const uint8_t *rs, size_t len, uint8_t *out)
{
    size_t half = len / 2, o = 0, i, body = 0, lens[2], skip[2];
    int pad[2];
    for (i = 0; i < 2; i++) {
        const uint8_t *v = rs + i * half;
        skip[i] = 0;
        while (skip[i] < half - 1 && v[skip[i]] == 0)
            skip[i]++;
        pad[i] = (v[skip[i]] & 0x80) != 0;
        lens[i] = half - skip[i] + (size_t)pad[i];
        body += 2 + lens[i];
    }
    out[o++] = 0x30;
    if (body >= 0x80)
        out[o++] = 0x81;
    out[o++] = (uint8_t)body;
    for (i = 0; i < 2; i++) {
        out[o++] = 0x02;
        out[o++] = (uint8_t)lens[i];
        if (pad[i])
            out[o++] = 0;
        memcpy(out + o, rs + i * half + skip[i], half - skip[i]);
        o += half - skip[i];
    }
    return o;
}

/* Sign with the token's private key and verify with openssl against the
 * SubjectPublicKeyInfo in `spki_file`. */
static int token_sig_check(hsmc_t *h, const hsmc_key_t *key, const char *spki_file, CK_RV *rv)
{
    static const uint8_t di_sha256[19] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                          0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                          0x01, 0x05, 0x00, 0x04, 0x20};
    uint8_t digest[32], in[64], sig[1024], der[160];
    CK_ULONG sig_len = sizeof sig;
    size_t i;

    for (i = 0; i < sizeof digest; i++)
        digest[i] = (uint8_t)(i * 7 + 3);
    if (!hsmc_test_write_file(hsmc_test_path("digest.bin"), digest, sizeof digest))
        return 0;
    switch (key->priv.key_type) {
    case CKK_EC:
        *rv = raw_sign(h, key->priv.handle, CKM_ECDSA, digest, sizeof digest, sig, &sig_len);
        if (*rv != CKR_OK)
            return 0;
        sig_len = ecdsa_der(sig, sig_len, der);
        if (!hsmc_test_write_file(hsmc_test_path("sig.bin"), der, sig_len))
            return 0;
        return hsmc_test_sh(
            "openssl pkeyutl -verify -pubin -keyform DER -inkey %s -in %s -sigfile %s", spki_file,
            hsmc_test_path("digest.bin"), hsmc_test_path("sig.bin"));
    case CKK_RSA:
        memcpy(in, di_sha256, sizeof di_sha256);
        memcpy(in + sizeof di_sha256, digest, sizeof digest);
        *rv = raw_sign(h, key->priv.handle, CKM_RSA_PKCS, in, sizeof di_sha256 + sizeof digest,
                       sig, &sig_len);
        if (*rv != CKR_OK || !hsmc_test_write_file(hsmc_test_path("sig.bin"), sig, sig_len))
            return 0;
        return hsmc_test_sh(
            "openssl pkeyutl -verify -pubin -keyform DER -inkey %s -in %s -sigfile %s "
            "-pkeyopt digest:sha256",
            spki_file, hsmc_test_path("digest.bin"), hsmc_test_path("sig.bin"));
    case CKK_EC_EDWARDS:
        *rv = raw_sign(h, key->priv.handle, CKM_EDDSA, digest, sizeof digest, sig, &sig_len);
        if (*rv != CKR_OK || !hsmc_test_write_file(hsmc_test_path("sig.bin"), sig, sig_len))
            return 0;
        return hsmc_test_sh("openssl pkeyutl -verify -pubin -keyform DER -inkey %s -rawin -in %s "
                            "-sigfile %s",
                            spki_file, hsmc_test_path("digest.bin"), hsmc_test_path("sig.bin"));
    default:
        return 0;
    }
}

static int token_sig_verifies(hsmc_t *h, const hsmc_key_t *key, const char *spki_file)
{
    CK_RV rv = CKR_OK;
    int ok = token_sig_check(h, key, spki_file, &rv);
    if (!ok)
        fprintf(stderr, "  token signature with '%s' (%s): rv %s\n", key->priv.label,
                hsmc_alg_name(key->alg), hsmc_ckr_name(rv));
    return ok;
}

/* Export the key's SPKI into DIR/<name>; size-only pass and short buffer too. */
static size_t export_spki(hsmc_t *h, const hsmc_key_t *key, uint8_t *der, size_t cap,
                          const char *name)
{
    size_t need = 0, len = 0;
    CHECK_ERR(hsmc_key_export_pub(h, key, NULL, 0, &need), HSMC_OK);
    CHECK(need > 0 && need <= cap);
    if (need == 0 || need > cap)
        return 0;
    CHECK_ERR(hsmc_key_export_pub(h, key, der, need - 1, &len), HSMC_ERR_BUFFER);
    CHECK(len == need);
    memset(der, 0xAA, cap);
    CHECK_ERR(hsmc_key_export_pub(h, key, der, cap, &len), HSMC_OK);
    CHECK(len == need);
    CHECK(hsmc_test_write_file(hsmc_test_path(name), der, len));
    return len;
}

/* ---- tests -------------------------------------------------------------- */

static void test_names(void)
{
    hsmc_key_alg_t a;
    hsmc_purpose_t p;
    hsmc_key_spec_t spec;
    char lbl[HSMC_MAX_LABEL_LEN + 8];
    char base[HSMC_MAX_LABEL_LEN + 1];
    int i;

    for (i = 1; i < HSMC_ALG_COUNT; i++) {
        CHECK_ERR(hsmc_alg_parse(hsmc_alg_name((hsmc_key_alg_t)i), &a), HSMC_OK);
        CHECK(a == (hsmc_key_alg_t)i);
    }
    CHECK(strcmp(hsmc_alg_name(HSMC_ALG_AES256), "aes256") == 0);
    CHECK(strcmp(hsmc_alg_name(HSMC_ALG_RSA3072), "rsa3072") == 0);
    CHECK(strcmp(hsmc_alg_name(HSMC_ALG_P256), "p256") == 0);
    CHECK(strcmp(hsmc_alg_name(HSMC_ALG_SECP256K1), "secp256k1") == 0);
    CHECK(strcmp(hsmc_alg_name(HSMC_ALG_ED25519), "ed25519") == 0);
    CHECK(strcmp(hsmc_alg_name(HSMC_ALG_COUNT), "?") == 0);
    CHECK_ERR(hsmc_alg_parse("P-256", &a), HSMC_OK);
    CHECK(a == HSMC_ALG_P256);
    CHECK_ERR(hsmc_alg_parse("prime256v1", &a), HSMC_OK);
    CHECK(a == HSMC_ALG_P256);
    CHECK_ERR(hsmc_alg_parse("secp384r1", &a), HSMC_OK);
    CHECK(a == HSMC_ALG_P384);
    CHECK_ERR(hsmc_alg_parse("AES128", &a), HSMC_OK);
    CHECK(a == HSMC_ALG_AES128);
    CHECK_ERR(hsmc_alg_parse("none", &a), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_alg_parse("rsa1024", &a), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_alg_parse("", &a), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_alg_parse(NULL, &a), HSMC_ERR_ARG);

    for (i = 1; i < HSMC_PURPOSE_COUNT; i++) {
        CHECK_ERR(hsmc_purpose_parse(hsmc_purpose_name((hsmc_purpose_t)i), &p), HSMC_OK);
        CHECK(p == (hsmc_purpose_t)i);
        CHECK_ERR(hsmc_purpose_spec((hsmc_purpose_t)i, &spec), HSMC_OK);
        CHECK(spec.alg != HSMC_ALG_NONE && spec.usage != 0 && spec.id == NULL && !spec.session);
    }
    CHECK_ERR(hsmc_purpose_parse("mtls-client", &p), HSMC_OK);
    CHECK(p == HSMC_PURPOSE_MTLS_CLIENT);
    CHECK_ERR(hsmc_purpose_parse("bogus", &p), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_purpose_spec(HSMC_PURPOSE_NONE, &spec), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_purpose_spec(HSMC_PURPOSE_COUNT, &spec), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_purpose_spec(HSMC_PURPOSE_CA_ROOT, &spec), HSMC_OK);
    CHECK(spec.alg == HSMC_ALG_P384 && spec.usage == HSMC_USE_SIGN);
    CHECK_ERR(hsmc_purpose_spec(HSMC_PURPOSE_CONFIDENTIALITY, &spec), HSMC_OK);
    CHECK(spec.alg == HSMC_ALG_RSA3072 && spec.usage == (HSMC_USE_DECRYPT | HSMC_USE_UNWRAP));
    CHECK_ERR(hsmc_purpose_spec(HSMC_PURPOSE_KEK, &spec), HSMC_OK);
    CHECK(spec.alg == HSMC_ALG_AES256 && spec.usage == (HSMC_USE_WRAP | HSMC_USE_UNWRAP));
    CHECK_ERR(hsmc_purpose_spec(HSMC_PURPOSE_DATA, &spec), HSMC_OK);
    CHECK(spec.alg == HSMC_ALG_AES256 && spec.usage == (HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT));

    CHECK_ERR(hsmc_key_version_label("dev", 1, lbl, sizeof lbl), HSMC_OK);
    CHECK(strcmp(lbl, "dev-v0001") == 0);
    CHECK_ERR(hsmc_key_version_label("dev", 12345, lbl, sizeof lbl), HSMC_OK);
    CHECK(strcmp(lbl, "dev-v12345") == 0);
    CHECK_ERR(hsmc_key_version_label("dev", 1, lbl, 9), HSMC_ERR_BUFFER);
    CHECK_ERR(hsmc_key_version_label("dev", 1, lbl, 10), HSMC_OK);
    CHECK_ERR(hsmc_key_version_label("dev", 0, lbl, sizeof lbl), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_version_label("", 1, lbl, sizeof lbl), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_version_label(NULL, 1, lbl, sizeof lbl), HSMC_ERR_ARG);
    memset(base, 'b', HSMC_MAX_LABEL_LEN - 6);
    base[HSMC_MAX_LABEL_LEN - 6] = '\0';
    CHECK_ERR(hsmc_key_version_label(base, 9999, lbl, sizeof lbl), HSMC_OK);
    CHECK(strlen(lbl) == HSMC_MAX_LABEL_LEN);
    CHECK_ERR(hsmc_key_version_label(base, 10000, lbl, sizeof lbl), HSMC_ERR_ARG);
}

/* One generation per algorithm, with usages that exercise each flag. */
static const struct {
    hsmc_key_alg_t alg;
    unsigned usage;
} gens[] = {
    {HSMC_ALG_AES128, HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT},
    {HSMC_ALG_AES192, HSMC_USE_WRAP | HSMC_USE_UNWRAP},
    {HSMC_ALG_AES256, HSMC_USE_SIGN | HSMC_USE_VERIFY | HSMC_USE_DERIVE},
    {HSMC_ALG_RSA2048, HSMC_USE_SIGN},
    {HSMC_ALG_RSA3072, HSMC_USE_DECRYPT | HSMC_USE_UNWRAP},
    {HSMC_ALG_RSA4096, HSMC_USE_SIGN | HSMC_USE_DECRYPT},
    {HSMC_ALG_P256, HSMC_USE_SIGN},
    {HSMC_ALG_P384, HSMC_USE_SIGN | HSMC_USE_DERIVE},
    {HSMC_ALG_P521, HSMC_USE_SIGN},
    {HSMC_ALG_SECP256K1, HSMC_USE_SIGN},
    {HSMC_ALG_ED25519, HSMC_USE_SIGN},
};
static hsmc_key_t gen_keys[sizeof gens / sizeof gens[0]];
static int gen_ok[sizeof gens / sizeof gens[0]];

static void test_generate_all(void)
{
    hsmc_key_spec_t spec;
    char label[40];
    uint8_t params[32];
    size_t i, before, n;
    hsmc_err_t err;

    for (i = 0; i < sizeof gens / sizeof gens[0]; i++) {
        spec = hsmc_test_spec(gens[i].alg, gens[i].usage);
        snprintf(label, sizeof label, "gen-%s", hsmc_alg_name(gens[i].alg));
        before = count_objects(&H, NULL);
        err = hsmc_key_generate(&H, label, &spec, &gen_keys[i]);
        if (err == HSMC_ERR_UNSUPPORTED &&
            (gens[i].alg == HSMC_ALG_SECP256K1 || gens[i].alg == HSMC_ALG_ED25519)) {
            fprintf(stderr, "note %s: token lacks %s: %s\n", hsmc_test_name,
                    hsmc_alg_name(gens[i].alg), hsmc_detail(&H));
            CHECK(count_objects(&H, NULL) == before);
            continue;
        }
        if (err != HSMC_OK)
            fprintf(stderr, "generate %s: %s: %s\n", label, hsmc_err_name(err), hsmc_detail(&H));
        CHECK_ERR(err, HSMC_OK);
        if (err != HSMC_OK)
            continue;
        gen_ok[i] = 1;
        CHECK(count_objects(&H, NULL) == before + (gen_keys[i].has_pub ? 2u : 1u));
        CHECK(gen_keys[i].priv.id_len == 16);
        CHECK(gen_keys[i].version == 0);
        check_key(&H, &gen_keys[i], gens[i].alg, gens[i].usage, 0);
        check_open_same(&gen_keys[i]);
        if (gens[i].alg == HSMC_ALG_ED25519) {
            n = get_bytes(&H, gen_keys[i].priv.handle, CKA_EC_PARAMS, params, sizeof params);
            fprintf(stderr, "note %s: Ed25519 CKA_EC_PARAMS: private %s,", hsmc_test_name,
                    n < sizeof params ? hex(params, n) : "?");
            n = get_bytes(&H, gen_keys[i].pub.handle, CKA_EC_PARAMS, params, sizeof params);
            fprintf(stderr, " public %s\n", n < sizeof params ? hex(params, n) : "?");
        }
    }
}

/* A session key (spec.session) and a caller-chosen CKA_ID. */
static void test_generate_session_and_id(void)
{
    static const uint8_t id[3] = {0xc0, 0xff, 0xee};
    hsmc_key_spec_t spec;
    hsmc_key_t k, k2;
    uint8_t buf[8];

    spec = hsmc_test_spec(HSMC_ALG_P256, HSMC_USE_SIGN);
    spec.id = id;
    spec.id_len = sizeof id;
    spec.session = 1;
    CHECK_ERR(hsmc_key_generate(&H, "session-key", &spec, &k), HSMC_OK);
    CHECK(get_bool(&H, k.priv.handle, CKA_TOKEN) == 0);
    CHECK(get_bool(&H, k.pub.handle, CKA_TOKEN) == 0);
    CHECK((k.priv.usage & HSMC_ATTR_TOKEN) == 0);
    CHECK(get_bytes(&H, k.priv.handle, CKA_ID, buf, sizeof buf) == 3 && memcmp(buf, id, 3) == 0);
    CHECK(get_bytes(&H, k.pub.handle, CKA_ID, buf, sizeof buf) == 3 && memcmp(buf, id, 3) == 0);
    CHECK_ERR(hsmc_key_open(&H, "session-key", &k2), HSMC_OK);
    CHECK(k2.pub.handle == k.pub.handle);
    CHECK_ERR(hsmc_key_delete(&H, &k), HSMC_OK);
    CHECK(count_objects(&H, "session-key") == 0);
}

static void test_purposes(void)
{
    hsmc_key_spec_t spec;
    hsmc_key_t k;
    char label[40];
    int i;

    for (i = 1; i < HSMC_PURPOSE_COUNT; i++) {
        CHECK_ERR(hsmc_purpose_spec((hsmc_purpose_t)i, &spec), HSMC_OK);
        snprintf(label, sizeof label, "purpose-%s", hsmc_purpose_name((hsmc_purpose_t)i));
        CHECK_ERR(hsmc_key_generate(&H, label, &spec, &k), HSMC_OK);
        if (k.priv.handle == CK_INVALID_HANDLE)
            continue;
        check_key(&H, &k, spec.alg, spec.usage, 0);
    }
}

static void test_find_or_create(void)
{
    hsmc_key_t a, b;
    int created = -1;
    size_t before;

    CHECK_ERR(hsmc_key_find_or_create(&H, "foc-client", HSMC_PURPOSE_MTLS_CLIENT, &a, &created),
              HSMC_OK);
    CHECK(created == 1);
    check_key(&H, &a, HSMC_ALG_P256, HSMC_USE_SIGN, 0);
    before = count_objects(&H, NULL);
    CHECK_ERR(hsmc_key_find_or_create(&H, "foc-client", HSMC_PURPOSE_MTLS_CLIENT, &b, &created),
              HSMC_OK);
    CHECK(created == 0);
    CHECK(b.priv.handle == a.priv.handle && b.pub.handle == a.pub.handle);
    CHECK(b.priv.id_len == a.priv.id_len && memcmp(a.priv.id, b.priv.id, a.priv.id_len) == 0);
    CHECK(count_objects(&H, NULL) == before);
    /* created is optional */
    CHECK_ERR(hsmc_key_find_or_create(&H, "foc-client", HSMC_PURPOSE_SIGNING, &b, NULL), HSMC_OK);
    /* an existing key that cannot do what the purpose needs */
    CHECK_ERR(hsmc_key_find_or_create(&H, "foc-client", HSMC_PURPOSE_DATA, &b, &created),
              HSMC_ERR_KEY_USAGE);
    CHECK(strstr(hsmc_detail(&H), "foc-client") != NULL);
    CHECK_ERR(hsmc_key_find_or_create(&H, "foc-kek", HSMC_PURPOSE_KEK, &a, &created), HSMC_OK);
    CHECK(created == 1);
    check_key(&H, &a, HSMC_ALG_AES256, HSMC_USE_WRAP | HSMC_USE_UNWRAP, 0);
    CHECK_ERR(hsmc_key_find_or_create(&H, "foc-kek", HSMC_PURPOSE_KEK, &b, &created), HSMC_OK);
    CHECK(created == 0 && b.priv.handle == a.priv.handle);
    CHECK_ERR(hsmc_key_find_or_create(&H, "foc-x", HSMC_PURPOSE_NONE, &b, &created),
              HSMC_ERR_ARG);
    CHECK(count_objects(&H, "foc-x") == 0);
}

static void test_duplicate_label(void)
{
    hsmc_key_spec_t spec;
    hsmc_key_t k, k2;
    size_t before;

    spec = hsmc_test_spec(HSMC_ALG_P256, HSMC_USE_SIGN);
    CHECK_ERR(hsmc_key_generate(&H, "dup", &spec, &k), HSMC_OK);
    before = count_objects(&H, NULL);
    CHECK_ERR(hsmc_key_generate(&H, "dup", &spec, &k2), HSMC_ERR_EXISTS);
    CHECK(strstr(hsmc_detail(&H), "dup") != NULL);
    CHECK(k2.priv.handle == CK_INVALID_HANDLE && !k2.has_pub);
    spec.alg = HSMC_ALG_AES128;
    spec.usage = HSMC_USE_ENCRYPT;
    CHECK_ERR(hsmc_key_generate(&H, "dup", &spec, &k2), HSMC_ERR_EXISTS);
    CHECK_ERR(hsmc_key_import(&H, "dup", &spec, (const uint8_t *)"0123456789abcdef", 16, &k2),
              HSMC_ERR_EXISTS);
    CHECK(count_objects(&H, NULL) == before);
    /* Another kind of object (a certificate, data) does not block a key. */
    CHECK(hsmc_test_make_data_object(&H, "dup-data", NULL, 0) == CKR_OK);
    CHECK_ERR(hsmc_key_generate(&H, "dup-data", &spec, &k2), HSMC_OK);
    CHECK_ERR(hsmc_key_open(&H, "dup-data", &k2), HSMC_OK);
    CHECK(k2.priv.cls == CKO_SECRET_KEY);
}

static void test_rotation(void)
{
    hsmc_key_spec_t spec;
    hsmc_rotation_plan_t plan;
    hsmc_key_t k, latest;
    size_t before;
    unsigned v;

    spec = hsmc_test_spec(HSMC_ALG_P256, HSMC_USE_SIGN);
    CHECK_ERR(hsmc_key_latest(&H, "rot", &latest), HSMC_ERR_OBJECT_NOT_FOUND);
    CHECK_ERR(hsmc_key_plan(&H, "rot", &plan), HSMC_OK);
    CHECK(plan.count == 0 && plan.next == 1 && strcmp(plan.next_label, "rot-v0001") == 0);
    /* labels that look like versions but are not of "rot" */
    CHECK(hsmc_test_make_data_object(&H, "rot-v0007", NULL, 0) == CKR_OK); /* not a key */
    CHECK_ERR(hsmc_key_generate(&H, "rot-v01", &spec, &k), HSMC_OK);
    CHECK_ERR(hsmc_key_generate(&H, "rotx-v0009", &spec, &k), HSMC_OK);
    CHECK_ERR(hsmc_key_generate(&H, "rot-v00005", &spec, &k), HSMC_OK);
    CHECK(k.version == 0);
    for (v = 1; v <= 3; v++) {
        CHECK_ERR(hsmc_key_rotate(&H, "rot", &spec, &k), HSMC_OK);
        CHECK(k.version == v);
        check_key(&H, &k, HSMC_ALG_P256, HSMC_USE_SIGN, 0);
    }
    CHECK(strcmp(k.priv.label, "rot-v0003") == 0);
    CHECK_ERR(hsmc_key_latest(&H, "rot", &latest), HSMC_OK);
    CHECK(strcmp(latest.priv.label, "rot-v0003") == 0 && latest.version == 3);
    CHECK(latest.priv.handle == k.priv.handle);
    before = count_objects(&H, NULL);
    CHECK_ERR(hsmc_key_plan(&H, "rot", &plan), HSMC_OK);
    CHECK(count_objects(&H, NULL) == before); /* a plan changes nothing */
    CHECK(plan.count == 3);
    CHECK(plan.versions[0] == 1 && plan.versions[1] == 2 && plan.versions[2] == 3);
    CHECK(plan.next == 4);
    CHECK(strcmp(plan.next_label, "rot-v0004") == 0);
    /* deleting the latest makes the one before it latest again */
    CHECK_ERR(hsmc_key_delete(&H, &latest), HSMC_OK);
    CHECK_ERR(hsmc_key_latest(&H, "rot", &latest), HSMC_OK);
    CHECK(latest.version == 2);
    /* a rotation with a bad spec makes nothing */
    spec.usage = HSMC_USE_ENCRYPT;
    CHECK_ERR(hsmc_key_rotate(&H, "rot", &spec, &k), HSMC_ERR_ARG);
    CHECK(count_objects(&H, NULL) == before - 2);
    CHECK_ERR(hsmc_key_plan(&H, "", &plan), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_plan(&H, NULL, &plan), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_plan(&H, "rot", NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_latest(&H, NULL, &latest), HSMC_ERR_ARG);
}

/* More versions than a plan holds: LIMIT, the newest listed, rotation goes on. */
static void test_rotation_many(void)
{
    hsmc_key_spec_t spec;
    hsmc_rotation_plan_t plan;
    hsmc_key_t k;
    unsigned v, n = HSMC_MAX_VERSIONS + 2;

    spec = hsmc_test_spec(HSMC_ALG_AES128, HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT);
    for (v = 1; v <= n; v++)
        CHECK_ERR(hsmc_key_rotate(&H, "many", &spec, &k), HSMC_OK);
    CHECK(k.version == n);
    CHECK_ERR(hsmc_key_plan(&H, "many", &plan), HSMC_ERR_LIMIT);
    CHECK(plan.count == HSMC_MAX_VERSIONS);
    CHECK(plan.versions[0] == n - HSMC_MAX_VERSIONS + 1);
    CHECK(plan.versions[HSMC_MAX_VERSIONS - 1] == n);
    CHECK(plan.next == n + 1);
    CHECK_ERR(hsmc_key_rotate(&H, "many", &spec, &k), HSMC_OK);
    CHECK(k.version == n + 1);
}

/* openssl writes the software keys; its SPKI of them is the reference. */
static int make_soft_key(const char *name, const char *genpkey_args)
{
    const char *pem = hsmc_test_path("soft.pem");
    return hsmc_test_sh("openssl genpkey %s -out %s", genpkey_args, pem) &&
           hsmc_test_sh("openssl pkey -in %s -outform DER -out %s", pem, hsmc_test_path(name)) &&
           hsmc_test_sh("openssl pkey -in %s -pubout -outform DER -out %s.pub", pem,
                        hsmc_test_path(name));
}

/* Import DIR/<file> under `label`; SPKI must equal openssl's and mbedTLS's
 * of the original; a token signature must verify with it. */
static void import_and_compare(const char *file, const char *label, hsmc_key_alg_t alg,
                               unsigned usage)
{
    static uint8_t der[4096], ref[1024], spki[1024], mref[1024];
    hsmc_key_spec_t spec;
    hsmc_key_t k;
    mbedtls_pk_context pk;
    size_t len, rlen, slen, before;
    char pubname[64];
    int ret;

    len = hsmc_test_read_file(hsmc_test_path(file), der, sizeof der);
    snprintf(pubname, sizeof pubname, "%s.pub", file);
    rlen = hsmc_test_read_file(hsmc_test_path(pubname), ref, sizeof ref);
    REQUIRE(len > 0 && rlen > 0);
    spec = hsmc_test_spec(alg, usage);
    before = count_objects(&H, NULL);
    CHECK_ERR(hsmc_key_import(&H, label, &spec, der, len, &k), HSMC_OK);
    if (k.priv.handle == CK_INVALID_HANDLE) {
        fprintf(stderr, "  import %s: %s\n", file, hsmc_detail(&H));
        return;
    }
    CHECK(count_objects(&H, NULL) == before + 2);
    check_key(&H, &k, alg, usage, 1);
    check_open_same(&k);
    slen = export_spki(&H, &k, spki, sizeof spki, "imported.spki");
    CHECK(slen == rlen && memcmp(spki, ref, rlen) == 0);
    /* mbedTLS's writer, from the original private key */
    mbedtls_pk_init(&pk);
    ret = mbedtls_pk_parse_key(&pk, der, len, NULL, 0);
    CHECK(ret == 0);
    if (ret == 0) {
        ret = mbedtls_pk_write_pubkey_der(&pk, mref, sizeof mref);
        CHECK(ret > 0 && (size_t)ret == slen && memcmp(mref + sizeof mref - ret, spki, slen) == 0);
    }
    mbedtls_pk_free(&pk);
    if (usage & HSMC_USE_SIGN)
        CHECK(token_sig_verifies(&H, &k, hsmc_test_path(pubname)));
}

static void test_import(void)
{
    static const uint8_t aes[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    static uint8_t der[4096];
    hsmc_key_spec_t spec;
    hsmc_key_t k;
    size_t len, before;

    /* AES bytes */
    spec = hsmc_test_spec(HSMC_ALG_AES256, HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT);
    CHECK_ERR(hsmc_key_import(&H, "imp-aes", &spec, aes, sizeof aes, &k), HSMC_OK);
    check_key(&H, &k, HSMC_ALG_AES256, spec.usage, 1);
    CHECK(get_bool(&H, k.priv.handle, CKA_LOCAL) == 0);
    CHECK(get_bytes(&H, k.priv.handle, CKA_VALUE, der, sizeof der) == (size_t)-1); /* sensitive */
    {
        size_t spki_len = 0;
        CHECK_ERR(hsmc_key_export_pub(&H, &k, NULL, 0, &spki_len), HSMC_ERR_ARG);
    }
    spec.alg = HSMC_ALG_AES128;
    CHECK_ERR(hsmc_key_import(&H, "imp-aes-short", &spec, aes, sizeof aes, &k), HSMC_ERR_ARG);

    /* EC P-256: PKCS#8, SEC1, SEC1 without the public key */
    REQUIRE(make_soft_key("ec.p8", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256"));
    import_and_compare("ec.p8", "imp-ec-p8", HSMC_ALG_P256, HSMC_USE_SIGN);
    REQUIRE(hsmc_test_sh("openssl ec -in %s -outform DER -out %s", hsmc_test_path("soft.pem"),
                         hsmc_test_path("ec.sec1")) &&
            hsmc_test_sh("cp %s.pub %s.pub", hsmc_test_path("ec.p8"), hsmc_test_path("ec.sec1")));
    import_and_compare("ec.sec1", "imp-ec-sec1", HSMC_ALG_P256, HSMC_USE_SIGN | HSMC_USE_DERIVE);
    REQUIRE(hsmc_test_sh("openssl ec -in %s -no_public -outform DER -out %s",
                         hsmc_test_path("soft.pem"), hsmc_test_path("ec.nopub")) &&
            hsmc_test_sh("cp %s.pub %s.pub", hsmc_test_path("ec.p8"), hsmc_test_path("ec.nopub")));
    import_and_compare("ec.nopub", "imp-ec-nopub", HSMC_ALG_P256, HSMC_USE_SIGN);
    REQUIRE(make_soft_key("ec384.p8", "-algorithm EC -pkeyopt ec_paramgen_curve:P-384"));
    import_and_compare("ec384.p8", "imp-ec384", HSMC_ALG_P384, HSMC_USE_SIGN);
    REQUIRE(make_soft_key("ec521.p8", "-algorithm EC -pkeyopt ec_paramgen_curve:P-521"));
    import_and_compare("ec521.p8", "imp-ec521", HSMC_ALG_P521, HSMC_USE_SIGN);

    /* RSA-2048: PKCS#8 and PKCS#1 */
    REQUIRE(make_soft_key("rsa.p8", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048"));
    import_and_compare("rsa.p8", "imp-rsa-p8", HSMC_ALG_RSA2048, HSMC_USE_SIGN);
    REQUIRE(hsmc_test_sh("openssl rsa -in %s -traditional -outform DER -out %s",
                         hsmc_test_path("soft.pem"), hsmc_test_path("rsa.p1")) &&
            hsmc_test_sh("cp %s.pub %s.pub", hsmc_test_path("rsa.p8"), hsmc_test_path("rsa.p1")));
    import_and_compare("rsa.p1", "imp-rsa-p1", HSMC_ALG_RSA2048,
                       HSMC_USE_SIGN | HSMC_USE_DECRYPT | HSMC_USE_UNWRAP);

    /* bad input leaves nothing */
    before = count_objects(&H, NULL);
    len = hsmc_test_read_file(hsmc_test_path("ec.p8"), der, sizeof der);
    spec.alg = HSMC_ALG_P384;
    spec.usage = HSMC_USE_SIGN;
    CHECK_ERR(hsmc_key_import(&H, "imp-bad", &spec, der, len, &k), HSMC_ERR_ARG);
    CHECK(strstr(hsmc_detail(&H), "p256") != NULL);
    spec.alg = HSMC_ALG_P256;
    CHECK_ERR(hsmc_key_import(&H, "imp-bad", &spec, der, len - 1, &k), HSMC_ERR_FORMAT);
    CHECK_ERR(hsmc_key_import(&H, "imp-bad", &spec, (const uint8_t *)"hello", 5, &k),
              HSMC_ERR_FORMAT);
    len = hsmc_test_read_file(hsmc_test_path("soft.pem"), der, sizeof der);
    CHECK_ERR(hsmc_key_import(&H, "imp-bad", &spec, der, len, &k), HSMC_ERR_FORMAT);
    CHECK_ERR(hsmc_key_import(&H, "imp-bad", &spec, NULL, 0, &k), HSMC_ERR_ARG);
    spec.alg = HSMC_ALG_ED25519;
    CHECK_ERR(hsmc_key_import(&H, "imp-bad", &spec, aes, 32, &k), HSMC_ERR_UNSUPPORTED);
    REQUIRE(make_soft_key("rsa1024.p8", "-algorithm RSA -pkeyopt rsa_keygen_bits:1024"));
    len = hsmc_test_read_file(hsmc_test_path("rsa1024.p8"), der, sizeof der);
    spec.alg = HSMC_ALG_RSA2048;
    CHECK_ERR(hsmc_key_import(&H, "imp-bad", &spec, der, len, &k), HSMC_ERR_UNSUPPORTED);
    CHECK(count_objects(&H, NULL) == before);
}

static void test_export_pub(void)
{
    static uint8_t der[2048], mref[2048];
    char name[64];
    size_t i, len;
    mbedtls_pk_context pk;
    int ret, sign;

    for (i = 0; i < sizeof gens / sizeof gens[0]; i++) {
        const hsmc_key_t *k = &gen_keys[i];
        if (!gen_ok[i] || !k->has_pub)
            continue;
        sign = (k->priv.usage & HSMC_USE_SIGN) != 0;
        snprintf(name, sizeof name, "%s.spki", hsmc_alg_name(k->alg));
        len = export_spki(&H, k, der, sizeof der, name);
        if (len == 0) {
            fprintf(stderr, "  export %s: %s\n", name, hsmc_detail(&H));
            continue;
        }
        CHECK(hsmc_test_sh("openssl pkey -pubin -inform DER -in %s -noout", hsmc_test_path(name)));
        CHECK(!sign || token_sig_verifies(&H, k, hsmc_test_path(name)));
        if (k->alg == HSMC_ALG_ED25519) {
            CHECK(len == 44 && memcmp(der, "\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00", 12) == 0);
            continue;
        }
        /* mbedTLS reads it and writes the same bytes */
        mbedtls_pk_init(&pk);
        ret = mbedtls_pk_parse_public_key(&pk, der, len);
        CHECK(ret == 0);
        if (ret == 0) {
            ret = mbedtls_pk_write_pubkey_der(&pk, mref, sizeof mref);
            CHECK(ret > 0 && (size_t)ret == len && memcmp(mref + sizeof mref - ret, der, len) == 0);
        }
        mbedtls_pk_free(&pk);
    }
    CHECK_ERR(hsmc_key_export_pub(&H, &gen_keys[6], der, sizeof der, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_export_pub(&H, NULL, der, sizeof der, &len), HSMC_ERR_ARG);
}

static void test_delete(void)
{
    hsmc_key_spec_t spec;
    hsmc_key_t k, copy;
    size_t before;

    spec = hsmc_test_spec(HSMC_ALG_P256, HSMC_USE_SIGN);
    before = count_objects(&H, NULL);
    CHECK_ERR(hsmc_key_generate(&H, "del-ec", &spec, &k), HSMC_OK);
    CHECK(count_objects(&H, "del-ec") == 2);
    copy = k;
    CHECK_ERR(hsmc_key_delete(&H, &k), HSMC_OK);
    CHECK(count_objects(&H, "del-ec") == 0);
    CHECK(count_objects(&H, NULL) == before);
    CHECK(k.priv.handle == CK_INVALID_HANDLE && !k.has_pub);
    CHECK_ERR(hsmc_key_delete(&H, &copy), HSMC_ERR_OBJECT_NOT_FOUND);
    CHECK_ERR(hsmc_key_open(&H, "del-ec", &k), HSMC_ERR_OBJECT_NOT_FOUND);
    CHECK_ERR(hsmc_key_delete(&H, &k), HSMC_ERR_ARG); /* zeroed by the failed open */
    spec.alg = HSMC_ALG_AES128;
    spec.usage = HSMC_USE_ENCRYPT;
    CHECK_ERR(hsmc_key_generate(&H, "del-aes", &spec, &k), HSMC_OK);
    CHECK_ERR(hsmc_key_delete(&H, &k), HSMC_OK);
    CHECK(count_objects(&H, "del-aes") == 0);
    /* a key and a data object with the same label: only the key goes */
    CHECK(hsmc_test_make_data_object(&H, "del-mixed", NULL, 0) == CKR_OK);
    CHECK_ERR(hsmc_key_generate(&H, "del-mixed", &spec, &k), HSMC_OK);
    CHECK_ERR(hsmc_key_delete(&H, &k), HSMC_OK);
    CHECK(count_objects(&H, "del-mixed") == 1);
    CHECK_ERR(hsmc_key_delete(&H, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_delete(NULL, &k), HSMC_ERR_ARG);
}

/* Bad input: a clear error, detail text, and no object made. */
static void test_bad_inputs(void)
{
    static const uint8_t id40[40];
    char long_label[HSMC_MAX_LABEL_LEN + 2];
    hsmc_key_spec_t spec, good;
    hsmc_key_t k;
    size_t before = count_objects(&H, NULL);
    size_t i;
    static const struct {
        hsmc_key_alg_t alg;
        unsigned usage;
    } bad_specs[] = {
        {HSMC_ALG_NONE, HSMC_USE_SIGN},
        {HSMC_ALG_COUNT, HSMC_USE_SIGN},
        {(hsmc_key_alg_t)99, HSMC_USE_SIGN},
        {(hsmc_key_alg_t)-1, HSMC_USE_SIGN},
        {HSMC_ALG_P256, 0},
        {HSMC_ALG_P256, HSMC_USE_ENCRYPT},
        {HSMC_ALG_P256, HSMC_USE_DECRYPT},
        {HSMC_ALG_P256, HSMC_USE_VERIFY},
        {HSMC_ALG_P256, HSMC_USE_SIGN | HSMC_USE_UNWRAP},
        {HSMC_ALG_ED25519, HSMC_USE_DERIVE},
        {HSMC_ALG_RSA2048, HSMC_USE_DERIVE},
        {HSMC_ALG_RSA2048, HSMC_USE_SIGN | HSMC_USE_ENCRYPT},
        {HSMC_ALG_RSA2048, HSMC_USE_WRAP},
        {HSMC_ALG_AES256, HSMC_USE_ENCRYPT | HSMC_ATTR_EXTRACTABLE},
        {HSMC_ALG_AES256, 0x80u},
    };

    memset(&good, 0, sizeof good);
    good.alg = HSMC_ALG_P256;
    good.usage = HSMC_USE_SIGN;
    memset(long_label, 'x', sizeof long_label - 1);
    long_label[sizeof long_label - 1] = '\0';

    CHECK_ERR(hsmc_key_generate(NULL, "bad", &good, &k), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_generate(&H, NULL, &good, &k), HSMC_ERR_ARG);
    CHECK(strstr(hsmc_detail(&H), "label") != NULL);
    CHECK_ERR(hsmc_key_generate(&H, "", &good, &k), HSMC_ERR_ARG);
    CHECK(strstr(hsmc_detail(&H), "empty") != NULL);
    CHECK_ERR(hsmc_key_generate(&H, long_label, &good, &k), HSMC_ERR_ARG);
    CHECK(strstr(hsmc_detail(&H), "HSMC_MAX_LABEL_LEN") != NULL);
    long_label[HSMC_MAX_LABEL_LEN] = '\0'; /* exactly the maximum is fine */
    CHECK_ERR(hsmc_key_generate(&H, long_label, &good, &k), HSMC_OK);
    CHECK_ERR(hsmc_key_delete(&H, &k), HSMC_OK);
    CHECK_ERR(hsmc_key_generate(&H, "bad", NULL, &k), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_generate(&H, "bad", &good, NULL), HSMC_ERR_ARG);
    for (i = 0; i < sizeof bad_specs / sizeof bad_specs[0]; i++) {
        spec = good;
        spec.alg = bad_specs[i].alg;
        spec.usage = bad_specs[i].usage;
        CHECK_ERR(hsmc_key_generate(&H, "bad", &spec, &k), HSMC_ERR_ARG);
        CHECK(hsmc_detail(&H)[0] != '\0');
        CHECK_ERR(hsmc_key_rotate(&H, "bad", &spec, &k), HSMC_ERR_ARG);
        CHECK_ERR(hsmc_key_import(&H, "bad", &spec, id40, 32, &k), HSMC_ERR_ARG);
    }
    spec = good;
    spec.id = id40;
    spec.id_len = 0;
    CHECK_ERR(hsmc_key_generate(&H, "bad", &spec, &k), HSMC_ERR_ARG);
    spec.id_len = sizeof id40;
    CHECK_ERR(hsmc_key_generate(&H, "bad", &spec, &k), HSMC_ERR_ARG);
    spec.id = NULL;
    spec.id_len = 4;
    CHECK_ERR(hsmc_key_generate(&H, "bad", &spec, &k), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_open(&H, NULL, &k), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_open(&H, "", &k), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_open(&H, "bad", NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_open(&H, "no-such-key", &k), HSMC_ERR_OBJECT_NOT_FOUND);
    CHECK(strstr(hsmc_detail(&H), "no-such-key") != NULL);
    CHECK_ERR(hsmc_key_find_or_create(&H, NULL, HSMC_PURPOSE_DATA, &k, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_find_or_create(&H, "bad", (hsmc_purpose_t)77, &k, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_import(&H, "bad", &good, NULL, 10, &k), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_rotate(&H, NULL, &good, &k), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_key_rotate(&H, long_label, &good, &k), HSMC_ERR_ARG);
    CHECK(count_objects(&H, NULL) == before);
    CHECK(count_objects(&H, "bad") == 0);
}

/* ---- injected faults (fault proxy) -------------------------------------- */

static hsmc_fault_api_t fault;

static void test_fault_attrs(void)
{
    hsmc_t f;
    hsmc_key_spec_t spec;
    hsmc_key_t k;
    size_t before;
    unsigned long rec;
    const char *proxy = hsmc_test_fault_load(&fault);
    static const struct {
        CK_ATTRIBUTE_TYPE type;
        CK_BBOOL value;
        hsmc_key_alg_t alg;
        const char *name;
    } cases[] = {
        {CKA_LOCAL, CK_FALSE, HSMC_ALG_P256, "CKA_LOCAL"},
        {CKA_ALWAYS_SENSITIVE, CK_FALSE, HSMC_ALG_AES128, "CKA_ALWAYS_SENSITIVE"},
        {CKA_NEVER_EXTRACTABLE, CK_FALSE, HSMC_ALG_P256, "CKA_NEVER_EXTRACTABLE"},
        {CKA_EXTRACTABLE, CK_TRUE, HSMC_ALG_AES256, "CKA_EXTRACTABLE"},
        {CKA_SENSITIVE, CK_FALSE, HSMC_ALG_P384, "CKA_SENSITIVE"},
        {CKA_DECRYPT, CK_TRUE, HSMC_ALG_P256, "CKA_DECRYPT"},
        {CKA_SIGN_RECOVER, CK_TRUE, HSMC_ALG_P256, "CKA_SIGN_RECOVER"},
        {CKA_WRAP, CK_TRUE, HSMC_ALG_P256, "CKA_WRAP"}, /* on the public key */
    };
    size_t i;

    if (proxy == NULL) {
        fprintf(stderr, "note %s: no fault proxy; skipped\n", hsmc_test_name);
        return;
    }
    fault.clear();
    hsmc_test_open(&f, "test", proxy);
    memset(&spec, 0, sizeof spec);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spec.alg = cases[i].alg;
        spec.usage = cases[i].alg == HSMC_ALG_AES128 || cases[i].alg == HSMC_ALG_AES256
                         ? HSMC_USE_ENCRYPT
                         : HSMC_USE_SIGN;
        before = count_objects(&f, NULL);
        fault.attr_override(cases[i].type, cases[i].value);
        CHECK_ERR(hsmc_key_generate(&f, "fault-attr", &spec, &k), HSMC_ERR_KEY_ATTRS);
        fault.clear();
        if (strstr(hsmc_detail(&f), cases[i].name) == NULL ||
            strstr(hsmc_detail(&f), "destroyed") == NULL) {
            fprintf(stderr, "  detail: %s\n", hsmc_detail(&f));
            CHECK(0);
        }
        CHECK(k.priv.handle == CK_INVALID_HANDLE);
        CHECK(count_objects(&f, NULL) == before);
        CHECK(count_objects(&f, "fault-attr") == 0);
    }
    /* An imported key is not LOCAL by definition: that is accepted. */
    spec.alg = HSMC_ALG_AES128;
    spec.usage = HSMC_USE_ENCRYPT;
    fault.attr_override(CKA_ALWAYS_SENSITIVE, CK_FALSE);
    CHECK_ERR(hsmc_key_import(&f, "fault-imp", &spec, (const uint8_t *)"0123456789abcdef", 16, &k),
              HSMC_OK);
    fault.clear();
    CHECK_ERR(hsmc_key_delete(&f, &k), HSMC_OK);

    /* The read-back fails right after generation: the new key goes. */
    spec.alg = HSMC_ALG_P256;
    spec.usage = HSMC_USE_SIGN;
    before = count_objects(&f, NULL);
    fault.reset_counts();
    fault.set("C_GetAttributeValue", CKR_DEVICE_ERROR, 0, 1);
    CHECK_ERR(hsmc_key_generate(&f, "fault-read", &spec, &k), HSMC_ERR_TOKEN);
    CHECK(hsmc_last_rv(&f) == CKR_DEVICE_ERROR);
    CHECK(fault.calls("C_GenerateKeyPair") == 1);
    CHECK(fault.calls("C_DestroyObject") == 2);
    fault.clear();
    CHECK(count_objects(&f, NULL) == before);
    /* the same for creation: import's public object fails */
    fault.set("C_CreateObject", CKR_DEVICE_ERROR, 1, 1);
    {
        static uint8_t der[512];
        size_t len = hsmc_test_read_file(hsmc_test_path("ec.p8"), der, sizeof der);
        if (len > 0) {
            CHECK_ERR(hsmc_key_import(&f, "fault-imp2", &spec, der, len, &k), HSMC_ERR_TOKEN);
            CHECK(count_objects(&f, NULL) == before);
        }
    }
    fault.clear();
    /* The token lacks the mechanism. */
    fault.set("C_GenerateKeyPair", CKR_MECHANISM_INVALID, 0, 1);
    CHECK_ERR(hsmc_key_generate(&f, "fault-mech", &spec, &k), HSMC_ERR_UNSUPPORTED);
    CHECK(strstr(hsmc_detail(&f), "p256") != NULL);
    fault.clear();
    CHECK(count_objects(&f, NULL) == before);

    /* The session dies after the token made the key: hsmc recovers, removes
     * what the first attempt made and makes it again: one key, no duplicate. */
    rec = hsmc_recoveries(&f);
    fault.reset_counts();
    fault.close_sessions_on("C_GetAttributeValue", 0);
    CHECK_ERR(hsmc_key_generate(&f, "fault-retry", &spec, &k), HSMC_OK);
    CHECK(hsmc_recoveries(&f) == rec + 1);
    CHECK(fault.calls("C_GenerateKeyPair") == 2);
    CHECK(count_objects(&f, "fault-retry") == 2);
    CHECK(count_objects(&f, NULL) == before + 2);
    check_key(&f, &k, HSMC_ALG_P256, HSMC_USE_SIGN, 0);
    /* ... and for a generation call that reports the loss itself */
    rec = hsmc_recoveries(&f);
    fault.set("C_GenerateKey", CKR_SESSION_HANDLE_INVALID, 0, 1);
    spec.alg = HSMC_ALG_AES128;
    spec.usage = HSMC_USE_ENCRYPT;
    CHECK_ERR(hsmc_key_generate(&f, "fault-retry2", &spec, &k), HSMC_OK);
    CHECK(hsmc_recoveries(&f) == rec + 1);
    CHECK(count_objects(&f, "fault-retry2") == 1);
    /* delete survives a loss between its two destroys */
    spec.alg = HSMC_ALG_P256;
    spec.usage = HSMC_USE_SIGN;
    CHECK_ERR(hsmc_key_generate(&f, "fault-del", &spec, &k), HSMC_OK);
    fault.close_sessions_on("C_DestroyObject", 1);
    CHECK_ERR(hsmc_key_delete(&f, &k), HSMC_OK);
    fault.clear();
    CHECK(count_objects(&f, "fault-del") == 0);
    /* export after a recovery finds the public key again */
    CHECK_ERR(hsmc_key_open(&f, "fault-retry", &k), HSMC_OK);
    fault.close_sessions_on("C_GetAttributeValue", 0);
    {
        static uint8_t der[256];
        size_t len = 0;
        CHECK_ERR(hsmc_key_export_pub(&f, &k, der, sizeof der, &len), HSMC_OK);
        CHECK(len == 91);
    }
    fault.clear();
    hsmc_close(&f);
}

/* ---- pkcs11-tool both ways ---------------------------------------------- */

static int p11tool(const char *args)
{
    return hsmc_test_sh("pkcs11-tool --module %s --token-label test2 --login --pin %s %s",
                        hsmc_test_env("HSMC_TEST_MODULE"), hsmc_test_env("HSMC_TEST_PIN"), args);
}

/* The block of `pkcs11-tool -O` output for object class `kind` with label. */
static int listing_has(const char *listing, const char *kind, const char *label,
                       const char *const *want)
{
    const char *p = listing;
    char lab[96];
    snprintf(lab, sizeof lab, "label:      %s\n", label);
    while ((p = strstr(p, kind)) != NULL) {
        /* the block ends where a line starts without indentation */
        const char *end = strchr(p, '\n');
        const char *l = strstr(p, lab);
        while (end != NULL && (end[1] == ' ' || end[1] == '\t'))
            end = strchr(end + 1, '\n');
        if (l != NULL && (end == NULL || l < end)) {
            size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
            char block[1024];
            int ok = 1;
            if (n >= sizeof block)
                n = sizeof block - 1;
            memcpy(block, p, n);
            block[n] = '\0';
            for (; *want != NULL; want++) {
                if (strstr(block, *want) == NULL) {
                    fprintf(stderr, "  pkcs11-tool block lacks '%s':\n%s\n", *want, block);
                    ok = 0;
                }
            }
            return ok;
        }
        p++;
    }
    fprintf(stderr, "  pkcs11-tool lists no %s '%s'\n", kind, label);
    return 0;
}

static void test_interop_pkcs11_tool(void)
{
    static uint8_t der[2048], ref[2048], listing[16384];
    hsmc_t h2;
    hsmc_key_t k;
    hsmc_key_spec_t spec;
    static const uint8_t id_ec[2] = {0x4b, 0x01}, id_rsa[2] = {0x4b, 0x02}, id_aes[2] = {0x4b, 0x03};
    /* made by pkcs11-tool below; id 0a<id_last> checked where it is not 0 */
    static const struct {
        const char *label;
        hsmc_key_alg_t alg;
        unsigned id_last;
    } p11_pairs[] = {{"p11-ec", HSMC_ALG_P256, 0x01}, {"p11-rsa", HSMC_ALG_RSA2048, 0}};
    size_t len, rlen, i;

    hsmc_test_open(&h2, "test2", NULL);
    /* made by pkcs11-tool, used by hsmc */
    REQUIRE(p11tool("--keypairgen --key-type EC:prime256v1 --label p11-ec --id 0a01 --usage-sign"));
    REQUIRE(p11tool("--keypairgen --key-type rsa:2048 --label p11-rsa --id 0a02 --usage-sign"));
    REQUIRE(p11tool("--keygen --key-type AES:32 --label p11-aes --id 0a03"));
    /* the pairs: hsmc exports the public key pkcs11-tool reads, and token
     * signatures verify with it */
    for (i = 0; i < sizeof p11_pairs / sizeof p11_pairs[0]; i++) {
        const char *label = p11_pairs[i].label;
        unsigned id = p11_pairs[i].id_last;
        char args[160], spki[64], raw[64], ref_name[64];
        snprintf(spki, sizeof spki, "%s.spki", label);
        snprintf(raw, sizeof raw, "%s.raw", label);
        snprintf(ref_name, sizeof ref_name, "%s.ref", label);
        CHECK_ERR(hsmc_key_open(&h2, label, &k), HSMC_OK);
        CHECK(k.alg == p11_pairs[i].alg && k.has_pub &&
              (id == 0 || (k.priv.id_len == 2 && k.priv.id[1] == id)));
        len = export_spki(&h2, &k, der, sizeof der, spki);
        snprintf(args, sizeof args, "--read-object --type pubkey --label %s -o $HSMC_TEST_DIR/%s",
                 label, raw);
        CHECK(p11tool(args));
        CHECK(hsmc_test_sh("openssl pkey -pubin -in %s -outform DER -out %s", hsmc_test_path(raw),
                           hsmc_test_path(ref_name)));
        rlen = hsmc_test_read_file(hsmc_test_path(ref_name), ref, sizeof ref);
        CHECK(len > 0 && len == rlen && memcmp(der, ref, len) == 0);
        CHECK(token_sig_verifies(&h2, &k, hsmc_test_path(spki)));
    }
    CHECK_ERR(hsmc_key_open(&h2, "p11-aes", &k), HSMC_OK);
    CHECK(k.alg == HSMC_ALG_AES256 && !k.has_pub && k.priv.cls == CKO_SECRET_KEY);

    /* made by hsmc, listed by pkcs11-tool */
    spec = hsmc_test_spec(HSMC_ALG_P256, HSMC_USE_SIGN);
    spec.id = id_ec;
    spec.id_len = 2;
    CHECK_ERR(hsmc_key_generate(&h2, "hsmc-ec", &spec, &k), HSMC_OK);
    spec.alg = HSMC_ALG_RSA2048;
    spec.usage = HSMC_USE_DECRYPT | HSMC_USE_UNWRAP;
    spec.id = id_rsa;
    CHECK_ERR(hsmc_key_generate(&h2, "hsmc-rsa", &spec, &k), HSMC_OK);
    spec.alg = HSMC_ALG_AES256;
    spec.usage = HSMC_USE_WRAP | HSMC_USE_UNWRAP;
    spec.id = id_aes;
    CHECK_ERR(hsmc_key_generate(&h2, "hsmc-aes", &spec, &k), HSMC_OK);
    REQUIRE(p11tool("-O > $HSMC_TEST_DIR/listing.txt"));
    len = hsmc_test_read_file(hsmc_test_path("listing.txt"), listing, sizeof listing - 1);
    listing[len] = '\0';
    if (getenv("HSMC_TEST_VERBOSE") != NULL)
        fprintf(stderr, "%s\n", (const char *)listing);
    {
        static const char *const priv_ec[] = {
            "Private Key Object; EC", "ID:         4b01", "Usage:      sign\n",
            "Access:     sensitive, always sensitive, never extractable, local", NULL};
        static const char *const pub_ec[] = {"Public Key Object; EC", "ID:         4b01",
                                             "Usage:      verify\n", NULL};
        static const char *const priv_rsa[] = {
            "Private Key Object; RSA", "ID:         4b02", "Usage:      decrypt, unwrap\n",
            "Access:     sensitive, always sensitive, never extractable, local", NULL};
        static const char *const pub_rsa[] = {"Public Key Object; RSA 2048 bits",
                                              "ID:         4b02", "Usage:      encrypt, wrap\n",
                                              NULL};
        static const char *const sec_aes[] = {
            "Secret Key Object; AES length 32", "ID:         4b03", "Usage:      wrap, unwrap\n",
            "Access:     sensitive, always sensitive, never extractable, local", NULL};
        CHECK(listing_has((const char *)listing, "Private Key Object", "hsmc-ec", priv_ec));
        CHECK(listing_has((const char *)listing, "Public Key Object", "hsmc-ec", pub_ec));
        CHECK(listing_has((const char *)listing, "Private Key Object", "hsmc-rsa", priv_rsa));
        CHECK(listing_has((const char *)listing, "Public Key Object", "hsmc-rsa", pub_rsa));
        CHECK(listing_has((const char *)listing, "Secret Key Object", "hsmc-aes", sec_aes));
    }
    /* pkcs11-tool reads hsmc's public key as hsmc exports it */
    CHECK_ERR(hsmc_key_open(&h2, "hsmc-ec", &k), HSMC_OK);
    len = export_spki(&h2, &k, der, sizeof der, "hsmc-ec.spki");
    CHECK(p11tool("--read-object --type pubkey --label hsmc-ec -o $HSMC_TEST_DIR/hsmc-ec.raw"));
    rlen = hsmc_test_read_file(hsmc_test_path("hsmc-ec.raw"), ref, sizeof ref);
    CHECK(len > 0 && len == rlen && memcmp(der, ref, len) == 0);
    /* and deletes what pkcs11-tool made */
    CHECK_ERR(hsmc_key_open(&h2, "p11-ec", &k), HSMC_OK);
    CHECK_ERR(hsmc_key_delete(&h2, &k), HSMC_OK);
    CHECK(count_objects(&h2, "p11-ec") == 0);
    hsmc_close(&h2);
}

/* ---- lone public keys (a pair generation cut short) ---------------------- */

/* Raw PKCS#11 on a borrowed session, outside hsmc's key code. */
static CK_RV raw_destroy(hsmc_t *h, CK_OBJECT_HANDLE o)
{
    hsmc_sess_t s;
    CK_RV rv;
    memset(&s, 0, sizeof s);
    if (hsmc_session_begin(h, &s) != HSMC_OK)
        return CKR_GENERAL_ERROR;
    rv = hsmc_functions(h)->C_DestroyObject(s.handle, o);
    (void)hsmc_session_end(&s, CKR_OK, NULL);
    return rv;
}

static CK_RV raw_set(hsmc_t *h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, const void *v,
                     size_t len)
{
    CK_ATTRIBUTE t = {type, (void *)(uintptr_t)v, len};
    hsmc_sess_t s;
    CK_RV rv;
    memset(&s, 0, sizeof s);
    if (hsmc_session_begin(h, &s) != HSMC_OK)
        return CKR_GENERAL_ERROR;
    rv = hsmc_functions(h)->C_SetAttributeValue(s.handle, o, &t, 1);
    (void)hsmc_session_end(&s, CKR_OK, NULL);
    return rv;
}

/*
 * A P-256 pair with CKA_ID {0x0c, n}, generated by hsmc under a spare label
 * and then labelled `label` (hsmc refuses a label that key objects hold).
 * priv: 0 destroys the private key, as a killed C_GenerateKeyPair leaves
 * it; 1 labels both halves `label`; 2 keeps the private key under
 * "<label>-priv". empty_id: the public key's CKA_ID is set empty.
 */
static int make_pair(hsmc_t *h, const char *label, uint8_t n, int priv, int empty_id)
{
    hsmc_key_spec_t spec;
    hsmc_key_t k;
    uint8_t id[2];
    char other[64];

    id[0] = 0x0c;
    id[1] = n;
    if (hsmc_purpose_spec(HSMC_PURPOSE_SIGNING, &spec) != HSMC_OK)
        return 0;
    spec.id = id;
    spec.id_len = sizeof id;
    snprintf(other, sizeof other, "%s-priv", label);
    if (hsmc_key_generate(h, "pair-in-making", &spec, &k) != HSMC_OK)
        return 0;
    if (raw_set(h, k.pub.handle, CKA_LABEL, label, strlen(label)) != CKR_OK)
        return 0;
    if (empty_id && raw_set(h, k.pub.handle, CKA_ID, "", 0) != CKR_OK)
        return 0;
    if (priv == 0)
        return raw_destroy(h, k.priv.handle) == CKR_OK;
    if (priv == 1)
        return raw_set(h, k.priv.handle, CKA_LABEL, label, strlen(label)) == CKR_OK;
    return raw_set(h, k.priv.handle, CKA_LABEL, other, strlen(other)) == CKR_OK;
}

/* Occurrences of needle in hay. */
static unsigned occurrences(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (hay = strstr(hay, needle); hay != NULL; hay = strstr(hay + 1, needle))
        n++;
    return n;
}

/* pkcs11-tool on token "test" (H), picked by slot id: --token-label takes
 * "test" as a prefix and may pick "test2". */
static int p11test(const char *args)
{
    CK_SLOT_ID slot = 0;
    if (hsmc_slot(&H, &slot) != HSMC_OK)
        return 0;
    return hsmc_test_sh("pkcs11-tool --module %s --slot %lu --login --pin %s %s",
                        hsmc_test_env("HSMC_TEST_MODULE"), (unsigned long)slot,
                        hsmc_test_env("HSMC_TEST_PIN"), args);
}

/* `pkcs11-tool --list-objects` of token "test" into buf (NUL-terminated). */
static int list_test_token(char *buf, size_t cap)
{
    char args[600];
    size_t len;
    snprintf(args, sizeof args, "--list-objects > %s", hsmc_test_path("objects.txt"));
    if (!p11test(args))
        return 0;
    len = hsmc_test_read_file(hsmc_test_path("objects.txt"), (uint8_t *)buf, cap - 1);
    buf[len] = '\0';
    return 1;
}

/* The test binary run again as `--orphans-no-login LABEL`: a process whose
 * context never logs in (login is process-wide, so it cannot be this one). */
static int orphans_no_login(const char *label)
{
    hsmc_cfg_t cfg;
    hsmc_t h;
    unsigned n = 99;
    hsmc_err_t err;

    hsmc_test_cfg(&cfg, "test");
    cfg.pin.kind = HSMC_PIN_NONE;
    cfg.pin.arg = NULL;
    hsmc_init(&h);
    err = hsmc_open(&h, &cfg);
    if (err == HSMC_OK)
        err = hsmc_key_remove_orphans(&h, label, &n);
    printf("%s %u %s\n", hsmc_err_name(err), n, hsmc_detail(&h));
    hsmc_close(&h);
    return 0;
}

static void test_orphans(void)
{
    static char listing[32768];
    char long_label[HSMC_MAX_LABEL_LEN + 2], self[1024];
    hsmc_key_t k;
    hsmc_t closed;
    unsigned n = 99;
    int created = -1;
    ssize_t sl;

    /* What a killed pair generation leaves: the public key alone. */
    REQUIRE(make_pair(&H, "orph", 1, 0, 0));
    CHECK(count_objects(&H, "orph") == 1);
    CHECK_ERR(hsmc_key_open(&H, "orph", &k), HSMC_ERR_OBJECT_NOT_FOUND);
    CHECK_ERR(hsmc_key_find_or_create(&H, "orph", HSMC_PURPOSE_MTLS_CLIENT, &k, &created),
              HSMC_ERR_EXISTS);
    CHECK(created == 0 && k.priv.handle == CK_INVALID_HANDLE);
    if (strstr(hsmc_detail(&H), "1 public key(s) and no private key") == NULL ||
        strstr(hsmc_detail(&H), "run hsmc key delete --orphans LABEL") == NULL ||
        strstr(hsmc_detail(&H), "hsmc_key_remove_orphans") == NULL) {
        fprintf(stderr, "  detail: %s\n", hsmc_detail(&H));
        CHECK(0);
    }
    CHECK(count_objects(&H, "orph") == 1); /* find-or-create never deletes on its own */
    CHECK_ERR(hsmc_key_remove_orphans(&H, "orph", &n), HSMC_OK);
    CHECK(n == 1);
    CHECK(count_objects(&H, "orph") == 0);
    REQUIRE(list_test_token(listing, sizeof listing));
    CHECK(strstr(listing, "label:      orph\n") == NULL);
    CHECK_ERR(hsmc_key_remove_orphans(&H, "orph", &n), HSMC_OK);
    CHECK(n == 0);
    CHECK_ERR(hsmc_key_find_or_create(&H, "orph", HSMC_PURPOSE_MTLS_CLIENT, &k, &created),
              HSMC_OK);
    CHECK(created == 1);
    check_key(&H, &k, HSMC_ALG_P256, HSMC_USE_SIGN, 0);
    CHECK_ERR(hsmc_key_remove_orphans(&H, "orph", NULL), HSMC_OK);
    CHECK(count_objects(&H, "orph") == 2);
    CHECK_ERR(hsmc_key_open(&H, "orph", &k), HSMC_OK);

    /* One label, everything at once: a complete pair (0c02), a certificate
     * of its own (0c09), a public key whose private key has another label
     * (0c04), and six lone public keys (0c03, 0c05..0c08, one with an
     * empty id): more than one search window of the walk. */
    REQUIRE(make_pair(&H, "mix", 2, 1, 0));
    REQUIRE(make_pair(&H, "mix", 3, 0, 0));
    REQUIRE(make_pair(&H, "mix", 4, 2, 0));
    REQUIRE(make_pair(&H, "mix", 5, 0, 0));
    REQUIRE(make_pair(&H, "mix", 6, 0, 0));
    REQUIRE(make_pair(&H, "mix", 7, 0, 0));
    REQUIRE(make_pair(&H, "mix", 8, 0, 0));
    REQUIRE(make_pair(&H, "mix", 10, 0, 1));
    REQUIRE(
        hsmc_test_sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "
                     "%s -subj /CN=mix -days 1 -outform DER -out %s",
                     hsmc_test_path("mix.key"), hsmc_test_path("mix.der")));
    snprintf(self, sizeof self, "--write-object %s --type cert --label mix --id 0c09",
             hsmc_test_path("mix.der"));
    REQUIRE(p11test(self));
    CHECK(count_objects(&H, "mix") == 10);
    /* Without the user login every public key would look alone: refused. */
    sl = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(sl > 0);
    self[sl] = '\0';
    CHECK(hsmc_test_sh("%s --orphans-no-login mix > %s", self, hsmc_test_path("nologin.txt")));
    {
        uint8_t out[512];
        size_t len = hsmc_test_read_file(hsmc_test_path("nologin.txt"), out, sizeof out - 1);
        out[len] = '\0';
        if (strncmp((const char *)out, "HSMC_ERR_NOT_LOGGED_IN 0 ", 25) != 0) {
            fprintf(stderr, "  without login: %s", (const char *)out);
            CHECK(0);
        }
    }
    CHECK(count_objects(&H, "mix") == 10);
    CHECK_ERR(hsmc_key_remove_orphans(&H, "mix", &n), HSMC_OK);
    CHECK(n == 6);
    CHECK(count_objects(&H, "mix") == 4);
    REQUIRE(list_test_token(listing, sizeof listing));
    CHECK(occurrences(listing, "ID:         0c02\n") == 2); /* the pair */
    CHECK(occurrences(listing, "ID:         0c04\n") == 2); /* both halves, two labels */
    CHECK(occurrences(listing, "ID:         0c09\n") == 1); /* the certificate */
    CHECK(occurrences(listing, "ID:         0c03\n") + occurrences(listing, "ID:         0c05\n") +
              occurrences(listing, "ID:         0c06\n") + occurrences(listing, "ID:         0c07\n") +
              occurrences(listing, "ID:         0c08\n") + occurrences(listing, "ID:         0c0a\n") ==
          0);
    CHECK_ERR(hsmc_key_open(&H, "mix", &k), HSMC_OK);
    CHECK(k.has_pub && k.priv.id_len == 2 && k.priv.id[1] == 2);
    CHECK_ERR(hsmc_key_remove_orphans(&H, "mix", &n), HSMC_OK);
    CHECK(n == 0 && count_objects(&H, "mix") == 4);

    /* A public key alone under its label, its private key under another:
     * not an orphan, and find-or-create does not call it one. */
    REQUIRE(make_pair(&H, "oth", 20, 2, 0));
    CHECK_ERR(hsmc_key_find_or_create(&H, "oth", HSMC_PURPOSE_SIGNING, &k, &created),
              HSMC_ERR_EXISTS);
    CHECK(strstr(hsmc_detail(&H), "none is a private or secret key") != NULL);
    CHECK(strstr(hsmc_detail(&H), "--orphans") == NULL);
    CHECK_ERR(hsmc_key_remove_orphans(&H, "oth", &n), HSMC_OK);
    CHECK(n == 0 && count_objects(&H, "oth") == 1);

    /* Bad arguments: an error, the detail, and nothing removed. */
    memset(long_label, 'x', sizeof long_label - 1);
    long_label[sizeof long_label - 1] = '\0';
    n = 99;
    CHECK_ERR(hsmc_key_remove_orphans(NULL, "mix", &n), HSMC_ERR_ARG);
    CHECK(n == 0);
    CHECK_ERR(hsmc_key_remove_orphans(&H, NULL, &n), HSMC_ERR_ARG);
    CHECK(strstr(hsmc_detail(&H), "label") != NULL);
    CHECK_ERR(hsmc_key_remove_orphans(&H, "", &n), HSMC_ERR_ARG);
    CHECK(strstr(hsmc_detail(&H), "empty") != NULL);
    CHECK_ERR(hsmc_key_remove_orphans(&H, long_label, &n), HSMC_ERR_ARG);
    CHECK(strstr(hsmc_detail(&H), "HSMC_MAX_LABEL_LEN") != NULL);
    hsmc_init(&closed);
    CHECK_ERR(hsmc_key_remove_orphans(&closed, "mix", &n), HSMC_ERR_STATE);
    CHECK(n == 0 && count_objects(&H, "mix") == 4);

    /* The session dies between two destroys: hsmc recovers, goes on, and
     * counts what it removed over both attempts. */
    {
        const char *proxy = hsmc_test_fault_load(&fault);
        unsigned long rec;
        hsmc_t f;
        if (proxy == NULL) {
            fprintf(stderr, "note %s: no fault proxy; recovery case skipped\n", hsmc_test_name);
            return;
        }
        REQUIRE(make_pair(&H, "orph-f", 11, 0, 0));
        REQUIRE(make_pair(&H, "orph-f", 12, 0, 0));
        REQUIRE(make_pair(&H, "orph-f", 13, 0, 0));
        REQUIRE(make_pair(&H, "orph-f", 14, 1, 0));
        fault.clear();
        hsmc_test_open(&f, "test", proxy);
        rec = hsmc_recoveries(&f);
        fault.close_sessions_on("C_DestroyObject", 1);
        CHECK_ERR(hsmc_key_remove_orphans(&f, "orph-f", &n), HSMC_OK);
        fault.clear();
        CHECK(n == 3);
        CHECK(hsmc_recoveries(&f) == rec + 1);
        CHECK(count_objects(&f, "orph-f") == 2);
        CHECK_ERR(hsmc_key_open(&f, "orph-f", &k), HSMC_OK);
        /* a token error on the destroy: reported, with what was removed before it */
        REQUIRE(make_pair(&H, "orph-g", 15, 0, 0));
        REQUIRE(make_pair(&H, "orph-g", 16, 0, 0));
        fault.set("C_DestroyObject", CKR_DEVICE_ERROR, 1, 1);
        CHECK_ERR(hsmc_key_remove_orphans(&f, "orph-g", &n), HSMC_ERR_TOKEN);
        fault.clear();
        CHECK(n == 1 && hsmc_last_rv(&f) == CKR_DEVICE_ERROR);
        CHECK(count_objects(&f, "orph-g") == 1);
        CHECK_ERR(hsmc_key_remove_orphans(&f, "orph-g", &n), HSMC_OK);
        CHECK(n == 1 && count_objects(&f, "orph-g") == 0);
        hsmc_close(&f);
    }
}

int main(int argc, char **argv)
{
    setvbuf(stderr, NULL, _IONBF, 0);
    if (argc == 3 && strcmp(argv[1], "--orphans-no-login") == 0)
        return orphans_no_login(argv[2]);
    hsmc_test_open(&H, "test", NULL);
    RUN(test_names);
    RUN(test_generate_all);
    RUN(test_generate_session_and_id);
    RUN(test_purposes);
    RUN(test_find_or_create);
    RUN(test_duplicate_label);
    RUN(test_rotation);
    RUN(test_rotation_many);
    RUN(test_import);
    RUN(test_export_pub);
    RUN(test_delete);
    RUN(test_bad_inputs);
    RUN(test_fault_attrs);
    RUN(test_interop_pkcs11_tool);
    RUN(test_orphans);
    hsmc_close(&H);
    return TEST_END();
}
