/*
 * enroll_device: a device enrolls with the gateway (samples/enroll).
 *
 *  1. Read the bootstrap identity from the device's token: key "bootstrap"
 *     and the certificate stored next to it at manufacturing.
 *  2. Make (or reuse) the operational key in the token: it never leaves it.
 *  3. Build the request: [1, device id, 16-byte nonce, CSR] signed as a
 *     COSE_Sign1 by the operational key itself, which proves to the
 *     gateway that whoever asks for the certificate holds that key.
 *  4. Connect with mTLS as the bootstrap identity, send it, read the
 *     answer: the certificate chain, or a refusal (printed, exit code 3).
 *  5. Store the certificate on the token next to the operational key.
 *  6. Reconnect with mTLS as the operational identity (certificate read
 *     back from the token) and ask the gateway who it sees.
 *
 * Messages: docs/FORMATS.md, "Enrollment messages (samples/enroll)".
 * Exit codes: 0 enrolled and confirmed, 1 usage, 2 token / network / TLS
 * failure, 3 the gateway refused (its CBOR error is printed).
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/net_sockets.h>

#include "enroll_common.h"
#include "hsmc/ca.h"
#include "hsmc/x509.h"

#define WHO "enroll_device"
#define CERT_MAX 4096
#define EXIT_USAGE 1
#define EXIT_FAIL 2
#define EXIT_REFUSED 3

static const char usage[] =
    "usage: enroll_device --token LABEL --pin-file FILE --root FILE --port N\n"
    "                     [--module PATH] [--host ADDR] [--server-name NAME]\n"
    "                     [--bootstrap-key LABEL] [--key LABEL] [--device-id ID]\n"
    "                     [--cert-out FILE]\n"
    "Enroll this device with the gateway's enrollment server and prove the new identity.\n"
    "  --token, --pin-file  the device's token and its user PIN file\n"
    "                       (or HSMC_TOKEN, HSMC_PIN_FILE; --module or HSMC_MODULE)\n"
    "  --root FILE          root CA certificate (PEM) that the gateway's certificate chains to\n"
    "  --host, --port       the gateway (default host 127.0.0.1)\n"
    "  --server-name NAME   name in the gateway's certificate (default localhost)\n"
    "  --bootstrap-key L    bootstrap key on the token, its certificate next to it\n"
    "                       (default bootstrap)\n"
    "  --key LABEL          operational key: used if present, else generated (default\n"
    "                       device-mtls); the certificate is stored next to it\n"
    "  --device-id ID       default: the CN of the bootstrap certificate\n"
    "  --cert-out FILE      also write the issued certificate (PEM)\n"
    "Demonstration options (to see the gateway's refusals):\n"
    "  --nonce HEX          use this 16-byte nonce instead of a fresh one (replay)\n"
    "  --sign-with LABEL    sign the request with another key than the CSR's\n"
    "Exit codes: 0 enrolled, 1 usage, 2 token/network/TLS failure, 3 refused by the gateway.\n";

static hsmc_t H;
static hsmc_rng_t rng;
static mbedtls_x509_crt root;
static const char *host = "127.0.0.1", *port, *server_name = "localhost";

/* Buffers: fixed, static (the sample never allocates itself). */
static uint8_t csr[CERT_MAX], payload[CERT_MAX + 256], sign1[CERT_MAX + 512];
static uint8_t req[CERT_MAX + 600], resp[ENROLL_MSG_MAX], der[CERT_MAX];

/* One mTLS connection as (key, chain): handshake, send req, read the
 * answer into resp. Prints the handshake result. @return 0 or -1. */
