/*
 * test_attention_cuda.cu: the attention family on the GPU against its
 * CPU twin (kernels/slora_attention_cpu.c and slora_rope_cpu.c,
 * compiled into this binary): paged decode and prefill attention and
 * the KV store, RoPE and the store in one launch, and the page-size
 * division they share (slora_fastdiv), and scores of -inf in each
 * kernel; then the prefill kernel's speed at the Llama-7B shape. Speaks
 * TAP; the timings are '#' lines.
 *
 * The one idea, as in test_kernels_cuda.cu: both sides see the same
 * bf16 values, each case draws fresh random inputs over shuffled pages
 * of several sizes (43 tokens, the pool's page at Llama-7B's shape, and
 * others that are no power of two), device outputs are poisoned before
 * each launch, and the error is ||gpu - cpu|| / ||cpu||.
 *
 *   test_attention_cuda [--no-bench]
 */

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <algorithm>
#include <cuda_runtime.h>

extern "C" {
#include "slora_rope.h"
#include "slora_attention.h"
#include "slora_random.h"
}

#include "tap.h"
#include "cuda_test.h"
#include "slora_cuda.cuh"


#define TOL_BF16       1e-2
#define N_SHARES       4      /* CPU twins run as shares 0 .. 3 */


static void test_fastdiv(void);
static void test_rope_store(void);
static void test_attention(void);
static void test_attention_inf(void);
static void bench_attention_prefill(void);
static void bench_attention_decode(void);


int
main(int argc, char **argv)
{
    cuda_test_devices();

    test_fastdiv();
    test_rope_store();
    test_attention();
    test_attention_inf();
    kstat_print();

    if (!(argc > 1 && strcmp(argv[1], "--no-bench") == 0)) {
        bench_attention_prefill();
        bench_attention_decode();
    }

    return done_testing();
}


/*
 * slora_fastdiv against the division, for every divisor up to 300, the
 * page sizes of larger pools and powers of two, at the edges of each
 * multiple and at random 32-bit numerators.
 */

static void
test_fastdiv(void)
{
    static const uint32_t  big[] = { 1000, 4096, 65537, 1u << 20,
                                     2147483647u, 2147483648u, 4294967295u };

    slora_fastdiv_t  f;
    uint32_t         d, n, k, i, bad;
    uint64_t         m;

    bad = 0;

    for (d = 1; d < 300 + sizeof(big) / sizeof(big[0]); d++) {
        f = slora_fastdiv_make(d < 300 ? d : big[d - 300]);

        for (k = 0; k < 64; k++) {
            for (i = 0; i < 3; i++) {
                m = (uint64_t) f.d * (k < 48 ? k : rng_next() % (1u << 20))
                    + i - 1;
                n = (uint32_t) (m > 0xffffffffull ? rng_next() : m);
                bad += slora_fastdiv(n, f) != n / f.d;
            }

            n = (uint32_t) rng_next() * 2654435761u + k;
            bad += slora_fastdiv(n, f) != n / f.d;
        }
    }

    ok(bad == 0, "fastdiv: n / d by multiply and shift, %u wrong", bad);
}


/*
 * RoPE and the paged store in one launch against the CPU's two calls:
 * q turned in place, k turned in place and into its page slot, v into
 * its own; four sequences of 1-100 new rows from positions 0-1000 over
 * shuffled pages, both layouts; a head_dim of 40 is sent back (-2). The
 * second round adds LoRA's fp32 deltas of the q|k|v rows first, which
 * the CPU's side rounds into q, k and v before its calls.
 */

