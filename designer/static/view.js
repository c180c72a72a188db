/* The view editor (designer/view.html), on the shared editor (editor.js): the columns a
   list shows, its default filter, sort and page size, and its kanban board.

   First, the lists of fields it shares with the dashboard editor (BlocksFieldLists): an
   ordered choice of fields (columns) and a list of sort keys. Every drag has a keyboard
   way too: a select and a button to add, arrows to move, a button to remove. */
"use strict";

const BlocksFieldLists = (() => {
  const {el, button, choice} = BlocksDesigner;
  const texts = JSON.parse(document.querySelector("template[data-field-texts]").innerHTML);
  // SortableJS in its pointer-event mode works with a mouse, a pen and a finger alike.
  const DRAGGING = {forceFallback: true, fallbackTolerance: 4, delay: 150,
                    delayOnTouchOnly: true};

  /** A copy of `list` with item `from` moved to `to`. */
  function moved(list, from, to) {
    const copy = [...list];
    copy.splice(to, 0, ...copy.splice(from, 1));
    return copy;
  }

  /** A row's up, down and remove buttons; `change(list, focus)` gets the new list and the
      data-key to focus once it is drawn (the moved row's button, while it can move on). */
  function rowButtons(key, i, list, change) {
    const last = list.length - 1;
    const moveTo = (to, part) => change(moved(list, i, to),
                                        `${key}:${to}:${to === 0 ? "down" : to === last ? "up" : part}`);
    return el("span", {class: "moves"},
      button("↑", `${key}:${i}:up`, () => moveTo(i - 1, "up"), {label: texts.up, disabled: i === 0}),
      button("↓", `${key}:${i}:down`, () => moveTo(i + 1, "down"),
             {label: texts.down, disabled: i === last}),
      button("×", `${key}:${i}:remove`, () => change(list.filter((_, j) => j !== i),
        last === 0 ? `${key}:add` : `${key}:${Math.min(i, last - 1)}:remove`),
             {label: texts.remove}));
  }

  const handle = () => el("span", {class: "handle", title: texts.drag, "aria-hidden": "true"},
                          "⠿");

  /** Reorder `list` by dragging its rows by their handle. */
  function sortable(list, key, items, change, extra = {}) {
    Sortable.create(list, {
      ...DRAGGING, handle: ".handle", draggable: "li", ghostClass: "field-ghost",
      group: {name: key, pull: false, put: false}, ...extra,
      onEnd(event) {
        if (event.from === event.to && event.oldIndex !== event.newIndex) {
          change(moved(items, event.oldIndex, event.newIndex));
        }
      },
    });
  }

  /**
   * An ordered choice of fields: the chosen ones in order, and the others to drag in
   * (or click) from a palette, or to add with a select.
   *
   * options.fields     [{name, label}]: what may be chosen
   * options.chosen     the names chosen, in order
   * options.key        a data-key prefix for its controls
   * options.max        how many may be chosen
   * options.pointer    the JSON Pointer of the list (each row shows <pointer>/<i>)
   * options.label      the chosen list's accessible name
   * options.onChange(names, focus)  the new choice, and the data-key to focus after the
   *                    redraw
   */
  function picker({fields, chosen, key, max, pointer, label, onChange}) {
    const labelOf = name => fields.find(f => f.name === name)?.label || name;
    const rest = fields.filter(f => !chosen.includes(f.name));
    const full = chosen.length >= max;
    const add = (name, at = chosen.length) => {
      const next = [...chosen];
      next.splice(at, 0, name);
      onChange(next, `${key}:add`);
    };
    const palette = el("ul", {class: "palette", "aria-label": texts.fields},
      ...rest.map(f => el("li", {"data-name": f.name},
        button(f.label, `${key}:palette-${f.name}`, () => add(f.name), {disabled: full}))));
    const list = el("ol", {class: "picked", "aria-label": label},
      ...chosen.map((name, i) => el("li", {class: "picked-item", "data-name": name,
                                           "data-pointer": `${pointer}/${i}`},
        handle(), el("span", {class: "picked-label"}, labelOf(name)),
        rowButtons(key, i, chosen, onChange))));
    const select = choice([["", texts.choose], ...rest.map(f => [f.name, f.label])], "",
                          `${key}:add-select`, () => {}, {"aria-label": texts.add_field});
    const addButton = button(texts.add, `${key}:add`, () => {
      if (select.value) add(select.value);
    }, {disabled: full || !rest.length});
    sortable(list, key, chosen, onChange, {
      group: {name: key, pull: false, put: !full},
      onAdd(event) {
        event.item.remove();
        add(event.item.dataset.name, event.newIndex);
      },
    });
    Sortable.create(palette, {...DRAGGING, sort: false,
                              group: {name: key, pull: "clone", put: false}});
    return el("div", {class: "field-picker", "data-picker": key},
      el("div", {class: "picker-palette"}, el("h3", {}, texts.fields), palette),
      el("div", {},
        el("h3", {}, texts.chosen),
        chosen.length ? null : el("p", {class: "muted"}, texts.none),
        list,
        el("div", {class: "add-row"}, select, addButton)));
  }

  /**
   * Sort keys (`name` ascending, `-name` descending), each row a field and a direction.
   * Options as picker()'s, `keys` instead of `chosen`.
   */
  function sortKeys({fields, keys, key, max, pointer, onChange}) {
    const options = name => [...fields.map(f => [f.name, f.label]),
                             ...(fields.some(f => f.name === name) ? [] : [[name, name]])];
    const list = el("ol", {class: "picked sort-keys"}, ...keys.map((sortKey, i) => {
      const descending = sortKey.startsWith("-");
      const name = descending ? sortKey.slice(1) : sortKey;
      const set = (value, part) => onChange(keys.map((k, j) => j === i ? value : k),
                                            `${key}:${i}:${part}`);
      return el("li", {class: "picked-item", "data-pointer": `${pointer}/${i}`},
        handle(),
        choice(options(name), name, `${key}:${i}:field`,
               value => set(descending ? `-${value}` : value, "field"),
               {"aria-label": texts.key}),
        choice([["asc", texts.ascending], ["desc", texts.descending]],
               descending ? "desc" : "asc", `${key}:${i}:direction`,
               value => set(value === "desc" ? `-${name}` : name, "direction"),
               {"aria-label": texts.direction}),
        rowButtons(key, i, keys, onChange));
    }));
    sortable(list, key, keys, onChange);
    const unused = fields.find(f => !keys.some(k => k.replace(/^-/, "") === f.name));
    return el("div", {class: "sort-editor"}, list,
      button(texts.add_key, `${key}:add`, () => onChange([...keys, unused.name],
                                                         `${key}:${keys.length}:field`),
             {disabled: keys.length >= max || !unused}));
  }

  return {picker, sortKeys};
})();

