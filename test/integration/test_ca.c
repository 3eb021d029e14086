/*
 * CA in the token: root -> intermediate -> leaves of every profile, for an
 * EC (P-384 root, P-256) and an RSA (3072 root, 2048) CA, checked by
 * openssl verify, certtool and an independent python check
 * (test/tools/ca_check.py); hostile CSRs; root gate and roles; audit
 * records; certificates stored on the token; CRLs checked by openssl.
 * The CA keys are on token "test", the device keys on token "test2".
 */
#define _POSIX_C_SOURCE 200809L /* popen */
#include <stdarg.h>
#include <sys/wait.h>

#include <mbedtls/x509_crt.h>

#include "hsmc_test.h"
#include "hsmc/ca.h"
#include "hsmc/x509.h"
#include "fault/hsmc_fault.h"

#define BUF 8192

static hsmc_t h1, h2; /* CA token, device token */
static hsmc_ca_policy_t pol;

/* Audit records seen. */
static struct {
    unsigned count, refused;
    hsmc_err_t last;
    hsmc_ca_op_t last_op;
    char last_detail[200];
    char last_ceremony[64];
    size_t last_serial_len;
} audit;

static void audit_cb(void *user, const hsmc_audit_rec_t *rec)
{
    (void)user;
    audit.count++;
    if (rec->result != HSMC_OK)
        audit.refused++;
    audit.last = rec->result;
    audit.last_op = rec->op;
    audit.last_serial_len = rec->serial_len;
    snprintf(audit.last_detail, sizeof audit.last_detail, "%s", rec->detail);
    snprintf(audit.last_ceremony, sizeof audit.last_ceremony, "%s", rec->ceremony);
}

/* ---- helpers -------------------------------------------------------------- */

