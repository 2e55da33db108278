/*
 * test_openai.c: the OpenAI request parser (engine/slora_openai.c).
 * Valid chat and text completion bodies parse to the right fields, copied
 * out of the body (the body is wiped before the fields are read); each
 * kind of bad input t/badinput.t sends gets the status, type, code and
 * param the handler answers with, from a table (the GET stream's query
 * arguments and UTF-8 in test_openai_query.c, the token endpoints in
 * test_openai_tokens.c, guided decoding in test_openai_guided.c). Every
 * request is freed, failed ones too, so the
 * ASan build finds a leak or a use after free.
 *
 * The one idea: the table is the contract nginx's handler forwards
 * byte for byte, so a case lists exactly what a client sees in "error".
 */

#include "tap.h"

#include "slora_openai.h"
#include "openai_eq.h"


#define MSGS  "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"


static const bad_case_t  bad_cases[] = {
    { "malformed JSON", CHAT, "{\"model\": \"base\", \"messages\": [",
      400, "invalid_json", NULL },
    { "JSON array body", CHAT, "[1, 2]", 400, "invalid_json", NULL },
    { "empty body", CHAT, "", 400, NULL, NULL },
    { "trailing garbage", CHAT, "{\"model\":\"base\"," MSGS "}x",
      400, "invalid_json", NULL },
    { "two objects", CHAT, "{\"model\":\"base\"," MSGS "} {}",
      400, "invalid_json", NULL },
    { "messages a string", CHAT, "{\"model\":\"base\",\"messages\":\"hi\"}",
      400, "invalid_type", "messages" },
    { "messages missing", CHAT, "{\"model\":\"base\"}",
      400, "missing_required_parameter", "messages" },
    { "messages empty", CHAT, "{\"model\":\"base\",\"messages\":[]}",
      400, "invalid_type", "messages" },
    { "message not an object", CHAT, "{\"model\":\"base\",\"messages\":[1]}",
      400, "invalid_type", "messages" },
    { "content a number", CHAT, "{\"model\":\"base\",\"messages\":"
      "[{\"role\":\"user\",\"content\":5}]}",
      400, "invalid_type", "messages.content" },
    { "content part not text", CHAT, "{\"model\":\"base\",\"messages\":"
      "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
      400, "invalid_type", "messages.content" },
    { "content part an image's, with a text beside", CHAT,
      "{\"model\":\"base\",\"messages\":[{\"role\":\"user\",\"content\":"
      "[{\"type\":\"text\",\"text\":\"what is this?\"},"
      "{\"type\":\"image_url\",\"text\":\"x\",\"image_url\":"
      "{\"url\":\"http://a/b.png\"}}]}]}",
      400, "invalid_type", "messages.content" },
    { "role missing", CHAT, "{\"model\":\"base\",\"messages\":"
      "[{\"content\":\"hi\"}]}",
      400, "missing_required_parameter", "messages.role" },
    { "role unknown", CHAT, "{\"model\":\"base\",\"messages\":"
      "[{\"role\":\"function\",\"content\":\"hi\"}]}",
      400, "invalid_value", "messages.role" },
    { "model missing", CHAT, "{" MSGS "}",
      400, "missing_required_parameter", "model" },
    { "model null", CHAT, "{\"model\":null," MSGS "}",
      400, "missing_required_parameter", "model" },
    { "model a number", CHAT, "{\"model\":7," MSGS "}",
      400, "invalid_type", "model" },
    { "max_tokens a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"max_tokens\":\"10\"}",
      400, "invalid_type", "max_tokens" },
    { "max_tokens 0", CHAT, "{\"model\":\"base\"," MSGS ",\"max_tokens\":0}",
      400, "invalid_value", "max_tokens" },
    { "max_tokens -5", CHAT,
      "{\"model\":\"base\"," MSGS ",\"max_tokens\":-5}",
      400, "invalid_value", "max_tokens" },
    { "max_tokens 1.5", CHAT,
      "{\"model\":\"base\"," MSGS ",\"max_tokens\":1.5}",
      400, "invalid_value", "max_tokens" },
    { "max_tokens huge", CHAT, "{\"model\":\"base\"," MSGS
      ",\"max_tokens\":100000000000000000000}",
      400, "invalid_value", "max_tokens" },
    { "max_completion_tokens 0", CHAT,
      "{\"model\":\"base\"," MSGS ",\"max_completion_tokens\":0}",
      400, "invalid_value", "max_completion_tokens" },
    { "max_tokens twice, the last bad", CHAT,
      "{\"model\":\"base\"," MSGS ",\"max_tokens\":5,\"max_tokens\":0}",
      400, "invalid_value", "max_tokens" },
    { "vLLM's use_beam_search", CHAT,
      "{\"model\":\"base\"," MSGS ",\"use_beam_search\":true}",
      400, "unsupported_parameter", "use_beam_search" },
    { "vLLM's prompt_logprobs -1", COMP, "{\"model\":\"base\",\"prompt\":"
      "\"x\",\"prompt_logprobs\":-1}", 400, "invalid_value",
      "prompt_logprobs" },
    { "vLLM's chat_template", CHAT,
      "{\"model\":\"base\"," MSGS ",\"chat_template\":\"{{ x }}\"}",
      400, "unsupported_parameter", "chat_template" },
    { "user a number", CHAT,
      "{\"model\":\"base\"," MSGS ",\"user\":12}",
      400, "invalid_type", "user" },
    { "max_completion_tokens a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"max_tokens\":null,"
      "\"max_completion_tokens\":\"9\"}",
      400, "invalid_type", "max_completion_tokens" },
    { "temperature a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"temperature\":\"hot\"}",
      400, "invalid_value", "temperature" },
    { "temperature negative", CHAT,
      "{\"model\":\"base\"," MSGS ",\"temperature\":-1}",
      400, "invalid_value", "temperature" },
    { "temperature 2.5", CHAT,
      "{\"model\":\"base\"," MSGS ",\"temperature\":2.5}",
      400, "invalid_value", "temperature" },
    { "top_p 0", CHAT, "{\"model\":\"base\"," MSGS ",\"top_p\":0}",
      400, "invalid_value", "top_p" },
    { "min_p 1.5", CHAT, "{\"model\":\"base\"," MSGS ",\"min_p\":1.5}",
      400, "invalid_value", "min_p" },
    { "stop_token_ids a number", CHAT, "{\"model\":\"base\"," MSGS
      ",\"stop_token_ids\":5}", 400, "invalid_value", "stop_token_ids" },
    { "stop_token_ids -1", CHAT, "{\"model\":\"base\"," MSGS
      ",\"stop_token_ids\":[1,-1]}", 400, "invalid_value", "stop_token_ids" },
    { "stop_token_ids 17 of them", COMP, "{\"model\":\"base\",\"prompt\":"
      "\"x\",\"stop_token_ids\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}",
      400, "invalid_value", "stop_token_ids" },
    { "min_tokens -1", CHAT, "{\"model\":\"base\"," MSGS ",\"min_tokens\":"
      "-1}", 400, "invalid_value", "min_tokens" },
    { "min_tokens 2.5", COMP, "{\"model\":\"base\",\"prompt\":\"x\","
      "\"min_tokens\":2.5}", 400, "invalid_value", "min_tokens" },
    { "min_p -0.1", COMP, "{\"model\":\"base\",\"prompt\":\"x\","
      "\"min_p\":-0.1}", 400, "invalid_value", "min_p" },
    { "min_p a string", CHAT, "{\"model\":\"base\"," MSGS ",\"min_p\":"
      "\"0.1\"}", 400, "invalid_value", "min_p" },
    { "top_k below -1", CHAT, "{\"model\":\"base\"," MSGS ",\"top_k\":-2}",
      400, "invalid_value", "top_k" },
    { "frequency_penalty 2.5", CHAT,
      "{\"model\":\"base\"," MSGS ",\"frequency_penalty\":2.5}",
      400, "invalid_value", "frequency_penalty" },
    { "frequency_penalty a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"frequency_penalty\":\"1\"}",
      400, "invalid_type", "frequency_penalty" },
    { "presence_penalty -2.01", CHAT,
      "{\"model\":\"base\"," MSGS ",\"presence_penalty\":-2.01}",
      400, "invalid_value", "presence_penalty" },
    { "repetition_penalty 0", CHAT,
      "{\"model\":\"base\"," MSGS ",\"repetition_penalty\":0}",
      400, "invalid_value", "repetition_penalty" },
    { "repetition_penalty 100.5", CHAT,
      "{\"model\":\"base\"," MSGS ",\"repetition_penalty\":100.5}",
      400, "invalid_value", "repetition_penalty" },
    { "seed 0.5", CHAT, "{\"model\":\"base\"," MSGS ",\"seed\":0.5}",
      400, "invalid_value", "seed" },
    { "seed a string", CHAT, "{\"model\":\"base\"," MSGS ",\"seed\":\"1\"}",
      400, "invalid_type", "seed" },
    { "stream a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"stream\":\"yes\"}",
      400, "invalid_type", "stream" },
    { "ignore_eos a number", CHAT,
      "{\"model\":\"base\"," MSGS ",\"ignore_eos\":1}",
      400, "invalid_type", "ignore_eos" },
    { "skip_special_tokens a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"skip_special_tokens\":\"no\"}",
      400, "invalid_type", "skip_special_tokens" },
    { "include_stop_str_in_output a number", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\","
      "\"include_stop_str_in_output\":1}",
      400, "invalid_type", "include_stop_str_in_output" },
    { "allowed_token_ids an object", CHAT,
      "{\"model\":\"base\"," MSGS ",\"allowed_token_ids\":{\"1\":1}}",
      400, "invalid_value", "allowed_token_ids" },
    { "allowed_token_ids with a negative id", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"allowed_token_ids\":[3,-1]}",
      400, "invalid_value", "allowed_token_ids" },
    { "allowed_token_ids with a string", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"allowed_token_ids\":[\"3\"]}",
      400, "invalid_type", "allowed_token_ids" },
    { "bad_words a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"bad_words\":\"no\"}",
      400, "invalid_value", "bad_words" },
    { "bad_words with a number", CHAT,
      "{\"model\":\"base\"," MSGS ",\"bad_words\":[\"no\",1]}",
      400, "invalid_type", "bad_words" },
    { "bad_words with an empty word", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"bad_words\":[\"\"]}",
      400, "invalid_value", "bad_words" },
    { "bad_words, 17 of them", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"bad_words\":[\"a\",\"b\","
      "\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\","
      "\"n\",\"o\",\"p\",\"q\"]}",
      400, "invalid_value", "bad_words" },
    { "truncate_prompt_tokens 0", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"truncate_prompt_tokens\":0}",
      400, "invalid_value", "truncate_prompt_tokens" },
    { "truncate_prompt_tokens -2", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"truncate_prompt_tokens\":-2}",
      400, "invalid_value", "truncate_prompt_tokens" },
    { "truncate_prompt_tokens a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"truncate_prompt_tokens\":\"5\"}",
      400, "invalid_type", "truncate_prompt_tokens" },
    { "return_tokens_as_token_ids a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"return_tokens_as_token_ids\":\"1\"}",
      400, "invalid_type", "return_tokens_as_token_ids" },
    { "n = 0", CHAT, "{\"model\":\"base\"," MSGS ",\"n\":0}",
      400, "invalid_value", "n" },
    { "n = 17, streamed", CHAT,
      "{\"model\":\"base\"," MSGS ",\"n\":17,\"stream\":true}",
      400, "invalid_value", "n" },
    { "n = 1.5", COMP, "{\"model\":\"base\",\"prompt\":\"x\",\"n\":1.5}",
      400, "invalid_value", "n" },
    { "n a string", CHAT, "{\"model\":\"base\"," MSGS ",\"n\":\"1\"}",
      400, "invalid_type", "n" },
    { "stream_options a list", CHAT,
      "{\"model\":\"base\"," MSGS ",\"stream_options\":[]}",
      400, "invalid_type", "stream_options" },
    { "include_usage a number", CHAT, "{\"model\":\"base\"," MSGS
      ",\"stream\":true,\"stream_options\":{\"include_usage\":1}}",
      400, "invalid_type", "stream_options" },
    { "stream_options without stream", CHAT, "{\"model\":\"base\"," MSGS
      ",\"stream_options\":{\"include_usage\":true}}",
      400, "invalid_value", "stream_options" },
    { "stream_options with stream false", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"stream\":false,"
      "\"stream_options\":{\"include_usage\":false}}",
      400, "invalid_value", "stream_options" },
    { "stop a number", CHAT, "{\"model\":\"base\"," MSGS ",\"stop\":1}",
      400, "invalid_value", "stop" },
    { "five stops", CHAT, "{\"model\":\"base\"," MSGS
      ",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}",
      400, "invalid_value", "stop" },
    { "stop list of numbers", CHAT,
      "{\"model\":\"base\"," MSGS ",\"stop\":[1]}",
      400, "invalid_type", "stop" },
    { "invalid UTF-8 in content", CHAT, "{\"model\":\"base\",\"messages\":"
      "[{\"role\":\"user\",\"content\":\"a\xff\xfe" "b\"}],\"max_tokens\":4}",
      400, "invalid_utf8", NULL },
    { "overlong UTF-8 in content", CHAT, "{\"model\":\"base\",\"messages\":"
      "[{\"role\":\"user\",\"content\":\"\xc0\xaf\"}],\"max_tokens\":4}",
      400, "invalid_utf8", NULL },
    { "escaped lone surrogate in content", CHAT,
      "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
      "\"content\":\"\\udc00\"}]}", 400, "invalid_json", NULL },
    { "completions: prompt a number", COMP,
      "{\"model\":\"base\",\"prompt\":3,\"max_tokens\":4}",
      400, "invalid_type", "prompt" },
    { "completions: prompt missing", COMP, "{\"model\":\"base\"}",
      400, "missing_required_parameter", "prompt" },
    { "completions: an empty prompt array", COMP,
      "{\"model\":\"base\",\"prompt\":[]}",
      400, "invalid_value", "prompt" },
    { "completions: an empty token array", COMP,
      "{\"model\":\"base\",\"prompt\":[\"a\",[]]}",
      400, "invalid_value", "prompt" },
    { "completions: a token id 1.5", COMP,
      "{\"model\":\"base\",\"prompt\":[1,1.5]}",
      400, "invalid_value", "prompt" },
    { "completions: a token id -1", COMP,
      "{\"model\":\"base\",\"prompt\":[[1],[-1]]}",
      400, "invalid_value", "prompt" },
    { "completions: a token id past 2^31 - 1", COMP,
      "{\"model\":\"base\",\"prompt\":[2147483648]}",
      400, "invalid_value", "prompt" },
    { "completions: a token id a string", COMP,
      "{\"model\":\"base\",\"prompt\":[1,\"2\"]}",
      400, "invalid_value", "prompt" },
    { "completions: a prompt an object", COMP,
      "{\"model\":\"base\",\"prompt\":[\"a\",{}]}",
      400, "invalid_type", "prompt" },
    { "completions: 17 prompts", COMP,
      "{\"model\":\"base\",\"prompt\":[\"a\",\"a\",\"a\",\"a\",\"a\","
      "\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\","
      "\"a\"]}",
      400, "invalid_value", "prompt" },
    { "completions: 3 prompts of 6 choices", COMP,
      "{\"model\":\"base\",\"prompt\":[\"a\",\"b\",\"c\"],\"n\":6}",
      400, "invalid_value", "n" },
    { "completions: invalid UTF-8", COMP,
      "{\"model\":\"base\",\"prompt\":\"\xed\xa0\x80\",\"max_tokens\":4}",
      400, "invalid_utf8", NULL },
    { "completions: max_tokens 0", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"max_tokens\":0}",
      400, "invalid_value", "max_tokens" },
    { "completions: messages, no prompt", COMP, "{\"model\":\"base\","
      MSGS "}", 400, "missing_required_parameter", "prompt" },
    { "chat: prompt, no messages", CHAT,
      "{\"model\":\"base\",\"prompt\":\"hi\"}",
      400, "missing_required_parameter", "messages" },
    { "chat: logprobs a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"logprobs\":\"yes\"}",
      400, "invalid_type", "logprobs" },
    { "chat: top_logprobs 3 without logprobs", CHAT,
      "{\"model\":\"base\"," MSGS ",\"top_logprobs\":3}",
      400, "invalid_value", "top_logprobs" },
    { "chat: top_logprobs 1 without logprobs", CHAT,
      "{\"model\":\"base\"," MSGS ",\"top_logprobs\":1}",
      400, "invalid_value", "top_logprobs" },
    { "chat: top_logprobs 21", CHAT,
      "{\"model\":\"base\"," MSGS ",\"logprobs\":true,\"top_logprobs\":21}",
      400, "invalid_value", "top_logprobs" },
    { "chat: top_logprobs 1.5", CHAT,
      "{\"model\":\"base\"," MSGS ",\"logprobs\":true,\"top_logprobs\":1.5}",
      400, "invalid_value", "top_logprobs" },
    { "completions: tools", COMP, "{\"model\":\"base\",\"prompt\":\"x\","
      "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}",
      400, "unsupported_parameter", "tools" },
    { "chat: functions (the legacy form of tools)", CHAT,
      "{\"model\":\"base\"," MSGS ",\"functions\":[{\"name\":\"f\"}]}",
      400, "unsupported_parameter", "functions" },
    { "chat: tool_choice required without tools", CHAT,
      "{\"model\":\"base\"," MSGS ",\"tool_choice\":\"required\"}",
      400, "invalid_value", "tool_choice" },
    { "chat: tools an object", CHAT,
      "{\"model\":\"base\"," MSGS ",\"tools\":{\"type\":\"function\"}}",
      400, "invalid_type", "tools" },
    { "chat: a tool not a function", CHAT,
      "{\"model\":\"base\"," MSGS ",\"tools\":[{\"type\":\"web\","
      "\"function\":{\"name\":\"f\"}}]}", 400, "invalid_type", "tools" },
    { "chat: a tool's name with a space", CHAT,
      "{\"model\":\"base\"," MSGS ",\"tools\":[{\"type\":\"function\","
      "\"function\":{\"name\":\"get weather\"}}]}",
      400, "invalid_value", "tools" },
    { "chat: tools naming a function twice", CHAT,
      "{\"model\":\"base\"," MSGS ",\"tools\":[{\"type\":\"function\","
      "\"function\":{\"name\":\"f\"}},{\"type\":\"function\","
      "\"function\":{\"name\":\"f\"}}]}", 400, "invalid_value", "tools" },
    { "chat: a tool's parameters an array", CHAT,
      "{\"model\":\"base\"," MSGS ",\"tools\":[{\"type\":\"function\","
      "\"function\":{\"name\":\"f\",\"parameters\":[]}}]}",
      400, "invalid_type", "tools" },
    { "chat: a tool's parameters the schema of an array", CHAT,
      "{\"model\":\"base\"," MSGS ",\"tools\":[{\"type\":\"function\","
      "\"function\":{\"name\":\"f\",\"parameters\":{\"type\":"
      "\"array\"}}}]}", 400, "invalid_value", "tools" },
    { "chat: tool_choice names a function not among tools", CHAT,
      "{\"model\":\"base\"," MSGS ",\"tools\":[{\"type\":\"function\","
      "\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":"
      "\"function\",\"function\":{\"name\":\"g\"}}}",
      400, "invalid_value", "tool_choice" },
    { "chat: tool_choice a number", CHAT,
      "{\"model\":\"base\"," MSGS ",\"tool_choice\":1}",
      400, "invalid_type", "tool_choice" },
    { "chat: tool_choice any", CHAT,
      "{\"model\":\"base\"," MSGS ",\"tool_choice\":\"any\"}",
      400, "invalid_value", "tool_choice" },
    { "chat: a required call whose parameters cannot be enforced", CHAT,
      "{\"model\":\"base\"," MSGS ",\"tools\":[{\"type\":\"function\","
      "\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\","
      "\"properties\":{\"a\":{\"type\":\"string\",\"pattern\":\"(?=x)\"}}}}}],"
      "\"tool_choice\":\"required\"}", 400, "invalid_value", "tools" },
    { "chat: tools beside response_format json_object", CHAT,
      "{\"model\":\"base\"," MSGS ",\"tools\":[{\"type\":\"function\","
      "\"function\":{\"name\":\"f\"}}],\"response_format\":"
      "{\"type\":\"json_object\"}}", 400, "invalid_value", "tool_choice" },
    { "chat: continue_final_message with the generation prompt", CHAT,
      "{\"model\":\"base\",\"messages\":[{\"role\":\"assistant\","
      "\"content\":\"Hi\"}],\"continue_final_message\":true}",
      400, "invalid_value", "continue_final_message" },
    { "chat: continue_final_message of a user's message", CHAT,
      "{\"model\":\"base\"," MSGS ",\"continue_final_message\":true,"
      "\"add_generation_prompt\":false}",
      400, "invalid_value", "continue_final_message" },
    { "chat: add_generation_prompt a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"add_generation_prompt\":\"no\"}",
      400, "invalid_type", "add_generation_prompt" },
    { "chat: parallel_tool_calls a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"parallel_tool_calls\":\"no\"}",
      400, "invalid_type", "parallel_tool_calls" },
    { "chat: a tool message's tool_call_id a number", CHAT,
      "{\"model\":\"base\",\"messages\":[{\"role\":\"tool\","
      "\"tool_call_id\":1,\"content\":\"x\"}]}",
      400, "invalid_type", "messages" },
    { "chat: an assistant's tool_calls an object", CHAT,
      "{\"model\":\"base\",\"messages\":[{\"role\":\"assistant\","
      "\"tool_calls\":{}}]}", 400, "invalid_type", "messages" },
    { "chat: a tool call without arguments", CHAT,
      "{\"model\":\"base\",\"messages\":[{\"role\":\"assistant\","
      "\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
      "\"function\":{\"name\":\"f\"}}]}]}",
      400, "invalid_type", "messages" },
    { "chat: a user's tool_calls", CHAT,
      "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
      "\"content\":\"x\",\"tool_calls\":[]}]}",
      400, "invalid_type", "messages" },
    { "chat: response_format json_schema without a schema", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}}}",
      400, "invalid_type", "response_format" },
    { "chat: response_format json_schema with a name not a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"json_schema\",\"json_schema\":{\"name\":1,"
      "\"schema\":{\"type\":\"object\"}}}}",
      400, "invalid_type", "response_format.json_schema.name" },
    { "chat: response_format json_schema the server cannot enforce", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\","
      "\"schema\":{\"type\":\"object\",\"properties\":{\"a\":"
      "{\"type\":\"string\",\"format\":\"email\",\"pattern\":\"(?=@)\"}}}}}}",
      400, "invalid_value", "response_format" },
    { "chat: response_format json_schema of a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\","
      "\"schema\":{\"type\":\"string\"}}}}",
      400, "invalid_value", "response_format" },
    { "chat: response_format json_schema without a name", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"json_schema\",\"json_schema\":{\"schema\":"
      "{\"type\":\"object\"}}}}",
      400, "missing_required_parameter",
      "response_format.json_schema.name" },
    { "chat: response_format json_schema without a name or a schema",
      CHAT, "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"json_schema\",\"json_schema\":{}}}",
      400, "missing_required_parameter",
      "response_format.json_schema.name" },
    { "chat: response_format json_schema without a schema", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}}}",
      400, "invalid_type", "response_format" },
    { "completions: response_format json_schema without a name", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"response_format\":"
      "{\"type\":\"json_schema\",\"json_schema\":{\"schema\":"
      "{\"type\":\"object\"}}}}",
      400, "missing_required_parameter",
      "response_format.json_schema.name" },
    { "chat: response_format without a type", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":{}}",
      400, "invalid_type", "response_format" },
    { "chat: response_format a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":\"json\"}",
      400, "invalid_type", "response_format" },
    { "chat: response_format type yaml", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"yaml\"}}",
      400, "invalid_value", "response_format" },
    { "logit_bias a list", CHAT,
      "{\"model\":\"base\"," MSGS ",\"logit_bias\":[1]}",
      400, "invalid_type", "logit_bias" },
    { "logit_bias key not a token id", CHAT,
      "{\"model\":\"base\"," MSGS ",\"logit_bias\":{\"hello\":1}}",
      400, "invalid_value", "logit_bias" },
    { "logit_bias key negative", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"logit_bias\":{\"-5\":1}}",
      400, "invalid_value", "logit_bias" },
    { "logit_bias key past int32", CHAT,
      "{\"model\":\"base\"," MSGS ",\"logit_bias\":{\"2147483648\":1}}",
      400, "invalid_value", "logit_bias" },
    { "logit_bias 100.5", CHAT,
      "{\"model\":\"base\"," MSGS ",\"logit_bias\":{\"5\":100.5}}",
      400, "invalid_value", "logit_bias" },
    { "logit_bias a string value", CHAT,
      "{\"model\":\"base\"," MSGS ",\"logit_bias\":{\"5\":\"1\"}}",
      400, "invalid_value", "logit_bias" },
    { "logit_bias one token twice", CHAT,
      "{\"model\":\"base\"," MSGS ",\"logit_bias\":{\"5\":1,\"05\":2}}",
      400, "invalid_value", "logit_bias" },
    { "completions: logprobs 6", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"logprobs\":6}",
      400, "invalid_value", "logprobs" },
    { "completions: logprobs true", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"logprobs\":true}",
      400, "invalid_type", "logprobs" },
    { "completions: top_logprobs 2", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"top_logprobs\":2}",
      400, "unsupported_parameter", "top_logprobs" },
    { "chat: echo a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"echo\":\"yes\"}",
      400, "invalid_type", "echo" },
    { "completions: echo a string", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"echo\":\"yes\"}",
      400, "invalid_type", "echo" },
    { "completions: max_tokens -1 with echo", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"echo\":true,"
      "\"max_tokens\":-1}",
      400, "invalid_value", "max_tokens" },
    { "chat: store true (no completion is kept)", CHAT,
      "{\"model\":\"base\"," MSGS ",\"store\":true}",
      400, "unsupported_parameter", "store" },
    { "completions: store true", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"store\":true}",
      400, "unsupported_parameter", "store" },
    { "completions: prediction (chat's alone)", COMP,
      "{\"model\":\"base\",\"prompt\":\"hi\",\"prediction\":"
      "{\"type\":\"content\",\"content\":\"x\"}}",
      400, "unsupported_parameter", "prediction" },
    { "chat: prediction a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"prediction\":\"x\"}",
      400, "invalid_value", "prediction" },
    { "chat: prediction of another type", CHAT,
      "{\"model\":\"base\"," MSGS ",\"prediction\":"
      "{\"type\":\"audio\",\"content\":\"x\"}}",
      400, "invalid_value", "prediction" },
    { "chat: prediction without content", CHAT,
      "{\"model\":\"base\"," MSGS ",\"prediction\":"
      "{\"type\":\"content\"}}",
      400, "invalid_value", "prediction" },
    { "chat: prediction content a number", CHAT,
      "{\"model\":\"base\"," MSGS ",\"prediction\":"
      "{\"type\":\"content\",\"content\":7}}",
      400, "invalid_value", "prediction" },
    { "chat: prediction parts not text", CHAT,
      "{\"model\":\"base\"," MSGS ",\"prediction\":"
      "{\"type\":\"content\",\"content\":[{\"type\":\"image_url\"}]}}",
      400, "invalid_type", "prediction" },
};


