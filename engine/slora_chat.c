/*
 * slora_chat.c: the chat templates, rendered in C to the exact text
 * the models' official Jinja templates produce (less the leading BOS,
 * which the encoder adds where the template writes one):
 *
 *   chatml   <|im_start|>{role}\n{content}<|im_end|>\n ... then
 *            <|im_start|>assistant\n                     (SmolLM2, Qwen2)
 *   llama2   [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {reply}
 *            </s><s>[INST] {user} [/INST]     (Llama-2-chat, TinyLlama's
 *            Llama 2 variant; messages stripped, as content.strip() does)
 *   llama3   <|start_header_id|>{role}<|end_header_id|>\n\n{content}
 *            <|eot_id|> ... then the assistant header   (Llama 3.x;
 *            content trimmed, as "| trim" does)
 *   mistral  [INST] {user}[/INST] {reply}</s>[INST] {system}\n\n{user}
 *            [/INST]                    (Mistral-7B-Instruct-v0.3: the
 *            system text goes into the last user turn)
 *   mistral-v3-tekken  the same without the spaces, the reply as it is
 *                                       (Mistral NeMo)
 *   mistral-v7-tekken  [SYSTEM_PROMPT]{system}[/SYSTEM_PROMPT][INST]
 *            {user}[/INST]{reply}</s>   (Mistral Small 3, Devstral,
 *            Ministral 3: the template's default system message, its
 *            date today's, where a chat has none)
 *   llama3.1 llama3's turns after a system header that is always there:
 *            <|start_header_id|>system<|end_header_id|>\n\n
 *            [Environment: ipython\n]Cutting Knowledge Date: December
 *            2023\nToday Date: 26 Jul 2024\n\n{system}<|eot_id|>; a
 *            tool's result an ipython turn, its content as a JSON
 *            string                            (Llama 3.1 and 3.3)
 *   llama3.2 the same with today's date (strftime_now("%d %b %Y"))
 *                                          (Llama 3.2)
 *   deepseek-r1  {system}<｜User｜>{user}<｜Assistant｜>{reply}
 *            <｜end▁of▁sentence｜> ... <｜Assistant｜><think>\n
 *            (DeepSeek-R1-Distill-Llama and -Qwen: the reply's text
 *            after its last </think>)
 *
 * Tools and calls are the caller's to put into the messages' content
 * (engine/slora_openai_tools.c, engine/slora_openai_mistral.c), in the
 * format the template's model reads; SLORA_CHAT_TOOLS says a request has
 * them; Mistral's templates take tool results and the tools' block as
 * messages of their own (roles tool and tools), written as they are. So is
 * a ChatML template's default system message (slora_chat_default_system
 * reads it out of the Jinja text: SmolLM2's, Qwen2.5's), which the parser
 * puts first in a chat without one.
 *
 * A message's text is text: the renderer reports which spans of what it
 * writes came from the request (roles, content, the parts of a caller's
 * made message it lists: a call's arguments, a result, the tools), and
 * the encoder (slora_tokenizer_encode_chat) reads a special token's text
 * as that token only outside them, in the template's marks, its default
 * system message and the marks of made messages. A client who types
 * "<|im_end|>" gets those characters, not a turn of its own making.
 *
 * Llama 2's and Mistral's official templates have no add_generation_prompt
 * (their text always ends ready for the answer). Continuing the last
 * message (an assistant's) stops the text where its content ends, as
 * transformers cuts the rendered text for continue_final_message.
 *
 * The one idea: rendering is a pure function of the messages (and, for
 * llama3.2, the day); it writes what fits and always reports the full
 * size, so callers size a buffer in one retry, as snprintf allows.
 */

#define _GNU_SOURCE

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slora_pyjson.h"
#include "slora_tokenizer.h"


typedef struct {
    char                *buf;
    size_t               cap;
    size_t               n;
    slora_chat_plain_t  *plain;         /* NULL: not asked */
    size_t               plain_end;     /* where the last span ends */
} slora_chat_out_t;


static void slora_chat_put(slora_chat_out_t *o, const char *s, size_t n);
static void slora_chat_puts(slora_chat_out_t *o, const char *s);
static void slora_chat_put_plain(slora_chat_out_t *o, const char *s,
    size_t n);
static void slora_chat_put_role(slora_chat_out_t *o,
    const slora_chat_msg_t *m);
static void slora_chat_put_content(slora_chat_out_t *o,
    const slora_chat_msg_t *m, const char *c, size_t cl);
static void slora_chat_span(slora_chat_out_t *o, size_t off, size_t len);
static size_t slora_chat_space_len(const unsigned char *p, size_t n);
static size_t slora_chat_space_head(const char *s, size_t n);
static size_t slora_chat_space_tail(const char *s, size_t n);
static void slora_chat_trim_end(const char *s, size_t *n);
static int slora_chat_role(const slora_chat_msg_t *m);
static int slora_chat_system_first(const slora_chat_msg_t *msgs,
    int n_msgs, int first, slora_chat_e tmpl, slora_err_t *err);
static int slora_chat_alternates(const slora_chat_msg_t *msgs, int n_msgs,
    int first, slora_chat_e tmpl, slora_err_t *err);
static void slora_chat_mistral(slora_chat_out_t *o, slora_chat_e tmpl,
    const slora_chat_msg_t *msgs, int n_msgs, int first, int last,
    unsigned flags);
static void slora_chat_deepseek(slora_chat_out_t *o,
    const slora_chat_msg_t *msgs, int n_msgs, int last, unsigned flags);
static int slora_chat_same(const slora_chat_msg_t *a,
    const slora_chat_msg_t *b);
static int slora_chat_mistrals(slora_chat_e tmpl);
static void slora_chat_llama31(slora_chat_out_t *o, slora_chat_e tmpl,
    const slora_chat_msg_t *msgs, int n_msgs, int first, int last,
    unsigned flags);
