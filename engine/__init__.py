"""Customer profitability decisions from declarative policies.

    from engine import load_policy
    policy = load_policy("policies/standard.policy")
    decision = policy.evaluate({"id": "C-1", "revenue": "12400.00", ...})
    decision.classification, decision.action, decision.figures["profit"]
    print(decision.explain())
"""
from .checked import CheckedPolicy
from .diagnostics import Diagnostic, PolicyError
from .evaluator import Decision, Outcome
from .explain import Explanation
from .policy import Policy, check_policy, load_policy
from .records import RecordError

__all__ = [
    "CheckedPolicy", "Decision", "Diagnostic", "Explanation", "Outcome", "Policy", "PolicyError", "RecordError",
    "check_policy", "load_policy",
]
__version__ = "0.1.0"
