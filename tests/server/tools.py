"""The function tool the tool-call and Responses tests call, in both APIs' shapes, and an
openai-agents SDK agent that calls it."""

from typing import Literal

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


def run_weather_agent(url: str, responses_api: bool) -> tuple[list[str], object]:
    """An agent with one function tool, on the chat or the Responses API: a forced first call
    (tool_choice required), the tool runs, the SDK resets tool_choice, the mixture answers in
    text. The cities the tool was asked about, and the run's result."""
    import openai
    from agents import (
        Agent,
        ModelSettings,
        OpenAIChatCompletionsModel,
        OpenAIResponsesModel,
        Runner,
        function_tool,
        set_tracing_disabled,
    )

    set_tracing_disabled(True)  # nothing leaves the machine
    asked = []

    @function_tool
    def get_weather(city: Literal["Paris", "Rome"]) -> str:
        """The weather in a city."""
        asked.append(city)
        return f"Sunny in {city}, 18 degrees"

    kind = OpenAIResponsesModel if responses_api else OpenAIChatCompletionsModel
    model = kind(model="test-mix", openai_client=openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused"))
    extra = {"min_tokens": 2, "stop": STOP_OUTSIDE_CALLS}
    settings = ModelSettings(tool_choice="required", temperature=0, max_tokens=200, extra_body=extra)
    agent = Agent(
        name="weather", instructions="Answer briefly.", tools=[get_weather], model=model, model_settings=settings
    )
    return asked, Runner.run_sync(agent, "What is the weather in Paris?", max_turns=4)
