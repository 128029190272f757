"""Benchmarks, each printing its figures; run as modules (`python -m bench.ledger`) so that
`bench/ledger.py` never hides the `ledger` package. Not part of `make test`."""
