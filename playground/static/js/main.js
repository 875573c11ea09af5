// The playground's entry: the access form (API key, admin token), the tabs, and the panels.
// Generation panels need only what /v1 allows; the admin panels (weight sets, jobs) are built
// once the admin token is accepted and removed when it is forgotten or refused.

import { access, admin, ApiError, v1 } from "./api.js";
import { ComparePanel } from "./compare.js";
import { clear, el, showError } from "./dom.js";
import { JobsPanel } from "./jobs.js";
import { SweepPanel } from "./sweep.js";
import { WeightSetsPanel } from "./weightsets.js";

const ADMIN_PANELS = { weightsets: WeightSetsPanel, jobs: JobsPanel };
const status = document.getElementById("access-status");
const main = document.querySelector("main");
const adminPanels = {};

function selectTab(name) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const selected = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    const panel = document.getElementById(tab.getAttribute("aria-controls"));
    if (panel) panel.hidden = !selected;
  }
}

function setUpTabs() {
  const tabs = () => [...document.querySelectorAll("[role=tab]")].filter((t) => !t.hidden);
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => selectTab(tab.id.slice(4)));
    tab.addEventListener("keydown", (event) => {
      const shown = tabs();
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = shown[(shown.indexOf(tab) + step + shown.length) % shown.length];
      next.focus();
      selectTab(next.id.slice(4));
    });
  }
  selectTab("compare");
}

// The generation panels, over /v1/mixture (rebuilt when the live defaults or the sets change).
async function loadMixture() {
  const mixture = await v1("/v1/mixture");
  document.getElementById("mixture-name").textContent = mixture.id;
  new ComparePanel(document.getElementById("panel-compare"), mixture);
  new SweepPanel(document.getElementById("panel-sweep"), mixture);
  return mixture;
}

function removeAdminPanels() {
  for (const name of Object.keys(ADMIN_PANELS)) {
    delete adminPanels[name];
    document.getElementById(`panel-${name}`)?.remove();
    document.getElementById(`tab-${name}`).hidden = true;
  }
  if (document.querySelector("[role=tab][aria-selected=true]")?.hidden !== false) selectTab("compare");
}

let unlocking = 0; // the latest unlock wins: two quick submits build the panels once

async function unlockAdmin(mixture) {
  const mine = ++unlocking;
  removeAdminPanels();
  if (!access.adminToken) return;
  try {
    await admin("/admin/mixture");
    if (mine !== unlocking) return;
  } catch (error) {
    if (mine !== unlocking) return;
    status.textContent = error instanceof ApiError && error.status === 401 ? "admin token refused" : error.message;
    return;
  }
  status.textContent = "admin unlocked for this tab";
  // The live defaults or the stored sets changed: the other panels show it.
  const refresh = async () => {
    await loadMixture();
    await adminPanels.weightsets?.refresh();
  };
  for (const [name, Panel] of Object.entries(ADMIN_PANELS)) {
    const panel = el("section", { id: `panel-${name}`, role: "tabpanel", "aria-labelledby": `tab-${name}`, hidden: true });
    main.append(panel);
    adminPanels[name] = new Panel(panel, mixture, refresh);
    document.getElementById(`tab-${name}`).hidden = false;
  }
}

async function start() {
  setUpTabs();
  const form = document.getElementById("access");
  const key = document.getElementById("api-key");
  const token = document.getElementById("admin-token");
  key.value = access.apiKey;
  token.value = access.adminToken;
  const load = async () => {
    showError(null);
    try {
      const mixture = await loadMixture();
      status.textContent = "";
      await unlockAdmin(mixture);
    } catch (error) {
      clear(document.getElementById("panel-compare"), el("p", { class: "error-text" },
        error.status === 401 ? `The API key was refused: ${error.message}` : error.message));
      showError(error);
    }
    document.body.dataset.loaded = "true"; // tests and scripts wait for this
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    access.set(key.value.trim(), token.value.trim());
    load();
  });
  document.getElementById("forget").addEventListener("click", () => {
    access.set("", "");
    key.value = token.value = "";
    status.textContent = "forgotten";
    removeAdminPanels();
  });
  await load();
}

start();
