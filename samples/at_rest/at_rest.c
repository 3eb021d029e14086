/*
 * at_rest: encrypt a gateway's files and small records at rest under a KEK
 * in the token, open them again, rotate the KEK without re-encrypting
 * content, and retire old KEK versions once nothing refers to them.
 *
 * This file: command line, help texts, token and KEK, and the file helpers
 * every command uses (atomic replacement, directory lock, progress). The
 * commands are in at_rest_files.c (seal, open, rotate) and at_rest_keys.c
 * (status, retire, record).
 *
 * Memory: no malloc here; the data buffers are static (at_rest.h), one
 * chunk of AR_CHUNK bytes at a time, so RAM does not grow with file size.
 */
#define _GNU_SOURCE /* O_DIRECTORY, O_CLOEXEC, O_NOFOLLOW, flock, dirfd */
#include "at_rest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

ar_opts_t ar_opt;
hsmc_t ar_h;
hsmc_cose_t ar_cose;
hsmc_cose_stream_t ar_stream;
uint8_t ar_in[AR_HDR_MAX + AR_ITEM_MAX];
uint8_t ar_out[AR_HDR_MAX + AR_ITEM_MAX];
uint8_t ar_pt[AR_CHUNK];

static hsmc_uri_t token_uri; /* a pkcs11: URI given as --token (large: static) */

/* ---- help ----------------------------------------------------------------- */

static const char help_main[] =
    "usage: at_rest COMMAND ... [--module PATH] [--token LABEL|URI] [--pin-file FILE]\n"
    "\n"
    "Encrypts a gateway's files and small records at rest under a key-encryption\n"
    "key (KEK) that never leaves the PKCS#11 token.\n"
    "\n"
    "Commands (each has --help):\n"
    "  seal DIR             every plain file NAME in DIR becomes NAME.cose\n"
    "  open DIR --out OUT   every NAME.cose back to OUT/NAME (also: open F.cose --out F)\n"
    "  rotate DIR           new KEK version; re-wrap each envelope's content key\n"
    "  retire DIR           delete old KEK versions no envelope in DIR refers to\n"
    "  status DIR           envelopes and records per KEK version, stale temporaries\n"
    "  record put DIR ID    encrypt a small value as DIR/records/ID.rec\n"
    "  record get DIR ID    print a record's value\n"
    "\n"
    "Token options (every command):\n"
    "  --module PATH     PKCS#11 module (env HSMC_MODULE; default SoftHSM2's)\n"
    "  --token LABEL|URI token label or pkcs11: URI (env HSMC_TOKEN)\n"
    "  --pin-file FILE   user PIN in the first line of FILE (env HSMC_PIN_FILE);\n"
    "                    the PIN is never a command-line argument\n"
    "  -q, --quiet       no progress line and no notes\n"
    "\n"
    "Exit codes: 0 ok; 1 one or more files or records failed (each is named);\n"
    "2 usage; 3 module, token, PIN or KEK problem; 4 retire refused (the version\n"
    "is still referenced, or is the latest); 5 another at_rest works on DIR.\n";

static const char help_seal[] =
    "usage: at_rest seal DIR [--kek BASE] [--kek-type auto|aes|rsa] [token options]\n"
    "\n"
    "Every regular file NAME in DIR (not hidden, not already NAME.cose) becomes\n"
    "NAME.cose: an hsmc stream (COSE_Encrypt header + 64 KiB chunks, docs/FORMATS.md\n"
    "section 5) whose content key is wrapped by the latest version of the KEK BASE\n"
    "(default at-rest-kek, labels BASE-v0001, BASE-v0002, ...). The external AAD is\n"
    "the file name NAME, so an envelope renamed to another name does not open.\n"
    "Any file size in fixed RAM.\n"
    "\n"
    "When the token has no version of BASE, version 1 is made: --kek-type aes is an\n"
    "AES-256 KEK (A256KW key wrap), rsa an RSA-3072 key pair (RSA-OAEP), auto (the\n"
    "default) the AES KEK when the token can wrap with it, else RSA.\n"
    "\n"
    "Each file is written to .NAME.cose.tmp (created fresh), synced, renamed to\n"
    "NAME.cose, and only then is NAME removed: after a crash or kill every file is\n"
    "either still NAME or complete as NAME.cose (or both: NAME is the truth until it\n"
    "is removed, and a re-run seals it again). A re-run removes stale temporaries\n"
    "first and continues. Symbolic links, hidden files and directories are left\n"
    "alone.\n"
    "\n"
    "Exit codes: 0 all sealed, 1 some files failed (named), 2 usage, 3 token/KEK,\n"
    "5 another at_rest works on DIR.\n";

