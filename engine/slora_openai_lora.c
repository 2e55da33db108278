/*
 * slora_openai_lora.c: the bodies of vLLM's runtime adapter endpoints,
 * load_lora_adapter ({"lora_name", "lora_path", "load_inplace"}) and
 * unload_lora_adapter ({"lora_name"}), as slora_openai_lora_t.
 *
 * The one idea: these bodies are read as strictly as a completion's (one
 * JSON object, its strings UTF-8), and a missing or empty field is the
 * 400 vLLM gives ("Both 'lora_name' and 'lora_path' must be provided."),
 * so that a client written for vLLM reads the same refusal here. Where
 * the adapter and its folder are judged is the engine's business.
 */

#include <string.h>

#include "slora_openai_int.h"


static int slora_openai_lora_str(cJSON *root, const char *field, char *out,
    size_t cap, const char *missing, slora_openai_err_t *err);


int
slora_openai_parse_lora(const char *body, size_t len, int load,
    slora_openai_lora_t *out, slora_openai_err_t *err)
{
    int          rc;
    cJSON       *root;
    const char  *missing;

    memset(out, 0, sizeof(*out));

    root = slora_openai_root(body, len, err);
    if (root == NULL) {
        return SLORA_ERROR;
    }

    missing = load ? "Both 'lora_name' and 'lora_path' must be provided."
                   : "lora_name must be provided (this server names its"
                     " adapters: lora_int_id alone names none)";

    rc = slora_openai_lora_str(root, "lora_name", out->name,
                               sizeof(out->name), missing, err);

    if (rc == SLORA_OK && load) {
        rc = slora_openai_lora_str(root, "lora_path", out->path,
                                   sizeof(out->path), missing, err);

        if (rc == SLORA_OK && out->path[0] != '/') {
            rc = slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                   "invalid_value", "lora_path",
                                   "lora_path must be an absolute path: the"
                                   " engine's working folder is nobody's"
                                   " business");
        }

        if (rc == SLORA_OK) {
            rc = slora_openai_bool(root, "load_inplace", &out->inplace, err);
        }
    }

    cJSON_Delete(root);

    return rc;
}


static int
slora_openai_lora_str(cJSON *root, const char *field, char *out, size_t cap,
    const char *missing, slora_openai_err_t *err)
{
    size_t   n;
    cJSON   *item;

    item = cJSON_GetObjectItemCaseSensitive(root, field);

    if (item == NULL || cJSON_IsNull(item)
        || (cJSON_IsString(item) && item->valuestring[0] == '\0'))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "missing_required_parameter", field, "%s",
                                 missing);
    }

    if (!cJSON_IsString(item)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 field, "%s must be a string", field);
    }

    /* cJSON stops a string at an escaped NUL: its length says so */
    n = strlen(item->valuestring);

    if (n >= cap) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 field, "%s is %zu bytes, more than the %zu"
                                 " it may be", field, n, cap - 1);
    }

    if (!slora_utf8_text_valid(item->valuestring, n)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 field, "%s is not valid UTF-8", field);
    }

    memcpy(out, item->valuestring, n + 1);

    return SLORA_OK;
}
