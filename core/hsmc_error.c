/*
 * Error texts, the context's last-error record and logging.
 */
#include <stdio.h>
#include <string.h>

#include "hsmc_internal.h"

typedef struct {
    hsmc_err_t err;
    const char *name;
    const char *text;
} hsmc_err_entry_t;

static const hsmc_err_entry_t hsmc_err_table[] = {
    {HSMC_OK, "HSMC_OK", "success"},
    {HSMC_ERR_ARG, "HSMC_ERR_ARG", "invalid argument"},
    {HSMC_ERR_BUFFER, "HSMC_ERR_BUFFER", "output buffer too small"},
    {HSMC_ERR_STATE, "HSMC_ERR_STATE", "context not open (or already open)"},
    {HSMC_ERR_CONFIG, "HSMC_ERR_CONFIG", "configuration incomplete or contradictory"},
    {HSMC_ERR_LIMIT, "HSMC_ERR_LIMIT", "token reported more than a compile-time limit allows"},
    {HSMC_ERR_URI, "HSMC_ERR_URI", "malformed PKCS#11 URI"},
    {HSMC_ERR_MODULE_LOAD, "HSMC_ERR_MODULE_LOAD", "PKCS#11 module could not be loaded"},
    {HSMC_ERR_MODULE_INVALID, "HSMC_ERR_MODULE_INVALID", "file is not a PKCS#11 module"},
    {HSMC_ERR_MODULE_INIT, "HSMC_ERR_MODULE_INIT", "PKCS#11 module failed to initialise"},
    {HSMC_ERR_TOKEN_NOT_FOUND, "HSMC_ERR_TOKEN_NOT_FOUND", "no token matches the selection"},
    {HSMC_ERR_TOKEN_AMBIGUOUS, "HSMC_ERR_TOKEN_AMBIGUOUS", "more than one token matches the selection"},
    {HSMC_ERR_TOKEN_NOT_PRESENT, "HSMC_ERR_TOKEN_NOT_PRESENT", "token not present (removed)"},
    {HSMC_ERR_PIN_SOURCE, "HSMC_ERR_PIN_SOURCE", "PIN could not be read from its source"},
    {HSMC_ERR_PIN_INCORRECT, "HSMC_ERR_PIN_INCORRECT", "PIN incorrect"},
    {HSMC_ERR_PIN_LOCKED, "HSMC_ERR_PIN_LOCKED", "user PIN locked"},
    {HSMC_ERR_PIN_FINAL_TRY, "HSMC_ERR_PIN_FINAL_TRY", "login refused: one more wrong PIN would lock the token"},
    {HSMC_ERR_PIN_EXPIRED, "HSMC_ERR_PIN_EXPIRED", "PIN must be changed before use"},
    {HSMC_ERR_PIN_REFUSED, "HSMC_ERR_PIN_REFUSED", "PIN given where it must not be"},
    {HSMC_ERR_NOT_LOGGED_IN, "HSMC_ERR_NOT_LOGGED_IN", "operation needs a login and no PIN source was given"},
    {HSMC_ERR_SESSION, "HSMC_ERR_SESSION", "session could not be opened"},
    {HSMC_ERR_BUSY, "HSMC_ERR_BUSY", "all sessions busy"},
    {HSMC_ERR_RECOVERY, "HSMC_ERR_RECOVERY", "lost session or token could not be recovered"},
    {HSMC_ERR_OBJECT_NOT_FOUND, "HSMC_ERR_OBJECT_NOT_FOUND", "no object matches"},
    {HSMC_ERR_OBJECT_AMBIGUOUS, "HSMC_ERR_OBJECT_AMBIGUOUS", "more than one object matches"},
    {HSMC_ERR_UNSUPPORTED, "HSMC_ERR_UNSUPPORTED", "token does not support this mechanism or function"},
    {HSMC_ERR_TOKEN, "HSMC_ERR_TOKEN", "token returned an error"},
    {HSMC_ERR_IO, "HSMC_ERR_IO", "file or terminal I/O failed"},
    {HSMC_ERR_PORT, "HSMC_ERR_PORT", "not available on this platform port"},
    {HSMC_ERR_INTERNAL, "HSMC_ERR_INTERNAL", "internal error (please report)"},
    {HSMC_ERR_FORMAT, "HSMC_ERR_FORMAT", "input is not well-formed or breaks the strict CBOR/COSE rules"},
    {HSMC_ERR_EXISTS, "HSMC_ERR_EXISTS", "an object with that label already exists"},
    {HSMC_ERR_KEY_ATTRS, "HSMC_ERR_KEY_ATTRS", "token made a key with unsafe attributes; it was destroyed"},
    {HSMC_ERR_KEY_USAGE, "HSMC_ERR_KEY_USAGE", "key is not allowed this operation"},
    {HSMC_ERR_SIGNATURE, "HSMC_ERR_SIGNATURE", "signature does not verify"},
    {HSMC_ERR_DECRYPT, "HSMC_ERR_DECRYPT", "decryption failed: wrong key, tampered data or wrong AAD"},
    {HSMC_ERR_TRUNCATED, "HSMC_ERR_TRUNCATED", "stream ended before its last chunk"},
    {HSMC_ERR_SEQUENCE, "HSMC_ERR_SEQUENCE", "stream chunk out of order, from another stream, or after the last one"},
    {HSMC_ERR_POLICY, "HSMC_ERR_POLICY", "refused by policy"},
    {HSMC_ERR_CSR, "HSMC_ERR_CSR", "CSR malformed (not DER/PEM, truncated, bad attributes)"},
    {HSMC_ERR_CSR_EXT, "HSMC_ERR_CSR_EXT", "CSR asks for CA powers its profile does not grant"},
    {HSMC_ERR_KEY_WEAK, "HSMC_ERR_KEY_WEAK", "key too weak for the profile (RSA size or curve)"},
    {HSMC_ERR_CERT_KEY, "HSMC_ERR_CERT_KEY", "certificate public key does not match the key"},
    {HSMC_ERR_AUDIT_CHAIN, "HSMC_ERR_AUDIT_CHAIN", "audit chain broken: a record was removed, reordered, inserted or repeated"},
};

