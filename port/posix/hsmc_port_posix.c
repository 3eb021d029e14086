/*
 * hsmc port for POSIX systems (Linux, BSD, macOS): dlopen'ed vendor
 * modules, pthread mutexes, POSIX clocks, PIN input from files, file
 * descriptors, environment variables and the controlling terminal.
 *
 * No stdio and no allocation: messages are assembled by hand into the
 * caller's detail buffer, PINs go straight into the caller's buffer.
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "hsmc_port.h"

/* A pthread mutex lives inside hsmc_mutex_storage_t: it must fit and be
 * aligned no stricter than the storage union (C99 has no static_assert). */
typedef char hsmc_posix_mutex_fits[(sizeof(pthread_mutex_t) <= HSMC_PORT_MUTEX_BYTES) ? 1 : -1];
struct hsmc_posix_align_probe {
    char c;
    pthread_mutex_t m;
};
struct hsmc_posix_storage_probe {
    char c;
    hsmc_mutex_storage_t s;
};
typedef char hsmc_posix_mutex_aligned[(offsetof(struct hsmc_posix_align_probe, m) <=
                                       offsetof(struct hsmc_posix_storage_probe, s))
                                          ? 1
                                          : -1];

/* ---- PKCS#11 3.0 interface discovery ------------------------------------ */

/* p11-kit 0.24 ships the 2.40 header, which lacks these 3.0 types; this is
 * the layout the 3.0 specification fixes for CK_INTERFACE. */
typedef struct hsmc_ck_interface {
    CK_UTF8CHAR_PTR pInterfaceName;
    CK_VOID_PTR pFunctionList;
    CK_FLAGS flags;
} hsmc_ck_interface_t;

typedef CK_RV (*hsmc_get_interface_fn)(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version,
                                       hsmc_ck_interface_t **iface, CK_FLAGS flags);
typedef CK_RV (*hsmc_get_function_list_fn)(CK_FUNCTION_LIST_PTR_PTR list);

/* ---- Detail text, without stdio ----------------------------------------- */

/* Append NUL-terminated `s` at *pos in d[cap], truncating; d stays terminated. */
static void det_add(char *d, size_t cap, size_t *pos, const char *s)
{
    if (d == NULL || cap == 0 || s == NULL) {
        return;
    }
    while (*s != '\0' && *pos + 1 < cap) {
        d[(*pos)++] = *s++;
    }
    d[*pos < cap ? *pos : cap - 1] = '\0';
}

/* d = a b c e (NULL parts skipped). */
static void det_set(char *d, size_t cap, const char *a, const char *b, const char *c,
                    const char *e)
{
    size_t pos = 0;
    if (d == NULL || cap == 0) {
        return;
    }
    d[0] = '\0';
    det_add(d, cap, &pos, a);
    det_add(d, cap, &pos, b);
    det_add(d, cap, &pos, c);
    det_add(d, cap, &pos, e);
}

/* Unsigned value as text in `base` (10 or 16, with "0x"); out holds 24 bytes. */
static const char *num_text(char out[24], unsigned long v, unsigned base)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[24];
    size_t n = 0, o = 0;
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v != 0 && n < sizeof tmp);
    if (base == 16) {
        out[o++] = '0';
        out[o++] = 'x';
    }
    while (n > 0 && o + 1 < 24) {
        out[o++] = tmp[--n];
    }
    out[o] = '\0';
    return out;
}

/* d = a b ": " <strerror(err)> e. strerror_r (the XSI variant, selected by
 * _POSIX_C_SOURCE) writes straight into the detail buffer: thread-safe,
 * and no scratch buffer on the stack. */
static void det_errno(char *d, size_t cap, const char *a, const char *b, int err,
                      const char *e)
{
    size_t pos = 0;
    char num[24];
    if (d == NULL || cap == 0) {
        return;
    }
    d[0] = '\0';
    det_add(d, cap, &pos, a);
    det_add(d, cap, &pos, b);
    det_add(d, cap, &pos, ": ");
    if (pos + 1 < cap && strerror_r(err, d + pos, cap - pos) == 0) {
        d[cap - 1] = '\0';
        pos += strlen(d + pos);
    } else {
        d[pos] = '\0';
        det_add(d, cap, &pos, "error ");
        det_add(d, cap, &pos, num_text(num, (unsigned long)err, 10));
    }
    det_add(d, cap, &pos, e);
}

