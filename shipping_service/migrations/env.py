"""Alembic environment of the shipping service's schema, upgraded at start-up by common.service.migrate.upgrade."""
from common.service.migrate import run_migrations
from shipping_service.models import Base

run_migrations(Base.metadata)
