"""OpenAI serving without HTTP: request bodies (protocol.py), their handlers (chat.py,
completions.py, responses.py, models.py), the weights a request runs with (mixture.py), the
engine client (engine_client.py), logprob shapes (logprobs.py), response pieces (bodies.py),
tool calls (tools.py) and admission control (admission.py). Errors are domain exceptions
(server.exceptions)."""
