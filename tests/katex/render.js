#!/usr/bin/env node
// Renders a batch of LaTeX strings with KaTeX, for tests/test_latex.py.
//
//   node render.js < in.json > out.json
//
// in.json: a JSON array of strings (rendered in display mode) or of
// {"tex": "...", "display": true|false}.  out.json: a JSON array, one entry per input,
// {"ok": true} or {"ok": false, "error": "KaTeX's message"}; "warnings" lists what
// KaTeX's strict mode reports (LaTeX that KaTeX accepts but real LaTeX would not).
// Rendering uses throwOnError: true, so any parse error is reported, never drawn in red.
"use strict";
const katex = require("katex");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const items = JSON.parse(input || "[]");
  const out = items.map((item) => {
    const tex = typeof item === "string" ? item : item.tex;
    const display = typeof item === "string" ? true : item.display !== false;
    const warnings = [];
    try {
      katex.renderToString(tex, {
        displayMode: display,
        throwOnError: true,
        strict: (code, msg) => { warnings.push(code + ": " + msg); return "ignore"; },
      });
      return { ok: true, warnings };
    } catch (err) {
      return { ok: false, error: String(err && err.message ? err.message : err), warnings };
    }
  });
  process.stdout.write(JSON.stringify(out));
});
