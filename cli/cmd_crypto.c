/*
 * cmd_crypto.c: `hsmc sign`, `hsmc verify`, `hsmc wrap`, `hsmc unwrap`:
 * signatures (COSE_Sign1, or the bare signature in the format openssl
 * reads) and key wrapping with token keys. The cryptography is the
 * library's (crypto.h, cose.h); this file reads inputs, picks defaults and
 * writes outputs.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "hsmc/cose.h"

/* Largest bare signature or wrapped key file read (RSA-4096 gives 512 bytes). */
#define SMALL_FILE_MAX (64u * 1024u)

/* ---- algorithms ---------------------------------------------------------------- */

static const struct {
    const char *name;
    int cose;
} sig_algs[] = {
    {"ES256", HSMC_COSE_ES256}, {"ES384", HSMC_COSE_ES384}, {"ES512", HSMC_COSE_ES512},
    {"PS256", HSMC_COSE_PS256}, {"PS384", HSMC_COSE_PS384}, {"PS512", HSMC_COSE_PS512},
    {"RS256", HSMC_COSE_RS256}, {"RS384", HSMC_COSE_RS384}, {"RS512", HSMC_COSE_RS512},
    {"EdDSA", HSMC_COSE_EDDSA}, {NULL, 0}};

static const char *sig_alg_name(int cose)
{
    size_t i;
    for (i = 0; sig_algs[i].name != NULL; i++)
        if (sig_algs[i].cose == cose)
            return sig_algs[i].name;
    return "?";
}

/* --alg NAME -> COSE id. @return CLI_EXIT_OK or CLI_EXIT_USAGE (printed). */
static int parse_sig_alg(const char *text, int *cose)
{
    size_t i;
    for (i = 0; sig_algs[i].name != NULL; i++) {
        if (strcasecmp(sig_algs[i].name, text) == 0) {
            *cose = sig_algs[i].cose;
            return CLI_EXIT_OK;
        }
    }
    fputs("hsmc: --alg: unknown signature algorithm '", stderr);
    cli_put_safe(stderr, text, strlen(text));
    fputs("'\nhsmc:   hint: one of ES256 ES384 ES512 (EC), PS256 PS384 PS512 RS256 RS384 "
          "RS512 (RSA), EdDSA (Ed25519)\n",
          stderr);
    return CLI_EXIT_USAGE;
}

/* The algorithm a key signs with when --alg is not given (0: none). */
static int default_sig_alg(hsmc_key_alg_t alg)
{
    switch (alg) {
    case HSMC_ALG_P256: return HSMC_COSE_ES256;
    case HSMC_ALG_P384: return HSMC_COSE_ES384;
    case HSMC_ALG_P521: return HSMC_COSE_ES512;
    case HSMC_ALG_SECP256K1: return HSMC_COSE_ES256; /* ECDSA with SHA-256; no COSE id of ours */
    case HSMC_ALG_ED25519: return HSMC_COSE_EDDSA;
    default: return cli_alg_is_rsa(alg) ? HSMC_COSE_PS256 : 0;
    }
}

/* Check that the algorithm fits the key's type. @return CLI_EXIT_OK or CLI_EXIT_USAGE. */
static int check_sig_alg(const hsmc_key_t *key, hsmc_sig_alg_t sa, int cose)
{
    CK_KEY_TYPE kt = key->priv.key_type;
    int ok = sa.scheme == HSMC_SIG_ECDSA      ? kt == CKK_EC
             : sa.scheme == HSMC_SIG_EDDSA    ? kt == CKK_EC_EDWARDS
                                              : kt == CKK_RSA;
    if (ok)
        return CLI_EXIT_OK;
    cli_err("--alg %s does not fit key '%.64s', an %s key", sig_alg_name(cose), key->priv.label,
            hsmc_key_type_name(kt));
    fprintf(stderr, "hsmc:   hint: leave --alg out to use the key's default (%s)\n",
            sig_alg_name(default_sig_alg(key->alg)));
    return CLI_EXIT_USAGE;
}

/* Bytes of one ECDSA signature half (field size) for a curve. */
static size_t ec_half(hsmc_key_alg_t alg)
{
    switch (alg) {
    case HSMC_ALG_P384: return 48;
    case HSMC_ALG_P521: return 66;
    case HSMC_ALG_P256:
    case HSMC_ALG_SECP256K1: return 32;
    default: return 0;
    }
}

/* ---- inputs ------------------------------------------------------------------------ */

/* Data to sign or verify: --message, --file or --digest-hex. */
typedef struct data_in {
    unsigned char *buf; /* heap: file contents or digest */
    size_t len;
    int is_digest;
    int given;
} data_in_t;

static void data_free(data_in_t *d)
{
    cli_free(d->buf, d->len);
    memset(d, 0, sizeof(*d));
}

