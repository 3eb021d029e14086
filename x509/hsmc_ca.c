/*
 * Certificate issuance with the CA key in the token.
 *
 * The TBSCertificate is written here with a backward DER writer rather
 * than by mbedtls_x509write_crt: mbedTLS 2.28 puts a NULL parameter into
 * ECDSA AlgorithmIdentifiers (RFC 5758 says omit it), re-encodes names
 * from strings (the issuer must be the CA's subject byte for byte), and
 * its writer keeps 1-2 KB on the stack. The output buffer doubles as
 * scratch: the TBS is written at its end, signed, and moved into place.
 */
#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/sha1.h>
#include <stdio.h>

#include "hsmc_ca_int.h"
#include "hsmc_port.h"
#include "hsmc/x509.h"

/* ---- Backward DER writer ------------------------------------------------- */

void hsmc__dw_init(hsmc_dw_t *w, uint8_t *buf, size_t cap)
{
    w->start = buf;
    w->end = buf + cap;
    w->p = w->end;
    w->err = 0;
}

void hsmc__dw_raw(hsmc_dw_t *w, const void *data, size_t len)
{
    if (w->err)
        return;
    if ((size_t)(w->p - w->start) < len) {
        w->err = 1;
        return;
    }
    w->p -= len;
    if (len > 0)
        memmove(w->p, data, len); /* data may lie in the same buffer */
}

void hsmc__dw_hdr(hsmc_dw_t *w, uint8_t tag, size_t len)
{
    uint8_t b[2 + sizeof(size_t)]; /* tag, 0x80|count, up to every byte of len */
    size_t n = 0, i;

    if (len < 0x80) {
        b[n++] = tag;
        b[n++] = (uint8_t)len;
    } else {
        size_t bytes = 1;
        while (bytes < sizeof len && (len >> (8 * bytes)) != 0)
            bytes++;
        b[n++] = tag;
        b[n++] = (uint8_t)(0x80u | bytes);
        for (i = bytes; i > 0; i--)
            b[n++] = (uint8_t)(len >> (8 * (i - 1)));
    }
    hsmc__dw_raw(w, b, n);
}

void hsmc__dw_wrap(hsmc_dw_t *w, const uint8_t *mark, uint8_t tag)
{
    if (!w->err)
        hsmc__dw_hdr(w, tag, (size_t)(mark - w->p));
}

void hsmc__dw_uint(hsmc_dw_t *w, const uint8_t *mag, size_t len)
{
    static const uint8_t zero = 0;
    uint8_t *mark = w->p;

    while (len > 1 && mag[0] == 0) {
        mag++;
        len--;
    }
    if (len == 0) {
        mag = &zero;
        len = 1;
    }
    hsmc__dw_raw(w, mag, len);
    if (mag[0] & 0x80u)
        hsmc__dw_raw(w, &zero, 1); /* keep it positive */
    hsmc__dw_wrap(w, mark, MBEDTLS_ASN1_INTEGER);
}

void hsmc__dw_oid(hsmc_dw_t *w, const char *oid, size_t len)
{
    hsmc__dw_raw(w, oid, len);
    hsmc__dw_hdr(w, MBEDTLS_ASN1_OID, len);
}

void hsmc__dw_time(hsmc_dw_t *w, int64_t t)
{
    char s[16];
    int y, mo, d, hh, mi, ss;

    hsmc__ca_civil(t, &y, &mo, &d, &hh, &mi, &ss);
    if (y >= 1950 && y < 2050) {
        (void)snprintf(s, sizeof s, "%02d%02d%02d%02d%02d%02dZ", y % 100, mo, d, hh, mi, ss);
        hsmc__dw_raw(w, s, 13);
        hsmc__dw_hdr(w, MBEDTLS_ASN1_UTC_TIME, 13);
    } else if (y >= 0 && y <= 9999) {
        (void)snprintf(s, sizeof s, "%04d%02d%02d%02d%02d%02dZ", y, mo, d, hh, mi, ss);
        hsmc__dw_raw(w, s, 15);
        hsmc__dw_hdr(w, MBEDTLS_ASN1_GENERALIZED_TIME, 15);
    } else {
        w->err = 1;
    }
}

void hsmc__dw_ext(hsmc_dw_t *w, const uint8_t *mark, const char *oid, size_t oid_len,
                  int critical)
{
    static const uint8_t crit[3] = {MBEDTLS_ASN1_BOOLEAN, 1, 0xFF};

    hsmc__dw_wrap(w, mark, MBEDTLS_ASN1_OCTET_STRING);
    if (critical)
        hsmc__dw_raw(w, crit, sizeof crit);
    hsmc__dw_oid(w, oid, oid_len);
    hsmc__dw_wrap(w, mark, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
}

void hsmc__dw_alg(hsmc_dw_t *w, const char *oid, size_t oid_len, int rsa)
{
    static const uint8_t null[2] = {MBEDTLS_ASN1_NULL, 0};
    uint8_t *mark = w->p;

    if (rsa)
        hsmc__dw_raw(w, null, sizeof null); /* RFC 4055: NULL for PKCS#1 v1.5 */
    hsmc__dw_oid(w, oid, oid_len);
    hsmc__dw_wrap(w, mark, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
}

/* ---- Time ------------------------------------------------------------------ */

/* Days between 1970-01-01 and a date, by the era (400-year cycle) method. */
int64_t hsmc__ca_epoch(int year, int mon, int day, int hour, int min, int sec)
{
    int64_t y = (int64_t)year - (mon <= 2 ? 1 : 0);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (int64_t)(mon > 2 ? mon - 3 : mon + 9) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;

    return days * 86400 + (int64_t)hour * 3600 + (int64_t)min * 60 + sec;
}

void hsmc__ca_civil(int64_t t, int *year, int *mon, int *day, int *hour, int *min, int *sec)
{
    int64_t days = t / 86400, rem = t % 86400;
    int64_t z, era, doe, yoe, doy, mp, y;

    if (rem < 0) {
        rem += 86400;
        days--;
    }
    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *mon = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(y + (*mon <= 2 ? 1 : 0));
    *hour = (int)(rem / 3600);
    *min = (int)(rem % 3600 / 60);
    *sec = (int)(rem % 60);
}

hsmc_err_t hsmc__ca_now(hsmc_t *h, int64_t *now)
{
    *now = hsmc_port_time();
    if (*now < 0)
        return hsmc__fail(h, HSMC_ERR_PORT, CKR_OK,
                          "the clock is not set; give the validity start explicitly");
    return HSMC_OK;
}

static int64_t hsmc_ca_x509_epoch(const mbedtls_x509_time *t)
{
    return hsmc__ca_epoch(t->year, t->mon, t->day, t->hour, t->min, t->sec);
}

/* ---- Profiles --------------------------------------------------------------- */

static const char *const hsmc_profile_names[HSMC_PROFILE_COUNT] = {
    "?", "ca_root", "ca_intermediate", "mtls_server", "mtls_client", "signing"};

const char *hsmc_profile_name(hsmc_profile_t profile)
{
    if ((int)profile <= 0 || profile >= HSMC_PROFILE_COUNT)
        return "?";
    return hsmc_profile_names[profile];
}

hsmc_err_t hsmc_profile_parse(const char *name, hsmc_profile_t *profile)
{
    int i;

    if (name == NULL || profile == NULL)
        return HSMC_ERR_ARG;
    for (i = 1; i < (int)HSMC_PROFILE_COUNT; i++) {
        if (strcmp(name, hsmc_profile_names[i]) == 0) {
            *profile = (hsmc_profile_t)i;
            return HSMC_OK;
        }
    }
    return HSMC_ERR_ARG;
}

static int hsmc_profile_is_ca(hsmc_profile_t p)
{
    return p == HSMC_PROFILE_CA_ROOT || p == HSMC_PROFILE_CA_INTERMEDIATE;
}

/* ---- Keys and signatures --------------------------------------------------- */

hsmc_err_t hsmc__ca_key_id(const uint8_t *spki, size_t len, uint8_t id[20])
{
    unsigned char *p = (unsigned char *)(uintptr_t)spki;
    const unsigned char *end = spki + len;
    size_t n;

    /* SEQUENCE { AlgorithmIdentifier, BIT STRING } */
    if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return HSMC_ERR_FORMAT;
    end = p + n;
    if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return HSMC_ERR_FORMAT;
    p += n;
    if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_BIT_STRING) != 0 || n < 2 || p[0] != 0)
        return HSMC_ERR_FORMAT;
    if (mbedtls_sha1_ret(p + 1, n - 1, id) != 0)
        return HSMC_ERR_INTERNAL;
    return HSMC_OK;
}

