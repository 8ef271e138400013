"""SQLite ledger: every payment (write-ahead), every call, the response cache."""

from .store import (
    SCHEMA_VERSION,
    SPENDING_STATUSES,
    STATUSES,
    CallRecord,
    Ledger,
    LedgerTransaction,
    PaymentRow,
    default_home,
    default_path,
)

__all__ = [
    "SCHEMA_VERSION",
    "SPENDING_STATUSES",
    "STATUSES",
    "CallRecord",
    "Ledger",
    "LedgerTransaction",
    "PaymentRow",
    "default_home",
    "default_path",
]
