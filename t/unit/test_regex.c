/*
 * test_regex.c: a schema's pattern as an automaton (slora_regex.h).
 *
 *   (a) written cases: ECMA-262's syntax and JSON Schema's meaning (a
 *       match anywhere unless anchored), classes, escapes, code points
 *       beyond ASCII, quantifiers, a '{' that is no quantifier;
 *   (b) refusals, each with its reason;
 *   (c) against PCRE2 on random texts, pattern by pattern;
 *   (d) lengths: for patterns whose texts use a small alphabet, every
 *       text up to the longest admitted one: a whole match exactly where
 *       PCRE2 matches and the length is admitted, and a prefix viable
 *       exactly where some admitted match begins with it, so the
 *       automaton never lets a string go where it cannot end;
 *   (e) two patterns held together (slora_regex_compile_both): a whole
 *       match exactly where PCRE2 matches both and the length is
 *       admitted, on random texts; a pair no text meets refused;
 *   (f) long bounded repeats of classes (an answer of up to 400-800
 *       characters) within the automaton's bounds: a few states a
 *       character, texts of every UTF-8 length matched at the bounds.
 */

#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>

#include "tap.h"
#include "slora_regex.h"


typedef struct {
    const char  *pattern;
    const char  *text;
    int          match;
} regex_case_t;


static int regex_run(const char *pattern, const char *text, uint32_t min,
    uint32_t max);
static int regex_pcre(pcre2_code *re, pcre2_match_data *md,
    const char *text, size_t n);
static void test_cases(void);
static void test_refused(void);
static void test_pcre(void);
static void test_lengths(void);
static void test_both(void);
static void test_long(void);
static uint64_t regex_rand(uint64_t *s);


int
main(void)
{
    test_cases();
    test_refused();
    test_pcre();
    test_lengths();
    test_both();
    test_long();

    return done_testing();
}


/* 1: a whole match; 0: none; -1: refused. */
static int
regex_run(const char *pattern, const char *text, uint32_t min, uint32_t max)
{
    int             m;
    slora_err_t     err;
    slora_regex_t  *r;

    memset(&err, 0, sizeof(err));
    r = slora_regex_compile(pattern, strlen(pattern), min, max,
                            SLORA_REGEX_SEARCH, NULL, &err);

    if (r == NULL) {
        diag("%s: %s", pattern, err.msg);
        return -1;
    }

    m = slora_regex_match(r, text, strlen(text));
    free(r);

    return m;
}


