"""The HTML the pages share: escaping, times, tables that turn into cards, the page's frame.

Every value goes through `e`: camera names, labels and error messages come from outside. Times
are ISO UTC inside `<time datetime>` with readable UTC text, which view.js rewrites to the
browser's local time (without scripts the UTC stays). Each table cell names its column in
`data-label`, which the phone layout shows beside the value when a row becomes a card.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any


def e(value: Any) -> str:
    """Text for HTML, quotes included (it also goes into attributes)."""
    return escape(str(value), quote=True)


def page(title: str, assets: str, body: str, *, refresh: int | None = None) -> str:
    """A whole page: `assets` is the folder of view.css and view.js relative to the page."""
    noscript = (
        f'<noscript><meta http-equiv="refresh" content="{refresh}"></noscript>' if refresh else ""
    )
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{e(title)}</title>",
            f'<link rel="stylesheet" href="{e(assets)}view.css">'
            f'<script src="{e(assets)}view.js" defer></script>',
            *([noscript] if noscript else []),
            "</head>",
            body,
            "</html>",
        ]
    )


def section(title: str, body: str, extra: str = "") -> str:
    return f"<section{extra}><h2>{e(title)}</h2>{body}</section>"


def table(name: str, heads: Sequence[str], rows: Iterable[str], empty: str) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in heads)
    body = "".join(rows)
    return (
        f'<table id="{name}" class="cards"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
        f'<p class="empty" id="{name}-empty"{"" if not body else " hidden"}>{e(empty)}</p>'
    )


def row(row_id: str | None, heads: Sequence[str], cells: Iterable[str]) -> str:
    """A table row; each cell names its column (`heads`) for the phone's cards."""
    tds = "".join(
        f'<td data-label="{e(head)}">{cell}</td>' if head else f"<td>{cell}</td>"
        for head, cell in zip(heads, cells, strict=True)
    )
    return f'<tr data-id="{e(row_id)}">{tds}</tr>' if row_id else f"<tr>{tds}</tr>"


def time(stamp: str | None) -> str:
    """An ISO time as the page shows it without scripts: 2026-11-23 12:19:19 UTC."""
    if not stamp:
        return ""
    return f'<time datetime="{e(stamp)}">{e(stamp[:10])} {e(stamp[11:19])} UTC</time>'


def seconds(after: float | None) -> str:
    return "" if after is None else f'<span class="after">+{after:.2f} s</span>'


def label_chips(labels: Iterable[dict[str, Any]]) -> str:
    """Label chips: name, best score, and "xN" when N boxes of it were found in one image."""
    return "".join(
        f'<span class="label">{e(found["label"])} <b>{float(found["score"]):.2f}</b>'
        + (f" &times;{int(found['count'])}" if int(found["count"]) > 1 else "")
        + "</span>"
        for found in labels
    )


def action(path: str, verb: str, note: str = "") -> str:
    """A form that POSTs to `path` (relative to the page): retry or forget."""
    hint = f' title="{e(note)}"' if note else ""
    return (
        f'<form class="action" method="post" action="{e(path)}">'
        f'<button type="submit" class="{e(verb)}"{hint}>{e(verb)}</button></form>'
    )
