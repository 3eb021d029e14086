/*
 * CA policy: role and root gates, name rules for CSRs, audit records.
 * Every refusal names its rule first in the detail text ("role: ...",
 * "root: ...", "san-dns: ...") so logs and audit records say which rule
 * refused.
 */
#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>

#include "hsmc_ca_int.h"
#include "hsmc_port.h"

/* ---- Defaults, names ------------------------------------------------------ */

static void hsmc_rules(hsmc_profile_rules_t *r, unsigned days, unsigned max_days, int path_len,
                       unsigned rsa_min, unsigned curves)
{
    memset(r, 0, sizeof *r);
    r->days = days;
    r->max_days = max_days;
    r->path_len = path_len;
    r->rsa_min_bits = rsa_min;
    r->curves = curves;
}

void hsmc_ca_policy_init(hsmc_ca_policy_t *policy)
{
    const unsigned all = HSMC_CURVE_P256 | HSMC_CURVE_P384 | HSMC_CURVE_P521;

    if (policy == NULL)
        return;
    memset(policy, 0, sizeof *policy);
    policy->role = HSMC_ROLE_ANY;
    hsmc_rules(&policy->profile[HSMC_PROFILE_CA_ROOT], 7305, 9131, -1, 3072,
               HSMC_CURVE_P384 | HSMC_CURVE_P521);
    hsmc_rules(&policy->profile[HSMC_PROFILE_CA_INTERMEDIATE], 3652, 5479, 0, 2048, all);
    hsmc_rules(&policy->profile[HSMC_PROFILE_MTLS_SERVER], 397, 397, -1, 2048, all);
    policy->profile[HSMC_PROFILE_MTLS_SERVER].names.require = HSMC_REQ_DNS | HSMC_REQ_IP;
    hsmc_rules(&policy->profile[HSMC_PROFILE_MTLS_CLIENT], 365, 825, -1, 2048, all);
    hsmc_rules(&policy->profile[HSMC_PROFILE_SIGNING], 1095, 1826, -1, 2048, all);
}

const char *hsmc_role_name(hsmc_role_t role)
{
    switch (role) {
    case HSMC_ROLE_CA:
        return "ca";
    case HSMC_ROLE_APP:
        return "app";
    case HSMC_ROLE_ANY:
        return "any";
    }
    return "?";
}

hsmc_err_t hsmc_role_parse(const char *text, hsmc_role_t *role)
{
    if (role == NULL)
        return HSMC_ERR_ARG;
    if (text == NULL || text[0] == '\0' || strcmp(text, "any") == 0)
        *role = HSMC_ROLE_ANY;
    else if (strcmp(text, "ca") == 0)
        *role = HSMC_ROLE_CA;
    else if (strcmp(text, "app") == 0)
        *role = HSMC_ROLE_APP;
    else
        return HSMC_ERR_CONFIG;
    return HSMC_OK;
}

const char *hsmc_ca_op_name(hsmc_ca_op_t op)
{
    switch (op) {
    case HSMC_OP_ISSUE:
        return "issue";
    case HSMC_OP_CRL:
        return "crl";
    case HSMC_OP_CSR:
        return "csr";
    case HSMC_OP_CERT_STORE:
        return "cert-store";
    case HSMC_OP_TLS:
        return "tls";
    }
    return "?";
}

hsmc_err_t hsmc_ca_parse_flag(const char *text, int *flag)
{
    if (flag == NULL)
        return HSMC_ERR_ARG;
    if (text == NULL || text[0] == '\0' || strcmp(text, "false") == 0 || strcmp(text, "0") == 0 ||
        strcmp(text, "no") == 0)
        *flag = 0;
    else if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0 || strcmp(text, "yes") == 0)
        *flag = 1;
    else
        return HSMC_ERR_CONFIG;
    return HSMC_OK;
}

/* ---- Gates ---------------------------------------------------------------- */

