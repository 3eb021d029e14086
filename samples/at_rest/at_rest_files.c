/*
 * at_rest: seal, open and rotate files (hsmc streams, docs/FORMATS.md
 * section 5). RAM: the static buffers of at_rest.h, one chunk at a time.
 */
#define _GNU_SOURCE /* O_DIRECTORY, O_CLOEXEC, O_NOFOLLOW, fdopendir */
#include "at_rest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A file NAME of a directory that seal turns into NAME.cose: regular (no
 * symlinks), not hidden (temporaries are), not an envelope already. */
static int sealable(int dfd, const char *name, struct stat *st)
{
    if (name[0] == '.' || ar_has_suffix(name, AR_SUFFIX))
        return 0;
    if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    return S_ISREG(st->st_mode);
}

/* An envelope NAME.cose of a directory (regular, not hidden). */
static int envelope(int dfd, const char *name, struct stat *st)
{
    if (name[0] == '.' || !ar_has_suffix(name, AR_SUFFIX))
        return 0;
    if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    return S_ISREG(st->st_mode);
}

/* A directory stream over dfd that leaves dfd open. */
static DIR *dir_stream(int dfd)
{
    int fd2 = dup(dfd);
    DIR *d;
    if (fd2 < 0)
        return NULL;
    d = fdopendir(fd2);
    if (d == NULL)
        close(fd2);
    else
        rewinddir(d);
    return d;
}

/* ---- seal ----------------------------------------------------------------------- */

/* Seal dfd/name into dfd/name.cose, then remove name. @return 0, 1 failed. */
static int seal_one(int dfd, const char *dir, const char *name, const ar_kek_t *k,
                    ar_progress_t *pr)
{
    char env[AR_NAME_MAX + 16], tmp[AR_NAME_MAX + 16], shown[264];
    hsmc_cose_recipient_t r;
    struct stat st;
    size_t n = 0;
    hsmc_err_t e;
    int in, out, rc = 0, last = 0;

    snprintf(shown, sizeof shown, "%s", name);
    if (strlen(name) > AR_NAME_MAX)
        return ar_err("%s: name longer than %u bytes: not sealed (rename it)", shown,
                      AR_NAME_MAX) != 0;
    snprintf(env, sizeof env, "%s" AR_SUFFIX, name);
    snprintf(tmp, sizeof tmp, ".%s" AR_SUFFIX ".tmp", name);
    in = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0)
        return errno == ENOENT ? 0 : ar_err("%s/%s: %s", dir, name, strerror(errno)) != 0;
    if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(in);
        return 0; /* replaced by something else since the listing: leave it */
    }
    if (fstatat(dfd, env, &st, AT_SYMLINK_NOFOLLOW) == 0)
        ar_note("%s: %s exists from an interrupted run; sealing again from %s", shown, env,
                shown);
    out = ar_tmp_create(dfd, tmp, shown);
    if (out < 0) {
        close(in);
        return 1;
    }
    r.key = &k->key;
    r.alg = k->alg;
    hsmc_cose_stream_init(&ar_stream, &ar_h);
    /* External AAD = the file name: an envelope renamed to another name
     * fails to open. */
    e = hsmc_cose_stream_seal_init(&ar_stream, &r, 1, AR_CHUNK,
                                   (hsmc_view_t){(const uint8_t *)name, strlen(name)}, ar_out,
                                   sizeof ar_out, &n);
    if (e != HSMC_OK) {
        rc = ar_fail(e, shown);
    } else if (ar_write_full(out, ar_out, n) != 0) {
        rc = ar_err("%s: cannot write %s: %s", shown, tmp, strerror(errno));
    }
    while (rc == 0 && !last) {
        ssize_t got = ar_read_full(in, ar_pt, AR_CHUNK);
        if (got < 0) {
            rc = ar_err("%s: cannot read: %s", shown, strerror(errno));
            break;
        }
        /* A short read is the end: the last chunk holds the remainder
         * (nothing when the size is a multiple of the chunk). */
        last = (size_t)got < AR_CHUNK;
        e = last ? hsmc_cose_stream_seal_finish(&ar_stream, ar_pt, (size_t)got, ar_out,
                                                sizeof ar_out, &n)
                 : hsmc_cose_stream_seal_chunk(&ar_stream, ar_pt, (size_t)got, ar_out,
                                               sizeof ar_out, &n);
        if (e != HSMC_OK)
            rc = ar_fail(e, shown);
        else if (ar_write_full(out, ar_out, n) != 0)
            rc = ar_err("%s: cannot write %s: %s", shown, tmp, strerror(errno));
        pr->bytes += (unsigned long long)got;
        ar_progress(pr, 0);
    }
    memset(ar_pt, 0, sizeof ar_pt);
    hsmc_cose_stream_free(&ar_stream);
    close(in);
    if (rc != 0) {
        ar_tmp_abort(dfd, out, tmp);
        return 1;
    }
    /* NAME.cose complete and durable first; only then NAME goes. A kill in
     * between leaves both, and NAME (still the original) wins next time. */
    if (ar_tmp_commit(dfd, out, tmp, env, shown) != 0)
        return 1;
    if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT)
        return ar_err("%s: sealed, but cannot remove the plaintext: %s", shown,
                      strerror(errno)) != 0;
    return ar_dir_sync(dfd, dir) != 0;
}

