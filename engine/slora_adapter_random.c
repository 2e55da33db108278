/*
 * slora_adapter_random.c: adapters with random weights named by a spec
 * instead of a folder, for benchmarks at the paper's scale (2000 7B
 * adapters do not fit a disk as files, and need not be read from one):
 *
 *     random:rank=16,targets=q+k+v+o,seed=7[,scale=0.5]
 *
 * is one adapter; an adapter directory given as
 *
 *     random:n=2000,ranks=8+16+32+64,targets=q+k+v+o[,seed=1][,scale=X]
 *
 * is a catalog of n of them named r0000, r0001, ... (ranks in turn,
 * seeds seed, seed + 1, ...), which slora_catalog_scan registers.
 *
 * The one idea: a spec stands where a folder would, and the two places
 * that read a folder (the config and the page images) read the spec
 * instead, so every tier, the prefetch thread and the pool treat these
 * adapters like any other. Values are a pure function of (seed, layer,
 * projection, side, index), with the sizes `slora mkadapter` gives: A
 * uniform within sqrt(3 / in), B within scale * sqrt(3 / rank).
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_adapter.h"
#include "slora_utf8.h"


static int slora_adapter_random_targets(const char *s, size_t n,
    uint32_t *mask);
static float slora_adapter_random_value(uint64_t seed, uint64_t key,
    uint64_t i);


int
slora_adapter_is_random(const char *dir)
{
    return dir != NULL && strncmp(dir, "random:", 7) == 0;
}


/*
 * Reads "key=value,key=value" after "random:". Keys: rank, n, ranks,
 * targets, seed, scale; which are allowed is the caller's business
 * (want_n: a catalog's spec).
 */

int
slora_adapter_random_spec(const char *spec, int want_n,
    slora_adapter_random_t *rs, slora_err_t *err)
{
    const char  *p, *end, *eq;
    char         key[16], *e;
    size_t       n, klen;
    int          quote;
    double       v;
    int32_t      k;

    memset(rs, 0, sizeof(*rs));
    rs->seed = 1;
    rs->scale = 0.5f;
    rs->proj_mask = (1u << SLORA_PROJ_Q) | (1u << SLORA_PROJ_V);
    quote = slora_utf8_cut(spec, 128);

    if (!slora_adapter_is_random(spec)) {
        return slora_err_set(err, SLORA_ERROR, "%.*s: not random:...",
                             slora_utf8_cut(spec, 64), spec);
    }

    for (p = spec + 7; *p != '\0'; p = *end ? end + 1 : end) {
        end = strchr(p, ',');
        end = end != NULL ? end : p + strlen(p);
        n = (size_t) (end - p);
        eq = memchr(p, '=', n);

        if (eq == NULL || (klen = (size_t) (eq - p)) >= sizeof(key)) {
            return slora_err_set(err, SLORA_ERROR, "%.*s: \"%.*s\" is not "
                                 "key=value", quote, spec, (int) n, p);
        }

        memcpy(key, p, klen);
        key[klen] = '\0';
        eq++;

        if (strcmp(key, "targets") == 0) {
            if (slora_adapter_random_targets(eq, (size_t) (end - eq),
                                             &rs->proj_mask)
                != SLORA_OK)
            {
                return slora_err_set(err, SLORA_ERROR, "%.*s: targets are "
                                     "q, k, v, o, gate, up, down joined by "
                                     "+", quote, spec);
            }
            continue;
        }

        if (strcmp(key, "ranks") == 0 && want_n) {
            rs->n_ranks = 0;

            while (eq < end) {
                errno = 0;
                v = strtod(eq, &e);

                if (errno != 0 || e == eq || v < 1
                    || v > SLORA_ADAPTER_MAX_RANK || v != (double) (int) v
                    || rs->n_ranks == SLORA_ADAPTER_RANDOM_RANKS
                    || (e != end && *e != '+'))
                {
                    return slora_err_set(err, SLORA_ERROR, "%.*s: ranks "
                                         "are integers 1..%d joined by +",
                                         quote, spec, SLORA_ADAPTER_MAX_RANK);
                }

                rs->ranks[rs->n_ranks++] = (int32_t) v;
                eq = e == end ? e : e + 1;
            }
            continue;
        }

        errno = 0;
        v = strtod(eq, &e);

        if (errno != 0 || e != end || !isfinite(v)) {
            return slora_err_set(err, SLORA_ERROR, "%.*s: %s: not a number",
                                 quote, spec, key);
        }

        if (strcmp(key, "rank") == 0 && !want_n && v >= 1
            && v <= SLORA_ADAPTER_MAX_RANK && v == (double) (int) v)
        {
            rs->ranks[0] = (int32_t) v;
            rs->n_ranks = 1;

        } else if (strcmp(key, "n") == 0 && want_n && v >= 1 && v <= 1000000
                   && v == (double) (int) v)
        {
            rs->n = (int32_t) v;

        } else if (strcmp(key, "seed") == 0 && v >= 0 && v < 1e15
                   && v == floor(v))
        {
            rs->seed = (uint64_t) v;

        } else if (strcmp(key, "scale") == 0 && v > 0 && v <= 1000) {
            rs->scale = (float) v;

        } else {
            return slora_err_set(err, SLORA_ERROR, "%.*s: %s=%.*s is not "
                                 "one of %s", quote, spec, key,
                                 (int) (end - eq), eq,
                                 want_n ? "n, ranks, targets, seed, scale"
                                        : "rank, targets, seed, scale");
        }
    }

    if (rs->n_ranks == 0 || (want_n && rs->n == 0)) {
        return slora_err_set(err, SLORA_ERROR, "%.*s: %s", quote, spec,
                             want_n ? "n= and ranks= are needed"
                                    : "rank= is needed");
    }

    for (k = 0; k < rs->n_ranks; k++) {
        if (rs->ranks[k] < 1) {
            return slora_err_set(err, SLORA_ERROR, "%.*s: bad rank", quote,
                                 spec);
        }
    }

    return SLORA_OK;
}


