// ablate serve: one page, three views (#/ experiments, #/e/NAME, #/compare/A/B), polled every
// 2 s with the last ETag, so an unchanged store answers 304 and nothing is redrawn. Every text
// from the store is set with textContent (never parsed as HTML).
"use strict";

const POLL_MS = 2000;
const state = { key: null, etag: null, data: null, offset: 0, busy: false };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function fmtS(s) {
  if (s === null || s === undefined) return "–";
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m" + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(m / 60) + "h" + String(m % 60).padStart(2, "0") + "m";
}
function ago(t) { return t ? fmtS(Date.now() / 1000 - state.offset - t) + " ago" : "–"; }
function num(v, d) { return v === null || v === undefined ? "–" : Number(v).toFixed(d); }

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "e" && parts[1]) return { view: "experiment", name: parts[1], api: "/api/experiment/" + encodeURIComponent(parts[1]) };
  if (parts[0] === "compare" && parts[2]) {
    const q = "a=" + encodeURIComponent(parts[1]) + "&b=" + encodeURIComponent(parts[2]);
    return { view: "compare", names: [parts[1], parts[2]], api: "/api/compare?" + q, query: q };
  }
  return { view: "overview", api: "/api/overview" };
}

function table(header, rows, opts) {
  opts = opts || {};
  const text = new Set(opts.text || [0]);
  const head = el("tr", {}, header.map((h, i) => el("th", { class: text.has(i) ? "text" : null, text: h })));
  const body = rows.map((r, j) => el("tr", { class: opts.rowClass ? opts.rowClass(j) : null },
    r.map((c, i) => c instanceof Node ? el("td", { class: text.has(i) ? "text" : null }, c)
      : el("td", { class: (opts.err === i ? "err" : text.has(i) ? "text" : null), text: c }))));
  return el("table", { id: opts.id || null }, el("thead", {}, head), el("tbody", {}, body));
}

function runningTable(running, withExperiment) {
  if (!running.length) return el("p", { class: "muted", text: "no trial running" });
  const header = (withExperiment ? ["Experiment"] : []).concat(["Trial", "Seed", "Epoch", "Elapsed", "ETA", "Attempt"]);
  const rows = running.map(r => (withExperiment ? [r.experiment] : []).concat([
    r.label, String(r.seed), r.epochs ? r.epoch + "/" + r.epochs : String(r.epoch),
    el("span", { class: "elapsed", "data-started": r.started, text: fmtS(r.elapsed_s) }),
    r.eta_s === null ? "–" : "~" + fmtS(r.eta_s), String(r.attempt)]));
  return table(header, rows, { text: withExperiment ? [0, 1] : [0], id: "running-table" });
}

function counts(c) {
  return el("span", { class: "counts" }, Object.entries(c).map(([k, v]) => el("span", { class: "count-" + k, text: v + " " + k })));
}

function overview(d) {
  const main = [el("h1", { text: "Experiments" })];
  if (!d.experiments.length) main.push(el("p", { class: "muted", text: "no experiments in this store yet: the list fills in when `ablate run` writes to it" }));
  else {
    const rows = d.experiments.map(e => [el("a", { href: "#/e/" + encodeURIComponent(e.name), text: e.name }), e.kind,
      counts(e.counts), String(e.running.length), e.mean_trial_s === null ? "–" : fmtS(e.mean_trial_s),
      e.eta_s === null ? "–" : "~" + fmtS(e.eta_s), ago(e.last_update)]);
    main.push(table(["Experiment", "Kind", "Trials", "Running", "Mean trial", "ETA", "Last update"], rows,
      { text: [0, 1, 2], id: "experiments-table" }));
    main.push(el("h2", { text: "Running trials" }), runningTable(d.experiments.flatMap(e => e.running), true));
    if (d.experiments.length > 1) {
      const names = d.experiments.map(e => e.name);
      // a redraw (the store changed) keeps what was picked
      const was = id => (document.getElementById(id) || {}).value;
      const pick = (id, i) => {
        const keep = names.includes(was(id)) ? was(id) : names[i];
        return el("select", { id }, names.map(n => el("option", { value: n, selected: n === keep ? "" : null, text: n })));
      };
      const a = pick("compare-a", 0), b = pick("compare-b", 1);
      const go = el("a", { href: "#", id: "compare-go", text: "compare" });
      go.addEventListener("click", ev => {
        ev.preventDefault();
        location.hash = "#/compare/" + encodeURIComponent(a.value) + "/" + encodeURIComponent(b.value);
      });
      main.push(el("h2", { text: "Compare two experiments" }), el("p", { class: "nav" }, a, " vs ", b, " ", go));
    }
  }
  return main;
}

