/*
 * The hsmc context: process module registry, token selection, login,
 * the fixed session pool, recovery after session/token loss, and fork.
 */
#include <stdio.h>

#include "hsmc_internal.h"

/* ---- Process-wide module registry ---------------------------------------
 * PKCS#11 initialisation is per module and process, not per hsmc_t. The
 * registry counts users of each module so that hsmc finalises a module only
 * when it initialised it itself and its last hsmc_t closes. C_Initialize is
 * called without the global lock held (an entry in state INIT makes other
 * openers wait), because the module may call our mutex callbacks, which
 * take the lock.
 */
enum { MOD_FREE = 0, MOD_INIT, MOD_READY };

typedef struct hsmc_module_entry {
    int state;
    CK_FUNCTION_LIST_PTR fl;
    hsmc_port_module_t port;
    unsigned refs;
    int owns;          /* we got CKR_OK from C_Initialize */
    unsigned long pid; /* process the module was initialised in */
} hsmc_module_entry_t;

static hsmc_module_entry_t hsmc_modules[HSMC_MAX_MODULES];

#if HSMC_MODULE_MUTEX_POOL > 0
/* Mutexes handed to a module that has no locking of its own. */
static hsmc_mutex_storage_t hsmc_mx_pool[HSMC_MODULE_MUTEX_POOL];
static unsigned char hsmc_mx_used[HSMC_MODULE_MUTEX_POOL];

static CK_RV hsmc_mx_create(CK_VOID_PTR_PTR out)
{
    size_t i;
    if (out == NULL)
        return CKR_ARGUMENTS_BAD;
    hsmc_port_global_lock();
    for (i = 0; i < HSMC_MODULE_MUTEX_POOL; i++) {
        if (!hsmc_mx_used[i] && hsmc_port_mutex_init(&hsmc_mx_pool[i]) == HSMC_OK) {
            hsmc_mx_used[i] = 1;
            hsmc_port_global_unlock();
            *out = &hsmc_mx_pool[i];
            return CKR_OK;
        }
    }
    hsmc_port_global_unlock();
    return CKR_HOST_MEMORY; /* pool exhausted: raise HSMC_MODULE_MUTEX_POOL */
}

static CK_RV hsmc_mx_destroy(CK_VOID_PTR m)
{
    size_t i = (size_t)((hsmc_mutex_storage_t *)m - hsmc_mx_pool);
    if (m == NULL || i >= HSMC_MODULE_MUTEX_POOL || !hsmc_mx_used[i])
        return CKR_MUTEX_BAD;
    hsmc_port_mutex_destroy(&hsmc_mx_pool[i]);
    hsmc_port_global_lock();
    hsmc_mx_used[i] = 0;
    hsmc_port_global_unlock();
    return CKR_OK;
}

static CK_RV hsmc_mx_lock(CK_VOID_PTR m)
{
    if (m == NULL)
        return CKR_MUTEX_BAD;
    hsmc_port_mutex_lock((hsmc_mutex_storage_t *)m);
    return CKR_OK;
}

static CK_RV hsmc_mx_unlock(CK_VOID_PTR m)
{
    if (m == NULL)
        return CKR_MUTEX_BAD;
    hsmc_port_mutex_unlock((hsmc_mutex_storage_t *)m);
    return CKR_OK;
}
#endif

static CK_RV hsmc_module_initialize(CK_FUNCTION_LIST_PTR fl)
{
    CK_C_INITIALIZE_ARGS args;

    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
#if HSMC_MODULE_MUTEX_POOL > 0
    args.CreateMutex = hsmc_mx_create;
    args.DestroyMutex = hsmc_mx_destroy;
    args.LockMutex = hsmc_mx_lock;
    args.UnlockMutex = hsmc_mx_unlock;
#endif
    return fl->C_Initialize(&args);
}