/* Run a command, capture stdout+stderr. @return exit status. */
static int sh_out(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    FILE *f;
    size_t n;
    int rc;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    f = popen(cmd, "r");
    if (f == NULL)
        return -1;
    n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    rc = pclose(f);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int write_pem(const char *p, const char *label, const uint8_t *der, size_t len)
{
    static char pem[BUF * 2];
    size_t n;
    if (hsmc_pem_write(label, der, len, pem, sizeof pem, &n) != HSMC_OK)
        return -1;
    return hsmc_test_write_file(p, pem, n) ? 0 : -1;
}

static int contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

/* Count objects of a class on a token. */
static int count_cb(void *user, const hsmc_obj_t *obj)
{
    (void)obj;
    (*(unsigned *)user)++;
    return 0;
}
static unsigned count_objects(hsmc_t *h, int has_class, CK_OBJECT_CLASS cls)
{
    hsmc_obj_query_t q;
    unsigned n = 0;
    memset(&q, 0, sizeof q);
    q.has_class = has_class;
    q.cls = cls;
    if (hsmc_list(h, &q, count_cb, &n, NULL) != HSMC_OK)
        return 9999;
    return n;
}

/* CSR from a token key (binding engineer's hsmc_csr_create). */
static hsmc_err_t token_csr(hsmc_t *h, const hsmc_key_t *key, const char *cn, const hsmc_san_t *san,
                            size_t nsan, uint8_t *out, size_t *len)
{
    hsmc_csr_req_t req;
    hsmc_csr_req_init(&req);
    req.cn = cn;
    req.o = "hsmc test";
    req.c = "DE";
    req.san = san;
    req.san_count = nsan;
    return hsmc_csr_create(h, key, &req, HSMC_X509_DER, out, BUF, len);
}

/* openssl req -newkey argument of a P-256 key. */
#define P256 "ec -pkeyopt ec_paramgen_curve:P-256"

/* CSR from a software key made by openssl req (DER). extra: more req arguments. */
static size_t ossl_csr(const char *name, const char *newkey, const char *subj, const char *extra,
                       uint8_t *out)
{
    if (hsmc_test_system(
            "openssl req -new -newkey %s -nodes -keyout %s -subj '%s' %s -outform DER -out %s "
            ">/dev/null 2>&1",
            newkey, hsmc_test_path("sw.key"), subj, extra, hsmc_test_path(name)) != 0)
        return 0;
    return hsmc_test_read_file(hsmc_test_path(name), out, BUF);
}

/* Serials seen, to check they differ. */
static uint8_t serials[64][HSMC_CA_SERIAL_LEN];
static unsigned nserials;

static void note_serial(const uint8_t *der, size_t len)
{
    mbedtls_x509_crt crt;
    unsigned i;
    mbedtls_x509_crt_init(&crt);
    CHECK(mbedtls_x509_crt_parse_der(&crt, der, len) == 0);
    CHECK(crt.serial.len == HSMC_CA_SERIAL_LEN);
    if (crt.serial.len == HSMC_CA_SERIAL_LEN && nserials < 64) {
        for (i = 0; i < nserials; i++)
            CHECK(memcmp(serials[i], crt.serial.p, HSMC_CA_SERIAL_LEN) != 0);
        memcpy(serials[nserials++], crt.serial.p, HSMC_CA_SERIAL_LEN);
    }
    mbedtls_x509_crt_free(&crt);
}

/* SPKI of the certificate equals the token key's export. */
static int spki_matches(hsmc_t *h, const hsmc_key_t *key, const uint8_t *der, size_t len,
                        const char *spki_file)
{
    uint8_t spki[HSMC_CA_SPKI_MAX];
    size_t n;
    mbedtls_x509_crt crt;
    int ok;
    if (hsmc_key_export_pub(h, key, spki, sizeof spki, &n) != HSMC_OK)
        return 0;
    if (spki_file != NULL)
        hsmc_test_write_file(spki_file, spki, n);
    mbedtls_x509_crt_init(&crt);
    ok = mbedtls_x509_crt_parse_der(&crt, der, len) == 0 && crt.pk_raw.len == n &&
         memcmp(crt.pk_raw.p, spki, n) == 0;
    mbedtls_x509_crt_free(&crt);
    return ok;
}

/* The python check, certtool, and (for leaves) openssl verify. */
static void check_cert(const char *pem, const char *issuer_pem, const char *profile,
                       const char *pathlen, const char *spki)
{
    char out[4096];
    int rc = sh_out(out, sizeof out, "/usr/bin/python3 %s/test/tools/ca_check.py %s %s %s %s %s",
                    hsmc_test_env("HSMC_TEST_SOURCE_DIR"), pem, issuer_pem, profile, pathlen,
                    spki != NULL ? spki : "");
    if (rc != 0)
        fprintf(stderr, "%s", out);
    CHECK(rc == 0 && contains(out, "ca_check OK"));
    rc = sh_out(out, sizeof out, "certtool --certificate-info --infile %s", pem);
    if (rc != 0)
        fprintf(stderr, "%s", out);
    CHECK(rc == 0);
}

static void check_verify(const char *root, const char *inter, const char *leaf,
                         const char *purpose)
{
    char out[2048];
    int rc = sh_out(out, sizeof out, "openssl verify -CAfile %s -untrusted %s %s%s %s", root,
                    inter, purpose != NULL ? "-purpose " : "", purpose != NULL ? purpose : "",
                    leaf);
    if (rc != 0)
        fprintf(stderr, "openssl verify: %s", out);
    CHECK(rc == 0 && contains(out, ": OK"));
}

/* ---- the chain of one key family ------------------------------------------ */

typedef struct family {
    const char *name;
    hsmc_key_alg_t root_alg, int_alg, leaf_alg;
    hsmc_key_t root, inter, server, client, signer;
    uint8_t root_der[BUF], int_der[BUF], server_der[BUF], client_der[BUF];
    size_t root_len, int_len, server_len, client_len;
    char root_pem[600], int_pem[600], server_pem[600], client_pem[600];
} family_t;

static family_t ec = {.name = "ec", .root_alg = HSMC_ALG_P384, .int_alg = HSMC_ALG_P256, .leaf_alg = HSMC_ALG_P256};
static family_t rsa = {.name = "rsa", .root_alg = HSMC_ALG_RSA3072, .int_alg = HSMC_ALG_RSA2048,
                       .leaf_alg = HSMC_ALG_RSA2048};

static void fname(family_t *f, char *dst, const char *what)
{
    snprintf(dst, 600, "%s", hsmc_test_path(what));
    (void)f;
}

/* Issue from a CSR and check the audit record. */
static hsmc_err_t issue(hsmc_ca_t *ca, hsmc_profile_t profile, const uint8_t *csr, size_t csr_len,
                        uint8_t *der, size_t *len)
{
    hsmc_issue_req_t req;
    unsigned before = audit.count;
    size_t bound = 0;
    hsmc_err_t err;
    memset(&req, 0, sizeof req);
    req.profile = profile;
    req.csr = csr;
    req.csr_len = csr_len;
    CHECK(hsmc_ca_issue(ca, &req, NULL, 0, &bound, NULL) == HSMC_OK);
    err = hsmc_ca_issue(ca, &req, der, BUF, len, NULL);
    CHECK(audit.count == before + 1);
    CHECK(audit.last == err);
    if (err == HSMC_OK)
        CHECK(*len <= bound);
    return err;
}

static void run_family(family_t *f)
{
    static uint8_t csr[BUF], der[BUF];
    static hsmc_ca_t root_ca, int_ca;
    uint8_t chain[2 * BUF];
    char lbl[64], file[600], spki[600], out[2048];
    size_t csr_len = 0, len = 0, n = 0;
    hsmc_issue_req_t req;
    hsmc_issued_t info;
    const uint8_t *cert;
    hsmc_san_t srv_san[3] = {{HSMC_SAN_DNS, "gw1.example.com"}, {HSMC_SAN_IP, "10.1.2.3"},
                             {HSMC_SAN_IP, "fd00::17"}};
    hsmc_san_t cli_san[1] = {{HSMC_SAN_URI, "spiffe://example.org/device/0001"}};
    hsmc_san_t sig_san[1] = {{HSMC_SAN_EMAIL, "signer@example.com"}};
    /* The leaves: role (key label suffix), CSR CN and SANs, profile, the
     * profile name for ca_check.py, openssl verify -purpose; where the
     * certificate goes. */
    typedef struct {
        const char *role, *cn;
        const hsmc_san_t *san;
        size_t nsan;
        hsmc_profile_t profile;
        const char *check_profile, *purpose;
        hsmc_key_t *key;
        uint8_t *der;
        size_t *len;
        char *pem;
        const char *pem_name;
    } leaf_t;
    const leaf_t leaves[3] = {
        {"server", "gw1.example.com", srv_san, 3, HSMC_PROFILE_MTLS_SERVER, "mtls_server",
         "sslserver", &f->server, f->server_der, &f->server_len, f->server_pem,
         f == &ec ? "ec-server.pem" : "rsa-server.pem"},
        {"client", "device-0001", cli_san, 1, HSMC_PROFILE_MTLS_CLIENT, "mtls_client",
         "sslclient", &f->client, f->client_der, &f->client_len, f->client_pem,
         f == &ec ? "ec-client.pem" : "rsa-client.pem"},
        {"signer", "fw-signer", sig_san, 1, HSMC_PROFILE_SIGNING, "signing", NULL, &f->signer,
         der, &len, file, "signer.pem"},
    };
    size_t i;

    /* Root: key + self-signed certificate. */
    snprintf(lbl, sizeof lbl, "%s-root", f->name);
    REQUIRE(hsmc_test_gen(&h1, lbl, f->root_alg, HSMC_USE_SIGN, &f->root) == HSMC_OK);
    hsmc_ca_init(&root_ca);
    REQUIRE(hsmc_ca_open(&root_ca, &h1, &f->root, NULL, 0, &pol) == HSMC_OK);
    memset(&req, 0, sizeof req);
    req.profile = HSMC_PROFILE_CA_ROOT;
    req.subject = f == &ec ? "CN=hsmc EC Root,O=hsmc test,C=DE" : "CN=hsmc RSA Root,O=hsmc test,C=DE";
    CHECK_ERR(hsmc_ca_issue(&root_ca, &req, f->root_der, BUF, &f->root_len, &info), HSMC_OK);
    CHECK(audit.last == HSMC_OK && strcmp(audit.last_ceremony, "CER-2026-001") == 0);
    CHECK(info.not_after - info.not_before == 7305LL * 86400);
    REQUIRE(hsmc_ca_cert(&root_ca, &cert, &n) == HSMC_OK);
    CHECK(n == f->root_len && memcmp(cert, f->root_der, n) == 0);
    fname(f, f->root_pem, f == &ec ? "ec-root.pem" : "rsa-root.pem");
    fname(f, spki, "spki.der");
    CHECK(spki_matches(&h1, &f->root, f->root_der, f->root_len, spki));
    REQUIRE(write_pem(f->root_pem, "CERTIFICATE", f->root_der, f->root_len) == 0);
    check_cert(f->root_pem, f->root_pem, "ca_root", "none", spki);
    note_serial(f->root_der, f->root_len);

    /* Intermediate: key on the CA token, CSR made with the token key. */
    snprintf(lbl, sizeof lbl, "%s-int", f->name);
    REQUIRE(hsmc_test_gen(&h1, lbl, f->int_alg, HSMC_USE_SIGN, &f->inter) == HSMC_OK);
    REQUIRE(token_csr(&h1, &f->inter, "hsmc Issuing CA", NULL, 0, csr, &csr_len) == HSMC_OK);
    CHECK_ERR(issue(&root_ca, HSMC_PROFILE_CA_INTERMEDIATE, csr, csr_len, f->int_der, &f->int_len),
              HSMC_OK);
    fname(f, f->int_pem, f == &ec ? "ec-int.pem" : "rsa-int.pem");
    REQUIRE(write_pem(f->int_pem, "CERTIFICATE", f->int_der, f->int_len) == 0);
    CHECK(spki_matches(&h1, &f->inter, f->int_der, f->int_len, spki));
    check_cert(f->int_pem, f->root_pem, "ca_intermediate", "0", spki);
    check_verify(f->root_pem, f->root_pem, f->int_pem, NULL);
    note_serial(f->int_der, f->int_len);

    /* The issuing CA: its certificate plus the root as its chain. */
    memcpy(chain, f->int_der, f->int_len);
    memcpy(chain + f->int_len, f->root_der, f->root_len);
    hsmc_ca_init(&int_ca);
    REQUIRE(hsmc_ca_open(&int_ca, &h1, &f->inter, chain, f->int_len + f->root_len, &pol) ==
            HSMC_OK);
    /* pathLen 0: no further CA below it. */
    CHECK_ERR(issue(&int_ca, HSMC_PROFILE_CA_INTERMEDIATE, csr, csr_len, der, &len),
              HSMC_ERR_POLICY);
    CHECK(contains(hsmc_detail(&h1), "issuer-pathlen"));

    /* Leaves: device keys on the other token, one per profile. */
    for (i = 0; i < 3; i++) {
        const leaf_t *l = &leaves[i];
        snprintf(lbl, sizeof lbl, "%s-%s", f->name, l->role);
        REQUIRE(hsmc_test_gen(&h2, lbl, f->leaf_alg, HSMC_USE_SIGN, l->key) == HSMC_OK);
        REQUIRE(token_csr(&h2, l->key, l->cn, l->san, l->nsan, csr, &csr_len) == HSMC_OK);
        CHECK_ERR(issue(&int_ca, l->profile, csr, csr_len, l->der, l->len), HSMC_OK);
        fname(f, l->pem, l->pem_name);
        REQUIRE(write_pem(l->pem, "CERTIFICATE", l->der, *l->len) == 0);
        CHECK(spki_matches(&h2, l->key, l->der, *l->len, spki));
        check_cert(l->pem, f->int_pem, l->check_profile, "none", spki);
        check_verify(f->root_pem, f->int_pem, l->pem, l->purpose);
        note_serial(l->der, *l->len);
        if (l->profile == HSMC_PROFILE_MTLS_SERVER) {
            /* a server certificate is no client certificate */
            CHECK(sh_out(out, sizeof out,
                         "openssl verify -CAfile %s -untrusted %s -purpose sslclient %s",
                         f->root_pem, f->int_pem, f->server_pem) != 0);
        }
    }

    /* Chain output: leaf + intermediate, no root. */
    {
        static char pem[3 * BUF];
        size_t need = 0, got = 0;
        CHECK(hsmc_ca_chain_pem(&int_ca, f->client_der, f->client_len, NULL, 0, &need) == HSMC_OK);
        CHECK(hsmc_ca_chain_pem(&int_ca, f->client_der, f->client_len, pem, need, &got) ==
              HSMC_ERR_BUFFER);
        CHECK(hsmc_ca_chain_pem(&int_ca, f->client_der, f->client_len, pem, need + 1, &got) ==
              HSMC_OK);
        CHECK(got == need && strlen(pem) == got);
        CHECK(strstr(strstr(pem, "BEGIN CERTIFICATE") + 1, "BEGIN CERTIFICATE") != NULL);
        CHECK(strstr(strstr(strstr(pem, "BEGIN CERTIFICATE") + 1, "BEGIN CERTIFICATE") + 1,
                     "BEGIN CERTIFICATE") == NULL);
        fname(f, file, "fullchain.pem");
        hsmc_test_write_file(file, pem, got);
        CHECK(sh_out(out, sizeof out, "openssl verify -CAfile %s -untrusted %s %s", f->root_pem,
                     file, f->client_pem) == 0);
        /* the chain in PEM opens a CA just as well */
        {
            static uint8_t d[2 * BUF];
            size_t dl = 0;
            CHECK(hsmc_ca_pem_to_der("CERTIFICATE", pem, got, NULL, 0, &dl) == HSMC_OK);
            CHECK(dl == f->client_len + f->int_len);
            CHECK(hsmc_ca_pem_to_der("CERTIFICATE", pem, got, d, dl - 1, &dl) == HSMC_ERR_BUFFER);
            CHECK(hsmc_ca_pem_to_der("CERTIFICATE", pem, got, d, sizeof d, &dl) == HSMC_OK);
            CHECK(memcmp(d, f->client_der, f->client_len) == 0);
            CHECK(hsmc_ca_pem_to_der("CERTIFICATE", pem, got / 2, d, sizeof d, &dl) ==
                  HSMC_ERR_FORMAT);
        }
    }

    hsmc_ca_free(&int_ca);
    hsmc_ca_free(&root_ca);
    hsmc_ca_free(&root_ca); /* twice is harmless */
}

static void test_chain_ec(void)
{
    run_family(&ec);
}

static void test_chain_rsa(void)
{
    run_family(&rsa);
}

/* Open the issuing CA of a family. */
static hsmc_err_t open_int(hsmc_ca_t *ca, family_t *f, const hsmc_ca_policy_t *p)
{
    static uint8_t chain[2 * BUF];
    memcpy(chain, f->int_der, f->int_len);
    memcpy(chain + f->int_len, f->root_der, f->root_len);
    hsmc_ca_init(ca);
    return hsmc_ca_open(ca, &h1, &f->inter, chain, f->int_len + f->root_len, p);
}

/* openssl-made CSRs (software keys) go through the same issuance. */
static void test_openssl_csrs(void)
{
    static uint8_t csr[BUF], der[BUF];
    static hsmc_ca_t ca;
    size_t n, len;

    REQUIRE(ec.int_len > 0);
    REQUIRE(open_int(&ca, &ec, &pol) == HSMC_OK);
    n = ossl_csr("o1.der", "ec -pkeyopt ec_paramgen_curve:P-384", "/CN=svc.example.com/O=x",
                 "-addext 'subjectAltName=DNS:svc.example.com,DNS:api.svc.example.com'", csr);
    REQUIRE(n > 0);
    CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_SERVER, csr, n, der, &len), HSMC_OK);
    write_pem(hsmc_test_path("o1.pem"), "CERTIFICATE", der, len);
    check_cert(hsmc_test_path("o1.pem"), ec.int_pem, "mtls_server", "none", NULL);
    check_verify(ec.root_pem, ec.int_pem, hsmc_test_path("o1.pem"), "sslserver");
    note_serial(der, len);

    /* PEM input, "NEW CERTIFICATE REQUEST" label too */
    n = ossl_csr("o2.der", "rsa:2048", "/CN=device-0042", "-addext 'subjectAltName=URI:spiffe://example.org/device/0042'", csr);
    REQUIRE(n > 0);
    REQUIRE(hsmc_test_system("openssl req -inform DER -in %s -out %s", hsmc_test_path("o2.der"),
                             hsmc_test_path("o2.csr")) == 0);
    n = hsmc_test_read_file(hsmc_test_path("o2.csr"), csr, BUF);
    CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_CLIENT, csr, n, der, &len), HSMC_OK);
    write_pem(hsmc_test_path("o2.pem"), "CERTIFICATE", der, len);
    check_verify(ec.root_pem, ec.int_pem, hsmc_test_path("o2.pem"), "sslclient");
    note_serial(der, len);
    REQUIRE(hsmc_test_system("sed -e 's/BEGIN CERTIFICATE REQUEST/BEGIN NEW CERTIFICATE REQUEST/' "
                             "-e 's/END CERTIFICATE REQUEST/END NEW CERTIFICATE REQUEST/' %s > %s",
                             hsmc_test_path("o2.csr"), hsmc_test_path("o3.csr")) == 0);
    n = hsmc_test_read_file(hsmc_test_path("o3.csr"), csr, BUF);
    CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_CLIENT, csr, n, der, &len), HSMC_OK);
    note_serial(der, len);

    /* A CSR that asks for extKeyUsage and digitalSignature gets the profile's anyway. */
    n = ossl_csr("o4.der", P256, "/CN=device-7",
                 "-addext 'extendedKeyUsage=serverAuth,emailProtection' -addext "
                 "'keyUsage=digitalSignature,keyEncipherment' -addext "
                 "'subjectAltName=URI:spiffe://example.org/device/7'",
                 csr);
    REQUIRE(n > 0);
    CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_CLIENT, csr, n, der, &len), HSMC_OK);
    write_pem(hsmc_test_path("o4.pem"), "CERTIFICATE", der, len);
    check_cert(hsmc_test_path("o4.pem"), ec.int_pem, "mtls_client", "none", NULL);
    note_serial(der, len);

    /* Validity: asked days; more than max refused; default cut to the CA's life. */
    {
        hsmc_issue_req_t req;
        hsmc_issued_t info;
        memset(&req, 0, sizeof req);
        req.profile = HSMC_PROFILE_MTLS_CLIENT;
        req.csr = csr;
        req.csr_len = n;
        req.days = 30;
        CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, &info), HSMC_OK);
        CHECK(info.not_after - info.not_before == 30LL * 86400);
        req.days = 826;
        CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, &info), HSMC_ERR_POLICY);
        CHECK(contains(hsmc_detail(&h1), "validity"));
        req.days = 0;
        req.not_before = ca.not_after - 86400; /* one day before the CA ends */
        CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, &info), HSMC_OK);
        CHECK(info.not_after == ca.not_after);
        req.days = 2;
        CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, &info), HSMC_ERR_POLICY);
        req.days = 0;
        req.not_before = 4102444800LL; /* 2100: GeneralizedTime, beyond the CA: cut */
        CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, &info), HSMC_ERR_POLICY);
        /* too small a buffer: HSMC_ERR_BUFFER with a bound, nothing signed */
        req.not_before = 0;
        CHECK_ERR(hsmc_ca_issue(&ca, &req, der, 100, &len, &info), HSMC_ERR_BUFFER);
        CHECK(len > 100);
    }
    hsmc_ca_free(&ca);
}

