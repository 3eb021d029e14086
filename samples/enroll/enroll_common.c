/*
 * samples/enroll: helpers shared by enroll_server, enroll_device and
 * enroll_setup. See enroll_common.h.
 */
#define _POSIX_C_SOURCE 200809L /* fsync, fileno */
#include "enroll_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/error.h>
#include <mbedtls/oid.h>

const char *enroll_code_name(uint64_t code)
{
    switch (code) {
    case ENROLL_OK: return "ok";
    case ENROLL_E_BAD_REQUEST: return "bad-request";
    case ENROLL_E_UNKNOWN_BOOTSTRAP: return "unknown-bootstrap";
    case ENROLL_E_POSSESSION: return "proof-of-possession";
    case ENROLL_E_REPLAY: return "replay";
    case ENROLL_E_ID_TAKEN: return "id-taken";
    case ENROLL_E_ID_MISMATCH: return "id-mismatch";
    case ENROLL_E_CSR_REFUSED: return "csr-refused";
    case ENROLL_E_NOT_ENROLLED: return "not-enrolled";
    case ENROLL_E_INTERNAL: return "internal";
    default: return "unknown";
    }
}

void enroll_token_opts_env(enroll_token_opts_t *opts)
{
    opts->module = getenv("HSMC_MODULE");
    if (opts->module == NULL || opts->module[0] == '\0')
        opts->module = "/usr/lib/softhsm/libsofthsm2.so";
    opts->token = getenv("HSMC_TOKEN");
    opts->pin_file = getenv("HSMC_PIN_FILE");
}

int enroll_fail(const char *who, hsmc_t *h, hsmc_err_t err, const char *what)
{
    const char *detail = h != NULL ? hsmc_detail(h) : "";
    fprintf(stderr, "%s: %s: %s (%s)%s%s\n", who, what, hsmc_strerror(err), hsmc_err_name(err),
            detail[0] != '\0' ? ": " : "", detail);
    return -1;
}

int enroll_token_open(hsmc_t *h, const enroll_token_opts_t *opts, const char *who)
{
    hsmc_cfg_t cfg;
    hsmc_err_t err;

    if (opts->token == NULL || opts->pin_file == NULL) {
        fprintf(stderr,
                "%s: give --token LABEL and --pin-file FILE (or HSMC_TOKEN, HSMC_PIN_FILE)\n",
                who);
        return -1;
    }
    hsmc_cfg_init(&cfg);
    cfg.module_path = opts->module;
    cfg.token.label = opts->token;
    cfg.pin.kind = HSMC_PIN_FILE; /* the PIN stays in a file, never in argv */
    cfg.pin.arg = opts->pin_file;
    hsmc_init(h);
    err = hsmc_open(h, &cfg);
    if (err != HSMC_OK)
        return enroll_fail(who, h, err, opts->token);
    return 0;
}

/* Write all of p, riding out WANT_WRITE. */
static int ssl_write_all(mbedtls_ssl_context *ssl, const uint8_t *p, size_t len)
{
    while (len > 0) {
        int ret = mbedtls_ssl_write(ssl, p, len);
        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        if (ret <= 0)
            return -1;
        p += ret;
        len -= (size_t)ret;
    }
    return 0;
}

/* Read exactly len bytes (records may split a message anywhere). */
static int ssl_read_all(mbedtls_ssl_context *ssl, uint8_t *p, size_t len)
{
    while (len > 0) {
        int ret = mbedtls_ssl_read(ssl, p, len);
        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        if (ret <= 0) /* 0 or close_notify: the peer went away; timeouts too */
            return -1;
        p += ret;
        len -= (size_t)ret;
    }
    return 0;
}

int enroll_send(mbedtls_ssl_context *ssl, const uint8_t *msg, size_t len)
{
    uint8_t head[4];
    if (len == 0 || len > ENROLL_MSG_MAX)
        return -1;
    head[0] = (uint8_t)(len >> 24);
    head[1] = (uint8_t)(len >> 16);
    head[2] = (uint8_t)(len >> 8);
    head[3] = (uint8_t)len;
    if (ssl_write_all(ssl, head, 4) != 0 || ssl_write_all(ssl, msg, len) != 0)
        return -1;
    return 0;
}

int enroll_recv(mbedtls_ssl_context *ssl, uint8_t *buf, size_t cap, size_t *len)
{
    uint8_t head[4];
    size_t n;
    if (ssl_read_all(ssl, head, 4) != 0)
        return -1;
    n = (size_t)head[0] << 24 | (size_t)head[1] << 16 | (size_t)head[2] << 8 | head[3];
    if (n == 0 || n > ENROLL_MSG_MAX || n > cap) /* refuse before reading the body */
        return -1;
    if (ssl_read_all(ssl, buf, n) != 0)
        return -1;
    *len = n;
    return 0;
}

int enroll_handshake(mbedtls_ssl_context *ssl, const char *who)
{
    int ret;
    do {
        ret = mbedtls_ssl_handshake(ssl);
    } while (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE);
    if (ret != 0) {
        char text[160];
        mbedtls_strerror(ret, text, sizeof text);
        fprintf(stderr, "%s: TLS handshake failed: -0x%04x %s\n", who, (unsigned)-ret, text);
        if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
            mbedtls_x509_crt_verify_info(text, sizeof text, "  ",
                                         mbedtls_ssl_get_verify_result(ssl));
            fprintf(stderr, "%s: peer certificate:\n%s", who, text);
        }
    }
    return ret;
}

int enroll_name_cn(const mbedtls_x509_name *name, char *out, size_t cap)
{
    for (; name != NULL; name = name->next) {
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &name->oid) == 0) {
            if (name->val.len + 1 > cap)
                return -1;
            memcpy(out, name->val.p, name->val.len);
            out[name->val.len] = '\0';
            return 0;
        }
    }
    return -1;
}

int enroll_read_file(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    if (f == NULL)
        return -1;
    n = fread(buf, 1, cap, f);
    if (ferror(f) || (n == cap && fgetc(f) != EOF)) { /* error, or larger than buf */
        fclose(f);
        return -1;
    }
    fclose(f);
    *len = n;
    return 0;
}

int enroll_write_file(const char *path, const void *data, size_t len)
{
    char tmp[1024];
    FILE *f;
    int ok;

    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return -1;
    f = fopen(tmp, "wb");
    if (f == NULL)
        return -1;
    ok = fwrite(data, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0)
        ok = 0;
    /* rename is atomic: readers see the old file or the new one, never half */
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

int enroll_load_pem_chain(mbedtls_x509_crt *chain, const char *path, const char *who)
{
    int ret = mbedtls_x509_crt_parse_file(chain, path);
    if (ret != 0) {
        char text[120];
        mbedtls_strerror(ret, text, sizeof text);
        fprintf(stderr, "%s: %s: not a PEM certificate file (%s)\n", who, path, text);
        return -1;
    }
    return 0;
}

void enroll_hex(const uint8_t *p, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
}

int enroll_id_valid(const char *id, size_t len)
{
    size_t i;
    if (len == 0 || len > ENROLL_ID_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}
