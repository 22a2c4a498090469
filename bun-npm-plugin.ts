/**
 * Bun preload plugin: resolves the `npm:name@version/sub/path` specifiers of `deps.ts` to the
 * packages installed in `node_modules` (`npm install` with the pinned `package.json`).
 * Deno never loads this file.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
const BunGlobal = (globalThis as any).Bun;

if (BunGlobal) {
  BunGlobal.plugin({
    name: "npm-specifiers",
    setup(build: any) {
      // Bun parses `npm:x` as path `x` in namespace `npm` (older versions kept the prefix).
      const resolve = (args: { path: string }) => {
        const spec = args.path.replace(/^npm:/, "");
        const m = spec.match(/^(@[^/@]+\/[^/@]+|[^/@]+)(?:@[^/]*)?(\/.*)?$/);
        if (!m) throw new Error(`cannot map specifier ${args.path}`);
        const name = m[1] + (m[2] ?? "");
        return { path: BunGlobal.resolveSync(name, import.meta.dir) };
      };
      build.onResolve({ filter: /.*/, namespace: "npm" }, resolve);
      build.onResolve({ filter: /^npm:/ }, resolve);
    },
  });
}
