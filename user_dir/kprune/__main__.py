"""``python -m user_dir.kprune``: same as the ``fairseq-kprune`` console script."""
from user_dir.kprune.cli import cli_main

cli_main()
