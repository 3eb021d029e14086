/*
 * Token keys as mbedTLS 2.28 keys: the one file of hsmc that depends on
 * mbedTLS internals (<mbedtls/pk_internal.h>) and on API forms that changed
 * in mbedTLS 3.x.
 *
 * An mbedtls_pk_context is a pointer to a "pk info" (a table of functions
 * for one key type) and a key context. hsmc_pk_bind gives the pk a table
 * modelled on mbedTLS's own mbedtls_eckey_info / mbedtls_rsa_info: key
 * size, verification, encryption (RSA public operation) and debug output
 * call the originals, which only need the public key, while sign_func goes
 * to the token (hsmc_sign_digest). The key context is an entry of a static
 * pool whose first member is a real mbedtls_ecp_keypair or
 * mbedtls_rsa_context holding the public key read from the token (an RSA
 * modulus straight into that context's N: no buffer of its size on the
 * stack), so mbedtls_pk_ec()/mbedtls_pk_rsa(), the SubjectPublicKeyInfo
 * writer of the CSR and certificate code and TLS's key checks see an
 * ordinary key. The pool replaces ctx_alloc_func/ctx_free_func:
 * mbedtls_pk_free() returns the entry. (mbedtls_pk_setup_rsa_alt cannot be
 * used: it has no public key, so mbedTLS cannot write a CSR with it.)
 *
 * mbedTLS 3.6 / 4.x route: pk_internal.h is gone there and keys are PSA
 * keys. A token key becomes a PSA opaque key (a PSA driver whose
 * sign_hash entry point calls hsmc_sign_digest and whose export_public_key
 * reads the token, registered through MBEDTLS_PSA_CRYPTO_DRIVERS and a
 * location value), and the pk comes from mbedtls_pk_setup_opaque() (3.6)
 * or mbedtls_pk_wrap_psa() (4.x). hsmc_pk_bind keeps its signature; the
 * pool then holds PSA key ids instead of mbedTLS key contexts. The other
 * version-dependent calls (hsmc__x509_csr_set_ext: 3.x adds a criticality
 * argument; hsmc__x509_tls12_only: 3.x has mbedtls_ssl_conf_max_tls_version;
 * mbedtls_rsa_init lost its padding arguments) are in this file as well.
 */
#include <string.h>

#include <mbedtls/asn1.h>
#include <mbedtls/base64.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk_internal.h>
#include <mbedtls/rsa.h>
#include <mbedtls/version.h>

#include "hsmc_key_der.h"
#include "hsmc_x509_int.h"

#if MBEDTLS_VERSION_NUMBER < 0x02100000 || MBEDTLS_VERSION_NUMBER >= 0x03000000
#error "x509/hsmc_pk_mbedtls28.c is for mbedTLS 2.16-2.28; mbedTLS 3.x needs the PSA route (see above)"
#endif

/* Largest SubjectPublicKeyInfo of an EC key: P-521 is 158 bytes. */
#define HSMC_X509_EC_SPKI_CAP 160u
/* Largest RSA key bound: the sizes of x509/ (signatures, SPKI) stop there. */
#define HSMC_X509_RSA_MAX_BITS 4096u
/* Bound of the SubjectPublicKeyInfo of any key bound (RSA-4096: 550 bytes). */
#define HSMC_X509_SPKI_CAP 600u
/* Raw ECDSA r||s of P-521. */
#define HSMC_X509_RAW_SIG_CAP 132u

/* One pool entry. The mbedTLS key context must come first: mbedTLS's own
 * functions get a pointer to the entry and read it as that context. */
typedef struct hsmc_pk_slot {
    union {
        mbedtls_ecp_keypair ec;
        mbedtls_rsa_context rsa;
    } k;
    hsmc_t *h;           /* context that signs */
    hsmc_key_t key;      /* the token key */
    hsmc_err_t last_err; /* of the last signature */
    unsigned char used;
    unsigned char is_rsa;
} hsmc_pk_slot_t;

static hsmc_pk_slot_t hsmc_pk_pool[HSMC_X509_PK_POOL];

/* ---- Pool ------------------------------------------------------------------ */

static void *hsmc_pk_claim(int is_rsa)
{
    hsmc_pk_slot_t *s = NULL;
    size_t i;

    /* The registry lock is process-wide and static: a short critical section. */
    hsmc_port_global_lock();
    for (i = 0; i < HSMC_X509_PK_POOL; i++) {
        if (!hsmc_pk_pool[i].used) {
            hsmc_pk_pool[i].used = 1;
            s = &hsmc_pk_pool[i];
            break;
        }
    }
    hsmc_port_global_unlock();
    if (s == NULL)
        return NULL;
    memset(&s->k, 0, sizeof s->k);
    memset(&s->key, 0, sizeof s->key);
    s->h = NULL;
    s->last_err = HSMC_OK;
    s->is_rsa = (unsigned char)is_rsa;
    if (is_rsa)
        mbedtls_rsa_init(&s->k.rsa, MBEDTLS_RSA_PKCS_V15, 0);
    else
        mbedtls_ecp_keypair_init(&s->k.ec);
    return s;
}

