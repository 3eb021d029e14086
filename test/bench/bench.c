/*
 * hsmc_bench: what hsmc costs over plain PKCS#11 calls.
 *
 * Each operation is timed twice in the same run, on the same token, keys
 * and session: through hsmc ("hsmc") and through the PKCS#11 calls hsmc
 * makes for it, written out by hand ("raw": same mechanisms, same
 * parameters, same host hashing with mbedTLS, the IV drawn from the token
 * RNG when hsmc draws it). The ratio is hsmc ops/s over raw ops/s: 1.000
 * means hsmc costs nothing measurable, 0.950 means 5 % slower.
 *
 * Machines are noisy, so both sides are warmed up, then run in rounds of
 * one ~10 ms batch each (H R, R H, H R, ...); the middle half of the rounds
 * by ratio gives the figures (see run_op). Instruction counts
 * (test/bench/callgrind.sh) are the precise measure of overhead; this
 * program gives throughput.
 *
 * The measured loops are bench_loop_hsmc and bench_loop_raw, never inlined,
 * and bench_mark runs just before each: callgrind.sh dumps a profile when
 * each of the three returns, so every loop gets a profile of its own.
 *
 * usage: hsmc_bench [--op NAME]... [--n N | --seconds S] [--rounds R]
 *                   [--token LABEL] [--module PATH] [--pin-file F]
 *                   [--mode hsmc|raw|both] [--chunk BYTES]
 *                   [--raw-session pool|own] [--quiet] [--list]
 * Output: one line per operation,
 *   op=<name> n=<N> ops_per_s=<x> us_per_op=<y> raw_ops_per_s=<r> ratio=<x/r>
 * with '#' lines (unless --quiet) saying what "raw" is for each.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/x509_csr.h>

#include "hsmc/ca.h"
#include "hsmc/hsmc.h"
#include "hsmc/x509.h"

/* Set by CMake when the COSE sources are in the tree. */
#ifndef HSMC_BENCH_COSE
#define HSMC_BENCH_COSE 0
#endif
#ifndef HSMC_BENCH_STREAM
#define HSMC_BENCH_STREAM 0
#endif

#if defined(__GNUC__) && !defined(__clang__)
#define BENCH_NOINLINE __attribute__((noinline, noclone))
#elif defined(__GNUC__)
#define BENCH_NOINLINE __attribute__((noinline))
#else
#define BENCH_NOINLINE
#endif

/* PKCS#11 takes input as non-const pointers; tokens only read it. */
#define BENCH_IN(p) ((CK_BYTE_PTR)(uintptr_t)(const void *)(p))

#define KIB 1024u
#define MIB (1024u * 1024u)
#define SIGN_MSG_LEN 64u        /* message signed by the sign ops */
#define BIG_LEN (1u * MIB)      /* largest single-shot buffer */
#define ENVELOPE_LEN (64u * MIB)

/* ---- State shared by all operations -------------------------------------- */

/* Keys the operations need (bench_op_t.keys). */
#define K_P256 0x01u
#define K_P384 0x02u
#define K_RSA 0x04u
#define K_AES 0x08u
#define K_KEK 0x10u
#define K_TARGET 0x20u
#define K_CA 0x40u /* P-256 issuing CA key (cert-issue-p256) */

#define X509_BUF 4096u /* a CSR or a certificate */

typedef struct bench {
    hsmc_t h;
    CK_FUNCTION_LIST_PTR fl;
    CK_SESSION_HANDLE rs; /* the raw side's own session (RW, logged in token-wide) */
    unsigned have;        /* K_* made so far */
    hsmc_key_t p256, p384, rsa, aes, kek, target, ca256;
    uint8_t msg[SIGN_MSG_LEN];
    uint8_t *in;          /* BIG_LEN + 16 bytes of input */
    uint8_t *out;         /* BIG_LEN + 64 bytes of output */
    uint8_t *ct4k;        /* a 4 KiB AES-GCM ciphertext || tag for the decrypt op */
    uint8_t ct4k_iv[HSMC_GCM_IV_LEN];
    uint8_t cek[32];      /* host key bytes wrapped by aes-keywrap-bytes */
    uint8_t *env_in;      /* ENVELOPE_LEN bytes */
    size_t chunk;         /* envelope chunk size */
    uint8_t *chunk_out;   /* one sealed chunk */
    size_t chunk_cap;
    /* COSE structures the raw side hashes / authenticates (built once). */
    uint8_t sig_structure[128];
    size_t sig_structure_len;
    uint8_t enc_structure[32];
    size_t enc_structure_len;
#if HSMC_BENCH_COSE
    hsmc_cose_t cose;
    int cose_ready;
#endif
#if HSMC_BENCH_STREAM
    hsmc_cose_stream_t stream;
#endif
    mbedtls_gcm_context gcm;
    /* X.509: the request of csr-p256 (also the device CSR of cert-issue-p256),
     * the issuing CA and that CSR. */
    hsmc_csr_req_t csr_req;
    hsmc_san_t csr_san[2];
    hsmc_ca_policy_t pol;
    int ca_ready;
    uint8_t csr[X509_BUF];
    size_t csr_len;
    uint8_t x509_out[X509_BUF];
    int quiet;
} bench_t;

static bench_t B;
static hsmc_ca_t B_ca; /* the issuing CA (P-256 key, certificate under a P-384 root) */

typedef struct bench_op bench_op_t;
typedef int (*bench_fn)(const bench_op_t *op);

struct bench_op {
    const char *name;
    const char *raw;      /* what the raw side does, for the header */
    unsigned keys;        /* K_* needed */
    int cose;             /* 1: needs hsmc_cose.c, 2: also the COSE stream */
    bench_fn setup;       /* may be NULL */
    bench_fn hsmc;
    bench_fn rawfn;
    size_t len;           /* data bytes per operation */
    int scheme;           /* sign ops: hsmc_sig_scheme_t */
    int hash;             /* sign ops: hsmc_hash_t */
    unsigned key;         /* the K_* key the op works with */
};

static void die(const char *op, const char *what)
{
    fprintf(stderr, "hsmc_bench: %s: %s failed: %s (%s)\n", op, what,
            hsmc_detail(&B.h), hsmc_err_name(hsmc_last_err(&B.h)));
    exit(1);
}

static void die_rv(const char *op, const char *call, CK_RV rv)
{
    fprintf(stderr, "hsmc_bench: %s: raw %s failed: CKR 0x%lx\n", op, call, (unsigned long)rv);
    exit(1);
}

static const hsmc_key_t *key_of(unsigned k)
{
    switch (k) {
    case K_P256:
        return &B.p256;
    case K_P384:
        return &B.p384;
    case K_RSA:
        return &B.rsa;
    case K_AES:
        return &B.aes;
    case K_KEK:
        return &B.kek;
    case K_CA:
        return &B.ca256;
    default:
        return &B.target;
    }
}

/* ---- Signatures --------------------------------------------------------------- */

static const uint8_t di_sha256[19] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                      0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                      0x01, 0x05, 0x00, 0x04, 0x20};