/* Take a reference on the module at `path`; sets h->fl and h->module. */
HSMC_NOINLINE static hsmc_err_t hsmc_module_acquire(hsmc_t *h, const char *path)
{
    hsmc_port_module_t port;
    CK_FUNCTION_LIST_PTR fl = NULL;
    hsmc_err_t err;
    unsigned long pid = hsmc_port_pid();
    int idx, i;
    CK_RV rv;

    h->detail[0] = '\0';
    port.handle = NULL;
    err = hsmc_port_module_load(&port, path, &fl, h->detail, sizeof h->detail);
    if (err != HSMC_OK)
        return hsmc__fail_detail(h, err);

    for (;;) {
        idx = -1;
        hsmc_port_global_lock();
        for (i = 0; i < HSMC_MAX_MODULES; i++) {
            if (hsmc_modules[i].state != MOD_FREE && hsmc_modules[i].fl == fl) {
                idx = i;
                break;
            }
        }
        if (idx >= 0 && hsmc_modules[idx].state == MOD_INIT) {
            hsmc_port_global_unlock(); /* another thread is initialising it */
            hsmc_port_sleep_ms(1);
            continue;
        }
        if (idx >= 0) {
            hsmc_modules[idx].refs++;
            hsmc_port_global_unlock();
            hsmc_port_module_unload(&port); /* the entry keeps its own reference */
            h->fl = fl;
            h->module = idx;
            return HSMC_OK;
        }
        for (i = 0; i < HSMC_MAX_MODULES; i++) {
            if (hsmc_modules[i].state == MOD_FREE) {
                idx = i;
                break;
            }
        }
        if (idx < 0) {
            hsmc_port_global_unlock();
            hsmc_port_module_unload(&port);
            return hsmc__fail(h, HSMC_ERR_LIMIT, CKR_OK,
                              "more than HSMC_MAX_MODULES (%d) modules in use in this process",
                              HSMC_MAX_MODULES);
        }
        hsmc_modules[idx].state = MOD_INIT;
        hsmc_modules[idx].fl = fl;
        hsmc_port_global_unlock();
        break;
    }

    rv = hsmc_module_initialize(fl);
    hsmc_port_global_lock();
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        memset(&hsmc_modules[idx], 0, sizeof hsmc_modules[idx]);
        hsmc_port_global_unlock();
        hsmc_port_module_unload(&port);
        return hsmc__fail(h, HSMC_ERR_MODULE_INIT, rv, "C_Initialize: %s (0x%lx)",
                          hsmc_ckr_name(rv), (unsigned long)rv);
    }
    hsmc_modules[idx].owns = (rv == CKR_OK);
    hsmc_modules[idx].port = port;
    hsmc_modules[idx].refs = 1;
    hsmc_modules[idx].pid = pid;
    hsmc_modules[idx].state = MOD_READY;
    hsmc_port_global_unlock();
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
        HSMC_LOG(h, HSMC_LOG_INFO, "module already initialised by another user: adopted, "
                                   "hsmc will not finalise it");
    h->fl = fl;
    h->module = idx;
    return HSMC_OK;
}

/* Drop the context's reference; finalise only what we initialised. */
static void hsmc_module_release(hsmc_t *h)
{
    hsmc_module_entry_t *e;
    hsmc_port_module_t port;
    int finalize = 0, unload = 0;

    if (h->module < 0 || h->module >= HSMC_MAX_MODULES)
        return;
    e = &hsmc_modules[h->module];
    hsmc_port_global_lock();
    if (e->refs > 0 && --e->refs == 0) {
        finalize = e->owns && e->pid == hsmc_port_pid();
        port = e->port;
        unload = 1;
        e->state = MOD_INIT; /* nobody may adopt it while it is finalised */
    }
    hsmc_port_global_unlock();
    if (unload) {
        if (finalize)
            (void)h->fl->C_Finalize(NULL);
        hsmc_port_module_unload(&port);
        hsmc_port_global_lock();
        memset(e, 0, sizeof *e);
        hsmc_port_global_unlock();
    }
    h->module = -1;
    h->fl = NULL;
}

/* In a forked child, PKCS#11 requires a new C_Initialize. */
static hsmc_err_t hsmc_module_after_fork(hsmc_t *h, unsigned long pid)
{
    hsmc_module_entry_t *e = &hsmc_modules[h->module];
    CK_RV rv = CKR_OK;
    int again;

    hsmc_port_global_lock();
    again = e->pid != pid;
    if (again)
        e->pid = pid;
    hsmc_port_global_unlock();
    if (again) {
        rv = hsmc_module_initialize(h->fl);
        HSMC_LOG(h, HSMC_LOG_INFO, "fork detected: module initialised again (%s)",
                 hsmc_ckr_name(rv));
        if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
            return hsmc__fail(h, HSMC_ERR_MODULE_INIT, rv,
                              "C_Initialize after fork: %s", hsmc_ckr_name(rv));
        /* Whoever initialised it in the parent, this child now depends on
         * the new initialisation; finalising stays with whoever owned it. */
    }
    return HSMC_OK;
}

/* ---- Configuration ------------------------------------------------------ */

void hsmc_cfg_init(hsmc_cfg_t *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->pin.kind = HSMC_PIN_NONE;
    cfg->pin.fd = -1;
    cfg->log_level = HSMC_LOG_WARN;
}

void hsmc_init(hsmc_t *h)
{
    if (h == NULL)
        return;
    memset(h, 0, sizeof *h);
    h->module = -1;
    h->pin_fd = -1;
}

/* Copy an optional selection string into a fixed field; too long cannot match. */
static hsmc_err_t hsmc_copy_sel(hsmc_t *h, char *dst, size_t cap, const char *src,
                                const char *what)
{
    size_t n;
    dst[0] = '\0';
    if (src == NULL)
        return HSMC_OK;
    n = strlen(src);
    if (n >= cap)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "token %s '%.40s' is longer than the %u bytes PKCS#11 allows", what,
                          src, (unsigned)(cap - 1));
    memcpy(dst, src, n + 1);
    return HSMC_OK;
}