(() => {
  const root = document.querySelector("[data-view-editor]");
  if (!root) return;  // the dashboard editor, which uses the lists alone
  const {call, el, labelled, choice} = BlocksDesigner;
  const texts = JSON.parse(document.querySelector("template[data-texts]").innerHTML);
  const fields = JSON.parse(document.querySelector("script[data-fields]").textContent);
  const inputs = {entity: root.querySelector("[data-entity]"),
                  pageSize: root.querySelector("[data-page-size]"),
                  default: root.querySelector("[data-default]"),
                  description: root.querySelector("[data-description]")};
  let previewTimer = null;
  let previewing = 0;  // the latest preview asked for; an older answer is dropped

  const ed = BlocksEditor.open({
    root, kind: "view", name: root.dataset.name || null,
    blank: () => ({kind: "view", name: "", label: {}, entity: "", columns: []}),
    ready: wire,
    render,
  });
  /** An edit that needs no redraw; the preview follows. */
  const edit = change => {
    ed.edit(change);
    schedulePreview();
  };
  const rebuild = (change, focus) => ed.rebuild(change, focus);

  /** Set `key` of `holder` to `value`, or drop it when `value` is empty. */
  function setOrDrop(holder, key, value, empty = v => v === undefined || v === "" ||
                                                       (Array.isArray(v) && !v.length)) {
    if (empty(value)) delete holder[key];
    else holder[key] = value;
  }

  function render() {
    const doc = ed.state;
    const own = fields[doc.entity] || [];
    inputs.entity.value = doc.entity;
    inputs.pageSize.value = doc.page_size ?? "";
    inputs.default.checked = Boolean(doc.default);
    inputs.description.value = doc.description || "";
    root.querySelector("[data-no-entity]").hidden = Boolean(doc.entity);
    root.querySelector("[data-view-parts]").hidden = !doc.entity;
    if (!doc.entity) return;

    root.querySelector("[data-columns]").replaceChildren(BlocksFieldLists.picker({
      fields: own, chosen: doc.columns, key: "columns", max: 30, pointer: "/columns",
      label: root.querySelector("#columns-title").textContent,
      onChange: (names, focus) => rebuild(d => { d.columns = names; }, focus)}));
    root.querySelector("[data-filter-box]").replaceChildren(BlocksConditions.builder({
      entity: doc.entity, value: doc.filter, key: "filter", pointer: "/filter",
      label: texts.filter, onChange: value => edit(d => setOrDrop(d, "filter", value))}));
    root.querySelector("[data-sort]").replaceChildren(BlocksFieldLists.sortKeys({
      fields: own, keys: doc.sort || [], key: "sort", max: 5, pointer: "/sort",
      onChange: (keys, focus) => rebuild(d => setOrDrop(d, "sort", keys), focus)}));
    root.querySelector("[data-kanban]").replaceChildren(...kanban(doc, own));
    schedulePreview();
  }

  /** The board's settings: one column per state or select option, the fields on each
      card and the number totalled under each column. */
  function kanban(doc, own) {
    const groups = [...own.filter(f => f.type === "state").map(f => ["state", texts.state]),
                    ...own.filter(f => f.type === "select").map(f => [f.name, f.label])];
    const board = doc.kanban;
    const [box, on] = BlocksDesigner.checkbox(texts.kanban, Boolean(board), "kanban:on");
    on.disabled = !board && !groups.length;
    on.addEventListener("change", () => rebuild(d => {
      if (on.checked) d.kanban = {group_by: groups[0][0]};
      else delete d.kanban;
    }, "kanban:on"));
    if (!board) return [box, groups.length ? null : el("p", {class: "muted"}, texts.no_groups)];
    const change = (fn, focus) => rebuild(d => fn(d.kanban), focus);
    const numbers = own.filter(f => f.number);
    return [
      box,
      labelled(texts.group_by, choice(
        [...groups, ...(groups.some(([g]) => g === board.group_by) ? []
                        : [[board.group_by, board.group_by]])],
        board.group_by, "kanban:group", value => change(k => { k.group_by = value; },
                                                        "kanban:group")),
        {"data-pointer": "/kanban/group_by"}),
      el("div", {"data-pointer": "/kanban/fields"},
        el("h3", {}, texts.card_fields), el("div", {"data-notes": ""}),
        BlocksFieldLists.picker({
          fields: own, chosen: board.fields || [], key: "kanban-fields", max: 6,
          pointer: "/kanban/fields", label: texts.card_fields,
          onChange: (names, focus) => change(k => setOrDrop(k, "fields", names), focus)})),
      labelled(texts.sum, choice(
        [["", texts.no_sum], ...numbers.map(f => [f.name, f.label])], board.sum ?? "",
        "kanban:sum", value => change(k => setOrDrop(k, "sum", value), "kanban:sum")),
        {"data-pointer": "/kanban/sum"}),
    ];
  }

  // --- the preview: the view's first records, computed as a dashboard's table card -------

  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(preview, 300);
  }

  async function preview() {
    const doc = ed.state;
    const box = root.querySelector("[data-preview-box]");
    if (!doc.entity || !doc.columns.length) return box.replaceChildren();
    const card = {type: "table", entity: doc.entity, title: {en: texts.first_rows},
                  columns: doc.columns.slice(0, 10), limit: 5};
    if (doc.filter !== undefined) card.filter = doc.filter;
    if (doc.sort?.length) card.sort = doc.sort.slice(0, 3);
    const asked = ++previewing;
    try {
      const answer = await call(root.dataset.preview, {method: "POST",
                                                       body: JSON.stringify({card, index: 0})});
      // The server's rendering of the card, its text escaped as on the dashboard screen.
      if (asked === previewing) box.innerHTML = answer.html;
    } catch (error) {
      if (asked !== previewing) return;
      const messages = Object.values(error.problem?.errors || {}).flat();
      box.replaceChildren(el("p", {class: "muted", "data-preview-problem": ""},
                             messages.join(" ") || error.message));
    }
  }

  // --- the settings drawn once, in the page itself ---------------------------------

  function wire() {
    inputs.entity.addEventListener("change", () => rebuild(doc => {
      doc.entity = inputs.entity.value;
      doc.columns = [];
      for (const key of ["filter", "sort", "kanban"]) delete doc[key];
    }, "entity"));
    inputs.pageSize.addEventListener("change", () => edit(doc => setOrDrop(
      doc, "page_size", inputs.pageSize.value === "" ? "" : Number(inputs.pageSize.value))));
    inputs.default.addEventListener("change", () => edit(doc => setOrDrop(
      doc, "default", inputs.default.checked || "")));
    inputs.description.addEventListener("change", () => edit(doc => setOrDrop(
      doc, "description", inputs.description.value.trim())));
  }
})();
