"""Preferences people state, without HTTP: votes cast between two answers (the playground's
blind compare, POST /v1/mixture/votes) kept in the store, and exported as a batch of preference
pairs that the pair eval and the pair fit take (GET /admin/preferences.jsonl)."""
