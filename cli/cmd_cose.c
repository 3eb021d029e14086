/*
 * cmd_cose.c: `hsmc encrypt` and `hsmc decrypt`: data sealed in COSE
 * envelopes with token keys (docs/FORMATS.md has the formats).
 *
 *   --key LABEL        COSE_Encrypt0: the token AES key encrypts directly.
 *   --recipient LABEL  COSE_Encrypt: a fresh content key encrypts, each
 *                      recipient key (AES KEK: A128/192/256KW; RSA: RSA-OAEP)
 *                      wraps it. Inputs above a threshold become a stream
 *                      (header + chunks), so memory stays fixed.
 *
 * The envelope records what the plaintext is in its protected header
 * (COSE content type, label 3): --message is "text/plain; charset=utf-8",
 * --json "application/json", --file "application/octet-stream". decrypt
 * restores that kind: text and JSON may go to a terminal, bytes need
 * --force there; an envelope without label 3 is bytes.
 *
 * `hsmc rewrap` (cmd_rewrap.c, listed here with them) re-wraps the content
 * key of --recipient envelopes for new KEKs; it shares cli_open_recipients()
 * and cli_env_type() with these commands.
 *
 * Failure never leaves plaintext behind: --out files are written to a
 * temporary name and renamed only after everything authenticated; stdout
 * gets non-streamed plaintext only after it authenticated, and streamed
 * plaintext one chunk at a time, each after it authenticated.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "hsmc/cose.h"

/* Inputs larger than this are streamed (with --recipient). */
#define STREAM_THRESHOLD ((size_t)8 * 1024 * 1024)
/* Plaintext bytes per stream chunk. */
#define STREAM_CHUNK ((size_t)64 * 1024)
/* Largest chunk a stream being opened may declare (memory bound). */
#define STREAM_CHUNK_MAX ((size_t)16 * 1024 * 1024)
/* What decrypt reads first to tell the message type (a stream header fits). */
#define HEAD_READ ((size_t)64 * 1024)
/* Most recipients of one envelope. */
#define MAX_RECIPIENTS 8
/* JSON nesting hsmc checks (deeper documents are refused). */
#define JSON_DEPTH 256

static hsmc_view_t view(const void *p, size_t n)
{
    hsmc_view_t v;
    v.ptr = (const uint8_t *)p;
    v.len = n;
    return v;
}

static hsmc_view_t aad_view(const cli_ctx_t *c)
{
    const char *aad = cli_opt(c, "aad");
    return aad != NULL ? view(aad, strlen(aad)) : view(NULL, 0);
}

/* ---- JSON well-formedness ------------------------------------------------------------- */

/* Skip JSON whitespace. */
static size_t json_ws(const unsigned char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* A JSON string starting at s[i] == '"'. @return index after it, or 0 when malformed. */
static size_t json_string(const unsigned char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '"')
            return i + 1;
        if (s[i] < 0x20)
            return 0;
        if (s[i] == '\\') {
            if (++i >= n)
                return 0;
            if (s[i] == 'u') {
                size_t k;
                for (k = 1; k <= 4; k++)
                    if (i + k >= n || strchr("0123456789abcdefABCDEF", s[i + k]) == NULL ||
                        s[i + k] == 0)
                        return 0;
                i += 4;
            } else if (strchr("\"\\/bfnrt", s[i]) == NULL || s[i] == 0) {
                return 0;
            }
        }
    }
    return 0;
}