static void slora_chat_put_plain_cb(void *data, const char *s, size_t n);
static char *slora_chat_jinja_default(const char *jinja, size_t len);
static const char *slora_chat_jinja_escape(slora_chat_out_t *o,
    const char *p, const char *end);
static int slora_chat_jinja_concat(slora_chat_out_t *o, const char *jinja,
    size_t len, const char *p, const char *end);


#define SLORA_ROLE_SYSTEM     0
#define SLORA_ROLE_USER       1
#define SLORA_ROLE_ASSISTANT  2
#define SLORA_ROLE_TOOL       3
#define SLORA_ROLE_TOOLS      4     /* Mistral's: the tools' block */


static const char  *slora_chat_names[SLORA_CHAT_N] = {
    "chatml", "llama2", "llama3", "mistral", "llama3.1", "llama3.2",
    "mistral-v3-tekken", "mistral-v7-tekken", "deepseek-r1"
};


/* DeepSeek's marks: U+FF5C for the bars, U+2581 for the spaces */
#define SLORA_R1_BAR    "\xef\xbd\x9c"
#define SLORA_R1_USER   "<" SLORA_R1_BAR "User" SLORA_R1_BAR ">"
#define SLORA_R1_ASSISTANT  "<" SLORA_R1_BAR "Assistant" SLORA_R1_BAR ">"
#define SLORA_R1_EOS    "<" SLORA_R1_BAR "end\xe2\x96\x81of\xe2\x96\x81" \
                        "sentence" SLORA_R1_BAR ">"


int
slora_chat_from_name(const char *name, slora_chat_e *out)
{
    int  i;

    for (i = 0; i < SLORA_CHAT_N; i++) {
        if (strcmp(name, slora_chat_names[i]) == 0) {
            *out = (slora_chat_e) i;
            return SLORA_OK;
        }
    }

    return SLORA_DECLINED;
}


const char *
slora_chat_name(slora_chat_e tmpl)
{
    return (unsigned) tmpl < SLORA_CHAT_N ? slora_chat_names[tmpl] : "?";
}


int
slora_chat_bos(slora_chat_e tmpl)
{
    return tmpl != SLORA_CHAT_CHATML;
}


/* The markers each template cannot do without, as llama.cpp's
 * llm_chat_detect_template looks for them. */
slora_chat_e
slora_chat_detect(const char *jinja, size_t len)
{
    if (memmem(jinja, len, SLORA_R1_USER, sizeof(SLORA_R1_USER) - 1)
        != NULL)
    {
        return SLORA_CHAT_DEEPSEEK_R1;
    }

    if (memmem(jinja, len, "<|im_start|>", 12) != NULL) {
        return SLORA_CHAT_CHATML;
    }

    if (memmem(jinja, len, "<|start_header_id|>", 19) != NULL) {
        if (memmem(jinja, len, "Cutting Knowledge Date", 22) == NULL) {
            return SLORA_CHAT_LLAMA3;
        }

        return memmem(jinja, len, "strftime_now", 12) != NULL
               ? SLORA_CHAT_LLAMA32 : SLORA_CHAT_LLAMA31;
    }

    if (memmem(jinja, len, "[INST]", 6) != NULL) {
        if (memmem(jinja, len, "[SYSTEM_PROMPT]", 15) != NULL) {
            return SLORA_CHAT_MISTRAL_V7;
        }

        if (memmem(jinja, len, "<<SYS>>", 7) != NULL) {
            return SLORA_CHAT_LLAMA2;
        }

        /* NeMo's writes "[INST]" + content, v0.3's "[INST] " + ... */
        return memmem(jinja, len, "\"[INST]\"", 8) != NULL
               || memmem(jinja, len, "'[INST]'", 8) != NULL
               ? SLORA_CHAT_MISTRAL_TEKKEN : SLORA_CHAT_MISTRAL;
    }

    return SLORA_CHAT_CHATML;
}


/*
 * Llama 3.1's template (3.2's with today's date): the system header
 * always, then each turn as llama3 writes it, but a tool's result an
 * ipython turn whose content is written as a JSON string (the template
 * tests "is iterable", which a string is), and the messages the caller
 * marked verbatim not trimmed.
 */
static void
slora_chat_llama31(slora_chat_out_t *o, slora_chat_e tmpl,
    const slora_chat_msg_t *msgs, int n_msgs, int first, int last,
    unsigned flags)
{
    int          i;
    char         date[32];
    size_t       cl;
    time_t       now;
    struct tm    tm;
    const char  *c;

    if (tmpl == SLORA_CHAT_LLAMA32) {
        now = time(NULL);

        if (localtime_r(&now, &tm) == NULL
            || strftime(date, sizeof(date), "%d %b %Y", &tm) == 0)
        {
            snprintf(date, sizeof(date), "26 Jul 2024");
        }

    } else {
        snprintf(date, sizeof(date), "26 Jul 2024");
    }

    slora_chat_puts(o, "<|start_header_id|>system<|end_header_id|>\n\n");

    if (flags & SLORA_CHAT_TOOLS) {
        slora_chat_puts(o, "Environment: ipython\n");
    }

    slora_chat_puts(o, "Cutting Knowledge Date: December 2023\nToday Date: ");
    slora_chat_puts(o, date);
    slora_chat_puts(o, "\n\n");

    if (first) {
        c = msgs[0].content;
        cl = msgs[0].content_len;
        slora_chat_trim(&c, &cl);
        slora_chat_put_content(o, &msgs[0], c, cl);
    }

    slora_chat_puts(o, "<|eot_id|>");

    for (i = first; i < n_msgs; i++) {
        c = msgs[i].content;
        cl = msgs[i].content_len;

        if (slora_chat_role(&msgs[i]) == SLORA_ROLE_TOOL) {
            slora_chat_puts(o, "<|start_header_id|>ipython"
                               "<|end_header_id|>\n\n");
            slora_pyjson_string(c, cl, slora_chat_put_plain_cb, o);

        } else {
            if (!msgs[i].verbatim) {
                slora_chat_trim(&c, &cl);
            }

            slora_chat_puts(o, "<|start_header_id|>");
            slora_chat_put_role(o, &msgs[i]);
            slora_chat_puts(o, "<|end_header_id|>\n\n");
            slora_chat_put_content(o, &msgs[i], c, cl);
        }

        if (i != last) {
            slora_chat_puts(o, "<|eot_id|>");
        }
    }

    if (flags & SLORA_CHAT_GEN_PROMPT) {
        slora_chat_puts(o, "<|start_header_id|>assistant"
                           "<|end_header_id|>\n\n");
    }
}


