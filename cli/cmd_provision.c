/*
 * cmd_provision.c: `hsmc provision`: the manufacturing station. For each
 * device of a CSV manifest: open its token, generate (or reuse) its key,
 * make its CSR, issue its certificate with the line CA in the station
 * token, store the certificate on the device token, read it back, and
 * append a signed record to the audit trail. A device whose token already
 * holds a certificate for its key that verifies against the CA chain is
 * skipped, so a re-run after an interruption finishes what was left.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>

#include "cli.h"
#include "hsmc/ca.h"
#include "hsmc/x509.h"

#define PV_MANIFEST_MAX ((size_t)16 * 1024 * 1024)
#define PV_CERT_MAX 8192u
#define PV_SUBJECT_MAX 512u

static const cli_opt_t prov_opts[] = {
    {"manifest", 0, "FILE", "CSV with header device_id,token_uri (one device per line)"},
    {"ca-key", 0, "LABEL", "the line CA key in the station token"},
    {"ca-cert", 0, "FILE", "the CA certificate, then its issuers (PEM)"},
    {"audit-key", 0, "LABEL", "the audit signing key in the station token"},
    {"audit-file", 0, "FILE", "the audit trail to append to (created when missing)"},
    {"profile", 0, "NAME", "certificate profile (default mtls_client)"},
    {"subject-template", 0, "DN", "subject; {id} is the device id (default \"CN={id}\")"},
    {"key-label", 0, "LABEL", "label of the device key (default device-key)"},
    {"operator", 0, "NAME", "who runs the station, for the audit trail (default $USER)"},
    {NULL, 0, NULL, NULL}};

typedef struct pv_dev {
    char *id;
    char *uri;
} pv_dev_t;

typedef struct pv_run {
    cli_ctx_t *c;
    hsmc_ca_policy_t pol;
    hsmc_key_t ca_key, audit_key;
    hsmc_ca_t ca;
    int ca_open;
    unsigned char *chain;
    size_t chain_len;
    mbedtls_x509_crt trust;      /* the CA chain, to check certificates found on devices */
    hsmc_audit_t audit;
    int audit_fd;
    hsmc_profile_t profile;
    const char *tmpl, *key_label, *operator_id, *role;
    hsmc_cert_work_t work;
    uint8_t csr[4096], cert[PV_CERT_MAX], back[PV_CERT_MAX], rec[HSMC_AUDIT_RECORD_MAX];
    char subject[PV_SUBJECT_MAX];
    char msg[512];
    /* Fingerprints of the certificates the trail already records (sorted). */
    uint8_t (*fps)[32];
    size_t nfps, fps_cap;
    int fps_oom;
} pv_run_t;

static int cmp_fp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* Collect the fingerprint of every successful provision record. */
static void note_record(void *user, const hsmc_audit_record_t *r)
{
    pv_run_t *x = (pv_run_t *)user;
    if (r->result != HSMC_OK || r->fingerprint.len != 32)
        return;
    if (x->nfps == x->fps_cap) {
        size_t cap = x->fps_cap ? 2 * x->fps_cap : 256;
        uint8_t(*n)[32] = (uint8_t(*)[32])realloc(x->fps, cap * 32);
        if (n == NULL) {
            x->fps_oom = 1;
            return;
        }
        x->fps = n;
        x->fps_cap = cap;
    }
    memcpy(x->fps[x->nfps++], r->fingerprint.ptr, 32);
}

/* 1 when the trail records a certificate with this DER. */
static int recorded(const pv_run_t *x, const uint8_t *der, size_t len)
{
    uint8_t fp[32];
    mbedtls_sha256_ret(der, len, fp, 0);
    return x->nfps > 0 && bsearch(fp, x->fps, x->nfps, 32, cmp_fp) != NULL;
}

