/*
 * slora_tokenizer.h: text to token ids and back, and the chat templates
 * that turn a conversation into the prompt text a model was tuned on.
 *
 * Two algorithms cover the Llama family: byte-level BPE (GPT-2, Llama 3,
 * SmolLM2, Qwen2: text is split by a pre-tokenizer regex, bytes are mapped
 * to printable code points, pairs merge by rank) and SentencePiece BPE
 * (Llama 2, TinyLlama: spaces become U+2581, pairs merge by score, unknown
 * bytes fall back to <0xNN>). The vocabulary comes from a GGUF file's
 * tokenizer.* metadata or from an HF tokenizer.json.
 *
 * The one idea: a loaded tokenizer is immutable and may be shared by any
 * number of threads; per-stream state (the detokenizer) lives with the
 * caller.
 */

#ifndef SLORA_TOKENIZER_H
#define SLORA_TOKENIZER_H


#include "slora_core.h"


typedef struct slora_tokenizer_s  slora_tokenizer_t;


/* Bytes [off, off + len) of a text. */
typedef struct {
    size_t       off;
    size_t       len;
} slora_span_t;


/*
 * path: a GGUF file (tokenizer.* metadata; vocab-only GGUFs too), a
 * tokenizer.json, or an HF folder holding tokenizer.json (and
 * tokenizer_config.json for bos/eos/chat template).
 */
slora_tokenizer_t *slora_tokenizer_load(const char *path, slora_err_t *err);
void slora_tokenizer_free(slora_tokenizer_t *t);

int32_t slora_tokenizer_n_vocab(const slora_tokenizer_t *t);
/* The longest token's text in bytes: no token covers more of an input
 * (a byte-level BPE token's text maps each byte to one or two, an SPM
 * one's space to three), so a text of more than n times it is more than
 * n tokens. */
size_t slora_tokenizer_max_token_len(const slora_tokenizer_t *t);
int32_t slora_tokenizer_bos(const slora_tokenizer_t *t);      /* -1: none */
int32_t slora_tokenizer_eos(const slora_tokenizer_t *t);      /* -1: none */

/* Ids that end a generation (eos, eot, <|im_end|>, <|eot_id|>, ...),
 * deduplicated. Writes at most cap ids; returns the count found. */
int32_t slora_tokenizer_stop_ids(const slora_tokenizer_t *t, int32_t *ids,
    int32_t cap);

/* 1 when the model wants BOS in front of a prompt. */
int slora_tokenizer_add_bos(const slora_tokenizer_t *t);

/* Id of a token given by its exact text ("<|im_end|>"), -1 if absent. */
int32_t slora_tokenizer_find(const slora_tokenizer_t *t, const char *text,
    size_t len);

/* The model's fill-in-the-middle marks, fim[0..3): the prefix's, the
 * suffix's and the middle's, for a prompt laid out PRE prompt SUF suffix
 * MID whose answer is the middle. SLORA_ERROR where it has none. */
int slora_tokenizer_fim(const slora_tokenizer_t *t, int32_t fim[3]);

/* 1 for control tokens (bos, eos, <|im_start|>, ...). */
int slora_tokenizer_is_special(const slora_tokenizer_t *t, int32_t id);

/*
 * Encodes text[0..len). add_special: the BOS first where the tokenizer
 * adds one to a text (0 or 1; a rendered chat's is
 * slora_tokenizer_encode_chat's). parse_special: text like "<|im_start|>"
 * becomes its special id. Writes at most cap ids; *n gets the count
 * needed (SLORA_BUSY if > cap). Invalid UTF-8 in text gives SLORA_ERROR
 * with a message naming the offset.
 */
int slora_tokenizer_encode(const slora_tokenizer_t *t, const char *text,
    size_t len, int add_special, int parse_special, int32_t *ids,
    int32_t cap, int32_t *n, slora_err_t *err);

/*
 * As slora_tokenizer_encode, but counting stops past limit (taken as cap
 * where below it): a text of more than limit tokens gives SLORA_BUSY and
 * *n = limit + 1, and costs the merges of about limit tokens, not of the
 * whole text (the pre-tokenizer still splits the fragment it stops in).
 * For a caller that wants the ids only if they fit: a server's worker
 * given a megabyte of text for a context of a few thousand tokens.
 */
int slora_tokenizer_encode_upto(const slora_tokenizer_t *t, const char *text,
    size_t len, int add_special, int parse_special, int32_t *ids,
    int32_t cap, int32_t limit, int32_t *n, slora_err_t *err);

/* slora_tokenizer_encode_chat's BOS, a set: the template's, which the
 * renderer leaves out (the caller knows whether the template writes one
 * first: slora_tokenizer_chat_bos for the model's own, slora_chat_bos
 * for a format named in its place), put first whatever the tokenizer
 * adds to a text; and the tokenizer's before it where it adds one
 * (vLLM's add_special_tokens on a chat). */
