/*
 * slora_json_trigger.c: a lazy schema's triggers (slora_json.h): the
 * text that starts a tool call's value or a structural tag, watched in
 * the answer's tokens, and the guard that keeps a token from writing a
 * trigger its value cannot follow.
 *
 * The one idea: a trigger is matched on bytes, its tail holding the
 * answer's last bytes that may begin it, so a trigger split over tokens,
 * or ending inside one with more bytes after it, is found where it ends;
 * the value starts from those bytes after it. The guard tries only the
 * tokens that can complete a trigger on this step: those holding one
 * whole (listed once for a request), and where the text ends with a
 * trigger's first bytes the run of tokens beginning with its rest, found
 * by bisection in the vocabulary's byte order, most refused by their
 * first byte past the trigger without a walk.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slora_json.h"
#include "slora_json_int.h"


static int slora_json_trigger_inside(const slora_json_trigger_t *t,
    uint32_t n, const char *p, size_t len);
static int slora_json_trigger_holds(const slora_json_trigger_t *t,
    uint32_t need);
static int32_t slora_json_trigger_range(const slora_json_trigger_t *t,
    uint32_t m, const slora_json_vocab_t *v, int32_t *lo);
static int32_t slora_json_prefix_range(const slora_json_vocab_t *v,
    const char *p, uint32_t m, int32_t *lo);
static int slora_json_prefix_cmp(const char *q, uint32_t len,
    const char *p, uint32_t m);
static void slora_json_trigger_blanks(const slora_json_trigger_t *t,
    const slora_json_schema_t *s, int compact, const slora_json_vocab_t *v,
    float *row, const char *b, uint32_t n);
static void slora_json_trigger_try_lead(const slora_json_trigger_t *t,
    const slora_json_schema_t *s, int compact, const slora_json_vocab_t *v,
    int32_t id, float *row);
static int slora_json_trigger_scan(slora_json_trigger_t *t, const char *p,
    size_t n);
static int slora_json_triggers_look(slora_json_trigger_t *t, uint32_t n,
    const slora_json_vocab_t *v, int32_t id, int64_t past);
static size_t slora_json_trigger_end(const slora_json_trigger_t *t,
    const char *p, size_t n);
static void slora_json_trigger_takes(const slora_json_trigger_t *t,
    const slora_json_schema_t *s, int compact, int whole, uint8_t *takes);
static int slora_json_trigger_first(const slora_json_trigger_t *t,
    uint32_t n, uint32_t k, const char *p, size_t len, size_t m);
static void slora_json_trigger_try(const slora_json_trigger_t *t,
    uint32_t n, const slora_json_schema_t *s, int compact, int whole,
    const slora_json_vocab_t *v, int32_t id, float *row);


int
slora_json_trigger_feed(slora_json_trigger_t *t,
    const slora_json_vocab_t *v, int32_t id)
{
    size_t       n, keep, skip;
    const char  *p;

    if (t->len == 0 || id < 0 || id >= v->n_vocab) {
        return 0;
    }

    if (id == t->id && !t->lead) {
        t->past = 0;
        t->tail_len = 0;
        return 1;
    }

    p = v->bytes + v->off[id];
    n = v->off[id + 1] - v->off[id];

    if (t->lead) {
        /* blanks before it are no text yet */
        for (skip = 0; t->seen == 0 && skip < n && slora_json_blank(p[skip]);
             skip++)
        {
            /* void */
        }

        if (t->seen >= t->len || skip == n) {
            return 0;
        }

        keep = t->len - t->seen < n - skip ? t->len - t->seen : n - skip;

        if (memcmp(p + skip, t->text + t->seen, keep) != 0) {
            t->seen = t->len;
            t->at = t->len;
            return 0;
        }

        t->at = t->seen;
        t->seen += (uint32_t) keep;

        return t->seen == t->len;
    }

    return slora_json_trigger_scan(t, p, n);
}


/* Bytes p[0..n) that end a token, looked at by trigger t (not lead): 1
 * when they complete it (t->past of them after it), else kept in its
 * tail. */
