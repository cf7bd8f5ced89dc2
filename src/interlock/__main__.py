"""`python -m interlock` runs the command line."""

from interlock.cli import main

main()
