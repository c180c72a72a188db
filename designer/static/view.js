/* The view editor (designer/view.html), on the shared editor (editor.js): the columns a
   list shows, its default filter, sort and page size, and its kanban board; its lists of
   fields are the ones it shares with the dashboard editor (fieldlists.js). */
"use strict";

(() => {
  const root = document.querySelector("[data-view-editor]");
  const {call, el, labelled, choice, setOrDrop} = BlocksDesigner;
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
    ready() {
      wire();
      schedulePreview();
    },
    render,
    changed: schedulePreview,
  });
  const edit = change => ed.edit(change);
  const rebuild = (change, focus) => ed.rebuild(change, focus);

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
