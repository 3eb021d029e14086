/*
 * at_rest: the walk over a directory's envelopes, status, retire (delete a
 * KEK version only when nothing refers to it) and records (small values
 * as COSE_Encrypt bound to their id).
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

/* ---- walk -------------------------------------------------------------------------- */

/* Visit the entries of dfd ending with suffix. */
static int walk_dir(int dfd, const char *shown_dir, const char *suffix, int is_record,
                    ar_visit_fn fn, void *user)
{
    char shown[AR_NAME_MAX + 64];
    struct dirent *de;
    struct stat st;
    int fd2 = dup(dfd), rc = 0;
    DIR *d;

    if (fd2 < 0 || (d = fdopendir(fd2)) == NULL) {
        if (fd2 >= 0)
            close(fd2);
        return ar_err("%s: cannot list: %s", shown_dir, strerror(errno));
    }
    rewinddir(d);
    while (rc == 0 && (de = readdir(d)) != NULL) {
        size_t len = 0;
        int fd;
        if (de->d_name[0] == '.' || !ar_has_suffix(de->d_name, suffix))
            continue;
        fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue; /* gone, or a symlink: not an envelope of ours */
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            continue;
        }
        snprintf(shown, sizeof shown, "%s%s", is_record ? AR_RECORDS "/" : "", de->d_name);
        if (!is_record) {
            len = ar_read_header(fd, ar_opt.walk_silent ? NULL : shown, ar_in, AR_HDR_MAX);
        } else {
            ssize_t got = ar_read_full(fd, ar_in, AR_RECORD_FILE_MAX + 1);
            if (got >= 0 && (size_t)got <= AR_RECORD_FILE_MAX)
                len = (size_t)got;
            else if (!ar_opt.walk_silent)
                ar_err("%s: %s", shown,
                       got < 0 ? strerror(errno) : "larger than a record can be");
        }
        rc = fn(user, dfd, fd, de->d_name, is_record, ar_in, len);
        close(fd);
    }
    closedir(d);
    return rc;
}

int ar_walk(int dfd, const char *dir, ar_visit_fn fn, void *user)
{
    int rc = walk_dir(dfd, dir, AR_SUFFIX, 0, fn, user);
    int rdfd = openat(dfd, AR_RECORDS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rdfd >= 0) {
        if (rc == 0)
            rc = walk_dir(rdfd, AR_RECORDS, AR_RECORD_SUFFIX, 1, fn, user);
        close(rdfd);
    }
    return rc;
}

/* ---- references: which kid is used by how many envelopes -------------------------- */

#define REF_MAX 64

typedef struct ref {
    char kid[HSMC_MAX_LABEL_LEN + 1];
    unsigned long files, records;
    char example[AR_NAME_MAX + 16]; /* one envelope that refers to it */
} ref_t;

typedef struct refs {
    ref_t r[REF_MAX];
    size_t n;
    unsigned long files, records, unreadable, other; /* other: kids beyond REF_MAX */
} refs_t;

static refs_t refs; /* static: several KiB */

static ref_t *ref_find(const uint8_t *kid, size_t len)
{
    size_t i;
    for (i = 0; i < refs.n; i++)
        if (strlen(refs.r[i].kid) == len && memcmp(refs.r[i].kid, kid, len) == 0)
            return &refs.r[i];
    return NULL;
}

static ref_t *ref_label(const char *label)
{
    return ref_find((const uint8_t *)label, strlen(label));
}

