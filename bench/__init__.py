"""ClipFunnel benchmark suite: `python -m bench --help`."""
