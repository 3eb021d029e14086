/*
 * cli_common.c: what every hsmc command shares: the command-line parser
 * (common and per-verb options), help texts, PIN-source selection, opening
 * the context, error reporting with exit codes and hints, and output
 * helpers (safe text, hex, flag words, a small JSON writer).
 *
 * The PIN itself never passes through this file: hsmc reads it from the
 * file, variable or terminal the user names, so it cannot end up in argv,
 * messages or logs.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"

#define CLI_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

static const char pin_refused_msg[] =
    "the PIN must not be given on the command line, where other users can read it "
    "in the process list; use --pin-file, --pin-env or HSMC_PIN";

static const char pin_options_msg[] =
    "give the user PIN with --pin-file FILE, --pin-env NAME, HSMC_PIN_FILE=FILE or "
    "HSMC_PIN=PIN (or run on a terminal to be asked)";

/* Options every verb accepts. Keep in step with docs/CLI.md. */
enum { CO_MODULE, CO_TOKEN, CO_PIN_FILE, CO_PIN_ENV, CO_LOG_FILE, CO_VERBOSE, CO_QUIET, CO_HELP, CO_VERSION };
static const cli_opt_t common_opts[] = {
    {"module", 0, "PATH", "PKCS#11 module to load (env HSMC_MODULE)"},
    {"token", 0, "URI|LABEL", "token: a pkcs11: URI or a token label (env HSMC_TOKEN)"},
    {"pin-file", 0, "FILE", "read the user PIN from the first line of FILE (env HSMC_PIN_FILE)"},
    {"pin-env", 0, "NAME", "read the user PIN from environment variable NAME"},
    {"log-file", 0, "PATH", "log to PATH (rotated by size) instead of stderr (env HSMC_LOG_FILE)"},
    {"verbose", 'v', NULL, "log what hsmc does to stderr (-vv: also debug)"},
    {"quiet", 'q', NULL, "no notes or hints on stderr, only errors"},
    {"help", 'h', NULL, "show help and exit"},
    {"version", 0, NULL, "show the version and exit"},
    {NULL, 0, NULL, NULL}};

static const char exit_codes_text[] =
    "Exit codes:\n"
    "  0  success\n"
    "  1  the operation failed (token or other error)\n"
    "  2  usage error: bad command or option, PIN on the command line, bad URI\n"
    "  3  the PKCS#11 module could not be loaded or initialised\n"
    "  4  token not found, or more than one token matches\n"
    "  5  PIN or login problem: incorrect, locked, final try, expired, no PIN given\n"
    "  6  object not found, or more than one object matches\n"
    "  7  the token does not support the operation\n"
    "  8  the signature does not verify (verify)\n"
    "  9  decryption failed: wrong key or --aad, tampered or truncated input\n"
    " 10  a key or object with that label already exists\n"
    " 11  refused by the certificate policy: role (HSMC_ROLE), root gate\n"
    "     (HSMC_ALLOW_ROOT_CA, --ceremony), name rules, validity, a CSR asking\n"
    "     for CA powers or with a key too weak for the profile\n"
    " 12  the audit trail is broken (audit verify names the first bad record;\n"
    "     provision refuses to append to a broken trail)\n";

static cli_ctx_t g_ctx;

/* ---- messages ------------------------------------------------------------ */