static int h_sign(const bench_op_t *op)
{
    hsmc_sig_alg_t alg;
    uint8_t sig[512];
    size_t slen = 0;

    alg.scheme = (hsmc_sig_scheme_t)op->scheme;
    alg.hash = (hsmc_hash_t)op->hash;
    return hsmc_sign(&B.h, key_of(op->key), alg, B.msg, sizeof B.msg, sig, sizeof sig, &slen) !=
           HSMC_OK;
}

/* Host hash + C_SignInit + C_Sign on `data` (the message or a Sig_structure). */
static int raw_sign_data(const bench_op_t *op, CK_OBJECT_HANDLE key, const uint8_t *data,
                         size_t len)
{
    uint8_t dig[64], in[19 + 64], sig[512];
    CK_RSA_PKCS_PSS_PARAMS pss;
    CK_MECHANISM m;
    CK_ULONG slen = sizeof sig, in_len;
    mbedtls_md_type_t t = op->hash == HSMC_HASH_SHA384 ? MBEDTLS_MD_SHA384 : MBEDTLS_MD_SHA256;
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(t);
    size_t dlen = mbedtls_md_get_size(info);
    CK_RV rv;

    if (mbedtls_md(info, data, len, dig) != 0)
        return 1;
    m.pParameter = NULL;
    m.ulParameterLen = 0;
    switch (op->scheme) {
    case HSMC_SIG_ECDSA:
        m.mechanism = CKM_ECDSA;
        memcpy(in, dig, dlen);
        in_len = (CK_ULONG)dlen;
        break;
    case HSMC_SIG_RSA_PKCS1:
        m.mechanism = CKM_RSA_PKCS;
        memcpy(in, di_sha256, sizeof di_sha256);
        memcpy(in + sizeof di_sha256, dig, dlen);
        in_len = (CK_ULONG)(sizeof di_sha256 + dlen);
        break;
    default: /* PSS, SHA-256 */
        m.mechanism = CKM_RSA_PKCS_PSS;
        pss.hashAlg = CKM_SHA256;
        pss.mgf = CKG_MGF1_SHA256;
        pss.sLen = (CK_ULONG)dlen;
        m.pParameter = &pss;
        m.ulParameterLen = sizeof pss;
        memcpy(in, dig, dlen);
        in_len = (CK_ULONG)dlen;
        break;
    }
    rv = B.fl->C_SignInit(B.rs, &m, key);
    if (rv != CKR_OK)
        die_rv(op->name, "C_SignInit", rv);
    rv = B.fl->C_Sign(B.rs, in, in_len, sig, &slen);
    if (rv != CKR_OK)
        die_rv(op->name, "C_Sign", rv);
    return 0;
}

static int r_sign(const bench_op_t *op)
{
    return raw_sign_data(op, key_of(op->key)->priv.handle, B.msg, sizeof B.msg);
}

/* ---- AES-GCM -------------------------------------------------------------------- */

static int h_gcm_enc(const bench_op_t *op)
{
    uint8_t iv[HSMC_GCM_IV_LEN];
    size_t olen = 0;

    return hsmc_gcm_encrypt(&B.h, &B.aes, NULL, 0, B.in, op->len, iv, B.out,
                            BIG_LEN + 64u, &olen) != HSMC_OK;
}

/* C_GenerateRandom (IV) + C_EncryptInit + C_Encrypt, with AAD `aad`. */
static int raw_gcm_enc(const char *name, const uint8_t *aad, size_t aad_len,
                       const uint8_t *pt, size_t len)
{
    CK_BYTE iv[HSMC_GCM_IV_LEN];
    CK_GCM_PARAMS p;
    CK_MECHANISM m;
    CK_ULONG olen = (CK_ULONG)(len + HSMC_GCM_TAG_LEN);
    CK_RV rv;

    rv = B.fl->C_GenerateRandom(B.rs, iv, sizeof iv);
    if (rv != CKR_OK)
        die_rv(name, "C_GenerateRandom", rv);
    p.pIv = iv;
    p.ulIvLen = sizeof iv;
    p.ulIvBits = 8u * sizeof iv;
    p.pAAD = aad_len ? BENCH_IN(aad) : NULL;
    p.ulAADLen = (CK_ULONG)aad_len;
    p.ulTagBits = 8u * HSMC_GCM_TAG_LEN;
    m.mechanism = CKM_AES_GCM;
    m.pParameter = &p;
    m.ulParameterLen = sizeof p;
    rv = B.fl->C_EncryptInit(B.rs, &m, B.aes.priv.handle);
    if (rv != CKR_OK)
        die_rv(name, "C_EncryptInit", rv);
    rv = B.fl->C_Encrypt(B.rs, BENCH_IN(pt), (CK_ULONG)len, B.out, &olen);
    if (rv != CKR_OK)
        die_rv(name, "C_Encrypt", rv);
    return 0;
}

static int r_gcm_enc(const bench_op_t *op)
{
    return raw_gcm_enc(op->name, NULL, 0, B.in, op->len);
}

static int s_gcm_dec(const bench_op_t *op)
{
    size_t olen = 0;

    if (hsmc_gcm_encrypt(&B.h, &B.aes, NULL, 0, B.in, op->len, B.ct4k_iv, B.ct4k,
                         op->len + HSMC_GCM_TAG_LEN, &olen) != HSMC_OK)
        die(op->name, "setup: hsmc_gcm_encrypt");
    return 0;
}

static int h_gcm_dec(const bench_op_t *op)
{
    size_t olen = 0;

    return hsmc_gcm_decrypt(&B.h, &B.aes, NULL, 0, B.ct4k_iv, B.ct4k, op->len + HSMC_GCM_TAG_LEN,
                            B.out, BIG_LEN + 64u, &olen) != HSMC_OK;
}

static int r_gcm_dec(const bench_op_t *op)
{
    CK_BYTE iv[HSMC_GCM_IV_LEN];
    CK_GCM_PARAMS p;
    CK_MECHANISM m;
    CK_ULONG olen = (CK_ULONG)(op->len + HSMC_GCM_TAG_LEN);
    CK_RV rv;

    memcpy(iv, B.ct4k_iv, sizeof iv);
    p.pIv = iv;
    p.ulIvLen = sizeof iv;
    p.ulIvBits = 8u * sizeof iv;
    p.pAAD = NULL;
    p.ulAADLen = 0;
    p.ulTagBits = 8u * HSMC_GCM_TAG_LEN;
    m.mechanism = CKM_AES_GCM;
    m.pParameter = &p;
    m.ulParameterLen = sizeof p;
    rv = B.fl->C_DecryptInit(B.rs, &m, B.aes.priv.handle);
    if (rv != CKR_OK)
        die_rv(op->name, "C_DecryptInit", rv);
    rv = B.fl->C_Decrypt(B.rs, B.ct4k, (CK_ULONG)(op->len + HSMC_GCM_TAG_LEN), B.out, &olen);
    if (rv != CKR_OK)
        die_rv(op->name, "C_Decrypt", rv);
    return 0;
}

