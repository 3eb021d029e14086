/*
 * enroll_server: the gateway's enrollment service (samples/enroll).
 *
 * Listens on 127.0.0.1 with TLS 1.2, authenticated by the gateway's token
 * key "gateway-tls", and asks every client for a certificate. A device
 * connects with its bootstrap identity (factory CA) and sends an
 * enrollment request: a COSE_Sign1 made by its NEW operational key over
 * [version, device id, nonce, CSR]. The gateway checks, in this order:
 *
 *   1. the client certificate verifies and was issued by the factory CA
 *      (else "unknown-bootstrap");
 *   2. the Sign1 verifies with the public key inside the CSR: whoever asks
 *      for the certificate holds that key (else "proof-of-possession");
 *   3. the device id is the bootstrap certificate's CN (else "id-mismatch");
 *   4. the nonce was never seen (else "replay"; nonces are kept in a file);
 *   5. the device id is new, or enrolled with this same key (a renewal)
 *      (else "id-taken"; the registry file maps id -> SHA-256 of the SPKI);
 *   6. the issuing CA (key in the token) issues an mtls_client certificate
 *      whose CN must be the device id.
 * A device that connects with its operational certificate may ask "who am
 * I": the gateway answers with the identity it authenticated.
 *
 * Every answer, refusals included, is CBOR (docs/FORMATS.md, "Enrollment
 * messages"). One connection at a time: a sample, not a server farm.
 *
 * Production note: this process both issues certificates and answers TLS
 * with token keys, so it runs with role "any". A real deployment splits
 * the CA (role ca) from the TLS front end (role app); see ca.h.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>

#include <mbedtls/net_sockets.h>
#include <mbedtls/sha256.h>

#include "enroll_common.h"
#include "hsmc/ca.h"
#include "hsmc/x509.h"

#define WHO "enroll_server"
#define CERT_MAX 4096

static const char usage[] =
    "usage: enroll_server --token LABEL --pin-file FILE --root FILE --factory FILE --state DIR\n"
    "                     [--module PATH] [--port N] [--port-file FILE] [--count N]\n"
    "                     [--ca-key LABEL] [--tls-key LABEL]\n"
    "The gateway's enrollment server on 127.0.0.1 (TLS 1.2, client certificates required).\n"
    "  --token, --pin-file  the gateway's token and its user PIN file\n"
    "                       (or HSMC_TOKEN, HSMC_PIN_FILE; --module or HSMC_MODULE)\n"
    "  --root FILE          root CA certificate (PEM): trust anchor for client chains\n"
    "  --factory FILE       factory CA certificate (PEM): issuer of bootstrap certificates\n"
    "  --state DIR          where registry.txt (device id -> key hash) and nonces.txt live\n"
    "  --port N             TCP port; 0 (default) picks a free one\n"
    "  --port-file FILE     write the port there once listening\n"
    "  --count N            serve N connections, then exit (default: until killed)\n"
    "  --ca-key LABEL       issuing CA key on the token (default enroll-issuing)\n"
    "  --tls-key LABEL      TLS server key on the token (default gateway-tls)\n"
    "The certificates of both keys are read from the token (stored next to the keys).\n";

/* Everything the server keeps between connections. Static: hsmc_ca_t and
 * the mbedTLS contexts are several KB each. */
static struct {
    hsmc_t h;
    hsmc_ca_policy_t pol;
    hsmc_ca_t ca;                /* issuing CA: key in the token */
    hsmc_key_t ca_key, tls_key;
    mbedtls_x509_crt trust;      /* root + factory CA: anchors for client chains */
    mbedtls_x509_crt factory;    /* issuer of bootstrap certificates */
    mbedtls_x509_crt issuing;    /* issuer of operational certificates */
    mbedtls_x509_crt tls_chain;  /* our TLS certificate + issuing CA */
    mbedtls_pk_context tls_pk;   /* the TLS key, signing in the token */
    hsmc_rng_t rng;
    mbedtls_ssl_config conf;
    uint8_t int_der[CERT_MAX];   /* issuing CA certificate (DER) */
    size_t int_len;
    const char *state;
} S;

/* Per-request buffers. */
static uint8_t req_buf[ENROLL_MSG_MAX], resp_buf[ENROLL_MSG_MAX], leaf[CERT_MAX];

/* ---- state files ----------------------------------------------------------- */

