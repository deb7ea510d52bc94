"""the tracking record keeps the time of the last successful poll; the feed remembers when it began

Revision ID: e15_last_poll
Revises: c12_archive_pages
Create Date: 2026-11-22 19:30:00

Issue 15: follower_tracking.last_poll, so a restarted service still says when it last polled (NULL until its
first successful poll); feed_origin, one row (id 1) with the time the order feed began, its <updated> and
Last-Modified while it has no entries (instead of 1970), filled on first start by the publisher: the first
entry's time when there is one, else now.

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = 'e15_last_poll'
down_revision: str | Sequence[str] | None = 'c12_archive_pages'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('feed_origin',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_origin'))
    )
    with op.batch_alter_table('follower_tracking', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_poll', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('follower_tracking', schema=None) as batch_op:
        batch_op.drop_column('last_poll')
    op.drop_table('feed_origin')
