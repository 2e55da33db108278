/*
 * slora_json_lex.h: the automaton's lexing state shared by its files:
 * slora_json.c (containers, strings, literals) and slora_json_number.c
 * (numbers, and the bounds of integers and numbers).
 *
 * The one idea: only the innermost value is ever being lexed, so its
 * lexer's stage lives once in slora_json_t (part), and these are its
 * values; a scalar's byte answers taken (1), refused (0) or AGAIN.
 */

#ifndef SLORA_JSON_LEX_H
#define SLORA_JSON_LEX_H


#include "slora_json_int.h"


/* A number's parts; ZERO, INT, FRAC and EXP_DIGITS end a whole number. */
enum {
    SLORA_JSON_N_MINUS = 0,
    SLORA_JSON_N_ZERO,
    SLORA_JSON_N_INT,
    SLORA_JSON_N_DOT,
    SLORA_JSON_N_FRAC,
    SLORA_JSON_N_EXP,
    SLORA_JSON_N_EXP_SIGN,
    SLORA_JSON_N_EXP_DIGITS
};


/* A string's escape stages: after '\', then (after a high surrogate)
 * the '\' and the 'u' of the low surrogate that must follow. */
enum {
    SLORA_JSON_E_NONE = 0,
    SLORA_JSON_E_BACKSLASH,
    SLORA_JSON_E_LOW_BACKSLASH,
    SLORA_JSON_E_LOW_U
};


/* A bounded number's frame: b's flags and, above them, its fraction's
 * digits. */
#define SLORA_JSON_B_NEG    1
#define SLORA_JSON_B_POINT  2
#define SLORA_JSON_B_FRAC   8           /* b >> this: fraction digits */
#define SLORA_JSON_FRAC_MAX 40


/* What a scalar's byte did: taken, refused, or the byte ended the value
 * without being part of it (its container takes it again). */
#define SLORA_JSON_AGAIN  2


/* A number's byte: taken, refused, or (the number whole) AGAIN. An
 * integer has no fraction and no exponent. */
int slora_json_number(slora_json_t *j, int integer, unsigned c);

/* A bounded integer's or number's byte that slora_json_number took (rc
 * 1) or that ended it (AGAIN): rc, or 0 where the value could no longer
 * end inside its bounds. */
int slora_json_bounded(slora_json_frame_t *f, const slora_json_node_t *n,
    unsigned c, int rc);
int slora_json_fbounded(slora_json_frame_t *f, const slora_json_node_t *n,
    unsigned c, int rc);

/* 1 when a value begun so (its sign, digits so far and their value) can
 * still end inside the node's bounds. */
int slora_json_reachable(const slora_json_node_t *n, int neg, uint64_t v,
    uint32_t digits);
int slora_json_freachable(const slora_json_node_t *n, int neg, int point,
    uint64_t m, uint32_t digits, uint32_t frac);


#endif /* SLORA_JSON_LEX_H */
