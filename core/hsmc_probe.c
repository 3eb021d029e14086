/*
 * Capability probe: what the selected token really does, per hsmc operation.
 *
 * Mechanism lists lie both ways, so each operation is tried with temporary
 * session objects (CKA_TOKEN=FALSE) that are destroyed before the helper
 * that made them returns, on every path. The whole probe runs on one pool
 * session; if the session, login or token is lost half-way, the session is
 * ended with that return value (hsmc recovers) and the probe starts again.
 *
 * Status rules (probe.h):
 *   WORKS    the call sequence succeeded and its result checked out
 *            (also for a mechanism the list does not show);
 *   BROKEN   listed, but a call failed (rv) or returned a wrong result
 *            (rv = CKR_OK then: every call succeeded, the output was wrong);
 *   MISSING  not listed, and not working when tried;
 *   LISTED   listed, but not tried: list-only probe, no user login, or a
 *            prerequisite failed (key generation refused, e.g. a token that
 *            makes no session objects answers CKR_ATTRIBUTE_VALUE_INVALID or
 *            CKR_TEMPLATE_INCONSISTENT); rv says why when there is a reason.
 * HSMC_OP_RANDOM has no mechanism: its `mech` is CK_UNAVAILABLE_INFORMATION
 * and "listed" means the token sets CKF_RNG.
 *
 * Memory: templates and test vectors are static const (flash on firmware);
 * each helper keeps a small frame. The largest frame is the one buffer of
 * HSMC_PROBE_RSA_BITS / 8 bytes the RSA signatures and OAEP ciphertexts
 * share (hsmc_probe_rsa_ops: 264 bytes on Cortex-M4 for RSA-2048).
 */
#include <stdint.h>
#include <string.h>

#include "hsmc_internal.h"

/* Mechanisms newer than p11-kit 0.24's header (PKCS#11 3.0). */
#ifdef CKM_AES_KEY_WRAP_KWP
#define HSMC_CKM_AES_KEY_WRAP_KWP CKM_AES_KEY_WRAP_KWP
#else
#define HSMC_CKM_AES_KEY_WRAP_KWP 0x210BUL /* RFC 5649 */
#endif
/* 0x210A: CKM_AES_KEY_WRAP_PAD in 2.40; SoftHSM2 implements RFC 5649 there. */
#define HSMC_CKM_AES_KEY_WRAP_PAD_LEGACY 0x210AUL
/* p11-kit 0.24 has both; the numbers are PKCS#11 3.0's, for older headers. */
#ifndef CKM_EC_EDWARDS_KEY_PAIR_GEN
#define CKM_EC_EDWARDS_KEY_PAIR_GEN 0x1055UL
#endif
#ifndef CKM_EDDSA
#define CKM_EDDSA 0x1057UL
#endif

#if HSMC_PROBE_RSA_BITS < 1024 || HSMC_PROBE_RSA_BITS > 4096 || (HSMC_PROBE_RSA_BITS % 8) != 0
#error "hsmc: HSMC_PROBE_RSA_BITS must be a multiple of 8 in 1024..4096"
#endif
#define HSMC_PROBE_RSA_BYTES (HSMC_PROBE_RSA_BITS / 8)

/* Internal marker: every call succeeded but the output was wrong. Not a
 * PKCS#11 value (standard codes are small, vendor codes have bit 31). */
#define HSMC_PROBE_MISMATCH ((CK_RV)0x7FFFFFFFUL)

#define HSMC_COUNT(a) (sizeof(a) / sizeof((a)[0]))
/* Keeps the buffers of different steps in separate frames instead of one
 * merged frame in hsmc_probe (frames stay small; the deepest chain is the
 * sum anyway). */
#if defined(__GNUC__)
#define HSMC_PROBE_STEP __attribute__((noinline))
#else
#define HSMC_PROBE_STEP
#endif
/* PKCS#11 declares input templates and data non-const; tokens only read
 * them. The uintptr_t step keeps -Wcast-qual quiet should it be enabled. */
#define HSMC_IN(p) ((void *)(uintptr_t)(const void *)(p))
#define HSMC_TMPL(t) ((CK_ATTRIBUTE_PTR)HSMC_IN(t)), ((CK_ULONG)HSMC_COUNT(t))

/* ---- Constant inputs ------------------------------------------------------ */

static const CK_BBOOL hsmc_yes = CK_TRUE;
static const CK_BBOOL hsmc_no = CK_FALSE;
static const CK_ULONG hsmc_aes_len = 32;
static const CK_ULONG hsmc_rsa_bits = HSMC_PROBE_RSA_BITS;
static const CK_OBJECT_CLASS hsmc_secret_class = CKO_SECRET_KEY;
static const CK_KEY_TYPE hsmc_aes_type = CKK_AES;
static const CK_BYTE hsmc_f4[] = {0x01, 0x00, 0x01};
/* DER OID 1.2.840.10045.3.1.7 (P-256). */
static const CK_BYTE hsmc_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
/* Ed25519 as PKCS#11 3.0 names it (PrintableString "edwards25519") ... */
static const CK_BYTE hsmc_ed25519_name[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd',
                                            's',  '2',  '5', '5', '1', '9'};
/* ... and as RFC 8410 does (OID 1.3.101.112). */
static const CK_BYTE hsmc_ed25519_oid[] = {0x06, 0x03, 0x2b, 0x65, 0x70};