static void state_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", S.state, name);
}

/* 1 when the nonce is in nonces.txt, 0 when not, -1 on error. */
static int nonce_seen(const char *hex)
{
    char path[600], line[128];
    FILE *f;
    int seen = 0;
    state_path(path, sizeof path, "nonces.txt");
    f = fopen(path, "r");
    if (f == NULL)
        return 0; /* no file yet: nothing seen */
    while (!seen && fgets(line, sizeof line, f) != NULL)
        seen = strncmp(line, hex, 2 * ENROLL_NONCE_LEN) == 0;
    fclose(f);
    return seen;
}

/* Append the nonce and make it durable before the certificate is issued,
 * so a crash cannot make the same request acceptable twice. */
static int nonce_add(const char *hex)
{
    char path[600];
    FILE *f;
    int ok;
    state_path(path, sizeof path, "nonces.txt");
    f = fopen(path, "a");
    if (f == NULL)
        return -1;
    ok = fprintf(f, "%s\n", hex) > 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* The registered key hash of a device id into hash_hex: 1 found, 0 not, -1 error. */
static int registry_get(const char *id, char *hash_hex)
{
    char path[600], line[256], lid[ENROLL_ID_MAX + 1], lhash[65];
    FILE *f;
    int found = 0;
    state_path(path, sizeof path, "registry.txt");
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "%64s %64s", lid, lhash) == 2 && strcmp(lid, id) == 0) {
            memcpy(hash_hex, lhash, 65);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* Add a line "id hash" (registry_get was checked first, so the id is new
 * or has this same hash). The file is replaced atomically. */
static int registry_put(const char *id, const char *hash_hex)
{
    static char text[64 * 1024];
    char path[600], line[256], lid[ENROLL_ID_MAX + 1], lhash[65];
    size_t n = 0;
    FILE *f;
    int w;
    state_path(path, sizeof path, "registry.txt");
    f = fopen(path, "r");
    if (f != NULL) {
        while (fgets(line, sizeof line, f) != NULL) {
            if (sscanf(line, "%64s %64s", lid, lhash) != 2 || strcmp(lid, id) == 0)
                continue; /* this id is rewritten below */
            w = snprintf(text + n, sizeof text - n, "%s %s\n", lid, lhash);
            if (w < 0 || (size_t)w >= sizeof text - n) {
                fclose(f);
                return -1;
            }
            n += (size_t)w;
        }
        fclose(f);
    }
    w = snprintf(text + n, sizeof text - n, "%s %s\n", id, hash_hex);
    if (w < 0 || (size_t)w >= sizeof text - n)
        return -1;
    return enroll_write_file(path, text, n + (size_t)w);
}

/* SHA-256 of a SubjectPublicKeyInfo, in hex: the registry's key identity. */
static void spki_hash(const uint8_t *spki, size_t len, char *hex)
{
    uint8_t d[32];
    mbedtls_sha256_ret(spki, len, d, 0);
    enroll_hex(d, sizeof d, hex);
}

/* ---- responses ---------------------------------------------------------------- */

/* [code, message]: every refusal looks like this. It is also printed. */
static size_t error_resp(uint64_t code, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static size_t error_resp(uint64_t code, const char *id, const char *fmt, ...)
{
    char msg[512];
    hsmc_cbor_enc_t e;
    size_t len = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("refused %s: %s: %s\n", id != NULL ? id : "(unknown device)", enroll_code_name(code),
           msg);
    hsmc_cbor_enc_init(&e, resp_buf, sizeof resp_buf);
    hsmc_cbor_put_array(&e, 2);
    hsmc_cbor_put_uint(&e, code);
    hsmc_cbor_put_tstr(&e, msg, strlen(msg));
    return hsmc_cbor_enc_finish(&e, &len) == HSMC_OK ? len : 0;
}

/* The client certificate, when it verified and `issuer` issued it. */
static const mbedtls_x509_crt *peer_from(const mbedtls_ssl_context *ssl,
                                         const mbedtls_x509_crt *issuer)
{
    const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(ssl);
    if (peer == NULL || mbedtls_ssl_get_verify_result(ssl) != 0)
        return NULL;
    /* The chain verified up to one of our anchors; the issuer name pins
     * which CA it was (the signature check already proved it). */
    if (peer->issuer_raw.len != issuer->subject_raw.len ||
        memcmp(peer->issuer_raw.p, issuer->subject_raw.p, issuer->subject_raw.len) != 0)
        return NULL;
    return peer;
}

/* ---- enrollment --------------------------------------------------------------- */

/* The payload of the (not yet verified) Sign1: we need the CSR's key to
 * verify it, and the CSR is inside. Parsed strictly; nothing is trusted
 * until the signature checked out. */
static int parse_sign1_payload(hsmc_view_t msg, hsmc_view_t *payload)
{
    hsmc_cbor_dec_t d;
    uint64_t tag = 0;
    size_t n = 0;
    hsmc_cbor_dec_init(&d, msg.ptr, msg.len);
    hsmc_cbor_get_tag(&d, &tag);
    hsmc_cbor_get_array(&d, &n);
    if (tag != HSMC_COSE_TAG_SIGN1 || n != 4)
        return -1;
    hsmc_cbor_skip(&d); /* protected */
    hsmc_cbor_skip(&d); /* unprotected */
    hsmc_cbor_get_bstr(&d, &payload->ptr, &payload->len);
    hsmc_cbor_skip(&d); /* signature */
    return hsmc_cbor_dec_finish(&d) == HSMC_OK ? 0 : -1;
}

/* [version, device id, nonce, csr] */
static int parse_payload(hsmc_view_t p, char *id, uint8_t *nonce, hsmc_view_t *csr)
{
    hsmc_cbor_dec_t d;
    uint64_t version = 0;
    const char *t = NULL;
    const uint8_t *b = NULL;
    size_t n = 0, tlen = 0, blen = 0;
    hsmc_cbor_dec_init(&d, p.ptr, p.len);
    hsmc_cbor_get_array(&d, &n);
    hsmc_cbor_get_uint(&d, &version);
    hsmc_cbor_get_tstr(&d, &t, &tlen);
    hsmc_cbor_get_bstr(&d, &b, &blen);
    hsmc_cbor_get_bstr(&d, &csr->ptr, &csr->len);
    if (hsmc_cbor_dec_finish(&d) != HSMC_OK || n != 4 || version != ENROLL_VERSION ||
        blen != ENROLL_NONCE_LEN || !enroll_id_valid(t, tlen))
        return -1;
    memcpy(id, t, tlen);
    id[tlen] = '\0';
    memcpy(nonce, b, ENROLL_NONCE_LEN);
    return 0;
}

static size_t enroll(const mbedtls_ssl_context *ssl, hsmc_view_t sign1)
{
    static uint8_t spki_buf[HSMC_CA_SPKI_MAX];
    static hsmc_cose_t cose;
    const mbedtls_x509_crt *boot = peer_from(ssl, &S.factory);
    char id[ENROLL_ID_MAX + 1], boot_cn[ENROLL_ID_MAX + 1], hash[65], known[65];
    char nonce_hex[2 * ENROLL_NONCE_LEN + 1], subject[256], issuer[256];
    uint8_t nonce[ENROLL_NONCE_LEN];
    hsmc_view_t payload, csr_der, spki;
    mbedtls_x509_csr csr;
    hsmc_issue_req_t req;
    hsmc_cbor_enc_t e;
    mbedtls_x509_crt crt;
    size_t leaf_len = 0, len = 0;
    hsmc_err_t err;
    int ret;

    /* 1. Who is asking: a device the factory made. */
    if (boot == NULL) {
        char why[256] = "no client certificate";
        uint32_t flags = mbedtls_ssl_get_verify_result(ssl);
        if (mbedtls_ssl_get_peer_cert(ssl) != NULL && flags != 0)
            mbedtls_x509_crt_verify_info(why, sizeof why, "", flags);
        else if (mbedtls_ssl_get_peer_cert(ssl) != NULL)
            snprintf(why, sizeof why, "issued by another CA");
        why[strcspn(why, "\n")] = '\0';
        return error_resp(ENROLL_E_UNKNOWN_BOOTSTRAP, NULL,
                          "client certificate is not a bootstrap certificate of this factory "
                          "CA (%s)",
                          why);
    }
    if (enroll_name_cn(&boot->subject, boot_cn, sizeof boot_cn) != 0)
        return error_resp(ENROLL_E_UNKNOWN_BOOTSTRAP, NULL, "bootstrap certificate has no CN");

    if (parse_sign1_payload(sign1, &payload) != 0 ||
        parse_payload(payload, id, nonce, &csr_der) != 0)
        return error_resp(ENROLL_E_BAD_REQUEST, boot_cn,
                          "request is not a COSE_Sign1 over [1, device id, 16-byte nonce, CSR]");

    /* 2. Proof of possession: the CSR's key signed this request. */
    mbedtls_x509_csr_init(&csr);
    ret = mbedtls_x509_csr_parse_der(&csr, csr_der.ptr, csr_der.len);
    if (ret == 0)
        ret = mbedtls_pk_write_pubkey_der(&csr.pk, spki_buf, sizeof spki_buf);
    mbedtls_x509_csr_free(&csr);
    if (ret <= 0)
        return error_resp(ENROLL_E_BAD_REQUEST, id, "the CSR cannot be parsed");
    spki.ptr = spki_buf + sizeof spki_buf - (size_t)ret; /* mbedTLS writes at the end */
    spki.len = (size_t)ret;
    hsmc_cose_init(&cose, &S.h);
    err = hsmc_cose_verify1_spki(&cose, sign1, spki,
                                 (hsmc_view_t){(const uint8_t *)ENROLL_AAD, strlen(ENROLL_AAD)},
                                 (hsmc_view_t){NULL, 0}, 0, NULL);
    hsmc_cose_free(&cose);
    if (err != HSMC_OK)
        return error_resp(ENROLL_E_POSSESSION, id,
                          "the request is not signed by the key in its CSR (%s)",
                          hsmc_err_name(err));

    /* 3. The bootstrap identity speaks for this device id only. */
    if (strcmp(id, boot_cn) != 0)
        return error_resp(ENROLL_E_ID_MISMATCH, id, "bootstrap certificate belongs to %s",
                          boot_cn);

    /* 4. Replay: every signed request is good once. */
    enroll_hex(nonce, sizeof nonce, nonce_hex);
    if (nonce_seen(nonce_hex))
        return error_resp(ENROLL_E_REPLAY, id, "nonce %s was already used", nonce_hex);
    if (nonce_add(nonce_hex) != 0)
        return error_resp(ENROLL_E_INTERNAL, id, "cannot record the nonce");

    /* 5. One key per device id (the same key again is a renewal). */
    spki_hash(spki.ptr, spki.len, hash);
    ret = registry_get(id, known);
    if (ret < 0)
        return error_resp(ENROLL_E_INTERNAL, id, "cannot read the registry");
    if (ret == 1 && strcmp(known, hash) != 0)
        return error_resp(ENROLL_E_ID_TAKEN, id,
                          "device id is already enrolled with another key (SHA-256 of its "
                          "SPKI %.16s...)",
                          known);

    /* 6. Issue. The CN rule makes the CA refuse any other subject name. */
    S.pol.profile[HSMC_PROFILE_MTLS_CLIENT].names.cn = id;
    memset(&req, 0, sizeof req);
    req.profile = HSMC_PROFILE_MTLS_CLIENT;
    req.csr = csr_der.ptr;
    req.csr_len = csr_der.len;
    err = hsmc_ca_issue(&S.ca, &req, leaf, sizeof leaf, &leaf_len, NULL);
    S.pol.profile[HSMC_PROFILE_MTLS_CLIENT].names.cn = NULL;
    if (err != HSMC_OK)
        return error_resp(ENROLL_E_CSR_REFUSED, id, "%s", hsmc_detail(&S.h));
    if (registry_put(id, hash) != 0)
        return error_resp(ENROLL_E_INTERNAL, id, "cannot write the registry");

    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, leaf, leaf_len) == 0) {
        mbedtls_x509_dn_gets(subject, sizeof subject, &crt.subject);
        mbedtls_x509_dn_gets(issuer, sizeof issuer, &crt.issuer);
        printf("enrolled device %s: subject %s, issuer %s, key SHA-256 %.16s...\n", id, subject,
               issuer, hash);
    }
    mbedtls_x509_crt_free(&crt);

    /* [0, device id, [leaf, issuing CA]] */
    hsmc_cbor_enc_init(&e, resp_buf, sizeof resp_buf);
    hsmc_cbor_put_array(&e, 3);
    hsmc_cbor_put_uint(&e, ENROLL_OK);
    hsmc_cbor_put_tstr(&e, id, strlen(id));
    hsmc_cbor_put_array(&e, 2);
    hsmc_cbor_put_bstr(&e, leaf, leaf_len);
    hsmc_cbor_put_bstr(&e, S.int_der, S.int_len);
    if (hsmc_cbor_enc_finish(&e, &len) != HSMC_OK)
        return error_resp(ENROLL_E_INTERNAL, id, "response too large");
    return len;
}

