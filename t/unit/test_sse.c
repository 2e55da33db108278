/*
 * test_sse.c: the module's pure pieces without nginx: SSE framing, the
 * text helpers (UTF-8 validation, JSON escaping, stop strings with
 * hold-back, the text before a tool call), and the shared-zone ABI of
 * engine/slora_queue.h (ring, slot ownership, token publishing, adapter
 * names), including producers racing on the ring from several threads
 * and what a process killed between a push's or a pop's two stores
 * leaves (mended by the engine).
 *
 * The module's framing and text files include no nginx header, so they
 * are compiled into this test directly.
 */

#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "slora_queue.h"

#include "../../ngx_http_slora_module/ngx_http_slora_sse.c"
#include "../../ngx_http_slora_module/ngx_http_slora_text.c"


#define U(s)  ((const unsigned char *) (s))


static const char *frame(const char *data, size_t len);
static void test_sse(void);
static void test_escape(void);
static void test_stop(void);
static void test_stop_random(void);
static void test_tool_text(void);
static void test_ring(void);
static void test_ring_threads(void);
static void test_queue(void);
static void test_reap(slora_queue_t *q);
static void test_ring_repair(void);
static void test_recover(slora_queue_t *q);
static void *producer(void *arg);


static const char *
frame(const char *data, size_t len)
{
    static unsigned char  buf[256];
    size_t                n;

    n = ngx_http_slora_sse_frame(buf, sizeof(buf) - 1, NULL, U(data), len);
    buf[n < sizeof(buf) ? n : sizeof(buf) - 1] = '\0';

    return (const char *) buf;
}


static void
test_sse(void)
{
    unsigned char  buf[64];
    size_t         n;

    is_str(frame("{\"a\":1}", 7), "data: {\"a\":1}\n\n", "one line");
    is_str(frame("[DONE]", 6), "data: [DONE]\n\n", "[DONE]");
    is_str(frame("", 0), "data: \n\n", "empty data");
    is_str(frame("a\nb", 3), "data: a\ndata: b\n\n", "LF splits lines");
    is_str(frame("a\r\nb", 4), "data: a\ndata: b\n\n", "CRLF is one break");
    is_str(frame("a\rb", 3), "data: a\ndata: b\n\n", "CR alone breaks");
    is_str(frame("a\n", 2), "data: a\ndata: \n\n",
           "a trailing break keeps an empty last line");
    is_str(frame("a\n\nb", 4), "data: a\ndata: \ndata: b\n\n",
           "an empty line inside data stays a data line");
    /* a CR that ends data is a break of its own, whatever byte comes
     * after data in memory (here an LF) */
    is_str(frame("a\r\n", 2), "data: a\ndata: \n\n",
           "a CR at the end breaks, the byte past the end unread");

    memset(buf, 'x', sizeof(buf));
    n = ngx_http_slora_sse_frame(buf, 5, NULL, U("hello"), 5);
    is_int(n, 13, "size needed is returned when cap is short");
    ok(buf[0] == 'x', "nothing is written when cap is short");

    n = ngx_http_slora_sse_frame(NULL, 0, NULL, U("a\r\n"), 3);
    is_int(n, 16, "measuring with NULL dst");

    n = ngx_http_slora_sse_frame(buf, 13, NULL, U("hello"), 5);
    ok(n == 13 && memcmp(buf, "data: hello\n\n", 13) == 0,
       "an exact fit is written");

    memset(buf, 'x', sizeof(buf));
    n = ngx_http_slora_sse_frame(buf, sizeof(buf), "response.created",
                                 U("{}\n"), 3);
    ok(n == 41 && memcmp(buf, "event: response.created\ndata: {}\ndata: "
                              "\n\n", 41) == 0 && buf[41] == 'x',
       "a named event: its event line, then the data lines");
    is_int(ngx_http_slora_sse_frame(NULL, 0, "e", U("x"), 1), 18,
           "measuring a named event");
    memset(buf, 'x', sizeof(buf));
    n = ngx_http_slora_sse_frame(buf, 17, "e", U("x"), 1);
    ok(n == 18 && buf[0] == 'x', "a named event that does not fit is not "
       "written");
}


static void
test_escape(void)
{
    unsigned char  buf[128];
    size_t         n;

    n = ngx_http_slora_json_escape(buf, U("a\"b\\c\nd\te\x01\x7f/"), 12);
    buf[n] = '\0';
    is_str((char *) buf, "a\\\"b\\\\c\\nd\\te\\u0001\\u007f/",
           "quotes, backslashes, controls");
    is_int(ngx_http_slora_json_escape(NULL, U("a\"b\\c\nd\te\x01\x7f/"), 12),
           n, "measuring gives the written length");

    n = ngx_http_slora_json_escape(buf, U("\x1f \x20~"), 4);
    buf[n] = '\0';
    is_str((char *) buf, "\\u001f  ~", "0x1f, the last control, is "
           "escaped; space and ~ are not");

    n = ngx_http_slora_json_escape(buf, U("\xc3\xa9"), 2);
    ok(n == 2 && memcmp(buf, "\xc3\xa9", 2) == 0, "UTF-8 passes through");

    n = ngx_http_slora_json_escape(buf, U("\xe2\x82\xac\xf0\x9f\x98\x80"
                                          "\xf4\x8f\xbf\xbf\xed\x9f\xbf"), 14);
    ok(n == 14 && memcmp(buf, "\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf"
                         "\xed\x9f\xbf", 14) == 0,
       "3- and 4-byte characters pass through, U+10FFFF and U+D7FF too");

    /* each byte that begins no whole character: U+FFFD */
    n = ngx_http_slora_json_escape(buf, U("a\xc3"), 2);
    buf[n] = '\0';
    is_str((char *) buf, "a\\ufffd", "a character cut at the end");
    n = ngx_http_slora_json_escape(buf, U("\xe2\x82z"), 3);
    buf[n] = '\0';
    is_str((char *) buf, "\\ufffd\\ufffdz", "a character cut before a letter");
    n = ngx_http_slora_json_escape(buf, U("\xc0\xaf\xed\xa0\x80\xf4\x90\x80"
                                          "\x80\x80\xff"), 11);
    buf[n] = '\0';
    is_str((char *) buf, "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd"
           "\\ufffd\\ufffd\\ufffd\\ufffd",
           "overlong, surrogate, past U+10FFFF, stray continuation, 0xff");
    is_int(ngx_http_slora_json_escape(NULL, U("a\xc3"), 2), 7,
           "measuring counts U+FFFD's escape");
}