hsmc_err_t hsmc_ca_permit(hsmc_t *h, const hsmc_ca_policy_t *policy, hsmc_ca_op_t op,
                          int root_key)
{
    if (h == NULL)
        return HSMC_ERR_ARG;
    if (policy == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "no CA policy given");
    switch (op) {
    case HSMC_OP_ISSUE:
    case HSMC_OP_CRL:
        if (policy->role == HSMC_ROLE_APP)
            return hsmc__fail(h, HSMC_ERR_POLICY, CKR_OK,
                              "role: an app process may not %s; run it where HSMC_ROLE=ca",
                              op == HSMC_OP_ISSUE ? "issue certificates" : "sign CRLs");
        break;
    case HSMC_OP_TLS:
        if (policy->role == HSMC_ROLE_CA)
            return hsmc__fail(h, HSMC_ERR_POLICY, CKR_OK,
                              "role: a ca process may not use keys for TLS; run it where "
                              "HSMC_ROLE=app");
        break;
    case HSMC_OP_CSR:
    case HSMC_OP_CERT_STORE:
        break;
    default:
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "unknown CA operation %d", (int)op);
    }
    if (root_key) {
        if (!policy->allow_root)
            return hsmc__fail(h, HSMC_ERR_POLICY, CKR_OK,
                              "root: root CA operations are off; set HSMC_ALLOW_ROOT_CA=true "
                              "for a root ceremony");
        if (policy->ceremony == NULL || policy->ceremony[0] == '\0')
            return hsmc__fail(h, HSMC_ERR_POLICY, CKR_OK,
                              "root: no ceremony reference; root CA operations need one "
                              "(--ceremony REF)");
    }
    return HSMC_OK;
}

/* ---- Name rules ----------------------------------------------------------- */

static int hsmc_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int hsmc_ieq(const char *a, const char *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (hsmc_lower((unsigned char)a[i]) != hsmc_lower((unsigned char)b[i]))
            return 0;
    }
    return 1;
}

/* Next item of a comma-separated list, blanks trimmed. @return 0 at the end. */
static int hsmc_next_item(const char **list, const char **item, size_t *len)
{
    const char *s = *list, *e;

    while (s != NULL && *s != '\0') {
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == '\0')
            break;
        e = s;
        while (*e != '\0' && *e != ',')
            e++;
        *list = e;
        while (e > s && e[-1] == ' ')
            e--;
        *item = s;
        *len = (size_t)(e - s);
        return 1;
    }
    return 0;
}

/* LDH host name, 1..253 bytes, labels 1..63, no wildcard. */
static int hsmc_dns_ok(const char *s, size_t len)
{
    size_t i, label = 0;

    if (len == 0 || len > 253)
        return 0;
    for (i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return 0;
        if (c == '-' && label == 0)
            return 0;
        if (++label > 63)
            return 0;
    }
    return label > 0 && s[len - 1] != '-';
}

/* Does a DNS name fall under one of the listed suffixes? */
static int hsmc_dns_allowed(const char *list, const char *name, size_t len)
{
    const char *it;
    size_t n;

    while (hsmc_next_item(&list, &it, &n)) {
        if (n == 1 && it[0] == '*')
            return 1;
        if (it[0] == '.') {
            if (len > n && hsmc_ieq(name + len - n, it, n))
                return 1;
        } else if ((len == n && hsmc_ieq(name, it, n)) ||
                   (len > n + 1 && name[len - n - 1] == '.' && hsmc_ieq(name + len - n, it, n))) {
            return 1;
        }
    }
    return 0;
}

static int hsmc_hex(char c)
{
    return (c >= '0' && c <= '9')   ? c - '0'
           : (c >= 'a' && c <= 'f') ? c - 'a' + 10
           : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                    : -1;
}

