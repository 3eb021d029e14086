/*
 * cmd_object.c: `hsmc object ...`: the objects on the selected token.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_flag_word_t usage_words[] = {
    {HSMC_USE_SIGN, "sign"},
    {HSMC_USE_VERIFY, "verify"},
    {HSMC_USE_ENCRYPT, "encrypt"},
    {HSMC_USE_DECRYPT, "decrypt"},
    {HSMC_USE_WRAP, "wrap"},
    {HSMC_USE_UNWRAP, "unwrap"},
    {HSMC_USE_DERIVE, "derive"},
    {HSMC_ATTR_SENSITIVE, "sensitive"},
    {HSMC_ATTR_EXTRACTABLE, "extractable"},
    {0, NULL}};

/* --type values (RFC 7512 spellings first) and their classes. */
static const struct {
    const char *name;
    CK_OBJECT_CLASS cls;
} type_names[] = {
    {"private", CKO_PRIVATE_KEY},  {"public", CKO_PUBLIC_KEY},
    {"cert", CKO_CERTIFICATE},     {"secret-key", CKO_SECRET_KEY},
    {"data", CKO_DATA},            {"private-key", CKO_PRIVATE_KEY},
    {"public-key", CKO_PUBLIC_KEY}, {"certificate", CKO_CERTIFICATE},
    {"secret", CKO_SECRET_KEY},    {NULL, 0}};

static const cli_opt_t list_opts[] = {
    {"label", 0, "LABEL", "only objects with this label (CKA_LABEL)"},
    {"id", 0, "HEX", "only objects with this id (CKA_ID, hex: 01, 0a1b, 0a:1b)"},
    {"type", 0, "TYPE", "only this class: private, public, cert, secret-key, data"},
    {"object", 0, "URI", "only objects matching a pkcs11: URI (object=, id=, type=, token=)"},
    {"login", 0, NULL, "ask for the PIN on the terminal when no PIN source is given"},
    {"json", 0, NULL, "print one JSON document on stdout instead of text"},
    {NULL, 0, NULL, NULL}};

typedef struct list_state {
    cli_ctx_t *c;
    int json;
    cli_json_t j;
} list_state_t;

static void put_usage_json(cli_json_t *j, unsigned usage)
{
    unsigned k;
    cli_json_arr(j, "usage");
    for (k = 0; usage_words[k].word != NULL; k++)
        if ((usage & usage_words[k].bit) && usage_words[k].bit < HSMC_ATTR_SENSITIVE)
            cli_json_str(j, NULL, usage_words[k].word);
    cli_json_end(j);
    cli_json_bool(j, "sensitive", (usage & HSMC_ATTR_SENSITIVE) != 0);
    cli_json_bool(j, "extractable", (usage & HSMC_ATTR_EXTRACTABLE) != 0);
    cli_json_bool(j, "private", (usage & HSMC_ATTR_PRIVATE) != 0);
    cli_json_bool(j, "token_object", (usage & HSMC_ATTR_TOKEN) != 0);
}

/* hsmc_list callback: one object, one line (or one JSON object). */
static int list_one(void *user, const hsmc_obj_t *o)
{
    list_state_t *st = (list_state_t *)user;
    char id[2 * HSMC_MAX_ID_LEN + 1], kt[24];
    const char *ktn = NULL;
    cli_hex(id, sizeof(id), o->id, o->id_len);
    if (o->key_type != CK_UNAVAILABLE_INFORMATION) {
        ktn = hsmc_key_type_name(o->key_type);
        if (strcmp(ktn, "?") == 0) {
            snprintf(kt, sizeof(kt), "0x%lx", (unsigned long)o->key_type);
            ktn = kt;
        }
    }
    if (st->json) {
        cli_json_obj(&st->j, NULL);
        cli_json_str(&st->j, "class", hsmc_class_name(o->cls));
        cli_json_str(&st->j, "key_type", ktn);
        cli_json_strn(&st->j, "label", o->label, o->label_len);
        cli_json_str(&st->j, "id", id);
        put_usage_json(&st->j, o->usage);
        cli_json_end(&st->j);
        return 0;
    }
    printf("%-12s %-11s label=\"", hsmc_class_name(o->cls), ktn != NULL ? ktn : "-");
    cli_put_safe(stdout, o->label, o->label_len);
    printf("\" id=%s usage=", o->id_len > 0 ? id : "-");
    cli_put_flags(stdout, o->usage & ~(HSMC_ATTR_TOKEN | HSMC_ATTR_PRIVATE), usage_words);
    putchar('\n');
    return 0;
}

