/*
 * hsmc_fault: a PKCS#11 module for tests that forwards every call to a real
 * module and injects faults on request.
 *
 * The real module is named by HSMC_FAULT_MODULE (default
 * /usr/lib/softhsm/libsofthsm2.so) and loaded on the first
 * C_GetFunctionList / C_GetInterface. The proxy exports both entry points,
 * so hsmc's C_GetInterface path is exercised.
 *
 * Control, from a test: the proxy is a shared object that hsmc dlopen()s
 * with RTLD_LOCAL, so its symbols are not global. dlopen() the same path
 * again (the loader returns the same instance) and look the functions up
 * with dlsym(); hsmc_fault_api_open() below does that.
 *
 * Control, from the environment (read once, when the proxy is first used):
 *   HSMC_FAULT="C_Login=CKR_PIN_INCORRECT[:skip[:count]],C_Sign=CKR_DEVICE_REMOVED:0:1"
 *       same as hsmc_fault_set() per entry; the value is a CKR_ name the
 *       proxy knows or a number (0x.. hex or decimal).
 *   HSMC_FAULT_TOKEN_FLAGS="0x..."  flags set in every C_GetTokenInfo result.
 *   HSMC_FAULT_MODULE=path          the real module.
 * A malformed HSMC_FAULT or an unknown function name aborts the process
 * with a message: a test must never run without the fault it asked for.
 *
 * Function names are the PKCS#11 2.40 names ("C_Sign"), plus
 * "C_GetInterface" (for counting and faults on the entry points).
 */
#ifndef HSMC_FAULT_H
#define HSMC_FAULT_H

#include <p11-kit/pkcs11.h>

/**
 * From now on, the `skip` next calls of `fn` are forwarded, then `count`
 * calls (0: every call) return `rv` without reaching the real module.
 * Replaces an earlier fault on the same function.
 */
void hsmc_fault_set(const char *fn, CK_RV rv, unsigned skip, unsigned count);

/** Remove every fault, token-flag mask and pending session close. */
void hsmc_fault_clear(void);

/** Calls of `fn` since load or the last reset (forwarded or faulted). */
unsigned long hsmc_fault_calls(const char *fn);

/** Zero every call counter. */
void hsmc_fault_reset_counts(void);

/** C_GetTokenInfo results get `set` flags set, then `clear` flags cleared. */
void hsmc_fault_token_flags(CK_FLAGS set, CK_FLAGS clear);

/**
 * Once: after `skip` further calls of `fn`, before forwarding the next one,
 * close every session of the real module (C_CloseAllSessions on every
 * slot), as a token reset behind the client's back would.
 */
void hsmc_fault_close_sessions_on(const char *fn, unsigned skip);

/**
 * From now on, every C_GetAttributeValue result that carries boolean
 * attribute `type` (on any object) reports `value` instead of the token's
 * answer, as a token that made a key with unsafe attributes would.
 * Cleared by hsmc_fault_clear(). At most 8 attributes at once.
 */
void hsmc_fault_attr_override(CK_ATTRIBUTE_TYPE type, CK_BBOOL value);

/* ---- Loading the control API from a test ------------------------------ */

typedef void (*hsmc_fault_set_fn)(const char *fn, CK_RV rv, unsigned skip, unsigned count);
typedef void (*hsmc_fault_clear_fn)(void);
typedef unsigned long (*hsmc_fault_calls_fn)(const char *fn);
typedef void (*hsmc_fault_reset_counts_fn)(void);
typedef void (*hsmc_fault_token_flags_fn)(CK_FLAGS set, CK_FLAGS clear);
typedef void (*hsmc_fault_close_sessions_on_fn)(const char *fn, unsigned skip);
typedef void (*hsmc_fault_attr_override_fn)(CK_ATTRIBUTE_TYPE type, CK_BBOOL value);

typedef struct hsmc_fault_api {
    void *handle;
    hsmc_fault_set_fn set;
    hsmc_fault_clear_fn clear;
    hsmc_fault_calls_fn calls;
    hsmc_fault_reset_counts_fn reset_counts;
    hsmc_fault_token_flags_fn token_flags;
    hsmc_fault_close_sessions_on_fn close_sessions_on;
    hsmc_fault_attr_override_fn attr_override;
} hsmc_fault_api_t;

#if !defined(HSMC_FAULT_NO_API_LOADER)
#include <dlfcn.h>
#include <string.h>

/* dlsym into a function pointer without the object-to-function cast ISO C
 * lacks. Returns 0 when the symbol is missing. */
static inline int hsmc_fault_sym_(void *handle, const char *name, void *fn)
{
    void *sym = dlsym(handle, name);
    if (sym == NULL) {
        return 0;
    }
    memcpy(fn, &sym, sizeof sym);
    return 1;
}

/**
 * dlopen() the proxy at `path` (the instance hsmc loaded, if it did; the
 * reference is kept for the life of the test) and fill `api`.
 * @return 0 on success, -1 when the file or a symbol is missing.
 */
static inline int hsmc_fault_api_open(const char *path, hsmc_fault_api_t *api)
{
    memset(api, 0, sizeof *api);
    if (path == NULL || path[0] == '\0') {
        return -1;
    }
    api->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (api->handle == NULL) {
        return -1;
    }
    if (!hsmc_fault_sym_(api->handle, "hsmc_fault_set", &api->set) ||
        !hsmc_fault_sym_(api->handle, "hsmc_fault_clear", &api->clear) ||
        !hsmc_fault_sym_(api->handle, "hsmc_fault_calls", &api->calls) ||
        !hsmc_fault_sym_(api->handle, "hsmc_fault_reset_counts", &api->reset_counts) ||
        !hsmc_fault_sym_(api->handle, "hsmc_fault_token_flags", &api->token_flags) ||
        !hsmc_fault_sym_(api->handle, "hsmc_fault_close_sessions_on",
                         &api->close_sessions_on) ||
        !hsmc_fault_sym_(api->handle, "hsmc_fault_attr_override", &api->attr_override)) {
        return -1;
    }
    return 0;
}
#endif /* HSMC_FAULT_NO_API_LOADER */

#endif /* HSMC_FAULT_H */
