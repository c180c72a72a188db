/* The designer's pages: each reads and writes through the metadata REST routes
   (/api/v1/meta), with the session cookie and its CSRF token. Text always goes in as
   textContent, never as markup: definitions are user input. */
"use strict";

const BlocksDesigner = (() => {
  const main = document.querySelector("main[data-api]");
  const base = main.dataset.api;
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
  const texts = JSON.parse(document.querySelector("template[data-texts]")?.innerHTML || "{}");

  /** Call the metadata API (`path` below /api/v1/meta); answers the JSON body, or throws
      the problem it answers. */
  const api = (path, options = {}) => call(base + path, options);

  /** Call any URL of the API the same way. */
  async function call(url, options = {}) {
    const response = await fetch(url, {
      ...options, credentials: "same-origin",
      headers: {"Accept": "application/json", "Content-Type": "application/json",
                "X-CSRFToken": csrf, ...(options.headers || {})}});
    const body = response.status === 204 ? null : await response.json();
    if (!response.ok) {
      throw Object.assign(new Error(body?.detail || body?.title || response.statusText),
                          {problem: body});
    }
    return body;
  }

  /** An element with a class, attributes and children (strings become text). */
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
      if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
    }
    node.append(...children.filter(c => c !== null && c !== undefined));
    return node;
  }

  function showError(error) {
    const box = document.querySelector("[data-error]");
    const errors = error.problem?.errors || {};
    box.textContent = [error.message, ...Object.entries(errors).map(
      ([key, messages]) => `${key}: ${[].concat(messages).join(", ")}`)].join("\n");
    box.hidden = false;
  }

  const json = value => value === undefined ? "" : JSON.stringify(value);

  // --- controls the editors share ---------------------------------------------------

  /** A control in its label, the label's text first. */
  function labelled(text, control, attributes = {}) {
    return el("label", attributes, el("span", {}, text), control);
  }

  /** A checkbox in its label (`part`: the keyword its errors concern): both. */
  function checkbox(text, checked, key, part = null) {
    const input = el("input", {type: "checkbox", checked: checked ? "" : false, "data-key": key});
    return [el("label", {class: "check", "data-part": part}, input, " ", text), input];
  }

  /** A text input that commits its value on change (so one edit is one undo step). */
  function textInput(value, key, commit, attributes = {}) {
    const input = el("input", {value, "data-key": key, autocomplete: "off", ...attributes});
    input.addEventListener("change", () => commit(input.value, input));
    return input;
  }

  /** A select of `[value, text]` choices that commits on change. */
  function choice(choices, value, key, commit, attributes = {}) {
    const select = el("select", {"data-key": key, ...attributes},
      ...choices.map(([v, text]) => el("option", {value: v}, text)));
    select.value = value ?? "";
    select.addEventListener("change", () => commit(select.value, select));
    return select;
  }

  /** A button that runs `onClick`; `label` is its accessible name where its text is a sign. */
  function button(text, key, onClick, {label = null, disabled = false, ...attributes} = {}) {
    const b = el("button", {type: "button", "data-key": key, "aria-label": label,
                            title: label, disabled: disabled ? "" : false, ...attributes}, text);
    b.addEventListener("click", onClick);
    return b;
  }

  /** A label map's text in the page's language, else English, else `fallback`. */
  function pick(labels, fallback) {
    return labels?.[document.documentElement.lang] || labels?.en || fallback;
  }

  /** Set or clear one language of a label map. */
  function setText(labels, lang, text) {
    if (text.trim()) labels[lang] = text.trim();
    else delete labels[lang];
  }

  /** Set or clear a keyword whose value is a label map (empty: no keyword). */
  function setLabel(holder, key, lang, text) {
    const labels = holder[key] || {};
    setText(labels, lang, text);
    if (Object.keys(labels).length) holder[key] = labels;
    else delete holder[key];
  }

  /** Set `key` of `holder` to `value`, or drop the key when `value` is empty (undefined,
      "" or []): optional keywords are left out rather than written empty. */
  function setOrDrop(holder, key, value) {
    if (value === undefined || value === "" || (Array.isArray(value) && !value.length)) {
      delete holder[key];
    } else {
      holder[key] = value;
    }
  }

  /** One change of a definition: its path and its value before and after. */
  function change(item) {
    const marks = {add: "+", remove: "−", replace: "~"};
    return el("li", {class: `change ${item.op}`},
      el("code", {}, `${marks[item.op]} ${item.path}`), " ",
      item.op !== "add" ? el("del", {}, json(item.before)) : null,
      item.op === "replace" ? " → " : null,
      item.op !== "remove" ? el("ins", {}, json(item.after)) : null);
  }

  // --- review and publish ------------------------------------------------------------

  async function review() {
    const box = document.querySelector("[data-review]");
    let plan;
    try {
      plan = await api("/plan");
    } catch (error) {
      box.replaceChildren();
      return showError(error);
    }
    if (!plan.definitions.length) {
      return box.replaceChildren(el("p", {class: "empty", "data-nothing": ""}, texts.nothing));
    }
    const definitions = el("ul", {class: "definitions"}, ...plan.definitions.map(d =>
      el("li", {"data-definition": `${d.kind}/${d.name}`},
        el("span", {class: `chip ${d.action}`}, texts[d.action]), " ",
        el("strong", {}, `${d.kind} ${d.name}`),
        d.changes?.length ? el("ul", {class: "changes"}, ...d.changes.map(change)) : null)));
    const steps = el("ol", {class: "steps"}, ...plan.steps.map((step, i) => {
      const item = el("li", {class: "step" + (step.destructive ? " destructive" : ""),
                             "data-step": i},
        el("p", {}, step.summary,
           step.rows !== undefined ? ` · ${step.rows} ${texts.rows}` : "",
           step.bad_rows ? ` · ${step.bad_rows} ${texts.bad_rows}` : ""));
      if (step.ddl?.length) item.append(el("pre", {class: "ddl"}, step.ddl.join(";\n") + ";"));
      if (step.blocked) item.append(el("p", {class: "blocked"}, `${texts.blocked} ${step.blocked}`));
      if (step.needs) item.append(el("p", {class: "blocked"}, `${texts.needs} ${step.needs}`));
      if (step.destructive) {
        item.append(el("label", {class: "confirm"},
          el("input", {type: "checkbox", "data-confirm": i}), ` ${texts.confirm} ${step.summary}`));
      }
      return item;
    }));
    const publish = el("button", {type: "button", class: "primary", "data-publish": ""},
                       texts.publish);
    const why = el("p", {class: "why"});
    const refresh = () => {
      const unticked = [...box.querySelectorAll("[data-confirm]")].some(c => !c.checked);
      publish.disabled = unticked || !plan.ready;
      why.textContent = !plan.ready ? texts.waiting : unticked ? texts.tick : "";
    };
    box.addEventListener("change", refresh);
    publish.addEventListener("click", async () => {
      publish.disabled = true;
      try {
        const done = await api("/publish", {method: "POST",
                                            body: JSON.stringify({confirm: plan.destructive})});
        box.replaceChildren(el("p", {class: "flash", role: "status", "data-published": ""},
          texts.published, " ", el("a", {href: "history"}, texts.history)),
          el("ul", {class: "definitions"}, ...done.definitions.map(
            d => el("li", {}, `${d.kind} ${d.name}: ${texts[d.action]}`))));
      } catch (error) {
        showError(error);
        refresh();
      }
    });
    box.replaceChildren(el("h2", {}, texts.definitions), definitions,
                        el("h2", {}, texts.database), steps, why, publish);
    refresh();
  }

  // --- history -------------------------------------------------------------------------

  async function history() {
    const body = document.querySelector("[data-publishes] tbody");
    let publishes;
    try {
      publishes = (await api("/publishes")).items;
    } catch (error) {
      return showError(error);
    }
    body.replaceChildren(...publishes.map(p => el("tr", {"data-publish-id": p.id},
      el("td", {}, String(p.id)),
      el("td", {}, new Date(p.published_at).toLocaleString()),
      el("td", {}, p.published_by || "—"),
      el("td", {}, ...p.definitions.map(d => el("button", {
        type: "button", class: "link", "data-open": `${d.kind}/${d.name}`},
        `${d.kind} ${d.name} (${d.action})`))))));
    body.addEventListener("click", event => {
      const target = event.target.closest("[data-open]");
      if (target) versions(...target.dataset.open.split("/"));
    });
  }

  async function versions(kind, name) {
    const panel = document.querySelector("[data-versions]");
    const form = panel.querySelector("[data-compare]");
    const list = panel.querySelector("[data-changes]");
    let items;
    try {
      items = (await api(`/${kind}/${name}/versions`)).items;
    } catch (error) {
      return showError(error);
    }
    panel.querySelector("[data-versions-title]").textContent = `${texts.versions} ${kind} ${name}`;
    for (const [select, chosen] of [[form.from, items.length - 2], [form.to, items.length - 1]]) {
      select.replaceChildren(...items.map((v, i) => el("option", {
        value: v.version, selected: i === Math.max(chosen, 0) ? "" : false},
        `${v.version} · ${new Date(v.published_at).toLocaleString()}`)));
    }
    list.replaceChildren();
    panel.hidden = false;
    form.onsubmit = async event => {
      event.preventDefault();
      try {
        const diff = await api(`/${kind}/${name}/diff?from=${form.from.value}&to=${form.to.value}`);
        list.replaceChildren(...(diff.changes.length ? diff.changes.map(change)
                                                      : [el("li", {}, texts.same)]));
      } catch (error) {
        showError(error);
      }
    };
    form.querySelector("[data-restore]").onclick = async () => {
      try {
        await api(`/${kind}/${name}/versions/${form.from.value}/restore`, {method: "POST"});
        list.replaceChildren(el("li", {"data-restored": ""},
          texts.restored.replace("{v}", form.from.value), " ",
          el("a", {href: "review"}, texts.review)));
      } catch (error) {
        showError(error);
      }
    };
  }

  return {api, call, el, labelled, checkbox, textInput, choice, button, pick, setText, setLabel,
          setOrDrop, showError, review, history};
})();
