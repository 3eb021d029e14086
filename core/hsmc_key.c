/*
 * Keys that never leave the token (key.h): generation with safe templates,
 * purpose profiles, find-or-create, versioned rotation, import, public-key
 * export as SubjectPublicKeyInfo, deletion, removal of the lone public keys
 * an interrupted pair generation leaves.
 *
 * Units of work. Every token operation here (check the label, generate,
 * read back, destroy on failure) runs on one borrowed pool session. When
 * the session, login or token is lost half-way, the unit ends with that
 * CK_RV, hsmc recovers, and the whole unit runs again. A retried
 * generation first removes the key objects an interrupted attempt left
 * (same label and the same CKA_ID, chosen before the first attempt), so a
 * retry never leaves a duplicate. Handles found before a recovery are
 * looked up again by label, id and class inside the unit.
 *
 * Attributes. Boolean attributes travel as bits: HSMC_USE_* / HSMC_ATTR_*
 * of object.h, plus a few private bits below. One table drives the
 * templates (each usage flag of the object class set TRUE or FALSE
 * explicitly) and the read-back check (the same flags, plus CKA_LOCAL,
 * CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE for generated keys).
 *
 * Memory: no allocation. Templates live in per-helper frames (a pair's two
 * templates in two frames); constants are static const. Import hands the
 * token the key's parts where they sit in the caller's DER (see
 * hsmc_key_der.h). SubjectPublicKeyInfo is written by hand straight into
 * the caller's buffer (the public values are read into its tail and moved
 * into place), so even RSA-4096 needs no scratch buffer; the size-only
 * pass is exact (an upper bound for RSA keys whose token does not report
 * CKA_MODULUS_BITS). The largest frame is the RSA private-key import
 * template (21 attributes, about 280 bytes on Cortex-M4).
 *
 * Ed25519: CKA_EC_PARAMS is given as RFC 8410's OID first, then as the
 * curve name "edwards25519" when the token refuses the OID. SoftHSM2 2.6
 * takes the OID, keeps it on the public key and names the curve on the
 * private key; both spellings are recognised everywhere here.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hsmc_key_der.h"

#define HSMC_COUNT(a) (sizeof(a) / sizeof((a)[0]))
/* PKCS#11 declares template values non-const; tokens only read them. */
#define HSMC_IN(p) ((void *)(uintptr_t)(const void *)(p))

/* ---- Boolean attributes as bits -------------------------------------------- */

/* Bits 0-6 and 8-11 are object.h's HSMC_USE_* and HSMC_ATTR_*. */
#define HSMC_B_SIGN_RECOVER 0x0080u
#define HSMC_B_LOCAL 0x1000u
#define HSMC_B_ALWAYS_SENSITIVE 0x2000u
#define HSMC_B_NEVER_EXTRACTABLE 0x4000u
#define HSMC_B_VERIFY_RECOVER 0x8000u
#define HSMC_B_COUNT 16u
/* The bits hsmc_obj_t.usage carries. */
#define HSMC_B_OBJ_BITS 0x0F7Fu

#define HSMC_USES_ALL                                                                      \
    (HSMC_USE_SIGN | HSMC_USE_VERIFY | HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT | HSMC_USE_WRAP | \
     HSMC_USE_UNWRAP | HSMC_USE_DERIVE)
/* The usage flags each object class has (all set explicitly in templates). */
#define HSMC_USES_SECRET HSMC_USES_ALL
#define HSMC_USES_PRIVATE \
    (HSMC_USE_SIGN | HSMC_USE_DECRYPT | HSMC_USE_UNWRAP | HSMC_USE_DERIVE | HSMC_B_SIGN_RECOVER)
#define HSMC_USES_PUBLIC \
    (HSMC_USE_VERIFY | HSMC_USE_ENCRYPT | HSMC_USE_WRAP | HSMC_USE_DERIVE | HSMC_B_VERIFY_RECOVER)

/* Indexed by bit number. */
static const struct {
    CK_ATTRIBUTE_TYPE type;
    const char *name;
} hsmc_bools[HSMC_B_COUNT] = {
    {CKA_SIGN, "CKA_SIGN"},
    {CKA_VERIFY, "CKA_VERIFY"},
    {CKA_ENCRYPT, "CKA_ENCRYPT"},
    {CKA_DECRYPT, "CKA_DECRYPT"},
    {CKA_WRAP, "CKA_WRAP"},
    {CKA_UNWRAP, "CKA_UNWRAP"},
    {CKA_DERIVE, "CKA_DERIVE"},
    {CKA_SIGN_RECOVER, "CKA_SIGN_RECOVER"},
    {CKA_SENSITIVE, "CKA_SENSITIVE"},
    {CKA_EXTRACTABLE, "CKA_EXTRACTABLE"},
    {CKA_TOKEN, "CKA_TOKEN"},
    {CKA_PRIVATE, "CKA_PRIVATE"},
    {CKA_LOCAL, "CKA_LOCAL"},
    {CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE"},
    {CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE"},
    {CKA_VERIFY_RECOVER, "CKA_VERIFY_RECOVER"},
};
/* object.h's bits must sit where the table says. */
typedef char hsmc_key_bits_match[(HSMC_USE_DERIVE == 0x40u && HSMC_ATTR_SENSITIVE == 0x100u &&
                                  HSMC_ATTR_PRIVATE == 0x800u)
                                     ? 1
                                     : -1];

/* Usage names for messages, bit 0..6. */
static const char *const hsmc_use_names[7] = {"sign",  "verify", "encrypt", "decrypt",
                                              "wrap",  "unwrap", "derive"};

static const CK_BBOOL hsmc_true = CK_TRUE;
static const CK_BBOOL hsmc_false = CK_FALSE;
static const CK_BYTE hsmc_f4[] = {0x01, 0x00, 0x01};

/* ---- Algorithms and purposes ----------------------------------------------- */

/* CKA_EC_PARAMS: DER OIDs of the curves. */
static const CK_BYTE hsmc_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const CK_BYTE hsmc_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const CK_BYTE hsmc_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const CK_BYTE hsmc_k256[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};
/* Ed25519: RFC 8410's OID, and the PrintableString PKCS#11 3.0 names. */
static const CK_BYTE hsmc_ed25519_oid[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
static const CK_BYTE hsmc_ed25519_name[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd',
                                            's',  '2',  '5', '5', '1', '9'};

typedef struct hsmc_alg_info {
    const char *name;
    CK_KEY_TYPE kt;
    CK_MECHANISM_TYPE gen;
    CK_ULONG size;          /* AES: key bytes; RSA: modulus bits; EC: field bits */
    const CK_BYTE *params;  /* EC: CKA_EC_PARAMS */
    CK_ULONG params_len;
    unsigned uses;          /* usages the private/secret key may have */
} hsmc_alg_info_t;

#define HSMC_AES(name, bytes) \
    {name, CKK_AES, CKM_AES_KEY_GEN, bytes, NULL, 0, HSMC_USES_SECRET}
#define HSMC_RSA(name, bits)                                 \
    {name, CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, bits, NULL, 0, \
     HSMC_USE_SIGN | HSMC_USE_DECRYPT | HSMC_USE_UNWRAP}
#define HSMC_EC(name, bits, oid) \
    {name, CKK_EC, CKM_EC_KEY_PAIR_GEN, bits, oid, sizeof oid, HSMC_USE_SIGN | HSMC_USE_DERIVE}

static const hsmc_alg_info_t hsmc_algs[HSMC_ALG_COUNT] = {
    {"none", CK_UNAVAILABLE_INFORMATION, CK_UNAVAILABLE_INFORMATION, 0, NULL, 0, 0},
    HSMC_AES("aes128", 16),
    HSMC_AES("aes192", 24),
    HSMC_AES("aes256", 32),
    HSMC_RSA("rsa2048", 2048),
    HSMC_RSA("rsa3072", 3072),
    HSMC_RSA("rsa4096", 4096),
    HSMC_EC("p256", 256, hsmc_p256),
    HSMC_EC("p384", 384, hsmc_p384),
    HSMC_EC("p521", 521, hsmc_p521),
    HSMC_EC("secp256k1", 256, hsmc_k256),
    {"ed25519", CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN, 255, hsmc_ed25519_oid,
     sizeof hsmc_ed25519_oid, HSMC_USE_SIGN},
};

/* Other spellings hsmc_alg_parse accepts ('-' and '_' are the same). */
static const struct {
    const char *name;
    hsmc_key_alg_t alg;
} hsmc_alg_aliases[] = {
    {"p_256", HSMC_ALG_P256},         {"secp256r1", HSMC_ALG_P256},
    {"prime256v1", HSMC_ALG_P256},    {"p_384", HSMC_ALG_P384},
    {"secp384r1", HSMC_ALG_P384},     {"p_521", HSMC_ALG_P521},
    {"secp521r1", HSMC_ALG_P521},     {"edwards25519", HSMC_ALG_ED25519},
};

static const struct {
    const char *name;
    hsmc_key_alg_t alg;
    unsigned usage;
} hsmc_purposes[HSMC_PURPOSE_COUNT] = {
    {"none", HSMC_ALG_NONE, 0},
    {"ca_root", HSMC_ALG_P384, HSMC_USE_SIGN},
    {"ca_intermediate", HSMC_ALG_P256, HSMC_USE_SIGN},
    {"mtls_server", HSMC_ALG_P256, HSMC_USE_SIGN},
    {"mtls_client", HSMC_ALG_P256, HSMC_USE_SIGN},
    {"signing", HSMC_ALG_P256, HSMC_USE_SIGN},
    {"confidentiality", HSMC_ALG_RSA3072, HSMC_USE_DECRYPT | HSMC_USE_UNWRAP},
    {"kek", HSMC_ALG_AES256, HSMC_USE_WRAP | HSMC_USE_UNWRAP},
    {"data", HSMC_ALG_AES256, HSMC_USE_ENCRYPT | HSMC_USE_DECRYPT},
};

/* Case-insensitive, '-' == '_'; b is canonical (lower case, '_'). */
static int hsmc_name_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        char c = *a;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c == '-')
            c = '_';
        if (c != *b)
            return 0;
        if (c == '\0')
            return 1;
    }
}

const char *hsmc_alg_name(hsmc_key_alg_t alg)
{
    if ((unsigned)alg >= (unsigned)HSMC_ALG_COUNT)
        return "?";
    return hsmc_algs[alg].name;
}

hsmc_err_t hsmc_alg_parse(const char *name, hsmc_key_alg_t *alg)
{
    size_t i;

    if (name == NULL || alg == NULL)
        return HSMC_ERR_ARG;
    for (i = 1; i < HSMC_ALG_COUNT; i++) {
        if (hsmc_name_eq(name, hsmc_algs[i].name)) {
            *alg = (hsmc_key_alg_t)i;
            return HSMC_OK;
        }
    }
    for (i = 0; i < HSMC_COUNT(hsmc_alg_aliases); i++) {
        if (hsmc_name_eq(name, hsmc_alg_aliases[i].name)) {
            *alg = hsmc_alg_aliases[i].alg;
            return HSMC_OK;
        }
    }
    return HSMC_ERR_ARG;
}

const char *hsmc_purpose_name(hsmc_purpose_t purpose)
{
    if ((unsigned)purpose >= (unsigned)HSMC_PURPOSE_COUNT)
        return "?";
    return hsmc_purposes[purpose].name;
}

