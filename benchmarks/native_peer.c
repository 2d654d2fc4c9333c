/* A native-speed HTTP/1.1 peer for the benchmarks (compiled by limits.py with gcc).
 *
 *   native_peer serve PORTFILE ROOT LOG [CERT KEY]
 *       Listens on 127.0.0.1 (any free port, written to PORTFILE); TLS with CERT/KEY.
 *       One forked process per connection, keep-alive.
 *       PUT /<anything>[?etag=<hex>]: needs Content-Length (411 without, 501 if
 *           chunked), answers "100 Continue" to Expect, reads exactly Content-Length
 *           bytes and throws them away (plain: recv(MSG_TRUNC), no copy at all; TLS:
 *           SSL_read into one 1 MiB buffer), answers 200 with ETag "<etag>" (the
 *           harness passes the file's MD5: the sink does not hash, it must stay fast).
 *       GET /<name>: the file ROOT/<name> with Content-Length (plain: sendfile(2);
 *           TLS: pread + SSL_write in 1 MiB blocks).
 *       Each request appends "METHOD PATH LENGTH MOVED STATUS CPU" to LOG (CPU: the
 *       connection's process's user+system seconds so far).
 *   native_peer put PORT PATH FILE [tls]   the sink's ceiling: sends FILE as a PUT
 *       body (plain: sendfile(2), zero-copy; TLS: SSL_write of one 1 MiB buffer read
 *       once, so no file reads at all); prints "<seconds> <status>".
 *   native_peer get PORT PATH [tls]        the source's ceiling: GETs PATH and
 *       throws the body away (plain: recv(MSG_TRUNC); TLS: SSL_read); prints
 *       "<seconds> <bytes>".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (1024 * 1024)
#define HEAD_MAX 16384

static SSL *ssl; /* NULL: plain */
static int fd;

static void die(const char *what) {
    perror(what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static ssize_t rd(void *buf, size_t n) {
    if (ssl) {
        int got = SSL_read(ssl, buf, n > (size_t)1 << 30 ? 1 << 30 : (int)n);
        return got > 0 ? got : 0;
    }
    ssize_t got;
    do got = recv(fd, buf, n, 0); while (got < 0 && errno == EINTR);
    return got;
}

static int wr(const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t put;
        if (ssl) {
            int w = SSL_write(ssl, p, n > (size_t)1 << 30 ? 1 << 30 : (int)n);
            put = w > 0 ? w : -1;
        } else {
            put = send(fd, p, n, MSG_NOSIGNAL);
        }
        if (put < 0) {
            if (!ssl && errno == EINTR) continue;
            return -1;
        }
        p += put;
        n -= (size_t)put;
    }
    return 0;
}

/* Discard exactly n body bytes; returns how many arrived. */
static long long discard(long long n, char *buf) {
    long long got = 0;
    while (got < n) {
        long long want = n - got > BLOCK ? BLOCK : n - got;
        ssize_t r;
        if (ssl) {
            r = rd(buf, (size_t)want);
        } else {
            do r = recv(fd, NULL, (size_t)want, MSG_TRUNC); while (r < 0 && errno == EINTR);
        }
        if (r <= 0) break;
        got += r;
    }
    return got;
}

/* Read a request or response head into head (NUL-terminated); extra body bytes
 * already read are left after it: *extra bytes at head + *head_len. */
static int read_head(char *head, int *head_len, int *extra) {
    int len = 0;
    while (len < HEAD_MAX - 1) {
        ssize_t got = rd(head + len, (size_t)(HEAD_MAX - 1 - len));
        if (got <= 0) return -1;
        len += (int)got;
        head[len] = 0;
        char *end = strstr(head, "\r\n\r\n");
        if (end) {
            *head_len = (int)(end - head) + 4;
            *extra = len - *head_len;
            return 0;
        }
    }
    return -1;
}

static const char *header(const char *head, const char *name) {
    size_t n = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, name, n) == 0 && line[2 + n] == ':') {
            const char *v = line + 3 + n;
            while (*v == ' ') v++;
            return v;
        }
    }
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