/* ---- Key wrap ------------------------------------------------------------------------ */

static int h_wrap(const bench_op_t *op)
{
    uint8_t out[64];
    size_t olen = 0;

    (void)op;
    return hsmc_wrap(&B.h, &B.kek, HSMC_WRAP_AES_KW, &B.target, out, sizeof out, &olen) !=
           HSMC_OK;
}

static int r_wrap(const bench_op_t *op)
{
    CK_MECHANISM m = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_BYTE out[64];
    CK_ULONG olen = sizeof out;
    CK_RV rv;

    rv = B.fl->C_WrapKey(B.rs, &m, B.kek.priv.handle, B.target.priv.handle, out, &olen);
    if (rv != CKR_OK)
        die_rv(op->name, "C_WrapKey", rv);
    return 0;
}

static int h_wrap_bytes(const bench_op_t *op)
{
    uint8_t out[64];
    size_t olen = 0;

    (void)op;
    return hsmc_wrap_bytes(&B.h, &B.kek, HSMC_WRAP_AES_KW, B.cek, sizeof B.cek, out, sizeof out,
                           &olen) != HSMC_OK;
}

/*
 * Host key bytes wrapped by a token KEK: load them as a temporary session
 * key (the template hsmc uses: sensitive, extractable, no other use),
 * C_WrapKey, C_DestroyObject.
 */
static int raw_wrap_bytes(const char *name, const uint8_t *bytes, size_t len, uint8_t *out,
                          CK_ULONG *olen)
{
    static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    static const CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    static const CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, BENCH_IN(&cls), sizeof cls},
        {CKA_KEY_TYPE, BENCH_IN(&kt), sizeof kt},
        {CKA_TOKEN, BENCH_IN(&no), sizeof no},
        {CKA_PRIVATE, BENCH_IN(&yes), sizeof yes},
        {CKA_SENSITIVE, BENCH_IN(&yes), sizeof yes},
        {CKA_EXTRACTABLE, BENCH_IN(&yes), sizeof yes},
        {CKA_ENCRYPT, BENCH_IN(&no), sizeof no},
        {CKA_DECRYPT, BENCH_IN(&no), sizeof no},
        {CKA_WRAP, BENCH_IN(&no), sizeof no},
        {CKA_UNWRAP, BENCH_IN(&no), sizeof no},
        {CKA_SIGN, BENCH_IN(&no), sizeof no},
        {CKA_VERIFY, BENCH_IN(&no), sizeof no},
        {CKA_DERIVE, BENCH_IN(&no), sizeof no},
        {CKA_VALUE, BENCH_IN(bytes), 0},
    };
    CK_MECHANISM m = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
    CK_RV rv;

    t[13].ulValueLen = (CK_ULONG)len;
    rv = B.fl->C_CreateObject(B.rs, t, sizeof t / sizeof t[0], &tmp);
    if (rv != CKR_OK)
        die_rv(name, "C_CreateObject", rv);
    rv = B.fl->C_WrapKey(B.rs, &m, B.kek.priv.handle, tmp, out, olen);
    if (rv != CKR_OK)
        die_rv(name, "C_WrapKey", rv);
    rv = B.fl->C_DestroyObject(B.rs, tmp);
    if (rv != CKR_OK)
        die_rv(name, "C_DestroyObject", rv);
    return 0;
}

static int r_wrap_bytes(const bench_op_t *op)
{
    CK_BYTE out[64];
    CK_ULONG olen = sizeof out;

    return raw_wrap_bytes(op->name, B.cek, sizeof B.cek, out, &olen);
}

/* ---- COSE ------------------------------------------------------------------------------ */

/* The Sig_structure of a COSE_Sign1 with protected {1: -7}, no external
 * AAD and the 64-byte message: ["Signature1", h'A10126', h'', payload]. */
static void build_sig_structure(void)
{
    static const uint8_t head[] = {0x84, 0x6a, 'S',  'i',  'g',  'n',  'a', 't',
                                   'u',  'r',  'e',  '1',  0x43, 0xa1, 0x01, 0x26,
                                   0x40, 0x58, SIGN_MSG_LEN};
    memcpy(B.sig_structure, head, sizeof head);
    memcpy(B.sig_structure + sizeof head, B.msg, sizeof B.msg);
    B.sig_structure_len = sizeof head + sizeof B.msg;
}

/* The Enc_structure of a COSE_Encrypt0 with protected {1: 3 (A256GCM)} and
 * no external AAD: ["Encrypt0", h'A10103', h'']. */
static void build_enc_structure(void)
{
    static const uint8_t es[] = {0x83, 0x68, 'E', 'n', 'c', 'r', 'y', 'p', 't', '0',
                                 0x43, 0xa1, 0x01, 0x03, 0x40};
    memcpy(B.enc_structure, es, sizeof es);
    B.enc_structure_len = sizeof es;
}

static int r_cose_sign1(const bench_op_t *op)
{
    return raw_sign_data(op, B.p256.priv.handle, B.sig_structure, B.sig_structure_len);
}

static int r_cose_encrypt0(const bench_op_t *op)
{
    return raw_gcm_enc(op->name, B.enc_structure, B.enc_structure_len, B.in, op->len);
}

/* Bytes of CBOR head before an unsigned integer's end: 1, 2, 3, 5 or 9. */
static size_t raw_uint_len(uint64_t v)
{
    return v < 24u ? 1u : v <= 0xffu ? 2u : v <= 0xffffu ? 3u : v <= 0xffffffffu ? 5u : 9u;
}

/* Length of a stream item's head [8-byte id, index, bstr header of len]. */
static size_t raw_frame(uint64_t idx, size_t len)
{
    return 1u + 1u + 8u + raw_uint_len(idx) + raw_uint_len(len);
}

/*
 * The envelope without hsmc: content key and base IV from the token RNG,
 * the content key wrapped by the KEK in the token (C_CreateObject +
 * C_WrapKey + C_DestroyObject), then mbedTLS AES-256-GCM over each chunk
 * (nonce = base IV XOR chunk index, a 41-byte AAD: 32 binding bytes, the
 * index, a last-chunk flag), written to one chunk buffer as a stream
 * writer would, after a frame head as long as the stream's. No CBOR
 * encoding and no per-chunk token calls.
 */
