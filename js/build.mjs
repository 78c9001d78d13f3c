// Bundles js/widget.ts (and its CSS) and js/standalone/main.ts into src/attn_widget/static/, where the Python package reads them.
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
// The standalone page (attn_widget.export.standalone) inlines this one: the same front end over embedded data.
const standalone = { ...options, entryPoints: ["js/standalone/main.ts"], format: "iife", outfile: `${outdir}/standalone.js` };
if (process.argv.includes("--watch")) {
  await Promise.all([options, standalone].map(async (o) => (await esbuild.context(o)).watch()));
  console.log("watching js/ ...");
} else {
  await Promise.all([esbuild.build(options), esbuild.build(standalone)]);
}