/* A CSR made by openssl (ossl_csr arguments) and the CA's answer: err, and
 * the texts the context detail (detail and detail2) and the audit record
 * must name. */
typedef struct {
    const char *file, *newkey, *subj, *extra;
    hsmc_profile_t profile;
    hsmc_err_t err;
    const char *detail, *detail2, *audit_detail;
    enum { CSR_ANY, CSR_REQUIRED, CSR_IF_MADE } need; /* when openssl makes none */
} hostile_t;

static const hostile_t hostile[] = {
    /* a leaf asking for cA=TRUE, for keyCertSign, for cRLSign */
    {"h2.der", P256, "/CN=b.example.com",
     "-addext 'basicConstraints=critical,CA:TRUE' -addext 'subjectAltName=DNS:b.example.com'",
     HSMC_PROFILE_MTLS_SERVER, HSMC_ERR_CSR_EXT, "cA=TRUE", NULL, "cA=TRUE", CSR_REQUIRED},
    {"h3.der", P256, "/CN=device-9",
     "-addext 'keyUsage=critical,digitalSignature,keyCertSign' "
     "-addext 'subjectAltName=URI:spiffe://example.org/device/9'",
     HSMC_PROFILE_MTLS_CLIENT, HSMC_ERR_CSR_EXT, "keyCertSign", NULL, NULL, CSR_REQUIRED},
    {"h4.der", P256, "/CN=s", "-addext 'keyUsage=cRLSign'", HSMC_PROFILE_SIGNING, HSMC_ERR_CSR_EXT,
     NULL, NULL, NULL, CSR_ANY},
    /* SANs outside the rules */
    {"h5.der", P256, "/CN=evil.org", "-addext 'subjectAltName=DNS:gw1.example.com,DNS:evil.org'",
     HSMC_PROFILE_MTLS_SERVER, HSMC_ERR_POLICY, "san-dns", "evil.org", NULL, CSR_ANY},
    {"h6.der", P256, "/CN=x", "-addext 'subjectAltName=DNS:notexample.com'",
     HSMC_PROFILE_MTLS_SERVER, HSMC_ERR_POLICY, NULL, NULL, NULL, CSR_ANY},
    {"h7.der", P256, "/CN=x", "-addext 'subjectAltName=DNS:*.example.com'",
     HSMC_PROFILE_MTLS_SERVER, HSMC_ERR_POLICY, NULL, NULL, NULL, CSR_ANY},
    {"h8.der", P256, "/CN=x", "-addext 'subjectAltName=IP:192.168.1.1'", HSMC_PROFILE_MTLS_SERVER,
     HSMC_ERR_POLICY, "san-ip", NULL, NULL, CSR_ANY},
    {"h9.der", P256, "/CN=x", "-addext 'subjectAltName=IP:2001:db8::1'", HSMC_PROFILE_MTLS_SERVER,
     HSMC_ERR_POLICY, NULL, NULL, NULL, CSR_ANY},
    {"h10.der", P256, "/CN=x", "-addext 'subjectAltName=IP:10.200.0.1,IP:fd12:3456::1'",
     HSMC_PROFILE_MTLS_SERVER, HSMC_OK, NULL, NULL, NULL, CSR_ANY},
    {"h11.der", P256, "/CN=x", "-addext 'subjectAltName=RID:1.2.3.4'", HSMC_PROFILE_MTLS_SERVER,
     HSMC_ERR_POLICY, "san-kind", NULL, NULL, CSR_ANY},
    {"h12.der", P256, "/CN=gw.example.com", "", HSMC_PROFILE_MTLS_SERVER, HSMC_ERR_POLICY,
     "san-required", NULL, NULL, CSR_ANY},
    {"h13.der", P256, "/CN=device-1", "-addext 'subjectAltName=URI:https://example.org/device/1'",
     HSMC_PROFILE_MTLS_CLIENT, HSMC_ERR_POLICY, "san-uri", NULL, NULL, CSR_ANY},
    {"h14.der", P256, "/CN=laptop-1", "-addext 'subjectAltName=URI:spiffe://example.org/device/1'",
     HSMC_PROFILE_MTLS_CLIENT, HSMC_ERR_POLICY, "cn:", NULL, NULL, CSR_ANY},
    {"h15.der", P256, "/CN=device-1", "", HSMC_PROFILE_MTLS_CLIENT, HSMC_ERR_POLICY, "san-required",
     NULL, NULL, CSR_ANY},
    {"h16.der", P256, "/CN=s", "-addext 'subjectAltName=email:a@evil.org'", HSMC_PROFILE_SIGNING,
     HSMC_ERR_POLICY, "san-email", NULL, NULL, CSR_ANY},
    {"h17.der", P256, "/CN=s", "-addext 'subjectAltName=email:Build@Example.COM'",
     HSMC_PROFILE_SIGNING, HSMC_OK, NULL, NULL, NULL, CSR_ANY},
    /* keys too weak for the profile */
    {"h18.der", "rsa:1024", "/CN=device-2",
     "-addext 'subjectAltName=URI:spiffe://example.org/device/2'", HSMC_PROFILE_MTLS_CLIENT,
     HSMC_ERR_KEY_WEAK, "RSA-1024", NULL, NULL, CSR_REQUIRED},
    {"h19.der", "ec -pkeyopt ec_paramgen_curve:secp256k1", "/CN=device-3",
     "-addext 'subjectAltName=URI:spiffe://example.org/device/3'", HSMC_PROFILE_MTLS_CLIENT,
     HSMC_ERR_KEY_WEAK, NULL, NULL, NULL, CSR_REQUIRED},
    /* (pathLen 0 refuses before the key matters; the root profile checks 3072 below) */
    {"h20.der", "rsa:2048", "/CN=sub", "", HSMC_PROFILE_CA_INTERMEDIATE, HSMC_ERR_POLICY, NULL,
     NULL, NULL, CSR_ANY},
    /* SHA-1 signed CSR */
    {"h21.der", P256, "/CN=s", "-sha1", HSMC_PROFILE_SIGNING, HSMC_ERR_POLICY, "csr-hash", NULL,
     NULL, CSR_REQUIRED},
    /* Ed25519: mbedTLS 2.28 cannot parse the key */
    {"h22.der", "ed25519", "/CN=s", "", HSMC_PROFILE_SIGNING, HSMC_ERR_UNSUPPORTED, NULL, NULL,
     NULL, CSR_IF_MADE},
    /* empty subject */
    {"h23.der", P256, "/", "-addext 'subjectAltName=email:x@example.com'", HSMC_PROFILE_SIGNING,
     HSMC_ERR_POLICY, "subject", NULL, NULL, CSR_IF_MADE},
};

