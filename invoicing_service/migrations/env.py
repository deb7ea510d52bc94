"""Alembic environment of the invoicing service's schema, upgraded at start-up by common.service.migrate.upgrade."""
from common.service.migrate import run_migrations
from invoicing_service.models import Base

run_migrations(Base.metadata)
