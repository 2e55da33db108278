/*
 * slora_regex_len.c: the lengths of the texts an automaton admits, for
 * slora_regex.c's last step: from each state, the least characters to a
 * match, the most (or none when a loop is reachable), and, where a
 * string has both a minLength and a maxLength, the exact lengths at
 * which a match can end, so that slora_regex_viable is exact.
 *
 * The one idea: characters, not bytes, are counted, so the automaton's
 * byte edges become edges that weigh 1 (a lead byte, a character more)
 * or 0 (a continuation byte), and each question is a walk over those:
 * a shortest path for the least, a longest path over a graph checked for
 * loops for the most, and length by length sweeps for the exact ones.
 */

#include <stdlib.h>
#include <string.h>

#include "slora_regex_int.h"


static void slora_re_fold(uint32_t *m, uint32_t m_next, uint32_t w);


/* The automaton's edges, one per state and next state and kind (a lead
 * byte's, which counts a character, or a continuation byte's): the
 * classes that lead alike are one edge. */
int
slora_re_edges(slora_re_edges_t *e, const uint16_t *next,
    const uint8_t *lead, uint32_t n, uint32_t n_classes)
{
    uint32_t   s, c, t, key, *seen;

    e->off = malloc((n + 1) * sizeof(uint32_t));
    e->to = malloc((size_t) n * n_classes * sizeof(uint32_t));
    e->w = malloc((size_t) n * n_classes);
    seen = malloc(2 * (size_t) n * sizeof(uint32_t));

    if (e->off == NULL || e->to == NULL || e->w == NULL || seen == NULL) {
        free(seen);
        return SLORA_ERROR;
    }

    memset(seen, 0xff, 2 * (size_t) n * sizeof(uint32_t));
    e->n = 0;

    for (s = 0; s < n; s++) {
        e->off[s] = e->n;

        for (c = 0; c < n_classes; c++) {
            t = next[(size_t) s * n_classes + c];

            if (t == SLORA_REGEX_DEAD) {
                continue;
            }

            key = 2 * t + lead[c];

            if (seen[key] == s) {
                continue;
            }

            seen[key] = s;
            e->to[e->n] = t;
            e->w[e->n] = lead[c];
            e->n++;
        }
    }

    e->off[n] = e->n;
    free(seen);

    return SLORA_OK;
}


void
slora_re_edges_free(slora_re_edges_t *e)
{
    free(e->off);
    free(e->to);
    free(e->w);
    memset(e, 0, sizeof(slora_re_edges_t));
}


/* dist[s]: the fewest characters from s to a match, SLORA_RE_FAR where
 * none is reachable: breadth first from the matches over the reversed
 * edges, a level a character (a continuation byte's edge stays in its
 * level). */
int
slora_re_least(const slora_re_edges_t *e, uint32_t n, const uint8_t *accept,
    uint32_t *dist)
{
    uint32_t   s, k, u, v, d, n_cur, n_nxt, i, nd;
    uint32_t  *in_off, *in_from, *cur, *nxt, *tmp;
    uint8_t   *in_w;

    in_off = calloc(n + 1, sizeof(uint32_t));
    in_from = malloc((e->n + 1) * sizeof(uint32_t));
    in_w = malloc(e->n + 1);
    cur = malloc(2 * (size_t) n * sizeof(uint32_t) + 1);
    nxt = malloc(2 * (size_t) n * sizeof(uint32_t) + 1);

    if (in_off == NULL || in_from == NULL || in_w == NULL || cur == NULL
        || nxt == NULL)
    {
        free(in_off);
        free(in_from);
        free(in_w);
        free(cur);
        free(nxt);
        return SLORA_ERROR;
    }

    for (k = 0; k < e->n; k++) {
        in_off[e->to[k] + 1]++;
    }

    for (s = 0; s < n; s++) {
        in_off[s + 1] += in_off[s];
    }

    for (s = 0; s < n; s++) {
        for (k = e->off[s]; k < e->off[s + 1]; k++) {
            v = e->to[k];
            i = in_off[v]++;
            in_from[i] = s;
            in_w[i] = e->w[k];
        }
    }

    /* in_off[v] now ends v's list: shift back to starts */
    for (s = n; s > 0; s--) {
        in_off[s] = in_off[s - 1];
    }

    in_off[0] = 0;

    n_cur = 0;

    for (s = 0; s < n; s++) {
        dist[s] = accept[s] ? 0 : SLORA_RE_FAR;

        if (accept[s]) {
            cur[n_cur++] = s;
        }
    }

    for (d = 0; n_cur > 0; d++) {
        n_nxt = 0;

        for (i = 0; i < n_cur; i++) {
            v = cur[i];

            if (dist[v] != d) {
                continue;
            }

            for (k = in_off[v]; k < in_off[v + 1]; k++) {
                u = in_from[k];
                nd = d + in_w[k];

                if (nd >= dist[u]) {
                    continue;
                }

                dist[u] = nd;

                if (in_w[k]) {
                    nxt[n_nxt++] = u;

                } else {
                    cur[n_cur++] = u;
                }
            }
        }

        tmp = cur;
        cur = nxt;
        nxt = tmp;
        n_cur = n_nxt;
    }

    free(in_off);
    free(in_from);
    free(in_w);
    free(cur);
    free(nxt);

    return SLORA_OK;
}


