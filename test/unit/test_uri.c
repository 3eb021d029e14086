/*
 * PKCS#11 URI parser (RFC 7512) and the URI-to-config helpers.
 *
 * First every example URI of RFC 7512 section 3.3, each decoded field
 * checked; then every way a URI can be wrong, each checking the error code,
 * that err_msg is set, that err_off points where the problem starts, and
 * that no field survives the failure.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "hsmc_test.h"

/* ---- helpers ----------------------------------------------------------- */

static hsmc_err_t parse(hsmc_uri_t *u, const char *text)
{
    return hsmc_uri_parse(u, text, strlen(text));
}

/* Number of attributes present, so each example also proves nothing extra was set. */
static int present(const hsmc_uri_t *u)
{
    const char *const text[] = {
        u->token,          u->manufacturer,      u->serial,          u->model,
        u->library_manufacturer, u->library_description, u->library_version,
        u->slot_description, u->slot_manufacturer, u->object,       u->module_name,
        u->module_path,    u->pin_source,        u->pin_value,
    };
    size_t i;
    int n = 0;
    for (i = 0; i < sizeof text / sizeof text[0]; i++)
        n += text[i] != NULL;
    n += u->id != NULL;
    n += u->has_slot_id != 0;
    n += u->has_type != 0;
    return n;
}

/* Every field absent: what a failed parse must leave. */
static int all_absent(const hsmc_uri_t *u)
{
    return present(u) == 0 && u->id_len == 0 && u->slot_id == 0 && u->type == 0;
}

static int str_is(const char *got, const char *want)
{
    return got != NULL && strcmp(got, want) == 0;
}

/* 1 when the pointer lies in the struct's own buffer (no allocation, no aliasing of the input). */
static int in_buf(const hsmc_uri_t *u, const void *p)
{
    const char *c = (const char *)p;
    return c >= u->buf && c < u->buf + sizeof u->buf;
}

/* Offset of the first occurrence of needle in text (the tests' way to say "here"). */
static size_t at(const char *text, const char *needle)
{
    const char *p = strstr(text, needle);
    return p != NULL ? (size_t)(p - text) : (size_t)-1;
}

/*
 * Parse text[0..len) expecting HSMC_ERR_URI with err_off == off and an
 * err_msg containing msg; on mismatch print what happened. The struct is
 * filled by a good URI first so that "fields absent afterwards" means the
 * failure cleared them, not that they were never set.
 */
static int rejects_n(const char *text, size_t len, size_t off, const char *msg)
{
    static hsmc_uri_t u;
    hsmc_err_t err;
    int ok = 1;

    if (parse(&u, "pkcs11:token=t;object=o;id=%01;type=cert;slot-id=1?pin-value=1234") != HSMC_OK)
        return 0;
    err = hsmc_uri_parse(&u, text, len);
    if (err != HSMC_ERR_URI) {
        fprintf(stderr, "  <%.*s>: got %s, want HSMC_ERR_URI\n", (int)len, text, hsmc_err_name(err));
        return 0;
    }
    if (u.err_msg == NULL || strstr(u.err_msg, msg) == NULL) {
        fprintf(stderr, "  <%.*s>: err_msg \"%s\" lacks \"%s\"\n", (int)len, text,
                u.err_msg ? u.err_msg : "(null)", msg);
        ok = 0;
    }
    if (u.err_off != off) {
        fprintf(stderr, "  <%.*s>: err_off %lu, want %lu (%s)\n", (int)len, text,
                (unsigned long)u.err_off, (unsigned long)off, u.err_msg ? u.err_msg : "");
        ok = 0;
    }
    if (!all_absent(&u)) {
        fprintf(stderr, "  <%.*s>: fields left after failure\n", (int)len, text);
        ok = 0;
    }
    return ok;
}

static int rejects(const char *text, size_t off, const char *msg)
{
    return rejects_n(text, strlen(text), off, msg);
}

/* ---- RFC 7512 section 3.3 examples ------------------------------------- */

static void test_rfc_empty(void)
{
    hsmc_uri_t u;
    /* "pkcs11:" alone: no attribute, matches everything. */
    CHECK_ERR(parse(&u, "pkcs11:"), HSMC_OK);
    CHECK(present(&u) == 0);
    CHECK(u.err_msg == NULL);
}

static void test_rfc_public_key(void)
{
    hsmc_uri_t u;
    CHECK_ERR(parse(&u, "pkcs11:object=my-pubkey;type=public"), HSMC_OK);
    CHECK(str_is(u.object, "my-pubkey"));
    CHECK(u.has_type && u.type == CKO_PUBLIC_KEY);
    CHECK(present(&u) == 2);
}

static void test_rfc_private_key_pin_source(void)
{
    hsmc_uri_t u;
    CHECK_ERR(parse(&u, "pkcs11:object=my-key;type=private?pin-source=file:/etc/token"), HSMC_OK);
    CHECK(str_is(u.object, "my-key"));
    CHECK(u.has_type && u.type == CKO_PRIVATE_KEY);
    CHECK(str_is(u.pin_source, "file:/etc/token"));
    CHECK(present(&u) == 3);
}

