// Draws every figure of the page with the bundled plotly.js. A figure is a JSON script
// element (never executed) named by its container's data-figure; clicking a point that
// carries a link (customdata) opens it. data-drawn="yes" tells tests the drawing finished.
"use strict";

function drawFigures() {
  for (const box of document.querySelectorAll("[data-figure]")) {
    const spec = JSON.parse(document.getElementById(box.dataset.figure).textContent);
    const config = {displaylogo: false, responsive: true, scrollZoom: true};
    Plotly.newPlot(box, spec.data, spec.layout, config).then(() => {
      box.dataset.drawn = "yes";
    });
    box.on("plotly_click", (event) => {
      const link = event.points.length ? event.points[0].customdata : null;
      // Only a path of this server: never another site, nor a javascript: URL.
      if (typeof link === "string" && link.startsWith("/") && !link.startsWith("//")) {
        window.location.assign(link);
      }
    });
  }
}

if (document.querySelector("[data-figure]")) {
  const script = document.createElement("script");
  script.src = "/static/plotly.min.js";
  script.onload = drawFigures;
  document.head.appendChild(script);
}
