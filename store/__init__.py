"""The weight store: weight sets, jobs with their leases and heartbeats, eval Mins, on SQLite or
PostgreSQL through SQLAlchemy Core (weight_store.py), the same calls for an event loop in a
thread pool of their own (async_store.py), its tables (schema.py) and their Alembic migrations
(migrations/). No vLLM, no HTTP."""