/* "auto" tools: what of an answer's start is text before a call */
static void
test_tool_text(void)
{
    int     content, tag;
    size_t  n, blanks;

    static const struct {
        const char  *text;
        int          spoke;
        size_t       n;
        int          content, tag;
    } cases[] = {
        { "Sure.", 0, 5, 1, 0 },                /* text, no tag */
        { "Sure. <tool_ca", 0, 6, 1, 0 },       /* a tag's start held */
        { "Sure.\n<tool_call>{", 0, 6, 1, 1 },  /* text, then the tag */
        { "\n <tool_call>", 0, 2, 0, 1 },       /* blanks: no text */
        { "\n <tool", 0, 0, 0, 0 },             /* blanks held */
        { "\n ", 1, 2, 1, 0 },                  /* after text: text */
        { "<tool_call>", 0, 0, 0, 1 },          /* the tag at once */
        { "a <tool_cal> b", 0, 14, 1, 0 },      /* no tag at all */
        { "", 0, 0, 0, 0 },
        /* Mistral's mark */
        { "Sure.[TOOL_CALLS][{", 0, 5, 1, 2 },
        { "Sure.[TOOL_CA", 0, 5, 1, 0 },
        { "[TOOL_CALLS]f[ARGS]{}", 0, 0, 0, 2 },
        { "x <tool_call>", 0, 13, 1, 0 },
    };
    size_t  i;
    int     all;

    all = 1;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* tag 2: Mistral's mark is the one looked for */
        blanks = 0;
        n = ngx_http_slora_tool_text(U(cases[i].text),
                                     strlen(cases[i].text),
                                     cases[i].tag == 2 || i > 8
                                     ? "[TOOL_CALLS]" : "<tool_call>",
                                     cases[i].spoke, &blanks, &content,
                                     &tag);

        if (n != cases[i].n || tag != (cases[i].tag != 0)
            || (n > 0 && content != cases[i].content))
        {
            diag("\"%s\": %zu bytes, content %d, tag %d", cases[i].text,
                 n, content, tag);
            all = 0;
        }
    }

    ok(all, "tools: text before a call goes out, a tag's start and "
       "blanks alone are held, blanks before a tag are no text; Mistral's "
       "mark, where it is the one, as the tag (and the tag text there)");

    /* blanks held token after token are read once: what is known blank
     * carries from call to call; then a tag after them, or text */
    {
        char    text[4200];
        size_t  k;

        memset(text, ' ', 4000);
        blanks = 0;
        all = 1;

        for (k = 1; k <= 4000; k++) {
            n = ngx_http_slora_tool_text(U(text), k, "<tool_call>", 0,
                                         &blanks, &content, &tag);
            all &= n == 0 && !tag && blanks == k;
        }

        ok(all, "4000 blanks one at a time: held, each read once (%zu"
           " known)", blanks);

        memcpy(text + 4000, "<tool_call>{", 12);
        n = ngx_http_slora_tool_text(U(text), 4012, "<tool_call>", 0,
                                     &blanks, &content, &tag);
        ok(n == 4000 && tag && !content && blanks == 0,
           "then the tag: the 4000 blanks are no text (%zu, %d, %d)", n,
           tag, content);

        blanks = 3999;
        memcpy(text + 4000, "Hi <tool", 8);
        n = ngx_http_slora_tool_text(U(text), 4008, "<tool_call>", 0,
                                     &blanks, &content, &tag);
        ok(n == 4003 && !tag && content && blanks == 0,
           "or text: sent with the blanks, a tag's start held (%zu)", n);

        blanks = 4000;
        n = ngx_http_slora_tool_text(U(text), 10, "<tool_call>", 0,
                                     &blanks, &content, &tag);
        ok(n == 0 && blanks == 10, "cut shorter than the blanks known:"
           " still blanks (%zu)", blanks);
    }
}


/* A think block read as the answer comes, and at its end */
static void
test_think(void)
{
    int       all;
    size_t    i, n, skip, reason;
    unsigned  state;

    static const struct {
        const char  *text;
        unsigned     state;             /* before */
        int          final;
        size_t       n, skip, reason;
        unsigned     after;
    } cases[] = {
        { "<think>a b</think>\n\nOK", 0, 0, 18, 7, 3, 2 },  /* whole */
        { "<thi", 0, 0, 0, 0, 0, 0 },           /* the mark may come */
        { "<thi", 0, 1, 0, 0, 0, 2 },           /* ended: content */
        { "Hi <think>", 0, 0, 0, 0, 0, 2 },     /* not first: content */
        { "<think>ab</thi", 0, 0, 9, 7, 2, 1 }, /* the close held */
        { "<think>ab</thi", 0, 1, 14, 7, 7, 1 },/* ended unclosed */
        { "ab</", 1, 0, 2, 0, 2, 1 },           /* inside, held */
        { "</think>x", 1, 0, 8, 0, 0, 2 },      /* the close at once */
        { "x", 2, 0, 0, 0, 0, 2 },              /* content: nothing */
        { "<think></think>", 0, 0, 15, 7, 0, 2 },   /* empty block */
    };

    all = 1;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        state = cases[i].state;
        n = ngx_http_slora_think_scan(U(cases[i].text),
                                      strlen(cases[i].text), "<think>",
                                      "</think>", &state, cases[i].final,
                                      &skip, &reason);

        if (n != cases[i].n || skip != cases[i].skip
            || reason != cases[i].reason || state != cases[i].after)
        {
            diag("\"%s\": read %zu, skip %zu, reason %zu, state %u",
                 cases[i].text, n, skip, reason, state);
            all = 0;
        }
    }

    ok(all, "think blocks: the opening mark only first, reasoning up to "
       "the closing one, marks' starts held back until the answer ends");
}


