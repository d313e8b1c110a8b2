// The contact center end to end in two real browser pages: a customer on the public chat page
// and a signed-in agent on the desk. The customer is found by their address, so the chat rings
// at their assigned agent with their record on screen; messages go both ways; the agent's End
// sends the closing message; the wrap-up notes show in the history of the customer's next chat.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FAKE_MEDIA, launchBrowser, shotsDir, startGenkan } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const examples = join(here, "..", "..", "examples");
let genkan;
let browser;

before(async () => {
  // The demo configuration as shipped, on ephemeral ports (SIP included: two demo servers run
  // at once below).
  const demo = ephemeralSip(readFileSync(join(examples, "contact-demo.toml"), "utf8"));
  genkan = await startGenkan(demo, (dir) => copyFileSync(join(examples, "contact-demo.sql"), join(dir, "contact-demo.sql")));
  // The demo takes calls, so the desk has a softphone, which Accept on a call turns on.
  browser = await launchBrowser(FAKE_MEDIA);
});

after(async () => {
  await browser?.close();
  genkan?.child.kill("SIGTERM");
});

/** The demo's SIP listener moved to an ephemeral port, so demo servers never collide. */
function ephemeralSip(toml) {
  return toml.replace(/^sip_listen = ".*"$/m, 'sip_listen = "127.0.0.1:0"');
}

async function page() {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: "ja-JP" });
  return context.newPage();
}

async function agentDesk(user, password) {
  const desk = await page();
  await desk.goto(`${genkan.origin}/_genkan/desk`);
  assert.match(new URL(desk.url()).pathname, /^\/_genkan\/login$/);
  await desk.fill('input[name="user"]', user);
  await desk.fill('input[name="password"]', password);
  await Promise.all([desk.waitForLoadState("load"), desk.click('button[type="submit"]')]);
  assert.equal(new URL(desk.url()).pathname, "/_genkan/desk");
  // Offline at first; Away if a desk of theirs was closed while Available.
  await desk.waitForFunction(() => ["Offline", "Away"].includes(document.getElementById("presence").dataset.presence));
  await desk.click('button[data-status="Available"]');
  await desk.waitForFunction(() => document.getElementById("presence").dataset.presence === "Available");
  return desk;
}

async function customerChat(name, email) {
  const chat = await page();
  await chat.goto(`${genkan.origin}/_genkan/chat`);
  await chat.fill("#name", name);
  await chat.fill("#email", email);
  await chat.click('#start button[type="submit"]');
  return chat;
}

test("a customer's chat rings at their agent with their record, both ways, closing message, history", async () => {
  const agent1 = await agentDesk("agent1", "agent1-password");
  const agent2 = await agentDesk("agent2", "agent2-password");
  const chat = await customerChat("佐藤 花子", "hanako.sato@example.jp");

  // The screen pop: at agent1 (her assigned agent), not agent2, with her record.
  const offer = agent1.locator("#offers .offer");
  await offer.waitFor();
  assert.match(await offer.textContent(), /佐藤 花子/);
  assert.match(await offer.textContent(), /03-1234-5678/);
  assert.equal(await agent2.locator("#offers .offer").count(), 0);
  await agent1.screenshot({ path: join(shotsDir, "contact-offer.png"), fullPage: true });

  await agent1.click("#offers .offer button.accept");
  await chat.waitForFunction(() => document.getElementById("state").textContent.includes("参加"));
  await chat.fill("#text", "請求書が届きません");
  await chat.click('#say button[type="submit"]');
  const pane = agent1.locator("#contacts .card").first();
  await pane.locator(".log .from-customer").waitFor();
  assert.match(await pane.locator(".log").textContent(), /請求書が届きません/);
  await pane.locator("input").fill("確認いたします。少々お待ちください。");
  await pane.locator('button[type="submit"]').click();
  await chat.locator(".log .from-agent").waitFor();
  assert.match(await chat.textContent("#log"), /確認いたします/);
  await chat.screenshot({ path: join(shotsDir, "contact-chat.png"), fullPage: true });

  // The agent ends: the customer gets the closing message, the agent a wrap-up form.
  await pane.locator("button.end").click();
  await chat.waitForFunction(() => document.getElementById("state").textContent.includes("終了"));
  assert.match(await chat.textContent("#log"), /ありがとうございました/);
  assert.equal(await chat.isDisabled("#text"), true);
  await agent1.locator("textarea").fill("郵送で再送を手配");
  await agent1.screenshot({ path: join(shotsDir, "contact-wrap-up.png"), fullPage: true });
  await agent1.click("button.save-notes");

  // Her next chat shows the last one, with its notes, in the history.
  const again = await customerChat("佐藤 花子", "hanako.sato@example.jp");
  const next = agent1.locator("#offers .offer");
  await next.waitFor();
  await agent1.waitForFunction(() => document.querySelector("#offers .offer")?.textContent.includes("郵送で再送を手配"));
  // The last chat's words fold out under it.
  const transcript = next.locator("details.transcript");
  await transcript.locator("summary").click();
  assert.match(await transcript.textContent(), /customer: 請求書が届きません/);
  assert.match(await transcript.textContent(), /agent1: 確認いたします/);
  await agent1.screenshot({ path: join(shotsDir, "contact-history.png"), fullPage: true });
  await again.context().close();
  await chat.context().close();
  await agent1.context().close();
  await agent2.context().close();
});

