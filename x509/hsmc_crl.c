/*
 * CRLs signed with the CA key in the token. mbedTLS 2.28 parses CRLs but
 * cannot write them, so the TBSCertList (RFC 5280 5.1) is written here
 * with the CA's backward DER writer and signed like a certificate.
 */
#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>

#include "hsmc_ca_int.h"

/* id-ce-cRLReasons (2.5.29.21) */
#define HSMC_OID_CRL_REASON MBEDTLS_OID_ID_CE "\x15"

static const char *const hsmc_reasons[] = {
    "unspecified",  "keyCompromise",        "cACompromise",    "affiliationChanged",
    "superseded",   "cessationOfOperation", "certificateHold", NULL,
    NULL,           "privilegeWithdrawn",   "aACompromise"};
#define HSMC_REASONS (sizeof hsmc_reasons / sizeof hsmc_reasons[0])

static int hsmc_crl_hex(char c)
{
    return (c >= '0' && c <= '9')   ? c - '0'
           : (c >= 'a' && c <= 'f') ? c - 'a' + 10
           : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                    : -1;
}

/* Hex serial ("0a1b", "0A:1B", "0x0a1b") into out. @return HSMC_OK or HSMC_ERR_FORMAT. */
static hsmc_err_t hsmc_crl_serial(const char *s, size_t n, hsmc_revoked_t *out)
{
    uint8_t buf[2 * HSMC_CRL_SERIAL_MAX];
    size_t i, digits = 0, k, lead = 0;

    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        n -= 2;
    }
    for (i = 0; i < n; i++) {
        int d = hsmc_crl_hex(s[i]);
        if (s[i] == ':' && i > 0 && i + 1 < n && s[i - 1] != ':')
            continue;
        if (d < 0)
            return HSMC_ERR_FORMAT;
        if (digits == 0 && d == 0)
            continue; /* leading zero digits */
        if (digits >= sizeof buf)
            return HSMC_ERR_FORMAT;
        buf[digits++] = (uint8_t)d;
    }
    if (digits == 0 || (digits + 1) / 2 > HSMC_CRL_SERIAL_MAX)
        return HSMC_ERR_FORMAT; /* zero is not a serial; at most 20 bytes */
    out->serial_len = (digits + 1) / 2;
    lead = digits % 2; /* odd count: the first byte has one digit */
    k = 0;
    if (lead)
        out->serial[k++] = buf[0];
    for (i = lead; i < digits; i += 2)
        out->serial[k++] = (uint8_t)(buf[i] << 4 | buf[i + 1]);
    return HSMC_OK;
}

/* YYYYMMDDhhmmssZ. */
static int hsmc_crl_time(const char *s, size_t n, int64_t *t)
{
    int v[6], i, k, pos = 0;
    static const int width[6] = {4, 2, 2, 2, 2, 2};

    if (n != 15 || s[14] != 'Z')
        return 0;
    for (i = 0; i < 6; i++) {
        v[i] = 0;
        for (k = 0; k < width[i]; k++, pos++) {
            if (s[pos] < '0' || s[pos] > '9')
                return 0;
            v[i] = v[i] * 10 + (s[pos] - '0');
        }
    }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 59)
        return 0;
    *t = hsmc__ca_epoch(v[0], v[1], v[2], v[3], v[4], v[5]);
    return 1;
}

static int hsmc_crl_reason(const char *s, size_t n, unsigned *reason)
{
    size_t i;
    for (i = 0; i < HSMC_REASONS; i++) {
        if (hsmc_reasons[i] != NULL && strlen(hsmc_reasons[i]) == n &&
            memcmp(hsmc_reasons[i], s, n) == 0) {
            *reason = (unsigned)i;
            return 1;
        }
    }
    return 0;
}

