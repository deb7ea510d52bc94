"""ids, feed positions, archive page numbers and counts become BIGINT on PostgreSQL

Revision ID: f_bigint_ids
Revises: e15_last_poll
Create Date: 2026-11-23 21:20:00

The documents take ids from 1 to 2**63-1 and feed positions have no bound, but PostgreSQL's INTEGER is 32 bits: an
OrderCreated the contract takes, with an order, customer or item id above 2**31-1, or at a feed position past it,
was "integer out of range" there, and shipping failed on it. Every column holding an id, a position, a page number
or a count of entries becomes BIGINT, and the dead letters' serial key's sequence with them (INTEGER too since
PostgreSQL 10). Line numbers, quantities, attempts, page sizes and format versions stay INTEGER: each is bounded far
below that.

Each table is rewritten once, under its ACCESS EXCLUSIVE lock, while the first instance to start migrates (the
others wait for it: common.service.migrate). SQLite needs nothing: its INTEGER holds 64 bits already, and the models
keep INTEGER there (common.feeds.tables.Int64), since only an INTEGER PRIMARY KEY autoincrements on SQLite.

"""
from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = 'f_bigint_ids'
down_revision: str | Sequence[str] | None = 'e15_last_poll'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table → its columns that become BIGINT; a key before the columns referring to it.
COLUMNS = {
    'shipments': ['order_id', 'customer_id', 'position'],
    'shipment_lines': ['order_id', 'item_id'],
    'notifications': ['position'],
    'archive_pages': ['number'],
    'follower_tracking': ['position', 'retry_position', 'handled', 'skipped', 'dead_lettered'],
    'follower_dead_letters': ['id', 'position'],
}
# The serial keys' sequences.
SEQUENCES = ['follower_dead_letters_id_seq']


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_context().dialect.name == "postgresql":
        _retype("BIGINT")


def downgrade() -> None:
    """Downgrade schema (fails on a value beyond INTEGER, rather than lose it)."""
    if op.get_context().dialect.name == "postgresql":
        _retype("INTEGER")


def _retype(type_: str) -> None:
    # Raw SQL for one ALTER TABLE per table: PostgreSQL rewrites a table once per statement, not once per column.
    for table, columns in COLUMNS.items():
        op.execute(f"ALTER TABLE {table} " + ", ".join(f"ALTER COLUMN {column} TYPE {type_}" for column in columns))
    for sequence in SEQUENCES:
        op.execute(f"ALTER SEQUENCE {sequence} AS {type_}")  # its bounds follow when they were the type's own
