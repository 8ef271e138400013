"""SQLite ledger: every payment (write-ahead), every call, the response cache."""

from .store import (
    SCHEMA_VERSION,
    CallRecord,
    Ledger,
    LedgerTransaction,
    PaymentRow,
    default_home,
    default_path,
)

__all__ = [
    "SCHEMA_VERSION",
    "CallRecord",
    "Ledger",
    "LedgerTransaction",
    "PaymentRow",
    "default_home",
    "default_path",
]
