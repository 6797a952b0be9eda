// Jest reporter for ensemble/verify/js_project.py (given with --reporters, instead of --json: Jest's own JSON
// report cannot be written when a failure holds a BigInt, and then no test has a verdict). One line per test,
// appended to $CC_REPORT as it finishes: JSON [file, "outer > inner", status]. Failure messages (text the code
// under test controls) are left out.
"use strict";
const fs = require("fs");

const append = fs.appendFileSync;
const output = String(process.env.CC_REPORT || "");

class CodeConductorReporter {
  onTestResult(test, result) {
    if (!output) return;
    const file = String(result.testFilePath).slice(0, 1000);
    const rows = [];
    for (const one of Array.isArray(result.testResults) ? result.testResults : []) {
      const titles = Array.isArray(one.ancestorTitles) ? one.ancestorTitles.map(String) : [];
      const name = [...titles, String(one.title)].join(" > ").slice(0, 1000);
      rows.push(JSON.stringify([file, name, String(one.status).slice(0, 20)]) + "\n");
    }
    if (rows.length) append(output, rows.join(""));
  }

  getLastError() {
    return undefined;
  }
}

module.exports = CodeConductorReporter;
