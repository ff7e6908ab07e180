"""Skills (pure): markdown templates with front matter, their `{{name}}` placeholders, and
the slash command a person types to use one (`/deploy @worker env=prod`).

A skill file is

    ---
    name: deploy
    description: Deploy a service to an environment
    arguments:
      - name: env
        description: where to deploy
        required: true
      - name: service
        required: false
    ---
    Deploy {{service}} to {{env}} and report back here.

The front matter is a small subset of YAML, read and written here without a YAML
library: `key: value` scalars (a value may be JSON-quoted, `true`/`false` are
booleans) and `arguments:` as a block list of such mappings, or as one JSON list on
the same line (`arguments: [{"name": "env", "required": true}]`). The hub keeps the
files (gateway_http/skills_store.py); the CLI reads one to propose it.

Placeholders are `{{name}}` (spaces inside the braces allowed) for a declared
argument; an optional argument not given is the empty string; any other `{{...}}`
stays as written.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

NAME_RE = re.compile(r"[a-z0-9-]{1,64}")
ARG_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
MAX_BODY_BYTES = 64 * 1024
MAX_DESCRIPTION_CHARS = 1000
MAX_ARGUMENTS = 32
MAX_FILE_BYTES = MAX_BODY_BYTES + 16 * 1024  # body plus front matter
PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z][a-z0-9_-]{0,63})\s*\}\}")
FENCE = "---"


class SkillError(ValueError):
    """A skill, or a use of one, that is not valid; `field` names what is to blame."""

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


@dataclass(frozen=True)
class Argument:
    name: str
    description: str = ""
    required: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "required": self.required}


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    arguments: tuple[Argument, ...]
    body: str
    extra: dict[str, str] = field(default_factory=dict)  # e.g. proposer, proposed_at

    def to_dict(self, body: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "arguments": [a.to_dict() for a in self.arguments],
            **self.extra,
        }
        if body:
            out["body"] = self.body
        return out

    def markdown(self) -> str:
        return render_markdown(self)


def check_name(value: object, field_name: str = "name") -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise SkillError(f"{field_name} must be 1..64 characters of a-z, 0-9 and -", field_name)
    return value


def _check_text(value: object, field_name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SkillError(f"{field_name} must be a string", field_name)
    if len(value) > limit:
        raise SkillError(f"{field_name} is longer than {limit} characters", field_name)
    return value


def check_arguments(value: object, field_name: str = "arguments") -> tuple[Argument, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SkillError(
            f"{field_name} must be a list of {{name, description, required}}", field_name
        )
    if len(value) > MAX_ARGUMENTS:
        raise SkillError(f"{field_name} has more than {MAX_ARGUMENTS} entries", field_name)
    out: list[Argument] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        where = f"{field_name}[{i}]"
        if not isinstance(item, dict):
            raise SkillError(f"{where} must be an object {{name, description, required}}", where)
        name = item.get("name")
        if not isinstance(name, str) or not ARG_NAME_RE.fullmatch(name):
            raise SkillError(
                f"{where}.name must be 1..64 characters of a-z, 0-9, _ and -, starting with "
                "a letter",
                f"{where}.name",
            )
        if name in seen:
            raise SkillError(f"{where}.name {name!r} is declared twice", f"{where}.name")
        seen.add(name)
        required = item.get("required", False)
        if not isinstance(required, bool):
            raise SkillError(f"{where}.required must be true or false", f"{where}.required")
        unknown = set(item) - {"name", "description", "required"}
        if unknown:
            raise SkillError(f"{where} has unknown keys {sorted(unknown)}", where)
        desc = _check_text(item.get("description"), f"{where}.description", MAX_DESCRIPTION_CHARS)
        out.append(Argument(name, desc, required))
    return tuple(out)


def make_skill(
    name: object,
    description: object,
    arguments: object,
    body: object,
    extra: dict[str, str] | None = None,
) -> Skill:
    """A validated skill; SkillError naming the field otherwise."""
    checked_name = check_name(name)
    desc = _check_text(description, "description", MAX_DESCRIPTION_CHARS)
    if "\n" in desc:
        raise SkillError("description must be one line", "description")
    args = check_arguments(arguments)
    if not isinstance(body, str) or not body.strip():
        raise SkillError("body must be a non-empty string", "body")
    body = body.strip("\n")  # the file ends it with one newline
    if len(body.encode()) > MAX_BODY_BYTES:
        raise SkillError(f"body is over {MAX_BODY_BYTES} bytes", "body")
    return Skill(checked_name, desc, args, body, dict(extra or {}))


# ---- the file format ----------------------------------------------------------
def _scalar(text: str) -> Any:
    text = text.strip()
    if text.startswith(('"', "[", "{")):
        try:
            return json.loads(text)
        except ValueError:
            raise SkillError(f"front matter: cannot read {text!r}", "markdown") from None
    if text in ("true", "false"):
        return text == "true"
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    return text


def _key_value(line: str) -> tuple[str, str]:
    key, sep, value = line.partition(":")
    if not sep or not key.strip():
        raise SkillError(f"front matter: expected 'key: value', got {line.strip()!r}", "markdown")
    return key.strip(), value


def parse_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The front matter as a dict and the body after it."""
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or lines[0].strip() != FENCE:
        raise SkillError("a skill file starts with a '---' line of front matter", "markdown")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == FENCE)
    except StopIteration:
        raise SkillError("the front matter has no closing '---' line", "markdown") from None
    meta: dict[str, Any] = {}
    current: list[dict[str, Any]] | None = None
    for raw in lines[1:end]:
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if not raw[0].isspace():  # a top-level key
            key, value = _key_value(raw)
            if value.strip():
                meta[key] = _scalar(value)
                current = None
            else:
                current = []
                meta[key] = current
            continue
        if current is None:
            raise SkillError(f"front matter: unexpected indented line {raw.strip()!r}", "markdown")
        stripped = raw.strip()
        if stripped.startswith("- ") or stripped == "-":
            current.append({})
            stripped = stripped[1:].strip()
            if not stripped:
                continue
        if not current:
            raise SkillError(f"front matter: expected '- name: ...', got {stripped!r}", "markdown")
        key, value = _key_value(stripped)
        current[-1][key] = _scalar(value)
    body = "\n".join(lines[end + 1 :])
    return meta, body.lstrip("\n")


