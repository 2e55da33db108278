/*
 * ngx_http_slora_text.h: pure text helpers the worker needs around the
 * tokenizer: JSON string escaping, stop-string matching with hold-back,
 * the text before a tool call, and a reasoning model's think block, so
 * a unit test can check them
 * without nginx. (Client
 * strings are validated as UTF-8 by the request parser, slora_openai.c.)
 */

#ifndef NGX_HTTP_SLORA_TEXT_H
#define NGX_HTTP_SLORA_TEXT_H


#include <stddef.h>


typedef struct {
    const unsigned char  *data;
    size_t                len;
} ngx_http_slora_text_t;


/* the longest stop string, as the API's bound (a request's stop strings
 * are refused past 1024 bytes: slora_openai_answer.c) */
#define NGX_HTTP_SLORA_STOP_MAX  1024


/* Escapes src for the inside of a JSON string, each byte that begins no
 * whole UTF-8 character (a character cut short, an overlong form, a
 * surrogate, past U+10FFFF, a stray continuation byte) as \ufffd, so the
 * string is UTF-8 whatever src holds. dst NULL: returns the length needed
 * (at most 6 * len); else writes it and returns it. */
size_t ngx_http_slora_json_escape(unsigned char *dst,
    const unsigned char *src, size_t len);

/*
 * Looks for the stop strings in text[0..len). Returns the offset of the
 * earliest match (text from there on is not returned to the client) and
 * sets *which, or returns len when nothing matched; then *safe is how
 * many bytes may be sent now: text from *safe on could still grow into a
 * stop string and is held back. In time linear in len and the stops'
 * lengths, each of at most NGX_HTTP_SLORA_STOP_MAX bytes.
 */
size_t ngx_http_slora_stop_scan(const unsigned char *text, size_t len,
    const ngx_http_slora_text_t *stops, size_t n_stops, size_t *which,
    size_t *safe);


/*
 * With tools and tool_choice "auto": how much of the first text[0..len)
 * of an answer is settled before a call. Returns that many bytes; *tag
 * is 1 when mark (what begins the model's calls: "<tool_call>",
 * "[TOOL_CALLS]") begins right after them, and *content says
 * whether they are text to send (1) or blanks before the call, which are
 * no text (0). What could still be the mark's start is held back, and so
 * are blanks while nothing else came (spoke 0): whether they are text
 * is not known yet. *blanks: the text's first bytes known to be blanks,
 * kept from call to call so that held blanks are read once (0 at first;
 * 0 again once the bytes are settled); the text held must not change
 * but at its end.
 */
size_t ngx_http_slora_tool_text(const unsigned char *text, size_t len,
    const char *mark, int spoke, size_t *blanks, int *content, int *tag);


/* A reasoning model's answer: its think block's state */
#define NGX_HTTP_SLORA_THINK_START  0   /* nothing read: a block may open */
#define NGX_HTTP_SLORA_THINK_IN     1   /* inside the block: reasoning */
#define NGX_HTTP_SLORA_THINK_OUT    2   /* after it (or none): content */

/*
 * Reads the unsent answer text[0..len) for a think block that opens with
 * open (its first bytes, nothing before them) and ends with close
 * ("<think>", "</think>"), from *state on. *skip bytes are the opening
 * mark, then *reason bytes reasoning; the return is all the bytes read
 * (the closing mark too, once found: then *state is OUT and what follows
 * is content). What could still be a mark's start is held back (not
 * read) unless final (the answer ended: an unclosed block's rest is
 * reasoning, an unopened one's content).
 */
size_t ngx_http_slora_think_scan(const unsigned char *text, size_t len,
    const char *open, const char *close, unsigned *state, int final,
    size_t *skip, size_t *reason);


#endif /* NGX_HTTP_SLORA_TEXT_H */