/* "Who am I": only an operational certificate this gateway issued, whose
 * key is the one registered for its device id, gets an answer. */
static size_t whoami(const mbedtls_ssl_context *ssl)
{
    const mbedtls_x509_crt *peer = peer_from(ssl, &S.issuing);
    char id[ENROLL_ID_MAX + 1], hash[65], known[65], subject[256], issuer[256];
    hsmc_cbor_enc_t e;
    size_t len = 0;

    if (peer == NULL)
        return error_resp(ENROLL_E_NOT_ENROLLED, NULL,
                          "client certificate is not an operational certificate of this gateway");
    if (enroll_name_cn(&peer->subject, id, sizeof id) != 0 || !enroll_id_valid(id, strlen(id)))
        return error_resp(ENROLL_E_NOT_ENROLLED, NULL, "certificate has no device id CN");
    spki_hash(peer->pk_raw.p, peer->pk_raw.len, hash);
    if (registry_get(id, known) != 1 || strcmp(known, hash) != 0)
        return error_resp(ENROLL_E_NOT_ENROLLED, id,
                          "certificate key is not the one enrolled for this device id");
    mbedtls_x509_dn_gets(subject, sizeof subject, &peer->subject);
    mbedtls_x509_dn_gets(issuer, sizeof issuer, &peer->issuer);
    printf("authenticated device %s with its operational certificate: subject %s, issuer %s\n", id,
           subject, issuer);

    /* [0, device id, subject, issuer] */
    hsmc_cbor_enc_init(&e, resp_buf, sizeof resp_buf);
    hsmc_cbor_put_array(&e, 4);
    hsmc_cbor_put_uint(&e, ENROLL_OK);
    hsmc_cbor_put_tstr(&e, id, strlen(id));
    hsmc_cbor_put_tstr(&e, subject, strlen(subject));
    hsmc_cbor_put_tstr(&e, issuer, strlen(issuer));
    return hsmc_cbor_enc_finish(&e, &len) == HSMC_OK ? len : 0;
}