/* A tool's result as a JSON string: the request's text. */
static void
slora_chat_put_plain_cb(void *data, const char *s, size_t n)
{
    slora_chat_put_plain(data, s, n);
}


char *
slora_chat_user_prompt(const slora_tokenizer_t *t, slora_chat_e tmpl,
    const char *text, size_t len, size_t *n, slora_chat_plain_t *plain,
    slora_err_t *err)
{
    int                  k;
    char                *prompt, *dated;
    const char          *sys;
    slora_chat_msg_t     msgs[2];
    slora_chat_plain_t   sized;

    sys = tmpl == slora_tokenizer_chat_template(t)
          ? slora_tokenizer_chat_system(t) : NULL;
    dated = slora_chat_system_text(sys);
    if (dated != NULL) {
        sys = dated;
    }
    k = 0;

    /* the default system message is the template's text, not the
     * request's */
    if (sys != NULL) {
        msgs[k++] = (slora_chat_msg_t) { "system", 6, sys, strlen(sys), 0, 0,
                                         1, NULL, 0, 0 };
    }

    msgs[k++] = (slora_chat_msg_t) { "user", 4, text, len, 0, 0, 0, NULL,
                                     0, 0 };
    prompt = NULL;
    sized.span = NULL;
    sized.cap = 0;
    sized.n = 0;

    if (plain != NULL) {
        plain->span = NULL;
        plain->cap = 0;
        plain->n = 0;
    }

    if (slora_chat_render(tmpl, msgs, k, SLORA_CHAT_GEN_PROMPT, NULL, 0, n,
                          &sized, err)
        == SLORA_ERROR)
    {
        goto done;
    }

    prompt = malloc(*n + 1);

    if (plain != NULL && sized.n > 0) {
        plain->span = malloc(sized.n * sizeof(slora_span_t));
        plain->cap = plain->span != NULL ? sized.n : 0;
    }

    if (prompt == NULL || (plain != NULL && plain->cap < sized.n)) {
        slora_err_set(err, SLORA_ERROR, "chat template: out of memory");
        goto failed;
    }

    if (slora_chat_render(tmpl, msgs, k, SLORA_CHAT_GEN_PROMPT, prompt,
                          *n + 1, n, plain, err)
        == SLORA_OK)
    {
        goto done;
    }

failed:

    free(prompt);
    prompt = NULL;

    if (plain != NULL) {
        free(plain->span);
        plain->span = NULL;
        plain->cap = 0;
        plain->n = 0;
    }

done:

    free(dated);

    return prompt;
}


unsigned
slora_chat_template_flags(slora_chat_e tmpl, const char *jinja, size_t len)
{
    unsigned  flags;

    if (tmpl == SLORA_CHAT_CHATML) {
        return memmem(jinja, len, "last_query_index", 16) != NULL
               && memmem(jinja, len, "reasoning_content", 17) != NULL
               ? SLORA_CHAT_THINK_TURNS : 0;
    }

    if (tmpl != SLORA_CHAT_MISTRAL_V7) {
        return 0;
    }

    flags = 0;

    if (memmem(jinja, len, "must alternate", 14) == NULL) {
        flags |= SLORA_CHAT_ANY_ORDER;
    }

    if (memmem(jinja, len, "Only user, assistant and tool roles", 35)
        != NULL)
    {
        flags |= SLORA_CHAT_SYSTEM_FIRST;
    }

    return flags;
}


char *
slora_chat_default_system(slora_chat_e tmpl, const char *jinja, size_t len)
{
    char        *text;
    size_t       n, skip;
    const char  *p, *end, *at, *stop;

    static const char  head[] = "<|im_start|>system";
    static const char  tail[] = "<|im_end|>";

    if (tmpl == SLORA_CHAT_MISTRAL_V7) {
        return slora_chat_jinja_default(jinja, len);
    }

    if (tmpl != SLORA_CHAT_CHATML) {
        return NULL;
    }

    end = jinja + len;

    /* each search starts right after the last head (at): at the text's
     * end at most, never past it, and a head just after it is found */

    for (p = jinja;
         (at = memmem(p, (size_t) (end - p), head, sizeof(head) - 1))
         != NULL;
         p = at)
    {
        at += sizeof(head) - 1;
        skip = at < end && *at == '\n' ? 1
               : end - at >= 2 && at[0] == '\\' && at[1] == 'n' ? 2 : 0;

        if (skip == 0) {
            continue;
        }

        stop = memmem(at + skip, (size_t) (end - at - skip), tail,
                      sizeof(tail) - 1);
        n = stop != NULL ? (size_t) (stop - at - skip) : 0;

        if (n == 0 || memchr(at + skip, '\'', n) != NULL
            || memchr(at + skip, '"', n) != NULL
            || memchr(at + skip, '{', n) != NULL
            || memchr(at + skip, '}', n) != NULL
            || memchr(at + skip, '\\', n) != NULL
            || memchr(at + skip, '\n', n) != NULL)
        {
            continue;
        }

        text = malloc(n + 1);

        if (text != NULL) {
            memcpy(text, at + skip, n);
            text[n] = '\0';
        }

        return text;
    }

    return NULL;
}


/*
 * Mistral's v7 templates: `set default_system_message = EXPR %}`, EXPR
 * string literals (either quote, Python's escapes) joined by +, and
 * `today` where the template sets it to strftime_now("%Y-%m-%d") (kept
 * as SLORA_CHAT_TODAY, made today's date by slora_chat_system_text).
 * Anything else, or an empty text: NULL.
 */
