/*
 * TLS 1.2 with token keys (hsmc_tls_setup + hsmc_pk_bind) against openssl,
 * on 127.0.0.1 only:
 * - an mbedTLS client authenticating with a token key (EC P-256, RSA-2048)
 *   completes a handshake with `openssl s_server -Verify 1`, which reports
 *   the client certificate's subject;
 * - an mbedTLS server with a token key serves `openssl s_client -cert
 *   -key -verify_return_error`; both sides see the peer.
 * Certificates: a software root CA made by openssl; the token keys' CSRs
 * made by hsmc_csr_create and signed by `openssl x509 -req` (which also
 * checks those CSRs). openssl processes are started by the test, stopped by
 * PID, and every wait is bounded.
 * Also: hsmc_tls_setup argument checks and the key/certificate match.
 * With HSMC_X509_MEASURE=tls only one P-256 client handshake runs (heap
 * measurement by test/scripts/test_x509_heap.sh).
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "hsmc_test.h"
#include "hsmc/x509.h"

static hsmc_t H;
static volatile pid_t CHILD; /* the running openssl process, for the alarm handler */

/* ---- helpers ------------------------------------------------------------ */

static void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* A port on 127.0.0.1 that was free a moment ago. */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Start argv with stdout+stderr to `log` and stdin from a pipe we keep open
 * (openssl's s_server/s_client end their connection at EOF on stdin). */
static pid_t spawn(char *const argv[], const char *log, int *stdin_w)
{
    int p[2], fd;
    pid_t pid;

    unlink(log); /* a log of an earlier run must not answer wait_for() */
    if (pipe(p) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(p[0], 0);
        dup2(fd, 1);
        dup2(fd, 2);
        close(p[0]);
        close(p[1]);
        close(fd);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[0]);
    *stdin_w = p[1];
    CHILD = pid;
    return pid;
}

/* Close the child's stdin, give it wait_ms to exit, then SIGTERM, then
 * SIGKILL. @return its exit status (-1 when it had to be killed). */
static int stop(pid_t pid, int stdin_w, long wait_ms)
{
    int st = 0;
    long waited;

    if (stdin_w >= 0)
        close(stdin_w);
    if (pid <= 0)
        return -1;
    for (waited = 0; waited < wait_ms; waited += 20) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            CHILD = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        sleep_ms(20);
    }
    kill(pid, SIGTERM);
    for (waited = 0; waited < 2000; waited += 20) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            CHILD = 0;
            return -1;
        }
        sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    CHILD = 0;
    return -1;
}

/* Wait (bounded) until `log` contains text. */
static int wait_for(const char *log, const char *text, long ms)
{
    long waited;
    for (waited = 0; waited < ms; waited += 20) {
        if (hsmc_test_file_has(log, text))
            return 1;
        sleep_ms(20);
    }
    return 0;
}

static void on_alarm(int sig)
{
    (void)sig;
    if (CHILD > 0)
        kill(CHILD, SIGKILL);
    _exit(3);
}

/* ---- certificates ------------------------------------------------------- */

typedef struct {
    hsmc_key_alg_t alg;
    const char *name; /* key label and certificate CN */
    int ok;
    hsmc_key_t key;
} tkey_t;

static tkey_t TK[] = {
    {.alg = HSMC_ALG_P256, .name = "tls-token-ec"},
    {.alg = HSMC_ALG_RSA2048, .name = "tls-token-rsa"},
};
#define NTK (sizeof TK / sizeof TK[0])

static int CA_OK;

