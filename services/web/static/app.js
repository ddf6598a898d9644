// greenex public pages: live updates over Server-Sent Events and a candlestick chart drawn in SVG.
// No framework, no inline script (CSP script-src 'self'); participants' text is only ever set as
// textContent, never parsed as markup. Prices arrive as integer fen; floats only for drawing.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const money = (fen) => (fen ? (fen / 100).toFixed(2) : "-");
const utc = (ns) => new Date(Number(BigInt(ns) / 1000000n)).toISOString().slice(11, 19);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const [text, cls] of cells) tr.appendChild(el("td", text, cls));
  return tr;
}

function renderBook(book) {
  const body = document.getElementById("book");
  const n = Math.max(book.bids.length, book.asks.length);
  const rows = [];
  for (let i = 0; i < n; i++) {
    const b = book.bids[i], a = book.asks[i];
    rows.push(row([[b ? String(b[1]) : ""], [b ? money(b[0]) : "", "buy"], [a ? money(a[0]) : "", "sell"], [a ? String(a[1]) : ""]]));
  }
  body.replaceChildren(...rows);
}

function addTrades(trades) {
  const body = document.getElementById("tape");
  for (const t of trades) {
    body.insertBefore(row([[utc(t.ns)], [money(t.price), t.aggressor], [String(t.qty)], [t.aggressor]]), body.firstChild);
  }
  while (body.children.length > 30) body.removeChild(body.lastChild);
}

function renderStats(stats) {
  for (const dd of document.querySelectorAll("#stats [data-f]")) {
    const v = stats[dd.dataset.f];
    dd.textContent = dd.dataset.raw ? String(v) : money(v);
  }
}

const chart = { candles: { "1m": [], "1h": [], "1d": [] }, interval: "1m" };

function drawChart() {
  const svg = document.getElementById("chart");
  const data = chart.candles[chart.interval].slice(-60);
  const W = 600, H = 260, priceH = 190, volTop = 200;
  const nodes = [];
  if (data.length) {
    const hi = Math.max(...data.map((c) => c.h)), lo = Math.min(...data.map((c) => c.l));
    const span = Math.max(hi - lo, 1), vmax = Math.max(...data.map((c) => c.v), 1);
    const step = W / Math.max(data.length, 20), body = Math.max(step * 0.6, 1);
    const y = (p) => 10 + (hi - p) / span * (priceH - 20);
    data.forEach((c, i) => {
      const x = i * step + step / 2, up = c.c >= c.o, colour = up ? "#137333" : "#b3261e";
      const wick = document.createElementNS(SVG, "line");
      wick.setAttribute("x1", x); wick.setAttribute("x2", x); wick.setAttribute("y1", y(c.h)); wick.setAttribute("y2", y(c.l));
      wick.setAttribute("stroke", colour);
      const rect = document.createElementNS(SVG, "rect");
      const top = y(Math.max(c.o, c.c));
      rect.setAttribute("x", x - body / 2); rect.setAttribute("width", body);
      rect.setAttribute("y", top); rect.setAttribute("height", Math.max(y(Math.min(c.o, c.c)) - top, 1));
      rect.setAttribute("fill", colour); rect.setAttribute("class", "candle");
      const vol = document.createElementNS(SVG, "rect");
      const vh = c.v / vmax * (H - volTop - 2);
      vol.setAttribute("x", x - body / 2); vol.setAttribute("width", body);
      vol.setAttribute("y", H - vh); vol.setAttribute("height", vh); vol.setAttribute("fill", "#9bb5a3");
      nodes.push(wick, rect, vol);
    });
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", 4); label.setAttribute("y", 12); label.setAttribute("font-size", "11");
    label.textContent = `${money(hi)} / ${money(lo)}`;
    nodes.push(label);
  }
  svg.replaceChildren(...nodes);
  const last = data[data.length - 1];
  document.getElementById("candle-info").textContent = last
    ? `Last ${chart.interval} candle: O ${money(last.o)} H ${money(last.h)} L ${money(last.l)} C ${money(last.c)} V ${last.v} (${data.length} shown)`
    : "No trades yet.";
}

function mergeCandle(interval, c) {
  const list = chart.candles[interval];
  if (list.length && list[list.length - 1].t === c.t) list[list.length - 1] = c; else list.push(c);
}

function live(url, onData) {
  const state = document.getElementById("live-state");
  const source = new EventSource(url);
  source.onopen = () => { if (state) state.textContent = "Live: connected"; };
  source.onerror = () => { if (state) state.textContent = "Live: reconnecting…"; };
  source.addEventListener("reload", () => { source.close(); location.reload(); });
  source.onmessage = (e) => onData(JSON.parse(e.data));
}

async function marketPage(section) {
  const symbol = section.dataset.symbol;
  for (const td of document.querySelectorAll("#tape [data-ns]")) td.textContent = utc(td.dataset.ns);
  const doc = await (await fetch(`/api/instruments/${encodeURIComponent(symbol)}`)).json();
  chart.candles = doc.candles;
  drawChart();
  for (const b of document.querySelectorAll("#intervals button")) {
    b.addEventListener("click", () => {
      chart.interval = b.dataset.i;
      for (const o of document.querySelectorAll("#intervals button")) o.classList.toggle("on", o === b);
      drawChart();
    });
  }
  live(`/api/stream?instrument=${encodeURIComponent(symbol)}`, (ev) => {
    if (ev.type !== "market" || ev.symbol !== symbol) return;
    renderBook(ev.book);
    renderStats(ev.stats);
    addTrades(ev.trades);
    document.getElementById("halted").hidden = !ev.halted;
    for (const [interval, c] of Object.entries(ev.candles)) mergeCandle(interval, c);
    drawChart();
  });
}

function overviewPage(table) {
  live("/api/stream", (ev) => {
    if (ev.type !== "market") return;
    const tr = table.querySelector(`tr[data-symbol="${CSS.escape(ev.symbol)}"]`);
    if (!tr) return;
    for (const td of tr.querySelectorAll("[data-f]")) {
      const v = ev.stats[td.dataset.f];
      td.textContent = td.dataset.f === "volume" || td.dataset.f === "trades" ? String(v) : money(v);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const section = document.getElementById("market");
  if (section) marketPage(section);
  const table = document.querySelector("[data-live=overview]");
  if (table) overviewPage(table);
});
