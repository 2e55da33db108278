/*
 * test_chat_render.c: slora_chat_render against the models' own Jinja
 * templates, rendered by jinja2 as transformers' apply_chat_template
 * renders them (the texts below are jinja2's, less the leading BOS), on
 * the edges where a C rendering can drift from the template's:
 *
 *   (a) trim: Jinja's trim and Python's strip() take Python's whitespace
 *       off (str.isspace(): U+0085, U+00A0, U+1680, U+2000 to U+200A,
 *       U+2028, U+2029, U+202F, U+205F, U+3000 besides ASCII's), not
 *       U+180E, U+200B or U+FEFF.
 *   (b) Mistral v7 (Mistral-Small-3.2-24B-Instruct-2506's template): after
 *       the optional system message user and assistant alternate, tool
 *       results and calls aside, or the template raises; a later system
 *       message may stand in an assistant's place.
 *   (c) Llama 2 (Llama-2-7b-chat-hf's template): a later system message
 *       in an assistant's place passes its alternation test and is not
 *       written; in a user's place the template raises.
 *   (d) a v7 template's default system message: its string literals'
 *       escapes read as Jinja reads them (Python's unicode-escape: \xNN,
 *       \uNNNN, \UNNNNNNNN, octal, a backslash-newline, unknown ones
 *       kept); one Jinja refuses, no default.
 *   (e) the render flags each v7 template's text asks for, read off the
 *       real templates (llama.cpp's models/templates): Small 3.2's and
 *       Ministral 3's hold a chat to turns, Devstral's raises on no
 *       order, and a chat under it (SLORA_CHAT_ANY_ORDER) renders as it
 *       comes; Ministral 3's takes a system message first only and an
 *       assistant's message with content or calls
 *       (SLORA_CHAT_SYSTEM_FIRST).
 *
 * The one idea: each case is one conversation and the text (or the
 * refusal) its template gives.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "slora_tokenizer.h"
#include "ref_files.h"


/* a message's last fields: not made, all of its content the request's */
#define PLAIN_ALL  0, NULL, 0, 0


#define MSG(r, c)  { r, sizeof(r) - 1, c, sizeof(c) - 1, 0, 0, PLAIN_ALL }


static char  buf[8192];
static slora_err_t  err;


/* msgs rendered: the text, or "ERROR: " and the error's message. */
static const char *
render(slora_chat_e tmpl, const slora_chat_msg_t *msgs, int n_msgs,
    unsigned flags)
{
    size_t  n;

    if (slora_chat_render(tmpl, msgs, n_msgs, flags, buf, sizeof(buf), &n,
                          NULL, &err)
        != SLORA_OK)
    {
        snprintf(buf, sizeof(buf), "ERROR: %s", err.msg);
    }

    return buf;
}


/* Every character of Python's whitespace at both ends of each message,
 * and the three Unicode calls space that Python does not. */
#define WS_ALL  "\t\n\v\f\r\x1c\x1d\x1e\x1f \xc2\x85\xc2\xa0\xe1\x9a\x80"    \
                "\xe2\x80\x80\xe2\x80\x81\xe2\x80\x82\xe2\x80\x83"             \
                "\xe2\x80\x84\xe2\x80\x85\xe2\x80\x86\xe2\x80\x87"             \
                "\xe2\x80\x88\xe2\x80\x89\xe2\x80\x8a\xe2\x80\xa8"             \
                "\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\x9f\xe3\x80\x80"
#define NOT_WS  "\xe1\xa0\x8e\xe2\x80\x8b\xef\xbb\xbf"  /* U+180E, 200B, FEFF */

