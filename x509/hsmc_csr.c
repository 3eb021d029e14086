/*
 * PKCS#10 CSRs signed in the token (RFC 2986), written by mbedTLS's CSR
 * writer with a bound token key. mbedTLS 2.28 has no subjectAltName API
 * for CSRs and keeps only 8 keyUsage bits, so the extension values
 * (subjectAltName, keyUsage, extKeyUsage) are DER written here and added
 * with mbedtls_x509write_csr_set_extension.
 *
 * Inputs are checked before the token is used: the subject (mbedTLS 2.28's
 * name parser silently drops an incomplete last attribute and keeps one
 * value per attribute type, so hsmc checks the string itself and refuses
 * both cases), SAN syntax (DNS labels, IPv4/IPv6 text, URI scheme, e-mail).
 *
 * No allocation and no large stack buffers here: the caller's output
 * buffer is scratch for the subject string and the extension values
 * (mbedTLS copies them), then holds the DER, written at its end by mbedTLS
 * and moved (DER) or converted in place (PEM).
 */
#include <stddef.h>
#include <string.h>

#include <mbedtls/oid.h>
#include <mbedtls/x509.h>

#include "hsmc_x509_int.h"

/* Longest value mbedTLS 2.28's name parser takes (MBEDTLS_X509_MAX_DN_NAME_SIZE - 1). */
#define HSMC_DN_VALUE_MAX 255u
/* Most attributes in a subject hsmc writes. */
#define HSMC_DN_PARTS_MAX 32u

/* ---- DER helpers ------------------------------------------------------ */

static size_t hsmc_der_len_len(size_t n)
{
    return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 4;
}

/* Bytes of a TLV with n content bytes. */
static size_t hsmc_der_tlv(size_t n)
{
    return 1 + hsmc_der_len_len(n) + n;
}

/* Write tag and length (n < 2^24) at out[at]; @return the new position. */
static size_t hsmc_der_head(uint8_t *out, size_t at, uint8_t tag, size_t n)
{
    size_t ll = hsmc_der_len_len(n), i;

    out[at++] = tag;
    if (ll == 1) {
        out[at++] = (uint8_t)n;
        return at;
    }
    out[at++] = (uint8_t)(0x80u | (ll - 1));
    for (i = ll - 1; i > 0; i--)
        out[at++] = (uint8_t)(n >> (8 * (i - 1)));
    return at;
}

/* ---- SAN syntax --------------------------------------------------------- */

static int hsmc_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hsmc_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int hsmc_hex_val(char c)
{
    if (hsmc_is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Dotted IPv4 s[0..n): four decimal parts 0..255 without leading zeros. */
static int hsmc_ip4(const char *s, size_t n, uint8_t out[4])
{
    size_t i = 0, part, digits;
    unsigned v;

    for (part = 0; part < 4; part++) {
        v = 0;
        digits = 0;
        while (i < n && hsmc_is_digit(s[i]) && digits < 4) {
            v = v * 10 + (unsigned)(s[i] - '0');
            digits++;
            i++;
        }
        if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && s[i - digits] == '0'))
            return 0;
        out[part] = (uint8_t)v;
        if (part < 3) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
    }
    return i == n;
}

/*
 * IPv6 text (RFC 4291 2.2): eight groups of 1-4 hex digits, one "::" for
 * a run of zero groups, optionally an IPv4 tail for the last two groups.
 * No zone index ("%eth0"): it has no place in a certificate.
 */
