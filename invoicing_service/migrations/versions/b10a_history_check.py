"""history check: the tracking record keeps the entry at its position and a halt; records keep a content digest

Revision ID: b10a_history_check
Revises: d13_invoicing_feed
Create Date: 2026-11-23 10:00:00

Issue 10 (follower half). follower_tracking gains entry_id and entry_updated (the atom:id and atom:updated of the
entry at the position, which every pass checks the feed still holds there), halted_reason and halted_at (a halt
every instance and restart sees, cleared by `reset-position`). invoices.digest is the SHA-256 of the order document as
stored, so an order id that comes again with different content is a dead letter rather than silently skipped;
rows stored before this revision have none and are not compared.

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'b10a_history_check'
down_revision: Union[str, Sequence[str], None] = 'd13_invoicing_feed'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('follower_tracking') as batch:
        batch.add_column(sa.Column('entry_id', sa.Text(), nullable=True))
        batch.add_column(sa.Column('entry_updated', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('halted_reason', sa.Text(), nullable=True))
        batch.add_column(sa.Column('halted_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('invoices') as batch:
        batch.add_column(sa.Column('digest', sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('invoices') as batch:
        batch.drop_column('digest')
    with op.batch_alter_table('follower_tracking') as batch:
        batch.drop_column('halted_at')
        batch.drop_column('halted_reason')
        batch.drop_column('entry_updated')
        batch.drop_column('entry_id')
