/*
 * sse_client.c: a load client for the streaming endpoint: keeps N
 * streaming completions open against one server (each replaced by a new
 * one when it ends), counts the SSE events it receives, and prints how
 * many arrived per second over a measurement window after a warm-up.
 *
 * The one idea: one thread and epoll, no parsing beyond finding "data: "
 * at the start of a line, so the client costs far less per event than
 * the server it measures and can run on the other core.
 *
 * usage: sse_client PORT CONCURRENCY WARMUP_S SECONDS MAX_TOKENS [MODEL]
 * prints: "events N seconds S events_per_s R streams_done D errors E"
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>


#define SSE_BUF  65536


typedef struct {
    int        fd;
    size_t     sent;
    int        match;               /* bytes of "\ndata: " matched */
    unsigned   done:1;
} sse_conn_t;


static int        sse_port;
static char       sse_req[1024];
static size_t     sse_req_len;
static uint64_t   sse_events, sse_streams, sse_errors;


static int sse_open(int ep, sse_conn_t *c);
static int sse_read(sse_conn_t *c, int counting);
static uint64_t sse_count(sse_conn_t *c, const char *p, size_t n,
    int *done);
static double sse_now(void);


int
main(int argc, char **argv)
{
    int                  ep, i, n, conc, rc, counting;
    char                 body[512];
    double               warmup, seconds, t0, t_start, t_end, now;
    uint64_t             ev0;
    sse_conn_t          *conns, *c;
    struct epoll_event   evs[256];

    if (argc < 6) {
        fprintf(stderr, "usage: sse_client PORT CONCURRENCY WARMUP_S"
                " SECONDS MAX_TOKENS [MODEL]\n");
        return 2;
    }

    sse_port = atoi(argv[1]);
    conc = atoi(argv[2]);
    warmup = atof(argv[3]);
    seconds = atof(argv[4]);

    n = snprintf(body, sizeof(body),
                 "{\"model\":\"%s\",\"prompt\":\"Once upon a time\","
                 "\"max_tokens\":%d,\"temperature\":1,\"stream\":true}",
                 argc > 6 ? argv[6] : "base", atoi(argv[5]));

    sse_req_len = snprintf(sse_req, sizeof(sse_req),
                           "POST /v1/completions HTTP/1.1\r\n"
                           "Host: 127.0.0.1\r\n"
                           "Content-Type: application/json\r\n"
                           "Content-Length: %d\r\n"
                           "Connection: close\r\n\r\n%s", n, body);

    ep = epoll_create1(0);
    conns = calloc(conc, sizeof(sse_conn_t));
    if (ep < 0 || conns == NULL) {
        perror("sse_client");
        return 1;
    }

    for (i = 0; i < conc; i++) {
        if (sse_open(ep, &conns[i]) != 0) {
            return 1;
        }
    }

    t0 = sse_now();
    t_start = t0 + warmup;
    t_end = t_start + seconds;
    counting = 0;
    ev0 = 0;

    for ( ;; ) {
        now = sse_now();

        if (!counting && now >= t_start) {
            counting = 1;
            ev0 = sse_events;
            sse_streams = 0;
            sse_errors = 0;
        }

        if (now >= t_end) {
            break;
        }

        n = epoll_wait(ep, evs, 256, 50);

        for (i = 0; i < n; i++) {
            c = evs[i].data.ptr;
            rc = sse_read(c, counting);

            if (rc != 0) {
                close(c->fd);

                if (sse_open(ep, c) != 0) {
                    return 1;
                }
            }
        }
    }

    printf("events %llu seconds %.3f events_per_s %.1f streams_done %llu"
           " errors %llu\n",
           (unsigned long long) (sse_events - ev0), seconds,
           (sse_events - ev0) / seconds, (unsigned long long) sse_streams,
           (unsigned long long) sse_errors);

    return 0;
}


static int
sse_open(int ep, sse_conn_t *c)
{
    int                  one;
    ssize_t              n;
    struct sockaddr_in   sa;
    struct epoll_event   ev;

    memset(c, 0, sizeof(sse_conn_t));

    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) {
        perror("socket");
        return -1;
    }

    one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(sse_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        perror("connect");
        return -1;
    }

    /* a request this small goes out whole on a fresh socket */
    n = write(c->fd, sse_req, sse_req_len);
    if (n != (ssize_t) sse_req_len) {
        perror("write");
        return -1;
    }

    ev.events = EPOLLIN;
    ev.data.ptr = c;

    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        perror("epoll_ctl");
        return -1;
    }

    return 0;
}


/* 0: keep reading; 1: the stream ended (or failed). */
static int
sse_read(sse_conn_t *c, int counting)
{
    int             done;
    ssize_t         n;
    uint64_t        k;
    static char     buf[SSE_BUF];

    n = read(c->fd, buf, sizeof(buf));

    if (n < 0 && errno == EAGAIN) {
        return 0;
    }

    if (n <= 0) {
        if (!c->done) {
            sse_errors++;
        }

        return 1;
    }

    done = 0;
    k = sse_count(c, buf, (size_t) n, &done);
    sse_events += k;

    if (done) {
        c->done = 1;
        sse_streams += counting ? 1 : 0;
    }

    return 0;
}


/* Events in p[0..n): "\ndata: " then '{' (a chunk) or '[' ("[DONE]");
 * the match so far is kept across reads. */
static uint64_t
sse_count(sse_conn_t *c, const char *p, size_t n, int *done)
{
    size_t    i;
    uint64_t  k;

    static const char  marker[] = "\ndata: ";

    k = 0;

    for (i = 0; i < n; i++) {
        if (c->match == sizeof(marker) - 1) {
            c->match = 0;

            if (p[i] == '[') {
                *done = 1;

            } else {
                k++;
            }
        }

        if (p[i] == marker[c->match]) {
            c->match++;

        } else {
            c->match = p[i] == '\n' ? 1 : 0;
        }
    }

    return k;
}


static double
sse_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}