static void test_rfc_certificate_full(void)
{
    static const uint8_t want_id[] = {0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91};
    const char *text = "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;"
                       "manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;"
                       "type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial="
                       "?pin-source=file:/etc/token_pin";
    hsmc_uri_t u;
    CHECK_ERR(parse(&u, text), HSMC_OK);
    CHECK(str_is(u.token, "The Software PKCS#11 Softtoken"));
    CHECK(str_is(u.manufacturer, "Snake Oil, Inc."));
    CHECK(str_is(u.model, "1.0"));
    CHECK(str_is(u.object, "my-certificate"));
    CHECK(u.has_type && u.type == CKO_CERTIFICATE);
    CHECK(u.id != NULL && u.id_len == sizeof want_id && memcmp(u.id, want_id, sizeof want_id) == 0);
    /* "serial=" is present and empty (RFC 7512: matches an empty serial), not absent. */
    CHECK(str_is(u.serial, ""));
    CHECK(str_is(u.pin_source, "file:/etc/token_pin"));
    CHECK(present(&u) == 8);
    CHECK(in_buf(&u, u.token) && in_buf(&u, u.id) && in_buf(&u, u.serial) && in_buf(&u, u.pin_source));
}

static void test_rfc_module_name(void)
{
    hsmc_uri_t u;
    CHECK_ERR(parse(&u, "pkcs11:object=my-sign-key;type=private?module-name=mypkcs11"), HSMC_OK);
    CHECK(str_is(u.object, "my-sign-key"));
    CHECK(u.has_type && u.type == CKO_PRIVATE_KEY);
    CHECK(str_is(u.module_name, "mypkcs11"));
    CHECK(present(&u) == 3);
}

static void test_rfc_module_path(void)
{
    hsmc_uri_t u;
    CHECK_ERR(parse(&u, "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1"),
              HSMC_OK);
    CHECK(str_is(u.object, "my-sign-key"));
    CHECK(u.has_type && u.type == CKO_PRIVATE_KEY);
    CHECK(str_is(u.module_path, "/mnt/libmypkcs11.so.1"));
    CHECK(present(&u) == 3);
}

static void test_rfc_pin_value(void)
{
    hsmc_uri_t u;
    CHECK_ERR(parse(&u, "pkcs11:token=Software%20PKCS%2311%20softtoken;"
                        "manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin"),
              HSMC_OK);
    CHECK(str_is(u.token, "Software PKCS#11 softtoken"));
    CHECK(str_is(u.manufacturer, "Snake Oil, Inc."));
    CHECK(str_is(u.pin_value, "the-pin"));
    CHECK(present(&u) == 3);
}

static void test_rfc_slot_description(void)
{
    hsmc_uri_t u;
    CHECK_ERR(parse(&u, "pkcs11:slot-description=Sun%20Metaslot"), HSMC_OK);
    CHECK(str_is(u.slot_description, "Sun Metaslot"));
    CHECK(present(&u) == 1);
}

static void test_rfc_library(void)
{
    hsmc_uri_t u;
    CHECK_ERR(parse(&u, "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;"
                        "library-description=Soft%20Token%20Library;library-version=1.23"),
              HSMC_OK);
    CHECK(str_is(u.library_manufacturer, "Snake Oil, Inc."));
    CHECK(str_is(u.library_description, "Soft Token Library"));
    CHECK(str_is(u.library_version, "1.23"));
    CHECK(present(&u) == 3);
}

static void test_rfc_escaped_id_mixed_case(void)
{
    /* Hex digits in either case: %Ba %dd %Ca %fe. */
    static const uint8_t want_id[] = {0x01, 0x02, 0x03, 0xba, 0xdd, 0xca, 0xfe, 0x04, 0x05, 0x06};
    hsmc_uri_t u;
    CHECK_ERR(parse(&u, "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;"
                        "id=%01%02%03%Ba%dd%Ca%fe%04%05%06"),
              HSMC_OK);
    CHECK(str_is(u.token, "My token% created by Joe"));
    CHECK(str_is(u.library_version, "3"));
    CHECK(u.id_len == sizeof want_id && memcmp(u.id, want_id, sizeof want_id) == 0);
    CHECK(present(&u) == 3);
}

static void test_rfc_escaped_percent_semicolon(void)
{
    hsmc_uri_t u;
    CHECK_ERR(parse(&u, "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;"
                        "object=my-certificate;type=cert"),
              HSMC_OK);
    CHECK(str_is(u.token, "A name with a substring %;"));
    CHECK(str_is(u.object, "my-certificate"));
    CHECK(u.has_type && u.type == CKO_CERTIFICATE);
    CHECK(present(&u) == 3);
}

static void test_rfc_utf8(void)
{
    /*
     * The RFC's UTF-8 example names a token label of 34 bytes ("Name with a
     * small A with acute: " is 32, U+00E1 two more), but CK_TOKEN_INFO.label
     * holds 32: no token can carry that label, so hsmc reports the typo-like
     * value instead of searching for it. The RFC leaves length checks to the
     * consumer.
     */
    const char *text = "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;"
                       "object=my-certificate;type=cert";
    hsmc_uri_t u;
    CHECK(rejects(text, 13, "value too long for this attribute"));
    /* The same decoding with a label that fits: UTF-8 bytes pass through. */
    CHECK_ERR(parse(&u, "pkcs11:token=Small%20A%20with%20acute:%20%C3%A1;"
                        "object=my-certificate;type=cert"),
              HSMC_OK);
    CHECK(str_is(u.token, "Small A with acute: \xc3\xa1"));
    CHECK(str_is(u.object, "my-certificate"));
    CHECK(u.has_type && u.type == CKO_CERTIFICATE);
    CHECK(present(&u) == 3);
    /* Lower-case hex and a label of exactly 32 bytes ending in UTF-8. */
    CHECK_ERR(parse(&u, "pkcs11:token=Name%20with%20small%20A%20with%20acute:%20%c3%a1"), HSMC_OK);
    CHECK(u.token != NULL && strlen(u.token) == 32);
    CHECK(str_is(u.token, "Name with small A with acute: \xc3\xa1"));
}