/* The split of a text fed in pieces of step bytes (0: random 1..5), as
 * a stream reads it: reasoning into r, content into c. */
static void
think_fed(const char *text, size_t step, char *r, char *c)
{
    size_t    len, have, at, piece, took, skip, reason;
    unsigned  state;
    char      buf[256];

    len = strlen(text);
    state = NGX_HTTP_SLORA_THINK_START;
    have = 0;
    at = 0;
    r[0] = '\0';
    c[0] = '\0';

    while (at < len || have > 0) {
        piece = step ? step : 1 + (size_t) (rand() % 5);
        piece = piece > len - at ? len - at : piece;
        memcpy(buf + have, text + at, piece);
        have += piece;
        at += piece;

        if (state != NGX_HTTP_SLORA_THINK_OUT) {
            took = ngx_http_slora_think_scan(U(buf), have, "<think>",
                                             "</think>", &state, at == len,
                                             &skip, &reason);
            strncat(r, buf + skip, reason);
            memmove(buf, buf + took, have - took);
            have -= took;

            if (state != NGX_HTTP_SLORA_THINK_OUT && at < len) {
                continue;
            }
        }

        strncat(c, buf, have);
        have = 0;
    }
}


/* Fed whole, a byte at a time or in random pieces, a text splits the
 * same: every hold-back lets go of what it held. */
static void
test_think_pieces(void)
{
    int     all;
    size_t  i, k;
    char    r[3][256], c[3][256];

    static const char  *texts[] = {
        "<think>a </thin b</think>\n\nok </think>",
        "<think><think></think>x", "<thin", "<think>", "<think>a</",
        "<thinkx>a</think>", "", "</think>", "<think></think>",
        "<think>ab</th</think</think>c<think>d",
    };

    all = 1;

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        think_fed(texts[i], 1000, r[0], c[0]);
        think_fed(texts[i], 1, r[1], c[1]);
        think_fed(texts[i], 0, r[2], c[2]);

        for (k = 1; k < 3; k++) {
            if (strcmp(r[k], r[0]) != 0 || strcmp(c[k], c[0]) != 0) {
                diag("\"%s\" fed %s: reasoning \"%s\" content \"%s\", "
                     "whole: \"%s\" \"%s\"", texts[i],
                     k == 1 ? "bytewise" : "in pieces", r[k], c[k], r[0],
                     c[0]);
                all = 0;
            }
        }
    }

    ok(all, "think blocks fed in any pieces split as fed whole");
}


static void
test_stop(void)
{
    size_t                 which, safe, m;
    ngx_http_slora_text_t  stops[2] = { { U("###"), 3 }, { U("END"), 3 } };

    which = 99;
    m = ngx_http_slora_stop_scan(U("hello world"), 11, stops, 2, &which,
                                 &safe);
    ok(m == 11 && safe == 11 && which == 99, "no stop, nothing held back");

    m = ngx_http_slora_stop_scan(U("hello #"), 7, stops, 2, &which, &safe);
    ok(m == 7 && safe == 6, "a partial '#' is held back");

    m = ngx_http_slora_stop_scan(U("hello ##"), 8, stops, 2, &which, &safe);
    ok(m == 8 && safe == 6, "a partial '##' is held back");

    m = ngx_http_slora_stop_scan(U("hello #x"), 8, stops, 2, &which, &safe);
    ok(m == 8 && safe == 8, "a broken prefix is released");

    m = ngx_http_slora_stop_scan(U("ab###cd"), 7, stops, 2, &which, &safe);
    ok(m == 2 && which == 0 && safe == 2, "a match cuts the text before it");

    m = ngx_http_slora_stop_scan(U("xxENDyy###"), 10, stops, 2, &which,
                                 &safe);
    ok(m == 2 && which == 1, "the earliest of two matches wins");

    m = ngx_http_slora_stop_scan(U("ab###cdEND"), 10, stops, 2, &which,
                                 &safe);
    ok(m == 2 && which == 0 && safe == 2,
       "the earliest wins when the first stop matches first, too");

    m = ngx_http_slora_stop_scan(U("END"), 3, stops, 2, &which, &safe);
    ok(m == 0 && which == 1 && safe == 0,
       "a text that is exactly a stop string matches");

    m = ngx_http_slora_stop_scan(U("abcEND"), 6, stops, 2, &which, &safe);
    ok(m == 3 && which == 1 && safe == 3, "a stop at the very end matches");

    m = ngx_http_slora_stop_scan(U("##"), 2, stops, 2, &which, &safe);
    ok(m == 2 && safe == 0,
       "a text that is all a stop's prefix is all held back");

    m = ngx_http_slora_stop_scan(U("abc"), 3, stops, 0, &which, &safe);
    ok(m == 3 && safe == 3, "no stop strings");

    test_stop_random();
}


/* Each offset tried in turn: what ngx_http_slora_stop_scan must give. */
static size_t
stop_scan_slow(const unsigned char *text, size_t len,
    const ngx_http_slora_text_t *stops, size_t n_stops, size_t *which,
    size_t *safe)
{
    size_t  i, k, best, tail;

    best = len;

    for (k = 0; k < n_stops; k++) {
        for (i = 0; stops[k].len > 0 && i + stops[k].len <= len && i < best;
             i++)
        {
            if (memcmp(text + i, stops[k].data, stops[k].len) == 0) {
                best = i;
                *which = k;
                break;
            }
        }
    }

    if (best < len) {
        *safe = best;
        return best;
    }

    for (i = 0; i < len; i++) {
        tail = len - i;

        for (k = 0; k < n_stops; k++) {
            if (stops[k].len > tail
                && memcmp(text + i, stops[k].data, tail) == 0)
            {
                *safe = i;
                return len;
            }
        }
    }

    *safe = len;

    return len;
}


/* Texts and stops over two letters (so that stops overlap themselves
 * and each other), and the longest stops against texts made to almost
 * match them: the same answers as trying each offset. */