hsmc_err_t hsmc_purpose_parse(const char *name, hsmc_purpose_t *purpose)
{
    size_t i;

    if (name == NULL || purpose == NULL)
        return HSMC_ERR_ARG;
    for (i = 1; i < HSMC_PURPOSE_COUNT; i++) {
        if (hsmc_name_eq(name, hsmc_purposes[i].name)) {
            *purpose = (hsmc_purpose_t)i;
            return HSMC_OK;
        }
    }
    return HSMC_ERR_ARG;
}

hsmc_err_t hsmc_purpose_spec(hsmc_purpose_t purpose, hsmc_key_spec_t *spec)
{
    if (spec == NULL || purpose == HSMC_PURPOSE_NONE ||
        (unsigned)purpose >= (unsigned)HSMC_PURPOSE_COUNT)
        return HSMC_ERR_ARG;
    memset(spec, 0, sizeof *spec);
    spec->alg = hsmc_purposes[purpose].alg;
    spec->usage = hsmc_purposes[purpose].usage;
    return HSMC_OK;
}

/* ---- Versioned labels ------------------------------------------------------ */

#define HSMC_VERSION_MAX 999999999u
#define HSMC_VERSION_SUFFIX_MIN 6u /* "-v0001" */

/* Decimal digits of v, at least 4 (the %04u width). */
static size_t hsmc_version_digits(unsigned v)
{
    size_t n = 1;
    while (v >= 10u) {
        v /= 10u;
        n++;
    }
    return n < 4 ? 4 : n;
}

/* The version of a label "<base>-vNNNN" (exactly as hsmc_key_version_label
 * writes it), or 0. base NULL: any base. */
static unsigned hsmc_label_version(const char *label, size_t len, const char *base,
                                   size_t base_len)
{
    size_t start, i, nd;
    unsigned v = 0;

    if (base != NULL) {
        if (len < base_len + HSMC_VERSION_SUFFIX_MIN || memcmp(label, base, base_len) != 0)
            return 0;
        start = base_len;
    } else {
        /* The last "-v": digits follow it up to the end. */
        for (start = len; start > 0 && label[start - 1] >= '0' && label[start - 1] <= '9';)
            start--;
        if (start < 3) /* at least one byte of base */
            return 0;
        start -= 2;
    }
    if (label[start] != '-' || label[start + 1] != 'v')
        return 0;
    nd = len - start - 2;
    if (nd < 4 || nd > 9)
        return 0;
    for (i = start + 2; i < len; i++) {
        if (label[i] < '0' || label[i] > '9')
            return 0;
        v = v * 10u + (unsigned)(label[i] - '0');
    }
    if (v == 0 || hsmc_version_digits(v) != nd)
        return 0;
    return v;
}

hsmc_err_t hsmc_key_version_label(const char *base, unsigned version, char *out, size_t cap)
{
    size_t len;

    if (base == NULL || base[0] == '\0' || out == NULL || version == 0 ||
        version > HSMC_VERSION_MAX)
        return HSMC_ERR_ARG;
    len = strlen(base) + 2 + hsmc_version_digits(version);
    if (len > HSMC_MAX_LABEL_LEN)
        return HSMC_ERR_ARG;
    if (cap <= len) {
        if (cap > 0)
            out[0] = '\0';
        return HSMC_ERR_BUFFER;
    }
    (void)snprintf(out, cap, "%s-v%04u", base, version);
    return HSMC_OK;
}

/* ---- Argument checks ------------------------------------------------------- */

/* The key a call fills: given, and empty until the call succeeds. */
static hsmc_err_t hsmc_out_clear(hsmc_t *h, hsmc_key_t *out)
{
    if (out == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "no key to fill (out is NULL)");
    memset(out, 0, sizeof *out);
    return HSMC_OK;
}

static hsmc_err_t hsmc_check_label(hsmc_t *h, const char *label, size_t *len)
{
    if (label == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "key label is NULL");
    *len = strlen(label);
    if (*len == 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "key label is empty");
    if (*len > HSMC_MAX_LABEL_LEN)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "key label is %u bytes; HSMC_MAX_LABEL_LEN is %d", (unsigned)*len,
                          HSMC_MAX_LABEL_LEN);
    return HSMC_OK;
}

/* Lowest set bit's number (bits != 0). */
static unsigned hsmc_low_bit(unsigned bits)
{
    unsigned i = 0;
    while ((bits & 1u) == 0) {
        bits >>= 1;
        i++;
    }
    return i;
}

static hsmc_err_t hsmc_check_spec(hsmc_t *h, const hsmc_key_spec_t *spec)
{
    const hsmc_alg_info_t *ai;
    unsigned extra;

    if (spec == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "key spec is NULL");
    if (spec->alg == HSMC_ALG_NONE || (unsigned)spec->alg >= (unsigned)HSMC_ALG_COUNT)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "unknown key algorithm %d (aes128..ed25519, see key.h)",
                          (int)spec->alg);
    ai = &hsmc_algs[spec->alg];
    if (spec->usage == 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "no usage for the %s key: give HSMC_USE_* flags or use a purpose",
                          ai->name);
    if ((spec->usage & ~(unsigned)HSMC_USES_ALL) != 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "key usage 0x%x has bits that are not HSMC_USE_* flags",
                          spec->usage);
    extra = spec->usage & ~ai->uses;
    if (extra != 0) {
        if (ai->kt != CKK_AES && (extra & (HSMC_USE_VERIFY | HSMC_USE_ENCRYPT | HSMC_USE_WRAP)))
            return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                              "usage '%s' is not for a %s private key: the public key's "
                              "usages follow from it (sign->verify, decrypt->encrypt, "
                              "unwrap->wrap)",
                              hsmc_use_names[hsmc_low_bit(extra)], ai->name);
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "a %s key cannot be used to %s", ai->name,
                          hsmc_use_names[hsmc_low_bit(extra)]);
    }
    if (spec->id == NULL ? spec->id_len != 0 : (spec->id_len == 0 || spec->id_len > HSMC_MAX_ID_LEN))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "key id must be 1..%d bytes (or NULL for a random one)",
                          HSMC_MAX_ID_LEN);
    return HSMC_OK;
}

/* ---- Units of work --------------------------------------------------------- */

/* Object kinds for templates and checks, and their classes. */
enum { HSMC_K_SECRET, HSMC_K_PRIVATE, HSMC_K_PUBLIC };
static const CK_OBJECT_CLASS hsmc_kind_cls[3] = {CKO_SECRET_KEY, CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};

typedef struct hsmc_kop {
    hsmc_t *h;
    CK_FUNCTION_LIST_PTR fl;
    CK_SESSION_HANDLE s;
    CK_RV rv;               /* first failing PKCS#11 result of the attempt */
    const char *what;       /* the call that returned it */
    unsigned attempt;       /* 0, then 1.. after recoveries */
    /* The key being made (generate, import). */
    const char *label;
    size_t label_len;
    const hsmc_alg_info_t *ai;
    hsmc_key_alg_t alg;
    unsigned usage;
    int session;
    int imported;
    uint8_t id[HSMC_MAX_ID_LEN];
    size_t id_len;
    const uint8_t *data;    /* import: the caller's bytes */
    size_t data_len;
    const hsmc_der_key_t *dk; /* import: where the parts are */
    /* The key operated on, and results. */
    hsmc_key_t *out;
    const hsmc_key_t *key;
    uint8_t *der;           /* export, pub_attr: the caller's buffer */
    size_t cap;
    size_t *len;
    unsigned done;          /* delete, orphans: objects destroyed (counted), over all attempts */
    int count_only;         /* orphans: count them, destroy nothing */
} hsmc_kop_t;

typedef hsmc_err_t (*hsmc_kop_fn)(hsmc_kop_t *k);

/* Record a failed PKCS#11 call. @return the mapped error (detail set). */
static hsmc_err_t hsmc_kop_rv(hsmc_kop_t *k, CK_RV rv, const char *what)
{
    k->rv = rv;
    k->what = what;
    return hsmc_map_rv(k->h, rv, what);
}

/*
 * Run fn on a borrowed session; again after a recovery when it failed with
 * a lost session/login/token (k->rv), up to HSMC_RECOVER_RETRIES.
 */
static hsmc_err_t hsmc_kop_run(hsmc_kop_t *k, hsmc_kop_fn fn)
{
    hsmc_sess_t s;
    hsmc_err_t err;

    memset(&s, 0, sizeof s);
    k->attempt = 0;
    do {
        err = hsmc_session_begin(k->h, &s);
        if (err != HSMC_OK)
            return err;
        k->fl = k->h->fl;
        k->s = s.handle;
        k->rv = CKR_OK;
        k->what = NULL;
        err = fn(k);
        if (err == HSMC_OK || !hsmc__rv_is_loss(k->rv)) {
            (void)hsmc_session_end(&s, CKR_OK, NULL);
            return err;
        }
        err = hsmc_session_end(&s, k->rv, k->what);
        k->attempt++;
    } while (err == HSMC_RETRY);
    return err;
}

static CK_ULONG hsmc_put(CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type, const void *v,
                         size_t len)
{
    t[n].type = type;
    t[n].pValue = HSMC_IN(v);
    t[n].ulValueLen = (CK_ULONG)len;
    return n + 1;
}

/* Bits an object of `kind` must have (`expect`) among those checked (`care`). */
static void hsmc_kop_masks(const hsmc_kop_t *k, int kind, unsigned *care, unsigned *expect)
{
    unsigned tok = k->session ? 0u : HSMC_ATTR_TOKEN;

    if (kind == HSMC_K_PUBLIC) {
        *care = HSMC_ATTR_TOKEN | HSMC_ATTR_PRIVATE | HSMC_USES_PUBLIC;
        *expect = tok | ((k->usage & HSMC_USE_SIGN) ? HSMC_USE_VERIFY : 0u) |
                  ((k->usage & HSMC_USE_DECRYPT) ? HSMC_USE_ENCRYPT : 0u) |
                  ((k->usage & HSMC_USE_UNWRAP) ? HSMC_USE_WRAP : 0u);
        return;
    }
    *care = HSMC_ATTR_TOKEN | HSMC_ATTR_PRIVATE | HSMC_ATTR_SENSITIVE | HSMC_ATTR_EXTRACTABLE |
            (kind == HSMC_K_SECRET ? HSMC_USES_SECRET : HSMC_USES_PRIVATE);
    *expect = tok | HSMC_ATTR_PRIVATE | HSMC_ATTR_SENSITIVE | k->usage;
    if (!k->imported) {
        /* Imported keys were outside the token once: these are FALSE by definition. */
        *care |= HSMC_B_LOCAL | HSMC_B_ALWAYS_SENSITIVE | HSMC_B_NEVER_EXTRACTABLE;
        *expect |= HSMC_B_LOCAL | HSMC_B_ALWAYS_SENSITIVE | HSMC_B_NEVER_EXTRACTABLE;
    }
}

/*
 * Append what every object hsmc makes carries: CKA_TOKEN, CKA_PRIVATE,
 * (CKA_SENSITIVE TRUE, CKA_EXTRACTABLE FALSE,) CKA_LABEL, CKA_ID, and each
 * usage flag of the class TRUE or FALSE. Secret 13, private 11, public 9.
 */
