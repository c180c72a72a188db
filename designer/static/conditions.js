/* The condition builder: one component for every condition the designer edits (validation
   rules, form conditions, view filters, workflow guards, automation conditions, approval
   steps). Rows of field / operator / value in nested "all" / "any" groups, and a text tab
   with the same rule in the rule language's text syntax, editable both ways.

   The rule language has one parser and one type checker, the engine's: every change goes
   through POST /api/v1/rules/<entity>, which answers the rule's tree and its canonical
   text. The definition keeps the text (it reads well in an exported blueprint). A rule
   the rows cannot show (a formula, a function) stays in the text tab. The operators each
   kind of field offers come from GET /api/v1/rules/<entity>, the same the lists' filter
   builder offers. */
"use strict";

const BlocksConditions = (() => {
  const {call, el, button, choice} = BlocksDesigner;
  const main = document.querySelector("main[data-api]");
  const texts = JSON.parse(document.querySelector("template[data-condition-texts]")?.innerHTML
                           || "{}");
  const vocabularies = new Map();  // entity → its vocabulary (a promise)
  const checked = new Map();       // JSON of {entity, rule, saving} → the answer (a promise)
  //: The rule-language operator each builder operator writes.
  const TREE = {contains: "contains", has: "contains", eq: "==", ne: "!=", lt: "<", le: "<=",
                gt: ">", ge: ">=", before: "<", after: ">", on: "==", is: "=="};

  const rulesUrl = entity => `${main.dataset.rulesApi}/${encodeURIComponent(entity)}`;

  /** Answer from a cache of promises (a failed one is forgotten, to be asked again). */
  function cached(cache, key, ask) {
    if (!cache.has(key)) {
      const answer = ask();
      answer.catch(() => cache.delete(key));
      cache.set(key, answer);
    }
    return cache.get(key);
  }

  /** The fields and operators of `entity`: as `document` has it (an editor's unsaved
      entity) when that is valid, else as the drafts have it. */
  function vocabulary(entity, document = null) {
    const saved = () => cached(vocabularies, entity, () => call(rulesUrl(entity)));
    if (!document) return saved();
    return cached(vocabularies, JSON.stringify(document), () => call(
      `${rulesUrl(entity)}/fields`, {method: "POST", body: JSON.stringify({entity: document})}))
      .catch(saved);
  }

  /** The engine's reading of a rule: {tree, text, type}, or a thrown problem. Read
      against `document` when given, unless the document itself is what is wrong. */
  function check(entity, rule, saving, document = null) {
    const ask = body => cached(checked, JSON.stringify([entity, body]), () => call(
      rulesUrl(entity), {method: "POST", body: JSON.stringify(body)}));
    if (!document) return ask({rule, saving});
    return ask({rule, saving, entity: document}).catch(error => {
      if (error.problem?.errors?.["/rule"]) throw error;
      return ask({rule, saving});
    });
  }

  // --- rows to tree and back -------------------------------------------------------

  const group = (join = "and", items = []) => ({join, items});
  const isGroup = item => "items" in item;

  /** One row as a tree; null while it is not complete. */
  function rowTree(row, spec) {
    if (!spec || !row.op) return null;
    const v = {var: row.field};
    if (row.op === "empty" || row.op === "not_empty") {
      const tree = {is_empty: [v]};
      return row.op === "empty" ? tree : {"!": [tree]};
    }
    if (row.op === "in" || row.op === "not_in") {
      const chosen = row.value.filter(x => x !== "");
      if (!chosen.length) return null;
      const tree = {in: [v, chosen]};
      return row.op === "in" ? tree : {"!": [tree]};
    }
    const raw = String(row.value[0] ?? "").trim();
    if (raw === "") return null;
    let value = raw;
    if (spec.kind === "number") {
      value = Number(raw);
      if (!Number.isFinite(value)) return null;
    } else if (spec.kind === "date" || spec.kind === "datetime") {
      value = {date: [raw.slice(0, 10)]};
    } else if (spec.kind === "boolean") {
      value = raw === "true";
    }
    return {[TREE[row.op]]: [v, value]};
  }

  /** A group as a tree: null when it holds no complete row. */
  function groupTree(g, specs) {
    const parts = g.items.map(item => isGroup(item) ? groupTree(item, specs)
                                                    : rowTree(item, specs.get(item.field)))
      .filter(t => t !== null);
    if (!parts.length) return null;
    return parts.length === 1 ? parts[0] : {[g.join]: parts};
  }

  function operation(node) {
    if (node === null || typeof node !== "object" || Array.isArray(node)) return null;
    const keys = Object.keys(node);
    if (keys.length !== 1) return null;
    const args = node[keys[0]];
    return [keys[0], Array.isArray(args) ? args : [args]];
  }

  /** A tree as a group of rows; null when the rows cannot show it. */
  function fromTree(tree, specs) {
    const found = operation(tree);
    if (found && (found[0] === "and" || found[0] === "or")) {
      const items = found[1].map(part => {
        const inner = operation(part);
        return inner && (inner[0] === "and" || inner[0] === "or") ? fromTree(part, specs)
          : fromRow(part, specs);
      });
      return items.every(Boolean) ? group(found[0], items) : null;
    }
    const row = fromRow(tree, specs);
    return row ? group("and", [row]) : null;
  }

  function fromRow(node, specs) {
    let found = operation(node);
    if (!found) return null;
    let [op, args] = found;
    const negated = op === "!" && args.length === 1;
    if (negated) {
      found = operation(args[0]);
      if (!found || !["in", "is_empty"].includes(found[0])) return null;
      [op, args] = found;
    }
    const variable = args[0];
    const spec = variable && typeof variable === "object" && Object.keys(variable).length === 1
      && typeof variable.var === "string" ? specs.get(variable.var) : null;
    if (!spec) return null;
    const row = builderRow(spec, op, args.slice(1), negated);
    return row && spec.ops.includes(row.op) ? {field: spec.name, ...row} : null;
  }

  function builderRow(spec, op, rest, negated) {
    if (op === "is_empty" && !rest.length) return {op: negated ? "not_empty" : "empty", value: []};
    if (rest.length !== 1) return null;
    const value = rest[0];
    if (value === null && (op === "==" || op === "!=") && !negated) {
      return {op: op === "==" ? "empty" : "not_empty", value: []};
    }
    if (op === "in" && Array.isArray(value) && value.every(v => typeof v === "string")) {
      return {op: negated ? "not_in" : "in", value: [...value]};
    }
    if (negated) return null;
    const names = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"};
    if (spec.kind === "date" || spec.kind === "datetime") {
      const date = operation(value);
      const when = {"<": "before", ">": "after", "==": "on"}[op];
      return date && date[0] === "date" && date[1].length === 1 && when
        ? {op: when, value: [String(date[1][0])]} : null;
    }
    if (spec.kind === "boolean") {
      return op === "==" && typeof value === "boolean" ? {op: "is", value: [String(value)]} : null;
    }
    if (spec.kind === "select" && op === "==" && typeof value === "string") {
      return {op: "in", value: [value]};
    }
    if (spec.kind === "number" && typeof value === "number" && names[op]) {
      return {op: names[op], value: [String(value)]};
    }
    if (typeof value === "string") {
      const named = {...names, contains: spec.kind === "list" ? "has" : "contains"}[op];
      return named && ["==", "!=", "contains"].includes(op) ? {op: named, value: [value]} : null;
    }
    return null;
  }

  // --- the component -----------------------------------------------------------------

  /**
   * A condition builder for a rule on `entity`; answers its element at once (it fills
   * itself once the vocabulary is read).
   *
   * options.entity     the entity the rule reads
   * options.value      the rule: text, a tree, or undefined for none
   * options.key        a data-key prefix for its controls (keeps the focus over re-renders)
   * options.onChange   called with the rule's canonical text (undefined: no condition);
   *                    text that does not parse is passed on as typed, for the save to refuse
   * options.saving     whether changed() and previous() may be used
   * options.pointer    the JSON Pointer whose problems it shows
   * options.label      its heading
   * options.document() the entity's document as an editor has it, unsaved (the entity
   *                    editor's own rules); otherwise the entity as drafted
   */
  function builder(options) {
    const {entity, key, onChange, saving = false} = options;
    const unsaved = options.document?.() || null;
    const box = el("div", {class: "condition", "data-condition": key,
                           "data-pointer": options.pointer});
    const notes = el("div", {"data-notes": ""});
    const tabs = el("div", {class: "condition-tabs", role: "tablist"});
    const rowsPane = el("div", {class: "condition-rows", role: "tabpanel"});
    const textPane = el("div", {class: "condition-text", role: "tabpanel", hidden: ""});
    const message = el("p", {class: "field-error", "data-condition-error": "", hidden: ""});
    const textArea = el("textarea", {rows: 2, spellcheck: "false", "data-key": `${key}:text`,
                                     "aria-label": texts.as_text});
    box.append(el("span", {class: "condition-title"}, options.label || texts.condition),
               tabs, rowsPane, textPane, message, notes);
    textPane.append(textArea, el("p", {class: "muted"}, texts.text_help));
    let model = group();
    let specs = new Map();
    let vocab = null;
    let chosen = null;  // the tab the user pressed, which start() keeps

    const tab = (name, text) => button(text, `${key}:tab-${name}`, () => show(chosen = name),
                                       {role: "tab", "data-tab": name});
    tabs.append(tab("rows", texts.builder), tab("text", texts.text));

    function show(name) {
      rowsPane.hidden = name !== "rows";
      textPane.hidden = name !== "text";
      for (const t of tabs.children) {
        t.setAttribute("aria-selected", String(t.dataset.tab === name));
      }
    }

    function fail(text) {
      message.textContent = text;
      message.hidden = !text;
    }

    /** The rows changed: the rule is their tree, which the engine writes as text. */
    async function rowsChanged() {
      const tree = groupTree(model, specs);
      if (tree === null) {
        textArea.value = "";
        fail("");
        return onChange(undefined);
      }
      try {
        const answer = await check(entity, tree, saving, unsaved);
        textArea.value = answer.text;
        fail("");
        onChange(answer.text);
      } catch (error) {
        fail(ruleError(error));
        onChange(tree);
      }
    }

    async function textChanged() {
      const text = textArea.value.trim();
      if (!text) {
        model = group();
        drawRows();
        fail("");
        return onChange(undefined);
      }
      try {
        const answer = await check(entity, text, saving, unsaved);
        fail("");
        const rows = fromTree(answer.tree, specs);
        model = rows || group();
        drawRows(!rows);
        onChange(answer.text);
      } catch (error) {
        fail(ruleError(error));
        onChange(text);
      }
    }
    textArea.addEventListener("change", textChanged);

    function drawRows(textOnly = false) {
      rowsPane.replaceChildren(textOnly
        ? el("p", {class: "muted", "data-text-only": ""}, texts.text_only)
        : drawGroup(model, [], null));
    }

    function drawGroup(g, path, parent) {
      const id = `${key}:g${path.join("-")}`;
      const join = choice([["and", texts.all], ["or", texts.any]], g.join, `${id}:join`,
                          value => { g.join = value; rowsChanged(); },
                          {"aria-label": texts.join});
      const items = el("ol", {class: "condition-items"}, ...g.items.map((item, i) => el("li", {},
        isGroup(item) ? drawGroup(item, [...path, i], g) : drawRow(item, [...path, i], g))));
      const add = button(texts.add_row, `${id}:add`, () => {
        g.items.push({field: "", op: "", value: []});
        drawRows();
        rowsPane.querySelector(`[data-key="${CSS.escape(`${key}:r${[...path, g.items.length - 1].join("-")}:field`)}"]`)?.focus();
      });
      const nest = button(texts.add_group, `${id}:nest`, () => {
        g.items.push(group(g.join === "and" ? "or" : "and", [{field: "", op: "", value: []}]));
        drawRows();
      });
      const remove = parent ? button("×", `${id}:remove`, () => {
        parent.items.splice(parent.items.indexOf(g), 1);
        drawRows();
        rowsChanged();
      }, {label: texts.remove_group}) : null;
      return el("fieldset", {class: "condition-group", "data-group": path.join("-")},
        el("legend", {}, texts.match, " ", join, " ", texts.of_these), items,
        el("div", {class: "condition-actions"}, add, nest, remove));
    }

    function drawRow(row, path, parent) {
      const id = `${key}:r${path.join("-")}`;
      const spec = specs.get(row.field);
      const field = choice([["", texts.choose_field], ...vocab.fields.map(f => [f.name, f.label])],
        row.field, `${id}:field`, value => {
          row.field = value;
          row.op = specs.get(value)?.ops[0] || "";
          row.value = [];
          drawRows();
          rowsPane.querySelector(`[data-key="${CSS.escape(`${id}:op`)}"]`)?.focus();
          rowsChanged();
        }, {"aria-label": texts.field});
      const op = spec ? choice(spec.ops.map(o => [o, vocab.labels[o] || o]), row.op, `${id}:op`,
        value => {
          row.op = value;
          if (!["in", "not_in"].includes(value)) row.value = row.value.slice(0, 1);
          drawRows();
          rowsChanged();
        }, {"aria-label": texts.operator}) : null;
      const remove = button("×", `${id}:remove`, () => {
        parent.items.splice(parent.items.indexOf(row), 1);
        drawRows();
        rowsChanged();
      }, {label: texts.remove_row});
      return el("div", {class: "condition-row", "data-row": path.join("-")},
        field, op, spec ? valueWidget(row, spec, id) : null, remove);
    }

    function valueWidget(row, spec, id) {
      if (row.op === "empty" || row.op === "not_empty") return null;
      const set = values => { row.value = values; rowsChanged(); };
      const attributes = {"data-key": `${id}:value`, "aria-label": texts.value,
                          autocomplete: "off"};
      if (spec.kind === "select" || (spec.kind === "list" && spec.options.length)) {
        if (row.op === "in" || row.op === "not_in") {
          return el("span", {class: "condition-options", role: "group",
                             "aria-label": texts.value},
            ...spec.options.map(([value, label], j) => {
              const input = el("input", {type: "checkbox", value, "data-key": `${id}:opt-${j}`,
                                         checked: row.value.includes(value) ? "" : false});
              input.addEventListener("change", () => set(
                spec.options.map(([v]) => v).filter(v => v === value ? input.checked
                                                                      : row.value.includes(v))));
              return el("label", {class: "check"}, input, " ", label);
            }));
        }
        return choice([["", texts.choose], ...spec.options], row.value[0] ?? "", `${id}:value`,
                      value => set([value]), {"aria-label": texts.value});
      }
      if (spec.kind === "boolean") {
        return choice([["true", texts.yes], ["false", texts.no]], row.value[0] ?? "", `${id}:value`,
                      value => set([value]), {"aria-label": texts.value});
      }
      const type = {number: "number", date: "date", datetime: "date"}[spec.kind] || "text";
      const input = el("input", {...attributes, type, value: row.value[0] ?? "",
                                 step: type === "number" ? "any" : null});
      input.addEventListener("change", () => set([input.value]));
      if (spec.kind === "ref" && spec.target) searchAsYouType(input, spec, id);
      return input;
    }

    /** A reference's value is its record's id; typing a title offers the matches. */
    function searchAsYouType(input, spec, id) {
      const list = el("datalist", {id: `${id}:matches`.replace(/[^\w-]/g, "_")});
      input.setAttribute("list", list.id);
      input.placeholder = texts.search;
      let timer = null;
      input.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(async () => {
          const q = input.value.trim();
          if (!q) return list.replaceChildren();
          try {
            const found = await call(`${main.dataset.recordsApi}/${spec.target}?` +
                                     new URLSearchParams({q, limit: "8"}));
            list.replaceChildren(...found.items.map(record => el("option", {value: record.id},
              String(record[spec.title] ?? record.id))));
          } catch {
            list.replaceChildren();
          }
        }, 200);
      });
      queueMicrotask(() => input.after(list));
    }

    /** The tab start() shows once it knows the rule: `name`, unless one was pressed. */
    const settle = name => show(chosen ?? name);

    async function start() {
      try {
        vocab = await vocabulary(entity, unsaved);
      } catch (error) {
        rowsPane.replaceChildren(el("p", {class: "muted"}, texts.no_fields));
        settle("text");
        textArea.value = ruleText(options.value);
        return;
      }
      specs = new Map(vocab.fields.map(f => [f.name, {...f, ops: vocab.operators[f.kind]}]));
      const value = options.value;
      if (value === undefined || value === null || value === "") {
        drawRows();
        return settle("rows");
      }
      textArea.value = ruleText(value);
      try {
        const answer = await check(entity, value, saving, unsaved);
        textArea.value = answer.text;
        const rows = fromTree(answer.tree, specs);
        if (rows) model = rows;
        drawRows(!rows);
        settle(rows ? "rows" : "text");
      } catch (error) {
        fail(ruleError(error));
        drawRows(true);
        settle("text");
      }
    }

    show("rows");
    start().then(() => box.dispatchEvent(new CustomEvent("blocks:condition-ready",
                                                         {bubbles: true})));
    return box;
  }

  const ruleText = rule => rule === undefined || rule === null ? ""
    : typeof rule === "string" ? rule : JSON.stringify(rule);

  function ruleError(error) {
    return Object.values(error.problem?.errors || {}).flat().join(" ") || error.message;
  }

  return {builder, vocabulary, fromTree, groupTree};
})();
