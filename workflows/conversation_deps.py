"""What ConversationWorkflow takes from outside the sandbox, in one module the sandbox passes
through.

The sandbox imports the workflow's module afresh for every run, and each module that module
imports costs the sandbox a lookup and a passthrough of its own: importing every name from
here, in one statement, makes that one module instead of thirty. Helpers beside the workflows
are imported by full name: `from p2engine.workflows import x` in a module the sandbox loads
would load x afresh for every run, as a package's fromlist bypasses the sandbox's importer.
"""

from pydantic import ValidationError

import p2engine.workflows.branching as branching
import p2engine.workflows.evaluations as evaluations
import p2engine.workflows.mcp as mcp
import p2engine.workflows.propagation as propagation
import p2engine.workflows.rewards as rewards
import p2engine.workflows.routing as routing
import p2engine.workflows.search as search
import p2engine.workflows.tracing as tracing
import p2engine.workflows.validators as validators
from p2engine.agents.tools.delegate import DELEGATE, DelegateArgs
from p2engine.agents.tools.registry import invalid_arguments
from p2engine.contract.agent import AgentSpec
from p2engine.contract.agent_config import KNOBS, AgentConfig
from p2engine.contract.errors import refuse
from p2engine.contract.evals import EvalOutcome, RewardOutcome
from p2engine.contract.ids import business_key, child_workflow_id
from p2engine.contract.mcp import McpCallInput, McpListed
from p2engine.contract.models import (
    BranchBase,
    BranchChild,
    BranchStart,
    Catalog,
    ContentNode,
    ConversationInput,
    ConversationResult,
    ConversationState,
    ConversationStatus,
    EvalItem,
    EvalRequest,
    Overrides,
    Release,
    StackEntry,
    StepInput,
    StepResult,
    StoreNodesInput,
    SyncStatus,
    ToolCallRequest,
    ToolInput,
    ToolOutcome,
    ToolStatus,
    TurnResult,
    WaitingFor,
    preview,
)
from p2engine.contract.names import (
    BRANCH_TAKEN,
    CONVERSATION_WORKFLOW,
    EVALUATE,
    LEDGER_REWARD,
    LLM_STEP,
    LOAD_STATE,
    MCP_CALL,
    MCP_LIST,
    READ_CATALOG,
    RELEASE_UPDATE,
    RULE_STEP,
    RUN_TOOL,
    SCORES_MEMO,
    STORE_NODES,
    SYNC_STATUS_QUERY,
)
from p2engine.contract.states import FinishReason, State
from p2engine.ledger.models import Receipt, TransferRequest
from p2engine.workflows.calls import (
    CallResult,
    StepCalls,
    call_refusal,
    delegation_refusal,
    duplicate_verdict,
    runs_local,
)
from p2engine.workflows.children import child_input, child_search_attributes, child_summary
from p2engine.workflows.details import conversation_details, current_details
from p2engine.workflows.failures import root_cause
from p2engine.workflows.fsm import MODEL_INPUT_STATES, TERMINAL, Event, IllegalTransition
from p2engine.workflows.fsm import transition as fsm_transition
from p2engine.workflows.limits import limit_reached
from p2engine.workflows.options import (
    EVAL_ACTIVITY,
    LEDGER_ACTIVITY,
    LLM_ACTIVITY,
    LOCAL_ACTIVITY,
    QUICK_EVAL_ACTIVITY,
    READ_CATALOG_ACTIVITY,
    LocalActivityOptions,
    tool_activity,
)
from p2engine.workflows.payloads import catalog_part, step_extras
from p2engine.workflows.revisions import (
    CANCEL_ENDS_CONVERSATION,
    CONFIG_BY_REF,
    LOCAL_QUICK_TOOLS,
    QUICK_EVALUATIONS_LOCAL,
    SCORES_IN_MEMO,
    TOOL_STORES_RESULT,
    UPSERT_ONCE_PER_TASK,
)

__all__ = [
    "BRANCH_TAKEN",
    "CANCEL_ENDS_CONVERSATION",
    "CONFIG_BY_REF",
    "CONVERSATION_WORKFLOW",
    "DELEGATE",
    "EVALUATE",
    "EVAL_ACTIVITY",
    "KNOBS",
    "LEDGER_ACTIVITY",
    "LEDGER_REWARD",
    "LLM_ACTIVITY",
    "LLM_STEP",
    "LOAD_STATE",
    "LOCAL_ACTIVITY",
    "LOCAL_QUICK_TOOLS",
    "MCP_CALL",
    "MCP_LIST",
    "MODEL_INPUT_STATES",
    "QUICK_EVALUATIONS_LOCAL",
    "QUICK_EVAL_ACTIVITY",
    "READ_CATALOG",
    "READ_CATALOG_ACTIVITY",
    "RELEASE_UPDATE",
    "RULE_STEP",
    "RUN_TOOL",
    "SCORES_IN_MEMO",
    "SCORES_MEMO",
    "STORE_NODES",
    "SYNC_STATUS_QUERY",
    "TERMINAL",
    "TOOL_STORES_RESULT",
    "UPSERT_ONCE_PER_TASK",
    "AgentConfig",
    "AgentSpec",
    "BranchBase",
    "BranchChild",
    "BranchStart",
    "CallResult",
    "Catalog",
    "ContentNode",
    "ConversationInput",
    "ConversationResult",
    "ConversationState",
    "ConversationStatus",
    "DelegateArgs",
    "EvalItem",
    "EvalOutcome",
    "EvalRequest",
    "Event",
    "FinishReason",
    "IllegalTransition",
    "LocalActivityOptions",
    "McpCallInput",
    "McpListed",
    "Overrides",
    "Receipt",
    "Release",
    "RewardOutcome",
    "StackEntry",
    "State",
    "StepCalls",
    "StepInput",
    "StepResult",
    "StoreNodesInput",
    "SyncStatus",
    "ToolCallRequest",
    "ToolInput",
    "ToolOutcome",
    "ToolStatus",
    "TransferRequest",
    "TurnResult",
    "ValidationError",
    "WaitingFor",
    "branching",
    "business_key",
    "call_refusal",
    "catalog_part",
    "child_input",
    "child_search_attributes",
    "child_summary",
    "child_workflow_id",
    "conversation_details",
    "current_details",
    "delegation_refusal",
    "duplicate_verdict",
    "evaluations",
    "fsm_transition",
    "invalid_arguments",
    "limit_reached",
    "mcp",
    "preview",
    "propagation",
    "refuse",
    "rewards",
    "root_cause",
    "routing",
    "runs_local",
    "search",
    "step_extras",
    "tool_activity",
    "tracing",
    "validators",
]
