/*
 * Key operations (crypto.h) against a real SoftHSM2 token ("test" from
 * with-token.sh), each checked by an independent implementation:
 *   signatures     verified in the token, by `openssl dgst` / `openssl
 *                  pkeyutl` with the exported public key, and refused when a
 *                  byte is flipped;
 *   AES-GCM        against Python cryptography's AESGCM in both directions
 *                  with a key imported from known bytes;
 *   key wrap       against cryptography's aes_key_wrap(_with_padding);
 *   RSA            Python encrypts with the public key (OAEP-SHA1), the
 *                  token decrypts;
 *   digests        token == hsmc_hash (mbedTLS) == hashlib.
 * Bad inputs must fail with the documented error, leave no session object
 * behind, and (for usage violations) never reach the token: the fault proxy
 * (test/fault) counts the calls.
 *
 * Test keys are token objects made with raw PKCS#11 calls, so this test
 * does not depend on hsmc_key_generate.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdint.h>
#include <unistd.h>

#include "fault/hsmc_fault.h"
#include "hsmc_test.h"

static hsmc_t H;

/* ---- small helpers ---------------------------------------------------------- */

static const char py_helper[] =
    "import sys, binascii, hashlib\n"
    "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n"
    "from cryptography.hazmat.primitives import keywrap, serialization, hashes\n"
    "from cryptography.hazmat.primitives import padding as sympad\n"
    "from cryptography.hazmat.primitives.asymmetric import ec, rsa, ed25519, padding\n"
    "from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes\n"
    "from cryptography.exceptions import InvalidTag\n"
    "def u(s): return b'' if s == '-' else binascii.unhexlify(s)\n"
    "def x(b): print(binascii.hexlify(b).decode() if b else '-')\n"
    "def pem(pub, path):\n"
    "    open(path, 'wb').write(pub.public_bytes(serialization.Encoding.PEM,\n"
    "        serialization.PublicFormat.SubjectPublicKeyInfo))\n"
    "    print('-')\n"
    "a = sys.argv[1:]\n"
    "op = a[0]\n"
    "if op == 'gcm_enc': x(AESGCM(u(a[1])).encrypt(u(a[2]), u(a[4]), u(a[3])))\n"
    "elif op == 'gcm_dec':\n"
    "    try: x(AESGCM(u(a[1])).decrypt(u(a[2]), u(a[4]), u(a[3])))\n"
    "    except InvalidTag: print('FAIL')\n"
    "elif op == 'kw': x(keywrap.aes_key_wrap(u(a[1]), u(a[2])))\n"
    "elif op == 'kwp': x(keywrap.aes_key_wrap_with_padding(u(a[1]), u(a[2])))\n"
    "elif op == 'kwp_unwrap': x(keywrap.aes_key_unwrap_with_padding(u(a[1]), u(a[2])))\n"
    "elif op == 'cbc_dec':\n"
    "    d = u(a[2]); c = Cipher(algorithms.AES(u(a[1])), modes.CBC(d[:16])).decryptor()\n"
    "    p = c.update(d[16:]) + c.finalize(); un = sympad.PKCS7(128).unpadder()\n"
    "    x(un.update(p) + un.finalize())\n"
    "elif op == 'oaep_enc':\n"
    "    k = serialization.load_pem_public_key(open(a[1], 'rb').read())\n"
    "    x(k.encrypt(u(a[2]), padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)))\n"
    "elif op == 'hash': x(hashlib.new(a[1], u(a[2])).digest())\n"
    "elif op == 'pem_ec':\n"
    "    c = {'p256': ec.SECP256R1(), 'p384': ec.SECP384R1(), 'p521': ec.SECP521R1()}[a[1]]\n"
    "    pem(ec.EllipticCurvePublicKey.from_encoded_point(c, u(a[2])), a[3])\n"
    "elif op == 'pem_rsa':\n"
    "    pem(rsa.RSAPublicNumbers(int(a[2], 16), int(a[1], 16)).public_key(), a[3])\n"
    "elif op == 'pem_ed': pem(ed25519.Ed25519PublicKey.from_public_bytes(u(a[1])), a[2])\n"
    "elif op == 'pem_der':\n"
    "    k = serialization.load_pem_public_key(open(a[1], 'rb').read())\n"
    "    x(k.public_bytes(serialization.Encoding.DER,\n"
    "        serialization.PublicFormat.SubjectPublicKeyInfo))\n"
    "else: sys.exit('unknown op ' + op)\n";

/* Run the Python helper with `args`; its one output line (hex) is decoded
 * into out. @return bytes decoded, or -1 when it failed or printed FAIL. */
static long py(uint8_t *out, size_t cap, const char *fmt, ...)
{
    char args[8192], cmd[8400], line[8192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", hsmc_test_path("chk.py"), args);
    if (hsmc_test_cmd_line(cmd, line, sizeof line) != 0)
        return -1;
    return line[0] == '-' ? 0 : (long)hsmc_test_unhex(line, out, cap);
}

/* ---- raw PKCS#11 for making test keys ---------------------------------------- */

static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
#define A(t, p, l) {(t), (void *)(uintptr_t)(const void *)(p), (CK_ULONG)(l)}
#define B(t, on) A((t), (on) ? &yes : &no, sizeof(CK_BBOOL))

static CK_FUNCTION_LIST_PTR fl(void)
{
    return hsmc_functions(&H);
}

/* Fill k->priv / k->pub from the token by label. */
static int load_key(hsmc_t *h, const char *label, int pair, hsmc_key_alg_t alg, hsmc_key_t *k)
{
    hsmc_obj_query_t q;
    memset(k, 0, sizeof *k);
    memset(&q, 0, sizeof q);
    q.label = label;
    q.has_class = 1;
    q.cls = pair ? CKO_PRIVATE_KEY : CKO_SECRET_KEY;
    if (hsmc_find(h, &q, &k->priv) != HSMC_OK)
        return 0;
    if (pair) {
        q.cls = CKO_PUBLIC_KEY;
        if (hsmc_find(h, &q, &k->pub) != HSMC_OK)
            return 0;
        k->has_pub = 1;
    }
    k->alg = alg;
    return 1;
}

/* The attributes every private or secret test key starts with: a private,
 * sensitive token object labelled `label`. @return how many went into t. */
static CK_ULONG key_attrs(CK_ATTRIBUTE *t, const char *label, int extractable)
{
    CK_ULONG n = 0;
    t[n++] = (CK_ATTRIBUTE)A(CKA_TOKEN, &yes, 1);
    t[n++] = (CK_ATTRIBUTE)A(CKA_PRIVATE, &yes, 1);
    t[n++] = (CK_ATTRIBUTE)A(CKA_SENSITIVE, &yes, 1);
    t[n++] = (CK_ATTRIBUTE)B(CKA_EXTRACTABLE, extractable);
    t[n++] = (CK_ATTRIBUTE)A(CKA_LABEL, label, strlen(label));
    return n;
}

/* Generate a pair: kind 'e' (EC, params = curve DER), 'r' (RSA, bits), 'd' (Ed25519). */
static int gen_pair(const char *label, int kind, const uint8_t *params, size_t plen,
                    unsigned use, int extractable, hsmc_key_alg_t alg, hsmc_key_t *k)
{
    static const CK_BYTE f4[] = {1, 0, 1};
    CK_ULONG bits = 2048;
    CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pub[8], priv[10];
    CK_ULONG np = 0, nv = 0;
    CK_OBJECT_HANDLE hp, hv;
    hsmc_sess_t s;
    CK_RV rv;

    pub[np++] = (CK_ATTRIBUTE)A(CKA_TOKEN, &yes, 1);
    pub[np++] = (CK_ATTRIBUTE)A(CKA_LABEL, label, strlen(label));
    pub[np++] = (CK_ATTRIBUTE)B(CKA_VERIFY, use & HSMC_USE_VERIFY);
    nv = key_attrs(priv, label, extractable);
    priv[nv++] = (CK_ATTRIBUTE)B(CKA_SIGN, use & HSMC_USE_SIGN);
    priv[nv++] = (CK_ATTRIBUTE)B(CKA_DECRYPT, use & HSMC_USE_DECRYPT);
    priv[nv++] = (CK_ATTRIBUTE)B(CKA_UNWRAP, use & HSMC_USE_UNWRAP);
    priv[nv++] = (CK_ATTRIBUTE)B(CKA_DERIVE, 0);
    if (kind == 'r') {
        m.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
        pub[np++] = (CK_ATTRIBUTE)B(CKA_ENCRYPT, use & HSMC_USE_ENCRYPT);
        pub[np++] = (CK_ATTRIBUTE)B(CKA_WRAP, use & HSMC_USE_WRAP);
        pub[np++] = (CK_ATTRIBUTE)A(CKA_MODULUS_BITS, &bits, sizeof bits);
        pub[np++] = (CK_ATTRIBUTE)A(CKA_PUBLIC_EXPONENT, f4, sizeof f4);
    } else {
        if (kind == 'd')
            m.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
        pub[np++] = (CK_ATTRIBUTE)A(CKA_EC_PARAMS, params, plen);
    }
    memset(&s, 0, sizeof s);
    if (hsmc_session_begin(&H, &s) != HSMC_OK)
        return 0;
    rv = fl()->C_GenerateKeyPair(s.handle, &m, pub, np, priv, nv, &hp, &hv);
    (void)hsmc_session_end(&s, rv, "C_GenerateKeyPair");
    if (rv != CKR_OK) {
        fprintf(stderr, "C_GenerateKeyPair(%s): %s\n", label, hsmc_ckr_name(rv));
        return 0;
    }
    return load_key(&H, label, 1, alg, k);
}

/* An AES key (value NULL: generated, else imported from these bytes), or a
 * generic secret when kt says so. */
static int make_secret(const char *label, CK_KEY_TYPE kt, const uint8_t *value, size_t len,
                       unsigned use, int extractable, hsmc_key_alg_t alg, hsmc_key_t *k)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ULONG vlen = len;
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE t[16];
    CK_ULONG n = 0;
    CK_OBJECT_HANDLE o;
    hsmc_sess_t s;
    CK_RV rv;

    n = key_attrs(t, label, extractable);
    t[n++] = (CK_ATTRIBUTE)B(CKA_ENCRYPT, use & HSMC_USE_ENCRYPT);
    t[n++] = (CK_ATTRIBUTE)B(CKA_DECRYPT, use & HSMC_USE_DECRYPT);
    t[n++] = (CK_ATTRIBUTE)B(CKA_WRAP, use & HSMC_USE_WRAP);
    t[n++] = (CK_ATTRIBUTE)B(CKA_UNWRAP, use & HSMC_USE_UNWRAP);
    t[n++] = (CK_ATTRIBUTE)B(CKA_SIGN, 0);
    t[n++] = (CK_ATTRIBUTE)B(CKA_VERIFY, 0);
    memset(&s, 0, sizeof s);
    if (hsmc_session_begin(&H, &s) != HSMC_OK)
        return 0;
    if (value == NULL) {
        t[n++] = (CK_ATTRIBUTE)A(CKA_VALUE_LEN, &vlen, sizeof vlen);
        rv = fl()->C_GenerateKey(s.handle, &m, t, n, &o);
    } else {
        t[n++] = (CK_ATTRIBUTE)A(CKA_CLASS, &cls, sizeof cls);
        t[n++] = (CK_ATTRIBUTE)A(CKA_KEY_TYPE, &kt, sizeof kt);
        t[n++] = (CK_ATTRIBUTE)A(CKA_VALUE, value, len);
        rv = fl()->C_CreateObject(s.handle, t, n, &o);
    }
    (void)hsmc_session_end(&s, rv, "make_secret");
    if (rv != CKR_OK) {
        fprintf(stderr, "make_secret(%s): %s\n", label, hsmc_ckr_name(rv));
        return 0;
    }
    return load_key(&H, label, 0, alg, k);
}

