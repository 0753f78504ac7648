// Mariposa Web Messenger: the page's side of the live channel
// (docs/WEB-MESSENGER.md). Plain JavaScript, no libraries. Everything a
// user wrote is put into the page as text nodes, never as HTML.
"use strict";

const VERSION = 1;
const me = { handle: document.body.dataset.handle, name: "", personal: "", state: "online" };
const contacts = new Map();   // handle -> contact
let groups = [];              // [{id, name}]
const conversations = new Map(); // "c:handle" or "g:group" -> conversation
const pendingSends = new Map();  // id -> frame, until "sent" or "refused"
const starting = new Map();      // group_start id -> invited handles
let active = null;
let socket = null;
let page = null;
let lastSeen = 0;
let ackTimer = null;
let retry = 0;
let ended = false;
let unreadTotal = 0;

const STATES = { online: "Online", busy: "Busy", brb: "Be right back", away: "Away", phone: "On the phone",
  lunch: "Out to lunch", idle: "Idle", hidden: "Appear offline" };

const EMOTICONS = [
  [":-)", "smile"], [":)", "smile"], [":-D", "grin"], [":D", "grin"], [";-)", "wink"], [";)", "wink"],
  [":-(", "sad"], [":(", "sad"], [":-P", "tongue"], [":P", "tongue"], [":-O", "surprised"], [":O", "surprised"],
  [":-|", "neutral"], [":|", "neutral"], [":-S", "confused"], [":S", "confused"], [":-@", "angry"], [":@", "angry"],
  [":'(", "cry"], [":-$", "embarrassed"], [":$", "embarrassed"], ["(H)", "cool"], ["(L)", "heart"],
  ["(U)", "broken-heart"], ["(Y)", "thumbs-up"], ["(N)", "thumbs-down"], ["(K)", "kiss"], ["(F)", "rose"],
  ["(*)", "star"], ["(C)", "coffee"],
];
const EMOTICON_PATTERN = new RegExp(EMOTICONS.map(([code]) => code.replace(/[()*|$'?]/g, "\\$&")).join("|"), "gi");
const EMOTICON_NAMES = new Map(EMOTICONS.map(([code, name]) => [code.toUpperCase(), name]));

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

// Text with the classic emoticon codes as pictures.
function withEmoticons(text) {
  const out = document.createDocumentFragment();
  let at = 0;
  for (const match of text.matchAll(EMOTICON_PATTERN)) {
    if (match.index > at) out.append(text.slice(at, match.index));
    const name = EMOTICON_NAMES.get(match[0].toUpperCase());
    out.append(el("img", { class: "emoticon", src: `/messenger/assets/${name}.svg`, alt: match[0], title: match[0] }));
    at = match.index + match[0].length;
  }
  if (at < text.length) out.append(text.slice(at));
  return out;
}

function nameOf(handle) {
  if (handle === me.handle) return me.name || handle;
  const c = contacts.get(handle);
  return (c && c.name) || handle;
}

function timeOf(at, withDate) {
  const d = new Date(at);
  const options = withDate ? { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" } : { hour: "2-digit", minute: "2-digit" };
  return d.toLocaleString(undefined, options);
}

// ----- the live channel -----------------------------------------------------

function send(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
}

function saveSession() {
  // Signed out: a late frame or acknowledgement must not write the
  // conversations back for the next person to sign in on this tab.
  if (ended) return;
  const kept = [...conversations.entries()].map(([key, c]) => [key, { ...c, typing: null }]);
  try {
    sessionStorage.setItem("mariposa", JSON.stringify({ handle: me.handle, page, lastSeen, conversations: kept, active }));
  } catch (_) { /* full or disabled: the history stays in memory */ }
}

function loadSession() {
  try {
    const saved = JSON.parse(sessionStorage.getItem("mariposa") || "null");
    if (!saved || saved.handle !== me.handle) return;
    page = saved.page;
    lastSeen = saved.lastSeen || 0;
    for (const [key, c] of saved.conversations || []) conversations.set(key, c);
    active = saved.active;
  } catch (_) { /* nothing kept */ }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/messenger/socket`);
  socket.addEventListener("open", () => {
    retry = 0;
    const hello = { type: "hello", version: VERSION };
    if (page) { hello.page = page; hello.last_seen = lastSeen; }
    socket.send(JSON.stringify(hello));
  });
  socket.addEventListener("message", (e) => {
    let frame;
    try { frame = JSON.parse(e.data); } catch (_) { return; }
    if (frame.seq > 0) {
      if (frame.seq <= lastSeen) return; // shown already
      lastSeen = frame.seq;
      scheduleAck();
    }
    handle(frame);
  });
  socket.addEventListener("close", () => {
    socket = null;
    if (ended) return;
    showConnection("Connection lost. Reconnecting…");
    retry = Math.min(retry + 1, 5);
    setTimeout(connect, 500 * 2 ** (retry - 1));
  });
}

function scheduleAck() {
  if (ackTimer) return;
  ackTimer = setTimeout(() => {
    ackTimer = null;
    send({ type: "ack", seq: lastSeen });
    saveSession();
  }, 200);
}

function showConnection(text) {
  $("connection").textContent = text;
  $("connection").hidden = !text;
}

function handle(frame) {
  switch (frame.type) {
    case "welcome": {
      page = frame.page;
      if (!frame.resumed) lastSeen = 0;
      showConnection("");
      setMe(frame.me);
      for (const pending of pendingSends.values()) send(pending); // acted on once by id
      break;
    }
    case "roster":
      groups = frame.groups;
      contacts.clear();
      for (const c of frame.contacts) contacts.set(c.handle, c);
      $("requests").replaceChildren();
      renderContacts();
      renderActive();
      break;
    case "contact":
      contacts.set(frame.contact.handle, frame.contact);
      renderContacts();
      if (active === "c:" + frame.contact.handle) renderHeader();
      break;
    case "contact_removed":
      contacts.delete(frame.handle);
      renderContacts();
      break;
    case "me":
      setMe(frame.me);
      break;
    case "added_by":
      addedBy(frame.handle, frame.name);
      break;
    case "message":
      received(frame);
      break;
    case "typing":
      typing(frame.group ? "g:" + frame.group : "c:" + frame.from, frame.from);
      break;
    case "nudge":
      nudged(frame.group ? "g:" + frame.group : "c:" + frame.from, frame.from);
      break;
    case "sent":
      sent(frame);
      break;
    case "refused":
      refused(frame);
      break;
    case "group_started":
      groupStarted(frame.id, frame.group);
      break;
    case "group_members":
      groupMembers(frame.group, frame.members);
      break;
    case "group_left":
      groupLeft(frame.group, frame.handle);
      break;
    case "bye":
      ended = true;
      showConnection(frame.reason === "other_login" ? "You signed in somewhere else." :
        frame.reason === "shutdown" ? "The server is restarting. Reload the page in a moment." :
        "You are signed out. Reload the page to sign in again.");
      sessionStorage.removeItem("mariposa");
      break;
  }
}

// ----- me ---------------------------------------------------------------------

function setMe(m) {
  Object.assign(me, m);
  if (document.activeElement !== $("me-name")) $("me-name").value = m.name;
  if (document.activeElement !== $("me-personal")) $("me-personal").value = m.personal;
  $("me-state").value = m.state;
  $("me-picture").src = `/messenger/picture/${encodeURIComponent(me.handle)}?t=${Date.now()}`;
}

function commitField(input, type, key, field) {
  const value = input.value.trim();
  if (value === me[field] || (field === "name" && !value)) { input.value = me[field]; return; }
  send({ type, [key]: value });
}

// ----- contacts ---------------------------------------------------------------

function dot(state) {
  return el("span", { class: `dot ${state ? "state-" + state : "offline"}`, title: state ? STATES[state] : "Offline" });
}

function picture(c, cls) {
  const img = el("img", { class: cls, src: c.picture, alt: "", loading: "lazy" });
  img.addEventListener("error", () => { img.src = "/messenger/assets/icon.svg"; }, { once: true });
  return img;
}

function contactItem(c) {
  const key = "c:" + c.handle;
  const unread = conversations.get(key)?.unread || 0;
  const button = el("button", { class: "contact", type: "button", onclick: () => open(key) },
    dot(c.block ? null : c.state), picture(c, "avatar"),
    el("span", { class: "who" },
      el("span", { class: "name" }, withEmoticons(c.name || c.handle)),
      c.personal ? el("span", { class: "personal" }, withEmoticons(c.personal)) : null),
    c.block ? el("span", { class: "tag", text: "blocked" }) : null,
    unread ? el("span", { class: "badge", text: String(unread) }) : null);
  return el("li", { "data-handle": c.handle, class: c.state ? "online" : "offline" }, button);
}

function renderContacts() {
  const list = $("contacts");
  const mine = [...contacts.values()].filter((c) => c.forward);
  const order = (a, b) => (!!b.state - !!a.state) || (a.name || a.handle).localeCompare(b.name || b.handle);
  const sections = groups.map((g) => [g.name, mine.filter((c) => c.groups.includes(g.id))]);
  sections.push(["Other contacts", mine.filter((c) => !c.groups.some((id) => groups.some((g) => g.id === id)))]);
  list.replaceChildren();
  for (const [title, members] of sections) {
    if (!members.length) continue;
    const online = members.filter((c) => c.state).length;
    list.append(el("li", { class: "group", text: `${title} (${online}/${members.length})` }));
    for (const c of members.sort(order)) list.append(contactItem(c));
  }
  if (!mine.length) list.append(el("li", { class: "empty", text: "No contacts yet. Add someone by their e-mail address." }));
}

function addedBy(handle, name) {
  const box = $("requests");
  if (box.querySelector(`[data-handle="${CSS.escape(handle)}"]`)) return;
  const note = el("div", { class: "request", "data-handle": handle, role: "alert" },
    el("p", {}, el("strong", {}, withEmoticons(name || handle)), ` (${handle}) added you to their contact list.`),
    el("button", { type: "button", class: "accept", onclick: () => { send({ type: "add_contact", handle }); note.remove(); } }, "Add to my contacts"),
    el("button", { type: "button", class: "decline", onclick: () => { send({ type: "block", handle }); note.remove(); } }, "Block"));
  box.append(note);
}

// ----- conversations ----------------------------------------------------------

function conversation(key) {
  let c = conversations.get(key);
  if (!c) {
    c = { key, messages: [], unread: 0, members: [], typing: null };
    conversations.set(key, c);
  }
  return c;
}

function titleOf(c) {
  if (c.key.startsWith("c:")) return nameOf(c.key.slice(2));
  const others = c.members.filter((m) => m !== me.handle).map(nameOf);
  return others.length ? others.join(", ") : "Group conversation";
}

function open(key) {
  const c = conversation(key);
  active = key;
  unreadTotal -= c.unread;
  c.unread = 0;
  document.body.classList.add("chatting");
  updateTitle();
  renderTabs();
  renderActive();
  renderContacts();
  $("composer")?.focus();
  saveSession();
}

function closeConversation(key) {
  const c = conversations.get(key);
  if (c && key.startsWith("g:")) send({ type: "group_leave", group: key.slice(2) });
  conversations.delete(key);
  if (active === key) active = null;
  document.body.classList.remove("chatting");
  renderTabs();
  renderActive();
  saveSession();
}

function renderTabs() {
  const tabs = $("tabs");
  tabs.replaceChildren();
  for (const c of conversations.values()) {
    const tab = el("button", { type: "button", role: "tab", class: "tab", "aria-selected": String(c.key === active),
      "data-conversation": c.key, onclick: () => open(c.key) }, withEmoticons(titleOf(c)),
      c.unread ? el("span", { class: "badge", text: String(c.unread) }) : null);
    tabs.append(tab);
  }
}

function renderHeader() {
  const header = document.querySelector("#conversation .chat-header");
  if (header) header.replaceWith(chatHeader(conversations.get(active)));
}

function chatHeader(c) {
  const actions = el("div", { class: "actions" },
    el("button", { type: "button", class: "back", onclick: () => { document.body.classList.remove("chatting"); }, "aria-label": "Back to contacts" }, "←"),
    el("button", { type: "button", id: "nudge", onclick: () => nudge(c) }, "Nudge"),
    el("button", { type: "button", id: "invite", onclick: () => inviteForm(c) }, "Invite"));
  let about;
  if (c.key.startsWith("c:")) {
    const handle = c.key.slice(2);
    const who = contacts.get(handle) || { handle, name: handle, state: null, personal: "", picture: `/messenger/picture/${encodeURIComponent(handle)}`, block: false, forward: false };
    about = el("div", { class: "about" }, picture(who, "avatar large"),
      el("div", {}, el("div", { class: "name" }, dot(who.block ? null : who.state), withEmoticons(who.name || handle)),
        el("div", { class: "personal" }, who.personal ? withEmoticons(who.personal) : `${handle} · ${who.state ? STATES[who.state] : "Offline"}`)));
    actions.append(who.block
      ? el("button", { type: "button", id: "unblock", onclick: () => send({ type: "allow", handle }) }, "Unblock")
      : el("button", { type: "button", id: "block", onclick: () => send({ type: "block", handle }) }, "Block"));
    actions.append(who.forward
      ? el("button", { type: "button", id: "remove", onclick: () => send({ type: "remove_contact", handle }) }, "Remove")
      : el("button", { type: "button", id: "add-this", onclick: () => send({ type: "add_contact", handle }) }, "Add"));
  } else {
    about = el("div", { class: "about" }, el("div", { class: "name", text: titleOf(c) }),
      el("div", { class: "personal", text: `${c.members.length} people in this conversation` }));
  }
  actions.append(el("button", { type: "button", class: "close", onclick: () => closeConversation(c.key), "aria-label": "Close conversation" }, "✕"));
  return el("div", { class: "chat-header" }, about, actions);
}

function messageItem(m) {
  const mine = m.from === me.handle;
  if (m.kind === "nudge") return el("li", { class: "notice", text: `${mine ? "You" : nameOf(m.from)} sent a nudge.` });
  if (m.kind === "notice") return el("li", { class: "notice", text: m.text });
  const when = el("time", { datetime: new Date(m.at).toISOString(), text: timeOf(m.at, m.offline) });
  const state = m.pending ? " (sending…)" : m.failed ? ` (not delivered: ${m.failed})` : m.offline && mine ? " (will be delivered when they sign in)" : "";
  return el("li", { class: `message${mine ? " mine" : ""}${m.offline ? " offline" : ""}` },
    el("div", { class: "meta" }, el("span", { class: "from" }, withEmoticons(nameOf(m.from))), " ", when,
      m.offline && !mine ? el("span", { class: "note", text: " · sent while you were offline" }) : null,
      state ? el("span", { class: "note", text: state }) : null),
    el("div", { class: "text" }, withEmoticons(m.text)));
}

function renderActive() {
  const pane = $("conversation");
  const c = active && conversations.get(active);
  if (!c) {
    pane.replaceChildren(el("p", { class: "empty", text: "Choose a contact to start a conversation." }));
    return;
  }
  const log = el("ol", { id: "log", class: "log", "aria-live": "polite" }, ...c.messages.map(messageItem));
  const typingLine = el("p", { id: "typing", class: "typing" });
  const composer = el("textarea", { id: "composer", rows: "2", maxlength: "1400", "aria-label": "Your message", placeholder: "Type a message" });
  composer.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); submit(c, composer); }
  });
  let typedAt = 0;
  composer.addEventListener("input", () => {
    if (!composer.value || Date.now() - typedAt < 3000) return;
    typedAt = Date.now();
    send(c.key.startsWith("c:") ? { type: "typing", to: c.key.slice(2) } : { type: "group_typing", group: c.key.slice(2) });
  });
  const form = el("form", { class: "compose", onsubmit: (e) => { e.preventDefault(); submit(c, composer); } },
    composer, el("button", { id: "send", type: "submit" }, "Send"));
  pane.replaceChildren(chatHeader(c), log, typingLine, form);
  showTyping(c);
  log.scrollTop = log.scrollHeight;
}

function appendToActive(c, m) {
  if (active !== c.key) return;
  const log = $("log");
  if (!log) return;
  log.append(messageItem(m));
  log.scrollTop = log.scrollHeight;
}

function newId() {
  return (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2)).slice(0, 64);
}

function submit(c, composer) {
  const text = composer.value.trim();
  if (!text) return;
  composer.value = "";
  for (let at = 0; at < text.length; at += 1400) {
    const id = newId();
    const part = text.slice(at, at + 1400);
    const frame = c.key.startsWith("c:") ? { type: "send", id, to: c.key.slice(2), text: part } : { type: "group_send", id, group: c.key.slice(2), text: part };
    const m = { id, from: me.handle, text: part, at: Date.now(), pending: true };
    c.messages.push(m);
    pendingSends.set(id, frame);
    appendToActive(c, m);
    send(frame);
  }
  saveSession();
}

function findMessage(id) {
  for (const c of conversations.values()) {
    const m = c.messages.find((x) => x.id === id);
    if (m) return [c, m];
  }
  return [];
}

function sent(frame) {
  pendingSends.delete(frame.id);
  const [c, m] = findMessage(frame.id);
  if (!m) return;
  m.pending = false;
  m.offline = frame.offline;
  if (active === c.key) renderActive();
  saveSession();
}

function refused(frame) {
  if (frame.id && pendingSends.has(frame.id)) {
    pendingSends.delete(frame.id);
    const [c, m] = findMessage(frame.id);
    if (m) { m.pending = false; m.failed = frame.reason; if (active === c.key) renderActive(); }
    return;
  }
  if (frame.id && starting.has(frame.id)) starting.delete(frame.id);
  showNotice(frame.reason);
}

function showNotice(text) {
  const c = active && conversations.get(active);
  if (c) {
    const m = { kind: "notice", text, at: Date.now() };
    c.messages.push(m);
    appendToActive(c, m);
  } else {
    showConnection(text);
    setTimeout(() => showConnection(""), 5000);
  }
}

function received(frame) {
  const mine = frame.from === me.handle;
  const key = frame.group ? "g:" + frame.group : "c:" + (mine ? frame.to : frame.from);
  const c = conversation(key);
  // An offline message this page showed before it lost its place.
  if (frame.offline && c.messages.some((x) => x.offline && x.from === frame.from && x.at === frame.at && x.text === frame.text)) return;
  const m = { from: frame.from, text: frame.text, at: frame.at, offline: frame.offline };
  c.messages.push(m);
  c.typing = null;
  if (active === key && !document.hidden) {
    appendToActive(c, m);
    showTyping(c);
  } else if (!mine) {
    c.unread += 1;
    unreadTotal += 1;
    if (active === key) appendToActive(c, m);
  }
  if (!mine && document.hidden) notifyTitle(nameOf(frame.from));
  updateTitle();
  renderTabs();
  renderContacts();
  saveSession();
}

function typing(key, from) {
  if (from === me.handle) return;
  const c = conversations.get(key);
  if (!c) return; // typing alone opens no conversation
  c.typing = { from, until: Date.now() + 6000 };
  if (active === key) showTyping(c);
  setTimeout(() => { if (active === key) showTyping(c); }, 6100);
  renderTabs();
}

function showTyping(c) {
  const line = $("typing");
  if (!line) return;
  const on = c.typing && c.typing.until > Date.now();
  line.textContent = on ? `${nameOf(c.typing.from)} is typing a message…` : "";
}

function nudge(c) {
  if (c.key.startsWith("c:")) send({ type: "nudge", to: c.key.slice(2) });
  const m = { kind: "nudge", from: me.handle, at: Date.now() };
  c.messages.push(m);
  appendToActive(c, m);
}

function nudged(key, from) {
  const c = conversation(key);
  const m = { kind: "nudge", from, at: Date.now() };
  c.messages.push(m);
  if (active === key) {
    appendToActive(c, m);
    const pane = $("conversation");
    pane.classList.remove("shake");
    void pane.offsetWidth;
    pane.classList.add("shake");
  } else {
    c.unread += 1;
    unreadTotal += 1;
  }
  if (document.hidden) notifyTitle(nameOf(from));
  updateTitle();
  renderTabs();
}

function inviteForm(c) {
  const existing = document.querySelector("#invite-form");
  if (existing) { existing.remove(); return; }
  const list = el("datalist", { id: "invite-choices" },
    ...[...contacts.values()].filter((x) => x.forward && x.state).map((x) => el("option", { value: x.handle, label: x.name })));
  const input = el("input", { id: "invite-handle", type: "email", list: "invite-choices", placeholder: "Who to invite (e-mail)", "aria-label": "Who to invite" });
  const form = el("form", { id: "invite-form", class: "invite", onsubmit: (e) => {
    e.preventDefault();
    const handle = input.value.trim().toLowerCase();
    if (!handle) return;
    form.remove();
    if (c.key.startsWith("g:")) {
      send({ type: "group_invite", group: c.key.slice(2), handle });
    } else {
      const id = newId();
      starting.set(id, [c.key.slice(2), handle]);
      send({ type: "group_start", id, invite: [c.key.slice(2), handle] });
    }
  } }, input, list, el("button", { type: "submit", id: "invite-send" }, "Invite"));
  document.querySelector("#conversation .chat-header").after(form);
  input.focus();
}

function groupStarted(id, group) {
  const invited = starting.get(id) || [];
  starting.delete(id);
  const c = conversation("g:" + group);
  c.members = [me.handle, ...invited.filter((h) => !c.members.includes(h))];
  open("g:" + group);
}

function groupMembers(group, members) {
  const key = "g:" + group;
  const fresh = !conversations.has(key);
  const c = conversation(key);
  c.members = members.map((m) => m.handle);
  if (fresh) {
    c.messages.push({ kind: "notice", text: `You are in a group conversation with ${titleOf(c)}.`, at: Date.now() });
    if (!active) open(key);
  }
  renderTabs();
  if (active === key) renderActive();
}

function groupLeft(group, handle) {
  const c = conversations.get("g:" + group);
  if (!c) return;
  c.members = c.members.filter((m) => m !== handle);
  const m = { kind: "notice", text: `${nameOf(handle)} left the conversation.`, at: Date.now() };
  c.messages.push(m);
  appendToActive(c, m);
  renderTabs();
}

// ----- the title bar ----------------------------------------------------------

let titleNote = "";

function notifyTitle(from) {
  titleNote = `${from} says…`;
  updateTitle();
}

function updateTitle() {
  const base = "Mariposa Web Messenger";
  document.title = unreadTotal > 0 ? `(${unreadTotal}) ${titleNote || "New messages"} · ${base}` : base;
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden || !active) return;
  const c = conversations.get(active);
  if (c && c.unread) {
    unreadTotal -= c.unread;
    c.unread = 0;
    titleNote = "";
    updateTitle();
    renderTabs();
    renderActive();
  }
});

// ----- wiring -----------------------------------------------------------------

$("me-state").addEventListener("change", (e) => send({ type: "set_state", state: e.target.value }));
for (const [id, type, key, field] of [["me-name", "set_name", "name", "name"], ["me-personal", "set_personal", "text", "personal"]]) {
  const input = $(id);
  input.addEventListener("change", () => commitField(input, type, key, field));
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") input.blur(); });
}
$("add-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const handle = $("add-handle").value.trim().toLowerCase();
  if (!handle) return;
  send({ type: "add_contact", handle });
  $("add-handle").value = "";
});
$("picture-file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  const answer = await fetch("/messenger/picture", { method: "POST", body: file, headers: { "Content-Type": file.type } });
  if (answer.ok) $("me-picture").src = `/messenger/picture/${encodeURIComponent(me.handle)}?t=${Date.now()}`;
  else showConnection(answer.status === 413 ? "That picture is too large (48 KB at most)." : "That picture could not be used.");
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && document.body.classList.contains("chatting")) document.body.classList.remove("chatting");
});

// Signing out forgets the conversations: the computer may be borrowed.
$("sign-out").closest("form").addEventListener("submit", () => {
  ended = true;
  sessionStorage.removeItem("mariposa");
});
$("me-picture").addEventListener("error", () => { $("me-picture").src = "/messenger/assets/icon.svg"; });
loadSession();
renderTabs();
renderActive();
connect();
