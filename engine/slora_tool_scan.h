/*
 * slora_tool_scan.h: tool calls read out of a chat answer's text as it
 * streams. Three shapes: the bare object {"name": "f", "arguments":
 * {...}} that a named function (or tool_choice "required" with
 * parallel_tool_calls false) constrains an answer to; a JSON array of
 * one or more such objects, what "required" constrains it to; and, when
 * the model chose freely (tool_choice "auto"), such objects each inside
 * <tool_call> ... </tool_call>, as the chat prompt tells it to write
 * them. Llama 3.1's calls name their arguments "parameters" (or
 * "arguments", as vLLM reads them). Mistral's
 * models write their calls after a [TOOL_CALLS] mark: a JSON array of
 * such objects, or (the newer) each call's name, [ARGS] and its
 * arguments' object.
 *
 * The one idea: the text is fed in the pieces it is detokenized in, and
 * the scanner says as soon as a call's name is known and which bytes are
 * its arguments, so that a stream sends the arguments as they come; the
 * arguments are the exact text of their JSON object, found by its
 * brackets (strings and escapes followed, each closer its opener's),
 * not reprinted.
 */

#ifndef SLORA_TOOL_SCAN_H
#define SLORA_TOOL_SCAN_H


#include <stddef.h>
#include <stdint.h>


#define SLORA_TOOL_NAME_MAX  64     /* OpenAI's limit on a function name */
#define SLORA_TOOL_DEPTH_MAX 128    /* containers open in the arguments,
                                       their object included */


typedef enum {
    SLORA_TOOL_MORE = 0,    /* all of the piece taken, nothing to say */
    SLORA_TOOL_NAME,        /* a call begins: its name is in t->name */
    SLORA_TOOL_ARGS,        /* piece[*off, *off + *len) is arguments text */
    SLORA_TOOL_END,         /* the call is whole (not said of
                                   MISTRAL_NAMED's, whose arguments'
                                   end is the call's) */
    SLORA_TOOL_NOT          /* the text is not tool calls (from the byte
                               before the return on; nothing more is
                               taken) */
} slora_tool_ev_e;


typedef enum {
    SLORA_TOOL_BARE = 0,    /* one object */
    SLORA_TOOL_TAGGED,      /* objects inside <tool_call> tags */
    SLORA_TOOL_LISTED,      /* a JSON array of objects */
    SLORA_TOOL_MISTRAL,     /* [TOOL_CALLS], then a JSON array of objects
                               (Mistral 7B v0.3's, NeMo's) */
    SLORA_TOOL_MISTRAL_NAMED    /* each call [TOOL_CALLS]name[ARGS]{...}
                                   ([CALL_ID]id before [ARGS] let be; the
                                   name ending at '{' too: Mistral Small
                                   3's, Devstral's, Ministral 3's) */
} slora_tool_shape_e;


typedef struct {
    uint8_t     state;
    uint8_t     shape;      /* slora_tool_shape_e */
    uint8_t     in_string;
    uint8_t     escape;
    uint8_t     params;     /* the arguments' key is "parameters" (or,
                               once its 'a' is read, "arguments") */
    uint32_t    depth;      /* of the arguments' containers */
    uint8_t     arrays[SLORA_TOOL_DEPTH_MAX / 8];   /* bit k: the container
                                                       at depth k + 1 is
                                                       an array */
    uint32_t    matched;    /* bytes of the current fixed text matched */
    uint32_t    n_calls;    /* calls whose name was reported */
    uint32_t    name_len;
    char        name[SLORA_TOOL_NAME_MAX + 1];
} slora_tool_scan_t;


/* params: the arguments' key is "parameters" (Llama 3.1's calls), or
 * "arguments" as vLLM reads them too; else "arguments" alone. */
void slora_tool_scan_init(slora_tool_scan_t *t, slora_tool_shape_e shape,
    int params);

/*
 * Takes bytes of piece[0..n) up to the first that has something to say
 * and returns how many it took, what it says in *ev; for ARGS, the
 * arguments' bytes among those taken in *off and *len. Call again with
 * the rest. After NOT it takes nothing more.
 */
size_t slora_tool_scan(slora_tool_scan_t *t, const char *piece, size_t n,
    slora_tool_ev_e *ev, size_t *off, size_t *len);

/* 1 when the text so far is whole calls: at least one, each ended (in
 * tags, closed; in a list, the list closed), blanks after them; or, in
 * tags and after Mistral's marks, anything after a closed call that
 * does not begin another. */
int slora_tool_scan_whole(const slora_tool_scan_t *t);


#endif /* SLORA_TOOL_SCAN_H */
