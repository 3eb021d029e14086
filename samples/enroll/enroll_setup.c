/*
 * enroll_setup: the "before" of the enrollment sample, done once.
 *
 * On the gateway's token (the CA side):
 *   enroll-root     P-384 root CA key, self-signed root certificate
 *   enroll-issuing  P-256 issuing CA (intermediate under the root): signs
 *                   the devices' operational certificates
 *   enroll-factory  P-256 factory CA (intermediate under the root): signed
 *                   the bootstrap certificates at manufacturing
 *   gateway-tls     P-256 TLS server key, certificate for "localhost" from
 *                   the issuing CA
 * On the device's token ("manufacturing"):
 *   bootstrap       P-256 key + certificate (CN = device id) from the
 *                   factory CA: the identity the device enrolls with
 * With --rogue LABEL, also a counterfeit bootstrap identity (same CN, from
 * a throw-away root nobody trusts), to show the server's refusal.
 *
 * Every certificate is stored on its token next to its key
 * (hsmc_cert_store); root.pem, issuing.pem and factory.pem are written to
 * --dir for the programs and for openssl.
 *
 * A sample simplification: the root and the factory CA keys sit on the
 * gateway token. In production the root is offline and the factory CA is
 * in the manufacturing station's HSM.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enroll_common.h"
#include "hsmc/ca.h"
#include "hsmc/x509.h"

#define WHO "enroll_setup"
#define CERT_MAX 4096

static const char usage[] =
    "usage: enroll_setup --dir DIR --gateway-token LABEL --gateway-pin-file FILE\n"
    "                    --device-token LABEL --device-pin-file FILE --device-id ID\n"
    "                    [--module PATH] [--rogue LABEL]\n"
    "Makes the sample PKI (root, issuing CA, factory CA, gateway TLS certificate) on the\n"
    "gateway token, and the device's bootstrap key + certificate on the device token.\n"
    "Writes DIR/root.pem, DIR/issuing.pem, DIR/factory.pem.\n"
    "  --rogue LABEL   also a counterfeit bootstrap identity LABEL on the device token\n"
    "                  (issued by an untrusted root), for the refusal demo\n";

static hsmc_t gw, dev;           /* gateway token, device token */
static hsmc_ca_policy_t pol;
static hsmc_ca_t root_ca, int_ca; /* large contexts: static, not on the stack */
static char dir[512];

static int gen(hsmc_t *h, const char *label, hsmc_purpose_t purpose, int session, hsmc_key_t *key)
{
    hsmc_key_spec_t spec;
    hsmc_err_t err = hsmc_purpose_spec(purpose, &spec);
    spec.session = session;
    if (err == HSMC_OK)
        err = hsmc_key_generate(h, label, &spec, key);
    return err == HSMC_OK ? 0 : enroll_fail(WHO, h, err, label);
}

/* A CSR made by the token key: subject CN (+ O), optional DNS name. */
static int csr(hsmc_t *h, const hsmc_key_t *key, const char *cn, const char *dns, uint8_t *out,
               size_t *len)
{
    hsmc_csr_req_t req;
    hsmc_san_t san = {HSMC_SAN_DNS, NULL};
    hsmc_err_t err;

    hsmc_csr_req_init(&req);
    req.cn = cn;
    req.o = "hsmc sample";
    if (dns != NULL) {
        san.value = dns;
        req.san = &san;
        req.san_count = 1;
    }
    err = hsmc_csr_create(h, key, &req, HSMC_X509_DER, out, CERT_MAX, len);
    return err == HSMC_OK ? 0 : enroll_fail(WHO, h, err, cn);
}

static int issue(hsmc_t *h, hsmc_ca_t *ca, hsmc_profile_t profile, const uint8_t *csr_der,
                 size_t csr_len, const char *subject, uint8_t *out, size_t *len)
{
    hsmc_issue_req_t req;
    hsmc_err_t err;
    memset(&req, 0, sizeof req);
    req.profile = profile;
    req.csr = csr_der;
    req.csr_len = csr_len;
    req.subject = subject;
    err = hsmc_ca_issue(ca, &req, out, CERT_MAX, len, NULL);
    return err == HSMC_OK ? 0 : enroll_fail(WHO, h, err, hsmc_profile_name(profile));
}

static int store(hsmc_t *h, const hsmc_key_t *key, const uint8_t *der, size_t len)
{
    static hsmc_cert_work_t work;
    hsmc_err_t err = hsmc_cert_store(h, key, der, len, &work);
    return err == HSMC_OK ? 0 : enroll_fail(WHO, h, err, "store certificate");
}

