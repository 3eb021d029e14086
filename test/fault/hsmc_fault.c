/*
 * hsmc_fault: a fault-injecting PKCS#11 proxy module for tests.
 * See hsmc_fault.h for what it does and how tests control it.
 *
 * Every one of the 68 PKCS#11 2.40 functions goes through a wrapper that
 * counts the call, may return an injected CK_RV instead of forwarding,
 * and may first close every session of the real module. The wrappers are
 * generated from one table (FAULT_FUNCS) so none can be forgotten.
 * Test code: allocation and stdio are fine here.
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HSMC_FAULT_NO_API_LOADER
#include "hsmc_fault.h"

/* ---- PKCS#11 3.0 entry point (absent from p11-kit 0.24's 2.40 header) --- */

typedef struct fault_interface {
    CK_UTF8CHAR_PTR pInterfaceName;
    CK_VOID_PTR pFunctionList;
    CK_FLAGS flags;
} fault_interface_t;

CK_RV C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version,
                     fault_interface_t **iface, CK_FLAGS flags);

/* ---- The function table ------------------------------------------------- */

/* Parameter shapes shared by many functions: (params) and (arguments). */
#define P_SESS (CK_SESSION_HANDLE s)
#define A_SESS (s)
#define P_MECH_KEY (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
#define A_MECH_KEY (s, mech, key)
#define P_IN_OUT                                                                      \
    (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,           \
     CK_ULONG_PTR out_len)
