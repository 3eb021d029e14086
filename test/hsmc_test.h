/*
 * Minimal test harness for hsmc tests.
 *   CHECK(cond)            records a failure (with file:line) and continues
 *   CHECK_ERR(expr, err)   expr must return the hsmc_err_t err
 *   REQUIRE(cond)          like CHECK but ends the test function
 *   RUN(fn)                runs `static void fn(void)` and names it
 *   TEST_END()             prints "N passed, N failed" and returns the exit code
 * Helpers read the environment prepared by test/with-token.sh. The
 * hsmc_test_* functions declared at the end live in hsmc_test_util.c, which
 * test/CMakeLists.txt links into the integration tests only.
 */
#ifndef HSMC_TEST_H
#define HSMC_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsmc/hsmc.h"

/* hsmc_test_util.c wants only the helpers, not the harness state. */
#if !defined(HSMC_TEST_HELPERS_ONLY)
static int hsmc_test_passed;
static int hsmc_test_failed;
static int hsmc_test_cur_failed;
static const char *hsmc_test_name = "";

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "FAIL %s (%s:%d): %s\n", hsmc_test_name, __FILE__,        \
                    __LINE__, #cond);                                                 \
            hsmc_test_cur_failed = 1;                                                 \
        }                                                                             \
    } while (0)

#define REQUIRE(cond)                                                                 \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "FAIL %s (%s:%d): %s\n", hsmc_test_name, __FILE__,        \
                    __LINE__, #cond);                                                 \
            hsmc_test_cur_failed = 1;                                                 \
            return;                                                                   \
        }                                                                             \
    } while (0)

#define CHECK_ERR(expr, want)                                                         \
    do {                                                                              \
        hsmc_err_t got_ = (expr);                                                     \
        if (got_ != (want)) {                                                         \
            fprintf(stderr, "FAIL %s (%s:%d): %s returned %s, want %s\n",            \
                    hsmc_test_name, __FILE__, __LINE__, #expr, hsmc_err_name(got_),  \
                    hsmc_err_name(want));                                             \
            hsmc_test_cur_failed = 1;                                                 \
        }                                                                             \
    } while (0)

#define RUN(fn)                                                                       \
    do {                                                                              \
        hsmc_test_name = #fn;                                                         \
        hsmc_test_cur_failed = 0;                                                     \
        fn();                                                                         \
        if (hsmc_test_cur_failed) {                                                   \
            hsmc_test_failed++;                                                       \
        } else {                                                                      \
            hsmc_test_passed++;                                                       \
            fprintf(stderr, "ok   %s\n", #fn);                                        \
        }                                                                             \
    } while (0)

#define TEST_END()                                                                    \
    (printf("%d passed, %d failed\n", hsmc_test_passed, hsmc_test_failed),            \
     hsmc_test_failed ? 1 : 0)
#endif /* HSMC_TEST_HELPERS_ONLY */

/* Environment from with-token.sh; exits with a message when missing. */
static inline const char *hsmc_test_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        fprintf(stderr, "test environment variable %s is not set (run via test/with-token.sh)\n",
                name);
        exit(2);
    }
    return v;
}

/* A cfg for the SoftHSM2 token `label`, PIN from the test PIN file. */
static inline void hsmc_test_cfg(hsmc_cfg_t *cfg, const char *label)
{
    hsmc_cfg_init(cfg);
    cfg->module_path = hsmc_test_env("HSMC_TEST_MODULE");
    cfg->token.label = label;
    cfg->pin.kind = HSMC_PIN_FILE;
    cfg->pin.arg = hsmc_test_env("HSMC_TEST_PIN_FILE");
}

/* ---- shared helpers (hsmc_test_util.c, integration tests) -------------------- */

#if defined(__GNUC__)
#define HSMC_TEST_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define HSMC_TEST_PRINTF(f, a)
#endif

struct hsmc_fault_api; /* fault/hsmc_fault.h */

/* HSMC_TEST_DIR/name, in one of 16 rotating static buffers. */
const char *hsmc_test_path(const char *name);

/* Run a shell command, its output into HSMC_TEST_DIR/cmd.log, which is
 * shown on failure. @return 1 when it exited 0, else 0. */
int hsmc_test_sh(const char *fmt, ...) HSMC_TEST_PRINTF(1, 2);

/* Run a shell command, output where it goes. @return its exit status, -1
 * when it did not exit. */
int hsmc_test_system(const char *fmt, ...) HSMC_TEST_PRINTF(1, 2);

/* Run cmd; its first output line, newline removed, into line.
 * @return 0 when it exited 0 and the line does not start with "FAIL", else -1. */
int hsmc_test_cmd_line(const char *cmd, char *line, size_t cap);

/* 1 when the file (its first 64 KiB) contains text. */
int hsmc_test_file_has(const char *path, const char *text);

/* 1 when the output of the last hsmc_test_sh command contains text. */
int hsmc_test_log_has(const char *text);

/* The file's lines on stderr, indented (a missing file shows nothing). */
void hsmc_test_show_file(const char *path);

/* Write len bytes to path. @return 1 on success, 0 on any failure. */
int hsmc_test_write_file(const char *path, const void *data, size_t len);

/* Write len bytes to HSMC_TEST_DIR/name; exits the test on failure. */
void hsmc_test_write_bin(const char *name, const void *data, size_t len);

/* Up to cap bytes of the file into buf. @return bytes read, 0 when it is missing. */
size_t hsmc_test_read_file(const char *path, uint8_t *buf, size_t cap);

/* Lower-case hex of b in a malloc'ed string ("-" when n is 0); the caller
 * frees it. */
char *hsmc_test_hexs(const uint8_t *b, size_t n);

/* Hex pairs of s (up to a newline or the end) into out. @return bytes written. */
size_t hsmc_test_unhex(const char *s, uint8_t *out, size_t cap);

/* n bytes of a pattern that depends on seed and on the position. */
void hsmc_test_fill(uint8_t *b, size_t n, unsigned seed);

/* hsmc_open of the SoftHSM2 token `label` through `module` (NULL: the
 * HSMC_TEST_MODULE); exits the test with a message when it fails. */
void hsmc_test_open(hsmc_t *h, const char *label, const char *module);

/* A key spec with this alg and usage, everything else zero. */
hsmc_key_spec_t hsmc_test_spec(hsmc_key_alg_t alg, unsigned usage);

/* hsmc_key_generate with this alg and usage; a failure is printed (but an
 * Ed25519 key the token does not support). @return its result. */
hsmc_err_t hsmc_test_gen(hsmc_t *h, const char *label, hsmc_key_alg_t alg, unsigned usage,
                         hsmc_key_t *key);

/* A token object labelled `label`, made with raw PKCS#11: a CKO_DATA
 * object, or with an id (which data objects cannot have) a generic secret
 * key. @return the C_CreateObject result. */
CK_RV hsmc_test_make_data_object(hsmc_t *h, const char *label, const uint8_t *id,
                                 size_t id_len);

/* The fault proxy named by HSMC_TEST_FAULT_MODULE with its control API
 * loaded into api. @return its path, NULL when there is none or it does
 * not load. */
const char *hsmc_test_fault_load(struct hsmc_fault_api *api);

#endif /* HSMC_TEST_H */
