/*
 * slora_grammar.h: vLLM's guided_grammar (structured_outputs.grammar),
 * a grammar in the EBNF that xgrammar and llama.cpp's GBNF read, for
 * constrained output: the whole answer is a text the rule `root`
 * derives.
 *
 *   root   ::= answer " " unit          # a comment
 *   answer ::= "yes" | "no" | [0-9]+ ("." [0-9]{1,3})?
 *   unit   ::= ( "kg" | "lb" )
 *
 * Rules are `name ::= alternatives`, a name of letters, digits, `_` and
 * `-`; a rule runs on over line breaks until the next `name ::=`.
 * Alternatives are split by `|`, each a sequence of: "literal" strings
 * (escapes \n \r \t \\ \" \' \[ \] \xHH \uHHHH \UHHHHHHHH), character
 * classes [a-z_] and negated [^"\\] (the same escapes, and \- \^), `.`
 * (any character), groups ( ... ) and rule names, each maybe followed by
 * one of `*`, `+`, `?`, `{m}`, `{m,}` or `{m,n}` (n up to 1000).
 * Written out, it is held to the automaton's limits: groups (a
 * quantified group or rule, a group of alternatives) 64 one in another,
 * its states and its nodes; and as guided_regex's answers, an answer
 * holds no control character but tab, line feed, carriage return,
 * backspace and form feed (a `.` takes none of the others).
 *
 * The one idea: a grammar whose rules do not reach themselves derives a
 * regular language, so it is written out as one regular expression (each
 * rule's alternatives where its name stands) and held by the automaton
 * that holds guided_regex (slora_regex.h). That is what most grammars
 * given to a server are (a fixed format: a SQL statement's shape, a
 * date, a list of labels). A rule that reaches itself (nested
 * parentheses, JSON values) cannot be written out so: such rules, and
 * root, get an expression each, in which a rule that reaches itself is
 * one byte no answer holds (a call, SLORA_REGEX_CALLS), and the answer
 * is held by a stack of their automata (slora_json_grammar.c).
 */

#ifndef SLORA_GRAMMAR_H
#define SLORA_GRAMMAR_H


#include <stddef.h>

#include "slora_core.h"
#include "slora_regex.h"


#define SLORA_GRAMMAR_RULES_MAX   256
#define SLORA_GRAMMAR_NODES_MAX   16384
#define SLORA_GRAMMAR_REGEX_MAX   SLORA_REGEX_LONG_MAX  /* bytes of each
                                               written-out expression */
#define SLORA_GRAMMAR_CALLS_MAX   26    /* expressions: root and the rules
                                           that reach themselves */
#define SLORA_GRAMMAR_NAME_MAX    64    /* of a name kept for errors */


/* A grammar written out: expression k is rule k's alternatives, rule 0
 * root; in each, \RHH (HH: slora_grammar_call_byte[j] in hex) stands
 * where rule j is named. One expression without calls: a grammar
 * without recursion, root written out whole. */
typedef struct {
    uint32_t    n;
    uint32_t    calls;          /* 1: a call written (root names itself) */
    char       *text;           /* the expressions, each NUL-ended */
    size_t      off[SLORA_GRAMMAR_CALLS_MAX];
    size_t      len[SLORA_GRAMMAR_CALLS_MAX];
    char        name[SLORA_GRAMMAR_CALLS_MAX][SLORA_GRAMMAR_NAME_MAX + 1];
} slora_grammar_t;


/* The byte that calls rule k: control characters that no answer holds
 * (slora_regex.h: only \b \t \n \f \r of them can be written). */
extern const uint8_t  slora_grammar_call_byte[SLORA_GRAMMAR_CALLS_MAX];


/*
 * Writes the grammar text[0..len) out into *gr (slora_regex.h's syntax,
 * each expression matched whole, SLORA_REGEX_LONG | SLORA_REGEX_CALLS).
 * SLORA_ERROR with err set where the grammar does not read (where, and
 * what was expected), names a rule it does not define, has no root, has
 * more than SLORA_GRAMMAR_CALLS_MAX - 1 rules besides root that reach
 * themselves, or
 * an expression too large written out. Free with slora_grammar_free
 * whatever the outcome.
 */
int slora_grammar_write(const char *text, size_t len, slora_grammar_t *gr,
    slora_err_t *err);

void slora_grammar_free(slora_grammar_t *gr);


#endif /* SLORA_GRAMMAR_H */
