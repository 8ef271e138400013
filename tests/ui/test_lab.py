"""The notebook experience in a real browser (issue 15): JupyterLab 4 in headless Debian Chromium.

Runs the quickstart tutorial and a new notebook with typed cells, then asserts what a person sees:
a cost footer under each cell that made calls and none under the others, its colours meeting WCAG
AA against the cell's background in the light and the dark theme (computed styles, not our CSS
text), at least 12 px; an error cell of one line; ``%tm gr``⇥ offering ``grade``. Screenshots of
the footer in both themes go to ``build/ui/``.

Waits are bounded (WebDriverWait, script timeouts); nothing sleeps.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any

import pytest

from tests.ui.conftest import LACKS, SKIP_REASON
from tests.ui.lab import (
    CELL_TIMEOUT,
    SCREENSHOTS,
    START_TIMEOUT,
    Lab,
    contrast,
    effective_background,
    over,
    parse_colour,
)

if LACKS:
    pytest.skip(SKIP_REASON, allow_module_level=True)

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.wait import WebDriverWait

pytestmark = [pytest.mark.ui, pytest.mark.xdist_group("ui")]

AA = 4.5

# -- JupyterLab, through its own application object (window.jupyterapp) -------------------------------------
KERNEL_STATUS = """
const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!w || !w.sessionContext || !w.content || !w.context.isReady) return 'no notebook';
const k = w.sessionContext.session && w.sessionContext.session.kernel;
return k ? k.status : 'no kernel';
"""

RUN_COMMAND = """
const [name, args, done] = arguments;
window.jupyterapp.commands.execute(name, args || {}).then(() => done('ok'), e => done('error: ' + e));
"""

CELLS = """
const w = window.jupyterapp.shell.currentWidget;
return w.content.widgets.map(cell => ({
  type: cell.model.type,
  source: cell.model.sharedModel.getSource(),
  count: cell.model.type === 'code' ? cell.model.executionCount : null,
  footers: cell.node.querySelectorAll('.tm402-footer').length,
  outputs: Array.from(cell.node.querySelectorAll('.jp-OutputArea-child')).map(child => ({
    footer: !!child.querySelector('.tm402-footer'),
    text: child.innerText,
    stderr: Array.from(child.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]'))
      .map(e => e.innerText),
  })),
  node: cell.node,
}));
"""

#: Every element of a footer that holds text: its colour, size, and the backgrounds behind it.
FOOTER_STYLES = """
const footer = arguments[0];
const chain = e => { const out = []; for (; e; e = e.parentElement) out.push(getComputedStyle(e).backgroundColor); return out; };
return [footer, ...footer.querySelectorAll('*')]
  .filter(e => Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim()))
  .map(e => ({text: Array.from(e.childNodes).filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim(),
              tag: e.tagName, color: getComputedStyle(e).color, size: parseFloat(getComputedStyle(e).fontSize),
              backgrounds: chain(e)}));
"""


def command(browser: Any, name: str, args: dict[str, Any] | None = None) -> None:
    result = browser.execute_async_script(RUN_COMMAND, name, args or {})
    assert result == "ok", f"{name}: {result}"


def wait_idle(browser: Any, timeout: float = START_TIMEOUT) -> None:
    WebDriverWait(browser, timeout, poll_frequency=0.2).until(
        lambda d: d.execute_script(KERNEL_STATUS) == "idle", message="the notebook's kernel never became idle"
    )


def wait_all_ran(browser: Any, n: int | None = None) -> list[dict[str, Any]]:
    """The cells once every code cell (or the first ``n``) shows an execution count and the kernel is idle."""

    def ran(d: Any) -> list[dict[str, Any]] | None:
        cells = [c for c in d.execute_script(CELLS) if c["type"] == "code"]
        todo = cells if n is None else cells[:n]
        done = all(c["count"] for c in todo) and d.execute_script(KERNEL_STATUS) == "idle"
        return cells if done else None

    return WebDriverWait(browser, CELL_TIMEOUT, poll_frequency=0.2).until(ran, message="cells did not finish")


def wait_no_splash(browser: Any) -> None:
    """Until JupyterLab's splash screen (shown at start and while a theme loads) is gone."""
    WebDriverWait(browser, START_TIMEOUT, poll_frequency=0.2).until(
        lambda d: d.execute_script("return !document.querySelector('#jupyterlab-splash')"),
        message="JupyterLab's splash screen stayed",
    )


def open_notebook(browser: Any, lab: Lab, name: str) -> None:
    browser.get(f"{lab.url}/lab/tree/{name}?token={lab.token}")
    wait_idle(browser)
    wait_no_splash(browser)