static hsmc_err_t hsmc_copy_cfg(hsmc_t *h, const hsmc_cfg_t *cfg)
{
    const hsmc_pin_src_t *p = &cfg->pin;
    hsmc_err_t err;
    size_t n;

    if ((err = hsmc_copy_sel(h, h->sel_label, sizeof h->sel_label, cfg->token.label, "label")) ||
        (err = hsmc_copy_sel(h, h->sel_serial, sizeof h->sel_serial, cfg->token.serial,
                             "serial")) ||
        (err = hsmc_copy_sel(h, h->sel_model, sizeof h->sel_model, cfg->token.model, "model")) ||
        (err = hsmc_copy_sel(h, h->sel_manufacturer, sizeof h->sel_manufacturer,
                             cfg->token.manufacturer, "manufacturer")))
        return err;
    h->sel_has_slot_id = cfg->token.has_slot_id;
    h->sel_slot_id = cfg->token.slot_id;

    h->pin_kind = p->kind;
    switch (p->kind) {
    case HSMC_PIN_NONE:
    case HSMC_PIN_PROTECTED:
    case HSMC_PIN_TTY:
        if (p->kind == HSMC_PIN_TTY && p->arg != NULL)
            goto copy_arg;
        break;
    case HSMC_PIN_VALUE:
        if (p->value == NULL || p->value_len == 0 || p->value_len > HSMC_MAX_PIN_LEN)
            return hsmc__fail(h, HSMC_ERR_PIN_SOURCE, CKR_OK,
                              "PIN value is empty or longer than HSMC_MAX_PIN_LEN (%d)",
                              HSMC_MAX_PIN_LEN);
        h->pin_value = p->value;
        h->pin_value_len = p->value_len;
        break;
    case HSMC_PIN_FD:
        if (p->fd < 0)
            return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "PIN file descriptor %d is invalid",
                              p->fd);
        h->pin_fd = p->fd;
        break;
    case HSMC_PIN_CALLBACK:
        if (p->cb == NULL)
            return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "PIN callback is NULL");
        h->pin_cb = p->cb;
        h->pin_cb_user = p->cb_user;
        break;
    case HSMC_PIN_FILE:
    case HSMC_PIN_ENV:
        if (p->arg == NULL || p->arg[0] == '\0')
            return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "PIN %s name is empty",
                              p->kind == HSMC_PIN_FILE ? "file" : "variable");
    copy_arg:
        n = strlen(p->arg);
        if (n > HSMC_MAX_PATH_LEN)
            return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                              "PIN source name longer than HSMC_MAX_PATH_LEN (%d)",
                              HSMC_MAX_PATH_LEN);
        memcpy(h->pin_arg, p->arg, n + 1);
        break;
    default:
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "unknown PIN source kind %d", (int)p->kind);
    }
    return HSMC_OK;
}

/* ---- Token selection ------------------------------------------------------ */

static int hsmc_sel_is_empty(const hsmc_t *h)
{
    return !h->sel_label[0] && !h->sel_serial[0] && !h->sel_model[0] &&
           !h->sel_manufacturer[0] && !h->sel_has_slot_id;
}

/* 1 when the token in `slot` matches the selection, 0 when not, -1 when
 * C_GetTokenInfo failed (*rv says how; mapped by the caller, so that this
 * frame with its CK_TOKEN_INFO is gone while the error is formatted). */
HSMC_NOINLINE static int hsmc_slot_matches(hsmc_t *h, CK_SLOT_ID slot, CK_RV *rv)
{
    CK_TOKEN_INFO ti;

    if (h->sel_has_slot_id && slot != h->sel_slot_id)
        return 0;
    *rv = h->fl->C_GetTokenInfo(slot, &ti);
    if (*rv == CKR_TOKEN_NOT_PRESENT || *rv == CKR_TOKEN_NOT_RECOGNIZED)
        return 0;
    if (*rv != CKR_OK)
        return -1;
    /* "Any token" means any usable one: modules such as SoftHSM2 always
     * show a blank token for initialisation next to the real ones. */
    if (!(ti.flags & CKF_TOKEN_INITIALIZED) && !h->sel_label[0] && !h->sel_serial[0] &&
        !h->sel_model[0] && !h->sel_manufacturer[0] && !h->sel_has_slot_id)
        return 0;
    if (h->sel_label[0] && !hsmc__field_eq(ti.label, sizeof ti.label, h->sel_label))
        return 0;
    if (h->sel_serial[0] &&
        !hsmc__field_eq(ti.serialNumber, sizeof ti.serialNumber, h->sel_serial))
        return 0;
    if (h->sel_model[0] && !hsmc__field_eq(ti.model, sizeof ti.model, h->sel_model))
        return 0;
    if (h->sel_manufacturer[0] &&
        !hsmc__field_eq(ti.manufacturerID, sizeof ti.manufacturerID, h->sel_manufacturer))
        return 0;
    return 1;
}

/* Describe the selection for messages: "label 'gw'", "serial '1234'", ... */
static const char *hsmc_sel_text(const hsmc_t *h, char *buf, size_t cap)
{
    if (h->sel_label[0])
        (void)snprintf(buf, cap, "label '%s'", h->sel_label);
    else if (h->sel_serial[0])
        (void)snprintf(buf, cap, "serial '%s'", h->sel_serial);
    else if (h->sel_model[0])
        (void)snprintf(buf, cap, "model '%s'", h->sel_model);
    else if (h->sel_manufacturer[0])
        (void)snprintf(buf, cap, "manufacturer '%s'", h->sel_manufacturer);
    else if (h->sel_has_slot_id)
        (void)snprintf(buf, cap, "slot-id %lu", (unsigned long)h->sel_slot_id);
    else
        (void)snprintf(buf, cap, "any token");
    return buf;
}

