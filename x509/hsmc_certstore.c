/*
 * Certificates stored on the token next to their keys (CKO_CERTIFICATE,
 * CKC_X_509, same CKA_ID and CKA_LABEL as the key), as PKCS#11 consumers
 * (p11-kit, OpenSSL's pkcs11 provider, browsers) expect to find them.
 */
#include <mbedtls/asn1.h>

#include "hsmc_ca_int.h"

#define HSMC_SEQ (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)

/* The parts of a certificate the token object repeats. */
typedef struct hsmc_cert_parts {
    const uint8_t *serial, *issuer, *subject, *spki; /* whole TLVs */
    size_t serial_len, issuer_len, subject_len, spki_len;
} hsmc_cert_parts_t;

/* Skip one TLV with the given tag; start and len get the whole TLV. */
static int hsmc_tlv(unsigned char **p, const unsigned char *end, int tag, const uint8_t **start,
                    size_t *len)
{
    unsigned char *s = *p;
    size_t n;

    if (mbedtls_asn1_get_tag(p, end, &n, tag) != 0)
        return -1;
    *p += n;
    if (start != NULL) {
        *start = s;
        *len = (size_t)(*p - s);
    }
    return 0;
}

/* Walk Certificate / TBSCertificate up to the SPKI; the DER must be exactly one certificate. */
static int hsmc_cert_split(const uint8_t *der, size_t len, hsmc_cert_parts_t *c)
{
    unsigned char *p = (unsigned char *)(uintptr_t)der;
    const unsigned char *end = der + len, *tend;
    size_t n;

    if (mbedtls_asn1_get_tag(&p, end, &n, HSMC_SEQ) != 0 || p + n != end)
        return -1;
    if (mbedtls_asn1_get_tag(&p, end, &n, HSMC_SEQ) != 0)
        return -1;
    tend = p + n;
    if (p < tend && *p == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0) &&
        hsmc_tlv(&p, tend, MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0, NULL,
                 NULL) != 0)
        return -1;
    if (hsmc_tlv(&p, tend, MBEDTLS_ASN1_INTEGER, &c->serial, &c->serial_len) != 0 ||
        hsmc_tlv(&p, tend, HSMC_SEQ, NULL, NULL) != 0 ||
        hsmc_tlv(&p, tend, HSMC_SEQ, &c->issuer, &c->issuer_len) != 0 ||
        hsmc_tlv(&p, tend, HSMC_SEQ, NULL, NULL) != 0 ||
        hsmc_tlv(&p, tend, HSMC_SEQ, &c->subject, &c->subject_len) != 0 ||
        hsmc_tlv(&p, tend, HSMC_SEQ, &c->spki, &c->spki_len) != 0)
        return -1;
    return 0;
}

static CK_ULONG hsmc_attr(CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type, const void *v,
                          size_t len)
{
    t[n].type = type;
    t[n].pValue = (CK_VOID_PTR)(uintptr_t)v;
    t[n].ulValueLen = (CK_ULONG)len;
    return n + 1;
}

/* Destroy the key's other certificates (same class and CKA_ID, not `keep`).
 * @return CKR_OK, or the failing call's value (*destroyed counts the ones gone). */
HSMC_NOINLINE static CK_RV hsmc_cert_prune(CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE s,
                                           CK_ATTRIBUTE *q, CK_OBJECT_HANDLE keep,
                                           unsigned *destroyed)
{
    CK_OBJECT_HANDLE found[4];
    CK_ULONG n, i;
    CK_RV rv, rv2;
    int again;

    do {
        again = 0;
        n = 0;
        rv = fl->C_FindObjectsInit(s, q, 2);
        if (rv != CKR_OK)
            return rv;
        rv = fl->C_FindObjects(s, found, 4, &n);
        rv2 = fl->C_FindObjectsFinal(s);
        if (rv == CKR_OK)
            rv = rv2;
        if (rv != CKR_OK)
            return rv;
        if (n > 4)
            n = 4;
        for (i = 0; i < n; i++) {
            if (found[i] == keep)
                continue;
            rv = fl->C_DestroyObject(s, found[i]);
            if (rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID)
                return rv;
            (*destroyed)++;
            again = 1;
        }
    } while (again);
    return CKR_OK;
}

