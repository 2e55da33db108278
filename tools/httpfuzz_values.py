# tools/httpfuzz_values.py: what tools/httpfuzz puts into requests: numbers
# past every range, strings a parser or a tokenizer may trip on, raw bytes
# that are no UTF-8, the fields each endpoint takes and messages and
# Responses inputs of every shape. Data only.

BAD_NUMBERS = ['-1', '0', '1e308', '-1e308', '1e400', '-1e400', '1e-400',
               '9223372036854775807', '9223372036854775808',
               '-9223372036854775809', '18446744073709551616',
               '4294967296', '2147483648', '-2147483649', '65536',
               '1.5', '-0', '-0.0', '0.0000001', '3.4e38', '1e39',
               '100000000000000000000000000000000000000000', '2e9',
               '0e0', '1E+2', '-1e-7', '17', '16', '257', '255', '300',
               '49152', '49151', '100000']
BAD_STRINGS = ['', ' ', '\\ud800', '\\udc00', '\\ud800\\ud800',
               '\\udbff\\udfff', '\\u0000', 'a\\u0000b', '\\uffff',
               '\\ufffe', '\\u001f', '\\"', '\\\\', '%s', '%n%n%n',
               '<|im_end|>', '<|im_start|>', '</s>', '<think>',
               '[INST]', '{{x}}', '\\n\\n\\n', 'base', 'ad0', 'ad1',
               '../../etc/passwd', '/', '.', '..', 'resp_', 'conv_',
               'x' * 1100, 'y' * 70000]
RAW_BYTES = [b'\xff', b'\xfe', b'\xc0\xaf', b'\xed\xa0\x80',
             b'\xf4\x90\x80\x80',
             b'\xe2\x82', b'\x00', b'\x01', b'\x1f', b'\x7f', b'\xc3',
             b'\xf0\x9f\x98', b'\x80']

