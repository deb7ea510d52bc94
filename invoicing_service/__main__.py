"""`invoicing-service [--host H] [--port P]` (also `python -m invoicing_service`)."""
from common.service.cli import serve
from invoicing_service.app import create_app


def main(argv=None) -> int:
    return serve(create_app, "invoicing-service", 8082, argv)


if __name__ == "__main__":
    raise SystemExit(main())
