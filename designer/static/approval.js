/* The approval builder (designer/approval.html), on the shared editor (editor.js), built
   like the automation builder: the entity, the condition a record must meet to be
   submitted (the condition builder), what the record allows while it waits, then the
   steps in order (moved by drag handle or by move up/down), each with its approvers, how
   many of them decide, a skip condition, a timeout and whom it escalates to; and the
   actions run on submit, approval, rejection and recall (actions.js, as automations). */
"use strict";

(() => {
  const {api, el, labelled, checkbox, textInput, choice, button, pick, setLabel} = BlocksDesigner;
  const {context, fieldsOf, keeping, duration, sortable, moves, movedFocus, userChoices,
         teamChoices, roleChoices, clause} = BlocksActions;
  const root = document.querySelector("[data-approval-editor]");
  const texts = JSON.parse(document.querySelector("template[data-approval-texts]").innerHTML);
  const page = root.querySelector("[data-sentence]");
  const EVENTS = ["submit", "approved", "rejected", "recalled"];
  let workflows = [];    // for the transition a final approval takes
  let automations = [];  // for the rules that may still write a waiting record

  const ed = BlocksEditor.open({
    root, kind: "approval", name: root.dataset.name || null,
    blank: () => ({kind: "approval", name: "", label: {}, entity: "",
                   steps: [freshStep([])]}),
    async ready() {
      const [flows, rules] = await Promise.all([api("/workflow"), api("/automation"),
                                                BlocksActions.ready()]);
      workflows = flows.items;
      automations = rules.items;
    },
    render,
  });

  function render() {
    const doc = ed.state;
    const chosen = Boolean(doc.entity);
    const later = part => chosen ? part() : [el("p", {class: "muted"}, texts.entity_first)];
    page.replaceChildren(
      clause("entity", texts.approval_of, "/entity", entityChoice(doc)),
      clause("entry", texts.submit_when, "/entry", ...later(() => [BlocksConditions.builder({
        entity: doc.entity, value: doc.entry, key: "entry", pointer: "/entry",
        label: texts.entry_help, onChange: value => ed.edit(d => {
          if (value === undefined) delete d.entry;
          else d.entry = value;
        })})])),
      clause("steps", texts.steps, "/steps", ...later(() => [steps(doc)])),
      clause("waiting", texts.waiting, null, ...later(() => waiting(doc))),
      clause("then", texts.then, "/on", ...later(() => EVENTS.map(event => BlocksActions.list(
        ed, {path: ["on", event], entity: doc.entity, key: `on-${event}`,
             title: texts[`on_${event}`]})))));
  }

  function entityChoice(doc) {
    const entities = Object.entries(context.entities).map(([name, e]) => [name, e.label]);
    return labelled(texts.entity, choice(keeping([["", texts.choose], ...entities], doc.entity),
      doc.entity, "entity", value => ed.rebuild(d => {
        // Conditions, fields and transitions belong to the entity left behind.
        d.entity = value;
        for (const key of ["entry", "transition", "editable", "rules"]) delete d[key];
        for (const step of d.steps) delete step.condition;
      }, "entity")));
  }

  // --- while it waits -------------------------------------------------------------------

  /** The transition a final approval takes, and what may still change the locked record. */
  function waiting(doc) {
    const workflow = workflows.find(w => w.entity === doc.entity);
    const transitions = (workflow?.transitions || []).map(t => [t.name, pick(t.label, t.name)]);
    const ticks = (key, legend, names) => el("fieldset", {class: "checks wide",
                                                          "data-pointer": `/${key}`},
      el("legend", {}, legend), el("div", {"data-notes": ""}),
      ...(names.length ? names.map(([name, label]) => {
        const [box, input] = checkbox(label, (doc[key] || []).includes(name),
                                      `${key}:${name}`);
        input.addEventListener("change", () => ed.edit(d => {
          const kept = (d[key] || []).filter(n => n !== name);
          if (input.checked) kept.push(name);
          if (kept.length) d[key] = kept;
          else delete d[key];
        }));
        return box;
      }) : [el("p", {class: "muted"}, texts.none_yet)]));
    return [
      labelled(texts.transition, choice(keeping([["", texts.no_transition], ...transitions],
                                                doc.transition), doc.transition || "",
        "transition", value => ed.edit(d => {
          if (value) d.transition = value;
          else delete d.transition;
        })), {"data-pointer": "/transition"}),
      ticks("editable", texts.editable, fieldsOf(doc.entity).filter(f => !f.computed)
        .map(f => [f.name, f.label])),
      ticks("rules", texts.rules, automations.filter(a => a.entity === doc.entity)
        .map(a => [a.name, pick(a.label, a.name)]))];
  }

  // --- the steps --------------------------------------------------------------------------

  /** A new step, named apart from `taken`, decided by the owner's manager. */
  function freshStep(taken) {
    let n = taken.length + 1;
    while (taken.some(s => s.name === `step_${n}`)) n++;
    return {name: `step_${n}`, approvers: [{manager: true}]};
  }

  function steps(doc) {
    const count = doc.steps.length;
    const move = (from, to, part) => ed.rebuild(d => {
      d.steps.splice(to, 0, ...d.steps.splice(from, 1));
    }, movedFocus("step", to, count, part));
    const remove = i => ed.rebuild(d => { d.steps.splice(i, 1); },
                                   count > 1 ? `step:${Math.min(i, count - 2)}:remove` : "add-step");
    const list = el("ol", {class: "steps", "data-steps": ""},
                    ...doc.steps.map((step, i) => stepItem(doc, step, i, move, remove)));
    sortable(list, ".step-handle", ".step", (from, to) => move(from, to, null));
    return el("div", {class: "steps-box"}, list,
      button(texts.add_step, "add-step", () => ed.rebuild(d => { d.steps.push(freshStep(d.steps)); },
                                                          `step:${count}:name`)));
  }

  function stepItem(doc, step, i, move, remove) {
    const ptr = `/steps/${i}`;
    const key = `step:${i}`;
    const edit = fn => ed.edit(d => fn(d.steps[i]));
    const rebuild = (fn, focus) => ed.rebuild(d => fn(d.steps[i]), focus);
    const {handle, buttons} = moves("step", i, doc.steps.length, move, remove);
    handle.classList.add("step-handle");
    const [selfBox, self] = checkbox(texts.allow_self, step.allow_self, `${key}:allow-self`);
    self.addEventListener("change", () => edit(s => {
      if (self.checked) s.allow_self = true;
      else delete s.allow_self;
    }));
    selfBox.dataset.pointer = `${ptr}/allow_self`;
    return el("li", {class: "step", "data-pointer": ptr, "data-step": step.name},
      el("div", {class: "step-head"}, handle, el("span", {class: "ordinal"}, `${i + 1}.`),
        labelled(texts.step_name, textInput(step.name, `${key}:name`,
          value => edit(s => { s.name = value.trim(); }),
          {required: "", spellcheck: "false", pattern: ed.schema.$defs.slug.pattern}),
          {"data-pointer": `${ptr}/name`}),
        ...["en", "zh"].map(lang => labelled(texts[`label_${lang}`],
          textInput(step.label?.[lang] || "", `${key}:label-${lang}`,
                    value => edit(s => setLabel(s, "label", lang, value))),
          {"data-pointer": `${ptr}/label${lang === "en" ? "" : "/zh"}`})),
        buttons),
      el("div", {"data-notes": ""}),
      el("div", {class: "step-body"},
        approvers(doc, step, ptr, key, rebuild),
        mode(step, ptr, key, rebuild, edit), selfBox,
        el("span", {class: "labelled", "data-pointer": `${ptr}/timeout`},
          el("span", {}, texts.timeout), duration(step.timeout, `${key}:timeout`,
            made => edit(s => {
              if (made) s.timeout = made;
              else delete s.timeout;
            }))),
        el("span", {class: "labelled", "data-pointer": `${ptr}/escalate_to`},
          el("span", {}, texts.escalate_to),
          who(doc, step.escalate_to, `${key}:escalate`, value => rebuild(s => {
            if (value) s.escalate_to = value;
            else delete s.escalate_to;
          }, `${key}:escalate:kind`), true)),
        BlocksConditions.builder({
          entity: doc.entity, value: step.condition, key: `${key}:condition`,
          pointer: `${ptr}/condition`, label: texts.skip_unless,
          onChange: value => edit(s => {
            if (value === undefined) delete s.condition;
            else s.condition = value;
          })}),
        BlocksActions.list(ed, {path: ["steps", i, "actions"], entity: doc.entity,
                                key: `step-${i}-actions`, title: texts.step_actions})));
  }

  function approvers(doc, step, ptr, key, rebuild) {
    const items = step.approvers.map((spec, j) => el("li", {
      class: "who", "data-pointer": `${ptr}/approvers/${j}`},
      who(doc, spec, `${key}:approver-${j}`, value => rebuild(s => { s.approvers[j] = value; },
                                                             `${key}:approver-${j}:kind`)),
      button(texts.remove, `${key}:approver-${j}:remove`, () => rebuild(s => {
        s.approvers.splice(j, 1);
      }, `${key}:add-approver`))));
    return el("fieldset", {class: "wide", "data-pointer": `${ptr}/approvers`},
      el("legend", {}, texts.approvers), el("div", {"data-notes": ""}), el("ol", {}, ...items),
      button(texts.add_approver, `${key}:add-approver`, () => rebuild(s => {
        s.approvers.push({manager: true});
      }, `${key}:approver-${items.length}:kind`)));
  }

  /** Who decides (or is escalated to): a user, a role, a team, a user field of the record,
      or a manager; `commit` gets the new spec (null: nobody, where `optional`). */
  function who(doc, spec, key, commit, optional = false) {
    const kind = spec ? Object.keys(spec)[0] : "";
    const userFields = fieldsOf(doc.entity).filter(f => f.type === "user")
      .map(f => [f.name, f.label]);
    const lists = {user: userChoices(), role: roleChoices(), team: teamChoices(),
                   field: userFields};
    const kinds = [...(optional ? [["", texts.nobody]] : []), ["user", texts.a_user],
                   ["role", texts.a_role], ["team", texts.a_team], ["field", texts.a_field],
                   ["manager", optional ? texts.approvers_manager : texts.owners_manager]];
    const kindChoice = choice(kinds, kind, `${key}:kind`, value => commit(!value ? null
      : value === "manager" ? {manager: true} : {[value]: lists[value][0]?.[0] || ""}),
    {"aria-label": texts.approver_kind});
    const value = lists[kind] ? choice(keeping(lists[kind], spec[kind]), spec[kind], `${key}:value`,
      chosen => commit({[kind]: chosen}), {"aria-label": texts.approver}) : null;
    return el("span", {class: "inline"}, kindChoice, value);
  }

  /** Any one approver, all of them, or at least N. */
  function mode(step, ptr, key, rebuild, edit) {
    const atLeast = typeof step.mode === "object" ? step.mode.at_least : null;
    const how = choice([["any", texts.any], ["all", texts.all], ["at_least", texts.at_least]],
      atLeast !== null ? "at_least" : step.mode || "any", `${key}:mode`, value => rebuild(s => {
        if (value === "any") delete s.mode;
        else s.mode = value === "at_least" ? {at_least: 2} : value;
      }, value === "at_least" ? `${key}:at-least` : `${key}:mode`));
    const number = atLeast !== null ? textInput(String(atLeast), `${key}:at-least`,
      value => edit(s => { s.mode = {at_least: Math.trunc(Number(value))}; }),
      {type: "number", min: 1, step: 1, "aria-label": texts.how_many}) : null;
    return el("span", {class: "labelled", "data-pointer": `${ptr}/mode`},
      el("span", {}, texts.mode), el("span", {class: "inline"}, how, number));
  }
})();
