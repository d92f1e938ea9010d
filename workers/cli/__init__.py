"""The `qwenfix` command line and the demo: where concrete classes are built."""