static int hsmc_ip6(const char *s, size_t n, uint8_t out[16])
{
    uint8_t head[16], tail[16];
    size_t nh = 0, nt = 0, i = 0, j, g;
    int dbl = 0, v, d;
    uint8_t *dst;
    size_t *cnt;

    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        dbl = 1;
        i = 2;
    } else if (n >= 1 && s[0] == ':') {
        return 0;
    }
    while (i < n) {
        dst = dbl ? tail : head;
        cnt = dbl ? &nt : &nh;
        for (j = i; j < n && s[j] != ':' && s[j] != '.'; j++)
            ;
        if (j < n && s[j] == '.') { /* IPv4 tail: the rest of the text */
            if (*cnt + 4 > 16 || !hsmc_ip4(s + i, n - i, dst + *cnt))
                return 0;
            *cnt += 4;
            i = n;
            break;
        }
        if (j == i || j - i > 4 || *cnt + 2 > 16)
            return 0;
        for (v = 0, g = i; g < j; g++) {
            d = hsmc_hex_val(s[g]);
            if (d < 0)
                return 0;
            v = v * 16 + d;
        }
        dst[(*cnt)++] = (uint8_t)(v >> 8);
        dst[(*cnt)++] = (uint8_t)v;
        i = j;
        if (i == n)
            break;
        /* s[i] == ':' */
        if (i + 1 < n && s[i + 1] == ':') {
            if (dbl)
                return 0;
            dbl = 1;
            i += 2;
        } else {
            i++;
            if (i == n)
                return 0; /* trailing single colon */
        }
    }
    if (dbl ? nh + nt > 14 : nh != 16)
        return 0;
    memset(out, 0, 16);
    memcpy(out, head, nh);
    memcpy(out + 16 - nt, tail, nt);
    return 1;
}

/* DNS name: LDH labels of 1-63, 253 in all; "*" allowed as the whole first label. */
static int hsmc_dns_ok(const char *s, size_t n, int wildcard)
{
    size_t i, lab = 0, start = 0;

    if (n == 0 || n > 253)
        return 0;
    for (i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            lab = i - start;
            if (lab == 0 || lab > 63 || s[start] == '-' || s[i - 1] == '-')
                return 0;
            if (s[start] == '*' && !(wildcard && start == 0 && lab == 1 && i < n))
                return 0;
            start = i + 1;
            continue;
        }
        if (!hsmc_is_alpha(s[i]) && !hsmc_is_digit(s[i]) && s[i] != '-' &&
            !(s[i] == '*' && wildcard && i == 0))
            return 0;
    }
    return 1;
}

static int hsmc_printable_ascii(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7F)
            return 0;
    }
    return 1;
}

/* URI: "scheme:rest", scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). */
static int hsmc_uri_ok(const char *s, size_t n)
{
    size_t i;

    if (n < 3 || !hsmc_is_alpha(s[0]) || !hsmc_printable_ascii(s, n))
        return 0;
    for (i = 1; i < n && s[i] != ':'; i++) {
        if (!hsmc_is_alpha(s[i]) && !hsmc_is_digit(s[i]) && s[i] != '+' && s[i] != '-' &&
            s[i] != '.')
            return 0;
    }
    return i < n - 1;
}

static int hsmc_email_ok(const char *s, size_t n)
{
    const char *at = (const char *)memchr(s, '@', n);

    if (at == NULL || at == s || !hsmc_printable_ascii(s, n) ||
        memchr(at + 1, '@', n - (size_t)(at - s) - 1) != NULL)
        return 0;
    return hsmc_dns_ok(at + 1, n - (size_t)(at - s) - 1, 0);
}

/* Check one SAN; its DER tag and content (IP: the 4 or 16 bytes in ip). */
static hsmc_err_t hsmc_san_one(const hsmc_san_t *san, uint8_t *tag, const uint8_t **val,
                               size_t *len, uint8_t ip[16])
{
    const char *v = san->value;
    size_t n;

    if (v == NULL || v[0] == '\0')
        return HSMC_ERR_ARG;
    n = strlen(v);
    *val = (const uint8_t *)v;
    *len = n;
    switch (san->type) {
    case HSMC_SAN_DNS:
        *tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2;
        return hsmc_dns_ok(v, n, 1) ? HSMC_OK : HSMC_ERR_FORMAT;
    case HSMC_SAN_IP:
        *tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7;
        *val = ip;
        if (memchr(v, ':', n) != NULL) {
            *len = 16;
            return hsmc_ip6(v, n, ip) ? HSMC_OK : HSMC_ERR_FORMAT;
        }
        *len = 4;
        return hsmc_ip4(v, n, ip) ? HSMC_OK : HSMC_ERR_FORMAT;
    case HSMC_SAN_URI:
        *tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 6;
        return hsmc_uri_ok(v, n) ? HSMC_OK : HSMC_ERR_FORMAT;
    case HSMC_SAN_EMAIL:
        *tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 1;
        return hsmc_email_ok(v, n) ? HSMC_OK : HSMC_ERR_FORMAT;
    default:
        return HSMC_ERR_ARG;
    }
}