static void *hsmc_pk_ec_alloc(void)
{
    return hsmc_pk_claim(0);
}

static void *hsmc_pk_rsa_alloc(void)
{
    return hsmc_pk_claim(1);
}

static void hsmc_pk_release(void *ctx)
{
    hsmc_pk_slot_t *s = (hsmc_pk_slot_t *)ctx;

    if (s == NULL)
        return;
    if (s->is_rsa)
        mbedtls_rsa_free(&s->k.rsa);
    else
        mbedtls_ecp_keypair_free(&s->k.ec);
    hsmc__wipe(&s->key, sizeof s->key);
    s->h = NULL;
    hsmc_port_global_lock();
    s->used = 0;
    hsmc_port_global_unlock();
}

/* ---- Signing in the token ---------------------------------------------- */

/* mbedTLS sees a generic code; the hsmc error and its detail stay in the
 * slot and the hsmc_t (hsmc_pk_last_err, hsmc_x509_fail). */
static int hsmc_pk_ret(hsmc_pk_slot_t *s, hsmc_err_t err)
{
    s->last_err = err;
    switch (err) {
    case HSMC_OK:
        return 0;
    case HSMC_ERR_ARG:
    case HSMC_ERR_BUFFER:
        return MBEDTLS_ERR_PK_BAD_INPUT_DATA;
    case HSMC_ERR_UNSUPPORTED:
        return MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE;
    default:
        return MBEDTLS_ERR_PK_HW_ACCEL_FAILED; /* the "hardware" is the token */
    }
}

/* The SHA-2 hash whose digest has `len` bytes (NONE when there is none). */
static hsmc_hash_t hsmc_hash_of_len(size_t len)
{
    hsmc_hash_t hh;

    for (hh = HSMC_HASH_SHA224; hh <= HSMC_HASH_SHA512; hh = (hsmc_hash_t)(hh + 1)) {
        if (hsmc_hash_len(hh) == len)
            return hh;
    }
    return HSMC_HASH_NONE;
}

/*
 * ECDSA: the leftmost bits of the hash, as many as the order has (FIPS
 * 186-4 6.4), are what is signed. Truncating on the host keeps tokens that
 * refuse a CKM_ECDSA input longer than the order working (SHA-384 with
 * P-256). CKM_ECDSA takes a bare digest, so the hash passed to
 * hsmc_sign_digest only tags the truncated length. A digest that must be
 * shifted (an order whose bit length is not a multiple of 8) is built in
 * sig, which receives the DER signature only after the token has signed.
 */
static int hsmc_pkw_ec_sign(void *ctx, mbedtls_md_type_t md_alg, const unsigned char *hash,
                        size_t hash_len, unsigned char *sig, size_t *sig_len,
                        int (*f_rng)(void *, unsigned char *, size_t), void *p_rng)
{
    hsmc_pk_slot_t *s = (hsmc_pk_slot_t *)ctx;
    uint8_t raw[HSMC_X509_RAW_SIG_CAP];
    const uint8_t *dig = hash;
    size_t nbits = s->k.ec.grp.nbits, use, raw_len = 0, i;
    unsigned shift;
    hsmc_sig_alg_t alg;
    hsmc_err_t err;

    (void)md_alg;
    (void)f_rng; /* the token has its own RNG */
    (void)p_rng;
    if (hash == NULL || hash_len == 0 || hash_len > 64 || sig == NULL || sig_len == NULL)
        return hsmc_pk_ret(s, hsmc__fail(s->h, HSMC_ERR_ARG, CKR_OK,
                                         "ECDSA signature through mbedTLS: bad hash or output"));
    use = hash_len;
    shift = 0;
    if (hash_len * 8 > nbits) {
        use = (nbits + 7) / 8; /* at most MBEDTLS_ECP_MAX_BYTES: sig has room */
        shift = (unsigned)(use * 8 - nbits);
    }
    if (shift != 0) { /* keep the leftmost nbits bits as a big-endian integer */
        for (i = use; i-- > 0;)
            sig[i] = (uint8_t)((hash[i] >> shift) |
                               (i > 0 ? (uint8_t)(hash[i - 1] << (8 - shift)) : 0));
        dig = sig;
    }
    alg.scheme = HSMC_SIG_ECDSA;
    alg.hash = hsmc_hash_of_len(use);
    if (alg.hash == HSMC_HASH_NONE)
        return hsmc_pk_ret(s, hsmc__fail(s->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                                         "ECDSA with '%s': a %u-byte hash (SHA-1?) is not signed; "
                                         "use SHA-224..SHA-512",
                                         s->key.priv.label, (unsigned)hash_len));
    err = hsmc_sign_digest(s->h, &s->key, alg, dig, use, raw, sizeof raw, &raw_len);
    if (err == HSMC_OK)
        err = hsmc_ecdsa_raw_to_der(raw, raw_len, sig, MBEDTLS_ECDSA_MAX_LEN, sig_len);
    return hsmc_pk_ret(s, err);
}

