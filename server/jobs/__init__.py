"""Work the admin API starts, without HTTP: the lifecycle every job shares (lifecycle.py),
fit and eval jobs and their batches (fit_jobs.py, fit_batch.py, eval_jobs.py, eval_batch.py),
the mixture's live weights (live_weights.py), every component's log-prob of a sequence
through the engine (component_logprobs.py), the stored weight sets kept in memory
(weight_sets.py), and a replica kept in step with the shared store (replica_sync.py)."""
