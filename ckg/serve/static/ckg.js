// Draws every figure of the page with the bundled plotly.js, and makes tables of class
// "sortable" sort by a click on a column's header and filter by the search box that names
// them (data-filter). A figure is a JSON script element (never executed) named by its
// container's data-figure; clicking a point that carries a link (customdata) opens it.
// data-drawn="yes" tells tests the drawing finished.
"use strict";

function drawFigures() {
  for (const box of document.querySelectorAll("[data-figure]")) {
    const spec = JSON.parse(document.getElementById(box.dataset.figure).textContent);
    // The box keeps the figure's height and plotly fills it: with a height in the layout,
    // plotly's responsive resize measured the box it had sized itself and shrank the plot
    // to the box's minimum, under the elements that follow.
    box.style.height = `${spec.layout.height || 480}px`;
    const layout = {...spec.layout, autosize: true};
    delete layout.height;
    const config = {displaylogo: false, responsive: true, scrollZoom: true};
    Plotly.newPlot(box, spec.data, layout, config).then(() => {
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

// A cell's sort key: its data-value where it has one (a measurement's raw number),
// else its text.
function sortKey(cell) {
  if (!cell) return null;
  return cell.dataset.value !== undefined ? Number(cell.dataset.value) : cell.textContent.trim();
}

// Rows ordered by column `index`, ascending or not; cells without a value go last.
function sortRows(table, index, ascending) {
  const body = table.tBodies[0];
  const rows = [...body.rows].filter((r) => r.cells.length > index);
  const keyed = rows.map((row) => [sortKey(row.cells[index]), row]);
  keyed.sort(([a], [b]) => {
    const missing = (a === null || a === "") - (b === null || b === "");
    if (missing) return missing;
    const order = typeof a === "number" && typeof b === "number" ? a - b
      : String(a).localeCompare(String(b), undefined, {numeric: true});
    return ascending ? order : -order;
  });
  for (const [, row] of keyed) body.appendChild(row);
}

function makeSortable(table) {
  const headers = [...table.tHead.rows[0].cells];
  headers.forEach((th, index) => {
    if (!th.textContent.trim()) return;  // the column of checkboxes
    th.classList.add("sorts");
    th.title = "sort by this column";
    th.addEventListener("click", () => {
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      for (const other of headers) other.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      sortRows(table, index, ascending);
    });
  });
}

function filterRows(table, text) {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  for (const row of table.tBodies[0].rows) {
    const seen = row.textContent.toLowerCase();
    row.hidden = !words.every((w) => seen.includes(w));
  }
}

for (const table of document.querySelectorAll("table.sortable")) makeSortable(table);
for (const box of document.querySelectorAll("input[data-filter]")) {
  const table = document.getElementById(box.dataset.filter);
  box.addEventListener("input", () => filterRows(table, box.value));
}

if (document.querySelector("[data-figure]")) {
  const script = document.createElement("script");
  script.src = document.currentScript.dataset.plotly;
  script.onload = drawFigures;
  document.head.appendChild(script);
}
