/*
 * The hsmc context against real SoftHSM2 tokens ("test", "test2" from
 * with-token.sh): module loading, token selection, login rules, module
 * sharing, threads, fork, recovery and object lookup. Faults are injected
 * by the test proxy (test/fault), which forwards to the real token.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hsmc_test.h"
#include "fault/hsmc_fault.h"

/* ---- helpers ------------------------------------------------------------ */

/* Write `content` to a fresh file in the test dir; returns its path. */
static const char *write_file(const char *name, const char *content)
{
    hsmc_test_write_bin(name, content, strlen(content));
    return hsmc_test_path(name);
}

/* Fault proxy control, reached through the handle hsmc's dlopen shares. */
static hsmc_fault_api_t fault;

static void fault_cfg(hsmc_cfg_t *cfg, const char *label)
{
    hsmc_test_cfg(cfg, label);
    cfg->module_path = hsmc_test_env("HSMC_TEST_FAULT_MODULE");
    fault.clear();
    fault.reset_counts();
}

/* The raw module, for doing things behind hsmc's back. */
static CK_FUNCTION_LIST_PTR raw_module(void **lib)
{
    CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
    CK_FUNCTION_LIST_PTR fl = NULL;
    *lib = dlopen(hsmc_test_env("HSMC_TEST_MODULE"), RTLD_NOW | RTLD_LOCAL);
    if (*lib == NULL)
        return NULL;
    *(void **)&get = dlsym(*lib, "C_GetFunctionList");
    if (get == NULL || get(&fl) != CKR_OK)
        return NULL;
    return fl;
}

/* ---- module loading ------------------------------------------------------ */

static void test_open_close(void)
{
    hsmc_cfg_t cfg;
    hsmc_t h;
    CK_SLOT_ID slot;
    uint8_t rnd[32];

    hsmc_test_cfg(&cfg, "test");
    hsmc_init(&h);
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_OK);
    CHECK_ERR(hsmc_slot(&h, &slot), HSMC_OK);
    CHECK(hsmc_functions(&h) != NULL);
    CHECK(hsmc_owns_module(&h) == 1);
    CHECK_ERR(hsmc_random(&h, rnd, sizeof rnd), HSMC_OK);
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_STATE);
    hsmc_close(&h);
    CHECK(hsmc_functions(&h) == NULL);
    hsmc_close(&h); /* twice is fine */
    hsmc_close(NULL);
}

static void test_bad_modules(void)
{
    hsmc_cfg_t cfg;
    hsmc_t h;
    const char *text = write_file("not-a-module.so", "this is not a shared object\n");

    hsmc_test_cfg(&cfg, "test");
    hsmc_init(&h);
    cfg.module_path = "/nonexistent/libpkcs11.so";
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_MODULE_LOAD);
    CHECK(strstr(hsmc_detail(&h), "nonexistent") != NULL);
    cfg.module_path = text;
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_MODULE_LOAD);
    /* A real shared library that is not a PKCS#11 module. */
    cfg.module_path = "libpthread.so.0";
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_MODULE_INVALID);
    CHECK(strstr(hsmc_detail(&h), "C_GetFunctionList") != NULL);
    cfg.module_path = NULL;
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_ARG);
    CHECK(hsmc_functions(&h) == NULL);
}

