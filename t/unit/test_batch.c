/*
 * test_batch.c: the one check every backend runs on a batch before it
 * computes (engine/slora_batch.c), and the CSR indices laid out after it.
 *
 *   (a) slora_batch_check accepts a batch at each of its edges: pages that
 *       cover exactly pos + n_tokens, the arena's last page, the last
 *       adapter, adapter rows ending at the arena's end; and refuses the
 *       same batch one step past each edge, naming what is wrong. What it
 *       derives (pages, logits rows and whether they run 0, 1, ...,
 *       longest context, largest rank in use, projections) is exact.
 *   (b) slora_batch_index groups consecutive sequences of one adapter
 *       into a LoRA segment, cut where a segment would pass
 *       max_seg_tokens, and copies each sequence's pages and positions.
 *   (c) On a tensor-parallel rank (slices 2: its arena half of every
 *       pool page), the same batch, whose adapter rows are the pool's
 *       offsets over the whole model's widths, is accepted up to the
 *       same edges and refused one element of the rank's part past
 *       them, or at an offset that does not split.
 *
 * The one idea: every bound is tested at the last value it accepts and
 * the first it refuses, since an off-by-one there lets a kernel read past
 * the arena.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tap.h"

#include "slora_batch.h"
#include "tiny_config.h"


#define TPP          4                     /* tokens a page */
#define PAGE_ELEMS   256                   /* 2 * TPP * kv_dim */
#define ARENA        8192
#define LAYER1       4096                  /* layer 1's region's start */
#define LIMIT        (ARENA - LAYER1)      /* elements every layer has */


static slora_model_config_t  cfg;
static int64_t               layer_off[2] = { 0, LAYER1 };
static float                 logits[4];


typedef struct {
    int32_t             tokens[16];
    int32_t             pages0[2], pages1[2];
    int64_t             a_q[2], b_q[2], a_down[2], b_down[2];
    int64_t             a_v[8], b_v[8];
    slora_lora_t        loras[2];
    slora_batch_seq_t   seqs[2];
    slora_batch_t       bt;
} fixture_t;


/*
 * Two sequences, four tokens: sequence 0 runs adapter 0 (rank 2 on q and
 * down) over positions 5-7, exactly its two pages; sequence 1 the base
 * model at position 7, on page 2 and the arena's last page (15). Adapter
 * 1 (rank 8 on v) is in the batch but unused. Adapter rows end at the
 * arena's end: a_q[1] + in == LIMIT, b_q[1] + out == LIMIT.
 */
static void
fixture(fixture_t *f)
{
    int  i;

    memset(f, 0, sizeof(fixture_t));

    f->pages0[0] = 0;
    f->pages0[1] = 1;
    f->pages1[0] = 2;
    f->pages1[1] = LIMIT / PAGE_ELEMS - 1;

    f->a_q[0] = 0;
    f->a_q[1] = LIMIT - slora_proj_in_dim(&cfg, SLORA_PROJ_Q);
    f->b_q[0] = 64;
    f->b_q[1] = LIMIT - slora_proj_out_dim(&cfg, SLORA_PROJ_Q);
    f->a_down[0] = 128;
    f->a_down[1] = 256;
    f->b_down[0] = 512;
    f->b_down[1] = 640;

    for (i = 0; i < 8; i++) {
        f->a_v[i] = 1024 + 64 * i;
        f->b_v[i] = 2048 + 32 * i;
    }

    f->loras[0].rank = 2;
    f->loras[0].scale = 0.5f;
    f->loras[0].proj_mask = (1u << SLORA_PROJ_Q) | (1u << SLORA_PROJ_DOWN);
    f->loras[0].a_rows[SLORA_PROJ_Q] = f->a_q;
    f->loras[0].b_rows[SLORA_PROJ_Q] = f->b_q;
    f->loras[0].a_rows[SLORA_PROJ_DOWN] = f->a_down;
    f->loras[0].b_rows[SLORA_PROJ_DOWN] = f->b_down;

    f->loras[1].rank = 8;
    f->loras[1].scale = 2.0f;
    f->loras[1].proj_mask = 1u << SLORA_PROJ_V;
    f->loras[1].a_rows[SLORA_PROJ_V] = f->a_v;
    f->loras[1].b_rows[SLORA_PROJ_V] = f->b_v;

    f->seqs[0] = (slora_batch_seq_t) { 3, 5, 2, f->pages0, 0, 0, 1 };
    f->seqs[1] = (slora_batch_seq_t) { 1, 7, 2, f->pages1, -1, 1, 1 };

    f->bt.n_seqs = 2;
    f->bt.n_tokens = 4;
    f->bt.tokens = f->tokens;
    f->bt.seqs = f->seqs;
    f->bt.n_loras = 2;
    f->bt.loras = f->loras;
    f->bt.n_logits = 2;
    f->bt.logits = logits;
}