/* Wipe through a volatile pointer so the stores are not optimised away. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n-- > 0) {
        *v++ = 0;
    }
}

/* ---- Module binding ----------------------------------------------------- */

/* Look up `name` in a module; memcpy because ISO C has no cast from an
 * object pointer to a function pointer. Returns 0 when absent. */
static int module_sym(void *handle, const char *name, void *fn, size_t fn_size)
{
    void *sym = dlsym(handle, name);
    if (sym == NULL || fn_size != sizeof sym) {
        return 0;
    }
    memcpy(fn, &sym, fn_size);
    return 1;
}

/*
 * Contract: see hsmc_port.h. Prefers C_GetInterface("PKCS 11") and falls
 * back to C_GetFunctionList when the module lacks it or it fails (a 3.0
 * list starts with the 2.40 layout, which is all hsmc uses).
 */
hsmc_err_t hsmc_port_module_load(hsmc_port_module_t *m, const char *path,
                                 CK_FUNCTION_LIST_PTR *fl, char *detail, size_t cap)
{
    void *h;
    hsmc_get_interface_fn get_interface;
    hsmc_get_function_list_fn get_list;
    CK_FUNCTION_LIST_PTR list = NULL;
    CK_RV gi_rv = CKR_OK, gl_rv = CKR_OK;
    int has_gi, has_gl;
    char num[24];

    if (m == NULL || path == NULL || path[0] == '\0' || fl == NULL) {
        det_set(detail, cap, "module load: no module path given", NULL, NULL, NULL);
        return HSMC_ERR_ARG;
    }
    m->handle = NULL;
    *fl = NULL;

    (void)dlerror(); /* clear a stale message */
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        det_set(detail, cap, "cannot load module: ", why != NULL ? why : path, NULL, NULL);
        return HSMC_ERR_MODULE_LOAD;
    }

    has_gi = module_sym(h, "C_GetInterface", &get_interface, sizeof get_interface);
    if (has_gi) {
        hsmc_ck_interface_t *iface = NULL;
        static CK_UTF8CHAR name[] = "PKCS 11";
        gi_rv = get_interface(name, NULL, &iface, 0);
        if (gi_rv == CKR_OK && iface != NULL && iface->pFunctionList != NULL) {
            list = (CK_FUNCTION_LIST_PTR)iface->pFunctionList;
        }
    }
    has_gl = 0;
    if (list == NULL) {
        has_gl = module_sym(h, "C_GetFunctionList", &get_list, sizeof get_list);
        if (has_gl) {
            gl_rv = get_list(&list);
            if (gl_rv != CKR_OK) {
                list = NULL;
            }
        }
    }

    if (list == NULL) {
        if (!has_gi && !has_gl) {
            det_set(detail, cap, "not a PKCS#11 module: no C_GetFunctionList in ", path,
                    NULL, NULL);
        } else if (has_gl && gl_rv != CKR_OK) {
            det_set(detail, cap, "C_GetFunctionList failed: CK_RV ",
                    num_text(num, gl_rv, 16), NULL, NULL);
        } else if (has_gl) {
            det_set(detail, cap, "C_GetFunctionList returned no function list", NULL, NULL,
                    NULL);
        } else if (gi_rv != CKR_OK) {
            det_set(detail, cap, "C_GetInterface(\"PKCS 11\") failed: CK_RV ",
                    num_text(num, gi_rv, 16), " (and no C_GetFunctionList)", NULL);
        } else {
            det_set(detail, cap, "C_GetInterface(\"PKCS 11\") returned no function list",
                    NULL, NULL, NULL);
        }
        dlclose(h);
        return HSMC_ERR_MODULE_INVALID;
    }

    m->handle = h;
    *fl = list;
    return HSMC_OK;
}

/* Contract: see hsmc_port.h. */
void hsmc_port_module_unload(hsmc_port_module_t *m)
{
    if (m == NULL || m->handle == NULL) {
        return;
    }
    dlclose(m->handle);
    m->handle = NULL;
}