hsmc_err_t hsmc_crl_parse_line(const char *line, size_t len, hsmc_revoked_t *out)
{
    const char *tok[4];
    size_t tlen[4], ntok = 0, i = 0;

    if (line == NULL || out == NULL)
        return HSMC_ERR_ARG;
    memset(out, 0, sizeof *out);
    while (i < len && line[i] != '\n' && line[i] != '\r' && line[i] != '\0') {
        if (line[i] == ' ' || line[i] == '\t') {
            i++;
            continue;
        }
        if (ntok == 0 && line[i] == '#')
            break;
        if (ntok == 4)
            return HSMC_ERR_FORMAT;
        tok[ntok] = line + i;
        while (i < len && line[i] != ' ' && line[i] != '\t' && line[i] != '\n' &&
               line[i] != '\r' && line[i] != '\0')
            i++;
        tlen[ntok] = (size_t)(line + i - tok[ntok]);
        ntok++;
    }
    if (ntok == 0)
        return HSMC_ERR_OBJECT_NOT_FOUND;
    if (ntok > 3 || hsmc_crl_serial(tok[0], tlen[0], out) != HSMC_OK)
        return HSMC_ERR_FORMAT;
    for (i = 1; i < ntok; i++) {
        if (i == 1 && hsmc_crl_time(tok[i], tlen[i], &out->when))
            continue;
        if (!hsmc_crl_reason(tok[i], tlen[i], &out->reason) || (i == 1 && ntok == 3))
            return HSMC_ERR_FORMAT;
    }
    return HSMC_OK;
}

/* Bound for the size-only pass. */
static size_t hsmc_crl_bound(const hsmc_ca_t *ca, const hsmc_crl_req_t *req)
{
    /* entry: SEQUENCE(4) INTEGER(2+21) time(17) reason ext(2+13) */
    return 256 + ca->chain.subject_raw.len + ca->ski_len + req->count * 60 +
           hsmc__ca_sig_bound(ca);
}

