/*
 * Internals shared by the x509/ sources. Not installed.
 *
 * The functions named hsmc__x509_* that touch mbedTLS APIs whose form
 * changed between mbedTLS 2.28 and 3.x live in hsmc_pk_mbedtls28.c, so a
 * port to another mbedTLS is that one file.
 */
#ifndef HSMC_X509_INT_H
#define HSMC_X509_INT_H

#include <mbedtls/md.h>
#include <mbedtls/x509_csr.h>

#include "hsmc_internal.h"
#include "hsmc/x509.h"

/**
 * Check that `key` can be bound: private key of an EC (not Edwards) or RSA
 * pair, with CKA_SIGN and a public object. Detail names the key and `fn`.
 * @return HSMC_OK, HSMC_ERR_ARG, HSMC_ERR_KEY_USAGE, HSMC_ERR_UNSUPPORTED.
 */
hsmc_err_t hsmc__x509_key_check(hsmc_t *h, const char *fn, const hsmc_key_t *key);

/** The hash a key signs certificates and CSRs with by default. */
hsmc_hash_t hsmc__x509_default_hash(hsmc_key_alg_t alg);

/** mbedTLS's md type for a SHA-2 hash (MBEDTLS_MD_NONE for others). */
mbedtls_md_type_t hsmc__x509_md(hsmc_hash_t hash);

/** Upper bound of the SubjectPublicKeyInfo DER size of a key algorithm (0: unknown). */
size_t hsmc__x509_spki_max(hsmc_key_alg_t alg);

/** Upper bound of the DER signature (BIT STRING contents) of a key algorithm. */
size_t hsmc__x509_sig_max(hsmc_key_alg_t alg);

/** Add a non-critical extension to a CSR being written. @return mbedTLS code. */
int hsmc__x509_csr_set_ext(mbedtls_x509write_csr *csr, const char *oid, size_t oid_len,
                           const unsigned char *val, size_t val_len);

/** Limit conf to TLS 1.2. */
void hsmc__x509_tls12_only(mbedtls_ssl_config *conf);

/** 1 when `other` (any mbedTLS key) has the public key of the bound `pk`. */
int hsmc__x509_same_public(const mbedtls_pk_context *pk, const mbedtls_pk_context *other);

#endif /* HSMC_X509_INT_H */
