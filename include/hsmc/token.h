/**
 * @file token.h
 * @brief The hsmc context: module, token selection, login, session pool.
 *
 * Typical use:
 * @code
 *   hsmc_cfg_t cfg;  hsmc_t h;
 *   hsmc_cfg_init(&cfg);
 *   cfg.module_path = "/usr/lib/softhsm/libsofthsm2.so";
 *   cfg.token.label = "gw";
 *   cfg.pin.kind = HSMC_PIN_FILE;  cfg.pin.arg = "/run/secrets/pin";
 *   hsmc_init(&h);
 *   if (hsmc_open(&h, &cfg) != HSMC_OK) puts(hsmc_detail(&h));
 *   ...
 *   hsmc_close(&h);
 * @endcode
 *
 * Threads: one hsmc_t may be used by several threads at once (with
 * HSMC_THREADS); each operation borrows one session of a fixed pool of
 * HSMC_MAX_SESSIONS. hsmc_open and hsmc_close must not race with other
 * calls on the same context. The last-error fields are per context: with
 * threads they describe some recent failure, not necessarily yours.
 */
#ifndef HSMC_TOKEN_H
#define HSMC_TOKEN_H

#include "hsmc/types.h"
#include "hsmc/uri.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Where the user PIN comes from. The PIN is never stored in argv or logs. */
typedef enum hsmc_pin_kind {
    HSMC_PIN_NONE = 0,  /**< do not log in (public objects only) */
    HSMC_PIN_VALUE,     /**< bytes in memory: value/value_len (caller keeps them alive) */
    HSMC_PIN_FILE,      /**< first line of the file named by arg */
    HSMC_PIN_FD,        /**< first line read from file descriptor fd (read once) */
    HSMC_PIN_ENV,       /**< environment variable named by arg */
    HSMC_PIN_CALLBACK,  /**< cb(cb_user, buf, cap, &len) */
    HSMC_PIN_TTY,       /**< prompt arg on the terminal, no echo (read once) */
    HSMC_PIN_PROTECTED  /**< token has a protected authentication path (PIN pad) */
} hsmc_pin_kind_t;

/**
 * PIN callback: write at most `cap` bytes of PIN into `buf`, set `*len`.
 * Return HSMC_OK or an error (HSMC_ERR_PIN_SOURCE is typical).
 */
typedef hsmc_err_t (*hsmc_pin_cb_t)(void *user, char *buf, size_t cap, size_t *len);

/** A PIN source. Zero-initialised means HSMC_PIN_NONE. */
typedef struct hsmc_pin_src {
    hsmc_pin_kind_t kind;
    const char *arg;        /**< FILE: path; ENV: variable name; TTY: prompt */
    int fd;                 /**< FD: descriptor */
    const char *value;      /**< VALUE: the PIN bytes */
    size_t value_len;       /**< VALUE: their length */
    hsmc_pin_cb_t cb;       /**< CALLBACK */
    void *cb_user;          /**< CALLBACK: passed back */
} hsmc_pin_src_t;

/**
 * Parse a pin-source specification: "file:/path" (or a bare absolute path,
 * as RFC 7512 examples use), "env:NAME", "fd:N", "tty" or "tty:prompt".
 * `src` points into `spec`, which must outlive it.
 * @return HSMC_OK, HSMC_ERR_ARG (NULL), HSMC_ERR_PIN_SOURCE (unknown form).
 */
hsmc_err_t hsmc_pin_src_parse(hsmc_pin_src_t *src, const char *spec);

/** Which token to use. NULL / 0 fields match anything; with every field
 *  empty ("any token"), tokens not yet initialised (no
 *  CKF_TOKEN_INITIALIZED, e.g. SoftHSM2's spare slot) are left out. */
typedef struct hsmc_token_sel {
    const char *label;        /**< CK_TOKEN_INFO label, trailing blanks ignored */
    const char *serial;       /**< serialNumber */
    const char *model;        /**< model */
    const char *manufacturer; /**< manufacturerID */
    int has_slot_id;          /**< 1: also require this slot id */
    CK_SLOT_ID slot_id;
} hsmc_token_sel_t;

/** hsmc_cfg_t.flags */
#define HSMC_CFG_READ_ONLY 0x1u /**< open read-only sessions */
#define HSMC_CFG_NO_TOKEN 0x2u  /**< load and initialise the module only (listing) */

/** Open-time configuration; may be discarded after hsmc_open returns. */
typedef struct hsmc_cfg {
    const char *module_path;  /**< module file (POSIX port); ignored by the static port */
    hsmc_token_sel_t token;   /**< token selection */
    hsmc_pin_src_t pin;       /**< user PIN source */
    unsigned flags;           /**< HSMC_CFG_* */
    hsmc_log_fn log;          /**< optional log callback */
    void *log_user;           /**< passed to log */
    hsmc_log_level_t log_level; /**< most verbose level passed to log */
} hsmc_cfg_t;

/** Set every field to its default (no module, any token, no PIN). */
void hsmc_cfg_init(hsmc_cfg_t *cfg);

