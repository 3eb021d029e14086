/*
 * cmd_rewrap.c: `hsmc rewrap`: rotate the key-encryption key (KEK) of
 * envelopes made by `hsmc encrypt --recipient`, without decrypting them.
 *
 * The input is a COSE_Encrypt message or an hsmc stream (header item, then
 * chunks; docs/FORMATS.md 3, 5 and 5.1). hsmc_cose_rewrap() unwraps the
 * content key in the token with whichever old recipient's key is there
 * (the default resolver: kid = key label, as decrypt) and wraps it for the
 * new recipients, chosen as encrypt chooses them (cli_open_recipients).
 * Only the recipients change: a message's ciphertext is kept, a stream's
 * chunks are copied byte for byte after the new header through one fixed
 * buffer, so memory does not grow with the file. --list prints the
 * recipients without the token.
 *
 * The command is listed in cmd_cose.c's table, next to encrypt and decrypt.
 * Nothing is written before the content key re-wrapped, so a refusal
 * leaves no output file; --in-place replaces the input through the same
 * temporary file + fsync + rename as every --out.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* First read: a whole stream header fits (8 RSA-4096 recipients take ~5 KiB);
 * the same buffer then copies the chunks. */
#define HEAD_READ ((size_t)64 * 1024)
/* Most new recipients (as encrypt). */
#define MAX_RECIPIENTS 8

static hsmc_view_t view(const void *p, size_t n)
{
    hsmc_view_t v;
    v.ptr = (const uint8_t *)p;
    v.len = n;
    return v;
}

/* The input envelope: a whole message, or a stream's beginning with f holding the rest. */
typedef struct rw_in {
    const char *name;        /* the path, or "stdin" (messages) */
    FILE *f;                 /* open while stream bytes may follow; else NULL */
    int is_stdin;
    unsigned char *buf;      /* what was read (decoded when base64) */
    size_t len, cap;
    size_t item;             /* bytes of the COSE item at buf: the message or stream header */
    int base64;              /* the input was base64 text */
    cli_env_t type;
    unsigned long long size; /* a regular file's size, else 0 */
} rw_in_t;

static void in_close(rw_in_t *in)
{
    if (in->f != NULL && !in->is_stdin)
        fclose(in->f);
    free(in->buf); /* ciphertext and wrapped keys only: nothing to wipe */
    memset(in, 0, sizeof(*in));
}

