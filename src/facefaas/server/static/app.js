// Entry point of the facefaas page: tabs, then the Detect, Models and Jobs tabs.

import * as api from "./api.js";
import { setupDetect } from "./detect.js";
import { setupJobs } from "./jobs.js";
import { setupModels } from "./models.js";

/** ARIA tabs: click or arrow keys switch; the URL hash (#detect, #models, #jobs) selects on
 * load. */
function setupTabs(onSelect) {
  const tabs = [...document.querySelectorAll("[role=tab]")];

  function select(tab, { focus = false, updateHash = true } = {}) {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) tab.focus();
    if (updateHash && window.location.hash !== tab.dataset.hash) {
      window.history.replaceState(null, "", tab.dataset.hash);
    }
    onSelect(tab.dataset.hash);
  }

  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -index, End: tabs.length - 1 - index };
      if (!(event.key in moves)) return;
      event.preventDefault();
      select(tabs[(index + moves[event.key] + tabs.length) % tabs.length], { focus: true });
    });
  });
  const fromHash = () => tabs.find((t) => t.dataset.hash === window.location.hash) || tabs[0];
  window.addEventListener("hashchange", () => select(fromHash(), { updateHash: false }));
  select(fromHash(), { updateHash: false });
}

const detect = setupDetect();
const jobs = setupJobs();
const models = setupModels((list) => {
  detect.refreshModels(list);
  jobs.refreshModels(list);
});
setupTabs((hash) => {
  if (hash === "#models") models.refresh();
  if (hash === "#jobs") jobs.refreshModels();
});
detect.refreshModels();
api.info().then((info) => {
  detect.setLimits(info);
  detect.setFunctions(info.function_details); // absent from older servers: Blur and Pixelate
  jobs.setFunctions(info.function_details);
  jobs.setLimits(info);
  detect.setFamilies(info.families); // absent from older servers: MTCNN's parameters only
  models.familiesChanged();
  models.setLimits(info);
}).catch((error) => {
  // Limits are hints only, and the Render buttons stay the fallback ones; every request still
  // reports its own errors.
  console.warn("GET /api/info failed:", error.message);
});
document.documentElement.dataset.ready = "true";
