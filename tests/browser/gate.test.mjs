// genkan's front door as a person meets it, in a real browser: sign in with a password (and a
// one-time code for administrators), reach the legacy app, sign out, get locked out, watch a
// session expire, and have a form without its CSRF value refused.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { launchBrowser, shotsDir, startGenkan, startLegacyApp, totpCode } from "./harness.mjs";

const PASSWORD = "a long enough password";
let legacy;
let genkan;
let browser;

before(async () => {
  legacy = await startLegacyApp();
  genkan = await startGenkan(`
[identity]
max_failed_logins = 3
session_idle_timeout = "6s"

[[route]]
name = "legacy"
path = "/app"
upstream = "http://127.0.0.1:${legacy.port}"
identity_headers = true

[[policy.rule]]
name = "staff-and-admins"
[policy.rule.allow]
group = ["staff", "admin"]
`);
  genkan.cli(["group", "add", "staff"]);
  genkan.cli(["user", "add", "suzuki", "--group", "staff", "--password-stdin"], `${PASSWORD}\n`);
  genkan.cli(["user", "add", "kanri", "--group", "admin", "--password-stdin"], `${PASSWORD}\n`);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  genkan?.child.kill("SIGTERM");
  legacy?.server.close();
});

async function newPage() {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: "ja-JP" });
  return context.newPage();
}

async function signIn(page, user, password) {
  await page.fill('input[name="user"]', user);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForLoadState("load"), page.click('button[type="submit"]')]);
}

test("a staff member signs in, reaches the legacy app and signs out", async () => {
  const page = await newPage();
  await page.goto(`${genkan.origin}/app/orders`);
  assert.match(new URL(page.url()).pathname, /^\/_genkan\/login$/);
  await page.screenshot({ path: join(shotsDir, "login.png") });
  await signIn(page, "suzuki", PASSWORD);
  assert.equal(new URL(page.url()).pathname, "/app/orders");
  assert.equal(await page.textContent("#who"), "suzuki");
  await page.screenshot({ path: join(shotsDir, "legacy-app.png") });

  // A state-changing request without the form's CSRF value is refused, and changes nothing.
  const forged = await page.evaluate(async () => {
    const response = await fetch("/_genkan/logout", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "csrf=forged",
    });
    return response.status;
  });
  assert.equal(forged, 403);
  await page.goto(`${genkan.origin}/_genkan/account`);
  assert.equal(await page.textContent("#user"), "suzuki");
  await page.screenshot({ path: join(shotsDir, "account.png") });
  await Promise.all([page.waitForURL(/\/_genkan\/login/), page.click('form[action="/_genkan/logout"] button:not([name])')]);
  await page.goto(`${genkan.origin}/app/orders`);
  assert.match(new URL(page.url()).pathname, /^\/_genkan\/login$/);
  await page.context().close();
});

test("an administrator enrols an authenticator app and signs in with a code", async () => {
  const page = await newPage();
  await page.goto(`${genkan.origin}/app/`);
  await signIn(page, "kanri", PASSWORD);
  assert.equal(new URL(page.url()).pathname, "/_genkan/totp");
  assert.ok(await page.isVisible(".qr svg"), "no QR code on the enrolment page");
  await page.screenshot({ path: join(shotsDir, "totp-enrol.png") });
  const secret = (await page.textContent("#totp-secret")).replace(/\s/g, "");
  await page.fill('input[name="code"]', totpCode(secret));
  await Promise.all([page.waitForURL(/\/_genkan\/account/), page.click('button[type="submit"]')]);
  await page.context().close();

  const again = await newPage();
  await again.goto(`${genkan.origin}/app/`);
  await signIn(again, "kanri", PASSWORD);
  assert.ok(await again.isVisible('input[name="code"]'), "no code asked after the password");
  await again.screenshot({ path: join(shotsDir, "totp-code.png") });
  // The code of the next time step: the current one was spent on enrolment.
  await again.fill('input[name="code"]', totpCode(secret, Date.now() / 1000 + 30));
  await Promise.all([again.waitForURL(/\/app\//), again.click('button[type="submit"]')]);
  assert.equal(await again.textContent("#who"), "kanri");

  // The administrator adds a user in the admin pages and hands over the one-time password.
  await again.goto(`${genkan.origin}/_genkan/admin`);
  await again.fill('form[action="/_genkan/admin/users"] input[name="name"]', "sato");
  await again.fill('form[action="/_genkan/admin/users"] input[name="groups"]', "staff");
  await Promise.all([again.waitForLoadState("load"), again.click('form[action="/_genkan/admin/users"] button')]);
  const oneTime = await again.textContent("#one-time-password");
  assert.equal(oneTime.length, 20);
  await again.screenshot({ path: join(shotsDir, "admin.png"), fullPage: true });
  await again.context().close();

  const newcomer = await newPage();
  await newcomer.goto(`${genkan.origin}/app/`);
  await signIn(newcomer, "sato", oneTime);
  assert.equal(new URL(newcomer.url()).pathname, "/_genkan/password");
  await newcomer.context().close();
});

test("three wrong passwords lock the account, even against the right one", async () => {
  genkan.cli(["user", "add", "yamada", "--group", "staff", "--password-stdin"], `${PASSWORD}\n`);
  const page = await newPage();
  await page.goto(`${genkan.origin}/_genkan/login`);
  for (const attempt of ["wrong one", "wrong two", "wrong three"]) {
    await signIn(page, "yamada", attempt);
    assert.ok(await page.isVisible('[role="alert"]'), `no error after "${attempt}"`);
  }
  await signIn(page, "yamada", PASSWORD);
  assert.equal(new URL(page.url()).pathname, "/_genkan/login");
  const message = await page.textContent('[role="alert"]');
  assert.match(message, /ユーザー名またはパスワードが違う/);
  await page.screenshot({ path: join(shotsDir, "locked.png") });
  const audit = genkan.cli(["audit"]);
  assert.match(audit, /"kind":"lockout"/);
  await page.context().close();
});

test("an idle session expires", async () => {
  const page = await newPage();
  await page.goto(`${genkan.origin}/app/`);
  await signIn(page, "suzuki", PASSWORD);
  assert.equal(await page.textContent("#who"), "suzuki");
  await new Promise((resolve) => setTimeout(resolve, 7_000));
  await page.goto(`${genkan.origin}/app/`);
  assert.match(new URL(page.url()).pathname, /^\/_genkan\/login$/);
  await page.context().close();
});
