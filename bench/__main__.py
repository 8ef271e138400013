"""``make bench``: every benchmark, side by side with the reference SDK, into bench/RESULTS.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import client, micro, payments  # noqa: E402


def sandbox_throughput() -> str:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "sandbox_throughput.py"), "--requests", "500"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    print(out.stdout)
    return "### Sandbox throughput\n\n```\n" + out.stdout.strip() + "\n```"


def main() -> None:
    sections = [
        payments.main(["--calls", "100"]),
        client.main([]),
        micro.main([]),
        sandbox_throughput(),
    ]
    text = ("# Benchmark results\n\nProduced by `make bench` (`python -m bench`); every ratio is measured side by "
            "side in one run, on loopback only.\n\n" + "\n\n".join(sections) + "\n")
    (ROOT / "bench" / "RESULTS.md").write_text(text)
    print(f"written to {ROOT / 'bench' / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