/* Session objects visible to this application (CKA_TOKEN FALSE). Sessions
 * may have been closed behind hsmc's back (fault tests): recover and retry. */
static long session_objects(void)
{
    CK_ATTRIBUTE t[1] = {A(CKA_TOKEN, &no, 1)};
    CK_OBJECT_HANDLE found[16];
    CK_ULONG n = 0;
    long count;
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv;

    memset(&s, 0, sizeof s);
    do {
        if (hsmc_session_begin(&H, &s) != HSMC_OK)
            return -1;
        count = 0;
        rv = fl()->C_FindObjectsInit(s.handle, t, 1);
        while (rv == CKR_OK && (rv = fl()->C_FindObjects(s.handle, found, 16, &n)) == CKR_OK &&
               n > 0)
            count += (long)n;
        if (rv == CKR_OK)
            rv = fl()->C_FindObjectsFinal(s.handle);
        err = hsmc_session_end(&s, rv, "C_FindObjects");
    } while (err == HSMC_RETRY);
    return err == HSMC_OK ? count : -1;
}

/* Read an attribute of a key object (malloc'd, *len set). */
static uint8_t *read_attr(const hsmc_obj_t *o, CK_ATTRIBUTE_TYPE type, size_t *len)
{
    CK_ATTRIBUTE t = {type, NULL, 0};
    uint8_t *v = NULL;
    hsmc_sess_t s;
    memset(&s, 0, sizeof s);
    if (hsmc_session_begin(&H, &s) != HSMC_OK)
        return NULL;
    if (fl()->C_GetAttributeValue(s.handle, o->handle, &t, 1) == CKR_OK &&
        (v = malloc(t.ulValueLen + 1)) != NULL) {
        t.pValue = v;
        if (fl()->C_GetAttributeValue(s.handle, o->handle, &t, 1) != CKR_OK) {
            free(v);
            v = NULL;
        }
    }
    (void)hsmc_session_end(&s, CKR_OK, NULL);
    *len = t.ulValueLen;
    return v;
}

/* Write the public key of k as PEM (curve: "p256", "p384", "p521", "ed25519", "rsa"). */
static int export_pem(const hsmc_key_t *k, const char *curve, const char *file)
{
    size_t n, e_len, off = 0;
    uint8_t *v, *e;
    char *hx, *he;
    long r;

    if (strcmp(curve, "rsa") == 0) {
        v = read_attr(&k->pub, CKA_MODULUS, &n);
        e = read_attr(&k->pub, CKA_PUBLIC_EXPONENT, &e_len);
        if (v == NULL || e == NULL)
            return 0;
        hx = hsmc_test_hexs(v, n);
        he = hsmc_test_hexs(e, e_len);
        r = py(NULL, 0, "pem_rsa %s %s %s", hx, he, hsmc_test_path(file));
        free(he);
        free(e);
    } else {
        v = read_attr(&k->pub, CKA_EC_POINT, &n);
        if (v == NULL)
            return 0;
        /* Most tokens wrap the point in a DER OCTET STRING. */
        if (n > 2 && v[0] == 0x04 && v[1] == n - 2)
            off = 2;
        else if (n > 3 && v[0] == 0x04 && v[1] == 0x81 && v[2] == n - 3)
            off = 3;
        hx = hsmc_test_hexs(v + off, n - off);
        if (strcmp(curve, "ed25519") == 0)
            r = py(NULL, 0, "pem_ed %s %s", hx, hsmc_test_path(file));
        else
            r = py(NULL, 0, "pem_ec %s %s %s", curve, hx, hsmc_test_path(file));
    }
    free(hx);
    free(v);
    return r >= 0;
}

static int detail_has(const char *needle)
{
    const char *d = hsmc_detail(&H);
    if (strstr(d, needle) != NULL)
        return 1;
    fprintf(stderr, "  detail \"%s\" lacks \"%s\"\n", d, needle);
    return 0;
}

/* 1 when the token lists CKM_AES_KEY_WRAP_KWP (0x210B); SoftHSM2 2.6 has
 * RFC 5649 only as 0x210A and pads odd lengths first, so hsmc refuses them. */
static int has_kwp(void)
{
    CK_MECHANISM_INFO mi;
    CK_SLOT_ID slot;
    return hsmc_slot(&H, &slot) == HSMC_OK &&
           fl()->C_GetMechanismInfo(slot, 0x210BUL, &mi) == CKR_OK;
}

/* ---- keys shared by the tests ------------------------------------------------- */

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t oid_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const uint8_t name_ed25519[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd',
                                       's',  '2',  '5', '5', '1', '9'};

static hsmc_key_t k_p256, k_p384, k_p521, k_rsa, k_ed, k_nosign, k_rsa_wrap;
static hsmc_key_t k_aes128, k_aes256, k_aes_known, k_aes_other, k_kek, k_kek_nowrap;
static hsmc_key_t k_target, k_target_odd, k_target_fixed;
static uint8_t aes_known[32], kek_bytes[32], target_bytes[32], odd_bytes[21];
static int have_keys;

static void make_keys(void)
{
    unsigned su = HSMC_USE_SIGN | HSMC_USE_VERIFY;
    unsigned rsa_use = su | HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT;
    unsigned aes_use = HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT;
    unsigned kek_use = HSMC_USE_WRAP | HSMC_USE_UNWRAP;

    hsmc_test_fill(aes_known, sizeof aes_known, 1);
    hsmc_test_fill(kek_bytes, sizeof kek_bytes, 2);
    hsmc_test_fill(target_bytes, sizeof target_bytes, 3);
    hsmc_test_fill(odd_bytes, sizeof odd_bytes, 4);
    /* P-384 and Ed25519 keep alg NONE: their sizes come from CKA_EC_PARAMS. */
    REQUIRE(gen_pair("p256", 'e', oid_p256, sizeof oid_p256, su, 0, HSMC_ALG_P256, &k_p256));
    REQUIRE(gen_pair("p384", 'e', oid_p384, sizeof oid_p384, su, 0, HSMC_ALG_NONE, &k_p384));
    REQUIRE(gen_pair("p521", 'e', oid_p521, sizeof oid_p521, su, 0, HSMC_ALG_P521, &k_p521));
    REQUIRE(gen_pair("rsa", 'r', NULL, 0, rsa_use, 0, HSMC_ALG_RSA2048, &k_rsa));
    REQUIRE(gen_pair("ed", 'd', name_ed25519, sizeof name_ed25519, su, 0, HSMC_ALG_NONE, &k_ed));
    REQUIRE(gen_pair("nosign", 'e', oid_p256, sizeof oid_p256, HSMC_USE_VERIFY, 0, HSMC_ALG_P256,
                     &k_nosign));
    /* RSA pair for key transport: public half wraps, private half unwraps;
     * alg NONE (modulus read from the token). */
    REQUIRE(gen_pair("rsa-kek", 'r', NULL, 0, HSMC_USE_WRAP | HSMC_USE_UNWRAP, 0, HSMC_ALG_NONE,
                     &k_rsa_wrap));
    REQUIRE(make_secret("aes128", CKK_AES, NULL, 16, aes_use, 0, HSMC_ALG_AES128, &k_aes128));
    REQUIRE(make_secret("aes256", CKK_AES, NULL, 32, aes_use, 0, HSMC_ALG_AES256, &k_aes256));
    REQUIRE(make_secret("aes-known", CKK_AES, aes_known, 32, aes_use, 0, HSMC_ALG_AES256,
                        &k_aes_known));
    REQUIRE(make_secret("aes-other", CKK_AES, NULL, 32, aes_use, 0, HSMC_ALG_AES256,
                        &k_aes_other));
    REQUIRE(make_secret("kek", CKK_AES, kek_bytes, 32, kek_use, 0, HSMC_ALG_AES256, &k_kek));
    REQUIRE(make_secret("kek-nowrap", CKK_AES, NULL, 32, HSMC_USE_UNWRAP, 0, HSMC_ALG_AES256,
                        &k_kek_nowrap));
    REQUIRE(make_secret("target", CKK_AES, target_bytes, 32, aes_use, 1, HSMC_ALG_AES256,
                        &k_target));
    REQUIRE(make_secret("target-odd", CKK_GENERIC_SECRET, odd_bytes, sizeof odd_bytes, 0, 1,
                        HSMC_ALG_NONE, &k_target_odd));
    REQUIRE(make_secret("target-fixed", CKK_AES, NULL, 32, aes_use, 0, HSMC_ALG_AES256,
                        &k_target_fixed));
    have_keys = 1;
}

/* ---- signatures ------------------------------------------------------------------ */

typedef struct sigcase {
    const char *name;
    hsmc_key_t *key;
    const char *curve; /* for export_pem */
    hsmc_sig_scheme_t scheme;
    hsmc_hash_t hash;
    const char *md; /* openssl digest name */
} sigcase_t;

static const sigcase_t sigcases[] = {
    {"P-256/SHA-256", &k_p256, "p256", HSMC_SIG_ECDSA, HSMC_HASH_SHA256, "sha256"},
    {"P-256/SHA-512", &k_p256, "p256", HSMC_SIG_ECDSA, HSMC_HASH_SHA512, "sha512"},
    {"P-384/SHA-384", &k_p384, "p384", HSMC_SIG_ECDSA, HSMC_HASH_SHA384, "sha384"},
    {"P-384/SHA-256", &k_p384, "p384", HSMC_SIG_ECDSA, HSMC_HASH_SHA256, "sha256"},
    {"P-521/SHA-512", &k_p521, "p521", HSMC_SIG_ECDSA, HSMC_HASH_SHA512, "sha512"},
    {"RSA PKCS1/SHA-224", &k_rsa, "rsa", HSMC_SIG_RSA_PKCS1, HSMC_HASH_SHA224, "sha224"},
    {"RSA PKCS1/SHA-256", &k_rsa, "rsa", HSMC_SIG_RSA_PKCS1, HSMC_HASH_SHA256, "sha256"},
    {"RSA PKCS1/SHA-384", &k_rsa, "rsa", HSMC_SIG_RSA_PKCS1, HSMC_HASH_SHA384, "sha384"},
    {"RSA PKCS1/SHA-512", &k_rsa, "rsa", HSMC_SIG_RSA_PKCS1, HSMC_HASH_SHA512, "sha512"},
    {"RSA PSS/SHA-224", &k_rsa, "rsa", HSMC_SIG_RSA_PSS, HSMC_HASH_SHA224, "sha224"},
    {"RSA PSS/SHA-256", &k_rsa, "rsa", HSMC_SIG_RSA_PSS, HSMC_HASH_SHA256, "sha256"},
    {"RSA PSS/SHA-384", &k_rsa, "rsa", HSMC_SIG_RSA_PSS, HSMC_HASH_SHA384, "sha384"},
    {"RSA PSS/SHA-512", &k_rsa, "rsa", HSMC_SIG_RSA_PSS, HSMC_HASH_SHA512, "sha512"},
    {"Ed25519", &k_ed, "ed25519", HSMC_SIG_EDDSA, HSMC_HASH_NONE, NULL},
};

