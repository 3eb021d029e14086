/*
 * cmd_key.c: `hsmc key ...`: keys that never leave the token: generate,
 * list, show, delete, rotate and plan versions, import software keys,
 * export public keys. Also the key helpers the crypto commands share
 * (options to a key spec, opening a key or the latest version of a base
 * label).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Largest key file `key import` reads (an RSA-4096 PEM is about 3.3 KiB). */
#define KEY_FILE_MAX (64u * 1024u)
/* Largest SubjectPublicKeyInfo hsmc exports (RSA-4096 is 550 bytes). */
#define SPKI_MAX 2048u

/* ---- shared helpers ------------------------------------------------------------ */

static const cli_flag_word_t usage_words[] = {
    {HSMC_USE_SIGN, "sign"},       {HSMC_USE_VERIFY, "verify"}, {HSMC_USE_ENCRYPT, "encrypt"},
    {HSMC_USE_DECRYPT, "decrypt"}, {HSMC_USE_WRAP, "wrap"},     {HSMC_USE_UNWRAP, "unwrap"},
    {HSMC_USE_DERIVE, "derive"},   {0, NULL}};

#define USAGE_MASK                                                                       \
    (HSMC_USE_SIGN | HSMC_USE_VERIFY | HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT | HSMC_USE_WRAP | \
     HSMC_USE_UNWRAP | HSMC_USE_DERIVE)

const cli_flag_word_t *cli_usage_words(void)
{
    return usage_words;
}

unsigned cli_alg_bits(hsmc_key_alg_t alg)
{
    switch (alg) {
    case HSMC_ALG_AES128: return 128;
    case HSMC_ALG_AES192: return 192;
    case HSMC_ALG_AES256: return 256;
    case HSMC_ALG_RSA2048: return 2048;
    case HSMC_ALG_RSA3072: return 3072;
    case HSMC_ALG_RSA4096: return 4096;
    case HSMC_ALG_P256: return 256;
    case HSMC_ALG_P384: return 384;
    case HSMC_ALG_P521: return 521;
    case HSMC_ALG_SECP256K1: return 256;
    case HSMC_ALG_ED25519: return 255;
    default: return 0;
    }
}

int cli_alg_is_aes(hsmc_key_alg_t alg)
{
    return alg == HSMC_ALG_AES128 || alg == HSMC_ALG_AES192 || alg == HSMC_ALG_AES256;
}

int cli_alg_is_rsa(hsmc_key_alg_t alg)
{
    return alg == HSMC_ALG_RSA2048 || alg == HSMC_ALG_RSA3072 || alg == HSMC_ALG_RSA4096;
}

static const char alg_list[] =
    "aes128, aes192, aes256, rsa2048, rsa3072, rsa4096, p256, p384, p521, secp256k1, ed25519";
static const char purpose_list[] =
    "ca_root, ca_intermediate, mtls_server, mtls_client, signing, confidentiality, kek, data";
static const char usage_list[] = "sign, verify, encrypt, decrypt, wrap, unwrap, derive";

int cli_parse_alg(const char *opt, const char *text, hsmc_key_alg_t *alg)
{
    if (hsmc_alg_parse(text, alg) == HSMC_OK)
        return CLI_EXIT_OK;
    fputs("hsmc: ", stderr);
    fprintf(stderr, "--%s: unknown key algorithm '", opt);
    cli_put_safe(stderr, text, strlen(text));
    fprintf(stderr, "'\nhsmc:   hint: one of %s\n", alg_list);
    return CLI_EXIT_USAGE;
}