static int
slora_json_trigger_scan(slora_json_trigger_t *t, const char *p, size_t n)
{
    size_t  end, keep;

    end = slora_json_trigger_end(t, p, n);

    if (end > 0) {
        t->past = (uint32_t) (n - end);
        t->tail_len = 0;
        return 1;
    }

    /* the tail: the last len - 1 bytes of the output (a whole trigger
     * would have been found) */
    if (n >= t->len - 1) {
        memcpy(t->tail, p + n - (t->len - 1), t->len - 1);
        t->tail_len = t->len - 1;

    } else {
        keep = t->tail_len + n > t->len - 1 ? t->len - 1 - n : t->tail_len;
        memmove(t->tail, t->tail + t->tail_len - keep, keep);
        memcpy(t->tail + keep, p, n);
        t->tail_len = (uint32_t) (keep + n);
    }

    return 0;
}


/* Where a token's bytes p[0..n) complete trigger t (not lead), the
 * output's last bytes before them in its tail: the end of the first
 * such (1 to n), or 0. */
static size_t
slora_json_trigger_end(const slora_json_trigger_t *t, const char *p,
    size_t n)
{
    char    c;
    size_t  end, k, at;

    for (end = 1; end <= n; end++) {
        if (t->tail_len + end < t->len) {
            continue;
        }

        for (k = 0; k < t->len; k++) {
            /* byte k of the trigger, at tail + p's byte end - len + k */
            at = t->tail_len + end - t->len + k;
            c = at < t->tail_len ? t->tail[at] : p[at - t->tail_len];

            if (c != t->text[k]) {
                break;
            }
        }

        if (k == t->len) {
            return end;
        }
    }

    return 0;
}


int
slora_json_trigger_past(const slora_json_trigger_t *t, slora_json_t *j,
    const slora_json_vocab_t *v, int32_t id)
{
    size_t       n;
    const char  *p;

    if (t->past == 0 || id == t->id) {
        return 1;
    }

    p = v->bytes + v->off[id + 1] - t->past;
    n = t->past;

    /* blanks between the trigger and the value are none of the value's
     * (a think block's "</think>\n\n" more than it would take before
     * one, a compact one none) */
    while (n > 0 && slora_json_blank(*p)) {
        p++;
        n--;
    }

    return slora_json_feed(j, p, n);
}


int
slora_json_triggers_feed(slora_json_trigger_t *t, uint32_t n,
    const slora_json_vocab_t *v, int32_t id)
{
    return slora_json_triggers_look(t, n, v, id, -1);
}


int
slora_json_triggers_feed_past(slora_json_trigger_t *t, uint32_t n,
    const slora_json_vocab_t *v, int32_t id, uint32_t past)
{
    if (id < 0 || id >= v->n_vocab || past == 0
        || past > v->off[id + 1] - v->off[id])
    {
        return -1;
    }

    return slora_json_triggers_look(t, n, v, id, (int64_t) past);
}


/* The n triggers fed token id (past < 0) or its last past bytes (lead
 * triggers then not): the index of the one found (the earliest end in
 * the bytes, the longer where two end alike), each then forgetting the
 * text before it, or -1. */
static int
slora_json_triggers_look(slora_json_trigger_t *t, uint32_t n,
    const slora_json_vocab_t *v, int32_t id, int64_t past)
{
    int       found, hit;
    uint32_t  k;

    found = -1;

    for (k = 0; k < n; k++) {
        hit = past < 0 ? slora_json_trigger_feed(&t[k], v, id)
              : t[k].len > 0 && !t[k].lead
                && slora_json_trigger_scan(&t[k], v->bytes + v->off[id + 1]
                                                  - past, (size_t) past);

        if (hit && (found < 0 || t[k].past > t[found].past
                    || (t[k].past == t[found].past
                        && t[k].len > t[found].len)))
        {
            found = (int) k;
        }
    }

    if (found >= 0) {
        for (k = 0; k < n; k++) {
            t[k].tail_len = 0;
        }
    }

    return found;
}