HSMC_NOINLINE static CK_ULONG hsmc_tmpl_key(const hsmc_kop_t *k, CK_ATTRIBUTE *t, CK_ULONG n,
                                            int kind)
{
    unsigned care, expect, settable, b;

    hsmc_kop_masks(k, kind, &care, &expect);
    /* CKA_LOCAL and friends are read-only; TOKEN/PRIVATE/SENSITIVE/EXTRACTABLE
     * come first, then the usage flags in table order. */
    settable = care & ~(HSMC_B_LOCAL | HSMC_B_ALWAYS_SENSITIVE | HSMC_B_NEVER_EXTRACTABLE);
    for (b = 8; b < 12; b++) {
        if (settable & (1u << b))
            n = hsmc_put(t, n, hsmc_bools[b].type,
                         (expect & (1u << b)) ? &hsmc_true : &hsmc_false, sizeof(CK_BBOOL));
    }
    n = hsmc_put(t, n, CKA_LABEL, k->label, k->label_len);
    n = hsmc_put(t, n, CKA_ID, k->id, k->id_len);
    for (b = 0; b < HSMC_B_COUNT; b++) {
        if (((HSMC_USES_ALL | HSMC_B_SIGN_RECOVER | HSMC_B_VERIFY_RECOVER) & (1u << b)) &&
            (settable & (1u << b)))
            n = hsmc_put(t, n, hsmc_bools[b].type,
                         (expect & (1u << b)) ? &hsmc_true : &hsmc_false, sizeof(CK_BBOOL));
    }
    return n;
}

/* CKA_CLASS and CKA_KEY_TYPE, the first two attributes of a template for
 * a key object of `kind` that hsmc makes itself. @return 2. */
static CK_ULONG hsmc_tmpl_head(const hsmc_kop_t *k, CK_ATTRIBUTE *t, int kind)
{
    (void)hsmc_put(t, 0, CKA_CLASS, &hsmc_kind_cls[kind], sizeof(CK_OBJECT_CLASS));
    return hsmc_put(t, 1, CKA_KEY_TYPE, &k->ai->kt, sizeof k->ai->kt);
}

/* Read the 16 boolean attributes as bits (unavailable ones count FALSE). */
HSMC_NOINLINE static CK_RV hsmc_read_bits(CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE s,
                                          CK_OBJECT_HANDLE o, unsigned *bits)
{
    CK_ATTRIBUTE t[8];
    CK_BBOOL v[8];
    unsigned base, i;
    CK_RV rv;

    *bits = 0;
    for (base = 0; base < HSMC_B_COUNT; base += 8) {
        for (i = 0; i < 8; i++) {
            v[i] = CK_FALSE;
            t[i].type = hsmc_bools[base + i].type;
            t[i].pValue = &v[i];
            t[i].ulValueLen = sizeof v[i];
        }
        rv = fl->C_GetAttributeValue(s, o, t, 8);
        if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE)
            return rv;
        for (i = 0; i < 8; i++) {
            if (t[i].ulValueLen == sizeof v[i] && v[i] == CK_TRUE)
                *bits |= 1u << (base + i);
        }
    }
    return CKR_OK;
}

/* Destroy an object hsmc just made; 1 when it is gone. Failures are logged. */
static int hsmc_kop_destroy(hsmc_kop_t *k, CK_OBJECT_HANDLE o)
{
    CK_RV rv;

    if (o == CK_INVALID_HANDLE)
        return 1;
    rv = k->fl->C_DestroyObject(k->s, o);
    if (rv == CKR_OK || rv == CKR_OBJECT_HANDLE_INVALID)
        return 1;
    HSMC_LOG(k->h, HSMC_LOG_ERROR, "C_DestroyObject of '%s' failed: %s; delete it by hand",
             k->label, hsmc_ckr_name(rv));
    return 0;
}

/*
 * Call fn for each object that matches t[0..nt), HSMC_KOP_FIND handles at
 * a time. The search stays active meanwhile, so fn may read attributes but
 * not search; a result other than CKR_OK from fn ends the search with it.
 */
#define HSMC_KOP_FIND 4
typedef CK_RV (*hsmc_kop_each_fn)(hsmc_kop_t *k, CK_OBJECT_HANDLE o, void *user);

HSMC_NOINLINE static hsmc_err_t hsmc_kop_each(hsmc_kop_t *k, CK_ATTRIBUTE *t, CK_ULONG nt,
                                              hsmc_kop_each_fn fn, void *user)
{
    CK_OBJECT_HANDLE found[HSMC_KOP_FIND];
    CK_ULONG n = 0, i;
    CK_RV rv, rv2;

    rv = k->fl->C_FindObjectsInit(k->s, t, nt);
    if (rv != CKR_OK)
        return hsmc_kop_rv(k, rv, "C_FindObjectsInit");
    do {
        rv = k->fl->C_FindObjects(k->s, found, HSMC_KOP_FIND, &n);
        if (n > HSMC_KOP_FIND)
            n = HSMC_KOP_FIND; /* a token writing past the array: do not read further */
        for (i = 0; i < n && rv == CKR_OK; i++)
            rv = fn(k, found[i], user);
    } while (rv == CKR_OK && n > 0);
    rv2 = k->fl->C_FindObjectsFinal(k->s);
    if (rv == CKR_OK)
        rv = rv2;
    if (rv != CKR_OK)
        return hsmc_kop_rv(k, rv, "C_FindObjects");
    return HSMC_OK;
}

/* How many objects a search found, and the first of them. */
typedef struct hsmc_hits {
    CK_OBJECT_HANDLE first;
    size_t n;
} hsmc_hits_t;

static CK_RV hsmc_hits_cb(hsmc_kop_t *k, CK_OBJECT_HANDLE o, void *user)
{
    hsmc_hits_t *c = (hsmc_hits_t *)user;

    (void)k;
    if (c->n++ == 0)
        c->first = o;
    return CKR_OK;
}

/* The key objects labelled k->label: this attempt's own (to destroy), others. */
typedef struct hsmc_label_use {
    CK_OBJECT_HANDLE mine[HSMC_KOP_FIND];
    size_t nmine, others;
} hsmc_label_use_t;

static CK_RV hsmc_label_use_cb(hsmc_kop_t *k, CK_OBJECT_HANDLE o, void *user)
{
    hsmc_label_use_t *u = (hsmc_label_use_t *)user;
    CK_ATTRIBUTE t[2];
    CK_OBJECT_CLASS cls = CKO_DATA;
    uint8_t id[HSMC_MAX_ID_LEN];
    CK_RV rv;

    (void)hsmc_put(t, 0, CKA_CLASS, &cls, sizeof cls);
    (void)hsmc_put(t, 1, CKA_ID, id, sizeof id);
    rv = k->fl->C_GetAttributeValue(k->s, o, t, 2);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
        rv == CKR_BUFFER_TOO_SMALL)
        rv = CKR_OK;
    if (rv != CKR_OK || t[0].ulValueLen != sizeof cls ||
        (cls != CKO_PRIVATE_KEY && cls != CKO_PUBLIC_KEY && cls != CKO_SECRET_KEY))
        return rv;
    if (k->attempt > 0 && t[1].ulValueLen == k->id_len && memcmp(id, k->id, k->id_len) == 0 &&
        u->nmine < HSMC_KOP_FIND)
        u->mine[u->nmine++] = o;
    else
        u->others++;
    return CKR_OK;
}

/*
 * Make sure no key object carries the label. On a retry, key objects with
 * the label and this attempt's CKA_ID are what an interrupted attempt
 * left: they are destroyed. Other objects with the label (a certificate
 * of the key, data) do not count.
 */
HSMC_NOINLINE static hsmc_err_t hsmc_kop_label_free(hsmc_kop_t *k)
{
    CK_ATTRIBUTE q;
    hsmc_label_use_t u;
    hsmc_err_t err;
    size_t i;
    CK_RV rv;

    memset(&u, 0, sizeof u);
    (void)hsmc_put(&q, 0, CKA_LABEL, k->label, k->label_len);
    err = hsmc_kop_each(k, &q, 1, hsmc_label_use_cb, &u);
    if (err != HSMC_OK)
        return err;
    if (u.others > 0)
        return hsmc__fail(k->h, HSMC_ERR_EXISTS, CKR_OK,
                          "a key labelled '%s' already exists on the token (%u key objects); "
                          "choose another label or delete it",
                          k->label, (unsigned)u.others);
    for (i = 0; i < u.nmine; i++) {
        rv = k->fl->C_DestroyObject(k->s, u.mine[i]);
        if (rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID)
            return hsmc_kop_rv(k, rv, "C_DestroyObject");
    }
    if (u.nmine > 0)
        HSMC_LOG(k->h, HSMC_LOG_WARN,
                 "removed %u objects of '%s' left by an interrupted attempt; making it again",
                 (unsigned)u.nmine, k->label);
    return HSMC_OK;
}

/* A generation or creation call failed: name the algorithm when the
 * token lacks it. */
static hsmc_err_t hsmc_kop_make_fail(hsmc_kop_t *k, CK_RV rv, const char *what)
{
    k->rv = rv;
    k->what = what;
    switch (rv) {
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_FUNCTION_NOT_SUPPORTED:
    case CKR_CURVE_NOT_SUPPORTED:
    case CKR_DOMAIN_PARAMS_INVALID:
    case CKR_KEY_SIZE_RANGE:
    case CKR_ATTRIBUTE_VALUE_INVALID:
        return hsmc__fail(k->h, HSMC_ERR_UNSUPPORTED, rv, "the token cannot %s %s keys (%s: %s)",
                          k->imported ? "import" : "generate", k->ai->name, what,
                          hsmc_ckr_name(rv));
    default:
        return hsmc_map_rv(k->h, rv, what);
    }
}

/* Read back the object's boolean attributes, compare them with what hsmc
 * asked for, and fill obj. *bad: the first wrong bit, or -1. */
HSMC_NOINLINE static hsmc_err_t hsmc_kop_check(hsmc_kop_t *k, CK_OBJECT_HANDLE o, int kind,
                                               hsmc_obj_t *obj, int *bad)
{
    unsigned bits, care, expect, wrong;
    CK_RV rv;

    *bad = -1;
    rv = hsmc_read_bits(k->fl, k->s, o, &bits);
    if (rv != CKR_OK)
        return hsmc_kop_rv(k, rv, "C_GetAttributeValue");
    hsmc_kop_masks(k, kind, &care, &expect);
    wrong = (bits ^ expect) & care;
    if (wrong != 0) {
        *bad = (int)hsmc_low_bit(wrong);
        return HSMC_OK;
    }
    memset(obj, 0, sizeof *obj);
    obj->handle = o;
    obj->generation = k->h->generation;
    obj->cls = hsmc_kind_cls[kind];
    obj->key_type = k->ai->kt;
    obj->usage = bits & HSMC_B_OBJ_BITS;
    memcpy(obj->label, k->label, k->label_len);
    obj->label[k->label_len] = '\0';
    obj->label_len = k->label_len;
    memcpy(obj->id, k->id, k->id_len);
    obj->id_len = k->id_len;
    return HSMC_OK;
}