int
slora_adapter_random_config(const char *spec, slora_adapter_conf_t *conf,
    slora_err_t *err)
{
    slora_adapter_random_t  rs;

    if (slora_adapter_random_spec(spec, 0, &rs, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    memset(conf, 0, sizeof(*conf));
    conf->rank = rs.ranks[0];
    conf->alpha = (float) rs.ranks[0];
    conf->scale = 1.0f;
    conf->proj_mask = rs.proj_mask;

    return SLORA_OK;
}


int
slora_adapter_image_random(const slora_model_config_t *cfg,
    int64_t page_elems, int32_t slices, const slora_host_mem_t *mem,
    const char *name, const char *spec, slora_adapter_image_t *img,
    slora_err_t *err)
{
    slora_adapter_random_t  rs;
    int32_t                 l, p, side, r, j, rank, width, row, max_width;
    uint64_t                key;
    float                  *buf, amp;
    void                   *layer;

    memset(img, 0, sizeof(*img));
    img->mem = mem;

    if (slora_adapter_random_spec(spec, 0, &rs, err) != SLORA_OK
        || slora_adapter_random_config(spec, &img->conf, err) != SLORA_OK)
    {
        return slora_err_prefix(err, "adapter %s", name);
    }

    if (slora_adapter_plan(cfg, &img->conf, page_elems, slices, &img->plan,
                           err)
        != SLORA_OK)
    {
        return slora_err_prefix(err, "adapter %s", name);
    }

    max_width = 0;
    for (row = 0; row < img->plan.n_rows; row++) {
        if (img->plan.row_width[row] > max_width) {
            max_width = img->plan.row_width[row];
        }
    }

    (void) slora_adapter_image_alloc(img, cfg->n_layers, mem);
    buf = malloc((size_t) max_width * sizeof(float));

    if (img->host == NULL || buf == NULL) {
        free(buf);
        slora_adapter_image_free(img);
        return slora_err_set(err, SLORA_ERROR, "adapter %s: no memory for "
                             "%zu bytes", name, img->bytes);
    }

    rank = img->conf.rank;

    for (l = 0; l < cfg->n_layers; l++) {
        layer = slora_adapter_image_layer(img, l);

        for (p = 0; p < SLORA_PROJ_N; p++) {
            if (!(rs.proj_mask & (1u << p))) {
                continue;
            }

            for (side = 0; side < 2; side++) {
                width = side ? slora_proj_out_dim(cfg, p)
                             : slora_proj_in_dim(cfg, p);
                amp = side ? rs.scale * sqrtf(3.0f / (float) rank)
                           : sqrtf(3.0f / (float) slora_proj_in_dim(cfg, p));

                for (r = 0; r < rank; r++) {
                    row = img->plan.first_row[p][side] + r;
                    key = (((uint64_t) l * SLORA_PROJ_N + (uint64_t) p) * 2
                           + (uint64_t) side) * SLORA_ADAPTER_MAX_RANK
                          + (uint64_t) r;

                    for (j = 0; j < width; j++) {
                        buf[j] = amp * slora_adapter_random_value(rs.seed,
                                                                  key,
                                                                  (uint64_t) j);
                    }

                    slora_adapter_row_put(&img->plan, layer,
                                          img->elem_size, row, buf);
                }
            }
        }
    }

    free(buf);

    return SLORA_OK;
}


/* Catalog entry i of a random catalog: its name and its own spec. */
int
slora_adapter_random_entry(const slora_adapter_random_t *cat, int32_t i,
    char *name, size_t name_size, char *spec, size_t spec_size)
{
    static const char  *proj[SLORA_PROJ_N] = {
        "q", "k", "v", "o", "gate", "up", "down"
    };
    size_t              n;
    int                 p, first;

    snprintf(name, name_size, "r%0*d", cat->n > 10000 ? 6 : 4, i);

    n = (size_t) snprintf(spec, spec_size, "random:rank=%d,seed=%llu,"
                          "scale=%g,targets=",
                          cat->ranks[i % cat->n_ranks],
                          (unsigned long long) (cat->seed + (uint64_t) i),
                          (double) cat->scale);
    first = 1;

    for (p = 0; p < SLORA_PROJ_N && n < spec_size; p++) {
        if (cat->proj_mask & (1u << p)) {
            n += (size_t) snprintf(spec + n, spec_size - n, "%s%s",
                                   first ? "" : "+", proj[p]);
            first = 0;
        }
    }

    return n < spec_size ? SLORA_OK : SLORA_ERROR;
}


static int
slora_adapter_random_targets(const char *s, size_t n, uint32_t *mask)
{
    static const char  *proj[SLORA_PROJ_N] = {
        "q", "k", "v", "o", "gate", "up", "down"
    };
    const char         *end, *e;
    size_t              len;
    int                 p;

    *mask = 0;
    end = s + n;

    while (s < end) {
        e = memchr(s, '+', (size_t) (end - s));
        e = e != NULL ? e : end;
        len = (size_t) (e - s);

        for (p = 0; p < SLORA_PROJ_N; p++) {
            if (strlen(proj[p]) == len && strncmp(proj[p], s, len) == 0) {
                break;
            }
        }

        /* an unknown name, or nothing after a '+' */
        if (p == SLORA_PROJ_N || (e != end && e + 1 == end)) {
            return SLORA_ERROR;
        }

        *mask |= 1u << p;
        s = e == end ? e : e + 1;
    }

    return *mask != 0 ? SLORA_OK : SLORA_ERROR;
}


/* Uniform in [-1, 1): splitmix64 of (seed, key, i). */
static float
slora_adapter_random_value(uint64_t seed, uint64_t key, uint64_t i)
{
    uint64_t  x;

    x = seed * 0x9e3779b97f4a7c15ull ^ (key << 24) ^ i;
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;

    return 2.0f * (float) (x >> 40) / (float) (1 << 24) - 1.0f;
}