static void test_chat(void);
static void test_completion(void);
static void test_long_strings(void);
static void test_bad(void);
static void test_limits(void);
static const char *bias_body(int n, int allowed);


/* A chat body whose logit_bias (allowed: allowed_token_ids) names
 * tokens 0..n-1 (n <= 1000). */
static const char *
bias_body(int n, int allowed)
{
    int          k;
    char        *p;
    static char  body[16384];

    p = body + sprintf(body, "{\"model\":\"base\"," MSGS ",\"%s\":%s",
                       allowed ? "allowed_token_ids" : "logit_bias",
                       allowed ? "[" : "{");

    for (k = 0; k < n; k++) {
        p += sprintf(p, allowed ? "%s%d" : "%s\"%d\":1", k ? "," : "", k);
    }

    strcpy(p, allowed ? "]}" : "}}");

    return body;
}


static void
test_chat(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;
    slora_chat_msg_t   *m;

    rc = parse(CHAT,
               "{\"model\":\"ad-\\u00e9\",\"messages\":["
               "{\"role\":\"system\",\"content\":\"be brief\"},"
               "{\"role\":\"user\",\"content\":[{\"type\":\"text\","
               "\"text\":\"caf\xc3\xa9 \"},{\"type\":\"text\",\"text\":"
               "\"\\ud83d\\ude00\"}]},"
               "{\"role\":\"assistant\",\"content\":null},"
               "{\"role\":\"user\"}],"
               "\"max_completion_tokens\":7,\"temperature\":0,"
               "\"top_p\":0.5,\"top_k\":40,\"min_p\":0.05,\"seed\":-3,"
               "\"n\":3,\"min_tokens\":4,\"stop_token_ids\":[7042,0],"
               "\"stream\":true,\"stream_options\":{\"include_usage\":true},"
               "\"ignore_eos\":true,\"skip_special_tokens\":false,"
               "\"include_stop_str_in_output\":true,"
               "\"return_tokens_as_token_ids\":true,"
               "\"allowed_token_ids\":[5,7042,5],"
               "\"truncate_prompt_tokens\":-1,"
               "\"bad_words\":[\"  Paris\",\"caf\u00e9\"],"
               "\"frequency_penalty\":-2,"
               "\"presence_penalty\":2,\"repetition_penalty\":1.1,"
               "\"stop\":[\"\\n\\n\",\"\",\"END\"],\"user\":\"ignored\"}\r\n",
               &req, &err);

    is_int(rc, SLORA_OK, "chat: a full body parses");

    if (rc != SLORA_OK) {
        diag("%d %s", err.status, err.msg);
        slora_openai_req_free(&req);
        return;
    }

    is_int(req.kind, CHAT, "chat: kind");
    ok(streq(&req.model, "ad-\xc3\xa9"), "chat: model, \\u unescaped");
    is_int(req.n_msgs, 4, "chat: 4 messages");

    m = req.msgs;
    ok(m[0].role_len == 6 && memcmp(m[0].role, "system", 6) == 0
       && m[0].content_len == 8 && memcmp(m[0].content, "be brief", 8) == 0,
       "chat: system message");
    ok(m[1].role_len == 4 && m[1].content_len == 11
       && memcmp(m[1].content, "caf\xc3\xa9 \n\xf0\x9f\x98\x80", 11) == 0,
       "chat: text parts joined by a newline, surrogate pair joined");
    ok(m[2].role_len == 9 && m[2].content_len == 0,
       "chat: null content is empty");
    ok(m[3].content_len == 0 && m[3].content != NULL,
       "chat: absent content is empty");

    is_int(req.max_tokens, 7, "chat: max_completion_tokens");
    is_int(req.n, 3, "chat: n");
    ok(req.temperature == 0.0, "chat: temperature 0");
    ok(req.top_p == 0.5, "chat: top_p");
    ok(req.min_p == 0.05, "chat: min_p");
    ok(req.min_tokens == 4, "chat: min_tokens");
    ok(req.n_stop_ids == 2 && req.stop_ids[0] == 7042
       && req.stop_ids[1] == 0, "chat: stop_token_ids");
    is_int(req.top_k, 40, "chat: top_k");
    ok(req.has_seed && req.seed == (uint64_t) -3, "chat: seed -3");
    ok(req.stream && req.include_usage, "chat: stream, include_usage");
    ok(req.ignore_eos, "chat: ignore_eos");
    ok(req.show_special, "chat: skip_special_tokens false");
    ok(req.stop_in_output, "chat: include_stop_str_in_output");
    ok(req.tokens_as_ids, "chat: return_tokens_as_token_ids");
    ok(req.keep_last == -1, "chat: truncate_prompt_tokens -1, the "
       "context's worth");
    ok(req.n_bad_words == 2 && streq(&req.bad_words[0], "  Paris")
       && streq(&req.bad_words[1], "caf\xc3\xa9"),
       "chat: bad_words, as given");
    ok(req.n_allowed == 3 && req.allowed_ids[0] == 5
       && req.allowed_ids[1] == 7042 && req.allowed_ids[2] == 5,
       "chat: allowed_token_ids, as given");
    ok(req.frequency_penalty == -2.0 && req.presence_penalty == 2.0
       && req.repetition_penalty == 1.1,
       "chat: frequency, presence and repetition penalties, at their ends");
    is_int(req.n_stop, 2, "chat: the empty stop string is dropped");
    ok(streq(&req.stop[0], "\n\n") && streq(&req.stop[1], "END"),
       "chat: stop strings");

    slora_openai_req_free(&req);
    ok(req.arena == NULL, "chat: freed");

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS "}", &req, &err);
    is_int(rc, SLORA_OK, "chat: a minimal body parses");
    ok(req.max_tokens == -1 && req.temperature == 1.0 && req.top_p == 1.0
       && req.min_p == 0
       && req.top_k == 0 && !req.has_seed && !req.stream
       && !req.include_usage && req.n_stop == 0 && !req.ignore_eos
       && !req.show_special
       && req.frequency_penalty == 0 && req.presence_penalty == 0
       && req.repetition_penalty == 1.0 && req.n == 1,
       "chat: defaults");
    ok(req.n_prompts == 0, "chat: no prompt");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"top_k\":-1}", &req,
               &err);
    ok(rc == SLORA_OK && req.top_k == 0, "chat: top_k -1, vLLM's default: "
       "off, as 0 is");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS "}", &req, &err);
    ok(rc == SLORA_OK && !req.add_special && !req.no_special,
       "chat: the BOS is the template's by default, none added on top");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS
               ",\"add_special_tokens\":true}", &req, &err);
    ok(rc == SLORA_OK && req.add_special && !req.no_special,
       "chat: vLLM's add_special_tokens true, the tokenizer's BOS on top "
       "of the template's");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS
               ",\"add_special_tokens\":false}", &req, &err);
    ok(rc == SLORA_OK && !req.add_special && !req.no_special,
       "chat: add_special_tokens false, vLLM's default: the template's "
       "BOS alone");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS
               ",\"add_special_tokens\":\"true\"}", &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.code, "invalid_type") == 0
       && strcmp(err.param, "add_special_tokens") == 0,
       "chat: add_special_tokens not a boolean: %s", err.msg);
    slora_openai_req_free(&req);

    /* the neutral values of what is refused when asked for: clients send
     * them by default */
    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"logprobs\":false,"
               "\"top_logprobs\":0,\"tools\":[],\"tool_choice\":\"auto\","
               "\"functions\":null,\"function_call\":\"none\","
               "\"response_format\":{\"type\":\"text\"},\"logit_bias\":{},"
               "\"audio\":null,\"prediction\":null,\"store\":false}", &req,
               &err);
    is_int(rc, SLORA_OK, "chat: logprobs false, tools [], tool_choice "
           "auto, response_format text, logit_bias {}: accepted");
    ok(!req.json, "response_format text is not JSON mode");
    ok(req.prediction.data == NULL, "chat: prediction null is none");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"use_beam_search\":false,"
               "\"include_stop_str_in_output\":false,\"bad_words\":[],"
               "\"allowed_token_ids\":null,\"prompt_logprobs\":null,"
               "\"chat_template\":\"\",\"truncate_prompt_tokens\":null}",
               &req, &err);
    is_int(rc, SLORA_OK, "chat: vLLM's extensions at their "
           "neutral values: accepted");
    ok(!req.stop_in_output && !req.tokens_as_ids && req.n_allowed == 0
       && req.keep_last == 0 && req.n_bad_words == 0,
       "chat: include_stop_str_in_output false: the stop string cut off; "
       "no return_tokens_as_token_ids: tokens as their text; "
       "truncate_prompt_tokens null: the whole prompt");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"prediction\":"
               "{\"type\":\"content\",\"content\":\"def f(x):\"}}",
               &req, &err);
    ok(rc == SLORA_OK && req.prediction.len == 9
       && memcmp(req.prediction.data, "def f(x):", 9) == 0,
       "chat: prediction's content, a string");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"prediction\":"
               "{\"type\":\"content\",\"content\":[{\"type\":\"text\","
               "\"text\":\"def \"},{\"type\":\"text\",\"text\":\"f():\"}]}}",
               &req, &err);
    ok(rc == SLORA_OK && req.prediction.len == 9
       && memcmp(req.prediction.data, "def \nf():", 9) == 0,
       "chat: prediction's content, text parts joined by a newline");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"response_format\":"
               "{\"type\":\"json_object\"}}", &req, &err);
    ok(rc == SLORA_OK && req.json, "chat: response_format json_object is "
       "JSON mode");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"x\","
               "\"response_format\":{\"type\":\"json_object\"}}", &req,
               &err);
    ok(rc == SLORA_OK && req.json, "completions: so is it there");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"response_format\":"
               "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"c\","
               "\"strict\":true,\"schema\":{\"type\": \"object\", "
               "\"properties\": {\"a\": {\"type\": \"integer\", "
               "\"description\": \"\\u00e9\"}}}}}}", &req, &err);
    ok(rc == SLORA_OK && !req.json && req.schema.data != NULL
       && req.schema.len == strlen(req.schema.data)
       && strcmp(req.schema.data, "{\"type\":\"object\",\"properties\":"
                 "{\"a\":{\"type\":\"integer\",\"description\":"
                 "\"\xc3\xa9\"}}}") == 0,
       "chat: response_format json_schema: its schema, compact: %s",
       req.schema.data != NULL ? req.schema.data : "(none)");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"response_format\":"
               "{\"type\":\"json_schema\",\"json_schema\":{\"name\":"
               "\"x\",\"schema\":{\"type\":\"object\",\"properties\":"
               "{\"a\":{\"type\":\"string\",\"pattern\":\"(?=@)\"}}}}}}",
               &req, &err);
    ok(rc == SLORA_ERROR && strstr(err.msg, "pattern: lookahead is not "
                                   "supported at byte 2 (at "
                                   "#/properties/a)") != NULL,
       "a schema it cannot enforce: the keyword and where: %s", err.msg);
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"response_format\":"
               "null}", &req, &err);
    ok(rc == SLORA_OK && !req.json, "response_format null: not JSON mode");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"logit_bias\":"
               "{\"0\":-100,\"49151\":100,\"7\":0.5}}", &req, &err);
    ok(rc == SLORA_OK && req.n_logit_bias == 3
       && req.logit_bias_ids[0] == 0 && req.logit_bias[0] == -100.0f
       && req.logit_bias_ids[1] == 49151 && req.logit_bias[1] == 100.0f
       && req.logit_bias_ids[2] == 7 && req.logit_bias[2] == 0.5f,
       "logit_bias: three tokens, in order, at the ends of the range");
    slora_openai_req_free(&req);

    rc = parse(CHAT, bias_body(SLORA_OPENAI_MAX_BIAS, 0), &req, &err);
    ok(rc == SLORA_OK && req.n_logit_bias == SLORA_OPENAI_MAX_BIAS
       && req.logit_bias_ids[SLORA_OPENAI_MAX_BIAS - 1]
          == SLORA_OPENAI_MAX_BIAS - 1,
       "logit_bias: %d tokens accepted", SLORA_OPENAI_MAX_BIAS);
    slora_openai_req_free(&req);

    rc = parse(CHAT, bias_body(SLORA_OPENAI_MAX_BIAS + 1, 0), &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.param, "logit_bias") == 0
       && strcmp(err.msg, "logit_bias may name at most 300 tokens") == 0,
       "logit_bias: one more refused: %s", err.msg);
    slora_openai_req_free(&req);

    rc = parse(CHAT, bias_body(SLORA_OPENAI_MAX_ALLOWED, 1), &req, &err);
    ok(rc == SLORA_OK && req.n_allowed == SLORA_OPENAI_MAX_ALLOWED
       && req.allowed_ids[SLORA_OPENAI_MAX_ALLOWED - 1]
          == SLORA_OPENAI_MAX_ALLOWED - 1,
       "allowed_token_ids: %d tokens accepted", SLORA_OPENAI_MAX_ALLOWED);
    slora_openai_req_free(&req);

    rc = parse(CHAT, bias_body(SLORA_OPENAI_MAX_ALLOWED + 1, 1), &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.param, "allowed_token_ids") == 0,
       "allowed_token_ids: one more refused: %s", err.msg);
    slora_openai_req_free(&req);

    rc = parse(CHAT, bias_body(0, 1), &req, &err);
    ok(rc == SLORA_OK && req.n_allowed == 0,
       "allowed_token_ids []: any token");
    slora_openai_req_free(&req);

    /* chat's echo (vLLM's): the last message's text where its role is
     * the answer's */
    {
        size_t  i;

        static const struct {
            const char  *body;
            const char  *echo;      /* NULL: none */
            const char  *why;
        } echoes[] = {
            { "{\"model\":\"base\"," MSGS ",\"echo\":true}", NULL,
              "the last message a user's: nothing" },
            { "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
              "\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":"
              "\"Well,\"}],\"echo\":true}", "Well,",
              "the last an assistant's: its text" },
            { "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
              "\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":"
              "\"Well,\"}],\"echo\":false}", NULL, "echo false: nothing" },
            { "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
              "\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":"
              "[{\"type\":\"text\",\"text\":\"One\"},{\"type\":\"text\","
              "\"text\":\"two\"}]}],\"echo\":true,"
              "\"add_generation_prompt\":false,"
              "\"continue_final_message\":true}", "One\ntwo",
              "an assistant's parts, continued: joined by newlines" },
            { "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
              "\"content\":\"Paris is\"}],\"echo\":true,"
              "\"add_generation_prompt\":false}", "Paris is",
              "no generation prompt: the last message's whatever its role" },
            { "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
              "\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":"
              "null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
              "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}],"
              "\"echo\":true}", NULL, "an assistant's tool calls: nothing" },
        };

        for (i = 0; i < sizeof(echoes) / sizeof(echoes[0]); i++) {
            rc = parse(CHAT, echoes[i].body, &req, &err);
            ok(rc == SLORA_OK
               && (echoes[i].echo == NULL
                   ? req.chat_echo.data == NULL
                   : req.chat_echo.data != NULL
                     && req.chat_echo.len == strlen(echoes[i].echo)
                     && memcmp(req.chat_echo.data, echoes[i].echo,
                               req.chat_echo.len) == 0),
               "chat echo, %s: %s", echoes[i].why,
               rc == SLORA_OK ? "parsed" : err.msg);
            slora_openai_req_free(&req);
        }
    }

    /* a completion's echo: the prompt scored, max_tokens 0 with it */
    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\",\"echo\":true,"
               "\"logprobs\":1,\"max_tokens\":0}", &req, &err);
    ok(rc == SLORA_OK && req.echo && req.logprobs && req.top_logprobs == 1
       && req.max_tokens == 0, "completions: echo, logprobs 1, max_tokens 0");
    slora_openai_req_free(&req);
    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\",\"echo\":true}",
               &req, &err);
    ok(rc == SLORA_OK && req.echo && !req.logprobs && req.max_tokens == -1,
       "completions: echo alone");
    slora_openai_req_free(&req);
    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\",\"echo\":false,"
               "\"max_tokens\":0}", &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.param, "max_tokens") == 0
       && strcmp(err.msg, "max_tokens must be at least 1 (0 only with "
                 "echo or prompt_logprobs)") == 0,
       "completions: max_tokens 0 without echo: %s", err.msg);
    slora_openai_req_free(&req);

    /* log-probabilities: chat's flag and alternatives, a completion's
     * count */
    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"logprobs\":true,"
               "\"top_logprobs\":20}", &req, &err);
    ok(rc == SLORA_OK && req.logprobs && req.top_logprobs == 20,
       "chat: logprobs true, top_logprobs 20");
    slora_openai_req_free(&req);
    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"logprobs\":true}",
               &req, &err);
    ok(rc == SLORA_OK && req.logprobs && req.top_logprobs == 0,
       "chat: logprobs true alone: no alternatives");
    slora_openai_req_free(&req);
    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"logprobs\":false,"
               "\"top_logprobs\":0}", &req, &err);
    ok(rc == SLORA_OK && !req.logprobs, "chat: logprobs false, top 0: none");
    slora_openai_req_free(&req);
    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\",\"logprobs\":5}",
               &req, &err);
    ok(rc == SLORA_OK && req.logprobs && req.top_logprobs == 5,
       "completions: logprobs 5: the token's and 5 alternatives");
    slora_openai_req_free(&req);
    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\",\"logprobs\":0}",
               &req, &err);
    ok(rc == SLORA_OK && req.logprobs && req.top_logprobs == 0,
       "completions: logprobs 0: the token's alone");
    slora_openai_req_free(&req);
    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\"}", &req, &err);
    ok(rc == SLORA_OK && !req.logprobs, "completions: no logprobs: none");
    slora_openai_req_free(&req);
    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"logprobs\":true,"
               "\"top_logprobs\":5}", &req, &err);
    ok(rc == SLORA_OK && req.top_logprobs == 5,
       "chat: top_logprobs 5 within the default limit");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS
               ",\"seed\":9223372036854775807,\"max_tokens\":null,"
               "\"max_completion_tokens\":3,\"stream\":null,\"stop\":null}",
               &req, &err);
    is_int(rc, SLORA_OK, "chat: seed 2^63 - 1, nulls");
    ok(req.seed == (uint64_t) 1 << 63, "chat: a seed that rounds to 2^63"
       " keeps its 64 bits");
    is_int(req.max_tokens, 3, "chat: max_tokens null falls back to"
           " max_completion_tokens");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\",\"messages\":[{\"role\":"
               "\"developer\",\"content\":\"be brief\"},{\"role\":"
               "\"user\",\"content\":\"hi\"}]}", &req, &err);
    ok(rc == SLORA_OK && req.n_msgs == 2 && req.msgs[0].role_len == 6
       && memcmp(req.msgs[0].role, "system", 6) == 0,
       "chat: a developer message is a system one");
    is_int(req.chat_flags, SLORA_CHAT_GEN_PROMPT, "chat: by default the "
           "generation prompt, nothing continued");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\",\"messages\":[{\"role\":"
               "\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
               "\"content\":\"Hel\"}],\"continue_final_message\":true,"
               "\"add_generation_prompt\":false}", &req, &err);
    ok(rc == SLORA_OK && req.chat_flags == SLORA_CHAT_CONTINUE,
       "chat: continue_final_message with add_generation_prompt false: the "
       "last message continued, no prompt (%s)", err.msg);
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS
               ",\"add_generation_prompt\":false,"
               "\"continue_final_message\":null}", &req, &err);
    ok(rc == SLORA_OK && req.chat_flags == 0,
       "chat: add_generation_prompt false alone: neither");
    slora_openai_req_free(&req);
}


