/*
 * COSE envelopes (cose.h) against a real SoftHSM2 token ("test" from
 * with-token.sh):
 *   round trips of COSE_Encrypt0, COSE_Encrypt (A256KW, RSA-OAEP, two
 *   recipients), COSE_Sign1 (attached, detached; token and SPKI checks) and
 *   the chunked stream (0 bytes .. a few MiB with fixed small buffers);
 *   every single-byte change and every truncation of each envelope is
 *   refused and never yields plaintext; wrong key, AAD and kid, and a
 *   stream cut short, reordered, spliced or extended each give their own
 *   error; a key rotation keeps old envelopes readable;
 *   the content type (label 3) in the protected bucket of COSE_Encrypt0,
 *   COSE_Encrypt, COSE_Sign1 and the stream header: written in bytewise key
 *   order, reported on reading, authenticated (every changed byte refused),
 *   wrongly typed values refused, messages without it unchanged;
 *   an independent implementation (test/tools/cose_check.py, python3-cbor2
 *   + python3-cryptography) reads what hsmc writes and writes what hsmc
 *   must read, including malformed variants the strict decoder refuses.
 * Keys the Python side must share are imported from known bytes.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdint.h>
#include <unistd.h>

#include "hsmc_test.h"

static hsmc_t H;
static hsmc_cose_t C;

/* Keys. */
static hsmc_key_t K_AES128, K_AES256, K_AES_OTHER, K_KEK, K_KEK2, K_RSA, K_RSA_SW;
static hsmc_key_t K_P256, K_P384, K_RSASIG, K_ED, K_PY_P256, K_PY_RSA;
static int have_ed;

static const uint8_t AES128_BYTES[16] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                         0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
static const uint8_t AES256_BYTES[32] = {
    0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0, 0x85, 0x7d, 0x77, 0x81,
    0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4};
static const uint8_t KEK_BYTES[32] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};

/* ---- helpers ------------------------------------------------------------------ */

static hsmc_view_t V(const void *p, size_t n)
{
    hsmc_view_t v;
    v.ptr = (const uint8_t *)p;
    v.len = n;
    return v;
}

static const hsmc_view_t NONE = {NULL, 0};

/* Whole file into a malloc'ed buffer; *n its size. */
static uint8_t *read_bin(const char *name, size_t *n)
{
    FILE *f = fopen(hsmc_test_path(name), "rb");
    uint8_t *b;
    long sz;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0) {
        perror(name);
        exit(2);
    }
    rewind(f);
    b = malloc((size_t)sz + 1);
    if (b == NULL || (sz > 0 && fread(b, 1, (size_t)sz, f) != (size_t)sz))
        exit(2);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static int py_quiet; /* a failure is expected: do not print it */

/* Run cose_check.py; its output line goes to line (without newline).
 * @return 0 when it succeeded (exit 0, not FAIL). */
static int py(char *line, size_t cap, const char *fmt, ...)
{
    char args[4096], cmd[4600];
    va_list ap;
    int ok;

    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/test/tools/cose_check.py %s",
             hsmc_test_env("HSMC_TEST_SOURCE_DIR"), args);
    ok = hsmc_test_cmd_line(cmd, line, cap);
    if (ok != 0 && !py_quiet)
        fprintf(stderr, "  cose_check.py %s\n    -> %s\n", args, line);
    return ok;
}

static int all_zero(const uint8_t *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

static hsmc_err_t import_key(const char *label, hsmc_key_alg_t alg, unsigned usage,
                             const uint8_t *data, size_t len, hsmc_key_t *k)
{
    hsmc_key_spec_t spec;
    hsmc_err_t err;
    spec = hsmc_test_spec(alg, usage);
    err = hsmc_key_import(&H, label, &spec, data, len, k);
    if (err != HSMC_OK)
        fprintf(stderr, "import %s: %s: %s\n", label, hsmc_err_name(err), hsmc_detail(&H));
    return err;
}

/* Python key pair: PEM for Python, PKCS#8 imported into the token. */
static hsmc_err_t py_key(const char *kind, const char *label, hsmc_key_alg_t alg, unsigned usage,
                         hsmc_key_t *k)
{
    char line[256], pem[64], der[64], spki[64];
    uint8_t *b;
    size_t n;
    hsmc_err_t err;
    snprintf(pem, sizeof pem, "%s.pem", label);
    snprintf(der, sizeof der, "%s.p8", label);
    snprintf(spki, sizeof spki, "%s.spki", label);
    if (py(line, sizeof line, "mkkey %s %s %s %s", kind, hsmc_test_path(pem), hsmc_test_path(der),
           hsmc_test_path(spki)) != 0)
        return HSMC_ERR_IO;
    b = read_bin(der, &n);
    err = import_key(label, alg, usage, b, n, k);
    free(b);
    return err;
}

/* Export a token public key as SPKI into file `name`. */
static int export_spki(const hsmc_key_t *k, const char *name, uint8_t *der, size_t cap,
                       size_t *len)
{
    if (hsmc_key_export_pub(&H, k, der, cap, len) != HSMC_OK) {
        fprintf(stderr, "export %s: %s\n", k->priv.label, hsmc_detail(&H));
        return -1;
    }
    hsmc_test_write_bin(name, der, *len);
    return 0;
}

/* A resolver that knows one kid less: recipients naming `user` are skipped. */
static hsmc_err_t skip_resolver(void *user, hsmc_t *h, const uint8_t *kid, size_t kid_len,
                                hsmc_key_t *key)
{
    const char *skip = user;
    if (kid_len == strlen(skip) && memcmp(kid, skip, kid_len) == 0)
        return HSMC_ERR_OBJECT_NOT_FOUND;
    return hsmc_cose_resolve_label(NULL, h, kid, kid_len, key);
}

/* Find the first occurrence of needle in hay. */
static long find(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
    size_t i;
    for (i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return (long)i;
    return -1;
}

/* ---- setup ---------------------------------------------------------------------- */

static void test_setup(void)
{
    hsmc_cfg_t cfg;
    hsmc_err_t err;

    hsmc_test_cfg(&cfg, "test");
    hsmc_init(&H);
    err = hsmc_open(&H, &cfg);
    if (err != HSMC_OK)
        fprintf(stderr, "open: %s\n", hsmc_detail(&H));
    REQUIRE(err == HSMC_OK);
    hsmc_cose_init(&C, &H);
    CHECK_ERR(import_key("e0-128", HSMC_ALG_AES128, HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT,
                         AES128_BYTES, sizeof AES128_BYTES, &K_AES128),
              HSMC_OK);
    CHECK_ERR(import_key("e0-256", HSMC_ALG_AES256, HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT,
                         AES256_BYTES, sizeof AES256_BYTES, &K_AES256),
              HSMC_OK);
    CHECK_ERR(hsmc_test_gen(&H, "e0-other", HSMC_ALG_AES256, HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT,
                            &K_AES_OTHER),
              HSMC_OK);
    CHECK_ERR(import_key("kek-v0001", HSMC_ALG_AES256, HSMC_USE_WRAP | HSMC_USE_UNWRAP,
                         KEK_BYTES, sizeof KEK_BYTES, &K_KEK),
              HSMC_OK);
    CHECK_ERR(hsmc_test_gen(&H, "kek2", HSMC_ALG_AES256, HSMC_USE_WRAP | HSMC_USE_UNWRAP, &K_KEK2),
              HSMC_OK);
    CHECK_ERR(
        hsmc_test_gen(&H, "rsa-enc", HSMC_ALG_RSA2048, HSMC_USE_DECRYPT | HSMC_USE_UNWRAP, &K_RSA),
        HSMC_OK);
    CHECK_ERR(py_key("rsa2048", "rsa-sw", HSMC_ALG_RSA2048, HSMC_USE_DECRYPT | HSMC_USE_UNWRAP,
                     &K_RSA_SW),
              HSMC_OK);
    CHECK_ERR(hsmc_test_gen(&H, "sig-p256", HSMC_ALG_P256, HSMC_USE_SIGN, &K_P256), HSMC_OK);
    CHECK_ERR(hsmc_test_gen(&H, "sig-p384", HSMC_ALG_P384, HSMC_USE_SIGN, &K_P384), HSMC_OK);
    CHECK_ERR(hsmc_test_gen(&H, "sig-rsa", HSMC_ALG_RSA2048, HSMC_USE_SIGN, &K_RSASIG), HSMC_OK);
    have_ed = hsmc_test_gen(&H, "sig-ed", HSMC_ALG_ED25519, HSMC_USE_SIGN, &K_ED) == HSMC_OK;
    if (!have_ed)
        fprintf(stderr, "note: the token cannot make Ed25519 keys; EdDSA is skipped\n");
    CHECK_ERR(py_key("p256", "py-p256", HSMC_ALG_P256, HSMC_USE_SIGN, &K_PY_P256), HSMC_OK);
    CHECK_ERR(py_key("rsa2048", "py-rsa", HSMC_ALG_RSA2048, HSMC_USE_SIGN, &K_PY_RSA), HSMC_OK);
}

/* ---- COSE_Encrypt0 ---------------------------------------------------------------- */

static void test_encrypt0_round_trip(void)
{
    static const size_t lens[] = {0, 1, 15, 16, 17, 100, 4096, 70000};
    const hsmc_key_t *keys[2] = {&K_AES128, &K_AES256};
    uint8_t aad[5] = {'h', 'e', 'l', 'l', 'o'};
    hsmc_cose_info_t info;
    size_t i, k, n, m, need, pn;
    uint8_t *pt = malloc(70000), *msg = malloc(70100), *out = malloc(70100);

    REQUIRE(pt != NULL && msg != NULL && out != NULL);
    for (k = 0; k < 2; k++) {
        for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            hsmc_test_fill(pt, lens[i], (unsigned)i);
            CHECK_ERR(hsmc_cose_encrypt0(&C, keys[k], V(aad, i % 2 ? 5 : 0), V(pt, lens[i]), NULL,
                                         0, &need),
                      HSMC_OK);
            CHECK_ERR(hsmc_cose_encrypt0(&C, keys[k], V(aad, i % 2 ? 5 : 0), V(pt, lens[i]), msg,
                                         70100, &n),
                      HSMC_OK);
            CHECK(n == need);
            CHECK(msg[0] == 0xd0); /* tag 16 */
            CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg, n), V(aad, i % 2 ? 5 : 0), 0, NULL, 0, &m,
                                         NULL),
                      HSMC_OK);
            CHECK(m == lens[i] + 16);
            memset(&info, 0xaa, sizeof info);
            CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg, n), V(aad, i % 2 ? 5 : 0), 0, out, 70100, &pn,
                                         &info),
                      HSMC_OK);
            CHECK(pn == lens[i] && memcmp(out, pt, pn) == 0);
            CHECK(info.alg == (k == 0 ? HSMC_COSE_A128GCM : HSMC_COSE_A256GCM));
            CHECK(info.kid.len == keys[k]->priv.label_len &&
                  memcmp(info.kid.ptr, keys[k]->priv.label, info.kid.len) == 0);
        }
    }
    /* A too small output: BUFFER with the size, and nothing left in it. */
    hsmc_test_fill(pt, 100, 9);
    CHECK_ERR(hsmc_cose_encrypt0(&C, &K_AES256, NONE, V(pt, 100), msg, 50, &n), HSMC_ERR_BUFFER);
    CHECK(n > 100);
    CHECK_ERR(hsmc_cose_encrypt0(&C, &K_AES256, NONE, V(pt, 100), msg, 70100, &n), HSMC_OK);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg, n), NONE, 0, out, 100, &pn, NULL), HSMC_ERR_BUFFER);
    CHECK(pn == 116);
    free(pt);
    free(msg);
    free(out);
}

