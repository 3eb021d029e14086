/*
 * The POSIX port, called directly: PIN sources (file, fd, env, terminal
 * through a pseudo-terminal), module loading (missing, not ELF, not
 * PKCS#11, SoftHSM2, the fault proxy through C_GetInterface), mutexes,
 * clocks and pid. Needs no token: SoftHSM2 is only loaded, not initialised.
 */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "hsmc_test.h"
#include "../../port/hsmc_port.h"
#include "fault/hsmc_fault.h"

#define SOFTHSM_DEFAULT "/usr/lib/softhsm/libsofthsm2.so"

static char tmpdir[64];

/* Write `len` bytes to tmpdir/name (path written to `path`); exits on failure. */
static const char *write_file(char *path, size_t cap, const char *name, const char *data,
                              size_t len)
{
    int fd;
    snprintf(path, cap, "%s/%s", tmpdir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(path);
        exit(2);
    }
    if (len > 0 && write(fd, data, len) != (ssize_t)len) {
        perror(path);
        exit(2);
    }
    close(fd);
    return path;
}

static int all_zero(const char *buf, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (buf[i] != 0) {
            return 0;
        }
    }
    return 1;
}

/* Read a PIN from a file holding `data`; checks the result is `want`. */
static void check_file_pin(const char *data, size_t len, const char *want)
{
    char path[128], buf[HSMC_MAX_PIN_LEN], detail[HSMC_DETAIL_LEN];
    size_t n = 99;
    write_file(path, sizeof path, "pin", data, len);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FILE, path, -1, buf, sizeof buf, &n, detail,
                                 sizeof detail),
              HSMC_OK);
    CHECK(n == strlen(want));
    CHECK(memcmp(buf, want, strlen(want)) == 0);
}

static void test_pin_file_line_endings(void)
{
    check_file_pin("1234\n", 5, "1234");
    check_file_pin("1234\r\n", 6, "1234");
    check_file_pin("1234", 4, "1234");
    check_file_pin("1234\nsecond line\n", 17, "1234");
    check_file_pin("12 34\r\nx", 8, "12 34");
    check_file_pin("ab\rcd\n", 6, "ab\rcd"); /* a '\r' inside the line is data */
}

static void test_pin_file_empty(void)
{
    char path[128], buf[16], detail[HSMC_DETAIL_LEN];
    size_t n = 99;
    write_file(path, sizeof path, "empty", "", 0);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FILE, path, -1, buf, sizeof buf, &n, detail,
                                 sizeof detail),
              HSMC_ERR_PIN_SOURCE);
    CHECK(n == 0);
    CHECK(strstr(detail, "is empty") != NULL);
    CHECK(strstr(detail, path) != NULL);

    write_file(path, sizeof path, "newline", "\r\n", 2);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FILE, path, -1, buf, sizeof buf, &n, detail,
                                 sizeof detail),
              HSMC_ERR_PIN_SOURCE);
    CHECK(strstr(detail, "is empty") != NULL);
}

static void test_pin_file_missing(void)
{
    char path[128], buf[16], detail[HSMC_DETAIL_LEN];
    size_t n = 99;
    snprintf(path, sizeof path, "%s/no-such-pin", tmpdir);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FILE, path, -1, buf, sizeof buf, &n, detail,
                                 sizeof detail),
              HSMC_ERR_PIN_SOURCE);
    CHECK(strstr(detail, path) != NULL);
    CHECK(strstr(detail, strerror(ENOENT)) != NULL);

    /* A directory opens but cannot be read. */
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FILE, tmpdir, -1, buf, sizeof buf, &n, detail,
                                 sizeof detail),
              HSMC_ERR_PIN_SOURCE);
    CHECK(strstr(detail, strerror(EISDIR)) != NULL);
}