static void test_rfc_vendor_attributes_rejected(void)
{
    /*
     * RFC 7512 lets consumers ignore vendor-specific attributes. hsmc does
     * not: an attribute it does not understand may narrow the selection,
     * and ignoring it could pick the wrong token or key. So the RFC's own
     * vendor example is rejected, pointing at the first vendor attribute.
     */
    const char *text = "pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a"
                       "?pin-source=file:/etc/token_pin&vendor-bbb=value-b";
    CHECK(rejects(text, at(text, "vendor-aaa"), "unknown attribute"));
    /* The query one alone is rejected the same way. */
    text = "pkcs11:token=my-token?pin-source=file:/etc/token_pin&vendor-bbb=value-b";
    CHECK(rejects(text, at(text, "vendor-bbb"), "unknown attribute"));
}

/* ---- more accepted forms ----------------------------------------------- */

static void test_every_attribute(void)
{
    const char *text = "pkcs11:token=tok;manufacturer=man;serial=ser;model=mod;"
                       "library-manufacturer=lm;library-description=ld;library-version=2.0;"
                       "slot-description=sd;slot-manufacturer=sm;slot-id=42;object=obj;id=%00%ff;"
                       "type=secret-key?module-name=mn&module-path=/m.so&pin-source=env:P&pin-value=pv";
    hsmc_uri_t u;
    CHECK_ERR(parse(&u, text), HSMC_OK);
    CHECK(str_is(u.token, "tok") && str_is(u.manufacturer, "man"));
    CHECK(str_is(u.serial, "ser") && str_is(u.model, "mod"));
    CHECK(str_is(u.library_manufacturer, "lm") && str_is(u.library_description, "ld"));
    CHECK(str_is(u.library_version, "2.0"));
    CHECK(str_is(u.slot_description, "sd") && str_is(u.slot_manufacturer, "sm"));
    CHECK(u.has_slot_id && u.slot_id == 42);
    CHECK(str_is(u.object, "obj"));
    /* A NUL byte is fine inside id, which is binary. */
    CHECK(u.id_len == 2 && u.id[0] == 0x00 && u.id[1] == 0xff);
    CHECK(u.has_type && u.type == CKO_SECRET_KEY);
    CHECK(str_is(u.module_name, "mn") && str_is(u.module_path, "/m.so"));
    CHECK(str_is(u.pin_source, "env:P") && str_is(u.pin_value, "pv"));
    CHECK(present(&u) == 17);
}

static void test_type_data_and_case(void)
{
    hsmc_uri_t u;
    CHECK_ERR(parse(&u, "pkcs11:type=data"), HSMC_OK);
    CHECK(u.has_type && u.type == CKO_DATA);
    /* The scheme is case-insensitive (RFC 3986), and so are the ABNF
     * literals of RFC 7512: attribute names and type keywords. */
    CHECK_ERR(parse(&u, "PKCS11:Token=gw;TYPE=Private"), HSMC_OK);
    CHECK(str_is(u.token, "gw"));
    CHECK(u.has_type && u.type == CKO_PRIVATE_KEY);
    /* Values keep their case. */
    CHECK_ERR(parse(&u, "Pkcs11:object=MyKey"), HSMC_OK);
    CHECK(str_is(u.object, "MyKey"));
}

static void test_reserved_characters_in_values(void)
{
    hsmc_uri_t u;
    /* '=' and '&' may appear raw in path values, '?' and ';' in query values. */
    CHECK_ERR(parse(&u, "pkcs11:object=a=b&c?module-path=/x?y;z&pin-source=tty:PIN?"), HSMC_OK);
    CHECK(str_is(u.object, "a=b&c"));
    CHECK(str_is(u.module_path, "/x?y;z"));
    CHECK(str_is(u.pin_source, "tty:PIN?"));
    /* An empty query part and an empty path part are both fine. */
    CHECK_ERR(parse(&u, "pkcs11:token=gw?"), HSMC_OK);
    CHECK(str_is(u.token, "gw") && present(&u) == 1);
    CHECK_ERR(parse(&u, "pkcs11:?pin-source=/p"), HSMC_OK);
    CHECK(str_is(u.pin_source, "/p") && present(&u) == 1);
    /* Percent-decoded digits count as digits. */
    CHECK_ERR(parse(&u, "pkcs11:slot-id=%31%32"), HSMC_OK);
    CHECK(u.has_slot_id && u.slot_id == 12);
    /* An empty id is present with length 0. */
    CHECK_ERR(parse(&u, "pkcs11:id="), HSMC_OK);
    CHECK(u.id != NULL && u.id_len == 0);
}

