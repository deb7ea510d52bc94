"""history check for the order service's followers: the tracking record keeps the entry at its position and a halt

Revision ID: b10a_order_history_check
Revises: d13_order_status
Create Date: 2026-11-22 20:10:00

Issue 10 (follower half) for the order service, which follows the invoicing and shipping feeds since issue 13:
follower_tracking gains entry_id and entry_updated (the atom:id and atom:updated of the entry at the position, which
every pass checks the feed still holds there), halted_reason and halted_at (cleared by `reset-position`).

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'b10a_order_history_check'
down_revision: Union[str, Sequence[str], None] = 'd13_order_status'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('follower_tracking') as batch:
        batch.add_column(sa.Column('entry_id', sa.Text(), nullable=True))
        batch.add_column(sa.Column('entry_updated', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('halted_reason', sa.Text(), nullable=True))
        batch.add_column(sa.Column('halted_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('follower_tracking') as batch:
        batch.drop_column('halted_at')
        batch.drop_column('halted_reason')
        batch.drop_column('entry_updated')
        batch.drop_column('entry_id')
