/*
 * From a parsed PKCS#11 URI to the structures the rest of hsmc takes: the
 * open configuration (module, token selection, PIN source) and an object
 * query. These take no hsmc_t, so errors are return codes only; the
 * parser's err_msg has already explained any syntax problem.
 */
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "hsmc/object.h"
#include "hsmc/token.h"

static int cfg_lower(int ch)
{
    return (ch >= 'A' && ch <= 'Z') ? ch - 'A' + 'a' : ch;
}

/*
 * When spec starts with the lower-case prefix (ASCII case ignored, as URI
 * schemes are), return what follows it; else NULL.
 */
static const char *cfg_after(const char *spec, const char *prefix)
{
    while (*prefix != '\0') {
        if (cfg_lower((unsigned char)*spec) != *prefix)
            return NULL;
        spec++;
        prefix++;
    }
    return spec;
}

/* A file name, variable name or prompt must fit the context's pin_arg. */
static int cfg_arg_ok(const char *arg)
{
    return strlen(arg) <= HSMC_MAX_PATH_LEN;
}

hsmc_err_t hsmc_pin_src_parse(hsmc_pin_src_t *src, const char *spec)
{
    hsmc_pin_src_t s;
    const char *rest;

    if (src == NULL || spec == NULL)
        return HSMC_ERR_ARG;
    memset(&s, 0, sizeof s);

    if (spec[0] == '/') {
        /* Bare absolute path, as in RFC 7512's "pin-source=/etc/token". */
        s.kind = HSMC_PIN_FILE;
        s.arg = spec;
    } else if ((rest = cfg_after(spec, "file:")) != NULL) {
        /* "file:///p" is the RFC 8089 spelling of "file:/p"; any other
         * "file://" names a remote host, which is not a local PIN file. */
        if (rest[0] == '/' && rest[1] == '/') {
            if (rest[2] != '/')
                return HSMC_ERR_PIN_SOURCE;
            rest += 2;
        }
        if (rest[0] == '\0')
            return HSMC_ERR_PIN_SOURCE;
        s.kind = HSMC_PIN_FILE;
        s.arg = rest;
    } else if ((rest = cfg_after(spec, "env:")) != NULL) {
        /* '=' cannot occur in an environment variable name. */
        if (rest[0] == '\0' || strchr(rest, '=') != NULL)
            return HSMC_ERR_PIN_SOURCE;
        s.kind = HSMC_PIN_ENV;
        s.arg = rest;
    } else if ((rest = cfg_after(spec, "fd:")) != NULL) {
        int fd = 0;
        if (rest[0] == '\0')
            return HSMC_ERR_PIN_SOURCE;
        for (; *rest != '\0'; rest++) {
            int d = *rest - '0';
            if (d < 0 || d > 9 || fd > (INT_MAX - d) / 10)
                return HSMC_ERR_PIN_SOURCE;
            fd = fd * 10 + d;
        }
        s.kind = HSMC_PIN_FD;
        s.fd = fd;
    } else if ((rest = cfg_after(spec, "tty")) != NULL && (rest[0] == '\0' || rest[0] == ':')) {
        s.kind = HSMC_PIN_TTY;
        /* "tty" and "tty:" both mean the default prompt. */
        s.arg = (rest[0] == ':' && rest[1] != '\0') ? rest + 1 : NULL;
    } else {
        return HSMC_ERR_PIN_SOURCE;
    }

    if (s.arg != NULL && !cfg_arg_ok(s.arg))
        return HSMC_ERR_PIN_SOURCE;
    *src = s;
    return HSMC_OK;
}

hsmc_err_t hsmc_cfg_from_uri(hsmc_cfg_t *cfg, const hsmc_uri_t *uri)
{
    hsmc_pin_src_t pin;

    if (cfg == NULL || uri == NULL)
        return HSMC_ERR_ARG;
    /* hsmc loads modules by file only; a name would need a search policy
     * (directories, p11-kit config) that hsmc does not have. */
    if (uri->module_name != NULL)
        return HSMC_ERR_CONFIG;
    /* RFC 7512: a URI with both should be refused; which one to trust is
     * not ours to guess. */
    if (uri->pin_source != NULL && uri->pin_value != NULL)
        return HSMC_ERR_URI;

    /* Check everything that can fail before touching cfg. */
    pin = cfg->pin;
    if (uri->pin_source != NULL) {
        hsmc_err_t err = hsmc_pin_src_parse(&pin, uri->pin_source);
        if (err != HSMC_OK)
            return err;
    } else if (uri->pin_value != NULL) {
        memset(&pin, 0, sizeof pin);
        pin.kind = HSMC_PIN_VALUE;
        pin.value = uri->pin_value;
        pin.value_len = strlen(uri->pin_value);
    }

    if (uri->module_path != NULL)
        cfg->module_path = uri->module_path;
    if (uri->token != NULL)
        cfg->token.label = uri->token;
    if (uri->serial != NULL)
        cfg->token.serial = uri->serial;
    if (uri->model != NULL)
        cfg->token.model = uri->model;
    if (uri->manufacturer != NULL)
        cfg->token.manufacturer = uri->manufacturer;
    if (uri->has_slot_id) {
        cfg->token.has_slot_id = 1;
        cfg->token.slot_id = uri->slot_id;
    }
    cfg->pin = pin;
    return HSMC_OK;
}

hsmc_err_t hsmc_obj_query_from_uri(hsmc_obj_query_t *q, const hsmc_uri_t *uri)
{
    if (q == NULL || uri == NULL)
        return HSMC_ERR_ARG;
    memset(q, 0, sizeof *q);
    q->label = uri->object;
    q->id = uri->id;
    q->id_len = uri->id_len;
    if (uri->has_type) {
        q->has_class = 1;
        q->cls = uri->type;
    }
    return HSMC_OK;
}
