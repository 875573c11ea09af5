"""`python -m server.cli`: the mpo-serve command."""

from server.cli.main import main

main()
