## A revision opens with its message and its place in the history; the tables it builds come
## from shared.migration_kit where a helper fits (drop the imports this revision leaves unused).
"""${message}"""

import sqlalchemy as sa
from alembic import op

import shared.db
from shared import migration_kit as mk
${imports if imports else ""}
revision, down_revision = ${repr(up_revision)}, ${repr(down_revision)}
% if branch_labels:
branch_labels = ${repr(branch_labels)}
% endif
% if depends_on:
depends_on = ${repr(depends_on)}
% endif


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