/* "sign,decrypt" -> HSMC_USE_* bits. @return CLI_EXIT_OK or CLI_EXIT_USAGE (printed). */
static int parse_usage(const char *text, unsigned *usage)
{
    const char *p = text;
    *usage = 0;
    while (*p != '\0') {
        size_t n = strcspn(p, ", "), k;
        for (k = 0; n > 0 && usage_words[k].word != NULL; k++)
            if (strlen(usage_words[k].word) == n && strncmp(usage_words[k].word, p, n) == 0)
                break;
        if (n > 0 && usage_words[k].word == NULL) {
            fputs("hsmc: --usage: unknown usage '", stderr);
            cli_put_safe(stderr, p, n);
            fprintf(stderr, "'\nhsmc:   hint: a comma-separated list of %s\n", usage_list);
            return CLI_EXIT_USAGE;
        }
        if (n > 0)
            *usage |= (unsigned)usage_words[k].bit;
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    if (*usage == 0) {
        cli_err("--usage: empty; give a comma-separated list of %s", usage_list);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* The usage an --alg key gets when --usage is not given. */
static unsigned default_usage(hsmc_key_alg_t alg)
{
    if (cli_alg_is_aes(alg))
        return HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT;
    return HSMC_USE_SIGN;
}

int cli_key_spec(cli_ctx_t *c, hsmc_key_spec_t *spec, uint8_t *idbuf, size_t idcap)
{
    const char *purpose = cli_opt(c, "purpose"), *alg = cli_opt(c, "alg");
    const char *usage = cli_opt(c, "usage"), *id = cli_opt(c, "id");
    int rc;

    memset(spec, 0, sizeof(*spec));
    if (purpose != NULL && alg != NULL) {
        cli_err("give either --purpose or --alg, not both");
        fputs("hsmc:   hint: a purpose chooses the algorithm and the usage; --alg with "
              "--usage chooses them yourself\n",
              stderr);
        return CLI_EXIT_USAGE;
    }
    if (purpose != NULL) {
        hsmc_purpose_t p;
        if (usage != NULL) {
            cli_err("--usage goes with --alg; a purpose sets the usage itself");
            return CLI_EXIT_USAGE;
        }
        if (hsmc_purpose_parse(purpose, &p) != HSMC_OK || hsmc_purpose_spec(p, spec) != HSMC_OK) {
            fputs("hsmc: --purpose: unknown purpose '", stderr);
            cli_put_safe(stderr, purpose, strlen(purpose));
            fprintf(stderr, "'\nhsmc:   hint: one of %s\n", purpose_list);
            return CLI_EXIT_USAGE;
        }
    } else if (alg != NULL) {
        rc = cli_parse_alg("alg", alg, &spec->alg);
        if (rc != CLI_EXIT_OK)
            return rc;
        if (usage != NULL) {
            rc = parse_usage(usage, &spec->usage);
            if (rc != CLI_EXIT_OK)
                return rc;
        } else {
            spec->usage = default_usage(spec->alg);
        }
    } else {
        cli_err("give --purpose PURPOSE or --alg ALG");
        fprintf(stderr, "hsmc:   hint: purposes: %s\nhsmc:   hint: algorithms: %s\n",
                purpose_list, alg_list);
        return CLI_EXIT_USAGE;
    }
    if (id != NULL) {
        size_t n = 0;
        if (cli_unhex(id, idbuf, idcap, &n) != 0) {
            cli_err("--id: expected 1 to %lu bytes of hex (e.g. 01 or 0a:1b)",
                    (unsigned long)idcap);
            return CLI_EXIT_USAGE;
        }
        spec->id = idbuf;
        spec->id_len = n;
    }
    return CLI_EXIT_OK;
}

int cli_key_spec_for_alg(cli_ctx_t *c, hsmc_key_spec_t *spec, uint8_t *idbuf, size_t idcap)
{
    const char *alg = cli_opt(c, "alg"), *purpose = cli_opt(c, "purpose");
    const char *usage = cli_opt(c, "usage"), *id = cli_opt(c, "id");
    int rc;

    if (alg == NULL) {
        cli_err("give --alg ALG");
        return CLI_EXIT_USAGE;
    }
    memset(spec, 0, sizeof(*spec));
    rc = cli_parse_alg("alg", alg, &spec->alg);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (purpose != NULL) {
        hsmc_purpose_t p;
        hsmc_key_spec_t ps;
        if (usage != NULL) {
            cli_err("give either --usage or --purpose, not both");
            return CLI_EXIT_USAGE;
        }
        if (hsmc_purpose_parse(purpose, &p) != HSMC_OK || hsmc_purpose_spec(p, &ps) != HSMC_OK) {
            fputs("hsmc: --purpose: unknown purpose '", stderr);
            cli_put_safe(stderr, purpose, strlen(purpose));
            fprintf(stderr, "'\nhsmc:   hint: one of %s\n", purpose_list);
            return CLI_EXIT_USAGE;
        }
        /* A purpose's size may differ (data with aes128), not its family. */
        if (cli_alg_is_aes(ps.alg) != cli_alg_is_aes(spec->alg) ||
            cli_alg_is_rsa(ps.alg) != cli_alg_is_rsa(spec->alg)) {
            cli_err("purpose %s makes %s keys, but --alg is %s", hsmc_purpose_name(p),
                    hsmc_alg_name(ps.alg), hsmc_alg_name(spec->alg));
            return CLI_EXIT_USAGE;
        }
        spec->usage = ps.usage;
    } else if (usage != NULL) {
        rc = parse_usage(usage, &spec->usage);
        if (rc != CLI_EXIT_OK)
            return rc;
    } else {
        spec->usage = default_usage(spec->alg);
    }
    if (id != NULL) {
        size_t n = 0;
        if (cli_unhex(id, idbuf, idcap, &n) != 0) {
            cli_err("--id: expected 1 to %d bytes of hex (e.g. 01 or 0a:1b)", HSMC_MAX_ID_LEN);
            return CLI_EXIT_USAGE;
        }
        spec->id = idbuf;
        spec->id_len = n;
    }
    return CLI_EXIT_OK;
}

int cli_key_open(cli_ctx_t *c, const char *label, hsmc_key_t *key, int latest_ok)
{
    hsmc_err_t r = hsmc_key_open(&c->h, label, key);
    char what[160];
    if (r == HSMC_ERR_OBJECT_NOT_FOUND && latest_ok) {
        hsmc_err_t r2 = hsmc_key_latest(&c->h, label, key);
        if (r2 == HSMC_OK) {
            if (c->verbose > 0 || !c->quiet) {
                fputs("hsmc: using '", stderr);
                cli_put_safe(stderr, key->priv.label, key->priv.label_len);
                fputs("', the latest version of '", stderr);
                cli_put_safe(stderr, label, strlen(label));
                fputs("'\n", stderr);
            }
            return CLI_EXIT_OK;
        }
        if (r2 != HSMC_ERR_OBJECT_NOT_FOUND)
            r = r2;
        else {
            fputs("hsmc: no key labelled '", stderr);
            cli_put_safe(stderr, label, strlen(label));
            fputs("' on the token (nor versions '", stderr);
            cli_put_safe(stderr, label, strlen(label));
            fputs("-vNNNN')\n", stderr);
            if (!c->quiet)
                fputs("hsmc:   hint: run `hsmc key list` to see the keys (a PIN is needed to "
                      "see private ones)\n",
                      stderr);
            return CLI_EXIT_OBJECT;
        }
    }
    if (r == HSMC_OK)
        return CLI_EXIT_OK;
    snprintf(what, sizeof(what), "cannot open key '%.64s'", label);
    return cli_fail(c, r, what);
}

/* ---- attributes ------------------------------------------------------------------ */

/* Read attributes of obj (values the token does not have get CK_UNAVAILABLE_INFORMATION). */
static hsmc_err_t read_attrs(cli_ctx_t *c, hsmc_obj_t *obj, CK_ATTRIBUTE *t, CK_ULONG n)
{
    CK_ULONG sizes[16], i;
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv;

    if (n > 16)
        return HSMC_ERR_ARG;
    for (i = 0; i < n; i++)
        sizes[i] = t[i].ulValueLen;
    memset(&s, 0, sizeof(s));
    do {
        err = hsmc_obj_refresh(&c->h, obj);
        if (err != HSMC_OK)
            return err;
        err = hsmc_session_begin(&c->h, &s);
        if (err != HSMC_OK)
            return err;
        for (i = 0; i < n; i++)
            t[i].ulValueLen = sizes[i];
        rv = hsmc_functions(&c->h)->C_GetAttributeValue(s.handle, obj->handle, t, n);
        /* Per-attribute failures are marked in ulValueLen; the rest were read. */
        if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
            rv == CKR_BUFFER_TOO_SMALL)
            rv = CKR_OK;
        err = hsmc_session_end(&s, rv, "C_GetAttributeValue");
    } while (err == HSMC_RETRY);
    return err;
}

/* -1 unknown, 0 false, 1 true */
static int bool_of(const CK_ATTRIBUTE *a)
{
    if (a->ulValueLen != sizeof(CK_BBOOL))
        return -1;
    return *(const CK_BBOOL *)a->pValue == CK_TRUE;
}

/* The extra attributes `key show` prints. */
typedef struct key_attrs {
    CK_BBOOL b[8];
    CK_ULONG gen_mech;
    CK_ATTRIBUTE t[9];
} key_attrs_t;

enum { KA_LOCAL, KA_ALWAYS_SENSITIVE, KA_NEVER_EXTRACTABLE, KA_MODIFIABLE, KA_COPYABLE,
       KA_DESTROYABLE, KA_ALWAYS_AUTH, KA_WRAP_TRUSTED, KA_GEN_MECH };

static hsmc_err_t read_key_attrs(cli_ctx_t *c, hsmc_obj_t *obj, key_attrs_t *a)
{
    static const CK_ATTRIBUTE_TYPE types[8] = {
        CKA_LOCAL,       CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_MODIFIABLE,
        CKA_COPYABLE,    CKA_DESTROYABLE,      CKA_ALWAYS_AUTHENTICATE, CKA_WRAP_WITH_TRUSTED};
    CK_ULONG i;
    memset(a, 0, sizeof(*a));
    for (i = 0; i < 8; i++) {
        a->t[i].type = types[i];
        a->t[i].pValue = &a->b[i];
        a->t[i].ulValueLen = sizeof(CK_BBOOL);
    }
    a->t[8].type = CKA_KEY_GEN_MECHANISM;
    a->t[8].pValue = &a->gen_mech;
    a->t[8].ulValueLen = sizeof(a->gen_mech);
    return read_attrs(c, obj, a->t, 9);
}

/* The key size in bits from the token, for keys of an algorithm hsmc has no name for. */
static unsigned long token_bits(cli_ctx_t *c, hsmc_obj_t *obj)
{
    CK_ULONG vlen = 0;
    CK_ATTRIBUTE t[2];
    t[0].type = CKA_VALUE_LEN;
    t[0].pValue = &vlen;
    t[0].ulValueLen = sizeof(vlen);
    t[1].type = CKA_MODULUS; /* size-only: NULL value gives the length */
    t[1].pValue = NULL;
    t[1].ulValueLen = 0;
    if (read_attrs(c, obj, t, 2) != HSMC_OK)
        return 0;
    if (obj->cls == CKO_SECRET_KEY && t[0].ulValueLen == sizeof(vlen))
        return (unsigned long)vlen * 8;
    if (t[1].ulValueLen != CK_UNAVAILABLE_INFORMATION && t[1].ulValueLen > 0)
        return (unsigned long)t[1].ulValueLen * 8;
    return 0;
}

/* SHA-256 of the SubjectPublicKeyInfo in hex (hex empty for secret keys). */
static hsmc_err_t spki_fingerprint(cli_ctx_t *c, const hsmc_key_t *key, char *hex, size_t cap)
{
    uint8_t der[SPKI_MAX], md[32];
    size_t len = 0;
    hsmc_err_t r;
    hex[0] = '\0';
    if (key->priv.cls != CKO_PRIVATE_KEY)
        return HSMC_OK;
    r = hsmc_key_export_pub(&c->h, key, der, sizeof(der), &len);
    if (r == HSMC_OK)
        r = hsmc_hash(HSMC_HASH_SHA256, der, len, md);
    if (r == HSMC_OK)
        cli_hex(hex, cap, md, sizeof(md));
    return r;
}

/* Label of a key for messages: quoted, control characters escaped. */
static void put_label(FILE *f, const hsmc_obj_t *o)
{
    fputc('\'', f);
    cli_put_safe(f, o->label, o->label_len);
    fputc('\'', f);
}

static const char *yes_no(int v)
{
    return v < 0 ? "unknown" : v ? "yes" : "no";
}

/* ---- key gen ---------------------------------------------------------------------- */

static const cli_opt_t gen_opts[] = {
    {"label", 0, "LABEL", "label of the new key (CKA_LABEL); must not exist yet"},
    {"purpose", 0, "PURPOSE", "what the key is for; chooses algorithm and usage"},
    {"alg", 0, "ALG", "algorithm instead of a purpose: aes256, p256, rsa3072, ed25519, ..."},
    {"usage", 0, "LIST", "with --alg: sign,decrypt,unwrap,... (default: encrypt,decrypt for AES, "
                         "sign otherwise)"},
    {"id", 0, "HEX", "CKA_ID of the key (default: 16 random bytes from the token)"},
    {"json", 0, NULL, "print the new key as JSON"},
    {NULL, 0, NULL, NULL}};

static void put_key_summary(cli_ctx_t *c, const hsmc_key_t *k, const char *verb)
{
    char id[2 * HSMC_MAX_ID_LEN + 1];
    cli_hex(id, sizeof(id), k->priv.id, k->priv.id_len);
    if (cli_flag(c, "json")) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_obj(&j, NULL);
        cli_json_strn(&j, "label", k->priv.label, k->priv.label_len);
        cli_json_str(&j, "alg", hsmc_alg_name(k->alg));
        cli_json_str(&j, "class", hsmc_class_name(k->priv.cls));
        cli_json_str(&j, "id", id);
        cli_json_flags(&j, "usage", k->priv.usage & USAGE_MASK, usage_words);
        cli_json_bool(&j, "has_public", k->has_pub);
        if (k->version > 0)
            cli_json_num(&j, "version", k->version);
        cli_json_end(&j);
        return;
    }
    printf("%s %s key ", verb, hsmc_alg_name(k->alg));
    put_label(stdout, &k->priv);
    printf(" id=%s usage=", id);
    cli_put_flags(stdout, k->priv.usage & USAGE_MASK, usage_words);
    putchar('\n');
}

static int key_gen(cli_ctx_t *c)
{
    const char *label = cli_opt(c, "label");
    uint8_t idbuf[HSMC_MAX_ID_LEN];
    hsmc_key_spec_t spec;
    hsmc_key_t key;
    hsmc_err_t r;
    char what[128];
    int rc;

    if (label == NULL || label[0] == '\0') {
        cli_err("give --label LABEL for the new key");
        return CLI_EXIT_USAGE;
    }
    rc = cli_key_spec(c, &spec, idbuf, sizeof(idbuf));
    if (rc == CLI_EXIT_OK)
        rc = cli_open(c, 0);
    if (rc != CLI_EXIT_OK)
        return rc;
    r = hsmc_key_generate(&c->h, label, &spec, &key);
    if (r != HSMC_OK) {
        snprintf(what, sizeof(what), "cannot generate %s key '%.64s'", hsmc_alg_name(spec.alg),
                 label);
        return cli_fail(c, r, what);
    }
    put_key_summary(c, &key, "generated");
    return CLI_EXIT_OK;
}

/* ---- key list ---------------------------------------------------------------------- */

typedef struct obj_vec {
    hsmc_obj_t *v;
    size_t n, cap;
    int oom;
} obj_vec_t;

static int collect(void *user, const hsmc_obj_t *o)
{
    obj_vec_t *vec = (obj_vec_t *)user;
    if (vec->n == vec->cap) {
        size_t ncap = vec->cap ? vec->cap * 2 : 32;
        hsmc_obj_t *nv = (hsmc_obj_t *)realloc(vec->v, ncap * sizeof(*nv));
        if (nv == NULL) {
            vec->oom = 1;
            return 1;
        }
        vec->v = nv;
        vec->cap = ncap;
    }
    vec->v[vec->n++] = *o;
    return 0;
}

static int cmp_label(const void *a, const void *b)
{
    const hsmc_obj_t *x = (const hsmc_obj_t *)a, *y = (const hsmc_obj_t *)b;
    int r = strcmp(x->label, y->label);
    return r != 0 ? r : (int)x->cls - (int)y->cls;
}

static const cli_opt_t list_opts[] = {
    {"json", 0, NULL, "print one JSON document on stdout instead of text"},
    {NULL, 0, NULL, NULL}};

/* Base label of a versioned label ("sig-v0002" -> "sig"), length 0 when not versioned. */
static size_t base_len_of(const hsmc_key_t *k)
{
    const char *l = k->priv.label, *v;
    if (k->version == 0)
        return 0;
    v = strrchr(l, '-');
    return v != NULL ? (size_t)(v - l) : 0;
}

static int key_list(cli_ctx_t *c)
{
    static const CK_OBJECT_CLASS classes[2] = {CKO_PRIVATE_KEY, CKO_SECRET_KEY};
    obj_vec_t vec;
    hsmc_obj_query_t q;
    cli_json_t j;
    int json = cli_flag(c, "json"), rc;
    size_t i, shown = 0;
    hsmc_err_t r = HSMC_OK;

    rc = cli_open(c, 0);
    if (rc != CLI_EXIT_OK)
        return rc;
    memset(&vec, 0, sizeof(vec));
    memset(&q, 0, sizeof(q));
    q.has_class = 1;
    for (i = 0; i < 2 && r == HSMC_OK; i++) {
        q.cls = classes[i];
        r = hsmc_list(&c->h, &q, collect, &vec, NULL);
    }
    if (vec.oom) {
        free(vec.v);
        cli_err("out of memory listing the keys");
        return CLI_EXIT_FAIL;
    }
    if (r != HSMC_OK) {
        free(vec.v);
        return cli_fail(c, r, "cannot list the keys");
    }
    if (vec.n > 1)
        qsort(vec.v, vec.n, sizeof(vec.v[0]), cmp_label);
    if (json) {
        cli_json_init(&j, stdout);
        cli_json_obj(&j, NULL);
        cli_json_arr(&j, "keys");
    }
    for (i = 0; i < vec.n; i++) {
        hsmc_obj_t *o = &vec.v[i];
        hsmc_key_t key;
        char id[2 * HSMC_MAX_ID_LEN + 1], size[24];
        const char *alg = "?";
        unsigned long bits = 0;
        int unique = 0;
        size_t blen = 0;

        memset(&key, 0, sizeof(key));
        cli_hex(id, sizeof(id), o->id, o->id_len);
        /* The library's view (algorithm, public half, version) when the label is unique. */
        if (o->label_len > 0 && hsmc_key_open(&c->h, o->label, &key) == HSMC_OK &&
            key.priv.handle == o->handle) {
            unique = 1;
            alg = key.alg != HSMC_ALG_NONE ? hsmc_alg_name(key.alg) : "?";
            bits = cli_alg_bits(key.alg);
            blen = base_len_of(&key);
        }
        if (bits == 0)
            bits = token_bits(c, o);
        if (strcmp(alg, "?") == 0 && o->key_type != CK_UNAVAILABLE_INFORMATION)
            alg = hsmc_key_type_name(o->key_type);
        snprintf(size, sizeof(size), "%lu", bits);
        shown++;
        if (json) {
            cli_json_obj(&j, NULL);
            cli_json_strn(&j, "label", o->label, o->label_len);
            cli_json_str(&j, "class", hsmc_class_name(o->cls));
            cli_json_str(&j, "key_type", hsmc_key_type_name(o->key_type));
            cli_json_str(&j, "alg", alg);
            if (bits > 0)
                cli_json_num(&j, "bits", bits);
            else
                cli_json_null(&j, "bits");
            cli_json_str(&j, "id", id);
            cli_json_flags(&j, "usage", o->usage & USAGE_MASK, usage_words);
            cli_json_bool(&j, "sensitive", (o->usage & HSMC_ATTR_SENSITIVE) != 0);
            cli_json_bool(&j, "extractable", (o->usage & HSMC_ATTR_EXTRACTABLE) != 0);
            if (unique)
                cli_json_bool(&j, "has_public", key.has_pub);
            else
                cli_json_null(&j, "has_public");
            cli_json_bool(&j, "unique_label", unique);
            if (blen > 0) {
                cli_json_strn(&j, "base", o->label, blen);
                cli_json_num(&j, "version", key.version);
            }
            cli_json_end(&j);
            continue;
        }
        printf("%-12s %-10s %5s  label=\"", hsmc_class_name(o->cls), alg,
               bits > 0 ? size : "?");
        cli_put_safe(stdout, o->label, o->label_len);
        printf("\" id=%s usage=", o->id_len > 0 ? id : "-");
        cli_put_flags(stdout, o->usage & USAGE_MASK, usage_words);
        if (o->cls == CKO_PRIVATE_KEY)
            printf(" public=%s", unique ? (key.has_pub ? "yes" : "no") : "?");
        if (blen > 0) {
            printf(" version=%u of \"", key.version);
            cli_put_safe(stdout, o->label, blen);
            putchar('"');
        }
        if (!unique)
            fputs(" (label not unique)", stdout);
        if (o->usage & HSMC_ATTR_EXTRACTABLE)
            fputs(" EXTRACTABLE", stdout);
        putchar('\n');
    }
    if (json) {
        cli_json_end(&j);
        cli_json_num(&j, "count", (unsigned long)shown);
        cli_json_end(&j);
    } else {
        printf("%lu key%s\n", (unsigned long)shown, shown == 1 ? "" : "s");
    }
    free(vec.v);
    return CLI_EXIT_OK;
}

/* ---- key show ----------------------------------------------------------------------- */

static int key_show(cli_ctx_t *c)
{
    const char *label = c->pos[0];
    hsmc_key_t key;
    key_attrs_t ka, pa;
    char id[2 * HSMC_MAX_ID_LEN + 1], fp[65], mech[64];
    unsigned long bits;
    int json = cli_flag(c, "json"), rc, i;
    hsmc_err_t r;
    static const char *const names[8] = {"local", "always_sensitive", "never_extractable",
                                         "modifiable", "copyable", "destroyable",
                                         "always_authenticate", "wrap_with_trusted"};
    static const char *const texts[8] = {"local (made in token)", "always sensitive",
                                         "never extractable", "modifiable", "copyable",
                                         "destroyable", "always authenticate",
                                         "wrap with trusted"};

    if (label == NULL) {
        cli_err("which key? give its label: hsmc key show LABEL");
        return CLI_EXIT_USAGE;
    }
    rc = cli_open(c, 0);
    if (rc == CLI_EXIT_OK)
        rc = cli_key_open(c, label, &key, 1);
    if (rc != CLI_EXIT_OK)
        return rc;
    r = read_key_attrs(c, &key.priv, &ka);
    if (r == HSMC_OK && key.has_pub)
        r = read_key_attrs(c, &key.pub, &pa);
    if (r == HSMC_OK)
        r = spki_fingerprint(c, &key, fp, sizeof(fp));
    if (r != HSMC_OK)
        return cli_fail(c, r, "cannot read the key's attributes");
    bits = cli_alg_bits(key.alg);
    if (bits == 0)
        bits = token_bits(c, &key.priv);
    cli_hex(id, sizeof(id), key.priv.id, key.priv.id_len);
    if (ka.t[KA_GEN_MECH].ulValueLen == sizeof(CK_ULONG) &&
        ka.gen_mech != CK_UNAVAILABLE_INFORMATION)
        snprintf(mech, sizeof(mech), "%s", hsmc_ckm_name(ka.gen_mech));
    else
        mech[0] = '\0';

    if (json) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_obj(&j, NULL);
        cli_json_strn(&j, "label", key.priv.label, key.priv.label_len);
        cli_json_str(&j, "class", hsmc_class_name(key.priv.cls));
        cli_json_str(&j, "key_type", hsmc_key_type_name(key.priv.key_type));
        cli_json_str(&j, "alg", key.alg != HSMC_ALG_NONE ? hsmc_alg_name(key.alg) : NULL);
        if (bits > 0)
            cli_json_num(&j, "bits", bits);
        else
            cli_json_null(&j, "bits");
        cli_json_str(&j, "id", id);
        cli_json_flags(&j, "usage", key.priv.usage & USAGE_MASK, usage_words);
        cli_json_bool(&j, "sensitive", (key.priv.usage & HSMC_ATTR_SENSITIVE) != 0);
        cli_json_bool(&j, "extractable", (key.priv.usage & HSMC_ATTR_EXTRACTABLE) != 0);
        cli_json_bool(&j, "private", (key.priv.usage & HSMC_ATTR_PRIVATE) != 0);
        cli_json_bool(&j, "token_object", (key.priv.usage & HSMC_ATTR_TOKEN) != 0);
        for (i = 0; i < 8; i++) {
            int v = bool_of(&ka.t[i]);
            if (v < 0)
                cli_json_null(&j, names[i]);
            else
                cli_json_bool(&j, names[i], v);
        }
        cli_json_str(&j, "key_gen_mechanism", mech[0] ? mech : NULL);
        if (key.version > 0) {
            cli_json_strn(&j, "base", key.priv.label, base_len_of(&key));
            cli_json_num(&j, "version", key.version);
        }
        if (key.has_pub) {
            cli_json_obj(&j, "public");
            cli_json_strn(&j, "label", key.pub.label, key.pub.label_len);
            cli_json_flags(&j, "usage", key.pub.usage & USAGE_MASK, usage_words);
            cli_json_bool(&j, "private", (key.pub.usage & HSMC_ATTR_PRIVATE) != 0);
            cli_json_end(&j);
        } else {
            cli_json_null(&j, "public");
        }
        cli_json_str(&j, "spki_sha256", fp[0] ? fp : NULL);
        cli_json_end(&j);
        return CLI_EXIT_OK;
    }
    fputs("Key ", stdout);
    put_label(stdout, &key.priv);
    putchar('\n');
    printf("  %-24s %s\n", "class:", hsmc_class_name(key.priv.cls));
    printf("  %-24s %s\n", "key type:", hsmc_key_type_name(key.priv.key_type));
    printf("  %-24s %s", "algorithm:", key.alg != HSMC_ALG_NONE ? hsmc_alg_name(key.alg) : "?");
    if (bits > 0)
        printf(" (%lu bits)", bits);
    putchar('\n');
    printf("  %-24s %s\n", "id:", key.priv.id_len > 0 ? id : "(none)");
    printf("  %-24s ", "usage:");
    cli_put_flags(stdout, key.priv.usage & USAGE_MASK, usage_words);
    putchar('\n');
    printf("  %-24s %s\n", "sensitive:", yes_no((key.priv.usage & HSMC_ATTR_SENSITIVE) != 0));
    printf("  %-24s %s\n", "extractable:",
           yes_no((key.priv.usage & HSMC_ATTR_EXTRACTABLE) != 0));
    for (i = 0; i < 8; i++) {
        char name[40];
        snprintf(name, sizeof(name), "%s:", texts[i]);
        printf("  %-24s %s\n", name, yes_no(bool_of(&ka.t[i])));
    }
    printf("  %-24s %s\n", "private object:", yes_no((key.priv.usage & HSMC_ATTR_PRIVATE) != 0));
    printf("  %-24s %s\n", "token object:", yes_no((key.priv.usage & HSMC_ATTR_TOKEN) != 0));
    if (mech[0])
        printf("  %-24s %s\n", "generated with:", mech);
    if (key.version > 0) {
        printf("  %-24s %u of '", "version:", key.version);
        cli_put_safe(stdout, key.priv.label, base_len_of(&key));
        fputs("'\n", stdout);
    }
    if (key.has_pub) {
        printf("  %-24s ", "public key:");
        put_label(stdout, &key.pub);
        fputs(", usage ", stdout);
        cli_put_flags(stdout, key.pub.usage & USAGE_MASK, usage_words);
        putchar('\n');
    } else if (key.priv.cls == CKO_PRIVATE_KEY) {
        printf("  %-24s %s\n", "public key:", "(no public key object)");
    }
    if (fp[0])
        printf("  %-24s %s\n", "SPKI SHA-256:", fp);
    return CLI_EXIT_OK;
}

