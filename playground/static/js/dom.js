// Building the page's elements. Text always goes in as text nodes (append of a string), never
// as HTML: model output, prompts and job data are untrusted.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "value") node.value = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function clear(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

let labels = 0;
// A labelled control: <label for=id>text</label> then the control.
export function field(text, control, hint) {
  if (!control.id) control.id = `field-${++labels}`;
  return el("div", { class: "field" }, el("label", { for: control.id }, text), control, hint ? el("small", { class: "muted" }, hint) : null);
}

export function numberInput(value, { min, max, step, name } = {}) {
  return el("input", { type: "number", value: String(value), min, max, step, name });
}

export function select(options, value, attrs = {}) {
  const node = el("select", attrs);
  for (const option of options) {
    const [optionValue, text] = Array.isArray(option) ? option : [option, option];
    node.append(el("option", { value: optionValue }, text));
  }
  if (value !== undefined) node.value = value;
  return node;
}

export function fmt(value, digits = 3) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "–";
}

export function weightsText(weights) {
  return Object.entries(weights).map(([name, w]) => `${name} ${w.toFixed(2)}`).join(" · ");
}

export function when(seconds) {
  return new Date(seconds * 1000).toLocaleString();
}

// The one confirmation dialog (a <dialog>, not window.confirm): resolves true when confirmed.
export function confirmAction(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

export function showError(error) {
  const box = document.getElementById("error");
  if (!error) {
    box.hidden = true;
    return;
  }
  box.textContent = error.message || String(error);
  box.hidden = false;
}
