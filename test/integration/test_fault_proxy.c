/*
 * The fault-injecting proxy (test/fault), driven with raw PKCS#11 calls
 * against SoftHSM2 tokens from with-token.sh: every function is wrapped,
 * both entry points work, faults fire after `skip` calls for `count` calls,
 * calls are counted, token flags are masked, sessions can be closed behind
 * the caller's back, and the HSMC_FAULT environment form works.
 */
#define _XOPEN_SOURCE 700

#include <dlfcn.h>
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

#include "hsmc_test.h"
#include "fault/hsmc_fault.h"

typedef struct iface {
    CK_UTF8CHAR_PTR pInterfaceName;
    CK_VOID_PTR pFunctionList;
    CK_FLAGS flags;
} iface_t;
typedef CK_RV (*get_interface_fn)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, iface_t **, CK_FLAGS);

static hsmc_fault_api_t api;
static CK_FUNCTION_LIST_PTR fl;
static CK_SLOT_ID slot;
static const char *proxy_path;

#define RV_IS(expr, want)                                                             \
    do {                                                                              \
        CK_RV rv_ = (expr);                                                           \
        if (rv_ != (CK_RV)(want)) {                                                   \
            fprintf(stderr, "FAIL %s (%s:%d): %s returned 0x%lx, want 0x%lx\n",       \
                    hsmc_test_name, __FILE__, __LINE__, #expr, (unsigned long)rv_,    \
                    (unsigned long)(want));                                           \
            hsmc_test_cur_failed = 1;                                                 \
        }                                                                             \
    } while (0)

static int sym(void *handle, const char *name, void *fn)
{
    void *p = dlsym(handle, name);
    if (p == NULL) {
        return 0;
    }
    memcpy(fn, &p, sizeof p);
    return 1;
}

/* The slot whose token is labelled `label`, via list `f`. */
static int find_slot(CK_FUNCTION_LIST_PTR f, const char *label, CK_SLOT_ID *out)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16, i;
    size_t len = strlen(label);
    if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        size_t k;
        int match;
        if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK) {
            continue;
        }
        match = memcmp(ti.label, label, len) == 0;
        for (k = len; match && k < sizeof ti.label; k++) {
            match = ti.label[k] == ' ';
        }
        if (match) {
            *out = slots[i];
            return 1;
        }
    }
    return 0;
}

static CK_SESSION_HANDLE open_session(void)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    if (fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) !=
        CKR_OK) {
        return CK_INVALID_HANDLE;
    }
    return s;
}

static CK_RV rnd(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s)
{
    CK_BYTE b[16];
    return f->C_GenerateRandom(s, b, sizeof b);
}

/* Every one of the 68 entries is set, and none is the real module's own. */
static void test_list_wrapped(void)
{
    void *real_h = dlopen(hsmc_test_env("HSMC_TEST_MODULE"), RTLD_NOW | RTLD_LOCAL);
    CK_RV (*real_gfl)(CK_FUNCTION_LIST_PTR_PTR) = NULL;
    CK_FUNCTION_LIST_PTR real = NULL;
    size_t first = offsetof(CK_FUNCTION_LIST, C_Initialize), i, n, wrapped = 0;

    REQUIRE(real_h != NULL);
    REQUIRE(sym(real_h, "C_GetFunctionList", &real_gfl));
    REQUIRE(real_gfl(&real) == CKR_OK && real != NULL);
    n = (sizeof(CK_FUNCTION_LIST) - first) / sizeof(CK_C_Initialize);
    CHECK(n == 68);
    for (i = 0; i < n; i++) {
        CK_C_Initialize mine, theirs;
        memcpy(&mine, (const char *)fl + first + i * sizeof mine, sizeof mine);
        memcpy(&theirs, (const char *)real + first + i * sizeof theirs, sizeof theirs);
        CHECK(mine != NULL);
        if (mine != NULL && mine != theirs) {
            wrapped++;
        }
    }
    CHECK(wrapped == 68);
    CHECK(fl->version.major == real->version.major);
    CHECK(fl->version.minor == real->version.minor);
    dlclose(real_h);
}

