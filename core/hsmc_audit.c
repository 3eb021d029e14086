/*
 * Tamper-evident audit trail (audit.h): deterministic CBOR payloads,
 * COSE_Sign1 records chained by the SHA-256 of the previous record, and a
 * verifier that walks a CBOR sequence of them record by record.
 */
#include "hsmc_internal.h"

/* Keys 0..7 must all be present. */
#define HSMC_AUDIT_REQUIRED 0xffu
#define HSMC_AUDIT_K_LAST HSMC_AUDIT_K_CEREMONY

#define HSMC_AUDIT_MODE_KEY 1
#define HSMC_AUDIT_MODE_SPKI 2

/* Field names for messages, indexed by payload key. */
static const char *const hsmc_audit_key_names[HSMC_AUDIT_K_LAST + 1] = {
    "version",  "seq",  "prev",      "time",   "op",  "signer", "result",      "result text",
    "operator", "role", "device id", "key id", "key", "serial", "fingerprint", "ceremony"};

void hsmc_audit_record_init(hsmc_audit_record_t *rec)
{
    if (rec == NULL)
        return;
    memset(rec, 0, sizeof *rec);
    rec->time = -1;
    rec->result = HSMC_OK;
}

hsmc_view_t hsmc_audit_text(const char *s)
{
    hsmc_view_t v;
    v.ptr = (const uint8_t *)s;
    v.len = s != NULL ? strlen(s) : 0;
    return v;
}

/* 1 when the view has no control characters (UTF-8 is checked by the codec). */
static int hsmc_audit_printable(hsmc_view_t v)
{
    size_t i;
    for (i = 0; i < v.len; i++) {
        if (v.ptr[i] < 0x20u || v.ptr[i] == 0x7fu)
            return 0;
    }
    return 1;
}

/* ---- Encoding -------------------------------------------------------------- */

/* Check the caller's fields before encoding; the detail names the field. */
HSMC_NOINLINE static hsmc_err_t hsmc_audit_check_in(hsmc_t *h, const char *fn,
                                                    const hsmc_audit_record_t *rec,
                                                    hsmc_view_t signer, hsmc_view_t result_text)
{
    const hsmc_view_t *f[HSMC_AUDIT_K_LAST + 1];
    unsigned k;

    memset((void *)f, 0, sizeof f);
    f[HSMC_AUDIT_K_OP] = &rec->op;
    f[HSMC_AUDIT_K_SIGNER] = &signer;
    f[HSMC_AUDIT_K_RESULT_TEXT] = &result_text;
    f[HSMC_AUDIT_K_OPERATOR] = &rec->operator_id;
    f[HSMC_AUDIT_K_ROLE] = &rec->role;
    f[HSMC_AUDIT_K_DEVICE] = &rec->device_id;
    f[HSMC_AUDIT_K_KEY_ID] = &rec->key_id;
    f[HSMC_AUDIT_K_KEY] = &rec->key;
    f[HSMC_AUDIT_K_SERIAL] = &rec->serial;
    f[HSMC_AUDIT_K_FINGERPRINT] = &rec->fingerprint;
    f[HSMC_AUDIT_K_CEREMONY] = &rec->ceremony;
    for (k = 0; k <= HSMC_AUDIT_K_LAST; k++) {
        if (f[k] == NULL)
            continue;
        if (f[k]->ptr == NULL && f[k]->len > 0)
            return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: %s has a length but no bytes", fn,
                              hsmc_audit_key_names[k]);
        if (k != HSMC_AUDIT_K_KEY_ID && k != HSMC_AUDIT_K_SERIAL && k != HSMC_AUDIT_K_FINGERPRINT &&
            !hsmc_audit_printable(*f[k]))
            return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                              "%s: %s contains control characters (newline, tab, ...)", fn,
                              hsmc_audit_key_names[k]);
    }
    if (rec->op.len == 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: the record needs an op (operation name)",
                          fn);
    if (signer.len == 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: the record needs a signer (key label)", fn);
    if (rec->fingerprint.len != 0 && rec->fingerprint.len != HSMC_AUDIT_HASH_LEN)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: the fingerprint is the SHA-256 of the certificate (32 bytes), "
                          "not %lu bytes",
                          fn, (unsigned long)rec->fingerprint.len);
    if (rec->result > 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "%s: result %d is not an hsmc_err_t (0 or negative)", fn,
                          (int)rec->result);
    return HSMC_OK;
}