static double pv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parse the manifest. @return CLI_EXIT_OK or an exit code (printed). */
static int read_manifest(const char *path, char **text, pv_dev_t **devs, size_t *n)
{
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0, line_no = 0;
    char *p, *line;
    int rc = cli_read_file(path, PV_MANIFEST_MAX, "--manifest", &buf, &len);
    *devs = NULL;
    *n = 0;
    if (rc != CLI_EXIT_OK)
        return rc;
    *text = (char *)buf;
    for (p = (char *)buf; p != NULL && *p != '\0';) {
        char *nl = strchr(p, '\n'), *comma, *end;
        line = p;
        p = nl != NULL ? nl + 1 : NULL;
        if (nl != NULL)
            *nl = '\0';
        end = line + strlen(line);
        while (end > line && (end[-1] == '\r' || end[-1] == ' '))
            *--end = '\0';
        line_no++;
        if (line[0] == '\0' || line[0] == '#')
            continue;
        if (line_no == 1) {
            if (strcmp(line, "device_id,token_uri") != 0) {
                cli_err("--manifest %s: the first line must be the header device_id,token_uri",
                        path);
                return CLI_EXIT_USAGE;
            }
            continue;
        }
        comma = strchr(line, ',');
        if (comma == NULL || comma == line || comma[1] == '\0' ||
            strncmp(comma + 1, "pkcs11:", 7) != 0) {
            cli_err("--manifest %s: line %lu: expected DEVICE_ID,pkcs11:URI", path,
                    (unsigned long)line_no);
            return CLI_EXIT_USAGE;
        }
        *comma = '\0';
        if (*n == cap) {
            pv_dev_t *nd;
            cap = cap ? 2 * cap : 64;
            nd = (pv_dev_t *)realloc(*devs, cap * sizeof(**devs));
            if (nd == NULL) {
                cli_err("out of memory");
                return CLI_EXIT_FAIL;
            }
            *devs = nd;
        }
        (*devs)[*n].id = line;
        (*devs)[*n].uri = comma + 1;
        (*n)++;
    }
    return CLI_EXIT_OK;
}

/* Subject from the template: every {id} replaced. @return 0 or -1 (too long). */
static int make_subject(pv_run_t *x, const char *id)
{
    const char *t = x->tmpl;
    size_t o = 0, idl = strlen(id);
    while (*t != '\0') {
        if (strncmp(t, "{id}", 4) == 0) {
            if (o + idl >= sizeof(x->subject))
                return -1;
            memcpy(x->subject + o, id, idl);
            o += idl;
            t += 4;
        } else {
            if (o + 1 >= sizeof(x->subject))
                return -1;
            x->subject[o++] = *t++;
        }
    }
    x->subject[o] = '\0';
    return 0;
}

/* 1 when der is a certificate that verifies against the CA chain. */
static int cert_valid(pv_run_t *x, const uint8_t *der, size_t len)
{
    mbedtls_x509_crt leaf;
    uint32_t flags = 0;
    int ok;
    mbedtls_x509_crt_init(&leaf);
    ok = mbedtls_x509_crt_parse_der(&leaf, der, len) == 0 &&
         mbedtls_x509_crt_verify(&leaf, &x->trust, NULL, NULL, &flags, NULL, NULL) == 0;
    mbedtls_x509_crt_free(&leaf);
    return ok;
}

/* Append one signed record. @return HSMC_OK or the error (message in x->msg). */
static hsmc_err_t audit_append(pv_run_t *x, const char *dev_id, const hsmc_key_t *key,
                               const uint8_t *serial, size_t serial_len, const uint8_t *cert,
                               size_t cert_len, hsmc_err_t result, const char *text)
{
    hsmc_audit_record_t r;
    uint8_t fp[32];
    size_t n = 0, off = 0;
    hsmc_err_t e;
    hsmc_audit_record_init(&r);
    r.time = (int64_t)time(NULL);
    r.op = hsmc_audit_text("provision");
    r.result = result;
    r.result_text = hsmc_audit_text(text);
    r.operator_id = hsmc_audit_text(x->operator_id);
    r.role = hsmc_audit_text(x->role);
    r.device_id = hsmc_audit_text(dev_id);
    if (key != NULL && key->priv.id_len > 0) {
        r.key_id.ptr = key->priv.id;
        r.key_id.len = key->priv.id_len;
    }
    r.key = hsmc_audit_text(x->key_label);
    if (serial != NULL) {
        r.serial.ptr = serial;
        r.serial.len = serial_len;
    }
    if (cert != NULL) {
        mbedtls_sha256_ret(cert, cert_len, fp, 0);
        r.fingerprint.ptr = fp;
        r.fingerprint.len = sizeof(fp);
    }
    e = hsmc_audit_sign(&x->audit, &r, x->rec, sizeof(x->rec), &n);
    if (e != HSMC_OK) {
        snprintf(x->msg, sizeof(x->msg), "cannot sign the audit record: %s", hsmc_strerror(e));
        return e;
    }
    while (off < n) {
        ssize_t w = write(x->audit_fd, x->rec + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(x->msg, sizeof(x->msg), "cannot write the audit file: %s", strerror(errno));
            return HSMC_ERR_IO;
        }
        off += (size_t)w;
    }
    if (fsync(x->audit_fd) != 0) {
        snprintf(x->msg, sizeof(x->msg), "cannot sync the audit file: %s", strerror(errno));
        return HSMC_ERR_IO;
    }
    return HSMC_OK;
}

