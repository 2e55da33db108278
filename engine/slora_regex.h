/*
 * slora_regex.h: a JSON schema's "pattern" as an automaton over the
 * bytes of the string's text, for constrained output (slora_json.c).
 *
 * A pattern is ECMA-262's syntax, matched as JSON Schema says: anywhere
 * in the string unless anchored by ^ and $ (the ^ first and the $ last
 * of a top-level alternative), over code points; or, for vLLM's
 * guided_regex, as the whole text. What is taken: literal
 * characters and escapes (\t \n \r \v \f \0 \xHH \uHHHH \u{H...} \cX, a
 * syntax character escaped), ".", classes with ranges and negation,
 * \d \D \w \W \s \S, groups (capturing, (?:...), (?<name>...) and
 * Python's (?P<name>...)), alternation, the quantifiers * + ? {n} {n,}
 * {n,m} (greedy or lazy, the same for a match), the anchors ^ $ (and
 * Python's \A \Z) at the ends. What is refused, with its reason: back
 * references, lookaround, word boundaries, Unicode property escapes,
 * anchors anywhere else.
 *
 * The one idea: the pattern becomes a deterministic automaton over the
 * UTF-8 bytes of the text a JSON string can hold (control characters
 * but \b \t \n \f \r cannot be written, so they are left out), trimmed
 * so that every state it keeps can still end in a match: a byte the
 * automaton takes never leads to a dead end. A string's minLength and
 * maxLength are kept with it, as how many characters each state still
 * needs at least and at most (and, with both bounds, the exact lengths
 * it can still end at), so that a state is "viable" only when a match
 * of an admitted length can still follow.
 *
 * The automaton is one block of memory with no pointers in it, so that a
 * compiled schema can hold a copy of it.
 */

#ifndef SLORA_REGEX_H
#define SLORA_REGEX_H


#include <stddef.h>
#include <stdint.h>

#include "slora_core.h"


#define SLORA_REGEX_PATTERN_MAX  4096       /* bytes of a pattern */
#define SLORA_REGEX_STATES_MAX   8192       /* of the automaton */
#define SLORA_REGEX_REPEAT_MAX   1000       /* n and m of {n,m} */
#define SLORA_REGEX_NONE         UINT32_MAX /* no maximum length */
#define SLORA_REGEX_WORK_MAX     (1u << 21) /* steps a compile may take,
                                               some 10 ms */
#define SLORA_REGEX_DEAD         0xffff     /* no next state */


typedef struct slora_regex_s {
    uint32_t    size;           /* bytes of the whole block */
    uint32_t    n_states;       /* the start is state 0 */
    uint32_t    n_classes;      /* bytes that act alike share a class */
    uint32_t    min;            /* characters */
    uint32_t    max;            /* SLORA_REGEX_NONE: no maximum */
    uint32_t    words;          /* 64-bit words of a state's lengths */
    uint8_t     classes[256];
    /* then, each 8-byte aligned:
     * uint16_t next[n_states][n_classes]
     * uint32_t least[n_states]: characters still needed, at least
     * uint32_t most[n_states]: at most (SLORA_REGEX_NONE: no limit)
     * uint8_t  accept[n_states]
     * uint64_t lengths[n_states][words]: bit L, a match can end after
     *          exactly L more characters (both bounds only) */
} slora_regex_t;


#define SLORA_REGEX_SEARCH  0     /* a match anywhere, unless anchored
                                     (a JSON schema's pattern) */
#define SLORA_REGEX_WHOLE   1     /* the whole text (vLLM's guided_regex) */
#define SLORA_REGEX_LONG    2     /* or'ed in: a pattern this server wrote
                                     (a grammar's, slora_grammar.h), up to
                                     SLORA_REGEX_LONG_MAX bytes */
#define SLORA_REGEX_LONG_MAX  65536
#define SLORA_REGEX_CALLS   4     /* or'ed in: a pattern a grammar wrote
                                     (slora_json_grammar.c): \RHH stands
                                     for the one byte 0xHH as it is, a
                                     byte no text holds (a control
                                     character's), which the grammar's
                                     automaton reads as a call of a
                                     rule */

/*
 * Compiles pattern[0..len) for strings of min..max characters (max
 * SLORA_REGEX_NONE: no limit), as a search or for the whole text, in at
 * most *budget steps (decreased by those taken, so that several
 * patterns can share one; NULL: SLORA_REGEX_WORK_MAX). NULL with err set
 * when the pattern is refused, admits no string of those lengths, or is
 * too large or too complex to hold as an automaton within the budget.
 * The block is malloc'ed, r->size bytes.
 */
slora_regex_t *slora_regex_compile(const char *pattern, size_t len,
    uint32_t min, uint32_t max, int how, size_t *budget, slora_err_t *err);

/* The same for the texts that match both pattern[0..len) and
 * also[0..also_len), each as how says (also NULL: pattern alone): a
 * string's pattern held to its format too. NULL with err set as above,
 * and where no text matches both. */
slora_regex_t *slora_regex_compile_both(const char *pattern, size_t len,
    const char *also, size_t also_len, uint32_t min, uint32_t max, int how,
    size_t *budget, slora_err_t *err);


static inline const uint16_t *
slora_regex_table(const slora_regex_t *r)
{
    return (const uint16_t *) (r + 1);
}


/* The state after byte c from state s: SLORA_REGEX_DEAD when no match
 * can follow. */
static inline uint32_t
slora_regex_next(const slora_regex_t *r, uint32_t s, unsigned c)
{
    return slora_regex_table(r)[s * r->n_classes + r->classes[c & 0xff]];
}


int slora_regex_viable_within(const slora_regex_t *r, uint32_t s,
    uint32_t chars);

/* 1 when a text that reached state s after chars characters can still
 * go on to a match of min..max characters (without bounds, every state
 * kept can: the mask asks this of every token, so that case is
 * inline). */
static inline int
slora_regex_viable(const slora_regex_t *r, uint32_t s, uint32_t chars)
{
    if (r->min == 0 && r->max == SLORA_REGEX_NONE) {
        return s < r->n_states;
    }

    return slora_regex_viable_within(r, s, chars);
}

/* 1 when such a text is a match itself, of an admitted length. */
int slora_regex_accepts(const slora_regex_t *r, uint32_t s, uint32_t chars);

/* 1 when such a text is a match that nothing can extend: it must end
 * here. */
int slora_regex_final(const slora_regex_t *r, uint32_t s, uint32_t chars);

/* 1 when text[0..n) is a whole match of an admitted length. */
int slora_regex_match(const slora_regex_t *r, const char *text, size_t n);


/* 1 when byte c begins a character of UTF-8 text (counts one). */
static inline int
slora_regex_lead(unsigned c)
{
    return (c & 0xc0) != 0x80;
}


#endif /* SLORA_REGEX_H */
