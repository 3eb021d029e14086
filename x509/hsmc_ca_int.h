/*
 * Internals shared by the CA sources (hsmc_ca.c, hsmc_policy.c,
 * hsmc_crl.c, hsmc_certstore.c). Not installed.
 */
#ifndef HSMC_CA_INT_H
#define HSMC_CA_INT_H

#include <mbedtls/md.h>

#include "hsmc_internal.h"
#include "hsmc/ca.h"

/* Backward DER writer with a sticky error (checked once at the end):
 * fields are written last to first, each ending where the previous began. */
typedef struct hsmc_dw {
    uint8_t *start; /* lowest byte the writer may use */
    uint8_t *p;     /* first byte written so far */
    uint8_t *end;   /* one past the last byte */
    int err;        /* 1 once anything did not fit */
} hsmc_dw_t;

void hsmc__dw_init(hsmc_dw_t *w, uint8_t *buf, size_t cap);
/** Prepend raw bytes. */
void hsmc__dw_raw(hsmc_dw_t *w, const void *data, size_t len);
/** Prepend tag and length for the `len` bytes that follow. */
void hsmc__dw_hdr(hsmc_dw_t *w, uint8_t tag, size_t len);
/** Prepend the header of everything written since `mark` (an earlier w->p). */
void hsmc__dw_wrap(hsmc_dw_t *w, const uint8_t *mark, uint8_t tag);
/** Prepend a DER INTEGER from an unsigned big-endian magnitude. */
void hsmc__dw_uint(hsmc_dw_t *w, const uint8_t *mag, size_t len);
/** Prepend an OBJECT IDENTIFIER (content bytes). */
void hsmc__dw_oid(hsmc_dw_t *w, const char *oid, size_t len);
/** Prepend UTCTime (before 2050) or GeneralizedTime. */
void hsmc__dw_time(hsmc_dw_t *w, int64_t t);
/** Prepend an Extension { extnID, critical, OCTET STRING { value written since mark } }. */
void hsmc__dw_ext(hsmc_dw_t *w, const uint8_t *mark, const char *oid, size_t oid_len,
                  int critical);
/** Bytes written so far. */
#define HSMC_DW_LEN(w) ((size_t)((w)->end - (w)->p))

/** Calendar time <-> seconds since 1970 (UTC, proleptic Gregorian). */
int64_t hsmc__ca_epoch(int year, int mon, int day, int hour, int min, int sec);
void hsmc__ca_civil(int64_t t, int *year, int *mon, int *day, int *hour, int *min, int *sec);
/** Current time from the port clock, or HSMC_ERR_PORT (detail set) when unset. */
hsmc_err_t hsmc__ca_now(hsmc_t *h, int64_t *now);

/** Hash and signature algorithm the CA key signs with. */
hsmc_err_t hsmc__ca_sig_alg(hsmc_ca_t *ca, mbedtls_md_type_t *md, const char **oid,
                            size_t *oid_len);

/**
 * Sign the TBS that occupies the last tbs_len bytes of buf[0..cap) with
 * the CA key, and rebuild buf from its start as
 * SEQUENCE { TBS, AlgorithmIdentifier, BIT STRING signature }.
 * @return HSMC_OK (*out_len set), HSMC_ERR_BUFFER, signing errors.
 */
hsmc_err_t hsmc__ca_sign_wrap(hsmc_ca_t *ca, uint8_t *buf, size_t cap, size_t tbs_len,
                              size_t *out_len);

/** Prepend AlgorithmIdentifier (no parameters for ECDSA, NULL for RSA). */
void hsmc__dw_alg(hsmc_dw_t *w, const char *oid, size_t oid_len, int rsa);

/** Upper bound of the signature algorithm + signature the CA key adds. */
size_t hsmc__ca_sig_bound(const hsmc_ca_t *ca);

/** SHA-1 of the subjectPublicKey bits of an SPKI (RFC 5280 4.2.1.2 method 1). */
hsmc_err_t hsmc__ca_key_id(const uint8_t *spki, size_t len, uint8_t id[20]);

/* ---- Policy (hsmc_policy.c) --------------------------------------------- */

/** Check a CSR's names against a profile's rules (HSMC_ERR_POLICY with the rule). */
hsmc_err_t hsmc__policy_names(hsmc_t *h, const hsmc_name_rules_t *rules, hsmc_profile_t profile,
                              const mbedtls_x509_name *subject, const uint8_t *san,
                              size_t san_len);

/** Emit an audit record for a CA operation (no-op without a callback). */
void hsmc__policy_audit(const hsmc_ca_t *ca, hsmc_ca_op_t op, hsmc_profile_t profile,
                        const uint8_t *serial, size_t serial_len, const uint8_t *subject,
                        size_t subject_len, hsmc_err_t result);

#endif /* HSMC_CA_INT_H */
