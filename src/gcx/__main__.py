"""`python -m gcx` runs the command-line tool."""

from gcx.cli import main

main()
