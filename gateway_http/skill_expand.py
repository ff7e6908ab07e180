"""Slash skills typed by people: `/<skill> @agent [@agent2] args...` becomes the skill's
text, filled in and posted to the channel mentioning the agents.

Called on the two paths people post by (`POST /api/messages` and the observer socket's
`message` frames, both `sender_type` "human"); agents' messages (the agent gateway) are
never expanded. A message is an invocation when its first word is `/<name>` and the
word after it is an `@agent`: an unknown skill, a missing required argument or a word
too many is refused with 400 (`field: payload.content`) and nothing is posted. A first
word `/<name>` that names a skill but no agent after it is refused too (the usage is
given); one that names no skill and no agent (`/tmp is full`) is posted as written.
The expanded message keeps the poster's id, channel, attachments and metadata, plus
`metadata.skill = {name, by, args}` (`by`: the poster).
"""

from __future__ import annotations

import asyncio
from typing import Any

from scitex_orochi.hub.config import Config
from scitex_orochi.protocol import skills as sk

from .errors import bad_request
from .posting import build_envelope
from .skills_store import SkillStore, store_for

FIELD = "payload.content"


def _looks_like_command(envelope: dict[str, Any]) -> bool:
    content = envelope.get("payload", {}).get("content")
    return isinstance(content, str) and content.lstrip().startswith("/")


def expand(store: SkillStore, workspace: str, envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope to post: `envelope` itself, or its expansion (blocking: reads a file)."""
    payload = envelope.get("payload", {})
    try:
        invocation = sk.parse_command(payload.get("content"))
    except sk.SkillError as exc:
        raise bad_request(exc.detail, FIELD) from None
    if invocation is None:
        return envelope
    skill = store.get(workspace, invocation.skill)
    if skill is None:
        if not invocation.agents:
            return envelope
        raise bad_request(
            f"unknown skill /{invocation.skill} in workspace {workspace!r} "
            "(GET /api/skills lists them); nothing was posted",
            FIELD,
        )
    if not invocation.agents:
        raise bad_request(
            f"/{skill.name} is a skill: name the agents to send it to ({sk.usage(skill)})",
            FIELD,
        )
    try:
        content, values = sk.expansion(skill, invocation)
    except sk.SkillError as exc:
        raise bad_request(f"{exc.detail}; nothing was posted", FIELD) from None
    metadata = dict(payload.get("metadata") or {})
    metadata["skill"] = {"name": skill.name, "by": envelope["sender"], "args": values}
    new_payload = {**payload, "content": content, "metadata": metadata}
    new_payload.pop("mentions", None)
    return build_envelope(
        {"sender": envelope["sender"], "id": envelope["id"], "payload": new_payload}
    )


async def expand_message(cfg: Config, workspace: str, envelope: dict[str, Any]) -> dict[str, Any]:
    """`expand` in a thread, for messages that may be an invocation (the rest return at
    once, without a thread hop)."""
    if not _looks_like_command(envelope):
        return envelope
    return await asyncio.to_thread(expand, store_for(cfg.data_dir), workspace, envelope)
