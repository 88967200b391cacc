// recon console: plain JavaScript over recon's HTTP API. Every value from
// the API is put in the page as text (never as HTML), amounts are shown as
// the strings the API sends (never parsed into floating point), and the
// token lives in this tab's sessionStorage only.
"use strict";

const TOKEN_KEY = "recon.token";
const state = { who: null, item: null, loan: null };

const $ = (id) => document.getElementById(id);

// el builds an element: el("td", {class: "num"}, "12.50", otherNode).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// api calls recon with the stored token; a 401 sends the person to sign in.
async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (token()) headers["Authorization"] = "Bearer " + token();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text }; }
  if (resp.status === 401) {
    showLogin("The API refused the token (401): sign in again.");
    throw new APIError(401, "unauthorized");
  }
  if (!resp.ok) throw new APIError(resp.status, (data && data.error) || resp.statusText);
  return data;
}

function flash(text, kind) {
  const f = $("flash");
  f.textContent = text;
  f.className = kind || "";
}

function age(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
}

function money(amount, currency) { return (amount === undefined || amount === null ? "" : amount) + (currency ? " " + currency : ""); }

// ---- sign in ----

function showLogin(message) {
  $("login").hidden = false;
  $("view").replaceChildren();
  $("login-error").textContent = message || "";
  $("token").focus();
}

async function whoami() {
  const headers = token() ? { "Authorization": "Bearer " + token() } : {};
  const resp = await fetch("/v1/whoami", { headers, cache: "no-store" });
  if (resp.status === 404) return { auth: "unknown", name: "console", scopes: [] };
  if (!resp.ok) return null;
  return resp.json();
}

async function signIn() {
  const who = await whoami();
  if (!who) { showLogin(token() ? "That token is not accepted." : ""); return false; }
  state.who = who;
  $("login").hidden = true;
  $("who").textContent = who.auth === "off" ? "access control off (no tokens configured)" : "signed in as " + who.name + " (" + (who.scopes || []).join(", ") + ")";
  $("logout").hidden = who.auth === "off";
  return true;
}

// ---- router ----

async function render() {
  if (!state.who && !(await signIn())) return;
  const hash = location.hash || "#/suspense";
  const [, page, ...rest] = hash.split("/");
  const arg = decodeURIComponent(rest.join("/"));
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.id === "nav-" + page);
  const view = $("view");
  view.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  try {
    switch (page) {
      case "loan": await renderLoan(view, arg); break;
      case "alerts": await renderAlerts(view); break;
      case "breaks": await renderBreaks(view); break;
      default: await renderSuspense(view);
    }
  } catch (e) {
    if (e.status !== 401) view.replaceChildren(el("p", { class: "error" }, "Could not load: " + e.message));
  }
}

// ---- suspense ----