static void
test_stop_random(void)
{
    int                    bad;
    size_t                 i, k, n, len, m1, m2, w1, w2, s1, s2;
    unsigned char          text[2100], sb[4][NGX_HTTP_SLORA_STOP_MAX];
    ngx_http_slora_text_t  st[4];
    uint64_t               x;

    bad = 0;
    x = 88172645463325252ULL;

    for (n = 0; n < 200000 && bad < 5; n++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        len = x % 24;

        for (i = 0; i < len; i++) {
            text[i] = "ab"[(x >> (i % 60)) & 1];
        }

        k = (x >> 5) % 5;

        for (i = 0; i < k; i++) {
            st[i].len = (x >> (8 + 3 * i)) % 7;
            st[i].data = sb[i];
            memset(sb[i], 'a', st[i].len);

            if (st[i].len > 0) {
                sb[i][(x >> (20 + i)) % st[i].len] = "ab"[(x >> 40) & 1];
            }
        }

        w1 = w2 = 99;
        m1 = ngx_http_slora_stop_scan(text, len, st, k, &w1, &s1);
        m2 = stop_scan_slow(text, len, st, k, &w2, &s2);

        if (m1 != m2 || s1 != s2 || w1 != w2) {
            diag("text %.*s, %zu stops: %zu %zu %zu against %zu %zu %zu",
                 (int) len, text, k, m1, s1, w1, m2, s2, w2);
            bad++;
        }
    }

    ok(bad == 0, "200000 random texts and stops: as each offset tried");

    /* "a" x 1023 then "b", against a's with a b or a c at the end */
    memset(sb[0], 'a', NGX_HTTP_SLORA_STOP_MAX);
    sb[0][NGX_HTTP_SLORA_STOP_MAX - 1] = 'b';
    st[0].data = sb[0];
    st[0].len = NGX_HTTP_SLORA_STOP_MAX;

    for (k = 0; k < 3; k++) {
        memset(text, 'a', sizeof(text));
        text[sizeof(text) - 1] = "bca"[k];
        m1 = ngx_http_slora_stop_scan(text, sizeof(text), st, 1, &w1, &s1);
        m2 = stop_scan_slow(text, sizeof(text), st, 1, &w2, &s2);
        ok(m1 == m2 && s1 == s2,
           "a stop of 1024 bytes against 2100 almost matching, end %c: "
           "%zu, %zu held", "bca"[k], m1, sizeof(text) - s1);
    }
}


static void
test_ring(void)
{
    uint32_t       i, s, g, round;
    slora_ring_t  *r;

    r = malloc(slora_ring_size(4));
    slora_ring_init(r, 4);

    is_int(slora_ring_pop(r, &s, &g), SLORA_AGAIN, "an empty ring pops AGAIN");

    for (i = 0; i < 4; i++) {
        is_int(slora_ring_push(r, i, 100 + i), SLORA_OK, "push %u", i);
    }

    is_int(slora_ring_push(r, 9, 9), SLORA_BUSY, "a full ring pushes BUSY");

    for (i = 0; i < 4; i++) {
        ok(slora_ring_pop(r, &s, &g) == SLORA_OK && s == i && g == 100 + i,
           "pop %u in order with its generation", i);
    }

    is_int(slora_ring_pop(r, &s, &g), SLORA_AGAIN, "empty again");

    for (round = 0; round < 1000; round++) {
        if (slora_ring_push(r, round, round) != SLORA_OK
            || slora_ring_push(r, round + 1, 0) != SLORA_OK
            || slora_ring_pop(r, &s, &g) != SLORA_OK || s != round
            || slora_ring_pop(r, &s, &g) != SLORA_OK || s != round + 1)
        {
            break;
        }
    }

    is_int(round, 1000, "1000 rounds wrap the ring cleanly");

    free(r);
}


typedef struct {
    slora_ring_t  *ring;
    uint32_t       base;
    uint32_t       n;
} producer_arg_t;


static void *
producer(void *arg)
{
    uint32_t        i;
    producer_arg_t *p = arg;

    for (i = 0; i < p->n; i++) {
        while (slora_ring_push(p->ring, p->base + i, 7) != SLORA_OK) {
            /* full: the consumer will make room */
        }
    }

    return NULL;
}


static void
test_ring_threads(void)
{
    int             bad;
    uint8_t        *seen;
    uint32_t        s, g, got, total, i;
    pthread_t       th[4];
    slora_ring_t   *r;
    producer_arg_t  args[4];

    total = 4 * 20000;
    seen = calloc(total, 1);
    r = malloc(slora_ring_size(64));
    slora_ring_init(r, 64);

    for (i = 0; i < 4; i++) {
        args[i].ring = r;
        args[i].base = i * 20000;
        args[i].n = 20000;
        pthread_create(&th[i], NULL, producer, &args[i]);
    }

    got = 0;
    bad = 0;

    while (got < total) {
        if (slora_ring_pop(r, &s, &g) != SLORA_OK) {
            continue;
        }

        if (s >= total || seen[s] || g != 7) {
            bad++;
        } else {
            seen[s] = 1;
        }

        got++;
    }

    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }

    is_int(bad, 0, "4 racing producers: every item popped exactly once");
    is_int(slora_ring_pop(r, &s, &g), SLORA_AGAIN, "and nothing more");

    free(seen);
    free(r);
}


/* Slots whose worker died: a claimed one comes back at once, a running
 * one gets its cancel flag and keeps the engine's bit (the engine frees
 * it), a finished one comes back, and so does one whose submit was cut
 * after it set the engine's bit, its state still claimed (no engine
 * ever sees it); a live worker's slots are left. */
