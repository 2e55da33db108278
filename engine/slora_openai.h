/*
 * slora_openai.h: the OpenAI request parser: a chat or text completion
 * body (JSON), or the GET stream endpoint's query arguments, checked and
 * turned into the fields a worker needs to render, tokenize and submit.
 *
 * The one idea: everything a client can get wrong about the shape of a
 * request is decided here, without nginx, so it can be unit-tested and
 * fuzzed; the error carries what the HTTP answer needs (status, OpenAI
 * type, code, param, message) and the caller only frames it. What needs
 * the model or the shared zone (unknown model, prompt too long,
 * max_tokens above the server's cap) is the caller's to check.
 *
 * Memory: every string and array a parsed request points to lives in a
 * small arena owned by the request; slora_openai_req_free() releases it,
 * after a failed parse as well. Strings are NUL-terminated.
 */

#ifndef SLORA_OPENAI_H
#define SLORA_OPENAI_H


#include "slora_core.h"
#include "slora_json.h"
#include "slora_tokenizer.h"
#include "slora_utf8.h"


#define SLORA_OPENAI_MAX_STOPS  4
#define SLORA_OPENAI_MAX_STOP_IDS  16   /* stop_token_ids a request names */
#define SLORA_OPENAI_MAX_N      16      /* choices a request may ask for:
                                           n times its prompts */
#define SLORA_OPENAI_MAX_BIAS   300     /* tokens logit_bias may name */
#define SLORA_OPENAI_MAX_ALLOWED 300    /* and allowed_token_ids */
#define SLORA_OPENAI_MAX_BAD    16      /* bad_words a request may name, */
#define SLORA_OPENAI_BAD_LEN    256     /* each of these bytes at most */
#define SLORA_OPENAI_MSG_LEN    256


typedef enum {
    SLORA_OPENAI_CHAT = 0,
    SLORA_OPENAI_COMPLETION
} slora_openai_kind_e;


typedef struct {
    const char           *data;
    size_t                len;
} slora_openai_str_t;


#define SLORA_OPENAI_CALLS_MAX  16      /* tool calls an answer may make */


/* How tools, the model's calls and their results are written into the
 * chat: the format the chat template's model was tuned on. */
typedef enum {
    SLORA_OPENAI_TOOLFMT_HERMES = 0,    /* the tools in <tools> tags in the
                                           system message, calls in
                                           <tool_call> tags, results in
                                           <tool_response> tags */
    SLORA_OPENAI_TOOLFMT_LLAMA3,        /* Llama 3.1's: the tools before
                                           the first user text, a call the
                                           whole answer {"name",
                                           "parameters"}, one a message,
                                           results ipython turns */
    SLORA_OPENAI_TOOLFMT_MISTRAL_LIST,  /* Mistral 7B v0.3's and NeMo's:
                                           [AVAILABLE_TOOLS] before the
                                           last user message, calls a JSON
                                           list after [TOOL_CALLS], each
                                           with its id; results
                                           [TOOL_RESULTS]{"content",
                                           "call_id"} */
    SLORA_OPENAI_TOOLFMT_MISTRAL_IDS,   /* Small 3.2's: calls
                                           [TOOL_CALLS]name[CALL_ID]id
                                           [ARGS]{...}, results
                                           [TOOL_RESULTS]id[TOOL_CONTENT]
                                           ... */
    SLORA_OPENAI_TOOLFMT_MISTRAL_ARGS   /* Devstral's and Ministral 3's:
                                           the tools after the system
                                           prompt, calls [TOOL_CALLS]name
                                           [ARGS]{...} after the text,
                                           results without ids */
} slora_openai_toolfmt_e;


/* What a chat's answer may or must be, with tools. */
typedef enum {
    SLORA_OPENAI_TOOLS_OFF = 0,     /* text: no tools, or tool_choice
                                       "none" (the tools still told of
                                       in the prompt) */
    SLORA_OPENAI_TOOLS_AUTO,        /* text, or calls the model writes in
                                       <tool_call> tags */
    SLORA_OPENAI_TOOLS_REQUIRED,    /* one or more calls of the tools, a
                                       JSON array (schema); one bare call
                                       with tool_one */
    SLORA_OPENAI_TOOLS_NAMED        /* a call of tool_name (schema) */
} slora_openai_tools_e;