static void
test_trim(void)
{
    static const slora_chat_msg_t  one[] = {
        MSG("user", WS_ALL "Hi" WS_ALL),
    };
    static const slora_chat_msg_t  keep[] = {
        MSG("user", NOT_WS "Hi" NOT_WS),
    };
    static const slora_chat_msg_t  mistral[] = {
        MSG("user", "Hi"),
        MSG("assistant", "\xc2\xa0Hello.\xe3\x80\x80"),
        MSG("user", "x"),
    };
    static const slora_chat_msg_t  llama2[] = {
        MSG("system", "S"),
        MSG("user", "\xe2\x80\xa8Hi\xc2\x85"),
        MSG("assistant", "\xe2\x80\xafOK\xe2\x81\x9f"),
        MSG("user", "\xe1\x9a\x80x\xe2\x80\x8a"),
    };

    is_str(render(SLORA_CHAT_LLAMA3, one, 1, SLORA_CHAT_GEN_PROMPT),
           "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n",
           "trim llama3: Python's Unicode whitespace trimmed at both ends");
    is_str(render(SLORA_CHAT_LLAMA3, keep, 1, 0),
           "<|start_header_id|>user<|end_header_id|>\n\n" NOT_WS "Hi" NOT_WS
           "<|eot_id|>",
           "trim llama3: U+180E, U+200B and U+FEFF are not whitespace");
    is_str(render(SLORA_CHAT_LLAMA31, one, 1, 0),
           "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge "
           "Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
           "trim llama3.1: Python's Unicode whitespace trimmed");
    is_str(render(SLORA_CHAT_MISTRAL, mistral, 3, 0),
           "[INST] Hi[/INST] Hello.</s>[INST] x[/INST]",
           "trim mistral: the reply's U+00A0 and U+3000 trimmed");
    is_str(render(SLORA_CHAT_LLAMA2, llama2, 4, 0),
           "[INST] <<SYS>>\nS\n<</SYS>>\n\n\xe2\x80\xa8Hi [/INST] OK </s>"
           "<s>[INST] x [/INST]",
           "trim llama2: strip() of the system block and the first user "
           "text takes the text's end, the others both ends");
}


static void
test_v7_alternation(void)
{
    static const slora_chat_msg_t  s_u_u[] = {
        MSG("system", "S"), MSG("user", "a"), MSG("user", "a"),
    };
    static const slora_chat_msg_t  s_a[] = {
        MSG("system", "S"), MSG("assistant", "b"),
    };
    static const slora_chat_msg_t  s_u_a_a[] = {
        MSG("system", "S"), MSG("user", "a"), MSG("assistant", "b"),
        MSG("assistant", "b"),
    };
    static const slora_chat_msg_t  s_t_u[] = {
        MSG("system", "S"), MSG("system", "T"), MSG("user", "a"),
    };
    static const slora_chat_msg_t  s_u_t_u[] = {
        MSG("system", "S"), MSG("user", "a"), MSG("system", "T"),
        MSG("user", "a"),
    };
    slora_chat_msg_t               call[4] = {
        MSG("system", "S"), MSG("user", "a"),
        MSG("assistant", "[TOOL_CALLS]f[CALL_ID]123456789[ARGS]{}"),
        MSG("tool", "[TOOL_RESULTS]123456789[TOOL_CONTENT]1"
                    "[/TOOL_RESULTS]"),
    };

    ok(strstr(render(SLORA_CHAT_MISTRAL_V7, s_u_u, 3, 0),
              "ERROR: chat template mistral-v7-tekken: message 2: after an "
              "optional system message, roles must alternate") == buf,
       "v7: user, user is refused, as the template raises (%s)", buf);
    ok(strncmp(render(SLORA_CHAT_MISTRAL_V7, s_a, 2, 0), "ERROR: ", 7) == 0,
       "v7: an assistant first is refused (%s)", buf);
    ok(strncmp(render(SLORA_CHAT_MISTRAL_V7, s_u_a_a, 4, 0), "ERROR: ", 7)
       == 0, "v7: assistant, assistant is refused (%s)", buf);
    ok(strncmp(render(SLORA_CHAT_MISTRAL_V7, s_t_u, 3, 0), "ERROR: ", 7)
       == 0, "v7: a second system message in a user's place is refused "
       "(%s)", buf);
    is_str(render(SLORA_CHAT_MISTRAL_V7, s_u_t_u, 4, 0),
           "[SYSTEM_PROMPT]S[/SYSTEM_PROMPT][INST]a[/INST]"
           "[SYSTEM_PROMPT]T[/SYSTEM_PROMPT][INST]a[/INST]",
           "v7: a system message in an assistant's place is written there");
    is_str(render(SLORA_CHAT_MISTRAL_V7, s_u_t_u, 1, 0),
           "[SYSTEM_PROMPT]S[/SYSTEM_PROMPT]",
           "v7: a system message alone renders");

    call[2].calls = 1;
    call[2].made = 1;
    call[3].made = 1;
    is_str(render(SLORA_CHAT_MISTRAL_V7, call, 4, 0),
           "[SYSTEM_PROMPT]S[/SYSTEM_PROMPT][INST]a[/INST][TOOL_CALLS]f"
           "[CALL_ID]123456789[ARGS]{}</s>[TOOL_RESULTS]123456789"
           "[TOOL_CONTENT]1[/TOOL_RESULTS]",
           "v7: a call and its result are not turns of the alternation");
}