/* Find the one slot whose token matches; sets h->slot. */
HSMC_NOINLINE static hsmc_err_t hsmc_select_token(hsmc_t *h)
{
    CK_SLOT_ID slots[HSMC_MAX_SLOTS];
    size_t n = 0, i, matches = 0;
    CK_SLOT_ID found = 0;
    char what[48];
    hsmc_err_t err;
    CK_RV rv = CKR_OK;
    int m;

    err = hsmc_slot_list(h, 1, slots, HSMC_MAX_SLOTS, &n);
    if (err != HSMC_OK)
        return err;
    for (i = 0; i < n; i++) {
        m = hsmc_slot_matches(h, slots[i], &rv);
        if (m < 0)
            return hsmc_map_rv(h, rv, "C_GetTokenInfo");
        if (m > 0) {
            if (matches == 0)
                found = slots[i];
            matches++;
        }
    }
    if (matches == 0)
        return hsmc__fail(h, HSMC_ERR_TOKEN_NOT_FOUND, CKR_OK,
                          "no token with %s among %u present", hsmc_sel_text(h, what, sizeof what),
                          (unsigned)n);
    if (matches > 1)
        return hsmc__fail(h, HSMC_ERR_TOKEN_AMBIGUOUS, CKR_OK,
                          "%u tokens match %s; add serial= (or a label) to tell them apart",
                          (unsigned)matches, hsmc_sel_text(h, what, sizeof what));
    h->slot = found;
    h->has_slot = 1;
    return HSMC_OK;
}

/* ---- Login ---------------------------------------------------------------- */

/* Read the PIN from the configured source into buf. */
HSMC_NOINLINE static hsmc_err_t hsmc_pin_get(hsmc_t *h, char *buf, size_t cap, size_t *len)
{
    hsmc_err_t err;

    *len = 0;
    switch (h->pin_kind) {
    case HSMC_PIN_VALUE:
        memcpy(buf, h->pin_value, h->pin_value_len);
        *len = h->pin_value_len;
        return HSMC_OK;
    case HSMC_PIN_CALLBACK:
        err = h->pin_cb(h->pin_cb_user, buf, cap, len);
        if (err != HSMC_OK || *len == 0 || *len > cap) {
            hsmc__wipe(buf, cap);
            return hsmc__fail(h, err != HSMC_OK ? err : HSMC_ERR_PIN_SOURCE, CKR_OK,
                              "PIN callback gave no PIN");
        }
        return HSMC_OK;
    case HSMC_PIN_FD:
    case HSMC_PIN_TTY:
        if (h->pin_cache_len > 0) { /* read-once sources: kept for re-login */
            memcpy(buf, h->pin_cache, h->pin_cache_len);
            *len = h->pin_cache_len;
            return HSMC_OK;
        }
        /* fall through */
    case HSMC_PIN_FILE:
    case HSMC_PIN_ENV:
        h->detail[0] = '\0';
        err = hsmc_port_pin_read(h->pin_kind, h->pin_arg[0] ? h->pin_arg : NULL, h->pin_fd,
                                 buf, cap, len, h->detail, sizeof h->detail);
        if (err != HSMC_OK)
            return hsmc__fail_detail(h, err);
        if (h->pin_kind == HSMC_PIN_FD || h->pin_kind == HSMC_PIN_TTY) {
            memcpy(h->pin_cache, buf, *len);
            h->pin_cache_len = *len;
        }
        return HSMC_OK;
    default:
        return hsmc__fail(h, HSMC_ERR_INTERNAL, CKR_OK, "no PIN source");
    }
}

/* The selected token's flags; a frame of its own for the CK_TOKEN_INFO. */
HSMC_NOINLINE static CK_RV hsmc_token_flags(hsmc_t *h, CK_FLAGS *flags)
{
    CK_TOKEN_INFO ti;
    CK_RV rv = h->fl->C_GetTokenInfo(h->slot, &ti);
    *flags = rv == CKR_OK ? ti.flags : 0;
    return rv;
}

/* Refuse a login that could lock the token, judging by its flags.
 * @return HSMC_OK to go on, HSMC_RETRY when no login is needed, or an error. */
static hsmc_err_t hsmc_login_check_flags(hsmc_t *h, CK_FLAGS flags)
{
    if (!(flags & CKF_LOGIN_REQUIRED) && h->pin_kind == HSMC_PIN_NONE)
        return HSMC_RETRY;
    if (flags & CKF_USER_PIN_LOCKED)
        return hsmc__fail(h, HSMC_ERR_PIN_LOCKED, CKR_OK,
                          "token reports the user PIN locked (CKF_USER_PIN_LOCKED); the "
                          "security officer must reset it");
    if (flags & CKF_USER_PIN_FINAL_TRY)
        return hsmc__fail(h, HSMC_ERR_PIN_FINAL_TRY, CKR_OK,
                          "token reports CKF_USER_PIN_FINAL_TRY: one more wrong PIN locks it; "
                          "hsmc will not try. Verify the PIN and log in by hand once");
    if (flags & CKF_USER_PIN_TO_BE_CHANGED)
        return hsmc__fail(h, HSMC_ERR_PIN_EXPIRED, CKR_OK,
                          "token reports CKF_USER_PIN_TO_BE_CHANGED: change the user PIN first");
    if (!(flags & CKF_USER_PIN_INITIALIZED))
        return hsmc__fail(h, HSMC_ERR_CONFIG, CKR_OK,
                          "token user PIN is not initialised (CKF_USER_PIN_INITIALIZED unset)");
    if (h->pin_kind == HSMC_PIN_NONE)
        return hsmc__fail(h, HSMC_ERR_NOT_LOGGED_IN, CKR_OK,
                          "token requires a login and no PIN source was configured");
    return HSMC_OK;
}