/* (a) */
static void
test_cases(void)
{
    static const regex_case_t  cases[] = {
        /* unanchored: anywhere */
        { "abc", "xxabcxx", 1 }, { "abc", "abx", 0 }, { "^abc", "abcx", 1 },
        { "^abc", "xabc", 0 }, { "abc$", "xabc", 1 }, { "abc$", "abcx", 0 },
        { "^abc$", "abc", 1 }, { "^abc$", "abcc", 0 }, { "", "", 1 },
        { "", "anything", 1 }, { "^$", "", 1 }, { "^$", "a", 0 },
        /* a top-level alternative's own anchors */
        { "^a|b$", "ax", 1 }, { "^a|b$", "xb", 1 }, { "^a|b$", "xa", 0 },
        { "^a|b$", "bx", 0 }, { "^(a|b)$", "a", 1 }, { "^(a|b)$", "ab", 0 },
        /* classes and escapes */
        { "^\\d{3}-\\d{4}$", "555-1234", 1 },
        { "^\\d{3}-\\d{4}$", "555-123", 0 },
        { "^\\d{3}-\\d{4}$", "55a-1234", 0 },
        { "^[A-Z]{2}$", "US", 1 }, { "^[A-Z]{2}$", "Us", 0 },
        { "^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$", "ana@example.org", 1 },
        { "^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$", "ana @example.org", 0 },
        { "^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$", "ana@example.o", 0 },
        { "^\\w+$", "snake_case9", 1 }, { "^\\w+$", "kebab-case", 0 },
        { "^\\W$", "-", 1 }, { "^\\D\\S$", "a_", 1 }, { "^\\D$", "7", 0 },
        { "^[a-c-]+$", "a-c", 1 }, { "^[-x]$", "-", 1 },
        { "^[\\d.]+$", "1.5", 1 },
        { "^[\\]]$", "]", 1 }, { "^[^]$", "q", 1 },
        { "^[\\b]$", "\b", 1 }, { "^\\x41\\u0042\\u{43}$", "ABC", 1 },
        { "^\\cJ$", "\n", 1 }, { "^\\t\\n$", "\t\n", 1 },
        { "^a\\.b\\*c\\+d\\?e\\(f\\)\\[g\\]\\{h\\}\\|i\\^j\\$k\\\\l\\/m$",
          "a.b*c+d?e(f)[g]{h}|i^j$k\\l/m", 1 },
        /* "." and the line terminators */
        { "^.$", "x", 1 }, { "^.$", "\n", 0 }, { "^.$", "\r", 0 },
        { "^.$", "\xe2\x80\xa8", 0 }, { "^a.c$", "a\tc", 1 },
        /* code points, not bytes */
        { "^.$", "\xc3\xa9", 1 }, { "^.$", "\xe6\x97\xa5", 1 },
        { "^.$", "\xf0\x9f\x98\x80", 1 }, { "^..$", "\xf0\x9f\x98\x80", 0 },
        { "^[\xc3\xa0-\xc3\xbf]{2}$", "\xc3\xa9\xc3\xa8", 1 },
        { "^[\xc3\xa0-\xc3\xbf]{2}$", "ee", 0 },
        { "^[^a]$", "\xe4\xb8\x80", 1 }, { "^\\u00e9$", "\xc3\xa9", 1 },
        { "^\\uD83D\\uDE00$", "\xf0\x9f\x98\x80", 1 },
        { "^\\u{1F600}$", "\xf0\x9f\x98\x80", 1 },
        { "^\\u{0001F600}\\u{00000041}$", "\xf0\x9f\x98\x80" "A", 1 },
        { "^\\s$", "\xe3\x80\x80", 1 }, { "^\\s$", "\xc2\xa0", 1 },
        /* quantifiers, greedy or lazy, and groups */
        { "^a{2,3}$", "a", 0 }, { "^a{2,3}$", "aa", 1 },
        { "^a{2,3}$", "aaaa", 0 }, { "^a{2,}$", "aaaaaaa", 1 },
        { "^a{0}b$", "b", 1 }, { "^a+?b*?c??$", "aab", 1 },
        { "^(?:ab)+$", "abab", 1 }, { "^(?:ab)+$", "aba", 0 },
        { "^(?<year>\\d{4})-(?<m>\\d\\d)$", "2026-12", 1 },
        { "^(a|bc|)d$", "d", 1 }, { "^(a|bc|)d$", "bcd", 1 },
        { "^(a(b(c)?)?)?$", "ab", 1 }, { "^(a(b(c)?)?)?$", "ac", 0 },
        /* Python's forms a guided_regex may be written in */
        { "\\A\\d+\\Z", "123", 1 }, { "\\A\\d+\\Z", "a123", 0 },
        { "\\A\\d+\\Z", "123a", 0 }, { "\\A\\d+", "12a", 1 },
        { "^(?P<year>\\d{4})-\\d\\d$", "2026-12", 1 },
        { "^(?<$_a1>x)(?<\xc3\xa9t\xc3\xa9>y)$", "xy", 1 },
        /* a '{' that is no quantifier is itself, as are ']' and '}' */
        { "^a{$", "a{", 1 }, { "^a{,2}$", "a{,2}", 1 }, { "^}]$", "}]", 1 },
        { "^x{1,2$", "x{1,2", 1 },
        /* only what a JSON string can hold: \x01 cannot be written */
        { "^a\\x01?b$", "ab", 1 }, { "^a[\\x00-\\x1f]b$", "a\nb", 1 },
        { "^a[\\x00-\\x1f]b$", "a\x01" "b", 0 },
    };

    size_t  i, k;
    char    name[160];

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(name, sizeof(name), "/%s/ %s \"%.40s\"", cases[i].pattern,
                 cases[i].match ? "matches" : "does not match", cases[i].text);

        /* control characters shown as '?': a TAP line is one line */
        for (k = 0; name[k] != '\0'; k++) {
            name[k] = (unsigned char) name[k] < 0x20 ? '?' : name[k];
        }

        is_int(regex_run(cases[i].pattern, cases[i].text, 0,
                         SLORA_REGEX_NONE),
               cases[i].match, "%s", name);
    }

    is_int(regex_run("^a+$", "aaa", 2, 3), 1, "a+ at 3 characters, 2..3");
    is_int(regex_run("^a+$", "aaaa", 2, 3), 0, "not at 4");
    is_int(regex_run("^a+$", "a", 2, 3), 0, "not at 1");
    is_int(regex_run("^.+$", "\xc3\xa9\xc3\xa9", 0, 2), 1,
           "lengths count characters, not bytes");
}


