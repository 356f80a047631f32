/* s1mple Trade Explorer: draws a report page from the JSON the page carries (no network). */
(function () {
  "use strict";
  const started = performance.now();  // since navigation: reading the file, parsing the page and scripts
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const T = JSON.parse(document.getElementById("table-data").textContent);
  const parsed = performance.now();
  const CONFIG = { responsive: true, displaylogo: false };
  /** Red for losses / worse, yellow in the middle, green for gains / better. */
  const RED_GREEN = [[0, "#d73027"], [0.25, "#fc8d59"], [0.5, "#ffffbf"], [0.75, "#91cf60"], [1, "#1a9850"]];
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
  /** Most points a scatter or parallel-coordinates view draws (the best runs first, then an even sample). */
  const MAX_POINTS = 3000;
  const api = (window.s1mpleReport = { data: D, timings: { load: Math.round(started), json: Math.round(parsed - started) } });
  /** Run one part of the page, noting how long it took (window.s1mpleReport.timings: the benchmark reads it). */
  function timed(name, fn) {
    const t0 = performance.now();
    try { return fn(); } finally { api.timings[name] = Math.round(performance.now() - t0); }
  }

  // ---------------------------------------------------------------- helpers
  const $ = (id) => document.getElementById(id);
  function fmt(v) {
    if (v === null || v === undefined || v === "") return "";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return String(v);
      const a = Math.abs(v);
      return a !== 0 && (a >= 1e6 || a < 1e-3) ? v.toExponential(3) : String(+v.toPrecision(5));
    }
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  function kv(el, obj) {
    if (!el) return;
    for (const [k, v] of Object.entries(obj)) {
      if (v === null || v === undefined || typeof v === "object") continue;  // lists and maps: charts show them
      const row = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = Array.isArray(v) ? v.map(fmt).join(", ") : fmt(v);
      row.append(dt, dd);
      el.append(row);
    }
  }
  // Charts are drawn when they come into view (a 100,000-run page shows its first screen at once; the
  // WebGL parallel-coordinates view alone takes seconds without a GPU); drawAll() draws the rest now.
  const pending = new Map();
  const observer = new IntersectionObserver((entries) => {
    for (const e of entries) if (e.isIntersecting) draw(e.target.id);
  }, { rootMargin: "0px 0px 100px 0px" });
  function draw(id) {
    const job = pending.get(id);
    if (!job) return;
    pending.delete(id);
    observer.unobserve($(id));
    timed(id, job);
  }
  api.drawAll = () => { for (const id of [...pending.keys()]) draw(id); };
  api.pending = () => [...pending.keys()];
  function plot(id, traces, layout) {
    const el = $(id);
    if (!el) return null;
    const base = { margin: { l: 60, r: 20, t: 36, b: 50 }, hovermode: "closest", legend: { orientation: "h", y: -0.2 } };
    const merged = Object.assign(base, layout || {});
    // titles start at the left edge: plotly's modebar sits top right and covered long centred titles
    if (merged.title) merged.title = Object.assign({ x: 0.01, xanchor: "left" }, merged.title);
    const job = () => Plotly.react(el, traces, merged, CONFIG);
    if (el.data) { timed(id, job); return el; }  // drawn already: redraw now (e.g. a heatmap control)
    pending.set(id, job);
    observer.observe(el);
    return el;
  }
  function inView(el) {
    const r = el.getBoundingClientRect();
    return r.bottom > 0 && r.top < window.innerHeight;
  }
  /** The page counts as rendered when its tables are built and the charts in view are drawn. */
  let waiting = 1;
  function settled() {
    if (--waiting > 0) return;
    for (const id of [...pending.keys()]) if (inView($(id))) draw(id);
    api.timings.rendered = Math.round(performance.now());
    document.body.dataset.rendered = "true";
  }
  function tableBuilt(table) {
    waiting++;
    const t0 = performance.now();
    table.on("tableBuilt", () => { api.timings.table = Math.round(performance.now() - t0); settled(); });
  }
  function empty(id, text) {
    const el = $(id);
    if (el) { el.classList.add("empty"); el.style.height = "auto"; el.textContent = text; }
  }
  function problems(list) {
    const ul = $("curve-problems");
    for (const p of list || []) { const li = document.createElement("li"); li.textContent = p; ul.append(li); }
  }
  function toc() {
    const nav = $("toc");
    document.querySelectorAll("main > section").forEach((s) => {
      const a = document.createElement("a");
      a.href = "#" + s.id;
      a.textContent = s.querySelector("h2").firstChild.textContent.trim();
      nav.append(a);
    });
  }
  function plainTable(el, head, rows) {
    const table = document.createElement("table");
    table.className = "plain";
    const tr = table.insertRow();
    for (const h of head) { const th = document.createElement("th"); th.textContent = h; tr.append(th); }
    for (const r of rows) {
      const row = table.insertRow();
      for (const c of r) { const td = row.insertCell(); td.textContent = fmt(c); }
    }
    el.append(table);
    return table;
  }
  /** Filter typed under a column header: "a..b", ">x", ">=x", "<x", "<=x", "=x", or text contained. */
  function rangeFilter(term, value) {
    term = String(term).trim();
    if (!term) return true;
    let m = term.match(/^(-?[\d.e+-]+)\s*\.\.\s*(-?[\d.e+-]+)$/);
    if (m) return value !== null && value >= +m[1] && value <= +m[2];
    m = term.match(/^(>=|<=|>|<|=)\s*(-?[\d.e+-]+)$/);
    if (m) {
      if (value === null || value === undefined) return false;
      const x = +m[2];
      return { ">=": value >= x, "<=": value <= x, ">": value > x, "<": value < x, "=": value === x }[m[1]];
    }
    return String(value).toLowerCase().includes(term.toLowerCase());
  }
  function median(xs) {
    const s = xs.slice().sort((a, b) => a - b);
    const n = s.length;
    return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  }
  const isNum = (v) => typeof v === "number" && isFinite(v);

  // ---------------------------------------------------------------- optimization
  function optimization() {
    // rows from the compact table: the varying columns per row, constant columns once, rank = position
    const cols = T.columns, varying = T.varying, constants = Object.entries(T.constants);
    const rows = T.data.map((r, n) => {
      const o = T.rank_is_row ? { rank: n + 1 } : {};
      for (let i = 0; i < varying.length; i++) o[varying[i]] = r[i];
      for (const [c, v] of constants) o[c] = v;
      return o;
    });
    api.rows = rows;
    const params = D.params, labels = D.labels, primary = D.primary;
    const config = (r) => params.concat(labels).map((c) => c.replace(/^choice\./, "") + "=" + fmt(r[c])).join(", ");
    kv($("summary"), Object.assign({}, D.summary, {
      best_run: D.best_run,
      best_value: D.summary.best_configuration ? (D.summary.best_configuration.metrics || {})[primary] : null,
    }));
    $("runs-count").textContent = rows.length.toLocaleString() + " runs";

    // the runs table: virtual rendering, sort on any header, a filter under each header
    const numeric = new Set(cols.filter((c) => rows.some((r) => typeof r[c] === "number")));
    const columns = cols.map((c) => ({
      title: c, field: c,
      headerFilter: "input", headerFilterFunc: (term, value) => rangeFilter(term, value),
      headerFilterLiveFilter: false,
      sorter: numeric.has(c) ? "number" : (c === "feasible" ? "boolean" : "string"),
      hozAlign: numeric.has(c) ? "right" : "left",
      formatter: (cell) => fmt(cell.getValue()),
      frozen: c === "rank",
    }));
    const table = new Tabulator("#runs-table", {
      data: rows, columns: columns, maxHeight: "max(420px, calc(100vh - 300px))",  // at most the first screen layout: "fitData", renderVertical: "virtual",
      index: "run_id", columnHeaderSortMulti: false, nestedFieldSeparator: false,
    });
    api.table = table;
    tableBuilt(table);
    table.on("dataFiltered", (filters, shown) => {
      $("runs-count").textContent = shown.length.toLocaleString() + " of " + rows.length.toLocaleString() + " runs";
    });
    $("feasible-only").addEventListener("change", (e) => {
      if (e.target.checked) table.addFilter("feasible", "=", true); else table.removeFilter("feasible", "=", true);
    });
    $("clear-filters").addEventListener("click", () => { table.clearHeaderFilter(); table.clearFilter(); $("feasible-only").checked = false; });

    // the points charts draw: the best runs, then an even sample of the rest
    const okRows = rows.filter((r) => r.status === "ok");
    let sample = okRows;
    if (okRows.length > MAX_POINTS) {
      const head = okRows.slice(0, MAX_POINTS / 2), rest = okRows.slice(MAX_POINTS / 2);
      const step = rest.length / (MAX_POINTS / 2);
      sample = head.concat(Array.from({ length: MAX_POINTS / 2 }, (_, i) => rest[Math.floor(i * step)]));
    }
    const sampled = sample.length < okRows.length
      ? `Showing ${sample.length.toLocaleString()} of ${okRows.length.toLocaleString()} successful runs: the best ${(MAX_POINTS / 2).toLocaleString()} and an even sample of the rest (the table has every run).`
      : "";
    $("scatter-note").textContent = sampled;
    $("parallel-note").textContent = sampled;

    function scatter(id, x, y, title) {
      const groups = [["feasible", true, COLORS[0], "circle"], ["infeasible", false, "#98a2b3", "x"]];
      const traces = groups.map(([name, flag, color, symbol]) => {
        const pts = sample.filter((r) => Boolean(r.feasible) === flag && isNum(r[x]) && isNum(r[y]));
        return {
          type: "scatter", mode: "markers", name: name, x: pts.map((r) => r[x]), y: pts.map((r) => r[y]),
          text: pts.map((r) => `#${r.rank} ${config(r)}` + (r.infeasible_reason ? `<br>${r.infeasible_reason}` : "")),
          hovertemplate: `%{text}<br>${x}=%{x:.4g}<br>${y}=%{y:.4g}<extra></extra>`,
          marker: { color: color, symbol: symbol, size: 7, opacity: 0.75 },
        };
      });
      const best = rows.find((r) => r.run_id === D.best_run);
      if (best) traces.push({
        type: "scatter", mode: "markers", name: "best", x: [best[x]], y: [best[y]], text: [config(best)],
        hovertemplate: "best: %{text}<extra></extra>", marker: { color: "#f59e0b", symbol: "star", size: 18, line: { color: "#000", width: 1 } },
      });
      plot(id, traces, { title: { text: title }, xaxis: { title: { text: x } }, yaxis: { title: { text: y } } });
    }
    scatter("scatter-risk", "max_drawdown", "total_return", "Risk vs return");
    scatter("scatter-sharpe", "max_drawdown", "sharpe_ratio", "Sharpe vs drawdown");

    // heatmap of a metric over a pair of swept parameters; the other dimensions aggregated (best / median)
    const dims = params.concat(labels);
    const metricChoices = D.metrics.concat(D.causality_columns);
    const fill = (sel, opts, chosen) => {
      for (const o of opts) { const e = document.createElement("option"); e.value = o; e.textContent = o; e.selected = o === chosen; sel.append(e); }
    };
    fill($("hm-x"), dims, dims[0]);
    fill($("hm-y"), dims, dims[1]);
    fill($("hm-metric"), metricChoices, primary);
    function heatmap() {
      const x = $("hm-x").value, y = $("hm-y").value, metric = $("hm-metric").value, agg = $("hm-agg").value;
      if (dims.length < 2 || x === y) {
        $("heatmap-note").textContent = dims.length < 2 ? "A heatmap needs two swept parameters." : "Pick two different parameters.";
        Plotly.purge($("heatmap"));
        return;
      }
      const maximize = (D.directions[metric] || "maximize") === "maximize";
      const sortKey = (a, b) => (typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b)));
      const xs = [...new Set(okRows.map((r) => r[x]))].sort(sortKey);
      const ys = [...new Set(okRows.map((r) => r[y]))].sort(sortKey);
      const xi = new Map(xs.map((v, i) => [v, i])), yi = new Map(ys.map((v, i) => [v, i]));
      const cells = ys.map(() => xs.map(() => []));
      for (const r of okRows) if (isNum(r[metric])) cells[yi.get(r[y])][xi.get(r[x])].push(r[metric]);
      const z = cells.map((row) => row.map((vs) => (!vs.length ? null : agg === "median" ? median(vs) : (maximize ? Math.max(...vs) : Math.min(...vs)))));
      const n = cells.map((row) => row.map((vs) => vs.length));
      const others = dims.length - 2;
      $("heatmap-note").textContent = others > 0
        ? `Each cell: the ${agg} ${metric} over the other ${others} swept dimension(s) (${dims.filter((d) => d !== x && d !== y).join(", ")}).`
        : `Each cell: one combination of ${x} and ${y}.`;
      const ax = (vals) => ({ type: "category", categoryorder: "array", categoryarray: vals });
      plot("heatmap", [{
        type: "heatmap", x: xs.map(String), y: ys.map(String), z: z, customdata: n,
        colorscale: RED_GREEN, reversescale: !maximize, hoverongaps: false,
        hovertemplate: `${x}=%{x}<br>${y}=%{y}<br>${metric}=%{z:.4g}<br>runs=%{customdata}<extra></extra>`,
        colorbar: { title: { text: metric } },
      }], { title: { text: `${metric} (${agg})` }, xaxis: Object.assign(ax(xs.map(String)), { title: { text: x } }), yaxis: Object.assign(ax(ys.map(String)), { title: { text: y } }) });
    }
    ["hm-x", "hm-y", "hm-metric", "hm-agg"].forEach((id) => $(id).addEventListener("change", heatmap));
    heatmap();
    api.heatmap = heatmap;

    // parallel coordinates over every swept dimension and the main metrics
    const pcMetrics = [...new Set([primary, "total_return", "max_drawdown"])].filter((m) => cols.includes(m));
    const pcRows = sample.filter((r) => isNum(r[primary]));
    if (dims.length >= 1 && pcRows.length) {
      const dimensions = dims.map((d) => {
        if (params.includes(d)) return { label: d, values: pcRows.map((r) => r[d]) };
        const cats = [...new Set(pcRows.map((r) => String(r[d])))].sort();
        const code = new Map(cats.map((c, i) => [c, i]));
        return { label: d.replace(/^choice\./, ""), values: pcRows.map((r) => code.get(String(r[d]))), tickvals: cats.map((_, i) => i), ticktext: cats };
      }).concat(pcMetrics.map((m) => ({ label: m, values: pcRows.map((r) => r[m]) })));
      plot("parcoords", [{
        type: "parcoords", dimensions: dimensions,
        line: { color: pcRows.map((r) => r[primary]), colorscale: "Viridis", showscale: true, colorbar: { title: { text: primary } } },
      }], { margin: { l: 70, r: 70, t: 50, b: 30 } });
    } else {
      empty("parcoords", "No swept dimension with results to draw.");
    }

    // causal dashboard: opportunities and threats per configuration, rejection reasons over all runs
    const top = okRows.slice(0, 30);
    const causal = [["opportunities_detected", COLORS[0]], ["opportunities_rejected", COLORS[1]], ["opportunities_skipped", "#98a2b3"], ["threats_detected", COLORS[4]]]
      .filter(([c]) => cols.includes(c))
      .map(([c, color]) => ({
        type: "bar", name: c.replace("opportunities_", "opp. "), x: top.map((r) => "#" + r.rank), y: top.map((r) => r[c]),
        text: top.map(config), hovertemplate: `%{x} %{text}<br>${c}=%{y}<extra></extra>`, marker: { color: color },
      }));
    if (top.length && causal.length) plot("causal-configs", causal, { title: { text: "Per configuration (best 30 by rank)" }, barmode: "group", xaxis: { type: "category" } });
    else empty("causal-configs", "No causality counts in these results.");
    if (D.rejections.length) {
      plot("causal-reasons", [{ type: "bar", orientation: "h", y: D.rejections.map((r) => r[0]), x: D.rejections.map((r) => r[1]), marker: { color: COLORS[1] } }],
        { title: { text: "Rejection reasons, summed over every run" }, yaxis: { automargin: true, autorange: "reversed" }, xaxis: { title: { text: "opportunities rejected" } } });
    } else {
      empty("causal-reasons", "No opportunity was rejected by a threat in any run.");
    }

    // the best runs, re-run at report time
    problems(D.curve_problems);
    if (D.top_curves.length) {
      const line = (key) => D.top_curves.map((c, i) => ({
        type: "scatter", mode: "lines", name: `#${c.rank} ${c.run_id}`, x: c.time, y: c[key], line: { color: COLORS[i % COLORS.length], width: 1.4 },
      }));
      plot("top-equity", line("equity"), { title: { text: `Equity of the best ${D.top_curves.length} runs` }, hovermode: "x unified" });
      plot("top-drawdown", line("drawdown"), { title: { text: "Drawdown %" }, hovermode: "x unified", showlegend: false });
    } else {
      empty("top-equity", "No run to draw."); empty("top-drawdown", "");
    }
    validation();
  }

  function validation() {
    const body = $("validation-body");
    const v = D.validation;
    if (!v || typeof v !== "object" || !Object.keys(v).length) {
      body.innerHTML = '<p class="empty">No validation results in result.json (out-of-sample hold-out, walk-forward, PBO, Deflated Sharpe appear here when the optimization is validated).</p>';
      return;
    }
    const names = {
      verdict: "Verdict", overfit_risk: "Overfit risk", deflated_sharpe: "Deflated Sharpe ratio",
      pbo: "Probability of backtest overfitting (PBO)", holdout: "Out-of-sample hold-out", walk_forward: "Walk-forward",
      thresholds: "Thresholds",
    };
    const order = Object.keys(names).filter((k) => k in v).concat(Object.keys(v).filter((k) => !(k in names)));
    for (const key of order) {
      const part = document.createElement("div");
      const h = document.createElement("h3");
      h.textContent = names[key] || key;
      part.append(h);
      const value = v[key];
      if (value && typeof value === "object" && !Array.isArray(value)) {
        const dl = document.createElement("dl"); dl.className = "kv"; kv(dl, value); part.append(dl);
        for (const [k, sub] of Object.entries(value)) {
          if (Array.isArray(sub) && sub.length && typeof sub[0] === "object") {
            const cap = document.createElement("p"); cap.className = "hint"; cap.textContent = k; part.append(cap);
            const head = [...new Set(sub.flatMap((s) => Object.keys(s)))];
            plainTable(part, head, sub.map((s) => head.map((c) => s[c])));
          } else if (sub && typeof sub === "object" && !Array.isArray(sub)) {
            const cap = document.createElement("p"); cap.className = "hint"; cap.textContent = k; part.append(cap);
            const dl2 = document.createElement("dl"); dl2.className = "kv"; kv(dl2, sub); part.append(dl2);
          }
        }
      } else if (Array.isArray(value) && value.length && typeof value[0] === "object") {
        const head = [...new Set(value.flatMap((s) => Object.keys(s)))];
        plainTable(part, head, value.map((s) => head.map((c) => s[c])));
      } else {
        const p = document.createElement("p"); p.textContent = fmt(value); part.append(p);
      }
      body.append(part);
      if (key === "walk_forward") walkForwardChart(part, value);
    }
  }

  // the stitched out-of-sample line: per bar, the chosen configuration of each test window
  function walkForwardChart(part, wf) {
    const c = ((wf && wf.out_of_sample) || {}).curve;
    if (!c || !Array.isArray(c.time) || !c.time.length) return;
    const el = document.createElement("div"); el.id = "wf-equity"; el.className = "chart"; part.append(el);
    let peak = 1;
    const dd = c.equity.map((e) => { peak = Math.max(peak, e); return -(1 - e / peak) * 100; });
    const starts = (wf.windows || []).map((w) => w.test_start);
    plot("wf-equity", [
      { type: "scatter", mode: "lines", name: "out-of-sample equity", x: c.time, y: c.equity, line: { color: COLORS[0], width: 1.5 } },
      { type: "scatter", mode: "lines", name: "drawdown %", x: c.time, y: dd, yaxis: "y2", line: { color: COLORS[1], width: 1 }, fill: "tozeroy" },
    ], {
      title: { text: "Walk-forward: stitched out-of-sample equity, per bar (test windows chained)" }, hovermode: "x unified",
      xaxis: { anchor: "y2" }, yaxis: { title: { text: "equity (start 1)" }, domain: [0.35, 1] }, yaxis2: { title: { text: "drawdown %" }, domain: [0, 0.28] },
      shapes: starts.map((t) => ({ type: "line", xref: "x", yref: "paper", x0: t, x1: t, y0: 0, y1: 1, line: { color: "#d0d5dd", width: 1, dash: "dot" } })),
    });
  }

  // ---------------------------------------------------------------- variant test
  function variantTest() {
    const V = D.variants;
    kv($("summary"), Object.assign({}, D.summary, D.summary.comparative_analysis || {}, D.summary.market_period || {}));
    problems(D.curve_problems);
    const ok = V.filter((v) => v.status === "ok");
    // comparative metrics: the best value of each column in bold
    const head = ["variant", "status"].concat(D.metrics);
    const table = plainTable($("metrics-table"), head, V.map((v) => [v.name, v.status].concat(D.metrics.map((m) => v.metrics[m]))));
    D.metrics.forEach((m, j) => {
      const vals = V.map((v) => v.metrics[m]).filter(isNum);
      if (!vals.length) return;
      const maximize = (D.directions[m] || "maximize") === "maximize";
      const best = maximize ? Math.max(...vals) : Math.min(...vals);
      V.forEach((v, i) => { if (v.metrics[m] === best) table.rows[i + 1].cells[j + 2].style.fontWeight = "700"; });
    });
    const color = (i) => COLORS[i % COLORS.length];
    const drawn = ok.filter((v) => v.time && v.time.length);
    if ($("variant-equity")) {
      plot("variant-equity", drawn.map((v, i) => ({ type: "scatter", mode: "lines", name: v.name, x: v.time, y: v.equity, line: { color: color(i), width: 1.5 } })),
        { title: { text: "Equity" }, hovermode: "x unified" });
    }
    if ($("variant-drawdown")) {
      plot("variant-drawdown", drawn.map((v, i) => ({ type: "scatter", mode: "lines", name: v.name, x: v.time, y: v.drawdown, line: { color: color(i), width: 1.3 } })),
        { title: { text: "Drawdown %" }, hovermode: "x unified" });
    }
    if ($("variant-monthly")) {
      const months = [...new Set(drawn.flatMap((v) => v.monthly.map((m) => m[0])))].sort();
      const z = drawn.map((v) => { const by = new Map(v.monthly); return months.map((m) => (by.has(m) ? by.get(m) : null)); });
      plot("variant-monthly", [{ type: "heatmap", x: months, y: drawn.map((v) => v.name), z: z, colorscale: RED_GREEN, zmid: 0, hoverongaps: false,
        hovertemplate: "%{y} %{x}: %{z:.2f}%<extra></extra>", colorbar: { title: { text: "%" } } }],
      { title: { text: "Monthly returns %" }, yaxis: { automargin: true, type: "category" }, margin: { l: 140, r: 20, t: 36, b: 50 } });
    }
    if ($("variant-trade-pnl")) {
      const hist = (k, title, id) => plot(id, drawn.map((v, i) => ({ type: "histogram", name: v.name, x: v.trades.map((t) => t[k]), opacity: 0.6, marker: { color: color(i) } })),
        { title: { text: title }, barmode: "overlay", yaxis: { title: { text: "trades" } } });
      hist(0, "Trade P&L %", "variant-trade-pnl");
      hist(1, "Trade duration (bars)", "variant-trade-duration");
    }
    const names = ok.map((v) => v.name);
    const c = (k) => ok.map((v) => v.causality[k]);
    if (D.causality_analysis.includes("opportunities_per_variant")) {
      plot("variant-opportunities", [["opportunities_detected", COLORS[0]], ["opportunities_rejected", COLORS[1]], ["opportunities_skipped", "#98a2b3"]].map(([k, col]) => ({
        type: "bar", name: k.replace("opportunities_", ""), x: names, y: c(k), marker: { color: col } })), { title: { text: "Opportunities (OpportunityIDs) per variant" }, barmode: "group" });
    } else empty("variant-opportunities", "opportunities_per_variant not in comparison_config.causality_analysis.");
    if (D.causality_analysis.includes("threats_per_variant")) {
      plot("variant-threats", [{ type: "bar", name: "threats", x: names, y: c("threats_detected"), marker: { color: COLORS[4] } }], { title: { text: "Threats (ThreatIDs) per variant" } });
    } else empty("variant-threats", "threats_per_variant not in comparison_config.causality_analysis.");
    if (D.causality_analysis.includes("rejection_reasons")) {
      const traces = ok.map((v, i) => {
        const rs = v.causality.top_rejection_reasons || [];
        return { type: "bar", name: v.name, x: rs.map((r) => r.threat_type), y: rs.map((r) => r.count), marker: { color: color(i) } };
      });
      if (traces.some((t) => t.x.length)) plot("variant-reasons", traces, { title: { text: "Rejection reasons per variant" }, barmode: "group" });
      else empty("variant-reasons", "No variant rejected an opportunity because of a threat.");
    } else empty("variant-reasons", "");
  }

  // ---------------------------------------------------------------- one backtest
  function backtest() {
    kv($("summary"), D.summary);
    kv($("metrics-list"), D.metrics);
    const P = D.price;
    const many = P.time.length > 5000;
    const price = many
      ? { type: "scatter", mode: "lines", name: "close", x: P.time, y: P.close, line: { color: "#475467", width: 1 } }
      : { type: "candlestick", name: "price", x: P.time, open: P.open, high: P.high, low: P.low, close: P.close,
          increasing: { line: { color: "#16a34a" } }, decreasing: { line: { color: "#dc2626" } } };
    const tr = D.trades;
    const marks = (list, name, timeKey, priceKey, symbol, color) => ({
      type: "scatter", mode: "markers", name: name, x: list.map((t) => t[timeKey]), y: list.map((t) => t[priceKey]),
      text: list.map((t) => `${t.opportunity_id} ${t.side}<br>exit: ${t.exit_reason}<br>P&L ${fmt(t.pnl)} (${fmt(t.return_pct)}%)`),
      hovertemplate: "%{text}<br>%{y:.4g}<extra>" + name + "</extra>",
      marker: { symbol: symbol, size: 8, color: color, line: { color: "#111", width: 0.5 } },
    });
    const longs = tr.filter((t) => t.side === "long"), shorts = tr.filter((t) => t.side !== "long");
    plot("price-chart", [price,
      marks(longs, "long entry", "entry_time", "entry_price", "triangle-up", "#16a34a"),
      marks(shorts, "short entry", "entry_time", "entry_price", "triangle-down", "#dc2626"),
      marks(longs, "long exit", "exit_time", "exit_price", "x", "#86efac"),
      marks(shorts, "short exit", "exit_time", "exit_price", "x", "#fca5a5"),
    ], { title: { text: `${D.summary.symbol || ""} price with entries and exits` }, xaxis: { rangeslider: { visible: false } } });
    plot("bt-equity", [{ type: "scatter", mode: "lines", name: "equity", x: D.time, y: D.equity, line: { color: COLORS[0] } }], { title: { text: "Equity" }, hovermode: "x unified" });
    plot("bt-drawdown", [{ type: "scatter", mode: "lines", name: "drawdown", x: D.time, y: D.drawdown, fill: "tozeroy", line: { color: COLORS[1] } }], { title: { text: "Drawdown %" }, hovermode: "x unified" });
    $("trades-count").textContent = tr.length + " trades";
    const tcols = ["opportunity_id", "side", "entry_time", "entry_price", "exit_time", "exit_price", "size", "pnl", "return_pct", "exit_reason", "duration_bars"];
    api.table = new Tabulator("#trades-table", {
      data: tr, maxHeight: "400px", layout: "fitData",
      columns: tcols.map((c) => ({ title: c, field: c, formatter: (cell) => fmt(cell.getValue()), headerFilter: "input",
        headerFilterFunc: (term, value) => rangeFilter(term, value), sorter: typeof (tr[0] || {})[c] === "number" ? "number" : "string" })),
    });
    tableBuilt(api.table);
    if (D.monthly.length) {
      const years = [...new Set(D.monthly.map((m) => m[0].slice(0, 4)))].sort();
      const months = ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"];
      const by = new Map(D.monthly);
      const z = years.map((y) => months.map((m) => (by.has(`${y}-${m}`) ? by.get(`${y}-${m}`) : null)));
      plot("bt-monthly", [{ type: "heatmap", x: ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], y: years, z: z,
        colorscale: RED_GREEN, zmid: 0, hoverongaps: false, texttemplate: "%{z:.1f}", hovertemplate: "%{y} %{x}: %{z:.2f}%<extra></extra>" }],
      { title: { text: "Monthly returns %" }, yaxis: { type: "category", autorange: "reversed" } });
    } else empty("bt-monthly", "No monthly returns.");
    const c = D.causality;
    kv($("causality-list"), c);
    const reasons = (c.top_rejection_reasons || []).map((r) => [r.threat_type, r.count]).concat((c.skip_reasons || []).map((r) => ["skipped: " + r.reason, r.count]));
    if (reasons.length) plot("bt-reasons", [{ type: "bar", orientation: "h", y: reasons.map((r) => r[0]), x: reasons.map((r) => r[1]), marker: { color: COLORS[1] } }],
      { title: { text: "Rejection and skip reasons" }, yaxis: { automargin: true, autorange: "reversed" } });
    else empty("bt-reasons", "No opportunity was rejected or skipped.");
    const st = Object.entries(D.opportunities);
    if (st.length) plot("bt-opportunities", [{ type: "bar", x: st.map((s) => s[0]), y: st.map((s) => s[1]), marker: { color: COLORS[0] } }], { title: { text: "Opportunities by outcome" } });
    else empty("bt-opportunities", "No opportunity detected.");
  }

  timed("total", () => ({ optimization: optimization, variant_test: variantTest, backtest: backtest })[D.kind]());
  toc();
  settled();
})();