static int make_ca(void)
{
    static const char cnf[] =
        "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3_ca\n"
        "[dn]\nCN = hsmc test root\n"
        "[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n";
    static const char ext[] =
        "[server]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
        "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost,IP:127.0.0.1\n"
        "[client]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
        "extendedKeyUsage = clientAuth\n";
    const char *sw[2] = {"server", "client"};
    int i;

    if (!hsmc_test_write_file(hsmc_test_path("root.cnf"), cnf, sizeof cnf - 1) ||
        !hsmc_test_write_file(hsmc_test_path("leaf.ext"), ext, sizeof ext - 1))
        return 0;
    if (!hsmc_test_sh(
            "openssl req -x509 -config %s -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
            "-keyout %s -out %s -days 2",
            hsmc_test_path("root.cnf"), hsmc_test_path("root.key"), hsmc_test_path("root.pem")))
        return 0;
    /* openssl's own server and client identities (software keys) */
    for (i = 0; i < 2; i++) {
        if (!hsmc_test_sh(
                "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "
                "%s/sw-%s.key -out %s/sw-%s.csr -subj /CN=openssl-%s",
                hsmc_test_env("HSMC_TEST_DIR"), sw[i], hsmc_test_env("HSMC_TEST_DIR"), sw[i],
                sw[i]) ||
            !hsmc_test_sh(
                "openssl x509 -req -in %s/sw-%s.csr -CA %s -CAkey %s -set_serial %d -days 2 "
                "-extfile %s -extensions %s -out %s/sw-%s.pem",
                hsmc_test_env("HSMC_TEST_DIR"), sw[i], hsmc_test_path("root.pem"),
                hsmc_test_path("root.key"), 100 + i, hsmc_test_path("leaf.ext"), sw[i],
                hsmc_test_env("HSMC_TEST_DIR"), sw[i]))
            return 0;
    }
    return 1;
}

/* Token key + its certificate "<name>-<role>.pem": CSR by hsmc, signed by openssl. */
static int make_token_cert(tkey_t *t, const char *role, int serial)
{
    static uint8_t csr[4096];
    hsmc_csr_req_t req;
    char csr_name[96], pem_name[96];
    size_t len = 0;
    hsmc_err_t err;

    hsmc_csr_req_init(&req);
    req.cn = t->name;
    req.o = "hsmc tests";
    err = hsmc_csr_create(&H, &t->key, &req, HSMC_X509_PEM, csr, sizeof csr, &len);
    if (err != HSMC_OK) {
        fprintf(stderr, "csr %s: %s: %s\n", t->name, hsmc_err_name(err), hsmc_detail(&H));
        return 0;
    }
    snprintf(csr_name, sizeof csr_name, "%s-%s.csr", t->name, role);
    snprintf(pem_name, sizeof pem_name, "%s-%s.pem", t->name, role);
    return hsmc_test_write_file(hsmc_test_path(csr_name), csr, len) &&
           hsmc_test_sh(
               "openssl x509 -req -in %s -CA %s -CAkey %s -set_serial %d -days 2 -extfile %s "
               "-extensions %s -out %s",
               hsmc_test_path(csr_name), hsmc_test_path("root.pem"), hsmc_test_path("root.key"),
               serial, hsmc_test_path("leaf.ext"), role, hsmc_test_path(pem_name)) &&
           hsmc_test_sh("openssl verify -CAfile %s %s", hsmc_test_path("root.pem"),
                        hsmc_test_path(pem_name));
}

static void test_setup(void)
{
    size_t i;

    CA_OK = make_ca();
    REQUIRE(CA_OK);
    for (i = 0; i < NTK; i++) {
        CHECK_ERR(hsmc_test_gen(&H, TK[i].name, TK[i].alg, HSMC_USE_SIGN, &TK[i].key), HSMC_OK);
        TK[i].ok = make_token_cert(&TK[i], "client", 10 + (int)i) &&
                   make_token_cert(&TK[i], "server", 20 + (int)i);
        CHECK(TK[i].ok);
    }
}

/* ---- mbedTLS endpoint with a token key ------------------------------------ */

typedef struct {
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt chain, ca;
    mbedtls_pk_context pk;
    hsmc_rng_t rng;
    mbedtls_net_context net, listen;
} ep_t;

static void ep_init(ep_t *e)
{
    mbedtls_ssl_init(&e->ssl);
    mbedtls_ssl_config_init(&e->conf);
    mbedtls_x509_crt_init(&e->chain);
    mbedtls_x509_crt_init(&e->ca);
    mbedtls_pk_init(&e->pk);
    mbedtls_net_init(&e->net);
    mbedtls_net_init(&e->listen);
    memset(&e->rng, 0, sizeof e->rng);
}