static void test_slot_id_limits(void)
{
    char text[80];
    char num[32];
    hsmc_uri_t u;

    CHECK_ERR(parse(&u, "pkcs11:slot-id=0"), HSMC_OK);
    CHECK(u.has_slot_id && u.slot_id == 0);
    CHECK_ERR(parse(&u, "pkcs11:slot-id=007"), HSMC_OK);
    CHECK(u.slot_id == 7);
    /* The largest CK_SLOT_ID is accepted... */
    snprintf(num, sizeof num, "%lu", (unsigned long)(CK_SLOT_ID)-1);
    snprintf(text, sizeof text, "pkcs11:slot-id=%s", num);
    CHECK_ERR(parse(&u, text), HSMC_OK);
    CHECK(u.slot_id == (CK_SLOT_ID)-1);
    /* ...and one more is not (ULONG_MAX ends in 5 for 32 and 64 bits). */
    REQUIRE(text[strlen(text) - 1] == '5');
    text[strlen(text) - 1] = '6';
    CHECK(rejects(text, 15, "too large"));
    CHECK(rejects("pkcs11:slot-id=99999999999999999999999999", 15, "too large"));
}

static void test_exact_limits_accepted(void)
{
    char text[HSMC_URI_MAX_LEN + 2];
    size_t n;
    hsmc_uri_t u;

    /* A 32-byte token label written as 96 characters of escapes: limits
     * count decoded bytes. */
    strcpy(text, "pkcs11:token=");
    for (n = 0; n < 32; n++)
        strcat(text, "%41");
    CHECK_ERR(parse(&u, text), HSMC_OK);
    CHECK(u.token != NULL && strlen(u.token) == 32);
    strcat(text, "%41");
    CHECK(rejects(text, 13, "too long"));

    /* A URI of exactly HSMC_URI_MAX_LEN bytes. */
    strcpy(text, "pkcs11:object=");
    for (n = 0; n < HSMC_MAX_LABEL_LEN; n++)
        strcat(text, "o");
    strcat(text, "?module-path=/");
    for (n = 0; n < HSMC_MAX_PATH_LEN - 1; n++)
        strcat(text, "m");
    strcat(text, "&pin-source=/");
    REQUIRE(strlen(text) < HSMC_URI_MAX_LEN);
    while (strlen(text) < HSMC_URI_MAX_LEN)
        strcat(text, "p");
    CHECK_ERR(hsmc_uri_parse(&u, text, HSMC_URI_MAX_LEN), HSMC_OK);
    CHECK(u.object != NULL && strlen(u.object) == HSMC_MAX_LABEL_LEN);
    CHECK(u.module_path != NULL && strlen(u.module_path) == HSMC_MAX_PATH_LEN);
    /* One byte more is too long, reported at the first byte over the limit. */
    strcat(text, "p");
    CHECK(rejects_n(text, HSMC_URI_MAX_LEN + 1, HSMC_URI_MAX_LEN, "longer than"));
}

static void test_input_not_modified_and_not_nul_terminated(void)
{
    /* len bounds the text: no NUL needed, the bytes after it are not read. */
    const char text[] = "pkcs11:token=a%20bXXXX";
    hsmc_uri_t u;
    CHECK_ERR(hsmc_uri_parse(&u, text, 18), HSMC_OK);
    CHECK(str_is(u.token, "a b"));
    CHECK(strcmp(text, "pkcs11:token=a%20bXXXX") == 0);
}

static void test_reparse_replaces(void)
{
    hsmc_uri_t u;
    CHECK_ERR(parse(&u, "pkcs11:token=a;object=b"), HSMC_OK);
    CHECK_ERR(parse(&u, "pkcs11:serial=c"), HSMC_OK);
    CHECK(u.token == NULL && u.object == NULL && str_is(u.serial, "c"));
    /* A success after a failure clears err_msg. */
    CHECK_ERR(parse(&u, "pkcs11:bogus=1"), HSMC_ERR_URI);
    CHECK(u.err_msg != NULL);
    CHECK_ERR(parse(&u, "pkcs11:"), HSMC_OK);
    CHECK(u.err_msg == NULL);
}

static void test_free_wipes(void)
{
    hsmc_uri_t u;
    const unsigned char *p = (const unsigned char *)&u;
    size_t i, nonzero = 0;

    CHECK_ERR(parse(&u, "pkcs11:token=gw?pin-value=secret-1234"), HSMC_OK);
    hsmc_uri_free(&u);
    for (i = 0; i < sizeof u; i++)
        nonzero += p[i] != 0;
    CHECK(nonzero == 0);
    hsmc_uri_free(NULL);
    hsmc_uri_init(NULL);
}

static void test_null_arguments(void)
{
    hsmc_uri_t u;
    CHECK_ERR(hsmc_uri_parse(NULL, "pkcs11:", 7), HSMC_ERR_ARG);
    CHECK_ERR(parse(&u, "pkcs11:token=x"), HSMC_OK);
    CHECK_ERR(hsmc_uri_parse(&u, NULL, 7), HSMC_ERR_ARG);
    CHECK(all_absent(&u));
    CHECK(u.err_msg != NULL);
}

/* ---- rejected URIs ----------------------------------------------------- */

