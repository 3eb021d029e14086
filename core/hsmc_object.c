/*
 * Object lookup and listing. A lookup that matches several objects is an
 * error naming the count; handles are tied to the context generation.
 */
#include <stdio.h>

#include "hsmc_internal.h"

/* Build the C_FindObjectsInit template from a query. @return count or <0. */
static hsmc_err_t hsmc_query_template(hsmc_t *h, const hsmc_obj_query_t *q, CK_ATTRIBUTE *t,
                                      CK_ULONG *n)
{
    *n = 0;
    if (q == NULL)
        return HSMC_OK;
    if (q->label != NULL) {
        size_t len = strlen(q->label);
        if (len > HSMC_MAX_LABEL_LEN)
            return hsmc__fail(h, HSMC_ERR_LIMIT, CKR_OK,
                              "label is %u bytes; HSMC_MAX_LABEL_LEN is %d", (unsigned)len,
                              HSMC_MAX_LABEL_LEN);
        t[*n].type = CKA_LABEL;
        t[*n].pValue = (CK_VOID_PTR)q->label;
        t[*n].ulValueLen = (CK_ULONG)len;
        (*n)++;
    }
    if (q->id != NULL) {
        if (q->id_len > HSMC_MAX_ID_LEN)
            return hsmc__fail(h, HSMC_ERR_LIMIT, CKR_OK, "id is %u bytes; HSMC_MAX_ID_LEN is %d",
                              (unsigned)q->id_len, HSMC_MAX_ID_LEN);
        t[*n].type = CKA_ID;
        t[*n].pValue = (CK_VOID_PTR)q->id;
        t[*n].ulValueLen = (CK_ULONG)q->id_len;
        (*n)++;
    }
    if (q->has_class) {
        t[*n].type = CKA_CLASS;
        t[*n].pValue = (CK_VOID_PTR)&q->cls;
        t[*n].ulValueLen = sizeof q->cls;
        (*n)++;
    }
    return HSMC_OK;
}

typedef struct {
    CK_ATTRIBUTE_TYPE type;
    unsigned bit;
} hsmc_flag_attr_t;

static const hsmc_flag_attr_t hsmc_flag_attrs[] = {
    {CKA_SIGN, HSMC_USE_SIGN},           {CKA_VERIFY, HSMC_USE_VERIFY},
    {CKA_ENCRYPT, HSMC_USE_ENCRYPT},     {CKA_DECRYPT, HSMC_USE_DECRYPT},
    {CKA_WRAP, HSMC_USE_WRAP},           {CKA_UNWRAP, HSMC_USE_UNWRAP},
    {CKA_DERIVE, HSMC_USE_DERIVE},       {CKA_SENSITIVE, HSMC_ATTR_SENSITIVE},
    {CKA_EXTRACTABLE, HSMC_ATTR_EXTRACTABLE}, {CKA_TOKEN, HSMC_ATTR_TOKEN},
    {CKA_PRIVATE, HSMC_ATTR_PRIVATE},
};
#define HSMC_FLAG_ATTRS (sizeof hsmc_flag_attrs / sizeof hsmc_flag_attrs[0])
#define HSMC_FLAG_CHUNK 6u

/* Read the boolean attributes in small chunks (keeps the stack frame small).
 * Attributes an object lacks come back unavailable and count as FALSE. */
HSMC_NOINLINE static CK_RV hsmc_read_flags(CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                             unsigned *usage)
{
    CK_ATTRIBUTE t[HSMC_FLAG_CHUNK];
    CK_BBOOL v[HSMC_FLAG_CHUNK];
    size_t base, i, n;
    CK_RV rv;

    *usage = 0;
    for (base = 0; base < HSMC_FLAG_ATTRS; base += n) {
        n = HSMC_FLAG_ATTRS - base;
        if (n > HSMC_FLAG_CHUNK)
            n = HSMC_FLAG_CHUNK;
        for (i = 0; i < n; i++) {
            v[i] = CK_FALSE;
            t[i].type = hsmc_flag_attrs[base + i].type;
            t[i].pValue = &v[i];
            t[i].ulValueLen = sizeof v[i];
        }
        rv = fl->C_GetAttributeValue(s, o, t, (CK_ULONG)n);
        if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE)
            return rv;
        for (i = 0; i < n; i++) {
            if (t[i].ulValueLen == sizeof v[i] && v[i] == CK_TRUE)
                *usage |= hsmc_flag_attrs[base + i].bit;
        }
    }
    return CKR_OK;
}