hsmc_err_t hsmc_san_der(const hsmc_san_t *san, size_t count, uint8_t *out, size_t cap,
                        size_t *out_len, size_t *bad)
{
    const uint8_t *val;
    uint8_t ip[16], tag;
    size_t i, len, body = 0, need, at;
    hsmc_err_t err;

    if (out_len == NULL)
        return HSMC_ERR_ARG;
    *out_len = 0;
    if (san == NULL || count == 0)
        return HSMC_ERR_ARG;
    for (i = 0; i < count; i++) {
        err = hsmc_san_one(&san[i], &tag, &val, &len, ip);
        if (err != HSMC_OK) {
            if (bad != NULL)
                *bad = i;
            return err;
        }
        body += hsmc_der_tlv(len);
    }
    if (body >= 0x1000000u)
        return HSMC_ERR_ARG;
    need = hsmc_der_tlv(body);
    *out_len = need;
    if (out == NULL)
        return HSMC_OK;
    if (cap < need)
        return HSMC_ERR_BUFFER;
    at = hsmc_der_head(out, 0, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE, body);
    for (i = 0; i < count; i++) {
        (void)hsmc_san_one(&san[i], &tag, &val, &len, ip);
        at = hsmc_der_head(out, at, tag, len);
        memcpy(out + at, val, len);
        at += len;
    }
    return at == need ? HSMC_OK : HSMC_ERR_INTERNAL;
}

/* ---- keyUsage and extKeyUsage values --------------------------------------- */

#define HSMC_KU_ALL 0x80FFu
#define HSMC_EKU_ALL 0x3Fu

/* KeyUsage BIT STRING: bit 0 (digitalSignature) is the first byte's MSB,
 * which is how mbedTLS numbers its MBEDTLS_X509_KU_* values; DER drops
 * trailing zero bits. @return its length (at most 5). */
static size_t hsmc_ku_der(unsigned ku, uint8_t out[5])
{
    uint8_t b[2];
    size_t n;
    unsigned unused = 0;

    b[0] = (uint8_t)(ku & 0xFFu);
    b[1] = (uint8_t)((ku >> 8) & 0x80u);
    n = b[1] != 0 ? 2 : 1;
    while (unused < 7 && (b[n - 1] & (1u << unused)) == 0)
        unused++;
    out[0] = MBEDTLS_ASN1_BIT_STRING;
    out[1] = (uint8_t)(n + 1);
    out[2] = (uint8_t)unused;
    memcpy(out + 3, b, n);
    return n + 3;
}

/* id-kp-* arc 1.3.6.1.5.5.7.3.<n>, by HSMC_EKU_* bit. */
static const uint8_t hsmc_eku_arc[6] = {1, 2, 3, 4, 8, 9};

/* ExtKeyUsageSyntax: SEQUENCE OF OID. @return its length (at most 62). */
static size_t hsmc_eku_der(unsigned eku, uint8_t *out)
{
    static const uint8_t kp[] = {0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03};
    size_t i, n = 0, at;

    for (i = 0; i < 6; i++) {
        if (eku & (1u << i))
            n += 2 + sizeof kp + 1;
    }
    if (out == NULL)
        return 2 + n;
    at = hsmc_der_head(out, 0, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE, n);
    for (i = 0; i < 6; i++) {
        if ((eku & (1u << i)) == 0)
            continue;
        out[at++] = MBEDTLS_ASN1_OID;
        out[at++] = (uint8_t)(sizeof kp + 1);
        memcpy(out + at, kp, sizeof kp);
        at += sizeof kp;
        out[at++] = hsmc_eku_arc[i];
    }
    return at;
}

/* ---- Subject --------------------------------------------------------------- */

/* Characters of ASN.1 PrintableString. */
static int hsmc_printable_string(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!hsmc_is_alpha(c) && !hsmc_is_digit(c) && strchr(" '()+,-./:=?", c) == NULL)
            return 0;
    }
    return 1;
}

