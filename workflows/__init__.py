"""Deterministic workflow code: the conversation FSM and the workflows that run it."""