/* One revokedCertificates entry. */
static void hsmc_crl_entry(hsmc_dw_t *w, const hsmc_revoked_t *r, int64_t this_update)
{
    uint8_t *e = w->p, *m;
    uint8_t en[3];

    if (r->reason != HSMC_CRL_REASON_UNSPECIFIED) {
        m = w->p;
        en[0] = MBEDTLS_ASN1_ENUMERATED;
        en[1] = 1;
        en[2] = (uint8_t)r->reason;
        hsmc__dw_raw(w, en, sizeof en);
        hsmc__dw_ext(w, m, HSMC_OID_CRL_REASON, MBEDTLS_OID_SIZE(HSMC_OID_CRL_REASON), 0);
        hsmc__dw_wrap(w, m, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
    }
    hsmc__dw_time(w, r->when != 0 ? r->when : this_update);
    hsmc__dw_uint(w, r->serial, r->serial_len);
    hsmc__dw_wrap(w, e, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
}

/* The TBSCertList at the end of buf. */
HSMC_NOINLINE static hsmc_err_t hsmc_crl_tbs(hsmc_ca_t *ca, const hsmc_crl_req_t *req,
                                             int64_t this_update, const uint8_t num[8],
                                             uint8_t *buf, size_t cap, size_t *tbs_len)
{
    static const uint8_t v2[3] = {MBEDTLS_ASN1_INTEGER, 1, 1};
    const uint32_t seq = MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE;
    mbedtls_md_type_t md;
    const char *oid;
    size_t oid_len, i;
    uint8_t *m, *e;
    hsmc_dw_t w;
    hsmc_err_t err;
    unsigned hours = req->next_update_hours != 0 ? req->next_update_hours : 168;

    err = hsmc__ca_sig_alg(ca, &md, &oid, &oid_len);
    if (err != HSMC_OK)
        return err;
    hsmc__dw_init(&w, buf, cap);
    /* crlExtensions [0] EXPLICIT: AKI, cRLNumber */
    m = w.p;
    e = w.p;
    hsmc__dw_uint(&w, num, 8);
    hsmc__dw_ext(&w, e, MBEDTLS_OID_CRL_NUMBER, MBEDTLS_OID_SIZE(MBEDTLS_OID_CRL_NUMBER), 0);
    e = w.p;
    hsmc__dw_raw(&w, ca->ski, ca->ski_len);
    hsmc__dw_hdr(&w, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 0, ca->ski_len);
    hsmc__dw_wrap(&w, e, (uint8_t)seq);
    hsmc__dw_ext(&w, e, MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER,
                 MBEDTLS_OID_SIZE(MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER), 0);
    hsmc__dw_wrap(&w, m, (uint8_t)seq);
    hsmc__dw_wrap(&w, m, MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0);
    if (req->count > 0) { /* absent, not empty, when nothing is revoked */
        m = w.p;
        for (i = req->count; i > 0 && !w.err; i--)
            hsmc_crl_entry(&w, &req->revoked[i - 1], this_update);
        hsmc__dw_wrap(&w, m, (uint8_t)seq);
    }
    hsmc__dw_time(&w, this_update + (int64_t)hours * 3600);
    hsmc__dw_time(&w, this_update);
    hsmc__dw_raw(&w, ca->chain.subject_raw.p, ca->chain.subject_raw.len);
    hsmc__dw_alg(&w, oid, oid_len, mbedtls_pk_can_do(&ca->pk, MBEDTLS_PK_RSA));
    hsmc__dw_raw(&w, v2, sizeof v2);
    hsmc__dw_wrap(&w, buf + cap, (uint8_t)seq);
    if (w.err)
        return hsmc__fail(ca->h, HSMC_ERR_BUFFER, CKR_OK,
                          "output buffer (%u bytes) too small for the CRL", (unsigned)cap);
    *tbs_len = HSMC_DW_LEN(&w);
    return HSMC_OK;
}

/* Check the request's entries. */
static hsmc_err_t hsmc_crl_check(hsmc_ca_t *ca, const hsmc_crl_req_t *req)
{
    size_t i, k;

    if (req->count > 0 && req->revoked == NULL)
        return hsmc__fail(ca->h, HSMC_ERR_ARG, CKR_OK, "CRL: %u entries but no array",
                          (unsigned)req->count);
    for (i = 0; i < req->count; i++) {
        const hsmc_revoked_t *r = &req->revoked[i];
        int nonzero = 0;
        for (k = 0; k < r->serial_len && k < HSMC_CRL_SERIAL_MAX; k++)
            nonzero |= r->serial[k] != 0;
        if (r->serial_len == 0 || r->serial_len > HSMC_CRL_SERIAL_MAX || !nonzero)
            return hsmc__fail(ca->h, HSMC_ERR_ARG, CKR_OK,
                              "CRL entry %u: a serial is 1..20 bytes and not zero", (unsigned)i);
        if (r->reason >= HSMC_REASONS || hsmc_reasons[r->reason] == NULL)
            return hsmc__fail(ca->h, HSMC_ERR_ARG, CKR_OK, "CRL entry %u: reason %u is not valid",
                              (unsigned)i, r->reason);
    }
    return HSMC_OK;
}

hsmc_err_t hsmc_ca_crl(hsmc_ca_t *ca, const hsmc_crl_req_t *req, uint8_t *der, size_t cap,
                       size_t *len)
{
    uint8_t num[8];
    uint64_t number;
    int64_t this_update = 0;
    size_t tbs_len = 0, i;
    hsmc_err_t err;
    int numbered = 0;

    if (ca == NULL || req == NULL || len == NULL)
        return HSMC_ERR_ARG;
    if (ca->h == NULL || !ca->bound)
        return HSMC_ERR_STATE;
    if (!ca->has_cert)
        return hsmc__fail(ca->h, HSMC_ERR_STATE, CKR_OK,
                          "CRL: CA key '%s' has no certificate; open the CA with it",
                          ca->key.priv.label);
    if (der == NULL) {
        *len = hsmc_crl_bound(ca, req);
        return HSMC_OK;
    }
    hsmc__clear_err(ca->h);
    err = hsmc_ca_permit(ca->h, ca->policy, HSMC_OP_CRL, ca->is_root);
    if (err == HSMC_OK)
        err = hsmc_crl_check(ca, req);
    if (err == HSMC_OK) {
        this_update = req->this_update;
        if (this_update == 0)
            err = hsmc__ca_now(ca->h, &this_update);
    }
    if (err == HSMC_OK) {
        number = req->number != 0 ? req->number : (uint64_t)this_update;
        for (i = 0; i < 8; i++)
            num[i] = (uint8_t)(number >> (56 - 8 * i));
        numbered = 1;
        err = hsmc_crl_tbs(ca, req, this_update, num, der, cap, &tbs_len);
    }
    if (err == HSMC_OK)
        err = hsmc__ca_sign_wrap(ca, der, cap, tbs_len, len);
    if (err == HSMC_ERR_BUFFER)
        *len = hsmc_crl_bound(ca, req);
    {
        /* the audit record carries the cRLNumber as its serial, minimal bytes */
        size_t skip = 0;
        while (numbered && skip < 7 && num[skip] == 0)
            skip++;
        hsmc__policy_audit(ca, HSMC_OP_CRL, HSMC_PROFILE_NONE, numbered ? num + skip : NULL,
                           numbered ? 8 - skip : 0, NULL, 0, err);
    }
    if (err != HSMC_OK && err != HSMC_ERR_BUFFER)
        hsmc__wipe(der, cap);
    return err;
}
