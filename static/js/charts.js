// Draws every element with a data-chart attribute: its value is the id of a
// <script type="application/json"> holding a plotly figure {data, layout}.
// Runs on load and after every htmx swap, so fragments bring their charts with them.
(function () {
  "use strict";
  var CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  var BASE_LAYOUT = {
    margin: { l: 55, r: 20, t: 40, b: 50 },
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12 },
    paper_bgcolor: "#fff", plot_bgcolor: "#fff",
  };

  function draw(el) {
    if (!window.Plotly) return;
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source) return;
    var figure = JSON.parse(source.textContent);
    var layout = Object.assign({}, BASE_LAYOUT, figure.layout || {});
    // a figure sets the margins it needs (room for stacked labels); the others keep the defaults
    layout.margin = Object.assign({}, BASE_LAYOUT.margin, (figure.layout || {}).margin || {});
    window.Plotly.react(el, figure.data || [], layout, Object.assign({}, CONFIG, figure.config || {}));
    el.setAttribute("data-drawn", "1");
    if (figure.clickUrl) {
      el.on("plotly_click", function (ev) {
        var point = ev.points && ev.points[0];
        if (!point) return;
        var url = figure.clickUrl.replace("__x__", encodeURIComponent(point.x))
          .replace("__y__", encodeURIComponent(point.y))
          .replace("__customdata__", encodeURIComponent(point.customdata));
        if (window.htmx && figure.clickTarget) {
          window.htmx.ajax("GET", url, { target: figure.clickTarget, swap: "innerHTML" });
        } else {
          window.location.href = url;
        }
      });
    }
  }

  function drawAll(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function (ev) { drawAll(ev.detail.elt); });
  window.mlopsCharts = { draw: draw, drawAll: drawAll };
})();
