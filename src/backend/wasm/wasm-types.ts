/**
 * TypeScript declares the WebAssembly JS API (WebAssembly.Memory, WebAssembly.Module) and URL in
 * its DOM library only (@types/node adds URL), so a Node.js project whose tsconfig has no "dom" in `lib` could not type-check this
 * package's declarations, which name those types. Empty interfaces in the same namespace merge with
 * the DOM's declarations where they exist and stand in for them where they do not; nothing here
 * exists at run time.
 */
declare global {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface URL {}
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace WebAssembly {
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type
    interface Memory {}
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type
    interface Module {}
  }
}
export {};
