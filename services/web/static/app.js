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

const chart = { candles: { "1m": [], "1h": [], "1d": [] }, interval: "1m", tick: 1 };

function svgNode(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

const stamp = (ns, interval) => {
  const iso = new Date(Number(BigInt(ns) / 1000000n)).toISOString();
  return interval === "1d" ? iso.slice(0, 10) : interval === "1h" ? iso.slice(5, 13).replace("T", " ") + "h" : iso.slice(11, 16);
};

// Candles on the left 540 units, the price scale on the right; volume bars below. A flat range (one
// trade, or every trade at one price) is widened by a tick either side so the candle sits mid-chart and
// the scale's labels keep apart.
function drawChart() {
  const svg = document.getElementById("chart");
  const data = chart.candles[chart.interval].slice(-60);
  const W = 540, H = 260, top = 10, priceH = 180, volTop = 205, axis = 546;
  const nodes = [];
  if (data.length) {
    let hi = Math.max(...data.map((c) => c.h)), lo = Math.min(...data.map((c) => c.l));
    if (hi === lo) { hi += chart.tick; lo = Math.max(lo - chart.tick, 0); }
    const span = hi - lo, vmax = Math.max(...data.map((c) => c.v), 1);
    const step = W / Math.max(data.length, 20), body = Math.max(step * 0.6, 1);
    const y = (p) => top + (hi - p) / span * priceH;
    for (const p of [hi, (hi + lo) / 2, lo]) {
      nodes.push(svgNode("line", { x1: 0, x2: W, y1: y(p), y2: y(p), stroke: "#e3e7e4" }));
      nodes.push(svgNode("text", { x: axis, y: y(p) + 4, "font-size": 11, fill: "#445" }, money(Math.round(p))));
    }
    data.forEach((c, i) => {
      const x = i * step + step / 2, colour = c.c >= c.o ? "#137333" : "#b3261e";
      const bodyTop = y(Math.max(c.o, c.c)), vh = c.v / vmax * (H - volTop - 14);
      nodes.push(svgNode("line", { x1: x, x2: x, y1: y(c.h), y2: y(c.l), stroke: colour }));
      nodes.push(svgNode("rect", { x: x - body / 2, width: body, y: bodyTop, height: Math.max(y(Math.min(c.o, c.c)) - bodyTop, 1),
                                   fill: colour, class: "candle" }));
      nodes.push(svgNode("rect", { x: x - body / 2, width: body, y: H - 14 - vh, height: vh, fill: "#9bb5a3" }));
    });
    nodes.push(svgNode("text", { x: axis, y: volTop + 8, "font-size": 11, fill: "#445" }, `${vmax} t`));
    nodes.push(svgNode("text", { x: 0, y: H - 2, "font-size": 11, fill: "#445" }, stamp(data[0].t, chart.interval)));
    if (data.length > 1) {
      const x = (data.length - 1) * step + step / 2;
      nodes.push(svgNode("text", { x, y: H - 2, "font-size": 11, fill: "#445", "text-anchor": "end" }, stamp(data[data.length - 1].t, chart.interval)));
    }
  }
  svg.replaceChildren(...nodes);
  const last = data[data.length - 1];
  document.getElementById("candle-info").textContent = last
    ? `Last ${chart.interval} candle: O ${money(last.o)} H ${money(last.h)} L ${money(last.l)} C ${money(last.c)} V ${last.v} (${data.length} shown, times UTC)`
    : "No trades yet.";
}

// The daily-prices table, newest first: the day's row replaced, or a new day's put on top.
function renderDaily(c) {
  const body = document.getElementById("daily");
  const cells = [[stamp(c.t, "1d")], [money(c.o)], [money(c.h)], [money(c.l)], [money(c.c)], [money(c.vwap)], [String(c.v)], [String(c.n)]];
  const tr = row(cells);
  tr.dataset.t = String(c.t);
  const same = body.querySelector(`tr[data-t="${CSS.escape(String(c.t))}"]`);
  if (same) body.replaceChild(tr, same); else body.insertBefore(tr, body.firstChild);
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
  chart.tick = doc.tick;
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
    if (ev.candles["1d"]) renderDaily(ev.candles["1d"]);
    drawChart();
  });
}

function overviewPage(table) {
  live("/api/stream", (ev) => {
    if (ev.type !== "market") return;
    const tr = table.querySelector(`tr[data-symbol="${CSS.escape(ev.symbol)}"]`);
    if (!tr) return;
    const best = { best_bid: ev.book.bids.length ? ev.book.bids[0][0] : 0, best_ask: ev.book.asks.length ? ev.book.asks[0][0] : 0 };
    for (const td of tr.querySelectorAll("[data-f]")) {
      const v = td.dataset.f in best ? best[td.dataset.f] : ev.stats[td.dataset.f];
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