static void test_entry_points(void)
{
    get_interface_fn gi = NULL;
    CK_RV (*gfl)(CK_FUNCTION_LIST_PTR_PTR) = NULL;
    CK_FUNCTION_LIST_PTR l = NULL;
    iface_t *itf = NULL;
    CK_VERSION v;
    static CK_UTF8CHAR pkcs11[] = "PKCS 11", vendor[] = "Vendor X";

    REQUIRE(sym(api.handle, "C_GetInterface", &gi));
    REQUIRE(sym(api.handle, "C_GetFunctionList", &gfl));
    api.reset_counts();
    RV_IS(gfl(&l), CKR_OK);
    CHECK(l == fl);
    RV_IS(gfl(NULL), CKR_ARGUMENTS_BAD);
    RV_IS(gi(pkcs11, NULL, &itf, 0), CKR_OK);
    REQUIRE(itf != NULL);
    CHECK(itf->pFunctionList == (CK_VOID_PTR)fl);
    CHECK(strcmp((const char *)itf->pInterfaceName, "PKCS 11") == 0);
    RV_IS(gi(NULL, NULL, &itf, 0), CKR_OK);
    v = fl->version;
    RV_IS(gi(pkcs11, &v, &itf, 0), CKR_OK);
    v.major = 3;
    RV_IS(gi(pkcs11, &v, &itf, 0), CKR_ARGUMENTS_BAD);
    RV_IS(gi(vendor, NULL, &itf, 0), CKR_ARGUMENTS_BAD);
    RV_IS(gi(pkcs11, NULL, NULL, 0), CKR_ARGUMENTS_BAD);
    CHECK(api.calls("C_GetFunctionList") == 2);
    CHECK(api.calls("C_GetInterface") == 6);
}

/* C_Initialize is forwarded as is: a second one reports the first. */
static void test_initialize_passthrough(void)
{
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    RV_IS(fl->C_Initialize(&args), CKR_CRYPTOKI_ALREADY_INITIALIZED);
}

static void test_fault_once(void)
{
    CK_SESSION_HANDLE s = open_session();
    REQUIRE(s != CK_INVALID_HANDLE);
    api.reset_counts();
    RV_IS(rnd(fl, s), CKR_OK);
    api.set("C_GenerateRandom", CKR_DEVICE_REMOVED, 0, 1);
    RV_IS(rnd(fl, s), CKR_DEVICE_REMOVED);
    RV_IS(rnd(fl, s), CKR_OK); /* once only */
    RV_IS(rnd(fl, s), CKR_OK);
    CHECK(api.calls("C_GenerateRandom") == 4);
    CHECK(api.calls("C_Sign") == 0);
    /* The faulted call never reached the module: the session is fine. */
    RV_IS(fl->C_CloseSession(s), CKR_OK);
    CHECK(api.calls("C_CloseSession") == 1);
}

static void test_fault_skip_count(void)
{
    CK_SESSION_HANDLE s = open_session();
    REQUIRE(s != CK_INVALID_HANDLE);
    api.set("C_GenerateRandom", CKR_DEVICE_ERROR, 2, 2);
    RV_IS(rnd(fl, s), CKR_OK);
    RV_IS(rnd(fl, s), CKR_OK);
    RV_IS(rnd(fl, s), CKR_DEVICE_ERROR);
    RV_IS(rnd(fl, s), CKR_DEVICE_ERROR);
    RV_IS(rnd(fl, s), CKR_OK);

    /* count 0: until cleared. A new set replaces the old one. */
    api.set("C_GenerateRandom", CKR_GENERAL_ERROR, 0, 0);
    api.set("C_GenerateRandom", CKR_TOKEN_NOT_PRESENT, 0, 0);
    {
        int i;
        for (i = 0; i < 5; i++) {
            RV_IS(rnd(fl, s), CKR_TOKEN_NOT_PRESENT);
        }
    }
    api.clear();
    RV_IS(rnd(fl, s), CKR_OK);

    /* Faults on different functions are independent. */
    api.reset_counts();
    api.set("C_GetSessionInfo", CKR_SESSION_CLOSED, 0, 1);
    {
        CK_SESSION_INFO si;
        RV_IS(rnd(fl, s), CKR_OK);
        RV_IS(fl->C_GetSessionInfo(s, &si), CKR_SESSION_CLOSED);
        RV_IS(fl->C_GetSessionInfo(s, &si), CKR_OK);
    }
    CHECK(api.calls("C_GetSessionInfo") == 2);
    CHECK(api.calls("C_GenerateRandom") == 1);
    api.reset_counts();
    CHECK(api.calls("C_GetSessionInfo") == 0);
    RV_IS(fl->C_CloseSession(s), CKR_OK);
}

