// Boots a real genkan (the binary cargo built) in front of a small legacy app, and drives
// Debian's Chromium through playwright-core. Everything listens on 127.0.0.1 only.

import { spawn, execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const genkanBin = process.env.GENKAN_BIN ?? join(root, "target", "debug", "genkan");
export const shotsDir = join(root, "target", "browser-shots");
mkdirSync(shotsDir, { recursive: true });

/** A legacy app that says who genkan told it the user is. */
export async function startLegacyApp() {
  const server = createServer((request, response) => {
    const user = request.headers["x-genkan-user"] ?? "(none)";
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(`<!doctype html><title>Legacy app</title><h1>顧客管理 Legacy app</h1><p id="who">${user}</p>`);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: server.address().port };
}

/**
 * Starts genkan with `extra` config; resolves once it prints where it serves. `prepare(dir)`
 * may put files beside the config first (setup SQL, for instance).
 */
export async function startGenkan(extra, prepare = () => {}) {
  const dir = mkdtempSync(join(tmpdir(), "genkan-browser-"));
  prepare(dir);
  const config = join(dir, "genkan.toml");
  writeFileSync(config, `data_dir = "data"\nlisten_https = "127.0.0.1:0"\nlisten_http = "off"\n${extra}`);
  const child = spawn(genkanBin, ["serve", "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
  child.stderr.resume();
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("genkan did not start within 30 s")), 30_000);
    let seen = "";
    child.stdout.on("data", (chunk) => {
      seen += chunk;
      const match = seen.match(/serving https:\/\/localhost:(\d+)\//);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.on("exit", (code) => reject(new Error(`genkan exited with ${code}: ${seen}`)));
  });
  const cli = (args, input) =>
    execFileSync(genkanBin, [...args, "--config", config], { input, encoding: "utf8", timeout: 30_000 });
  return { child, port, dir, config, cli, origin: `https://localhost:${port}` };
}

/**
 * Flags for pages that use the desk's softphone: a fake microphone (a beep, unless a file is
 * given with --use-file-for-fake-audio-capture) granted without asking, and WebRTC to genkan
 * on loopback with plain addresses in the candidates.
 */
export const FAKE_MEDIA = [
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
  "--allow-loopback-in-peer-connection",
  "--disable-features=WebRtcHideLocalIpsWithMdns",
  "--autoplay-policy=no-user-gesture-required",
];

/** Debian's Chromium, headless, with the flags this closed network needs (and `extra`). */
export async function launchBrowser(extra = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...extra,
    ],
  });
}

function base32Decode(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out = [];
  for (const character of text.replace(/[\s=]/g, "").toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(character);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** What an authenticator app would show at `unixSeconds` (RFC 6238, SHA-1, 6 digits, 30 s). */
export function totpCode(secret, unixSeconds = Date.now() / 1000) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const digest = createHmac("sha1", base32Decode(secret)).update(counter).digest();
  const offset = digest[19] & 0x0f;
  const number = (digest.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(number).padStart(6, "0");
}