static int r_envelope(const bench_op_t *op)
{
    uint8_t rnd[32 + HSMC_GCM_IV_LEN], nonce[HSMC_GCM_IV_LEN], aad[41], wrapped[64];
    CK_ULONG wlen = sizeof wrapped;
    size_t off = 0, n, hl;
    uint64_t idx = 0;
    int last = 0, i;
    CK_RV rv;

    rv = B.fl->C_GenerateRandom(B.rs, rnd, sizeof rnd);
    if (rv != CKR_OK)
        die_rv(op->name, "C_GenerateRandom", rv);
    (void)raw_wrap_bytes(op->name, rnd, 32, wrapped, &wlen);
    mbedtls_gcm_init(&B.gcm);
    if (mbedtls_gcm_setkey(&B.gcm, MBEDTLS_CIPHER_ID_AES, rnd, 256) != 0)
        return 1;
    memset(aad, 0x5a, 32);
    while (!last) {
        n = op->len - off < B.chunk ? op->len - off : B.chunk;
        last = n < B.chunk;
        memcpy(nonce, rnd + 32, sizeof nonce);
        for (i = 0; i < 8; i++) {
            nonce[HSMC_GCM_IV_LEN - 1 - i] ^= (uint8_t)(idx >> (8 * i));
            aad[32 + i] = (uint8_t)(idx >> (8 * i));
        }
        aad[40] = (uint8_t)last;
        /* A frame as long as the stream item's CBOR head, so that both sides
         * write ciphertext at the same buffer offsets (the offset alone
         * moves mbedTLS GCM by several percent on x86). */
        hl = raw_frame(idx, n + 16u);
        memcpy(B.chunk_out, rnd + 32, 8);
        B.chunk_out[8] = (uint8_t)idx;
        if (mbedtls_gcm_crypt_and_tag(&B.gcm, MBEDTLS_GCM_ENCRYPT, n, nonce, sizeof nonce, aad,
                                      sizeof aad, B.env_in + off, B.chunk_out + hl, 16,
                                      B.chunk_out + hl + n) != 0)
            return 1;
        off += n;
        idx++;
    }
    mbedtls_gcm_free(&B.gcm);
    memset(rnd, 0, sizeof rnd);
    return 0;
}

#if HSMC_BENCH_COSE
static int h_cose_sign1(const bench_op_t *op)
{
    hsmc_view_t aad = {NULL, 0}, payload;
    uint8_t out[256];
    size_t olen = 0;

    (void)op;
    payload.ptr = B.msg;
    payload.len = sizeof B.msg;
    return hsmc_cose_sign1(&B.cose, &B.p256, HSMC_COSE_ES256, aad, payload, 0, out, sizeof out,
                           &olen) != HSMC_OK;
}

static int h_cose_encrypt0(const bench_op_t *op)
{
    hsmc_view_t aad = {NULL, 0}, pt;
    size_t olen = 0;

    pt.ptr = B.in;
    pt.len = op->len;
    return hsmc_cose_encrypt0(&B.cose, &B.aes, aad, pt, B.out, BIG_LEN + 64u, &olen) != HSMC_OK;
}

#endif

#if HSMC_BENCH_STREAM
static int h_envelope(const bench_op_t *op)
{
    hsmc_cose_recipient_t r;
    hsmc_view_t aad = {NULL, 0};
    uint8_t hdr[1024];
    size_t off = 0, olen = 0;
    hsmc_err_t err;

    r.key = &B.kek;
    r.alg = HSMC_COSE_A256KW;
    hsmc_cose_stream_init(&B.stream, &B.h);
    err = hsmc_cose_stream_seal_init(&B.stream, &r, 1, B.chunk, aad, hdr, sizeof hdr, &olen);
    while (err == HSMC_OK && op->len - off >= B.chunk) {
        err = hsmc_cose_stream_seal_chunk(&B.stream, B.env_in + off, B.chunk, B.chunk_out,
                                          B.chunk_cap, &olen);
        off += B.chunk;
    }
    if (err == HSMC_OK)
        err = hsmc_cose_stream_seal_finish(&B.stream, B.env_in + off, op->len - off,
                                           B.chunk_out, B.chunk_cap, &olen);
    hsmc_cose_stream_free(&B.stream);
    return err != HSMC_OK;
}
#endif
#if !HSMC_BENCH_COSE
#define h_cose_sign1 NULL
#define h_cose_encrypt0 NULL
#endif
#if !HSMC_BENCH_STREAM
#define h_envelope NULL
#endif

/* One COSE context for the run, made when a COSE operation first needs it. */
static int s_cose(const bench_op_t *op)
{
    (void)op;
#if HSMC_BENCH_COSE
    if (!B.cose_ready)
        hsmc_cose_init(&B.cose, &B.h);
    B.cose_ready = 1;
#endif
    return 0;
}

/* ---- X.509 ------------------------------------------------------------------------------ */

/* The CSR of csr-p256: 3 subject fields, a DNS and a URI SAN, keyUsage, extKeyUsage. */
static int s_csr(const bench_op_t *op)
{
    (void)op;
    hsmc_csr_req_init(&B.csr_req);
    B.csr_req.c = "DE";
    B.csr_req.o = "hsmc bench";
    B.csr_req.cn = "dev-0001";
    B.csr_san[0].type = HSMC_SAN_DNS;
    B.csr_san[0].value = "dev-0001.example.com";
    B.csr_san[1].type = HSMC_SAN_URI;
    B.csr_san[1].value = "spiffe://example.org/device/0001";
    B.csr_req.san = B.csr_san;
    B.csr_req.san_count = 2;
    B.csr_req.key_usage = HSMC_KU_DIGITAL_SIGNATURE;
    B.csr_req.ext_key_usage = HSMC_EKU_CLIENT_AUTH;
    return 0;
}

static int h_csr(const bench_op_t *op)
{
    size_t len = 0;

    (void)op;
    return hsmc_csr_create(&B.h, &B.p256, &B.csr_req, HSMC_X509_DER, B.x509_out,
                           sizeof B.x509_out, &len) != HSMC_OK;
}

/*
 * The issuing CA of cert-issue-p256, made once: a P-384 root (self-signed),
 * the P-256 CA key certified by it as ca_intermediate, opened with that
 * chain; and the device CSR (csr-p256's request with the P-256 device key).
 */
static int s_ca(const bench_op_t *op)
{
    static hsmc_ca_t root;
    static uint8_t root_der[X509_BUF], chain[2 * X509_BUF];
    hsmc_csr_req_t creq;
    hsmc_issue_req_t req;
    size_t root_len = 0, int_len = 0, len = 0;

    if (B.ca_ready)
        return 0;
    (void)s_csr(op);
    hsmc_ca_policy_init(&B.pol);
    B.pol.allow_root = 1;
    B.pol.ceremony = "bench";
    B.pol.profile[HSMC_PROFILE_MTLS_CLIENT].names.dns = "example.com";
    B.pol.profile[HSMC_PROFILE_MTLS_CLIENT].names.uri = "spiffe://example.org/device/";

    hsmc_ca_init(&root);
    if (hsmc_ca_open(&root, &B.h, &B.p384, NULL, 0, &B.pol) != HSMC_OK)
        die(op->name, "setup: hsmc_ca_open (root)");
    memset(&req, 0, sizeof req);
    req.profile = HSMC_PROFILE_CA_ROOT;
    req.subject = "CN=hsmc bench root,O=hsmc bench";
    if (hsmc_ca_issue(&root, &req, root_der, sizeof root_der, &root_len, NULL) != HSMC_OK)
        die(op->name, "setup: hsmc_ca_issue (root)");
    hsmc_csr_req_init(&creq);
    creq.cn = "hsmc bench issuing CA";
    creq.o = "hsmc bench";
    if (hsmc_csr_create(&B.h, &B.ca256, &creq, HSMC_X509_DER, B.csr, sizeof B.csr, &len) !=
        HSMC_OK)
        die(op->name, "setup: hsmc_csr_create (CA)");
    req.profile = HSMC_PROFILE_CA_INTERMEDIATE;
    req.subject = NULL;
    req.csr = B.csr;
    req.csr_len = len;
    if (hsmc_ca_issue(&root, &req, chain, X509_BUF, &int_len, NULL) != HSMC_OK)
        die(op->name, "setup: hsmc_ca_issue (intermediate)");
    hsmc_ca_free(&root);
    memcpy(chain + int_len, root_der, root_len);
    hsmc_ca_init(&B_ca);
    if (hsmc_ca_open(&B_ca, &B.h, &B.ca256, chain, int_len + root_len, &B.pol) != HSMC_OK)
        die(op->name, "setup: hsmc_ca_open (intermediate)");
    if (hsmc_csr_create(&B.h, &B.p256, &B.csr_req, HSMC_X509_DER, B.csr, sizeof B.csr,
                        &B.csr_len) != HSMC_OK)
        die(op->name, "setup: hsmc_csr_create (device)");
    B.ca_ready = 1;
    return 0;
}