static void
test_rope_store(void)
{
    /* heads, KV heads, head_dim, tokens a page, layout */
    static const int32_t  cfg[][5] = {
        { 32, 8, 128, 43, SLORA_ROPE_LAYOUT_NORM },
        { 9, 3, 64, 16, SLORA_ROPE_LAYOUT_NEOX },
        { 32, 32, 128, 6, SLORA_ROPE_LAYOUT_NEOX }
    };
    static const int32_t  rows[] = { 1, 40, 3, 100 };
    static const int32_t  first[] = { 0, 17, 1000, 250 };

    int32_t             ci, nh, nkv, hd, tpp, layout, kv_dim, s, i, np,
                        n_pages, qo[5], sp[4], kvp[5], *kvi, *pos, n_pos,
                        *d_qo, *d_sp, *d_kvp, *d_kvi, *d_pos;
    int64_t             page_elems, arena, n_rows, nq, nk, ld_d, t, j;
    uint16_t           *ah, *qh, *kh, *vh, *d_a, *d_q, *d_k, *d_v;
    float              *af, *qf, *kf, *vf, *ag, *qg, *kg, *table, *d_table,
                       *df, *d_d;
    slora_paged_kv_t    c;
    slora_seq_index_t   ix, dix;
    double              ea, eq, ek;
    int                 rc;

    n_pos = 2048;

    for (ci = 0; ci < 6; ci++) {
        nh = cfg[ci % 3][0];
        nkv = cfg[ci % 3][1];
        hd = cfg[ci % 3][2];
        tpp = cfg[ci % 3][3];
        layout = cfg[ci % 3][4];
        kv_dim = nkv * hd;
        page_elems = 2 * (int64_t) tpp * kv_dim;
        qo[0] = 0;
        kvp[0] = 0;

        for (s = 0; s < 4; s++) {
            sp[s] = first[s];
            qo[s + 1] = qo[s] + rows[s];
            np = (sp[s] + rows[s] + tpp - 1) / tpp;
            kvp[s + 1] = kvp[s] + np;
        }

        n_pages = kvp[4] + 3;
        kvi = (int32_t *) malloc(kvp[4] * 4);

        for (i = 0; i < kvp[4]; i++) {
            kvi[i] = (int32_t) ((i * 7 + 2) % n_pages);
        }

        n_rows = qo[4];
        pos = (int32_t *) malloc(n_rows * 4);

        for (s = 0; s < 4; s++) {
            for (i = qo[s]; i < qo[s + 1]; i++) {
                pos[i] = sp[s] + i - qo[s];
            }
        }

        arena = n_pages * page_elems;
        nq = n_rows * nh * hd;
        nk = n_rows * kv_dim;
        ah = (uint16_t *) malloc(arena * 2);
        af = (float *) malloc(arena * 4);
        ag = (float *) malloc(arena * 4);
        qh = (uint16_t *) malloc(nq * 2);
        qf = (float *) malloc(nq * 4);
        qg = (float *) malloc(nq * 4);
        kh = (uint16_t *) malloc(nk * 2);
        kf = (float *) malloc(nk * 4);
        kg = (float *) malloc(nk * 4);
        vh = (uint16_t *) malloc(nk * 2);
        vf = (float *) malloc(nk * 4);
        table = (float *) malloc((size_t) n_pos * hd * 4);

        fill(ah, af, arena, -1.0f, 1.0f);
        fill(qh, qf, nq, -2.0f, 2.0f);
        fill(kh, kf, nk, -2.0f, 2.0f);
        fill(vh, vf, nk, -1.0f, 1.0f);

        ld_d = (int64_t) (nh + 2 * nkv) * hd;
        df = NULL;
        d_d = NULL;

        if (ci >= 3) {
            df = (float *) malloc(n_rows * ld_d * 4);

            for (t = 0; t < n_rows; t++) {
                for (j = 0; j < ld_d; j++) {
                    df[t * ld_d + j] = rng_unif(-0.5f, 0.5f);
                }

                for (j = 0; j < (int64_t) nh * hd; j++) {
                    qf[t * nh * hd + j] = slora_bf16_to_f32(slora_f32_to_bf16(
                        qf[t * nh * hd + j] + df[t * ld_d + j]));
                }

                for (j = 0; j < kv_dim; j++) {
                    kf[t * kv_dim + j] = slora_bf16_to_f32(slora_f32_to_bf16(
                        kf[t * kv_dim + j] + df[t * ld_d + nh * hd + j]));
                    vf[t * kv_dim + j] = slora_bf16_to_f32(slora_f32_to_bf16(
                        vf[t * kv_dim + j]
                        + df[t * ld_d + nh * hd + kv_dim + j]));
                }
            }

            d_d = (float *) dup_to_dev(df, n_rows * ld_d * 4);
        }

        rc = slora_rope_table(table, n_pos, hd, 10000.0f, NULL);

        c.kv = af;
        c.page_elems = page_elems;
        c.tokens_per_page = tpp;
        c.n_kv_heads = nkv;
        c.head_dim = hd;
        ix.n_seqs = 4;
        ix.qo_indptr = qo;
        ix.seq_pos = sp;
        ix.kv_indptr = kvp;
        ix.kv_indices = kvi;
        rc |= slora_rope(qf, nh * hd, kf, kv_dim, pos, n_rows, nh, nkv, hd,
                         10000.0f, NULL, layout, 0, 1);
        rc |= slora_kv_store(&c, &ix, kf, kv_dim, vf, kv_dim);

        d_a = (uint16_t *) dup_to_dev(ah, arena * 2);
        d_q = (uint16_t *) dup_to_dev(qh, nq * 2);
        d_k = (uint16_t *) dup_to_dev(kh, nk * 2);
        d_v = (uint16_t *) dup_to_dev(vh, nk * 2);
        d_pos = (int32_t *) dup_to_dev(pos, n_rows * 4);
        d_table = (float *) dup_to_dev(table, (size_t) n_pos * hd * 4);
        d_qo = (int32_t *) dup_to_dev(qo, 5 * 4);
        d_sp = (int32_t *) dup_to_dev(sp, 4 * 4);
        d_kvp = (int32_t *) dup_to_dev(kvp, 5 * 4);
        d_kvi = (int32_t *) dup_to_dev(kvi, kvp[4] * 4);
        dix.n_seqs = 4;
        dix.qo_indptr = d_qo;
        dix.seq_pos = d_sp;
        dix.kv_indptr = d_kvp;
        dix.kv_indices = d_kvi;

        rc |= slora_rope_store_cuda(d_q, nh * hd, d_k, kv_dim, d_v, kv_dim,
                                    d_pos, n_rows, nh, nkv, hd, d_table,
                                    layout, d_a, page_elems, tpp, &dix, d_d,
                                    ld_d, NULL);
        CK(cudaDeviceSynchronize());
        from_dev_bf(ag, d_a, arena);
        from_dev_bf(qg, d_q, nq);
        from_dev_bf(kg, d_k, nk);
        ea = rel_err(ag, af, arena);
        eq = rel_err(qg, qf, nq);
        ek = rel_err(kg, kf, nk);
        note("rope + kv store", std::max(ea, std::max(eq, ek)));
        ok(rc == 0 && ea <= TOL_BF16 && eq <= TOL_BF16 && ek <= TOL_BF16,
           "rope + kv store %s h%d/%d d%d page %d%s: arena %.1e q %.1e "
           "k %.1e", layout ? "neox" : "norm", nh, nkv, hd, tpp,
           d_d != NULL ? ", LoRA deltas" : "", ea, eq, ek);

        if (ci == 0) {
            ok(slora_rope_store_cuda(d_q, nh * hd, d_k, kv_dim, d_v, kv_dim,
                                     d_pos, n_rows, 16, 16, 40, d_table,
                                     layout, d_a, page_elems, tpp, &dix,
                                     NULL, 0, NULL) == -2,
               "rope + kv store sends a head_dim of 40 back to two calls");
        }

        if (d_d != NULL) {
            ok(slora_rope_store_cuda(d_q, nh * hd, d_k, kv_dim, d_v, kv_dim,
                                     d_pos, n_rows, nh, nkv, hd, d_table,
                                     layout, d_a, page_elems, tpp, &dix, d_d,
                                     ld_d - 8, NULL) == -1,
               "rope + kv store refuses deltas narrower than q|k|v");
            CK(cudaFree(d_d));
            free(df);
        }

        CK(cudaFree(d_a)); CK(cudaFree(d_q)); CK(cudaFree(d_k));
        CK(cudaFree(d_v)); CK(cudaFree(d_pos)); CK(cudaFree(d_table));
        CK(cudaFree(d_qo)); CK(cudaFree(d_sp)); CK(cudaFree(d_kvp));
        CK(cudaFree(d_kvi));
        free(kvi); free(pos); free(ah); free(af); free(ag); free(qh);
        free(qf); free(qg); free(kh); free(kf); free(kg); free(vh); free(vf);
        free(table);
    }
}


/* The decode kernel's work list for a step of shape sh, as the engine
 * writes it into its index: built on the host from qo, sp and kvp,
 * copied to the device (*d_items and *d_first, which the caller frees).
 * Returns the items, -1 where they outgrow the shape. */
