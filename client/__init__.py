"""A Python client of mpo-serve's admin API over HTTP (jobs.py: fits and evals started,
followed to their end and cancelled), for the `mpo-serve` job commands and any script that
drives a server."""
