/*
 * fuzz_json.c: libFuzzer harness for constrained JSON output's schema
 * compiler, automaton and mask (slora_json.h), which every token of a
 * JSON-mode or JSON-schema answer goes through.
 *
 * An input with a 0xfe byte is a schema's text before it (compiled; one
 * the compiler refuses leaves JSON mode; one beginning '[' is a
 * guided_choice list of texts; one beginning '~' is a guided_regex, the
 * bytes after the '~'; one beginning '^' structural tags, the bytes
 * after the '^') and a document after it; one without is
 * a document in JSON mode. The document is fed to an automaton up to
 * the first byte it refuses.
 * Oracles beyond the sanitizers: feeding it whole and byte by byte take
 * the same bytes to the same verdict; a text the automaton calls a whole
 * object is one cJSON parses as an object (under a choice, one of the
 * texts exactly; under tags, a tag's begin, a value cJSON parses, the
 * same tag's end); and at the state reached, the
 * mask of a vocabulary (the 256 bytes, and the input's pieces between
 * 0xff bytes, which no JSON text holds, as multi-byte tokens) allows
 * exactly the tokens that trying each one allows, and counts them.
 *
 * The one idea: the mask's shortcuts (runs by first two bytes, plain
 * text tokens taken without a try) must never differ from the automaton
 * itself, whatever the tokens are.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "slora_json.h"
#include "slora_pyjson.h"


#define FUZZ_JSON_PIECES  64


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static int fuzz_json_tag(const cJSON *structures, const char *p,
    size_t n);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  whole, regex;
    char                 bytes[256];
    float               *row;
    size_t               taken, lens[256 + FUZZ_JSON_PIECES], i, start;
    int32_t              n, id, allowed;
    cJSON               *doc, *choices, *tags;
    const char          *toks[256 + FUZZ_JSON_PIECES];
    slora_err_t          err;
    const uint8_t       *sep;
    slora_json_t         j, k, t;
    slora_json_vocab_t  *v;
    slora_json_schema_t *schema;

    schema = NULL;
    regex = 0;
    sep = memchr(data, 0xfe, size);

    choices = NULL;
    tags = NULL;

    if (sep != NULL && sep > data && data[0] == '~') {
        schema = slora_json_regex_parse((const char *) data + 1,
                                        (size_t) (sep - data) - 1, &err);
        regex = schema != NULL;
        size -= (size_t) (sep + 1 - data);
        data = sep + 1;

    } else if (sep != NULL && sep > data && data[0] == '^') {
        schema = slora_json_tags_parse((const char *) data + 1,
                                       (size_t) (sep - data) - 1, &err);
        tags = schema != NULL
               ? cJSON_ParseWithLength((const char *) data + 1,
                                       (size_t) (sep - data) - 1)
               : NULL;

        /* a key named twice: its last value, as the parser reads it */
        if (tags != NULL && slora_pyjson_dict(tags) != 0) {
            abort();
        }
        size -= (size_t) (sep + 1 - data);
        data = sep + 1;

    } else if (sep != NULL && sep > data && data[0] == '[') {
        schema = slora_json_choice_parse((const char *) data,
                                         (size_t) (sep - data), &err);
        choices = schema != NULL
                  ? cJSON_ParseWithLength((const char *) data,
                                          (size_t) (sep - data))
                  : NULL;
        size -= (size_t) (sep + 1 - data);
        data = sep + 1;

    } else if (sep != NULL) {
        schema = slora_json_schema_parse((const char *) data,
                                         (size_t) (sep - data), &err);
        size -= (size_t) (sep + 1 - data);
        data = sep + 1;
    }

    slora_json_init(&j, schema);

    for (taken = 0; taken < size; taken++) {
        t = j;
        if (!slora_json_feed(&t, (const char *) data + taken, 1)) {
            break;
        }
        j = t;
    }

    slora_json_init(&k, schema);
    whole = slora_json_feed(&k, (const char *) data, size);

    if (whole != (taken == size)
        || (whole && slora_json_done(&k) != slora_json_done(&j)))
    {
        abort();
    }

    if (whole && slora_json_done(&j) && choices != NULL) {
        i = 0;

        cJSON_ArrayForEach(doc, choices) {
            i |= strlen(doc->valuestring) == size
                 && memcmp(doc->valuestring, data, size) == 0;
        }

        if (!i) {
            abort();
        }

    } else if (whole && slora_json_done(&j) && tags != NULL) {
        if (!fuzz_json_tag(cJSON_GetObjectItemCaseSensitive(tags,
                                                            "structures"),
                           (const char *) data, size))
        {
            abort();
        }

    } else if (whole && slora_json_done(&j) && !regex) {
        doc = cJSON_ParseWithLength((const char *) data, size);
        if (doc == NULL || !cJSON_IsObject(doc)) {
            abort();
        }
        cJSON_Delete(doc);
    }

    cJSON_Delete(choices);
    cJSON_Delete(tags);

    for (i = 0; i < 256; i++) {
        bytes[i] = (char) i;
        toks[i] = bytes + i;
        lens[i] = 1;
    }

    n = 256;

    for (start = 0, i = 0; i <= size && n < 256 + FUZZ_JSON_PIECES; i++) {
        if (i == size || data[i] == 0xff) {
            if (i - start > 1) {
                toks[n] = (const char *) data + start;
                lens[n++] = i - start;
            }
            start = i + 1;
        }
    }

    v = slora_json_vocab_from(toks, lens, n, &err);
    row = calloc((size_t) n, sizeof(float));

    if (v == NULL || row == NULL) {
        abort();
    }

    allowed = 0;

    if (slora_json_mask(&j, v, row) < 0) {
        abort();
    }

    for (id = 0; id < n; id++) {
        t = j;

        if (slora_json_feed_token(&t, v, id)) {
            allowed++;
            if (row[id] != 0) {
                abort();
            }

        } else if (row[id] != -INFINITY) {
            abort();
        }
    }

    for (id = 0; id < n; id++) {
        row[id] = 0;
    }

    if (slora_json_mask(&j, v, row) != allowed) {
        abort();
    }

    free(row);
    slora_json_vocab_free(v);
    slora_json_schema_free(schema);

    return 0;
}


/* 1 when p[0..n) is one of the structures' begin, a value cJSON parses
 * (blanks around it), and that structure's end. */
static int
fuzz_json_tag(const cJSON *structures, const char *p, size_t n)
{
    int           good;
    size_t        b, e;
    cJSON        *value;
    const cJSON  *it;
    const char   *begin, *end;

    cJSON_ArrayForEach(it, structures) {
        begin = cJSON_GetObjectItemCaseSensitive(it, "begin")->valuestring;
        end = cJSON_GetObjectItemCaseSensitive(it, "end")->valuestring;
        b = strlen(begin);
        e = strlen(end);

        if (n < b + e || memcmp(p, begin, b) != 0
            || memcmp(p + n - e, end, e) != 0)
        {
            continue;
        }

        value = cJSON_ParseWithLength(p + b, n - b - e);
        good = value != NULL;
        cJSON_Delete(value);

        return good;
    }

    return 0;
}
