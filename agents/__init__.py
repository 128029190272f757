"""Agent specs and registry, the tool registry with built-in tools, the offline scripted model."""