/* Read the data option. @return CLI_EXIT_OK or an exit code (printed). */
static int data_read(cli_ctx_t *c, data_in_t *d)
{
    const char *msg = cli_opt(c, "message"), *file = cli_opt(c, "file");
    const char *dig = cli_opt(c, "digest-hex");
    memset(d, 0, sizeof(*d));
    if ((msg != NULL) + (file != NULL) + (dig != NULL) > 1) {
        cli_err("give only one of --message, --file and --digest-hex");
        return CLI_EXIT_USAGE;
    }
    if (msg != NULL) {
        d->len = strlen(msg);
        d->buf = (unsigned char *)malloc(d->len + 1);
        if (d->buf == NULL)
            return CLI_EXIT_FAIL;
        memcpy(d->buf, msg, d->len + 1);
    } else if (file != NULL) {
        int rc = cli_read_file(file, CLI_MEM_MAX, "--file", &d->buf, &d->len);
        if (rc != CLI_EXIT_OK)
            return rc;
    } else if (dig != NULL) {
        d->buf = (unsigned char *)malloc(64);
        if (d->buf == NULL)
            return CLI_EXIT_FAIL;
        if (cli_unhex(dig, d->buf, 64, &d->len) != 0) {
            cli_err("--digest-hex: expected the digest in hex (32, 48 or 64 bytes)");
            data_free(d);
            return CLI_EXIT_USAGE;
        }
        d->is_digest = 1;
    } else {
        return CLI_EXIT_OK;
    }
    d->given = 1;
    return CLI_EXIT_OK;
}

/* --format cose|der|raw. @return 0 cose, 1 der, 2 raw, -1 bad (printed). */
static int parse_sig_format(const char *f)
{
    if (f == NULL || strcmp(f, "cose") == 0)
        return 0;
    if (strcmp(f, "der") == 0)
        return 1;
    if (strcmp(f, "raw") == 0)
        return 2;
    cli_err("--format: expected cose, der or raw");
    return -1;
}

static hsmc_view_t view(const void *p, size_t n)
{
    hsmc_view_t v;
    v.ptr = (const uint8_t *)p;
    v.len = n;
    return v;
}

/* --aad TEXT (empty view when absent). */
static hsmc_view_t aad_view(const cli_ctx_t *c)
{
    const char *aad = cli_opt(c, "aad");
    return aad != NULL ? view(aad, strlen(aad)) : view(NULL, 0);
}

/* Write a whole buffer to --out (or stdout) atomically. */
static int write_all(cli_ctx_t *c, const void *p, size_t n, unsigned flags)
{
    cli_out_t out;
    int rc = cli_out_open(&out, cli_opt(c, "out"),
                          flags | (cli_flag(c, "force") ? CLI_OUT_FORCE : 0u));
    if (rc != CLI_EXIT_OK)
        return rc;
    rc = cli_out_write(&out, p, n);
    if (rc != CLI_EXIT_OK) {
        cli_out_abort(&out);
        return rc;
    }
    return cli_out_commit(&out);
}

/* ---- sign ------------------------------------------------------------------------------ */

static const cli_opt_t sign_opts[] = {
    {"key", 'k', "LABEL", "signing key (a base label signs with its latest version)"},
    {"alg", 0, "ALG", "ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA "
                      "(default from the key)"},
    {"message", 'm', "TEXT", "sign these bytes"},
    {"file", 'f', "FILE", "sign the contents of FILE (- is stdin)"},
    {"digest-hex", 0, "HEX", "sign a digest computed elsewhere (--format der or raw)"},
    {"format", 0, "FMT", "cose (COSE_Sign1, default), der (as openssl expects) or raw"},
    {"detached", 0, NULL, "COSE_Sign1 without the payload (the verifier supplies it)"},
    {"aad", 0, "TEXT", "COSE external AAD: bound into the signature, not stored"},
    {"out", 'o', "FILE", "write the signature to FILE (atomically) instead of stdout"},
    {"force", 0, NULL, "write binary output to stdout even when it is a terminal"},
    {NULL, 0, NULL, NULL}};