/* RFC 4291 text (groups, one "::"; no embedded IPv4). @return 16 or 0. */
static size_t hsmc_ip6_parse(const char *s, size_t len, uint8_t out[16])
{
    uint16_t head[8], tail[8];
    size_t nh = 0, nt = 0, i = 0, k;
    int gap = 0;

    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 1;
        i = 2;
    } else if (len == 0 || s[0] == ':') {
        return 0;
    }
    while (i < len) {
        unsigned v = 0, d = 0;
        while (i < len && hsmc_hex(s[i]) >= 0 && d < 5) {
            v = v * 16 + (unsigned)hsmc_hex(s[i]);
            d++;
            i++;
        }
        if (d == 0 || d > 4)
            return 0;
        if (gap ? nt >= 8 : nh >= 8)
            return 0;
        if (gap)
            tail[nt++] = (uint16_t)v;
        else
            head[nh++] = (uint16_t)v;
        if (i == len)
            break;
        if (s[i++] != ':' || i == len)
            return 0; /* junk, or a trailing single ':' */
        if (s[i] == ':') {
            if (gap)
                return 0;
            gap = 1;
            i++;
        }
    }
    if (gap ? nh + nt > 7 : nh != 8)
        return 0;
    memset(out, 0, 16);
    for (k = 0; k < nh; k++) {
        out[2 * k] = (uint8_t)(head[k] >> 8);
        out[2 * k + 1] = (uint8_t)head[k];
    }
    for (k = 0; k < nt; k++) {
        out[16 - 2 * (nt - k)] = (uint8_t)(tail[k] >> 8);
        out[16 - 2 * (nt - k) + 1] = (uint8_t)tail[k];
    }
    return 16;
}

/* Dotted IPv4 or IPv6 text. @return address length (4 or 16) or 0. */
static size_t hsmc_ip_parse(const char *s, size_t len, uint8_t out[16])
{
    unsigned v = 0, digits = 0;
    size_t i, n = 0;

    if (memchr(s, ':', len) != NULL)
        return hsmc_ip6_parse(s, len, out);
    memset(out, 0, 16);
    for (i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (digits == 0 || n >= 4)
                return 0;
            out[n++] = (uint8_t)v;
            v = 0;
            digits = 0;
        } else if (s[i] >= '0' && s[i] <= '9' && digits < 3) {
            v = v * 10 + (unsigned)(s[i] - '0');
            digits++;
            if (v > 255)
                return 0;
        } else {
            return 0;
        }
    }
    return n == 4 ? 4 : 0;
}

/* Is an address inside one of the listed CIDR ranges? */
static int hsmc_ip_allowed(const char *list, const uint8_t *ip, size_t ip_len)
{
    const char *it;
    size_t n, i;
    uint8_t net[16];

    while (hsmc_next_item(&list, &it, &n)) {
        const char *slash = memchr(it, '/', n);
        size_t alen = slash != NULL ? (size_t)(slash - it) : n, bits;
        if (n == 1 && it[0] == '*')
            return 1;
        if (hsmc_ip_parse(it, alen, net) != ip_len)
            continue;
        bits = ip_len * 8;
        if (slash != NULL) {
            const char *q = slash + 1;
            bits = 0;
            if (q == it + n)
                continue;
            for (; q < it + n; q++) {
                if (*q < '0' || *q > '9' || bits > 128)
                    break;
                bits = bits * 10 + (size_t)(*q - '0');
            }
            if (q != it + n || bits > ip_len * 8)
                continue;
        }
        for (i = 0; i < bits; i++) {
            uint8_t m = (uint8_t)(0x80u >> (i % 8));
            if ((ip[i / 8] & m) != (net[i / 8] & m))
                break;
        }
        if (i == bits)
            return 1;
    }
    return 0;
}

static int hsmc_printable(const uint8_t *s, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        if (s[i] < 0x21 || s[i] > 0x7E)
            return 0;
    }
    return len > 0;
}

/* URI: "scheme:rest" in printable ASCII, under one of the listed prefixes. */
static int hsmc_uri_allowed(const char *list, const uint8_t *uri, size_t len)
{
    const char *it;
    size_t n, i;

    if (!hsmc_printable(uri, len))
        return 0;
    for (i = 0; i < len && uri[i] != ':'; i++) {
        char c = (char)uri[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (i > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))))
            return 0;
    }
    if (i == 0 || i == len)
        return 0;
    while (hsmc_next_item(&list, &it, &n)) {
        if ((n == 1 && it[0] == '*') || (len >= n && memcmp(uri, it, n) == 0))
            return 1;
    }
    return 0;
}

