// Bundles js/widget.ts (and its CSS) into src/attn_widget/static/, where the Python package reads them.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

const outdir = "src/attn_widget/static";
mkdirSync(outdir, { recursive: true });
copyFileSync("js/widget.css", `${outdir}/widget.css`);
const options = {
  entryPoints: ["js/widget.ts"],
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: !process.argv.includes("--watch"),
  sourcemap: process.argv.includes("--watch") ? "inline" : false,
  outfile: `${outdir}/widget.js`,
};
if (process.argv.includes("--watch")) {
  await (await esbuild.context(options)).watch();
  console.log("watching js/ ...");
} else {
  await esbuild.build(options);
}
