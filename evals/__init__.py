"""Evaluators, the LLM judge, rubrics and the statistics that compare variants."""
