"""`shipping-service [--host H] [--port P]` (also `python -m shipping_service`)."""
from common.service.cli import serve
from shipping_service.app import create_app


def main(argv=None) -> int:
    return serve(create_app, "shipping-service", 8083, argv)


if __name__ == "__main__":
    raise SystemExit(main())