hsmc_err_t hsmc__ca_sig_alg(hsmc_ca_t *ca, mbedtls_md_type_t *md, const char **oid,
                            size_t *oid_len)
{
    mbedtls_pk_type_t kind;
    size_t bits = mbedtls_pk_get_bitlen(&ca->pk);

    if (mbedtls_pk_can_do(&ca->pk, MBEDTLS_PK_RSA)) {
        kind = MBEDTLS_PK_RSA;
        *md = MBEDTLS_MD_SHA256;
    } else if (mbedtls_pk_can_do(&ca->pk, MBEDTLS_PK_ECDSA)) {
        kind = MBEDTLS_PK_ECDSA;
        *md = bits > 384 ? MBEDTLS_MD_SHA512 : bits > 256 ? MBEDTLS_MD_SHA384 : MBEDTLS_MD_SHA256;
    } else {
        return hsmc__fail(ca->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "CA key '%s' is neither RSA nor EC", ca->key.priv.label);
    }
    if (mbedtls_oid_get_oid_by_sig_alg(kind, *md, oid, oid_len) != 0)
        return hsmc__fail(ca->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "this mbedTLS build has no OID for the CA signature algorithm");
    return HSMC_OK;
}

size_t hsmc__ca_sig_bound(const hsmc_ca_t *ca)
{
    size_t bytes = (mbedtls_pk_get_bitlen(&ca->pk) + 7) / 8;
    /* AlgorithmIdentifier <= 16, BIT STRING header 5, ECDSA-Sig-Value 2n+9 */
    return 16 + 5 + 2 * bytes + 12;
}

hsmc_err_t hsmc__ca_sign_wrap(hsmc_ca_t *ca, uint8_t *buf, size_t cap, size_t tbs_len,
                              size_t *out_len)
{
    unsigned char hash[MBEDTLS_MD_MAX_SIZE];
    mbedtls_md_type_t md;
    const char *oid;
    size_t oid_len, sig_len = 0, tail, body, hdr;
    hsmc_dw_t w;
    hsmc_err_t err;
    int ret;
    static const uint8_t unused = 0;

    err = hsmc__ca_sig_alg(ca, &md, &oid, &oid_len);
    if (err != HSMC_OK)
        return err;
    ret = mbedtls_md(mbedtls_md_info_from_type(md), buf + cap - tbs_len, tbs_len, hash);
    if (ret != 0)
        return hsmc_x509_fail(ca->h, NULL, ret, "hashing the TBS");
    ret = mbedtls_pk_sign(&ca->pk, md, hash, 0, ca->sig, &sig_len, hsmc_token_random, ca->h);
    if (ret != 0)
        return hsmc_x509_fail(ca->h, &ca->pk, ret, "signing with the CA key");
    if (sig_len > sizeof ca->sig)
        return hsmc__fail(ca->h, HSMC_ERR_INTERNAL, CKR_OK, "signature overran its buffer");

    /* TBS to the front, signature parts behind it, then the outer header. */
    memmove(buf, buf + cap - tbs_len, tbs_len);
    hsmc__dw_init(&w, buf + tbs_len, cap - tbs_len);
    hsmc__dw_raw(&w, ca->sig, sig_len);
    hsmc__dw_raw(&w, &unused, 1);
    hsmc__dw_hdr(&w, MBEDTLS_ASN1_BIT_STRING, sig_len + 1);
    hsmc__dw_alg(&w, oid, oid_len, mbedtls_pk_can_do(&ca->pk, MBEDTLS_PK_RSA));
    if (w.err)
        return hsmc__fail(ca->h, HSMC_ERR_BUFFER, CKR_OK, "output buffer too small for the signature");
    tail = HSMC_DW_LEN(&w);
    body = tbs_len + tail;
    hdr = body < 0x80 ? 2 : body < 0x100 ? 3 : body < 0x10000 ? 4 : 5;
    if (hdr + body > cap)
        return hsmc__fail(ca->h, HSMC_ERR_BUFFER, CKR_OK, "output buffer too small for the signature");
    memmove(buf + hdr + tbs_len, w.p, tail);
    memmove(buf + hdr, buf, tbs_len);
    hsmc__dw_init(&w, buf, hdr);
    hsmc__dw_hdr(&w, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE, body);
    if (w.err || w.p != buf)
        return hsmc__fail(ca->h, HSMC_ERR_INTERNAL, CKR_OK, "certificate header size mismatch");
    *out_len = hdr + body;
    hsmc__wipe(hash, sizeof hash);
    return HSMC_OK;
}

/* ---- The CA context ------------------------------------------------------- */

void hsmc_ca_init(hsmc_ca_t *ca)
{
    if (ca == NULL)
        return;
    memset(ca, 0, sizeof *ca);
    mbedtls_pk_init(&ca->pk);
    mbedtls_x509_crt_init(&ca->chain);
    mbedtls_x509_csr_init(&ca->csr);
}

void hsmc_ca_free(hsmc_ca_t *ca)
{
    if (ca == NULL)
        return;
    if (ca->bound)
        hsmc_pk_unbind(&ca->pk);
    else
        mbedtls_pk_free(&ca->pk);
    mbedtls_x509_crt_free(&ca->chain);
    mbedtls_x509_csr_free(&ca->csr);
    hsmc__wipe(ca, sizeof *ca);
    hsmc_ca_init(ca);
}