/* (b) */
static void
test_refused(void)
{
    static const char  *refused[][2] = {
        { "(a)\\1", "back references" }, { "\\k<x>", "back references" },
        { "(?P<y>a)(?P=y)", "back references" }, { "a\\Zb", "anchor" },
        { "(\\Aa)", "anchor" },
        { "a(?=b)", "lookahead" }, { "a(?!b)", "lookahead" },
        { "(?<=a)b", "lookbehind" }, { "(?<!a)b", "lookbehind" },
        { "\\bword\\b", "word boundaries" }, { "a\\B", "word boundaries" },
        { "\\p{L}", "property escapes" }, { "a^b", "anchor" },
        { "(^a)", "anchor" }, { "a$b", "anchor" }, { "(a$)", "anchor" },
        { "*a", "nothing to repeat" }, { "a**", "nothing to repeat" },
        { "a{2}{3}", "nothing to repeat" }, { "a{3,2}", "below n" },
        { "a{1001}", "above 1000" }, { "(a", "without its ')'" },
        { "a)", "unmatched ')'" }, { "[a", "without its ']'" },
        { "[z-a]", "out of order" }, { "[\\d-z]", "class escape" },
        { "\\q", "unknown escape" }, { "a\\", "at the end" },
        { "\\x4", "hex escape" }, { "\\u{110000}", "hex escape" },
        { "\\u{00110000}", "hex escape" }, { "\\u{fffffffff1}", "hex escape" },
        { "(?x)", "unknown group" }, { "\\07", "octal" },
        { "^\\x01$", "no text a JSON string can hold" },
        { "^[]$", "no text a JSON string can hold" },
        { "^[\\ud800-\\udfff]$", "no text a JSON string can hold" },
        { "(a|b)*a(a|b){14}", "automaton" },
        { "((((a{1000}){10}){10}){10})", "automaton" },
        { "^.{1,1000}$", "more than 8192 states" },
        { "\xff", "not UTF-8" },
        { "(?<a)b>c)", "no identifier" }, { "(?<1a>c)", "no identifier" },
        { "(?P<a b>c)", "no identifier" }, { "(?<>c)", "empty name" },
        { "(?P<>c)", "empty name" },
    };

    size_t          i;
    slora_err_t     err;
    slora_regex_t  *r;

    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        memset(&err, 0, sizeof(err));
        r = slora_regex_compile(refused[i][0], strlen(refused[i][0]), 0,
                                SLORA_REGEX_NONE, SLORA_REGEX_SEARCH, NULL,
                                &err);
        ok(r == NULL && strstr(err.msg, refused[i][1]) != NULL,
           "/%s/ refused: %s", refused[i][0], err.msg);
        free(r);
    }

    memset(&err, 0, sizeof(err));
    r = slora_regex_compile("^ab$", 4, 3, 5, SLORA_REGEX_SEARCH, NULL, &err);
    ok(r == NULL && strstr(err.msg, "minLength to maxLength") != NULL,
       "^ab$ within 3..5 characters refused: %s", err.msg);
    free(r);

    memset(&err, 0, sizeof(err));
    r = slora_regex_compile("^(ab)+$", 7, 3, 3, SLORA_REGEX_SEARCH, NULL, &err);
    ok(r == NULL, "^(ab)+$ at exactly 3 characters refused: %s", err.msg);
    free(r);
}


