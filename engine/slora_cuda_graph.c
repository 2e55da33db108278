/*
 * slora_cuda_graph.c: the CUDA backend's decode graphs and its step
 * profile. A decode step of a given shape is captured once into a CUDA
 * graph and replayed; $SLORA_CUDA_PROFILE instead launches op by op
 * with events between them and prints where the GPU's time went, and
 * $SLORA_CUDA_GRAPH_EDGES prints how each captured graph's kernels wait
 * on each other.
 *
 * The one idea: a graph is keyed by everything its launches depend on
 * (sequences, logits rows, ranks, the projections with adapters, the
 * decode attention's split, LoRA segments); the data that changes at the
 * same key is copied into the index block before the replay.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_cuda_int.h"


static int slora_cuda_graph_seen(slora_cuda_t *c,
    const slora_cuda_gkey_t *key);
static void slora_cuda_graph_census(cudaGraph_t graph,
    const slora_cuda_gkey_t *key);


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
 * Scratch that moves (a buffer grew) drops every graph. The step's graph
 * is found or captured here and launched by the caller: a capture's
 * instantiation may wait on the host for the device, so tensor-parallel
 * ranks do it before they meet to start the step's kernels.
 *
 * A key is captured on its second step, not its first: capturing and
 * instantiating a 7B step's graph holds the GPU idle for milliseconds,
 * more than the step's own launches cost the host, and a key seen once
 * is often never seen again (a batch that shrinks as requests finish
 * has a new size every step). A first sighting sets *exec to NULL and
 * the caller launches the step's kernels one by one, the same kernels
 * in the same order.
 */

int
slora_cuda_graph_get(slora_cuda_t *c, slora_cuda_step_t *st,
    cudaGraphExec_t *exec, slora_err_t *err)
{
    slora_cuda_graph_t  *gr, *slot;
    slora_cuda_gkey_t    key;
    cudaGraph_t          graph;
    cudaError_t          rc;
    int32_t              i;

    if (c->graphs_stale) {
        slora_cuda_graphs_drop(c);
        c->graphs_stale = 0;
    }

    memset(&key, 0, sizeof(key));
    key.n_seqs = st->batch->n_seqs;
    key.n_logits = st->info.n_logits;
    key.max_rank = st->info.max_rank;
    key.proj_mask = st->info.proj_mask;
    key.dec = st->dec;
    key.argmax = st->batch->ids != NULL;
    key.draws = st->draws != NULL;
    key.score_k = st->score_tok != NULL ? st->batch->score_k : -1;
    key.n_segs = st->n_segs;
    key.max_seg_len = st->max_seg_len;

    slot = NULL;

    for (i = 0; i < SLORA_CUDA_GRAPHS; i++) {
        gr = &c->graph[i];

        if (gr->exec != NULL && memcmp(&gr->key, &key, sizeof(key)) == 0) {
            gr->used = ++c->graph_clock;
            *exec = gr->exec;
            return SLORA_OK;
        }

        if (slot == NULL || gr->exec == NULL
            || (slot->exec != NULL && gr->used < slot->used))
        {
            slot = gr;
        }
    }

    if (!slora_cuda_graph_seen(c, &key)) {
        *exec = NULL;
        return SLORA_OK;
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

    if (c->graph_edges) {
        slora_cuda_graph_census(graph, &key);
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
    *exec = slot->exec;

    return SLORA_OK;
}


/* Whether key was seen in one of the last SLORA_CUDA_GRAPH_SEEN first
 * sightings; if not, it is remembered in the oldest one's place. */
static int
slora_cuda_graph_seen(slora_cuda_t *c, const slora_cuda_gkey_t *key)
{
    int32_t  i;

    for (i = 0; i < c->graph_seen_n; i++) {
        if (memcmp(&c->graph_seen[i], key, sizeof(*key)) == 0) {
            return 1;
        }
    }

    c->graph_seen[c->graph_seen_next] = *key;
    c->graph_seen_next = (c->graph_seen_next + 1) % SLORA_CUDA_GRAPH_SEEN;

    if (c->graph_seen_n < SLORA_CUDA_GRAPH_SEEN) {
        c->graph_seen_n++;
    }

    return 0;
}


/*
 * $SLORA_CUDA_GRAPH_EDGES: how a captured decode graph's kernels wait on
 * each other, on stderr. An edge is programmatic where the kernel after
 * may start before the one before it ends (programmatic dependent
 * launch), full where it waits for its end; a kernel with more than one
 * edge in is one a fork joins (LoRA's side stream), and whether any of
 * its edges stayed programmatic says what the join cost it.
 */

static void
slora_cuda_graph_census(cudaGraph_t graph, const slora_cuda_gkey_t *key)
{
    size_t                   n_nodes, n_edges, i, j;
    cudaGraphNode_t         *nodes, *from, *to;
    cudaGraphEdgeData       *data;
    enum cudaGraphNodeType   type;
    int32_t                 *in, *in_prog;
    int64_t                  kernels, prog, joins, joins_prog, single_full;

    n_nodes = 0;
    n_edges = 0;

    if (cudaGraphGetNodes(graph, NULL, &n_nodes) != cudaSuccess
        || cudaGraphGetEdges(graph, NULL, NULL, NULL, &n_edges)
           != cudaSuccess)
    {
        cudaGetLastError();
        return;
    }

    nodes = calloc(n_nodes + 1, sizeof(cudaGraphNode_t));
    from = calloc(n_edges + 1, sizeof(cudaGraphNode_t));
    to = calloc(n_edges + 1, sizeof(cudaGraphNode_t));
    data = calloc(n_edges + 1, sizeof(cudaGraphEdgeData));
    in = calloc(n_nodes + 1, sizeof(int32_t));
    in_prog = calloc(n_nodes + 1, sizeof(int32_t));

    if (nodes == NULL || from == NULL || to == NULL || data == NULL
        || in == NULL || in_prog == NULL
        || cudaGraphGetNodes(graph, nodes, &n_nodes) != cudaSuccess
        || cudaGraphGetEdges(graph, from, to, data, &n_edges) != cudaSuccess)
    {
        cudaGetLastError();
        goto done;
    }

    prog = 0;

    for (i = 0; i < n_edges; i++) {
        prog += data[i].type == cudaGraphDependencyTypeProgrammatic;

        for (j = 0; j < n_nodes; j++) {
            if (nodes[j] == to[i]) {
                in[j]++;
                in_prog[j] += data[i].type
                              == cudaGraphDependencyTypeProgrammatic;
                break;
            }
        }
    }

    kernels = 0;
    joins = 0;
    joins_prog = 0;
    single_full = 0;

    for (j = 0; j < n_nodes; j++) {
        if (cudaGraphNodeGetType(nodes[j], &type) != cudaSuccess
            || type != cudaGraphNodeTypeKernel)
        {
            continue;
        }

        kernels++;
        joins += in[j] > 1;
        joins_prog += in[j] > 1 && in_prog[j] > 0;
        single_full += in[j] == 1 && in_prog[j] == 0;
    }

    fprintf(stderr, "slora cuda: decode graph, %d sequences, LoRA mask %u: "
            "%lld kernels, %zu edges (%lld programmatic); %lld kernels "
            "joined from more than one (%lld with a programmatic edge), "
            "%lld after one full edge\n", key->n_seqs,
            (unsigned) key->proj_mask, (long long) kernels, n_edges,
            (long long) prog, (long long) joins, (long long) joins_prog,
            (long long) single_full);

done:

    free(nodes);
    free(from);
    free(to);
    free(data);
    free(in);
    free(in_prog);
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