/*
 * RSA: PKCS#1 v1.5 with a DigestInfo, or PSS when the caller set the RSA
 * context's padding to V21 (mbedTLS's own way of asking for PSS). The
 * token's PSS uses MGF1 with the signature hash and a salt of the hash
 * length, which is what mbedTLS 2.28 produces and accepts.
 */
static int hsmc_pkw_rsa_sign(void *ctx, mbedtls_md_type_t md_alg, const unsigned char *hash,
                         size_t hash_len, unsigned char *sig, size_t *sig_len,
                         int (*f_rng)(void *, unsigned char *, size_t), void *p_rng)
{
    hsmc_pk_slot_t *s = (hsmc_pk_slot_t *)ctx;
    mbedtls_rsa_context *rsa = &s->k.rsa;
    hsmc_sig_alg_t alg;
    hsmc_hash_t hh;

    (void)f_rng;
    (void)p_rng;
    switch (md_alg) {
    case MBEDTLS_MD_SHA224: hh = HSMC_HASH_SHA224; break;
    case MBEDTLS_MD_SHA256: hh = HSMC_HASH_SHA256; break;
    case MBEDTLS_MD_SHA384: hh = HSMC_HASH_SHA384; break;
    case MBEDTLS_MD_SHA512: hh = HSMC_HASH_SHA512; break;
    default:
        /* MD_NONE (raw PKCS#1 of TLS < 1.2), SHA-1, MD5: not offered. */
        return hsmc_pk_ret(s, hsmc__fail(s->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                                         "RSA signature with '%s': hash %d is not SHA-2 "
                                         "(SHA-224..SHA-512 only)",
                                         s->key.priv.label, (int)md_alg));
    }
    if (hash == NULL || hash_len != hsmc_hash_len(hh) || sig == NULL || sig_len == NULL)
        return hsmc_pk_ret(s, hsmc__fail(s->h, HSMC_ERR_ARG, CKR_OK,
                                         "RSA signature through mbedTLS: bad hash or output"));
    alg.hash = hh;
    alg.scheme = HSMC_SIG_RSA_PKCS1;
    if (rsa->padding == MBEDTLS_RSA_PKCS_V21) {
        if (rsa->hash_id != (int)MBEDTLS_MD_NONE && rsa->hash_id != (int)md_alg)
            return hsmc_pk_ret(s, hsmc__fail(s->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                                             "RSA-PSS with '%s': the token's MGF1 uses the "
                                             "signature hash; the RSA context asks for another",
                                             s->key.priv.label));
        alg.scheme = HSMC_SIG_RSA_PSS;
    }
    return hsmc_pk_ret(s, hsmc_sign_digest(s->h, &s->key, alg, hash, hash_len, sig, rsa->len,
                                           sig_len));
}

/* ---- The rest of the tables: mbedTLS's own functions ------------------- */

static size_t hsmc_pkw_ec_bitlen(const void *ctx)
{
    return mbedtls_eckey_info.get_bitlen(ctx);
}

/* ECDSA, not ECDH: the private value is in the token, and TLS's static
 * ECDH suites would need it on the host. */
static int hsmc_pkw_ec_can_do(mbedtls_pk_type_t type)
{
    return type == MBEDTLS_PK_ECKEY || type == MBEDTLS_PK_ECDSA;
}

static int hsmc_pkw_ec_verify(void *ctx, mbedtls_md_type_t md_alg, const unsigned char *hash,
                          size_t hash_len, const unsigned char *sig, size_t sig_len)
{
    return mbedtls_eckey_info.verify_func(ctx, md_alg, hash, hash_len, sig, sig_len);
}

static void hsmc_pkw_ec_debug(const void *ctx, mbedtls_pk_debug_item *items)
{
    mbedtls_eckey_info.debug_func(ctx, items);
}

static size_t hsmc_pkw_rsa_bitlen(const void *ctx)
{
    return mbedtls_rsa_info.get_bitlen(ctx);
}

static int hsmc_pkw_rsa_can_do(mbedtls_pk_type_t type)
{
    return mbedtls_rsa_info.can_do(type);
}

