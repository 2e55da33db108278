/*
 * test_pool.c: the unified pool's geometry (pages tile K+V rows and every
 * LoRA row width with no padding, on grouped-query shapes too), its
 * tensor-parallel slices (pages split in equal parts, widths that do not
 * split refused), the all-or-nothing allocator, the per-kind counts, and
 * that a double free aborts instead of corrupting the free list.
 */

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "slora_pool.h"


typedef struct {
    const char  *name;
    int32_t      layers, kv_dim, hidden, ffn, min_tokens;
    int64_t      want_elems;
    int32_t      want_tpp;
} geom_case_t;


static void test_geometry(void);
static void test_slices(void);
static void test_alloc(void);
static void test_stress(void);
static void test_double_free(void);


int
main(void)
{
    test_geometry();
    test_slices();
    test_alloc();
    test_stress();
    test_double_free();

    return done_testing();
}


static void
test_geometry(void)
{
    size_t              arena;
    int64_t             e;
    slora_err_t         err;
    slora_pool_t       *pool;
    slora_pool_geom_t   g;
    const geom_case_t  *c;

    static const geom_case_t  cases[] = {
        /* SmolLM2-135M: GQA, kv_dim 192 < hidden 576 */
        { "smollm2", 30, 192, 576, 1536, 0, 4608, 12 },
        /* Llama-2-7B: full MHA, ffn 11008 = 2^8 * 43 */
        { "llama2-7b", 32, 4096, 4096, 11008, 0, 352256, 43 },
        /* Llama-3-8B: GQA 4:1 */
        { "llama3-8b", 32, 1024, 4096, 14336, 0, 28672, 14 },
        /* tiny: lcm 128 holds 2 tokens, grown to 8 */
        { "tiny", 2, 32, 64, 128, 0, 512, 8 },
        { "tiny-16", 2, 32, 64, 128, 16, 1024, 16 },
        { NULL, 0, 0, 0, 0, 0, 0, 0 }
    };

    for (c = cases; c->name != NULL; c++) {
        g.n_layers = c->layers;
        g.kv_dim = c->kv_dim;
        g.hidden = c->hidden;
        g.ffn = c->ffn;
        g.elem_size = 4;
        g.min_tokens_per_page = c->min_tokens;
        g.slices = 0;

        arena = (size_t) 1000 * g.n_layers * (size_t) c->want_elems * 4 + 7;
        pool = slora_pool_create(&g, arena, &err);
        if (!ok(pool != NULL, "%s: created", c->name)) {
            diag("%s", err.msg);
            continue;
        }

        e = slora_pool_page_elems(pool);
        is_int(e, c->want_elems, "%s: page_elems", c->name);
        is_int(slora_pool_tokens_per_page(pool), c->want_tpp,
               "%s: tokens per page", c->name);
        ok(e % (2 * c->kv_dim) == 0 && e % c->kv_dim == 0
           && e % c->hidden == 0 && e % c->ffn == 0,
           "%s: every row width tiles a page", c->name);
        is_int((int64_t) slora_pool_tokens_per_page(pool) * 2 * c->kv_dim, e,
               "%s: K+V of the page's tokens fill it exactly", c->name);
        is_int(slora_pool_n_pages(pool), 1000, "%s: n_pages", c->name);
        is_int(slora_pool_offset(pool, 1, 3),
               (int64_t) (1000 + 3) * e, "%s: offset(1, 3)", c->name);
        is_int(slora_pool_layer_offset(pool, c->layers - 1),
               (int64_t) (c->layers - 1) * 1000 * e, "%s: layer offset",
               c->name);
        is_int(slora_pool_arena_bytes(pool), arena - 7,
               "%s: used arena bytes", c->name);
        is_int(slora_pool_slices(pool), 1, "%s: slices 0 is one", c->name);
        slora_pool_free(pool);
    }

    g.n_layers = 2;
    g.kv_dim = 32;
    g.hidden = 64;
    g.ffn = 128;
    g.elem_size = 4;
    g.min_tokens_per_page = 0;
    g.slices = 1;

    pool = slora_pool_create(&g, 2 * 512 * 4 * 2 - 1, &err);
    ok(pool == NULL && strstr(err.msg, "fewer than 2") != NULL,
       "arena below 2 pages is refused: %s", err.msg);

    /* 2^30 tokens of K and V 2^15 wide: 2^46 elements a layer */
    g.kv_dim = 1 << 15;
    g.hidden = 1 << 16;
    g.ffn = 1 << 17;
    g.min_tokens_per_page = 1 << 30;
    pool = slora_pool_create(&g, 1 << 20, &err);
    ok(pool == NULL && strstr(err.msg, "is too large") != NULL,
       "a page past 2^40 elements is refused: %s", err.msg);
    g.min_tokens_per_page = 0;

    /* three large primes: their least common multiple passes 2^40 */
    g.kv_dim = 65521;
    g.hidden = 65519;
    g.ffn = 65497;
    pool = slora_pool_create(&g, 1 << 20, &err);
    ok(pool == NULL && strstr(err.msg, "page size overflows") != NULL,
       "widths whose common multiple passes 2^40 are refused: %s", err.msg);
    g.hidden = 64;
    g.ffn = 128;

    g.kv_dim = 0;
    pool = slora_pool_create(&g, 1 << 20, &err);
    ok(pool == NULL && strstr(err.msg, "bad geometry") != NULL,
       "zero kv_dim is refused: %s", err.msg);
}


