"""A credit-limit approval step that embeds the engine.

A request to raise a customer's credit limit is approved only when the standard
policy classes the customer as profitable; every refusal is logged with the
explanation of the decision, so the account manager can see exactly why.

    python examples/approval_workflow.py
"""
from __future__ import annotations

import csv
import logging
from decimal import Decimal
from pathlib import Path

from engine import Decision, RecordError, load_policy

HERE = Path(__file__).resolve().parent
POLICY = load_policy(HERE.parent / "policies" / "standard.policy")  # load once, share everywhere

log = logging.getLogger("approvals")


def approve_credit_limit(customer: dict, requested: Decimal) -> bool:
    """Approve a new credit limit for a profitable customer, up to a tenth of its profit."""
    try:
        decision: Decision = POLICY.evaluate(customer)
    except RecordError as error:
        log.warning("refused %s: the customer record is invalid: %s", customer.get("id"), error)
        return False
    if decision.classification != "profitable":
        log.info("refused %s (%s): %s\n%s", decision.id, decision.classification, decision.action,
                 decision.explain())
        return False
    ceiling = decision.figures["profit"] / 10
    if requested > ceiling:
        log.info("refused %s: requested %s EUR exceeds a tenth of profit (%s EUR)", decision.id, requested, ceiling)
        return False
    log.info("approved %s: %s EUR (profit %s EUR)", decision.id, requested, decision.figures["profit"])
    return True


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with open(HERE / "customers.csv", newline="") as stream:
        customers = {row["id"]: row for row in csv.DictReader(stream)}
    requests = [("C-1077", Decimal("25000")), ("C-1034", Decimal("2500")), ("C-1021", Decimal("5000")),
                ("C-1013", Decimal("1000"))]
    approved = sum(approve_credit_limit(customers[cid], amount) for cid, amount in requests)
    print(f"{approved} of {len(requests)} requests approved")


if __name__ == "__main__":
    main()