/* openssl verifies sig.bin over msg.bin (or dgst.bin for a digest) with pub.pem. */
static int openssl_verify(const sigcase_t *c, int over_digest)
{
    const char *pss = c->scheme == HSMC_SIG_RSA_PSS ? "pss" : NULL;
    if (c->scheme == HSMC_SIG_EDDSA)
        return hsmc_test_system(
            "openssl pkeyutl -verify -pubin -inkey %s -rawin -in %s -sigfile %s "
            ">/dev/null 2>&1",
            hsmc_test_path("pub.pem"), hsmc_test_path("msg.bin"), hsmc_test_path("sig.bin"));
    if (over_digest)
        return hsmc_test_system(
            "openssl pkeyutl -verify -pubin -inkey %s -in %s -sigfile %s -pkeyopt "
            "digest:%s %s >/dev/null 2>&1",
            hsmc_test_path("pub.pem"), hsmc_test_path("dgst.bin"), hsmc_test_path("sig.bin"), c->md,
            pss ? "-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest" : "");
    return hsmc_test_system(
        "openssl dgst -%s %s -verify %s -signature %s %s >/dev/null 2>&1", c->md,
        pss ? "-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest" : "",
        hsmc_test_path("pub.pem"), hsmc_test_path("sig.bin"), hsmc_test_path("msg.bin"));
}

/* Write the signature for openssl: DER for ECDSA. */
static int write_sig(const sigcase_t *c, const uint8_t *sig, size_t len)
{
    uint8_t der[160], back[132];
    size_t dlen = 0;
    if (c->scheme != HSMC_SIG_ECDSA) {
        hsmc_test_write_bin("sig.bin", sig, len);
        return 1;
    }
    if (hsmc_ecdsa_raw_to_der(sig, len, der, sizeof der, &dlen) != HSMC_OK)
        return 0;
    if (hsmc_ecdsa_der_to_raw(der, dlen, len / 2, back) != HSMC_OK || memcmp(back, sig, len))
        return 0;
    hsmc_test_write_bin("sig.bin", der, dlen);
    return 1;
}

static void test_sign_verify(void)
{
    uint8_t msg[1000], sig[600], dg[64];
    size_t i, need, len, dlen;

    REQUIRE(have_keys);
    hsmc_test_fill(msg, sizeof msg, 9);
    hsmc_test_write_bin("msg.bin", msg, sizeof msg);
    for (i = 0; i < sizeof sigcases / sizeof sigcases[0]; i++) {
        const sigcase_t *c = &sigcases[i];
        hsmc_sig_alg_t alg = {c->scheme, c->hash};
        int ok = 1;

        /* size-only, then sign into an exact buffer with a canary after it */
        need = 0;
        CHECK_ERR(hsmc_sign(&H, c->key, alg, msg, sizeof msg, NULL, 0, &need), HSMC_OK);
        CHECK(need > 0 && need + 8 <= sizeof sig);
        memset(sig, 0xA5, sizeof sig);
        len = 0;
        CHECK_ERR(hsmc_sign(&H, c->key, alg, msg, sizeof msg, sig, need, &len), HSMC_OK);
        CHECK(len == need);
        CHECK(sig[need] == 0xA5);
        CHECK_ERR(hsmc_verify(&H, c->key, alg, msg, sizeof msg, sig, len), HSMC_OK);
        CHECK(export_pem(c->key, c->curve, "pub.pem"));
        {
            /* hsmc_key_export_pub (key.h) gives the same SPKI */
            uint8_t der[600], pyder[600];
            size_t dl = 0;
            long r;
            CHECK_ERR(hsmc_key_export_pub(&H, c->key, der, sizeof der, &dl), HSMC_OK);
            r = py(pyder, sizeof pyder, "pem_der %s", hsmc_test_path("pub.pem"));
            CHECK(r > 0 && (size_t)r == dl && memcmp(der, pyder, dl) == 0);
        }
        CHECK(write_sig(c, sig, len));
        if (openssl_verify(c, 0) != 0) {
            fprintf(stderr, "  openssl rejects %s\n", c->name);
            ok = 0;
        }
        /* a flipped byte fails in the token and in openssl */
        sig[len / 3] ^= 0x10;
        CHECK_ERR(hsmc_verify(&H, c->key, alg, msg, sizeof msg, sig, len), HSMC_ERR_SIGNATURE);
        if (write_sig(c, sig, len) && openssl_verify(c, 0) == 0) {
            fprintf(stderr, "  openssl accepts a corrupted %s signature\n", c->name);
            ok = 0;
        }
        sig[len / 3] ^= 0x10;
        /* another message fails */
        msg[0] ^= 1;
        CHECK_ERR(hsmc_verify(&H, c->key, alg, msg, sizeof msg, sig, len), HSMC_ERR_SIGNATURE);
        msg[0] ^= 1;
        /* a truncated signature fails, an empty one too */
        CHECK_ERR(hsmc_verify(&H, c->key, alg, msg, sizeof msg, sig, len - 1),
                  HSMC_ERR_SIGNATURE);
        CHECK_ERR(hsmc_verify(&H, c->key, alg, msg, sizeof msg, sig, 0), HSMC_ERR_SIGNATURE);

        if (c->scheme != HSMC_SIG_EDDSA) {
            /* over a digest: verifies here, with verify_digest, and with pkeyutl */
            dlen = hsmc_hash_len(c->hash);
            CHECK_ERR(hsmc_hash(c->hash, msg, sizeof msg, dg), HSMC_OK);
            hsmc_test_write_bin("dgst.bin", dg, dlen);
            len = 0;
            CHECK_ERR(hsmc_sign_digest(&H, c->key, alg, dg, dlen, sig, sizeof sig, &len),
                      HSMC_OK);
            CHECK(len == need);
            CHECK_ERR(hsmc_verify(&H, c->key, alg, msg, sizeof msg, sig, len), HSMC_OK);
            CHECK_ERR(hsmc_verify_digest(&H, c->key, alg, dg, dlen, sig, len), HSMC_OK);
            CHECK(write_sig(c, sig, len));
            if (openssl_verify(c, 1) != 0) {
                fprintf(stderr, "  openssl pkeyutl rejects %s over the digest\n", c->name);
                ok = 0;
            }
            CHECK_ERR(hsmc_sign_digest(&H, c->key, alg, dg, dlen - 1, sig, sizeof sig, &len),
                      HSMC_ERR_ARG);
        }
        if (!ok)
            hsmc_test_cur_failed = 1;
    }
}

/* PKCS#1 v1.5 is deterministic: sign(msg) == sign_digest(hash(msg)). */
static void test_pkcs1_deterministic(void)
{
    static const hsmc_hash_t hashes[] = {HSMC_HASH_SHA224, HSMC_HASH_SHA256, HSMC_HASH_SHA384,
                                         HSMC_HASH_SHA512};
    uint8_t msg[77], a[256], b[256], dg[64];
    size_t i, la = 0, lb = 0;

    REQUIRE(have_keys);
    hsmc_test_fill(msg, sizeof msg, 5);
    for (i = 0; i < 4; i++) {
        hsmc_sig_alg_t alg = {HSMC_SIG_RSA_PKCS1, hashes[i]};
        CHECK_ERR(hsmc_sign(&H, &k_rsa, alg, msg, sizeof msg, a, sizeof a, &la), HSMC_OK);
        CHECK_ERR(hsmc_hash(hashes[i], msg, sizeof msg, dg), HSMC_OK);
        CHECK_ERR(hsmc_sign_digest(&H, &k_rsa, alg, dg, hsmc_hash_len(hashes[i]), b, sizeof b,
                                   &lb),
                  HSMC_OK);
        CHECK(la == 256 && lb == 256 && memcmp(a, b, 256) == 0);
    }
}

static void test_sign_errors(void)
{
    hsmc_sig_alg_t es256 = {HSMC_SIG_ECDSA, HSMC_HASH_SHA256};
    hsmc_sig_alg_t ps256 = {HSMC_SIG_RSA_PSS, HSMC_HASH_SHA256};
    hsmc_sig_alg_t ed = {HSMC_SIG_EDDSA, HSMC_HASH_NONE};
    uint8_t msg[10] = {1, 2, 3}, sig[300], dg[32] = {0};
    size_t len = 0, need = 0;
    hsmc_key_t nopub, empty;

    REQUIRE(have_keys);
    CHECK_ERR(hsmc_sign(NULL, &k_p256, es256, msg, sizeof msg, sig, sizeof sig, &len),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_sign(&H, NULL, es256, msg, sizeof msg, sig, sizeof sig, &len), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_sign(&H, &k_p256, es256, msg, sizeof msg, sig, sizeof sig, NULL),
              HSMC_ERR_ARG);
    /* empty message */
    CHECK_ERR(hsmc_sign(&H, &k_p256, es256, msg, 0, sig, sizeof sig, &len), HSMC_ERR_ARG);
    CHECK(detail_has("empty"));
    CHECK_ERR(hsmc_sign(&H, &k_p256, es256, NULL, 5, sig, sizeof sig, &len), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_verify(&H, &k_p256, es256, msg, 0, sig, 64), HSMC_ERR_ARG);
    /* unknown scheme and hash, SHA-1, EdDSA with a hash */
    {
        hsmc_sig_alg_t bad = {(hsmc_sig_scheme_t)42, HSMC_HASH_SHA256};
        CHECK_ERR(hsmc_sign(&H, &k_p256, bad, msg, sizeof msg, sig, sizeof sig, &len),
                  HSMC_ERR_ARG);
        CHECK(detail_has("unknown signature scheme"));
        bad.scheme = HSMC_SIG_ECDSA;
        bad.hash = (hsmc_hash_t)99;
        CHECK_ERR(hsmc_sign(&H, &k_p256, bad, msg, sizeof msg, sig, sizeof sig, &len),
                  HSMC_ERR_ARG);
        bad.hash = HSMC_HASH_NONE;
        CHECK_ERR(hsmc_sign(&H, &k_p256, bad, msg, sizeof msg, sig, sizeof sig, &len),
                  HSMC_ERR_ARG);
        bad.hash = HSMC_HASH_SHA1;
        CHECK_ERR(hsmc_sign(&H, &k_p256, bad, msg, sizeof msg, sig, sizeof sig, &len),
                  HSMC_ERR_UNSUPPORTED);
        bad.scheme = HSMC_SIG_EDDSA;
        bad.hash = HSMC_HASH_SHA256;
        CHECK_ERR(hsmc_sign(&H, &k_ed, bad, msg, sizeof msg, sig, sizeof sig, &len),
                  HSMC_ERR_ARG);
        CHECK_ERR(hsmc_sign_digest(&H, &k_ed, ed, dg, 32, sig, sizeof sig, &len), HSMC_ERR_ARG);
    }
    /* scheme that does not fit the key type: ARG naming both types */
    CHECK_ERR(hsmc_sign(&H, &k_rsa, es256, msg, sizeof msg, sig, sizeof sig, &len), HSMC_ERR_ARG);
    CHECK(detail_has("'rsa'") && detail_has("EC"));
    CHECK_ERR(hsmc_sign(&H, &k_p256, ps256, msg, sizeof msg, sig, sizeof sig, &len),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_sign(&H, &k_aes256, es256, msg, sizeof msg, sig, sizeof sig, &len),
              HSMC_ERR_ARG);
    CHECK(detail_has("secret-key"));
    /* key without CKA_SIGN */
    CHECK_ERR(hsmc_sign(&H, &k_nosign, es256, msg, sizeof msg, sig, sizeof sig, &len),
              HSMC_ERR_KEY_USAGE);
    CHECK(detail_has("'nosign'") && detail_has("CKA_SIGN"));
    /* verify needs the public half */
    nopub = k_p256;
    nopub.has_pub = 0;
    CHECK_ERR(hsmc_verify(&H, &nopub, es256, msg, sizeof msg, sig, 64), HSMC_ERR_ARG);
    CHECK(detail_has("public"));
    memset(&empty, 0, sizeof empty);
    CHECK_ERR(hsmc_sign(&H, &empty, es256, msg, sizeof msg, sig, sizeof sig, &len), HSMC_ERR_ARG);
    /* wrong digest length */
    CHECK_ERR(hsmc_sign_digest(&H, &k_p256, es256, dg, 31, sig, sizeof sig, &len), HSMC_ERR_ARG);
    CHECK(detail_has("31"));
    CHECK_ERR(hsmc_verify_digest(&H, &k_p256, es256, dg, 20, sig, 64), HSMC_ERR_ARG);
    /* short buffer: BUFFER with the size, nothing written */
    memset(sig, 0x5A, sizeof sig);
    need = 0;
    CHECK_ERR(hsmc_sign(&H, &k_p521, (hsmc_sig_alg_t){HSMC_SIG_ECDSA, HSMC_HASH_SHA512}, msg,
                        sizeof msg, sig, 131, &need),
              HSMC_ERR_BUFFER);
    CHECK(need == 132);
    CHECK(sig[0] == 0x5A && sig[130] == 0x5A);
    need = 0;
    CHECK_ERR(hsmc_sign(&H, &k_p384, es256, msg, sizeof msg, NULL, 0, &need), HSMC_OK);
    CHECK(need == 96);
    need = 0;
    CHECK_ERR(hsmc_sign(&H, &k_ed, ed, msg, sizeof msg, NULL, 0, &need), HSMC_OK);
    CHECK(need == 64);
    need = 0;
    CHECK_ERR(hsmc_sign(&H, &k_rsa, ps256, msg, sizeof msg, sig, 255, &need), HSMC_ERR_BUFFER);
    CHECK(need == 256);
    CHECK(session_objects() == 0);
}