/**
 * Fill cfg from a parsed URI: module-path, token/serial/model/manufacturer/
 * slot-id, pin-source or pin-value. Fields the URI lacks are left as they
 * are, so defaults can be set first. cfg points into uri afterwards.
 * @return HSMC_OK; HSMC_ERR_ARG; HSMC_ERR_URI when the URI gives both
 *         pin-source and pin-value; HSMC_ERR_PIN_SOURCE for a bad
 *         pin-source; HSMC_ERR_CONFIG for module-name (not supported:
 *         give module-path).
 */
hsmc_err_t hsmc_cfg_from_uri(hsmc_cfg_t *cfg, const hsmc_uri_t *uri);

/** Opaque storage for one port mutex. */
typedef struct hsmc_mutex_storage {
    union {
        long long ll;
        void *p;
        double d;
        unsigned char b[HSMC_PORT_MUTEX_BYTES];
    } u;
} hsmc_mutex_storage_t;

/** One pool entry (private). */
typedef struct hsmc_session_slot {
    CK_SESSION_HANDLE handle;
    unsigned long generation; /**< context generation when opened */
    unsigned char open;
    unsigned char busy;
} hsmc_session_slot_t;

/** The context. Allocate it yourself; treat every field as private. */
typedef struct hsmc {
    unsigned state;                   /* 0 closed, 1 open */
    CK_FUNCTION_LIST_PTR fl;          /* module's function list */
    int module;                       /* index in the process module registry */
    CK_SLOT_ID slot;                  /* selected slot */
    int has_slot;
    unsigned flags;                   /* HSMC_CFG_* */
    /* Selection kept for re-selection after token loss. */
    char sel_label[33], sel_serial[17], sel_model[17], sel_manufacturer[33];
    int sel_has_slot_id;
    CK_SLOT_ID sel_slot_id;
    /* PIN source kept for re-login (never the PIN, except read-once sources). */
    hsmc_pin_kind_t pin_kind;
    char pin_arg[HSMC_MAX_PATH_LEN + 1];
    int pin_fd;
    const char *pin_value;
    size_t pin_value_len;
    hsmc_pin_cb_t pin_cb;
    void *pin_cb_user;
    unsigned char pin_cache[HSMC_MAX_PIN_LEN]; /* FD/TTY only; wiped at close */
    size_t pin_cache_len;
    /* Pool. */
    hsmc_mutex_storage_t lock;
    hsmc_session_slot_t sess[HSMC_MAX_SESSIONS];
    unsigned long generation;         /* bumped by every recovery */
    unsigned long recoveries;         /* successful recoveries so far */
    unsigned long pid;                /* process that opened the sessions */
    int logged_in;
    /* Capability facts learnt by probing (see probe.h). */
    unsigned char gcm_layout;         /* 0 unknown, 1 with ulIvBits, 2 without */
    /* Last error. */
    CK_RV last_rv;
    hsmc_err_t last_err;
    char detail[HSMC_DETAIL_LEN];
    /* Logging. */
    hsmc_log_fn log;
    void *log_user;
    hsmc_log_level_t log_level;
} hsmc_t;

/** Prepare a context (all closed). Cannot fail. */
void hsmc_init(hsmc_t *h);

/**
 * Load and initialise the module, select the token, open a first session
 * and log in when cfg->pin is set. On any failure everything done so far
 * is undone (no session, module reference or login is left behind), and
 * hsmc_detail()/hsmc_last_rv() explain it.
 *
 * Module sharing: when the module was already initialised by another user
 * in the process (CKR_CRYPTOKI_ALREADY_INITIALIZED) hsmc adopts it and
 * never finalises it. Login: refused with HSMC_ERR_PIN_FINAL_TRY,
 * HSMC_ERR_PIN_LOCKED or HSMC_ERR_PIN_EXPIRED according to the token flags
 * before any attempt; a wrong PIN is tried exactly once.
 *
 * @return HSMC_OK or HSMC_ERR_ARG, HSMC_ERR_STATE (already open),
 *   HSMC_ERR_CONFIG, HSMC_ERR_MODULE_LOAD, HSMC_ERR_MODULE_INVALID,
 *   HSMC_ERR_MODULE_INIT, HSMC_ERR_LIMIT, HSMC_ERR_TOKEN_NOT_FOUND,
 *   HSMC_ERR_TOKEN_AMBIGUOUS, HSMC_ERR_SESSION, HSMC_ERR_PIN_*.
 */
hsmc_err_t hsmc_open(hsmc_t *h, const hsmc_cfg_t *cfg);

/**
 * Close the context's sessions, release the module (finalising it only if
 * hsmc initialised it and no other hsmc_t uses it) and wipe cached PINs.
 * Accepts NULL and a closed context.
 */
void hsmc_close(hsmc_t *h);

