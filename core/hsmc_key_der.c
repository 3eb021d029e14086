/*
 * DER for key management: locating the parts of a software private key for
 * import (validated by mbedTLS first), and the small DER header helpers the
 * SubjectPublicKeyInfo writer in hsmc_key.c uses.
 *
 * mbedTLS allocates its parsing contexts itself (the integrator's mbedTLS
 * configuration); this file does not allocate. Written for mbedTLS 2.28
 * (Debian libmbedtls-dev); mbedTLS 3 changed pk_parse_key and hid the
 * struct fields used here, so a 3.x build reports import as unsupported.
 */
#include <stdint.h>
#include <string.h>

#include "hsmc_key_der.h"

#include <mbedtls/version.h>
#include <mbedtls/asn1.h>
#include <mbedtls/pk.h>

#if defined(MBEDTLS_PK_PARSE_C) && defined(MBEDTLS_ASN1_PARSE_C) && \
    MBEDTLS_VERSION_NUMBER < 0x03000000
#define HSMC_DER_CAN_PARSE 1
#else
#define HSMC_DER_CAN_PARSE 0
#endif

/* ---- DER headers ----------------------------------------------------------- */

size_t hsmc__der_hdr_len(size_t len)
{
    if (len < 0x80u)
        return 2;
    if (len < 0x100u)
        return 3;
    if (len < 0x10000u)
        return 4;
    return 5; /* up to 16 MiB: far beyond any key */
}

size_t hsmc__der_put_hdr(uint8_t *p, unsigned tag, size_t len)
{
    size_t n = hsmc__der_hdr_len(len), i;

    p[0] = (uint8_t)tag;
    if (n == 2) {
        p[1] = (uint8_t)len;
        return 2;
    }
    p[1] = (uint8_t)(0x80u | (unsigned)(n - 2));
    for (i = n - 1; i >= 2; i--) {
        p[i] = (uint8_t)(len & 0xffu);
        len >>= 8;
    }
    return n;
}

#if HSMC_DER_CAN_PARSE

/* mbedTLS's parser takes non-const pointers; it only reads through them. */
#define HSMC_DER_RW(p) ((unsigned char *)(uintptr_t)(const void *)(p))

/* OIDs (content bytes) of the key algorithms in PKCS#8. */
static const uint8_t hsmc_oid_rsa[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
static const uint8_t hsmc_oid_ec[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};

static hsmc_err_t hsmc_der_bad(hsmc_t *h, const char *what)
{
    return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                      "private key DER: %s (give PKCS#8, SEC1 or PKCS#1 DER)", what);
}

/* Read one INTEGER at *p as an unsigned big-endian value without its
 * leading zero bytes (one byte stays for zero). */
static int hsmc_der_uint(unsigned char **p, const unsigned char *end, const uint8_t **v,
                         size_t *len)
{
    size_t l;

    if (mbedtls_asn1_get_tag(p, end, &l, MBEDTLS_ASN1_INTEGER) != 0 || l == 0)
        return -1;
    *v = *p;
    *len = l;
    *p += l;
    while (*len > 1 && (*v)[0] == 0) {
        (*v)++;
        (*len)--;
    }
    return 0;
}

/* INTEGER version that must be `want` (a small number). */
static int hsmc_der_version(unsigned char **p, const unsigned char *end, unsigned want)
{
    const uint8_t *v;
    size_t l;

    if (hsmc_der_uint(p, end, &v, &l) != 0)
        return -1;
    return (l == 1 && v[0] == want) ? 0 : -1;
}

/* RSAPrivateKey after its version: n e d p q dp dq qinv. */
static int hsmc_der_rsa_body(unsigned char **p, const unsigned char *end, hsmc_der_key_t *k)
{
    int i;
    for (i = 0; i < HSMC_DER_RSA_PARTS; i++) {
        if (hsmc_der_uint(p, end, &k->part[i], &k->part_len[i]) != 0)
            return -1;
    }
    return 0;
}