static void
test_slices(void)
{
    int32_t             i, n;
    slora_err_t         err;
    slora_pool_t       *pool;
    slora_pool_geom_t   g;

    static const int32_t  good[] = { 1, 2, 4, 8, 64 };

    /* SmolLM2-135M: hidden 576, kv_dim 192, ffn 1536, page 4608 */
    memset(&g, 0, sizeof(g));
    g.n_layers = 30;
    g.kv_dim = 192;
    g.hidden = 576;
    g.ffn = 1536;
    g.elem_size = 2;

    for (i = 0; i < (int32_t) (sizeof(good) / sizeof(good[0])); i++) {
        n = good[i];
        g.slices = n;
        pool = slora_pool_create(&g, (size_t) 100 * 30 * 4608 * 2, &err);
        if (!ok(pool != NULL, "smollm2, %d slices: created", n)) {
            diag("%s", err.msg);
            continue;
        }

        is_int(slora_pool_slices(pool), n, "%d slices: slices", n);
        is_int(slora_pool_page_elems(pool), 4608, "%d slices: the page is "
               "the same", n);
        ok(slora_pool_page_elems(pool) % n == 0
           && (slora_pool_page_elems(pool) / n) % (2 * (192 / n)) == 0
           && (slora_pool_page_elems(pool) / n) % (576 / n) == 0
           && (slora_pool_page_elems(pool) / n) % (1536 / n) == 0,
           "%d slices: a part holds whole K+V slices and row slices", n);
        is_int(slora_pool_n_pages(pool), 100, "%d slices: 100 pages", n);
        slora_pool_free(pool);
    }

    g.slices = 5;
    pool = slora_pool_create(&g, (size_t) 100 * 30 * 4608 * 2, &err);
    ok(pool == NULL && strstr(err.msg, "multiples of the 5 tensor-parallel")
       != NULL && strstr(err.msg, "hidden 576") != NULL,
       "hidden 576 in 5 slices refused: %s", err.msg);

    /* only kv_dim fails */
    g.kv_dim = 32;
    g.hidden = 64;
    g.ffn = 128;
    g.n_layers = 2;
    g.slices = 64;
    pool = slora_pool_create(&g, 1 << 20, &err);
    ok(pool == NULL && strstr(err.msg, "kv_dim 32") != NULL
       && strstr(err.msg, "64 tensor-parallel") != NULL,
       "kv_dim 32 in 64 slices refused: %s", err.msg);

    /* only ffn fails */
    g.kv_dim = 64;
    g.hidden = 64;
    g.ffn = 96;
    g.slices = 64;
    pool = slora_pool_create(&g, 1 << 20, &err);
    ok(pool == NULL && strstr(err.msg, "ffn 96") != NULL,
       "ffn 96 in 64 slices refused: %s", err.msg);

    g.ffn = 128;
    g.slices = -2;
    pool = slora_pool_create(&g, 1 << 20, &err);
    ok(pool == NULL && strstr(err.msg, "bad geometry") != NULL,
       "negative slices refused: %s", err.msg);
}


