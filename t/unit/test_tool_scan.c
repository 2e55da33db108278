/*
 * test_tool_scan.c: tool calls read out of an answer's text
 * (engine/slora_tool_scan.c).
 *
 * Each written text (a bare call, calls in tags, a JSON array of calls) is
 * fed whole, a byte at a time and in random pieces; every way must give the
 * same names, each call's arguments as their exact text (nested objects,
 * brackets and escaped quotes inside strings), where the text stops being
 * calls, and whether it ends as whole calls.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#include "slora_tool_scan.h"


typedef struct {
    char     names[4][SLORA_TOOL_NAME_MAX + 1];
    char     args[4][256];
    int      n_calls;
    int      n_ends;
    long     not_at;        /* byte where NOT came; -1: never */
    int      whole;
} scan_out_t;


/* Feeds text in pieces of step bytes (0: random 1..7) into out; params:
 * the arguments' key is "parameters". */
static void
scan(const char *text, slora_tool_shape_e shape, int params, size_t step,
    scan_out_t *out)
{
    size_t             at, n, took, off, len, piece;
    slora_tool_ev_e    ev;
    slora_tool_scan_t  t;

    memset(out, 0, sizeof(scan_out_t));
    out->not_at = -1;
    slora_tool_scan_init(&t, shape, params);
    n = strlen(text);
    at = 0;

    while (at < n && out->not_at < 0) {
        piece = step ? step : 1 + (size_t) (rand() % 7);
        piece = piece > n - at ? n - at : piece;

        /* one piece, event after event */
        while (piece > 0) {
            took = slora_tool_scan(&t, text + at, piece, &ev, &off, &len);

            switch (ev) {

            case SLORA_TOOL_NAME:
                if (out->n_calls < 4) {
                    strcpy(out->names[out->n_calls], t.name);
                }
                out->n_calls++;
                break;

            case SLORA_TOOL_ARGS:
                if (out->n_calls >= 1 && out->n_calls <= 4) {
                    strncat(out->args[out->n_calls - 1], text + at + off,
                            len);
                }
                break;

            case SLORA_TOOL_END:
                out->n_ends++;
                break;

            case SLORA_TOOL_NOT:
                out->not_at = (long) (at + took);
                break;

            default:
                break;
            }

            if (ev == SLORA_TOOL_NOT) {
                break;
            }

            at += took;
            piece -= took;
        }
    }

    out->whole = slora_tool_scan_whole(&t);
}


/* The same text, three ways of feeding it, one answer. */
static void
check_as(const char *what, const char *text, slora_tool_shape_e shape,
    int params, int n_calls, const char *names[], const char *args[],
    long not_at, int whole)
{
    int         k, same, i;
    scan_out_t  o[3];

    scan(text, shape, params, 100000, &o[0]);
    scan(text, shape, params, 1, &o[1]);
    scan(text, shape, params, 0, &o[2]);

    same = 1;

    for (i = 0; i < 3; i++) {
        same &= o[i].n_calls == n_calls && o[i].not_at == not_at
                && o[i].whole == whole;

        for (k = 0; same && k < n_calls; k++) {
            same &= strcmp(o[i].names[k], names[k]) == 0
                    && strcmp(o[i].args[k], args[k]) == 0;
        }

        if (!same) {
            diag("fed %s: %d calls, not at %ld, whole %d; first %s(%s)",
                 i == 0 ? "whole" : i == 1 ? "bytewise" : "in pieces",
                 o[i].n_calls, o[i].not_at, o[i].whole, o[i].names[0],
                 o[i].args[0]);
            break;
        }
    }

    ok(same, "%s", what);
}


static void
check(const char *what, const char *text, slora_tool_shape_e shape,
    int n_calls, const char *names[], const char *args[], long not_at,
    int whole)
{
    check_as(what, text, shape, 0, n_calls, names, args, not_at, whole);
}