static int hsmc_key_is(const char *k, size_t n, const char *a, const char *b)
{
    return (strlen(a) == n && memcmp(k, a, n) == 0) ||
           (b != NULL && strlen(b) == n && memcmp(k, b, n) == 0);
}

/*
 * Check one attribute value for the string type mbedTLS will write it as.
 * v[0..vn) is the text as given; with `escaped`, "\," stands for a comma
 * (the subject-string form). @return NULL or what is wrong.
 */
static const char *hsmc_dn_value_check(const char *k, size_t kn, const char *v, size_t vn,
                                       int escaped)
{
    size_t i, n = 0;
    int printable = hsmc_key_is(k, kn, "serialNumber", "postalAddress") ||
                    hsmc_key_is(k, kn, "postalCode", "dnQualifier") ||
                    hsmc_key_is(k, kn, "C", "countryName");
    int ia5 = hsmc_key_is(k, kn, "emailAddress", "R") || hsmc_key_is(k, kn, "DC", "domainComponent");
    unsigned char c;

    for (i = 0; i < vn; i++, n++) {
        if (escaped && v[i] == '\\')
            i++; /* the caller checked that a comma follows */
        c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7F)
            return "control character in value";
        if (printable && !hsmc_printable_string(v + i, 1))
            return "character not allowed in a PrintableString";
        if (ia5 && c >= 0x80)
            return "non-ASCII character in an IA5String";
    }
    if (n == 0)
        return "empty value";
    if (n > HSMC_DN_VALUE_MAX)
        return "value longer than 255 bytes";
    if (hsmc_key_is(k, kn, "C", "countryName") && (n != 2 || !hsmc_is_alpha(v[0]) ||
                                                   !hsmc_is_alpha(v[vn - 1])))
        return "countryName must be two letters (ISO 3166)";
    return NULL;
}

/*
 * Check a subject in mbedTLS's syntax and count its attributes: KEY=VALUE
 * separated by commas (spaces after a comma are skipped, "\," is a comma
 * in a value, no other escape exists).
 */
static hsmc_err_t hsmc_dn_check(hsmc_t *h, const char *fn, const char *s, size_t *parts)
{
    const char *k, *v, *why;
    size_t i = 0, n = strlen(s), kn;

    *parts = 0;
    while (i < n) {
        while (i < n && s[i] == ' ')
            i++;
        k = s + i;
        for (; i < n && s[i] != '=' && s[i] != ','; i++)
            ;
        if (i == n || s[i] != '=' || s + i == k)
            return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: subject: expected KEY=VALUE at '%.24s'", fn, k);
        kn = (size_t)(s + i - k);
        v = s + ++i;
        for (; i < n && s[i] != ','; i++) {
            if (s[i] == '\\') {
                if (i + 1 >= n || s[i + 1] != ',')
                    return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                                      "%s: subject: only '\\,' may be escaped (at '%.24s')", fn,
                                      s + i);
                i++;
            }
        }
        why = hsmc_dn_value_check(k, kn, v, (size_t)(s + i - v), 1);
        if (why != NULL)
            return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK, "%s: subject attribute %.*s: %s", fn,
                              (int)kn, k, why);
        if (++*parts > HSMC_DN_PARTS_MAX)
            return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: subject has more than %u attributes", fn, HSMC_DN_PARTS_MAX);
        if (i < n) {
            i++; /* the comma */
            if (i == n)
                return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                                  "%s: subject ends with a comma", fn);
        }
    }
    if (*parts == 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: the subject is empty", fn);
    return HSMC_OK;
}

/* Subject fields in the order they are written. */
typedef struct hsmc_dn_field {
    const char *key;
    size_t off;     /* offset of the value pointer in hsmc_csr_req_t */
    size_t max;     /* RFC 5280 upper bound, in characters */
} hsmc_dn_field_t;

