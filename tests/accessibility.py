"""Accessibility checks for any page open in a Selenium-driven browser (issue 15).

Two parts, both run in the page as the browser rendered it:

- **axe-core** (Deque, MPL-2.0), shipped unmodified by the ``axe-core-python`` package
  (``axe_core_python/axe.min.js``, 4.4.3): the WCAG 2.0/2.1 A and AA rules — a label or
  accessible name on every input, select, textarea and button (``label``,
  ``select-name``, ``button-name``, ``link-name``), ``html[lang]`` present and valid,
  text/background contrast of at least 4.5:1 (3:1 for large text) from the computed
  styles (``color-contrast``), a title, named images and SVG charts — plus the
  best-practice rule against a positive ``tabindex``. The script is injected through
  WebDriver, which a page's Content-Security-Policy does not govern, so the pages keep
  their strict policy.
- **Keyboard reach**, our own: axe does not press keys. Every visible, enabled link,
  button, form control and ``summary`` must receive focus by pressing Tab from the top of
  the page, in some order, without a pointer.

Use :func:`assert_accessible` in a browser test; :func:`problems` returns the findings as
text for a test that wants to look at them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

AXE_SCRIPT = files("axe_core_python").joinpath("axe.min.js").read_text(encoding="utf-8")
# WCAG 2.0 and 2.1, levels A and AA; and one best practice the issue names (no positive tabindex).
AXE_OPTIONS: dict[str, Any] = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "rules": {"tabindex": {"enabled": True}},
    "resultTypes": ["violations"],
}
# What a keyboard user must be able to reach: every control and link that is shown and usable.
_ACTIONABLE = (
    "a[href], area[href], button, input:not([type=hidden]), select, textarea, summary, "
    "[tabindex]:not([tabindex='-1']), [contenteditable=''], [contenteditable=true]"
)
_MARK = "data-a11y-reach"


@dataclass(frozen=True, slots=True)
class Problem:
    rule: str  # an axe rule id, or "keyboard-reach"
    impact: str
    help: str
    targets: tuple[str, ...]  # CSS selectors, or a description of the element

    def __str__(self) -> str:
        return f"[{self.rule}, {self.impact}] {self.help}: {', '.join(self.targets)}"


def run_axe(driver: WebDriver) -> list[Problem]:
    """axe-core's violations of the page currently open."""
    driver.execute_script(AXE_SCRIPT)
    results: dict[str, Any] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, arguments[0])"
        ".then(r => done(r), e => done({error: String(e)}));",
        AXE_OPTIONS,
    )
    if "error" in results:
        raise RuntimeError(f"axe-core failed on {driver.current_url}: {results['error']}")
    found = []
    for violation in results["violations"]:
        targets = tuple(
            " ".join(json.dumps(part) if not isinstance(part, str) else part for part in node["target"])
            for node in violation["nodes"]
        )
        found.append(Problem(violation["id"], str(violation.get("impact")), violation["help"], targets))
    return found


_LIST_ACTIONABLE = f"""
const shown = el => {{
  if (el.disabled || el.closest('[inert]')) return false;
  const style = getComputedStyle(el);
  if (style.visibility === 'hidden' || style.display === 'none') return false;
  return el.getClientRects().length > 0;
}};
// A radio group is one Tab stop: its checked radio, or its first when none is checked.
const groupStop = el => {{
  if (el.type !== 'radio' || !el.name) return true;
  const group = Array.from(document.getElementsByName(el.name)).filter(r => r.type === 'radio' && r.form === el.form);
  const checked = group.find(r => r.checked);
  return el === (checked || group[0]);
}};
const found = Array.from(document.querySelectorAll({json.dumps(_ACTIONABLE)})).filter(shown).filter(groupStop);
found.forEach((el, i) => el.setAttribute({json.dumps(_MARK)}, String(i)));
return found.map(el => {{
  const name = (el.getAttribute('aria-label') || el.textContent || el.getAttribute('name') || '').trim();
  return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (name ? ' "' + name.slice(0, 40) + '"' : '');
}});
"""
_FOCUSED = f"const el = document.activeElement; return el ? el.getAttribute({json.dumps(_MARK)}) : null;"
_UNMARK = f"document.querySelectorAll('[{_MARK}]').forEach(el => el.removeAttribute({json.dumps(_MARK)}));"


def unreachable_by_keyboard(driver: WebDriver) -> list[Problem]:
    """Every shown, enabled link and control that pressing Tab from the top never focuses."""
    described: list[str] = driver.execute_script(_LIST_ACTIONABLE)
    try:
        driver.execute_script("if (document.activeElement) document.activeElement.blur(); window.scrollTo(0, 0);")
        reached: set[int] = set()
        # Tab order visits each element once per round; two rounds' worth of presses is ample.
        for _ in range(2 * len(described) + 2):
            if len(reached) == len(described):
                break
            ActionChains(driver).send_keys(Keys.TAB).perform()
            mark = driver.execute_script(_FOCUSED)
            if mark is not None:
                reached.add(int(mark))
    finally:
        driver.execute_script(_UNMARK)
    missing = tuple(text for index, text in enumerate(described) if index not in reached)
    if not missing:
        return []
    return [Problem("keyboard-reach", "serious", "Not reachable with the Tab key", missing)]


def problems(driver: WebDriver) -> list[Problem]:
    """All accessibility problems of the page currently open in ``driver``."""
    return run_axe(driver) + unreachable_by_keyboard(driver)


def assert_accessible(driver: WebDriver, page: str = "") -> None:
    """Fail with every problem listed, naming the page, unless there are none."""
    found = problems(driver)
    where = page or driver.current_url
    assert not found, f"accessibility problems on {where}:\n" + "\n".join(f"  {p}" for p in found)
