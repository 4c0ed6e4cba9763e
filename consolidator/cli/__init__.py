"""The `consolidator` command line (typer + rich). Each area registers its commands in its own module."""