/* ECPrivateKey after its version: privateKey, [0] parameters, [1] publicKey. */
static int hsmc_der_ec_body(unsigned char **p, const unsigned char *end, hsmc_der_key_t *k)
{
    size_t l;

    if (mbedtls_asn1_get_tag(p, end, &l, MBEDTLS_ASN1_OCTET_STRING) != 0 || l == 0)
        return -1;
    k->part[HSMC_DER_EC_D] = *p;
    k->part_len[HSMC_DER_EC_D] = l;
    *p += l;
    while (k->part_len[HSMC_DER_EC_D] > 1 && k->part[HSMC_DER_EC_D][0] == 0) {
        k->part[HSMC_DER_EC_D]++;
        k->part_len[HSMC_DER_EC_D]--;
    }
    if (*p < end && **p == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0)) {
        if (mbedtls_asn1_get_tag(p, end, &l, **p) != 0)
            return -1;
        *p += l; /* the curve: mbedTLS already named it */
    }
    if (*p < end && **p == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 1)) {
        if (mbedtls_asn1_get_tag(p, end, &l, **p) != 0 ||
            mbedtls_asn1_get_tag(p, end, &l, MBEDTLS_ASN1_BIT_STRING) != 0 || l < 2 ||
            (*p)[0] != 0)
            return -1;
        k->part[HSMC_DER_EC_POINT] = *p + 1; /* after the unused-bits octet */
        k->part_len[HSMC_DER_EC_POINT] = l - 1;
        *p += l;
    }
    return 0;
}

