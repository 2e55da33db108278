/*
 * slora_cuda_graph.c: the CUDA backend's decode graphs and its step
 * profile. A decode step of a given shape is captured once into a CUDA
 * graph and replayed; $SLORA_CUDA_PROFILE instead launches op by op
 * with events between them and prints where the GPU's time went.
 *
 * The one idea: a graph is keyed by everything its launches depend on
 * (sequences, logits rows, ranks, the projections with adapters, the
 * decode attention's split, LoRA segments); the data that changes at the
 * same key is copied into the index block before the replay.
 */

#include <stdio.h>
#include <string.h>

#include "slora_cuda_int.h"


static const char  *slora_cuda_op_names[SLORA_OP_N] = {
    "indices", "embedding", "GEMM q,k,v", "LoRA (all)", "RoPE + KV store",
    "attention", "GEMM o", "RMSNorm", "GEMM gate,up", "SiLU-and-mul",
    "GEMM down", "logits + ids", "all-reduce"
};


/*
 * A decode step is the same few hundred launches every time for a given
 * shape, so it is captured once into a CUDA graph and replayed: what
 * changes from step to step (tokens, positions, page tables, adapter row
 * tables) is data in the index block, copied before the replay, while
 * every pointer and launch size the graph holds depends only on the key.
 * Scratch that moves (a buffer grew) drops every graph.
 */

int
slora_cuda_graph_run(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_err_t *err)
{
    slora_cuda_graph_t  *gr, *slot;
    slora_cuda_gkey_t    key;
    cudaGraph_t          graph;
    cudaError_t          rc;
    int32_t              i, chunk, n_splits;
    size_t               work;

    if (c->graphs_stale) {
        slora_cuda_graphs_drop(c);
        c->graphs_stale = 0;
    }

    work = slora_attention_decode_work_size(st->batch->n_seqs, c->cfg.n_heads,
                                            c->cfg.n_kv_heads,
                                            c->cfg.head_dim,
                                            st->info.max_ctx);
    chunk = 0;
    n_splits = 0;
    slora_attention_decode_shape(st->batch->n_seqs, c->cfg.n_kv_heads,
                                 st->info.max_ctx, &chunk, &n_splits);

    memset(&key, 0, sizeof(key));
    key.n_seqs = st->batch->n_seqs;
    key.n_logits = st->info.n_logits;
    key.max_rank = st->info.max_rank;
    key.proj_mask = st->info.proj_mask;
    key.chunk = chunk;
    key.n_splits = n_splits;
    key.argmax = st->batch->ids != NULL;
    key.draws = st->draws != NULL;
    key.work = work > 0;
    key.n_segs = st->n_segs;
    key.max_seg_len = st->max_seg_len;

    slot = NULL;

    for (i = 0; i < SLORA_CUDA_GRAPHS; i++) {
        gr = &c->graph[i];

        if (gr->exec != NULL && memcmp(&gr->key, &key, sizeof(key)) == 0) {
            gr->used = ++c->graph_clock;
            return slora_cuda_check(cudaGraphLaunch(gr->exec, c->stream),
                                    "graph launch", err);
        }

        if (slot == NULL || gr->exec == NULL
            || (slot->exec != NULL && gr->used < slot->used))
        {
            slot = gr;
        }
    }

    if (slot->exec != NULL) {
        cudaGraphExecDestroy(slot->exec);
        slot->exec = NULL;
    }

    if (slora_cuda_check(cudaStreamBeginCapture(c->stream,
                             cudaStreamCaptureModeThreadLocal),
                         "graph capture", err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (slora_cuda_compute(c, st, err) != SLORA_OK) {
        if (cudaStreamEndCapture(c->stream, &graph) == cudaSuccess) {
            cudaGraphDestroy(graph);
        }
        cudaGetLastError();
        return SLORA_ERROR;
    }

    rc = cudaStreamEndCapture(c->stream, &graph);
    if (rc != cudaSuccess) {
        return slora_cuda_check(rc, "graph capture", err);
    }

    rc = cudaGraphInstantiate(&slot->exec, graph, 0);
    cudaGraphDestroy(graph);

    if (rc != cudaSuccess) {
        slot->exec = NULL;
        return slora_cuda_check(rc, "graph instantiate", err);
    }

    slot->key = key;
    slot->used = ++c->graph_clock;
    c->graph_captures++;

    return slora_cuda_check(cudaGraphLaunch(slot->exec, c->stream),
                            "graph launch", err);
}


void
slora_cuda_graphs_drop(slora_cuda_t *c)
{
    int32_t  i;

    for (i = 0; i < SLORA_CUDA_GRAPHS; i++) {
        if (c->graph[i].exec != NULL) {
            cudaGraphExecDestroy(c->graph[i].exec);
            c->graph[i].exec = NULL;
        }
    }
}


void
slora_cuda_mark(slora_cuda_t *c, slora_cuda_op_e op)
{
    slora_cuda_prof_t  *p = c->prof;

    if (p == NULL || p->n >= SLORA_CUDA_MARKS) {
        return;
    }

    cudaEventRecord(p->ev[p->n], c->stream);
    p->op[p->n++] = op;
}


/* Charges the GPU time between marks to the op each mark ends. */
void
slora_cuda_prof_step(slora_cuda_t *c, int prefill)
{
    slora_cuda_prof_t  *p = c->prof;
    float               ms;
    int                 i;

    if (p->n == 0) {
        return;
    }

    cudaEventSynchronize(p->ev[p->n - 1]);

    if (p->skipped < p->skip) {
        p->skipped++;
        p->n = 0;
        return;
    }

    for (i = 1; i < p->n; i++) {
        if (cudaEventElapsedTime(&ms, p->ev[i - 1], p->ev[i]) == cudaSuccess)
        {
            p->ms[prefill][p->op[i]] += ms;
        }
    }

    p->wall_ms[prefill] += (double) (slora_now_ns() - p->t0) / 1e6;
    p->steps[prefill]++;
    p->n = 0;
}


void
slora_cuda_prof_print(slora_cuda_t *c)
{
    slora_cuda_prof_t  *p = c->prof;
    double              sum;
    int                 k, i;

    if (p->skipped > 0) {
        fprintf(stderr, "cuda profile: the first %llu steps left out\n",
                (unsigned long long) p->skipped);
    }

    for (k = 0; k < 2; k++) {
        if (p->steps[k] == 0) {
            continue;
        }

        sum = 0;
        for (i = 0; i < SLORA_OP_N; i++) {
            sum += p->ms[k][i];
        }

        fprintf(stderr, "cuda profile, %s steps: %llu, wall %.3f ms a step, "
                "GPU %.3f ms a step\n", k ? "prefill" : "decode-only",
                (unsigned long long) p->steps[k],
                p->wall_ms[k] / (double) p->steps[k],
                sum / (double) p->steps[k]);

        for (i = 0; i < SLORA_OP_N; i++) {
            fprintf(stderr, "  %-18s %9.3f ms a step  %5.1f%%\n",
                    slora_cuda_op_names[i],
                    p->ms[k][i] / (double) p->steps[k],
                    sum > 0 ? 100.0 * p->ms[k][i] / sum : 0.0);
        }
    }

    if (p->writes > 0) {
        fprintf(stderr, "cuda profile, arena writes: %llu, %.1f MB of f32, "
                "%.1f ms of the writing thread (%.1f us a write)\n",
                (unsigned long long) p->writes, p->write_mb,
                p->write_host_ms,
                1e3 * p->write_host_ms / (double) p->writes);
    }
}
