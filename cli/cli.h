/*
 * cli.h: shared pieces of the hsmc command.
 *
 * The command is a table of groups ("token", "object", ...), each a table
 * of verbs ("list", "info", ...). A verb names its handler, its help text,
 * its own options and whether it needs the user PIN; cli_common.c parses
 * the command line once for every verb (common options, PIN sources,
 * PKCS#11 URIs), opens the context, and prints errors and help the same
 * way everywhere. A new group is one cmd_<group>.c with a cli_group_t and
 * one line in hsmc.c.
 */
#ifndef HSMC_CLI_H
#define HSMC_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "hsmc/hsmc.h"

/* Exit codes of the hsmc command (documented in `hsmc --help` and docs/CLI.md). */
typedef enum cli_exit {
    CLI_EXIT_OK = 0,          /* success */
    CLI_EXIT_FAIL = 1,        /* the operation failed (token or other error) */
    CLI_EXIT_USAGE = 2,       /* bad command line: option, PIN on the command line, URI */
    CLI_EXIT_MODULE = 3,      /* the PKCS#11 module could not be loaded or initialised */
    CLI_EXIT_TOKEN = 4,       /* token not found or ambiguous */
    CLI_EXIT_PIN = 5,         /* PIN or login problem (incorrect, locked, final try, none given) */
    CLI_EXIT_OBJECT = 6,      /* object not found or ambiguous */
    CLI_EXIT_UNSUPPORTED = 7, /* the token cannot do it */
    CLI_EXIT_VERIFY = 8,      /* the signature does not verify */
    CLI_EXIT_DECRYPT = 9,     /* decryption failed: wrong key or AAD, tampered or truncated data */
    CLI_EXIT_EXISTS = 10,     /* an object with that label already exists */
    CLI_EXIT_POLICY = 11,     /* refused by the certificate policy: role, root gate, name rules,
                                 validity, CA powers asked for, weak key */
    CLI_EXIT_AUDIT = 12       /* the audit trail is broken (audit verify; provision refuses to
                                 append to it) */
} cli_exit_t;

/* Limits of the command-line parser. */
#define CLI_MAX_CMD_OPTS 24 /* options of one verb */
#define CLI_MAX_POS 8       /* positional arguments of one verb */
#define CLI_MAX_MULTI 16    /* values of all repeatable options of one verb */

/* Largest input read whole into memory (signing, non-streamed encryption). */
#define CLI_MEM_MAX ((size_t)256 * 1024 * 1024)

/*
 * One option of a verb (or a common option). An option whose metavariable
 * ends in "..." ("LABEL...") may be given more than once; cli_opt_all()
 * returns every value (cli_opt() the first). Any other option given twice
 * is a usage error.
 */
typedef struct cli_opt {
    const char *name;  /* long name without "--" */
    char short_name;   /* single-letter alias, 0 when none; never 'p' (refused as a PIN) */
    const char *arg;   /* metavariable shown in help ("FILE"); NULL for a flag */
    const char *help;  /* one line */
} cli_opt_t;

/* How a verb uses the user PIN. */
typedef enum cli_pin_use {
    CLI_PIN_NONE = 0,   /* never logs in */
    CLI_PIN_OPTIONAL,   /* logs in when a PIN source is given (no prompt unless --login) */
    CLI_PIN_REQUIRED    /* must log in; prompts on a terminal when no source is given */
} cli_pin_use_t;

struct cli_ctx;

/* A verb's handler: returns a cli_exit_t. Errors are already printed. */
typedef int (*cli_handler_t)(struct cli_ctx *c);

typedef struct cli_cmd {
    const char *verb;       /* "list" */
    const char *summary;    /* one line for the group listing */
    const char *synopsis;   /* after "hsmc GROUP VERB ", e.g. "[OPTIONS]" */
    const char *help;       /* paragraph(s) for --help; may be NULL */
    const char *examples;   /* lines for --help; may be NULL */
    const cli_opt_t *opts;  /* the verb's own options, NULL-name terminated; may be NULL */
    cli_pin_use_t pin;      /* PIN use */
    unsigned max_pos;       /* positional arguments accepted (<= CLI_MAX_POS) */
    cli_handler_t run;
} cli_cmd_t;