/* Count msg's recipients by kid; --list prints one line per envelope. */
static int count_refs(void *user, int dfd, int fd, const char *name, int is_record,
                      const uint8_t *msg, size_t len)
{
    size_t i, count = 0;
    hsmc_view_t kid;
    int alg;

    (void)user;
    (void)dfd;
    (void)fd;
    if (len == 0) {
        refs.unreadable++;
        return 0;
    }
    if (is_record)
        refs.records++;
    else
        refs.files++;
    for (i = 0;; i++) {
        ref_t *r;
        hsmc_err_t e =
            hsmc_cose_recipient_at(&ar_cose, (hsmc_view_t){msg, len}, 0, i, &kid, &alg, &count);
        if (e != HSMC_OK) {
            if (i == 0 || i != count) {
                ar_err("%s%s: cannot read its recipients: %s", is_record ? AR_RECORDS "/" : "",
                       name, hsmc_err_name(e));
                refs.unreadable++;
            }
            break;
        }
        if (ar_opt.list) {
            char shown[AR_NAME_MAX + 16];
            snprintf(shown, sizeof shown, "%s%s", is_record ? AR_RECORDS "/" : "", name);
            printf("  %-32s %.*s (%s), %s %lu bytes\n", shown, (int)kid.len,
                   (const char *)kid.ptr, ar_alg_name(alg), is_record ? "record" : "header",
                   (unsigned long)len);
        }
        r = ref_find(kid.ptr, kid.len);
        if (r == NULL && refs.n < REF_MAX && kid.len <= HSMC_MAX_LABEL_LEN) {
            r = &refs.r[refs.n++];
            memset(r, 0, sizeof *r);
            memcpy(r->kid, kid.ptr, kid.len);
            snprintf(r->example, sizeof r->example, "%s%s", is_record ? AR_RECORDS "/" : "",
                     name);
        }
        if (r == NULL)
            refs.other++;
        else if (is_record)
            r->records++;
        else
            r->files++;
    }
    return 0;
}

static void refs_collect(int dfd, const char *dir)
{
    memset(&refs, 0, sizeof refs);
    hsmc_cose_init(&ar_cose, ar_token_given() ? &ar_h : NULL);
    ar_walk(dfd, dir, count_refs, NULL);
}

/* ---- status ------------------------------------------------------------------------- */

/* Plain files not sealed and stale temporaries of a directory. */
static void count_plain(int dfd, const char *tmp_suffix, unsigned long *plain,
                        unsigned long *stale)
{
    char pat[32];
    struct dirent *de;
    struct stat st;
    int fd2 = dup(dfd);
    DIR *d;

    if (fd2 < 0 || (d = fdopendir(fd2)) == NULL) {
        if (fd2 >= 0)
            close(fd2);
        return;
    }
    rewinddir(d);
    snprintf(pat, sizeof pat, "%s.tmp", tmp_suffix);
    while ((de = readdir(d)) != NULL) {
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (de->d_name[0] == '.') {
            if (stale != NULL && ar_has_suffix(de->d_name, pat))
                (*stale)++;
        } else if (plain != NULL && !ar_has_suffix(de->d_name, AR_SUFFIX)) {
            (*plain)++;
        }
    }
    closedir(d);
}

int ar_cmd_status(const char *dir)
{
    hsmc_rotation_plan_t plan;
    unsigned long plain = 0, stale = 0;
    int rc = AR_EXIT_OK, dfd, rdfd;
    size_t i;

    dfd = ar_dir_open(dir, 0, &rc);
    if (dfd < 0)
        return rc;
    if (ar_token_given()) {
        rc = ar_token_open();
        if (rc != AR_EXIT_OK) {
            close(dfd);
            return rc;
        }
    }
    if (ar_opt.list)
        printf("%s:\n", dir);
    refs_collect(dfd, dir);
    count_plain(dfd, AR_SUFFIX, &plain, &stale);
    rdfd = openat(dfd, AR_RECORDS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rdfd >= 0) {
        count_plain(rdfd, AR_RECORD_SUFFIX, NULL, &stale);
        close(rdfd);
    }
    close(dfd);
    printf("%s: %lu envelope%s, %lu record%s, %lu plain file%s not sealed, %lu stale "
           "temporar%s\n",
           dir, refs.files, refs.files == 1 ? "" : "s", refs.records,
           refs.records == 1 ? "" : "s", plain, plain == 1 ? "" : "s", stale,
           stale == 1 ? "y" : "ies");
    for (i = 0; i < refs.n; i++)
        printf("  %s: %lu envelope%s, %lu record%s\n", refs.r[i].kid, refs.r[i].files,
               refs.r[i].files == 1 ? "" : "s", refs.r[i].records,
               refs.r[i].records == 1 ? "" : "s");
    if (refs.other > 0)
        printf("  (%lu more recipients of other keys)\n", refs.other);
    if (refs.unreadable > 0)
        printf("  %lu unreadable (see above)\n", refs.unreadable);
    if (ar_token_given()) {
        char label[HSMC_MAX_LABEL_LEN + 1];
        hsmc_err_t e = hsmc_key_plan(&ar_h, ar_kek_base(), &plan);
        if (e != HSMC_OK && e != HSMC_ERR_LIMIT)
            return ar_fail(e, "cannot list the KEK versions");
        printf("KEK versions of %s on the token:", ar_kek_base());
        for (i = 0; i < plan.count; i++) {
            ref_t *r;
            hsmc_key_version_label(ar_kek_base(), plan.versions[i], label, sizeof label);
            r = ref_label(label);
            printf(" v%04u%s", plan.versions[i],
                   i + 1 == plan.count ? " (latest)"
                   : r == NULL         ? " (unused)"
                                       : "");
        }
        printf("%s\n", plan.count == 0 ? " none" : "");
    }
    return refs.unreadable > 0 ? AR_EXIT_FAIL : AR_EXIT_OK;
}

