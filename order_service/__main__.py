"""`python -m order_service` / `order-service`: serve the order service."""
from __future__ import annotations

import sys

from common.service.cli import serve
from order_service.app import create_app


def main(argv: list[str] | None = None) -> int:
    """Run the order service until SIGINT/SIGTERM."""
    return serve(create_app, "order-service", 8081, argv)


if __name__ == "__main__":
    sys.exit(main())
