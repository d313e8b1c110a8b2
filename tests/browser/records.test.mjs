// The records page as people use it, in a real browser: the table list, the list view with a
// FileMaker find and a sort, and the form view whose Edit button takes the edit lease, so a
// colleague sees who is editing; saving releases it and a stale form is refused by its modId.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launchBrowser, shotsDir, startGenkan } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const PASSWORD = "a long enough password";
let genkan;
let browser;

before(async () => {
  genkan = await startGenkan(`
[records]
lease_duration = "3s"

[[records.database]]
name = "demo"
setup_sql = "records-demo.sql"

[[records.layout]]
database = "demo"
name = "customers"
table = "customers"
fields = ["name", "phone", "email", "assigned_agent", "note"]

[[records.layout.portal]]
name = "contacts"
table = "contacts"
foreign_key = "customer_id"

[[records.grant]]
group = "staff"
database = "demo"
tables = ["*"]
access = "write"

[[records.grant]]
group = "viewers"
database = "demo"
tables = ["customers"]
access = "read"

[[records.account]]
name = "tanaka"
password = "${PASSWORD}"
groups = ["staff"]

[[records.account]]
name = "yamada"
password = "${PASSWORD}"
groups = ["staff"]

[[records.account]]
name = "kenji"
password = "${PASSWORD}"
groups = ["viewers"]
`, (dir) => copyFileSync(join(here, "..", "..", "examples", "records-demo.sql"), join(dir, "records-demo.sql")));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  genkan?.child.kill("SIGTERM");
});

async function signedIn(user) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: "ja-JP" });
  const page = await context.newPage();
  await page.goto(`${genkan.origin}/_genkan/records`);
  assert.match(new URL(page.url()).pathname, /^\/_genkan\/login$/);
  await page.fill('input[name="user"]', user);
  await page.fill('input[name="password"]', PASSWORD);
  await Promise.all([page.waitForLoadState("load"), page.click('button[type="submit"]')]);
  assert.equal(new URL(page.url()).pathname, "/_genkan/records");
  return page;
}

test("the list view finds with FileMaker operators and sorts", async () => {
  const page = await signedIn("tanaka");
  await page.screenshot({ path: join(shotsDir, "records-overview.png") });
  await Promise.all([page.waitForLoadState("load"), page.click('a[href="/_genkan/records/demo/customers"]')]);
  assert.equal(await page.locator("#records tbody tr").count(), 4);
  assert.match(await page.textContent("#counts"), /4/);

  // Words beginning with 佐藤: one Japanese record.
  await page.fill('input[name="q.name"]', "佐藤");
  await Promise.all([page.waitForLoadState("load"), page.click('form.find button[type="submit"]')]);
  const names = await page.locator("#records tbody tr td:nth-child(2)").allTextContents();
  assert.deepEqual(names, ["佐藤 花子"]);

  // == matches the entire field; omit turns the find around.
  await page.fill('input[name="q.name"]', "");
  await page.fill('input[name="q.assigned_agent"]', "==tanaka");
  await page.check('input[name="omit"]');
  await Promise.all([page.waitForLoadState("load"), page.click('form.find button[type="submit"]')]);
  const others = await page.locator("#records tbody tr td:nth-child(2)").allTextContents();
  assert.deepEqual(others.sort(), ["鈴木 一郎", "高橋 次郎"].sort());

  // Nothing matches: said in words, not an error page.
  await page.goto(`${genkan.origin}/_genkan/records/demo/customers?q.phone=%3D%3D000`);
  assert.ok(await page.isVisible("#no-match"));

  // Sorting by phone, then the other way.
  await page.goto(`${genkan.origin}/_genkan/records/demo/customers`);
  await Promise.all([page.waitForLoadState("load"), page.click('#records th a:text-is("phone")')]);
  const ascending = await page.locator("#records tbody tr td:nth-child(3)").allTextContents();
  assert.deepEqual(ascending, [...ascending].sort());
  await Promise.all([page.waitForLoadState("load"), page.click('#records th a:text-is("phone")')]);
  const descending = await page.locator("#records tbody tr td:nth-child(3)").allTextContents();
  assert.deepEqual(descending, [...ascending].reverse());
  await page.screenshot({ path: join(shotsDir, "records-list.png"), fullPage: true });
  await page.context().close();
});