static const char help_open[] =
    "usage: at_rest open DIR --out OUTDIR [token options]\n"
    "       at_rest open FILE.cose --out FILE [token options]\n"
    "\n"
    "Opens every envelope NAME.cose of DIR into OUTDIR/NAME (OUTDIR is made if\n"
    "missing), or one envelope into FILE. The KEK version each envelope names must\n"
    "be on the token. The plaintext goes to a fresh temporary (.NAME.tmp next to\n"
    "the output), which is renamed to its name only after the last chunk\n"
    "authenticated: a tampered, truncated, reordered or renamed envelope leaves no\n"
    "output at all. The reason is named per file: HSMC_ERR_DECRYPT (altered, or\n"
    "sealed under another name), HSMC_ERR_TRUNCATED (cut short), HSMC_ERR_SEQUENCE\n"
    "(chunks missing, reordered, or data after the last one),\n"
    "HSMC_ERR_OBJECT_NOT_FOUND (its KEK version is not on the token).\n"
    "An existing regular file is replaced; anything else (device, FIFO, link) is\n"
    "refused as --out.\n"
    "\n"
    "Exit codes: 0 all opened, 1 some envelopes refused (named), 2 usage, 3 token.\n";

static const char help_rotate[] =
    "usage: at_rest rotate DIR [--kek BASE] [--new-version | --no-new-version]\n"
    "                      [token options]\n"
    "\n"
    "Makes a new version of the KEK (same kind as the latest), then re-wraps the\n"
    "content key of every envelope and record in DIR that is not on the latest\n"
    "version: the envelope's header gets a new recipient, and its chunks are\n"
    "copied byte for byte. No content is decrypted or re-encrypted; each envelope\n"
    "costs two token calls whatever its size. Each is replaced atomically\n"
    "(.NAME.cose.tmp, sync, rename).\n"
    "\n"
    "Interrupted rotations: when some envelopes are not on the latest version yet\n"
    "(a rotation was killed), rotate continues that one and makes no new version.\n"
    "--new-version always makes one; --no-new-version never does (re-wrap to the\n"
    "latest only, e.g. after `hsmc key rotate` or importing a KEK).\n"
    "Old versions stay on the token until `at_rest retire`.\n"
    "\n"
    "Exit codes: 0 done, 1 some envelopes failed (named), 2 usage, 3 token/KEK,\n"
    "5 another at_rest works on DIR.\n";

static const char help_retire[] =
    "usage: at_rest retire DIR [--kek BASE] (--version N | --all-unused) [token options]\n"
    "\n"
    "Deletes KEK version N (or every unused version older than the latest) from the\n"
    "token, but only when no envelope or record in DIR refers to it. The latest\n"
    "version is never retired, unless it is damaged (it does not wrap, as a key\n"
    "generation cut short by a crash leaves it; nothing can refer to it): then the\n"
    "version below it is kept instead. An envelope whose header cannot be read\n"
    "might refer to any version: then nothing is retired.\n"
    "Only DIR is checked: copies of envelopes kept elsewhere (backups) that refer to\n"
    "a retired version can no longer be opened. Rotate them first.\n"
    "\n"
    "Exit codes: 0 retired (or nothing to retire), 1 failed, 2 usage, 3 token,\n"
    "4 refused: the version is the latest or still referenced (the count and one\n"
    "envelope are named), 5 another at_rest works on DIR.\n";

static const char help_status[] =
    "usage: at_rest status DIR [--list] [--kek BASE] [token options]\n"
    "\n"
    "Counts the envelopes (NAME.cose) and records (records/ID.rec) per KEK version\n"
    "(the kid of their recipients), plain files not sealed yet, and stale\n"
    "temporaries of an interrupted run. With token options it also lists the\n"
    "versions of BASE on the token. --list prints one line per envelope: name,\n"
    "kid, header bytes (the chunks follow the header; rotate changes only the\n"
    "header).\n"
    "\n"
    "Exit codes: 0 ok, 1 some envelopes unreadable, 2 usage, 3 token.\n";

