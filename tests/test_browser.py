"""The built book in a real browser: every chapter loads in headless Chromium without console
errors or broken images, solutions stay folded until asked for, and no internal link is broken.

Checks the HTML that ``make book`` writes to ``_build/html`` (or the folder named by
``ONCOLAB_HTML``; ``ONCOLAB_BOOK_SOURCE`` names the sources it was built from). The pages are served over HTTP on 127.0.0.1. Requests to other hosts (the
MathJax CDN, the Colab badge image) are answered locally with an empty response, so the check
runs offline and covers the book's own files; the hosts stubbed are printed. A screenshot of
the first chapter is saved to ``_build/browser/``.

The student edition (``make student-book``, or the build of tests/test_student_versions.py in
``_build/student-book``; ``ONCOLAB_STUDENT_HTML`` names another) is checked the same way for
what a student must and must not see: every exercise, and no solution.

Needs Debian's ``chromium`` package (``apt-get install -y chromium``); skipped only when it is
not installed.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import sys
import threading
from functools import partial
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest
import yaml

ROOT = Path(os.environ.get("ONCOLAB_BOOK_SOURCE", Path(__file__).resolve().parents[1]))
HTML = Path(os.environ.get("ONCOLAB_HTML", ROOT / "_build" / "html"))
CHROMIUM = os.environ.get("ONCOLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = ROOT / "_build" / "browser"
TINY_SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'

pytestmark = pytest.mark.book


def _built() -> Path:
    if not (HTML / "index.html").is_file():
        pytest.fail(f"no built book at {HTML}: run `make book` first (or set ONCOLAB_HTML)")
    return HTML


def _toc_pages() -> list[str]:
    """Every page of the book, as paths relative to the HTML root (``chapters/01_x.html``)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [f"{f}.html" for f in files]


