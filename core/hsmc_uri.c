/*
 * PKCS#11 URI parser (RFC 7512), in place on the struct's fixed buffer.
 *
 * The text is copied into uri->buf at the same offsets it has in the input,
 * so an error offset found while scanning the buffer is also the offset in
 * the caller's text. Each value is then percent-decoded where it stands:
 * decoding only shrinks, so the decoded bytes and their NUL terminator fit
 * between the value's first byte and the separator that ends it. No
 * allocation, no recursion, a few words of stack.
 */
#include <stddef.h>
#include <string.h>

#include "hsmc_internal.h"

#define URI_SCHEME "pkcs11:"
#define URI_SCHEME_LEN 7u

/* What a value is checked and stored as. */
enum uri_kind {
    URI_KIND_TEXT,    /* NUL-terminated string field */
    URI_KIND_ID,      /* binary CKA_ID: may contain NUL, stored with a length */
    URI_KIND_SLOT_ID, /* decimal CK_SLOT_ID */
    URI_KIND_TYPE,    /* object class keyword */
    URI_KIND_VERSION  /* "M" or "M.m", kept as text */
};

/* Which part of the URI an attribute belongs to. */
enum uri_part { URI_PART_PATH, URI_PART_QUERY };

typedef struct uri_attr {
    const char *name;
    unsigned char part; /* enum uri_part */
    unsigned char kind; /* enum uri_kind */
    size_t max;         /* longest decoded value in bytes */
    size_t field;       /* offsetof the const char * member (TEXT, VERSION) */
} uri_attr_t;

/* No length limit beyond the buffer: the kind's own check decides. */
#define URI_NO_MAX ((size_t)HSMC_URI_MAX_LEN)

/*
 * Every attribute hsmc understands, with the size of the PKCS#11 field it
 * is compared against: a longer value could never match, so it is a typo
 * worth reporting. RFC 7512 also allows "vendor-*" attributes; hsmc rejects
 * them like any other unknown attribute, because silently ignoring a
 * selection criterion could pick the wrong token or key.
 */
static const uri_attr_t uri_attrs[] = {
    {"token", URI_PART_PATH, URI_KIND_TEXT, 32, offsetof(hsmc_uri_t, token)},
    {"manufacturer", URI_PART_PATH, URI_KIND_TEXT, 32, offsetof(hsmc_uri_t, manufacturer)},
    {"serial", URI_PART_PATH, URI_KIND_TEXT, 16, offsetof(hsmc_uri_t, serial)},
    {"model", URI_PART_PATH, URI_KIND_TEXT, 16, offsetof(hsmc_uri_t, model)},
    {"library-manufacturer", URI_PART_PATH, URI_KIND_TEXT, 32,
     offsetof(hsmc_uri_t, library_manufacturer)},
    {"library-description", URI_PART_PATH, URI_KIND_TEXT, 32,
     offsetof(hsmc_uri_t, library_description)},
    {"library-version", URI_PART_PATH, URI_KIND_VERSION, URI_NO_MAX,
     offsetof(hsmc_uri_t, library_version)},
    {"slot-description", URI_PART_PATH, URI_KIND_TEXT, 64, offsetof(hsmc_uri_t, slot_description)},
    {"slot-manufacturer", URI_PART_PATH, URI_KIND_TEXT, 32,
     offsetof(hsmc_uri_t, slot_manufacturer)},
    {"slot-id", URI_PART_PATH, URI_KIND_SLOT_ID, URI_NO_MAX, 0},
    {"object", URI_PART_PATH, URI_KIND_TEXT, HSMC_MAX_LABEL_LEN, offsetof(hsmc_uri_t, object)},
    {"id", URI_PART_PATH, URI_KIND_ID, HSMC_MAX_ID_LEN, 0},
    {"type", URI_PART_PATH, URI_KIND_TYPE, URI_NO_MAX, 0},
    {"module-name", URI_PART_QUERY, URI_KIND_TEXT, HSMC_MAX_PATH_LEN,
     offsetof(hsmc_uri_t, module_name)},
    {"module-path", URI_PART_QUERY, URI_KIND_TEXT, HSMC_MAX_PATH_LEN,
     offsetof(hsmc_uri_t, module_path)},
    {"pin-source", URI_PART_QUERY, URI_KIND_TEXT, HSMC_MAX_PATH_LEN,
     offsetof(hsmc_uri_t, pin_source)},
    {"pin-value", URI_PART_QUERY, URI_KIND_TEXT, HSMC_MAX_PIN_LEN,
     offsetof(hsmc_uri_t, pin_value)},
};