static void ep_free(ep_t *e)
{
    mbedtls_net_free(&e->net);
    mbedtls_net_free(&e->listen);
    mbedtls_ssl_free(&e->ssl);
    mbedtls_ssl_config_free(&e->conf);
    mbedtls_x509_crt_free(&e->chain);
    mbedtls_x509_crt_free(&e->ca);
    hsmc_pk_unbind(&e->pk);
    hsmc_rng_free(&e->rng);
}

/* Bind the key, load its chain and the root, configure. */
static int ep_setup(ep_t *e, tkey_t *t, int endpoint, const char *role)
{
    hsmc_tls_cfg_t cfg;
    char pem_name[96];
    hsmc_err_t err;

    snprintf(pem_name, sizeof pem_name, "%s-%s.pem", t->name, role);
    if (mbedtls_x509_crt_parse_file(&e->chain, hsmc_test_path(pem_name)) != 0 ||
        mbedtls_x509_crt_parse_file(&e->ca, hsmc_test_path("root.pem")) != 0)
        return 0;
    if (hsmc_rng_init(&e->rng, &H) != HSMC_OK || hsmc_pk_bind(&H, &t->key, &e->pk) != HSMC_OK)
        return 0;
    hsmc_tls_cfg_init(&cfg);
    cfg.endpoint = endpoint;
    cfg.key = &e->pk;
    cfg.chain = &e->chain;
    cfg.ca = &e->ca;
    cfg.rng = &e->rng;
    err = hsmc_tls_setup(&H, &e->conf, &cfg);
    if (err != HSMC_OK) {
        fprintf(stderr, "hsmc_tls_setup: %s: %s\n", hsmc_err_name(err), hsmc_detail(&H));
        return 0;
    }
    mbedtls_ssl_conf_read_timeout(&e->conf, 10000);
    return mbedtls_ssl_setup(&e->ssl, &e->conf) == 0;
}

static int ep_handshake(ep_t *e)
{
    int ret = -1, i;
    mbedtls_ssl_set_bio(&e->ssl, &e->net, mbedtls_net_send, NULL, mbedtls_net_recv_timeout);
    for (i = 0; i < 1000; i++) {
        ret = mbedtls_ssl_handshake(&e->ssl);
        if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
            break;
    }
    if (ret != 0) {
        char text[128];
        mbedtls_strerror(ret, text, sizeof text);
        fprintf(stderr, "handshake: -0x%04X %s (pk: %s; %s)\n", (unsigned)-ret, text,
                hsmc_err_name(hsmc_pk_last_err(&e->pk)), hsmc_detail(&H));
    }
    return ret;
}

/* Subject CN of the peer as mbedTLS sees it, in out. */
static int peer_subject(ep_t *e, char *out, size_t cap)
{
    const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&e->ssl);
    return peer != NULL && mbedtls_x509_dn_gets(out, cap, &peer->subject) > 0;
}

/* The openssl side of one handshake: a port on 127.0.0.1 and its address,
 * the log DIR/<tool>-<key name>.log, the root and openssl's identity
 * sw-<role>.pem/.key. */
typedef struct {
    char port[16], addr[40], log[512], ca[512], cert[512], key[512];
} peer_t;

/* @return 0 when no free port was found. */
static int peer_init(peer_t *o, const char *tool, const tkey_t *t, const char *role)
{
    char name[64];
    int p;

    snprintf(o->log, sizeof o->log, "%s/%s-%s.log", hsmc_test_env("HSMC_TEST_DIR"), tool,
             t->name);
    p = free_port();
    snprintf(o->port, sizeof o->port, "%d", p);
    snprintf(o->addr, sizeof o->addr, "127.0.0.1:%d", p);
    snprintf(o->ca, sizeof o->ca, "%s", hsmc_test_path("root.pem"));
    snprintf(name, sizeof name, "sw-%s.pem", role);
    snprintf(o->cert, sizeof o->cert, "%s", hsmc_test_path(name));
    snprintf(name, sizeof name, "sw-%s.key", role);
    snprintf(o->key, sizeof o->key, "%s", hsmc_test_path(name));
    return p > 0;
}

