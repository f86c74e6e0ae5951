// The one module that loads the generated wasm packages (built by scripts/build-wasm.sh).
// Everything else imports SimCluster and the table names from here, so the packages can move or
// be rebuilt without touching the rest.
//   'full'   web/pkg: every export, optimised for speed (the playground, the benchmarks);
//   'widget' web/pkg-widget: the same simulator without the browser peer and the history
//            checker, optimised for size (the docs widget: a page with one must transfer at
//            most 250 KB); its history panel loads web/pkg-checker (loadChecker).

const PACKAGES = {
  full: () => import('./pkg/flotilla_wasm.js'),
  widget: () => import('./pkg-widget/flotilla_wasm.js'),
};
/** web/pkg-checker: the history panel's linearizability checker alone, which the widget's
 * package leaves out; it checks `SimCluster.historyData().history`. */
const CHECKER_PACKAGE = () => import('./pkg-checker/flotilla_wasm_checker.js');

const ready = {};

/**
 * Loads and instantiates the `flavour` package once; later calls share the same promise (so a
 * page with many docs widgets fetches and compiles it once). `wasmUrl`, if given on the first
 * call, is where the .wasm file is (a site self-hosting the files); by default it sits beside
 * the package.
 */
export function loadWasm(wasmUrl = undefined, flavour = 'full') {
  if (!(flavour in PACKAGES)) throw new RangeError(`unknown wasm package ${flavour}`);
  ready[flavour] ??= PACKAGES[flavour]().then(async (pkg) => {
    await pkg.default(wasmUrl === undefined ? undefined : { module_or_path: wasmUrl });
    const { SimCluster } = pkg;
    return {
      SimCluster,
      HistoryChecker: pkg.HistoryChecker,
      generatedHistory: pkg.generatedHistory,
      runSeedWorkload: pkg.runSeedWorkload,
      version: pkg.version(),
      nodeFields: SimCluster.nodeFields(),
      nodeStride: SimCluster.nodeStride(),
      messageFields: SimCluster.messageFields(),
      messageStride: SimCluster.messageStride(),
      messageKinds: SimCluster.messageKinds(),
    };
  });
  return ready[flavour];
}

let checkerReady = null;

/** Loads the checker package once per page (`wasmUrl` as for loadWasm); resolves to its
 * `HistoryChecker` class. */
export function loadChecker(wasmUrl = undefined) {
  checkerReady ??= CHECKER_PACKAGE().then(async (pkg) => {
    await pkg.default(wasmUrl === undefined ? undefined : { module_or_path: wasmUrl });
    return pkg.HistoryChecker;
  });
  return checkerReady;
}
