/*
 * slora_json.c: the JSON-object automaton of JSON mode (slora_json.h):
 * one byte at a time, whether the text so far can still become a JSON
 * object, and whether it is one.
 *
 * The one idea: what may come next is one state of a dozen (before the
 * object, a key, the colon, a value, after a value, inside a string, a
 * number or a literal, done), and the open containers are a stack of
 * bits; a number has no end of its own, so the byte after it is taken
 * again as what follows a value. JSON mode asks for an object, so the
 * top-level value always ends with a '}' and never with a number.
 */

#include <string.h>

#include "slora_json.h"


enum {
    SLORA_JSON_S_START = 0,     /* before the object: blanks, '{' */
    SLORA_JSON_S_OBJ_FIRST,     /* after '{': a key or '}' */
    SLORA_JSON_S_OBJ_KEY,       /* after ',' in an object: a key */
    SLORA_JSON_S_COLON,         /* after a key: ':' */
    SLORA_JSON_S_VALUE,         /* after ':', or ',' in an array */
    SLORA_JSON_S_ARR_FIRST,     /* after '[': a value or ']' */
    SLORA_JSON_S_AFTER,         /* after a value: ',' or the closer */
    SLORA_JSON_S_KEY,           /* in a key's string */
    SLORA_JSON_S_STRING,        /* in a value's string */
    SLORA_JSON_S_NUMBER,        /* in a number: part is SLORA_JSON_N_* */
    SLORA_JSON_S_LITERAL,       /* in true, false or null */
    SLORA_JSON_S_DONE           /* the object closed */
};


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


static const char  *slora_json_literals[] = { "true", "false", "null" };


static int slora_json_byte(slora_json_t *j, unsigned c);
static int slora_json_value(slora_json_t *j, unsigned c);
static int slora_json_number(slora_json_t *j, unsigned c);
static int slora_json_string(slora_json_t *j, unsigned c);
static int slora_json_escape_digit(slora_json_t *j, unsigned c);
static int slora_json_push(slora_json_t *j, int object);
static int slora_json_pop(slora_json_t *j);


void
slora_json_init(slora_json_t *j)
{
    memset(j, 0, sizeof(slora_json_t));
    j->state = SLORA_JSON_S_START;
}


int
slora_json_feed(slora_json_t *j, const char *p, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (!slora_json_byte(j, (unsigned char) p[i])) {
            return 0;
        }
    }

    return 1;
}


int
slora_json_done(const slora_json_t *j)
{
    return j->state == SLORA_JSON_S_DONE;
}


int
slora_json_in_text(const slora_json_t *j)
{
    return (j->state == SLORA_JSON_S_KEY || j->state == SLORA_JSON_S_STRING)
           && j->part == SLORA_JSON_E_NONE && j->utf8 == 0 && j->hex == 0;
}


static int
slora_json_byte(slora_json_t *j, unsigned c)
{
    int  object;

    switch (j->state) {

    case SLORA_JSON_S_KEY:
    case SLORA_JSON_S_STRING:
        return slora_json_string(j, c);

    case SLORA_JSON_S_NUMBER:
        if (slora_json_number(j, c)) {
            return 1;
        }

        if (j->part != SLORA_JSON_N_ZERO && j->part != SLORA_JSON_N_INT
            && j->part != SLORA_JSON_N_FRAC
            && j->part != SLORA_JSON_N_EXP_DIGITS)
        {
            return 0;
        }

        /* the number ended: c is what follows it */
        j->state = SLORA_JSON_S_AFTER;
        j->part = 0;
        break;

    case SLORA_JSON_S_LITERAL:
        if (c != (unsigned char) slora_json_literals[j->literal][j->part]) {
            return 0;
        }

        if (slora_json_literals[j->literal][++j->part] == '\0') {
            j->state = SLORA_JSON_S_AFTER;
            j->part = 0;
            j->literal = 0;
        }

        return 1;

    case SLORA_JSON_S_DONE:
        return 0;

    default:
        break;
    }

    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        if (j->spaces == SLORA_JSON_SPACES_MAX) {
            return 0;
        }

        j->spaces++;
        return 1;
    }

    j->spaces = 0;

    switch (j->state) {

    case SLORA_JSON_S_START:
        return c == '{' && slora_json_push(j, 1);

    case SLORA_JSON_S_OBJ_FIRST:
        if (c == '}') {
            return slora_json_pop(j);
        }

        /* fall through */

    case SLORA_JSON_S_OBJ_KEY:
        if (c != '"') {
            return 0;
        }

        j->state = SLORA_JSON_S_KEY;
        return 1;

    case SLORA_JSON_S_COLON:
        if (c != ':') {
            return 0;
        }

        j->state = SLORA_JSON_S_VALUE;
        return 1;

    case SLORA_JSON_S_ARR_FIRST:
        if (c == ']') {
            return slora_json_pop(j);
        }

        /* fall through */

    case SLORA_JSON_S_VALUE:
        return slora_json_value(j, c);

    case SLORA_JSON_S_AFTER:
        object = (int) ((j->objects >> (j->depth - 1)) & 1);

        if (c == ',') {
            j->state = object ? SLORA_JSON_S_OBJ_KEY : SLORA_JSON_S_VALUE;
            return 1;
        }

        return c == (object ? '}' : ']') && slora_json_pop(j);

    default:
        return 0;
    }
}