#define URI_NATTRS (sizeof uri_attrs / sizeof uri_attrs[0])

/* The duplicate check keeps one bit per attribute in an unsigned long. */
typedef char uri_attrs_fit_seen_mask[(URI_NATTRS <= 32u) ? 1 : -1];

typedef struct uri_type_name {
    const char *name;
    CK_OBJECT_CLASS cls;
} uri_type_name_t;

static const uri_type_name_t uri_types[] = {
    {"public", CKO_PUBLIC_KEY},   {"private", CKO_PRIVATE_KEY}, {"cert", CKO_CERTIFICATE},
    {"secret-key", CKO_SECRET_KEY}, {"data", CKO_DATA},
};

/* Parser state: the struct being filled and the first error found. */
typedef struct uri_ctx {
    hsmc_uri_t *uri;
    unsigned long seen; /* bit i: uri_attrs[i] already given */
    const char *err_msg;
    size_t err_off;
} uri_ctx_t;

/* Record an error (the caller returns at once, so only one is kept). */
static int uri_err(uri_ctx_t *c, const char *msg, size_t off)
{
    c->err_msg = msg;
    c->err_off = off;
    return -1;
}

static int uri_lower(int ch)
{
    return (ch >= 'A' && ch <= 'Z') ? ch - 'A' + 'a' : ch;
}

/* 1 when s[0..n) equals the lower-case keyword kw, ignoring ASCII case. */
static int uri_keyword_eq(const char *s, size_t n, const char *kw)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (kw[i] == '\0' || uri_lower((unsigned char)s[i]) != kw[i])
            return 0;
    }
    return kw[n] == '\0';
}