static int
check(fixture_t *f, slora_batch_info_t *info, slora_err_t *err)
{
    err->msg[0] = '\0';

    return slora_batch_check(&f->bt, &cfg, 1, layer_off, ARENA,
                             PAGE_ELEMS, TPP, "test", info, err);
}


/* The fixture changed by the caller must be refused with msg in the
 * error; the fixture is made afresh afterwards. */
static void
refused(fixture_t *f, const char *msg, const char *what)
{
    int                 rc;
    slora_err_t         err;
    slora_batch_info_t  info;

    rc = check(f, &info, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, msg) != NULL,
       "refused: %s (%s)", what, err.msg);
    fixture(f);
}


static void
accepted(fixture_t *f, const char *what)
{
    int                 rc;
    slora_err_t         err;
    slora_batch_info_t  info;

    rc = check(f, &info, &err);
    ok(rc == SLORA_OK, "accepted: %s%s%s", what, err.msg[0] ? ": " : "",
       err.msg);
    fixture(f);
}


static void
test_check(void)
{
    int                 rc;
    fixture_t           f;
    slora_err_t         err;
    slora_batch_info_t  info;

    fixture(&f);
    rc = check(&f, &info, &err);
    ok(rc == SLORA_OK, "the fixture is accepted%s%s", err.msg[0] ? ": " : "",
       err.msg);
    ok(info.n_pages == 4 && info.n_logits == 2 && info.direct
       && info.max_ctx == 8 && info.max_q_len == 3 && info.max_rank == 8
       && info.proj_mask == ((1u << SLORA_PROJ_Q) | (1u << SLORA_PROJ_DOWN)
                             | (1u << SLORA_PROJ_V)),
       "info: 4 pages, 2 logits rows in order, context 8, 3 tokens at "
       "most, rank 8, q|v|down (%d, %d, %d, %d, %d, %d, 0x%x)",
       info.n_pages, info.n_logits, info.direct, info.max_ctx,
       info.max_q_len, info.max_rank, info.proj_mask);

    /* the decode attention's share of a block: the one-token sequence's
     * context (position 7), not the 3-token chunk's */
    ok(info.dec_ctx == 8, "info: decode rows' contexts sum to 8 (%lld)",
       (long long) info.dec_ctx);

    /* pages: positions [0, pos + n_tokens) must be covered */
    f.seqs[0].pos = 6;
    refused(&f, "2 pages cover 8 positions, need 9",
            "a position past the sequence's pages");
    f.seqs[0].n_pages = 1;
    refused(&f, "1 pages cover 4 positions, need 8", "one page short");
    f.seqs[0].n_pages = 1;
    f.seqs[0].pos = 1;
    accepted(&f, "positions 1-3 on one page");
    f.pages1[1] = LIMIT / PAGE_ELEMS;
    refused(&f, "page 16 outside the arena", "the page after the last");
    f.pages1[0] = -1;
    refused(&f, "page -1 outside the arena", "a negative page");
    f.seqs[1].n_pages = 3;
    accepted(&f, "a page more than needed (not read)");

    /* adapters */
    f.seqs[1].lora = 1;
    accepted(&f, "the last adapter");
    f.seqs[1].lora = 2;
    refused(&f, "adapter 2 of 2", "an adapter index past the last");
    f.seqs[1].lora = -2;
    refused(&f, "adapter -2 of 2", "an adapter index below -1");
    f.a_q[1]++;
    refused(&f, "adapter 0: q_proj row 1 outside the arena",
            "an A row one element past the arena");
    f.b_q[1]++;
    refused(&f, "adapter 0: q_proj row 1 outside the arena",
            "a B^T row one element past the arena");
    f.a_down[0] = -1;
    refused(&f, "adapter 0: down_proj row 0 outside", "a negative A row");
    f.b_v[7] = -1;
    refused(&f, "adapter 1: v_proj row 7 outside",
            "a negative B^T row, rank 8");
    f.b_v[7] = LIMIT - slora_proj_out_dim(&cfg, SLORA_PROJ_V) + 1;
    refused(&f, "adapter 1: v_proj row 7 outside",
            "v's B^T row past the arena by its own width");
    f.loras[1].a_rows[SLORA_PROJ_V] = NULL;
    refused(&f, "adapter 1: v_proj has no rows", "a target without rows");
    f.loras[1].proj_mask = 1u << SLORA_PROJ_N;
    refused(&f, "adapter 1: rank 8, mask", "a mask bit past the projections");
    f.loras[1].rank = 0;
    refused(&f, "adapter 1: rank 0, mask", "rank 0 with targets");
    f.loras[1].rank = 16;
    f.loras[1].proj_mask = 0;
    rc = check(&f, &info, &err);
    ok(rc == SLORA_OK && info.max_rank == 2
       && info.proj_mask == ((1u << SLORA_PROJ_Q) | (1u << SLORA_PROJ_DOWN)),
       "an adapter of rank 16 with no targets counts for no rank and no "
       "projection "
       "(rank %d, mask 0x%x)", info.max_rank, info.proj_mask);
    fixture(&f);

    /* logits rows */
    f.seqs[0].logits_row = 1;
    f.seqs[1].logits_row = 0;
    rc = check(&f, &info, &err);
    ok(rc == SLORA_OK && !info.direct && info.n_logits == 2,
       "logits rows 1, 0: accepted, not direct");
    fixture(&f);
    f.seqs[1].logits_row = -1;
    f.seqs[1].n_rows = 0;
    rc = check(&f, &info, &err);
    ok(rc == SLORA_OK && info.direct && info.n_logits == 1,
       "one sequence without logits: accepted, 1 row");
    f.seqs[1].n_rows = 1;
    refused(&f, "sequence 1: 1 logits rows without a first",
            "rows without a first row");
    fixture(&f);
    f.seqs[1].logits_row = 2;
    refused(&f, "logits rows 2..2 of 2", "a logits row past n_logits");
    f.bt.logits = NULL;
    refused(&f, "logits rows 0..0 of 2", "logits rows without logits");
    f.seqs[1].n_tokens = 0;
    f.bt.n_tokens = 3;
    refused(&f, "sequence 1: logits rows 1..1", "logits of a sequence with "
            "no token");

    /* every token of a sequence with a row (a prompt's log-probabilities) */
    fixture(&f);
    f.seqs[0].n_rows = 3;
    f.seqs[1].logits_row = 3;
    f.bt.n_logits = 4;
    rc = check(&f, &info, &err);
    ok(rc == SLORA_OK && info.direct && info.n_logits == 4,
       "3 rows and 1: accepted, direct, 4 rows");
    f.seqs[0].logits_row = 1;
    f.seqs[1].logits_row = 0;
    rc = check(&f, &info, &err);
    ok(rc == SLORA_OK && !info.direct && info.n_logits == 4,
       "rows 1..3 and 0: accepted, not direct");
    f.seqs[0].logits_row = 0;
    f.seqs[1].logits_row = 3;
    f.seqs[0].n_rows = 4;
    refused(&f, "sequence 0: logits rows 0..3 of 4", "more rows than tokens");
    f.seqs[0].n_rows = 3;
    f.seqs[1].logits_row = 3;
    f.bt.n_logits = 3;
    refused(&f, "sequence 1: logits rows 3..3 of 3", "rows past n_logits");

    /* counts */
    f.bt.n_tokens = 5;
    refused(&f, "sequences hold 4 tokens, batch has 5",
            "more batch tokens than the sequences hold");
    f.bt.n_tokens = 3;
    refused(&f, "sequence 1: bad counts",
            "a sequence past the batch's tokens");
    f.seqs[0].pos = -1;
    refused(&f, "sequence 0: bad counts", "a negative position");
    f.bt.n_loras = -1;
    refused(&f, "bad counts", "a negative adapter count");
    f.bt.seqs = NULL;
    refused(&f, "bad counts", "sequences without their array");

    /* the arena and its pages */
    layer_off[1] = ARENA + 1;
    refused(&f, "layer 1 offset 8193 outside the arena",
            "a layer past the arena");
    layer_off[1] = LAYER1;
    rc = slora_batch_check(&f.bt, &cfg, 1, layer_off, ARENA, PAGE_ELEMS - 1,
                           TPP, "test", &info, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "cannot hold 4 tokens") != NULL,
       "refused: a page one element too small for its K and V (%s)",
       err.msg);
    rc = slora_batch_check(&f.bt, &cfg, 1, layer_off, ARENA, PAGE_ELEMS, 0,
                           "test", &info, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "cannot hold 0 tokens") != NULL,
       "refused: 0 tokens a page (%s)", err.msg);
}


