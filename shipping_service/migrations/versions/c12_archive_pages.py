"""archive pages: full feed pages rendered once (issue 12)

Revision ID: c12_shipping_archive_pages
Revises: b10a_history_check
Create Date: 2026-11-22 19:30:00

The shipping feed's full archive pages, stored by the publisher when first rendered
(common.feeds.publish.archive.ArchivePageMixin): page bytes with a placeholder for the root URL.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'c12_shipping_archive_pages'
down_revision: Union[str, Sequence[str], None] = 'b10a_history_check'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('archive_pages',
    sa.Column('page_size', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('number', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('format_version', sa.Integer(), nullable=False),
    sa.Column('updated', sa.DateTime(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('page_size', 'number', name=op.f('pk_archive_pages'))
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('archive_pages')
