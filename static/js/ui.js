// Small page behaviours shared by every page (loaded from base.html).
// Copy buttons: <button class="copy" data-copy="value">, made by the {% hash %} template tag.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    // plain http on a LAN host is not a secure context: fall back to a selected, hidden textarea
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest && ev.target.closest("button.copy[data-copy]");
    if (!button) return;
    ev.preventDefault();
    copyText(button.getAttribute("data-copy")).then(
      function () { flash(button, "copied"); },
      function () { flash(button, "select and copy"); }
    );
  });

  function flash(button, text) {
    var before = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", before);
    button.textContent = text;
    window.setTimeout(function () { button.textContent = before; }, 1500);
  }
})();