def parse_markdown(text: str, extra_keys: tuple[str, ...] = ()) -> Skill:
    """A skill from its file's text; `extra_keys` are kept in `Skill.extra` (pending
    proposals keep `proposer` and `proposed_at` there)."""
    if len(text.encode()) > MAX_FILE_BYTES:
        raise SkillError(f"the skill file is over {MAX_FILE_BYTES} bytes", "markdown")
    meta, body = parse_front_matter(text)
    known = {"name", "description", "arguments", *extra_keys}
    unknown = set(meta) - known
    if unknown:
        raise SkillError(f"front matter has unknown keys {sorted(unknown)}", "markdown")
    extra = {k: str(meta[k]) for k in extra_keys if k in meta}
    return make_skill(meta.get("name"), meta.get("description"), meta.get("arguments"), body, extra)


def _quote(value: str) -> str:
    plain = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 _.,;()/+-]*", value) and value not in (
        "true",
        "false",
    )
    return value if plain and not value.endswith(" ") else json.dumps(value, ensure_ascii=False)


def render_markdown(skill: Skill) -> str:
    lines = [FENCE, f"name: {skill.name}", f"description: {_quote(skill.description)}"]
    if skill.arguments:
        lines.append("arguments:")
        for arg in skill.arguments:
            lines.append(f"  - name: {arg.name}")
            if arg.description:
                lines.append(f"    description: {_quote(arg.description)}")
            lines.append(f"    required: {'true' if arg.required else 'false'}")
    else:
        lines.append("arguments: []")
    for key, value in skill.extra.items():
        lines.append(f"{key}: {_quote(value)}")
    lines.append(FENCE)
    return "\n".join(lines) + "\n" + skill.body + "\n"


# ---- using a skill --------------------------------------------------------------
COMMAND_RE = re.compile(r"/([a-z0-9-]{1,64})(?=\s|$)")
MENTION_WORD_RE = re.compile(r"@([\w-]+)")


@dataclass(frozen=True)
class Invocation:
    """`/<skill> @agent [@agent2] args...` as typed: the skill, the agents, the words."""

    skill: str
    agents: tuple[str, ...]
    words: tuple[str, ...]


def parse_command(content: object) -> Invocation | None:
    """The invocation a message's content is, or None when it is not one: its first word
    is `/<name>`. `agents` may be empty (the caller decides what that means)."""
    if not isinstance(content, str):
        return None
    text = content.strip()
    match = COMMAND_RE.match(text)
    if match is None:
        return None
    rest = text[match.end() :]
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise SkillError(f"cannot read the arguments: {exc}", "payload.content") from None
    agents: list[str] = []
    while words and (mention := MENTION_WORD_RE.fullmatch(words[0])):
        if mention.group(1) not in agents:
            agents.append(mention.group(1))
        words.pop(0)
    return Invocation(match.group(1), tuple(agents), tuple(words))


def bind_arguments(skill: Skill, words: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Arguments by name: `key=value` words for declared names, the other words
    positionally in declared order (to those not named). SkillError for too many words,
    a name given twice, or a required argument missing."""
    declared = [a.name for a in skill.arguments]
    values: dict[str, str] = {}
    positional: list[str] = []
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key in declared:
            if key in values:
                raise SkillError(f"argument {key!r} is given twice", "payload.content")
            values[key] = value
        else:
            positional.append(word)
    free = [name for name in declared if name not in values]
    if len(positional) > len(free):
        raise SkillError(
            f"/{skill.name} takes {len(declared)} argument(s) "
            f"({', '.join(declared) or 'none'}); got extra: {' '.join(positional[len(free) :])}",
            "payload.content",
        )
    for name, value in zip(free, positional, strict=False):
        values[name] = value
    missing = [a.name for a in skill.arguments if a.required and a.name not in values]
    if missing:
        raise SkillError(
            f"/{skill.name} needs {', '.join(missing)}: {usage(skill)}", "payload.content"
        )
    return values


def usage(skill: Skill) -> str:
    parts = [f"/{skill.name} @agent"]
    for arg in skill.arguments:
        parts.append(f"{arg.name}=..." if arg.required else f"[{arg.name}=...]")
    return " ".join(parts)


def fill(skill: Skill, values: dict[str, str]) -> str:
    """The body with each declared argument's `{{name}}` replaced by its value."""
    declared = {a.name for a in skill.arguments}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in declared:
            return match.group(0)
        return values.get(name, "")

    return PLACEHOLDER_RE.sub(replace, skill.body)


def expansion(skill: Skill, invocation: Invocation) -> tuple[str, dict[str, str]]:
    """The content of the expanded message (the agents mentioned first) and the arguments."""
    values = bind_arguments(skill, invocation.words)
    mentions = " ".join(f"@{agent}" for agent in invocation.agents)
    return f"{mentions} {fill(skill, values).strip()}", values
