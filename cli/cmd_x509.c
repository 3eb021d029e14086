/*
 * cmd_x509.c: certificates with token keys: `hsmc csr create`, `hsmc ca
 * init`, `hsmc cert issue|store|show` and `hsmc crl gen`.
 *
 * The X.509 work is the library's (x509.h, ca.h); this file maps options
 * and the environment onto the CA policy (HSMC_ROLE, HSMC_ALLOW_ROOT_CA,
 * --ceremony, name rules), reads CSRs, chains and revocation lists, runs
 * a directory of CSRs through one open CA with a progress line, writes
 * every output atomically, and prints audit records with -v (issue 5 will
 * sign them).
 *
 * The policy gate is asked before the token is opened, so a refused root
 * operation needs neither the module nor a PIN and generates nothing.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/platform.h>
#include <mbedtls/x509_crt.h>

#include "cli.h"
#include "hsmc/ca.h"
#include "hsmc/x509.h"

/* Largest CSR or single certificate file read. */
#define X_FILE_MAX (64u * 1024u)
/* Largest certificate chain file read. */
#define X_CHAIN_MAX (1024u * 1024u)
/* Largest revocation list read (about 300,000 lines). */
#define X_REVOKED_MAX (16u * 1024u * 1024u)
/* Longest validity accepted on the command line (the profile limits it further). */
#define X_DAYS_MAX 36525ul
/* Failed file names listed in a batch summary. */
#define X_SUMMARY_NAMES 8

/* ---- small parsers ------------------------------------------------------------ */

/* Strict decimal in [min, max]. @return CLI_EXIT_OK or CLI_EXIT_USAGE (printed). */
static int parse_num(const char *opt, const char *text, unsigned long long min,
                     unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;
    const char *p = text;
    if (*p == '\0')
        goto bad;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || v > (max - (unsigned)(*p - '0')) / 10u)
            goto bad;
        v = v * 10u + (unsigned)(*p - '0');
    }
    if (v < min)
        goto bad;
    *out = v;
    return CLI_EXIT_OK;
bad:
    fprintf(stderr, "hsmc: --%s: expected a whole number from %llu to %llu, not '", opt, min,
            max);
    cli_put_safe(stderr, text, strlen(text));
    fputs("'\n", stderr);
    return CLI_EXIT_USAGE;
}

/*
 * --format: one of the words in `allowed` (NULL-terminated); the first is
 * the default. @return the index, or -1 (printed).
 */
static int parse_format(const cli_ctx_t *c, const char *const *allowed)
{
    const char *f = cli_opt(c, "format");
    int i;
    if (f == NULL)
        return 0;
    for (i = 0; allowed[i] != NULL; i++)
        if (strcmp(f, allowed[i]) == 0)
            return i;
    fputs("hsmc: --format: expected ", stderr);
    for (i = 0; allowed[i] != NULL; i++)
        fprintf(stderr, "%s%s", i == 0 ? "" : allowed[i + 1] == NULL ? " or " : ", ", allowed[i]);
    fputs(", not '", stderr);
    cli_put_safe(stderr, f, strlen(f));
    fputs("'\n", stderr);
    return -1;
}

static const char *const fmt_pem_der[] = {"pem", "der", NULL};

/* 1 when buf looks like PEM text (has a BEGIN line). */
static int is_pem(const unsigned char *buf, size_t len)
{
    static const char mark[] = "-----BEGIN ";
    size_t i, n = sizeof(mark) - 1;
    for (i = 0; len >= n && i <= len - n; i++)
        if (memcmp(buf + i, mark, n) == 0)
            return 1;
    return 0;
}

/* Colon-separated hex ("0A:1B:..."), upper case as openssl prints fingerprints. */
static void put_colon_hex(FILE *f, const unsigned char *b, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++)
        fprintf(f, "%s%02X", i ? ":" : "", b[i]);
}

/* "YYYY-MM-DDThh:mm:ssZ" of a time in seconds (or "unknown"). */
static void iso_time(long long t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t < 0 || gmtime_r(&tt, &tm) == NULL ||
        strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, cap, "unknown");
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- policy, audit --------------------------------------------------------------- */

