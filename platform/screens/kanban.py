"""The kanban board: one column per workflow state or select option, with each column's
count and sum. Dragging a card takes the workflow transition into the target column (or
sets the select field), as the user: the engine decides, and a refusal comes back with
its reason so the page can put the card back and say why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import jsonify, render_template, request, url_for
from werkzeug.wrappers import Response

from blockscrm.engine import BlocksError, Entity, User, ValidationError
from blockscrm.engine.access import grant_for
from blockscrm.engine.rules import parse_rule

from ..extension import current_workspace
from ..i18n import format_money, format_number, gettext, label
from ..problems import status_of
from . import bp
from .forms import INPUT_TYPES, field_kind, select_choices
from .helpers import (
    current_catalog,
    default_columns,
    field_label,
    navigation,
    option_label,
    parse_id,
    parse_input,
    record_title,
    reference_titles,
    safe_color,
    select_options,
    state_label,
    the_user,
    title_field,
    visible_fields,
)

#: Cards loaded per column; the rest are counted and reached through the list.
CARDS = 50


@dataclass(frozen=True)
class Board:
    """How an entity's board groups and shows its records."""

    group: str
    fields: tuple[str, ...]
    sum: str | None
    filter: Any = None
    sort: tuple[str, ...] = ()


def board_for(entity: Entity, user: User) -> Board | None:
    """The board from the entity's view (its kanban), else by workflow state, else by its
    first select field; None when there is nothing to group by (or it is hidden)."""
    view = current_catalog().view_for(entity.name)
    if view is not None and view.kanban_group:
        group, fields, total = view.kanban_group, view.kanban_fields, view.kanban_sum
    else:
        group = "state" if entity.workflow is not None else next(
            (n for n, f in entity.fields.items() if f.type.name == "select"), None)
        title = title_field(entity)
        fields = tuple(n for n in default_columns(entity, user)
                       if n not in (group, title, "state"))[:3]
        total = next((n for n, f in entity.fields.items() if f.type.name == "currency"), None)
    hidden = grant_for(user, entity, current_catalog()).hidden
    if group is None or group in hidden:
        return None
    return Board(group, tuple(visible_fields(entity, user, fields)),
                 total if total and total not in hidden else None,
                 view.filter if view is not None else None,
                 view.sort if view is not None else ())


def columns_of(entity: Entity, board: Board) -> list[dict[str, Any]]:
    """The columns, in order: the workflow's states, or the select field's options."""
    if board.group == "state":
        states = sorted(entity.workflow.states.values(), key=lambda s: s.order)
        return [{"key": s.name, "value": s.name, "label": state_label(entity, s.name),
                 "color": safe_color(s.color)} for s in states]
    answer = []
    for option in select_options(entity, board.group):
        text, color = option_label(entity, board.group, option)
        answer.append({"key": str(option), "value": option, "label": text, "color": color})
    return answer


def _where(board: Board, extra: Any = None) -> Any:
    """The board's filter and ``extra``, as one tree (None: everything)."""
    parts = [parse_rule(board.filter)] if board.filter is not None else []
    if extra is not None:
        parts.append(extra)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"and": parts}


def _query(entity: Entity, board: Board, user: User, extra: Any = None) -> Any:
    query = current_workspace().query(entity.name, user=user)
    where = _where(board, extra)
    return query if where is None else query.filter(where)


def _sum_text(entity: Entity, board: Board, value: Any) -> str:
    if board.sum is None:
        return ""
    found = entity.fields[board.sum]
    if found.type.name == "currency":
        return format_money(value or 0, found.schema.get("x-currency"))
    return format_number(value or 0)


