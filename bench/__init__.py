"""Benchmarks, each printing its figures as ratios against a baseline measured in the same
run; run as modules from the repository root (`python -m bench.ledger`). Not part of
`make test`."""
