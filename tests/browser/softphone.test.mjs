// The browser softphone end to end: a carrier (sipp, sending a 440 Hz tone as PCMU) calls the
// demo center; agent1's desk, whose phone is on (Chromium with a fake microphone playing an
// 880 Hz tone), rings with the caller's record; the agent answers on the page; audio flows both
// ways (the page's getStats counters, and the recording: customer left, agent right); the agent
// holds and resumes, then hangs up from the desk; a supervisor plays the recording back in the contact history.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { copyFileSync, readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FAKE_MEDIA, launchBrowser, shotsDir, startGenkan } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const examples = join(root, "examples");
const scenarios = join(root, "crates", "server", "tests", "it", "sipp");
let genkan;
let browser;
let work;
let sipPort;

/** A UDP port nobody uses right now. */
async function freeUdpPort() {
  const socket = createSocket("udp4");
  await new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const { port } = socket.address();
  await new Promise((resolve) => socket.close(resolve));
  return port;
}

/** `seconds` of a sine tone, 16-bit mono. */
function tone(frequency, seconds, rate) {
  const samples = new Int16Array(Math.round(seconds * rate));
  for (let n = 0; n < samples.length; n++) samples[n] = Math.round(Math.sin((2 * Math.PI * frequency * n) / rate) * 8000);
  return samples;
}

function wav(samples, rate) {
  const data = Buffer.from(samples.buffer);
  const header = Buffer.alloc(44);
  header.write("RIFF", 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write("WAVEfmt ", 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write("data", 36);
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

/** G.711 µ-law of one sample (the carrier's audio file for sipp's rtp_stream). */
function ulaw(sample) {
  const sign = sample < 0 ? 0x80 : 0;
  let magnitude = Math.min(Math.abs(sample), 32635) + 0x84;
  let exponent = 7;
  for (let mask = 0x4000; (magnitude & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** RMS of each channel of a 16-bit stereo WAV, skipping its 44-byte header. */
function channelLevels(bytes) {
  assert.equal(bytes.toString("ascii", 0, 4), "RIFF");
  assert.equal(bytes.readUInt16LE(22), 2, "stereo");
  assert.equal(bytes.readUInt32LE(24), 8000, "8 kHz");
  const sums = [0, 0];
  const frames = Math.floor((bytes.length - 44) / 4);
  // The longest run of near silence on the agent's channel after its first sound (the hold).
  let heard = false;
  let run = 0;
  let longest = 0;
  for (let frame = 0; frame < frames; frame++) {
    for (const channel of [0, 1]) sums[channel] += bytes.readInt16LE(44 + frame * 4 + channel * 2) ** 2;
    const right = Math.abs(bytes.readInt16LE(44 + frame * 4 + 2));
    if (right > 200) {
      heard = true;
      run = 0;
    } else if (heard) {
      longest = Math.max(longest, ++run);
    }
  }
  return {
    seconds: frames / 8000,
    left: Math.sqrt(sums[0] / frames),
    right: Math.sqrt(sums[1] / frames),
    longestRightSilence: longest / 8000,
  };
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), "genkan-softphone-"));
  writeFileSync(join(work, "microphone.wav"), wav(tone(880, 20, 8000), 8000));
  writeFileSync(join(work, "tone.ulaw"), Buffer.from(Array.from(tone(440, 8, 8000), ulaw)));
  sipPort = await freeUdpPort();
  const demo = readFileSync(join(examples, "contact-demo.toml"), "utf8")
    .replace(/^sip_listen = ".*"$/m, `sip_listen = "127.0.0.1:${sipPort}"`)
    .replace(/^rtp_ports = ".*"$/m, 'rtp_ports = "31000-31199"');
  // A supervisor who may play recordings back.
  const extra = `\n[[records.account]]\nname = "boss"\npassword = "boss-password"\ngroups = ["supervisor"]\n\n[policy.capabilities]\nsupervisor = ["recording_playback"]\n`;
  genkan = await startGenkan(demo.replace("[contact]\n", `${extra}\n[contact]\n`), (dir) =>
    copyFileSync(join(examples, "contact-demo.sql"), join(dir, "contact-demo.sql")),
  );
  browser = await launchBrowser([...FAKE_MEDIA, `--use-file-for-fake-audio-capture=${join(work, "microphone.wav")}`]);
});

after(async () => {
  await browser?.close();
  genkan?.child.kill("SIGTERM");
});

async function signIn(user, password, path) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: "ja-JP" });
  const page = await context.newPage();
  await page.goto(`${genkan.origin}${path}`);
  await page.fill('input[name="user"]', user);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForLoadState("load"), page.click('button[type="submit"]')]);
  assert.equal(new URL(page.url()).pathname, path);
  return page;
}

/** sipp as the carrier: one call with the tone, held `holdMs` after the answer, then BYE. */
function carrierCall(holdMs) {
  return new Promise(async (resolve) => {
    const args = [
      `127.0.0.1:${sipPort}`, "-sf", join(scenarios, "trunk_call.xml"),
      "-i", "127.0.0.1", "-p", String(await freeUdpPort()),
      "-mi", "127.0.0.1", "-mp", String(await freeUdpPort()),
      "-m", "1", "-d", String(holdMs), "-nostdin", "-timeout", "60s", "-timeout_error",
    ];
    const sipp = spawn("sipp", args, { cwd: work, stdio: ["ignore", "ignore", "pipe"] });
    let errors = "";
    sipp.stderr.on("data", (chunk) => (errors += chunk));
    sipp.on("exit", (code) => resolve({ code, errors }));
  });
}

