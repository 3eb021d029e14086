/*
 * X.509 binding and CSRs against a real SoftHSM2 token ("test"):
 * - hsmc_pk_bind: mbedtls_pk_sign through the token (ECDSA with host-side
 *   hash truncation, RSA PKCS#1 v1.5 and PSS through the RSA padding
 *   mode), verified by mbedTLS and by the token; the static pool limit.
 * - CSRs for P-256/384/521 and RSA-2048/3072 token keys with subject
 *   fields, all four SAN kinds, keyUsage and extKeyUsage: `openssl req
 *   -verify` accepts each, `openssl req -text` shows subject and SANs,
 *   `certtool --crq-info` parses them, the SubjectPublicKeyInfo in the CSR
 *   is byte-equal to hsmc_key_export_pub, PEM and DER forms agree, the
 *   size-only pass bounds the result, a small buffer is HSMC_ERR_BUFFER.
 * - PEM helpers, SAN encoder (IPv4/IPv6 forms), and bad input.
 * With HSMC_X509_MEASURE=csr only one P-256 CSR is made (for the heap
 * measurement of test/scripts/test_x509_heap.sh).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include <mbedtls/pk.h>
#include <mbedtls/x509_csr.h>

#include "hsmc_test.h"
#include "hsmc/x509.h"

static hsmc_t H;

/* ---- helpers ------------------------------------------------------------ */

static const void *memfind(const void *hay, size_t n, const void *needle, size_t m)
{
    const uint8_t *h = (const uint8_t *)hay;
    size_t i;
    if (m == 0 || m > n)
        return NULL;
    for (i = 0; i + m <= n; i++) {
        if (memcmp(h + i, needle, m) == 0)
            return h + i;
    }
    return NULL;
}

/* ---- keys under test ------------------------------------------------------- */

typedef struct {
    hsmc_key_alg_t alg;
    const char *label;
    const char *openssl_sig; /* "Signature Algorithm:" in openssl req -text */
    int ok;
    hsmc_key_t key;
} tkey_t;

static tkey_t KEYS[] = {
    {.alg = HSMC_ALG_P256, .label = "csr-p256", .openssl_sig = "ecdsa-with-SHA256"},
    {.alg = HSMC_ALG_P384, .label = "csr-p384", .openssl_sig = "ecdsa-with-SHA384"},
    {.alg = HSMC_ALG_P521, .label = "csr-p521", .openssl_sig = "ecdsa-with-SHA512"},
    {.alg = HSMC_ALG_RSA2048, .label = "csr-rsa2048", .openssl_sig = "sha256WithRSAEncryption"},
    {.alg = HSMC_ALG_RSA3072, .label = "csr-rsa3072", .openssl_sig = "sha256WithRSAEncryption"},
};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static void test_keys(void)
{
    size_t i;
    for (i = 0; i < NKEYS; i++) {
        KEYS[i].ok =
            hsmc_test_gen(&H, KEYS[i].label, KEYS[i].alg, HSMC_USE_SIGN, &KEYS[i].key) == HSMC_OK;
        CHECK(KEYS[i].ok);
    }
}

/* ---- binding ---------------------------------------------------------------- */

static void sign_verify(tkey_t *t, mbedtls_md_type_t md, hsmc_hash_t hh)
{
    mbedtls_pk_context pk;
    unsigned char hash[64], sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t sig_len = 0, hl = hsmc_hash_len(hh);
    hsmc_sig_alg_t alg;
    uint8_t raw[132];

    memset(hash, 0x5A, sizeof hash);
    hash[0] = 0xC3; /* leading bits matter for truncation */
    mbedtls_pk_init(&pk);
    CHECK_ERR(hsmc_pk_bind(&H, &t->key, &pk), HSMC_OK);
    REQUIRE(hsmc_pk_is_bound(&pk));
    CHECK(mbedtls_pk_sign(&pk, md, hash, hl, sig, &sig_len, hsmc_token_random, &H) == 0);
    CHECK(hsmc_pk_last_err(&pk) == HSMC_OK);
    CHECK(mbedtls_pk_verify(&pk, md, hash, hl, sig, sig_len) == 0);
    sig[sig_len / 2] ^= 1;
    CHECK(mbedtls_pk_verify(&pk, md, hash, hl, sig, sig_len) != 0);
    sig[sig_len / 2] ^= 1;
    alg.hash = hh;
    if (mbedtls_pk_can_do(&pk, MBEDTLS_PK_ECDSA)) {
        size_t bytes = (mbedtls_pk_get_bitlen(&pk) + 7) / 8;
        alg.scheme = HSMC_SIG_ECDSA;
        CHECK_ERR(hsmc_ecdsa_der_to_raw(sig, sig_len, bytes, raw), HSMC_OK);
        /* The token truncates the whole digest itself: the same value. */
        CHECK_ERR(hsmc_verify_digest(&H, &t->key, alg, hash, hl, raw, 2 * bytes), HSMC_OK);
    } else {
        alg.scheme = HSMC_SIG_RSA_PKCS1;
        CHECK(sig_len == mbedtls_pk_get_len(&pk));
        CHECK_ERR(hsmc_verify_digest(&H, &t->key, alg, hash, hl, sig, sig_len), HSMC_OK);
        /* PSS through mbedTLS's own switch: the RSA context's padding mode. */
        mbedtls_rsa_set_padding(mbedtls_pk_rsa(pk), MBEDTLS_RSA_PKCS_V21, (int)md);
        CHECK(mbedtls_pk_sign(&pk, md, hash, hl, sig, &sig_len, hsmc_token_random, &H) == 0);
        CHECK(mbedtls_pk_verify(&pk, md, hash, hl, sig, sig_len) == 0);
        alg.scheme = HSMC_SIG_RSA_PSS;
        CHECK_ERR(hsmc_verify_digest(&H, &t->key, alg, hash, hl, sig, sig_len), HSMC_OK);
        /* A PKCS#1 v1.5 verifier must not accept it. */
        alg.scheme = HSMC_SIG_RSA_PKCS1;
        CHECK_ERR(hsmc_verify_digest(&H, &t->key, alg, hash, hl, sig, sig_len),
                  HSMC_ERR_SIGNATURE);
    }
    hsmc_pk_unbind(&pk);
    CHECK(!hsmc_pk_is_bound(&pk));
}