static int hsmc_pkw_rsa_verify(void *ctx, mbedtls_md_type_t md_alg, const unsigned char *hash,
                           size_t hash_len, const unsigned char *sig, size_t sig_len)
{
    return mbedtls_rsa_info.verify_func(ctx, md_alg, hash, hash_len, sig, sig_len);
}

static int hsmc_pkw_rsa_encrypt(void *ctx, const unsigned char *in, size_t ilen, unsigned char *out,
                            size_t *olen, size_t osize,
                            int (*f_rng)(void *, unsigned char *, size_t), void *p_rng)
{
    return mbedtls_rsa_info.encrypt_func(ctx, in, ilen, out, olen, osize, f_rng, p_rng);
}

static void hsmc_pkw_rsa_debug(const void *ctx, mbedtls_pk_debug_item *items)
{
    mbedtls_rsa_info.debug_func(ctx, items);
}

/* Both halves are public keys here; a pair matches when they are equal. */
static int hsmc_pk_check_pair(const void *pub, const void *prv)
{
    const hsmc_pk_slot_t *a = (const hsmc_pk_slot_t *)pub;
    const hsmc_pk_slot_t *b = (const hsmc_pk_slot_t *)prv;

    if (a->is_rsa != b->is_rsa)
        return MBEDTLS_ERR_PK_TYPE_MISMATCH;
    if (a->is_rsa)
        return mbedtls_mpi_cmp_mpi(&a->k.rsa.N, &b->k.rsa.N) == 0 &&
                       mbedtls_mpi_cmp_mpi(&a->k.rsa.E, &b->k.rsa.E) == 0
                   ? 0
                   : MBEDTLS_ERR_PK_BAD_INPUT_DATA;
    return a->k.ec.grp.id == b->k.ec.grp.id && mbedtls_ecp_point_cmp(&a->k.ec.Q, &b->k.ec.Q) == 0
               ? 0
               : MBEDTLS_ERR_PK_BAD_INPUT_DATA;
}

static const mbedtls_pk_info_t hsmc_pkw_ec_info = {
    .type = MBEDTLS_PK_ECKEY,
    .name = "EC",
    .get_bitlen = hsmc_pkw_ec_bitlen,
    .can_do = hsmc_pkw_ec_can_do,
    .verify_func = hsmc_pkw_ec_verify,
    .sign_func = hsmc_pkw_ec_sign,
    .decrypt_func = NULL,
    .encrypt_func = NULL,
    .check_pair_func = hsmc_pk_check_pair,
    .ctx_alloc_func = hsmc_pk_ec_alloc,
    .ctx_free_func = hsmc_pk_release,
    .debug_func = hsmc_pkw_ec_debug,
};

static const mbedtls_pk_info_t hsmc_pkw_rsa_info = {
    .type = MBEDTLS_PK_RSA,
    .name = "RSA",
    .get_bitlen = hsmc_pkw_rsa_bitlen,
    .can_do = hsmc_pkw_rsa_can_do,
    .verify_func = hsmc_pkw_rsa_verify,
    .sign_func = hsmc_pkw_rsa_sign,
    .decrypt_func = NULL, /* no TLS RSA key exchange: hsmc_tls_setup picks ECDHE */
    .encrypt_func = hsmc_pkw_rsa_encrypt,
    .check_pair_func = hsmc_pk_check_pair,
    .ctx_alloc_func = hsmc_pk_rsa_alloc,
    .ctx_free_func = hsmc_pk_release,
    .debug_func = hsmc_pkw_rsa_debug,
};

/* ---- Binding -------------------------------------------------------------- */

hsmc_err_t hsmc__x509_key_check(hsmc_t *h, const char *fn, const hsmc_key_t *key)
{
    if (key == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: key is NULL", fn);
    if (key->priv.cls == CKO_SECRET_KEY)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: '%s' is a secret key; certificates and TLS need the private key "
                          "of an EC or RSA pair",
                          fn, key->priv.label);
    if (key->priv.cls != CKO_PRIVATE_KEY)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: '%s' is a %s object, not a private key",
                          fn, key->priv.label, hsmc_class_name(key->priv.cls));
    if (key->priv.key_type != CKK_EC && key->priv.key_type != CKK_RSA)
        return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "%s: '%s' is a %s key; mbedTLS %s signs X.509 and TLS with EC "
                          "(P-256/384/521, secp256k1) and RSA keys only",
                          fn, key->priv.label, hsmc_key_type_name(key->priv.key_type),
                          MBEDTLS_VERSION_STRING);
    if ((key->priv.usage & HSMC_USE_SIGN) == 0)
        return hsmc__fail(h, HSMC_ERR_KEY_USAGE, CKR_OK,
                          "%s: '%s' has CKA_SIGN FALSE: it cannot sign CSRs, certificates or "
                          "TLS handshakes",
                          fn, key->priv.label);
    return HSMC_OK;
}