static const hsmc_dn_field_t hsmc_dn_fields[] = {
    {"C", offsetof(hsmc_csr_req_t, c), 2},
    {"ST", offsetof(hsmc_csr_req_t, st), 128},
    {"L", offsetof(hsmc_csr_req_t, l), 128},
    {"O", offsetof(hsmc_csr_req_t, o), 64},
    {"OU", offsetof(hsmc_csr_req_t, ou), 64},
    {"CN", offsetof(hsmc_csr_req_t, cn), 64},
    {"serialNumber", offsetof(hsmc_csr_req_t, serial_number), 64},
};
#define HSMC_DN_NFIELDS (sizeof hsmc_dn_fields / sizeof hsmc_dn_fields[0])

static const char *hsmc_dn_field_value(const hsmc_csr_req_t *req, size_t i)
{
    const char *v;
    memcpy(&v, (const char *)req + hsmc_dn_fields[i].off, sizeof v);
    return v;
}

/* UTF-8 characters (not continuation bytes) of s. */
static size_t hsmc_utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        if (((unsigned char)*s & 0xC0u) != 0x80u)
            n++;
    }
    return n;
}

/*
 * Subject from the fields: its string length (escaped, without NUL), and
 * the string itself when out is not NULL (out holds len + 1).
 */
static hsmc_err_t hsmc_dn_from_fields(hsmc_t *h, const char *fn, const hsmc_csr_req_t *req,
                                      char *out, size_t *len)
{
    size_t i, n = 0, vn, j;
    const char *v, *why;

    for (i = 0; i < HSMC_DN_NFIELDS; i++) {
        v = hsmc_dn_field_value(req, i);
        if (v == NULL || v[0] == '\0')
            continue;
        vn = strlen(v);
        if (strchr(v, '\\') != NULL)
            return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: subject %s: a backslash cannot be written by mbedTLS 2.28",
                              fn, hsmc_dn_fields[i].key);
        if (hsmc_utf8_chars(v) > hsmc_dn_fields[i].max)
            return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: subject %s: longer than %u characters (RFC 5280)", fn,
                              hsmc_dn_fields[i].key, (unsigned)hsmc_dn_fields[i].max);
        why = hsmc_dn_value_check(hsmc_dn_fields[i].key, strlen(hsmc_dn_fields[i].key), v, vn,
                                  0);
        if (why != NULL)
            return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK, "%s: subject %s: %s", fn,
                              hsmc_dn_fields[i].key, why);
        if (n != 0) {
            if (out != NULL)
                out[n] = ',';
            n++;
        }
        if (out != NULL) {
            memcpy(out + n, hsmc_dn_fields[i].key, strlen(hsmc_dn_fields[i].key));
            out[n + strlen(hsmc_dn_fields[i].key)] = '=';
        }
        n += strlen(hsmc_dn_fields[i].key) + 1;
        for (j = 0; j < vn; j++) {
            if (v[j] == ',') {
                if (out != NULL)
                    out[n] = '\\';
                n++;
            }
            if (out != NULL)
                out[n] = v[j];
            n++;
        }
    }
    if (out != NULL)
        out[n] = '\0';
    *len = n;
    return HSMC_OK;
}

/* ---- CSR ---------------------------------------------------------------------- */

void hsmc_csr_req_init(hsmc_csr_req_t *req)
{
    if (req != NULL)
        memset(req, 0, sizeof *req);
}

/* Sizes worked out before anything is written. */
typedef struct hsmc_csr_plan {
    const char *subject; /* the caller's string, or NULL: built from the fields */
    size_t subject_len;  /* string length */
    size_t parts;        /* attributes */
    size_t san_len;      /* subjectAltName value */
    size_t ku_len, eku_len;
    hsmc_hash_t hash;
    size_t der_max;      /* upper bound of the DER */
} hsmc_csr_plan_t;