test("an unknown customer goes to anyone available; with nobody there they are told so", async () => {
  const chat = await customerChat("新規 太郎", "new.customer@example.jp");
  await chat.waitForFunction(() => document.getElementById("state").textContent.includes("終了"));
  assert.match(await chat.textContent("#log"), /対応中/);
  await chat.context().close();

  const agent2 = await agentDesk("agent2", "agent2-password");
  const second = await customerChat("新規 太郎", "new.customer@example.jp");
  const offer = agent2.locator("#offers .offer");
  await offer.waitFor();
  assert.match(await offer.textContent(), /新規のお客様/);
  await second.context().close();
  await agent2.context().close();
});

test("a simulated call rings at the caller's agent with the screen pop (debug builds)", async () => {
  const agent1 = await agentDesk("agent1", "agent1-password");
  const call = (path, body) =>
    agent1.evaluate(
      async ([path, body]) => {
        const response = await fetch(path, { method: "POST", headers: { "content-type": "application/json", "x-genkan-test": "1" }, body });
        return { status: response.status, text: await response.text() };
      },
      [path, body],
    );
  // Written the way the network sends it: E.164, while the record says 03-1234-5678.
  const placed = await call("/_genkan/test/call", JSON.stringify({ from: "+81312345678" }));
  assert.equal(placed.status, 200, `${placed.status}: ${placed.text}`);
  const { contact } = JSON.parse(placed.text);
  const offer = agent1.locator(`#offer-${contact}`);
  await offer.waitFor();
  assert.match(await offer.textContent(), /電話 \/ call: \+81312345678/);
  assert.match(await offer.textContent(), /佐藤 花子/);
  await offer.locator("button.accept").click();
  await agent1.locator(`#contact-${contact}`).waitFor();
  assert.equal((await call(`/_genkan/test/call/${contact}/hangup`, "")).status, 204);
  await agent1.locator("textarea").fill("電話: 折り返し不要");
  await agent1.click("button.save-notes");
  await agent1.waitForFunction(() => document.getElementById("presence").dataset.presence === "Available");
  // Without the test header the endpoint refuses.
  const refused = await agent1.evaluate(async () => (await fetch("/_genkan/test/call", { method: "POST", body: "{}" })).status);
  assert.equal(refused, 403);
  await agent1.context().close();
});

test("an unknown caller's record is made from the desk and pops up on their next call", async () => {
  const agent1 = await agentDesk("agent1", "agent1-password");
  const call = (path, body) =>
    agent1.evaluate(
      async ([path, body]) => {
        const response = await fetch(path, { method: "POST", headers: { "content-type": "application/json", "x-genkan-test": "1" }, body });
        return { status: response.status, text: await response.text() };
      },
      [path, body],
    );
  const first = JSON.parse((await call("/_genkan/test/call", JSON.stringify({ from: "+819055550001" }))).text).contact;
  const offer = agent1.locator(`#offer-${first}`);
  await offer.waitFor();
  assert.match(await offer.textContent(), /新規のお客様/);
  await offer.locator("button.accept").click();
  const pane = agent1.locator(`#contact-${first}`);
  const form = pane.locator("form.new-customer");
  await form.waitFor();
  // The number the call came from is already in the phone field.
  assert.equal(await form.locator('input[name="phone"]').inputValue(), "+819055550001");
  await form.locator('input[name="name"]').fill("新規 花子");
  await form.locator("button.create-customer").click();
  await pane.locator("h3", { hasText: "顧客 / customer #" }).waitFor();
  assert.equal(await pane.locator("form.new-customer").count(), 0);
  assert.match(await pane.textContent(), /新規 花子/);
  await agent1.screenshot({ path: join(shotsDir, "contact-new-customer.png"), fullPage: true });
  assert.equal((await call(`/_genkan/test/call/${first}/hangup`, "")).status, 204);
  await agent1.locator("textarea").fill("初回のお問い合わせ");
  await agent1.click("button.save-notes");
  await agent1.waitForFunction(() => document.getElementById("presence").dataset.presence === "Available");

  // Written another way this time: the national form.
  const second = JSON.parse((await call("/_genkan/test/call", JSON.stringify({ from: "090-5555-0001" }))).text).contact;
  const again = agent1.locator(`#offer-${second}`);
  await again.waitFor();
  assert.match(await again.textContent(), /新規 花子/);
  assert.match(await again.textContent(), /初回のお問い合わせ/);
  assert.doesNotMatch(await again.textContent(), /新規のお客様/);
  await again.locator("button.reject").click();
  await agent1.context().close();
});

