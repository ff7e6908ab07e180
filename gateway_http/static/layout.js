/* Layout on narrow screens: below 1100 px the agents panel, below 700 px the channel
 * panel too, are drawers, opened by the buttons of the channel header and closed by a
 * tap outside, a channel chosen, or Escape. Escape closes the topmost thing open: the
 * emoji picker, else the agent detail, else the side panel (thread, search), else a
 * drawer, else the message actions. */
import { hideActions } from "./actions.js";
import { agentDetailOpen, closeAgentDetail } from "./agentdetail.js";
import { $ } from "./dom.js";
import { closePanel, panelKind } from "./panel.js";
import { closePicker } from "./reactions.js";

const DRAWERS = {
  sidebar: { panel: "sidebar", button: "menu-btn", query: "(max-width: 700px)" },
  agents: { panel: "agents-panel", button: "agents-btn", query: "(max-width: 1100px)" },
};
let open = null;  // the name of the open drawer

export function drawerOpen() { return open; }

export function openDrawer(name) {
  if (open === name) return;
  closeDrawer(false);
  const d = DRAWERS[name];
  open = name;
  $("app").classList.add(`open-${name}`);
  $(d.button).setAttribute("aria-expanded", "true");
  syncBackdrop();
  $(d.panel).focus({ preventScroll: true });
}

export function closeDrawer(restoreFocus = true) {
  if (!open) return;
  const d = DRAWERS[open];
  const panel = $(d.panel);
  $("app").classList.remove(`open-${open}`);
  $(d.button).setAttribute("aria-expanded", "false");
  open = null;
  syncBackdrop();
  if (restoreFocus && panel.contains(document.activeElement)) $(d.button).focus({ preventScroll: true });
}

/** The shade behind a drawer or the agent detail: a tap on it closes the topmost. */
export function syncBackdrop() {
  const detail = agentDetailOpen();
  const shade = $("backdrop");
  shade.hidden = !open && !detail;
  shade.classList.toggle("over-drawer", detail);
}

function toggle(name) {
  if (open === name) closeDrawer(); else openDrawer(name);
}

function closeTop() {
  if (closePicker()) return;
  if (agentDetailOpen()) closeAgentDetail();
  else if (panelKind()) closePanel();
  else if (open) closeDrawer();
  else hideActions();
}

export function wireLayout() {
  $("menu-btn").addEventListener("click", () => toggle("sidebar"));
  $("agents-btn").addEventListener("click", () => toggle("agents"));
  $("backdrop").addEventListener("click", () => {
    if (agentDetailOpen()) closeAgentDetail(); else closeDrawer();
  });
  for (const id of ["channels", "dms"]) {
    $(id).addEventListener("click", (e) => {
      if (e.target.closest(".channel") && open === "sidebar") closeDrawer();
    });
    $(id).addEventListener("keydown", (e) => {
      const li = e.target.closest(".channel");
      if (li && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); li.click(); }
    });
  }
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !e.defaultPrevented) closeTop();
  });
  // Widening the window past a drawer's breakpoint puts its panel back in the page.
  for (const d of Object.values(DRAWERS)) {
    matchMedia(d.query).addEventListener("change", (q) => {
      if (!q.matches && open && DRAWERS[open] === d) closeDrawer(false);
    });
  }
}
