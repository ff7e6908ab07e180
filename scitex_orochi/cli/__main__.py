"""`python -m scitex_orochi.cli` runs the command line."""

from . import main

main()