static int32_t
dec_items_to_dev(slora_seq_index_t *dix, const slora_dec_shape_t *sh,
    const int32_t *qo, const int32_t *sp, const int32_t *kvp,
    int32_t **d_items, int32_t **d_first)
{
    int32_t  *items, *first, n;
    size_t    ni, nf;

    ni = (size_t) std::max(sh->n_items, 1) * 4 * sizeof(int32_t);
    nf = (size_t) std::max(dix->n_seqs, 1) * sizeof(int32_t);
    items = (int32_t *) malloc(ni);
    first = (int32_t *) malloc(nf);
    n = slora_attention_decode_items(sh, dix->n_seqs, qo, sp, kvp, items,
                                     first);
    *d_items = (int32_t *) dup_to_dev(items, ni);
    *d_first = (int32_t *) dup_to_dev(first, nf);
    dix->dec_items = *d_items;
    dix->dec_first = *d_first;
    free(items);
    free(first);

    return n;
}


/*
 * Paged attention: the arena starts as random values (earlier tokens of
 * every sequence), new rows are stored by both sides, then both attend.
 */

static void
test_attention(void)
{
    /* heads, KV heads, head_dim, tokens a page: 43 is the pool's page
     * for Llama-7B's shape (slora_pool.c), 6 another that is no power
     * of two; groups of 1 to 16 query heads a KV head (7: Qwen2.5-7B's,
     * 12: Mistral Large 2's, 16: Llama 3.1 405B's on 8 GPUs) and 32,
     * which the decode kernel leaves to the tiled one */
    static const int32_t  cfg[][4] = {
        { 32, 8, 128, 43 }, { 9, 3, 64, 16 }, { 8, 8, 64, 8 },
        { 32, 1, 64, 6 }, { 16, 4, 256, 4 }, { 32, 32, 128, 16 },
        { 28, 4, 128, 43 }, { 64, 8, 128, 16 }, { 16, 8, 64, 43 },
        { 10, 2, 64, 7 }, { 96, 8, 128, 43 }, { 64, 4, 128, 16 },
        { 18, 2, 64, 7 }
    };
    /* prefill: rows of a chunk and where it starts; 300 rows from 70
     * span five row tiles and cross tile edges on the diagonal */
    static const int32_t  pre_rows[] = { 1, 40, 100, 3, 300 };
    static const int32_t  pre_pos[] = { 600, 17, 250, 1000, 70 };

    int32_t             ci, mode, nh, nkv, hd, tpp, kv_dim, n_seqs, s, n_pages,
                        max_q, max_ctx, np, *qo, *sp, *kvp, *kvi, *perm, i,
                        *d_qo, *d_sp, *d_kvp, *d_kvi;
    int64_t             page_elems, arena, n_rows, nq, nk;
    uint16_t           *ah, *qh, *kh, *vh, *d_a, *d_q, *d_k, *d_v, *d_o,
                       *back;
    float              *af, *qf, *kf, *vf, *oc, *og, *work;
    size_t              ws, dws;
    void               *d_work;
    int32_t             group, n_items, *d_items, *d_first, *items;
    int32_t            *first, *t, whole;
    int64_t             n_dec, dec_ctx;
    slora_dec_shape_t   sh;
    uint16_t           *raw;
    float              *dc;
    int                 kept;
    slora_paged_kv_t    c;
    slora_seq_index_t   ix, dix;
    double              e;
    int                 rc, stored, ith;

    for (ci = 0; ci < (int32_t) (sizeof(cfg) / sizeof(cfg[0])); ci++) {
        for (mode = 0; mode < 2; mode++) {
            nh = cfg[ci][0];
            nkv = cfg[ci][1];
            hd = cfg[ci][2];
            tpp = cfg[ci][3];
            kv_dim = nkv * hd;
            page_elems = 2 * (int64_t) tpp * kv_dim;
            n_seqs = mode == 0 ? 7 : 5;
            qo = (int32_t *) malloc((n_seqs + 1) * 4);
            sp = (int32_t *) malloc(n_seqs * 4);
            kvp = (int32_t *) malloc((n_seqs + 1) * 4);
            qo[0] = 0;
            kvp[0] = 0;
            max_q = 0;
            max_ctx = 0;

            for (s = 0; s < n_seqs; s++) {
                n_rows = mode == 0 ? 1 : pre_rows[s];
                /* decode: a first token, one long context (many
                 * splits of the decode kernel), the rest at random */
                sp[s] = mode == 1 ? pre_pos[s]
                        : s == 0  ? 0
                        : s == 1  ? 2000 + (int32_t) (rng_next() % 200)
                        : (int32_t) (rng_next() % 700);
                qo[s + 1] = qo[s] + (int32_t) n_rows;
                np = (sp[s] + (int32_t) n_rows + tpp - 1) / tpp;
                kvp[s + 1] = kvp[s] + np;
                max_q = std::max(max_q, (int32_t) n_rows);
                max_ctx = std::max(max_ctx, sp[s] + (int32_t) n_rows);
            }

            n_pages = kvp[n_seqs] + 5;
            perm = (int32_t *) malloc(n_pages * 4);
            kvi = (int32_t *) malloc(kvp[n_seqs] * 4);

            for (i = 0; i < n_pages; i++) {
                perm[i] = i;
            }

            for (i = n_pages - 1; i > 0; i--) {
                std::swap(perm[i], perm[rng_next() % (i + 1)]);
            }

            memcpy(kvi, perm, kvp[n_seqs] * 4);

            arena = n_pages * page_elems;
            n_rows = qo[n_seqs];
            nq = n_rows * nh * hd;
            nk = n_rows * kv_dim;
            ah = (uint16_t *) malloc(arena * 2);
            af = (float *) malloc(arena * 4);
            back = (uint16_t *) malloc(arena * 2);
            qh = (uint16_t *) malloc(nq * 2);
            qf = (float *) malloc(nq * 4);
            kh = (uint16_t *) malloc(nk * 2);
            kf = (float *) malloc(nk * 4);
            vh = (uint16_t *) malloc(nk * 2);
            vf = (float *) malloc(nk * 4);
            oc = (float *) malloc(nq * 4);
            og = (float *) malloc(nq * 4);
            dc = (float *) malloc(nq * 4);

            fill(ah, af, arena, -1.5f, 1.5f);
            fill(qh, qf, nq, -1.5f, 1.5f);
            fill(kh, kf, nk, -1.5f, 1.5f);
            fill(vh, vf, nk, -1.0f, 1.0f);

            c.kv = af;
            c.page_elems = page_elems;
            c.tokens_per_page = tpp;
            c.n_kv_heads = nkv;
            c.head_dim = hd;
            ix.n_seqs = n_seqs;
            ix.qo_indptr = qo;
            ix.seq_pos = sp;
            ix.kv_indptr = kvp;
            ix.kv_indices = kvi;
            ws = slora_attention_workspace_size(max_ctx, N_SHARES);
            work = (float *) malloc(ws);

            rc = slora_kv_store(&c, &ix, kf, kv_dim, vf, kv_dim);
            for (ith = 0; ith < N_SHARES; ith++) {
                rc |= slora_attention(oc, nh * hd, qf, nh * hd, nh, &c, &ix,
                                      work, ws, ith, N_SHARES);
            }

            d_a = (uint16_t *) dup_to_dev(ah, arena * 2);
            d_q = (uint16_t *) dup_to_dev(qh, nq * 2);
            d_k = (uint16_t *) dup_to_dev(kh, nk * 2);
            d_v = (uint16_t *) dup_to_dev(vh, nk * 2);
            d_o = (uint16_t *) dmalloc(nq * 2);
            d_qo = (int32_t *) dup_to_dev(qo, (n_seqs + 1) * 4);
            d_sp = (int32_t *) dup_to_dev(sp, n_seqs * 4);
            d_kvp = (int32_t *) dup_to_dev(kvp, (n_seqs + 1) * 4);
            d_kvi = (int32_t *) dup_to_dev(kvi, kvp[n_seqs] * 4);
            CK(cudaMemset(d_o, 0xff, nq * 2));
            dix.n_seqs = n_seqs;
            dix.qo_indptr = d_qo;
            dix.seq_pos = d_sp;
            dix.kv_indptr = d_kvp;
            dix.kv_indices = d_kvi;

            rc |= slora_kv_store_cuda(d_a, page_elems, tpp, nkv, hd, &dix,
                                      max_q, d_k, kv_dim, d_v, kv_dim, NULL);
            rc |= slora_attention_cuda(d_o, nh * hd, d_q, nh * hd, nh, d_a,
                                       page_elems, tpp, nkv, hd, &dix, max_q,
                                       NULL);
            CK(cudaDeviceSynchronize());
            CK(cudaMemcpy(back, d_a, arena * 2, cudaMemcpyDeviceToHost));
            from_dev_bf(og, d_o, nq);

            stored = 1;

            for (i = 0; i < arena; i++) {
                stored &= back[i] == slora_f32_to_bf16(af[i]);
            }

            e = rel_err(og, oc, nq);
            note(mode == 0 ? "attention decode" : "attention prefill", e);
            ok(rc == 0 && stored && e <= TOL_BF16,
               "attention %s h%d/%d d%d page %d, %d seqs, ctx <= %d: "
               "%.1e, kv store %s", mode == 0 ? "decode" : "prefill",
               nh, nkv, hd, tpp, n_seqs, max_ctx, e,
               stored ? "bit-exact" : "DIFFERS");

            /* the split decode kernel on the same pages: it takes the
             * sequences of one row (every one in decode mode, the first
             * of the prefill chunks) and leaves every other row as it
             * was; -2 for a group it leaves to the tiled kernel */
            dec_ctx = 0;

            for (s = 0; s < n_seqs; s++) {
                dec_ctx += qo[s + 1] - qo[s] == 1 ? sp[s] + 1 : 0;
            }

            dws = slora_attention_decode_work_size(n_seqs, nh, nkv, hd,
                                                   max_ctx, dec_ctx);
            d_work = dws > 0 ? dmalloc(dws) : NULL;
            slora_attention_decode_shape(n_seqs, nh, nkv, hd, max_ctx,
                                         dec_ctx, &sh);
            n_items = dec_items_to_dev(&dix, &sh, qo, sp, kvp, &d_items,
                                       &d_first);
            CK(cudaMemset(d_o, 0xff, nq * 2));
            rc = slora_attention_decode_cuda(d_o, nh * hd, d_q, nh * hd, nh,
                                             d_a, page_elems, tpp, nkv, hd,
                                             &dix, max_ctx, dec_ctx, d_work,
                                             dws, NULL);
            CK(cudaDeviceSynchronize());

            /* groups past 16 go to the tiled kernel, and so do 5 to 7
             * and 9 to 16 where $SLORA_CUDA_DECODE_MMA=0 keeps the tensor
             * cores out of it */
            group = nh / nkv;

            if (group > 16
                || (!slora_env_on("SLORA_CUDA_DECODE_MMA")
                    && ((group >= 5 && group <= 7) || group > 8)))
            {
                ok(rc == -2, "decode kernel h%d/%d: refused (-2), left to "
                   "the tiled kernel", nh, nkv);

            } else {
                raw = (uint16_t *) malloc(nq * 2);
                CK(cudaMemcpy(raw, d_o, nq * 2, cudaMemcpyDeviceToHost));
                n_dec = 0;
                kept = 1;

                for (s = 0; s < n_seqs; s++) {
                    for (i = qo[s] * nh * hd; i < qo[s + 1] * nh * hd; i++) {
                        if (qo[s + 1] - qo[s] == 1) {
                            og[n_dec] = slora_bf16_to_f32(raw[i]);
                            dc[n_dec++] = oc[i];

                        } else {
                            kept &= raw[i] == 0xffff;
                        }
                    }
                }

                e = rel_err(og, dc, n_dec);
                note("attention decode kernel", e);
                ok(rc == 0 && e <= TOL_BF16 && kept && n_dec > 0,
                   "decode kernel h%d/%d d%d page %d, %s batch of %d seqs, "
                   "ctx <= %d, %d items, splits of %d: %.1e over %lld "
                   "values, the chunks' rows %s", nh, nkv, hd, tpp,
                   mode == 0 ? "decode" : "prefill", n_seqs, max_ctx,
                   n_items, sh.chunk, e, (long long) n_dec,
                   kept ? "untouched" : "WRITTEN");
                free(raw);
            }

            /* the work list: each decode row's splits once, in order,
             * with its query row, pages and positions, those of a row
             * split in more than one before every row read whole; a
             * list that outgrows its shape is refused, and so is a
             * launch without the list */
            if (sh.chunk > 0) {
                items = (int32_t *) malloc(4 * sh.n_items * 4);
                first = (int32_t *) malloc(n_seqs * 4);
                kept = slora_attention_decode_items(&sh, n_seqs, qo, sp, kvp,
                                                    items, first)
                       == n_items;
                n_dec = 0;

                for (s = 0; s < n_seqs; s++) {
                    if (qo[s + 1] - qo[s] != 1) {
                        kept &= first[s] == -1;
                        continue;
                    }

                    np = (sp[s] + sh.chunk) / sh.chunk;

                    for (i = 0; i < np; i++) {
                        t = items + 4 * (first[s] + i);
                        kept &= t[0] == qo[s] && t[1] == kvp[s]
                                && t[2] == (np == 1 ? -1 : i * sh.chunk)
                                && t[3] == std::min(sp[s] + 1,
                                                    (i + 1) * sh.chunk);
                        n_dec++;
                    }
                }

                /* no split row's item after a whole row's */
                whole = 0;

                for (i = 0; i < (int32_t) n_dec; i++) {
                    kept &= !(items[4 * i + 2] >= 0 && whole);
                    whole |= items[4 * i + 2] < 0;
                }

                for (i = 4 * (int32_t) n_dec; i < 4 * sh.n_items; i++) {
                    kept &= items[i] == -1;
                }

                kept &= n_dec == n_items;
                ok(kept, "decode work list h%d/%d %s batch: %d items of "
                   "at most %d, every decode row's splits once, split "
                   "rows first", nh, nkv, mode == 0 ? "decode" : "prefill",
                   n_items, sh.n_items);

                if (ci == 0 && mode == 0) {
                    sh.n_items = n_items - 1;
                    ok(slora_attention_decode_items(&sh, n_seqs, qo, sp, kvp,
                                                    items, first) == -1,
                       "decode work list: %d items for room for %d are "
                       "refused", n_items, sh.n_items);
                    dix.dec_items = NULL;
                    ok(slora_attention_decode_cuda(d_o, nh * hd, d_q,
                                                   nh * hd, nh, d_a,
                                                   page_elems, tpp, nkv, hd,
                                                   &dix, max_ctx, dec_ctx,
                                                   d_work, dws, NULL) == -1,
                       "decode kernel: refused without its work list");
                }

                free(items);
                free(first);
            }

            CK(cudaFree(d_items));
            CK(cudaFree(d_first));

            if (d_work != NULL) {
                CK(cudaFree(d_work));
            }

            CK(cudaFree(d_a)); CK(cudaFree(d_q)); CK(cudaFree(d_k));
            CK(cudaFree(d_v)); CK(cudaFree(d_o)); CK(cudaFree(d_qo));
            CK(cudaFree(d_sp)); CK(cudaFree(d_kvp)); CK(cudaFree(d_kvi));
            free(qo); free(sp); free(kvp); free(kvi); free(perm);
            free(ah); free(af); free(back); free(qh); free(qf); free(kh);
            free(kf); free(vh); free(vf); free(oc); free(og); free(dc);
            free(work);
        }
    }
}


