"""Storage outside Temporal: the content-addressed artifact store and the tool cache."""