/* Find the subjectKeyIdentifier in a parsed certificate's extensions. */
static int hsmc_ca_find_ski(const mbedtls_x509_crt *crt, uint8_t *ski, size_t cap, size_t *len)
{
    unsigned char *p = crt->v3_ext.p;
    const unsigned char *end;
    size_t n, seq;
    mbedtls_x509_buf oid;

    if (p == NULL || crt->v3_ext.len == 0)
        return 0;
    end = p + crt->v3_ext.len;
    if (mbedtls_asn1_get_tag(&p, end, &seq, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return 0;
    end = p + seq;
    while (p < end) {
        const unsigned char *ext_end;
        if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
            return 0;
        ext_end = p + n;
        if (mbedtls_asn1_get_tag(&p, ext_end, &oid.len, MBEDTLS_ASN1_OID) != 0)
            return 0;
        oid.p = p;
        p += oid.len;
        if (p < ext_end && *p == MBEDTLS_ASN1_BOOLEAN) {
            int crit;
            if (mbedtls_asn1_get_bool(&p, ext_end, &crit) != 0)
                return 0;
        }
        if (mbedtls_asn1_get_tag(&p, ext_end, &n, MBEDTLS_ASN1_OCTET_STRING) != 0)
            return 0;
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_SUBJECT_KEY_IDENTIFIER, &oid) == 0) {
            if (mbedtls_asn1_get_tag(&p, ext_end, &n, MBEDTLS_ASN1_OCTET_STRING) != 0 ||
                n == 0 || n > cap)
                return 0;
            memcpy(ski, p, n);
            *len = n;
            return 1;
        }
        p = (unsigned char *)(uintptr_t)ext_end;
    }
    return 0;
}

/* Parse DER certificates (concatenated) into ca->chain and check the first. */
HSMC_NOINLINE static hsmc_err_t hsmc_ca_load_chain(hsmc_ca_t *ca, const uint8_t *der, size_t len)
{
    const mbedtls_x509_crt *c, *last;
    size_t off = 0, n;
    unsigned count = 0;
    hsmc_err_t err;
    int ret;

    while (off < len) {
        if (++count > 8)
            return hsmc__fail(ca->h, HSMC_ERR_LIMIT, CKR_OK,
                              "more than 8 certificates in the CA chain");
        ret = mbedtls_x509_crt_parse_der(&ca->chain, der + off, len - off);
        if (ret != 0)
            return hsmc__fail(ca->h, HSMC_ERR_FORMAT, CKR_OK,
                              "CA certificate %u is not a valid X.509 DER certificate "
                              "(mbedTLS -0x%04x)",
                              count, (unsigned)-ret);
        for (last = &ca->chain; last->next != NULL; last = last->next)
            ;
        off += last->raw.len;
    }
    c = &ca->chain;
    if (!c->ca_istrue ||
        ((c->ext_types & MBEDTLS_X509_EXT_KEY_USAGE) && !(c->key_usage & MBEDTLS_X509_KU_KEY_CERT_SIGN)))
        return hsmc__fail(ca->h, HSMC_ERR_POLICY, CKR_OK,
                          "issuer-not-ca: the certificate given for CA key '%s' is not a CA "
                          "certificate (cA=TRUE with keyCertSign)",
                          ca->key.priv.label);
    err = hsmc_key_export_pub(ca->h, &ca->key, ca->spki, sizeof ca->spki, &n);
    if (err != HSMC_OK)
        return err;
    if (n != c->pk_raw.len || memcmp(ca->spki, c->pk_raw.p, n) != 0)
        return hsmc__fail(ca->h, HSMC_ERR_CERT_KEY, CKR_OK,
                          "the CA certificate's public key is not the one of key '%s'",
                          ca->key.priv.label);
    if (!hsmc_ca_find_ski(c, ca->ski, sizeof ca->ski, &ca->ski_len)) {
        err = hsmc__ca_key_id(ca->spki, n, ca->ski);
        if (err != HSMC_OK)
            return hsmc__fail(ca->h, err, CKR_OK, "cannot derive the CA key identifier");
        ca->ski_len = 20;
    }
    ca->not_after = hsmc_ca_x509_epoch(&c->valid_to);
    ca->is_root = c->subject_raw.len == c->issuer_raw.len &&
                  memcmp(c->subject_raw.p, c->issuer_raw.p, c->subject_raw.len) == 0;
    ca->has_cert = 1;
    return HSMC_OK;
}

hsmc_err_t hsmc_ca_open(hsmc_ca_t *ca, hsmc_t *h, const hsmc_key_t *key, const uint8_t *chain,
                        size_t chain_len, const hsmc_ca_policy_t *policy)
{
    hsmc_err_t err;

    if (ca == NULL || h == NULL)
        return HSMC_ERR_ARG;
    if (key == NULL || policy == NULL || (chain == NULL && chain_len != 0) ||
        (chain != NULL && chain_len == 0))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "hsmc_ca_open needs a key, a policy and a chain (or none for a new root)");
    if (ca->h != NULL)
        return hsmc__fail(h, HSMC_ERR_STATE, CKR_OK, "CA context already open");
    ca->h = h;
    ca->policy = policy;
    ca->key = *key;
    err = hsmc_pk_bind(h, key, &ca->pk);
    if (err != HSMC_OK) {
        hsmc_ca_free(ca);
        return err;
    }
    ca->bound = 1;
    if (chain != NULL) {
        err = hsmc_ca_load_chain(ca, chain, chain_len);
        if (err != HSMC_OK) {
            hsmc_ca_free(ca);
            return err;
        }
    } else {
        ca->is_root = 1;
    }
    return HSMC_OK;
}

hsmc_err_t hsmc_ca_cert(const hsmc_ca_t *ca, const uint8_t **der, size_t *len)
{
    if (ca == NULL || der == NULL || len == NULL)
        return HSMC_ERR_ARG;
    if (!ca->has_cert)
        return HSMC_ERR_STATE;
    *der = ca->chain.raw.p;
    *len = ca->chain.raw.len;
    return HSMC_OK;
}

/* After a ca_root issuance the new root becomes the context's certificate. */
static hsmc_err_t hsmc_ca_adopt(hsmc_ca_t *ca, const uint8_t *der, size_t len)
{
    mbedtls_x509_crt_free(&ca->chain);
    mbedtls_x509_crt_init(&ca->chain);
    ca->has_cert = 0;
    return hsmc_ca_load_chain(ca, der, len);
}

/* ---- PEM ------------------------------------------------------------------- */

static int hsmc_ca_is_pem(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    return len - i >= 11 && memcmp(p + i, "-----BEGIN ", 11) == 0;
}

/* Position of `needle` in hay[0..len), or len. */
static size_t hsmc_ca_find(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle), i;
    for (i = 0; n <= len && i <= len - n; i++) {
        if (memcmp(hay + i, needle, n) == 0)
            return i;
    }
    return len;
}

