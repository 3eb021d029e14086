/*
 * samples/enroll: what the enrollment server, the device and the setup
 * program share: opening a token from command-line options, the message
 * framing over TLS, the TLS handshake loop, small file helpers, and the
 * error codes of the protocol (docs/FORMATS.md, "Enrollment messages").
 */
#ifndef ENROLL_COMMON_H
#define ENROLL_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "hsmc/hsmc.h"

/* Largest framed message either side accepts: a CSR, a Sign1 around it,
 * or a two-certificate chain fit easily; anything bigger is refused before
 * it is read, so a peer cannot make us buffer unbounded input. */
#define ENROLL_MSG_MAX 16384u

/* Message types (first element of a request). */
#define ENROLL_REQ_ENROLL 1u
#define ENROLL_REQ_WHOAMI 2u

/* Protocol version inside the signed enrollment payload. */
#define ENROLL_VERSION 1u

/* External AAD of the request's COSE_Sign1: binds the signature to this
 * protocol, so a Sign1 the key made for something else is no request. */
#define ENROLL_AAD "hsmc-enroll-v1"

/* Nonce length: 128 bits from the device token's RNG. */
#define ENROLL_NONCE_LEN 16u

/* Longest device id (letters, digits, '.', '_', '-'). */
#define ENROLL_ID_MAX 64u

/* Response codes: 0 is success, every other value is a refusal. */
#define ENROLL_OK 0u
#define ENROLL_E_BAD_REQUEST 1u  /* malformed framing, CBOR or payload */
#define ENROLL_E_UNKNOWN_BOOTSTRAP 2u /* client certificate not issued by the factory CA */
#define ENROLL_E_POSSESSION 3u   /* Sign1 does not verify with the CSR's key */
#define ENROLL_E_REPLAY 4u       /* nonce already used */
#define ENROLL_E_ID_TAKEN 5u     /* device id enrolled with another key */
#define ENROLL_E_ID_MISMATCH 6u  /* device id is not the bootstrap certificate's CN */
#define ENROLL_E_CSR_REFUSED 7u  /* the CA's policy refused the CSR */
#define ENROLL_E_NOT_ENROLLED 8u /* whoami: not an enrolled operational identity */
#define ENROLL_E_INTERNAL 9u     /* the gateway failed (token, disk) */

/* Short name of a response code ("replay", ...), "unknown" otherwise. */
const char *enroll_code_name(uint64_t code);

/* Token options every program takes (like the hsmc CLI): --module,
 * --token LABEL, --pin-file FILE, with HSMC_MODULE / HSMC_TOKEN /
 * HSMC_PIN_FILE as fallbacks. The PIN itself is never an argument. */
typedef struct enroll_token_opts {
    const char *module;
    const char *token;
    const char *pin_file;
} enroll_token_opts_t;

/* Fill opts from the environment (call before parsing arguments). */
void enroll_token_opts_env(enroll_token_opts_t *opts);

/* Open and log in. Prints what went wrong. @return 0 or -1. */
int enroll_token_open(hsmc_t *h, const enroll_token_opts_t *opts, const char *who);

/* Print "who: what: HSMC_ERR_x: detail" to stderr; returns -1. */
int enroll_fail(const char *who, hsmc_t *h, hsmc_err_t err, const char *what);

/* Framing: a 4-byte big-endian length, then that many bytes of CBOR. */
int enroll_send(mbedtls_ssl_context *ssl, const uint8_t *msg, size_t len);
/* Receive one framed message into buf. @return 0, or -1 (closed, too big, timeout). */
int enroll_recv(mbedtls_ssl_context *ssl, uint8_t *buf, size_t cap, size_t *len);

/* Run the handshake to the end. @return 0 or the mbedTLS error (printed). */
int enroll_handshake(mbedtls_ssl_context *ssl, const char *who);

/* The commonName of a name, NUL-terminated. @return 0, or -1 when there is none. */
int enroll_name_cn(const mbedtls_x509_name *name, char *out, size_t cap);

/* Files. */
int enroll_read_file(const char *path, uint8_t *buf, size_t cap, size_t *len);
/* Replace path atomically: write path.tmp, fsync, rename. */
int enroll_write_file(const char *path, const void *data, size_t len);
/* Read a PEM file with one or more certificates into a chain. */
int enroll_load_pem_chain(mbedtls_x509_crt *chain, const char *path, const char *who);

/* Lower-case hex of len bytes into out (2 * len + 1 bytes). */
void enroll_hex(const uint8_t *p, size_t len, char *out);

/* A device id is 1..ENROLL_ID_MAX of [A-Za-z0-9._-]: safe in files and names. */
int enroll_id_valid(const char *id, size_t len);

#endif /* ENROLL_COMMON_H */