static int exchange(const char *as, const hsmc_key_t *key, mbedtls_x509_crt *chain,
                    const uint8_t *msg, size_t msg_len, size_t *resp_len)
{
    mbedtls_pk_context pk;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    mbedtls_net_context net;
    hsmc_tls_cfg_t cfg;
    char peer[256] = "?";
    hsmc_err_t err;
    int rc = -1;

    mbedtls_pk_init(&pk);
    mbedtls_ssl_config_init(&conf);
    mbedtls_ssl_init(&ssl);
    mbedtls_net_init(&net);
    err = hsmc_pk_bind(&H, key, &pk);
    if (err != HSMC_OK) {
        enroll_fail(WHO, &H, err, "bind key for TLS");
        goto out;
    }
    hsmc_tls_cfg_init(&cfg);
    cfg.endpoint = MBEDTLS_SSL_IS_CLIENT;
    cfg.key = &pk;
    cfg.chain = chain;
    cfg.ca = &root;
    cfg.verify = HSMC_TLS_VERIFY_REQUIRED; /* the device only talks to its gateway */
    cfg.rng = &rng;
    err = hsmc_tls_setup(&H, &conf, &cfg);
    if (err != HSMC_OK) {
        enroll_fail(WHO, &H, err, "TLS setup");
        goto out;
    }
    mbedtls_ssl_conf_read_timeout(&conf, 10000);
    if (mbedtls_ssl_setup(&ssl, &conf) != 0 || mbedtls_ssl_set_hostname(&ssl, server_name) != 0)
        goto out;
    if (mbedtls_net_connect(&net, host, port, MBEDTLS_NET_PROTO_TCP) != 0) {
        fprintf(stderr, WHO ": cannot connect to %s:%s\n", host, port);
        goto out;
    }
    mbedtls_ssl_set_bio(&ssl, &net, mbedtls_net_send, NULL, mbedtls_net_recv_timeout);
    if (enroll_handshake(&ssl, WHO) != 0)
        goto out;
    mbedtls_x509_dn_gets(peer, sizeof peer, &mbedtls_ssl_get_peer_cert(&ssl)->subject);
    printf("handshake as %s: ok, %s %s, gateway %s verified\n", as, mbedtls_ssl_get_version(&ssl),
           mbedtls_ssl_get_ciphersuite(&ssl), peer);
    if (enroll_send(&ssl, msg, msg_len) != 0 ||
        enroll_recv(&ssl, resp, sizeof resp, resp_len) != 0) {
        fprintf(stderr, WHO ": no answer from the gateway (connection closed or timed out)\n");
        goto out;
    }
    (void)mbedtls_ssl_close_notify(&ssl);
    rc = 0;
out:
    mbedtls_net_free(&net);
    mbedtls_ssl_free(&ssl);
    mbedtls_ssl_config_free(&conf);
    hsmc_pk_unbind(&pk);
    return rc;
}

/* Read [code, ...]; for a refusal print [code, message] and return the code. */
static uint64_t response_code(hsmc_cbor_dec_t *d, size_t *n)
{
    uint64_t code = ENROLL_E_BAD_REQUEST;
    const char *msg = NULL;
    size_t len = 0;
    if (hsmc_cbor_get_array(d, n) != HSMC_OK || hsmc_cbor_get_uint(d, &code) != HSMC_OK) {
        fprintf(stderr, WHO ": the gateway's answer is not CBOR [code, ...]\n");
        return ENROLL_E_BAD_REQUEST;
    }
    if (code != ENROLL_OK) {
        if (*n != 2 || hsmc_cbor_get_tstr(d, &msg, &len) != HSMC_OK) {
            msg = "(no message)";
            len = strlen(msg);
        }
        fprintf(stderr, WHO ": the gateway refused: %s (code %u): %.*s\n", enroll_code_name(code),
                (unsigned)code, (int)len, msg);
    }
    return code;
}