function downloads(base, query, formats) {
  return el("p", { class: "downloads" }, "Download what is there now: ", formats.map(f =>
    el("a", { href: base + f + (query ? "?" + query : ""), download: "", text: f })));
}

function trialsTable(name, t) {
  const header = ["Arm", "Label", "Seed", "Status"].concat(t.metrics, ["Duration", "Attempts", "Error (last line)", "Log"]);
  const rows = t.rows.map(r => [String(r.arm), r.label, String(r.seed), r.status].concat(
    t.metrics.map(m => num(r[m], 2)), [r.duration_s === null ? "–" : fmtS(r.duration_s), String(r.attempts ?? 0), r.error,
      r.log ? el("a", { href: "/log/" + encodeURIComponent(name) + "/" + encodeURIComponent(r.trial_id), target: "_blank", text: "log" }) : ""]));
  const bad = new Set(["failed", "diverged", "pruned"]);
  return table(header, rows, { text: [1, 3], err: 6 + t.metrics.length, id: "trials-table",
    rowClass: j => bad.has(t.rows[j].status) ? "bad" : t.rows[j].status });
}

function experiment(d) {
  const main = [el("p", { class: "nav" }, el("a", { href: "#/", text: "← experiments" })),
    el("h1", { text: d.name + " " }, el("span", { class: "muted", text: "· " + d.kind }))];
  const isSearch = d.kind.includes("search");
  main.push(downloads("/download/" + encodeURIComponent(d.name) + "/", "", isSearch ? ["md", "csv", "json", "html"] : ["md", "csv", "html", "latex", "json"]));
  main.push(el("h2", { text: "Running" }), runningTable(d.running, false));
  if (d.settings && d.settings.length) main.push(el("ul", { class: "notes" }, d.settings.map(s => el("li", { text: s }))));
  if (d.results === null) {
    main.push(el("p", { class: "muted", id: "building", text: "Building the lift table and figures (a big store takes a few seconds; the page fills in by itself)…" }));
  } else if (d.error) {
    main.push(el("p", { class: "error", text: d.error }));
  } else if (isSearch) {
    main.push(el("p", {}, "Optuna's own dashboard over the same study: ", el("code", { text: d.optuna_dashboard })));
    if (!d.search) main.push(el("p", { class: "muted", id: "search-message", text: d.notes.join("; ") }));
    else {
      main.push(el("h2", { text: "Studies" }), el("ul", {}, d.search.studies.map(s =>
        el("li", {}, s.study + ": " + s.trials + " trials ", counts(s.counts)))));
      d.search.finalists.forEach(f => main.push(el("h2", { text: "Finalists over seeds (" + f.metric + ")" }),
        table(d.search.finalists_header, f.rows, { text: [0, 1, 5], id: "finalists-table" }),
        el("ul", { class: "notes" }, f.notes.map(n => el("li", { text: n })))));
      if (d.notes.length) main.push(el("ul", { class: "notes" }, d.notes.map(n => el("li", { text: n }))));
    }
  } else if (d.lift) {
    main.push(el("h2", { text: "Lift table: " + d.lift.title }),
      table(d.lift.header, d.lift.rows, { id: "lift-table" }),
      el("div", { class: "verdict", id: "verdict" }, el("b", { text: "Verdict: " }), d.lift.verdict),
      el("ul", { class: "notes" }, d.lift.notes.map(n => el("li", { text: n }))));
    if (d.effects) main.push(el("h2", { text: "Effects (two-level factorial, OLS with seed blocks)" }),
      table(d.effects.header, d.effects.rows, { text: [0, 3], id: "effects-table" }));
  } else {
    main.push(el("p", { class: "muted", id: "lift-message", text: "No lift table yet: " + d.lift_message }));
  }
  main.push(el("div", { class: "plots" }, (d.figures || []).map(f => el("div", { class: "plot", id: "plot-" + f.key.replace(/\W+/g, "-") }))));
  if (d.figures_note) main.push(el("p", { class: "muted", text: d.figures_note }));
  if (d.trials) {
    main.push(el("h2", { text: "Trials" }));
    if (d.trials.total > d.trials.rows.length) main.push(el("p", { class: "muted", text: "Showing " + d.trials.rows.length +
      " of " + d.trials.total + " trials: running and failed first, then the latest; the csv download has them all." }));
    main.push(trialsTable(d.name, d.trials));
  }
  return main;
}