/* The fixture on rank 0 or 1 of 2: each arena is half of every pool
 * page, its layers half as far apart; the rows stay the pool's. */
static int
check_part(fixture_t *f, int32_t slices, int64_t page_elems,
    slora_batch_info_t *info, slora_err_t *err)
{
    int64_t  part_off[2] = { 0, LAYER1 / 2 };

    err->msg[0] = '\0';

    return slora_batch_check(&f->bt, &cfg, slices, part_off, ARENA / 2,
                             page_elems, TPP, "test", info, err);
}


static void
test_check_part(void)
{
    int                 rc;
    fixture_t           f;
    slora_err_t         err;
    slora_batch_info_t  info;

    /* q's rows of adapter 0 end at the pool's last element of a layer:
     * beyond the part's first half, the rank's last element */
    fixture(&f);
    rc = check_part(&f, 2, PAGE_ELEMS / 2, &info, &err);
    ok(rc == SLORA_OK && info.n_pages == 4 && info.max_rank == 8,
       "a rank's part: the fixture, rows at the pool's offsets up to its "
       "end, is accepted (4 pages, rank 8)%s%s", err.msg[0] ? ": " : "",
       err.msg);

    f.a_q[1] += 2;
    rc = check_part(&f, 2, PAGE_ELEMS / 2, &info, &err);
    ok(rc == SLORA_ERROR
       && strstr(err.msg, "q_proj row 1 outside the arena") != NULL,
       "a rank's part: an A row one element of the part past it is "
       "refused (%s)", err.msg);
    fixture(&f);

    f.b_v[3]++;
    rc = check_part(&f, 2, PAGE_ELEMS / 2, &info, &err);
    ok(rc == SLORA_ERROR
       && strstr(err.msg, "v_proj row 3 outside the arena") != NULL,
       "a rank's part: a row at an offset that does not split in 2 is "
       "refused (%s)", err.msg);
    fixture(&f);

    f.pages1[1] = LIMIT / PAGE_ELEMS;
    rc = check_part(&f, 2, PAGE_ELEMS / 2, &info, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "page 16 outside") != NULL,
       "a rank's part: the page after the last is refused (%s)", err.msg);
    fixture(&f);

    rc = check_part(&f, 2, PAGE_ELEMS / 2 - 1, &info, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "cannot hold 4 tokens") != NULL,
       "a rank's part: a page one element too small for its half of the "
       "K and V heads is refused (%s)", err.msg);

    rc = check_part(&f, 3, PAGE_ELEMS / 2, &info, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "do not split in 3") != NULL,
       "3 slices of K and V rows of 32 are refused (%s)", err.msg);
}


