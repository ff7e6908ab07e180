"""Workspaces, workspace tokens and invites: the admin side of the store.

Mixed into `scitex_orochi.hub.store.Store`; every method is one short transaction.
Refusals are `scitex_orochi.hub.errors.StoreError`s (WorkspaceNotFound, Conflict,
UnknownInvite, InviteGone), each with its code.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from scitex_orochi.hub.errors import (
    Conflict,
    InviteGone,
    UnknownInvite,
    WorkspaceNotFound,
)
from scitex_orochi.hub.store_engine import write_tx
from scitex_orochi.hub.tables import invites, workspace_tokens, workspaces

DEFAULT_WORKSPACE_ID = "default"
DEFAULT_CHANNELS = ["#general"]
WORKSPACE_TOKEN_PREFIX = "wks_"
INVITE_TOKEN_PREFIX = "inv_"


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def new_workspace_token() -> str:
    return WORKSPACE_TOKEN_PREFIX + secrets.token_hex(16)


def new_invite_token() -> str:
    return INVITE_TOKEN_PREFIX + secrets.token_hex(16)


def _ws_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "created_at": row.created_at,
        "channels": list(row.channels or []),
        "require_pinned": bool(row.require_pinned),
        "gitea_access": row.gitea_access if isinstance(row.gitea_access, dict) else None,
    }


def _token_dict(row: Any) -> dict[str, Any]:
    return {
        "token": row.token,
        "workspace_id": row.workspace_id,
        "label": row.label,
        "created_at": row.created_at,
        "agent_name": row.agent_name,
    }


def _invite_dict(row: Any) -> dict[str, Any]:
    return {
        "token": row.token,
        "workspace_id": row.workspace_id,
        "max_uses": row.max_uses,
        "uses": row.uses,
        "expires_at": row.expires_at,
        "created_at": row.created_at,
    }


def insert_token(
    conn: Connection, workspace_id: str, label: str = "", agent_name: str | None = None
) -> dict[str, Any]:
    values = {
        "token": new_workspace_token(),
        "workspace_id": workspace_id,
        "label": label,
        "created_at": now_iso(),
        "agent_name": agent_name,
    }
    conn.execute(workspace_tokens.insert().values(**values))
    return values


def _require_workspace(conn: Connection, workspace_id: str) -> None:
    found = conn.execute(sa.select(workspaces.c.id).where(workspaces.c.id == workspace_id))
    if found.first() is None:
        raise WorkspaceNotFound(f"workspace {workspace_id!r} does not exist")


class WorkspaceAdmin:
    engine: Engine

    def _writable(self) -> Engine:
        raise NotImplementedError

    # -- workspaces -------------------------------------------------------
    def create_workspace(
        self, name: str, channels: list[str] | None = None
    ) -> tuple[dict[str, Any], str]:
        """A new workspace and its first token."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("workspace name must be a non-empty string")
        chans = list(DEFAULT_CHANNELS if channels is None else channels)
        workspace: dict[str, Any] = {
            "id": "ws_" + secrets.token_hex(8),
            "name": name.strip(),
            "created_at": now_iso(),
            "channels": chans,
            "require_pinned": False,
            "gitea_access": None,
        }
        try:
            with write_tx(self._writable()) as conn:
                conn.execute(workspaces.insert().values(**workspace))
                token = insert_token(conn, workspace["id"], "initial")
        except IntegrityError:
            raise Conflict(f"a workspace named {name!r} already exists") from None
        return workspace, token["token"]

    def list_workspaces(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(workspaces).order_by(workspaces.c.created_at, workspaces.c.id)
            )
            return [_ws_dict(r) for r in rows]

    def get_workspace(self, workspace_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(workspaces).where(workspaces.c.id == workspace_id)).first()
        return None if row is None else _ws_dict(row)

    def delete_workspace(self, workspace_id: str) -> bool:
        """Deletes the workspace, its tokens and invites (messages stay); False if absent."""
        if workspace_id == DEFAULT_WORKSPACE_ID:
            raise Conflict("the default workspace cannot be deleted")
        with write_tx(self._writable()) as conn:
            conn.execute(invites.delete().where(invites.c.workspace_id == workspace_id))
            conn.execute(
                workspace_tokens.delete().where(workspace_tokens.c.workspace_id == workspace_id)
            )
            result = conn.execute(workspaces.delete().where(workspaces.c.id == workspace_id))
            return result.rowcount > 0

    # -- tokens -------------------------------------------------------------
    def create_token(
        self, workspace_id: str, label: str = "", agent_name: str | None = None
    ) -> dict[str, Any]:
        """A new workspace token; pinned to `agent_name` (already validated) if given."""
        with write_tx(self._writable()) as conn:
            _require_workspace(conn, workspace_id)
            return insert_token(conn, workspace_id, label or "", agent_name)

    def set_workspace_policy(
        self,
        workspace_id: str,
        *,
        require_pinned: bool | None = None,
        gitea_access: dict[str, Any] | None | bool = False,
    ) -> dict[str, Any]:
        """Change a workspace's policies; `gitea_access=None` revokes the Gitea grant,
        the default (False) leaves it as it is. The updated workspace."""
        values: dict[str, Any] = {}
        if require_pinned is not None:
            values["require_pinned"] = bool(require_pinned)
        if gitea_access is not False:
            values["gitea_access"] = gitea_access
        with write_tx(self._writable()) as conn:
            _require_workspace(conn, workspace_id)
            if values:
                conn.execute(
                    workspaces.update().where(workspaces.c.id == workspace_id).values(**values)
                )
            row = conn.execute(sa.select(workspaces).where(workspaces.c.id == workspace_id)).first()
        return _ws_dict(row)

    def list_tokens(self, workspace_id: str) -> list[dict[str, Any]]:
        t = workspace_tokens
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t)
                .where(t.c.workspace_id == workspace_id)
                .order_by(t.c.created_at, t.c.token)
            )
            return [_token_dict(r) for r in rows]

    def delete_token(self, workspace_id: str, token: str) -> bool:
        t = workspace_tokens
        with write_tx(self._writable()) as conn:
            result = conn.execute(
                t.delete().where(t.c.workspace_id == workspace_id, t.c.token == token)
            )
            return result.rowcount > 0

    # -- invites ------------------------------------------------------------
    def create_invite(
        self, workspace_id: str, max_uses: int = 1, expires_in_s: float | None = None
    ) -> dict[str, Any]:
        if not isinstance(max_uses, int) or max_uses < 1:
            raise ValueError("max_uses must be an integer >= 1")
        if expires_in_s is not None and expires_in_s <= 0:
            raise ValueError("expires_in_s must be > 0")
        values = {
            "token": new_invite_token(),
            "workspace_id": workspace_id,
            "max_uses": max_uses,
            "uses": 0,
            "expires_at": None if expires_in_s is None else time.time() + expires_in_s,
            "created_at": now_iso(),
        }
        with write_tx(self._writable()) as conn:
            _require_workspace(conn, workspace_id)
            conn.execute(invites.insert().values(**values))
        return values

    def list_invites(self, workspace_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(invites)
                .where(invites.c.workspace_id == workspace_id)
                .order_by(invites.c.created_at, invites.c.token)
            )
            return [_invite_dict(r) for r in rows]

    def delete_invite(self, workspace_id: str, token: str) -> bool:
        with write_tx(self._writable()) as conn:
            result = conn.execute(
                invites.delete().where(
                    invites.c.workspace_id == workspace_id, invites.c.token == token
                )
            )
            return result.rowcount > 0

    def redeem_invite(self, token: str, label: str = "invite") -> tuple[str, str]:
        """Use one invite: (workspace_id, new workspace token). Atomic against concurrent use."""
        now = time.time()
        with write_tx(self._writable()) as conn:
            claimed = conn.execute(
                invites.update()
                .where(
                    invites.c.token == token,
                    invites.c.uses < invites.c.max_uses,
                    sa.or_(invites.c.expires_at.is_(None), invites.c.expires_at > now),
                )
                .values(uses=invites.c.uses + 1)
            )
            row = conn.execute(sa.select(invites).where(invites.c.token == token)).first()
            if claimed.rowcount != 1 or row is None:
                if row is None:
                    raise UnknownInvite("unknown invite")
                if row.uses >= row.max_uses:
                    raise InviteGone("invite already used up")
                raise InviteGone("invite expired")
            issued = insert_token(conn, row.workspace_id, label)
        return row.workspace_id, issued["token"]