static void test_token_selection(void)
{
    hsmc_cfg_t cfg;
    hsmc_t h;
    CK_SLOT_ID slots[HSMC_MAX_SLOTS];
    size_t n = 0;
    char cmd[1024];

    hsmc_init(&h);
    hsmc_test_cfg(&cfg, "no-such-token");
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_TOKEN_NOT_FOUND);
    CHECK(strstr(hsmc_detail(&h), "no-such-token") != NULL);
    /* Two tokens present and no selection: ambiguous, never "the first". */
    hsmc_test_cfg(&cfg, NULL);
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_TOKEN_AMBIGUOUS);
    /* Two tokens with one label. */
    snprintf(cmd, sizeof cmd,
             "softhsm2-util --init-token --free --label dup --pin 1234 --so-pin 12345678 >/dev/null"
             " && softhsm2-util --init-token --free --label dup --pin 1234 --so-pin 12345678 "
             ">/dev/null");
    REQUIRE(system(cmd) == 0);
    hsmc_test_cfg(&cfg, "dup");
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_TOKEN_AMBIGUOUS);
    CHECK(strstr(hsmc_detail(&h), "2 tokens") != NULL);
    CHECK(strstr(hsmc_detail(&h), "serial") != NULL);
    /* Module only: list the slots. */
    hsmc_cfg_init(&cfg);
    cfg.module_path = hsmc_test_env("HSMC_TEST_MODULE");
    cfg.flags = HSMC_CFG_NO_TOKEN;
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_OK);
    CHECK_ERR(hsmc_slot_list(&h, 1, slots, HSMC_MAX_SLOTS, &n), HSMC_OK);
    CHECK(n >= 4); /* test, test2, dup, dup (+ SoftHSM2's free slot) */
    {
        size_t again = 0;
        CHECK_ERR(hsmc_slot_list(&h, 1, NULL, 0, &again), HSMC_OK);
        CHECK(again == n);
    }
    CHECK_ERR(hsmc_slot_list(&h, 1, slots, 2, &n), HSMC_ERR_BUFFER);
    {
        hsmc_sess_t s;
        memset(&s, 0, sizeof s);
        CHECK_ERR(hsmc_session_begin(&h, &s), HSMC_ERR_STATE);
    }
    hsmc_close(&h);
    /* Select by serial (read from the token itself). */
    {
        CK_TOKEN_INFO ti;
        char serial[17];
        size_t len;
        hsmc_test_cfg(&cfg, "test2");
        REQUIRE(hsmc_open(&h, &cfg) == HSMC_OK);
        REQUIRE(hsmc_slot(&h, &slots[0]) == HSMC_OK);
        REQUIRE(hsmc_token_info(&h, slots[0], &ti) == HSMC_OK);
        hsmc_close(&h);
        len = sizeof ti.serialNumber;
        while (len > 0 && ti.serialNumber[len - 1] == ' ')
            len--;
        memcpy(serial, ti.serialNumber, len);
        serial[len] = '\0';
        hsmc_test_cfg(&cfg, NULL);
        cfg.token.serial = serial;
        CHECK_ERR(hsmc_open(&h, &cfg), HSMC_OK);
        hsmc_close(&h);
    }
    /* A label longer than PKCS#11 allows cannot match: argument error. */
    hsmc_test_cfg(&cfg, "a-label-that-is-longer-than-thirty-two-bytes");
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_ARG);
}

static void test_open_from_uri(void)
{
    hsmc_uri_t uri;
    hsmc_cfg_t cfg;
    hsmc_t h;
    char text[600];

    snprintf(text, sizeof text, "pkcs11:token=test2?module-path=%s&pin-source=file:%s",
             hsmc_test_env("HSMC_TEST_MODULE"), hsmc_test_env("HSMC_TEST_PIN_FILE"));
    REQUIRE(hsmc_uri_parse(&uri, text, strlen(text)) == HSMC_OK);
    hsmc_cfg_init(&cfg);
    REQUIRE(hsmc_cfg_from_uri(&cfg, &uri) == HSMC_OK);
    hsmc_init(&h);
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_OK);
    hsmc_close(&h);
}

/* ---- login rules ---------------------------------------------------------- */

