"""The contract: what crosses a workflow, activity or client boundary (models, states, names,
ids, input checks) and the error hierarchy. The bottom layer: it imports no other package of
the project."""
