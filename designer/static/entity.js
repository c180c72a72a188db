/* The entity editor (designer/entity.html), on the shared editor (editor.js): fields from
   a palette of every type, options, references, defaults and validation rules. Renaming a
   published field keeps its column (x-renamed-from). */
"use strict";

(() => {
  const {el, labelled, checkbox, textInput, pick, setText, setLabel} = BlocksDesigner;
  const root = document.querySelector("[data-entity-editor]");
  const texts = JSON.parse(document.querySelector("template[data-texts]").innerHTML);
  const types = new Map(texts.types.map(([name, label, json]) => [name, {label, json}]));
  const list = root.querySelector("[data-fields]");
  const rules = root.querySelector("[data-rules]");
  // Field names the published entity has: renaming one renames its column.
  const published = new Set(JSON.parse(root.dataset.published));
  const OPTION_TYPES = new Set(["select", "multi_select"]);
  // Keywords that belong to a field's type, dropped when the type changes.
  const TYPE_KEYWORDS = [
    "type", "format", "enum", "items", "x-options", "x-ref", "x-on-delete", "x-formula",
    "x-scale", "x-currency", "x-currency-field", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern", "minItems",
    "maxItems", "uniqueItems"];

  let entities = [];                     // reference targets
  let slug = null;                       // the meta-schema's pattern of a field name

  const ed = BlocksEditor.open({
    root, kind: "entity", name: root.dataset.name || null,
    blank: () => ({kind: "entity", name: "", label: {}, type: "object", properties: {}}),
    async ready(_, schema) {
      ({items: entities} = await BlocksDesigner.api("/entity"));
      slug = schema.$defs.slug.pattern;
      for (const input of root.querySelectorAll("[data-label]")) {
        input.maxLength = schema.$defs.labels.additionalProperties.maxLength;
      }
      wire();
    },
    render,
    targetOf,
  });
  const edit = change => ed.edit(change);
  const rebuild = (change, focus) => ed.rebuild(change, focus);

  const names = () => Object.keys(ed.state.properties);

  /** Rename or (`to` null) forget a field wherever the document names it. */
  function renameEverywhere(doc, from, to) {
    const swap = list => list.flatMap(n => n === from ? (to ? [to] : []) : [n]);
    if (doc.required) doc.required = swap(doc.required);
    if (!doc.required?.length) delete doc.required;
    if (doc["x-search"]) doc["x-search"] = swap(doc["x-search"]);
    for (const key of ["x-indexes", "x-unique"]) {
      if (doc[key]) doc[key] = doc[key].map(swap).filter(g => g.length);
    }
    for (const rule of doc["x-validations"] || []) {
      if (rule.fields) rule.fields = swap(rule.fields);
    }
    for (const holder of [doc, ...Object.values(doc.properties)]) {
      for (const key of ["x-title-field", "x-currency-field"]) {
        if (holder[key] !== from) continue;
        if (to) holder[key] = to;
        else delete holder[key];
      }
    }
  }

  function renameField(doc, from, to) {
    const field = doc.properties[from];
    // The name the published column has, so that publishing renames it, not drops it.
    const column = field["x-renamed-from"] || (published.has(from) ? from : null);
    if (column && column !== to) field["x-renamed-from"] = column;
    else delete field["x-renamed-from"];
    doc.properties = Object.fromEntries(Object.entries(doc.properties).map(
      ([n, f]) => [n === from ? to : n, f]));
    renameEverywhere(doc, from, to);
  }

  function placeField(doc, index, fieldName, field) {
    const entries = Object.entries(doc.properties).filter(([n]) => n !== fieldName);
    entries.splice(index, 0, [fieldName, field]);
    doc.properties = Object.fromEntries(entries);
  }

  function addField(type, index = names().length) {
    let n = 1;
    while (Object.hasOwn(ed.state.properties, `${type}_${n}`)) n++;
    const fresh = {...(types.get(type).json ? {type: types.get(type).json} : {}), "x-field": type};
    if (type === "select") fresh.enum = [];
    rebuild(doc => placeField(doc, index, `${type}_${n}`, fresh), `${index}:name`);
    list.querySelector(`[data-key="${index}:name"]`).select();
  }

  /** Move field `from` to `to`; a move by button keeps the focus on its button. */
  function move(from, to, button = null) {
    const moved = names()[from];
    rebuild(doc => placeField(doc, to, moved, doc.properties[moved]),
            button && `${to}:${to === 0 ? "down" : to === names().length - 1 ? "up" : button}`);
  }

  /** A field's type: x-field, else what the engine infers from its JSON shape
      (fieldtypes.infer_field_type). */
  function kindOf(field) {
    if (field["x-field"]) return field["x-field"];
    const formats = {date: "date", "date-time": "datetime", email: "email", uri: "url"};
    switch (field.type) {
      case "string": return "enum" in field ? "select" : formats[field.format] || "text";
      case "integer": return "integer";
      case "number": return "decimal";
      case "boolean": return "boolean";
      case "array": return field.items?.enum ? "multi_select" : "tags";
      default: return "json";
    }
  }

  /** A select's options as the editor shows them: value, labels and colour. */
  function optionsOf(field) {
    const kind = kindOf(field);
    if (!OPTION_TYPES.has(kind)) return [];
    const decorated = field["x-options"] || {};
    const values = (kind === "select" ? field.enum : field.items?.enum) || Object.keys(decorated);
    return values.map(value => ({value, label: decorated[value]?.label || {},
                                 color: decorated[value]?.color || ""}));
  }

  /** Write options back: the values as the enum (a select with none fails the
      meta-schema, which then says so next to it), labels and colours as x-options. */
  function setOptions(field, kind, options) {
    const values = options.map(o => o.value);
    if (kind === "select") field.enum = values;
    else if (values.length) field.items = {...field.items, type: "string", enum: values};
    else delete field.items;
    const decorated = options.filter(o => Object.keys(o.label).length || o.color);
    if (decorated.length) {
      field["x-options"] = Object.fromEntries(decorated.map(({value, label, color}) => [value, {
        ...(Object.keys(label).length ? {label} : {}), ...(color ? {color} : {})}]));
    } else {
      delete field["x-options"];
    }
  }

  /** Give a field another type: its type's keywords go, the rest (labels, flags) stay. */
  function retype(field, kind) {
    const options = optionsOf(field);
    const kept = Object.entries(field).filter(([key]) => !TYPE_KEYWORDS.includes(key)
                                                          && key !== "x-field");
    for (const key of Object.keys(field)) delete field[key];
    Object.assign(field, types.get(kind).json ? {type: types.get(kind).json} : {},
                  {"x-field": kind}, Object.fromEntries(kept));
    if (kind === "formula") delete field["x-default"];
    if (OPTION_TYPES.has(kind)) setOptions(field, kind, options);
  }

  /** A rule (formula, default, assertion) as text to edit; a JSON tree shows as JSON. */
  const ruleText = rule => rule === undefined ? "" : typeof rule === "string" ? rule
    : JSON.stringify(rule);

  function ruleValue(text) {
    if (text.trim().startsWith("{")) {
      try {
        return JSON.parse(text);
      } catch {
        // not a tree: the rule language's text, which the API checks
      }
    }
    return text.trim();
  }

  function setRule(holder, key, text) {
    if (text.trim()) holder[key] = ruleValue(text);
    else delete holder[key];
  }

  // --- what is shown ------------------------------------------------------------------

  /** Draw the fields and rules (the editor puts the focus back). */
  function render() {
    const all = names();
    list.replaceChildren(...all.map((n, i) => fieldRow(n, ed.state.properties[n], i, all.length)));
    root.querySelector("[data-no-fields]").hidden = all.length > 0;
    renderRules();
  }

  function note(target, text) {
    target.append(el("p", {class: "field-error", "data-problem": ""}, text));
  }

  function fieldRow(fieldName, field, i, count) {
    const kind = kindOf(field);
    const key = part => `${i}:${part}`;
    const change = fn => edit(doc => fn(doc.properties[names()[i]], doc));
    const row = el("li", {class: "field", "data-field": fieldName});
    const renamed = el("p", {class: "muted renamed", "data-renamed": ""});
    showRename(renamed, field);

    const nameBox = labelled(texts.name, textInput(fieldName, key("name"), (value, input) => {
      const from = names()[i];
      const to = value.trim();
      if (to === from) return;
      const why = !new RegExp(`^(?:${slug})$`).test(to) ? texts.bad_name
        : Object.hasOwn(ed.state.properties, to) ? texts.taken : null;
      if (why) {
        input.value = from;
        return note(nameBox, why);
      }
      edit(doc => renameField(doc, from, to));
      row.dataset.field = to;
      showRename(renamed, ed.state.properties[to]);
      renderRules();
    }, {pattern: slug, required: "", spellcheck: "false"}), {"data-part": "x-renamed-from"});

    const typeSelect = el("select", {"data-key": key("type")},
      ...[...types].map(([type, {label}]) => el("option", {value: type}, label)),
      types.has(kind) ? null : el("option", {value: kind}, kind));
    typeSelect.value = kind;
    typeSelect.addEventListener("change", () => rebuild(
      doc => retype(doc.properties[names()[i]], typeSelect.value), key("type")));

    const button = (part, text, label, onClick, disabled = false) => {
      const b = el("button", {type: "button", "data-key": key(part), "aria-label": label,
                              title: label, disabled: disabled ? "" : false}, text);
      b.addEventListener("click", onClick);
      return b;
    };
    const [requiredBox, required] = checkbox(
      texts.required, (ed.state.required || []).includes(fieldName), key("required"));
    required.addEventListener("change", () => change((_, doc) => {
      const chosen = (doc.required || []).filter(n => n !== names()[i]);
      if (required.checked) chosen.push(names()[i]);
      if (chosen.length) doc.required = chosen;
      else delete doc.required;
    }));
    const [uniqueBox, unique] = checkbox(texts.unique, field["x-unique"], key("unique"),
                                         "x-unique");
    unique.addEventListener("change", () => change(f => {
      if (unique.checked) f["x-unique"] = true;
      else delete f["x-unique"];
    }));

    row.append(
      el("div", {class: "field-head"},
        el("span", {class: "handle", title: texts.drag, "aria-hidden": "true"}, "⠿"),
        nameBox, labelled(texts.type, typeSelect, {"data-part": "type x-field"}),
        el("span", {class: "moves"},
          button("up", "↑", texts.up, () => move(i, i - 1, "up"), i === 0),
          button("down", "↓", texts.down, () => move(i, i + 1, "down"), i === count - 1),
          button("remove", texts.remove, texts.remove, () => removeField(i)))),
      renamed,
      el("div", {"data-notes": ""}),
      el("div", {class: "field-body"},
        ...["en", "zh"].map(lang => labelled(texts[`label_${lang}`],
          textInput(field["x-label"]?.[lang] || "", key(`label-${lang}`),
                    value => change(f => setLabel(f, "x-label", lang, value))),
          {"data-part": "x-label"})),
        requiredBox, uniqueBox,
        kind === "formula"
          ? labelled(texts.formula, textInput(ruleText(field["x-formula"]), key("formula"),
              value => change(f => setRule(f, "x-formula", value))),
              {"data-part": "x-formula", class: "wide"})
          : labelled(texts.default, textInput(ruleText(field["x-default"]), key("default"),
              value => change(f => setRule(f, "x-default", value))), {"data-part": "x-default"}),
        kind === "reference" ? referenceBox(field, key, change) : null,
        OPTION_TYPES.has(kind) ? optionsBox(field, kind, i, key) : null));
    return row;
  }

  function showRename(holder, field) {
    holder.textContent = field["x-renamed-from"]
      ? texts.renamed.replace("{name}", field["x-renamed-from"]) : "";
    holder.hidden = !field["x-renamed-from"];
  }

  function removeField(i) {
    const all = names();
    const next = all.length === 1 ? null : `${Math.min(i, all.length - 2)}:name`;
    rebuild(doc => {
      delete doc.properties[all[i]];
      renameEverywhere(doc, all[i], null);
    }, next);
  }

  function referenceBox(field, key, change) {
    const targets = entities.map(e => e.name);
    if (field["x-ref"] && !targets.includes(field["x-ref"])) targets.push(field["x-ref"]);
    const select = el("select", {"data-key": key("ref")}, el("option", {value: ""}, texts.choose),
      ...targets.map(target => el("option", {value: target}, pick(
        entities.find(e => e.name === target)?.label, target))));
    select.value = field["x-ref"] || "";
    select.addEventListener("change", () => change(f => {
      if (select.value) f["x-ref"] = select.value;
      else delete f["x-ref"];
    }));
    return labelled(texts.ref, select, {"data-part": "x-ref x-on-delete"});
  }

  function optionsBox(field, kind, i, key) {
    const options = optionsOf(field);
    /** Change field i's options: a copy of them is changed, then written back. */
    const update = (fn, focus) => {
      const change = doc => {
        const f = doc.properties[names()[i]];
        const current = optionsOf(f);
        fn(current);
        setOptions(f, kind, current);
      };
      if (focus) rebuild(change, focus);
      else edit(change);
    };
    const rows = options.map((option, j) => {
      const optionKey = part => key(`option-${j}-${part}`);
      const swatch = el("span", {class: "swatch", "aria-hidden": "true"});
      swatch.style.background = option.color;
      const colour = el("select", {"data-key": optionKey("colour")},
        el("option", {value: ""}, texts.no_colour),
        ...texts.colours.map(([value, label]) => el("option", {value}, label)),
        option.color && !texts.colours.some(([value]) => value === option.color)
          ? el("option", {value: option.color}, option.color) : null);
      colour.value = option.color;
      colour.addEventListener("change", () => {
        swatch.style.background = colour.value;
        update(current => { current[j].color = colour.value; });
      });
      const remove = el("button", {type: "button", "data-key": optionKey("remove")}, texts.remove);
      remove.addEventListener("click", () => update(current => current.splice(j, 1),
                                                    key("add-option")));
      const item = el("li", {class: "option"},
        labelled(texts.value, textInput(option.value, optionKey("value"), (value, input) => {
          const values = optionsOf(ed.state.properties[names()[i]]).map(o => o.value);
          if (!value.trim() || values.some((v, k) => k !== j && v === value.trim())) {
            input.value = values[j];
            return note(item, texts.bad_value);
          }
          update(current => { current[j].value = value.trim(); });
        })),
        ...["en", "zh"].map(lang => labelled(texts[`label_${lang}`],
          textInput(option.label[lang] || "", optionKey(`label-${lang}`),
                    value => update(current => setText(current[j].label, lang, value))))),
        labelled(texts.colour, colour), swatch, remove);
      return item;
    });
    const add = el("button", {type: "button", "data-key": key("add-option")}, texts.add_option);
    add.addEventListener("click", () => {
      const values = optionsOf(ed.state.properties[names()[i]]).map(o => o.value);
      let n = values.length + 1;
      while (values.includes(`option_${n}`)) n++;
      // each new option its own colour, from the palette's second (grey is for "other")
      const color = texts.colours[(values.length + 1) % texts.colours.length][0];
      update(current => current.push({value: `option_${n}`, label: {}, color}),
             key(`option-${values.length}-value`));
    });
    return el("fieldset", {class: "options", "data-part": "enum items x-options"},
      el("legend", {}, texts.options), el("ol", {}, ...rows), add);
  }

  function renderRules() {
    const all = names();
    const change = (i, fn) => edit(doc => fn(doc["x-validations"][i]));
    rules.replaceChildren(...(ed.state["x-validations"] || []).map((rule, i) => {
      const key = part => `rule-${i}:${part}`;
      const remove = el("button", {type: "button", "data-key": key("remove")}, texts.remove);
      remove.addEventListener("click", () => rebuild(doc => {
        doc["x-validations"].splice(i, 1);
        if (!doc["x-validations"].length) delete doc["x-validations"];
      }, "add-rule"));
      return el("li", {class: "rule", "data-pointer": `/x-validations/${i}`},
        el("div", {"data-notes": ""}),
        BlocksConditions.builder({
          entity: ed.state.name, value: rule.assert, key: key("assert"), saving: true,
          label: texts.assert, pointer: `/x-validations/${i}/assert`,
          // the fields as edited; the rules, half-written as they may be, aside
          document: () => ({...ed.state, "x-validations": undefined}),
          onChange: value => change(i, r => { r.assert = value ?? ""; })}),
        ...["en", "zh"].map(lang => labelled(texts[`message_${lang}`],
          textInput(rule.message?.[lang] || "", key(`message-${lang}`),
                    value => change(i, r => setLabel(r, "message", lang, value))),
          {"data-pointer": `/x-validations/${i}/message${lang === "en" ? "" : "/zh"}`})),
        el("fieldset", {"data-pointer": `/x-validations/${i}/fields`},
          el("legend", {}, texts.rule_fields),
          ...all.map(fieldName => {
            const [box, input] = checkbox(fieldName, (rule.fields || []).includes(fieldName),
                                          key(`field-${fieldName}`));
            input.addEventListener("change", () => change(i, r => {
              const chosen = (r.fields || []).filter(n => n !== fieldName);
              if (input.checked) chosen.push(fieldName);
              if (chosen.length) r.fields = chosen;
              else delete r.fields;
            }));
            return box;
          })),
        remove);
    }));
  }

  // --- problems from the API ----------------------------------------------------------

  /** The element a problem under /properties/<field> concerns: the field's control for
      the keyword it names, else its row (the editor finds the rest by data-pointer). */
  function targetOf(pointer) {
    const [, top, field, part] = pointer.split("/");
    if (top !== "properties" || field === undefined) return null;
    const row = list.children[names().indexOf(field)];
    if (!row) return null;
    return (part && row.querySelector(`[data-part~="${CSS.escape(part)}"]`)) || row;
  }

  // --- wiring (once the document is loaded) -----------------------------------------

  function wire() {
    const palette = root.querySelector("[data-palette]");
    palette.addEventListener("click", event => {
      const item = event.target.closest("[data-type]");
      if (item) addField(item.dataset.type);
    });
    root.querySelector("[data-add-rule]").addEventListener("click", () => {
      const count = (ed.state["x-validations"] || []).length;
      rebuild(doc => {
        (doc["x-validations"] ||= []).push({assert: "", message: {}});
      }, `rule-${count}:assert:g:add`);
    });
    // Drag a type from the palette into the list (a copy stays), or a field by its handle;
    // SortableJS's pointer-event mode works with a mouse, a pen and a finger alike.
    const dragging = {forceFallback: true, fallbackTolerance: 4, delay: 150,
                      delayOnTouchOnly: true};
    Sortable.create(palette, {...dragging, sort: false,
                              group: {name: "fields", pull: "clone", put: false}});
    Sortable.create(list, {
      ...dragging, handle: ".handle", draggable: ".field", ghostClass: "field-ghost",
      group: {name: "fields", pull: false, put: true},
      onAdd(event) {
        event.item.remove();
        addField(event.item.dataset.type, event.newIndex);
      },
      onEnd(event) {
        if (event.from === event.to && event.oldIndex !== event.newIndex) {
          move(event.oldIndex, event.newIndex);
        }
      },
    });
  }
})();