static char *
slora_chat_jinja_default(const char *jinja, size_t len)
{
    size_t              n;
    const char         *p, *end;
    slora_chat_out_t    o;

    static const char   key[] = "default_system_message";

    end = jinja + len;
    p = memmem(jinja, len, key, sizeof(key) - 1);

    if (p == NULL || memchr(jinja, SLORA_CHAT_TODAY, len) != NULL) {
        return NULL;
    }

    p += sizeof(key) - 1;

    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    if (p == end || *p++ != '=') {
        return NULL;
    }

    /* two passes: the size, then the text */
    o.buf = NULL;
    o.cap = 0;
    o.plain = NULL;
    o.plain_end = 0;

    for ( ;; ) {
        o.n = 0;

        if (slora_chat_jinja_concat(&o, jinja, len, p, end) != SLORA_OK) {
            free(o.buf);
            return NULL;
        }

        if (o.buf != NULL) {
            break;
        }

        n = o.n;
        if (n == 0) {
            return NULL;
        }

        o.buf = malloc(n + 1);
        o.cap = n + 1;
        if (o.buf == NULL) {
            return NULL;
        }
    }

    o.buf[o.n] = '\0';

    return o.buf;
}


/* EXPR of slora_chat_jinja_default from p, written to o. */
static int
slora_chat_jinja_concat(slora_chat_out_t *o, const char *jinja, size_t len,
    const char *p, const char *end)
{
    char         q, e;
    const char  *s;

    static const char  today_dq[] = "today = strftime_now(\"%Y-%m-%d\")";
    static const char  today_sq[] = "today = strftime_now('%Y-%m-%d')";

    for ( ;; ) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n')) {
            p++;
        }

        if (p == end) {
            return SLORA_ERROR;
        }

        if (*p == '\'' || *p == '"') {
            q = *p++;

            for (s = p; p < end && *p != q; p++) {
                if (*p != '\\') {
                    continue;
                }

                slora_chat_put(o, s, (size_t) (p - s));

                if (++p == end) {
                    return SLORA_ERROR;
                }

                p = slora_chat_jinja_escape(o, p, end);

                if (p == NULL) {
                    return SLORA_ERROR;
                }

                s = p--;
            }

            if (p == end) {
                return SLORA_ERROR;
            }

            slora_chat_put(o, s, (size_t) (p - s));
            p++;

        } else if (end - p >= 5 && memcmp(p, "today", 5) == 0
                   && (memmem(jinja, len, today_dq, sizeof(today_dq) - 1)
                       != NULL
                       || memmem(jinja, len, today_sq, sizeof(today_sq) - 1)
                          != NULL))
        {
            e = SLORA_CHAT_TODAY;
            slora_chat_put(o, &e, 1);
            p += 5;

        } else {
            return SLORA_ERROR;
        }

        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n')) {
            p++;
        }

        if (p < end && *p == '+') {
            p++;
            continue;
        }

        return end - p >= 2 && (memcmp(p, "%}", 2) == 0
                                || (end - p >= 3 && memcmp(p, "-%}", 3) == 0))
               ? SLORA_OK : SLORA_ERROR;
    }
}


/*
 * A string literal's escape, p just after its backslash, as Jinja reads
 * it (Python's unicode-escape): \n \t \r \a \b \f \v \\ \' \",
 * \xNN, \uNNNN, \UNNNNNNNN and up to three octal digits as the
 * character they name (UTF-8), a backslash before a newline as nothing,
 * any other kept with its backslash. Where the escape ends; NULL for one
 * Jinja refuses (too few hex digits, a surrogate, past U+10FFFF) or one
 * this does not read (\N{name}; NUL and \x01, SLORA_CHAT_TODAY).
 */
static const char *
slora_chat_jinja_escape(slora_chat_out_t *o, const char *p, const char *end)
{
    int          i, k, d;
    char         u[4];
    uint32_t     cp;
    const char  *simple;

    static const char  from[] = "ntrabfv\\'\"";
    static const char  to[] = "\n\t\r\a\b\f\v\\'\"";

    simple = memchr(from, *p, sizeof(from) - 1);

    if (simple != NULL) {
        slora_chat_put(o, &to[simple - from], 1);
        return p + 1;
    }

    if (*p == '\n') {
        return p + 1;
    }

    if (*p >= '0' && *p <= '7') {
        for (cp = 0, k = 0; k < 3 && p < end && *p >= '0' && *p <= '7'; k++) {
            cp = cp * 8 + (uint32_t) (*p++ - '0');
        }

    } else if (*p == 'x' || *p == 'u' || *p == 'U') {
        k = *p == 'x' ? 2 : *p == 'u' ? 4 : 8;
        p++;

        for (cp = 0, i = 0; i < k; i++, p++) {
            if (p == end) {
                return NULL;
            }

            d = *p >= '0' && *p <= '9' ? *p - '0'
                : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
                : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10 : -1;

            if (d < 0) {
                return NULL;
            }

            cp = cp * 16 + (uint32_t) d;
        }

    } else if (*p == 'N') {
        return NULL;

    } else {
        slora_chat_put(o, "\\", 1);        /* unknown: kept */
        slora_chat_put(o, p, 1);
        return p + 1;
    }

    if (cp == 0 || cp == (unsigned char) SLORA_CHAT_TODAY || cp > 0x10ffff
        || (cp >= 0xd800 && cp <= 0xdfff))
    {
        return NULL;
    }

    if (cp < 0x80) {
        u[0] = (char) cp;
        k = 1;

    } else if (cp < 0x800) {
        u[0] = (char) (0xc0 | (cp >> 6));
        u[1] = (char) (0x80 | (cp & 0x3f));
        k = 2;

    } else if (cp < 0x10000) {
        u[0] = (char) (0xe0 | (cp >> 12));
        u[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char) (0x80 | (cp & 0x3f));
        k = 3;

    } else {
        u[0] = (char) (0xf0 | (cp >> 18));
        u[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char) (0x80 | (cp & 0x3f));
        k = 4;
    }

    slora_chat_put(o, u, (size_t) k);

    return p;
}


