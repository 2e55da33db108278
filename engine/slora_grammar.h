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
 * date, a list of labels); a rule that reaches itself (nested
 * parentheses, JSON values) is refused with the rules on the way named,
 * rather than cut to some depth.
 */

#ifndef SLORA_GRAMMAR_H
#define SLORA_GRAMMAR_H


#include <stddef.h>

#include "slora_core.h"
#include "slora_regex.h"


#define SLORA_GRAMMAR_RULES_MAX   256
#define SLORA_GRAMMAR_NODES_MAX   16384
#define SLORA_GRAMMAR_REGEX_MAX   SLORA_REGEX_LONG_MAX  /* bytes of the
                                               written-out expression */

/*
 * The regular expression (slora_regex.h's syntax, matched whole) of the
 * grammar text[0..len): malloc'ed, *out_len bytes and a NUL. NULL with err
 * set where the grammar does not read (where, and what was expected),
 * names a rule it does not define, has no root, has a rule that reaches
 * itself, or is too large written out.
 */
char *slora_grammar_regex(const char *text, size_t len, size_t *out_len,
    slora_err_t *err);


#endif /* SLORA_GRAMMAR_H */