/* ---- Mutexes ------------------------------------------------------------ */

static pthread_mutex_t *posix_mutex(hsmc_mutex_storage_t *mx)
{
    return (pthread_mutex_t *)(void *)mx->u.b;
}

/* Contract: see hsmc_port.h. A default (non-recursive) mutex. */
hsmc_err_t hsmc_port_mutex_init(hsmc_mutex_storage_t *mx)
{
    if (mx == NULL) {
        return HSMC_ERR_ARG;
    }
    return pthread_mutex_init(posix_mutex(mx), NULL) == 0 ? HSMC_OK : HSMC_ERR_PORT;
}

void hsmc_port_mutex_lock(hsmc_mutex_storage_t *mx)
{
    if (mx != NULL) {
        (void)pthread_mutex_lock(posix_mutex(mx));
    }
}

void hsmc_port_mutex_unlock(hsmc_mutex_storage_t *mx)
{
    if (mx != NULL) {
        (void)pthread_mutex_unlock(posix_mutex(mx));
    }
}

void hsmc_port_mutex_destroy(hsmc_mutex_storage_t *mx)
{
    if (mx != NULL) {
        (void)pthread_mutex_destroy(posix_mutex(mx));
    }
}

static pthread_mutex_t hsmc_posix_global = PTHREAD_MUTEX_INITIALIZER;

void hsmc_port_global_lock(void)
{
    (void)pthread_mutex_lock(&hsmc_posix_global);
}

void hsmc_port_global_unlock(void)
{
    (void)pthread_mutex_unlock(&hsmc_posix_global);
}

/* ---- Time and process ---------------------------------------------------- */

int64_t hsmc_port_time(void)
{
    time_t t = time(NULL);
    return t == (time_t)-1 ? -1 : (int64_t)t;
}

uint32_t hsmc_port_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0;
    }
    /* Unsigned arithmetic: wraps every ~49.7 days, as documented. */
    return (uint32_t)((uint32_t)ts.tv_sec * 1000u + (uint32_t)(ts.tv_nsec / 1000000L));
}

void hsmc_port_sleep_ms(uint32_t ms)
{
    struct timespec req, rem;
    if (ms == 0) {
        (void)sched_yield();
        return;
    }
    req.tv_sec = (time_t)(ms / 1000u);
    req.tv_nsec = (long)(ms % 1000u) * 1000000L;
    while (nanosleep(&req, &rem) != 0 && errno == EINTR) {
        req = rem;
    }
}

/* The pid is asked before every operation (fork detection), so it is cached:
 * getpid() is a system call. A forked child clears the cache in its
 * pthread_atfork handler before any of its code runs; if the handler
 * cannot be registered, nothing is cached. */
static volatile unsigned long hsmc_pid_cache;
static volatile int hsmc_pid_cacheable;
static pthread_once_t hsmc_pid_once = PTHREAD_ONCE_INIT;

static void hsmc_pid_forget(void)
{
    hsmc_pid_cache = 0;
}

static void hsmc_pid_register(void)
{
    hsmc_pid_cacheable = pthread_atfork(NULL, NULL, hsmc_pid_forget) == 0;
}

unsigned long hsmc_port_pid(void)
{
    unsigned long pid = hsmc_pid_cache;

    if (pid != 0)
        return pid;
    (void)pthread_once(&hsmc_pid_once, hsmc_pid_register);
    pid = (unsigned long)getpid();
    if (hsmc_pid_cacheable)
        hsmc_pid_cache = pid;
    return pid;
}

/* ---- PIN input ----------------------------------------------------------- */

/* Collects the first line of a byte stream into the caller's buffer. A
 * '\r' is held back until we know whether "\n" follows it. */
typedef struct hsmc_line {
    char *buf;
    size_t cap;
    size_t n;
    int cr;       /* a '\r' is pending */
    int overflow; /* more than cap bytes */
} hsmc_line_t;

static void line_store(hsmc_line_t *l, char c)
{
    if (l->n >= l->cap) {
        l->overflow = 1;
        return;
    }
    l->buf[l->n++] = c;
}

