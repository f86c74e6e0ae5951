// <flotilla-raft>: a live Raft cluster for documentation, in one tag. The real core (the
// playground's wasm build), the playground's renderer and its scenarios with their captions.
//
//   <script type="module" src="https://…/widget/flotilla-raft.js"></script>
//   <flotilla-raft scenario="figure-8"></flotilla-raft>
//
// This file is the light part: the element, its shadow DOM (a poster until loaded) and its
// controls. The engine (player.js: wasm, timeline, renderer, scenarios) is imported only when the
// element comes near the viewport, or on play()/load(); every widget on a page shares the one
// wasm module (wasm.js memoises it). See web/README.md, "The docs widget".

const ATTRIBUTES = ['scenario', 'run', 'nodes', 'seed', 'autoplay', 'loop', 'speed', 'controls', 'panels', 'height', 'theme', 'caption', 'alt'];
/** Attributes that change what runs: a new run when they change after loading. */
const RUN_ATTRIBUTES = new Set(['scenario', 'run', 'nodes', 'seed']);
/** Attributes that change the shadow DOM's structure. */
/** Each panel's accessible name and heading. */
const PANEL_LABELS = { log: 'Leader’s log', kv: 'Key-value state', events: 'Events', history: 'Client history' };
const PANEL_TITLES = { log: 'Leader’s log', kv: 'Key-value state (leader)', events: 'Events', history: 'Client history (linearizability)' };
const LAYOUT_ATTRIBUTES = new Set(['controls', 'panels', 'caption']);
const DEFAULT_HEIGHT = 400;
/** Start loading when the widget is this close to the viewport. */
const NEAR_VIEWPORT = '300px 0px';
/** Panels refresh at most this often (wall-clock ms) while playing. */
const PANEL_REFRESH_MS = 300;

const STYLE = `
:host { display: block; position: relative; box-sizing: border-box; max-width: 100%;
  --fr-bg: #ffffff; --fr-ink: #0f172a; --fr-muted: #475569; --fr-line: #cbd5e1; --fr-accent: #0369a1;
  --fr-button: #f1f5f9; color: var(--fr-ink); background: var(--fr-bg);
  border: 1px solid var(--fr-line); border-radius: 8px; font: 14px/1.4 system-ui, sans-serif; }
:host([data-theme="dark"]) { --fr-bg: #0b1220; --fr-ink: #e2e8f0; --fr-muted: #a3b1c2; --fr-line: #334155;
  --fr-accent: #38bdf8; --fr-button: #1e293b; }
:host(:focus) { outline: none; }
:host(:focus-visible) { outline: 3px solid var(--fr-accent); outline-offset: 2px; }
* { box-sizing: border-box; }
.stage { position: relative; width: 100%; }
canvas { display: block; width: 100%; height: 100%; border-radius: 8px 8px 0 0; }
.poster { position: absolute; inset: 0; display: flex; flex-direction: column; align-items: center; justify-content: center;
  gap: 8px; width: 100%; border: 0; border-radius: 8px 8px 0 0; background: var(--fr-bg); color: var(--fr-ink); font: inherit; cursor: pointer; }
.poster .glyph { font-size: 40px; line-height: 1; }
.poster[hidden] { display: none; }
.caption { margin: 0; padding: 6px 10px; min-height: calc(4 * 1.4em + 12px); border-top: 1px solid var(--fr-line); }
.caption .count { color: var(--fr-muted); margin-right: 6px; }
.bar { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; padding: 6px 10px; border-top: 1px solid var(--fr-line); }
button, select, input, a.open { font: inherit; color: var(--fr-ink); }
button, a.open { min-height: 36px; min-width: 36px; padding: 4px 10px; border: 1px solid var(--fr-line); border-radius: 6px;
  background: var(--fr-button); cursor: pointer; text-decoration: none; display: inline-flex; align-items: center; }
select { min-height: 36px; border: 1px solid var(--fr-line); border-radius: 6px; background: var(--fr-button); }
button:focus-visible, select:focus-visible, input:focus-visible, a.open:focus-visible, .panel:focus-visible, .poster:focus-visible {
  outline: 3px solid var(--fr-accent); outline-offset: 1px; }
button:disabled { opacity: 0.55; cursor: default; }
.time { color: var(--fr-muted); font-variant-numeric: tabular-nums; margin-left: auto; }
input[type="range"] { flex: 1 1 120px; min-width: 100px; accent-color: var(--fr-accent); }
.panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); border-top: 1px solid var(--fr-line); }
.panel { height: 9em; overflow: auto; margin: 0; padding: 6px 10px; font-size: 12px; border-right: 1px solid var(--fr-line); }
.panel h3 { margin: 0 0 4px; font-size: 12px; }
.panel ol, .panel ul { margin: 0; padding-left: 1.2em; }
.panel[data-panel="history"] { grid-column: 1 / -1; height: auto; max-height: 30em; }
.history-summary { margin: 0 0 4px; font-weight: 600; }
.history-summary[data-verdict='not linearizable'] { color: #b91c1c; }
:host([data-theme="dark"]) .history-summary[data-verdict='not linearizable'] { color: #fca5a5; }
.history-sentence { margin: 2px 0; }
.history-tools { display: flex; gap: 4px; margin-bottom: 4px; }
.history-scroll { max-height: 16em; overflow-y: auto; border: 1px solid var(--fr-line); border-radius: 6px; }
.history-scroll:focus-visible { outline: 3px solid var(--fr-accent); outline-offset: 1px; }
.history-canvas { display: block; width: 100%; height: 60px; touch-action: pan-y; }
.history-detail { min-height: 2.4em; margin: 4px 0; font-variant-numeric: tabular-nums; }
.history-legend { color: var(--fr-muted); margin: 0; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.error { color: #b91c1c; }
:host([data-theme="dark"]) .error { color: #fca5a5; }
@media (max-width: 480px) { .time { margin-left: 0; width: 100%; } button, a.open, select { min-height: 44px; min-width: 44px; } }
`;

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