static void test_percent_escapes(void)
{
    /* A '%' needs two hex digits after it; err_off points at the '%'. */
    CHECK(rejects("pkcs11:token=%4", 13, "truncated percent-escape"));
    CHECK(rejects("pkcs11:token=%", 13, "truncated percent-escape"));
    CHECK(rejects("pkcs11:token=ab%", 15, "truncated percent-escape"));
    CHECK(rejects("pkcs11:?pin-source=/x%2", 21, "truncated percent-escape"));
    /* A separator ends the value, so it cannot complete an escape. */
    CHECK(rejects("pkcs11:id=%4;object=x", 10, "truncated percent-escape"));
    CHECK(rejects("pkcs11:token=%zz", 13, "invalid percent-escape"));
    CHECK(rejects("pkcs11:token=a%4g", 14, "invalid percent-escape"));
    CHECK(rejects("pkcs11:token=a%g4", 14, "invalid percent-escape"));
    CHECK(rejects("pkcs11:id=%0x", 10, "invalid percent-escape"));
}

static void test_nul_outside_id(void)
{
    CHECK(rejects("pkcs11:token=a%00b", 14, "NUL"));
    CHECK(rejects("pkcs11:object=%00", 14, "NUL"));
    CHECK(rejects("pkcs11:slot-id=1%00", 16, "NUL"));
    CHECK(rejects("pkcs11:?pin-value=12%0034", 20, "NUL"));
    CHECK(rejects("pkcs11:?module-path=/lib%00.so", 24, "NUL"));
    /* A raw NUL or control byte in the text is refused where it stands. */
    CHECK(rejects_n("pkcs11:token=a\0b", 16, 14, "control character"));
    CHECK(rejects("pkcs11:token=gw\n", 15, "control character"));
}

static void test_unknown_attributes(void)
{
    CHECK(rejects("pkcs11:foo=bar", 7, "unknown attribute"));
    CHECK(rejects("pkcs11:token=a;label=b", 15, "unknown attribute"));
    CHECK(rejects("pkcs11:?pin=1234", 8, "unknown attribute"));
    CHECK(rejects("pkcs11:%74oken=a", 7, "unknown attribute"));
    /* A known attribute in the wrong part says which part it belongs in. */
    CHECK(rejects("pkcs11:pin-value=1234", 7, "query part"));
    CHECK(rejects("pkcs11:token=a;module-path=/m.so", 15, "query part"));
    CHECK(rejects("pkcs11:?token=a", 8, "path part"));
    CHECK(rejects("pkcs11:?pin-source=/p&object=k", 22, "path part"));
}

static void test_duplicates(void)
{
    CHECK(rejects("pkcs11:token=a;token=b", 15, "duplicate attribute"));
    CHECK(rejects("pkcs11:serial=;object=o;serial=x", 24, "duplicate attribute"));
    CHECK(rejects("pkcs11:type=cert;TYPE=cert", 17, "duplicate attribute"));
    CHECK(rejects("pkcs11:id=%01;id=%01", 14, "duplicate attribute"));
    CHECK(rejects("pkcs11:?pin-source=/a&pin-source=/b", 22, "duplicate attribute"));
    CHECK(rejects("pkcs11:?pin-value=1&module-path=/m&pin-value=2", 35, "duplicate attribute"));
}

static void test_malformed_attributes(void)
{
    CHECK(rejects("pkcs11:=x", 7, "empty attribute name"));
    CHECK(rejects("pkcs11:token=a;=x", 15, "empty attribute name"));
    CHECK(rejects("pkcs11:?=x", 8, "empty attribute name"));
    CHECK(rejects("pkcs11:token", 7, "missing '='"));
    CHECK(rejects("pkcs11:object=a;type", 16, "missing '='"));
    CHECK(rejects("pkcs11:?pin-source", 8, "missing '='"));
    CHECK(rejects("pkcs11:token=a;;object=b", 15, "empty attribute"));
    CHECK(rejects("pkcs11:token=a;", 15, "empty attribute"));
    CHECK(rejects("pkcs11:;", 7, "empty attribute"));
    CHECK(rejects("pkcs11:?&pin-source=/a", 8, "empty attribute"));
    CHECK(rejects("pkcs11:?pin-source=/a&", 22, "empty attribute"));
}

static void test_scheme(void)
{
    CHECK(rejects("", 0, "missing \"pkcs11:\" scheme"));
    CHECK(rejects("pkcs11", 0, "missing \"pkcs11:\" scheme"));
    CHECK(rejects("token=gw;object=k", 0, "missing \"pkcs11:\" scheme"));
    CHECK(rejects("/usr/lib/softhsm/libsofthsm2.so", 0, "missing \"pkcs11:\" scheme"));
    CHECK(rejects("pkcs11token=gw", 0, "missing \"pkcs11:\" scheme"));
    CHECK(rejects("pkcs12:token=gw", 0, "wrong URI scheme"));
    CHECK(rejects("file:/etc/key.pem", 0, "wrong URI scheme"));
    CHECK(rejects("https://example.com/pkcs11:token=gw", 0, "wrong URI scheme"));
    CHECK(rejects(" pkcs11:token=gw", 0, "scheme"));
}

static void test_slot_id_not_a_number(void)
{
    CHECK(rejects("pkcs11:slot-id=", 15, "decimal number"));
    CHECK(rejects("pkcs11:slot-id=abc", 15, "decimal number"));
    CHECK(rejects("pkcs11:slot-id=-1", 15, "decimal number"));
    CHECK(rejects("pkcs11:slot-id=+1", 15, "decimal number"));
    CHECK(rejects("pkcs11:slot-id=0x10", 15, "decimal number"));
    CHECK(rejects("pkcs11:slot-id=1%20", 15, "decimal number"));
    CHECK(rejects("pkcs11:token=a;slot-id=1.5", 23, "decimal number"));
}