def totals(entity: Entity, board: Board, user: User) -> dict[str, dict[str, Any]]:
    """Each column's count and sum, by column key, counted as the user (one query)."""
    metrics = {"count": "count"}
    if board.sum is not None:
        metrics["sum"] = f"sum:{board.sum}"
    rows = _query(entity, board, user).aggregate(board.group, metrics)
    found = {"" if r[board.group] is None else str(r[board.group]): r for r in rows}
    answer = {}
    for key in dict.fromkeys([c["key"] for c in columns_of(entity, board)] + list(found)):
        row = found.get(key) or {}
        count, total = row.get("count", 0), row.get("sum")
        answer[key] = {"count": count, "count_text": format_number(count), "sum": total,
                       "sum_text": _sum_text(entity, board, total)}
    return answer


def _list_url(entity: Entity, board: Board, value: Any) -> str:
    """The list behind a column (where the cards it cannot show are)."""
    tree = _where(board, {"==": [{"var": board.group}, value]})
    from .lists import rule_text  # lists builds on this module's boards

    return url_for("screens.list_view", entity=entity.name, filter=rule_text(tree))


def _fill(entity: Entity, board: Board, user: User, columns: list[dict[str, Any]]) -> None:
    """Each column's first cards, count, sum and the note of how many more there are.
    Records whose value is none of the columns' (an option or state since removed) get a
    column of their own, labelled by the value, and those without one a "No value"
    column: no record disappears from the board."""
    figures = totals(entity, board, user)
    keys = {c["key"] for c in columns}
    for key, figure in figures.items():
        if key in keys or not figure.get("count"):
            continue
        if key == "":
            columns.append({"key": "", "value": None, "label": gettext("No value"),
                            "color": None})
        else:
            columns.append({"key": key, "value": key, "label": key, "color": None,
                            "extra": True})
    for column in columns:
        query = _query(entity, board, user, {"==": [{"var": board.group}, column["value"]]})
        query = query.sort(*(board.sort or ("-updated_at",))).limit(CARDS)
        column.update(figures[column["key"]])
        column["cards"] = query.page().items
        column["more"] = max(column["count"] - len(column["cards"]), 0)
        column["list_url"] = _list_url(entity, board, column["value"])


@bp.get("/<entity>/kanban")
def kanban(entity: str) -> tuple[str, int]:
    """The board; an entity with nothing to group by gets a page that says so."""
    user = the_user()
    ent = current_catalog().entity(entity)
    current_workspace().query(entity, user=user)  # refuses one who may not read it
    title = label(ent.label, ent.name)
    board = board_for(ent, user)
    if board is None:
        return render_template("app/kanban.html", nav=navigation(user), entity=ent,
                               title=title, board=None, columns=[]), 404
    columns = columns_of(ent, board)
    _fill(ent, board, user, columns)
    cards = [card for column in columns for card in column["cards"]]
    return render_template(
        "app/kanban.html", nav=navigation(user), entity=ent, title=title, board=board,
        columns=columns, title_of=lambda record: record_title(ent, record),
        fields=[{"name": n, "label": field_label(ent, n)} for n in board.fields],
        sum_label=field_label(ent, board.sum) if board.sum else None,
        titles=reference_titles(ent, cards, board.fields, user)), 200


# --- moving a card ------------------------------------------------------------------------

def _refused(message: str, status: int, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, **extra}), status


@bp.post("/<entity>/<record_id>/move")
def kanban_move(entity: str, record_id: str) -> tuple[Response, int]:
    """Move a card into the column ``to``: the workflow transition that leads there (its
    required fields from the form, else a 422 listing them), or a new value of the select
    field. Answers every column's count and sum, or why the move was refused."""
    user = the_user()
    try:
        ent = current_catalog().entity(entity)
        board = board_for(ent, user)
        if board is None:
            return _refused(gettext("There is no kanban board for this entity."), 404)
        target = request.form.get("to", "")
        version = parse_id(request.form.get("version"))
        if board.group == "state":
            record = _transition(ent, record_id, target, version, user)
        else:
            record = _set_option(ent, board, record_id, target, version, user)
        if isinstance(record, tuple):
            return record
    except ValidationError as error:
        return _refused(_messages(ent, error), 422, errors=error.errors)
    except BlocksError as error:
        return _refused(error.message, status_of(error) or 400)
    return jsonify({"id": record["id"], "version": record["version"],
                    "columns": totals(ent, board, user)}), 200


