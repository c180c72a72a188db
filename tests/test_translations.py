"""The platform's own text in every language it speaks, and values formatted for the user.

Strings are found the way ``pybabel extract -F babel.cfg`` finds them, so a screen that
adds a sentence without its Chinese fails here, naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from flask import g

from blockscrm.platform import i18n
from blockscrm.platform.app import create_app

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def platform_messages() -> set[str]:
    found = set()
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT / "platform"), method_map, options):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("language", [code for code in i18n.LANGUAGES if code != "en"])
def test_every_platform_string_is_translated(language: str) -> None:
    path = ROOT / "platform" / "translations" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale=language)
    messages = platform_messages()
    assert len(messages) > 50
    missing = sorted(m for m in messages if not (catalog.get(m) and all(
        forms(catalog.get(m).string))))
    assert missing == [], f"{len(missing)} strings lack a {language} translation"
    for message in messages:
        for text in forms(catalog.get(message).string):
            assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(message)), message


def forms(translated: str | tuple[str, ...]) -> tuple[str, ...]:
    """A translation's texts: one, or one per plural form."""
    return (translated,) if isinstance(translated, str) else tuple(translated)


def test_values_are_formatted_for_the_language_and_time_zone(tmp_path: Path) -> None:
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "SECRET_KEY": "k"})
    with app.test_request_context():
        g.language = "en"
        assert i18n.format_money(1234.5, "EUR") == "€1,234.50"
        assert i18n.format_number(1234567.891) == "1,234,567.891"
        assert i18n.format_percent(12.5) == "12.5%"
        assert i18n.format_date("2026-05-01") == "May 1, 2026"
        assert i18n.gettext("Log in") == "Log in"
        assert i18n.label({"en": "Deals", "zh": "交易"}, "deal") == "Deals"
        g.language = "zh"
        assert i18n.format_money(1234.5, "CNY") == "¥1,234.50"
        assert i18n.format_date("2026-05-01") == "2026年5月1日"
        assert i18n.gettext("Log in") == "登录"
        assert i18n.label({"en": "Deals", "zh": "交易"}, "deal") == "交易"
        assert i18n.label({"en": "Amount"}, "amount") == "Amount"  # English stands in
        g.user = type("U", (), {"time_zone": "Asia/Shanghai", "language": "zh"})()
        assert i18n.format_datetime("2026-05-01T23:30:00Z").startswith("2026年5月2日 07:30")
    app.extensions["blocks"].close()
