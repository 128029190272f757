"""Names shared across the worker, workflow and client boundary: activity names, so workflow
code never imports litellm, and the workflow type, so a client can list conversations."""

from enum import Enum

CONVERSATION_WORKFLOW = "ConversationWorkflow"

LLM_STEP = "llm_step"
RULE_STEP = "rule_step"
RUN_TOOL = "run_tool"
STORE_NODES = "store_nodes"
EVALUATE = "evaluate"
COMPARE = "compare"
COMPARE_WORKFLOW = "CompareWorkflow"

LOAD_STATE = "load_state"
READ_CATALOG = "read_catalog"
# A step's error type: the config its ref names is not in the worker's artifact store.
CONFIG_NOT_FOUND = "ConfigNotFound"
# A delegation's error type: the catalog its conversation names is not in the worker's store.
CATALOG_NOT_FOUND = "CatalogNotFound"
BRANCH_TAKEN = "BranchTaken"  # the `branch` update's error type: the branch's id exists

# Memo key: a branch's origin, {"source": id, "step": n}.
BRANCH_MEMO = "branch"

# Which branch of a conversation is active: a workflow per conversation, id
# `<conversation>~active`, whose memo names the branch.
ACTIVE_BRANCH_WORKFLOW = "ActiveBranchWorkflow"
ACTIVE_BRANCH_SUFFIX = "~active"
ACTIVE_BRANCH_MEMO = "active"

# Memo key: the id of the agent config a conversation started with (contract/agent_config.py).
CONFIG_MEMO = "config"

# Memo key: a closed conversation's mean score per evaluator id, so a ranking by one
# evaluator reads visibility, not the store.
SCORES_MEMO = "scores"
LEDGER_TRANSFER = "ledger_transfer"
LEDGER_REWARD = "ledger_reward"
LEDGER_BALANCE = "ledger_balance"
LEDGER_SNAPSHOT = "ledger_snapshot"

ROLLOUT_WORKFLOW = "RolloutWorkflow"
STORE_ARMS = "store_arms"
SETTLE_ROLLOUT = "settle_rollout"
# The learning loop's activities: a scoring rollout's records digested, a proposal made.
LEARN_DIGEST = "learn_digest"
LEARN_PROPOSE = "learn_propose"
# Propagation every N steps: the activity that pushes the best config to its siblings, and
# the conversation's query and update it reads and releases them by.
LEARN_PROPAGATE = "learn_propagate"
SYNC_STATUS_QUERY = "sync_status"
# Tools from MCP servers: a server's tools listed for a conversation, one tool called, and
# the failure type of a server that could not be used (agents/mcp.py says which retry).
MCP_LIST = "mcp_list_tools"
MCP_CALL = "mcp_call_tool"
MCP_FAILED = "McpFailed"
RELEASE_UPDATE = "release"
# Memo key of a rollout: a RolloutMemo, for `p2e rollout list`, `show` and `export`.
ROLLOUT_MEMO = "rollout"
# Memo key of a rollout schedule: the file it was made from (its note is the user's to set).
SCHEDULE_FILE_MEMO = "rollout_file"

# Span attribute: the workflow a span belongs to, by which `p2e trace <workflow id>` finds
# its trace (set on workflow and activity spans alike).
SPAN_WORKFLOW_ID = "p2e.workflow_id"

# A run's status as p2e names it -> visibility's ExecutionStatus (`conversation list --status`).
EXECUTION_STATUSES = {
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Canceled",
    "terminated": "Terminated",
    "timed_out": "TimedOut",
    "continued_as_new": "ContinuedAsNew",
}


def status_name(status: Enum | None) -> str:
    """A run's status (a WorkflowExecutionStatus) as p2e names it (EXECUTION_STATUSES):
    `cancelled`, `timed_out`; `unknown` without one."""
    if status is None:
        return "unknown"
    return _STATUS_NAMES.get(status.name.replace("_", ""), status.name.lower())


# WorkflowExecutionStatus names, without underscores (TIMEDOUT) -> p2e's (timed_out).
_STATUS_NAMES = {v.upper(): k for k, v in EXECUTION_STATUSES.items()}