/* Outcome of one device. */
enum { PV_DONE, PV_SKIPPED, PV_FAILED, PV_FATAL };

/* What to do about a device failure. */
static const char *dev_hint(hsmc_err_t e)
{
    switch (e) {
    case HSMC_ERR_PIN_INCORRECT:
    case HSMC_ERR_PIN_SOURCE:
    case HSMC_ERR_PIN_LOCKED:
    case HSMC_ERR_PIN_FINAL_TRY:
        return "fix the device token's pin-source in the manifest (the station PIN options do "
               "not apply to device tokens), then run provision again";
    case HSMC_ERR_TOKEN_NOT_FOUND:
    case HSMC_ERR_TOKEN_NOT_PRESENT:
    case HSMC_ERR_TOKEN_AMBIGUOUS:
        return "check that the device is connected and the URI's token=/serial= match it, "
               "then run provision again";
    case HSMC_ERR_MODULE_LOAD:
    case HSMC_ERR_MODULE_INVALID:
    case HSMC_ERR_MODULE_INIT:
        return "check module-path= in the device URI";
    case HSMC_ERR_URI:
        return "fix the device's token_uri in the manifest (RFC 7512)";
    case HSMC_ERR_EXISTS:
        return "the device token has objects with the key label but no private key, and they "
               "are not public keys left by an interrupted key generation (provision removes "
               "those itself); look at them with `hsmc object list` on the device token and use "
               "another --key-label if they belong to something else";
    default:
        return "see the detail; run provision again to retry (finished devices are skipped)";
    }
}

/*
 * The key label is taken but no key opens: a run killed during the key-pair
 * generation leaves the public key alone. Remove such leftovers (only
 * public keys without their private key) and try the key once more.
 * @return the result of the second try, or HSMC_ERR_EXISTS with its
 *   detail kept in `detail` when nothing was left over.
 */
static hsmc_err_t retry_orphans(pv_run_t *x, hsmc_t *d, const pv_dev_t *dv, hsmc_key_t *key,
                                int *created, char *detail, size_t cap)
{
    unsigned removed = 0;
    hsmc_err_t e;

    snprintf(detail, cap, "%s", hsmc_detail(d));
    e = hsmc_key_remove_orphans(d, x->key_label, &removed);
    if (e != HSMC_OK) {
        snprintf(detail, cap, "removing the public keys left by an interrupted key generation "
                              "failed: %s", hsmc_detail(d));
        return e;
    }
    if (removed == 0)
        return HSMC_ERR_EXISTS;
    cli_note(x->c, "device %s: removed %u public key(s) left by an interrupted key generation",
             dv->id, removed);
    cli_log_msg(HSMC_LOG_WARN,
                "provision: device %s: removed %u public key(s) left by an interrupted key "
                "generation (label %s); generating the key again",
                dv->id, removed, x->key_label);
    detail[0] = '\0';
    return hsmc_key_find_or_create(d, x->key_label, HSMC_PURPOSE_MTLS_CLIENT, key, created);
}