char *
slora_chat_system_text(const char *raw)
{
    char        *text, date[16], *d;
    size_t       n, k;
    time_t       now;
    struct tm    tm;
    const char  *p;

    if (raw == NULL || strchr(raw, SLORA_CHAT_TODAY) == NULL) {
        return NULL;
    }

    now = time(NULL);
    localtime_r(&now, &tm);
    k = strftime(date, sizeof(date), "%Y-%m-%d", &tm);

    n = 0;
    for (p = raw; *p != '\0'; p++) {
        n += *p == SLORA_CHAT_TODAY ? k : 1;
    }

    text = malloc(n + 1);
    if (text == NULL) {
        return NULL;
    }

    for (p = raw, d = text; *p != '\0'; p++) {
        if (*p == SLORA_CHAT_TODAY) {
            memcpy(d, date, k);
            d += k;

        } else {
            *d++ = *p;
        }
    }

    *d = '\0';

    return text;
}


static void
slora_chat_put(slora_chat_out_t *o, const char *s, size_t n)
{
    if (o->n < o->cap) {
        memcpy(o->buf + o->n, s, n <= o->cap - o->n ? n : o->cap - o->n);
    }

    o->n += n;
}


static void
slora_chat_puts(slora_chat_out_t *o, const char *s)
{
    slora_chat_put(o, s, strlen(s));
}


/* s[0..n), the request's text: written, and its span kept. */
static void
slora_chat_put_plain(slora_chat_out_t *o, const char *s, size_t n)
{
    slora_chat_span(o, o->n, n);
    slora_chat_put(o, s, n);
}


/* m's role: the request's, unless m was made (the default system
 * message's, the tools' message's). */
static void
slora_chat_put_role(slora_chat_out_t *o, const slora_chat_msg_t *m)
{
    if (m->made) {
        slora_chat_put(o, m->role, m->role_len);

    } else {
        slora_chat_put_plain(o, m->role, m->role_len);
    }
}


/* c[0..cl), all or part of m's content (less what a trim or a think
 * block took): the request's text, or where m is made, the template's
 * text but for m's plain spans within it. */
static void
slora_chat_put_content(slora_chat_out_t *o, const slora_chat_msg_t *m,
    const char *c, size_t cl)
{
    size_t               i, at, from, to, lo, hi;
    const slora_span_t  *sp;

    if (!m->made) {
        slora_chat_put_plain(o, c, cl);
        return;
    }

    at = o->n;
    from = (size_t) (c - m->content);
    to = from + cl;

    for (i = 0; i < m->n_plain; i++) {
        sp = &m->plain[i];
        lo = sp->off > from ? sp->off : from;
        hi = sp->off + sp->len < to ? sp->off + sp->len : to;

        if (lo < hi) {
            slora_chat_span(o, at + lo - from, hi - lo);
        }
    }

    slora_chat_put(o, c, cl);
}


/* The text's bytes [off, off + len) came from the request: one more
 * span, or the last one longer where it ends at off. Spans are counted
 * past plain->cap, as the text is past its buffer. */
static void
slora_chat_span(slora_chat_out_t *o, size_t off, size_t len)
{
    slora_chat_plain_t  *p;

    p = o->plain;

    if (p == NULL || len == 0) {
        return;
    }

    if (p->n > 0 && o->plain_end == off) {
        if (p->n <= p->cap) {
            p->span[p->n - 1].len += len;
        }

    } else {
        if (p->n < p->cap) {
            p->span[p->n].off = off;
            p->span[p->n].len = len;
        }

        p->n++;
    }

    o->plain_end = off + len;
}


/*
 * Python's str.isspace(), which str.strip() (Jinja's trim) strips, on
 * UTF-8: the whitespace character that s[0..n) begins with (head) or
 * ends with (tail), its length in bytes; 0: none. The set is Python's:
 * \t to \r, \x1c to \x1f, space, U+0085, U+00A0, U+1680, U+2000 to
 * U+200A, U+2028, U+2029, U+202F, U+205F and U+3000 (not U+180E, U+200B
 * or U+FEFF).
 */
static size_t
slora_chat_space_len(const unsigned char *p, size_t n)
{
    if (n == 1) {
        return p[0] == ' ' || (p[0] >= '\t' && p[0] <= '\r')
               || (p[0] >= 0x1c && p[0] <= 0x1f);
    }

    if (n == 2) {
        return p[0] == 0xc2 && (p[1] == 0x85 || p[1] == 0xa0) ? 2 : 0;
    }

    if (p[0] == 0xe1) {
        return p[1] == 0x9a && p[2] == 0x80 ? 3 : 0;
    }

    if (p[0] == 0xe2) {
        return (p[1] == 0x80 && (p[2] <= 0x8a || p[2] == 0xa8
                                 || p[2] == 0xa9 || p[2] == 0xaf))
               || (p[1] == 0x81 && p[2] == 0x9f)
               ? 3 : 0;
    }

    return p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80 ? 3 : 0;
}


static size_t
slora_chat_space_head(const char *s, size_t n)
{
    size_t  k;

    for (k = 1; k <= 3 && k <= n; k++) {
        if (slora_chat_space_len((const unsigned char *) s, k)) {
            return k;
        }
    }

    return 0;
}


static size_t
slora_chat_space_tail(const char *s, size_t n)
{
    size_t  k;

    for (k = 1; k <= 3 && k <= n; k++) {
        if (slora_chat_space_len((const unsigned char *) s + n - k, k)) {
            return k;
        }
    }

    return 0;
}


/* Python's str.strip(), which Jinja's trim is: Python's whitespace, ASCII
 * and Unicode's, off both ends. */