static void test_wrong_pin_tried_once(void)
{
    hsmc_cfg_t cfg;
    hsmc_t h;
    CK_TOKEN_INFO ti;
    CK_SLOT_ID slot;

    fault_cfg(&cfg, "test");
    cfg.pin.arg = write_file("wrong-pin", "9999\n");
    hsmc_init(&h);
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_PIN_INCORRECT);
    CHECK(hsmc_last_rv(&h) == CKR_PIN_INCORRECT);
    CHECK(strstr(hsmc_detail(&h), "CKR_PIN_INCORRECT") != NULL);
    CHECK(strstr(hsmc_detail(&h), "9999") == NULL);
    CHECK(fault.calls("C_Login") == 1);
    /* Nothing was left open, and the right PIN works afterwards. */
    CHECK(hsmc_functions(&h) == NULL);
    fault.reset_counts();
    fault_cfg(&cfg, "test");
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_OK);
    CHECK(fault.calls("C_Login") == 1);
    REQUIRE(hsmc_slot(&h, &slot) == HSMC_OK);
    REQUIRE(hsmc_token_info(&h, slot, &ti) == HSMC_OK);
    CHECK(!(ti.flags & (CKF_USER_PIN_LOCKED | CKF_USER_PIN_FINAL_TRY)));
    hsmc_close(&h);
}

static void test_pin_sources(void)
{
    hsmc_cfg_t cfg;
    hsmc_t h;
    int fds[2];

    hsmc_init(&h);
    /* Empty file: a clear error and no login attempt. */
    fault_cfg(&cfg, "test");
    cfg.pin.arg = write_file("empty-pin", "");
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_PIN_SOURCE);
    CHECK(strstr(hsmc_detail(&h), "empty") != NULL);
    CHECK(fault.calls("C_Login") == 0);
    fault_cfg(&cfg, "test");
    cfg.pin.arg = "/nonexistent/pin";
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_PIN_SOURCE);
    CHECK(fault.calls("C_Login") == 0);
    /* Environment variable. */
    setenv("HSMC_TEST_PIN_VAR", "1234", 1);
    hsmc_test_cfg(&cfg, "test");
    cfg.pin.kind = HSMC_PIN_ENV;
    cfg.pin.arg = "HSMC_TEST_PIN_VAR";
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_OK);
    hsmc_close(&h);
    cfg.pin.arg = "HSMC_TEST_UNSET_VAR";
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_PIN_SOURCE);
    CHECK(strstr(hsmc_detail(&h), "HSMC_TEST_UNSET_VAR") != NULL);
    /* File descriptor (read once, kept for re-login). */
    REQUIRE(pipe(fds) == 0);
    REQUIRE(write(fds[1], "1234\n", 5) == 5);
    close(fds[1]);
    hsmc_test_cfg(&cfg, "test");
    cfg.pin.kind = HSMC_PIN_FD;
    cfg.pin.fd = fds[0];
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_OK);
    hsmc_close(&h);
    close(fds[0]);
    /* Value in memory. */
    hsmc_test_cfg(&cfg, "test");
    cfg.pin.kind = HSMC_PIN_VALUE;
    cfg.pin.value = "1234";
    cfg.pin.value_len = 4;
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_OK);
    hsmc_close(&h);
    cfg.pin.value_len = 0;
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_PIN_SOURCE);
    /* No PIN source where the token needs a login: open works (no login),
     * the first private operation says what is missing. */
    hsmc_test_cfg(&cfg, "test");
    cfg.pin.kind = HSMC_PIN_NONE;
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_OK);
    hsmc_close(&h);
}

static hsmc_err_t pin_cb(void *user, char *buf, size_t cap, size_t *len)
{
    const char *pin = (const char *)user;
    if (strlen(pin) > cap)
        return HSMC_ERR_PIN_SOURCE;
    memcpy(buf, pin, strlen(pin));
    *len = strlen(pin);
    return HSMC_OK;
}

static void test_pin_callback(void)
{
    hsmc_cfg_t cfg;
    hsmc_t h;
    hsmc_init(&h);
    hsmc_test_cfg(&cfg, "test");
    cfg.pin.kind = HSMC_PIN_CALLBACK;
    cfg.pin.cb = pin_cb;
    cfg.pin.cb_user = (void *)"1234";
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_OK);
    hsmc_close(&h);
    cfg.pin.cb = NULL;
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_ARG);
}