void cli_err(const char *fmt, ...)
{
    va_list ap;
    fputs("hsmc: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_note(const cli_ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    if (c != NULL && c->quiet)
        return;
    fputs("hsmc: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_exit_code(hsmc_err_t err)
{
    switch (err) {
    case HSMC_OK:
        return CLI_EXIT_OK;
    case HSMC_ERR_ARG:
    case HSMC_ERR_CONFIG:
    case HSMC_ERR_URI:
    case HSMC_ERR_PIN_REFUSED:
        return CLI_EXIT_USAGE;
    case HSMC_ERR_MODULE_LOAD:
    case HSMC_ERR_MODULE_INVALID:
    case HSMC_ERR_MODULE_INIT:
        return CLI_EXIT_MODULE;
    case HSMC_ERR_TOKEN_NOT_FOUND:
    case HSMC_ERR_TOKEN_AMBIGUOUS:
    case HSMC_ERR_TOKEN_NOT_PRESENT:
        return CLI_EXIT_TOKEN;
    case HSMC_ERR_PIN_SOURCE:
    case HSMC_ERR_PIN_INCORRECT:
    case HSMC_ERR_PIN_LOCKED:
    case HSMC_ERR_PIN_FINAL_TRY:
    case HSMC_ERR_PIN_EXPIRED:
    case HSMC_ERR_NOT_LOGGED_IN:
        return CLI_EXIT_PIN;
    case HSMC_ERR_OBJECT_NOT_FOUND:
    case HSMC_ERR_OBJECT_AMBIGUOUS:
        return CLI_EXIT_OBJECT;
    case HSMC_ERR_UNSUPPORTED:
        return CLI_EXIT_UNSUPPORTED;
    case HSMC_ERR_SIGNATURE:
        return CLI_EXIT_VERIFY;
    case HSMC_ERR_DECRYPT:
    case HSMC_ERR_TRUNCATED:
    case HSMC_ERR_SEQUENCE:
        return CLI_EXIT_DECRYPT;
    case HSMC_ERR_EXISTS:
        return CLI_EXIT_EXISTS;
    case HSMC_ERR_POLICY:
    case HSMC_ERR_CSR_EXT:
    case HSMC_ERR_KEY_WEAK:
        return CLI_EXIT_POLICY;
    case HSMC_ERR_AUDIT_CHAIN:
        return CLI_EXIT_AUDIT;
    default:
        return CLI_EXIT_FAIL;
    }
}

/* 1 when the token was chosen by the user (option, variable or URI). */
static int token_given(const cli_ctx_t *c)
{
    return c->cfg.token.label != NULL || c->cfg.token.serial != NULL ||
           c->cfg.token.model != NULL || c->cfg.token.manufacturer != NULL ||
           c->cfg.token.has_slot_id;
}

/* What the user can do about err; NULL when there is nothing useful to say. */
static const char *hint_for(const cli_ctx_t *c, hsmc_err_t err)
{
    switch (err) {
    case HSMC_ERR_PIN_INCORRECT:
        return "check the PIN; the token was asked once, so the retry counter dropped by one";
    case HSMC_ERR_PIN_FINAL_TRY:
        return "one more wrong PIN would lock the token, so hsmc did not try; make sure of the "
               "PIN, then log in once with the token's own tool (a correct login resets the "
               "counter) or have the security officer set a new PIN";
    case HSMC_ERR_PIN_LOCKED:
        return "the user PIN is locked; the security officer must set a new one (e.g. "
               "pkcs11-tool --init-pin --login --login-type so)";
    case HSMC_ERR_PIN_EXPIRED:
        return "the user PIN must be changed first (e.g. pkcs11-tool --change-pin --login)";
    case HSMC_ERR_PIN_SOURCE:
        return "the PIN file or variable must exist and hold the PIN on its first line";
    case HSMC_ERR_NOT_LOGGED_IN:
        return pin_options_msg;
    case HSMC_ERR_TOKEN_NOT_FOUND:
    case HSMC_ERR_TOKEN_NOT_PRESENT:
        return "run `hsmc token list` to see the labels";
    case HSMC_ERR_TOKEN_AMBIGUOUS:
        if (!token_given(c))
            return "the module has more than one token: give --token LABEL or a pkcs11: URI "
                   "(`hsmc token list` shows them)";
        return "add serial= to the URI, e.g. --token 'pkcs11:token=LABEL;serial=SERIAL' "
               "(`hsmc token list` shows the serials)";
    case HSMC_ERR_MODULE_LOAD:
    case HSMC_ERR_MODULE_INVALID:
    case HSMC_ERR_MODULE_INIT:
        return "check --module / HSMC_MODULE: it must name the token's PKCS#11 module (.so)";
    case HSMC_ERR_OBJECT_NOT_FOUND:
        return "run `hsmc key list` or `hsmc object list` to see what is there (private "
               "objects need a PIN)";
    case HSMC_ERR_OBJECT_AMBIGUOUS:
        return "narrow the selection with --id or --type (or id=/type= in the URI)";
    case HSMC_ERR_UNSUPPORTED:
        return "run `hsmc token test` to see what this token can do";
    case HSMC_ERR_URI:
        return "see RFC 7512; e.g. pkcs11:token=NAME;object=LABEL;type=private";
    case HSMC_ERR_EXISTS:
        return "choose another label, delete the old key first (`hsmc key delete LABEL`), or "
               "make a new version with `hsmc key rotate BASE`";
    case HSMC_ERR_KEY_USAGE:
        return "`hsmc key show LABEL` shows what the key may do; use a key made for this "
               "(e.g. `hsmc key gen --purpose ...`)";
    case HSMC_ERR_SIGNATURE:
        return "the data, the signature or the key is not the one that was signed";
    case HSMC_ERR_DECRYPT:
        return "check the key and --aad; otherwise the input was changed or cut short";
    case HSMC_ERR_TRUNCATED:
        return "the input was cut short (an interrupted copy or download?); nothing after the "
               "last authenticated chunk can be trusted";
    case HSMC_ERR_SEQUENCE:
        return "chunks of the stream were reordered, repeated, or come from another stream";
    case HSMC_ERR_FORMAT:
        return "the input is not in the format hsmc expects here (see docs/CLI.md)";
    case HSMC_ERR_KEY_ATTRS:
        return "the token made a key hsmc considers unsafe and it was destroyed; see the "
               "detail line";
    case HSMC_ERR_POLICY:
        return "the detail names the rule that refused it (role: HSMC_ROLE; root: "
               "HSMC_ALLOW_ROOT_CA and --ceremony; san-*/cn: the --allow-* and --cn rules; "
               "validity: --days); see docs/X509.md";
    case HSMC_ERR_CSR:
        return "the file is not a PKCS#10 request (PEM CERTIFICATE REQUEST or DER) or was "
               "damaged on the way; ask for the CSR again";
    case HSMC_ERR_CSR_EXT:
        return "a leaf certificate cannot be a CA: ask for a CSR without cA=TRUE, "
               "keyCertSign or cRLSign (a sub-CA is --profile ca_intermediate)";
    case HSMC_ERR_KEY_WEAK:
        return "the key is too weak for the profile: use EC P-256/P-384/P-521 or RSA of at "
               "least 2048 bits (3072 for a root)";
    case HSMC_ERR_CERT_KEY:
        return "the certificate belongs to another key: compare `hsmc cert show --cert FILE` "
               "(SPKI SHA-256) with `hsmc key show LABEL`";
    default:
        return NULL;
    }
}

int cli_fail(cli_ctx_t *c, hsmc_err_t err, const char *what)
{
    return cli_fail_hint(c, err, what, NULL);
}

int cli_fail_hint(cli_ctx_t *c, hsmc_err_t err, const char *what, const char *hint)
{
    if (hint == NULL)
        hint = hint_for(c, err);
    fprintf(stderr, "hsmc: %s: %s (%s)\n", what, hsmc_strerror(err), hsmc_err_name(err));
    /* The context's detail belongs to this error only when it recorded it. */
    if (hsmc_last_err(&c->h) == err) {
        const char *d = hsmc_detail(&c->h);
        CK_RV rv = hsmc_last_rv(&c->h);
        if (d[0] != '\0') {
            fputs("hsmc:   detail: ", stderr);
            cli_put_safe(stderr, d, strlen(d));
            fputc('\n', stderr);
        }
        if (rv != CKR_OK)
            fprintf(stderr, "hsmc:   PKCS#11: %s (0x%lx)\n", hsmc_ckr_name(rv), (unsigned long)rv);
    }
    if (hint != NULL && !c->quiet)
        fprintf(stderr, "hsmc:   hint: %s\n", hint);
    return cli_exit_code(err);
}

/* ---- text helpers ---------------------------------------------------------- */

void cli_pad_str(char *dst, size_t cap, const unsigned char *src, size_t len)
{
    size_t n = len;
    if (cap == 0)
        return;
    while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0'))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/*
 * Decode one UTF-8 sequence at s (avail bytes).
 * @return its length and *cp, or 0 when the bytes are not valid UTF-8
 *         (overlong, surrogate, beyond U+10FFFF, truncated).
 */
static size_t utf8_next(const unsigned char *s, size_t avail, unsigned long *cp)
{
    size_t n, i;
    unsigned long v, min;
    if (avail == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        n = 2; v = s[0] & 0x1fu; min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3; v = s[0] & 0x0fu; min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4; v = s[0] & 0x07u; min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

void cli_put_safe(FILE *f, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned long cp = 0;
        size_t n = utf8_next(p + i, len - i, &cp);
        /* Control characters (C0, DEL, C1) and broken UTF-8 could drive the
         * terminal; print them as \xNN. */
        if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
            fprintf(f, "\\x%02x", p[i]);
            i++;
        } else if (cp == '\\') {
            fputs("\\\\", f);
            i++;
        } else {
            fwrite(p + i, 1, n, f);
            i += n;
        }
    }
}

void cli_hex(char *dst, size_t cap, const unsigned char *b, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    if (cap == 0)
        return;
    for (i = 0; i < len && 2 * i + 2 < cap; i++) {
        dst[2 * i] = digits[b[i] >> 4];
        dst[2 * i + 1] = digits[b[i] & 0xf];
    }
    dst[2 * i] = '\0';
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int cli_unhex(const char *s, unsigned char *out, size_t cap, size_t *n)
{
    size_t k = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    if (*s == '\0')
        return -1;
    while (*s != '\0') {
        int hi, lo;
        if (*s == ':' && k > 0) {
            s++;
            continue;
        }
        hi = hexval(s[0]);
        lo = hi < 0 ? -1 : hexval(s[1]);
        if (hi < 0 || lo < 0 || k >= cap)
            return -1;
        out[k++] = (unsigned char)(hi << 4 | lo);
        s += 2;
    }
    *n = k;
    return 0;
}

unsigned cli_put_flags(FILE *f, unsigned long flags, const cli_flag_word_t *t)
{
    unsigned n = 0;
    unsigned long known = 0;
    for (; t->word != NULL; t++) {
        known |= t->bit;
        if (flags & t->bit)
            fprintf(f, "%s%s", n++ ? ", " : "", t->word);
    }
    if (flags & ~known)
        fprintf(f, "%sother flags 0x%lx", n++ ? ", " : "", flags & ~known);
    if (n == 0)
        fputs("none", f);
    return n;
}

/* ---- JSON writer ------------------------------------------------------------ */

void cli_json_init(cli_json_t *j, FILE *f)
{
    memset(j, 0, sizeof(*j));
    j->f = f;
}

static void json_indent(cli_json_t *j, int depth)
{
    int i;
    for (i = 0; i < depth; i++)
        fputs("  ", j->f);
}

/* A JSON string: valid UTF-8 passes, controls are escaped, broken bytes become U+FFFD. */
static void json_quote(FILE *f, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    fputc('"', f);
    while (i < len) {
        unsigned long cp = 0;
        size_t n = utf8_next(p + i, len - i, &cp);
        if (n == 0) {
            fputs("\\ufffd", f);
            i++;
            continue;
        }
        switch (cp) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (cp < 0x20 || cp == 0x7f)
                fprintf(f, "\\u%04lx", cp);
            else
                fwrite(p + i, 1, n, f);
        }
        i += n;
    }
    fputc('"', f);
}

/* Separator, newline, indentation and key before a value. */
static void json_pre(cli_json_t *j, const char *key)
{
    if (j->depth > 0) {
        int d = j->depth - 1;
        if (!j->first[d])
            fputc(',', j->f);
        j->first[d] = 0;
        fputc('\n', j->f);
        json_indent(j, j->depth);
        /* Keys only inside objects; an array element ignores it. */
        if (key != NULL && !j->is_arr[d]) {
            json_quote(j->f, key, strlen(key));
            fputs(": ", j->f);
        }
    }
}

static void json_open(cli_json_t *j, const char *key, int arr)
{
    json_pre(j, key);
    fputc(arr ? '[' : '{', j->f);
    if (j->depth < CLI_JSON_DEPTH) {
        j->first[j->depth] = 1;
        j->is_arr[j->depth] = (unsigned char)arr;
        j->depth++;
    }
}

void cli_json_obj(cli_json_t *j, const char *key) { json_open(j, key, 0); }
void cli_json_arr(cli_json_t *j, const char *key) { json_open(j, key, 1); }

void cli_json_end(cli_json_t *j)
{
    int d;
    if (j->depth == 0)
        return;
    d = --j->depth;
    if (!j->first[d]) {
        fputc('\n', j->f);
        json_indent(j, d);
    }
    fputc(j->is_arr[d] ? ']' : '}', j->f);
    if (d == 0)
        fputc('\n', j->f);
}

void cli_json_strn(cli_json_t *j, const char *key, const char *s, size_t len)
{
    json_pre(j, key);
    json_quote(j->f, s, len);
}

void cli_json_str(cli_json_t *j, const char *key, const char *s)
{
    if (s == NULL) {
        cli_json_null(j, key);
        return;
    }
    cli_json_strn(j, key, s, strlen(s));
}

void cli_json_num(cli_json_t *j, const char *key, unsigned long v)
{
    json_pre(j, key);
    fprintf(j->f, "%lu", v);
}

void cli_json_bool(cli_json_t *j, const char *key, int v)
{
    json_pre(j, key);
    fputs(v ? "true" : "false", j->f);
}

void cli_json_null(cli_json_t *j, const char *key)
{
    json_pre(j, key);
    fputs("null", j->f);
}

void cli_json_count(cli_json_t *j, const char *key, unsigned long v, int infinite_ok)
{
    if (v == CK_UNAVAILABLE_INFORMATION)
        cli_json_str(j, key, "unavailable");
    else if (infinite_ok && v == CK_EFFECTIVELY_INFINITE)
        cli_json_str(j, key, "unlimited");
    else
        cli_json_num(j, key, v);
}

void cli_json_flags(cli_json_t *j, const char *key, unsigned long flags,
                    const cli_flag_word_t *t)
{
    unsigned long known = 0;
    cli_json_arr(j, key);
    for (; t->word != NULL; t++) {
        known |= t->bit;
        if (flags & t->bit)
            cli_json_str(j, NULL, t->word);
    }
    if (flags & ~known) {
        char other[32];
        snprintf(other, sizeof(other), "0x%lx", flags & ~known);
        cli_json_str(j, NULL, other);
    }
    cli_json_end(j);
}

/* ---- help ---------------------------------------------------------------------- */

static void put_opts(FILE *f, const cli_opt_t *o)
{
    for (; o != NULL && o->name != NULL; o++) {
        char left[48];
        if (o->short_name)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->name,
                     o->arg ? " " : "", o->arg ? o->arg : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        if (strlen(left) > 24)
            fprintf(f, "  %s\n  %-24s  %s\n", left, "", o->help);
        else
            fprintf(f, "  %-24s  %s\n", left, o->help);
    }
}

static void put_top_help(FILE *f, const cli_group_t *const *groups, size_t ngroups)
{
    size_t g;
    fputs("Usage: hsmc [OPTIONS] GROUP COMMAND [OPTIONS] [ARGS]\n"
          "       hsmc [OPTIONS] COMMAND [OPTIONS] [ARGS]\n"
          "       hsmc help [GROUP] [COMMAND]\n"
          "       hsmc --version\n\n"
          "Use keys that never leave a PKCS#11 token (SoftHSM2, TPM 2.0, HSM).\n\n"
          "Commands:\n",
          f);
    for (g = 0; g < ngroups; g++) {
        const cli_cmd_t *k;
        for (k = groups[g]->cmds; k->verb != NULL; k++) {
            char name[40];
            if (groups[g]->toplevel)
                snprintf(name, sizeof(name), "%s", k->verb);
            else
                snprintf(name, sizeof(name), "%s %s", groups[g]->name, k->verb);
            fprintf(f, "  %-22s  %s\n", name, k->summary);
        }
    }
    fputs("\nCommon options (every command accepts them, before or after its name):\n", f);
    put_opts(f, common_opts);
    fputs("\nEnvironment:\n"
          "  HSMC_MODULE     PKCS#11 module, when --module is not given (default\n"
          "                  " CLI_DEFAULT_MODULE " when it exists)\n"
          "  HSMC_TOKEN      token URI or label, when --token is not given\n"
          "  HSMC_PIN_FILE   file holding the user PIN, when no other PIN source is given\n"
          "  HSMC_PIN        the user PIN itself, when no other PIN source is given\n"
          "  HSMC_ROLE       ca, app or any (default): which certificate operations this\n"
          "                  process may run (ca: issue, CRLs; app: no issuing)\n"
          "  HSMC_ALLOW_ROOT_CA  true allows root CA operations (ca init, issuing or\n"
          "                  CRLs with a root key); they also need --ceremony REF\n"
          "  HSMC_LOG_FILE   log file, when --log-file is not given (default: stderr)\n"
          "  HSMC_LOG_LEVEL  error, warn, info or debug (default: info with a log file\n"
          "                  or -v, debug with -vv, else no log)\n"
          "  HSMC_LOG_MAX_BYTES     rotate the log file at this size (default 10485760;\n"
          "                  0: never)\n"
          "  HSMC_LOG_BACKUP_COUNT  rotated files kept: PATH.1 .. PATH.N (default 5)\n"
          "  SOFTHSM2_CONF   SoftHSM2's configuration file (read by the module)\n\n"
          "The user PIN is taken from --pin-file, --pin-env, the URI's pin-source,\n"
          "HSMC_PIN_FILE, HSMC_PIN, or asked on the terminal, in that order. It is never\n"
          "accepted on the command line (--pin, -p, pin-value= in --token): other users\n"
          "can read the process list.\n\n",
          f);
    fputs(exit_codes_text, f);
    fputs("\nRun `hsmc GROUP COMMAND --help` (or `hsmc COMMAND --help`) for a command's\n"
          "options and examples.\n",
          f);
}

static void put_group_help(FILE *f, const cli_group_t *g)
{
    const cli_cmd_t *k;
    fprintf(f, "Usage: hsmc %s COMMAND [OPTIONS]\n\n%s\n\nCommands:\n", g->name, g->summary);
    for (k = g->cmds; k->verb != NULL; k++)
        fprintf(f, "  %-12s  %s\n", k->verb, k->summary);
    fprintf(f, "\nRun `hsmc %s COMMAND --help` for a command's options, `hsmc --help` for\n"
               "the common options, environment variables and exit codes.\n",
            g->name);
}

static void put_cmd_help(FILE *f, const cli_group_t *g, const cli_cmd_t *k)
{
    fprintf(f, "Usage: hsmc %s%s%s %s\n\n%c%s.\n", g->toplevel ? "" : g->name,
            g->toplevel ? "" : " ", k->verb, k->synopsis, toupper((unsigned char)k->summary[0]),
            k->summary + 1);
    if (k->help != NULL)
        fprintf(f, "\n%s\n", k->help);
    if (k->pin == CLI_PIN_REQUIRED)
        fputs("\nNeeds the user PIN: --pin-file, --pin-env, HSMC_PIN_FILE, HSMC_PIN or the\n"
              "terminal.\n",
              f);
    else if (k->pin == CLI_PIN_OPTIONAL)
        fputs("\nLogs in when a PIN source is given (--pin-file, --pin-env, HSMC_PIN_FILE,\n"
              "HSMC_PIN, pin-source in the URI); otherwise sees public objects only.\n",
              f);
    if (k->opts != NULL && k->opts[0].name != NULL) {
        fputs("\nOptions:\n", f);
        put_opts(f, k->opts);
    }
    fputs("\nCommon options:\n", f);
    put_opts(f, common_opts);
    if (k->examples != NULL)
        fprintf(f, "\nExamples:\n%s", k->examples);
    fputs("\nExit codes: 0 ok, 1 failed, 2 usage, 3 module, 4 token, 5 PIN, 6 object,\n"
          "7 unsupported, 8 bad signature, 9 cannot decrypt, 10 exists, 11 refused by\n"
          "policy (`hsmc --help` explains them).\n",
          f);
}

/* ---- parsing ------------------------------------------------------------------------ */

/* Edit distance of two short words (longer ones compare their first 31 bytes). */
static unsigned edit_distance(const char *a, const char *b)
{
    unsigned row[32];
    size_t la = strlen(a), lb = strlen(b), i, k;
    if (la > 31)
        la = 31;
    if (lb > 31)
        lb = 31;
    for (k = 0; k <= lb; k++)
        row[k] = (unsigned)k;
    for (i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (k = 1; k <= lb; k++) {
            unsigned up = row[k];
            unsigned best = diag + (a[i - 1] == b[k - 1] ? 0u : 1u);
            if (up + 1 < best)
                best = up + 1;
            if (row[k - 1] + 1 < best)
                best = row[k - 1] + 1;
            row[k] = best;
            diag = up;
        }
    }
    return row[lb];
}

/*
 * 1 when the argument gives a PIN on the command line: --pin, --pin=...,
 * --pin-value, --so-pin, --user-pin, or a short cluster with -p.
 */
static int is_pin_arg(const char *a)
{
    static const char *const longs[] = {"--pin", "--pin-value", "--so-pin", "--user-pin", NULL};
    size_t i;
    if (a[0] != '-')
        return 0;
    if (a[1] == '-') {
        for (i = 0; longs[i] != NULL; i++) {
            size_t n = strlen(longs[i]);
            if (strncmp(a, longs[i], n) == 0 && (a[n] == '\0' || a[n] == '='))
                return 1;
        }
        return 0;
    }
    return strchr(a + 1, 'p') != NULL;
}

static const cli_group_t *find_group(const cli_group_t *const *groups, size_t ngroups,
                                     const char *name)
{
    size_t g;
    for (g = 0; g < ngroups; g++)
        if (!groups[g]->toplevel && strcmp(groups[g]->name, name) == 0)
            return groups[g];
    return NULL;
}

/* A top-level command (`hsmc sign`): its group in *group, or NULL. */
static const cli_cmd_t *find_toplevel(const cli_group_t *const *groups, size_t ngroups,
                                      const char *verb, const cli_group_t **group)
{
    size_t g;
    for (g = 0; g < ngroups; g++) {
        const cli_cmd_t *k;
        if (!groups[g]->toplevel)
            continue;
        for (k = groups[g]->cmds; k->verb != NULL; k++) {
            if (strcmp(k->verb, verb) == 0) {
                *group = groups[g];
                return k;
            }
        }
    }
    return NULL;
}

static const cli_cmd_t *find_cmd(const cli_group_t *g, const char *verb)
{
    const cli_cmd_t *k;
    for (k = g->cmds; k->verb != NULL; k++)
        if (strcmp(k->verb, verb) == 0)
            return k;
    return NULL;
}

static int unknown_group(const char *name, const cli_group_t *const *groups, size_t ngroups)
{
    size_t g;
    const char *best = NULL;
    unsigned bestd = 3;
    for (g = 0; g < ngroups; g++) {
        const cli_cmd_t *k;
        if (!groups[g]->toplevel) {
            unsigned d = edit_distance(name, groups[g]->name);
            if (d < bestd) {
                bestd = d;
                best = groups[g]->name;
            }
            continue;
        }
        for (k = groups[g]->cmds; k->verb != NULL; k++) {
            unsigned d = edit_distance(name, k->verb);
            if (d < bestd) {
                bestd = d;
                best = k->verb;
            }
        }
    }
    fputs("hsmc: unknown command '", stderr);
    cli_put_safe(stderr, name, strlen(name));
    fputs("'", stderr);
    if (best != NULL)
        fprintf(stderr, "; did you mean '%s'?", best);
    fputs("\nhsmc: run `hsmc --help` to see the commands\n", stderr);
    return CLI_EXIT_USAGE;
}

static int unknown_verb(const cli_group_t *g, const char *verb)
{
    const cli_cmd_t *k;
    const char *best = NULL;
    unsigned bestd = 3;
    for (k = g->cmds; k->verb != NULL; k++) {
        unsigned d = edit_distance(verb, k->verb);
        if (d < bestd) {
            bestd = d;
            best = k->verb;
        }
    }
    fprintf(stderr, "hsmc: unknown command '%s ", g->name);
    cli_put_safe(stderr, verb, strlen(verb));
    fputs("'", stderr);
    if (best != NULL)
        fprintf(stderr, "; did you mean '%s %s'?", g->name, best);
    fprintf(stderr, "\nhsmc: run `hsmc %s --help` to see its commands\n", g->name);
    return CLI_EXIT_USAGE;
}

/* Where to point the user for help at the current parse position. */
static void put_help_pointer(const cli_ctx_t *c)
{
    if (c->cmd != NULL)
        fprintf(stderr, "hsmc: run `hsmc %s --help` for its options\n", cli_cmd_name(c));
    else if (c->group != NULL)
        fprintf(stderr, "hsmc: run `hsmc %s --help` for its commands\n", c->group->name);
    else
        fputs("hsmc: run `hsmc --help` for the options\n", stderr);
}

/* Find option `name` (len bytes) or short `sc` in a table; index or -1. */
static int find_opt(const cli_opt_t *t, const char *name, size_t len, char sc)
{
    int i;
    for (i = 0; t != NULL && t[i].name != NULL; i++) {
        if (sc != 0 ? t[i].short_name == sc
                    : (strlen(t[i].name) == len && strncmp(t[i].name, name, len) == 0))
            return i;
    }
    return -1;
}

/* Store a common option. @return 0 or an exit code. */
static int set_common(cli_ctx_t *c, int idx, const char *val, int *help, int *version)
{
    const char **slot = NULL;
    switch (idx) {
    case CO_MODULE: slot = &c->module; break;
    case CO_TOKEN: slot = &c->token; break;
    case CO_PIN_FILE: slot = &c->pin_file; break;
    case CO_PIN_ENV: slot = &c->pin_env; break;
    case CO_LOG_FILE: slot = &c->log_file; break;
    case CO_VERBOSE: c->verbose++; return 0;
    case CO_QUIET: c->quiet = 1; return 0;
    case CO_HELP: *help = 1; return 0;
    case CO_VERSION: *version = 1; return 0;
    default: return CLI_EXIT_USAGE;
    }
    if (*slot != NULL) {
        cli_err("option --%s was given twice", common_opts[idx].name);
        return CLI_EXIT_USAGE;
    }
    if (val[0] == '\0') {
        cli_err("option --%s needs a non-empty %s", common_opts[idx].name, common_opts[idx].arg);
        return CLI_EXIT_USAGE;
    }
    *slot = val;
    return 0;
}

/* 1 when the option may be repeated (metavariable "NAME..."). */
static int opt_is_multi(const cli_opt_t *o)
{
    size_t n = o->arg != NULL ? strlen(o->arg) : 0;
    return n > 3 && strcmp(o->arg + n - 3, "...") == 0;
}

/* Store a verb option. @return 0 or an exit code. */
static int set_cmd_opt(cli_ctx_t *c, int idx, const char *val)
{
    const cli_opt_t *o = &c->cmd->opts[idx];
    if (opt_is_multi(o)) {
        if (c->nmulti >= CLI_MAX_MULTI) {
            cli_err("option --%s: at most %d values", o->name, CLI_MAX_MULTI);
            return CLI_EXIT_USAGE;
        }
        c->multi_val[c->nmulti] = val;
        c->multi_idx[c->nmulti++] = idx;
    } else if (o->arg != NULL && c->cnt[idx] > 0) {
        cli_err("option --%s was given twice", o->name);
        return CLI_EXIT_USAGE;
    }
    if (c->cnt[idx] > 0 && o->arg != NULL) {
        c->cnt[idx]++; /* keep the first value for cli_opt() */
        return 0;
    }
    c->val[idx] = val != NULL ? val : "";
    c->cnt[idx]++;
    return 0;
}

/*
 * Parse the option at argv[*i] (a long option, or a cluster of short
 * ones), consuming its value. @return 0 or an exit code.
 */
static int parse_option(cli_ctx_t *c, int argc, char **argv, int *i, int *help, int *version)
{
    const char *a = argv[*i];
    const cli_opt_t *cmd_opts = c->cmd != NULL ? c->cmd->opts : NULL;
    if (a[1] == '-') {
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const cli_opt_t *o;
        const char *val = NULL;
        int ci = find_opt(cmd_opts, name, len, 0);
        int gi = ci < 0 ? find_opt(common_opts, name, len, 0) : -1;
        if (ci < 0 && gi < 0) {
            /* Only the name: a value after '=' might be a secret. */
            fputs("hsmc: unknown option '--", stderr);
            cli_put_safe(stderr, name, len);
            fputs("'\n", stderr);
            put_help_pointer(c);
            return CLI_EXIT_USAGE;
        }
        o = ci >= 0 ? &cmd_opts[ci] : &common_opts[gi];
        if (o->arg != NULL) {
            if (eq != NULL) {
                val = eq + 1;
            } else if (*i + 1 < argc) {
                val = argv[++*i];
            } else {
                cli_err("option --%s needs an argument (%s)", o->name, o->arg);
                put_help_pointer(c);
                return CLI_EXIT_USAGE;
            }
        } else if (eq != NULL) {
            cli_err("option --%s takes no argument", o->name);
            put_help_pointer(c);
            return CLI_EXIT_USAGE;
        }
        return ci >= 0 ? set_cmd_opt(c, ci, val) : set_common(c, gi, val, help, version);
    }
    /* Short options: a cluster like -vq; one that takes a value ends it. */
    for (a++; *a != '\0'; a++) {
        int ci = find_opt(cmd_opts, NULL, 0, *a);
        int gi = ci < 0 ? find_opt(common_opts, NULL, 0, *a) : -1;
        const cli_opt_t *o;
        const char *val = NULL;
        int r;
        if (ci < 0 && gi < 0) {
            fputs("hsmc: unknown option '-", stderr);
            cli_put_safe(stderr, a, 1);
            fputs("'\n", stderr);
            put_help_pointer(c);
            return CLI_EXIT_USAGE;
        }
        o = ci >= 0 ? &cmd_opts[ci] : &common_opts[gi];
        if (o->arg != NULL) {
            if (a[1] != '\0') {
                val = a + 1;
            } else if (*i + 1 < argc) {
                val = argv[++*i];
            } else {
                cli_err("option -%c needs an argument (%s)", o->short_name, o->arg);
                put_help_pointer(c);
                return CLI_EXIT_USAGE;
            }
        }
        r = ci >= 0 ? set_cmd_opt(c, ci, val) : set_common(c, gi, val, help, version);
        if (r != 0 || val != NULL)
            return r;
    }
    return 0;
}

const char *cli_opt(const cli_ctx_t *c, const char *name)
{
    int i;
    if (c->cmd == NULL)
        return NULL;
    i = find_opt(c->cmd->opts, name, strlen(name), 0);
    return i >= 0 ? c->val[i] : NULL;
}

int cli_flag(const cli_ctx_t *c, const char *name)
{
    return cli_opt(c, name) != NULL;
}

size_t cli_opt_all(const cli_ctx_t *c, const char *name, const char **out, size_t cap)
{
    unsigned k;
    size_t n = 0;
    int i;
    if (c->cmd == NULL)
        return 0;
    i = find_opt(c->cmd->opts, name, strlen(name), 0);
    for (k = 0; i >= 0 && k < c->nmulti; k++)
        if (c->multi_idx[k] == i && n < cap)
            out[n++] = c->multi_val[k];
    return n;
}

const char *cli_cmd_name(const cli_ctx_t *c)
{
    static char name[64];
    if (c->cmd == NULL)
        return c->group != NULL ? c->group->name : "";
    if (c->group->toplevel)
        return c->cmd->verb;
    snprintf(name, sizeof(name), "%s %s", c->group->name, c->cmd->verb);
    return name;
}

int cli_main(int argc, char **argv, const cli_group_t *const *groups, size_t ngroups)
{
    cli_ctx_t *c = &g_ctx;
    int i, help = 0, version = 0, help_cmd = 0, dashdash = 0, rc;
    size_t k;

    memset(c, 0, sizeof(*c));
    hsmc_init(&c->h);
    hsmc_uri_init(&c->token_uri);
    hsmc_uri_init(&c->object_uri);
    c->prog = "hsmc";
    for (k = 0; k < ngroups; k++) {
        const cli_cmd_t *cmd;
        for (cmd = groups[k]->cmds; cmd->verb != NULL; cmd++) {
            size_t n = 0;
            while (cmd->opts != NULL && cmd->opts[n].name != NULL)
                n++;
            if (n > CLI_MAX_CMD_OPTS || cmd->max_pos > CLI_MAX_POS) {
                cli_err("internal error: command %s %s has too many options", groups[k]->name,
                        cmd->verb);
                return CLI_EXIT_FAIL;
            }
        }
    }

    /* A PIN on the command line is refused before anything else happens,
     * whatever else is wrong with the line. */
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (is_pin_arg(argv[i])) {
            cli_err("%s", pin_refused_msg);
            return CLI_EXIT_USAGE;
        }
    }

    for (i = 1; i < argc && !help && !version; i++) {
        const char *a = argv[i];
        if (!dashdash && a[0] == '-' && a[1] != '\0') {
            if (strcmp(a, "--") == 0) {
                dashdash = 1;
                continue;
            }
            rc = parse_option(c, argc, argv, &i, &help, &version);
            if (rc != 0)
                return rc;
            continue;
        }
        if (c->group == NULL) {
            if (!help_cmd && strcmp(a, "help") == 0) {
                help_cmd = 1;
                continue;
            }
            c->group = find_group(groups, ngroups, a);
            if (c->group == NULL)
                c->cmd = find_toplevel(groups, ngroups, a, &c->group);
            if (c->group == NULL)
                return unknown_group(a, groups, ngroups);
        } else if (c->cmd == NULL) {
            c->cmd = find_cmd(c->group, a);
            if (c->cmd == NULL)
                return unknown_verb(c->group, a);
        } else if (help_cmd) {
            break;
        } else if (c->npos < c->cmd->max_pos) {
            c->pos[c->npos++] = a;
        } else {
            fputs("hsmc: unexpected argument '", stderr);
            cli_put_safe(stderr, a, strlen(a));
            fputs("'\n", stderr);
            put_help_pointer(c);
            return CLI_EXIT_USAGE;
        }
    }

    if (version) {
        printf("hsmc %s\n", HSMC_VERSION_STRING);
        return CLI_EXIT_OK;
    }
    if (help || help_cmd) {
        if (c->cmd != NULL)
            put_cmd_help(stdout, c->group, c->cmd);
        else if (c->group != NULL)
            put_group_help(stdout, c->group);
        else
            put_top_help(stdout, groups, ngroups);
        return CLI_EXIT_OK;
    }
    if (c->group == NULL) {
        cli_err("which command? run `hsmc --help` to see them");
        return CLI_EXIT_USAGE;
    }
    if (c->cmd == NULL) {
        cli_err("which %s command?", c->group->name);
        put_group_help(stderr, c->group);
        return CLI_EXIT_USAGE;
    }
    if (c->pin_file != NULL && c->pin_env != NULL) {
        cli_err("give only one of --pin-file and --pin-env");
        return CLI_EXIT_USAGE;
    }

    rc = cli_log_setup(c);
    if (rc != CLI_EXIT_OK)
        return rc;
    cli_log_msg(HSMC_LOG_INFO, "hsmc %s: start", cli_cmd_name(c));
    rc = c->cmd->run(c);
    if (c->open) {
        hsmc_close(&c->h);
        c->open = 0;
    }
    cli_log_msg(rc == CLI_EXIT_OK ? HSMC_LOG_INFO : HSMC_LOG_ERROR, "hsmc %s: exit %d",
                cli_cmd_name(c), rc);
    cli_log_close();
    hsmc_uri_free(&c->token_uri);
    hsmc_uri_free(&c->object_uri);
    if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
        cli_err("cannot write the output");
        rc = CLI_EXIT_FAIL;
    }
    return rc;
}

/* ---- opening the context ---------------------------------------------------------- */

/*
 * Parse a URI given on the command line (`what` names the option).
 * @return CLI_EXIT_OK or CLI_EXIT_USAGE (message printed).
 */
static int parse_uri(cli_ctx_t *c, hsmc_uri_t *uri, const char *text, const char *what,
                     int from_cmdline)
{
    hsmc_err_t r = hsmc_uri_parse(uri, text, strlen(text));
    if (r != HSMC_OK) {
        /* The text is not echoed: it might hold a pin-value. */
        if (uri->err_msg != NULL)
            cli_err("%s: not a valid PKCS#11 URI: %s (at byte %lu)", what, uri->err_msg,
                    (unsigned long)uri->err_off);
        else
            cli_err("%s: not a valid PKCS#11 URI: %s", what, hsmc_strerror(r));
        if (!c->quiet)
            fprintf(stderr, "hsmc:   hint: %s\n", hint_for(c, HSMC_ERR_URI));
        return CLI_EXIT_USAGE;
    }
    if (from_cmdline && uri->pin_value != NULL) {
        hsmc_uri_free(uri);
        cli_err("%s: %s", what, pin_refused_msg);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

int cli_use_object_uri(cli_ctx_t *c, const char *text)
{
    int rc;
    if (strncasecmp(text, "pkcs11:", 7) != 0) {
        cli_err("--object: a PKCS#11 URI must start with \"pkcs11:\" (use --label for a label)");
        return CLI_EXIT_USAGE;
    }
    rc = parse_uri(c, &c->object_uri, text, "--object", 1);
    if (rc == CLI_EXIT_OK)
        c->has_object_uri = 1;
    return rc;
}

/* Apply a parsed URI to c->cfg. @return CLI_EXIT_OK or an exit code (printed). */
static int apply_uri(cli_ctx_t *c, const hsmc_uri_t *uri, const char *what)
{
    hsmc_err_t r = hsmc_cfg_from_uri(&c->cfg, uri);
    if (r == HSMC_OK)
        return CLI_EXIT_OK;
    if (r == HSMC_ERR_CONFIG)
        cli_err("%s: module-name is not supported; give module-path= or --module", what);
    else if (r == HSMC_ERR_URI)
        cli_err("%s: give either pin-source or pin-value, not both", what);
    else if (r == HSMC_ERR_PIN_SOURCE)
        cli_err("%s: pin-source must be file:PATH, env:NAME, fd:N or tty", what);
    else
        cli_err("%s: %s (%s)", what, hsmc_strerror(r), hsmc_err_name(r));
    return r == HSMC_ERR_PIN_SOURCE ? CLI_EXIT_USAGE : cli_exit_code(r);
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* A short description of the selected token for messages. */
static void token_desc(const cli_ctx_t *c, char *out, size_t cap)
{
    const hsmc_token_sel_t *s = &c->cfg.token;
    if (s->label != NULL)
        snprintf(out, cap, "token '%s'", s->label);
    else if (s->serial != NULL)
        snprintf(out, cap, "token with serial %s", s->serial);
    else if (s->has_slot_id)
        snprintf(out, cap, "token in slot %lu", (unsigned long)s->slot_id);
    else
        snprintf(out, cap, "the token");
}

int cli_logged_in(const cli_ctx_t *c)
{
    return c->cfg.pin.kind != HSMC_PIN_NONE;
}

int cli_open(cli_ctx_t *c, unsigned flags)
{
    const char *token_text = c->token;
    int token_from_env = 0, rc;
    cli_pin_use_t pin_use = c->cmd->pin;
    hsmc_err_t r;
    char desc[96], what[160];

    hsmc_cfg_init(&c->cfg);
    /* Lowest precedence first; hsmc_cfg_from_uri only sets what the URI has. */
    c->cfg.module_path = env_nonempty("HSMC_MODULE");
    if (token_text == NULL) {
        token_text = env_nonempty("HSMC_TOKEN");
        token_from_env = 1;
    }
    if (token_text != NULL) {
        const char *what_tok = token_from_env ? "HSMC_TOKEN" : "--token";
        if (strncasecmp(token_text, "pkcs11:", 7) == 0) {
            /* A pin-value in HSMC_TOKEN stays private to the user's
             * environment; on the command line it is refused. */
            rc = parse_uri(c, &c->token_uri, token_text, what_tok, !token_from_env);
            if (rc == CLI_EXIT_OK)
                rc = apply_uri(c, &c->token_uri, what_tok);
            if (rc != CLI_EXIT_OK)
                return rc;
        } else {
            c->cfg.token.label = token_text;
        }
    }
    if (c->has_object_uri) {
        rc = apply_uri(c, &c->object_uri, "--object");
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    if (c->module != NULL)
        c->cfg.module_path = c->module;
    if (c->cfg.module_path == NULL) {
        if (access(CLI_DEFAULT_MODULE, F_OK) != 0) {
            cli_err("no PKCS#11 module given and the default %s does not exist",
                    CLI_DEFAULT_MODULE);
            if (!c->quiet)
                fputs("hsmc:   hint: give --module PATH or set HSMC_MODULE\n", stderr);
            return CLI_EXIT_MODULE;
        }
        c->cfg.module_path = CLI_DEFAULT_MODULE;
    }

    if (flags & CLI_OPEN_MODULE_ONLY) {
        c->cfg.flags |= HSMC_CFG_NO_TOKEN;
        pin_use = CLI_PIN_NONE;
    }
    if (flags & CLI_OPEN_NO_LOGIN)
        pin_use = CLI_PIN_NONE;
    token_desc(c, desc, sizeof(desc));

    if (pin_use == CLI_PIN_NONE) {
        memset(&c->cfg.pin, 0, sizeof(c->cfg.pin));
    } else if (c->pin_file != NULL) {
        memset(&c->cfg.pin, 0, sizeof(c->cfg.pin));
        c->cfg.pin.kind = HSMC_PIN_FILE;
        c->cfg.pin.arg = c->pin_file;
    } else if (c->pin_env != NULL) {
        memset(&c->cfg.pin, 0, sizeof(c->cfg.pin));
        c->cfg.pin.kind = HSMC_PIN_ENV;
        c->cfg.pin.arg = c->pin_env;
    } else if (c->cfg.pin.kind != HSMC_PIN_NONE) {
        /* pin-source (or an environment pin-value) from the URI */
    } else if (env_nonempty("HSMC_PIN_FILE") != NULL) {
        c->cfg.pin.kind = HSMC_PIN_FILE;
        c->cfg.pin.arg = env_nonempty("HSMC_PIN_FILE");
    } else if (getenv("HSMC_PIN") != NULL) {
        c->cfg.pin.kind = HSMC_PIN_ENV;
        c->cfg.pin.arg = "HSMC_PIN";
    } else if ((pin_use == CLI_PIN_REQUIRED || cli_flag(c, "login")) && isatty(STDIN_FILENO)) {
        snprintf(c->prompt, sizeof(c->prompt), "User PIN for %s: ", desc);
        c->cfg.pin.kind = HSMC_PIN_TTY;
        c->cfg.pin.arg = c->prompt;
    } else if (pin_use == CLI_PIN_REQUIRED || cli_flag(c, "login")) {
        cli_err("`hsmc %s` needs the user PIN and none was given (stdin is not a terminal)",
                cli_cmd_name(c));
        fprintf(stderr, "hsmc:   hint: %s\n", pin_options_msg);
        return CLI_EXIT_PIN;
    }

    if (cli_log_enabled(HSMC_LOG_ERROR)) {
        c->cfg.log = cli_log_cb;
        c->cfg.log_level = cli_log_level();
    }
    r = hsmc_open(&c->h, &c->cfg);
    if (r != HSMC_OK) {
        switch (cli_exit_code(r)) {
        case CLI_EXIT_MODULE:
            snprintf(what, sizeof(what), "cannot load PKCS#11 module %s", c->cfg.module_path);
            break;
        case CLI_EXIT_TOKEN:
            snprintf(what, sizeof(what), "cannot select %s", desc);
            break;
        case CLI_EXIT_PIN:
            snprintf(what, sizeof(what), "cannot log in to %s", desc);
            break;
        default:
            snprintf(what, sizeof(what), "cannot open %s", desc);
            break;
        }
        return cli_fail(c, r, what);
    }
    c->open = 1;
    return CLI_EXIT_OK;
}