/* Sign with the bare signature format (der or raw). */
static int sign_bare(cli_ctx_t *c, const hsmc_key_t *key, int cose, const data_in_t *d, int der)
{
    hsmc_sig_alg_t sa;
    uint8_t sig[1024], dsig[1100];
    size_t n = 0, dn = 0;
    hsmc_err_t r;

    if (hsmc_sig_alg_from_cose(cose, &sa) != HSMC_OK)
        return CLI_EXIT_USAGE;
    if (d->is_digest) {
        if (sa.scheme == HSMC_SIG_EDDSA) {
            cli_err("--digest-hex: EdDSA signs the message itself, not a digest");
            return CLI_EXIT_USAGE;
        }
        if (d->len != hsmc_hash_len(sa.hash)) {
            cli_err("--digest-hex: %s needs a %lu-byte digest, got %lu bytes", sig_alg_name(cose),
                    (unsigned long)hsmc_hash_len(sa.hash), (unsigned long)d->len);
            return CLI_EXIT_USAGE;
        }
        r = hsmc_sign_digest(&c->h, key, sa, d->buf, d->len, sig, sizeof(sig), &n);
    } else {
        r = hsmc_sign(&c->h, key, sa, d->buf, d->len, sig, sizeof(sig), &n);
    }
    if (r != HSMC_OK)
        return cli_fail(c, r, "cannot sign");
    if (der && sa.scheme == HSMC_SIG_ECDSA) {
        r = hsmc_ecdsa_raw_to_der(sig, n, dsig, sizeof(dsig), &dn);
        if (r != HSMC_OK)
            return cli_fail(c, r, "cannot encode the ECDSA signature as DER");
        return write_all(c, dsig, dn, CLI_OUT_BINARY);
    }
    return write_all(c, sig, n, CLI_OUT_BINARY);
}

