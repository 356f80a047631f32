"""The page: one Jinja2 template, the report's data as JSON, and the JavaScript inlined.

plotly.js comes from the pinned plotly wheel (``plotly/package_data/plotly.min.js``); Tabulator 6.5.3 is
vendored from the npm registry under ``vendor/`` with its licence.  Nothing is fetched when the page is
viewed.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def _script_safe(text: str) -> str:
    """Text that cannot end the <script> element it is inlined in."""
    return text.replace("</", "<\\/")


@cache
def assets() -> dict[str, str]:
    plotly_js = (resources.files("plotly") / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    vendor = HERE / "vendor"
    return {
        "plotly_js": _script_safe(plotly_js),
        "tabulator_js": _script_safe((vendor / "tabulator.min.js").read_text(encoding="utf-8")),
        "tabulator_css": (vendor / "tabulator.min.css").read_text(encoding="utf-8"),
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
    assets()


def page(name: str, **context: Any) -> str:
    """Another page of the same templates (``s1mple explore``'s listing)."""
    return _env().get_template(name).render(**context)


def render(data: dict[str, Any], table: str | None = None) -> str:
    """The self-contained page of ``data`` (see :mod:`.build`); ``table``: the runs table as JSON text."""
    payload = _script_safe(json.dumps(data, default=str, allow_nan=False))
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            data=data,
            data_json=payload,
            table_json=_script_safe(table) if table else "null",
            **assets(),
        )
    )
