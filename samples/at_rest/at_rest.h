/*
 * samples/at_rest: a gateway's files and small records encrypted at rest
 * under a key-encryption key (KEK) that never leaves the token.
 *
 * What the three source files share: the options, the token and KEK, the
 * fixed buffers (all RAM the program uses for data, whatever the file
 * sizes), atomic file replacement, and the walk over a directory's
 * envelopes. at_rest.c has main, options, token, KEK and file helpers;
 * at_rest_files.c seals, opens and re-wraps files; at_rest_keys.c has
 * status, retire and the records.
 */
#ifndef AT_REST_H
#define AT_REST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hsmc/hsmc.h"

#define AR_WHO "at_rest"

/* Exit codes (also in the --help texts). */
#define AR_EXIT_OK 0      /* everything done */
#define AR_EXIT_FAIL 1    /* one or more files or records failed (each named) */
#define AR_EXIT_USAGE 2   /* bad command, option or path */
#define AR_EXIT_TOKEN 3   /* module, token, PIN, or no usable KEK */
#define AR_EXIT_REFUSED 4 /* retire refused: the version is referenced or the latest */
#define AR_EXIT_BUSY 5    /* another at_rest is working on the directory */

/* Plaintext bytes per stream chunk: the unit of RAM, whatever the file size. */
#define AR_CHUNK 65536u
/* Largest stream header read (one RSA-4096 recipient needs about 600 bytes). */
#define AR_HDR_MAX 8192u
/* Room for one sealed chunk item: the chunk, its tag and the CBOR around it. */
#define AR_ITEM_MAX (AR_CHUNK + 256u)
/* Largest record value; a record file is the value plus the COSE around it. */
#define AR_RECORD_MAX 32768u
#define AR_RECORD_FILE_MAX (AR_RECORD_MAX + AR_HDR_MAX)
/* Default base label of the KEK; versions are BASE-v0001, BASE-v0002, ... */
#define AR_KEK_DEFAULT "at-rest-kek"
/* Envelope and record file names. */
#define AR_SUFFIX ".cose"
#define AR_RECORDS "records"
#define AR_RECORD_SUFFIX ".rec"
/* Longest file name sealed: NAME.cose and .NAME.cose.tmp must fit NAME_MAX. */
#define AR_NAME_MAX 240u
/* Record ids: 1..64 of [A-Za-z0-9._-]. */
#define AR_ID_MAX 64u

/* Options of every command (unused ones stay NULL / 0). */
typedef struct ar_opts {
    const char *module;   /* --module, HSMC_MODULE */
    const char *token;    /* --token LABEL or pkcs11: URI, HSMC_TOKEN */
    const char *pin_file; /* --pin-file, HSMC_PIN_FILE */
    const char *kek;      /* --kek BASE */
    const char *kek_type; /* --kek-type auto|aes|rsa */
    const char *out;      /* open --out */
    const char *value;    /* record put --value */
    const char *file;     /* record put --file */
    unsigned version;     /* retire --version N */
    int all_unused;       /* retire --all-unused */
    int new_version;      /* rotate: 1 --new-version, -1 --no-new-version, 0 automatic */
    int list;             /* status --list */
    int walk_silent;      /* ar_walk: do not report unreadable envelopes (a counting pass) */
    int quiet;            /* -q: no progress, no notes */
} ar_opts_t;

/* The KEK in use: the token key and the recipient algorithm for it. */
typedef struct ar_kek {
    hsmc_key_t key;
    int alg;                               /* HSMC_COSE_A256KW, HSMC_COSE_RSA_OAEP, ... */
    unsigned version;                      /* from its label */
    char label[HSMC_MAX_LABEL_LEN + 1];    /* BASE-vNNNN, the kid of new envelopes */
} ar_kek_t;

/* Shared state: one token context and the fixed buffers (static storage). */
extern ar_opts_t ar_opt;
extern hsmc_t ar_h;
extern hsmc_cose_t ar_cose;               /* for recipient_at, rewrap, records */
extern hsmc_cose_stream_t ar_stream;      /* for seal and open */
extern uint8_t ar_in[AR_HDR_MAX + AR_ITEM_MAX]; /* file input */
extern uint8_t ar_out[AR_HDR_MAX + AR_ITEM_MAX]; /* file output */
extern uint8_t ar_pt[AR_CHUNK];           /* one chunk of plaintext */

/* ---- at_rest.c: messages, token, KEK -------------------------------------- */

