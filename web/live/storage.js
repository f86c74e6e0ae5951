// Durable storage for the tab's Raft node, in the dedicated Worker: the files of
// `flotilla/<cluster_id>/` (identity, log-0, log-1; their format is wasm/src/live/store.rs's,
// which is raft-core's log_record, the one native-node's write-ahead log uses). The wasm node
// decides what to write; this module only carries the operations out, in order, and makes them
// durable before the Worker sends any frame the same call produced.
//
// Backends:
// - OPFS through FileSystemSyncAccessHandle (Chromium, Firefox, Safari in a dedicated Worker):
//   synchronous write/truncate/flush, so a batch is durable before the next line runs.
// - IndexedDB with `durability: "strict"` where sync handles are missing: each batch is one
//   transaction over 64 KiB blocks, and frames wait for its `complete` event.

export const FILES = ['identity', 'log-0', 'log-1'];
const BLOCK_BYTES = 64 * 1024;

/** A folder name for a cluster id that the file system accepts whatever the id holds. */
export function folderName(clusterId) {
  const name = encodeURIComponent(clusterId);
  return name === '.' || name === '..' || name === '' ? `%${name}` : name;
}

export function syncHandlesAvailable() {
  return (
    typeof FileSystemFileHandle !== 'undefined' &&
    'createSyncAccessHandle' in FileSystemFileHandle.prototype &&
    typeof navigator.storage?.getDirectory === 'function'
  );
}

class OpfsStorage {
  constructor(handles) {
    this.backend = 'opfs';
    this.sync = true;
    this.handles = handles;
  }

  static async open(clusterId) {
    const root = await navigator.storage.getDirectory();
    const top = await root.getDirectoryHandle('flotilla', { create: true });
    const dir = await top.getDirectoryHandle(folderName(clusterId), { create: true });
    const handles = {};
    try {
      for (const name of FILES) {
        const file = await dir.getFileHandle(name, { create: true });
        handles[name] = await file.createSyncAccessHandle();
      }
    } catch (error) {
      for (const handle of Object.values(handles)) handle.close();
      throw error;
    }
    return new OpfsStorage(handles);
  }

  read(name) {
    const handle = this.handles[name];
    const bytes = new Uint8Array(handle.getSize());
    const read = handle.read(bytes, { at: 0 });
    if (read !== bytes.length) throw new Error(`flotilla/${name}: read ${read} of ${bytes.length} bytes`);
    return bytes;
  }

  /** Carries `ops` out; throws on any failure (the node must then stop). */
  apply(ops) {
    for (const op of ops) {
      const handle = this.handles[op.file];
      if (op.op === 'write') {
        const written = handle.write(op.bytes, { at: op.offset });
        if (written !== op.bytes.length) throw new Error(`${op.file}: wrote ${written} of ${op.bytes.length} bytes`);
      } else if (op.op === 'truncate') handle.truncate(op.size);
      else if (op.op === 'flush') handle.flush();
    }
  }

  close() {
    for (const handle of Object.values(this.handles)) handle.close();
  }
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

class IndexedDbStorage {
  constructor(db, folder, files) {
    this.backend = 'indexeddb';
    this.sync = false;
    this.db = db;
    this.folder = folder;
    /** name → Uint8Array: the file's bytes, mirrored so writes touch whole blocks. */
    this.files = files;
  }

  static async open(clusterId) {
    const open = indexedDB.open('flotilla', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('blocks');
    const db = await request(open);
    const folder = folderName(clusterId);
    const files = {};
    const tx = db.transaction('blocks', 'readonly');
    const store = tx.objectStore('blocks');
    for (const name of FILES) {
      const size = (await request(store.get(`${folder}/${name}/size`))) ?? 0;
      const bytes = new Uint8Array(size);
      for (let block = 0; block * BLOCK_BYTES < size; block += 1) {
        const data = await request(store.get(`${folder}/${name}/${block}`));
        if (data) bytes.set(new Uint8Array(data).subarray(0, size - block * BLOCK_BYTES), block * BLOCK_BYTES);
      }
      files[name] = bytes;
    }
    return new IndexedDbStorage(db, folder, files);
  }

  read(name) {
    return this.files[name].slice();
  }

  /** One strict transaction for the batch; resolves once it is durable. */
  apply(ops) {
    const touched = new Map();
    for (const op of ops) {
      let bytes = this.files[op.file];
      if (op.op === 'write') {
        const end = op.offset + op.bytes.length;
        if (end > bytes.length) {
          const grown = new Uint8Array(end);
          grown.set(bytes);
          bytes = grown;
        }
        bytes.set(op.bytes, op.offset);
        this.files[op.file] = bytes;
        const blocks = touched.get(op.file) ?? new Set();
        for (let b = Math.floor(op.offset / BLOCK_BYTES); b * BLOCK_BYTES < end; b += 1) blocks.add(b);
        touched.set(op.file, blocks);
      } else if (op.op === 'truncate') {
        const resized = new Uint8Array(op.size);
        resized.set(bytes.subarray(0, Math.min(bytes.length, op.size)));
        this.files[op.file] = resized;
        // Every block may now differ (zeros past the old end): rewrite them all.
        const blocks = new Set();
        for (let b = 0; b * BLOCK_BYTES < op.size; b += 1) blocks.add(b);
        touched.set(op.file, blocks);
      }
    }
    if (touched.size === 0) return Promise.resolve();
    const tx = this.db.transaction('blocks', 'readwrite', { durability: 'strict' });
    const store = tx.objectStore('blocks');
    for (const [name, blocks] of touched) {
      const bytes = this.files[name];
      store.put(bytes.length, `${this.folder}/${name}/size`);
      for (const b of blocks) store.put(bytes.slice(b * BLOCK_BYTES, (b + 1) * BLOCK_BYTES).buffer, `${this.folder}/${name}/${b}`);
    }
    return new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  }

  close() {
    this.db.close();
  }
}

/**
 * Opens the cluster's folder: OPFS sync handles where they exist, IndexedDB otherwise.
 * `prefer`: 'auto' | 'opfs' | 'indexeddb' (the page's `?storage=` for tests).
 */
export async function openStorage(clusterId, prefer = 'auto') {
  if (prefer !== 'indexeddb' && syncHandlesAvailable()) return OpfsStorage.open(clusterId);
  if (prefer === 'opfs') throw new Error('OPFS sync access handles are missing in this browser');
  if (typeof indexedDB === 'undefined') throw new Error('neither OPFS sync access handles nor IndexedDB');
  return IndexedDbStorage.open(clusterId);
}
