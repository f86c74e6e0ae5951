// A canvas whose backing store follows its CSS size times devicePixelRatio, so lines stay sharp
// on HiDPI screens. Calls `onResize(width, height)` in CSS pixels whenever either changes.

export function hidpiCanvas(canvas, onResize) {
  const ctx = canvas.getContext('2d');
  let width = 0;
  let height = 0;
  let ratio = 0;
  const fit = () => {
    const box = canvas.getBoundingClientRect();
    const nextRatio = window.devicePixelRatio || 1;
    const nextWidth = Math.max(1, Math.round(box.width));
    const nextHeight = Math.max(1, Math.round(box.height));
    if (nextWidth === width && nextHeight === height && nextRatio === ratio) return;
    width = nextWidth;
    height = nextHeight;
    ratio = nextRatio;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    onResize(width, height);
  };
  new ResizeObserver(fit).observe(canvas);
  // A zoom or a move to another screen changes the ratio without resizing the element.
  const watchRatio = () => {
    matchMedia(`(resolution: ${window.devicePixelRatio}dppx)`).addEventListener(
      'change',
      () => {
        fit();
        watchRatio();
      },
      { once: true },
    );
  };
  watchRatio();
  fit();
  return ctx;
}