int ar_cmd_seal(const char *dir)
{
    ar_kek_t k;
    ar_progress_t pr;
    struct dirent *de;
    struct stat st;
    unsigned long files = 0, failed = 0;
    unsigned long long bytes = 0;
    unsigned stale;
    char sz[32];
    DIR *d;
    int rc = AR_EXIT_OK, dfd;

    dfd = ar_dir_open(dir, 1, &rc);
    if (dfd < 0)
        return rc;
    rc = ar_token_open();
    if (rc == AR_EXIT_OK)
        rc = ar_kek_latest(&k, 1, NULL);
    if (rc != AR_EXIT_OK) {
        close(dfd);
        return rc;
    }
    stale = ar_remove_stale(dfd, AR_SUFFIX);
    if (stale > 0)
        ar_note("removed %u stale temporary file%s of an interrupted run", stale,
                stale == 1 ? "" : "s");
    d = dir_stream(dfd);
    if (d == NULL) {
        close(dfd);
        return ar_err("%s: cannot list: %s", dir, strerror(errno));
    }
    /* First pass: what there is to do, for the progress line. */
    while ((de = readdir(d)) != NULL) {
        if (sealable(dfd, de->d_name, &st)) {
            files++;
            bytes += (unsigned long long)st.st_size;
        }
    }
    ar_progress_init(&pr, "seal", files, bytes);
    pr.bytes = 0;
    rewinddir(d);
    /* Second pass: seal. Envelopes this run creates show up as NAME.cose
     * and are skipped; a file listed again after its removal is gone. */
    while ((de = readdir(d)) != NULL) {
        if (!sealable(dfd, de->d_name, &st))
            continue;
        if (seal_one(dfd, dir, de->d_name, &k, &pr) != 0)
            failed++;
        pr.files++;
        ar_progress(&pr, 0);
    }
    ar_progress(&pr, 1);
    closedir(d);
    close(dfd);
    printf("sealed %lu file%s (%s) under %s (%s)\n", pr.files - failed,
           pr.files - failed == 1 ? "" : "s", ar_size(pr.bytes, sz, sizeof sz), k.label,
           ar_alg_name(k.alg));
    if (failed > 0) {
        ar_err("%lu file%s not sealed (see above); they are unchanged", failed,
               failed == 1 ? "" : "s");
        return AR_EXIT_FAIL;
    }
    return AR_EXIT_OK;
}

/* ---- open ------------------------------------------------------------------------ */

/* Report an envelope that does not open. @return 1. */
static int refused(const char *shown, hsmc_err_t e, const char *what)
{
    const char *detail = hsmc_last_err(&ar_h) == e ? hsmc_detail(&ar_h) : "";
    ar_err("%s: refused: %s (%s)%s%s%s%s; nothing written", shown, hsmc_err_name(e),
           hsmc_strerror(e), what != NULL ? ": " : "", what != NULL ? what : "",
           detail[0] != '\0' ? ": " : "", detail);
    ar_err("  hint: %s", ar_open_hint(e));
    return 1;
}

/*
 * Open sdfd/env (external AAD = aad) into odfd/oname through a fresh
 * temporary, renamed only after the last chunk authenticated.
 * @return 0, or 1 (printed; no output, no temporary left).
 */