/* Create the new object, then remove the older ones; roll back when nothing old could go. */
HSMC_NOINLINE static CK_RV hsmc_cert_put(hsmc_t *h, CK_SESSION_HANDLE s, hsmc_cert_work_t *w,
                                         CK_ULONG n, const char **what)
{
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CK_ATTRIBUTE *q = &w->t[n]; /* CKA_CLASS and CKA_ID, after the template */
    unsigned destroyed = 0;
    CK_RV rv;

    *what = "C_CreateObject";
    rv = h->fl->C_CreateObject(s, w->t, n, &obj);
    if (rv != CKR_OK)
        return rv;
    *what = "C_DestroyObject (older certificate)";
    rv = hsmc_cert_prune(h->fl, s, q, obj, &destroyed);
    if (rv != CKR_OK && destroyed == 0 && !hsmc__rv_is_loss(rv)) {
        CK_RV rv2 = h->fl->C_DestroyObject(s, obj);
        if (rv2 != CKR_OK)
            HSMC_LOG(h, HSMC_LOG_ERROR, "could not remove the new certificate after a failure: %s",
                     hsmc_ckr_name(rv2));
    }
    return rv;
}

hsmc_err_t hsmc_cert_store(hsmc_t *h, const hsmc_key_t *key, const uint8_t *der, size_t len,
                           hsmc_cert_work_t *work)
{
    static const CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    static const CK_CERTIFICATE_TYPE ct = CKC_X_509;
    static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    hsmc_cert_parts_t c;
    hsmc_sess_t s;
    const char *what = NULL;
    size_t n;
    CK_ULONG nt;
    hsmc_err_t err;
    CK_RV rv;

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (key == NULL || der == NULL || len == 0 || work == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "hsmc_cert_store needs a key, a certificate "
                                                   "and a work area");
    if (key->priv.id_len == 0)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK,
                          "key '%s' has no CKA_ID to tie a certificate to", key->priv.label);
    if (hsmc_cert_split(der, len, &c) != 0)
        return hsmc__fail(h, HSMC_ERR_FORMAT, CKR_OK,
                          "the certificate is not one DER X.509 certificate");
    err = hsmc_key_export_pub(h, key, work->spki, sizeof work->spki, &n);
    if (err != HSMC_OK)
        return err;
    if (n != c.spki_len || memcmp(work->spki, c.spki, n) != 0)
        return hsmc__fail(h, HSMC_ERR_CERT_KEY, CKR_OK,
                          "the certificate's public key is not the one of key '%s'; not stored",
                          key->priv.label);
    nt = hsmc_attr(work->t, 0, CKA_CLASS, &cls, sizeof cls);
    nt = hsmc_attr(work->t, nt, CKA_CERTIFICATE_TYPE, &ct, sizeof ct);
    nt = hsmc_attr(work->t, nt, CKA_TOKEN, &yes, sizeof yes);
    nt = hsmc_attr(work->t, nt, CKA_PRIVATE, &no, sizeof no);
    nt = hsmc_attr(work->t, nt, CKA_LABEL, key->priv.label, key->priv.label_len);
    nt = hsmc_attr(work->t, nt, CKA_ID, key->priv.id, key->priv.id_len);
    nt = hsmc_attr(work->t, nt, CKA_SUBJECT, c.subject, c.subject_len);
    nt = hsmc_attr(work->t, nt, CKA_ISSUER, c.issuer, c.issuer_len);
    nt = hsmc_attr(work->t, nt, CKA_SERIAL_NUMBER, c.serial, c.serial_len);
    nt = hsmc_attr(work->t, nt, CKA_VALUE, der, len);
    (void)hsmc_attr(work->t, nt, CKA_CLASS, &cls, sizeof cls); /* search template */
    (void)hsmc_attr(work->t, nt + 1, CKA_ID, key->priv.id, key->priv.id_len);
    memset(&s, 0, sizeof s);
    do {
        err = hsmc_session_begin(h, &s);
        if (err != HSMC_OK)
            return err;
        rv = hsmc_cert_put(h, s.handle, work, nt, &what);
        err = hsmc_session_end(&s, rv, what);
    } while (err == HSMC_RETRY);
    return err;
}