static int h_cert_issue(const bench_op_t *op)
{
    hsmc_issue_req_t req;
    size_t len = 0;

    (void)op;
    memset(&req, 0, sizeof req);
    req.profile = HSMC_PROFILE_MTLS_CLIENT;
    req.csr = B.csr;
    req.csr_len = B.csr_len;
    return hsmc_ca_issue(&B_ca, &req, B.x509_out, sizeof B.x509_out, &len, NULL) != HSMC_OK;
}

/*
 * The first step of cert-issue-p256 alone, to show its share: parse the CSR
 * with mbedTLS and verify its self-signature in software (SHA-256 of the
 * CertificationRequestInfo + mbedtls_pk_verify), as hsmc_ca_issue does
 * before anything else. Not an hsmc call: a yardstick.
 */
static int h_csr_verify(const bench_op_t *op)
{
    mbedtls_x509_csr csr;
    uint8_t md[32];
    int ret;

    (void)op;
    mbedtls_x509_csr_init(&csr);
    ret = mbedtls_x509_csr_parse_der(&csr, B.csr, B.csr_len);
    if (ret == 0)
        ret = mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), csr.cri.p, csr.cri.len,
                         md);
    if (ret == 0)
        ret = mbedtls_pk_verify(&csr.pk, MBEDTLS_MD_SHA256, md, sizeof md, csr.sig.p,
                                csr.sig.len);
    mbedtls_x509_csr_free(&csr);
    return ret != 0;
}

/* ---- The operations --------------------------------------------------------------- */

static const bench_op_t ops[] = {
    {"ecdsa-p256-sign", "SHA-256 (mbedTLS) of 64 B + C_SignInit(CKM_ECDSA) + C_Sign", K_P256, 0,
     NULL, h_sign, r_sign, SIGN_MSG_LEN, HSMC_SIG_ECDSA, HSMC_HASH_SHA256, K_P256},
    {"ecdsa-p384-sign", "SHA-384 (mbedTLS) of 64 B + C_SignInit(CKM_ECDSA) + C_Sign", K_P384, 0,
     NULL, h_sign, r_sign, SIGN_MSG_LEN, HSMC_SIG_ECDSA, HSMC_HASH_SHA384, K_P384},
    {"rsa2048-sign",
     "SHA-256 (mbedTLS) of 64 B + DigestInfo + C_SignInit(CKM_RSA_PKCS) + C_Sign", K_RSA, 0,
     NULL, h_sign, r_sign, SIGN_MSG_LEN, HSMC_SIG_RSA_PKCS1, HSMC_HASH_SHA256, K_RSA},
    {"rsa2048-pss-sign",
     "SHA-256 (mbedTLS) of 64 B + C_SignInit(CKM_RSA_PKCS_PSS, SHA-256, salt 32) + C_Sign",
     K_RSA, 0, NULL, h_sign, r_sign, SIGN_MSG_LEN, HSMC_SIG_RSA_PSS, HSMC_HASH_SHA256, K_RSA},
    {"aes256-gcm-encrypt-64", "C_GenerateRandom(IV) + C_EncryptInit(CKM_AES_GCM) + C_Encrypt",
     K_AES, 0, NULL, h_gcm_enc, r_gcm_enc, 64, 0, 0, K_AES},
    {"aes256-gcm-encrypt-4k", "C_GenerateRandom(IV) + C_EncryptInit(CKM_AES_GCM) + C_Encrypt",
     K_AES, 0, NULL, h_gcm_enc, r_gcm_enc, 4 * KIB, 0, 0, K_AES},
    {"aes256-gcm-encrypt-1m", "C_GenerateRandom(IV) + C_EncryptInit(CKM_AES_GCM) + C_Encrypt",
     K_AES, 0, NULL, h_gcm_enc, r_gcm_enc, 1 * MIB, 0, 0, K_AES},
    {"aes256-gcm-decrypt-4k", "C_DecryptInit(CKM_AES_GCM) + C_Decrypt", K_AES, 0, s_gcm_dec,
     h_gcm_dec, r_gcm_dec, 4 * KIB, 0, 0, K_AES},
    {"aes-keywrap", "C_WrapKey(CKM_AES_KEY_WRAP) of a token AES-256 key (hsmc: hsmc_wrap)",
     K_KEK | K_TARGET, 0, NULL, h_wrap, r_wrap, 32, 0, 0, K_KEK},
    {"aes-keywrap-bytes",
     "C_CreateObject(32 host bytes) + C_WrapKey(CKM_AES_KEY_WRAP) + C_DestroyObject "
     "(hsmc: hsmc_wrap_bytes)",
     K_KEK, 0, NULL, h_wrap_bytes, r_wrap_bytes, 32, 0, 0, K_KEK},
    {"cose-sign1-es256",
     "SHA-256 (mbedTLS) of the prebuilt Sig_structure + C_SignInit(CKM_ECDSA) + C_Sign; "
     "no CBOR encoding",
     K_P256, 1, s_cose, h_cose_sign1, r_cose_sign1, SIGN_MSG_LEN, HSMC_SIG_ECDSA,
     HSMC_HASH_SHA256, K_P256},
    {"cose-encrypt0-4k",
     "C_GenerateRandom(IV) + C_EncryptInit(CKM_AES_GCM, AAD = prebuilt Enc_structure) + "
     "C_Encrypt; no CBOR encoding",
     K_AES, 1, s_cose, h_cose_encrypt0, r_cose_encrypt0, 4 * KIB, 0, 0, K_AES},
    {"envelope-64m",
     "C_GenerateRandom(CEK, IV) + C_CreateObject/C_WrapKey/C_DestroyObject once + mbedTLS "
     "AES-256-GCM per chunk; no per-chunk token calls, no CBOR",
     K_KEK, 2, s_cose, h_envelope, r_envelope, ENVELOPE_LEN, 0, 0, K_KEK},
    {"csr-p256",
     "SHA-256 (mbedTLS) of 64 B + C_SignInit(CKM_ECDSA) + C_Sign with the same P-256 key "
     "(hsmc: hsmc_csr_create, DER, 3 subject fields, 2 SANs, KU, EKU)",
     K_P256, 0, s_csr, h_csr, r_sign, SIGN_MSG_LEN, HSMC_SIG_ECDSA, HSMC_HASH_SHA256, K_P256},
    {"cert-issue-p256",
     "SHA-256 (mbedTLS) of 64 B + C_SignInit(CKM_ECDSA) + C_Sign with the P-256 CA key "
     "(hsmc: hsmc_ca_issue mtls_client from a P-256 token-made CSR, CA under a P-384 root)",
     K_P256 | K_P384 | K_CA, 0, s_ca, h_cert_issue, r_sign, SIGN_MSG_LEN, HSMC_SIG_ECDSA,
     HSMC_HASH_SHA256, K_CA},
    {"csr-verify-p256",
     "one C_Sign as above; the other side is NOT an hsmc call: mbedTLS parse + software "
     "ECDSA verify of the CSR's self-signature, the first step of cert-issue-p256",
     K_P256 | K_P384 | K_CA, 0, s_ca, h_csr_verify, r_sign, SIGN_MSG_LEN, HSMC_SIG_ECDSA,
     HSMC_HASH_SHA256, K_CA},
};
#define N_OPS (sizeof ops / sizeof ops[0])