static void
test_reap(slora_queue_t *q)
{
    pid_t          dead;
    uint32_t       a, b, c, d, e;
    slora_slot_t  *sa, *sb, *sc, *sd, *se;

    dead = fork();
    if (dead == 0) {
        _exit(0);
    }

    waitpid(dead, NULL, 0);

    slora_queue_claim(q, 0, &a);
    slora_queue_claim(q, 0, &b);
    slora_queue_claim(q, 0, &c);
    sa = slora_queue_slot(q, a);
    sb = slora_queue_slot(q, b);
    sc = slora_queue_slot(q, c);
    slora_queue_submit(q, b);
    slora_queue_submit(q, c);
    slora_queue_finish(q, c, 1);
    sa->worker_pid = dead;
    sb->worker_pid = dead;
    sc->worker_pid = dead;

    is_int(slora_queue_reap(q), 3, "reap: the dead worker's 3 slots");
    ok(sa->state == SLORA_SLOT_FREE && sc->state == SLORA_SLOT_FREE,
       "claimed and finished ones are free");
    ok(sb->state == SLORA_SLOT_SUBMITTED && sb->cancel
       && sb->refs == SLORA_REF_ENGINE,
       "a running one: cancelled, the engine's bit left for the engine");
    slora_queue_fail(q, b, 499, "cancelled");
    is_int(sb->state, SLORA_SLOT_FREE, "... which frees it");
    is_int(slora_queue_reap(q), 0, "reaping again finds nothing");

    /* slora_queue_submit cut between its engine bit and its state */
    slora_queue_claim(q, 0, &e);
    se = slora_queue_slot(q, e);
    se->worker_pid = dead;
    atomic_fetch_or(&se->refs, SLORA_REF_ENGINE);
    is_int(slora_queue_reap(q), 1, "reap: a submit cut before its state");
    is_int(se->state, SLORA_SLOT_FREE, "... comes back, both bits dropped");
    is_int(se->refs, 0, "... none left");

    slora_queue_claim(q, 0, &d);
    sd = slora_queue_slot(q, d);
    is_int(slora_queue_reap(q), 0, "a live worker's slot is left");
    ok(sd->state == SLORA_SLOT_CLAIMED && !sd->cancel, "... as it was");
    slora_queue_release(q, d, SLORA_REF_WORKER);
    is_int(q->slots_used, 0, "nothing used");
}


/* A pop cut after it moved head (the engine killed there): without
 * the new engine's repair a producer a lap later finds that cell full
 * for good; with it, whole laps go round. A release unread cut before
 * head moved: repair moves head. A ring in order is left alone. */
static void
test_ring_repair(void)
{
    uint32_t       i, s, g, round;
    uint64_t       head;
    slora_ring_t  *r;

    r = malloc(slora_ring_size(4));
    slora_ring_init(r, 4);

    is_int(slora_ring_repair(r), 0, "repair: a new ring needs none");

    slora_ring_push(r, 10, 1);
    slora_ring_push(r, 11, 1);
    slora_ring_pop(r, &s, &g);
    is_int(slora_ring_repair(r), 0, "repair: a ring in order needs none");

    /* the second pop cut: head moved, the cell not handed back */
    head = atomic_load(&r->head);
    atomic_store(&r->head, head + 1);

    for (i = 0; i < 4; i++) {
        if (slora_ring_push(r, i, 2) != SLORA_OK) {
            break;
        }
    }

    is_int(i, 3, "unmended, the lap stops at the cut cell");

    /* the new engine mends before its first pop */
    is_int(slora_ring_repair(r), 1, "repair mends the cut pop");
    is_int(slora_ring_repair(r), 0, "... once");

    for (i = 0; i < 3; i++) {
        if (slora_ring_pop(r, &s, &g) != SLORA_OK || s != i) {
            break;
        }
    }

    is_int(i, 3, "the pushes made before pop in order");
    is_int(slora_ring_push(r, 3, 2), SLORA_OK,
           "and the push at the mended cell goes in");
    ok(slora_ring_pop(r, &s, &g) == SLORA_OK && s == 3, "... and pops");

    for (round = 0; round < 100; round++) {
        for (i = 0; i < 4; i++) {
            if (slora_ring_push(r, i, round) != SLORA_OK) {
                break;
            }
        }

        for (i = 0; i < 4; i++) {
            if (slora_ring_pop(r, &s, &g) != SLORA_OK || s != i
                || g != round)
            {
                break;
            }
        }

        if (i != 4) {
            break;
        }
    }

    is_int(round, 100, "mended, 100 whole laps go round");

    /* a release unread cut before head moved */
    slora_ring_push(r, 7, 7);
    head = atomic_load(&r->head);
    atomic_store(&r->cells[head & 3].seq, head + 4);
    is_int(slora_ring_pop(r, &s, &g), SLORA_AGAIN,
           "a cell released unread, head unmoved: nothing pops");
    is_int(slora_ring_repair(r), 1, "repair moves head past it");
    is_int(slora_ring_push(r, 8, 8), SLORA_OK, "then a push");
    ok(slora_ring_pop(r, &s, &g) == SLORA_OK && s == 8,
       "... pops as the next one");

    free(r);
}


/* A worker killed between its push's two stores (a cell claimed, never
 * published) holds up every later submission; slora_queue_recover
 * releases that cell at its second look once the reap has found the
 * dead worker's slot, and then fails the slot. A live worker slow to
 * publish is waited for, however many looks; a dead worker's slot that
 * never reached the ring is failed at the second look. */
