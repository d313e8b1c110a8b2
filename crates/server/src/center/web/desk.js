// The agent desktop: presence, ringing offers with the customer's record (the screen pop),
// chats side by side, and wrap-up notes. Everything arrives over one WebSocket; if it drops,
// the page reconnects, unless another tab of the same agent has taken over.
import * as softphone from "./softphone.js";

const $ = (id) => document.getElementById(id);
const presence = $("presence");
const connection = $("connection");
const offers = $("offers");
const contacts = $("contacts");
let socket = null;
let replaced = false;
let retry = 500;
// Offers from customers nobody knew: contact → the fields of the "new customer" form.
const unknownCustomers = new Map();
// Calls among the offered contacts (they get call controls, not a chat box).
const calls = new Set();
const PRESENCE = {
  Offline: "オフライン / Offline",
  Available: "受付可 / Available",
  OnContact: "対応中 / On contact",
  AfterContactWork: "後処理 / After-contact work",
  Away: "離席 / Away",
};

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

// What the agent does while the page's socket is still opening (a click right after the page
// loads) is sent once it opens, not lost.
const opening = [];

function send(message) {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  else if (socket?.readyState === WebSocket.CONNECTING) opening.push(message);
}

function table(rows) {
  const body = element("tbody");
  for (const [name, value] of rows) body.append(element("tr", {}, element("th", {}, name), element("td", {}, value)));
  return element("table", {}, body);
}

// Past contacts, newest first; a chat's transcript folds out under its row.
function history(pastContacts) {
  const body = element("tbody");
  for (const past of pastContacts) {
    const summary = `${past.channel} · ${past.agent ?? "—"} · ${past.outcome}${past.notes ? " · " + past.notes : ""}`;
    const cell = element("td", {}, summary);
    if (past.transcript.length > 0) {
      const lines = past.transcript.map((line) => element("p", { class: "line" }, `${line.from}: ${line.text}`));
      cell.append(element("details", { class: "transcript" }, element("summary", {}, `会話 / transcript (${past.transcript.length})`), ...lines));
    }
    body.append(element("tr", {}, element("th", {}, past.at), cell));
  }
  return element("table", { class: "history" }, body);
}

function offer(message) {
  const card = element("div", { class: "card offer", id: `offer-${message.contact}`, "data-contact": String(message.contact) });
  const kind = message.channel === "Chat" ? "チャット / chat" : "電話 / call";
  card.append(element("h2", {}, `${kind}: ${message.from}`));
  if (message.customer.length > 0) {
    card.append(element("h3", {}, "顧客 / customer"), table(message.customer));
  } else {
    card.append(element("p", { class: "muted" }, "新規のお客様 / new customer"));
    if (message.new_customer.length > 0) unknownCustomers.set(message.contact, { fields: message.new_customer, from: message.from, name: message.attributes.name ?? "" });
  }
  if (message.history.length > 0) card.append(element("h3", {}, "履歴 / history"), history(message.history));
  const accept = element("button", { class: "accept" }, "応答 / Accept");
  const reject = element("button", { class: "reject" }, "拒否 / Reject");
  accept.addEventListener("click", async () => {
    softphone.stopRing(message.contact);
    // A call offered while the phone was off: Accept turns it on first, so the call has
    // somewhere to go. If the microphone is refused, the offer stays to be rejected.
    if (calls.has(message.contact) && softphone.available() && !softphone.isOn()) {
      accept.disabled = true;
      const ready = await softphone.turnOnForCall();
      accept.disabled = false;
      if (!ready) return;
    }
    send({ type: "accept", contact: message.contact });
  });
  reject.addEventListener("click", () => {
    softphone.stopRing(message.contact);
    send({ type: "reject", contact: message.contact });
  });
  card.append(element("p", {}, accept, reject));
  offers.append(card);
  if (message.channel !== "Chat") {
    calls.add(message.contact);
    if (softphone.isOn()) {
      accept.before(element("span", { class: "ringing" }, "着信中 / ringing… "));
      softphone.ring(message.contact);
    } else if (softphone.available()) {
      accept.before(element("span", { class: "phone-off" }, "電話はオフです。応答すると電話をオンにします / The phone is off: Accept turns it on "));
    }
  }
}

