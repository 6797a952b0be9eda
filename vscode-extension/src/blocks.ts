/**
 * Which lines a palette command works on when nothing is selected: the function or class around the cursor
 * (by indentation, as Python defines blocks), else the cursor's line. Pure, so it is tested without an editor.
 */

export interface LineRange {
  start: number; // 0-based, inclusive
  end: number; // 0-based, exclusive
}

const HEADER = /^(\s*)(async\s+def|def|class)\s/;

function indentOf(line: string): number {
  return line.length - line.trimStart().length;
}

function isBlank(line: string): boolean {
  return line.trim() === "" || line.trim().startsWith("#");
}

/** The innermost def/class containing `line`, with its decorators; the line itself when there is none. */
export function enclosingBlock(lines: readonly string[], line: number): LineRange {
  for (let header = Math.min(line, lines.length - 1); header >= 0; header--) {
    const match = HEADER.exec(lines[header]);
    if (!match) {
      continue;
    }
    const indent = match[1].length;
    let end = header + 1;
    let last = header + 1;
    while (end < lines.length && (isBlank(lines[end]) || indentOf(lines[end]) > indent)) {
      end++;
      if (!isBlank(lines[end - 1])) {
        last = end;
      }
    }
    if (line >= last && line > header) {
      continue; // the cursor is below this block: it encloses nothing here, look further up
    }
    let start = header;
    while (start > 0 && /^\s*@/.test(lines[start - 1]) && indentOf(lines[start - 1]) === indent) {
      start--;
    }
    return { start, end: last };
  }
  return { start: line, end: line + 1 };
}
