"""What development starts on this machine, apart from the product: mpo-serve (or any HTTP
server) in a subprocess until it answers (processes.py), and PostgreSQL, the project's nginx
and a two-node Ray cluster run locally (services.py). The tests, the benchmarks and the study
start their servers through it; the server itself never imports it."""