/* Fill `out` with the object's common attributes. */
HSMC_NOINLINE static hsmc_err_t hsmc_read_obj(hsmc_t *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                                hsmc_obj_t *out, CK_RV *rv_out)
{
    CK_ATTRIBUTE t[4];
    CK_RV rv;

    memset(out, 0, sizeof *out);
    out->handle = o;
    out->generation = h->generation;
    out->key_type = CK_UNAVAILABLE_INFORMATION;
    t[0].type = CKA_CLASS;
    t[0].pValue = &out->cls;
    t[0].ulValueLen = sizeof out->cls;
    t[1].type = CKA_KEY_TYPE;
    t[1].pValue = &out->key_type;
    t[1].ulValueLen = sizeof out->key_type;
    t[2].type = CKA_LABEL;
    t[2].pValue = out->label;
    t[2].ulValueLen = HSMC_MAX_LABEL_LEN;
    t[3].type = CKA_ID;
    t[3].pValue = out->id;
    t[3].ulValueLen = HSMC_MAX_ID_LEN;
    rv = h->fl->C_GetAttributeValue(s, o, t, 4);
    *rv_out = rv;
    if (rv == CKR_BUFFER_TOO_SMALL)
        return hsmc__fail(h, HSMC_ERR_LIMIT, rv,
                          "object label or id is longer than HSMC_MAX_LABEL_LEN (%d) / "
                          "HSMC_MAX_ID_LEN (%d)",
                          HSMC_MAX_LABEL_LEN, HSMC_MAX_ID_LEN);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE)
        return hsmc_map_rv(h, rv, "C_GetAttributeValue");
    *rv_out = CKR_OK;
    if (t[1].ulValueLen != sizeof out->key_type)
        out->key_type = CK_UNAVAILABLE_INFORMATION;
    out->label_len = t[2].ulValueLen <= HSMC_MAX_LABEL_LEN ? (size_t)t[2].ulValueLen : 0;
    out->label[out->label_len] = '\0';
    out->id_len = t[3].ulValueLen <= HSMC_MAX_ID_LEN ? (size_t)t[3].ulValueLen : 0;
    rv = hsmc_read_flags(h->fl, s, o, &out->usage);
    *rv_out = rv;
    if (rv != CKR_OK)
        return hsmc_map_rv(h, rv, "C_GetAttributeValue");
    return HSMC_OK;
}

/* Describe a query for messages. */
static void hsmc_query_text(const hsmc_obj_query_t *q, char *buf, size_t cap)
{
    const char *cls = (q != NULL && q->has_class) ? hsmc_class_name(q->cls) : "object";
    if (q != NULL && q->label != NULL)
        (void)snprintf(buf, cap, "%s with label '%.48s'", cls, q->label);
    else if (q != NULL && q->id != NULL)
        (void)snprintf(buf, cap, "%s with the given id (%u bytes)", cls, (unsigned)q->id_len);
    else
        (void)snprintf(buf, cap, "%s", cls);
}

/* One search: count all matches (up to any number), keep the first handle. */
HSMC_NOINLINE static CK_RV hsmc_find_count(hsmc_t *h, CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG nt,
                             CK_OBJECT_HANDLE *first, size_t *count)
{
    CK_OBJECT_HANDLE found[HSMC_MAX_OBJECTS];
    CK_ULONG n = 0;
    CK_RV rv, rv2;

    *count = 0;
    rv = h->fl->C_FindObjectsInit(s, nt ? t : NULL, nt);
    if (rv != CKR_OK)
        return rv;
    do {
        rv = h->fl->C_FindObjects(s, found, HSMC_MAX_OBJECTS, &n);
        if (rv != CKR_OK || n > HSMC_MAX_OBJECTS)
            break;
        if (*count == 0 && n > 0)
            *first = found[0];
        *count += (size_t)n;
    } while (n > 0);
    rv2 = h->fl->C_FindObjectsFinal(s);
    return rv != CKR_OK ? rv : rv2;
}