static void test_bind_sign(void)
{
    size_t i;
    for (i = 0; i < NKEYS; i++) {
        if (!KEYS[i].ok)
            continue;
        sign_verify(&KEYS[i], MBEDTLS_MD_SHA256, HSMC_HASH_SHA256);
        sign_verify(&KEYS[i], MBEDTLS_MD_SHA384, HSMC_HASH_SHA384); /* P-256: truncated */
        sign_verify(&KEYS[i], MBEDTLS_MD_SHA512, HSMC_HASH_SHA512);
    }
}

static void test_bind_public_and_pool(void)
{
    mbedtls_pk_context pk[HSMC_X509_PK_POOL + 1];
    unsigned char der[600], hash[32] = {1}, sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    uint8_t spki[600];
    size_t spki_len = 0, i, sig_len = 0;
    int n;

    REQUIRE(KEYS[0].ok && KEYS[3].ok);
    /* The bound key writes the token's SubjectPublicKeyInfo. */
    for (i = 0; i < NKEYS; i++) {
        mbedtls_pk_context one;
        if (!KEYS[i].ok)
            continue;
        mbedtls_pk_init(&one);
        CHECK_ERR(hsmc_pk_bind(&H, &KEYS[i].key, &one), HSMC_OK);
        CHECK_ERR(hsmc_key_export_pub(&H, &KEYS[i].key, spki, sizeof spki, &spki_len), HSMC_OK);
        n = mbedtls_pk_write_pubkey_der(&one, der, sizeof der);
        CHECK(n > 0 && (size_t)n == spki_len && memcmp(der + sizeof der - n, spki, spki_len) == 0);
        CHECK(mbedtls_pk_get_bitlen(&one) == (KEYS[i].alg == HSMC_ALG_P256      ? 256u
                                             : KEYS[i].alg == HSMC_ALG_P384    ? 384u
                                             : KEYS[i].alg == HSMC_ALG_P521    ? 521u
                                             : KEYS[i].alg == HSMC_ALG_RSA2048 ? 2048u
                                                                               : 3072u));
        /* check_pair between two bindings of the same key, and of different keys */
        {
            mbedtls_pk_context two;
            mbedtls_pk_init(&two);
            CHECK_ERR(hsmc_pk_bind(&H, &KEYS[i].key, &two), HSMC_OK);
            CHECK(mbedtls_pk_check_pair(&one, &two) == 0);
            hsmc_pk_unbind(&two);
        }
        hsmc_pk_unbind(&one);
    }

    /* Pool: HSMC_X509_PK_POOL bindings, the next one is HSMC_ERR_LIMIT. */
    for (i = 0; i <= HSMC_X509_PK_POOL; i++)
        mbedtls_pk_init(&pk[i]);
    for (i = 0; i < HSMC_X509_PK_POOL; i++)
        CHECK_ERR(hsmc_pk_bind(&H, &KEYS[i % 2].key, &pk[i]), HSMC_OK);
    CHECK_ERR(hsmc_pk_bind(&H, &KEYS[0].key, &pk[HSMC_X509_PK_POOL]), HSMC_ERR_LIMIT);
    CHECK(strstr(hsmc_detail(&H), "HSMC_X509_PK_POOL") != NULL);
    CHECK(!hsmc_pk_is_bound(&pk[HSMC_X509_PK_POOL]));
    /* mbedtls_pk_free alone returns the entry too. */
    mbedtls_pk_free(&pk[0]);
    CHECK_ERR(hsmc_pk_bind(&H, &KEYS[3].key, &pk[HSMC_X509_PK_POOL]), HSMC_OK);
    CHECK(mbedtls_pk_sign(&pk[HSMC_X509_PK_POOL], MBEDTLS_MD_SHA256, hash, 32, sig, &sig_len,
                          NULL, NULL) == 0);
    for (i = 0; i <= HSMC_X509_PK_POOL; i++)
        hsmc_pk_unbind(&pk[i]);
    /* ...and everything is free again. */
    for (i = 0; i < HSMC_X509_PK_POOL; i++)
        CHECK_ERR(hsmc_pk_bind(&H, &KEYS[0].key, &pk[i]), HSMC_OK);
    for (i = 0; i < HSMC_X509_PK_POOL; i++)
        hsmc_pk_unbind(&pk[i]);
}