/* Optional text or bytes: key and value only when present. */
static void hsmc_audit_put_opt(hsmc_cbor_enc_t *e, unsigned key, hsmc_view_t v, int text)
{
    if (v.len == 0)
        return;
    (void)hsmc_cbor_put_uint(e, key);
    if (text)
        (void)hsmc_cbor_put_tstr(e, (const char *)v.ptr, v.len);
    else
        (void)hsmc_cbor_put_bstr(e, v.ptr, v.len);
}

/*
 * The payload map of rec with the given chain fields. Keys are the small
 * integers 0..15, whose one-byte encodings sort as the numbers do.
 */
HSMC_NOINLINE static hsmc_err_t hsmc_audit_put(hsmc_t *h, const char *fn,
                                               const hsmc_audit_record_t *rec, uint64_t seq,
                                               const uint8_t *prev, hsmc_view_t signer,
                                               uint8_t *out, size_t cap, size_t *len)
{
    hsmc_cbor_enc_t e;
    hsmc_view_t text = rec->result_text;
    size_t n = 8, need = 0;
    hsmc_err_t err;

    if (text.len == 0)
        text = hsmc_audit_text(hsmc_strerror(rec->result));
    err = hsmc_audit_check_in(h, fn, rec, signer, text);
    if (err != HSMC_OK)
        return err;
    n += rec->operator_id.len != 0;
    n += rec->role.len != 0;
    n += rec->device_id.len != 0;
    n += rec->key_id.len != 0;
    n += rec->key.len != 0;
    n += rec->serial.len != 0;
    n += rec->fingerprint.len != 0;
    n += rec->ceremony.len != 0;

    hsmc_cbor_enc_init(&e, out, cap);
    (void)hsmc_cbor_put_map(&e, n);
    (void)hsmc_cbor_put_uint(&e, HSMC_AUDIT_K_VERSION);
    (void)hsmc_cbor_put_uint(&e, HSMC_AUDIT_VERSION);
    (void)hsmc_cbor_put_uint(&e, HSMC_AUDIT_K_SEQ);
    (void)hsmc_cbor_put_uint(&e, seq);
    (void)hsmc_cbor_put_uint(&e, HSMC_AUDIT_K_PREV);
    (void)hsmc_cbor_put_bstr(&e, prev, HSMC_AUDIT_HASH_LEN);
    (void)hsmc_cbor_put_uint(&e, HSMC_AUDIT_K_TIME);
    (void)hsmc_cbor_put_int(&e, rec->time);
    (void)hsmc_cbor_put_uint(&e, HSMC_AUDIT_K_OP);
    (void)hsmc_cbor_put_tstr(&e, (const char *)rec->op.ptr, rec->op.len);
    (void)hsmc_cbor_put_uint(&e, HSMC_AUDIT_K_SIGNER);
    (void)hsmc_cbor_put_tstr(&e, (const char *)signer.ptr, signer.len);
    (void)hsmc_cbor_put_uint(&e, HSMC_AUDIT_K_RESULT);
    (void)hsmc_cbor_put_int(&e, (int64_t)rec->result);
    (void)hsmc_cbor_put_uint(&e, HSMC_AUDIT_K_RESULT_TEXT);
    (void)hsmc_cbor_put_tstr(&e, (const char *)text.ptr, text.len);
    hsmc_audit_put_opt(&e, HSMC_AUDIT_K_OPERATOR, rec->operator_id, 1);
    hsmc_audit_put_opt(&e, HSMC_AUDIT_K_ROLE, rec->role, 1);
    hsmc_audit_put_opt(&e, HSMC_AUDIT_K_DEVICE, rec->device_id, 1);
    hsmc_audit_put_opt(&e, HSMC_AUDIT_K_KEY_ID, rec->key_id, 0);
    hsmc_audit_put_opt(&e, HSMC_AUDIT_K_KEY, rec->key, 1);
    hsmc_audit_put_opt(&e, HSMC_AUDIT_K_SERIAL, rec->serial, 0);
    hsmc_audit_put_opt(&e, HSMC_AUDIT_K_FINGERPRINT, rec->fingerprint, 0);
    hsmc_audit_put_opt(&e, HSMC_AUDIT_K_CEREMONY, rec->ceremony, 1);
    err = hsmc_cbor_enc_finish(&e, &need);
    *len = need;
    if (err == HSMC_ERR_ARG)
        return hsmc__fail(h, err, CKR_OK, "%s: a text field is not valid UTF-8", fn);
    if (need > HSMC_AUDIT_PAYLOAD_MAX)
        return hsmc__fail(h, HSMC_ERR_LIMIT, CKR_OK,
                          "%s: the record takes %lu bytes, more than HSMC_AUDIT_PAYLOAD_MAX "
                          "(%lu): shorten its texts",
                          fn, (unsigned long)need, (unsigned long)HSMC_AUDIT_PAYLOAD_MAX);
    if (err != HSMC_OK && out != NULL)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: the payload takes %lu bytes; the buffer has %lu", fn,
                          (unsigned long)need, (unsigned long)cap);
    return HSMC_OK;
}