/* Find exactly one certificate and read its value. */
HSMC_NOINLINE static hsmc_err_t hsmc_cert_get(hsmc_t *h, CK_ATTRIBUTE *q, CK_ULONG nq,
                                              const char *name, uint8_t *der, size_t cap,
                                              size_t *len)
{
    CK_OBJECT_HANDLE found[2];
    CK_ATTRIBUTE v;
    CK_ULONG n = 0;
    hsmc_sess_t s;
    hsmc_err_t err;
    CK_RV rv, rv2;
    const char *what;

    memset(&s, 0, sizeof s);
    memset(&v, 0, sizeof v);
    do {
        err = hsmc_session_begin(h, &s);
        if (err != HSMC_OK)
            return err;
        what = "C_FindObjects";
        n = 0;
        rv = h->fl->C_FindObjectsInit(s.handle, q, nq);
        if (rv == CKR_OK) {
            rv = h->fl->C_FindObjects(s.handle, found, 2, &n);
            rv2 = h->fl->C_FindObjectsFinal(s.handle);
            if (rv == CKR_OK)
                rv = rv2;
        }
        if (rv == CKR_OK && n == 1) {
            what = "C_GetAttributeValue";
            v.type = CKA_VALUE;
            v.pValue = NULL;
            v.ulValueLen = 0;
            rv = h->fl->C_GetAttributeValue(s.handle, found[0], &v, 1);
            if (rv == CKR_OK && der != NULL && v.ulValueLen <= cap) {
                v.pValue = der;
                rv = h->fl->C_GetAttributeValue(s.handle, found[0], &v, 1);
            }
        }
        err = hsmc_session_end(&s, rv, what);
    } while (err == HSMC_RETRY);
    if (err != HSMC_OK)
        return err;
    if (n == 0)
        return hsmc__fail(h, HSMC_ERR_OBJECT_NOT_FOUND, CKR_OK, "no certificate %s on the token",
                          name);
    if (n > 1)
        return hsmc__fail(h, HSMC_ERR_OBJECT_AMBIGUOUS, CKR_OK,
                          "several certificates %s on the token; delete the extra ones", name);
    *len = (size_t)v.ulValueLen;
    if (der != NULL && *len > cap)
        return hsmc__fail(h, HSMC_ERR_BUFFER, CKR_OK, "certificate is %u bytes; buffer holds %u",
                          (unsigned)*len, (unsigned)cap);
    return HSMC_OK;
}

hsmc_err_t hsmc_cert_load(hsmc_t *h, const hsmc_key_t *key, uint8_t *der, size_t cap,
                          size_t *len)
{
    static const CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE q[2];

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (key == NULL || len == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "hsmc_cert_load needs a key and a length");
    if (key->priv.id_len == 0)
        return hsmc_cert_load_label(h, key->priv.label, der, cap, len);
    (void)hsmc_attr(q, 0, CKA_CLASS, &cls, sizeof cls);
    (void)hsmc_attr(q, 1, CKA_ID, key->priv.id, key->priv.id_len);
    return hsmc_cert_get(h, q, 2, "for the key's CKA_ID", der, cap, len);
}

hsmc_err_t hsmc_cert_load_label(hsmc_t *h, const char *label, uint8_t *der, size_t cap,
                                size_t *len)
{
    static const CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE q[2];

    if (h == NULL)
        return HSMC_ERR_ARG;
    if (label == NULL || label[0] == '\0' || len == NULL)
        return hsmc__fail(h, HSMC_ERR_ARG, CKR_OK, "hsmc_cert_load_label needs a label");
    (void)hsmc_attr(q, 0, CKA_CLASS, &cls, sizeof cls);
    (void)hsmc_attr(q, 1, CKA_LABEL, label, strlen(label));
    return hsmc_cert_get(h, q, 2, "with that label", der, cap, len);
}
