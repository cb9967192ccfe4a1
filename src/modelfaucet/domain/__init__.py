"""Pure domain code: money, ledger, rating, payout state machine, outcomes.

Nothing here performs I/O, reads the clock or imports another part of the package.
"""