static void test_pin_file_too_long(void)
{
    char path[128], buf[8], detail[HSMC_DETAIL_LEN];
    size_t n = 99;

    write_file(path, sizeof path, "long", "123456789\n", 10);
    memset(buf, 'x', sizeof buf);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FILE, path, -1, buf, sizeof buf, &n, detail,
                                 sizeof detail),
              HSMC_ERR_PIN_SOURCE);
    CHECK(strstr(detail, "longer than 8 bytes") != NULL);
    CHECK(strstr(detail, "1234") == NULL); /* never the PIN */
    CHECK(all_zero(buf, sizeof buf));      /* wiped on failure */
    CHECK(n == 0);

    /* Exactly cap bytes is fine, with either line ending. */
    write_file(path, sizeof path, "exact", "12345678\r\n", 10);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FILE, path, -1, buf, sizeof buf, &n, detail,
                                 sizeof detail),
              HSMC_OK);
    CHECK(n == 8 && memcmp(buf, "12345678", 8) == 0);
    write_file(path, sizeof path, "exact2", "12345678", 8);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FILE, path, -1, buf, sizeof buf, &n, detail,
                                 sizeof detail),
              HSMC_OK);
    CHECK(n == 8);
}

static void test_pin_fd(void)
{
    int p[2];
    char buf[16], rest[16], detail[HSMC_DETAIL_LEN];
    size_t n = 99;
    ssize_t r;

    REQUIRE(pipe(p) == 0);
    REQUIRE(write(p[1], "5678\nrest", 9) == 9);
    close(p[1]);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FD, NULL, p[0], buf, sizeof buf, &n, detail,
                                 sizeof detail),
              HSMC_OK);
    CHECK(n == 4 && memcmp(buf, "5678", 4) == 0);
    /* Nothing after the newline was consumed, and the fd is still open. */
    r = read(p[0], rest, sizeof rest);
    CHECK(r == 4 && memcmp(rest, "rest", 4) == 0);
    /* Now at end of file: an empty PIN. */
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FD, NULL, p[0], buf, sizeof buf, &n, detail,
                                 sizeof detail),
              HSMC_ERR_PIN_SOURCE);
    CHECK(strstr(detail, "is empty") != NULL);
    close(p[0]);

    /* A closed descriptor. */
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FD, NULL, p[0], buf, sizeof buf, &n, detail,
                                 sizeof detail),
              HSMC_ERR_PIN_SOURCE);
    CHECK(strstr(detail, strerror(EBADF)) != NULL);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FD, NULL, -1, buf, sizeof buf, &n, detail,
                                 sizeof detail),
              HSMC_ERR_ARG);
}

static void test_pin_env(void)
{
    char buf[16], detail[HSMC_DETAIL_LEN];
    size_t n = 99;

    setenv("HSMC_TEST_PORT_PIN", "4321", 1);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_ENV, "HSMC_TEST_PORT_PIN", -1, buf, sizeof buf, &n,
                                 detail, sizeof detail),
              HSMC_OK);
    CHECK(n == 4 && memcmp(buf, "4321", 4) == 0);

    setenv("HSMC_TEST_PORT_PIN", "4321\r\n", 1);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_ENV, "HSMC_TEST_PORT_PIN", -1, buf, sizeof buf, &n,
                                 detail, sizeof detail),
              HSMC_OK);
    CHECK(n == 4);

    setenv("HSMC_TEST_PORT_PIN", "", 1);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_ENV, "HSMC_TEST_PORT_PIN", -1, buf, sizeof buf, &n,
                                 detail, sizeof detail),
              HSMC_ERR_PIN_SOURCE);
    CHECK(strstr(detail, "HSMC_TEST_PORT_PIN is empty") != NULL);

    setenv("HSMC_TEST_PORT_PIN", "0123456789abcdefX", 1);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_ENV, "HSMC_TEST_PORT_PIN", -1, buf, sizeof buf, &n,
                                 detail, sizeof detail),
              HSMC_ERR_PIN_SOURCE);
    CHECK(strstr(detail, "longer than 16 bytes") != NULL);
    CHECK(strstr(detail, "0123") == NULL);

    unsetenv("HSMC_TEST_PORT_PIN");
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_ENV, "HSMC_TEST_PORT_PIN", -1, buf, sizeof buf, &n,
                                 detail, sizeof detail),
              HSMC_ERR_PIN_SOURCE);
    CHECK(strstr(detail, "HSMC_TEST_PORT_PIN") != NULL);
    CHECK(strstr(detail, "not set") != NULL);
}

