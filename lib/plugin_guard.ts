/**
 * How messages name a plugin, and the guard around plugin calls. Shared by the registry
 * (`registry.ts`, which records where each plugin came from) and the stages that call
 * plugins (`stages/selection.ts`), so that neither imports the other.
 *
 * @module
 */
import { InputError, isInputError } from "./errors.ts";
import { type Plugin, PLUGIN_KINDS } from "./plugin_types.ts";

/** Source label of built-in plugins. */
export const BUILTIN_SOURCE = "built-in";

/** The module each registered plugin came from (`built-in`, `code` or a path/URL). */
export const sources: WeakMap<object, string> = new WeakMap<object, string>();

/** `filter plugin "x" (module m)`: how messages name a plugin. */
export function label(
  kind: unknown,
  name: unknown,
  source: string | undefined,
  index?: number,
): string {
  const k = typeof kind === "string" && (PLUGIN_KINDS as readonly string[]).includes(kind)
    ? `${kind} plugin`
    : "plugin";
  const n = typeof name === "string" && name !== ""
    ? `"${name}"`
    : index !== undefined
    ? `#${index} (no name)`
    : "(no name)";
  const src = source && source !== "code" ? ` (module ${source})` : "";
  return `${k} ${n}${src}`;
}

/** How error messages name `plugin`: kind, name and module when known. */
export function describePlugin(plugin: Plugin): string {
  return label(plugin.kind, plugin.name, sources.get(plugin));
}

/**
 * Calls a plugin method and reports a throw as an {@linkcode InputError} naming the plugin,
 * its module and `where` (e.g. the video). Errors of built-ins pass through unchanged: a
 * built-in's InputError is already a user message, anything else is a bug that keeps its
 * stack trace.
 */
export async function guardPluginCall<T>(
  plugin: Plugin,
  method: string,
  call: () => T | Promise<T>,
  where?: string,
): Promise<Awaited<T>> {
  try {
    return await call();
  } catch (e) {
    if (sources.get(plugin) === BUILTIN_SOURCE) throw e;
    const msg = e instanceof Error
      ? (isInputError(e) ? e.message : `${e.name}: ${e.message}`)
      : String(e);
    throw new InputError(
      `${describePlugin(plugin)}: ${method}${where ? ` on ${where}` : ""} threw: ` +
        msg.split("\n")[0],
    );
  }
}
