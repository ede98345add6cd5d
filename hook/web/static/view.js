// The pages' script. On every page it shows times in the browser's local time (the server
// writes UTC into <time datetime>; without scripts that stays). On the list's first page it
// polls view.json (same filters: body data-poll) and rebuilds the tables from it, the same
// markup hook/web/view.py renders. Text only ever goes in through textContent, never as HTML.
// A thumbnail that loaded is marked data-loaded="1" with its natural width in data-width.
"use strict";

(function () {
  const EVERY_MS = 3000;
  const QUEUE_ORDER = ["queued", "retrying", "running", "done", "failed"];
  const EVENT_HEADS = ["picture", "camera", "labels", "status", "arrived", "labeled", "finished", ""];
  const FAILURE_HEADS = ["failed", "camera", "attempts", "reason", ""];
  const WORKER_HEADS = ["host", "pid", "state", "last seen", "started", "done", "in flight"];

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function two(n) {
    return String(n).padStart(2, "0");
  }

  function localize(node) {
    const at = new Date(node.dateTime);
    if (isNaN(at.getTime())) return;
    node.title = node.dateTime.slice(0, 10) + " " + node.dateTime.slice(11, 19) + " UTC";
    node.textContent = at.getFullYear() + "-" + two(at.getMonth() + 1) + "-" + two(at.getDate()) +
      " " + two(at.getHours()) + ":" + two(at.getMinutes()) + ":" + two(at.getSeconds());
    node.dataset.local = "1";
  }

  function time(stamp) {
    if (!stamp) return null;
    const node = el("time", "", stamp.slice(0, 10) + " " + stamp.slice(11, 19) + " UTC");
    node.dateTime = stamp;
    localize(node);
    return node;
  }

  function seconds(after) {
    if (after === null || after === undefined) return null;
    return el("span", "after", "+" + after.toFixed(2) + " s");
  }

  function link(href, text, cls) {
    const a = el("a", cls || "", text);
    a.href = href;  // relative to the page: the key stays in the address only
    return a;
  }

  function action(path, verb) {
    const form = el("form", "action");
    form.method = "post";
    form.action = path;
    const button = el("button", verb, verb);
    button.type = "submit";
    form.append(button);
    return form;
  }

  function row(id, heads, cells) {
    const tr = el("tr");
    if (id) tr.dataset.id = id;
    cells.forEach((cell, index) => {
      const td = el("td");
      if (heads[index]) td.dataset.label = heads[index];
      for (const part of [].concat(cell)) {
        if (part === null || part === undefined) continue;
        td.append(typeof part === "string" ? document.createTextNode(part) : part);
      }
      tr.append(td);
    });
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

  function thumbnail(event, kept) {
    if (!event.thumbnail) return el("span", "none", "no picture");
    let img = kept.get(event.thumbnail);
    if (!img) {
      img = el("img", "thumb");
      img.alt = "annotated picture";
      img.src = event.thumbnail;
      markLoaded(img);
    }
    const a = link(event.page, "");
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

  function camera(name) {
    if (!name) return "";
    return link("view?" + new URLSearchParams({ camera: name }).toString(), name);
  }

  function eventRow(event, kept) {
    return row(event.id, EVENT_HEADS, [
      thumbnail(event, kept), camera(event.camera), labels(event), status(event),
      time(event.arrived), seconds(event.labeled_after), seconds(event.finished_after),
      link(event.page, "details", "details"),
    ]);
  }

  function failureRow(failure, canAct) {
    const last = [link(failure.page, "details", "details")];
    if (canAct) last.push(action(failure.id + "/retry", "retry"));
    return row(failure.id, FAILURE_HEADS, [
      time(failure.failed), failure.camera || "", String(failure.attempts),
      el("span", "why", failure.reason || ""), last,
    ]);
  }

  function workerRow(worker) {
    return row(null, WORKER_HEADS, [
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

  function pager(data) {
    const nav = document.querySelector("nav.pager");
    const links = [];
    if (data.newer) links.push(Object.assign(link(data.newer, "\u2190 newer"), { id: "newer" }));
    if (data.older) links.push(Object.assign(link(data.older, "older \u2192"), { id: "older" }));
    nav.replaceChildren(...links);
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
    fill("failures", data.failures.map((failure) => failureRow(failure, data.can_act)));
    pager(data);
  }

  function state(text, ok) {
    const live = document.getElementById("live");
    live.textContent = text;
    live.className = ok ? "ok" : "off";
  }

  async function poll(url) {
    try {
      const answer = await fetch(url, { cache: "no-store", credentials: "same-origin" });
      if (!answer.ok) throw new Error("the server answered " + answer.status);
      show(await answer.json());
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
      state("live, every " + EVERY_MS / 1000 + " s", true);
    } catch (error) {
      state("not updating: " + error.message, false);
    } finally {
      setTimeout(() => poll(url), EVERY_MS);
    }
  }

  document.querySelectorAll("time[datetime]").forEach(localize);
  document.querySelectorAll("img.thumb, img.picture").forEach(markLoaded);
  const url = document.body.dataset.poll;
  if (url) {
    state("live, every " + EVERY_MS / 1000 + " s", true);
    setTimeout(() => poll(url), EVERY_MS);
  } else if (document.getElementById("live")) {
    state("an older page: not refreshed", true);
  }
})();
