/*
 * hsmc port layer: the only OS- or binding-specific code.
 *
 * One .c per backend implements every function below:
 *   port/posix/hsmc_port_posix.c   dlopen, pthreads, clock, getpid, PIN files/fd/tty
 *   port/static/hsmc_port_static.c token linked in: C_GetFunctionList at link time
 *   port/zephyr/hsmc_port_zephyr.c k_mutex, Zephyr time, static binding
 * Only hsmc types, PKCS#11 types and the C standard library appear here.
 */
#ifndef HSMC_PORT_H
#define HSMC_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "hsmc_config.h"
#include "hsmc/error.h"
#include "hsmc/token.h" /* hsmc_mutex_storage_t, hsmc_pin_kind_t */

/* ---- Module binding ---------------------------------------------------- */

/** A loaded module (opaque handle owned by the port). */
typedef struct hsmc_port_module {
    void *handle;
} hsmc_port_module_t;

/**
 * Load a PKCS#11 module and get its function list.
 * POSIX: dlopen(path, RTLD_NOW | RTLD_LOCAL); prefers C_GetInterface("PKCS 11")
 * when exported, else C_GetFunctionList. Static/Zephyr: path is ignored; the
 * linked token's C_GetFunctionList is called.
 * @param detail/cap  a message for the user on failure (NUL-terminated)
 * @return HSMC_OK; HSMC_ERR_ARG; HSMC_ERR_MODULE_LOAD (file missing or not
 *         loadable); HSMC_ERR_MODULE_INVALID (no entry point, or it failed).
 */
hsmc_err_t hsmc_port_module_load(hsmc_port_module_t *m, const char *path,
                                 CK_FUNCTION_LIST_PTR *fl, char *detail, size_t cap);

/** Drop the reference taken by hsmc_port_module_load. Accepts NULL. */
void hsmc_port_module_unload(hsmc_port_module_t *m);

/* ---- Mutexes ------------------------------------------------------------ */

/** Initialise a mutex in caller storage. @return HSMC_OK or HSMC_ERR_PORT. */
hsmc_err_t hsmc_port_mutex_init(hsmc_mutex_storage_t *mx);
void hsmc_port_mutex_lock(hsmc_mutex_storage_t *mx);
void hsmc_port_mutex_unlock(hsmc_mutex_storage_t *mx);
void hsmc_port_mutex_destroy(hsmc_mutex_storage_t *mx);

/** A process-wide lock for hsmc's module registry (statically initialised). */
void hsmc_port_global_lock(void);
void hsmc_port_global_unlock(void);

/* ---- Time and process ---------------------------------------------------- */

/** Wall-clock seconds since 1970-01-01 UTC, or -1 when the clock is unset. */
int64_t hsmc_port_time(void);

/** A monotonic millisecond counter (wraps). */
uint32_t hsmc_port_ms(void);

/** Yield the CPU for about `ms` milliseconds (0: just yield). */
void hsmc_port_sleep_ms(uint32_t ms);

/** An id of the current process; changes in a forked child. Constant on firmware. */
unsigned long hsmc_port_pid(void);

/* ---- PIN input ----------------------------------------------------------- */

/**
 * Read a PIN for kind HSMC_PIN_FILE (arg = path), HSMC_PIN_FD (fd),
 * HSMC_PIN_ENV (arg = variable name) or HSMC_PIN_TTY (arg = prompt, may be
 * NULL). Reads the first line; a trailing "\n" or "\r\n" is not part of it.
 * Never echoes, never logs. On failure `buf` is wiped.
 * @return HSMC_OK; HSMC_ERR_ARG; HSMC_ERR_PIN_SOURCE (missing, unreadable,
 *         empty, longer than cap; detail says which, without the PIN);
 *         HSMC_ERR_PORT (this port has no files/env/terminal).
 */
hsmc_err_t hsmc_port_pin_read(hsmc_pin_kind_t kind, const char *arg, int fd,
                              char *buf, size_t cap, size_t *len,
                              char *detail, size_t dcap);

#endif /* HSMC_PORT_H */