int32_t
slora_json_trigger_tokens(const slora_json_trigger_t *t, uint32_t n,
    const slora_json_vocab_t *v, int32_t *ids)
{
    int32_t   id, m;

    m = 0;

    for (id = 0; id < v->n_vocab; id++) {
        if (slora_json_trigger_inside(t, n, v->bytes + v->off[id],
                                      v->off[id + 1] - v->off[id]))
        {
            ids[m++] = id;
        }
    }

    return m;
}


/* Whether bytes p[0..len) hold one of the n triggers whole with a byte
 * after it. */
static int
slora_json_trigger_inside(const slora_json_trigger_t *t, uint32_t n,
    const char *p, size_t len)
{
    size_t     e;
    uint32_t   k;

    for (k = 0; k < n; k++) {
        for (e = t[k].len; t[k].len > 0 && e < len; e++) {
            if (memcmp(p + e - t[k].len, t[k].text, t[k].len) == 0) {
                return 1;
            }
        }
    }

    return 0;
}


int
slora_json_triggers_begun(const slora_json_trigger_t *t, uint32_t n)
{
    uint32_t  k, need;

    for (k = 0; k < n; k++) {
        for (need = 1; need < t[k].len; need++) {
            if (slora_json_trigger_holds(&t[k], need)) {
                return 1;
            }
        }
    }

    return 0;
}


/* Whether the output so far (trigger t's tail) ends with t's first need
 * bytes. */
static int
slora_json_trigger_holds(const slora_json_trigger_t *t, uint32_t need)
{
    return t->tail_len >= need
           && memcmp(t->tail + t->tail_len - need, t->text, need) == 0;
}


/*
 * The tokens that begin with the trigger's last m bytes and have more,
 * where the output so far ends with its first len - m (the tail holds
 * them): lex[*lo..return), those of v's tokens whose bytes begin with
 * those m, found by bisection in byte order. 0 at *lo when the tail
 * does not end so.
 */
static int32_t
slora_json_trigger_range(const slora_json_trigger_t *t, uint32_t m,
    const slora_json_vocab_t *v, int32_t *lo)
{
    uint32_t  need;

    need = t->len - m;
    *lo = 0;

    if (!slora_json_trigger_holds(t, need)) {
        return 0;
    }

    return slora_json_prefix_range(v, t->text + need, m, lo);
}


/* lex[*lo..return): those of v's tokens whose bytes begin with p[0..m),
 * m >= 1, found by bisection in byte order. */
static int32_t
slora_json_prefix_range(const slora_json_vocab_t *v, const char *p,
    uint32_t m, int32_t *lo)
{
    int32_t   a, b, mid, c, first;
    uint32_t  len;

    first = v->lex_first[(uint8_t) p[0]];

    /* the first token not before p, then the first one past p's run */
    for (c = 0; c <= 1; c++) {
        a = first;
        b = v->lex_first[(uint8_t) p[0] + 1];

        while (a < b) {
            mid = a + (b - a) / 2;
            len = v->off[v->lex[mid] + 1] - v->off[v->lex[mid]];

            if (slora_json_prefix_cmp(v->bytes + v->off[v->lex[mid]], len,
                                      p, m) < c)
            {
                a = mid + 1;

            } else {
                b = mid;
            }
        }

        if (c == 0) {
            *lo = a;
            first = a;
        }
    }

    return a;
}


/* Bytes q[0..len) against a prefix p[0..m): 0 when they begin with it,
 * else the sign of their order. */
static int
slora_json_prefix_cmp(const char *q, uint32_t len, const char *p,
    uint32_t m)
{
    int  c;

    c = memcmp(q, p, len < m ? len : m);

    return c != 0 ? c : len < m ? -1 : 0;
}


/*
 * A token the guard tries: refused in row when it completes one of the
 * n triggers (the one slora_json_triggers_feed finds) and the bytes past
 * that do not go on as the value does (whole: after the trigger's own
 * text, as a tag's begin text does).
 */
