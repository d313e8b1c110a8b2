// The desk's softphone: one WebRTC connection to genkan, made when the agent turns the phone on
// and kept between calls, so a call is answered with the desk's Accept button and nothing else.
// genkan answers the offer with PCMU only (the carrier's G.711 passes through untouched) and is
// ICE-lite, so the offer goes as soon as it is made, without waiting for candidates.
const $ = (id) => document.getElementById(id);

const STATES = {
  off: "電話: オフ / Phone: off",
  connecting: "電話: 接続中 / Phone: connecting…",
  ready: "電話: 待受中 / Phone: ready",
  lost: "電話: 切断されました / Phone: disconnected",
};

let pc = null;
let microphone = null;
let audioContext = null;
let ringer = null;
const ringing = new Set();

function setState(state) {
  const label = $("phone-state");
  label.textContent = STATES[state];
  label.dataset.state = state;
  $("phone-on").hidden = state === "ready" || state === "connecting";
  $("phone-off").hidden = !($("phone-on").hidden);
}

function problem(text) {
  const line = $("phone-problem");
  line.textContent = text ?? "";
  line.hidden = !text;
}

function microphoneProblem(error) {
  switch (error.name) {
    case "NotAllowedError":
      return "マイクの使用が許可されていません。ブラウザーのサイト設定でこのサイトのマイクを許可してから、もう一度オンにしてください。 / The microphone is blocked: allow it for this site in the browser's settings, then turn the phone on again.";
    case "NotFoundError":
      return "マイクが見つかりません。ヘッドセットをつないでください。 / No microphone found: plug in a headset.";
    default:
      return `マイクを使えません / The microphone cannot be used (${error.name})`;
  }
}

async function turnOn() {
  problem(null);
  setState("connecting");
  // Made inside the click, so the browser lets it play the ring tone later.
  audioContext ??= new AudioContext();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
  } catch (error) {
    problem(microphoneProblem(error));
    setState("off");
    return;
  }
  microphone = stream.getAudioTracks()[0];
  const connection = new RTCPeerConnection();
  pc = connection;
  connection.addTrack(microphone, stream);
  connection.addEventListener("track", (event) => {
    $("phone-audio").srcObject = event.streams[0] ?? new MediaStream([event.track]);
  });
  connection.addEventListener("connectionstatechange", () => {
    if (pc !== connection) return;
    if (connection.connectionState === "connected") setState("ready");
    if (["failed", "closed", "disconnected"].includes(connection.connectionState)) lost();
  });
  try {
    await connection.setLocalDescription(await connection.createOffer());
    const response = await fetch("/_genkan/desk/softphone", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sdp: connection.localDescription.sdp }),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error ?? response.statusText);
    await connection.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  } catch (error) {
    problem(`電話をつなげません / The phone could not connect: ${error.message}`);
    stop();
    setState("off");
  }
}

function stop() {
  pc?.close();
  pc = null;
  microphone?.stop();
  microphone = null;
  stopRinging();
}

async function turnOff() {
  stop();
  setState("off");
  await fetch("/_genkan/desk/softphone", { method: "DELETE" }).catch(() => {});
}

function lost() {
  stop();
  setState("lost");
}

// A Japanese-style ring: 400 Hz, one second on, two off, while any call rings.
function startRinging() {
  if (ringer || !audioContext) return;
  const gain = audioContext.createGain();
  gain.gain.value = 0;
  gain.connect(audioContext.destination);
  const tone = audioContext.createOscillator();
  tone.frequency.value = 400;
  tone.connect(gain);
  tone.start();
  let on = false;
  const step = () => {
    on = !on;
    gain.gain.setTargetAtTime(on ? 0.2 : 0, audioContext.currentTime, 0.01);
    ringer.timer = setTimeout(step, on ? 1000 : 2000);
  };
  ringer = { tone, gain, timer: null };
  step();
}

function stopRinging() {
  if (!ringer) return;
  clearTimeout(ringer.timer);
  ringer.tone.stop();
  ringer.gain.disconnect();
  ringer = null;
}

/** Whether this desk has a softphone (genkan takes calls and offers the PHONE panel). */
export function available() {
  return $("phone") !== null;
}

/**
 * Turns the phone on from the Accept of a call offered while it was off, and resolves to
 * whether it connected within `limit` ms. Called inside the click, so the browser may ask for
 * the microphone; a refusal is explained in the PHONE panel as when turning it on there.
 */
export async function turnOnForCall(limit = 10000) {
  if (isOn()) return true;
  if (!pc) await turnOn();
  const deadline = Date.now() + limit;
  while (pc && !isOn() && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return isOn();
}

/** Whether calls ring here (the phone is on and connected). */
export function isOn() {
  return pc !== null && pc.connectionState === "connected";
}

/** A call is offered: ring until it is answered, rejected or withdrawn. */
export function ring(contact) {
  if (!isOn()) return;
  ringing.add(contact);
  startRinging();
}

/** The offer is no longer ringing. */
export function stopRing(contact) {
  ringing.delete(contact);
  if (ringing.size === 0) stopRinging();
}

/** Mute, hold and the audio counters of a call in progress. */
export function callControls(contact) {
  const mute = document.createElement("button");
  mute.className = "mute";
  mute.textContent = "ミュート / Mute";
  mute.setAttribute("aria-pressed", "false");
  mute.addEventListener("click", () => {
    if (!microphone) return;
    microphone.enabled = !microphone.enabled;
    mute.setAttribute("aria-pressed", String(!microphone.enabled));
  });
  const hold = document.createElement("button");
  hold.className = "hold";
  hold.textContent = "保留 / Hold";
  hold.setAttribute("aria-pressed", "false");
  hold.addEventListener("click", async () => {
    const on = hold.getAttribute("aria-pressed") !== "true";
    const response = await fetch("/_genkan/desk/softphone/hold", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ contact, on }),
    }).catch(() => null);
    if (response?.ok) hold.setAttribute("aria-pressed", String(on));
  });
  const stats = document.createElement("span");
  stats.className = "audio-stats";
  const box = document.createElement("p");
  box.className = "call-controls";
  box.append(mute, hold, stats);
  watchAudio(stats);
  return box;
}

// The agent (and the tests) see that audio flows: packets each way and the level heard.
// Counted from the call's start: the connection, and its counters, outlive calls.
function watchAudio(line) {
  let base = null;
  const timer = setInterval(async () => {
    if (!line.isConnected || !pc) {
      clearInterval(timer);
      return;
    }
    const report = await pc.getStats();
    let received = 0;
    let sent = 0;
    let energy = 0;
    let codec = "";
    report.forEach((entry) => {
      if (entry.type === "inbound-rtp" && entry.kind === "audio") {
        received = entry.packetsReceived ?? 0;
        energy = entry.totalAudioEnergy ?? 0;
        codec = report.get(entry.codecId)?.mimeType ?? codec;
      }
      if (entry.type === "outbound-rtp" && entry.kind === "audio") sent = entry.packetsSent ?? 0;
    });
    base ??= { received, sent, energy };
    received -= base.received;
    sent -= base.sent;
    energy -= base.energy;
    Object.assign(line.dataset, { received, sent, energy, codec });
    line.textContent = `音声 / audio ↓${received} ↑${sent} ${codec}`;
  }, 1000);
}

export function init() {
  if (!$("phone")) return;
  $("phone-on").addEventListener("click", turnOn);
  $("phone-off").addEventListener("click", turnOff);
  setState("off");
}