static void test_bad_type(void)
{
    CHECK(rejects("pkcs11:type=key", 12, "type must be"));
    CHECK(rejects("pkcs11:type=", 12, "type must be"));
    CHECK(rejects("pkcs11:type=publicx", 12, "type must be"));
    CHECK(rejects("pkcs11:type=certificate", 12, "type must be"));
    CHECK(rejects("pkcs11:object=k;type=secret", 21, "type must be"));
}

static void test_bad_library_version(void)
{
    CHECK(rejects("pkcs11:library-version=", 23, "library-version"));
    CHECK(rejects("pkcs11:library-version=1.", 23, "library-version"));
    CHECK(rejects("pkcs11:library-version=.1", 23, "library-version"));
    CHECK(rejects("pkcs11:library-version=1.2.3", 23, "library-version"));
    CHECK(rejects("pkcs11:library-version=v1", 23, "library-version"));
    CHECK(rejects("pkcs11:library-version=1,2", 23, "library-version"));
    /* Each part is a CK_BYTE. */
    CHECK(rejects("pkcs11:library-version=256", 23, "library-version"));
    CHECK(rejects("pkcs11:library-version=2.1000", 23, "library-version"));
}

static void test_values_too_long(void)
{
    static const struct {
        const char *name;
        int query;
        size_t max;
    } limits[] = {
        {"token", 0, 32},
        {"manufacturer", 0, 32},
        {"serial", 0, 16},
        {"model", 0, 16},
        {"library-manufacturer", 0, 32},
        {"library-description", 0, 32},
        {"slot-description", 0, 64},
        {"slot-manufacturer", 0, 32},
        {"object", 0, HSMC_MAX_LABEL_LEN},
        {"id", 0, HSMC_MAX_ID_LEN},
        {"module-name", 1, HSMC_MAX_PATH_LEN},
        {"module-path", 1, HSMC_MAX_PATH_LEN},
        {"pin-source", 1, HSMC_MAX_PATH_LEN},
        {"pin-value", 1, HSMC_MAX_PIN_LEN},
    };
    char text[HSMC_URI_MAX_LEN + 1];
    size_t i, prefix;
    hsmc_uri_t u;

    for (i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        /* Exactly the field size is fine; one byte more is not. The value
         * starts with '/' so pin-source and module-path stay meaningful. */
        snprintf(text, sizeof text, "pkcs11:%s%s=", limits[i].query ? "?" : "", limits[i].name);
        prefix = strlen(text);
        REQUIRE(prefix + limits[i].max + 1 <= HSMC_URI_MAX_LEN);
        memset(text + prefix, 'v', limits[i].max);
        text[prefix] = '/';
        text[prefix + limits[i].max] = '\0';
        if (parse(&u, text) != HSMC_OK)
            fprintf(stderr, "  %s of %lu bytes refused: %s\n", limits[i].name,
                    (unsigned long)limits[i].max, u.err_msg);
        CHECK(parse(&u, text) == HSMC_OK);
        strcat(text, "v");
        if (!rejects(text, prefix, "value too long for this attribute"))
            fprintf(stderr, "  (attribute %s)\n", limits[i].name);
        CHECK(rejects(text, prefix, "value too long for this attribute"));
    }
    /* After other attributes the offset still points at the value. */
    CHECK(rejects("pkcs11:token=gw;serial=0123456789abcdefX", 23, "too long"));
}

/* ---- pin-source --------------------------------------------------------- */

static void test_pin_src_parse(void)
{
    hsmc_pin_src_t s;

    CHECK_ERR(hsmc_pin_src_parse(&s, "file:/etc/token"), HSMC_OK);
    CHECK(s.kind == HSMC_PIN_FILE && str_is(s.arg, "/etc/token"));
    /* RFC 7512 examples also use a bare absolute path. */
    CHECK_ERR(hsmc_pin_src_parse(&s, "/run/secrets/pin"), HSMC_OK);
    CHECK(s.kind == HSMC_PIN_FILE && str_is(s.arg, "/run/secrets/pin"));
    CHECK_ERR(hsmc_pin_src_parse(&s, "file:///run/pin"), HSMC_OK);
    CHECK(s.kind == HSMC_PIN_FILE && str_is(s.arg, "/run/pin"));
    CHECK_ERR(hsmc_pin_src_parse(&s, "env:HSMC_PIN"), HSMC_OK);
    CHECK(s.kind == HSMC_PIN_ENV && str_is(s.arg, "HSMC_PIN"));
    CHECK_ERR(hsmc_pin_src_parse(&s, "fd:0"), HSMC_OK);
    CHECK(s.kind == HSMC_PIN_FD && s.fd == 0 && s.arg == NULL);
    CHECK_ERR(hsmc_pin_src_parse(&s, "fd:17"), HSMC_OK);
    CHECK(s.kind == HSMC_PIN_FD && s.fd == 17);
    CHECK_ERR(hsmc_pin_src_parse(&s, "tty"), HSMC_OK);
    CHECK(s.kind == HSMC_PIN_TTY && s.arg == NULL);
    CHECK_ERR(hsmc_pin_src_parse(&s, "tty:Token PIN: "), HSMC_OK);
    CHECK(s.kind == HSMC_PIN_TTY && str_is(s.arg, "Token PIN: "));
    CHECK_ERR(hsmc_pin_src_parse(&s, "tty:"), HSMC_OK);
    CHECK(s.kind == HSMC_PIN_TTY && s.arg == NULL);
    /* The prefix is a scheme, so its case does not matter. */
    CHECK_ERR(hsmc_pin_src_parse(&s, "FILE:/etc/token"), HSMC_OK);
    CHECK(s.kind == HSMC_PIN_FILE && str_is(s.arg, "/etc/token"));
}

