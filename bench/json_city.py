"""json_city.py: the JSON schema of a city that bench/chat-stream.py and
bench/json-blanks.py ask for (response_format json_schema): five keys in
order, a bounded string, an integer, a boolean, an enum and a short list
of bounded strings."""

CITY = {"type": "object", "required": ["name", "population", "coastal",
                                       "size", "districts"],
        "properties": {
            "name": {"type": "string", "maxLength": 24},
            "population": {"type": "integer"},
            "coastal": {"type": "boolean"},
            "size": {"enum": ["small", "large"]},
            "districts": {"type": "array", "minItems": 1, "maxItems": 3,
                          "items": {"type": "string", "maxLength": 16}}}}