static void
test_recover(slora_queue_t *q)
{
    pid_t             dead;
    uint8_t           held[3];
    uint32_t          a, b, s, g, marks[3], look;
    uint64_t          pos;
    slora_ring_t     *ring;
    slora_slot_t     *sa, *sb;
    slora_recover_t   r;

    dead = fork();
    if (dead == 0) {
        _exit(0);
    }

    waitpid(dead, NULL, 0);

    ring = slora_queue_ring(q);

    while (slora_ring_pop(ring, &s, &g) == SLORA_OK) {
        /* what earlier tests left */
    }

    memset(held, 0, sizeof(held));
    memset(marks, 0, sizeof(marks));
    r.stuck = 0;
    r.marks = marks;

    is_int(slora_queue_recover(q, held, &r), 0, "recover: nothing to do");

    /* a: the dead worker's, its push cut after the claim of a cell */
    slora_queue_claim(q, 0, &a);
    sa = slora_queue_slot(q, a);
    sa->worker_pid = dead;
    atomic_fetch_or(&sa->refs, SLORA_REF_ENGINE);
    atomic_store(&sa->state, SLORA_SLOT_SUBMITTED);
    pos = atomic_fetch_add(&ring->tail, 1);

    /* b: a live worker's, whole, behind it */
    slora_queue_claim(q, 0, &b);
    sb = slora_queue_slot(q, b);
    is_int(slora_queue_submit(q, b), SLORA_OK, "recover: b submitted");
    is_int(slora_ring_pop(ring, &s, &g), SLORA_AGAIN,
           "b waits behind the cut cell");

    is_int(slora_queue_recover(q, held, &r), 0,
           "first look, before the reap: nothing taken back");
    is_int(slora_queue_reap(q), 1, "the reap lets go the dead worker's a");
    is_int(slora_ring_pop(ring, &s, &g), SLORA_AGAIN, "b still waits");
    is_int(slora_queue_recover(q, held, &r), 1,
           "second look, stuck again and a lost: the cut cell released");
    ok(slora_ring_pop(ring, &s, &g) == SLORA_OK && s == b && g == sb->gen,
       "b pops");
    held[b] = 1;
    is_int(sa->state, SLORA_SLOT_SUBMITTED, "a not failed yet");
    is_int(slora_queue_recover(q, held, &r), 1,
           "third look, the ring moving: a, lost at two looks, failed");
    is_int(sa->state, SLORA_SLOT_FREE, "... and free");

    slora_queue_finish(q, b, 1);
    slora_queue_release(q, b, SLORA_REF_WORKER);
    held[b] = 0;
    is_int(slora_queue_recover(q, held, &r), 0, "then nothing more");

    /* a live worker slow to publish: its cell waits for it */
    slora_queue_claim(q, 0, &a);
    sa = slora_queue_slot(q, a);
    atomic_fetch_or(&sa->refs, SLORA_REF_ENGINE);
    atomic_store(&sa->state, SLORA_SLOT_SUBMITTED);
    pos = atomic_fetch_add(&ring->tail, 1);
    slora_queue_claim(q, 0, &b);
    slora_queue_submit(q, b);

    for (look = 0; look < 5; look++) {
        if (slora_queue_recover(q, held, &r) != 0) {
            break;
        }
    }

    is_int(look, 5, "a live worker's cut-looking push: 5 looks take nothing");
    ring->cells[pos & (ring->cap - 1)].slot = a;
    ring->cells[pos & (ring->cap - 1)].gen = sa->gen;
    atomic_store(&ring->cells[pos & (ring->cap - 1)].seq, pos + 1);
    ok(slora_ring_pop(ring, &s, &g) == SLORA_OK && s == a,
       "published late, it pops first");
    ok(slora_ring_pop(ring, &s, &g) == SLORA_OK && s == b, "then b");
    slora_queue_finish(q, a, 1);
    slora_queue_release(q, a, SLORA_REF_WORKER);
    slora_queue_finish(q, b, 1);
    slora_queue_release(q, b, SLORA_REF_WORKER);

    /* a dead worker's slot marked submitted, its push never begun */
    slora_queue_claim(q, 0, &a);
    sa = slora_queue_slot(q, a);
    sa->worker_pid = dead;
    atomic_fetch_or(&sa->refs, SLORA_REF_ENGINE);
    atomic_store(&sa->state, SLORA_SLOT_SUBMITTED);
    slora_queue_reap(q);
    is_int(slora_queue_recover(q, held, &r), 0,
           "a slot that never reached the ring: seen once");
    is_int(slora_queue_recover(q, held, &r), 1, "failed at the second look");
    is_int(sa->state, SLORA_SLOT_FREE, "... and free");
    is_int(q->slots_used, 0, "recover: nothing used");
}