static int parse_hex(const char *hex, uint8_t *out, size_t len)
{
    size_t i;
    unsigned v;
    if (strlen(hex) != 2 * len)
        return -1;
    for (i = 0; i < len; i++) {
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* The signed request: [1, COSE_Sign1([1, id, nonce, csr])]. */
static int build_request(const hsmc_key_t *signer, const char *id, const uint8_t *nonce,
                         size_t csr_len, size_t *req_len)
{
    static hsmc_cose_t cose;
    hsmc_cbor_enc_t e;
    size_t pay_len = 0, s1_len = 0;
    hsmc_err_t err;

    hsmc_cbor_enc_init(&e, payload, sizeof payload);
    hsmc_cbor_put_array(&e, 4);
    hsmc_cbor_put_uint(&e, ENROLL_VERSION);
    hsmc_cbor_put_tstr(&e, id, strlen(id));
    hsmc_cbor_put_bstr(&e, nonce, ENROLL_NONCE_LEN);
    hsmc_cbor_put_bstr(&e, csr, csr_len);
    if ((err = hsmc_cbor_enc_finish(&e, &pay_len)) != HSMC_OK)
        return enroll_fail(WHO, NULL, err, "encode the request");

    hsmc_cose_init(&cose, &H);
    err = hsmc_cose_sign1(&cose, signer, 0, /* alg from the key: ES256 for P-256 */
                          (hsmc_view_t){(const uint8_t *)ENROLL_AAD, strlen(ENROLL_AAD)},
                          (hsmc_view_t){payload, pay_len}, 0, sign1, sizeof sign1, &s1_len);
    hsmc_cose_free(&cose);
    if (err != HSMC_OK)
        return enroll_fail(WHO, &H, err, "sign the request");

    hsmc_cbor_enc_init(&e, req, sizeof req);
    hsmc_cbor_put_array(&e, 2);
    hsmc_cbor_put_uint(&e, ENROLL_REQ_ENROLL);
    hsmc_cbor_put_raw(&e, sign1, s1_len); /* the Sign1 is one CBOR item already */
    if ((err = hsmc_cbor_enc_finish(&e, req_len)) != HSMC_OK)
        return enroll_fail(WHO, NULL, err, "encode the request");
    return 0;
}

static void print_cert(const char *what, const mbedtls_x509_crt *c)
{
    char subject[256], issuer[256], serial[80];
    mbedtls_x509_dn_gets(subject, sizeof subject, &c->subject);
    mbedtls_x509_dn_gets(issuer, sizeof issuer, &c->issuer);
    mbedtls_x509_serial_gets(serial, sizeof serial, &c->serial);
    printf("%s: subject %s, issuer %s, serial %s, valid until %04d-%02d-%02d\n", what, subject,
           issuer, serial, c->valid_to.year, c->valid_to.mon, c->valid_to.day);
}

int main(int argc, char **argv)
{
    static hsmc_cert_work_t work;
    static uint8_t spki[HSMC_CA_SPKI_MAX];
    enroll_token_opts_t opts;
    const char *root_file = NULL, *boot_label = "bootstrap", *key_label = "device-mtls";
    const char *id_arg = NULL, *cert_out = NULL, *nonce_hex = NULL, *sign_with = NULL;
    char id[ENROLL_ID_MAX + 1], as[300];
    uint8_t nonce[ENROLL_NONCE_LEN];
    hsmc_key_t boot_key, key, signer;
    mbedtls_x509_crt boot_chain, op_chain;
    hsmc_csr_req_t creq;
    hsmc_cbor_dec_t d;
    const uint8_t *leaf = NULL, *inter = NULL;
    size_t len = 0, csr_len = 0, req_len = 0, resp_len = 0, n = 0, leaf_len = 0, inter_len = 0;
    size_t spki_len = 0;
    uint64_t code;
    hsmc_err_t err;
    int i, created = 0, rc = EXIT_FAIL;

    enroll_token_opts_env(&opts);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (v == NULL) {
            fprintf(stderr, WHO ": %s needs a value\n%s", a, usage);
            return EXIT_USAGE;
        }
        i++;
        if (strcmp(a, "--module") == 0)
            opts.module = v;
        else if (strcmp(a, "--token") == 0)
            opts.token = v;
        else if (strcmp(a, "--pin-file") == 0)
            opts.pin_file = v;
        else if (strcmp(a, "--root") == 0)
            root_file = v;
        else if (strcmp(a, "--host") == 0)
            host = v;
        else if (strcmp(a, "--port") == 0)
            port = v;
        else if (strcmp(a, "--server-name") == 0)
            server_name = v;
        else if (strcmp(a, "--bootstrap-key") == 0)
            boot_label = v;
        else if (strcmp(a, "--key") == 0)
            key_label = v;
        else if (strcmp(a, "--device-id") == 0)
            id_arg = v;
        else if (strcmp(a, "--cert-out") == 0)
            cert_out = v;
        else if (strcmp(a, "--nonce") == 0)
            nonce_hex = v;
        else if (strcmp(a, "--sign-with") == 0)
            sign_with = v;
        else {
            fprintf(stderr, WHO ": unknown option %s\n%s", a, usage);
            return EXIT_USAGE;
        }
    }
    if (root_file == NULL || port == NULL) {
        fprintf(stderr, WHO ": --root and --port are required\n%s", usage);
        return EXIT_USAGE;
    }
    if (nonce_hex != NULL && parse_hex(nonce_hex, nonce, sizeof nonce) != 0) {
        fprintf(stderr, WHO ": --nonce needs %u bytes in hex\n", ENROLL_NONCE_LEN);
        return EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    mbedtls_x509_crt_init(&root);
    mbedtls_x509_crt_init(&boot_chain);
    mbedtls_x509_crt_init(&op_chain);
    memset(&rng, 0, sizeof rng);
    if (enroll_load_pem_chain(&root, root_file, WHO) != 0) {
        rc = EXIT_USAGE;
        goto out_crt;
    }
    if (enroll_token_open(&H, &opts, WHO) != 0)
        goto out_crt;
    if ((err = hsmc_rng_init(&rng, &H)) != HSMC_OK) {
        enroll_fail(WHO, &H, err, "random generator");
        goto out;
    }

    /* 1. The bootstrap identity, as manufacturing left it on the token. */
    if ((err = hsmc_key_open(&H, boot_label, &boot_key)) != HSMC_OK ||
        (err = hsmc_cert_load(&H, &boot_key, der, sizeof der, &len)) != HSMC_OK) {
        enroll_fail(WHO, &H, err, boot_label);
        goto out;
    }
    if (mbedtls_x509_crt_parse_der(&boot_chain, der, len) != 0) {
        enroll_fail(WHO, NULL, HSMC_ERR_FORMAT, "bootstrap certificate");
        goto out;
    }
    if (id_arg != NULL)
        snprintf(id, sizeof id, "%s", id_arg);
    else if (enroll_name_cn(&boot_chain.subject, id, sizeof id) != 0)
        id[0] = '\0';
    if (!enroll_id_valid(id, strlen(id))) {
        fprintf(stderr, WHO ": no usable device id (give --device-id: letters, digits, . _ -)\n");
        rc = EXIT_USAGE;
        goto out;
    }
    print_cert("bootstrap identity", &boot_chain);

    /* 2. The operational key: generated in the token the first time. */
    err = hsmc_key_find_or_create(&H, key_label, HSMC_PURPOSE_MTLS_CLIENT, &key, &created);
    if (err != HSMC_OK) {
        enroll_fail(WHO, &H, err, key_label);
        goto out;
    }
    printf("operational key %s: %s (%s, in the token, never exported)\n", key_label,
           created ? "generated" : "existing", hsmc_alg_name(key.alg));

    /* 3. CSR + nonce + signature by the new key. */
    hsmc_csr_req_init(&creq);
    creq.cn = id;
    creq.o = "hsmc sample devices";
    creq.key_usage = HSMC_KU_DIGITAL_SIGNATURE;
    creq.ext_key_usage = HSMC_EKU_CLIENT_AUTH;
    if ((err = hsmc_csr_create(&H, &key, &creq, HSMC_X509_DER, csr, sizeof csr, &csr_len)) !=
        HSMC_OK) {
        enroll_fail(WHO, &H, err, "CSR");
        goto out;
    }
    if (nonce_hex == NULL && (err = hsmc_random(&H, nonce, sizeof nonce)) != HSMC_OK) {
        enroll_fail(WHO, &H, err, "nonce");
        goto out;
    }
    signer = key;
    if (sign_with != NULL && (err = hsmc_key_open(&H, sign_with, &signer)) != HSMC_OK) {
        enroll_fail(WHO, &H, err, sign_with);
        goto out;
    }
    if (build_request(&signer, id, nonce, csr_len, &req_len) != 0)
        goto out;

    /* 4. Ask, as the bootstrap identity. */
    snprintf(as, sizeof as, "bootstrap identity (%s)", boot_label);
    if (exchange(as, &boot_key, &boot_chain, req, req_len, &resp_len) != 0)
        goto out;
    hsmc_cbor_dec_init(&d, resp, resp_len);
    code = response_code(&d, &n);
    if (code != ENROLL_OK) {
        rc = EXIT_REFUSED;
        goto out;
    }
    /* [0, device id, [leaf, issuing CA]] */
    {
        const char *rid = NULL;
        size_t rid_len = 0, m = 0;
        hsmc_cbor_get_tstr(&d, &rid, &rid_len);
        hsmc_cbor_get_array(&d, &m);
        hsmc_cbor_get_bstr(&d, &leaf, &leaf_len);
        if (m == 2)
            hsmc_cbor_get_bstr(&d, &inter, &inter_len);
        if (hsmc_cbor_dec_finish(&d) != HSMC_OK || n != 3 || m != 2) {
            fprintf(stderr, WHO ": the gateway's answer is not [0, id, [leaf, CA]]\n");
            goto out;
        }
    }

    /* 5. Store it next to the key (hsmc_cert_store refuses a certificate
     *    that is not for this key, so a wrong answer cannot land there). */
    err = hsmc_cert_store(&H, &key, leaf, leaf_len, &work);
    if (err != HSMC_OK) {
        enroll_fail(WHO, &H, err, "store the certificate");
        goto out;
    }
    created = 0; /* the key is certified now: keep it whatever happens next */
    if (hsmc_key_export_pub(&H, &key, spki, sizeof spki, &spki_len) == HSMC_OK) {
        char idhex[2 * HSMC_MAX_ID_LEN + 1];
        enroll_hex(key.priv.id, key.priv.id_len, idhex);
        printf("certificate stored on token %s next to key %s (id %s)\n", opts.token, key_label,
               idhex);
    }
    if (cert_out != NULL) {
        static char pem[2 * CERT_MAX];
        if (hsmc_pem_write("CERTIFICATE", leaf, leaf_len, pem, sizeof pem, &len) != HSMC_OK ||
            enroll_write_file(cert_out, pem, len) != 0) {
            fprintf(stderr, WHO ": cannot write %s\n", cert_out);
            goto out;
        }
    }

    /* 6. Reconnect as the operational identity: the certificate as read
     *    back from the token, then the issuing CA from the answer. */
    if ((err = hsmc_cert_load(&H, &key, der, sizeof der, &len)) != HSMC_OK) {
        enroll_fail(WHO, &H, err, "load the stored certificate");
        goto out;
    }
    if (mbedtls_x509_crt_parse_der(&op_chain, der, len) != 0 ||
        mbedtls_x509_crt_parse_der(&op_chain, inter, inter_len) != 0) {
        enroll_fail(WHO, NULL, HSMC_ERR_FORMAT, "issued certificate chain");
        goto out;
    }
    print_cert("enrolled", &op_chain);
    {
        static const uint8_t whoami[] = {0x81, ENROLL_REQ_WHOAMI}; /* [2] */
        const char *rid = NULL, *subj = NULL, *iss = NULL;
        size_t rid_len = 0, subj_len = 0, iss_len = 0;
        snprintf(as, sizeof as, "operational identity (%s)", key_label);
        if (exchange(as, &key, &op_chain, whoami, sizeof whoami, &resp_len) != 0)
            goto out;
        hsmc_cbor_dec_init(&d, resp, resp_len);
        if (response_code(&d, &n) != ENROLL_OK) {
            rc = EXIT_REFUSED;
            goto out;
        }
        hsmc_cbor_get_tstr(&d, &rid, &rid_len);
        hsmc_cbor_get_tstr(&d, &subj, &subj_len);
        hsmc_cbor_get_tstr(&d, &iss, &iss_len);
        if (hsmc_cbor_dec_finish(&d) != HSMC_OK || n != 4) {
            fprintf(stderr, WHO ": the gateway's answer is not [0, id, subject, issuer]\n");
            goto out;
        }
        printf("gateway confirms: device %.*s authenticated as %.*s (issuer %.*s)\n", (int)rid_len,
               rid, (int)subj_len, subj, (int)iss_len, iss);
    }
    rc = 0;
out:
    /* A key made in this run that got no certificate is removed, so a
     * refused enrollment leaves the token as it was. */
    if (created && hsmc_key_delete(&H, &key) == HSMC_OK)
        printf("removed the uncertified key %s\n", key_label);
    hsmc_rng_free(&rng);
    hsmc_close(&H);
out_crt:
    mbedtls_x509_crt_free(&root);
    mbedtls_x509_crt_free(&boot_chain);
    mbedtls_x509_crt_free(&op_chain);
    return rc;
}