static void test_cose_algs(void)
{
    static const struct {
        int cose;
        hsmc_sig_scheme_t s;
        hsmc_hash_t h;
    } v[] = {{-7, HSMC_SIG_ECDSA, HSMC_HASH_SHA256},
             {-35, HSMC_SIG_ECDSA, HSMC_HASH_SHA384},
             {-36, HSMC_SIG_ECDSA, HSMC_HASH_SHA512},
             {-8, HSMC_SIG_EDDSA, HSMC_HASH_NONE},
             {-37, HSMC_SIG_RSA_PSS, HSMC_HASH_SHA256},
             {-38, HSMC_SIG_RSA_PSS, HSMC_HASH_SHA384},
             {-39, HSMC_SIG_RSA_PSS, HSMC_HASH_SHA512},
             {-257, HSMC_SIG_RSA_PKCS1, HSMC_HASH_SHA256},
             {-258, HSMC_SIG_RSA_PKCS1, HSMC_HASH_SHA384},
             {-259, HSMC_SIG_RSA_PKCS1, HSMC_HASH_SHA512}};
    hsmc_sig_alg_t a;
    size_t i;

    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        a.scheme = (hsmc_sig_scheme_t)0;
        CHECK_ERR(hsmc_sig_alg_from_cose(v[i].cose, &a), HSMC_OK);
        CHECK(a.scheme == v[i].s && a.hash == v[i].h);
        CHECK(hsmc_sig_alg_to_cose(a) == v[i].cose);
    }
    CHECK_ERR(hsmc_sig_alg_from_cose(-40, &a), HSMC_ERR_UNSUPPORTED);
    CHECK_ERR(hsmc_sig_alg_from_cose(0, &a), HSMC_ERR_UNSUPPORTED);
    CHECK_ERR(hsmc_sig_alg_from_cose(-7, NULL), HSMC_ERR_ARG);
    a.scheme = HSMC_SIG_RSA_PKCS1;
    a.hash = HSMC_HASH_SHA224;
    CHECK(hsmc_sig_alg_to_cose(a) == 0);
    CHECK(hsmc_hash_len(HSMC_HASH_SHA1) == 20 && hsmc_hash_len(HSMC_HASH_SHA224) == 28 &&
          hsmc_hash_len(HSMC_HASH_SHA256) == 32 && hsmc_hash_len(HSMC_HASH_SHA384) == 48 &&
          hsmc_hash_len(HSMC_HASH_SHA512) == 64 && hsmc_hash_len(HSMC_HASH_NONE) == 0);
}

/* ECDSA raw <-> DER: encoding rules and the strict parser. */
static void test_ecdsa_der(void)
{
    uint8_t raw[132], der[160], back[132];
    size_t len = 0, n;

    /* r with leading zeros, s with the high bit set */
    memset(raw, 0, 64);
    raw[2] = 0x01;
    raw[31] = 0x02;
    raw[32] = 0x80;
    raw[63] = 0x03;
    CHECK_ERR(hsmc_ecdsa_raw_to_der(raw, 64, NULL, 0, &len), HSMC_OK);
    CHECK(len == 2 + 2 + 30 + 2 + 33);
    CHECK_ERR(hsmc_ecdsa_raw_to_der(raw, 64, der, len - 1, &n), HSMC_ERR_BUFFER);
    CHECK_ERR(hsmc_ecdsa_raw_to_der(raw, 64, der, sizeof der, &len), HSMC_OK);
    CHECK(der[0] == 0x30 && der[1] == len - 2 && der[2] == 0x02 && der[3] == 30 &&
          der[4] == 0x01 && der[34] == 0x02 && der[35] == 33 && der[36] == 0 && der[37] == 0x80);
    CHECK_ERR(hsmc_ecdsa_der_to_raw(der, len, 32, back), HSMC_OK);
    CHECK(memcmp(back, raw, 64) == 0);
    /* P-521 size with both high bytes set: long-form SEQUENCE length */
    memset(raw, 0xff, 132);
    CHECK_ERR(hsmc_ecdsa_raw_to_der(raw, 132, der, sizeof der, &len), HSMC_OK);
    CHECK(len == 3 + 2 * (2 + 67) && der[1] == 0x81 && der[2] == 138);
    CHECK_ERR(hsmc_ecdsa_der_to_raw(der, len, 66, back), HSMC_OK);
    CHECK(memcmp(back, raw, 132) == 0);
    /* the parser refuses: */
    {
        static const uint8_t good[] = {0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07};
        static const uint8_t trailing[] = {0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07, 0x00};
        static const uint8_t nonmin[] = {0x30, 0x07, 0x02, 0x02, 0x00, 0x05, 0x02, 0x01, 0x07};
        static const uint8_t negative[] = {0x30, 0x06, 0x02, 0x01, 0x85, 0x02, 0x01, 0x07};
        static const uint8_t zero[] = {0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x07};
        static const uint8_t longlen[] = {0x30, 0x81, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07};
        static const uint8_t third[] = {0x30, 0x09, 0x02, 0x01, 0x05, 0x02, 0x01,
                                        0x07, 0x02, 0x01, 0x01};
        static const uint8_t shortseq[] = {0x30, 0x07, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07};
        static const uint8_t octet[] = {0x30, 0x06, 0x04, 0x01, 0x05, 0x02, 0x01, 0x07};
        uint8_t big[40] = {0x30, 0x26, 0x02, 0x21, 0x01};
        uint8_t r2[64];
        size_t cut;

        CHECK_ERR(hsmc_ecdsa_der_to_raw(good, sizeof good, 32, r2), HSMC_OK);
        CHECK(r2[31] == 5 && r2[63] == 7 && r2[0] == 0);
        CHECK_ERR(hsmc_ecdsa_der_to_raw(trailing, sizeof trailing, 32, r2), HSMC_ERR_FORMAT);
        CHECK_ERR(hsmc_ecdsa_der_to_raw(nonmin, sizeof nonmin, 32, r2), HSMC_ERR_FORMAT);
        CHECK_ERR(hsmc_ecdsa_der_to_raw(negative, sizeof negative, 32, r2), HSMC_ERR_FORMAT);
        CHECK_ERR(hsmc_ecdsa_der_to_raw(zero, sizeof zero, 32, r2), HSMC_ERR_FORMAT);
        CHECK_ERR(hsmc_ecdsa_der_to_raw(longlen, sizeof longlen, 32, r2), HSMC_ERR_FORMAT);
        CHECK_ERR(hsmc_ecdsa_der_to_raw(third, sizeof third, 32, r2), HSMC_ERR_FORMAT);
        CHECK_ERR(hsmc_ecdsa_der_to_raw(shortseq, sizeof shortseq, 32, r2), HSMC_ERR_FORMAT);
        CHECK_ERR(hsmc_ecdsa_der_to_raw(octet, sizeof octet, 32, r2), HSMC_ERR_FORMAT);
        /* r of 33 value bytes does not fit P-256 */
        memset(big + 5, 0x11, 32);
        big[37] = 0x02;
        big[38] = 0x01;
        big[39] = 0x01;
        CHECK_ERR(hsmc_ecdsa_der_to_raw(big, sizeof big, 32, r2), HSMC_ERR_FORMAT);
        /* every truncation of a valid encoding fails */
        CHECK_ERR(hsmc_ecdsa_raw_to_der(raw, 64, der, sizeof der, &len), HSMC_OK);
        for (cut = 0; cut < len; cut++)
            CHECK_ERR(hsmc_ecdsa_der_to_raw(der, cut, 32, r2), HSMC_ERR_FORMAT);
        CHECK_ERR(hsmc_ecdsa_der_to_raw(good, sizeof good, 0, r2), HSMC_ERR_ARG);
        CHECK_ERR(hsmc_ecdsa_der_to_raw(NULL, 8, 32, r2), HSMC_ERR_ARG);
    }
    CHECK_ERR(hsmc_ecdsa_raw_to_der(raw, 63, der, sizeof der, &len), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_ecdsa_raw_to_der(raw, 0, der, sizeof der, &len), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_ecdsa_raw_to_der(raw, 134, der, sizeof der, &len), HSMC_ERR_ARG);
}

/* ---- AES-GCM ------------------------------------------------------------------------ */

static void gcm_roundtrip(hsmc_key_t *k, size_t len, size_t aad_len)
{
    uint8_t pt[300], aad[64], iv[12], ct[320], back[320];
    size_t n = 0, m = 0;

    hsmc_test_fill(pt, len, 11);
    hsmc_test_fill(aad, aad_len, 12);
    CHECK_ERR(hsmc_gcm_encrypt(&H, k, aad_len ? aad : NULL, aad_len, len ? pt : NULL, len, iv, ct,
                               len + 16, &n),
              HSMC_OK);
    CHECK(n == len + 16);
    CHECK_ERR(hsmc_gcm_decrypt(&H, k, aad_len ? aad : NULL, aad_len, iv, ct, n, back, n, &m),
              HSMC_OK);
    CHECK(m == len && memcmp(back, pt, len) == 0);
}