static const cli_opt_t show_opts[] = {
    {"json", 0, NULL, "print one JSON document on stdout instead of text"},
    {NULL, 0, NULL, NULL}};

/* ---- key delete ------------------------------------------------------------------------ */

static const cli_opt_t delete_opts[] = {
    {"yes", 'y', NULL, "do not ask; needed when stdin is not a terminal"},
    {"orphans", 0, NULL, "only public keys of LABEL whose private key is gone"},
    {NULL, 0, NULL, NULL}};

/* 1 when --yes was given or the user answers yes to `question`; else 0 (said). */
static int delete_confirmed(const cli_ctx_t *c, const char *question)
{
    if (cli_flag(c, "yes") || cli_confirm(question))
        return 1;
    cli_err("not deleted");
    return 0;
}

/* `key delete --orphans LABEL`: the public keys an interrupted key-pair
 * generation left without their private key. */
static int key_delete_orphans(cli_ctx_t *c, const char *label)
{
    char question[256], what[128];
    unsigned n = 0;
    hsmc_err_t r;
    int rc = cli_open(c, 0);

    if (rc != CLI_EXIT_OK)
        return rc;
    snprintf(question, sizeof(question),
             "Delete the public keys labelled '%.64s' that have no private key on the token?",
             label);
    if (!delete_confirmed(c, question))
        return CLI_EXIT_FAIL;
    r = hsmc_key_remove_orphans(&c->h, label, &n);
    if (r != HSMC_OK) {
        snprintf(what, sizeof(what), "cannot remove the lone public keys of '%.64s' (%u removed)",
                 label, n);
        return cli_fail(c, r, what);
    }
    if (n == 0)
        fputs("none found: no public key labelled '", stdout);
    else
        printf("removed %u public key(s) labelled '", n);
    cli_put_safe(stdout, label, strlen(label));
    fputs(n == 0 ? "' lacks its private key\n" : "' that had no private key\n", stdout);
    return CLI_EXIT_OK;
}

