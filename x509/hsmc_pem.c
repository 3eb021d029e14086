/*
 * PEM <-> DER (RFC 7468 "strict" form on output: 64-column base64 lines
 * between BEGIN and END lines). Base64 is mbedTLS's; the framing is done
 * here so nothing is allocated (mbedtls_pem_read_buffer allocates) and the
 * writer can convert DER that sits at the end of the output buffer in place.
 */
#include <string.h>

#include <mbedtls/base64.h>

#include "hsmc_x509_int.h"

#define HSMC_PEM_LINE 64u      /* base64 characters per line */
#define HSMC_PEM_CHUNK 48u     /* DER bytes per line */
#define HSMC_PEM_LABEL_MAX 64u /* longest label accepted */

static const char hsmc_pem_dashes[] = "-----";
static const char hsmc_pem_begin[] = "-----BEGIN ";
static const char hsmc_pem_end[] = "-----END ";

/* Length of a valid label, or 0: printable ASCII, no '-' at either end. */
static size_t hsmc_pem_label_len(const char *label)
{
    size_t n;

    if (label == NULL)
        return 0;
    for (n = 0; label[n] != '\0'; n++) {
        if (n >= HSMC_PEM_LABEL_MAX || (unsigned char)label[n] < 0x20 ||
            (unsigned char)label[n] > 0x7E)
            return 0;
    }
    if (n == 0 || label[0] == '-' || label[n - 1] == '-')
        return 0;
    return n;
}

/* Text length (without NUL) of the PEM form of `len` DER bytes. */
static size_t hsmc_pem_text_len(size_t label_len, size_t len)
{
    size_t b64 = 4 * ((len + 2) / 3);
    size_t lines = (b64 + HSMC_PEM_LINE - 1) / HSMC_PEM_LINE;

    return (sizeof hsmc_pem_begin - 1) + label_len + 5 + 1 + b64 + lines +
           (sizeof hsmc_pem_end - 1) + label_len + 5 + 1;
}

static size_t hsmc_pem_put(char *out, size_t at, const char *s, size_t n)
{
    memcpy(out + at, s, n);
    return at + n;
}

hsmc_err_t hsmc_pem_write(const char *label, const uint8_t *der, size_t len, char *out,
                          size_t cap, size_t *out_len)
{
    size_t llen = hsmc_pem_label_len(label), need, at, done, n, w;
    uint8_t chunk[HSMC_PEM_CHUNK];
    const uint8_t *src;

    if (out_len == NULL)
        return HSMC_ERR_ARG;
    *out_len = 0;
    if (llen == 0 || der == NULL || len == 0 || len > ((size_t)-1) / 2)
        return HSMC_ERR_ARG;
    need = hsmc_pem_text_len(llen, len);
    *out_len = need;
    if (out == NULL)
        return HSMC_OK;
    if (cap < need + 1)
        return HSMC_ERR_BUFFER;

    /*
     * DER overlapping out is first moved to out's end. Encoding from there
     * never overtakes the input: each line is read into `chunk` before it
     * is written, and the text written so far stays below the unread rest
     * because the whole text (plus NUL) fits in cap.
     */
    src = der;
    if ((uintptr_t)der < (uintptr_t)out + cap && (uintptr_t)der + len > (uintptr_t)out) {
        memmove(out + cap - len, der, len);
        src = (const uint8_t *)out + cap - len;
    }
    at = hsmc_pem_put(out, 0, hsmc_pem_begin, sizeof hsmc_pem_begin - 1);
    at = hsmc_pem_put(out, at, label, llen);
    at = hsmc_pem_put(out, at, hsmc_pem_dashes, 5);
    out[at++] = '\n';
    for (done = 0; done < len; done += n) {
        n = len - done < HSMC_PEM_CHUNK ? len - done : HSMC_PEM_CHUNK;
        memcpy(chunk, src + done, n);
        w = 0;
        if (mbedtls_base64_encode((unsigned char *)out + at, cap - at, &w, chunk, n) != 0)
            return HSMC_ERR_INTERNAL; /* cannot happen: need was checked */
        at += w;
        out[at++] = '\n';
    }
    at = hsmc_pem_put(out, at, hsmc_pem_end, sizeof hsmc_pem_end - 1);
    at = hsmc_pem_put(out, at, label, llen);
    at = hsmc_pem_put(out, at, hsmc_pem_dashes, 5);
    out[at++] = '\n';
    out[at] = '\0';
    if (at != need)
        return HSMC_ERR_INTERNAL;
    return HSMC_OK;
}