static void test_login_fault(void)
{
    const char *pin = hsmc_test_env("HSMC_TEST_PIN");
    CK_SESSION_HANDLE s = open_session();
    CK_SESSION_INFO si;
    REQUIRE(s != CK_INVALID_HANDLE);
    api.reset_counts();
    api.set("C_Login", CKR_PIN_INCORRECT, 0, 1);
    RV_IS(fl->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_PIN_INCORRECT);
    RV_IS(fl->C_GetSessionInfo(s, &si), CKR_OK);
    CHECK(si.state == CKS_RW_PUBLIC_SESSION); /* the module never saw it */
    RV_IS(fl->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    RV_IS(fl->C_GetSessionInfo(s, &si), CKR_OK);
    CHECK(si.state == CKS_RW_USER_FUNCTIONS);
    CHECK(api.calls("C_Login") == 2);
    RV_IS(fl->C_Logout(s), CKR_OK);
    RV_IS(fl->C_CloseSession(s), CKR_OK);
}

static void test_token_flags(void)
{
    CK_TOKEN_INFO ti;
    CK_FLAGS base;

    RV_IS(fl->C_GetTokenInfo(slot, &ti), CKR_OK);
    base = ti.flags;
    CHECK((base & CKF_TOKEN_INITIALIZED) != 0);
    CHECK((base & CKF_USER_PIN_FINAL_TRY) == 0);

    api.token_flags(CKF_USER_PIN_FINAL_TRY, 0);
    RV_IS(fl->C_GetTokenInfo(slot, &ti), CKR_OK);
    CHECK(ti.flags == (base | CKF_USER_PIN_FINAL_TRY));

    api.token_flags(CKF_USER_PIN_LOCKED | CKF_USER_PIN_TO_BE_CHANGED, CKF_TOKEN_INITIALIZED);
    RV_IS(fl->C_GetTokenInfo(slot, &ti), CKR_OK);
    CHECK((ti.flags & CKF_USER_PIN_LOCKED) != 0);
    CHECK((ti.flags & CKF_USER_PIN_TO_BE_CHANGED) != 0);
    CHECK((ti.flags & CKF_USER_PIN_FINAL_TRY) == 0); /* replaced, not added */
    CHECK((ti.flags & CKF_TOKEN_INITIALIZED) == 0);

    api.clear(); /* clears the mask too */
    RV_IS(fl->C_GetTokenInfo(slot, &ti), CKR_OK);
    CHECK(ti.flags == base);
}

/* A token reset behind the client's back: every session closed, login gone. */
static void test_close_sessions_on(void)
{
    const char *pin = hsmc_test_env("HSMC_TEST_PIN");
    CK_SESSION_HANDLE s = open_session(), s2;
    CK_SESSION_INFO si;

    REQUIRE(s != CK_INVALID_HANDLE);
    RV_IS(fl->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    api.reset_counts();
    api.close_sessions_on("C_GenerateRandom", 1);
    RV_IS(rnd(fl, s), CKR_OK);                      /* skipped */
    RV_IS(rnd(fl, s), CKR_SESSION_HANDLE_INVALID);  /* closed just before */
    RV_IS(fl->C_GetSessionInfo(s, &si), CKR_SESSION_HANDLE_INVALID);
    CHECK(api.calls("C_GenerateRandom") == 2);
    CHECK(api.calls("C_CloseAllSessions") == 0);    /* the proxy's own calls are not counted */

    s2 = open_session();
    REQUIRE(s2 != CK_INVALID_HANDLE);
    RV_IS(fl->C_GetSessionInfo(s2, &si), CKR_OK);
    CHECK(si.state == CKS_RW_PUBLIC_SESSION); /* logged out by the reset */
    RV_IS(rnd(fl, s2), CKR_OK);               /* one-shot */
    RV_IS(rnd(fl, s2), CKR_OK);
    RV_IS(fl->C_CloseSession(s2), CKR_OK);
}

/* The environment form, read when an instance is first used: load a copy
 * of the proxy (a different file is a separate instance). */
static void test_env_form(void)
{
    char copy[512], buf[4096];
    const char *dir = hsmc_test_env("HSMC_TEST_DIR");
    const char *pin = hsmc_test_env("HSMC_TEST_PIN");
    int in, out;
    ssize_t r;
    void *h;
    CK_RV (*gfl)(CK_FUNCTION_LIST_PTR_PTR) = NULL;
    unsigned long (*calls)(const char *) = NULL;
    CK_FUNCTION_LIST_PTR f2 = NULL;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_TOKEN_INFO ti;
    CK_SLOT_ID slot2;

    snprintf(copy, sizeof copy, "%s/libhsmc_fault_copy.so", dir);
    in = open(proxy_path, O_RDONLY);
    out = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0700);
    REQUIRE(in >= 0 && out >= 0);
    while ((r = read(in, buf, sizeof buf)) > 0) {
        REQUIRE(write(out, buf, (size_t)r) == r);
    }
    close(in);
    close(out);

    setenv("HSMC_FAULT", "C_GenerateRandom=CKR_DEVICE_ERROR:1:2,C_Login=0xa0", 1);
    setenv("HSMC_FAULT_TOKEN_FLAGS", "0x20000", 1); /* CKF_USER_PIN_FINAL_TRY */
    h = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
    REQUIRE(h != NULL);
    REQUIRE(h != api.handle);
    REQUIRE(sym(h, "C_GetFunctionList", &gfl));
    REQUIRE(sym(h, "hsmc_fault_calls", &calls));
    RV_IS(gfl(&f2), CKR_OK);
    unsetenv("HSMC_FAULT");
    unsetenv("HSMC_FAULT_TOKEN_FLAGS");
    REQUIRE(f2 != NULL && f2 != fl);

    /* Same SoftHSM2 instance underneath, already initialised. */
    RV_IS(f2->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    REQUIRE(find_slot(f2, "test", &slot2));
    RV_IS(f2->C_GetTokenInfo(slot2, &ti), CKR_OK);
    CHECK((ti.flags & CKF_USER_PIN_FINAL_TRY) != 0);
    RV_IS(f2->C_OpenSession(slot2, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    RV_IS(rnd(f2, s), CKR_OK);
    RV_IS(rnd(f2, s), CKR_DEVICE_ERROR);
    RV_IS(rnd(f2, s), CKR_DEVICE_ERROR);
    RV_IS(rnd(f2, s), CKR_OK);
    RV_IS(f2->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_PIN_INCORRECT);
    RV_IS(f2->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_PIN_INCORRECT);
    CHECK(calls("C_GenerateRandom") == 4);
    CHECK(calls("C_Login") == 2);
    RV_IS(f2->C_CloseSession(s), CKR_OK);

    /* The first instance is unaffected. */
    RV_IS(fl->C_GetTokenInfo(slot, &ti), CKR_OK);
    CHECK((ti.flags & CKF_USER_PIN_FINAL_TRY) == 0);
    dlclose(h);
    unlink(copy);
}

int main(void)
{
    CK_RV (*gfl)(CK_FUNCTION_LIST_PTR_PTR) = NULL;
    CK_C_INITIALIZE_ARGS args;

    proxy_path = hsmc_test_env("HSMC_TEST_FAULT_MODULE");
    setenv("HSMC_FAULT_MODULE", hsmc_test_env("HSMC_TEST_MODULE"), 1);
    if (hsmc_fault_api_open(proxy_path, &api) != 0) {
        fprintf(stderr, "cannot load the fault proxy %s: %s\n", proxy_path, dlerror());
        return 2;
    }
    if (!sym(api.handle, "C_GetFunctionList", &gfl) || gfl(&fl) != CKR_OK || fl == NULL) {
        fprintf(stderr, "the fault proxy gives no function list\n");
        return 2;
    }
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    if (fl->C_Initialize(&args) != CKR_OK || !find_slot(fl, "test", &slot)) {
        fprintf(stderr, "no token \"test\" through the proxy\n");
        return 2;
    }

    RUN(test_list_wrapped);
    RUN(test_entry_points);
    RUN(test_initialize_passthrough);
    RUN(test_fault_once);
    RUN(test_fault_skip_count);
    RUN(test_login_fault);
    RUN(test_token_flags);
    RUN(test_close_sessions_on);
    RUN(test_env_form);

    api.clear();
    if (fl->C_Finalize(NULL) != CKR_OK) {
        fprintf(stderr, "C_Finalize through the proxy failed\n");
        return 1;
    }
    return TEST_END();
}