# -- the quickstart -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quickstart(browser: Any, lab: Lab) -> list[dict[str, Any]]:
    """The quickstart, run top to bottom in JupyterLab (a copy: the committed one is untouched)."""
    open_notebook(browser, lab, "00_quickstart.ipynb")
    command(browser, "notebook:run-all-cells")
    return wait_all_ran(browser)


def _made_calls(source: str) -> bool:
    """Cells of the quickstart that call the API (paid, cached or a quote): the ones with a footer."""
    return source.startswith(("%tm grade", "signals = %tm")) or "--dry-run" in source


def test_a_footer_under_each_cell_that_made_calls_and_none_elsewhere(quickstart):
    with_calls = [c for c in quickstart if _made_calls(c["source"])]
    without = [c for c in quickstart if not _made_calls(c["source"])]
    # The tutorial pays (grade, signals), reuses (grade again) and quotes (--dry-run); its other
    # cells (connect, the frame's cost, the ledger, the budget, close) make no call.
    assert len(with_calls) >= 4 and len(without) >= 4
    for cell in with_calls:
        assert cell["footers"] == 1, cell["source"]
        assert cell["outputs"][-1]["footer"], f"the footer is not under the result: {cell['source']}"
    for cell in without:
        assert cell["footers"] == 0, cell["source"]
    footers = {c["source"]: c["outputs"][-1]["text"] for c in with_calls}
    first, rerun = (c["outputs"][-1]["text"] for c in with_calls if c["source"].startswith("%tm grade"))
    assert "4 calls (1 paid, 3 free: symbol lookup) · 0.017 USDC" in first and "SANDBOX" in first
    assert "1 call (1 cached) · nothing paid" in rerun
    assert any(re.search(r"\(\d+ paid", text) for src, text in footers.items() if src.startswith("signals = "))
    assert all("free: quote" in text for src, text in footers.items() if "--dry-run" in src)


def _footer(quickstart: list[dict[str, Any]]) -> Any:
    """The first paid cell's footer (the badge, receipts, budget and network are all in it)."""
    cell = next(c for c in quickstart if c["source"].startswith("%tm grade"))
    return cell["node"].find_element(By.CSS_SELECTOR, ".tm402-footer")


def _set_theme(browser: Any, theme: str) -> None:
    name, light, layout0 = {
        "light": ("JupyterLab Light", "true", "white"),
        "dark": ("JupyterLab Dark", "false", "#111"),
    }[theme]
    command(browser, "apputils:change-theme", {"theme": name})
    WebDriverWait(browser, START_TIMEOUT, poll_frequency=0.2).until(
        lambda d: (
            d.execute_script(
                "return document.body.dataset.jpThemeLight + ' ' + "
                "getComputedStyle(document.body).getPropertyValue('--jp-layout-color0').trim()"
            )
            == f"{light} {layout0}"
        ),
        message=f"JupyterLab did not switch to {name}",
    )
    wait_no_splash(browser)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_footer_colours_meet_aa_in_light_and_dark(browser, quickstart, theme):
    _set_theme(browser, theme)
    footer = _footer(quickstart)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", footer)
    styles = browser.execute_script(FOOTER_STYLES, footer)
    assert {s["tag"] for s in styles} >= {"DIV", "SPAN", "CODE"}  # text, badge, receipt
    assert any(s["text"] == "SANDBOX" for s in styles)  # the badge is checked with the rest
    for s in styles:
        behind = effective_background(s["backgrounds"])
        ratio = contrast(over(parse_colour(s["color"]), behind), behind)
        assert ratio >= AA, f"{theme}: {s['text'][:40]!r} is {ratio:.2f}:1 ({s['color']} on {behind})"
        assert s["size"] >= 12, f"{theme}: {s['text'][:40]!r} is {s['size']} px"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / f"{theme}.png"))


# -- the quickstart's chart ----------------------------------------------------------------------------------
#: The chart cell's images: which are shown (CSS display), whether each has decoded, and its class.
CHART_IMAGES = """
return Array.from(arguments[0].querySelectorAll('.jp-OutputArea-output img')).map(img => ({
  img, shown: getComputedStyle(img).display !== 'none' && img.getClientRects().length > 0,
  loaded: img.complete && img.naturalWidth > 0, cls: img.className,
}));
"""