/* Log the user in on `session`. A wrong PIN is tried exactly once. */
HSMC_NOINLINE static hsmc_err_t hsmc_login(hsmc_t *h, CK_SESSION_HANDLE session)
{
    char pin[HSMC_MAX_PIN_LEN];
    size_t len = 0;
    hsmc_err_t err;
    CK_FLAGS flags;
    CK_RV rv;

    rv = hsmc_token_flags(h, &flags);
    if (rv != CKR_OK)
        return hsmc_map_rv(h, rv, "C_GetTokenInfo");
    err = hsmc_login_check_flags(h, flags);
    if (err != HSMC_OK)
        return err == HSMC_RETRY ? HSMC_OK : err;
    if (h->pin_kind == HSMC_PIN_PROTECTED) { /* the PIN is entered on the device */
        rv = h->fl->C_Login(session, CKU_USER, NULL, 0);
    } else {
        err = hsmc_pin_get(h, pin, sizeof pin, &len);
        if (err != HSMC_OK)
            return err;
        rv = h->fl->C_Login(session, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)len);
        hsmc__wipe(pin, sizeof pin);
    }
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
        h->logged_in = 1;
        HSMC_LOG(h, HSMC_LOG_INFO, "logged in%s",
                 rv == CKR_USER_ALREADY_LOGGED_IN ? " (already logged in by another user)" : "");
        return HSMC_OK;
    }
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE) {
        hsmc__wipe(h->pin_cache, sizeof h->pin_cache); /* never reuse a wrong PIN */
        h->pin_cache_len = 0;
        return hsmc__fail(h, HSMC_ERR_PIN_INCORRECT, rv,
                          "C_Login: %s; the token was asked once and its retry counter may "
                          "have dropped",
                          hsmc_ckr_name(rv));
    }
    return hsmc_map_rv(h, rv, "C_Login");
}

/* ---- Session pool --------------------------------------------------------- */

/* A variable, not the macro, so a configured 0 does not trip -Wtype-limits. */
static const uint32_t hsmc_wait_ms = HSMC_SESSION_WAIT_MS;

static void hsmc_lock(hsmc_t *h)
{
#if HSMC_THREADS
    hsmc_port_mutex_lock(&h->lock);
#else
    (void)h;
#endif
}

static void hsmc_unlock(hsmc_t *h)
{
#if HSMC_THREADS
    hsmc_port_mutex_unlock(&h->lock);
#else
    (void)h;
#endif
}

static CK_FLAGS hsmc_session_flags(const hsmc_t *h)
{
    return CKF_SERIAL_SESSION | ((h->flags & HSMC_CFG_READ_ONLY) ? 0 : CKF_RW_SESSION);
}

/* Forget every pool session (called with the lock held). Idle sessions of
 * this process are closed; busy ones are closed by their owner on release. */
static void hsmc_drop_sessions(hsmc_t *h, int close_them)
{
    size_t i;
    for (i = 0; i < HSMC_MAX_SESSIONS; i++) {
        hsmc_session_slot_t *s = &h->sess[i];
        if (s->open && !s->busy) {
            if (close_them)
                (void)h->fl->C_CloseSession(s->handle);
            s->open = 0;
        }
    }
    h->logged_in = 0;
}