static void
test_queue(void)
{
    void                *mem;
    size_t               size;
    int32_t             *out;
    uint32_t             i, idx, s, g, pos;
    slora_err_t          err;
    slora_slot_t        *slot;
    slora_queue_t       *q;
    const char          *names[3] = { "alpha", "beta-2", "c" };
    char                 longmsg[300];
    static const char    tail[] = "\xc3\xa9 and more past the room";
    const char          *p;
    slora_queue_geom_t   geom = { 3, 16, 4, 3 };
    slora_queue_geom_t   other = { 3, 16, 5, 3 };
    slora_queue_geom_t   fewer_top = { 3, 16, 4, 2 };
    slora_queue_geom_t   bad = { 0, 16, 4, 3 };
    slora_queue_geom_t   bad_top = { 3, 16, 4, SLORA_QUEUE_TOP_MAX + 1 };
    slora_logprob_t     *lp;
    static const int32_t  top_ids[5] = { 7, 8, 9, 10, 11 };
    static const float    top_lps[5] = { -0.25f, -1.5f, -2, -3, -4 };

    is_int(slora_queue_size(&bad), 0, "zero slots is no geometry");
    is_int(slora_queue_size(&bad_top), 0, "more alternatives than "
           "SLORA_QUEUE_TOP_MAX is no geometry");

    size = slora_queue_size(&geom);
    ok(size > sizeof(slora_queue_t) + 3 * (16 + 4) * 4, "size covers it all");

    mem = aligned_alloc(64, size);
    memset(mem, 0xa5, size);

    is_int(slora_queue_init(mem, size - 1, &geom, 42, &err), SLORA_ERROR,
           "a region one byte short is refused");
    is_int(slora_queue_init(mem, size, &geom, 42, &err), SLORA_OK, "init");

    q = mem;
    is_int(q->conf_hash, 42, "hash kept");
    is_int(slora_queue_check(q, &geom, &err), SLORA_OK, "check passes");
    is_int(slora_queue_check(q, &other, &err), SLORA_ERROR,
           "check refuses another geometry");
    is_int(slora_queue_check(q, &fewer_top, &err), SLORA_ERROR,
           "check refuses another count of alternatives");
    ok(slora_queue_output(q, 2) + 4 <= (int32_t *) ((char *) mem + size)
       && slora_queue_prompt(q, 2) + 16 <= slora_queue_output(q, 0),
       "buffers lie inside the region, apart");
    ok((char *) &slora_queue_logprob(q, 2, 3)->top[3]
       <= (char *) slora_queue_ring(q)
       && (char *) slora_queue_logprob(q, 0, 0)
          >= (char *) (slora_queue_published(q, 2) + 4)
       && (char *) &slora_queue_logprob(q, 0, 3)->top[3]
          <= (char *) slora_queue_logprob(q, 1, 0),
       "log-probability records lie between the publish times and the "
       "ring, a slot's after another's");

    for (i = 0; i < 3; i++) {
        is_int(slora_queue_claim(q, 1, &idx), SLORA_OK, "claim %u", i);
        is_int(slora_queue_slot(q, idx)->state, SLORA_SLOT_CLAIMED,
               "claimed slot %u state", idx);
        is_int(slora_queue_slot(q, idx)->logprobs, -1,
               "claimed slot %u asks for no log-probabilities", idx);
    }

    is_int(slora_queue_claim(q, 0, &idx), SLORA_BUSY, "all slots taken");
    is_int(q->slots_used, 3, "3 used");

    /* a request that runs to its end */
    idx = 1;
    slot = slora_queue_slot(q, idx);
    q->epoch = 5;
    is_int(slora_queue_submit(q, idx), SLORA_OK, "submit");
    ok(slot->state == SLORA_SLOT_SUBMITTED && slot->epoch == 5
       && slot->refs == (SLORA_REF_WORKER | SLORA_REF_ENGINE),
       "submitted: both bits, stamped with the epoch");
    ok(slora_ring_pop(slora_queue_ring(q), &s, &g) == SLORA_OK && s == idx
       && g == slot->gen, "the ring carries slot and generation");

    slot->logprobs = 2;

    for (i = 0; i < 4; i++) {
        is_int(slora_queue_publish(q, idx, 100 + i, -0.5f * (float) i,
                                   5 - (int32_t) i, top_ids, top_lps),
               SLORA_OK, "publish %u", i);
    }

    is_int(slora_queue_publish(q, idx, 9, 0, 0, NULL, NULL), SLORA_BUSY,
           "the output buffer holds output_cap tokens");
    out = slora_queue_output(q, idx);
    ok(slot->n_out == 4 && out[0] == 100 && out[3] == 103,
       "published tokens readable in order");
    lp = slora_queue_logprob(q, idx, 1);
    ok(lp->logprob == -0.5f && lp->n_top == 3 && lp->top[0].id == 7
       && lp->top[2].id == 9 && lp->top[2].logprob == -2.0f,
       "a token's log-probability and its alternatives, cut to top_cap 3");
    lp = slora_queue_logprob(q, idx, 3);
    ok(lp->logprob == -1.5f && lp->n_top == 2 && lp->top[1].id == 8,
       "fewer than top_cap: as many as given");
    slora_queue_slot(q, 0)->logprobs = -1;
    slora_queue_logprob(q, 0, 0)->n_top = 77;
    slora_queue_publish(q, 0, 5, -1, 3, top_ids, top_lps);
    ok(slora_queue_logprob(q, 0, 0)->n_top == 77,
       "a slot that asked for none: no record written");
    slora_queue_slot(q, 0)->n_out = 0;

    slora_queue_finish(q, idx, 2);
    ok(slot->state == SLORA_SLOT_FINISHED && slot->refs == SLORA_REF_WORKER,
       "finish: FINISHED, the engine's bit dropped");
    is_int(slora_queue_release(q, idx, SLORA_REF_WORKER), 1,
           "the worker's release frees it");
    is_int(slot->state, SLORA_SLOT_FREE, "FREE");
    is_int(slora_queue_release(q, idx, SLORA_REF_WORKER), 0,
           "a second release does nothing");

    /* a client that leaves first: the engine frees the slot */
    idx = 0;
    slot = slora_queue_slot(q, idx);
    slora_queue_submit(q, idx);
    is_int(slora_queue_release(q, idx, SLORA_REF_WORKER), 0,
           "the worker leaves a running slot");
    is_int(slot->state, SLORA_SLOT_SUBMITTED, "still the engine's");
    slora_queue_fail(q, idx, 503, "gone");
    ok(slot->state == SLORA_SLOT_FREE && slot->refs == 0,
       "the engine's last bit frees it");

    /* a message past the slot's room is cut before the character it
     * would split (an adapter's name in it may be any UTF-8) */
    memset(longmsg, 'a', 254);
    memcpy(longmsg + 254, tail, sizeof(tail));
    is_int(slora_queue_claim(q, 0, &idx), SLORA_OK, "claim for a long error");
    slora_queue_submit(q, idx);
    slora_queue_fail(q, idx, 404, longmsg);
    slot = slora_queue_slot(q, idx);
    ok(slot->state == SLORA_SLOT_FAILED && strlen(slot->err) == 254
       && memcmp(slot->err, longmsg, 254) == 0,
       "a long error is cut before the 2-byte character at its room's end "
       "(%zu bytes kept)", strlen(slot->err));
    slora_queue_release(q, idx, SLORA_REF_WORKER);

    /* a claimed slot never submitted */
    is_int(slora_queue_release(q, 2, SLORA_REF_WORKER), 1,
           "an unsubmitted claim is freed by its worker");
    is_int(q->slots_used, 0, "nothing used");

    is_int(slora_queue_claim(q, 0, &idx), SLORA_OK, "claim again");
    ok(slora_queue_slot(q, idx)->n_out == 0
       && slora_queue_slot(q, idx)->err[0] == '\0', "a new claim is clean");
    is_int(slora_queue_slot(q, idx)->worker_pid, getpid(),
           "a claim names its worker");
    slora_queue_release(q, idx, SLORA_REF_WORKER);

    test_reap(q);
    test_recover(q);

    /* adapter names */
    is_int(slora_queue_find_name(q, "alpha", 5), -1, "no names yet");
    is_int(slora_queue_set_names(q, names, 3, &err), SLORA_OK, "set names");
    is_int(slora_queue_find_name(q, "beta-2", 6), 1, "find beta-2");
    is_int(slora_queue_find_name(q, "beta", 4), -1, "a prefix is no match");
    is_int(slora_queue_find_name(q, "c", 1), 2, "find c");

    pos = 0;
    i = 0;
    while ((p = slora_queue_next_name(q, &pos)) != NULL) {
        ok(strcmp(p, names[i]) == 0, "next name %u is %s", i, names[i]);
        i++;
    }

    is_int(i, 3, "iteration ends after 3");
    is_int(slora_queue_names_all(q), 1, "all 3 names published");

    /* more names than the zone holds: those that fit, and the zone says
     * it does not hold them all; a list that fits again says it does */
    {
        static char   many[3000][100];
        const char   *mp[3000];
        uint32_t      k, missed;

        for (k = 0; k < 3000; k++) {
            snprintf(many[k], sizeof(many[k]), "%090u", k);
            mp[k] = many[k];
        }

        is_int(slora_queue_set_names(q, mp, 3000, &err), SLORA_ERROR,
               "3000 names of 90 bytes: refused (%s)", err.msg);
        is_int(slora_queue_names_all(q), 0, "... the zone does not hold all");
        k = (uint32_t) (SLORA_QUEUE_NAMES_BYTES - 1) / 91;
        is_int(slora_queue_find_name(q, many[k - 1], 90), (int32_t) k - 1,
               "... the last that fit (%u) is there", k - 1);
        is_int(slora_queue_find_name(q, many[k], 90), -1,
               "... the next is not");
        is_int(slora_queue_set_names(q, names, 3, &err), SLORA_OK,
               "3 names again");
        is_int(slora_queue_names_all(q), 1, "... all of them held");

        /* the region's last byte: names that end one byte short of it
         * (their NULs and the list's final NUL included) fit, one byte
         * more does not */
        {
            static char  last[100];
            uint32_t     full, room;

            full = (uint32_t) (SLORA_QUEUE_NAMES_BYTES - 1) / 91;
            room = (uint32_t) (SLORA_QUEUE_NAMES_BYTES - 1) - full * 91;
            memset(last, 'z', room);
            last[room] = '\0';
            mp[full] = last;
            ok(slora_queue_set_names(q, mp, full + 1, &err) == SLORA_ERROR
               && slora_queue_names_all(q) == 0
               && slora_queue_find_name(q, last, room) == -1,
               "a last name of %u bytes into %u left: refused", room, room);
            last[room - 1] = '\0';
            ok(slora_queue_set_names(q, mp, full + 1, &err) == SLORA_OK
               && slora_queue_names_all(q) == 1
               && slora_queue_find_name(q, last, room - 1) == (int32_t) full,
               "one of %u bytes: all held", room - 1);
            mp[full] = many[full];
        }

        /* 3000 short names: each found at its index through the zone's
         * hash index, near misses not found */
        for (k = 0; k < 3000; k++) {
            snprintf(many[k], sizeof(many[k]), "n%05u", k * 7);
        }
        is_int(slora_queue_set_names(q, mp, 3000, &err), SLORA_OK,
               "3000 short names");
        missed = 0;
        for (k = 0; k < 3000; k++) {
            missed += slora_queue_find_name(q, many[k], strlen(many[k]))
                      != (int32_t) k;
        }
        is_int(missed, 0, "... each found at its index");
        ok(slora_queue_find_name(q, "n00001", 6) == -1
           && slora_queue_find_name(q, "n0000", 5) == -1
           && slora_queue_find_name(q, "n000000", 7) == -1
           && slora_queue_find_name(q, "", 0) == -1,
           "... names not published, prefixes and extensions not found");

        /* a longer name in a shorter one's slot is not the shorter
         * name: made to collide on purpose */
        {
            static char   longer[32];
            const char   *one[1] = { longer };
            uint32_t      n, want;

            want = (uint32_t) slora_fnv1a("ab", 2)
                   & (SLORA_QUEUE_NAME_SLOTS - 1);
            for (n = 0; n < 100000000; n++) {
                snprintf(longer, sizeof(longer), "ab%u", n);
                if (((uint32_t) slora_fnv1a(longer, strlen(longer))
                     & (SLORA_QUEUE_NAME_SLOTS - 1)) == want)
                {
                    break;
                }
            }
            ok(slora_queue_set_names(q, one, 1, &err) == SLORA_OK
               && slora_queue_find_name(q, longer, strlen(longer)) == 0
               && slora_queue_find_name(q, "ab", 2) == -1,
               "%s in ab's slot: found, and ab not", longer);
        }

        /* a name too long for a slot stops the publishing there: the
         * names before it are held, and the zone says not all */
        {
            static char   longname[SLORA_QUEUE_ADAPTER_LEN + 8];
            const char   *three[3] = { "first", longname, "third" };

            memset(longname, 'x', sizeof(longname) - 1);
            is_int(slora_queue_set_names(q, three, 3, &err), SLORA_ERROR,
                   "a name over %d bytes: refused (%s)",
                   SLORA_QUEUE_ADAPTER_LEN - 1, err.msg);
            ok(slora_queue_names_all(q) == 0
               && slora_queue_find_name(q, "first", 5) == 0
               && slora_queue_find_name(q, "third", 5) == -1,
               "... the one before it held, the one after not, not all");

            longname[SLORA_QUEUE_ADAPTER_LEN] = '\0';
            is_int(slora_queue_set_names(q, three, 3, &err), SLORA_ERROR,
                   "a name of %d bytes (its NUL past a slot's): refused",
                   SLORA_QUEUE_ADAPTER_LEN);
            longname[SLORA_QUEUE_ADAPTER_LEN - 1] = '\0';
            ok(slora_queue_set_names(q, three, 3, &err) == SLORA_OK
               && slora_queue_find_name(q, longname,
                                        SLORA_QUEUE_ADAPTER_LEN - 1) == 1,
               "one of %d bytes: held", SLORA_QUEUE_ADAPTER_LEN - 1);
        }
    }

    free(mem);
}


int
main(void)
{
    test_sse();
    test_escape();
    test_stop();
    test_tool_text();
    test_think();
    test_think_pieces();
    test_ring();
    test_ring_threads();
    test_ring_repair();
    test_queue();

    return done_testing();
}