void
slora_chat_trim(const char **s, size_t *n)
{
    size_t  k;

    while ((k = slora_chat_space_head(*s, *n)) > 0) {
        *s += k;
        *n -= k;
    }

    slora_chat_trim_end(*s, n);
}


/* Python's str.rstrip(): the end of s[0..*n) alone. */
static void
slora_chat_trim_end(const char *s, size_t *n)
{
    size_t  k;

    while ((k = slora_chat_space_tail(s, *n)) > 0) {
        *n -= k;
    }
}


static int
slora_chat_role(const slora_chat_msg_t *m)
{
    if (m->role_len == 6 && memcmp(m->role, "system", 6) == 0) {
        return SLORA_ROLE_SYSTEM;
    }

    if (m->role_len == 4 && memcmp(m->role, "user", 4) == 0) {
        return SLORA_ROLE_USER;
    }

    if (m->role_len == 9 && memcmp(m->role, "assistant", 9) == 0) {
        return SLORA_ROLE_ASSISTANT;
    }

    if (m->role_len == 4 && memcmp(m->role, "tool", 4) == 0) {
        return SLORA_ROLE_TOOL;
    }

    if (m->role_len == 5 && memcmp(m->role, "tools", 5) == 0) {
        return SLORA_ROLE_TOOLS;
    }

    return -1;
}


/*
 * Llama 2 and Mistral: after one optional system message, user and
 * assistant alternate, user first (their templates raise otherwise);
 * Mistral's count no tool results, tools' block or calls among them.
 * Llama 2's and Mistral v7's (Mistral Small 3's) test is (role ==
 * "user") != (index even), so a later system message in an assistant's
 * place passes: Llama 2's template writes nothing for it, v7's writes it
 * where it is; a chat of v7's system message alone renders.
 */
static int
slora_chat_alternates(const slora_chat_msg_t *msgs, int n_msgs, int first,
    slora_chat_e tmpl, slora_err_t *err)
{
    int  i, k, role, want;

    if (first >= n_msgs && tmpl != SLORA_CHAT_MISTRAL_V7) {
        return slora_err_set(err, SLORA_ERROR, "chat template %s: no user "
                             "message", slora_chat_names[tmpl]);
    }

    for (i = first, k = 0; i < n_msgs; i++) {
        role = slora_chat_role(&msgs[i]);

        if (role == SLORA_ROLE_TOOL || role == SLORA_ROLE_TOOLS
            || msgs[i].calls)
        {
            continue;
        }

        want = k++ % 2 == 0 ? SLORA_ROLE_USER : SLORA_ROLE_ASSISTANT;

        if ((tmpl == SLORA_CHAT_MISTRAL_V7 || tmpl == SLORA_CHAT_LLAMA2)
            && role == SLORA_ROLE_SYSTEM && want == SLORA_ROLE_ASSISTANT)
        {
            continue;
        }

        if (role != want) {
            return slora_err_set(err, SLORA_ERROR, "chat template %s: "
                                 "message %d: after an optional system "
                                 "message, roles must alternate user, "
                                 "assistant, user, ...",
                                 slora_chat_names[tmpl], i);
        }
    }

    return SLORA_OK;
}


/* SLORA_CHAT_SYSTEM_FIRST (Ministral 3's template): after the first
 * message, no system message; an assistant's message has content or
 * calls (its template raises otherwise). */
static int
slora_chat_system_first(const slora_chat_msg_t *msgs, int n_msgs, int first,
    slora_chat_e tmpl, slora_err_t *err)
{
    int  i, role;

    for (i = first; i < n_msgs; i++) {
        role = slora_chat_role(&msgs[i]);

        if (role == SLORA_ROLE_SYSTEM) {
            return slora_err_set(err, SLORA_ERROR, "chat template %s: "
                                 "message %d: a system message is taken "
                                 "first only", slora_chat_names[tmpl], i);
        }

        if (role == SLORA_ROLE_ASSISTANT && msgs[i].content_len == 0
            && !msgs[i].calls)
        {
            return slora_err_set(err, SLORA_ERROR, "chat template %s: "
                                 "message %d: an assistant's message needs "
                                 "content or tool calls",
                                 slora_chat_names[tmpl], i);
        }
    }

    return SLORA_OK;
}


/*
 * Mistral's templates: v0.3's ("[INST] ", the reply " " + trimmed),
 * NeMo's (tekken: neither) and v7's ([SYSTEM_PROMPT] blocks). The
 * tools' block goes before each user message equal to the last one
 * (their "message == user_messages[-1]"), or with SLORA_CHAT_TOOLS_FIRST
 * right after the system prompt; the system text of v0.3 and NeMo goes
 * into the user message that is the chat's last (loop.last: none where
 * the chat ends otherwise). Results, calls and the tools' block are the
 * caller's text, written as it is.
 */
