/*
 * Internals shared by the core sources. Not installed.
 */
#ifndef HSMC_INTERNAL_H
#define HSMC_INTERNAL_H

#include <stdarg.h>
#include <string.h>

#include "hsmc/hsmc.h"
#include "hsmc_port.h"

#if HSMC_ASSERTS
#include <assert.h>
#define HSMC_ASSERT(cond) assert(cond)
#else
#define HSMC_ASSERT(cond) ((void)0)
#endif

/* Logging compiles away below HSMC_LOG_LEVEL; arguments must have no side effects. */
#define HSMC_LOG(h, lvl, ...)                                                         \
    do {                                                                              \
        if ((int)(lvl) <= HSMC_LOG_LEVEL)                                             \
            hsmc__log((h), (lvl), __VA_ARGS__);                                       \
    } while (0)

#if defined(__GNUC__)
#define HSMC_PRINTF(f, a) __attribute__((format(printf, f, a)))
/* Keeps a helper's large locals in its own frame instead of its caller's. */
#define HSMC_NOINLINE __attribute__((noinline))
#else
#define HSMC_PRINTF(f, a)
#define HSMC_NOINLINE
#endif

/** Pass a formatted line to the context's log callback (if any, and level allows). */
void hsmc__log(hsmc_t *h, hsmc_log_level_t lvl, const char *fmt, ...) HSMC_PRINTF(3, 4);

/**
 * Record an error in the context: err, rv and a formatted detail text.
 * Logs it at error level. @return err, so callers can `return hsmc__fail(...)`.
 */
hsmc_err_t hsmc__fail(hsmc_t *h, hsmc_err_t err, CK_RV rv, const char *fmt, ...)
    HSMC_PRINTF(4, 5);

/**
 * Record err whose detail text a callee already wrote into h->detail (a
 * port function given h->detail as its message buffer); saves a buffer.
 */
hsmc_err_t hsmc__fail_detail(hsmc_t *h, hsmc_err_t err);

/** Clear the last error of the context. */
void hsmc__clear_err(hsmc_t *h);

/** Overwrite memory in a way the compiler cannot remove. */
void hsmc__wipe(void *p, size_t n);

/** 1 when rv means the session, login or token was lost (recover and retry). */
int hsmc__rv_is_loss(CK_RV rv);

/** Length of a blank-padded PKCS#11 text field without its trailing blanks. */
size_t hsmc__field_len(const CK_UTF8CHAR *field, size_t size);

/** 1 when a blank-padded field equals the C string s. */
int hsmc__field_eq(const CK_UTF8CHAR *field, size_t size, const char *s);

/** 1 when the context is open (arguments already checked non-NULL). */
#define HSMC_IS_OPEN(h) ((h)->state == 1u)

/* CK_GCM_PARAMS as PKCS#11 2.40 first published it (no ulIvBits); still
 * expected by some tokens. Layout 1 is p11-kit's CK_GCM_PARAMS, layout 2
 * this one (AES-GCM and the probe both try it). */
typedef struct hsmc_gcm_params_v2 {
    CK_BYTE_PTR pIv;
    CK_ULONG ulIvLen;
    CK_BYTE_PTR pAAD;
    CK_ULONG ulAADLen;
    CK_ULONG ulTagBits;
} hsmc_gcm_params_v2_t;

#endif /* HSMC_INTERNAL_H */