static int sign_cose(cli_ctx_t *c, const hsmc_key_t *key, int cose, const data_in_t *d)
{
    hsmc_cose_t cc;
    unsigned flags = cli_flag(c, "detached") ? HSMC_COSE_DETACHED : 0u;
    uint8_t *out;
    size_t n = 0;
    hsmc_err_t r;
    int rc;

    hsmc_cose_init(&cc, &c->h);
    r = hsmc_cose_sign1(&cc, key, cose, aad_view(c), view(d->buf, d->len), flags, NULL, 0, &n);
    if (r != HSMC_OK && r != HSMC_ERR_BUFFER) {
        hsmc_cose_free(&cc);
        return cli_fail(c, r, "cannot sign");
    }
    out = (uint8_t *)malloc(n > 0 ? n : 1);
    if (out == NULL) {
        hsmc_cose_free(&cc);
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    r = hsmc_cose_sign1(&cc, key, cose, aad_view(c), view(d->buf, d->len), flags, out, n, &n);
    hsmc_cose_free(&cc);
    if (r != HSMC_OK) {
        free(out);
        return cli_fail(c, r, "cannot sign");
    }
    rc = write_all(c, out, n, CLI_OUT_BINARY);
    free(out);
    return rc;
}

static int cmd_sign(cli_ctx_t *c)
{
    const char *label = cli_opt(c, "key"), *alg = cli_opt(c, "alg");
    int fmt = parse_sig_format(cli_opt(c, "format")), cose = 0, rc;
    hsmc_sig_alg_t sa;
    hsmc_key_t key;
    data_in_t d;

    if (fmt < 0)
        return CLI_EXIT_USAGE;
    if (label == NULL) {
        cli_err("give the signing key: --key LABEL");
        return CLI_EXIT_USAGE;
    }
    if (alg != NULL && parse_sig_alg(alg, &cose) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (fmt != 0 && (cli_flag(c, "detached") || cli_flag(c, "aad"))) {
        cli_err("--detached and --aad are for --format cose");
        return CLI_EXIT_USAGE;
    }
    rc = data_read(c, &d);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (!d.given) {
        cli_err("what to sign? give --message TEXT, --file FILE or --digest-hex HEX");
        return CLI_EXIT_USAGE;
    }
    if (fmt == 0 && d.is_digest) {
        cli_err("--digest-hex goes with --format der or raw: a COSE_Sign1 signs its own "
                "structure, not a digest made elsewhere");
        data_free(&d);
        return CLI_EXIT_USAGE;
    }
    rc = cli_open(c, 0);
    if (rc == CLI_EXIT_OK)
        rc = cli_key_open(c, label, &key, 1);
    if (rc == CLI_EXIT_OK && key.priv.cls != CKO_PRIVATE_KEY) {
        cli_err("key '%.64s' is a secret key; signatures need a private key (EC, RSA, Ed25519)",
                label);
        rc = CLI_EXIT_USAGE;
    }
    if (rc == CLI_EXIT_OK && cose == 0) {
        cose = default_sig_alg(key.alg);
        if (cose == 0) {
            cli_err("cannot tell which algorithm key '%.64s' signs with; give --alg", label);
            rc = CLI_EXIT_USAGE;
        }
    }
    if (rc == CLI_EXIT_OK && hsmc_sig_alg_from_cose(cose, &sa) == HSMC_OK)
        rc = check_sig_alg(&key, sa, cose);
    if (rc == CLI_EXIT_OK)
        rc = fmt == 0 ? sign_cose(c, &key, alg != NULL ? cose : 0, &d)
                      : sign_bare(c, &key, cose, &d, fmt == 1);
    data_free(&d);
    return rc;
}

/* ---- verify ---------------------------------------------------------------------------- */

static const cli_opt_t verify_opts[] = {
    {"key", 'k', "LABEL", "token key to verify with (COSE default: the key named by the kid)"},
    {"pub", 0, "FILE", "verify without the token, with this public key (PEM or DER "
                       "SubjectPublicKeyInfo; COSE only)"},
    {"sig", 's', "FILE", "the signature: COSE_Sign1, DER or raw (- is stdin)"},
    {"alg", 0, "ALG", "der/raw: the algorithm (default from the key)"},
    {"message", 'm', "TEXT", "the signed bytes (detached COSE, der, raw)"},
    {"file", 'f', "FILE", "the signed file (detached COSE, der, raw)"},
    {"digest-hex", 0, "HEX", "der/raw: the digest that was signed"},
    {"format", 0, "FMT", "cose (default), der or raw: as given to `hsmc sign`"},
    {"aad", 0, "TEXT", "the COSE external AAD given when signing"},
    {"out", 'o', "FILE", "COSE with payload: write the verified payload to FILE"},
    {NULL, 0, NULL, NULL}};

static const char *const pub_labels[] = {"PUBLIC KEY", NULL};

/* Report a verification result. */
static int verify_result(cli_ctx_t *c, hsmc_err_t r, const char *alg, const char *by, size_t by_len)
{
    if (r == HSMC_ERR_SIGNATURE) {
        fprintf(stderr, "hsmc: the signature does not verify (%s)\n", hsmc_err_name(r));
        if (hsmc_last_err(&c->h) == r && hsmc_detail(&c->h)[0] != '\0') {
            fputs("hsmc:   detail: ", stderr);
            cli_put_safe(stderr, hsmc_detail(&c->h), strlen(hsmc_detail(&c->h)));
            fputc('\n', stderr);
        }
        if (!c->quiet)
            fputs("hsmc:   hint: the data, the signature or the key is not the one that was "
                  "signed\n",
                  stderr);
        return CLI_EXIT_VERIFY;
    }
    if (r == HSMC_ERR_UNSUPPORTED && cli_flag(c, "pub"))
        return cli_fail_hint(c, r, "cannot verify",
                             "software verification covers ECDSA and RSA; verify EdDSA with the "
                             "token (--key LABEL, or no --pub) or with `openssl pkeyutl -verify "
                             "-rawin`");
    if (r != HSMC_OK)
        return cli_fail(c, r, "cannot verify");
    if (!c->quiet) {
        fprintf(stderr, "hsmc: signature valid (%s, %s '", alg,
                cli_flag(c, "pub") ? "public key in" : "key");
        cli_put_safe(stderr, by, by_len);
        fputs("')\n", stderr);
    }
    return CLI_EXIT_OK;
}

static int verify_bare(cli_ctx_t *c, const unsigned char *sig, size_t sig_len, const data_in_t *d,
                       int der)
{
    const char *label = cli_opt(c, "key"), *alg = cli_opt(c, "alg");
    uint8_t raw[132];
    hsmc_sig_alg_t sa;
    hsmc_key_t key;
    hsmc_err_t r;
    int cose = 0, rc;

    if (label == NULL) {
        cli_err("--format %s needs --key LABEL (the token verifies); --pub works with COSE "
                "only",
                der ? "der" : "raw");
        if (!c->quiet)
            fputs("hsmc:   hint: without the token: openssl dgst -sha256 -verify pub.pem "
                  "-signature SIG FILE\n",
                  stderr);
        return CLI_EXIT_USAGE;
    }
    if (alg != NULL && parse_sig_alg(alg, &cose) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (!d->given) {
        cli_err("what was signed? give --message TEXT, --file FILE or --digest-hex HEX");
        return CLI_EXIT_USAGE;
    }
    rc = cli_open(c, 0);
    if (rc == CLI_EXIT_OK)
        rc = cli_key_open(c, label, &key, 1);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (key.priv.cls != CKO_PRIVATE_KEY) {
        cli_err("key '%.64s' is a secret key; signatures need a key pair", label);
        return CLI_EXIT_USAGE;
    }
    if (cose == 0)
        cose = default_sig_alg(key.alg);
    if (cose == 0 || hsmc_sig_alg_from_cose(cose, &sa) != HSMC_OK) {
        cli_err("cannot tell which algorithm key '%.64s' verifies with; give --alg", label);
        return CLI_EXIT_USAGE;
    }
    rc = check_sig_alg(&key, sa, cose);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (der && sa.scheme == HSMC_SIG_ECDSA) {
        size_t half = ec_half(key.alg);
        if (half == 0 || hsmc_ecdsa_der_to_raw(sig, sig_len, half, raw) != HSMC_OK) {
            cli_err("the signature is not a DER ECDSA signature for a %s key",
                    hsmc_alg_name(key.alg));
            if (!c->quiet)
                fputs("hsmc:   hint: was it made with --format raw?\n", stderr);
            return CLI_EXIT_VERIFY;
        }
        sig = raw;
        sig_len = 2 * half;
    }
    if (d->is_digest) {
        if (sa.scheme == HSMC_SIG_EDDSA || d->len != hsmc_hash_len(sa.hash)) {
            cli_err("--digest-hex: %s needs a %lu-byte digest", sig_alg_name(cose),
                    (unsigned long)hsmc_hash_len(sa.hash));
            return CLI_EXIT_USAGE;
        }
        r = hsmc_verify_digest(&c->h, &key, sa, d->buf, d->len, sig, sig_len);
    } else {
        r = hsmc_verify(&c->h, &key, sa, d->buf, d->len, sig, sig_len);
    }
    return verify_result(c, r, sig_alg_name(cose), key.priv.label, key.priv.label_len);
}

static int verify_cose(cli_ctx_t *c, const unsigned char *msg, size_t msg_len,
                       const data_in_t *d)
{
    const char *label = cli_opt(c, "key"), *pub = cli_opt(c, "pub");
    hsmc_cose_info_t info;
    hsmc_cose_t cc;
    hsmc_key_t key;
    unsigned char *pubfile = NULL, *spki = NULL;
    size_t pubfile_len = 0, spki_len = 0;
    hsmc_view_t det = d->given ? view(d->buf != NULL ? d->buf : (const unsigned char *)"", d->len)
                               : view(NULL, 0);
    char by[HSMC_MAX_LABEL_LEN + 1];
    hsmc_err_t r;
    int rc = CLI_EXIT_OK;

    if (d->is_digest) {
        cli_err("--digest-hex goes with --format der or raw");
        return CLI_EXIT_USAGE;
    }
    if (cli_flag(c, "alg"))
        cli_note(c, "--alg is ignored for COSE: the message names its algorithm");
    memset(&info, 0, sizeof(info));
    if (pub != NULL) {
        char lbl[64];
        int pr;
        rc = cli_read_file(pub, SMALL_FILE_MAX, "--pub", &pubfile, &pubfile_len);
        if (rc != CLI_EXIT_OK)
            return rc;
        pr = cli_pem_find(pubfile, pubfile_len, pub_labels, &spki, &spki_len, lbl, sizeof(lbl));
        if (pr == 1) {
            spki = pubfile; /* DER */
            spki_len = pubfile_len;
            pubfile = NULL;
            pubfile_len = 0;
        } else if (pr != 0) {
            cli_err("--pub: %s is not a PEM \"PUBLIC KEY\" or DER SubjectPublicKeyInfo", pub);
            if (!c->quiet)
                fputs("hsmc:   hint: `hsmc key export-pub LABEL` or `openssl pkey -pubout` "
                      "writes one\n",
                      stderr);
            cli_free(pubfile, pubfile_len);
            return CLI_EXIT_USAGE;
        }
        cli_free(pubfile, pubfile_len);
        hsmc_cose_init(&cc, &c->h);
        r = hsmc_cose_verify1_spki(&cc, view(msg, msg_len), view(spki, spki_len), aad_view(c),
                                   det, 0, &info);
        hsmc_cose_free(&cc);
        cli_free(spki, spki_len);
        snprintf(by, sizeof(by), "%.64s", pub);
    } else {
        rc = cli_open(c, 0);
        if (rc == CLI_EXIT_OK && label != NULL)
            rc = cli_key_open(c, label, &key, 1);
        if (rc != CLI_EXIT_OK)
            return rc;
        hsmc_cose_init(&cc, &c->h);
        if (label != NULL)
            hsmc_cose_set_resolver(&cc, hsmc_cose_resolve_fixed, &key);
        r = hsmc_cose_verify1(&cc, view(msg, msg_len), aad_view(c), det, 0, &info);
        hsmc_cose_free(&cc);
        if (label != NULL)
            snprintf(by, sizeof(by), "%.*s", (int)key.priv.label_len, key.priv.label);
        else
            snprintf(by, sizeof(by), "%.*s", (int)(info.kid.len < HSMC_MAX_LABEL_LEN
                                                       ? info.kid.len
                                                       : HSMC_MAX_LABEL_LEN),
                     info.kid.ptr != NULL ? (const char *)info.kid.ptr : "");
    }
    if (r == HSMC_ERR_ARG && !d->given) {
        cli_err("the COSE_Sign1 is detached: give the signed data with --message or --file");
        return CLI_EXIT_USAGE;
    }
    rc = verify_result(c, r, sig_alg_name(info.alg), by, strlen(by));
    if (rc == CLI_EXIT_OK && cli_flag(c, "out")) {
        cli_out_t out;
        rc = cli_out_open(&out, cli_opt(c, "out"), 0);
        if (rc == CLI_EXIT_OK)
            rc = cli_out_write(&out, info.payload.ptr, info.payload.len);
        if (rc == CLI_EXIT_OK)
            rc = cli_out_commit(&out);
        else
            cli_out_abort(&out);
    }
    return rc;
}

static int cmd_verify(cli_ctx_t *c)
{
    const char *sigf = cli_opt(c, "sig");
    int fmt = parse_sig_format(cli_opt(c, "format")), rc;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    data_in_t d;

    if (fmt < 0)
        return CLI_EXIT_USAGE;
    if (sigf == NULL) {
        cli_err("give the signature: --sig FILE");
        return CLI_EXIT_USAGE;
    }
    if (cli_flag(c, "key") && cli_flag(c, "pub")) {
        cli_err("give either --key (the token verifies) or --pub (software), not both");
        return CLI_EXIT_USAGE;
    }
    if (fmt != 0 && (cli_flag(c, "pub") || cli_flag(c, "aad") || cli_flag(c, "out"))) {
        cli_err("--pub, --aad and --out are for --format cose");
        return CLI_EXIT_USAGE;
    }
    rc = data_read(c, &d);
    if (rc != CLI_EXIT_OK)
        return rc;
    rc = cli_read_file(sigf, fmt == 0 ? CLI_MEM_MAX : SMALL_FILE_MAX, "--sig", &sig, &sig_len);
    if (rc == CLI_EXIT_OK)
        rc = fmt == 0 ? verify_cose(c, sig, sig_len, &d) : verify_bare(c, sig, sig_len, &d, fmt == 1);
    cli_free(sig, sig_len);
    data_free(&d);
    return rc;
}

/* ---- wrap / unwrap ---------------------------------------------------------------------- */

static const struct {
    const char *name;
    hsmc_wrap_mech_t mech;
} wrap_mechs[] = {{"aes-kw", HSMC_WRAP_AES_KW},
                  {"aes-kwp", HSMC_WRAP_AES_KWP},
                  {"rsa-oaep", HSMC_WRAP_RSA_OAEP_SHA1},
                  {"rsa-oaep-256", HSMC_WRAP_RSA_OAEP_SHA256},
                  {NULL, (hsmc_wrap_mech_t)0}};

static const char *mech_name(hsmc_wrap_mech_t m)
{
    size_t i;
    for (i = 0; wrap_mechs[i].name != NULL; i++)
        if (wrap_mechs[i].mech == m)
            return wrap_mechs[i].name;
    return "?";
}

/*
 * The mechanism: --mech, or from the KEK type and whether the wrapped key
 * is a secret key (AES-KW needs a multiple of 8 bytes, which AES keys are;
 * private keys need the padded variant).
 * @return CLI_EXIT_OK or CLI_EXIT_USAGE (printed).
 */
static int pick_mech(cli_ctx_t *c, const hsmc_key_t *kek, int target_secret,
                     hsmc_wrap_mech_t *mech)
{
    const char *m = cli_opt(c, "mech");
    int kek_aes = kek->priv.key_type == CKK_AES;
    size_t i;
    if (m == NULL) {
        if (kek_aes)
            *mech = target_secret ? HSMC_WRAP_AES_KW : HSMC_WRAP_AES_KWP;
        else if (kek->priv.key_type == CKK_RSA)
            *mech = HSMC_WRAP_RSA_OAEP_SHA1;
        else {
            cli_err("key '%.64s' (%s) cannot wrap keys: use an AES or RSA key",
                    kek->priv.label, hsmc_key_type_name(kek->priv.key_type));
            return CLI_EXIT_USAGE;
        }
        return CLI_EXIT_OK;
    }
    for (i = 0; wrap_mechs[i].name != NULL; i++) {
        if (strcmp(wrap_mechs[i].name, m) == 0) {
            *mech = wrap_mechs[i].mech;
            if (kek_aes != (*mech == HSMC_WRAP_AES_KW || *mech == HSMC_WRAP_AES_KWP)) {
                cli_err("--mech %s does not fit key '%.64s', an %s key", m, kek->priv.label,
                        hsmc_key_type_name(kek->priv.key_type));
                return CLI_EXIT_USAGE;
            }
            return CLI_EXIT_OK;
        }
    }
    cli_err("--mech: expected aes-kw, aes-kwp, rsa-oaep or rsa-oaep-256");
    return CLI_EXIT_USAGE;
}

static const cli_opt_t wrap_opts[] = {
    {"kek", 0, "LABEL", "the wrapping key: AES (key wrap) or RSA (OAEP)"},
    {"key", 'k', "LABEL", "the key to wrap; must have been created extractable"},
    {"mech", 0, "MECH", "aes-kw, aes-kwp, rsa-oaep, rsa-oaep-256 (default: aes-kw for "
                        "secret keys, aes-kwp otherwise; rsa-oaep for an RSA KEK)"},
    {"out", 'o', "FILE", "write the wrapped key to FILE (atomically) instead of stdout"},
    {"force", 0, NULL, "write binary output to stdout even when it is a terminal"},
    {NULL, 0, NULL, NULL}};

static int cmd_wrap(cli_ctx_t *c)
{
    const char *keklabel = cli_opt(c, "kek"), *label = cli_opt(c, "key");
    hsmc_key_t kek, key;
    hsmc_wrap_mech_t mech;
    uint8_t out[4096];
    size_t n = 0;
    hsmc_err_t r;
    int rc;

    if (keklabel == NULL || label == NULL) {
        cli_err("give --kek LABEL (the wrapping key) and --key LABEL (the key to wrap)");
        return CLI_EXIT_USAGE;
    }
    rc = cli_open(c, 0);
    if (rc == CLI_EXIT_OK)
        rc = cli_key_open(c, keklabel, &kek, 1);
    if (rc == CLI_EXIT_OK)
        rc = cli_key_open(c, label, &key, 0);
    if (rc == CLI_EXIT_OK)
        rc = pick_mech(c, &kek, key.priv.cls == CKO_SECRET_KEY, &mech);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (!(key.priv.usage & HSMC_ATTR_EXTRACTABLE)) {
        cli_err("cannot wrap key '%.64s': it is not extractable (CKA_EXTRACTABLE is false)",
                label);
        if (!c->quiet)
            fputs("hsmc:   hint: keys hsmc generates or imports never leave the token; only a "
                  "key created extractable (e.g. pkcs11-tool --keygen --extractable) can be "
                  "wrapped\n",
                  stderr);
        return CLI_EXIT_FAIL;
    }
    r = hsmc_wrap(&c->h, &kek, mech, &key, out, sizeof(out), &n);
    if (r != HSMC_OK)
        return cli_fail(c, r, "cannot wrap the key");
    cli_note(c, "wrapped '%.64s' with '%.64s' (%s, %lu bytes)", key.priv.label, kek.priv.label,
             mech_name(mech), (unsigned long)n);
    rc = write_all(c, out, n, CLI_OUT_BINARY | CLI_OUT_SECRET);
    cli_wipe(out, sizeof(out));
    return rc;
}

static const cli_opt_t unwrap_opts[] = {
    {"kek", 0, "LABEL", "the wrapping key (AES or RSA)"},
    {"in", 'i', "FILE", "the wrapped key, as `hsmc wrap` wrote it (- is stdin)"},
    {"label", 0, "LABEL", "label of the new token key; must not exist yet"},
    {"alg", 0, "ALG", "algorithm of the wrapped key: aes256, p256, rsa2048, ..."},
    {"purpose", 0, "PURPOSE", "usage of the new key from a purpose (its algorithm must match)"},
    {"usage", 0, "LIST", "usage of the new key: encrypt,decrypt,... (default: encrypt,decrypt "
                         "for AES, sign otherwise)"},
    {"id", 0, "HEX", "CKA_ID of the new key (default: 16 random bytes)"},
    {"mech", 0, "MECH", "as given to `hsmc wrap` (same default)"},
    {NULL, 0, NULL, NULL}};

static int cmd_unwrap(cli_ctx_t *c)
{
    const char *keklabel = cli_opt(c, "kek"), *in = cli_opt(c, "in"), *label = cli_opt(c, "label");
    uint8_t idbuf[HSMC_MAX_ID_LEN];
    unsigned char *wrapped = NULL;
    size_t wlen = 0;
    hsmc_key_spec_t spec;
    hsmc_key_t kek, key;
    hsmc_wrap_mech_t mech;
    hsmc_err_t r;
    char what[128], hint[128];
    int rc;

    if (keklabel == NULL || in == NULL || label == NULL || !cli_flag(c, "alg")) {
        cli_err("give --kek LABEL, --in FILE, --label NEW and --alg ALG");
        return CLI_EXIT_USAGE;
    }
    rc = cli_key_spec_for_alg(c, &spec, idbuf, sizeof(idbuf));
    if (rc != CLI_EXIT_OK)
        return rc;
    rc = cli_read_file(in, SMALL_FILE_MAX, "--in", &wrapped, &wlen);
    if (rc == CLI_EXIT_OK)
        rc = cli_open(c, 0);
    if (rc == CLI_EXIT_OK)
        rc = cli_key_open(c, keklabel, &kek, 1);
    if (rc == CLI_EXIT_OK)
        rc = pick_mech(c, &kek, cli_alg_is_aes(spec.alg), &mech);
    if (rc != CLI_EXIT_OK) {
        cli_free(wrapped, wlen);
        return rc;
    }
    r = hsmc_unwrap(&c->h, &kek, mech, wrapped, wlen, label, &spec, &key);
    cli_free(wrapped, wlen);
    if (r != HSMC_OK) {
        snprintf(what, sizeof(what), "cannot unwrap into %s key '%.64s'", hsmc_alg_name(spec.alg),
                 label);
        snprintf(hint, sizeof(hint), "the KEK and --mech (%s) must be those given to `hsmc wrap`",
                 mech_name(mech));
        return cli_fail_hint(c, r, what, r == HSMC_ERR_DECRYPT ? hint : NULL);
    }
    fprintf(stdout, "unwrapped %s key '", hsmc_alg_name(key.alg));
    cli_put_safe(stdout, key.priv.label, key.priv.label_len);
    fputs("' usage=", stdout);
    cli_put_flags(stdout, key.priv.usage & 0x7fu, cli_usage_words());
    putchar('\n');
    return CLI_EXIT_OK;
}

/* ---- the commands ------------------------------------------------------------------------- */

static const cli_cmd_t sign_cmds[] = {
    {"sign", "sign data with a token key (COSE_Sign1 or a bare signature)",
     "--key LABEL (--message TEXT | --file FILE | --digest-hex HEX) [OPTIONS]",
     "Signs in the token; the data is hashed on the host. The default output is a\n"
     "COSE_Sign1 (tag 18) carrying the data (--detached leaves it out; the\n"
     "verifier gives it) and the key's label as kid. --format der writes only the\n"
     "signature, as openssl expects it (ECDSA as a DER ECDSA-Sig-Value; RSA and\n"
     "EdDSA signatures as they are); --format raw writes ECDSA as r||s. The\n"
     "algorithm defaults from the key: P-256 ES256, P-384 ES384, P-521 ES512,\n"
     "RSA PS256, Ed25519 EdDSA. --digest-hex signs a digest computed elsewhere\n"
     "(der/raw only). Output is binary: --out FILE, or stdout when it is not a\n"
     "terminal (--force to override).",
     "  hsmc sign --key fw-sign --file firmware.bin --out firmware.cose\n"
     "  hsmc sign --key fw-sign --file firmware.bin --detached --out firmware.sig.cose\n"
     "  hsmc sign --key fw-sign --file fw.bin --format der --out fw.sig\n"
     "  openssl dgst -sha256 -verify fw-sign.pub.pem -signature fw.sig fw.bin\n"
     "  hsmc sign --key rsa-sign --alg RS256 --digest-hex \"$(sha256sum fw.bin | cut -c1-64)\" "
     "--format der\n",
     sign_opts, CLI_PIN_REQUIRED, 0, cmd_sign},
    {"verify", "verify a signature (exit code 8 when it does not verify)",
     "--sig FILE [--key LABEL | --pub FILE] [--message TEXT | --file FILE] [OPTIONS]",
     "Checks a signature made by `hsmc sign`. For a COSE_Sign1 the key is the one\n"
     "its kid names, --key LABEL, or --pub FILE: a public key (PEM or DER\n"
     "SubjectPublicKeyInfo) checked in software, without the token or a PIN\n"
     "(ECDSA and RSA). A detached COSE_Sign1 needs the data (--message or --file);\n"
     "--out writes the payload of an attached one once it verified. der and raw\n"
     "signatures need --key and the data or --digest-hex.\n\n"
     "Exit code 0: the signature is valid. 8: it does not verify (wrong data, key\n"
     "or signature). Other codes: verification could not be done.",
     "  hsmc verify --sig firmware.cose --out firmware.bin\n"
     "  hsmc verify --sig firmware.sig.cose --file firmware.bin --pub fw-sign.pub.pem\n"
     "  hsmc verify --key fw-sign --format der --sig fw.sig --file fw.bin\n",
     verify_opts, CLI_PIN_OPTIONAL, 0, cmd_verify},
    {"wrap", "export an extractable token key encrypted under a KEK",
     "--kek LABEL --key LABEL [--mech MECH] [--out FILE]",
     "Wraps (encrypts) a token key with a key-encryption key, both staying in the\n"
     "token: AES key wrap (RFC 3394 aes-kw, RFC 5649 aes-kwp) with an AES KEK, or\n"
     "RSA-OAEP with an RSA key. Only keys created extractable can be wrapped; keys\n"
     "hsmc generates are not. The output is the wrapped key bytes (binary).",
     "  hsmc wrap --kek transport-kek --key session-key --out session.wrapped\n",
     wrap_opts, CLI_PIN_REQUIRED, 0, cmd_wrap},
    {"unwrap", "import a wrapped key into the token as a new key",
     "--kek LABEL --in FILE --label NEW --alg ALG [--purpose P | --usage LIST]",
     "Unwraps a key written by `hsmc wrap` (or any RFC 3394/5649 or RSA-OAEP\n"
     "wrapping of the same mechanism) inside the token, as a new sensitive,\n"
     "non-extractable token key labelled NEW. --alg says what the wrapped key is;\n"
     "a key of another size is refused and not kept.",
     "  hsmc unwrap --kek transport-kek --in session.wrapped --label session --alg aes256\n",
     unwrap_opts, CLI_PIN_REQUIRED, 0, cmd_unwrap},
    {NULL, NULL, NULL, NULL, NULL, NULL, CLI_PIN_NONE, 0, NULL}};

const cli_group_t cli_group_sign = {"Signatures and key wrapping", "sign, verify, wrap, unwrap",
                                    sign_cmds, 1};