/* Feed one byte; returns 1 when the line is complete (or too long). */
static int line_put(hsmc_line_t *l, char c)
{
    if (c == '\n') {
        l->cr = 0; /* "\r\n": the '\r' belongs to the line ending */
        return 1;
    }
    if (l->cr) {
        l->cr = 0;
        line_store(l, '\r');
    }
    if (c == '\r') {
        l->cr = 1;
    } else {
        line_store(l, c);
    }
    return l->overflow;
}

/* End of input: a lone trailing '\r' is PIN data, not a line ending. */
static void line_eof(hsmc_line_t *l)
{
    if (l->cr) {
        l->cr = 0;
        line_store(l, '\r');
    }
}

/* Read the first line from fd one byte at a time, so nothing after the
 * newline is consumed from a caller's descriptor. Returns 0 or an errno. */
static int line_read_fd(hsmc_line_t *l, int fd)
{
    char c = 0;
    int err = 0;
    for (;;) {
        ssize_t r = read(fd, &c, 1);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            err = errno;
            break;
        }
        if (r == 0) {
            line_eof(l);
            break;
        }
        if (line_put(l, c)) {
            break;
        }
    }
    wipe(&c, sizeof c);
    return err;
}

/* Describes a PIN source for messages: prefix + name. */
typedef struct hsmc_pin_what {
    const char *prefix; /* "PIN file " */
    const char *name;   /* "/run/pin" */
} hsmc_pin_what_t;

/* Checks a collected line: empty or too long are errors. */
static hsmc_err_t line_finish(const hsmc_line_t *l, const hsmc_pin_what_t *w, char *detail,
                              size_t dcap)
{
    char num[24];
    if (l->overflow) {
        size_t pos = 0;
        if (detail != NULL && dcap > 0) {
            detail[0] = '\0';
        }
        det_add(detail, dcap, &pos, w->prefix);
        det_add(detail, dcap, &pos, w->name);
        det_add(detail, dcap, &pos, " is longer than ");
        det_add(detail, dcap, &pos, num_text(num, (unsigned long)l->cap, 10));
        det_add(detail, dcap, &pos, " bytes");
        return HSMC_ERR_PIN_SOURCE;
    }
    if (l->n == 0) {
        det_set(detail, dcap, w->prefix, w->name, " is empty", NULL);
        return HSMC_ERR_PIN_SOURCE;
    }
    return HSMC_OK;
}

static hsmc_err_t pin_from_file(hsmc_line_t *l, const char *path, char *detail, size_t dcap)
{
    hsmc_pin_what_t w;
    int fd, err;

    w.prefix = "PIN file ";
    w.name = path;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        det_errno(detail, dcap, w.prefix, path, errno, NULL);
        return HSMC_ERR_PIN_SOURCE;
    }
    err = line_read_fd(l, fd);
    (void)close(fd);
    if (err != 0) {
        det_errno(detail, dcap, w.prefix, path, err, NULL);
        return HSMC_ERR_PIN_SOURCE;
    }
    return line_finish(l, &w, detail, dcap);
}

static hsmc_err_t pin_from_fd(hsmc_line_t *l, int fd, char *detail, size_t dcap)
{
    hsmc_pin_what_t w;
    char num[24];
    int err;

    w.prefix = "PIN from file descriptor ";
    w.name = num_text(num, (unsigned long)fd, 10);
    if (fd < 0) {
        det_set(detail, dcap, "PIN file descriptor is negative", NULL, NULL, NULL);
        return HSMC_ERR_ARG;
    }
    err = line_read_fd(l, fd);
    if (err != 0) {
        det_errno(detail, dcap, w.prefix, w.name, err, NULL);
        return HSMC_ERR_PIN_SOURCE;
    }
    return line_finish(l, &w, detail, dcap);
}

static hsmc_err_t pin_from_env(hsmc_line_t *l, const char *name, char *detail, size_t dcap)
{
    hsmc_pin_what_t w;
    const char *v = getenv(name);

    w.prefix = "PIN variable ";
    w.name = name;
    if (v == NULL) {
        det_set(detail, dcap, w.prefix, name, " is not set", NULL);
        return HSMC_ERR_PIN_SOURCE;
    }
    while (*v != '\0') {
        if (line_put(l, *v++)) {
            break;
        }
    }
    if (*v == '\0') {
        line_eof(l);
    }
    return line_finish(l, &w, detail, dcap);
}