#define SLORA_TOK_BOS_TEMPLATE   1
#define SLORA_TOK_BOS_TOKENIZER  2

/*
 * As slora_tokenizer_encode_upto with parse_special, for a rendered
 * chat, with the BOS bos asks for (SLORA_TOK_BOS_*). A special token's
 * text is its id except where it overlaps one
 * of plain[0..n_plain), the text that came from the request (sorted,
 * none overlapping another: slora_chat_render's), where its bytes are
 * text as with parse_special = 0 (user-defined tokens are still cut
 * there, as parse_special = 0 cuts them). The pre-tokenizer splits the
 * text as one, across the spans' ends: a text whose plain spans hold no
 * special token's text gives the ids that parse_special = 1 gives.
 */
int slora_tokenizer_encode_chat(const slora_tokenizer_t *t, const char *text,
    size_t len, int bos, const slora_span_t *plain, size_t n_plain,
    int32_t *ids, int32_t cap, int32_t limit, int32_t *n, slora_err_t *err);

/* Raw bytes of one token (byte-level BPE decoded, SPM U+2581 -> space,
 * <0xNN> -> byte). *n gets the length needed; SLORA_BUSY if > cap,
 * SLORA_ERROR for an id out of range. */
int slora_tokenizer_token_bytes(const slora_tokenizer_t *t, int32_t id,
    char *buf, size_t cap, size_t *n);

/* One token's entry in the vocabulary as the model file spells it
 * ("\xc4\xa0world" for byte-level BPE's " world", "\xe2\x96\x81Hello"
 * and "<0x0A>" for SentencePiece's; a control token's text), *len bytes,
 * not NUL-terminated: HF's convert_ids_to_tokens. NULL for an id out of
 * range. */
const char *slora_tokenizer_token_text(const slora_tokenizer_t *t,
    int32_t id, size_t *len);


/*
 * Streaming detokenizer: holds back an incomplete UTF-8 sequence across
 * tokens and never emits a split character.
 */
typedef struct {
    uint8_t    pending[8];
    uint32_t   n_pending;
    int32_t    n_tokens;
    unsigned   lead:1;      /* the next token with text loses a leading
                               space (slora_detok_init_text) */
} slora_detok_t;

void slora_detok_init(slora_detok_t *d);

/* As slora_detok_init, for ids that are a text the tokenizer encoded (a
 * prompt echoed, ids detokenized): where the vocabulary puts a space
 * before a text (SentencePiece's add_space_prefix: "Paris" is
 * "\u2581Paris"), the first token with text is shown without it, so
 * the text comes back as it was, as HF's decode gives it. */
void slora_detok_init_text(slora_detok_t *d, const slora_tokenizer_t *t);

/* Appends the complete UTF-8 produced by id into out (cap bytes), *n =
 * bytes written; skip_special: control tokens yield nothing. SLORA_BUSY
 * (nothing consumed) when cap < 3 * (token length + 8), SLORA_ERROR for a
 * bad id. Each maximal invalid byte sequence becomes one U+FFFD. */
int slora_detok_push(slora_detok_t *d, const slora_tokenizer_t *t,
    int32_t id, int skip_special, char *out, size_t cap, size_t *n);

/* Flushes what is left (invalid leftovers become U+FFFD). */
int slora_detok_flush(slora_detok_t *d, char *out, size_t cap, size_t *n);


/* Chat templates */

typedef enum {
    SLORA_CHAT_CHATML = 0,
    SLORA_CHAT_LLAMA2,
    SLORA_CHAT_LLAMA3,
    SLORA_CHAT_MISTRAL,
    SLORA_CHAT_LLAMA31,     /* Llama 3.1 and 3.3: a system header always,
                               with the knowledge and a fixed date; tools
                               as JSON in the first user message, calls
                               as {"name", "parameters"} */
    SLORA_CHAT_LLAMA32,     /* Llama 3.2: the same, today's date */
    SLORA_CHAT_MISTRAL_TEKKEN,  /* Mistral NeMo: mistral's turns without
                                   the spaces */
    SLORA_CHAT_MISTRAL_V7,  /* Mistral Small 3, Devstral, Ministral 3:
                               [SYSTEM_PROMPT] blocks, [INST] turns */
    SLORA_CHAT_DEEPSEEK_R1, /* DeepSeek-R1's distills (on Llama and Qwen
                               2.5): the system text, then <｜User｜> and
                               <｜Assistant｜> turns, the answer opened
                               with <think> */
    SLORA_CHAT_N
} slora_chat_e;


