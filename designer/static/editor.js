/* What every definition editor of the designer shares. The definition's JSON document is
   the editor's state: each edit changes it and keeps a copy, so undo and redo walk through
   those copies, and saving sends exactly the document the API checks against the engine's
   meta-schema. Its 422 errors, keyed by JSON Pointer, are shown next to the element that
   says it shows that pointer (data-pointer), and a save over someone else's newer draft
   is refused (If-Match) with a way to load theirs.

   An editor page holds, inside its root: the bar (designer/_editor.html), the name and
   label inputs ([data-def-name], [data-label=en|zh]) and whatever its own script draws.
   Text from metadata goes in as textContent only, through el(). */
"use strict";

const BlocksEditor = (() => {
  const {api, el} = BlocksDesigner;
  const main = document.querySelector("main[data-api]");
  const base = main.dataset.api;
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
  const texts = JSON.parse(document.querySelector("template[data-editor-texts]")?.innerHTML
                           || "{}");

  /** A call whose ETag matters as well as its body (api() answers the body alone). */
  async function send(path, method = "GET", body = undefined, etag = null) {
    const response = await fetch(base + path, {
      method, body, credentials: "same-origin",
      headers: {"Accept": "application/json", "Content-Type": "application/json",
                "X-CSRFToken": csrf, ...(etag ? {"If-Match": etag} : {})}});
    const answer = await response.json();
    if (!response.ok) {
      throw Object.assign(new Error(answer.detail || answer.title || response.statusText),
                          {problem: answer});
    }
    return {body: answer, etag: response.headers.get("ETag")};
  }

  /** A schema node with its local $ref followed. */
  function resolve(schema, node) {
    const ref = node?.$ref;
    return ref?.startsWith("#/$defs/") ? schema.$defs[ref.slice(8)] : node;
  }

  /**
   * Open the editor of one definition and answer it.
   *
   * options.root       the element holding the editor
   * options.kind       the definition kind
   * options.name       the definition's name; null for a new one (its first save creates it)
   * options.blank()    a new definition's document
   * options.render(ed) draw ed.state inside the root (called after every structural change,
   *                    undo and redo); focus is put back by data-key afterwards
   * options.ready(ed, schema)  once loaded, before the first render (load what it needs)
   * options.targetOf(pointer)  the element a problem goes to, before the data-pointer search
   * options.changed(ed)  after every edit, undo and redo (the document is ed.state by then;
   *                    a structural change and an undo or redo have redrawn it)
   */
  function open(options) {
    const {root, kind} = options;
    const bar = {undo: root.querySelector("[data-undo]"), redo: root.querySelector("[data-redo]"),
                 save: root.querySelector("[data-save]")};
    const status = root.querySelector("[data-status]");
    const nameInput = root.querySelector("[data-def-name]");
    let copies = [];   // every state's JSON, for undo and redo
    let at = -1;       // the current state's place in copies
    let etag = null;   // the revision last loaded or saved
    let saved = null;  // the document's JSON as last loaded or saved
    let pendingFocus = null;  // the data-key render() is to focus, until it is drawn
    let saidSaved = false;    // whether the bar says the last save's outcome
    // Where each of ed.problems was first placed: the data-pointer it went to, "own" for
    // options.targetOf's place, null for the list on top.
    let anchors = {problems: null, at: new Map()};

    const ed = {
      kind, root, name: options.name || null, state: null, problems: {}, schema: null,

      /** Change the document and keep the new state (what is shown is up to date). */
      edit(change) {
        keep(change);
        options.changed?.(ed);
      },

      /** Change the document's structure and show it again, focusing `focus` (a data-key). */
      rebuild(change, focus) {
        keep(change);
        ed.render(focus);
        options.changed?.(ed);
      },

      /** Show the state again; the element with data-key `focus` (else the one focused
          now, found again by its key) gets the focus. */
      render(focus) {
        focus ??= root.contains(document.activeElement) ? document.activeElement.dataset.key
          : null;
        if (nameInput) nameInput.value = ed.state.name;
        for (const input of root.querySelectorAll("[data-label]")) {
          input.value = ed.state.label?.[input.dataset.label] || "";
        }
        options.render(ed);
        ed.placeProblems();
        refresh();
        pendingFocus = focus;
        focusPending();
      },

      say(text, failed = false, ...more) {
        status.replaceChildren(text, ...more);
        status.classList.toggle("error", failed);
        saidSaved = false;
      },

      /** Whether the document differs from what was last loaded or saved. */
      get unsaved() {
        return ed.state !== null && JSON.stringify(ed.state) !== saved;
      },

      /** Put each problem next to what it concerns; those with no place go on top. A
          problem placed before goes once its place is gone (a structural change, undo or
          redo took it away) rather than up onto a parent. */
      placeProblems() {
        for (const old of root.querySelectorAll(".field-error[data-problem]")) old.remove();
        if (anchors.problems !== ed.problems) anchors = {problems: ed.problems, at: new Map()};
        const unplaced = [];
        for (const [pointer, messages] of Object.entries(ed.problems)) {
          const text = [].concat(messages).join(" ");
          const target = place(pointer);
          if (target === undefined) {
            delete ed.problems[pointer];
          } else if (target) {
            (target.querySelector(":scope > [data-notes]") || target).append(
              el("p", {class: "field-error", "data-problem": pointer}, text));
          } else {
            unplaced.push(el("li", {"data-problem": pointer}, `${pointer}: ${text}`));
          }
        }
        const top = root.querySelector("[data-problems]");
        top.replaceChildren(...unplaced);
        top.hidden = !unplaced.length;
      },

      save,
    };

    /** Change the document and keep the new state for undo and redo. */
    function keep(change) {
      if (saidSaved) ed.say("");  // "Saved as a draft" is of the state left behind
      change(ed.state);
      copies.splice(at + 1, Infinity, JSON.stringify(ed.state));
      at = copies.length - 1;
      refresh();
    }

    /** Where the problem at `pointer` goes: an element, null for the list on top, or
        undefined when the place it was first given is gone (it may go closer to what it
        concerns once that is drawn, a chosen card's setting say, but never further up). */
    function place(pointer) {
      const own = options.targetOf?.(pointer);
      const target = own || nearest(pointer);
      if (!anchors.at.has(pointer)) {
        anchors.at.set(pointer, own ? "own" : target?.dataset.pointer ?? null);
        return target;
      }
      const anchor = anchors.at.get(pointer);
      if (own || anchor === null) return target;
      if (anchor === "own") return undefined;
      return target && target.dataset.pointer.length >= anchor.length ? target : undefined;
    }

    /** The element that says it shows `pointer`, or the nearest one above it. */
    function nearest(pointer) {
      for (let p = pointer; p.startsWith("/") && p.length > 1; p = p.slice(0, p.lastIndexOf("/"))) {
        const node = root.querySelector(`[data-pointer="${CSS.escape(p)}"]`);
        if (node) return node;
      }
      return null;
    }

    /** Focus the element render() was asked to, once it is there (a condition builder
        draws its rows when it has read its entity's fields). */
    function focusPending() {
      const target = pendingFocus && root.querySelector(`[data-key="${CSS.escape(pendingFocus)}"]`);
      if (!target) return;
      target.focus();
      pendingFocus = null;
    }
    root.addEventListener("blocks:condition-ready", focusPending);

    function refresh() {
      bar.undo.disabled = at <= 0;
      bar.redo.disabled = at >= copies.length - 1;
    }

    function travel(step) {
      if (at + step < 0 || at + step >= copies.length) return;
      at += step;
      ed.state = JSON.parse(copies[at]);
      ed.say("");  // what the bar said was of the state left behind
      ed.render();
      options.changed?.(ed);
    }

    async function save() {
      bar.save.disabled = true;
      ed.say(texts.saving);
      const sent = JSON.stringify(ed.state);
      try {
        if (ed.name) {
          ({etag} = await send(`/${kind}/${ed.name}`, "PUT", sent, etag));
        } else {
          ({etag} = await send(`/${kind}`, "POST", sent));
          ed.name = ed.state.name;
          if (nameInput) nameInput.readOnly = true;
          window.history.replaceState(null, "", ed.name);
        }
        saved = sent;
        const review = el("a", {href: root.dataset.review || "../review", "data-review": ""},
                          texts.review);
        if (await showPublishProblems()) ed.say(texts.saved_with_problems, true, " ", review);
        else ed.say(texts.saved, false, " ", review);
        saidSaved = true;
        root.dispatchEvent(new CustomEvent("blocks:saved", {detail: ed}));
      } catch (error) {
        ed.problems = error.problem?.errors || {};
        ed.placeProblems();
        if (error.problem?.status === 409 && ed.name) {
          const reload = el("button", {type: "button", "data-load-theirs": ""}, texts.load_theirs);
          reload.addEventListener("click", () => {
            saved = JSON.stringify(ed.state);  // dropping these changes is what was asked
            window.location.reload();
          });
          ed.say(texts.conflict, true, " ", reload);
        } else if (Object.keys(ed.problems).length) {
          ed.say(texts.invalid, true);
          root.querySelector(".field-error[data-problem], .problems:not([hidden])")
            ?.scrollIntoView({block: "center"});
        } else {
          ed.say(error.message, true);
        }
      } finally {
        bar.save.disabled = false;
      }
    }

    /** Show what publishing would refuse in the saved draft, where it is; whether there
        is anything (the meta-schema passed: the rest is checked with the other drafts). */
    async function showPublishProblems() {
      try {
        ed.problems = (await api(`/${kind}/${ed.name}/problems`)).errors;
      } catch {
        ed.problems = {};  // the draft is saved; its check can wait for the review
      }
      ed.placeProblems();
      return Object.keys(ed.problems).length > 0;
    }

    function wire() {
      nameInput?.addEventListener("change", () => ed.edit(doc => {
        doc.name = nameInput.value.trim();
      }));
      for (const input of root.querySelectorAll("[data-label]")) {
        input.addEventListener("change", () => ed.edit(doc => {
          doc.label ||= {};
          BlocksDesigner.setText(doc.label, input.dataset.label, input.value);
        }));
      }
      bar.undo.addEventListener("click", () => travel(-1));
      bar.redo.addEventListener("click", () => travel(1));
      bar.save.addEventListener("click", save);
      document.addEventListener("keydown", event => {
        if (!(event.ctrlKey || event.metaKey) || event.altKey) return;
        // In a text box the browser's own undo of the typing comes first.
        if (event.target.matches("input:not([type=checkbox]), textarea")) return;
        const letter = event.key.toLowerCase();
        if (letter === "z") travel(event.shiftKey ? 1 : -1);
        else if (letter === "y") travel(1);
        else if (letter === "s") save();
        else return;
        event.preventDefault();
      });
      window.addEventListener("beforeunload", event => {
        if (ed.unsaved) {
          event.preventDefault();
          event.returnValue = "";
        }
      });
    }

    async function start() {
      try {
        const [schema, answer] = await Promise.all([
          api(`/schemas/${kind}`), ed.name ? send(`/${kind}/${ed.name}`) : null]);
        ed.schema = schema;
        if (answer) {
          ed.state = answer.body;
          etag = answer.etag;
        } else {
          ed.state = options.blank();
        }
        // The browser checks what the meta-schema says of names and labels as they are typed.
        const named = resolve(schema, schema.properties.name);
        if (nameInput) {
          nameInput.pattern = named.pattern;
          if (named.maxLength) nameInput.maxLength = named.maxLength;
        }
        await options.ready?.(ed, schema);
      } catch (error) {
        return ed.say(error.message, true);
      }
      saved = JSON.stringify(ed.state);
      copies = [saved];
      at = 0;
      bar.save.disabled = false;
      ed.say("");
      ed.render();
      wire();
      if (ed.name && await showPublishProblems()) ed.say(texts.publish_problems, true);
    }

    start();
    return ed;
  }

  return {open, send, resolve};
})();