static void test_encrypt0_errors(void)
{
    uint8_t pt[40], msg[256], out[256], bad[300];
    uint8_t aad[3] = {1, 2, 3}, aad2[3] = {1, 2, 4};
    size_t n, m;
    long at;

    hsmc_test_fill(pt, sizeof pt, 3);
    CHECK_ERR(hsmc_cose_encrypt0(&C, &K_AES256, V(aad, 3), V(pt, sizeof pt), msg, sizeof msg, &n),
              HSMC_OK);
    /* wrong AAD, missing AAD */
    memset(out, 0x55, sizeof out);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg, n), V(aad2, 3), 0, out, sizeof out, &m, NULL),
              HSMC_ERR_DECRYPT);
    CHECK(all_zero(out, sizeof out));
    CHECK(strstr(hsmc_detail(&H), "e0-256") != NULL);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg, n), NONE, 0, out, sizeof out, &m, NULL),
              HSMC_ERR_DECRYPT);
    /* wrong key: a resolver that answers with another AES-256 key */
    hsmc_cose_set_resolver(&C, hsmc_cose_resolve_fixed, &K_AES_OTHER);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg, n), V(aad, 3), 0, out, sizeof out, &m, NULL),
              HSMC_ERR_DECRYPT);
    /* a key of another size or type than alg says */
    hsmc_cose_set_resolver(&C, hsmc_cose_resolve_fixed, &K_AES128);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg, n), V(aad, 3), 0, out, sizeof out, &m, NULL),
              HSMC_ERR_KEY_USAGE);
    hsmc_cose_set_resolver(&C, hsmc_cose_resolve_fixed, &K_KEK);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg, n), V(aad, 3), 0, out, sizeof out, &m, NULL),
              HSMC_ERR_KEY_USAGE);
    hsmc_cose_set_resolver(&C, NULL, NULL);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg, n), V(aad, 3), 0, out, sizeof out, &m, NULL), HSMC_OK);
    /* wrong kid: no such key (the detail names it), or another key */
    memcpy(bad, msg, n);
    at = find(bad, n, "e0-256", 6);
    REQUIRE(at > 0);
    memcpy(bad + at, "zz-256", 6);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(bad, n), V(aad, 3), 0, out, sizeof out, &m, NULL),
              HSMC_ERR_OBJECT_NOT_FOUND);
    CHECK(strstr(hsmc_detail(&H), "zz-256") != NULL);
    memcpy(bad + at, "e0-128", 6);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(bad, n), V(aad, 3), 0, out, sizeof out, &m, NULL),
              HSMC_ERR_KEY_USAGE);
    /* the tag: required unless HSMC_COSE_UNTAGGED; only tag 16 */
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg + 1, n - 1), V(aad, 3), 0, out, sizeof out, &m, NULL),
              HSMC_ERR_FORMAT);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg + 1, n - 1), V(aad, 3), HSMC_COSE_UNTAGGED, out,
                                 sizeof out, &m, NULL),
              HSMC_OK);
    CHECK(m == sizeof pt && memcmp(out, pt, m) == 0);
    memcpy(bad, msg, n);
    bad[0] = 0xd2; /* tag 18 */
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(bad, n), V(aad, 3), HSMC_COSE_UNTAGGED, out, sizeof out,
                                 &m, NULL),
              HSMC_ERR_FORMAT);
    /* a COSE_Encrypt0 is not a COSE_Encrypt, nor a Sign1 */
    CHECK_ERR(hsmc_cose_decrypt(&C, V(msg, n), V(aad, 3), 0, out, sizeof out, &m, NULL),
              HSMC_ERR_FORMAT);
    CHECK_ERR(hsmc_cose_verify1(&C, V(msg, n), NONE, NONE, 0, NULL), HSMC_ERR_FORMAT);
    /* trailing bytes */
    memcpy(bad, msg, n);
    bad[n] = 0x00;
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(bad, n + 1), V(aad, 3), 0, out, sizeof out, &m, NULL),
              HSMC_ERR_FORMAT);
    /* arguments */
    CHECK_ERR(hsmc_cose_encrypt0(NULL, &K_AES256, NONE, V(pt, 1), msg, sizeof msg, &n),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cose_encrypt0(&C, NULL, NONE, V(pt, 1), msg, sizeof msg, &n), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cose_encrypt0(&C, &K_AES256, V(NULL, 3), V(pt, 1), msg, sizeof msg, &n),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cose_encrypt0(&C, &K_P256, NONE, V(pt, 1), msg, sizeof msg, &n), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cose_encrypt0(&C, &K_KEK, NONE, V(pt, 1), msg, sizeof msg, &n),
              HSMC_ERR_KEY_USAGE);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(NULL, 0), NONE, 0, out, sizeof out, &m, NULL),
              HSMC_ERR_ARG);
    /* external AAD bounded by the scratch */
    {
        static uint8_t big[HSMC_COSE_SCRATCH_LEN];
        CHECK_ERR(hsmc_cose_encrypt0(&C, &K_AES256, V(big, sizeof big), V(pt, 1), msg, sizeof msg,
                                     &n),
                  HSMC_ERR_LIMIT);
        CHECK_ERR(hsmc_cose_encrypt0(&C, &K_AES256, V(big, HSMC_COSE_SCRATCH_LEN - 32), V(pt, 1),
                                     msg, sizeof msg, &n),
                  HSMC_OK);
        CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg, n), V(big, HSMC_COSE_SCRATCH_LEN - 32), 0, out,
                                     sizeof out, &m, NULL),
                  HSMC_OK);
    }
}

/*
 * Every single-byte change (two flips per byte) and every truncation of a
 * message is refused by `open`, and the output buffer holds no plaintext.
 */
typedef hsmc_err_t (*open_fn)(const uint8_t *msg, size_t n, uint8_t *out, size_t cap,
                              size_t *len);

/* Output after a refusal: untouched (0x5a) or wiped, never plaintext. */
static int no_leak(const uint8_t *out, size_t n)
{
    size_t i, z = 0, u = 0;
    for (i = 0; i < n; i++) {
        z += out[i] == 0;
        u += out[i] == 0x5a;
    }
    return z == n || u == n;
}

static int check_leaks; /* streams hand out earlier genuine chunks: not checked */

static size_t tamper_all(const char *what, const uint8_t *msg, size_t n, open_fn open)
{
    static const uint8_t flips[2] = {0x01, 0xff};
    uint8_t *bad = malloc(n ? n : 1), *out = malloc(n + 64);
    size_t i, f, len, refused = 0;
    hsmc_err_t err;

    if (bad == NULL || out == NULL)
        exit(2);
    for (i = 0; i < n; i++) {
        for (f = 0; f < 2; f++) {
            memcpy(bad, msg, n);
            bad[i] ^= flips[f];
            memset(out, 0x5a, n + 64);
            err = open(bad, n, out, n + 64, &len);
            if (err == HSMC_OK) {
                fprintf(stderr, "FAIL %s: %s accepted with byte %lu ^ 0x%02x\n", hsmc_test_name,
                        what, (unsigned long)i, flips[f]);
                hsmc_test_cur_failed = 1;
            } else {
                refused++;
                if (check_leaks && !no_leak(out, n + 64)) {
                    fprintf(stderr, "FAIL %s: %s left output after %s\n", hsmc_test_name, what,
                            hsmc_err_name(err));
                    hsmc_test_cur_failed = 1;
                }
            }
        }
    }
    for (i = 0; i < n; i++) {
        memcpy(bad, msg, i);
        if (open(bad, i, out, n + 64, &len) == HSMC_OK) {
            fprintf(stderr, "FAIL %s: %s accepted cut to %lu bytes\n", hsmc_test_name, what,
                    (unsigned long)i);
            hsmc_test_cur_failed = 1;
        } else {
            refused++;
        }
    }
    free(bad);
    free(out);
    return refused;
}

static hsmc_err_t open0(const uint8_t *msg, size_t n, uint8_t *out, size_t cap, size_t *len)
{
    static const uint8_t aad[2] = {7, 7};
    return hsmc_cose_decrypt0(&C, V(msg, n), V(aad, 2), 0, out, cap, len, NULL);
}

static hsmc_err_t open_env(const uint8_t *msg, size_t n, uint8_t *out, size_t cap, size_t *len)
{
    static const uint8_t aad[2] = {7, 7};
    return hsmc_cose_decrypt(&C, V(msg, n), V(aad, 2), 0, out, cap, len, NULL);
}

static void test_encrypt0_tamper(void)
{
    static const uint8_t aad[2] = {7, 7};
    uint8_t pt[24], msg[128], out[128];
    size_t n, m, refused;

    hsmc_test_fill(pt, sizeof pt, 5);
    CHECK_ERR(hsmc_cose_encrypt0(&C, &K_AES128, V(aad, 2), V(pt, sizeof pt), msg, sizeof msg, &n),
              HSMC_OK);
    CHECK_ERR(open0(msg, n, out, sizeof out, &m), HSMC_OK);
    refused = tamper_all("COSE_Encrypt0", msg, n, open0);
    CHECK(refused == 3 * n);
    fprintf(stderr, "note %s: %lu-byte COSE_Encrypt0: %lu changed/cut copies refused\n",
            hsmc_test_name, (unsigned long)n, (unsigned long)refused);
}

/* ---- COSE_Encrypt ----------------------------------------------------------------- */

static void test_encrypt_round_trip(void)
{
    static const size_t lens[] = {0, 1, 33, 5000};
    hsmc_cose_recipient_t r[2];
    uint8_t aad[4] = {9, 8, 7, 6};
    uint8_t *pt = malloc(5000), *msg = malloc(6000), *out = malloc(6000);
    hsmc_cose_info_t info;
    size_t i, n, need, m;
    int v;

    REQUIRE(pt != NULL && msg != NULL && out != NULL);
    for (v = 0; v < 3; v++) {
        r[0].key = v == 1 ? &K_RSA : &K_KEK;
        r[0].alg = v == 1 ? HSMC_COSE_RSA_OAEP : HSMC_COSE_A256KW;
        r[1].key = &K_RSA;
        r[1].alg = HSMC_COSE_RSA_OAEP;
        for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            hsmc_test_fill(pt, lens[i], (unsigned)(i + 10 * (unsigned)v));
            CHECK_ERR(hsmc_cose_encrypt(&C, r, v == 2 ? 2 : 1, V(aad, 4), V(pt, lens[i]), NULL, 0,
                                        &need),
                      HSMC_OK);
            CHECK_ERR(hsmc_cose_encrypt(&C, r, v == 2 ? 2 : 1, V(aad, 4), V(pt, lens[i]), msg,
                                        6000, &n),
                      HSMC_OK);
            CHECK(n == need && msg[0] == 0xd8 && msg[1] == 0x60); /* tag 96 */
            CHECK(all_zero(C.cek, sizeof C.cek));
            CHECK_ERR(hsmc_cose_decrypt(&C, V(msg, n), V(aad, 4), 0, NULL, 0, &m, NULL), HSMC_OK);
            CHECK(m == lens[i]);
            CHECK_ERR(hsmc_cose_decrypt(&C, V(msg, n), V(aad, 4), 0, out, 6000, &m, &info),
                      HSMC_OK);
            CHECK(m == lens[i] && memcmp(out, pt, m) == 0);
            CHECK(info.alg == HSMC_COSE_A256GCM && info.recipient == 0);
            CHECK(info.key_alg == r[0].alg);
            CHECK(info.kid.len == r[0].key->priv.label_len &&
                  memcmp(info.kid.ptr, r[0].key->priv.label, info.kid.len) == 0);
            CHECK(all_zero(C.cek, sizeof C.cek));
            if (v == 2) { /* the second recipient works alone too */
                hsmc_cose_set_resolver(&C, skip_resolver, (void *)"kek-v0001");
                CHECK_ERR(hsmc_cose_decrypt(&C, V(msg, n), V(aad, 4), 0, out, 6000, &m, &info),
                          HSMC_OK);
                CHECK(m == lens[i] && memcmp(out, pt, m) == 0);
                CHECK(info.recipient == 1 && info.key_alg == HSMC_COSE_RSA_OAEP);
                hsmc_cose_set_resolver(&C, NULL, NULL);
            }
        }
    }
    free(pt);
    free(msg);
    free(out);
}

static void test_encrypt_errors(void)
{
    hsmc_cose_recipient_t r[2];
    uint8_t pt[50], msg[1024], out[1024], bad[1024];
    uint8_t aad[1] = {1};
    size_t n, m, refused;
    long at;

    hsmc_test_fill(pt, sizeof pt, 1);
    r[0].key = &K_KEK;
    r[0].alg = HSMC_COSE_A256KW;
    CHECK_ERR(hsmc_cose_encrypt(&C, r, 1, V(aad, 1), V(pt, sizeof pt), msg, sizeof msg, &n),
              HSMC_OK);
    CHECK_ERR(hsmc_cose_decrypt(&C, V(msg, n), NONE, 0, out, sizeof out, &m, NULL),
              HSMC_ERR_DECRYPT);
    CHECK(all_zero(out, sizeof out));
    /* wrong key: another KEK unwraps nothing */
    hsmc_cose_set_resolver(&C, hsmc_cose_resolve_fixed, &K_KEK2);
    CHECK_ERR(hsmc_cose_decrypt(&C, V(msg, n), V(aad, 1), 0, out, sizeof out, &m, NULL),
              HSMC_ERR_DECRYPT);
    hsmc_cose_set_resolver(&C, hsmc_cose_resolve_fixed, &K_RSA);
    CHECK_ERR(hsmc_cose_decrypt(&C, V(msg, n), V(aad, 1), 0, out, sizeof out, &m, NULL),
              HSMC_ERR_KEY_USAGE);
    hsmc_cose_set_resolver(&C, NULL, NULL);
    /* wrong kid */
    memcpy(bad, msg, n);
    at = find(bad, n, "kek-v0001", 9);
    REQUIRE(at > 0);
    bad[at] = 'K';
    CHECK_ERR(hsmc_cose_decrypt(&C, V(bad, n), V(aad, 1), 0, out, sizeof out, &m, NULL),
              HSMC_ERR_OBJECT_NOT_FOUND);
    CHECK(strstr(hsmc_detail(&H), "Kek-v0001") != NULL);
    /* RSA-OAEP-256: SoftHSM2 2.6 has OAEP with SHA-1 only */
    r[0].key = &K_RSA;
    r[0].alg = HSMC_COSE_RSA_OAEP_256;
    CHECK_ERR(hsmc_cose_encrypt(&C, r, 1, NONE, V(pt, sizeof pt), msg, sizeof msg, &n),
              HSMC_ERR_UNSUPPORTED);
    CHECK(all_zero(C.cek, sizeof C.cek));
    /* algs that do not fit the key, unknown algs, no recipients */
    r[0].key = &K_KEK;
    r[0].alg = HSMC_COSE_RSA_OAEP;
    CHECK_ERR(hsmc_cose_encrypt(&C, r, 1, NONE, V(pt, 1), msg, sizeof msg, &n), HSMC_ERR_ARG);
    r[0].alg = HSMC_COSE_A128KW;
    CHECK_ERR(hsmc_cose_encrypt(&C, r, 1, NONE, V(pt, 1), msg, sizeof msg, &n), HSMC_ERR_ARG);
    r[0].alg = HSMC_COSE_A256GCM;
    CHECK_ERR(hsmc_cose_encrypt(&C, r, 1, NONE, V(pt, 1), msg, sizeof msg, &n), HSMC_ERR_ARG);
    r[0].key = &K_AES256; /* an AES key without CKA_WRAP */
    r[0].alg = HSMC_COSE_A256KW;
    CHECK_ERR(hsmc_cose_encrypt(&C, r, 1, NONE, V(pt, 1), msg, sizeof msg, &n),
              HSMC_ERR_KEY_USAGE);
    CHECK_ERR(hsmc_cose_encrypt(&C, r, 0, NONE, V(pt, 1), msg, sizeof msg, &n), HSMC_ERR_ARG);
    /* every change and cut, one A256KW recipient and one RSA-OAEP recipient */
    r[0].key = &K_KEK;
    r[0].alg = HSMC_COSE_A256KW;
    {
        static const uint8_t aad7[2] = {7, 7};
        CHECK_ERR(hsmc_cose_encrypt(&C, r, 1, V(aad7, 2), V(pt, 20), msg, sizeof msg, &n),
                  HSMC_OK);
        refused = tamper_all("COSE_Encrypt/A256KW", msg, n, open_env);
        CHECK(refused == 3 * n);
        r[0].key = &K_RSA;
        r[0].alg = HSMC_COSE_RSA_OAEP;
        CHECK_ERR(hsmc_cose_encrypt(&C, r, 1, V(aad7, 2), V(pt, 20), msg, sizeof msg, &n),
                  HSMC_OK);
        refused += tamper_all("COSE_Encrypt/RSA-OAEP", msg, n, open_env);
        fprintf(stderr, "note %s: changed/cut COSE_Encrypt copies refused: %lu\n",
                hsmc_test_name, (unsigned long)refused);
    }
}