/* Value of a hex digit, or -1. */
static int uri_hex(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = uri_lower(ch);
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/*
 * Decode buf[start..end) in place from start; store the decoded length in
 * *out_len and NUL-terminate it (buf[end] is a separator already consumed
 * or the terminator, so there is room). A decoded NUL byte is refused
 * unless allow_nul: in a string field it would silently cut the value.
 */
static int uri_decode(uri_ctx_t *c, size_t start, size_t end, int allow_nul, size_t *out_len)
{
    char *buf = c->uri->buf;
    size_t r = start;
    size_t w = start;

    while (r < end) {
        if (buf[r] != '%') {
            buf[w++] = buf[r++];
            continue;
        }
        if (end - r < 3)
            return uri_err(c, "truncated percent-escape (want %XX)", r);
        {
            int hi = uri_hex((unsigned char)buf[r + 1]);
            int lo = uri_hex((unsigned char)buf[r + 2]);
            if (hi < 0 || lo < 0)
                return uri_err(c, "invalid percent-escape (want % and two hex digits)", r);
            if (hi == 0 && lo == 0 && !allow_nul)
                return uri_err(c, "%00 (NUL byte) is only allowed in id", r);
            buf[w++] = (char)((hi << 4) | lo);
        }
        r += 3;
    }
    buf[w] = '\0';
    *out_len = w - start;
    return 0;
}

/* slot-id: one or more decimal digits that fit CK_SLOT_ID. */
static int uri_slot_id(uri_ctx_t *c, const char *v, size_t n, size_t off)
{
    const CK_SLOT_ID max = (CK_SLOT_ID)-1;
    CK_SLOT_ID id = 0;
    size_t i;

    if (n == 0)
        return uri_err(c, "slot-id must be a decimal number", off);
    for (i = 0; i < n; i++) {
        CK_SLOT_ID d;
        if (v[i] < '0' || v[i] > '9')
            return uri_err(c, "slot-id must be a decimal number", off);
        d = (CK_SLOT_ID)(v[i] - '0');
        if (id > (max - d) / 10)
            return uri_err(c, "slot-id too large", off);
        id = id * 10 + d;
    }
    c->uri->has_slot_id = 1;
    c->uri->slot_id = id;
    return 0;
}

static int uri_type(uri_ctx_t *c, const char *v, size_t n, size_t off)
{
    size_t i;
    for (i = 0; i < sizeof uri_types / sizeof uri_types[0]; i++) {
        if (uri_keyword_eq(v, n, uri_types[i].name)) {
            c->uri->has_type = 1;
            c->uri->type = uri_types[i].cls;
            return 0;
        }
    }
    return uri_err(c, "type must be public, private, cert, secret-key or data", off);
}

/*
 * library-version: "M" or "M.m", decimal digits. Each part becomes a
 * CK_BYTE of CK_VERSION, so a part above 255 could never match.
 */
static int uri_version(uri_ctx_t *c, const char *v, size_t n, size_t off)
{
    static const char msg[] = "library-version must be M or M.m (decimal, each 0-255)";
    size_t i = 0;
    int part;

    for (part = 0; part < 2; part++) {
        unsigned val = 0;
        size_t digits = 0;
        while (i < n && v[i] >= '0' && v[i] <= '9') {
            val = val * 10u + (unsigned)(v[i] - '0');
            if (val > 255u)
                return uri_err(c, msg, off);
            i++;
            digits++;
        }
        if (digits == 0)
            return uri_err(c, msg, off);
        if (i == n)
            return 0;
        if (part == 0 && v[i] == '.')
            i++;
        else
            return uri_err(c, msg, off);
    }
    /* "M.m" followed by more text. */
    return uri_err(c, msg, off);
}

/* One "name=value" attribute occupying buf[start..end) of the given part. */
static int uri_attr(uri_ctx_t *c, size_t start, size_t end, unsigned part)
{
    hsmc_uri_t *uri = c->uri;
    const char *buf = uri->buf;
    const uri_attr_t *a = NULL;
    size_t eq = start;
    size_t vstart, vlen, i;

    if (start == end)
        return uri_err(c, "empty attribute (stray separator)", start);
    while (eq < end && buf[eq] != '=')
        eq++;
    if (eq == end)
        return uri_err(c, "missing '=' after attribute name", start);
    if (eq == start)
        return uri_err(c, "empty attribute name", start);

    /* Attribute names are ABNF literals, which RFC 5234 makes case-insensitive. */
    for (i = 0; i < URI_NATTRS; i++) {
        if (uri_keyword_eq(buf + start, eq - start, uri_attrs[i].name)) {
            a = &uri_attrs[i];
            break;
        }
    }
    if (a == NULL)
        return uri_err(c, "unknown attribute", start);
    if (a->part != part) {
        return uri_err(c,
                       a->part == URI_PART_QUERY
                           ? "attribute belongs in the query part (after '?')"
                           : "attribute belongs in the path part (before '?')",
                       start);
    }
    if (c->seen & (1ul << i))
        return uri_err(c, "duplicate attribute", start);
    c->seen |= 1ul << i;

    vstart = eq + 1;
    if (uri_decode(c, vstart, end, a->kind == URI_KIND_ID, &vlen) != 0)
        return -1;
    if (vlen > a->max)
        return uri_err(c, "value too long for this attribute", vstart);

    switch (a->kind) {
    case URI_KIND_ID:
        uri->id = (const uint8_t *)(const void *)(buf + vstart);
        uri->id_len = vlen;
        return 0;
    case URI_KIND_SLOT_ID:
        return uri_slot_id(c, buf + vstart, vlen, vstart);
    case URI_KIND_TYPE:
        return uri_type(c, buf + vstart, vlen, vstart);
    case URI_KIND_VERSION:
        if (uri_version(c, buf + vstart, vlen, vstart) != 0)
            return -1;
        break;
    default:
        break;
    }
    /* TEXT and VERSION: point the member named by the table at the value. */
    *(const char **)(void *)((unsigned char *)uri + a->field) = buf + vstart;
    return 0;
}

/*
 * The attributes of one part, buf[start..end), separated by sep. An empty
 * part has no attributes; otherwise every piece must be an attribute
 * (RFC 7512's grammar has no empty ones, so ";;" or a trailing ";" is an
 * error rather than something to guess about).
 */
static int uri_part(uri_ctx_t *c, size_t start, size_t end, char sep, unsigned part)
{
    size_t p = start;

    if (start == end)
        return 0;
    for (;;) {
        size_t e = p;
        while (e < end && c->uri->buf[e] != sep)
            e++;
        if (uri_attr(c, p, e, part) != 0)
            return -1;
        if (e == end)
            return 0;
        p = e + 1;
    }
}

/* 1 when text starts like some other URI scheme ("http:", "file:"). */
static int uri_other_scheme(const char *text, size_t len)
{
    size_t i;
    if (len == 0 || uri_lower((unsigned char)text[0]) < 'a' || uri_lower((unsigned char)text[0]) > 'z')
        return 0;
    for (i = 1; i < len; i++) {
        int ch = uri_lower((unsigned char)text[i]);
        if (ch == ':')
            return 1;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '+' || ch == '-' ||
              ch == '.'))
            return 0;
    }
    return 0;
}