async function renderSuspense(view) {
  const data = await api("GET", "/v1/suspense");
  const items = data.items || [];
  const rows = items.map((it) => el("tr", { class: "suspense-item", dataset: { itemId: it.id } },
    el("td", {}, age(it.age_seconds), el("div", { class: "muted" }, it.since)),
    el("td", { class: "num" }, money(it.amount, it.currency)),
    el("td", {}, it.direction),
    el("td", {}, it.reason),
    el("td", {}, it.loan_id || ""),
    el("td", {}, evidence(it)),
    el("td", {}, el("button", { type: "button", class: "assign", dataset: { itemId: it.id }, onclick: () => openAssign(it) }, "Assign…"))));
  view.replaceChildren(
    el("h2", {}, "Suspense queue ", el("span", { class: "muted" }, "(" + (data.total ?? items.length) + " open, oldest first" +
      (data.next ? "; the oldest " + items.length + " shown" : "") + ")")),
    items.length === 0 ? el("p", { class: "placeholder", id: "suspense-empty" }, "Nothing in suspense.") :
      el("table", { id: "suspense-table" },
        el("thead", {}, el("tr", {}, ["Age", "Amount", "Direction", "Reason", "Loan hint", "Evidence", ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows)));
}

function evidence(it) {
  const ev = it.evidence || {};
  const line = [ev.virtual_iban, ev.counterparty_name, ev.remittance_info || ev.creditor_reference || ev.bank_reference, ev.end_to_end_id, ev.booking_date].filter(Boolean).join(" · ");
  return el("details", {}, el("summary", {}, line || it.id), el("pre", {}, JSON.stringify(ev, null, 2)));
}

function openAssign(item) {
  state.item = item;
  state.loan = null;
  $("assign-item").textContent = "Item " + item.id + ": " + money(item.amount, item.currency) + " (" + item.reason + "), parked " + age(item.age_seconds) + " ago.";
  $("assign-loan").value = item.loan_id || "";
  $("assign-note").value = "";
  $("assign-error").textContent = "";
  $("assign-step-edit").hidden = false;
  $("assign-step-confirm").hidden = true;
  $("assign-dialog").showModal();
  $("assign-loan").focus();
}

async function reviewAssign() {
  const loanID = $("assign-loan").value.trim();
  const note = $("assign-note").value.trim();
  const err = $("assign-error");
  if (!loanID) { err.textContent = "Give the loan id."; return; }
  if (!note) { err.textContent = "An audit note is required: say why this money belongs to this loan."; return; }
  err.textContent = "";
  let loan;
  try {
    loan = await api("GET", "/v1/loans/" + encodeURIComponent(loanID));
  } catch (e) {
    err.textContent = e.status === 404 ? "There is no loan " + loanID + "." : "Could not check the loan: " + e.message;
    return;
  }
  const it = state.item;
  if (loan.currency !== it.currency) { err.textContent = "Loan " + loanID + " is in " + loan.currency + ", the item in " + it.currency + "."; return; }
  state.loan = loan;
  $("assign-summary").replaceChildren(
    "Assign ", el("strong", {}, money(it.amount, it.currency)), " (item " + it.id + ") to loan ", el("strong", {}, loan.loan_id),
    " — status " + loan.status + ", outstanding " + money(loan.outstanding, loan.currency) + ".",
    el("br"), "Note: “" + note + "”");
  $("assign-step-edit").hidden = true;
  $("assign-step-confirm").hidden = false;
  $("assign-confirm").focus();
}

async function confirmAssign() {
  const it = state.item, loan = state.loan;
  const note = $("assign-note").value.trim();
  const actor = "console:" + ((state.who && state.who.name) || "anonymous");
  $("assign-confirm").disabled = true;
  try {
    await api("POST", "/v1/suspense/" + encodeURIComponent(it.id) + "/assign", { loan_id: loan.loan_id, note, actor });
  } catch (e) {
    $("assign-confirm").disabled = false;
    $("assign-step-edit").hidden = false;
    $("assign-step-confirm").hidden = true;
    $("assign-error").textContent = "Not assigned: " + e.message;
    return;
  }
  $("assign-confirm").disabled = false;
  $("assign-dialog").close();
  flash("Assignment of " + it.id + " to " + loan.loan_id + " accepted; waiting for the ledger…", "");
  await waitBooked(it.id, loan.loan_id);
}

// waitBooked polls the queue until the matcher has booked the item (or
// says nothing for a minute).
async function waitBooked(itemID, loanID) {
  for (let i = 0; i < 60; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    let data;
    try { data = await api("GET", "/v1/suspense?limit=10000"); } catch (e) { continue; }
    if (!(data.items || []).some((x) => x.id === itemID)) {
      flash("Booked: item " + itemID + " is now on loan " + loanID + ".", "ok");
      const link = el("a", { href: "#/loan/" + encodeURIComponent(loanID), id: "booked-loan-link" }, " Open loan " + loanID);
      $("flash").append(link);
      if ((location.hash || "#/suspense").startsWith("#/suspense")) render();
      return;
    }
  }
  flash("Item " + itemID + " is still in suspense after a minute: the matcher may have rejected the assignment (see recon.matches.v1).", "err");
}

// ---- loans ----

async function renderLoan(view, loanID) {
  const search = el("form", { id: "loan-search", onsubmit: (ev) => { ev.preventDefault(); const v = $("loan-id").value.trim(); if (v) location.hash = "#/loan/" + encodeURIComponent(v); } },
    el("label", {}, "Loan id ", el("input", { id: "loan-id", value: loanID || "", autocomplete: "off" })), " ", el("button", { type: "submit" }, "Show"));
  if (!loanID) { view.replaceChildren(el("h2", {}, "Loans"), search); return; }
  let loan;
  try { loan = await api("GET", "/v1/loans/" + encodeURIComponent(loanID)); } catch (e) {
    if (e.status === 404) { view.replaceChildren(el("h2", {}, "Loans"), search, el("p", { class: "error" }, "There is no loan " + loanID + ".")); return; }
    throw e;
  }
  let entries = { entries: [], total: 0 };
  let entriesNote = null;
  try { entries = await api("GET", "/v1/loans/" + encodeURIComponent(loanID) + "/entries"); } catch (e) {
    if (e.status === 401) throw e;
    entriesNote = el("p", { class: "placeholder" }, "Entries unavailable: " + e.message);
  }
  const cur = loan.currency;
  const summary = el("dl", { class: "summary", id: "loan-summary" });
  summary.replaceChildren(...[["Status", loan.status, "status"], ["Virtual IBAN", loan.virtual_iban, "viban"], ["Principal", money(loan.principal, cur), "principal"],
    ["Owed", money(loan.owed, cur), "owed"], ["Paid", money(loan.paid, cur), "paid"], ["Outstanding", money(loan.outstanding, cur), "outstanding"],
    ["Overpaid (borrower credit)", money(loan.overpaid, cur), "overpaid"]].flatMap(([k, v, id]) => [el("dt", {}, k), el("dd", { id: "loan-" + id }, v)]));
  const schedule = (loan.schedule || []).length === 0 ? el("p", { class: "muted" }, "No schedule: the principal is owed as one amount.") :
    el("table", { id: "loan-schedule" },
      el("thead", {}, el("tr", {}, ["Due", "Principal", "Interest", "Fees"].map((h) => el("th", {}, h)))),
      el("tbody", {}, loan.schedule.map((s) => el("tr", {}, el("td", {}, s.due_date), el("td", { class: "num" }, money(s.principal, cur)),
        el("td", { class: "num" }, money(s.interest, cur)), el("td", { class: "num" }, money(s.fees, cur))))));
  const parts = ["principal", "interest", "fees", "credit"];
  const entryRows = (entries.entries || []).slice().reverse().map((e) => el("tr", { class: "loan-entry", dataset: { entryId: e.id, kind: e.kind } },
    el("td", {}, e.booked_at, e.effective_date ? el("div", { class: "muted" }, "effective " + e.effective_date) : null),
    el("td", {}, e.kind), el("td", {}, e.transaction_id || ""),
    parts.map((p) => el("td", { class: "num" }, e.allocated && e.allocated[p] !== undefined ? e.allocated[p] : "")),
    el("td", {}, [e.note, e.actor ? "by " + e.actor : null, e.reverses ? "reverses " + e.reverses : null].filter(Boolean).join(" · "))));
  const balances = await Promise.all(parts.map(async (p) => {
    const acct = "loan:" + loanID + ":" + p;
    try {
      const b = await api("GET", "/v1/accounts/" + encodeURIComponent(acct) + "/balance");
      const row = (b.balances || []).find((x) => x.currency === cur);
      return el("tr", {}, el("td", {}, acct), el("td", { class: "num" }, money(row ? row.balance : "0", cur)));
    } catch (e) { return el("tr", {}, el("td", {}, acct), el("td", { class: "error" }, e.message)); }
  }));
  view.replaceChildren(
    el("h2", {}, "Loan " + loan.loan_id), search, summary,
    el("h3", {}, "Schedule"), schedule,
    el("h3", {}, "Payments and allocations ", el("span", { class: "muted" }, "(" + (entries.total || 0) + " journal entries" + (entries.truncated ? ", newest shown" : "") + ", newest first; credits to the loan's accounts are positive)")),
    entriesNote || (entryRows.length === 0 ? el("p", { class: "muted", id: "loan-no-entries" }, "No payments yet.") :
      el("table", { id: "loan-entries" }, el("thead", {}, el("tr", {}, ["Booked", "Kind", "Transaction", ...parts, "Note"].map((h) => el("th", {}, h)))), el("tbody", {}, entryRows))),
    el("h3", {}, "Account balances ", el("span", { class: "muted" }, "(debits − credits)")),
    el("table", { id: "loan-balances" }, el("tbody", {}, balances)));
}

// ---- alerts ----

async function renderAlerts(view) {
  let data;
  try { data = await api("GET", "/v1/alerts"); } catch (e) {
    if (e.status === 404) { view.replaceChildren(el("h2", {}, "Alerts"), el("p", { class: "placeholder", id: "alerts-off" }, "Alerts are off on this recon: start it with an alert rules file (RECON_ALERTS_CONFIG).")); return; }
    throw e;
  }
  const alerts = data.alerts || [];
  const rows = alerts.map((a) => el("tr", { class: "alert", dataset: { alertId: a.id } },
    el("td", {}, a.at), el("td", {}, a.rule, el("div", { class: "muted" }, a.kind)), el("td", {}, a.state),
    el("td", {}, a.subject), el("td", { class: "num" }, money(a.value, a.currency), el("div", { class: "muted" }, "threshold " + money(a.threshold, a.currency))),
    el("td", {}, a.message), el("td", {}, deliveries(a)),
    el("td", {}, el("button", { type: "button", class: "redeliver", onclick: () => redeliver(a.id) }, "Redeliver"))));
  view.replaceChildren(el("h2", {}, "Alerts ", el("span", { class: "muted" }, "(newest first)")),
    alerts.length === 0 ? el("p", { class: "placeholder" }, "No alerts.") :
      el("table", { id: "alerts-table" }, el("thead", {}, el("tr", {}, ["At", "Rule", "State", "Subject", "Value", "Message", "Deliveries", ""].map((h) => el("th", {}, h)))), el("tbody", {}, rows)));
}

function deliveries(a) {
  const ds = a.deliveries || [];
  if (ds.length === 0) return el("span", { class: "muted" }, "none");
  return el("ul", {}, ds.map((d) => {
    const last = (d.attempts || [])[d.attempts.length - 1];
    const lastText = last ? "last attempt " + last.at + ": " + (last.status ? "HTTP " + last.status : "") + (last.error ? " " + last.error : "") : "no attempt yet";
    return el("li", {}, d.endpoint + ": " + d.state + (d.reason ? " (" + d.reason + ")" : "") + ", " + (d.attempts || []).length + " attempt(s); " + lastText + (d.next_at ? "; next " + d.next_at : ""));
  }));
}

async function redeliver(id) {
  if (!window.confirm("Deliver alert " + id + " again to its endpoints?")) return;
  try { await api("POST", "/v1/alerts/" + encodeURIComponent(id) + "/redeliver"); flash("Alert " + id + " queued for redelivery.", "ok"); render(); } catch (e) {
    if (e.status !== 401) flash("Not redelivered: " + e.message, "err");
  }
}

// ---- statement breaks ----

async function renderBreaks(view) {
  let data;
  try { data = await api("GET", "/v1/breaks"); } catch (e) {
    if (e.status === 404 || e.status === 405) {
      view.replaceChildren(el("h2", {}, "Statement breaks"), el("p", { class: "placeholder", id: "breaks-missing" },
        "This recon does not serve statement breaks (GET /v1/breaks answered " + e.status + "). A break is a bank statement whose opening balance, " +
        "entries and closing balance do not agree with each other or with the previous statement; recon's alert rules can still report them."));
      return;
    }
    throw e;
  }
  const list = Array.isArray(data) ? data : (data && (data.breaks || data.items)) || [];
  view.replaceChildren(el("h2", {}, "Statement breaks ", el("span", { class: "muted" }, "(" + list.length + ")")),
    list.length === 0 ? el("p", { class: "placeholder", id: "breaks-none" }, "No statement breaks.") : objectTable(list, "breaks-table"));
}

// objectTable shows a list of flat objects, one column per key seen.
function objectTable(list, id) {
  const keys = [...new Set(list.flatMap((o) => Object.keys(o || {})))];
  const cell = (v) => (v !== null && typeof v === "object") ? el("pre", {}, JSON.stringify(v, null, 2)) : (v === undefined ? "" : String(v));
  return el("table", { id }, el("thead", {}, el("tr", {}, keys.map((k) => el("th", {}, k)))),
    el("tbody", {}, list.map((o) => el("tr", {}, keys.map((k) => el("td", {}, cell(o[k])))))));
}

// ---- wiring ----

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    state.who = null;
    if (await signIn()) render();
  });
  $("logout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); state.who = null; $("who").textContent = ""; showLogin(""); });
  $("assign-review").addEventListener("click", reviewAssign);
  $("assign-back").addEventListener("click", () => { $("assign-step-edit").hidden = false; $("assign-step-confirm").hidden = true; });
  $("assign-confirm").addEventListener("click", confirmAssign);
  $("assign-cancel").addEventListener("click", () => $("assign-dialog").close());
  window.addEventListener("hashchange", render);
  render();
});