test("the widget on another site opens the chat in its own window", async () => {
  const { createServer } = await import("node:http");
  const site = createServer((request, response) => {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(`<!doctype html><html><body><h1>株式会社サンプル</h1>
<script src="${genkan.origin}/_genkan/static/widget.js" async></script></body></html>`);
  });
  await new Promise((resolve) => site.listen(0, "127.0.0.1", resolve));
  const agent1 = await agentDesk("agent1", "agent1-password");
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: "ja-JP" });
  const company = await context.newPage();
  await company.goto(`http://127.0.0.1:${site.address().port}/`);
  await company.locator("#genkan-chat-button").waitFor();
  await company.screenshot({ path: join(shotsDir, "contact-widget.png") });
  const [popup] = await Promise.all([context.waitForEvent("page"), company.click("#genkan-chat-button")]);
  await popup.waitForLoadState("load");
  assert.equal(new URL(popup.url()).pathname, "/_genkan/chat");
  await popup.fill("#name", "佐藤 花子");
  await popup.fill("#email", "hanako.sato@example.jp");
  await popup.click('#start button[type="submit"]');
  const offer = agent1.locator("#offers .offer");
  await offer.waitFor();
  assert.match(await offer.textContent(), /佐藤 花子/);
  await context.close();
  await agent1.context().close();
  site.close();
});

test("a flow's question shows as buttons in the chat and the answer takes its branch", async () => {
  // A second genkan whose flow asks first: 1 → the support queue, 2 → a message and goodbye.
  const menu = `name = "menu"
start = "ask"
[blocks.ask]
type = "get_input"
prompt = "ご用件をお選びください"
choices = { "請求" = "queue", "その他" = "other" }
timeout_seconds = 60
no_match = "other"
[blocks.queue]
type = "transfer_to_queue"
queue = "support"
nobody = "other"
[blocks.other]
type = "say"
text = "ウェブサイトのよくある質問をご覧ください。"
next = "end"
[blocks.end]
type = "disconnect"
`;
  const { writeFileSync } = await import("node:fs");
  const demo = ephemeralSip(readFileSync(join(examples, "contact-demo.toml"), "utf8")).replace("[contact]\n", '[contact]\nflows = ["menu.toml"]\nmain_flow = "menu"\n');
  const second = await startGenkan(demo, (dir) => {
    copyFileSync(join(examples, "contact-demo.sql"), join(dir, "contact-demo.sql"));
    writeFileSync(join(dir, "menu.toml"), menu);
  });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: "ja-JP" });
    const chat = await context.newPage();
    await chat.goto(`${second.origin}/_genkan/chat`);
    await chat.fill("#name", "x");
    await chat.fill("#email", "x@example.jp");
    await chat.click('#start button[type="submit"]');
    await chat.locator(".choices button").first().waitFor();
    assert.deepEqual((await chat.locator(".choices button").allTextContents()).sort(), ["その他", "請求"].sort());
    await chat.screenshot({ path: join(shotsDir, "contact-choice.png") });
    await chat.click('.choices button:text-is("その他")');
    await chat.waitForFunction(() => document.getElementById("state").textContent.includes("終了"));
    assert.match(await chat.textContent("#log"), /よくある質問/);
    assert.equal(await chat.locator(".choices").count(), 0);
    await context.close();
  } finally {
    second.child.kill("SIGTERM");
  }
});