static void test_pin_args(void)
{
    char buf[16], detail[HSMC_DETAIL_LEN];
    size_t n;
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FILE, "/x", -1, NULL, 16, &n, detail, sizeof detail),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FILE, "/x", -1, buf, 0, &n, detail, sizeof detail),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FILE, "/x", -1, buf, sizeof buf, NULL, detail,
                                 sizeof detail),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_FILE, NULL, -1, buf, sizeof buf, &n, detail,
                                 sizeof detail),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_ENV, "", -1, buf, sizeof buf, &n, detail,
                                 sizeof detail),
              HSMC_ERR_ARG);
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_CALLBACK, NULL, -1, buf, sizeof buf, &n, detail,
                                 sizeof detail),
              HSMC_ERR_ARG);
    /* No detail buffer is fine. */
    CHECK_ERR(hsmc_port_pin_read(HSMC_PIN_ENV, "HSMC_TEST_PORT_UNSET", -1, buf, sizeof buf, &n,
                                 NULL, 0),
              HSMC_ERR_PIN_SOURCE);
}

/* Without a controlling terminal the TTY source reports HSMC_ERR_PORT. */
static void test_pin_tty_none(void)
{
    pid_t pid = fork();
    int status = 0;
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char buf[16], detail[HSMC_DETAIL_LEN];
        size_t n;
        hsmc_err_t rc;
        (void)setsid(); /* drop any controlling terminal */
        rc = hsmc_port_pin_read(HSMC_PIN_TTY, NULL, -1, buf, sizeof buf, &n, detail,
                                sizeof detail);
        _exit(rc == HSMC_ERR_PORT && strstr(detail, "/dev/tty") != NULL ? 0 : 1);
    }
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Read from `fd` with a deadline until `want` appears (or the peer goes). */
static size_t read_until(int fd, char *out, size_t cap, const char *want, int ms)
{
    size_t n = 0;
    out[0] = '\0';
    while (n + 1 < cap && (want == NULL || strstr(out, want) == NULL)) {
        struct pollfd pf;
        ssize_t r;
        pf.fd = fd;
        pf.events = POLLIN;
        pf.revents = 0;
        if (poll(&pf, 1, ms) <= 0) {
            break;
        }
        r = read(fd, out + n, cap - 1 - n);
        if (r <= 0) {
            break;
        }
        n += (size_t)r;
        out[n] = '\0';
    }
    return n;
}

/*
 * The TTY source on a pseudo-terminal: the child makes the pty its
 * controlling terminal and reads the PIN; the parent answers the prompt.
 * Checks: the prompt is shown, the PIN is not echoed, echo is restored.
 */
static void test_pin_tty_pty(void)
{
    int master, status = 0;
    char *slave_name;
    char out[256];
    pid_t pid;

    master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 ||
        (slave_name = ptsname(master)) == NULL) {
        fprintf(stderr, "skip test_pin_tty_pty: no pseudo-terminals (%s)\n", strerror(errno));
        if (master >= 0) {
            close(master);
        }
        return;
    }
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char buf[16], detail[HSMC_DETAIL_LEN];
        size_t n = 0;
        struct termios t;
        int slave, ok;
        hsmc_err_t rc;
        alarm(10);
        close(master);
        if (setsid() < 0) {
            _exit(10);
        }
        slave = open(slave_name, O_RDWR); /* becomes the controlling terminal */
        if (slave < 0) {
            _exit(11);
        }
        rc = hsmc_port_pin_read(HSMC_PIN_TTY, "Token PIN: ", -1, buf, sizeof buf, &n,
                                detail, sizeof detail);
        if (rc != HSMC_OK) {
            fprintf(stderr, "tty read: %s %s\n", hsmc_err_name(rc), detail);
            _exit(12);
        }
        ok = n == 4 && memcmp(buf, "9876", 4) == 0;
        if (tcgetattr(slave, &t) != 0 || !(t.c_lflag & ECHO)) {
            _exit(13); /* echo not restored */
        }
        _exit(ok ? 0 : 14);
    }
    CHECK(read_until(master, out, sizeof out, "Token PIN: ", 5000) > 0);
    CHECK(strstr(out, "Token PIN: ") != NULL);
    CHECK(write(master, "9876\r", 5) == 5); /* a terminal's Enter; ICRNL maps it */
    (void)read_until(master, out, sizeof out, NULL, 500);
    CHECK(strstr(out, "9876") == NULL); /* not echoed */
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "tty child status %d\n", status);
    }
    close(master);
}

/* ---- Module loading ----------------------------------------------------- */

static const char *softhsm_path(void)
{
    const char *p = getenv("HSMC_TEST_MODULE");
    return (p != NULL && p[0] != '\0') ? p : SOFTHSM_DEFAULT;
}

