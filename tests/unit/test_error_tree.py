"""The server's one exception tree (`scitex_orochi.hub.errors`): every wire code has an
HTTP status, every `HubError` carries its code, and its status comes from the table."""

from __future__ import annotations

import importlib
import json

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

from support.util import REPO

# Every module that defines a HubError subclass; importing them fills the tree.
TREE_MODULES = (
    "scitex_orochi.hub.errors",
    "persister.rows",
    "bridges.gitea.actions",
    "bridges.gitea.authority",
    "bridges.gitea.api",
    "gateway_http.errors",
    "gateway_http.posting",
    "gateway_http.gitea_routes",
)
# Classes whose constructor is not `(detail)`, with the arguments to build one.
ARGS: dict[str, tuple] = {
    "IngestFull": (10, 5),
    "ActionError": (ErrorCode.GITEA_MISSING_PARAM, "detail"),
    "GiteaApiError": (None, "detail"),
    "WorkerTimeout": (),
    "ApiError": (ErrorCode.CONFLICT, "detail"),
    "MessageRefused": (ErrorCode.DUPLICATE_ID, "detail", "m-1"),
    "RpcError": ({"code": "GITEA_API_ERROR", "detail": "detail"},),
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


@pytest.mark.parametrize("cls", tree(), ids=lambda c: c.__name__)
async def test_the_middleware_renders_every_hub_error_with_its_status(cls):
    from aiohttp.test_utils import make_mocked_request

    from gateway_http.errors import error_middleware

    exc = build(cls)

    async def handler(request):
        raise exc

    response = await error_middleware(make_mocked_request("GET", "/x"), handler)
    assert response.status == exc.http_status
    body = json.loads(response.text)
    if exc.code is ErrorCode.SERVER_ERROR:  # a failure's text stays in the log
        assert body == {"error": "internal server error", "status": 500}
    else:
        assert body == exc.body


async def test_the_middleware_keeps_headers_and_closes_after_a_413():
    from aiohttp.test_utils import make_mocked_request

    from gateway_http.errors import error_middleware, too_large, unauthorized

    async def refuse(request):
        raise unauthorized()

    response = await error_middleware(make_mocked_request("GET", "/x"), refuse)
    assert response.status == 401 and "Bearer" in response.headers["WWW-Authenticate"]

    async def big(request):
        raise too_large("request body over 10 bytes", 10)

    response = await error_middleware(make_mocked_request("POST", "/x"), big)
    assert response.status == 413 and json.loads(response.text)["limit"] == 10
    assert response.keep_alive is False


def test_worker_errors_come_back_as_the_workers_exceptions():
    from bridges.gitea.actions import ActionError
    from bridges.gitea.api import GiteaApiError
    from gateway_http.gitea_routes import WorkerTimeout, worker_error

    missing = worker_error({"code": "GITEA_MISSING_PARAM", "detail": "title"})
    assert isinstance(missing, ActionError) and missing.http_status == 400
    assert missing.body["code"] == "GITEA_MISSING_PARAM"
    gone = worker_error({"code": "GITEA_API_ERROR", "detail": "no repo", "status": 404})
    assert isinstance(gone, GiteaApiError) and gone.http_status == 404
    assert gone.body == {
        "error": "no repo",
        "status": 404,
        "code": "GITEA_API_ERROR",
        "gitea_status": 404,
    }
    assert worker_error({"detail": "crashed"}).http_status == 502
    assert WorkerTimeout().http_status == 504 and WorkerTimeout().body["code"] == "GITEA_API_ERROR"


def test_refused_posts_carry_the_persisters_code():
    from gateway_http.posting import MessageRefused

    dup = MessageRefused(ErrorCode.DUPLICATE_ID, "this id belongs to another message", "m-1")
    assert dup.http_status == 409
    assert dup.body == {
        "error": "this id belongs to another message",
        "status": 409,
        "code": "DUPLICATE_ID",
        "id": "m-1",
    }
    assert MessageRefused(ErrorCode.INVALID_MESSAGE, "bad", "m-2").http_status == 400


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


# Modules that name codes only through ErrorCode (gateway_ws, service.py and the
# bridges' services adopt it with the shared bus peer).
NO_CODE_LITERALS = (
    "scitex_orochi/protocol/codec.py",
    "scitex_orochi/hub/errors.py",
    "scitex_orochi/hub/store.py",
    "scitex_orochi/hub/store_admin.py",
    "scitex_orochi/hub/config.py",
    "persister/rows.py",
    "bridges/gitea/actions.py",
    "bridges/gitea/authority.py",
    "bridges/gitea/api.py",
    *(
        str(path.relative_to(REPO))
        for package in ("gateway_http", "gateway_ws", "bridges")
        for path in sorted((REPO / package).rglob("*.py"))
    ),
)


@pytest.mark.parametrize("path", NO_CODE_LITERALS)
def test_no_wire_code_is_a_string_literal(path):
    import ast

    tree_ = ast.parse((REPO / path).read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree_)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    codes = {code.value for code in ErrorCode}
    found = [
        (node.lineno, node.value)
        for node in ast.walk(tree_)
        if isinstance(node, ast.Constant) and node.value in codes and id(node) not in docstrings
    ]
    assert not found, found
