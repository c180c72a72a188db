"""The rfm plugin's settings: their JSON Schema and their check against the entities the
workspace has published, which the schema cannot know. Both run when a workspace enables
the plugin or changes its settings (``blocks_check_settings``), which refuses settings
that do not fit; the check runs again at each run, since the entities may change after
the plugin was enabled: a run never starts on a field that does not exist."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from croniter import croniter

from blockscrm.engine import DefinitionError, Entity, QueryError, Workspace

from .scoring import SEGMENTS

NAME = "rfm"


def _field_name(description: str, default: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1, "description": description}
    if default is not None:
        schema["default"] = default
    return schema


SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["customer_entity", "order_entity", "order_customer_field",
                 "order_amount_field", "order_date_field"],
    "additionalProperties": False,
    "properties": {
        "customer_entity": _field_name("The entity whose records are scored."),
        "order_entity": _field_name("The entity of their orders."),
        "order_customer_field": _field_name("The order's reference to its customer."),
        "order_amount_field": _field_name("The order's amount (a number field)."),
        "order_date_field": _field_name("The order's date (a date or date-time field)."),
        "order_filter": {"type": ["string", "null"], "default": None,
                         "description": 'Which orders count, in the rule language '
                                        '(stage == "won"); all of them when empty.'},
        "window_days": {"type": "integer", "minimum": 1, "maximum": 36500, "default": 365,
                        "description": "Only orders of the last so many days count."},
        "schedule": {"type": "string", "pattern": r"^\S+( +\S+){4}$", "default": "0 2 * * *",
                     "description": "When to recompute, a cron expression in UTC "
                                    "(default: nightly at 02:00)."},
        "recency_field": _field_name("The customer's recency score, 1-5.", "rfm_recency"),
        "frequency_field": _field_name("The customer's frequency score, 1-5.",
                                       "rfm_frequency"),
        "monetary_field": _field_name("The customer's monetary score, 1-5.", "rfm_monetary"),
        "code_field": _field_name('The three scores as one code ("545").', "rfm_code"),
        "segment_field": _field_name("The customer's segment (champions, at_risk, lost…).",
                                     "rfm_segment"),
    },
}


@dataclass(frozen=True)
class Settings:
    """A workspace's settings, with the schema's defaults filled in."""

    customer_entity: str
    order_entity: str
    order_customer_field: str
    order_amount_field: str
    order_date_field: str
    order_filter: str | None = None
    window_days: int = 365
    schedule: str = "0 2 * * *"
    recency_field: str = "rfm_recency"
    frequency_field: str = "rfm_frequency"
    monetary_field: str = "rfm_monetary"
    code_field: str = "rfm_code"
    segment_field: str = "rfm_segment"

    @classmethod
    def of(cls, ws: Workspace) -> Settings:
        """The settings the workspace keeps, as stored (they passed the schema).

        :raises NotFound: the plugin is not enabled in this workspace.
        """
        return cls.read(ws.plugins.settings(NAME))

    @classmethod
    def read(cls, stored: Mapping[str, Any]) -> Settings:
        """Settings that passed the schema, with its defaults for what they leave out."""
        return cls(**{f.name: stored[f.name] for f in fields(cls) if f.name in stored})

    @property
    def customer_fields(self) -> tuple[str, str, str, str, str]:
        """Every customer field a run writes, in the order of its values."""
        return (self.recency_field, self.frequency_field, self.monetary_field,
                self.code_field, self.segment_field)

    def problems(self, ws: Workspace) -> list[tuple[str, str]]:
        """What does not fit the published entities, each problem keyed by its setting
        (``/order_amount_field``)."""
        entities = ws.catalog().entities
        problems: list[tuple[str, str]] = []
        if not croniter.is_valid(self.schedule):
            problems.append(("/schedule", f"{self.schedule!r} is not a cron expression"))
        customer = entities.get(self.customer_entity)
        order = entities.get(self.order_entity)
        for key, entity in (("customer_entity", customer), ("order_entity", order)):
            if entity is None:
                problems.append((f"/{key}", f"there is no entity {getattr(self, key)!r}"))
        if order is not None:
            problems += _order_problems(self, order) or _filter_problems(self, ws)
        if customer is not None:
            problems += _customer_problems(self, customer)
        return problems

    def check(self, ws: Workspace) -> None:
        """Check the settings against the published entities, as they are now.

        :raises DefinitionError: every problem, keyed by the setting (``/order_amount_field``).
        """
        problems = self.problems(ws)
        if problems:
            raise DefinitionError(problems, "The settings of the plugin rfm do not fit this "
                                  "workspace: " + "; ".join(f"{k}: {m}" for k, m in problems))


def _missing(setting: str, entity: Entity, name: str) -> tuple[str, str]:
    return f"/{setting}", f"{entity.name} has no field {name!r}"


def _order_problems(settings: Settings, order: Entity) -> list[tuple[str, str]]:
    problems = []
    reference = order.fields.get(settings.order_customer_field)
    if reference is None:
        problems.append(_missing("order_customer_field", order, settings.order_customer_field))
    elif reference.ref != settings.customer_entity:
        problems.append(("/order_customer_field", f"{reference.name!r} is not a reference to "
                                                  f"{settings.customer_entity}"))
    amount = order.fields.get(settings.order_amount_field)
    if amount is None:
        problems.append(_missing("order_amount_field", order, settings.order_amount_field))
    elif amount.value_schema.get("type") not in ("number", "integer"):
        problems.append(("/order_amount_field", f"{amount.name!r} is not a number field"))
    date = order.fields.get(settings.order_date_field)
    if date is None:
        problems.append(_missing("order_date_field", order, settings.order_date_field))
    elif date.value_schema.get("format") not in ("date", "date-time"):
        problems.append(("/order_date_field", f"{date.name!r} is not a date field"))
    return problems


def _filter_problems(settings: Settings, ws: Workspace) -> list[tuple[str, str]]:
    if not settings.order_filter:
        return []
    try:
        ws.query(settings.order_entity).filter(settings.order_filter)
    except QueryError as exc:
        return [("/order_filter", m) for m in exc.errors.get("filter", [])]
    return []


def _customer_problems(settings: Settings, customer: Entity) -> list[tuple[str, str]]:
    problems = []
    kinds = {settings.recency_field: ("recency_field", ("integer", "number")),
             settings.frequency_field: ("frequency_field", ("integer", "number")),
             settings.monetary_field: ("monetary_field", ("integer", "number")),
             settings.code_field: ("code_field", ("string",)),
             settings.segment_field: ("segment_field", ("string",))}
    for name, (setting, types) in kinds.items():
        field = customer.fields.get(name)
        if field is None:
            problems.append(_missing(setting, customer, name))
        elif field.value_schema.get("type") not in types:
            problems.append((f"/{setting}", f"{name!r} does not hold "
                                            f"{'a number' if 'number' in types else 'text'}"))
    segment = customer.fields.get(settings.segment_field)
    lacking = sorted(set(SEGMENTS) - set(segment.value_schema.get("enum", SEGMENTS))
                     ) if segment is not None else []
    if lacking:
        problems.append(("/segment_field", f"{settings.segment_field!r} lacks the options "
                                           f"{', '.join(lacking)}"))
    return problems
