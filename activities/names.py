"""Activity names shared by workers and workflows, so workflow code never imports litellm."""

LLM_STEP = "llm_step"
RULE_STEP = "rule_step"
RUN_TOOL = "run_tool"
STORE_NODES = "store_nodes"