static void
test_llama2_system(void)
{
    static const slora_chat_msg_t  u_s_u[] = {
        MSG("user", "a"), MSG("system", "T"), MSG("user", "c"),
    };
    static const slora_chat_msg_t  s_u_s_u[] = {
        MSG("system", "S"), MSG("user", "a"), MSG("system", "T"),
        MSG("user", "c"),
    };
    static const slora_chat_msg_t  s_u_a_s[] = {
        MSG("system", "S"), MSG("user", "a"), MSG("assistant", "b"),
        MSG("system", "T"),
    };

    is_str(render(SLORA_CHAT_LLAMA2, u_s_u, 3, 0),
           "[INST] a [/INST]<s>[INST] c [/INST]",
           "llama2: a system message in an assistant's place is dropped");
    is_str(render(SLORA_CHAT_LLAMA2, s_u_s_u, 4, 0),
           "[INST] <<SYS>>\nS\n<</SYS>>\n\na [/INST]<s>[INST] c [/INST]",
           "llama2: so after the first system message too");
    ok(strncmp(render(SLORA_CHAT_LLAMA2, s_u_a_s, 4, 0), "ERROR: ", 7) == 0,
       "llama2: a system message in a user's place is refused (%s)", buf);
}


static void
test_default_escapes(void)
{
    char               *sys;
    size_t              i;

    static const char   tmpl[] =
        "{%- set default_system_message = 'a\\x41\\u00e9\\U0001F600"
        "\\101\\q\\'\\\nz' + \"b\\\\c\\\"\\tv\" %}[SYSTEM_PROMPT]";
    static const char  *bad[] = {
        "{% set default_system_message = 'a\\x4' %}",
        "{% set default_system_message = 'a\\ud800' %}",
        "{% set default_system_message = 'a\\U00110000' %}",
    };

    sys = slora_chat_default_system(SLORA_CHAT_MISTRAL_V7, tmpl,
                                    sizeof(tmpl) - 1);
    is_str(sys ? sys : "(none)",
           "aA\xc3\xa9\xf0\x9f\x98\x80" "A\\q'zb\\c\"\tv",
           "default: \\x, \\u, \\U, octal, backslash-newline and an "
           "unknown escape as jinja2 reads them");
    free(sys);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sys = slora_chat_default_system(SLORA_CHAT_MISTRAL_V7, bad[i],
                                        strlen(bad[i]));
        ok(sys == NULL, "default: %s is no default (%s)", bad[i],
           sys ? sys : "none");
        free(sys);
    }
}