def _chapter_pages() -> list[str]:
    return [f"chapters/{p.stem}.html" for p in sorted((ROOT / "chapters").glob("*.ipynb"))]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    root = _built()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file() or not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _visit(browser, site: str, page_path: str, screenshot: Path | None = None) -> dict:
    """Load one page; return its console errors, page errors, failed requests and broken images."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    found = {"console": [], "pageerror": [], "failed": [], "stubbed": set()}

    def route(r):
        url = r.request.url
        if url.startswith(site):
            return r.continue_()
        found["stubbed"].add(urlparse(url).hostname)
        if r.request.resource_type == "image":
            return r.fulfill(status=200, body=TINY_SVG, content_type="image/svg+xml")
        return r.fulfill(status=200, body=b"", content_type="text/plain")

    page.route("**/*", route)
    page.on("console", lambda m: found["console"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: found["pageerror"].append(str(e)))
    page.on("requestfailed", lambda r: found["failed"].append(f"{r.url} ({r.failure})"))
    page.on("response", lambda r: found["failed"].append(f"{r.url} (HTTP {r.status})")
            if r.url.startswith(site) and r.status >= 400 else None)
    page.set_default_timeout(90_000)  # generous: CI machines can be busy
    page.goto(f"{site}/{page_path}", wait_until="load")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    try:  # let late scripts run; a page that never goes quiet is not an error by itself
        page.wait_for_load_state("networkidle", timeout=10_000)
    except PlaywrightTimeout:
        pass
    found["images"] = page.evaluate(
        """() => Array.from(document.images).map(i => ({src: i.currentSrc || i.src,
                 ok: i.complete && i.naturalWidth > 0, local: i.src.startsWith(location.origin)}))""")
    found["title"] = page.title()
    # sphinx-exercise renders a solution as ``div.solution.admonition`` (``.dropdown`` when it
    # folds); sphinx-togglebutton hides everything after the title (visibility: hidden, height
    # 0) until the title is clicked. Every solution must start folded.
    sols = page.locator("div.solution.admonition")
    found["solutions"] = []
    for i in range(sols.count()):
        body = sols.nth(i).locator(".admonition-title ~ *").first
        found["solutions"].append({"id": sols.nth(i).get_attribute("id"),
                                   "hidden": body.count() == 1 and not body.is_visible()})
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        tmp = screenshot.with_name(screenshot.name + ".partial.png")
        page.screenshot(path=str(tmp), full_page=True)
        tmp.replace(screenshot)
    if found["solutions"]:
        # the fold button in the title (clicking the title's link text would follow the link)
        sols.first.locator(".admonition-title .toggle-button").click()
        page.wait_for_timeout(500)
        found["opened"] = sols.first.locator(".admonition-title ~ *").first.is_visible()
    ctx.close()
    return found


def test_every_chapter_page_was_built():
    root = _built()
    missing = [p for p in _chapter_pages() + _toc_pages() if not (root / p).is_file()]
    assert not missing, f"pages missing from {root}: {missing}"


def test_pages_load_in_chromium(site, browser):
    pages = list(dict.fromkeys(["index.html", *_toc_pages(), *_chapter_pages()]))
    problems, stubbed = [], set()
    first_chapter = _chapter_pages()[0] if _chapter_pages() else None
    for p in pages:
        shot = SHOTS / (Path(p).stem + ".png") if p == first_chapter else None
        r = _visit(browser, site, p, shot)
        stubbed |= r["stubbed"]
        if r["console"]:
            problems.append(f"{p}: console errors {r['console'][:3]}")
        if r["pageerror"]:
            problems.append(f"{p}: JavaScript errors {r['pageerror'][:3]}")
        if r["failed"]:
            problems.append(f"{p}: failed requests {r['failed'][:3]}")
        broken = [i["src"] for i in r["images"] if i["local"] and not i["ok"]]
        if broken:
            problems.append(f"{p}: images that did not load {broken[:3]}")
        if p in _chapter_pages():
            local_imgs = [i for i in r["images"] if i["local"] and i["ok"] and "/_images/" in i["src"]]
            if not local_imgs:
                problems.append(f"{p}: no figure (no image under _images/): was the chapter executed?")
            not_hidden = [s["id"] for s in r["solutions"] if s["hidden"] is not True]
            if not_hidden:
                problems.append(f"{p}: solutions shown before being unfolded: {not_hidden}")
            if r["solutions"] and r.get("opened") is not True:
                problems.append(f"{p}: clicking a solution's title did not show it")
    print(f"checked {len(pages)} pages; requests to other hosts answered locally: {sorted(stubbed)}")
    if first_chapter:
        assert (SHOTS / (Path(first_chapter).stem + ".png")).stat().st_size > 10_000
    assert not problems, "\n".join(problems)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(a[key])
        for key in ("href", "src"):
            if a.get(key) and tag in {"a", "img", "link", "script", "source", "iframe"}:
                self.links.append(a[key])


def _parse(path: Path, cache: dict) -> _Links:
    if path not in cache:
        p = _Links()
        p.feed(path.read_text(errors="replace"))
        cache[path] = p
    return cache[path]


def test_no_broken_internal_links():
    root = _built()
    cache: dict = {}
    broken = []
    pages = sorted(p for p in root.rglob("*.html")
                   if p.relative_to(root).parts[0] not in {"_static", "_sources"})  # theme templates
    for page in pages:
        for link in _parse(page, cache).links:
            u = urlparse(link)
            if u.scheme or link.startswith("//") or link.startswith("javascript:"):
                continue
            target = page if not u.path else Path(unquote(urljoin(page.as_uri(), u.path)[len("file://"):]))
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(root)} -> {link}")
                continue
            if u.fragment and target.suffix == ".html" and unquote(u.fragment) not in _parse(target, cache).ids:
                broken.append(f"{page.relative_to(root)} -> {link} (no such anchor)")
    print(f"checked the links of {len(pages)} pages")
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:40])



# --------------------------------------------------------------------------------------------
# the student edition (make student-book; built by tests/test_student_versions.py)
# --------------------------------------------------------------------------------------------
STUDENT_HTML = Path(os.environ.get("ONCOLAB_STUDENT_HTML", ROOT / "_build" / "student-book" / "_build" / "html"))


@pytest.fixture(scope="module")
def student_site():
    if not (STUDENT_HTML / "index.html").is_file():
        pytest.fail(f"no student edition at {STUDENT_HTML}: run `make student-book` first (or set ONCOLAB_STUDENT_HTML)")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(STUDENT_HTML)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_student_edition_shows_every_exercise_and_no_answer(browser, student_site):
    """Every chapter page of the student edition, as a reader sees it in Chromium: no solution
    element, no line of any answer in the page's text (folded or not), every exercise there and
    visible under its label."""
    sys.path.insert(0, str(ROOT / "tools"))
    import chapters as chapter_tools

    problems = []
    for nb_path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        labels = re.findall(r"\{exercise\}[^\n]*\n\s*:label:\s*(\S+)",
                            "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"))
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(student_site)
                   else r.fulfill(status=200, body=b"", content_type="text/plain"))
        page.set_default_timeout(90_000)
        page.goto(f"{student_site}/chapters/{nb_path.stem}.html", wait_until="load")
        found = page.evaluate("""(labels) => ({
            solutions: document.querySelectorAll('.solution, div.solution').length,
            text: document.body.innerText.split(/\\s+/).join(' ') + ' ' + document.body.textContent.split(/\\s+/).join(' '),
            missing: labels.filter(l => !document.getElementById(l)),
            hidden: labels.filter(l => { const e = document.getElementById(l); return e && !e.checkVisibility(); })
        })""", labels)
        ctx.close()
        name = nb_path.stem
        if found["solutions"]:
            problems.append(f"{name}: {found['solutions']} solution elements")
        leaked = [s for s in chapter_tools.solution_snippets(nb) if s in found["text"]]
        if leaked:
            problems.append(f"{name}: answer text shown: {leaked[:2]}")
        if found["missing"] or found["hidden"]:
            problems.append(f"{name}: exercises missing {found['missing']}, not visible {found['hidden']}")
        if errors:
            problems.append(f"{name}: JavaScript errors {errors[:2]}")
    assert not problems, "\n".join(problems)