static const CK_BYTE hsmc_abc[] = {'a', 'b', 'c'};
/* SHA-256("abc"), FIPS 180-2 appendix B.1; also the digest the probe signs. */
static const CK_BYTE hsmc_abc_sha256[32] = {
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
/* DigestInfo(SHA-256, SHA-256("abc")) for CKM_RSA_PKCS signing. */
static const CK_BYTE hsmc_abc_digest_info[51] = {
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
    0x02, 0x01, 0x05, 0x00, 0x04, 0x20, 0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf,
    0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3,
    0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
/* Arbitrary plaintext, IV and AAD for the symmetric round trips. */
static const CK_BYTE hsmc_plain[40] = {'h', 's', 'm', 'c', ' ', 'p', 'r', 'o', 'b', 'e',
                                       ' ', 'p', 'l', 'a', 'i', 'n', 't', 'e', 'x', 't',
                                       ' ', '0', '1', '2', '3', '4', '5', '6', '7', '8',
                                       '9', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'};
static const CK_BYTE hsmc_iv16[16] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                      0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
static const CK_BYTE hsmc_aad16[16] = {'h', 's', 'm', 'c', '-', 'p', 'r', 'o',
                                       'b', 'e', '-', 'a', 'a', 'd', '-', '1'};

/* Probe keys: session objects, sensitive, never extractable, only the
 * usages the probe needs (SoftHSM2 turns unnamed usages on by default). */
static const CK_ATTRIBUTE hsmc_aes_tmpl[] = {
    {CKA_TOKEN, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_PRIVATE, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_SENSITIVE, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_EXTRACTABLE, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_ENCRYPT, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_DECRYPT, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_WRAP, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_UNWRAP, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_VALUE_LEN, HSMC_IN(&hsmc_aes_len), sizeof(CK_ULONG)},
};
/* The key to be wrapped: the only extractable one (still sensitive). */
static const CK_ATTRIBUTE hsmc_aes_target_tmpl[] = {
    {CKA_TOKEN, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_PRIVATE, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_SENSITIVE, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_EXTRACTABLE, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_ENCRYPT, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_DECRYPT, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_WRAP, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_UNWRAP, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_VALUE_LEN, HSMC_IN(&hsmc_aes_len), sizeof(CK_ULONG)},
};
static const CK_ATTRIBUTE hsmc_unwrap_tmpl[] = {
    {CKA_CLASS, HSMC_IN(&hsmc_secret_class), sizeof(CK_OBJECT_CLASS)},
    {CKA_KEY_TYPE, HSMC_IN(&hsmc_aes_type), sizeof(CK_KEY_TYPE)},
    {CKA_TOKEN, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_PRIVATE, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_SENSITIVE, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_EXTRACTABLE, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
};
static const CK_ATTRIBUTE hsmc_ec_pub_tmpl[] = {
    {CKA_TOKEN, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_VERIFY, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_EC_PARAMS, HSMC_IN(hsmc_p256), sizeof hsmc_p256},
};
static const CK_ATTRIBUTE hsmc_ed_pub_name_tmpl[] = {
    {CKA_TOKEN, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_VERIFY, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_EC_PARAMS, HSMC_IN(hsmc_ed25519_name), sizeof hsmc_ed25519_name},
};
static const CK_ATTRIBUTE hsmc_ed_pub_oid_tmpl[] = {
    {CKA_TOKEN, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_VERIFY, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_EC_PARAMS, HSMC_IN(hsmc_ed25519_oid), sizeof hsmc_ed25519_oid},
};
/* Private half for EC and Ed25519 pairs: sign only. */
static const CK_ATTRIBUTE hsmc_sign_priv_tmpl[] = {
    {CKA_TOKEN, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_PRIVATE, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_SENSITIVE, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_EXTRACTABLE, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_SIGN, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_DECRYPT, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_UNWRAP, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_DERIVE, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
};
static const CK_ATTRIBUTE hsmc_rsa_pub_tmpl[] = {
    {CKA_TOKEN, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_VERIFY, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_ENCRYPT, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_MODULUS_BITS, HSMC_IN(&hsmc_rsa_bits), sizeof(CK_ULONG)},
    {CKA_PUBLIC_EXPONENT, HSMC_IN(hsmc_f4), sizeof hsmc_f4},
};
static const CK_ATTRIBUTE hsmc_rsa_priv_tmpl[] = {
    {CKA_TOKEN, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_PRIVATE, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_SENSITIVE, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_EXTRACTABLE, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
    {CKA_SIGN, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_DECRYPT, HSMC_IN(&hsmc_yes), sizeof(CK_BBOOL)},
    {CKA_UNWRAP, HSMC_IN(&hsmc_no), sizeof(CK_BBOOL)},
};

/* ---- Probe state ---------------------------------------------------------- */

typedef struct hsmc_probe_ctx {
    CK_FUNCTION_LIST_PTR fl;
    CK_SESSION_HANDLE s;
    CK_SLOT_ID slot;
    hsmc_caps_t *caps;
    int calls;             /* 0: list-only probe */
    int user;              /* 1: the session is logged in as user */
    CK_RV lost;            /* first loss-of-session result, CKR_OK when none */
    const char *lost_what; /* the call that returned it */
    int dirty;             /* an operation or object may be left on the session */
} hsmc_probe_ctx_t;

/*
 * Note a call's result. A loss of session/login/token is remembered (the
 * probe is then abandoned and redone after recovery), except a "not logged
 * in" on a session that never was: that only says the operation needs a
 * login. @return rv.
 */
static CK_RV hsmc_pr(hsmc_probe_ctx_t *pc, CK_RV rv, const char *what)
{
    if (rv != CKR_OK && pc->lost == CKR_OK && hsmc__rv_is_loss(rv) &&
        (rv != CKR_USER_NOT_LOGGED_IN || pc->user)) {
        pc->lost = rv;
        pc->lost_what = what;
    }
    return rv;
}

/*
 * A failed data-phase call (C_Encrypt, C_Sign, ...) ends its operation on a
 * conformant token, but some keep it active, and the pool session would
 * carry it to its next user. So the failed call is made once more with the
 * same arguments and its result `rv` given here: CKR_OPERATION_NOT_INITIALIZED
 * (ended, as it should be) or CKR_OK (the repeat finished it) leave the
 * session clean; anything else marks it dirty and hsmc_probe replaces it.
 * (Init(NULL), PKCS#11 3.0's way to cancel, is not used: a 2.x module may
 * dereference the NULL.)
 */
static void hsmc_probe_settle(hsmc_probe_ctx_t *pc, CK_RV rv, const char *what)
{
    if (hsmc_pr(pc, rv, what) != CKR_OK && rv != CKR_OPERATION_NOT_INITIALIZED &&
        pc->lost == CKR_OK)
        pc->dirty = 1;
}

/* 1 when the token knows `mech` (C_GetMechanismInfo: no list buffer needed,
 * and the context's last error is left alone). */
static int hsmc_probe_listed(hsmc_probe_ctx_t *pc, CK_MECHANISM_TYPE mech)
{
    CK_MECHANISM_INFO info;
    CK_RV rv = hsmc_pr(pc, pc->fl->C_GetMechanismInfo(pc->slot, mech, &info),
                       "C_GetMechanismInfo");
    return rv == CKR_OK;
}

/*
 * Destroy a probe object (if any) and forget its handle. If the token
 * refuses, the session is marked dirty: closing it (hsmc_probe does) makes
 * the token drop the session objects it created.
 */
static void hsmc_probe_destroy(hsmc_probe_ctx_t *pc, CK_OBJECT_HANDLE *obj)
{
    if (*obj != CK_INVALID_HANDLE) {
        if (hsmc_pr(pc, pc->fl->C_DestroyObject(pc->s, *obj), "C_DestroyObject") != CKR_OK &&
            pc->lost == CKR_OK)
            pc->dirty = 1;
        *obj = CK_INVALID_HANDLE;
    }
}

/* 1 when a key-generation failure means "no session objects here". */
static int hsmc_probe_refused(CK_RV rv)
{
    return rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_TEMPLATE_INCONSISTENT;
}

static void hsmc_cap_set(hsmc_probe_ctx_t *pc, hsmc_op_t op, hsmc_cap_status_t st,
                         CK_MECHANISM_TYPE mech, CK_RV rv)
{
    hsmc_cap_t *c = &pc->caps->op[op];
    c->status = st;
    c->mech = mech;
    c->rv = rv;
}

/* Result of a tried operation. */
static void hsmc_cap_result(hsmc_probe_ctx_t *pc, hsmc_op_t op, CK_MECHANISM_TYPE mech,
                            int listed, CK_RV rv)
{
    if (rv == CKR_OK)
        hsmc_cap_set(pc, op, HSMC_CAP_WORKS, mech, CKR_OK);
    else
        hsmc_cap_set(pc, op, listed ? HSMC_CAP_BROKEN : HSMC_CAP_MISSING, mech,
                     rv == HSMC_PROBE_MISMATCH ? CKR_OK : rv);
}

/* Not tried: from the list only; `why` is the reason (CKR_OK in list-only mode). */
static void hsmc_cap_untried(hsmc_probe_ctx_t *pc, hsmc_op_t op, CK_MECHANISM_TYPE mech,
                             int listed, CK_RV why)
{
    hsmc_cap_set(pc, op, listed ? HSMC_CAP_LISTED : HSMC_CAP_MISSING, mech, why);
}

/*
 * 1 when a key operation may be tried now; otherwise records `op` from the
 * list (list-only probe, or no user login) and returns 0.
 */
static int hsmc_probe_may_try(hsmc_probe_ctx_t *pc, hsmc_op_t op, CK_MECHANISM_TYPE mech,
                              int listed)
{
    if (!pc->calls) {
        hsmc_cap_untried(pc, op, mech, listed, CKR_OK);
        return 0;
    }
    if (!pc->user) {
        hsmc_cap_untried(pc, op, mech, listed, CKR_USER_NOT_LOGGED_IN);
        return 0;
    }
    return 1;
}

/* Result of a key generation: refused session objects make it LISTED. */
static void hsmc_cap_keygen(hsmc_probe_ctx_t *pc, hsmc_op_t op, CK_MECHANISM_TYPE mech,
                            int listed, CK_RV rv)
{
    if (hsmc_probe_refused(rv))
        hsmc_cap_untried(pc, op, mech, listed, rv);
    else
        hsmc_cap_result(pc, op, mech, listed, rv);
}

/* ---- Building blocks ------------------------------------------------------ */

/*
 * Encrypt the first `len` bytes of hsmc_plain into ct, decrypt into pt and
 * compare. pt may be ct (PKCS#11 allows in-place decryption), which keeps
 * RSA frames to one modulus-sized buffer.
 */
static CK_RV hsmc_probe_roundtrip(hsmc_probe_ctx_t *pc, CK_MECHANISM *m, CK_OBJECT_HANDLE enc,
                                  CK_OBJECT_HANDLE dec, CK_ULONG len, CK_BYTE *ct,
                                  CK_ULONG ct_cap, CK_BYTE *pt, CK_ULONG pt_cap)
{
    CK_ULONG ct_len = ct_cap, pt_len = pt_cap;
    CK_RV rv;

    rv = hsmc_pr(pc, pc->fl->C_EncryptInit(pc->s, m, enc), "C_EncryptInit");
    if (rv == CKR_OK) {
        rv = hsmc_pr(pc, pc->fl->C_Encrypt(pc->s, HSMC_IN(hsmc_plain), len, ct, &ct_len),
                     "C_Encrypt");
        if (rv != CKR_OK && pc->lost == CKR_OK) {
            ct_len = ct_cap;
            hsmc_probe_settle(pc, pc->fl->C_Encrypt(pc->s, HSMC_IN(hsmc_plain), len, ct, &ct_len),
                              "C_Encrypt");
        }
    }
    if (rv == CKR_OK)
        rv = hsmc_pr(pc, pc->fl->C_DecryptInit(pc->s, m, dec), "C_DecryptInit");
    if (rv == CKR_OK) {
        rv = hsmc_pr(pc, pc->fl->C_Decrypt(pc->s, ct, ct_len, pt, &pt_len), "C_Decrypt");
        if (rv != CKR_OK && pc->lost == CKR_OK) {
            pt_len = pt_cap;
            hsmc_probe_settle(pc, pc->fl->C_Decrypt(pc->s, ct, ct_len, pt, &pt_len), "C_Decrypt");
        }
    }
    if (rv == CKR_OK && (pt_len != len || memcmp(pt, hsmc_plain, (size_t)len) != 0))
        rv = HSMC_PROBE_MISMATCH;
    return rv;
}

/* Sign `data` with priv, check the length (0: any), verify with pub. */
static CK_RV hsmc_probe_sign_verify(hsmc_probe_ctx_t *pc, CK_MECHANISM *m,
                                    CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub,
                                    const CK_BYTE *data, CK_ULONG data_len, CK_BYTE *sig,
                                    CK_ULONG sig_cap, CK_ULONG want_len)
{
    CK_ULONG sig_len = sig_cap;
    CK_RV rv;

    rv = hsmc_pr(pc, pc->fl->C_SignInit(pc->s, m, priv), "C_SignInit");
    if (rv == CKR_OK) {
        rv = hsmc_pr(pc, pc->fl->C_Sign(pc->s, HSMC_IN(data), data_len, sig, &sig_len), "C_Sign");
        if (rv != CKR_OK && pc->lost == CKR_OK) {
            sig_len = sig_cap;
            hsmc_probe_settle(pc, pc->fl->C_Sign(pc->s, HSMC_IN(data), data_len, sig, &sig_len),
                              "C_Sign");
        }
    }
    if (rv == CKR_OK && want_len != 0 && sig_len != want_len)
        rv = HSMC_PROBE_MISMATCH;
    if (rv == CKR_OK)
        rv = hsmc_pr(pc, pc->fl->C_VerifyInit(pc->s, m, pub), "C_VerifyInit");
    if (rv == CKR_OK) {
        rv = hsmc_pr(pc, pc->fl->C_Verify(pc->s, HSMC_IN(data), data_len, sig, sig_len),
                     "C_Verify");
        if (rv != CKR_OK && pc->lost == CKR_OK)
            hsmc_probe_settle(pc, pc->fl->C_Verify(pc->s, HSMC_IN(data), data_len, sig, sig_len),
                              "C_Verify");
    }
    return rv;
}

/* ---- random, digest ------------------------------------------------------- */

/* 1 when the token says it has a random number generator (CKF_RNG). */
HSMC_PROBE_STEP static int hsmc_probe_has_rng(hsmc_probe_ctx_t *pc)
{
    CK_TOKEN_INFO ti;
    CK_RV rv = hsmc_pr(pc, pc->fl->C_GetTokenInfo(pc->slot, &ti), "C_GetTokenInfo");
    return rv == CKR_OK && (ti.flags & CKF_RNG) != 0;
}

HSMC_PROBE_STEP static void hsmc_probe_random(hsmc_probe_ctx_t *pc)
{
    CK_BYTE buf[16];
    unsigned acc = 0;
    size_t i;
    CK_RV rv;

    if (!pc->calls) {
        hsmc_cap_untried(pc, HSMC_OP_RANDOM, CK_UNAVAILABLE_INFORMATION,
                         hsmc_probe_has_rng(pc), CKR_OK);
        return;
    }
    memset(buf, 0, sizeof buf);
    rv = hsmc_pr(pc, pc->fl->C_GenerateRandom(pc->s, buf, sizeof buf), "C_GenerateRandom");
    for (i = 0; i < sizeof buf; i++)
        acc |= buf[i];
    if (rv == CKR_OK && acc == 0) /* 2^-128 by chance: a stub, not an RNG */
        rv = HSMC_PROBE_MISMATCH;
    hsmc_cap_result(pc, HSMC_OP_RANDOM, CK_UNAVAILABLE_INFORMATION,
                    rv == CKR_OK || hsmc_probe_has_rng(pc), rv);
}

HSMC_PROBE_STEP static void hsmc_probe_digest(hsmc_probe_ctx_t *pc)
{
    CK_MECHANISM m = {CKM_SHA256, NULL, 0};
    CK_BYTE out[32];
    CK_ULONG len = sizeof out;
    int listed = hsmc_probe_listed(pc, CKM_SHA256);
    CK_RV rv;

    if (!pc->calls) {
        hsmc_cap_untried(pc, HSMC_OP_DIGEST_SHA256, CKM_SHA256, listed, CKR_OK);
        return;
    }
    rv = hsmc_pr(pc, pc->fl->C_DigestInit(pc->s, &m), "C_DigestInit");
    if (rv == CKR_OK) {
        rv = hsmc_pr(pc, pc->fl->C_Digest(pc->s, HSMC_IN(hsmc_abc), sizeof hsmc_abc, out, &len),
                     "C_Digest");
        if (rv != CKR_OK && pc->lost == CKR_OK) {
            len = sizeof out;
            hsmc_probe_settle(pc,
                              pc->fl->C_Digest(pc->s, HSMC_IN(hsmc_abc), sizeof hsmc_abc, out, &len),
                              "C_Digest");
        }
    }
    if (rv == CKR_OK && (len != sizeof out || memcmp(out, hsmc_abc_sha256, sizeof out) != 0))
        rv = HSMC_PROBE_MISMATCH;
    hsmc_cap_result(pc, HSMC_OP_DIGEST_SHA256, CKM_SHA256, listed, rv);
}

/* ---- AES ------------------------------------------------------------------ */

/* One GCM round trip with CK_GCM_PARAMS layout 1 (with ulIvBits) or 2. */
HSMC_PROBE_STEP static CK_RV hsmc_probe_gcm_try(hsmc_probe_ctx_t *pc, CK_OBJECT_HANDLE key, unsigned layout)
{
    union {
        CK_GCM_PARAMS v1;
        hsmc_gcm_params_v2_t v2;
    } p; /* zeroed at the larger size: a token misreading v2 reads zeros */
    CK_BYTE iv[12]; /* writable: some tokens write back the IV they used */
    CK_BYTE ct[32], pt[32];
    CK_MECHANISM m;

    memset(&p, 0, sizeof p);
    memcpy(iv, hsmc_iv16, sizeof iv);
    m.mechanism = CKM_AES_GCM;
    if (layout == 1u) {
        p.v1.pIv = iv;
        p.v1.ulIvLen = sizeof iv;
        p.v1.ulIvBits = 8u * sizeof iv;
        p.v1.pAAD = HSMC_IN(hsmc_aad16);
        p.v1.ulAADLen = sizeof hsmc_aad16;
        p.v1.ulTagBits = 128;
        m.pParameter = &p.v1;
        m.ulParameterLen = sizeof p.v1;
    } else {
        p.v2.pIv = iv;
        p.v2.ulIvLen = sizeof iv;
        p.v2.pAAD = HSMC_IN(hsmc_aad16);
        p.v2.ulAADLen = sizeof hsmc_aad16;
        p.v2.ulTagBits = 128;
        m.pParameter = &p.v2;
        m.ulParameterLen = sizeof p.v2;
    }
    return hsmc_probe_roundtrip(pc, &m, key, key, 16, ct, sizeof ct, pt, sizeof pt);
}

static void hsmc_probe_gcm(hsmc_probe_ctx_t *pc, CK_OBJECT_HANDLE key, CK_RV why)
{
    int listed = hsmc_probe_listed(pc, CKM_AES_GCM);
    CK_RV rv;

    if (key == CK_INVALID_HANDLE) {
        hsmc_cap_untried(pc, HSMC_OP_AES_GCM, CKM_AES_GCM, listed, why);
        return;
    }
    rv = hsmc_probe_gcm_try(pc, key, 1u);
    if (rv == CKR_OK) {
        pc->caps->gcm_layout = 1u;
    } else if (pc->lost == CKR_OK && hsmc_probe_gcm_try(pc, key, 2u) == CKR_OK) {
        pc->caps->gcm_layout = 2u;
        rv = CKR_OK;
    }
    /* On failure rv stays layout 1's (the standard layout's) answer. */
    hsmc_cap_result(pc, HSMC_OP_AES_GCM, CKM_AES_GCM, listed, rv);
}

HSMC_PROBE_STEP static void hsmc_probe_cbc_pad(hsmc_probe_ctx_t *pc, CK_OBJECT_HANDLE key, CK_RV why)
{
    CK_MECHANISM m = {CKM_AES_CBC_PAD, NULL, 0};
    CK_BYTE ct[48], pt[48];
    int listed = hsmc_probe_listed(pc, CKM_AES_CBC_PAD);
    CK_RV rv;

    if (key == CK_INVALID_HANDLE) {
        hsmc_cap_untried(pc, HSMC_OP_AES_CBC_PAD, CKM_AES_CBC_PAD, listed, why);
        return;
    }
    m.pParameter = HSMC_IN(hsmc_iv16);
    m.ulParameterLen = sizeof hsmc_iv16;
    rv = hsmc_probe_roundtrip(pc, &m, key, key, sizeof hsmc_plain, ct, sizeof ct, pt, sizeof pt);
    hsmc_cap_result(pc, HSMC_OP_AES_CBC_PAD, CKM_AES_CBC_PAD, listed, rv);
}

/*
 * Wrap the 32-byte target with kek and unwrap it again (the unwrap checks
 * the integrity block, so success means the round trip was exact). RFC 3394
 * and RFC 5649 both give 40 bytes here; a padding variant with PKCS#7
 * padding would give 56 and is not what hsmc wants.
 */
HSMC_PROBE_STEP static CK_RV hsmc_probe_wrap_try(hsmc_probe_ctx_t *pc, CK_MECHANISM_TYPE mech,
                                 CK_OBJECT_HANDLE kek, CK_OBJECT_HANDLE target)
{
    CK_MECHANISM m = {0, NULL, 0};
    CK_BYTE wrapped[64];
    CK_ULONG len = sizeof wrapped;
    CK_OBJECT_HANDLE back = CK_INVALID_HANDLE;
    CK_RV rv;

    m.mechanism = mech;
    rv = hsmc_pr(pc, pc->fl->C_WrapKey(pc->s, &m, kek, target, wrapped, &len), "C_WrapKey");
    if (rv == CKR_OK && len != 40u)
        rv = HSMC_PROBE_MISMATCH;
    if (rv == CKR_OK) {
        rv = hsmc_pr(pc,
                     pc->fl->C_UnwrapKey(pc->s, &m, kek, wrapped, len, HSMC_TMPL(hsmc_unwrap_tmpl),
                                         &back),
                     "C_UnwrapKey");
        if (rv != CKR_OK)
            back = CK_INVALID_HANDLE;
    }
    hsmc_probe_destroy(pc, &back);
    return rv;
}

static void hsmc_probe_kw(hsmc_probe_ctx_t *pc, CK_OBJECT_HANDLE kek, CK_OBJECT_HANDLE target,
                          CK_RV why)
{
    int listed = hsmc_probe_listed(pc, CKM_AES_KEY_WRAP);

    if (kek == CK_INVALID_HANDLE || target == CK_INVALID_HANDLE) {
        hsmc_cap_untried(pc, HSMC_OP_AES_KEY_WRAP, CKM_AES_KEY_WRAP, listed, why);
        return;
    }
    hsmc_cap_result(pc, HSMC_OP_AES_KEY_WRAP, CKM_AES_KEY_WRAP, listed,
                    hsmc_probe_wrap_try(pc, CKM_AES_KEY_WRAP, kek, target));
}

/*
 * RFC 5649: the standard CKM_AES_KEY_WRAP_KWP when listed, else SoftHSM2's
 * 0x210A. The other one is tried as well when it is listed or when neither is.
 */
static void hsmc_probe_kwp(hsmc_probe_ctx_t *pc, CK_OBJECT_HANDLE kek, CK_OBJECT_HANDLE target,
                           CK_RV why)
{
    int l_kwp = hsmc_probe_listed(pc, HSMC_CKM_AES_KEY_WRAP_KWP);
    int l_pad = hsmc_probe_listed(pc, HSMC_CKM_AES_KEY_WRAP_PAD_LEGACY);
    CK_MECHANISM_TYPE first = HSMC_CKM_AES_KEY_WRAP_KWP, second = HSMC_CKM_AES_KEY_WRAP_PAD_LEGACY;
    int l_first = l_kwp, l_second = l_pad;
    CK_RV rv;

    if (!l_kwp && l_pad) {
        first = HSMC_CKM_AES_KEY_WRAP_PAD_LEGACY;
        second = HSMC_CKM_AES_KEY_WRAP_KWP;
        l_first = l_pad;
        l_second = l_kwp;
    }
    if (kek == CK_INVALID_HANDLE || target == CK_INVALID_HANDLE) {
        hsmc_cap_untried(pc, HSMC_OP_AES_KEY_WRAP_PAD, first, l_first, why);
        return;
    }
    rv = hsmc_probe_wrap_try(pc, first, kek, target);
    if (rv != CKR_OK && pc->lost == CKR_OK && (l_second || !l_first) &&
        hsmc_probe_wrap_try(pc, second, kek, target) == CKR_OK) {
        hsmc_cap_result(pc, HSMC_OP_AES_KEY_WRAP_PAD, second, 1, CKR_OK);
        return;
    }
    hsmc_cap_result(pc, HSMC_OP_AES_KEY_WRAP_PAD, first, l_kwp || l_pad, rv);
}

/* The key to be wrapped; CK_INVALID_HANDLE (and *why set) when refused. */
static CK_OBJECT_HANDLE hsmc_probe_wrap_target(hsmc_probe_ctx_t *pc, CK_RV *why)
{
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_RV rv = hsmc_pr(pc,
                       pc->fl->C_GenerateKey(pc->s, &m, HSMC_TMPL(hsmc_aes_target_tmpl), &key),
                       "C_GenerateKey");
    if (rv != CKR_OK) {
        *why = rv;
        return CK_INVALID_HANDLE;
    }
    return key;
}

HSMC_PROBE_STEP static void hsmc_probe_aes(hsmc_probe_ctx_t *pc)
{
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE, target = CK_INVALID_HANDLE;
    int listed = hsmc_probe_listed(pc, CKM_AES_KEY_GEN);
    CK_RV why = pc->calls ? CKR_USER_NOT_LOGGED_IN : CKR_OK, twhy;

    if (pc->lost != CKR_OK)
        return;
    if (hsmc_probe_may_try(pc, HSMC_OP_KEYGEN_AES, CKM_AES_KEY_GEN, listed)) {
        why = hsmc_pr(pc, pc->fl->C_GenerateKey(pc->s, &m, HSMC_TMPL(hsmc_aes_tmpl), &key),
                      "C_GenerateKey");
        if (why != CKR_OK)
            key = CK_INVALID_HANDLE;
        hsmc_cap_keygen(pc, HSMC_OP_KEYGEN_AES, CKM_AES_KEY_GEN, listed, why);
    }
    hsmc_probe_gcm(pc, key, why);
    hsmc_probe_cbc_pad(pc, key, why);
    twhy = why;
    if (key != CK_INVALID_HANDLE && pc->lost == CKR_OK)
        target = hsmc_probe_wrap_target(pc, &twhy);
    hsmc_probe_kw(pc, key, target, twhy);
    hsmc_probe_kwp(pc, key, target, twhy);
    hsmc_probe_destroy(pc, &target);
    hsmc_probe_destroy(pc, &key);
}

/* ---- EC (P-256) ----------------------------------------------------------- */

HSMC_PROBE_STEP static void hsmc_probe_ecdsa(hsmc_probe_ctx_t *pc, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv,
                             CK_RV why)
{
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    CK_BYTE sig[72]; /* room for a DER signature, so a wrong format is seen, not truncated */
    int listed = hsmc_probe_listed(pc, CKM_ECDSA);
    CK_RV rv;

    if (priv == CK_INVALID_HANDLE) {
        hsmc_cap_untried(pc, HSMC_OP_SIGN_ECDSA, CKM_ECDSA, listed, why);
        return;
    }
    rv = hsmc_probe_sign_verify(pc, &m, priv, pub, hsmc_abc_sha256, sizeof hsmc_abc_sha256, sig,
                                sizeof sig, 64);
    hsmc_cap_result(pc, HSMC_OP_SIGN_ECDSA, CKM_ECDSA, listed, rv);
}

HSMC_PROBE_STEP static void hsmc_probe_ec(hsmc_probe_ctx_t *pc)
{
    CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    int listed = hsmc_probe_listed(pc, CKM_EC_KEY_PAIR_GEN);
    CK_RV why = pc->calls ? CKR_USER_NOT_LOGGED_IN : CKR_OK;

    if (pc->lost != CKR_OK)
        return;
    if (hsmc_probe_may_try(pc, HSMC_OP_KEYGEN_EC, CKM_EC_KEY_PAIR_GEN, listed)) {
        why = hsmc_pr(pc,
                      pc->fl->C_GenerateKeyPair(pc->s, &m, HSMC_TMPL(hsmc_ec_pub_tmpl),
                                                HSMC_TMPL(hsmc_sign_priv_tmpl), &pub, &priv),
                      "C_GenerateKeyPair");
        if (why != CKR_OK)
            pub = priv = CK_INVALID_HANDLE;
        hsmc_cap_keygen(pc, HSMC_OP_KEYGEN_EC, CKM_EC_KEY_PAIR_GEN, listed, why);
    }
    hsmc_probe_ecdsa(pc, pub, priv, why);
    hsmc_probe_destroy(pc, &priv);
    hsmc_probe_destroy(pc, &pub);
}

/* ---- RSA ------------------------------------------------------------------ */

/* What the RSA steps share: the probe and its pair (handles
 * CK_INVALID_HANDLE when there is none; `why` says why). */
typedef struct hsmc_probe_rsa {
    hsmc_probe_ctx_t *pc;
    CK_OBJECT_HANDLE pub, priv;
    CK_RV why;
} hsmc_probe_rsa_t;

/* CKM_RSA_PKCS over a SHA-256 DigestInfo, or CKM_RSA_PKCS_PSS (SHA-256);
 * the signature goes to buf (HSMC_PROBE_RSA_BYTES). */
static void hsmc_probe_rsa_sign(const hsmc_probe_rsa_t *r, hsmc_op_t op, CK_BYTE *buf)
{
    CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA256, CKG_MGF1_SHA256, 32};
    CK_MECHANISM m = {CKM_RSA_PKCS, NULL, 0};
    const CK_BYTE *data = hsmc_abc_digest_info;
    CK_ULONG data_len = sizeof hsmc_abc_digest_info;
    int listed;
    CK_RV rv;

    if (op == HSMC_OP_SIGN_RSA_PSS) {
        m.mechanism = CKM_RSA_PKCS_PSS;
        m.pParameter = &pss;
        m.ulParameterLen = sizeof pss;
        data = hsmc_abc_sha256;
        data_len = sizeof hsmc_abc_sha256;
    }
    listed = hsmc_probe_listed(r->pc, m.mechanism);
    if (r->priv == CK_INVALID_HANDLE) {
        hsmc_cap_untried(r->pc, op, m.mechanism, listed, r->why);
        return;
    }
    rv = hsmc_probe_sign_verify(r->pc, &m, r->priv, r->pub, data, data_len, buf,
                                HSMC_PROBE_RSA_BYTES, HSMC_PROBE_RSA_BYTES);
    hsmc_cap_result(r->pc, op, m.mechanism, listed, rv);
}

/* CKM_RSA_PKCS_OAEP with SHA-1 or SHA-256 (hash and MGF1 alike), no label;
 * the ciphertext goes to buf (HSMC_PROBE_RSA_BYTES) and is decrypted in
 * place: tokens want a modulus-sized output buffer. */
static void hsmc_probe_oaep(const hsmc_probe_rsa_t *r, hsmc_op_t op, CK_BYTE *buf)
{
    CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, NULL, 0};
    int listed = hsmc_probe_listed(r->pc, CKM_RSA_PKCS_OAEP);
    CK_RV rv;

    if (r->priv == CK_INVALID_HANDLE) {
        hsmc_cap_untried(r->pc, op, CKM_RSA_PKCS_OAEP, listed, r->why);
        return;
    }
    if (op == HSMC_OP_RSA_OAEP_SHA256) {
        oaep.hashAlg = CKM_SHA256;
        oaep.mgf = CKG_MGF1_SHA256;
    }
    m.pParameter = &oaep;
    m.ulParameterLen = sizeof oaep;
    rv = hsmc_probe_roundtrip(r->pc, &m, r->pub, r->priv, 32, buf, HSMC_PROBE_RSA_BYTES, buf,
                              HSMC_PROBE_RSA_BYTES);
    hsmc_cap_result(r->pc, op, CKM_RSA_PKCS_OAEP, listed, rv);
}

/*
 * The four RSA operations. Their signature and ciphertext buffer,
 * HSMC_PROBE_RSA_BITS / 8 bytes, is the one modulus-sized buffer of the
 * probe: alone in this frame (the token writes it in one piece, and the
 * probe has no caller buffer to put it in), lent to each step in turn.
 */
HSMC_PROBE_STEP static void hsmc_probe_rsa_ops(const hsmc_probe_rsa_t *r)
{
    CK_BYTE buf[HSMC_PROBE_RSA_BYTES];

    hsmc_probe_rsa_sign(r, HSMC_OP_SIGN_RSA_PKCS, buf);
    hsmc_probe_rsa_sign(r, HSMC_OP_SIGN_RSA_PSS, buf);
    hsmc_probe_oaep(r, HSMC_OP_RSA_OAEP_SHA1, buf);
    hsmc_probe_oaep(r, HSMC_OP_RSA_OAEP_SHA256, buf);
}

HSMC_PROBE_STEP static void hsmc_probe_rsa(hsmc_probe_ctx_t *pc)
{
    CK_MECHANISM m = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    hsmc_probe_rsa_t r;
    int listed = hsmc_probe_listed(pc, CKM_RSA_PKCS_KEY_PAIR_GEN);

    if (pc->lost != CKR_OK)
        return;
    r.pc = pc;
    r.pub = r.priv = CK_INVALID_HANDLE;
    r.why = pc->calls ? CKR_USER_NOT_LOGGED_IN : CKR_OK;
    if (hsmc_probe_may_try(pc, HSMC_OP_KEYGEN_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, listed)) {
        r.why = hsmc_pr(pc,
                        pc->fl->C_GenerateKeyPair(pc->s, &m, HSMC_TMPL(hsmc_rsa_pub_tmpl),
                                                  HSMC_TMPL(hsmc_rsa_priv_tmpl), &r.pub, &r.priv),
                        "C_GenerateKeyPair");
        if (r.why != CKR_OK)
            r.pub = r.priv = CK_INVALID_HANDLE;
        hsmc_cap_keygen(pc, HSMC_OP_KEYGEN_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, listed, r.why);
    }
    hsmc_probe_rsa_ops(&r);
    hsmc_probe_destroy(pc, &r.priv);
    hsmc_probe_destroy(pc, &r.pub);
}

/* ---- EdDSA (Ed25519) ------------------------------------------------------ */

/* Generate an Ed25519 pair with the curve named as a string, else as an OID. */
static CK_RV hsmc_probe_ed_keygen(hsmc_probe_ctx_t *pc, CK_OBJECT_HANDLE *pub,
                                  CK_OBJECT_HANDLE *priv)
{
    CK_MECHANISM m = {CKM_EC_EDWARDS_KEY_PAIR_GEN, NULL, 0};
    CK_RV rv;

    rv = hsmc_pr(pc,
                 pc->fl->C_GenerateKeyPair(pc->s, &m, HSMC_TMPL(hsmc_ed_pub_name_tmpl),
                                           HSMC_TMPL(hsmc_sign_priv_tmpl), pub, priv),
                 "C_GenerateKeyPair");
    if (rv != CKR_OK && pc->lost == CKR_OK)
        rv = hsmc_pr(pc,
                     pc->fl->C_GenerateKeyPair(pc->s, &m, HSMC_TMPL(hsmc_ed_pub_oid_tmpl),
                                               HSMC_TMPL(hsmc_sign_priv_tmpl), pub, priv),
                     "C_GenerateKeyPair");
    if (rv != CKR_OK)
        *pub = *priv = CK_INVALID_HANDLE;
    return rv;
}

HSMC_PROBE_STEP static void hsmc_probe_eddsa(hsmc_probe_ctx_t *pc)
{
    CK_MECHANISM m = {CKM_EDDSA, NULL, 0};
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    CK_BYTE sig[64];
    int listed = hsmc_probe_listed(pc, CKM_EDDSA);
    int gen_listed = hsmc_probe_listed(pc, CKM_EC_EDWARDS_KEY_PAIR_GEN);
    CK_RV rv;

    if (pc->lost != CKR_OK || !hsmc_probe_may_try(pc, HSMC_OP_EDDSA, CKM_EDDSA, listed))
        return;
    rv = hsmc_probe_ed_keygen(pc, &pub, &priv);
    if (rv != CKR_OK) {
        /* No separate keygen op: a listed generator that fails is BROKEN. */
        if (hsmc_probe_refused(rv) && !gen_listed)
            hsmc_cap_untried(pc, HSMC_OP_EDDSA, CKM_EDDSA, listed, rv);
        else
            hsmc_cap_result(pc, HSMC_OP_EDDSA, CKM_EDDSA, listed || gen_listed, rv);
        return;
    }
    rv = hsmc_probe_sign_verify(pc, &m, priv, pub, hsmc_plain, sizeof hsmc_plain, sig, sizeof sig,
                                64);
    hsmc_cap_result(pc, HSMC_OP_EDDSA, CKM_EDDSA, listed, rv);
    hsmc_probe_destroy(pc, &priv);
    hsmc_probe_destroy(pc, &pub);
}

/* ---- Driver --------------------------------------------------------------- */

/* Every operation, in hsmc_op_t order; abandons at the first session loss. */
static void hsmc_probe_run(hsmc_probe_ctx_t *pc)
{
    CK_SESSION_INFO si;

    if (pc->calls) {
        /* Key operations need the user logged in; otherwise list only. */
        if (hsmc_pr(pc, pc->fl->C_GetSessionInfo(pc->s, &si), "C_GetSessionInfo") == CKR_OK)
            pc->user = si.state == CKS_RO_USER_FUNCTIONS || si.state == CKS_RW_USER_FUNCTIONS;
        if (pc->lost != CKR_OK)
            return;
    }
    hsmc_probe_random(pc);
    if (pc->lost == CKR_OK)
        hsmc_probe_digest(pc);
    hsmc_probe_aes(pc);
    hsmc_probe_ec(pc);
    hsmc_probe_rsa(pc);
    hsmc_probe_eddsa(pc);
}

/* One debug line per operation. */
HSMC_PROBE_STEP static void hsmc_probe_log(hsmc_t *h, const hsmc_caps_t *caps)
{
    unsigned i;

    for (i = 0; i < (unsigned)HSMC_OP_COUNT; i++) {
        const hsmc_cap_t *c = &caps->op[i];
        HSMC_LOG(h, HSMC_LOG_DEBUG, "probe %s: %s (%s, %s)", hsmc_op_name((hsmc_op_t)i),
                 hsmc_cap_status_name(c->status), hsmc_ckm_name(c->mech),
                 hsmc_ckr_name(c->rv));
    }
    (void)h;
    (void)caps;
}

/*
 * hsmc_probe (probe.h). One pool session holds every temporary key; the
 * helpers destroy them before returning, also when a call fails. On a lost
 * session/login/token the session is ended with that result (hsmc
 * recovers) and the probe is redone from the start, at most
 * HSMC_RECOVER_RETRIES times. The GCM layout that worked is remembered in
 * the context (not by a list-only probe, which learns none).
 */
hsmc_err_t hsmc_probe(hsmc_t *h, unsigned flags, hsmc_caps_t *caps)
{
    hsmc_probe_ctx_t pc;
    hsmc_sess_t s;
    hsmc_err_t err;

    if (h == NULL || caps == NULL)
        return h == NULL ? HSMC_ERR_ARG
                         : hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "hsmc_probe: caps is NULL");
    if ((flags & ~HSMC_PROBE_LIST_ONLY) != 0u)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "hsmc_probe: unknown flags 0x%x", flags);
    memset(caps, 0, sizeof *caps);
    memset(&s, 0, sizeof s);
    for (;;) {
        err = hsmc_session_begin(h, &s);
        if (err != HSMC_OK)
            return err;
        memset(caps, 0, sizeof *caps);
        memset(&pc, 0, sizeof pc);
        pc.fl = hsmc_functions(h);
        pc.s = s.handle;
        pc.caps = caps;
        pc.calls = (flags & HSMC_PROBE_LIST_ONLY) == 0u;
        pc.lost_what = "hsmc_probe";
        /* After a recovery the token may sit in another slot: read it each time. */
        err = hsmc_slot(h, &pc.slot);
        if (err != HSMC_OK || pc.fl == NULL) {
            (void)hsmc_session_end(&s, CKR_OK, "hsmc_probe");
            return hsmc__fail(h, HSMC_ERR_STATE, CKR_OK, "hsmc_probe: no token selected");
        }
        hsmc_probe_run(&pc);
        if (pc.lost == CKR_OK && pc.dirty) {
            /* An operation may still be active or a probe object undeleted:
             * do not hand this session to the next user. Closing it drops
             * its session objects; reporting it closed makes hsmc reopen the
             * pool (counted as a recovery). The results stand. */
            (void)pc.fl->C_CloseSession(s.handle);
            (void)hsmc_session_end(&s, CKR_SESSION_CLOSED,
                                   "hsmc_probe (session left unclean by the token)");
            err = HSMC_OK;
            break;
        }
        err = hsmc_session_end(&s, pc.lost, pc.lost_what);
        if (err != HSMC_RETRY)
            break;
    }
    if (err == HSMC_OK) {
        if (pc.calls)
            h->gcm_layout = (unsigned char)caps->gcm_layout;
        hsmc_probe_log(h, caps);
    }
    return err;
}