def _dominant_colour(png: bytes) -> tuple[float, float, float]:
    """The most frequent colour of a screenshot (0-255 per channel): a chart's background."""
    from io import BytesIO

    import numpy as np
    from matplotlib.image import imread

    pixels = (imread(BytesIO(png))[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    r, g, b = (float(c) for c in colours[counts.argmax()])
    return (r, g, b)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_chart_matches_the_theme(browser, quickstart, theme):
    """The signals chart is not a white box in the dark theme: the image shown is the theme's variant
    and its background is dark in the dark theme, light in the light theme."""
    _set_theme(browser, theme)
    cell = next(c for c in quickstart if c["source"].startswith("signals = %tm"))

    def shown(d: Any) -> list[dict[str, Any]] | None:
        images = d.execute_script(CHART_IMAGES, cell["node"])
        visible = [i for i in images if i["shown"]]
        return visible if visible and all(i["loaded"] for i in visible) else None

    visible = WebDriverWait(browser, CELL_TIMEOUT, poll_frequency=0.2).until(shown, message="no chart image shown")
    assert len(visible) == 1, f"{theme}: {len(visible)} chart images shown ({[i['cls'] for i in visible]})"
    (image,) = visible
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", image["img"])
    png = image["img"].screenshot_as_png
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / f"chart-{theme}.png").write_bytes(png)
    background = _dominant_colour(png)
    on_white, on_black = contrast(background, (255, 255, 255)), contrast(background, (0, 0, 0))
    if theme == "dark":
        assert on_black < 1.5, f"dark theme: the chart's background is {background} ({on_black:.1f}:1 against black)"
    else:
        assert on_white < 1.5, f"light theme: the chart's background is {background} ({on_white:.1f}:1 against white)"
    assert f"tm402-chart-{theme}" in image["cls"].split(), f"{theme}: the image shown is {image['cls']!r}"


# -- a new notebook, typed ------------------------------------------------------------------------------------
def type_cell(browser: Any, text: str, *, run: bool = True) -> None:
    """Click into the last cell's editor, type ``text`` and (``run``) Shift+Enter, as a person would."""
    editors = browser.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .cm-content")
    editors[-1].click()
    keys = ActionChains(browser).send_keys(text)
    if run:
        keys = keys.key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT)
    keys.perform()


@pytest.fixture(scope="module")
def typed(browser: Any, lab: Lab, quickstart: Any) -> list[dict[str, Any]]:
    """A new notebook: the extension, a paid call, a cell with no call, then a typo'd endpoint."""
    command(browser, "notebook:create-new", {"kernelName": "python3", "cwd": ""})
    wait_idle(browser)
    for text in ("%load_ext tm402_nb", "%tm grade SOL", "x = 1 + 1"):
        type_cell(browser, text)
    wait_all_ran(browser, 3)
    type_cell(browser, "%tm grde BTC")  # an error stops the queue: typed once the others ran
    return wait_all_ran(browser, 4)


def test_typed_cells_footer_only_under_the_paid_one(typed):
    load, grade, plain, _error = typed[:4]
    assert load["source"] == "%load_ext tm402_nb" and load["footers"] == 0
    assert grade["footers"] == 1 and "1 paid" in grade["outputs"][-1]["text"]
    assert plain["footers"] == 0


def test_an_error_cell_shows_one_line(typed):
    error = typed[3]
    assert error["footers"] == 0
    (shown,) = [text for out in error["outputs"] for text in out["stderr"]]
    assert shown.strip().count("\n") == 0, shown  # one line, no traceback
    assert shown.startswith("UnknownEndpoint: unknown endpoint 'grde'") and "did you mean" in shown


@pytest.mark.skipif(
    importlib.util.find_spec("tm402_nb.notebook.completion") is None,
    reason="the %tm completion matcher (tm402_nb/notebook/completion.py) is not on this branch yet",
)
def test_tab_after_tm_gr_offers_grade(browser, typed):
    type_cell(browser, "%tm gr", run=False)
    ActionChains(browser).send_keys(Keys.TAB).perform()

    def offered(d: Any) -> str | None:
        names = [
            e.text for e in d.find_elements(By.CSS_SELECTOR, ".jp-Completer .jp-Completer-item .jp-Completer-match")
        ]
        if "grade" in names:
            return "popup: " + ", ".join(names)
        source = d.execute_script(CELLS)[-1]["source"]
        return f"inserted: {source}" if source.startswith("%tm grade") else None  # a single match is inserted

    how = WebDriverWait(browser, CELL_TIMEOUT, poll_frequency=0.2).until(offered, message="no completion offered grade")
    assert "grade" in how
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / "completer.png"))


def test_jupyterlab_reaches_nothing_outside(lab):
    """The news feed, the update check and the extension manager are the parts of JupyterLab that
    go online: none does here (and Chromium resolves no host but 127.0.0.1)."""
    import httpx

    params = {"token": lab.token}
    assert httpx.get(f"{lab.url}/lab/api/news", params=params, timeout=10).json() == {"news": []}
    assert httpx.get(f"{lab.url}/lab/api/update", params=params, timeout=10).json() == {"notification": None}
    assert "Extension Manager is 'readonly'" in lab.log_path.read_text()
    assert lab.url.startswith("http://127.0.0.1:")