/* mbedTLS client with the token key -> openssl s_server -Verify 1. */
static void client_run(tkey_t *t, int quiet)
{
    peer_t o;
    char subj[256], want[128];
    char *argv[] = {"openssl", "s_server", "-accept", o.addr, "-Verify", "1", "-CAfile", o.ca,
                    "-cert", o.cert, "-key", o.key, "-tls1_2", "-naccept", "1", NULL};
    int stdin_w = -1, st;
    pid_t pid;
    ep_t e;

    REQUIRE(peer_init(&o, "s_server", t, "server"));
    pid = spawn(argv, o.log, &stdin_w);
    REQUIRE(pid > 0);
    if (!wait_for(o.log, "ACCEPT", 10000)) {
        hsmc_test_show_file(o.log);
        stop(pid, stdin_w, 0);
        CHECK(0);
        return;
    }

    ep_init(&e);
    CHECK(ep_setup(&e, t, MBEDTLS_SSL_IS_CLIENT, "client"));
    CHECK(mbedtls_ssl_set_hostname(&e.ssl, "localhost") == 0);
    CHECK(mbedtls_net_connect(&e.net, "127.0.0.1", o.port, MBEDTLS_NET_PROTO_TCP) == 0);
    if (quiet)
        fprintf(stderr, "HSMC_MEASURE_BEGIN\n");
    CHECK(ep_handshake(&e) == 0);
    if (quiet)
        fprintf(stderr, "HSMC_MEASURE_END\n");
    CHECK(mbedtls_ssl_get_verify_result(&e.ssl) == 0);
    CHECK(peer_subject(&e, subj, sizeof subj) && strcmp(subj, "CN=openssl-server") == 0);
    if (!quiet)
        fprintf(stderr, "note %s: %s: %s, server %s\n", hsmc_test_name, t->name,
                mbedtls_ssl_get_ciphersuite(&e.ssl), subj);
    CHECK(mbedtls_ssl_write(&e.ssl, (const unsigned char *)"hello from hsmc\n", 16) == 16);
    /* the server prints what it received, after the handshake output */
    CHECK(wait_for(o.log, "hello from hsmc", 10000));
    (void)mbedtls_ssl_close_notify(&e.ssl);
    ep_free(&e);
    st = stop(pid, stdin_w, 5000);
    (void)st;
    /* s_server saw and verified the token key's certificate */
    snprintf(want, sizeof want, "CN = %s", t->name);
    CHECK(hsmc_test_file_has(o.log, "depth=0 O = hsmc tests, CN = ") ||
          hsmc_test_file_has(o.log, want));
    CHECK(hsmc_test_file_has(o.log, "verify return:1"));
    snprintf(want, sizeof want, "subject=O = hsmc tests, CN = %s", t->name);
    if (!hsmc_test_file_has(o.log, want)) {
        fprintf(stderr, "s_server output lacks '%s':\n", want);
        hsmc_test_show_file(o.log);
    }
    CHECK(hsmc_test_file_has(o.log, want));
}

/* mbedTLS server with the token key <- openssl s_client -cert -key. */
static void server_run(tkey_t *t)
{
    peer_t o;
    char subj[256], want[128];
    char *argv[] = {"openssl", "s_client", "-connect", o.addr, "-cert", o.cert, "-key", o.key,
                    "-CAfile", o.ca, "-verify_return_error", "-tls1_2", "-servername",
                    "localhost", NULL};
    int stdin_w = -1, st;
    pid_t pid;
    ep_t e;

    REQUIRE(peer_init(&o, "s_client", t, "client"));

    ep_init(&e);
    CHECK(ep_setup(&e, t, MBEDTLS_SSL_IS_SERVER, "server"));
    REQUIRE(mbedtls_net_bind(&e.listen, "127.0.0.1", o.port, MBEDTLS_NET_PROTO_TCP) == 0);
    pid = spawn(argv, o.log, &stdin_w);
    REQUIRE(pid > 0);
    if (mbedtls_net_poll(&e.listen, MBEDTLS_NET_POLL_READ, 10000) <= 0 ||
        mbedtls_net_accept(&e.listen, &e.net, NULL, 0, NULL) != 0) {
        fprintf(stderr, "s_client did not connect\n");
        hsmc_test_show_file(o.log);
        stop(pid, stdin_w, 0);
        ep_free(&e);
        CHECK(0);
        return;
    }
    CHECK(ep_handshake(&e) == 0);
    CHECK(mbedtls_ssl_get_verify_result(&e.ssl) == 0);
    CHECK(peer_subject(&e, subj, sizeof subj) && strcmp(subj, "CN=openssl-client") == 0);
    fprintf(stderr, "note %s: %s: %s, client %s\n", hsmc_test_name, t->name,
            mbedtls_ssl_get_ciphersuite(&e.ssl), subj);
    CHECK(mbedtls_ssl_write(&e.ssl, (const unsigned char *)"hello from the hsmc server\n", 27) ==
          27);
    CHECK(wait_for(o.log, "hello from the hsmc server", 10000));
    (void)mbedtls_ssl_close_notify(&e.ssl);
    ep_free(&e);
    st = stop(pid, stdin_w, 5000);
    if (st != 0)
        hsmc_test_show_file(o.log);
    CHECK(st == 0);
    CHECK(hsmc_test_file_has(o.log, "Verify return code: 0 (ok)"));
    snprintf(want, sizeof want, "subject=O = hsmc tests, CN = %s", t->name);
    CHECK(hsmc_test_file_has(o.log, want));
}