/* First occurrence of s (n bytes) in [p, end) at the start of a line, or NULL. */
static const char *hsmc_pem_find_line(const char *start, const char *p, const char *end,
                                      const char *s, size_t n)
{
    for (; p != NULL && (size_t)(end - p) >= n; p++) {
        if (memcmp(p, s, n) == 0 && (p == start || p[-1] == '\n'))
            return p;
    }
    return NULL;
}

hsmc_err_t hsmc_pem_read(const char *label, const char *pem, size_t len, uint8_t *der,
                         size_t cap, size_t *der_len)
{
    const char *end, *p, *lab, *body, *stop, *q;
    size_t llen = 0, olen = 0;
    int ret;

    if (der_len == NULL)
        return HSMC_ERR_ARG;
    *der_len = 0;
    if (pem == NULL || len == 0 || (label != NULL && (llen = hsmc_pem_label_len(label)) == 0))
        return HSMC_ERR_ARG;
    end = pem + len;
    if (end[-1] == '\0') /* a C string with its NUL, as mbedTLS's parsers want it */
        end--;

    /* BEGIN line: "-----BEGIN <label>-----" then the end of the line. */
    p = pem;
    for (;;) {
        p = hsmc_pem_find_line(pem, p, end, hsmc_pem_begin, sizeof hsmc_pem_begin - 1);
        if (p == NULL)
            return HSMC_ERR_FORMAT;
        lab = p + sizeof hsmc_pem_begin - 1;
        if (label != NULL) {
            if ((size_t)(end - lab) >= llen + 5 && memcmp(lab, label, llen) == 0 &&
                memcmp(lab + llen, hsmc_pem_dashes, 5) == 0)
                break;
        } else {
            for (q = lab; q < end && *q != '\n' && *q != '-'; q++)
                ;
            llen = (size_t)(q - lab);
            if (llen > 0 && (size_t)(end - q) >= 5 && memcmp(q, hsmc_pem_dashes, 5) == 0)
                break;
        }
        p++;
    }
    body = lab + llen + 5;
    if (body < end && *body == '\r')
        body++;
    if (body >= end || *body != '\n')
        return HSMC_ERR_FORMAT;
    body++;

    /* END line with the same label; no END line means a truncated input. */
    stop = hsmc_pem_find_line(pem, body, end, hsmc_pem_end, sizeof hsmc_pem_end - 1);
    if (stop == NULL || (size_t)(end - stop) < sizeof hsmc_pem_end - 1 + llen + 5 ||
        memcmp(stop + sizeof hsmc_pem_end - 1, lab, llen) != 0 ||
        memcmp(stop + sizeof hsmc_pem_end - 1 + llen, hsmc_pem_dashes, 5) != 0)
        return HSMC_ERR_FORMAT;
    /* RFC 1421 headers (Proc-Type: 4,ENCRYPTED ...) are not base64. */
    for (q = body; q < stop; q++) {
        if (*q == ':')
            return HSMC_ERR_FORMAT;
    }
    if (stop == body)
        return HSMC_ERR_FORMAT;

    ret = mbedtls_base64_decode(NULL, 0, &olen, (const unsigned char *)body, (size_t)(stop - body));
    if (ret == MBEDTLS_ERR_BASE64_INVALID_CHARACTER)
        return HSMC_ERR_FORMAT;
    if (olen == 0)
        return HSMC_ERR_FORMAT;
    *der_len = olen;
    if (der == NULL)
        return HSMC_OK;
    if (cap < olen)
        return HSMC_ERR_BUFFER;
    ret = mbedtls_base64_decode(der, cap, &olen, (const unsigned char *)body,
                                (size_t)(stop - body));
    if (ret != 0)
        return ret == MBEDTLS_ERR_BASE64_BUFFER_TOO_SMALL ? HSMC_ERR_BUFFER : HSMC_ERR_FORMAT;
    *der_len = olen;
    return HSMC_OK;
}