static void test_pin_src_parse_rejects(void)
{
    static const char *const bad[] = {
        "",           "file:",     "file://host/pin", "file://", "env:",    "env:A=B",
        "fd:",        "fd:-1",     "fd:x",            "fd:1x",   "fd:99999999999",
        "ttyS0",      "pin.txt",   "relative/path",   "builtin-dialog",     "|/bin/cat",
        "http://x/p", "value:1234",
    };
    char longpath[HSMC_MAX_PATH_LEN + 8];
    hsmc_pin_src_t s, before;
    size_t i;

    memset(&before, 0x5a, sizeof before);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(&s, &before, sizeof s);
        if (hsmc_pin_src_parse(&s, bad[i]) != HSMC_ERR_PIN_SOURCE)
            fprintf(stderr, "  pin source \"%s\" accepted\n", bad[i]);
        CHECK_ERR(hsmc_pin_src_parse(&s, bad[i]), HSMC_ERR_PIN_SOURCE);
        /* A failure leaves the destination as it was. */
        CHECK(memcmp(&s, &before, sizeof s) == 0);
    }
    /* A path must fit the context's copy (HSMC_MAX_PATH_LEN). */
    longpath[0] = '/';
    memset(longpath + 1, 'p', HSMC_MAX_PATH_LEN);
    longpath[HSMC_MAX_PATH_LEN + 1] = '\0';
    CHECK_ERR(hsmc_pin_src_parse(&s, longpath), HSMC_ERR_PIN_SOURCE);
    longpath[HSMC_MAX_PATH_LEN] = '\0';
    CHECK_ERR(hsmc_pin_src_parse(&s, longpath), HSMC_OK);

    CHECK_ERR(hsmc_pin_src_parse(NULL, "tty"), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_pin_src_parse(&s, NULL), HSMC_ERR_ARG);
}

/* ---- URI to configuration ---------------------------------------------- */

