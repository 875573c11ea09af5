"""The `mpo-serve` command (main.py) and its job commands (fit_command.py, eval_command.py,
job_commands.py), which follow their jobs through client.jobs."""