hsmc_err_t hsmc_audit_encode(hsmc_t *h, const hsmc_audit_record_t *rec, uint8_t *out, size_t cap,
                             size_t *len)
{
    if (rec == NULL || len == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "hsmc_audit_encode: rec and len must be given");
    return hsmc_audit_put(h, "hsmc_audit_encode", rec, rec->seq, rec->prev, rec->signer, out, cap,
                          len);
}

/* ---- Decoding -------------------------------------------------------------- */

/* Read a non-empty text (printable) or byte string into *v. */
static hsmc_err_t hsmc_audit_get_str(hsmc_t *h, const char *fn, hsmc_cbor_dec_t *d, unsigned key,
                                     int text, hsmc_view_t *v)
{
    const char *t = NULL;
    hsmc_err_t err;

    if (text) {
        err = hsmc_cbor_get_tstr(d, &t, &v->len);
        v->ptr = (const uint8_t *)t;
    } else {
        err = hsmc_cbor_get_bstr(d, &v->ptr, &v->len);
    }
    if (err != HSMC_OK)
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK, "%s: %s is not a %s string (%s)", fn,
                          hsmc_audit_key_names[key], text ? "text" : "byte",
                          d->err_msg != NULL ? d->err_msg : "wrong type");
    if (v->len == 0)
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK, "%s: %s is present but empty", fn,
                          hsmc_audit_key_names[key]);
    if (text && !hsmc_audit_printable(*v))
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK, "%s: %s contains control characters", fn,
                          hsmc_audit_key_names[key]);
    if ((key == HSMC_AUDIT_K_PREV || key == HSMC_AUDIT_K_FINGERPRINT) &&
        v->len != HSMC_AUDIT_HASH_LEN)
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK, "%s: %s is %lu bytes, not 32", fn,
                          hsmc_audit_key_names[key], (unsigned long)v->len);
    return HSMC_OK;
}

/* Read the value of payload key `key` into rec. */
HSMC_NOINLINE static hsmc_err_t hsmc_audit_get_value(hsmc_t *h, const char *fn, hsmc_cbor_dec_t *d,
                                                     unsigned key, hsmc_audit_record_t *rec)
{
    hsmc_view_t prev = {NULL, 0};
    uint64_t u = 0;
    int64_t i = 0;
    hsmc_err_t err;

    switch (key) {
    case HSMC_AUDIT_K_VERSION:
        if (hsmc_cbor_get_uint(d, &u) != HSMC_OK || u != HSMC_AUDIT_VERSION)
            return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: version is not %u (a newer format, or damaged)", fn,
                              HSMC_AUDIT_VERSION);
        return HSMC_OK;
    case HSMC_AUDIT_K_SEQ:
        if (hsmc_cbor_get_uint(d, &rec->seq) != HSMC_OK)
            return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK, "%s: seq is not an unsigned integer", fn);
        return HSMC_OK;
    case HSMC_AUDIT_K_PREV:
        err = hsmc_audit_get_str(h, fn, d, key, 0, &prev);
        if (err == HSMC_OK)
            memcpy(rec->prev, prev.ptr, HSMC_AUDIT_HASH_LEN);
        return err;
    case HSMC_AUDIT_K_TIME:
        if (hsmc_cbor_get_int(d, &rec->time) != HSMC_OK || rec->time < -1)
            return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: time is not an integer >= -1 (seconds since 1970)", fn);
        return HSMC_OK;
    case HSMC_AUDIT_K_RESULT:
        if (hsmc_cbor_get_int(d, &i) != HSMC_OK || i > 0 || i < -65535)
            return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: result is not an hsmc error code (0 or negative)", fn);
        rec->result = (hsmc_err_t)i;
        return HSMC_OK;
    case HSMC_AUDIT_K_OP:
        return hsmc_audit_get_str(h, fn, d, key, 1, &rec->op);
    case HSMC_AUDIT_K_SIGNER:
        return hsmc_audit_get_str(h, fn, d, key, 1, &rec->signer);
    case HSMC_AUDIT_K_RESULT_TEXT:
        return hsmc_audit_get_str(h, fn, d, key, 1, &rec->result_text);
    case HSMC_AUDIT_K_OPERATOR:
        return hsmc_audit_get_str(h, fn, d, key, 1, &rec->operator_id);
    case HSMC_AUDIT_K_ROLE:
        return hsmc_audit_get_str(h, fn, d, key, 1, &rec->role);
    case HSMC_AUDIT_K_DEVICE:
        return hsmc_audit_get_str(h, fn, d, key, 1, &rec->device_id);
    case HSMC_AUDIT_K_KEY_ID:
        return hsmc_audit_get_str(h, fn, d, key, 0, &rec->key_id);
    case HSMC_AUDIT_K_KEY:
        return hsmc_audit_get_str(h, fn, d, key, 1, &rec->key);
    case HSMC_AUDIT_K_SERIAL:
        return hsmc_audit_get_str(h, fn, d, key, 0, &rec->serial);
    case HSMC_AUDIT_K_FINGERPRINT:
        return hsmc_audit_get_str(h, fn, d, key, 0, &rec->fingerprint);
    case HSMC_AUDIT_K_CEREMONY:
        return hsmc_audit_get_str(h, fn, d, key, 1, &rec->ceremony);
    default:
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK, "%s: unknown key %u", fn, key);
    }
}