typedef struct cli_group {
    const char *name;       /* "token"; titles the commands in help when toplevel */
    const char *summary;    /* one line */
    const cli_cmd_t *cmds;  /* terminated by an entry with verb NULL */
    int toplevel;           /* 1: each verb is a command of its own (`hsmc sign`),
                               not `hsmc GROUP VERB` */
} cli_group_t;

/* Everything one invocation knows; a single static instance lives in cli_common.c. */
typedef struct cli_ctx {
    const char *prog;                 /* "hsmc" */
    const cli_group_t *group;
    const cli_cmd_t *cmd;
    /* Common options. */
    const char *module;               /* --module */
    const char *token;                /* --token */
    const char *pin_file;             /* --pin-file */
    const char *pin_env;              /* --pin-env */
    const char *log_file;             /* --log-file */
    int verbose;                      /* -v count */
    int quiet;                        /* -q */
    /* The verb's options, parallel to cmd->opts: value (flags get "") and count. */
    const char *val[CLI_MAX_CMD_OPTS];
    unsigned cnt[CLI_MAX_CMD_OPTS];
    const char *pos[CLI_MAX_POS];
    unsigned npos;
    /* Every value of the repeatable options, in command-line order. */
    const char *multi_val[CLI_MAX_MULTI];
    int multi_idx[CLI_MAX_MULTI];     /* index into cmd->opts */
    unsigned nmulti;
    /* The open context and what it was opened with. */
    hsmc_t h;
    int open;
    hsmc_cfg_t cfg;
    hsmc_uri_t token_uri;             /* --token / HSMC_TOKEN when it is a URI */
    hsmc_uri_t object_uri;            /* --object */
    int has_object_uri;
    char prompt[128];                  /* terminal PIN prompt */
} cli_ctx_t;

/* ---- cli_common.c: running -------------------------------------------- */

/* Parse argv, dispatch to the verb, return the exit code. */
int cli_main(int argc, char **argv, const cli_group_t *const *groups, size_t ngroups);

/* Value of the verb option `name` (NULL when not given; "" for a set flag). */
const char *cli_opt(const cli_ctx_t *c, const char *name);
/* 1 when the verb flag/option `name` was given. */
int cli_flag(const cli_ctx_t *c, const char *name);
/*
 * Every value of the repeatable verb option `name` ("LABEL..."), in
 * command-line order: up to cap pointers into out. @return the count.
 */
size_t cli_opt_all(const cli_ctx_t *c, const char *name, const char **out, size_t cap);

/* "key gen", or "sign" for a top-level command: for messages. */
const char *cli_cmd_name(const cli_ctx_t *c);

/*
 * Parse a --object URI into c->object_uri (refusing pin-value) so that
 * cli_open() also takes its token attributes. Prints the error.
 * @return CLI_EXIT_OK or CLI_EXIT_USAGE.
 */
int cli_use_object_uri(cli_ctx_t *c, const char *text);

/* cli_open() flags */
#define CLI_OPEN_MODULE_ONLY 0x1u /* HSMC_CFG_NO_TOKEN: module, no token, no login */
#define CLI_OPEN_NO_LOGIN 0x2u    /* select the token but do not log in */

/*
 * Open c->h from the common options and environment (module, token, PIN
 * source according to the verb's cli_pin_use_t). Prints the error.
 * @return CLI_EXIT_OK or the exit code.
 */
int cli_open(cli_ctx_t *c, unsigned flags);

/* 1 when cli_open will log in (or did). */
int cli_logged_in(const cli_ctx_t *c);

/*
 * Print "hsmc: <what>: <strerror> (<name>)" plus detail, CKR and hint
 * lines from the context (when open or just failed to open).
 * @return the exit code for err.
 */
int cli_fail(cli_ctx_t *c, hsmc_err_t err, const char *what);

/* cli_fail() with a hint of the caller's instead of the general one for err. */
int cli_fail_hint(cli_ctx_t *c, hsmc_err_t err, const char *what, const char *hint);

/* The exit code for an hsmc error. */
int cli_exit_code(hsmc_err_t err);