/* Hostile CSRs: each refused with its own error, nothing made. */
static void test_hostile(void)
{
    static uint8_t csr[BUF], der[BUF];
    static hsmc_ca_t ca;
    size_t n, len, i;
    unsigned objs1 = count_objects(&h1, 0, 0), objs2 = count_objects(&h2, 0, 0);
    unsigned refused = audit.refused;

    REQUIRE(ec.int_len > 0);
    REQUIRE(open_int(&ca, &ec, &pol) == HSMC_OK);

    /* bad self-signature: flip a byte of the signature */
    n = ossl_csr("h1.der", P256, "/CN=a.example.com", "-addext 'subjectAltName=DNS:a.example.com'",
                 csr);
    REQUIRE(n > 10);
    CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_SERVER, csr, n, der, &len), HSMC_OK);
    csr[n - 3] ^= 0x01;
    CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_SERVER, csr, n, der, &len), HSMC_ERR_SIGNATURE);
    csr[n - 3] ^= 0x01;
    /* a letter of the subject's CN instead: same */
    {
        uint8_t *cn = memchr(csr, 'a', 60);
        REQUIRE(cn != NULL && cn[1] == '.');
        *cn = 'b';
        CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_SERVER, csr, n, der, &len), HSMC_ERR_SIGNATURE);
        *cn = 'a';
    }
    /* trailing bytes after the CSR */
    csr[n] = 0;
    CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_SERVER, csr, n + 1, der, &len), HSMC_ERR_CSR);

    /* One CSR each, made by openssl, and what the CA must answer. */
    for (i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        const hostile_t *t = &hostile[i];
        n = ossl_csr(t->file, t->newkey, t->subj, t->extra, csr);
        if (t->need == CSR_REQUIRED)
            REQUIRE(n > 0);
        if (t->need == CSR_IF_MADE && n == 0)
            continue; /* this openssl cannot make it */
        CHECK_ERR(issue(&ca, t->profile, csr, n, der, &len), t->err);
        if (t->detail != NULL)
            CHECK(contains(hsmc_detail(&h1), t->detail) &&
                  (t->detail2 == NULL || contains(hsmc_detail(&h1), t->detail2)));
        if (t->audit_detail != NULL)
            CHECK(contains(audit.last_detail, t->audit_detail));
    }

    /* garbage DER, truncated DER, truncated PEM, PEM with garbage body */
    {
        static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};
        for (i = 0; i < 64; i++)
            csr[i] = (uint8_t)(i * 37 + 11);
        CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_SERVER, csr, 64, der, &len), HSMC_ERR_CSR);
        CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_SERVER, junk, sizeof junk, der, &len), HSMC_ERR_CSR);
        n = hsmc_test_read_file(hsmc_test_path("h1.der"), csr, BUF);
        for (i = 1; i < n; i += 7)
            CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_SERVER, csr, i, der, &len), HSMC_ERR_CSR);
        REQUIRE(hsmc_test_system("openssl req -inform DER -in %s -out %s", hsmc_test_path("h1.der"),
                                 hsmc_test_path("h1.csr")) == 0);
        n = hsmc_test_read_file(hsmc_test_path("h1.csr"), csr, BUF);
        CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_SERVER, csr, n, der, &len), HSMC_OK);
        CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_SERVER, csr, n / 2, der, &len), HSMC_ERR_CSR);
        CHECK(contains(hsmc_detail(&h1), "truncated"));
        CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_SERVER, csr, n - 30, der, &len), HSMC_ERR_CSR);
        csr[60] = '*';
        CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_SERVER, csr, n, der, &len), HSMC_ERR_CSR);
    }
    CHECK(audit.refused > refused + 20);
    hsmc_ca_free(&ca);
    CHECK(count_objects(&h1, 0, 0) == objs1);
    CHECK(count_objects(&h2, 0, 0) == objs2);
}

