// For the pages whose inside a script builds (broadcaster, self-check panel): wait until the
// wasm has hydrated the server-rendered page, which would otherwise replace what they render.

/** Resolves once body[data-hydrated] is set, or after 5 s (without the wasm the page still works). */
export async function hydrated() {
  if (document.body.dataset.hydrated) return;
  await new Promise((resolve) => {
    const observer = new MutationObserver(() => {
      if (document.body.dataset.hydrated) { observer.disconnect(); resolve(); }
    });
    observer.observe(document.body, { attributes: true });
    setTimeout(resolve, 5_000);
  });
}