/* A nested RSAPrivateKey or ECPrivateKey (inside PKCS#8's OCTET STRING). */
static int hsmc_der_inner(unsigned char *p, const unsigned char *end, int rsa, hsmc_der_key_t *k)
{
    size_t l;

    if (mbedtls_asn1_get_tag(&p, end, &l, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return -1;
    end = p + l;
    if (hsmc_der_version(&p, end, rsa ? 0u : 1u) != 0)
        return -1;
    return rsa ? hsmc_der_rsa_body(&p, end, k) : hsmc_der_ec_body(&p, end, k);
}

/* Locate the parts: PrivateKeyInfo (PKCS#8), ECPrivateKey (SEC1) or
 * RSAPrivateKey (PKCS#1), told apart by what follows the version. */
static int hsmc_der_walk(const uint8_t *der, size_t len, int rsa, hsmc_der_key_t *k)
{
    unsigned char *p = HSMC_DER_RW(der);
    const unsigned char *end = der + len;
    mbedtls_asn1_buf oid, params;
    size_t l;

    if (mbedtls_asn1_get_tag(&p, end, &l, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0 ||
        p + l != end)
        return -1;
    /* Every form starts with a one-byte INTEGER version: 02 01 vv, then
     * the tag that tells them apart. */
    if (end - p < 4 || p[0] != MBEDTLS_ASN1_INTEGER || p[1] != 1)
        return -1;
    if (p[3] == (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) {
        /* PKCS#8 (v1 or v2): version, AlgorithmIdentifier, OCTET STRING { key } */
        if (p[2] > 1)
            return -1;
        p += 3;
        if (mbedtls_asn1_get_alg(&p, end, &oid, &params) != 0)
            return -1;
        if (rsa ? (oid.len != sizeof hsmc_oid_rsa || memcmp(oid.p, hsmc_oid_rsa, oid.len) != 0)
                : (oid.len != sizeof hsmc_oid_ec || memcmp(oid.p, hsmc_oid_ec, oid.len) != 0))
            return -1;
        if (mbedtls_asn1_get_tag(&p, end, &l, MBEDTLS_ASN1_OCTET_STRING) != 0)
            return -1;
        return hsmc_der_inner(p, p + l, rsa, k);
    }
    if (rsa) {
        if (hsmc_der_version(&p, end, 0) != 0) /* 1 is multi-prime RSA */
            return -1;
        return hsmc_der_rsa_body(&p, end, k);
    }
    if (hsmc_der_version(&p, end, 1) != 0)
        return -1;
    return hsmc_der_ec_body(&p, end, k);
}

/* The hsmc algorithm of a parsed mbedTLS key. */
static hsmc_err_t hsmc_der_alg(hsmc_t *h, const mbedtls_pk_context *pk, hsmc_key_alg_t *alg)
{
    size_t bits;

    switch (mbedtls_pk_get_type(pk)) {
    case MBEDTLS_PK_RSA:
        bits = mbedtls_pk_get_bitlen(pk);
        *alg = bits == 2048 ? HSMC_ALG_RSA2048
             : bits == 3072 ? HSMC_ALG_RSA3072
             : bits == 4096 ? HSMC_ALG_RSA4096 : HSMC_ALG_NONE;
        if (*alg == HSMC_ALG_NONE)
            return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                              "RSA-%u keys cannot be imported (2048, 3072 or 4096 bits)",
                              (unsigned)bits);
        return HSMC_OK;
    case MBEDTLS_PK_ECKEY:
    case MBEDTLS_PK_ECKEY_DH:
        switch (mbedtls_pk_ec(*pk)->grp.id) {
        case MBEDTLS_ECP_DP_SECP256R1:
            *alg = HSMC_ALG_P256;
            return HSMC_OK;
        case MBEDTLS_ECP_DP_SECP384R1:
            *alg = HSMC_ALG_P384;
            return HSMC_OK;
        case MBEDTLS_ECP_DP_SECP521R1:
            *alg = HSMC_ALG_P521;
            return HSMC_OK;
        case MBEDTLS_ECP_DP_SECP256K1:
            *alg = HSMC_ALG_SECP256K1;
            return HSMC_OK;
        default:
            return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                              "EC key on a curve hsmc does not import "
                              "(P-256, P-384, P-521, secp256k1)");
        }
    default:
        return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "only RSA and EC private keys can be imported from DER");
    }
}

hsmc_err_t hsmc__der_parse_key(hsmc_t *h, const uint8_t *der, size_t len, hsmc_der_key_t *k)
{
    mbedtls_pk_context pk;
    hsmc_err_t err;
    int ret;

    memset(k, 0, sizeof *k);
    if (len < 2 || der[0] != (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
        return hsmc_der_bad(h, "does not start with a DER SEQUENCE (PEM must be converted)");
    mbedtls_pk_init(&pk);
    ret = mbedtls_pk_parse_key(&pk, der, len, NULL, 0);
    if (ret != 0) {
        mbedtls_pk_free(&pk);
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                          "private key DER: mbedTLS cannot parse it (-0x%04x); give an "
                          "unencrypted PKCS#8, SEC1 or PKCS#1 key",
                          (unsigned)-ret);
    }
    err = hsmc_der_alg(h, &pk, &k->alg);
    mbedtls_pk_free(&pk);
    if (err != HSMC_OK)
        return err;
    if (hsmc_der_walk(der, len, k->alg >= HSMC_ALG_RSA2048 && k->alg <= HSMC_ALG_RSA4096, k) != 0) {
        memset(k, 0, sizeof *k);
        return hsmc_der_bad(h, "an encoding hsmc cannot take apart (multi-prime RSA?)");
    }
    return HSMC_OK;
}

hsmc_err_t hsmc__der_ec_point(hsmc_t *h, const uint8_t *der, size_t len, uint8_t *out,
                              size_t cap, size_t *out_len)
{
    mbedtls_pk_context pk;
    mbedtls_ecp_keypair *ec;
    int ret;

    mbedtls_pk_init(&pk);
    ret = mbedtls_pk_parse_key(&pk, der, len, NULL, 0);
    if (ret == 0 && mbedtls_pk_get_type(&pk) != MBEDTLS_PK_ECKEY &&
        mbedtls_pk_get_type(&pk) != MBEDTLS_PK_ECKEY_DH)
        ret = MBEDTLS_ERR_PK_TYPE_MISMATCH;
    if (ret == 0) {
        ec = mbedtls_pk_ec(pk);
        ret = mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED,
                                             out_len, out, cap);
    }
    mbedtls_pk_free(&pk);
    if (ret == MBEDTLS_ERR_ECP_BUFFER_TOO_SMALL)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK, "EC public point does not fit");
    if (ret != 0)
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                          "private key DER: mbedTLS cannot compute its public point (-0x%04x)",
                          (unsigned)-ret);
    return HSMC_OK;
}

#else /* !HSMC_DER_CAN_PARSE */

hsmc_err_t hsmc__der_parse_key(hsmc_t *h, const uint8_t *der, size_t len, hsmc_der_key_t *k)
{
    (void)der;
    (void)len;
    memset(k, 0, sizeof *k);
    return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                      "key import needs mbedTLS 2.x with MBEDTLS_PK_PARSE_C and "
                      "MBEDTLS_ASN1_PARSE_C");
}

hsmc_err_t hsmc__der_ec_point(hsmc_t *h, const uint8_t *der, size_t len, uint8_t *out,
                              size_t cap, size_t *out_len)
{
    (void)der;
    (void)len;
    (void)out;
    (void)cap;
    *out_len = 0;
    return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, CKR_OK, "key import needs mbedTLS key parsing");
}

#endif /* HSMC_DER_CAN_PARSE */