static int provision_one(pv_run_t *x, const pv_dev_t *dv, size_t idx)
{
    cli_ctx_t *c = x->c;
    hsmc_t d;
    hsmc_cfg_t cfg;
    hsmc_uri_t uri;
    hsmc_key_t key;
    hsmc_csr_req_t creq;
    hsmc_issue_req_t ireq;
    hsmc_issued_t info;
    hsmc_err_t e;
    size_t csr_len = 0, cert_len = 0, back_len = 0;
    int created = 0, opened = 0, have_key = 0, rc = PV_FAILED;
    const char *step = "open the device token";
    char detail[300];

    hsmc_init(&d);
    hsmc_uri_init(&uri);
    memset(&key, 0, sizeof(key));
    detail[0] = '\0';
    e = hsmc_uri_parse(&uri, dv->uri, strlen(dv->uri));
    if (e == HSMC_OK) {
        hsmc_cfg_init(&cfg);
        cfg.module_path = c->cfg.module_path;
        e = hsmc_cfg_from_uri(&cfg, &uri);
    }
    if (e == HSMC_OK)
        e = hsmc_open(&d, &cfg);
    if (e != HSMC_OK)
        goto fail;
    opened = 1;
    step = "generate the device key";
    e = hsmc_key_find_or_create(&d, x->key_label, HSMC_PURPOSE_MTLS_CLIENT, &key, &created);
    if (e == HSMC_ERR_EXISTS)
        e = retry_orphans(x, &d, dv, &key, &created, detail, sizeof(detail));
    if (e != HSMC_OK)
        goto fail;
    have_key = 1;
    if (!created) {
        e = hsmc_cert_load(&d, &key, x->back, sizeof(x->back), &back_len);
        if (e == HSMC_OK && cert_valid(x, x->back, back_len)) {
            /* A run killed between storing the certificate and appending its
             * record leaves a certificate the trail does not know: record it
             * now (its serial and fingerprint), never issue a second one. */
            if (!recorded(x, x->back, back_len)) {
                mbedtls_x509_crt crt;
                mbedtls_x509_crt_init(&crt);
                (void)mbedtls_x509_crt_parse_der(&crt, x->back, back_len);
                e = audit_append(x, dv->id, &key, crt.serial.p, crt.serial.len, x->back,
                                 back_len, HSMC_OK,
                                 "certificate found on the device without an audit record "
                                 "(interrupted run); recorded now");
                mbedtls_x509_crt_free(&crt);
                if (e != HSMC_OK) {
                    hsmc_close(&d);
                    hsmc_uri_free(&uri);
                    cli_err("device %s: %s; stopping", dv->id, x->msg);
                    return PV_FATAL;
                }
                cli_note(c, "device %s: certificate already on the device, missing from the "
                            "trail (interrupted run): recorded, not re-issued", dv->id);
            }
            hsmc_close(&d);
            hsmc_uri_free(&uri);
            cli_log_msg(HSMC_LOG_INFO, "provision: device %s: skipped (certificate present)",
                        dv->id);
            return PV_SKIPPED;
        }
    }
    step = "make the CSR";
    if (make_subject(x, dv->id) != 0) {
        e = HSMC_ERR_LIMIT;
        snprintf(detail, sizeof(detail), "the subject is longer than %u bytes", PV_SUBJECT_MAX);
        goto fail;
    }
    hsmc_csr_req_init(&creq);
    creq.subject = x->subject;
    e = hsmc_csr_create(&d, &key, &creq, HSMC_X509_DER, x->csr, sizeof(x->csr), &csr_len);
    if (e != HSMC_OK)
        goto fail;
    step = "issue the certificate";
    memset(&ireq, 0, sizeof(ireq));
    ireq.profile = x->profile;
    ireq.csr = x->csr;
    ireq.csr_len = csr_len;
    e = hsmc_ca_issue(&x->ca, &ireq, x->cert, sizeof(x->cert), &cert_len, &info);
    if (e != HSMC_OK) {
        snprintf(detail, sizeof(detail), "%s", hsmc_detail(&c->h));
        goto fail;
    }
    step = "store the certificate on the device token";
    e = hsmc_cert_store(&d, &key, x->cert, cert_len, &x->work);
    if (e != HSMC_OK)
        goto fail;
    step = "read the certificate back";
    e = hsmc_cert_load(&d, &key, x->back, sizeof(x->back), &back_len);
    if (e == HSMC_OK && (back_len != cert_len || memcmp(x->back, x->cert, cert_len) != 0)) {
        e = HSMC_ERR_FORMAT;
        snprintf(detail, sizeof(detail), "the certificate read back differs from the one stored");
    }
    if (e != HSMC_OK)
        goto fail;
    e = audit_append(x, dv->id, &key, info.serial, sizeof(info.serial), x->cert, cert_len,
                     HSMC_OK, "provisioned");
    hsmc_close(&d);
    hsmc_uri_free(&uri);
    if (e != HSMC_OK) {
        cli_err("device %s: certificate stored, but %s; stopping (the trail must be checked "
                "with `hsmc audit verify` before the next run)", dv->id, x->msg);
        return PV_FATAL;
    }
    cli_log_msg(HSMC_LOG_INFO, "provision: device %s: provisioned%s", dv->id,
                created ? " (new key)" : " (existing key)");
    return PV_DONE;

fail:
    if (detail[0] == '\0' && opened)
        snprintf(detail, sizeof(detail), "%s", hsmc_detail(&d));
    else if (detail[0] == '\0' && hsmc_last_err(&d) == e)
        snprintf(detail, sizeof(detail), "%s", hsmc_detail(&d));
    if (isatty(STDERR_FILENO))
        fputs("\033[K", stderr); /* erase the progress line first */
    fprintf(stderr, "hsmc: device %s (line %lu): cannot %s: %s (%s)\n", dv->id,
            (unsigned long)(idx + 2), step, hsmc_strerror(e), hsmc_err_name(e));
    if (detail[0] != '\0') {
        fputs("hsmc:   detail: ", stderr);
        cli_put_safe(stderr, detail, strlen(detail));
        fputc('\n', stderr);
    }
    if (!c->quiet)
        fprintf(stderr, "hsmc:   hint: %s\n", dev_hint(e));
    cli_log_msg(HSMC_LOG_ERROR, "provision: device %s: cannot %s: %s", dv->id, step,
                hsmc_err_name(e));
    snprintf(x->msg, sizeof(x->msg), "cannot %s: %s", step, hsmc_strerror(e));
    if (audit_append(x, dv->id, have_key ? &key : NULL, NULL, 0, NULL, 0, e, x->msg) != HSMC_OK) {
        cli_err("device %s: %s; stopping", dv->id, x->msg);
        rc = PV_FATAL;
    }
    if (opened)
        hsmc_close(&d);
    hsmc_uri_free(&uri);
    return rc;
}