/* Check what the unit made and fill k->out; on any failure destroy it. */
static hsmc_err_t hsmc_kop_finish(hsmc_kop_t *k, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub)
{
    int kind = pub == CK_INVALID_HANDLE ? HSMC_K_SECRET : HSMC_K_PRIVATE;
    int bad = -1, gone;
    unsigned care = 0, expect = 0;
    hsmc_err_t err;

    err = hsmc_kop_check(k, priv, kind, &k->out->priv, &bad);
    if (err == HSMC_OK && bad < 0 && pub != CK_INVALID_HANDLE) {
        kind = HSMC_K_PUBLIC;
        err = hsmc_kop_check(k, pub, kind, &k->out->pub, &bad);
    }
    if (err == HSMC_OK && bad < 0) {
        k->out->has_pub = pub != CK_INVALID_HANDLE;
        k->out->alg = k->alg;
        k->out->version = hsmc_label_version(k->label, k->label_len, NULL, 0);
        HSMC_LOG(k->h, HSMC_LOG_INFO, "%s %s key '%s'", k->imported ? "imported" : "generated",
                 k->ai->name, k->label);
        return HSMC_OK;
    }
    if (hsmc__rv_is_loss(k->rv))
        return err; /* nothing can be destroyed now; the retry removes it */
    gone = hsmc_kop_destroy(k, pub);
    gone = hsmc_kop_destroy(k, priv) && gone;
    if (bad < 0)
        return err;
    hsmc_kop_masks(k, kind, &care, &expect);
    return hsmc__fail(k->h, HSMC_ERR_KEY_ATTRS, CKR_OK,
                      "the token made %s key '%s' with %s %s; hsmc requires %s. %s",
                      kind == HSMC_K_PUBLIC ? "public" : "the", k->label, hsmc_bools[bad].name,
                      (expect & (1u << bad)) ? "FALSE" : "TRUE",
                      (expect & (1u << bad)) ? "TRUE" : "FALSE",
                      gone ? "The key was destroyed." : "Destroying it failed: delete it.");
}

/* ---- Generation ------------------------------------------------------------ */

HSMC_NOINLINE static hsmc_err_t hsmc_gen_secret(hsmc_kop_t *k, CK_OBJECT_HANDLE *key)
{
    CK_ATTRIBUTE t[16];
    CK_MECHANISM m;
    CK_ULONG n;
    CK_RV rv;

    m.mechanism = k->ai->gen;
    m.pParameter = NULL;
    m.ulParameterLen = 0;
    n = hsmc_tmpl_head(k, t, HSMC_K_SECRET);
    n = hsmc_put(t, n, CKA_VALUE_LEN, &k->ai->size, sizeof k->ai->size);
    n = hsmc_tmpl_key(k, t, n, HSMC_K_SECRET);
    rv = k->fl->C_GenerateKey(k->s, &m, t, n, key);
    if (rv != CKR_OK)
        return hsmc_kop_make_fail(k, rv, "C_GenerateKey");
    return HSMC_OK;
}

/* The private template lives in this frame, the public one in the caller's. */
HSMC_NOINLINE static CK_RV hsmc_gen_pair_call(hsmc_kop_t *k, CK_ATTRIBUTE *pub, CK_ULONG npub,
                                              CK_OBJECT_HANDLE *hpub, CK_OBJECT_HANDLE *hpriv)
{
    CK_ATTRIBUTE t[11];
    CK_MECHANISM m;
    CK_ULONG n;

    m.mechanism = k->ai->gen;
    m.pParameter = NULL;
    m.ulParameterLen = 0;
    n = hsmc_tmpl_key(k, t, 0, HSMC_K_PRIVATE);
    return k->fl->C_GenerateKeyPair(k->s, &m, pub, npub, t, n, hpub, hpriv);
}

HSMC_NOINLINE static hsmc_err_t hsmc_gen_pair(hsmc_kop_t *k, CK_OBJECT_HANDLE *hpub,
                                              CK_OBJECT_HANDLE *hpriv)
{
    CK_ATTRIBUTE t[11];
    CK_ULONG n, params = 0;
    CK_RV rv;

    n = hsmc_tmpl_key(k, t, 0, HSMC_K_PUBLIC);
    if (k->ai->kt == CKK_RSA) {
        n = hsmc_put(t, n, CKA_MODULUS_BITS, &k->ai->size, sizeof k->ai->size);
        n = hsmc_put(t, n, CKA_PUBLIC_EXPONENT, hsmc_f4, sizeof hsmc_f4);
    } else {
        params = n;
        n = hsmc_put(t, n, CKA_EC_PARAMS, k->ai->params, k->ai->params_len);
    }
    rv = hsmc_gen_pair_call(k, t, n, hpub, hpriv);
    if (k->alg == HSMC_ALG_ED25519 &&
        (rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_DOMAIN_PARAMS_INVALID ||
         rv == CKR_CURVE_NOT_SUPPORTED || rv == CKR_TEMPLATE_INCONSISTENT)) {
        /* Tokens before PKCS#11 3.0 conventions settled take the curve name. */
        (void)hsmc_put(t, params, CKA_EC_PARAMS, hsmc_ed25519_name, sizeof hsmc_ed25519_name);
        rv = hsmc_gen_pair_call(k, t, n, hpub, hpriv);
    }
    if (rv != CKR_OK)
        return hsmc_kop_make_fail(k, rv, "C_GenerateKeyPair");
    return HSMC_OK;
}

static hsmc_err_t hsmc_unit_generate(hsmc_kop_t *k)
{
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE, pub = CK_INVALID_HANDLE;
    hsmc_err_t err;

    err = hsmc_kop_label_free(k);
    if (err != HSMC_OK)
        return err;
    if (k->ai->kt == CKK_AES)
        err = hsmc_gen_secret(k, &priv);
    else
        err = hsmc_gen_pair(k, &pub, &priv);
    if (err != HSMC_OK)
        return err;
    return hsmc_kop_finish(k, priv, pub);
}

/* Check the arguments of generate/import and fill k (CKA_ID included). */
static hsmc_err_t hsmc_kop_prepare(hsmc_kop_t *k, hsmc_t *h, const char *label,
                                   const hsmc_key_spec_t *spec, hsmc_key_t *out)
{
    hsmc_err_t err;

    memset(k, 0, sizeof *k);
    k->h = h;
    err = hsmc_out_clear(h, out);
    if (err == HSMC_OK)
        err = hsmc_check_label(h, label, &k->label_len);
    if (err == HSMC_OK)
        err = hsmc_check_spec(h, spec);
    if (err != HSMC_OK)
        return err;
    k->label = label;
    k->alg = spec->alg;
    k->ai = &hsmc_algs[spec->alg];
    k->usage = spec->usage;
    k->session = spec->session != 0;
    k->out = out;
    if (spec->id != NULL) {
        memcpy(k->id, spec->id, spec->id_len);
        k->id_len = spec->id_len;
        return HSMC_OK;
    }
    /* Before the first attempt, so a retry knows its own leftovers. */
    k->id_len = 16;
    return hsmc_random(h, k->id, k->id_len);
}

hsmc_err_t hsmc_key_generate(hsmc_t *h, const char *label, const hsmc_key_spec_t *spec,
                             hsmc_key_t *out)
{
    hsmc_kop_t k;
    hsmc_err_t err;

    if (h == NULL)
        return HSMC_ERR_ARG;
    err = hsmc_kop_prepare(&k, h, label, spec, out);
    if (err == HSMC_OK)
        err = hsmc_kop_run(&k, hsmc_unit_generate);
    if (err != HSMC_OK && out != NULL)
        memset(out, 0, sizeof *out);
    return err;
}

/* ---- Import ---------------------------------------------------------------- */

/* Create the key object of template t[0..n). */
static hsmc_err_t hsmc_kop_create(hsmc_kop_t *k, CK_ATTRIBUTE *t, CK_ULONG n,
                                  CK_OBJECT_HANDLE *key)
{
    CK_RV rv = k->fl->C_CreateObject(k->s, t, n, key);

    if (rv != CKR_OK)
        return hsmc_kop_make_fail(k, rv, "C_CreateObject");
    return HSMC_OK;
}

HSMC_NOINLINE static hsmc_err_t hsmc_imp_secret(hsmc_kop_t *k, CK_OBJECT_HANDLE *key)
{
    CK_ATTRIBUTE t[16];
    CK_ULONG n;

    n = hsmc_tmpl_head(k, t, HSMC_K_SECRET);
    n = hsmc_put(t, n, CKA_VALUE, k->data, k->data_len);
    n = hsmc_tmpl_key(k, t, n, HSMC_K_SECRET);
    return hsmc_kop_create(k, t, n, key);
}

/* RSA components in PKCS#11 order, matching hsmc_der_key_t.part. */
static const CK_ATTRIBUTE_TYPE hsmc_rsa_parts[HSMC_DER_RSA_PARTS] = {
    CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
    CKA_PRIME_2, CKA_EXPONENT_1,      CKA_EXPONENT_2,       CKA_COEFFICIENT};

HSMC_NOINLINE static hsmc_err_t hsmc_imp_private(hsmc_kop_t *k, CK_OBJECT_HANDLE *key)
{
    CK_ATTRIBUTE t[21];
    CK_ULONG n;
    unsigned i;

    n = hsmc_tmpl_head(k, t, HSMC_K_PRIVATE);
    if (k->ai->kt == CKK_RSA) {
        for (i = 0; i < HSMC_DER_RSA_PARTS; i++)
            n = hsmc_put(t, n, hsmc_rsa_parts[i], k->dk->part[i], k->dk->part_len[i]);
    } else {
        n = hsmc_put(t, n, CKA_EC_PARAMS, k->ai->params, k->ai->params_len);
        n = hsmc_put(t, n, CKA_VALUE, k->dk->part[HSMC_DER_EC_D], k->dk->part_len[HSMC_DER_EC_D]);
    }
    n = hsmc_tmpl_key(k, t, n, HSMC_K_PRIVATE);
    return hsmc_kop_create(k, t, n, key);
}

/* Public object: (modulus, exponent) or (EC params, DER-wrapped point). */
HSMC_NOINLINE static hsmc_err_t hsmc_imp_public_call(hsmc_kop_t *k, const void *a, size_t alen,
                                                     const void *b, size_t blen,
                                                     CK_OBJECT_HANDLE *key)
{
    CK_ATTRIBUTE t[13];
    CK_ULONG n;
    int rsa = k->ai->kt == CKK_RSA;

    n = hsmc_tmpl_head(k, t, HSMC_K_PUBLIC);
    n = hsmc_put(t, n, rsa ? CKA_MODULUS : CKA_EC_PARAMS, a, alen);
    n = hsmc_put(t, n, rsa ? CKA_PUBLIC_EXPONENT : CKA_EC_POINT, b, blen);
    n = hsmc_tmpl_key(k, t, n, HSMC_K_PUBLIC);
    return hsmc_kop_create(k, t, n, key);
}

/* Largest uncompressed point hsmc imports: P-521, 1 + 2 * 66 bytes. */
#define HSMC_EC_POINT_MAX 133u

HSMC_NOINLINE static hsmc_err_t hsmc_imp_public(hsmc_kop_t *k, CK_OBJECT_HANDLE *key)
{
    uint8_t buf[3 + HSMC_EC_POINT_MAX];
    size_t plen = 1 + 2 * (((size_t)k->ai->size + 7) / 8), got = 0, hl;
    const hsmc_der_key_t *dk = k->dk;
    hsmc_err_t err;

    if (k->ai->kt == CKK_RSA)
        return hsmc_imp_public_call(k, dk->part[HSMC_DER_RSA_N], dk->part_len[HSMC_DER_RSA_N],
                                    dk->part[HSMC_DER_RSA_E], dk->part_len[HSMC_DER_RSA_E], key);
    /* CKA_EC_POINT: DER OCTET STRING around the uncompressed point, taken
     * from the DER when it carries one, else computed. */
    hl = hsmc__der_hdr_len(plen);
    if (plen > HSMC_EC_POINT_MAX)
        return hsmc__fail(k->h, HSMC_ERR_INTERNAL, CKR_OK, "EC point buffer too small");
    if (dk->part[HSMC_DER_EC_POINT] != NULL && dk->part_len[HSMC_DER_EC_POINT] == plen &&
        dk->part[HSMC_DER_EC_POINT][0] == 0x04) {
        memcpy(buf + hl, dk->part[HSMC_DER_EC_POINT], plen);
    } else {
        err = hsmc__der_ec_point(k->h, k->data, k->data_len, buf + hl, HSMC_EC_POINT_MAX, &got);
        if (err != HSMC_OK)
            return err;
        if (got != plen)
            return hsmc__fail(k->h, HSMC_ERR_FORMAT, CKR_OK,
                              "EC public point is %u bytes; %s needs %u", (unsigned)got,
                              k->ai->name, (unsigned)plen);
    }
    (void)hsmc__der_put_hdr(buf, HSMC_DER_OCTET_STRING, plen);
    return hsmc_imp_public_call(k, k->ai->params, k->ai->params_len, buf, hl + plen, key);
}