typedef struct {
    uint32_t              max_stops;        /* 0..SLORA_OPENAI_MAX_STOPS */
    int32_t               max_tokens;       /* upper bound of the field */
    int32_t               max_top_logprobs; /* of top_logprobs (chat) and
                                               logprobs (completions) */
    int                   model_optional;   /* a missing or null model
                                               reads as "default" */
    slora_chat_e          chat;             /* the template the chat is
                                               rendered with: tools are
                                               written in its model's
                                               format */
    const char           *system;           /* that template's default
                                               system message, which a
                                               chat without one begins
                                               with (as the template
                                               writes it); NULL: none */
    int                   think;            /* that template reads
                                               chat_template_kwargs'
                                               enable_thinking */
    int                   call_ids;         /* a mistral-v7-tekken
                                               template writes call ids
                                               (slora_tokenizer_chat_call_ids;
                                               1 for one named in the
                                               configuration) */
    unsigned              chat_flags;       /* the render flags that
                                               template's text asks for
                                               (slora_chat_template_flags;
                                               0 for one named in the
                                               configuration) */
    int                   compile_later;    /* a schema (or regex,
                                               grammar, choice, tag) is
                                               not compiled by the parse:
                                               req->schema_uncompiled
                                               says one was passed over,
                                               for a parse that compiles
                                               it off the caller's loop
                                               (nginx's thread pool) */
    int                 (*schema_known)(void *data, int form,
                            const char *text, size_t len);
                                            /* NULL, or 1 where the
                                               constraint is known to
                                               compile (the engine keeps
                                               it compiled): the parse
                                               takes it as it is, no
                                               compile, now or later */
    void                 *schema_known_data;
} slora_openai_limits_t;


typedef struct slora_openai_block_s  slora_openai_block_t;


/* A completion's prompt: text, or token ids as the client gave them. */
typedef struct {
    slora_openai_str_t    text;             /* data NULL: ids */
    const int32_t        *ids;              /* [n_ids], each >= 0 */
    uint32_t              n_ids;
} slora_openai_prompt_t;


