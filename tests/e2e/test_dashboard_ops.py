"""The dashboard's fleet operations in headless Debian Chromium (Playwright), against a real
hub with real agents: the health pills and header counts match the hub's classes (and a
reported class shows with its source), the agent card and detail show the current task
and the subagents, an admin kicks (the agent sees 4005 and leaves presence), forgets and
purges from the page, and approves a skill proposal in the skills view. One browser and
one hub for the module; the tests run in order on the same hub.
"""

from __future__ import annotations

import asyncio
import re

import pytest
import pytest_asyncio

from support.agent import RawAgent
from support.agent_b import AgentB
from support.browser import DESKTOP, chromium, new_tab, screenshot_path
from support.http_util import Api, wait_http_ready
from support.util import TIME_SCALE, eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

try:
    from playwright.async_api import expect
except ImportError:  # pragma: no cover - skipped by support.browser
    expect = None

POLL_MS = int(15_000 * TIME_SCALE)  # the agents panel polls every 5 s


@pytest.fixture(scope="module")
def http_hub(shared_hub):
    wait_http_ready(shared_hub)
    return shared_hub


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser():
    async with chromium() as b:
        yield b


@pytest_asyncio.fixture(loop_scope="module")
async def admin(http_hub):
    client = Api(http_hub.http_url, http_hub.admin_token)
    yield client
    await client.close()


@pytest_asyncio.fixture(loop_scope="module")
async def member(http_hub):
    client = Api(http_hub.http_url, http_hub.default_token)
    yield client
    await client.close()


async def open_dashboard(page, hub, token: str) -> None:
    await page.goto(f"{hub.http_url}/?token={token}")
    await page.wait_for_selector("#app:not([hidden])")
    await page.locator("#conn.conn-live").wait_for(state="attached")


def card(page, name: str):
    return page.locator(f'#agents .agent[data-name="{name}"]')


async def open_detail(page, name: str):
    await card(page, name).click()
    detail = page.locator("#agent-detail")
    await expect(page.locator("#agent-detail-title")).to_have_text(name)
    return detail


async def summary(page) -> dict[str, int]:
    return await page.locator("#health-summary .pill").evaluate_all(
        "(ps) => Object.fromEntries(ps.map((p) => [p.dataset.health, Number(p.dataset.count)]))"
    )


def named(rows, name: str) -> dict | None:
    return next((a for a in rows if a["name"] == name), None)


async def lasting(api: Api, name: str) -> bool:
    """In the registry the persister writes (it has `first_seen`)."""
    _s, body = await api.get("/api/agents/registry")
    entry = named(body, name)
    return entry is not None and bool(entry.get("first_seen"))