static void test_bind_bad(void)
{
    mbedtls_pk_context pk;
    hsmc_key_t aes, nosign, ed;
    unsigned char hash[20] = {0}, sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t sig_len = 0;
    int ret;

    mbedtls_pk_init(&pk);
    CHECK_ERR(hsmc_pk_bind(NULL, &KEYS[0].key, &pk), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_pk_bind(&H, NULL, &pk), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_pk_bind(&H, &KEYS[0].key, NULL), HSMC_ERR_ARG);
    REQUIRE(hsmc_test_gen(&H, "bind-aes", HSMC_ALG_AES256, HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT,
                          &aes) == HSMC_OK);
    CHECK_ERR(hsmc_pk_bind(&H, &aes, &pk), HSMC_ERR_ARG);
    CHECK(strstr(hsmc_detail(&H), "secret key") != NULL);
    REQUIRE(hsmc_test_gen(&H, "bind-nosign", HSMC_ALG_RSA2048, HSMC_USE_DECRYPT, &nosign) ==
            HSMC_OK);
    CHECK_ERR(hsmc_pk_bind(&H, &nosign, &pk), HSMC_ERR_KEY_USAGE);
    CHECK(strstr(hsmc_detail(&H), "CKA_SIGN") != NULL);
    if (hsmc_test_gen(&H, "bind-ed25519", HSMC_ALG_ED25519, HSMC_USE_SIGN, &ed) == HSMC_OK)
        CHECK_ERR(hsmc_pk_bind(&H, &ed, &pk), HSMC_ERR_UNSUPPORTED);
    /* a pk already set up */
    REQUIRE(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) == 0);
    CHECK_ERR(hsmc_pk_bind(&H, &KEYS[0].key, &pk), HSMC_ERR_ARG);
    CHECK(!hsmc_pk_is_bound(&pk));
    CHECK_ERR(hsmc_pk_last_err(&pk), HSMC_ERR_ARG);
    hsmc_pk_unbind(&pk); /* not bound: freed all the same */
    hsmc_pk_unbind(NULL);
    CHECK(!hsmc_pk_is_bound(NULL));

    /* SHA-1 is refused by the token path, with a specific error kept. */
    mbedtls_pk_init(&pk);
    REQUIRE(hsmc_pk_bind(&H, &KEYS[0].key, &pk) == HSMC_OK);
    ret = mbedtls_pk_sign(&pk, MBEDTLS_MD_SHA1, hash, 20, sig, &sig_len, NULL, NULL);
    CHECK(ret == MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE);
    CHECK_ERR(hsmc_pk_last_err(&pk), HSMC_ERR_UNSUPPORTED);
    CHECK_ERR(hsmc_x509_fail(&H, &pk, ret, "sign"), HSMC_ERR_UNSUPPORTED);
    hsmc_pk_unbind(&pk);
    mbedtls_pk_init(&pk);
    REQUIRE(hsmc_pk_bind(&H, &KEYS[3].key, &pk) == HSMC_OK);
    ret = mbedtls_pk_sign(&pk, MBEDTLS_MD_SHA1, hash, 20, sig, &sig_len, NULL, NULL);
    CHECK(ret == MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE);
    /* no private-key decryption (a signing key; TLS uses ECDHE) */
    CHECK(mbedtls_pk_decrypt(&pk, sig, 256, hash, &sig_len, sizeof hash, NULL, NULL) != 0);
    hsmc_pk_unbind(&pk);
    /* error mapping of plain mbedTLS codes */
    CHECK_ERR(hsmc_x509_fail(&H, NULL, MBEDTLS_ERR_X509_BUFFER_TOO_SMALL, "t"), HSMC_ERR_BUFFER);
    CHECK_ERR(hsmc_x509_fail(&H, NULL, MBEDTLS_ERR_X509_INVALID_FORMAT + MBEDTLS_ERR_ASN1_OUT_OF_DATA,
                             "t"),
              HSMC_ERR_FORMAT);
    CHECK(strstr(hsmc_detail(&H), "t: mbedTLS -0x") != NULL);
    CHECK_ERR(hsmc_x509_fail(&H, NULL, MBEDTLS_ERR_X509_CERT_VERIFY_FAILED, "t"),
              HSMC_ERR_SIGNATURE);
    CHECK_ERR(hsmc_x509_fail(&H, NULL, 0, "t"), HSMC_OK);
}

/* ---- PEM ------------------------------------------------------------------- */