static void test_gcm(void)
{
    uint8_t pt[100], aad[20], iv[12], iv2[12], ct[200], back[200];
    size_t n = 0, m = 0;

    REQUIRE(have_keys);
    gcm_roundtrip(&k_aes128, 100, 20);
    gcm_roundtrip(&k_aes256, 100, 20);
    gcm_roundtrip(&k_aes256, 1, 0);
    gcm_roundtrip(&k_aes256, 0, 13); /* empty plaintext: the tag authenticates the AAD */
    gcm_roundtrip(&k_aes128, 0, 0);
    gcm_roundtrip(&k_aes256, 300, 64);

    hsmc_test_fill(pt, sizeof pt, 21);
    hsmc_test_fill(aad, sizeof aad, 22);
    CHECK_ERR(hsmc_gcm_encrypt(&H, &k_aes256, aad, sizeof aad, pt, sizeof pt, iv, ct, sizeof ct,
                               &n),
              HSMC_OK);
    /* fresh IVs */
    CHECK_ERR(hsmc_gcm_encrypt(&H, &k_aes256, aad, sizeof aad, pt, sizeof pt, iv2, back,
                               sizeof back, &m),
              HSMC_OK);
    CHECK(memcmp(iv, iv2, 12) != 0 && memcmp(ct, back, n) != 0);
    /* wrong AAD, flipped ciphertext, flipped tag, wrong IV, wrong key, truncated */
    aad[0] ^= 1;
    memset(back, 0x77, sizeof back);
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes256, aad, sizeof aad, iv, ct, n, back, sizeof back, &m),
              HSMC_ERR_DECRYPT);
    CHECK(detail_has("'aes256'"));
    CHECK(back[0] == 0 && back[n - 1] == 0); /* wiped, no unauthenticated plaintext */
    aad[0] ^= 1;
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes256, aad, sizeof aad - 1, iv, ct, n, back, sizeof back,
                               &m),
              HSMC_ERR_DECRYPT);
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes256, NULL, 0, iv, ct, n, back, sizeof back, &m),
              HSMC_ERR_DECRYPT);
    ct[5] ^= 0x40;
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes256, aad, sizeof aad, iv, ct, n, back, sizeof back, &m),
              HSMC_ERR_DECRYPT);
    ct[5] ^= 0x40;
    ct[n - 1] ^= 0x01;
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes256, aad, sizeof aad, iv, ct, n, back, sizeof back, &m),
              HSMC_ERR_DECRYPT);
    ct[n - 1] ^= 0x01;
    iv[11] ^= 1;
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes256, aad, sizeof aad, iv, ct, n, back, sizeof back, &m),
              HSMC_ERR_DECRYPT);
    iv[11] ^= 1;
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes_other, aad, sizeof aad, iv, ct, n, back, sizeof back,
                               &m),
              HSMC_ERR_DECRYPT);
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes256, aad, sizeof aad, iv, ct, n - 1, back, sizeof back,
                               &m),
              HSMC_ERR_DECRYPT);
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes256, aad, sizeof aad, iv, ct, 15, back, sizeof back,
                               &m),
              HSMC_ERR_DECRYPT);
    /* still good after all that */
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes256, aad, sizeof aad, iv, ct, n, back, sizeof back, &m),
              HSMC_OK);
    CHECK(m == sizeof pt && memcmp(back, pt, m) == 0);

    /* sizes: size-only passes, short buffers with nothing written past cap */
    m = 0;
    CHECK_ERR(hsmc_gcm_encrypt(&H, &k_aes256, NULL, 0, pt, 10, iv, NULL, 0, &m), HSMC_OK);
    CHECK(m == 26);
    memset(back, 0x33, sizeof back);
    CHECK_ERR(hsmc_gcm_encrypt(&H, &k_aes256, NULL, 0, pt, 10, iv, back, 25, &m),
              HSMC_ERR_BUFFER);
    CHECK(m == 26 && back[0] == 0x33 && back[24] == 0x33);
    m = 0;
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes256, aad, sizeof aad, iv, ct, n, NULL, 0, &m), HSMC_OK);
    CHECK(m == n);
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes256, aad, sizeof aad, iv, ct, n, back, n - 1, &m),
              HSMC_ERR_BUFFER);
    CHECK(m == n);

    /* keys that may not: RSA key, key without CKA_ENCRYPT, KEK */
    CHECK_ERR(hsmc_gcm_encrypt(&H, &k_rsa, NULL, 0, pt, 10, iv, back, sizeof back, &m),
              HSMC_ERR_ARG);
    CHECK(detail_has("'rsa'") && detail_has("private-key"));
    CHECK_ERR(hsmc_gcm_encrypt(&H, &k_kek, NULL, 0, pt, 10, iv, back, sizeof back, &m),
              HSMC_ERR_KEY_USAGE);
    CHECK(detail_has("'kek'") && detail_has("CKA_ENCRYPT"));
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_kek, NULL, 0, iv, ct, n, back, sizeof back, &m),
              HSMC_ERR_KEY_USAGE);
    CHECK(detail_has("CKA_DECRYPT"));
    CHECK_ERR(hsmc_gcm_encrypt(&H, &k_target_odd, NULL, 0, pt, 10, iv, back, sizeof back, &m),
              HSMC_ERR_ARG);
    /* NULL arguments */
    CHECK_ERR(hsmc_gcm_encrypt(NULL, &k_aes256, NULL, 0, pt, 10, iv, back, sizeof back, &m),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_gcm_encrypt(&H, &k_aes256, NULL, 5, pt, 10, iv, back, sizeof back, &m),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_gcm_encrypt(&H, &k_aes256, NULL, 0, NULL, 10, iv, back, sizeof back, &m),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_gcm_encrypt(&H, &k_aes256, NULL, 0, pt, 10, NULL, back, sizeof back, &m),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_gcm_encrypt(&H, &k_aes256, NULL, 0, pt, 10, iv, back, sizeof back, NULL),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes256, NULL, 0, NULL, ct, n, back, sizeof back, &m),
              HSMC_ERR_ARG);
    CHECK(session_objects() == 0);
}

/* AES-GCM against Python's AESGCM, both directions, with known key bytes. */
static void test_gcm_python(void)
{
    static const size_t lens[] = {0, 1, 16, 33, 257};
    uint8_t pt[257], aad[19], iv[12], ct[300], back[300], py_out[300];
    char *hk = hsmc_test_hexs(aes_known, 32), *hiv, *haad, *hct, *hpt;
    size_t i, n = 0, m = 0;
    long r;

    REQUIRE(have_keys);
    hsmc_test_fill(aad, sizeof aad, 31);
    for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t len = lens[i];
        hsmc_test_fill(pt, len, 32 + (unsigned)i);
        /* hsmc encrypts, Python decrypts */
        CHECK_ERR(hsmc_gcm_encrypt(&H, &k_aes_known, aad, sizeof aad, pt, len, iv, ct, sizeof ct,
                                   &n),
                  HSMC_OK);
        hiv = hsmc_test_hexs(iv, 12);
        haad = hsmc_test_hexs(aad, sizeof aad);
        hct = hsmc_test_hexs(ct, n);
        r = py(py_out, sizeof py_out, "gcm_dec %s %s %s %s", hk, hiv, haad, hct);
        CHECK(r == (long)len && memcmp(py_out, pt, len) == 0);
        /* Python refuses it with another AAD */
        r = py(py_out, sizeof py_out, "gcm_dec %s %s - %s", hk, hiv, hct);
        CHECK(r == -1);
        free(hct);
        /* Python encrypts (its IV), hsmc decrypts */
        iv[0] ^= 0x55;
        free(hiv);
        hiv = hsmc_test_hexs(iv, 12);
        hpt = hsmc_test_hexs(pt, len);
        r = py(py_out, sizeof py_out, "gcm_enc %s %s %s %s", hk, hiv, haad, hpt);
        CHECK(r == (long)(len + 16));
        if (r == (long)(len + 16)) {
            CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes_known, aad, sizeof aad, iv, py_out, (size_t)r,
                                       back, sizeof back, &m),
                      HSMC_OK);
            CHECK(m == len && memcmp(back, pt, len) == 0);
        }
        free(hiv);
        free(haad);
        free(hpt);
    }
    free(hk);
}

/* Layout handling: an unknown layout is learnt; a refused layout is UNSUPPORTED. */
static void test_gcm_layout(void)
{
    uint8_t pt[8] = {1}, iv[12], ct[64], back[64];
    size_t n = 0, m = 0;
    unsigned char saved = H.gcm_layout;

    REQUIRE(have_keys);
    H.gcm_layout = 0;
    CHECK_ERR(hsmc_gcm_encrypt(&H, &k_aes256, NULL, 0, pt, sizeof pt, iv, ct, sizeof ct, &n),
              HSMC_OK);
    CHECK(H.gcm_layout == 1); /* SoftHSM2 2.6 takes p11-kit's CK_GCM_PARAMS */
    H.gcm_layout = 2;         /* as if the context believed the old layout */
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes256, NULL, 0, iv, ct, n, back, sizeof back, &m),
              HSMC_ERR_UNSUPPORTED);
    CHECK(detail_has("AES-GCM") && detail_has("C_DecryptInit"));
    H.gcm_layout = 0;
    CHECK_ERR(hsmc_gcm_decrypt(&H, &k_aes256, NULL, 0, iv, ct, n, back, sizeof back, &m),
              HSMC_OK);
    CHECK(m == sizeof pt && memcmp(back, pt, m) == 0);
    H.gcm_layout = saved != 0 ? saved : H.gcm_layout;
}

/* ---- key wrapping ------------------------------------------------------------------- */

