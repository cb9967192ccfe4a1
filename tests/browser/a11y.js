// Accessibility checks run in the page by the browser tests (returns a list of problems).
// 1. every visible form control has a label; 2. every button has a name; 3. <html lang>;
// 4. text contrast (WCAG 2.x): 4.5:1, or 3:1 for large text (>= 24px, or >= 18.66px bold).
return (function () {
  var problems = [];
  if (!document.documentElement.getAttribute("lang")) problems.push("<html> has no lang");
  document.querySelectorAll("input, select, textarea").forEach(function (el) {
    if (el.type === "hidden") return;
    var labelled = (el.id && document.querySelector('label[for="' + el.id + '"]')) ||
      el.getAttribute("aria-label") || el.getAttribute("aria-labelledby") || el.closest("label");
    if (!labelled) problems.push("control without a label: " + el.outerHTML.slice(0, 120));
  });
  document.querySelectorAll("button, a[href]").forEach(function (el) {
    if (!(el.textContent || "").trim() && !el.getAttribute("aria-label")) problems.push("unnamed: " + el.outerHTML.slice(0, 120));
  });
  function rgba(text) {
    var m = text.match(/rgba?\(([^)]+)\)/);
    if (!m) return [0, 0, 0, 0];
    var p = m[1].split(",").map(function (x) { return parseFloat(x); });
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  }
  function background(el) {
    for (var node = el; node && node.nodeType === 1; node = node.parentElement) {
      var c = rgba(getComputedStyle(node).backgroundColor);
      if (c[3] > 0.5) return c;
    }
    return [255, 255, 255, 1];
  }
  function luminance(c) {
    var ch = c.slice(0, 3).map(function (v) {
      v = v / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
  }
  var seen = 0;
  document.querySelectorAll("body *").forEach(function (el) {
    if (el.closest("svg") || el.closest("script")) return;
    var own = Array.prototype.some.call(el.childNodes, function (n) { return n.nodeType === 3 && n.textContent.trim(); });
    if (!own || !el.getClientRects().length) return;
    var style = getComputedStyle(el);
    if (style.visibility === "hidden") return;
    if (el.closest(".skip-link") && el.getBoundingClientRect().right < 0) return; // off screen until focused
    var fg = rgba(style.color), bg = background(el);
    var l1 = luminance(fg), l2 = luminance(bg);
    var ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    var size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    var needed = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    seen += 1;
    if (ratio < needed) problems.push("contrast " + ratio.toFixed(2) + " < " + needed + ": " + el.tagName + " '" + el.textContent.trim().slice(0, 40) + "'");
  });
  if (seen === 0) problems.push("no text was checked");
  return problems;
})();