static hsmc_err_t hsmc_csr_plan(hsmc_t *h, const char *fn, const hsmc_key_t *key,
                                const hsmc_csr_req_t *req, hsmc_csr_plan_t *p)
{
    size_t i, ext = 0, nfields = 0, bad = 0;
    uint8_t ku[5];
    hsmc_err_t err;

    memset(p, 0, sizeof *p);
    for (i = 0; i < HSMC_DN_NFIELDS; i++) {
        const char *v = hsmc_dn_field_value(req, i);
        if (v != NULL && v[0] != '\0')
            nfields++;
    }
    if (req->subject != NULL && req->subject[0] != '\0' && nfields != 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: give the subject as a string or as fields, not both", fn);
    if (req->subject != NULL && req->subject[0] != '\0') {
        p->subject = req->subject;
        p->subject_len = strlen(req->subject);
        err = hsmc_dn_check(h, fn, req->subject, &p->parts);
    } else if (nfields != 0) {
        p->parts = nfields;
        err = hsmc_dn_from_fields(h, fn, req, NULL, &p->subject_len);
    } else {
        err = hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: the subject is empty", fn);
    }
    if (err != HSMC_OK)
        return err;

    if (req->san_count != 0) {
        if (req->san == NULL)
            return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: san_count is %u but san is NULL",
                              fn, (unsigned)req->san_count);
        err = hsmc_san_der(req->san, req->san_count, NULL, 0, &p->san_len, &bad);
        if (err != HSMC_OK)
            return hsmc__fail(h, err, CKR_OK, "%s: subjectAltName %u (%s '%.64s'): %s", fn,
                              (unsigned)bad,
                              req->san[bad].type == HSMC_SAN_DNS     ? "DNS"
                              : req->san[bad].type == HSMC_SAN_IP    ? "IP"
                              : req->san[bad].type == HSMC_SAN_URI   ? "URI"
                              : req->san[bad].type == HSMC_SAN_EMAIL ? "e-mail"
                                                                     : "unknown type",
                              req->san[bad].value != NULL ? req->san[bad].value : "(null)",
                              err == HSMC_ERR_FORMAT ? "malformed" : "empty or unknown type");
        ext += 13 + p->san_len;
    }
    if ((req->key_usage & ~HSMC_KU_ALL) != 0 || (req->ext_key_usage & ~HSMC_EKU_ALL) != 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: unknown key usage bits 0x%X / extended key usage bits 0x%X", fn,
                          req->key_usage & ~HSMC_KU_ALL, req->ext_key_usage & ~HSMC_EKU_ALL);
    if (req->key_usage != 0) {
        p->ku_len = hsmc_ku_der(req->key_usage, ku);
        ext += 13 + p->ku_len;
    }
    if (req->ext_key_usage != 0) {
        p->eku_len = hsmc_eku_der(req->ext_key_usage, NULL);
        ext += 13 + p->eku_len;
    }
    if (ext != 0)
        ext += 4 + 4 + 11 + 4; /* SEQUENCE OF Extension, SET, extensionRequest OID, SEQUENCE */

    p->hash = req->hash == HSMC_HASH_NONE ? hsmc__x509_default_hash(key->alg) : req->hash;
    if (p->hash == HSMC_HASH_SHA1)
        return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "%s: hsmc does not make SHA-1 signatures", fn);
    if (hsmc__x509_md(p->hash) == MBEDTLS_MD_NONE)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: unknown hash %d", fn, (int)p->hash);

    /* Outer SEQUENCE, CertificationRequestInfo SEQUENCE, version, subject
     * (each attribute: SET, SEQUENCE, OID, string headers), SPKI,
     * attributes [0], signature AlgorithmIdentifier, BIT STRING. */
    p->der_max = 4 + 4 + 3 + 4 + p->subject_len + 24 * p->parts +
                 hsmc__x509_spki_max(key->alg) + 4 + ext + 17 + 5 + hsmc__x509_sig_max(key->alg) +
                 16;
    return HSMC_OK;
}