static void test_tls_client(void)
{
    size_t i;
    REQUIRE(CA_OK);
    for (i = 0; i < NTK; i++) {
        if (TK[i].ok)
            client_run(&TK[i], 0);
    }
}

static void test_tls_server(void)
{
    size_t i;
    REQUIRE(CA_OK);
    for (i = 0; i < NTK; i++) {
        if (TK[i].ok)
            server_run(&TK[i]);
    }
}

/* Argument checks of hsmc_tls_setup and the RNG. */
static void test_tls_setup_bad(void)
{
    ep_t e;
    mbedtls_x509_crt other;
    mbedtls_pk_context sw;
    hsmc_tls_cfg_t cfg;
    unsigned char buf[64];

    REQUIRE(TK[0].ok && TK[1].ok);
    ep_init(&e);
    mbedtls_x509_crt_init(&other);
    mbedtls_pk_init(&sw);
    REQUIRE(mbedtls_x509_crt_parse_file(&e.chain, hsmc_test_path("tls-token-ec-client.pem")) == 0);
    REQUIRE(mbedtls_x509_crt_parse_file(&other, hsmc_test_path("tls-token-rsa-client.pem")) == 0);
    REQUIRE(mbedtls_x509_crt_parse_file(&e.ca, hsmc_test_path("root.pem")) == 0);
    REQUIRE(hsmc_pk_bind(&H, &TK[0].key, &e.pk) == HSMC_OK);

    CHECK_ERR(hsmc_rng_init(NULL, &H), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_rng_init(&e.rng, NULL), HSMC_ERR_ARG);
    REQUIRE(hsmc_rng_init(&e.rng, &H) == HSMC_OK);
    CHECK(hsmc_rng_random(&e.rng, buf, sizeof buf) == 0);
    CHECK(hsmc_token_random(&H, buf, sizeof buf) == 0);
    CHECK(hsmc_token_random(NULL, buf, sizeof buf) != 0);

    hsmc_tls_cfg_init(&cfg);
    cfg.key = &e.pk;
    cfg.chain = &e.chain;
    cfg.ca = &e.ca;
    cfg.rng = &e.rng;
    CHECK_ERR(hsmc_tls_setup(NULL, &e.conf, &cfg), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_tls_setup(&H, NULL, &cfg), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_tls_setup(&H, &e.conf, NULL), HSMC_ERR_ARG);
    cfg.endpoint = 7;
    CHECK_ERR(hsmc_tls_setup(&H, &e.conf, &cfg), HSMC_ERR_ARG);
    cfg.endpoint = MBEDTLS_SSL_IS_CLIENT;
    cfg.verify = (hsmc_tls_verify_t)9;
    CHECK_ERR(hsmc_tls_setup(&H, &e.conf, &cfg), HSMC_ERR_ARG);
    cfg.verify = HSMC_TLS_VERIFY_REQUIRED;
    cfg.rng = NULL;
    CHECK_ERR(hsmc_tls_setup(&H, &e.conf, &cfg), HSMC_ERR_ARG);
    cfg.rng = &e.rng;
    cfg.ca = NULL; /* verification without trust anchors */
    CHECK_ERR(hsmc_tls_setup(&H, &e.conf, &cfg), HSMC_ERR_ARG);
    cfg.ca = &e.ca;
    cfg.chain = NULL;
    CHECK_ERR(hsmc_tls_setup(&H, &e.conf, &cfg), HSMC_ERR_ARG);
    cfg.chain = &other; /* the RSA key's certificate with the EC key */
    CHECK_ERR(hsmc_tls_setup(&H, &e.conf, &cfg), HSMC_ERR_KEY_USAGE);
    CHECK(strstr(hsmc_detail(&H), "not for this key") != NULL);
    cfg.chain = &e.chain;
    cfg.key = &sw; /* not bound */
    CHECK_ERR(hsmc_tls_setup(&H, &e.conf, &cfg), HSMC_ERR_ARG);
    cfg.key = NULL;
    cfg.chain = NULL;
    cfg.endpoint = MBEDTLS_SSL_IS_SERVER; /* a server needs a key */
    CHECK_ERR(hsmc_tls_setup(&H, &e.conf, &cfg), HSMC_ERR_ARG);
    cfg.endpoint = MBEDTLS_SSL_IS_CLIENT; /* a client without certificate is fine */
    CHECK_ERR(hsmc_tls_setup(&H, &e.conf, &cfg), HSMC_OK);
    mbedtls_ssl_config_free(&e.conf);
    mbedtls_ssl_config_init(&e.conf);
    cfg.key = &e.pk;
    cfg.chain = &e.chain;
    cfg.verify = HSMC_TLS_VERIFY_NONE;
    cfg.ca = NULL;
    CHECK_ERR(hsmc_tls_setup(&H, &e.conf, &cfg), HSMC_OK);

    mbedtls_x509_crt_free(&other);
    mbedtls_pk_free(&sw);
    ep_free(&e);
}

