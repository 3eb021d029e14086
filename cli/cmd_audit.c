/*
 * cmd_audit.c: `hsmc audit verify FILE`: check a whole audit trail (a CBOR
 * sequence of COSE_Sign1 records chained by hash, docs/FORMATS.md) and name
 * the first broken record. The file is streamed through a window of
 * HSMC_AUDIT_RECORD_MAX bytes, so its size does not matter.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hsmc/audit.h"

static const cli_opt_t verify_opts[] = {
    {"pubkey", 0, "FILE", "the audit public key: SubjectPublicKeyInfo, PEM or DER (no token needed)"},
    {"key", 0, "LABEL", "the audit key in the token (verified by the token)"},
    {"json", 0, NULL, "print one JSON document on stdout instead of text"},
    {NULL, 0, NULL, NULL}};

/*
 * Read the SPKI file `path` (PEM PUBLIC KEY or DER) into a heap buffer.
 * @return CLI_EXIT_OK or an exit code (printed).
 */
static int load_spki(const char *path, unsigned char **der, size_t *len)
{
    static const char *const labels[] = {"PUBLIC KEY", NULL};
    unsigned char *buf = NULL;
    size_t n = 0;
    char label[64];
    int rc = cli_read_file(path, 64 * 1024, "--pubkey", &buf, &n);
    if (rc != CLI_EXIT_OK)
        return rc;
    switch (cli_pem_find(buf, n, labels, der, len, label, sizeof(label))) {
    case 0:
        cli_free(buf, n + 1);
        return CLI_EXIT_OK;
    case 1: /* DER: keep the buffer */
        *der = buf;
        *len = n;
        return CLI_EXIT_OK;
    default:
        cli_free(buf, n + 1);
        cli_err("--pubkey %s: no PEM PUBLIC KEY block (or a damaged one); give the "
                "SubjectPublicKeyInfo in PEM or DER (`hsmc key export-pub LABEL` writes it)",
                path);
        return CLI_EXIT_USAGE;
    }
}

