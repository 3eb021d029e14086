/*
 * Minimal test harness for hsmc tests.
 *   CHECK(cond)            records a failure (with file:line) and continues
 *   CHECK_ERR(expr, err)   expr must return the hsmc_err_t err
 *   REQUIRE(cond)          like CHECK but ends the test function
 *   RUN(fn)                runs `static void fn(void)` and names it
 *   TEST_END()             prints "N passed, N failed" and returns the exit code
 * Helpers read the environment prepared by test/with-token.sh.
 */
#ifndef HSMC_TEST_H
#define HSMC_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsmc/hsmc.h"

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

#endif /* HSMC_TEST_H */
