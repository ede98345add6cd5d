// The live page refreshes itself: it polls view.json and rebuilds its tables from it, the same
// markup hook/web/view.py renders. Text only ever goes in through textContent, never as HTML.
// A thumbnail that loaded is marked data-loaded="1" with its natural width in data-width.
"use strict";

(function () {
  const EVERY_MS = 3000;
  const QUEUE_ORDER = ["queued", "retrying", "running", "done", "failed"];

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function time(stamp) {
    if (!stamp) return null;
    const node = el("time", "", stamp.slice(0, 10) + " " + stamp.slice(11, 19));
    node.dateTime = stamp;
    return node;
  }

  function seconds(after) {
    if (after === null || after === undefined) return null;
    return el("span", "after", "+" + after.toFixed(2) + " s");
  }

  function link(href, text) {
    const a = el("a", "", text);
    a.href = href;  // relative to the page: the key stays in the address only
    return a;
  }

  function row(id, cells) {
    const tr = el("tr");
    if (id) tr.dataset.id = id;
    for (const cell of cells) {
      const td = el("td");
      for (const part of [].concat(cell)) {
        if (part === null || part === undefined) continue;
        td.append(typeof part === "string" ? document.createTextNode(part) : part);
      }
      tr.append(td);
    }
    return tr;
  }

  function markLoaded(img) {
    const mark = () => {
      if (img.naturalWidth > 0) {
        img.dataset.loaded = "1";
        img.dataset.width = String(img.naturalWidth);
      }
    };
    if (img.complete) mark();
    img.addEventListener("load", mark);
  }

  function thumbnail(src, kept) {
    if (!src) return el("span", "none", "no picture");
    let img = kept.get(src);
    if (!img) {
      img = el("img", "thumb");
      img.alt = "annotated picture";
      img.src = src;
      markLoaded(img);
    }
    const a = link(src, "");
    a.append(img);
    return a;
  }

  function labels(event) {
    if (!event.labels.length) {
      return event.labeled_after === null ? [] : [el("span", "none", "nothing found")];
    }
    return event.labels.map((found) => {
      const span = el("span", "label", found.label + " ");
      span.append(el("b", "", found.score.toFixed(2)));
      if (found.count > 1) span.append(" \u00d7" + found.count);
      return span;
    });
  }

  function status(event) {
    const parts = [el("span", "status " + event.status, event.status)];
    if (event.last_error && event.status !== "done") parts.push(el("div", "why", event.last_error));
    return parts;
  }

  function eventRow(event, kept) {
    return row(event.id, [
      thumbnail(event.thumbnail, kept), event.camera || "", labels(event), status(event),
      time(event.arrived), seconds(event.labeled_after), seconds(event.finished_after),
      link(event.id, "result"),
    ]);
  }

  function failureRow(failure) {
    return row(failure.id, [
      time(failure.failed), failure.camera || "", String(failure.attempts),
      el("span", "why", failure.reason || ""), link(failure.id, "result"),
    ]);
  }

  function workerRow(worker) {
    return row(null, [
      worker.host, String(worker.pid), el("span", "state " + worker.state, worker.state),
      worker.seen_ago.toFixed(0) + " s ago", time(worker.started),
      String(worker.done), String(worker.in_flight),
    ]);
  }

  function fill(name, rows) {
    const body = document.querySelector("#" + name + " tbody");
    body.replaceChildren(...rows);
    document.getElementById(name + "-empty").hidden = rows.length > 0;
  }

  function show(data) {
    document.getElementById("now").replaceChildren(time(data.now));
    const queue = document.getElementById("queue");
    queue.replaceChildren(...QUEUE_ORDER.map((name) => {
      const box = el("div", "count " + name);
      box.append(el("b", "", data.queue[name] || 0), " " + name);
      return box;
    }));
    const kept = new Map();  // thumbnails already shown are moved, not fetched again
    for (const img of document.querySelectorAll("#events img.thumb")) {
      kept.set(img.getAttribute("src"), img);
    }
    fill("workers", data.workers.map(workerRow));
    fill("events", data.events.map((event) => eventRow(event, kept)));
    fill("failures", data.failures.map(failureRow));
  }

  function state(text, ok) {
    const live = document.getElementById("live");
    live.textContent = text;
    live.className = ok ? "ok" : "off";
  }

  async function poll() {
    try {
      const answer = await fetch("view.json", { cache: "no-store", credentials: "same-origin" });
      if (!answer.ok) throw new Error("the server answered " + answer.status);
      show(await answer.json());
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
      state("live, every " + EVERY_MS / 1000 + " s", true);
    } catch (error) {
      state("not updating: " + error.message, false);
    } finally {
      setTimeout(poll, EVERY_MS);
    }
  }

  document.querySelectorAll("img.thumb").forEach(markLoaded);
  state("live, every " + EVERY_MS / 1000 + " s", true);
  setTimeout(poll, EVERY_MS);
})();
