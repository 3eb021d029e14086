/*
 * DER pieces of key management, shared by hsmc_key.c and hsmc_key_der.c,
 * and the public-key attribute read x509/ uses. Not installed.
 *
 * Import works in place: the components of a software private key are
 * located inside the caller's DER and handed to C_CreateObject from there,
 * so no buffer of key size (RSA-4096: over 2 KiB of components) is needed.
 * mbedTLS validates the key first and computes an EC public point when the
 * DER lacks it.
 */
#ifndef HSMC_KEY_DER_H
#define HSMC_KEY_DER_H

#include "hsmc_internal.h"

/* ASN.1 tags used here. */
#define HSMC_DER_INTEGER 0x02u
#define HSMC_DER_BIT_STRING 0x03u
#define HSMC_DER_OCTET_STRING 0x04u
#define HSMC_DER_NULL 0x05u
#define HSMC_DER_OID 0x06u
#define HSMC_DER_SEQUENCE 0x30u

/* Indexes of hsmc_der_key_t.part. */
enum {
    HSMC_DER_RSA_N = 0, /* modulus */
    HSMC_DER_RSA_E,     /* public exponent */
    HSMC_DER_RSA_D,     /* private exponent */
    HSMC_DER_RSA_P,     /* prime 1 */
    HSMC_DER_RSA_Q,     /* prime 2 */
    HSMC_DER_RSA_DP,    /* exponent 1 */
    HSMC_DER_RSA_DQ,    /* exponent 2 */
    HSMC_DER_RSA_QINV,  /* coefficient */
    HSMC_DER_RSA_PARTS,
    HSMC_DER_EC_D = 0,  /* private value */
    HSMC_DER_EC_POINT = 1 /* public point (raw X9.62), absent when NULL */
};

/** A software private key located inside the caller's DER. */
typedef struct hsmc_der_key {
    hsmc_key_alg_t alg;                       /* what the DER holds */
    const uint8_t *part[HSMC_DER_RSA_PARTS];  /* big-endian values, leading zeros stripped */
    size_t part_len[HSMC_DER_RSA_PARTS];
} hsmc_der_key_t;

/**
 * Validate a DER private key (PKCS#8, SEC1 or PKCS#1; RSA 2048/3072/4096,
 * P-256/384/521, secp256k1) with mbedTLS and locate its components in
 * `der`. @return HSMC_OK, HSMC_ERR_FORMAT (not a DER key mbedTLS accepts,
 * or an encoding hsmc cannot walk), HSMC_ERR_UNSUPPORTED (another key type
 * or size, or no mbedTLS key parsing in this build); detail set in h.
 */
hsmc_err_t hsmc__der_parse_key(hsmc_t *h, const uint8_t *der, size_t len, hsmc_der_key_t *k);

/**
 * The uncompressed public point of the EC private key in `der`, computed
 * by mbedTLS (for DER that carries no public key). @return HSMC_OK,
 * HSMC_ERR_FORMAT, HSMC_ERR_BUFFER, HSMC_ERR_UNSUPPORTED.
 */
hsmc_err_t hsmc__der_ec_point(hsmc_t *h, const uint8_t *der, size_t len, uint8_t *out,
                              size_t cap, size_t *out_len);

/** Bytes of a DER header (tag and length) for `len` content bytes. */
size_t hsmc__der_hdr_len(size_t len);

/** Bytes of a whole DER element with `len` content bytes. */
#define HSMC_DER_TLV_LEN(len) (hsmc__der_hdr_len(len) + (len))

/** Write a DER header at p. @return bytes written. */
size_t hsmc__der_put_hdr(uint8_t *p, unsigned tag, size_t len);

/**
 * Read one attribute (CKA_MODULUS, CKA_PUBLIC_EXPONENT, ...; `name` for
 * messages) of the public object of `key` into buf; buf NULL asks for its
 * size. Runs as a unit of
 * work (recovers a lost session). For x509's mbedTLS binding, which reads
 * an RSA modulus straight into the storage of its mbedTLS big number
 * instead of going through a SubjectPublicKeyInfo buffer.
 * @return HSMC_OK (*len set); HSMC_ERR_BUFFER (cap too small);
 *   HSMC_ERR_UNSUPPORTED (the object has no readable such attribute);
 *   HSMC_ERR_OBJECT_NOT_FOUND; session and token errors; detail set in h.
 */
hsmc_err_t hsmc__key_pub_attr(hsmc_t *h, const hsmc_key_t *key, CK_ATTRIBUTE_TYPE type,
                              const char *name, uint8_t *buf, size_t cap, size_t *len);

#endif /* HSMC_KEY_DER_H */
