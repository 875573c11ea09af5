"""The OpenAI-compatible server around the mixture engine, by responsibility:

- `serving/`: OpenAI requests to engine requests and back (protocol, handlers, mixture
  resolution, tool calls, the Responses API); no HTTP.
- `jobs/`: work the admin starts (fit and eval jobs and their lifecycle, live weights,
  component log-probs through the engine, keeping replicas in step); no HTTP.
- `api/`: the FastAPI app, its routes, SSE, auth and the error envelope: the only place
  HTTP statuses exist.
- `cli/`: the `mpo-serve` command and what runs on the user's machine.
- `settings.py`, `engine.py`, `exceptions.py`, `metrics.py`: configuration, the engine's
  start, the domain errors services raise, and the Prometheus names, used across them.

What may import what is in docs/architecture.md and checked by tests/test_import_rules.py.
"""