/* ---- Keys -------------------------------------------------------------------------------- */

static void make_key(unsigned k, const char *label, hsmc_key_alg_t alg, unsigned usage,
                     hsmc_key_t *out)
{
    hsmc_key_spec_t spec;

    if (B.have & k)
        return;
    memset(&spec, 0, sizeof spec);
    spec.alg = alg;
    spec.usage = usage;
    spec.session = 1;
    if (hsmc_key_generate(&B.h, label, &spec, out) != HSMC_OK)
        die(label, "hsmc_key_generate");
    B.have |= k;
}

/* An extractable AES-256 session key to wrap (hsmc makes only
 * non-extractable keys), then opened through hsmc like any key. */
static void make_target(void)
{
    static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    static const CK_ULONG len = 32;
    static const char label[] = "bench-wrap-target";
    CK_ATTRIBUTE t[] = {
        {CKA_TOKEN, BENCH_IN(&no), sizeof no},
        {CKA_PRIVATE, BENCH_IN(&yes), sizeof yes},
        {CKA_SENSITIVE, BENCH_IN(&yes), sizeof yes},
        {CKA_EXTRACTABLE, BENCH_IN(&yes), sizeof yes},
        {CKA_ENCRYPT, BENCH_IN(&yes), sizeof yes},
        {CKA_VALUE_LEN, BENCH_IN(&len), sizeof len},
        {CKA_LABEL, BENCH_IN(label), sizeof label - 1},
    };
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE o;
    CK_RV rv;

    if (B.have & K_TARGET)
        return;
    rv = B.fl->C_GenerateKey(B.rs, &m, t, sizeof t / sizeof t[0], &o);
    if (rv != CKR_OK)
        die_rv(label, "C_GenerateKey", rv);
    if (hsmc_key_open(&B.h, label, &B.target) != HSMC_OK)
        die(label, "hsmc_key_open");
    B.have |= K_TARGET;
}

static void make_keys(unsigned need)
{
    if (need & K_P256)
        make_key(K_P256, "bench-p256", HSMC_ALG_P256, HSMC_USE_SIGN, &B.p256);
    if (need & K_P384)
        make_key(K_P384, "bench-p384", HSMC_ALG_P384, HSMC_USE_SIGN, &B.p384);
    if (need & K_RSA)
        make_key(K_RSA, "bench-rsa2048", HSMC_ALG_RSA2048, HSMC_USE_SIGN, &B.rsa);
    if (need & K_AES)
        make_key(K_AES, "bench-aes256", HSMC_ALG_AES256, HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT,
                 &B.aes);
    if (need & K_KEK)
        make_key(K_KEK, "bench-kek", HSMC_ALG_AES256, HSMC_USE_WRAP | HSMC_USE_UNWRAP, &B.kek);
    if (need & K_TARGET)
        make_target();
    if (need & K_CA)
        make_key(K_CA, "bench-ca-p256", HSMC_ALG_P256, HSMC_USE_SIGN, &B.ca256);
}

/* ---- Timing ------------------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * The measured loops. callgrind.sh dumps a profile when bench_mark returns
 * (just before a loop) and when a loop returns, so each loop's profile holds
 * that loop alone.
 */
BENCH_NOINLINE void bench_mark(void);
BENCH_NOINLINE void bench_loop_hsmc(const bench_op_t *op, unsigned long n);
BENCH_NOINLINE void bench_loop_raw(const bench_op_t *op, unsigned long n);

static volatile unsigned long bench_marks;

BENCH_NOINLINE void bench_mark(void)
{
    bench_marks++;
}

BENCH_NOINLINE void bench_loop_hsmc(const bench_op_t *op, unsigned long n)
{
    unsigned long i;
    for (i = 0; i < n; i++) {
        if (op->hsmc(op) != 0)
            die(op->name, "the hsmc operation");
    }
}

BENCH_NOINLINE void bench_loop_raw(const bench_op_t *op, unsigned long n)
{
    unsigned long i;
    for (i = 0; i < n; i++) {
        if (op->rawfn(op) != 0)
            die(op->name, "the raw operation");
    }
}

/* Warm-up outside the measured loops: at least 3 operations and ~50 ms.
 * @return seconds per operation. */
static double warm(const bench_op_t *op, bench_fn fn, const char *side)
{
    double t0 = now_s(), t;
    unsigned long k = 0;

    do {
        if (fn(op) != 0)
            die(op->name, side);
        k++;
        t = now_s() - t0;
    } while (k < 3 || (t < 0.05 && k < 100000));
    return t / (double)k;
}

typedef struct bench_cfg {
    unsigned long n;   /* 0: by time */
    double seconds;    /* per side */
    unsigned long rounds; /* 0: automatic */
    int mode;          /* 0 both, 1 hsmc, 2 raw */
} bench_cfg_t;

static double run_side(const bench_op_t *op, int hsmc_side, unsigned long n)
{
    double t0;

    t0 = now_s();
    bench_mark();
    if (hsmc_side)
        bench_loop_hsmc(op, n);
    else
        bench_loop_raw(op, n);
    return now_s() - t0;
}

/* One round: k operations per side, and each side's time. */
typedef struct bench_round {
    unsigned long k;
    double th, tr;
} bench_round_t;

static int cmp_ratio(const void *a, const void *b)
{
    const bench_round_t *x = a, *y = b;
    double rx = x->tr / x->th, ry = y->tr / y->th;
    return rx < ry ? -1 : rx > ry;
}

