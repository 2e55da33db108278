/*
 * fuzz_tok_check.h: what the tokenizer loaders' harnesses (fuzz_tokjson,
 * fuzz_tokgguf) ask of a tokenizer that loaded from hostile bytes.
 *
 * The one idea: a tokenizer that loads is one the server will use, so
 * its special ids lie in its vocabulary and it encodes text, with and
 * without special tokens, to ids of that vocabulary only.
 */

#ifndef FUZZ_TOK_CHECK_H
#define FUZZ_TOK_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "slora_tokenizer.h"


#define FUZZ_TEXT  "Hello world 123 <|im_start|>user\n\xc3\xa9\xe2\x96\x81 x"


static void
fuzz_tok_check(const slora_tokenizer_t *t)
{
    int          special;
    int32_t      ids[256], n, i, n_vocab;
    slora_err_t  err;

    n_vocab = slora_tokenizer_n_vocab(t);

    if (slora_tokenizer_bos(t) >= n_vocab
        || slora_tokenizer_eos(t) >= n_vocab)
    {
        fprintf(stderr, "bos %d, eos %d of a vocabulary of %d\n",
                (int) slora_tokenizer_bos(t), (int) slora_tokenizer_eos(t),
                (int) n_vocab);
        abort();
    }

    for (special = 0; special < 2; special++) {
        n = 0;

        if (slora_tokenizer_encode(t, FUZZ_TEXT, sizeof(FUZZ_TEXT) - 1, 1,
                                   special, ids, 256, &n, &err)
            != SLORA_OK)
        {
            continue;
        }

        for (i = 0; i < n && i < 256; i++) {
            if (ids[i] < 0 || ids[i] >= n_vocab) {
                fprintf(stderr, "id %d of a vocabulary of %d\n",
                        (int) ids[i], (int) n_vocab);
                abort();
            }
        }
    }
}


#endif /* FUZZ_TOK_CHECK_H */
