"""Alembic environment of the order service's schema, upgraded at start-up by common.service.migrate.upgrade."""
from common.service.migrate import run_migrations
from order_service.models import Base

run_migrations(Base.metadata)