/* Open the audit file, lock it, verify it, resume the chain. @return exit code. */
static int audit_open(pv_run_t *x, const char *path)
{
    cli_ctx_t *c = x->c;
    hsmc_audit_verify_t v;
    hsmc_err_t err = HSMC_OK;
    FILE *f;
    int io_err = 0, walk, fd2;

    x->audit_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (x->audit_fd < 0) {
        cli_err("cannot open audit file %s: %s", path, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if (flock(x->audit_fd, LOCK_EX | LOCK_NB) != 0) {
        cli_err("audit file %s is locked by another provision run; wait for it to finish",
                path);
        return CLI_EXIT_FAIL;
    }
    fd2 = open(path, O_RDONLY | O_CLOEXEC);
    f = fd2 >= 0 ? fdopen(fd2, "rb") : NULL;
    if (f == NULL) {
        cli_err("cannot read audit file %s: %s", path, strerror(errno));
        if (fd2 >= 0)
            close(fd2);
        return CLI_EXIT_FAIL;
    }
    hsmc_audit_verify_init_key(&v, &c->h, &x->audit_key);
    walk = cli_audit_verify_file(f, &v, &err, &io_err, note_record, x);
    fclose(f);
    if (walk == -1) {
        cli_err("cannot read audit file %s: %s", path, strerror(io_err));
        hsmc_audit_verify_free(&v);
        return CLI_EXIT_FAIL;
    }
    if (walk == -2) {
        hsmc_audit_verify_free(&v);
        return cli_fail(c, err, "cannot verify the audit file with the audit key");
    }
    if (err != HSMC_OK) {
        cli_err("audit file %s is broken at record %llu (byte %llu): %s; nothing was "
                "provisioned", path, (unsigned long long)v.count, (unsigned long long)v.offset,
                hsmc_audit_fault_name(v.fault));
        if (!c->quiet)
            fprintf(stderr, "hsmc:   hint: %s\n",
                    v.fault == HSMC_AUDIT_FAULT_TRUNCATED
                        ? "the last record was cut short (an interrupted write?); keep the file "
                          "as evidence and start a new audit file after review"
                        : "the trail was altered or signed by another key; keep it as evidence, "
                          "check with `hsmc audit verify`, and use a new audit file");
        hsmc_audit_verify_free(&v);
        return CLI_EXIT_AUDIT;
    }
    if (x->fps_oom) {
        cli_err("out of memory reading the audit file");
        hsmc_audit_verify_free(&v);
        return CLI_EXIT_FAIL;
    }
    if (x->nfps > 1)
        qsort(x->fps, x->nfps, 32, cmp_fp);
    hsmc_audit_init(&x->audit, &c->h, &x->audit_key);
    (void)hsmc_audit_resume(&x->audit, v.next_seq, v.prev);
    cli_log_msg(HSMC_LOG_INFO, "provision: audit file %s: %llu records verified", path,
                (unsigned long long)v.count);
    hsmc_audit_verify_free(&v);
    return CLI_EXIT_OK;
}

static int run_provision(cli_ctx_t *c)
{
    static pv_run_t x;
    const char *manifest = cli_opt(c, "manifest"), *ca_cert = cli_opt(c, "ca-cert");
    const char *prof = cli_opt(c, "profile"), *role = getenv("HSMC_ROLE");
    char *text = NULL;
    pv_dev_t *devs = NULL;
    size_t n = 0, i, done = 0, skipped = 0, failed = 0;
    unsigned char *pem = NULL;
    size_t pem_len = 0, need = 0;
    double t0, last = 0;
    hsmc_err_t e;
    int rc, tty = isatty(STDERR_FILENO), fatal = 0;

    memset(&x, 0, sizeof(x));
    x.c = c;
    x.audit_fd = -1;
    mbedtls_x509_crt_init(&x.trust);
    if (manifest == NULL || cli_opt(c, "ca-key") == NULL || ca_cert == NULL ||
        cli_opt(c, "audit-key") == NULL || cli_opt(c, "audit-file") == NULL) {
        cli_err("provision needs --manifest, --ca-key, --ca-cert, --audit-key and --audit-file");
        return CLI_EXIT_USAGE;
    }
    if (hsmc_profile_parse(prof != NULL ? prof : "mtls_client", &x.profile) != HSMC_OK) {
        cli_err("--profile: unknown profile (mtls_client, mtls_server, ...)");
        return CLI_EXIT_USAGE;
    }
    x.tmpl = cli_opt(c, "subject-template") != NULL ? cli_opt(c, "subject-template") : "CN={id}";
    x.key_label = cli_opt(c, "key-label") != NULL ? cli_opt(c, "key-label") : "device-key";
    x.operator_id = cli_opt(c, "operator") != NULL ? cli_opt(c, "operator") : getenv("USER");
    if (x.operator_id != NULL && x.operator_id[0] == '\0')
        x.operator_id = NULL;
    x.role = role != NULL && role[0] != '\0' ? role : "station";
    hsmc_ca_policy_init(&x.pol);
    if (hsmc_role_parse(role, &x.pol.role) != HSMC_OK) {
        cli_err("HSMC_ROLE: unknown role (ca, app or any)");
        return CLI_EXIT_USAGE;
    }
    x.pol.operator_id = x.operator_id;

    rc = read_manifest(manifest, &text, &devs, &n);
    if (rc == CLI_EXIT_OK)
        rc = cli_open(c, 0);
    if (rc == CLI_EXIT_OK)
        rc = cli_key_open(c, cli_opt(c, "ca-key"), &x.ca_key, 1);
    if (rc == CLI_EXIT_OK)
        rc = cli_key_open(c, cli_opt(c, "audit-key"), &x.audit_key, 1);
    if (rc == CLI_EXIT_OK)
        rc = cli_read_file(ca_cert, PV_MANIFEST_MAX, "--ca-cert", &pem, &pem_len);
    if (rc != CLI_EXIT_OK)
        goto out;
    e = hsmc_ca_pem_to_der("CERTIFICATE", (const char *)pem, pem_len, NULL, 0, &need);
    if ((e == HSMC_OK || e == HSMC_ERR_BUFFER) && need > 0 &&
        (x.chain = (unsigned char *)malloc(need)) != NULL)
        e = hsmc_ca_pem_to_der("CERTIFICATE", (const char *)pem, pem_len, x.chain, need,
                               &x.chain_len);
    if (x.chain == NULL || e != HSMC_OK ||
        mbedtls_x509_crt_parse_der(&x.trust, x.chain, x.chain_len) != 0) {
        cli_err("--ca-cert %s: no complete PEM CERTIFICATE chain", ca_cert);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    {
        /* The whole chain is trusted for the skip check: add the rest. */
        size_t off = x.trust.raw.len;
        while (off < x.chain_len &&
               mbedtls_x509_crt_parse_der(&x.trust, x.chain + off, x.chain_len - off) == 0) {
            const mbedtls_x509_crt *t = &x.trust;
            while (t->next != NULL)
                t = t->next;
            off += t->raw.len;
        }
    }
    hsmc_ca_init(&x.ca);
    e = hsmc_ca_open(&x.ca, &c->h, &x.ca_key, x.chain, x.chain_len, &x.pol);
    if (e != HSMC_OK) {
        rc = cli_fail(c, e, "cannot open the CA key with --ca-cert");
        goto out;
    }
    x.ca_open = 1;
    rc = audit_open(&x, cli_opt(c, "audit-file"));
    if (rc != CLI_EXIT_OK)
        goto out;

    t0 = pv_now();
    for (i = 0; i < n && !fatal; i++) {
        int r = provision_one(&x, &devs[i], i);
        double now = pv_now();
        if (r == PV_DONE)
            done++;
        else if (r == PV_SKIPPED)
            skipped++;
        else
            failed++;
        fatal = r == PV_FATAL;
        if (!c->quiet && (i + 1 == n || now - last >= (tty ? 0.1 : 10.0))) {
            last = now;
            fprintf(stderr, "%shsmc: %lu/%lu devices, %.1f/s, %lu failed%s", tty ? "\033[K" : "",
                    (unsigned long)(i + 1), (unsigned long)n,
                    now > t0 ? (double)(i + 1) / (now - t0) : 0.0, (unsigned long)failed,
                    tty && i + 1 < n ? "\r" : "\n");
            fflush(stderr);
        }
    }
    {
        double el = pv_now() - t0;
        printf("provisioned %lu, skipped %lu, failed %lu of %lu devices in %.2f s (%.1f/s)\n",
               (unsigned long)done, (unsigned long)skipped, (unsigned long)failed,
               (unsigned long)n, el, el > 0 ? (double)(done + skipped + failed) / el : 0.0);
    }
    if (fatal)
        printf("stopped early: %lu devices not tried\n", (unsigned long)(n - i));
    rc = failed > 0 || fatal ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    if (failed > 0 && !c->quiet)
        fputs("hsmc: fix the failed devices (see their messages) and run the same command "
              "again: finished devices are skipped\n", stderr);
out:
    if (x.ca_open)
        hsmc_ca_free(&x.ca);
    hsmc_audit_free(&x.audit);
    if (x.audit_fd >= 0)
        close(x.audit_fd);
    mbedtls_x509_crt_free(&x.trust);
    free(x.chain);
    free(x.fps);
    cli_free(pem, pem_len);
    free(devs);
    cli_free(text, 0);
    return rc;
}

static const cli_cmd_t prov_cmds[] = {
    {"provision", "enroll a batch of devices: key, certificate, audit record each",
     "--manifest CSV --ca-key LABEL --ca-cert CHAIN --audit-key LABEL --audit-file FILE [OPTIONS]",
     "The station token (--token, PIN options) holds the line CA key and the audit\n"
     "key. The manifest is CSV with the header device_id,token_uri; each URI names a\n"
     "device token with module-path= and pin-source= (the station's PIN options do\n"
     "not apply to device tokens). Per device: generate (or reuse) the key\n"
     "--key-label, make a CSR with --subject-template, issue with the CA, store the\n"
     "certificate on the device token, read it back, and append a signed record to\n"
     "--audit-file (failures are recorded too). The trail is verified before\n"
     "anything is appended; a broken trail stops the run (exit 12). A device that\n"
     "already holds a certificate for its key that verifies against --ca-cert is\n"
     "skipped, so running the command again finishes an interrupted batch. Exit\n"
     "code 1 when any device failed.",
     "hsmc provision --token station --manifest devices.csv --ca-key line-ca \\\n"
     "    --ca-cert line-ca-chain.pem --audit-key audit --audit-file audit.log",
     prov_opts, CLI_PIN_REQUIRED, 0, run_provision},
    {NULL, NULL, NULL, NULL, NULL, NULL, CLI_PIN_NONE, 0, NULL}};

const cli_group_t cli_group_provision = {"Manufacturing", "provision", prov_cmds, 1};