test("editing takes the lease, a colleague sees who holds it, saving releases it", async () => {
  const tanaka = await signedIn("tanaka");
  const yamada = await signedIn("yamada");
  const record = `${genkan.origin}/_genkan/records/demo/customers/1`;

  await tanaka.goto(record);
  assert.equal(await tanaka.getAttribute("#f-note", "readonly"), "");
  await Promise.all([tanaka.waitForLoadState("load"), tanaka.click('button[value="edit"]')]);
  assert.equal(await tanaka.getAttribute("#f-note", "readonly"), null);
  assert.ok(await tanaka.isVisible('button[value="save"]'));

  // Yamada sees the lock with Tanaka's name, in the list and on the form, and cannot edit.
  await yamada.goto(`${genkan.origin}/_genkan/records/demo/customers`);
  assert.match(await yamada.textContent('#records tr[data-record="1"] td.lock'), /tanaka/);
  await yamada.goto(record);
  assert.match(await yamada.textContent("#lock"), /tanaka さんが .* から編集中です/);
  assert.equal(await yamada.locator('button[value="edit"]').count(), 0);
  await yamada.screenshot({ path: join(shotsDir, "records-locked.png"), fullPage: true });

  // The portal shows the customer's contacts.
  assert.match(await tanaka.textContent("body"), /請求について/);

  await tanaka.fill("#f-note", "請求書はメールで送付");
  await Promise.all([tanaka.waitForLoadState("load"), tanaka.click('button[value="save"]')]);
  assert.ok(await tanaka.isVisible("#saved"));
  assert.equal(await tanaka.inputValue("#f-note"), "請求書はメールで送付");
  await tanaka.screenshot({ path: join(shotsDir, "records-saved.png"), fullPage: true });

  // The lease is gone: Yamada may edit now, and sees the new value.
  await yamada.goto(record);
  assert.equal(await yamada.locator("#lock").count(), 0);
  assert.equal(await yamada.inputValue("#f-note"), "請求書はメールで送付");
  await tanaka.context().close();
  await yamada.context().close();
});

test("a form saved after someone else's change is refused by its modId", async () => {
  const tanaka = await signedIn("tanaka");
  const yamada = await signedIn("yamada");
  const record = `${genkan.origin}/_genkan/records/demo/customers/2`;
  await tanaka.goto(record);
  await Promise.all([tanaka.waitForLoadState("load"), tanaka.click('button[value="edit"]')]);
  // Tanaka gives up the lease in another tab; this tab keeps the open form and its old modId.
  const otherTab = await tanaka.context().newPage();
  await otherTab.goto(record);
  await Promise.all([otherTab.waitForLoadState("load"), otherTab.click('button[value="cancel"]')]);
  await yamada.goto(record);
  await Promise.all([yamada.waitForLoadState("load"), yamada.click('button[value="edit"]')]);
  await yamada.fill("#f-phone", "+81660000000");
  await Promise.all([yamada.waitForLoadState("load"), yamada.click('button[value="save"]')]);
  assert.ok(await yamada.isVisible("#saved"));

  await tanaka.fill("#f-note", "古い画面からの変更");
  await Promise.all([tanaka.waitForLoadState("load"), tanaka.click('button[value="save"]')]);
  assert.match(await tanaka.textContent(".error"), /他の人がこのレコードを変更しました/);
  await tanaka.goto(record);
  assert.equal(await tanaka.inputValue("#f-note"), "");
  await tanaka.context().close();
  await yamada.context().close();
});

test("an open form keeps its lease alive; a closed tab lets it lapse", async () => {
  const tanaka = await signedIn("tanaka");
  const yamada = await signedIn("yamada");
  const record = `${genkan.origin}/_genkan/records/demo/customers/3`;
  await tanaka.goto(record);
  await Promise.all([tanaka.waitForLoadState("load"), tanaka.click('button[value="edit"]')]);
  // Twice the lease's length: only the page's heartbeat keeps it.
  await tanaka.waitForTimeout(6_000);
  await yamada.goto(record);
  assert.match(await yamada.textContent("#lock"), /tanaka/);
  await tanaka.context().close();
  let lapsed = false;
  for (let attempt = 0; attempt < 20 && !lapsed; attempt += 1) {
    await yamada.waitForTimeout(500);
    await yamada.goto(record);
    lapsed = (await yamada.locator("#lock").count()) === 0;
  }
  assert.ok(lapsed, "the lease lapsed after the editing tab closed");
  assert.equal(await yamada.locator('button[value="edit"]').count(), 1);
  await yamada.context().close();
});

test("read-only groups see records without an Edit button, and other tables not at all", async () => {
  const kenji = await signedIn("kenji");
  assert.equal(await kenji.locator('a[href="/_genkan/records/demo/contacts"]').count(), 0);
  await kenji.goto(`${genkan.origin}/_genkan/records/demo/customers/1`);
  assert.equal(await kenji.locator('button[value="edit"]').count(), 0);
  const refused = await kenji.goto(`${genkan.origin}/_genkan/records/demo/contacts`);
  assert.equal(refused.status(), 403);
  await kenji.context().close();
});