int
main(void)
{
    srand(5);

    /* Llama 3.1's calls: "parameters", or "arguments" as its models
     * write it at times and vLLM reads it; no other key */
    check_as("a Llama 3.1 call", "{\"name\": \"get_weather\", "
             "\"parameters\": {\"city\": \"Paris\"}}", SLORA_TOOL_BARE, 1,
             1, (const char *[]) { "get_weather" },
             (const char *[]) { "{\"city\": \"Paris\"}" }, -1, 1);
    check_as("a Llama 3.1 call with \"arguments\": a call, as vLLM reads "
             "it", "{\"name\": \"f\", \"arguments\": {\"x\": 1}}",
             SLORA_TOOL_BARE, 1, 1, (const char *[]) { "f" },
             (const char *[]) { "{\"x\": 1}" }, -1, 1);
    check_as("a Llama 3.1 call with \"args\": not a call",
             "{\"name\": \"f\", \"args\": {}}", SLORA_TOOL_BARE, 1, 1,
             (const char *[]) { "f" }, (const char *[]) { "" }, 18, 0);
    check_as("a call with \"parameters\" where \"arguments\" is the key: "
             "not a call", "{\"name\": \"f\", \"parameters\": {}}",
             SLORA_TOOL_BARE, 0, 1, (const char *[]) { "f" },
             (const char *[]) { "" }, 15, 0);
    check_as("a Llama 3.1 answer in words: not a call", "Paris is sunny.",
             SLORA_TOOL_BARE, 1, 0, NULL, NULL, 0, 0);

    check("a bare call, compact", "{\"name\":\"get_time\",\"arguments\":{}}",
          SLORA_TOOL_BARE, 1, (const char *[]) { "get_time" },
          (const char *[]) { "{}" }, -1, 1);

    check("a bare call with blanks everywhere, and after",
          " {\n  \"name\" : \"get_weather\" ,\n  \"arguments\" :  "
          "{\"city\": \"Paris\"}\n}\n ",
          SLORA_TOOL_BARE, 1, (const char *[]) { "get_weather" },
          (const char *[]) { "{\"city\": \"Paris\"}" }, -1, 1);

    check("arguments with nesting, brackets and escaped quotes in strings",
          "{\"name\":\"f\",\"arguments\":{\"q\":\"a}\\\"{b]\",\"n\":[1,{\"x\":"
          "[2]}],\"e\":\"\\\\\"}}",
          SLORA_TOOL_BARE, 1, (const char *[]) { "f" },
          (const char *[]) { "{\"q\":\"a}\\\"{b]\",\"n\":[1,{\"x\":[2]}],"
                             "\"e\":\"\\\\\"}" }, -1, 1);

    check("cut inside the arguments: not whole",
          "{\"name\":\"f\",\"arguments\":{\"q\":\"abc",
          SLORA_TOOL_BARE, 1, (const char *[]) { "f" },
          (const char *[]) { "{\"q\":\"abc" }, -1, 0);

    check("cut before the name ends: no call yet", "{\"name\":\"get_ti",
          SLORA_TOOL_BARE, 0, NULL, NULL, -1, 0);

    check("a bare call, then text", "{\"name\":\"f\",\"arguments\":{}} ok",
          SLORA_TOOL_BARE, 1, (const char *[]) { "f" },
          (const char *[]) { "{}" }, 28, 0);

    check("the arguments first: not a call",
          "{\"arguments\":{},\"name\":\"f\"}", SLORA_TOOL_BARE, 0, NULL, NULL,
          2, 0);

    check("a name no function may have", "{\"name\":\"a b\"", SLORA_TOOL_BARE,
          0, NULL, NULL, 10, 0);

    check("arguments not an object", "{\"name\":\"f\",\"arguments\":\"{}\"}",
          SLORA_TOOL_BARE, 1, (const char *[]) { "f" },
          (const char *[]) { "" }, 24, 0);

    check("two calls in tags, text after them left",
          "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n"
          "</tool_call>\n<tool_call>\n{\"name\": \"b.c-d_2\", \"arguments\": "
          "{}}\n</tool_call>\nDone.",
          SLORA_TOOL_TAGGED, 2, (const char *[]) { "a", "b.c-d_2" },
          (const char *[]) { "{\"x\": 1}", "{}" }, -1, 1);

    check("text, not a call", "Sure! <tool_call>", SLORA_TOOL_TAGGED, 0, NULL,
          NULL, 0, 0);

    check("blanks, then a tag begun and broken", "\n <tool_cal>",
          SLORA_TOOL_TAGGED, 0, NULL, NULL, 11, 0);

    check("a tag not closed: not whole",
          "<tool_call>{\"name\":\"a\",\"arguments\":{}}", SLORA_TOOL_TAGGED, 1,
          (const char *[]) { "a" }, (const char *[]) { "{}" }, -1, 0);

    check("a closing tag half written: not whole",
          "<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_",
          SLORA_TOOL_TAGGED, 1, (const char *[]) { "a" },
          (const char *[]) { "{}" }, -1, 0);

    check("nothing yet: no call, not whole", "", SLORA_TOOL_TAGGED, 0, NULL,
          NULL, -1, 0);

    check("a list of three calls, compact",
          "[{\"name\":\"a\",\"arguments\":{\"x\":[1,{\"y\":\"]\"}]}},"
          "{\"name\":\"b\",\"arguments\":{}},{\"name\":\"a\",\"arguments\":"
          "{\"x\":2}}]",
          SLORA_TOOL_LISTED, 3, (const char *[]) { "a", "b", "a" },
          (const char *[]) { "{\"x\":[1,{\"y\":\"]\"}]}", "{}", "{\"x\":2}" },
          -1, 1);

    check("a list of one call, blanks everywhere (as SmolLM2 writes it)",
          "\n[\n\n{\n\"name\": \"get_weather\"\n\n,\"arguments\": {\n"
          "\"city\": \"Paris\"\n}\n}\n\n]\n",
          SLORA_TOOL_LISTED, 1, (const char *[]) { "get_weather" },
          (const char *[]) { "{\n\"city\": \"Paris\"\n}" }, -1, 1);

    check("a list not closed: not whole",
          "[{\"name\":\"a\",\"arguments\":{}} ,", SLORA_TOOL_LISTED, 1,
          (const char *[]) { "a" }, (const char *[]) { "{}" }, -1, 0);

    check("a list, then text: the calls, not whole",
          "[{\"name\":\"a\",\"arguments\":{}}] ok", SLORA_TOOL_LISTED, 1,
          (const char *[]) { "a" }, (const char *[]) { "{}" }, 30, 0);

    check("a list's call followed by neither ',' nor ']'",
          "[{\"name\":\"a\",\"arguments\":{}} {", SLORA_TOOL_LISTED, 1,
          (const char *[]) { "a" }, (const char *[]) { "{}" }, 29, 0);

    check("an empty list: no call", "[ ]", SLORA_TOOL_LISTED, 0, NULL, NULL,
          2, 0);

    check("a bare call where a list is asked: not calls",
          "{\"name\":\"a\",\"arguments\":{}}", SLORA_TOOL_LISTED, 0, NULL,
          NULL, 0, 0);

    check("a list where a bare call is asked: not calls",
          "[{\"name\":\"a\",\"arguments\":{}}]", SLORA_TOOL_BARE, 0, NULL,
          NULL, 0, 0);

    /* Mistral's: a list after [TOOL_CALLS] (v0.3 writes a space) */
    check("Mistral v0.3: a list of two calls after the mark, text after it "
          "let be",
          "[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"x\": [1]}}, "
          "{\"name\": \"b\", \"arguments\": {}}]</s> ok",
          SLORA_TOOL_MISTRAL, 2, (const char *[]) { "a", "b" },
          (const char *[]) { "{\"x\": [1]}", "{}" }, -1, 1);

    check("NeMo: list calls with their own ids, as its template writes "
          "them: the calls, the ids let be",
          "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": 1}, "
          "\"id\": \"w1234567x\"}, {\"name\": \"b\", \"arguments\": {}, "
          "\"id\":\"t7654321y\" }]",
          SLORA_TOOL_MISTRAL, 2, (const char *[]) { "a", "b" },
          (const char *[]) { "{\"x\": 1}", "{}" }, -1, 1);

    check("NeMo: a key after the arguments other than \"id\": not whole",
          "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}, \"ix\": 1}]",
          SLORA_TOOL_MISTRAL, 1, (const char *[]) { "a" },
          (const char *[]) { "{}" }, 46, 0);

    check("NeMo: the list right after the mark, not closed: not whole",
          "[TOOL_CALLS][{\"name\":\"a\",\"arguments\":{}}",
          SLORA_TOOL_MISTRAL, 1, (const char *[]) { "a" },
          (const char *[]) { "{}" }, -1, 0);

    check("Mistral: text where the mark is asked: not calls",
          "[TOOL_CALL] [", SLORA_TOOL_MISTRAL, 0, NULL, NULL, 10, 0);

    check("Mistral: a bare call after the mark: not calls",
          "[TOOL_CALLS]{\"name\":\"a\"", SLORA_TOOL_MISTRAL, 0, NULL, NULL,
          12, 0);

    /* Mistral's newer: [TOOL_CALLS]name[ARGS]{...}, each call */
    check("Mistral Small 3: two named calls, text after them let be",
          "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris {x}\", \"d\": "
          "{\"n\": 1}}[TOOL_CALLS]get.time[ARGS] {}</s>",
          SLORA_TOOL_MISTRAL_NAMED, 2,
          (const char *[]) { "get_weather", "get.time" },
          (const char *[]) { "{\"city\": \"Paris {x}\", \"d\": {\"n\": 1}}",
                             "{}" }, -1, 1);

    check("Mistral Small 3.2: a call id between the name and [ARGS] let be",
          "[TOOL_CALLS]f[CALL_ID]aB3dE6gH9[ARGS]{\"a\":1}",
          SLORA_TOOL_MISTRAL_NAMED, 1, (const char *[]) { "f" },
          (const char *[]) { "{\"a\":1}" }, -1, 1);

    check("Mistral: the name ended by '{' (a text without [ARGS])",
          "[TOOL_CALLS]f{\"a\":\"}\"}", SLORA_TOOL_MISTRAL_NAMED, 1,
          (const char *[]) { "f" }, (const char *[]) { "{\"a\":\"}\"}" },
          -1, 1);

    check("Mistral: arguments not ended: not whole",
          "[TOOL_CALLS]f[ARGS]{\"a\":{}", SLORA_TOOL_MISTRAL_NAMED, 1,
          (const char *[]) { "f" }, (const char *[]) { "{\"a\":{}" }, -1, 0);

    check("Mistral: a mark broken after the name: not calls",
          "[TOOL_CALLS]f[ARG]{}", SLORA_TOOL_MISTRAL_NAMED, 1,
          (const char *[]) { "f" }, (const char *[]) { "" }, 17, 0);

    check("Mistral: a name no function may have", "[TOOL_CALLS]a b[ARGS]{}",
          SLORA_TOOL_MISTRAL_NAMED, 0, NULL, NULL, 13, 0);

    check("Mistral: no name before [ARGS]", "[TOOL_CALLS][ARGS]{}",
          SLORA_TOOL_MISTRAL_NAMED, 0, NULL, NULL, 12, 0);

    /* only a balanced object ends the arguments: a closer that is not
     * its opener's ends the calls there */
    check("a ']' closing the arguments' object: not a call",
          "<tool_call>{\"name\":\"a\",\"arguments\":{\"a\":1]}</tool_call>",
          SLORA_TOOL_TAGGED, 1, (const char *[]) { "a" },
          (const char *[]) { "{\"a\":1" }, 41, 0);

    check("a '}' closing an array in the arguments: not a call",
          "{\"name\":\"f\",\"arguments\":{\"a\":[1}]}", SLORA_TOOL_BARE, 1,
          (const char *[]) { "f" }, (const char *[]) { "{\"a\":[1" }, 31, 0);

    check("Mistral: a ']' closing the arguments: not calls",
          "[TOOL_CALLS]f[ARGS]{\"a\":1][TOOL_CALLS]g[ARGS]{}",
          SLORA_TOOL_MISTRAL_NAMED, 1, (const char *[]) { "f" },
          (const char *[]) { "{\"a\":1" }, 25, 0);

    {
        char  text[SLORA_TOOL_DEPTH_MAX + 64], args[SLORA_TOOL_DEPTH_MAX + 8];

        /* the arguments' object and 127 arrays in it: 128 open, taken */
        sprintf(args, "{\"a\":");
        memset(args + 5, '[', SLORA_TOOL_DEPTH_MAX - 1);
        args[SLORA_TOOL_DEPTH_MAX + 4] = '\0';
        sprintf(text, "{\"name\":\"f\",\"arguments\":%s[", args);
        check("arguments nested deeper than the scanner follows: not a call",
              text, SLORA_TOOL_BARE, 1, (const char *[]) { "f" },
              (const char *[]) { args }, 24 + 5 + SLORA_TOOL_DEPTH_MAX - 1,
              0);
    }

    {
        char  name[80];

        memset(name, 'x', 65);
        sprintf(name + 65, "\"");
        {
            char  text[128];

            sprintf(text, "{\"name\":\"%s", name);
            check("a name of 65 bytes", text, SLORA_TOOL_BARE, 0, NULL, NULL,
                  73, 0);
        }
    }

    return done_testing();
}