/* ---- COSE_Sign1 ------------------------------------------------------------------- */

typedef struct {
    const hsmc_key_t *key;
    int alg;
    const char *name;
} sig_case_t;

static const sig_case_t *sig_cases(size_t *n)
{
    static sig_case_t cs[8];
    size_t k = 0;
    cs[k].key = &K_P256, cs[k].alg = HSMC_COSE_ES256, cs[k++].name = "ES256";
    cs[k].key = &K_P384, cs[k].alg = HSMC_COSE_ES384, cs[k++].name = "ES384";
    cs[k].key = &K_RSASIG, cs[k].alg = HSMC_COSE_PS256, cs[k++].name = "PS256";
    cs[k].key = &K_RSASIG, cs[k].alg = HSMC_COSE_RS256, cs[k++].name = "RS256";
    cs[k].key = &K_RSASIG, cs[k].alg = HSMC_COSE_PS384, cs[k++].name = "PS384";
    cs[k].key = &K_P256, cs[k].alg = 0, cs[k++].name = "default(P-256)";
    if (have_ed)
        cs[k].key = &K_ED, cs[k].alg = HSMC_COSE_EDDSA, cs[k++].name = "EdDSA";
    *n = k;
    return cs;
}

static const sig_case_t *cur_sig;
static uint8_t spki_buf[1024];
static size_t spki_len;

/* Verification in the token: the kid picks the key, so every byte counts. */
static hsmc_err_t open_sig(const uint8_t *msg, size_t n, uint8_t *out, size_t cap, size_t *len)
{
    static const uint8_t aad[2] = {7, 7};
    (void)out;
    (void)cap;
    *len = 0;
    return hsmc_cose_verify1(&C, V(msg, n), V(aad, 2), NONE, 0, NULL);
}

/*
 * Verification with a given SPKI ignores the kid, and the unprotected
 * bucket is not signed (RFC 9052 §4.4): a change there may pass, a change
 * anywhere else must not. @return copies refused.
 */
static size_t tamper_spki(const uint8_t *msg, size_t n)
{
    static const uint8_t aad[2] = {7, 7};
    hsmc_cbor_dec_t d;
    const uint8_t *p, *u;
    size_t pl, ul, i, lo, hi, refused = 0;
    uint64_t tag;
    uint8_t *bad = malloc(n);

    if (bad == NULL)
        exit(2);
    hsmc_cbor_dec_init(&d, msg, n);
    if (hsmc_cbor_get_tag(&d, &tag) != HSMC_OK || hsmc_cbor_get_array(&d, &pl) != HSMC_OK ||
        hsmc_cbor_get_bstr(&d, &p, &pl) != HSMC_OK || hsmc_cbor_get_raw(&d, &u, &ul) != HSMC_OK)
        exit(2);
    lo = (size_t)(u - msg);
    hi = lo + ul;
    for (i = 0; i < n; i++) {
        memcpy(bad, msg, n);
        bad[i] ^= 0x01;
        if (hsmc_cose_verify1_spki(&C, V(bad, n), V(spki_buf, spki_len), V(aad, 2), NONE, 0,
                                   NULL) != HSMC_OK)
            refused++;
        else if (i < lo || i >= hi) {
            fprintf(stderr, "FAIL %s: SPKI check accepted byte %lu ^ 1 outside the unprotected "
                            "bucket\n",
                    hsmc_test_name, (unsigned long)i);
            hsmc_test_cur_failed = 1;
        }
    }
    for (i = 0; i < n; i++)
        refused += hsmc_cose_verify1_spki(&C, V(msg, i), V(spki_buf, spki_len), V(aad, 2), NONE,
                                          0, NULL) != HSMC_OK;
    free(bad);
    return refused;
}

static void test_sign1(void)
{
    static const uint8_t aad[2] = {7, 7};
    uint8_t payload[300], msg[1024], bad[1024];
    hsmc_cose_info_t info;
    const sig_case_t *cs;
    size_t ncs, i, n, need, refused = 0;
    int det;

    hsmc_test_fill(payload, sizeof payload, 2);
    cs = sig_cases(&ncs);
    for (i = 0; i < ncs; i++) {
        cur_sig = &cs[i];
        REQUIRE(hsmc_key_export_pub(&H, cs[i].key, spki_buf, sizeof spki_buf, &spki_len) ==
                HSMC_OK);
        for (det = 0; det < 2; det++) {
            unsigned fl = det ? HSMC_COSE_DETACHED : 0;
            hsmc_view_t dp = det ? V(payload, sizeof payload) : NONE;
            CHECK_ERR(hsmc_cose_sign1(&C, cs[i].key, cs[i].alg, V(aad, 2),
                                      V(payload, sizeof payload), fl, NULL, 0, &need),
                      HSMC_OK);
            CHECK_ERR(hsmc_cose_sign1(&C, cs[i].key, cs[i].alg, V(aad, 2),
                                      V(payload, sizeof payload), fl, msg, sizeof msg, &n),
                      HSMC_OK);
            CHECK(n == need && msg[0] == 0xd2);
            memset(&info, 0, sizeof info);
            CHECK_ERR(hsmc_cose_verify1(&C, V(msg, n), V(aad, 2), dp, 0, &info), HSMC_OK);
            CHECK(info.payload.len == sizeof payload &&
                  memcmp(info.payload.ptr, payload, sizeof payload) == 0);
            CHECK(info.kid.len == cs[i].key->priv.label_len);
            if (cs[i].alg != 0)
                CHECK(info.alg == cs[i].alg);
            else
                CHECK(info.alg == HSMC_COSE_ES256);
            if (cs[i].alg != HSMC_COSE_EDDSA) {
                CHECK_ERR(hsmc_cose_verify1_spki(&C, V(msg, n), V(spki_buf, spki_len), V(aad, 2),
                                                 dp, 0, &info),
                          HSMC_OK);
                CHECK_ERR(hsmc_cose_verify1_spki(&C, V(msg, n), V(spki_buf, spki_len), NONE, dp,
                                                 0, NULL),
                          HSMC_ERR_SIGNATURE);
            } else {
                CHECK_ERR(hsmc_cose_verify1_spki(&C, V(msg, n), V(spki_buf, spki_len), V(aad, 2),
                                                 dp, 0, NULL),
                          HSMC_ERR_UNSUPPORTED);
            }
            /* wrong AAD, wrong payload, payload given twice or missing */
            CHECK_ERR(hsmc_cose_verify1(&C, V(msg, n), NONE, dp, 0, NULL), HSMC_ERR_SIGNATURE);
            if (det) {
                CHECK_ERR(hsmc_cose_verify1(&C, V(msg, n), V(aad, 2),
                                            V(payload, sizeof payload - 1), 0, NULL),
                          HSMC_ERR_SIGNATURE);
                CHECK_ERR(hsmc_cose_verify1(&C, V(msg, n), V(aad, 2), NONE, 0, NULL),
                          HSMC_ERR_ARG);
            } else {
                CHECK_ERR(hsmc_cose_verify1(&C, V(msg, n), V(aad, 2), V(payload, 1), 0, NULL),
                          HSMC_ERR_ARG);
            }
            /* wrong key: the resolver answers with another key of the same kind */
            hsmc_cose_set_resolver(&C, hsmc_cose_resolve_fixed,
                                   (void *)(cs[i].key == &K_P256 ? &K_PY_P256
                                            : cs[i].key == &K_RSASIG ? &K_PY_RSA
                                                                     : cs[i].key));
            if (cs[i].key == &K_P256 || cs[i].key == &K_RSASIG)
                CHECK_ERR(hsmc_cose_verify1(&C, V(msg, n), V(aad, 2), dp, 0, NULL),
                          HSMC_ERR_SIGNATURE);
            hsmc_cose_set_resolver(&C, NULL, NULL);
            /* every change and cut of the attached messages */
            if (!det && (cs[i].alg == HSMC_COSE_ES256 || cs[i].alg == HSMC_COSE_PS256 ||
                         cs[i].alg == HSMC_COSE_EDDSA))
            {
                refused += tamper_all(cs[i].name, msg, n, open_sig);
                if (cs[i].alg != HSMC_COSE_EDDSA)
                    refused += tamper_spki(msg, n);
            }
        }
    }
    fprintf(stderr, "note %s: changed/cut COSE_Sign1 copies refused: %lu\n", hsmc_test_name,
            (unsigned long)refused);
    /* a key that cannot sign, an alg COSE has but hsmc does not, a bad spki */
    CHECK_ERR(hsmc_cose_sign1(&C, &K_AES256, 0, NONE, V(payload, 1), 0, msg, sizeof msg, &n),
              HSMC_ERR_UNSUPPORTED);
    CHECK_ERR(hsmc_cose_sign1(&C, &K_P256, -47, NONE, V(payload, 1), 0, msg, sizeof msg, &n),
              HSMC_ERR_UNSUPPORTED);
    CHECK_ERR(hsmc_cose_sign1(&C, &K_P256, HSMC_COSE_ES256, NONE, V(payload, 1), 0, msg, 10, &n),
              HSMC_ERR_BUFFER);
    CHECK_ERR(hsmc_cose_sign1(&C, &K_P256, HSMC_COSE_ES256, NONE, V(payload, 1), 0, msg,
                              sizeof msg, &n),
              HSMC_OK);
    memcpy(bad, spki_buf, 10);
    CHECK_ERR(hsmc_cose_verify1_spki(&C, V(msg, n), V(bad, 10), NONE, NONE, 0, NULL),
              HSMC_ERR_FORMAT);
    REQUIRE(hsmc_key_export_pub(&H, &K_RSASIG, spki_buf, sizeof spki_buf, &spki_len) == HSMC_OK);
    CHECK_ERR(hsmc_cose_verify1_spki(&C, V(msg, n), V(spki_buf, spki_len), NONE, NONE, 0, NULL),
              HSMC_ERR_SIGNATURE);
    /* without a token: an unopened hsmc_t takes the detail */
    {
        hsmc_t h0;
        hsmc_cose_t c0;
        REQUIRE(hsmc_key_export_pub(&H, &K_P256, spki_buf, sizeof spki_buf, &spki_len) ==
                HSMC_OK);
        hsmc_init(&h0);
        hsmc_cose_init(&c0, &h0);
        CHECK_ERR(hsmc_cose_verify1_spki(&c0, V(msg, n), V(spki_buf, spki_len), NONE, NONE, 0,
                                         NULL),
                  HSMC_OK);
        CHECK_ERR(hsmc_cose_verify1_spki(&c0, V(msg, n), V(spki_buf, spki_len), V(payload, 1),
                                         NONE, 0, NULL),
                  HSMC_ERR_SIGNATURE);
        CHECK(strstr(hsmc_detail(&h0), "does not verify") != NULL);
        hsmc_cose_free(&c0);
        hsmc_cose_init(&c0, NULL);
        CHECK_ERR(hsmc_cose_verify1_spki(&c0, V(msg, n), V(spki_buf, spki_len), NONE, NONE, 0,
                                         NULL),
                  HSMC_OK);
        hsmc_cose_free(&c0);
    }
}

/* ---- Stream ------------------------------------------------------------------------- */

static const char *g_seal_ct; /* content type of the streams seal_stream makes, or NULL */

/* Seal data[0..len) into a malloc'ed sequence of chunk items. */

static uint8_t *seal_stream(const hsmc_cose_recipient_t *r, size_t nr, size_t chunk,
                            hsmc_view_t aad, const uint8_t *data, size_t len, size_t *total)
{
    hsmc_cose_stream_t s;
    size_t cap = 4096 + (len / chunk + 1) * (chunk + 64), off = 0, n = 0, i;
    uint8_t *out = malloc(cap);
    hsmc_err_t err;

    if (out == NULL)
        exit(2);
    hsmc_cose_stream_init(&s, &H);
    err = g_seal_ct != NULL ? hsmc_cose_set_content_type(&s.cose, g_seal_ct) : HSMC_OK;
    if (err == HSMC_OK)
        err = hsmc_cose_stream_seal_init(&s, r, nr, chunk, aad, out, cap, &n);
    off = n;
    for (i = 0; err == HSMC_OK && len - i >= chunk; i += chunk) {
        err = hsmc_cose_stream_seal_chunk(&s, data + i, chunk, out + off, cap - off, &n);
        off += n;
    }
    if (err == HSMC_OK) {
        err = hsmc_cose_stream_seal_finish(&s, data + i, len - i, out + off, cap - off, &n);
        off += n;
    }
    hsmc_cose_stream_free(&s);
    if (err != HSMC_OK) {
        fprintf(stderr, "seal_stream: %s: %s\n", hsmc_err_name(err), hsmc_detail(&H));
        free(out);
        return NULL;
    }
    *total = off;
    return out;
}

