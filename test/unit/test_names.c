/*
 * Name tables (core/hsmc_names.c): every CKR_ value of the PKCS#11 2.40
 * header and every mechanism the table holds is looked up by value (the
 * tables are searched by bisection, so an entry out of order would be
 * missed here), plus unknown and vendor values for each function.
 */
#include "hsmc_test.h"

typedef struct {
    CK_ULONG value;
    const char *name;
} entry_t;
#define T(x) {x, #x}

/* Every CKR_ of p11-kit's pkcs11.h (PKCS#11 2.40). */
static const entry_t ckr[] = {
    T(CKR_OK),
    T(CKR_CANCEL),
    T(CKR_HOST_MEMORY),
    T(CKR_SLOT_ID_INVALID),
    T(CKR_GENERAL_ERROR),
    T(CKR_FUNCTION_FAILED),
    T(CKR_ARGUMENTS_BAD),
    T(CKR_NO_EVENT),
    T(CKR_NEED_TO_CREATE_THREADS),
    T(CKR_CANT_LOCK),
    T(CKR_ATTRIBUTE_READ_ONLY),
    T(CKR_ATTRIBUTE_SENSITIVE),
    T(CKR_ATTRIBUTE_TYPE_INVALID),
    T(CKR_ATTRIBUTE_VALUE_INVALID),
    T(CKR_ACTION_PROHIBITED),
    T(CKR_DATA_INVALID),
    T(CKR_DATA_LEN_RANGE),
    T(CKR_DEVICE_ERROR),
    T(CKR_DEVICE_MEMORY),
    T(CKR_DEVICE_REMOVED),
    T(CKR_ENCRYPTED_DATA_INVALID),
    T(CKR_ENCRYPTED_DATA_LEN_RANGE),
    T(CKR_FUNCTION_CANCELED),
    T(CKR_FUNCTION_NOT_PARALLEL),
    T(CKR_FUNCTION_NOT_SUPPORTED),
    T(CKR_KEY_HANDLE_INVALID),
    T(CKR_KEY_SIZE_RANGE),
    T(CKR_KEY_TYPE_INCONSISTENT),
    T(CKR_KEY_NOT_NEEDED),
    T(CKR_KEY_CHANGED),
    T(CKR_KEY_NEEDED),
    T(CKR_KEY_INDIGESTIBLE),
    T(CKR_KEY_FUNCTION_NOT_PERMITTED),
    T(CKR_KEY_NOT_WRAPPABLE),
    T(CKR_KEY_UNEXTRACTABLE),
    T(CKR_MECHANISM_INVALID),
    T(CKR_MECHANISM_PARAM_INVALID),
    T(CKR_OBJECT_HANDLE_INVALID),
    T(CKR_OPERATION_ACTIVE),
    T(CKR_OPERATION_NOT_INITIALIZED),
    T(CKR_PIN_INCORRECT),
    T(CKR_PIN_INVALID),
    T(CKR_PIN_LEN_RANGE),
    T(CKR_PIN_EXPIRED),
    T(CKR_PIN_LOCKED),
    T(CKR_SESSION_CLOSED),
    T(CKR_SESSION_COUNT),
    T(CKR_SESSION_HANDLE_INVALID),
    T(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    T(CKR_SESSION_READ_ONLY),
    T(CKR_SESSION_EXISTS),
    T(CKR_SESSION_READ_ONLY_EXISTS),
    T(CKR_SESSION_READ_WRITE_SO_EXISTS),
    T(CKR_SIGNATURE_INVALID),
    T(CKR_SIGNATURE_LEN_RANGE),
    T(CKR_TEMPLATE_INCOMPLETE),
    T(CKR_TEMPLATE_INCONSISTENT),
    T(CKR_TOKEN_NOT_PRESENT),
    T(CKR_TOKEN_NOT_RECOGNIZED),
    T(CKR_TOKEN_WRITE_PROTECTED),
    T(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
    T(CKR_UNWRAPPING_KEY_SIZE_RANGE),
    T(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
    T(CKR_USER_ALREADY_LOGGED_IN),
    T(CKR_USER_NOT_LOGGED_IN),
    T(CKR_USER_PIN_NOT_INITIALIZED),
    T(CKR_USER_TYPE_INVALID),
    T(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    T(CKR_USER_TOO_MANY_TYPES),
    T(CKR_WRAPPED_KEY_INVALID),
    T(CKR_WRAPPED_KEY_LEN_RANGE),
    T(CKR_WRAPPING_KEY_HANDLE_INVALID),
    T(CKR_WRAPPING_KEY_SIZE_RANGE),
    T(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
    T(CKR_RANDOM_SEED_NOT_SUPPORTED),
    T(CKR_RANDOM_NO_RNG),
    T(CKR_DOMAIN_PARAMS_INVALID),
    T(CKR_CURVE_NOT_SUPPORTED),
    T(CKR_BUFFER_TOO_SMALL),
    T(CKR_SAVED_STATE_INVALID),
    T(CKR_INFORMATION_SENSITIVE),
    T(CKR_STATE_UNSAVEABLE),
    T(CKR_CRYPTOKI_NOT_INITIALIZED),
    T(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    T(CKR_MUTEX_BAD),
    T(CKR_MUTEX_NOT_LOCKED),
    T(CKR_NEW_PIN_MODE),
    T(CKR_NEXT_OTP),
    T(CKR_EXCEEDED_MAX_ITERATIONS),
    T(CKR_FIPS_SELF_TEST_FAILED),
    T(CKR_LIBRARY_LOAD_FAILED),
    T(CKR_PIN_TOO_WEAK),
    T(CKR_PUBLIC_KEY_INVALID),
    T(CKR_FUNCTION_REJECTED),
};

/* Every mechanism hsmc_ckm_name knows by its header name. */
static const entry_t ckm[] = {
    T(CKM_RSA_PKCS_KEY_PAIR_GEN),
    T(CKM_RSA_PKCS),
    T(CKM_RSA_9796),
    T(CKM_RSA_X_509),
    T(CKM_MD5_RSA_PKCS),
    T(CKM_SHA1_RSA_PKCS),
    T(CKM_RIPEMD160_RSA_PKCS),
    T(CKM_RSA_PKCS_OAEP),
    T(CKM_RSA_X9_31_KEY_PAIR_GEN),
    T(CKM_RSA_X9_31),
    T(CKM_SHA1_RSA_X9_31),
    T(CKM_RSA_PKCS_PSS),
    T(CKM_SHA1_RSA_PKCS_PSS),
    T(CKM_DSA_KEY_PAIR_GEN),
    T(CKM_DSA),
    T(CKM_DSA_SHA1),
    T(CKM_DSA_SHA224),
    T(CKM_DSA_SHA256),
    T(CKM_DSA_SHA384),
    T(CKM_DSA_SHA512),
    T(CKM_DH_PKCS_KEY_PAIR_GEN),
    T(CKM_DH_PKCS_DERIVE),
    T(CKM_X9_42_DH_KEY_PAIR_GEN),
    T(CKM_X9_42_DH_DERIVE),
    T(CKM_SHA256_RSA_PKCS),
    T(CKM_SHA384_RSA_PKCS),
    T(CKM_SHA512_RSA_PKCS),
    T(CKM_SHA256_RSA_PKCS_PSS),
    T(CKM_SHA384_RSA_PKCS_PSS),
    T(CKM_SHA512_RSA_PKCS_PSS),
    T(CKM_SHA224_RSA_PKCS),
    T(CKM_SHA224_RSA_PKCS_PSS),
    T(CKM_SHA512_224),
    T(CKM_SHA512_256),
    T(CKM_DES_KEY_GEN),
    T(CKM_DES_ECB),
    T(CKM_DES_CBC),
    T(CKM_DES_MAC),
    T(CKM_DES_CBC_PAD),
    T(CKM_DES2_KEY_GEN),
    T(CKM_DES3_KEY_GEN),
    T(CKM_DES3_ECB),
    T(CKM_DES3_CBC),
    T(CKM_DES3_MAC),
    T(CKM_DES3_MAC_GENERAL),
    T(CKM_DES3_CBC_PAD),
    T(CKM_DES3_CMAC_GENERAL),
    T(CKM_DES3_CMAC),
    T(CKM_MD5),
    T(CKM_MD5_HMAC),
    T(CKM_SHA_1),
    T(CKM_SHA_1_HMAC),
    T(CKM_SHA_1_HMAC_GENERAL),
    T(CKM_RIPEMD160),
    T(CKM_SHA256),
    T(CKM_SHA256_HMAC),
    T(CKM_SHA256_HMAC_GENERAL),
    T(CKM_SHA224),
    T(CKM_SHA224_HMAC),
    T(CKM_SHA224_HMAC_GENERAL),
    T(CKM_SHA384),
    T(CKM_SHA384_HMAC),
    T(CKM_SHA384_HMAC_GENERAL),
    T(CKM_SHA512),
    T(CKM_SHA512_HMAC),
    T(CKM_SHA512_HMAC_GENERAL),
    T(CKM_GENERIC_SECRET_KEY_GEN),
    T(CKM_CONCATENATE_BASE_AND_KEY),
    T(CKM_CONCATENATE_BASE_AND_DATA),
    T(CKM_CONCATENATE_DATA_AND_BASE),
    T(CKM_XOR_BASE_AND_DATA),
    T(CKM_EXTRACT_KEY_FROM_KEY),
    T(CKM_SHA1_KEY_DERIVATION),
    T(CKM_SHA256_KEY_DERIVATION),
    T(CKM_PKCS5_PBKD2),
    T(CKM_TLS12_KDF),
    T(CKM_CAMELLIA_KEY_GEN),
    T(CKM_CAMELLIA_CBC),
    T(CKM_EC_KEY_PAIR_GEN),
    T(CKM_ECDSA),
    T(CKM_ECDSA_SHA1),
    T(CKM_ECDSA_SHA224),
    T(CKM_ECDSA_SHA256),
    T(CKM_ECDSA_SHA384),
    T(CKM_ECDSA_SHA512),
    T(CKM_ECDH1_DERIVE),
    T(CKM_ECDH1_COFACTOR_DERIVE),
    T(CKM_ECMQV_DERIVE),
    T(CKM_ECDH_AES_KEY_WRAP),
    T(CKM_RSA_AES_KEY_WRAP),
    T(CKM_EC_EDWARDS_KEY_PAIR_GEN),
    T(CKM_EDDSA),
    T(CKM_AES_KEY_GEN),
    T(CKM_AES_ECB),
    T(CKM_AES_CBC),
    T(CKM_AES_MAC),
    T(CKM_AES_MAC_GENERAL),
    T(CKM_AES_CBC_PAD),
    T(CKM_AES_CTR),
    T(CKM_AES_GCM),
    T(CKM_AES_CCM),
    T(CKM_AES_CTS),
    T(CKM_AES_CMAC),
    T(CKM_AES_CMAC_GENERAL),
    T(CKM_AES_XCBC_MAC),
    T(CKM_AES_XCBC_MAC_96),
    T(CKM_AES_GMAC),
    T(CKM_DES_ECB_ENCRYPT_DATA),
    T(CKM_DES_CBC_ENCRYPT_DATA),
    T(CKM_DES3_ECB_ENCRYPT_DATA),
    T(CKM_DES3_CBC_ENCRYPT_DATA),
    T(CKM_AES_ECB_ENCRYPT_DATA),
    T(CKM_AES_CBC_ENCRYPT_DATA),
    T(CKM_GOSTR3410_KEY_PAIR_GEN),
    T(CKM_GOSTR3410),
    T(CKM_GOSTR3411),
    T(CKM_DSA_PARAMETER_GEN),
    T(CKM_DH_PKCS_PARAMETER_GEN),
    T(CKM_AES_OFB),
    T(CKM_AES_CFB64),
    T(CKM_AES_CFB8),
    T(CKM_AES_CFB128),
    T(CKM_AES_CFB1),
    T(CKM_AES_KEY_WRAP),
    T(CKM_AES_KEY_WRAP_PAD),
    T(CKM_RSA_PKCS_TPM_1_1),
    T(CKM_RSA_PKCS_OAEP_TPM_1_1),
};

static void check_table(const entry_t *t, size_t n, const char *(*fn)(CK_ULONG))
{
    size_t i;

    for (i = 0; i < n; i++) {
        const char *got = fn(t[i].value);
        if (strcmp(got, t[i].name) != 0) {
            fprintf(stderr, "FAIL %s: 0x%lx gives %s, want %s\n", hsmc_test_name,
                    (unsigned long)t[i].value, got, t[i].name);
            hsmc_test_cur_failed = 1;
        }
    }
}

static const char *ckr_name(CK_ULONG v) { return hsmc_ckr_name(v); }
static const char *ckm_name(CK_ULONG v) { return hsmc_ckm_name(v); }

static void test_ckr_all(void)
{
    check_table(ckr, sizeof ckr / sizeof ckr[0], ckr_name);
    CHECK(sizeof ckr / sizeof ckr[0] == 94);
}

static void test_ckr_unknown_vendor(void)
{
    CHECK(strcmp(hsmc_ckr_name(0x4UL), "CKR_UNKNOWN") == 0); /* gap after SLOT_ID_INVALID */
    CHECK(strcmp(hsmc_ckr_name(0x1FFUL), "CKR_UNKNOWN") == 0);
    CHECK(strcmp(hsmc_ckr_name(0x7FFFFFFFUL), "CKR_UNKNOWN") == 0);
    CHECK(strcmp(hsmc_ckr_name(CKR_VENDOR_DEFINED), "CKR_VENDOR_DEFINED") == 0);
    CHECK(strcmp(hsmc_ckr_name(CKR_VENDOR_DEFINED | 0x1234UL), "CKR_VENDOR_DEFINED") == 0);
    CHECK(strcmp(hsmc_ckr_name(0xFFFFFFFFUL), "CKR_VENDOR_DEFINED") == 0);
    CHECK(strcmp(hsmc_ckr_name(CKR_OK), "CKR_OK") == 0);
    CHECK(strcmp(hsmc_ckr_name(CKR_FUNCTION_REJECTED), "CKR_FUNCTION_REJECTED") == 0);
}

static void test_ckm_all(void)
{
    check_table(ckm, sizeof ckm / sizeof ckm[0], ckm_name);
}

static void test_ckm_special(void)
{
    /* Aliases give one name; values newer than the header by number. */
    CHECK(strcmp(hsmc_ckm_name(CKM_ECDSA_KEY_PAIR_GEN), "CKM_EC_KEY_PAIR_GEN") == 0);
    CHECK(strcmp(hsmc_ckm_name(0x2109UL), "CKM_AES_KEY_WRAP") == 0);
    CHECK(strcmp(hsmc_ckm_name(0x210AUL), "CKM_AES_KEY_WRAP_PAD") == 0);
    CHECK(strcmp(hsmc_ckm_name(0x210BUL), "CKM_AES_KEY_WRAP_KWP") == 0);
    CHECK(strcmp(hsmc_ckm_name(0x1055UL), "CKM_EC_EDWARDS_KEY_PAIR_GEN") == 0);
    CHECK(strcmp(hsmc_ckm_name(0x1056UL), "CKM_EC_MONTGOMERY_KEY_PAIR_GEN") == 0);
    CHECK(strcmp(hsmc_ckm_name(0x1057UL), "CKM_EDDSA") == 0);
    CHECK(strcmp(hsmc_ckm_name(0UL), "CKM_RSA_PKCS_KEY_PAIR_GEN") == 0);
    CHECK(strcmp(hsmc_ckm_name(0x7UL), "CKM_UNKNOWN") == 0);
    CHECK(strcmp(hsmc_ckm_name(0x7FFFFFFFUL), "CKM_UNKNOWN") == 0);
    CHECK(strcmp(hsmc_ckm_name(CKM_VENDOR_DEFINED), "CKM_VENDOR_DEFINED") == 0);
    CHECK(strcmp(hsmc_ckm_name(CKM_VENDOR_DEFINED + 0x8000UL), "CKM_VENDOR_DEFINED") == 0);
    CHECK(strcmp(hsmc_ckm_name(CK_UNAVAILABLE_INFORMATION), "CKM_VENDOR_DEFINED") == 0);
}

/* Everything `pkcs11-tool -M` lists for SoftHSM2 2.6.1 has a name. */
static void test_ckm_softhsm_list(void)
{
    static const CK_MECHANISM_TYPE softhsm[] = {
        0x1082, 0x1105, 0x1085, 0x108a, 0x1086, 0x1081, 0x1104, 0x1087, 0x1080, 0x2109,
        0x210a, 0x130,  0x133,  0x1103, 0x136,  0x138,  0x132,  0x1102, 0x131,  0x122,
        0x1101, 0x125,  0x121,  0x1100, 0x120,  0x21,   0x20,   0x2001, 0x11,   0x10,
        0x2000, 0x12,   0x13,   0x14,   0x15,   0x16,   0x1050, 0x1041, 0x1055, 0x1040,
        0x1057, 0x350,  0x210,  0x211,  0x5,    0x1,    0x0,    0x9,    0xd,    0x3,
        0x6,    0xe,    0x255,  0x256,  0x46,   0x47,   0x250,  0x251,  0x40,   0x43,
        0x260,  0x261,  0x41,   0x44,   0x270,  0x271,  0x42,   0x45,   0x220,  0x221,
    };
    size_t i;

    for (i = 0; i < sizeof softhsm / sizeof softhsm[0]; i++) {
        const char *n = hsmc_ckm_name(softhsm[i]);
        if (strncmp(n, "CKM_", 4) != 0 || strcmp(n, "CKM_UNKNOWN") == 0) {
            fprintf(stderr, "FAIL %s: 0x%lx has no name\n", hsmc_test_name,
                    (unsigned long)softhsm[i]);
            hsmc_test_cur_failed = 1;
        }
    }
}

static void test_class_names(void)
{
    CHECK(strcmp(hsmc_class_name(CKO_DATA), "data") == 0);
    CHECK(strcmp(hsmc_class_name(CKO_CERTIFICATE), "certificate") == 0);
    CHECK(strcmp(hsmc_class_name(CKO_PUBLIC_KEY), "public-key") == 0);
    CHECK(strcmp(hsmc_class_name(CKO_PRIVATE_KEY), "private-key") == 0);
    CHECK(strcmp(hsmc_class_name(CKO_SECRET_KEY), "secret-key") == 0);
    CHECK(strcmp(hsmc_class_name(CKO_HW_FEATURE), "hw-feature") == 0);
    CHECK(strcmp(hsmc_class_name(CKO_DOMAIN_PARAMETERS), "domain-parameters") == 0);
    CHECK(strcmp(hsmc_class_name(CKO_MECHANISM), "mechanism") == 0);
    CHECK(strcmp(hsmc_class_name(CKO_OTP_KEY), "otp-key") == 0);
    CHECK(strcmp(hsmc_class_name(9), "?") == 0);
    CHECK(strcmp(hsmc_class_name(0x7FFFFFFFUL), "?") == 0);
    CHECK(strcmp(hsmc_class_name(CKO_VENDOR_DEFINED), "vendor-defined") == 0);
    CHECK(strcmp(hsmc_class_name(CKO_VENDOR_DEFINED + 5), "vendor-defined") == 0);
}

static void test_key_type_names(void)
{
    static const struct {
        CK_KEY_TYPE kt;
        const char *name;
    } kts[] = {
        {CKK_RSA, "RSA"}, {CKK_DSA, "DSA"}, {CKK_DH, "DH"}, {CKK_EC, "EC"},
        {CKK_X9_42_DH, "X9_42_DH"}, {CKK_KEA, "KEA"}, {CKK_GENERIC_SECRET, "GENERIC_SECRET"},
        {CKK_RC2, "RC2"}, {CKK_RC4, "RC4"}, {CKK_DES, "DES"}, {CKK_DES2, "DES2"},
        {CKK_DES3, "DES3"}, {CKK_CAST, "CAST"}, {CKK_CAST3, "CAST3"}, {CKK_CAST128, "CAST128"},
        {CKK_RC5, "RC5"}, {CKK_IDEA, "IDEA"}, {CKK_SKIPJACK, "SKIPJACK"}, {CKK_BATON, "BATON"},
        {CKK_JUNIPER, "JUNIPER"}, {CKK_CDMF, "CDMF"}, {CKK_AES, "AES"},
        {CKK_BLOWFISH, "BLOWFISH"}, {CKK_TWOFISH, "TWOFISH"}, {CKK_SECURID, "SECURID"},
        {CKK_HOTP, "HOTP"}, {CKK_ACTI, "ACTI"}, {CKK_CAMELLIA, "CAMELLIA"}, {CKK_ARIA, "ARIA"},
        {CKK_MD5_HMAC, "MD5_HMAC"}, {CKK_SHA_1_HMAC, "SHA_1_HMAC"},
        {CKK_RIPEMD128_HMAC, "RIPEMD128_HMAC"}, {CKK_RIPEMD160_HMAC, "RIPEMD160_HMAC"},
        {CKK_SHA256_HMAC, "SHA256_HMAC"}, {CKK_SHA384_HMAC, "SHA384_HMAC"},
        {CKK_SHA512_HMAC, "SHA512_HMAC"}, {CKK_SHA224_HMAC, "SHA224_HMAC"}, {CKK_SEED, "SEED"},
        {CKK_GOSTR3410, "GOSTR3410"}, {CKK_GOSTR3411, "GOSTR3411"},
        {CKK_GOST28147, "GOST28147"}, {CKK_EC_EDWARDS, "EC_EDWARDS"},
        {0x41UL, "EC_MONTGOMERY"},
    };
    size_t i;

    for (i = 0; i < sizeof kts / sizeof kts[0]; i++)
        if (strcmp(hsmc_key_type_name(kts[i].kt), kts[i].name) != 0) {
            fprintf(stderr, "FAIL %s: 0x%lx gives %s\n", hsmc_test_name,
                    (unsigned long)kts[i].kt, hsmc_key_type_name(kts[i].kt));
            hsmc_test_cur_failed = 1;
        }
    CHECK(strcmp(hsmc_key_type_name(0x6UL), "?") == 0);
    CHECK(strcmp(hsmc_key_type_name(0x33UL), "?") == 0);
    CHECK(strcmp(hsmc_key_type_name(CK_UNAVAILABLE_INFORMATION), "VENDOR_DEFINED") == 0);
    CHECK(strcmp(hsmc_key_type_name(CKK_VENDOR_DEFINED), "VENDOR_DEFINED") == 0);
}

static void test_op_names(void)
{
    static const char *const want[HSMC_OP_COUNT] = {
        "random",        "digest-sha256",    "keygen-aes",    "keygen-ec",
        "keygen-rsa",    "sign-ecdsa",       "sign-rsa-pkcs", "sign-rsa-pss",
        "aes-gcm",       "aes-key-wrap",     "aes-key-wrap-pad", "aes-cbc-pad",
        "rsa-oaep-sha1", "rsa-oaep-sha256",  "eddsa",
    };
    int i, j;

    for (i = 0; i < HSMC_OP_COUNT; i++) {
        CHECK(strcmp(hsmc_op_name((hsmc_op_t)i), want[i]) == 0);
        for (j = 0; j < i; j++) /* names are distinct */
            CHECK(strcmp(hsmc_op_name((hsmc_op_t)i), hsmc_op_name((hsmc_op_t)j)) != 0);
    }
    CHECK(strcmp(hsmc_op_name(HSMC_OP_COUNT), "?") == 0);
    CHECK(strcmp(hsmc_op_name((hsmc_op_t)-1), "?") == 0);
    CHECK(strcmp(hsmc_op_name((hsmc_op_t)1000), "?") == 0);
}

static void test_cap_status_names(void)
{
    CHECK(strcmp(hsmc_cap_status_name(HSMC_CAP_UNKNOWN), "unknown") == 0);
    CHECK(strcmp(hsmc_cap_status_name(HSMC_CAP_WORKS), "works") == 0);
    CHECK(strcmp(hsmc_cap_status_name(HSMC_CAP_LISTED), "listed") == 0);
    CHECK(strcmp(hsmc_cap_status_name(HSMC_CAP_BROKEN), "broken") == 0);
    CHECK(strcmp(hsmc_cap_status_name(HSMC_CAP_MISSING), "missing") == 0);
    CHECK(strcmp(hsmc_cap_status_name((hsmc_cap_status_t)99), "unknown") == 0);
    CHECK(strcmp(hsmc_cap_status_name((hsmc_cap_status_t)-1), "unknown") == 0);
}

int main(void)
{
    RUN(test_ckr_all);
    RUN(test_ckr_unknown_vendor);
    RUN(test_ckm_all);
    RUN(test_ckm_special);
    RUN(test_ckm_softhsm_list);
    RUN(test_class_names);
    RUN(test_key_type_names);
    RUN(test_op_names);
    RUN(test_cap_status_names);
    return TEST_END();
}