static int key_delete(cli_ctx_t *c)
{
    const char *label = c->pos[0];
    hsmc_key_t key;
    hsmc_err_t r;
    char question[256], what[128];
    int rc;

    if (label == NULL) {
        cli_err("which key? give its label: hsmc key delete LABEL");
        return CLI_EXIT_USAGE;
    }
    if (!cli_flag(c, "yes") && !isatty(STDIN_FILENO)) {
        cli_err("refusing to delete a key without confirmation: stdin is not a terminal");
        fputs("hsmc:   hint: add --yes to delete without asking\n", stderr);
        return CLI_EXIT_USAGE;
    }
    if (cli_flag(c, "orphans"))
        return key_delete_orphans(c, label);
    rc = cli_open(c, 0);
    if (rc == CLI_EXIT_OK)
        rc = cli_key_open(c, label, &key, 0); /* exact label: never "the latest" */
    if (rc != CLI_EXIT_OK)
        return rc;
    snprintf(question, sizeof(question),
             "Delete %s key '%.64s'%s from the token? Data it protects can no longer be "
             "decrypted.",
             key.alg != HSMC_ALG_NONE ? hsmc_alg_name(key.alg) : "the", key.priv.label,
             key.has_pub ? " and its public key" : "");
    if (!delete_confirmed(c, question))
        return CLI_EXIT_FAIL;
    r = hsmc_key_delete(&c->h, &key);
    if (r != HSMC_OK) {
        snprintf(what, sizeof(what), "cannot delete key '%.64s'", label);
        return cli_fail(c, r, what);
    }
    fputs("deleted key '", stdout);
    cli_put_safe(stdout, label, strlen(label));
    fputs("'\n", stdout);
    return CLI_EXIT_OK;
}

