// The matcalc playground: reads its state from the URL, derives as you type (debounced),
// keeps the last good answer while the input is incomplete, and writes the state back
// to the URL.  Every string from the user or the server goes into the page through
// textContent or KaTeX (which escapes), never through innerHTML.
"use strict";

(function () {
  const DEBOUNCE_MS = 300;
  const TARGETS = ["numpy", "jax", "torch"];
  const EXAMPLES = [
    ["tr(X^T A X)", "X", ""],
    ["x^T A x + c", "x", "A=symmetric, c=scalar"],
    ["||A x - b||^2", "x", ""],
    ["sum(log(1 + exp(-y .* (A w))))", "w", ""],
    ["logdet(S) + (x - mu)^T S^-1 (x - mu)", "S", "S=spd"],
    ["||X - U V^T||_F^2", "U,V", ""],
    ["x^T A x", "x", "", "hessian"],
    ["tanh(W x + b)", "x", ""],
    ["\\operatorname{tr}(X^\\top A X)", "X", ""],
  ];

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c != null) node.append(c);
    return node;
  };

  const inputs = {
    expr: $("expr"), wrt: $("wrt"), let: $("let"),
    layout: $("layout"), symmetric: $("symmetric"),
  };
  let timer = null;
  let seq = 0;             // the number of the latest request; older answers are dropped
  let controller = null;
  let lastGood = null;     // the state of the answer on the page

  // ------------------------------------------------------------------ state <-> URL

  function kind() {
    return $("kind-hessian").checked ? "hessian" : "derivative";
  }

  // "A=symmetric, c=scalar X=matrix(m,n)" -> ["A=symmetric", "c=scalar", "X=matrix(m,n)"];
  // text that is no declaration is passed on as it is, so the server names the problem.
  function declarations(text) {
    const re = /([A-Za-z_\u0370-\u03ff][\w\u0370-\u03ff]*)\s*=\s*([A-Za-z]+\s*(?:\([^()]*\))?)/g;
    const out = [];
    let rest = text;
    for (const m of text.matchAll(re)) {
      out.push(m[1] + "=" + m[2].replace(/\s+/g, ""));
      rest = rest.replace(m[0], " ");
    }
    for (const left of rest.split(/[\s,;]+/)) if (left) out.push(left);
    return out;
  }

  function state() {
    return {
      expr: inputs.expr.value,
      wrt: inputs.wrt.value.trim(),
      let: declarations(inputs.let.value),
      layout: inputs.layout.value,
      kind: kind(),
      symmetric: inputs.symmetric.value,
    };
  }

  function toQuery(s) {
    const q = new URLSearchParams();
    q.set("expr", s.expr);
    q.set("wrt", s.wrt);
    for (const d of s.let) q.append("let", d);
    if (s.layout !== "gradient") q.set("layout", s.layout);
    if (s.kind !== "derivative") q.set("kind", s.kind);
    if (s.symmetric !== "sym") q.set("symmetric", s.symmetric);
    return q.toString();
  }

  function fromURL() {
    const q = new URLSearchParams(location.search);
    inputs.expr.value = q.get("expr") || "";
    inputs.wrt.value = q.get("wrt") || "";
    inputs.let.value = q.getAll("let").join(", ");
    const layout = q.get("layout");
    inputs.layout.value = ["numerator", "denominator"].includes(layout) ? layout : "gradient";
    const k = q.get("kind") === "hessian" ? "hessian" : "derivative";
    $("kind-" + k).checked = true;
    inputs.symmetric.value = q.get("symmetric") === "cookbook" ? "cookbook" : "sym";
  }

  function writeURL(s) {
    const url = location.pathname + "?" + toQuery(s);
    if (url !== location.pathname + location.search) history.replaceState(null, "", url);
  }

  // ------------------------------------------------------------------ deriving

  function schedule(now) {
    clearTimeout(timer);
    const s = state();
    writeURL(s);
    timer = setTimeout(() => derive(s), now ? 0 : DEBOUNCE_MS);
  }

  async function derive(s) {
    if (!s.expr.trim() || !s.wrt) {
      ++seq;                            // an answer still on its way is for other input
      if (controller) controller.abort();
      hideError();
      setStatus(s.expr.trim() ? "name the variable (with respect to)" : "type an expression");
      return;
    }
    const mine = ++seq;
    if (controller) controller.abort();
    controller = new AbortController();
    setStatus("deriving…", "busy");
    const started = performance.now();
    let answer, status;
    try {
      const resp = await fetch("/api/derive", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ expr: s.expr, wrt: s.wrt, let: s.let, layout: s.layout,
                               kind: s.kind, symmetric: s.symmetric === "sym" ? null : s.symmetric }),
        signal: controller.signal,
      });
      status = resp.status;
      answer = await resp.json();
    } catch (e) {
      if (e.name === "AbortError") return;
      if (mine !== seq) return;
      showError("Connection", "the playground server does not answer (is `matcalc serve` still running?)");
      return;
    }
    if (mine !== seq) return;           // a newer request is on its way
    const ms = Math.round(performance.now() - started);
    if (answer.ok) {
      hideError();
      showResults(answer.results, s);
      lastGood = s;
      document.title = `d/d${s.wrt} ${s.expr} · matcalc`;
      setStatus(`derived in ${ms} ms`);
    } else {
      const err = answer.error || { type: "Error", message: "HTTP " + status };
      showError(err.type, err.rendered || err.message);
      setStatus(lastGood ? "showing the last good answer (for “" + lastGood.expr + "”)" : "", "stale");
    }
  }

  function setStatus(text, cls) {
    const st = $("status");
    st.textContent = text;
    st.className = "status" + (cls ? " " + cls : "");
    $("results").classList.toggle("stale", cls === "stale");
  }

  function showError(type, text) {
    $("error-title").textContent = type;
    $("error-text").textContent = text;
    $("error").hidden = false;
  }

  function hideError() {
    $("error").hidden = true;
    $("error-title").textContent = "";
    $("error-text").textContent = "";
  }

  // ------------------------------------------------------------------ rendering

  function tex(target, latex, display) {
    try {
      katex.render(latex, target, { displayMode: display, throwOnError: false, output: "htmlAndMathml" });
    } catch (e) {
      target.textContent = latex;
    }
  }

  function copyButton(getText, label) {
    const b = el("button", { type: "button", class: "small", text: label || "copy" });
    b.addEventListener("click", async () => {
      const text = getText();
      try {
        await navigator.clipboard.writeText(text);
      } catch (e) {
        const ta = el("textarea", { class: "offscreen" });
        ta.value = text;
        document.body.append(ta);
        ta.select();
        document.execCommand("copy");
        ta.remove();
      }
      b.textContent = "copied";
      setTimeout(() => { b.textContent = label || "copy"; }, 1200);
    });
    return b;
  }

  function downloadButton(getText, filename) {
    const b = el("button", { type: "button", class: "small", text: "download" });
    b.addEventListener("click", () => {
      const url = URL.createObjectURL(new Blob([getText()], { type: "text/x-python" }));
      const a = el("a", { href: url, download: filename() });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    });
    return b;
  }

  function shapeText(raw) {
    const shape = (raw || []).map((x) => String(x).replace(/\*/g, "·"));
    if (shape.length === 0) return "a scalar";
    if (shape.length === 2 && shape[1] === "1") return shape[0] === "1" ? "a scalar" : `a vector of length ${shape[0]}`;
    if (shape.length === 2 && shape[0] === "1") return `a row vector of length ${shape[1]}`;
    return shape.join(" × ");
  }

  function quantity(r) {
    const j = r.json;
    const what = { gradient: "gradient", derivative: "derivative", jacobian: "Jacobian", hessian: "Hessian" }[j.kind] || j.kind;
    return `${what} with respect to ${j.wrt}`;
  }

  function showResults(results, s) {
    const deriv = $("derivative");
    const short = $("abbreviated");
    const answers = $("answers");
    deriv.replaceChildren();
    short.replaceChildren();
    answers.replaceChildren();
    results.forEach((r, i) => {
      const j = r.json;
      // the rendered answer: the only KaTeX inside #derivative, its annotation exactly d.latex()
      const label = el("div", { class: "answer-label",
                                text: (j.kind === "hessian" ? `∂²f/∂${j.wrt}²` : `∂f/∂${j.wrt}`) + " =" });
      const math = el("div", { class: "math", "data-wrt": j.wrt });
      tex(math, r.latex, true);
      deriv.append(el("div", { class: "answer" }, label, math));
      // the same answer with its long repeated parts named once ("… where W = …"), where
      // that is markedly shorter; outside #derivative, whose annotation stays d.latex()
      if (j.abbreviated_latex && j.abbreviated_latex !== r.latex) {
        const m = el("div", { class: "math", "data-wrt": j.wrt });
        tex(m, j.abbreviated_latex, true);
        short.append(el("div", { class: "answer" },
                        el("div", { class: "answer-label", text: "=" }), m));
      }
      answers.append(card(r, i, s));
    });
    short.hidden = !short.childElementCount;
    $("results").hidden = false;
  }

  function card(r, i, s) {
    const j = r.json;
    const c = el("article", { class: "card", "aria-label": quantity(r) });
    c.append(el("h2", { text: quantity(r) }));

    // the text form
    const text = el("code", { class: "answer-text", text: r.text });
    c.append(el("div", { class: "row" }, el("span", { class: "key", text: "text" }), text,
                copyButton(() => r.text)));
    if (j.abbreviated && j.abbreviated !== r.text) {
      c.append(el("div", { class: "row" }, el("span", { class: "key", text: "abbreviated" }),
                  el("code", { class: "answer-text abbreviated-text", text: j.abbreviated }),
                  copyButton(() => j.abbreviated)));
    }
    if (r.note) c.append(el("p", { class: "note", text: r.note.trim() }));

    // kinds and sizes
    const dl = el("table", { class: "kinds" });
    dl.append(el("caption", { text: "kinds and sizes" }));
    const body = el("tbody");
    body.append(el("tr", {}, el("th", { scope: "row", text: "answer" }),
                   el("td", { text: `${j.kind}, ${shapeText(j.shape)}` + (j.layout !== "gradient" ? ` (${j.layout} layout)` : "") })));
    for (const [name, k] of Object.entries(j.symbols)) {
      const declared = s.let.some((d) => d.split("=")[0] === name);
      body.append(el("tr", {}, el("th", { scope: "row", text: name }),
                     el("td", {}, kindPicker(name, k, s), declared ? el("span", { class: "inferred", text: k }) : null)));
    }
    dl.append(body);
    c.append(dl);

    // the numeric check
    if (r.check) {
      const p = el("p", { class: "check" });
      if (r.check.error) p.textContent = "numeric check: " + r.check.error;
      else {
        const v = r.check.value;
        if (v.error === null || v.error === undefined) {
          p.textContent = "numeric check: could not evaluate" + (v.note ? ": " + v.note : "");
          p.classList.add("warn");
        } else {
          p.textContent = `numeric check: relative error ${v.error.toExponential(1)} against central ` +
            `finite differences at ${v.trials} random points: ${v.ok ? "ok" : "FAILED"}`;
          p.classList.add(v.ok ? "ok" : "bad");
        }
      }
      c.append(p);
    }

    // the steps
    const steps = el("details", { class: "steps" }, el("summary", { text: "steps of the derivation" }));
    if (r.steps_latex && r.steps_latex.value) {
      const m = el("div", { class: "math" });
      tex(m, r.steps_latex.value, true);
      steps.append(m);
      const t = el("pre", { class: "steps-text", text: r.steps_text && r.steps_text.value || "" });
      steps.append(el("details", {}, el("summary", { text: "as text" }), t));
    } else {
      steps.append(el("pre", { text: (r.steps_latex && r.steps_latex.error) || "no steps" }));
    }
    c.append(steps);

    // the generated code
    if (r.code) c.append(codePanel(r, i));

    // the JSON form
    const json = JSON.stringify(j, null, 2);
    c.append(el("details", { class: "json" }, el("summary", { text: "JSON" }),
                el("div", { class: "row" }, copyButton(() => json, "copy JSON")),
                el("pre", { text: json })));
    return c;
  }

  function codePanel(r, i) {
    const panel = el("section", { class: "code", "aria-label": "generated code" });
    const tabs = el("div", { class: "tabs", role: "group", "aria-label": "target" });
    const pre = el("pre", { class: "code-text", id: "code-" + i, tabindex: "0" });
    let current = "numpy";
    const source = () => {
      const c = r.code[current];
      return c.value !== undefined ? c.value : "# " + c.error.replace(/\n/g, "\n# ");
    };
    const buttons = TARGETS.map((t) => {
      const b = el("button", { type: "button", "data-target": t, text: t,
                               "aria-pressed": String(t === current), "aria-controls": "code-" + i });
      b.addEventListener("click", () => {
        current = t;
        for (const o of buttons) o.setAttribute("aria-pressed", String(o === b));
        pre.textContent = source();
      });
      return b;
    });
    tabs.append(...buttons);
    pre.textContent = source();
    const fname = () => `matcalc_${current}_${r.json.wrt.replace(/\W/g, "")}.py`;
    panel.append(el("h3", { text: "code" }), el("div", { class: "row" }, tabs, copyButton(source),
                 downloadButton(source, fname)), pre);
    return panel;
  }

  // a select per symbol: changing it edits the declarations (and derives again)
  function kindPicker(name, inferred, s) {
    const kinds = ["scalar", "vector", "matrix", "symmetric", "diagonal", "spd"];
    const declared = s.let.find((d) => d.split("=")[0] === name);
    const sel = el("select", { "aria-label": "kind of " + name, "data-symbol": name });
    sel.append(el("option", { value: "", text: declared ? "as inferred" : inferred }));
    for (const k of kinds) sel.append(el("option", { value: k, text: k }));
    if (declared) {
      const k = declared.split("=")[1];
      if (!kinds.includes(k)) sel.append(el("option", { value: k, text: k }));
      sel.value = k;
    }
    sel.addEventListener("change", () => {
      const lets = declarations(inputs.let.value).filter((d) => d.split("=")[0] !== name);
      if (sel.value) lets.push(name + "=" + sel.value);
      inputs.let.value = lets.join(", ");
      schedule(true);
    });
    return sel;
  }

  // ------------------------------------------------------------------ wiring

  function examples() {
    const sel = $("examples");
    for (const [expr, wrt, lets, k] of EXAMPLES) {
      sel.append(el("option", { value: JSON.stringify([expr, wrt, lets, k || "derivative"]),
                                text: `${expr}  (d/d${wrt}${k === "hessian" ? ", Hessian" : ""})` }));
    }
    sel.addEventListener("change", () => {
      if (!sel.value) return;
      const [expr, wrt, lets, k] = JSON.parse(sel.value);
      inputs.expr.value = expr;
      inputs.wrt.value = wrt;
      inputs.let.value = lets;
      $("kind-" + k).checked = true;
      sel.value = "";
      schedule(true);
      inputs.expr.focus();
    });
  }

  function init() {
    fromURL();
    examples();
    for (const input of [inputs.expr, inputs.wrt, inputs.let]) {
      input.addEventListener("input", () => schedule(false));
      input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") { e.preventDefault(); schedule(true); }
      });
    }
    for (const input of [inputs.layout, inputs.symmetric, $("kind-derivative"), $("kind-hessian")]) {
      input.addEventListener("change", () => schedule(true));
    }
    $("form").addEventListener("submit", (e) => { e.preventDefault(); schedule(true); });
    if (inputs.expr.value) schedule(true);
    else {
      setStatus("type an expression, or choose an example");
      inputs.expr.focus();
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
