/*
 * chat_text.h: what the unit tests that run SmolLM2 on a chat need
 * beside the engine: a user message rendered through the model's chat
 * template and tokenized as the server does it, and token ids back to
 * their text.
 *
 * The one idea: the prompt and the answer's text are made the server's
 * way, so that what a test asserts of them is what a client would see.
 */

#ifndef CHAT_TEXT_H
#define CHAT_TEXT_H


#include <string.h>

#include "tap.h"
#include "slora_tokenizer.h"


/* One user message's prompt ids, into ids[0..cap); bails out on error. */
static int32_t
chat_text_prompt(const slora_tokenizer_t *tok, const char *content,
    int32_t *ids, int32_t cap)
{
    char              prompt[1024];
    size_t            n;
    int32_t           n_ids;
    slora_err_t       err;
    slora_chat_msg_t  msg;

    msg.role = "user";
    msg.role_len = 4;
    msg.content = content;
    msg.content_len = strlen(content);

    if (slora_chat_render(slora_tokenizer_chat_template(tok), &msg, 1,
                          prompt, sizeof(prompt), &n, &err) != SLORA_OK
        || slora_tokenizer_encode(tok, prompt, n, 1, 1, ids, cap, &n_ids,
                                  &err) != SLORA_OK)
    {
        BAIL_OUT("prompt: %s", err.msg);
    }

    return n_ids;
}


/* ids' bytes, NUL-terminated, into out[0..cap); their length. */
static size_t
chat_text_bytes(const slora_tokenizer_t *t, const int32_t *ids, int32_t n,
    char *out, size_t cap)
{
    size_t   len, at;
    int32_t  i;

    at = 0;

    for (i = 0; i < n; i++) {
        if (slora_tokenizer_token_bytes(t, ids[i], out + at, cap - at - 1,
                                        &len)
            != SLORA_OK)
        {
            break;
        }
        at += len;
    }

    out[at] = '\0';
    return at;
}


#endif /* CHAT_TEXT_H */