async def test_health_pills_and_header_counts_follow_the_hub(http_hub, browser, admin, member):
    busy = await RawAgent.connect(http_hub.agent_url(), "ops-busy", ["#ops"])
    idle = await RawAgent.connect(http_hub.agent_url(), "ops-idle", ["#ops"])
    gone = await RawAgent.connect(http_hub.agent_url(), "ops-gone", ["#ops"])
    fleet = await AgentB.connect(http_hub.ws_url, http_hub.default_token, "ops-fleet")
    try:
        await idle.request({"type": "status_update", "payload": {"status": "idle"}})
        await gone.close()
        assert (await fleet.register())["type"] == "registered"
        await fleet.send("task_update", {"task": "triage the CI failures"})
        await fleet.send(
            "subagents_update",
            {
                "subagents": [
                    {"name": "scout", "task": "read the logs", "status": "running"},
                    {"name": "fixer", "status": "idle"},
                ]
            },
        )

        async def classes() -> dict | None:
            _s, body = await admin.get("/api/agents/health")
            by = {e["name"]: e["health"] for e in body["agents"]}
            want = {"ops-busy": "healthy", "ops-idle": "idle", "ops-gone": "dead"}
            return body if all(by.get(k) == v for k, v in want.items()) else None

        hub_view = await eventually(classes, 10, "the hub's classes")
        page = await new_tab(browser, DESKTOP)
        await open_dashboard(page, http_hub, http_hub.admin_token)
        await expect(card(page, "ops-fleet").locator(".task")).to_have_text(
            "triage the CI failures", timeout=POLL_MS
        )
        await expect(card(page, "ops-fleet").locator(".agent-subagents")).to_have_text(
            "2 subagents: scout, fixer"
        )
        for name, health in (("ops-busy", "healthy"), ("ops-idle", "idle")):
            pill = card(page, name).locator(".agent-top .pill")
            await expect(pill).to_have_attribute("data-health", health)
            await expect(pill).to_have_attribute("title", re.compile(r"\(source hub\)"))
        await expect(card(page, "ops-idle").locator(".pill")).to_have_attribute(
            "title", re.compile(r"^idle: status idle")
        )
        # The disconnected agent is collapsed under "1 offline", dead when shown.
        await expect(card(page, "ops-gone")).to_have_count(0)
        toggle = page.locator(".offline-toggle button")
        await expect(toggle).to_have_text(re.compile(r"1 offline"))
        await toggle.click()
        await expect(card(page, "ops-gone").locator(".pill")).to_have_attribute(
            "data-health", "dead"
        )
        # The header counts what the hub counts (every class it names; zeros not shown).
        wanted = {k: n for k, n in hub_view["counts"].items() if n}
        assert wanted == {"healthy": 2, "idle": 1, "dead": 1}, hub_view["counts"]
        await eventually(lambda: _same(page, wanted), 10, f"header counts {wanted}")
        await expect(page.locator('#health-summary .pill[data-health="idle"]')).to_have_text(
            "1 idle"
        )
        await page.screenshot(path=screenshot_path("dashboard-health-desktop.png"))

        # The detail: health with reason and source, the task, the subagent list.
        detail = await open_detail(page, "ops-fleet")
        await expect(detail.locator('dd[data-field="current_task"]')).to_have_text(
            "triage the CI failures"
        )
        await expect(detail.locator('dd[data-field="subagents"] li')).to_have_text(
            ["scout (running): read the logs", "fixer (idle)"]
        )
        await expect(detail.locator('dd[data-field="health"]')).to_contain_text("(source hub)")
        await page.keyboard.press("Escape")

        # A diagnosis reported with a workspace token shows with its source.
        status, body = await member.post(
            "/api/agents/health/",
            {
                "agent": "ops-busy",
                "status": "stuck_prompt",
                "reason": "a permission prompt waits",
                "source": "healer",
            },
        )
        assert status == 200 and body["applied"] == 1, body
        detail = await open_detail(page, "ops-busy")
        health = detail.locator('dd[data-field="health"]')
        await expect(health).to_contain_text("stuck_prompt", timeout=POLL_MS)
        await expect(health).to_contain_text("a permission prompt waits")
        await expect(health).to_contain_text("healer")
        await expect(card(page, "ops-busy").locator(".pill")).to_have_attribute(
            "title", re.compile(r"stuck_prompt.*healer", re.S)
        )
        assert page.errors == []
        await page.context.close()
    finally:
        for a in (busy, idle, gone):
            await a.close()
        await fleet.close()


async def _same(page, wanted: dict[str, int]) -> bool:
    return await summary(page) == wanted


async def test_unknown_classes_render_as_a_neutral_pill(http_hub, browser):
    """A class this page has no colour for (a newer hub's) is still shown, neutral."""
    page = await new_tab(browser, DESKTOP)
    await open_dashboard(page, http_hub, http_hub.admin_token)
    html = await page.evaluate(
        """async () => {
             const h = await import('/static/health.js');
             const p = h.pill('quarantined', 'x');
             return [p.className, p.textContent, h.pill('ghost').className];
           }"""
    )
    assert html == ["pill other", "quarantined", "pill ghost"]
    await page.context.close()


async def test_an_admin_kicks_and_forgets_from_the_detail(http_hub, browser, admin):
    victim = await RawAgent.connect(http_hub.agent_url(), "kick-me", ["#ops"])
    try:
        await eventually(lambda: lasting(admin, "kick-me"), 10, "kick-me in the registry")
        # A workspace token's page offers none of the operator actions.
        viewer = await new_tab(browser, DESKTOP)
        await open_dashboard(viewer, http_hub, http_hub.default_token)
        await open_detail(viewer, "kick-me")
        await expect(viewer.locator("#agent-detail-body dd").first).to_be_attached()
        await expect(viewer.locator("#agent-detail-ops button")).to_have_count(0)
        await expect(viewer.locator("#purge-dead")).to_have_count(0)
        await viewer.context.close()

        page = await new_tab(browser, DESKTOP)
        await open_dashboard(page, http_hub, http_hub.admin_token)
        await open_detail(page, "kick-me")
        ops = page.locator("#agent-detail-ops")
        await ops.locator('[data-op="kick"]').click()
        ask = ops.locator(".confirm-op")
        await expect(ask).to_contain_text("Kick kick-me?")
        await ask.locator('[data-op="cancel"]').click()  # nothing happens on Cancel
        await expect(ask).to_have_count(0)
        assert not victim.closed.done()
        await ops.locator('[data-op="kick"]').click()
        await ask.locator('[data-op="confirm"]').click()
        await expect(ops.locator(".op-result")).to_have_text("kicked kick-me")
        code, reason = await asyncio.wait_for(victim.closed, 10 * TIME_SCALE)
        assert code == 4005, (code, reason)

        async def left() -> bool:
            _s, body = await admin.get("/api/agents")
            return named(body, "kick-me") is None

        await eventually(left, 10, "kick-me gone from presence")
        # Offline now: Kick goes, Forget stays.
        await expect(ops.locator('[data-op="kick"]')).to_have_count(0, timeout=POLL_MS)
        await expect(page.locator("#agent-detail-health")).to_have_text("dead")
        await ops.locator('[data-op="forget"]').click()
        await expect(ask).to_contain_text("Forget kick-me?")
        await ask.locator('[data-op="confirm"]').click()
        await expect(ops.locator(".op-result")).to_have_text(
            re.compile(r"^forgot kick-me \(\d+ registry entr")
        )
        _s, rows = await admin.get("/api/agents/registry")
        assert named(rows, "kick-me") is None, rows
        await expect(page.locator("#agent-detail-body")).to_contain_text("no longer listed")
        await page.screenshot(path=screenshot_path("dashboard-forgot-desktop.png"))
        assert page.errors == [] and page.dialogs == []
        await page.context.close()
    finally:
        await victim.close()


