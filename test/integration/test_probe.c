/*
 * The capability probe against SoftHSM2 2.6 (tokens "test" and "test2" from
 * with-token.sh): the statuses TOKENS.md promises, no probe object left
 * behind, list-only mode making no calls, the no-login answers, and clean-up
 * when the fault proxy (test/fault) makes single calls fail.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "hsmc_test.h"
#include "fault/hsmc_fault.h"

#define KWP_LEGACY 0x210AUL /* SoftHSM2's RFC 5649 wrap */

static hsmc_fault_api_t fault;
static const char *fault_module; /* the loaded fault proxy, NULL when there is none */

/* ---- helpers ------------------------------------------------------------ */

/* Open `label` on `module` (NULL: SoftHSM2), logged in unless no_pin. */
static hsmc_err_t open_token(hsmc_t *h, const char *module, const char *label, int no_pin)
{
    hsmc_cfg_t cfg;
    hsmc_err_t err;

    hsmc_test_cfg(&cfg, label);
    if (module != NULL)
        cfg.module_path = module;
    if (no_pin)
        cfg.pin.kind = HSMC_PIN_NONE;
    hsmc_init(h);
    err = hsmc_open(h, &cfg);
    if (err != HSMC_OK)
        fprintf(stderr, "hsmc_open(%s): %s\n", label, hsmc_detail(h));
    return err;
}

/*
 * Objects visible in a fresh session of this application (session objects
 * of every session included; private ones too while the token is logged
 * in). -1 on a PKCS#11 error.
 */