static void test_login_refused_by_flags(void)
{
    hsmc_cfg_t cfg;
    hsmc_t h;
    static const struct {
        CK_FLAGS flag;
        hsmc_err_t err;
    } cases[] = {
        {CKF_USER_PIN_FINAL_TRY, HSMC_ERR_PIN_FINAL_TRY},
        {CKF_USER_PIN_LOCKED, HSMC_ERR_PIN_LOCKED},
        {CKF_USER_PIN_TO_BE_CHANGED, HSMC_ERR_PIN_EXPIRED},
    };
    size_t i;

    hsmc_init(&h);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fault_cfg(&cfg, "test");
        fault.token_flags(cases[i].flag, 0);
        CHECK_ERR(hsmc_open(&h, &cfg), cases[i].err);
        CHECK(fault.calls("C_Login") == 0); /* never even tried */
        CHECK(hsmc_functions(&h) == NULL);
    }
    fault.token_flags(0, 0);
    fault.clear();
}

/* ---- module sharing ------------------------------------------------------- */

static void test_adopt_initialized_module(void)
{
    void *lib;
    CK_FUNCTION_LIST_PTR fl = raw_module(&lib);
    CK_INFO info;
    hsmc_cfg_t cfg;
    hsmc_t h;

    REQUIRE(fl != NULL);
    REQUIRE(fl->C_Initialize(NULL) == CKR_OK); /* another user came first */
    hsmc_test_cfg(&cfg, "test");
    hsmc_init(&h);
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_OK);
    CHECK(hsmc_owns_module(&h) == 0);
    hsmc_close(&h);
    /* hsmc did not finalise it: the other user still works. */
    CHECK(fl->C_GetInfo(&info) == CKR_OK);
    CHECK(fl->C_Finalize(NULL) == CKR_OK);
    dlclose(lib);
}

static void test_two_contexts(void)
{
    void *lib;
    CK_FUNCTION_LIST_PTR fl = raw_module(&lib);
    CK_INFO info;
    hsmc_cfg_t cfg;
    hsmc_t a, b;
    uint8_t rnd[8];

    REQUIRE(fl != NULL);
    hsmc_init(&a);
    hsmc_init(&b);
    hsmc_test_cfg(&cfg, "test");
    REQUIRE(hsmc_open(&a, &cfg) == HSMC_OK);
    hsmc_test_cfg(&cfg, "test2");
    REQUIRE(hsmc_open(&b, &cfg) == HSMC_OK);
    CHECK(hsmc_owns_module(&a) == 1); /* one registry entry, initialised by a */
    hsmc_close(&a);
    CHECK_ERR(hsmc_random(&b, rnd, sizeof rnd), HSMC_OK); /* b unaffected */
    CHECK(fl->C_GetInfo(&info) == CKR_OK);
    hsmc_close(&b);
    /* The last user closed: the module hsmc initialised is finalised. */
    CHECK(fl->C_GetInfo(&info) == CKR_CRYPTOKI_NOT_INITIALIZED);
    dlclose(lib);
}

/* ---- threads and fork ----------------------------------------------------- */

#define THREADS 8
#define THREAD_ITERS 150

static void *thread_main(void *arg)
{
    hsmc_t *h = (hsmc_t *)arg;
    hsmc_obj_query_t q;
    hsmc_obj_t obj;
    uint8_t rnd[16];
    int i;
    long bad = 0;

    memset(&q, 0, sizeof q);
    q.label = "shared-object";
    for (i = 0; i < THREAD_ITERS; i++) {
        if (hsmc_random(h, rnd, sizeof rnd) != HSMC_OK)
            bad++;
        if (hsmc_find(h, &q, &obj) != HSMC_OK)
            bad++;
    }
    return (void *)bad;
}