/* One line per request; CPU is this connection's process's user+system seconds so far
 * (the harness compares it with the transfer's wall time: a busy sink would show it). */
static void logline(const char *log, const char *method, const char *path, long long length,
                    long long moved, int status) {
    FILE *f = fopen(log, "a");
    if (!f) return;
    fprintf(f, "%s %s %lld %lld %d %.6f\n", method, path, length, moved, status, cpu_seconds());
    fclose(f);
}

static void answer(int status, const char *reason, const char *etag, int close_after) {
    char out[512];
    int n = snprintf(out, sizeof out, "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: 0\r\n%s\r\n", status,
                     reason, etag ? "ETag: \"" : "", etag ? etag : "", etag ? "\"\r\n" : "",
                     close_after ? "Connection: close\r\n" : "");
    wr(out, (size_t)n);
}

static void serve_connection(const char *root, const char *log) {
    char head[HEAD_MAX];
    char *buf = malloc(BLOCK);
    for (;;) {
        int head_len, extra;
        if (read_head(head, &head_len, &extra) < 0) break;
        char method[16], target[4096];
        if (sscanf(head, "%15s %4095s", method, target) != 2) break;
        char path[4096];
        snprintf(path, sizeof path, "%s", target);
        char *query = strchr(path, '?');
        if (query) *query++ = 0;
        if (strcmp(method, "PUT") == 0) {
            const char *te = header(head, "Transfer-Encoding");
            const char *cl = header(head, "Content-Length");
            if (te && strncasecmp(te, "chunked", 7) == 0) {
                logline(log, method, path, -1, 0, 501);
                answer(501, "Not Implemented", NULL, 1);
                break;
            }
            if (!cl) {
                logline(log, method, path, -1, 0, 411);
                answer(411, "Length Required", NULL, 1);
                break;
            }
            long long length = atoll(cl);
            const char *expect = header(head, "Expect");
            if (expect && strncasecmp(expect, "100-continue", 12) == 0)
                wr("HTTP/1.1 100 Continue\r\n\r\n", 25);
            long long got = extra > length ? length : extra;
            got += discard(length - got, buf);
            char etag[128];
            const char *given = query ? strstr(query, "etag=") : NULL;
            if (given) {
                snprintf(etag, sizeof etag, "%.*s", (int)strcspn(given + 5, "&"), given + 5);
            } else {
                snprintf(etag, sizeof etag, "native-%lld", got);
            }
            int status = got == length ? 200 : 400;
            logline(log, method, path, length, got, status);
            answer(status, status == 200 ? "OK" : "Bad Request", etag, status != 200);
            if (status != 200) break;
        } else if (strcmp(method, "GET") == 0) {
            const char *name = path + 1;
            if (strchr(name, '/') || strstr(name, "..") || !*name) {
                answer(404, "Not Found", NULL, 1);
                break;
            }
            char file[8192];
            snprintf(file, sizeof file, "%s/%s", root, name);
            int in = open(file, O_RDONLY);
            struct stat st;
            if (in < 0 || fstat(in, &st) < 0) {
                logline(log, method, path, -1, 0, 404);
                answer(404, "Not Found", NULL, 1);
                break;
            }
            char out[256];
            int n = snprintf(out, sizeof out,
                             "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             "Content-Length: %lld\r\n\r\n",
                             (long long)st.st_size);
            wr(out, (size_t)n);
            long long sent = 0;
            while (sent < st.st_size) {
                ssize_t s;
                if (ssl) {
                    s = pread(in, buf, BLOCK, sent);
                    if (s <= 0 || wr(buf, (size_t)s) < 0) break;
                } else {
                    off_t off = sent;
                    s = sendfile(fd, in, &off, (size_t)(st.st_size - sent));
                    if (s <= 0) {
                        if (s < 0 && errno == EINTR) continue;
                        break;
                    }
                }
                sent += s;
            }
            close(in);
            logline(log, method, path, st.st_size, sent, 200);
            if (sent != st.st_size) break;
        } else {
            answer(405, "Method Not Allowed", NULL, 1);
            break;
        }
    }
    free(buf);
}