/*
 * Five sequences with adapters 0, 0, base, 1, 1 and 3, 1, 1, 2, 2 tokens.
 * Without a limit: three segments. With max_seg_tokens 4 the same three
 * (each run is 4 tokens at most); with 3 the runs of 4 are cut in two.
 */
static void
test_index(void)
{
    int32_t               i, p, want_rank, bad;
    int32_t               qo[6], seq_pos[5], kv_ptr[6], kv_idx[16], pos[9];
    int32_t               seg_ptr[6], seg_lora[5], rank[SLORA_PROJ_N * 5];
    int32_t               pages[5][2];
    float                 scale[5];
    fixture_t             f;
    slora_err_t           err;
    slora_batch_seq_t     seqs[5];
    slora_batch_info_t    info;
    slora_batch_index_t   ix;
    static const int32_t  n_tok[5] = { 3, 1, 1, 2, 2 };
    static const int32_t  at[5] = { 0, 4, 6, 2, 5 };
    static const int32_t  lora[5] = { 0, 0, -1, 1, 1 };

    fixture(&f);

    for (i = 0; i < 5; i++) {
        pages[i][0] = 2 * i;
        pages[i][1] = 2 * i + 1;
        seqs[i] = (slora_batch_seq_t) { n_tok[i], at[i], 2, pages[i],
                                        lora[i], -1, 0 };
    }

    f.bt.n_seqs = 5;
    f.bt.n_tokens = 9;
    f.bt.seqs = seqs;
    f.bt.n_logits = 0;

    ok(check(&f, &info, &err) == SLORA_OK && info.n_pages == 8,
       "five sequences accepted, 8 pages read%s%s", err.msg[0] ? ": " : "",
       err.msg);

    ix.qo_indptr = qo;
    ix.seq_pos = seq_pos;
    ix.kv_indptr = kv_ptr;
    ix.kv_indices = kv_idx;
    ix.pos = pos;
    ix.seg_indptr = seg_ptr;
    ix.seg_lora = seg_lora;
    ix.rank = rank;
    ix.scale = scale;

    slora_batch_index(&f.bt, TPP, 0, &ix);

    ok(qo[0] == 0 && qo[1] == 3 && qo[2] == 4 && qo[3] == 5 && qo[4] == 7
       && qo[5] == 9, "token rows 0, 3, 4, 5, 7, 9");
    ok(seq_pos[0] == 0 && seq_pos[1] == 4 && seq_pos[4] == 5
       && pos[0] == 0 && pos[2] == 2 && pos[3] == 4 && pos[4] == 6
       && pos[5] == 2 && pos[8] == 6, "positions of each token");
    /* pages read: ceil((at + n) / 4): 1, 2, 2, 1, 2 */
    ok(kv_ptr[1] == 1 && kv_ptr[2] == 3 && kv_ptr[3] == 5 && kv_ptr[4] == 6
       && kv_ptr[5] == 8 && kv_idx[0] == 0 && kv_idx[1] == 2
       && kv_idx[2] == 3 && kv_idx[5] == 6 && kv_idx[6] == 8
       && kv_idx[7] == 9, "each sequence's pages, only those it reads");
    ok(ix.n_segs == 3 && seg_ptr[1] == 4 && seg_ptr[2] == 5
       && seg_ptr[3] == 9 && seg_lora[0] == 0 && seg_lora[1] == -1
       && seg_lora[2] == 1, "no limit: segments adapter 0 (rows 0-3), "
       "base (4), adapter 1 (5-8)");

    bad = 0;

    for (p = 0; p < SLORA_PROJ_N; p++) {
        for (i = 0; i < 3; i++) {
            want_rank = i == 0 ? (p == SLORA_PROJ_Q || p == SLORA_PROJ_DOWN
                                  ? 2 : 0)
                      : i == 1 ? 0
                      : (p == SLORA_PROJ_V ? 8 : 0);
            bad += rank[p * 3 + i] != want_rank;
        }
    }

    ok(bad == 0 && scale[0] == 0.5f && scale[1] == 0.0f
       && scale[2] == 2.0f, "ranks per projection and segment, and "
       "scales (%d wrong)", bad);

    slora_batch_index(&f.bt, TPP, 4, &ix);
    ok(ix.n_segs == 3 && seg_ptr[1] == 4 && seg_ptr[3] == 9,
       "max_seg_tokens 4: runs of exactly 4 stay whole");

    slora_batch_index(&f.bt, TPP, 3, &ix);
    ok(ix.n_segs == 5 && seg_ptr[1] == 3 && seg_ptr[2] == 4
       && seg_ptr[3] == 5 && seg_ptr[4] == 7 && seg_ptr[5] == 9
       && seg_lora[0] == 0 && seg_lora[1] == 0 && seg_lora[3] == 1
       && seg_lora[4] == 1 && rank[SLORA_PROJ_V * 5 + 4] == 8,
       "max_seg_tokens 3: each run of 4 cut in two, same adapter");
}


int
main(void)
{
    tiny_config(&cfg, SLORA_ROPE_NEOX);

    test_check();
    test_check_part();
    test_index();

    return done_testing();
}