/*
 * Time one operation. Both sides run in rounds of one batch each (hsmc
 * first in even rounds, raw first in odd ones), batches of ~10 ms. With
 * both sides, the rounds are sorted by their own ratio and the middle half
 * is kept: a round in which the machine stalled one side only (another
 * process, an interrupt storm) says nothing about hsmc. ops_per_s,
 * raw_ops_per_s and ratio come from the kept rounds, so ratio = x / r.
 */
static void run_op(const bench_op_t *op, const bench_cfg_t *cfg)
{
    double th = 0, tr = 0, per, sum_h = 0, sum_r = 0, q1, q3;
    unsigned long batch, done = 0, want, k, kept = 0;
    bench_round_t *rounds;
    size_t nr = 0, cap, lo, hi, i;

    make_keys(op->keys);
    if (op->setup != NULL && op->setup(op) != 0)
        die(op->name, "setup");
    if (cfg->mode != 2)
        th = warm(op, op->hsmc, "hsmc warm-up");
    if (cfg->mode != 1)
        tr = warm(op, op->rawfn, "raw warm-up");
    per = th > tr ? th : tr;

    want = cfg->n;
    if (want == 0) {
        /* At least 20 rounds even for slow operations (envelope-64m), so
         * that the middle half means something. */
        want = (unsigned long)(cfg->seconds / per);
        if (want < 20)
            want = 20;
    }
    if (cfg->rounds != 0)
        batch = (want + cfg->rounds - 1) / cfg->rounds;
    else
        batch = (unsigned long)(0.01 / per);
    if (batch < 1)
        batch = 1;
    cap = (size_t)((want + batch - 1) / batch);
    rounds = calloc(cap, sizeof *rounds);
    if (rounds == NULL) {
        fprintf(stderr, "hsmc_bench: out of memory\n");
        exit(1);
    }
    while (done < want) {
        bench_round_t *r = &rounds[nr];
        k = want - done < batch ? want - done : batch;
        r->k = k;
        /* Alternate which side goes first, so drift within a round cancels. */
        if (nr % 2 == 0) {
            if (cfg->mode != 2)
                r->th = run_side(op, 1, k);
            if (cfg->mode != 1)
                r->tr = run_side(op, 0, k);
        } else {
            if (cfg->mode != 1)
                r->tr = run_side(op, 0, k);
            if (cfg->mode != 2)
                r->th = run_side(op, 1, k);
        }
        done += k;
        nr++;
    }
    if (cfg->mode != 0) {
        for (i = 0; i < nr; i++)
            sum_h += cfg->mode == 1 ? rounds[i].th : rounds[i].tr;
        printf("op=%s n=%lu mode=%s ops_per_s=%.1f us_per_op=%.2f\n", op->name, done,
               cfg->mode == 1 ? "hsmc" : "raw", (double)done / sum_h,
               1e6 * sum_h / (double)done);
        free(rounds);
        fflush(stdout);
        return;
    }
    qsort(rounds, nr, sizeof *rounds, cmp_ratio);
    /* The middle half (all rounds when there are fewer than 4). */
    lo = nr >= 4 ? nr / 4 : 0;
    hi = nr >= 4 ? nr - nr / 4 : nr;
    for (i = lo; i < hi; i++) {
        sum_h += rounds[i].th;
        sum_r += rounds[i].tr;
        kept += rounds[i].k;
    }
    q1 = rounds[lo].tr / rounds[lo].th;
    q3 = rounds[hi - 1].tr / rounds[hi - 1].th;
    printf("op=%s n=%lu ops_per_s=%.1f us_per_op=%.2f raw_ops_per_s=%.1f ratio=%.3f\n", op->name,
           done, (double)kept / sum_h, 1e6 * sum_h / (double)kept, (double)kept / sum_r,
           sum_r / sum_h);
    if (!B.quiet)
        printf("#   %s: %lu rounds of %lu; middle half of round ratios %.3f..%.3f\n", op->name,
               (unsigned long)nr, batch, q1, q3);
    free(rounds);
    fflush(stdout);
}

/* ---- Main -------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hsmc_bench [--op NAME]... [--n N | --seconds S] [--rounds R]\n"
            "                  [--token LABEL] [--module PATH] [--pin-file F]\n"
            "                  [--mode hsmc|raw|both] [--chunk BYTES] [--raw-session pool|own]\n"
            "                  [--quiet] [--list]\n"
            "  --op       operation to run (repeatable; default: all; --list names them)\n"
            "  --n        operations per side (default: as many as --seconds allows)\n"
            "  --seconds  seconds per side and operation (default 2)\n"
            "  --rounds   alternating hsmc/raw batches (default: ~10 ms batches)\n"
            "  --token    token label (default bench)\n"
            "  --module   PKCS#11 module (default $HSMC_TEST_MODULE or SoftHSM2)\n"
            "  --pin-file user PIN file (default $HSMC_TEST_PIN_FILE)\n"
            "  --mode     both (default), or one side only (for callgrind)\n"
            "  --chunk    envelope chunk size in bytes (default 65536)\n"
            "  --raw-session pool (default: the raw side uses the session hsmc's calls\n"
            "             borrow) or own (a session of its own from C_OpenSession)\n");
}

static const char *arg_of(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "hsmc_bench: %s needs a value\n", argv[*i]);
        exit(2);
    }
    return argv[++*i];
}

/* 1 when this build has what the operation needs. */
static int op_built(const bench_op_t *op)
{
    return op->cose == 0 || (op->cose == 1 && HSMC_BENCH_COSE) ||
           (op->cose == 2 && HSMC_BENCH_STREAM);
}

