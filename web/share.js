// Shareable runs: the URL fragment holds the whole run (config + input script, as the wasm run
// text), the time to show, the scenario whose captions to show, and the playback speed. Opening the link replays
// the run to that time, so it shows the same state and the same trace hash.

/** `#run=<run text>&at=<ms>&scenario=<id>&speed=<×>`; the run text is already URL-safe. */
export function encodeFragment({ run, atMs, scenario, speed }) {
  const parts = [`run=${run}`, `at=${Math.floor(atMs)}`];
  if (scenario) parts.push(`scenario=${encodeURIComponent(scenario)}`);
  if (speed) parts.push(`speed=${Number(speed.toPrecision(3))}`);
  return `#${parts.join('&')}`;
}

/** The fragment's fields, or null if it holds no run. */
export function decodeFragment(hash) {
  const text = hash.startsWith('#') ? hash.slice(1) : hash;
  if (!text) return null;
  const fields = {};
  for (const part of text.split('&')) {
    const at = part.indexOf('=');
    if (at > 0) fields[part.slice(0, at)] = part.slice(at + 1);
  }
  if (!fields.run) return null;
  const atMs = Number(fields.at ?? 0);
  const speed = Number(fields.speed);
  return {
    speed: fields.speed !== undefined && Number.isFinite(speed) && speed > 0 ? speed : null,
    run: decodeURIComponent(fields.run),
    atMs: Number.isFinite(atMs) && atMs >= 0 ? Math.floor(atMs) : 0,
    scenario: fields.scenario ? decodeURIComponent(fields.scenario) : null,
  };
}
