// llmvolley report: draws the charts and tables of the data embedded in this page with uPlot.
// Each chart's container gets data-inked (painted pixels of its canvas) once drawn, so a headless
// browser test can check that every chart drew; errors are listed in #errors.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("data").textContent);
  const app = document.getElementById("app");
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                   "#17becf", "#7f7f7f", "#bcbd22"];
  const color = (i) => PALETTE[i % PALETTE.length];
  // Tick steps of a seconds axis: whole seconds, then round minutes.
  const SECONDS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  const WIDTH = Math.max(480, Math.min(1100, (app.clientWidth || 1100) - 20));

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }
  const fmt = (v, places = 2) => (v === null || v === undefined || Number.isNaN(v)) ? "-"
    : (typeof v === "number" ? v.toLocaleString("en-US", { maximumFractionDigits: places }) : String(v));
  const get = (obj, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);

  function section(title, note) {
    const s = el("section", {}, el("h2", {}, title));
    if (note) s.append(el("p", { class: "note" }, note));
    app.append(s);
    return s;
  }

  function table(parent, head, rows) {
    const t = el("table", {}, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))));
    const body = el("tbody");
    for (const r of rows) body.append(el("tr", {}, ...r.map((c) => el("td", {}, c))));
    t.append(body);
    parent.append(t);
    return t;
  }

  // Counts the coloured pixels of the chart's canvas: the series' lines (axes, grid and labels are
  // grey), so 0 means no series drew.
  function inked(u) {
    const c = u.ctx.canvas;
    const img = u.ctx.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < img.length; i += 4) {
      const hi = Math.max(img[i], img[i + 1], img[i + 2]), lo = Math.min(img[i], img[i + 1], img[i + 2]);
      if (img[i + 3] > 128 && hi - lo > 60) n++;
    }
    return n;
  }

  // One uPlot chart. series: [{label, stroke, scale?, dash?}], data: [xs, ys...] aligned.
  function chart(parent, id, title, opts, data) {
    const box = el("div", { class: "chart", "data-chart": id });
    parent.append(box);
    if (!data[0] || data[0].length === 0) {
      box.append(el("p", { class: "note" }, title + ": no data"));
      box.dataset.inked = "none";
      return;
    }
    box.dataset.inked = "pending";
    // A chart's own draw hooks (marks over the plot) run first, so their pixels are counted too.
    const own = (opts.hooks && opts.hooks.draw) || [];
    new uPlot(Object.assign({
      title, width: WIDTH, height: 300,
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    }, opts, {
      // uPlot draws after construction (batched): count the pixels once it has.
      hooks: Object.assign({}, opts.hooks, { draw: [...own, (u) => {
        box.dataset.inked = String(inked(u));
        // Milliseconds from the start of the page's load until the latest chart drew.
        document.body.dataset.drawnMs = performance.now().toFixed(1);
      }] }),
    }), data, box);
  }

  // The percentile "nines" axis: x = 1 / (1 - p) on a log scale, labelled as percentiles.
  function nines(v) {
    const p = 100 * (1 - 1 / v);
    return p <= 0 ? "0%" : (p >= 99.9999 ? "max" : (+p.toPrecision(6)) + "%");
  }

  // Ticks at 1, 10, 100, ... only: 0%, 90%, 99%, 99.9%.
  function decades(u, axisIdx, min, max) {
    const ticks = [];
    for (let v = 1; v <= max * 1.0001; v *= 10) if (v >= min / 1.0001) ticks.push(v);
    return ticks;
  }

  function distributionSection() {
    const runs = DATA.runs;
    if (!runs.length) return;
    const s = section("Percentile distributions",
      "HdrHistogram style: each run's percentiles on a log 'nines' axis (90%, 99%, 99.9% equally spaced); values in ms, from the run's saved histograms (3 significant digits).");
    for (const [name, title] of [["latency", "Latency (ms)"], ["ttft", "TTFT (ms)"], ["tpot", "TPOT (ms)"], ["itl", "ITL (ms)"]]) {
      const having = runs.map((r, i) => [r, i]).filter(([r]) => r.distributions[name]);
      if (!having.length) continue;
      const tables = having.map(([r]) => [r.distributions[name].map((p) => p[0]), r.distributions[name].map((p) => p[1])]);
      const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
      chart(s, "dist-" + name, title, {
        scales: { x: { time: false, distr: 3 }, y: { auto: true } },
        axes: [{ splits: decades, values: (u, vals) => vals.map(nines), label: "percentile" }, { label: "ms" }],
        series: [{ label: "percentile", value: (u, v) => v == null ? "-" : nines(v) },
          ...having.map(([r, i]) => ({ label: r.name, stroke: color(i), width: 2, spanGaps: true, points: { show: false } }))],
      }, data);
    }
  }

  function timeSeriesSection() {
    const runs = DATA.runs.filter((r) => r.timeseries.second && r.timeseries.second.length);
    if (!runs.length) return;
    const s = section("Over time",
      "One point per second of the run (timeseries.csv): requests sent and completed ok, failed requests by error kind, requests in flight at the end of each second, output tokens, and the latency and TTFT percentiles of the ok requests completing in that second.");
    const resumed = runs.filter((r) => r.summary.resumed_kept != null).map((r) => r.name);
    if (resumed.length) {
      s.append(el("p", { class: "note" }, `Resumed (${resumed.join(", ")}): the time series is the first session's; later sessions are in the records and the summary.`));
    }
    const col = (r, name) => r.timeseries[name] || [];
    const multi = (id, title, unit, columns) => {
      const tables = [];
      const series = [{ label: "second" }];
      runs.forEach((r, i) => {
        const xs = col(r, "second");
        for (const [c, label, dash] of columns) {
          if (!r.timeseries[c]) continue;
          tables.push([xs, col(r, c)]);
          series.push({ label: (runs.length > 1 ? r.name + ": " : "") + label, stroke: color(i),
            width: 2, dash: dash ? [6, 4] : undefined, spanGaps: false });
        }
      });
      if (!tables.length) return;
      chart(s, id, title, { scales: { x: { time: false } }, axes: [{ label: "s", incrs: SECONDS }, { label: unit }], series },
        tables.length === 1 ? tables[0] : uPlot.join(tables));
    };
    multi("ts-rate", "Requests per second", "req/s", [["sent", "sent/s", true], ["ok", "ok/s", false]]);
    // Errors per second by kind, from the records.
    const errTables = [];
    const errSeries = [{ label: "second" }];
    // One colour per error kind in every run (after the runs' own colours), one dash per run.
    const kinds = [...new Set(runs.flatMap((r) => Object.keys(r.errors_per_second || {})))].sort();
    runs.forEach((r, i) => {
      for (const [kind, counts] of Object.entries(r.errors_per_second || {})) {
        errTables.push([counts.map((_, s) => s), counts]);
        errSeries.push({ label: (runs.length > 1 ? r.name + ": " : "") + kind,
          stroke: color(runs.length + kinds.indexOf(kind)), width: 2, dash: i > 0 ? [6, 4] : undefined });
      }
    });
    if (errTables.length) {
      chart(s, "ts-errors", "Failed requests per second, by error kind", {
        scales: { x: { time: false } }, axes: [{ label: "s", incrs: SECONDS }, { label: "errors/s" }], series: errSeries,
      }, errTables.length === 1 ? errTables[0] : uPlot.join(errTables));
    } else {
      s.append(el("p", { class: "note", "data-chart": "ts-errors", "data-inked": "none" }, "No failed requests."));
    }
    multi("ts-inflight", "Requests in flight", "requests", [["in_flight", "in flight", false]]);
    multi("ts-tokens", "Output tokens per second", "tok/s", [["output_tokens", "output tok/s", false]]);
    multi("ts-latency", "Latency of ok requests (ms)", "ms", [["latency_p50_ms", "p50", false], ["latency_p99_ms", "p99", true]]);
    multi("ts-ttft", "TTFT of ok requests (ms)", "ms", [["ttft_p50_ms", "p50", false], ["ttft_p99_ms", "p99", true]]);
    serverSection(runs.filter((r) => r.server_metrics && (r.server_metrics.second || []).length));
  }

  // --scrape: the server's own series beside the client's, on the same seconds (a server row is
  // named by the second its interval starts in, as timeseries.csv's are).
  function serverSection(runs) {
    if (!runs.length) return;
    const s = section("Server view",
      "From the server's own /metrics (server_metrics.csv), each beside the client's figure for the same seconds. Server percentiles are read from its histogram buckets, so they are only as fine as those; a time's difference from the client's is network plus client.");
    const pair = (id, title, unit, serverCols, clientCols) => {
      const tables = [];
      const series = [{ label: "second" }];
      // One colour per series; the client's dashed where the server's is solid, to pair them.
      runs.forEach((r) => {
        const who = runs.length > 1 ? r.name + ": " : "";
        // A merged job's file holds every shard's rows side by side: shard 0's are drawn.
        const shard = r.server_metrics.shard;
        const keep = (col) => (shard ? (col || []).filter((_, k) => shard[k] === 0) : col);
        const m = Object.fromEntries(Object.entries(r.server_metrics).map(([k, v]) => [k, keep(v)]));
        // Sub-second scrapes share a second: drawn at their intervals' starts instead.
        const fine = (get(r.summary, "server.every_s") || 1) < 1 || Boolean(shard);
        const xs = fine ? m.from_s : m.second;
        for (const [c, label, dash] of serverCols) {
          const ys = m[c];
          if (!ys || !ys.some((v) => v != null)) continue;
          tables.push([xs, ys]);
          series.push({ label: who + "server " + label, stroke: color(series.length - 1), width: 2, dash: dash ? [6, 4] : undefined, spanGaps: true });
        }
        for (const [c, label, dash] of clientCols) {
          const ys = r.timeseries[c];
          if (!ys || !r.timeseries.second) continue;
          tables.push([r.timeseries.second, ys]);
          series.push({ label: who + "client " + label, stroke: color(series.length - 1), width: 2, dash: dash ? [6, 4] : undefined });
        }
      });
      if (!tables.some((t, k) => series[k + 1].label.includes("server "))) return;
      chart(s, id, title, { scales: { x: { time: false } }, axes: [{ label: "s", incrs: SECONDS }, { label: unit }], series },
        tables.length === 1 ? tables[0] : uPlot.join(tables));
    };
    pair("server-running", "Requests running and waiting in the server, in flight at the client", "requests",
      [["running", "running", false], ["waiting", "waiting", true]], [["in_flight", "in flight", false]]);
    pair("server-ttft", "TTFT: the server's against the client's (ms)", "ms",
      [["ttft_p50_ms", "p50", false], ["ttft_p99_ms", "p99", true]], [["ttft_p50_ms", "p50", false], ["ttft_p99_ms", "p99", true]]);
    pair("server-tokens", "Output tokens per second: generated by the server, received by the client", "tok/s",
      [["generation_tokens_per_s", "generated", false]], [["output_tokens", "received", false]]);
    pair("server-kv", "KV-cache usage (share)", "share", [["kv_cache_usage", "KV cache", false]], []);
    pair("server-gpu", "GPU utilisation (share)", "share", [["gpu_util", "GPU utilisation", false]], []);
    pair("server-power", "GPU power (W)", "W", [["gpu_power_w", "power", false]], []);
  }

  function sweepSection() {
    for (const sweep of DATA.sweeps) {
      const steps = (sweep.steps || []).slice().sort((a, b) => a.requests_per_s - b.requests_per_s);
      const s = section("Sweep: " + sweep.name,
        "Each step's achieved ok requests per second against its latency and TTFT percentiles and goodput: the curve to pick a serving point from.");
      const xs = steps.map((st) => st.requests_per_s);
      const hasGoodput = steps.some((st) => st.goodput_per_s != null);
      const series = [{ label: "ok req/s" },
        { label: "latency p50 ms", stroke: color(0), width: 2, points: { show: true } },
        { label: "latency p99 ms", stroke: color(1), width: 2, points: { show: true } },
        { label: "TTFT p99 ms", stroke: color(2), width: 2, points: { show: true } }];
      const data = [xs, steps.map((st) => st.latency_p50_ms), steps.map((st) => st.latency_p99_ms),
        steps.map((st) => st.ttft_p99_ms)];
      const axes = [{ label: "achieved ok req/s" }, { label: "ms" }];
      const scales = { x: { time: false }, y: { auto: true } };
      if (hasGoodput) {
        series.push({ label: "goodput req/s", stroke: color(3), width: 2, dash: [6, 4], scale: "rps", points: { show: true } });
        data.push(steps.map((st) => st.goodput_per_s));
        axes.push({ scale: "rps", side: 1, label: "goodput req/s", grid: { show: false } });
        scales.rps = { auto: true };
      }
      chart(s, "sweep-" + sweep.name, "Latency against throughput", { scales, axes, series }, data);
      table(s, ["step", "profile", "rate/s", "ok req/s", "output tok/s", "TTFT p50", "TTFT p99", "latency p50", "latency p99", "errors", "goodput/s", "failed gates", "ended"],
        (sweep.steps || []).map((st) => [st.step, st.profile || "-", fmt(st.rate_per_s), fmt(st.requests_per_s), fmt(st.output_tokens_per_s, 1),
          fmt(st.ttft_p50_ms), fmt(st.ttft_p99_ms), fmt(st.latency_p50_ms), fmt(st.latency_p99_ms),
          fmt(100 * st.error_rate, 1) + "%", fmt(st.goodput_per_s), st.failed_gates || "-", stepEnding(st)]));
      for (const st of (sweep.steps || []).filter((st) => st.saturated)) {
        s.append(el("p", { class: "note" }, `Step ${st.step} saturated: ${st.saturated}`));
      }
    }
  }

  // How a sweep step ended: in full, interrupted (a partial step), or stopped early as saturated.
  function stepEnding(st) {
    const notes = [];
    if (st.interrupted) notes.push("interrupted: a partial step");
    if (st.saturated) notes.push(st.stopped_after_s != null ? `saturated: stopped after ${fmt(st.stopped_after_s, 1)} s` : "saturated");
    return notes.join("; ") || "in full";
  }

  // A capacity search: per objective, each probe's figure with its bootstrap interval against the
  // load, the objective's limit, and the answer (highest passing load, lowest failing one) marked.
  function searchSection() {
    for (const search of DATA.searches) {
      const r = search.search || {};
      const s = section("Capacity search: " + search.name, r.line || "");
      const probes = (r.probes || []).slice().sort((a, b) => a.load - b.load);
      const unit = r.over === "concurrency" ? "in flight" : "req/s";
      const names = ((probes[0] || {}).objectives || []).map((o) => o.name);
      const answer = r.answer || {};
      names.forEach((name, k) => {
        const of = (p) => (p.objectives || []).find((o) => o.name === name) || {};
        const first = of(probes[0]);
        const share = first.unit === "share";
        const scale = (v) => (v == null ? v : (share ? 100 * v : v));
        const finite = probes.flatMap((p) => [of(p).value, of(p).low, of(p).high]).filter((v) => v != null).map(scale);
        // A figure past every answer (a percentile among failed requests) is drawn at the top.
        const ceiling = 1.2 * Math.max(scale(first.limit) || 0, ...finite);
        const y = (v) => (v == null ? ceiling : scale(v));
        const xs = probes.map((p) => p.load);
        const data = [xs, probes.map((p) => y(of(p).value)), probes.map((p) => y(of(p).low)),
          probes.map((p) => y(of(p).high)), probes.map(() => scale(first.limit))];
        const series = [{ label: unit },
          { label: name + (share ? " %" : " ms"), stroke: color(k), width: 2, points: { show: true, size: 7 } },
          { label: "interval low", stroke: color(k), width: 1, dash: [3, 3] },
          { label: "interval high", stroke: color(k), width: 1, dash: [3, 3] },
          { label: "limit", stroke: "#d62728", width: 2, dash: [8, 4], points: { show: false } }];
        // The answer: a solid line at the highest passing load, a dotted one at the lowest failing.
        const mark = (u) => {
          const ctx = u.ctx;
          ctx.save();
          for (const [at, dash, ink] of [[answer.max, [], "#2ca02c"], [answer.fails_at, [4, 4], "#ff7f0e"]]) {
            if (at == null) continue;
            const x = u.valToPos(at, "x", true);
            ctx.strokeStyle = ink;
            ctx.lineWidth = 2;
            ctx.setLineDash(dash);
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
          }
          ctx.restore();
        };
        chart(s, "search-" + search.name + "-" + name, `${name} against the load (answer: green; first failing load: orange)`,
          { scales: { x: { time: false } }, axes: [{ label: unit }, { label: share ? "%" : "ms" }], series, hooks: { draw: [mark] } }, data);
      });
      const objectiveCell = (o) => {
        const v = (x) => (x == null ? "∞" : (o.unit === "share" ? fmt(100 * x, 1) + "%" : fmt(x, 1)));
        return `${v(o.value)} [${v(o.low)}, ${v(o.high)}] ${o.outcome}`;
      };
      table(s, ["probe", "load", "ok req/s", "time s", ...names, "outcome", "notes"],
        (r.probes || []).map((p) => [p.step, p.step === 1 ? "sync" : fmt(p.load), fmt(p.requests_per_s), fmt(p.duration_s, 1),
          ...names.map((n) => objectiveCell((p.objectives || []).find((o) => o.name === n) || {})), p.outcome,
          [p.cut_short ? "cut short, not judged" : "", p.saturated ? "saturated" : "", p.extensions ? `extended ×${p.extensions}` : "", p.inconclusive ? "inconclusive: judged on its figures" : ""].filter(Boolean).join(", ") || "-"]));
      for (const t of r.thresholds || []) s.append(el("p", { class: "note" }, `fail-on ${t.expression}: ${t.failed ? "FAILED" : "passed"}`));
    }
  }

  function summarySection() {
    const runs = DATA.runs;
    if (!runs.length) return;
    const s = section("Summary");
    const rows = [
      ["requests", (x) => `${get(x, "requests.total")} total, ${get(x, "requests.ok")} ok, ${get(x, "requests.failed")} failed`],
      ["ok req/s", (x) => fmt(x.requests_per_s)],
      ["output tok/s", (x) => fmt(get(x, "tokens.output_per_s"), 1)],
      ["latency p50 / p99 ms", (x) => `${fmt(get(x, "latency_ms.p50"))} / ${fmt(get(x, "latency_ms.p99"))}`],
      ["TTFT p50 / p99 ms", (x) => `${fmt(get(x, "ttft_ms.p50"))} / ${fmt(get(x, "ttft_ms.p99"))}`],
      ["TPOT p50 / p99 ms", (x) => `${fmt(get(x, "tpot_ms.p50"))} / ${fmt(get(x, "tpot_ms.p99"))}`],
      ["ITL p50 / p99 ms", (x) => `${fmt(get(x, "itl_ms.p50"))} / ${fmt(get(x, "itl_ms.p99"))}`],
      ["goodput", (x) => x.slo ? `${fmt(x.slo.goodput_per_s)}/s (${fmt(100 * x.slo.share_all, 1)}% meet every SLO)` : "-"],
      ["errors", (x) => Object.entries(x.errors_by_kind || {}).map(([k, n]) => `${k}: ${n}`).join(", ") || "none"],
      ["cost", (x) => get(x, "cost.total_usd") == null ? "unknown" : `$${fmt(get(x, "cost.total_usd"), 4)} ($${fmt(get(x, "cost.per_1k_requests_usd"), 4)} per 1,000)`],
      ["load", (x) => x.load ? `${x.load.profile}${x.load.rate_per_s ? " at " + fmt(x.load.rate_per_s) + "/s" : ""}, at most ${x.load.max_in_flight} in flight` : "-"],
      ["client CPU (self-check)", (x) => get(x, "load.client.cpu_cores_used") == null ? "-" : `${fmt(100 * get(x, "load.client.cpu_cores_used"), 0)}% of a core, ${fmt(100 * (get(x, "load.client.steal_share") || 0), 1)}% stolen`],
      ["gates (--fail-on)", (x) => (x.thresholds || []).map((t) => `${t.expression}: ${t.failed ? "FAILED" : "passed"}`).join("; ") || "-"],
      ["warnings", (x) => [...(x.warnings || []), ...(get(x, "load.client.warnings") || [])].join("; ") || "none"],
    ];
    const server = (x) => x.server;
    const serverRows = [
      ["server running / waiting", (x) => get(x, "server.running") ? `${fmt(get(x, "server.running.mean"), 1)} / ${fmt(get(x, "server.waiting.mean"), 1)} mean` : "-"],
      ["server KV cache max", (x) => get(x, "server.kv_cache_usage") ? fmt(100 * get(x, "server.kv_cache_usage.max"), 1) + "%" : "-"],
      ["server TTFT mean / p99 ms", (x) => get(x, "server.ttft_ms") ? `${fmt(get(x, "server.ttft_ms.mean"))} / ${fmt(get(x, "server.ttft_ms.p99"))}` : "-"],
      ["server prefix-cache hits", (x) => get(x, "server.prefix_cache_hit_rate") == null ? "-" : fmt(100 * get(x, "server.prefix_cache_hit_rate"), 1) + "%"],
      ["GPU utilisation / power", (x) => get(x, "server.gpu_util") ? `${fmt(100 * get(x, "server.gpu_util.mean"), 0)}% / ${fmt(get(x, "server.gpu_power_w.mean"), 0)} W` : "-"],
    ];
    const ranOn = [
      ["client machine", (r) => { const m = r.settings.client_machine; return m ? `${m.cpu_model || "?"}, ${m.cores} cores, ${fmt(m.memory_mib / 1024, 1)} GiB, ${m.os} ${m.kernel || ""}; llmvolley ${m.tool_version}` : "-"; }],
      ["reached the server", (r) => { const n = r.settings.network; return n ? (n.via === "proxy" ? "via proxy " + n.proxy : "directly") : "-"; }],
      ["server identity", (r) => { const i = r.settings.server_identity; if (!i) return "-"; const v = i.version; const ids = (i.models && i.models.ids) || []; return [v ? "version " + v : "", ids.length ? `${i.models.count} models (${ids.slice(0, 3).join(", ")}${ids.length > 3 ? ", ..." : ""})` : (i.models && i.models.error ? "models: " + i.models.error : ""), Object.entries(i.headers || {}).map(([k, v]) => k + ": " + v).join(", ")].filter(Boolean).join("; ") || "-"; }],
    ];
    const all = [...rows, ...(runs.some((r) => server(r.summary)) ? serverRows : [])];
    const body = all.map(([label, f]) => [label, ...runs.map((r) => f(r.summary))]);
    for (const [label, f] of ranOn) body.push([label, ...runs.map((r) => f(r))]);
    table(s, ["", ...runs.map((r) => r.name)], body);
  }

  function costSection() {
    const runs = DATA.runs.filter((r) => Object.keys(get(r.summary, "cost.by_model") || {}).length);
    if (!runs.length) return;
    const s = section("Tokens and cost per model", "Priced requests only, from the answers' usage and the price table the run used.");
    const rows = [];
    for (const r of runs) {
      for (const [model, m] of Object.entries(r.summary.cost.by_model)) {
        rows.push([r.name, model, fmt(m.requests, 0), fmt(m.input_tokens, 0), fmt(m.cached_tokens, 0), fmt(m.output_tokens, 0),
          m.cost_usd == null ? "no price" : "$" + fmt(m.cost_usd, 4)]);
      }
    }
    table(s, ["run", "model", "requests", "input tokens", "cached", "output tokens", "cost"], rows);
  }

  function settingsSection() {
    const all = [...DATA.runs, ...DATA.sweeps, ...DATA.searches].filter((r) => r.settings && typeof r.settings === "object");
    if (!all.length) return;
    const s = section("Settings", "From each folder's run.json. API keys are never written there, only where they came from; a header's value is redacted when its name looks like a secret's (auth, key, token, secret, cookie, signature, password, credential), so other headers appear as given.");
    for (const r of all) {
      const details = el("details", {}, el("summary", {}, r.name + " — " + (r.settings.command || "") + " " + (r.settings.workload || "")));
      const rows = Object.entries(r.settings).map(([k, v]) => [k, typeof v === "object" && v !== null ? JSON.stringify(v) : fmt(v, 6)]);
      table(details, ["setting", "value"], rows);
      s.append(details);
    }
  }

  app.append(el("h1", {}, "llmvolley report"));
  app.append(el("p", { class: "note" }, `llmvolley ${DATA.tool_version}; ` +
    [...DATA.runs, ...DATA.sweeps, ...DATA.searches].map((r) => r.dir).join(", ")));
  for (const part of [summarySection, distributionSection, timeSeriesSection, searchSection, sweepSection, costSection, settingsSection]) {
    try { part(); } catch (e) { window.__reportError(String(e && e.stack || e)); }
  }
  document.body.dataset.ready = "1";
})();