static void test_module_missing(void)
{
    hsmc_port_module_t m;
    CK_FUNCTION_LIST_PTR fl = (CK_FUNCTION_LIST_PTR)&m;
    char detail[HSMC_DETAIL_LEN];
    char path[128];

    snprintf(path, sizeof path, "%s/no-such-module.so", tmpdir);
    CHECK_ERR(hsmc_port_module_load(&m, path, &fl, detail, sizeof detail),
              HSMC_ERR_MODULE_LOAD);
    CHECK(fl == NULL);
    CHECK(m.handle == NULL);
    CHECK(strstr(detail, "no-such-module.so") != NULL);
    CHECK(strstr(detail, "No such file") != NULL);

    /* A text file is not loadable either. */
    write_file(path, sizeof path, "text.so", "not a library\n", 14);
    CHECK_ERR(hsmc_port_module_load(&m, path, &fl, detail, sizeof detail),
              HSMC_ERR_MODULE_LOAD);
    CHECK(detail[0] != '\0');

    CHECK_ERR(hsmc_port_module_load(NULL, path, &fl, detail, sizeof detail), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_port_module_load(&m, NULL, &fl, detail, sizeof detail), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_port_module_load(&m, "", &fl, detail, sizeof detail), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_port_module_load(&m, path, NULL, detail, sizeof detail), HSMC_ERR_ARG);
    hsmc_port_module_unload(NULL); /* accepted */
}

static void test_module_not_pkcs11(void)
{
    static const char *const candidates[] = {
        "/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/aarch64-linux-gnu/libz.so.1", "/usr/lib/aarch64-linux-gnu/libz.so.1",
        "/usr/lib/libz.so.1", "/lib/libz.so.1"};
    const char *path = NULL;
    hsmc_port_module_t m;
    CK_FUNCTION_LIST_PTR fl;
    char detail[HSMC_DETAIL_LEN];
    size_t i;

    for (i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        if (access(candidates[i], R_OK) == 0) {
            path = candidates[i];
            break;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "skip test_module_not_pkcs11: no libz.so.1 found\n");
        return;
    }
    CHECK_ERR(hsmc_port_module_load(&m, path, &fl, detail, sizeof detail),
              HSMC_ERR_MODULE_INVALID);
    CHECK(strstr(detail, "not a PKCS#11 module: no C_GetFunctionList") != NULL);
    CHECK(m.handle == NULL);
    CHECK(fl == NULL);
}

static void test_module_softhsm(void)
{
    hsmc_port_module_t m;
    CK_FUNCTION_LIST_PTR fl = NULL;
    char detail[HSMC_DETAIL_LEN];
    const char *path = softhsm_path();

    if (access(path, R_OK) != 0) {
        fprintf(stderr, "skip test_module_softhsm: %s missing\n", path);
        return;
    }
    CHECK_ERR(hsmc_port_module_load(&m, path, &fl, detail, sizeof detail), HSMC_OK);
    REQUIRE(fl != NULL);
    CHECK(m.handle != NULL);
    CHECK(fl->version.major == 2);
    CHECK(fl->C_Initialize != NULL && fl->C_GetFunctionList != NULL);
    hsmc_port_module_unload(&m);
    CHECK(m.handle == NULL);
    hsmc_port_module_unload(&m); /* twice is harmless */
}