/* The first byte of a value. */
static int
slora_json_value(slora_json_t *j, unsigned c)
{
    switch (c) {

    case '{':
        return slora_json_push(j, 1);

    case '[':
        return slora_json_push(j, 0);

    case '"':
        j->state = SLORA_JSON_S_STRING;
        return 1;

    case '-':
        j->state = SLORA_JSON_S_NUMBER;
        j->part = SLORA_JSON_N_MINUS;
        return 1;

    case '0':
        j->state = SLORA_JSON_S_NUMBER;
        j->part = SLORA_JSON_N_ZERO;
        return 1;

    case 't':
    case 'f':
    case 'n':
        j->state = SLORA_JSON_S_LITERAL;
        j->literal = c == 't' ? 0 : c == 'f' ? 1 : 2;
        j->part = 1;
        return 1;

    default:
        if (c >= '1' && c <= '9') {
            j->state = SLORA_JSON_S_NUMBER;
            j->part = SLORA_JSON_N_INT;
            return 1;
        }

        return 0;
    }
}


/* 1 when c goes on the number; 0 when it is not part of it. */
static int
slora_json_number(slora_json_t *j, unsigned c)
{
    int  digit;

    digit = c >= '0' && c <= '9';

    switch (j->part) {

    case SLORA_JSON_N_MINUS:
        if (!digit) {
            return 0;
        }

        j->part = c == '0' ? SLORA_JSON_N_ZERO : SLORA_JSON_N_INT;
        return 1;

    case SLORA_JSON_N_INT:
        if (digit) {
            return 1;
        }

        /* fall through */

    case SLORA_JSON_N_ZERO:
        if (c == '.') {
            j->part = SLORA_JSON_N_DOT;
            return 1;
        }

        if (c == 'e' || c == 'E') {
            j->part = SLORA_JSON_N_EXP;
            return 1;
        }

        return 0;

    case SLORA_JSON_N_DOT:
    case SLORA_JSON_N_FRAC:
        if (digit) {
            j->part = SLORA_JSON_N_FRAC;
            return 1;
        }

        if (j->part == SLORA_JSON_N_FRAC && (c == 'e' || c == 'E')) {
            j->part = SLORA_JSON_N_EXP;
            return 1;
        }

        return 0;

    case SLORA_JSON_N_EXP:
        if (c == '+' || c == '-') {
            j->part = SLORA_JSON_N_EXP_SIGN;
            return 1;
        }

        /* fall through */

    default:            /* EXP_SIGN, EXP_DIGITS */
        if (!digit) {
            return 0;
        }

        j->part = SLORA_JSON_N_EXP_DIGITS;
        return 1;
    }
}