#define A_IN_OUT (s, in, in_len, out, out_len)
#define P_IN (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len)
#define A_IN (s, in, in_len)
#define P_OUT (CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
#define A_OUT (s, out, out_len)
#define P_OBJ_TMPL                                                                    \
    (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
#define A_OBJ_TMPL (s, obj, tmpl, n)

/*
 * X(name, params, args): a plain forwarding wrapper is generated.
 * S(name): written by hand below (entry point, token-flag masking,
 *          attribute overrides).
 */
#define FAULT_FUNCS(X, S)                                                             \
    X(C_Initialize, (CK_VOID_PTR init_args), (init_args))                             \
    X(C_Finalize, (CK_VOID_PTR reserved), (reserved))                                 \
    X(C_GetInfo, (CK_INFO_PTR info), (info))                                          \
    S(C_GetFunctionList)                                                              \
    X(C_GetSlotList, (CK_BBOOL present, CK_SLOT_ID_PTR slots, CK_ULONG_PTR n),         \
      (present, slots, n))                                                            \
    X(C_GetSlotInfo, (CK_SLOT_ID slot, CK_SLOT_INFO_PTR info), (slot, info))          \
    S(C_GetTokenInfo)                                                                 \
    X(C_GetMechanismList, (CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR m, CK_ULONG_PTR n),  \
      (slot, m, n))                                                                   \
    X(C_GetMechanismInfo, (CK_SLOT_ID slot, CK_MECHANISM_TYPE t, CK_MECHANISM_INFO_PTR i), \
      (slot, t, i))                                                                   \
    X(C_InitToken, (CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len,            \
                    CK_UTF8CHAR_PTR label),                                           \
      (slot, pin, pin_len, label))                                                    \
    X(C_InitPIN, (CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len),         \
      (s, pin, pin_len))                                                              \
    X(C_SetPIN, (CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,       \
                 CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len),                          \
      (s, old_pin, old_len, new_pin, new_len))                                        \
    X(C_OpenSession, (CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app,                \
                      CK_NOTIFY notify, CK_SESSION_HANDLE_PTR s),                     \
      (slot, flags, app, notify, s))                                                  \
    X(C_CloseSession, P_SESS, A_SESS)                                                 \
    X(C_CloseAllSessions, (CK_SLOT_ID slot), (slot))                                  \
    X(C_GetSessionInfo, (CK_SESSION_HANDLE s, CK_SESSION_INFO_PTR info), (s, info))    \
    X(C_GetOperationState, P_OUT, A_OUT)                                              \
    X(C_SetOperationState, (CK_SESSION_HANDLE s, CK_BYTE_PTR st, CK_ULONG st_len,      \
                            CK_OBJECT_HANDLE enc_key, CK_OBJECT_HANDLE auth_key),     \
      (s, st, st_len, enc_key, auth_key))                                             \
    X(C_Login, (CK_SESSION_HANDLE s, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,           \
                CK_ULONG pin_len),                                                    \
      (s, user, pin, pin_len))                                                        \
    X(C_Logout, P_SESS, A_SESS)                                                       \
    X(C_CreateObject, (CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,         \
                       CK_OBJECT_HANDLE_PTR obj),                                     \
      (s, tmpl, n, obj))                                                              \
    X(C_CopyObject, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl, \
                     CK_ULONG n, CK_OBJECT_HANDLE_PTR copy),                          \
      (s, obj, tmpl, n, copy))                                                        \
    X(C_DestroyObject, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj), (s, obj))          \
    X(C_GetObjectSize, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ULONG_PTR size), \
      (s, obj, size))                                                                 \
    S(C_GetAttributeValue)                                                            \
    X(C_SetAttributeValue, P_OBJ_TMPL, A_OBJ_TMPL)                                    \
    X(C_FindObjectsInit, (CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n),     \
      (s, tmpl, n))                                                                   \
    X(C_FindObjects, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR objs, CK_ULONG max,    \
                      CK_ULONG_PTR n),                                                \
      (s, objs, max, n))                                                              \
    X(C_FindObjectsFinal, P_SESS, A_SESS)                                             \
    X(C_EncryptInit, P_MECH_KEY, A_MECH_KEY)                                          \
    X(C_Encrypt, P_IN_OUT, A_IN_OUT)                                                  \
    X(C_EncryptUpdate, P_IN_OUT, A_IN_OUT)                                            \
    X(C_EncryptFinal, P_OUT, A_OUT)                                                   \
    X(C_DecryptInit, P_MECH_KEY, A_MECH_KEY)                                          \
    X(C_Decrypt, P_IN_OUT, A_IN_OUT)                                                  \
    X(C_DecryptUpdate, P_IN_OUT, A_IN_OUT)                                            \
    X(C_DecryptFinal, P_OUT, A_OUT)                                                   \
    X(C_DigestInit, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech), (s, mech))           \
    X(C_Digest, P_IN_OUT, A_IN_OUT)                                                   \
    X(C_DigestUpdate, P_IN, A_IN)                                                     \
    X(C_DigestKey, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key), (s, key))              \
    X(C_DigestFinal, P_OUT, A_OUT)                                                    \
    X(C_SignInit, P_MECH_KEY, A_MECH_KEY)                                             \
    X(C_Sign, P_IN_OUT, A_IN_OUT)                                                     \
    X(C_SignUpdate, P_IN, A_IN)                                                       \
    X(C_SignFinal, P_OUT, A_OUT)                                                      \
    X(C_SignRecoverInit, P_MECH_KEY, A_MECH_KEY)                                      \
    X(C_SignRecover, P_IN_OUT, A_IN_OUT)                                              \
    X(C_VerifyInit, P_MECH_KEY, A_MECH_KEY)                                           \
    X(C_Verify, (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR sig, \
                 CK_ULONG sig_len),                                                   \
      (s, in, in_len, sig, sig_len))                                                  \
    X(C_VerifyUpdate, P_IN, A_IN)                                                     \
    X(C_VerifyFinal, P_IN, A_IN)                                                      \
    X(C_VerifyRecoverInit, P_MECH_KEY, A_MECH_KEY)                                    \
    X(C_VerifyRecover, P_IN_OUT, A_IN_OUT)                                            \
    X(C_DigestEncryptUpdate, P_IN_OUT, A_IN_OUT)                                      \
    X(C_DecryptDigestUpdate, P_IN_OUT, A_IN_OUT)                                      \
    X(C_SignEncryptUpdate, P_IN_OUT, A_IN_OUT)                                        \
    X(C_DecryptVerifyUpdate, P_IN_OUT, A_IN_OUT)                                      \
    X(C_GenerateKey, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR tmpl, \
                      CK_ULONG n, CK_OBJECT_HANDLE_PTR key),                          \
      (s, mech, tmpl, n, key))                                                        \
    X(C_GenerateKeyPair, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech,                  \
                          CK_ATTRIBUTE_PTR pub_tmpl, CK_ULONG pub_n,                  \
                          CK_ATTRIBUTE_PTR priv_tmpl, CK_ULONG priv_n,                \
                          CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv),       \
      (s, mech, pub_tmpl, pub_n, priv_tmpl, priv_n, pub, priv))                       \
    X(C_WrapKey, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE wrapping, \
                  CK_OBJECT_HANDLE key, CK_BYTE_PTR out, CK_ULONG_PTR out_len),        \
      (s, mech, wrapping, key, out, out_len))                                         \
    X(C_UnwrapKey, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech,                        \
                    CK_OBJECT_HANDLE unwrapping, CK_BYTE_PTR in, CK_ULONG in_len,     \
                    CK_ATTRIBUTE_PTR tmpl, CK_ULONG n, CK_OBJECT_HANDLE_PTR key),     \
      (s, mech, unwrapping, in, in_len, tmpl, n, key))                                \
    X(C_DeriveKey, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE base, \
                    CK_ATTRIBUTE_PTR tmpl, CK_ULONG n, CK_OBJECT_HANDLE_PTR key),     \
      (s, mech, base, tmpl, n, key))                                                  \
    X(C_SeedRandom, P_IN, A_IN)                                                       \
    X(C_GenerateRandom, (CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG len),          \
      (s, out, len))                                                                  \
    X(C_GetFunctionStatus, P_SESS, A_SESS)                                            \
    X(C_CancelFunction, P_SESS, A_SESS)                                               \
    X(C_WaitForSlotEvent, (CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved), \
      (flags, slot, reserved))

