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
    CLI_EXIT_UNSUPPORTED = 7  /* the token cannot do it */
} cli_exit_t;

/* Limits of the command-line parser. */
#define CLI_MAX_CMD_OPTS 24 /* options of one verb */
#define CLI_MAX_POS 8       /* positional arguments of one verb */

/* One option of a verb (or a common option). */
typedef struct cli_opt {
    const char *name;  /* long name without "--" */
    char short_name;   /* single-letter alias, 0 when none */
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
    const char *name;       /* "token" */
    const char *summary;    /* one line */
    const cli_cmd_t *cmds;  /* terminated by an entry with verb NULL */
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
    int verbose;                      /* -v count */
    int quiet;                        /* -q */
    /* The verb's options, parallel to cmd->opts: value (flags get "") and count. */
    const char *val[CLI_MAX_CMD_OPTS];
    unsigned cnt[CLI_MAX_CMD_OPTS];
    const char *pos[CLI_MAX_POS];
    unsigned npos;
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

/* ---- groups (one file each) ------------------------------------------- */

extern const cli_group_t cli_group_token;
extern const cli_group_t cli_group_object;

#endif /* HSMC_CLI_H */