hsmc_err_t hsmc_session_begin(hsmc_t *h, hsmc_sess_t *s)
{
    unsigned long pid;
    uint32_t start;
    hsmc_session_slot_t *slot = NULL;
    hsmc_err_t err;
    CK_RV rv;
    int i, waited;

    if (h == NULL || s == NULL)
        return HSMC_ERR_ARG;
    if (!HSMC_IS_OPEN(h))
        return hsmc__fail(h, HSMC_ERR_STATE, CKR_OK, "context is not open");
    if (!h->has_slot)
        return hsmc__fail(h, HSMC_ERR_STATE, CKR_OK,
                          "no token selected (opened with HSMC_CFG_NO_TOKEN)");
    s->h = h;

    pid = hsmc_port_pid();
    if (pid != h->pid) {
        hsmc_lock(h);
        if (pid != h->pid) {
            /* The parent's sessions mean nothing here: forget, do not close. */
            for (i = 0; i < HSMC_MAX_SESSIONS; i++)
                h->sess[i].open = h->sess[i].busy = 0;
            h->logged_in = 0;
            h->generation++;
            err = hsmc_module_after_fork(h, pid);
            if (err != HSMC_OK) {
                hsmc_unlock(h);
                return err;
            }
            h->pid = pid;
        }
        hsmc_unlock(h);
    }

    start = 0;
    for (waited = 0;; waited = 1) {
        hsmc_lock(h);
        for (i = 0; i < HSMC_MAX_SESSIONS && slot == NULL; i++) {
            if (!h->sess[i].busy && h->sess[i].open && h->sess[i].generation == h->generation)
                slot = &h->sess[i];
        }
        for (i = 0; i < HSMC_MAX_SESSIONS && slot == NULL; i++) {
            if (!h->sess[i].busy)
                slot = &h->sess[i];
        }
        if (slot != NULL) {
            slot->busy = 1;
            break;
        }
        hsmc_unlock(h);
        if (!waited)
            start = hsmc_port_ms(); /* read the clock only when waiting */
        else if ((uint32_t)(hsmc_port_ms() - start) >= hsmc_wait_ms)
            return hsmc__fail(h, HSMC_ERR_BUSY, CKR_OK,
                              "all %d sessions stayed busy for %d ms; raise HSMC_MAX_SESSIONS",
                              HSMC_MAX_SESSIONS, HSMC_SESSION_WAIT_MS);
        hsmc_port_sleep_ms(1);
    }
    /* Lock held, slot reserved. Open and log in under the lock so that
     * concurrent callers do not log in twice. */
    err = HSMC_OK;
    if (slot->open && slot->generation != h->generation) {
        (void)h->fl->C_CloseSession(slot->handle);
        slot->open = 0;
    }
    if (!slot->open) {
        rv = h->fl->C_OpenSession(h->slot, hsmc_session_flags(h), NULL, NULL, &slot->handle);
        if (rv != CKR_OK) {
            err = hsmc_map_rv(h, rv, "C_OpenSession");
            if (err == HSMC_ERR_TOKEN)
                err = h->last_err = HSMC_ERR_SESSION;
        } else {
            slot->open = 1;
            slot->generation = h->generation;
        }
    }
    if (err == HSMC_OK && !h->logged_in && h->pin_kind != HSMC_PIN_NONE)
        err = hsmc_login(h, slot->handle);
    if (err != HSMC_OK) {
        slot->busy = 0;
        hsmc_unlock(h);
        return err;
    }
    hsmc_unlock(h);
    s->handle = slot->handle;
    s->index = (int)(slot - h->sess);
    s->generation = slot->generation;
    return HSMC_OK;
}

/* Return the slot to the pool; a session from an older generation is closed. */
static void hsmc_session_put(hsmc_t *h, hsmc_sess_t *s)
{
    hsmc_session_slot_t *slot;

    if (s->index < 0 || s->index >= HSMC_MAX_SESSIONS)
        return;
    slot = &h->sess[s->index];
    hsmc_lock(h);
    if (slot->open && slot->generation != h->generation) {
        (void)h->fl->C_CloseSession(slot->handle);
        slot->open = 0;
    }
    slot->busy = 0;
    hsmc_unlock(h);
    s->index = -1;
}

/* Reopen the way to the token after a loss: new generation, token selected again. */
static hsmc_err_t hsmc_recover(hsmc_t *h, const hsmc_sess_t *s, CK_RV rv, const char *what)
{
    hsmc_err_t err = HSMC_OK;

    hsmc_lock(h);
    if (h->generation == s->generation) { /* first to notice */
        h->generation++;
        hsmc_drop_sessions(h, 1);
        if (rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT) {
            /* The token may come back in another slot. */
            h->has_slot = 0;
            err = hsmc_select_token(h);
            if (err == HSMC_ERR_TOKEN_NOT_FOUND)
                err = h->last_err = HSMC_ERR_TOKEN_NOT_PRESENT;
        }
        if (err == HSMC_OK) {
            h->recoveries++;
            HSMC_LOG(h, HSMC_LOG_WARN, "%s: %s; recovered (recovery %lu): sessions reopened",
                     what, hsmc_ckr_name(rv), h->recoveries);
        }
    }
    hsmc_unlock(h);
    return err;
}

hsmc_err_t hsmc_session_end(hsmc_sess_t *s, CK_RV rv, const char *what)
{
    hsmc_t *h;
    hsmc_err_t err;

    if (s == NULL || s->h == NULL)
        return HSMC_ERR_ARG;
    h = s->h;
    hsmc_session_put(h, s);
    if (rv == CKR_OK)
        return HSMC_OK;
    if (!hsmc__rv_is_loss(rv))
        return hsmc_map_rv(h, rv, what);
    if (rv == CKR_USER_NOT_LOGGED_IN && h->pin_kind == HSMC_PIN_NONE)
        return hsmc__fail(h, HSMC_ERR_NOT_LOGGED_IN, rv,
                          "%s: CKR_USER_NOT_LOGGED_IN and no PIN source was configured", what);
    if (s->attempts >= HSMC_RECOVER_RETRIES)
        return hsmc__fail(h, HSMC_ERR_RECOVERY, rv,
                          "%s: %s again after %u recoveries; giving up", what,
                          hsmc_ckr_name(rv), s->attempts);
    s->attempts++;
    err = hsmc_recover(h, s, rv, what);
    return err != HSMC_OK ? err : HSMC_RETRY;
}

/* ---- Open / close --------------------------------------------------------- */