static const hsmc_err_entry_t *hsmc_err_find(hsmc_err_t err)
{
    size_t i;
    for (i = 0; i < sizeof hsmc_err_table / sizeof hsmc_err_table[0]; i++) {
        if (hsmc_err_table[i].err == err)
            return &hsmc_err_table[i];
    }
    return NULL;
}

const char *hsmc_strerror(hsmc_err_t err)
{
    const hsmc_err_entry_t *e = hsmc_err_find(err);
    return e != NULL ? e->text : "unknown error";
}

const char *hsmc_err_name(hsmc_err_t err)
{
    const hsmc_err_entry_t *e = hsmc_err_find(err);
    if (e != NULL)
        return e->name;
    return err == HSMC_RETRY ? "HSMC_RETRY" : "HSMC_ERR_UNKNOWN";
}

void hsmc__log(hsmc_t *h, hsmc_log_level_t lvl, const char *fmt, ...)
{
    char line[HSMC_DETAIL_LEN];
    va_list ap;

    if (h == NULL || h->log == NULL || lvl > h->log_level)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    h->log(h->log_user, lvl, line);
}

hsmc_err_t hsmc__fail(hsmc_t *h, hsmc_err_t err, CK_RV rv, const char *fmt, ...)
{
    va_list ap;

    if (h == NULL)
        return err;
    h->last_err = err;
    h->last_rv = rv;
    va_start(ap, fmt);
    (void)vsnprintf(h->detail, sizeof h->detail, fmt, ap);
    va_end(ap);
    /* The detail text is the log line: no second formatting pass (stack). */
    if (HSMC_LOG_LEVEL >= (int)HSMC_LOG_ERROR && h->log != NULL)
        h->log(h->log_user, HSMC_LOG_ERROR, h->detail);
    return err;
}