static void test_wrap_token_keys(void)
{
    uint8_t w[128], py_out[128];
    char *hkek = hsmc_test_hexs(kek_bytes, 32), *hkey;
    size_t n = 0;
    long r;
    hsmc_key_t un;
    hsmc_key_spec_t spec;
    uint8_t pt[40], iv[12], ct[80];

    REQUIRE(have_keys);
    /* AES-KW of a 256-bit key == RFC 3394 in Python */
    CHECK_ERR(hsmc_wrap(&H, &k_kek, HSMC_WRAP_AES_KW, &k_target, NULL, 0, &n), HSMC_OK);
    CHECK(n == 40);
    CHECK_ERR(hsmc_wrap(&H, &k_kek, HSMC_WRAP_AES_KW, &k_target, w, 39, &n), HSMC_ERR_BUFFER);
    CHECK(n == 40);
    CHECK_ERR(hsmc_wrap(&H, &k_kek, HSMC_WRAP_AES_KW, &k_target, w, sizeof w, &n), HSMC_OK);
    hkey = hsmc_test_hexs(target_bytes, 32);
    r = py(py_out, sizeof py_out, "kw %s %s", hkek, hkey);
    CHECK(r == 40 && n == 40 && memcmp(py_out, w, 40) == 0);
    free(hkey);

    /* unwrap into a new token key; it decrypts what the original bytes encrypt */
    spec = hsmc_test_spec(HSMC_ALG_AES256, HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT);
    CHECK_ERR(hsmc_unwrap(&H, &k_kek, HSMC_WRAP_AES_KW, w, n, "unwrapped-v0003", &spec, &un),
              HSMC_OK);
    CHECK(un.priv.cls == CKO_SECRET_KEY && un.priv.key_type == CKK_AES);
    CHECK(un.version == 3 && un.alg == HSMC_ALG_AES256 && un.priv.id_len == 16);
    CHECK((un.priv.usage & (HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT)) ==
          (HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT));
    CHECK(!(un.priv.usage & (HSMC_USE_WRAP | HSMC_USE_UNWRAP | HSMC_USE_SIGN)));
    CHECK((un.priv.usage & HSMC_ATTR_SENSITIVE) && !(un.priv.usage & HSMC_ATTR_EXTRACTABLE) &&
          (un.priv.usage & HSMC_ATTR_TOKEN));
    hsmc_test_fill(pt, sizeof pt, 41);
    CHECK_ERR(hsmc_gcm_encrypt(&H, &un, NULL, 0, pt, sizeof pt, iv, ct, sizeof ct, &n), HSMC_OK);
    {
        char *hk = hsmc_test_hexs(target_bytes, 32), *hiv = hsmc_test_hexs(iv, 12),
             *hct = hsmc_test_hexs(ct, n);
        r = py(py_out, sizeof py_out, "gcm_dec %s %s - %s", hk, hiv, hct);
        CHECK(r == (long)sizeof pt && memcmp(py_out, pt, sizeof pt) == 0);
        free(hk);
        free(hiv);
        free(hct);
    }
    /* the label is taken now */
    CHECK_ERR(hsmc_wrap(&H, &k_kek, HSMC_WRAP_AES_KW, &k_target, w, sizeof w, &n), HSMC_OK);
    CHECK_ERR(hsmc_unwrap(&H, &k_kek, HSMC_WRAP_AES_KW, w, n, "unwrapped-v0003", &spec, &un),
              HSMC_ERR_EXISTS);
    /* a spec of another size is refused and nothing is kept */
    spec.alg = HSMC_ALG_AES128;
    CHECK_ERR(hsmc_unwrap(&H, &k_kek, HSMC_WRAP_AES_KW, w, n, "unwrapped-128", &spec, &un),
              HSMC_ERR_ARG);
    {
        hsmc_obj_query_t q;
        hsmc_obj_t o;
        memset(&q, 0, sizeof q);
        q.label = "unwrapped-128";
        CHECK_ERR(hsmc_find(&H, &q, &o), HSMC_ERR_OBJECT_NOT_FOUND);
    }
    spec.alg = HSMC_ALG_AES256;
    /* a private-key usage on a secret key is fine; an unknown bit is not */
    spec.usage = 0x1000u;
    CHECK_ERR(hsmc_unwrap(&H, &k_kek, HSMC_WRAP_AES_KW, w, n, "unwrapped-bad", &spec, &un),
              HSMC_ERR_ARG);
    spec.usage = HSMC_USE_DECRYPT;
    /* tampered wrapped key */
    w[3] ^= 1;
    CHECK_ERR(hsmc_unwrap(&H, &k_kek, HSMC_WRAP_AES_KW, w, n, "unwrapped-x", &spec, &un),
              HSMC_ERR_DECRYPT);
    w[3] ^= 1;
    /* a session key (spec.session) with its own id */
    spec.session = 1;
    spec.id = (const uint8_t *)"\x01\x02\x03";
    spec.id_len = 3;
    CHECK_ERR(hsmc_unwrap(&H, &k_kek, HSMC_WRAP_AES_KW, w, n, "unwrapped-session", &spec, &un),
              HSMC_OK);
    CHECK(!(un.priv.usage & HSMC_ATTR_TOKEN) && un.priv.id_len == 3 && un.version == 0);
    CHECK(session_objects() == 1);
    {
        hsmc_sess_t s;
        memset(&s, 0, sizeof s);
        REQUIRE(hsmc_session_begin(&H, &s) == HSMC_OK);
        (void)hsmc_session_end(&s, fl()->C_DestroyObject(s.handle, un.priv.handle), "destroy");
    }
    CHECK(session_objects() == 0);

    /* AES-KWP of a 256-bit key == RFC 5649 in Python */
    CHECK_ERR(hsmc_wrap(&H, &k_kek, HSMC_WRAP_AES_KWP, &k_target, w, sizeof w, &n), HSMC_OK);
    hkey = hsmc_test_hexs(target_bytes, 32);
    r = py(py_out, sizeof py_out, "kwp %s %s", hkek, hkey);
    CHECK(r == 40 && n == 40 && memcmp(py_out, w, 40) == 0);
    free(hkey);
    /* ... and odd-length material: RFC 5649 where the token has KWP; under
     * SoftHSM2's 0x210A hsmc refuses (it would pad the key first) */
    if (has_kwp()) {
        CHECK_ERR(hsmc_wrap(&H, &k_kek, HSMC_WRAP_AES_KWP, &k_target_odd, w, sizeof w, &n),
                  HSMC_OK);
        hkey = hsmc_test_hexs(odd_bytes, sizeof odd_bytes);
        r = py(py_out, sizeof py_out, "kwp %s %s", hkek, hkey);
        CHECK(r == 32 && n == 32 && memcmp(py_out, w, 32) == 0);
        free(hkey);
    } else {
        CHECK_ERR(hsmc_wrap(&H, &k_kek, HSMC_WRAP_AES_KWP, &k_target_odd, w, sizeof w, &n),
                  HSMC_ERR_UNSUPPORTED);
        CHECK(detail_has("0x210A") && detail_has("21-byte"));
    }
    /* unwrapping RFC 5649 from Python into a token key works everywhere */
    hkey = hsmc_test_hexs(target_bytes, 24);
    r = py(py_out, sizeof py_out, "kwp %s %s", hkek, hkey);
    CHECK(r == 32);
    free(hkey);
    spec.alg = HSMC_ALG_AES192;
    spec.usage = HSMC_USE_ENCRYPT;
    spec.session = 0;
    spec.id = NULL;
    spec.id_len = 0;
    CHECK_ERR(hsmc_unwrap(&H, &k_kek, HSMC_WRAP_AES_KWP, py_out, 32, "from-kwp", &spec, &un),
              HSMC_OK);
    CHECK(un.priv.key_type == CKK_AES);
    spec.alg = HSMC_ALG_AES256; /* 32 wrapped bytes of KWP hold 9..24 key bytes, not 32 */
    CHECK_ERR(hsmc_unwrap(&H, &k_kek, HSMC_WRAP_AES_KWP, py_out, 32, "from-kwp-2", &spec, &un),
              HSMC_ERR_ARG);

    /* refusals before the token: not extractable, KEK without CKA_WRAP, wrong types */
    CHECK_ERR(hsmc_wrap(&H, &k_kek, HSMC_WRAP_AES_KW, &k_target_fixed, w, sizeof w, &n),
              HSMC_ERR_KEY_USAGE);
    CHECK(detail_has("'target-fixed'") && detail_has("CKA_EXTRACTABLE"));
    CHECK_ERR(hsmc_wrap(&H, &k_kek_nowrap, HSMC_WRAP_AES_KW, &k_target, w, sizeof w, &n),
              HSMC_ERR_KEY_USAGE);
    CHECK(detail_has("'kek-nowrap'") && detail_has("CKA_WRAP"));
    CHECK_ERR(hsmc_wrap(&H, &k_rsa, HSMC_WRAP_AES_KW, &k_target, w, sizeof w, &n), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_wrap(&H, &k_kek, (hsmc_wrap_mech_t)77, &k_target, w, sizeof w, &n),
              HSMC_ERR_ARG);
    CHECK(detail_has("unknown wrap mechanism"));
    CHECK_ERR(hsmc_wrap(&H, &k_kek, HSMC_WRAP_AES_KW, NULL, w, sizeof w, &n), HSMC_ERR_ARG);
    free(hkek);
    CHECK(session_objects() == 0);
}

static void test_wrap_bytes(void)
{
    static const size_t lens[] = {16, 24, 32, 64};
    uint8_t key[64], w[600], back[300], py_out[128];
    char *hkek = hsmc_test_hexs(kek_bytes, 32), *hkey, *hw;
    size_t i, n = 0, m = 0;
    hsmc_err_t err;
    long r;

    REQUIRE(have_keys);
    for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        hsmc_test_fill(key, lens[i], 50 + (unsigned)i);
        hkey = hsmc_test_hexs(key, lens[i]);
        /* KW */
        CHECK_ERR(hsmc_wrap_bytes(&H, &k_kek, HSMC_WRAP_AES_KW, key, lens[i], w, sizeof w, &n),
                  HSMC_OK);
        r = py(py_out, sizeof py_out, "kw %s %s", hkek, hkey);
        CHECK(r == (long)(lens[i] + 8) && n == lens[i] + 8 && memcmp(py_out, w, n) == 0);
        memset(back, 0, sizeof back);
        CHECK_ERR(hsmc_unwrap_bytes(&H, &k_kek, HSMC_WRAP_AES_KW, w, n, back, sizeof back, &m),
                  HSMC_OK);
        CHECK(m == lens[i] && memcmp(back, key, m) == 0);
        free(hkey);
    }
    /* KWP: every length from Python unwraps; hsmc wraps what the token
     * wraps as RFC 5649 (all lengths with 0x210B, multiples of 8 with 0x210A) */
    for (i = 1; i <= 40; i += 1) {
        int aligned = i % 8 == 0 || has_kwp();
        hsmc_test_fill(key, i, 60 + (unsigned)i);
        hkey = hsmc_test_hexs(key, i);
        r = py(py_out, sizeof py_out, "kwp %s %s", hkek, hkey);
        CHECK(r == (long)((i + 7) / 8 * 8 + 8));
        m = 0;
        CHECK_ERR(hsmc_unwrap_bytes(&H, &k_kek, HSMC_WRAP_AES_KWP, py_out, (size_t)r, back,
                                    sizeof back, &m),
                  HSMC_OK);
        CHECK(m == i && memcmp(back, key, i) == 0);
        if (!aligned) {
            CHECK_ERR(hsmc_wrap_bytes(&H, &k_kek, HSMC_WRAP_AES_KWP, key, i, w, sizeof w, &n),
                      HSMC_ERR_UNSUPPORTED);
            free(hkey);
            continue;
        }
        CHECK_ERR(hsmc_wrap_bytes(&H, &k_kek, HSMC_WRAP_AES_KWP, key, i, w, sizeof w, &n),
                  HSMC_OK);
        CHECK(r == (long)n && memcmp(py_out, w, n) == 0);
        hw = hsmc_test_hexs(w, n);
        r = py(py_out, sizeof py_out, "kwp_unwrap %s %s", hkek, hw);
        CHECK(r == (long)i && memcmp(py_out, key, i) == 0);
        free(hw);
        free(hkey);
    }
    CHECK(session_objects() == 0);
    /* CBC-PAD (IV in front), checked by Python; SoftHSM2 2.6 cannot wrap
     * with it (CKR_MECHANISM_INVALID), which must come back as UNSUPPORTED */
    hsmc_test_fill(key, 32, 70);
    err = hsmc_wrap_bytes(&H, &k_kek, HSMC_WRAP_AES_CBC_PAD, key, 32, w, sizeof w, &n);
    CHECK(err == HSMC_OK || err == HSMC_ERR_UNSUPPORTED);
    if (err == HSMC_OK) {
        CHECK(n == 16 + 48);
        hw = hsmc_test_hexs(w, n);
        r = py(py_out, sizeof py_out, "cbc_dec %s %s", hkek, hw);
        CHECK(r == 32 && memcmp(py_out, key, 32) == 0);
        free(hw);
        CHECK_ERR(hsmc_unwrap_bytes(&H, &k_kek, HSMC_WRAP_AES_CBC_PAD, w, n, back, sizeof back,
                                    &m),
                  HSMC_OK);
        CHECK(m == 32 && memcmp(back, key, 32) == 0);
    } else {
        CHECK(detail_has("AES-CBC-PAD"));
        fprintf(stderr, "     (AES-CBC-PAD wrapping: token lacks it: %s)\n", hsmc_detail(&H));
    }
    CHECK(session_objects() == 0);

    /* failures leave no temporary object behind */
    CHECK_ERR(hsmc_wrap_bytes(&H, &k_kek, HSMC_WRAP_AES_KW, key, 20, w, sizeof w, &n),
              HSMC_ERR_ARG); /* KW needs multiples of 8 */
    CHECK(detail_has("KWP"));
    CHECK_ERR(hsmc_wrap_bytes(&H, &k_kek, HSMC_WRAP_AES_KW, key, 32, w, 39, &n),
              HSMC_ERR_BUFFER);
    CHECK(n == 40);
    CHECK(session_objects() == 0);
    CHECK_ERR(hsmc_wrap_bytes(&H, &k_kek_nowrap, HSMC_WRAP_AES_KW, key, 32, w, sizeof w, &n),
              HSMC_ERR_KEY_USAGE);
    CHECK_ERR(hsmc_wrap_bytes(&H, &k_aes256, HSMC_WRAP_AES_KW, key, 32, w, sizeof w, &n),
              HSMC_ERR_KEY_USAGE);
    CHECK_ERR(hsmc_wrap_bytes(&H, &k_kek, HSMC_WRAP_AES_KW, key, 0, w, sizeof w, &n),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_wrap_bytes(&H, &k_kek, HSMC_WRAP_AES_KW, key, 32, NULL, 0, &n), HSMC_OK);
    CHECK(n == 40);
    CHECK(session_objects() == 0);
    CHECK_ERR(hsmc_wrap_bytes(&H, &k_kek, HSMC_WRAP_AES_KW, key, 32, w, sizeof w, &n), HSMC_OK);
    w[9] ^= 0x80;
    memset(back, 0x11, sizeof back);
    CHECK_ERR(hsmc_unwrap_bytes(&H, &k_kek, HSMC_WRAP_AES_KW, w, n, back, sizeof back, &m),
              HSMC_ERR_DECRYPT);
    CHECK(back[0] == 0 && back[31] == 0);
    w[9] ^= 0x80;
    CHECK_ERR(hsmc_unwrap_bytes(&H, &k_aes_other, HSMC_WRAP_AES_KW, w, n, back, sizeof back, &m),
              HSMC_ERR_KEY_USAGE); /* no CKA_UNWRAP */
    CHECK_ERR(hsmc_unwrap_bytes(&H, &k_kek, HSMC_WRAP_AES_KW, w, n, back, 31, &m),
              HSMC_ERR_BUFFER);
    CHECK(m == 32);
    CHECK_ERR(hsmc_unwrap_bytes(&H, &k_kek, HSMC_WRAP_AES_KW, w, n, NULL, 0, &m), HSMC_OK);
    CHECK(m == 32);
    CHECK_ERR(hsmc_unwrap_bytes(&H, &k_kek, HSMC_WRAP_AES_CBC_PAD, w, 16, back, sizeof back, &m),
              HSMC_ERR_DECRYPT); /* no room for anything after the IV */
    CHECK(session_objects() == 0);

    /* RSA-OAEP: the public key encrypts, the private key unwraps */
    hsmc_test_fill(key, 32, 80);
    CHECK_ERR(hsmc_wrap_bytes(&H, &k_rsa_wrap, HSMC_WRAP_RSA_OAEP_SHA1, key, 32, w, sizeof w, &n),
              HSMC_OK);
    CHECK(n == 256);
    CHECK_ERR(hsmc_unwrap_bytes(&H, &k_rsa_wrap, HSMC_WRAP_RSA_OAEP_SHA1, w, n, back, sizeof back,
                                &m),
              HSMC_OK);
    CHECK(m == 32 && memcmp(back, key, 32) == 0);
    w[100] ^= 1;
    CHECK_ERR(hsmc_unwrap_bytes(&H, &k_rsa_wrap, HSMC_WRAP_RSA_OAEP_SHA1, w, n, back, sizeof back,
                                &m),
              HSMC_ERR_DECRYPT);
    /* ... and the decrypt-capable signing key uses C_Encrypt / C_Decrypt */
    CHECK_ERR(hsmc_wrap_bytes(&H, &k_rsa, HSMC_WRAP_RSA_OAEP_SHA1, key, 32, w, sizeof w, &n),
              HSMC_OK);
    CHECK_ERR(hsmc_unwrap_bytes(&H, &k_rsa, HSMC_WRAP_RSA_OAEP_SHA1, w, n, back, 32, &m),
              HSMC_ERR_BUFFER); /* C_Decrypt needs room for the modulus */
    CHECK(m == 256);
    CHECK_ERR(hsmc_unwrap_bytes(&H, &k_rsa, HSMC_WRAP_RSA_OAEP_SHA1, w, n, back, sizeof back, &m),
              HSMC_OK);
    CHECK(m == 32 && memcmp(back, key, 32) == 0);
    /* OAEP-SHA256: SoftHSM2 lacks it */
    CHECK_ERR(hsmc_wrap_bytes(&H, &k_rsa_wrap, HSMC_WRAP_RSA_OAEP_SHA256, key, 32, w, sizeof w,
                              &n),
              HSMC_ERR_UNSUPPORTED);
    CHECK(detail_has("RSA-OAEP-SHA256"));
    CHECK_ERR(hsmc_wrap_bytes(&H, &k_rsa, HSMC_WRAP_RSA_OAEP_SHA256, key, 32, w, sizeof w, &n),
              HSMC_ERR_UNSUPPORTED);
    CHECK(detail_has("RSA-OAEP-SHA256"));
    CHECK(session_objects() == 0);
    free(hkek);
}