hsmc_err_t hsmc_audit_decode(hsmc_t *h, hsmc_view_t payload, hsmc_audit_record_t *rec)
{
    static const char fn[] = "hsmc_audit_decode";
    hsmc_cbor_dec_t d;
    size_t n, i;
    uint64_t key;
    unsigned have = 0;
    hsmc_err_t err;

    if (rec == NULL || payload.ptr == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "%s: payload and rec must be given", fn);
    hsmc_audit_record_init(rec);
    if (payload.len > HSMC_AUDIT_PAYLOAD_MAX)
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: the payload is %lu bytes, more than HSMC_AUDIT_PAYLOAD_MAX (%lu)",
                          fn, (unsigned long)payload.len, (unsigned long)HSMC_AUDIT_PAYLOAD_MAX);
    hsmc_cbor_dec_init(&d, payload.ptr, payload.len);
    if (hsmc_cbor_get_map(&d, &n) != HSMC_OK || hsmc_cbor_map_sorted(&d, n) != HSMC_OK)
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: the payload is not a map with keys in ascending order (%s at "
                          "byte %lu)",
                          fn, d.err_msg != NULL ? d.err_msg : "not a map",
                          (unsigned long)d.err_off);
    for (i = 0; i < n; i++) {
        if (hsmc_cbor_get_uint(&d, &key) != HSMC_OK || key > HSMC_AUDIT_K_LAST)
            return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                              "%s: key %lu of the payload is not one of 0..%d", fn,
                              (unsigned long)i, HSMC_AUDIT_K_LAST);
        err = hsmc_audit_get_value(h, fn, &d, (unsigned)key, rec);
        if (err != HSMC_OK)
            return err;
        have |= 1u << key;
    }
    if (hsmc_cbor_dec_finish(&d) != HSMC_OK)
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK, "%s: bytes after the payload map", fn);
    if ((have & HSMC_AUDIT_REQUIRED) != HSMC_AUDIT_REQUIRED) {
        for (i = 0; (have >> i) & 1u; i++)
            ;
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK, "%s: the payload has no %s (key %lu)", fn,
                          hsmc_audit_key_names[i], (unsigned long)i);
    }
    return HSMC_OK;
}

/* ---- Signing --------------------------------------------------------------- */

void hsmc_audit_init(hsmc_audit_t *a, hsmc_t *h, const hsmc_key_t *key)
{
    if (a == NULL)
        return;
    memset(a, 0, sizeof *a);
    hsmc_cose_init(&a->cose, h);
    (void)hsmc_cose_set_content_type(&a->cose, HSMC_AUDIT_CONTENT_TYPE);
    if (key != NULL) {
        a->key = *key;
        a->have_key = 1;
    }
}

hsmc_err_t hsmc_audit_resume(hsmc_audit_t *a, uint64_t next_seq,
                             const uint8_t prev[HSMC_AUDIT_HASH_LEN])
{
    if (a == NULL)
        return HSMC_ERR_ARG;
    if (prev == NULL)
        return hsmc__fail(a->cose.h, HSMC_ERR_ARG, CKR_OK,
                          "hsmc_audit_resume: prev (hash of the last record) must be given");
    a->seq = next_seq;
    memcpy(a->prev, prev, HSMC_AUDIT_HASH_LEN);
    return HSMC_OK;
}

