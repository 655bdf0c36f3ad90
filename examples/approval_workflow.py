"""A credit-limit approval step that embeds the engine.

A request to raise a customer's credit limit is approved only when the standard
policy classes the customer as profitable, and only up to a tenth of the policy's
bottom line (its profit). Every answer is written to an audit log as one JSON line
holding the decision as data (`Decision.as_dict()`, the same JSON `profit run --format
json` writes); every refusal is also logged with the explanation of the decision, so
the account manager can see exactly why.

    python examples/approval_workflow.py [AUDIT_FILE]     # default: out/approvals.jsonl
"""
from __future__ import annotations

import csv
import json
import logging
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from engine import Decision, RecordError, load_policy

HERE = Path(__file__).resolve().parent
POLICY = load_policy(HERE.parent / "policies" / "standard.policy")  # load once, share everywhere
if POLICY.bottom_line is None:
    raise SystemExit("the approval rule needs a policy with a money measure to rank customers by")
BOTTOM_LINE: str = POLICY.bottom_line  # "profit": the money figure the policy ranks customers by

log = logging.getLogger("approvals")
audit = logging.getLogger("approvals.audit")


def record_answer(customer_id: Optional[str], requested: Decimal, approved: bool, why: str,
                  decision: Optional[Decision] = None, error: Optional[RecordError] = None) -> None:
    """One JSON line per request: what was asked, the answer, and the decision or error behind it."""
    entry: Dict[str, Any] = {"customer": customer_id, "requested": str(requested), "approved": approved, "why": why}
    if decision is not None:
        entry["decision"] = decision.as_dict()
    if error is not None:
        entry["error"] = error.as_dict()
    audit.info(json.dumps(entry))


def approve_credit_limit(customer: Mapping[str, Any], requested: Decimal) -> bool:
    """Approve a new credit limit for a profitable customer, up to a tenth of its profit."""
    try:
        decision = POLICY.evaluate(customer)
    except RecordError as error:
        log.warning("refused %s: the customer record is invalid: %s", customer.get("id"), error)
        record_answer(customer.get("id"), requested, False, "invalid record", error=error)
        return False
    if decision.classification != "profitable":
        log.info("refused %s (%s): %s\n%s", decision.id, decision.classification, decision.action,
                 decision.explain())
        record_answer(decision.id, requested, False, f"classified {decision.classification}", decision)
        return False
    profit = decision.value(BOTTOM_LINE)
    ceiling = profit / 10
    if requested > ceiling:
        log.info("refused %s: requested %s EUR exceeds a tenth of %s (%s EUR)", decision.id, requested,
                 BOTTOM_LINE, ceiling)
        record_answer(decision.id, requested, False, f"above a tenth of {BOTTOM_LINE}", decision)
        return False
    log.info("approved %s: %s EUR (%s %s EUR)", decision.id, requested, BOTTOM_LINE, profit)
    record_answer(decision.id, requested, True, "profitable", decision)
    return True


def main(argv: List[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    audit_path = Path(argv[0]) if argv else HERE.parent / "out" / "approvals.jsonl"
    audit_path.parent.mkdir(parents=True, exist_ok=True)
    audit.propagate = False  # the audit trail goes to its own file, not to the console,
    audit.setLevel(logging.INFO)  # and keeps every answer whatever the application's log level
    audit_file = logging.FileHandler(audit_path, mode="w", encoding="utf-8")
    audit_file.setFormatter(logging.Formatter("%(message)s"))
    audit.addHandler(audit_file)
    with open(HERE / "customers.csv", newline="") as stream:
        customers = {row["id"]: row for row in csv.DictReader(stream)}
    requests = [("C-1077", Decimal("25000")), ("C-1034", Decimal("2500")), ("C-1021", Decimal("5000")),
                ("C-1013", Decimal("1000")), ("C-1089", Decimal("100"))]
    approved = sum(approve_credit_limit(customers[cid], amount) for cid, amount in requests)
    # a request for a customer whose record is broken is refused, never approved by mistake
    approved += approve_credit_limit(dict(customers["C-1058"], orders="-5"), Decimal("100"))
    audit.removeHandler(audit_file)
    audit_file.close()
    print(f"{approved} of {len(requests) + 1} requests approved; audit trail in {audit_path}")


if __name__ == "__main__":
    main(sys.argv[1:])
