/*
 * hsmc port for images that link the token in (bare-metal firmware, or a
 * host build that links a PKCS#11 library directly): no loader, no OS.
 *
 * - Module binding calls the linked C_GetFunctionList; the path is ignored.
 * - Mutexes are no-ops. This port is meant for single-threaded firmware;
 *   an RTOS build uses a port with real mutexes instead (port/zephyr), or
 *   builds with HSMC_THREADS 0.
 * - There is no wall clock: hsmc_port_time() returns -1 ("unset"), so
 *   certificate validity must come from the caller. An integrator with an
 *   RTC writes a copy of this file (it is small) rather than hooking it.
 * - The millisecond counter advances by one per call and by the requested
 *   time per sleep: enough for hsmc's bounded wait loops to terminate, not
 *   a measure of time.
 * - PINs come from a callback or memory; files, variables and terminals
 *   do not exist here.
 */
#include <stddef.h>
#include <stdint.h>

#include "hsmc_port.h"

/* ---- Module binding ----------------------------------------------------- */

/* Copy a constant message into detail[cap] (truncating). */
static void static_detail(char *detail, size_t cap, const char *msg)
{
    size_t i = 0;
    if (detail == NULL || cap == 0) {
        return;
    }
    while (msg[i] != '\0' && i + 1 < cap) {
        detail[i] = msg[i];
        i++;
    }
    detail[i] = '\0';
}

/* Contract: see hsmc_port.h. `path` may be NULL here. */
hsmc_err_t hsmc_port_module_load(hsmc_port_module_t *m, const char *path,
                                 CK_FUNCTION_LIST_PTR *fl, char *detail, size_t cap)
{
    CK_FUNCTION_LIST_PTR list = NULL;
    CK_RV rv;

    (void)path; /* the token is linked in */
    if (m == NULL || fl == NULL) {
        static_detail(detail, cap, "module load: no output given");
        return HSMC_ERR_ARG;
    }
    m->handle = NULL;
    *fl = NULL;
    rv = C_GetFunctionList(&list);
    if (rv != CKR_OK) {
        static_detail(detail, cap, "linked token: C_GetFunctionList failed");
        return HSMC_ERR_MODULE_INVALID;
    }
    if (list == NULL) {
        static_detail(detail, cap, "linked token: C_GetFunctionList returned no list");
        return HSMC_ERR_MODULE_INVALID;
    }
    *fl = list;
    return HSMC_OK;
}

/* Nothing was loaded, so nothing is released. */
void hsmc_port_module_unload(hsmc_port_module_t *m)
{
    if (m != NULL) {
        m->handle = NULL;
    }
}

/* ---- Mutexes: no-ops (single-threaded firmware; see the top) ------------ */

hsmc_err_t hsmc_port_mutex_init(hsmc_mutex_storage_t *mx)
{
    return mx == NULL ? HSMC_ERR_ARG : HSMC_OK;
}

void hsmc_port_mutex_lock(hsmc_mutex_storage_t *mx)
{
    (void)mx;
}

void hsmc_port_mutex_unlock(hsmc_mutex_storage_t *mx)
{
    (void)mx;
}

void hsmc_port_mutex_destroy(hsmc_mutex_storage_t *mx)
{
    (void)mx;
}

void hsmc_port_global_lock(void)
{
}

void hsmc_port_global_unlock(void)
{
}

/* ---- Time and process ---------------------------------------------------- */

/* No wall clock on this port: "unset". */
int64_t hsmc_port_time(void)
{
    return -1;
}

static uint32_t hsmc_static_ticks;

/* A counter that advances one "millisecond" per call (see the top). */
uint32_t hsmc_port_ms(void)
{
    return ++hsmc_static_ticks;
}

/* Nothing to yield to: count the requested time as passed, so waits that
 * sleep between polls end after about as many calls as they asked for. */
void hsmc_port_sleep_ms(uint32_t ms)
{
    hsmc_static_ticks += ms;
}

/* One process for the image's lifetime: never looks like a fork. */
unsigned long hsmc_port_pid(void)
{
    return 1ul;
}

/* ---- PIN input ----------------------------------------------------------- */

/* Contract: see hsmc_port.h. Always HSMC_ERR_PORT (buffer wiped). */
hsmc_err_t hsmc_port_pin_read(hsmc_pin_kind_t kind, const char *arg, int fd,
                              char *buf, size_t cap, size_t *len,
                              char *detail, size_t dcap)
{
    (void)kind;
    (void)arg;
    (void)fd;
    if (buf != NULL) {
        volatile char *v = buf;
        while (cap-- > 0) {
            *v++ = 0;
        }
    }
    if (len != NULL) {
        *len = 0;
    }
    static_detail(detail, dcap, "the static port reads no files; pass a PIN callback");
    return HSMC_ERR_PORT;
}