int cli_audit_verify_file(FILE *f, hsmc_audit_verify_t *v, hsmc_err_t *err, int *io_err,
                          void (*on_rec)(void *user, const hsmc_audit_record_t *rec),
                          void *user)
{
    hsmc_audit_record_t rec;
    static uint8_t buf[HSMC_AUDIT_RECORD_MAX];
    size_t have = 0;
    int eof = 0;
    *io_err = 0;
    for (;;) {
        size_t used = 0;
        hsmc_err_t r;
        /* Keep the window full so a record is never cut by the buffer. */
        while (!eof && have < sizeof(buf)) {
            size_t got = fread(buf + have, 1, sizeof(buf) - have, f);
            have += got;
            if (got == 0) {
                if (ferror(f)) {
                    *io_err = errno != 0 ? errno : EIO;
                    return -1;
                }
                eof = 1;
            }
        }
        if (have == 0)
            break;
        r = hsmc_audit_verify_next(v, buf, have, &used, on_rec != NULL ? &rec : NULL);
        if (r != HSMC_OK) {
            *err = r;
            /* A broken record ends the walk; a non-sticky error (token) too. */
            return v->err != HSMC_OK ? 0 : -2;
        }
        if (on_rec != NULL)
            on_rec(user, &rec);
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    *err = hsmc_audit_verify_finish(v);
    return 0;
}

static int run_verify(cli_ctx_t *c)
{
    const char *pubkey = cli_opt(c, "pubkey"), *label = cli_opt(c, "key");
    const char *path;
    unsigned char *spki = NULL;
    size_t spki_len = 0;
    hsmc_audit_verify_t v;
    hsmc_key_t key;
    hsmc_err_t err = HSMC_OK;
    FILE *f;
    int rc, io_err = 0, walk;
    char hex[2 * HSMC_AUDIT_HASH_LEN + 1];

    if (c->npos != 1) {
        cli_err("audit verify: give the audit file (hsmc audit verify FILE --pubkey SPKI)");
        return CLI_EXIT_USAGE;
    }
    if ((pubkey == NULL) == (label == NULL)) {
        cli_err("audit verify: give exactly one of --pubkey FILE and --key LABEL");
        return CLI_EXIT_USAGE;
    }
    path = c->pos[0];
    f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        cli_err("cannot open audit file %s: %s", path, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    memset(&key, 0, sizeof(key));
    if (pubkey != NULL) {
        rc = load_spki(pubkey, &spki, &spki_len);
        if (rc != CLI_EXIT_OK)
            goto out_file;
        hsmc_view_t sv;
        sv.ptr = spki;
        sv.len = spki_len;
        hsmc_audit_verify_init_spki(&v, &c->h, sv);
    } else {
        rc = cli_open(c, 0);
        if (rc == CLI_EXIT_OK)
            rc = cli_key_open(c, label, &key, 0);
        if (rc != CLI_EXIT_OK)
            goto out_file;
        hsmc_audit_verify_init_key(&v, &c->h, &key);
    }

    walk = cli_audit_verify_file(f, &v, &err, &io_err, NULL, NULL);
    if (walk == -1) {
        cli_err("cannot read audit file %s: %s", path, strerror(io_err));
        rc = CLI_EXIT_FAIL;
    } else if (walk == -2) {
        char what[160];
        snprintf(what, sizeof(what), "audit verify: record %llu could not be checked",
                 (unsigned long long)v.count);
        rc = cli_fail(c, err, what);
    } else if (err != HSMC_OK) {
        const char *d = hsmc_detail(&c->h);
        if (cli_flag(c, "json")) {
            cli_json_t j;
            cli_json_init(&j, stdout);
            cli_json_obj(&j, NULL);
            cli_json_bool(&j, "ok", 0);
            cli_json_num(&j, "record", (unsigned long)v.count);
            cli_json_num(&j, "offset", (unsigned long)v.offset);
            cli_json_str(&j, "fault", hsmc_audit_fault_name(v.fault));
            cli_json_str(&j, "error", hsmc_err_name(err));
            cli_json_str(&j, "detail", d);
            cli_json_end(&j);
        }
        fprintf(stderr, "hsmc: audit verify: %s: record %llu at byte %llu: %s\n", path,
                (unsigned long long)v.count, (unsigned long long)v.offset,
                hsmc_audit_fault_name(v.fault));
        if (hsmc_last_err(&c->h) == err && d[0] != '\0') {
            fputs("hsmc:   detail: ", stderr);
            cli_put_safe(stderr, d, strlen(d));
            fputc('\n', stderr);
        }
        if (!c->quiet)
            fprintf(stderr, "hsmc:   hint: %llu record(s) before it are intact; %s\n",
                    (unsigned long long)v.count,
                    v.fault == HSMC_AUDIT_FAULT_TRUNCATED
                        ? "the file ends inside this record (an interrupted write?); keep a "
                          "copy and investigate before anything is appended"
                        : "the trail was altered, reordered, cut or signed by another key "
                          "from this record on; keep the file as evidence");
        rc = CLI_EXIT_AUDIT;
    } else {
        cli_hex(hex, sizeof(hex), v.prev, sizeof(v.prev));
        if (cli_flag(c, "json")) {
            cli_json_t j;
            cli_json_init(&j, stdout);
            cli_json_obj(&j, NULL);
            cli_json_bool(&j, "ok", 1);
            cli_json_num(&j, "records", (unsigned long)v.count);
            cli_json_num(&j, "next_seq", (unsigned long)v.next_seq);
            cli_json_str(&j, "last_hash", hex);
            cli_json_end(&j);
        } else {
            printf("audit trail %s: ok\n", path);
            printf("  records:   %llu\n", (unsigned long long)v.count);
            printf("  next seq:  %llu\n", (unsigned long long)v.next_seq);
            printf("  last hash: %s\n", hex);
        }
        rc = CLI_EXIT_OK;
    }
    hsmc_audit_verify_free(&v);
out_file:
    if (f != stdin)
        fclose(f);
    cli_free(spki, spki_len);
    return rc;
}

static const cli_cmd_t audit_cmds[] = {
    {"verify", "check a whole audit trail and name the first broken record",
     "FILE (--pubkey SPKI | --key LABEL) [OPTIONS]",
     "Checks every record of the audit file FILE (\"-\": stdin): its COSE_Sign1\n"
     "signature with the audit key, its format, and the chain (each record holds\n"
     "the SHA-256 of the one before and the next sequence number). On success it\n"
     "prints the record count, the next sequence number and the hash of the last\n"
     "record. The first broken record is named by index and byte offset with the\n"
     "reason (malformed, truncated, bad signature, kid altered, prev mismatch,\n"
     "seq gap); the exit code is then 12. An empty file is an empty, valid trail.\n"
     "--pubkey needs no token; --key LABEL uses the audit key in the token.",
     "hsmc audit verify audit.log --pubkey audit.spki.pem\n"
     "hsmc audit verify audit.log --token station --key audit",
     verify_opts, CLI_PIN_OPTIONAL, 1, run_verify},
    {NULL, NULL, NULL, NULL, NULL, NULL, CLI_PIN_NONE, 0, NULL}};

const cli_group_t cli_group_audit = {"audit", "Verify the signed audit trail of CA and provisioning runs.",
                                     audit_cmds, 0};
