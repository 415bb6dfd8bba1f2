// Builds the widgets' front end: js/<widget>.js (each with its imports, e.g. shared.js)
// -> one self-contained ES module each in lm_probe_widgets/static/, for anywidget's _esm
// (loaded from a blob URL, where a relative import cannot resolve); the stylesheets are
// copied as they are (Python joins theme.css with <widget>.css). The output is committed,
// so a wheel or a plain `pip install` needs no Node; tests/test_frontend_build.py rebuilds
// into a temporary folder and fails when the committed files are stale.
//
//   node build.mjs [--outdir DIR]      (npm run build)
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";

const SRC = "js";
const LIBRARIES = new Set(["shared.js"]); // imported by widgets, not widgets themselves
const flag = process.argv.indexOf("--outdir");
const outdir = flag === -1 ? join("lm_probe_widgets", "static") : process.argv[flag + 1];
if (!outdir) throw new Error("--outdir needs a folder");

const files = readdirSync(SRC).sort();
const widgets = files.filter((f) => f.endsWith(".js") && !LIBRARIES.has(f));
const styles = files.filter((f) => f.endsWith(".css"));

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
await build({
  entryPoints: widgets.map((f) => join(SRC, f)),
  outdir,
  bundle: true,
  format: "esm",
  charset: "utf8",
  logLevel: "warning",
  banner: { js: "// Built by `npm run build` from js/ (esbuild); edit js/, not this file." },
});
for (const f of styles) copyFileSync(join(SRC, f), join(outdir, f));