hsmc_err_t hsmc_ca_pem_to_der(const char *label, const char *pem, size_t len, uint8_t *der,
                              size_t cap, size_t *der_len)
{
    char begin[48], end[48];
    size_t off = 0, total = 0, n, b, e;
    unsigned blocks = 0;
    int fits = der != NULL;
    hsmc_err_t err;

    if (label == NULL || pem == NULL || der_len == NULL || strlen(label) > 30)
        return HSMC_ERR_ARG;
    (void)snprintf(begin, sizeof begin, "-----BEGIN %s-----", label);
    (void)snprintf(end, sizeof end, "-----END %s-----", label);
    for (;;) {
        b = hsmc_ca_find(pem + off, len - off, begin);
        if (b == len - off)
            break;
        b += off;
        e = hsmc_ca_find(pem + b, len - b, end);
        if (e == len - b)
            return HSMC_ERR_FORMAT; /* BEGIN without END: truncated */
        e += b + strlen(end);
        n = 0;
        err = hsmc_pem_read(label, pem + b, e - b, fits ? der + total : NULL,
                            fits ? cap - total : 0, &n);
        if (err == HSMC_ERR_BUFFER && fits) {
            fits = 0; /* n has the size; count the rest for the caller's next try */
            err = HSMC_OK;
        }
        if (err != HSMC_OK)
            return err;
        total += n;
        blocks++;
        off = e;
    }
    *der_len = total;
    if (blocks == 0)
        return HSMC_ERR_FORMAT;
    return der != NULL && !fits ? HSMC_ERR_BUFFER : HSMC_OK;
}

hsmc_err_t hsmc_ca_chain_pem(const hsmc_ca_t *ca, const uint8_t *leaf, size_t leaf_len,
                             char *out, size_t cap, size_t *out_len)
{
    const mbedtls_x509_crt *c;
    size_t total = 0, n;
    int fits = out != NULL;
    hsmc_err_t err;

    if (ca == NULL || leaf == NULL || leaf_len == 0 || out_len == NULL)
        return HSMC_ERR_ARG;
    if (!ca->has_cert)
        return HSMC_ERR_STATE;
    err = hsmc_pem_write("CERTIFICATE", leaf, leaf_len, fits ? out : NULL, fits ? cap : 0, &n);
    if (err == HSMC_ERR_BUFFER)
        fits = 0;
    else if (err != HSMC_OK)
        return err;
    total = n;
    for (c = &ca->chain; c != NULL && c->raw.p != NULL; c = c->next) {
        if (c->subject_raw.len == c->issuer_raw.len &&
            memcmp(c->subject_raw.p, c->issuer_raw.p, c->subject_raw.len) == 0)
            continue; /* self-signed: the relying party has it */
        err = hsmc_pem_write("CERTIFICATE", c->raw.p, c->raw.len, fits ? out + total : NULL,
                             fits ? cap - total : 0, &n);
        if (err == HSMC_ERR_BUFFER)
            fits = 0;
        else if (err != HSMC_OK)
            return err;
        total += n;
    }
    *out_len = total;
    if (out != NULL && !fits)
        return HSMC_ERR_BUFFER;
    return HSMC_OK;
}

/* ---- Issuance --------------------------------------------------------------- */

/* State of one issuance, passed between the steps. */
typedef struct hsmc_iss {
    const hsmc_issue_req_t *req;
    const hsmc_profile_rules_t *rules;
    hsmc_profile_t profile;
    int self;                   /* self-signed (ca_root) */
    const uint8_t *subject;     /* Name DER, or NULL: written from req->subject */
    size_t subject_len;
    const uint8_t *san;         /* GeneralNames DER from the CSR, or NULL */
    size_t san_len;
    size_t spki_len;            /* subject key, in ca->spki */
    uint8_t ski[20];
    int path_len;
    int64_t nb, na;
    int has_serial;
    unsigned asked;             /* CA powers the CSR asked for (HSMC_KU_*-like bits below) */
} hsmc_iss_t;

#define HSMC_ASK_CA 0x1u
#define HSMC_ASK_CERT_SIGN 0x2u
#define HSMC_ASK_CRL_SIGN 0x4u

/* 1 when a CSR that mbedTLS refused has an empty subject (which mbedTLS
 * 2.28 cannot parse), so the refusal can say so. */
static int hsmc_ca_empty_subject(const uint8_t *der, size_t len)
{
    unsigned char *p = (unsigned char *)(uintptr_t)der;
    const unsigned char *end = der + len;
    size_t n;
    int v;

    return mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) == 0 &&
           mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) == 0 &&
           mbedtls_asn1_get_int(&p, end, &v) == 0 && end - p >= 2 &&
           p[0] == (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) && p[1] == 0;
}

/* Decode (PEM or DER) and parse the CSR into ca->csr. buf is scratch for PEM. */
HSMC_NOINLINE static hsmc_err_t hsmc_ca_csr_parse(hsmc_ca_t *ca, const hsmc_issue_req_t *req,
                                                  uint8_t *buf, size_t cap)
{
    const uint8_t *der = req->csr;
    size_t len = req->csr_len;
    hsmc_err_t err;
    int ret;

    if (hsmc_ca_is_pem(req->csr, req->csr_len)) {
        const char *label = hsmc_ca_find((const char *)req->csr, req->csr_len,
                                         "-----BEGIN NEW CERTIFICATE REQUEST-----") < req->csr_len
                                ? "NEW CERTIFICATE REQUEST"
                                : "CERTIFICATE REQUEST";
        err = hsmc_pem_read(label, (const char *)req->csr, req->csr_len, buf, cap, &len);
        if (err == HSMC_ERR_BUFFER)
            return hsmc__fail(ca->h, HSMC_ERR_BUFFER, CKR_OK,
                              "the output buffer (%u bytes) cannot hold the decoded CSR (%u)",
                              (unsigned)cap, (unsigned)len);
        if (err != HSMC_OK)
            return hsmc__fail(ca->h, HSMC_ERR_CSR, CKR_OK,
                              "CSR PEM is truncated or malformed (no complete '%s' block)", label);
        der = buf;
    }
    ret = mbedtls_x509_csr_parse_der(&ca->csr, der, len);
    if (ret == MBEDTLS_ERR_PK_UNKNOWN_PK_ALG ||
        ret == MBEDTLS_ERR_X509_UNKNOWN_SIG_ALG ||
        ret == (MBEDTLS_ERR_X509_UNKNOWN_SIG_ALG + MBEDTLS_ERR_OID_NOT_FOUND))
        return hsmc__fail(ca->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "CSR uses a key or signature algorithm this mbedTLS cannot handle "
                          "(mbedTLS -0x%04x)",
                          (unsigned)-ret);
    if (ret != 0 && hsmc_ca_empty_subject(der, len))
        return hsmc__fail(ca->h, HSMC_ERR_POLICY, CKR_OK,
                          "subject: the CSR's subject is empty; give at least a CN");
    if (ret != 0)
        return hsmc__fail(ca->h, HSMC_ERR_CSR, CKR_OK,
                          "CSR is not a valid DER PKCS#10 request (mbedTLS -0x%04x)",
                          (unsigned)-ret);
    return HSMC_OK;
}