/* The rest of a message that did not fit the first read. */
static int read_rest(rw_in_t *in)
{
    for (;;) {
        size_t got;
        if (in->len == in->cap) {
            unsigned char *nb;
            if (in->cap >= CLI_MEM_MAX) {
                cli_err("--file: %s is larger than %lu MiB, the most hsmc reads as one message",
                        in->name, (unsigned long)(CLI_MEM_MAX >> 20));
                return CLI_EXIT_USAGE;
            }
            nb = (unsigned char *)realloc(in->buf, in->cap * 2);
            if (nb == NULL) {
                cli_err("out of memory reading %s", in->name);
                return CLI_EXIT_FAIL;
            }
            in->buf = nb;
            in->cap *= 2;
        }
        got = fread(in->buf + in->len, 1, in->cap - in->len, in->f);
        in->len += got;
        if (got == 0)
            break;
    }
    if (ferror(in->f)) {
        cli_err("--file: cannot read %s: %s", in->name, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if (!in->is_stdin)
        fclose(in->f);
    in->f = NULL;
    return CLI_EXIT_OK;
}

/*
 * Read the envelope: the first HEAD_READ bytes; all of it unless it is a
 * stream (whose chunks stay in in->f for the copy). Base64 text (`hsmc
 * encrypt --base64`) is decoded. in->item is the size of the first item,
 * 0 when it is not well-formed CBOR within what was read.
 */
static int read_input(const char *path, rw_in_t *in)
{
    struct stat st;
    hsmc_cbor_dec_t d;
    const uint8_t *p;
    int rc;

    memset(in, 0, sizeof(*in));
    in->is_stdin = path == NULL || strcmp(path, "-") == 0;
    in->name = in->is_stdin ? "stdin" : path;
    in->f = in->is_stdin ? stdin : fopen(path, "rb");
    if (in->f == NULL) {
        int err = errno;
        cli_err("--file: cannot open %s: %s", path, strerror(err));
        return err == ENOENT ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    if (fstat(fileno(in->f), &st) == 0 && S_ISREG(st.st_mode))
        in->size = (unsigned long long)st.st_size;
    in->cap = HEAD_READ;
    in->buf = (unsigned char *)malloc(in->cap);
    if (in->buf == NULL) {
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    in->len = fread(in->buf, 1, in->cap, in->f);
    if (ferror(in->f)) {
        cli_err("--file: cannot read %s: %s", in->name, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    in->type = cli_env_type(in->buf, in->len);
    if (in->len < in->cap) {
        /* fread stops short only at the end of the input. */
        if (!in->is_stdin)
            fclose(in->f);
        in->f = NULL;
    } else if (in->type != CLI_ENV_STREAM) {
        rc = read_rest(in);
        if (rc != CLI_EXIT_OK)
            return rc;
        in->type = cli_env_type(in->buf, in->len);
    }
    if (in->type == CLI_ENV_UNKNOWN && in->f == NULL && in->len > 0 &&
        cli_looks_like_text(in->buf, in->len)) {
        unsigned char *bin = NULL;
        size_t blen = 0;
        if (cli_base64_decode(in->buf, in->len, &bin, &blen) == 0) {
            free(in->buf);
            in->buf = bin;
            in->len = in->cap = blen;
            in->base64 = 1;
            in->type = cli_env_type(in->buf, in->len);
        }
    }
    hsmc_cbor_dec_init(&d, in->buf, in->len);
    if (hsmc_cbor_get_raw(&d, &p, &in->item) != HSMC_OK)
        in->item = 0;
    return CLI_EXIT_OK;
}

/* ---- recipients ---------------------------------------------------------------------- */

/* COSE name of a recipient algorithm, or its number in buf. */
static const char *rcpt_alg_name(int alg, char *buf, size_t cap)
{
    const char *name = hsmc_cose_alg_name(alg);

    if (name != NULL)
        return name;
    snprintf(buf, cap, "%d", alg);
    return buf;
}

/* A kid for a message line: printable ASCII, else '?', at most 64 bytes. */
static const char *kid_text(hsmc_view_t kid, char *buf, size_t cap)
{
    size_t i, n = kid.len < 64 ? kid.len : 64;
    if (n + 1 > cap)
        n = cap - 1;
    for (i = 0; i < n; i++)
        buf[i] = kid.ptr[i] >= 0x20 && kid.ptr[i] < 0x7f ? (char)kid.ptr[i] : '?';
    buf[n] = '\0';
    return buf;
}

/*
 * "'kek-v0001' (A256KW), 'escrow' (RSA-OAEP)" for the recipients of item,
 * into buf (cut with "..." when long). No token call.
 */
static const char *kid_list(hsmc_cose_t *cc, hsmc_view_t item, char *buf, size_t cap)
{
    size_t i, n = 0, o = 0;
    buf[0] = '\0';
    for (i = 0; i == 0 || i < n; i++) {
        hsmc_view_t kid;
        int alg = 0, w;
        char k[72], a[16];
        if (hsmc_cose_recipient_at(cc, item, 0, i, &kid, &alg, &n) != HSMC_OK)
            break;
        w = snprintf(buf + o, cap - o, "%s'%s' (%s)", i > 0 ? ", " : "",
                     kid.len > 0 ? kid_text(kid, k, sizeof(k)) : "(no kid)",
                     rcpt_alg_name(alg, a, sizeof(a)));
        if (w < 0 || (size_t)w >= cap - o) {
            if (cap > 4)
                memcpy(buf + cap - 4, "...", 4);
            break;
        }
        o += (size_t)w;
    }
    return buf;
}

/* JSON array `key` of the recipients' kids (null for none). */
static void json_kids(cli_json_t *j, const char *key, hsmc_cose_t *cc, hsmc_view_t item)
{
    size_t i, n = 0;
    cli_json_arr(j, key);
    for (i = 0; i == 0 || i < n; i++) {
        hsmc_view_t kid;
        int alg = 0;
        if (hsmc_cose_recipient_at(cc, item, 0, i, &kid, &alg, &n) != HSMC_OK)
            break;
        if (kid.len > 0)
            cli_json_strn(j, NULL, (const char *)kid.ptr, kid.len);
        else
            cli_json_null(j, NULL);
    }
    cli_json_end(j);
}

/* --list: the recipients, without the token. */
static int list_recipients(cli_ctx_t *c, const rw_in_t *in)
{
    hsmc_cose_t cc;
    hsmc_view_t item = view(in->buf, in->item), kid;
    size_t i, n = 0;
    int alg = 0, stream = in->type == CLI_ENV_STREAM;
    hsmc_err_t e;
    char a[16];

    /* The context is not opened: recipient_at only parses. */
    hsmc_cose_init(&cc, &c->h);
    e = hsmc_cose_recipient_at(&cc, item, 0, 0, &kid, &alg, &n);
    if (e != HSMC_OK) {
        hsmc_cose_free(&cc);
        cli_fail_hint(c, e, "cannot read the recipients",
                      "the envelope is damaged or cut short, or was not written by `hsmc "
                      "encrypt --recipient`");
        return e == HSMC_ERR_FORMAT ? CLI_EXIT_DECRYPT : cli_exit_code(e);
    }
    if (cli_flag(c, "json")) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_obj(&j, NULL);
        cli_json_str(&j, "type", stream ? "stream" : "COSE_Encrypt");
        cli_json_bool(&j, "stream", stream);
        cli_json_arr(&j, "recipients");
        for (i = 0; i < n; i++) {
            if (hsmc_cose_recipient_at(&cc, item, 0, i, &kid, &alg, NULL) != HSMC_OK)
                break;
            cli_json_obj(&j, NULL);
            if (kid.len > 0)
                cli_json_strn(&j, "kid", (const char *)kid.ptr, kid.len);
            else
                cli_json_null(&j, "kid");
            cli_json_str(&j, "alg", rcpt_alg_name(alg, a, sizeof(a)));
            cli_json_end(&j);
        }
        cli_json_end(&j);
        cli_json_num(&j, "count", (unsigned long)n);
        cli_json_end(&j);
    } else {
        printf("%s, %lu recipient%s:\n", stream ? "stream (COSE_Encrypt header)" : "COSE_Encrypt",
               (unsigned long)n, n == 1 ? "" : "s");
        for (i = 0; i < n; i++) {
            if (hsmc_cose_recipient_at(&cc, item, 0, i, &kid, &alg, NULL) != HSMC_OK)
                break;
            fputs("  ", stdout);
            if (kid.len > 0)
                cli_put_safe(stdout, (const char *)kid.ptr, kid.len);
            else
                fputs("(no kid)", stdout);
            printf("  %s\n", rcpt_alg_name(alg, a, sizeof(a)));
        }
    }
    hsmc_cose_free(&cc);
    if (fflush(stdout) != 0) {
        cli_err("cannot write the output: %s", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

/* ---- re-wrapping ---------------------------------------------------------------------- */

/* Report a failed re-wrap; `kids` lists the envelope's recipients. */
static int rewrap_fail(cli_ctx_t *c, hsmc_err_t e, const char *kids)
{
    char hint[768];
    const char *h = NULL;
    int rc;
    switch (e) {
    case HSMC_ERR_OBJECT_NOT_FOUND:
        snprintf(hint, sizeof(hint),
                 "no key for any recipient is on this token; the envelope needs one of %s: "
                 "select the token that holds it (--token), or restore that key version",
                 kids);
        h = hint;
        break;
    case HSMC_ERR_DECRYPT:
        snprintf(hint, sizeof(hint),
                 "the wrapped content key does not unwrap: the envelope was altered, or the "
                 "token key labelled as its kid is not the one it was made for (recipients: "
                 "%s); nothing was written",
                 kids);
        h = hint;
        break;
    case HSMC_ERR_FORMAT:
        h = "the envelope is damaged or cut short, or was not written by `hsmc encrypt "
            "--recipient`";
        break;
    case HSMC_ERR_KEY_USAGE:
        h = "the old key must be allowed to unwrap (RSA: decrypt), each new recipient to wrap "
            "(AES: `--purpose kek`) or encrypt (RSA: `--purpose confidentiality`)";
        break;
    default:
        break;
    }
    rc = cli_fail_hint(c, e, "cannot re-wrap", h);
    /* Malformed input counts as not authentic, as for decrypt. */
    return e == HSMC_ERR_FORMAT ? CLI_EXIT_DECRYPT : rc;
}

/* Make the rename of a replaced file durable: fsync its directory. */
static void sync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n;
    int fd;
    if (slash == NULL) {
        strcpy(dir, ".");
    } else {
        n = slash == path ? 1u : (size_t)(slash - path);
        if (n >= sizeof(dir))
            return;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* --in-place: only a regular file (not a link, FIFO, device, socket) is replaced. */
static int check_in_place(cli_ctx_t *c, const char *path, struct stat *st)
{
    const char *what;
    if (lstat(path, st) != 0) {
        int err = errno;
        cli_err("--in-place: cannot open %s: %s", path, strerror(err));
        return err == ENOENT ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    if (S_ISREG(st->st_mode))
        return CLI_EXIT_OK;
    what = S_ISLNK(st->st_mode)    ? "a symbolic link"
         : S_ISFIFO(st->st_mode)   ? "a FIFO"
         : S_ISCHR(st->st_mode)    ? "a character device"
         : S_ISBLK(st->st_mode)    ? "a block device"
         : S_ISSOCK(st->st_mode)   ? "a socket"
         : S_ISDIR(st->st_mode)    ? "a directory"
                                   : "not a regular file";
    cli_err("--in-place: %s is %s; only a regular file can be replaced atomically", path, what);
    if (!c->quiet)
        fputs(S_ISLNK(st->st_mode)
                  ? "hsmc:   hint: give the file the link points to, or write the result with "
                    "--out FILE\n"
                  : "hsmc:   hint: read it with --file and write the result with --out FILE\n",
              stderr);
    return CLI_EXIT_USAGE;
}

/* Write the new item, then (a stream) the old chunks unchanged through one fixed buffer
 * (in->buf keeps the old header: the report still reads it). */
static int write_output(cli_ctx_t *c, rw_in_t *in, const uint8_t *hdr, size_t hn, cli_out_t *out,
                        unsigned long long *total)
{
    cli_progress_t pr;
    size_t tail = in->len - in->item;
    unsigned char *copy = NULL;
    int rc;

    *total = 0;
    if (in->base64) {
        /* All of it was read to decode it: encode the whole envelope again. */
        unsigned char *all = (unsigned char *)malloc(hn + tail + 1);
        if (all == NULL) {
            cli_err("out of memory");
            return CLI_EXIT_FAIL;
        }
        memcpy(all, hdr, hn);
        memcpy(all + hn, in->buf + in->item, tail);
        rc = cli_base64_write(out, all, hn + tail);
        free(all);
        *total = hn + tail;
        return rc;
    }
    rc = cli_out_write(out, hdr, hn);
    if (rc == CLI_EXIT_OK)
        rc = cli_out_write(out, in->buf + in->item, tail);
    *total = hn + tail;
    cli_progress_init(&pr, c, "copying", in->size);
    if (rc == CLI_EXIT_OK && in->f != NULL) {
        copy = (unsigned char *)malloc(HEAD_READ);
        if (copy == NULL) {
            cli_err("out of memory");
            rc = CLI_EXIT_FAIL;
        }
    }
    /* The rest of a stream, a buffer at a time whatever the size. */
    while (rc == CLI_EXIT_OK && in->f != NULL) {
        size_t got = fread(copy, 1, HEAD_READ, in->f);
        if (got == 0) {
            if (ferror(in->f)) {
                cli_err("--file: cannot read %s: %s", in->name, strerror(errno));
                rc = CLI_EXIT_FAIL;
            }
            break;
        }
        rc = cli_out_write(out, copy, got);
        *total += got;
        cli_progress(&pr, *total, 0);
    }
    free(copy);
    if (rc == CLI_EXIT_OK)
        cli_progress(&pr, *total, 1);
    return rc;
}

/* Re-wrap in->item for the --recipient keys and write the result. */
static int do_rewrap(cli_ctx_t *c, rw_in_t *in, const char **labels, size_t nr,
                     const char *out_path, const struct stat *in_st)
{
    hsmc_cose_recipient_t rcp[MAX_RECIPIENTS];
    hsmc_key_t keys[MAX_RECIPIENTS];
    hsmc_view_t item = view(in->buf, in->item), kid0;
    hsmc_cose_info_t info;
    hsmc_cose_t cc;
    uint8_t *hdr = NULL;
    size_t need = 0, hn = 0, i;
    unsigned long long total = 0;
    unsigned oflags;
    hsmc_err_t e;
    cli_out_t out;
    char kids[512], after[512], used[72];
    int rc, alg0 = 0, stream = in->type == CLI_ENV_STREAM;

    hsmc_cose_init(&cc, &c->h);
    /* Parse before the token is opened: a damaged envelope fails without a PIN, and
     * the kids it names feed the hints. */
    e = hsmc_cose_recipient_at(&cc, item, 0, 0, &kid0, &alg0, NULL);
    if (e != HSMC_OK) {
        hsmc_cose_free(&cc);
        return rewrap_fail(c, e, "");
    }
    kid_list(&cc, item, kids, sizeof(kids));
    rc = cli_open(c, 0);
    if (rc == CLI_EXIT_OK)
        rc = cli_open_recipients(c, labels, nr, keys, rcp);
    if (rc != CLI_EXIT_OK) {
        hsmc_cose_free(&cc);
        return rc;
    }
    memset(&info, 0, sizeof(info));
    e = hsmc_cose_rewrap(&cc, item, 0, rcp, nr, NULL, 0, &need, NULL);
    if (e == HSMC_OK || e == HSMC_ERR_BUFFER) {
        hdr = (uint8_t *)malloc(need > 0 ? need : 1);
        if (hdr == NULL) {
            hsmc_cose_free(&cc);
            cli_err("out of memory (%lu bytes)", (unsigned long)need);
            return CLI_EXIT_FAIL;
        }
        e = hsmc_cose_rewrap(&cc, item, 0, rcp, nr, hdr, need, &hn, &info);
    }
    if (e != HSMC_OK) {
        free(hdr);
        hsmc_cose_free(&cc);
        return rewrap_fail(c, e, kids);
    }
    /* Only now is there something to write: a refusal above leaves no file. */
    oflags = (in->base64 ? 0u : CLI_OUT_BINARY) | (cli_flag(c, "force") ? CLI_OUT_FORCE : 0u);
    rc = cli_out_open(&out, out_path, oflags);
    if (rc == CLI_EXIT_OK && in_st != NULL && out.tmp[0] != '\0' &&
        fchmod(fileno(out.f), in_st->st_mode & 07777) != 0) {
        cli_err("cannot keep the mode of %s: %s", out_path, strerror(errno));
        rc = CLI_EXIT_FAIL;
    }
    if (rc == CLI_EXIT_OK)
        rc = write_output(c, in, hdr, hn, &out, &total);
    if (rc == CLI_EXIT_OK)
        rc = cli_out_commit(&out);
    else if (out.f != NULL)
        cli_out_abort(&out);
    if (rc == CLI_EXIT_OK && in_st != NULL)
        sync_dir(out_path);
    if (rc == CLI_EXIT_OK) {
        kid_list(&cc, view(hdr, hn), after, sizeof(after));
        kid_text(info.kid, used, sizeof(used));
        cli_log_msg(HSMC_LOG_INFO, "rewrap %s: content key unwrapped with '%s', wrapped for %s",
                    in->name, used, after);
        cli_note(c, "re-wrapped %s: unwrapped with '%s', now for %s%s", in->name, used, after,
                 stream ? "; the stream's chunks were copied unchanged" : "");
        if (cli_flag(c, "json")) {
            cli_json_t j;
            cli_json_init(&j, stdout);
            cli_json_obj(&j, NULL);
            json_kids(&j, "kids_before", &cc, item);
            json_kids(&j, "kids_after", &cc, view(hdr, hn));
            cli_json_strn(&j, "unwrapped_with", (const char *)info.kid.ptr, info.kid.len);
            cli_json_num(&j, "bytes", (unsigned long)total);
            cli_json_bool(&j, "stream", stream);
            cli_json_num(&j, "envelope_bytes_before", (unsigned long)in->item);
            cli_json_num(&j, "envelope_bytes_after", (unsigned long)hn);
            cli_json_bool(&j, "base64", in->base64);
            cli_json_end(&j);
            if (fflush(stdout) != 0) {
                cli_err("cannot write the report: %s", strerror(errno));
                rc = CLI_EXIT_FAIL;
            }
        }
    }
    for (i = 0; i < nr; i++)
        cli_wipe(&keys[i], sizeof(keys[i]));
    free(hdr);
    hsmc_cose_free(&cc);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------ */

const cli_opt_t cli_rewrap_opts[] = {
    {"recipient", 'r', "LABEL...", "AES KEK or RSA key to wrap for (BASE: its latest "
                                   "version); repeat for more"},
    {"file", 'f', "FILE", "the envelope or stream to re-wrap (- or none: stdin)"},
    {"out", 'o', "FILE", "write to FILE (atomically) instead of stdout"},
    {"in-place", 0, NULL, "replace --file FILE atomically (regular files only)"},
    {"list", 0, NULL, "print the recipients (kid, algorithm); no token, no PIN"},
    {"json", 0, NULL, "print a JSON report on stdout (with --list: the recipients)"},
    {"oaep-sha256", 0, NULL, "RSA recipients: RSA-OAEP with SHA-256 (default SHA-1)"},
    {"force", 0, NULL, "write binary output to stdout even when it is a terminal"},
    {NULL, 0, NULL, NULL}};

const char cli_rewrap_help[] =
    "Rotates the key-encryption key (KEK) of envelopes from `hsmc encrypt\n"
    "--recipient` (COSE_Encrypt, or a stream). The content key is unwrapped in\n"
    "the token with whichever recipient's key the envelope names (its kid) and\n"
    "the token holds, then wrapped for each --recipient as encrypt does: AES\n"
    "keys with A128KW/A192KW/A256KW by size, RSA keys with RSA-OAEP. The data is\n"
    "not decrypted: the ciphertext, or a stream's chunks, are kept byte for\n"
    "byte, in fixed memory whatever the size. The old recipients are replaced:\n"
    "name a key again to keep it.\n\n"
    "--recipient BASE, when no key has that label but versions BASE-v0001, ...\n"
    "do, uses the latest version (e.g. after `hsmc key rotate BASE`).\n\n"
    "Output: --out FILE (written atomically), stdout when it is not a terminal,\n"
    "or --in-place: --file FILE is replaced atomically (a temporary file in the\n"
    "same directory, fsync'ed, renamed over it; its mode is kept). Only a\n"
    "regular file is replaced in place: symbolic links, FIFOs and devices are\n"
    "refused. Nothing is written when the content key does not re-wrap.\n"
    "Base64 input (encrypt --base64) is written back as base64.\n\n"
    "--list prints the recipients (kid, algorithm) without the token or a PIN:\n"
    "which KEK versions a file still needs before one is deleted. --json\n"
    "prints that as JSON, or after a re-wrap a report on stdout (with --out or\n"
    "--in-place): kids_before, kids_after, unwrapped_with, bytes (written),\n"
    "stream, envelope_bytes_before/after (the message, or the stream header).\n\n"
    "Exit code 6: no key for any recipient on this token (the hint names the\n"
    "kids). Exit code 9: the content key does not unwrap (altered) or the\n"
    "envelope is damaged. Exit code 2: not an envelope with recipients, e.g. a\n"
    "COSE_Encrypt0 from `hsmc encrypt --key`.";

const char cli_rewrap_examples[] =
    "  hsmc key rotate backup-kek --purpose kek\n"
    "  hsmc rewrap --recipient backup-kek --file db.tar.cose --in-place\n"
    "  hsmc rewrap -r backup-kek -r escrow-rsa --file a.cose --out b.cose\n"
    "  hsmc rewrap --list --file db.tar.cose\n";

int cli_rewrap(cli_ctx_t *c)
{
    const char *file = cli_opt(c, "file"), *out_path = cli_opt(c, "out");
    const char *labels[CLI_MAX_MULTI];
    size_t nr = cli_opt_all(c, "recipient", labels, CLI_MAX_MULTI);
    int list = cli_flag(c, "list"), in_place = cli_flag(c, "in-place"), rc;
    struct stat st;
    rw_in_t in;

    if (list && (nr > 0 || out_path != NULL || in_place || cli_flag(c, "oaep-sha256"))) {
        cli_err("--list only reads the envelope: give no --recipient, --out, --in-place or "
                "--oaep-sha256");
        return CLI_EXIT_USAGE;
    }
    if (!list && nr == 0) {
        cli_err("give the new key-encryption key: --recipient LABEL (repeat for more)");
        if (!c->quiet)
            fputs("hsmc:   hint: `hsmc rewrap --list --file FILE` shows the recipients the "
                  "envelope has now\n",
                  stderr);
        return CLI_EXIT_USAGE;
    }
    if (nr > MAX_RECIPIENTS) {
        cli_err("at most %d recipients", MAX_RECIPIENTS);
        return CLI_EXIT_USAGE;
    }
    if (in_place && out_path != NULL) {
        cli_err("give either --out FILE or --in-place, not both");
        return CLI_EXIT_USAGE;
    }
    if (in_place && (file == NULL || strcmp(file, "-") == 0)) {
        cli_err("--in-place replaces --file FILE: give a file, not stdin");
        return CLI_EXIT_USAGE;
    }
    if (!list && cli_flag(c, "json") && !in_place &&
        (out_path == NULL || strcmp(out_path, "-") == 0)) {
        cli_err("--json prints a report on stdout, which would also carry the envelope: give "
                "--out FILE or --in-place");
        return CLI_EXIT_USAGE;
    }
    if ((file == NULL || strcmp(file, "-") == 0) && isatty(STDIN_FILENO)) {
        cli_err("give the envelope: --file FILE (stdin is a terminal)");
        return CLI_EXIT_USAGE;
    }
    if (in_place) {
        rc = check_in_place(c, file, &st);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    rc = read_input(file, &in);
    if (rc != CLI_EXIT_OK) {
        in_close(&in);
        return rc;
    }
    if (in.type == CLI_ENV_ENCRYPT0) {
        cli_err("%s is a COSE_Encrypt0: it was made with `hsmc encrypt --key` and has no "
                "recipients to re-wrap",
                in.name);
        if (!c->quiet)
            fputs("hsmc:   hint: made with --key: a data key has no recipients; decrypt and "
                  "encrypt again (`hsmc encrypt --recipient KEK`)\n",
                  stderr);
        rc = CLI_EXIT_USAGE;
    } else if (in.type == CLI_ENV_SIGN1) {
        cli_err("%s is a COSE_Sign1 (a signature): nothing to re-wrap", in.name);
        rc = CLI_EXIT_USAGE;
    } else if (in.type == CLI_ENV_UNKNOWN) {
        cli_err("%s is not an envelope from `hsmc encrypt --recipient` (COSE_Encrypt or an hsmc "
                "stream)",
                in.name);
        if (!c->quiet)
            fputs("hsmc:   hint: the file may be damaged or cut short, or be something else\n",
                  stderr);
        rc = CLI_EXIT_USAGE;
    } else if (in.item == 0) {
        cli_err("cannot re-wrap: %s: the envelope is damaged or cut short%s", in.name,
                in.f != NULL ? " (or its stream header is larger than 64 KiB)" : "");
        rc = CLI_EXIT_DECRYPT;
    } else if (in.type == CLI_ENV_ENCRYPT && in.item != in.len) {
        cli_err("cannot re-wrap: %s: bytes follow the envelope (damaged, or not one message)",
                in.name);
        rc = CLI_EXIT_DECRYPT;
    } else if (in.type == CLI_ENV_STREAM && in.item == in.len && in.f == NULL) {
        cli_err("cannot re-wrap: %s: the stream has no chunks after its header (cut short?)",
                in.name);
        rc = CLI_EXIT_DECRYPT;
    }
    if (rc == CLI_EXIT_OK) {
        if (list)
            rc = list_recipients(c, &in);
        else
            rc = do_rewrap(c, &in, labels, nr, in_place ? file : out_path,
                           in_place ? &st : NULL);
    }
    in_close(&in);
    return rc;
}