typedef struct {
    slora_openai_kind_e   kind;
    slora_openai_str_t    model;
    slora_openai_str_t    chat_echo;        /* chat: vLLM's echo, the text
                                               the answer's content begins
                                               with (the last message's,
                                               where its role is the
                                               answer's); data NULL: none */
    slora_openai_str_t    suffix;           /* completion: the text after
                                               the answer, which fills the
                                               middle (slora_tokenizer_fim's
                                               marks); data NULL: none */
    slora_openai_prompt_t prompts[SLORA_OPENAI_MAX_N]; /* completion:
                                               [n_prompts], each with n
                                               choices, in order */
    uint32_t              n_prompts;
    slora_chat_msg_t     *msgs;             /* chat: [n_msgs] */
    uint32_t              n_msgs;
    int64_t               max_tokens;       /* -1: not given; 0: only a
                                               completion with echo */
    const char           *max_name;         /* the field max_tokens came
                                               from: "max_tokens" or
                                               "max_completion_tokens",
                                               for errors about it */
    int64_t               min_tokens;       /* vLLM's, 0: none */
    double                temperature;      /* default 1 */
    double                top_p;            /* default 1 */
    double                min_p;            /* vLLM's, 0..1, 0: off */
    int32_t               top_k;            /* 0: off */
    double                frequency_penalty; /* -2..2, 0: off */
    double                presence_penalty; /* -2..2, 0: off */
    double                repetition_penalty; /* vLLM's, > 0, 1: off */
    uint64_t              seed;
    uint32_t              n;                /* choices a prompt, 1..MAX_N:
                                               with best_of, the
                                               candidates generated */
    uint32_t              n_best;           /* best_of above n: the
                                               choices returned a prompt
                                               (the request's n), the
                                               likeliest of the n
                                               candidates; 0: all */
    uint32_t              n_logit_bias;     /* distinct token ids */
    int32_t               logit_bias_ids[SLORA_OPENAI_MAX_BIAS];
    float                 logit_bias[SLORA_OPENAI_MAX_BIAS]; /* -100..100 */
    uint64_t              cache_salt[2];    /* vLLM's cache_salt: the
                                               first 128 bits of its
                                               SHA-256 (slora_engine.h's);
                                               {0, 0}: none */
    int32_t               keep_last;        /* vLLM's
                                               truncate_prompt_tokens: the
                                               prompt's last this many
                                               tokens, -1 the context's
                                               worth; 0: all of it */
    slora_openai_str_t    bad_words[SLORA_OPENAI_MAX_BAD]; /* vLLM's:
                                               never drawn as the tokens
                                               the server makes of them */
    uint32_t              n_bad_words;
    uint32_t              n_allowed;        /* vLLM's allowed_token_ids:
                                               only these are drawn; 0:
                                               any */
    int32_t               allowed_ids[SLORA_OPENAI_MAX_ALLOWED];
    slora_openai_str_t    stop[SLORA_OPENAI_MAX_STOPS];
    int32_t               stop_ids[SLORA_OPENAI_MAX_STOP_IDS]; /* vLLM's
                                               stop_token_ids */
    uint32_t              n_stop_ids;
    uint32_t              n_stop;           /* non-empty stop strings */
    unsigned              has_seed:1;
    unsigned              stream:1;
    unsigned              include_usage:1;
    unsigned              continuous_usage:1; /* vLLM's
                                               continuous_usage_stats
                                               (with include_usage): the
                                               counts so far in every
                                               chunk */
    unsigned              ignore_eos:1;     /* EOS ids do not stop it */
    unsigned              stop_in_output:1; /* vLLM's
                                               include_stop_str_in_output:
                                               a matched stop string ends
                                               the text, not cut off */
    unsigned              show_special:1;   /* vLLM's skip_special_tokens
                                               false: control tokens
                                               shown as their text */
    unsigned              no_special:1;     /* completion: vLLM's
                                               add_special_tokens false,
                                               a text prompt encoded
                                               without the BOS the model
                                               wants */
    unsigned              add_special:1;    /* chat: vLLM's
                                               add_special_tokens true,
                                               the tokenizer's BOS put
                                               before the template's */
    unsigned              token_strs:1;     /* tokenize: vLLM's
                                               return_token_strs, each
                                               token's vocabulary entry
                                               beside its id */
    unsigned              logprobs:1;       /* each token's log-probability */
    unsigned              tokens_as_ids:1;  /* vLLM's
                                               return_tokens_as_token_ids:
                                               logprobs name each token
                                               "token_id:N" */
    unsigned              return_ids:1;     /* vLLM's return_token_ids:
                                               the prompt's and the
                                               answer's token ids */
    unsigned              prompt_logprobs:1;    /* vLLM's: each prompt
                                               token's log-probability,
                                               rank and prompt_top
                                               alternatives, in the
                                               answer (not streamed) */
    unsigned              json:1;           /* response_format json_object:
                                               JSON mode */
    slora_openai_str_t    schema;           /* response_format json_schema:
                                               the schema's compact text,
                                               checked to compile
                                               (slora_json.h); data NULL:
                                               none */
    unsigned              json_compact:1;   /* JSON mode's or the schema's
                                               JSON with no blank between
                                               tokens (vLLM's
                                               disable_any_whitespace) */
    unsigned              compile_later:1;  /* the limits', */
    int                 (*schema_known)(void *data, int form,
                            const char *text, size_t len);
    void                 *schema_known_data; /* and these two */
    unsigned              schema_was_known:1; /* schema not compiled:
                                               schema_known said it
                                               compiles */
    unsigned              schema_uncompiled:1; /* schema's size checked,
                                               its compile passed over
                                               (compile_later) */
    unsigned              schema_form:3;    /* slora_json_form_e: schema
                                               is a JSON schema, or vLLM's
                                               guided_choice (a JSON array
                                               of the texts the answer is
                                               one of), guided_regex,
                                               guided_grammar or
                                               structural_tag */
    unsigned              tags_triggered:1; /* that structural tag's tags
                                               come after its triggers, in
                                               free text (else the answer
                                               is one tag) */
    slora_openai_str_t    schema_trigger;   /* the schema holds only after
                                               the answer's text ends with
                                               this (tools, "auto":
                                               "<tool_call>"); data NULL:
                                               throughout */
    unsigned              trigger_ends:1;   /* the value whole ends the
                                               answer (Mistral's list of
                                               calls: its end of text
                                               follows) */
    unsigned              trigger_lead:1;   /* the trigger is the value's
                                               own first bytes, and only
                                               the answer's (Llama 3.1's
                                               call: '{"name":') */
    unsigned              echo:1;           /* completion: the prompt
                                               before the completion, and
                                               among the logprobs */
    unsigned              tool_one:1;       /* parallel_tool_calls false:
                                               at most one call */
    unsigned              chat_flags;       /* chat: slora_chat_render's
                                               flags (add_generation_prompt,
                                               continue_final_message) */
    slora_openai_tools_e  tools;            /* chat: tools, told to the
                                               model in its format; a call
                                               that must come is schema */
    slora_openai_toolfmt_e tool_format;     /* chat: that format */
    char                 *tool_run;         /* Hermes: the buffer a run of
                                               tool results is joined in,
                                               tool_run_cap bytes */
    size_t                tool_run_cap;
    slora_span_t         *tool_run_plain;   /* and its results' spans,
                                               tool_run_plain_cap of
                                               them */
    size_t                tool_run_plain_cap;
    unsigned              tool_spaced:1;    /* Mistral 7B v0.3's list: a
                                               space after each opening
                                               mark */
    slora_openai_str_t    tool_name;        /* TOOLS_NAMED: the function */
    int32_t               top_logprobs;     /* and this many alternatives */
    int32_t               prompt_top;       /* with prompt_logprobs */
    unsigned              responses:1;      /* a Responses API request,
                                               as the chat it means */
    slora_openai_str_t    resp_echo;        /* responses: the fields the
                                               response object echoes,
                                               compact JSON members */
    slora_openai_str_t    resp_conv;        /* responses: this input's
                                               messages (not the previous
                                               response's, which the store
                                               keeps, nor the
                                               instructions), a JSON array
                                               of chat messages */
    slora_openai_str_t    resp_prev;        /* previous_response_id, or
                                               data NULL */
    slora_openai_str_t    resp_conversation; /* conversation's id, or
                                               data NULL */
    unsigned              resp_store:1;     /* store: not false */
    unsigned              resp_background:1; /* background: true (a
                                               server that keeps
                                               responses, store) */
    unsigned              truncate:1;       /* responses: truncation
                                               "auto", the oldest turns
                                               left out of a prompt that
                                               would not fit (the
                                               worker's) */
    slora_openai_str_t    prediction;       /* chat: the text the answer
                                               is expected to be, mostly
                                               (predicted outputs); data
                                               NULL: none */

    slora_openai_block_t *arena;
} slora_openai_req_t;