/* Verify the CSR's self-signature (mbedtls_x509_csr_parse_der does not). */
HSMC_NOINLINE static hsmc_err_t hsmc_ca_csr_verify(hsmc_ca_t *ca)
{
    unsigned char hash[MBEDTLS_MD_MAX_SIZE];
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(ca->csr.sig_md);
    int ret;

    if (ca->csr.sig_md == MBEDTLS_MD_MD5 || ca->csr.sig_md == MBEDTLS_MD_SHA1 || md == NULL ||
        mbedtls_md_get_size(md) < 28)
        return hsmc__fail(ca->h, HSMC_ERR_POLICY, CKR_OK,
                          "csr-hash: the CSR is signed with a weak or unknown hash; use SHA-256 or "
                          "better");
    ret = mbedtls_md(md, ca->csr.cri.p, ca->csr.cri.len, hash);
    if (ret == 0)
        ret = mbedtls_pk_verify_ext(ca->csr.sig_pk, ca->csr.sig_opts, &ca->csr.pk, ca->csr.sig_md,
                                    hash, mbedtls_md_get_size(md), ca->csr.sig.p, ca->csr.sig.len);
    if (ret != 0)
        return hsmc__fail(ca->h, HSMC_ERR_SIGNATURE, CKR_OK,
                          "the CSR's self-signature does not verify (altered, or not signed by "
                          "its key; mbedTLS -0x%04x)",
                          (unsigned)-ret);
    return HSMC_OK;
}

#define HSMC_SEQ (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)

/* Read what one requested extension asks for. @return 0, or <0 when malformed. */
static int hsmc_ca_ext_req(hsmc_iss_t *iss, const mbedtls_x509_buf *oid, unsigned char *p,
                           const unsigned char *end, unsigned *seen)
{
    size_t n;
    int v;

    if (MBEDTLS_OID_CMP(MBEDTLS_OID_BASIC_CONSTRAINTS, oid) == 0) {
        if (*seen & 1u)
            return -1;
        *seen |= 1u;
        if (mbedtls_asn1_get_tag(&p, end, &n, HSMC_SEQ) != 0)
            return -1;
        if (n > 0 && *p == MBEDTLS_ASN1_BOOLEAN) {
            if (mbedtls_asn1_get_bool(&p, end, &v) != 0)
                return -1;
            if (v)
                iss->asked |= HSMC_ASK_CA;
        }
    } else if (MBEDTLS_OID_CMP(MBEDTLS_OID_KEY_USAGE, oid) == 0) {
        mbedtls_asn1_bitstring bs;
        if (*seen & 2u)
            return -1;
        *seen |= 2u;
        if (mbedtls_asn1_get_bitstring(&p, end, &bs) != 0)
            return -1;
        if (bs.len > 0 && (bs.p[0] & MBEDTLS_X509_KU_KEY_CERT_SIGN))
            iss->asked |= HSMC_ASK_CERT_SIGN;
        if (bs.len > 0 && (bs.p[0] & MBEDTLS_X509_KU_CRL_SIGN))
            iss->asked |= HSMC_ASK_CRL_SIGN;
    } else if (MBEDTLS_OID_CMP(MBEDTLS_OID_SUBJECT_ALT_NAME, oid) == 0) {
        if (*seen & 4u)
            return -1;
        *seen |= 4u;
        iss->san = p;
        iss->san_len = (size_t)(end - p);
    }
    return 0;
}

/*
 * Walk the CertificationRequestInfo's attributes (mbedTLS 2.28 skips
 * them) and read the extensionRequest: basicConstraints, keyUsage and
 * subjectAltName matter; other requested extensions are ignored.
 */
HSMC_NOINLINE static hsmc_err_t hsmc_ca_csr_exts(hsmc_ca_t *ca, hsmc_iss_t *iss)
{
    unsigned char *p = ca->csr.cri.p;
    const unsigned char *end = p + ca->csr.cri.len, *aend;
    mbedtls_x509_buf oid;
    size_t n;
    unsigned seen = 0, ext_req = 0;
    int version;

    if (mbedtls_asn1_get_tag(&p, end, &n, HSMC_SEQ) != 0)
        goto bad;
    end = p + n;
    if (mbedtls_asn1_get_int(&p, end, &version) != 0 ||
        mbedtls_asn1_get_tag(&p, end, &n, HSMC_SEQ) != 0) /* subject */
        goto bad;
    p += n;
    if (mbedtls_asn1_get_tag(&p, end, &n, HSMC_SEQ) != 0) /* SPKI */
        goto bad;
    p += n;
    if (p == end)
        return HSMC_OK; /* no attributes */
    if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED) != 0 ||
        p + n != end)
        goto bad;
    while (p < end) {
        if (mbedtls_asn1_get_tag(&p, end, &n, HSMC_SEQ) != 0)
            goto bad;
        aend = p + n;
        if (mbedtls_asn1_get_tag(&p, aend, &oid.len, MBEDTLS_ASN1_OID) != 0)
            goto bad;
        oid.p = p;
        p += oid.len;
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_PKCS9_CSR_EXT_REQ, &oid) != 0) {
            p = (unsigned char *)(uintptr_t)aend;
            continue;
        }
        if (ext_req++ > 0)
            goto bad; /* two extensionRequest attributes */
        /* SET { Extensions }: exactly one value */
        if (mbedtls_asn1_get_tag(&p, aend, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SET) != 0 ||
            p + n != aend || mbedtls_asn1_get_tag(&p, aend, &n, HSMC_SEQ) != 0 || p + n != aend)
            goto bad;
        while (p < aend) {
            const unsigned char *xend;
            int crit = 0;
            if (mbedtls_asn1_get_tag(&p, aend, &n, HSMC_SEQ) != 0)
                goto bad;
            xend = p + n;
            if (mbedtls_asn1_get_tag(&p, xend, &oid.len, MBEDTLS_ASN1_OID) != 0)
                goto bad;
            oid.p = p;
            p += oid.len;
            if (p < xend && *p == MBEDTLS_ASN1_BOOLEAN && mbedtls_asn1_get_bool(&p, xend, &crit) != 0)
                goto bad;
            if (mbedtls_asn1_get_tag(&p, xend, &n, MBEDTLS_ASN1_OCTET_STRING) != 0 || p + n != xend)
                goto bad;
            if (hsmc_ca_ext_req(iss, &oid, p, xend, &seen) != 0)
                goto bad;
            p = (unsigned char *)(uintptr_t)xend;
        }
    }
    return HSMC_OK;
bad:
    return hsmc__fail(ca->h, HSMC_ERR_CSR, CKR_OK,
                      "CSR attributes are malformed (extensionRequest, or a repeated extension)");
}