/*
 * Open a stream held in memory as a reader of a file would: the input is
 * shown through a window of item_max bytes; plaintext goes to out.
 * @return the first error (of open_init, open_chunk or open_finish).
 */
static hsmc_cose_resolve_fn g_res;
static void *g_res_user;

static hsmc_err_t open_stream(const uint8_t *data, size_t len, hsmc_view_t aad, uint8_t *out,
                              size_t cap, size_t *out_len)
{
    hsmc_cose_stream_t s;
    size_t off = 0, used = 0, win, n, o = 0;
    int last = 0;
    hsmc_err_t err;

    hsmc_cose_stream_init(&s, &H);
    if (g_res != NULL)
        hsmc_cose_set_resolver(&s.cose, g_res, g_res_user);
    err = hsmc_cose_stream_open_init(&s, data, len, &used, aad, 1u << 20, 0, NULL);
    off = used;
    while (err == HSMC_OK && off < len) {
        win = hsmc_cose_stream_item_max(&s);
        if (win > len - off)
            win = len - off;
        n = 0;
        err = hsmc_cose_stream_open_chunk(&s, data + off, win, &used, out + o, cap - o, &n, &last);
        if (err == HSMC_OK) {
            off += used;
            o += n;
        }
    }
    if (err == HSMC_OK)
        err = hsmc_cose_stream_open_finish(&s);
    hsmc_cose_stream_free(&s);
    *out_len = o;
    return err;
}

static void test_stream_round_trip(void)
{
    static const size_t sizes[] = {0, 1, 63, 64, 65, 128, 129, 1000};
    hsmc_cose_recipient_t r[2];
    uint8_t data[1000], out[1000 + 64], aad[3] = {'a', 'a', 'd'};
    uint8_t *st;
    size_t i, n, m, chunks;

    r[0].key = &K_KEK;
    r[0].alg = HSMC_COSE_A256KW;
    r[1].key = &K_RSA;
    r[1].alg = HSMC_COSE_RSA_OAEP;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        hsmc_test_fill(data, sizes[i], (unsigned)i);
        st = seal_stream(r, i % 2 ? 2 : 1, 64, V(aad, 3), data, sizes[i], &n);
        REQUIRE(st != NULL);
        CHECK_ERR(open_stream(st, n, V(aad, 3), out, sizeof out, &m), HSMC_OK);
        CHECK(m == sizes[i] && memcmp(out, data, m) == 0);
        /* one chunk per full 64 bytes, and one short last chunk */
        chunks = sizes[i] / 64 + 1;
        (void)chunks;
        free(st);
    }
    /* a single byte chunk size, and the other recipient alone */
    hsmc_test_fill(data, 5, 1);
    st = seal_stream(r, 2, 1, NONE, data, 5, &n);
    REQUIRE(st != NULL);
    g_res = skip_resolver;
    g_res_user = (void *)"kek-v0001";
    CHECK_ERR(open_stream(st, n, NONE, out, sizeof out, &m), HSMC_OK);
    g_res = NULL;
    CHECK(m == 5 && memcmp(out, data, 5) == 0);
    free(st);
}

/* A few MiB through a file with fixed small buffers; Python checks it too. */
static void test_stream_large(void)
{
    enum { CHUNK = 4096, TOTAL = 3 * 1024 * 1024 + 1234 };
    static uint8_t item[CHUNK + 64], win[CHUNK + 64], pt[CHUNK];
    hsmc_cose_recipient_t r;
    hsmc_cose_stream_t s;
    uint8_t hdr[1024], aad[2] = {0xbe, 0xef}, dig[32], dig2[32];
    uint8_t *all = malloc(TOTAL), *back = malloc(TOTAL);
    char line[256], *dh;
    size_t off, n, have, used, o = 0, chunks = 0;
    int last = 0;
    FILE *f;
    hsmc_err_t err;

    REQUIRE(all != NULL && back != NULL);
    hsmc_test_fill(all, TOTAL, 77);
    r.key = &K_KEK;
    r.alg = HSMC_COSE_A256KW;
    hsmc_cose_stream_init(&s, &H);
    f = fopen(hsmc_test_path("big.stream"), "wb");
    REQUIRE(f != NULL);
    CHECK_ERR(hsmc_cose_stream_seal_init(&s, &r, 1, CHUNK, V(aad, 2), hdr, sizeof hdr, &n),
              HSMC_OK);
    CHECK(hsmc_cose_stream_item_max(&s) <= sizeof item);
    fwrite(hdr, 1, n, f);
    for (off = 0; TOTAL - off >= CHUNK; off += CHUNK) {
        err = hsmc_cose_stream_seal_chunk(&s, all + off, CHUNK, item, sizeof item, &n);
        if (err != HSMC_OK)
            break;
        fwrite(item, 1, n, f);
    }
    CHECK_ERR(hsmc_cose_stream_seal_finish(&s, all + off, TOTAL - off, item, sizeof item, &n),
              HSMC_OK);
    fwrite(item, 1, n, f);
    fclose(f);
    hsmc_cose_stream_free(&s);

    /* read back through a window of item_max bytes */
    f = fopen(hsmc_test_path("big.stream"), "rb");
    REQUIRE(f != NULL);
    have = fread(win, 1, sizeof win, f);
    hsmc_cose_stream_init(&s, &H);
    err = hsmc_cose_stream_open_init(&s, win, have, &used, V(aad, 2), CHUNK, 0, NULL);
    CHECK_ERR(err, HSMC_OK);
    while (err == HSMC_OK) {
        memmove(win, win + used, have - used);
        have -= used;
        have += fread(win + have, 1, sizeof win - have, f);
        if (have == 0)
            break;
        err = hsmc_cose_stream_open_chunk(&s, win, have, &used, pt, sizeof pt, &n, &last);
        if (err == HSMC_OK && o + n <= TOTAL) {
            memcpy(back + o, pt, n);
            o += n;
            chunks++;
        }
    }
    fclose(f);
    CHECK_ERR(err, HSMC_OK);
    CHECK_ERR(hsmc_cose_stream_open_finish(&s), HSMC_OK);
    hsmc_cose_stream_free(&s);
    CHECK(last == 1 && o == TOTAL && memcmp(back, all, TOTAL) == 0);
    CHECK(chunks == TOTAL / CHUNK + 1);
    fprintf(stderr, "note %s: %u bytes in %lu chunks through %u-byte buffers; stream state %u "
                    "bytes\n",
            hsmc_test_name, (unsigned)TOTAL, (unsigned long)chunks, (unsigned)sizeof win,
            (unsigned)sizeof s);
    /* the independent reader */
    CHECK_ERR(hsmc_hash(HSMC_HASH_SHA256, all, TOTAL, dig), HSMC_OK);
    dh = hsmc_test_hexs(KEK_BYTES, 32);
    CHECK(py(line, sizeof line, "stream %s %s beef kek-v0001 %s", dh, hsmc_test_path("big.stream"),
             hsmc_test_path("big.out")) == 0);
    CHECK(hsmc_test_unhex(line, dig2, sizeof dig2) == 32 && memcmp(dig, dig2, 32) == 0);
    free(dh);
    free(all);
    free(back);
}

/* Offsets of the items of a sealed stream (header first). */
static size_t stream_items(const uint8_t *st, size_t n, size_t *offs, size_t max)
{
    hsmc_cbor_dec_t d;
    const uint8_t *p;
    size_t k = 0, len;
    hsmc_cbor_dec_init(&d, st, n);
    while (k < max && !hsmc_cbor_dec_at_end(&d)) {
        if (hsmc_cbor_get_raw(&d, &p, &len) != HSMC_OK)
            break;
        offs[k++] = (size_t)(p - st);
    }
    offs[k] = n;
    return k;
}

/* Build a stream from items of a (and b), in the order given by idx
 * (values >= 100 take item idx-100 of b). */
static size_t splice(uint8_t *out, const uint8_t *a, const size_t *ao, const uint8_t *b,
                     const size_t *bo, const int *idx, size_t nidx)
{
    size_t i, o = 0, len;
    for (i = 0; i < nidx; i++) {
        const uint8_t *src = idx[i] >= 100 ? b : a;
        const size_t *offs = idx[i] >= 100 ? bo : ao;
        int k = idx[i] >= 100 ? idx[i] - 100 : idx[i];
        len = offs[k + 1] - offs[k];
        memcpy(out + o, src + offs[k], len);
        o += len;
    }
    return o;
}

static hsmc_err_t open_st(const uint8_t *msg, size_t n, uint8_t *out, size_t cap, size_t *len)
{
    static const uint8_t aad[2] = {7, 7};
    return open_stream(msg, n, V(aad, 2), out, cap, len);
}

