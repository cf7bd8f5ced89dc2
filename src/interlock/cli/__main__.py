"""`python -m interlock.cli` runs the command line."""

from interlock.cli import main

main()