/* What the HTTP answer needs; status 0 never leaves a failed call. */
typedef struct {
    int                   status;           /* 400, 500 */
    const char           *type;             /* "invalid_request_error" */
    const char           *code;             /* NULL: JSON null */
    const char           *param;            /* NULL: JSON null */
    char                  msg[SLORA_OPENAI_MSG_LEN];
    size_t                len;
} slora_openai_err_t;


/* The GET stream endpoint's arguments, already percent-decoded; data NULL
 * when an argument is absent. */
typedef struct {
    slora_openai_str_t    model;
    slora_openai_str_t    prompt;
    slora_openai_str_t    chat;             /* "1" or "true": chat */
    slora_openai_str_t    max_tokens;
    slora_openai_str_t    temperature;
} slora_openai_query_t;


/* What begins the calls a model chooses to write, in its tool format:
 * "<tool_call>" (Hermes'), '{"name":' (Llama 3.1's), "[TOOL_CALLS]"
 * (Mistral's). */
const char *slora_openai_tool_mark(slora_openai_toolfmt_e format);


/* The limits nginx's handler applies: 4 stop strings, max_tokens up to
 * 2^31 - 1 (the server's own cap is checked later, by the caller). */
extern const slora_openai_limits_t  slora_openai_default_limits;


/*
 * Parses body[0..len) as a request of the given kind. lim NULL means the
 * defaults. SLORA_OK: req holds the request. SLORA_ERROR: err says why;
 * req holds nothing to use. Either way the caller frees req.
 */
