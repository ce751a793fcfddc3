"""Artifact signatures, and artifact URIs relative to the artifact root.

Existing rows keep no signature: the registry refuses to load them until an operator who
trusts the files signs them (``retrain sign-artifacts --trust-unsigned``). Their absolute
``file://`` URIs become ``<pipeline>/v<version>/<file>``, the layout every version was written
in, so a copied ``RETRAIN_HOME`` reads its own files.

Revision ID: 0006
Revises: 0005
"""

from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

versions = sa.table(
    "model_versions",
    sa.column("id", sa.Integer),
    sa.column("pipeline", sa.String),
    sa.column("version", sa.Integer),
    sa.column("artifact_uri", sa.Text),
    sa.column("profile_uri", sa.Text),
)


def _relative(uri: str | None, pipeline: str, version: int) -> str | None:
    if uri is None or not uri.startswith("file:"):
        return uri
    name = PurePosixPath(unquote(urlsplit(uri).path)).name
    return f"{pipeline}/v{version}/{name}"


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("artifact_signature", sa.String(64), nullable=True))
        batch.add_column(sa.Column("profile_signature", sa.String(64), nullable=True))
    connection = op.get_bind()
    for row in connection.execute(sa.select(versions)).all():
        connection.execute(
            sa.update(versions)
            .where(versions.c.id == row.id)
            .values(
                artifact_uri=_relative(row.artifact_uri, row.pipeline, row.version),
                profile_uri=_relative(row.profile_uri, row.pipeline, row.version),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("profile_signature")
        batch.drop_column("artifact_signature")