/*
 * Scores of -inf: the keys of the first 48 positions of every sequence
 * are -inf in their first element and every query is +1 there, so those
 * positions score -inf for every head and weigh nothing; a row with no
 * other position (a context of 40, the first 48 rows of a chunk from 0)
 * is NaN, as on the CPU (exp(-inf - -inf)). 48 is more than a tile of
 * the prefill kernel or a warp's first of the decode kernel and less
 * than a split of the latter, so each starts on nothing but -inf and
 * goes on to finite scores. Each kernel in turn: the
 * decode kernel on CUDA cores (a group of 1) and on tensor cores (4),
 * the tensor-core prefill kernel (head_dim 128) and the tiled one (80).
 * The GPU must give NaN where the CPU does and its values elsewhere.
 */

static void
test_attention_inf(void)
{
    /* heads, KV heads, head_dim, tokens a page, decode (1) or chunks */
    static const int32_t  cfg[][5] = {
        { 8, 8, 128, 16, 1 }, { 32, 8, 128, 43, 1 },
        { 16, 4, 128, 43, 0 }, { 8, 2, 80, 16, 0 }
    };
    /* decode: contexts, the last split over the decode kernel's blocks;
     * chunks: rows and first positions */
    static const int32_t  dec_ctx0[] = { 40, 300, 1000, 65, 2100 };
    static const int32_t  pre_rows[] = { 100, 50, 1, 70 };
    static const int32_t  pre_pos[] = { 0, 200, 30, 10 };

    int32_t             ci, nh, nkv, hd, tpp, dec, kv_dim, n_seqs, s, i, t,
                        h, np, max_q, max_ctx, n_pages, *qo, *sp, *kvp, *kvi,
                        *d_qo, *d_sp, *d_kvp, *d_kvi, *d_items, *d_first;
    int64_t             page_elems, arena, n_rows, nq, k, n_ok, n_nan,
                        nan_bad, dec_ctx;
    uint16_t           *ah, *qh, *d_a, *d_q, *d_o;
    float              *af, *qf, *oc, *og, *work;
    size_t              ws, dws;
    void               *d_work;
    slora_dec_shape_t   sh;
    slora_paged_kv_t    c;
    slora_seq_index_t   ix, dix;
    double              e;
    int                 rc, ith;

    for (ci = 0; ci < (int32_t) (sizeof(cfg) / sizeof(cfg[0])); ci++) {
        nh = cfg[ci][0];
        nkv = cfg[ci][1];
        hd = cfg[ci][2];
        tpp = cfg[ci][3];
        dec = cfg[ci][4];
        kv_dim = nkv * hd;
        page_elems = 2 * (int64_t) tpp * kv_dim;
        n_seqs = dec ? 5 : 4;
        qo = (int32_t *) malloc((n_seqs + 1) * 4);
        sp = (int32_t *) malloc(n_seqs * 4);
        kvp = (int32_t *) malloc((n_seqs + 1) * 4);
        qo[0] = 0;
        kvp[0] = 0;
        max_q = 0;
        max_ctx = 0;
        dec_ctx = 0;

        for (s = 0; s < n_seqs; s++) {
            sp[s] = dec ? dec_ctx0[s] - 1 : pre_pos[s];
            qo[s + 1] = qo[s] + (dec ? 1 : pre_rows[s]);
            np = (sp[s] + qo[s + 1] - qo[s] + tpp - 1) / tpp;
            kvp[s + 1] = kvp[s] + np;
            max_q = std::max(max_q, qo[s + 1] - qo[s]);
            max_ctx = std::max(max_ctx, sp[s] + qo[s + 1] - qo[s]);
            dec_ctx += dec ? sp[s] + 1 : 0;
        }

        n_pages = kvp[n_seqs] + 3;
        kvi = (int32_t *) malloc(kvp[n_seqs] * 4);

        for (i = 0; i < kvp[n_seqs]; i++) {
            kvi[i] = (int32_t) ((i * 7 + 2) % n_pages);
        }

        arena = n_pages * page_elems;
        n_rows = qo[n_seqs];
        nq = n_rows * nh * hd;
        ah = (uint16_t *) malloc(arena * 2);
        af = (float *) malloc(arena * 4);
        qh = (uint16_t *) malloc(nq * 2);
        qf = (float *) malloc(nq * 4);
        oc = (float *) malloc(nq * 4);
        og = (float *) malloc(nq * 4);

        /* every position is in the arena already: no store */
        fill(ah, af, arena, -1.5f, 1.5f);
        fill(qh, qf, nq, -1.5f, 1.5f);

        for (s = 0; s < n_seqs; s++) {
            for (t = 0; t < 48 && t < sp[s] + qo[s + 1] - qo[s]; t++) {
                for (h = 0; h < nkv; h++) {
                    k = (int64_t) kvi[kvp[s] + t / tpp] * page_elems
                        + (int64_t) (t % tpp) * kv_dim + (int64_t) h * hd;
                    ah[k] = slora_f32_to_bf16(-INFINITY);
                    af[k] = -INFINITY;
                }
            }
        }

        for (k = 0; k < n_rows * nh; k++) {
            qh[k * hd] = slora_f32_to_bf16(1.0f);
            qf[k * hd] = 1.0f;
        }

        c.kv = af;
        c.page_elems = page_elems;
        c.tokens_per_page = tpp;
        c.n_kv_heads = nkv;
        c.head_dim = hd;
        ix.n_seqs = n_seqs;
        ix.qo_indptr = qo;
        ix.seq_pos = sp;
        ix.kv_indptr = kvp;
        ix.kv_indices = kvi;
        ws = slora_attention_workspace_size(max_ctx, N_SHARES);
        work = (float *) malloc(ws);
        rc = 0;

        for (ith = 0; ith < N_SHARES; ith++) {
            rc |= slora_attention(oc, nh * hd, qf, nh * hd, nh, &c, &ix,
                                  work, ws, ith, N_SHARES);
        }

        d_a = (uint16_t *) dup_to_dev(ah, arena * 2);
        d_q = (uint16_t *) dup_to_dev(qh, nq * 2);
        d_o = (uint16_t *) dmalloc(nq * 2);
        d_qo = (int32_t *) dup_to_dev(qo, (n_seqs + 1) * 4);
        d_sp = (int32_t *) dup_to_dev(sp, n_seqs * 4);
        d_kvp = (int32_t *) dup_to_dev(kvp, (n_seqs + 1) * 4);
        d_kvi = (int32_t *) dup_to_dev(kvi, kvp[n_seqs] * 4);
        CK(cudaMemset(d_o, 0, nq * 2));
        dix.n_seqs = n_seqs;
        dix.qo_indptr = d_qo;
        dix.seq_pos = d_sp;
        dix.kv_indptr = d_kvp;
        dix.kv_indices = d_kvi;
        dix.dec_items = NULL;
        dix.dec_first = NULL;
        d_items = NULL;
        d_first = NULL;
        d_work = NULL;

        if (dec) {
            dws = slora_attention_decode_work_size(n_seqs, nh, nkv, hd,
                                                   max_ctx, dec_ctx);
            d_work = dws > 0 ? dmalloc(dws) : NULL;
            slora_attention_decode_shape(n_seqs, nh, nkv, hd, max_ctx,
                                         dec_ctx, &sh);
            rc |= dec_items_to_dev(&dix, &sh, qo, sp, kvp, &d_items,
                                   &d_first) < 0;
            rc |= slora_attention_decode_cuda(d_o, nh * hd, d_q, nh * hd, nh,
                                              d_a, page_elems, tpp, nkv, hd,
                                              &dix, max_ctx, dec_ctx, d_work,
                                              dws, NULL);

        } else {
            rc |= slora_attention_cuda(d_o, nh * hd, d_q, nh * hd, nh, d_a,
                                       page_elems, tpp, nkv, hd, &dix, max_q,
                                       NULL);
        }

        CK(cudaDeviceSynchronize());
        from_dev_bf(og, d_o, nq);

        /* the CPU's NaNs must be the GPU's; the rest is compared as
         * usual, packed to the front */
        n_ok = 0;
        n_nan = 0;
        nan_bad = 0;

        for (k = 0; k < nq; k++) {
            if (isnan(oc[k])) {
                n_nan++;
                nan_bad += !isnan(og[k]);
                continue;
            }

            oc[n_ok] = oc[k];
            og[n_ok++] = og[k];
        }

        e = rel_err(og, oc, n_ok);
        note("attention, -inf scores", e);
        ok(rc == 0 && e <= TOL_BF16 && nan_bad == 0 && n_nan > 0,
           "-inf scores, %s h%d/%d d%d page %d: %.1e over %lld values, "
           "%lld of %lld NaN where the CPU's are", dec ? "decode kernel"
           : "attention", nh, nkv, hd, tpp, e, (long long) n_ok,
           (long long) (n_nan - nan_bad), (long long) n_nan);

        if (d_items != NULL) {
            CK(cudaFree(d_items));
            CK(cudaFree(d_first));
        }

        if (d_work != NULL) {
            CK(cudaFree(d_work));
        }

        CK(cudaFree(d_a)); CK(cudaFree(d_q)); CK(cudaFree(d_o));
        CK(cudaFree(d_qo)); CK(cudaFree(d_sp)); CK(cudaFree(d_kvp));
        CK(cudaFree(d_kvi));
        free(qo); free(sp); free(kvp); free(kvi); free(ah); free(af);
        free(qh); free(qf); free(oc); free(og); free(work);
    }
}