static void
slora_json_trigger_try(const slora_json_trigger_t *t, uint32_t n,
    const slora_json_schema_t *s, int compact, int whole,
    const slora_json_vocab_t *v, int32_t id, float *row)
{
    int                    k;
    slora_json_t           j;
    slora_json_trigger_t   tried[SLORA_JSON_TRIGGERS_MAX];

    if (row[id] == -INFINITY) {
        return;
    }

    memcpy(tried, t, n * sizeof(slora_json_trigger_t));
    k = slora_json_triggers_feed(tried, n, v, id);

    if (k < 0) {
        return;
    }

    slora_json_init(&j, s);
    j.compact = compact;

    if (whole ? !slora_json_trigger_whole(&tried[k], &j, v, id)
              : !slora_json_trigger_past(&tried[k], &j, v, id))
    {
        row[id] = -INFINITY;
    }
}


void
slora_json_trigger_guard(const slora_json_trigger_t *t, uint32_t n,
    const slora_json_schema_t *s, int compact, int whole,
    const slora_json_vocab_t *v, const int32_t *ids, int32_t n_ids,
    float *row)
{
    int32_t        i, lo, hi, id;
    uint32_t       k, m, len;
    uint8_t        takes[256];
    const char    *p;

    for (i = 0; i < n_ids; i++) {
        slora_json_trigger_try(t, n, s, compact, whole, v, ids[i], row);
    }

    /* a trigger begun in the output, finished by a token's first bytes */
    for (k = 0; k < n; k++) {
        takes[0] = 2;           /* not yet known */

        for (m = 1; m < t[k].len; m++) {
            hi = slora_json_trigger_range(&t[k], m, v, &lo);

            if (lo < hi && takes[0] == 2) {
                slora_json_trigger_takes(&t[k], s, compact, whole, takes);
            }

            for (i = lo; i < hi; i++) {
                id = v->lex[i];
                p = v->bytes + v->off[id];
                len = v->off[id + 1] - v->off[id];

                if (len <= m || row[id] == -INFINITY) {
                    continue;
                }

                /* most such tokens go on with a byte the value does not
                 * take after the trigger: refused without a walk */
                if (!takes[(uint8_t) p[m]]
                    && slora_json_trigger_first(t, n, k, p, len, m))
                {
                    row[id] = -INFINITY;
                    continue;
                }

                slora_json_trigger_try(t, n, s, compact, whole, v, id,
                                       row);
            }
        }
    }
}


/* The bytes the value (schema s) may go on with right after trigger t:
 * takes[b] 1 or 0; whole, after the trigger's own text; else from its
 * start, a blank too (slora_json_trigger_past skips blanks). */
static void
slora_json_trigger_takes(const slora_json_trigger_t *t,
    const slora_json_schema_t *s, int compact, int whole, uint8_t *takes)
{
    char          c;
    unsigned      b;
    slora_json_t  j, one;

    slora_json_init(&j, s);
    j.compact = compact;

    if (whole && !slora_json_feed(&j, t->text, t->len)) {
        memset(takes, 0, 256);
        return;
    }

    for (b = 0; b < 256; b++) {
        c = (char) b;
        slora_json_copy(&one, &j);
        takes[b] = (uint8_t) ((!whole && slora_json_blank(c))
                              || slora_json_feed(&one, &c, 1));
    }
}


/* Whether trigger k of the n is the one that token bytes p[0..len)
 * complete (slora_json_triggers_feed's choice: the earliest end, the
 * longer where two end alike), ending after the token's first m. */
static int
slora_json_trigger_first(const slora_json_trigger_t *t, uint32_t n,
    uint32_t k, const char *p, size_t len, size_t m)
{
    size_t    end;
    uint32_t  i;

    if (slora_json_trigger_end(&t[k], p, len) != m) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        end = i != k && t[i].len > 0 ? slora_json_trigger_end(&t[i], p, len)
                                     : 0;

        if (end > 0 && (end < m || (end == m && t[i].len > t[k].len))) {
            return 0;
        }
    }

    return 1;
}


