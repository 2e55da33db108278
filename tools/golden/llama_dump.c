/*
 * llama_dump: run llama.cpp (the reference build under ref/build) on one
 * prompt and dump what the forward goldens need.
 *
 * It tokenizes the prompt with the model's own tokenizer (special tokens
 * parsed, BOS only if the model asks for it), decodes it, writes the raw
 * little-endian f32 logits of the last prompt position to a file, then runs
 * greedy decoding (argmax, lowest id on a tie, EOS not special) for
 * N_PREDICT steps.  stdout gets one JSON object: the prompt ids, the greedy
 * ids, and for every greedy step the two best ids with their logits.
 *
 * The one idea to know: the reference is pinned to plain arithmetic (f32 KV
 * cache, no flash attention, one sequence, 2 threads), so what our engine
 * is compared against is the model, not a choice of llama.cpp's fast paths.
 *
 *   llama_dump --template MODEL
 *       print the GGUF's tokenizer.chat_template and exit
 *   llama_dump MODEL N_PREDICT PROMPT_FILE LOGITS_OUT
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llama.h>


#define LLAMA_DUMP_THREADS  2
#define LLAMA_DUMP_CTX      1024


static void llama_dump_log(enum ggml_log_level level, const char *text,
    void *data);
static char *llama_dump_read_file(const char *path, size_t *len);
static int llama_dump_template(const char *model_path);
static void llama_dump_top2(const float *logits, int32_t n_vocab,
    int32_t *id1, int32_t *id2);
static int llama_dump_run(const char *model_path, int n_predict,
    const char *prompt_path, const char *logits_path);


static void
llama_dump_log(enum ggml_log_level level, const char *text, void *data)
{
    if (level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}


static char *
llama_dump_read_file(const char *path, size_t *len)
{
    char    *buf;
    long     size;
    FILE    *f;

    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "llama_dump: %s: %s\n", path, strerror(errno));
        return NULL;
    }

    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        fprintf(stderr, "llama_dump: %s: cannot seek\n", path);
        fclose(f);
        return NULL;
    }

    buf = malloc((size_t) size + 1);
    if (buf == NULL) {
        fclose(f);
        return NULL;
    }

    if (fread(buf, 1, (size_t) size, f) != (size_t) size) {
        fprintf(stderr, "llama_dump: %s: short read\n", path);
        free(buf);
        fclose(f);
        return NULL;
    }

    fclose(f);
    buf[size] = '\0';
    *len = (size_t) size;

    return buf;
}


static int
llama_dump_template(const char *model_path)
{
    const char                *tmpl;
    struct llama_model        *model;
    struct llama_model_params  mp;

    mp = llama_model_default_params();
    mp.vocab_only = true;

    model = llama_model_load_from_file(model_path, mp);
    if (model == NULL) {
        fprintf(stderr, "llama_dump: %s: cannot load\n", model_path);
        return 1;
    }

    tmpl = llama_model_chat_template(model, NULL);
    if (tmpl == NULL) {
        fprintf(stderr, "llama_dump: %s: no tokenizer.chat_template\n",
                model_path);
        llama_model_free(model);
        return 1;
    }

    fputs(tmpl, stdout);
    llama_model_free(model);

    return 0;
}


static void
llama_dump_top2(const float *logits, int32_t n_vocab, int32_t *id1,
    int32_t *id2)
{
    int32_t  i, a, b;

    a = 0;
    b = -1;

    for (i = 1; i < n_vocab; i++) {
        if (logits[i] > logits[a]) {
            b = a;
            a = i;

        } else if (b < 0 || logits[i] > logits[b]) {
            b = i;
        }
    }

    *id1 = a;
    *id2 = b;
}


static int
llama_dump_run(const char *model_path, int n_predict,
    const char *prompt_path, const char *logits_path)
{
    int                          rc, step;
    char                        *text;
    FILE                        *out;
    size_t                       len;
    float                       *logits;
    int32_t                      n_vocab, n_prompt, i, id1, id2;
    llama_token                 *tokens, tok;
    struct llama_batch           batch;
    struct llama_model          *model;
    struct llama_context        *ctx;
    const struct llama_vocab    *vocab;
    struct llama_model_params    mp;
    struct llama_context_params  cp;

    rc = 1;
    ctx = NULL;
    tokens = NULL;

    text = llama_dump_read_file(prompt_path, &len);
    if (text == NULL) {
        return 1;
    }

    mp = llama_model_default_params();
    model = llama_model_load_from_file(model_path, mp);
    if (model == NULL) {
        fprintf(stderr, "llama_dump: %s: cannot load\n", model_path);
        free(text);
        return 1;
    }

    vocab = llama_model_get_vocab(model);
    n_vocab = llama_vocab_n_tokens(vocab);

    tokens = malloc(sizeof(llama_token) * (len + 2 + (size_t) n_predict));
    if (tokens == NULL) {
        goto done;
    }

    n_prompt = llama_tokenize(vocab, text, (int32_t) len, tokens,
                              (int32_t) len + 2, true, true);
    if (n_prompt <= 0) {
        fprintf(stderr, "llama_dump: %s: tokenize failed (%d)\n",
                prompt_path, (int) n_prompt);
        goto done;
    }

    if (n_prompt + n_predict > LLAMA_DUMP_CTX) {
        fprintf(stderr, "llama_dump: %s: %d tokens, context is %d\n",
                prompt_path, (int) n_prompt, LLAMA_DUMP_CTX);
        goto done;
    }

    cp = llama_context_default_params();
    cp.n_ctx = LLAMA_DUMP_CTX;
    cp.n_batch = LLAMA_DUMP_CTX;
    cp.n_ubatch = LLAMA_DUMP_CTX;
    cp.n_seq_max = 1;
    cp.n_threads = LLAMA_DUMP_THREADS;
    cp.n_threads_batch = LLAMA_DUMP_THREADS;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
    cp.no_perf = true;

    ctx = llama_init_from_model(model, cp);
    if (ctx == NULL) {
        fprintf(stderr, "llama_dump: cannot create a context\n");
        goto done;
    }

    batch = llama_batch_get_one(tokens, n_prompt);
    if (llama_decode(ctx, batch) != 0) {
        fprintf(stderr, "llama_dump: decode of the prompt failed\n");
        goto done;
    }

    logits = llama_get_logits_ith(ctx, -1);

    out = fopen(logits_path, "wb");
    if (out == NULL) {
        fprintf(stderr, "llama_dump: %s: %s\n", logits_path,
                strerror(errno));
        goto done;
    }

    if (fwrite(logits, sizeof(float), (size_t) n_vocab, out)
        != (size_t) n_vocab || fclose(out) != 0)
    {
        fprintf(stderr, "llama_dump: %s: write failed\n", logits_path);
        goto done;
    }

    printf("{\"n_vocab\": %d, \"add_bos\": %s, \"prompt_ids\": [",
           (int) n_vocab, llama_vocab_get_add_bos(vocab) ? "true" : "false");

    for (i = 0; i < n_prompt; i++) {
        printf("%s%d", i ? ", " : "", (int) tokens[i]);
    }

    printf("], \"steps\": [");

    for (step = 0; step < n_predict; step++) {
        llama_dump_top2(logits, n_vocab, &id1, &id2);

        printf("%s[%d, %.9g, %d, %.9g]", step ? ", " : "",
               (int) id1, logits[id1], (int) id2, logits[id2]);

        if (step == n_predict - 1) {
            break;
        }

        tok = id1;
        batch = llama_batch_get_one(&tok, 1);
        if (llama_decode(ctx, batch) != 0) {
            fprintf(stderr, "llama_dump: decode of step %d failed\n", step);
            goto done;
        }

        logits = llama_get_logits_ith(ctx, -1);
    }

    printf("]}\n");
    rc = 0;

done:

    if (ctx != NULL) {
        llama_free(ctx);
    }

    llama_model_free(model);
    free(tokens);
    free(text);

    return rc;
}


int
main(int argc, char **argv)
{
    int  rc, n_predict;

    llama_log_set(llama_dump_log, NULL);
    llama_backend_init();

    if (argc == 3 && strcmp(argv[1], "--template") == 0) {
        rc = llama_dump_template(argv[2]);

    } else if (argc == 5 && (n_predict = atoi(argv[2])) > 0) {
        rc = llama_dump_run(argv[1], n_predict, argv[3], argv[4]);

    } else {
        fprintf(stderr, "usage: llama_dump --template MODEL\n"
                        "       llama_dump MODEL N_PREDICT PROMPT_FILE "
                        "LOGITS_OUT\n");
        rc = 2;
    }

    llama_backend_free();

    return rc;
}