/* Indexes: the 68 list functions, then the 3.0 entry point. */
#define FAULT_IX_X(name, params, args) FAULT_IX_##name,
#define FAULT_IX_S(name) FAULT_IX_##name,
enum { FAULT_FUNCS(FAULT_IX_X, FAULT_IX_S) FAULT_IX_C_GetInterface, FAULT_IX_COUNT };

#define FAULT_NAME_X(name, params, args) #name,
#define FAULT_NAME_S(name) #name,
static const char *const fault_names[FAULT_IX_COUNT] = {
    FAULT_FUNCS(FAULT_NAME_X, FAULT_NAME_S) "C_GetInterface"};

/* ---- State -------------------------------------------------------------- */

typedef struct fault_rule {
    int active;
    CK_RV rv;
    unsigned skip;  /* calls still to forward before faulting */
    unsigned count; /* faults still to inject; 0: unlimited */
} fault_rule_t;

static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;

static void *real_handle;
static CK_FUNCTION_LIST_PTR real; /* the real module's list; set once */

static fault_rule_t rules[FAULT_IX_COUNT];
static unsigned long calls[FAULT_IX_COUNT];
static CK_FLAGS token_set, token_clear;
static int close_ix = -1;
static unsigned close_skip;

/* Boolean attribute values forced into C_GetAttributeValue results. */
#define FAULT_MAX_OVERRIDES 8
static struct {
    CK_ATTRIBUTE_TYPE type;
    CK_BBOOL value;
} overrides[FAULT_MAX_OVERRIDES];
static size_t n_overrides;

static CK_FUNCTION_LIST proxy_list; /* filled once the real module is loaded */

static void fault_die(const char *what, const char *arg)
{
    fprintf(stderr, "hsmc_fault: %s%s%s\n", what, arg != NULL ? ": " : "",
            arg != NULL ? arg : "");
    abort();
}

static int fault_index(const char *fn)
{
    int i;
    for (i = 0; fn != NULL && i < FAULT_IX_COUNT; i++) {
        if (strcmp(fault_names[i], fn) == 0) {
            return i;
        }
    }
    return -1;
}

/* Close every session the real module has, without counting the calls. */
static void close_all_sessions(void)
{
    CK_ULONG n = 0, i;
    CK_SLOT_ID *slots;
    if (real->C_GetSlotList(CK_FALSE, NULL, &n) != CKR_OK || n == 0) {
        return;
    }
    slots = calloc(n, sizeof *slots);
    if (slots == NULL) {
        return;
    }
    if (real->C_GetSlotList(CK_FALSE, slots, &n) == CKR_OK) {
        for (i = 0; i < n; i++) {
            (void)real->C_CloseAllSessions(slots[i]);
        }
    }
    free(slots);
}

