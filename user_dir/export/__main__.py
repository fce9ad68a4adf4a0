from user_dir.export.cli import cli_main

cli_main()