def _set_option(ent: Entity, board: Board, record_id: str, target: str,
                version: int | None, user: User) -> dict[str, Any] | tuple[Response, int]:
    options = {c["key"]: c["value"] for c in columns_of(ent, board)}
    if target and target not in options:
        return _refused(gettext("There is no column %(column)s.", column=target), 400)
    return current_workspace().records.update(
        ent.name, record_id, {board.group: options.get(target)}, version=version, user=user)


def _transition(ent: Entity, record_id: str, target: str, version: int | None,
                user: User) -> dict[str, Any] | tuple[Response, int]:
    """Take the transition into ``target`` the user may take, filling what it requires
    from the form; what is missing comes back as a 422 the page asks for in a dialog."""
    ws = current_workspace()
    record = ws.records.get(ent.name, record_id, user=user)
    if record.get("state") == target:
        return record
    steps = [t for t in ws.records.transitions(ent.name, record_id, user=user)
             if t["to"] == target]
    if not steps:
        return _no_way(ent, record, target)
    step = min(steps, key=lambda t: (not t["guard_holds"], len(t["missing"])))
    # The dialog's answer (``submitted``) counts an unticked box as False.
    values = {name: parse_input(ent, name, request.form) for name in step["missing"]
              if name in request.form or "submitted" in request.form}
    still = [name for name in step["missing"] if values.get(name) is None]
    if still:
        return jsonify({"error": gettext("Fill in what “%(transition)s” requires.",
                                         transition=label(step["label"], step["name"])),
                        "transition": label(step["label"], step["name"]),
                        "missing": [_asked(ent, name) for name in still]}), 422
    try:
        return ws.records.transition(ent.name, record_id, step["name"],
                                     values={k: v for k, v in values.items() if v is not None},
                                     version=version, user=user)
    except ValidationError as error:
        bad = [name for name in step["require"] if name in error.errors]
        if bad and "submitted" in request.form:
            return jsonify({"error": _messages(ent, error), "errors": error.errors,
                            "transition": label(step["label"], step["name"]),
                            "missing": [_asked(ent, name) for name in bad]}), 422
        guard = ent.workflow.transitions[step["name"]].guard_message
        if "" in error.errors and guard:
            return _refused(label(guard, error.message), 422)
        raise


def _no_way(ent: Entity, record: Mapping[str, Any], target: str) -> tuple[Response, int]:
    """Why no transition the user may take leads into ``target``: their roles, or none
    leads there from the record's state."""
    workflow = ent.workflow
    if target not in workflow.states:
        return _refused(gettext("There is no column %(column)s.", column=target), 400)
    names = {"from": state_label(ent, record.get("state")), "to": state_label(ent, target)}
    barred = [t for t in workflow.transitions.values()
              if t.to == target and t.leaves(record.get("state"))]
    if barred:
        return _refused(gettext("Your role may not move a record from %(from)s to %(to)s.",
                                **names), 403)
    return _refused(gettext("A record cannot move from %(from)s to %(to)s.", **names), 409)


def _asked(ent: Entity, name: str) -> dict[str, Any]:
    """A field the dialog asks for: its name, label, input type and options."""
    kind = field_kind(ent, name)
    asked: dict[str, Any] = {"name": name, "label": field_label(ent, name),
                             "input": INPUT_TYPES.get(kind, "text")}
    if kind == "select":
        asked["options"] = select_choices(ent, name)
    return asked


def _messages(ent: Entity, error: ValidationError) -> str:
    """The engine's per-field messages as one sentence, fields by their labels."""
    return "; ".join(f"{field_label(ent, key)}: {', '.join(messages)}" if key
                     else ", ".join(messages) for key, messages in error.errors.items())