/* Count a call of function `ix`; returns 1 with *rv set when it must fail. */
static int fault_enter(int ix, CK_RV *rv)
{
    int fault = 0, do_close = 0;
    fault_rule_t *r = &rules[ix];

    pthread_mutex_lock(&fault_lock);
    calls[ix]++;
    if (close_ix == ix) {
        if (close_skip > 0) {
            close_skip--;
        } else {
            do_close = 1;
            close_ix = -1;
        }
    }
    if (r->active) {
        if (r->skip > 0) {
            r->skip--;
        } else {
            fault = 1;
            *rv = r->rv;
            if (r->count > 0 && --r->count == 0) {
                r->active = 0;
            }
        }
    }
    pthread_mutex_unlock(&fault_lock);

    if (do_close && real != NULL) {
        close_all_sessions();
    }
    return fault;
}

/* ---- Wrappers ----------------------------------------------------------- */

#define FAULT_WRAP_X(name, params, args)                                              \
    static CK_RV fault_##name params                                                  \
    {                                                                                 \
        CK_RV rv_;                                                                    \
        if (fault_enter(FAULT_IX_##name, &rv_)) {                                     \
            return rv_;                                                               \
        }                                                                             \
        return real->name args;                                                       \
    }
#define FAULT_WRAP_S(name)
FAULT_FUNCS(FAULT_WRAP_X, FAULT_WRAP_S)

static CK_RV fault_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    CK_RV rv;
    if (fault_enter(FAULT_IX_C_GetTokenInfo, &rv)) {
        return rv;
    }
    rv = real->C_GetTokenInfo(slot, info);
    if (rv == CKR_OK && info != NULL) {
        pthread_mutex_lock(&fault_lock);
        info->flags = (info->flags | token_set) & ~token_clear;
        pthread_mutex_unlock(&fault_lock);
    }
    return rv;
}

/* The real result, with overridden boolean attributes rewritten. Only
 * values the token returned (one CK_BBOOL) are touched. */
static CK_RV fault_C_GetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                                       CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
    CK_RV rv;
    CK_ULONG i;
    size_t k;

    if (fault_enter(FAULT_IX_C_GetAttributeValue, &rv)) {
        return rv;
    }
    rv = real->C_GetAttributeValue(s, obj, tmpl, n);
    if (tmpl == NULL) {
        return rv;
    }
    pthread_mutex_lock(&fault_lock);
    for (i = 0; i < n; i++) {
        for (k = 0; k < n_overrides; k++) {
            if (tmpl[i].type == overrides[k].type && tmpl[i].pValue != NULL &&
                tmpl[i].ulValueLen == sizeof(CK_BBOOL)) {
                *(CK_BBOOL *)tmpl[i].pValue = overrides[k].value;
            }
        }
    }
    pthread_mutex_unlock(&fault_lock);
    return rv;
}

/* ---- Loading and the environment ---------------------------------------- */