static void
slora_chat_mistral(slora_chat_out_t *o, slora_chat_e tmpl,
    const slora_chat_msg_t *msgs, int n_msgs, int first, int last,
    unsigned flags)
{
    int                      i, role, v7, tekken;
    size_t                   cl;
    const char              *c;
    const slora_chat_msg_t  *tools, *lastu, *sys;

    v7 = tmpl == SLORA_CHAT_MISTRAL_V7;
    tekken = tmpl == SLORA_CHAT_MISTRAL_TEKKEN;
    sys = first ? &msgs[0] : NULL;
    tools = NULL;
    lastu = NULL;

    for (i = 0; i < n_msgs; i++) {
        role = slora_chat_role(&msgs[i]);

        if (role == SLORA_ROLE_TOOLS) {
            tools = &msgs[i];

        } else if (role == SLORA_ROLE_USER) {
            lastu = &msgs[i];
        }
    }

    if (tools != NULL && v7 && (flags & SLORA_CHAT_TOOLS_FIRST)
        && sys == NULL)
    {
        slora_chat_put_content(o, tools, tools->content, tools->content_len);
    }

    /* v7 writes its system messages where they are; the others, the
     * first into the last user turn */
    for (i = v7 ? 0 : first; i < n_msgs; i++) {
        c = msgs[i].content;
        cl = msgs[i].content_len;
        role = slora_chat_role(&msgs[i]);

        switch (role) {

        case SLORA_ROLE_SYSTEM:
            slora_chat_puts(o, "[SYSTEM_PROMPT]");
            slora_chat_put_content(o, &msgs[i], c, cl);
            slora_chat_puts(o, "[/SYSTEM_PROMPT]");

            if (tools != NULL && i == 0 && (flags & SLORA_CHAT_TOOLS_FIRST)) {
                slora_chat_put_content(o, tools, tools->content,
                                       tools->content_len);
            }

            break;

        case SLORA_ROLE_USER:
            if (tools != NULL && !(flags & SLORA_CHAT_TOOLS_FIRST)
                && slora_chat_same(&msgs[i], lastu))
            {
                slora_chat_put_content(o, tools, tools->content,
                                       tools->content_len);
            }

            slora_chat_puts(o, v7 || tekken ? "[INST]" : "[INST] ");

            if (sys != NULL && !v7 && i == n_msgs - 1) {
                slora_chat_put_content(o, sys, sys->content,
                                       sys->content_len);
                slora_chat_puts(o, "\n\n");
            }

            slora_chat_put_content(o, &msgs[i], c, cl);
            slora_chat_puts(o, "[/INST]");
            break;

        case SLORA_ROLE_TOOL:
            slora_chat_put_content(o, &msgs[i], c, cl);
            break;

        case SLORA_ROLE_ASSISTANT:
            if (!v7 && !tekken && !msgs[i].calls) {
                slora_chat_trim(&c, &cl);
                slora_chat_puts(o, " ");
            }

            slora_chat_put_content(o, &msgs[i], c, cl);

            if (i != last) {
                slora_chat_puts(o, "</s>");
            }

            break;

        default:
            break;
        }
    }
}


/*
 * DeepSeek-R1's distills: the last system message's text first (its
 * template keeps the last one, wherever it was), then <｜User｜> + text,
 * <｜Assistant｜> + the reply's text after its last </think> (the
 * template drops earlier reasoning) + <｜end▁of▁sentence｜>; the
 * generation prompt <｜Assistant｜><think>\n opens the answer's think
 * block.
 */
static void
slora_chat_deepseek(slora_chat_out_t *o, const slora_chat_msg_t *msgs,
    int n_msgs, int last, unsigned flags)
{
    int                      i;
    size_t                   cl;
    const char              *c, *think;
    const slora_chat_msg_t  *sys;

    sys = NULL;

    for (i = 0; i < n_msgs; i++) {
        if (slora_chat_role(&msgs[i]) == SLORA_ROLE_SYSTEM) {
            sys = &msgs[i];
        }
    }

    if (sys != NULL) {
        slora_chat_put_content(o, sys, sys->content, sys->content_len);
    }

    for (i = 0; i < n_msgs; i++) {
        c = msgs[i].content;
        cl = msgs[i].content_len;

        switch (slora_chat_role(&msgs[i])) {

        case SLORA_ROLE_USER:
            slora_chat_puts(o, SLORA_R1_USER);
            slora_chat_put_content(o, &msgs[i], c, cl);
            break;

        case SLORA_ROLE_ASSISTANT:
            while ((think = memmem(c, cl, "</think>", 8)) != NULL) {
                cl -= (size_t) (think + 8 - c);
                c = think + 8;
            }

            slora_chat_puts(o, SLORA_R1_ASSISTANT);
            slora_chat_put_content(o, &msgs[i], c, cl);

            if (i != last) {
                slora_chat_puts(o, SLORA_R1_EOS);
            }

            break;

        default:
            break;
        }
    }

    if (flags & SLORA_CHAT_GEN_PROMPT) {
        slora_chat_puts(o, SLORA_R1_ASSISTANT "<think>\n");
    }
}


/* Two user messages equal, as Jinja's == finds their dicts (by role and
 * content; b may be NULL). */
static int
slora_chat_same(const slora_chat_msg_t *a, const slora_chat_msg_t *b)
{
    return b != NULL && a->content_len == b->content_len
           && memcmp(a->content, b->content, a->content_len) == 0;
}


static int
slora_chat_mistrals(slora_chat_e tmpl)
{
    return tmpl == SLORA_CHAT_MISTRAL || tmpl == SLORA_CHAT_MISTRAL_TEKKEN
           || tmpl == SLORA_CHAT_MISTRAL_V7;
}