/* Root operations need the allow flag and a ceremony reference. */
static const uint8_t *ec_dummy_der;
static void test_root_gate(void)
{
    static uint8_t csr[BUF], der[BUF];
    static hsmc_ca_t ca;
    hsmc_ca_policy_t p = pol;
    hsmc_issue_req_t req;
    hsmc_key_t k;
    size_t len, n;

    REQUIRE(hsmc_test_gen(&h1, "gate-root", HSMC_ALG_P384, HSMC_USE_SIGN, &k) == HSMC_OK);
    hsmc_ca_init(&ca);
    CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, NULL), HSMC_ERR_STATE);
    CHECK_ERR(hsmc_ca_open(&ca, &h1, &k, NULL, 0, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_ca_open(&ca, &h1, &k, der, 0, &pol), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_ca_cert(&ca, &ec_dummy_der, &len), HSMC_ERR_STATE);
    memset(&req, 0, sizeof req);
    req.profile = HSMC_PROFILE_CA_ROOT;
    req.subject = "CN=Gate Root";

    p.allow_root = 0;
    hsmc_ca_init(&ca);
    REQUIRE(hsmc_ca_open(&ca, &h1, &k, NULL, 0, &p) == HSMC_OK);
    CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, NULL), HSMC_ERR_POLICY);
    CHECK(contains(hsmc_detail(&h1), "root:") && contains(hsmc_detail(&h1), "HSMC_ALLOW_ROOT_CA"));
    CHECK(audit.last == HSMC_ERR_POLICY && audit.last_op == HSMC_OP_ISSUE);
    p.allow_root = 1;
    p.ceremony = NULL;
    CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, NULL), HSMC_ERR_POLICY);
    CHECK(contains(hsmc_detail(&h1), "ceremony"));
    p.ceremony = "";
    CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, NULL), HSMC_ERR_POLICY);
    p.ceremony = "CER-7";
    req.subject = "nonsense";
    CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, NULL), HSMC_ERR_ARG);
    req.subject = "CN=Gate Root";
    req.profile = (hsmc_profile_t)17;
    CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, NULL), HSMC_ERR_ARG);
    req.profile = HSMC_PROFILE_CA_ROOT;
    /* a non-root profile on a root without certificate */
    n = ossl_csr("g1.der", P256, "/CN=x", "", csr);
    CHECK_ERR(issue(&ca, HSMC_PROFILE_CA_INTERMEDIATE, csr, n, der, &len), HSMC_ERR_STATE);
    /* a ca_root CSR must carry the CA key */
    req.subject = NULL;
    req.csr = csr;
    req.csr_len = n;
    CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, NULL), HSMC_ERR_CERT_KEY);
    req.csr = NULL;
    req.csr_len = 0;
    req.subject = "CN=Gate Root";
    CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, NULL), HSMC_OK);
    CHECK(strcmp(audit.last_ceremony, "CER-7") == 0);
    /* renewal: no subject, same name */
    req.subject = NULL;
    CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, NULL), HSMC_OK);
    /* issuing below a root is a root operation too */
    p.allow_root = 0;
    CHECK_ERR(issue(&ca, HSMC_PROFILE_CA_INTERMEDIATE, csr, n, der, &len), HSMC_ERR_POLICY);
    {
        hsmc_crl_req_t crl;
        memset(&crl, 0, sizeof crl);
        CHECK_ERR(hsmc_ca_crl(&ca, &crl, der, BUF, &len), HSMC_ERR_POLICY);
    }
    p.allow_root = 1;
    CHECK_ERR(issue(&ca, HSMC_PROFILE_CA_INTERMEDIATE, csr, n, der, &len), HSMC_OK);
    hsmc_ca_free(&ca);

    /* a weak root key */
    REQUIRE(hsmc_test_gen(&h1, "weak-root", HSMC_ALG_RSA2048, HSMC_USE_SIGN, &k) == HSMC_OK);
    hsmc_ca_init(&ca);
    REQUIRE(hsmc_ca_open(&ca, &h1, &k, NULL, 0, &p) == HSMC_OK);
    req.subject = "CN=Weak Root";
    CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, NULL), HSMC_ERR_KEY_WEAK);
    hsmc_ca_free(&ca);
    /* P-256 is not a root curve by default */
    REQUIRE(hsmc_test_gen(&h1, "p256-root", HSMC_ALG_P256, HSMC_USE_SIGN, &k) == HSMC_OK);
    hsmc_ca_init(&ca);
    REQUIRE(hsmc_ca_open(&ca, &h1, &k, NULL, 0, &p) == HSMC_OK);
    CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, NULL), HSMC_ERR_KEY_WEAK);
    hsmc_ca_free(&ca);

    /* the intermediate (not a root) issues without the root flag */
    p.allow_root = 0;
    p.ceremony = NULL;
    REQUIRE(open_int(&ca, &ec, &p) == HSMC_OK);
    n = ossl_csr("g2.der", P256, "/CN=device-5",
                 "-addext 'subjectAltName=URI:spiffe://example.org/device/5'", csr);
    CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_CLIENT, csr, n, der, &len), HSMC_OK);
    /* and cannot self-sign a root */
    memset(&req, 0, sizeof req);
    req.profile = HSMC_PROFILE_CA_ROOT;
    p.allow_root = 1;
    p.ceremony = "CER-8";
    CHECK_ERR(hsmc_ca_issue(&ca, &req, der, BUF, &len, NULL), HSMC_ERR_POLICY);
    hsmc_ca_free(&ca);

    /* opening with a certificate of another key, or a leaf certificate */
    hsmc_ca_init(&ca);
    CHECK_ERR(hsmc_ca_open(&ca, &h1, &ec.root, ec.int_der, ec.int_len, &p), HSMC_ERR_CERT_KEY);
    CHECK_ERR(hsmc_ca_open(&ca, &h1, &ec.inter, ec.server_der, ec.server_len, &p), HSMC_ERR_POLICY);
    CHECK(contains(hsmc_detail(&h1), "issuer-not-ca"));
    CHECK_ERR(hsmc_ca_open(&ca, &h1, &ec.inter, csr, 20, &p), HSMC_ERR_FORMAT);
    hsmc_ca_free(&ca);
}

/* Roles decide which operations a process may run. */
static void test_roles(void)
{
    static uint8_t csr[BUF], der[BUF];
    static hsmc_ca_t ca;
    hsmc_ca_policy_t p = pol;
    hsmc_role_t r;
    size_t n, len;
    int flag;

    CHECK_ERR(hsmc_role_parse("app", &r), HSMC_OK);
    CHECK(r == HSMC_ROLE_APP);
    CHECK_ERR(hsmc_role_parse(NULL, &r), HSMC_OK);
    CHECK(r == HSMC_ROLE_ANY);
    CHECK_ERR(hsmc_role_parse("admin", &r), HSMC_ERR_CONFIG);
    CHECK_ERR(hsmc_ca_parse_flag("true", &flag), HSMC_OK);
    CHECK(flag == 1);
    CHECK_ERR(hsmc_ca_parse_flag(NULL, &flag), HSMC_OK);
    CHECK(flag == 0);
    CHECK_ERR(hsmc_ca_parse_flag("ture", &flag), HSMC_ERR_CONFIG);

    p.role = HSMC_ROLE_APP;
    REQUIRE(open_int(&ca, &ec, &p) == HSMC_OK);
    n = ossl_csr("r1.der", P256, "/CN=device-6",
                 "-addext 'subjectAltName=URI:spiffe://example.org/device/6'", csr);
    CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_CLIENT, csr, n, der, &len), HSMC_ERR_POLICY);
    CHECK(contains(hsmc_detail(&h1), "role:"));
    {
        hsmc_crl_req_t crl;
        memset(&crl, 0, sizeof crl);
        CHECK_ERR(hsmc_ca_crl(&ca, &crl, der, BUF, &len), HSMC_ERR_POLICY);
        CHECK(audit.last_op == HSMC_OP_CRL && audit.last == HSMC_ERR_POLICY);
    }
    CHECK_ERR(hsmc_ca_permit(&h1, &p, HSMC_OP_CSR, 0), HSMC_OK);
    CHECK_ERR(hsmc_ca_permit(&h1, &p, HSMC_OP_TLS, 0), HSMC_OK);
    CHECK_ERR(hsmc_ca_permit(&h1, &p, HSMC_OP_CERT_STORE, 0), HSMC_OK);
    p.role = HSMC_ROLE_CA;
    CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_CLIENT, csr, n, der, &len), HSMC_OK);
    CHECK_ERR(hsmc_ca_permit(&h1, &p, HSMC_OP_TLS, 0), HSMC_ERR_POLICY);
    CHECK_ERR(hsmc_ca_permit(&h1, &p, HSMC_OP_CSR, 0), HSMC_OK);
    CHECK_ERR(hsmc_ca_permit(&h1, &p, (hsmc_ca_op_t)99, 0), HSMC_ERR_ARG);
    hsmc_ca_free(&ca);
}