/*
 * Prefill attention, Llama-7B's heads (32 of 128, no grouping): chunks
 * of 4096 rows as a prefill step holds them, 16 prompts of 256 and one
 * of 4096, each from position 0; TFLOP/s counts the causal half of Q K^T
 * and P V (4 d flops a query-key pair).
 */

/* The timed benches' batch: every sequence rows query rows at the end of
 * a context of ctx positions (the first sequence's ctx0: one long
 * context among short ones), its pages in a shuffled order as a pool
 * hands them out, random K, V and queries. */
typedef struct {
    int32_t             *host[4];       /* qo, kv_indptr, seq_pos, pages */
    int32_t             *dev[4];
    uint16_t            *d_a;           /* one layer's arena */
    uint16_t            *d_q;
    uint16_t            *d_o;
    int32_t             *d_items;       /* the decode work list, or NULL */
    int32_t             *d_first;
    slora_seq_index_t    dix;
} bench_batch_t;


static int
bench_batch_make(bench_batch_t *b, int32_t n_seqs, int32_t rows,
    int32_t ctx0, int32_t ctx, int32_t tpp, int64_t page_elems,
    int32_t q_dim)
{
    int32_t  s, np, np0, *qo, *kvp, *sp, *kvi;
    int64_t  i, n_pages, n_rows;
    int      rc;

    np0 = (ctx0 + tpp - 1) / tpp;
    np = (ctx + tpp - 1) / tpp;
    n_pages = np0 + (int64_t) (n_seqs - 1) * np;
    n_rows = (int64_t) n_seqs * rows;
    qo = (int32_t *) malloc((n_seqs + 1) * 4);
    kvp = (int32_t *) malloc((n_seqs + 1) * 4);
    sp = (int32_t *) malloc(n_seqs * 4);
    kvi = (int32_t *) malloc(n_pages * 4);

    for (s = 0; s <= n_seqs; s++) {
        qo[s] = s * rows;
        kvp[s] = s == 0 ? 0 : np0 + (s - 1) * np;
    }

    for (s = 0; s < n_seqs; s++) {
        sp[s] = (s == 0 ? ctx0 : ctx) - rows;
    }

    for (i = 0; i < n_pages; i++) {
        kvi[i] = (int32_t) ((i * 7919) % n_pages);
    }

    b->d_a = (uint16_t *) dmalloc(n_pages * page_elems * 2);
    b->d_q = (uint16_t *) dmalloc(n_rows * q_dim * 2);
    b->d_o = (uint16_t *) dmalloc(n_rows * q_dim * 2);
    rc = slora_random_fill_bf16_cuda(b->d_a, n_pages, page_elems,
                                     page_elems, 0, 11, 1, 1.0f, NULL);
    rc |= slora_random_fill_bf16_cuda(b->d_q, n_rows, q_dim, q_dim, 0, 12,
                                      1, 1.0f, NULL);
    b->host[0] = qo;
    b->host[1] = kvp;
    b->host[2] = sp;
    b->host[3] = kvi;
    b->dev[0] = (int32_t *) dup_to_dev(qo, (n_seqs + 1) * 4);
    b->dev[1] = (int32_t *) dup_to_dev(kvp, (n_seqs + 1) * 4);
    b->dev[2] = (int32_t *) dup_to_dev(sp, n_seqs * 4);
    b->dev[3] = (int32_t *) dup_to_dev(kvi, n_pages * 4);
    b->dix.n_seqs = n_seqs;
    b->dix.qo_indptr = b->dev[0];
    b->dix.kv_indptr = b->dev[1];
    b->dix.seq_pos = b->dev[2];
    b->dix.kv_indices = b->dev[3];
    b->dix.dec_items = NULL;
    b->dix.dec_first = NULL;
    b->d_items = NULL;
    b->d_first = NULL;

    return rc;
}