static hsmc_err_t hsmc_unit_import(hsmc_kop_t *k)
{
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE, pub = CK_INVALID_HANDLE;
    hsmc_err_t err;

    err = hsmc_kop_label_free(k);
    if (err != HSMC_OK)
        return err;
    if (k->ai->kt == CKK_AES) {
        err = hsmc_imp_secret(k, &priv);
        return err != HSMC_OK ? err : hsmc_kop_finish(k, priv, pub);
    }
    err = hsmc_imp_private(k, &priv);
    if (err != HSMC_OK)
        return err;
    err = hsmc_imp_public(k, &pub);
    if (err != HSMC_OK) { /* the private half must not stay alone */
        if (!hsmc__rv_is_loss(k->rv))
            (void)hsmc_kop_destroy(k, priv);
        return err;
    }
    return hsmc_kop_finish(k, priv, pub);
}

/* Parse the DER (EC/RSA) and run the import; dk in this frame, k in the caller's. */
HSMC_NOINLINE static hsmc_err_t hsmc_import_run(hsmc_kop_t *k)
{
    hsmc_der_key_t dk;
    hsmc_err_t err = HSMC_OK;

    memset(&dk, 0, sizeof dk);
    if (k->ai->kt != CKK_AES) {
        err = hsmc__der_parse_key(k->h, k->data, k->data_len, &dk);
        if (err == HSMC_OK && dk.alg != k->alg)
            err = hsmc__fail(k->h, HSMC_ERR_ARG, CKR_OK, "the DER holds a %s key; the spec says %s",
                             hsmc_alg_name(dk.alg), k->ai->name);
    }
    if (err == HSMC_OK) {
        k->dk = &dk;
        err = hsmc_kop_run(k, hsmc_unit_import);
        k->dk = NULL;
    }
    hsmc__wipe(&dk, sizeof dk); /* pointers into key material */
    return err;
}

hsmc_err_t hsmc_key_import(hsmc_t *h, const char *label, const hsmc_key_spec_t *spec,
                           const uint8_t *data, size_t len, hsmc_key_t *out)
{
    hsmc_kop_t k;
    size_t label_len;
    hsmc_err_t err;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    err = hsmc_check_label(h, label, &label_len);
    if (err == HSMC_OK)
        err = hsmc_check_spec(h, spec);
    if (err != HSMC_OK)
        return err;
    if (data == NULL || len == 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "no key bytes to import");
    if (spec->alg == HSMC_ALG_ED25519)
        return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "Ed25519 keys cannot be imported (mbedTLS cannot derive the public key)");
    if (hsmc_algs[spec->alg].kt == CKK_AES && len != hsmc_algs[spec->alg].size)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s needs %u key bytes, not %u",
                          hsmc_algs[spec->alg].name, (unsigned)hsmc_algs[spec->alg].size,
                          (unsigned)len);
    err = hsmc_kop_prepare(&k, h, label, spec, out);
    if (err == HSMC_OK) {
        k.imported = 1;
        k.data = data;
        k.data_len = len;
        err = hsmc_import_run(&k);
    }
    if (err != HSMC_OK && out != NULL)
        memset(out, 0, sizeof *out);
    return err;
}

/* ---- Finding objects inside a unit ----------------------------------------- */

/*
 * The handle of obj in this unit: its own when it is from this context
 * generation (and !always), else looked up by label, id and class.
 * @return HSMC_OK, HSMC_ERR_OBJECT_NOT_FOUND (no detail set: callers
 * decide whether that is an error), HSMC_ERR_OBJECT_AMBIGUOUS, token errors.
 */
HSMC_NOINLINE static hsmc_err_t hsmc_kop_locate(hsmc_kop_t *k, const hsmc_obj_t *obj,
                                                int always, CK_OBJECT_HANDLE *out)
{
    CK_ATTRIBUTE t[3];
    CK_ULONG nt = 0;
    hsmc_hits_t hits;
    hsmc_err_t err;

    if (!always && obj->generation == k->h->generation) {
        *out = obj->handle;
        return HSMC_OK;
    }
    if (obj->label_len > 0)
        nt = hsmc_put(t, nt, CKA_LABEL, obj->label, obj->label_len);
    if (obj->id_len > 0)
        nt = hsmc_put(t, nt, CKA_ID, obj->id, obj->id_len);
    nt = hsmc_put(t, nt, CKA_CLASS, &obj->cls, sizeof obj->cls);
    memset(&hits, 0, sizeof hits);
    err = hsmc_kop_each(k, t, nt, hsmc_hits_cb, &hits);
    if (err != HSMC_OK)
        return err;
    if (hits.n == 0)
        return HSMC_ERR_OBJECT_NOT_FOUND;
    if (hits.n > 1)
        return hsmc__fail(k->h, HSMC_ERR_OBJECT_AMBIGUOUS, CKR_OK,
                          "several %s objects match '%s' and its id; refusing to pick one",
                          hsmc_class_name(obj->cls), obj->label);
    *out = hits.first;
    return HSMC_OK;
}

/* ---- Open ------------------------------------------------------------------ */

typedef struct hsmc_open_ctx {
    hsmc_key_t *out;
    size_t keys, pubs, same;
} hsmc_open_ctx_t;

static int hsmc_open_keys_cb(void *user, const hsmc_obj_t *obj)
{
    hsmc_open_ctx_t *c = (hsmc_open_ctx_t *)user;
    if (obj->cls == CKO_PRIVATE_KEY || obj->cls == CKO_SECRET_KEY) {
        if (c->keys == 0)
            c->out->priv = *obj;
        c->keys++;
    }
    return 0;
}

/* Public keys with the private key's id: one with its label wins. */
static int hsmc_open_pubs_cb(void *user, const hsmc_obj_t *obj)
{
    hsmc_open_ctx_t *c = (hsmc_open_ctx_t *)user;
    const hsmc_obj_t *priv = &c->out->priv;
    int same = obj->label_len == priv->label_len &&
               memcmp(obj->label, priv->label, priv->label_len) == 0;

    if (same) {
        if (c->same == 0)
            c->out->pub = *obj;
        c->same++;
    } else if (c->same == 0 && c->pubs == 0) {
        c->out->pub = *obj;
    }
    c->pubs++;
    return 0;
}

/* Curve of CKA_EC_PARAMS, or HSMC_ALG_NONE. */
static hsmc_key_alg_t hsmc_curve_alg(const CK_BYTE *p, size_t len)
{
    size_t i;
    for (i = HSMC_ALG_P256; i <= HSMC_ALG_ED25519; i++) {
        if (len == hsmc_algs[i].params_len && memcmp(p, hsmc_algs[i].params, len) == 0)
            return (hsmc_key_alg_t)i;
    }
    if (len == sizeof hsmc_ed25519_name && memcmp(p, hsmc_ed25519_name, len) == 0)
        return HSMC_ALG_ED25519;
    return HSMC_ALG_NONE;
}

/* The algorithm of an opened key, from its size attributes. */
HSMC_NOINLINE static hsmc_err_t hsmc_unit_alg(hsmc_kop_t *k)
{
    hsmc_key_t *key = k->out;
    CK_BYTE params[24] = {0};
    CK_ULONG v = 0;
    CK_ATTRIBUTE t;
    CK_OBJECT_HANDLE o;
    hsmc_err_t err;
    CK_RV rv;

    key->alg = HSMC_ALG_NONE;
    err = hsmc_kop_locate(k, key->has_pub ? &key->pub : &key->priv, 0, &o);
    if (err != HSMC_OK)
        return err == HSMC_ERR_OBJECT_NOT_FOUND
                   ? hsmc__fail(k->h, err, CKR_OK, "'%s' disappeared from the token",
                                key->priv.label)
                   : err;
    switch (key->priv.key_type) {
    case CKK_AES:
        (void)hsmc_put(&t, 0, CKA_VALUE_LEN, &v, sizeof v);
        break;
    case CKK_RSA: /* bits on the public key; else the modulus length */
        (void)hsmc_put(&t, 0, key->has_pub ? CKA_MODULUS_BITS : CKA_MODULUS,
                       key->has_pub ? &v : NULL, key->has_pub ? sizeof v : 0);
        break;
    case CKK_EC:
    case CKK_EC_EDWARDS:
        (void)hsmc_put(&t, 0, CKA_EC_PARAMS, params, sizeof params);
        break;
    default:
        return HSMC_OK; /* a key type hsmc does not make */
    }
    rv = k->fl->C_GetAttributeValue(k->s, o, &t, 1);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
        rv == CKR_BUFFER_TOO_SMALL || t.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return HSMC_OK; /* unusual size or curve: not one of hsmc_key_alg_t */
    if (rv != CKR_OK)
        return hsmc_kop_rv(k, rv, "C_GetAttributeValue");
    if (key->priv.key_type == CKK_AES) {
        key->alg = v == 16 ? HSMC_ALG_AES128 : v == 24 ? HSMC_ALG_AES192
                 : v == 32 ? HSMC_ALG_AES256 : HSMC_ALG_NONE;
    } else if (key->priv.key_type == CKK_RSA) {
        if (!key->has_pub)
            v = t.ulValueLen * 8;
        key->alg = v == 2048 ? HSMC_ALG_RSA2048 : v == 3072 ? HSMC_ALG_RSA3072
                 : v == 4096 ? HSMC_ALG_RSA4096 : HSMC_ALG_NONE;
    } else {
        key->alg = hsmc_curve_alg(params, (size_t)t.ulValueLen);
    }
    return HSMC_OK;
}

