"""The `rcm` command line: `main` parses, `commands` runs through Dagster, `demo`, `status` and
`evaluation` serve single commands, `console` holds what they share. Nothing outside this folder
imports it (except `rcm_assets.__main__`, the `python -m rcm_assets` entry point)."""