static int
slora_json_string(slora_json_t *j, unsigned c)
{
    if (j->utf8) {
        if (c < j->lo || c > j->hi) {
            return 0;
        }

        /* a sequence's first continuation byte has its own range */
        j->utf8--;
        j->lo = j->utf8 ? 0x80 : 0;
        j->hi = j->utf8 ? 0xbf : 0;
        return 1;
    }

    if (j->hex) {
        return slora_json_escape_digit(j, c);
    }

    switch (j->part) {

    case SLORA_JSON_E_BACKSLASH:
        if (c != 'u' && c != '"' && c != '\\' && c != '/' && c != 'b'
            && c != 'f' && c != 'n' && c != 'r' && c != 't')
        {
            return 0;
        }

        j->part = SLORA_JSON_E_NONE;

        if (c == 'u') {
            j->hex = 4;
            j->code = 0;
        }

        return 1;

    case SLORA_JSON_E_LOW_BACKSLASH:
        if (c != '\\') {
            return 0;
        }

        j->part = SLORA_JSON_E_LOW_U;
        return 1;

    case SLORA_JSON_E_LOW_U:
        if (c != 'u') {
            return 0;
        }

        j->part = SLORA_JSON_E_NONE;
        j->hex = 4;
        j->code = 0;
        j->low = 1;
        return 1;

    default:
        break;
    }

    if (c == '"') {
        j->state = j->state == SLORA_JSON_S_KEY ? SLORA_JSON_S_COLON
                                                : SLORA_JSON_S_AFTER;
        return 1;
    }

    if (c == '\\') {
        j->part = SLORA_JSON_E_BACKSLASH;
        return 1;
    }

    if (c < 0x20) {
        return 0;
    }

    if (c < 0x80) {
        return 1;
    }

    /* a UTF-8 lead byte, and the range of its first continuation byte
     * (no overlong forms, no surrogates, nothing past U+10FFFF) */
    j->lo = 0x80;
    j->hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        j->utf8 = 1;

    } else if (c >= 0xe0 && c <= 0xef) {
        j->utf8 = 2;
        j->lo = c == 0xe0 ? 0xa0 : 0x80;
        j->hi = c == 0xed ? 0x9f : 0xbf;

    } else if (c >= 0xf0 && c <= 0xf4) {
        j->utf8 = 3;
        j->lo = c == 0xf0 ? 0x90 : 0x80;
        j->hi = c == 0xf4 ? 0x8f : 0xbf;

    } else {
        return 0;
    }

    return 1;
}


/* One hex digit of a \u escape. Each digit must leave some code the
 * escape may name: a low surrogate (DC00-DFFF) where one is due, else
 * anything but one; a high surrogate (D800-DBFF) then asks for a low. */
static int
slora_json_escape_digit(slora_json_t *j, unsigned c)
{
    unsigned  d, code, shift, first, last;

    if (c >= '0' && c <= '9') {
        d = c - '0';

    } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
        d = (c | 0x20) - 'a' + 10;

    } else {
        return 0;
    }

    code = ((unsigned) j->code << 4) | d;
    shift = 4 * (j->hex - 1);
    first = code << shift;                  /* the codes still reachable */
    last = first | ((1u << shift) - 1);

    if (j->low ? (last < 0xdc00 || first > 0xdfff)
               : (first >= 0xdc00 && last <= 0xdfff))
    {
        return 0;
    }

    j->code = (uint16_t) code;

    if (--j->hex) {
        return 1;
    }

    j->code = 0;

    if (j->low) {
        j->low = 0;

    } else if (code >= 0xd800 && code <= 0xdbff) {
        j->part = SLORA_JSON_E_LOW_BACKSLASH;
    }

    return 1;
}


static int
slora_json_push(slora_json_t *j, int object)
{
    if (j->depth == SLORA_JSON_DEPTH_MAX) {
        return 0;
    }

    if (object) {
        j->objects |= (uint64_t) 1 << j->depth;

    } else {
        j->objects &= ~((uint64_t) 1 << j->depth);
    }

    j->depth++;
    j->state = object ? SLORA_JSON_S_OBJ_FIRST : SLORA_JSON_S_ARR_FIRST;

    return 1;
}


static int
slora_json_pop(slora_json_t *j)
{
    j->depth--;
    j->state = j->depth == 0 ? SLORA_JSON_S_DONE : SLORA_JSON_S_AFTER;

    return 1;
}
