/*
 * Name tables: PKCS#11 return values, mechanisms, object classes and key
 * types, and hsmc's probe operations and statuses.
 *
 * Every function is pure: it maps a number to a static string and never
 * fails or allocates. The tables are const arrays sorted by value and
 * searched by bisection, so they live in read-only memory (flash on
 * firmware). test/unit/test_names.c looks every entry up by value, which
 * fails for any entry out of order.
 */
#include <stddef.h>

#include "hsmc/error.h"
#include "hsmc/object.h"
#include "hsmc/probe.h"

/*
 * Values newer than p11-kit 0.24's header (PKCS#11 3.0). Local names, so a
 * newer header that defines the CKM_/CKK_ macro is used instead of ours.
 */
#ifdef CKM_AES_KEY_WRAP_KWP
#define HSMC_CKM_AES_KEY_WRAP_KWP CKM_AES_KEY_WRAP_KWP
#else
#define HSMC_CKM_AES_KEY_WRAP_KWP 0x210BUL /* RFC 5649 wrap, PKCS#11 3.0 */
#endif
#ifdef CKM_EC_MONTGOMERY_KEY_PAIR_GEN
#define HSMC_CKM_EC_MONTGOMERY_KEY_PAIR_GEN CKM_EC_MONTGOMERY_KEY_PAIR_GEN
#else
#define HSMC_CKM_EC_MONTGOMERY_KEY_PAIR_GEN 0x1056UL /* PKCS#11 3.0 */
#endif
#ifdef CKK_EC_MONTGOMERY
#define HSMC_CKK_EC_MONTGOMERY CKK_EC_MONTGOMERY
#else
#define HSMC_CKK_EC_MONTGOMERY 0x41UL /* PKCS#11 3.0 */
#endif

typedef struct hsmc_name_entry {
    CK_ULONG value;
    const char *name;
} hsmc_name_entry_t;

/* An entry whose name is the macro's own spelling. */
#define HSMC_N(x) \
    {             \
        x, #x     \
    }