static int write_pem(const char *name, const uint8_t *der, size_t len)
{
    static char pem[2 * CERT_MAX];
    char path[600];
    size_t n;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (hsmc_pem_write("CERTIFICATE", der, len, pem, sizeof pem, &n) != HSMC_OK ||
        enroll_write_file(path, pem, n) != 0) {
        fprintf(stderr, WHO ": cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* Leaf or intermediate: key on token h, CSR, issued by ca, stored, PEM written. */
static int make(hsmc_t *h, const char *label, hsmc_purpose_t purpose, hsmc_ca_t *ca,
                hsmc_profile_t profile, const char *cn, const char *dns, const char *pem_name,
                hsmc_key_t *key, uint8_t *cert, size_t *cert_len)
{
    static uint8_t req[CERT_MAX];
    size_t req_len = 0;
    if (gen(h, label, purpose, 0, key) != 0 || csr(h, key, cn, dns, req, &req_len) != 0 ||
        issue(&gw, ca, profile, req, req_len, NULL, cert, cert_len) != 0 ||
        store(h, key, cert, *cert_len) != 0)
        return -1;
    if (pem_name != NULL && write_pem(pem_name, cert, *cert_len) != 0)
        return -1;
    printf("  %-15s %s\n", label, cn);
    return 0;
}

/* A counterfeit bootstrap identity: same CN, issued by a root that exists
 * only for this call (a session key, gone when the token is closed). */
static int make_rogue(const char *label, const char *device_id)
{
    static uint8_t root_der[CERT_MAX], req[CERT_MAX], cert[CERT_MAX];
    hsmc_key_t rkey, key;
    hsmc_ca_t *ca = &root_ca; /* reused: the real root context is closed by now */
    size_t root_len = 0, req_len = 0, cert_len = 0;
    int rc = -1;

    hsmc_ca_init(ca);
    if (gen(&gw, "rogue-root", HSMC_PURPOSE_CA_ROOT, 1, &rkey) != 0 ||
        hsmc_ca_open(ca, &gw, &rkey, NULL, 0, &pol) != HSMC_OK ||
        issue(&gw, ca, HSMC_PROFILE_CA_ROOT, NULL, 0, "CN=Counterfeit Root,O=nobody", root_der,
              &root_len) != 0)
        goto out;
    if (gen(&dev, label, HSMC_PURPOSE_MTLS_CLIENT, 0, &key) != 0 ||
        csr(&dev, &key, device_id, NULL, req, &req_len) != 0 ||
        issue(&gw, ca, HSMC_PROFILE_MTLS_CLIENT, req, req_len, NULL, cert, &cert_len) != 0 ||
        store(&dev, &key, cert, cert_len) != 0)
        goto out;
    printf("  %-15s %s (counterfeit: issued by an untrusted root)\n", label, device_id);
    rc = 0;
out:
    hsmc_ca_free(ca);
    return rc;
}

int main(int argc, char **argv)
{
    static uint8_t root_der[CERT_MAX], int_der[CERT_MAX], fac_der[CERT_MAX], cert[CERT_MAX];
    static uint8_t chain[2 * CERT_MAX];
    enroll_token_opts_t gw_opts, dev_opts;
    const char *device_id = NULL, *rogue = NULL;
    hsmc_key_t root_key, int_key, fac_key, key;
    size_t root_len = 0, int_len = 0, fac_len = 0, len = 0;
    hsmc_err_t err;
    int i, rc = 1;

    enroll_token_opts_env(&gw_opts);
    gw_opts.token = gw_opts.pin_file = NULL;
    dev_opts = gw_opts;
    dir[0] = '\0';
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (v == NULL) {
            fprintf(stderr, WHO ": %s needs a value\n%s", a, usage);
            return 1;
        }
        i++;
        if (strcmp(a, "--module") == 0)
            gw_opts.module = dev_opts.module = v;
        else if (strcmp(a, "--dir") == 0)
            snprintf(dir, sizeof dir, "%s", v);
        else if (strcmp(a, "--gateway-token") == 0)
            gw_opts.token = v;
        else if (strcmp(a, "--gateway-pin-file") == 0)
            gw_opts.pin_file = v;
        else if (strcmp(a, "--device-token") == 0)
            dev_opts.token = v;
        else if (strcmp(a, "--device-pin-file") == 0)
            dev_opts.pin_file = v;
        else if (strcmp(a, "--device-id") == 0)
            device_id = v;
        else if (strcmp(a, "--rogue") == 0)
            rogue = v;
        else {
            fprintf(stderr, WHO ": unknown option %s\n%s", a, usage);
            return 1;
        }
    }
    if (dir[0] == '\0' || device_id == NULL || !enroll_id_valid(device_id, strlen(device_id))) {
        fprintf(stderr, WHO ": give --dir and a --device-id of letters, digits, '.', '_', '-'\n%s",
                usage);
        return 1;
    }
    if (enroll_token_open(&gw, &gw_opts, WHO) != 0)
        return 1;
    if (enroll_token_open(&dev, &dev_opts, WHO) != 0) {
        hsmc_close(&gw);
        return 1;
    }

    /* Making a root and issuing from it pass the root gate: allowed here,
     * with a ceremony reference, and nowhere else in the sample. */
    hsmc_ca_policy_init(&pol);
    pol.allow_root = 1;
    pol.ceremony = "enroll-sample-setup";
    pol.operator_id = WHO;
    pol.profile[HSMC_PROFILE_MTLS_SERVER].names.dns = "localhost";
    hsmc_ca_init(&root_ca);
    hsmc_ca_init(&int_ca);

    printf("gateway token %s:\n", gw_opts.token);
    if (gen(&gw, "enroll-root", HSMC_PURPOSE_CA_ROOT, 0, &root_key) != 0)
        goto out;
    err = hsmc_ca_open(&root_ca, &gw, &root_key, NULL, 0, &pol);
    if (err != HSMC_OK) {
        enroll_fail(WHO, &gw, err, "open root");
        goto out;
    }
    if (issue(&gw, &root_ca, HSMC_PROFILE_CA_ROOT, NULL, 0, "CN=hsmc Sample Root,O=hsmc sample",
              root_der, &root_len) != 0 ||
        store(&gw, &root_key, root_der, root_len) != 0 ||
        write_pem("root.pem", root_der, root_len) != 0)
        goto out;
    printf("  %-15s %s\n", "enroll-root", "hsmc Sample Root");
    if (make(&gw, "enroll-issuing", HSMC_PURPOSE_CA_INTERMEDIATE, &root_ca,
             HSMC_PROFILE_CA_INTERMEDIATE, "hsmc Sample Issuing CA", NULL, "issuing.pem",
             &int_key, int_der, &int_len) != 0 ||
        make(&gw, "enroll-factory", HSMC_PURPOSE_CA_INTERMEDIATE, &root_ca,
             HSMC_PROFILE_CA_INTERMEDIATE, "hsmc Sample Factory CA", NULL, "factory.pem",
             &fac_key, fac_der, &fac_len) != 0)
        goto out;
    hsmc_ca_free(&root_ca);

    /* The gateway's TLS certificate comes from the issuing CA. */
    memcpy(chain, int_der, int_len);
    memcpy(chain + int_len, root_der, root_len);
    err = hsmc_ca_open(&int_ca, &gw, &int_key, chain, int_len + root_len, &pol);
    if (err != HSMC_OK) {
        enroll_fail(WHO, &gw, err, "open issuing CA");
        goto out;
    }
    if (make(&gw, "gateway-tls", HSMC_PURPOSE_MTLS_SERVER, &int_ca, HSMC_PROFILE_MTLS_SERVER,
             "gateway", "localhost", "gateway.pem", &key, cert, &len) != 0)
        goto out;
    hsmc_ca_free(&int_ca);

    /* Manufacturing: the factory CA certifies the device's bootstrap key. */
    memcpy(chain, fac_der, fac_len);
    memcpy(chain + fac_len, root_der, root_len);
    err = hsmc_ca_open(&int_ca, &gw, &fac_key, chain, fac_len + root_len, &pol);
    if (err != HSMC_OK) {
        enroll_fail(WHO, &gw, err, "open factory CA");
        goto out;
    }
    printf("device token %s:\n", dev_opts.token);
    if (make(&dev, "bootstrap", HSMC_PURPOSE_MTLS_CLIENT, &int_ca, HSMC_PROFILE_MTLS_CLIENT,
             device_id, NULL, NULL, &key, cert, &len) != 0)
        goto out;
    hsmc_ca_free(&int_ca);
    if (rogue != NULL && make_rogue(rogue, device_id) != 0)
        goto out;
    printf("wrote %s/root.pem, issuing.pem, factory.pem, gateway.pem\n", dir);
    rc = 0;
out:
    hsmc_ca_free(&root_ca);
    hsmc_ca_free(&int_ca);
    hsmc_close(&dev);
    hsmc_close(&gw);
    return rc;
}