/** Every widget on the page that waits for the viewport, watched by one observer. */
let nearObserver = null;
/** Every loaded widget, watched for being on screen (off screen: paused). */
let visibleObserver = null;

function observeNear(widget) {
  nearObserver ??= new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        if (entry.isIntersecting) {
          nearObserver.unobserve(entry.target);
          entry.target.load().catch(() => {});
        }
      }
    },
    { rootMargin: NEAR_VIEWPORT },
  );
  nearObserver.observe(widget);
}

function observeVisible(widget) {
  visibleObserver ??= new IntersectionObserver((entries) => {
    for (const entry of entries) entry.target._setOnScreen(entry.isIntersecting);
  });
  visibleObserver.observe(widget);
}

export class FlotillaRaft extends HTMLElement {
  static observedAttributes = ATTRIBUTES;

  /** Where the .wasm file is; set it before the first widget loads to self-host the files. */
  static wasmUrl = new URL('../pkg-widget/flotilla_wasm_bg.wasm', import.meta.url).href;

  /** Where the history panel's checker (.wasm) is, for `panels="history"`; set it with wasmUrl
   * to self-host the files. */
  static checkerWasmUrl = new URL('../pkg-checker/flotilla_wasm_checker_bg.wasm', import.meta.url).href;

  /** The playground that shareUrl() links to. */
  static playgroundUrl = new URL('../index.html', import.meta.url).href;

  #player = null;
  #engine = null;
  #loading = null;
  #ui = {};
  #onScreen = false;
  #raf = 0;
  #wantPlay = false;
  #error = null;
  #panelsAt = 0;
  /** `panels="history"`: the history panel and the checker behind it (re-checks only the keys
   * whose operations changed), made on first show; `revision` is the history last shown. */
  #history = null;
  #historyModule = null;
  #historyLoading = null;
  #resolveReady;
  #lastCaption = '';
  #ownLabel = null;