test("a call rings the browser softphone, audio flows both ways, the recording plays back", async () => {
  const desk = await signIn("agent1", "agent1-password", "/_genkan/desk");
  await desk.click('button[data-status="Available"]');
  await desk.waitForFunction(() => document.getElementById("presence").dataset.presence === "Available");
  await desk.click("#phone-on");
  await desk.waitForFunction(() => document.getElementById("phone-state").dataset.state === "ready", null, { timeout: 15_000 });

  // Long enough for the answer, a few seconds of talk, and the agent's hang-up first.
  const call = carrierCall(20_000);
  const offer = desk.locator("#offers .offer");
  await offer.waitFor({ timeout: 15_000 });
  assert.match(await offer.textContent(), /佐藤 花子/);
  await desk.screenshot({ path: join(shotsDir, "softphone-ringing.png"), fullPage: true });
  await offer.locator("button.accept").click();

  // Audio both ways, as the page's own WebRTC statistics see it: PCMU, packets in and out,
  // and sound (the carrier's tone) in what it receives.
  const stats = desk.locator("#contacts .audio-stats");
  await desk.waitForFunction(
    () => {
      const line = document.querySelector("#contacts .audio-stats");
      return line && Number(line.dataset.received) > 100 && Number(line.dataset.sent) > 100 && Number(line.dataset.energy) > 0;
    },
    null,
    { timeout: 15_000 },
  );
  assert.equal(await stats.getAttribute("data-codec"), "audio/PCMU");
  await desk.screenshot({ path: join(shotsDir, "softphone-call.png"), fullPage: true });

  // Hold for a second and a half of packets (the caller hears silence, the recording's agent
  // channel is silent), then back.
  const received = async () => Number(await stats.getAttribute("data-received"));
  const waitForPackets = async (count) => {
    const from = await received();
    await desk.waitForFunction(
      ([from, count]) => Number(document.querySelector("#contacts .audio-stats").dataset.received) >= from + count,
      [from, count],
      { timeout: 15_000 },
    );
  };
  const hold = desk.locator("#contacts button.hold");
  await hold.click();
  await desk.waitForFunction(() => document.querySelector("#contacts button.hold").getAttribute("aria-pressed") === "true");
  await waitForPackets(100);
  await hold.click();
  await desk.waitForFunction(() => document.querySelector("#contacts button.hold").getAttribute("aria-pressed") === "false");
  await waitForPackets(100);

  // The agent hangs up from the desk; the carrier gets genkan's BYE, so sipp's call ends in
  // its BYE step... which fails, because the dialog is gone: sipp reports an unexpected BYE.
  await desk.locator("#contacts button.end").click();
  await desk.locator("#contacts textarea").waitFor();
  const ended = await call;
  assert.notEqual(ended.code, null, "sipp ended");
  // Wrap-up done, so agent1 can take the next test's call.
  await desk.locator("#contacts textarea").fill("折り返し不要");
  await desk.locator("#contacts button.save-notes").click();
  // genkan has taken the notes when agent1 leaves after-contact work.
  await desk.waitForFunction(() => document.getElementById("presence").dataset.presence !== "AfterContactWork", null, { timeout: 15_000 });

  // The recording: both channels, the tone on the customer's side and the microphone on the
  // agent's, a few seconds long.
  const boss = await signIn("boss", "boss-password", "/_genkan/contacts");
  const player = boss.locator("audio").first();
  await player.waitFor();
  const source = await player.getAttribute("src");
  const response = await boss.request.get(`${genkan.origin}${source}`);
  assert.equal(response.status(), 200);
  const levels = channelLevels(await response.body());
  assert.ok(levels.seconds > 2, `recording ${levels.seconds} s`);
  assert.ok(levels.left > 500, `customer channel RMS ${levels.left}`);
  assert.ok(levels.right > 500, `agent channel RMS ${levels.right}`);
  assert.ok(levels.longestRightSilence >= 1.0, `agent channel silent on hold: ${levels.longestRightSilence} s`);

  // And it plays in the page.
  await player.evaluate((audio) => audio.play());
  await boss.waitForFunction(() => document.querySelector("audio").currentTime > 0.5, null, { timeout: 10_000 });
  await boss.screenshot({ path: join(shotsDir, "softphone-recording.png"), fullPage: true });
  await boss.context().close();
  await desk.context().close();
});

test("a call offered while the phone is off: Accept turns the phone on and connects the call", async () => {
  const desk = await signIn("agent1", "agent1-password", "/_genkan/desk");
  await desk.click('button[data-status="Available"]');
  await desk.waitForFunction(() => document.getElementById("presence").dataset.presence === "Available");
  assert.equal(await desk.locator("#phone-state").getAttribute("data-state"), "off");

  const call = carrierCall(6_000);
  const offer = desk.locator("#offers .offer");
  await offer.waitFor({ timeout: 15_000 });
  assert.match(await offer.locator(".phone-off").textContent(), /Accept turns it on/);
  await desk.screenshot({ path: join(shotsDir, "softphone-off-offer.png"), fullPage: true });
  await offer.locator("button.accept").click();

  await desk.waitForFunction(() => document.getElementById("phone-state").dataset.state === "ready", null, { timeout: 15_000 });
  await desk.waitForFunction(
    () => {
      const line = document.querySelector("#contacts .audio-stats");
      return line && Number(line.dataset.received) > 50 && Number(line.dataset.sent) > 50;
    },
    null,
    { timeout: 15_000 },
  );
  // The carrier hangs up after its six seconds; sipp succeeds only if genkan answered the
  // call and took its BYE.
  const ended = await call;
  assert.equal(ended.code, 0, `sipp: ${ended.errors}`);
  await desk.locator("#contacts textarea").waitFor();
  await desk.context().close();
});