int slora_openai_parse(const char *body, size_t len, slora_openai_kind_e kind,
    const slora_openai_limits_t *lim, slora_openai_req_t *req,
    slora_openai_err_t *err);

/* What a Responses request reads of the store. */
typedef enum {
    SLORA_OPENAI_PREVIOUS = 0,          /* previous_response_id */
    SLORA_OPENAI_CONVERSATION           /* conversation */
} slora_openai_stored_e;

/*
 * A stored conversation for a Responses request's previous_response_id
 * or its conversation: SLORA_OK with *conv the JSON array of its chat
 * messages (the caller's memory, alive while the parse runs),
 * SLORA_DECLINED when there is none the caller may see, SLORA_BUSY when
 * it has no answer (a background response being answered, cancelled or
 * failed), SLORA_AGAIN to stop the parse there (the caller will parse
 * the body elsewhere, given the conversation it found: nginx's worker
 * hands a long one to a thread).
 */
typedef int (*slora_openai_prev_pt)(void *data, slora_openai_stored_e what,
    const char *id, size_t len, const char **conv, size_t *conv_len);

/*
 * The same for a Responses API body (POST /v1/responses): checked in its
 * own terms, then parsed as the chat request it means; req->kind is
 * SLORA_OPENAI_CHAT, req->responses 1, req->resp_echo and req->resp_conv
 * set. previous_response_id is looked up with prev (NULL: the server
 * keeps no responses, and it is refused). SLORA_AGAIN: prev said so;
 * req holds nothing to use, and the caller frees it.
 */
int slora_openai_parse_responses(const char *body, size_t len,
    const slora_openai_limits_t *lim, slora_openai_prev_pt prev,
    void *prev_data, slora_openai_req_t *req, slora_openai_err_t *err);

/* A stored response's input_items query, as it came (percent-decoded);
 * data NULL when absent. */
typedef struct {
    slora_openai_str_t    limit;            /* 1..100, default 20 */
    slora_openai_str_t    order;            /* "asc" or "desc" (default) */
    slora_openai_str_t    after;            /* an item id: the page after */
} slora_openai_items_q_t;

/*
 * GET .../responses/{id}/input_items: the input items of the stored
 * response id[0..id_len) whose conversation (chat messages, the answer
 * last) is conv[0..conv_len), a page of them as the API's list object
 * {"object": "list", "data", "first_id", "last_id", "has_more"} in *out
 * (malloc'd; the caller frees it). A bad limit, order or after: 400 in
 * err.
 */
int slora_openai_input_items(const char *conv, size_t conv_len,
    const char *id, size_t id_len, const slora_openai_items_q_t *q,
    char **out, slora_openai_err_t *err);

/*
 * The Conversations API. A conversation is stored as its object
 * (compact JSON) and its items as chat messages (a JSON array, as a
 * stored response's conversation); an item's id is its place
 * (slora_openai_conv.c). Each writes malloc'd text the caller frees;
 * a bad body is a 400 in err.
 *
 * conv_new: POST .../conversations ({items, metadata}, both optional;
 * len 0: none): *conv its messages, *obj its object. conv_update: POST
 * .../conversations/{id} ({metadata}): *out the object obj with it.
 * conv_add: POST .../conversations/{id}/items ({items}, 1 to 20): *out
 * their messages (a JSON array, to append to the conversation's, which
 * holds places messages: slora_openai_json_count), *answer the list of
 * the items added.
 * conv_list: GET .../items, a page as input_items'. conv_item: GET
 * .../items/{item}: *out the item; with drop the messages with it
 * removed; 404 where none has that id.
 */