static void test_threads(void)
{
    pthread_t t[THREADS];
    hsmc_cfg_t cfg;
    hsmc_t h;
    void *ret;
    long bad = 0;
    int i;

    hsmc_test_cfg(&cfg, "test2");
    hsmc_init(&h);
    REQUIRE(hsmc_open(&h, &cfg) == HSMC_OK);
    REQUIRE(hsmc_test_make_data_object(&h, "shared-object", NULL, 0) == CKR_OK);
    for (i = 0; i < THREADS; i++)
        REQUIRE(pthread_create(&t[i], NULL, thread_main, &h) == 0);
    for (i = 0; i < THREADS; i++) {
        pthread_join(t[i], &ret);
        bad += (long)ret;
    }
    CHECK(bad == 0);
    hsmc_close(&h);
}

static void test_fork(void)
{
    hsmc_cfg_t cfg;
    hsmc_t h;
    hsmc_obj_query_t q;
    hsmc_obj_t obj;
    uint8_t rnd[16];
    pid_t pid;
    int status = -1;

    hsmc_test_cfg(&cfg, "test");
    hsmc_init(&h);
    REQUIRE(hsmc_open(&h, &cfg) == HSMC_OK);
    REQUIRE(hsmc_test_make_data_object(&h, "fork-object", NULL, 0) == CKR_OK);
    memset(&q, 0, sizeof q);
    q.label = "fork-object";
    fflush(NULL);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        /* The child keeps using the parent's context. */
        int ok = hsmc_random(&h, rnd, sizeof rnd) == HSMC_OK &&
                 hsmc_find(&h, &q, &obj) == HSMC_OK &&
                 hsmc_test_make_data_object(&h, "child-object", NULL, 0) == CKR_OK;
        if (!ok)
            fprintf(stderr, "child: %s: %s\n", hsmc_err_name(hsmc_last_err(&h)), hsmc_detail(&h));
        hsmc_close(&h);
        _exit(ok ? 0 : 1);
    }
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The parent still works, and sees what the child stored. */
    CHECK_ERR(hsmc_random(&h, rnd, sizeof rnd), HSMC_OK);
    q.label = "child-object";
    CHECK_ERR(hsmc_find(&h, &q, &obj), HSMC_OK);
    hsmc_close(&h);
}

/* Releases the session in `arg` after ~100 ms. */
static void *release_later(void *arg)
{
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    (void)hsmc_session_end((hsmc_sess_t *)arg, CKR_OK, "test");
    return NULL;
}

static void test_pool_exhausted(void)
{
    hsmc_sess_t held[HSMC_MAX_SESSIONS], extra;
    hsmc_cfg_t cfg;
    hsmc_t h;
    pthread_t t;
    int i;

    hsmc_test_cfg(&cfg, "test");
    hsmc_init(&h);
    REQUIRE(hsmc_open(&h, &cfg) == HSMC_OK);
    memset(held, 0, sizeof held);
    for (i = 0; i < HSMC_MAX_SESSIONS; i++)
        REQUIRE(hsmc_session_begin(&h, &held[i]) == HSMC_OK);
    /* A waiter gets the first session given back. */
    memset(&extra, 0, sizeof extra);
    REQUIRE(pthread_create(&t, NULL, release_later, &held[0]) == 0);
    CHECK_ERR(hsmc_session_begin(&h, &extra), HSMC_OK);
    pthread_join(t, NULL);
    /* Nobody gives one back: HSMC_ERR_BUSY after HSMC_SESSION_WAIT_MS. */
    memset(&held[0], 0, sizeof held[0]);
    CHECK_ERR(hsmc_session_begin(&h, &held[0]), HSMC_ERR_BUSY);
    CHECK(strstr(hsmc_detail(&h), "HSMC_MAX_SESSIONS") != NULL);
    (void)hsmc_session_end(&extra, CKR_OK, "test");
    for (i = 1; i < HSMC_MAX_SESSIONS; i++)
        (void)hsmc_session_end(&held[i], CKR_OK, "test");
    hsmc_close(&h);
}