  constructor() {
    super();
    this.attachShadow({ mode: 'open' });
    /** Resolves once the widget has loaded its run (after a flotilla-load event). */
    this.ready = new Promise((resolve) => {
      this.#resolveReady = resolve;
    });
    this.addEventListener('keydown', (event) => this.#onKey(event));
  }

  connectedCallback() {
    if (!this.hasAttribute('tabindex')) this.tabIndex = 0;
    if (!this.hasAttribute('role')) this.setAttribute('role', 'group');
    // An author's own aria-label wins over the one made from the scenario.
    if (this.#ownLabel === null) this.#ownLabel = this.hasAttribute('aria-label');
    this.setAttribute('aria-keyshortcuts', 'Space K ArrowRight ArrowLeft Period Home');
    this.#applyTheme();
    if (!this.#ui.stage) this.#build();
    this.#updateLabel();
    if (this.#player) {
      observeVisible(this);
      this.#schedule();
    } else {
      observeNear(this);
    }
    FlotillaRaft.#pages.add(this);
  }

  disconnectedCallback() {
    nearObserver?.unobserve(this);
    visibleObserver?.unobserve(this);
    this.#onScreen = false;
    cancelAnimationFrame(this.#raf);
    this.#raf = 0;
    FlotillaRaft.#pages.delete(this);
  }

  attributeChangedCallback(name, oldValue, value) {
    if (oldValue === value || !this.#ui.stage) return;
    if (name === 'height') this.#ui.stage.style.height = `${this.#height()}px`;
    else if (name === 'theme') this.#applyTheme();
    else if (name === 'alt') this.#updateLabel();
    else if (name === 'speed' && this.#player) this.#player.speed = this.#speedAttribute();
    else if (LAYOUT_ATTRIBUTES.has(name)) this.#build();
    else if (RUN_ATTRIBUTES.has(name) && this.#player) this.#prepareRun().then(() => this.#startRun());
  }

  // ----- loading ------------------------------------------------------------------------------

  /** Loads the engine and the run now, whatever the viewport; resolves when it is shown. */
  load() {
    this.#loading ??= (async () => {
      nearObserver?.unobserve(this);
      try {
        this.#engine = await import('./player.js');
        const tables = await this.#engine.loadWasm(FlotillaRaft.wasmUrl);
        this.#tables = tables;
        await this.#prepareRun();
        this.#startRun();
      } catch (error) {
        this.#fail(error);
        throw error;
      }
    })();
    return this.#loading;
  }

  #tables = null;

  /** What the attributes ask to run. */
  #runSpec() {
    return { scenario: this.getAttribute('scenario'), run: this.getAttribute('run'), nodes: this.#intAttribute('nodes'), seed: this.#intAttribute('seed') };
  }

  /** Fetches the run's scenario module (once per page and scenario); a failed fetch shows as an
   * error when the run starts. */
  #prepareRun() {
    return this.#engine.prepareRun(this.#runSpec()).catch(() => {});
  }

  /** A new run from the attributes; `autoplay`: honour the autoplay attribute. */
  #startRun({ autoplay = true } = {}) {
    const engine = this.#engine;
    this.#player?.dispose();
    this.#player = null;
    this.#error = null;
    let built;
    try {
      built = engine.buildRun(this.#tables, this.#runSpec());
    } catch (error) {
      this.#fail(error);
      return;
    }
    const player = new engine.Player(this.#tables, built, (type, detail) => this.#onPlayer(type, detail));
    player.speed = this.#speedAttribute();
    player.reducedMotion = matchMedia('(prefers-reduced-motion: reduce)').matches;
    player.theme = this.dataset.theme;
    this.#player = player;
    this.#ui.poster.hidden = true;
    this.#ui.canvas.hidden = false;
    player.attachCanvas(this.#ui.canvas);
    this.#refreshUi(true);
    this.#showCaption(player.caption());
    observeVisible(this);
    this.dispatchEvent(new CustomEvent('flotilla-load', { detail: { scenario: player.scenario?.id ?? null, duration: player.duration } }));
    this.#resolveReady(this);
    if ((autoplay && this.hasAttribute('autoplay') && !player.reducedMotion) || this.#wantPlay) player.setPlaying(true);
    this.#wantPlay = false;
    this.#schedule();
  }

  #fail(error) {
    this.#error = error;
    const message = error?.message ?? String(error);
    if (this.#ui.caption) {
      this.#ui.caption.replaceChildren();
      const span = document.createElement('span');
      span.className = 'error';
      span.textContent = `Could not load the cluster: ${message}`;
      this.#ui.caption.append(span);
    }
    this.dispatchEvent(new CustomEvent('flotilla-error', { detail: { message, error } }));
  }

  // ----- the animation loop: only while playing, on screen and the page visible --------------

  static #pages = new Set();

  static {
    document.addEventListener('visibilitychange', () => {
      for (const widget of FlotillaRaft.#pages) widget.#schedule();
    });
    // theme="auto" (or none) follows the system's colours as they change.
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
      for (const widget of FlotillaRaft.#pages) widget.#applyTheme();
    });
  }

  _setOnScreen(onScreen) {
    this.#onScreen = onScreen;
    this.#schedule();
  }

  /** Whether time may pass now: playing, on screen, in a visible page. */
  #running() {
    return Boolean(this.#player?.playing) && this.#onScreen && !document.hidden && this.isConnected;
  }

  /** Starts the loop if time may pass and it is not running (the first frame measures no time). */
  #schedule() {
    if (!this.#running() || this.#raf) return;
    this.#player.lastFrameAt = null;
    this.#raf = requestAnimationFrame((now) => this.#frame(now));
  }

  #frame(now) {
    this.#raf = 0;
    if (!this.#running()) return;
    this.#player.frameTick(now);
    this.#refreshUi(false);
    if (this.#running()) this.#raf = requestAnimationFrame((t) => this.#frame(t));
  }

  // ----- events from the player ---------------------------------------------------------------

  #onPlayer(type, detail) {
    if (type === 'change') {
      this.#refreshUi(true);
      this.#schedule();
      return;
    }
    if (type === 'step') this.#showCaption(detail);
    if (type === 'end' && this.hasAttribute('loop')) {
      queueMicrotask(() => {
        this.reset();
        this.play();
      });
    }
    this.dispatchEvent(new CustomEvent(`flotilla-${type}`, { detail }));
  }

  #showCaption(step) {
    const box = this.#ui.caption;
    if (!box) return;
    const text = step.caption || (this.#player?.scenario ? '' : 'A Raft cluster of the real core, simulated in the page.');
    const count = step.count > 0 ? `Step ${step.index + 1} of ${step.count}` : '';
    box.replaceChildren();
    if (count) {
      const span = document.createElement('span');
      span.className = 'count';
      span.textContent = count;
      box.append(span);
    }
    box.append(document.createTextNode(text));
    this.#lastCaption = text;
    this.#updateLabel();
  }

  // ----- the shadow DOM -----------------------------------------------------------------------

  #build() {
    this.#history = null;
    const controls = this.#controlsMode();
    const panels = this.#panelList();
    const title = this.getAttribute('alt') || (this.getAttribute('scenario') ? `Raft: ${this.getAttribute('scenario').replace(/-/g, ' ')}` : 'A Raft cluster');
    const captionOn = this.getAttribute('caption') !== 'off';
    const full = controls === 'full';
    this.shadowRoot.innerHTML = `
      <style>${STYLE}</style>
      <div class="stage" style="height:${this.#height()}px">
        <canvas role="img" hidden></canvas>
        <button class="poster" type="button"><span class="glyph" aria-hidden="true">▶</span><span>${escapeHtml(title)}</span><span class="sr">: load and play the simulation</span></button>
      </div>
      ${captionOn ? '<p class="caption" aria-live="polite"></p>' : '<p class="caption sr" aria-live="polite"></p>'}
      ${
        controls === 'none'
          ? ''
          : `<div class="bar" role="toolbar" aria-label="Playback">
        <button type="button" data-do="toggle" aria-pressed="false">Play</button>
        ${full ? '<button type="button" data-do="back" aria-label="Previous caption">◀ Back</button><button type="button" data-do="next" aria-label="Next caption">Next ▶</button><button type="button" data-do="step" aria-label="Handle one event">Step</button>' : ''}
        <button type="button" data-do="reset">Restart</button>
        ${full ? '<a class="open" target="_blank" rel="noopener" href="#">Open in playground</a>' : ''}
        <span class="time" aria-hidden="true"></span>
      </div>
      ${
        full
          ? `<div class="bar"><input type="range" min="0" max="1000" step="1" value="0" aria-label="Simulated time"></div>
      <div class="bar" role="toolbar" aria-label="Act on the cluster">
        <label>Server <select data-ui="node"></select></label>
        <button type="button" data-do="crash">Crash</button>
        <button type="button" data-do="restart">Restart server</button>
        <button type="button" data-do="isolate">Isolate</button>
        <button type="button" data-do="heal">Heal links</button>
        <button type="button" data-do="write">Write</button>
      </div>`
          : ''
      }`
      }
      ${
        panels.length
          ? `<div class="panels">${panels
              .map((name) => `<section class="panel" data-panel="${name}" tabindex="0" aria-label="${PANEL_LABELS[name]}"><h3>${PANEL_TITLES[name]}</h3><div></div></section>`)
              .join('')}</div>`
          : ''
      }`;
    const root = this.shadowRoot;
    this.#ui = {
      stage: root.querySelector('.stage'),
      canvas: root.querySelector('canvas'),
      poster: root.querySelector('.poster'),
      caption: root.querySelector('.caption'),
      toggle: root.querySelector('[data-do="toggle"]'),
      time: root.querySelector('.time'),
      scrub: root.querySelector('input[type="range"]'),
      node: root.querySelector('[data-ui="node"]'),
      open: root.querySelector('a.open'),
      panels: Object.fromEntries([...root.querySelectorAll('[data-panel]')].map((section) => [section.dataset.panel, section.lastElementChild])),
    };
    this.#ui.poster.addEventListener('click', () => this.play());
    root.querySelectorAll('[data-do]').forEach((button) => button.addEventListener('click', () => this.#do(button.dataset.do)));
    this.#ui.scrub?.addEventListener('input', () => {
      this.pause();
      this.seek(Number(this.#ui.scrub.value));
    });
    this.#ui.open?.addEventListener('click', () => {
      if (this.#player) this.#ui.open.href = this.shareUrl();
    });
    if (this.#player) {
      this.#ui.poster.hidden = true;
      this.#ui.canvas.hidden = false;
      this.#player.attachCanvas(this.#ui.canvas);
      this.#showCaption(this.#player.caption());
      this.#refreshUi(true);
    } else if (this.#error) {
      this.#fail(this.#error);
    }
  }

  #do(action) {
    if (action === 'toggle') return this.paused ? this.play() : this.pause();
    if (action === 'reset') return this.#player && this.reset();
    const player = this.#player;
    if (!player) return;
    const node = Number(this.#ui.node?.value) || 1;
    if (action === 'back') player.previousCaption();
    else if (action === 'next') player.nextCaption();
    else if (action === 'step') this.step();
    else if (action === 'crash') this.crash(node);
    else if (action === 'restart') this.restart(node);
    else if (action === 'isolate') this.partition([node]);
    else if (action === 'heal') this.heal();
    else if (action === 'write') this.propose(`x=${player.nowMs}`);
  }

  #refreshUi(force) {
    const player = this.#player;
    if (!player) return;
    const ui = this.#ui;
    if (ui.toggle) {
      const label = player.playing ? 'Pause' : player.ended ? 'Replay' : 'Play';
      if (ui.toggle.textContent !== label) ui.toggle.textContent = label;
      ui.toggle.setAttribute('aria-pressed', String(player.playing));
    }
    if (ui.time) ui.time.textContent = `${(player.nowMs / 1000).toFixed(2)} s`;
    if (ui.scrub) {
      const max = String(Math.max(1, Math.round(player.duration)));
      if (ui.scrub.max !== max) ui.scrub.max = max;
      if (this.shadowRoot.activeElement !== ui.scrub) ui.scrub.value = String(player.nowMs);
      ui.scrub.setAttribute('aria-valuetext', `${player.nowMs} milliseconds of ${player.duration}`);
    }
    const now = performance.now();
    if (!force && now - this.#panelsAt < PANEL_REFRESH_MS) return;
    this.#panelsAt = now;
    if (ui.node) this.#syncNodeSelect(player);
    this.#refreshPanels(player);
  }

  #syncNodeSelect(player) {
    const select = this.#ui.node;
    const frame = player.state();
    const labels = frame.nodes.map((n) => `${n.id}: ${n.liveness === 'down' ? 'down' : n.role}`);
    if (select.options.length !== labels.length) {
      select.replaceChildren(...labels.map((text, k) => new Option(text, String(k + 1))));
      if (frame.leader) select.value = String(frame.leader);
    } else {
      labels.forEach((text, k) => {
        if (select.options[k].text !== text) select.options[k].text = text;
      });
    }
  }

  #refreshPanels(player) {
    const panels = this.#ui.panels;
    if (!panels || Object.keys(panels).length === 0) return;
    const c = player.cluster;
    const leader = c.leader() ?? 1;
    if (panels.log) {
      const log = c.nodeLog(leader, 12);
      // Newest first: the entry just appended is the one the picture is about.
      const list = document.createElement('ol');
      list.reversed = true;
      for (const entry of [...log.entries].reverse()) {
        const li = document.createElement('li');
        li.value = entry.index;
        li.textContent = `term ${entry.term}${entry.committed ? '' : ' (not committed)'}: ${entry.text}`;
        list.append(li);
      }
      panels.log.replaceChildren(document.createTextNode(`node ${leader}, commit index ${log.commit}`), list);
    }
    if (panels.kv) {
      const pairs = c.kv(leader, 20);
      const list = document.createElement('ul');
      for (const { key, value } of pairs) {
        const li = document.createElement('li');
        li.textContent = `${key} = ${value}`;
        list.append(li);
      }
      panels.kv.replaceChildren(pairs.length ? list : document.createTextNode('empty'));
    }
    if (panels.history) this.#refreshHistory(player, panels.history);
    if (panels.events) {
      const list = document.createElement('ul');
      for (const line of player.events.slice(-8).reverse()) {
        const li = document.createElement('li');
        li.textContent = `${line.timeMs} ms: ${line.text}`;
        list.append(li);
      }
      const s = c.stats();
      panels.events.replaceChildren(document.createTextNode(`${s.messagesDelivered} messages delivered, ${s.committed} entries committed`), list);
    }
  }

  #refreshHistory(player, container) {
    if (!this.#historyModule) {
      // Loaded on first use; the panels refresh again once it is here.
      this.#historyLoading ??= this.#engine.loadHistoryPanel(FlotillaRaft.checkerWasmUrl).then((module) => {
        this.#historyModule = module;
        if (this.#player) this.#refreshPanels(this.#player);
      }, (error) => this.#fail(error));
      return;
    }
    if (!this.#history) {
      this.#history = {
        panel: this.#historyModule.mountHistoryPanel(container, {
          onSeek: (timeMs) => {
            this.pause();
            this.seek(timeMs);
          },
          theme: this.dataset.theme,
        }),
        checker: new this.#historyModule.HistoryChecker(),
        cluster: null,
        revision: -1,
        data: null,
      };
    }
    const h = this.#history;
    const c = player.cluster;
    if (c !== h.cluster || c.historyRevision !== h.revision) {
      h.cluster = c;
      h.revision = c.historyRevision;
      const data = c.historyData();
      h.data = { report: h.checker.check(data.history), bands: data.bands, nodes: data.nodes, now: data.now };
    } else if (h.data.now === c.nowMs) {
      return;
    }
    // Bars still in flight grow to now even when nothing new happened.
    h.data.now = c.nowMs;
    h.panel.update(h.data);
  }

  #updateLabel() {
    const canvas = this.#ui.canvas;
    const alt = this.getAttribute('alt');
    const label = alt || this.#lastCaption || 'A simulated Raft cluster';
    if (canvas && canvas.getAttribute('aria-label') !== label) canvas.setAttribute('aria-label', label);
    const name = alt || (this.getAttribute('scenario') ? `Raft simulation: ${this.getAttribute('scenario').replace(/-/g, ' ')}` : 'Raft simulation');
    if (!this.#ownLabel && this.getAttribute('aria-label') !== name) this.setAttribute('aria-label', name);
  }

  #applyTheme() {
    const chosen = this.getAttribute('theme');
    const dark = chosen === 'dark' || (chosen !== 'light' && matchMedia('(prefers-color-scheme: dark)').matches);
    this.dataset.theme = dark ? 'dark' : 'light';
    if (this.#player) {
      this.#player.theme = this.dataset.theme;
      this.#history?.panel.setTheme(this.dataset.theme);
      this.#player.draw();
    }
  }

  // ----- keyboard: only while the widget has focus ---------------------------------------------

  #onKey(event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    const inner = event.composedPath()[0];
    // Buttons, links and inputs inside keep their own keys (Space presses a button).
    if (inner !== this && inner?.matches?.('button, input, select, a, textarea, [data-panel]')) return;
    const handled = {
      ' ': () => (this.paused ? this.play() : this.pause()),
      k: () => (this.paused ? this.play() : this.pause()),
      ArrowRight: () => this.#player?.nextCaption(),
      ArrowLeft: () => this.#player?.previousCaption(),
      '.': () => this.#player && this.step(),
      Home: () => this.#player && this.reset(),
    }[event.key];
    if (!handled) return;
    event.preventDefault();
    handled();
  }

  // ----- attributes as values ---------------------------------------------------------------

  #height() {
    const value = Number.parseInt(this.getAttribute('height') ?? '', 10);
    return Number.isFinite(value) && value >= 120 ? Math.min(value, 2000) : DEFAULT_HEIGHT;
  }

  #intAttribute(name) {
    const text = this.getAttribute(name);
    if (text === null || text === '') return null;
    const value = Number(text);
    return Number.isInteger(value) ? value : null;
  }

  #speedAttribute() {
    const value = Number(this.getAttribute('speed'));
    return Number.isFinite(value) && value > 0 ? Math.min(1000, Math.max(0.01, value)) : 0.1;
  }

  #controlsMode() {
    const mode = this.getAttribute('controls');
    return mode === 'none' || mode === 'full' ? mode : 'minimal';
  }

  #panelList() {
    return (this.getAttribute('panels') ?? '')
      .split(/[\s,]+/)
      .filter((name) => ['log', 'kv', 'events', 'history'].includes(name))
      .filter((name, k, all) => all.indexOf(name) === k);
  }

  #need() {
    if (!this.#player) throw new Error('flotilla-raft: not loaded yet (await element.load() or element.ready)');
    return this.#player;
  }

  // ----- properties and methods ---------------------------------------------------------------

  /** Simulated milliseconds shown; setting it seeks. */
  get currentTime() {
    return this.#player?.nowMs ?? 0;
  }

  set currentTime(ms) {
    this.seek(ms);
  }

  /** The run's length in simulated ms: the scenario's end, or how far the run has gone. */
  get duration() {
    return this.#player?.duration ?? 0;
  }

  get paused() {
    return !this.#player?.playing;
  }

  /** The run's state now (the playground page API's state, plus scenario, caption and step). */
  get state() {
    return this.#player ? this.#player.state() : null;
  }

  /** Plays (loading first if need be). */
  play() {
    if (!this.#player) {
      this.#wantPlay = true;
      return this.load().catch(() => {});
    }
    this.#player.setPlaying(true);
    return Promise.resolve();
  }

  pause() {
    this.#wantPlay = false;
    this.#player?.setPlaying(false);
  }

  /** Handles one event of the simulation, paused. */
  step() {
    this.#need().stepEvent();
  }

  seek(ms) {
    const value = Number(ms);
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`flotilla-raft: cannot seek to ${ms}`);
    this.#need().seek(value);
  }

  /** Back to the start of the run as the attributes describe it, paused. */
  reset() {
    this.#need();
    this.#wantPlay = false;
    this.#startRun({ autoplay: false });
  }

  crash(id) {
    const player = this.#need();
    const node = player.nodeId(id);
    player.act([{ type: 'crash', node }], { type: 'crash', node });
  }

  restart(id) {
    const player = this.#need();
    const node = player.nodeId(id);
    player.act([{ type: 'restart', node }], { type: 'restart', node });
  }

  /** Cuts every link between groups a and b (b: everyone else); a and b are ids or lists. */
  partition(a, b) {
    this.#need().partition(a, b);
  }

  heal() {
    this.#need().act([{ type: 'heal' }], { type: 'heal' });
  }

  /** A client write to the leader: `key=value` writes a key, anything else is an opaque command. */
  propose(value) {
    const text = String(value);
    const at = text.indexOf('=');
    const input = at > 0 ? { type: 'put', key: text.slice(0, at), value: text.slice(at + 1) } : { type: 'propose', data: text };
    this.#need().act([input], { type: 'propose', value: text });
  }

  /** The playground link that opens this same run at this moment. */
  shareUrl() {
    return `${FlotillaRaft.playgroundUrl}${this.#need().fragment()}`;
  }
}

if (!customElements.get('flotilla-raft')) customElements.define('flotilla-raft', FlotillaRaft);
