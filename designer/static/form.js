/* The form editor (designer/form.html), on the shared editor (editor.js): the entity's
   fields from a palette into sections (in tabs or not), reordered and moved by drag or by
   keyboard, per-field conditions (visible, required, read-only) in the condition builder,
   and a live preview the server draws with the form screen's own widgets.

   A section is found by its place [t, s]: tab t's section s, t = -1 when the form has
   no tabs (its top-level "sections"), as form.json allows one or the other. */
"use strict";

(() => {
  const {api, el, labelled, textInput, choice, button, pick, setLabel} = BlocksDesigner;
  const root = document.querySelector("[data-form-editor]");
  const texts = JSON.parse(document.querySelector("template[data-texts]").innerHTML);
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
  const lang = document.documentElement.lang || "en";
  const build = root.querySelector("[data-form-build]");
  const palette = root.querySelector("[data-form-palette]");
  const placeIn = root.querySelector("[data-place-in]");
  const entitySelect = root.querySelector("[data-form-entity]");
  const defaultBox = root.querySelector("[data-form-default]");
  const preview = root.querySelector("[data-preview]");
  const previewProblems = root.querySelector("[data-preview-problems]");
  const FLAGS = ["visible", "required", "read_only"];
  // SortableJS's pointer-event mode: a mouse, a pen and a finger alike.
  const dragging = {forceFallback: true, fallbackTolerance: 4, delay: 150,
                    delayOnTouchOnly: true};

  let fields = new Map();     // the entity's fields as drafted: name → label
  let fieldsOf = null;        // the entity those are of
  const open = new Set();     // the fields whose conditions are shown

  const ed = BlocksEditor.open({
    root, kind: "form", name: root.dataset.name || null,
    blank: () => ({kind: "form", name: "", label: {}, entity: "",
                   sections: [{columns: 2, fields: []}]}),
    async ready(_, schema) {
      await loadFields(ed.state.entity);
      for (const input of root.querySelectorAll("[data-label]")) {
        input.maxLength = schema.$defs.label.additionalProperties.maxLength;
      }
      wire();
      schedulePreview();
    },
    render,
    changed: schedulePreview,
  });

  const edit = change => ed.edit(change);
  const rebuild = (change, focus) => ed.rebuild(change, focus);

  // --- the document's sections ---------------------------------------------------------

  const sectionsOf = (doc, t) => t < 0 ? doc.sections : doc.tabs[t].sections;
  const sectionAt = (doc, [t, s]) => sectionsOf(doc, t)[s];

  /** Every section's place, in the form's order. */
  function places(doc) {
    if (doc.tabs) return doc.tabs.flatMap((tab, t) => tab.sections.map((_, s) => [t, s]));
    return (doc.sections || []).map((_, s) => [-1, s]);
  }

  const placed = doc => places(doc).flatMap(p => sectionAt(doc, p).fields);
  const pointerOf = ([t, s]) => t < 0 ? `/sections/${s}` : `/tabs/${t}/sections/${s}`;
  const keyOf = ([t, s]) => `section-${t}-${s}`;
  const parsePlace = value => value.split(":").map(Number);

  /** A section's name in lists: its tab's and its own label, else its number. */
  function sectionName(doc, [t, s], n) {
    const own = pick(sectionAt(doc, [t, s]).label, texts.section_n.replace("{n}", n));
    return t < 0 ? own : `${pick(doc.tabs[t].label, texts.tab_n.replace("{n}", t + 1))} › ${own}`;
  }

  /** Forget the conditions of fields no longer on the form (a form.json rule must name
      a field on the form). */
  function pruneRules(doc) {
    const on = new Set(placed(doc));
    for (const name of Object.keys(doc.rules || {})) {
      if (!on.has(name)) delete doc.rules[name];
    }
    if (doc.rules && !Object.keys(doc.rules).length) delete doc.rules;
  }

  function addField(name, place, index = Infinity) {
    const next = [...palette.querySelectorAll("[data-add]:not([disabled])")]
      .map(b => b.dataset.key).find(k => k !== `add:${name}`);
    rebuild(doc => {
      const list = sectionAt(doc, place).fields;
      list.splice(Math.min(index, list.length), 0, name);
    }, next || `field:${name}:remove`);
  }

  function moveField(name, from, to, index) {
    rebuild(doc => {
      const source = sectionAt(doc, from).fields;
      source.splice(source.indexOf(name), 1);
      const target = sectionAt(doc, to).fields;
      target.splice(Math.min(index, target.length), 0, name);
    }, `field:${name}:${index === 0 ? "down" : "up"}`);
  }

  function removeField(name, place) {
    rebuild(doc => {
      const list = sectionAt(doc, place).fields;
      list.splice(list.indexOf(name), 1);
      pruneRules(doc);
    }, `add:${name}`);
  }

  /** Move the section at `from` to `to` (which places it among the others); the focus
      stays on its move buttons (down when it is first, as up is then off). */
  function moveSection(from, [t, s]) {
    rebuild(doc => {
      const [section] = sectionsOf(doc, from[0]).splice(from[1], 1);
      sectionsOf(doc, t).splice(s, 0, section);
    }, `${keyOf([t, s])}:${t <= 0 && s === 0 ? "down" : "up"}`);
  }

  /** One step earlier or later in the form's order, into the next tab past its edge. */
  function stepSection(doc, [t, s], step) {
    const count = sectionsOf(doc, t).length;
    if (s + step >= 0 && s + step < count) return moveSection([t, s], [t, s + step]);
    const tab = t + step;
    if (t < 0 || tab < 0 || tab >= doc.tabs.length) return;
    const at = step < 0 ? doc.tabs[tab].sections.length : 0;
    moveSection([t, s], [tab, at]);
  }

  function addSection(t) {
    const count = t < 0 ? (ed.state.sections || []).length : ed.state.tabs[t].sections.length;
    placeIn.dataset.next = [t, count].join(":");  // the palette's clicks fill the new section
    rebuild(doc => {
      if (t < 0) (doc.sections ||= []).push({columns: 2, fields: []});
      else doc.tabs[t].sections.push({columns: 2, fields: []});
    }, `${keyOf([t, count])}:label-en`);
  }

  function addTab() {
    const count = ed.state.tabs?.length || 0;
    const tabLabel = n => ({[lang]: texts.tab_n.replace("{n}", n)});
    rebuild(doc => {
      if (!doc.tabs) {
        const sections = doc.sections?.length ? doc.sections : [{columns: 2, fields: []}];
        doc.tabs = [{label: tabLabel(1), sections}];
        delete doc.sections;
      }
      doc.tabs.push({label: tabLabel(doc.tabs.length + 1),
                     sections: [{columns: 2, fields: []}]});
    }, `tab-${Math.max(count, 1)}:label-en`);
  }

  function removeTab(t) {
    rebuild(doc => {
      doc.tabs.splice(t, 1);
      if (!doc.tabs.length) {
        delete doc.tabs;
        doc.sections = [{columns: 2, fields: []}];
      }
      pruneRules(doc);
    }, "add-tab");
  }

  function setRule(doc, name, flag, value) {
    const rules = doc.rules ||= {};
    const own = rules[name] ||= {};
    if (value === undefined) delete own[flag];
    else own[flag] = value;
    if (!Object.keys(own).length) delete rules[name];
    if (!Object.keys(rules).length) delete doc.rules;
  }

  // --- the entity's fields ---------------------------------------------------------------

  /** The fields of `entity` as drafted, in its order, for the palette. */
  async function loadFields(entity) {
    fieldsOf = entity;
    if (!entity) {
      fields = new Map();
      return;
    }
    try {
      const document = await api(`/entity/${encodeURIComponent(entity)}`);
      fields = new Map(Object.entries(document.properties || {}).map(
        ([name, field]) => [name, pick(field["x-label"], name)]));
    } catch (error) {
      fields = new Map();
      ed.say(error.message, true);
    }
  }

  // --- what is shown ---------------------------------------------------------------------

  function render() {
    const doc = ed.state;
    if (doc.entity !== fieldsOf) {  // undo or redo went to another entity
      loadFields(doc.entity).then(() => ed.render());
    }
    entitySelect.value = doc.entity || "";
    entitySelect.disabled = Boolean(ed.name);  // a saved form stays with its entity
    defaultBox.checked = Boolean(doc.default);
    renderPalette(doc);
    const all = places(doc);
    const tabbed = Boolean(doc.tabs);
    build.replaceChildren(...(tabbed
      ? [el("ol", {class: "form-tabs", "data-tabs": "", "data-pointer": "/tabs"},
            ...doc.tabs.map((tab, t) => tabBox(doc, tab, t, all)))]
      : [sectionsBox(doc, -1, all),
         button(texts.add_section, "add-section--1", () => addSection(-1))]),
      button(texts.add_tab, "add-tab", addTab, {"data-add-tab": ""}));
    if (tabbed) {
      Sortable.create(build.querySelector("[data-tabs]"), {
        ...dragging, handle: ".tab-handle", draggable: ".form-tab",
        onEnd: event => event.oldIndex !== event.newIndex && rebuild(d => {
          d.tabs.splice(event.newIndex, 0, ...d.tabs.splice(event.oldIndex, 1));
        })});
    }
  }

  function renderPalette(doc) {
    const on = new Set(placed(doc));
    const all = places(doc);
    const chosen = placeIn.dataset.next || placeIn.value;
    delete placeIn.dataset.next;
    placeIn.replaceChildren(...all.map((p, i) => el("option", {value: p.join(":")},
                                                    sectionName(doc, p, i + 1))));
    placeIn.value = all.some(p => p.join(":") === chosen) ? chosen
      : all.at(-1)?.join(":") ?? "";
    root.querySelector("[data-no-entity]").hidden = Boolean(doc.entity);
    palette.replaceChildren(...[...fields].map(([name, text]) => {
      const here = on.has(name);
      const add = el("button", {type: "button", "data-key": `add:${name}`, "data-add": "",
                                disabled: here || !all.length ? "" : false},
        text, " ", el("code", {}, name),
        here ? el("span", {class: "muted"}, ` ✓ ${texts.placed}`) : null);
      add.addEventListener("click", () => addField(name, parsePlace(placeIn.value)));
      return el("li", {class: here ? "placed" : null, "data-field": name}, add);
    }));
    if (doc.entity && fieldsOf === doc.entity && !fields.size) {
      palette.append(el("li", {class: "muted"}, texts.no_fields));
    }
  }

  function tabBox(doc, tab, t, all) {
    const key = part => `tab-${t}:${part}`;
    const change = fn => edit(d => fn(d.tabs[t]));
    return el("li", {class: "form-tab", "data-tab": t, "data-pointer": `/tabs/${t}`},
      el("div", {class: "tab-head"},
        el("span", {class: "handle tab-handle", title: texts.drag, "aria-hidden": "true"}, "⠿"),
        el("strong", {}, texts.tab),
        ...["en", "zh"].map(l => labelled(texts[`label_${l}`],
          textInput(tab.label?.[l] || "", key(`label-${l}`),
                    value => change(x => setLabel(x, "label", l, value))),
          {"data-pointer": `/tabs/${t}/label${l === "en" ? "" : "/zh"}`})),
        el("span", {class: "moves"},
          button("←", key("up"), () => rebuild(d => {
            d.tabs.splice(t - 1, 0, ...d.tabs.splice(t, 1));
          }, t - 1 === 0 ? `tab-${t - 1}:down` : `tab-${t - 1}:up`),
                 {label: texts.tab_left, disabled: t === 0}),
          button("→", key("down"), () => rebuild(d => {
            d.tabs.splice(t + 1, 0, ...d.tabs.splice(t, 1));
          }, t + 2 === doc.tabs.length ? `tab-${t + 1}:up` : `tab-${t + 1}:down`),
                 {label: texts.tab_right, disabled: t === doc.tabs.length - 1}),
          button("×", key("remove"), () => removeTab(t), {label: texts.remove_tab}))),
      el("div", {"data-notes": ""}),
      sectionsBox(doc, t, all),
      button(texts.add_section, `add-section-${t}`, () => addSection(t)));
  }

  function sectionsBox(doc, t, all) {
    const box = el("div", {class: "tab-sections", "data-tab-sections": t,
                           "data-pointer": t < 0 ? "/sections" : `/tabs/${t}/sections`},
      ...(sectionsOf(doc, t) || []).map((section, s) => sectionBox(doc, section, [t, s], all)));
    Sortable.create(box, {
      ...dragging, handle: ".section-handle", draggable: ".form-section",
      group: {name: "form-sections", pull: Boolean(doc.tabs), put: Boolean(doc.tabs)},
      onEnd(event) {
        const to = Number(event.to.dataset.tabSections);
        if (event.from !== event.to || event.oldIndex !== event.newIndex) {
          moveSection([t, event.oldIndex], [to, event.newIndex]);
        }
      },
    });
    return box;
  }

  function sectionBox(doc, section, place, all) {
    const [t, s] = place;
    const key = part => `${keyOf(place)}:${part}`;
    const pointer = pointerOf(place);
    const change = fn => edit(d => fn(sectionAt(d, place)));
    const n = all.findIndex(p => p[0] === t && p[1] === s);
    const list = el("ol", {class: "section-fields", "data-section-fields": place.join(":"),
                           "data-empty": texts.empty_section},
      ...section.fields.map((name, i) => fieldRow(doc, name, place, i, section.fields.length,
                                                  all)));
    Sortable.create(list, {
      ...dragging, handle: ".handle", draggable: ".placed-field", ghostClass: "field-ghost",
      group: {name: "form-fields", pull: true, put: true},
      onAdd(event) {
        if (event.from !== palette) return;  // from another section: its onEnd moves it
        event.item.remove();
        addField(event.item.dataset.field, place, event.newIndex);
      },
      onEnd(event) {
        const to = parsePlace(event.to.dataset.sectionFields);
        if (event.from !== event.to || event.oldIndex !== event.newIndex) {
          moveField(event.item.dataset.field, place, to, event.newIndex);
        }
      },
    });
    const columns = choice([1, 2, 3, 4].map(c => [String(c), String(c)]),
      String(section.columns || 1), key("columns"),
      value => change(x => { x.columns = Number(value); }));
    return el("div", {class: "form-section", "data-section": place.join(":"),
                      "data-pointer": pointer},
      el("div", {class: "section-head"},
        el("span", {class: "handle section-handle", title: texts.drag, "aria-hidden": "true"},
           "⠿"),
        el("strong", {}, texts.section_n.replace("{n}", n + 1)),
        ...["en", "zh"].map(l => labelled(texts[`label_${l}`],
          textInput(section.label?.[l] || "", key(`label-${l}`),
                    value => change(x => setLabel(x, "label", l, value))),
          {"data-pointer": `${pointer}/label${l === "en" ? "" : "/zh"}`})),
        labelled(texts.columns, columns, {"data-pointer": `${pointer}/columns`,
                                          class: "columns"}),
        el("span", {class: "moves"},
          button("↑", key("up"), () => stepSection(doc, place, -1),
                 {label: texts.up, disabled: n === 0}),
          button("↓", key("down"), () => stepSection(doc, place, 1),
                 {label: texts.down, disabled: n === all.length - 1}),
          button("×", key("remove"), () => rebuild(d => {
            sectionsOf(d, t).splice(s, 1);
            pruneRules(d);
          }, n > 0 ? `${keyOf(all[n - 1])}:remove` : "add-tab"),
                 {label: texts.remove_section}))),
      el("div", {"data-notes": ""}),
      list);
  }

  function fieldRow(doc, name, place, i, count, all) {
    const key = part => `field:${name}:${part}`;
    const rules = doc.rules?.[name] || {};
    const shown = open.has(name);
    const moveTo = el("select", {"data-key": key("move"), "aria-label": texts.move_to},
      el("option", {value: ""}, `${texts.move_to}…`),
      ...all.map((p, n) => el("option", {value: p.join(":"),
                                         disabled: p.join(":") === place.join(":") ? "" : false},
                              sectionName(doc, p, n + 1))));
    moveTo.addEventListener("change", () => {
      if (!moveTo.value) return;
      const to = parsePlace(moveTo.value);
      rebuild(d => {
        const source = sectionAt(d, place).fields;
        source.splice(source.indexOf(name), 1);
        sectionAt(d, to).fields.push(name);
      }, key("move"));
    });
    const ruled = Object.keys(rules).length;
    const row = el("li", {class: "placed-field" + (fields.has(name) ? "" : " unknown"),
                          "data-field": name, "data-pointer": `/rules/${name}`},
      el("div", {class: "field-line"},
        el("span", {class: "handle", title: texts.drag, "aria-hidden": "true"}, "⠿"),
        el("span", {class: "field-title"}, fields.get(name) || name, " ", el("code", {}, name)),
        el("span", {class: "moves"},
          button("↑", key("up"), () => moveField(name, place, place, i - 1),
                 {label: texts.up, disabled: i === 0}),
          button("↓", key("down"), () => moveField(name, place, place, i + 1),
                 {label: texts.down, disabled: i === count - 1}),
          all.length > 1 ? moveTo : null,
          button(ruled ? `${texts.conditions} (${ruled})` : texts.conditions, key("rules"),
                 () => {
                   if (shown) open.delete(name);
                   else open.add(name);
                   ed.render(key("rules"));
                 }, {"aria-expanded": String(shown)}),
          button("×", key("remove"), () => removeField(name, place),
                 {label: texts.remove_field}))),
      el("div", {"data-notes": ""}));
    if (shown) {
      row.append(el("div", {class: "field-rules"}, ...FLAGS.map(flag => BlocksConditions.builder({
        entity: doc.entity, value: rules[flag], key: `rule:${name}:${flag}`,
        label: texts[flag], pointer: `/rules/${name}/${flag}`,
        onChange: value => edit(d => setRule(d, name, flag, value))}))));
    }
    return row;
  }

  // --- the preview -----------------------------------------------------------------------

  let previewTimer = null;
  let previewAsked = 0;
  let previewTab = 0;

  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(refreshPreview, 250);
  }

  /** Ask the server to draw the form as it stands, with what was typed into the preview
      (so its conditions can be tried), and show the latest answer. */
  async function refreshPreview() {
    const asked = ++previewAsked;
    const waits = (...lines) => {
      previewProblems.replaceChildren(...lines);
      previewProblems.hidden = !lines.length;
    };
    if (!ed.state.entity) {
      preview.replaceChildren();
      return waits(el("p", {}, texts.choose_entity));
    }
    const values = [...new FormData(preview)].filter(([, value]) => typeof value === "string");
    let answer;
    let html = null;
    try {
      const response = await fetch(root.dataset.previewUrl, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "text/html",
                  "X-CSRFToken": csrf},
        body: JSON.stringify({form: ed.state, values})});
      if (response.ok) html = await response.text();
      else answer = await response.json();
    } catch (error) {
      answer = {detail: error.message};
    }
    if (asked !== previewAsked) return;  // a newer preview is on its way
    if (html === null) {
      const errors = Object.entries(answer?.errors || {}).map(
        ([pointer, messages]) => el("li", {"data-preview-problem": pointer},
                                    `${pointer}: ${[].concat(messages).join(" ")}`));
      return waits(el("p", {}, texts.preview_waits),
                   errors.length ? el("ul", {class: "error problems"}, ...errors)
                     : el("p", {class: "error"}, answer?.detail || ""));
    }
    waits();
    const focused = preview.contains(document.activeElement) ? document.activeElement.id : null;
    // The form screen's own markup, drawn and escaped by its Jinja templates.
    preview.innerHTML = html;
    const tabs = preview.querySelectorAll("[role=tab]");
    if (tabs.length) showTab(tabs[Math.min(previewTab, tabs.length - 1)]);
    if (focused) document.getElementById(focused)?.focus();
  }

  /** Show one tab of the preview, as the form screen does. */
  function showTab(tab) {
    for (const [i, other] of preview.querySelectorAll("[role=tab]").entries()) {
      const on = other === tab;
      if (on) previewTab = i;
      other.setAttribute("aria-selected", String(on));
      other.tabIndex = on ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !on;
    }
  }

  // --- wiring (once the document is loaded) ------------------------------------------------

  function wire() {
    entitySelect.addEventListener("change", async () => {
      const entity = entitySelect.value;
      await loadFields(entity);
      open.clear();
      rebuild(doc => {
        doc.entity = entity;
        for (const place of places(doc)) sectionAt(doc, place).fields = [];
        delete doc.rules;
      }, "entity");
    });
    defaultBox.addEventListener("change", () => edit(doc => {
      if (defaultBox.checked) doc.default = true;
      else delete doc.default;
    }));
    Sortable.create(palette, {...dragging, sort: false, filter: ".placed",
                              group: {name: "form-fields", pull: "clone", put: false}});
    preview.addEventListener("submit", event => event.preventDefault());
    preview.addEventListener("change", schedulePreview);
    preview.addEventListener("click", event => {
      const tab = event.target.closest("[role=tab]");
      if (tab) showTab(tab);
    });
  }
})();