static void
bench_batch_free(bench_batch_t *b)
{
    int  i;

    CK(cudaFree(b->d_a));
    CK(cudaFree(b->d_q));
    CK(cudaFree(b->d_o));

    for (i = 0; i < 4; i++) {
        CK(cudaFree(b->dev[i]));
        free(b->host[i]);
    }

    if (b->d_items != NULL) {
        CK(cudaFree(b->d_items));
        CK(cudaFree(b->d_first));
    }
}


static void
bench_attention_prefill(void)
{
    static const int32_t  shape[][2] = { { 16, 256 }, { 1, 4096 } };

    const int32_t       nh = 32, hd = 128, tpp = 43;
    int32_t             si, n_seqs, len;
    int64_t             page_elems;
    bench_batch_t       b;
    cudaEvent_t         e0, e1;
    float               ms;
    double              flop;
    int                 rc, r;

    page_elems = 2 * (int64_t) tpp * nh * hd;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    printf("# prefill attention, %d heads of %d, pages of %d: sequences x "
           "rows, us, TFLOP/s\n", nh, hd, tpp);

    for (si = 0; si < 2; si++) {
        n_seqs = shape[si][0];
        len = shape[si][1];
        rc = bench_batch_make(&b, n_seqs, len, len, len, tpp, page_elems,
                              nh * hd);

        for (r = 0; r < 23; r++) {
            if (r == 3) {
                CK(cudaEventRecord(e0, NULL));
            }

            rc |= slora_attention_prefill_cuda(b.d_o, nh * hd, b.d_q, nh * hd,
                                               nh, b.d_a, page_elems, tpp, nh,
                                               hd, &b.dix, len, NULL);
        }

        CK(cudaEventRecord(e1, NULL));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&ms, e0, e1));
        ms /= 20;
        flop = 4.0 * hd * nh * n_seqs * ((double) len * (len + 1) / 2);
        printf("# %5d x %-5d %10.1f %8.1f%s\n", n_seqs, len, 1e3 * ms,
               flop / ms / 1e9, rc ? "  (refused)" : "");
        bench_batch_free(&b);
    }

    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
}