static void
test_completion(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    rc = parse(COMP, "  {\"model\":\"base\",\"prompt\":[\"Once upon\"],"
               "\"max_tokens\":2147483647,\"stop\":\"\\u0041B\","
               "\"stream\":false,\"messages\":5}\n", &req, &err);

    is_int(rc, SLORA_OK, "completion: parses (messages ignored)");
    is_int(req.kind, COMP, "completion: kind");
    ok(req.n_prompts == 1 && streq(&req.prompts[0].text, "Once upon"),
       "completion: one-element prompt array");
    ok(req.msgs == NULL && req.n_msgs == 0, "completion: no messages");
    is_int(req.max_tokens, 2147483647, "completion: max_tokens 2^31 - 1");
    ok(req.n_stop == 1 && streq(&req.stop[0], "AB"), "completion: stop"
       " string");
    ok(!req.stream, "completion: stream false");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\",\"stop\":\"\"}",
               &req, &err);
    ok(rc == SLORA_OK && req.n_stop == 0,
       "completion: an empty stop string is no stop");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"\"}", &req, &err);
    is_int(rc, SLORA_OK, "completion: an empty prompt parses (the handler"
           " refuses it after tokenizing)");
    ok(streq(&req.prompts[0].text, ""), "completion: empty prompt");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":[\"a\",\"bc\",\"d\"],"
               "\"n\":5}", &req, &err);
    ok(rc == SLORA_OK && req.n_prompts == 3 && req.n == 5
       && streq(&req.prompts[0].text, "a")
       && streq(&req.prompts[1].text, "bc")
       && streq(&req.prompts[2].text, "d"),
       "completion: three prompts, in order, 15 choices");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":[1,0,2147483647]}",
               &req, &err);
    ok(rc == SLORA_OK && req.n_prompts == 1
       && req.prompts[0].text.data == NULL && req.prompts[0].n_ids == 3
       && req.prompts[0].ids[0] == 1 && req.prompts[0].ids[1] == 0
       && req.prompts[0].ids[2] == 2147483647,
       "completion: a prompt of token ids");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"x\"}", &req, &err);
    ok(rc == SLORA_OK && !req.no_special,
       "completion: a text prompt has its BOS by default");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"x\","
               "\"add_special_tokens\":false}", &req, &err);
    ok(rc == SLORA_OK && req.no_special,
       "completion: vLLM's add_special_tokens false, no BOS");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"x\","
               "\"add_special_tokens\":true}", &req, &err);
    ok(rc == SLORA_OK && !req.no_special && !req.add_special,
       "completion: add_special_tokens true, its default: one BOS, not "
       "a chat's second");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"x\","
               "\"add_special_tokens\":0}", &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.code, "invalid_type") == 0
       && strcmp(err.param, "add_special_tokens") == 0,
       "completion: add_special_tokens not a boolean: %s", err.msg);
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":[[5,6],\"x\",[7]]}",
               &req, &err);
    ok(rc == SLORA_OK && req.n_prompts == 3 && req.prompts[0].n_ids == 2
       && req.prompts[0].ids[1] == 6 && streq(&req.prompts[1].text, "x")
       && req.prompts[2].n_ids == 1 && req.prompts[2].ids[0] == 7,
       "completion: token arrays and text, one prompt each");
    slora_openai_req_free(&req);
}


