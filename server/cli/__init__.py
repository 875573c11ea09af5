"""The `mpo-serve` command (main.py) and what runs on the user's machine: the job commands'
HTTP clients (fit_command.py, eval_command.py, job_commands.py) and a server in a subprocess
(processes.py)."""
