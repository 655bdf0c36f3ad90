"""Portfolio figures: figures each record gets from the whole portfolio.

    passes.py       the pass runner: stage passes, then the deciding pass
    kind.py         the interface every kind of portfolio figure implements
    kinds.py        the kinds the engine knows
    allocation.py   pooled costs shared out (by a driver, equally, per group)
    referral.py     referral credits over the network of who brought whom in
    shares.py       the exact share arithmetic
    storage.py      the compact per-row storage between passes
    context.py      the stored context: a run's totals, to decide one record later
"""
from .allocation import AllocationContext, GroupContext, Share
from .context import ContextError, PolicyStamp, PortfolioContext, share_from_context
from .passes import PoolUse, PortfolioSummary, Source, evaluate_portfolio
from .referral import Contribution, ReferralLeader, ReferralShare
from .shares import ZeroTotal, distribute

__all__ = [
    "AllocationContext", "ContextError", "Contribution", "GroupContext", "PolicyStamp", "PoolUse",
    "PortfolioContext", "PortfolioSummary", "ReferralLeader", "ReferralShare", "Share", "Source", "ZeroTotal",
    "distribute", "evaluate_portfolio",
    "share_from_context",
]