static void
test_bad(void)
{
    int                 rc;
    size_t              i;
    slora_openai_req_t  req;
    slora_openai_err_t  err;
    const bad_case_t   *c;

    for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        c = &bad_cases[i];
        refused_as(c->name, c->kind, c->body, c->status, c->code, c->param);
    }

    /* the messages the handler sends, word for word */

    rc = parse(CHAT, "", &req, &err);
    is_str(err.msg, "The request body is empty; send a JSON object",
           "message: empty body");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"max_tokens\":0}", &req,
               &err);
    is_str(err.msg, "max_tokens must be an integer from 1 to 2147483647",
           "message: max_tokens range");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"seed\":1.5}", &req,
               &err);
    is_str(err.msg, "seed must be an integer from -9223372036854775808 to"
           " 9223372036854775807", "message: seed range");
    slora_openai_req_free(&req);

    /* a message quoting the client's text stays one line of UTF-8, cut
     * where a character ends */
    {
        char    body[2048], *p;
        size_t  k;

        p = body + sprintf(body, "{\"model\":\"base\"," MSGS
                           ",\"response_format\":{\"type\":\"json_schema\","
                           "\"json_schema\":{\"name\":\"x\",\"schema\":"
                           "{\"type\":\"object\","
                           "\"properties\":{\"a\":{\"type\":\"x\\ny\\u0001z ");

        for (k = 0; k < 200; k++) {
            p += sprintf(p, "\xc3\xa9");
        }

        sprintf(p, "\"}}}}}}");
        rc = parse(CHAT, body, &req, &err);
        ok(rc == SLORA_ERROR && strchr(err.msg, '\n') == NULL
           && strchr(err.msg, '\x01') == NULL
           && strstr(err.msg, "type \"x y z ") != NULL
           && err.len == strlen(err.msg)
           && slora_utf8_text_valid(err.msg, err.len),
           "message: the client's newline and control byte blanks, cut "
           "on a character: %zu bytes", err.len);
        slora_openai_req_free(&req);
    }

    rc = parse(CHAT, "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"hi\"},{\"role\":\"bot\"}]}", &req, &err);
    is_str(err.msg, "messages[1].role must be system, developer, user, "
           "assistant or tool", "message: the message's index");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"response_format\":"
               "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}}}",
               &req, &err);
    is_str(err.msg, "response_format.json_schema.schema must be an object",
           "message: a json_schema without its schema");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"stop\":[1,2,3,4,5]}",
               &req, &err);
    is_str(err.msg, "stop must be a string or an array of up to 4 strings",
           "message: stop");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"presence_penalty\":3}",
               &req, &err);
    is_str(err.msg, "presence_penalty must be a number from -2 to 2",
           "message: presence_penalty range");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS
               ",\"repetition_penalty\":-1}", &req, &err);
    is_str(err.msg, "repetition_penalty must be a number above 0 and at"
           " most 100",
           "message: repetition_penalty range");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"n\":17}", &req, &err);
    is_str(err.msg, "n must be an integer from 1 to 16", "message: n");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"a\xff\"}", &req, &err);
    ok(rc == SLORA_ERROR && err.param == NULL
       && strcmp(err.code, "invalid_utf8") == 0
       && strcmp(err.msg, "The request body is not valid UTF-8") == 0,
       "invalid UTF-8 anywhere in the body: refused before JSON");
    slora_openai_req_free(&req);

    rc = slora_openai_parse("{\"model\":\"base\",\"prompt\":\"a\0b\"}", 30,
                            COMP, NULL, &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.code, "invalid_utf8") == 0,
       "a NUL byte in the body is refused");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"a\\u0000b\"}", &req,
               &err);
    ok(rc == SLORA_ERROR && strcmp(err.code, "invalid_value") == 0
       && strstr(err.msg, "NUL character (\\u0000) in a string, at byte "
                 "27") != NULL,
       "an escaped NUL in a string is refused, not read as the string's "
       "end: %s", err.msg);
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"a\\\\u0000b\"}",
               &req, &err);
    ok(rc == SLORA_OK && streq(&req.prompts[0].text, "a\\u0000b"),
       "an escaped backslash before u0000 is text");
    slora_openai_req_free(&req);
}


