/* The dashboard editor (designer/dashboard.html), on the shared editor (editor.js): the
   cards laid out as the dashboard shows them, each previewed with the published records;
   the chosen card's settings below them (the inspector).

   A card moves by dragging its handle and widens by dragging its right edge, or by its
   buttons. Its preview is the dashboard screen's own rendering of it, computed by
   POST /designer/dashboard/preview from the unsaved card and drawn with the screen's chart
   script (window.blocksDrawCharts). */
"use strict";

(() => {
  const {call, el, labelled, choice, button, textInput, pick, setLabel, setOrDrop} =
    BlocksDesigner;
  const root = document.querySelector("[data-dashboard-editor]");
  const texts = JSON.parse(document.querySelector("template[data-texts]").innerHTML);
  const fields = JSON.parse(document.querySelector("script[data-fields]").textContent);
  const types = new Map(texts.types);
  const CHARTS = ["bar", "line", "pie"];
  const DATES = ["date", "datetime"];
  const grid = root.querySelector("[data-cards]");
  const inspector = root.querySelector("[data-inspector]");
  const description = root.querySelector("[data-description]");
  const previews = new Map();  // JSON of [index, card] → the answer's promise
  const timers = new Map();    // card index → its pending preview
  let selected = 0;            // the card the inspector shows

  const ed = BlocksEditor.open({
    root, kind: "dashboard", name: root.dataset.name || null,
    blank: () => ({kind: "dashboard", name: "", label: {}, cards: []}),
    ready: wire,
    render,
  });
  const rebuild = (change, focus) => ed.rebuild(change, focus);

  const entityLabel = name => pick(texts.entities.find(e => e.name === name)?.label, name);
  const fieldsOf = card => fields[card.entity] || [];
  const cardTitle = card => pick(card.title, `${types.get(card.type)} · ${entityLabel(card.entity)}`);

  /** Change card i with no redraw but its tile's title and preview. */
  function editCard(i, change) {
    ed.edit(doc => change(doc.cards[i]));
    const tile = grid.children[i];
    tile.querySelector("[data-tile-title]").textContent = cardTitle(ed.state.cards[i]);
    schedulePreview(i);
  }

  // --- what a card needs as its type and entity change ------------------------------

  function defaultGroup(card) {
    const own = fieldsOf(card);
    return (own.find(f => f.type === "select") || own.find(f => f.type !== "state") || {}).name
      || "";
  }

  /** A card of another type: what only the old type used goes, what the new one needs
      comes, with a first guess the designer changes. */
  function retype(card, type) {
    card.type = type;
    if (CHARTS.includes(type)) card.group_by ||= defaultGroup(card);
    else delete card.group_by;
    if (type === "table") {
      card.columns ||= fieldsOf(card).slice(0, 3).map(f => f.name);
      delete card.metric;
    } else {
      for (const key of ["columns", "sort", "limit"]) delete card[key];
    }
  }

  function newCard(type) {
    const card = {type, entity: texts.entities[0]?.name || ""};
    retype(card, type);
    return card;
  }

  // --- what is shown -------------------------------------------------------------------

  function render() {
    const doc = ed.state;
    description.value = doc.description || "";
    for (const box of root.querySelectorAll("[data-role]")) {
      box.checked = (doc.roles || []).includes(box.dataset.role);
    }
    selected = Math.max(0, Math.min(selected, doc.cards.length - 1));
    grid.replaceChildren(...doc.cards.map(tile));
    if (!doc.cards.length) grid.append(el("p", {class: "muted"}, texts.none));
    inspector.replaceChildren(...(doc.cards.length ? settings(doc.cards[selected], selected)
                                                   : []));
    doc.cards.forEach((_, i) => preview(i));
  }

  /** A card in the layout: its handle, title, buttons, preview and the edge that widens it. */
  function tile(card, i) {
    const count = ed.state.cards.length;
    const width = card.width || 1;
    const moveTo = (to, part) => {  // swaps card i with its neighbour `to`
      if (selected === i) selected = to;
      else if (selected === to) selected = i;
      rebuild(doc => doc.cards.splice(to, 0, ...doc.cards.splice(i, 1)),
              `card-${to}:${to === 0 ? "later" : to === count - 1 ? "earlier" : part}`);
    };
    const grip = el("span", {class: "grip", title: texts.resize, "aria-hidden": "true"});
    grip.addEventListener("pointerdown", event => resize(event, grip, i));
    return el("section", {
      class: `dash-card w-${width} card-tile${i === selected ? " selected" : ""}`,
      "data-card": i, "data-pointer": `/cards/${i}`},
      el("div", {class: "tile-head"},
        el("span", {class: "handle", title: texts.drag, "aria-hidden": "true"}, "⠿"),
        button(cardTitle(card), `card-${i}:select`, () => choose(i),
               {class: "link tile-title", "data-tile-title": "", title: texts.edit}),
        el("span", {class: "moves"},
          button("←", `card-${i}:earlier`, () => moveTo(i - 1, "earlier"),
                 {label: texts.earlier, disabled: i === 0}),
          button("→", `card-${i}:later`, () => moveTo(i + 1, "later"),
                 {label: texts.later, disabled: i === count - 1}),
          button("−", `card-${i}:narrower`, () => setWidth(i, width - 1, "narrower"),
                 {label: texts.narrower, disabled: width === 1}),
          button("+", `card-${i}:wider`, () => setWidth(i, width + 1, "wider"),
                 {label: texts.wider, disabled: width === 4}),
          button("×", `card-${i}:remove`, () => {
            if (selected > i) selected -= 1;
            rebuild(doc => doc.cards.splice(i, 1),
                    count === 1 ? "add-card" : `card-${Math.min(i, count - 2)}:remove`);
          }, {label: texts.remove}))),
      el("div", {"data-notes": ""}),
      el("div", {class: "preview", "data-preview": ""}),
      grip);
  }

  function choose(i) {
    selected = i;
    ed.render("card:type");
  }

  function setWidth(i, width, part) {
    rebuild(doc => {
      if (width > 1) doc.cards[i].width = width;
      else delete doc.cards[i].width;
    }, part && `card-${i}:${part}`);
  }

  /** Drag a card's right edge: it spans as many of the grid's columns as the pointer
      reaches (shown as it moves, saved when let go). */
  function resize(event, grip, i) {
    event.preventDefault();
    const card = grip.closest(".card-tile");
    const style = getComputedStyle(grid);
    const columns = style.gridTemplateColumns.split(" ").length;
    const gap = parseFloat(style.columnGap) || 0;
    const step = (grid.clientWidth + gap) / columns;
    const left = card.getBoundingClientRect().left;
    const before = ed.state.cards[i].width || 1;
    let width = before;
    grip.setPointerCapture(event.pointerId);
    grip.onpointermove = moved => {
      width = Math.max(1, Math.min(4, columns, Math.round((moved.clientX - left + gap) / step)));
      card.classList.remove("w-1", "w-2", "w-3", "w-4");
      card.classList.add(`w-${width}`);
    };
    grip.onpointerup = () => {
      grip.onpointermove = grip.onpointerup = null;
      if (width !== before) setWidth(i, width, null);
    };
  }

  /** The chosen card's settings. */
  function settings(card, i) {
    const at = part => `/cards/${i}/${part}`;
    const rebuildCard = (fn, focus) => rebuild(doc => fn(doc.cards[i]), focus);
    const own = fieldsOf(card);
    const parts = [
      el("h2", {}, texts.card.replace("{n}", i + 1), " · ", cardTitle(card)),
      el("div", {class: "inspector-row"},
        labelled(texts.type, choice(texts.types, card.type, "card:type",
          value => rebuildCard(c => retype(c, value), "card:type")), {"data-pointer": at("type")}),
        labelled(texts.entity, choice(
          [...texts.entities.map(e => [e.name, pick(e.label, e.name)]),
           ...(texts.entities.some(e => e.name === card.entity) ? []
               : [[card.entity, card.entity]])],
          card.entity, "card:entity", value => rebuildCard(c => {
            c.entity = value;
            for (const key of ["filter", "group_by", "metric", "columns", "sort"]) delete c[key];
            retype(c, c.type);
          }, "card:entity")), {"data-pointer": at("entity")}),
        ...["en", "zh"].map(lang => labelled(texts[`title_${lang}`],
          textInput(card.title?.[lang] || "", `card:title-${lang}`,
                    value => editCard(i, c => setLabel(c, "title", lang, value))),
          {"data-pointer": at(lang === "en" ? "title" : "title/zh")})),
        labelled(texts.width, choice(texts.widths, card.width || 1, "card:width",
          value => setWidth(i, Number(value), null)), {"data-pointer": at("width")})),
    ];
    if (card.type === "funnel" && !own.some(f => f.type === "state")) {
      parts.push(el("p", {class: "preview-problem"}, texts.no_workflow));
    }
    if (CHARTS.includes(card.type)) parts.push(groupBy(card, own, at, rebuildCard));
    if (card.type !== "table") parts.push(metric(card, own, at, rebuildCard));
    parts.push(BlocksConditions.builder({
      entity: card.entity, value: card.filter, key: "card:filter", pointer: at("filter"),
      label: texts.filter, onChange: value => editCard(i, c => setOrDrop(c, "filter", value))}));
    if (card.type === "table") {
      parts.push(
        el("div", {"data-pointer": at("columns")}, el("h3", {}, texts.columns),
           el("div", {"data-notes": ""}),
           BlocksFieldLists.picker({
             fields: own, chosen: card.columns || [], key: "card-columns", max: 10,
             pointer: at("columns"), label: texts.columns,
             onChange: (names, focus) => rebuildCard(c => { c.columns = names; }, focus)})),
        el("div", {"data-pointer": at("sort")}, el("h3", {}, texts.sort),
           el("div", {"data-notes": ""}),
           BlocksFieldLists.sortKeys({
             fields: own, keys: card.sort || [], key: "card-sort", max: 3, pointer: at("sort"),
             onChange: (keys, focus) => rebuildCard(c => setOrDrop(c, "sort", keys), focus)})),
        labelled(texts.limit, textInput(card.limit ?? "", "card:limit", value => editCard(
          i, c => setOrDrop(c, "limit", value.trim() === "" ? "" : Number(value))),
          {type: "number", min: 1, max: 50, placeholder: "10"}), {"data-pointer": at("limit")}));
    }
    return parts;
  }

  /** The field each bar, point or slice stands for; a date field by day, month or year. */
  function groupBy(card, own, at, rebuildCard) {
    const [name, bucket = ""] = (card.group_by || "").split(":");
    const field = own.find(f => f.name === name);
    const write = (n, b) => rebuildCard(c => { c.group_by = b ? `${n}:${b}` : n; },
                                        b === undefined ? "card:group" : "card:bucket");
    return el("div", {class: "inspector-row", "data-pointer": at("group_by")},
      labelled(texts.group_by, choice(
        [...own.map(f => [f.name, f.label]), ...(field || !name ? [] : [[name, name]])], name,
        "card:group", value => write(value, undefined))),
      DATES.includes(field?.type) ? labelled(texts.bucket, choice(
        texts.buckets, bucket, "card:bucket", value => write(name, value))) : null,
      el("div", {"data-notes": ""}));
  }

  /** What the card counts: records, or the total, average, lowest or highest of a number. */
  function metric(card, own, at, rebuildCard) {
    const [fn, name = ""] = (card.metric || "count").split(":");
    const numbers = own.filter(f => f.number);
    const write = (f, n) => rebuildCard(c => setOrDrop(
      c, "metric", f === "count" ? "" : `${f}:${n || numbers[0]?.name || ""}`),
      f === fn ? "card:metric-field" : "card:metric");
    return el("div", {class: "inspector-row", "data-pointer": at("metric")},
      labelled(texts.metric, choice(numbers.length || fn !== "count" ? texts.functions
                                    : texts.functions.slice(0, 1),
                                    fn, "card:metric", value => write(value, name))),
      fn === "count" ? null : labelled(texts.of, choice(
        [...numbers.map(f => [f.name, f.label]),
         ...(numbers.some(f => f.name === name) ? [] : [[name, name]])],
        name, "card:metric-field", value => write(fn, value))),
      el("div", {"data-notes": ""}));
  }

  // --- previews -------------------------------------------------------------------------

  function schedulePreview(i) {
    clearTimeout(timers.get(i));
    timers.set(i, setTimeout(() => preview(i), 300));
  }

  /** Show card i's preview (asked once for each state of the card). */
  async function preview(i) {
    const card = ed.state.cards[i];
    const box = grid.children[i]?.querySelector("[data-preview]");
    if (!card || !box) return;
    const key = JSON.stringify([i, card]);
    box.dataset.showing = key;
    if (previews.size > 200) previews.clear();
    if (!previews.has(key)) {
      box.replaceChildren(el("p", {class: "muted"}, texts.loading));
      const answer = call(root.dataset.preview, {method: "POST",
                                                 body: JSON.stringify({card, index: i})});
      answer.catch(() => previews.delete(key));
      previews.set(key, answer);
    }
    try {
      const {html} = await previews.get(key);
      if (box.dataset.showing !== key) return;
      // The screen's rendering of the card, its text escaped as on the dashboard itself.
      box.innerHTML = html;
      window.blocksDrawCharts(box);
    } catch (error) {
      if (box.dataset.showing !== key) return;
      const messages = Object.values(error.problem?.errors || {}).flat();
      box.replaceChildren(el("p", {class: "preview-problem", "data-preview-problem": ""},
                             messages.join(" ") || error.message));
    }
  }

  // --- wiring (once the document is loaded) ----------------------------------------------

  function wire() {
    description.addEventListener("change", () => ed.edit(doc => setOrDrop(
      doc, "description", description.value.trim())));
    for (const box of root.querySelectorAll("[data-role]")) {
      box.addEventListener("change", () => ed.edit(doc => setOrDrop(
        doc, "roles", [...root.querySelectorAll("[data-role]:checked")]
          .map(b => b.dataset.role))));
    }
    root.querySelector("[data-add-card]").addEventListener("click", () => {
      selected = ed.state.cards.length;
      rebuild(doc => doc.cards.push(newCard(root.querySelector("[data-new-type]").value)),
              "card:type");
    });
    Sortable.create(grid, {
      forceFallback: true, fallbackTolerance: 4, delay: 150, delayOnTouchOnly: true,
      handle: ".handle", draggable: ".card-tile", ghostClass: "field-ghost",
      onEnd(event) {
        const {oldIndex: from, newIndex: to} = event;
        if (from === to) return;
        if (selected === from) selected = to;
        else if (from < selected && to >= selected) selected -= 1;
        else if (from > selected && to <= selected) selected += 1;
        rebuild(doc => doc.cards.splice(to, 0, ...doc.cards.splice(from, 1)));
      },
    });
  }
})();
