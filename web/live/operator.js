// The live view's operator panel (issue 14): for someone who holds the cluster's admin secret.
// It shows what only `admin status` on the leader knows, the voter tabs the leader has not heard
// from ("voter tab 4294967301 silent for 40 s") and every browser tab's storage report, and has
// an "Add as voter" button per learner tab (the same `add_voter` admin operation as
// `raft-node admin add-voter <id>`, with the same refusals and reasons).
//
// Why only an operator: native-node reports silent voter tabs only to an admin credential
// (`admin status`; `/metrics` has only their count and the longest silence). A tab holds no
// secret, so it cannot read them. The secret typed here stays in this page's memory: it is never
// stored, never put in the address, and goes only to the cluster's client WebSocket (`/client`),
// inside each admin request, as `raft-node admin` sends it.

/** Longest wait for one admin answer. */
const ANSWER_TIMEOUT_MS = 5000;
/** How often the panel asks the leader again while it is open. */
const REFRESH_MS = 2000;

const MARKUP = `
  <summary>Operator (admin secret)</summary>
  <p class="small">For an operator holding the cluster's admin secret (<code>FLOTILLA_ADMIN_SECRET</code>, or <code>FLOTILLA_SECRET</code> in development). It stays in this page's memory and is sent only to the cluster with each admin request. Silent voter tabs are shown here, not to every tab: the cluster reports them only to an admin.</p>
  <form id="live-operator-form" class="row">
    <label for="live-admin-secret">Admin secret</label>
    <input id="live-admin-secret" type="password" size="20" autocomplete="off">
    <button id="live-operator-connect" type="submit">Show</button>
  </form>
  <p id="live-operator-status" class="small" role="status" aria-live="polite"></p>
  <ul id="live-silent" class="small" aria-label="Silent voter tabs"></ul>
  <table id="live-tabs" class="small"><caption>Browser tabs, as the leader sees them</caption>
    <thead><tr><th scope="col">tab</th><th scope="col">role</th><th scope="col">storage</th><th scope="col">last contact</th><th scope="col">action</th></tr></thead>
    <tbody></tbody></table>
  <output id="live-operator-result" class="small" aria-live="polite"></output>`;

/** One admin request over a fresh `/client` WebSocket; resolves with the parsed answer. */
function adminRequest(scheme, address, body) {
  return new Promise((resolve, reject) => {
    let socket;
    try {
      socket = new WebSocket(`${scheme}//${address}/client`);
    } catch (error) {
      reject(error);
      return;
    }
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`${address} did not answer`));
    }, ANSWER_TIMEOUT_MS);
    socket.onopen = () => socket.send(JSON.stringify({ id: 1, ...body }));
    socket.onerror = () => {
      clearTimeout(timer);
      reject(new Error(`cannot reach ${address}`));
    };
    socket.onmessage = (event) => {
      clearTimeout(timer);
      socket.close();
      try {
        resolve(JSON.parse(event.data));
      } catch (error) {
        reject(error);
      }
    };
  });
}

/** Where to ask: the leader this tab knows of first, then every native member it knows. */
function candidates(state) {
  const addresses = [];
  const leader = state.members.find((m) => m.id === state.leader && m.kind === 'native');
  if (leader?.address) addresses.push(leader.address);
  if (state.origin) addresses.push(state.origin);
  for (const m of state.members) if (m.kind === 'native' && m.address) addresses.push(m.address);
  return [...new Set(addresses)];
}

/**
 * Sends `body` with the secret to the leader, following `not_leader` and a status answered by a
 * follower (only the leader knows who is silent). Resolves with the leader's answer.
 */
async function askLeader(state, secret, body) {
  const scheme = state.scheme ?? 'ws:';
  const queue = candidates(state);
  let lastError = 'no native member known';
  for (let hop = 0; hop < queue.length + 3 && queue.length > 0; hop++) {
    const address = queue.shift();
    let answer;
    try {
      answer = await adminRequest(scheme, address, { ...body, secret });
    } catch (error) {
      lastError = error.message;
      queue.push(address);
      continue;
    }
    const follower = answer.ok && body.op === 'status' && answer.status?.role !== 'leader';
    if ((answer.error === 'not_leader' || follower) && answer.leader_address && answer.leader_address !== address) {
      queue.unshift(answer.leader_address);
      continue;
    }
    return answer;
  }
  throw new Error(lastError);
}