static void
test_limits(void)
{
    int                    rc;
    slora_openai_req_t     req;
    slora_openai_err_t     err;
    slora_openai_limits_t  lim;
    const char            *body;

    lim = slora_openai_default_limits;
    lim.max_stops = 1;
    lim.max_tokens = 16;
    lim.max_top_logprobs = 2;
    lim.model_optional = 0;
    memset(&err, 0, sizeof(err));

    body = "{\"model\":\"base\"," MSGS ",\"max_tokens\":17}";
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.param, "max_tokens") == 0
       && strcmp(err.msg, "max_tokens must be an integer from 1 to 16") == 0,
       "limits: max_tokens above lim");
    slora_openai_req_free(&req);

    body = "{\"model\":\"base\"," MSGS ",\"max_tokens\":16,\"stop\":[\"a\"]}";
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_OK && req.max_tokens == 16 && req.n_stop == 1,
       "limits: at the limits");
    slora_openai_req_free(&req);

    body = "{\"model\":\"base\"," MSGS ",\"stop\":[\"a\",\"b\"]}";
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.param, "stop") == 0
       && strstr(err.msg, "up to 1 strings") != NULL,
       "limits: more stops than lim");
    slora_openai_req_free(&req);

    /* a stop of 1024 bytes is taken, one of 1025 (alone, or in a list)
     * refused: the worker scans for each at every token */
    {
        char         big[1200];
        const char  *form[] = { "{\"model\":\"base\"," MSGS ",\"stop\":\"%s\"}",
                                "{\"model\":\"base\"," MSGS
                                ",\"stop\":[\"%s\"]}" };
        char         buf[1400];
        size_t       f, len;

        for (f = 0; f < 2; f++) {
            for (len = 1024; len <= 1025; len++) {
                memset(big, 'z', len);
                big[len] = '\0';
                snprintf(buf, sizeof(buf), form[f], big);
                memset(&err, 0, sizeof(err));
                rc = slora_openai_parse(buf, strlen(buf), CHAT, &lim, &req,
                                        &err);
                ok(len == 1024
                   ? rc == SLORA_OK && req.n_stop == 1
                     && req.stop[0].len == 1024
                   : rc == SLORA_ERROR && strcmp(err.param, "stop") == 0
                     && strstr(err.msg, "1024 bytes") != NULL,
                   "limits: a stop of %zu bytes%s: %s", len,
                   f ? " in a list" : "", rc == SLORA_OK ? "taken"
                                                         : err.msg);
                slora_openai_req_free(&req);
            }
        }
    }

    body = "{\"model\":\"base\"," MSGS ",\"logprobs\":true,\"top_logprobs\":3}";
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.param, "top_logprobs") == 0
       && strcmp(err.msg, "top_logprobs must be an integer from 0 to 2") == 0,
       "limits: top_logprobs above lim");
    slora_openai_req_free(&req);

    /* chat echo under a template that writes an assistant's think block
     * back (Qwen3's), which rewrites the message: its own text still,
     * blanks and all */
    lim.chat_flags |= SLORA_CHAT_THINK_TURNS;
    body = "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
           "\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":"
           "\"  Well,\"}],\"echo\":true}";
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_OK && req.chat_echo.len == 7
       && memcmp(req.chat_echo.data, "  Well,", 7) == 0
       && (req.chat_flags & SLORA_CHAT_THINK_TURNS),
       "chat echo, think blocks written back: the message's own text: %s",
       rc == SLORA_OK ? "parsed" : err.msg);
    slora_openai_req_free(&req);
    lim.chat_flags &= ~SLORA_CHAT_THINK_TURNS;

    /* chat_template_kwargs: enable_thinking false is Qwen3's empty think
     * block where the template reads it, nothing where it does not */
    body = "{\"model\":\"base\"," MSGS ",\"chat_template_kwargs\":"
           "{\"enable_thinking\":false}}";
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_OK && req.chat_flags == SLORA_CHAT_GEN_PROMPT,
       "chat_template_kwargs: enable_thinking false, a template without it: "
       "nothing");
    slora_openai_req_free(&req);
    lim.think = 1;
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_OK
       && req.chat_flags == (SLORA_CHAT_GEN_PROMPT | SLORA_CHAT_NO_THINK),
       "chat_template_kwargs: enable_thinking false, Qwen3's template: the "
       "empty think block");
    slora_openai_req_free(&req);
    body = "{\"model\":\"base\"," MSGS ",\"chat_template_kwargs\":"
           "{\"enable_thinking\":true}}";
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_OK && req.chat_flags == SLORA_CHAT_GEN_PROMPT,
       "chat_template_kwargs: enable_thinking true: as without");
    slora_openai_req_free(&req);
    body = "{\"model\":\"base\"," MSGS ",\"chat_template_kwargs\":"
           "{\"enable_thinking\":false,\"custom\":1}}";
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.code, "unsupported_parameter") == 0
       && strstr(err.msg, "chat_template_kwargs.custom") != NULL,
       "chat_template_kwargs: another variable is a 400 (%s)", err.msg);
    slora_openai_req_free(&req);
    body = "{\"model\":\"base\"," MSGS ",\"chat_template_kwargs\":"
           "{\"enable_thinking\":\"no\"}}";
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.code, "invalid_type") == 0,
       "chat_template_kwargs: enable_thinking a string is a 400");
    slora_openai_req_free(&req);
    body = "{\"model\":\"base\"," MSGS ",\"chat_template_kwargs\":[1]}";
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.param, "chat_template_kwargs") == 0,
       "chat_template_kwargs: not an object is a 400");
    slora_openai_req_free(&req);
    lim.think = 0;

    body = "{\"model\":\"base\",\"prompt\":\"x\",\"logprobs\":3}";
    rc = slora_openai_parse(body, strlen(body), COMP, &lim, &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.param, "logprobs") == 0
       && strcmp(err.msg, "logprobs must be an integer from 0 to 2") == 0,
       "limits: a completion's logprobs above lim");
    slora_openai_req_free(&req);

    body = "{\"model\":\"base\",\"prompt\":\"x\",\"logprobs\":2}";
    rc = slora_openai_parse(body, strlen(body), COMP, &lim, &req, &err);
    ok(rc == SLORA_OK && req.logprobs && req.top_logprobs == 2,
       "limits: a completion's logprobs at lim");
    slora_openai_req_free(&req);

    body = "{" MSGS "}";
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.param, "model") == 0,
       "limits: model required");
    slora_openai_req_free(&req);

    /* under a tenant: no model (or null) is the tenant's default */
    lim.model_optional = 1;
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_OK && req.model.len == 7
       && memcmp(req.model.data, "default", 7) == 0 && req.n_msgs == 1,
       "limits: model optional: absent reads as \"default\"");
    slora_openai_req_free(&req);

    body = "{\"model\":null," MSGS "}";
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_OK && req.model.len == 7, "limits: model optional: null");
    slora_openai_req_free(&req);

    body = "{\"model\":\"a1\"," MSGS "}";
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_OK && req.model.len == 2, "limits: model optional: given");
    slora_openai_req_free(&req);

    body = "{\"model\":7," MSGS "}";
    rc = slora_openai_parse(body, strlen(body), CHAT, &lim, &req, &err);
    ok(rc == SLORA_ERROR && strcmp(err.param, "model") == 0,
       "limits: model optional: still a string");
    slora_openai_req_free(&req);
}


