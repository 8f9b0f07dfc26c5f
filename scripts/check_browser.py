"""Open every page of the built book in headless Chromium and check what a reader sees.

Usage: python scripts/check_browser.py [_build/html] [--screenshots _build/screenshots]

The HTML is served by a local ``http.server`` on 127.0.0.1; Chromium (Debian's ``chromium``
package, ``/usr/bin/chromium``) is driven through the Chrome DevTools protocol over a websocket
(``websocket-client``). For each page it asserts that

- MathJax typeset the math: no element of class ``math`` is left without an ``mjx-container``,
  no raw TeX delimiters (``$$``, ``\\(``, ``\\[``, ``\\begin{``) remain in the prose outside code,
  and a page with math has ``mjx-container`` elements;
- every ``<img>`` loaded (``complete`` and ``naturalWidth > 0``);
- every citation (``.bibtex-citation``) holds a link, and every same-page ``#anchor`` link has
  its target element;
- an API page (``book/api/``) shows Python signatures, each rendered with its name;
- every image has alternative text that is not a file name, every figure has a numbered
  caption and holds one image, and every chapter with results has at least one figure
  (:func:`figure_problems`);
- the console shows no errors (console errors, uncaught exceptions, failed loads), except the
  toolchain's own harmless messages listed, with their reason, in ``KNOWN_UPSTREAM``;

and saves a screenshot (``<page>.png``, the full page up to ``MAX_HEIGHT`` pixels). Exits with
status 1 and lists every problem found.
"""
from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-port=0", "--window-size=1280,1000"]
WIDTH, MAX_HEIGHT = 1280, 8000
PAGE_TIMEOUT = 60.0

# evaluated in the page once it has loaded: waits for MathJax and the images, then reports
PROBE = r"""
(async () => {
  for (const img of document.images) img.loading = "eager";
  await Promise.all([...document.images].map(i => i.decode().catch(() => null)));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const math = [...document.querySelectorAll(".math")];
  const untypeset = math.filter(m => !m.querySelector("mjx-container"))
                        .map(m => m.textContent.trim().slice(0, 60));
  const main = (document.querySelector("main") || document.body).cloneNode(true);
  main.querySelectorAll("pre, code, script, style, mjx-container, .highlight, textarea")
      .forEach(e => e.remove());
  const text = main.textContent;
  const raw = ["$$", "\\(", "\\[", "\\begin{"].filter(d => text.includes(d));
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))
                                     .map(i => i.getAttribute("src"));
  const cites = [...document.querySelectorAll(".bibtex-citation")];
  const uncited = cites.filter(c => !c.querySelector("a[href]"))
                       .map(c => c.textContent.trim().slice(0, 60));
  const deadAnchors = [...document.querySelectorAll('a[href^="#"]')]
      .map(a => a.getAttribute("href")).filter(h => h.length > 1)
      .filter(h => !document.getElementById(decodeURIComponent(h.slice(1))));
  const content = document.querySelector("main") || document.body;
  const imgs = [...content.querySelectorAll("img")].map(i => ({
      src: i.getAttribute("src") || "", alt: (i.getAttribute("alt") || "").trim()}));
  const figures = [...content.querySelectorAll("figure")].map(f => {
      const cap = f.querySelector("figcaption");
      return {id: f.id || "", images: f.querySelectorAll("img").length,
              caption: cap ? cap.textContent.replace(/\s+/g, " ").trim() : ""};
  });
  const sigs = [...document.querySelectorAll("dt.sig.sig-object.py")];
  const shownSigs = sigs.filter(d => d.offsetHeight > 0 && d.querySelector(".sig-name")).length;
  return {math: math.length, mjx: document.querySelectorAll("mjx-container").length,
          untypeset, raw, images: document.images.length, broken,
          cites: cites.length, uncited, deadAnchors: [...new Set(deadAnchors)],
          sigs: sigs.length, shownSigs, imgs, figures,
          height: Math.ceil(document.documentElement.scrollHeight)};
})()
"""


# Console messages of the book's toolchain itself, not of our pages, each with why it is harmless.
# They are counted and printed, not failed; anything else on the console fails the check.
KNOWN_UPSTREAM = {
    "Identifier 'THEBE_JS_URL' has already been declared":
        "sphinx-thebe 0.3 (jupyter-book 1.0.4) writes its inline config script twice into every "
        "page; the second copy fails, the first already defined the same constant",
    "Got invalid theme mode: . Resetting to auto.":
        "pydata-sphinx-theme on a first visit (empty localStorage); it falls back to 'auto'",
}