/* Give the CSR writer its subject and extensions; `scratch` holds them briefly. */
static hsmc_err_t hsmc_csr_fill(hsmc_t *h, const char *fn, const hsmc_csr_req_t *req,
                                const hsmc_csr_plan_t *p, mbedtls_x509write_csr *csr,
                                uint8_t *scratch)
{
    const char *subject = p->subject;
    mbedtls_asn1_named_data *cur;
    size_t n = 0, len;
    int ret;

    if (subject == NULL) {
        (void)hsmc_dn_from_fields(h, fn, req, (char *)scratch, &len);
        subject = (const char *)scratch;
    }
    ret = mbedtls_x509write_csr_set_subject_name(csr, subject);
    if (ret == MBEDTLS_ERR_X509_UNKNOWN_OID)
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: subject '%.48s': unknown attribute name (CN, O, OU, C, ST, L, "
                          "serialNumber, emailAddress, DC, ...)",
                          fn, subject);
    if (ret != 0)
        return hsmc_x509_fail(h, NULL, ret, "subject");
    for (cur = csr->subject; cur != NULL; cur = cur->next)
        n++;
    if (n != p->parts)
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: subject '%.48s' repeats an attribute type; mbedTLS 2.28 keeps "
                          "only one of each",
                          fn, subject);

    if (p->san_len != 0) {
        (void)hsmc_san_der(req->san, req->san_count, scratch, p->san_len, &len, NULL);
        ret = hsmc__x509_csr_set_ext(csr, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                     MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), scratch, len);
        if (ret != 0)
            return hsmc_x509_fail(h, NULL, ret, "subjectAltName");
    }
    if (p->ku_len != 0) {
        len = hsmc_ku_der(req->key_usage, scratch);
        ret = hsmc__x509_csr_set_ext(csr, MBEDTLS_OID_KEY_USAGE,
                                     MBEDTLS_OID_SIZE(MBEDTLS_OID_KEY_USAGE), scratch, len);
        if (ret != 0)
            return hsmc_x509_fail(h, NULL, ret, "keyUsage");
    }
    if (p->eku_len != 0) {
        len = hsmc_eku_der(req->ext_key_usage, scratch);
        ret = hsmc__x509_csr_set_ext(csr, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                                     MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), scratch,
                                     len);
        if (ret != 0)
            return hsmc_x509_fail(h, NULL, ret, "extKeyUsage");
    }
    return HSMC_OK;
}

/* Read a DER header at p[0..n): *hl header bytes, *cl content bytes. */
static int hsmc_der_peek(const uint8_t *p, size_t n, uint8_t tag, size_t *hl, size_t *cl)
{
    size_t i, k;

    if (n < 2 || p[0] != tag)
        return 0;
    if (p[1] < 0x80) {
        *hl = 2;
        *cl = p[1];
    } else {
        k = p[1] & 0x7Fu;
        if (k == 0 || k > 3 || n < 2 + k)
            return 0;
        for (*cl = 0, i = 0; i < k; i++)
            *cl = (*cl << 8) | p[2 + i];
        *hl = 2 + k;
    }
    return *hl + *cl <= n;
}

/*
 * mbedTLS 2.28 writes ecdsa-with-SHAxxx AlgorithmIdentifiers with NULL
 * parameters, which RFC 5758 3.2 forbids (mbedTLS issue #2924; strict
 * verifiers such as BoringSSL refuse them). In a CSR the outer
 * signatureAlgorithm is not signed, so it is rewritten without the NULL.
 * der[0..*len) sits at the end of its buffer and moves up by 2 or 3 bytes;
 * anything unexpected is left as it is. @return the new start.
 */
static uint8_t *hsmc_csr_drop_ecdsa_null(uint8_t *der, size_t *len)
{
    size_t oh, ol, ch, cl, ah, al, cri, alg, rest, body, nh;
    uint8_t *a, *start;

    if (!hsmc_der_peek(der, *len, 0x30, &oh, &ol) || oh + ol != *len ||
        !hsmc_der_peek(der + oh, ol, 0x30, &ch, &cl))
        return der;
    cri = ch + cl;
    a = der + oh + cri;
    if (!hsmc_der_peek(a, ol - cri, 0x30, &ah, &al) || ah != 2 || al < 4 || a[2] != 0x06 ||
        (size_t)a[3] + 2 + 2 != al || a[al] != 0x05 || a[al + 1] != 0x00)
        return der;
    alg = ah + al;                   /* SEQUENCE { OID, NULL } */
    rest = ol - cri - alg;           /* the BIT STRING */
    memmove(a + 4, a + 2, al - 2);   /* OID, right up against the BIT STRING */
    a[2] = 0x30;
    a[3] = (uint8_t)(al - 2);
    memmove(der + oh + 2, der + oh, cri);
    body = cri + alg - 2 + rest;
    nh = 1 + hsmc_der_len_len(body);
    start = der + oh + 2 - nh;
    (void)hsmc_der_head(start, 0, 0x30, body);
    *len = nh + body;
    return start;
}