typedef struct {
    const char          *role;
    size_t               role_len;
    const char          *content;
    size_t               content_len;
    unsigned             verbatim;  /* the content as it is, where the
                                       template writes it untrimmed: a
                                       call, the tools' block before the
                                       first user text (llama3.1,
                                       llama3.2) */
    unsigned             calls;     /* an assistant's tool calls, written
                                       by the caller in the template's
                                       format (Mistral's templates count
                                       no such message in the turns'
                                       alternation) */
    unsigned             made;      /* the content made by the caller
                                       in the template's format (tools,
                                       calls and results with their
                                       marks; the template's default
                                       system message): a special token's
                                       text in it is that token, but in
                                       plain's spans; its role, a word
                                       the renderer checks, the
                                       template's too. 0: role and
                                       content are the request's text */
    const slora_span_t  *plain;     /* made: [n_plain] the parts of the
                                       content that came from the
                                       request, in order */
    size_t               n_plain;
    size_t               lead;      /* the content's first bytes that are
                                       a think block written back before
                                       the message's own text (Qwen3's
                                       template: SLORA_CHAT_THINK_TURNS) */
} slora_chat_msg_t;


/* Where a rendered chat's text came from the request (slora_chat_render):
 * span[0..n) of cap, in order, none touching the next. */
typedef struct {
    slora_span_t  *span;
    size_t         cap;
    size_t         n;
} slora_chat_plain_t;


/* "chatml", "llama2", "llama3", "mistral", "llama3.1", "llama3.2" ->
 * SLORA_OK; else SLORA_DECLINED */
int slora_chat_from_name(const char *name, slora_chat_e *out);
const char *slora_chat_name(slora_chat_e tmpl);

/* Guessed from tokenizer.chat_template metadata, tokenizer_config.json,
 * or the vocabulary; ChatML when nothing says otherwise. */
slora_chat_e slora_tokenizer_chat_template(const slora_tokenizer_t *t);

/* The system message the model's template writes when a chat has none
 * (SmolLM2's "You are a helpful AI assistant named SmolLM, ...", Qwen2.5's
 * "You are Qwen, ..."), or NULL. */
const char *slora_tokenizer_chat_system(const slora_tokenizer_t *t);

/* 1 where the model's template reads enable_thinking (Qwen3's: false
 * writes an empty think block after the assistant's header). */
int slora_tokenizer_chat_think(const slora_tokenizer_t *t);

/* 1 where the model's template writes the BOS first (its text names
 * bos_token: Llama's, Mistral's; not Qwen's or SmolLM2's ChatML, whatever
 * the tokenizer adds to a text); without a template, where the tokenizer
 * adds one. */
int slora_tokenizer_chat_bos(const slora_tokenizer_t *t);

/* Of a mistral-v7-tekken template: 1 where it writes call ids
 * ([CALL_ID], [TOOL_CONTENT]: Mistral Small 3.2's) and its tools before
 * the last user message, 0 where it writes neither and its tools after
 * the system prompt (Devstral's, Ministral 3's). */
int slora_tokenizer_chat_call_ids(const slora_tokenizer_t *t);

/* The model's template's slora_chat_template_flags (0 without one). */
unsigned slora_tokenizer_chat_flags(const slora_tokenizer_t *t);

/* One user message as a chat prompt in template tmpl (the generation
 * prompt after it; the model's default system message before it when
 * tmpl is the model's own), a malloc()ed NUL-terminated text of *n
 * bytes; NULL with err set. plain (or NULL) gets the spans of the
 * message's text and role, plain->span malloc()ed (free it), to encode
 * the prompt with (slora_tokenizer_encode_chat). The slora tool's
 * --chat. */
char *slora_chat_user_prompt(const slora_tokenizer_t *t, slora_chat_e tmpl,
    const char *text, size_t len, size_t *n, slora_chat_plain_t *plain,
    slora_err_t *err);

/* Jinja's trim (Python's str.strip()) of s[0..*n), UTF-8: Python's
 * whitespace (str.isspace(): ASCII's and Unicode's, such as U+00A0 and
 * U+3000) off both ends. */
void slora_chat_trim(const char **s, size_t *n);

/* Guesses a template from a Jinja template's text. */
/* 1 where the format's templates write the BOS first (all but ChatML's):
 * a chat rendered in a format named in place of the model's own. */
int slora_chat_bos(slora_chat_e tmpl);

slora_chat_e slora_chat_detect(const char *jinja, size_t len);

/* The render flags a template's own text asks for: of a ChatML
 * template, SLORA_CHAT_THINK_TURNS where it keeps an assistant's
 * reasoning past the last user query only (Qwen3's); of a
 * mistral-v7-tekken template, SLORA_CHAT_ANY_ORDER
 * where it takes its messages in any order (Devstral's: it raises on
 * none, where Small 3.2's and Ministral 3's raise "conversation roles
 * must alternate"); SLORA_CHAT_SYSTEM_FIRST where it takes a system
 * message first alone and an assistant's message only with content or
 * calls (Ministral 3's: "Only user, assistant and tool roles are
 * supported" past the first). */