static void test_stream_attacks(void)
{
    static const uint8_t aad[2] = {7, 7};
    hsmc_cose_recipient_t r;
    uint8_t data[200], out[400], buf[2048];
    uint8_t *a, *b;
    size_t na, nb, ao[16], bo[16], ka, kb, n, m, refused;
    hsmc_cose_stream_t s;
    size_t used;
    long at;

    r.key = &K_KEK;
    r.alg = HSMC_COSE_A256KW;
    hsmc_test_fill(data, sizeof data, 4);
    a = seal_stream(&r, 1, 50, V(aad, 2), data, 180, &na); /* 3 full + 30 */
    b = seal_stream(&r, 1, 50, V(aad, 2), data, 180, &nb);
    REQUIRE(a != NULL && b != NULL);
    ka = stream_items(a, na, ao, 15);
    kb = stream_items(b, nb, bo, 15);
    REQUIRE(ka == 5 && kb == 5);
    CHECK_ERR(open_st(a, na, out, sizeof out, &m), HSMC_OK);
    CHECK(m == 180 && memcmp(out, data, 180) == 0);
    {
        /* Streams made of a's items (and b's: 100 + index), and the answer. */
        static const struct {
            int order[6];
            size_t n;
            hsmc_err_t err;
            const char *detail; /* in the context detail, or NULL */
            long m;             /* plaintext bytes out, or -1: not checked */
        } cut[] = {
            {{0, 1, 2, 3}, 4, HSMC_ERR_TRUNCATED, NULL, -1}, /* the last chunk dropped */
            {{0}, 1, HSMC_ERR_TRUNCATED, NULL, -1},          /* every chunk dropped */
            {{0, 2, 1, 3, 4}, 5, HSMC_ERR_SEQUENCE, "chunk 1 came where chunk 0 was expected", -1},
            {{0, 1, 1, 2, 3, 4}, 6, HSMC_ERR_SEQUENCE, NULL, -1}, /* a chunk twice */
            {{0, 1, 3, 4}, 4, HSMC_ERR_SEQUENCE, NULL, -1},       /* a chunk missing */
            {{0, 1, 2, 3, 4, 4}, 6, HSMC_ERR_SEQUENCE, "after the last chunk", -1},
            {{0, 1, 2, 3, 4, 104}, 6, HSMC_ERR_SEQUENCE, NULL, -1}, /* b's last appended */
            /* chunk 0 was genuine; nothing after the splice */
            {{0, 1, 102, 3, 4}, 5, HSMC_ERR_SEQUENCE, "another stream", 50},
            {{100, 1, 2, 3, 4}, 5, HSMC_ERR_SEQUENCE, NULL, -1}, /* b's header */
            {{0, 1, 2, 3, 104}, 5, HSMC_ERR_SEQUENCE, NULL, -1}, /* b's last chunk */
        };
        size_t i;
        for (i = 0; i < sizeof cut / sizeof cut[0]; i++) {
            n = splice(buf, a, ao, b, bo, cut[i].order, cut[i].n);
            CHECK_ERR(open_st(buf, n, out, sizeof out, &m), cut[i].err);
            if (cut[i].detail != NULL)
                CHECK(strstr(hsmc_detail(&H), cut[i].detail) != NULL);
            if (cut[i].m >= 0)
                CHECK(m == (size_t)cut[i].m);
        }
        /* appended bytes that are no chunk at all */
        memcpy(buf, a, na);
        buf[na] = 0x00;
        CHECK_ERR(open_st(buf, na + 1, out, sizeof out, &m), HSMC_ERR_SEQUENCE);
    }
    /* a spliced chunk relabelled with this stream's id and index: only the
     * key can tell, so it does not authenticate; no plaintext comes out */
    {
        static const int spliced[] = {0, 1, 102, 3, 4};
        n = splice(buf, a, ao, b, bo, spliced, 5);
        memcpy(buf + ao[2] + 2, a + ao[2] + 2, 8); /* a's stream id over b's (0x83 0x48 id) */
        CHECK_ERR(open_st(buf, n, out, sizeof out, &m), HSMC_ERR_DECRYPT);
        CHECK(m == 50 && all_zero(out + 50, 50));
    }
    /* wrong AAD; wrong kid in the header */
    CHECK_ERR(open_stream(a, na, NONE, out, sizeof out, &m), HSMC_ERR_DECRYPT);
    CHECK(m == 0);
    memcpy(buf, a, na);
    at = find(buf, na, "kek-v0001", 9);
    REQUIRE(at > 0);
    buf[at + 8] = '9';
    CHECK_ERR(open_st(buf, na, out, sizeof out, &m), HSMC_ERR_OBJECT_NOT_FOUND);
    CHECK(strstr(hsmc_detail(&H), "kek-v0009") != NULL);
    /* a reader whose buffers take less than the chunk size */
    hsmc_cose_stream_init(&s, &H);
    CHECK_ERR(hsmc_cose_stream_open_init(&s, a, na, &used, V(aad, 2), 49, 0, NULL),
              HSMC_ERR_LIMIT);
    hsmc_cose_stream_free(&s);
    /* a failure is sticky; finish without the last chunk */
    hsmc_cose_stream_init(&s, &H);
    CHECK_ERR(hsmc_cose_stream_open_init(&s, a, na, &used, V(aad, 2), 50, 0, NULL), HSMC_OK);
    CHECK(used == ao[1]);
    CHECK_ERR(hsmc_cose_stream_open_chunk(&s, a + ao[2], na - ao[2], &used, out, sizeof out, &m,
                                          NULL),
              HSMC_ERR_SEQUENCE);
    CHECK_ERR(hsmc_cose_stream_open_chunk(&s, a + ao[1], na - ao[1], &used, out, sizeof out, &m,
                                          NULL),
              HSMC_ERR_SEQUENCE);
    CHECK_ERR(hsmc_cose_stream_open_finish(&s), HSMC_ERR_SEQUENCE);
    hsmc_cose_stream_free(&s);
    hsmc_cose_stream_init(&s, &H);
    CHECK_ERR(hsmc_cose_stream_open_init(&s, a, na, &used, V(aad, 2), 50, 0, NULL), HSMC_OK);
    CHECK_ERR(hsmc_cose_stream_open_chunk(&s, a + ao[1], ao[2] - ao[1] - 1, &used, out,
                                          sizeof out, &m, NULL),
              HSMC_ERR_TRUNCATED);
    hsmc_cose_stream_free(&s);
    /* API misuse */
    hsmc_cose_stream_init(&s, &H);
    CHECK_ERR(hsmc_cose_stream_seal_chunk(&s, data, 50, buf, sizeof buf, &n), HSMC_ERR_STATE);
    CHECK_ERR(hsmc_cose_stream_open_finish(&s), HSMC_ERR_STATE);
    CHECK_ERR(hsmc_cose_stream_seal_init(&s, &r, 1, 0, NONE, buf, sizeof buf, &n), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cose_stream_seal_init(&s, &r, 1, 50, NONE, NULL, 0, &n), HSMC_OK);
    CHECK_ERR(hsmc_cose_stream_seal_chunk(&s, data, 50, buf, sizeof buf, &m), HSMC_ERR_STATE);
    CHECK_ERR(hsmc_cose_stream_seal_init(&s, &r, 1, 50, NONE, buf, 10, &m), HSMC_ERR_BUFFER);
    CHECK(m == n);
    CHECK_ERR(hsmc_cose_stream_seal_init(&s, &r, 1, 50, NONE, buf, sizeof buf, &m), HSMC_OK);
    CHECK(m == n);
    CHECK_ERR(hsmc_cose_stream_seal_chunk(&s, data, 49, buf, sizeof buf, &n), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cose_stream_seal_finish(&s, data, 50, buf, sizeof buf, &n), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cose_stream_seal_chunk(&s, data, 50, buf, 20, &n), HSMC_ERR_BUFFER);
    CHECK_ERR(hsmc_cose_stream_seal_chunk(&s, data, 50, NULL, 0, &m), HSMC_OK);
    CHECK(m == n);
    CHECK_ERR(hsmc_cose_stream_seal_finish(&s, data, 3, buf, sizeof buf, &n), HSMC_OK);
    CHECK_ERR(hsmc_cose_stream_seal_finish(&s, data, 3, buf, sizeof buf, &n), HSMC_ERR_STATE);
    CHECK_ERR(hsmc_cose_stream_open_init(&s, a, na, &used, NONE, 50, 0, NULL), HSMC_ERR_STATE);
    hsmc_cose_stream_free(&s);
    /* a COSE_Encrypt is not a stream header, nor the reverse */
    CHECK_ERR(hsmc_cose_decrypt(&C, V(a, ao[1]), V(aad, 2), 0, out, sizeof out, &m, NULL),
              HSMC_ERR_FORMAT);
    CHECK(strstr(hsmc_detail(&H), "stream") != NULL);
    CHECK_ERR(hsmc_cose_encrypt(&C, &r, 1, NONE, V(data, 5), buf, sizeof buf, &n), HSMC_OK);
    hsmc_cose_stream_init(&s, &H);
    CHECK_ERR(hsmc_cose_stream_open_init(&s, buf, n, &used, NONE, 50, 0, NULL), HSMC_ERR_FORMAT);
    hsmc_cose_stream_free(&s);
    /* every change and cut of a small stream */
    check_leaks = 0;
    refused = tamper_all("stream", a, na, open_st);
    check_leaks = 1;
    CHECK(refused == 3 * na);
    fprintf(stderr, "note %s: %lu-byte stream: %lu changed/cut copies refused\n", hsmc_test_name,
            (unsigned long)na, (unsigned long)refused);
    free(a);
    free(b);
}

/* ---- Content type (label 3) ---------------------------------------------------------- */

static const char CT_TEXT[] = "text/plain; charset=utf-8";
static const char CT_JSON[] = "application/json";
static const char CT_BYTES[] = "application/octet-stream";
static const uint8_t CT_AAD[3] = {'c', 't', 'x'};

/* 1 when info reports exactly the text content type ct (NULL: none at all). */
static int has_ctype(const hsmc_cose_info_t *info, const char *ct)
{
    if (ct == NULL)
        return info->content_type.ptr == NULL && info->content_type.len == 0 &&
               info->content_format == -1;
    return info->content_type.len == strlen(ct) &&
           memcmp(info->content_type.ptr, ct, strlen(ct)) == 0 && info->content_format == -1;
}

static hsmc_err_t open_ct0(const uint8_t *msg, size_t n, uint8_t *out, size_t cap, size_t *len)
{
    return hsmc_cose_decrypt0(&C, V(msg, n), V(CT_AAD, 3), 0, out, cap, len, NULL);
}

static hsmc_err_t open_ct_env(const uint8_t *msg, size_t n, uint8_t *out, size_t cap,
                              size_t *len)
{
    return hsmc_cose_decrypt(&C, V(msg, n), V(CT_AAD, 3), 0, out, cap, len, NULL);
}

/* Every byte of the content type at msg[at..at+len) changed (two ways) is
 * refused by open; a change that keeps it valid text fails authentication. */
static void flip_ctype(const char *what, const uint8_t *msg, size_t n, long at, size_t len,
                       open_fn open, hsmc_err_t want_text)
{
    uint8_t *bad = malloc(n), *out = malloc(n + 64);
    size_t i, m;
    hsmc_err_t err;

    if (bad == NULL || out == NULL)
        exit(2);
    for (i = 0; i < 2 * len; i++) {
        memcpy(bad, msg, n);
        bad[at + (long)(i / 2)] ^= i % 2 ? 0x80 : 0x20; /* other text, or not UTF-8 */
        memset(out, 0x5a, n + 64);
        err = open(bad, n, out, n + 64, &m);
        if (err == HSMC_OK || (i % 2 == 0 && err != want_text) ||
            (i % 2 == 1 && err != HSMC_ERR_FORMAT) || !no_leak(out, n + 64)) {
            fprintf(stderr, "FAIL %s: %s with content type byte %lu changed: %s\n",
                    hsmc_test_name, what, (unsigned long)(i / 2), hsmc_err_name(err));
            hsmc_test_cur_failed = 1;
        }
    }
    free(bad);
    free(out);
}

static hsmc_err_t open_ct_st(const uint8_t *msg, size_t n, uint8_t *out, size_t cap, size_t *len)
{
    return open_stream(msg, n, V(CT_AAD, 3), out, cap, len);
}

/* The setter, and COSE_Encrypt0 with a content type. */
static void test_content_type_encrypt0(void)
{
    static uint8_t big[HSMC_COSE_SCRATCH_LEN];
    static const char ct40[] = "application/vnd.hsmc.example-forty-bytes";
    hsmc_cose_t c;
    hsmc_cose_info_t info;
    uint8_t pt[40], msg[1024], out[1024], bad[1024];
    char line[512], *kh = hsmc_test_hexs(AES256_BYTES, 32), *ah = hsmc_test_hexs(CT_AAD, 3), *ph,
                    *cth;
    size_t n, m, refused;

    hsmc_test_fill(pt, sizeof pt, 31);
    ph = hsmc_test_hexs(pt, sizeof pt);
    cth = hsmc_test_hexs((const uint8_t *)CT_TEXT, strlen(CT_TEXT));
    hsmc_cose_init(&c, &H);
    /* the setter: non-empty UTF-8 without control characters, else none */
    CHECK_ERR(hsmc_cose_set_content_type(NULL, CT_TEXT), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cose_set_content_type(&c, CT_JSON), HSMC_OK);
    CHECK(c.content_type == CT_JSON && c.content_type_len == strlen(CT_JSON));
    CHECK_ERR(hsmc_cose_set_content_type(&c, ""), HSMC_ERR_ARG);
    CHECK(c.content_type == NULL);
    CHECK_ERR(hsmc_cose_set_content_type(&c, "text/\xff"), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cose_set_content_type(&c, "text/\xed\xa0\x80"), HSMC_ERR_ARG); /* surrogate */
    CHECK_ERR(hsmc_cose_set_content_type(&c, "text/plain\n"), HSMC_ERR_ARG);
    CHECK(strstr(hsmc_detail(&H), "UTF-8") != NULL);
    CHECK(c.content_type == NULL);
    CHECK_ERR(hsmc_cose_set_content_type(&c, "text/plain; charset=\xc3\xa9"), HSMC_OK);
    CHECK_ERR(hsmc_cose_set_content_type(&c, NULL), HSMC_OK);
    CHECK(c.content_type == NULL && c.content_type_len == 0);

    /* protected {1: 3, 3: "text/plain; charset=utf-8"}: keys 01 then 03 */
    CHECK_ERR(hsmc_cose_set_content_type(&c, CT_TEXT), HSMC_OK);
    CHECK_ERR(hsmc_cose_encrypt0(&c, &K_AES256, V(CT_AAD, 3), V(pt, sizeof pt), NULL, 0, &m),
              HSMC_OK);
    CHECK_ERR(hsmc_cose_encrypt0(&c, &K_AES256, V(CT_AAD, 3), V(pt, sizeof pt), msg, sizeof msg,
                                 &n),
              HSMC_OK);
    CHECK(n == m);
    CHECK(memcmp(msg, "\xd0\x83\x58\x1f\xa2\x01\x03\x03\x78\x19", 10) == 0 &&
          memcmp(msg + 10, CT_TEXT, 25) == 0);
    memset(&info, 0xaa, sizeof info);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg, n), V(CT_AAD, 3), 0, NULL, 0, &m, &info), HSMC_OK);
    CHECK(has_ctype(&info, CT_TEXT)); /* the size pass reports it too */
    memset(&info, 0xaa, sizeof info);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg, n), V(CT_AAD, 3), 0, out, sizeof out, &m, &info),
              HSMC_OK);
    CHECK(m == sizeof pt && memcmp(out, pt, m) == 0);
    CHECK(has_ctype(&info, CT_TEXT));
    CHECK(info.content_type.ptr == msg + 10); /* a view into the message */
    hsmc_test_write_bin("ct0.cose", msg, n);
    CHECK(py(line, sizeof line, "dec0 %s %s %s e0-256 %s", kh, hsmc_test_path("ct0.cose"), ah,
             cth) == 0);
    CHECK(strcmp(line, ph) == 0);
    /* the checker insists on the label it was told, and on none when told none */
    py_quiet = 1;
    CHECK(py(line, sizeof line, "dec0 %s %s %s e0-256", kh, hsmc_test_path("ct0.cose"), ah) != 0);
    py_quiet = 0;
    /* authenticated: a changed content type does not open */
    flip_ctype("COSE_Encrypt0", msg, n, 10, 25, open_ct0, HSMC_ERR_DECRYPT);
    memcpy(bad, msg, n);
    bad[10] = 'T';
    memset(out, 0x5a, sizeof out);
    CHECK_ERR(open_ct0(bad, n, out, sizeof out, &m), HSMC_ERR_DECRYPT);
    CHECK(all_zero(out, sizeof out));
    /* label 3 as bytes (0x78 0x19 -> 0x58 0x19): the wrong type */
    bad[10] = 'T';
    memcpy(bad, msg, n);
    bad[8] = 0x58;
    CHECK_ERR(open_ct0(bad, n, out, sizeof out, &m), HSMC_ERR_FORMAT);
    CHECK(strstr(hsmc_detail(&H), "content type (3)") != NULL);
    refused = tamper_all("COSE_Encrypt0 with a content type", msg, n, open_ct0);
    CHECK(refused == 3 * n);
    /* none set again: the message is the one hsmc wrote before label 3 */
    CHECK_ERR(hsmc_cose_set_content_type(&c, NULL), HSMC_OK);
    CHECK_ERR(hsmc_cose_encrypt0(&c, &K_AES256, V(CT_AAD, 3), V(pt, sizeof pt), msg, sizeof msg,
                                 &n),
              HSMC_OK);
    CHECK(memcmp(msg, "\xd0\x83\x43\xa1\x01\x03", 6) == 0);
    memset(&info, 0xaa, sizeof info);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg, n), V(CT_AAD, 3), 0, out, sizeof out, &m, &info),
              HSMC_OK);
    CHECK(has_ctype(&info, NULL));
    /* the scratch bound covers external AAD plus content type */
    CHECK_ERR(hsmc_cose_set_content_type(&c, ct40), HSMC_OK);
    CHECK_ERR(hsmc_cose_encrypt0(&c, &K_AES256, V(big, HSMC_COSE_SCRATCH_LEN - 32 - 40),
                                 V(pt, 1), msg, sizeof msg, &n),
              HSMC_OK);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg, n), V(big, HSMC_COSE_SCRATCH_LEN - 32 - 40), 0, out,
                                 sizeof out, &m, &info),
              HSMC_OK);
    CHECK(has_ctype(&info, ct40));
    CHECK_ERR(hsmc_cose_encrypt0(&c, &K_AES256, V(big, HSMC_COSE_SCRATCH_LEN - 32), V(pt, 1),
                                 msg, sizeof msg, &n),
              HSMC_ERR_LIMIT);
    CHECK(strstr(hsmc_detail(&H), "content type") != NULL);
    hsmc_cose_free(&c);
    CHECK(c.content_type == NULL);
    free(kh);
    free(ah);
    free(ph);
    free(cth);
}