/* ---- retire ------------------------------------------------------------------------- */

/* Delete version v (damaged: it does not wrap). @return AR_EXIT_OK or
 * AR_EXIT_FAIL (printed). */
static int retire_one(unsigned v, int damaged)
{
    char label[HSMC_MAX_LABEL_LEN + 1];
    hsmc_key_t key;
    hsmc_err_t e;

    hsmc_key_version_label(ar_kek_base(), v, label, sizeof label);
    e = hsmc_key_open(&ar_h, label, &key);
    if (e == HSMC_OK)
        e = hsmc_key_delete(&ar_h, &key);
    if (e != HSMC_OK)
        return ar_fail(e, label);
    printf("retired %s: %sno envelope refers to it\n", label,
           damaged ? "damaged (it does not wrap) and " : "");
    return AR_EXIT_OK;
}

/* Why version v cannot go, or NULL when it can (text in buf). keep is the
 * latest working version. */
static const char *retire_refusal(unsigned v, unsigned keep, char *buf, size_t cap)
{
    char label[HSMC_MAX_LABEL_LEN + 1];
    ref_t *r;

    hsmc_key_version_label(ar_kek_base(), v, label, sizeof label);
    if (v == keep) {
        snprintf(buf, cap, "%s is the latest version: it is never retired (rotate first)",
                 label);
        return buf;
    }
    r = ref_label(label);
    if (r != NULL && r->files + r->records > 0) {
        unsigned long n = r->files + r->records;
        snprintf(buf, cap,
                 "%s is still referenced by %lu envelope%s (e.g. %s): run `at_rest rotate` "
                 "first",
                 label, n, n == 1 ? "" : "s", r->example);
        return buf;
    }
    return NULL;
}

int ar_cmd_retire(const char *dir)
{
    hsmc_rotation_plan_t plan;
    ar_kek_t latest;
    char why[AR_NAME_MAX + 200];
    const char *no;
    unsigned long retired = 0;
    unsigned keep;
    int rc = AR_EXIT_OK, dfd, damaged = 0;
    size_t i;
    hsmc_err_t e;

    if ((ar_opt.version != 0) == (ar_opt.all_unused != 0)) {
        ar_err("retire: give --version N or --all-unused");
        return AR_EXIT_USAGE;
    }
    dfd = ar_dir_open(dir, 1, &rc);
    if (dfd < 0)
        return rc;
    rc = ar_token_open();
    if (rc == AR_EXIT_OK)
        rc = ar_kek_latest(&latest, 0, &damaged);
    if (rc != AR_EXIT_OK) {
        close(dfd);
        return rc;
    }
    e = hsmc_key_plan(&ar_h, ar_kek_base(), &plan);
    if (e != HSMC_OK && e != HSMC_ERR_LIMIT) {
        close(dfd);
        ar_fail(e, "cannot list the KEK versions");
        return AR_EXIT_TOKEN;
    }
    /* The version never retired: the latest, or when that one is damaged
     * (does not wrap: nothing can refer to it), the one below it. */
    keep = latest.version;
    if (damaged) {
        keep = 0;
        for (i = 0; i < plan.count; i++)
            if (plan.versions[i] < latest.version)
                keep = plan.versions[i];
        ar_note("%s does not wrap (damaged: a key generation cut short?); it goes when "
                "nothing refers to it",
                latest.label);
    }
    /* Everything the directory refers to, under the lock: no seal or
     * rotate can add a reference while we decide. */
    refs_collect(dfd, dir);
    close(dfd);
    if (refs.unreadable > 0) {
        ar_err("%lu envelope%s cannot be read and might refer to any version: nothing "
               "retired (fix or remove %s first)",
               refs.unreadable, refs.unreadable == 1 ? "" : "s",
               refs.unreadable == 1 ? "it" : "them");
        return AR_EXIT_REFUSED;
    }
    if (ar_opt.version != 0) {
        int present = 0;
        for (i = 0; i < plan.count; i++)
            present |= plan.versions[i] == ar_opt.version;
        no = retire_refusal(ar_opt.version, keep, why, sizeof why);
        if (no != NULL) {
            ar_err("refused: %s", no);
            return AR_EXIT_REFUSED;
        }
        if (!present) {
            hsmc_key_version_label(ar_kek_base(), ar_opt.version, why, sizeof why);
            return ar_err("%s is not on the token (already retired?)", why);
        }
        return retire_one(ar_opt.version, damaged && ar_opt.version == latest.version);
    }
    for (i = 0; i < plan.count; i++) {
        unsigned v = plan.versions[i];
        no = retire_refusal(v, keep, why, sizeof why);
        if (no != NULL) {
            if (v != keep)
                printf("kept %s\n", no);
            continue;
        }
        if (retire_one(v, damaged && v == latest.version) != AR_EXIT_OK)
            rc = AR_EXIT_FAIL;
        else
            retired++;
    }
    if (retired == 0 && rc == AR_EXIT_OK)
        printf("nothing to retire: the latest version is the only unreferenced one\n");
    return rc;
}