/* ---- recovery --------------------------------------------------------------- */

static void test_recover_closed_sessions(void)
{
    hsmc_cfg_t cfg;
    hsmc_t h;
    CK_SLOT_ID slot;
    uint8_t rnd[16];

    hsmc_test_cfg(&cfg, "test");
    hsmc_init(&h);
    REQUIRE(hsmc_open(&h, &cfg) == HSMC_OK);
    REQUIRE(hsmc_slot(&h, &slot) == HSMC_OK);
    /* Someone else in the process closes every session of the token. */
    REQUIRE(hsmc_functions(&h)->C_CloseAllSessions(slot) == CKR_OK);
    CHECK_ERR(hsmc_random(&h, rnd, sizeof rnd), HSMC_OK);
    CHECK(hsmc_recoveries(&h) == 1);
    hsmc_close(&h);
}

static void test_recover_injected(void)
{
    hsmc_cfg_t cfg;
    hsmc_t h;
    uint8_t rnd[16];
    hsmc_obj_query_t q;
    hsmc_obj_t obj;

    fault_cfg(&cfg, "test");
    hsmc_init(&h);
    REQUIRE(hsmc_open(&h, &cfg) == HSMC_OK);
    REQUIRE(hsmc_test_make_data_object(&h, "recover-object", NULL, 0) == CKR_OK);
    memset(&q, 0, sizeof q);
    q.label = "recover-object";
    REQUIRE(hsmc_find(&h, &q, &obj) == HSMC_OK);

    /* Device removed once: reopen, log in again, carry on. */
    fault.reset_counts();
    fault.set("C_GenerateRandom", CKR_DEVICE_REMOVED, 0, 1);
    CHECK_ERR(hsmc_random(&h, rnd, sizeof rnd), HSMC_OK);
    CHECK(hsmc_recoveries(&h) == 1);
    CHECK(fault.calls("C_Login") == 1);
    /* The object handle belongs to the old generation: refresh finds it again. */
    CHECK(obj.generation != h.generation);
    CHECK_ERR(hsmc_obj_refresh(&h, &obj), HSMC_OK);
    CHECK(obj.generation == h.generation);

    /* Logged out behind our back. */
    fault.set("C_GenerateRandom", CKR_USER_NOT_LOGGED_IN, 0, 1);
    CHECK_ERR(hsmc_random(&h, rnd, sizeof rnd), HSMC_OK);
    CHECK(hsmc_recoveries(&h) == 2);

    /* Lost for good: bounded retries, then a clear error. */
    fault.reset_counts();
    fault.set("C_GenerateRandom", CKR_SESSION_HANDLE_INVALID, 0, 0);
    CHECK_ERR(hsmc_random(&h, rnd, sizeof rnd), HSMC_ERR_RECOVERY);
    CHECK(fault.calls("C_GenerateRandom") == 1u + HSMC_RECOVER_RETRIES);
    CHECK(strstr(hsmc_detail(&h), "CKR_SESSION_HANDLE_INVALID") != NULL);
    fault.clear();
    CHECK_ERR(hsmc_random(&h, rnd, sizeof rnd), HSMC_OK);

    /* Other errors are reported, not retried. */
    fault.reset_counts();
    fault.set("C_GenerateRandom", CKR_DEVICE_ERROR, 0, 1);
    CHECK_ERR(hsmc_random(&h, rnd, sizeof rnd), HSMC_ERR_TOKEN);
    CHECK(hsmc_last_rv(&h) == CKR_DEVICE_ERROR);
    CHECK(fault.calls("C_GenerateRandom") == 1);
    fault.clear();
    hsmc_close(&h);
}