/* ---- key rotate / plan ---------------------------------------------------------------------- */

static const cli_opt_t rotate_opts[] = {
    {"purpose", 0, "PURPOSE", "what the key is for; chooses algorithm and usage"},
    {"alg", 0, "ALG", "algorithm instead of a purpose: aes256, p256, rsa3072, ed25519, ..."},
    {"usage", 0, "LIST", "with --alg: sign,decrypt,unwrap,... (default as key gen)"},
    {"id", 0, "HEX", "CKA_ID of the new version (default: 16 random bytes)"},
    {"json", 0, NULL, "print the new key as JSON"},
    {NULL, 0, NULL, NULL}};

static int key_rotate(cli_ctx_t *c)
{
    const char *base = c->pos[0];
    uint8_t idbuf[HSMC_MAX_ID_LEN];
    hsmc_key_spec_t spec;
    hsmc_key_t key;
    hsmc_err_t r;
    char what[128];
    int rc;

    if (base == NULL) {
        cli_err("which key? give the base label: hsmc key rotate BASE --purpose ...");
        return CLI_EXIT_USAGE;
    }
    rc = cli_key_spec(c, &spec, idbuf, sizeof(idbuf));
    if (rc == CLI_EXIT_OK)
        rc = cli_open(c, 0);
    if (rc != CLI_EXIT_OK)
        return rc;
    r = hsmc_key_rotate(&c->h, base, &spec, &key);
    if (r != HSMC_OK) {
        snprintf(what, sizeof(what), "cannot rotate '%.64s'", base);
        return cli_fail(c, r, what);
    }
    if (cli_flag(c, "json")) {
        put_key_summary(c, &key, "created");
    } else {
        cli_put_safe(stdout, key.priv.label, key.priv.label_len);
        putchar('\n');
    }
    if (!c->quiet && key.version > 1)
        fprintf(stderr, "hsmc: older versions stay on the token for decryption and "
                        "verification; delete them with `hsmc key delete` when no data "
                        "needs them\n");
    return CLI_EXIT_OK;
}