static void test_pem(void)
{
    uint8_t der[300], back[300];
    char pem[600], bad[700];
    size_t i, n = 0, m = 0, len;

    for (i = 0; i < sizeof der; i++)
        der[i] = (uint8_t)(i * 7 + 3);
    CHECK_ERR(hsmc_pem_write("CERTIFICATE", der, sizeof der, NULL, 0, &n), HSMC_OK);
    CHECK_ERR(hsmc_pem_write("CERTIFICATE", der, sizeof der, pem, n, &m), HSMC_ERR_BUFFER);
    CHECK(m == n);
    CHECK_ERR(hsmc_pem_write("CERTIFICATE", der, sizeof der, pem, n + 1, &m), HSMC_OK);
    CHECK(m == n && strlen(pem) == n);
    CHECK(strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
    CHECK(strstr(pem, "\n-----END CERTIFICATE-----\n") != NULL);
    CHECK(pem[28 + 64] == '\n'); /* 64-column lines */
    CHECK_ERR(hsmc_pem_read("CERTIFICATE", pem, n, NULL, 0, &len), HSMC_OK);
    CHECK(len == sizeof der);
    CHECK_ERR(hsmc_pem_read("CERTIFICATE", pem, n, back, len - 1, &len), HSMC_ERR_BUFFER);
    CHECK_ERR(hsmc_pem_read("CERTIFICATE", pem, n + 1, back, sizeof back, &len), HSMC_OK);
    CHECK(len == sizeof der && memcmp(back, der, len) == 0);
    CHECK_ERR(hsmc_pem_read(NULL, pem, n, back, sizeof back, &len), HSMC_OK);
    /* openssl decodes it the same way */
    CHECK(hsmc_test_write_file(hsmc_test_path("blob.pem"), pem, n));
    CHECK(hsmc_test_sh("openssl base64 -d -in %s -out %s", hsmc_test_path("blob.pem"),
                       hsmc_test_path("blob.bin")));
    /* in place: DER at the end of the output buffer */
    memset(pem, 0, sizeof pem);
    memcpy(pem + sizeof pem - sizeof der, der, sizeof der);
    CHECK_ERR(hsmc_pem_write("X509 CRL", (const uint8_t *)pem + sizeof pem - sizeof der,
                             sizeof der, pem, sizeof pem, &m),
              HSMC_OK);
    CHECK_ERR(hsmc_pem_read("X509 CRL", pem, m, back, sizeof back, &len), HSMC_OK);
    CHECK(len == sizeof der && memcmp(back, der, len) == 0);
    /* text before the block (openssl -text output) is skipped */
    snprintf(bad, sizeof bad, "Certificate:\n  Data: x\n%s", pem);
    CHECK_ERR(hsmc_pem_read("X509 CRL", bad, strlen(bad), back, sizeof back, &len), HSMC_OK);
    /* wrong label, truncated, no END line, garbage, encrypted header */
    CHECK_ERR(hsmc_pem_read("CERTIFICATE", pem, m, back, sizeof back, &len), HSMC_ERR_FORMAT);
    CHECK_ERR(hsmc_pem_read("X509 CRL", pem, m / 2, back, sizeof back, &len), HSMC_ERR_FORMAT);
    memcpy(bad, pem, m + 1);
    memcpy(strstr(bad, "-----END"), "-----END CERTIFICATE-----\n", 27);
    CHECK_ERR(hsmc_pem_read("X509 CRL", bad, strlen(bad), back, sizeof back, &len),
              HSMC_ERR_FORMAT);
    memcpy(bad, pem, m + 1);
    bad[30] = '!';
    CHECK_ERR(hsmc_pem_read("X509 CRL", bad, m, back, sizeof back, &len), HSMC_ERR_FORMAT);
    snprintf(bad, sizeof bad,
             "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n"
             "-----END RSA PRIVATE KEY-----\n");
    CHECK_ERR(hsmc_pem_read("RSA PRIVATE KEY", bad, strlen(bad), back, sizeof back, &len),
              HSMC_ERR_FORMAT);
    snprintf(bad, sizeof bad, "-----BEGIN X-----\n-----END X-----\n");
    CHECK_ERR(hsmc_pem_read("X", bad, strlen(bad), back, sizeof back, &len), HSMC_ERR_FORMAT);
    CHECK_ERR(hsmc_pem_read("X", "", 0, back, sizeof back, &len), HSMC_ERR_ARG);
    /* bad arguments */
    CHECK_ERR(hsmc_pem_write("", der, 1, pem, sizeof pem, &m), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_pem_write("A\nB", der, 1, pem, sizeof pem, &m), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_pem_write("X", der, 0, pem, sizeof pem, &m), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_pem_write("X", NULL, 1, pem, sizeof pem, &m), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_pem_write("X", der, 1, pem, sizeof pem, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_pem_read("X", pem, m, back, sizeof back, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_pem_read("X", NULL, 5, back, sizeof back, &len), HSMC_ERR_ARG);
}

/* ---- SAN encoder ------------------------------------------------------------ */

static int ip_der(const char *text, const uint8_t *want, size_t want_len)
{
    hsmc_san_t s;
    uint8_t out[64];
    size_t n = 0;
    s.type = HSMC_SAN_IP;
    s.value = text;
    if (hsmc_san_der(&s, 1, out, sizeof out, &n, NULL) != HSMC_OK)
        return want == NULL;
    return want != NULL && n == want_len + 4 && out[2] == 0x87 && out[3] == want_len &&
           memcmp(out + 4, want, want_len) == 0;
}

static void test_san(void)
{
    static const uint8_t v4[] = {192, 0, 2, 10};
    static const uint8_t zero[16] = {0};
    static const uint8_t loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t doc6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t map6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
    static const uint8_t full6[16] = {0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8};
    static const uint8_t mid6[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0, 0};
    static const char *bad_ip[] = {"300.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.",
                                   "::1::2", ":1", "1:", "1:2:3:4:5:6:7:8:9", "12345::",
                                   "fe80::1%eth0", "::1.2.3", "1:2:3:4:5:6:7:1.2.3.4", "g::1",
                                   "1.2.3.4 ", "", ":::"};
    /* A second SAN the encoder must refuse, and how. */
    static const struct {
        hsmc_san_type_t type;
        const char *value;
        hsmc_err_t err;
    } bad_san[] = {
        {HSMC_SAN_DNS, "-a.example", HSMC_ERR_FORMAT},
        {HSMC_SAN_DNS, "a b.example", HSMC_ERR_FORMAT},
        {HSMC_SAN_DNS, "a.*.example", HSMC_ERR_FORMAT},
        {HSMC_SAN_URI, "no-scheme", HSMC_ERR_FORMAT},
        {HSMC_SAN_URI, "https://a b", HSMC_ERR_FORMAT},
        {HSMC_SAN_EMAIL, "no-at.example.com", HSMC_ERR_FORMAT},
        {HSMC_SAN_EMAIL, "a@b@example.com", HSMC_ERR_FORMAT},
        {HSMC_SAN_EMAIL, "", HSMC_ERR_ARG},
        {(hsmc_san_type_t)9, "x", HSMC_ERR_ARG},
    };
    hsmc_san_t s[4];
    uint8_t out[256];
    size_t n = 0, i, bad = 99;

    CHECK(ip_der("192.0.2.10", v4, 4));
    CHECK(ip_der("::", zero, 16));
    CHECK(ip_der("::1", loop6, 16));
    CHECK(ip_der("2001:db8::1", doc6, 16));
    CHECK(ip_der("2001:DB8:0:0:0:0:0:1", doc6, 16));
    CHECK(ip_der("::ffff:192.0.2.1", map6, 16));
    CHECK(ip_der("1:2:3:4:5:6:7:8", full6, 16));
    CHECK(ip_der("fe80::abcd:0", mid6, 16));
    for (i = 0; i < sizeof bad_ip / sizeof bad_ip[0]; i++) {
        if (!ip_der(bad_ip[i], NULL, 0))
            fprintf(stderr, "accepted bad IP '%s'\n", bad_ip[i]);
        CHECK(ip_der(bad_ip[i], NULL, 0));
    }
    s[0].type = HSMC_SAN_DNS;
    s[0].value = "*.dev.example.com";
    s[1].type = HSMC_SAN_URI;
    s[1].value = "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e";
    s[2].type = HSMC_SAN_EMAIL;
    s[2].value = "ops@example.com";
    s[3].type = HSMC_SAN_IP;
    s[3].value = "192.0.2.10";
    CHECK_ERR(hsmc_san_der(s, 4, NULL, 0, &n, NULL), HSMC_OK);
    CHECK(n == 2 + 2 + 17 + 2 + 45 + 2 + 15 + 2 + 4);
    CHECK_ERR(hsmc_san_der(s, 4, out, n - 1, &n, NULL), HSMC_ERR_BUFFER);
    CHECK_ERR(hsmc_san_der(s, 4, out, sizeof out, &n, NULL), HSMC_OK);
    CHECK(out[0] == 0x30 && out[2] == 0x82 && out[2 + 2 + 17] == 0x86);
    /* malformed values, with their index */
    s[1].type = HSMC_SAN_DNS;
    s[1].value = "a..b";
    CHECK_ERR(hsmc_san_der(s, 4, out, sizeof out, &n, &bad), HSMC_ERR_FORMAT);
    CHECK(bad == 1);
    for (i = 0; i < sizeof bad_san / sizeof bad_san[0]; i++) {
        s[1].type = bad_san[i].type;
        s[1].value = bad_san[i].value;
        CHECK_ERR(hsmc_san_der(s, 2, NULL, 0, &n, NULL), bad_san[i].err);
    }
    CHECK_ERR(hsmc_san_der(NULL, 1, NULL, 0, &n, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_san_der(s, 0, NULL, 0, &n, NULL), HSMC_ERR_ARG);
}

/* ---- CSRs ---------------------------------------------------------------------- */

static const hsmc_san_t SANS[] = {
    {HSMC_SAN_DNS, "gw-0001.devices.example.com"},
    {HSMC_SAN_DNS, "*.gw-0001.example.com"},
    {HSMC_SAN_IP, "192.0.2.10"},
    {HSMC_SAN_IP, "2001:db8::10"},
    {HSMC_SAN_URI, "urn:dev:ops:32473-gw-0001"},
    {HSMC_SAN_EMAIL, "ops@example.com"},
};

static void full_req(hsmc_csr_req_t *req, const tkey_t *t)
{
    hsmc_csr_req_init(req);
    req->c = "DE";
    req->st = "Bayern";
    req->l = "M\xc3\xbcnchen"; /* UTF-8 */
    req->o = "Acme, Inc.";     /* a comma, escaped by hsmc */
    req->ou = "Gateways";
    req->cn = t->label;
    req->serial_number = "GW-0001";
    req->san = SANS;
    req->san_count = sizeof SANS / sizeof SANS[0];
    req->key_usage = HSMC_KU_DIGITAL_SIGNATURE |
                     (t->alg >= HSMC_ALG_P256 ? HSMC_KU_KEY_AGREEMENT : HSMC_KU_KEY_ENCIPHERMENT);
    req->ext_key_usage = HSMC_EKU_CLIENT_AUTH | HSMC_EKU_SERVER_AUTH;
}

/* The CertificationRequestInfo (the signed part) of a DER CSR. */
static int csr_cri(const uint8_t *der, size_t len, uint8_t *cri, size_t cap, size_t *cri_len)
{
    mbedtls_x509_csr csr;
    int ok;
    mbedtls_x509_csr_init(&csr);
    ok = mbedtls_x509_csr_parse_der(&csr, der, len) == 0 && csr.cri.len <= cap;
    if (ok) {
        memcpy(cri, csr.cri.p, csr.cri.len);
        *cri_len = csr.cri.len;
    }
    mbedtls_x509_csr_free(&csr);
    return ok;
}

static void csr_for(tkey_t *t)
{
    static uint8_t der[4096], pem[6000], der2[4096], cri1[4096], cri2[4096];
    uint8_t spki[600], csr_spki[600];
    char name[64], pemname[64];
    size_t bound = 0, pbound = 0, len = 0, plen = 0, dlen = 0, spki_len = 0, c1 = 0, c2 = 0;
    hsmc_csr_req_t req;
    mbedtls_x509_csr csr;
    int n;

    full_req(&req, t);
    /* size-only pass: an upper bound */
    CHECK_ERR(hsmc_csr_create(&H, &t->key, &req, HSMC_X509_DER, NULL, 0, &bound), HSMC_OK);
    CHECK_ERR(hsmc_csr_create(&H, &t->key, &req, HSMC_X509_PEM, NULL, 0, &pbound), HSMC_OK);
    CHECK(bound > 300 && bound < sizeof der && pbound > bound && pbound < sizeof pem);
    CHECK_ERR(hsmc_csr_create(&H, &t->key, &req, HSMC_X509_DER, der, bound, &len), HSMC_OK);
    if (len == 0) {
        fprintf(stderr, "csr %s: %s\n", t->label, hsmc_detail(&H));
        return;
    }
    CHECK(len <= bound);
    fprintf(stderr, "note %s: %s CSR %u bytes DER (bound %u), ", hsmc_test_name, t->label,
            (unsigned)len, (unsigned)bound);
    CHECK_ERR(hsmc_csr_create(&H, &t->key, &req, HSMC_X509_PEM, pem, pbound + 1, &plen),
              HSMC_OK);
    CHECK(plen <= pbound && plen == strlen((char *)pem));
    fprintf(stderr, "%u PEM (bound %u)\n", (unsigned)plen, (unsigned)pbound);

    snprintf(name, sizeof name, "%s.der", t->label);
    snprintf(pemname, sizeof pemname, "%s.pem", t->label);
    CHECK(hsmc_test_write_file(hsmc_test_path(name), der, len));
    CHECK(hsmc_test_write_file(hsmc_test_path(pemname), pem, plen));

    /* openssl verifies the self-signature of both forms */
    CHECK(hsmc_test_sh("openssl req -in %s -inform DER -verify -noout", hsmc_test_path(name)));
    CHECK(hsmc_test_log_has("verify OK") ||
          hsmc_test_log_has("Certificate request self-signature verify OK"));
    CHECK(hsmc_test_sh("openssl req -in %s -verify -noout", hsmc_test_path(pemname)));
    /* ...and shows the subject, the SANs, the requested usages */
    CHECK(hsmc_test_sh("openssl req -in %s -inform DER -noout -text -nameopt RFC2253",
                       hsmc_test_path(name)));
    CHECK(hsmc_test_log_has("Subject: serialNumber=GW-0001"));
    CHECK(hsmc_test_log_has("OU=Gateways,O=Acme\\, Inc.,L="));
    CHECK(hsmc_test_log_has(",ST=Bayern,C=DE"));
    CHECK(hsmc_test_log_has(t->label));
    CHECK(hsmc_test_log_has(t->openssl_sig));
    CHECK(hsmc_test_log_has("DNS:gw-0001.devices.example.com, DNS:*.gw-0001.example.com, "
                            "IP Address:192.0.2.10, IP Address:2001:DB8:0:0:0:0:0:10, "
                            "URI:urn:dev:ops:32473-gw-0001, email:ops@example.com"));
    CHECK(hsmc_test_log_has("Digital Signature"));
    CHECK(hsmc_test_log_has("TLS Web Server Authentication, TLS Web Client Authentication"));
    /* GnuTLS parses it too */
    CHECK(hsmc_test_sh("certtool --crq-info --infile %s", hsmc_test_path(pemname)));
    CHECK(hsmc_test_log_has("DNSname: gw-0001.devices.example.com"));
    CHECK(hsmc_test_log_has("IPAddress: 2001:db8::10"));

    /* ECDSA signatureAlgorithm without parameters (RFC 5758 3.2), not with
     * the NULL mbedTLS 2.28 writes */
    if (t->alg >= HSMC_ALG_P256 && t->alg <= HSMC_ALG_P521) {
        static const uint8_t ecdsa_alg[] = {0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86,
                                            0x48, 0xCE, 0x3D, 0x04, 0x03};
        static const uint8_t ecdsa_null[] = {0x30, 0x0C, 0x06, 0x08, 0x2A, 0x86,
                                             0x48, 0xCE, 0x3D, 0x04, 0x03};
        CHECK(memfind(der, len, ecdsa_alg, sizeof ecdsa_alg) != NULL);
        CHECK(memfind(der, len, ecdsa_null, sizeof ecdsa_null) == NULL);
    }

    /* SubjectPublicKeyInfo in the CSR == the token's public key */
    CHECK_ERR(hsmc_key_export_pub(&H, &t->key, spki, sizeof spki, &spki_len), HSMC_OK);
    CHECK(memfind(der, len, spki, spki_len) != NULL);
    mbedtls_x509_csr_init(&csr);
    CHECK(mbedtls_x509_csr_parse_der(&csr, der, len) == 0);
    n = mbedtls_pk_write_pubkey_der(&csr.pk, csr_spki, sizeof csr_spki);
    CHECK(n > 0 && (size_t)n == spki_len &&
          memcmp(csr_spki + sizeof csr_spki - n, spki, spki_len) == 0);
    mbedtls_x509_csr_free(&csr);
    CHECK(
        hsmc_test_sh("openssl req -in %s -pubkey -noout | openssl pkey -pubin -outform DER -out %s",
                     hsmc_test_path(pemname), hsmc_test_path("csr-spki.der")));

    /* PEM and DER agree: our PEM decodes to a CSR with the same signed part
     * (ECDSA signatures differ per call; RSA PKCS#1 v1.5 ones do not) */
    CHECK_ERR(hsmc_pem_read("CERTIFICATE REQUEST", (const char *)pem, plen, der2, sizeof der2,
                            &dlen),
              HSMC_OK);
    CHECK(csr_cri(der, len, cri1, sizeof cri1, &c1) && csr_cri(der2, dlen, cri2, sizeof cri2, &c2));
    CHECK(c1 == c2 && c1 > 0 && memcmp(cri1, cri2, c1) == 0);
    if (t->alg >= HSMC_ALG_RSA2048 && t->alg <= HSMC_ALG_RSA4096)
        CHECK(dlen == len && memcmp(der, der2, len) == 0);
    CHECK(hsmc_test_sh("openssl req -in %s -outform DER -out %s", hsmc_test_path(pemname),
                       hsmc_test_path("pem2der.der")));
    CHECK(hsmc_test_write_file(hsmc_test_path("ours.der"), der2, dlen));
    CHECK(hsmc_test_sh("cmp %s %s", hsmc_test_path("pem2der.der"), hsmc_test_path("ours.der")));

    /* buffer too small: HSMC_ERR_BUFFER with the bound */
    CHECK_ERR(hsmc_csr_create(&H, &t->key, &req, HSMC_X509_DER, der2, len - 10, &dlen),
              HSMC_ERR_BUFFER);
    CHECK(dlen == bound);
    CHECK_ERR(hsmc_csr_create(&H, &t->key, &req, HSMC_X509_DER, der2, 40, &dlen), HSMC_ERR_BUFFER);
    CHECK(dlen == bound);
    CHECK_ERR(hsmc_csr_create(&H, &t->key, &req, HSMC_X509_PEM, pem, plen - 12, &dlen),
              HSMC_ERR_BUFFER);
    CHECK(dlen == pbound);
}

static void test_csr_keys(void)
{
    size_t i;
    for (i = 0; i < NKEYS; i++) {
        if (KEYS[i].ok)
            csr_for(&KEYS[i]);
    }
}

/* Subject as a string, a minimal CSR, other hashes. */
static void test_csr_forms(void)
{
    static uint8_t der[4096];
    hsmc_csr_req_t req;
    size_t len = 0;

    hsmc_csr_req_init(&req);
    req.subject = "CN=dev\\, one,O=Acme,OU=Lab,C=NL,serialNumber=SN-42,emailAddress=a@b.example";
    CHECK_ERR(hsmc_csr_create(&H, &KEYS[0].key, &req, HSMC_X509_DER, der, sizeof der, &len),
              HSMC_OK);
    CHECK(hsmc_test_write_file(hsmc_test_path("str.der"), der, len));
    CHECK(hsmc_test_sh("openssl req -in %s -inform DER -verify -noout -subject -nameopt RFC2253",
                       hsmc_test_path("str.der")));
    CHECK(hsmc_test_log_has(
        "emailAddress=a@b.example,serialNumber=SN-42,C=NL,OU=Lab,O=Acme,CN=dev\\, one"));
    /* no extensions at all; SHA-512 with P-256; SHA-384 with RSA */
    req.subject = "CN=minimal";
    req.hash = HSMC_HASH_SHA512;
    CHECK_ERR(hsmc_csr_create(&H, &KEYS[0].key, &req, HSMC_X509_DER, der, sizeof der, &len),
              HSMC_OK);
    CHECK(hsmc_test_write_file(hsmc_test_path("min.der"), der, len));
    CHECK(hsmc_test_sh("openssl req -in %s -inform DER -verify -noout -text",
                       hsmc_test_path("min.der")));
    CHECK(hsmc_test_log_has("ecdsa-with-SHA512"));
    CHECK(!hsmc_test_log_has("X509v3"));
    req.hash = HSMC_HASH_SHA384;
    req.key_usage = HSMC_KU_DIGITAL_SIGNATURE | HSMC_KU_DECIPHER_ONLY | HSMC_KU_KEY_AGREEMENT;
    req.ext_key_usage = HSMC_EKU_CODE_SIGNING | HSMC_EKU_EMAIL_PROTECTION |
                        HSMC_EKU_TIME_STAMPING | HSMC_EKU_OCSP_SIGNING;
    CHECK_ERR(hsmc_csr_create(&H, &KEYS[3].key, &req, HSMC_X509_DER, der, sizeof der, &len),
              HSMC_OK);
    CHECK(hsmc_test_write_file(hsmc_test_path("rsa384.der"), der, len));
    CHECK(hsmc_test_sh("openssl req -in %s -inform DER -verify -noout -text",
                       hsmc_test_path("rsa384.der")));
    CHECK(hsmc_test_log_has("sha384WithRSAEncryption"));
    CHECK(hsmc_test_log_has("Digital Signature, Key Agreement, Decipher Only"));
    CHECK(hsmc_test_log_has("Code Signing, E-mail Protection, Time Stamping, OCSP Signing"));
    CHECK(hsmc_test_sh("certtool --crq-info --infile %s --inder", hsmc_test_path("rsa384.der")));
}

static void test_csr_bad(void)
{
    static uint8_t der[4096];
    hsmc_csr_req_t req;
    hsmc_key_t aes, nosign;
    hsmc_san_t san[2];
    size_t len = 0;
    const hsmc_key_t *k = &KEYS[0].key;
    static const char *bad_subjects[] = {
        "CN=a,garbage",     /* mbedTLS would drop the last part silently */
        "garbage",          /* ... or everything */
        "XX=1",             /* unknown attribute */
        "CN=a,CN=b",        /* mbedTLS would keep one */
        "CN=a\\b",          /* only \, is an escape */
        "C=DEU",            /* two letters */
        "CN=",              /* empty value */
        "CN=a,",            /* trailing comma */
        "=a",               /* no key */
        "serialNumber=a_b", /* not a PrintableString */
        "CN=a\x01",         /* control character */
    };
    size_t i;

    hsmc_csr_req_init(&req);
    req.cn = "x";
    CHECK_ERR(hsmc_csr_create(NULL, k, &req, HSMC_X509_DER, der, sizeof der, &len), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_csr_create(&H, NULL, &req, HSMC_X509_DER, der, sizeof der, &len), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_csr_create(&H, k, NULL, HSMC_X509_DER, der, sizeof der, &len), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_csr_create(&H, k, &req, HSMC_X509_DER, der, sizeof der, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_csr_create(&H, k, &req, (hsmc_x509_fmt_t)7, der, sizeof der, &len),
              HSMC_ERR_ARG);
    /* secret key, key without CKA_SIGN */
    REQUIRE(hsmc_test_gen(&H, "csr-aes", HSMC_ALG_AES128, HSMC_USE_ENCRYPT, &aes) == HSMC_OK);
    CHECK_ERR(hsmc_csr_create(&H, &aes, &req, HSMC_X509_DER, der, sizeof der, &len), HSMC_ERR_ARG);
    CHECK(strstr(hsmc_detail(&H), "secret key") != NULL);
    REQUIRE(hsmc_test_gen(&H, "csr-nosign", HSMC_ALG_P256, HSMC_USE_DERIVE, &nosign) == HSMC_OK);
    CHECK_ERR(hsmc_csr_create(&H, &nosign, &req, HSMC_X509_DER, der, sizeof der, &len),
              HSMC_ERR_KEY_USAGE);
    /* subject: empty, twice, malformed */
    req.cn = NULL;
    CHECK_ERR(hsmc_csr_create(&H, k, &req, HSMC_X509_DER, der, sizeof der, &len), HSMC_ERR_ARG);
    CHECK(strstr(hsmc_detail(&H), "subject is empty") != NULL);
    req.subject = "";
    CHECK_ERR(hsmc_csr_create(&H, k, &req, HSMC_X509_DER, NULL, 0, &len), HSMC_ERR_ARG);
    req.subject = "CN=a";
    req.o = "b";
    CHECK_ERR(hsmc_csr_create(&H, k, &req, HSMC_X509_DER, der, sizeof der, &len), HSMC_ERR_ARG);
    req.o = NULL;
    for (i = 0; i < sizeof bad_subjects / sizeof bad_subjects[0]; i++) {
        hsmc_err_t err;
        req.subject = bad_subjects[i];
        err = hsmc_csr_create(&H, k, &req, HSMC_X509_DER, der, sizeof der, &len);
        if (err != HSMC_ERR_FORMAT)
            fprintf(stderr, "subject '%s': %s (%s)\n", bad_subjects[i], hsmc_err_name(err),
                    hsmc_detail(&H));
        CHECK(err == HSMC_ERR_FORMAT);
        CHECK(len == 0);
    }
    req.subject = NULL;
    req.c = "Germany";
    CHECK_ERR(hsmc_csr_create(&H, k, &req, HSMC_X509_DER, der, sizeof der, &len),
              HSMC_ERR_FORMAT);
    req.c = NULL;
    req.cn = "back\\slash";
    CHECK_ERR(hsmc_csr_create(&H, k, &req, HSMC_X509_DER, der, sizeof der, &len),
              HSMC_ERR_FORMAT);
    req.cn = "01234567890123456789012345678901234567890123456789012345678901234"; /* 65 */
    CHECK_ERR(hsmc_csr_create(&H, k, &req, HSMC_X509_DER, der, sizeof der, &len),
              HSMC_ERR_FORMAT);
    req.cn = "ok";
    /* SANs */
    san[0].type = HSMC_SAN_DNS;
    san[0].value = "ok.example";
    san[1].type = HSMC_SAN_IP;
    san[1].value = "192.0.2.300";
    req.san = san;
    req.san_count = 2;
    CHECK_ERR(hsmc_csr_create(&H, k, &req, HSMC_X509_DER, der, sizeof der, &len),
              HSMC_ERR_FORMAT);
    CHECK(strstr(hsmc_detail(&H), "subjectAltName 1 (IP '192.0.2.300')") != NULL);
    CHECK_ERR(hsmc_csr_create(&H, k, &req, HSMC_X509_DER, NULL, 0, &len), HSMC_ERR_FORMAT);
    req.san = NULL;
    CHECK_ERR(hsmc_csr_create(&H, k, &req, HSMC_X509_DER, der, sizeof der, &len), HSMC_ERR_ARG);
    req.san_count = 0;
    /* usages and hash */
    req.key_usage = 0x100;
    CHECK_ERR(hsmc_csr_create(&H, k, &req, HSMC_X509_DER, der, sizeof der, &len), HSMC_ERR_ARG);
    req.key_usage = 0;
    req.ext_key_usage = 0x40;
    CHECK_ERR(hsmc_csr_create(&H, k, &req, HSMC_X509_DER, der, sizeof der, &len), HSMC_ERR_ARG);
    req.ext_key_usage = 0;
    req.hash = HSMC_HASH_SHA1;
    CHECK_ERR(hsmc_csr_create(&H, k, &req, HSMC_X509_DER, der, sizeof der, &len),
              HSMC_ERR_UNSUPPORTED);
    req.hash = (hsmc_hash_t)42;
    CHECK_ERR(hsmc_csr_create(&H, k, &req, HSMC_X509_DER, der, sizeof der, &len), HSMC_ERR_ARG);
    req.hash = HSMC_HASH_NONE;
    /* still fine after all that, and the pool is not leaking */
    for (i = 0; i < 2 * HSMC_X509_PK_POOL; i++)
        CHECK_ERR(hsmc_csr_create(&H, k, &req, HSMC_X509_DER, der, sizeof der, &len), HSMC_OK);
}

/* HSMC_X509_MEASURE=csr: one P-256 CSR, nothing else (heap measurement). */
static int measure_csr(void)
{
    static uint8_t der[4096];
    hsmc_csr_req_t req;
    size_t len = 0;
    tkey_t *t = &KEYS[0];

    if (hsmc_test_gen(&H, t->label, t->alg, HSMC_USE_SIGN, &t->key) != HSMC_OK)
        return 1;
    full_req(&req, t);
    fprintf(stderr, "HSMC_MEASURE_BEGIN\n");
    if (hsmc_csr_create(&H, &t->key, &req, HSMC_X509_DER, der, sizeof der, &len) != HSMC_OK) {
        fprintf(stderr, "csr: %s\n", hsmc_detail(&H));
        return 1;
    }
    fprintf(stderr, "HSMC_MEASURE_END\n");
    printf("csr %u bytes\n", (unsigned)len);
    return 0;
}

int main(void)
{
    const char *m = getenv("HSMC_X509_MEASURE");
    int rc;

    setvbuf(stderr, NULL, _IONBF, 0);
    hsmc_test_open(&H, "test", NULL);
    if (m != NULL && strcmp(m, "csr") == 0) {
        rc = measure_csr();
        hsmc_close(&H);
        return rc;
    }
    RUN(test_keys);
    RUN(test_bind_sign);
    RUN(test_bind_public_and_pool);
    RUN(test_bind_bad);
    RUN(test_pem);
    RUN(test_san);
    RUN(test_csr_keys);
    RUN(test_csr_forms);
    RUN(test_csr_bad);
    hsmc_close(&H);
    return TEST_END();
}