static void test_module_via_get_interface(void)
{
    hsmc_cfg_t cfg;
    hsmc_t h;
    fault_cfg(&cfg, "test");
    hsmc_init(&h);
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_OK);
    hsmc_close(&h);
    CHECK(fault.calls("C_GetInterface") >= 1);
}

/* ---- objects -------------------------------------------------------------- */

static int count_cb(void *user, const hsmc_obj_t *obj)
{
    (void)obj;
    (*(int *)user)++;
    return 0;
}

static int stop_cb(void *user, const hsmc_obj_t *obj)
{
    (void)obj;
    return ++(*(int *)user) >= 3;
}

static void test_objects(void)
{
    static const uint8_t id1[] = {0x01, 0x02}, id2[] = {0xa0};
    hsmc_cfg_t cfg;
    hsmc_t h;
    hsmc_obj_query_t q;
    hsmc_obj_t obj;
    hsmc_uri_t uri;
    char label[32];
    size_t count = 0;
    int i, seen = 0, base = 0;

    hsmc_test_cfg(&cfg, "test2");
    hsmc_init(&h);
    REQUIRE(hsmc_open(&h, &cfg) == HSMC_OK);
    REQUIRE(hsmc_test_make_data_object(&h, "twin", id1, sizeof id1) == CKR_OK);
    REQUIRE(hsmc_test_make_data_object(&h, "twin", id2, sizeof id2) == CKR_OK);
    memset(&q, 0, sizeof q);
    q.label = "twin";
    CHECK_ERR(hsmc_find(&h, &q, &obj), HSMC_ERR_OBJECT_AMBIGUOUS);
    CHECK(strstr(hsmc_detail(&h), "2 objects") != NULL);
    q.id = id2;
    q.id_len = sizeof id2;
    CHECK_ERR(hsmc_find(&h, &q, &obj), HSMC_OK);
    CHECK(obj.cls == CKO_SECRET_KEY && obj.key_type == CKK_GENERIC_SECRET && obj.id_len == 1 && obj.id[0] == 0xa0);
    CHECK(strcmp(obj.label, "twin") == 0 && obj.label_len == 4);
    CHECK(obj.usage & HSMC_ATTR_TOKEN);
    q.label = "missing";
    CHECK_ERR(hsmc_find(&h, &q, &obj), HSMC_ERR_OBJECT_NOT_FOUND);
    CHECK(strstr(hsmc_detail(&h), "missing") != NULL);
    /* By URI: object + id + type. */
    REQUIRE(hsmc_uri_parse(&uri, "pkcs11:object=twin;id=%01%02;type=secret-key", 44) == HSMC_OK);
    REQUIRE(hsmc_obj_query_from_uri(&q, &uri) == HSMC_OK);
    CHECK_ERR(hsmc_find(&h, &q, &obj), HSMC_OK);
    CHECK(obj.id_len == 2 && obj.id[1] == 0x02);
    /* By class: no private keys here. */
    memset(&q, 0, sizeof q);
    q.has_class = 1;
    q.cls = CKO_PRIVATE_KEY;
    CHECK_ERR(hsmc_find(&h, &q, &obj), HSMC_ERR_OBJECT_NOT_FOUND);
    /* Listing walks past HSMC_MAX_OBJECTS. */
    CHECK_ERR(hsmc_list(&h, NULL, count_cb, &base, NULL), HSMC_OK);
    for (i = 0; i < 2 * HSMC_MAX_OBJECTS + 3; i++) {
        snprintf(label, sizeof label, "bulk-%02d", i);
        REQUIRE(hsmc_test_make_data_object(&h, label, NULL, 0) == CKR_OK);
    }
    CHECK_ERR(hsmc_list(&h, NULL, count_cb, &seen, &count), HSMC_OK);
    CHECK(seen == base + 2 * HSMC_MAX_OBJECTS + 3);
    CHECK(count == (size_t)seen);
    seen = 0;
    CHECK_ERR(hsmc_list(&h, NULL, stop_cb, &seen, &count), HSMC_OK);
    CHECK(seen == 3 && count == 3);
    /* Too-long query values are refused before asking the token. */
    memset(&q, 0, sizeof q);
    q.label = "0123456789012345678901234567890123456789012345678901234567890123456789";
    CHECK_ERR(hsmc_find(&h, &q, &obj), HSMC_ERR_LIMIT);
    hsmc_close(&h);
}