static const cli_opt_t plan_opts[] = {
    {"json", 0, NULL, "print one JSON document on stdout instead of text"},
    {NULL, 0, NULL, NULL}};

static int key_plan(cli_ctx_t *c)
{
    const char *base = c->pos[0];
    hsmc_rotation_plan_t plan;
    hsmc_err_t r;
    char label[HSMC_MAX_LABEL_LEN + 1], what[128];
    size_t i;
    int rc, partial = 0;

    if (base == NULL) {
        cli_err("which key? give the base label: hsmc key plan BASE");
        return CLI_EXIT_USAGE;
    }
    rc = cli_open(c, 0);
    if (rc != CLI_EXIT_OK)
        return rc;
    r = hsmc_key_plan(&c->h, base, &plan);
    if (r == HSMC_ERR_LIMIT && plan.count > 0) {
        partial = 1; /* more versions than hsmc tracks: the newest are listed */
    } else if (r != HSMC_OK) {
        snprintf(what, sizeof(what), "cannot plan a rotation of '%.64s'", base);
        return cli_fail(c, r, what);
    }
    if (cli_flag(c, "json")) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_obj(&j, NULL);
        cli_json_str(&j, "base", base);
        cli_json_arr(&j, "versions");
        for (i = 0; i < plan.count; i++) {
            cli_json_obj(&j, NULL);
            cli_json_num(&j, "version", plan.versions[i]);
            if (hsmc_key_version_label(base, plan.versions[i], label, sizeof(label)) == HSMC_OK)
                cli_json_str(&j, "label", label);
            cli_json_bool(&j, "latest", i + 1 == plan.count);
            cli_json_end(&j);
        }
        cli_json_end(&j);
        cli_json_bool(&j, "complete", !partial);
        cli_json_num(&j, "next_version", plan.next);
        cli_json_str(&j, "next_label", plan.next_label);
        cli_json_bool(&j, "changed", 0);
        cli_json_end(&j);
    } else {
        fputs("Key '", stdout);
        cli_put_safe(stdout, base, strlen(base));
        printf("': %lu version%s on the token%s\n", (unsigned long)plan.count,
               plan.count == 1 ? "" : "s", partial ? " (only the newest are listed)" : "");
        for (i = 0; i < plan.count; i++) {
            if (hsmc_key_version_label(base, plan.versions[i], label, sizeof(label)) != HSMC_OK)
                continue;
            fputs("  ", stdout);
            cli_put_safe(stdout, label, strlen(label));
            printf("  %s\n", i + 1 == plan.count ? "latest; stays (new data will use the new "
                                                   "version)"
                                                 : "stays for decryption and verification");
        }
        fputs("Rotation would create: ", stdout);
        cli_put_safe(stdout, plan.next_label, strlen(plan.next_label));
        fputs("\nNothing was changed.\n", stdout);
    }
    return CLI_EXIT_OK;
}

/* ---- key import ------------------------------------------------------------------------------ */

