"""The page: one Jinja2 template, the report's data as JSON, and the JavaScript inlined.

plotly.js comes from the pinned plotly wheel (``plotly/package_data/plotly.min.js``); Tabulator 6.5.3 is
vendored from the npm registry under ``vendor/`` with its licence.  Nothing is fetched when the page is
viewed.
"""

from __future__ import annotations

import json
import secrets
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def _script_safe(text: str) -> str:
    """Text that cannot end the <script> element it is inlined in."""
    return text.replace("</", "<\\/")


def _script_safe_bytes(data: bytes) -> bytes:
    """:func:`_script_safe` of UTF-8 text kept as bytes (no byte of a multi-byte character is ``<`` or
    ``/``), line ends as ``read_text`` gives them: 4.8 MB of plotly.js is never decoded and encoded again."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"</", b"<\\/")


@cache
def assets() -> dict[str, str]:
    """The small assets rendered into the page's text (the large ones are :func:`_asset_bytes`)."""
    return {
        "tabulator_css": (HERE / "vendor" / "tabulator.min.css").read_text(encoding="utf-8"),
        "report_js": _script_safe((HERE / "templates" / "report.js").read_text(encoding="utf-8")),
        "report_css": (HERE / "templates" / "report.css").read_text(encoding="utf-8"),
    }


@cache
def _env() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def prefetch() -> None:
    """Load jinja2, the page template and the inlined assets (~5 MB of JavaScript) ahead of :func:`render`
    (a sweep calls it in a thread while its runs execute)."""
    _env().get_template("report.html.j2")
    _asset_bytes()


def page(name: str, **context: Any) -> str:
    """Another page of the same templates (``s1mple explore``'s listing)."""
    return _env().get_template(name).render(**context)


#: Assets spliced into the encoded page as bytes, not rendered into its text: plotly.js (4.8 MB, not all
#: ASCII) would widen the whole page to 2 bytes a character, be copied into it and encoded again per report.
_SPLICED = ("plotly_js", "tabulator_js")
#: Where the template puts each spliced asset: a per-process random mark no page text can contain.
_MARKS = {name: f"\x00{secrets.token_hex(16)}:{name}\x00" for name in _SPLICED}


@cache
def _asset_bytes() -> dict[str, bytes]:
    """plotly.js (from the plotly wheel) and Tabulator (vendored), script-safe UTF-8."""
    files = {
        "plotly_js": resources.files("plotly") / "package_data" / "plotly.min.js",
        "tabulator_js": HERE / "vendor" / "tabulator.min.js",
    }
    return {name: _script_safe_bytes(files[name].read_bytes()) for name in _SPLICED}


def render(data: dict[str, Any], table: str | None = None) -> bytes:
    """The self-contained page of ``data`` (see :mod:`.build`), UTF-8; ``table``: the runs table as JSON
    text."""
    payload = _script_safe(json.dumps(data, default=str, allow_nan=False))
    text = (
        _env()
        .get_template("report.html.j2")
        .render(
            data=data,
            data_json=payload,
            table_json=_script_safe(table) if table else "null",
            **{**assets(), **_MARKS},
        )
    )
    page = text.encode()
    pieces, at = [], 0
    for name in sorted(_SPLICED, key=lambda n: page.find(_MARKS[n].encode())):
        mark = _MARKS[name].encode()
        where = page.index(mark, at)
        pieces += [page[at:where], _asset_bytes()[name]]
        at = where + len(mark)
    pieces.append(page[at:])
    return b"".join(pieces)