static long count_objects(hsmc_t *h)
{
    CK_FUNCTION_LIST_PTR fl = hsmc_functions(h);
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE objs[32];
    CK_ULONG n = 0;
    long total = 0;

    if (fl == NULL || hsmc_slot(h, &slot) != HSMC_OK)
        return -1;
    if (fl->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
        return -1;
    if (fl->C_FindObjectsInit(s, NULL, 0) != CKR_OK) {
        fl->C_CloseSession(s);
        return -1;
    }
    do {
        if (fl->C_FindObjects(s, objs, 32, &n) != CKR_OK) {
            total = -1;
            break;
        }
        total += (long)n;
    } while (n == 32);
    fl->C_FindObjectsFinal(s);
    fl->C_CloseSession(s);
    return total;
}

static void print_caps(const char *title, const hsmc_caps_t *caps)
{
    int i;

    fprintf(stderr, "  %s (gcm layout %u):\n", title, caps->gcm_layout);
    for (i = 0; i < HSMC_OP_COUNT; i++)
        fprintf(stderr, "    %-17s %-8s %-28s %s\n", hsmc_op_name((hsmc_op_t)i),
                hsmc_cap_status_name(caps->op[i].status), hsmc_ckm_name(caps->op[i].mech),
                hsmc_ckr_name(caps->op[i].rv));
}

#define CHECK_CAP(caps, which, st)                                                       \
    do {                                                                                 \
        if ((caps).op[which].status != (st)) {                                           \
            fprintf(stderr, "FAIL %s (%s:%d): %s is %s (%s), want %s\n", hsmc_test_name, \
                    __FILE__, __LINE__, hsmc_op_name(which),                             \
                    hsmc_cap_status_name((caps).op[which].status),                       \
                    hsmc_ckr_name((caps).op[which].rv), hsmc_cap_status_name(st));      \
            hsmc_test_cur_failed = 1;                                                    \
        }                                                                                \
    } while (0)

/* ---- tests -------------------------------------------------------------- */

/* The count above sees session objects of other sessions: make one. */
static void test_count_sees_session_objects(void)
{
    static const CK_BBOOL no = CK_FALSE;
    static const CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[2];
    hsmc_t h;
    hsmc_sess_t s;
    CK_OBJECT_HANDLE obj;
    CK_RV rv;

    REQUIRE(open_token(&h, NULL, "test", 0) == HSMC_OK);
    CHECK(count_objects(&h) == 0);
    t[0].type = CKA_CLASS;
    t[0].pValue = (void *)(uintptr_t)&cls;
    t[0].ulValueLen = sizeof cls;
    t[1].type = CKA_TOKEN;
    t[1].pValue = (void *)(uintptr_t)&no;
    t[1].ulValueLen = sizeof no;
    memset(&s, 0, sizeof s);
    REQUIRE(hsmc_session_begin(&h, &s) == HSMC_OK);
    rv = hsmc_functions(&h)->C_CreateObject(s.handle, t, 2, &obj);
    CHECK(rv == CKR_OK);
    CHECK(count_objects(&h) == 1);
    if (rv == CKR_OK)
        CHECK(hsmc_functions(&h)->C_DestroyObject(s.handle, obj) == CKR_OK);
    CHECK_ERR(hsmc_session_end(&s, CKR_OK, "test"), HSMC_OK);
    CHECK(count_objects(&h) == 0);
    hsmc_close(&h);
}

static void test_probe_softhsm(void)
{
    hsmc_t h;
    hsmc_caps_t caps;
    int i;

    REQUIRE(open_token(&h, NULL, "test", 0) == HSMC_OK);
    CHECK(h.gcm_layout == 0);
    CHECK_ERR(hsmc_probe(&h, 0, &caps), HSMC_OK);
    print_caps("SoftHSM2, logged in", &caps);

    CHECK_CAP(caps, HSMC_OP_RANDOM, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_DIGEST_SHA256, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_KEYGEN_AES, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_KEYGEN_EC, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_KEYGEN_RSA, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_SIGN_ECDSA, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_SIGN_RSA_PKCS, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_SIGN_RSA_PSS, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_AES_GCM, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_AES_KEY_WRAP, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_AES_KEY_WRAP_PAD, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_AES_CBC_PAD, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_RSA_OAEP_SHA1, HSMC_CAP_WORKS);
    /* Listed, but SoftHSM2 2.6 rejects the SHA-256 parameters. */
    CHECK_CAP(caps, HSMC_OP_RSA_OAEP_SHA256, HSMC_CAP_BROKEN);
    CHECK(caps.op[HSMC_OP_RSA_OAEP_SHA256].rv == CKR_ARGUMENTS_BAD);
    CHECK_CAP(caps, HSMC_OP_EDDSA, HSMC_CAP_WORKS);

    CHECK(caps.op[HSMC_OP_SIGN_ECDSA].mech == CKM_ECDSA);
    CHECK(caps.op[HSMC_OP_AES_KEY_WRAP].mech == CKM_AES_KEY_WRAP);
    CHECK(caps.op[HSMC_OP_AES_KEY_WRAP_PAD].mech == KWP_LEGACY);
    CHECK(caps.op[HSMC_OP_EDDSA].mech == CKM_EDDSA);
    /* SoftHSM2 2.6.1 takes the CK_GCM_PARAMS with ulIvBits. */
    CHECK(caps.gcm_layout == 1u);
    CHECK(h.gcm_layout == caps.gcm_layout);
    for (i = 0; i < HSMC_OP_COUNT; i++)
        if (caps.op[i].status == HSMC_CAP_WORKS)
            CHECK(caps.op[i].rv == CKR_OK);

    CHECK(count_objects(&h) == 0);
    /* Twice in a row gives the same answers (nothing left active). */
    {
        hsmc_caps_t again;
        CHECK_ERR(hsmc_probe(&h, 0, &again), HSMC_OK);
        CHECK(memcmp(&again, &caps, sizeof caps) == 0);
    }
    CHECK(count_objects(&h) == 0);
    CHECK(hsmc_recoveries(&h) == 0);
    hsmc_close(&h);
}

static void test_probe_args(void)
{
    hsmc_t h;
    hsmc_caps_t caps;

    hsmc_init(&h);
    CHECK_ERR(hsmc_probe(NULL, 0, &caps), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_probe(&h, 0, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_probe(&h, 0, &caps), HSMC_ERR_STATE); /* not open */
    REQUIRE(open_token(&h, NULL, "test", 0) == HSMC_OK);
    CHECK_ERR(hsmc_probe(&h, 0x80u, &caps), HSMC_ERR_ARG);
    hsmc_close(&h);
}

/* Without a login: random and digest still work, key operations are LISTED. */
static void test_probe_no_login(void)
{
    hsmc_t h;
    hsmc_caps_t caps;
    int i;

    REQUIRE(open_token(&h, NULL, "test2", 1) == HSMC_OK);
    CHECK_ERR(hsmc_probe(&h, 0, &caps), HSMC_OK);
    print_caps("SoftHSM2, no login", &caps);
    CHECK_CAP(caps, HSMC_OP_RANDOM, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_DIGEST_SHA256, HSMC_CAP_WORKS);
    for (i = HSMC_OP_KEYGEN_AES; i < HSMC_OP_COUNT; i++) {
        CHECK_CAP(caps, (hsmc_op_t)i, HSMC_CAP_LISTED);
        CHECK(caps.op[i].rv == CKR_USER_NOT_LOGGED_IN);
    }
    CHECK(caps.gcm_layout == 0);
    CHECK(h.gcm_layout == 0);
    CHECK(count_objects(&h) == 0);
    hsmc_close(&h);
}

/* 1 when the fault proxy is loaded, else 0 with a note that the test is skipped. */
static int have_proxy(void)
{
    if (fault_module == NULL)
        fprintf(stderr, "  (no fault proxy: skipped)\n");
    return fault_module != NULL;
}

/* List-only: statuses from the lists, no key made (counted by the proxy). */
static void test_probe_list_only(void)
{
    hsmc_t h;
    hsmc_caps_t caps;
    int i;

    REQUIRE(open_token(&h, fault_module, "test", 0) == HSMC_OK);
    if (fault_module != NULL)
        fault.reset_counts();
    CHECK_ERR(hsmc_probe(&h, HSMC_PROBE_LIST_ONLY, &caps), HSMC_OK);
    print_caps("SoftHSM2, list only", &caps);
    for (i = 0; i < HSMC_OP_COUNT; i++)
        CHECK_CAP(caps, (hsmc_op_t)i, HSMC_CAP_LISTED);
    CHECK(caps.op[HSMC_OP_AES_KEY_WRAP_PAD].mech == KWP_LEGACY);
    CHECK(caps.gcm_layout == 0);
    if (fault_module != NULL) {
        CHECK(fault.calls("C_GenerateKey") == 0);
        CHECK(fault.calls("C_GenerateKeyPair") == 0);
        CHECK(fault.calls("C_GenerateRandom") == 0);
        CHECK(fault.calls("C_EncryptInit") == 0);
        CHECK(fault.calls("C_SignInit") == 0);
        CHECK(fault.calls("C_DigestInit") == 0);
        CHECK(fault.calls("C_GetMechanismInfo") > 0);
    } else {
        fprintf(stderr, "  (no fault proxy: call counts not checked)\n");
    }
    CHECK(count_objects(&h) == 0);
    /* A full probe afterwards learns the layout; list-only keeps it. */
    CHECK_ERR(hsmc_probe(&h, 0, &caps), HSMC_OK);
    CHECK(h.gcm_layout == 1u);
    CHECK_ERR(hsmc_probe(&h, HSMC_PROBE_LIST_ONLY, &caps), HSMC_OK);
    CHECK(h.gcm_layout == 1u);
    hsmc_close(&h);
}

/* One injected failure per run: the affected op gets the expected status, the
 * others still work, and nothing is left over. */
static void test_probe_faults_leave_nothing(void)
{
    static const struct {
        const char *fn;
        CK_RV rv;
        unsigned skip, count;
        hsmc_op_t op;          /* an op affected by the fault ... */
        hsmc_cap_status_t st;  /* ... and its status */
        hsmc_op_t op_ok;       /* an op that must still work */
    } cases[] = {
        /* Every C_EncryptInit refused: every encrypting op is BROKEN. */
        {"C_EncryptInit", CKR_MECHANISM_INVALID, 0, 0, HSMC_OP_AES_GCM, HSMC_CAP_BROKEN,
         HSMC_OP_SIGN_ECDSA},
        /* Data-phase faults: the proxy answers without the module ending
         * the operation, which the probe must settle. */
        {"C_Encrypt", CKR_DEVICE_ERROR, 0, 1, HSMC_OP_AES_GCM, HSMC_CAP_BROKEN,
         HSMC_OP_AES_CBC_PAD},
        {"C_Decrypt", CKR_DEVICE_ERROR, 1, 1, HSMC_OP_AES_CBC_PAD, HSMC_CAP_BROKEN,
         HSMC_OP_RSA_OAEP_SHA1},
        {"C_Sign", CKR_FUNCTION_FAILED, 0, 1, HSMC_OP_SIGN_ECDSA, HSMC_CAP_BROKEN,
         HSMC_OP_SIGN_RSA_PKCS},
        {"C_Verify", CKR_SIGNATURE_INVALID, 1, 1, HSMC_OP_SIGN_RSA_PKCS, HSMC_CAP_BROKEN,
         HSMC_OP_SIGN_ECDSA},
        {"C_Digest", CKR_DEVICE_ERROR, 0, 1, HSMC_OP_DIGEST_SHA256, HSMC_CAP_BROKEN,
         HSMC_OP_AES_GCM},
        {"C_WrapKey", CKR_FUNCTION_FAILED, 0, 1, HSMC_OP_AES_KEY_WRAP, HSMC_CAP_BROKEN,
         HSMC_OP_AES_KEY_WRAP_PAD},
        {"C_UnwrapKey", CKR_WRAPPED_KEY_INVALID, 0, 0, HSMC_OP_AES_KEY_WRAP, HSMC_CAP_BROKEN,
         HSMC_OP_AES_GCM},
        /* First pair (EC) made, second (RSA) refused: keygen-rsa BROKEN, the
         * RSA ops untried (LISTED). */
        {"C_GenerateKeyPair", CKR_DEVICE_MEMORY, 1, 1, HSMC_OP_KEYGEN_RSA, HSMC_CAP_BROKEN,
         HSMC_OP_KEYGEN_EC},
        {"C_GenerateKeyPair", CKR_DEVICE_MEMORY, 1, 1, HSMC_OP_SIGN_RSA_PSS, HSMC_CAP_LISTED,
         HSMC_OP_SIGN_ECDSA},
        /* The key to be wrapped is refused: the wraps are untried (LISTED). */
        {"C_GenerateKey", CKR_DEVICE_MEMORY, 1, 1, HSMC_OP_AES_KEY_WRAP, HSMC_CAP_LISTED,
         HSMC_OP_AES_GCM},
        {"C_GenerateKey", CKR_TEMPLATE_INCONSISTENT, 0, 1, HSMC_OP_KEYGEN_AES, HSMC_CAP_LISTED,
         HSMC_OP_KEYGEN_EC},
    };
    hsmc_t h;
    hsmc_caps_t caps;
    size_t i;

    if (!have_proxy())
        return;
    REQUIRE(open_token(&h, fault_module, "test", 0) == HSMC_OK);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long left;
        fault.clear();
        fault.set(cases[i].fn, cases[i].rv, cases[i].skip, cases[i].count);
        CHECK_ERR(hsmc_probe(&h, 0, &caps), HSMC_OK);
        fault.clear();
        if (cases[i].op != HSMC_OP_COUNT && caps.op[cases[i].op].status != cases[i].st) {
            fprintf(stderr, "FAIL %s: %s=%s: %s is %s (%s), want %s\n", hsmc_test_name,
                    cases[i].fn, hsmc_ckr_name(cases[i].rv), hsmc_op_name(cases[i].op),
                    hsmc_cap_status_name(caps.op[cases[i].op].status),
                    hsmc_ckr_name(caps.op[cases[i].op].rv), hsmc_cap_status_name(cases[i].st));
            hsmc_test_cur_failed = 1;
        }
        if (caps.op[cases[i].op_ok].status != HSMC_CAP_WORKS) {
            fprintf(stderr, "FAIL %s: %s=%s: %s is %s (%s)\n", hsmc_test_name, cases[i].fn,
                    hsmc_ckr_name(cases[i].rv), hsmc_op_name(cases[i].op_ok),
                    hsmc_cap_status_name(caps.op[cases[i].op_ok].status),
                    hsmc_ckr_name(caps.op[cases[i].op_ok].rv));
            hsmc_test_cur_failed = 1;
        }
        left = count_objects(&h);
        if (left != 0) {
            fprintf(stderr, "FAIL %s: %s=%s left %ld objects\n", hsmc_test_name,
                    cases[i].fn, hsmc_ckr_name(cases[i].rv), left);
            hsmc_test_cur_failed = 1;
        }
        /* The pool session carries nothing into the next probe. */
        CHECK_ERR(hsmc_probe(&h, 0, &caps), HSMC_OK);
        CHECK_CAP(caps, HSMC_OP_AES_GCM, HSMC_CAP_WORKS);
        CHECK_CAP(caps, HSMC_OP_AES_CBC_PAD, HSMC_CAP_WORKS);
        CHECK_CAP(caps, HSMC_OP_SIGN_ECDSA, HSMC_CAP_WORKS);
        CHECK_CAP(caps, HSMC_OP_SIGN_RSA_PKCS, HSMC_CAP_WORKS);
        CHECK_CAP(caps, HSMC_OP_RSA_OAEP_SHA1, HSMC_CAP_WORKS);
        CHECK(count_objects(&h) == 0);
    }
    /* Each repeat finished what the fault left active: no session replaced. */
    CHECK(hsmc_recoveries(&h) == 0);
    hsmc_close(&h);
}

/*
 * A data-phase call that fails twice (the call and the probe's repeat) may
 * have left the operation active: the probe must not hand that session on.
 */
static void test_probe_dirty_session(void)
{
    hsmc_t h;
    hsmc_caps_t caps;
    uint8_t rnd[8];

    if (!have_proxy())
        return;
    REQUIRE(open_token(&h, fault_module, "test", 0) == HSMC_OK);
    fault.clear();
    fault.set("C_Sign", CKR_DEVICE_ERROR, 0, 2); /* SoftHSM2's sign stays active */
    CHECK_ERR(hsmc_probe(&h, 0, &caps), HSMC_OK);
    fault.clear();
    CHECK_CAP(caps, HSMC_OP_SIGN_ECDSA, HSMC_CAP_BROKEN);
    CHECK(caps.op[HSMC_OP_SIGN_ECDSA].rv == CKR_DEVICE_ERROR);
    /* The later ops ran on the same session and saw the active operation. */
    CHECK_CAP(caps, HSMC_OP_SIGN_RSA_PKCS, HSMC_CAP_BROKEN);
    CHECK(caps.op[HSMC_OP_SIGN_RSA_PKCS].rv == CKR_OPERATION_ACTIVE);
    CHECK(hsmc_recoveries(&h) == 1); /* the session was replaced */
    CHECK(count_objects(&h) == 0);
    CHECK_ERR(hsmc_random(&h, rnd, sizeof rnd), HSMC_OK);
    CHECK_ERR(hsmc_probe(&h, 0, &caps), HSMC_OK);
    CHECK_CAP(caps, HSMC_OP_SIGN_ECDSA, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_SIGN_RSA_PKCS, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_EDDSA, HSMC_CAP_WORKS);
    CHECK(hsmc_recoveries(&h) == 1);

    /* A refused C_DestroyObject: the session is closed, which drops the
     * object the token would not destroy. */
    fault.set("C_DestroyObject", CKR_DEVICE_ERROR, 0, 1);
    CHECK_ERR(hsmc_probe(&h, 0, &caps), HSMC_OK);
    fault.clear();
    CHECK_CAP(caps, HSMC_OP_AES_GCM, HSMC_CAP_WORKS);
    CHECK(hsmc_recoveries(&h) == 2);
    CHECK(count_objects(&h) == 0);
    hsmc_close(&h);
}

/* A session lost half-way: recovered, probe redone, same answers. */
static void test_probe_session_loss(void)
{
    hsmc_t h;
    hsmc_caps_t caps;

    if (!have_proxy())
        return;
    REQUIRE(open_token(&h, fault_module, "test", 0) == HSMC_OK);
    fault.clear();
    /* The second C_SignInit fails as if the token had closed the session. */
    fault.set("C_SignInit", CKR_SESSION_HANDLE_INVALID, 1, 1);
    CHECK_ERR(hsmc_probe(&h, 0, &caps), HSMC_OK);
    fault.clear();
    CHECK(hsmc_recoveries(&h) == 1);
    CHECK_CAP(caps, HSMC_OP_SIGN_ECDSA, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_SIGN_RSA_PKCS, HSMC_CAP_WORKS);
    CHECK_CAP(caps, HSMC_OP_AES_GCM, HSMC_CAP_WORKS);
    CHECK(count_objects(&h) == 0);

    /* Lost every time: gives up after the retries with HSMC_ERR_RECOVERY. */
    fault.set("C_GenerateKeyPair", CKR_DEVICE_REMOVED, 0, 0);
    CHECK_ERR(hsmc_probe(&h, 0, &caps), HSMC_ERR_RECOVERY);
    fault.clear();
    CHECK(count_objects(&h) == 0);
    CHECK_ERR(hsmc_probe(&h, 0, &caps), HSMC_OK);
    CHECK_CAP(caps, HSMC_OP_KEYGEN_RSA, HSMC_CAP_WORKS);
    hsmc_close(&h);
}

int main(void)
{
    /* The proxy forwards to the module the other tests use. */
    setenv("HSMC_FAULT_MODULE", hsmc_test_env("HSMC_TEST_MODULE"), 1);
    fault_module = hsmc_test_fault_load(&fault);
    if (fault_module == NULL)
        fprintf(stderr, "cannot load the fault proxy (HSMC_TEST_FAULT_MODULE)\n");
    RUN(test_count_sees_session_objects);
    RUN(test_probe_softhsm);
    RUN(test_probe_args);
    RUN(test_probe_no_login);
    RUN(test_probe_list_only);
    RUN(test_probe_faults_leave_nothing);
    RUN(test_probe_dirty_session);
    RUN(test_probe_session_loss);
    return TEST_END();
}
