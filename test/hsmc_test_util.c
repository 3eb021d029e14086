/*
 * Helpers the integration tests share (declared in hsmc_test.h): files in
 * the test directory, shell commands, hex text, test data, tokens, keys and
 * the fault proxy. Test code, so it may allocate; failures that leave a
 * test nothing to check exit(2), as the harness does for a missing
 * environment.
 */
#define _POSIX_C_SOURCE 200809L /* popen */
#include <stdarg.h>
#include <stdint.h>
#include <sys/wait.h>

#define HSMC_TEST_HELPERS_ONLY
#include "hsmc_test.h"
#include "fault/hsmc_fault.h"

const char *hsmc_test_path(const char *name)
{
    /* Rotating buffers: one call may build several paths (a command line). */
    static char buf[16][512];
    static int i;
    i = (i + 1) % 16;
    snprintf(buf[i], sizeof buf[i], "%s/%s", hsmc_test_env("HSMC_TEST_DIR"), name);
    return buf[i];
}

int hsmc_test_sh(const char *fmt, ...)
{
    char cmd[2048], full[2400];
    va_list ap;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "(%s) >%s 2>&1", cmd, hsmc_test_path("cmd.log"));
    st = system(full);
    if (st != 0) {
        char line[512];
        FILE *f = fopen(hsmc_test_path("cmd.log"), "r");
        fprintf(stderr, "command failed (%d): %s\n", st, cmd);
        while (f != NULL && fgets(line, sizeof line, f) != NULL)
            fprintf(stderr, "  | %s", line);
        if (f != NULL)
            fclose(f);
    }
    return st == 0;
}

int hsmc_test_system(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    st = system(cmd);
    return (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
}

int hsmc_test_cmd_line(const char *cmd, char *line, size_t cap)
{
    FILE *p;
    int ok = -1;

    line[0] = '\0';
    p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    if (fgets(line, (int)cap, p) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        ok = strncmp(line, "FAIL", 4) == 0 ? -1 : 0;
    }
    if (pclose(p) != 0)
        ok = -1;
    return ok;
}

int hsmc_test_file_has(const char *path, const char *text)
{
    static char buf[65536];
    FILE *f = fopen(path, "rb");
    size_t n;
    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

int hsmc_test_log_has(const char *text)
{
    return hsmc_test_file_has(hsmc_test_path("cmd.log"), text);
}

void hsmc_test_show_file(const char *path)
{
    char line[512];
    FILE *f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        fprintf(stderr, "  | %s", line);
    if (f != NULL)
        fclose(f);
}

int hsmc_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return 0;
    if (len > 0 && fwrite(data, 1, len, f) != len) {
        fclose(f);
        return 0;
    }
    return fclose(f) == 0;
}

void hsmc_test_write_bin(const char *name, const void *data, size_t len)
{
    if (!hsmc_test_write_file(hsmc_test_path(name), data, len)) {
        perror(name);
        exit(2);
    }
}

size_t hsmc_test_read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    if (f == NULL)
        return 0;
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

char *hsmc_test_hexs(const uint8_t *b, size_t n)
{
    static const char d[] = "0123456789abcdef";
    char *s = malloc(2 * n + 2);
    size_t i;
    if (s == NULL)
        exit(2);
    if (n == 0) {
        strcpy(s, "-"); /* an empty argument the Python helpers understand */
        return s;
    }
    for (i = 0; i < n; i++) {
        s[2 * i] = d[b[i] >> 4];
        s[2 * i + 1] = d[b[i] & 15];
    }
    s[2 * n] = '\0';
    return s;
}

size_t hsmc_test_unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    unsigned v;
    while (s[0] && s[1] && s[0] != '\n' && n < cap) {
        if (sscanf(s, "%2x", &v) != 1)
            break;
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

void hsmc_test_fill(uint8_t *b, size_t n, unsigned seed)
{
    size_t i;
    for (i = 0; i < n; i++)
        b[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 8) + (i >> 16));
}

void hsmc_test_open(hsmc_t *h, const char *label, const char *module)
{
    hsmc_cfg_t cfg;
    hsmc_err_t err;
    hsmc_test_cfg(&cfg, label);
    if (module != NULL)
        cfg.module_path = module;
    hsmc_init(h);
    err = hsmc_open(h, &cfg);
    if (err != HSMC_OK) {
        fprintf(stderr, "hsmc_open(%s): %s: %s\n", label, hsmc_err_name(err), hsmc_detail(h));
        exit(2);
    }
}

hsmc_key_spec_t hsmc_test_spec(hsmc_key_alg_t alg, unsigned usage)
{
    hsmc_key_spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.alg = alg;
    spec.usage = usage;
    return spec;
}

hsmc_err_t hsmc_test_gen(hsmc_t *h, const char *label, hsmc_key_alg_t alg, unsigned usage,
                         hsmc_key_t *key)
{
    hsmc_key_spec_t spec = hsmc_test_spec(alg, usage);
    hsmc_err_t err = hsmc_key_generate(h, label, &spec, key);
    /* A token without Ed25519 is expected; the caller decides. */
    if (err != HSMC_OK && !(alg == HSMC_ALG_ED25519 && err == HSMC_ERR_UNSUPPORTED))
        fprintf(stderr, "generate %s: %s: %s\n", label, hsmc_err_name(err), hsmc_detail(h));
    return err;
}

CK_RV hsmc_test_make_data_object(hsmc_t *h, const char *label, const uint8_t *id, size_t id_len)
{
    static uint8_t value[16];
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[6];
    CK_OBJECT_HANDLE o;
    hsmc_sess_t s;
    CK_RV rv;
    CK_ULONG n = 3;

    t[0].type = CKA_CLASS; t[0].pValue = &cls; t[0].ulValueLen = sizeof cls;
    t[1].type = CKA_TOKEN; t[1].pValue = &yes; t[1].ulValueLen = sizeof yes;
    t[2].type = CKA_LABEL; t[2].pValue = (void *)label; t[2].ulValueLen = strlen(label);
    if (id != NULL) {
        cls = CKO_SECRET_KEY;
        t[3].type = CKA_ID; t[3].pValue = (void *)id; t[3].ulValueLen = id_len;
        t[4].type = CKA_KEY_TYPE; t[4].pValue = &kt; t[4].ulValueLen = sizeof kt;
        t[5].type = CKA_VALUE; t[5].pValue = value; t[5].ulValueLen = sizeof value;
        n = 6;
    }
    memset(&s, 0, sizeof s);
    if (hsmc_session_begin(h, &s) != HSMC_OK)
        return CKR_GENERAL_ERROR;
    rv = hsmc_functions(h)->C_CreateObject(s.handle, t, n, &o);
    (void)hsmc_session_end(&s, rv, "C_CreateObject");
    return rv;
}

const char *hsmc_test_fault_load(hsmc_fault_api_t *api)
{
    const char *path = getenv("HSMC_TEST_FAULT_MODULE");
    if (path == NULL || path[0] == '\0' || hsmc_fault_api_open(path, api) != 0)
        return NULL;
    return path;
}
