"""Alembic environment of the invoicing service's schema, upgraded at start-up by common.migrate.upgrade."""
from common.migrate import run_migrations
from invoicing_service.models import Base

run_migrations(Base.metadata)
