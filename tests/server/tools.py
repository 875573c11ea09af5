"""The function tool the tool-call and Responses tests call, in both APIs' shapes."""

PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}},
    "required": ["city"],
    "additionalProperties": False,
}
# strict: the arguments follow the schema (vLLM pins them, as OpenAI's strict means), which is
# what makes a random tiny model's forced calls valid; the agents SDK marks its tools so too.
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": PARAMETERS,
        "strict": True,
    },
}
LOOSE_WEATHER = {"type": "function", "function": {k: v for k, v in WEATHER["function"].items() if k != "strict"}}
NAMED = {"type": "function", "function": {"name": "get_weather"}}
WEATHER_RESPONSES = {"type": "function", **WEATHER["function"]}
NAMED_RESPONSES = {"type": "function", "name": "get_weather"}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
# A random tiny model never ends an answer on its own; a stop string (vLLM's extension) ends it
# at the first of these letters, none of which a forced call of get_weather can contain.
STOP_OUTSIDE_CALLS = ["b", "d", "f", "j", "k", "p", "q", "v", "x", "z"]