/* Prompts on /dev/tty with echo off; the terminal settings are restored on
 * every path once they were changed. Only c_lflag is touched, so one
 * termios and the saved flags suffice (keeps the stack small). */
static hsmc_err_t pin_from_tty(hsmc_line_t *l, const char *prompt, char *detail,
                               size_t dcap)
{
    hsmc_pin_what_t w;
    struct termios t;
    tcflag_t saved_lflag = 0;
    int fd, err = 0, changed = 0;

    w.prefix = "PIN from terminal";
    w.name = "";
    do {
        fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        det_errno(detail, dcap, "no terminal to prompt for the PIN (/dev/tty", NULL, errno,
                  "); use a PIN file or variable");
        return HSMC_ERR_PORT;
    }
    if (tcgetattr(fd, &t) != 0) {
        err = errno;
    } else {
        saved_lflag = t.c_lflag;
        t.c_lflag &= (tcflag_t)~(ECHO | ECHOE | ECHOK);
        t.c_lflag |= ECHONL; /* the user still sees the line end */
        if (tcsetattr(fd, TCSAFLUSH, &t) != 0) {
            err = errno;
        } else {
            changed = 1;
        }
    }
    if (err == 0) {
        const char *p = prompt != NULL ? prompt : "PIN: ";
        size_t left = strlen(p);
        while (left > 0) {
            ssize_t r = write(fd, p, left);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                err = r < 0 ? errno : EIO;
                break;
            }
            p += r;
            left -= (size_t)r;
        }
    }
    if (err == 0) {
        err = line_read_fd(l, fd);
    }
    if (changed) {
        t.c_lflag = saved_lflag;
        while (tcsetattr(fd, TCSAFLUSH, &t) != 0 && errno == EINTR) {
        }
    }
    (void)close(fd);

    if (err != 0) {
        det_errno(detail, dcap, "PIN from terminal", NULL, err, NULL);
        return HSMC_ERR_PIN_SOURCE;
    }
    return line_finish(l, &w, detail, dcap);
}

/* Contract: see hsmc_port.h. `buf` receives the PIN bytes (not
 * NUL-terminated); the detail text never contains them. */
hsmc_err_t hsmc_port_pin_read(hsmc_pin_kind_t kind, const char *arg, int fd,
                              char *buf, size_t cap, size_t *len,
                              char *detail, size_t dcap)
{
    hsmc_line_t l;
    hsmc_err_t rc;

    if (detail != NULL && dcap > 0) {
        detail[0] = '\0';
    }
    if (buf == NULL || cap == 0 || len == NULL) {
        det_set(detail, dcap, "PIN read: no buffer", NULL, NULL, NULL);
        return HSMC_ERR_ARG;
    }
    *len = 0;
    l.buf = buf;
    l.cap = cap;
    l.n = 0;
    l.cr = 0;
    l.overflow = 0;

    switch (kind) {
    case HSMC_PIN_FILE:
        if (arg == NULL || arg[0] == '\0') {
            det_set(detail, dcap, "PIN file: no path given", NULL, NULL, NULL);
            rc = HSMC_ERR_ARG;
        } else {
            rc = pin_from_file(&l, arg, detail, dcap);
        }
        break;
    case HSMC_PIN_FD:
        rc = pin_from_fd(&l, fd, detail, dcap);
        break;
    case HSMC_PIN_ENV:
        if (arg == NULL || arg[0] == '\0') {
            det_set(detail, dcap, "PIN variable: no name given", NULL, NULL, NULL);
            rc = HSMC_ERR_ARG;
        } else {
            rc = pin_from_env(&l, arg, detail, dcap);
        }
        break;
    case HSMC_PIN_TTY:
        rc = pin_from_tty(&l, arg, detail, dcap);
        break;
    default:
        det_set(detail, dcap, "PIN read: this source is not read by the port", NULL, NULL,
                NULL);
        rc = HSMC_ERR_ARG;
        break;
    }

    if (rc != HSMC_OK) {
        wipe(buf, cap);
        return rc;
    }
    *len = l.n;
    return HSMC_OK;
}