/* ---- argument checks ------------------------------------------------------- */

static void test_arguments(void)
{
    hsmc_cfg_t cfg;
    hsmc_t h;
    hsmc_obj_query_t q;
    hsmc_obj_t obj;
    hsmc_sess_t s;
    CK_SLOT_ID slot;
    CK_INFO info;
    size_t n;
    uint8_t b[4];

    hsmc_init(&h);
    hsmc_cfg_init(&cfg);
    memset(&q, 0, sizeof q);
    CHECK_ERR(hsmc_open(NULL, &cfg), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_open(&h, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_random(NULL, b, 4), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_random(&h, NULL, 4), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_random(&h, b, 4), HSMC_ERR_STATE);
    CHECK_ERR(hsmc_find(NULL, &q, &obj), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_find(&h, NULL, &obj), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_find(&h, &q, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_find(&h, &q, &obj), HSMC_ERR_STATE);
    CHECK_ERR(hsmc_list(&h, &q, NULL, NULL, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_slot(&h, &slot), HSMC_ERR_STATE);
    CHECK_ERR(hsmc_slot(&h, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_module_info(&h, &info), HSMC_ERR_STATE);
    CHECK_ERR(hsmc_module_info(&h, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_slot_list(&h, 1, NULL, 0, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_slot_list(&h, 1, NULL, 0, &n), HSMC_ERR_STATE);
    CHECK_ERR(hsmc_session_begin(NULL, &s), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_session_begin(&h, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_session_end(NULL, CKR_OK, "x"), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_obj_refresh(NULL, &obj), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_last_err(NULL), HSMC_ERR_ARG);
    CHECK(hsmc_detail(NULL) != NULL);
    CHECK(strcmp(hsmc_strerror(HSMC_ERR_PIN_INCORRECT), "PIN incorrect") == 0);
    CHECK(strcmp(hsmc_err_name(HSMC_ERR_TOKEN_AMBIGUOUS), "HSMC_ERR_TOKEN_AMBIGUOUS") == 0);
    CHECK(strcmp(hsmc_strerror((hsmc_err_t)-999), "unknown error") == 0);
    /* A PIN makes no sense without a token. */
    cfg.module_path = hsmc_test_env("HSMC_TEST_MODULE");
    cfg.flags = HSMC_CFG_NO_TOKEN;
    cfg.pin.kind = HSMC_PIN_ENV;
    cfg.pin.arg = "X";
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_CONFIG);
}

int main(void)
{
    if (hsmc_test_fault_load(&fault) == NULL) {
        fprintf(stderr, "fault proxy not available (HSMC_TEST_FAULT_MODULE)\n");
        return 2;
    }
    RUN(test_open_close);
    RUN(test_bad_modules);
    RUN(test_token_selection);
    RUN(test_open_from_uri);
    RUN(test_wrong_pin_tried_once);
    RUN(test_pin_sources);
    RUN(test_pin_callback);
    RUN(test_login_refused_by_flags);
    RUN(test_adopt_initialized_module);
    RUN(test_two_contexts);
    RUN(test_threads);
    RUN(test_fork);
    RUN(test_pool_exhausted);
    RUN(test_recover_closed_sessions);
    RUN(test_recover_injected);
    RUN(test_module_via_get_interface);
    RUN(test_objects);
    RUN(test_arguments);
    return TEST_END();
}