FIELDS = {
    'model': ['"base"', '"ad0"', '"nosuch"', '"SmolLM2"', '""'],
    'max_tokens': ['1', '4', '32', '0', '33'],
    'max_completion_tokens': ['2', '0'],
    'max_output_tokens': ['2', '16', '0'],
    'temperature': ['0', '0.7', '2', '2.0000001', '1e-6'],
    'top_p': ['0.5', '1', '0', '1.01', '1e-30'],
    'top_k': ['0', '1', '40', '50000', '100000000'],
    'min_p': ['0', '0.5', '1', '1.5'],
    'seed': ['1', '-1', '0', '4294967295', '18446744073709551615'],
    'n': ['1', '2', '8', '9', '16', '17'],
    'stop': ['"."', '["a","b"]', '["","x"]', '["1","2","3","4","5"]',
             '"\\ufffd"', '"' + 'z' * 1025 + '"', '[null]', '[1]'],
    'stream': ['true', 'false'],
    'stream_options': ['{"include_usage":true}', '{"include_usage":1}',
                       '{}', '[]',
                       '{"include_usage":true,"continuous_usage_stats":true}',
                       '{"continuous_usage_stats":true}'],
    'logprobs': ['true', '5', '6', '0', 'false'],
    'top_logprobs': ['0', '1', '5', '6', '20'],
    'echo': ['true', 'false'],
    'logit_bias': ['{"1":100}', '{"0":-100,"2":50}', '{"abc":1}',
                   '{"-1":1}', '{"99999999":1}', '{"1":101}',
                   '{"1":1,"1":2}', '{"1":"x"}', '{"01":1}', '{"":1}',
                   '{"1e2":1}', '{"4294967297":1}'],
    'frequency_penalty': ['0', '2', '-2', '2.1'],
    'presence_penalty': ['1', '-2.5'],
    'repetition_penalty': ['1', '100', '0', '100.1', '-1'],
    'stop_token_ids': ['[1,2]', '[]', '[-1]', '[49152]', '[' + ','.join(
        ['1'] * 17) + ']'],
    'min_tokens': ['0', '2', '32', '33', '-1'],
    'ignore_eos': ['true', 'false'],
    'include_stop_str_in_output': ['true', 'false', '1', 'null'],
    'return_tokens_as_token_ids': ['true', 'false', '"1"', 'null'],
    'bad_words': ['["Paris"]', '["a","b"]', '[""]', '"x"', '[1]', 'null',
                  '[" \\t "]', '["q q q q q q q q q q q q q q q q q q q q q"]'],
    'truncate_prompt_tokens': ['1', '3', '-1', '0', '-2', '"4"', 'null',
                               '100000'],
    'allowed_token_ids': ['[]', '[0]', '[1,2,3]', '[49152]', '[-1]',
                          '{"1":1}', 'null', '[2]'],
    'return_token_strs': ['true', 'false', '"yes"', 'null'],
    'prompt_logprobs': ['0', '1', '5', '20', '21', '-1', '1.5', '"2"',
                        'null'],
    'return_token_ids': ['true', 'false', '1', 'null'],
    'priority': ['0', '1', '-3', 'null', '"high"', '1e9'],
    'cache_salt': ['"s-1a2b3c"', '"s-1a2b3c"', '""', '42', 'null',
                   '"\\u00e9t\\u00e9"', '"' + 'x' * 5000 + '"'],
    'response_format': [
        '{"type":"json_object"}', '{"type":"text"}', 'null',
        '{"type":"json_schema","json_schema":{"name":"x","schema":'
        '{"type":"object","properties":{"a":{"type":"integer","minimum":0,'
        '"maximum":9}},"required":["a"]}}}',
        '{"type":"json_schema","json_schema":{"name":"x","schema":'
        '{"type":"object","properties":{"s":{"type":"string","pattern":'
        '"^[a-c]{2,3}$"}},"required":["s"]}}}',
        '{"type":"json_schema","json_schema":{"name":"x","schema":'
        '{"$ref":"#"}}}',
        '{"type":"json_schema","json_schema":{"name":"x","schema":'
        '{"type":"array","items":{"$ref":"#/$defs/n"},"$defs":{"n":'
        '{"type":"number","exclusiveMinimum":-1e308}},"maxItems":3}}}',
        '{"type":"json_schema","json_schema":{"name":"x","schema":'
        '{"type":"object","properties":{"e":{"enum":[1,"a",null,'
        '9007199254740993]}}}}}',
        '{"type":"json_schema","json_schema":{"name":"x","schema":'
        '{"type":"object","properties":{"d":{"type":"string","format":'
        '"date-time"},"u":{"type":"string","format":"uuid"}}}}}',
        '{"type":"json_schema","json_schema":{"name":"x","schema":'
        '{"anyOf":[{"type":"object"},{"type":"array"}]}}}',
        '{"type":"json_schema","json_schema":{"name":"x","schema":'
        '{"type":"object","properties":{"s":{"type":"string",'
        '"minLength":5,"maxLength":2}}}}}',
        '{"type":"json_schema","json_schema":{"name":"x","schema":'
        '{"type":"object","properties":{"s":{"type":"integer",'
        '"minimum":10,"maximum":2}}}}}',
        '{"type":"json_schema","json_schema":{"name":"x","schema":'
        '{"type":"object","properties":{"s":{"type":"string",'
        '"pattern":"(a|b)*{1,1000}"}}}}}',
        '{"type":"json_schema"}', '{"type":"json_schema","json_schema":1}',
        '{"type":"bogus"}', '{}', '"json_object"'],
    'guided_json': ['{"type":"object"}', '"{\\"type\\":\\"object\\"}"',
                    '"{"', '{"type":"string"}'],
    'guided_regex': ['"[0-9]+"', '"(a|b){3}"', '"a{0}"', '""', '"(?P<x>a)"',
                     '"\\\\A[xy]\\\\Z"', '"(a"', '"\\\\1"', '"[z-a]"',
                     '"a{99999}"', '"(((((((((((a)))))))))))*"',
                     '"[^\\\\x00-\\\\x{10FFFF}]"', '"\\\\p{L}"',
                     '".{1,1000}.{1,1000}"', '"a{2,1}"', '"[\\\\ud800]"'],
    'guided_choice': ['["yes","no"]', '["yes","yes please"]', '[]',
                      '[""]', '["a","a"]', '[1]', '["\\u0000"]'],
    'tools': [
        '[{"type":"function","function":{"name":"f","parameters":'
        '{"type":"object","properties":{"x":{"type":"string"}}}}}]',
        '[{"type":"function","function":{"name":"f"}}]',
        '[{"type":"function","function":{"name":""}}]',
        '[{"type":"function","function":{"name":"a b"}}]',
        '[{"type":"function","function":{"name":"f","parameters":'
        '{"type":"string"}}}]',
        '[{"type":"function","function":{"name":"f"}},'
        '{"type":"function","function":{"name":"f"}}]',
        '[{"type":"function","name":"g","parameters":{"type":"object"}}]',
        '[{"type":"web_search"}]', '[]', '{}', '[null]'],
    'tool_choice': ['"auto"', '"none"', '"required"', '"bogus"',
                    '{"type":"function","function":{"name":"f"}}',
                    '{"type":"function","function":{"name":"zz"}}',
                    '{"type":"function","name":"f"}', '{}'],
    'parallel_tool_calls': ['true', 'false'],
    'prediction': ['{"type":"content","content":"hello hello"}',
                   '{"type":"content","content":[{"type":"text",'
                   '"text":"x"}]}', '{"type":"content"}',
                   '{"type":"bogus","content":"x"}',
                   '{"type":"content","content":"' + 'w ' * 600 + '"}'],
    'chat_template_kwargs': ['{"enable_thinking":false}', '{"x":1}',
                             '{"enable_thinking":"no"}'],
    'add_generation_prompt': ['true', 'false'],
    'continue_final_message': ['true', 'false'],
    'best_of': ['1', '2'],
    'suffix': ['"x"', '""'],
    'functions': ['[]', '[{"name":"f"}]'],
    'function_call': ['"none"', '"auto"', '{"name":"f"}'],
    'audio': ['null', '{"voice":"x"}'],
    'store': ['true', 'false'],
    'user': ['"u"'],
    'metadata': ['{"a":"b"}', '{"' + 'k' * 65 + '":"v"}',
                 '{' + ','.join('"k%d":"v"' % i for i in range(17)) + '}',
                 '{"a":1}', '[]'],
    'background': ['true', 'false'],
    'truncation': ['"auto"', '"disabled"', '"x"'],
    'include': ['["message.output_text.logprobs"]', '["x"]', '"x"'],
    'instructions': ['"be brief"', 'null', '1'],
    'previous_response_id': ['"resp_x"', '""', 'null'],
    'conversation': ['"conv_x"', '{"id":"conv_x"}', '{}'],
    'text': ['{"format":{"type":"text"}}',
             '{"format":{"type":"json_object"}}',
             '{"format":{"type":"json_schema","name":"x","schema":'
             '{"type":"object"}}}', '{"verbosity":"high"}',
             '{"format":{"type":"json_schema"}}'],
    'reasoning': ['{"effort":"high"}', 'null', '{}'],
    'max_tool_calls': ['1'],
    'prompt': ['"hi"', '["a","b"]', '[1,2,3]', '[[1,2],[3]]', '[]', '[[]]',
               '[49152]', '[-1]', '[[1],"a"]', '[' + ','.join(
                   ['"p"'] * 17) + ']'],
    'tokens': ['[1,2,3]', '[]', '[-1]', '[49152]', '[1.5]', '["a"]'],
    'items': ['[]', '[{"type":"message","role":"user","content":"x"}]'],
}