int
slora_json_trigger_whole(const slora_json_trigger_t *t, slora_json_t *j,
    const slora_json_vocab_t *v, int32_t id)
{
    return slora_json_feed(j, t->text, t->len)
           && slora_json_feed(j, v->bytes + v->off[id + 1] - t->past,
                              t->past);
}


int
slora_json_trigger_lead(const slora_json_trigger_t *t, slora_json_t *j,
    const slora_json_vocab_t *v, int32_t id)
{
    return slora_json_feed(j, t->text, t->at)
           && slora_json_feed_token(j, v, id);
}


void
slora_json_trigger_guard_lead(const slora_json_trigger_t *t,
    const slora_json_schema_t *s, int compact, const slora_json_vocab_t *v,
    float *row)
{
    int32_t  i, lo, hi;

    if (!t->lead || t->seen >= t->len) {
        return;
    }

    /* the tokens that begin with its rest, and where nothing is seen
     * yet those that begin with a blank */
    hi = slora_json_prefix_range(v, t->text + t->seen, t->len - t->seen,
                                 &lo);

    for (i = lo; i < hi; i++) {
        slora_json_trigger_try_lead(t, s, compact, v, v->lex[i], row);
    }

    if (t->seen == 0) {
        slora_json_trigger_blanks(t, s, compact, v, row, "", 0);
    }
}


/* Where nothing of lead trigger t is seen yet: the tokens that begin
 * with blanks b[0..n) and then more blanks, or the trigger's first
 * bytes, tried by the lead guard; each run of blanks a token begins
 * with found by bisection as the trigger's text after it is. */
static void
slora_json_trigger_blanks(const slora_json_trigger_t *t,
    const slora_json_schema_t *s, int compact, const slora_json_vocab_t *v,
    float *row, const char *b, uint32_t n)
{
    char      run[SLORA_JSON_TRIGGER_MAX * 2];
    int32_t   i, lo, hi;
    uint32_t  k, m;

    static const char  blanks[] = " \t\n\r";

    if (n >= SLORA_JSON_TRIGGER_MAX) {
        /* so many blanks: every token that begins with them */
        hi = slora_json_prefix_range(v, b, n, &lo);

        for (i = lo; i < hi; i++) {
            slora_json_trigger_try_lead(t, s, compact, v, v->lex[i], row);
        }

        return;
    }

    for (k = 0; k < sizeof(blanks) - 1; k++) {
        memcpy(run, b, n);
        run[n] = blanks[k];
        hi = slora_json_prefix_range(v, run, n + 1, &lo);

        /* no token begins with these blanks: none with more of them */
        if (hi == lo) {
            continue;
        }

        m = t->len < SLORA_JSON_TRIGGER_MAX ? t->len : SLORA_JSON_TRIGGER_MAX;
        memcpy(run + n + 1, t->text, m);
        hi = slora_json_prefix_range(v, run, n + 1 + m, &lo);

        for (i = lo; i < hi; i++) {
            slora_json_trigger_try_lead(t, s, compact, v, v->lex[i], row);
        }

        slora_json_trigger_blanks(t, s, compact, v, row, run, n + 1);
    }
}


/* A token the lead guard tries: refused in row when it completes lead
 * trigger t and the output so far with its bytes (the value's first) do
 * not go on as the value does. */
static void
slora_json_trigger_try_lead(const slora_json_trigger_t *t,
    const slora_json_schema_t *s, int compact, const slora_json_vocab_t *v,
    int32_t id, float *row)
{
    slora_json_t          j;
    slora_json_trigger_t  tried;

    if (row[id] == -INFINITY) {
        return;
    }

    tried = *t;

    if (!slora_json_trigger_feed(&tried, v, id)) {
        return;
    }

    slora_json_init(&j, s);
    j.compact = compact;

    if (!slora_json_trigger_lead(&tried, &j, v, id)) {
        row[id] = -INFINITY;
    }
}
