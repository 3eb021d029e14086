/*
 * TLS with a token key: a thin layer over mbedtls_ssl_config that sets the
 * things a token key changes (own certificate + bound key, ECDHE-only
 * suites because the key can sign but not decrypt or do ECDH on the host,
 * TLS 1.2) and the things people get wrong (peer verification on by
 * default, a CA chain present when verifying, the certificate matching the
 * key). Everything else stays mbedTLS's default and the caller's business.
 *
 * Random numbers: mbedTLS asks for random bytes many times per handshake
 * (client/server random, ECDHE keys, blinding). A CTR_DRBG seeded and
 * reseeded from the token RNG (hsmc_rng_t) serves them: the entropy comes
 * from the token, and a real HSM is not asked for 32 bytes a dozen times
 * per handshake. hsmc_token_random is there for single uses.
 */
#include <string.h>

#include "hsmc_x509_int.h"

/* ---- Random generator ---------------------------------------------------- */

hsmc_err_t hsmc_rng_init(hsmc_rng_t *rng, hsmc_t *h)
{
    static const unsigned char pers[] = "hsmc token-seeded CTR_DRBG";
    int ret;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (rng == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "hsmc_rng_init: rng is NULL");
    mbedtls_ctr_drbg_init(&rng->drbg);
    rng->h = h;
    hsmc__clear_err(h);
    ret = mbedtls_ctr_drbg_seed(&rng->drbg, hsmc_token_random, h, pers, sizeof pers - 1);
    if (ret != 0) {
        hsmc_err_t err = hsmc_last_err(h); /* the token's failure, if it was one */
        mbedtls_ctr_drbg_free(&rng->drbg);
        rng->h = NULL;
        if (err != HSMC_OK)
            return err;
        return hsmc_x509_fail(h, NULL, ret, "hsmc_rng_init: seeding from the token RNG");
    }
    return HSMC_OK;
}

void hsmc_rng_free(hsmc_rng_t *rng)
{
    if (rng == NULL)
        return;
    mbedtls_ctr_drbg_free(&rng->drbg);
    rng->h = NULL;
}

int hsmc_rng_random(void *rng, unsigned char *out, size_t len)
{
    if (rng == NULL)
        return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
    return mbedtls_ctr_drbg_random(&((hsmc_rng_t *)rng)->drbg, out, len);
}

/* ---- TLS configuration --------------------------------------------------- */

/* Forward-secret AEAD suites whose server authentication is a signature:
 * the only ones a signing-only token key can serve. */
static const int hsmc_tls_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

void hsmc_tls_cfg_init(hsmc_tls_cfg_t *cfg)
{
    if (cfg != NULL)
        memset(cfg, 0, sizeof *cfg);
}

static hsmc_err_t hsmc_tls_check(hsmc_t *h, const char *fn, const hsmc_tls_cfg_t *cfg)
{
    if (cfg == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: cfg is NULL", fn);
    if (cfg->endpoint != MBEDTLS_SSL_IS_CLIENT && cfg->endpoint != MBEDTLS_SSL_IS_SERVER)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: endpoint must be MBEDTLS_SSL_IS_CLIENT or MBEDTLS_SSL_IS_SERVER",
                          fn);
    if (cfg->verify != HSMC_TLS_VERIFY_REQUIRED && cfg->verify != HSMC_TLS_VERIFY_OPTIONAL &&
        cfg->verify != HSMC_TLS_VERIFY_NONE)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: unknown verify mode %d", fn,
                          (int)cfg->verify);
    if (cfg->rng == NULL || cfg->rng->h == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: rng is missing or not seeded (hsmc_rng_init)", fn);
    if (cfg->endpoint == MBEDTLS_SSL_IS_SERVER && cfg->key == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: a server needs a key and its chain", fn);
    if ((cfg->key == NULL) != (cfg->chain == NULL))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: give both the key and its certificate chain, or neither", fn);
    if (cfg->key != NULL && !hsmc_pk_is_bound(cfg->key))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: the key is not bound to a token key (hsmc_pk_bind)", fn);
    if (cfg->key != NULL && (cfg->chain->raw.p == NULL || cfg->chain->raw.len == 0))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: the certificate chain is empty (mbedtls_x509_crt_parse first)",
                          fn);
    if (cfg->key != NULL && !hsmc__x509_same_public(cfg->key, &cfg->chain->pk))
        return hsmc__fail(h, HSMC_ERR_KEY_USAGE, CKR_OK,
                          "%s: the chain's first certificate is not for this key (its public "
                          "key differs): put the key's own certificate first",
                          fn);
    if (cfg->verify != HSMC_TLS_VERIFY_NONE && (cfg->ca == NULL || cfg->ca->raw.p == NULL))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: verifying the peer needs trust anchors (ca), or say "
                          "HSMC_TLS_VERIFY_NONE explicitly",
                          fn);
    return HSMC_OK;
}

hsmc_err_t hsmc_tls_setup(hsmc_t *h, mbedtls_ssl_config *conf, const hsmc_tls_cfg_t *cfg)
{
    static const char fn[] = "hsmc_tls_setup";
    hsmc_err_t err;
    int ret;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (conf == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: conf is NULL", fn);
    err = hsmc_tls_check(h, fn, cfg);
    if (err != HSMC_OK)
        return err;
    ret = mbedtls_ssl_config_defaults(conf, cfg->endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                                      MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0)
        return hsmc__fail(h, HSMC_ERR_INTERNAL, CKR_OK, "%s: mbedtls_ssl_config_defaults: -0x%04X",
                          fn, (unsigned)-ret);
    hsmc__x509_tls12_only(conf);
    mbedtls_ssl_conf_ciphersuites(conf, hsmc_tls_suites);
    mbedtls_ssl_conf_rng(conf, hsmc_rng_random, cfg->rng);
    mbedtls_ssl_conf_authmode(conf, cfg->verify == HSMC_TLS_VERIFY_REQUIRED
                                        ? MBEDTLS_SSL_VERIFY_REQUIRED
                                    : cfg->verify == HSMC_TLS_VERIFY_OPTIONAL
                                        ? MBEDTLS_SSL_VERIFY_OPTIONAL
                                        : MBEDTLS_SSL_VERIFY_NONE);
    if (cfg->ca != NULL)
        mbedtls_ssl_conf_ca_chain(conf, cfg->ca, NULL);
    if (cfg->key != NULL) {
        ret = mbedtls_ssl_conf_own_cert(conf, cfg->chain, cfg->key);
        if (ret != 0)
            return hsmc_x509_fail(h, NULL, ret, "mbedtls_ssl_conf_own_cert");
    }
    return HSMC_OK;
}