/* Names the function in the detail texts of hsmc_pk_bind and its helpers. */
static const char hsmc_pk_fn[] = "hsmc_pk_bind";

/*
 * EC: the token's SubjectPublicKeyInfo (P-521 is 158 bytes, so it fits a
 * small buffer here), parsed by mbedTLS and copied into the pool entry.
 */
HSMC_NOINLINE static hsmc_err_t hsmc_pk_load_ec(hsmc_t *h, const hsmc_key_t *key,
                                                mbedtls_ecp_keypair *ec)
{
    uint8_t spki[HSMC_X509_EC_SPKI_CAP];
    mbedtls_pk_context tmp;
    size_t len = 0;
    hsmc_err_t err;
    int ret;

    err = hsmc_key_export_pub(h, key, spki, sizeof spki, &len);
    if (err == HSMC_ERR_BUFFER)
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: the public key of '%s' is %u bytes of DER, more than any EC key "
                          "(%u)",
                          hsmc_pk_fn, key->priv.label, (unsigned)len, HSMC_X509_EC_SPKI_CAP);
    if (err != HSMC_OK)
        return err;
    mbedtls_pk_init(&tmp);
    ret = mbedtls_pk_parse_public_key(&tmp, spki, len);
    if (ret != 0) {
        err = hsmc__fail(h,
                         ret == MBEDTLS_ERR_PK_UNKNOWN_NAMED_CURVE ||
                                 ret == MBEDTLS_ERR_ECP_FEATURE_UNAVAILABLE
                             ? HSMC_ERR_UNSUPPORTED
                             : HSMC_ERR_FORMAT,
                         CKR_OK, "%s: mbedTLS cannot use the public key of '%s' (-0x%04X)",
                         hsmc_pk_fn, key->priv.label, (unsigned)-ret);
    } else if (mbedtls_pk_get_type(&tmp) != MBEDTLS_PK_ECKEY) {
        err = hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                         "%s: the token's public key of '%s' is %s, the private key EC",
                         hsmc_pk_fn, key->priv.label, mbedtls_pk_get_name(&tmp));
    } else {
        ret = mbedtls_ecp_group_load(&ec->grp, mbedtls_pk_ec(tmp)->grp.id);
        if (ret == 0)
            ret = mbedtls_ecp_copy(&ec->Q, &mbedtls_pk_ec(tmp)->Q);
        if (ret != 0)
            err = hsmc__fail(h, ret == MBEDTLS_ERR_MPI_ALLOC_FAILED ? HSMC_ERR_LIMIT
                                                                     : HSMC_ERR_FORMAT,
                             CKR_OK, "%s: the public key of '%s' is not usable (-0x%04X)",
                             hsmc_pk_fn, key->priv.label, (unsigned)-ret);
    }
    mbedtls_pk_free(&tmp);
    return err;
}

/*
 * X holds big-endian bytes in the storage of its limbs (as many as it
 * has); make them its value, in place. mbedtls_mpi_read_binary does the
 * same after copying the bytes there.
 */
static void hsmc_mpi_from_be(mbedtls_mpi *X)
{
    const unsigned char *b = (const unsigned char *)X->p;
    size_t i, j, c;
    mbedtls_mpi_uint lo, hi;

    /* Byte block i is limb n-1-i: swap the blocks pairwise, each read as a
     * big-endian number before either is written. */
    for (i = 0; i < (X->n + 1) / 2; i++) {
        j = X->n - 1 - i;
        lo = 0;
        hi = 0;
        for (c = 0; c < sizeof(mbedtls_mpi_uint); c++) {
            lo = (lo << 8) | b[j * sizeof(mbedtls_mpi_uint) + c];
            hi = (hi << 8) | b[i * sizeof(mbedtls_mpi_uint) + c];
        }
        X->p[i] = lo;
        X->p[j] = hi;
    }
}

/*
 * RSA: CKA_MODULUS is read from the token straight into the limbs of the
 * pool entry's N (right-aligned, as big-endian bytes) and turned into its
 * value there, so no buffer of modulus size (RSA-4096: 512 bytes) exists
 * besides N itself; CKA_PUBLIC_EXPONENT goes through a small one.
 */
