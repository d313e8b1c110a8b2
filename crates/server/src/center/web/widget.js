// The chat widget for a company's own site: one script tag,
//   <script src="https://genkan.example.jp/_genkan/static/widget.js" async></script>
// adds a "chat" button that opens genkan's chat page in a small window of its own. The chat
// runs on genkan's origin, so the company site never sees the conversation and genkan's pages
// keep refusing to be framed.
(() => {
  const script = document.currentScript;
  const origin = script ? new URL(script.src).origin : location.origin;
  const label = script?.dataset.label ?? "チャットで問い合わせ / Chat";
  const button = document.createElement("button");
  button.type = "button";
  button.id = "genkan-chat-button";
  button.textContent = label;
  Object.assign(button.style, {
    position: "fixed", right: "1.2rem", bottom: "1.2rem", zIndex: "2147483647",
    padding: ".7rem 1.2rem", borderRadius: "2rem", border: "none", cursor: "pointer",
    background: "#7a4b2a", color: "#fff", font: "600 15px system-ui, sans-serif",
    boxShadow: "0 2px 8px rgba(0,0,0,.25)",
  });
  button.addEventListener("click", () => {
    window.open(`${origin}/_genkan/chat`, "genkan-chat", "width=420,height=640,noopener=no");
  });
  const add = () => document.body.append(button);
  if (document.body) add();
  else document.addEventListener("DOMContentLoaded", add);
})();