/* (c) */
static void
test_pcre(void)
{
    static const struct {
        const char  *pattern;
        const char  *alphabet;
    } pats[] = {
        { "^\\d{3}-\\d{4}$", "0123456789-a" },
        { "\\d{2}", "01a-" },
        { "^(ab|a)(bc|c)*$", "abc" },
        { "a.c", "abc\n" },
        { "^[^ab]*a[ab]?$", "abcx" },
        { "(foo|bar)+baz", "fobarz" },
        { "^x|y$", "xyz" },
        { "^\\w+@\\w+\\.(c|or)[a-z]$", "a@.co" },
        { "^(a|b)*a(a|b){3}$", "ab" },
        { "^[0-9a-f]{4}(-[0-9a-f]{4})*$", "0af-g" },
        { "^\\s*\\S+\\s*$", " \tab" },
        { "^(?:(?:25[0-5]|2[0-4]\\d|1?\\d?\\d)\\.){3}"
          "(?:25[0-5]|2[0-4]\\d|1?\\d?\\d)$", "0125.9" },
        { "^[+]?[1-9]\\d{1,4}$", "+019" },
        { "^(\xc3\xa9|e)+\xe6\x97\xa5?$", "e\xc3\xa9\xe6\x97\xa5" },
        { "^(ab|c){2,5}$", "abc" },
        { "^(\xc3\xa9|.){0,3}x[^a]{1,2}$",
          "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80xa" },
    };

    int                  ours, theirs, same, hits;
    char                 text[32];
    size_t               i, n, len, k, pos;
    uint64_t             seed;
    int                  errcode;
    PCRE2_SIZE           erroff;
    pcre2_code          *re;
    slora_err_t          err;
    slora_regex_t       *r;
    pcre2_match_data    *md;
    const char          *al;
    size_t               al_chars[16], n_al, at;

    seed = 0x5eed;

    for (i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
        re = pcre2_compile((PCRE2_SPTR) pats[i].pattern, PCRE2_ZERO_TERMINATED,
                           PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &errcode,
                           &erroff, NULL);
        memset(&err, 0, sizeof(err));
        r = slora_regex_compile(pats[i].pattern, strlen(pats[i].pattern), 0,
                                SLORA_REGEX_NONE, SLORA_REGEX_SEARCH, NULL,
                                &err);

        if (re == NULL || r == NULL) {
            ok(0, "/%s/ compiles (%s)", pats[i].pattern, err.msg);
            pcre2_code_free(re);
            free(r);
            continue;
        }

        md = pcre2_match_data_create_from_pattern(re, NULL);

        /* the alphabet's characters (UTF-8) */
        al = pats[i].alphabet;
        n_al = 0;

        for (at = 0; al[at] != '\0'; n_al++) {
            al_chars[n_al] = at;
            at++;

            while ((al[at] & 0xc0) == 0x80) {
                at++;
            }
        }

        al_chars[n_al] = at;
        same = 1;
        hits = 0;

        for (n = 0; n < 4000 && same; n++) {
            len = regex_rand(&seed) % 12;
            pos = 0;

            for (k = 0; k < len; k++) {
                at = regex_rand(&seed) % n_al;
                memcpy(text + pos, al + al_chars[at],
                       al_chars[at + 1] - al_chars[at]);
                pos += al_chars[at + 1] - al_chars[at];

                if (pos > sizeof(text) - 5) {
                    break;
                }
            }

            ours = slora_regex_match(r, text, pos);
            theirs = regex_pcre(re, md, text, pos);
            hits += theirs;

            if (ours != theirs) {
                same = 0;
                diag("/%s/ \"%.*s\": ours %d, PCRE2 %d", pats[i].pattern,
                     (int) pos, text, ours, theirs);
            }
        }

        ok(same && hits > 0, "/%s/ as PCRE2 on 4000 texts of its "
           "alphabet (%d matches)", pats[i].pattern, hits);

        pcre2_match_data_free(md);
        pcre2_code_free(re);
        free(r);
    }
}


