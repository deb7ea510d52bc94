"""Alembic environment of the order service's schema, upgraded at start-up by common.migrate.upgrade."""
from common.migrate import run_migrations
from order_service.models import Base

run_migrations(Base.metadata)