/* dir/templates/file's text (NUL-terminated, malloc()ed), or NULL. */
static char *
read_template(const char *dir, const char *file, size_t *len)
{
    char   path[512], *text;
    FILE  *f;

    snprintf(path, sizeof(path), "%s/templates/%s", dir, file);
    f = fopen(path, "rb");
    text = f != NULL ? malloc(65537) : NULL;
    *len = text != NULL ? fread(text, 1, 65536, f) : 0;

    if (text != NULL) {
        text[*len] = '\0';
    }

    if (f != NULL) {
        fclose(f);
    }

    return text;
}


static void
test_v7_flags(void)
{
    char         *text;
    size_t        i, len;
    const char   *dir;

    static const struct {
        const char    *file;
        slora_chat_e   tmpl;
        unsigned       flags;
        const char    *says;
    } cases[] = {
        { "Mistral-Small-3.2-24B-Instruct-2506.jinja", SLORA_CHAT_MISTRAL_V7,
          0, "held to turns" },
        { "mistralai-Ministral-3-14B-Reasoning-2512.jinja",
          SLORA_CHAT_MISTRAL_V7, SLORA_CHAT_SYSTEM_FIRST,
          "held to turns, a system message first only" },
        { "unsloth-mistral-Devstral-Small-2507.jinja", SLORA_CHAT_MISTRAL_V7,
          SLORA_CHAT_ANY_ORDER, "messages in any order" },
        { "mistralai-Mistral-Nemo-Instruct-2407.jinja",
          SLORA_CHAT_MISTRAL_TEKKEN, 0, "no flags (not v7)" },
    };
    static const slora_chat_msg_t  s_u_u_a[] = {
        MSG("system", "S"), MSG("user", "a"), MSG("user", "b"),
        MSG("assistant", "c"),
    };
    static const slora_chat_msg_t  s_u_t_u[] = {
        MSG("system", "S"), MSG("user", "a"), MSG("system", "T"),
        MSG("user", "b"),
    };
    static const slora_chat_msg_t  s_u_e_u[] = {
        MSG("system", "S"), MSG("user", "a"), MSG("assistant", ""),
        MSG("user", "b"),
    };

    dir = ref_vocab_dir();

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        text = read_template(dir, cases[i].file, &len);

        ok(text != NULL && len > 0
           && slora_chat_detect(text, len) == cases[i].tmpl
           && slora_chat_template_flags(cases[i].tmpl, text, len)
              == cases[i].flags,
           "%s: %s", cases[i].file, cases[i].says);
        free(text);
    }

    ok(strstr(render(SLORA_CHAT_MISTRAL_V7, s_u_t_u, 4,
                     SLORA_CHAT_SYSTEM_FIRST),
              "message 2: a system message is taken first only") != NULL,
       "v7, a system message first only (Ministral 3's): a later one is "
       "refused, as its template raises (%s)", buf);
    ok(strstr(render(SLORA_CHAT_MISTRAL_V7, s_u_e_u, 4,
                     SLORA_CHAT_SYSTEM_FIRST),
              "message 2: an assistant's message needs content") != NULL,
       "v7 (Ministral 3's): an assistant's empty message without calls "
       "is refused (%s)", buf);
    ok(strncmp(render(SLORA_CHAT_MISTRAL_V7, s_u_e_u, 4, 0), "ERROR",
               5) != 0,
       "v7 (Small 3.2's): the same empty message renders (%s)", buf);

    is_str(render(SLORA_CHAT_MISTRAL_V7, s_u_u_a, 4, SLORA_CHAT_ANY_ORDER),
           "[SYSTEM_PROMPT]S[/SYSTEM_PROMPT][INST]a[/INST][INST]b[/INST]c"
           "</s>",
           "v7 in any order (Devstral's): user, user renders as it comes");
}


int
main(void)
{
    test_trim();
    test_v7_alternation();
    test_llama2_system();
    test_default_escapes();
    test_v7_flags();

    return done_testing();
}