/* "at_rest: " + message on stderr; returns AR_EXIT_FAIL. */
int ar_err(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* A note on stderr unless -q. */
void ar_note(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* "what: HSMC_ERR_x (text): detail" on stderr; returns AR_EXIT_FAIL. */
int ar_fail(hsmc_err_t e, const char *what);
/* What a user can do about an envelope or record that does not open. */
const char *ar_open_hint(hsmc_err_t e);

/* Open the token and log in. @return AR_EXIT_OK or AR_EXIT_USAGE/TOKEN (printed). */
int ar_token_open(void);
/* 1 when token options were given (status works without a token). */
int ar_token_given(void);

/* Name of a recipient algorithm ("A256KW", "RSA-OAEP"). */
const char *ar_alg_name(int alg);
/*
 * The latest version of the KEK base (opt.kek or the default), checked with
 * one trial wrap. With create and no version on the token, make version 1
 * as --kek-type says (auto: AES-256 key wrap when the token can wrap, else
 * RSA-3072 OAEP). A latest version that does not wrap (damaged) is an
 * error, or, when damaged is given, reported there (*damaged = 1).
 * @return AR_EXIT_OK or an exit code (printed).
 */
int ar_kek_latest(ar_kek_t *k, int create, int *damaged);
/* Make the next version, same kind as cur. @return AR_EXIT_OK or an exit code. */
int ar_kek_rotate(const ar_kek_t *cur, ar_kek_t *next);
/* The KEK base in use. */
const char *ar_kek_base(void);
/* Version N when kid is "BASE-vNNNN" of the base in use, else 0. */
unsigned ar_kid_version(const uint8_t *kid, size_t len);

/* ---- at_rest.c: files --------------------------------------------------------- */

/* Open a directory (O_DIRECTORY), optionally locked against a second
 * at_rest. @return the fd, or -1 with *rc set (message printed). */
int ar_dir_open(const char *path, int lock, int *rc);
/* fsync a directory so a rename or unlink in it survives a crash. */
int ar_dir_sync(int dfd, const char *path);
/* Read exactly up to len bytes (short only at end of file). @return bytes or -1. */
ssize_t ar_read_full(int fd, uint8_t *p, size_t len);
/* Write all of p. @return 0 or -1 (errno set). */
int ar_write_full(int fd, const uint8_t *p, size_t len);
/* Create a fresh temporary file in dfd (O_EXCL; a stale one of ours is removed
 * first). @return fd or -1 (message printed). */
int ar_tmp_create(int dfd, const char *tmp, const char *shown);
/* fsync + close fd, rename tmp over name, fsync the directory. On failure the
 * temporary is removed. @return 0 or -1 (message printed). */
int ar_tmp_commit(int dfd, int fd, const char *tmp, const char *name, const char *shown);
/* Close and remove a temporary after a failure. */
void ar_tmp_abort(int dfd, int fd, const char *tmp);
/* Remove stale ".*<suffix>.tmp" files in dfd. @return how many. */
unsigned ar_remove_stale(int dfd, const char *suffix);
/* 1 when name ends with suffix (and is longer than it). */
int ar_has_suffix(const char *name, const char *suffix);
/* Length in bytes of the CBOR item at the front of p[0..len), or 0 when the
 * item does not end within len or is malformed. */
size_t ar_item_len(const uint8_t *p, size_t len);

/* Progress on stderr when it is a terminal (at most 4 updates a second). */
typedef struct ar_progress {
    const char *what;
    unsigned long files, files_total;
    unsigned long long bytes, bytes_total;
    double last;
    int shown;
} ar_progress_t;
void ar_progress_init(ar_progress_t *p, const char *what, unsigned long files,
                      unsigned long long bytes);
void ar_progress(ar_progress_t *p, int final);
/* "3.1 MiB", "512 bytes" into buf. */
const char *ar_size(unsigned long long n, char *buf, size_t cap);
/* Seconds since some fixed moment. */
double ar_now(void);

/* ---- at_rest_files.c ---------------------------------------------------------- */
int ar_cmd_seal(const char *dir);
int ar_cmd_open(const char *path);
int ar_cmd_rotate(const char *dir);

/* Read the header item of an envelope file into buf. @return its length,
 * or 0 (not readable, not an envelope, header too big: said on stderr
 * unless shown is NULL). */
size_t ar_read_header(int fd, const char *shown, uint8_t *buf, size_t cap);

/* ---- at_rest_keys.c ----------------------------------------------------------- */
int ar_cmd_status(const char *dir);
int ar_cmd_retire(const char *dir);
int ar_cmd_record_put(const char *dir, const char *id);
int ar_cmd_record_get(const char *dir, const char *id);
/* 1 when id is 1..AR_ID_MAX of [A-Za-z0-9._-]. */
int ar_id_valid(const char *id);

/*
 * Visit every envelope of dir: NAME.cose files (streams) and
 * records/ID.rec (COSE_Encrypt), skipping hidden and non-regular files.
 * fn gets the directory fd the entry is in, the entry's open fd, its name,
 * whether it is a record, and its header item (a stream's first item, a record's whole
 * message) in buf[0..len); len 0 when it could not be read (the reason was
 * printed). A non-zero return from fn stops the walk and is returned.
 */
typedef int (*ar_visit_fn)(void *user, int dfd, int fd, const char *name, int is_record,
                           const uint8_t *msg, size_t len);
int ar_walk(int dfd, const char *dir, ar_visit_fn fn, void *user);

#endif /* AT_REST_H */
