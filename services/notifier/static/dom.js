// Building DOM nodes from data. Every string lands in textContent or an attribute set
// through the DOM: nothing here ever parses a string as HTML.

export function el(tag, options = {}, ...children) {
  const node = document.createElement(tag);
  if (options.class) node.className = options.class;
  if (options.text != null) node.textContent = String(options.text);
  if (options.title != null) node.title = String(options.title);
  for (const [name, value] of Object.entries(options.data || {})) {
    node.dataset[name] = String(value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

export function setText(node, text) {
  node.textContent = text == null ? "" : String(text);
}

export function ago(iso, now = Date.now()) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "";
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function labelChips(labels) {
  const box = el("span", { class: "labels" });
  for (const [key, value] of Object.entries(labels || {})) {
    box.append(el("span", { class: "label", text: `${key}=${value}` }));
  }
  return box;
}