/* most[s]: the most characters from s to a match, SLORA_REGEX_NONE where
 * a loop lies on the way (every state kept reaches a match, so each
 * value is at least 0). Depth first without recursion; a state met again
 * while open is on a loop. */
int
slora_re_most(const slora_re_edges_t *e, uint32_t n, uint32_t *most)
{
    enum { WHITE = 0, GREY, BLACK };

    uint8_t   *color;
    uint32_t  *stack, *at, top, s, t, k, u, v;

    color = calloc(n, 1);
    stack = malloc(n * sizeof(uint32_t));
    at = malloc(n * sizeof(uint32_t));

    if (color == NULL || stack == NULL || at == NULL) {
        free(color);
        free(stack);
        free(at);
        return SLORA_ERROR;
    }

    for (s = 0; s < n; s++) {
        most[s] = 0;
    }

    for (s = 0; s < n; s++) {
        if (color[s] != WHITE) {
            continue;
        }

        top = 0;
        stack[0] = s;
        at[0] = e->off[s];
        color[s] = GREY;

        for ( ;; ) {
            v = stack[top];

            if (at[top] == e->off[v + 1]) {
                color[v] = BLACK;

                if (top == 0) {
                    break;
                }

                /* fold into the parent over the edge it took */
                top--;
                u = stack[top];
                k = at[top] - 1;
                slora_re_fold(&most[u], most[v], e->w[k]);
                continue;
            }

            k = at[top]++;
            t = e->to[k];

            if (color[t] == GREY) {
                most[v] = SLORA_REGEX_NONE;

            } else if (color[t] == BLACK) {
                slora_re_fold(&most[v], most[t], e->w[k]);

            } else {
                top++;
                stack[top] = t;
                at[top] = e->off[t];
                color[t] = GREY;
            }
        }
    }

    free(color);
    free(stack);
    free(at);

    return SLORA_OK;
}


/* *m = max(*m, m_next + w), where SLORA_REGEX_NONE is unbounded. */
static void
slora_re_fold(uint32_t *m, uint32_t m_next, uint32_t w)
{
    if (m_next == SLORA_REGEX_NONE) {
        *m = SLORA_REGEX_NONE;

    } else if (*m != SLORA_REGEX_NONE && m_next + w > *m) {
        *m = m_next + w;
    }
}


/* bits[s]: bit L set when a match ends exactly L characters on from s,
 * for L up to max. Length by length: a lead byte's edge moves a length
 * on by one; a continuation byte's keeps it (chains of those are at
 * most three long, so four sweeps settle them). */
void
slora_re_lengths(const slora_re_edges_t *e, uint32_t n,
    const uint8_t *accept, uint32_t max, uint32_t words, uint64_t *bits)
{
    int        sweep;
    uint32_t   L, s, k;
    uint64_t   bit;

#define slora_re_bit(st, l)                                                  \
    (bits[(size_t) (st) * words + (l) / 64] >> ((l) % 64) & 1)

    for (L = 0; L <= max; L++) {
        bit = (uint64_t) 1 << (L % 64);

        for (s = 0; s < n; s++) {
            if (L == 0) {
                bits[(size_t) s * words] |= accept[s] ? 1 : 0;
                continue;
            }

            for (k = e->off[s]; k < e->off[s + 1]; k++) {
                if (e->w[k] && slora_re_bit(e->to[k], L - 1)) {
                    bits[(size_t) s * words + L / 64] |= bit;
                    break;
                }
            }
        }

        for (sweep = 0; sweep < 4; sweep++) {
            for (s = 0; s < n; s++) {
                for (k = e->off[s]; k < e->off[s + 1]; k++) {
                    if (!e->w[k] && slora_re_bit(e->to[k], L)) {
                        bits[(size_t) s * words + L / 64] |= bit;
                        break;
                    }
                }
            }
        }
    }

#undef slora_re_bit
}
