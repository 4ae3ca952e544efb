// runner operator console: sign in with a key, follow the human queue and pending escalations
// of your workspaces live (Socket.io), open a transcript, claim, answer, hand back, approve,
// reject. Plain JavaScript, no build step; data is inserted as text only (never as HTML).
"use strict";

(function () {
  const API = "/api/agent-lifecycle";
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem("runner-console-key");
  let socket = null;
  let openSession = null;
  let refreshTimer = null;

  function say(text, isError) {
    const status = $("status");
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  async function call(method, path, body) {
    const response = await fetch(API + path, {
      method,
      headers: Object.assign(
        { Authorization: "Bearer " + token, Accept: "application/json" },
        body === undefined ? {} : { "Content-Type": "application/json" }
      ),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const message = data && data.error ? data.error.message : response.status + " " + response.statusText;
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "—" : String(text);
    row.appendChild(td);
    return td;
  }

  function button(label, onClick, secondary) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (secondary) b.className = "secondary";
    b.addEventListener("click", async () => {
      b.disabled = true;
      try { await onClick(); } catch (e) { say(e.message, true); } finally { b.disabled = false; }
    });
    return b;
  }

  function when(seconds) {
    return seconds ? new Date(seconds * 1000).toLocaleTimeString() : "—";
  }

  function fill(tableId, emptyId, countId, items, render) {
    const body = $(tableId).querySelector("tbody");
    body.replaceChildren(...items.map(render));
    $(emptyId).hidden = items.length > 0;
    $(tableId).hidden = items.length === 0;
    $(countId).textContent = "(" + items.length + ")";
  }

  function escalationRow(item) {
    const esc = item.escalation || {};
    const row = document.createElement("tr");
    row.dataset.session = item.session_id;
    cell(row, item.session_id);
    cell(row, item.team);
    cell(row, esc.level);
    cell(row, esc.target);
    cell(row, item.status);
    cell(row, esc.reason || esc.trigger);
    const td = cell(row, "");
    const actions = document.createElement("div");
    actions.className = "actions";
    const sid = item.session_id;
    const label = item.status === "suggested" ? "Accept" : "Approve";
    const verb = item.status === "suggested" ? "accept" : "approve";
    actions.append(
      button(label + " " + sid, async () => {
        await call("POST", "/sessions/" + encodeURIComponent(sid) + "/escalation/" + verb);
        say("Escalation of " + sid + " " + (verb === "accept" ? "accepted" : "approved") + ".");
        await refresh();
      }),
      button("Reject " + sid, async () => {
        await call("POST", "/sessions/" + encodeURIComponent(sid) + "/escalation/reject", {});
        say("Escalation of " + sid + " rejected.");
        await refresh();
      }, true),
      button("Transcript of " + sid, () => open(sid), true)
    );
    td.replaceChildren(actions);
    return row;
  }

  function queueRow(item) {
    const row = document.createElement("tr");
    row.dataset.session = item.session_id;
    cell(row, item.session_id);
    cell(row, item.team);
    cell(row, item.priority);
    cell(row, item.reason);
    cell(row, when(item.enqueued_at));
    cell(row, item.claimed_by);
    const td = cell(row, "");
    const actions = document.createElement("div");
    actions.className = "actions";
    const sid = item.session_id;
    if (!item.claimed_by) {
      actions.append(button("Claim " + sid, async () => {
        await call("POST", "/sessions/" + encodeURIComponent(sid) + "/claim");
        say("You claimed " + sid + ".");
        await refresh();
        await open(sid);
      }));
    }
    actions.append(button("Open " + sid, () => open(sid), true));
    td.replaceChildren(actions);
    return row;
  }

  async function refresh() {
    const [escalations, queue] = await Promise.all([
      call("GET", "/escalations"),
      call("GET", "/human-queue"),
    ]);
    fill("escalations", "escalations-empty", "escalations-count", escalations.escalations, escalationRow);
    fill("queue", "queue-empty", "queue-count", queue.items, queueRow);
    if (openSession) await loadSession(openSession);
  }

  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => refresh().catch((e) => say(e.message, true)), 100);
  }

  async function loadSession(sid) {
    const [session, transcript] = await Promise.all([
      call("GET", "/sessions/" + encodeURIComponent(sid)),
      call("GET", "/sessions/" + encodeURIComponent(sid) + "/transcript"),
    ]);
    $("session-id").textContent = sid;
    $("session-state").textContent = "State: " + session.state +
      (session.team ? " · team " + session.team : "") + (session.agent ? " · agent " + session.agent : "");
    $("transcript").replaceChildren(...transcript.entries.map((entry) => {
      const li = document.createElement("li");
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = entry.role === "operator" ? (entry.author || "operator") + ":" : "user:";
      li.append(who, document.createTextNode(entry.text));
      return li;
    }));
    if (transcript.entries.length === 0) {
      const li = document.createElement("li");
      li.textContent = "Nothing written while a person had the session.";
      $("transcript").replaceChildren(li);
    }
  }

  async function open(sid) {
    openSession = sid;
    $("session").hidden = false;
    await loadSession(sid);
    $("session-title").focus();
  }

  function connect() {
    if (typeof io !== "function") { say("The Socket.io client did not load; live updates are off.", true); return; }
    socket = io("/agent-lifecycle", { auth: { token }, transports: ["websocket", "polling"] });
    const connection = $("connection");
    socket.on("connect", () => { connection.textContent = "Live"; connection.className = "connection live"; });
    socket.on("disconnect", () => { connection.textContent = "Reconnecting…"; connection.className = "connection down"; });
    socket.on("connect_error", (err) => {
      connection.textContent = "Not connected";
      connection.className = "connection down";
      const message = err && err.data && err.data.message ? err.data.message : (err && err.message);
      say("Live updates: " + message, true);
    });
    socket.onAny((event) => {
      if (event.startsWith("escalation:") || event.startsWith("human:") || event === "session:state-changed") {
        scheduleRefresh();
      }
    });
  }

  async function signIn(key) {
    token = key;
    try {
      await refresh();
    } catch (e) {
      token = null;
      sessionStorage.removeItem("runner-console-key");
      say(e.status === 401 ? "That key or token is not valid." : e.message, true);
      return;
    }
    sessionStorage.setItem("runner-console-key", key);
    $("sign-in-section").hidden = true;
    $("work").hidden = false;
    $("sign-out").hidden = false;
    say("Signed in.");
    connect();
  }

  function signOut() {
    sessionStorage.removeItem("runner-console-key");
    if (socket) socket.disconnect();
    location.reload();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("key").value.trim();
      $("key").value = "";
      if (key) signIn(key);
    });
    $("sign-out").addEventListener("click", signOut);
    $("answer").addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = $("answer-text").value.trim();
      if (!text || !openSession) return;
      try {
        await call("POST", "/sessions/" + encodeURIComponent(openSession) + "/answer", { text });
        $("answer-text").value = "";
        say("Answer sent.");
        await loadSession(openSession);
      } catch (e) { say(e.message, true); }
    });
    $("hand-back").addEventListener("click", async () => {
      if (!openSession) return;
      try {
        const result = await call("POST", "/sessions/" + encodeURIComponent(openSession) + "/hand-back");
        say("Handed back to " + result.agent + ".");
        await refresh();
      } catch (e) { say(e.message, true); }
    });
    $("close-session").addEventListener("click", () => { openSession = null; $("session").hidden = true; });
    if (token) signIn(token);
  });
})();