/* The fault proxy exports C_GetInterface: the port must use it. */
static void test_module_get_interface(void)
{
    const char *path = getenv("HSMC_TEST_FAULT_MODULE");
    hsmc_port_module_t m;
    CK_FUNCTION_LIST_PTR fl = NULL, direct = NULL;
    char detail[HSMC_DETAIL_LEN];
    hsmc_fault_api_t api;

    if (path == NULL || path[0] == '\0') {
        fprintf(stderr, "skip test_module_get_interface: HSMC_TEST_FAULT_MODULE not set\n");
        return;
    }
    REQUIRE(hsmc_fault_api_open(path, &api) == 0);
    api.clear();
    api.reset_counts();

    CHECK_ERR(hsmc_port_module_load(&m, path, &fl, detail, sizeof detail), HSMC_OK);
    REQUIRE(fl != NULL);
    CHECK(api.calls("C_GetInterface") == 1);
    CHECK(api.calls("C_GetFunctionList") == 0);
    CHECK(fl->version.major == 2);
    CHECK(fl->C_GetFunctionList(&direct) == CKR_OK && direct == fl);
    hsmc_port_module_unload(&m);

    /* C_GetInterface failing: the port falls back to C_GetFunctionList. */
    api.reset_counts();
    api.set("C_GetInterface", CKR_FUNCTION_FAILED, 0, 1);
    fl = NULL;
    CHECK_ERR(hsmc_port_module_load(&m, path, &fl, detail, sizeof detail), HSMC_OK);
    CHECK(fl != NULL);
    CHECK(api.calls("C_GetInterface") == 1);
    CHECK(api.calls("C_GetFunctionList") == 1);
    hsmc_port_module_unload(&m);

    /* Both entry points failing: not a usable module. */
    api.set("C_GetInterface", CKR_FUNCTION_FAILED, 0, 1);
    api.set("C_GetFunctionList", CKR_HOST_MEMORY, 0, 1);
    CHECK_ERR(hsmc_port_module_load(&m, path, &fl, detail, sizeof detail),
              HSMC_ERR_MODULE_INVALID);
    CHECK(strstr(detail, "C_GetFunctionList failed") != NULL);
    CHECK(strstr(detail, "0x2") != NULL); /* CKR_HOST_MEMORY */
    CHECK(fl == NULL && m.handle == NULL);
    api.clear();
}

/* ---- Mutexes, time, pid ------------------------------------------------- */

static hsmc_mutex_storage_t shared_mx;
static unsigned long shared_counter;

static void *bump(void *arg)
{
    int i;
    (void)arg;
    for (i = 0; i < 100000; i++) {
        hsmc_port_mutex_lock(&shared_mx);
        shared_counter++;
        hsmc_port_mutex_unlock(&shared_mx);
    }
    return NULL;
}

static void test_mutex(void)
{
    pthread_t t[4];
    int i;

    CHECK_ERR(hsmc_port_mutex_init(NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_port_mutex_init(&shared_mx), HSMC_OK);
    shared_counter = 0;
    for (i = 0; i < 4; i++) {
        REQUIRE(pthread_create(&t[i], NULL, bump, NULL) == 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(shared_counter == 400000ul);
    hsmc_port_mutex_destroy(&shared_mx);

    hsmc_port_global_lock();
    hsmc_port_global_unlock();
    hsmc_port_global_lock(); /* released: can be taken again */
    hsmc_port_global_unlock();
}

static void test_time(void)
{
    uint32_t a, b;
    int64_t now = hsmc_port_time();

    CHECK(now > 1600000000); /* after 2020 */
    a = hsmc_port_ms();
    hsmc_port_sleep_ms(30);
    b = hsmc_port_ms();
    CHECK((uint32_t)(b - a) >= 29 && (uint32_t)(b - a) < 2000);
    a = hsmc_port_ms();
    hsmc_port_sleep_ms(0); /* just yields */
    b = hsmc_port_ms();
    CHECK((uint32_t)(b - a) < 1000);
}

static void test_pid(void)
{
    pid_t pid;
    int status = 0;
    unsigned long parent = hsmc_port_pid();

    CHECK(parent == (unsigned long)getpid());
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        _exit(hsmc_port_pid() == (unsigned long)getpid() && hsmc_port_pid() != parent ? 0 : 1);
    }
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void remove_tmpdir(void)
{
    static const char *const names[] = {"pin", "empty", "newline", "long", "exact",
                                        "exact2", "text.so"};
    char path[128];
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/hsmc-port.XXXXXX",
             base != NULL && base[0] != '\0' && strlen(base) < 40 ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    RUN(test_pin_file_line_endings);
    RUN(test_pin_file_empty);
    RUN(test_pin_file_missing);
    RUN(test_pin_file_too_long);
    RUN(test_pin_fd);
    RUN(test_pin_env);
    RUN(test_pin_args);
    RUN(test_pin_tty_none);
    RUN(test_pin_tty_pty);
    RUN(test_module_missing);
    RUN(test_module_not_pkcs11);
    RUN(test_module_softhsm);
    RUN(test_module_get_interface);
    RUN(test_mutex);
    RUN(test_time);
    RUN(test_pid);
    remove_tmpdir();
    return TEST_END();
}