const seconds = (ms) => (ms === null || ms === undefined ? '—' : `${Math.round(ms / 1000)} s ago`);

function storageText(storage) {
  if (!storage) return 'not reported';
  return `${storage.backend}, persistence ${storage.persistent ? 'granted' : 'not granted'}${storage.campaigns ? ', campaigns' : ''}`;
}

/** Adds the operator panel to the live view's side column; `getState` returns the tab's state
 * with `scheme` ('ws:' or 'wss:', the invite link's). */
export function installOperator(side, getState) {
  const panel = document.createElement('details');
  panel.id = 'live-operator';
  panel.innerHTML = MARKUP;
  side.append(panel);
  const $ = (id) => panel.querySelector(`#${id}`);
  let secret = null;
  let timer = null;
  let busy = false;

  const say = (text) => ($('live-operator-status').textContent = text);

  function show(answer) {
    const silent = answer.browser_voters_silent ?? [];
    $('live-silent').replaceChildren(
      ...silent.map((s) => {
        const li = document.createElement('li');
        li.textContent = s.message;
        return li;
      }),
    );
    const tabs = answer.browser_peers ?? [];
    $('live-tabs').tBodies[0].replaceChildren(
      ...tabs.map((tab) => {
        const tr = document.createElement('tr');
        for (const cell of [String(tab.id), tab.role, storageText(tab.storage), seconds(tab.last_contact_ms)]) {
          const td = document.createElement('td');
          td.textContent = cell;
          tr.append(td);
        }
        const td = document.createElement('td');
        if (tab.role === 'learner') {
          const add = document.createElement('button');
          add.type = 'button';
          add.textContent = 'Add as voter';
          add.setAttribute('aria-label', `Add tab ${tab.id} as voter`);
          add.addEventListener('click', () => addVoter(tab.id));
          td.append(add);
        }
        tr.append(td);
        return tr;
      }),
    );
    say(
      `Leader ${answer.node}: ${tabs.length} browser tab(s), ` +
        `${silent.length === 0 ? 'no silent voter tab' : `${silent.length} silent voter tab(s)`}.`,
    );
  }

  async function refresh() {
    if (secret === null || busy) return;
    busy = true;
    try {
      const answer = await askLeader(getState(), secret, { op: 'status' });
      if (answer.ok) show(answer);
      else say(`The cluster refused: ${answer.error}${answer.message ? ` (${answer.message})` : ''}`);
      if (answer.error === 'unauthorized') stop();
    } catch (error) {
      say(`No answer: ${error.message}`);
    } finally {
      busy = false;
    }
  }

  async function addVoter(id) {
    const result = $('live-operator-result');
    result.textContent = `asking the leader to promote tab ${id}…`;
    try {
      const answer = await askLeader(getState(), secret, { op: 'add_voter', node: id });
      result.textContent = answer.ok
        ? `tab ${id}: promotion appended at index ${answer.index}; it becomes a voter once caught up`
        : `tab ${id} refused: ${answer.error}${answer.message ? `: ${answer.message}` : ''}`;
    } catch (error) {
      result.textContent = `tab ${id}: no answer (${error.message})`;
    }
    refresh();
  }

  function stop() {
    clearInterval(timer);
    timer = null;
    secret = null;
  }

  $('live-operator-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const typed = $('live-admin-secret').value;
    $('live-admin-secret').value = '';
    if (!typed) return;
    secret = typed;
    say('Asking the leader…');
    refresh();
    clearInterval(timer);
    timer = setInterval(() => {
      if (panel.open && !panel.closest('[hidden]')) refresh();
    }, REFRESH_MS);
  });
  return { refresh, forget: stop };
}
