"""The explorer's page: its style sheet and its script, written for zerograd (no library).

``explorer.py`` fills ``PAGE`` with the graph's SVG and the recorded steps (JSON). The
script replays the steps: the state after step k is computed from the start each time
(seed, then each step's gradients added to its inputs' ``.grad``, as the engine adds
them), so stepping back is as exact as stepping forward.
"""

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       color: #222; background: #fafafa; }
header { padding: 10px 16px; background: #fff; border-bottom: 1px solid #ddd; }
header h1 { font-size: 18px; margin: 0 0 4px 0; }
header p { margin: 0; font-size: 13px; color: #555; }
main { display: flex; gap: 16px; padding: 12px 16px; align-items: flex-start; }
#graph { flex: 1 1 auto; overflow: auto; background: #fff; border: 1px solid #ddd;
         border-radius: 6px; padding: 6px; min-width: 200px; }
#graph svg { max-width: 100%; height: auto; }
#panel { flex: 0 0 400px; background: #fff; border: 1px solid #ddd; border-radius: 6px;
         padding: 10px 12px; font-size: 13px; }
.controls { display: flex; gap: 6px; margin-bottom: 8px; }
.controls button { font-size: 13px; padding: 4px 8px; cursor: pointer; }
.controls button:disabled { cursor: default; opacity: 0.5; }
#counter { font-weight: 600; margin-bottom: 6px; }
#details h3 { font-size: 13px; margin: 10px 0 4px 0; }
#details .why { color: #444; margin: 4px 0; }
table.grads { border-collapse: collapse; width: 100%; }
table.grads td { padding: 2px 4px; vertical-align: top; border-top: 1px solid #eee;
                 font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
table.grads td.name { white-space: nowrap; font-weight: 600; }
table.grads td.meta { color: #777; white-space: nowrap; }
.value { white-space: pre-wrap; }
#steps { margin: 10px 0 0 0; padding-left: 22px; font-size: 12px; }
#steps li { cursor: pointer; padding: 1px 2px; }
#steps li.current { background: #ffe3e3; font-weight: 600; }
#steps li.done { color: #888; }
.zg-node.zg-current rect { stroke: #d62728; stroke-width: 3; fill: #ffd0d0; }
.zg-node.zg-receiving ellipse { stroke: #1f5fbf; stroke-width: 3; }
.zg-node.zg-sending ellipse { stroke: #2ca02c; stroke-width: 3; fill: #ffd27f; }
.zg-node.zg-done rect { fill: #e4e4e4; stroke: #aaa; }
.zg-edge.zg-active { stroke: #d62728; stroke-width: 2.4; }
tspan.zg-grad { fill: #7a0000; font-weight: 600; }
"""

SCRIPT = r"""
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("zg-data").textContent);
  const steps = data.steps;
  const byKey = (key) => document.querySelector('#graph [data-key="' + key + '"]');
  let position = 0;  // 0: before backward; k: step k has just run

  // -- arrays: {shape: [...], values: [...]} -------------------------------------------
  function add(a, b) {
    // A large array travels without its values, with the text of each total instead.
    if (a.values === null || b.values === null)
      return {shape: a.shape, dtype: a.dtype, values: null, summary: b.total_summary};
    return {shape: a.shape, dtype: a.dtype, values: a.values.map((v, i) => v + b.values[i])};
  }
  function number(v) {
    if (typeof v === "boolean") return v ? "True" : "False";
    if (Number.isInteger(v) && Math.abs(v) < 1e16) return String(v);
    if (!isFinite(v)) return isNaN(v) ? "nan" : (v > 0 ? "inf" : "-inf");
    return String(Number(v.toPrecision(4)));
  }
  function nested(values, shape, offset) {
    if (shape.length === 0) return number(values[offset]);
    const inner = shape.slice(1).reduce((p, n) => p * n, 1);
    const parts = [];
    for (let i = 0; i < shape[0]; i++) {
      parts.push(nested(values, shape.slice(1), offset + i * inner));
    }
    return "[" + parts.join(", ") + "]";
  }
  function text(a) {
    if (a === null || a === undefined) return "None";
    if (a.values === null) return a.summary;
    const n = a.values.length;
    if (n <= data.small) return nested(a.values, a.shape, 0);
    let lo = Infinity, hi = -Infinity, sum = 0;
    for (const v of a.values) { lo = Math.min(lo, v); hi = Math.max(hi, v); sum += v; }
    return n + " values in [" + number(lo) + ", " + number(hi) + "], mean " + number(sum / n);
  }
  function meta(a) {
    return a === null ? "" : "(" + a.shape.join(", ") + (a.shape.length === 1 ? "," : "") +
      ") " + a.dtype;
  }

  // -- the engine's bookkeeping, replayed ------------------------------------------------
  function gradsAfter(p) {
    const grads = {};
    for (const key of Object.keys(data.variables)) grads[key] = data.variables[key].initial_grad;
    grads[data.output] = data.seed;
    for (let i = 0; i < p; i++) {
      steps[i].inputs.forEach((key, j) => {
        const part = steps[i].added[j];
        if (part === null) return;
        grads[key] = grads[key] === null ? part : add(grads[key], part);
      });
    }
    return grads;
  }

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children || []) e.append(c);
    return e;
  }
  function row(cls, name, array, extra) {
    const value = el("td", {class: "value"}, [text(array)]);
    const tr = el("tr", {class: cls, "data-var": name,
                         "data-values": JSON.stringify(array === null ? null : array.values)},
                  [el("td", {class: "name"}, [name]), value,
                   el("td", {class: "meta"}, [meta(array)])]);
    if (extra) value.append(el("div", {class: "note"}, [extra]));
    return tr;
  }
  function label(key) { return data.variables[key].label; }
  function queueText(keys) {
    if (keys.length === 0) return "empty";
    const f = data.functions;
    return keys.map((k) => f[k].op + " (gen " + f[k].generation + ")").join(", ");
  }

  function render() {
    const before = gradsAfter(Math.max(position - 1, 0));
    const after = gradsAfter(position);
    document.querySelectorAll("#graph .zg-node").forEach((n) =>
      n.classList.remove("zg-current", "zg-receiving", "zg-sending", "zg-done"));
    document.querySelectorAll("#graph .zg-edge").forEach((e) => e.classList.remove("zg-active"));
    for (const key of Object.keys(data.variables)) {
      const node = byKey(key);
      const values = after[key] === null ? null : after[key].values;
      node.setAttribute("data-grad", JSON.stringify(values));
      node.querySelector("tspan.zg-grad").textContent = "grad " + text(after[key]);
    }
    for (let i = 0; i < position - 1; i++) byKey(steps[i].func).classList.add("zg-done");
    const details = document.getElementById("details");
    details.replaceChildren();
    document.getElementById("counter").textContent =
      position === 0 ? "Before backward (step 0 of " + steps.length + ")"
                     : "Step " + position + " of " + steps.length;
    if (position === 0) {
      byKey(data.output).classList.add("zg-receiving");
      const y = label(data.output);
      details.append(el("p", {class: "why"}, [
        "backward() starts by seeding the output's gradient: " + y + ".grad = " +
        text(data.seed) + " (ones shaped like " + y + "). Its creator goes into the queue, " +
        "ordered by generation."]));
      details.append(el("h3", {}, ["Seed"]));
      details.append(el("table", {class: "grads received"},
                        [row("seed", y + ".grad", data.seed)]));
      details.append(el("p", {class: "why queue"}, ["Queue: " + queueText(data.queue[0])]));
    } else {
      const step = steps[position - 1];
      const f = byKey(step.func);
      f.classList.add("zg-current");
      const around = '#graph .zg-edge[data-source="' + step.func + '"], ' +
                     '#graph .zg-edge[data-target="' + step.func + '"]';
      document.querySelectorAll(around).forEach((e) => e.classList.add("zg-active"));
      step.outputs.forEach((k) => { if (k !== null) byKey(k).classList.add("zg-receiving"); });
      step.inputs.forEach((k) => byKey(k).classList.add("zg-sending"));
      details.append(el("p", {class: "why"}, [
        "The queue's function of highest generation runs next: " + step.op +
        " (generation " + step.generation + "). Its backward gets the gradient of each " +
        "output and returns one per input; the engine adds each to that input's .grad."]));
      details.append(el("h3", {}, ["Inputs (forward values)"]));
      details.append(el("table", {class: "grads inputs"},
        step.inputs.map((k) => row("input", label(k), data.variables[k].data))));
      details.append(el("h3", {}, ["Receives (gy, the gradient of each output)"]));
      details.append(el("table", {class: "grads received"}, step.outputs.map((k, j) =>
        row("received", k === null ? "(freed output)" : label(k) + ".grad",
            k === null ? step.received[j] : before[k]))));
      details.append(el("h3", {}, ["Sends (gx, what backward returned)"]));
      const seen = {};
      details.append(el("table", {class: "grads sent"}, step.inputs.map((k, j) => {
        let note = "";
        if (step.sent[j] !== null && step.added[j] !== null) {
          const previous = k in seen ? seen[k] : before[k];
          const total = previous === null ? step.added[j] : add(previous, step.added[j]);
          seen[k] = total;
          const summed = step.added[j].shape.join() !== step.sent[j].shape.join() ?
            "summed to (" + step.added[j].shape.join(", ") + ") (broadcasting), " : "";
          note = previous === null ? summed + label(k) + ".grad = " + text(total)
            : summed + "added to " + text(previous) + ": " + label(k) + ".grad = " + text(total) +
              " (" + label(k) + " is used more than once, so its gradients add up)";
        } else if (step.sent[j] === null) {
          note = "None: no gradient for this input";
        } else {
          note = "a constant (requires_grad=False): not kept";
        }
        const name = "gx" + (step.inputs.length > 1 ? j : "") + " \u2192 " + label(k);
        return row("sent", name, step.sent[j], note);
      })));
      details.append(el("p", {class: "why queue"}, ["Queue: " + queueText(data.queue[position])]));
      if (position === steps.length) {
        const leaves = Object.keys(data.variables)
          .filter((k) => data.variables[k].leaf && after[k] !== null);
        details.append(el("p", {class: "why done"}, ["Done: the queue is empty. " +
          leaves.map((k) => label(k) + ".grad = " + text(after[k])).join("; ")]));
      }
    }
    document.querySelectorAll("#steps li").forEach((li, i) => {
      li.classList.toggle("current", i + 1 === position);
      li.classList.toggle("done", i + 1 < position);
    });
    const button = (id) => document.getElementById(id);
    button("first").disabled = button("prev").disabled = position === 0;
    button("last").disabled = button("next").disabled = position === steps.length;
  }

  function go(p) { position = Math.max(0, Math.min(steps.length, p)); render(); }
  document.getElementById("first").addEventListener("click", () => go(0));
  document.getElementById("prev").addEventListener("click", () => go(position - 1));
  document.getElementById("next").addEventListener("click", () => go(position + 1));
  document.getElementById("last").addEventListener("click", () => go(steps.length));
  document.addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight") go(position + 1);
    if (e.key === "ArrowLeft") go(position - 1);
  });
  const list = document.getElementById("steps");
  steps.forEach((s, i) => {
    const li = el("li", {}, [s.op + " (gen " + s.generation + ")"]);
    li.addEventListener("click", () => go(i + 1));
    list.append(li);
  });
  render();
})();
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>zerograd: backward of {title}</title>
<style>{style}</style>
</head>
<body>
<header>
<h1>Backward of {title}, step by step</h1>
<p>Arrows and the keys &larr; &rarr; move through the steps. Red: the function running;
blue: its output, whose gradient it receives; green: its inputs, which get gradients.</p>
</header>
<main>
<div id="graph">{svg}</div>
<aside id="panel">
<div class="controls">
<button id="first" title="before backward">&laquo; Start</button>
<button id="prev" title="previous step (&larr;)">&#x25C0; Back</button>
<button id="next" title="next step (&rarr;)">Next &#x25B6;</button>
<button id="last" title="after backward">End &raquo;</button>
</div>
<div id="counter"></div>
<div id="details"></div>
<h3 style="font-size:13px;margin:10px 0 0 0">Order of backward</h3>
<ol id="steps"></ol>
</aside>
</main>
<script id="zg-data" type="application/json">{data}</script>
<script>{script}</script>
</body>
</html>
"""
