"""The `p2e` command line: one module per command group."""
