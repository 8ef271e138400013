"""``make bench``: every benchmark, one table each."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import payments  # noqa: E402


def main() -> None:
    payments.main(sys.argv[1:])


if __name__ == "__main__":
    main()
