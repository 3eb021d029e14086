/*
 * cli_log.c: the log of the hsmc command. The library's log callback and
 * the command's own log lines (cli_log_msg) go to one sink: stderr, or a
 * file with size-based rotation (PATH, PATH.1 .. PATH.N, oldest last).
 *
 * Settings: --log-file / HSMC_LOG_FILE, HSMC_LOG_LEVEL (error, warn, info,
 * debug), HSMC_LOG_MAX_BYTES (rotate before a line would take the file
 * past this size; 0 = never), HSMC_LOG_BACKUP_COUNT (old files kept).
 * Without a level, -v means info and -vv debug; a log file alone means
 * info; otherwise nothing is logged.
 *
 * Nothing here sees a PIN: the library never passes one to its log
 * callback, and the command's own messages name PIN sources, never PINs.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define CLI_LOG_DEFAULT_MAX_BYTES (10ull * 1024 * 1024)
#define CLI_LOG_DEFAULT_BACKUPS 5u
#define CLI_LOG_MAX_BACKUPS 100u

static struct {
    int enabled;
    hsmc_log_level_t level;
    const char *path;            /* NULL: stderr */
    FILE *f;
    unsigned long long size;     /* bytes in the current file */
    unsigned long long max_bytes;
    unsigned backups;
    int broken;                  /* the file failed: fall back to stderr once said */
} g_log;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Parse an unsigned decimal variable. @return 0 or -1 (message printed). */
static int env_ull(const char *name, unsigned long long *out)
{
    const char *v = getenv(name);
    char *end = NULL;
    unsigned long long n;
    if (v == NULL || v[0] == '\0')
        return 0;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || v[0] == '-') {
        cli_err("%s must be a whole number of bytes or files (got '%s')", name, v);
        return -1;
    }
    *out = n;
    return 0;
}