hsmc_err_t hsmc_audit_sign(hsmc_audit_t *a, const hsmc_audit_record_t *rec, uint8_t *out,
                           size_t cap, size_t *out_len)
{
    static const char fn[] = "hsmc_audit_sign";
    hsmc_view_t payload, signer, none = {NULL, 0};
    size_t plen = 0;
    hsmc_err_t err;

    if (a == NULL)
        return HSMC_ERR_ARG;
    if (rec == NULL || out_len == NULL)
        return hsmc__fail(a->cose.h, HSMC_ERR_ARG, CKR_OK, "%s: rec and out_len must be given", fn);
    if (!a->have_key || a->key.priv.label_len == 0)
        return hsmc__fail(a->cose.h, HSMC_ERR_ARG, CKR_OK,
                          "%s: no audit key, or the key has no label (the label is the kid)", fn);
    signer.ptr = (const uint8_t *)a->key.priv.label;
    signer.len = a->key.priv.label_len;
    err = hsmc_audit_put(a->cose.h, fn, rec, a->seq, a->prev, signer, a->payload, sizeof a->payload,
                         &plen);
    if (err != HSMC_OK)
        return err;
    payload.ptr = a->payload;
    payload.len = plen;
    err = hsmc_cose_sign1(&a->cose, &a->key, 0, none, payload, 0, out, cap, out_len);
    if (err == HSMC_OK && out != NULL && *out_len > HSMC_AUDIT_RECORD_MAX) {
        hsmc__wipe(out, *out_len);
        err = hsmc__fail(a->cose.h, HSMC_ERR_LIMIT, CKR_OK,
                         "%s: the record takes %lu bytes, more than HSMC_AUDIT_RECORD_MAX", fn,
                         (unsigned long)*out_len);
    }
    if (err == HSMC_OK && out != NULL) {
        err = hsmc_hash(HSMC_HASH_SHA256, out, *out_len, a->prev);
        if (err != HSMC_OK) {
            hsmc__wipe(out, *out_len);
            return hsmc__fail(a->cose.h, HSMC_ERR_INTERNAL, CKR_OK, "%s: SHA-256 failed", fn);
        }
        a->seq++;
    }
    return err;
}

void hsmc_audit_free(hsmc_audit_t *a)
{
    if (a == NULL)
        return;
    hsmc_cose_free(&a->cose);
    hsmc__wipe(a, sizeof *a);
}

/* ---- Verifying ------------------------------------------------------------- */

const char *hsmc_audit_fault_name(hsmc_audit_fault_t fault)
{
    switch (fault) {
    case HSMC_AUDIT_FAULT_NONE:
        return "none";
    case HSMC_AUDIT_FAULT_MALFORMED:
        return "malformed";
    case HSMC_AUDIT_FAULT_TRUNCATED:
        return "truncated";
    case HSMC_AUDIT_FAULT_SIGNATURE:
        return "bad signature";
    case HSMC_AUDIT_FAULT_KID:
        return "kid altered";
    case HSMC_AUDIT_FAULT_PREV:
        return "prev mismatch";
    case HSMC_AUDIT_FAULT_SEQ:
        return "seq gap";
    default:
        return "unknown";
    }
}

static void hsmc_audit_verify_reset(hsmc_audit_verify_t *v, hsmc_t *h)
{
    memset(v, 0, sizeof *v);
    hsmc_cose_init(&v->cose, h);
}

void hsmc_audit_verify_init_key(hsmc_audit_verify_t *v, hsmc_t *h, const hsmc_key_t *key)
{
    if (v == NULL)
        return;
    hsmc_audit_verify_reset(v, h);
    if (key != NULL) {
        v->key = *key;
        v->mode = HSMC_AUDIT_MODE_KEY;
        /* Exactly this key, whatever the kid says: another key's record must fail. */
        hsmc_cose_set_resolver(&v->cose, hsmc_cose_resolve_fixed, &v->key);
    }
}

void hsmc_audit_verify_init_spki(hsmc_audit_verify_t *v, hsmc_t *h, hsmc_view_t spki)
{
    if (v == NULL)
        return;
    hsmc_audit_verify_reset(v, h);
    if (spki.ptr != NULL && spki.len > 0) {
        v->spki = spki;
        v->mode = HSMC_AUDIT_MODE_SPKI;
    }
}

/*
 * Extent of the CBOR item at p[0..len) from its heads alone (no recursion:
 * a count of items still owed is enough to find the end). 1: complete,
 * *n its length; 0: p ends inside it; -1: a head hsmc never writes
 * (indefinite, reserved) or a size no record can have.
 */