hsmc_err_t hsmc_key_open(hsmc_t *h, const char *label, hsmc_key_t *out)
{
    hsmc_open_ctx_t c;
    hsmc_obj_query_t q;
    hsmc_kop_t k;
    size_t label_len;
    hsmc_err_t err;

    if (h == NULL)
        return HSMC_ERR_ARG;
    err = hsmc_out_clear(h, out);
    if (err == HSMC_OK)
        err = hsmc_check_label(h, label, &label_len);
    if (err != HSMC_OK)
        return err;
    memset(&c, 0, sizeof c);
    c.out = out;
    memset(&q, 0, sizeof q);
    q.label = label;
    err = hsmc_list(h, &q, hsmc_open_keys_cb, &c, NULL);
    if (err == HSMC_OK && c.keys == 0)
        err = hsmc__fail(h, HSMC_ERR_OBJECT_NOT_FOUND, CKR_OK,
                         "no private or secret key labelled '%s' on the token", label);
    if (err == HSMC_OK && c.keys > 1)
        err = hsmc__fail(h, HSMC_ERR_OBJECT_AMBIGUOUS, CKR_OK,
                         "%u private/secret keys are labelled '%s'; delete the extra ones",
                         (unsigned)c.keys, label);
    if (err == HSMC_OK && out->priv.cls == CKO_PRIVATE_KEY) {
        memset(&q, 0, sizeof q);
        q.has_class = 1;
        q.cls = CKO_PUBLIC_KEY;
        if (out->priv.id_len > 0) {
            q.id = out->priv.id;
            q.id_len = out->priv.id_len;
        } else {
            q.label = out->priv.label;
        }
        err = hsmc_list(h, &q, hsmc_open_pubs_cb, &c, NULL);
        if (err == HSMC_OK && (c.same > 1 || (c.same == 0 && c.pubs > 1)))
            err = hsmc__fail(h, HSMC_ERR_OBJECT_AMBIGUOUS, CKR_OK,
                             "%u public keys share the id of '%s'; cannot tell which "
                             "belongs to it",
                             (unsigned)(c.same > 1 ? c.same : c.pubs), label);
        out->has_pub = c.pubs > 0;
    }
    if (err == HSMC_OK) {
        memset(&k, 0, sizeof k);
        k.h = h;
        k.out = out;
        err = hsmc_kop_run(&k, hsmc_unit_alg);
        out->version = hsmc_label_version(out->priv.label, out->priv.label_len, NULL, 0);
    }
    if (err != HSMC_OK)
        memset(out, 0, sizeof *out);
    return err;
}

/* ---- Find or create -------------------------------------------------------- */

static hsmc_err_t hsmc_check_purpose_use(hsmc_t *h, const hsmc_key_t *key,
                                         const hsmc_key_spec_t *spec, hsmc_purpose_t purpose)
{
    unsigned missing = spec->usage & ~key->priv.usage;
    if (missing == 0)
        return HSMC_OK;
    return hsmc__fail(h, HSMC_ERR_KEY_USAGE, CKR_OK,
                      "key '%s' exists but cannot %s, which purpose %s needs", key->priv.label,
                      hsmc_use_names[hsmc_low_bit(missing)], hsmc_purpose_name(purpose));
}

static hsmc_err_t hsmc_orphans(hsmc_t *h, const char *label, int count_only, unsigned *n);

/*
 * Key objects labelled `label` block a new key, yet none is a private or
 * secret key. Lone public keys (a pair generation cut short) are the usual
 * reason; removing them is the caller's decision, so only name the remedy.
 */
static hsmc_err_t hsmc_foc_exists(hsmc_t *h, const char *label)
{
    unsigned n = 0;

    if (hsmc_orphans(h, label, 1, &n) == HSMC_OK && n > 0)
        return hsmc__fail(h, HSMC_ERR_EXISTS, CKR_OK,
                          "'%.40s' has %u public key(s) and no private key; run hsmc key delete "
                          "--orphans LABEL (or hsmc_key_remove_orphans)",
                          label, n);
    return hsmc__fail(h, HSMC_ERR_EXISTS, CKR_OK,
                      "objects labelled '%s' exist but none is a private or secret key", label);
}

hsmc_err_t hsmc_key_find_or_create(hsmc_t *h, const char *label, hsmc_purpose_t purpose,
                                   hsmc_key_t *out, int *created)
{
    hsmc_key_spec_t spec;
    hsmc_err_t err;

    if (created != NULL)
        *created = 0;
    if (h == NULL)
        return HSMC_ERR_ARG;
    if (hsmc_purpose_spec(purpose, &spec) != HSMC_OK)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "find-or-create needs a purpose (ca_root .. data), got %d",
                          (int)purpose);
    err = hsmc_key_open(h, label, out);
    if (err == HSMC_ERR_OBJECT_NOT_FOUND) {
        err = hsmc_key_generate(h, label, &spec, out);
        if (err == HSMC_OK) {
            if (created != NULL)
                *created = 1;
            return HSMC_OK;
        }
        if (err != HSMC_ERR_EXISTS)
            return err;
        /* Made by someone else in between. */
        err = hsmc_key_open(h, label, out);
        if (err == HSMC_ERR_OBJECT_NOT_FOUND)
            err = hsmc_foc_exists(h, label);
    }
    if (err == HSMC_OK)
        err = hsmc_check_purpose_use(h, out, &spec, purpose);
    if (err != HSMC_OK && out != NULL)
        memset(out, 0, sizeof *out);
    return err;
}

/* ---- Delete ---------------------------------------------------------------- */

/* Destroy one object of the key, found again by label, id and class. */
static hsmc_err_t hsmc_kop_delete_obj(hsmc_kop_t *k, const hsmc_obj_t *obj)
{
    CK_OBJECT_HANDLE o;
    hsmc_err_t err;
    CK_RV rv;

    err = hsmc_kop_locate(k, obj, 1, &o);
    if (err == HSMC_ERR_OBJECT_NOT_FOUND)
        return HSMC_OK; /* gone already (maybe by an attempt before a recovery) */
    if (err != HSMC_OK)
        return err;
    rv = k->fl->C_DestroyObject(k->s, o);
    if (rv != CKR_OK)
        return hsmc_kop_rv(k, rv, "C_DestroyObject");
    k->done++;
    return HSMC_OK;
}

static hsmc_err_t hsmc_unit_delete(hsmc_kop_t *k)
{
    hsmc_err_t err = HSMC_OK;

    if (k->key->has_pub)
        err = hsmc_kop_delete_obj(k, &k->key->pub);
    if (err == HSMC_OK)
        err = hsmc_kop_delete_obj(k, &k->key->priv);
    return err;
}

hsmc_err_t hsmc_key_delete(hsmc_t *h, hsmc_key_t *key)
{
    hsmc_kop_t k;
    hsmc_err_t err;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (key == NULL || (key->priv.cls != CKO_PRIVATE_KEY && key->priv.cls != CKO_SECRET_KEY))
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "no open key to delete");
    if (key->priv.label_len == 0 && key->priv.id_len == 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "the key has neither label nor id; hsmc will not delete it by class alone");
    memset(&k, 0, sizeof k);
    k.h = h;
    k.key = key;
    err = hsmc_kop_run(&k, hsmc_unit_delete);
    if (err != HSMC_OK)
        return err;
    if (k.done == 0)
        return hsmc__fail(h, HSMC_ERR_OBJECT_NOT_FOUND, CKR_OK,
                          "key '%s' is no longer on the token", key->priv.label);
    HSMC_LOG(h, HSMC_LOG_INFO, "deleted key '%s' (%u objects)", key->priv.label, k.done);
    memset(key, 0, sizeof *key);
    return HSMC_OK;
}

/* ---- Lone public keys ------------------------------------------------------ */

/* The lowest handles above `after` among the public keys a search finds. */
typedef struct hsmc_orph {
    CK_OBJECT_HANDLE after;
    CK_OBJECT_HANDLE next[HSMC_KOP_FIND]; /* ascending */
    size_t n;
} hsmc_orph_t;

/* Searches return objects in no fixed order; walking them by handle value
 * lets a fixed array cover any number, and the walk ends. */
static CK_RV hsmc_orph_pick(hsmc_kop_t *k, CK_OBJECT_HANDLE o, void *user)
{
    hsmc_orph_t *w = (hsmc_orph_t *)user;
    size_t at;

    (void)k;
    if (o <= w->after || (w->n == HSMC_KOP_FIND && o >= w->next[w->n - 1]))
        return CKR_OK;
    if (w->n < HSMC_KOP_FIND)
        w->n++;
    for (at = w->n - 1; at > 0 && w->next[at - 1] > o; at--)
        w->next[at] = w->next[at - 1];
    w->next[at] = o;
    return CKR_OK;
}

/*
 * *lone = 1 when public key `pub` has no private key on the token: none
 * with its CKA_ID (under any label, as hsmc_key_open pairs them) or, when
 * that id is empty, none with the empty id and the label. When in doubt
 * (the key went meanwhile, an id longer than HSMC_MAX_ID_LEN) it is 0.
 */
HSMC_NOINLINE static hsmc_err_t hsmc_orph_lone(hsmc_kop_t *k, CK_OBJECT_HANDLE pub, int *lone)
{
    CK_ATTRIBUTE t[3];
    uint8_t id[HSMC_MAX_ID_LEN];
    CK_ULONG id_len, nt;
    hsmc_hits_t hits;
    hsmc_err_t err;
    CK_RV rv;

    *lone = 0;
    (void)hsmc_put(t, 0, CKA_ID, id, sizeof id);
    rv = k->fl->C_GetAttributeValue(k->s, pub, t, 1);
    if (rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_BUFFER_TOO_SMALL ||
        rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE)
        return HSMC_OK;
    if (rv != CKR_OK)
        return hsmc_kop_rv(k, rv, "C_GetAttributeValue");
    id_len = t[0].ulValueLen;
    nt = hsmc_put(t, 0, CKA_CLASS, &hsmc_kind_cls[HSMC_K_PRIVATE], sizeof(CK_OBJECT_CLASS));
    nt = hsmc_put(t, nt, CKA_ID, id, id_len);
    if (id_len == 0)
        nt = hsmc_put(t, nt, CKA_LABEL, k->label, k->label_len);
    memset(&hits, 0, sizeof hits);
    err = hsmc_kop_each(k, t, nt, hsmc_hits_cb, &hits);
    *lone = err == HSMC_OK && hits.n == 0;
    return err;
}

/* Without a login the private keys are invisible and every public key
 * would look alone. */
HSMC_NOINLINE static hsmc_err_t hsmc_orph_login(hsmc_kop_t *k)
{
    CK_SESSION_INFO si;
    CK_RV rv = k->fl->C_GetSessionInfo(k->s, &si);

    if (rv != CKR_OK)
        return hsmc_kop_rv(k, rv, "C_GetSessionInfo");
    if (si.state != CKS_RO_USER_FUNCTIONS && si.state != CKS_RW_USER_FUNCTIONS)
        return hsmc__fail(k->h, HSMC_ERR_NOT_LOGGED_IN, CKR_OK,
                          "private keys are invisible without the user login, so hsmc cannot "
                          "tell which public keys of '%s' are alone; give a PIN source",
                          k->label);
    return HSMC_OK;
}

static hsmc_err_t hsmc_unit_orphans(hsmc_kop_t *k)
{
    CK_ATTRIBUTE t[2];
    hsmc_orph_t w;
    hsmc_err_t err;
    size_t i;
    int lone;
    CK_RV rv;

    if (k->count_only)
        k->done = 0; /* a destroyed key stays destroyed; a count starts again */
    err = hsmc_orph_login(k);
    (void)hsmc_put(t, 0, CKA_LABEL, k->label, k->label_len);
    (void)hsmc_put(t, 1, CKA_CLASS, &hsmc_kind_cls[HSMC_K_PUBLIC], sizeof(CK_OBJECT_CLASS));
    memset(&w, 0, sizeof w); /* after = CK_INVALID_HANDLE, below every handle */
    while (err == HSMC_OK) {
        w.n = 0;
        err = hsmc_kop_each(k, t, 2, hsmc_orph_pick, &w);
        for (i = 0; i < w.n && err == HSMC_OK; i++) {
            err = hsmc_orph_lone(k, w.next[i], &lone);
            if (err != HSMC_OK || !lone)
                continue;
            rv = k->count_only ? CKR_OK : k->fl->C_DestroyObject(k->s, w.next[i]);
            if (rv == CKR_OK)
                k->done++;
            else if (rv != CKR_OBJECT_HANDLE_INVALID)
                err = hsmc_kop_rv(k, rv, "C_DestroyObject");
        }
        if (w.n < HSMC_KOP_FIND)
            break;
        w.after = w.next[w.n - 1];
    }
    return err;
}