static const cli_opt_t import_opts[] = {
    {"label", 0, "LABEL", "label of the new token key; must not exist yet"},
    {"alg", 0, "ALG", "algorithm of the key in the file: aes256, p256, rsa2048, ..."},
    {"in", 0, "FILE", "the key: raw bytes (AES), PEM or DER private key (EC, RSA); - is stdin"},
    {"format", 0, "FMT", "der, pem or raw (default: pem when the file is PEM, raw for AES, "
                         "der otherwise)"},
    {"usage", 0, "LIST", "sign,decrypt,unwrap,... (default: encrypt,decrypt for AES, sign "
                         "otherwise)"},
    {"purpose", 0, "PURPOSE", "instead of --usage: the usage of a purpose (its algorithm "
                              "must match --alg)"},
    {"id", 0, "HEX", "CKA_ID of the key (default: 16 random bytes)"},
    {NULL, 0, NULL, NULL}};

static const char *const privkey_labels[] = {"PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY",
                                             NULL};

static int key_import(cli_ctx_t *c)
{
    const char *label = cli_opt(c, "label"), *alg = cli_opt(c, "alg"), *in = cli_opt(c, "in");
    const char *fmt = cli_opt(c, "format");
    unsigned char *file = NULL, *der = NULL;
    size_t flen = 0, dlen = 0;
    uint8_t idbuf[HSMC_MAX_ID_LEN];
    hsmc_key_spec_t spec;
    hsmc_key_t key;
    hsmc_err_t r;
    char what[128], pemlabel[64];
    int rc, pem;

    if (label == NULL || alg == NULL || in == NULL) {
        cli_err("give --label LABEL, --alg ALG and --in FILE");
        return CLI_EXIT_USAGE;
    }
    rc = cli_key_spec_for_alg(c, &spec, idbuf, sizeof(idbuf));
    if (rc != CLI_EXIT_OK)
        return rc;
    if (fmt != NULL && strcmp(fmt, "der") != 0 && strcmp(fmt, "pem") != 0 &&
        strcmp(fmt, "raw") != 0) {
        cli_err("--format: expected der, pem or raw");
        return CLI_EXIT_USAGE;
    }
    if (fmt != NULL && (strcmp(fmt, "raw") == 0) != cli_alg_is_aes(spec.alg)) {
        cli_err(cli_alg_is_aes(spec.alg) ? "--format: an AES key is imported from raw bytes"
                                         : "--format raw is for AES keys; EC and RSA keys "
                                           "come as PEM or DER");
        return CLI_EXIT_USAGE;
    }
    rc = cli_read_file(in, KEY_FILE_MAX, "--in", &file, &flen);
    if (rc != CLI_EXIT_OK)
        return rc;

    /* Without --format, an EC/RSA file is PEM when it has a BEGIN line (pr != 1). */
    pem = fmt != NULL ? strcmp(fmt, "pem") == 0 : !cli_alg_is_aes(spec.alg);
    if (pem) {
        int pr = cli_pem_find(file, flen, privkey_labels, &der, &dlen, pemlabel,
                              sizeof(pemlabel));
        if (pr == 1 && fmt == NULL)
            pem = 0;
        else if (pr != 0) {
            if (pr == 1 || pr == -1)
                cli_err("--in: %s is not a valid PEM file", in);
            else if (pr == -2 || strcmp(pemlabel, "ENCRYPTED PRIVATE KEY") == 0)
                cli_err("--in: the private key in %s is encrypted", in);
            else
                cli_err("--in: %s holds '%s', not a private key", in, pemlabel);
            if (pr == -2 || strcmp(pemlabel, "ENCRYPTED PRIVATE KEY") == 0)
                fputs("hsmc:   hint: decrypt it to a pipe, e.g. `openssl pkey -in key.pem | "
                      "hsmc key import --in - ...`\n",
                      stderr);
            else
                fputs("hsmc:   hint: expected a PEM block PRIVATE KEY, EC PRIVATE KEY or RSA "
                      "PRIVATE KEY (openssl genpkey, openssl ecparam -genkey)\n",
                      stderr);
            cli_free(file, flen);
            return CLI_EXIT_USAGE;
        }
    }
    if (pem) {
        cli_free(file, flen);
        file = NULL;
        flen = 0;
    } else {
        der = file;
        dlen = flen;
        file = NULL;
        flen = 0;
    }
    rc = cli_open(c, 0);
    if (rc != CLI_EXIT_OK) {
        cli_free(der, dlen);
        return rc;
    }
    r = hsmc_key_import(&c->h, label, &spec, der, dlen, &key);
    cli_free(der, dlen);
    if (r != HSMC_OK) {
        snprintf(what, sizeof(what), "cannot import %s key '%.64s'", hsmc_alg_name(spec.alg),
                 label);
        return cli_fail_hint(c, r, what,
                             (r == HSMC_ERR_ARG || r == HSMC_ERR_FORMAT) &&
                                     !cli_alg_is_aes(spec.alg)
                                 ? "check that --alg matches the key in the file (`openssl "
                                   "pkey -in FILE -noout -text` shows it)"
                                 : NULL);
    }
    put_key_summary(c, &key, "imported");
    return CLI_EXIT_OK;
}

/* ---- key export-pub ----------------------------------------------------------------------------- */

static const cli_opt_t export_opts[] = {
    {"out", 'o', "FILE", "write to FILE (atomically) instead of stdout"},
    {"format", 0, "FMT", "pem (default) or der"},
    {"force", 0, NULL, "write DER to stdout even when it is a terminal"},
    {NULL, 0, NULL, NULL}};

static int key_export_pub(cli_ctx_t *c)
{
    const char *label = c->pos[0], *fmt = cli_opt(c, "format");
    uint8_t der[SPKI_MAX];
    size_t len = 0;
    hsmc_key_t key;
    cli_out_t out;
    hsmc_err_t r;
    int rc, is_der;

    if (label == NULL) {
        cli_err("which key? give its label: hsmc key export-pub LABEL");
        return CLI_EXIT_USAGE;
    }
    if (fmt != NULL && strcmp(fmt, "pem") != 0 && strcmp(fmt, "der") != 0) {
        cli_err("--format: expected pem or der");
        return CLI_EXIT_USAGE;
    }
    is_der = fmt != NULL && strcmp(fmt, "der") == 0;
    rc = cli_open(c, 0);
    if (rc == CLI_EXIT_OK)
        rc = cli_key_open(c, label, &key, 1);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (key.priv.cls == CKO_SECRET_KEY) {
        cli_err("'%.64s' is a secret (%s) key: it has no public key", label,
                hsmc_key_type_name(key.priv.key_type));
        return CLI_EXIT_USAGE;
    }
    r = hsmc_key_export_pub(&c->h, &key, der, sizeof(der), &len);
    if (r != HSMC_OK)
        return cli_fail(c, r, "cannot export the public key");
    rc = cli_out_open(&out, cli_opt(c, "out"),
                      (is_der ? CLI_OUT_BINARY : 0u) | (cli_flag(c, "force") ? CLI_OUT_FORCE : 0u));
    if (rc != CLI_EXIT_OK)
        return rc;
    rc = is_der ? cli_out_write(&out, der, len) : cli_pem_write(&out, "PUBLIC KEY", der, len);
    if (rc != CLI_EXIT_OK) {
        cli_out_abort(&out);
        return rc;
    }
    return cli_out_commit(&out);
}