static SSL_CTX *server_ctx(const char *cert, const char *key) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        die("TLS setup");
    return ctx;
}

static int serve(int argc, char **argv) {
    if (argc < 5) return 2;
    const char *portfile = argv[2], *root = argv[3], *log = argv[4];
    SSL_CTX *ctx = argc >= 7 ? server_ctx(argv[5], argv[6]) : NULL;
    signal(SIGCHLD, SIG_IGN); /* no zombies */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 64) < 0) die("listen");
    socklen_t alen = sizeof addr;
    getsockname(lfd, (struct sockaddr *)&addr, &alen);
    FILE *pf = fopen(portfile, "w");
    if (!pf) die("portfile");
    fprintf(pf, "%d\n", ntohs(addr.sin_port));
    fclose(pf);
    for (;;) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR) continue;
            die("accept");
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(lfd);
            fd = c;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (ctx) {
                ssl = SSL_new(ctx);
                SSL_set_fd(ssl, fd);
                if (SSL_accept(ssl) != 1) _exit(0);
            }
            serve_connection(root, log);
            if (ssl) SSL_shutdown(ssl);
            close(fd);
            _exit(0);
        }
        close(c);
    }
}

static void connect_to(int port, int tls) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (tls) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method()); /* a ceiling: no verification */
        ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) != 1) die("TLS connect");
    }
}

static int put(int argc, char **argv) {
    if (argc < 5) return 2;
    int port = atoi(argv[2]), tls = argc >= 6;
    int in = open(argv[4], O_RDONLY);
    struct stat st;
    if (in < 0 || fstat(in, &st) < 0) die("open");
    char *buf = malloc(BLOCK);
    ssize_t first = pread(in, buf, BLOCK, 0);
    if (first <= 0) die("read");
    double began = now();
    connect_to(port, tls);
    char head[4096];
    int n = snprintf(head, sizeof head,
                     "PUT %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %lld\r\n\r\n", argv[3],
                     (long long)st.st_size);
    wr(head, (size_t)n);
    long long sent = 0;
    while (sent < st.st_size) {
        if (tls) {
            long long want = st.st_size - sent > first ? first : st.st_size - sent;
            if (wr(buf, (size_t)want) < 0) die("SSL_write");
            sent += want;
        } else {
            off_t off = sent;
            ssize_t s = sendfile(fd, in, &off, (size_t)(st.st_size - sent));
            if (s <= 0) die("sendfile");
            sent += s;
        }
    }
    char answer_head[HEAD_MAX];
    int head_len, extra, status = 0;
    if (read_head(answer_head, &head_len, &extra) == 0) sscanf(answer_head, "HTTP/1.1 %d", &status);
    printf("%.6f %d\n", now() - began, status);
    return status == 200 ? 0 : 1;
}

static int get(int argc, char **argv) {
    if (argc < 4) return 2;
    int port = atoi(argv[2]), tls = argc >= 5;
    char *buf = malloc(BLOCK);
    double began = now();
    connect_to(port, tls);
    char head[4096];
    int n = snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", argv[3]);
    wr(head, (size_t)n);
    char answer_head[HEAD_MAX];
    int head_len, extra;
    if (read_head(answer_head, &head_len, &extra) < 0) die("answer");
    const char *cl = header(answer_head, "Content-Length");
    long long length = cl ? atoll(cl) : 0;
    long long got = extra + discard(length - extra, buf);
    printf("%.6f %lld\n", now() - began, got);
    return got == length ? 0 : 1;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "serve") == 0) return serve(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "put") == 0) return put(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "get") == 0) return get(argc, argv);
    fprintf(stderr, "usage: native_peer serve|put|get ... (see the source)\n");
    return 2;
}