/* COSE_Encrypt, COSE_Sign1 and the stream with a content type. */
static void test_content_type_envelopes(void)
{
    hsmc_cose_t c;
    hsmc_cose_stream_t s;
    hsmc_cose_recipient_t r[2];
    hsmc_cose_info_t info;
    uint8_t pt[300], msg[2048], out[2048], bad[2048], der[1024], *st;
    char line[1024], *kh = hsmc_test_hexs(KEK_BYTES, 32), *ah = hsmc_test_hexs(CT_AAD, 3), *ph,
                     *cth, *big_ct;
    size_t n, m, used, dl, i;
    long at;

    hsmc_test_fill(pt, sizeof pt, 32);
    ph = hsmc_test_hexs(pt, sizeof pt);
    hsmc_cose_init(&c, &H);
    r[0].key = &K_KEK;
    r[0].alg = HSMC_COSE_A256KW;
    r[1].key = &K_RSA_SW;
    r[1].alg = HSMC_COSE_RSA_OAEP;

    /* COSE_Encrypt: protected {1: 3, 3: "application/json"} */
    cth = hsmc_test_hexs((const uint8_t *)CT_JSON, strlen(CT_JSON));
    CHECK_ERR(hsmc_cose_set_content_type(&c, CT_JSON), HSMC_OK);
    CHECK_ERR(hsmc_cose_encrypt(&c, r, 2, V(CT_AAD, 3), V(pt, sizeof pt), msg, sizeof msg, &n),
              HSMC_OK);
    CHECK(memcmp(msg, "\xd8\x60\x84\x55\xa2\x01\x03\x03\x70", 9) == 0 &&
          memcmp(msg + 9, CT_JSON, 16) == 0);
    memset(&info, 0xaa, sizeof info);
    CHECK_ERR(hsmc_cose_decrypt(&C, V(msg, n), V(CT_AAD, 3), 0, out, sizeof out, &m, &info),
              HSMC_OK);
    CHECK(m == sizeof pt && memcmp(out, pt, m) == 0);
    CHECK(has_ctype(&info, CT_JSON) && info.key_alg == HSMC_COSE_A256KW);
    hsmc_test_write_bin("ct.cose", msg, n);
    CHECK(py(line, sizeof line, "dec_kw %s %s %s kek-v0001 %s", kh, hsmc_test_path("ct.cose"), ah,
             cth) == 0);
    CHECK(strcmp(line, ph) == 0);
    CHECK(py(line, sizeof line, "dec_oaep %s %s %s rsa-sw %s", hsmc_test_path("rsa-sw.pem"),
             hsmc_test_path("ct.cose"), ah, cth) == 0);
    CHECK(strcmp(line, ph) == 0);
    flip_ctype("COSE_Encrypt", msg, n, 9, 16, open_ct_env, HSMC_ERR_DECRYPT);
    memcpy(bad, msg, n);
    bad[8] = 0x50; /* text -> bytes of the same length */
    CHECK_ERR(open_ct_env(bad, n, out, sizeof out, &m), HSMC_ERR_FORMAT);
    free(cth);

    /* COSE_Sign1: signed with it; the token and the SPKI paths report it */
    cth = hsmc_test_hexs((const uint8_t *)CT_BYTES, strlen(CT_BYTES));
    CHECK_ERR(hsmc_cose_set_content_type(&c, CT_BYTES), HSMC_OK);
    REQUIRE(export_spki(&K_P256, "ct-sig.spki", der, sizeof der, &dl) == 0);
    CHECK_ERR(hsmc_cose_sign1(&c, &K_P256, HSMC_COSE_ES256, V(CT_AAD, 3), V(pt, 20), 0, msg,
                              sizeof msg, &n),
              HSMC_OK);
    CHECK(memcmp(msg, "\xd2\x84\x58\x1e\xa2\x01\x26\x03\x78\x18", 10) == 0 &&
          memcmp(msg + 10, CT_BYTES, 24) == 0);
    memset(&info, 0xaa, sizeof info);
    CHECK_ERR(hsmc_cose_verify1(&C, V(msg, n), V(CT_AAD, 3), NONE, 0, &info), HSMC_OK);
    CHECK(has_ctype(&info, CT_BYTES) && info.payload.len == 20);
    memset(&info, 0xaa, sizeof info);
    CHECK_ERR(hsmc_cose_verify1_spki(&C, V(msg, n), V(der, dl), V(CT_AAD, 3), NONE, 0, &info),
              HSMC_OK);
    CHECK(has_ctype(&info, CT_BYTES));
    hsmc_test_write_bin("ct-s.cose", msg, n);
    CHECK(py(line, sizeof line, "verify1 %s %s %s sig-p256 - %s", hsmc_test_path("ct-sig.spki"),
             hsmc_test_path("ct-s.cose"), ah, cth) == 0);
    memcpy(bad, msg, n);
    bad[10 + 12] ^= 0x20;
    CHECK_ERR(hsmc_cose_verify1(&C, V(bad, n), V(CT_AAD, 3), NONE, 0, NULL), HSMC_ERR_SIGNATURE);
    CHECK_ERR(hsmc_cose_verify1_spki(&C, V(bad, n), V(der, dl), V(CT_AAD, 3), NONE, 0, NULL),
              HSMC_ERR_SIGNATURE);
    memcpy(bad, msg, n);
    bad[8] = 0x58;
    CHECK_ERR(hsmc_cose_verify1(&C, V(bad, n), V(CT_AAD, 3), NONE, 0, NULL), HSMC_ERR_FORMAT);
    if (have_ed) { /* EdDSA signs the Sig_structure from the scratch */
        CHECK_ERR(hsmc_cose_sign1(&c, &K_ED, 0, V(CT_AAD, 3), V(pt, 20), 0, msg, sizeof msg, &n),
                  HSMC_OK);
        CHECK_ERR(hsmc_cose_verify1(&C, V(msg, n), V(CT_AAD, 3), NONE, 0, &info), HSMC_OK);
        CHECK(has_ctype(&info, CT_BYTES));
    }

    /* stream: the header carries {1: 3, 2: [-65537], 3: ct, -65537: chunk} */
    g_seal_ct = CT_BYTES;
    st = seal_stream(r, 1, 64, V(CT_AAD, 3), pt, 150, &n);
    g_seal_ct = NULL;
    REQUIRE(st != NULL);
    at = find(st, n, "\x02\x81\x3a\x00\x01\x00\x00\x03\x78\x18", 10);
    CHECK(at == 8 && memcmp(st + at + 10, CT_BYTES, 24) == 0 &&
          memcmp(st + at + 34, "\x3a\x00\x01\x00\x00\x18\x40", 7) == 0);
    hsmc_cose_stream_init(&s, &H);
    memset(&info, 0xaa, sizeof info);
    CHECK_ERR(hsmc_cose_stream_open_init(&s, st, n, &used, V(CT_AAD, 3), 64, 0, &info), HSMC_OK);
    CHECK(has_ctype(&info, CT_BYTES) && info.chunk == 64);
    CHECK(info.content_type.ptr == st + at + 10);
    hsmc_cose_stream_free(&s);
    CHECK_ERR(open_ct_st(st, n, out, sizeof out, &m), HSMC_OK);
    CHECK(m == 150 && memcmp(out, pt, 150) == 0);
    hsmc_test_write_bin("ct.stream", st, n);
    CHECK(py(line, sizeof line, "stream %s %s %s kek-v0001 %s %s", kh, hsmc_test_path("ct.stream"),
             ah, hsmc_test_path("ct.stream.out"), cth) == 0);
    /* bound to every chunk through the header: the first chunk fails */
    check_leaks = 0;
    flip_ctype("stream header", st, n, at + 10, 24, open_ct_st, HSMC_ERR_DECRYPT);
    check_leaks = 1;
    memcpy(bad, st, n);
    bad[at + 8] = 0x58;
    CHECK_ERR(open_ct_st(bad, n, out, sizeof out, &m), HSMC_ERR_FORMAT);
    free(st);
    /* a long content type: the header has no bound */
    big_ct = malloc(1001);
    REQUIRE(big_ct != NULL);
    memcpy(big_ct, "application/x.", 14);
    for (i = 14; i < 1000; i++)
        big_ct[i] = (char)('a' + i % 26);
    big_ct[1000] = '\0';
    g_seal_ct = big_ct;
    st = seal_stream(r, 1, 64, NONE, pt, 10, &n);
    g_seal_ct = NULL;
    REQUIRE(st != NULL);
    hsmc_cose_stream_init(&s, &H);
    CHECK_ERR(hsmc_cose_stream_open_init(&s, st, n, &used, NONE, 64, 0, &info), HSMC_OK);
    CHECK(has_ctype(&info, big_ct));
    hsmc_cose_stream_free(&s);
    free(st);
    free(big_ct);
    free(cth);

    /* made by Python with a content type: accepted and reported */
    cth = hsmc_test_hexs((const uint8_t *)CT_TEXT, strlen(CT_TEXT));
    CHECK(py(line, sizeof line, "enc_kw %s kek-v0001 %s %s %s %s", kh, ph, ah,
             hsmc_test_path("pyct.cose"), cth) == 0);
    st = read_bin("pyct.cose", &n);
    memset(&info, 0xaa, sizeof info);
    CHECK_ERR(hsmc_cose_decrypt(&C, V(st, n), V(CT_AAD, 3), 0, out, sizeof out, &m, &info),
              HSMC_OK);
    CHECK(m == sizeof pt && memcmp(out, pt, m) == 0 && has_ctype(&info, CT_TEXT));
    free(st);
    hsmc_test_write_bin("pyct.in", pt, 100);
    CHECK(py(line, sizeof line, "stream_enc %s kek-v0001 32 %s %s %s %s", kh,
             hsmc_test_path("pyct.in"), ah, hsmc_test_path("pyct.stream"), cth) == 0);
    st = read_bin("pyct.stream", &n);
    hsmc_cose_stream_init(&s, &H);
    memset(&info, 0xaa, sizeof info);
    CHECK_ERR(hsmc_cose_stream_open_init(&s, st, n, &used, V(CT_AAD, 3), 32, 0, &info), HSMC_OK);
    CHECK(has_ctype(&info, CT_TEXT) && info.chunk == 32);
    hsmc_cose_stream_free(&s);
    CHECK_ERR(open_ct_st(st, n, out, sizeof out, &m), HSMC_OK);
    CHECK(m == 100 && memcmp(out, pt, 100) == 0);
    free(st);
    free(cth);
    hsmc_cose_free(&c);
    free(kh);
    free(ah);
    free(ph);
}

/* ---- Rotation ---------------------------------------------------------------------- */

static void test_rotation(void)
{
    hsmc_key_spec_t spec;
    hsmc_key_t v1, v2, latest;
    hsmc_cose_info_t info;
    uint8_t pt[10], old[256], now[256], out[256];
    size_t n1, n2, m;

    hsmc_test_fill(pt, sizeof pt, 8);
    spec = hsmc_test_spec(HSMC_ALG_AES256, HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT);
    CHECK_ERR(hsmc_key_rotate(&H, "data", &spec, &v1), HSMC_OK);
    CHECK(strcmp(v1.priv.label, "data-v0001") == 0);
    CHECK_ERR(hsmc_key_latest(&H, "data", &latest), HSMC_OK);
    CHECK_ERR(hsmc_cose_encrypt0(&C, &latest, NONE, V(pt, sizeof pt), old, sizeof old, &n1),
              HSMC_OK);
    CHECK_ERR(hsmc_key_rotate(&H, "data", &spec, &v2), HSMC_OK);
    CHECK(strcmp(v2.priv.label, "data-v0002") == 0);
    CHECK_ERR(hsmc_key_latest(&H, "data", &latest), HSMC_OK);
    CHECK(strcmp(latest.priv.label, "data-v0002") == 0);
    CHECK_ERR(hsmc_cose_encrypt0(&C, &latest, NONE, V(pt, sizeof pt), now, sizeof now, &n2),
              HSMC_OK);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(old, n1), NONE, 0, out, sizeof out, &m, &info), HSMC_OK);
    CHECK(m == sizeof pt && memcmp(out, pt, m) == 0);
    CHECK(info.kid.len == 10 && memcmp(info.kid.ptr, "data-v0001", 10) == 0);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(now, n2), NONE, 0, out, sizeof out, &m, &info), HSMC_OK);
    CHECK(info.kid.len == 10 && memcmp(info.kid.ptr, "data-v0002", 10) == 0);
    /* once v0001 is deleted its envelopes name a key that is gone */
    CHECK_ERR(hsmc_key_delete(&H, &v1), HSMC_OK);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(old, n1), NONE, 0, out, sizeof out, &m, NULL),
              HSMC_ERR_OBJECT_NOT_FOUND);
    CHECK(strstr(hsmc_detail(&H), "data-v0001") != NULL);
}

