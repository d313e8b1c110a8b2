// The customer chat: a name and an address start it; messages go both ways over a WebSocket;
// the center's own messages (hours, waiting, the closing message) appear in the same log.
const $ = (id) => document.getElementById(id);
const log = $("log");
const state = $("state");
let socket = null;

function line(kind, text) {
  const node = document.createElement("p");
  node.className = `line from-${kind}`;
  node.textContent = text;
  log.append(node);
  log.scrollTop = log.scrollHeight;
}

function finish() {
  $("text").disabled = true;
  for (const button of $("say").querySelectorAll("button")) button.disabled = true;
}

// A flow's question: one button per answer; the answer is sent once and the buttons go.
function choose(prompt, choices) {
  line("center", prompt);
  const row = document.createElement("p");
  row.className = "choices";
  for (const choice of choices) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = choice;
    button.addEventListener("click", () => {
      socket.send(JSON.stringify({ type: "input", value: choice }));
      line("me", choice);
      row.remove();
    });
    row.append(button);
  }
  log.append(row);
  log.scrollTop = log.scrollHeight;
}

$("start").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("name").value;
  const email = $("email").value;
  $("start").hidden = true;
  $("chat").hidden = false;
  socket = new WebSocket(`wss://${location.host}/_genkan/chat/ws`);
  socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "start", name, email })));
  socket.addEventListener("message", (message) => {
    const data = JSON.parse(message.data);
    switch (data.type) {
      case "message":
        line(data.from, data.text);
        break;
      case "choice":
        choose(data.prompt, data.choices);
        break;
      case "waiting":
        state.textContent = "担当者におつなぎしています / connecting you to someone…";
        break;
      case "connected":
        state.textContent = "担当者が参加しました / someone has joined";
        break;
      case "limited":
        state.textContent = "送信が多すぎます。少しお待ちください / too many messages, please wait";
        break;
      case "ended":
        state.textContent = "チャットは終了しました / the chat has ended";
        finish();
        break;
    }
  });
  socket.addEventListener("close", () => finish());
});

$("say").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text");
  if (!text.value.trim() || !socket) return;
  socket.send(JSON.stringify({ type: "message", text: text.value }));
  line("me", text.value);
  text.value = "";
});

$("leave").addEventListener("click", () => {
  if (socket) socket.send(JSON.stringify({ type: "leave" }));
});
