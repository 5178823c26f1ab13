// Offline API docs: lists the endpoints of /openapi.json (FastAPI's default /docs loads Swagger from a CDN).
"use strict";

function node(tag, cls, text) {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text !== undefined) n.textContent = text;
  return n;
}

function resolve(spec, schema) {
  if (schema && schema.$ref) return spec.components.schemas[schema.$ref.split("/").pop()] || schema;
  return schema || {};
}

function fieldsOf(spec, schema) {
  const s = resolve(spec, schema);
  const props = s.properties || {};
  const required = new Set(s.required || []);
  return Object.entries(props).map(([name, p]) => {
    const r = resolve(spec, p);
    const type = r.type || (r.anyOf ? r.anyOf.map((a) => a.type || (a.$ref || "").split("/").pop()).join(" | ") : "object");
    return `${name}${required.has(name) ? " (required)" : ""}: ${type}${p.description ? " – " + p.description : ""}`;
  });
}

async function main() {
  const root = document.getElementById("endpoints");
  const spec = await (await fetch("/openapi.json")).json();
  root.replaceChildren(node("p", "muted", `${spec.info.title} ${spec.info.version}. ${spec.info.description || ""}`));
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const box = node("section", "panel");
      box.append(node("h2", "", `${method.toUpperCase()} ${path}`));
      if (op.summary) box.append(node("p", "", op.summary));
      const params = (op.parameters || []).map((p) => `${p.name} (${p.in})`);
      if (params.length) box.append(node("p", "muted", "parameters: " + params.join(", ")));
      const content = (op.requestBody && op.requestBody.content) || {};
      for (const [type, media] of Object.entries(content)) {
        box.append(node("p", "", `request body ${type}:`));
        const list = node("ul");
        for (const line of fieldsOf(spec, media.schema)) list.append(node("li", "", line));
        box.append(list);
      }
      const ok = op.responses && op.responses["200"] && op.responses["200"].content;
      if (ok) box.append(node("p", "muted", "response: " + Object.keys(ok).join(", ")));
      root.append(box);
    }
  }
}

main().catch((err) => { document.getElementById("endpoints").textContent = `cannot load /openapi.json: ${err}`; });