/* The subject DER of an audit record as text ("CN=...,O=..."); "" when it does not parse. */
static void dn_text(const uint8_t *der, size_t len, char *out, size_t cap)
{
    mbedtls_x509_name name, *n, *next;
    unsigned char *p = (unsigned char *)(uintptr_t)der;
    const unsigned char *end = der + len;
    size_t l = 0;

    out[0] = '\0';
    memset(&name, 0, sizeof(name));
    if (der == NULL || len == 0 ||
        mbedtls_asn1_get_tag(&p, end, &l, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0 ||
        l == 0)
        return;
    if (mbedtls_x509_get_name(&p, p + l, &name) == 0 && mbedtls_x509_dn_gets(out, cap, &name) < 0)
        out[0] = '\0';
    /* The parser allocates every name after the first. */
    for (n = name.next; n != NULL; n = next) {
        next = n->next;
        mbedtls_free(n);
    }
}

/* A quoted value of an audit line, control characters escaped. */
static void put_quoted(const char *key, const char *v)
{
    fprintf(stderr, " %s=\"", key);
    cli_put_safe(stderr, v != NULL ? v : "", v != NULL ? strlen(v) : 0);
    fputc('"', stderr);
}

/*
 * The audit callback: one line per CA operation on stderr with -v. Issue 5
 * turns these records into signed ones; the fields are the library's
 * hsmc_audit_rec_t.
 */
static void audit_print(void *user, const hsmc_audit_rec_t *rec)
{
    const cli_ctx_t *c = (const cli_ctx_t *)user;
    char when[32], hex[2 * HSMC_CRL_SERIAL_MAX + 1], dn[512];

    if (c->verbose == 0)
        return;
    iso_time((long long)rec->time, when, sizeof(when));
    fprintf(stderr, "hsmc: audit: time=%s op=%s result=%s role=%s", when,
            hsmc_ca_op_name(rec->op), hsmc_err_name(rec->result), hsmc_role_name(rec->role));
    put_quoted("who", rec->who);
    if (rec->profile != NULL && rec->profile[0] != '\0')
        fprintf(stderr, " profile=%s", rec->profile);
    put_quoted("ca_key", rec->key_label);
    put_quoted("ceremony", rec->ceremony);
    if (rec->serial != NULL && rec->serial_len > 0 && rec->serial_len <= HSMC_CRL_SERIAL_MAX) {
        cli_hex(hex, sizeof(hex), rec->serial, rec->serial_len);
        fprintf(stderr, " %s=%s", rec->op == HSMC_OP_CRL ? "crl_number" : "serial", hex);
    }
    if (rec->subject != NULL) {
        dn_text(rec->subject, rec->subject_len, dn, sizeof(dn));
        put_quoted("subject", dn);
    }
    if (rec->detail != NULL && rec->detail[0] != '\0')
        put_quoted("detail", rec->detail);
    fputc('\n', stderr);
}

/* What to do about a refusal of the gate (role or root rule). */
static const char *policy_hint(const char *detail)
{
    if (strncmp(detail, "root:", 5) == 0)
        return "root CA operations are for key ceremonies: run this one command with "
               "HSMC_ALLOW_ROOT_CA=true in its environment and --ceremony REF (the ceremony's "
               "reference, recorded in the audit record)";
    if (strncmp(detail, "role:", 5) == 0)
        return "HSMC_ROLE says what this process may do: ca issues and signs CRLs, app makes "
               "CSRs and uses TLS, any does both (development only)";
    return NULL;
}

/* The policy gate before the token is touched; a refusal is audited (-v) and printed. */
static int permit(cli_ctx_t *c, const hsmc_ca_policy_t *pol, hsmc_ca_op_t op, int root,
                  const char *what)
{
    hsmc_err_t r = hsmc_ca_permit(&c->h, pol, op, root);
    if (r == HSMC_OK)
        return CLI_EXIT_OK;
    if (pol->audit != NULL) {
        hsmc_audit_rec_t rec;
        memset(&rec, 0, sizeof(rec));
        rec.time = (int64_t)time(NULL);
        rec.who = pol->operator_id != NULL ? pol->operator_id : "";
        rec.role = pol->role;
        rec.op = op;
        rec.profile = op == HSMC_OP_ISSUE && root ? "ca_root" : "";
        rec.key_label = cli_opt(c, "ca-key") != NULL ? cli_opt(c, "ca-key")
                        : cli_opt(c, "key") != NULL   ? cli_opt(c, "key")
                                                      : "";
        rec.ceremony = pol->ceremony != NULL ? pol->ceremony : "";
        rec.result = r;
        rec.detail = hsmc_detail(&c->h);
        pol->audit(pol->audit_user, &rec);
    }
    return cli_fail_hint(c, r, what, policy_hint(hsmc_detail(&c->h)));
}

/*
 * The CA policy from the environment and the verb's options: HSMC_ROLE,
 * HSMC_ALLOW_ROOT_CA, --ceremony, --operator (else $USER); audit lines with -v.
 * @return CLI_EXIT_OK or CLI_EXIT_USAGE (printed).
 */
static int policy_setup(cli_ctx_t *c, hsmc_ca_policy_t *pol)
{
    const char *role = getenv("HSMC_ROLE"), *allow = getenv("HSMC_ALLOW_ROOT_CA");
    const char *op = cli_opt(c, "operator");

    hsmc_ca_policy_init(pol);
    if (hsmc_role_parse(role, &pol->role) != HSMC_OK) {
        fputs("hsmc: HSMC_ROLE: unknown role '", stderr);
        cli_put_safe(stderr, role, strlen(role));
        fputs("'\nhsmc:   hint: HSMC_ROLE is ca (issues, signs CRLs), app (CSRs, TLS) or any\n",
              stderr);
        return CLI_EXIT_USAGE;
    }
    if (hsmc_ca_parse_flag(allow, &pol->allow_root) != HSMC_OK) {
        fputs("hsmc: HSMC_ALLOW_ROOT_CA: expected true or false (1/0, yes/no), not '", stderr);
        cli_put_safe(stderr, allow, strlen(allow));
        fputs("'\n", stderr);
        return CLI_EXIT_USAGE;
    }
    pol->ceremony = cli_opt(c, "ceremony");
    pol->operator_id = op != NULL ? op : getenv("USER");
    pol->audit = audit_print;
    pol->audit_user = c;
    return CLI_EXIT_OK;
}

/* ---- files of certificates ------------------------------------------------------ */

/*
 * Read certificates from a PEM or DER file: every CERTIFICATE block
 * (chain) or only the first (first_only), or the DER as it is. *der is a
 * heap buffer (free with cli_free).
 * @return CLI_EXIT_OK or an exit code (printed).
 */
static int read_certs(const char *opt, const char *path, int first_only, unsigned char **der,
                      size_t *len)
{
    unsigned char *buf = NULL, *out;
    size_t blen = 0, need = 0;
    hsmc_err_t r;
    int rc;

    *der = NULL;
    *len = 0;
    rc = cli_read_file(path, first_only ? X_FILE_MAX : X_CHAIN_MAX, opt, &buf, &blen);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (!is_pem(buf, blen)) {
        if (blen == 0) {
            cli_err("%s: %s is empty", opt, path);
            cli_free(buf, blen);
            return CLI_EXIT_FAIL;
        }
        *der = buf;
        *len = blen;
        return CLI_EXIT_OK;
    }
    r = first_only ? hsmc_pem_read("CERTIFICATE", (const char *)buf, blen, NULL, 0, &need)
                   : hsmc_ca_pem_to_der("CERTIFICATE", (const char *)buf, blen, NULL, 0, &need);
    out = (r == HSMC_OK || r == HSMC_ERR_BUFFER) && need > 0 ? (unsigned char *)malloc(need)
                                                             : NULL;
    if (out != NULL)
        r = first_only ? hsmc_pem_read("CERTIFICATE", (const char *)buf, blen, out, need, &need)
                       : hsmc_ca_pem_to_der("CERTIFICATE", (const char *)buf, blen, out, need,
                                            &need);
    cli_free(buf, blen);
    if (out == NULL || r != HSMC_OK) {
        free(out);
        cli_err("%s: %s has no complete PEM CERTIFICATE block (truncated or damaged?)", opt,
                path);
        return CLI_EXIT_FAIL;
    }
    *der = out;
    *len = need;
    return CLI_EXIT_OK;
}

/* Write a certificate (or CRL) as PEM or DER to --out / a path. @return exit code. */
static int write_der(cli_ctx_t *c, const char *path, const char *label, const uint8_t *der,
                     size_t len, int as_der)
{
    cli_out_t out;
    int rc = cli_out_open(&out, path,
                          (as_der ? CLI_OUT_BINARY : 0u) |
                              (cli_flag(c, "force") ? CLI_OUT_FORCE : 0u));
    if (rc != CLI_EXIT_OK)
        return rc;
    rc = as_der ? cli_out_write(&out, der, len) : cli_pem_write(&out, label, der, len);
    if (rc != CLI_EXIT_OK) {
        cli_out_abort(&out);
        return rc;
    }
    return cli_out_commit(&out);
}

/* ---- the CA of cert issue and crl gen ------------------------------------------------ */

typedef struct ca_run {
    hsmc_ca_policy_t pol;
    hsmc_key_t key;
    hsmc_ca_t ca;
    unsigned char *chain;
    size_t chain_len;
    int open;
} ca_run_t;

static void ca_run_free(ca_run_t *r)
{
    if (r->open)
        hsmc_ca_free(&r->ca);
    r->open = 0;
    free(r->chain);
    r->chain = NULL;
}

/*
 * Open the token and the CA: --ca-key, and --ca-cert (PEM chain or DER) or
 * else the certificate stored on the token for the key.
 * @return CLI_EXIT_OK or an exit code (printed).
 */
static int ca_run_open(cli_ctx_t *c, ca_run_t *r)
{
    const char *label = cli_opt(c, "ca-key"), *cert = cli_opt(c, "ca-cert");
    hsmc_err_t e;
    char what[160];
    int rc;

    rc = cli_open(c, 0);
    if (rc == CLI_EXIT_OK)
        rc = cli_key_open(c, label, &r->key, 1);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (cert != NULL) {
        rc = read_certs("--ca-cert", cert, 0, &r->chain, &r->chain_len);
        if (rc != CLI_EXIT_OK)
            return rc;
    } else {
        size_t n = 0;
        e = hsmc_cert_load(&c->h, &r->key, NULL, 0, &n);
        if (e == HSMC_OK || e == HSMC_ERR_BUFFER) {
            r->chain = (unsigned char *)malloc(n > 0 ? n : 1);
            if (r->chain == NULL) {
                cli_err("out of memory");
                return CLI_EXIT_FAIL;
            }
            e = hsmc_cert_load(&c->h, &r->key, r->chain, n, &r->chain_len);
        }
        if (e == HSMC_ERR_OBJECT_NOT_FOUND) {
            fputs("hsmc: no certificate on the token for CA key '", stderr);
            cli_put_safe(stderr, label, strlen(label));
            fputs("'\nhsmc:   hint: give --ca-cert FILE (the CA certificate, then its issuers), "
                  "or store it with `hsmc cert store --key LABEL --cert FILE`\n",
                  stderr);
            return CLI_EXIT_OBJECT;
        }
        if (e != HSMC_OK)
            return cli_fail(c, e, "cannot read the CA certificate from the token");
    }
    hsmc_ca_init(&r->ca);
    e = hsmc_ca_open(&r->ca, &c->h, &r->key, r->chain, r->chain_len, &r->pol);
    if (e != HSMC_OK) {
        snprintf(what, sizeof(what), "cannot open CA key '%.64s' with its certificate", label);
        return cli_fail_hint(c, e, what,
                             e == HSMC_ERR_CERT_KEY
                                 ? "the first certificate of --ca-cert must be the certificate "
                                   "of --ca-key (then its issuers)"
                             : e == HSMC_ERR_FORMAT
                                 ? "--ca-cert must hold X.509 certificates, PEM or DER"
                                 : NULL);
    }
    r->open = 1;
    return CLI_EXIT_OK;
}

/* ---- csr create ------------------------------------------------------------------------- */

static const cli_flag_word_t ku_words[] = {
    {HSMC_KU_DIGITAL_SIGNATURE, "digitalSignature"},
    {HSMC_KU_NON_REPUDIATION, "nonRepudiation"},
    {HSMC_KU_KEY_ENCIPHERMENT, "keyEncipherment"},
    {HSMC_KU_DATA_ENCIPHERMENT, "dataEncipherment"},
    {HSMC_KU_KEY_AGREEMENT, "keyAgreement"},
    {HSMC_KU_KEY_CERT_SIGN, "keyCertSign"},
    {HSMC_KU_CRL_SIGN, "cRLSign"},
    {HSMC_KU_ENCIPHER_ONLY, "encipherOnly"},
    {HSMC_KU_DECIPHER_ONLY, "decipherOnly"},
    {0, NULL}};

static const cli_flag_word_t eku_words[] = {
    {HSMC_EKU_SERVER_AUTH, "serverAuth"},     {HSMC_EKU_CLIENT_AUTH, "clientAuth"},
    {HSMC_EKU_CODE_SIGNING, "codeSigning"},   {HSMC_EKU_EMAIL_PROTECTION, "emailProtection"},
    {HSMC_EKU_TIME_STAMPING, "timeStamping"}, {HSMC_EKU_OCSP_SIGNING, "OCSPSigning"},
    {0, NULL}};

/* "a,b" of words in t (case-insensitive) -> bits. @return CLI_EXIT_OK or CLI_EXIT_USAGE. */
static int parse_words(const char *opt, const char *text, const cli_flag_word_t *t,
                       unsigned *bits)
{
    const char *p = text;
    size_t k;
    *bits = 0;
    while (*p != '\0') {
        size_t n = strcspn(p, ", ");
        for (k = 0; n > 0 && t[k].word != NULL; k++)
            if (strlen(t[k].word) == n && strncasecmp(t[k].word, p, n) == 0)
                break;
        if (n > 0 && t[k].word == NULL) {
            fprintf(stderr, "hsmc: --%s: unknown word '", opt);
            cli_put_safe(stderr, p, n);
            fputs("'\nhsmc:   hint: a comma-separated list of", stderr);
            for (k = 0; t[k].word != NULL; k++)
                fprintf(stderr, "%s %s", k ? "," : "", t[k].word);
            fputc('\n', stderr);
            return CLI_EXIT_USAGE;
        }
        if (n > 0)
            *bits |= (unsigned)t[k].bit;
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    if (*bits == 0) {
        cli_err("--%s: empty list", opt);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* "dns:NAME" ... -> hsmc_san_t. @return CLI_EXIT_OK or CLI_EXIT_USAGE (printed). */
static int parse_san(const char *text, hsmc_san_t *san)
{
    static const struct {
        const char *prefix;
        hsmc_san_type_t type;
    } kinds[] = {{"dns:", HSMC_SAN_DNS},
                 {"ip:", HSMC_SAN_IP},
                 {"uri:", HSMC_SAN_URI},
                 {"email:", HSMC_SAN_EMAIL},
                 {NULL, HSMC_SAN_DNS}};
    size_t i;
    for (i = 0; kinds[i].prefix != NULL; i++) {
        size_t n = strlen(kinds[i].prefix);
        if (strncasecmp(text, kinds[i].prefix, n) == 0 && text[n] != '\0') {
            san->type = kinds[i].type;
            san->value = text + n;
            return CLI_EXIT_OK;
        }
    }
    fputs("hsmc: --san: '", stderr);
    cli_put_safe(stderr, text, strlen(text));
    fputs("' must be dns:NAME, ip:ADDRESS, uri:URI or email:ADDRESS\n", stderr);
    return CLI_EXIT_USAGE;
}

static const cli_opt_t csr_create_opts[] = {
    {"key", 0, "LABEL", "the token key the CSR is for (it signs the request)"},
    {"subject", 0, "DN", "subject, e.g. \"CN=dev-0001,O=Acme,C=DE\" (\"\\,\" for a comma)"},
    {"san", 0, "TYPE:VALUE...", "subject alternative name: dns:NAME, ip:ADDR, uri:URI, "
                                "email:ADDR (repeatable)"},
    {"key-usage", 0, "LIST", "keyUsage to request: digitalSignature,keyCertSign,..."},
    {"eku", 0, "LIST", "extKeyUsage to request: serverAuth,clientAuth,codeSigning,..."},
    {"hash", 0, "HASH", "sha256, sha384 or sha512 (default: by key, SHA-256 for P-256 and RSA)"},
    {"format", 0, "FMT", "pem (default) or der"},
    {"out", 'o', "FILE", "write to FILE (atomically) instead of stdout"},
    {"force", 0, NULL, "write DER to stdout even when it is a terminal"},
    {NULL, 0, NULL, NULL}};

static int csr_create(cli_ctx_t *c)
{
    const char *label = cli_opt(c, "key"), *subject = cli_opt(c, "subject");
    const char *ku = cli_opt(c, "key-usage"), *eku = cli_opt(c, "eku"), *hash = cli_opt(c, "hash");
    const char *sans[CLI_MAX_MULTI];
    hsmc_san_t san[CLI_MAX_MULTI];
    hsmc_ca_policy_t pol;
    hsmc_csr_req_t req;
    hsmc_key_t key;
    uint8_t *buf;
    size_t nsan, i, bound = 0, len = 0;
    hsmc_err_t r;
    cli_out_t out;
    char what[128];
    int rc, fmt;

    if (label == NULL || subject == NULL) {
        cli_err("give --key LABEL and --subject DN");
        return CLI_EXIT_USAGE;
    }
    fmt = parse_format(c, fmt_pem_der);
    if (fmt < 0)
        return CLI_EXIT_USAGE;
    hsmc_csr_req_init(&req);
    req.subject = subject;
    nsan = cli_opt_all(c, "san", sans, CLI_MAX_MULTI);
    for (i = 0; i < nsan; i++)
        if (parse_san(sans[i], &san[i]) != CLI_EXIT_OK)
            return CLI_EXIT_USAGE;
    req.san = nsan > 0 ? san : NULL;
    req.san_count = nsan;
    if (ku != NULL && parse_words("key-usage", ku, ku_words, &req.key_usage) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (eku != NULL && parse_words("eku", eku, eku_words, &req.ext_key_usage) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (hash != NULL) {
        if (strcasecmp(hash, "sha256") == 0)
            req.hash = HSMC_HASH_SHA256;
        else if (strcasecmp(hash, "sha384") == 0)
            req.hash = HSMC_HASH_SHA384;
        else if (strcasecmp(hash, "sha512") == 0)
            req.hash = HSMC_HASH_SHA512;
        else {
            cli_err("--hash: expected sha256, sha384 or sha512");
            return CLI_EXIT_USAGE;
        }
    }
    rc = policy_setup(c, &pol);
    if (rc == CLI_EXIT_OK)
        rc = permit(c, &pol, HSMC_OP_CSR, 0, "cannot create a CSR");
    if (rc == CLI_EXIT_OK)
        rc = cli_open(c, 0);
    if (rc == CLI_EXIT_OK)
        rc = cli_key_open(c, label, &key, 1);
    if (rc != CLI_EXIT_OK)
        return rc;

    snprintf(what, sizeof(what), "cannot create a CSR with key '%.64s'", label);
    r = hsmc_csr_create(&c->h, &key, &req, fmt == 0 ? HSMC_X509_PEM : HSMC_X509_DER, NULL, 0,
                        &bound);
    if (r != HSMC_OK)
        return cli_fail(c, r, what);
    buf = (uint8_t *)malloc(bound + 1);
    if (buf == NULL) {
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    r = hsmc_csr_create(&c->h, &key, &req, fmt == 0 ? HSMC_X509_PEM : HSMC_X509_DER, buf,
                        bound + 1, &len);
    if (r != HSMC_OK) {
        free(buf);
        return cli_fail_hint(c, r, what,
                             r == HSMC_ERR_FORMAT
                                 ? "subject: \"CN=name,O=org,C=DE\" (CN, O, OU, C, ST, L, "
                                   "serialNumber, emailAddress, DC; each once); SANs: dns:, ip:, "
                                   "uri:, email:"
                                 : NULL);
    }
    rc = cli_out_open(&out, cli_opt(c, "out"),
                      (fmt == 1 ? CLI_OUT_BINARY : 0u) | (cli_flag(c, "force") ? CLI_OUT_FORCE : 0u));
    if (rc == CLI_EXIT_OK) {
        rc = cli_out_write(&out, buf, len);
        if (rc == CLI_EXIT_OK)
            rc = cli_out_commit(&out);
        else
            cli_out_abort(&out);
    }
    free(buf);
    if (rc == CLI_EXIT_OK && c->verbose > 0) {
        fputs("hsmc: CSR for key '", stderr);
        cli_put_safe(stderr, key.priv.label, key.priv.label_len);
        fprintf(stderr, "' (%s), %lu bytes, %lu SAN%s\n", hsmc_alg_name(key.alg),
                (unsigned long)len, (unsigned long)nsan, nsan == 1 ? "" : "s");
    }
    return rc;
}

/* ---- ca init ------------------------------------------------------------------------------ */

static const cli_opt_t ca_init_opts[] = {
    {"key", 0, "LABEL", "the root key; generated (purpose ca_root: p384) when missing"},
    {"alg", 0, "ALG", "algorithm when the key is generated: p384, p521, rsa3072, rsa4096"},
    {"subject", 0, "DN", "subject (= issuer) of the root, e.g. \"CN=Acme Root CA,O=Acme,C=DE\""},
    {"ceremony", 0, "REF", "reference of the root key ceremony (required; in the audit record)"},
    {"days", 0, "N", "validity in days (default 7305, at most 9131)"},
    {"operator", 0, "NAME", "who runs the ceremony, for the audit record (default $USER)"},
    {"store", 0, NULL, "also store the certificate on the token next to the key"},
    {"format", 0, "FMT", "pem (default) or der"},
    {"out", 'o', "FILE", "write to FILE (atomically) instead of stdout"},
    {"force", 0, NULL, "write DER to stdout even when it is a terminal"},
    {NULL, 0, NULL, NULL}};

/* 1 when the root profile accepts keys of alg (checked before generating one). */
static int root_alg_ok(const hsmc_ca_policy_t *pol, hsmc_key_alg_t alg)
{
    const hsmc_profile_rules_t *pr = &pol->profile[HSMC_PROFILE_CA_ROOT];
    switch (alg) {
    case HSMC_ALG_P256: return (pr->curves & HSMC_CURVE_P256) != 0;
    case HSMC_ALG_P384: return (pr->curves & HSMC_CURVE_P384) != 0;
    case HSMC_ALG_P521: return (pr->curves & HSMC_CURVE_P521) != 0;
    default: return cli_alg_is_rsa(alg) && cli_alg_bits(alg) >= pr->rsa_min_bits;
    }
}

/* A short note about a certificate just made: subject, serial, validity. */
static void note_cert(const cli_ctx_t *c, const char *what, const uint8_t *der, size_t len)
{
    mbedtls_x509_crt crt;
    char dn[256];
    if (c->quiet)
        return;
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, der, len) == 0 &&
        mbedtls_x509_dn_gets(dn, sizeof(dn), &crt.subject) >= 0) {
        fprintf(stderr, "hsmc: %s '", what);
        cli_put_safe(stderr, dn, strlen(dn));
        fputs("' serial ", stderr);
        put_colon_hex(stderr, crt.serial.p, crt.serial.len);
        fprintf(stderr, ", valid until %04d-%02d-%02d %02d:%02d:%02d UTC\n", crt.valid_to.year,
                crt.valid_to.mon, crt.valid_to.day, crt.valid_to.hour, crt.valid_to.min,
                crt.valid_to.sec);
    }
    mbedtls_x509_crt_free(&crt);
}

static int ca_init(cli_ctx_t *c)
{
    static hsmc_ca_t ca;
    static hsmc_cert_work_t work;
    const char *label = cli_opt(c, "key"), *subject = cli_opt(c, "subject");
    const char *alg_text = cli_opt(c, "alg"), *days = cli_opt(c, "days");
    hsmc_ca_policy_t pol;
    hsmc_issue_req_t req;
    hsmc_key_alg_t alg = HSMC_ALG_NONE;
    hsmc_key_t key;
    hsmc_issued_t info;
    unsigned long long ndays = 0;
    uint8_t *der = NULL;
    size_t bound = 0, len = 0;
    hsmc_err_t r;
    int rc, fmt, created = 0;
    char what[160];

    if (label == NULL || subject == NULL) {
        cli_err("give --key LABEL, --subject DN and --ceremony REF");
        return CLI_EXIT_USAGE;
    }
    fmt = parse_format(c, fmt_pem_der);
    if (fmt < 0)
        return CLI_EXIT_USAGE;
    if (days != NULL && parse_num("days", days, 1, X_DAYS_MAX, &ndays) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (alg_text != NULL && cli_parse_alg("alg", alg_text, &alg) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    rc = policy_setup(c, &pol);
    if (rc != CLI_EXIT_OK)
        return rc;
    /* Role, allow flag and ceremony first: a refused ceremony touches nothing. */
    rc = permit(c, &pol, HSMC_OP_ISSUE, 1, "cannot create a root CA");
    if (rc != CLI_EXIT_OK)
        return rc;
    if (alg != HSMC_ALG_NONE && !root_alg_ok(&pol, alg)) {
        cli_err("--alg %s: a root key must be p384, p521 or RSA of at least %u bits (profile "
                "ca_root)",
                hsmc_alg_name(alg), pol.profile[HSMC_PROFILE_CA_ROOT].rsa_min_bits);
        return CLI_EXIT_POLICY;
    }
    rc = cli_open(c, 0);
    if (rc != CLI_EXIT_OK)
        return rc;

    r = hsmc_key_open(&c->h, label, &key);
    if (r == HSMC_OK && alg != HSMC_ALG_NONE && key.alg != alg) {
        cli_err("key '%.64s' exists and is %s, not %s; leave out --alg to use it, or choose "
                "another --key",
                label, hsmc_alg_name(key.alg), hsmc_alg_name(alg));
        return CLI_EXIT_USAGE;
    }
    if (r == HSMC_ERR_OBJECT_NOT_FOUND) {
        hsmc_key_spec_t spec;
        if (alg == HSMC_ALG_NONE) {
            (void)hsmc_purpose_spec(HSMC_PURPOSE_CA_ROOT, &spec);
        } else {
            memset(&spec, 0, sizeof(spec));
            spec.alg = alg;
            spec.usage = HSMC_USE_SIGN;
        }
        r = hsmc_key_generate(&c->h, label, &spec, &key);
        if (r != HSMC_OK) {
            snprintf(what, sizeof(what), "cannot generate root key '%.64s'", label);
            return cli_fail(c, r, what);
        }
        created = 1;
        cli_note(c, "generated %s key '%.64s' for the root CA", hsmc_alg_name(key.alg), label);
    } else if (r != HSMC_OK) {
        snprintf(what, sizeof(what), "cannot open key '%.64s'", label);
        return cli_fail(c, r, what);
    }

    hsmc_ca_init(&ca);
    r = hsmc_ca_open(&ca, &c->h, &key, NULL, 0, &pol);
    if (r == HSMC_OK) {
        memset(&req, 0, sizeof(req));
        req.profile = HSMC_PROFILE_CA_ROOT;
        req.subject = subject;
        req.days = (unsigned)ndays;
        r = hsmc_ca_issue(&ca, &req, NULL, 0, &bound, NULL);
        der = r == HSMC_OK ? (uint8_t *)malloc(bound) : NULL;
        if (r == HSMC_OK && der == NULL) {
            cli_err("out of memory");
            hsmc_ca_free(&ca);
            return CLI_EXIT_FAIL;
        }
        if (r == HSMC_OK)
            r = hsmc_ca_issue(&ca, &req, der, bound, &len, &info);
    }
    hsmc_ca_free(&ca);
    if (r != HSMC_OK) {
        rc = cli_fail_hint(c, r, "cannot create the root certificate",
                           r == HSMC_ERR_ARG ? "--subject is \"CN=name,O=org,C=DE\" (mbedTLS "
                                               "syntax, \"\\,\" for a comma)"
                                             : NULL);
        free(der);
        /* A key made for this root and left without a certificate only gets in the way of
         * the next try under the same label. */
        if (created && hsmc_key_delete(&c->h, &key) == HSMC_OK)
            cli_note(c, "removed the key '%.64s' generated for it", label);
        return rc;
    }
    rc = write_der(c, cli_opt(c, "out"), "CERTIFICATE", der, len, fmt == 1);
    if (rc == CLI_EXIT_OK) {
        note_cert(c, "root CA", der, len);
        if (cli_flag(c, "store")) {
            r = hsmc_ca_permit(&c->h, &pol, HSMC_OP_CERT_STORE, 0);
            if (r == HSMC_OK)
                r = hsmc_cert_store(&c->h, &key, der, len, &work);
            if (r != HSMC_OK)
                rc = cli_fail_hint(c, r, "the root certificate was made but not stored on the token",
                                   "store it later with `hsmc cert store --key LABEL --cert FILE`");
            else
                cli_note(c, "stored the certificate on the token next to key '%.64s'", label);
        }
    }
    free(der);
    return rc;
}

/* ---- cert issue -------------------------------------------------------------------------- */

static const cli_opt_t issue_opts[] = {
    {"ca-key", 0, "LABEL", "the issuing CA's key on the token"},
    {"ca-cert", 0, "FILE", "CA certificate, then its issuers (PEM or DER; default: the "
                           "certificate stored for --ca-key)"},
    {"profile", 0, "PROFILE", "ca_intermediate, mtls_server, mtls_client or signing"},
    {"csr", 0, "FILE|DIR", "a CSR (PEM or DER), or a directory of *.csr, *.pem, *.der"},
    {"days", 0, "N", "validity in days (default: the profile's)"},
    {"allow-dns", 0, "SUFFIXES", "DNS SANs allowed: example.com,.example.org (* = any)"},
    {"allow-ip", 0, "CIDRS", "IP SANs allowed: 10.0.0.0/8,fd00::/8"},
    {"allow-uri", 0, "PREFIXES", "URI SANs allowed: spiffe://example.org/device/"},
    {"allow-email", 0, "DOMAINS", "e-mail SANs allowed: example.com"},
    {"cn", 0, "GLOB", "every subject CN must match, e.g. 'dev-*'"},
    {"require", 0, "KINDS", "SAN kinds of which one must be present: dns,ip,uri,email or none"},
    {"path-len", 0, "N", "ca_intermediate: pathLenConstraint (default 0)"},
    {"out", 'o', "FILE", "write the certificate to FILE (one CSR; default stdout)"},
    {"out-dir", 0, "DIR", "write NAME.pem (or .der) per CSR into DIR"},
    {"chain", 0, NULL, "PEM: append the CA certificate and its issuers (not the root)"},
    {"format", 0, "FMT", "pem (default) or der"},
    {"ceremony", 0, "REF", "ceremony reference: needed when the CA is a root"},
    {"operator", 0, "NAME", "who issues, for the audit record (default $USER)"},
    {"force", 0, NULL, "write DER to stdout even when it is a terminal"},
    {NULL, 0, NULL, NULL}};

typedef struct issue_run {
    ca_run_t ca;
    hsmc_profile_t profile;
    unsigned days;
    int der;      /* output DER */
    int chain;    /* output the chain (PEM) */
    uint8_t *buf; /* certificate DER */
    size_t cap;
    size_t len;   /* of the last certificate issued */
    char *pem;    /* chain PEM */
    size_t pem_cap;
} issue_run_t;

/* What to do about a refused CSR, from the rule in the detail. */
static const char *issue_hint(hsmc_err_t e, const char *detail, hsmc_profile_t profile)
{
    if (e == HSMC_ERR_POLICY) {
        if (policy_hint(detail) != NULL)
            return policy_hint(detail);
        if (strncmp(detail, "san-dns", 7) == 0)
            return "the CSR names a host outside --allow-dns: if it is legitimate, add its "
                   "suffix to --allow-dns; otherwise reject the request";
        if (strncmp(detail, "san-ip", 6) == 0)
            return "the CSR names an IP address outside --allow-ip: widen --allow-ip only if "
                   "it is legitimate; otherwise reject the request";
        if (strncmp(detail, "san-uri", 7) == 0)
            return "the CSR names a URI outside --allow-uri: add the prefix only if it is "
                   "legitimate; otherwise reject the request";
        if (strncmp(detail, "san-email", 9) == 0)
            return "the CSR names an e-mail address outside --allow-email: reject it or allow "
                   "the domain";
        if (strncmp(detail, "san-kind", 8) == 0)
            return "only DNS, IP, URI and e-mail SANs are certified: ask for a new CSR without "
                   "the others";
        if (strncmp(detail, "san-required", 12) == 0)
            return "ask for a new CSR with such a SAN (hsmc csr create --san ...), or change "
                   "--require";
        if (strncmp(detail, "cn", 2) == 0)
            return "the subject CN must match --cn: ask for a new CSR, or correct --cn";
        if (strncmp(detail, "subject", 7) == 0)
            return "ask for a new CSR with a subject (hsmc csr create --subject CN=...)";
        if (strncmp(detail, "csr-hash", 8) == 0)
            return "ask for a CSR signed with SHA-256 or stronger";
        if (strncmp(detail, "validity", 8) == 0)
            return "choose a smaller --days (the profile's maximum and the CA certificate's "
                   "end limit it), or renew the CA";
        return NULL;
    }
    if (e == HSMC_ERR_CSR_EXT)
        return profile == HSMC_PROFILE_CA_INTERMEDIATE
                   ? NULL
                   : "a leaf certificate cannot be a CA: ask for a new CSR without cA=TRUE, "
                     "keyCertSign or cRLSign; do not issue this one (a sub-CA is --profile "
                     "ca_intermediate, decided by the CA, not the requester)";
    if (e == HSMC_ERR_SIGNATURE)
        return "the CSR's self-signature does not verify: it was changed after signing or "
               "signed with another key; ask for a new CSR and do not issue this one";
    if (e == HSMC_ERR_UNSUPPORTED)
        return "the CSR's key type is not supported (e.g. Ed25519): ask for an EC P-256/384/521 "
               "or RSA key";
    return NULL;
}

/* 1 when a failed issuance concerns the CA or the run, not the one CSR: stop the batch. */
static int issue_fatal(hsmc_err_t e, const char *detail)
{
    switch (e) {
    case HSMC_ERR_POLICY:
        return strncmp(detail, "role:", 5) == 0 || strncmp(detail, "root:", 5) == 0 ||
               strncmp(detail, "validity", 8) == 0 || strncmp(detail, "issuer-", 7) == 0 ||
               strncmp(detail, "profile:", 8) == 0;
    case HSMC_ERR_CSR:
    case HSMC_ERR_CSR_EXT:
    case HSMC_ERR_KEY_WEAK:
    case HSMC_ERR_SIGNATURE:
    case HSMC_ERR_UNSUPPORTED:
    case HSMC_ERR_FORMAT:
    case HSMC_ERR_CERT_KEY:
        return 0;
    default:
        return 1;
    }
}

/*
 * The progress line of a directory run. On a terminal it is drawn in place
 * with the cursor left at its start, so that a message printed by anyone
 * overwrites it; hsmc's own messages erase it first (prog_hide). Elsewhere
 * (and with -v, whose lines would interleave) a line every 10 seconds.
 */
typedef struct batch_prog {
    int tty;        /* draw in place */
    int drawn;      /* the line is on the terminal */
    double t0, last;
    size_t total;
} batch_prog_t;

static batch_prog_t *g_prog; /* the line being drawn, for prog_hide */

/* Erase the progress line (the cursor is at its start) before a message. */
static void prog_hide(void)
{
    if (g_prog != NULL && g_prog->drawn) {
        fputs("\033[K", stderr);
        g_prog->drawn = 0;
    }
}

static void prog_update(const cli_ctx_t *c, batch_prog_t *p, size_t done, size_t failed, int final)
{
    double now = mono_now(), el = now - p->t0;
    size_t seen = done + failed;
    if (c->quiet || (!p->tty && final))
        return; /* without a terminal the summary follows */
    if (!final && now - p->last < (p->tty ? 0.1 : 10.0))
        return;
    p->last = now;
    fprintf(stderr, "%shsmc: %lu/%lu CSRs, %.1f/s, %lu failed%s", p->tty ? "\033[K" : "",
            (unsigned long)seen, (unsigned long)p->total, el > 0 ? (double)seen / el : 0.0,
            (unsigned long)failed, p->tty && !final ? "\r" : "\n");
    p->drawn = p->tty && !final;
    fflush(stderr);
}

/* A heap buffer of at least n bytes: *p itself, or a new one replacing it. @return 0 or -1. */
static int grow_u8(uint8_t **p, size_t *cap, size_t n)
{
    uint8_t *q;
    if (n <= *cap)
        return 0;
    q = (uint8_t *)malloc(n);
    if (q == NULL)
        return -1;
    free(*p);
    *p = q;
    *cap = n;
    return 0;
}

static int grow_char(char **p, size_t *cap, size_t n)
{
    char *q;
    if (n <= *cap)
        return 0;
    q = (char *)malloc(n);
    if (q == NULL)
        return -1;
    free(*p);
    *p = q;
    *cap = n;
    return 0;
}

/*
 * Issue the CSR in csr_path and write it to out_path (NULL: stdout).
 * `name` labels messages. *err gets the library's error (HSMC_OK for
 * failures outside it); *fatal is set when the failure is not the CSR's
 * (the CA, the token, the output), so a batch stops. @return an exit code
 * (printed).
 */
static int issue_one(cli_ctx_t *c, issue_run_t *x, const char *csr_path, const char *out_path,
                     const char *name, hsmc_err_t *err, int *fatal)
{
    unsigned char *csr = NULL;
    size_t csr_len = 0, bound = 0, len = 0, plen = 0;
    struct stat st;
    hsmc_issue_req_t req;
    hsmc_err_t e;
    cli_out_t out;
    char what[512];
    int rc;

    *err = HSMC_OK;
    *fatal = 0;
    /* cli_read_file prints its own errors: erase the progress line when one is coming. */
    if (stat(csr_path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)X_FILE_MAX ||
        access(csr_path, R_OK) != 0)
        prog_hide();
    rc = cli_read_file(csr_path, X_FILE_MAX, name, &csr, &csr_len);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (csr_len == 0) {
        cli_free(csr, csr_len);
        prog_hide();
        cli_err("%s: the file is empty; ask for the CSR again", name);
        return CLI_EXIT_FAIL;
    }
    memset(&req, 0, sizeof(req));
    req.profile = x->profile;
    req.csr = csr;
    req.csr_len = csr_len;
    req.days = x->days;
    snprintf(what, sizeof(what), "%s: cannot issue a certificate (profile %s)", name,
             hsmc_profile_name(x->profile));
    e = hsmc_ca_issue(&x->ca.ca, &req, NULL, 0, &bound, NULL);
    if (e == HSMC_OK && grow_u8(&x->buf, &x->cap, bound) != 0) {
        cli_free(csr, csr_len);
        prog_hide();
        cli_err("out of memory");
        *fatal = 1;
        return CLI_EXIT_FAIL;
    }
    if (e == HSMC_OK)
        e = hsmc_ca_issue(&x->ca.ca, &req, x->buf, x->cap, &len, NULL);
    cli_free(csr, csr_len);
    x->len = e == HSMC_OK ? len : 0;
    if (e != HSMC_OK) {
        *err = e;
        *fatal = issue_fatal(e, hsmc_detail(&c->h));
        prog_hide();
        return cli_fail_hint(c, e, what, issue_hint(e, hsmc_detail(&c->h), x->profile));
    }
    if (x->chain) {
        e = hsmc_ca_chain_pem(&x->ca.ca, x->buf, len, NULL, 0, &plen);
        *fatal = 1;
        if (e == HSMC_OK && grow_char(&x->pem, &x->pem_cap, plen + 1) != 0) {
            prog_hide();
            cli_err("out of memory");
            return CLI_EXIT_FAIL;
        }
        if (e == HSMC_OK)
            e = hsmc_ca_chain_pem(&x->ca.ca, x->buf, len, x->pem, x->pem_cap, &plen);
        if (e != HSMC_OK) {
            *err = e;
            prog_hide();
            return cli_fail(c, e, what);
        }
        *fatal = 0;
    }
    /* From here on a failure is the output's (directory, disk): it would repeat. */
    rc = cli_out_open(&out, out_path,
                      (x->der ? CLI_OUT_BINARY : 0u) | (cli_flag(c, "force") ? CLI_OUT_FORCE : 0u));
    *fatal = rc != CLI_EXIT_OK;
    if (rc != CLI_EXIT_OK)
        return rc;
    if (x->chain)
        rc = cli_out_write(&out, x->pem, plen);
    else if (x->der)
        rc = cli_out_write(&out, x->buf, len);
    else
        rc = cli_pem_write(&out, "CERTIFICATE", x->buf, len);
    if (rc == CLI_EXIT_OK)
        rc = cli_out_commit(&out);
    else
        cli_out_abort(&out);
    *fatal = rc != CLI_EXIT_OK;
    return rc;
}

/* One CSR of a directory run. */
typedef struct batch_item {
    char *path;    /* DIR/NAME */
    char *name;    /* NAME */
    char *out;     /* OUTDIR/STEM.pem */
    int failed;
} batch_item_t;

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const batch_item_t *)a)->name, ((const batch_item_t *)b)->name);
}

/* 1 for *.csr, *.pem, *.der (case-insensitive); *stem_len gets the name without it. */
static int csr_name(const char *n, size_t *stem_len)
{
    static const char *const ext[] = {".csr", ".pem", ".der", NULL};
    size_t len = strlen(n), i;
    if (n[0] == '.')
        return 0;
    for (i = 0; ext[i] != NULL; i++) {
        if (len > 4 && strcasecmp(n + len - 4, ext[i]) == 0) {
            *stem_len = len - 4;
            return 1;
        }
    }
    return 0;
}

static void free_items(batch_item_t *it, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        free(it[i].path);
        free(it[i].name);
        free(it[i].out);
    }
    free(it);
}

/* Join dir and name (+ suffix) into a new string; NULL when out of memory. */
static char *join(const char *dir, const char *name, size_t name_len, const char *suffix)
{
    size_t dl = strlen(dir), sl = strlen(suffix);
    char *s = (char *)malloc(dl + 1 + name_len + sl + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, dir, dl);
    s[dl] = '/';
    memcpy(s + dl + 1, name, name_len);
    memcpy(s + dl + 1 + name_len, suffix, sl + 1);
    return s;
}

/*
 * The CSRs of a directory, sorted by name, with their output paths.
 * @return CLI_EXIT_OK or an exit code (printed).
 */
static int list_csrs(const char *dir, const char *out_dir, int der, batch_item_t **items,
                     size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    batch_item_t *it = NULL;
    size_t n = 0, cap = 0, i;

    *items = NULL;
    *count = 0;
    if (d == NULL) {
        cli_err("--csr: cannot read directory %s: %s", dir, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    while ((de = readdir(d)) != NULL) {
        size_t stem = 0;
        struct stat st;
        char *path;
        if (!csr_name(de->d_name, &stem))
            continue;
        path = join(dir, de->d_name, strlen(de->d_name), "");
        if (path == NULL || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            batch_item_t *ni = (batch_item_t *)realloc(it, ncap * sizeof(*ni));
            if (ni == NULL) {
                free(path);
                break;
            }
            it = ni;
            cap = ncap;
        }
        it[n].path = path;
        it[n].name = strdup(de->d_name);
        it[n].out = join(out_dir, de->d_name, stem, der ? ".der" : ".pem");
        it[n].failed = 0;
        n++;
        if (it[n - 1].name == NULL || it[n - 1].out == NULL)
            break;
    }
    closedir(d);
    if (de != NULL) {
        free_items(it, n);
        cli_err("out of memory listing %s", dir);
        return CLI_EXIT_FAIL;
    }
    if (n == 0) {
        free(it);
        cli_err("--csr: no *.csr, *.pem or *.der files in %s", dir);
        return CLI_EXIT_USAGE;
    }
    qsort(it, n, sizeof(*it), cmp_item);
    /* dev1.csr and dev1.pem would write the same certificate file. */
    for (i = 0; i + 1 < n; i++) {
        size_t k;
        for (k = i + 1; k < n; k++) {
            if (strcmp(it[i].out, it[k].out) == 0) {
                cli_err("--csr: %s and %s would both be written to %s; rename one", it[i].name,
                        it[k].name, it[i].out);
                free_items(it, n);
                return CLI_EXIT_USAGE;
            }
        }
    }
    *items = it;
    *count = n;
    return CLI_EXIT_OK;
}

/* 1 when a and b are the same directory. */
static int same_dir(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static int issue_dir(cli_ctx_t *c, issue_run_t *x, const char *dir, const char *out_dir)
{
    batch_item_t *it = NULL;
    size_t n = 0, i, done = 0, failed = 0, listed = 0;
    batch_prog_t prog;
    int rc, first_fail = CLI_EXIT_OK, mixed = 0, stopped = 0, stop_rc = CLI_EXIT_OK;
    double el;

    rc = list_csrs(dir, out_dir, x->der, &it, &n);
    if (rc != CLI_EXIT_OK)
        return rc;
    memset(&prog, 0, sizeof(prog));
    prog.tty = isatty(STDERR_FILENO) && c->verbose == 0;
    prog.total = n;
    prog.t0 = prog.last = mono_now();
    g_prog = &prog;
    for (i = 0; i < n; i++) {
        hsmc_err_t e = HSMC_OK;
        int fatal = 0;
        rc = issue_one(c, x, it[i].path, it[i].out, it[i].name, &e, &fatal);
        if (rc == CLI_EXIT_OK) {
            done++;
        } else {
            failed++;
            it[i].failed = 1;
            if (first_fail == CLI_EXIT_OK)
                first_fail = rc;
            else if (rc != first_fail)
                mixed = 1;
            /* Errors of the CA, the token or the output directory would repeat for every
             * CSR: stop at the first. */
            if (fatal) {
                stopped = 1;
                stop_rc = rc;
                break;
            }
        }
        prog_update(c, &prog, done, failed, 0);
    }
    prog_update(c, &prog, done, failed, 1);
    g_prog = NULL;
    el = mono_now() - prog.t0;
    fprintf(stderr, "hsmc: %lu of %lu CSRs issued, %lu failed", (unsigned long)done,
            (unsigned long)n, (unsigned long)failed);
    if (failed > 0) {
        fputs(" (", stderr);
        for (i = 0; i < n; i++) {
            if (!it[i].failed)
                continue;
            if (listed == X_SUMMARY_NAMES) {
                fputs(", ...", stderr);
                break;
            }
            fputs(listed++ ? ", " : "", stderr);
            cli_put_safe(stderr, it[i].name, strlen(it[i].name));
        }
        fputs(")", stderr);
    }
    fprintf(stderr, " in %.2f s (%.1f certificates/s)\n", el, el > 0 ? (double)done / el : 0.0);
    if (stopped)
        fprintf(stderr, "hsmc: stopped after that error: %lu CSR%s not tried\n",
                (unsigned long)(n - done - failed), n - done - failed == 1 ? "" : "s");
    free_items(it, n);
    if (failed == 0)
        return CLI_EXIT_OK;
    if (stopped)
        return stop_rc;
    return mixed ? CLI_EXIT_FAIL : first_fail;
}

/* --require dns,ip,uri,email|none -> HSMC_REQ_* bits. */
static int parse_require(const char *text, unsigned *req)
{
    static const cli_flag_word_t kinds[] = {{HSMC_REQ_DNS, "dns"},
                                            {HSMC_REQ_IP, "ip"},
                                            {HSMC_REQ_URI, "uri"},
                                            {HSMC_REQ_EMAIL, "email"},
                                            {0, NULL}};
    if (strcmp(text, "none") == 0) {
        *req = 0;
        return CLI_EXIT_OK;
    }
    return parse_words("require", text, kinds, req);
}

static int cert_issue(cli_ctx_t *c)
{
    static issue_run_t x;
    const char *csr = cli_opt(c, "csr"), *prof = cli_opt(c, "profile");
    const char *out = cli_opt(c, "out"), *out_dir = cli_opt(c, "out-dir");
    const char *days = cli_opt(c, "days"), *req = cli_opt(c, "require");
    const char *pl = cli_opt(c, "path-len");
    hsmc_profile_rules_t *rules;
    struct stat st;
    unsigned long long v = 0;
    int rc, fmt, is_dir;

    memset(&x, 0, sizeof(x));
    if (cli_opt(c, "ca-key") == NULL || prof == NULL || csr == NULL) {
        cli_err("give --ca-key LABEL, --profile PROFILE and --csr FILE|DIR");
        return CLI_EXIT_USAGE;
    }
    if (hsmc_profile_parse(prof, &x.profile) != HSMC_OK) {
        fputs("hsmc: --profile: unknown profile '", stderr);
        cli_put_safe(stderr, prof, strlen(prof));
        fputs("'\nhsmc:   hint: ca_intermediate, mtls_server, mtls_client or signing\n", stderr);
        return CLI_EXIT_USAGE;
    }
    if (x.profile == HSMC_PROFILE_CA_ROOT) {
        cli_err("--profile ca_root: a root certificate is made by `hsmc ca init` (key ceremony, "
                "self-signed), not issued from a CSR");
        return CLI_EXIT_USAGE;
    }
    fmt = parse_format(c, fmt_pem_der);
    if (fmt < 0)
        return CLI_EXIT_USAGE;
    x.der = fmt == 1;
    x.chain = cli_flag(c, "chain");
    if (x.chain && x.der) {
        cli_err("--chain writes PEM (several certificates); DER holds one");
        return CLI_EXIT_USAGE;
    }
    if (out != NULL && out_dir != NULL) {
        cli_err("give --out FILE (one CSR) or --out-dir DIR, not both");
        return CLI_EXIT_USAGE;
    }
    if (stat(csr, &st) != 0) {
        cli_err("--csr: %s: %s", csr, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    is_dir = S_ISDIR(st.st_mode);
    if (is_dir && out_dir == NULL) {
        cli_err("--csr is a directory: give --out-dir DIR for the certificates");
        return CLI_EXIT_USAGE;
    }
    if (out_dir != NULL && (stat(out_dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
        cli_err("--out-dir: %s is not a directory", out_dir);
        return CLI_EXIT_USAGE;
    }
    if (is_dir && same_dir(csr, out_dir)) {
        cli_err("--out-dir must differ from the --csr directory (certificates would be taken for "
                "CSRs next time)");
        return CLI_EXIT_USAGE;
    }
    if (days != NULL) {
        if (parse_num("days", days, 1, X_DAYS_MAX, &v) != CLI_EXIT_OK)
            return CLI_EXIT_USAGE;
        x.days = (unsigned)v;
    }
    rc = policy_setup(c, &x.ca.pol);
    if (rc != CLI_EXIT_OK)
        return rc;
    rules = &x.ca.pol.profile[x.profile];
    rules->names.dns = cli_opt(c, "allow-dns");
    rules->names.ip = cli_opt(c, "allow-ip");
    rules->names.uri = cli_opt(c, "allow-uri");
    rules->names.email = cli_opt(c, "allow-email");
    rules->names.cn = cli_opt(c, "cn");
    if (req != NULL && parse_require(req, &rules->names.require) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (pl != NULL) {
        if (x.profile != HSMC_PROFILE_CA_INTERMEDIATE) {
            cli_err("--path-len is for --profile ca_intermediate");
            return CLI_EXIT_USAGE;
        }
        if (parse_num("path-len", pl, 0, 16, &v) != CLI_EXIT_OK)
            return CLI_EXIT_USAGE;
        rules->path_len = (int)v;
    }
    /* The role before anything is opened; the root gate, when the CA is a root, at issuance. */
    rc = permit(c, &x.ca.pol, HSMC_OP_ISSUE, 0, "cannot issue certificates");
    if (rc == CLI_EXIT_OK)
        rc = ca_run_open(c, &x.ca);
    if (rc == CLI_EXIT_OK) {
        if (is_dir) {
            rc = issue_dir(c, &x, csr, out_dir);
        } else {
            hsmc_err_t e;
            char *path = NULL;
            int fatal = 0;
            if (out_dir != NULL) {
                const char *base = strrchr(csr, '/');
                size_t stem = 0;
                base = base != NULL ? base + 1 : csr;
                if (!csr_name(base, &stem))
                    stem = strlen(base);
                path = join(out_dir, base, stem, x.der ? ".der" : ".pem");
                if (path == NULL) {
                    cli_err("out of memory");
                    ca_run_free(&x.ca);
                    return CLI_EXIT_FAIL;
                }
            }
            rc = issue_one(c, &x, csr, path != NULL ? path : out, csr, &e, &fatal);
            if (rc == CLI_EXIT_OK && (path != NULL || out != NULL))
                note_cert(c, "issued", x.buf, x.len);
            free(path);
        }
    }
    ca_run_free(&x.ca);
    free(x.buf);
    free(x.pem);
    return rc;
}

/* ---- cert store ----------------------------------------------------------------------------- */

static const cli_opt_t store_opts[] = {
    {"key", 0, "LABEL", "the key the certificate belongs to"},
    {"cert", 0, "FILE", "the certificate, PEM (the first block) or DER"},
    {NULL, 0, NULL, NULL}};

static int cert_store(cli_ctx_t *c)
{
    static hsmc_cert_work_t work;
    const char *label = cli_opt(c, "key"), *file = cli_opt(c, "cert");
    hsmc_ca_policy_t pol;
    unsigned char *der = NULL;
    size_t len = 0;
    hsmc_key_t key;
    hsmc_err_t r;
    char what[160], id[2 * HSMC_MAX_ID_LEN + 1];
    int rc;

    if (label == NULL || file == NULL) {
        cli_err("give --key LABEL and --cert FILE");
        return CLI_EXIT_USAGE;
    }
    rc = read_certs("--cert", file, 1, &der, &len);
    if (rc != CLI_EXIT_OK)
        return rc;
    rc = policy_setup(c, &pol);
    if (rc == CLI_EXIT_OK)
        rc = permit(c, &pol, HSMC_OP_CERT_STORE, 0, "cannot store the certificate");
    if (rc == CLI_EXIT_OK)
        rc = cli_open(c, 0);
    if (rc == CLI_EXIT_OK)
        rc = cli_key_open(c, label, &key, 1);
    if (rc != CLI_EXIT_OK) {
        free(der);
        return rc;
    }
    r = hsmc_cert_store(&c->h, &key, der, len, &work);
    if (r != HSMC_OK) {
        snprintf(what, sizeof(what), "cannot store %s for key '%.64s'", file, label);
        free(der);
        return cli_fail_hint(c, r, what,
                             r == HSMC_ERR_FORMAT ? "--cert must hold one X.509 certificate "
                                                    "(PEM CERTIFICATE or DER)"
                                                  : NULL);
    }
    cli_hex(id, sizeof(id), key.priv.id, key.priv.id_len);
    fputs("stored certificate for key '", stdout);
    cli_put_safe(stdout, key.priv.label, key.priv.label_len);
    printf("' (id=%s)\n", key.priv.id_len > 0 ? id : "-");
    note_cert(c, "certificate", der, len);
    free(der);
    return CLI_EXIT_OK;
}

/* ---- cert show ------------------------------------------------------------------------------ */

static const cli_opt_t show_opts[] = {
    {"key", 0, "LABEL", "the certificate stored on the token for this key (needs the PIN)"},
    {"label", 0, "LABEL", "the certificate object with this label on the token"},
    {"cert", 0, "FILE", "a certificate file, PEM (the first block) or DER (no token needed)"},
    {"format", 0, "FMT", "text (default), pem or der"},
    {"out", 'o', "FILE", "write to FILE (atomically) instead of stdout"},
    {"force", 0, NULL, "write DER to stdout even when it is a terminal"},
    {NULL, 0, NULL, NULL}};

static void put_time(FILE *f, const char *label, const mbedtls_x509_time *t)
{
    fprintf(f, "%-21s%04d-%02d-%02d %02d:%02d:%02d UTC\n", label, t->year, t->mon, t->day,
            t->hour, t->min, t->sec);
}

/* Subject alternative names as openssl -text words (DNS:, IP Address:, URI:, email:). */
static void put_sans(FILE *f, const mbedtls_x509_sequence *s)
{
    int first = 1;
    fprintf(f, "%-21s", "SANs:");
    for (; s != NULL && s->buf.p != NULL; s = s->next) {
        const unsigned char *v = s->buf.p;
        size_t n = s->buf.len, i;
        fputs(first ? "" : ", ", f);
        first = 0;
        switch (s->buf.tag & 0x1f) {
        case 1: fputs("email:", f); cli_put_safe(f, (const char *)v, n); break;
        case 2: fputs("DNS:", f); cli_put_safe(f, (const char *)v, n); break;
        case 6: fputs("URI:", f); cli_put_safe(f, (const char *)v, n); break;
        case 7:
            fputs("IP:", f);
            if (n == 4) {
                fprintf(f, "%u.%u.%u.%u", v[0], v[1], v[2], v[3]);
            } else if (n == 16) {
                for (i = 0; i < 16; i += 2)
                    fprintf(f, "%s%x", i ? ":" : "", (unsigned)(v[i] << 8 | v[i + 1]));
            } else {
                fputs("?", f);
            }
            break;
        default: fprintf(f, "other(tag 0x%02x)", (unsigned)s->buf.tag); break;
        }
    }
    fputs(first ? "none\n" : "\n", f);
}

static void put_eku(FILE *f, const mbedtls_x509_sequence *s)
{
    static const struct {
        const char *oid;
        size_t len;
        const char *name;
    } k[] = {{MBEDTLS_OID_SERVER_AUTH, sizeof(MBEDTLS_OID_SERVER_AUTH) - 1, "serverAuth"},
             {MBEDTLS_OID_CLIENT_AUTH, sizeof(MBEDTLS_OID_CLIENT_AUTH) - 1, "clientAuth"},
             {MBEDTLS_OID_CODE_SIGNING, sizeof(MBEDTLS_OID_CODE_SIGNING) - 1, "codeSigning"},
             {MBEDTLS_OID_EMAIL_PROTECTION, sizeof(MBEDTLS_OID_EMAIL_PROTECTION) - 1,
              "emailProtection"},
             {MBEDTLS_OID_TIME_STAMPING, sizeof(MBEDTLS_OID_TIME_STAMPING) - 1, "timeStamping"},
             {MBEDTLS_OID_OCSP_SIGNING, sizeof(MBEDTLS_OID_OCSP_SIGNING) - 1, "OCSPSigning"},
             {NULL, 0, NULL}};
    int first = 1;
    fprintf(f, "%-21s", "Extended key usage:");
    for (; s != NULL && s->buf.p != NULL; s = s->next) {
        size_t i;
        char num[64];
        for (i = 0; k[i].oid != NULL; i++)
            if (s->buf.len == k[i].len && memcmp(s->buf.p, k[i].oid, k[i].len) == 0)
                break;
        fputs(first ? "" : ", ", f);
        first = 0;
        if (k[i].oid != NULL)
            fputs(k[i].name, f);
        else if (mbedtls_oid_get_numeric_string(num, sizeof(num), &s->buf) > 0)
            fputs(num, f);
        else
            fputs("?", f);
    }
    fputs(first ? "none\n" : "\n", f);
}

/* The text form of `cert show`. @return CLI_EXIT_OK or an exit code (printed). */
static int show_text(FILE *f, const uint8_t *der, size_t len)
{
    mbedtls_x509_crt crt;
    uint8_t md[32];
    char dn[1024];
    const char *desc = NULL;
    int ret;

    mbedtls_x509_crt_init(&crt);
    ret = mbedtls_x509_crt_parse_der(&crt, der, len);
    if (ret != 0) {
        mbedtls_x509_crt_free(&crt);
        cli_err("not an X.509 certificate mbedTLS can parse (mbedTLS -0x%04x)",
                (unsigned)-ret);
        return CLI_EXIT_FAIL;
    }
    if (mbedtls_x509_dn_gets(dn, sizeof(dn), &crt.subject) < 0)
        dn[0] = '\0';
    fprintf(f, "%-21s", "Subject:");
    cli_put_safe(f, dn, strlen(dn));
    if (mbedtls_x509_dn_gets(dn, sizeof(dn), &crt.issuer) < 0)
        dn[0] = '\0';
    fprintf(f, "\n%-21s", "Issuer:");
    cli_put_safe(f, dn, strlen(dn));
    fprintf(f, "\n%-21s", "Serial:");
    put_colon_hex(f, crt.serial.p, crt.serial.len);
    fputc('\n', f);
    put_time(f, "Not before:", &crt.valid_from);
    put_time(f, "Not after:", &crt.valid_to);
    put_sans(f, (crt.ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME) ? &crt.subject_alt_names
                                                                    : NULL);
    fprintf(f, "%-21s", "Key usage:");
    if (crt.ext_types & MBEDTLS_X509_EXT_KEY_USAGE)
        cli_put_flags(f, crt.key_usage, ku_words);
    else
        fputs("none", f);
    fputc('\n', f);
    put_eku(f, (crt.ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE) ? &crt.ext_key_usage : NULL);
    fprintf(f, "%-21s", "Basic constraints:");
    if (!(crt.ext_types & MBEDTLS_X509_EXT_BASIC_CONSTRAINTS))
        fputs("none\n", f);
    else if (!crt.ca_istrue)
        fputs("CA:FALSE\n", f);
    else if (crt.max_pathlen > 0)
        fprintf(f, "CA:TRUE, pathlen:%d\n", crt.max_pathlen - 1);
    else
        fputs("CA:TRUE\n", f);
    fprintf(f, "%-21s", "Public key:");
    if (mbedtls_pk_get_type(&crt.pk) == MBEDTLS_PK_ECKEY) {
        const mbedtls_ecp_curve_info *ci =
            mbedtls_ecp_curve_info_from_grp_id(mbedtls_pk_ec(crt.pk)->grp.id);
        fprintf(f, "EC %s (%lu bits)\n", ci != NULL ? ci->name : "?",
                (unsigned long)mbedtls_pk_get_bitlen(&crt.pk));
    } else {
        fprintf(f, "%s %lu bits\n", mbedtls_pk_get_name(&crt.pk),
                (unsigned long)mbedtls_pk_get_bitlen(&crt.pk));
    }
    if (mbedtls_oid_get_sig_alg_desc(&crt.sig_oid, &desc) != 0)
        desc = "?";
    fprintf(f, "%-21s%s\n", "Signature:", desc);
    fprintf(f, "%-21s", "SPKI SHA-256:");
    if (hsmc_hash(HSMC_HASH_SHA256, crt.pk_raw.p, crt.pk_raw.len, md) == HSMC_OK) {
        char hex[65];
        cli_hex(hex, sizeof(hex), md, sizeof(md));
        fputs(hex, f);
    }
    fprintf(f, "\n%-21s", "SHA-256 fingerprint:");
    if (hsmc_hash(HSMC_HASH_SHA256, crt.raw.p, crt.raw.len, md) == HSMC_OK)
        put_colon_hex(f, md, sizeof(md));
    fputc('\n', f);
    mbedtls_x509_crt_free(&crt);
    return CLI_EXIT_OK;
}

static int cert_show(cli_ctx_t *c)
{
    static const char *const fmts[] = {"text", "pem", "der", NULL};
    const char *label = cli_opt(c, "key"), *obj = cli_opt(c, "label"), *file = cli_opt(c, "cert");
    unsigned char *der = NULL;
    size_t len = 0;
    hsmc_err_t r = HSMC_OK;
    int rc, fmt;

    if ((label != NULL) + (obj != NULL) + (file != NULL) != 1) {
        cli_err("give one of --key LABEL, --label LABEL or --cert FILE");
        return CLI_EXIT_USAGE;
    }
    fmt = parse_format(c, fmts);
    if (fmt < 0)
        return CLI_EXIT_USAGE;
    if (file != NULL) {
        rc = read_certs("--cert", file, 1, &der, &len);
        if (rc != CLI_EXIT_OK)
            return rc;
    } else {
        hsmc_key_t key;
        size_t n = 0;
        char what[160];
        rc = cli_open(c, 0);
        if (rc == CLI_EXIT_OK && label != NULL)
            rc = cli_key_open(c, label, &key, 1);
        if (rc != CLI_EXIT_OK)
            return rc;
        r = label != NULL ? hsmc_cert_load(&c->h, &key, NULL, 0, &n)
                          : hsmc_cert_load_label(&c->h, obj, NULL, 0, &n);
        if (r == HSMC_OK || r == HSMC_ERR_BUFFER) {
            der = (unsigned char *)malloc(n > 0 ? n : 1);
            if (der == NULL) {
                cli_err("out of memory");
                return CLI_EXIT_FAIL;
            }
            r = label != NULL ? hsmc_cert_load(&c->h, &key, der, n, &len)
                              : hsmc_cert_load_label(&c->h, obj, der, n, &len);
        }
        if (r != HSMC_OK) {
            free(der);
            snprintf(what, sizeof(what), "no certificate %s '%.64s'",
                     label != NULL ? "stored for key" : "labelled", label != NULL ? label : obj);
            return cli_fail_hint(c, r, what,
                                 r == HSMC_ERR_OBJECT_NOT_FOUND
                                     ? "store one with `hsmc cert store --key LABEL --cert FILE`; "
                                       "`hsmc object list --type cert` lists the certificates"
                                     : NULL);
        }
    }
    if (fmt == 0) {
        cli_out_t out;
        rc = cli_out_open(&out, cli_opt(c, "out"), 0);
        if (rc == CLI_EXIT_OK) {
            rc = show_text(out.f, der, len);
            if (rc == CLI_EXIT_OK && ferror(out.f))
                out.failed = 1;
            if (rc == CLI_EXIT_OK)
                rc = cli_out_commit(&out);
            else
                cli_out_abort(&out);
        }
    } else {
        rc = write_der(c, cli_opt(c, "out"), "CERTIFICATE", der, len, fmt == 2);
    }
    free(der);
    return rc;
}

/* ---- crl gen -------------------------------------------------------------------------------- */

static const cli_opt_t crl_opts[] = {
    {"ca-key", 0, "LABEL", "the CA's key on the token"},
    {"ca-cert", 0, "FILE", "CA certificate (then its issuers), PEM or DER; default: the "
                           "certificate stored for --ca-key"},
    {"revoked", 0, "FILE", "revoked serials, one per line: SERIAL [YYYYMMDDhhmmssZ] [REASON]"},
    {"next-update-hours", 0, "N", "nextUpdate = now + N hours (default 168)"},
    {"number", 0, "N", "cRLNumber (default: the current time in seconds)"},
    {"format", 0, "FMT", "pem (default) or der"},
    {"out", 'o', "FILE", "write to FILE (atomically) instead of stdout"},
    {"ceremony", 0, "REF", "ceremony reference: needed when the CA is a root"},
    {"operator", 0, "NAME", "who signs, for the audit record (default $USER)"},
    {"force", 0, NULL, "write DER to stdout even when it is a terminal"},
    {NULL, 0, NULL, NULL}};

/* Parse the revocation list. *list is a heap array (free). @return exit code (printed). */
static int read_revoked(const char *path, hsmc_revoked_t **list, size_t *count)
{
    unsigned char *buf = NULL;
    size_t blen = 0, off = 0, n = 0, cap = 0, line = 0;
    hsmc_revoked_t *v = NULL;
    int rc;

    *list = NULL;
    *count = 0;
    rc = cli_read_file(path, X_REVOKED_MAX, "--revoked", &buf, &blen);
    if (rc != CLI_EXIT_OK)
        return rc;
    while (off < blen) {
        const char *s = (const char *)buf + off;
        size_t l = strcspn(s, "\n"), k = l;
        hsmc_revoked_t one;
        hsmc_err_t r;
        line++;
        off += l + (off + l < blen ? 1 : 0);
        if (k > 0 && s[k - 1] == '\r')
            k--;
        r = hsmc_crl_parse_line(s, k, &one);
        if (r == HSMC_ERR_OBJECT_NOT_FOUND)
            continue; /* blank or comment */
        if (r != HSMC_OK) {
            fprintf(stderr, "hsmc: --revoked: %s line %lu: '", path, (unsigned long)line);
            cli_put_safe(stderr, s, k > 80 ? 80 : k);
            fputs("' is not SERIAL [YYYYMMDDhhmmssZ] [REASON]\nhsmc:   hint: SERIAL in hex "
                  "(0a1b, 0A:1B or 0x0a1b, 1 to 20 bytes), REASON e.g. keyCompromise, "
                  "superseded, cessationOfOperation\n",
                  stderr);
            free(v);
            free(buf);
            return CLI_EXIT_FAIL;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            hsmc_revoked_t *nv = (hsmc_revoked_t *)realloc(v, ncap * sizeof(*nv));
            if (nv == NULL) {
                free(v);
                free(buf);
                cli_err("out of memory reading %s", path);
                return CLI_EXIT_FAIL;
            }
            v = nv;
            cap = ncap;
        }
        v[n++] = one;
    }
    free(buf);
    *list = v;
    *count = n;
    return CLI_EXIT_OK;
}

static int crl_gen(cli_ctx_t *c)
{
    static ca_run_t r;
    const char *revoked = cli_opt(c, "revoked"), *hours = cli_opt(c, "next-update-hours");
    const char *number = cli_opt(c, "number");
    hsmc_revoked_t *list = NULL;
    size_t count = 0, bound = 0, len = 0;
    hsmc_crl_req_t req;
    unsigned long long v = 0;
    uint8_t *der = NULL;
    hsmc_err_t e;
    int rc, fmt;

    memset(&r, 0, sizeof(r));
    memset(&req, 0, sizeof(req));
    if (cli_opt(c, "ca-key") == NULL || revoked == NULL) {
        cli_err("give --ca-key LABEL and --revoked FILE (an empty file for a CRL without "
                "entries)");
        return CLI_EXIT_USAGE;
    }
    fmt = parse_format(c, fmt_pem_der);
    if (fmt < 0)
        return CLI_EXIT_USAGE;
    if (hours != NULL) {
        if (parse_num("next-update-hours", hours, 1, 24ull * 3660u, &v) != CLI_EXIT_OK)
            return CLI_EXIT_USAGE;
        req.next_update_hours = (unsigned)v;
    }
    if (number != NULL) {
        if (parse_num("number", number, 1, 0xffffffffffffffffull, &v) != CLI_EXIT_OK)
            return CLI_EXIT_USAGE;
        req.number = (uint64_t)v;
    }
    rc = read_revoked(revoked, &list, &count);
    if (rc != CLI_EXIT_OK)
        return rc;
    req.revoked = list;
    req.count = count;
    rc = policy_setup(c, &r.pol);
    if (rc == CLI_EXIT_OK)
        rc = permit(c, &r.pol, HSMC_OP_CRL, 0, "cannot sign a CRL");
    if (rc == CLI_EXIT_OK)
        rc = ca_run_open(c, &r);
    if (rc == CLI_EXIT_OK) {
        e = hsmc_ca_crl(&r.ca, &req, NULL, 0, &bound);
        der = e == HSMC_OK ? (uint8_t *)malloc(bound) : NULL;
        if (e == HSMC_OK && der == NULL) {
            cli_err("out of memory");
            rc = CLI_EXIT_FAIL;
        } else {
            if (e == HSMC_OK)
                e = hsmc_ca_crl(&r.ca, &req, der, bound, &len);
            if (e != HSMC_OK)
                rc = cli_fail(c, e, "cannot sign the CRL");
            else
                rc = write_der(c, cli_opt(c, "out"), "X509 CRL", der, len, fmt == 1);
        }
        if (rc == CLI_EXIT_OK)
            cli_note(c, "CRL with %lu revoked certificate%s, next update in %u hours",
                     (unsigned long)count, count == 1 ? "" : "s",
                     req.next_update_hours ? req.next_update_hours : 168u);
    }
    ca_run_free(&r);
    free(der);
    free(list);
    return rc;
}

/* ---- the groups -------------------------------------------------------------------------------- */

static const cli_cmd_t csr_cmds[] = {
    {"create", "make a CSR (PKCS#10) signed by a token key",
     "--key LABEL --subject DN [--san TYPE:VALUE ...] [--key-usage LIST] [--eku LIST] "
     "[--format pem|der] [--out FILE]",
     "Writes a certificate signing request for the token key: the subject, the\n"
     "subject alternative names (dns:, ip:, uri:, email:; up to 16), and keyUsage /\n"
     "extKeyUsage requests, signed in the token (ECDSA with SHA-256 for P-256,\n"
     "SHA-384 for P-384, SHA-512 for P-521; RSA PKCS#1 v1.5 with SHA-256). openssl req\n"
     "-verify accepts it. A request is a request: the CA decides what it certifies.\n"
     "Subject syntax: \"CN=dev-0001,O=Acme,OU=Gateways,C=DE,serialNumber=0001\";\n"
     "\"\\,\" is a comma in a value; each attribute once.\n"
     "Key usage words: digitalSignature nonRepudiation keyEncipherment\n"
     "dataEncipherment keyAgreement keyCertSign cRLSign encipherOnly decipherOnly.\n"
     "EKU words: serverAuth clientAuth codeSigning emailProtection timeStamping\n"
     "OCSPSigning. HSMC_ROLE (ca, app, any) must allow CSRs (all do).",
     "  hsmc key gen --label dev-0001 --purpose mtls_client\n"
     "  hsmc csr create --key dev-0001 --subject \"CN=dev-0001,O=Acme\" \\\n"
     "      --san uri:spiffe://acme.example/device/0001 --eku clientAuth --out dev-0001.csr\n"
     "  openssl req -in dev-0001.csr -verify -noout\n",
     csr_create_opts, CLI_PIN_REQUIRED, 0, csr_create},
    {NULL, NULL, NULL, NULL, NULL, NULL, CLI_PIN_NONE, 0, NULL}};

static const cli_cmd_t ca_cmds[] = {
    {"init", "create a root CA: key in the token + self-signed certificate",
     "--key LABEL --subject DN --ceremony REF [--alg ALG] [--days N] [--store] [--out FILE]",
     "A root key ceremony: finds the key LABEL or generates it (purpose ca_root:\n"
     "P-384; or --alg p384|p521|rsa3072|rsa4096), then writes the self-signed root\n"
     "certificate (profile ca_root: cA with keyCertSign and cRLSign, SKI = AKI,\n"
     "16-byte random serial from the token RNG).\n"
     "Root operations are off unless HSMC_ALLOW_ROOT_CA=true is in the environment\n"
     "and --ceremony names the ceremony (e.g. the minutes' reference); HSMC_ROLE\n"
     "must be ca or any. A refusal names the rule and exits with 11 before the\n"
     "token is touched. With -v the audit record is printed on stderr.\n"
     "--store also stores the certificate on the token next to the key, where\n"
     "`hsmc cert issue` and `hsmc crl gen` find it without --ca-cert.",
     "  HSMC_ALLOW_ROOT_CA=true HSMC_ROLE=ca hsmc ca init --key root-2026 \\\n"
     "      --subject \"CN=Acme Root CA 2026,O=Acme,C=DE\" --ceremony CER-2026-001 \\\n"
     "      --store --out root.pem -v\n",
     ca_init_opts, CLI_PIN_REQUIRED, 0, ca_init},
    {NULL, NULL, NULL, NULL, NULL, NULL, CLI_PIN_NONE, 0, NULL}};

static const cli_cmd_t cert_cmds[] = {
    {"issue", "issue certificates from CSRs (a file, or a directory in one run)",
     "--ca-key LABEL [--ca-cert FILE] --profile PROFILE --csr FILE|DIR [--days N]\n"
     "       [--allow-dns SUFFIXES] [--allow-ip CIDRS] [--allow-uri PREFIXES] [--allow-email DOMAINS]\n"
     "       [--out FILE | --out-dir DIR] [--chain] [--format pem|der]",
     "Issues with the CA key in the token. Profiles: ca_intermediate (cA, pathLen 0),\n"
     "mtls_server (serverAuth; needs a DNS or IP SAN), mtls_client (clientAuth),\n"
     "signing (codeSigning); roots are made by `hsmc ca init`. The profile decides\n"
     "every extension; from the CSR come only the subject, the key and the SANs,\n"
     "after its self-signature verified. Every SAN kind is refused unless allowed:\n"
     "--allow-dns example.com (and names below it), --allow-ip 10.0.0.0/8,\n"
     "--allow-uri spiffe://example.org/device/, --allow-email example.com (* = any\n"
     "well-formed value). One name outside the rules refuses the whole CSR.\n"
     "--csr DIR issues every *.csr, *.pem and *.der in it with one open CA and\n"
     "writes DIR2/NAME.pem (or .der) per CSR into --out-dir DIR2, atomically. A\n"
     "progress line (done/total, rate, failures) runs on stderr (a line every 10 s\n"
     "when stderr is not a terminal); each refused CSR gets an error line saying\n"
     "what to do; the summary counts them. The exit code is 0 only when every CSR\n"
     "was issued (otherwise the failures' code, e.g. 11 for policy refusals).\n"
     "Errors of the CA or token stop the run. HSMC_ROLE=app may not issue; a root\n"
     "CA (self-signed certificate) also needs HSMC_ALLOW_ROOT_CA=true and\n"
     "--ceremony. With -v every issuance prints its audit record.",
     "  hsmc cert issue --ca-key root-2026 --ca-cert root.pem --profile ca_intermediate \\\n"
     "      --csr issuing.csr --ceremony CER-2026-002 --out issuing.pem\n"
     "  hsmc cert issue --ca-key issuing --ca-cert issuing-chain.pem --profile mtls_client \\\n"
     "      --csr csrs/ --out-dir certs/ --allow-uri spiffe://acme.example/device/\n"
     "  hsmc cert issue --ca-key issuing --profile mtls_server --csr gw.csr \\\n"
     "      --allow-dns gw.acme.example --chain --out gw-chain.pem\n",
     issue_opts, CLI_PIN_REQUIRED, 0, cert_issue},
    {"store", "store a certificate on the token next to its key", "--key LABEL --cert FILE",
     "Creates a certificate object (CKO_CERTIFICATE, X.509) with the key's CKA_ID\n"
     "and label, subject, issuer and serial, so that PKCS#11 applications find the\n"
     "key's certificate. A certificate for another key is refused. An older\n"
     "certificate stored for the key is replaced (the new one is written first).",
     "  hsmc cert store --key dev-0001 --cert dev-0001.pem\n"
     "  pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so -O --type cert\n",
     store_opts, CLI_PIN_REQUIRED, 0, cert_store},
    {"show", "show a certificate (token or file)",
     "(--key LABEL | --label LABEL | --cert FILE) [--format text|pem|der] [--out FILE]",
     "Text: subject, issuer, serial, validity, SANs, key usage, extended key\n"
     "usage, basic constraints, public key, signature algorithm, the SHA-256 of\n"
     "the SubjectPublicKeyInfo (SPKI, as `hsmc key show` prints it) and the SHA-256\n"
     "fingerprint of the certificate (as `openssl x509 -fingerprint -sha256`).\n"
     "--format pem or der writes the certificate itself. --key finds the\n"
     "certificate stored for a key (the key lookup needs the PIN); --label a\n"
     "certificate object by its label.",
     "  hsmc cert show --key dev-0001\n"
     "  hsmc cert show --cert dev-0001.pem --format der --out dev-0001.der\n",
     show_opts, CLI_PIN_OPTIONAL, 0, cert_show},
    {NULL, NULL, NULL, NULL, NULL, NULL, CLI_PIN_NONE, 0, NULL}};

static const cli_cmd_t crl_cmds[] = {
    {"gen", "sign a CRL with a CA key in the token",
     "--ca-key LABEL [--ca-cert FILE] --revoked FILE [--next-update-hours N] [--number N] "
     "[--out FILE]",
     "Writes a v2 CRL signed by the CA key: issuer = the CA certificate's subject,\n"
     "thisUpdate now, nextUpdate + N hours (default 168), one entry per line of\n"
     "--revoked (\"SERIAL [YYYYMMDDhhmmssZ] [REASON]\"; hex serial as `openssl x509\n"
     "-serial` prints it; blank lines and # comments are skipped), AKI and\n"
     "cRLNumber (--number, default the current time in seconds). --revoked is\n"
     "required so that a forgotten option never publishes an empty CRL: give an\n"
     "empty file for that. HSMC_ROLE=app may not sign CRLs; a root CA also needs\n"
     "HSMC_ALLOW_ROOT_CA=true and --ceremony.",
     "  hsmc crl gen --ca-key issuing --ca-cert issuing.pem --revoked revoked.txt \\\n"
     "      --out issuing.crl\n"
     "  openssl crl -in issuing.crl -CAfile issuing.pem -noout\n",
     crl_opts, CLI_PIN_REQUIRED, 0, crl_gen},
    {NULL, NULL, NULL, NULL, NULL, NULL, CLI_PIN_NONE, 0, NULL}};

const cli_group_t cli_group_csr = {"csr", "Certificate signing requests with token keys.",
                                   csr_cmds, 0};
const cli_group_t cli_group_ca = {"ca", "Root certificate authorities with keys in the token.",
                                  ca_cmds, 0};
const cli_group_t cli_group_cert = {
    "cert", "Issue, store and show certificates (CA keys and device keys in tokens).", cert_cmds,
    0};
const cli_group_t cli_group_crl = {"crl", "Certificate revocation lists signed in the token.",
                                   crl_cmds, 0};