/* Is the subject key strong enough for the profile? */
static hsmc_err_t hsmc_ca_key_strength(hsmc_t *h, const hsmc_profile_rules_t *rules,
                                       hsmc_profile_t profile, const mbedtls_pk_context *pk)
{
    mbedtls_pk_type_t t = mbedtls_pk_get_type(pk);

    if (t == MBEDTLS_PK_RSA) {
        unsigned bits = (unsigned)mbedtls_pk_get_bitlen(pk);
        unsigned min = rules->rsa_min_bits < 2048 ? 2048 : rules->rsa_min_bits;
        if (bits < min)
            return hsmc__fail(h, HSMC_ERR_KEY_WEAK, CKR_OK,
                              "RSA-%u key: profile %s needs at least %u bits", bits,
                              hsmc_profile_name(profile), min);
        return HSMC_OK;
    }
    if (t == MBEDTLS_PK_ECKEY) {
        mbedtls_ecp_group_id g = mbedtls_pk_ec(*pk)->grp.id;
        unsigned bit = g == MBEDTLS_ECP_DP_SECP256R1   ? HSMC_CURVE_P256
                       : g == MBEDTLS_ECP_DP_SECP384R1 ? HSMC_CURVE_P384
                       : g == MBEDTLS_ECP_DP_SECP521R1 ? HSMC_CURVE_P521
                                                       : 0u;
        const mbedtls_ecp_curve_info *ci = mbedtls_ecp_curve_info_from_grp_id(g);
        if (bit == 0 || !(rules->curves & bit))
            return hsmc__fail(h, HSMC_ERR_KEY_WEAK, CKR_OK,
                              "EC curve %s is not allowed for profile %s",
                              ci != NULL ? ci->name : "?", hsmc_profile_name(profile));
        return HSMC_OK;
    }
    return hsmc__fail(h, HSMC_ERR_KEY_WEAK, CKR_OK,
                      "a %s key cannot be certified under profile %s (RSA or EC only)",
                      mbedtls_pk_get_name(pk), hsmc_profile_name(profile));
}

/* Everything about the request that does not need the token. */
HSMC_NOINLINE static hsmc_err_t hsmc_ca_check(hsmc_ca_t *ca, hsmc_iss_t *iss, uint8_t *buf,
                                              size_t cap)
{
    const hsmc_issue_req_t *req = iss->req;
    hsmc_err_t err;

    if (req->csr != NULL) {
        err = hsmc_ca_csr_parse(ca, req, buf, cap);
        if (err == HSMC_OK)
            err = hsmc_ca_csr_verify(ca);
        if (err == HSMC_OK)
            err = hsmc_ca_csr_exts(ca, iss);
        if (err != HSMC_OK)
            return err;
        iss->subject = ca->csr.subject_raw.p;
        iss->subject_len = ca->csr.subject_raw.len;
        if (!hsmc_profile_is_ca(iss->profile) && iss->asked != 0)
            return hsmc__fail(ca->h, HSMC_ERR_CSR_EXT, CKR_OK,
                              "the CSR asks for%s%s%s; profile %s issues end-entity certificates",
                              (iss->asked & HSMC_ASK_CA) ? " cA=TRUE" : "",
                              (iss->asked & HSMC_ASK_CERT_SIGN) ? " keyCertSign" : "",
                              (iss->asked & HSMC_ASK_CRL_SIGN) ? " cRLSign" : "",
                              hsmc_profile_name(iss->profile));
        /* a root's CSR must carry the CA key (checked next): judge that key */
        err = hsmc_ca_key_strength(ca->h, iss->rules, iss->profile,
                                   iss->self ? &ca->pk : &ca->csr.pk);
        if (err != HSMC_OK)
            return err;
        return hsmc__policy_names(ca->h, &iss->rules->names, iss->profile, &ca->csr.subject,
                                  iss->san, iss->san_len);
    }
    /* A root without CSR: the CA key is the subject key. */
    if (iss->profile != HSMC_PROFILE_CA_ROOT)
        return hsmc__fail(ca->h, HSMC_ERR_ARG, CKR_OK, "profile %s needs a CSR",
                          hsmc_profile_name(iss->profile));
    if (req->subject == NULL && !ca->has_cert)
        return hsmc__fail(ca->h, HSMC_ERR_ARG, CKR_OK,
                          "a new root needs a subject (e.g. \"CN=Example Root CA,O=Example\")");
    if (req->subject == NULL) {
        iss->subject = ca->chain.subject_raw.p; /* renewal keeps the name */
        iss->subject_len = ca->chain.subject_raw.len;
    }
    return hsmc_ca_key_strength(ca->h, iss->rules, iss->profile, &ca->pk);
}

/* Subject key SPKI into ca->spki and its identifier; roots: the CA's key. */
HSMC_NOINLINE static hsmc_err_t hsmc_ca_subject_key(hsmc_ca_t *ca, hsmc_iss_t *iss, uint8_t *buf,
                                                    size_t cap)
{
    hsmc_err_t err;
    size_t n;
    int ret;

    if (iss->req->csr != NULL) {
        ret = mbedtls_pk_write_pubkey_der(&ca->csr.pk, ca->spki, sizeof ca->spki);
        if (ret <= 0)
            return hsmc_x509_fail(ca->h, NULL, ret == 0 ? MBEDTLS_ERR_ASN1_BUF_TOO_SMALL : ret,
                                  "encoding the CSR's public key");
        memmove(ca->spki, ca->spki + sizeof ca->spki - (size_t)ret, (size_t)ret);
        iss->spki_len = (size_t)ret;
    }
    if (iss->self) {
        /* The token's own encoding of the CA key; a root's CSR must carry it. */
        uint8_t *tok = iss->req->csr != NULL ? buf : ca->spki;
        size_t tcap = iss->req->csr != NULL ? cap : sizeof ca->spki;
        err = hsmc_key_export_pub(ca->h, &ca->key, tok, tcap, &n);
        if (err != HSMC_OK)
            return err;
        if (iss->req->csr != NULL && (n != iss->spki_len || memcmp(buf, ca->spki, n) != 0))
            return hsmc__fail(ca->h, HSMC_ERR_CERT_KEY, CKR_OK,
                              "a ca_root CSR must carry the CA key '%s' itself",
                              ca->key.priv.label);
        iss->spki_len = n;
    }
    err = hsmc__ca_key_id(ca->spki, iss->spki_len, iss->ski);
    if (err != HSMC_OK)
        return hsmc__fail(ca->h, err, CKR_OK, "cannot read the subject public key");
    return HSMC_OK;
}

