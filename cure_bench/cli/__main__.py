"""`python -m cure_bench.cli ...` runs the `cure` command (what `accelerate launch -m` needs)."""

from cure_bench.cli.main import main

main()
