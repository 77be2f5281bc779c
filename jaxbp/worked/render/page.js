/* jaxbp: the worked example of one SGD step, recomputed in the browser.

   jaxbpPage(root) reads the network from the <script class="jaxbp-data"> inside root and, on load
   and after every edit of an <input data-q="...">, redoes the arithmetic of jaxbp.manual in
   float64: forward pass, loss, backward pass (dL/da, da/dz, delta, dL/dW, dL/db, dL/da_prev), the
   SGD update (frozen parameters keep their values) and the forward pass after the update. Every
   element under root with data-q="name[i,j]" receives the value: data-value as Python's repr(float)
   writes it, the text to `digits` significant digits as Python's f"{v:.{digits}g}". Nothing is
   global: all state lives in this closure and all lookups are scoped to root. */
function jaxbpPage(root) {
  "use strict";
  const data = JSON.parse(root.querySelector("script.jaxbp-data").textContent);
  const L = data.activations.length;
  const frozen = new Set(data.frozen);
  const MAX_HIGHLIGHTED = 2000;
  let digits = data.digits;
  let names = null;

  // ---- numbers written as Python writes them ---------------------------------------------------
  function split(text) {
    // "d.ddde+X" -> {digits: "dddd", exp: X}
    const m = /^(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
    return { digits: m[1] + (m[2] || ""), exp: Number(m[3]) };
  }

  function special(v) {
    if (Number.isNaN(v)) return "nan";
    if (v === Infinity) return "inf";
    if (v === -Infinity) return "-inf";
    return null;
  }

  function exponent(exp) {
    const a = Math.abs(exp);
    return "e" + (exp < 0 ? "-" : "+") + (a < 10 ? "0" : "") + a;
  }

  function fixed(d, exp) {
    // the digits d.ddd × 10^exp written without an exponent
    if (exp < 0) return "0." + "0".repeat(-exp - 1) + d;
    if (d.length <= exp + 1) return d + "0".repeat(exp + 1 - d.length);
    return d.slice(0, exp + 1) + "." + d.slice(exp + 1);
  }

  function repr(v) {
    // Python's repr(float): the shortest digits that read back as v
    const s = special(v);
    if (s !== null) return s;
    if (v === 0) return Object.is(v, -0) ? "-0.0" : "0.0";
    const sign = v < 0 ? "-" : "";
    const { digits: d0, exp } = split(Math.abs(v).toExponential());
    const d = d0.replace(/0+$/, "") || "0";
    if (exp >= -4 && exp < 16) {
      const text = fixed(d, exp);
      return sign + (text.includes(".") ? text : text + ".0");
    }
    return sign + d[0] + (d.length > 1 ? "." + d.slice(1) : "") + exponent(exp);
  }

  function rounded(a, p) {
    // a > 0 to p significant digits, ties to even as Python does (toExponential rounds them up)
    // Shortcuts from the shortest digits that read back as a: with 15 digits or fewer (and a
    // normal number, spacing 2^-52 relative), those digits are the rounding, or show that no tie
    // is possible.
    const shortest = split(a.toExponential());
    const quick = p <= 15 && a >= 2.2250738585072014e-308;
    if (quick && shortest.digits.length <= p) return shortest;
    const up = split(a.toExponential(p - 1));
    if (quick && !(shortest.digits.length === p + 1 && shortest.digits[p] === "5")) return up;
    const exact = split(a.toExponential(100)); // a tie is possible: look at the exact value
    if (exact.digits[p] === "5" && /^0*$/.test(exact.digits.slice(p + 1))
        && Number(exact.digits[p - 1]) % 2 === 0) {
      return { digits: exact.digits.slice(0, p), exp: exact.exp };
    }
    return up;
  }

  function format(v, p) {
    // Python's f"{v:.{p}g}", with "-0" written "0" (jaxbp.worked.render._notation.number)
    const s = special(v);
    if (s !== null) return s;
    if (v === 0) return "0";
    const sign = v < 0 ? "-" : "";
    const r = rounded(Math.abs(v), p);
    const d = r.digits.replace(/0+$/, "") || "0";
    if (r.exp >= -4 && r.exp < p) return sign + fixed(d, r.exp);
    return sign + d[0] + (d.length > 1 ? "." + d.slice(1) : "") + exponent(r.exp);
  }

  // ---- arrays: a matrix is an array of rows ---------------------------------------------------
  const map = (m, f) => m.map((row, i) => row.map((v, j) => f(v, i, j)));
  const sum = (values) => values.reduce((s, v) => s + v, 0);
  const transpose = (m) => m[0].map((_, j) => m.map((row) => row[j]));

  function matmul(a, b) {
    // (n, k) @ (k, m)
    return a.map((row) => b[0].map((_, j) => sum(row.map((v, k) => v * b[k][j]))));
  }

  // ---- activations and their derivatives (jaxbp.manual.ACTIVATIONS, DERIVATIVES) --------------
  function sigmoid(z) {
    if (z >= 0) return 1 / (1 + Math.exp(-z));
    const e = Math.exp(z);
    return e / (1 + e);
  }

  function softmaxRow(row) {
    const top = Math.max(...row);
    const e = row.map((v) => Math.exp(v - top));
    const total = sum(e);
    return e.map((v) => v / total);
  }

  const ELEMENTWISE = {
    linear: (z) => z,
    relu: (z) => Math.max(z, 0),
    sigmoid: sigmoid,
    tanh: Math.tanh,
  };

  const DERIVATIVE = {
    linear: () => 1,
    relu: (z) => (z > 0 ? 1 : 0),
    sigmoid: (z) => sigmoid(z) * (1 - sigmoid(z)),
    tanh: (z) => 1 - Math.tanh(z) * Math.tanh(z),
  };

  function activate(name, z) {
    return name === "softmax" ? z.map(softmaxRow) : map(z, ELEMENTWISE[name]);
  }

  function derivative(name, z) {
    // da/dz: (batch, n), or the softmax Jacobian J[n][i][j] = a_i (delta_ij - a_j)
    if (name !== "softmax") return map(z, DERIVATIVE[name]);
    return z.map((row) => {
      const a = softmaxRow(row);
      return a.map((ai, i) => a.map((aj, j) => ai * ((i === j ? 1 : 0) - aj)));
    });
  }

  // ---- losses and their derivatives (jaxbp.manual.PER_EXAMPLE_LOSSES, ..._DERIVATIVES) -------
  const xlogy = (x, y) => (x === 0 ? 0 : x * Math.log(y));

  function logSoftmax(row) {
    const top = Math.max(...row);
    const shifted = row.map((v) => v - top);
    const logTotal = Math.log(sum(shifted.map(Math.exp)));
    return shifted.map((v) => v - logTotal);
  }

  const PER_EXAMPLE = {
    half_se: (p, t) => 0.5 * sum(p.map((v, k) => (v - t[k]) * (v - t[k]))),
    mse: (p, t) => sum(p.map((v, k) => (v - t[k]) * (v - t[k]))) / p.length,
    cross_entropy: (p, t) => -sum(p.map((v, k) => xlogy(t[k], v))),
    softmax_cross_entropy: (p, t) => -sum(logSoftmax(p).map((v, k) => t[k] * v)),
    binary_cross_entropy: (p, t) =>
      -sum(p.map((v, k) => xlogy(t[k], v) + xlogy(1 - t[k], 1 - v))),
  };

  const PER_EXAMPLE_DERIVATIVE = {
    half_se: (p, t) => p.map((v, k) => v - t[k]),
    mse: (p, t) => p.map((v, k) => (2 * (v - t[k])) / p.length),
    cross_entropy: (p, t) => p.map((v, k) => -t[k] / v),
    softmax_cross_entropy: (p, t) => {
      const total = sum(t);
      return softmaxRow(p).map((v, k) => v * total - t[k]);
    },
    binary_cross_entropy: (p, t) => p.map((v, k) => (v - t[k]) / (v * (1 - v))),
  };

  function lossValue(pred, target) {
    return sum(pred.map((p, n) => PER_EXAMPLE[data.loss](p, target[n]))) / pred.length;
  }

  function lossDerivative(pred, target) {
    const batch = pred.length;
    return pred.map((p, n) => PER_EXAMPLE_DERIVATIVE[data.loss](p, target[n]).map((v) => v / batch));
  }

  // ---- the network ---------------------------------------------------------------------------
  function forward(params, x) {
    const rec = { inputs: [], products: [], z: [], a: [] };
    let a = x;
    params.forEach((layer, l) => {
      rec.inputs.push(a);
      const product = matmul(a, layer.w); // (batch, fan_in) @ (fan_in, fan_out)
      const z = layer.b ? map(product, (v, i, j) => v + layer.b[j]) : product;
      a = activate(data.activations[l], z);
      rec.products.push(product);
      rec.z.push(z);
      rec.a.push(a);
    });
    return rec;
  }

  function compute(v) {
    // every quantity under the names of jaxbp.worked.trace.Trace.names()
    const params = [];
    for (let l = 1; l <= L; l++) params.push({ w: v["W" + l], b: v["b" + l] });
    const fwd = forward(params, v.x);
    const out = { x: v.x, y: v.y, a0: v.x, lr: v.lr, loss: lossValue(fwd.a[L - 1], v.y) };
    let upstream = lossDerivative(fwd.a[L - 1], v.y); // dL/da_L
    const newParams = params.map(() => ({}));
    for (let l = L - 1; l >= 0; l--) {
      const n = l + 1;
      const name = data.activations[l];
      const der = derivative(name, fwd.z[l]);
      const delta = name === "softmax"
        ? upstream.map((up, b) => up.map((_, j) => sum(up.map((u, i) => der[b][i][j] * u))))
        : map(upstream, (u, b, j) => u * der[b][j]);
      const dW = matmul(transpose(fwd.inputs[l]), delta); // (fan_in, batch) @ (batch, fan_out)
      Object.assign(out, {
        ["W" + n]: params[l].w, ["xw" + n]: fwd.products[l], ["z" + n]: fwd.z[l],
        ["a" + n]: fwd.a[l], ["dL_da" + n]: upstream, ["da_dz" + n]: der,
        ["delta" + n]: delta, ["dW" + n]: dW,
      });
      newParams[l].w = frozen.has("W" + n) ? params[l].w : map(params[l].w, (w, i, j) => w - v.lr * dW[i][j]);
      if (params[l].b) {
        const db = delta[0].map((_, j) => sum(delta.map((row) => row[j])));
        out["b" + n] = params[l].b;
        out["db" + n] = db;
        newParams[l].b = frozen.has("b" + n) ? params[l].b : params[l].b.map((b, j) => b - v.lr * db[j]);
      }
      upstream = matmul(delta, transpose(params[l].w)); // dL/da_{l-1}
    }
    out.dL_da0 = upstream;
    const after = forward(newParams, v.x);
    out.loss_new = lossValue(after.a[L - 1], v.y);
    newParams.forEach((layer, l) => {
      const n = l + 1;
      Object.assign(out, {
        ["W" + n + "_new"]: layer.w, ["xw" + n + "_new"]: after.products[l],
        ["z" + n + "_new"]: after.z[l], ["a" + n + "_new"]: after.a[l],
      });
      if (layer.b) out["b" + n + "_new"] = layer.b;
    });
    return out;
  }

  // ---- the page ------------------------------------------------------------------------------
  function parseQ(q) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:\[([0-9, ]*)\])?$/.exec(q);
    if (!m) return null;
    return { name: m[1], index: m[2] ? m[2].split(",").map(Number) : [] };
  }

  function lookupKey(key) {
    let value = key && names[key.name];
    for (const i of key ? key.index : []) value = value === undefined ? undefined : value[i];
    return typeof value === "number" ? value : undefined;
  }

  const NUMBER = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

  function readInputs() {
    // the initial values with every input's number in place; the names of invalid inputs
    const values = JSON.parse(JSON.stringify(data.initial));
    const invalid = [];
    for (const { el, key, initial } of inputs) {
      const number = Number(el.value);
      const ok = NUMBER.test(el.value) && Number.isFinite(number) && (key.name !== "lr" || number > 0);
      el.classList.toggle("jaxbp-invalid", !ok);
      el.setAttribute("aria-invalid", String(!ok));
      if (!ok) {
        const what = key.name === "lr" ? "the learning rate must be a number > 0" : "not a number";
        invalid.push(`${el.dataset.q}: ${what}`);
        continue;
      }
      el.classList.toggle("jaxbp-modified", number !== initial);
      if (key.index.length === 0) values[key.name] = number;
      else {
        let target = values[key.name];
        key.index.slice(0, -1).forEach((i) => { target = target[i]; });
        target[key.index[key.index.length - 1]] = number;
      }
    }
    return { values, invalid };
  }

  function lookupIn(source, key) {
    let value = source[key.name];
    for (const i of key.index) value = value[i];
    return value;
  }

  // the page's structure is fixed: find its numbers and inputs once
  const cells = [...root.querySelectorAll("[data-q]:not(input)")].map((el) => (
    { el, key: parseQ(el.dataset.q), value: el.dataset.value, text: el.textContent }));
  const inputs = [...root.querySelectorAll("input[data-q]")].map((el) => {
    const key = parseQ(el.dataset.q);
    return { el, key, initial: lookupIn(data.initial, key) };
  });

  root.classList.toggle("jaxbp-large", cells.length > MAX_HIGHLIGHTED);

  function show(first, reformat) {
    const changed = [];
    for (const cell of cells) {
      const value = lookupKey(cell.key);
      const text_ = value === undefined ? "missing" : repr(value);
      if (cell.value !== text_) {
        cell.value = cell.el.dataset.value = text_;
        changed.push(cell.el);
      } else if (!reformat) continue;
      const text = value === undefined ? "?" : format(value, digits);
      if (cell.text !== text) cell.text = cell.el.textContent = text;
    }
    // highlight what changed; beyond a few thousand numbers the highlight costs seconds
    if (first || changed.length === 0 || changed.length > MAX_HIGHLIGHTED) return;
    changed.forEach((el) => el.classList.remove("jaxbp-changed"));
    void root.offsetWidth; // restart the highlight of numbers that changed again
    changed.forEach((el) => el.classList.add("jaxbp-changed"));
  }

  function update(first) {
    const { values, invalid } = readInputs();
    const status = root.querySelector(".jaxbp-status");
    const edited = root.querySelector("input.jaxbp-modified") !== null;
    root.classList.toggle("jaxbp-edited", edited);
    if (invalid.length) {
      status.textContent = invalid.join("; ") + ". The numbers below are those of the last "
        + "valid values.";
      status.classList.add("jaxbp-error");
      return;
    }
    status.classList.remove("jaxbp-error");
    status.textContent = edited
      ? "Edited: every number below was recomputed in this page (float64, the same chain rule as "
        + "jaxbp.manual). The check against jax.grad above applies to the initial values; download "
        + "the network file and run jaxbp explain --network on it to check these."
      : "Edit any white box (an input, a weight, a bias, a target or the learning rate), or "
        + "nudge it with the arrow keys: every number of the forward pass, the loss, the backward "
        + "pass and the update follows.";
    names = compute(values);
    show(first, first);
  }

  function networkFile() {
    const { values } = readInputs();
    const file = {
      name: data.name, sizes: data.sizes, activations: data.activations, bias: data.bias,
      params: data.bias.map((b, l) => (b ? { w: values["W" + (l + 1)], b: values["b" + (l + 1)] }
        : { w: values["W" + (l + 1)] })),
      x: values.x, y: values.y, loss: data.loss, lr: values.lr, units: data.units,
    };
    if (data.frozen.length) file.frozen = data.frozen;
    return JSON.stringify(file, null, 1) + "\n";
  }

  root.addEventListener("input", (event) => {
    if (event.target.matches("input[data-q]")) update(false);
  });
  root.querySelector(".jaxbp-digits").addEventListener("change", (event) => {
    digits = Number(event.target.value);
    show(true, true);
  });
  root.querySelector(".jaxbp-reset").addEventListener("click", () => {
    root.querySelectorAll("input[data-q]").forEach((input) => {
      input.value = input.defaultValue;
    });
    update(false);
  });
  root.addEventListener("keydown", (event) => {
    // ArrowUp/ArrowDown nudge a number by 0.01 (Shift: 0.1, Alt: 0.001) and recompute
    if (!event.target.matches("input[data-q]") || !["ArrowUp", "ArrowDown"].includes(event.key)) return;
    const value = Number(event.target.value);
    if (!NUMBER.test(event.target.value) || !Number.isFinite(value)) return;
    const step = (event.shiftKey ? 0.1 : event.altKey ? 0.001 : 0.01) * (event.key === "ArrowUp" ? 1 : -1);
    event.preventDefault();
    event.target.value = String(Number((value + step).toPrecision(12)));
    update(false);
  });
  root.querySelector(".jaxbp-download").addEventListener("click", () => {
    if (readInputs().invalid.length) return; // the status line names the numbers to fix first
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([networkFile()], { type: "application/json" }));
    link.download = "network.json";
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  });
  // for tests and the curious: the arithmetic and the formatting, on this page's element only
  root.jaxbp = { compute, repr, format, networkFile, names: () => names };
  update(true);
  root.dataset.ready = "true";
}
