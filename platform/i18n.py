"""The screens in the user's language.

Three sources, one per kind of text:

- the platform's own words go through gettext; the catalogues are ``.po`` files in
  ``translations/`` (``pybabel extract``/``update`` keep them), compiled in memory the
  first time a language is asked for, so there is no build step and no binary in git;
- metadata carries its labels itself (``{"en": "Deals", "zh": "交易"}``): :func:`label`
  picks the user's language, then English, then the name;
- numbers, money and dates are formatted by Babel from CLDR data, for the user's locale
  and time zone.

The language is the user's own (``language`` on their account), else the browser's
``Accept-Language`` when it names one we speak, else English.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from decimal import Decimal
from gettext import NullTranslations
from io import BytesIO
from pathlib import Path
from typing import Any

from babel import Locale, numbers
from babel import dates as babel_dates
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import NumberPattern
from babel.support import Translations
from flask import Flask, g, has_request_context, request

from .auth import current_user

#: The languages the platform's own text is translated into, each in its own words.
LANGUAGES = {"en": "English", "zh": "简体中文"}
DEFAULT = "en"
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


@functools.cache
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of ``language`` (English needs none)."""
    path = TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"
    if not path.is_file():
        return NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def current_language() -> str:
    """The language of this request's screens."""
    if not has_request_context():
        return DEFAULT
    if "language" not in g:
        g.language = _choose_language()
    language: str = g.language
    return language


def _choose_language() -> str:
    user = current_user()
    if user is not None:
        base = (user.language or "").split("-")[0]
        if base in LANGUAGES:
            return base
    best = request.accept_languages.best_match(
        [*LANGUAGES, "zh-CN", "zh-Hans", "zh-TW", "en-US", "en-GB"])
    return (best or DEFAULT).split("-")[0]


def time_zone() -> zoneinfo.ZoneInfo:
    user = current_user() if has_request_context() else None
    try:
        return zoneinfo.ZoneInfo(user.time_zone if user else "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def gettext(message: str, **variables: Any) -> str:
    text = translations(current_language()).gettext(message)
    return text % variables if variables else text


def pgettext(context: str, message: str, **variables: Any) -> str:
    """``gettext`` for a word whose translation depends on where it stands ("Open" as a
    link, or as a workflow state's category)."""
    text = translations(current_language()).pgettext(context, message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    text = translations(current_language()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


def label(labels: Any, fallback: str) -> str:
    """A metadata label in the user's language, else English, else ``fallback``."""
    if not isinstance(labels, dict):
        return fallback
    return str(labels.get(current_language()) or labels.get(DEFAULT)
               or next(iter(labels.values()), None) or fallback)


@functools.cache
def _locale_of(language: str) -> Locale:
    return Locale.parse(language)


def _locale() -> Locale:
    return _locale_of(current_language())


@functools.cache
def _pattern(language: str, kind: str, scale: int | None = None) -> NumberPattern:
    """A locale's number pattern, parsed once: a list page formats hundreds of values, and
    Babel looks the pattern up and parses it again on every call."""
    locale = _locale_of(language)
    if kind == "currency":
        return locale.currency_formats["standard"]
    if scale is None:
        return locale.decimal_formats[None]
    return numbers.parse_pattern("#,##0" + ("." + "0" * scale if scale else ""))


def format_number(value: Any, scale: int | None = None) -> str:
    """``1234.5`` as ``1,234.5`` (en) or ``1,234.5`` (zh); ``scale`` fixes the decimals."""
    if value is None or isinstance(value, bool):
        return ""
    language = current_language()
    return _pattern(language, "decimal", scale).apply(Decimal(str(value)),
                                                        _locale_of(language))


def format_money(value: Any, currency: str | None) -> str:
    """An amount with its currency's symbol and decimals, for the user's locale."""
    if value is None:
        return ""
    if not currency:
        return format_number(value, 2)
    language = current_language()
    return _pattern(language, "currency").apply(
        Decimal(str(value)), _locale_of(language), currency=currency,
        currency_digits=True)


def format_percent(value: Any) -> str:
    """A ``percent`` field holds the number shown (``12.5`` is 12.5 %)."""
    if value is None:
        return ""
    return numbers.format_percent(Decimal(str(value)) / 100, format="#,##0.##%",
                                  locale=_locale())


def format_date(value: Any) -> str:
    if not value:
        return ""
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
    return babel_dates.format_date(day, format="medium", locale=_locale())


def format_datetime(value: Any) -> str:
    """A UTC timestamp (``2026-05-01T09:30:00Z``) in the user's time zone."""
    if not value:
        return ""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(
        str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return babel_dates.format_datetime(moment, format="medium", tzinfo=time_zone(),
                                           locale=_locale())
    except OverflowError:  # 9999-12-31T23:00Z is past the calendar east of UTC
        return str(value)


def init_app(app: Flask) -> None:
    """gettext and the formatting filters in every template."""
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=True, pgettext=pgettext)
    app.jinja_env.filters.update(label=label, number=format_number, money=format_money,
                                 percent=format_percent, date=format_date,
                                 datetime=format_datetime)
    app.jinja_env.globals.update(current_language=current_language, LANGUAGES=LANGUAGES)