#: a figure's caption as Sphinx numbers it (``numfig``): "Fig. 3 ..." (or "Figure 3 ...")
NUMBERED = re.compile(r"^(Fig\.|Figure)\s*\d+")
#: an alternative text that is only an image's file name (MyST-NB's default), e.g.
#: "../_images/bbda8a1f.png"
FILE_NAME_ALT = re.compile(r"(^|/)[^\s/]+\.(png|jpe?g|svg|gif|webp)$", re.I)
#: chapters that are executed notebooks but show no results, hence need no figure
NO_RESULTS = {"status"}
ROOT = Path(__file__).resolve().parent.parent


def needs_figure(rel: str, root: Path = ROOT) -> bool:
    """Whether a page is a chapter with results: an executed chapter (``book/<name>.py``
    exists) other than the ``NO_RESULTS`` ones."""
    path = Path(rel)
    return (path.parent == Path("book") and path.stem not in NO_RESULTS
            and (root / "book" / f"{path.stem}.py").exists())


def figure_problems(rel: str, report: dict, *, root: Path = ROOT) -> list[str]:
    """Figures a reader (or a screen reader) cannot use, from the probe's ``imgs`` and
    ``figures``: an image without alternative text or whose text is a file name, a figure
    without a caption or without a number, and a results chapter without a figure.

    Example
    -------
    >>> figure_problems("book/x.html", {"imgs": [{"src": "a.png", "alt": "../_images/a.png"}],
    ...                                 "figures": [{"id": "f", "images": 1, "caption": ""}]})
    ["image 'a.png' has a file name as alternative text", "figure 'f' has no caption"]
    """
    problems = []
    for img in report.get("imgs", []):
        if not img["alt"]:
            problems.append(f"image {img['src']!r} has no alternative text")
        elif FILE_NAME_ALT.search(img["alt"]):
            problems.append(f"image {img['src']!r} has a file name as alternative text")
    for fig in report.get("figures", []):
        if not fig["caption"]:
            problems.append(f"figure {fig['id']!r} has no caption")
        elif not NUMBERED.match(fig["caption"]):
            problems.append(f"figure {fig['id']!r} is not numbered: {fig['caption'][:40]!r}")
        if fig["images"] != 1:
            problems.append(f"figure {fig['id']!r} holds {fig['images']} images, not 1")
    if needs_figure(rel, root) and not report.get("figures"):
        problems.append("a chapter with results but no figure")
    return problems


def known_upstream(message: str) -> bool:
    """Whether a console message is one of the toolchain's harmless ``KNOWN_UPSTREAM`` ones."""
    return any(k in message for k in KNOWN_UPSTREAM)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the server's access log is not a problem report
        pass

    def do_GET(self):
        if self.path.split("?")[0] == "/favicon.ico":  # the browser's own request, not the book's
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()


class DevTools:
    """A minimal Chrome DevTools protocol client for one page target."""

    def __init__(self, ws_url: str):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=PAGE_TIMEOUT, suppress_origin=True)
        self.next_id, self.events = 0, []

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, event: str, timeout: float = PAGE_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {timeout} s")
            self.events.append(json.loads(self.ws.recv()))

    def close(self):
        self.ws.close()


def console_errors(events: list[dict]) -> list[str]:
    """The error messages among collected DevTools events."""
    errors = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                 for a in p.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            errors.append("exception: " + d.get("exception", {}).get("description", d.get("text", "")))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
    return errors


