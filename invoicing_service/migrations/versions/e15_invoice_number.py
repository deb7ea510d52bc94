"""invoices get a number of their own

Revision ID: e15_invoice_number
Revises: e15_last_poll
Create Date: 2026-11-22 19:31:00

INV-<year of the order>-<order id, six digits>, set when the invoice is issued (issue 15). Invoices issued
before this revision keep NULL: their year is not stored, and the pages show INV-<order id> for them.

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = 'e15_invoice_number'
down_revision: str | Sequence[str] | None = 'e15_last_poll'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('number', sa.String(length=32), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_column('number')