hsmc_err_t hsmc__fail_detail(hsmc_t *h, hsmc_err_t err)
{
    h->last_err = err;
    h->last_rv = CKR_OK;
    if (h->detail[0] == '\0')
        (void)snprintf(h->detail, sizeof h->detail, "%s", hsmc_strerror(err));
    if (HSMC_LOG_LEVEL >= (int)HSMC_LOG_ERROR && h->log != NULL)
        h->log(h->log_user, HSMC_LOG_ERROR, h->detail);
    return err;
}

void hsmc__clear_err(hsmc_t *h)
{
    h->last_err = HSMC_OK;
    h->last_rv = CKR_OK;
    h->detail[0] = '\0';
}

/* memset called through a volatile pointer: the compiler cannot know which
 * function runs, so it cannot drop the stores as dead, and the wipe runs at
 * memset's word-wide speed (a volatile byte loop costs ~4 instructions a
 * byte: ~2,000 per COSE scratch buffer). */
static void *(*const volatile hsmc_wipe_fn)(void *, int, size_t) = memset;

void hsmc__wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        (void)hsmc_wipe_fn(p, 0, n);
}

hsmc_err_t hsmc_last_err(const hsmc_t *h)
{
    return h == NULL ? HSMC_ERR_ARG : h->last_err;
}

CK_RV hsmc_last_rv(const hsmc_t *h)
{
    return h == NULL ? CKR_OK : h->last_rv;
}

const char *hsmc_detail(const hsmc_t *h)
{
    if (h == NULL)
        return "no context";
    return h->detail;
}

int hsmc__rv_is_loss(CK_RV rv)
{
    return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
           rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT ||
           rv == CKR_USER_NOT_LOGGED_IN;
}

hsmc_err_t hsmc_map_rv(hsmc_t *h, CK_RV rv, const char *what)
{
    hsmc_err_t err;

    if (rv == CKR_OK)
        return HSMC_OK;
    switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
        err = HSMC_ERR_PIN_INCORRECT;
        break;
    case CKR_PIN_LOCKED:
        err = HSMC_ERR_PIN_LOCKED;
        break;
    case CKR_PIN_EXPIRED:
        err = HSMC_ERR_PIN_EXPIRED;
        break;
    case CKR_USER_NOT_LOGGED_IN:
        err = HSMC_ERR_NOT_LOGGED_IN;
        break;
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_FUNCTION_NOT_SUPPORTED:
        err = HSMC_ERR_UNSUPPORTED;
        break;
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_RECOGNIZED:
        err = HSMC_ERR_TOKEN_NOT_PRESENT;
        break;
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_COUNT:
        err = HSMC_ERR_SESSION;
        break;
    case CKR_BUFFER_TOO_SMALL:
        err = HSMC_ERR_BUFFER;
        break;
    case CKR_CRYPTOKI_NOT_INITIALIZED:
        err = HSMC_ERR_STATE;
        break;
    default:
        err = HSMC_ERR_TOKEN;
        break;
    }
    return hsmc__fail(h, err, rv, "%s: %s (0x%lx)", what != NULL ? what : "PKCS#11 call",
                      hsmc_ckr_name(rv), (unsigned long)rv);
}

size_t hsmc__field_len(const CK_UTF8CHAR *field, size_t size)
{
    while (size > 0 && (field[size - 1] == ' ' || field[size - 1] == '\0'))
        size--;
    return size;
}

int hsmc__field_eq(const CK_UTF8CHAR *field, size_t size, const char *s)
{
    size_t n = hsmc__field_len(field, size);
    size_t sl = strlen(s);
    /* The selection may itself end in blanks the token padded away. */
    while (sl > 0 && s[sl - 1] == ' ')
        sl--;
    return n == sl && memcmp(field, s, n) == 0;
}
