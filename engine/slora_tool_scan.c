/*
 * slora_tool_scan.c: tool calls read out of a chat answer's text
 * (slora_tool_scan.h).
 *
 * The one idea: a call is a fixed sequence of parts, so the scanner is a
 * state per part: blanks may come between parts, fixed text ("name",
 * the tags, a list's brackets) is matched a byte at a time, the name is
 * gathered, and the arguments are passed through while their object's
 * depth is followed, a string's brackets and escaped quotes not
 * counting; a closer that is not its opener's, or nesting past
 * SLORA_TOOL_DEPTH_MAX, is not a call.
 */

#include <string.h>

#include "slora_tool_scan.h"


enum {
    SLORA_TOOL_S_TAG_OPEN = 0,  /* tagged: "<tool_call>" */
    SLORA_TOOL_S_OPEN,          /* '{' */
    SLORA_TOOL_S_NAME_KEY,      /* "\"name\"" */
    SLORA_TOOL_S_NAME_COLON,    /* ':' */
    SLORA_TOOL_S_NAME_QUOTE,    /* '"' */
    SLORA_TOOL_S_NAME,          /* the name's bytes, then '"' */
    SLORA_TOOL_S_COMMA,         /* ',' */
    SLORA_TOOL_S_ARGS_KEY,      /* "\"arguments\"" */
    SLORA_TOOL_S_ARGS_COLON,    /* ':' */
    SLORA_TOOL_S_ARGS_OPEN,     /* '{' */
    SLORA_TOOL_S_ARGS,          /* the arguments' object */
    SLORA_TOOL_S_CLOSE,         /* '}' */
    SLORA_TOOL_S_TAG_CLOSE,     /* tagged: "</tool_call>" */
    SLORA_TOOL_S_AFTER,         /* bare: blanks only */
    SLORA_TOOL_S_TRAIL,         /* tagged: text after the calls, left */
    SLORA_TOOL_S_LIST_OPEN,     /* listed: '[' */
    SLORA_TOOL_S_LIST_NEXT,     /* listed: ',' then a call, or ']' */
    SLORA_TOOL_S_MARK,          /* Mistral's: "[TOOL_CALLS]" */
    SLORA_TOOL_S_FNAME,         /* named: the name's bytes, then '[' or
                                   '{' */
    SLORA_TOOL_S_BRACKET,       /* named: "[A" or "[C" */
    SLORA_TOOL_S_ARGS_MARK,     /* named: "[ARGS]" */
    SLORA_TOOL_S_ID_MARK,       /* named: "[CALL_ID]" */
    SLORA_TOOL_S_ID,            /* named: the id's bytes, then '[' */
    SLORA_TOOL_S_CID_KEY,       /* Mistral's list: "\"id\"" after ',' */
    SLORA_TOOL_S_CID_COLON,     /* ':' */
    SLORA_TOOL_S_CID_QUOTE,     /* '"' */
    SLORA_TOOL_S_CID,           /* the id's bytes, then '"' */
    SLORA_TOOL_S_NOT
};


/* The fixed text of the states that match one. */
static const char  *slora_tool_fixed[] = {
    "<tool_call>", "{", "\"name\"", ":", "\"", NULL, ",", "\"arguments\"",
    ":", "{", NULL, "}", "</tool_call>", NULL, NULL, "[", NULL,
    "[TOOL_CALLS]", NULL, NULL, "[ARGS]", "[CALL_ID]", NULL, "\"id\"", ":",
    "\"", NULL, NULL
};


static int slora_tool_blank(unsigned c);
static int slora_tool_name_byte(unsigned c);


void
slora_tool_scan_init(slora_tool_scan_t *t, slora_tool_shape_e shape,
    int params)
{
    memset(t, 0, sizeof(slora_tool_scan_t));
    t->shape = (uint8_t) shape;
    t->params = params != 0;
    t->state = shape == SLORA_TOOL_TAGGED ? SLORA_TOOL_S_TAG_OPEN
               : shape == SLORA_TOOL_LISTED ? SLORA_TOOL_S_LIST_OPEN
               : shape == SLORA_TOOL_BARE ? SLORA_TOOL_S_OPEN
               : SLORA_TOOL_S_MARK;
}