static int hsmc_audit_item_len(const uint8_t *p, size_t len, size_t *n)
{
    size_t pos = 0, owed = 1, k, j;
    uint64_t arg;
    unsigned mt, ai;

    while (owed > 0) {
        if (pos >= len)
            return 0;
        mt = p[pos] >> 5;
        ai = p[pos] & 31u;
        pos++;
        if (ai < 24u) {
            arg = ai;
        } else if (ai <= 27u) {
            k = (size_t)1 << (ai - 24u);
            if (len - pos < k)
                return 0;
            for (arg = 0, j = 0; j < k; j++)
                arg = (arg << 8) | p[pos + j];
            pos += k;
        } else {
            return -1;
        }
        owed--;
        if (mt == 2u || mt == 3u) {
            if (arg > HSMC_AUDIT_RECORD_MAX)
                return -1;
            if (arg > len - pos)
                return 0;
            pos += (size_t)arg;
        } else if (mt == 4u || mt == 5u) {
            if (arg > HSMC_AUDIT_RECORD_MAX)
                return -1;
            owed += (size_t)arg * (mt == 5u ? 2u : 1u);
        } else if (mt == 6u) {
            owed++;
        }
        if (owed > HSMC_AUDIT_RECORD_MAX || pos > HSMC_AUDIT_RECORD_MAX)
            return -1;
    }
    *n = pos;
    return 1;
}

/* Record the first broken record (sticky) and its error. */
static hsmc_err_t hsmc_audit_broken(hsmc_audit_verify_t *v, hsmc_audit_fault_t fault,
                                    hsmc_err_t err)
{
    v->fault = fault;
    v->err = err;
    return err;
}

/* Fault kind of a COSE verification failure; 0 when it is not the record's fault. */
static hsmc_audit_fault_t hsmc_audit_cose_fault(hsmc_err_t err)
{
    switch (err) {
    case HSMC_ERR_SIGNATURE:
        return HSMC_AUDIT_FAULT_SIGNATURE;
    case HSMC_ERR_FORMAT:
    case HSMC_ERR_UNSUPPORTED:
    case HSMC_ERR_LIMIT:
        return HSMC_AUDIT_FAULT_MALFORMED;
    default:
        return HSMC_AUDIT_FAULT_NONE;
    }
}

/* Chain checks of a decoded, authentic record: kid, prev, seq. */
static hsmc_err_t hsmc_audit_check_chain(hsmc_audit_verify_t *v, const char *fn,
                                         const hsmc_audit_record_t *r, hsmc_view_t kid)
{
    hsmc_t *h = v->cose.h;
    const char *why;

    if (kid.len != r->signer.len || (kid.len > 0 && memcmp(kid.ptr, r->signer.ptr, kid.len) != 0)) {
        (void)hsmc__fail(h, HSMC_ERR_SIGNATURE, CKR_OK,
                         "%s: record %lu at byte %lu: its kid (not signed) differs from the "
                         "signed signer '%.*s': the record was altered",
                         fn, (unsigned long)v->count, (unsigned long)v->offset, (int)r->signer.len,
                         (const char *)r->signer.ptr);
        return hsmc_audit_broken(v, HSMC_AUDIT_FAULT_KID, HSMC_ERR_SIGNATURE);
    }
    if (memcmp(r->prev, v->prev, HSMC_AUDIT_HASH_LEN) != 0) {
        if (v->count == 0)
            why = "the first record of the file does not start a chain: records before it "
                  "were removed";
        else if (r->seq > v->next_seq)
            why = "records before it were removed";
        else if (r->seq + 1u == v->next_seq)
            why = "it repeats or replaces the record before it";
        else
            why = "it does not follow the record before it (moved, inserted or repeated)";
        (void)hsmc__fail(h, HSMC_ERR_AUDIT_CHAIN, CKR_OK,
                         "%s: record %lu at byte %lu (seq %lu, expected seq %lu): its prev is "
                         "not the hash of the record before: %s",
                         fn, (unsigned long)v->count, (unsigned long)v->offset,
                         (unsigned long)r->seq, (unsigned long)v->next_seq, why);
        return hsmc_audit_broken(v, HSMC_AUDIT_FAULT_PREV, HSMC_ERR_AUDIT_CHAIN);
    }
    if (r->seq != v->next_seq) {
        (void)hsmc__fail(h, HSMC_ERR_AUDIT_CHAIN, CKR_OK,
                         "%s: record %lu at byte %lu has seq %lu, expected %lu (the chain of "
                         "hashes is intact: the signer skipped or repeated a number)",
                         fn, (unsigned long)v->count, (unsigned long)v->offset,
                         (unsigned long)r->seq, (unsigned long)v->next_seq);
        return hsmc_audit_broken(v, HSMC_AUDIT_FAULT_SEQ, HSMC_ERR_AUDIT_CHAIN);
    }
    return HSMC_OK;
}