MESSAGES = [
    '[{"role":"user","content":"hi"}]',
    '[{"role":"system","content":"s"},{"role":"user","content":"hi"}]',
    '[{"role":"developer","content":"d"},{"role":"user","content":'
    '[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]',
    '[{"role":"user","content":"w"},{"role":"assistant","content":null,'
    '"tool_calls":[{"id":"call_123456789","type":"function","function":'
    '{"name":"f","arguments":"{\\"x\\":1}"}}]},{"role":"tool",'
    '"tool_call_id":"call_123456789","content":"r"}]',
    '[{"role":"user","content":"w"},{"role":"assistant","content":"pre"}]',
    '[{"role":"user","content":"w"},{"role":"assistant","tool_calls":'
    '[{"id":"c","type":"function","function":{"name":"f","arguments":'
    '{"x":1}}}]}]',
    '[{"role":"bogus","content":"x"}]', '[{"role":"user"}]',
    '[{"role":"user","content":[{"type":"image_url"}]}]',
    '[{"role":"tool","content":"x"}]',
    '[{"role":"user","content":[]}]',
    '[{"role":"assistant","tool_calls":[{"id":"call_1","type":"function",'
    '"function":{"name":"f","arguments":"not json"}}]}]',
]

RESP_INPUTS = [
    '"hi"',
    '[{"role":"user","content":"hi"}]',
    '[{"type":"message","role":"user","content":[{"type":"input_text",'
    '"text":"a"}]}]',
    '[{"role":"user","content":"w"},{"type":"function_call","call_id":'
    '"c1","name":"f","arguments":"{}"},{"type":"function_call_output",'
    '"call_id":"c1","output":"r"}]',
    '[{"type":"reasoning","summary":[]},{"role":"user","content":"x"}]',
    '[{"type":"function_call_output","call_id":"zz","output":"r"}]',
    '[{"type":"input_image"}]', '[]', '[{"role":"assistant","content":'
    '[{"type":"output_text","text":"o"}]}]',
]
