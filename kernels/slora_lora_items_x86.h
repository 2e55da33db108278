/*
 * slora_lora_items_x86.h: a LoRA shrink item and an expand item on x86
 * vectors, the body slora_lora_x86_cpu.c compiles once for AVX2 and once
 * for AVX-512 (no include guard): SLORA_LORA_TARGET is the instance's
 * target attribute, SLORA_LV its vector of SLORA_LV_W floats with the
 * SLORA_LV_* operations, and slora_lora_shrink_item_x86 and
 * slora_lora_expand_item_x86 are defined to the instance's names.
 *
 * The one idea: slora_vec_dot's sixteen running sums are 16 /
 * SLORA_LV_W registers, each lane multiplying then adding in the
 * portable order, then the same folding tree; an expand's y += w B is
 * slora_vec_axpy's product and sum, element by element.
 */

SLORA_LORA_TARGET void
slora_lora_shrink_item_x86(float *v, int64_t ld_v, const float *x,
    int64_t ld_x, const float *a, int32_t in_dim, int32_t t0, int32_t t1,
    int32_t j)
{
    int32_t       t, i, k;
    float         acc[16], tail;
    const float  *xt;
    SLORA_LV      s[16 / SLORA_LV_W];

    for (t = t0; t < t1; t++) {
        xt = x + (int64_t) t * ld_x;

        for (k = 0; k < 16 / SLORA_LV_W; k++) {
            s[k] = SLORA_LV_ZERO();
        }

        for (i = 0; i + 16 <= in_dim; i += 16) {
            for (k = 0; k < 16 / SLORA_LV_W; k++) {
                s[k] = SLORA_LV_ADD(s[k],
                                    SLORA_LV_MUL(
                                        SLORA_LV_LOAD(xt + i + k * SLORA_LV_W),
                                        SLORA_LV_LOAD(a + i + k * SLORA_LV_W)));
            }
        }

        for (k = 0; k < 16 / SLORA_LV_W; k++) {
            SLORA_LV_STORE(acc + k * SLORA_LV_W, s[k]);
        }

        tail = 0.0f;

        for ( /* void */ ; i < in_dim; i++) {
            tail += xt[i] * a[i];
        }

        v[(int64_t) t * ld_v + j] = slora_vec_fold16(acc, tail);
    }
}


SLORA_LORA_TARGET void
slora_lora_expand_item_x86(float *y, int64_t ld_y, const float *v,
    int64_t ld_v, const float *base, const int64_t *rows, int32_t r,
    float sc, int32_t t0, int32_t t1, int32_t c0, int32_t nc)
{
    int32_t       t, j, i;
    float         w, *yt;
    const float  *b;
    SLORA_LV      wv;

    for (t = t0; t < t1; t++) {
        yt = y + (int64_t) t * ld_y + c0;

        for (j = 0; j < r; j++) {
            w = sc * v[(int64_t) t * ld_v + j];
            wv = SLORA_LV_SET1(w);
            b = base + rows[j] + c0;

            for (i = 0; i + SLORA_LV_W <= nc; i += SLORA_LV_W) {
                SLORA_LV_STORE(yt + i,
                               SLORA_LV_ADD(SLORA_LV_LOAD(yt + i),
                                            SLORA_LV_MUL(wv,
                                                SLORA_LV_LOAD(b + i))));
            }

            for ( /* void */ ; i < nc; i++) {
                yt[i] += w * b[i];
            }
        }
    }
}