/* The extent of the next record, or the fault that stops the walk. */
static hsmc_err_t hsmc_audit_extent(hsmc_audit_verify_t *v, const char *fn, const uint8_t *in,
                                    size_t len, size_t *n)
{
    int r = hsmc_audit_item_len(in, len, n);

    if (r == 0 && len < HSMC_AUDIT_RECORD_MAX) {
        (void)hsmc__fail(v->cose.h, HSMC_ERR_TRUNCATED, CKR_OK,
                         "%s: record %lu at byte %lu is truncated: the file ends after %lu of "
                         "its bytes (the %lu records before it are intact)",
                         fn, (unsigned long)v->count, (unsigned long)v->offset, (unsigned long)len,
                         (unsigned long)v->count);
        return hsmc_audit_broken(v, HSMC_AUDIT_FAULT_TRUNCATED, HSMC_ERR_TRUNCATED);
    }
    if (r != 1 || *n > HSMC_AUDIT_RECORD_MAX) {
        (void)hsmc__fail(v->cose.h, HSMC_ERR_FORMAT, CKR_OK,
                         "%s: record %lu at byte %lu is not a CBOR item of at most %lu bytes", fn,
                         (unsigned long)v->count, (unsigned long)v->offset,
                         (unsigned long)HSMC_AUDIT_RECORD_MAX);
        return hsmc_audit_broken(v, HSMC_AUDIT_FAULT_MALFORMED, HSMC_ERR_FORMAT);
    }
    return HSMC_OK;
}

/* The protected alg of the COSE_Sign1 in[0..n), or 0 when it cannot be read. */
HSMC_NOINLINE static int64_t hsmc_audit_alg(hsmc_cbor_dec_t *d, const uint8_t *in, size_t n)
{
    hsmc_cbor_dec_t pd;
    const uint8_t *prot = NULL;
    size_t plen = 0, pairs = 0, i;
    uint64_t tag = 0;
    int64_t label = 0, alg = 0;

    hsmc_cbor_dec_init(d, in, n);
    if (hsmc_cbor_get_tag(d, &tag) != HSMC_OK || hsmc_cbor_get_array(d, &i) != HSMC_OK ||
        hsmc_cbor_get_bstr(d, &prot, &plen) != HSMC_OK)
        return 0;
    hsmc_cbor_dec_init(&pd, prot, plen);
    if (hsmc_cbor_get_map(&pd, &pairs) != HSMC_OK)
        return 0;
    for (i = 0; i < pairs; i++) {
        if (hsmc_cbor_get_int(&pd, &label) != HSMC_OK)
            return 0;
        if (label == HSMC_COSE_HDR_ALG)
            return hsmc_cbor_get_int(&pd, &alg) == HSMC_OK ? alg : 0;
        if (hsmc_cbor_skip(&pd) != HSMC_OK)
            return 0;
    }
    return 0;
}

/* Signature and content type of in[0..n); *info filled. */
HSMC_NOINLINE static hsmc_err_t hsmc_audit_check_cose(hsmc_audit_verify_t *v, const char *fn,
                                                      const uint8_t *in, size_t n,
                                                      hsmc_cose_info_t *info)
{
    static const char ct[] = HSMC_AUDIT_CONTENT_TYPE;
    hsmc_view_t msg, none = {NULL, 0};
    hsmc_audit_fault_t fault;
    hsmc_err_t err;

    msg.ptr = in;
    msg.len = n;
    if (v->mode == HSMC_AUDIT_MODE_KEY)
        err = hsmc_cose_verify1(&v->cose, msg, none, none, 0, info);
    else
        err = hsmc_cose_verify1_spki(&v->cose, msg, v->spki, none, none, 0, info);
    if (err != HSMC_OK) {
        fault = hsmc_audit_cose_fault(err);
        /* The token refuses an alg that does not fit the key as an argument
         * error: the record's fault, classified as the SPKI path does
         * (EdDSA is not checked there: malformed; another family: the key
         * cannot have signed it). */
        if (v->mode == HSMC_AUDIT_MODE_KEY && (err == HSMC_ERR_ARG || err == HSMC_ERR_KEY_USAGE))
            fault = hsmc_audit_alg(&v->cose.dec, in, n) == HSMC_COSE_EDDSA &&
                            v->key.alg != HSMC_ALG_ED25519
                        ? HSMC_AUDIT_FAULT_MALFORMED
                        : HSMC_AUDIT_FAULT_SIGNATURE;
        if (fault == HSMC_AUDIT_FAULT_NONE)
            return err; /* the token's trouble, not the record's: not sticky */
        /* The COSE layer's detail says what; name the record in the log. */
        HSMC_LOG(v->cose.h, HSMC_LOG_ERROR, "%s: record %lu at byte %lu is broken (%s)", fn,
                 (unsigned long)v->count, (unsigned long)v->offset, hsmc_audit_fault_name(fault));
        return hsmc_audit_broken(
            v, fault, fault == HSMC_AUDIT_FAULT_SIGNATURE ? HSMC_ERR_SIGNATURE : HSMC_ERR_FORMAT);
    }
    if (info->content_type.len != sizeof ct - 1u ||
        memcmp(info->content_type.ptr, ct, sizeof ct - 1u) != 0) {
        (void)hsmc__fail(v->cose.h, HSMC_ERR_FORMAT, CKR_OK,
                         "%s: record %lu at byte %lu is a COSE_Sign1 of the audit key but not an "
                         "audit record (content type is not " HSMC_AUDIT_CONTENT_TYPE ")",
                         fn, (unsigned long)v->count, (unsigned long)v->offset);
        return hsmc_audit_broken(v, HSMC_AUDIT_FAULT_MALFORMED, HSMC_ERR_FORMAT);
    }
    return HSMC_OK;
}