static const struct {
    const char *name;
    CK_RV rv;
} ckr_names[] = {
    {"CKR_OK", CKR_OK},
    {"CKR_PIN_INCORRECT", CKR_PIN_INCORRECT},
    {"CKR_PIN_LOCKED", CKR_PIN_LOCKED},
    {"CKR_PIN_EXPIRED", CKR_PIN_EXPIRED},
    {"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
    {"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
    {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
    {"CKR_SESSION_CLOSED", CKR_SESSION_CLOSED},
    {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
    {"CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN},
    {"CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED},
    {"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR},
    {"CKR_HOST_MEMORY", CKR_HOST_MEMORY},
    {"CKR_MECHANISM_INVALID", CKR_MECHANISM_INVALID},
    {"CKR_FUNCTION_NOT_SUPPORTED", CKR_FUNCTION_NOT_SUPPORTED},
    {"CKR_ARGUMENTS_BAD", CKR_ARGUMENTS_BAD},
    {"CKR_CRYPTOKI_ALREADY_INITIALIZED", CKR_CRYPTOKI_ALREADY_INITIALIZED},
};

/* Parse an unsigned number (0x.. hex or decimal) that fills all of s. */
static int parse_ulong(const char *s, unsigned long *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+') {
        return 0;
    }
    *out = strtoul(s, &end, 0);
    return end != NULL && *end == '\0';
}

static int parse_rv(const char *s, CK_RV *rv)
{
    size_t i;
    unsigned long v;
    for (i = 0; i < sizeof ckr_names / sizeof ckr_names[0]; i++) {
        if (strcmp(ckr_names[i].name, s) == 0) {
            *rv = ckr_names[i].rv;
            return 1;
        }
    }
    if (parse_ulong(s, &v)) {
        *rv = (CK_RV)v;
        return 1;
    }
    return 0;
}

/* One HSMC_FAULT entry "FN=RV[:skip[:count]]" (modified in place). */
static void parse_fault_entry(char *e)
{
    char *eq = strchr(e, '=');
    char *rv_text, *skip_text = NULL, *count_text = NULL, *colon;
    unsigned long skip = 0, count = 0;
    CK_RV rv;
    int ix;

    if (eq == NULL) {
        fault_die("HSMC_FAULT entry needs FN=CKR_...", e);
    }
    *eq = '\0';
    rv_text = eq + 1;
    colon = strchr(rv_text, ':');
    if (colon != NULL) {
        *colon = '\0';
        skip_text = colon + 1;
        colon = strchr(skip_text, ':');
        if (colon != NULL) {
            *colon = '\0';
            count_text = colon + 1;
        }
    }
    ix = fault_index(e);
    if (ix < 0) {
        fault_die("HSMC_FAULT names an unknown function", e);
    }
    if (!parse_rv(rv_text, &rv)) {
        fault_die("HSMC_FAULT has an unknown CK_RV", rv_text);
    }
    if ((skip_text != NULL && !parse_ulong(skip_text, &skip)) ||
        (count_text != NULL && !parse_ulong(count_text, &count))) {
        fault_die("HSMC_FAULT has a bad skip/count for", e);
    }
    rules[ix].active = 1;
    rules[ix].rv = rv;
    rules[ix].skip = (unsigned)skip;
    rules[ix].count = (unsigned)count;
}

static void parse_env(void)
{
    const char *spec = getenv("HSMC_FAULT");
    const char *flags = getenv("HSMC_FAULT_TOKEN_FLAGS");

    if (spec != NULL && spec[0] != '\0') {
        size_t len = strlen(spec);
        char *copy = malloc(len + 1), *p, *comma;
        if (copy == NULL) {
            fault_die("out of memory", NULL);
        }
        memcpy(copy, spec, len + 1);
        for (p = copy; p != NULL; p = comma != NULL ? comma + 1 : NULL) {
            comma = strchr(p, ',');
            if (comma != NULL) {
                *comma = '\0';
            }
            if (*p != '\0') {
                parse_fault_entry(p);
            }
        }
        free(copy);
    }
    if (flags != NULL && flags[0] != '\0') {
        unsigned long v;
        if (!parse_ulong(flags, &v)) {
            fault_die("HSMC_FAULT_TOKEN_FLAGS is not a number", flags);
        }
        token_set = (CK_FLAGS)v;
    }
}

static void fill_proxy_list(void)
{
#define FAULT_LIST_X(name, params, args) proxy_list.name = fault_##name;
#define FAULT_LIST_S(name)
    FAULT_FUNCS(FAULT_LIST_X, FAULT_LIST_S)
    proxy_list.C_GetFunctionList = C_GetFunctionList;
    proxy_list.C_GetTokenInfo = fault_C_GetTokenInfo;
    proxy_list.C_GetAttributeValue = fault_C_GetAttributeValue;
    proxy_list.version = real->version;
}

/* Runs once per process: environment first, then the real module. */
static void fault_init(void)
{
    const char *path = getenv("HSMC_FAULT_MODULE");
    void *sym;
    CK_C_GetFunctionList get_list;
    CK_FUNCTION_LIST_PTR list = NULL;

    parse_env();
    if (path == NULL || path[0] == '\0') {
        path = "/usr/lib/softhsm/libsofthsm2.so";
    }
    real_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (real_handle == NULL) {
        fprintf(stderr, "hsmc_fault: cannot load %s: %s\n", path, dlerror());
        return;
    }
    sym = dlsym(real_handle, "C_GetFunctionList");
    if (sym == NULL) {
        fprintf(stderr, "hsmc_fault: %s has no C_GetFunctionList\n", path);
        return;
    }
    memcpy(&get_list, &sym, sizeof sym);
    if (get_list(&list) != CKR_OK || list == NULL) {
        fprintf(stderr, "hsmc_fault: C_GetFunctionList of %s failed\n", path);
        return;
    }
    real = list;
    fill_proxy_list();
}

static void fault_ready(void)
{
    (void)pthread_once(&fault_once, fault_init);
}

/* ---- Exported entry points ---------------------------------------------- */

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    CK_RV rv;
    fault_ready();
    if (fault_enter(FAULT_IX_C_GetFunctionList, &rv)) {
        return rv;
    }
    if (list == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    if (real == NULL) {
        return CKR_GENERAL_ERROR; /* the reason went to stderr */
    }
    *list = &proxy_list;
    return CKR_OK;
}

CK_RV C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version,
                     fault_interface_t **iface, CK_FLAGS flags)
{
    static CK_UTF8CHAR iface_name[] = "PKCS 11";
    static fault_interface_t interface;
    CK_RV rv;

    fault_ready();
    if (fault_enter(FAULT_IX_C_GetInterface, &rv)) {
        return rv;
    }
    if (iface == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    if (real == NULL) {
        return CKR_GENERAL_ERROR;
    }
    /* One interface: "PKCS 11" at the real module's version, no flags. */
    if ((name != NULL && strcmp((const char *)name, "PKCS 11") != 0) ||
        (version != NULL && (version->major != proxy_list.version.major ||
                             version->minor != proxy_list.version.minor)) ||
        flags != 0) {
        return CKR_ARGUMENTS_BAD;
    }
    interface.pInterfaceName = iface_name;
    interface.pFunctionList = &proxy_list;
    interface.flags = 0;
    *iface = &interface;
    return CKR_OK;
}

/* ---- Control API (hsmc_fault.h) ----------------------------------------- */

static int fault_index_or_die(const char *fn)
{
    int ix = fault_index(fn);
    if (ix < 0) {
        fault_die("unknown PKCS#11 function", fn != NULL ? fn : "(null)");
    }
    return ix;
}

void hsmc_fault_set(const char *fn, CK_RV rv, unsigned skip, unsigned count)
{
    int ix = fault_index_or_die(fn);
    fault_ready();
    pthread_mutex_lock(&fault_lock);
    rules[ix].active = 1;
    rules[ix].rv = rv;
    rules[ix].skip = skip;
    rules[ix].count = count;
    pthread_mutex_unlock(&fault_lock);
}

void hsmc_fault_clear(void)
{
    fault_ready();
    pthread_mutex_lock(&fault_lock);
    memset(rules, 0, sizeof rules);
    token_set = 0;
    token_clear = 0;
    close_ix = -1;
    close_skip = 0;
    n_overrides = 0;
    pthread_mutex_unlock(&fault_lock);
}

unsigned long hsmc_fault_calls(const char *fn)
{
    int ix = fault_index_or_die(fn);
    unsigned long n;
    fault_ready();
    pthread_mutex_lock(&fault_lock);
    n = calls[ix];
    pthread_mutex_unlock(&fault_lock);
    return n;
}

void hsmc_fault_reset_counts(void)
{
    fault_ready();
    pthread_mutex_lock(&fault_lock);
    memset(calls, 0, sizeof calls);
    pthread_mutex_unlock(&fault_lock);
}

void hsmc_fault_token_flags(CK_FLAGS set, CK_FLAGS clear)
{
    fault_ready();
    pthread_mutex_lock(&fault_lock);
    token_set = set;
    token_clear = clear;
    pthread_mutex_unlock(&fault_lock);
}

void hsmc_fault_close_sessions_on(const char *fn, unsigned skip)
{
    int ix = fault_index_or_die(fn);
    fault_ready();
    pthread_mutex_lock(&fault_lock);
    close_ix = ix;
    close_skip = skip;
    pthread_mutex_unlock(&fault_lock);
}

void hsmc_fault_attr_override(CK_ATTRIBUTE_TYPE type, CK_BBOOL value)
{
    size_t k;
    fault_ready();
    pthread_mutex_lock(&fault_lock);
    for (k = 0; k < n_overrides && overrides[k].type != type; k++) {
    }
    if (k == n_overrides) {
        if (n_overrides == FAULT_MAX_OVERRIDES) {
            pthread_mutex_unlock(&fault_lock);
            fault_die("too many attribute overrides", NULL);
        }
        n_overrides++;
    }
    overrides[k].type = type;
    overrides[k].value = value;
    pthread_mutex_unlock(&fault_lock);
}