/* Reads n 16-byte words once and keeps a sum, so that nothing is left
 * out: the reference rate for a kernel that streams as many bytes. */
static __global__ void
bench_read_kernel(const uint4 *__restrict__ src, int64_t n,
    unsigned *__restrict__ sink)
{
    int64_t   i, stride;
    unsigned  acc;
    uint4     a, b, c, d;

    acc = 0;
    stride = (int64_t) gridDim.x * blockDim.x;

    for (i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x;
         i + 3 * stride < n; i += 4 * stride)
    {
        a = src[i];
        b = src[i + stride];
        c = src[i + 2 * stride];
        d = src[i + 3 * stride];
        acc ^= a.x ^ b.y ^ c.z ^ d.w;
    }

    if (acc == 0x9e3779b9u) {
        sink[0] = acc;
    }
}


/*
 * Decode attention at the Llama-7B shape (32 heads over 32 KV heads of
 * 128) and with groups of query heads a KV head: four (32 over 8:
 * Llama 3 8B's, Mistral's), seven (28 over 4: Qwen2.5-7B's), eight (64
 * over 8: Llama 70B's), twelve (96 over 8: Mistral Large 2's), sixteen
 * (64 over 4: Llama 3.1 405B's on 8 GPUs) and three at head size 64 (15
 * over 5: SmolLM2 360M's); a group the decode kernel refuses goes to the
 * tiled kernel, as the engine sends it; pages of 43 tokens, in a
 * shuffled order as a pool hands them out, one layer's K and V in an
 * arena of their own: microseconds a call and the rate at which it reads
 * K and V, beside the rate of bench_read_kernel over the same number of
 * bytes.
 */