/* Open (append) the log file and learn its size. @return 0 or -1 (errno). */
static int log_open(void)
{
    struct stat st;
    int fd = open(g_log.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    g_log.f = fdopen(fd, "a");
    if (g_log.f == NULL) {
        close(fd);
        return -1;
    }
    g_log.size = fstat(fd, &st) == 0 ? (unsigned long long)st.st_size : 0;
    return 0;
}

/* PATH.N into buf. */
static void backup_name(char *buf, size_t cap, unsigned n)
{
    if (n == 0)
        snprintf(buf, cap, "%s", g_log.path);
    else
        snprintf(buf, cap, "%s.%u", g_log.path, n);
}

/* Shift PATH.(N-1) -> PATH.N ... PATH -> PATH.1 and start a new PATH. */
static void log_rotate(void)
{
    char from[4096], to[4096];
    unsigned k;
    fclose(g_log.f);
    g_log.f = NULL;
    if (g_log.backups == 0) {
        /* No backups: start the file again. */
        if (truncate(g_log.path, 0) != 0 && errno != ENOENT) {
            g_log.broken = 1;
            return;
        }
    } else {
        backup_name(to, sizeof(to), g_log.backups);
        (void)unlink(to);
        for (k = g_log.backups; k > 0; k--) {
            backup_name(from, sizeof(from), k - 1);
            backup_name(to, sizeof(to), k);
            if (rename(from, to) != 0 && errno != ENOENT) {
                g_log.broken = 1;
                return;
            }
        }
    }
    if (log_open() != 0)
        g_log.broken = 1;
}

int cli_log_setup(cli_ctx_t *c)
{
    const char *lvl = getenv("HSMC_LOG_LEVEL");
    const char *path = c->log_file != NULL ? c->log_file : getenv("HSMC_LOG_FILE");
    unsigned long long backups = CLI_LOG_DEFAULT_BACKUPS;
    unsigned k;

    memset(&g_log, 0, sizeof(g_log));
    g_log.max_bytes = CLI_LOG_DEFAULT_MAX_BYTES;
    if (path != NULL && path[0] == '\0')
        path = NULL;
    if (env_ull("HSMC_LOG_MAX_BYTES", &g_log.max_bytes) != 0 ||
        env_ull("HSMC_LOG_BACKUP_COUNT", &backups) != 0)
        return CLI_EXIT_USAGE;
    if (backups > CLI_LOG_MAX_BACKUPS) {
        cli_err("HSMC_LOG_BACKUP_COUNT: at most %u files", CLI_LOG_MAX_BACKUPS);
        return CLI_EXIT_USAGE;
    }
    g_log.backups = (unsigned)backups;
    if (lvl != NULL && lvl[0] != '\0') {
        for (k = 0; k < 4; k++)
            if (strcasecmp(lvl, level_names[k]) == 0)
                break;
        if (k == 4) {
            cli_err("HSMC_LOG_LEVEL must be error, warn, info or debug (got '%s')", lvl);
            return CLI_EXIT_USAGE;
        }
        g_log.level = (hsmc_log_level_t)k;
        g_log.enabled = 1;
    } else if (c->verbose > 0) {
        g_log.level = c->verbose > 1 ? HSMC_LOG_DEBUG : HSMC_LOG_INFO;
        g_log.enabled = 1;
    } else if (path != NULL) {
        g_log.level = HSMC_LOG_INFO;
        g_log.enabled = 1;
    }
    if (path != NULL) {
        if (strlen(path) > 4000) {
            cli_err("the log file name is too long");
            return CLI_EXIT_USAGE;
        }
        g_log.path = path;
        if (log_open() != 0) {
            cli_err("cannot open log file %s: %s", path, strerror(errno));
            return CLI_EXIT_FAIL;
        }
    }
    return CLI_EXIT_OK;
}

void cli_log_close(void)
{
    if (g_log.f != NULL)
        fclose(g_log.f);
    g_log.f = NULL;
    g_log.enabled = 0;
}

int cli_log_enabled(hsmc_log_level_t level)
{
    return g_log.enabled && level <= g_log.level;
}

hsmc_log_level_t cli_log_level(void)
{
    return g_log.level;
}

/* Write one line: file "2026-05-04T09:12:01Z hsmc[PID] level: text",
 * stderr "hsmc: [level] 2026-05-04T09:12:01Z text". */
static void log_line(hsmc_log_level_t level, const char *msg)
{
    char stamp[32], head[96];
    time_t now = time(NULL);
    struct tm tm;
    FILE *f;
    size_t len;
    if (gmtime_r(&now, &tm) == NULL || strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(stamp, sizeof(stamp), "-");
    len = strlen(stamp) + strlen(msg) + 40;
    if (g_log.f != NULL && !g_log.broken && g_log.max_bytes > 0 && g_log.size > 0 &&
        g_log.size + len > g_log.max_bytes)
        log_rotate();
    if (g_log.f == NULL || g_log.broken) {
        if (g_log.path != NULL && g_log.broken == 1) {
            g_log.broken = 2;
            cli_err("cannot write log file %s (%s); logging to stderr", g_log.path,
                    strerror(errno));
        }
        f = stderr;
        /* stderr keeps the "hsmc: " prefix of every other message. */
        snprintf(head, sizeof(head), "hsmc: [%s] %s ",
                 (unsigned)level < 4 ? level_names[level] : "?", stamp);
    } else {
        f = g_log.f;
        snprintf(head, sizeof(head), "%s hsmc[%ld] %s: ", stamp, (long)getpid(),
                 (unsigned)level < 4 ? level_names[level] : "?");
    }
    len = strlen(head) + strlen(msg) + 1;
    fputs(head, f);
    cli_put_safe(f, msg, strlen(msg));
    fputc('\n', f);
    fflush(f);
    if (f == g_log.f)
        g_log.size += len; /* escapes may add a little; rotation stays close */
}

void cli_log_cb(void *user, hsmc_log_level_t level, const char *msg)
{
    (void)user;
    if (cli_log_enabled(level))
        log_line(level, msg);
}

void cli_log_msg(hsmc_log_level_t level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    if (!cli_log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_line(level, msg);
}