int
slora_chat_render(slora_chat_e tmpl, const slora_chat_msg_t *msgs,
    int n_msgs, unsigned flags, char *buf, size_t cap, size_t *n,
    slora_chat_plain_t *plain, slora_err_t *err)
{
    int                i, role, first, open, last;
    size_t             cl, sl;
    const char        *c, *sys;
    slora_chat_out_t   o;

    *n = 0;

    if (plain != NULL) {
        plain->n = 0;
    }

    if ((unsigned) tmpl >= SLORA_CHAT_N) {
        return slora_err_set(err, SLORA_ERROR, "chat template %d unknown",
                             (int) tmpl);
    }

    if (n_msgs <= 0) {
        return slora_err_set(err, SLORA_ERROR, "chat template %s: no "
                             "messages", slora_chat_names[tmpl]);
    }

    for (i = 0; i < n_msgs; i++) {
        role = slora_chat_role(&msgs[i]);

        if (role < 0
            || (role == SLORA_ROLE_TOOL && tmpl != SLORA_CHAT_LLAMA31
                && tmpl != SLORA_CHAT_LLAMA32 && !slora_chat_mistrals(tmpl))
            || (role == SLORA_ROLE_TOOLS && !slora_chat_mistrals(tmpl)))
        {
            return slora_err_set(err, SLORA_ERROR, "chat template %s: "
                                 "message %d: role \"%.*s\" is not system, "
                                 "user or assistant",
                                 slora_chat_names[tmpl], i,
                                 (int) (msgs[i].role_len > 32
                                        ? 32 : msgs[i].role_len),
                                 msgs[i].role);
        }
    }

    open = (flags & SLORA_CHAT_CONTINUE) != 0;

    if (open && ((flags & SLORA_CHAT_GEN_PROMPT)
                 || slora_chat_role(&msgs[n_msgs - 1])
                    != SLORA_ROLE_ASSISTANT))
    {
        return slora_err_set(err, SLORA_ERROR, "chat template %s: only an "
                             "assistant's last message can be continued, "
                             "and without a generation prompt",
                             slora_chat_names[tmpl]);
    }

    /* the message whose end is not written: none, or the last */
    last = open ? n_msgs - 1 : n_msgs;

    o.buf = buf;
    o.cap = cap;
    o.n = 0;
    o.plain = plain;
    o.plain_end = 0;

    first = slora_chat_role(&msgs[0]) == SLORA_ROLE_SYSTEM;
    sys = first ? msgs[0].content : NULL;
    sl = first ? msgs[0].content_len : 0;

    switch (tmpl) {

    case SLORA_CHAT_CHATML:
        for (i = 0; i < n_msgs; i++) {
            slora_chat_puts(&o, "<|im_start|>");
            slora_chat_put_role(&o, &msgs[i]);
            slora_chat_puts(&o, "\n");
            slora_chat_put_content(&o, &msgs[i], msgs[i].content,
                                   msgs[i].content_len);

            if (i != last) {
                slora_chat_puts(&o, "<|im_end|>\n");
            }
        }

        if (flags & SLORA_CHAT_GEN_PROMPT) {
            slora_chat_puts(&o, "<|im_start|>assistant\n");

            if (flags & SLORA_CHAT_NO_THINK) {
                slora_chat_puts(&o, "<think>\n\n</think>\n\n");
            }
        }

        break;

    case SLORA_CHAT_LLAMA3:
        for (i = 0; i < n_msgs; i++) {
            c = msgs[i].content;
            cl = msgs[i].content_len;
            slora_chat_trim(&c, &cl);

            slora_chat_puts(&o, "<|start_header_id|>");
            slora_chat_put_role(&o, &msgs[i]);
            slora_chat_puts(&o, "<|end_header_id|>\n\n");
            slora_chat_put_content(&o, &msgs[i], c, cl);

            if (i != last) {
                slora_chat_puts(&o, "<|eot_id|>");
            }
        }

        if (flags & SLORA_CHAT_GEN_PROMPT) {
            slora_chat_puts(&o, "<|start_header_id|>assistant"
                                "<|end_header_id|>\n\n");
        }

        break;

    case SLORA_CHAT_LLAMA31:
    case SLORA_CHAT_LLAMA32:
        slora_chat_llama31(&o, tmpl, msgs, n_msgs, first, last, flags);
        break;

    case SLORA_CHAT_LLAMA2:
        if (slora_chat_alternates(msgs, n_msgs, first, tmpl, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        for (i = first; i < n_msgs; i++) {
            c = msgs[i].content;
            cl = msgs[i].content_len;
            role = slora_chat_role(&msgs[i]);

            if (role == SLORA_ROLE_SYSTEM) {
                continue;   /* in an assistant's place: not written */
            }

            if (role == SLORA_ROLE_USER) {
                slora_chat_puts(&o, i == first ? "[INST] " : "<s>[INST] ");

                if (i == first && sys != NULL) {
                    /* strip() sees "<<SYS>>..." + user: only the user
                     * text's end is stripped, and where that leaves
                     * none, the block's "\n\n" too */
                    slora_chat_trim_end(c, &cl);

                    slora_chat_puts(&o, "<<SYS>>\n");
                    slora_chat_put_content(&o, &msgs[0], sys, sl);
                    slora_chat_puts(&o, cl > 0 ? "\n<</SYS>>\n\n"
                                               : "\n<</SYS>>");

                } else {
                    slora_chat_trim(&c, &cl);
                }

                slora_chat_put_content(&o, &msgs[i], c, cl);
                slora_chat_puts(&o, " [/INST]");

            } else {
                slora_chat_trim(&c, &cl);
                slora_chat_puts(&o, " ");
                slora_chat_put_content(&o, &msgs[i], c, cl);

                if (i != last) {
                    slora_chat_puts(&o, " </s>");
                }
            }
        }

        break;

    case SLORA_CHAT_DEEPSEEK_R1:
        slora_chat_deepseek(&o, msgs, n_msgs, last, flags);
        break;

    case SLORA_CHAT_MISTRAL:
    case SLORA_CHAT_MISTRAL_TEKKEN:
    case SLORA_CHAT_MISTRAL_V7:
        if ((!(flags & SLORA_CHAT_ANY_ORDER)
             && slora_chat_alternates(msgs, n_msgs, first, tmpl, err)
                != SLORA_OK)
            || ((flags & SLORA_CHAT_SYSTEM_FIRST)
                && slora_chat_system_first(msgs, n_msgs, first, tmpl, err)
                   != SLORA_OK))
        {
            return SLORA_ERROR;
        }

        slora_chat_mistral(&o, tmpl, msgs, n_msgs, first, last, flags);
        break;

    default:
        break;
    }

    *n = o.n;

    if (o.n >= cap) {
        return slora_err_set(err, SLORA_BUSY, "chat template %s: %zu bytes "
                             "and a NUL do not fit in %zu",
                             slora_chat_names[tmpl], o.n, cap);
    }

    buf[o.n] = '\0';

    if (plain != NULL && plain->n > plain->cap) {
        return slora_err_set(err, SLORA_BUSY, "chat template %s: %zu spans "
                             "of the request's text do not fit in %zu",
                             slora_chat_names[tmpl], plain->n, plain->cap);
    }

    return SLORA_OK;
}