def check_page(port: int, rel: str, shot: Path) -> tuple[list[str], dict]:
    """Open one page in a new tab; return its problems and the probe's report."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
    target = json.loads(urllib.request.urlopen(req, timeout=PAGE_TIMEOUT).read())
    tab = DevTools(target["webSocketDebuggerUrl"])
    try:
        for domain in ("Page", "Runtime", "Log"):
            tab.call(f"{domain}.enable")
        tab.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=1000,
                 deviceScaleFactor=1, mobile=False)
        tab.call("Page.navigate", url=f"http://127.0.0.1:{SERVER_PORT}/{rel}")
        tab.wait_for("Page.loadEventFired")
        result = tab.call("Runtime.evaluate", expression=PROBE, awaitPromise=True,
                          returnByValue=True, timeout=int(PAGE_TIMEOUT * 1000))
        if "exceptionDetails" in result:
            return [f"probe failed: {result['exceptionDetails'].get('text')}"], {}
        report = result["result"]["value"]
        time.sleep(0.2)  # let late console messages arrive
        tab.call("Runtime.evaluate", expression="1")
        errors = console_errors(tab.events)
        problems = [e for e in errors if not known_upstream(e)]
        report["upstream"] = len(errors) - len(problems)
        if report["untypeset"]:
            problems.append(f"{len(report['untypeset'])} math element(s) not typeset, e.g. "
                            f"{report['untypeset'][0]!r}")
        if report["raw"]:
            problems.append(f"raw TeX left in the text: {report['raw']}")
        if report["math"] and not report["mjx"]:
            problems.append("page has math but no mjx-container")
        for src in report["broken"]:
            problems.append(f"image not loaded: {src}")
        problems += [f"unresolved citation: {c!r}" for c in report["uncited"]]
        problems += [f"link to a missing anchor: {h}" for h in report["deadAnchors"]]
        problems += figure_problems(rel, report)
        if is_api_page(rel) and not report["sigs"]:
            problems.append("API page without signatures")
        elif report["shownSigs"] < report["sigs"]:
            problems.append(f"{report['sigs'] - report['shownSigs']} of {report['sigs']} "
                            "signatures not rendered (hidden or without a name)")
        height = min(max(report["height"], 1000), MAX_HEIGHT)
        tab.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=height,
                 deviceScaleFactor=1, mobile=False)
        png = tab.call("Page.captureScreenshot", format="png")["data"]
        shot.parent.mkdir(parents=True, exist_ok=True)
        shot.write_bytes(base64.b64decode(png))
        return problems, report
    finally:
        tab.close()
        urllib.request.urlopen(f"http://127.0.0.1:{port}/json/close/{target['id']}",
                               timeout=PAGE_TIMEOUT).read()


SERVER_PORT = 0


def is_api_page(rel: str) -> bool:
    """Whether a page (path relative to the HTML root) is one of the API reference pages."""
    return "api" in Path(rel).parts[:-1]


def is_redirect(path: Path) -> bool:
    """A bare ``<meta http-equiv="Refresh">`` page (jupyter-book's root ``index.html``): the
    browser leaves it at once, so its target page is what gets checked."""
    head = path.read_text(errors="replace")[:500].lower()
    return 'http-equiv="refresh"' in head and "<body" not in head


def pages_of(root: Path) -> list[str]:
    """The book's pages (relative paths), without Sphinx's static and source folders and
    without redirect stubs."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.html")
                  if not {"_static", "_sources", "_images", "notebooks"} & set(p.parts)
                  and not is_redirect(p))


def main(argv=None) -> int:
    global SERVER_PORT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="_build/html")
    parser.add_argument("--screenshots", default="_build/screenshots")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)
    root, shots = Path(args.root), Path(args.screenshots)
    pages = pages_of(root)
    if not pages:
        print(f"no HTML pages under {root}")
        return 1
    if not Path(args.chromium).exists():
        print(f"chromium not found at {args.chromium} (apt-get install -y chromium)")
        return 1
    start = time.perf_counter()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    SERVER_PORT = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile_dir = Path(tempfile.mkdtemp(prefix="check_browser_"))
    browser = subprocess.Popen([args.chromium, *FLAGS, f"--user-data-dir={profile_dir}",
                                "about:blank"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    problems = []
    try:
        port_file = profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + PAGE_TIMEOUT
        while not (port_file.exists() and port_file.read_text().strip()):
            if browser.poll() is not None or time.monotonic() > deadline:
                print("chromium did not start (no DevToolsActivePort)")
                return 1
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        for rel in pages:
            try:
                found, report = check_page(port, rel, shots / rel.replace(".html", ".png"))
            except (TimeoutError, RuntimeError, OSError) as err:
                found, report = [f"could not check: {err}"], {}
            problems += [f"{rel}: {p}" for p in found]
            print(f"[browser] {rel}: math {report.get('mjx', '?')}/{report.get('math', '?')} "
                  f"typeset, {report.get('images', '?')} images, "
                  f"{len(report.get('figures', []))} figures, "
                  f"{report.get('cites', '?')} citations, "
                  + (f"{report.get('shownSigs', '?')}/{report.get('sigs', '?')} signatures, "
                     if is_api_page(rel) else "")
                  + f"{len(found)} problem(s), "
                  f"{report.get('upstream', 0)} known upstream message(s) ignored",
                  flush=True)
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
        server.shutdown()
        shutil.rmtree(profile_dir, ignore_errors=True)
    for p in problems:
        print("PROBLEM", p)
    print(f"checked {len(pages)} pages in headless Chromium in {time.perf_counter() - start:.1f} s:"
          f" {len(problems)} problem(s); screenshots in {shots}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
