/*
 * bench_conv.c: times what the worker does with a long conversation
 * (engine/slora_openai_items.c, engine/slora_openai_responses.c): for a
 * conversation of N messages, a page of its items newest first, the page
 * after its second item (the cursor found from the far end), one item
 * read and one removed (the last), a Responses request in it whose
 * input is M items, and one whose input is one item (the conversation's
 * parse alone, timed as the mean of enough runs to take a second's
 * tenth: where the module's slora_thread_pool takes it off the worker
 * is set by this figure). Prints each in milliseconds.
 *
 *     bench_conv [N [M]]        (defaults 40000 and 4096)
 *
 * The one idea: these run on a worker's event loop, so their cost is
 * every other request's wait on that worker; it should grow with the
 * conversation's bytes, not with their square.
 *
 * Build (from the repository root, after `make lib`):
 *     cc -std=gnu11 -O2 -Iengine -Ikernels bench/bench_conv.c \
 *         build/libslora.a $(pkg-config --libs libcjson libpcre2-8 \
 *         openblas hiredis libcrypto) -lpthread -lm -o build/bench_conv
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slora_openai.h"


static double bench_conv_ms(void);
static char *bench_conv_messages(const char *head, int n, const char *tail,
    size_t *len);
static int bench_conv_prev(void *data, slora_openai_stored_e what,
    const char *id, size_t len, const char **conv, size_t *conv_len);


typedef struct {
    const char  *conv;
    size_t       len;
} bench_conv_t;


int
main(int argc, char **argv)
{
    int                     n, m, rc, runs;
    char                   *conv, *body, *out, id[64];
    size_t                  len, body_len;
    double                  t, dt;
    bench_conv_t            bc;
    slora_openai_req_t      req;
    slora_openai_err_t      err;
    slora_openai_items_q_t  q;
    slora_openai_limits_t   lim;

    n = argc > 1 ? atoi(argv[1]) : 40000;
    m = argc > 2 ? atoi(argv[2]) : 4096;

    conv = bench_conv_messages("[", n, "]", &len);
    body = bench_conv_messages("{\"model\":\"base\",\"conversation\":"
                               "\"conv_0123\",\"input\":[", m, "]}",
                               &body_len);
    if (conv == NULL || body == NULL) {
        return 1;
    }

    printf("a conversation of %d messages (%zu bytes)\n", n, len);

    memset(&q, 0, sizeof(q));
    memset(&err, 0, sizeof(err));

    t = bench_conv_ms();
    rc = slora_openai_conv_list(conv, len, "conv_0123", 9, &q, &out, &err);
    printf("  a page, newest first: %.1f ms (%s)\n", bench_conv_ms() - t,
           rc == SLORA_OK ? "ok" : err.msg);
    free(out);

    q.after.data = "msg_0123_1";
    q.after.len = strlen(q.after.data);

    t = bench_conv_ms();
    rc = slora_openai_conv_list(conv, len, "conv_0123", 9, &q, &out, &err);
    printf("  the page after its second item: %.1f ms (%s)\n",
           bench_conv_ms() - t, rc == SLORA_OK ? "ok" : err.msg);
    free(out);

    snprintf(id, sizeof(id), "msg_0123_%d", n - 1);

    t = bench_conv_ms();
    rc = slora_openai_conv_item(conv, len, "conv_0123", 9, id, strlen(id),
                                0, &out, &err);
    printf("  its last item read: %.1f ms (%s)\n", bench_conv_ms() - t,
           rc == SLORA_OK ? "ok" : err.msg);
    free(out);

    t = bench_conv_ms();
    rc = slora_openai_conv_item(conv, len, "conv_0123", 9, id, strlen(id),
                                1, &out, &err);
    printf("  its last item removed: %.1f ms (%s)\n", bench_conv_ms() - t,
           rc == SLORA_OK ? "ok" : err.msg);
    free(out);

    bc.conv = conv;
    bc.len = len;
    lim = slora_openai_default_limits;
    memset(&req, 0, sizeof(req));

    t = bench_conv_ms();
    rc = slora_openai_parse_responses(body, body_len, &lim, bench_conv_prev,
                                      &bc, &req, &err);
    printf("  a response in it, an input of %d items: %.1f ms (%s)\n", m,
           bench_conv_ms() - t, rc == SLORA_OK ? "ok" : err.msg);
    slora_openai_req_free(&req);

    free(body);
    body = bench_conv_messages("{\"model\":\"base\",\"conversation\":"
                               "\"conv_0123\",\"input\":[", 1, "]}",
                               &body_len);
    if (body == NULL) {
        return 1;
    }

    runs = 0;
    t = bench_conv_ms();

    do {
        memset(&req, 0, sizeof(req));
        rc = slora_openai_parse_responses(body, body_len, &lim,
                                          bench_conv_prev, &bc, &req, &err);
        slora_openai_req_free(&req);
        runs++;
        dt = bench_conv_ms() - t;
    } while (rc == SLORA_OK && dt < 100.0);

    printf("  a response in it, an input of one item: %.3f ms (mean of %d;"
           " %s)\n", dt / runs, runs, rc == SLORA_OK ? "ok" : err.msg);

    free(conv);
    free(body);

    return 0;
}


static double
bench_conv_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}


/* head, n short user messages joined by commas, tail. */
static char *
bench_conv_messages(const char *head, int n, const char *tail, size_t *len)
{
    int          i;
    char        *s, *p;
    const char  *msg = "{\"role\":\"user\",\"content\":\"hi\"}";

    s = malloc(strlen(head) + (size_t) n * (strlen(msg) + 1)
               + strlen(tail) + 1);
    if (s == NULL) {
        return NULL;
    }

    p = s + sprintf(s, "%s", head);

    for (i = 0; i < n; i++) {
        p += sprintf(p, "%s%s", i ? "," : "", msg);
    }

    p += sprintf(p, "%s", tail);
    *len = p - s;

    return s;
}


/* The store's lookup: every conversation is the one made above. */
static int
bench_conv_prev(void *data, slora_openai_stored_e what, const char *id,
    size_t len, const char **conv, size_t *conv_len)
{
    bench_conv_t  *bc = data;

    *conv = bc->conv;
    *conv_len = bc->len;

    return what == SLORA_OPENAI_CONVERSATION ? SLORA_OK : SLORA_ERROR;
}