size_t
slora_tool_scan(slora_tool_scan_t *t, const char *piece, size_t n,
    slora_tool_ev_e *ev, size_t *off, size_t *len)
{
    size_t       i, from;
    uint32_t     k;
    unsigned     c, array;
    const char  *fixed;

    *ev = SLORA_TOOL_MORE;
    *off = 0;
    *len = 0;

    for (i = 0; i < n; i++) {
        c = (unsigned char) piece[i];

        switch (t->state) {

        case SLORA_TOOL_S_NOT:
            *ev = SLORA_TOOL_NOT;
            return i;

        case SLORA_TOOL_S_TRAIL:
            return n;

        case SLORA_TOOL_S_AFTER:
            if (!slora_tool_blank(c)) {
                t->state = SLORA_TOOL_S_NOT;
                *ev = SLORA_TOOL_NOT;
                return i;
            }

            continue;

        case SLORA_TOOL_S_LIST_NEXT:
            if (slora_tool_blank(c)) {
                continue;
            }

            if (c == ',' || c == ']') {
                /* what follows Mistral's list is let be */
                t->state = c == ',' ? SLORA_TOOL_S_OPEN
                           : t->shape == SLORA_TOOL_MISTRAL
                           ? SLORA_TOOL_S_TRAIL : SLORA_TOOL_S_AFTER;
                continue;
            }

            /* what follows a listed call is neither: the calls stand */
            t->state = SLORA_TOOL_S_NOT;
            *ev = SLORA_TOOL_NOT;
            return i;

        case SLORA_TOOL_S_NAME:
            if (c == '"' && t->name_len > 0) {
                t->name[t->name_len] = '\0';
                t->state = SLORA_TOOL_S_COMMA;
                t->n_calls++;
                *ev = SLORA_TOOL_NAME;
                return i + 1;
            }

            if (!slora_tool_name_byte(c)
                || t->name_len == SLORA_TOOL_NAME_MAX)
            {
                break;
            }

            t->name[t->name_len++] = (char) c;
            continue;

        case SLORA_TOOL_S_FNAME:
            if ((c == '[' || c == '{') && t->name_len > 0) {
                /* the name is whole: '[' begins [ARGS] or [CALL_ID], '{'
                 * the arguments (a text without the marks) */
                t->name[t->name_len] = '\0';
                t->state = c == '[' ? SLORA_TOOL_S_BRACKET
                                    : SLORA_TOOL_S_ARGS_OPEN;
                t->n_calls++;
                *ev = SLORA_TOOL_NAME;
                return c == '[' ? i + 1 : i;
            }

            if (!slora_tool_name_byte(c)
                || t->name_len == SLORA_TOOL_NAME_MAX)
            {
                t->state = SLORA_TOOL_S_NOT;
                *ev = SLORA_TOOL_NOT;
                return i;
            }

            t->name[t->name_len++] = (char) c;
            continue;

        case SLORA_TOOL_S_BRACKET:
            if (c != 'A' && c != 'C') {
                t->state = SLORA_TOOL_S_NOT;
                *ev = SLORA_TOOL_NOT;
                return i;
            }

            t->state = c == 'A' ? SLORA_TOOL_S_ARGS_MARK
                                : SLORA_TOOL_S_ID_MARK;
            t->matched = 2;
            continue;

        case SLORA_TOOL_S_ID:
            if (c == '[') {
                t->state = SLORA_TOOL_S_ARGS_MARK;
                t->matched = 1;
                continue;
            }

            if (!slora_tool_name_byte(c)) {
                t->state = SLORA_TOOL_S_NOT;
                *ev = SLORA_TOOL_NOT;
                return i;
            }

            continue;

        case SLORA_TOOL_S_CID:
            /* a Mistral list call's own id (NeMo's write one), let be:
             * the answer's calls get the server's ids */
            if (c == '"') {
                t->state = SLORA_TOOL_S_CLOSE;
                continue;
            }

            if (!slora_tool_name_byte(c)) {
                t->state = SLORA_TOOL_S_NOT;
                *ev = SLORA_TOOL_NOT;
                return i;
            }

            continue;

        case SLORA_TOOL_S_ARGS:
            /* a run of the arguments' bytes, to their closer or the
             * piece's end */
            from = i;

            for ( /* void */ ; i < n; i++) {
                c = (unsigned char) piece[i];

                if (t->in_string) {
                    if (t->escape) {
                        t->escape = 0;

                    } else if (c == '\\') {
                        t->escape = 1;

                    } else if (c == '"') {
                        t->in_string = 0;
                    }

                    continue;
                }

                if (c == '"') {
                    t->in_string = 1;

                } else if (c == '{' || c == '[') {
                    if (t->depth == SLORA_TOOL_DEPTH_MAX) {
                        /* deeper than followed */
                        t->state = SLORA_TOOL_S_NOT;
                        break;
                    }

                    k = t->depth++;
                    t->arrays[k / 8] &= (uint8_t) ~(1u << (k % 8));
                    t->arrays[k / 8] |= (uint8_t) ((c == '[') << (k % 8));

                } else if (c == '}' || c == ']') {
                    k = t->depth - 1;
                    array = (t->arrays[k / 8] >> (k % 8)) & 1;

                    if (c != (array ? ']' : '}')) {
                        /* not the closer of its opener */
                        t->state = SLORA_TOOL_S_NOT;
                        break;
                    }

                    if (--t->depth == 0) {
                        /* a named call's arguments end it */
                        t->state = t->shape == SLORA_TOOL_MISTRAL_NAMED
                                   ? SLORA_TOOL_S_MARK : SLORA_TOOL_S_CLOSE;
                        i++;
                        break;
                    }
                }
            }

            if (t->state == SLORA_TOOL_S_NOT && i == from) {
                *ev = SLORA_TOOL_NOT;
                return i;
            }

            /* the arguments' bytes taken (before a NOT: the next call
             * says it) */
            *ev = SLORA_TOOL_ARGS;
            *off = from;
            *len = i - from;
            return i;

        default:
            break;
        }

        if (t->state == SLORA_TOOL_S_NAME) {
            /* a byte no name may hold */
            t->state = SLORA_TOOL_S_NOT;
            *ev = SLORA_TOOL_NOT;
            return i;
        }

        /* the states of fixed text: blanks before it, then its bytes;
         * Llama 3's key "parameters", or "arguments" as its models
         * write it at times and vLLM reads it */
        if (t->state == SLORA_TOOL_S_ARGS_KEY && t->params
            && t->matched == 1 && c == 'a')
        {
            t->params = 0;
        }

        fixed = t->state == SLORA_TOOL_S_ARGS_KEY && t->params
                ? "\"parameters\"" : slora_tool_fixed[t->state];

        if (t->matched == 0 && slora_tool_blank(c)) {
            continue;
        }

        if (t->state == SLORA_TOOL_S_CLOSE && t->shape == SLORA_TOOL_MISTRAL
            && c == ',')
        {
            /* "id" after the arguments, as Mistral's templates write a
             * list call */
            t->state = SLORA_TOOL_S_CID_KEY;
            continue;
        }

        if ((unsigned char) fixed[t->matched] != c) {
            if ((t->state == SLORA_TOOL_S_TAG_OPEN
                 || t->state == SLORA_TOOL_S_MARK)
                && t->n_calls > 0)
            {
                /* text after the calls: they stand */
                t->state = SLORA_TOOL_S_TRAIL;
                return n;
            }

            t->state = SLORA_TOOL_S_NOT;
            *ev = SLORA_TOOL_NOT;
            return i;
        }

        if (fixed[++t->matched] != '\0') {
            continue;
        }

        t->matched = 0;

        switch (t->state) {

        case SLORA_TOOL_S_NAME_QUOTE:
            t->name_len = 0;
            t->state = SLORA_TOOL_S_NAME;
            break;

        case SLORA_TOOL_S_ARGS_OPEN:
            t->depth = 1;
            t->arrays[0] &= (uint8_t) ~1u;
            t->in_string = 0;
            t->escape = 0;
            t->state = SLORA_TOOL_S_ARGS;
            *ev = SLORA_TOOL_ARGS;
            *off = i;
            *len = 1;
            return i + 1;

        case SLORA_TOOL_S_CLOSE:
            t->state = t->shape == SLORA_TOOL_TAGGED ? SLORA_TOOL_S_TAG_CLOSE
                       : t->shape == SLORA_TOOL_BARE ? SLORA_TOOL_S_AFTER
                       : SLORA_TOOL_S_LIST_NEXT;
            *ev = SLORA_TOOL_END;
            return i + 1;

        case SLORA_TOOL_S_LIST_OPEN:
            t->state = SLORA_TOOL_S_OPEN;
            break;

        case SLORA_TOOL_S_TAG_CLOSE:
            t->state = SLORA_TOOL_S_TAG_OPEN;
            break;

        case SLORA_TOOL_S_MARK:
            t->name_len = 0;
            t->state = t->shape == SLORA_TOOL_MISTRAL
                       ? SLORA_TOOL_S_LIST_OPEN : SLORA_TOOL_S_FNAME;
            break;

        case SLORA_TOOL_S_ARGS_MARK:
            t->state = SLORA_TOOL_S_ARGS_OPEN;
            break;

        case SLORA_TOOL_S_ID_MARK:
            t->state = SLORA_TOOL_S_ID;
            break;

        default:
            t->state++;
            break;
        }
    }

    return n;
}


int
slora_tool_scan_whole(const slora_tool_scan_t *t)
{
    if (t->n_calls == 0) {
        return 0;
    }

    return t->state == SLORA_TOOL_S_AFTER || t->state == SLORA_TOOL_S_TRAIL
           || ((t->state == SLORA_TOOL_S_TAG_OPEN
                || t->state == SLORA_TOOL_S_MARK) && t->matched == 0);
}


static int
slora_tool_blank(unsigned c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}


/* What OpenAI allows in a function's name: letters, digits, '_', '-';
 * '.' too, which some clients use for namespaces. */
static int
slora_tool_name_byte(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}
