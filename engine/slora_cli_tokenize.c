/*
 * slora_cli_tokenize.c: `slora tokenize`, the token ids of a text under a
 * model's tokenizer (GGUF, tokenizer.json or an HF folder), as the engine
 * would feed them: BOS when the model wants it, special-token text parsed,
 * optionally wrapped as one user turn of the model's chat template (then,
 * as in a chat request, the turn's text is text: only the template's
 * special-token text is parsed).
 *
 * The one idea: this is the same path a request takes, so its output is
 * what to compare with llama.cpp's llama-tokenize when ids look wrong.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_cli.h"
#include "slora_tokenizer.h"


static void slora_cli_tokenize_usage(FILE *f);
static int slora_cli_tokenize_encode(const slora_tokenizer_t *t,
    const char *text, size_t len, int bos, int special,
    const slora_chat_plain_t *plain, int32_t *ids, int32_t cap, int32_t *n,
    slora_err_t *err);
static char *slora_cli_read_stdin(size_t *len);
static void slora_cli_print_piece(const char *s, size_t n);


static void
slora_cli_tokenize_usage(FILE *f)
{
    fprintf(f,
        "usage: slora tokenize --model M [--no-bos] [--no-special] [--chat]"
        "\n                      [--template NAME] [--pieces]"
        " (--text T | < stdin)\n\n"
        "  --model M       GGUF file, tokenizer.json, or HF folder\n"
        "  --no-bos        do not add BOS even if the model wants it\n"
        "  --no-special    treat special-token text as plain text\n"
        "  --chat          wrap the text as a user turn of the chat "
        "template\n"
        "                  (the text's special-token text is plain, as a\n"
        "                  request's)\n"
        "  --template NAME chatml, llama2, llama3, llama3.1, llama3.2,\n"
        "                  mistral, mistral-v3-tekken, mistral-v7-tekken or\n"
        "                  deepseek-r1\n"
        "                  (with --chat)\n"
        "  --pieces        print each id with its text, one per line\n");
}


static char *
slora_cli_read_stdin(size_t *len)
{
    char    *buf, *p;
    size_t   cap, n;

    cap = 65536;
    buf = malloc(cap);
    *len = 0;

    while (buf != NULL) {
        n = fread(buf + *len, 1, cap - *len, stdin);
        *len += n;

        if (n == 0) {
            return buf;
        }

        if (*len == cap) {
            cap *= 2;
            p = realloc(buf, cap);

            if (p == NULL) {
                free(buf);
                return NULL;
            }

            buf = p;
        }
    }

    return NULL;
}


static void
slora_cli_print_piece(const char *s, size_t n)
{
    size_t         i;
    unsigned char  c;

    putchar('\'');

    for (i = 0; i < n; i++) {
        c = (unsigned char) s[i];

        if (c == '\n') {
            fputs("\\n", stdout);

        } else if (c == '\t') {
            fputs("\\t", stdout);

        } else if (c == '\\' || c == '\'') {
            printf("\\%c", c);

        } else if (c < 0x20 || c == 0x7f) {
            printf("\\x%02x", c);

        } else {
            putchar(c);
        }
    }

    putchar('\'');
}


int
slora_cli_tokenize(int argc, char **argv)
{
    int                  i, bos, special, chat, pieces, rc;
    char                *text, *own, *prompt, piece[1024];
    size_t               len, n, pn;
    int32_t             *ids, n_ids;
    const char          *model, *tmpl_name;
    slora_err_t          err;
    slora_chat_e         tmpl;
    slora_tokenizer_t   *t;
    slora_chat_plain_t   plain;

    model = NULL;
    text = NULL;
    tmpl_name = NULL;
    bos = 1;
    special = 1;
    chat = 0;
    pieces = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
            model = argv[++i];

        } else if (strcmp(argv[i], "--text") == 0 && i + 1 < argc) {
            text = argv[++i];

        } else if (strcmp(argv[i], "--template") == 0 && i + 1 < argc) {
            tmpl_name = argv[++i];

        } else if (strcmp(argv[i], "--no-bos") == 0) {
            bos = 0;

        } else if (strcmp(argv[i], "--no-special") == 0) {
            special = 0;

        } else if (strcmp(argv[i], "--chat") == 0) {
            chat = 1;

        } else if (strcmp(argv[i], "--pieces") == 0) {
            pieces = 1;

        } else if (strcmp(argv[i], "--help") == 0
                   || strcmp(argv[i], "-h") == 0)
        {
            slora_cli_tokenize_usage(stdout);
            return 0;

        } else {
            fprintf(stderr, "slora tokenize: unknown or incomplete option "
                    "\"%s\"\n", argv[i]);
            slora_cli_tokenize_usage(stderr);
            return 2;
        }
    }

    if (model == NULL) {
        slora_cli_tokenize_usage(stderr);
        return 2;
    }

    t = slora_tokenizer_load(model, &err);
    if (t == NULL) {
        fprintf(stderr, "slora tokenize: %s\n", err.msg);
        return 1;
    }

    own = NULL;
    prompt = NULL;
    ids = NULL;
    plain.span = NULL;
    rc = 1;

    if (text != NULL) {
        len = strlen(text);

    } else {
        own = slora_cli_read_stdin(&len);
        if (own == NULL) {
            fprintf(stderr, "slora tokenize: cannot read stdin\n");
            goto done;
        }

        text = own;
    }

    if (chat) {
        tmpl = slora_tokenizer_chat_template(t);

        if (tmpl_name != NULL
            && slora_chat_from_name(tmpl_name, &tmpl) != SLORA_OK)
        {
            fprintf(stderr, "slora tokenize: unknown template \"%s\"\n",
                    tmpl_name);
            goto done;
        }

        prompt = slora_chat_user_prompt(t, tmpl, text, len, &n, &plain,
                                        &err);

        if (prompt == NULL) {
            fprintf(stderr, "slora tokenize: %s\n", err.msg);
            goto done;
        }

        text = prompt;
        len = n;
    }

    n_ids = 0;
    rc = slora_cli_tokenize_encode(t, text, len, bos, special,
                                   chat ? &plain : NULL, NULL, 0, &n_ids,
                                   &err);

    if (rc == SLORA_ERROR) {
        fprintf(stderr, "slora tokenize: %s\n", err.msg);
        rc = 1;
        goto done;
    }

    ids = malloc(((size_t) n_ids + 1) * sizeof(int32_t));

    if (ids == NULL
        || slora_cli_tokenize_encode(t, text, len, bos, special,
                                     chat ? &plain : NULL, ids, n_ids,
                                     &n_ids, &err)
           != SLORA_OK)
    {
        fprintf(stderr, "slora tokenize: %s\n",
                ids ? err.msg : "out of memory");
        rc = 1;
        goto done;
    }

    for (i = 0; i < n_ids; i++) {
        if (pieces) {
            printf("%6d -> ", ids[i]);

            if (slora_tokenizer_token_bytes(t, ids[i], piece, sizeof(piece),
                                            &pn) != SLORA_OK)
            {
                pn = 0;
            }

            slora_cli_print_piece(piece, pn);
            putchar('\n');

        } else {
            printf(i ? " %d" : "%d", ids[i]);
        }
    }

    if (!pieces) {
        putchar('\n');
    }

    rc = 0;

done:

    free(ids);
    free(prompt);
    free(plain.span);
    free(own);
    slora_tokenizer_free(t);

    return rc;
}


/* text's ids: a chat prompt's (plain: the spans of the request's text in
 * it) as a chat request's, else with special as given. */
static int
slora_cli_tokenize_encode(const slora_tokenizer_t *t, const char *text,
    size_t len, int bos, int special, const slora_chat_plain_t *plain,
    int32_t *ids, int32_t cap, int32_t *n, slora_err_t *err)
{
    if (plain != NULL) {
        return slora_tokenizer_encode_chat(t, text, len,
                                           bos && slora_tokenizer_chat_bos(t)
                                           ? SLORA_TOK_BOS_TEMPLATE : 0,
                                           plain->span,
                                           plain->n, ids, cap, INT32_MAX - 1,
                                           n, err);
    }

    return slora_tokenizer_encode(t, text, len, bos, special, ids, cap, n,
                                  err);
}