/* hsmc_wrap with an RSA public key, hsmc_unwrap with its private key. */
static void test_wrap_rsa(void)
{
    uint8_t w[300];
    size_t n = 0;
    hsmc_key_spec_t spec;
    hsmc_key_t un;

    REQUIRE(have_keys);
    CHECK_ERR(hsmc_wrap(&H, &k_rsa_wrap, HSMC_WRAP_RSA_OAEP_SHA1, &k_target, w, sizeof w, &n),
              HSMC_OK);
    CHECK(n == 256);
    spec = hsmc_test_spec(HSMC_ALG_AES256, HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT);
    CHECK_ERR(hsmc_unwrap(&H, &k_rsa_wrap, HSMC_WRAP_RSA_OAEP_SHA1, w, n, "from-rsa", &spec, &un),
              HSMC_OK);
    CHECK(un.priv.key_type == CKK_AES);
    /* the RSA signing key has no CKA_WRAP / CKA_UNWRAP */
    CHECK_ERR(hsmc_wrap(&H, &k_rsa, HSMC_WRAP_RSA_OAEP_SHA1, &k_target, w, sizeof w, &n),
              HSMC_ERR_KEY_USAGE);
    CHECK_ERR(hsmc_unwrap(&H, &k_rsa, HSMC_WRAP_RSA_OAEP_SHA1, w, n, "x", &spec, &un),
              HSMC_ERR_KEY_USAGE);
    CHECK(session_objects() == 0);
}

/* ---- RSA encryption ----------------------------------------------------------------- */

static void test_rsa_encrypt(void)
{
    uint8_t pt[214], ct[300], back[300], py_out[300];
    size_t n = 0, m = 0;
    char *hpt;
    long r;

    REQUIRE(have_keys);
    hsmc_test_fill(pt, sizeof pt, 90);
    /* OAEP-SHA1: round trip, up to k - 42 bytes */
    CHECK_ERR(hsmc_rsa_encrypt(&H, &k_rsa, HSMC_RSA_OAEP_SHA1, pt, 214, ct, sizeof ct, &n),
              HSMC_OK);
    CHECK(n == 256);
    CHECK_ERR(hsmc_rsa_decrypt(&H, &k_rsa, HSMC_RSA_OAEP_SHA1, ct, n, back, sizeof back, &m),
              HSMC_OK);
    CHECK(m == 214 && memcmp(back, pt, m) == 0);
    CHECK_ERR(hsmc_rsa_encrypt(&H, &k_rsa, HSMC_RSA_OAEP_SHA1, pt, 215, ct, sizeof ct, &n),
              HSMC_ERR_ARG);
    CHECK(detail_has("214"));
    /* PKCS#1 v1.5 */
    CHECK_ERR(hsmc_rsa_encrypt(&H, &k_rsa, HSMC_RSA_PKCS1_V15, pt, 50, ct, sizeof ct, &n),
              HSMC_OK);
    CHECK_ERR(hsmc_rsa_decrypt(&H, &k_rsa, HSMC_RSA_PKCS1_V15, ct, n, back, sizeof back, &m),
              HSMC_OK);
    CHECK(m == 50 && memcmp(back, pt, m) == 0);
    /* OAEP-SHA256: not on SoftHSM2 */
    CHECK_ERR(hsmc_rsa_encrypt(&H, &k_rsa, HSMC_RSA_OAEP_SHA256, pt, 32, ct, sizeof ct, &n),
              HSMC_ERR_UNSUPPORTED);
    CHECK(detail_has("RSA-OAEP-SHA256") && detail_has("C_EncryptInit"));
    /* Python encrypts with the exported public key, the token decrypts */
    CHECK(export_pem(&k_rsa, "rsa", "rsa.pem"));
    hpt = hsmc_test_hexs(pt, 100);
    r = py(py_out, sizeof py_out, "oaep_enc %s %s", hsmc_test_path("rsa.pem"), hpt);
    CHECK(r == 256);
    if (r == 256) {
        CHECK_ERR(hsmc_rsa_decrypt(&H, &k_rsa, HSMC_RSA_OAEP_SHA1, py_out, 256, back,
                                   sizeof back, &m),
                  HSMC_OK);
        CHECK(m == 100 && memcmp(back, pt, 100) == 0);
        /* tampered, wrong padding, wrong length */
        py_out[7] ^= 4;
        memset(back, 0x22, sizeof back);
        CHECK_ERR(hsmc_rsa_decrypt(&H, &k_rsa, HSMC_RSA_OAEP_SHA1, py_out, 256, back,
                                   sizeof back, &m),
                  HSMC_ERR_DECRYPT);
        CHECK(back[0] == 0 && back[255] == 0);
        py_out[7] ^= 4;
        CHECK_ERR(hsmc_rsa_decrypt(&H, &k_rsa, HSMC_RSA_PKCS1_V15, py_out, 256, back,
                                   sizeof back, &m),
                  HSMC_ERR_DECRYPT);
        CHECK_ERR(hsmc_rsa_decrypt(&H, &k_rsa, HSMC_RSA_OAEP_SHA1, py_out, 255, back,
                                   sizeof back, &m),
                  HSMC_ERR_DECRYPT);
    }
    free(hpt);
    /* sizes */
    CHECK_ERR(hsmc_rsa_encrypt(&H, &k_rsa, HSMC_RSA_OAEP_SHA1, pt, 10, NULL, 0, &n), HSMC_OK);
    CHECK(n == 256);
    CHECK_ERR(hsmc_rsa_encrypt(&H, &k_rsa, HSMC_RSA_OAEP_SHA1, pt, 10, ct, 255, &n),
              HSMC_ERR_BUFFER);
    CHECK_ERR(hsmc_rsa_encrypt(&H, &k_rsa, HSMC_RSA_OAEP_SHA1, pt, 10, ct, sizeof ct, &n),
              HSMC_OK);
    CHECK_ERR(hsmc_rsa_decrypt(&H, &k_rsa, HSMC_RSA_OAEP_SHA1, ct, n, back, 100, &m),
              HSMC_ERR_BUFFER);
    CHECK(m == 256);
    /* keys and arguments */
    CHECK_ERR(hsmc_rsa_encrypt(&H, &k_p256, HSMC_RSA_OAEP_SHA1, pt, 10, ct, sizeof ct, &n),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_rsa_encrypt(&H, &k_rsa_wrap, HSMC_RSA_OAEP_SHA1, pt, 10, ct, sizeof ct, &n),
              HSMC_ERR_KEY_USAGE);
    CHECK(detail_has("CKA_ENCRYPT"));
    CHECK_ERR(hsmc_rsa_decrypt(&H, &k_rsa_wrap, HSMC_RSA_OAEP_SHA1, ct, 256, back, sizeof back,
                               &m),
              HSMC_ERR_KEY_USAGE);
    CHECK(detail_has("CKA_DECRYPT"));
    CHECK_ERR(hsmc_rsa_encrypt(&H, &k_rsa, (hsmc_rsa_pad_t)9, pt, 10, ct, sizeof ct, &n),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_rsa_encrypt(&H, &k_rsa, HSMC_RSA_OAEP_SHA1, pt, 0, ct, sizeof ct, &n),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_rsa_decrypt(&H, &k_rsa, HSMC_RSA_OAEP_SHA1, NULL, 256, back, sizeof back, &m),
              HSMC_ERR_ARG);
    CHECK(session_objects() == 0);
}