/* ---- records ------------------------------------------------------------------------- */

int ar_id_valid(const char *id)
{
    size_t i, n = strlen(id);
    if (n == 0 || n > AR_ID_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return strcmp(id, ".") != 0 && strcmp(id, "..") != 0;
}

/* The external AAD of record id: the 7 bytes "record:" then the id's bytes
 * (no NUL). A record moved to another id's file fails to authenticate. */
static hsmc_view_t record_aad(const char *id, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "record:%s", id);
    return (hsmc_view_t){(const uint8_t *)buf, n > 0 ? (size_t)n : 0};
}

int ar_cmd_record_put(const char *dir, const char *id)
{
    char aad[8 + AR_ID_MAX + 1], name[AR_ID_MAX + 8], tmp[AR_ID_MAX + 16];
    hsmc_cose_recipient_t r;
    ar_kek_t k;
    size_t len = 0, n = 0;
    hsmc_err_t e;
    int rc = AR_EXIT_OK, dfd, rdfd, out;

    if (!ar_id_valid(id)) {
        ar_err("record id '%s': 1..%u of [A-Za-z0-9._-]", id, AR_ID_MAX);
        return AR_EXIT_USAGE;
    }
    if ((ar_opt.value != NULL) == (ar_opt.file != NULL)) {
        ar_err("record put: give --value TEXT or --file F");
        return AR_EXIT_USAGE;
    }
    if (ar_opt.value != NULL) {
        len = strlen(ar_opt.value);
        if (len > AR_RECORD_MAX) {
            ar_err("--value: %lu bytes; a record holds at most %u (seal large data as a file)",
                   (unsigned long)len, AR_RECORD_MAX);
            return AR_EXIT_USAGE;
        }
        memcpy(ar_pt, ar_opt.value, len);
    } else {
        int fd = open(ar_opt.file, O_RDONLY | O_CLOEXEC);
        ssize_t got = fd >= 0 ? ar_read_full(fd, ar_pt, AR_RECORD_MAX + 1) : -1;
        if (fd >= 0)
            close(fd);
        if (got < 0) {
            ar_err("--file %s: %s", ar_opt.file, strerror(errno));
            return AR_EXIT_USAGE;
        }
        if ((size_t)got > AR_RECORD_MAX) {
            ar_err("--file %s: larger than a record's %u bytes (seal it as a file)", ar_opt.file,
                   AR_RECORD_MAX);
            return AR_EXIT_USAGE;
        }
        len = (size_t)got;
    }
    dfd = ar_dir_open(dir, 1, &rc);
    if (dfd < 0)
        return rc;
    if (mkdirat(dfd, AR_RECORDS, 0700) != 0 && errno != EEXIST) {
        close(dfd);
        return ar_err("%s/%s: cannot make the directory: %s", dir, AR_RECORDS, strerror(errno));
    }
    rdfd = openat(dfd, AR_RECORDS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(dfd);
    if (rdfd < 0)
        return ar_err("%s/%s: %s", dir, AR_RECORDS, strerror(errno));
    rc = ar_token_open();
    if (rc == AR_EXIT_OK)
        rc = ar_kek_latest(&k, 1, NULL);
    if (rc != AR_EXIT_OK) {
        close(rdfd);
        memset(ar_pt, 0, len);
        return rc;
    }
    r.key = &k.key;
    r.alg = k.alg;
    hsmc_cose_init(&ar_cose, &ar_h);
    e = hsmc_cose_encrypt(&ar_cose, &r, 1, record_aad(id, aad, sizeof aad),
                          (hsmc_view_t){ar_pt, len}, ar_out, sizeof ar_out, &n);
    memset(ar_pt, 0, len);
    if (e != HSMC_OK) {
        close(rdfd);
        return ar_fail(e, "cannot encrypt the record");
    }
    snprintf(name, sizeof name, "%s" AR_RECORD_SUFFIX, id);
    snprintf(tmp, sizeof tmp, ".%s.tmp", name);
    out = ar_tmp_create(rdfd, tmp, name);
    if (out < 0) {
        close(rdfd);
        return AR_EXIT_FAIL;
    }
    if (ar_write_full(out, ar_out, n) != 0) {
        ar_err("%s: cannot write: %s", tmp, strerror(errno));
        ar_tmp_abort(rdfd, out, tmp);
        close(rdfd);
        return AR_EXIT_FAIL;
    }
    rc = ar_tmp_commit(rdfd, out, tmp, name, name) == 0 ? AR_EXIT_OK : AR_EXIT_FAIL;
    close(rdfd);
    if (rc == AR_EXIT_OK)
        printf("record %s stored (%lu bytes) under %s (%s)\n", id, (unsigned long)len, k.label,
               ar_alg_name(k.alg));
    return rc;
}

int ar_cmd_record_get(const char *dir, const char *id)
{
    char aad[8 + AR_ID_MAX + 1], path[AR_ID_MAX + 16];
    size_t n = 0;
    ssize_t got;
    hsmc_err_t e;
    int rc = AR_EXIT_OK, dfd, fd;

    if (!ar_id_valid(id)) {
        ar_err("record id '%s': 1..%u of [A-Za-z0-9._-]", id, AR_ID_MAX);
        return AR_EXIT_USAGE;
    }
    dfd = ar_dir_open(dir, 0, &rc);
    if (dfd < 0)
        return rc;
    snprintf(path, sizeof path, AR_RECORDS "/%s" AR_RECORD_SUFFIX, id);
    fd = openat(dfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    close(dfd);
    if (fd < 0)
        return ar_err("%s/%s: %s", dir, path,
                      errno == ENOENT ? "no such record" : strerror(errno));
    got = ar_read_full(fd, ar_in, AR_RECORD_FILE_MAX + 1);
    close(fd);
    if (got < 0 || (size_t)got > AR_RECORD_FILE_MAX)
        return ar_err("%s/%s: %s", dir, path, got < 0 ? strerror(errno) : "too large for a record");
    rc = ar_token_open();
    if (rc != AR_EXIT_OK)
        return rc;
    hsmc_cose_init(&ar_cose, &ar_h);
    e = hsmc_cose_decrypt(&ar_cose, (hsmc_view_t){ar_in, (size_t)got},
                          record_aad(id, aad, sizeof aad), 0, ar_pt, sizeof ar_pt, &n, NULL);
    if (e == HSMC_ERR_DECRYPT) {
        ar_err("%s: refused: %s: it does not belong to record id '%s' (copied or renamed from "
               "another record) or it was altered",
               path, hsmc_err_name(e), id);
        return AR_EXIT_FAIL;
    }
    if (e != HSMC_OK) {
        ar_fail(e, path);
        ar_err("  hint: %s", ar_open_hint(e));
        return AR_EXIT_FAIL;
    }
    if (fwrite(ar_pt, 1, n, stdout) != n || fflush(stdout) != 0)
        rc = ar_err("cannot write the value: %s", strerror(errno));
    memset(ar_pt, 0, n);
    return rc;
}