/* HSMC_X509_MEASURE=tls: one P-256 client handshake. The token key's
 * certificate is made by openssl from the exported public key, so mbedTLS
 * works only for the handshake (and the certificate parsing it needs). */
static int measure_tls(void)
{
    static uint8_t spki[600];
    size_t len = 0;
    tkey_t *t = &TK[0];

    hsmc_test_name = "measure_tls";
    if (!make_ca())
        return 1;
    if (hsmc_test_gen(&H, t->name, t->alg, HSMC_USE_SIGN, &t->key) != HSMC_OK ||
        hsmc_key_export_pub(&H, &t->key, spki, sizeof spki, &len) != HSMC_OK ||
        !hsmc_test_write_file(hsmc_test_path("tok.spki"), spki, len) ||
        !hsmc_test_sh("openssl pkey -pubin -inform DER -in %s -out %s", hsmc_test_path("tok.spki"),
                      hsmc_test_path("tok.pub")) ||
        !hsmc_test_sh(
            "openssl x509 -new -force_pubkey %s -subj '/O=hsmc tests/CN=%s' -CA %s -CAkey %s "
            "-set_serial 7 -days 2 -extfile %s -extensions client -out %s",
            hsmc_test_path("tok.pub"), t->name, hsmc_test_path("root.pem"),
            hsmc_test_path("root.key"), hsmc_test_path("leaf.ext"),
            hsmc_test_path("tls-token-ec-client.pem")))
        return 1;
    client_run(t, 1);
    return hsmc_test_cur_failed;
}

int main(void)
{
    const char *m = getenv("HSMC_X509_MEASURE");
    int rc;

    setvbuf(stderr, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm(m != NULL ? 600 : 240); /* the whole run is bounded; valgrind is slow */
    hsmc_test_open(&H, "test", NULL);
    if (m != NULL && strcmp(m, "tls") == 0) {
        rc = measure_tls();
        hsmc_close(&H);
        return rc;
    }
    RUN(test_setup);
    RUN(test_tls_client);
    RUN(test_tls_server);
    RUN(test_tls_setup_bad);
    hsmc_close(&H);
    return TEST_END();
}