async def test_an_admin_purges_the_dead_from_the_panel(http_hub, browser, admin):
    for name in ("old-1", "old-2"):
        agent = await RawAgent.connect(http_hub.agent_url(), name, ["#ops"])
        await agent.close()
    live = await RawAgent.connect(http_hub.agent_url(), "still-here", ["#ops"])
    try:
        for name in ("old-1", "old-2"):
            await eventually(lambda n=name: lasting(admin, n), 10, f"{name} in the registry")
        page = await new_tab(browser, DESKTOP)
        await open_dashboard(page, http_hub, http_hub.admin_token)
        await page.locator("#purge-dead").click()
        box = page.locator("#agent-ops .confirm-op")
        await box.locator("#purge-older").fill("0")
        preview = box.locator(".purge-preview")
        await expect(preview).to_contain_text("old-1")
        await expect(preview).to_contain_text("old-2")
        await expect(preview).not_to_contain_text("still-here")
        await box.locator('[data-op="confirm"]').click()
        result = page.locator("#agent-ops .op-result")
        await expect(result).to_have_text(re.compile(r"^forgot \d+: .*old-1, old-2"))
        _s, rows = await admin.get("/api/agents/registry")
        names = {r["name"] for r in rows}
        assert not {"old-1", "old-2"} & names and "still-here" in names, names
        await expect(page.locator(".offline-toggle")).to_have_count(0, timeout=POLL_MS)
        assert page.errors == []
        await page.context.close()
    finally:
        await live.close()


async def test_the_skills_view_lists_skills_and_an_admin_approves_a_proposal(
    http_hub, browser, admin, member
):
    status, body = await admin.request(
        "PUT",
        "/api/skills/deploy",
        json_body={
            "description": "Deploy a service",
            "arguments": [{"name": "env", "required": True}],
            "body": "Deploy to {{env}}.",
        },
    )
    assert status in (200, 201), body
    proposer = await RawAgent.connect(http_hub.agent_url(), "skill-bot", ["#ops"])
    try:
        for name in ("review", "lint"):
            status, body = await member.post(
                f"/api/skills/{name}/propose",
                {"proposer": "skill-bot", "description": f"{name} it", "body": f"Please {name}."},
            )
            assert status == 202, body
        page = await new_tab(browser, DESKTOP)
        await open_dashboard(page, http_hub, http_hub.admin_token)
        await page.locator("#skills-btn").click()
        panel = page.locator("#side-panel")
        deploy = panel.locator('.skill-row[data-kind="skill"][data-name="deploy"]')
        await expect(deploy.locator(".skill-usage")).to_have_text("/deploy @agent env=…")
        await expect(deploy).to_contain_text("Deploy a service")
        pending = panel.locator('.skill-row[data-kind="pending"]')
        await expect(pending).to_have_count(2)
        await expect(pending.filter(has_text="review")).to_contain_text("proposed by skill-bot")
        await pending.filter(has_text="/review").locator('[data-verb="approve"]').click()
        await expect(panel.locator(".op-result")).to_have_text("approved review")
        approved = panel.locator('.skill-row[data-kind="skill"][data-name="review"]')
        await expect(approved).to_be_visible()
        await pending.filter(has_text="/lint").locator('[data-verb="reject"]').click()
        await expect(panel.locator(".op-result")).to_have_text("rejected lint")
        await expect(panel.locator('.skill-row[data-kind="pending"]')).to_have_count(0)
        status, body = await admin.get("/api/skills/review")
        assert status == 200 and body["body"].startswith("Please review"), body
        status, body = await admin.get("/api/skills/lint")
        assert status == 404, body
        await page.screenshot(path=screenshot_path("dashboard-skills-desktop.png"))
        assert page.errors == []
        await page.context.close()
    finally:
        await proposer.close()
