/* The automation builder (designer/automation.html), on the shared editor (editor.js): a
   rule that reads like a sentence. When <trigger> on a record of <entity>, if <condition>
   (the condition builder), then <actions>, in order (actions.js). Its dry run posts the
   rule as it stands, unsaved, and lists the records it would act on now and what it would
   do to each; what keeps it from running is shown where the rule says it. */
"use strict";

(() => {
  const {api, call, el, labelled, checkbox, textInput, choice, pick} = BlocksDesigner;
  const {context, fieldsOf, keeping, duration, describe, clause} = BlocksActions;
  const root = document.querySelector("[data-automation-editor]");
  const texts = JSON.parse(document.querySelector("template[data-automation-texts]").innerHTML);
  const sentence = root.querySelector("[data-sentence]");
  const results = root.querySelector("[data-dry-results]");
  const DATES = new Set(["date", "datetime"]);
  //: Triggers whose condition may ask what the write changed (changed(), previous()).
  const SAVING = new Set(["updated", "transition"]);
  let workflows = [];  // every workflow, for the transitions of the rule's entity
  let approvals = [];  // every approval process, for the "approval decided" trigger

  const ed = BlocksEditor.open({
    root, kind: "automation", name: root.dataset.name || null,
    blank: () => ({kind: "automation", name: "", label: {}, entity: "",
                   trigger: {on: "created"}, actions: []}),
    async ready() {
      const [flows, processes] = await Promise.all([api("/workflow"), api("/approval"),
                                                    BlocksActions.ready()]);
      workflows = flows.items;
      approvals = processes.items;
      root.querySelector("[data-dry-run]").addEventListener("click", dryRun);
    },
    render,
  });

  // --- the sentence ----------------------------------------------------------------------

  function render() {
    const doc = ed.state;
    sentence.replaceChildren(
      clause("entity", texts.rule_on, "/entity", entityChoice(doc)),
      clause("when", texts.when, "/trigger", ...trigger(doc)),
      clause("if", texts.if, "/condition", doc.entity ? BlocksConditions.builder({
        entity: doc.entity, value: doc.condition, key: "condition", pointer: "/condition",
        saving: SAVING.has(doc.trigger.on), label: texts.condition_help,
        onChange: value => ed.edit(d => {
          if (value === undefined) delete d.condition;
          else d.condition = value;
        })}) : el("p", {class: "muted"}, texts.entity_first)),
      clause("then", texts.then, "/actions", doc.entity
        ? BlocksActions.list(ed, {path: ["actions"], entity: doc.entity, key: "actions",
                                  keep: true})
        : el("p", {class: "muted"}, texts.entity_first)),
      clause("settings", texts.settings, null, ...settings(doc)));
  }

  function entityChoice(doc) {
    const entities = Object.entries(context.entities).map(([name, e]) => [name, e.label]);
    return labelled(texts.entity, choice(keeping([["", texts.choose], ...entities], doc.entity),
      doc.entity, "entity", value => ed.rebuild(d => {
        // Fields, transitions and conditions belong to the entity left behind.
        d.entity = value;
        d.trigger = fresh(d.trigger.on, value);
        delete d.condition;
      }, "entity")));
  }

  // --- when --------------------------------------------------------------------------------

  /** A trigger of kind `on` as it starts, on `entity`. */
  function fresh(on, entity) {
    if (on === "schedule") return {on, cron: "0 8 * * *"};
    if (on === "relative") return {on, field: dateFields(entity)[0]?.[0] || "created_at",
                                   offset: {days: 1}};
    return {on};
  }

  const dateFields = entity => [
    ...fieldsOf(entity).filter(f => DATES.has(f.type)).map(f => [f.name, f.label]),
    ["created_at", texts.created_at], ["updated_at", texts.updated_at]];

  function trigger(doc) {
    const spec = doc.trigger;
    const on = choice([["created", texts.on_created], ["updated", texts.on_updated],
                       ["deleted", texts.on_deleted], ["transition", texts.on_transition],
                       ["approval", texts.on_approval], ["schedule", texts.on_schedule],
                       ["relative", texts.on_relative]], spec.on, "trigger:on",
      value => ed.rebuild(d => { d.trigger = fresh(value, d.entity); }, "trigger:on"),
      {"aria-label": texts.when});
    const details = {updated: changedFields, transition, approval: approvalDecided,
                     schedule, relative}[spec.on];
    return [on, ...(details ? details(doc, spec) : [])];
  }

  const setTrigger = (key, value) => ed.edit(d => {
    if (value === "" || value === null) delete d.trigger[key];
    else d.trigger[key] = value;
  });

  function changedFields(doc, spec) {
    const names = [...fieldsOf(doc.entity).filter(f => !f.computed).map(f => [f.name, f.label]),
                   ...(workflowOf(doc.entity) ? [["state", texts.state]] : [])];
    return [el("fieldset", {class: "checks", "data-pointer": "/trigger/fields"},
      el("legend", {}, texts.only_fields), el("div", {"data-notes": ""}),
      ...names.map(([name, label]) => {
        const [box, input] = checkbox(label, (spec.fields || []).includes(name),
                                      `trigger:field-${name}`);
        input.addEventListener("change", () => ed.edit(d => {
          const chosen = (d.trigger.fields || []).filter(n => n !== name);
          if (input.checked) chosen.push(name);
          if (chosen.length) d.trigger.fields = chosen;
          else delete d.trigger.fields;
        }));
        return box;
      }))];
  }

  const workflowOf = entity => workflows.find(w => w.entity === entity);

  function transition(doc, spec) {
    const workflow = workflowOf(doc.entity);
    if (!workflow) return [el("p", {class: "muted"}, texts.no_workflow)];
    const names = workflow.transitions.map(t => [t.name, pick(t.label, t.name)]);
    return [labelled(texts.transition, choice(
      keeping([["", texts.any_transition], ...names], spec.transition), spec.transition || "",
      "trigger:transition", value => setTrigger("transition", value)),
      {"data-pointer": "/trigger/transition"})];
  }

  function approvalDecided(doc, spec) {
    const names = approvals.filter(a => a.entity === doc.entity)
      .map(a => [a.name, pick(a.label, a.name)]);
    return [
      labelled(texts.approval, choice(keeping([["", texts.any_approval], ...names],
                                              spec.approval), spec.approval || "",
        "trigger:approval", value => setTrigger("approval", value)),
        {"data-pointer": "/trigger/approval"}),
      labelled(texts.decision, choice([["", texts.any_decision],
                                       ["step_approved", texts.step_approved],
                                       ["approved", texts.approved], ["rejected", texts.rejected],
                                       ["recalled", texts.recalled]], spec.decision || "",
        "trigger:decision", value => setTrigger("decision", value)),
        {"data-pointer": "/trigger/decision"})];
  }

  function schedule(doc, spec) {
    return [labelled(texts.cron, textInput(spec.cron || "", "trigger:cron",
      value => setTrigger("cron", value.trim()), {spellcheck: "false", class: "formula"}),
      {"data-pointer": "/trigger/cron"}), el("p", {class: "muted"}, texts.cron_help)];
  }

  /** A time before or after a date field: days, hours and minutes, and which way. */
  function relative(doc, spec) {
    const offset = spec.offset || {};
    const before = Object.values(offset).some(v => v < 0);
    const size = Object.fromEntries(Object.entries(offset).map(([unit, v]) => [unit, Math.abs(v)]));
    const write = (made, sign) => ed.edit(d => {
      d.trigger.offset = Object.fromEntries(Object.entries(made || {days: 0})
        .map(([unit, v]) => [unit, sign * v]));
    });
    const direction = choice([["after", texts.after], ["before", texts.before]],
      before ? "before" : "after", "trigger:direction",
      value => write(size, value === "before" ? -1 : 1), {"aria-label": texts.direction});
    return [
      el("span", {class: "labelled", "data-pointer": "/trigger/offset"},
        el("span", {}, texts.offset),
        duration(size, "trigger:offset", made => write(made, before ? -1 : 1))),
      direction,
      labelled(texts.date_field, choice(keeping(dateFields(doc.entity), spec.field),
        spec.field || "", "trigger:field", value => setTrigger("field", value)),
        {"data-pointer": "/trigger/field"})];
  }

  // --- how it runs ----------------------------------------------------------------------

  function settings(doc) {
    const [enabledBox, enabled] = checkbox(texts.enabled, doc.enabled !== false, "enabled");
    enabled.addEventListener("change", () => ed.edit(d => {
      if (enabled.checked) delete d.enabled;
      else d.enabled = false;
    }));
    enabledBox.dataset.pointer = "/enabled";
    const area = el("textarea", {rows: 2, "data-key": "description"});
    area.value = doc.description || "";
    area.addEventListener("change", () => ed.edit(d => {
      if (area.value.trim()) d.description = area.value.trim();
      else delete d.description;
    }));
    return [
      labelled(texts.mode, choice([["async", texts.async], ["sync", texts.sync]],
        doc.mode || "async", "mode", value => ed.edit(d => { d.mode = value; })),
        {"data-pointer": "/mode"}),
      labelled(texts.run_as, choice([["system", texts.as_system], ["user", texts.as_user]],
        doc.run_as || "system", "run-as", value => ed.edit(d => { d.run_as = value; })),
        {"data-pointer": "/run_as"}),
      enabledBox,
      labelled(texts.description, area, {"data-pointer": "/description", class: "wide"})];
  }

  // --- the dry run ---------------------------------------------------------------------

  /** Try the rule as it stands on the records there are now; nothing is written. */
  async function dryRun() {
    const trying = root.querySelector("[data-dry-run]");
    trying.disabled = true;
    results.replaceChildren(el("p", {role: "status"}, texts.trying));
    try {
      const answer = await call(root.dataset.dryRunUrl, {method: "POST",
                                                         body: JSON.stringify(ed.state)});
      ed.problems = {};
      ed.placeProblems();
      showRun(answer);
    } catch (error) {
      ed.problems = error.problem?.errors || {};  // by JSON Pointer into the rule
      ed.placeProblems();
      results.replaceChildren(el("p", {class: "field-error", "data-dry-failed": ""},
        Object.keys(ed.problems).length ? texts.cannot_try : error.message));
    } finally {
      trying.disabled = false;
    }
  }

  function showRun(answer) {
    const entity = ed.state.entity;
    const title = context.entities[entity]?.title;
    const count = answer.matches === 1 ? texts.one_match
      : texts.matches.replace("{count}", answer.matches);
    const shown = answer.items.length < answer.matches
      ? [el("p", {class: "muted"}, texts.first.replace("{count}", answer.items.length))] : [];
    results.replaceChildren(
      el("p", {class: "dry-count", role: "status", "data-matches": answer.matches}, count),
      el("p", {class: "muted"}, answer.why), ...shown,
      el("ol", {class: "dry-items"}, ...answer.items.map(({record, actions}) => el("li", {
        "data-record": record.id},
        el("a", {href: `${root.dataset.recordsUrl}/${entity}/${record.id}`, target: "_blank"},
           String((title && record[title]) || record.id)),
        el("ul", {}, ...actions.map(action => el("li", {}, describe(action))))))));
  }
})();