/* A number or literal at s[i]. @return index after it, or 0 when malformed. */
static size_t json_scalar(const unsigned char *s, size_t i, size_t n)
{
    static const char *const lits[] = {"true", "false", "null"};
    size_t k, start;
    for (k = 0; k < 3; k++) {
        size_t l = strlen(lits[k]);
        if (n - i >= l && memcmp(s + i, lits[k], l) == 0)
            return i + l;
    }
    start = i;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    if (i < n && s[i] == '.') {
        if (++i >= n || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return i > start ? i : 0;
}

/*
 * 1 when s[0..n) is one well-formed JSON text (RFC 8259 grammar; strings
 * are not checked for UTF-8). Iterative, nesting up to JSON_DEPTH. *err
 * gets the offset of the first problem.
 */
static int json_valid(const unsigned char *s, size_t n, size_t *err)
{
    unsigned char stack[JSON_DEPTH]; /* '{' or '[' */
    size_t depth = 0, i = json_ws(s, 0, n), next;
    /* state: 0 expect value, 1 after value, 2 expect key (or '}' when empty ok) */
    int state = 0, empty_ok = 0;

    while (i < n) {
        unsigned char ch = s[i];
        if (state == 0) {
            if (ch == '{' || ch == '[') {
                if (depth == JSON_DEPTH)
                    break;
                stack[depth++] = ch;
                i = json_ws(s, i + 1, n);
                if (ch == '{') {
                    state = 2;
                    empty_ok = 1;
                } else if (i < n && s[i] == ']') {
                    depth--;
                    i++;
                    state = 1;
                } else {
                    state = 0;
                }
                continue;
            }
            next = ch == '"' ? json_string(s, i, n) : json_scalar(s, i, n);
            if (next == 0)
                break;
            i = next;
            state = 1;
        } else if (state == 2) {
            if (ch == '}' && empty_ok) {
                depth--;
                i++;
                state = 1;
            } else {
                if (ch != '"' || (next = json_string(s, i, n)) == 0)
                    break;
                i = json_ws(s, next, n);
                if (i >= n || s[i] != ':')
                    break;
                i++;
                state = 0;
            }
            empty_ok = 0;
        } else { /* after a value */
            if (depth == 0)
                break; /* trailing bytes */
            if (ch == ',') {
                i++;
                state = stack[depth - 1] == '{' ? 2 : 0;
                empty_ok = 0;
            } else if ((ch == '}' && stack[depth - 1] == '{') ||
                       (ch == ']' && stack[depth - 1] == '[')) {
                depth--;
                i++;
            } else {
                break;
            }
        }
        i = json_ws(s, i, n);
    }
    *err = i;
    return i == n && depth == 0 && state == 1;
}

/* ---- encrypt: input ---------------------------------------------------------------------- */

/* What the plaintext is: written as the envelope's content type, restored by decrypt. */
typedef enum data_kind { KIND_BYTES, KIND_TEXT, KIND_JSON } data_kind_t;

static const char *kind_name(data_kind_t k)
{
    return k == KIND_TEXT ? "text" : k == KIND_JSON ? "JSON" : "bytes";
}

/* The content type (COSE label 3) encrypt writes for each kind (docs/FORMATS.md). */
static const char *kind_content_type(data_kind_t k)
{
    return k == KIND_TEXT ? "text/plain; charset=utf-8"
         : k == KIND_JSON ? "application/json"
                          : "application/octet-stream";
}

/* 1 when p[0..n) is UTF-8 (RFC 3629: no overlong forms, no surrogates): the
 * CBOR encoder's text check, in a size-only pass. */
static int utf8_ok(const unsigned char *p, size_t n)
{
    hsmc_cbor_enc_t e;
    size_t len = 0;
    hsmc_cbor_enc_init(&e, NULL, 0);
    (void)hsmc_cbor_put_tstr(&e, (const char *)p, n);
    return hsmc_cbor_enc_finish(&e, &len) == HSMC_OK;
}

/* The plaintext: whole in buf, or (a stream) its first len bytes with f holding the rest. */
typedef struct src {
    unsigned char *buf;
    size_t len;
    FILE *f;                 /* open while more may follow; NULL when buf is everything */
    int is_stdin;
    unsigned long long size; /* total bytes when known (regular file), else 0 */
    data_kind_t kind;
} src_t;

static void src_close(src_t *s)
{
    if (s->f != NULL && !s->is_stdin)
        fclose(s->f);
    cli_free(s->buf, s->len);
    memset(s, 0, sizeof(*s));
}

/* Read up to want bytes into s->buf (allocated to cap); f stays open unless EOF was hit. */
static int src_fill(src_t *s, size_t want, const char *name)
{
    size_t got;
    s->buf = (unsigned char *)malloc(want + 1);
    if (s->buf == NULL) {
        cli_err("out of memory reading %s", name);
        return CLI_EXIT_FAIL;
    }
    got = fread(s->buf, 1, want, s->f);
    s->len = got;
    if (ferror(s->f)) {
        cli_err("cannot read %s: %s", name, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if (got < want) {
        if (!s->is_stdin)
            fclose(s->f);
        s->f = NULL;
    }
    return CLI_EXIT_OK;
}

/*
 * Open the plaintext. With may_stream, a --file input is read only up to
 * the threshold (all of it below): s->f stays open when more follows.
 */
static int src_open(cli_ctx_t *c, src_t *s, int may_stream, int force_stream)
{
    const char *msg = cli_opt(c, "message"), *file = cli_opt(c, "file");
    const char *json = cli_opt(c, "json");
    int rc;

    memset(s, 0, sizeof(*s));
    if ((msg != NULL) + (file != NULL) + (json != NULL) != 1) {
        cli_err("give exactly one of --message TEXT, --file FILE and --json FILE|TEXT");
        return CLI_EXIT_USAGE;
    }
    if (msg != NULL) {
        s->kind = KIND_TEXT;
        if (!utf8_ok((const unsigned char *)msg, strlen(msg))) {
            /* The envelope will say charset=utf-8. */
            cli_err("--message: the text is not UTF-8");
            if (!c->quiet)
                fputs("hsmc:   hint: encrypt other data with --file FILE (bytes)\n", stderr);
            return CLI_EXIT_USAGE;
        }
        s->len = strlen(msg);
        s->buf = (unsigned char *)malloc(s->len + 1);
        if (s->buf == NULL)
            return CLI_EXIT_FAIL;
        memcpy(s->buf, msg, s->len + 1);
        return CLI_EXIT_OK;
    }
    if (json != NULL) {
        struct stat st;
        size_t bad = 0;
        s->kind = KIND_JSON;
        /* A file when one of that name exists (or "-"); otherwise the JSON text itself. */
        if (strcmp(json, "-") == 0 || stat(json, &st) == 0) {
            rc = cli_read_file(json, CLI_MEM_MAX, "--json", &s->buf, &s->len);
            if (rc != CLI_EXIT_OK)
                return rc;
        } else {
            s->len = strlen(json);
            s->buf = (unsigned char *)malloc(s->len + 1);
            if (s->buf == NULL)
                return CLI_EXIT_FAIL;
            memcpy(s->buf, json, s->len + 1);
        }
        if (!utf8_ok(s->buf, s->len)) {
            cli_err("--json: the document is not UTF-8 (RFC 8259 §8.1)");
            src_close(s);
            return CLI_EXIT_USAGE;
        }
        if (!json_valid(s->buf, s->len, &bad)) {
            cli_err("--json: not well-formed JSON (at byte %lu)", (unsigned long)bad);
            if (!c->quiet)
                fputs("hsmc:   hint: give a file holding one JSON value, or the JSON text "
                      "itself; use --file for other data\n",
                      stderr);
            src_close(s);
            return CLI_EXIT_USAGE;
        }
        return CLI_EXIT_OK;
    }
    s->kind = KIND_BYTES;
    s->is_stdin = strcmp(file, "-") == 0;
    s->f = s->is_stdin ? stdin : fopen(file, "rb");
    if (s->f == NULL) {
        cli_err("--file: cannot open %s: %s", file, strerror(errno));
        return errno == ENOENT ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    {
        struct stat st;
        if (fstat(fileno(s->f), &st) == 0 && S_ISREG(st.st_mode))
            s->size = (unsigned long long)st.st_size;
    }
    if (!may_stream && s->size > CLI_MEM_MAX) {
        cli_err("--file: %s is larger than %lu MiB, the most hsmc encrypts in one message", file,
                (unsigned long)(CLI_MEM_MAX >> 20));
        if (!c->quiet)
            fputs("hsmc:   hint: encrypt it for a key-encryption key with --recipient: large "
                  "inputs are then streamed in fixed memory\n",
                  stderr);
        src_close(s);
        return CLI_EXIT_USAGE;
    }
    if (!may_stream || (s->size > 0 && s->size <= STREAM_THRESHOLD && !force_stream)) {
        FILE *f = s->f;
        int is_stdin = s->is_stdin;
        s->f = NULL;
        if (!is_stdin)
            fclose(f);
        return cli_read_file(file, CLI_MEM_MAX, "--file", &s->buf, &s->len);
    }
    if (s->size > STREAM_THRESHOLD || force_stream)
        return CLI_EXIT_OK; /* a stream read chunk by chunk from s->f */
    /* A pipe: one byte past the threshold tells whether the input is larger. */
    rc = src_fill(s, STREAM_THRESHOLD + 1, file);
    if (rc != CLI_EXIT_OK)
        src_close(s);
    return rc;
}

/* ---- encrypt ------------------------------------------------------------------------------- */

static const cli_opt_t encrypt_opts[] = {
    {"key", 'k', "LABEL", "token AES key: COSE_Encrypt0 (a base label uses its latest version)"},
    {"recipient", 'r', "LABEL...", "envelope: COSE_Encrypt for this AES KEK or RSA key; "
                                   "repeat for more"},
    {"message", 'm', "TEXT", "encrypt this text"},
    {"file", 'f', "FILE", "encrypt the bytes of FILE (- is stdin)"},
    {"json", 0, "FILE|TEXT", "encrypt a JSON document (a file, - for stdin, or the text); "
                             "checked to be well-formed"},
    {"aad", 0, "TEXT", "external AAD: authenticated, not stored; decrypt needs the same"},
    {"out", 'o', "FILE", "write to FILE (atomically) instead of stdout"},
    {"stream", 0, NULL, "with --recipient: always write a chunked stream"},
    {"oaep-sha256", 0, NULL, "RSA recipients: RSA-OAEP with SHA-256 (default SHA-1)"},
    {"base64", 0, NULL, "write base64 text instead of binary (not for streams)"},
    {"force", 0, NULL, "write binary output to stdout even when it is a terminal"},
    {NULL, 0, NULL, NULL}};

/* Fill r[0..n) from the --recipient labels (shared with `hsmc rewrap`: see cli.h). */
int cli_open_recipients(cli_ctx_t *c, const char **labels, size_t n, hsmc_key_t *keys,
                        hsmc_cose_recipient_t *r)
{
    size_t i;
    int rc;
    for (i = 0; i < n; i++) {
        rc = cli_key_open(c, labels[i], &keys[i], 1);
        if (rc != CLI_EXIT_OK)
            return rc;
        r[i].key = &keys[i];
        switch (keys[i].alg) {
        case HSMC_ALG_AES128: r[i].alg = HSMC_COSE_A128KW; break;
        case HSMC_ALG_AES192: r[i].alg = HSMC_COSE_A192KW; break;
        case HSMC_ALG_AES256: r[i].alg = HSMC_COSE_A256KW; break;
        default:
            if (keys[i].priv.key_type != CKK_RSA) {
                cli_err("recipient '%.64s' is an %s key; recipients are AES key-encryption "
                        "keys or RSA keys",
                        labels[i], hsmc_key_type_name(keys[i].priv.key_type));
                if (!c->quiet)
                    fputs("hsmc:   hint: make one with `hsmc key gen --purpose kek` or "
                          "`--purpose confidentiality`\n",
                          stderr);
                return CLI_EXIT_USAGE;
            }
            r[i].alg = cli_flag(c, "oaep-sha256") ? HSMC_COSE_RSA_OAEP_256 : HSMC_COSE_RSA_OAEP;
        }
    }
    return CLI_EXIT_OK;
}

/* Seal the whole plaintext in one message and write it. */
static int encrypt_whole(cli_ctx_t *c, const hsmc_key_t *key, const hsmc_cose_recipient_t *r,
                         size_t nr, const src_t *s, cli_out_t *out)
{
    hsmc_cose_t cc;
    uint8_t *buf;
    size_t n = 0;
    hsmc_err_t e;
    int rc;

    hsmc_cose_init(&cc, &c->h);
    e = hsmc_cose_set_content_type(&cc, kind_content_type(s->kind));
    if (e == HSMC_OK)
        e = key != NULL
                ? hsmc_cose_encrypt0(&cc, key, aad_view(c), view(s->buf, s->len), NULL, 0, &n)
                : hsmc_cose_encrypt(&cc, r, nr, aad_view(c), view(s->buf, s->len), NULL, 0, &n);
    if (e != HSMC_OK && e != HSMC_ERR_BUFFER) {
        hsmc_cose_free(&cc);
        return cli_fail(c, e, "cannot encrypt");
    }
    buf = (uint8_t *)malloc(n > 0 ? n : 1);
    if (buf == NULL) {
        hsmc_cose_free(&cc);
        cli_err("out of memory (%lu bytes)", (unsigned long)n);
        return CLI_EXIT_FAIL;
    }
    e = key != NULL ? hsmc_cose_encrypt0(&cc, key, aad_view(c), view(s->buf, s->len), buf, n, &n)
                    : hsmc_cose_encrypt(&cc, r, nr, aad_view(c), view(s->buf, s->len), buf, n, &n);
    hsmc_cose_free(&cc);
    if (e != HSMC_OK) {
        const char *hint = NULL;
        free(buf);
        if (e == HSMC_ERR_UNSUPPORTED && key != NULL)
            hint = "a token without AES-GCM can still encrypt envelopes: use --recipient with "
                   "a KEK (`hsmc key gen --purpose kek`)";
        else if (e == HSMC_ERR_KEY_USAGE && key != NULL)
            hint = "--key needs an AES key made for data (`--purpose data`); a key-encryption "
                   "key goes with --recipient";
        else if (e == HSMC_ERR_KEY_USAGE)
            hint = "a recipient must be allowed to wrap (AES: `--purpose kek`) or encrypt "
                   "(RSA: `--purpose confidentiality`)";
        return cli_fail_hint(c, e, "cannot encrypt", hint);
    }
    rc = cli_flag(c, "base64") ? cli_base64_write(out, buf, n) : cli_out_write(out, buf, n);
    free(buf);
    return rc;
}

/* Seal the input as a stream: header, full chunks, last chunk. */
static int encrypt_stream(cli_ctx_t *c, const hsmc_cose_recipient_t *r, size_t nr, src_t *s,
                          cli_out_t *out)
{
    hsmc_cose_stream_t st;
    cli_progress_t pr;
    uint8_t *chunk = NULL, *item = NULL;
    size_t n = 0, have = 0, item_cap, off = 0;
    unsigned long long done = 0;
    hsmc_err_t e;
    int rc = CLI_EXIT_OK;

    hsmc_cose_stream_init(&st, &c->h);
    e = hsmc_cose_set_content_type(&st.cose, kind_content_type(s->kind));
    if (e == HSMC_OK)
        e = hsmc_cose_stream_seal_init(&st, r, nr, STREAM_CHUNK, aad_view(c), NULL, 0, &n);
    if (e == HSMC_OK || e == HSMC_ERR_BUFFER) {
        item = (uint8_t *)malloc(n);
        if (item == NULL) {
            hsmc_cose_stream_free(&st);
            return CLI_EXIT_FAIL;
        }
        e = hsmc_cose_stream_seal_init(&st, r, nr, STREAM_CHUNK, aad_view(c), item, n, &n);
    }
    if (e != HSMC_OK) {
        free(item);
        hsmc_cose_stream_free(&st);
        return cli_fail(c, e, "cannot start the encrypted stream");
    }
    rc = cli_out_write(out, item, n);
    free(item);
    item_cap = hsmc_cose_stream_item_max(&st);
    item = (uint8_t *)malloc(item_cap);
    chunk = (uint8_t *)malloc(STREAM_CHUNK);
    if (item == NULL || chunk == NULL) {
        cli_err("out of memory");
        rc = CLI_EXIT_FAIL;
    }
    cli_progress_init(&pr, c, "encrypting", s->size);
    /* The bytes already read (s->buf) come first, then the rest of the file. */
    while (rc == CLI_EXIT_OK) {
        while (have < STREAM_CHUNK && off < s->len) {
            size_t k = s->len - off < STREAM_CHUNK - have ? s->len - off : STREAM_CHUNK - have;
            memcpy(chunk + have, s->buf + off, k);
            have += k;
            off += k;
        }
        if (have < STREAM_CHUNK && s->f != NULL) {
            size_t got = fread(chunk + have, 1, STREAM_CHUNK - have, s->f);
            have += got;
            if (got == 0) {
                if (ferror(s->f)) {
                    cli_err("cannot read the input: %s", strerror(errno));
                    rc = CLI_EXIT_FAIL;
                    break;
                }
                if (!s->is_stdin)
                    fclose(s->f);
                s->f = NULL;
            }
            continue; /* fill the chunk completely, or find the end */
        }
        if (have == STREAM_CHUNK) {
            e = hsmc_cose_stream_seal_chunk(&st, chunk, have, item, item_cap, &n);
        } else {
            e = hsmc_cose_stream_seal_finish(&st, chunk, have, item, item_cap, &n);
        }
        if (e != HSMC_OK) {
            rc = cli_fail(c, e, "cannot encrypt a chunk");
            break;
        }
        rc = cli_out_write(out, item, n);
        done += have;
        cli_progress(&pr, done, have < STREAM_CHUNK);
        if (have < STREAM_CHUNK)
            break;
        have = 0;
    }
    cli_free(chunk, STREAM_CHUNK);
    free(item);
    hsmc_cose_stream_free(&st);
    return rc;
}

static int cmd_encrypt(cli_ctx_t *c)
{
    const char *label = cli_opt(c, "key");
    const char *rlabels[CLI_MAX_MULTI];
    size_t nr = cli_opt_all(c, "recipient", rlabels, CLI_MAX_MULTI);
    hsmc_key_t key, *rkeys = NULL;
    hsmc_cose_recipient_t rcp[MAX_RECIPIENTS];
    int stream_flag = cli_flag(c, "stream"), stream, rc;
    unsigned oflags = CLI_OUT_BINARY;
    cli_out_t out;
    src_t s;

    if ((label != NULL) == (nr > 0)) {
        cli_err("give either --key LABEL (direct) or --recipient LABEL (envelope), not both");
        if (!c->quiet)
            fputs("hsmc:   hint: --key: a token AES data key encrypts (COSE_Encrypt0); "
                  "--recipient: key-encryption keys or RSA keys wrap a fresh content key "
                  "(COSE_Encrypt), one or more\n",
                  stderr);
        return CLI_EXIT_USAGE;
    }
    if (nr > MAX_RECIPIENTS) {
        cli_err("at most %d recipients", MAX_RECIPIENTS);
        return CLI_EXIT_USAGE;
    }
    if (stream_flag && label != NULL) {
        cli_err("--stream needs --recipient: streams wrap a content key for each recipient");
        return CLI_EXIT_USAGE;
    }
    if (stream_flag && cli_flag(c, "base64")) {
        cli_err("--base64 is not for streams; write binary with --out FILE");
        return CLI_EXIT_USAGE;
    }
    if (cli_flag(c, "oaep-sha256") && nr == 0) {
        cli_err("--oaep-sha256 is for RSA recipients");
        return CLI_EXIT_USAGE;
    }
    rc = src_open(c, &s, nr > 0 && cli_flag(c, "file") && !cli_flag(c, "base64"), stream_flag);
    if (rc != CLI_EXIT_OK)
        return rc;
    stream = nr > 0 && (stream_flag || s.f != NULL);
    if (!stream && s.f != NULL) {
        /* Cannot happen: only recipient inputs are read partially. */
        src_close(&s);
        return CLI_EXIT_FAIL;
    }
    if (c->verbose > 0)
        cli_note(c, "encrypting %s%s (content type \"%s\")", kind_name(s.kind),
                 stream ? " as a stream" : "", kind_content_type(s.kind));
    rc = cli_open(c, 0);
    if (rc == CLI_EXIT_OK && label != NULL)
        rc = cli_key_open(c, label, &key, 1);
    if (rc == CLI_EXIT_OK && label != NULL && key.priv.key_type != CKK_AES) {
        cli_err("--key '%.64s' is an %s key; direct encryption needs an AES key", label,
                hsmc_key_type_name(key.priv.key_type));
        if (!c->quiet)
            fputs("hsmc:   hint: for an RSA key use --recipient LABEL\n", stderr);
        rc = CLI_EXIT_USAGE;
    }
    if (rc == CLI_EXIT_OK && nr > 0) {
        rkeys = (hsmc_key_t *)calloc(nr, sizeof(*rkeys));
        rc = rkeys == NULL ? CLI_EXIT_FAIL : cli_open_recipients(c, rlabels, nr, rkeys, rcp);
    }
    if (rc == CLI_EXIT_OK) {
        if (cli_flag(c, "base64"))
            oflags = 0;
        if (cli_flag(c, "force"))
            oflags |= CLI_OUT_FORCE;
        rc = cli_out_open(&out, cli_opt(c, "out"), oflags);
    }
    if (rc == CLI_EXIT_OK) {
        rc = stream ? encrypt_stream(c, rcp, nr, &s, &out)
                    : encrypt_whole(c, label != NULL ? &key : NULL, rcp, nr, &s, &out);
        if (rc == CLI_EXIT_OK)
            rc = cli_out_commit(&out);
        else
            cli_out_abort(&out);
    }
    free(rkeys);
    src_close(&s);
    return rc;
}

/* ---- decrypt ------------------------------------------------------------------------------------ */

/* Tell the message type from its first bytes (tag, and for tag 96 whether the ciphertext is nil). */
cli_env_t cli_env_type(const uint8_t *p, size_t n)
{
    hsmc_cbor_dec_t d;
    hsmc_cbor_type_t t;
    uint64_t tag = 0;
    size_t items = 0;
    const uint8_t *b;
    size_t bl;

    hsmc_cbor_dec_init(&d, p, n);
    if (hsmc_cbor_get_tag(&d, &tag) != HSMC_OK)
        return CLI_ENV_UNKNOWN;
    if (tag == HSMC_COSE_TAG_ENCRYPT0)
        return CLI_ENV_ENCRYPT0;
    if (tag == HSMC_COSE_TAG_SIGN1)
        return CLI_ENV_SIGN1;
    if (tag != HSMC_COSE_TAG_ENCRYPT)
        return CLI_ENV_UNKNOWN;
    if (hsmc_cbor_get_array(&d, &items) != HSMC_OK || items != 4 ||
        hsmc_cbor_get_bstr(&d, &b, &bl) != HSMC_OK || hsmc_cbor_skip(&d) != HSMC_OK ||
        hsmc_cbor_peek(&d, &t) != HSMC_OK)
        return CLI_ENV_ENCRYPT; /* malformed: the full decoder says what is wrong */
    return t == HSMC_CBOR_NULL ? CLI_ENV_STREAM : CLI_ENV_ENCRYPT;
}

/* 1 when the bytes are printable text (UTF-8 without control characters other than
 * tab, newline, carriage return). */
int cli_looks_like_text(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char ch = p[i];
        size_t len = ch < 0x80 ? 1 : (ch & 0xe0) == 0xc0 ? 2 : (ch & 0xf0) == 0xe0 ? 3
                     : (ch & 0xf8) == 0xf0 ? 4 : 0;
        size_t k;
        if (len == 0 || i + len > n)
            return 0;
        if (len == 1 && ((ch < 0x20 && ch != '\n' && ch != '\t' && ch != '\r') || ch == 0x7f))
            return 0;
        for (k = 1; k < len; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

/* ASCII case-insensitive: does s[0..n) equal lit? */
static int ieq(const uint8_t *s, size_t n, const char *lit)
{
    size_t i;
    if (n != strlen(lit))
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char a = s[i], b = (unsigned char)lit[i];
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return 1;
}

/*
 * The kind an envelope's content type names. Text: "text/..." media types
 * and CoAP Content-Format 0; JSON: "application/json", "...+json" and
 * Content-Format 50; anything else, and no content type (envelopes from
 * before label 3), is bytes. Parameters (after ';') do not matter.
 */
static data_kind_t kind_of(const hsmc_cose_info_t *info)
{
    const uint8_t *t = info->content_type.ptr;
    size_t n = info->content_type.len, i;
    if (n == 0)
        return info->content_format == 0 ? KIND_TEXT
             : info->content_format == 50 ? KIND_JSON
                                          : KIND_BYTES;
    for (i = 0; i < n && t[i] != ';'; i++)
        ;
    n = i;
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    if (n > 5 && ieq(t, 5, "text/"))
        return KIND_TEXT;
    if (ieq(t, n, "application/json") || (n > 5 && ieq(t + n - 5, 5, "+json")))
        return KIND_JSON;
    return KIND_BYTES;
}

/* The content type for a message: quoted text (bytes outside printable
 * ASCII become '?', at most 80 shown), the number, or "none". */
static const char *content_type_text(const hsmc_cose_info_t *info, char *buf, size_t cap)
{
    size_t i, o = 0, n = info->content_type.len;
    if (n == 0 && info->content_format >= 0) {
        snprintf(buf, cap, "CoAP content-format %ld", (long)info->content_format);
        return buf;
    }
    if (n == 0 || cap < 8)
        return "none";
    buf[o++] = '"';
    for (i = 0; i < n && o + 5 < cap && i < 80; i++) {
        uint8_t ch = info->content_type.ptr[i];
        buf[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    if (i < n) {
        buf[o++] = '.';
        buf[o++] = '.';
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* The kid for a message: printable ASCII, else '?', at most 64 bytes. */
static const char *kid_text(const hsmc_cose_info_t *info, char *buf, size_t cap)
{
    size_t i, n = info->kid.len < 64 ? info->kid.len : 64;
    if (cap < n + 1)
        n = cap - 1;
    for (i = 0; i < n; i++) {
        uint8_t ch = info->kid.ptr[i];
        buf[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    buf[n] = '\0';
    return buf;
}

/* decrypt --json: the envelope must say JSON. @return CLI_EXIT_OK or CLI_EXIT_FAIL (printed). */
static int want_json(cli_ctx_t *c, const hsmc_cose_info_t *info, data_kind_t kind)
{
    char ct[96];
    if (!cli_flag(c, "json") || kind == KIND_JSON)
        return CLI_EXIT_OK;
    cli_err("--json: the envelope holds %s (content type %s), not JSON; nothing written",
            kind_name(kind), content_type_text(info, ct, sizeof(ct)));
    return CLI_EXIT_FAIL;
}

/* 1 when a chunk of streamed text has no control characters but tab, newline and
 * carriage return (UTF-8 sequences may straddle chunks, so only bytes are checked). */
static int printable_chunk(const unsigned char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t' && p[i] != '\r') || p[i] == 0x7f)
            return 0;
    return 1;
}

/*
 * decrypt --key with an envelope: which recipients the key may open. The
 * recipient whose kid is the key's label if there is one; otherwise every
 * recipient whose algorithm fits the key (AxxxKW of its size, RSA-OAEP for
 * RSA), so a key relabelled since encryption still opens its envelope.
 */
typedef struct key_pick {
    const hsmc_key_t *key;
    const uint8_t *kid[MAX_RECIPIENTS * 2];
    size_t kid_len[MAX_RECIPIENTS * 2];
    size_t n;
    int null_kid; /* a fitting recipient has no kid */
} key_pick_t;

/* alg (label 1) and kid (label 4) from one header map; other entries are skipped. */
static void header_alg_kid(hsmc_cbor_dec_t *d, int64_t *alg, const uint8_t **kid, size_t *kid_len)
{
    size_t n = 0, i;
    if (hsmc_cbor_get_map(d, &n) != HSMC_OK)
        return;
    for (i = 0; i < n; i++) {
        int64_t label = 0;
        int have_label = 0;
        hsmc_cbor_type_t t;
        if (hsmc_cbor_peek(d, &t) != HSMC_OK)
            return;
        if (t == HSMC_CBOR_UINT || t == HSMC_CBOR_NINT) {
            if (hsmc_cbor_get_int(d, &label) != HSMC_OK)
                return;
            have_label = 1;
        } else if (hsmc_cbor_skip(d) != HSMC_OK) {
            return; /* a text label: not one hsmc uses */
        }
        if (hsmc_cbor_peek(d, &t) != HSMC_OK)
            return;
        if (have_label && label == HSMC_COSE_HDR_ALG && (t == HSMC_CBOR_UINT || t == HSMC_CBOR_NINT))
            (void)hsmc_cbor_get_int(d, alg);
        else if (have_label && label == HSMC_COSE_HDR_KID && t == HSMC_CBOR_BSTR)
            (void)hsmc_cbor_get_bstr(d, kid, kid_len);
        else if (hsmc_cbor_skip(d) != HSMC_OK)
            return;
    }
}

static int alg_fits(const hsmc_key_t *k, int64_t alg)
{
    switch (alg) {
    case HSMC_COSE_A128KW: return k->alg == HSMC_ALG_AES128;
    case HSMC_COSE_A192KW: return k->alg == HSMC_ALG_AES192;
    case HSMC_COSE_A256KW: return k->alg == HSMC_ALG_AES256;
    case HSMC_COSE_RSA_OAEP:
    case HSMC_COSE_RSA_OAEP_256: return k->priv.key_type == CKK_RSA;
    default: return 0;
    }
}

/* Read the recipients of a COSE_Encrypt (or stream header) at msg and fill p. */
static void pick_recipients(key_pick_t *p, const hsmc_key_t *key, const uint8_t *msg, size_t len)
{
    hsmc_cbor_dec_t d;
    uint64_t tag;
    size_t n = 0, nr = 0, i, k;
    const uint8_t *b;
    size_t bl;
    int pass;

    memset(p, 0, sizeof(*p));
    p->key = key;
    for (pass = 0; pass < 2 && p->n == 0 && !p->null_kid; pass++) {
        hsmc_cbor_dec_init(&d, msg, len);
        if (hsmc_cbor_get_tag(&d, &tag) != HSMC_OK || hsmc_cbor_get_array(&d, &n) != HSMC_OK ||
            n != 4 || hsmc_cbor_skip(&d) != HSMC_OK || hsmc_cbor_skip(&d) != HSMC_OK ||
            hsmc_cbor_skip(&d) != HSMC_OK || hsmc_cbor_get_array(&d, &nr) != HSMC_OK)
            return;
        for (i = 0; i < nr; i++) {
            int64_t alg = 0;
            const uint8_t *kid = NULL;
            size_t kid_len = 0, m = 0;
            if (hsmc_cbor_get_array(&d, &m) != HSMC_OK || m < 3 ||
                hsmc_cbor_get_bstr(&d, &b, &bl) != HSMC_OK)
                return;
            if (bl > 0) {
                hsmc_cbor_dec_t pd;
                hsmc_cbor_dec_init(&pd, b, bl);
                header_alg_kid(&pd, &alg, &kid, &kid_len);
            }
            header_alg_kid(&d, &alg, &kid, &kid_len);
            for (k = 2; k < m; k++)
                (void)hsmc_cbor_skip(&d);
            /* Pass 0: the kid names this key. Pass 1: the algorithm fits it. */
            if (pass == 0 ? (kid != NULL && kid_len == key->priv.label_len &&
                             memcmp(kid, key->priv.label, kid_len) == 0)
                          : alg_fits(key, alg)) {
                if (kid == NULL)
                    p->null_kid = 1;
                else if (p->n < MAX_RECIPIENTS * 2) {
                    p->kid[p->n] = kid;
                    p->kid_len[p->n++] = kid_len;
                }
            }
        }
    }
}

static hsmc_err_t resolve_pick(void *user, hsmc_t *h, const uint8_t *kid, size_t kid_len,
                               hsmc_key_t *key)
{
    const key_pick_t *p = (const key_pick_t *)user;
    size_t i;
    (void)h;
    if (kid == NULL && p->null_kid) {
        *key = *p->key;
        return HSMC_OK;
    }
    for (i = 0; kid != NULL && i < p->n; i++) {
        if (p->kid_len[i] == kid_len && memcmp(p->kid[i], kid, kid_len) == 0) {
            *key = *p->key;
            return HSMC_OK;
        }
    }
    return HSMC_ERR_OBJECT_NOT_FOUND;
}

static const cli_opt_t decrypt_opts[] = {
    {"in", 'i', "FILE", "the envelope from `hsmc encrypt` (binary or --base64; - is stdin)"},
    {"aad", 0, "TEXT", "the external AAD given to encrypt"},
    {"out", 'o', "FILE", "write the plaintext to FILE, only once all of it authenticated"},
    {"key", 'k', "LABEL", "decrypt with this key instead of the one the envelope names"},
    {"json", 0, NULL, "require JSON (content type; well-formed unless a stream), else exit 1"},
    {"force", 0, NULL, "write binary plaintext to stdout even when it is a terminal"},
    {NULL, 0, NULL, NULL}};

/* Report a decryption failure; malformed input counts as not authentic here. */
static int decrypt_fail(cli_ctx_t *c, hsmc_err_t e, const char *what)
{
    const char *hint = NULL;
    int rc;
    if (e == HSMC_ERR_FORMAT)
        hint = "the envelope is damaged or cut short, or was not written by `hsmc encrypt`";
    else if (e == HSMC_ERR_OBJECT_NOT_FOUND)
        hint = "the envelope names its key (kid): select the token that holds it (--token), "
               "or give --key LABEL";
    rc = cli_fail_hint(c, e, what, hint);
    return e == HSMC_ERR_FORMAT ? CLI_EXIT_DECRYPT : rc;
}

/* Non-streamed envelope in memory: decrypt, then write everything. */
static int decrypt_whole(cli_ctx_t *c, hsmc_cose_t *cc, cli_env_t type, const uint8_t *msg,
                         size_t len)
{
    hsmc_cose_info_t info;
    uint8_t *pt;
    size_t cap = 0, n = 0, bad = 0;
    hsmc_err_t e;
    cli_out_t out;
    data_kind_t kind;
    char ct[96], kid[72];
    int rc, binary;

    memset(&info, 0, sizeof(info));
    e = type == CLI_ENV_ENCRYPT0 ? hsmc_cose_decrypt0(cc, view(msg, len), aad_view(c), 0, NULL,
                                                      0, &cap, NULL)
                                 : hsmc_cose_decrypt(cc, view(msg, len), aad_view(c), 0, NULL, 0,
                                                     &cap, NULL);
    if (e != HSMC_OK && e != HSMC_ERR_BUFFER)
        return decrypt_fail(c, e, "cannot decrypt");
    pt = (uint8_t *)malloc(cap > 0 ? cap : 1);
    if (pt == NULL) {
        cli_err("out of memory (%lu bytes)", (unsigned long)cap);
        return CLI_EXIT_FAIL;
    }
    e = type == CLI_ENV_ENCRYPT0 ? hsmc_cose_decrypt0(cc, view(msg, len), aad_view(c), 0, pt,
                                                      cap, &n, &info)
                                 : hsmc_cose_decrypt(cc, view(msg, len), aad_view(c), 0, pt, cap,
                                                     &n, &info);
    if (e != HSMC_OK) {
        cli_free(pt, cap);
        return decrypt_fail(c, e, "cannot decrypt");
    }
    kind = kind_of(&info);
    if (c->verbose > 0)
        cli_note(c, "authenticated %lu bytes, kind %s (content type %s, key '%s')",
                 (unsigned long)n, kind_name(kind), content_type_text(&info, ct, sizeof(ct)),
                 kid_text(&info, kid, sizeof(kid)));
    rc = want_json(c, &info, kind);
    if (rc == CLI_EXIT_OK && cli_flag(c, "json") && !json_valid(pt, n, &bad)) {
        cli_err("--json: the plaintext is not well-formed JSON (at byte %lu); nothing written",
                (unsigned long)bad);
        rc = CLI_EXIT_FAIL;
    }
    if (rc != CLI_EXIT_OK) {
        cli_free(pt, cap);
        return rc;
    }
    /* Text and JSON may go to a terminal; bytes need --force there. The
     * content type is the sender's word (with an RSA recipient anyone can
     * send), so text that is not printable is treated as bytes. */
    binary = kind == KIND_BYTES || !cli_looks_like_text(pt, n);
    if (binary && kind != KIND_BYTES && c->verbose > 0)
        cli_note(c, "the %s is not printable UTF-8 text: treated as bytes", kind_name(kind));
    rc = cli_out_open(&out, cli_opt(c, "out"),
                      CLI_OUT_SECRET | (binary ? CLI_OUT_BINARY : 0u) |
                          (cli_flag(c, "force") ? CLI_OUT_FORCE : 0u));
    if (rc == CLI_EXIT_OK) {
        rc = cli_out_write(&out, pt, n);
        if (rc == CLI_EXIT_OK)
            rc = cli_out_commit(&out);
        else
            cli_out_abort(&out);
    }
    cli_free(pt, cap);
    return rc;
}

/* A stream: header from buf[0..len), then chunks from buf and the rest of f. */
static int decrypt_stream(cli_ctx_t *c, hsmc_cose_stream_t *st, unsigned char *buf, size_t len,
                          FILE *f, unsigned long long total)
{
    hsmc_cose_info_t info;
    unsigned char *in = NULL, *pt = NULL;
    size_t used = 0, cap, have, pt_cap, n = 0;
    unsigned long long done = 0;
    int last = 0, rc, tty_text;
    hsmc_err_t e;
    cli_progress_t pr;
    cli_out_t out;
    data_kind_t kind;
    char ct[96], kid[72];

    memset(&info, 0, sizeof(info));
    e = hsmc_cose_stream_open_init(st, buf, len, &used, aad_view(c), STREAM_CHUNK_MAX, 0, &info);
    if (e != HSMC_OK)
        return decrypt_fail(c, e, "cannot open the encrypted stream");
    /* The header (content type included) authenticates with the first
     * chunk: nothing is written before that one opened. */
    kind = kind_of(&info);
    if (c->verbose > 0)
        cli_note(c, "stream, kind %s (content type %s, key '%s', %lu-byte chunks)",
                 kind_name(kind), content_type_text(&info, ct, sizeof(ct)),
                 kid_text(&info, kid, sizeof(kid)), (unsigned long)info.chunk);
    rc = want_json(c, &info, kind);
    if (rc != CLI_EXIT_OK)
        return rc;
    /* Streamed text on a terminal is checked chunk by chunk before it is written. */
    tty_text = kind != KIND_BYTES && cli_opt(c, "out") == NULL && !cli_flag(c, "force") &&
               isatty(STDOUT_FILENO);
    cap = hsmc_cose_stream_item_max(st);
    pt_cap = info.chunk > 0 ? info.chunk : cap;
    in = (unsigned char *)malloc(cap);
    pt = (unsigned char *)malloc(pt_cap);
    if (in == NULL || pt == NULL) {
        free(in);
        free(pt);
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    have = len - used;
    if (have > cap) {
        /* More than one item already read: keep it (it fits as one buffer). */
        unsigned char *bigger = (unsigned char *)malloc(have);
        if (bigger == NULL) {
            free(in);
            free(pt);
            return CLI_EXIT_FAIL;
        }
        free(in);
        in = bigger;
        cap = have;
    }
    memcpy(in, buf + used, have);
    /* A bytes stream is refused on a terminal before any chunk is opened. */
    rc = cli_out_open(&out, cli_opt(c, "out"),
                      CLI_OUT_SECRET | (kind == KIND_BYTES ? CLI_OUT_BINARY : 0u) |
                          (cli_flag(c, "force") ? CLI_OUT_FORCE : 0u));
    if (rc != CLI_EXIT_OK) {
        free(in);
        cli_free(pt, pt_cap);
        return rc;
    }
    cli_progress_init(&pr, c, "decrypting", total);
    done = len - have;
    while (rc == CLI_EXIT_OK && !last) {
        size_t want = hsmc_cose_stream_item_max(st);
        if (want > cap)
            want = cap;
        while (have < want && f != NULL) {
            size_t got = fread(in + have, 1, want - have, f);
            have += got;
            if (got == 0) {
                if (ferror(f)) {
                    cli_err("cannot read the input: %s", strerror(errno));
                    rc = CLI_EXIT_FAIL;
                }
                f = NULL;
            }
        }
        if (rc != CLI_EXIT_OK)
            break;
        if (have == 0) {
            e = hsmc_cose_stream_open_finish(st); /* the input ended before the last chunk */
            rc = decrypt_fail(c, e != HSMC_OK ? e : HSMC_ERR_TRUNCATED, "cannot decrypt");
            break;
        }
        e = hsmc_cose_stream_open_chunk(st, in, have, &used, pt, pt_cap, &n, &last);
        if (e != HSMC_OK) {
            rc = decrypt_fail(c, e, "cannot decrypt");
            break;
        }
        if (tty_text && !printable_chunk(pt, n)) {
            cli_err("refusing to write binary output to a terminal: the %s stream holds "
                    "control characters",
                    kind_name(kind));
            if (!c->quiet)
                fputs("hsmc:   hint: give --out FILE, redirect stdout, or add --force\n", stderr);
            rc = CLI_EXIT_USAGE;
            break;
        }
        rc = cli_out_write(&out, pt, n);
        memmove(in, in + used, have - used);
        have -= used;
        done += used;
        cli_progress(&pr, done, last);
    }
    if (rc == CLI_EXIT_OK && (have > 0 || (f != NULL && fgetc(f) != EOF))) {
        cli_err("cannot decrypt: bytes follow the last chunk of the stream");
        rc = CLI_EXIT_DECRYPT;
    }
    if (rc == CLI_EXIT_OK) {
        e = hsmc_cose_stream_open_finish(st);
        if (e != HSMC_OK)
            rc = decrypt_fail(c, e, "cannot decrypt");
    }
    if (rc == CLI_EXIT_OK)
        rc = cli_out_commit(&out);
    else
        cli_out_abort(&out);
    if (rc != CLI_EXIT_OK && out.path == NULL && done > 0 && !c->quiet)
        fputs("hsmc:   note: chunks written to stdout before the failure did authenticate; "
              "the rest is missing (use --out for all or nothing)\n",
              stderr);
    free(in);
    cli_free(pt, pt_cap);
    return rc;
}

static int cmd_decrypt(cli_ctx_t *c)
{
    const char *in = cli_opt(c, "in"), *label = cli_opt(c, "key");
    unsigned char *buf = NULL;
    size_t len = 0, cap;
    unsigned long long total = 0;
    FILE *f;
    int is_stdin, rc;
    cli_env_t type;
    hsmc_key_t key;
    key_pick_t pick;

    if (in == NULL) {
        cli_err("give the envelope: --in FILE (- for stdin)");
        return CLI_EXIT_USAGE;
    }
    is_stdin = strcmp(in, "-") == 0;
    f = is_stdin ? stdin : fopen(in, "rb");
    if (f == NULL) {
        cli_err("--in: cannot open %s: %s", in, strerror(errno));
        return errno == ENOENT ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    {
        struct stat st;
        if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode))
            total = (unsigned long long)st.st_size;
    }
    cap = HEAD_READ;
    buf = (unsigned char *)malloc(cap);
    if (buf == NULL) {
        if (!is_stdin)
            fclose(f);
        return CLI_EXIT_FAIL;
    }
    len = fread(buf, 1, cap, f);
    if (ferror(f)) {
        cli_err("--in: cannot read %s: %s", in, strerror(errno));
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    type = cli_env_type(buf, len);
    if (type != CLI_ENV_STREAM && len == cap) {
        /* A whole message is needed in memory: read the rest. */
        unsigned char *rest = NULL;
        size_t rlen = 0;
        rc = cli_read_file(is_stdin ? "-" : in, CLI_MEM_MAX, "--in", &rest, &rlen);
        if (rc != CLI_EXIT_OK)
            goto done;
        if (!is_stdin) {
            /* cli_read_file read from the start again. */
            free(buf);
            buf = rest;
            len = rlen;
        } else {
            unsigned char *all = (unsigned char *)malloc(len + rlen + 1);
            if (all == NULL) {
                cli_free(rest, rlen);
                rc = CLI_EXIT_FAIL;
                goto done;
            }
            memcpy(all, buf, len);
            memcpy(all + len, rest, rlen);
            cli_free(rest, rlen);
            free(buf);
            buf = all;
            len += rlen;
        }
        type = cli_env_type(buf, len);
    }
    if (type == CLI_ENV_UNKNOWN && len > 0 && cli_looks_like_text(buf, len)) {
        /* --base64 output of `hsmc encrypt`. */
        unsigned char *bin = NULL;
        size_t blen = 0;
        if (cli_base64_decode(buf, len, &bin, &blen) == 0) {
            free(buf);
            buf = bin;
            len = blen;
            type = cli_env_type(buf, len);
        }
    }
    if (type == CLI_ENV_SIGN1) {
        cli_err("--in: %s is a COSE_Sign1 (a signature); check it with `hsmc verify --sig`", in);
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    if (type == CLI_ENV_UNKNOWN) {
        cli_err("cannot decrypt: %s is not an envelope from `hsmc encrypt` (COSE_Encrypt0, "
                "COSE_Encrypt or an hsmc stream)",
                in);
        if (!c->quiet)
            fputs("hsmc:   hint: the file may be damaged or cut short, or be something else\n",
                  stderr);
        rc = CLI_EXIT_DECRYPT;
        goto done;
    }
    rc = cli_open(c, 0);
    if (rc == CLI_EXIT_OK && label != NULL)
        rc = cli_key_open(c, label, &key, 0);
    if (rc != CLI_EXIT_OK)
        goto done;
    if (label != NULL && type != CLI_ENV_ENCRYPT0)
        pick_recipients(&pick, &key, buf, len);
    if (type == CLI_ENV_STREAM) {
        hsmc_cose_stream_t st;
        hsmc_cose_stream_init(&st, &c->h);
        if (label != NULL)
            hsmc_cose_set_resolver(&st.cose, resolve_pick, &pick);
        rc = decrypt_stream(c, &st, buf, len, len == cap ? f : NULL, total);
        hsmc_cose_stream_free(&st);
    } else {
        hsmc_cose_t cc;
        hsmc_cose_init(&cc, &c->h);
        if (label != NULL && type == CLI_ENV_ENCRYPT0)
            hsmc_cose_set_resolver(&cc, hsmc_cose_resolve_fixed, &key);
        else if (label != NULL)
            hsmc_cose_set_resolver(&cc, resolve_pick, &pick);
        rc = decrypt_whole(c, &cc, type, buf, len);
        hsmc_cose_free(&cc);
    }
done:
    if (!is_stdin)
        fclose(f);
    free(buf);
    return rc;
}

/* ---- the commands ---------------------------------------------------------------------------------- */

static const cli_cmd_t cose_cmds[] = {
    {"encrypt", "encrypt data into a COSE envelope with token keys",
     "(--key LABEL | --recipient LABEL...) (--message TEXT | --file FILE | --json FILE|TEXT) "
     "[OPTIONS]",
     "--key LABEL: a token AES key encrypts the data itself in the token (AES-GCM,\n"
     "COSE_Encrypt0). A base label with versions (BASE-v0001, ...) uses its latest\n"
     "version; the envelope names the exact version, so it still opens after a\n"
     "rotation.\n\n"
     "--recipient LABEL (repeatable): envelope encryption (COSE_Encrypt). A fresh\n"
     "content key encrypts the data (AES-256-GCM) and each recipient key wraps it\n"
     "in the token: AES keys with AES key wrap (A128KW/A192KW/A256KW by key size),\n"
     "RSA keys with RSA-OAEP. Any one recipient's key decrypts. Works on tokens\n"
     "without AES-GCM.\n\n"
     "Inputs larger than 8 MiB (or any with --stream) become a stream: a header\n"
     "and 64 KiB chunks, each authenticated and bound to its position, so memory\n"
     "use stays fixed and truncation or reordering is detected.\n\n"
     "--aad TEXT binds context (e.g. a device id) without storing it; decrypt\n"
     "must give the same. The output is binary: --out FILE (written atomically),\n"
     "stdout when it is not a terminal, or --base64 text.\n\n"
     "The envelope records the kind of data in its protected (authenticated)\n"
     "header, COSE content type: --message is \"text/plain; charset=utf-8\" (the\n"
     "text must be UTF-8), --json \"application/json\", --file\n"
     "\"application/octet-stream\". decrypt restores it.",
     "  hsmc encrypt --key data --message 'hello' --out hello.cose\n"
     "  hsmc encrypt --key data --json config.json --aad device-42 --out config.cose\n"
     "  hsmc encrypt --recipient backup-kek --recipient escrow-rsa --file db.tar --out "
     "db.tar.cose\n",
     encrypt_opts, CLI_PIN_REQUIRED, 0, cmd_encrypt},
    {"decrypt", "decrypt a COSE envelope (exit code 9 when it does not authenticate)",
     "--in FILE [--aad TEXT] [--out FILE] [--json] [OPTIONS]",
     "Opens what `hsmc encrypt` wrote (COSE_Encrypt0, COSE_Encrypt or a stream;\n"
     "binary or base64). The key is the one the envelope names (its kid, a token\n"
     "key label) unless --key is given; an envelope with several recipients opens\n"
     "with any one of their keys on the selected token.\n\n"
     "Nothing unauthenticated is written. With --out FILE the plaintext goes to a\n"
     "temporary file that is renamed to FILE only after all of it authenticated;\n"
     "on failure no FILE appears. On stdout a non-streamed envelope is written\n"
     "only after it authenticated; a stream is written chunk by chunk, each chunk\n"
     "after it authenticated, so a failure part-way leaves the authenticated\n"
     "beginning on stdout and exit code 9: use --out for all or nothing.\n\n"
     "The kind of data comes back from the envelope's content type: text and\n"
     "JSON are printed as text, also on a terminal (when printable); bytes, and\n"
     "envelopes without a content type, are not written to a terminal unless\n"
     "--force. --json insists on JSON (checked to be well-formed, except in\n"
     "streams): anything else is exit code 1 with nothing written. -v names the\n"
     "kind and content type on stderr.\n\n"
     "Exit code 9: wrong key or --aad, tampered, truncated or malformed input.",
     "  hsmc decrypt --in hello.cose\n"
     "  hsmc decrypt --in config.cose --aad device-42 --json --out config.json\n"
     "  hsmc decrypt --in db.tar.cose --out db.tar --token escrow\n",
     decrypt_opts, CLI_PIN_REQUIRED, 0, cmd_decrypt},
    /* cmd_rewrap.c */
    {"rewrap", "re-wrap an envelope's content key for new key-encryption keys (KEK rotation)",
     "--recipient LABEL... [--file FILE] [--out FILE | --in-place] [OPTIONS]\n"
     "       hsmc rewrap --list [--file FILE] [--json]",
     cli_rewrap_help, cli_rewrap_examples, cli_rewrap_opts, CLI_PIN_REQUIRED, 0, cli_rewrap},
    {NULL, NULL, NULL, NULL, NULL, NULL, CLI_PIN_NONE, 0, NULL}};

const cli_group_t cli_group_cose = {"Encryption", "encrypt, decrypt, rewrap", cose_cmds, 1};