/* pkcs11-tool on token test2 lists the stored certificate with the key's id. */
static int listed(const hsmc_key_t *key)
{
    static char out[16384];
    char id[2 * HSMC_MAX_ID_LEN + 1];
    size_t i;
    for (i = 0; i < key->priv.id_len; i++)
        snprintf(id + 2 * i, 3, "%02x", key->priv.id[i]);
    if (sh_out(out, sizeof out, "pkcs11-tool --module %s --token-label test2 -O --type cert",
               hsmc_test_env("HSMC_TEST_MODULE")) != 0)
        return 0;
    return contains(out, "Certificate Object") && contains(out, id) &&
           contains(out, key->priv.label);
}

static void test_certstore(void)
{
    static uint8_t der[BUF], der2[BUF], csr[BUF];
    static hsmc_cert_work_t work;
    static hsmc_ca_t ca;
    hsmc_san_t san[1] = {{HSMC_SAN_DNS, "gw1.example.com"}};
    size_t len = 0, len2, csr_len;
    unsigned certs;

    REQUIRE(ec.server_len > 0);
    certs = count_objects(&h2, 1, CKO_CERTIFICATE);
    CHECK_ERR(hsmc_cert_load(&h2, &ec.server, NULL, 0, &len), HSMC_ERR_OBJECT_NOT_FOUND);
    CHECK_ERR(hsmc_cert_store(&h2, &ec.server, ec.server_der, ec.server_len, &work), HSMC_OK);
    CHECK(count_objects(&h2, 1, CKO_CERTIFICATE) == certs + 1);
    CHECK_ERR(hsmc_cert_load(&h2, &ec.server, NULL, 0, &len), HSMC_OK);
    CHECK(len == ec.server_len);
    CHECK_ERR(hsmc_cert_load(&h2, &ec.server, der, len - 1, &len), HSMC_ERR_BUFFER);
    CHECK_ERR(hsmc_cert_load(&h2, &ec.server, der, sizeof der, &len), HSMC_OK);
    CHECK(len == ec.server_len && memcmp(der, ec.server_der, len) == 0);
    CHECK_ERR(hsmc_cert_load_label(&h2, "ec-server", der, sizeof der, &len), HSMC_OK);
    CHECK(len == ec.server_len && memcmp(der, ec.server_der, len) == 0);
    CHECK(listed(&ec.server));
    /* the key still opens by its label (the certificate shares it) */
    {
        hsmc_key_t again;
        CHECK_ERR(hsmc_key_open(&h2, "ec-server", &again), HSMC_OK);
    }
    /* another key's certificate: refused, nothing created */
    CHECK_ERR(hsmc_cert_store(&h2, &ec.server, ec.client_der, ec.client_len, &work),
              HSMC_ERR_CERT_KEY);
    CHECK_ERR(hsmc_cert_store(&h2, &ec.client, ec.server_der, ec.server_len, &work),
              HSMC_ERR_CERT_KEY);
    CHECK_ERR(hsmc_cert_store(&h2, &ec.server, ec.server_der, ec.server_len - 1, &work),
              HSMC_ERR_FORMAT);
    CHECK(count_objects(&h2, 1, CKO_CERTIFICATE) == certs + 1);
    /* a new certificate for the same key replaces the old one */
    REQUIRE(open_int(&ca, &ec, &pol) == HSMC_OK);
    REQUIRE(token_csr(&h2, &ec.server, "gw1.example.com", san, 1, csr, &csr_len) == HSMC_OK);
    REQUIRE(issue(&ca, HSMC_PROFILE_MTLS_SERVER, csr, csr_len, der2, &len2) == HSMC_OK);
    hsmc_ca_free(&ca);
    CHECK_ERR(hsmc_cert_store(&h2, &ec.server, der2, len2, &work), HSMC_OK);
    CHECK(count_objects(&h2, 1, CKO_CERTIFICATE) == certs + 1);
    CHECK_ERR(hsmc_cert_load(&h2, &ec.server, der, sizeof der, &len), HSMC_OK);
    CHECK(len == len2 && memcmp(der, der2, len) == 0);
    /* RSA too, and the CA's own certificate on the CA token */
    CHECK_ERR(hsmc_cert_store(&h2, &rsa.client, rsa.client_der, rsa.client_len, &work), HSMC_OK);
    CHECK(listed(&rsa.client));
    CHECK_ERR(hsmc_cert_store(&h1, &ec.root, ec.root_der, ec.root_len, &work), HSMC_OK);
    CHECK_ERR(hsmc_cert_load_label(&h1, "ec-root", der, sizeof der, &len), HSMC_OK);
    CHECK(len == ec.root_len);
    CHECK_ERR(hsmc_cert_load_label(&h1, "nothing", der, sizeof der, &len),
              HSMC_ERR_OBJECT_NOT_FOUND);
}

/* CRLs: openssl verifies them and refuses revoked leaves. */
static void crl_family(family_t *f)
{
    static uint8_t der[BUF];
    static hsmc_ca_t ca;
    hsmc_revoked_t rev[3];
    hsmc_crl_req_t req;
    mbedtls_x509_crt crt;
    char out[8192], serial_hex[64], crl_pem[600], chain_pem[600];
    size_t len = 0, bound = 0, i;
    unsigned before;

    REQUIRE(f->client_len > 0);
    mbedtls_x509_crt_init(&crt);
    REQUIRE(mbedtls_x509_crt_parse_der(&crt, f->client_der, f->client_len) == 0);
    memset(rev, 0, sizeof rev);
    memcpy(rev[0].serial, crt.serial.p, crt.serial.len);
    rev[0].serial_len = crt.serial.len;
    rev[0].reason = HSMC_CRL_REASON_KEY_COMPROMISE;
    for (i = 0; i < crt.serial.len; i++)
        snprintf(serial_hex + 2 * i, 3, "%02X", crt.serial.p[i]);
    mbedtls_x509_crt_free(&crt);
    CHECK_ERR(hsmc_crl_parse_line("0x01:02:FF 20250102030405Z superseded\n", 39, &rev[1]), HSMC_OK);
    CHECK(rev[1].serial_len == 3 && rev[1].serial[2] == 0xFF &&
          rev[1].reason == HSMC_CRL_REASON_SUPERSEDED && rev[1].when == 1735787045LL);
    CHECK_ERR(hsmc_crl_parse_line("80aa", 4, &rev[2]), HSMC_OK); /* high bit: INTEGER gets 00 */

    REQUIRE(open_int(&ca, f, &pol) == HSMC_OK);
    memset(&req, 0, sizeof req);
    req.revoked = rev;
    req.count = 3;
    req.next_update_hours = 24;
    req.number = 42;
    CHECK(hsmc_ca_crl(&ca, &req, NULL, 0, &bound) == HSMC_OK);
    before = audit.count;
    CHECK_ERR(hsmc_ca_crl(&ca, &req, der, sizeof der, &len), HSMC_OK);
    CHECK(len <= bound && audit.count == before + 1 && audit.last_op == HSMC_OP_CRL &&
          audit.last_serial_len == 1);
    snprintf(crl_pem, sizeof crl_pem, "%s",
             hsmc_test_path(f == &ec ? "ec-crl.pem" : "rsa-crl.pem"));
    REQUIRE(write_pem(crl_pem, "X509 CRL", der, len) == 0);
    snprintf(chain_pem, sizeof chain_pem, "%s", hsmc_test_path("cas.pem"));
    REQUIRE(hsmc_test_system("cat %s %s > %s", f->int_pem, f->root_pem, chain_pem) == 0);
    CHECK(sh_out(out, sizeof out, "openssl crl -in %s -CAfile %s -noout", crl_pem, chain_pem) == 0);
    CHECK(contains(out, "verify OK"));
    CHECK(sh_out(out, sizeof out, "openssl crl -in %s -noout -text", crl_pem) == 0);
    CHECK(contains(out, serial_hex) && contains(out, "Key Compromise") &&
          contains(out, "0102FF") && contains(out, "80AA") && contains(out, "X509v3 CRL Number") &&
          contains(out, "X509v3 Authority Key Identifier") && contains(out, "Version 2"));
    CHECK(sh_out(out, sizeof out, "certtool --crl-info --infile %s", crl_pem) == 0);
    /* the revoked leaf is refused, the others pass */
    CHECK(sh_out(out, sizeof out, "openssl verify -crl_check -CRLfile %s -CAfile %s -untrusted %s %s",
                 crl_pem, f->root_pem, f->int_pem, f->client_pem) != 0);
    CHECK(contains(out, "revoked"));
    CHECK(sh_out(out, sizeof out, "openssl verify -crl_check -CRLfile %s -CAfile %s -untrusted %s %s",
                 crl_pem, f->root_pem, f->int_pem, f->server_pem) == 0);
    /* bad entries */
    rev[2].serial_len = 0;
    CHECK_ERR(hsmc_ca_crl(&ca, &req, der, sizeof der, &len), HSMC_ERR_ARG);
    rev[2].serial_len = 2;
    rev[2].reason = 7;
    CHECK_ERR(hsmc_ca_crl(&ca, &req, der, sizeof der, &len), HSMC_ERR_ARG);
    rev[2].reason = 0;
    CHECK_ERR(hsmc_ca_crl(&ca, &req, der, 50, &len), HSMC_ERR_BUFFER);
    CHECK(len >= bound);
    hsmc_ca_free(&ca);

    /* an empty CRL from the root (a root operation: allowed with ceremony) */
    {
        static hsmc_ca_t root;
        hsmc_ca_init(&root);
        REQUIRE(hsmc_ca_open(&root, &h1, &f->root, f->root_der, f->root_len, &pol) == HSMC_OK);
        memset(&req, 0, sizeof req);
        CHECK_ERR(hsmc_ca_crl(&root, &req, der, sizeof der, &len), HSMC_OK);
        REQUIRE(write_pem(crl_pem, "X509 CRL", der, len) == 0);
        CHECK(sh_out(out, sizeof out, "openssl crl -in %s -CAfile %s -noout", crl_pem,
                     f->root_pem) == 0);
        CHECK(contains(out, "verify OK"));
        hsmc_ca_free(&root);
    }
}

