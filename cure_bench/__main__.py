"""`python -m cure_bench ...` runs the `cure` command."""

from cure_bench.cli.main import main

main()
