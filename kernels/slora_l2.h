/*
 * slora_l2.h: reading a weight matrix into the GPU's L2 cache ahead of
 * the GEMM that streams it.
 *
 * The one idea: a decode step streams every weight once, and the memory
 * bus idles between its GEMMs (the small kernels between them, each
 * GEMM's start and tail). Asked in such a gap, the first bytes of each
 * K slice of every row of the next weight come from L2 when that GEMM
 * starts, so each of its blocks starts ahead and no block is left
 * behind. A prefetch is a hint: it changes no data, so the CPU twin
 * (slora_l2_cpu.c) checks the same descriptor and asks the host's cache
 * for the same bytes.
 */

#ifndef SLORA_L2_H
#define SLORA_L2_H


#include <stdint.h>


typedef struct {
    const void  *base;          /* the matrix's first row */
    int64_t      rows;
    int64_t      ld;            /* bytes from a row to the next */
    int64_t      slice;         /* bytes from a slice's start to the next */
    int32_t      n_slices;      /* slices a row (a GEMM's K split) */
    int32_t      bytes;         /* read from each slice's start */
    int32_t      keep;          /* 1: kept ahead of other lines
                                   (evict_last), for a gap that other
                                   streams pass through first */
} slora_l2_ahead_t;


/* 0, or -1 for a descriptor that reads outside [base, base + rows * ld)
 * or is not 16-byte aligned and sized (base, ld, slice, bytes). */
int slora_l2_ahead_check(const slora_l2_ahead_t *a);

/* The host's twin: __builtin_prefetch over the same bytes. */
int slora_l2_ahead(const slora_l2_ahead_t *a);

/* CUDA twin (kernels/slora_l2.cu): one bulk prefetch a slice (sm_90;
 * nothing before it), on stream, a cudaStream_t. */
int slora_l2_ahead_cuda(const slora_l2_ahead_t *a, void *stream);

#endif /* SLORA_L2_H */
