/* The lists of fields the view and dashboard editors share (view.js, dashboard.js): an
   ordered choice of fields (columns) and a list of sort keys. Every drag has a keyboard
   way too: a select and a button to add, arrows to move, a button to remove. Their texts
   are the page's template[data-field-texts]. */
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