/* Decode the request type and dispatch. */
static size_t handle(const mbedtls_ssl_context *ssl, const uint8_t *msg, size_t len)
{
    hsmc_cbor_dec_t d;
    hsmc_view_t sign1 = {NULL, 0};
    uint64_t type = 0;
    size_t n = 0;

    hsmc_cbor_dec_init(&d, msg, len);
    hsmc_cbor_get_array(&d, &n);
    hsmc_cbor_get_uint(&d, &type);
    if (type == ENROLL_REQ_ENROLL && n == 2)
        hsmc_cbor_get_raw(&d, &sign1.ptr, &sign1.len);
    if (hsmc_cbor_dec_finish(&d) != HSMC_OK ||
        !((type == ENROLL_REQ_ENROLL && n == 2) || (type == ENROLL_REQ_WHOAMI && n == 1)))
        return error_resp(ENROLL_E_BAD_REQUEST, NULL,
                          "expected [1, COSE_Sign1] or [2] (docs/FORMATS.md)");
    return type == ENROLL_REQ_ENROLL ? enroll(ssl, sign1) : whoami(ssl);
}

/* One TLS connection: handshake, one request, one response. */
static void serve(mbedtls_net_context *client)
{
    mbedtls_ssl_context ssl;
    size_t len = 0, out;

    mbedtls_ssl_init(&ssl);
    if (mbedtls_ssl_setup(&ssl, &S.conf) != 0)
        goto done;
    mbedtls_ssl_set_bio(&ssl, client, mbedtls_net_send, NULL, mbedtls_net_recv_timeout);
    if (enroll_handshake(&ssl, WHO) != 0)
        goto done;
    /* Read the request before answering, even when the client certificate
     * is already known to be refused: the device then always gets the
     * CBOR error instead of a reset connection. */
    if (enroll_recv(&ssl, req_buf, sizeof req_buf, &len) != 0) {
        fprintf(stderr, WHO ": no complete request (closed, timeout, or over %u bytes)\n",
                ENROLL_MSG_MAX);
        goto done;
    }
    out = handle(&ssl, req_buf, len);
    if (out == 0 || enroll_send(&ssl, resp_buf, out) != 0)
        fprintf(stderr, WHO ": could not send the response\n");
    (void)mbedtls_ssl_close_notify(&ssl);
done:
    fflush(stdout);
    mbedtls_ssl_free(&ssl);
}