/** Last error on this context (HSMC_OK when none). NULL gives HSMC_ERR_ARG. */
hsmc_err_t hsmc_last_err(const hsmc_t *h);
/** Last PKCS#11 return value behind an error (CKR_OK when none). */
CK_RV hsmc_last_rv(const hsmc_t *h);
/** Detail text of the last error, e.g. "C_Login: CKR_PIN_INCORRECT". Never NULL. */
const char *hsmc_detail(const hsmc_t *h);
/** Number of times lost sessions/tokens were recovered since open. */
unsigned long hsmc_recoveries(const hsmc_t *h);

/** The module's function list, for calls hsmc does not wrap. NULL when closed. */
CK_FUNCTION_LIST_PTR hsmc_functions(const hsmc_t *h);
/** The selected slot. @return HSMC_OK, HSMC_ERR_ARG, HSMC_ERR_STATE (no token). */
hsmc_err_t hsmc_slot(const hsmc_t *h, CK_SLOT_ID *slot);
/** 1 when this context initialised the module (and will finalise it), else 0. */
int hsmc_owns_module(const hsmc_t *h);

/* ---- Module-level queries (work with HSMC_CFG_NO_TOKEN too) ---------- */

/** C_GetInfo. @return HSMC_OK, HSMC_ERR_ARG, HSMC_ERR_STATE, HSMC_ERR_TOKEN. */
hsmc_err_t hsmc_module_info(hsmc_t *h, CK_INFO *info);

/**
 * List slots (token_present: only slots with a token).
 * @param slots out array of cap entries, or NULL to ask for the count
 * @param n     out: number of slots
 * @return HSMC_OK, HSMC_ERR_ARG, HSMC_ERR_STATE, HSMC_ERR_BUFFER (n set),
 *         HSMC_ERR_LIMIT (more than HSMC_MAX_SLOTS), HSMC_ERR_TOKEN.
 */
hsmc_err_t hsmc_slot_list(hsmc_t *h, int token_present, CK_SLOT_ID *slots,
                          size_t cap, size_t *n);
/** C_GetSlotInfo for `slot`. */
hsmc_err_t hsmc_slot_info(hsmc_t *h, CK_SLOT_ID slot, CK_SLOT_INFO *info);
/** C_GetTokenInfo for `slot`. HSMC_ERR_TOKEN_NOT_PRESENT when empty. */
hsmc_err_t hsmc_token_info(hsmc_t *h, CK_SLOT_ID slot, CK_TOKEN_INFO *info);
/**
 * Mechanisms of `slot` (size-only pass when mechs is NULL).
 * @return as hsmc_slot_list, limit HSMC_MAX_MECHANISMS.
 */
hsmc_err_t hsmc_mechanism_list(hsmc_t *h, CK_SLOT_ID slot, CK_MECHANISM_TYPE *mechs,
                               size_t cap, size_t *n);
/** C_GetMechanismInfo. HSMC_ERR_UNSUPPORTED when the slot lacks it. */
hsmc_err_t hsmc_mechanism_info(hsmc_t *h, CK_SLOT_ID slot, CK_MECHANISM_TYPE mech,
                               CK_MECHANISM_INFO *info);

/* ---- Sessions, for operations built on hsmc ------------------------- */

/** A borrowed pool session. */
typedef struct hsmc_sess {
    hsmc_t *h;
    CK_SESSION_HANDLE handle;
    int index;
    unsigned long generation;
    unsigned attempts;
} hsmc_sess_t;

/**
 * Borrow a logged-in session of the selected token (waits up to
 * HSMC_SESSION_WAIT_MS for a free one). Notices a fork and re-initialises
 * first. Pair with hsmc_session_end().
 * @return HSMC_OK, HSMC_ERR_ARG, HSMC_ERR_STATE, HSMC_ERR_BUSY,
 *         HSMC_ERR_SESSION, HSMC_ERR_PIN_*, HSMC_ERR_RECOVERY.
 */
hsmc_err_t hsmc_session_begin(hsmc_t *h, hsmc_sess_t *s);

/**
 * Return a session after one PKCS#11 call whose result was `rv` (`what`
 * names the call for the detail text). If `rv` says the session or token
 * was lost and retries remain, hsmc recovers (reopen, log in again) and
 * returns HSMC_RETRY: call hsmc_session_begin() again with the same `s`
 * and repeat the call; handles found before must be looked up again.
 * @return HSMC_OK when rv == CKR_OK; HSMC_RETRY; otherwise the mapped
 *         error (HSMC_ERR_RECOVERY when retries are exhausted).
 */
hsmc_err_t hsmc_session_end(hsmc_sess_t *s, CK_RV rv, const char *what);

/** Positive, never returned to applications by hsmc's own functions. */
#define HSMC_RETRY ((hsmc_err_t)1)

/**
 * Map a CK_RV to an hsmc error and record it (rv, "what: CKR_NAME") in
 * the context. CKR_OK maps to HSMC_OK and records nothing.
 */
hsmc_err_t hsmc_map_rv(hsmc_t *h, CK_RV rv, const char *what);

/** Fill `out` (len bytes) from the token RNG (C_GenerateRandom). */
hsmc_err_t hsmc_random(hsmc_t *h, uint8_t *out, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* HSMC_TOKEN_H */
