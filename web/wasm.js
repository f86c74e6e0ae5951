// The one module that loads the generated wasm package (web/pkg, built by scripts/build-wasm.sh).
// Everything else imports SimCluster and the table names from here, so the package can move or
// be rebuilt without touching the rest.
import init, { HistoryChecker, SimCluster, generatedHistory, runSeedWorkload, version } from './pkg/flotilla_wasm.js';

let ready = null;

/**
 * Loads and instantiates the module once; later calls share the same promise (so a page with
 * many docs widgets fetches and compiles it once). `wasmUrl`, if given on the first call, is
 * where the .wasm file is (a site self-hosting the files); by default it sits beside the package.
 */
export function loadWasm(wasmUrl = undefined) {
  ready ??= init(wasmUrl === undefined ? undefined : { module_or_path: wasmUrl }).then(() => ({
    SimCluster,
    HistoryChecker,
    generatedHistory,
    runSeedWorkload,
    version: version(),
    nodeFields: SimCluster.nodeFields(),
    nodeStride: SimCluster.nodeStride(),
    messageFields: SimCluster.messageFields(),
    messageStride: SimCluster.messageStride(),
    messageKinds: SimCluster.messageKinds(),
  }));
  return ready;
}