static void test_cfg_from_uri(void)
{
    hsmc_uri_t u;
    hsmc_cfg_t cfg;

    CHECK_ERR(parse(&u, "pkcs11:token=gw;serial=a1b2;model=SoftHSM%20v2;"
                        "manufacturer=SoftHSM%20project;slot-id=7;object=ignored"
                        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin"),
              HSMC_OK);
    hsmc_cfg_init(&cfg);
    CHECK_ERR(hsmc_cfg_from_uri(&cfg, &u), HSMC_OK);
    CHECK(str_is(cfg.module_path, "/usr/lib/softhsm/libsofthsm2.so"));
    CHECK(str_is(cfg.token.label, "gw"));
    CHECK(str_is(cfg.token.serial, "a1b2"));
    CHECK(str_is(cfg.token.model, "SoftHSM v2"));
    CHECK(str_is(cfg.token.manufacturer, "SoftHSM project"));
    CHECK(cfg.token.has_slot_id == 1 && cfg.token.slot_id == 7);
    CHECK(cfg.pin.kind == HSMC_PIN_FILE && str_is(cfg.pin.arg, "/run/pin"));
    /* cfg points into the URI's buffer. */
    CHECK(in_buf(&u, cfg.token.label) && in_buf(&u, cfg.pin.arg));
}

static void test_cfg_from_uri_keeps_defaults(void)
{
    hsmc_uri_t u;
    hsmc_cfg_t cfg;

    hsmc_cfg_init(&cfg);
    cfg.module_path = "/default.so";
    cfg.token.label = "default";
    cfg.token.serial = "s0";
    cfg.pin.kind = HSMC_PIN_ENV;
    cfg.pin.arg = "DEFAULT_PIN";
    cfg.flags = HSMC_CFG_READ_ONLY;

    /* Object attributes do not touch the configuration. */
    CHECK_ERR(parse(&u, "pkcs11:object=k;type=private"), HSMC_OK);
    CHECK_ERR(hsmc_cfg_from_uri(&cfg, &u), HSMC_OK);
    CHECK(str_is(cfg.module_path, "/default.so"));
    CHECK(str_is(cfg.token.label, "default") && str_is(cfg.token.serial, "s0"));
    CHECK(cfg.token.has_slot_id == 0);
    CHECK(cfg.pin.kind == HSMC_PIN_ENV && str_is(cfg.pin.arg, "DEFAULT_PIN"));
    CHECK(cfg.flags == HSMC_CFG_READ_ONLY);

    /* Only what the URI gives is replaced; the empty serial is kept as "". */
    CHECK_ERR(parse(&u, "pkcs11:token=other;serial="), HSMC_OK);
    CHECK_ERR(hsmc_cfg_from_uri(&cfg, &u), HSMC_OK);
    CHECK(str_is(cfg.token.label, "other") && str_is(cfg.token.serial, ""));
    CHECK(str_is(cfg.module_path, "/default.so"));
    CHECK(cfg.pin.kind == HSMC_PIN_ENV);
}

static void test_cfg_from_uri_pin_value(void)
{
    hsmc_uri_t u;
    hsmc_cfg_t cfg;

    CHECK_ERR(parse(&u, "pkcs11:token=gw?pin-value=12%2634"), HSMC_OK);
    hsmc_cfg_init(&cfg);
    cfg.pin.kind = HSMC_PIN_FILE;
    cfg.pin.arg = "/old";
    CHECK_ERR(hsmc_cfg_from_uri(&cfg, &u), HSMC_OK);
    CHECK(cfg.pin.kind == HSMC_PIN_VALUE);
    CHECK(cfg.pin.value_len == 5 && memcmp(cfg.pin.value, "12&34", 5) == 0);
    CHECK(cfg.pin.arg == NULL);
}

static void test_cfg_from_uri_errors(void)
{
    hsmc_uri_t u;
    hsmc_cfg_t cfg;

    hsmc_cfg_init(&cfg);
    cfg.token.label = "default";

    /* Both pin-source and pin-value: refused, cfg untouched. */
    CHECK_ERR(parse(&u, "pkcs11:token=x?pin-source=file:/p&pin-value=1234"), HSMC_OK);
    CHECK_ERR(hsmc_cfg_from_uri(&cfg, &u), HSMC_ERR_URI);
    CHECK(str_is(cfg.token.label, "default") && cfg.pin.kind == HSMC_PIN_NONE);

    /* module-name is not supported: hsmc needs a module-path. */
    CHECK_ERR(parse(&u, "pkcs11:token=x?module-name=softhsm2"), HSMC_OK);
    CHECK_ERR(hsmc_cfg_from_uri(&cfg, &u), HSMC_ERR_CONFIG);
    CHECK(str_is(cfg.token.label, "default"));

    /* A pin-source hsmc cannot read. */
    CHECK_ERR(parse(&u, "pkcs11:token=x?pin-source=builtin-dialog"), HSMC_OK);
    CHECK_ERR(hsmc_cfg_from_uri(&cfg, &u), HSMC_ERR_PIN_SOURCE);
    CHECK(str_is(cfg.token.label, "default") && cfg.pin.kind == HSMC_PIN_NONE);

    CHECK_ERR(hsmc_cfg_from_uri(NULL, &u), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_cfg_from_uri(&cfg, NULL), HSMC_ERR_ARG);
}

static void test_obj_query_from_uri(void)
{
    hsmc_uri_t u;
    hsmc_obj_query_t q;

    CHECK_ERR(parse(&u, "pkcs11:token=gw;object=device-key;id=%01%02%00;type=private"), HSMC_OK);
    CHECK_ERR(hsmc_obj_query_from_uri(&q, &u), HSMC_OK);
    CHECK(str_is(q.label, "device-key"));
    CHECK(q.id_len == 3 && memcmp(q.id, "\x01\x02\x00", 3) == 0);
    CHECK(q.has_class == 1 && q.cls == CKO_PRIVATE_KEY);

    /* A token-only URI gives a query that matches every object (all reset). */
    CHECK_ERR(parse(&u, "pkcs11:token=gw"), HSMC_OK);
    CHECK_ERR(hsmc_obj_query_from_uri(&q, &u), HSMC_OK);
    CHECK(q.label == NULL && q.id == NULL && q.id_len == 0 && q.has_class == 0);

    CHECK_ERR(parse(&u, "pkcs11:type=cert"), HSMC_OK);
    CHECK_ERR(hsmc_obj_query_from_uri(&q, &u), HSMC_OK);
    CHECK(q.label == NULL && q.has_class == 1 && q.cls == CKO_CERTIFICATE);

    CHECK_ERR(hsmc_obj_query_from_uri(NULL, &u), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_obj_query_from_uri(&q, NULL), HSMC_ERR_ARG);
}

int main(void)
{
    RUN(test_rfc_empty);
    RUN(test_rfc_public_key);
    RUN(test_rfc_private_key_pin_source);
    RUN(test_rfc_certificate_full);
    RUN(test_rfc_module_name);
    RUN(test_rfc_module_path);
    RUN(test_rfc_pin_value);
    RUN(test_rfc_slot_description);
    RUN(test_rfc_library);
    RUN(test_rfc_escaped_id_mixed_case);
    RUN(test_rfc_escaped_percent_semicolon);
    RUN(test_rfc_utf8);
    RUN(test_rfc_vendor_attributes_rejected);

    RUN(test_every_attribute);
    RUN(test_type_data_and_case);
    RUN(test_reserved_characters_in_values);
    RUN(test_slot_id_limits);
    RUN(test_exact_limits_accepted);
    RUN(test_input_not_modified_and_not_nul_terminated);
    RUN(test_reparse_replaces);
    RUN(test_free_wipes);
    RUN(test_null_arguments);

    RUN(test_percent_escapes);
    RUN(test_nul_outside_id);
    RUN(test_unknown_attributes);
    RUN(test_duplicates);
    RUN(test_malformed_attributes);
    RUN(test_scheme);
    RUN(test_slot_id_not_a_number);
    RUN(test_bad_type);
    RUN(test_bad_library_version);
    RUN(test_values_too_long);

    RUN(test_pin_src_parse);
    RUN(test_pin_src_parse_rejects);

    RUN(test_cfg_from_uri);
    RUN(test_cfg_from_uri_keeps_defaults);
    RUN(test_cfg_from_uri_pin_value);
    RUN(test_cfg_from_uri_errors);
    RUN(test_obj_query_from_uri);
    return TEST_END();
}