HSMC_NOINLINE static hsmc_err_t hsmc_pk_load_rsa(hsmc_t *h, const hsmc_key_t *key,
                                                 mbedtls_rsa_context *rsa)
{
    uint8_t e[16]; /* as hsmc_key_export_pub: 65537 is 3 bytes */
    size_t el = 0, nl = 0, got = 0, limbs;
    hsmc_err_t err;
    int ret;

    err = hsmc__key_pub_attr(h, key, CKA_PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT", e, sizeof e,
                             &el);
    if (err == HSMC_OK)
        err = hsmc__key_pub_attr(h, key, CKA_MODULUS, "CKA_MODULUS", NULL, 0, &nl);
    if (err != HSMC_OK && err != HSMC_ERR_BUFFER)
        return err;
    if (err != HSMC_OK || el == 0 || nl == 0 || nl > HSMC_X509_RSA_MAX_BITS / 8 + 1)
        goto unsupported; /* RSA-4096 (a leading zero byte allowed) at most */
    limbs = (nl + sizeof(mbedtls_mpi_uint) - 1) / sizeof(mbedtls_mpi_uint);
    mbedtls_mpi_free(&rsa->N); /* a valid empty number: mbedtls_rsa_init leaves the sign 0 */
    ret = mbedtls_mpi_grow(&rsa->N, limbs); /* zeroed: the bytes before the modulus stay 0 */
    if (ret == 0) {
        err = hsmc__key_pub_attr(h, key, CKA_MODULUS, "CKA_MODULUS",
                                 (uint8_t *)rsa->N.p + (limbs * sizeof(mbedtls_mpi_uint) - nl),
                                 nl, &got);
        if (err != HSMC_OK)
            return err;
        if (got != nl) /* a token changing its mind between the two reads */
            ret = MBEDTLS_ERR_RSA_BAD_INPUT_DATA;
    }
    if (ret == 0) {
        hsmc_mpi_from_be(&rsa->N);
        if (mbedtls_mpi_bitlen(&rsa->N) > HSMC_X509_RSA_MAX_BITS)
            goto unsupported;
        ret = mbedtls_mpi_read_binary(&rsa->E, e, el);
    }
    if (ret == 0) {
        rsa->len = mbedtls_mpi_size(&rsa->N); /* what mbedtls_rsa_import sets */
        ret = mbedtls_rsa_complete(rsa);
    }
    if (ret == 0)
        ret = mbedtls_rsa_check_pubkey(rsa);
    if (ret != 0)
        return hsmc__fail(h, ret == MBEDTLS_ERR_MPI_ALLOC_FAILED ? HSMC_ERR_LIMIT
                                                                  : HSMC_ERR_FORMAT,
                          CKR_OK, "%s: the public key of '%s' is not usable (-0x%04X)",
                          hsmc_pk_fn, key->priv.label, (unsigned)-ret);
    return HSMC_OK;
unsupported:
    return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                      "%s: the public key of '%s' (%u-byte modulus, %u-byte exponent) is not "
                      "an RSA key hsmc binds (up to RSA-%u)",
                      hsmc_pk_fn, key->priv.label, (unsigned)nl, (unsigned)el,
                      HSMC_X509_RSA_MAX_BITS);
}

hsmc_err_t hsmc_pk_bind(hsmc_t *h, const hsmc_key_t *key, mbedtls_pk_context *pk)
{
    hsmc_pk_slot_t *s;
    hsmc_err_t err;
    int ret, is_rsa;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (pk == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: pk is NULL", hsmc_pk_fn);
    if (pk->pk_info != NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: pk is already set up (mbedtls_pk_init it, or unbind it first)",
                          hsmc_pk_fn);
    err = hsmc__x509_key_check(h, hsmc_pk_fn, key);
    if (err != HSMC_OK)
        return err;
    is_rsa = key->priv.key_type == CKK_RSA;
    if (key->has_pub && key->pub.key_type != key->priv.key_type)
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: the token's public key of '%s' is %s, the private key %s",
                          hsmc_pk_fn, key->priv.label, hsmc_key_type_name(key->pub.key_type),
                          hsmc_key_type_name(key->priv.key_type));

    /* The pool entry first: the public key is read into it. */
    ret = mbedtls_pk_setup(pk, is_rsa ? &hsmc_pkw_rsa_info : &hsmc_pkw_ec_info);
    if (ret == MBEDTLS_ERR_PK_ALLOC_FAILED)
        return hsmc__fail(h, HSMC_ERR_LIMIT, CKR_OK,
                          "%s: all %u bound-key contexts are in use (HSMC_X509_PK_POOL); "
                          "unbind one first",
                          hsmc_pk_fn, (unsigned)HSMC_X509_PK_POOL);
    if (ret != 0)
        return hsmc__fail(h, HSMC_ERR_INTERNAL, CKR_OK, "%s: mbedtls_pk_setup: -0x%04X",
                          hsmc_pk_fn, (unsigned)-ret);
    s = (hsmc_pk_slot_t *)pk->pk_ctx;
    err = is_rsa ? hsmc_pk_load_rsa(h, key, &s->k.rsa) : hsmc_pk_load_ec(h, key, &s->k.ec);
    if (err != HSMC_OK) {
        mbedtls_pk_free(pk); /* returns the entry */
        return err;
    }
    s->h = h;
    s->key = *key;
    return HSMC_OK;
}