/* Count (count_only) or destroy the lone public keys labelled `label`. */
static hsmc_err_t hsmc_orphans(hsmc_t *h, const char *label, int count_only, unsigned *n)
{
    hsmc_kop_t k;
    hsmc_err_t err;

    memset(&k, 0, sizeof k);
    k.h = h;
    k.count_only = count_only;
    err = hsmc_check_label(h, label, &k.label_len);
    if (err == HSMC_OK) {
        k.label = label;
        err = hsmc_kop_run(&k, hsmc_unit_orphans);
    }
    *n = k.done;
    return err;
}

hsmc_err_t hsmc_key_remove_orphans(hsmc_t *h, const char *label, unsigned *removed)
{
    unsigned n = 0;
    hsmc_err_t err;

    if (removed != NULL)
        *removed = 0;
    if (h == NULL)
        return HSMC_ERR_ARG;
    err = hsmc_orphans(h, label, 0, &n);
    if (removed != NULL)
        *removed = n;
    if (n > 0)
        HSMC_LOG(h, err == HSMC_OK ? HSMC_LOG_INFO : HSMC_LOG_WARN,
                 "removed %u public key(s) labelled '%s' that had no private key (left by an "
                 "interrupted key generation)%s",
                 n, label, err == HSMC_OK ? "" : " before the error");
    return err;
}

/* ---- Public key export ----------------------------------------------------- */

/* AlgorithmIdentifier of rsaEncryption (with NULL parameters). */
static const uint8_t hsmc_spki_rsa_alg[15] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                              0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
/* OID id-ecPublicKey, as a whole element. */
static const uint8_t hsmc_spki_ec_oid[9] = {0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
/* RFC 8410: SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING (33) { 00 ... } } */
static const uint8_t hsmc_spki_ed25519[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                              0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

/* Report the size; with a buffer, check it is large enough. */
static hsmc_err_t hsmc_spki_size(hsmc_kop_t *k, size_t total, size_t need)
{
    *k->len = total;
    if (k->der != NULL && k->cap < need)
        return hsmc__fail(k->h, HSMC_ERR_BUFFER, CKR_OK,
                          "public key of '%s' needs %u bytes; the buffer has %u",
                          k->key->priv.label, (unsigned)total, (unsigned)k->cap);
    return HSMC_OK;
}

HSMC_NOINLINE static hsmc_err_t hsmc_spki_ec(hsmc_kop_t *k, CK_OBJECT_HANDLE o)
{
    CK_BYTE params[24] = {0};
    CK_ATTRIBUTE t[2];
    const hsmc_alg_info_t *ai;
    hsmc_key_alg_t alg;
    size_t plen, raw, alg_len = 0, bit_len, total, hl;
    uint8_t *p, *src;
    hsmc_err_t err;
    CK_RV rv;

    (void)hsmc_put(t, 0, CKA_EC_PARAMS, params, sizeof params);
    (void)hsmc_put(t, 1, CKA_EC_POINT, NULL, 0);
    rv = k->fl->C_GetAttributeValue(k->s, o, t, 2);
    if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL && rv != CKR_ATTRIBUTE_TYPE_INVALID)
        return hsmc_kop_rv(k, rv, "C_GetAttributeValue");
    alg = t[0].ulValueLen <= sizeof params ? hsmc_curve_alg(params, t[0].ulValueLen)
                                           : HSMC_ALG_NONE;
    if (alg == HSMC_ALG_NONE || t[1].ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return hsmc__fail(k->h, HSMC_ERR_UNSUPPORTED, rv,
                          "public key of '%s' is on a curve hsmc does not export",
                          k->key->priv.label);
    ai = &hsmc_algs[alg];
    /* The point: bare, or a DER OCTET STRING around it (most tokens). */
    plen = alg == HSMC_ALG_ED25519 ? 32 : 1 + 2 * (((size_t)ai->size + 7) / 8);
    raw = t[1].ulValueLen;
    if (raw != plen && raw != HSMC_DER_TLV_LEN(plen))
        return hsmc__fail(k->h, HSMC_ERR_FORMAT, CKR_OK,
                          "CKA_EC_POINT of '%s' is %u bytes; a %s point is %u (or %u in DER)",
                          k->key->priv.label, (unsigned)raw, ai->name, (unsigned)plen,
                          (unsigned)HSMC_DER_TLV_LEN(plen));
    if (alg == HSMC_ALG_ED25519) {
        total = sizeof hsmc_spki_ed25519 + 32;
    } else {
        alg_len = HSMC_DER_TLV_LEN(sizeof hsmc_spki_ec_oid + ai->params_len);
        bit_len = HSMC_DER_TLV_LEN(1 + plen);
        total = HSMC_DER_TLV_LEN(alg_len + bit_len);
    }
    err = hsmc_spki_size(k, total, total);
    if (err != HSMC_OK || k->der == NULL)
        return err;
    /* Read into the tail of the caller's buffer, then move into place. */
    src = k->der + k->cap - raw;
    (void)hsmc_put(t, 0, CKA_EC_POINT, src, raw);
    rv = k->fl->C_GetAttributeValue(k->s, o, t, 1);
    if (rv != CKR_OK)
        return hsmc_kop_rv(k, rv, "C_GetAttributeValue");
    if (t[0].ulValueLen != raw)
        return hsmc__fail(k->h, HSMC_ERR_FORMAT, CKR_OK, "CKA_EC_POINT changed size");
    if (raw != plen) {
        hl = raw - plen;
        if (src[0] != HSMC_DER_OCTET_STRING ||
            (hl == 2 ? src[1] != plen : (src[1] != 0x81 || src[2] != plen)))
            return hsmc__fail(k->h, HSMC_ERR_FORMAT, CKR_OK,
                              "CKA_EC_POINT of '%s' is not a DER OCTET STRING",
                              k->key->priv.label);
        src += hl;
    }
    if (alg != HSMC_ALG_ED25519 && src[0] != 0x04)
        return hsmc__fail(k->h, HSMC_ERR_FORMAT, CKR_OK,
                          "CKA_EC_POINT of '%s' is not an uncompressed point",
                          k->key->priv.label);
    memmove(k->der + total - plen, src, plen);
    p = k->der;
    if (alg == HSMC_ALG_ED25519) {
        memcpy(p, hsmc_spki_ed25519, sizeof hsmc_spki_ed25519);
    } else {
        p += hsmc__der_put_hdr(p, HSMC_DER_SEQUENCE, alg_len + HSMC_DER_TLV_LEN(1 + plen));
        p += hsmc__der_put_hdr(p, HSMC_DER_SEQUENCE, sizeof hsmc_spki_ec_oid + ai->params_len);
        memcpy(p, hsmc_spki_ec_oid, sizeof hsmc_spki_ec_oid);
        p += sizeof hsmc_spki_ec_oid;
        memcpy(p, ai->params, ai->params_len);
        p += ai->params_len;
        p += hsmc__der_put_hdr(p, HSMC_DER_BIT_STRING, 1 + plen);
        *p = 0; /* no unused bits */
    }
    return HSMC_OK;
}

/* Size of an RSA SubjectPublicKeyInfo; n and e without leading zeros. */
static size_t hsmc_spki_rsa_len(size_t nb, size_t eb, int npad, int epad, size_t *key_len,
                                size_t *bit_len)
{
    *key_len = HSMC_DER_TLV_LEN(nb + (size_t)npad) + HSMC_DER_TLV_LEN(eb + (size_t)epad);
    *bit_len = 1 + HSMC_DER_TLV_LEN(*key_len);
    return HSMC_DER_TLV_LEN(sizeof hsmc_spki_rsa_alg + HSMC_DER_TLV_LEN(*bit_len));
}

HSMC_NOINLINE static hsmc_err_t hsmc_spki_rsa(hsmc_kop_t *k, CK_OBJECT_HANDLE o)
{
    CK_BYTE e[16];
    CK_ULONG bits = 0;
    CK_ATTRIBUTE t[3];
    const CK_BYTE *ep = e;
    size_t el, nl, nb, total, key_len, bit_len;
    uint8_t *p, *src;
    int npad;
    hsmc_err_t err;
    CK_RV rv;

    (void)hsmc_put(t, 0, CKA_MODULUS_BITS, &bits, sizeof bits);
    (void)hsmc_put(t, 1, CKA_PUBLIC_EXPONENT, e, sizeof e);
    (void)hsmc_put(t, 2, CKA_MODULUS, NULL, 0);
    rv = k->fl->C_GetAttributeValue(k->s, o, t, 3);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_BUFFER_TOO_SMALL)
        return hsmc_kop_rv(k, rv, "C_GetAttributeValue");
    el = t[1].ulValueLen;
    nl = t[2].ulValueLen;
    if (el == CK_UNAVAILABLE_INFORMATION || el == 0 || el > sizeof e ||
        nl == CK_UNAVAILABLE_INFORMATION || nl == 0)
        return hsmc__fail(k->h, HSMC_ERR_UNSUPPORTED, rv,
                          "cannot read the RSA public key of '%s' (modulus %lu, exponent %lu "
                          "bytes)",
                          k->key->priv.label, (unsigned long)nl, (unsigned long)el);
    while (el > 1 && ep[0] == 0) {
        ep++;
        el--;
    }
    /* Exact size from CKA_MODULUS_BITS; without it, an upper bound. */
    if (t[0].ulValueLen == sizeof bits && bits > 0 && (bits + 7) / 8 <= nl) {
        nb = (size_t)((bits + 7) / 8);
        npad = bits % 8 == 0;
    } else {
        nb = nl;
        npad = 1;
    }
    total = hsmc_spki_rsa_len(nb, el, npad, (ep[0] & 0x80) != 0, &key_len, &bit_len);
    err = hsmc_spki_size(k, total, total > nl ? total : nl);
    if (err != HSMC_OK || k->der == NULL)
        return err;
    src = k->der + k->cap - nl;
    (void)hsmc_put(t, 0, CKA_MODULUS, src, nl);
    rv = k->fl->C_GetAttributeValue(k->s, o, t, 1);
    if (rv != CKR_OK)
        return hsmc_kop_rv(k, rv, "C_GetAttributeValue");
    if (t[0].ulValueLen != nl)
        return hsmc__fail(k->h, HSMC_ERR_FORMAT, CKR_OK, "CKA_MODULUS changed size");
    nb = nl;
    while (nb > 1 && src[0] == 0) {
        src++;
        nb--;
    }
    npad = (src[0] & 0x80) != 0;
    total = hsmc_spki_rsa_len(nb, el, npad, (ep[0] & 0x80) != 0, &key_len, &bit_len);
    *k->len = total;
    /* n goes where it ends up, before the headers are written over the gap. */
    memmove(k->der + total - HSMC_DER_TLV_LEN(el + ((ep[0] & 0x80) != 0)) - nb, src, nb);
    p = k->der;
    p += hsmc__der_put_hdr(p, HSMC_DER_SEQUENCE, sizeof hsmc_spki_rsa_alg + HSMC_DER_TLV_LEN(bit_len));
    memcpy(p, hsmc_spki_rsa_alg, sizeof hsmc_spki_rsa_alg);
    p += sizeof hsmc_spki_rsa_alg;
    p += hsmc__der_put_hdr(p, HSMC_DER_BIT_STRING, bit_len);
    *p++ = 0;
    p += hsmc__der_put_hdr(p, HSMC_DER_SEQUENCE, key_len);
    p += hsmc__der_put_hdr(p, HSMC_DER_INTEGER, nb + (size_t)npad);
    if (npad)
        *p++ = 0;
    p += nb;
    p += hsmc__der_put_hdr(p, HSMC_DER_INTEGER, el + ((ep[0] & 0x80) != 0));
    if (ep[0] & 0x80)
        *p++ = 0;
    memcpy(p, ep, el);
    return HSMC_OK;
}

/* The public object of k->key, in this unit. */
static hsmc_err_t hsmc_kop_pub(hsmc_kop_t *k, CK_OBJECT_HANDLE *o)
{
    hsmc_err_t err = hsmc_kop_locate(k, &k->key->pub, 0, o);

    if (err == HSMC_ERR_OBJECT_NOT_FOUND)
        return hsmc__fail(k->h, err, CKR_OK, "the public key of '%s' is no longer on the token",
                          k->key->priv.label);
    return err;
}

static hsmc_err_t hsmc_unit_export(hsmc_kop_t *k)
{
    CK_OBJECT_HANDLE o;
    hsmc_err_t err;

    err = hsmc_kop_pub(k, &o);
    if (err != HSMC_OK)
        return err;
    switch (k->key->pub.key_type) {
    case CKK_EC:
    case CKK_EC_EDWARDS:
        return hsmc_spki_ec(k, o);
    case CKK_RSA:
        return hsmc_spki_rsa(k, o);
    default:
        return hsmc__fail(k->h, HSMC_ERR_UNSUPPORTED, CKR_OK,
                          "public keys of type %s cannot be exported",
                          hsmc_key_type_name(k->key->pub.key_type));
    }
}

hsmc_err_t hsmc_key_export_pub(hsmc_t *h, const hsmc_key_t *key, uint8_t *der, size_t cap,
                               size_t *len)
{
    hsmc_kop_t k;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (key == NULL || len == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "key or len is NULL");
    *len = 0;
    if (key->priv.cls == CKO_SECRET_KEY)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "'%s' is a secret key: it has no public key",
                          key->priv.label);
    if (!key->has_pub)
        return hsmc__fail(h, key->priv.cls == CKO_PRIVATE_KEY ? HSMC_ERR_OBJECT_NOT_FOUND
                                                              : HSMC_ERR_ARG,
                          CKR_OK, "no public key object (same CKA_ID) for '%s'",
                          key->priv.label);
    memset(&k, 0, sizeof k);
    k.h = h;
    k.key = key;
    k.der = der;
    k.cap = der != NULL ? cap : 0;
    k.len = len;
    return hsmc_kop_run(&k, hsmc_unit_export);
}

