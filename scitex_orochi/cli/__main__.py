"""`python -m scitex_orochi.cli` runs the command line."""

from scitex_orochi.cli import main

main()