/* Validity and path length. */
HSMC_NOINLINE static hsmc_err_t hsmc_ca_limits(hsmc_ca_t *ca, hsmc_iss_t *iss)
{
    const hsmc_issue_req_t *req = iss->req;
    unsigned days = req->days != 0 ? req->days : iss->rules->days;
    int64_t now;
    hsmc_err_t err;

    if (req->days > iss->rules->max_days)
        return hsmc__fail(ca->h, HSMC_ERR_POLICY, CKR_OK,
                          "validity: %u days asked; profile %s allows at most %u", req->days,
                          hsmc_profile_name(iss->profile), iss->rules->max_days);
    if (days == 0)
        return hsmc__fail(ca->h, HSMC_ERR_POLICY, CKR_OK,
                          "validity: profile %s has no validity configured",
                          hsmc_profile_name(iss->profile));
    err = hsmc__ca_now(ca->h, &now);
    if (err != HSMC_OK && req->not_before == 0)
        return err;
    iss->nb = req->not_before != 0 ? req->not_before : now;
    iss->na = iss->nb + (int64_t)days * 86400;
    if (!iss->self) {
        if (ca->not_after <= (err == HSMC_OK ? now : iss->nb))
            return hsmc__fail(ca->h, HSMC_ERR_POLICY, CKR_OK,
                              "validity: the CA certificate has expired; renew the CA first");
        if (iss->na > ca->not_after) {
            if (req->days != 0)
                return hsmc__fail(ca->h, HSMC_ERR_POLICY, CKR_OK,
                                  "validity: %u days would end after the CA certificate; "
                                  "ask for fewer days",
                                  req->days);
            iss->na = ca->not_after; /* the default is cut to the issuer's life */
        }
        if (iss->na <= iss->nb)
            return hsmc__fail(ca->h, HSMC_ERR_POLICY, CKR_OK,
                              "validity: the CA certificate ends before the requested start");
    }
    iss->path_len = iss->rules->path_len;
    if (iss->profile == HSMC_PROFILE_CA_INTERMEDIATE && ca->has_cert &&
        ca->chain.max_pathlen > 0) {
        /* mbedTLS stores pathLenConstraint + 1; 0 means none. */
        int limit = ca->chain.max_pathlen - 1;
        if (limit == 0)
            return hsmc__fail(ca->h, HSMC_ERR_POLICY, CKR_OK,
                              "issuer-pathlen: the CA certificate has pathLen 0 and cannot "
                              "certify another CA");
        if (iss->path_len < 0 || iss->path_len > limit - 1)
            iss->path_len = limit - 1;
    }
    if (iss->profile == HSMC_PROFILE_CA_INTERMEDIATE && iss->path_len < 0 && !ca->has_cert)
        iss->path_len = 0;
    return HSMC_OK;
}

/* Draw a serial: 16 bytes, first byte 01..7f (positive, exactly 16 in DER). */
static hsmc_err_t hsmc_ca_serial(hsmc_ca_t *ca)
{
    unsigned tries;
    hsmc_err_t err;

    for (tries = 0; tries < 16; tries++) {
        err = hsmc_random(ca->h, ca->serial, sizeof ca->serial);
        if (err != HSMC_OK)
            return err;
        ca->serial[0] &= 0x7Fu;
        if (ca->serial[0] != 0)
            return HSMC_OK;
    }
    return hsmc__fail(ca->h, HSMC_ERR_TOKEN, CKR_OK, "the token RNG keeps returning zeros");
}

/* Extensions of the profile, [3] EXPLICIT SEQUENCE OF Extension. */
HSMC_NOINLINE static void hsmc_ca_write_exts(hsmc_dw_t *w, const hsmc_ca_t *ca,
                                             const hsmc_iss_t *iss)
{
    static const uint8_t ku_ca[4] = {MBEDTLS_ASN1_BIT_STRING, 2, 1, 0x06};   /* keyCertSign, cRLSign */
    static const uint8_t ku_leaf[4] = {MBEDTLS_ASN1_BIT_STRING, 2, 7, 0x80}; /* digitalSignature */
    static const uint8_t ca_true[3] = {MBEDTLS_ASN1_BOOLEAN, 1, 0xFF};
    uint8_t *all = w->p, *m;
    const uint8_t *aki = iss->self ? iss->ski : ca->ski;
    size_t aki_len = iss->self ? sizeof iss->ski : ca->ski_len;
    int is_ca = hsmc_profile_is_ca(iss->profile);

    if (iss->san != NULL) {
        m = w->p;
        hsmc__dw_raw(w, iss->san, iss->san_len);
        hsmc__dw_ext(w, m, MBEDTLS_OID_SUBJECT_ALT_NAME, MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0);
    }
    m = w->p; /* AKI: SEQUENCE { [0] keyIdentifier } */
    hsmc__dw_raw(w, aki, aki_len);
    hsmc__dw_hdr(w, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 0, aki_len);
    hsmc__dw_wrap(w, m, HSMC_SEQ);
    hsmc__dw_ext(w, m, MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER,
                 MBEDTLS_OID_SIZE(MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER), 0);
    m = w->p;
    hsmc__dw_raw(w, iss->ski, sizeof iss->ski);
    hsmc__dw_hdr(w, MBEDTLS_ASN1_OCTET_STRING, sizeof iss->ski);
    hsmc__dw_ext(w, m, MBEDTLS_OID_SUBJECT_KEY_IDENTIFIER,
                 MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_KEY_IDENTIFIER), 0);
    if (!is_ca) {
        m = w->p;
        if (iss->profile == HSMC_PROFILE_MTLS_SERVER)
            hsmc__dw_oid(w, MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH));
        else if (iss->profile == HSMC_PROFILE_MTLS_CLIENT)
            hsmc__dw_oid(w, MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH));
        else
            hsmc__dw_oid(w, MBEDTLS_OID_CODE_SIGNING, MBEDTLS_OID_SIZE(MBEDTLS_OID_CODE_SIGNING));
        hsmc__dw_wrap(w, m, HSMC_SEQ);
        hsmc__dw_ext(w, m, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                     MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), 0);
    }
    m = w->p;
    hsmc__dw_raw(w, is_ca ? ku_ca : ku_leaf, 4);
    hsmc__dw_ext(w, m, MBEDTLS_OID_KEY_USAGE, MBEDTLS_OID_SIZE(MBEDTLS_OID_KEY_USAGE), 1);
    m = w->p;
    if (is_ca) {
        if (iss->path_len >= 0) {
            uint8_t pl = (uint8_t)(iss->path_len > 255 ? 255 : iss->path_len);
            hsmc__dw_uint(w, &pl, 1);
        }
        hsmc__dw_raw(w, ca_true, sizeof ca_true);
    }
    hsmc__dw_wrap(w, m, HSMC_SEQ); /* cA=FALSE is the DEFAULT: empty SEQUENCE */
    hsmc__dw_ext(w, m, MBEDTLS_OID_BASIC_CONSTRAINTS, MBEDTLS_OID_SIZE(MBEDTLS_OID_BASIC_CONSTRAINTS), 1);
    hsmc__dw_wrap(w, all, HSMC_SEQ);
    hsmc__dw_wrap(w, all, MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 3);
}

/* A subject given as text: mbedTLS parses it (allocating its list). */
static void hsmc_ca_write_name_text(hsmc_dw_t *w, const char *text)
{
    mbedtls_asn1_named_data *names = NULL;
    int ret;

    if (w->err)
        return;
    ret = mbedtls_x509_string_to_names(&names, text);
    if (ret == 0 && names != NULL)
        ret = mbedtls_x509_write_names(&w->p, w->start, names);
    else
        ret = -1;
    mbedtls_asn1_free_named_data_list(&names);
    if (ret < 0)
        w->err = ret == MBEDTLS_ERR_ASN1_BUF_TOO_SMALL ? 1 : 2;
}