static const char help_record[] =
    "usage: at_rest record put DIR ID (--value TEXT | --file F) [--kek BASE]\n"
    "                          [--kek-type auto|aes|rsa] [token options]\n"
    "       at_rest record get DIR ID [token options]\n"
    "\n"
    "Small values (database fields, settings) as DIR/records/ID.rec: a COSE_Encrypt\n"
    "(docs/FORMATS.md section 3) with one recipient, the latest KEK version. The\n"
    "external AAD is the 7 bytes \"record:\" followed by the bytes of ID (no NUL), so\n"
    "a record copied or renamed to another id does not open. ID is 1..64 of\n"
    "[A-Za-z0-9._-]; a value is at most 32768 bytes. put replaces the record\n"
    "atomically; get writes the value to stdout. Records take part in rotate,\n"
    "retire and status.\n"
    "\n"
    "Exit codes: 0 ok, 1 failed (e.g. no such record, altered, another id's),\n"
    "2 usage, 3 token/KEK, 5 another at_rest works on DIR.\n";

/* ---- messages ------------------------------------------------------------- */

int ar_err(const char *fmt, ...)
{
    va_list ap;
    fputs(AR_WHO ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return AR_EXIT_FAIL;
}

void ar_note(const char *fmt, ...)
{
    va_list ap;
    if (ar_opt.quiet)
        return;
    fputs(AR_WHO ": note: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int ar_fail(hsmc_err_t e, const char *what)
{
    const char *detail = hsmc_detail(&ar_h);
    /* The detail belongs to the last failure on the context; print it only
     * when it is this one's. */
    if (hsmc_last_err(&ar_h) != e)
        detail = "";
    return ar_err("%s: %s (%s)%s%s", what, hsmc_err_name(e), hsmc_strerror(e),
                  detail[0] != '\0' ? ": " : "", detail);
}

const char *ar_open_hint(hsmc_err_t e)
{
    switch (e) {
    case HSMC_ERR_DECRYPT:
        return "it was altered, or it was sealed under another name (the name is "
               "authenticated); restore it from a backup";
    case HSMC_ERR_TRUNCATED:
        return "it is cut short (an incomplete copy?); restore it from a backup";
    case HSMC_ERR_SEQUENCE:
        return "chunks are missing or reordered, or data follows the last chunk";
    case HSMC_ERR_OBJECT_NOT_FOUND:
        return "the KEK version it names is not on this token (retired, or another "
               "token?)";
    case HSMC_ERR_FORMAT:
        return "it is not an at_rest envelope, or its header is damaged";
    case HSMC_ERR_LIMIT:
        return "its chunks are larger than at_rest's 64 KiB buffers";
    default:
        return "see the message above";
    }
}

/* ---- token ------------------------------------------------------------------ */

int ar_token_given(void)
{
    return ar_opt.token != NULL && ar_opt.token[0] != '\0';
}

int ar_token_open(void)
{
    hsmc_cfg_t cfg;
    hsmc_err_t e;

    if (!ar_token_given()) {
        ar_err("give --token LABEL (or a pkcs11: URI, or set HSMC_TOKEN)");
        return AR_EXIT_USAGE;
    }
    hsmc_cfg_init(&cfg);
    cfg.module_path = "/usr/lib/softhsm/libsofthsm2.so";
    if (strncmp(ar_opt.token, "pkcs11:", 7) == 0) {
        e = hsmc_uri_parse(&token_uri, ar_opt.token, strlen(ar_opt.token));
        if (e != HSMC_OK) {
            ar_err("--token: not a valid PKCS#11 URI: %s (at byte %lu)",
                   token_uri.err_msg != NULL ? token_uri.err_msg : hsmc_strerror(e),
                   (unsigned long)token_uri.err_off);
            return AR_EXIT_USAGE;
        }
        if (token_uri.pin_value != NULL) {
            ar_err("--token: the URI holds a pin-value; keep the PIN in a file (--pin-file)");
            return AR_EXIT_USAGE;
        }
        e = hsmc_cfg_from_uri(&cfg, &token_uri);
        if (e != HSMC_OK) {
            ar_err("--token: %s (%s)", hsmc_strerror(e), hsmc_err_name(e));
            return AR_EXIT_USAGE;
        }
    } else {
        cfg.token.label = ar_opt.token;
    }
    if (ar_opt.module != NULL && ar_opt.module[0] != '\0')
        cfg.module_path = ar_opt.module;
    if (ar_opt.pin_file != NULL && ar_opt.pin_file[0] != '\0') {
        cfg.pin.kind = HSMC_PIN_FILE;
        cfg.pin.arg = ar_opt.pin_file;
    }
    if (cfg.pin.kind == HSMC_PIN_NONE) {
        ar_err("give --pin-file FILE (or HSMC_PIN_FILE): the KEK is a private token object");
        return AR_EXIT_USAGE;
    }
    hsmc_init(&ar_h);
    e = hsmc_open(&ar_h, &cfg);
    if (e != HSMC_OK) {
        ar_fail(e, "cannot open the token");
        if (e == HSMC_ERR_TOKEN_NOT_FOUND)
            ar_err("  hint: check --token and that SOFTHSM2_CONF points at the token directory");
        else if (e == HSMC_ERR_PIN_INCORRECT)
            ar_err("  hint: the PIN file's first line is not the user PIN (tried once)");
        return AR_EXIT_TOKEN;
    }
    return AR_EXIT_OK;
}

/* ---- KEK --------------------------------------------------------------------- */

const char *ar_alg_name(int alg)
{
    const char *name = hsmc_cose_alg_name(alg);

    return name != NULL ? name : "unknown";
}

const char *ar_kek_base(void)
{
    return ar_opt.kek != NULL ? ar_opt.kek : AR_KEK_DEFAULT;
}

unsigned ar_kid_version(const uint8_t *kid, size_t len)
{
    const char *base = ar_kek_base();
    size_t bl = strlen(base), i;
    unsigned long v = 0;

    /* BASE "-v" and at least 4 digits (hsmc_key_version_label's form). */
    if (kid == NULL || len < bl + 6 || memcmp(kid, base, bl) != 0 || kid[bl] != '-' ||
        kid[bl + 1] != 'v')
        return 0;
    for (i = bl + 2; i < len; i++) {
        if (kid[i] < '0' || kid[i] > '9' || v > 100000ul)
            return 0;
        v = v * 10 + (unsigned long)(kid[i] - '0');
    }
    return (unsigned)v;
}

/* Try a recipient on an empty message: does the token wrap with it? Its own
 * context, so that a command's ar_cose is not disturbed. */
static hsmc_err_t try_recipient(const hsmc_key_t *key, int alg)
{
    static hsmc_cose_t probe;
    static uint8_t msg[1024]; /* an empty message with one RSA-4096 recipient fits */
    hsmc_cose_recipient_t r;
    size_t n = 0;
    hsmc_err_t e;

    r.key = key;
    r.alg = alg;
    hsmc_cose_init(&probe, &ar_h);
    e = hsmc_cose_encrypt(&probe, &r, 1, (hsmc_view_t){NULL, 0}, (hsmc_view_t){NULL, 0}, msg,
                          sizeof msg, &n);
    hsmc_cose_free(&probe);
    return e;
}

/* The recipient algorithm for a KEK: by key size for AES; for RSA, OAEP with
 * SHA-256 when the token does it, else SHA-1 (SoftHSM2 has only SHA-1). */
static int pick_alg(ar_kek_t *k)
{
    switch (k->key.alg) {
    case HSMC_ALG_AES128: k->alg = HSMC_COSE_A128KW; return AR_EXIT_OK;
    case HSMC_ALG_AES192: k->alg = HSMC_COSE_A192KW; return AR_EXIT_OK;
    case HSMC_ALG_AES256: k->alg = HSMC_COSE_A256KW; return AR_EXIT_OK;
    case HSMC_ALG_RSA2048:
    case HSMC_ALG_RSA3072:
    case HSMC_ALG_RSA4096:
        k->alg = try_recipient(&k->key, HSMC_COSE_RSA_OAEP_256) == HSMC_OK ? HSMC_COSE_RSA_OAEP_256
                                                                          : HSMC_COSE_RSA_OAEP;
        return AR_EXIT_OK;
    default:
        ar_err("%s is a %s key: a KEK must be AES (key wrap) or RSA (OAEP)", k->label,
               hsmc_alg_name(k->key.alg));
        return AR_EXIT_TOKEN;
    }
}

static void kek_fill(ar_kek_t *k)
{
    size_t n = k->key.priv.label_len < HSMC_MAX_LABEL_LEN ? k->key.priv.label_len
                                                          : HSMC_MAX_LABEL_LEN;
    memcpy(k->label, k->key.priv.label, n);
    k->label[n] = '\0';
    k->version = ar_kid_version((const uint8_t *)k->label, n);
}

/* Make the next version of the base with the spec of a purpose. */
static hsmc_err_t kek_make(hsmc_purpose_t purpose, hsmc_key_alg_t alg, ar_kek_t *k)
{
    hsmc_key_spec_t spec;
    hsmc_err_t e = hsmc_purpose_spec(purpose, &spec);
    if (e != HSMC_OK)
        return e;
    if (alg != HSMC_ALG_NONE)
        spec.alg = alg;
    e = hsmc_key_rotate(&ar_h, ar_kek_base(), &spec, &k->key);
    if (e == HSMC_ERR_EXISTS) {
        /* No key under the next label, yet it is taken: a key pair
         * generation cut short (a kill, a crash) leaves its public half.
         * Remove such orphans of that label only, then try once more. */
        hsmc_rotation_plan_t plan;
        unsigned removed = 0;
        if (hsmc_key_plan(&ar_h, ar_kek_base(), &plan) == HSMC_OK &&
            hsmc_key_remove_orphans(&ar_h, plan.next_label, &removed) == HSMC_OK && removed > 0) {
            ar_note("removed %u public key%s labelled %s without a private key (a key "
                    "generation cut short)",
                    removed, removed == 1 ? "" : "s", plan.next_label);
            e = hsmc_key_rotate(&ar_h, ar_kek_base(), &spec, &k->key);
        }
    }
    if (e == HSMC_OK)
        kek_fill(k);
    return e;
}

/* Version 1 of the base, of the kind --kek-type asks for. */
static int kek_create(ar_kek_t *k)
{
    const char *type = ar_opt.kek_type != NULL ? ar_opt.kek_type : "auto";
    hsmc_err_t e;

    if (strcmp(type, "aes") == 0 || strcmp(type, "auto") == 0) {
        e = kek_make(HSMC_PURPOSE_KEK, HSMC_ALG_NONE, k);
        if (e == HSMC_OK) {
            k->alg = HSMC_COSE_A256KW;
            e = try_recipient(&k->key, k->alg);
            if (e == HSMC_OK)
                return AR_EXIT_OK;
            /* The token made the key but cannot wrap with it: do not leave
             * a KEK behind that seals nothing. */
            hsmc_key_delete(&ar_h, &k->key);
        }
        if (strcmp(type, "aes") == 0 || e == HSMC_ERR_EXISTS) {
            ar_fail(e, "cannot make an AES-256 KEK that wraps with CKM_AES_KEY_WRAP");
            if (strcmp(type, "aes") == 0)
                ar_err("  hint: --kek-type auto (or rsa) uses an RSA-OAEP KEK instead");
            return AR_EXIT_TOKEN;
        }
        ar_note("the token cannot wrap with an AES KEK (%s): using RSA-3072 with RSA-OAEP",
                hsmc_err_name(e));
    }
    e = kek_make(HSMC_PURPOSE_CONFIDENTIALITY, HSMC_ALG_NONE, k);
    if (e != HSMC_OK) {
        ar_fail(e, "cannot make an RSA-3072 KEK");
        return AR_EXIT_TOKEN;
    }
    return pick_alg(k);
}

int ar_kek_latest(ar_kek_t *k, int create, int *damaged)
{
    hsmc_err_t e;
    int rc;

    memset(k, 0, sizeof *k);
    if (damaged != NULL)
        *damaged = 0;
    e = hsmc_key_latest(&ar_h, ar_kek_base(), &k->key);
    if (e == HSMC_ERR_OBJECT_NOT_FOUND && create) {
        rc = kek_create(k);
        if (rc == AR_EXIT_OK)
            ar_note("made KEK %s (%s)", k->label, ar_alg_name(k->alg));
        return rc;
    }
    if (e == HSMC_ERR_OBJECT_NOT_FOUND) {
        ar_err("no KEK %s-v0001 ... on the token: seal something first, or give --kek BASE",
               ar_kek_base());
        return AR_EXIT_TOKEN;
    }
    if (e != HSMC_OK) {
        ar_fail(e, "cannot open the KEK");
        return AR_EXIT_TOKEN;
    }
    kek_fill(k);
    if (ar_opt.kek_type != NULL && strcmp(ar_opt.kek_type, "auto") != 0) {
        int is_aes = k->key.alg == HSMC_ALG_AES128 || k->key.alg == HSMC_ALG_AES192 ||
                     k->key.alg == HSMC_ALG_AES256;
        if (is_aes != (strcmp(ar_opt.kek_type, "aes") == 0)) {
            ar_err("%s is a %s key: --kek-type only chooses the kind of version 1 (give "
                   "another --kek BASE for a %s KEK)",
                   k->label, hsmc_alg_name(k->key.alg), ar_opt.kek_type);
            return AR_EXIT_USAGE;
        }
    }
    rc = pick_alg(k);
    if (rc != AR_EXIT_OK)
        return rc;
    /* One trial wrap: a key whose generation was cut short (a kill or a
     * crash inside the token's C_GenerateKey) can carry its label without
     * a usable value. Nothing can refer to such a version: no wrap with it
     * ever worked. */
    e = try_recipient(&k->key, k->alg);
    if (e == HSMC_ERR_TOKEN || e == HSMC_ERR_KEY_USAGE) {
        if (damaged != NULL) {
            *damaged = 1;
            return AR_EXIT_OK;
        }
        ar_fail(e, "the latest KEK does not wrap");
        ar_err("  hint: %s is damaged (a key generation cut short?). No envelope can refer to "
               "it: `at_rest retire DIR --version %u` removes it, then run again",
               k->label, k->version);
        return AR_EXIT_TOKEN;
    }
    return AR_EXIT_OK;
}

int ar_kek_rotate(const ar_kek_t *cur, ar_kek_t *next)
{
    int aes = cur->key.alg == HSMC_ALG_AES128 || cur->key.alg == HSMC_ALG_AES192 ||
              cur->key.alg == HSMC_ALG_AES256;
    hsmc_err_t e;

    memset(next, 0, sizeof *next);
    e = kek_make(aes ? HSMC_PURPOSE_KEK : HSMC_PURPOSE_CONFIDENTIALITY, cur->key.alg, next);
    if (e != HSMC_OK) {
        ar_fail(e, "cannot make the next KEK version");
        return AR_EXIT_TOKEN;
    }
    return pick_alg(next);
}

/* ---- files --------------------------------------------------------------------- */

int ar_dir_open(const char *path, int lock, int *rc)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        ar_err("%s: %s%s", path, strerror(errno),
               errno == ENOTDIR ? " (give a directory)" : "");
        *rc = AR_EXIT_USAGE;
        return -1;
    }
    /* One at_rest per directory: a second one would remove the first one's
     * temporaries as stale. The lock goes away with the process, kill -9
     * included. */
    if (lock && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ar_err("%s: another at_rest is working on this directory; wait for it to finish", path);
        close(fd);
        *rc = AR_EXIT_BUSY;
        return -1;
    }
    return fd;
}

int ar_dir_sync(int dfd, const char *path)
{
    if (fsync(dfd) != 0) {
        ar_err("%s: cannot sync the directory: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

ssize_t ar_read_full(int fd, uint8_t *p, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int ar_write_full(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int ar_tmp_create(int dfd, const char *tmp, const char *shown)
{
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == EEXIST) {
        /* Ours, left by a killed run (the directory lock keeps others out). */
        unlinkat(dfd, tmp, 0);
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    }
    if (fd < 0)
        ar_err("%s: cannot create %s: %s", shown, tmp, strerror(errno));
    return fd;
}

void ar_tmp_abort(int dfd, int fd, const char *tmp)
{
    if (fd >= 0)
        close(fd);
    unlinkat(dfd, tmp, 0);
}

int ar_tmp_commit(int dfd, int fd, const char *tmp, const char *name, const char *shown)
{
    /* Data on disk before the name: a crash after the rename must not
     * leave a complete name with incomplete content. */
    if (fsync(fd) != 0) {
        ar_err("%s: cannot sync %s: %s", shown, tmp, strerror(errno));
        ar_tmp_abort(dfd, fd, tmp);
        return -1;
    }
    if (close(fd) != 0) {
        ar_err("%s: cannot close %s: %s", shown, tmp, strerror(errno));
        unlinkat(dfd, tmp, 0);
        return -1;
    }
    if (renameat(dfd, tmp, dfd, name) != 0) {
        ar_err("%s: cannot rename %s to %s: %s", shown, tmp, name, strerror(errno));
        unlinkat(dfd, tmp, 0);
        return -1;
    }
    return ar_dir_sync(dfd, shown);
}

int ar_has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    return n > s && strcmp(name + n - s, suffix) == 0;
}

unsigned ar_remove_stale(int dfd, const char *suffix)
{
    char pat[32];
    unsigned removed = 0;
    struct dirent *de;
    int fd2 = dup(dfd);
    DIR *d;

    if (fd2 < 0)
        return 0;
    d = fdopendir(fd2);
    if (d == NULL) {
        close(fd2);
        return 0;
    }
    snprintf(pat, sizeof pat, "%s.tmp", suffix);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && ar_has_suffix(de->d_name, pat) &&
            strlen(de->d_name) > strlen(pat) + 1 && unlinkat(dfd, de->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

size_t ar_item_len(const uint8_t *p, size_t len)
{
    hsmc_cbor_dec_t dec;
    const uint8_t *item = NULL;
    size_t n = 0;

    hsmc_cbor_dec_init(&dec, p, len);
    if (hsmc_cbor_get_raw(&dec, &item, &n) != HSMC_OK)
        return 0;
    return n;
}

/* ---- progress ------------------------------------------------------------------ */

double ar_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *ar_size(unsigned long long n, char *buf, size_t cap)
{
    if (n < 1024)
        snprintf(buf, cap, "%llu bytes", n);
    else if (n < 1024ull * 1024)
        snprintf(buf, cap, "%.1f KiB", (double)n / 1024.0);
    else
        snprintf(buf, cap, "%.1f MiB", (double)n / (1024.0 * 1024.0));
    return buf;
}

void ar_progress_init(ar_progress_t *p, const char *what, unsigned long files,
                      unsigned long long bytes)
{
    memset(p, 0, sizeof *p);
    p->what = what;
    p->files_total = files;
    p->bytes_total = bytes;
    p->last = ar_now();
}

void ar_progress(ar_progress_t *p, int final)
{
    char a[32], b[32];
    double t;

    if (ar_opt.quiet || !isatty(STDERR_FILENO))
        return;
    t = ar_now();
    if (!final && t - p->last < 0.25)
        return;
    if (final && !p->shown)
        return; /* short runs: the summary says it all */
    p->last = t;
    p->shown = 1;
    fprintf(stderr, "\r%s: %lu/%lu files, %s of %s   ", p->what, p->files, p->files_total,
            ar_size(p->bytes, a, sizeof a), ar_size(p->bytes_total, b, sizeof b));
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

/* ---- command line --------------------------------------------------------------- */

/* Parse options after the command's positional arguments. pos[] receives up
 * to npos positional arguments; *got how many. @return AR_EXIT_OK, or
 * AR_EXIT_USAGE (printed), or -1 for --help. */
static int parse(int argc, char **argv, int from, const char *help, const char *allowed,
                 const char **pos, int npos, int *got)
{
    int i;
    *got = 0;
    for (i = from; i < argc; i++) {
        const char *a = argv[i];
        const char **val = NULL;
        char key[24];

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(help, stdout);
            return -1;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (*got >= npos) {
                ar_err("unexpected argument '%s' (see --help)", a);
                return AR_EXIT_USAGE;
            }
            pos[(*got)++] = a;
            continue;
        }
        if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            ar_opt.quiet = 1;
            continue;
        }
        /* Options this command takes are listed in `allowed` as " --name". */
        snprintf(key, sizeof key, " %s ", a);
        if (strlen(a) >= sizeof key - 2 || strstr(allowed, key) == NULL) {
            ar_err("unknown option '%s' for this command (see --help)", a);
            return AR_EXIT_USAGE;
        }
        if (strcmp(a, "--all-unused") == 0) {
            ar_opt.all_unused = 1;
            continue;
        }
        if (strcmp(a, "--new-version") == 0 || strcmp(a, "--no-new-version") == 0) {
            if (ar_opt.new_version != 0) {
                ar_err("give --new-version or --no-new-version, not both");
                return AR_EXIT_USAGE;
            }
            ar_opt.new_version = a[2] == 'n' && a[3] == 'o' ? -1 : 1;
            continue;
        }
        if (strcmp(a, "--list") == 0) {
            ar_opt.list = 1;
            continue;
        }
        if (i + 1 >= argc) {
            ar_err("%s needs a value", a);
            return AR_EXIT_USAGE;
        }
        if (strcmp(a, "--module") == 0)
            val = &ar_opt.module;
        else if (strcmp(a, "--token") == 0)
            val = &ar_opt.token;
        else if (strcmp(a, "--pin-file") == 0)
            val = &ar_opt.pin_file;
        else if (strcmp(a, "--kek") == 0)
            val = &ar_opt.kek;
        else if (strcmp(a, "--kek-type") == 0)
            val = &ar_opt.kek_type;
        else if (strcmp(a, "--out") == 0)
            val = &ar_opt.out;
        else if (strcmp(a, "--value") == 0)
            val = &ar_opt.value;
        else if (strcmp(a, "--file") == 0)
            val = &ar_opt.file;
        if (val != NULL) {
            *val = argv[++i];
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end != '\0' || v == 0 || v > 9999) {
                ar_err("--version: a version number 1..9999, not '%s'", argv[i]);
                return AR_EXIT_USAGE;
            }
            ar_opt.version = (unsigned)v;
            continue;
        }
        ar_err("unknown option '%s' (see --help)", a);
        return AR_EXIT_USAGE;
    }
    return AR_EXIT_OK;
}

#define TOKEN_OPTS " --module --token --pin-file "

static int check_kek_opts(void)
{
    size_t i, n;
    if (ar_opt.kek_type != NULL && strcmp(ar_opt.kek_type, "auto") != 0 &&
        strcmp(ar_opt.kek_type, "aes") != 0 && strcmp(ar_opt.kek_type, "rsa") != 0) {
        ar_err("--kek-type: auto, aes or rsa, not '%s'", ar_opt.kek_type);
        return AR_EXIT_USAGE;
    }
    if (ar_opt.kek == NULL)
        return AR_EXIT_OK;
    /* The base becomes a label prefix and is compared with kids: keep it
     * plain so "BASE-vNNNN" is unambiguous. */
    n = strlen(ar_opt.kek);
    for (i = 0; i < n; i++) {
        char c = ar_opt.kek[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            break;
    }
    if (n == 0 || i < n || n + 6 > HSMC_MAX_LABEL_LEN) {
        ar_err("--kek: a base label of 1..%d of [A-Za-z0-9._-], not '%s'",
               HSMC_MAX_LABEL_LEN - 6, ar_opt.kek);
        return AR_EXIT_USAGE;
    }
    return AR_EXIT_OK;
}

int main(int argc, char **argv)
{
    const char *pos[3] = {NULL, NULL, NULL};
    const char *cmd;
    int got = 0, rc, need;

    memset(&ar_opt, 0, sizeof ar_opt);
    ar_opt.module = getenv("HSMC_MODULE");
    ar_opt.token = getenv("HSMC_TOKEN");
    ar_opt.pin_file = getenv("HSMC_PIN_FILE");
    hsmc_init(&ar_h);

    if (argc < 2) {
        fputs(help_main, stderr);
        return AR_EXIT_USAGE;
    }
    cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(help_main, stdout);
        return AR_EXIT_OK;
    }
    if (strcmp(cmd, "seal") == 0) {
        rc = parse(argc, argv, 2, help_seal, TOKEN_OPTS "--kek --kek-type ", pos, 1, &got);
        need = 1;
    } else if (strcmp(cmd, "open") == 0) {
        rc = parse(argc, argv, 2, help_open, TOKEN_OPTS "--out ", pos, 1, &got);
        need = 1;
    } else if (strcmp(cmd, "rotate") == 0) {
        rc = parse(argc, argv, 2, help_rotate, TOKEN_OPTS "--kek --new-version --no-new-version ",
                   pos, 1, &got);
        need = 1;
    } else if (strcmp(cmd, "retire") == 0) {
        rc = parse(argc, argv, 2, help_retire, TOKEN_OPTS "--kek --version --all-unused ", pos, 1,
                   &got);
        need = 1;
    } else if (strcmp(cmd, "status") == 0) {
        rc = parse(argc, argv, 2, help_status, TOKEN_OPTS "--kek --list ", pos, 1, &got);
        need = 1;
    } else if (strcmp(cmd, "record") == 0) {
        rc = parse(argc, argv, 2, help_record, TOKEN_OPTS "--kek --kek-type --value --file ", pos,
                   3, &got);
        need = 3;
    } else {
        ar_err("unknown command '%s' (seal, open, rotate, retire, status, record; see --help)",
               cmd);
        return AR_EXIT_USAGE;
    }
    if (rc == -1)
        return AR_EXIT_OK;
    if (rc != AR_EXIT_OK)
        return rc;
    if (got != need) {
        ar_err("%s: missing argument (see at_rest %s --help)", cmd, cmd);
        return AR_EXIT_USAGE;
    }
    rc = check_kek_opts();
    if (rc != AR_EXIT_OK)
        return rc;

    if (strcmp(cmd, "seal") == 0)
        rc = ar_cmd_seal(pos[0]);
    else if (strcmp(cmd, "open") == 0)
        rc = ar_cmd_open(pos[0]);
    else if (strcmp(cmd, "rotate") == 0)
        rc = ar_cmd_rotate(pos[0]);
    else if (strcmp(cmd, "retire") == 0)
        rc = ar_cmd_retire(pos[0]);
    else if (strcmp(cmd, "status") == 0)
        rc = ar_cmd_status(pos[0]);
    else if (strcmp(pos[0], "put") == 0)
        rc = ar_cmd_record_put(pos[1], pos[2]);
    else if (strcmp(pos[0], "get") == 0)
        rc = ar_cmd_record_get(pos[1], pos[2]);
    else {
        ar_err("record: put or get, not '%s'", pos[0]);
        rc = AR_EXIT_USAGE;
    }
    hsmc_cose_stream_free(&ar_stream);
    hsmc_cose_free(&ar_cose);
    hsmc_close(&ar_h);
    return rc;
}
