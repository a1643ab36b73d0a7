"""Sphinx extension for the OncoLab book's HTML: two fixes that keep the browser console clean.

1. Each inline script is written once per page.

With Sphinx 7.4, an inline script that an extension registers with
``app.add_js_file(None, body=...)`` during the build (sphinx-thebe's ``const THEBE_JS_URL``,
sphinx-togglebutton's selector) reaches the page twice: once as registered and once again,
as filename ``''``, when the HTML builder copies the registry. A ``const`` declared twice is
a JavaScript error on every page. This keeps the first copy of each identical inline script
(same body, same attributes); scripts loaded from files are left as they are.

2. The page names a colour mode. pydata-sphinx-theme reads ``default_mode`` from the page
context; Jupyter Book leaves it empty, and the theme then logs "Got invalid theme mode"
as a console error on a reader's first visit. ``auto`` (follow the reader's system setting)
is used unless the configuration's ``html_context`` sets another.
"""

from __future__ import annotations


def _key(js) -> tuple:
    attrs = dict(getattr(js, "attributes", {}) or {})
    attrs.pop("priority", None)
    return (getattr(js, "filename", None) or "", tuple(sorted(attrs.items())))


def set_default_mode(app, pagename, templatename, context, doctree) -> None:
    if context.get("default_mode") not in {"light", "dark", "auto"}:
        context["default_mode"] = "auto"


def dedupe_inline_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        if getattr(js, "filename", None):  # a file: Sphinx already de-duplicates these
            kept.append(js)
            continue
        key = _key(js)
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", dedupe_inline_scripts, priority=900)
    app.connect("html-page-context", set_default_mode, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