static const bench_op_t *find_op(const char *name)
{
    size_t i;
    for (i = 0; i < N_OPS; i++) {
        if (strcmp(ops[i].name, name) == 0)
            return &ops[i];
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const bench_op_t *sel[N_OPS];
    size_t nsel = 0, i, j;
    const char *module = getenv("HSMC_TEST_MODULE");
    const char *pin_file = getenv("HSMC_TEST_PIN_FILE");
    const char *token = "bench";
    bench_cfg_t cfg;
    hsmc_cfg_t hc;
    CK_SLOT_ID slot;
    CK_RV rv;
    int explicit_ops = 0, own_session = 0;

    memset(&cfg, 0, sizeof cfg);
    cfg.seconds = 2.0;
    B.chunk = 64u * KIB;
    for (i = 1; i < (size_t)argc; i++) {
        int ii = (int)i;
        const char *a = argv[i];
        if (strcmp(a, "--op") == 0) {
            const bench_op_t *op = find_op(arg_of(argc, argv, &ii));
            if (op == NULL) {
                fprintf(stderr, "hsmc_bench: unknown op '%s' (--list)\n", argv[ii]);
                return 2;
            }
            for (j = 0; j < nsel && sel[j] != op; j++)
                ;
            if (j == nsel)
                sel[nsel++] = op;
            explicit_ops = 1;
        } else if (strcmp(a, "--n") == 0) {
            cfg.n = strtoul(arg_of(argc, argv, &ii), NULL, 10);
        } else if (strcmp(a, "--seconds") == 0) {
            cfg.seconds = strtod(arg_of(argc, argv, &ii), NULL);
        } else if (strcmp(a, "--rounds") == 0) {
            cfg.rounds = strtoul(arg_of(argc, argv, &ii), NULL, 10);
        } else if (strcmp(a, "--token") == 0) {
            token = arg_of(argc, argv, &ii);
        } else if (strcmp(a, "--module") == 0) {
            module = arg_of(argc, argv, &ii);
        } else if (strcmp(a, "--pin-file") == 0) {
            pin_file = arg_of(argc, argv, &ii);
        } else if (strcmp(a, "--chunk") == 0) {
            B.chunk = (size_t)strtoul(arg_of(argc, argv, &ii), NULL, 10);
        } else if (strcmp(a, "--mode") == 0) {
            const char *m = arg_of(argc, argv, &ii);
            cfg.mode = strcmp(m, "hsmc") == 0 ? 1 : strcmp(m, "raw") == 0 ? 2 : 0;
            if (cfg.mode == 0 && strcmp(m, "both") != 0) {
                fprintf(stderr, "hsmc_bench: --mode is hsmc, raw or both\n");
                return 2;
            }
        } else if (strcmp(a, "--raw-session") == 0) {
            const char *m = arg_of(argc, argv, &ii);
            own_session = strcmp(m, "own") == 0;
            if (!own_session && strcmp(m, "pool") != 0) {
                fprintf(stderr, "hsmc_bench: --raw-session is pool or own\n");
                return 2;
            }
        } else if (strcmp(a, "--quiet") == 0) {
            B.quiet = 1;
        } else if (strcmp(a, "--list") == 0) {
            for (j = 0; j < N_OPS; j++)
                printf("%s%s\n", ops[j].name,
                       op_built(&ops[j]) ? "" : " (not built: COSE sources missing)");
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
        i = (size_t)ii;
    }
    if (!(cfg.seconds > 0) || B.chunk == 0 || B.chunk > 16u * MIB) {
        fprintf(stderr, "hsmc_bench: --seconds must be > 0 and --chunk 1..16 MiB\n");
        return 2;
    }
    if (!explicit_ops) {
        for (i = 0; i < N_OPS; i++) {
            if (op_built(&ops[i]))
                sel[nsel++] = &ops[i];
        }
    } else {
        for (i = 0; i < nsel; i++) {
            if (!op_built(sel[i])) {
                fprintf(stderr, "hsmc_bench: %s needs COSE, which this build lacks\n",
                        sel[i]->name);
                return 2;
            }
        }
    }
    if (module == NULL || module[0] == '\0')
        module = "/usr/lib/softhsm/libsofthsm2.so";
    if (pin_file == NULL) {
        fprintf(stderr, "hsmc_bench: give --pin-file (or set HSMC_TEST_PIN_FILE)\n");
        return 2;
    }

    /* Buffers (test code may allocate). */
    B.in = malloc(BIG_LEN + 16u);
    B.out = malloc(BIG_LEN + 64u);
    B.ct4k = malloc(4u * KIB + HSMC_GCM_TAG_LEN);
    B.env_in = malloc(ENVELOPE_LEN);
    B.chunk_cap = B.chunk + 64u;
    B.chunk_out = malloc(B.chunk_cap);
    if (B.in == NULL || B.out == NULL || B.ct4k == NULL || B.env_in == NULL ||
        B.chunk_out == NULL) {
        fprintf(stderr, "hsmc_bench: out of memory\n");
        return 1;
    }
    for (i = 0; i < BIG_LEN + 16u; i++)
        B.in[i] = (uint8_t)(i * 131u + 7u);
    for (i = 0; i < ENVELOPE_LEN; i++)
        B.env_in[i] = (uint8_t)(i * 29u + (i >> 12));
    for (i = 0; i < sizeof B.msg; i++)
        B.msg[i] = (uint8_t)('a' + i % 26u);
    for (i = 0; i < sizeof B.cek; i++)
        B.cek[i] = (uint8_t)(0xc0u + i);
    build_sig_structure();
    build_enc_structure();

    hsmc_cfg_init(&hc);
    hc.module_path = module;
    hc.token.label = token;
    hc.pin.kind = HSMC_PIN_FILE;
    hc.pin.arg = pin_file;
    hsmc_init(&B.h);
    if (hsmc_open(&B.h, &hc) != HSMC_OK)
        die("open", "hsmc_open");
    B.fl = hsmc_functions(&B.h);
    if (hsmc_slot(&B.h, &slot) != HSMC_OK)
        die("open", "hsmc_slot");
    if (own_session) {
        /* Serial and read-write like hsmc's pool sessions; already logged in
         * (login is token-wide). */
        rv = B.fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &B.rs);
        if (rv != CKR_OK)
            die_rv("open", "C_OpenSession", rv);
    } else {
        /* The pool's first session, which every hsmc call borrows again in
         * this single-threaded program: both sides work in one session. */
        hsmc_sess_t ps;
        memset(&ps, 0, sizeof ps);
        if (hsmc_session_begin(&B.h, &ps) != HSMC_OK)
            die("open", "hsmc_session_begin");
        B.rs = ps.handle;
        (void)hsmc_session_end(&ps, CKR_OK, NULL);
    }

    if (!B.quiet) {
        printf("# hsmc_bench: module %s, token '%s', %ld CPUs, mode %s\n", module, token,
               sysconf(_SC_NPROCESSORS_ONLN),
               cfg.mode == 0 ? "both" : cfg.mode == 1 ? "hsmc" : "raw");
        printf("# keys: session objects made by hsmc_key_generate (the wrap target by "
               "C_GenerateKey, extractable)\n");
        printf("# hsmc and raw alternate in ~10 ms batches after a warm-up; the rounds are "
               "ranked by their ratio and the middle half gives\n"
               "# ops_per_s, raw_ops_per_s and ratio = ops_per_s / raw_ops_per_s "
               "(n counts every operation run per side)\n");
        printf("# raw = the same token calls and host work without hsmc, on the same keys, "
               "in %s:\n",
               own_session ? "a session of its own (C_OpenSession, RW)"
                           : "the pool session hsmc's calls use");
        for (i = 0; i < nsel; i++)
            printf("#   %-22s %s\n", sel[i]->name, sel[i]->raw);
        for (i = 0; i < nsel; i++) {
            if (sel[i]->rawfn == r_envelope)
                printf("# envelope-64m: %u-byte chunks\n", (unsigned)B.chunk);
        }
        fflush(stdout);
    }
    for (i = 0; i < nsel; i++)
        run_op(sel[i], &cfg);

    if (own_session)
        (void)B.fl->C_CloseSession(B.rs);
#if HSMC_BENCH_COSE
    if (B.cose_ready)
        hsmc_cose_free(&B.cose);
#endif
    if (B.ca_ready)
        hsmc_ca_free(&B_ca);
    hsmc_close(&B.h);
    free(B.in);
    free(B.out);
    free(B.ct4k);
    free(B.env_in);
    free(B.chunk_out);
    return 0;
}