function compare(d, r) {
  const back = el("p", { class: "nav" }, el("a", { href: "#/", text: "← experiments" }));
  if (d.building) return [back, el("p", { class: "muted", text: "Building the comparison…" })];
  if (d.error) return [back, el("p", { class: "error", text: d.error })];
  const main = [el("p", { class: "nav" }, el("a", { href: "#/", text: "← experiments" })),
    el("h1", { text: d.names.join(" vs ") }), downloads("/download/_compare/", r.query, ["md", "csv", "html", "latex", "json"]),
    table(d.header, d.rows, { id: "compare-table" }),
    el("h2", { text: "Settings that differ" })];
  if (!d.differences.length) main.push(el("p", { class: "muted", text: "identical apart from the name" }));
  else main.push(table(["Setting"].concat(d.names), d.differences.map(x => [x.setting].concat(x.values.map(v => v ?? "–"))),
    { text: [0, 1, 2], id: "differences-table" }));
  main.push(el("ul", { class: "notes" }, d.notes.map(n => el("li", { text: n }))));
  return main;
}

function draw(r, d) {
  const main = document.getElementById("main");
  const view = r.view === "overview" ? overview(d) : r.view === "compare" ? compare(d, r) : experiment(d);
  // keep drawn plots: their divs move into the new page and Plotly.react only changes what changed
  const old = {};
  main.querySelectorAll(".plot").forEach(p => { old[p.id] = p; });
  main.replaceChildren(...view);
  (d.figures || []).forEach(f => {
    const id = "plot-" + f.key.replace(/\W+/g, "-");
    let div = document.getElementById(id);
    if (old[id]) { div.replaceWith(old[id]); div = old[id]; }
    if (window.Plotly) Plotly.react(div, f.figure.data, f.figure.layout, { displaylogo: false, responsive: true });
  });
  if (d.store) document.getElementById("store").textContent = d.store;
}

async function poll() {
  if (state.busy) return;
  state.busy = true;
  const r = route();
  const key = r.api;
  const headers = {};
  if (state.key === key && state.etag) headers["If-None-Match"] = state.etag;
  const live = document.getElementById("live");
  try {
    const resp = await fetch(key, { cache: "no-store", headers, credentials: "same-origin" });
    live.classList.remove("stale");
    live.textContent = "live";
    if (resp.status === 304) return;
    const d = await resp.json();
    if (!resp.ok) {
      state.key = key; state.etag = null;
      document.getElementById("main").replaceChildren(el("p", { class: "nav" }, el("a", { href: "#/", text: "← experiments" })),
        el("p", { class: "error", text: d.error || resp.statusText }));
      return;
    }
    if (d.results) Object.assign(d, d.results);   // an experiment: its running trials, then its results
    if (d.now) state.offset = Date.now() / 1000 - d.now;
    state.key = key; state.etag = resp.headers.get("ETag"); state.data = d;
    draw(r, d);
    document.body.dataset.etag = state.etag || "";
  } catch (e) {
    live.classList.add("stale");
    live.textContent = "server not answering";
  } finally {
    state.busy = false;
  }
}

function tick() {   // running trials' elapsed time moves between polls
  document.querySelectorAll(".elapsed").forEach(s => {
    s.textContent = fmtS(Date.now() / 1000 - state.offset - Number(s.dataset.started));
  });
}

window.addEventListener("hashchange", () => { state.etag = null; poll(); });
document.addEventListener("DOMContentLoaded", () => { poll(); setInterval(poll, POLL_MS); setInterval(tick, 1000); });