static void
bench_decode_heads(int32_t nh, int32_t nkv, int32_t hd, unsigned *d_sink,
    cudaEvent_t e0, cudaEvent_t e1)
{
    /* sequences, their context, the first one's: the last two rows
     * one long context among short ones */
    static const int32_t  shape[][3] = {
        { 1, 4096, 4096 }, { 16, 512, 512 }, { 64, 320, 320 },
        { 64, 512, 512 }, { 256, 512, 512 }, { 64, 256, 4096 },
        { 16, 128, 8192 }
    };

    const int32_t       tpp = 43;
    int32_t             si, n_seqs, ctx, ctx0;
    char                label[16];
    int64_t             page_elems, kv_bytes, dec_ctx;
    void               *work;
    size_t              work_size;
    slora_dec_shape_t   sh;
    bench_batch_t       b;
    float               ms, ms_read;
    int                 rc, r, bad, tiled;

    page_elems = 2 * (int64_t) tpp * nkv * hd;
    printf("# decode attention, %d heads of %d over %d KV heads, pages of "
           "%d: sequences x context, us, K and V TB/s, a straight read's "
           "TB/s\n", nh, hd, nkv, tpp);

    for (si = 0; si < (int32_t) (sizeof(shape) / sizeof(shape[0])); si++) {
        n_seqs = shape[si][0];
        ctx = shape[si][1];
        ctx0 = shape[si][2];
        bad = bench_batch_make(&b, n_seqs, 1, ctx0, ctx, tpp, page_elems,
                               nh * hd);
        tiled = 0;
        dec_ctx = (int64_t) (n_seqs - 1) * ctx + ctx0;
        work_size = slora_attention_decode_work_size(n_seqs, nh, nkv, hd,
                                                     ctx0, dec_ctx);
        work = work_size > 0 ? dmalloc(work_size) : NULL;
        slora_attention_decode_shape(n_seqs, nh, nkv, hd, ctx0, dec_ctx,
                                     &sh);
        bad |= dec_items_to_dev(&b.dix, &sh, b.host[0], b.host[2],
                                b.host[1], &b.d_items, &b.d_first)
               < 0;

        for (r = 0; r < 23; r++) {
            if (r == 3) {
                CK(cudaEventRecord(e0, NULL));
            }

            rc = slora_attention_decode_cuda(b.d_o, nh * hd, b.d_q, nh * hd,
                                             nh, b.d_a, page_elems, tpp, nkv,
                                             hd, &b.dix, ctx0, dec_ctx,
                                             work, work_size, NULL);

            /* a group the decode kernel leaves to the tiled one, as the
             * engine sends it */
            tiled = rc == -2;

            if (tiled) {
                rc = slora_attention_cuda(b.d_o, nh * hd, b.d_q, nh * hd, nh,
                                          b.d_a, page_elems, tpp, nkv, hd,
                                          &b.dix, 1, NULL);
            }

            bad |= rc;
        }

        CK(cudaEventRecord(e1, NULL));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&ms, e0, e1));
        ms /= 20;

        /* as many bytes as K and V hold, read straight through */
        kv_bytes = ((int64_t) (n_seqs - 1) * ctx + ctx0) * 2 * nkv * hd
                   * 2;

        for (r = 0; r < 23; r++) {
            if (r == 3) {
                CK(cudaEventRecord(e0, NULL));
            }

            bench_read_kernel<<<132 * 8, 256>>>((const uint4 *) b.d_a,
                                                kv_bytes / 16, d_sink);
        }

        CK(cudaEventRecord(e1, NULL));
        CK(cudaEventSynchronize(e1));
        CK(cudaGetLastError());
        CK(cudaEventElapsedTime(&ms_read, e0, e1));
        ms_read /= 20;

        label[0] = '\0';

        if (ctx0 != ctx) {
            snprintf(label, sizeof(label), ", one %d", ctx0);
        }

        printf("# %5d x %-5d%-11s %10.1f %8.2f %8.2f%s%s\n", n_seqs, ctx,
               label, 1e3 * ms, kv_bytes / ms / 1e9, kv_bytes / ms_read / 1e9,
               tiled ? "  (the tiled kernel)" : "",
               bad ? "  (refused)" : "");

        if (work != NULL) {
            CK(cudaFree(work));
        }

        bench_batch_free(&b);
    }
}


static void
bench_attention_decode(void)
{
    unsigned     *d_sink;
    cudaEvent_t   e0, e1;

    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    d_sink = (unsigned *) dmalloc(sizeof(unsigned));

    bench_decode_heads(32, 32, 128, d_sink, e0, e1);
    bench_decode_heads(32, 8, 128, d_sink, e0, e1);
    bench_decode_heads(28, 4, 128, d_sink, e0, e1);
    bench_decode_heads(64, 8, 128, d_sink, e0, e1);
    bench_decode_heads(96, 8, 128, d_sink, e0, e1);
    bench_decode_heads(64, 4, 128, d_sink, e0, e1);
    bench_decode_heads(15, 5, 64, d_sink, e0, e1);

    CK(cudaFree(d_sink));
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
}
