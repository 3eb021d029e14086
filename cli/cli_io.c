/*
 * cli_io.c: files and terminals for the hsmc command: reading inputs whole,
 * writing outputs atomically (a temporary file renamed into place only
 * when everything was written, removed on failure or on a signal), PEM
 * armour, base64, wiping, confirmation prompts and the progress line.
 *
 * The CLI may allocate (the library may not): inputs are read into heap
 * buffers sized by the file, and wiped before they are freed because they
 * may hold key bytes or plaintext.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>

#include "cli.h"

/* ---- wiping ------------------------------------------------------------------ */

void cli_wipe(void *p, size_t len)
{
    if (p != NULL && len > 0)
        mbedtls_platform_zeroize(p, len);
}

void cli_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    cli_wipe(p, len);
    free(p);
}

/* ---- reading ----------------------------------------------------------------- */

int cli_read_file(const char *path, size_t max, const char *what, unsigned char **buf,
                  size_t *len)
{
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    unsigned char *b = NULL;
    size_t cap = 0, n = 0;

    *buf = NULL;
    *len = 0;
    if (f == NULL) {
        cli_err("%s: cannot open %s: %s", what, path, strerror(errno));
        return errno == ENOENT ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    /* No stdio buffer: it would keep a copy of key bytes that nobody wipes. */
    (void)setvbuf(f, NULL, _IONBF, 0);
    for (;;) {
        size_t got;
        if (n == cap) {
            size_t ncap = cap == 0 ? 65536 : cap * 2;
            unsigned char *nb;
            if (cap > max) {
                cli_err("%s: %s is larger than %lu bytes, the most hsmc reads here", what,
                        is_stdin ? "the input" : path, (unsigned long)max);
                cli_free(b, n);
                if (!is_stdin)
                    fclose(f);
                return CLI_EXIT_USAGE;
            }
            /* Not realloc: the old buffer may hold secrets and must be wiped. */
            nb = (unsigned char *)malloc(ncap + 1);
            if (nb == NULL) {
                cli_err("%s: out of memory reading %s", what, path);
                cli_free(b, n);
                if (!is_stdin)
                    fclose(f);
                return CLI_EXIT_FAIL;
            }
            if (n > 0)
                memcpy(nb, b, n);
            cli_free(b, n);
            b = nb;
            cap = ncap;
        }
        got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        cli_err("%s: cannot read %s: %s", what, is_stdin ? "stdin" : path, strerror(errno));
        cli_free(b, n);
        if (!is_stdin)
            fclose(f);
        return CLI_EXIT_FAIL;
    }
    if (!is_stdin)
        fclose(f);
    if (n > max) {
        cli_err("%s: %s is larger than %lu bytes, the most hsmc reads here", what,
                is_stdin ? "the input" : path, (unsigned long)max);
        cli_free(b, n);
        return CLI_EXIT_USAGE;
    }
    b[n] = 0; /* text inputs may be used as C strings */
    *buf = b;
    *len = n;
    return CLI_EXIT_OK;
}

/* ---- atomic output ---------------------------------------------------------- */

/* The temporary file of the output being written, removed if a signal ends us. */
static volatile sig_atomic_t g_have_tmp;
static char g_tmp_path[4096];

static void on_signal(int sig)
{
    if (g_have_tmp)
        (void)unlink(g_tmp_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_signals(void)
{
    static int done;
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    size_t i;
    if (done)
        return;
    done = 1;
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        (void)sigaction(sigs[i], &sa, NULL);
    }
}

int cli_out_open(cli_out_t *o, const char *path, unsigned flags)
{
    size_t plen;
    int fd;

    memset(o, 0, sizeof(*o));
    o->flags = flags;
    if (path == NULL || strcmp(path, "-") == 0) {
        if ((flags & CLI_OUT_BINARY) && !(flags & CLI_OUT_FORCE) && isatty(STDOUT_FILENO)) {
            cli_err("refusing to write binary output to a terminal");
            fputs("hsmc:   hint: give --out FILE, redirect stdout, or add --force\n", stderr);
            return CLI_EXIT_USAGE;
        }
        o->f = stdout;
        return CLI_EXIT_OK;
    }
    plen = strlen(path);
    if (plen + 16 > sizeof(g_tmp_path) || plen + 16 > sizeof(o->tmp)) {
        cli_err("--out: the path is too long");
        return CLI_EXIT_USAGE;
    }
    {
        /* A device, FIFO or socket (/dev/null, /dev/stdout, a pipe) is written
         * in place: renaming a temporary file over it would replace the node
         * itself. Only regular files get the temporary file + rename. */
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            cli_err("--out %s is a directory", path);
            return CLI_EXIT_USAGE;
        }
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
            o->f = fopen(path, "wb");
            if (o->f == NULL) {
                cli_err("cannot write %s: %s", path, strerror(errno));
                return CLI_EXIT_FAIL;
            }
            o->path = path;
            o->tmp[0] = '\0'; /* no temporary file: written in place */
            return CLI_EXIT_OK;
        }
    }
    /* Same directory, so rename() replaces the file in one step. */
    snprintf(o->tmp, sizeof(o->tmp), "%s.hsmc-XXXXXX", path);
    catch_signals();
    fd = mkstemp(o->tmp); /* mode 0600 */
    if (fd < 0) {
        cli_err("cannot create a temporary file next to %s: %s", path, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    memcpy(g_tmp_path, o->tmp, strlen(o->tmp) + 1);
    g_have_tmp = 1;
    if (!(flags & CLI_OUT_SECRET)) {
        mode_t um = umask(0);
        umask(um);
        (void)fchmod(fd, 0666 & ~um);
    }
    o->f = fdopen(fd, "wb");
    if (o->f == NULL) {
        cli_err("cannot write %s: %s", o->tmp, strerror(errno));
        close(fd);
        (void)unlink(o->tmp);
        g_have_tmp = 0;
        return CLI_EXIT_FAIL;
    }
    o->path = path;
    return CLI_EXIT_OK;
}

int cli_out_write(cli_out_t *o, const void *p, size_t n)
{
    if (o->failed)
        return CLI_EXIT_FAIL;
    if (n > 0 && fwrite(p, 1, n, o->f) != n) {
        cli_err("cannot write %s: %s", o->path != NULL ? o->path : "the output",
                strerror(errno));
        o->failed = 1;
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

int cli_out_commit(cli_out_t *o)
{
    int bad = o->failed;
    if (o->f == NULL)
        return CLI_EXIT_FAIL;
    if (o->path == NULL) {
        o->f = NULL;
        if (!bad && fflush(stdout) != 0) {
            cli_err("cannot write the output: %s", strerror(errno));
            return CLI_EXIT_FAIL;
        }
        return bad ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    if (o->tmp[0] == '\0') { /* device or FIFO written in place */
        if (fclose(o->f) != 0 && !bad) {
            cli_err("cannot write %s: %s", o->path, strerror(errno));
            bad = 1;
        }
        o->f = NULL;
        return bad ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    if (!bad && (fflush(o->f) != 0 || fsync(fileno(o->f)) != 0)) {
        cli_err("cannot write %s: %s", o->path, strerror(errno));
        bad = 1;
    }
    if (fclose(o->f) != 0 && !bad) {
        cli_err("cannot write %s: %s", o->path, strerror(errno));
        bad = 1;
    }
    o->f = NULL;
    if (!bad && rename(o->tmp, o->path) != 0) {
        cli_err("cannot rename %s to %s: %s", o->tmp, o->path, strerror(errno));
        bad = 1;
    }
    if (bad)
        (void)unlink(o->tmp);
    g_have_tmp = 0;
    return bad ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

void cli_out_abort(cli_out_t *o)
{
    if (o->f == NULL)
        return;
    if (o->path == NULL) {
        (void)fflush(stdout);
        o->f = NULL;
        return;
    }
    (void)fclose(o->f);
    o->f = NULL;
    if (o->tmp[0] != '\0') {
        (void)unlink(o->tmp);
        g_have_tmp = 0;
    }
}

/* ---- PEM and base64 ---------------------------------------------------------- */

int cli_base64_write(cli_out_t *o, const unsigned char *der, size_t len)
{
    size_t off, olen = 0;
    unsigned char line[80];
    /* 48 input bytes give one 64-character line. */
    for (off = 0; off < len; off += 48) {
        size_t n = len - off < 48 ? len - off : 48;
        if (mbedtls_base64_encode(line, sizeof(line), &olen, der + off, n) != 0)
            return CLI_EXIT_FAIL;
        line[olen++] = '\n';
        if (cli_out_write(o, line, olen) != CLI_EXIT_OK)
            return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

int cli_pem_write(cli_out_t *o, const char *label, const unsigned char *der, size_t len)
{
    char head[64];
    int n = snprintf(head, sizeof(head), "-----BEGIN %s-----\n", label);
    if (n < 0 || (size_t)n >= sizeof(head) || cli_out_write(o, head, (size_t)n) != CLI_EXIT_OK ||
        cli_base64_write(o, der, len) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    n = snprintf(head, sizeof(head), "-----END %s-----\n", label);
    if (n < 0 || (size_t)n >= sizeof(head))
        return CLI_EXIT_FAIL;
    return cli_out_write(o, head, (size_t)n);
}

/* Remove whitespace from base64 text in place; @return the new length. */
static size_t squeeze_space(unsigned char *s, size_t len)
{
    size_t i, k = 0;
    for (i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            s[k++] = s[i];
    return k;
}

int cli_base64_decode(const unsigned char *text, size_t len, unsigned char **out, size_t *olen)
{
    unsigned char *tmp, *b;
    size_t n, need = 0;
    *out = NULL;
    *olen = 0;
    tmp = (unsigned char *)malloc(len + 1);
    if (tmp == NULL)
        return -1;
    memcpy(tmp, text, len);
    n = squeeze_space(tmp, len);
    b = (unsigned char *)malloc(n / 4 * 3 + 4);
    if (b == NULL || n == 0 ||
        mbedtls_base64_decode(b, n / 4 * 3 + 3, &need, tmp, n) != 0) {
        cli_free(tmp, len);
        cli_free(b, n / 4 * 3 + 4);
        return -1;
    }
    cli_free(tmp, len);
    *out = b;
    *olen = need;
    return 0;
}

/* Find s (NUL-terminated) in buf[0..len). */
static const unsigned char *find_bytes(const unsigned char *buf, size_t len, const char *s)
{
    size_t n = strlen(s), i;
    for (i = 0; n <= len && i <= len - n; i++)
        if (memcmp(buf + i, s, n) == 0)
            return buf + i;
    return NULL;
}

int cli_pem_find(const unsigned char *buf, size_t len, const char *const *labels,
                 unsigned char **der, size_t *der_len, char *label, size_t label_cap)
{
    const unsigned char *p = buf, *end = buf + len;
    *der = NULL;
    *der_len = 0;
    if (label_cap > 0)
        label[0] = '\0';
    if (find_bytes(buf, len, "-----BEGIN ") == NULL)
        return 1;
    while ((p = find_bytes(p, (size_t)(end - p), "-----BEGIN ")) != NULL) {
        const unsigned char *l = p + 11, *le, *body, *stop;
        char name[64], endmark[80];
        size_t k, nl;
        le = find_bytes(l, (size_t)(end - l), "-----");
        if (le == NULL || (size_t)(le - l) >= sizeof(name))
            return -1;
        nl = (size_t)(le - l);
        memcpy(name, l, nl);
        name[nl] = '\0';
        body = le + 5;
        snprintf(endmark, sizeof(endmark), "-----END %s-----", name);
        stop = find_bytes(body, (size_t)(end - body), endmark);
        if (stop == NULL)
            return -1;
        for (k = 0; labels[k] != NULL; k++)
            if (strcmp(labels[k], name) == 0)
                break;
        if (label_cap > 0)
            snprintf(label, label_cap, "%s", name);
        if (labels[k] != NULL) {
            /* Encrypted legacy PEM carries headers ("Proc-Type: 4,ENCRYPTED"). */
            if (find_bytes(body, (size_t)(stop - body), ":") != NULL)
                return -2;
            return cli_base64_decode(body, (size_t)(stop - body), der, der_len) == 0 ? 0 : -1;
        }
        p = stop + strlen(endmark);
    }
    return -3; /* PEM, but none of the wanted labels; label holds the last one seen */
}

/* ---- terminals ----------------------------------------------------------------- */

int cli_confirm(const char *question)
{
    char line[16];
    FILE *tty = fopen("/dev/tty", "r+");
    int yes;
    if (tty == NULL)
        return 0;
    fprintf(tty, "%s [y/N] ", question);
    fflush(tty);
    yes = fgets(line, sizeof(line), tty) != NULL && (line[0] == 'y' || line[0] == 'Y');
    fclose(tty);
    return yes;
}

void cli_progress(cli_progress_t *p, unsigned long long done, int final)
{
    long long now;
    if (!p->enabled)
        return;
    now = (long long)time(NULL);
    if (!final && now == p->last)
        return;
    p->last = now;
    if (p->total > 0)
        fprintf(stderr, "\rhsmc: %s %llu of %llu MiB (%u%%)%s", p->what, done >> 20,
                p->total >> 20, (unsigned)(done * 100 / p->total), final ? "\n" : "");
    else
        fprintf(stderr, "\rhsmc: %s %llu MiB%s", p->what, done >> 20, final ? "\n" : "");
    fflush(stderr);
}

void cli_progress_init(cli_progress_t *p, const cli_ctx_t *c, const char *what,
                       unsigned long long total)
{
    memset(p, 0, sizeof(*p));
    p->what = what;
    p->total = total;
    p->enabled = !c->quiet && isatty(STDERR_FILENO);
}
