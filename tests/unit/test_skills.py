"""Skills, pure (scitex_orochi/protocol/skills.py): the file format both ways, names and
limits, the slash command, argument binding and `{{name}}` filling."""

from __future__ import annotations

import pytest

from scitex_orochi.protocol import skills as sk

DEPLOY = """---
name: deploy
description: "Deploy a service: to an environment"
arguments:
  - name: env
    description: where to deploy
    required: true
  - name: service
    required: false
---
Deploy {{service}} to {{ env }}; keep {{other}} as written.
"""


def test_a_file_is_read_and_written_back_the_same():
    skill = sk.parse_markdown(DEPLOY)
    assert skill.name == "deploy" and skill.description == "Deploy a service: to an environment"
    assert [a.to_dict() for a in skill.arguments] == [
        {"name": "env", "description": "where to deploy", "required": True},
        {"name": "service", "description": "", "required": False},
    ]
    assert sk.parse_markdown(skill.markdown()) == skill
    flow = '---\nname: x\narguments: [{"name": "a", "required": true}]\n---\nhi {{a}}\n'
    assert sk.parse_markdown(flow).arguments == (sk.Argument("a", "", True),)
    extra = sk.Skill("p", "d", (), "b", {"proposer": "w-1", "proposed_at": "2026-01-01"})
    assert sk.parse_markdown(extra.markdown(), ("proposer", "proposed_at")) == extra


@pytest.mark.parametrize(
    "text, field",
    [
        ("name: x\n---\nbody", "markdown"),
        ("---\nname: x\nbody", "markdown"),
        ("---\nname: Bad_Name\n---\nbody", "name"),
        ("---\nname: " + "a" * 65 + "\n---\nbody", "name"),
        ("---\nname: x\n---\n   \n", "body"),
        ("---\nname: x\ncolour: red\n---\nbody", "markdown"),
        ("---\nname: x\narguments:\n  - name: 1a\n---\nb", "arguments[0].name"),
        ("---\nname: x\narguments:\n  - name: a\n  - name: a\n---\nb", "arguments[1].name"),
        (
            "---\nname: x\narguments:\n  - name: a\n    required: yes\n---\nb",
            "arguments[0].required",
        ),
        ("---\nname: x\n---\n" + "y" * (sk.MAX_BODY_BYTES + 1), "body"),
    ],
)
def test_bad_files_name_the_field(text, field):
    with pytest.raises(sk.SkillError) as info:
        sk.parse_markdown(text)
    assert info.value.field == field, info.value.detail


def test_parse_command():
    inv = sk.parse_command('  /deploy @worker @w2 @worker env=prod "two words"')
    assert inv == sk.Invocation("deploy", ("worker", "w2"), ("env=prod", "two words"))
    assert sk.parse_command("/deploy") == sk.Invocation("deploy", (), ())
    assert sk.parse_command("hello /deploy @w") is None
    assert sk.parse_command("/tmp/foo is full") is None
    assert sk.parse_command("/Deploy @w") is None
    assert sk.parse_command(None) is None
    with pytest.raises(sk.SkillError):
        sk.parse_command('/deploy @w "unclosed')


def test_binding_and_filling():
    skill = sk.parse_markdown(DEPLOY)
    assert sk.bind_arguments(skill, ["prod"]) == {"env": "prod"}
    assert sk.bind_arguments(skill, ["service=api", "prod"]) == {"service": "api", "env": "prod"}
    assert sk.bind_arguments(skill, ["prod", "api"]) == {"env": "prod", "service": "api"}
    assert sk.bind_arguments(skill, ["x=y"]) == {"env": "x=y"}  # not a declared name
    for words, words_in_error in (
        ([], "needs env"),
        (["service=api"], "needs env"),
        (["a", "b", "c"], "extra: c"),
        (["env=a", "env=b"], "twice"),
    ):
        with pytest.raises(sk.SkillError) as info:
            sk.bind_arguments(skill, words)
        assert words_in_error in info.value.detail
    content, values = sk.expansion(skill, sk.Invocation("deploy", ("w1", "w2"), ("env=prod",)))
    assert values == {"env": "prod"}
    assert content == "@w1 @w2 Deploy  to prod; keep {{other}} as written."