/* ---- Re-wrapping for a new KEK ---------------------------------------------------- */

/* Bytes of the first CBOR item of data[0..len) (a stream's header). */
static size_t first_item(const uint8_t *data, size_t len)
{
    hsmc_cbor_dec_t d;
    const uint8_t *p = NULL;
    size_t n = 0;

    hsmc_cbor_dec_init(&d, data, len);
    if (hsmc_cbor_get_raw(&d, &p, &n) != HSMC_OK)
        return 0;
    return n;
}

static void test_rewrap(void)
{
    static uint8_t st2[4096 + 2048];
    hsmc_cose_recipient_t old, r[2];
    hsmc_cose_info_t info;
    hsmc_view_t kid;
    uint8_t data[1000], out[1100], hdr[1024], msg[2048], msg2[2048], aad[3] = {'a', 'a', 'd'};
    char line[1024], *kh, *ph;
    uint8_t *st;
    size_t n, hl, nh, m, cnt, i, k;
    int alg, zero;

    hsmc_test_fill(data, sizeof data, 21);
    ph = hsmc_test_hexs(data, 300);
    old.key = &K_KEK2; /* random bytes: only the token knows it */
    old.alg = HSMC_COSE_A256KW;
    r[0].key = &K_KEK; /* known bytes: the Python checker can unwrap */
    r[0].alg = HSMC_COSE_A256KW;
    r[1].key = &K_RSA_SW;
    r[1].alg = HSMC_COSE_RSA_OAEP;

    /* A stream: only the header changes; the old chunks open under it. */
    st = seal_stream(&old, 1, 64, V(aad, 3), data, sizeof data, &n);
    REQUIRE(st != NULL);
    hl = first_item(st, n);
    REQUIRE(hl > 0 && hl < n);
    CHECK_ERR(hsmc_cose_rewrap(&C, V(st, hl), 0, r, 2, NULL, 0, &nh, NULL), HSMC_OK);
    memset(hdr, 0xa5, sizeof hdr);
    CHECK_ERR(hsmc_cose_rewrap(&C, V(st, hl), 0, r, 2, hdr, nh - 1, &m, NULL), HSMC_ERR_BUFFER);
    for (zero = 1, i = 0; i < nh - 1; i++) /* a failure leaves nothing in out */
        zero &= hdr[i] == 0;
    CHECK(zero && m == nh);
    CHECK_ERR(hsmc_cose_rewrap(&C, V(st, hl), 0, r, 2, hdr, sizeof hdr, &m, &info), HSMC_OK);
    CHECK(m == nh);
    CHECK(info.kid.len == 4 && memcmp(info.kid.ptr, "kek2", 4) == 0 && info.chunk == 64);
    CHECK(m + (n - hl) <= sizeof st2);
    memcpy(st2, hdr, m);
    memcpy(st2 + m, st + hl, n - hl);
    CHECK_ERR(open_stream(st2, m + n - hl, V(aad, 3), out, sizeof out, &k), HSMC_OK);
    CHECK(k == sizeof data && memcmp(out, data, k) == 0);
    /* everything before the recipients is the old header's, byte for byte */
    CHECK(hl > 60 && memcmp(hdr, st, hl - 60) == 0); /* the old recipient is 53 bytes */
    CHECK_ERR(hsmc_cose_recipient_at(&C, V(hdr, m), 0, 0, &kid, &alg, &cnt), HSMC_OK);
    CHECK(cnt == 2 && alg == HSMC_COSE_A256KW && kid.len == 9 &&
          memcmp(kid.ptr, "kek-v0001", 9) == 0);
    CHECK_ERR(hsmc_cose_recipient_at(&C, V(hdr, m), 0, 1, &kid, &alg, &cnt), HSMC_OK);
    CHECK(alg == HSMC_COSE_RSA_OAEP && kid.len == 6 && memcmp(kid.ptr, "rsa-sw", 6) == 0);
    CHECK_ERR(hsmc_cose_recipient_at(&C, V(hdr, m), 0, 2, &kid, &alg, &cnt), HSMC_ERR_ARG);
    CHECK(cnt == 2);
    /* the independent checker opens the re-wrapped stream with either new key */
    hsmc_test_write_bin("rw.stream", st2, m + n - hl);
    kh = hsmc_test_hexs(KEK_BYTES, 32);
    CHECK(py(line, sizeof line, "stream %s %s 616164 kek-v0001 %s", kh, hsmc_test_path("rw.stream"),
             hsmc_test_path("rw.out")) == 0);
    CHECK(py(line, sizeof line, "stream_oaep %s %s 616164 rsa-sw %s", hsmc_test_path("rsa-sw.pem"),
             hsmc_test_path("rw.stream"), hsmc_test_path("rw.out")) == 0);
    free(kh);
    /* the protected bucket and the base IV stay bound: changing either
     * breaks the chunks, although the recipients may change */
    for (i = 0; i < 2; i++) {
        memcpy(st2, hdr, m);
        memcpy(st2 + m, st + hl, n - hl);
        st2[i == 0 ? 6 : 22] ^= 0x01; /* inside the protected map; inside the IV */
        CHECK(open_stream(st2, m + n - hl, V(aad, 3), out, sizeof out, &k) != HSMC_OK);
    }
    /* a header with its chunks still attached is not a header */
    CHECK_ERR(hsmc_cose_rewrap(&C, V(st, n), 0, r, 2, hdr, sizeof hdr, &m, NULL),
              HSMC_ERR_FORMAT);
    /* the old key's recipient altered: the CEK does not unwrap, out wiped */
    memcpy(st2, st, hl);
    st2[hl - 3] ^= 0x40;
    memset(hdr, 0xa5, sizeof hdr);
    CHECK_ERR(hsmc_cose_rewrap(&C, V(st2, hl), 0, r, 2, hdr, sizeof hdr, &m, &info),
              HSMC_ERR_DECRYPT);
    for (zero = 1, i = 0; i < sizeof hdr; i++)
        zero &= hdr[i] == 0;
    CHECK(zero && info.kid.len == 0);
    free(st);

    /* A COSE_Encrypt message: same ciphertext, new recipients. */
    CHECK_ERR(hsmc_cose_encrypt(&C, &old, 1, V(aad, 3), V(data, 300), msg, sizeof msg, &n),
              HSMC_OK);
    CHECK_ERR(hsmc_cose_rewrap(&C, V(msg, n), 0, r, 2, msg2, sizeof msg2, &m, NULL), HSMC_OK);
    CHECK(memcmp(msg, msg2, n - 60) == 0); /* tag, headers and ciphertext unchanged */
    CHECK_ERR(hsmc_cose_decrypt(&C, V(msg2, m), V(aad, 3), 0, out, sizeof out, &k, &info),
              HSMC_OK);
    CHECK(k == 300 && memcmp(out, data, 300) == 0);
    CHECK(info.kid.len == 9 && memcmp(info.kid.ptr, "kek-v0001", 9) == 0);
    hsmc_test_write_bin("rw.cose", msg2, m);
    kh = hsmc_test_hexs(KEK_BYTES, 32);
    CHECK(py(line, sizeof line, "dec_kw %s %s 616164 kek-v0001", kh, hsmc_test_path("rw.cose")) ==
          0);
    CHECK(strcmp(line, ph) == 0);
    free(kh);
    /* rotated again, back to the first KEK only */
    CHECK_ERR(hsmc_cose_rewrap(&C, V(msg2, m), 0, &old, 1, msg, sizeof msg, &n, &info), HSMC_OK);
    CHECK(info.kid.len == 9 && memcmp(info.kid.ptr, "kek-v0001", 9) == 0);
    CHECK_ERR(hsmc_cose_decrypt(&C, V(msg, n), V(aad, 3), 0, out, sizeof out, &k, NULL),
              HSMC_OK);

    /* Refusals. */
    CHECK_ERR(hsmc_cose_rewrap(NULL, V(msg, n), 0, r, 1, msg2, sizeof msg2, &m, NULL),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cose_rewrap(&C, V(msg, n), 0, NULL, 1, msg2, sizeof msg2, &m, NULL),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cose_rewrap(&C, V(msg, n), 0, r, 0, msg2, sizeof msg2, &m, NULL),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cose_rewrap(&C, V(NULL, 0), 0, r, 1, msg2, sizeof msg2, &m, NULL),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cose_rewrap(&C, V(msg, n), 0, r, 1, msg2, sizeof msg2, NULL, NULL),
              HSMC_ERR_ARG);
    {
        hsmc_cose_recipient_t bad = {&K_RSA, HSMC_COSE_A256KW}; /* alg does not fit the key */

        CHECK_ERR(hsmc_cose_rewrap(&C, V(msg, n), 0, &bad, 1, msg2, sizeof msg2, &m, NULL),
                  HSMC_ERR_ARG);
    }
    CHECK_ERR(hsmc_cose_encrypt0(&C, &K_AES256, NONE, V(data, 10), msg2, sizeof msg2, &m),
              HSMC_OK);
    CHECK_ERR(hsmc_cose_rewrap(&C, V(msg2, m), 0, r, 1, hdr, sizeof hdr, &k, NULL),
              HSMC_ERR_FORMAT);
    CHECK_ERR(hsmc_cose_recipient_at(&C, V(msg2, m), 0, 0, &kid, &alg, NULL), HSMC_ERR_FORMAT);
    CHECK_ERR(hsmc_cose_recipient_at(NULL, V(msg, n), 0, 0, &kid, &alg, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cose_recipient_at(&C, V(msg, n), 0, 0, NULL, &alg, NULL), HSMC_ERR_ARG);
    /* the old KEK is gone: nothing to unwrap with, named */
    {
        hsmc_key_t gone;
        hsmc_cose_recipient_t tmp;

        CHECK_ERR(
            hsmc_test_gen(&H, "kek-gone", HSMC_ALG_AES256, HSMC_USE_WRAP | HSMC_USE_UNWRAP, &gone),
            HSMC_OK);
        tmp.key = &gone;
        tmp.alg = HSMC_COSE_A256KW;
        CHECK_ERR(hsmc_cose_encrypt(&C, &tmp, 1, NONE, V(data, 5), msg, sizeof msg, &n), HSMC_OK);
        CHECK_ERR(hsmc_key_delete(&H, &gone), HSMC_OK);
        CHECK_ERR(hsmc_cose_rewrap(&C, V(msg, n), 0, r, 1, msg2, sizeof msg2, &m, NULL),
                  HSMC_ERR_OBJECT_NOT_FOUND);
        CHECK(strstr(hsmc_detail(&H), "kek-gone") != NULL);
    }
    free(ph);
}

/* ---- The independent implementation ------------------------------------------------ */

static void test_python_reads_hsmc(void)
{
    uint8_t pt[300], msg[2048], aad[6] = {'c', 'o', 'n', 't', 'x', 't'}, got[400], der[1024];
    char line[1024], *ph, *ah = hsmc_test_hexs(aad, sizeof aad), *kh;
    hsmc_cose_recipient_t r[2];
    const sig_case_t *cs;
    size_t n, ncs, i, dl;
    int det;

    hsmc_test_fill(pt, sizeof pt, 6);
    ph = hsmc_test_hexs(pt, sizeof pt);
    /* COSE_Encrypt0 under the known AES-256 and AES-128 keys */
    CHECK_ERR(hsmc_cose_encrypt0(&C, &K_AES256, V(aad, 6), V(pt, sizeof pt), msg, sizeof msg, &n),
              HSMC_OK);
    hsmc_test_write_bin("e0.cose", msg, n);
    kh = hsmc_test_hexs(AES256_BYTES, 32);
    CHECK(py(line, sizeof line, "dec0 %s %s %s e0-256", kh, hsmc_test_path("e0.cose"), ah) == 0);
    CHECK(strcmp(line, ph) == 0);
    free(kh);
    CHECK_ERR(hsmc_cose_encrypt0(&C, &K_AES128, NONE, V(pt, 7), msg, sizeof msg, &n), HSMC_OK);
    hsmc_test_write_bin("e0b.cose", msg, n);
    kh = hsmc_test_hexs(AES128_BYTES, 16);
    CHECK(py(line, sizeof line, "dec0 %s %s - e0-128", kh, hsmc_test_path("e0b.cose")) == 0);
    CHECK(hsmc_test_unhex(line, got, sizeof got) == 7 && memcmp(got, pt, 7) == 0);
    free(kh);
    /* COSE_Encrypt: A256KW with the known KEK; RSA-OAEP with the Python-made key */
    r[0].key = &K_KEK;
    r[0].alg = HSMC_COSE_A256KW;
    r[1].key = &K_RSA_SW;
    r[1].alg = HSMC_COSE_RSA_OAEP;
    CHECK_ERR(hsmc_cose_encrypt(&C, r, 2, V(aad, 6), V(pt, sizeof pt), msg, sizeof msg, &n),
              HSMC_OK);
    hsmc_test_write_bin("e.cose", msg, n);
    kh = hsmc_test_hexs(KEK_BYTES, 32);
    CHECK(py(line, sizeof line, "dec_kw %s %s %s kek-v0001", kh, hsmc_test_path("e.cose"), ah) ==
          0);
    CHECK(strcmp(line, ph) == 0);
    CHECK(py(line, sizeof line, "dec_oaep %s %s %s rsa-sw", hsmc_test_path("rsa-sw.pem"),
             hsmc_test_path("e.cose"), ah) == 0);
    CHECK(strcmp(line, ph) == 0);
    /* the independent checker notices a wrong AAD */
    py_quiet = 1;
    CHECK(py(line, sizeof line, "dec_kw %s %s 00 kek-v0001", kh, hsmc_test_path("e.cose")) != 0);
    CHECK(strstr(line, "tag mismatch") != NULL);
    py_quiet = 0;
    free(kh);
    /* COSE_Sign1, every algorithm, attached and detached, with the exported SPKI */
    hsmc_test_write_bin("payload.bin", pt, sizeof pt);
    cs = sig_cases(&ncs);
    for (i = 0; i < ncs; i++) {
        if (export_spki(cs[i].key, "sig.spki", der, sizeof der, &dl) != 0) {
            CHECK(0);
            continue;
        }
        for (det = 0; det < 2; det++) {
            CHECK_ERR(hsmc_cose_sign1(&C, cs[i].key, cs[i].alg, V(aad, 6), V(pt, sizeof pt),
                                      det ? HSMC_COSE_DETACHED : 0, msg, sizeof msg, &n),
                      HSMC_OK);
            hsmc_test_write_bin("s.cose", msg, n);
            if (py(line, sizeof line, "verify1 %s %s %s %s %s", hsmc_test_path("sig.spki"),
                   hsmc_test_path("s.cose"), ah, cs[i].key->priv.label,
                   det ? hsmc_test_path("payload.bin") : "-") != 0) {
                fprintf(stderr, "FAIL %s: %s %s not verified by cose_check.py\n", hsmc_test_name,
                        cs[i].name, det ? "detached" : "attached");
                hsmc_test_cur_failed = 1;
            }
        }
    }
    /* the stream is covered by test_stream_large */
    free(ph);
    free(ah);
}

static void test_hsmc_reads_python(void)
{
    uint8_t pt[100], out[400], der[1024], *msg, *st;
    char line[512], *ph, *kh;
    hsmc_cose_info_t info;
    size_t n, m, dl;
    static const struct {
        const char *file, *alg;
        const hsmc_key_t *key;
    } sigs[] = {{"py-p256", "-7", &K_PY_P256}, {"py-rsa", "-37", &K_PY_RSA},
                {"py-rsa", "-257", &K_PY_RSA}, {"py-rsa", "-38", &K_PY_RSA}};
    size_t i;
    int det;

    hsmc_test_fill(pt, sizeof pt, 12);
    ph = hsmc_test_hexs(pt, sizeof pt);
    /* COSE_Encrypt0 made by Python with the key hsmc imported */
    kh = hsmc_test_hexs(AES256_BYTES, 32);
    CHECK(py(line, sizeof line, "enc0 %s e0-256 %s abcd %s", kh, ph, hsmc_test_path("py0.cose")) ==
          0);
    msg = read_bin("py0.cose", &n);
    CHECK_ERR(hsmc_cose_decrypt0(&C, V(msg, n), V("\xab\xcd", 2), 0, out, sizeof out, &m, &info),
              HSMC_OK);
    CHECK(m == sizeof pt && memcmp(out, pt, m) == 0);
    CHECK(info.alg == HSMC_COSE_A256GCM);
    free(msg);
    free(kh);
    /* COSE_Encrypt with an A256KW recipient */
    kh = hsmc_test_hexs(KEK_BYTES, 32);
    CHECK(py(line, sizeof line, "enc_kw %s kek-v0001 %s - %s", kh, ph,
             hsmc_test_path("pykw.cose")) == 0);
    msg = read_bin("pykw.cose", &n);
    CHECK_ERR(hsmc_cose_decrypt(&C, V(msg, n), NONE, 0, out, sizeof out, &m, &info), HSMC_OK);
    CHECK(m == sizeof pt && memcmp(out, pt, m) == 0);
    CHECK(info.key_alg == HSMC_COSE_A256KW);
    free(msg);
    /* RSA-OAEP (SHA-1) to the token's RSA key; RSA-OAEP-256, which SoftHSM2 lacks */
    REQUIRE(export_spki(&K_RSA, "rsa-enc.spki", der, sizeof der, &dl) == 0);
    CHECK(py(line, sizeof line, "enc_oaep %s rsa-enc -40 %s - %s", hsmc_test_path("rsa-enc.spki"),
             ph, hsmc_test_path("pyoaep.cose")) == 0);
    msg = read_bin("pyoaep.cose", &n);
    CHECK_ERR(hsmc_cose_decrypt(&C, V(msg, n), NONE, 0, out, sizeof out, &m, &info), HSMC_OK);
    CHECK(m == sizeof pt && memcmp(out, pt, m) == 0);
    CHECK(info.key_alg == HSMC_COSE_RSA_OAEP);
    free(msg);
    CHECK(py(line, sizeof line, "enc_oaep %s rsa-enc -41 %s - %s", hsmc_test_path("rsa-enc.spki"),
             ph, hsmc_test_path("pyoaep256.cose")) == 0);
    msg = read_bin("pyoaep256.cose", &n);
    CHECK_ERR(hsmc_cose_decrypt(&C, V(msg, n), NONE, 0, out, sizeof out, &m, NULL),
              HSMC_ERR_UNSUPPORTED);
    free(msg);
    /* COSE_Sign1 by Python keys: the token (kid) and the SPKI both verify */
    hsmc_test_write_bin("pypayload.bin", pt, sizeof pt);
    for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        char pem[64], spki[64];
        uint8_t *sp;
        size_t sl;
        snprintf(pem, sizeof pem, "%s.pem", sigs[i].file);
        snprintf(spki, sizeof spki, "%s.spki", sigs[i].file);
        sp = read_bin(spki, &sl);
        for (det = 0; det < 2; det++) {
            hsmc_view_t dp = det ? V(pt, sizeof pt) : NONE;
            CHECK(py(line, sizeof line, "sign1 %s %s %s %s 0102 %s %d", hsmc_test_path(pem),
                     sigs[i].file, sigs[i].alg, hsmc_test_path("pypayload.bin"),
                     hsmc_test_path("pys.cose"), det) == 0);
            msg = read_bin("pys.cose", &n);
            CHECK_ERR(hsmc_cose_verify1(&C, V(msg, n), V("\x01\x02", 2), dp, 0, &info), HSMC_OK);
            CHECK(info.payload.len == sizeof pt);
            CHECK_ERR(hsmc_cose_verify1_spki(&C, V(msg, n), V(sp, sl), V("\x01\x02", 2), dp, 0,
                                             NULL),
                      HSMC_OK);
            CHECK_ERR(hsmc_cose_verify1_spki(&C, V(msg, n), V(sp, sl), V("\x01\x03", 2), dp, 0,
                                             NULL),
                      HSMC_ERR_SIGNATURE);
            free(msg);
        }
        free(sp);
    }
    /* a stream made by Python: 0, 1, exactly one chunk, one chunk + 1, several */
    {
        static const size_t sizes[] = {0, 1, 32, 33, 100};
        uint8_t data[100];
        hsmc_test_fill(data, sizeof data, 13);
        hsmc_test_write_bin("pystream.in", data, sizeof data);
        for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            hsmc_test_write_bin("pystream.in", data, sizes[i]);
            CHECK(py(line, sizeof line, "stream_enc %s kek-v0001 32 %s 0a0b %s", kh,
                     hsmc_test_path("pystream.in"), hsmc_test_path("pystream.cose")) == 0);
            st = read_bin("pystream.cose", &n);
            CHECK_ERR(open_stream(st, n, V("\x0a\x0b", 2), out, sizeof out, &m), HSMC_OK);
            CHECK(m == sizes[i] && memcmp(out, data, m) == 0);
            free(st);
        }
    }
    free(kh);
    free(ph);
}