void hsmc_pk_unbind(mbedtls_pk_context *pk)
{
    if (pk != NULL)
        mbedtls_pk_free(pk); /* calls hsmc_pk_release for a bound pk */
}

int hsmc_pk_is_bound(const mbedtls_pk_context *pk)
{
    return pk != NULL && pk->pk_ctx != NULL &&
           (pk->pk_info == &hsmc_pkw_ec_info || pk->pk_info == &hsmc_pkw_rsa_info);
}

hsmc_err_t hsmc_pk_last_err(const mbedtls_pk_context *pk)
{
    if (!hsmc_pk_is_bound(pk))
        return HSMC_ERR_ARG;
    return ((const hsmc_pk_slot_t *)pk->pk_ctx)->last_err;
}

int hsmc__x509_same_public(const mbedtls_pk_context *pk, const mbedtls_pk_context *other)
{
    const hsmc_pk_slot_t *s;
    mbedtls_pk_type_t t;

    if (!hsmc_pk_is_bound(pk) || other == NULL || other->pk_info == NULL)
        return 0;
    s = (const hsmc_pk_slot_t *)pk->pk_ctx;
    t = mbedtls_pk_get_type(other);
    if (s->is_rsa) {
        const mbedtls_rsa_context *r;
        if (t != MBEDTLS_PK_RSA)
            return 0;
        r = mbedtls_pk_rsa(*other);
        return mbedtls_mpi_cmp_mpi(&s->k.rsa.N, &r->N) == 0 &&
               mbedtls_mpi_cmp_mpi(&s->k.rsa.E, &r->E) == 0;
    }
    if (t != MBEDTLS_PK_ECKEY && t != MBEDTLS_PK_ECDSA && t != MBEDTLS_PK_ECKEY_DH)
        return 0;
    return s->k.ec.grp.id == mbedtls_pk_ec(*other)->grp.id &&
           mbedtls_ecp_point_cmp(&s->k.ec.Q, &mbedtls_pk_ec(*other)->Q) == 0;
}

/* ---- Other version-dependent pieces --------------------------------------- */

int hsmc__x509_csr_set_ext(mbedtls_x509write_csr *csr, const char *oid, size_t oid_len,
                           const unsigned char *val, size_t val_len)
{
    return mbedtls_x509write_csr_set_extension(csr, oid, oid_len, val, val_len);
}

void hsmc__x509_tls12_only(mbedtls_ssl_config *conf)
{
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
}

int hsmc_token_random(void *h, unsigned char *out, size_t len)
{
    if (h == NULL || (out == NULL && len != 0))
        return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
    if (len == 0)
        return 0;
    return hsmc_random((hsmc_t *)h, out, len) == HSMC_OK
               ? 0
               : MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
}