static void test_crl(void)
{
    hsmc_revoked_t r;
    CHECK_ERR(hsmc_crl_parse_line("   # comment", 12, &r), HSMC_ERR_OBJECT_NOT_FOUND);
    CHECK_ERR(hsmc_crl_parse_line("", 0, &r), HSMC_ERR_OBJECT_NOT_FOUND);
    CHECK_ERR(hsmc_crl_parse_line("00", 2, &r), HSMC_ERR_FORMAT);
    CHECK_ERR(hsmc_crl_parse_line("0g", 2, &r), HSMC_ERR_FORMAT);
    CHECK_ERR(hsmc_crl_parse_line("01 nonsense", 11, &r), HSMC_ERR_FORMAT);
    CHECK_ERR(hsmc_crl_parse_line("01 keyCompromise 20250101000000Z", 32, &r), HSMC_ERR_FORMAT);
    CHECK_ERR(hsmc_crl_parse_line("0102030405060708090a0b0c0d0e0f101112131415", 42, &r),
              HSMC_ERR_FORMAT);
    CHECK_ERR(hsmc_crl_parse_line("01 cACompromise", 15, &r), HSMC_OK);
    CHECK(r.reason == HSMC_CRL_REASON_CA_COMPROMISE && r.serial_len == 1 && r.when == 0);
    crl_family(&ec);
    crl_family(&rsa);
}

/* Injected token faults: a failed replace keeps the old certificate, a lost
 * session is recovered, failed signatures and RNG calls leave nothing. */
static void test_faults(void)
{
    static uint8_t der[BUF], der2[BUF], csr[BUF];
    static hsmc_cert_work_t work;
    static hsmc_ca_t ca;
    static uint8_t chain[2 * BUF];
    hsmc_fault_api_t fault;
    hsmc_san_t san[1] = {{HSMC_SAN_DNS, "gw1.example.com"}};
    const char *proxy = hsmc_test_fault_load(&fault);
    hsmc_t fd, fc;
    hsmc_cfg_t cfg;
    hsmc_key_t dev, cakey;
    size_t len = 0, len2 = 0, csr_len = 0, cur_len = 0;
    unsigned certs, before;

    if (proxy == NULL) {
        fprintf(stderr, "note %s: no fault proxy; skipped\n", hsmc_test_name);
        return;
    }
    REQUIRE(ec.server_len > 0);
    fault.clear();
    hsmc_test_cfg(&cfg, "test2");
    cfg.module_path = proxy;
    hsmc_init(&fd);
    REQUIRE(hsmc_open(&fd, &cfg) == HSMC_OK);
    hsmc_test_cfg(&cfg, "test");
    cfg.module_path = proxy;
    hsmc_init(&fc);
    REQUIRE(hsmc_open(&fc, &cfg) == HSMC_OK);
    REQUIRE(hsmc_key_open(&fd, "ec-server", &dev) == HSMC_OK);
    REQUIRE(hsmc_key_open(&fc, "ec-int", &cakey) == HSMC_OK);
    memcpy(chain, ec.int_der, ec.int_len);
    memcpy(chain + ec.int_len, ec.root_der, ec.root_len);
    hsmc_ca_init(&ca);
    REQUIRE(hsmc_ca_open(&ca, &fc, &cakey, chain, ec.int_len + ec.root_len, &pol) == HSMC_OK);
    REQUIRE(token_csr(&h2, &ec.server, "gw1.example.com", san, 1, csr, &csr_len) == HSMC_OK);

    /* signing fails in the token: error, audit record, buffer wiped; then fine again */
    before = audit.count;
    fault.set("C_Sign", CKR_DEVICE_ERROR, 0, 1);
    memset(der, 0x5A, sizeof der);
    CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_SERVER, csr, csr_len, der, &len), HSMC_ERR_TOKEN);
    CHECK(audit.count == before + 1 && audit.last == HSMC_ERR_TOKEN);
    CHECK(der[0] == 0 && der[BUF - 1] == 0);
    fault.set("C_GenerateRandom", CKR_DEVICE_ERROR, 0, 1);
    fault.reset_counts();
    CHECK(issue(&ca, HSMC_PROFILE_MTLS_SERVER, csr, csr_len, der, &len) != HSMC_OK);
    CHECK(fault.calls("C_Sign") == 0);
    fault.clear();
    REQUIRE(issue(&ca, HSMC_PROFILE_MTLS_SERVER, csr, csr_len, der2, &len2) == HSMC_OK);

    certs = count_objects(&h2, 1, CKO_CERTIFICATE);
    REQUIRE(hsmc_cert_load(&fd, &dev, der, sizeof der, &cur_len) == HSMC_OK);
    /* the old certificate cannot be destroyed: the new one is removed again */
    fault.set("C_DestroyObject", CKR_DEVICE_ERROR, 0, 1);
    CHECK_ERR(hsmc_cert_store(&fd, &dev, der2, len2, &work), HSMC_ERR_TOKEN);
    fault.clear();
    CHECK(count_objects(&h2, 1, CKO_CERTIFICATE) == certs);
    CHECK_ERR(hsmc_cert_load(&fd, &dev, der, sizeof der, &len), HSMC_OK);
    CHECK(len == cur_len);
    /* creation fails: nothing changes */
    fault.set("C_CreateObject", CKR_DEVICE_MEMORY, 0, 1);
    CHECK(hsmc_cert_store(&fd, &dev, der2, len2, &work) != HSMC_OK);
    fault.clear();
    CHECK(count_objects(&h2, 1, CKO_CERTIFICATE) == certs);
    /* the session is lost right after creating: recovered, still one certificate */
    fault.reset_counts();
    fault.close_sessions_on("C_FindObjectsInit", 0);
    CHECK_ERR(hsmc_cert_store(&fd, &dev, der2, len2, &work), HSMC_OK);
    CHECK(fault.calls("C_CreateObject") == 2); /* made again after the recovery */
    fault.clear();
    CHECK(count_objects(&h2, 1, CKO_CERTIFICATE) == certs);
    CHECK_ERR(hsmc_cert_load(&fd, &dev, der, sizeof der, &len), HSMC_OK);
    CHECK(len == len2 && memcmp(der, der2, len) == 0);
    CHECK(hsmc_recoveries(&fd) >= 1);

    hsmc_ca_free(&ca);
    hsmc_close(&fc);
    hsmc_close(&fd);
}

/* A CA certificate made elsewhere (openssl, software root) with its own
 * kind of SKI: AKIs of what hsmc issues under it carry that SKI. */