hsmc_err_t hsmc_open(hsmc_t *h, const hsmc_cfg_t *cfg)
{
    hsmc_sess_t s;
    hsmc_err_t err;

    if (h == NULL || cfg == NULL)
        return HSMC_ERR_ARG;
    if (HSMC_IS_OPEN(h))
        return hsmc__fail(h, HSMC_ERR_STATE, CKR_OK, "context is already open");
    hsmc_init(h);
    h->log = cfg->log;
    h->log_user = cfg->log_user;
    h->log_level = cfg->log_level;
    h->flags = cfg->flags;

    if ((cfg->flags & HSMC_CFG_NO_TOKEN) && cfg->pin.kind != HSMC_PIN_NONE)
        return hsmc__fail(h, HSMC_ERR_CONFIG, CKR_OK,
                          "HSMC_CFG_NO_TOKEN opens no token, so a PIN cannot be used");
    err = hsmc_copy_cfg(h, cfg);
    if (err != HSMC_OK)
        goto fail;
#if HSMC_THREADS
    err = hsmc_port_mutex_init(&h->lock);
    if (err != HSMC_OK) {
        hsmc__fail(h, err, CKR_OK, "could not create the context mutex");
        goto fail;
    }
#endif
    err = hsmc_module_acquire(h, cfg->module_path);
    if (err != HSMC_OK)
        goto fail_mutex;
    h->pid = hsmc_port_pid();
    h->state = 1u;

    if (cfg->flags & HSMC_CFG_NO_TOKEN)
        return HSMC_OK;
    if (hsmc_sel_is_empty(h))
        HSMC_LOG(h, HSMC_LOG_INFO, "no token selection given: using the only token present");
    err = hsmc_select_token(h);
    if (err != HSMC_OK)
        goto fail_open;
    memset(&s, 0, sizeof s);
    err = hsmc_session_begin(h, &s); /* opens the first session, logs in */
    if (err != HSMC_OK)
        goto fail_open;
    hsmc_session_put(h, &s);
    HSMC_LOG(h, HSMC_LOG_INFO, "token selected in slot %lu", (unsigned long)h->slot);
    return HSMC_OK;

fail_open:
    /* Undo everything: sessions, module reference; keep the error text. */
    {
        hsmc_err_t keep_err = h->last_err;
        CK_RV keep_rv = h->last_rv;
        char keep[HSMC_DETAIL_LEN];
        memcpy(keep, h->detail, sizeof keep);
        hsmc_close(h);
        h->last_err = keep_err;
        h->last_rv = keep_rv;
        memcpy(h->detail, keep, sizeof keep);
    }
    return err;
fail_mutex:
#if HSMC_THREADS
    hsmc_port_mutex_destroy(&h->lock);
#endif
fail:
    hsmc__wipe(h->pin_cache, sizeof h->pin_cache);
    return err;
}

void hsmc_close(hsmc_t *h)
{
    hsmc_log_fn log;
    void *log_user;
    hsmc_log_level_t level;
    size_t i;
    int same_process;

    if (h == NULL || !HSMC_IS_OPEN(h))
        return;
    same_process = h->pid == hsmc_port_pid();
    for (i = 0; i < HSMC_MAX_SESSIONS; i++) {
        if (h->sess[i].open && same_process)
            (void)h->fl->C_CloseSession(h->sess[i].handle);
    }
    hsmc_module_release(h);
#if HSMC_THREADS
    hsmc_port_mutex_destroy(&h->lock);
#endif
    log = h->log;
    log_user = h->log_user;
    level = h->log_level;
    hsmc__wipe(h, sizeof *h);
    hsmc_init(h);
    h->log = log;
    h->log_user = log_user;
    h->log_level = level;
}

/* ---- Accessors and module-level queries ----------------------------------- */

unsigned long hsmc_recoveries(const hsmc_t *h)
{
    return h == NULL ? 0 : h->recoveries;
}

CK_FUNCTION_LIST_PTR hsmc_functions(const hsmc_t *h)
{
    return (h == NULL || !HSMC_IS_OPEN(h)) ? NULL : h->fl;
}

hsmc_err_t hsmc_slot(const hsmc_t *h, CK_SLOT_ID *slot)
{
    if (h == NULL || slot == NULL)
        return HSMC_ERR_ARG;
    if (!HSMC_IS_OPEN(h) || !h->has_slot)
        return HSMC_ERR_STATE;
    *slot = h->slot;
    return HSMC_OK;
}

int hsmc_owns_module(const hsmc_t *h)
{
    if (h == NULL || !HSMC_IS_OPEN(h) || h->module < 0)
        return 0;
    return hsmc_modules[h->module].owns;
}

static hsmc_err_t hsmc_check_open(hsmc_t *h, const void *out)
{
    if (h == NULL || out == NULL)
        return HSMC_ERR_ARG;
    if (!HSMC_IS_OPEN(h))
        return hsmc__fail(h, HSMC_ERR_STATE, CKR_OK, "context is not open");
    return HSMC_OK;
}

hsmc_err_t hsmc_module_info(hsmc_t *h, CK_INFO *info)
{
    hsmc_err_t err = hsmc_check_open(h, info);
    if (err != HSMC_OK)
        return err;
    memset(info, 0, sizeof *info);
    return hsmc_map_rv(h, h->fl->C_GetInfo(info), "C_GetInfo");
}

/* The two-call pattern with a fixed buffer: a count above `limit` is an error,
 * never a size to allocate. */