int slora_openai_conv_new(const char *body, size_t len, const char *id,
    int64_t created, char **conv, char **obj, slora_openai_err_t *err);
int slora_openai_conv_update(const char *body, size_t len, const char *obj,
    size_t obj_len, char **out, slora_openai_err_t *err);
int slora_openai_conv_add(const char *body, size_t len, int places,
    const char *id, size_t id_len, char **out, char **answer,
    slora_openai_err_t *err);
int slora_openai_conv_list(const char *conv, size_t conv_len,
    const char *id, size_t id_len, const slora_openai_items_q_t *q,
    char **out, slora_openai_err_t *err);
/* The items of the messages msgs[0..len) listed from place first on
 * (all, oldest first): conv_add's answer. */
int slora_openai_conv_list_from(const char *msgs, size_t len, int first,
    const char *id, size_t id_len, char **out, slora_openai_err_t *err);
/* The elements of a well-formed JSON array (a stored conversation's
 * messages), counted by a scan of its top level, not a parse; -1 where
 * it is not an array. */
int slora_openai_json_count(const char *text, size_t len);
int slora_openai_conv_item(const char *conv, size_t conv_len,
    const char *id, size_t id_len, const char *item, size_t item_len,
    int drop, char **out, slora_openai_err_t *err);

/* The same for the GET stream endpoint: a completion, or with chat=1 a
 * chat of one user message (after system, the template's default system
 * message, when not NULL); stream is set; model defaults to "base". */
int slora_openai_parse_query(const slora_openai_query_t *args,
    const char *system, slora_openai_req_t *req, slora_openai_err_t *err);

/*
 * The token endpoints (vLLM's /tokenize and /detokenize). Tokenize: a
 * chat's messages or one prompt string (req->kind says which), model
 * optional; other fields as slora_openai_parse takes them under lim
 * (NULL: the defaults). Detokenize: "tokens", an array of token ids,
 * into req->prompts[0].
 */
int slora_openai_parse_tokenize(const char *body, size_t len,
    const slora_openai_limits_t *lim, slora_openai_req_t *req,
    slora_openai_err_t *err);
int slora_openai_parse_detokenize(const char *body, size_t len,
    slora_openai_req_t *req, slora_openai_err_t *err);

/*
 * vLLM's load_lora_adapter and unload_lora_adapter bodies:
 * {"lora_name", "lora_path", "load_inplace"} (load) and {"lora_name"}
 * (unload; vLLM's "lora_int_id" names nothing here, since this server
 * names its adapters). Strings are UTF-8 without NUL; the path is
 * absolute. Other fields are left alone, as vLLM's models leave them.
 */
#define SLORA_OPENAI_LORA_NAME_LEN  256     /* NUL included */
#define SLORA_OPENAI_LORA_PATH_LEN  1280    /* NUL included */

typedef struct {
    char                  name[SLORA_OPENAI_LORA_NAME_LEN];
    char                  path[SLORA_OPENAI_LORA_PATH_LEN];  /* load */
    unsigned              inplace;                            /* load */
} slora_openai_lora_t;

int slora_openai_parse_lora(const char *body, size_t len, int load,
    slora_openai_lora_t *out, slora_openai_err_t *err);

void slora_openai_req_free(slora_openai_req_t *req);
/* The bytes req's arena holds: what parsing it took. */
size_t slora_openai_req_bytes(const slora_openai_req_t *req);

/* A message quoting a client's text made one line of UTF-8 in place:
 * control bytes blanks, a byte that begins no valid sequence '?', a
 * sequence cut at the end dropped (*len shortened), and a NUL written
 * after it: msg has room for *len + 1 bytes. */
void slora_openai_clean_msg(char *msg, size_t *len);


#endif /* SLORA_OPENAI_H */
