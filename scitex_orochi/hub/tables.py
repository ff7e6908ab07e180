"""The hub database's tables (SQLAlchemy Core): the current schema.

The migrations (`migrations.py`) bring a database of any earlier version to it;
the stores (`store.py`, `store_admin.py`) query it.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# BIGINT on PostgreSQL; INTEGER on SQLite so the column aliases the rowid.
BigIntPk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.String(40), nullable=False),
)

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("channels", sa.JSON, nullable=False),
    # Only tokens pinned to an agent name may register in this workspace.
    sa.Column(
        "require_pinned", sa.Boolean, nullable=False, default=False, server_default=sa.false()
    ),
    # Gitea writes over the agent socket: {"owners": [...], "repos": ["owner/repo", ...]}.
    sa.Column("gitea_access", sa.JSON, nullable=True),
)

workspace_tokens = sa.Table(
    "workspace_tokens",
    metadata,
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column(
        "workspace_id", sa.String(64), sa.ForeignKey("workspaces.id"), nullable=False, index=True
    ),
    sa.Column("label", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", sa.String(40), nullable=False),
    # A pinned token may register only this agent name, and nobody else may take it.
    sa.Column("agent_name", sa.String(128), nullable=True, index=True),
)

invites = sa.Table(
    "invites",
    metadata,
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column(
        "workspace_id", sa.String(64), sa.ForeignKey("workspaces.id"), nullable=False, index=True
    ),
    sa.Column("max_uses", sa.Integer, nullable=False),
    sa.Column("uses", sa.Integer, nullable=False, default=0),
    sa.Column("expires_at", sa.Float, nullable=True),  # epoch seconds
    sa.Column("created_at", sa.String(40), nullable=False),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("pk", BigIntPk, primary_key=True, autoincrement=True),
    sa.Column("msg_id", sa.String(255), nullable=False),
    sa.Column("workspace_id", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(255), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("ts", sa.String(64), nullable=False),
    sa.Column("ts_epoch", sa.Float, nullable=False),
    sa.Column("sender", sa.String(255), nullable=False),
    sa.Column("sender_type", sa.String(16), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("mentions", sa.JSON, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("attachments", sa.JSON, nullable=False),
    # Also the index behind history and resume: (workspace, channel, seq).
    sa.UniqueConstraint("workspace_id", "channel", "seq", name="uq_messages_ws_channel_seq"),
    # Message ids are the sender's, so they are unique per workspace, never across them.
    sa.UniqueConstraint("workspace_id", "msg_id", name="uq_messages_ws_msg_id"),
)