/* Malformed or unusual COSE_Encrypt0 made by Python with the right key:
 * only the named defect may decide the result. */
static void test_strict_decoder(void)
{
    static const struct {
        const char *variant;
        hsmc_err_t want;
        unsigned flags;
    } cases[] = {
        {"plain", HSMC_OK, 0},
        {"untagged", HSMC_ERR_FORMAT, 0},
        {"untagged", HSMC_OK, HSMC_COSE_UNTAGGED},
        {"tag18", HSMC_ERR_FORMAT, 0},
        {"nested_tag", HSMC_ERR_FORMAT, 0},
        {"trailing", HSMC_ERR_FORMAT, 0},
        {"indef", HSMC_ERR_FORMAT, 0},
        {"nonshortest", HSMC_ERR_FORMAT, 0},
        {"dup_key", HSMC_ERR_FORMAT, 0},
        {"both_buckets", HSMC_ERR_FORMAT, 0},
        {"crit_unknown", HSMC_ERR_UNSUPPORTED, 0},
        {"crit_text", HSMC_ERR_UNSUPPORTED, 0},
        {"crit_unprot", HSMC_ERR_FORMAT, 0},
        {"crit_empty", HSMC_ERR_FORMAT, 0},
        {"crit_not_protected", HSMC_ERR_FORMAT, 0},
        {"crit_ok", HSMC_OK, 0},
        {"unknown_alg", HSMC_ERR_UNSUPPORTED, 0},
        {"alg_text", HSMC_ERR_UNSUPPORTED, 0},
        {"alg_unprot", HSMC_ERR_FORMAT, 0},
        {"prot_a0_alg_unprot", HSMC_ERR_FORMAT, 0},
        {"iv11", HSMC_ERR_FORMAT, 0},
        {"partial_iv", HSMC_ERR_UNSUPPORTED, 0},
        {"extra_label", HSMC_OK, 0},
        {"kid_text", HSMC_ERR_FORMAT, 0},
        {"deep", HSMC_ERR_FORMAT, 0},
        {"prot_not_map", HSMC_ERR_FORMAT, 0},
        {"prot_two_items", HSMC_ERR_FORMAT, 0},
        /* content type (3): text or a CoAP Content-Format, reported when protected */
        {"ctype", HSMC_OK, 0},
        {"ctype_uint", HSMC_OK, 0},
        {"ctype_crit", HSMC_OK, 0},
        {"ctype_unprot", HSMC_OK, 0},
        {"ctype_both", HSMC_ERR_FORMAT, 0},
        {"ctype_bstr", HSMC_ERR_FORMAT, 0},
        {"ctype_nint", HSMC_ERR_FORMAT, 0},
        {"ctype_big", HSMC_ERR_FORMAT, 0},
        {"ctype_empty", HSMC_ERR_FORMAT, 0},
        {"ctype_array", HSMC_ERR_FORMAT, 0},
        {"ctype_bad_utf8", HSMC_ERR_FORMAT, 0},
    };
    hsmc_cose_info_t info;
    uint8_t pt[20], out[64], *msg;
    char line[256], *kh = hsmc_test_hexs(AES256_BYTES, 32), *ph;
    size_t i, n, m;
    hsmc_err_t err;

    hsmc_test_fill(pt, sizeof pt, 21);
    ph = hsmc_test_hexs(pt, sizeof pt);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (py(line, sizeof line, "enc0 %s e0-256 %s 99 %s %s", kh, ph, hsmc_test_path("v.cose"),
               cases[i].variant) != 0) {
            CHECK(0);
            continue;
        }
        msg = read_bin("v.cose", &n);
        memset(&info, 0xaa, sizeof info);
        err = hsmc_cose_decrypt0(&C, V(msg, n), V("\x99", 1), cases[i].flags, out, sizeof out, &m,
                                 &info);
        if (err != cases[i].want) {
            fprintf(stderr, "FAIL %s: variant %s: %s (%s), want %s\n", hsmc_test_name,
                    cases[i].variant, hsmc_err_name(err), hsmc_detail(&H),
                    hsmc_err_name(cases[i].want));
            hsmc_test_cur_failed = 1;
        }
        if (err == HSMC_OK) {
            CHECK(m == sizeof pt && memcmp(out, pt, m) == 0);
            if (strcmp(cases[i].variant, "ctype") == 0)
                CHECK(has_ctype(&info, CT_JSON));
            else if (strcmp(cases[i].variant, "ctype_crit") == 0)
                CHECK(has_ctype(&info, CT_TEXT));
            else if (strcmp(cases[i].variant, "ctype_uint") == 0)
                CHECK(info.content_format == 50 && info.content_type.len == 0 &&
                      info.content_type.ptr == NULL);
            else /* no label 3, or an unprotected one: not authenticated, not reported */
                CHECK(has_ctype(&info, NULL));
        }
        free(msg);
    }
    free(kh);
    free(ph);
}

int main(void)
{
    RUN(test_setup);
    if (hsmc_test_failed)
        return TEST_END();
    check_leaks = 1;
    RUN(test_encrypt0_round_trip);
    RUN(test_encrypt0_errors);
    RUN(test_encrypt0_tamper);
    RUN(test_encrypt_round_trip);
    RUN(test_encrypt_errors);
    RUN(test_sign1);
    RUN(test_stream_round_trip);
    RUN(test_stream_large);
    RUN(test_stream_attacks);
    RUN(test_content_type_encrypt0);
    RUN(test_content_type_envelopes);
    RUN(test_rotation);
    RUN(test_rewrap);
    RUN(test_python_reads_hsmc);
    RUN(test_hsmc_reads_python);
    RUN(test_strict_decoder);
    hsmc_cose_free(&C);
    hsmc_close(&H);
    return TEST_END();
}