hsmc_err_t hsmc_find(hsmc_t *h, const hsmc_obj_query_t *q, hsmc_obj_t *out)
{
    CK_ATTRIBUTE t[3];
    CK_ULONG nt;
    CK_OBJECT_HANDLE first = CK_INVALID_HANDLE;
    size_t count = 0;
    char what[80];
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv;

    if (h == NULL || q == NULL || out == NULL)
        return HSMC_ERR_ARG;
    err = hsmc_query_template(h, q, t, &nt);
    if (err != HSMC_OK)
        return err;
    memset(&s, 0, sizeof s);
    do {
        err = hsmc_session_begin(h, &s);
        if (err != HSMC_OK)
            return err;
        rv = hsmc_find_count(h, s.handle, t, nt, &first, &count);
        if (rv == CKR_OK && count == 1)
            err = hsmc_read_obj(h, s.handle, first, out, &rv);
        if (err != HSMC_OK && !hsmc__rv_is_loss(rv)) {
            (void)hsmc_session_end(&s, CKR_OK, NULL);
            return err;
        }
        err = hsmc_session_end(&s, rv, "C_FindObjects");
    } while (err == HSMC_RETRY);
    if (err != HSMC_OK)
        return err;
    hsmc_query_text(q, what, sizeof what);
    if (count == 0)
        return hsmc__fail(h, HSMC_ERR_OBJECT_NOT_FOUND, CKR_OK, "no %s on the token", what);
    if (count > 1)
        return hsmc__fail(h, HSMC_ERR_OBJECT_AMBIGUOUS, CKR_OK,
                          "%u objects match %s; give an id or a type to pick one",
                          (unsigned)count, what);
    return HSMC_OK;
}

/* Read one listed object and pass it on. @return 1 to stop, 0 to go on, <0 error. */
HSMC_NOINLINE static int hsmc_list_one(hsmc_t *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, hsmc_obj_cb_t cb,
                         void *user, CK_RV *rv)
{
    hsmc_obj_t obj;
    hsmc_err_t err = hsmc_read_obj(h, s, o, &obj, rv);
    if (err != HSMC_OK)
        return (int)err;
    return cb(user, &obj) != 0 ? 1 : 0;
}

hsmc_err_t hsmc_list(hsmc_t *h, const hsmc_obj_query_t *q, hsmc_obj_cb_t cb, void *user,
                     size_t *count)
{
    CK_ATTRIBUTE t[3];
    CK_OBJECT_HANDLE found[HSMC_MAX_OBJECTS];
    CK_ULONG nt, n, i;
    size_t seen, delivered = 0;
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv, rv2;
    int r = 0;

    if (h == NULL || cb == NULL)
        return HSMC_ERR_ARG;
    if (count != NULL)
        *count = 0;
    err = hsmc_query_template(h, q, t, &nt);
    if (err != HSMC_OK)
        return err;
    memset(&s, 0, sizeof s);
    do {
        err = hsmc_session_begin(h, &s);
        if (err != HSMC_OK)
            return err;
        seen = 0; /* after a recovery, skip what the callback already had */
        r = 0;
        rv = h->fl->C_FindObjectsInit(s.handle, nt ? t : NULL, nt);
        while (rv == CKR_OK && r == 0) {
            rv = h->fl->C_FindObjects(s.handle, found, HSMC_MAX_OBJECTS, &n);
            if (rv != CKR_OK || n == 0 || n > HSMC_MAX_OBJECTS)
                break;
            for (i = 0; i < n && r == 0; i++, seen++) {
                if (seen < delivered)
                    continue;
                r = hsmc_list_one(h, s.handle, found[i], cb, user, &rv);
                if (r >= 0)
                    delivered++;
            }
        }
        if (rv != CKR_SESSION_HANDLE_INVALID && rv != CKR_SESSION_CLOSED) {
            rv2 = h->fl->C_FindObjectsFinal(s.handle);
            if (rv == CKR_OK)
                rv = rv2;
        }
        if (r < 0 && !hsmc__rv_is_loss(rv)) {
            (void)hsmc_session_end(&s, CKR_OK, NULL);
            return (hsmc_err_t)r;
        }
        err = hsmc_session_end(&s, rv, "C_FindObjects");
    } while (err == HSMC_RETRY);
    if (count != NULL)
        *count = delivered;
    return err;
}

hsmc_err_t hsmc_obj_refresh(hsmc_t *h, hsmc_obj_t *obj)
{
    hsmc_obj_query_t q;
    hsmc_obj_t fresh;
    hsmc_err_t err;

    if (h == NULL || obj == NULL)
        return HSMC_ERR_ARG;
    if (obj->generation == h->generation)
        return HSMC_OK;
    memset(&q, 0, sizeof q);
    q.label = obj->label_len > 0 ? obj->label : NULL;
    q.id = obj->id_len > 0 ? obj->id : NULL;
    q.id_len = obj->id_len;
    q.has_class = 1;
    q.cls = obj->cls;
    err = hsmc_find(h, &q, &fresh);
    if (err != HSMC_OK)
        return err;
    *obj = fresh;
    return HSMC_OK;
}
