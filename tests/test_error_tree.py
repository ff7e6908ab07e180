"""The server's one exception tree (`scitex_orochi.hub.errors`): every wire code has an
HTTP status, every `HubError` carries its code, and its status comes from the table."""

from __future__ import annotations

import importlib

import pytest

from scitex_orochi.hub.errors import (
    HubError,
    IngestFull,
    InviteError,
    StoreError,
    as_code,
)
from scitex_orochi.protocol import codec
from scitex_orochi.protocol.errors import HTTP_STATUS, ErrorCode, http_status

# Every module that defines a HubError subclass; importing them fills the tree.
TREE_MODULES = (
    "scitex_orochi.hub.errors",
    "persister.rows",
    "bridges.gitea.actions",
    "bridges.gitea.authority",
    "bridges.gitea.api",
)
# Classes whose constructor is not `(detail)`, with the arguments to build one.
ARGS: dict[str, tuple] = {
    "IngestFull": (10, 5),
    "ActionError": (ErrorCode.GITEA_MISSING_PARAM, "detail"),
    "GiteaApiError": (None, "detail"),
}
# Statuses relayed rather than looked up (documented in hub/errors.py).
RELAYED = {"GiteaApiError", "WorkerTimeout"}


def tree(modules: tuple[str, ...] = TREE_MODULES) -> list[type[HubError]]:
    for name in modules:
        importlib.import_module(name)
    seen: list[type[HubError]] = []
    stack = [HubError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


def build(cls: type[HubError]) -> HubError:
    return cls(*ARGS.get(cls.__name__, ("detail",)))


def test_every_code_has_a_status():
    assert set(HTTP_STATUS) == set(ErrorCode)
    for code in ErrorCode:
        assert 400 <= http_status(code) <= 599, code
    assert http_status("NOT_A_CODE") == 500


@pytest.mark.parametrize("cls", tree(), ids=lambda c: c.__name__)
def test_every_hub_error_carries_its_code_and_status(cls):
    exc = build(cls)
    assert isinstance(exc.code, ErrorCode)
    if cls.__name__ not in RELAYED:
        assert exc.http_status == http_status(exc.code)
    body = exc.body
    assert body["status"] == exc.http_status and isinstance(body["error"], str)
    assert ("code" in body) == cls.code_in_body
    assert cls.__doc__, f"{cls.__name__} needs a docstring"


def test_the_tree_drawn_in_the_docstring_is_the_tree():
    import scitex_orochi.hub.errors as errors

    for cls in tree():
        assert cls.__name__ in errors.__doc__, cls.__name__


def test_store_errors_say_what_went_wrong_by_class_not_by_text():
    from scitex_orochi.hub.errors import InviteGone, UnknownInvite, WorkspaceNotFound

    assert UnknownInvite("unknown invite").http_status == 404
    assert InviteGone("invite expired").http_status == 410
    assert issubclass(UnknownInvite, InviteError) and issubclass(InviteGone, InviteError)
    assert WorkspaceNotFound("x").http_status == 404 and issubclass(WorkspaceNotFound, StoreError)


def test_errors_keep_their_builtin_bases():
    """Code that caught the builtin still catches the error."""
    from bridges.gitea.actions import ActionError
    from bridges.gitea.authority import GiteaForbidden
    from persister.rows import InvalidInbound
    from scitex_orochi.hub.errors import BusError, ConfigError, IngestTimeout

    assert issubclass(ConfigError, ValueError) and issubclass(BusError, RuntimeError)
    assert issubclass(IngestTimeout, TimeoutError) and issubclass(IngestFull, RuntimeError)
    assert issubclass(ActionError, ValueError) and issubclass(GiteaForbidden, PermissionError)
    assert issubclass(InvalidInbound, ValueError)
    assert str(ConfigError("SCITEX_OROCHI_PORT='x' is not an integer")).startswith("SCITEX")


def test_gitea_api_errors_relay_gitea_4xx_and_answer_502_otherwise():
    from bridges.gitea.api import GiteaApiError

    assert GiteaApiError(404, "gone").http_status == 404
    assert GiteaApiError(404, "gone").body["gitea_status"] == 404
    assert GiteaApiError(503, "down").http_status == 502
    no_answer = GiteaApiError(None, "cannot reach Gitea")
    assert no_answer.http_status == 502 and "gitea_status" not in no_answer.body


def test_protocol_errors_carry_a_code_and_the_field_to_blame():
    with pytest.raises(codec.ProtocolError) as exc:
        codec.parse_frame('{"type": "message", "payload": {"channel": "#g", "content": 5}}')
    assert exc.value.code is ErrorCode.INVALID_FIELD and exc.value.field == "payload.content"
    with pytest.raises(codec.ProtocolError) as exc:
        codec.parse_frame("{")
    assert exc.value.code is ErrorCode.PARSE_ERROR and exc.value.field is None
    with pytest.raises(codec.ProtocolError) as exc:
        codec.check_name("a|b", "agent_name")
    assert exc.value.field == "agent_name"


def test_codes_from_other_processes_are_read_safely():
    assert as_code("DUPLICATE_ID", ErrorCode.INVALID_MESSAGE) is ErrorCode.DUPLICATE_ID
    assert as_code("SOMETHING_NEW", ErrorCode.INVALID_MESSAGE) is ErrorCode.INVALID_MESSAGE
    assert as_code(None, ErrorCode.GITEA_API_ERROR) is ErrorCode.GITEA_API_ERROR
