/* The actions a rule takes, as the automation and approval builders edit them: an ordered
   list (added from a menu, moved by drag handle or by move up/down, removed), each action
   with the settings form of its type. The types and the JSON Schema of their settings come
   from the engine's registry (designer/contexts.py), so an action a plugin registers
   gets a form too, drawn from its schema.

   Also here, because both builders use them: what the page was told of the workspace
   (entities with their fields, users, teams; roles are read from the metadata routes), a
   duration's days / hours / minutes, SortableJS set up for lists ordered by hand, and a
   clause of the builders' sentences. */
"use strict";

const BlocksActions = (() => {
  const {api, el, labelled, checkbox, textInput, choice, button, pick} = BlocksDesigner;
  const context = JSON.parse(document.querySelector("template[data-rules-context]").innerHTML);
  const texts = context.texts;
  const registry = new Map(context.actions.map(a => [a.name, a]));
  const NUMBERS = new Set(["integer", "decimal", "currency", "percent"]);
  const LISTS = new Set(["multi_select", "tags"]);
  const UNITS = ["days", "hours", "minutes"];
  let roles = [];  // [name, label] of every role a rule may name, once ready() has read them

  // --- what the page knows of the workspace ---------------------------------------------

  const fieldsOf = entity => context.entities[entity]?.fields || [];
  const fieldOf = (entity, name) => fieldsOf(entity).find(f => f.name === name);
  const entityChoices = () => Object.entries(context.entities).map(([name, e]) => [name, e.label]);
  const userChoices = () => context.users.map(u => [u.username, u.name]);
  const teamChoices = () => context.teams.map(t => [t, t]);
  const roleChoices = () => roles;
  /** A choice's list with the current value kept, should the workspace no longer have it. */
  const keeping = (choices, value) => value && !choices.some(([v]) => v === value)
    ? [...choices, [value, value]] : choices;

  /** Read what the forms offer beyond the page: the roles (the built-in admin first). */
  async function ready() {
    const {items} = await api("/role");
    roles = [["admin", texts.admin], ...items.filter(r => r.name !== "admin")
      .map(r => [r.name, pick(r.label, r.name)])];
  }

  // --- the document, by path -------------------------------------------------------------

  /** The value at `path` (a list of keys) in `doc`, or undefined. */
  const at = (doc, path) => path.reduce((node, k) => node?.[k], doc);

  /** The array at `path` in `doc`, made (with the objects above it) where missing. */
  function arrayAt(doc, path) {
    let node = doc;
    for (const k of path.slice(0, -1)) node = node[k] ??= {};
    return node[path.at(-1)] ??= [];
  }

  /** Drop the array at `path` once empty, and each object above it it leaves empty:
      optional keys are left out rather than written empty. */
  function prune(doc, path) {
    for (let n = path.length; n > 0; n--) {
      const holder = at(doc, path.slice(0, n - 1));
      const value = holder?.[path[n - 1]];
      if (!value || Object.keys(value).length) return;
      delete holder[path[n - 1]];
    }
  }

  // --- ordering by hand ------------------------------------------------------------------

  /** SortableJS on `list`, in its pointer-event mode (a mouse, a pen and a finger alike):
      items dragged by their `handle`; `onMove(from, to)` redraws the document's order. */
  function sortable(list, handle, draggable, onMove) {
    Sortable.create(list, {
      forceFallback: true, fallbackTolerance: 4, delay: 150, delayOnTouchOnly: true,
      handle, draggable, ghostClass: "drag-ghost",
      onEnd(event) {
        if (event.oldIndex !== event.newIndex) onMove(event.oldIndex, event.newIndex);
      },
    });
  }

  /** Item `i` of `count`'s drag handle, and its move up / move down / remove buttons
      (keys `${key}:${i}:up` …); `move(from, to, part)` and `remove(i)` do the work. */
  function moves(key, i, count, move, remove) {
    return {
      handle: el("span", {class: "handle", title: texts.drag, "aria-hidden": "true"}, "⠿"),
      buttons: el("span", {class: "moves"},
        button("↑", `${key}:${i}:up`, () => move(i, i - 1, "up"),
               {label: texts.up, disabled: i === 0}),
        button("↓", `${key}:${i}:down`, () => move(i, i + 1, "down"),
               {label: texts.down, disabled: i === count - 1}),
        button(texts.remove, `${key}:${i}:remove`, () => remove(i))),
    };
  }

  /** The key a moved item's button keeps the focus on: the same button, unless the move
      took it to an end, where that button is disabled. */
  const movedFocus = (key, to, count, part) => part &&
    `${key}:${to}:${to === 0 ? "down" : to === count - 1 ? "up" : part}`;

  /** One part of a builder's sentence (an automation's, an approval's): its word, then
      what it says. */
  function clause(name, word, pointer, ...parts) {
    return el("section", {class: `clause clause-${name}`, "data-clause": name,
                          "data-pointer": pointer},
      el("h2", {class: "clause-word"}, word), el("div", {"data-notes": ""}),
      el("div", {class: "clause-body"}, ...parts));
  }

  // --- durations -------------------------------------------------------------------------

  /** Days, hours and minutes of `value` ({days, hours, minutes}); `commit` gets the
      duration they make (null when all are empty). */
  function duration(value, key, commit) {
    const inputs = UNITS.map(unit => el("input", {
      type: "number", min: 0, step: 1, value: value?.[unit] ?? "", "data-key": `${key}:${unit}`,
      "data-unit": unit}));
    const changed = () => {
      const made = Object.fromEntries(inputs.filter(input => input.value !== "")
        .map(input => [input.dataset.unit, Math.trunc(Number(input.value))]));
      commit(Object.keys(made).length ? made : null);
    };
    for (const input of inputs) input.addEventListener("change", changed);
    return el("span", {class: "duration"}, ...UNITS.map((unit, j) => labelled(texts[unit],
                                                                               inputs[j])));
  }

  // --- the list of actions ---------------------------------------------------------------

  /**
   * The actions at `path` (a list of keys) in the editor's document, as a list to edit.
   *
   * options.path   where the actions are, e.g. ["actions"] or ["on", "rejected"]
   * options.entity the entity whose record they act on
   * options.key    the data-key prefix of its controls
   * options.keep   keep the array when it is emptied (a rule needs its actions key)
   * options.title  its heading
   */
  function list(ed, {path, entity, key, keep = false, title}) {
    const pointer = "/" + path.join("/");
    const items = at(ed.state, path) || [];
    const edit = (i, fn) => ed.edit(doc => fn(at(doc, path)[i]));
    const rebuild = (fn, focus) => ed.rebuild(doc => {
      fn(arrayAt(doc, path));
      if (!keep) prune(doc, path);
    }, focus);
    const move = (from, to, part) => rebuild(
      actions => actions.splice(to, 0, ...actions.splice(from, 1)),
      movedFocus(key, to, items.length, part));
    const remove = i => rebuild(actions => actions.splice(i, 1),
                                items.length > 1 ? `${key}:${Math.min(i, items.length - 2)}:remove`
                                                 : `${key}:new`);

    const ol = el("ol", {class: "actions", "data-actions": key}, ...items.map((action, i) => {
      const ptr = `${pointer}/${i}`;
      const type = choice(keeping(context.actions.map(a => [a.name, a.label]), action.type),
        action.type, `${key}:${i}:type`,
        value => rebuild(actions => { actions[i] = fresh(value); }, `${key}:${i}:type`),
        {"aria-label": texts.action_type});
      const {handle, buttons} = moves(key, i, items.length, move, remove);
      return el("li", {class: "action", "data-pointer": ptr, "data-type": action.type},
        el("div", {class: "action-head"}, handle, el("span", {class: "ordinal"}, `${i + 1}.`),
           labelled(texts.action_type, type, {"data-pointer": `${ptr}/type`}), buttons),
        el("div", {"data-notes": ""}),
        el("div", {class: "action-body"}, ...form(action, {
          ptr, entity, key: `${key}:${i}`, edit: fn => edit(i, fn),
          rebuild: (fn, focus) => rebuild(actions => fn(actions[i]), focus), ed})));
    }));
    sortable(ol, ".handle", ".action", (from, to) => move(from, to, null));

    const kind = choice(context.actions.map(a => [a.name, a.label]), context.actions[0]?.name,
                        `${key}:new-type`, () => {}, {"aria-label": texts.action_type});
    const add = button(texts.add_action, `${key}:new`, () => rebuild(
      actions => actions.push(fresh(kind.value)), `${key}:${items.length}:type`));
    return el("section", {class: "action-list", "data-pointer": pointer},
      title ? el("h3", {}, title) : null, el("div", {"data-notes": ""}),
      items.length ? null : el("p", {class: "muted", "data-no-actions": ""}, texts.no_actions),
      ol,
      el("div", {class: "add-action"}, kind, add));
  }

  /** A new action of `type`, with what its form starts from. */
  function fresh(type) {
    return {set_fields: {type, values: {}}, create_record: {type, entity: "", values: {}},
            assign_owner: {type, strategy: "round_robin"}, notify: {type, user: "owner", title: ""},
            send_email: {type, to: [], subject: "", body: ""},
            webhook: {type, url: ""}}[type] || {type};
  }

  // --- each type's form ------------------------------------------------------------------

  /** The settings of one action: its type's own form, else one drawn from its schema. */
  function form(action, where) {
    const own = {set_fields: setFields, create_record: createRecord, assign_owner: assignOwner,
                 notify, send_email: sendEmail, webhook}[action.type];
    return own ? own(action, where) : fromSchema(action, where);
  }

  /** A text setting: left out when emptied. */
  function text(action, name, label, {ptr, key, edit}, {wide = false, ...attributes} = {}) {
    const input = textInput(action[name] ?? "", `${key}:${name}`, value => edit(a => {
      if (value.trim() === "") delete a[name];
      else a[name] = attributes.type === "number" ? Number(value) : value;
    }), attributes);
    return labelled(label, input, {"data-pointer": `${ptr}/${name}`, class: wide ? "wide" : null});
  }

  /** A long text setting (a message body). */
  function longText(action, name, label, {ptr, key, edit}) {
    const area = el("textarea", {rows: 3, "data-key": `${key}:${name}`});
    area.value = action[name] ?? "";
    area.addEventListener("change", () => edit(a => { a[name] = area.value; }));
    return labelled(label, area, {"data-pointer": `${ptr}/${name}`, class: "wide"});
  }

  /** A setting chosen from `choices` (the first, empty one: none, left out). */
  function pickOne(action, name, label, choices, {ptr, key, edit}) {
    const select = choice(keeping(choices, action[name]), action[name] ?? "", `${key}:${name}`,
      value => edit(a => {
        if (value === "") delete a[name];
        else a[name] = value;
      }));
    return labelled(label, select, {"data-pointer": `${ptr}/${name}`});
  }

  function setFields(action, where) {
    return [values(action, where, where.entity, texts.set_to)];
  }

  /** Field = value rows of `values` on `entity`; a value may be a formula on the record. */
  function values(action, {ptr, key, edit, rebuild}, entity, legend) {
    const settable = fieldsOf(entity).filter(f => !f.computed);
    const entries = Object.entries(action.values || {});
    /** Rewrite the values in order, entry j as `[name, value]` (null: removed). */
    const rewrite = (a, j, entry) => {
      const next = Object.entries(a.values || {});
      if (entry) next.splice(j, 1, entry);
      else next.splice(j, 1);
      a.values = Object.fromEntries(next);
    };
    const rows = entries.map(([name, value], j) => {
      const k = `${key}:value-${j}`;
      const spec = fieldOf(entity, name);
      const isFormula = value !== null && typeof value === "object" && !Array.isArray(value)
        && "formula" in value;
      const taken = new Set(entries.map(([n]) => n));
      const field = choice(keeping(settable.filter(f => f.name === name || !taken.has(f.name))
        .map(f => [f.name, f.label]), name), name, `${k}:field`,
        chosen => rebuild(a => rewrite(a, j, [chosen, null]), `${k}:value`),
        {"aria-label": texts.field});
      const [formulaBox, formulaToggle] = checkbox(texts.formula, isFormula, `${k}:formula`);
      formulaToggle.addEventListener("change", () => rebuild(a => rewrite(a, j, [name,
        formulaToggle.checked ? {formula: literalText(value)} : null]), `${k}:value`));
      const input = isFormula
        ? textInput(value.formula, `${k}:value`, typed => edit(a => {
          rewrite(a, j, [name, {formula: typed}]);
        }), {"aria-label": texts.formula, spellcheck: "false", class: "formula"})
        : literal(spec, value, `${k}:value`, typed => edit(a => rewrite(a, j, [name, typed])));
      return el("li", {class: "value-row", "data-pointer": `${ptr}/values/${name}`}, field,
                el("span", {"aria-hidden": "true"}, "="), input, formulaBox,
                button("×", `${k}:remove`, () => rebuild(a => rewrite(a, j, null), `${key}:add-value`),
                       {label: texts.remove}));
    });
    const free = settable.filter(f => !(f.name in (action.values || {})));
    const add = button(texts.add_value, `${key}:add-value`, () => rebuild(a => {
      a.values = {...a.values, [free[0].name]: null};
    }, `${key}:value-${entries.length}:field`), {disabled: !free.length});
    return el("fieldset", {class: "values wide", "data-pointer": `${ptr}/values`},
      el("legend", {}, legend), el("div", {"data-notes": ""}),
      entries.length ? el("ol", {}, ...rows) : el("p", {class: "muted"},
        entity ? texts.no_values : texts.entity_first),
      add);
  }

  /** A literal as the formula that gives it ("high" → "\"high\"", the rule language's text). */
  const literalText = value => value === null || value === undefined ? "" : JSON.stringify(value);

  /** The input of a literal value of field `spec` (empty: null, which clears the field). */
  function literal(spec, value, key, commit) {
    const type = spec?.type;
    const attributes = {"aria-label": texts.value};
    if (type === "select" || type === "boolean") {
      const choices = type === "select" ? spec.options : [["true", texts.yes], ["false", texts.no]];
      return choice([["", texts.empty], ...keeping(choices, value === null ? "" : String(value))],
        value === null ? "" : String(value), key,
        chosen => commit(chosen === "" ? null : type === "boolean" ? chosen === "true" : chosen),
        attributes);
    }
    if (NUMBERS.has(type)) {
      return textInput(value ?? "", key, typed => commit(typed === "" ? null : Number(typed)),
                       {...attributes, type: "number", step: "any"});
    }
    if (LISTS.has(type)) {
      return textInput((value || []).join(", "), key, typed => {
        const items = typed.split(",").map(s => s.trim()).filter(Boolean);
        commit(items.length ? items : null);
      }, {...attributes, placeholder: texts.comma_separated});
    }
    return textInput(value ?? "", key, typed => commit(typed === "" ? null : typed),
                     {...attributes, type: type === "date" ? "date" : "text"});
  }

  function createRecord(action, where) {
    const {entity} = where;
    const target = action.entity;
    const refs = (of, to) => fieldsOf(of).filter(f => f.ref === to).map(f => [f.name, f.label]);
    // Another entity: its links and values were another's.
    const targetChoice = choice(keeping([["", texts.choose], ...entityChoices()], target),
      target || "", `${where.key}:entity`, value => where.rebuild(a => {
        a.entity = value;
        a.values = {};
        delete a.link;
        delete a.into;
      }, `${where.key}:entity`));
    return [
      labelled(texts.create_entity, targetChoice, {"data-pointer": `${where.ptr}/entity`}),
      target ? pickOne(action, "link", texts.link,
                       [["", texts.no_link], ...refs(target, entity)], where) : null,
      target ? pickOne(action, "into", texts.into,
                       [["", texts.not_kept], ...refs(entity, target)], where) : null,
      target ? values(action, where, target, texts.with_values) : null];
  }

  function assignOwner(action, where) {
    const {ptr, key, rebuild, edit} = where;
    const byRule = action.strategy === "rule";
    const strategy = choice([["round_robin", texts.round_robin], ["least_open", texts.least_open],
                             ["rule", texts.by_rule]], action.strategy || "round_robin",
      `${key}:strategy`, value => rebuild(a => {
        a.strategy = value;
        if (value === "rule") {
          delete a.team;
          delete a.role;
          a.rules ||= [{when: "", user: ""}];
        } else {
          delete a.rules;
          delete a.otherwise;
        }
      }, `${key}:strategy`));
    const parts = [labelled(texts.strategy, strategy, {"data-pointer": `${ptr}/strategy`})];
    if (!byRule) {
      parts.push(pickOne(action, "team", texts.in_team, [["", texts.any_team], ...teamChoices()],
                         where),
                 pickOne(action, "role", texts.with_role, [["", texts.any_role], ...roleChoices()],
                         where));
      return parts;
    }
    const rules = (action.rules || []).map((rule, j) => {
      const k = `${key}:rule-${j}`;
      return el("li", {class: "assign-rule", "data-pointer": `${ptr}/rules/${j}`},
        BlocksConditions.builder({
          entity: where.entity, value: rule.when || undefined, key: `${k}:when`,
          pointer: `${ptr}/rules/${j}/when`, label: texts.when_holds,
          onChange: value => edit(a => { a.rules[j].when = value ?? ""; })}),
        labelled(texts.give_to, choice(keeping([["", texts.choose], ...userChoices()], rule.user),
          rule.user || "", `${k}:user`, value => edit(a => { a.rules[j].user = value; })),
          {"data-pointer": `${ptr}/rules/${j}/user`}),
        button(texts.remove, `${k}:remove`, () => rebuild(a => {
          a.rules.splice(j, 1);
        }, `${key}:add-rule`)));
    });
    parts.push(el("fieldset", {class: "wide", "data-pointer": `${ptr}/rules`},
      el("legend", {}, texts.first_rule), el("div", {"data-notes": ""}), el("ol", {}, ...rules),
      button(texts.add_rule, `${key}:add-rule`, () => rebuild(a => {
        (a.rules ||= []).push({when: "", user: ""});
      }, `${key}:rule-${rules.length}:user`))),
      pickOne(action, "otherwise", texts.otherwise, [["", texts.nobody], ...userChoices()], where));
    return parts;
  }

  /** Whom a notification goes to: the owner, a user, a user field, or a manager. */
  function notify(action, where) {
    const {ptr, key, rebuild, edit, entity} = where;
    const who = action.user ?? "owner";
    const kind = who === "owner" ? "owner" : typeof who === "string" ? "user"
      : "field" in who ? "field" : "manager_of";
    const userFields = fieldsOf(entity).filter(f => f.type === "user").map(f => [f.name, f.label]);
    const starts = {owner: "owner", user: context.users[0]?.username || "",
                    field: {field: userFields[0]?.[0] || ""}, manager_of: {manager_of: "owner"}};
    const whom = choice([["owner", texts.the_owner], ["user", texts.a_user],
                         ["field", texts.a_user_field], ["manager_of", texts.a_manager]], kind,
      `${key}:who`, value => rebuild(a => { a.user = starts[value]; }, `${key}:who`),
      {"aria-label": texts.recipient});
    const set = value => edit(a => { a.user = value; });
    const which = {
      owner: null,
      user: () => choice(keeping(userChoices(), who), who, `${key}:whom`, set,
                         {"aria-label": texts.a_user}),
      field: () => choice(keeping(userFields, who.field), who.field, `${key}:whom`,
                          value => set({field: value}), {"aria-label": texts.a_user_field}),
      manager_of: () => choice(keeping([["owner", texts.of_owner], ...userFields], who.manager_of),
                               who.manager_of, `${key}:whom`, value => set({manager_of: value}),
                               {"aria-label": texts.a_manager}),
    }[kind];
    return [
      el("span", {class: "labelled", "data-pointer": `${ptr}/user`},
         el("span", {}, texts.recipient), el("span", {class: "inline"}, whom, which?.())),
      text(action, "title", texts.title, where, {wide: true, placeholder: texts.template_hint}),
      longText(action, "body", texts.body, where)];
  }

  function sendEmail(action, where) {
    const {ptr, key, edit} = where;
    const to = el("textarea", {rows: 2, "data-key": `${key}:to`, spellcheck: "false",
                               placeholder: "{{ record.email }}"});
    to.value = (action.to || []).join("\n");
    to.addEventListener("change", () => edit(a => {
      a.to = to.value.split("\n").map(s => s.trim()).filter(Boolean);
    }));
    return [labelled(texts.to, to, {"data-pointer": `${ptr}/to`, class: "wide"}),
            text(action, "subject", texts.subject, where, {wide: true}),
            longText(action, "body", texts.body, where)];
  }

  function webhook(action, where) {
    return [text(action, "url", texts.url, where, {type: "url", wide: true,
                                                    placeholder: "https://"}),
            text(action, "secret", texts.secret, where, {spellcheck: "false"}),
            text(action, "timeout", texts.timeout_seconds, where,
                 {type: "number", min: 1, max: 60, step: "any"})];
  }

  /** A plugin's action: one control per setting its schema declares. */
  function fromSchema(action, where) {
    const {ptr, key, edit} = where;
    const schema = registry.get(action.type)?.schema || {};
    return Object.entries(schema.properties || {}).filter(([name]) => name !== "type")
      .map(([name, spec]) => {
        const label = spec.title || name;
        if (spec.enum) {
          return pickOne(action, name, label,
                         [["", texts.choose], ...spec.enum.map(v => [String(v), String(v)])],
                         where);
        }
        if (spec.type === "boolean") {
          const [box, input] = checkbox(label, action[name], `${key}:${name}`);
          input.addEventListener("change", () => edit(a => { a[name] = input.checked; }));
          box.dataset.pointer = `${ptr}/${name}`;
          return box;
        }
        if (spec.type === "string") return text(action, name, label, where);
        if (spec.type === "number" || spec.type === "integer") {
          return text(action, name, label, where, {type: "number", step: "any"});
        }
        // Anything else is written as JSON; what does not parse is kept as text, for the
        // engine to say what is wrong with it.
        const area = el("textarea", {rows: 2, "data-key": `${key}:${name}`, spellcheck: "false",
                                     class: "formula"});
        area.value = action[name] === undefined ? "" : JSON.stringify(action[name]);
        area.addEventListener("change", () => edit(a => {
          if (!area.value.trim()) return delete a[name];
          try {
            a[name] = JSON.parse(area.value);
          } catch {
            a[name] = area.value;
          }
        }));
        return labelled(`${label} (JSON)`, area, {"data-pointer": `${ptr}/${name}`, class: "wide"});
      });
  }

  // --- what a dry run says an action would do -------------------------------------------

  /** One action of a dry run's answer as a line to read: its type, then its settings. */
  function describe(action) {
    const label = registry.get(action.type)?.label || action.type;
    const show = value => typeof value === "string" ? value : JSON.stringify(value);
    const parts = Object.entries(action).filter(([name]) => name !== "type").map(
      ([name, value]) => name === "values" && value && typeof value === "object"
        ? Object.entries(value).map(([f, v]) => `${f} = ${show(v)}`).join(", ")
        : `${name}: ${show(value)}`);
    return parts.length ? `${label}: ${parts.join("; ")}` : label;
  }

  return {context, ready, fieldsOf, userChoices, teamChoices, roleChoices, keeping, sortable,
          moves, movedFocus, duration, clause, list, describe};
})();