#define HSMC_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Every CKR_ value of p11-kit's PKCS#11 2.40 header, by value. */
static const hsmc_name_entry_t hsmc_ckr_names[] = {
    HSMC_N(CKR_OK),
    HSMC_N(CKR_CANCEL),
    HSMC_N(CKR_HOST_MEMORY),
    HSMC_N(CKR_SLOT_ID_INVALID),
    HSMC_N(CKR_GENERAL_ERROR),
    HSMC_N(CKR_FUNCTION_FAILED),
    HSMC_N(CKR_ARGUMENTS_BAD),
    HSMC_N(CKR_NO_EVENT),
    HSMC_N(CKR_NEED_TO_CREATE_THREADS),
    HSMC_N(CKR_CANT_LOCK),
    HSMC_N(CKR_ATTRIBUTE_READ_ONLY),
    HSMC_N(CKR_ATTRIBUTE_SENSITIVE),
    HSMC_N(CKR_ATTRIBUTE_TYPE_INVALID),
    HSMC_N(CKR_ATTRIBUTE_VALUE_INVALID),
    HSMC_N(CKR_ACTION_PROHIBITED),
    HSMC_N(CKR_DATA_INVALID),
    HSMC_N(CKR_DATA_LEN_RANGE),
    HSMC_N(CKR_DEVICE_ERROR),
    HSMC_N(CKR_DEVICE_MEMORY),
    HSMC_N(CKR_DEVICE_REMOVED),
    HSMC_N(CKR_ENCRYPTED_DATA_INVALID),
    HSMC_N(CKR_ENCRYPTED_DATA_LEN_RANGE),
    HSMC_N(CKR_FUNCTION_CANCELED),
    HSMC_N(CKR_FUNCTION_NOT_PARALLEL),
    HSMC_N(CKR_FUNCTION_NOT_SUPPORTED),
    HSMC_N(CKR_KEY_HANDLE_INVALID),
    HSMC_N(CKR_KEY_SIZE_RANGE),
    HSMC_N(CKR_KEY_TYPE_INCONSISTENT),
    HSMC_N(CKR_KEY_NOT_NEEDED),
    HSMC_N(CKR_KEY_CHANGED),
    HSMC_N(CKR_KEY_NEEDED),
    HSMC_N(CKR_KEY_INDIGESTIBLE),
    HSMC_N(CKR_KEY_FUNCTION_NOT_PERMITTED),
    HSMC_N(CKR_KEY_NOT_WRAPPABLE),
    HSMC_N(CKR_KEY_UNEXTRACTABLE),
    HSMC_N(CKR_MECHANISM_INVALID),
    HSMC_N(CKR_MECHANISM_PARAM_INVALID),
    HSMC_N(CKR_OBJECT_HANDLE_INVALID),
    HSMC_N(CKR_OPERATION_ACTIVE),
    HSMC_N(CKR_OPERATION_NOT_INITIALIZED),
    HSMC_N(CKR_PIN_INCORRECT),
    HSMC_N(CKR_PIN_INVALID),
    HSMC_N(CKR_PIN_LEN_RANGE),
    HSMC_N(CKR_PIN_EXPIRED),
    HSMC_N(CKR_PIN_LOCKED),
    HSMC_N(CKR_SESSION_CLOSED),
    HSMC_N(CKR_SESSION_COUNT),
    HSMC_N(CKR_SESSION_HANDLE_INVALID),
    HSMC_N(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    HSMC_N(CKR_SESSION_READ_ONLY),
    HSMC_N(CKR_SESSION_EXISTS),
    HSMC_N(CKR_SESSION_READ_ONLY_EXISTS),
    HSMC_N(CKR_SESSION_READ_WRITE_SO_EXISTS),
    HSMC_N(CKR_SIGNATURE_INVALID),
    HSMC_N(CKR_SIGNATURE_LEN_RANGE),
    HSMC_N(CKR_TEMPLATE_INCOMPLETE),
    HSMC_N(CKR_TEMPLATE_INCONSISTENT),
    HSMC_N(CKR_TOKEN_NOT_PRESENT),
    HSMC_N(CKR_TOKEN_NOT_RECOGNIZED),
    HSMC_N(CKR_TOKEN_WRITE_PROTECTED),
    HSMC_N(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
    HSMC_N(CKR_UNWRAPPING_KEY_SIZE_RANGE),
    HSMC_N(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
    HSMC_N(CKR_USER_ALREADY_LOGGED_IN),
    HSMC_N(CKR_USER_NOT_LOGGED_IN),
    HSMC_N(CKR_USER_PIN_NOT_INITIALIZED),
    HSMC_N(CKR_USER_TYPE_INVALID),
    HSMC_N(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    HSMC_N(CKR_USER_TOO_MANY_TYPES),
    HSMC_N(CKR_WRAPPED_KEY_INVALID),
    HSMC_N(CKR_WRAPPED_KEY_LEN_RANGE),
    HSMC_N(CKR_WRAPPING_KEY_HANDLE_INVALID),
    HSMC_N(CKR_WRAPPING_KEY_SIZE_RANGE),
    HSMC_N(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
    HSMC_N(CKR_RANDOM_SEED_NOT_SUPPORTED),
    HSMC_N(CKR_RANDOM_NO_RNG),
    HSMC_N(CKR_DOMAIN_PARAMS_INVALID),
    HSMC_N(CKR_CURVE_NOT_SUPPORTED),
    HSMC_N(CKR_BUFFER_TOO_SMALL),
    HSMC_N(CKR_SAVED_STATE_INVALID),
    HSMC_N(CKR_INFORMATION_SENSITIVE),
    HSMC_N(CKR_STATE_UNSAVEABLE),
    HSMC_N(CKR_CRYPTOKI_NOT_INITIALIZED),
    HSMC_N(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    HSMC_N(CKR_MUTEX_BAD),
    HSMC_N(CKR_MUTEX_NOT_LOCKED),
    HSMC_N(CKR_NEW_PIN_MODE),
    HSMC_N(CKR_NEXT_OTP),
    HSMC_N(CKR_EXCEEDED_MAX_ITERATIONS),
    HSMC_N(CKR_FIPS_SELF_TEST_FAILED),
    HSMC_N(CKR_LIBRARY_LOAD_FAILED),
    HSMC_N(CKR_PIN_TOO_WEAK),
    HSMC_N(CKR_PUBLIC_KEY_INVALID),
    HSMC_N(CKR_FUNCTION_REJECTED),
};

/*
 * Mechanisms, by value: what hsmc uses, everything SoftHSM2 2.6 lists and
 * the common rest. Obsolete families (CAST, RC2/4/5, IDEA, SKIPJACK, SSL,
 * WTLS, ...) are left out to keep the table small on firmware.
 */
static const hsmc_name_entry_t hsmc_ckm_names[] = {
    HSMC_N(CKM_RSA_PKCS_KEY_PAIR_GEN),
    HSMC_N(CKM_RSA_PKCS),
    HSMC_N(CKM_RSA_9796),
    HSMC_N(CKM_RSA_X_509),
    HSMC_N(CKM_MD5_RSA_PKCS),
    HSMC_N(CKM_SHA1_RSA_PKCS),
    HSMC_N(CKM_RIPEMD160_RSA_PKCS),
    HSMC_N(CKM_RSA_PKCS_OAEP),
    HSMC_N(CKM_RSA_X9_31_KEY_PAIR_GEN),
    HSMC_N(CKM_RSA_X9_31),
    HSMC_N(CKM_SHA1_RSA_X9_31),
    HSMC_N(CKM_RSA_PKCS_PSS),
    HSMC_N(CKM_SHA1_RSA_PKCS_PSS),
    HSMC_N(CKM_DSA_KEY_PAIR_GEN),
    HSMC_N(CKM_DSA),
    HSMC_N(CKM_DSA_SHA1),
    HSMC_N(CKM_DSA_SHA224),
    HSMC_N(CKM_DSA_SHA256),
    HSMC_N(CKM_DSA_SHA384),
    HSMC_N(CKM_DSA_SHA512),
    HSMC_N(CKM_DH_PKCS_KEY_PAIR_GEN),
    HSMC_N(CKM_DH_PKCS_DERIVE),
    HSMC_N(CKM_X9_42_DH_KEY_PAIR_GEN),
    HSMC_N(CKM_X9_42_DH_DERIVE),
    HSMC_N(CKM_SHA256_RSA_PKCS),
    HSMC_N(CKM_SHA384_RSA_PKCS),
    HSMC_N(CKM_SHA512_RSA_PKCS),
    HSMC_N(CKM_SHA256_RSA_PKCS_PSS),
    HSMC_N(CKM_SHA384_RSA_PKCS_PSS),
    HSMC_N(CKM_SHA512_RSA_PKCS_PSS),
    HSMC_N(CKM_SHA224_RSA_PKCS),
    HSMC_N(CKM_SHA224_RSA_PKCS_PSS),
    HSMC_N(CKM_SHA512_224),
    HSMC_N(CKM_SHA512_256),
    HSMC_N(CKM_DES_KEY_GEN),
    HSMC_N(CKM_DES_ECB),
    HSMC_N(CKM_DES_CBC),
    HSMC_N(CKM_DES_MAC),
    HSMC_N(CKM_DES_CBC_PAD),
    HSMC_N(CKM_DES2_KEY_GEN),
    HSMC_N(CKM_DES3_KEY_GEN),
    HSMC_N(CKM_DES3_ECB),
    HSMC_N(CKM_DES3_CBC),
    HSMC_N(CKM_DES3_MAC),
    HSMC_N(CKM_DES3_MAC_GENERAL),
    HSMC_N(CKM_DES3_CBC_PAD),
    HSMC_N(CKM_DES3_CMAC_GENERAL),
    HSMC_N(CKM_DES3_CMAC),
    HSMC_N(CKM_MD5),
    HSMC_N(CKM_MD5_HMAC),
    HSMC_N(CKM_SHA_1),
    HSMC_N(CKM_SHA_1_HMAC),
    HSMC_N(CKM_SHA_1_HMAC_GENERAL),
    HSMC_N(CKM_RIPEMD160),
    HSMC_N(CKM_SHA256),
    HSMC_N(CKM_SHA256_HMAC),
    HSMC_N(CKM_SHA256_HMAC_GENERAL),
    HSMC_N(CKM_SHA224),
    HSMC_N(CKM_SHA224_HMAC),
    HSMC_N(CKM_SHA224_HMAC_GENERAL),
    HSMC_N(CKM_SHA384),
    HSMC_N(CKM_SHA384_HMAC),
    HSMC_N(CKM_SHA384_HMAC_GENERAL),
    HSMC_N(CKM_SHA512),
    HSMC_N(CKM_SHA512_HMAC),
    HSMC_N(CKM_SHA512_HMAC_GENERAL),
    HSMC_N(CKM_GENERIC_SECRET_KEY_GEN),
    HSMC_N(CKM_CONCATENATE_BASE_AND_KEY),
    HSMC_N(CKM_CONCATENATE_BASE_AND_DATA),
    HSMC_N(CKM_CONCATENATE_DATA_AND_BASE),
    HSMC_N(CKM_XOR_BASE_AND_DATA),
    HSMC_N(CKM_EXTRACT_KEY_FROM_KEY),
    HSMC_N(CKM_SHA1_KEY_DERIVATION),
    HSMC_N(CKM_SHA256_KEY_DERIVATION),
    HSMC_N(CKM_PKCS5_PBKD2),
    HSMC_N(CKM_TLS12_KDF),
    HSMC_N(CKM_CAMELLIA_KEY_GEN),
    HSMC_N(CKM_CAMELLIA_CBC),
    HSMC_N(CKM_EC_KEY_PAIR_GEN),
    HSMC_N(CKM_ECDSA),
    HSMC_N(CKM_ECDSA_SHA1),
    HSMC_N(CKM_ECDSA_SHA224),
    HSMC_N(CKM_ECDSA_SHA256),
    HSMC_N(CKM_ECDSA_SHA384),
    HSMC_N(CKM_ECDSA_SHA512),
    HSMC_N(CKM_ECDH1_DERIVE),
    HSMC_N(CKM_ECDH1_COFACTOR_DERIVE),
    HSMC_N(CKM_ECMQV_DERIVE),
    HSMC_N(CKM_ECDH_AES_KEY_WRAP),
    HSMC_N(CKM_RSA_AES_KEY_WRAP),
    HSMC_N(CKM_EC_EDWARDS_KEY_PAIR_GEN),
    {HSMC_CKM_EC_MONTGOMERY_KEY_PAIR_GEN, "CKM_EC_MONTGOMERY_KEY_PAIR_GEN"},
    HSMC_N(CKM_EDDSA),
    HSMC_N(CKM_AES_KEY_GEN),
    HSMC_N(CKM_AES_ECB),
    HSMC_N(CKM_AES_CBC),
    HSMC_N(CKM_AES_MAC),
    HSMC_N(CKM_AES_MAC_GENERAL),
    HSMC_N(CKM_AES_CBC_PAD),
    HSMC_N(CKM_AES_CTR),
    HSMC_N(CKM_AES_GCM),
    HSMC_N(CKM_AES_CCM),
    HSMC_N(CKM_AES_CTS),
    HSMC_N(CKM_AES_CMAC),
    HSMC_N(CKM_AES_CMAC_GENERAL),
    HSMC_N(CKM_AES_XCBC_MAC),
    HSMC_N(CKM_AES_XCBC_MAC_96),
    HSMC_N(CKM_AES_GMAC),
    HSMC_N(CKM_DES_ECB_ENCRYPT_DATA),
    HSMC_N(CKM_DES_CBC_ENCRYPT_DATA),
    HSMC_N(CKM_DES3_ECB_ENCRYPT_DATA),
    HSMC_N(CKM_DES3_CBC_ENCRYPT_DATA),
    HSMC_N(CKM_AES_ECB_ENCRYPT_DATA),
    HSMC_N(CKM_AES_CBC_ENCRYPT_DATA),
    HSMC_N(CKM_GOSTR3410_KEY_PAIR_GEN),
    HSMC_N(CKM_GOSTR3410),
    HSMC_N(CKM_GOSTR3411),
    HSMC_N(CKM_DSA_PARAMETER_GEN),
    HSMC_N(CKM_DH_PKCS_PARAMETER_GEN),
    HSMC_N(CKM_AES_OFB),
    HSMC_N(CKM_AES_CFB64),
    HSMC_N(CKM_AES_CFB8),
    HSMC_N(CKM_AES_CFB128),
    HSMC_N(CKM_AES_CFB1),
    HSMC_N(CKM_AES_KEY_WRAP),
    HSMC_N(CKM_AES_KEY_WRAP_PAD),
    {HSMC_CKM_AES_KEY_WRAP_KWP, "CKM_AES_KEY_WRAP_KWP"},
    HSMC_N(CKM_RSA_PKCS_TPM_1_1),
    HSMC_N(CKM_RSA_PKCS_OAEP_TPM_1_1),
};

/* Key types by value, without the CKK_ prefix. */
static const hsmc_name_entry_t hsmc_ckk_names[] = {
    {CKK_RSA, "RSA"},
    {CKK_DSA, "DSA"},
    {CKK_DH, "DH"},
    {CKK_EC, "EC"},
    {CKK_X9_42_DH, "X9_42_DH"},
    {CKK_KEA, "KEA"},
    {CKK_GENERIC_SECRET, "GENERIC_SECRET"},
    {CKK_RC2, "RC2"},
    {CKK_RC4, "RC4"},
    {CKK_DES, "DES"},
    {CKK_DES2, "DES2"},
    {CKK_DES3, "DES3"},
    {CKK_CAST, "CAST"},
    {CKK_CAST3, "CAST3"},
    {CKK_CAST128, "CAST128"},
    {CKK_RC5, "RC5"},
    {CKK_IDEA, "IDEA"},
    {CKK_SKIPJACK, "SKIPJACK"},
    {CKK_BATON, "BATON"},
    {CKK_JUNIPER, "JUNIPER"},
    {CKK_CDMF, "CDMF"},
    {CKK_AES, "AES"},
    {CKK_BLOWFISH, "BLOWFISH"},
    {CKK_TWOFISH, "TWOFISH"},
    {CKK_SECURID, "SECURID"},
    {CKK_HOTP, "HOTP"},
    {CKK_ACTI, "ACTI"},
    {CKK_CAMELLIA, "CAMELLIA"},
    {CKK_ARIA, "ARIA"},
    {CKK_MD5_HMAC, "MD5_HMAC"},
    {CKK_SHA_1_HMAC, "SHA_1_HMAC"},
    {CKK_RIPEMD128_HMAC, "RIPEMD128_HMAC"},
    {CKK_RIPEMD160_HMAC, "RIPEMD160_HMAC"},
    {CKK_SHA256_HMAC, "SHA256_HMAC"},
    {CKK_SHA384_HMAC, "SHA384_HMAC"},
    {CKK_SHA512_HMAC, "SHA512_HMAC"},
    {CKK_SHA224_HMAC, "SHA224_HMAC"},
    {CKK_SEED, "SEED"},
    {CKK_GOSTR3410, "GOSTR3410"},
    {CKK_GOSTR3411, "GOSTR3411"},
    {CKK_GOST28147, "GOST28147"},
    {CKK_EC_EDWARDS, "EC_EDWARDS"},
    {HSMC_CKK_EC_MONTGOMERY, "EC_MONTGOMERY"},
};

/* Object classes, indexed by CKO_ value (CKO_DATA = 0 ... CKO_OTP_KEY = 8). */
static const char *const hsmc_cko_names[] = {
    "data", "certificate", "public-key", "private-key", "secret-key",
    "hw-feature", "domain-parameters", "mechanism", "otp-key",
};

/* Indexed by hsmc_op_t. */
static const char *const hsmc_op_names[] = {
    "random",         "digest-sha256",   "keygen-aes",      "keygen-ec",
    "keygen-rsa",     "sign-ecdsa",      "sign-rsa-pkcs",   "sign-rsa-pss",
    "aes-gcm",        "aes-key-wrap",    "aes-key-wrap-pad", "aes-cbc-pad",
    "rsa-oaep-sha1",  "rsa-oaep-sha256", "eddsa",
};

/* Compile-time checks that the indexed tables follow their enums. */
typedef char hsmc_op_names_match[HSMC_COUNT(hsmc_op_names) == (size_t)HSMC_OP_COUNT ? 1 : -1];
typedef char hsmc_cko_names_match[HSMC_COUNT(hsmc_cko_names) == (size_t)CKO_OTP_KEY + 1u ? 1 : -1];

/* Bisection in a table sorted by value. @return the name or NULL. */
static const char *hsmc_name_find(const hsmc_name_entry_t *t, size_t n, CK_ULONG v)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2u;
        if (t[mid].value == v)
            return t[mid].name;
        if (t[mid].value < v)
            lo = mid + 1u;
        else
            hi = mid;
    }
    return NULL;
}

const char *hsmc_ckr_name(CK_RV rv)
{
    const char *n = hsmc_name_find(hsmc_ckr_names, HSMC_COUNT(hsmc_ckr_names), rv);

    if (n != NULL)
        return n;
    return rv >= CKR_VENDOR_DEFINED ? "CKR_VENDOR_DEFINED" : "CKR_UNKNOWN";
}

const char *hsmc_ckm_name(CK_MECHANISM_TYPE mech)
{
    const char *n = hsmc_name_find(hsmc_ckm_names, HSMC_COUNT(hsmc_ckm_names), mech);

    if (n != NULL)
        return n;
    return mech >= CKM_VENDOR_DEFINED ? "CKM_VENDOR_DEFINED" : "CKM_UNKNOWN";
}

/* URI-style names ("type" values of RFC 7512 where they exist). */
const char *hsmc_class_name(CK_OBJECT_CLASS cls)
{
    if (cls < HSMC_COUNT(hsmc_cko_names))
        return hsmc_cko_names[cls];
    return cls >= CKO_VENDOR_DEFINED ? "vendor-defined" : "?";
}

/* The CKK_ name without its prefix; "VENDOR_DEFINED" or "?" otherwise. */
const char *hsmc_key_type_name(CK_KEY_TYPE kt)
{
    const char *n = hsmc_name_find(hsmc_ckk_names, HSMC_COUNT(hsmc_ckk_names), kt);

    if (n != NULL)
        return n;
    return kt >= CKK_VENDOR_DEFINED ? "VENDOR_DEFINED" : "?";
}

/* The CLI's operation names; "?" outside the enum. */
const char *hsmc_op_name(hsmc_op_t op)
{
    /* Compared as unsigned: an out-of-range enum value may be negative. */
    if ((unsigned)op >= (unsigned)HSMC_OP_COUNT)
        return "?";
    return hsmc_op_names[op];
}

/* Lower-case status words; "unknown" for HSMC_CAP_UNKNOWN and out of range. */
const char *hsmc_cap_status_name(hsmc_cap_status_t st)
{
    switch (st) {
    case HSMC_CAP_WORKS:
        return "works";
    case HSMC_CAP_LISTED:
        return "listed";
    case HSMC_CAP_BROKEN:
        return "broken";
    case HSMC_CAP_MISSING:
        return "missing";
    case HSMC_CAP_UNKNOWN:
    default:
        break;
    }
    return "unknown";
}
