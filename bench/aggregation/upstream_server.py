"""Run the test upstream (tests/integration/aggregation/upstream.py) in its own process.

Prints the port on stdout, then serves until stdin closes; a separate process keeps the
upstream's threads off the GIL of the process that measures.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.integration.aggregation.upstream import Upstream

if __name__ == "__main__":
    upstream = Upstream.start()
    print(upstream.port, flush=True)
    sys.stdin.read()
    upstream.stop()