/* E-mail: one '@', printable local part, host-name domain in the list. */
static int hsmc_email_allowed(const char *list, const uint8_t *addr, size_t len)
{
    const uint8_t *at = NULL;
    const char *it;
    size_t i, n, dlen;

    if (!hsmc_printable(addr, len))
        return 0;
    for (i = 0; i < len; i++) {
        if (addr[i] == '@') {
            if (at != NULL)
                return 0;
            at = addr + i;
        }
    }
    if (at == NULL || at == addr)
        return 0;
    dlen = len - (size_t)(at + 1 - addr);
    if (!hsmc_dns_ok((const char *)at + 1, dlen))
        return 0;
    while (hsmc_next_item(&list, &it, &n)) {
        if ((n == 1 && it[0] == '*') || (n == dlen && hsmc_ieq((const char *)at + 1, it, n)))
            return 1;
    }
    return 0;
}

/* Glob: '*' matches any run; everything else itself. Iterative, with one
 * backtrack point (enough for '*' globs). */
static int hsmc_glob(const char *pat, const uint8_t *s, size_t len)
{
    const char *star = NULL;
    size_t i = 0, mark = 0;

    while (i < len) {
        if (*pat == '*') {
            star = pat++;
            mark = i;
        } else if (*pat != '\0' && (uint8_t)*pat == s[i]) {
            pat++;
            i++;
        } else if (star != NULL) {
            pat = star + 1;
            i = ++mark;
        } else {
            return 0;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

/* Subject checks: not empty; commonName glob. */
static hsmc_err_t hsmc_subject_ok(hsmc_t *h, const hsmc_name_rules_t *rules,
                                  const mbedtls_x509_name *subject)
{
    const mbedtls_x509_name *n;
    int found = 0;

    if (subject == NULL || subject->oid.p == NULL)
        return hsmc__fail(h, HSMC_ERR_POLICY, CKR_OK,
                          "subject: the CSR's subject is empty; give at least a CN");
    if (rules->cn == NULL || rules->cn[0] == '\0')
        return HSMC_OK;
    for (n = subject; n != NULL; n = n->next) {
        if (n->oid.p == NULL || MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) != 0)
            continue;
        found = 1;
        if (!hsmc_glob(rules->cn, n->val.p, n->val.len))
            return hsmc__fail(h, HSMC_ERR_POLICY, CKR_OK, "cn: CN '%.*s' does not match '%.40s'",
                              (int)(n->val.len > 48 ? 48 : n->val.len), (const char *)n->val.p,
                              rules->cn);
    }
    if (!found)
        return hsmc__fail(h, HSMC_ERR_POLICY, CKR_OK,
                          "cn: the subject has no CN; the profile needs one matching '%.40s'",
                          rules->cn);
    return HSMC_OK;
}

/* One GeneralName. @return HSMC_OK (kind bit in *kind) or the refusal. */
static hsmc_err_t hsmc_san_one(hsmc_t *h, const hsmc_name_rules_t *rules, hsmc_profile_t profile,
                               int tag, const uint8_t *v, size_t n, unsigned *kind)
{
    const char *pn = hsmc_profile_name(profile);
    int shown = (int)(n > 48 ? 48 : n);

    switch (tag) {
    case MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2: /* dNSName */
        *kind = HSMC_REQ_DNS;
        if (!hsmc_dns_ok((const char *)v, n))
            return hsmc__fail(h, HSMC_ERR_POLICY, CKR_OK,
                              "san-dns: '%.*s' is not a host name hsmc certifies (LDH, no "
                              "wildcards)",
                              shown, (const char *)v);
        if (!hsmc_dns_allowed(rules->dns, (const char *)v, n))
            return hsmc__fail(h, HSMC_ERR_POLICY, CKR_OK,
                              "san-dns: '%.*s' is outside the DNS names allowed for %s", shown,
                              (const char *)v, pn);
        return HSMC_OK;
    case MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7: /* iPAddress */
        *kind = HSMC_REQ_IP;
        if ((n != 4 && n != 16) || !hsmc_ip_allowed(rules->ip, v, n))
            return hsmc__fail(h, HSMC_ERR_POLICY, CKR_OK,
                              "san-ip: an IP address outside the ranges allowed for %s", pn);
        return HSMC_OK;
    case MBEDTLS_ASN1_CONTEXT_SPECIFIC | 6: /* uniformResourceIdentifier */
        *kind = HSMC_REQ_URI;
        if (!hsmc_uri_allowed(rules->uri, v, n))
            return hsmc__fail(h, HSMC_ERR_POLICY, CKR_OK,
                              "san-uri: '%.*s' is outside the URI prefixes allowed for %s", shown,
                              (const char *)v, pn);
        return HSMC_OK;
    case MBEDTLS_ASN1_CONTEXT_SPECIFIC | 1: /* rfc822Name */
        *kind = HSMC_REQ_EMAIL;
        if (!hsmc_email_allowed(rules->email, v, n))
            return hsmc__fail(h, HSMC_ERR_POLICY, CKR_OK,
                              "san-email: '%.*s' is outside the e-mail domains allowed for %s",
                              shown, (const char *)v, pn);
        return HSMC_OK;
    default:
        return hsmc__fail(h, HSMC_ERR_POLICY, CKR_OK,
                          "san-kind: the CSR has a SAN of a kind hsmc does not certify (tag "
                          "0x%02x); only DNS, IP, URI, e-mail",
                          (unsigned)tag);
    }
}

hsmc_err_t hsmc__policy_names(hsmc_t *h, const hsmc_name_rules_t *rules, hsmc_profile_t profile,
                              const mbedtls_x509_name *subject, const uint8_t *san,
                              size_t san_len)
{
    unsigned char *p = (unsigned char *)(uintptr_t)san;
    const unsigned char *end = san + san_len;
    unsigned present = 0, kind = 0;
    size_t n;
    hsmc_err_t err;

    err = hsmc_subject_ok(h, rules, subject);
    if (err != HSMC_OK)
        return err;
    if (san != NULL) {
        if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0 ||
            p + n != end || n == 0)
            return hsmc__fail(h, HSMC_ERR_CSR, CKR_OK, "CSR subjectAltName is malformed or empty");
        while (p < end) {
            int tag = *p++;
            if (mbedtls_asn1_get_len(&p, end, &n) != 0)
                return hsmc__fail(h, HSMC_ERR_CSR, CKR_OK, "CSR subjectAltName is malformed");
            err = hsmc_san_one(h, rules, profile, tag, p, n, &kind);
            if (err != HSMC_OK)
                return err;
            present |= kind;
            p += n;
        }
    }
    if (rules->require != 0 && (present & rules->require) == 0)
        return hsmc__fail(h, HSMC_ERR_POLICY, CKR_OK,
                          "san-required: profile %s needs a SAN of kind%s%s%s%s",
                          hsmc_profile_name(profile),
                          (rules->require & HSMC_REQ_DNS) ? " DNS" : "",
                          (rules->require & HSMC_REQ_IP) ? " IP" : "",
                          (rules->require & HSMC_REQ_URI) ? " URI" : "",
                          (rules->require & HSMC_REQ_EMAIL) ? " e-mail" : "");
    return HSMC_OK;
}

/* ---- Audit ------------------------------------------------------------------ */

void hsmc__policy_audit(const hsmc_ca_t *ca, hsmc_ca_op_t op, hsmc_profile_t profile,
                        const uint8_t *serial, size_t serial_len, const uint8_t *subject,
                        size_t subject_len, hsmc_err_t result)
{
    const hsmc_ca_policy_t *pol = ca->policy;
    hsmc_audit_rec_t rec;

    if (pol == NULL || pol->audit == NULL)
        return;
    memset(&rec, 0, sizeof rec);
    rec.time = hsmc_port_time();
    rec.who = pol->operator_id != NULL ? pol->operator_id : "";
    rec.role = pol->role;
    rec.op = op;
    rec.profile = op == HSMC_OP_ISSUE ? hsmc_profile_name(profile) : "";
    rec.key_label = ca->key.priv.label;
    rec.ceremony = pol->ceremony != NULL ? pol->ceremony : "";
    rec.serial = serial;
    rec.serial_len = serial_len;
    rec.subject = subject;
    rec.subject_len = subject_len;
    rec.result = result;
    rec.detail = result == HSMC_OK ? "" : hsmc_detail(ca->h);
    pol->audit(pol->audit_user, &rec);
}