void hsmc_uri_init(hsmc_uri_t *uri)
{
    if (uri != NULL)
        memset(uri, 0, sizeof *uri);
}

/* Undo everything (no half-parsed result, no leftover pin-value) but keep the error. */
static hsmc_err_t uri_fail(hsmc_uri_t *uri, const char *msg, size_t off)
{
    hsmc_uri_init(uri);
    uri->err_msg = msg;
    uri->err_off = off;
    return HSMC_ERR_URI;
}

hsmc_err_t hsmc_uri_parse(hsmc_uri_t *uri, const char *text, size_t len)
{
    uri_ctx_t c;
    size_t i, q;

    if (uri == NULL)
        return HSMC_ERR_ARG;
    hsmc_uri_init(uri);
    if (text == NULL) {
        uri->err_msg = "no URI given";
        return HSMC_ERR_ARG;
    }
    if (len > HSMC_URI_MAX_LEN)
        return uri_fail(uri, "URI longer than HSMC_URI_MAX_LEN", HSMC_URI_MAX_LEN);
    /* Raw control bytes (a NUL, a newline left from a config file) are never
     * part of a URI; percent-encode them if really meant. */
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch < 0x20u || ch == 0x7fu)
            return uri_fail(uri, "control character in URI (percent-encode it)", i);
    }
    if (len < URI_SCHEME_LEN || !uri_keyword_eq(text, URI_SCHEME_LEN, URI_SCHEME)) {
        return uri_fail(uri,
                        uri_other_scheme(text, len) ? "wrong URI scheme (want \"pkcs11:\")"
                                                    : "missing \"pkcs11:\" scheme",
                        0);
    }

    memcpy(uri->buf, text, len);
    uri->buf[len] = '\0';

    /* The first '?' ends the path; later ones belong to query values. */
    q = URI_SCHEME_LEN;
    while (q < len && uri->buf[q] != '?')
        q++;

    c.uri = uri;
    c.seen = 0;
    c.err_msg = NULL;
    c.err_off = 0;
    if (uri_part(&c, URI_SCHEME_LEN, q, ';', URI_PART_PATH) != 0 ||
        (q < len && uri_part(&c, q + 1, len, '&', URI_PART_QUERY) != 0))
        return uri_fail(uri, c.err_msg, c.err_off);
    return HSMC_OK;
}

void hsmc_uri_free(hsmc_uri_t *uri)
{
    if (uri == NULL)
        return;
    hsmc__wipe(uri, sizeof *uri); /* it may hold a pin-value */
}