/* ---- One attribute of the public object ---------------------------------- */

/* hsmc__key_pub_attr's unit: the kop first, so the unit can get back here. */
typedef struct hsmc_pub_attr_op {
    hsmc_kop_t k;
    CK_ATTRIBUTE_TYPE type;
    const char *name;
} hsmc_pub_attr_op_t;

static hsmc_err_t hsmc_unit_pub_attr(hsmc_kop_t *k)
{
    const hsmc_pub_attr_op_t *op = (const hsmc_pub_attr_op_t *)(void *)k;
    CK_OBJECT_HANDLE o;
    CK_ATTRIBUTE t;
    hsmc_err_t err;
    CK_RV rv;

    err = hsmc_kop_pub(k, &o);
    if (err != HSMC_OK)
        return err;
    (void)hsmc_put(&t, 0, op->type, k->der, k->cap);
    rv = k->fl->C_GetAttributeValue(k->s, o, &t, 1);
    if (rv == CKR_BUFFER_TOO_SMALL)
        return hsmc__fail(k->h, HSMC_ERR_BUFFER, rv,
                          "%s of the public key of '%s' is over %u bytes", op->name,
                          k->key->priv.label, (unsigned)k->cap);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
        (rv == CKR_OK && t.ulValueLen == CK_UNAVAILABLE_INFORMATION))
        return hsmc__fail(k->h, HSMC_ERR_UNSUPPORTED, rv, "the public key of '%s' has no %s",
                          k->key->priv.label, op->name);
    if (rv != CKR_OK)
        return hsmc_kop_rv(k, rv, "C_GetAttributeValue");
    *k->len = (size_t)t.ulValueLen;
    return HSMC_OK;
}

hsmc_err_t hsmc__key_pub_attr(hsmc_t *h, const hsmc_key_t *key, CK_ATTRIBUTE_TYPE type,
                              const char *name, uint8_t *buf, size_t cap, size_t *len)
{
    hsmc_pub_attr_op_t op;

    *len = 0;
    if (!key->has_pub)
        return hsmc__fail(h, HSMC_ERR_OBJECT_NOT_FOUND, CKR_OK,
                          "no public key object (same CKA_ID) for '%s'", key->priv.label);
    memset(&op, 0, sizeof op);
    op.k.h = h;
    op.k.key = key;
    op.k.der = buf;
    op.k.cap = buf != NULL ? cap : 0;
    op.k.len = len;
    op.type = type;
    op.name = name;
    return hsmc_kop_run(&op.k, hsmc_unit_pub_attr);
}

/* ---- Versions and rotation ------------------------------------------------- */

typedef struct hsmc_scan {
    const char *base;
    size_t base_len;
    hsmc_rotation_plan_t *plan; /* optional: collect the versions */
    unsigned max;
    int overflow;
} hsmc_scan_t;

/* Keep the highest HSMC_MAX_VERSIONS versions, ascending, without repeats. */
static void hsmc_plan_add(hsmc_scan_t *sc, unsigned v)
{
    hsmc_rotation_plan_t *pl = sc->plan;
    size_t i, at;

    for (i = 0; i < pl->count; i++) {
        if (pl->versions[i] == v)
            return;
    }
    if (pl->count == HSMC_MAX_VERSIONS) {
        sc->overflow = 1;
        if (v < pl->versions[0])
            return;
        memmove(&pl->versions[0], &pl->versions[1], (pl->count - 1) * sizeof pl->versions[0]);
        pl->count--;
    }
    for (at = pl->count; at > 0 && pl->versions[at - 1] > v; at--)
        pl->versions[at] = pl->versions[at - 1];
    pl->versions[at] = v;
    pl->count++;
}

static int hsmc_scan_cb(void *user, const hsmc_obj_t *obj)
{
    hsmc_scan_t *sc = (hsmc_scan_t *)user;
    unsigned v = hsmc_label_version(obj->label, obj->label_len, sc->base, sc->base_len);

    if (v == 0)
        return 0;
    if (v > sc->max)
        sc->max = v;
    if (sc->plan != NULL)
        hsmc_plan_add(sc, v);
    return 0;
}

/* Versions of base among the private and secret keys. */
static hsmc_err_t hsmc_scan_versions(hsmc_t *h, const char *base, hsmc_scan_t *sc,
                                     hsmc_rotation_plan_t *plan)
{
    static const CK_OBJECT_CLASS classes[2] = {CKO_PRIVATE_KEY, CKO_SECRET_KEY};
    hsmc_obj_query_t q;
    hsmc_err_t err = HSMC_OK;
    size_t i;

    memset(sc, 0, sizeof *sc);
    if (base == NULL || base[0] == '\0')
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "base label is NULL or empty");
    sc->base = base;
    sc->base_len = strlen(base);
    sc->plan = plan;
    if (sc->base_len + HSMC_VERSION_SUFFIX_MIN > HSMC_MAX_LABEL_LEN)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "base label '%.40s...' leaves no room for '-v0001' within "
                          "HSMC_MAX_LABEL_LEN (%d)",
                          base, HSMC_MAX_LABEL_LEN);
    memset(&q, 0, sizeof q);
    q.has_class = 1;
    for (i = 0; i < 2 && err == HSMC_OK; i++) {
        q.cls = classes[i];
        err = hsmc_list(h, &q, hsmc_scan_cb, sc, NULL);
    }
    return err;
}

/* The next version's label into out (HSMC_MAX_LABEL_LEN + 1 bytes). */
static hsmc_err_t hsmc_next_label(hsmc_t *h, const hsmc_scan_t *sc, char *out)
{
    if (sc->max >= HSMC_VERSION_MAX ||
        hsmc_key_version_label(sc->base, sc->max + 1, out, HSMC_MAX_LABEL_LEN + 1) != HSMC_OK)
        return hsmc__fail(h, HSMC_ERR_LIMIT, CKR_OK,
                          "version %u of '%s' does not fit in a label of HSMC_MAX_LABEL_LEN "
                          "(%d) bytes",
                          sc->max + 1, sc->base, HSMC_MAX_LABEL_LEN);
    return HSMC_OK;
}

hsmc_err_t hsmc_key_plan(hsmc_t *h, const char *base, hsmc_rotation_plan_t *plan)
{
    hsmc_scan_t sc;
    hsmc_err_t err;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (plan == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "plan is NULL");
    memset(plan, 0, sizeof *plan);
    err = hsmc_scan_versions(h, base, &sc, plan);
    if (err == HSMC_OK)
        err = hsmc_next_label(h, &sc, plan->next_label);
    if (err != HSMC_OK) {
        memset(plan, 0, sizeof *plan);
        return err;
    }
    plan->next = sc.max + 1;
    if (sc.overflow)
        return hsmc__fail(h, HSMC_ERR_LIMIT, CKR_OK,
                          "more than HSMC_MAX_VERSIONS (%d) versions of '%s' exist; the plan "
                          "lists the newest; delete old versions",
                          HSMC_MAX_VERSIONS, base);
    return HSMC_OK;
}

hsmc_err_t hsmc_key_latest(hsmc_t *h, const char *base, hsmc_key_t *out)
{
    char label[HSMC_MAX_LABEL_LEN + 1];
    hsmc_scan_t sc;
    hsmc_err_t err;

    if (h == NULL)
        return HSMC_ERR_ARG;
    err = hsmc_out_clear(h, out);
    if (err == HSMC_OK)
        err = hsmc_scan_versions(h, base, &sc, NULL);
    if (err != HSMC_OK)
        return err;
    if (sc.max == 0)
        return hsmc__fail(h, HSMC_ERR_OBJECT_NOT_FOUND, CKR_OK,
                          "no version of '%s' (labels '%s-v0001' ...) on the token", base, base);
    if (hsmc_key_version_label(base, sc.max, label, sizeof label) != HSMC_OK)
        return hsmc__fail(h, HSMC_ERR_INTERNAL, CKR_OK, "version label of '%s'", base);
    return hsmc_key_open(h, label, out);
}

hsmc_err_t hsmc_key_rotate(hsmc_t *h, const char *base, const hsmc_key_spec_t *spec,
                           hsmc_key_t *out)
{
    char label[HSMC_MAX_LABEL_LEN + 1];
    hsmc_scan_t sc;
    hsmc_err_t err;

    if (h == NULL)
        return HSMC_ERR_ARG;
    err = hsmc_out_clear(h, out);
    if (err == HSMC_OK)
        err = hsmc_check_spec(h, spec);
    if (err == HSMC_OK)
        err = hsmc_scan_versions(h, base, &sc, NULL);
    if (err == HSMC_OK)
        err = hsmc_next_label(h, &sc, label);
    if (err != HSMC_OK)
        return err;
    return hsmc_key_generate(h, label, spec, out);
}
