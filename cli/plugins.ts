/**
 * `plugins`: list the registered plugins (built-ins and those of `--plugin` modules) with
 * their kind, source, description and options.
 *
 * @module
 */
import { logErr, parseFlags } from "../lib/cli_util.ts";
import { InputError } from "../lib/errors.ts";
import { PLUGIN_KINDS } from "../lib/plugin_types.ts";
import { getPlugin, listPlugins, loadPluginModule, type PluginKind } from "../registry.ts";

/** Usage text of `plugins`. */
export const usage =
  `plugins [--kind dataset|generator|filter|student] [--plugin PATH_OR_URL ...] [--json]
  Lists every plugin by kind: name, where it comes from (built-in or its module), its
  description and the options it reads (stage options: --option KEY=VALUE, config
  generatorOptions/filterOptions/studentOptions). --plugin loads modules first (repeatable).
  --json: the last stdout line is the list as one JSON array.`;

/** Runs `plugins`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags("plugins", args, {
    kind: { type: "string" },
    plugin: { type: "string", multiple: true },
    json: { type: "boolean", default: false },
  });
  for (const m of (values.plugin as string[] | undefined) ?? []) await loadPluginModule(m);
  const kind = values.kind as string | undefined;
  if (kind !== undefined && !(PLUGIN_KINDS as readonly string[]).includes(kind)) {
    throw new InputError(`plugins: --kind must be one of ${PLUGIN_KINDS.join(", ")}`);
  }
  // Load every built-in once so that its description and options are known.
  for (const p of listPlugins(kind as PluginKind | undefined)) await getPlugin(p.kind, p.name);
  const list = listPlugins(kind as PluginKind | undefined);
  if (values.json) {
    console.log(JSON.stringify(list));
    return 0;
  }
  for (const k of PLUGIN_KINDS) {
    const of = list.filter((p) => p.kind === k);
    if (of.length === 0) continue;
    console.log(`${k} plugins:`);
    for (const p of of) {
      console.log(`  ${p.name}  (${p.source})${p.description ? `  ${p.description}` : ""}`);
      for (const [o, d] of Object.entries(p.options ?? {})) {
        console.log(`      ${o.padEnd(16)} ${d}`);
      }
    }
  }
  logErr(`${list.length} plugin(s)`);
  return 0;
}