/* Keys, certificates (from the token), CA, TLS configuration. */
static int start(const char *root, const char *factory, const char *ca_label,
                 const char *tls_label)
{
    static uint8_t chain[2 * CERT_MAX], der[CERT_MAX];
    hsmc_tls_cfg_t cfg;
    size_t root_len = 0, len = 0;
    hsmc_err_t err;

    if (enroll_load_pem_chain(&S.trust, root, WHO) != 0 ||
        enroll_load_pem_chain(&S.trust, factory, WHO) != 0 ||
        enroll_load_pem_chain(&S.factory, factory, WHO) != 0)
        return -1;
    if ((err = hsmc_key_open(&S.h, ca_label, &S.ca_key)) != HSMC_OK ||
        (err = hsmc_cert_load(&S.h, &S.ca_key, S.int_der, sizeof S.int_der, &S.int_len)) !=
            HSMC_OK)
        return enroll_fail(WHO, &S.h, err, ca_label);
    if (mbedtls_x509_crt_parse_der(&S.issuing, S.int_der, S.int_len) != 0)
        return enroll_fail(WHO, NULL, HSMC_ERR_FORMAT, "issuing CA certificate");

    /* The CA: its certificate from the token, then the root (its issuer). */
    memcpy(chain, S.int_der, S.int_len);
    {
        static char pem[2 * CERT_MAX];
        size_t n = 0;
        if (enroll_read_file(root, (uint8_t *)pem, sizeof pem - 1, &n) != 0)
            return enroll_fail(WHO, NULL, HSMC_ERR_IO, root);
        err = hsmc_ca_pem_to_der("CERTIFICATE", pem, n, chain + S.int_len,
                                 sizeof chain - S.int_len, &root_len);
        if (err != HSMC_OK)
            return enroll_fail(WHO, NULL, err, root);
    }
    hsmc_ca_policy_init(&S.pol);
    S.pol.operator_id = WHO;
    hsmc_ca_init(&S.ca);
    err = hsmc_ca_open(&S.ca, &S.h, &S.ca_key, chain, S.int_len + root_len, &S.pol);
    if (err != HSMC_OK)
        return enroll_fail(WHO, &S.h, err, "open the issuing CA");

    /* TLS: our certificate (from the token) + the issuing CA, so devices
     * that hold only the root can verify us. */
    if ((err = hsmc_key_open(&S.h, tls_label, &S.tls_key)) != HSMC_OK ||
        (err = hsmc_cert_load(&S.h, &S.tls_key, der, sizeof der, &len)) != HSMC_OK)
        return enroll_fail(WHO, &S.h, err, tls_label);
    if (mbedtls_x509_crt_parse_der(&S.tls_chain, der, len) != 0 ||
        mbedtls_x509_crt_parse_der(&S.tls_chain, S.int_der, S.int_len) != 0)
        return enroll_fail(WHO, NULL, HSMC_ERR_FORMAT, "TLS certificate");
    if ((err = hsmc_rng_init(&S.rng, &S.h)) != HSMC_OK ||
        (err = hsmc_pk_bind(&S.h, &S.tls_key, &S.tls_pk)) != HSMC_OK)
        return enroll_fail(WHO, &S.h, err, "TLS key");
    hsmc_tls_cfg_init(&cfg);
    cfg.endpoint = MBEDTLS_SSL_IS_SERVER;
    cfg.key = &S.tls_pk;
    cfg.chain = &S.tls_chain;
    cfg.ca = &S.trust;
    /* OPTIONAL, not REQUIRED: the handshake completes with a bad client
     * certificate, so the device gets a CBOR refusal it can print instead
     * of a bare TLS alert. Every request checks the verification result. */
    cfg.verify = HSMC_TLS_VERIFY_OPTIONAL;
    cfg.rng = &S.rng;
    err = hsmc_tls_setup(&S.h, &S.conf, &cfg);
    if (err != HSMC_OK)
        return enroll_fail(WHO, &S.h, err, "TLS setup");
    mbedtls_ssl_conf_read_timeout(&S.conf, 10000); /* a silent client cannot hold us */
    return 0;
}

