"""Basic accessibility checks run inside the page: labels, alt text, one h1, contrast, keyboard order."""

from __future__ import annotations

from typing import Any

# Returns a list of problems found on the page (empty when it passes).
_CHECK = r"""
() => {
  const problems = [];
  const visible = (el) => {
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return style.visibility !== "hidden" && style.display !== "none" && box.width > 0 && box.height > 0;
  };
  // 1. Every form field a person can fill in has a name for assistive technology.
  for (const field of document.querySelectorAll("input, select, textarea")) {
    if (field.type === "hidden") continue;
    const named = (field.labels && field.labels.length) || field.getAttribute("aria-label")
      || field.getAttribute("aria-labelledby");
    if (!named) problems.push(`unlabelled field ${field.outerHTML.slice(0, 120)}`);
  }
  // 2. Every image has alt text (empty alt for decoration is fine); Leaflet tiles are the map's own.
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt") && !img.closest(".leaflet-pane")) problems.push(`img without alt ${img.src}`);
  }
  // 3. Exactly one h1.
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) problems.push(`${h1} h1 elements`);
  // 4. The lang attribute is set.
  if (!document.documentElement.lang) problems.push("html has no lang");
  // 5. Contrast of text against its effective background (WCAG 2: 4.5:1, 3:1 for large text).
  const parse = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = ({r, g, b}) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const texts = document.querySelectorAll("h1, h2, h3, p, li, a, button, label, dt, dd, span, td, th, legend, summary, .badge");
  for (const el of texts) {
    if (!visible(el) || el.closest(".leaflet-container")) continue;
    const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const style = getComputedStyle(el);
    const fg = parse(style.color); const bg = background(el);
    if (!fg) continue;
    const l1 = lum(fg), l2 = lum(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(style.fontSize); const bold = parseInt(style.fontWeight, 10) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) problems.push(`contrast ${ratio.toFixed(2)} < ${needed} for ${el.tagName} "${el.textContent.trim().slice(0, 40)}"`);
  }
  return problems;
}
"""


def problems(page: Any) -> list[str]:
    return list(page.evaluate(_CHECK))


def tab_order(page: Any, presses: int = 30) -> list[str]:
    """What keyboard focus lands on, Tab by Tab from the top of the page: tag, text or name, href."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    seen = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("""() => { const e = document.activeElement;
            if (!e || e === document.body) return "body";
            const name = (e.innerText || e.getAttribute('aria-label') || e.name || e.id || '').trim().replace(/\\s+/g, ' ');
            return `${e.tagName.toLowerCase()}|${name.slice(0, 60)}|${e.getAttribute('href') || ''}`; }"""))
    return seen


def focus_is_visible(page: Any) -> bool:
    """The focused element shows a focus indicator (outline or box-shadow)."""
    return bool(page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== 'none'; }"""))