function pane(contact) {
  let card = $(`contact-${contact}`);
  if (card) return card;
  const offered = $(`offer-${contact}`);
  card = element("div", { class: "card", id: `contact-${contact}` });
  if (offered) {
    for (const part of offered.querySelectorAll("h2, h3, table, p.muted")) card.append(part.cloneNode(true));
    offered.remove();
  }
  const log = element("div", { class: "log" });
  const call = calls.has(contact);
  const end = element("button", { class: "end" }, call ? "切る / Hang up" : "終了 / End");
  end.addEventListener("click", () => send({ type: "end", contact }));
  if (call) {
    log.classList.add("call-log");
    card.append(log);
    if (softphone.isOn()) card.append(softphone.callControls(contact));
    card.append(element("p", {}, end));
  } else {
    const text = element("input", { maxlength: "2000", autocomplete: "off", "aria-label": "message" });
    const say = element("form", { class: "row" }, text, element("button", { type: "submit" }, "送信 / Send"));
    say.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!text.value.trim()) return;
      send({ type: "message", contact, text: text.value });
      log.append(element("p", { class: "line me" }, `me: ${text.value}`));
      text.value = "";
    });
    card.append(log, say, element("p", {}, end));
  }
  const unknown = unknownCustomers.get(contact);
  if (unknown) card.append(newCustomerForm(contact, unknown));
  contacts.append(card);
  return card;
}

// The record of a customer nobody knew, made while talking to them: the number or address they
// came from is filled in where it fits, and genkan adds it if the agent leaves it out.
function newCustomerForm(contact, { fields, from, name }) {
  const form = element("form", { class: "new-customer" }, element("h3", {}, "顧客を登録 / create customer record"));
  const inputs = [];
  for (const field of fields) {
    let value = "";
    if (/mail/i.test(field) && from.includes("@")) value = from;
    else if (/(phone|tel)/i.test(field) && !from.includes("@")) value = from;
    else if (/name/i.test(field)) value = name;
    const input = element("input", { name: field, maxlength: "1000", autocomplete: "off", value });
    inputs.push(input);
    form.append(element("label", {}, `${field} `, input));
  }
  form.append(element("p", {}, element("button", { type: "submit", class: "create-customer" }, "登録 / Create")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send({ type: "create_customer", contact, fields: inputs.map((input) => [input.name, input.value]) });
    form.querySelector("button").disabled = true;
  });
  return form;
}

function customerCreated(message) {
  unknownCustomers.delete(message.contact);
  const card = pane(message.contact);
  card.querySelector("form.new-customer")?.remove();
  card.querySelector("p.muted")?.remove();
  card.querySelector(".log").before(element("h3", {}, `顧客 / customer #${message.record_id}`), table(message.customer));
}

function wrapUp(contact) {
  const card = pane(contact);
  for (const part of card.querySelectorAll("form.row, button.end, p.call-controls")) part.remove();
  if (card.querySelector("textarea")) return;
  const notes = element("textarea", { rows: "3", cols: "60", "aria-label": "notes" });
  const save = element("button", { class: "save-notes" }, "メモを保存 / Save notes");
  save.addEventListener("click", () => {
    send({ type: "notes", contact, notes: notes.value });
    card.remove();
  });
  card.append(element("h3", {}, "後処理 / wrap-up"), notes, element("p", {}, save));
}

function receive(message) {
  switch (message.type) {
    case "presence":
      presence.textContent = PRESENCE[message.presence] ?? message.presence;
      presence.dataset.presence = message.presence;
      break;
    case "offer":
      offer(message);
      break;
    case "withdrawn":
      softphone.stopRing(message.contact);
      $(`offer-${message.contact}`)?.remove();
      break;
    case "connected":
      softphone.stopRing(message.contact);
      pane(message.contact);
      break;
    case "message":
      pane(message.contact).querySelector(".log").append(element("p", { class: "line from-customer" }, `customer: ${message.text}`));
      break;
    case "ended":
      pane(message.contact).querySelector(".log").append(element("p", { class: "line from-center" }, "— ended —"));
      break;
    case "wrap_up":
      wrapUp(message.contact);
      break;
    case "customer_created":
      customerCreated(message);
      break;
    case "problem": {
      const card = pane(message.contact);
      card.querySelector("form.new-customer button")?.removeAttribute("disabled");
      card.append(element("p", { class: "problem", role: "alert" }, message.message));
      break;
    }
    case "replaced":
      replaced = true;
      connection.textContent = "別のタブで開かれました / opened in another tab";
      break;
  }
}

function connect() {
  socket = new WebSocket(`wss://${location.host}/_genkan/desk/ws`);
  socket.addEventListener("open", () => {
    retry = 500;
    connection.textContent = "";
    for (const message of opening.splice(0)) socket.send(JSON.stringify(message));
  });
  socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
  socket.addEventListener("close", () => {
    if (replaced) return;
    connection.textContent = "再接続中 / reconnecting…";
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10_000);
  });
}

for (const button of document.querySelectorAll("#switch button")) {
  button.addEventListener("click", () => send({ type: "status", status: button.dataset.status }));
}
softphone.init();
connect();