/* "hsmc: " + message + newline on stderr (printf-style). */
void cli_err(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* A note on stderr unless --quiet. */
void cli_note(const cli_ctx_t *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- cli_common.c: text helpers --------------------------------------- */

/*
 * Copy a blank-padded PKCS#11 text field of `len` bytes into dst (cap
 * bytes, NUL-terminated), without the trailing blanks or NULs.
 */
void cli_pad_str(char *dst, size_t cap, const unsigned char *src, size_t len);

/* Write bytes to f, escaping control characters and non-ASCII as \xNN. */
void cli_put_safe(FILE *f, const char *s, size_t len);

/* Write lowercase hex of len bytes to dst (cap >= 2*len+1). */
void cli_hex(char *dst, size_t cap, const unsigned char *b, size_t len);

/*
 * Parse hex ("0a1b", "0A:1B" or "0x0a1b") into out.
 * @return 0 and *n on success, -1 on a bad digit, odd length or overflow.
 */
int cli_unhex(const char *s, unsigned char *out, size_t cap, size_t *n);

/* A flag word table: bit and word. */
typedef struct cli_flag_word {
    unsigned long bit;
    const char *word;
} cli_flag_word_t;

/*
 * Append the words of the bits set in `flags` (", "-separated) to f; the
 * table ends with word NULL. Bits not in the table print as 0x.. once.
 * @return the number of words written (0: nothing written).
 */
unsigned cli_put_flags(FILE *f, unsigned long flags, const cli_flag_word_t *t);

/* ---- cli_common.c: JSON writer ----------------------------------------- */

#define CLI_JSON_DEPTH 16

/* Streaming JSON writer with two-space indentation; one document per run. */
typedef struct cli_json {
    FILE *f;
    int depth;
    unsigned char first[CLI_JSON_DEPTH]; /* 1 while the container is empty */
    unsigned char is_arr[CLI_JSON_DEPTH];
} cli_json_t;

void cli_json_init(cli_json_t *j, FILE *f);
/* key is NULL inside arrays and at the top level. */
void cli_json_obj(cli_json_t *j, const char *key);
void cli_json_arr(cli_json_t *j, const char *key);
void cli_json_end(cli_json_t *j); /* closes the innermost object/array; newline at depth 0 */
void cli_json_str(cli_json_t *j, const char *key, const char *s);
void cli_json_strn(cli_json_t *j, const char *key, const char *s, size_t len);
void cli_json_num(cli_json_t *j, const char *key, unsigned long v);
void cli_json_bool(cli_json_t *j, const char *key, int v);
void cli_json_null(cli_json_t *j, const char *key);
/* A PKCS#11 count: number, or the strings "unavailable" / "unlimited". */
void cli_json_count(cli_json_t *j, const char *key, unsigned long v, int infinite_ok);
/* Array of the flag words set in `flags`. */
void cli_json_flags(cli_json_t *j, const char *key, unsigned long flags,
                    const cli_flag_word_t *t);

/* ---- cli_io.c: files, terminals, PEM ------------------------------------ */

/* Wipe len bytes of p (kept by the compiler). */
void cli_wipe(void *p, size_t len);
/* Wipe and free a heap buffer of len bytes (NULL is fine). */
void cli_free(void *p, size_t len);

/*
 * Read all of `path` ("-": stdin) into a new heap buffer with one NUL byte
 * after the data (so text can be used as a C string). More than `max`
 * bytes is refused. `what` names the option in messages. Free with
 * cli_free(*buf, *len).
 * @return CLI_EXIT_OK, or an exit code (message printed).
 */
int cli_read_file(const char *path, size_t max, const char *what, unsigned char **buf,
                  size_t *len);

/* cli_out_open() flags */
#define CLI_OUT_BINARY 0x1u /* refuse to write to a terminal unless CLI_OUT_FORCE */
#define CLI_OUT_SECRET 0x2u /* the file gets mode 0600 (plaintext); else 0666 & ~umask */
#define CLI_OUT_FORCE 0x4u  /* --force: write binary to a terminal anyway */

/*
 * An output: stdout, or a file written atomically: a temporary file in the
 * same directory, renamed over `path` by cli_out_commit() only; on failure,
 * abort or a fatal signal (INT, TERM, HUP, PIPE) it is removed, so a failed
 * command never leaves a half-written or unauthenticated file.
 */
typedef struct cli_out {
    FILE *f;
    const char *path; /* NULL: stdout */
    char tmp[4096];
    unsigned flags;
    int failed;
} cli_out_t;

/* Open path (NULL or "-": stdout). @return CLI_EXIT_OK or an exit code (printed). */
int cli_out_open(cli_out_t *o, const char *path, unsigned flags);
/* Write n bytes. @return CLI_EXIT_OK or CLI_EXIT_FAIL (printed; commit then fails). */
int cli_out_write(cli_out_t *o, const void *p, size_t n);
/* Finish: flush, fsync and rename into place. @return CLI_EXIT_OK or CLI_EXIT_FAIL. */
int cli_out_commit(cli_out_t *o);
/* Give up: the temporary file is removed (stdout: nothing more is written). */
void cli_out_abort(cli_out_t *o);

/* Base64 of der in 64-column lines. @return CLI_EXIT_OK or CLI_EXIT_FAIL. */
int cli_base64_write(cli_out_t *o, const unsigned char *der, size_t len);
/* PEM block "-----BEGIN label-----". @return CLI_EXIT_OK or CLI_EXIT_FAIL. */
int cli_pem_write(cli_out_t *o, const char *label, const unsigned char *der, size_t len);
/* Decode base64 text (whitespace ignored) into a new heap buffer. @return 0 or -1. */
int cli_base64_decode(const unsigned char *text, size_t len, unsigned char **out, size_t *olen);

/*
 * Find the first PEM block in buf whose label is one of `labels`
 * (NULL-terminated) and decode it into a new heap buffer *der (free with
 * cli_free). `label` receives the label of the block found (or the last
 * one seen).
 * @return 0 decoded; 1 buf is not PEM (no "-----BEGIN "); -1 malformed;
 *   -2 the block is encrypted (has headers); -3 no block with a wanted label.
 */
int cli_pem_find(const unsigned char *buf, size_t len, const char *const *labels,
                 unsigned char **der, size_t *der_len, char *label, size_t label_cap);

/* Ask a yes/no question on the controlling terminal. @return 1 for yes. */
int cli_confirm(const char *question);

/* A progress line on stderr, only when stderr is a terminal and not --quiet. */
typedef struct cli_progress {
    const char *what;
    unsigned long long total; /* bytes; 0 when unknown */
    long long last;           /* time of the last update */
    int enabled;
} cli_progress_t;

void cli_progress_init(cli_progress_t *p, const cli_ctx_t *c, const char *what,
                       unsigned long long total);
/* Update at most once a second; `final` ends the line. */
void cli_progress(cli_progress_t *p, unsigned long long done, int final);

/* ---- cli_log.c: the log (stderr or a rotated file) ----------------------- */

/*
 * Set the log up from --log-file, HSMC_LOG_FILE, HSMC_LOG_LEVEL,
 * HSMC_LOG_MAX_BYTES, HSMC_LOG_BACKUP_COUNT and -v (see cli_log.c).
 * @return CLI_EXIT_OK or an exit code (message printed).
 */
int cli_log_setup(cli_ctx_t *c);
/* Close the log file. */
void cli_log_close(void);
/* 1 when a message of this level is written. */
int cli_log_enabled(hsmc_log_level_t level);
/* The most verbose level written (meaningful when something is enabled). */
hsmc_log_level_t cli_log_level(void);
/* The library's log callback (hsmc_cfg_t.log). */
void cli_log_cb(void *user, hsmc_log_level_t level, const char *msg);
/* A log line of the command's own (printf-style); never put a PIN in it. */
void cli_log_msg(hsmc_log_level_t level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- cmd_key.c: key helpers the crypto commands share --------------------- */

/* Usage words (sign, verify, ...) for HSMC_USE_* bits. */
const cli_flag_word_t *cli_usage_words(void);
/* Key size in bits of an algorithm (0 for HSMC_ALG_NONE). */
unsigned cli_alg_bits(hsmc_key_alg_t alg);
int cli_alg_is_aes(hsmc_key_alg_t alg);
int cli_alg_is_rsa(hsmc_key_alg_t alg);
/* Parse --<opt> ALG. @return CLI_EXIT_OK or CLI_EXIT_USAGE (printed, with the list). */
int cli_parse_alg(const char *opt, const char *text, hsmc_key_alg_t *alg);
/*
 * A key spec from the verb's --purpose | --alg [--usage] and --id options
 * (idbuf holds the id). @return CLI_EXIT_OK or CLI_EXIT_USAGE (printed).
 */
int cli_key_spec(cli_ctx_t *c, hsmc_key_spec_t *spec, uint8_t *idbuf, size_t idcap);
/*
 * A key spec for a key of a known algorithm (import, unwrap): --alg ALG
 * (required), usage from --purpose (same family) or --usage or the
 * default, and --id. @return CLI_EXIT_OK or CLI_EXIT_USAGE (printed).
 */
int cli_key_spec_for_alg(cli_ctx_t *c, hsmc_key_spec_t *spec, uint8_t *idbuf, size_t idcap);
/*
 * Open the key labelled `label`; with latest_ok, a base label without a
 * key of its own opens its latest version (BASE-vNNNN, noted on stderr).
 * @return CLI_EXIT_OK or the exit code (printed).
 */
int cli_key_open(cli_ctx_t *c, const char *label, hsmc_key_t *key, int latest_ok);

/* ---- cmd_cose.c: envelope helpers `hsmc rewrap` shares ------------------- */

/* What a COSE input is, from its first bytes (tag; for tag 96 whether the ciphertext is nil). */
typedef enum cli_env {
    CLI_ENV_UNKNOWN,  /* not a COSE message hsmc writes */
    CLI_ENV_ENCRYPT0, /* COSE_Encrypt0 (tag 16): `hsmc encrypt --key` */
    CLI_ENV_ENCRYPT,  /* COSE_Encrypt (tag 96) with its ciphertext, or malformed tag 96 */
    CLI_ENV_STREAM,   /* hsmc stream: tag-96 header with nil ciphertext, chunks follow */
    CLI_ENV_SIGN1     /* COSE_Sign1 (tag 18) */
} cli_env_t;

/* The type of the COSE item at p[0..n) (n may cover only its beginning). */
cli_env_t cli_env_type(const uint8_t *p, size_t n);
/* 1 when p[0..n) is printable UTF-8 text (controls other than tab, CR, LF refused). */
int cli_looks_like_text(const unsigned char *p, size_t n);
/*
 * Open the --recipient keys labels[0..n) (a base label: its latest version,
 * noted on stderr) into keys[] and fill r[] with the algorithm `hsmc
 * encrypt` uses for each: A128KW/A192KW/A256KW by AES key size, RSA-OAEP
 * for RSA keys (RSA-OAEP-256 when the verb's --oaep-sha256 flag is set).
 * @return CLI_EXIT_OK or the exit code (printed; an EC key is CLI_EXIT_USAGE).
 */
int cli_open_recipients(cli_ctx_t *c, const char **labels, size_t n, hsmc_key_t *keys,
                        hsmc_cose_recipient_t *r);

/* ---- cmd_rewrap.c: `hsmc rewrap`, listed in cmd_cose.c's command table ----- */

extern const cli_opt_t cli_rewrap_opts[];
extern const char cli_rewrap_help[];
extern const char cli_rewrap_examples[];
int cli_rewrap(cli_ctx_t *c);

/* ---- groups (one file each) ------------------------------------------- */

extern const cli_group_t cli_group_token;
extern const cli_group_t cli_group_object;
extern const cli_group_t cli_group_key;    /* cmd_key.c */
extern const cli_group_t cli_group_sign;   /* cmd_crypto.c: sign, verify, wrap, unwrap */
extern const cli_group_t cli_group_cose;   /* cmd_cose.c: encrypt, decrypt */
extern const cli_group_t cli_group_csr;    /* cmd_x509.c: csr create */
extern const cli_group_t cli_group_ca;     /* cmd_x509.c: ca init */
extern const cli_group_t cli_group_cert;   /* cmd_x509.c: cert issue, store, show */
extern const cli_group_t cli_group_crl;    /* cmd_x509.c: crl gen */
extern const cli_group_t cli_group_audit;  /* cmd_audit.c: audit verify */
extern const cli_group_t cli_group_provision; /* cmd_provision.c: provision */

/* ---- cmd_audit.c: the audit chain walk provision shares ------------------ */

/*
 * Feed the rest of the open file f to the initialised verifier v through a
 * window of HSMC_AUDIT_RECORD_MAX bytes, then finish it. *err gets the
 * chain result (HSMC_OK: every record good; else v->count, v->offset and
 * v->fault name the first broken record). on_rec (optional) sees every
 * good record (views valid during the call only).
 * @return 0 walked (see *err); -1 read error (*io_err = errno); -2 a
 *   non-sticky verifier error (*err, e.g. the token), nothing decided.
 */
int cli_audit_verify_file(FILE *f, hsmc_audit_verify_t *v, hsmc_err_t *err, int *io_err,
                          void (*on_rec)(void *user, const hsmc_audit_record_t *rec),
                          void *user);

#endif /* HSMC_CLI_H */