/* ---- the group ----------------------------------------------------------------------------------- */

static const cli_cmd_t key_cmds[] = {
    {"gen", "generate a key in the token", "--label LABEL (--purpose P | --alg A [--usage LIST]) "
                                           "[OPTIONS]",
     "Generates a key that never leaves the token: token object, private, sensitive,\n"
     "not extractable, with only the usage flags asked for (every other usage flag\n"
     "is set false). hsmc checks afterwards that the token marks it local, always\n"
     "sensitive and never extractable, and destroys it otherwise.\n\n"
     "Purposes: ca_root (p384, sign), ca_intermediate, mtls_server, mtls_client,\n"
     "signing (p256, sign), confidentiality (rsa3072, decrypt+unwrap), kek (aes256,\n"
     "wrap+unwrap), data (aes256, encrypt+decrypt).\n"
     "Algorithms: aes128 aes192 aes256 rsa2048 rsa3072 rsa4096 p256 p384 p521\n"
     "secp256k1 ed25519. Usages: sign, verify, encrypt, decrypt, wrap, unwrap,\n"
     "derive; a key pair takes the private key's usages (sign, decrypt, unwrap,\n"
     "derive), its public key gets the matching ones. A label that exists already\n"
     "is refused (exit code 10).",
     "  hsmc key gen --label device --purpose mtls_client\n"
     "  hsmc key gen --label backup-kek --purpose kek\n"
     "  hsmc key gen --label fw-sign --alg p384 --usage sign --id 01\n",
     gen_opts, CLI_PIN_REQUIRED, 0, key_gen},
    {"list", "list the keys: algorithm, size, usage, public half, version", "[--json] [OPTIONS]",
     "One line per private or secret key: class, algorithm, size in bits, label, id,\n"
     "usage, whether its public key is on the token, and for versioned labels\n"
     "(BASE-v0001, BASE-v0002, ...) the version and base. Extractable keys are\n"
     "marked EXTRACTABLE. Public keys, certificates and data objects are not\n"
     "listed (`hsmc object list` shows every object).",
     "  hsmc key list --token gw --pin-file /run/secrets/pin\n"
     "  hsmc key list --json\n",
     list_opts, CLI_PIN_REQUIRED, 0, key_list},
    {"show", "show everything about one key", "LABEL [--json] [OPTIONS]",
     "Every attribute that matters for trusting a key: class, algorithm and size, id,\n"
     "usage, sensitive, extractable, local (generated in the token), always\n"
     "sensitive, never extractable, modifiable, copyable, destroyable, the\n"
     "generation mechanism, the public key object and the SHA-256 fingerprint of\n"
     "the SubjectPublicKeyInfo (the same as `openssl pkey -pubin -outform der |\n"
     "sha256sum`). A base label with versions shows the latest version.",
     "  hsmc key show device\n"
     "  hsmc key show backup-kek --json\n",
     show_opts, CLI_PIN_REQUIRED, 1, key_show},
    {"delete", "delete a key (and its public key)", "LABEL [--orphans] [--yes] [OPTIONS]",
     "Destroys the private or secret key with exactly this label and its public\n"
     "key. Asks first on a terminal; without a terminal --yes is required. Data\n"
     "encrypted with the key can no longer be decrypted.\n\n"
     "With --orphans, destroys only the public keys labelled LABEL whose private\n"
     "key is not on the token: what a key-pair generation cut short (a killed\n"
     "process) leaves, after which the label counts as taken but no key opens.\n"
     "Complete key pairs, secret keys, certificates and other objects stay. A\n"
     "public key whose private key has another label but the same id stays too.\n"
     "Prints how many it removed; none found is not an error (exit code 0).",
     "  hsmc key delete old-key\n"
     "  hsmc key delete data-v0001 --yes\n"
     "  hsmc key delete --orphans device-key --yes\n",
     delete_opts, CLI_PIN_REQUIRED, 1, key_delete},
    {"rotate", "make the next version of a versioned key", "BASE (--purpose P | --alg A) [OPTIONS]",
     "Generates BASE-vNNNN, one above the highest version on the token, and prints\n"
     "its label. Older versions stay, so data made with them can still be decrypted\n"
     "or verified; new encryption with BASE uses the latest version. `hsmc key plan`\n"
     "shows what would happen without changing anything.",
     "  hsmc key rotate data --purpose data\n"
     "  hsmc key rotate fw-sign --alg p256 --usage sign\n",
     rotate_opts, CLI_PIN_REQUIRED, 1, key_rotate},
    {"plan", "show what a rotation would do (changes nothing)", "BASE [--json] [OPTIONS]",
     "Lists the versions of BASE on the token (they all stay, for decryption and\n"
     "verification) and the label a rotation would create.",
     "  hsmc key plan data\n",
     plan_opts, CLI_PIN_REQUIRED, 1, key_plan},
    {"import", "import a software key into the token", "--label LABEL --alg ALG --in FILE "
                                                       "[OPTIONS]",
     "Stores a key that exists outside the token as a sensitive, non-extractable\n"
     "token key (CKA_LOCAL is false: the token knows it was made elsewhere). AES\n"
     "keys are raw bytes (16, 24 or 32); EC and RSA private keys are PEM or DER as\n"
     "openssl writes them (PKCS#8, SEC1, PKCS#1). Encrypted PEM is refused: decrypt\n"
     "it into a pipe. hsmc never prints key bytes and wipes its copies; delete the\n"
     "file afterwards if the token is now the only place the key should be.",
     "  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out k.pem\n"
     "  hsmc key import --label legacy --alg p256 --in k.pem\n"
     "  hsmc key import --label wrapped-data --alg aes256 --in key.bin --usage encrypt,decrypt\n",
     import_opts, CLI_PIN_REQUIRED, 0, key_import},
    {"export-pub", "write a key's public key (SubjectPublicKeyInfo)", "LABEL [--out FILE] "
                                                                      "[--format pem|der]",
     "Writes the public key as SubjectPublicKeyInfo, PEM (\"PUBLIC KEY\") by default,\n"
     "as `openssl pkey -pubout` does. DER is binary and is not written to a terminal\n"
     "unless --force. A base label with versions exports the latest version.",
     "  hsmc key export-pub device > device.pub.pem\n"
     "  hsmc key export-pub device --format der --out device.pub.der\n"
     "  hsmc key export-pub device | openssl pkey -pubin -noout -text\n",
     export_opts, CLI_PIN_REQUIRED, 1, key_export_pub},
    {NULL, NULL, NULL, NULL, NULL, NULL, CLI_PIN_NONE, 0, NULL}};

const cli_group_t cli_group_key = {"key", "Generate, inspect, rotate, import and delete token keys.",
                                   key_cmds, 0};