static int open_one(int sdfd, const char *env, const char *aad, int odfd, const char *oname,
                    const char *shown, ar_progress_t *pr, unsigned long long *plain)
{
    char tmp[AR_NAME_MAX + 16];
    hsmc_cose_info_t info;
    struct stat st;
    size_t have, used = 0, n = 0;
    unsigned long long written = 0;
    ssize_t got;
    hsmc_err_t e;
    int in, out, last = 0, eof, rc = 0;

    if (strlen(oname) > AR_NAME_MAX)
        return ar_err("%s: output name longer than %u bytes", shown, AR_NAME_MAX) != 0;
    /* Never rename over a device, FIFO, socket or link (/dev/null!). */
    if (fstatat(odfd, oname, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
        return ar_err("%s: the output %s exists and is not a regular file: refused", shown,
                      oname) != 0;
    snprintf(tmp, sizeof tmp, ".%s.tmp", oname);
    in = openat(sdfd, env, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0)
        return ar_err("%s: %s", shown, strerror(errno)) != 0;
    out = ar_tmp_create(odfd, tmp, shown);
    if (out < 0) {
        close(in);
        return 1;
    }
    got = ar_read_full(in, ar_in, sizeof ar_in);
    if (got < 0) {
        close(in);
        ar_tmp_abort(odfd, out, tmp);
        return ar_err("%s: cannot read: %s", shown, strerror(errno)) != 0;
    }
    have = (size_t)got;
    eof = have < sizeof ar_in;
    pr->bytes += have;
    hsmc_cose_stream_init(&ar_stream, &ar_h);
    memset(&info, 0, sizeof info);
    e = hsmc_cose_stream_open_init(&ar_stream, ar_in, have, &used,
                                   (hsmc_view_t){(const uint8_t *)aad, strlen(aad)}, AR_CHUNK,
                                   0, &info);
    if (e != HSMC_OK)
        rc = refused(shown, e, "header");
    else {
        memmove(ar_in, ar_in + used, have - used);
        have -= used;
    }
    while (rc == 0 && !last) {
        if (!eof && have < sizeof ar_in) {
            got = ar_read_full(in, ar_in + have, sizeof ar_in - have);
            if (got < 0) {
                rc = ar_err("%s: cannot read: %s", shown, strerror(errno)) != 0;
                break;
            }
            eof = (size_t)got < sizeof ar_in - have;
            have += (size_t)got;
            pr->bytes += (unsigned long long)got;
        }
        if (have == 0) {
            /* The input ended after a full chunk: the last one is missing. */
            e = hsmc_cose_stream_open_finish(&ar_stream);
            rc = refused(shown, e != HSMC_OK ? e : HSMC_ERR_TRUNCATED, NULL);
            break;
        }
        e = hsmc_cose_stream_open_chunk(&ar_stream, ar_in, have, &used, ar_pt, sizeof ar_pt, &n,
                                        &last);
        if (e != HSMC_OK) {
            rc = refused(shown, e, NULL);
            break;
        }
        /* Written to the temporary only: the name appears after the end. */
        if (ar_write_full(out, ar_pt, n) != 0) {
            rc = ar_err("%s: cannot write %s: %s", shown, tmp, strerror(errno)) != 0;
            break;
        }
        written += n;
        memmove(ar_in, ar_in + used, have - used);
        have -= used;
        ar_progress(pr, 0);
    }
    if (rc == 0 && (have > 0 || (!eof && ar_read_full(in, ar_in, 1) > 0)))
        rc = refused(shown, HSMC_ERR_SEQUENCE, "data follows the last chunk");
    if (rc == 0) {
        e = hsmc_cose_stream_open_finish(&ar_stream);
        if (e != HSMC_OK)
            rc = refused(shown, e, NULL);
    }
    memset(ar_pt, 0, sizeof ar_pt);
    hsmc_cose_stream_free(&ar_stream);
    close(in);
    if (rc != 0) {
        ar_tmp_abort(odfd, out, tmp);
        return 1;
    }
    if (ar_tmp_commit(odfd, out, tmp, oname, shown) != 0)
        return 1;
    *plain += written;
    return 0;
}

/* Split path into a directory (into dbuf) and a base name. @return the base
 * name, or NULL when path is too long or ends with '/'. */
static const char *split_path(const char *path, char *dbuf, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t dl;
    if (slash == NULL) {
        snprintf(dbuf, cap, ".");
        return path[0] != '\0' ? path : NULL;
    }
    if (slash[1] == '\0')
        return NULL;
    dl = (size_t)(slash - path);
    if (dl == 0)
        dl = 1; /* "/name": the root */
    if (dl >= cap)
        return NULL;
    memcpy(dbuf, path, dl);
    dbuf[dl] = '\0';
    return slash + 1;
}

static char sdir[4096], odir[4096]; /* directory parts of the paths (static: large) */

/* open FILE.cose --out FILE */
static int open_file(const char *path)
{
    char aad[AR_NAME_MAX + 1];
    const char *sname, *oname;
    ar_progress_t pr;
    struct stat st;
    size_t al;
    int sdfd, odfd, rc = AR_EXIT_OK;
    unsigned long long plain = 0;
    char sz[32];

    sname = split_path(path, sdir, sizeof sdir);
    oname = split_path(ar_opt.out, odir, sizeof odir);
    if (sname == NULL || oname == NULL || !ar_has_suffix(sname, AR_SUFFIX) ||
        strlen(sname) > AR_NAME_MAX + strlen(AR_SUFFIX)) {
        ar_err("open: give NAME.cose --out FILE (the name NAME is the envelope's AAD)");
        return AR_EXIT_USAGE;
    }
    if (lstat(ar_opt.out, &st) == 0 && !S_ISREG(st.st_mode)) {
        ar_err("--out %s exists and is not a regular file: refused", ar_opt.out);
        return AR_EXIT_USAGE;
    }
    al = strlen(sname) - strlen(AR_SUFFIX);
    memcpy(aad, sname, al);
    aad[al] = '\0';
    sdfd = ar_dir_open(sdir, 0, &rc);
    if (sdfd < 0)
        return rc;
    odfd = ar_dir_open(odir, 1, &rc);
    if (odfd < 0) {
        close(sdfd);
        return rc;
    }
    rc = ar_token_open();
    if (rc == AR_EXIT_OK) {
        ar_progress_init(&pr, "open", 1, 0);
        rc = open_one(sdfd, sname, aad, odfd, oname, path, &pr, &plain) == 0 ? AR_EXIT_OK
                                                                             : AR_EXIT_FAIL;
        if (rc == AR_EXIT_OK)
            printf("opened %s (%s) into %s\n", path, ar_size(plain, sz, sizeof sz),
                   ar_opt.out);
    }
    close(sdfd);
    close(odfd);
    return rc;
}

int ar_cmd_open(const char *path)
{
    char aad[AR_NAME_MAX + 1], shown[264];
    ar_progress_t pr;
    struct dirent *de;
    struct stat st;
    unsigned long files = 0, failed = 0;
    unsigned long long bytes = 0, plain = 0;
    char sz[32];
    DIR *d;
    int sdfd, odfd, rc = AR_EXIT_OK;

    if (ar_opt.out == NULL || ar_opt.out[0] == '\0') {
        ar_err("open: give --out OUTDIR (or --out FILE for one NAME.cose)");
        return AR_EXIT_USAGE;
    }
    if (stat(path, &st) != 0) {
        ar_err("%s: %s", path, strerror(errno));
        return AR_EXIT_USAGE;
    }
    if (!S_ISDIR(st.st_mode))
        return open_file(path);
    if (lstat(ar_opt.out, &st) == 0 && !S_ISDIR(st.st_mode)) {
        ar_err("--out %s exists and is not a directory: give a directory for DIR", ar_opt.out);
        return AR_EXIT_USAGE;
    }
    if (mkdir(ar_opt.out, 0700) != 0 && errno != EEXIST) {
        ar_err("--out %s: cannot make the directory: %s", ar_opt.out, strerror(errno));
        return AR_EXIT_USAGE;
    }
    sdfd = ar_dir_open(path, 0, &rc);
    if (sdfd < 0)
        return rc;
    odfd = ar_dir_open(ar_opt.out, 1, &rc);
    if (odfd < 0) {
        close(sdfd);
        return rc;
    }
    rc = ar_token_open();
    d = rc == AR_EXIT_OK ? dir_stream(sdfd) : NULL;
    if (d == NULL) {
        close(sdfd);
        close(odfd);
        return rc != AR_EXIT_OK ? rc : ar_err("%s: cannot list: %s", path, strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        if (envelope(sdfd, de->d_name, &st)) {
            files++;
            bytes += (unsigned long long)st.st_size;
        }
    }
    ar_progress_init(&pr, "open", files, bytes);
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        size_t al;
        if (!envelope(sdfd, de->d_name, &st))
            continue;
        snprintf(shown, sizeof shown, "%s", de->d_name);
        al = strlen(de->d_name) - strlen(AR_SUFFIX);
        if (al > AR_NAME_MAX) {
            ar_err("%s: name too long", shown);
            failed++;
            continue;
        }
        memcpy(aad, de->d_name, al);
        aad[al] = '\0';
        if (open_one(sdfd, de->d_name, aad, odfd, aad, shown, &pr, &plain) != 0)
            failed++;
        pr.files++;
    }
    ar_progress(&pr, 1);
    closedir(d);
    close(sdfd);
    close(odfd);
    printf("opened %lu file%s (%s) into %s\n", pr.files - failed,
           pr.files - failed == 1 ? "" : "s", ar_size(plain, sz, sizeof sz), ar_opt.out);
    if (failed > 0) {
        ar_err("%lu envelope%s refused (see above); no output for %s", failed,
               failed == 1 ? "" : "s", failed == 1 ? "it" : "them");
        return AR_EXIT_FAIL;
    }
    return AR_EXIT_OK;
}

/* ---- rotate ---------------------------------------------------------------------- */

size_t ar_read_header(int fd, const char *shown, uint8_t *buf, size_t cap)
{
    ssize_t got;
    size_t hl;

    if (lseek(fd, 0, SEEK_SET) != 0 || (got = ar_read_full(fd, buf, cap)) < 0) {
        if (shown != NULL)
            ar_err("%s: cannot read: %s", shown, strerror(errno));
        return 0;
    }
    hl = ar_item_len(buf, (size_t)got);
    if (hl == 0 && shown != NULL)
        ar_err("%s: %s", shown,
               (size_t)got == cap ? "header larger than at_rest reads (8 KiB)"
                                  : "not an envelope: no complete CBOR item at the start");
    return hl;
}

/* 1 when every recipient of msg is the KEK label (nothing to re-wrap). */
static int on_label(const uint8_t *msg, size_t len, const char *label)
{
    size_t i, count = 0, ll = strlen(label);
    hsmc_view_t kid;
    int alg;

    for (i = 0;; i++) {
        if (hsmc_cose_recipient_at(&ar_cose, (hsmc_view_t){msg, len}, 0, i, &kid, &alg,
                                   &count) != HSMC_OK)
            return i > 0 && i == count;
        if (kid.len != ll || memcmp(kid.ptr, label, ll) != 0)
            return 0;
    }
}

typedef struct rotate_state {
    const ar_kek_t *kek;
    int count_only;           /* first pass: count what is pending */
    unsigned long pending, done, failed, skipped;
    unsigned long long copied; /* chunk bytes copied as they were */
    ar_progress_t pr;
} rotate_state_t;

/* Re-wrap one envelope (stream header + chunks copied, or a whole record). */
static int rotate_one(void *user, int dfd, int fd, const char *name, int is_record,
                      const uint8_t *msg, size_t len)
{
    rotate_state_t *s = (rotate_state_t *)user;
    char tmp[AR_NAME_MAX + 24];
    hsmc_cose_recipient_t r;
    hsmc_cose_info_t info;
    size_t n = 0;
    hsmc_err_t e;
    int out, bad = 0;

    if (len == 0) { /* unreadable: printed by the walk */
        if (!s->count_only)
            s->failed++;
        return 0;
    }
    if (on_label(msg, len, s->kek->label)) {
        if (!s->count_only)
            s->skipped++;
        return 0;
    }
    if (s->count_only) {
        s->pending++;
        return 0;
    }
    r.key = &s->kek->key;
    r.alg = s->kek->alg;
    /* The content key is unwrapped with the old version and wrapped for the
     * new one, both in the token; the content stays as it is. */
    e = hsmc_cose_rewrap(&ar_cose, (hsmc_view_t){msg, len}, 0, &r, 1, ar_out, sizeof ar_out, &n,
                         &info);
    if (e != HSMC_OK) {
        ar_fail(e, name);
        ar_err("  hint: %s", ar_open_hint(e));
        s->failed++;
        return 0;
    }
    snprintf(tmp, sizeof tmp, ".%s.tmp", name);
    out = ar_tmp_create(dfd, tmp, name);
    if (out < 0) {
        s->failed++;
        return 0;
    }
    if (ar_write_full(out, ar_out, n) != 0)
        bad = ar_err("%s: cannot write %s: %s", name, tmp, strerror(errno));
    if (!is_record && !bad) {
        /* The chunks, byte for byte: their AAD binds the header's protected
         * bucket, base IV and the file name, not the recipients. */
        if (lseek(fd, (off_t)len, SEEK_SET) != (off_t)len)
            bad = ar_err("%s: cannot seek: %s", name, strerror(errno));
        while (!bad) {
            ssize_t got = ar_read_full(fd, ar_pt, sizeof ar_pt);
            if (got < 0)
                bad = ar_err("%s: cannot read: %s", name, strerror(errno));
            else if (got > 0 && ar_write_full(out, ar_pt, (size_t)got) != 0)
                bad = ar_err("%s: cannot write %s: %s", name, tmp, strerror(errno));
            if (got <= 0)
                break;
            s->copied += (unsigned long long)got;
            s->pr.bytes += (unsigned long long)got;
            ar_progress(&s->pr, 0);
        }
    }
    if (bad) {
        ar_tmp_abort(dfd, out, tmp);
        s->failed++;
        return 0;
    }
    if (ar_tmp_commit(dfd, out, tmp, name, name) != 0) {
        s->failed++;
        return 0;
    }
    s->done++;
    s->pr.files++;
    ar_progress(&s->pr, 0);
    return 0;
}

int ar_cmd_rotate(const char *dir)
{
    rotate_state_t s;
    ar_kek_t cur, next;
    const ar_kek_t *to = &cur;
    unsigned stale = 0;
    int rc = AR_EXIT_OK, dfd, rdfd, make;
    char sz[32];

    dfd = ar_dir_open(dir, 1, &rc);
    if (dfd < 0)
        return rc;
    rc = ar_token_open();
    if (rc == AR_EXIT_OK)
        rc = ar_kek_latest(&cur, 0, NULL);
    if (rc != AR_EXIT_OK) {
        close(dfd);
        return rc;
    }
    stale += ar_remove_stale(dfd, AR_SUFFIX);
    rdfd = openat(dfd, AR_RECORDS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rdfd >= 0) {
        stale += ar_remove_stale(rdfd, AR_RECORD_SUFFIX);
        close(rdfd);
    }
    if (stale > 0)
        ar_note("removed %u stale temporary file%s of an interrupted run", stale,
                stale == 1 ? "" : "s");
    hsmc_cose_init(&ar_cose, &ar_h);

    /* Pass 1: how many envelopes are not on the latest version. Some are
     * when a rotation was interrupted: then finish that one first. */
    memset(&s, 0, sizeof s);
    s.kek = &cur;
    s.count_only = 1;
    ar_opt.walk_silent = 1; /* pass 2 reports what cannot be read */
    ar_walk(dfd, dir, rotate_one, &s);
    ar_opt.walk_silent = 0;
    make = ar_opt.new_version > 0 || (ar_opt.new_version == 0 && s.pending == 0);
    if (ar_opt.new_version == 0 && s.pending > 0)
        ar_note("%lu envelope%s not on %s yet (an interrupted rotation?): re-wrapping %s to "
                "it, no new version (--new-version makes one)",
                s.pending, s.pending == 1 ? " is" : "s are", cur.label,
                s.pending == 1 ? "it" : "them");
    if (make) {
        rc = ar_kek_rotate(&cur, &next);
        if (rc != AR_EXIT_OK) {
            close(dfd);
            return rc;
        }
        to = &next;
        ar_note("made KEK %s (%s)", next.label, ar_alg_name(next.alg));
    }

    /* Pass 2: re-wrap. */
    memset(&s, 0, sizeof s);
    s.kek = to;
    ar_progress_init(&s.pr, "rotate", 0, 0);
    ar_walk(dfd, dir, rotate_one, &s);
    ar_progress(&s.pr, 1);
    close(dfd);
    printf("rotated: %lu envelope%s re-wrapped to %s (%s), content untouched (%s of chunks "
           "copied as they were)",
           s.done, s.done == 1 ? "" : "s", to->label, ar_alg_name(to->alg),
           ar_size(s.copied, sz, sizeof sz));
    if (s.skipped > 0)
        printf("; %lu already on it", s.skipped);
    printf("\n");
    if (s.failed > 0) {
        ar_err("%lu envelope%s not re-wrapped (see above); %s unchanged", s.failed,
               s.failed == 1 ? "" : "s", s.failed == 1 ? "it is" : "they are");
        return AR_EXIT_FAIL;
    }
    return AR_EXIT_OK;
}