static void test_external_root(void)
{
    static uint8_t csr[BUF], der[BUF], chain[2 * BUF];
    static char pem[3 * BUF];
    static hsmc_ca_t ca;
    hsmc_san_t san[1] = {{HSMC_SAN_URI, "spiffe://example.org/device/77"}};
    hsmc_key_t ik, dk;
    size_t csr_len = 0, len = 0, n;
    char out[4096];
    hsmc_crl_req_t crl;

    REQUIRE(hsmc_test_system(
                "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout %s "
                "-subj '/CN=Software Root/O=elsewhere' -days 30 -out %s >/dev/null 2>&1",
                hsmc_test_path("sw-root.key"), hsmc_test_path("sw-root.pem")) == 0);
    REQUIRE(hsmc_test_write_file(hsmc_test_path("ext.cnf"),
                                 "[v3]\nbasicConstraints=critical,CA:TRUE,pathlen:0\n"
                                 "keyUsage=critical,keyCertSign,cRLSign\n"
                                 "subjectKeyIdentifier=0102030405060708\n"
                                 "authorityKeyIdentifier=keyid\n",
                                 strlen("[v3]\nbasicConstraints=critical,CA:TRUE,pathlen:0\n"
                                        "keyUsage=critical,keyCertSign,cRLSign\n"
                                        "subjectKeyIdentifier=0102030405060708\n"
                                        "authorityKeyIdentifier=keyid\n")));
    REQUIRE(hsmc_test_gen(&h1, "ext-int", HSMC_ALG_P256, HSMC_USE_SIGN, &ik) == HSMC_OK);
    REQUIRE(token_csr(&h1, &ik, "Token Issuing CA", NULL, 0, csr, &csr_len) == HSMC_OK);
    REQUIRE(hsmc_test_write_file(hsmc_test_path("ext-int.csr"), csr, csr_len));
    REQUIRE(hsmc_test_system(
                "openssl x509 -req -inform DER -in %s -CA %s -CAkey %s -set_serial 7 -days 20 "
                "-extfile %s -extensions v3 -out %s >/dev/null 2>&1",
                hsmc_test_path("ext-int.csr"), hsmc_test_path("sw-root.pem"),
                hsmc_test_path("sw-root.key"), hsmc_test_path("ext.cnf"),
                hsmc_test_path("ext-int.pem")) == 0);
    REQUIRE(hsmc_test_system("cat %s %s > %s", hsmc_test_path("ext-int.pem"),
                             hsmc_test_path("sw-root.pem"), hsmc_test_path("ext-chain.pem")) == 0);
    n = hsmc_test_read_file(hsmc_test_path("ext-chain.pem"), (uint8_t *)pem, sizeof pem - 1);
    REQUIRE(hsmc_ca_pem_to_der("CERTIFICATE", pem, n, chain, sizeof chain, &len) == HSMC_OK);
    hsmc_ca_init(&ca);
    REQUIRE(hsmc_ca_open(&ca, &h1, &ik, chain, len, &pol) == HSMC_OK);
    CHECK(ca.ski_len == 8 && ca.ski[0] == 1 && ca.ski[7] == 8);
    CHECK(!ca.is_root);
    REQUIRE(hsmc_test_gen(&h2, "ext-dev", HSMC_ALG_P256, HSMC_USE_SIGN, &dk) == HSMC_OK);
    REQUIRE(token_csr(&h2, &dk, "device-77", san, 1, csr, &csr_len) == HSMC_OK);
    CHECK_ERR(issue(&ca, HSMC_PROFILE_MTLS_CLIENT, csr, csr_len, der, &len), HSMC_OK);
    write_pem(hsmc_test_path("ext-leaf.pem"), "CERTIFICATE", der, len);
    check_cert(hsmc_test_path("ext-leaf.pem"), hsmc_test_path("ext-int.pem"), "mtls_client", "none",
               NULL);
    check_verify(hsmc_test_path("sw-root.pem"), hsmc_test_path("ext-int.pem"),
                 hsmc_test_path("ext-leaf.pem"), "sslclient");
    /* the default validity is cut to the issuer's 20 days */
    {
        char end2[256];
        CHECK(sh_out(out, sizeof out, "openssl x509 -in %s -noout -enddate",
                     hsmc_test_path("ext-leaf.pem")) == 0);
        CHECK(sh_out(end2, sizeof end2, "openssl x509 -in %s -noout -enddate",
                     hsmc_test_path("ext-int.pem")) == 0);
        CHECK(strcmp(out, end2) == 0);
    }
    memset(&crl, 0, sizeof crl);
    CHECK_ERR(hsmc_ca_crl(&ca, &crl, der, sizeof der, &len), HSMC_OK);
    write_pem(hsmc_test_path("ext-crl.pem"), "X509 CRL", der, len);
    CHECK(sh_out(out, sizeof out, "openssl crl -in %s -CAfile %s -noout",
                 hsmc_test_path("ext-crl.pem"), hsmc_test_path("ext-chain.pem")) == 0 &&
          contains(out, "verify OK"));
    CHECK(sh_out(out, sizeof out, "openssl crl -in %s -noout -text",
                 hsmc_test_path("ext-crl.pem")) == 0 &&
          contains(out, "01:02:03:04:05:06:07:08"));
    hsmc_ca_free(&ca);
}

static void test_misc(void)
{
    hsmc_profile_t p;
    CHECK_ERR(hsmc_profile_parse("mtls_client", &p), HSMC_OK);
    CHECK(p == HSMC_PROFILE_MTLS_CLIENT && strcmp(hsmc_profile_name(p), "mtls_client") == 0);
    CHECK_ERR(hsmc_profile_parse("tls", &p), HSMC_ERR_ARG);
    CHECK(strcmp(hsmc_profile_name((hsmc_profile_t)42), "?") == 0);
    CHECK(strcmp(hsmc_strerror(HSMC_ERR_CSR_EXT), "unknown error") != 0);
    CHECK(strcmp(hsmc_err_name(HSMC_ERR_MIN), "HSMC_ERR_UNKNOWN") != 0);
    /* calendar arithmetic, through revocation dates */
    {
        hsmc_revoked_t r;
        CHECK_ERR(hsmc_crl_parse_line("01 20000229235959Z", 18, &r), HSMC_OK);
        CHECK(r.when == 951868799LL);
        CHECK_ERR(hsmc_crl_parse_line("01 19700101000000Z", 18, &r), HSMC_OK);
        CHECK(r.when == 0);
        CHECK_ERR(hsmc_crl_parse_line("01 21000301000000Z", 18, &r), HSMC_OK);
        CHECK(r.when == 4107542400LL);
    }
}

int main(void)
{
    hsmc_cfg_t cfg;

    hsmc_init(&h1);
    hsmc_init(&h2);
    hsmc_test_cfg(&cfg, "test");
    if (hsmc_open(&h1, &cfg) != HSMC_OK) {
        fprintf(stderr, "open test: %s\n", hsmc_detail(&h1));
        return 1;
    }
    hsmc_test_cfg(&cfg, "test2");
    if (hsmc_open(&h2, &cfg) != HSMC_OK) {
        fprintf(stderr, "open test2: %s\n", hsmc_detail(&h2));
        return 1;
    }
    hsmc_ca_policy_init(&pol);
    pol.allow_root = 1;
    pol.ceremony = "CER-2026-001";
    pol.operator_id = "test_ca";
    pol.audit = audit_cb;
    pol.profile[HSMC_PROFILE_MTLS_SERVER].names.dns = "example.com, .svc.example.com";
    pol.profile[HSMC_PROFILE_MTLS_SERVER].names.ip = "10.0.0.0/8,fd00::/8";
    pol.profile[HSMC_PROFILE_MTLS_CLIENT].names.uri = "spiffe://example.org/device/";
    pol.profile[HSMC_PROFILE_MTLS_CLIENT].names.cn = "device-*";
    pol.profile[HSMC_PROFILE_MTLS_CLIENT].names.require = HSMC_REQ_URI;
    pol.profile[HSMC_PROFILE_SIGNING].names.email = "example.com";

    RUN(test_misc);
    RUN(test_chain_ec);
    RUN(test_chain_rsa);
    RUN(test_openssl_csrs);
    RUN(test_hostile);
    RUN(test_root_gate);
    RUN(test_roles);
    RUN(test_certstore);
    RUN(test_crl);
    RUN(test_faults);
    RUN(test_external_root);

    hsmc_close(&h2);
    hsmc_close(&h1);
    return TEST_END();
}