/* The TBSCertificate, written at the end of buf. */
HSMC_NOINLINE static hsmc_err_t hsmc_ca_write_tbs(hsmc_ca_t *ca, const hsmc_iss_t *iss,
                                                  uint8_t *buf, size_t cap, size_t *tbs_len)
{
    static const uint8_t v3[5] = {MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0, 3,
                                  MBEDTLS_ASN1_INTEGER, 1, 2};
    mbedtls_md_type_t md;
    const char *oid;
    size_t oid_len, subj_len;
    uint8_t *m, *subj;
    hsmc_dw_t w;
    hsmc_err_t err;

    err = hsmc__ca_sig_alg(ca, &md, &oid, &oid_len);
    if (err != HSMC_OK)
        return err;
    hsmc__dw_init(&w, buf, cap);
    hsmc_ca_write_exts(&w, ca, iss);
    hsmc__dw_raw(&w, ca->spki, iss->spki_len);
    m = w.p;
    if (iss->subject != NULL)
        hsmc__dw_raw(&w, iss->subject, iss->subject_len);
    else
        hsmc_ca_write_name_text(&w, iss->req->subject);
    if (w.err == 2)
        return hsmc__fail(ca->h, HSMC_ERR_ARG, CKR_OK,
                          "the subject '%.60s' is not a valid name (e.g. \"CN=x,O=y,C=DE\")",
                          iss->req->subject);
    subj = w.p;
    subj_len = (size_t)(m - w.p);
    m = w.p;
    hsmc__dw_time(&w, iss->na);
    hsmc__dw_time(&w, iss->nb);
    hsmc__dw_wrap(&w, m, HSMC_SEQ);
    if (iss->self)
        hsmc__dw_raw(&w, subj, subj_len);
    else
        hsmc__dw_raw(&w, ca->chain.subject_raw.p, ca->chain.subject_raw.len);
    hsmc__dw_alg(&w, oid, oid_len, mbedtls_pk_can_do(&ca->pk, MBEDTLS_PK_RSA));
    hsmc__dw_uint(&w, ca->serial, sizeof ca->serial);
    hsmc__dw_raw(&w, v3, sizeof v3);
    hsmc__dw_wrap(&w, buf + cap, HSMC_SEQ);
    if (w.err)
        return hsmc__fail(ca->h, HSMC_ERR_BUFFER, CKR_OK,
                          "output buffer (%u bytes) too small for the certificate", (unsigned)cap);
    *tbs_len = HSMC_DW_LEN(&w);
    return HSMC_OK;
}

/* Size bound for the size-only pass. */
static size_t hsmc_ca_bound(const hsmc_ca_t *ca, const hsmc_issue_req_t *req)
{
    size_t n = 512 + HSMC_CA_SPKI_MAX + hsmc__ca_sig_bound(ca);
    n += req->csr != NULL ? req->csr_len : 0;
    n += req->subject != NULL ? 2 * strlen(req->subject) + 64 : 0;
    n += ca->has_cert ? 2 * ca->chain.subject_raw.len : 0;
    return n;
}

/* Gate, check, sign. */
HSMC_NOINLINE static hsmc_err_t hsmc_ca_issue_do(hsmc_ca_t *ca, hsmc_iss_t *iss, uint8_t *der,
                                                 size_t cap, size_t *len)
{
    const hsmc_issue_req_t *req = iss->req;
    size_t tbs_len;
    hsmc_err_t err;

    if ((int)req->profile <= 0 || req->profile >= HSMC_PROFILE_COUNT)
        return hsmc__fail(ca->h, HSMC_ERR_ARG, CKR_OK, "unknown certificate profile %d",
                          (int)req->profile);
    iss->profile = req->profile;
    iss->rules = &ca->policy->profile[req->profile];
    iss->self = req->profile == HSMC_PROFILE_CA_ROOT;
    err = hsmc_ca_permit(ca->h, ca->policy, HSMC_OP_ISSUE, iss->self || ca->is_root);
    if (err != HSMC_OK)
        return err;
    if (iss->self && ca->has_cert && !ca->is_root)
        return hsmc__fail(ca->h, HSMC_ERR_POLICY, CKR_OK,
                          "profile: ca_root is self-signed by a root key; CA key '%s' has a "
                          "certificate from another CA",
                          ca->key.priv.label);
    if (!iss->self && !ca->has_cert)
        return hsmc__fail(ca->h, HSMC_ERR_STATE, CKR_OK,
                          "CA key '%s' has no certificate yet; issue its ca_root first or open "
                          "it with its certificate",
                          ca->key.priv.label);
    if ((req->csr == NULL) != (req->csr_len == 0) || (req->csr != NULL && req->subject != NULL))
        return hsmc__fail(ca->h, HSMC_ERR_ARG, CKR_OK,
                          "give either a CSR or (ca_root only) a subject");
    err = hsmc_ca_check(ca, iss, der, cap);
    if (err == HSMC_OK)
        err = hsmc_ca_subject_key(ca, iss, der, cap);
    if (err == HSMC_OK)
        err = hsmc_ca_limits(ca, iss);
    if (err == HSMC_OK)
        err = hsmc_ca_serial(ca);
    if (err != HSMC_OK)
        return err;
    iss->has_serial = 1;
    err = hsmc_ca_write_tbs(ca, iss, der, cap, &tbs_len);
    if (err == HSMC_OK)
        err = hsmc__ca_sign_wrap(ca, der, cap, tbs_len, len);
    if (err == HSMC_ERR_BUFFER)
        *len = hsmc_ca_bound(ca, req);
    return err;
}

hsmc_err_t hsmc_ca_issue(hsmc_ca_t *ca, const hsmc_issue_req_t *req, uint8_t *der, size_t cap,
                         size_t *len, hsmc_issued_t *info)
{
    hsmc_iss_t iss;
    hsmc_err_t err;

    if (ca == NULL || req == NULL || len == NULL)
        return HSMC_ERR_ARG;
    if (ca->h == NULL || !ca->bound)
        return HSMC_ERR_STATE;
    if (der == NULL) {
        *len = hsmc_ca_bound(ca, req);
        return HSMC_OK;
    }
    memset(&iss, 0, sizeof iss);
    iss.req = req;
    mbedtls_x509_csr_free(&ca->csr);
    mbedtls_x509_csr_init(&ca->csr);
    hsmc__clear_err(ca->h);
    err = hsmc_ca_issue_do(ca, &iss, der, cap, len);
    if (err == HSMC_OK && iss.self)
        err = hsmc_ca_adopt(ca, der, *len);
    if (err == HSMC_OK && info != NULL) {
        memcpy(info->serial, ca->serial, sizeof info->serial);
        info->not_before = iss.nb;
        info->not_after = iss.na;
    }
    hsmc__policy_audit(ca, HSMC_OP_ISSUE, req->profile, iss.has_serial ? ca->serial : NULL,
                       iss.has_serial ? sizeof ca->serial : 0,
                       iss.subject != NULL ? iss.subject : NULL, iss.subject_len, err);
    mbedtls_x509_csr_free(&ca->csr);
    mbedtls_x509_csr_init(&ca->csr);
    if (err != HSMC_OK && err != HSMC_ERR_BUFFER)
        hsmc__wipe(der, cap); /* no half-made certificate in the caller's buffer */
    return err;
}
