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
    # Conversations (migration 4). `pk` is the message's hub number `num`.
    # A reply names its thread's root by `num` (roots have NULL).
    sa.Column("thread_root", sa.BigInteger, nullable=True),
    # The folded state: the latest edit's time, and the tombstone of a delete.
    sa.Column("edited_at", sa.String(40), nullable=True),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    # Also the index behind history and resume: (workspace, channel, seq).
    sa.UniqueConstraint("workspace_id", "channel", "seq", name="uq_messages_ws_channel_seq"),
    # Message ids are the sender's, so they are unique per workspace, never across them.
    sa.UniqueConstraint("workspace_id", "msg_id", name="uq_messages_ws_msg_id"),
)

# ---- conversations (migration 4) ------------------------------------------------------
# Every change to a channel is an event in that channel's seq stream: a message takes a
# seq in `messages`, a reaction, edit or delete takes the next one here. The two tables
# share the (workspace, channel) seq space; the persister allocates both.
channel_events = sa.Table(
    "channel_events",
    metadata,
    sa.Column("pk", BigIntPk, primary_key=True, autoincrement=True),
    sa.Column("workspace_id", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(255), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # reaction | edit | delete
    sa.Column("message_num", sa.BigInteger, nullable=False),  # messages.pk
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("ts", sa.String(64), nullable=False),
    sa.Column("ts_epoch", sa.Float, nullable=False),
    # kind-specific: {"emoji", "action"} | {"content"} | {}
    sa.Column("data", sa.JSON, nullable=False),
    # The id of the frame that asked for the change: a republished frame is stored once.
    sa.Column("ref", sa.String(255), nullable=False),
    sa.UniqueConstraint("workspace_id", "channel", "seq", name="uq_channel_events_ws_channel_seq"),
    sa.UniqueConstraint("workspace_id", "ref", name="uq_channel_events_ws_ref"),
)

# The current reactions: one row per (message, emoji, reactor); adding twice is one.
reactions = sa.Table(
    "reactions",
    metadata,
    sa.Column("message_num", sa.BigInteger, primary_key=True),
    sa.Column("emoji", sa.String(64), primary_key=True),
    sa.Column("reactor", sa.String(255), primary_key=True),
    sa.Column("workspace_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)

# Every edit's previous content, oldest first by pk.
message_edits = sa.Table(
    "message_edits",
    metadata,
    sa.Column("pk", BigIntPk, primary_key=True, autoincrement=True),
    sa.Column("message_num", sa.BigInteger, nullable=False, index=True),
    sa.Column("workspace_id", sa.String(64), nullable=False),
    sa.Column("editor", sa.String(255), nullable=False),
    sa.Column("previous_content", sa.Text, nullable=False),
    sa.Column("edited_at", sa.String(40), nullable=False),
)

# A DM channel (`dm:agent:a|agent:b`) and its participants, made on its first write.
dm_participants = sa.Table(
    "dm_participants",
    metadata,
    sa.Column("workspace_id", sa.String(64), primary_key=True),
    sa.Column("channel", sa.String(255), primary_key=True),
    sa.Column("participant", sa.String(255), primary_key=True),  # agent:<a> | human:<b>
    sa.Column("created_at", sa.String(40), nullable=False),
)

# Lasting subscriptions: an agent that reconnects gets its channels back.
subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("workspace_id", sa.String(64), primary_key=True),
    sa.Column("agent", sa.String(255), primary_key=True),
    sa.Column("channel", sa.String(255), primary_key=True),
    sa.Column("mention_only", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Column("can_read", sa.Boolean, nullable=False, default=True, server_default=sa.true()),
    sa.Column("can_write", sa.Boolean, nullable=False, default=True, server_default=sa.true()),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

# Web push subscriptions of people (`human:<person>`), one row per browser endpoint.
push_subscriptions = sa.Table(
    "push_subscriptions",
    metadata,
    sa.Column("endpoint", sa.String(2048), primary_key=True),
    sa.Column("workspace_id", sa.String(64), nullable=False),
    sa.Column("person", sa.String(255), nullable=False),
    sa.Column("p256dh", sa.String(255), nullable=False),
    sa.Column("auth", sa.String(255), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Index("ix_push_subscriptions_person", "workspace_id", "person"),
)

CONVERSATION_TABLES = (channel_events, reactions, message_edits, dm_participants, subscriptions)


# ---- the agent registry (migration 6) -------------------------------------------------
# Every agent name ever registered in a workspace, with its last known profile: kept by
# the persister from the presence deltas on the bus, so it outlives restarts.
agent_registry = sa.Table(
    "agent_registry",
    metadata,
    sa.Column("workspace_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("profile", sa.JSON, nullable=False),  # agent_id, machine, role, model, ...
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Column("last_task", sa.Text, nullable=False, default="", server_default=""),
    sa.Column("last_diagnosis", sa.JSON, nullable=True),  # {status, reason, source, at}
)
