// Cuts Jest's or Vitest's JSON report (the runner's own, written to a file in the sandbox's scratch) down to one
// line per test for ensemble/verify/js_project.py: KEY, a space, " t ", then JSON [file, "outer > inner", status].
// Failure messages and stacks (text the code under test controls) are left out. Usage: node REPORT KEY.
"use strict";
const fs = require("fs");

const [report, key] = process.argv.slice(2);
let data;
try {
  data = JSON.parse(fs.readFileSync(report, "utf8"));
} catch (e) {
  process.exit(0); // no report: no test reported a result
}
let count = 0;
for (const file of Array.isArray(data && data.testResults) ? data.testResults : []) {
  const results = file && Array.isArray(file.assertionResults) ? file.assertionResults : [];
  for (const test of results) {
    if (++count > 5000) process.exit(0);
    const titles = Array.isArray(test.ancestorTitles) ? test.ancestorTitles.map(String) : [];
    const name = [...titles, String(test.title)].join(" > ").slice(0, 1000);
    const row = [String(file.name).slice(0, 1000), name, String(test.status).slice(0, 20)];
    fs.writeSync(1, key + " t " + JSON.stringify(row) + "\n");
  }
}