/* ---- digests -------------------------------------------------------------------------- */

static void test_digest(void)
{
    static const struct {
        hsmc_hash_t h;
        const char *py;
    } v[] = {{HSMC_HASH_SHA1, "sha1"},
             {HSMC_HASH_SHA224, "sha224"},
             {HSMC_HASH_SHA256, "sha256"},
             {HSMC_HASH_SHA384, "sha384"},
             {HSMC_HASH_SHA512, "sha512"}};
    static const size_t lens[] = {0, 3, 1000};
    uint8_t msg[1000], a[64], b[64], c[64];
    size_t i, j, n = 0;
    char *hm;
    long r;

    hsmc_test_fill(msg, sizeof msg, 100);
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        for (j = 0; j < sizeof lens / sizeof lens[0]; j++) {
            memset(a, 0, sizeof a);
            CHECK_ERR(hsmc_token_digest(&H, v[i].h, lens[j] ? msg : NULL, lens[j], a, sizeof a,
                                        &n),
                      HSMC_OK);
            CHECK(n == hsmc_hash_len(v[i].h));
            CHECK_ERR(hsmc_hash(v[i].h, lens[j] ? msg : NULL, lens[j], b), HSMC_OK);
            hm = hsmc_test_hexs(msg, lens[j]);
            r = py(c, sizeof c, "hash %s %s", v[i].py, hm);
            free(hm);
            CHECK(r == (long)n && memcmp(a, b, n) == 0 && memcmp(a, c, n) == 0);
        }
    }
    /* sizes and arguments */
    CHECK_ERR(hsmc_token_digest(&H, HSMC_HASH_SHA384, msg, 3, NULL, 0, &n), HSMC_OK);
    CHECK(n == 48);
    memset(a, 0x44, sizeof a);
    CHECK_ERR(hsmc_token_digest(&H, HSMC_HASH_SHA384, msg, 3, a, 47, &n), HSMC_ERR_BUFFER);
    CHECK(n == 48 && a[0] == 0x44);
    CHECK_ERR(hsmc_token_digest(&H, HSMC_HASH_NONE, msg, 3, a, sizeof a, &n), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_token_digest(&H, HSMC_HASH_SHA256, NULL, 3, a, sizeof a, &n), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_token_digest(NULL, HSMC_HASH_SHA256, msg, 3, a, sizeof a, &n), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_hash(HSMC_HASH_NONE, msg, 3, a), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_hash(HSMC_HASH_SHA256, NULL, 3, a), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_hash(HSMC_HASH_SHA256, msg, 3, NULL), HSMC_ERR_ARG);
}

/* ---- through the fault proxy ------------------------------------------------------ */

static hsmc_fault_api_t F;
static hsmc_t G;

static int open_faulty(void)
{
    hsmc_cfg_t cfg;
    const char *path = hsmc_test_fault_load(&F);
    if (path == NULL)
        return 0;
    hsmc_test_cfg(&cfg, "test");
    cfg.module_path = path;
    hsmc_init(&G);
    if (hsmc_open(&G, &cfg) != HSMC_OK) {
        fprintf(stderr, "open via fault proxy: %s\n", hsmc_detail(&G));
        return 0;
    }
    F.clear();
    F.reset_counts();
    return 1;
}

static unsigned long calls_total(void)
{
    static const char *const fns[] = {"C_SignInit",      "C_Sign",        "C_EncryptInit",
                                      "C_Encrypt",       "C_GetAttributeValue",
                                      "C_FindObjectsInit", "C_OpenSession", "C_GenerateRandom",
                                      "C_WrapKey",       "C_CreateObject"};
    unsigned long n = 0;
    size_t i;
    for (i = 0; i < sizeof fns / sizeof fns[0]; i++)
        n += F.calls(fns[i]);
    return n;
}

static void test_faults(void)
{
    hsmc_sig_alg_t es256 = {HSMC_SIG_ECDSA, HSMC_HASH_SHA256};
    hsmc_key_t nosign, p256, rsa, aes, kek;
    uint8_t msg[32] = {7}, sig[64], pt[16] = {1}, iv[12], ct[64], back[64], w[64];
    size_t len = 0, n = 0, m = 0;
    unsigned long rec;

    REQUIRE(have_keys);
    REQUIRE(open_faulty());
    REQUIRE(load_key(&G, "nosign", 1, HSMC_ALG_P256, &nosign));
    REQUIRE(load_key(&G, "p256", 1, HSMC_ALG_P256, &p256));
    REQUIRE(load_key(&G, "rsa", 1, HSMC_ALG_RSA2048, &rsa));
    REQUIRE(load_key(&G, "aes256", 0, HSMC_ALG_AES256, &aes));
    REQUIRE(load_key(&G, "kek", 0, HSMC_ALG_AES256, &kek));

    /* usage violations never reach the token */
    F.reset_counts();
    CHECK_ERR(hsmc_sign(&G, &nosign, es256, msg, sizeof msg, sig, sizeof sig, &len),
              HSMC_ERR_KEY_USAGE);
    CHECK_ERR(hsmc_gcm_encrypt(&G, &rsa, NULL, 0, pt, sizeof pt, iv, ct, sizeof ct, &n),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_wrap_bytes(&G, &aes, HSMC_WRAP_AES_KW, msg, 32, w, sizeof w, &n),
              HSMC_ERR_KEY_USAGE);
    CHECK_ERR(hsmc_sign(&G, &p256, es256, msg, 0, sig, sizeof sig, &len), HSMC_ERR_ARG);
    CHECK(calls_total() == 0);

    /* the session is closed behind hsmc's back before C_SignInit: hsmc
     * recovers, finds the key again and signs */
    rec = hsmc_recoveries(&G);
    F.reset_counts();
    F.close_sessions_on("C_SignInit", 0);
    CHECK_ERR(hsmc_sign(&G, &p256, es256, msg, sizeof msg, sig, sizeof sig, &len), HSMC_OK);
    CHECK(hsmc_recoveries(&G) == rec + 1);
    CHECK(F.calls("C_SignInit") == 2);
    CHECK_ERR(hsmc_verify(&G, &p256, es256, msg, sizeof msg, sig, len), HSMC_OK);
    /* the old key structs now belong to an earlier generation: each call
     * looks the key up again */
    F.reset_counts();
    CHECK_ERR(hsmc_sign(&G, &p256, es256, msg, sizeof msg, sig, sizeof sig, &len), HSMC_OK);
    CHECK(F.calls("C_FindObjectsInit") >= 1);
    REQUIRE(load_key(&G, "p256", 1, HSMC_ALG_P256, &p256));
    REQUIRE(load_key(&G, "aes256", 0, HSMC_ALG_AES256, &aes));
    REQUIRE(load_key(&G, "kek", 0, HSMC_ALG_AES256, &kek));
    F.reset_counts();
    CHECK_ERR(hsmc_sign(&G, &p256, es256, msg, sizeof msg, sig, sizeof sig, &len), HSMC_OK);
    CHECK(F.calls("C_FindObjectsInit") == 0);

    /* a token that keeps the operation active after a failed C_Decrypt
     * (the proxy answers both the call and its repeat without forwarding):
     * hsmc closes that session, and the next operation works */
    CHECK_ERR(hsmc_gcm_encrypt(&G, &aes, NULL, 0, pt, sizeof pt, iv, ct, sizeof ct, &n), HSMC_OK);
    rec = hsmc_recoveries(&G);
    F.set("C_Decrypt", CKR_DEVICE_ERROR, 0, 2);
    memset(back, 0x66, sizeof back);
    CHECK_ERR(hsmc_gcm_decrypt(&G, &aes, NULL, 0, iv, ct, n, back, sizeof back, &m),
              HSMC_ERR_TOKEN);
    CHECK(back[0] == 0);
    CHECK(hsmc_recoveries(&G) == rec + 1);
    F.clear();
    REQUIRE(load_key(&G, "aes256", 0, HSMC_ALG_AES256, &aes));
    CHECK_ERR(hsmc_gcm_decrypt(&G, &aes, NULL, 0, iv, ct, n, back, sizeof back, &m), HSMC_OK);
    CHECK(m == sizeof pt && memcmp(back, pt, m) == 0);
    /* the repeat ends it (real call forwarded): no session closed */
    rec = hsmc_recoveries(&G);
    F.set("C_Decrypt", CKR_DEVICE_ERROR, 0, 1);
    CHECK_ERR(hsmc_gcm_decrypt(&G, &aes, NULL, 0, iv, ct, n, back, sizeof back, &m),
              HSMC_ERR_TOKEN);
    CHECK(hsmc_recoveries(&G) == rec);
    CHECK(back[0] == 0 && back[5] == 0); /* the repeat's plaintext is wiped too */
    F.clear();
    CHECK_ERR(hsmc_gcm_decrypt(&G, &aes, NULL, 0, iv, ct, n, back, sizeof back, &m), HSMC_OK);

    /* a failed C_WrapKey in wrap_bytes leaves no temporary object */
    F.set("C_WrapKey", CKR_DEVICE_ERROR, 0, 1); /* the (single) wrap call fails */
    CHECK_ERR(hsmc_wrap_bytes(&G, &kek, HSMC_WRAP_AES_KW, msg, 32, w, sizeof w, &n),
              HSMC_ERR_TOKEN);
    CHECK(F.calls("C_DestroyObject") >= 1);
    F.clear();
    CHECK(session_objects() == 0);
    /* a lost session in the middle: recovered, retried, nothing left */
    F.close_sessions_on("C_WrapKey", 0);
    CHECK_ERR(hsmc_wrap_bytes(&G, &kek, HSMC_WRAP_AES_KW, msg, 32, w, sizeof w, &n), HSMC_OK);
    CHECK(hsmc_recoveries(&G) > rec);
    CHECK(n == 40);
    F.clear();
    CHECK(session_objects() == 0);

    /* GCM with no known layout: 1 is tried, refused (injected), then 2 */
    G.gcm_layout = 0;
    F.reset_counts();
    F.set("C_EncryptInit", CKR_MECHANISM_PARAM_INVALID, 0, 1);
    CHECK_ERR(hsmc_gcm_encrypt(&G, &aes, NULL, 0, pt, sizeof pt, iv, ct, sizeof ct, &n),
              HSMC_ERR_UNSUPPORTED); /* SoftHSM2 refuses layout 2 */
    CHECK(F.calls("C_EncryptInit") == 2);
    CHECK(G.gcm_layout == 0);
    F.clear();
    hsmc_close(&G);
}

int main(void)
{
    hsmc_cfg_t cfg;

    hsmc_test_write_bin("chk.py", py_helper, sizeof py_helper - 1);
    hsmc_test_cfg(&cfg, "test");
    hsmc_init(&H);
    if (hsmc_open(&H, &cfg) != HSMC_OK) {
        fprintf(stderr, "hsmc_open: %s\n", hsmc_detail(&H));
        return 1;
    }
    RUN(make_keys);
    RUN(test_cose_algs);
    RUN(test_ecdsa_der);
    RUN(test_sign_verify);
    RUN(test_pkcs1_deterministic);
    RUN(test_sign_errors);
    RUN(test_gcm);
    RUN(test_gcm_python);
    RUN(test_gcm_layout);
    RUN(test_wrap_token_keys);
    RUN(test_wrap_bytes);
    RUN(test_wrap_rsa);
    RUN(test_rsa_encrypt);
    RUN(test_digest);
    RUN(test_faults);
    CHECK(session_objects() == 0);
    hsmc_close(&H);
    return TEST_END();
}