hsmc_err_t hsmc_audit_verify_next(hsmc_audit_verify_t *v, const uint8_t *in, size_t len,
                                  size_t *used, hsmc_audit_record_t *rec)
{
    static const char fn[] = "hsmc_audit_verify_next";
    hsmc_cose_info_t info;
    size_t n = 0;
    hsmc_err_t err;

    if (v == NULL)
        return HSMC_ERR_ARG;
    if (used != NULL)
        *used = 0;
    if (v->err != HSMC_OK)
        return v->err;
    if (in == NULL || len == 0 || used == NULL)
        return hsmc__fail(v->cose.h, HSMC_ERR_ARG, CKR_OK,
                          "%s: in (non-empty) and used must be given", fn);
    if (v->mode == 0)
        return hsmc__fail(v->cose.h, HSMC_ERR_ARG, CKR_OK,
                          "%s: no audit key: give a token key or an SPKI to the init function", fn);
    if (rec == NULL)
        rec = &v->rec;
    err = hsmc_audit_extent(v, fn, in, len, &n);
    if (err == HSMC_OK)
        err = hsmc_audit_check_cose(v, fn, in, n, &info);
    if (err != HSMC_OK)
        return err;
    if (hsmc_audit_decode(v->cose.h, info.payload, rec) != HSMC_OK) {
        HSMC_LOG(v->cose.h, HSMC_LOG_ERROR, "%s: record %lu at byte %lu: payload malformed", fn,
                 (unsigned long)v->count, (unsigned long)v->offset);
        return hsmc_audit_broken(v, HSMC_AUDIT_FAULT_MALFORMED, HSMC_ERR_FORMAT);
    }
    err = hsmc_audit_check_chain(v, fn, rec, info.kid);
    if (err != HSMC_OK)
        return err;
    if (hsmc_hash(HSMC_HASH_SHA256, in, n, v->prev) != HSMC_OK)
        return hsmc__fail(v->cose.h, HSMC_ERR_INTERNAL, CKR_OK, "%s: SHA-256 failed", fn);
    v->next_seq = rec->seq + 1u;
    v->count++;
    v->offset += n;
    *used = n;
    return HSMC_OK;
}

hsmc_err_t hsmc_audit_verify_finish(const hsmc_audit_verify_t *v)
{
    if (v == NULL)
        return HSMC_ERR_ARG;
    return v->err;
}

hsmc_err_t hsmc_audit_verify_buf(hsmc_audit_verify_t *v, const uint8_t *buf, size_t len)
{
    size_t pos = 0, used = 0;
    hsmc_err_t err;

    if (v == NULL)
        return HSMC_ERR_ARG;
    if (buf == NULL && len > 0)
        return hsmc__fail(v->cose.h, HSMC_ERR_ARG, CKR_OK,
                          "hsmc_audit_verify_buf: buf must be given for a non-zero length");
    while (pos < len) {
        err = hsmc_audit_verify_next(v, buf + pos, len - pos, &used, NULL);
        if (err != HSMC_OK)
            return err;
        pos += used;
    }
    return hsmc_audit_verify_finish(v);
}

void hsmc_audit_verify_free(hsmc_audit_verify_t *v)
{
    if (v == NULL)
        return;
    hsmc_cose_free(&v->cose);
    hsmc__wipe(v, sizeof *v);
}
