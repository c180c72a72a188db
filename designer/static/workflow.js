/* The workflow editor (designer/workflow.html), on the shared editor (editor.js): the states
   as nodes and the transitions as arrows of a Cytoscape.js diagram, beside lists of both
   that say the same and are the keyboard's (and a phone's) way in.

   An arrow is drawn by dragging from one state to another (cytoscape-edgehandles, in its
   draw mode), or added with the small form under the transitions. Clicking a state or an
   arrow, in the diagram or in the lists, opens its editor. Where the states stand is kept
   in the definition ("x-layout", which the engine ignores) once a state is moved; until
   then the diagram is laid out by cytoscape-dagre. States a record cannot reach, and open
   states with no way out, are flagged on the diagram and listed in words as the user edits.

   Text from the definition reaches the page through el() (textContent) and the canvas. */
"use strict";

(() => {
  const {el, labelled, checkbox, textInput, choice, button, pick, setLabel} = BlocksDesigner;
  const root = document.querySelector("[data-workflow-editor]");
  const texts = JSON.parse(document.querySelector("template[data-workflow-texts]").innerHTML);
  const entities = JSON.parse(root.dataset.entities);
  const FINAL = new Set(texts.final_categories);
  const ANY = "*";               // "from any state", and the diagram's node that stands for it
  const LAYOUT = "x-layout";
  const parts = {
    entity: root.querySelector("[data-entity]"), initial: root.querySelector("[data-initial]"),
    states: root.querySelector("[data-states]"), transitions: root.querySelector("[data-transitions]"),
    flags: root.querySelector("[data-flags]"), selected: root.querySelector("[data-selected]"),
    diagram: root.querySelector("[data-diagram]"), draw: root.querySelector("[data-draw]"),
    newFrom: root.querySelector("[data-new-from]"), newTo: root.querySelector("[data-new-to]"),
  };

  let slug = null;                 // the meta-schema's pattern of a name
  let selected = null;             // what the editor panel shows: {type: "state"|"transition", index}
  const placed = new Map();        // where the diagram put the states x-layout does not place

  const ed = BlocksEditor.open({
    root, kind: "workflow", name: root.dataset.name || null,
    blank: () => ({kind: "workflow", name: "", label: {}, entity: "", initial: "new",
                   states: [{name: "new", label: {en: texts.new_state}, category: "open"}],
                   transitions: []}),
    async ready(_, schema) {
      slug = schema.$defs.slug.pattern;
      await BlocksActions.ready();
      wire();
    },
    render,
  });
  const edit = change => { ed.edit(change); overview(); };
  const rebuild = (change, focus) => ed.rebuild(change, focus);

  // --- the graph as the definition says it ------------------------------------------

  const stateNames = doc => doc.states.map(s => s.name);
  const sourcesOf = (t, doc) => t.from === ANY ? stateNames(doc) : [].concat(t.from || []);
  const stateLabel = s => pick(s.label, s.name);
  const transitionLabel = t => pick(t.label, t.name);

  /** States no record can reach from the initial one, and open states with no way out
      (a transition into another state). */
  function findFlags(doc) {
    const names = stateNames(doc);
    const next = new Map(names.map(n => [n, new Set()]));
    for (const t of doc.transitions) {
      for (const source of sourcesOf(t, doc)) {
        if (next.has(source) && next.has(t.to) && t.to !== source) next.get(source).add(t.to);
      }
    }
    const reached = new Set();
    const queue = next.has(doc.initial) ? [doc.initial] : [];
    while (queue.length) {
      const name = queue.shift();
      if (reached.has(name)) continue;
      reached.add(name);
      queue.push(...next.get(name));
    }
    return {
      unreachable: new Set(names.filter(n => !reached.has(n))),
      deadEnd: new Set(doc.states.filter(s => !FINAL.has(s.category || "open")
                                              && !next.get(s.name).size).map(s => s.name)),
    };
  }

  /** A name like `base` that `taken` does not hold yet. */
  function fresh(base, taken) {
    const stem = base.replace(/[^a-z0-9_]/g, "_").replace(/^[^a-z]+/, "").slice(0, 56) || "step";
    if (!taken.includes(stem)) return stem;
    let n = 2;
    while (taken.includes(`${stem}_${n}`)) n++;
    return `${stem}_${n}`;
  }

  const validName = name => new RegExp(`^(?:${slug})$`).test(name);

  // --- edits ----------------------------------------------------------------------------

  function addState() {
    const name = fresh("state", stateNames(ed.state));
    const position = freePosition();
    selected = {type: "state", index: ed.state.states.length};
    rebuild(doc => {
      doc.states.push({name, label: {en: texts.new_state}, category: "open"});
      if (doc[LAYOUT]) doc[LAYOUT][name] = position;
      else placed.set(name, position);
    }, "s:name");
    parts.selected.querySelector('[data-key="s:name"]')?.select();
  }

  function renameState(from, to) {
    rebuild(doc => {
      doc.states.find(s => s.name === from).name = to;
      if (doc.initial === from) doc.initial = to;
      for (const t of doc.transitions) {
        if (Array.isArray(t.from)) t.from = t.from.map(n => n === from ? to : n);
        if (t.to === from) t.to = to;
      }
      if (doc[LAYOUT]?.[from]) {
        doc[LAYOUT] = Object.fromEntries(Object.entries(doc[LAYOUT]).map(
          ([n, p]) => [n === from ? to : n, p]));
      }
    }, "s:name");
    if (placed.has(from)) placed.set(to, placed.get(from));
  }

  /** Remove a state with the transitions into it; the ones leaving it (with other
      sources too) just stop leaving it. */
  function removeState(index) {
    const name = ed.state.states[index].name;
    const gone = ed.state.transitions.filter(t => t.to === name
      || (Array.isArray(t.from) && t.from.length === 1 && t.from[0] === name)).map(t => t.name);
    selected = null;
    rebuild(doc => {
      doc.states.splice(index, 1);
      doc.transitions = doc.transitions.filter(t => !gone.includes(t.name));
      for (const t of doc.transitions) {
        if (Array.isArray(t.from)) t.from = t.from.filter(n => n !== name);
      }
      if (doc.initial === name) doc.initial = doc.states[0]?.name || "";
      if (doc[LAYOUT]) delete doc[LAYOUT][name];
    }, "add-state");
    if (gone.length) ed.say(texts.removed_with.replace("{names}", gone.join(", ")));
  }

  function addTransition(from, to) {
    const taken = ed.state.transitions.map(t => t.name);
    const name = fresh(`${from === ANY ? "any" : from[0]}_to_${to}`, taken);
    selected = {type: "transition", index: ed.state.transitions.length};
    rebuild(doc => doc.transitions.push({name, from, to}), "t:name");
  }

  function choose(type, index, focus = null) {
    selected = {type, index};
    ed.render(focus);
    if (focus === null) {
      parts.selected.scrollIntoView({block: "nearest", behavior: "smooth"});
    }
  }

  // --- what is shown ------------------------------------------------------------------

  function render() {
    const doc = ed.state;
    const count = selected?.type === "state" ? doc.states.length : doc.transitions.length;
    if (selected && selected.index >= count) selected = null;
    overview();
    parts.selected.replaceChildren(...(selected?.type === "state" ? stateEditor(selected.index)
      : selected?.type === "transition" ? transitionEditor(selected.index)
      : [el("p", {class: "muted"}, texts.nothing_selected)]));
  }

  /** Everything but the editor panel: the selects on top, the lists, the flags and the
      diagram (what an edit inside the panel may change). */
  function overview() {
    const doc = ed.state;
    const flags = findFlags(doc);
    drawHead(doc);
    drawLists(doc, flags);
    drawFlags(doc, flags);
    drawAddForm(doc);
    drawDiagram(doc, flags);
  }

  function drawHead(doc) {
    const known = entities.some(e => e.name === doc.entity);
    parts.entity.replaceChildren(el("option", {value: ""}, texts.choose),
      ...entities.map(e => el("option", {value: e.name}, pick(e.label, e.name))),
      known || !doc.entity ? null : el("option", {value: doc.entity}, doc.entity));
    parts.entity.value = doc.entity || "";
    const names = stateNames(doc);
    parts.initial.replaceChildren(...doc.states.map(s => el("option", {value: s.name},
                                                            stateLabel(s))),
      names.includes(doc.initial) ? null : el("option", {value: doc.initial}, doc.initial));
    parts.initial.value = doc.initial;
  }

  function drawLists(doc, flags) {
    const chosen = (type, i) => selected?.type === type && selected.index === i;
    parts.states.replaceChildren(...doc.states.map((s, i) => el("li", {
      "data-pointer": `/states/${i}`, "data-state": s.name,
      class: chosen("state", i) ? "chosen" : null},
      listButton(`state-${i}`, () => choose("state", i, "s:name"), stateLabel(s),
        el("code", {}, s.name),
        badge(doc.initial === s.name, "initial", `▶ ${texts.initial}`),
        badge(FINAL.has(s.category), s.category, categoryLabel(s.category)),
        badge(flags.unreachable.has(s.name), "flag", `⚠ ${texts.unreachable_badge}`),
        badge(flags.deadEnd.has(s.name), "flag", `⚠ ${texts.dead_end_badge}`)))));
    parts.transitions.replaceChildren(...doc.transitions.map((t, i) => el("li", {
      "data-pointer": `/transitions/${i}`, "data-transition": t.name,
      class: chosen("transition", i) ? "chosen" : null},
      listButton(`transition-${i}`, () => choose("transition", i, "t:name"), transitionLabel(t),
        el("span", {class: "muted"}, `${t.from === ANY ? texts.any_state
          : sourcesOf(t, doc).join(", ")} → ${t.to}`)))));
  }

  const listButton = (key, onClick, ...children) => {
    const b = button("", key, onClick, {class: "item"});
    b.replaceChildren(...children.filter(Boolean).flatMap((c, i) => i ? [" ", c] : [c]));
    return b;
  };
  const badge = (shown, kind, text) => shown ? el("span", {class: `chip ${kind}`}, text) : null;
  const categoryLabel = c => (texts.categories.find(([v]) => v === c) || [c, c])[1];

  function drawFlags(doc, flags) {
    const byName = new Map(doc.states.map(s => [s.name, s]));
    const items = [
      ...[...flags.unreachable].map(n => el("li", {"data-flag": "unreachable", "data-state": n},
        "⚠ ", texts.unreachable.replace("{state}", stateLabel(byName.get(n))))),
      ...[...flags.deadEnd].map(n => el("li", {"data-flag": "dead-end", "data-state": n},
        "⚠ ", texts.dead_end.replace("{state}", stateLabel(byName.get(n))))),
    ];
    parts.flags.replaceChildren(...(items.length ? items
      : [el("li", {class: "ok", "data-flag": "none"}, "✓ ", texts.no_flags)]));
  }

  function drawAddForm(doc) {
    const ticked = new Set([...parts.newFrom.querySelectorAll("input:checked")].map(i => i.value));
    const to = parts.newTo.value;
    parts.newFrom.replaceChildren(parts.newFrom.querySelector("legend"),
      ...[[ANY, texts.any_state], ...doc.states.map(s => [s.name, stateLabel(s)])].map(
        ([value, text]) => {
          const [box, input] = checkbox(text, ticked.has(value), `new-from-${value}`);
          input.value = value;
          return box;
        }));
    parts.newTo.replaceChildren(el("option", {value: ""}, texts.choose),
      ...doc.states.map(s => el("option", {value: s.name}, stateLabel(s))));
    parts.newTo.value = stateNames(doc).includes(to) ? to : "";
  }

  // --- the editor panel: one state -----------------------------------------------------

  function stateEditor(i) {
    const s = ed.state.states[i];
    const at = `/states/${i}`;
    const change = fn => edit(doc => fn(doc.states[i], doc));
    const nameBox = labelled(texts.name, textInput(s.name, "s:name", (value, input) => {
      const to = value.trim();
      if (to === s.name) return;
      const why = !validName(to) ? texts.bad_name
        : stateNames(ed.state).includes(to) ? texts.taken : null;
      if (why) {
        input.value = s.name;
        return note(nameBox, why);
      }
      renameState(s.name, to);
    }, {pattern: slug, required: "", spellcheck: "false"}), {"data-pointer": `${at}/name`});
    const category = choice(texts.categories, s.category || "open", "s:category",
      value => rebuild(doc => { doc.states[i].category = value; }));
    return [
      el("h2", {}, texts.state, " ", el("code", {}, s.name)),
      el("div", {class: "panel", "data-pointer": at, "data-state-editor": s.name},
        el("div", {"data-notes": ""}),
        nameBox,
        ...labels(s.label, "s", `${at}/label`, (lang, value) =>
          change(state => setLabel(state, "label", lang, value))),
        labelled(texts.category, category, {"data-pointer": `${at}/category`}),
        el("div", {class: "panel-actions"},
          ed.state.initial === s.name ? el("p", {class: "muted"}, "▶ ", texts.is_initial)
            : button(texts.make_initial, "s:initial",
                     () => rebuild(doc => { doc.initial = s.name; }, "s:name")),
          button(texts.remove_state, "s:remove", () => removeState(i),
                 {disabled: ed.state.states.length === 1, class: "danger"})))];
  }

  /** Inputs for a label map in English and Chinese. */
  function labels(map, key, pointer, commit, names = ["label_en", "label_zh"]) {
    return ["en", "zh"].map((lang, j) => labelled(texts[names[j]],
      textInput(map?.[lang] || "", `${key}:label-${lang}`, value => commit(lang, value),
                {maxlength: 200}),
      {"data-pointer": lang === "en" ? pointer : `${pointer}/zh`}));
  }

  function note(target, text) {
    target.append(el("p", {class: "field-error", "data-problem": ""}, text));
  }

  // --- the editor panel: one transition ------------------------------------------------

  function transitionEditor(i) {
    const t = ed.state.transitions[i];
    const at = `/transitions/${i}`;
    const change = fn => edit(doc => fn(doc.transitions[i], doc));
    const nameBox = labelled(texts.name, textInput(t.name, "t:name", (value, input) => {
      const to = value.trim();
      if (to === t.name) return;
      const why = !validName(to) ? texts.bad_name
        : ed.state.transitions.some(o => o.name === to) ? texts.taken : null;
      if (why) {
        input.value = t.name;
        return note(nameBox, why);
      }
      rebuild(doc => { doc.transitions[i].name = to; }, "t:name");
    }, {pattern: slug, required: "", spellcheck: "false"}), {"data-pointer": `${at}/name`});
    const to = choice([["", texts.choose], ...ed.state.states.map(s => [s.name, stateLabel(s)])],
      t.to, "t:to", value => rebuild(doc => { doc.transitions[i].to = value; }),
      {required: ""});
    return [
      el("h2", {}, texts.transition, " ", el("code", {}, t.name)),
      el("div", {class: "panel", "data-pointer": at, "data-transition-editor": t.name},
        el("div", {"data-notes": ""}),
        nameBox,
        ...labels(t.label, "t", `${at}/label`, (lang, value) =>
          change(tr => setLabel(tr, "label", lang, value))),
        fromBox(t, i, at),
        labelled(texts.to, to, {"data-pointer": `${at}/to`}),
        rolesBox(t, at, change),
        guardBox(t, i, at, change),
        requireBox(t, at, change),
        actionsBox(i),
        el("div", {class: "panel-actions"},
          button(texts.remove_transition, "t:remove", () => {
            selected = null;
            rebuild(doc => doc.transitions.splice(i, 1), `transition-${Math.max(i - 1, 0)}`);
          }, {class: "danger"})))];
  }

  function fromBox(t, i, at) {
    const any = t.from === ANY;
    const [anyBox, anyInput] = checkbox(texts.any_state, any, "t:from-any");
    anyInput.addEventListener("change", () => rebuild(doc => {
      doc.transitions[i].from = anyInput.checked ? ANY : [];
    }, "t:from-any"));
    return el("fieldset", {class: "choices", "data-pointer": `${at}/from`},
      el("legend", {}, texts.from), el("div", {"data-notes": ""}), anyBox,
      ...ed.state.states.map(s => {
        const [box, input] = checkbox(stateLabel(s), !any && t.from.includes(s.name),
                                      `t:from-${s.name}`);
        input.disabled = any;
        input.addEventListener("change", () => edit(doc => {
          const tr = doc.transitions[i];
          tr.from = stateNames(doc).filter(n => n === s.name ? input.checked
                                                               : tr.from.includes(n));
        }));
        return box;
      }));
  }

  /** Ticks for a list of names (roles, fields): ticking none removes the keyword. */
  function ticks(legend, pointer, key, choices, chosen, commit, help = null) {
    const all = [...choices, ...chosen.filter(n => !choices.some(([v]) => v === n))
                                      .map(n => [n, n])];
    return el("fieldset", {class: "choices", "data-pointer": pointer},
      el("legend", {}, legend), el("div", {"data-notes": ""}),
      ...all.map(([value, text]) => {
        const [box, input] = checkbox(text, chosen.includes(value), `${key}-${value}`);
        input.addEventListener("change", () => commit(
          all.map(([v]) => v).filter(v => v === value ? input.checked : chosen.includes(v))));
        return box;
      }),
      help ? el("p", {class: "muted"}, help) : null);
  }

  function listKeyword(holder, key, values) {
    if (values.length) holder[key] = values;
    else delete holder[key];
  }

  function rolesBox(t, at, change) {
    // Admins may take every transition: the roles to tick are the others.
    const roles = BlocksActions.roleChoices().filter(([name]) => name !== "admin");
    return ticks(texts.roles, `${at}/roles`, "t:role", roles, t.roles || [],
      chosen => change(tr => listKeyword(tr, "roles", chosen)),
      roles.length ? texts.roles_help : texts.no_roles);
  }

  function requireBox(t, at, change) {
    if (!ed.state.entity) return el("p", {class: "muted"}, texts.no_entity);
    return ticks(texts.require, `${at}/require`, "t:require",
      BlocksActions.fieldsOf(ed.state.entity).filter(f => !f.computed)
        .map(f => [f.name, f.label]), t.require || [],
      chosen => change(tr => listKeyword(tr, "require", chosen)));
  }

  function guardBox(t, i, at, change) {
    if (!ed.state.entity) return el("p", {class: "muted"}, texts.no_entity);
    const box = el("div", {class: "guard"},
      BlocksConditions.builder({
        entity: ed.state.entity, value: t.guard, key: "t:guard", saving: true,
        label: texts.guard, pointer: `${at}/guard`,
        onChange: value => change(tr => {
          if (value === undefined) delete tr.guard;
          else tr.guard = value;
        })}),
      ...labels(t.guard_message, "t:guard-message", `${at}/guard_message`,
        (lang, value) => change(tr => setLabel(tr, "guard_message", lang, value)),
        ["guard_message_en", "guard_message_zh"]));
    return box;
  }

  /** The actions taken with the transition: the list the automation builder edits its
      actions in (actions.js), on the transition's actions. */
  function actionsBox(i) {
    return el("div", {class: "rule-editor transition-actions"}, BlocksActions.list(ed, {
      path: ["transitions", i, "actions"], entity: ed.state.entity, key: "t:actions",
      title: texts.actions}));
  }

  // --- the diagram ----------------------------------------------------------------------

  let cy = null;
  let handles = null;
  let fitted = false;

  function style() {
    const css = getComputedStyle(document.documentElement);
    const accent = css.getPropertyValue("--accent").trim() || "#2563eb";
    const ink = css.getPropertyValue("--ink").trim() || "#1f2933";
    return [
      {selector: "node", style: {
        shape: "round-rectangle", label: "data(text)", width: "data(width)", height: 42,
        "text-valign": "center", "text-halign": "center", "text-wrap": "ellipsis",
        "text-max-width": "data(width)", "font-size": 13, color: ink,
        "background-color": "#ffffff", "border-width": 2, "border-color": "#7b8794"}},
      {selector: "node.final", style: {"border-style": "double", "border-width": 6}},
      {selector: "node.won", style: {"background-color": "#e8f5e9", "border-color": "#2e7d32"}},
      {selector: "node.lost", style: {"background-color": "#fdecea", "border-color": "#c62828"}},
      {selector: "node.closed", style: {"background-color": "#eceff1", "border-color": "#546e7a"}},
      {selector: "node.initial", style: {"border-color": accent, "border-width": 4}},
      {selector: "node.flagged", style: {"border-color": "#b26a00", "background-color": "#fff8e1"}},
      {selector: "node.flagged.open", style: {"border-style": "dashed", "border-width": 3}},
      {selector: "node.any", style: {shape: "ellipse", "border-style": "dotted",
                                     "background-color": "#f5f7fa"}},
      {selector: "node.chosen", style: {"overlay-color": accent, "overlay-opacity": 0.18,
                                        "overlay-padding": 6}},
      {selector: "edge", style: {
        "curve-style": "bezier", "target-arrow-shape": "triangle", width: 2,
        "line-color": "#7b8794", "target-arrow-color": "#7b8794", label: "data(text)",
        "font-size": 11, color: ink, "text-background-color": "#ffffff",
        "text-background-opacity": 1, "text-background-padding": 2, "text-rotation": "autorotate",
        "loop-direction": "-45deg", "loop-sweep": "-60deg"}},
      {selector: "edge.any", style: {"line-style": "dashed"}},
      {selector: "edge.chosen", style: {"line-color": accent, "target-arrow-color": accent,
                                        width: 4}},
      {selector: ".eh-preview, .eh-ghost-edge", style: {
        "line-color": accent, "target-arrow-color": accent, "line-style": "dashed"}},
      {selector: ".eh-ghost-node", style: {opacity: 0}},
      {selector: ".eh-source, .eh-target", style: {"border-color": accent, "border-width": 4}},
    ];
  }

  function startDiagram() {
    cy = cytoscape({container: parts.diagram, style: style(), minZoom: 0.25, maxZoom: 2.5,
                    boxSelectionEnabled: false, autounselectify: true, wheelSensitivity: 0.3});
    // The diagram's Cytoscape instance, for what drives the page (the browser tests).
    parts.diagram.cytoscape = cy;
    handles = cy.edgehandles({
      canConnect: (source, target) => !target.hasClass("any"),
      edgeParams: () => ({classes: "drawn"}),
      snap: false,
    });
    // Each of these redraws the graph: after Cytoscape has finished with the event.
    const later = fn => setTimeout(fn, 0);
    cy.on("ehcomplete", (event, source, target, added) => {
      added.remove();
      const from = source.hasClass("any") ? ANY : [source.data("name")];
      later(() => addTransition(from, target.data("name")));
    });
    cy.on("tap", "node", event => {
      const node = event.target;
      if (!node.hasClass("any")) later(() => choose("state", node.data("index")));
    });
    cy.on("tap", "edge", event => later(() => choose("transition", event.target.data("index"))));
    cy.on("dragfree", "node", event => {
      const node = event.target;
      if (node.hasClass("any")) return placed.set(ANY, {...node.position()});
      later(keepPositions);
    });
  }

  /** Keep where every state stands now in the definition (one undo step). */
  function keepPositions() {
    const positions = Object.fromEntries(cy.nodes().not(".any").map(n => [
      n.data("name"), {x: Math.round(n.position("x")), y: Math.round(n.position("y"))}]));
    edit(doc => { doc[LAYOUT] = positions; });
  }

  const nodeWidth = text => Math.min(180, Math.max(80, 8 * text.length + 28));

  function elements(doc, flags) {
    const index = new Map(doc.states.map((s, i) => [s.name, i]));
    const chosen = (type, i) => selected?.type === type && selected.index === i ? "chosen" : "";
    const nodes = doc.states.map((s, i) => {
      const flagged = flags.unreachable.has(s.name) || flags.deadEnd.has(s.name);
      const text = `${doc.initial === s.name ? "▶ " : ""}${flagged ? "⚠ " : ""}${stateLabel(s)}`;
      return {group: "nodes", data: {id: `s${i}`, name: s.name, index: i, text,
                                     width: nodeWidth(text)},
              classes: [s.category || "open", FINAL.has(s.category) ? "final" : "",
                        doc.initial === s.name ? "initial" : "", flagged ? "flagged" : "",
                        flags.unreachable.has(s.name) ? "unreachable" : "",
                        flags.deadEnd.has(s.name) ? "dead-end" : "",
                        chosen("state", i)].join(" ")};
    });
    const fromAny = doc.transitions.some(t => t.from === ANY);
    if (fromAny) {
      nodes.push({group: "nodes", data: {id: "any", name: ANY, text: `✱ ${texts.any_state}`,
                                         width: nodeWidth(texts.any_state) + 16},
                  classes: "any"});
    }
    const edges = doc.transitions.flatMap((t, i) => {
      const sources = t.from === ANY ? ["any"] : [].concat(t.from || [])
        .filter(n => index.has(n)).map(n => `s${index.get(n)}`);
      if (!index.has(t.to)) return [];
      return sources.map((source, j) => ({group: "edges", data: {
        id: `t${i}-${j}`, source, target: `s${index.get(t.to)}`, index: i, name: t.name,
        text: transitionLabel(t)}, classes: `${t.from === ANY ? "any" : ""} ${chosen("transition", i)}`}));
    });
    return [...nodes, ...edges];
  }

  function drawDiagram(doc, flags) {
    if (!cy) startDiagram();
    cy.batch(() => {
      cy.elements().remove();
      cy.add(elements(doc, flags));
    });
    const kept = doc[LAYOUT] || {};
    const loose = [];
    cy.nodes().forEach(node => {
      const at = kept[node.data("name")] || placed.get(node.data("name"));
      if (at) node.position({x: at.x, y: at.y});
      else loose.push(node);
    });
    if (!loose.length) return fitOnce();
    if (loose.length === cy.nodes().length) {
      layOut();
    } else {
      const box = cy.nodes().difference(cy.collection(loose)).boundingBox();
      loose.forEach((node, k) => {
        node.position({x: box.x1 + 60 + k * 160, y: box.y2 + 80});
        placed.set(node.data("name"), {...node.position()});
      });
    }
    fitOnce();
  }

  /** Lay every node out in layers, left to right (dagre), and remember where. */
  function layOut() {
    cy.layout({name: "dagre", rankDir: "LR", nodeSep: 40, rankSep: 90, fit: false,
               animate: false}).run();
    cy.nodes().forEach(node => placed.set(node.data("name"), {...node.position()}));
  }

  function fitOnce() {
    if (fitted || !cy.width()) return;
    cy.fit(undefined, 30);
    if (cy.zoom() > 1.2) cy.zoom(1.2);
    cy.center();
    fitted = true;
  }

  /** Where a new state goes: the middle of what the diagram shows, clear of the others. */
  function freePosition() {
    if (!cy || !cy.width() || !cy.nodes().length) {
      const box = cy?.nodes().length ? cy.nodes().boundingBox() : {x1: 0, y2: 0};
      return {x: Math.round(box.x1 + 60), y: Math.round(box.y2 + 80)};
    }
    const view = cy.extent();
    const at = {x: Math.round(view.x1 + view.w / 2), y: Math.round(view.y1 + view.h / 2)};
    const near = p => cy.nodes().some(n => Math.abs(n.position("x") - p.x) < 120
                                          && Math.abs(n.position("y") - p.y) < 50);
    while (near(at)) at.y += 60;
    return at;
  }

  // --- wiring -----------------------------------------------------------------------------

  function wire() {
    parts.entity.addEventListener("change", () => rebuild(doc => {
      doc.entity = parts.entity.value;
    }, "entity"));
    parts.initial.addEventListener("change", () => rebuild(doc => {
      doc.initial = parts.initial.value;
    }, "initial"));
    root.querySelector("[data-add-state]").addEventListener("click", addState);
    root.querySelector("[data-add-transition]").addEventListener("submit", event => {
      event.preventDefault();
      const from = [...parts.newFrom.querySelectorAll("input:checked")].map(i => i.value);
      const to = parts.newTo.value;
      if (!from.length || !to) {
        parts.newFrom.querySelector(".field-error")?.remove();
        return note(parts.newFrom, texts.pick_from);
      }
      for (const input of parts.newFrom.querySelectorAll("input")) input.checked = false;
      addTransition(from.includes(ANY) ? ANY : from, to);
    });
    parts.draw.addEventListener("click", () => {
      const on = parts.draw.getAttribute("aria-pressed") !== "true";
      parts.draw.setAttribute("aria-pressed", String(on));
      if (on) handles.enableDrawMode();
      else handles.disableDrawMode();
    });
    root.querySelector("[data-tidy]").addEventListener("click", () => {
      layOut();
      keepPositions();
      cy.fit(undefined, 30);
    });
    root.querySelector("[data-fit]").addEventListener("click", () => cy.fit(undefined, 30));
    const show = root.querySelector("[data-show-diagram]");
    show.addEventListener("click", () => {
      const on = root.classList.toggle("with-diagram");
      show.setAttribute("aria-pressed", String(on));
      cy.resize();
      fitted = false;
      fitOnce();
    });
    new ResizeObserver(() => {
      if (!cy) return;
      cy.resize();
      fitOnce();
    }).observe(parts.diagram);
  }
})();