int main(int argc, char **argv)
{
    enroll_token_opts_t opts;
    const char *root = NULL, *factory = NULL, *port = "0", *port_file = NULL;
    const char *ca_label = "enroll-issuing", *tls_label = "gateway-tls";
    long count = -1, served = 0;
    mbedtls_net_context listen_fd, client;
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    int i, rc = 1;

    enroll_token_opts_env(&opts);
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
            opts.module = v;
        else if (strcmp(a, "--token") == 0)
            opts.token = v;
        else if (strcmp(a, "--pin-file") == 0)
            opts.pin_file = v;
        else if (strcmp(a, "--root") == 0)
            root = v;
        else if (strcmp(a, "--factory") == 0)
            factory = v;
        else if (strcmp(a, "--state") == 0)
            S.state = v;
        else if (strcmp(a, "--port") == 0)
            port = v;
        else if (strcmp(a, "--port-file") == 0)
            port_file = v;
        else if (strcmp(a, "--count") == 0)
            count = strtol(v, NULL, 10);
        else if (strcmp(a, "--ca-key") == 0)
            ca_label = v;
        else if (strcmp(a, "--tls-key") == 0)
            tls_label = v;
        else {
            fprintf(stderr, WHO ": unknown option %s\n%s", a, usage);
            return 1;
        }
    }
    if (root == NULL || factory == NULL || S.state == NULL) {
        fprintf(stderr, WHO ": --root, --factory and --state are required\n%s", usage);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN); /* a client that vanishes is an error return, not a signal */
    setvbuf(stdout, NULL, _IOLBF, 0);

    mbedtls_x509_crt_init(&S.trust);
    mbedtls_x509_crt_init(&S.factory);
    mbedtls_x509_crt_init(&S.issuing);
    mbedtls_x509_crt_init(&S.tls_chain);
    mbedtls_pk_init(&S.tls_pk);
    mbedtls_ssl_config_init(&S.conf);
    mbedtls_net_init(&listen_fd);
    hsmc_ca_init(&S.ca);
    if (enroll_token_open(&S.h, &opts, WHO) != 0)
        goto out;
    if (start(root, factory, ca_label, tls_label) != 0)
        goto out;

    /* 127.0.0.1 only: the sample never listens on a public interface. */
    if (mbedtls_net_bind(&listen_fd, "127.0.0.1", port, MBEDTLS_NET_PROTO_TCP) != 0 ||
        getsockname(listen_fd.fd, (struct sockaddr *)&addr, &alen) != 0) {
        fprintf(stderr, WHO ": cannot listen on 127.0.0.1:%s\n", port);
        goto out;
    }
    printf("listening on 127.0.0.1:%u (token %s, issuing CA key %s)\n", ntohs(addr.sin_port),
           opts.token, ca_label);
    if (port_file != NULL) {
        char text[16];
        int n = snprintf(text, sizeof text, "%u\n", ntohs(addr.sin_port));
        if (enroll_write_file(port_file, text, (size_t)n) != 0) {
            fprintf(stderr, WHO ": cannot write %s\n", port_file);
            goto out;
        }
    }
    while (count < 0 || served < count) {
        mbedtls_net_init(&client);
        if (mbedtls_net_accept(&listen_fd, &client, NULL, 0, NULL) != 0) {
            fprintf(stderr, WHO ": accept failed\n");
            goto out;
        }
        serve(&client);
        mbedtls_net_free(&client);
        served++;
    }
    rc = 0;
out:
    mbedtls_net_free(&listen_fd);
    mbedtls_ssl_config_free(&S.conf);
    hsmc_pk_unbind(&S.tls_pk);
    hsmc_rng_free(&S.rng);
    hsmc_ca_free(&S.ca);
    mbedtls_x509_crt_free(&S.trust);
    mbedtls_x509_crt_free(&S.factory);
    mbedtls_x509_crt_free(&S.issuing);
    mbedtls_x509_crt_free(&S.tls_chain);
    hsmc_close(&S.h);
    return rc;
}
