"""One local stack in a process of its own, for the parallel-start test: start it, print its
ports on one line once every service is ready, stop it when stdin closes.

    python -m tests.integration.stack_runner platform DIR
    python -m tests.integration.stack_runner ports COUNT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from devkit.localstack.ports import free_port
from tests.integration.platform_stack import Platform

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    """Run the stack that ``argv`` names until stdin closes."""
    kind, argument = argv
    if kind == "ports":
        print(json.dumps([free_port() for _ in range(int(argument))]), flush=True)
        sys.stdin.read()
        return 0
    platform = Platform(REPO, Path(argument))
    try:
        platform.start()
        ports = [platform.nats.port, *(p.port for p in platform.services.values())]
        print(json.dumps(ports), flush=True)
        sys.stdin.read()
    finally:
        platform.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