static int object_list(cli_ctx_t *c)
{
    hsmc_obj_query_t q;
    uint8_t idbuf[HSMC_MAX_ID_LEN];
    const char *label = cli_opt(c, "label"), *id = cli_opt(c, "id");
    const char *type = cli_opt(c, "type"), *uri = cli_opt(c, "object");
    list_state_t st;
    size_t count = 0;
    hsmc_err_t r;
    int rc;

    memset(&q, 0, sizeof(q));
    memset(&st, 0, sizeof(st));
    st.c = c;
    st.json = cli_flag(c, "json");
    if (uri != NULL) {
        rc = cli_use_object_uri(c, uri);
        if (rc != CLI_EXIT_OK)
            return rc;
        r = hsmc_obj_query_from_uri(&q, &c->object_uri);
        if (r != HSMC_OK) {
            cli_err("--object: %s (%s)", hsmc_strerror(r), hsmc_err_name(r));
            return cli_exit_code(r);
        }
    }
    /* Explicit options refine (and override) the URI's attributes. */
    if (label != NULL)
        q.label = label;
    if (id != NULL) {
        size_t n = 0;
        if (cli_unhex(id, idbuf, sizeof(idbuf), &n) != 0) {
            cli_err("--id: expected up to %d bytes of hex (e.g. 01 or 0a:1b)", HSMC_MAX_ID_LEN);
            return CLI_EXIT_USAGE;
        }
        q.id = idbuf;
        q.id_len = n;
    }
    if (type != NULL) {
        size_t k;
        for (k = 0; type_names[k].name != NULL; k++)
            if (strcmp(type_names[k].name, type) == 0)
                break;
        if (type_names[k].name == NULL) {
            cli_err("--type: expected private, public, cert, secret-key or data");
            return CLI_EXIT_USAGE;
        }
        q.has_class = 1;
        q.cls = type_names[k].cls;
    }

    rc = cli_open(c, 0);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (!cli_logged_in(c))
        cli_note(c, "not logged in: private objects are not shown (give --pin-file, "
                    "--pin-env or HSMC_PIN to see them)");
    if (st.json) {
        cli_json_init(&st.j, stdout);
        cli_json_obj(&st.j, NULL);
        cli_json_bool(&st.j, "logged_in", cli_logged_in(c));
        cli_json_arr(&st.j, "objects");
    }
    r = hsmc_list(&c->h, &q, list_one, &st, &count);
    if (st.json) {
        cli_json_end(&st.j);
        cli_json_num(&st.j, "count", (unsigned long)count);
        cli_json_end(&st.j);
    }
    if (r != HSMC_OK)
        return cli_fail(c, r, "cannot list the objects");
    if (!st.json)
        printf("%lu object%s\n", (unsigned long)count, count == 1 ? "" : "s");
    return CLI_EXIT_OK;
}

static const cli_cmd_t object_cmds[] = {
    {"list", "list the objects on the selected token", "[OPTIONS]",
     "Prints one line per object: class, key type, label, id (hex) and usage: what\n"
     "the key may do (sign, verify, encrypt, decrypt, wrap, unwrap, derive) and\n"
     "whether it is sensitive or extractable. Filters combine; --label, --id and\n"
     "--type override the same attribute of --object. Without a PIN only public\n"
     "objects are visible.",
     "  hsmc object list --token test --pin-file /run/secrets/pin\n"
     "  hsmc object list --token test --pin-env PIN --type private\n"
     "  hsmc object list --object 'pkcs11:token=test;object=dev;type=private' --pin-file pin\n"
     "  hsmc object list --token test --id 01 --json\n",
     list_opts, CLI_PIN_OPTIONAL, 0, object_list},
    {NULL, NULL, NULL, NULL, NULL, NULL, CLI_PIN_NONE, 0, NULL}};

const cli_group_t cli_group_object = {"object", "Find and inspect objects (keys, certificates, data).",
                                      object_cmds, 0};