static void
test_alloc(void)
{
    int32_t             a[10], b[10], i, j, dup;
    slora_err_t         err;
    slora_pool_t       *pool;
    slora_pool_geom_t   g = { 2, 32, 64, 128, 4, 0, 1 };

    pool = slora_pool_create(&g, (size_t) 10 * 2 * 512 * 4, &err);
    if (!ok(pool != NULL, "10-page pool")) {
        return;
    }

    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 10, "all free");
    is_int(slora_pool_alloc(pool, SLORA_PAGE_KV, 4, a), SLORA_OK, "4 KV");
    ok(a[0] == 0 && a[1] == 1 && a[2] == 2 && a[3] == 3,
       "a fresh pool hands out pages 0, 1, 2, 3");
    is_int(slora_pool_alloc(pool, SLORA_PAGE_ADAPTER, 5, b), SLORA_OK,
           "5 adapter");
    is_int(slora_pool_count(pool, SLORA_PAGE_KV), 4, "KV count");
    is_int(slora_pool_count(pool, SLORA_PAGE_ADAPTER), 5, "adapter count");
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 1, "1 free");

    dup = 0;
    for (i = 0; i < 4; i++) {
        for (j = 0; j < 5; j++) {
            dup += a[i] == b[j];
        }
        is_int(slora_pool_page_kind(pool, a[i]), SLORA_PAGE_KV,
               "page %d is KV", a[i]);
    }
    is_int(dup, 0, "no page handed out twice");

    b[5] = -7;
    is_int(slora_pool_alloc(pool, SLORA_PAGE_KV, 2, b + 5), SLORA_BUSY,
           "2 pages from 1 free: busy");
    is_int(b[5], -7, "a refused alloc writes nothing");
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 1,
           "a refused alloc takes nothing");

    slora_pool_release(pool, 4, a);
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 5, "released KV");
    is_int(slora_pool_count(pool, SLORA_PAGE_KV), 0, "KV count back to 0");
    is_int(slora_pool_page_kind(pool, a[0]), SLORA_PAGE_FREE, "kind reset");

    is_int(slora_pool_alloc(pool, SLORA_PAGE_KV, 5, a), SLORA_OK,
           "5 after release");
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 0, "pool full");
    is_int(slora_pool_alloc(pool, SLORA_PAGE_KV, 1, a + 5), SLORA_BUSY,
           "full pool: busy");
    is_int(slora_pool_alloc(pool, SLORA_PAGE_KV, 0, a + 5), SLORA_OK,
           "zero pages always fit");

    slora_pool_release(pool, 5, a);
    slora_pool_release(pool, 5, b);
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 10, "all free again");

    slora_pool_free(pool);
}


static void
test_stress(void)
{
    int32_t             held[256], owner[256], n_held, i, n, k, bad;
    int32_t             pages[16], counts[3];
    uint32_t            x;
    slora_err_t         err;
    slora_pool_t       *pool;
    slora_pool_geom_t   g = { 1, 32, 64, 128, 4, 0, 1 };

    pool = slora_pool_create(&g, (size_t) 256 * 512 * 4, &err);
    if (!ok(pool != NULL, "256-page pool")) {
        return;
    }

    memset(owner, 0, sizeof(owner));
    n_held = 0;
    bad = 0;
    x = 12345;

    for (i = 0; i < 20000; i++) {
        x = x * 1103515245 + 12345;
        n = (int32_t) ((x >> 16) % 16) + 1;

        if ((x >> 8) & 1) {
            k = ((x >> 9) & 1) ? SLORA_PAGE_KV : SLORA_PAGE_ADAPTER;
            if (slora_pool_alloc(pool, k, n, pages) == SLORA_OK) {
                while (n--) {
                    bad += owner[pages[n]] != 0;
                    owner[pages[n]] = k;
                    held[n_held++] = pages[n];
                }
            } else {
                bad += n <= 256 - n_held;
            }

        } else {
            n = n < n_held ? n : n_held;
            n_held -= n;
            for (k = 0; k < n; k++) {
                owner[held[n_held + k]] = 0;
            }
            slora_pool_release(pool, n, held + n_held);
        }

        memset(counts, 0, sizeof(counts));
        for (k = 0; k < 256; k++) {
            counts[owner[k]]++;
            bad += (int) slora_pool_page_kind(pool, k) != owner[k];
        }
        for (k = 0; k < 3; k++) {
            bad += counts[k] != slora_pool_count(pool, k);
        }
    }

    is_int(bad, 0, "20000 random alloc/release: no double hand-out, "
           "kinds and counts match a shadow copy");

    slora_pool_release(pool, n_held, held);
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 256, "all returned");
    slora_pool_free(pool);
}


static void
test_double_free(void)
{
    int                 status;
    int32_t             p;
    pid_t               pid;
    slora_err_t         err;
    slora_pool_t       *pool;
    slora_pool_geom_t   g = { 1, 32, 64, 128, 4, 0, 1 };

    pool = slora_pool_create(&g, (size_t) 4 * 512 * 4, &err);
    slora_pool_alloc(pool, SLORA_PAGE_KV, 1, &p);
    slora_pool_release(pool, 1, &p);

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(2);
        slora_pool_release(pool, 1, &p);
        _exit(0);
    }

    waitpid(pid, &status, 0);
    ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
       "double free aborts");
    is_int(slora_pool_count(pool, SLORA_PAGE_FREE), 4,
           "parent's pool untouched");

    slora_pool_free(pool);
}