/* (f) */
static void
test_long(void)
{
    static const struct {
        const char  *pattern;
        const char  *chars;         /* the texts' characters, in turn */
        uint32_t     lo;            /* characters a text may have */
        uint32_t     hi;
    } pats[] = {
        { "[a-z ]{1,500}", "ab c", 1, 500 },
        { ".{400}", "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 400, 400 },
        { "[\\s\\S]{0,500}", "\n\xc3\xa9 \xf0\x9f\x98\x80\xe2\x82\xac",
          0, 500 },
        { ".{800}", "\xe2\x82\xacz\xc3\xa9\xf0\x9f\x98\x80", 800, 800 },
    };

    int             good;
    char           *text;
    size_t          i, at, pos, n_ch, ch[8];
    uint32_t        len;
    slora_err_t     err;
    slora_regex_t  *r;

    text = malloc(4 * 802);

    for (i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
        memset(&err, 0, sizeof(err));
        r = slora_regex_compile(pats[i].pattern, strlen(pats[i].pattern), 0,
                                SLORA_REGEX_NONE, SLORA_REGEX_WHOLE, NULL,
                                &err);

        if (r == NULL) {
            ok(0, "/%s/ compiles: %s", pats[i].pattern, err.msg);
            continue;
        }

        /* the characters' starts */
        for (at = 0, n_ch = 0; pats[i].chars[at] != '\0'; n_ch++) {
            ch[n_ch] = at++;

            while ((pats[i].chars[at] & 0xc0) == 0x80) {
                at++;
            }
        }

        ch[n_ch] = at;
        good = 1;

        /* texts of lo - 1 to lo + 1 and hi - 1 to hi + 1 characters */
        for (len = pats[i].lo > 0 ? pats[i].lo - 1 : 0;
             len <= pats[i].hi + 1; len++)
        {
            if (len > pats[i].lo && len < pats[i].hi - 1) {
                len = pats[i].hi - 1;
            }

            for (pos = 0, at = 0; at < len; at++) {
                memcpy(text + pos, pats[i].chars + ch[at % n_ch],
                       ch[at % n_ch + 1] - ch[at % n_ch]);
                pos += ch[at % n_ch + 1] - ch[at % n_ch];
            }

            good &= slora_regex_match(r, text, pos)
                    == (len >= pats[i].lo && len <= pats[i].hi);
        }

        ok(good && r->n_states <= 10 * pats[i].hi + 2,
           "/%s/ compiles to %u states (10 or fewer a character), and "
           "takes texts of its characters (1 to 4 bytes) of %u to %u "
           "whole, not one fewer or more", pats[i].pattern, r->n_states,
           pats[i].lo, pats[i].hi);
        free(r);
    }

    free(text);
}


static int
regex_pcre(pcre2_code *re, pcre2_match_data *md, const char *text, size_t n)
{
    return pcre2_match(re, (PCRE2_SPTR) text, n, 0, 0, md, NULL) >= 0;
}


/* (d) every text over the alphabet up to length top: whole matches and
 * viable prefixes as the enumeration says */
static void
test_lengths(void)
{
    static const struct {
        const char  *pattern;
        uint32_t     min;
        uint32_t     max;
        uint32_t     top;           /* every admitted text is this long
                                       at most */
    } pats[] = {
        { "^(ab)+$", 0, 6, 7 },
        { "^(ab)+$", 3, 6, 7 },
        { "^(ab)+$", 3, SLORA_REGEX_NONE, 0 },
        { "^a*b?a*$", 2, 4, 5 },
        { "^(a|bb|abb)*$", 3, 5, 6 },
        { "^(aab|b)*a?$", 4, 4, 5 },
        { "^(ab|abb|b){1,3}$", 4, SLORA_REGEX_NONE, 9 },
        { "^(ab|abb|b){1,3}$", 0, 2, 3 },
        { "^[ab]{2,5}$", 3, SLORA_REGEX_NONE, 5 },
    };

    int              errcode, good, matches, is_match, want_match;
    char             text[16];
    uint8_t         *adm;
    size_t           i, n_texts, t, k, len, p;
    uint32_t         s, chars, top;
    PCRE2_SIZE       erroff;
    pcre2_code      *re;
    slora_err_t      err;
    slora_regex_t   *r;
    pcre2_match_data  *md;

    for (i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
        top = pats[i].top ? pats[i].top : 8;
        re = pcre2_compile((PCRE2_SPTR) pats[i].pattern, PCRE2_ZERO_TERMINATED,
                           PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &errcode,
                           &erroff, NULL);
        md = pcre2_match_data_create_from_pattern(re, NULL);
        memset(&err, 0, sizeof(err));
        r = slora_regex_compile(pats[i].pattern, strlen(pats[i].pattern),
                                pats[i].min, pats[i].max, SLORA_REGEX_SEARCH,
                                NULL, &err);

        if (r == NULL) {
            ok(0, "/%s/ %u..%u compiles: %s", pats[i].pattern, pats[i].min,
               pats[i].max, err.msg);
            pcre2_match_data_free(md);
            pcre2_code_free(re);
            continue;
        }

        /* texts over {a, b} by length then value: text t of length len
         * has index (2^len - 1) + value; adm[t]: an admitted match */
        n_texts = ((size_t) 2 << top) - 1;
        adm = calloc(n_texts, 1);
        good = 1;
        matches = 0;

        for (len = 0; len <= top; len++) {
            for (t = 0; t < ((size_t) 1 << len); t++) {
                for (k = 0; k < len; k++) {
                    text[k] = (t >> (len - 1 - k)) & 1 ? 'b' : 'a';
                }

                want_match = regex_pcre(re, md, text, len)
                             && len >= pats[i].min && len <= pats[i].max;
                is_match = slora_regex_match(r, text, len);
                adm[((size_t) 1 << len) - 1 + t] = (uint8_t) want_match;
                matches += want_match;

                if (is_match != want_match) {
                    diag("\"%.*s\": match %d, want %d", (int) len, text,
                         is_match, want_match);
                    good = 0;
                }
            }
        }

        /* a prefix is viable when an admitted text of length <= top
         * begins with it; with no maximum, only where top covers it
         * (texts up to top - 2 here, whose completions are short) */
        for (len = 0; len <= top && good; len++) {
            for (t = 0; t < ((size_t) 1 << len) && good; t++) {
                int    want = 0, viable;
                size_t l2, u;

                for (l2 = len; l2 <= top && !want; l2++) {
                    for (u = 0; u < ((size_t) 1 << (l2 - len)); u++) {
                        if (adm[((size_t) 1 << l2) - 1
                                + (t << (l2 - len)) + u])
                        {
                            want = 1;
                            break;
                        }
                    }
                }

                s = 0;
                chars = 0;

                for (p = 0; p < len && s != SLORA_REGEX_DEAD; p++) {
                    s = slora_regex_next(r, s, (t >> (len - 1 - p)) & 1
                                               ? 'b' : 'a');
                    chars++;
                }

                viable = s != SLORA_REGEX_DEAD
                         && slora_regex_viable(r, s, chars);

                if (pats[i].max == SLORA_REGEX_NONE && len + 2 > top) {
                    continue;
                }

                if (viable != want) {
                    diag("prefix of %zu: viable %d, want %d", len, viable,
                         want);
                    good = 0;
                }
            }
        }

        ok(good && matches > 0, "/%s/ with %u..%d characters: %d admitted "
           "texts up to %u, matches and viable prefixes exact",
           pats[i].pattern, pats[i].min,
           pats[i].max == SLORA_REGEX_NONE ? -1 : (int) pats[i].max, matches,
           top);

        free(adm);
        free(r);
        pcre2_match_data_free(md);
        pcre2_code_free(re);
    }
}


/* (e) */
static void
test_both(void)
{
    static const struct {
        const char  *p;
        const char  *q;
        const char  *alphabet;
        uint32_t     min;
        uint32_t     max;
    } pairs[] = {
        { "^(ab|a)(bc|c)*$", "^a.{0,3}$", "abc", 0, SLORA_REGEX_NONE },
        { "\\d{2}", "^[0-9]*1", "0123a", 0, SLORA_REGEX_NONE },
        { "^[a-c]+$", "(aa|bb)", "abcd", 2, 6 },
        { "^(a|b)*a(a|b){2}$", "b", "ab", 0, 7 },
        { "x|y", "^[^z]*z[^z]*$", "xyz", 1, SLORA_REGEX_NONE },
    };

    int                  ours, theirs, same, hits, errcode;
    char                 text[16];
    size_t               i, k, n, len;
    uint64_t             seed;
    PCRE2_SIZE           erroff;
    pcre2_code          *rp, *rq;
    slora_err_t          err;
    slora_regex_t       *r;
    pcre2_match_data    *mp, *mq;

    seed = 0xb07b;

    for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        rp = pcre2_compile((PCRE2_SPTR) pairs[i].p, PCRE2_ZERO_TERMINATED,
                           PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &errcode,
                           &erroff, NULL);
        rq = pcre2_compile((PCRE2_SPTR) pairs[i].q, PCRE2_ZERO_TERMINATED,
                           PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &errcode,
                           &erroff, NULL);
        memset(&err, 0, sizeof(err));
        r = slora_regex_compile_both(pairs[i].p, strlen(pairs[i].p),
                                     pairs[i].q, strlen(pairs[i].q),
                                     pairs[i].min, pairs[i].max,
                                     SLORA_REGEX_SEARCH, NULL, &err);

        if (rp == NULL || rq == NULL || r == NULL) {
            ok(0, "/%s/ and /%s/ compile (%s)", pairs[i].p, pairs[i].q,
               err.msg);
            pcre2_code_free(rp);
            pcre2_code_free(rq);
            free(r);
            continue;
        }

        mp = pcre2_match_data_create_from_pattern(rp, NULL);
        mq = pcre2_match_data_create_from_pattern(rq, NULL);
        same = 1;
        hits = 0;

        for (n = 0; n < 4000 && same; n++) {
            len = regex_rand(&seed) % 10;

            for (k = 0; k < len; k++) {
                text[k] = pairs[i].alphabet[regex_rand(&seed)
                                            % strlen(pairs[i].alphabet)];
            }

            ours = slora_regex_match(r, text, len);
            theirs = regex_pcre(rp, mp, text, len)
                     && regex_pcre(rq, mq, text, len)
                     && len >= pairs[i].min && len <= pairs[i].max;
            hits += theirs;

            if (ours != theirs) {
                same = 0;
                diag("/%s/ and /%s/ \"%.*s\": ours %d, PCRE2 %d",
                     pairs[i].p, pairs[i].q, (int) len, text, ours, theirs);
            }
        }

        ok(same && hits > 0, "/%s/ and /%s/ as PCRE2's both on 4000 texts "
           "(%d matches)", pairs[i].p, pairs[i].q, hits);

        pcre2_match_data_free(mp);
        pcre2_match_data_free(mq);
        pcre2_code_free(rp);
        pcre2_code_free(rq);
        free(r);
    }

    memset(&err, 0, sizeof(err));
    r = slora_regex_compile_both("^a+$", 4, "b", 1, 0, SLORA_REGEX_NONE,
                                 SLORA_REGEX_SEARCH, NULL, &err);
    ok(r == NULL && strstr(err.msg, "admits no") != NULL,
       "/^a+$/ and /b/: no text meets both, refused (%s)", err.msg);
    free(r);
}


static uint64_t
regex_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;

    return *s;
}