hsmc_err_t hsmc_slot_list(hsmc_t *h, int token_present, CK_SLOT_ID *slots, size_t cap,
                          size_t *n)
{
    CK_ULONG count = 0;
    CK_RV rv;
    hsmc_err_t err = hsmc_check_open(h, n);

    if (err != HSMC_OK)
        return err;
    rv = h->fl->C_GetSlotList(token_present ? CK_TRUE : CK_FALSE, NULL, &count);
    if (rv != CKR_OK)
        return hsmc_map_rv(h, rv, "C_GetSlotList");
    if (count == CK_UNAVAILABLE_INFORMATION || count > HSMC_MAX_SLOTS)
        return hsmc__fail(h, HSMC_ERR_LIMIT, CKR_OK,
                          "module reports %lu slots; HSMC_MAX_SLOTS is %d", (unsigned long)count,
                          HSMC_MAX_SLOTS);
    *n = (size_t)count;
    if (slots == NULL)
        return HSMC_OK;
    if (cap < count)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK, "%lu slots do not fit in %u entries",
                          (unsigned long)count, (unsigned)cap);
    count = (CK_ULONG)cap;
    rv = h->fl->C_GetSlotList(token_present ? CK_TRUE : CK_FALSE, slots, &count);
    if (rv == CKR_BUFFER_TOO_SMALL) /* a slot appeared between the two calls */
        return hsmc__fail(h, HSMC_ERR_LIMIT, rv, "slot count changed during listing; retry");
    if (rv != CKR_OK)
        return hsmc_map_rv(h, rv, "C_GetSlotList");
    *n = (size_t)count;
    return HSMC_OK;
}

hsmc_err_t hsmc_slot_info(hsmc_t *h, CK_SLOT_ID slot, CK_SLOT_INFO *info)
{
    hsmc_err_t err = hsmc_check_open(h, info);
    if (err != HSMC_OK)
        return err;
    memset(info, 0, sizeof *info);
    return hsmc_map_rv(h, h->fl->C_GetSlotInfo(slot, info), "C_GetSlotInfo");
}

hsmc_err_t hsmc_token_info(hsmc_t *h, CK_SLOT_ID slot, CK_TOKEN_INFO *info)
{
    hsmc_err_t err = hsmc_check_open(h, info);
    if (err != HSMC_OK)
        return err;
    memset(info, 0, sizeof *info);
    return hsmc_map_rv(h, h->fl->C_GetTokenInfo(slot, info), "C_GetTokenInfo");
}

hsmc_err_t hsmc_mechanism_list(hsmc_t *h, CK_SLOT_ID slot, CK_MECHANISM_TYPE *mechs,
                               size_t cap, size_t *n)
{
    CK_ULONG count = 0;
    CK_RV rv;
    hsmc_err_t err = hsmc_check_open(h, n);

    if (err != HSMC_OK)
        return err;
    rv = h->fl->C_GetMechanismList(slot, NULL, &count);
    if (rv != CKR_OK)
        return hsmc_map_rv(h, rv, "C_GetMechanismList");
    if (count == CK_UNAVAILABLE_INFORMATION || count > HSMC_MAX_MECHANISMS)
        return hsmc__fail(h, HSMC_ERR_LIMIT, CKR_OK,
                          "token reports %lu mechanisms; HSMC_MAX_MECHANISMS is %d",
                          (unsigned long)count, HSMC_MAX_MECHANISMS);
    *n = (size_t)count;
    if (mechs == NULL)
        return HSMC_OK;
    if (cap < count)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK, "%lu mechanisms do not fit in %u entries",
                          (unsigned long)count, (unsigned)cap);
    count = (CK_ULONG)cap;
    rv = h->fl->C_GetMechanismList(slot, mechs, &count);
    if (rv != CKR_OK)
        return hsmc_map_rv(h, rv, "C_GetMechanismList");
    *n = (size_t)count;
    return HSMC_OK;
}

hsmc_err_t hsmc_mechanism_info(hsmc_t *h, CK_SLOT_ID slot, CK_MECHANISM_TYPE mech,
                               CK_MECHANISM_INFO *info)
{
    CK_RV rv;
    hsmc_err_t err = hsmc_check_open(h, info);

    if (err != HSMC_OK)
        return err;
    memset(info, 0, sizeof *info); /* SoftHSM2 ORs its flags into what is there */
    rv = h->fl->C_GetMechanismInfo(slot, mech, info);
    if (rv == CKR_MECHANISM_INVALID)
        return hsmc__fail(h, HSMC_ERR_UNSUPPORTED, rv, "token lacks %s (0x%lx)",
                          hsmc_ckm_name(mech), (unsigned long)mech);
    return hsmc_map_rv(h, rv, "C_GetMechanismInfo");
}

hsmc_err_t hsmc_random(hsmc_t *h, uint8_t *out, size_t len)
{
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv;

    if (h == NULL || (out == NULL && len > 0))
        return HSMC_ERR_ARG;
    if (len == 0)
        return HSMC_OK;
    memset(&s, 0, sizeof s);
    do {
        err = hsmc_session_begin(h, &s);
        if (err != HSMC_OK)
            return err;
        rv = h->fl->C_GenerateRandom(s.handle, out, (CK_ULONG)len);
        err = hsmc_session_end(&s, rv, "C_GenerateRandom");
    } while (err == HSMC_RETRY);
    return err;
}