/* PEM of the DER at der[0..len) (inside out), converted in place. */
static hsmc_err_t hsmc_csr_pem(hsmc_t *h, const char *fn, const uint8_t *der, size_t len,
                               uint8_t *out, size_t cap, size_t *out_len)
{
    size_t pem_len = 0;
    hsmc_err_t err;

    err = hsmc_pem_write("CERTIFICATE REQUEST", der, len, (char *)out, cap, &pem_len);
    if (err == HSMC_OK)
        *out_len = pem_len;
    else if (err == HSMC_ERR_BUFFER)
        err = hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK,
                         "%s: %u bytes of output buffer; the PEM CSR needs %u + 1", fn,
                         (unsigned)cap, (unsigned)pem_len);
    else
        err = hsmc__fail(h, err, CKR_OK, "%s: PEM encoding failed", fn);
    return err;
}

hsmc_err_t hsmc_csr_create(hsmc_t *h, const hsmc_key_t *key, const hsmc_csr_req_t *req,
                           hsmc_x509_fmt_t fmt, uint8_t *out, size_t cap, size_t *out_len)
{
    static const char fn[] = "hsmc_csr_create";
    hsmc_csr_plan_t p;
    mbedtls_x509write_csr csr;
    mbedtls_pk_context pk;
    size_t bound, scratch;
    hsmc_err_t err;
    int ret;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (out_len == NULL || req == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: req or out_len is NULL", fn);
    *out_len = 0;
    if (fmt != HSMC_X509_DER && fmt != HSMC_X509_PEM)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: unknown output format %d", fn, (int)fmt);
    err = hsmc__x509_key_check(h, fn, key);
    if (err != HSMC_OK)
        return err;
    err = hsmc_csr_plan(h, fn, key, req, &p);
    if (err != HSMC_OK)
        return err;
    bound = p.der_max;
    if (fmt == HSMC_X509_PEM) {
        static const uint8_t unread = 0; /* the size-only pass reads no DER */
        (void)hsmc_pem_write("CERTIFICATE REQUEST", &unread, p.der_max, NULL, 0, &bound);
    }
    *out_len = bound;
    if (out == NULL)
        return HSMC_OK;
    scratch = p.subject_len + 1;
    if (p.san_len > scratch)
        scratch = p.san_len;
    if (cap < scratch || cap < 64)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: %u bytes of output buffer; the CSR needs up to %u", fn,
                          (unsigned)cap, (unsigned)bound);

    mbedtls_pk_init(&pk);
    mbedtls_x509write_csr_init(&csr);
    err = hsmc_pk_bind(h, key, &pk);
    if (err == HSMC_OK) {
        mbedtls_x509write_csr_set_key(&csr, &pk);
        mbedtls_x509write_csr_set_md_alg(&csr, hsmc__x509_md(p.hash));
        err = hsmc_csr_fill(h, fn, req, &p, &csr, out);
    }
    if (err == HSMC_OK) {
        /* f_rng is not used for token signatures; hand mbedTLS the token RNG anyway. */
        ret = mbedtls_x509write_csr_der(&csr, out, cap, hsmc_token_random, h);
        if (ret < 0) {
            err = hsmc_x509_fail(h, &pk, ret, fn);
            if (err == HSMC_ERR_BUFFER)
                err = hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK,
                                 "%s: %u bytes of output buffer; the CSR needs up to %u", fn,
                                 (unsigned)cap, (unsigned)bound);
        } else {
            size_t len = (size_t)ret;
            uint8_t *der = out + cap - len;
            if (key->priv.key_type == CKK_EC)
                der = hsmc_csr_drop_ecdsa_null(der, &len);
            if (fmt == HSMC_X509_DER) {
                memmove(out, der, len);
                *out_len = len;
            } else {
                err = hsmc_csr_pem(h, fn, der, len, out, cap, out_len);
            }
        }
    }
    mbedtls_x509write_csr_free(&csr);
    hsmc_pk_unbind(&pk);
    if (err != HSMC_OK) {
        hsmc__wipe(out, cap);
        *out_len = err == HSMC_ERR_BUFFER ? bound : 0;
    }
    return err;
}