int
main(void)
{
    test_chat();
    test_completion();
    test_long_strings();
    test_bad();
    test_limits();

    return done_testing();
}


/*
 * Strings that outgrow the request's first 4096-byte arena block, and
 * one that fills the rest of a block only partly: each copied whole
 * (make asan sees an overrun of a block).
 */
static void
test_long_strings(void)
{
    int                  rc, i, good;
    char                *body, *p;
    size_t               lens[3] = { 2000, 3000, 5000 };
    slora_openai_req_t   req;
    slora_openai_err_t   err;

    body = malloc(16384);
    if (body == NULL) {
        BAIL_OUT("out of memory");
    }

    p = body + sprintf(body, "{\"model\":\"base\",\"messages\":[");
    for (i = 0; i < 3; i++) {
        p += sprintf(p, "%s{\"role\":\"user\",\"content\":\"", i ? "," : "");
        memset(p, 'a' + i, lens[i]);
        p += lens[i];
        p += sprintf(p, "\"}");
    }
    sprintf(p, "]}");

    rc = parse(CHAT, body, &req, &err);

    good = rc == SLORA_OK && req.n_msgs == 3;
    for (i = 0; good && i < 3; i++) {
        good = req.msgs[i].content_len == lens[i]
               && req.msgs[i].content[0] == 'a' + i
               && req.msgs[i].content[lens[i] - 1] == 'a' + i
               && req.msgs[i].content[lens[i]] == '\0'
               && strspn(req.msgs[i].content, i == 0 ? "a" : i == 1 ? "b"
                                                     : "c") == lens[i];
    }
    ok(good, "chat: messages of 2000, 3000 and 5000 bytes copied whole");

    slora_openai_req_free(&req);
    free(body);
}