unsigned slora_chat_template_flags(slora_chat_e tmpl, const char *jinja,
    size_t len);

/* A template's default system message, a malloc()ed copy or NULL:
 * ChatML's, the literal text of a system turn the template writes
 * itself ('<|im_start|>system\n' TEXT '<|im_end|>', the line break a
 * real one or Jinja's escape), TEXT plain (no quote, brace or escape);
 * Mistral v7's, its default_system_message (string literals joined by
 * +, and today's date where the template writes it: SLORA_CHAT_TODAY
 * in the copy). */
char *slora_chat_default_system(slora_chat_e tmpl, const char *jinja,
    size_t len);

/* Where a default system message holds today's date. */
#define SLORA_CHAT_TODAY  '\x01'

/* The default system message as a chat sends it: NULL where raw holds
 * no date (raw is the text), else a malloc()ed copy with today's
 * (local time, %Y-%m-%d, as strftime_now writes it). */
char *slora_chat_system_text(const char *raw);

/* slora_chat_render's flags: the assistant's header after the messages
 * (the Jinja templates' add_generation_prompt); the last message, an
 * assistant's, left open for the model to continue (transformers'
 * continue_final_message: the text ends where its content does). */
#define SLORA_CHAT_GEN_PROMPT  0x01
#define SLORA_CHAT_CONTINUE    0x02
/* the request has tools: llama3.1's system header says "Environment:
 * ipython" */
#define SLORA_CHAT_TOOLS       0x04
/* chatml: after the assistant's header an empty think block, as Qwen3's
 * template writes it with enable_thinking false */
#define SLORA_CHAT_NO_THINK    0x08
/* mistral-v7-tekken: the tools' message right after the system prompt
 * (Devstral's and Ministral 3's templates), not before the last user
 * message (Small 3.2's, and the older Mistral templates') */
#define SLORA_CHAT_TOOLS_FIRST 0x10
/* mistral-v7-tekken: the messages in any order, not held to turns
 * (Devstral's template, slora_chat_template_flags) */
#define SLORA_CHAT_ANY_ORDER   0x20
/* mistral-v7-tekken: a system message first alone, an assistant's
 * message with content or calls (Ministral 3's template) */
#define SLORA_CHAT_SYSTEM_FIRST 0x40
/* chatml: an assistant's think block kept past the last user query only
 * (Qwen3's template; the request's reader rewrites its content, the
 * renderer takes it as it is: slora_openai_think.c) */
#define SLORA_CHAT_THINK_TURNS  0x80

/*
 * Renders messages (and, as flags say, the assistant prompt, or the last
 * message left open) into buf, as text holding special-token strings:
 * what the model's official Jinja template gives, less the leading BOS,
 * which encode adds where the template writes one (encode the text with
 * slora_tokenizer_encode_chat, add_special = 1, and the plain spans
 * below), and a NUL after it. *n = the text's bytes, not
 * counting the NUL; SLORA_BUSY when *n + 1 > cap (buf may be NULL with
 * cap 0 to ask for the size). Roles: system, user, assistant, and for
 * llama3.1 and llama3.2 tool (a tool's result: an ipython turn, the
 * content a JSON string, as their templates write it); for Mistral's
 * templates tool (a result the caller wrote in the template's format,
 * written as it is) and tools (the tools' block, written as it is where
 * the template puts it: before each user message equal to the last
 * one, or with SLORA_CHAT_TOOLS_FIRST after the system prompt); others
 * give
 * SLORA_ERROR, as does SLORA_CHAT_CONTINUE with the last message not an
 * assistant's, or with SLORA_CHAT_GEN_PROMPT. llama3.2's date is today's
 * (local time), as transformers' strftime_now gives it.
 *
 * plain (or NULL) gets the spans of the text that came from the request:
 * the messages' roles and content, of a made message the parts it lists;
 * at most plain->cap of them, plain->n the count (SLORA_BUSY when above
 * plain->cap, as for the text). The rest is the template's own: its
 * marks, its default system message, a made message's marks. A client's
 * text is text, whatever special token's text it holds: encode the text
 * with slora_tokenizer_encode_chat and these spans.
 */
int slora_chat_render(slora_chat_e tmpl, const slora_chat_msg_t *msgs,
    int n_msgs, unsigned flags, char *buf, size_t cap, size_t *n,
    slora_chat_plain_t *plain, slora_err_t *err);


/* Length of the valid UTF-8 sequence at s (1..4), 0 if invalid or cut. */
size_t slora_utf8_valid(const uint8_t *s, size_t n);


#endif /* SLORA_TOKENIZER_H */