/* Error codes are combined as -(high-level | low-level) (mbedTLS error.h). */
static hsmc_err_t hsmc_x509_map(int ret)
{
    unsigned code = (unsigned)-ret, high = code & 0xFF80u, low = code & 0x007Fu;

    if (low == (unsigned)-MBEDTLS_ERR_ASN1_BUF_TOO_SMALL ||
        high == (unsigned)-MBEDTLS_ERR_X509_BUFFER_TOO_SMALL ||
        code == (unsigned)-MBEDTLS_ERR_BASE64_BUFFER_TOO_SMALL ||
        low == (unsigned)-MBEDTLS_ERR_MPI_BUFFER_TOO_SMALL)
        return HSMC_ERR_BUFFER;
    if (high == (unsigned)-MBEDTLS_ERR_X509_ALLOC_FAILED ||
        high == (unsigned)-MBEDTLS_ERR_PK_ALLOC_FAILED ||
        high == (unsigned)-MBEDTLS_ERR_PEM_ALLOC_FAILED ||
        high == (unsigned)-MBEDTLS_ERR_SSL_ALLOC_FAILED ||
        low == (unsigned)-MBEDTLS_ERR_ASN1_ALLOC_FAILED ||
        low == (unsigned)-MBEDTLS_ERR_MPI_ALLOC_FAILED)
        return HSMC_ERR_LIMIT;
    if (high == (unsigned)-MBEDTLS_ERR_X509_SIG_MISMATCH ||
        high == (unsigned)-MBEDTLS_ERR_X509_CERT_VERIFY_FAILED ||
        high == (unsigned)-MBEDTLS_ERR_PK_SIG_LEN_MISMATCH ||
        code == (unsigned)-MBEDTLS_ERR_ECP_VERIFY_FAILED ||
        code == (unsigned)-MBEDTLS_ERR_RSA_VERIFY_FAILED)
        return HSMC_ERR_SIGNATURE;
    if (high == (unsigned)-MBEDTLS_ERR_X509_FEATURE_UNAVAILABLE ||
        high == (unsigned)-MBEDTLS_ERR_X509_UNKNOWN_OID ||
        high == (unsigned)-MBEDTLS_ERR_X509_UNKNOWN_SIG_ALG ||
        high == (unsigned)-MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE ||
        high == (unsigned)-MBEDTLS_ERR_PK_UNKNOWN_PK_ALG ||
        high == (unsigned)-MBEDTLS_ERR_PK_UNKNOWN_NAMED_CURVE ||
        code == (unsigned)-MBEDTLS_ERR_ECP_FEATURE_UNAVAILABLE)
        return HSMC_ERR_UNSUPPORTED;
    if ((high >= 0x2080u && high <= 0x2600u) || /* X509 parse errors */
        (high >= 0x1080u && high <= 0x1480u) || /* PEM */
        (high >= 0x3D00u && high <= 0x3D80u) || high == (unsigned)-MBEDTLS_ERR_PK_INVALID_PUBKEY ||
        (high == 0 && low >= 0x60u && low <= 0x68u) || /* ASN.1 */
        code == (unsigned)-MBEDTLS_ERR_BASE64_INVALID_CHARACTER)
        return HSMC_ERR_FORMAT;
    return HSMC_ERR_INTERNAL;
}

hsmc_err_t hsmc_x509_fail(hsmc_t *h, const mbedtls_pk_context *pk, int ret, const char *what)
{
    char text[96];
    hsmc_err_t err;

    if (ret >= 0)
        return HSMC_OK;
    if (hsmc_pk_is_bound(pk) && hsmc_pk_last_err(pk) != HSMC_OK)
        return hsmc_pk_last_err(pk); /* the token's failure, detail already in h */
    err = hsmc_x509_map(ret);
    if (h == NULL)
        return err;
    mbedtls_strerror(ret, text, sizeof text);
    return hsmc__fail(h, err, CKR_OK, "%s: mbedTLS -0x%04X: %s", what != NULL ? what : "mbedTLS",
                      (unsigned)-ret, text);
}

/* ---- Sizes per key algorithm -------------------------------------------- */

size_t hsmc__x509_spki_max(hsmc_key_alg_t alg)
{
    switch (alg) {
    case HSMC_ALG_P256:
        return 91;
    case HSMC_ALG_SECP256K1:
        return 88;
    case HSMC_ALG_P384:
        return 120;
    case HSMC_ALG_P521:
        return 158;
    case HSMC_ALG_RSA2048:
        return 294;
    case HSMC_ALG_RSA3072:
        return 422;
    case HSMC_ALG_RSA4096:
        return 550;
    default:
        return HSMC_X509_SPKI_CAP;
    }
}

size_t hsmc__x509_sig_max(hsmc_key_alg_t alg)
{
    switch (alg) {
    case HSMC_ALG_P256:
    case HSMC_ALG_SECP256K1:
        return 2 * (32 + 3) + 2; /* SEQUENCE of two INTEGERs, each up to n + 1 bytes */
    case HSMC_ALG_P384:
        return 2 * (48 + 3) + 2;
    case HSMC_ALG_P521:
        return 2 * (66 + 3) + 3;
    case HSMC_ALG_RSA2048:
        return 256;
    case HSMC_ALG_RSA3072:
        return 384;
    case HSMC_ALG_RSA4096:
        return 512;
    default:
        return MBEDTLS_PK_SIGNATURE_MAX_SIZE;
    }
}

hsmc_hash_t hsmc__x509_default_hash(hsmc_key_alg_t alg)
{
    switch (alg) {
    case HSMC_ALG_P384:
        return HSMC_HASH_SHA384;
    case HSMC_ALG_P521:
        return HSMC_HASH_SHA512;
    default:
        return HSMC_HASH_SHA256;
    }
}

mbedtls_md_type_t hsmc__x509_md(hsmc_hash_t hash)
{
    switch (hash) {
    case HSMC_HASH_SHA224:
        return MBEDTLS_MD_SHA224;
    case HSMC_HASH_SHA256:
        return MBEDTLS_MD_SHA256;
    case HSMC_HASH_SHA384:
        return MBEDTLS_MD_SHA384;
    case HSMC_HASH_SHA512:
        return MBEDTLS_MD_SHA512;
    default:
        return MBEDTLS_MD_NONE;
    }
}
