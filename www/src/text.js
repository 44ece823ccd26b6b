// Text helpers: diagnostic positions into editor offsets, and what to say about input that
// is not a policy.

/// The editor offset (UTF-16) of a 1-based line and column, columns counted in characters
/// (Unicode scalar values) as the compiler counts them.
export function posOf(doc, line, column) {
  if (line > doc.lines) return doc.length;
  const l = doc.line(Math.max(1, line));
  const text = l.text;
  let i = 0;
  let n = 1;
  while (n < column && i < text.length) {
    i += text.codePointAt(i) > 0xffff ? 2 : 1;
    n += 1;
  }
  return Math.min(l.from + i + Math.max(0, column - n), doc.length);
}

const BINARY = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F\uFFFD]/;
const LARGE = 256 * 1024;

function where(source, index) {
  const before = source.slice(0, index);
  const line = before.split("\n").length;
  const column = [...before.slice(before.lastIndexOf("\n") + 1)].length + 1;
  return `line ${line}, column ${column}`;
}

function size(n) {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.round(n / 1024)} KB`;
}

/// What else the text is, when it is plainly not TOML: "json", "yaml", "headers" or null.
export function otherFormat(source) {
  const text = source.trim();
  if (/^HTTP\/[0-9.]+ \d{3}/.test(text) || (text.startsWith("{") && /"log"\s*:\s*\{[\s\S]*"entries"/.test(text.slice(0, 4096)))) return "headers";
  if (/^[{[]/.test(text)) {
    try {
      JSON.parse(text);
      return "json";
    } catch {}
  }
  const lines = text.split("\n").filter((l) => l.trim() && !l.trim().startsWith("#"));
  const yamlish = lines.filter((l) => /^\s*(- )?["']?[A-Za-z_][\w.-]*["']?:(\s|$)/.test(l)).length;
  const tomlish = lines.filter((l) => /^\s*(\[.*\]|["']?[\w.-]+["']?\s*=)/.test(l)).length;
  if (lines.length && yamlish >= Math.max(2, lines.length / 2) && tomlish === 0) return "yaml";
  return null;
}

const OTHER = {
  json: "This is JSON, not a policy: a policy is TOML — `key = value` lines under `[table]` headers (docs/policy.md; `edgeguard schema` gives the JSON Schema of the same structure).",
  yaml: "This looks like YAML (`key: value`), not a policy: a policy is TOML — `key = value` lines under `[table]` headers (docs/policy.md).",
  headers: "These are HTTP response headers, not a policy: paste them into “Start from a live site's headers” to grade them and get a policy.",
};

/// A sentence about input that is not what a policy looks like (binary data, JSON, YAML,
/// response headers, a huge paste), or `null`. `ms`: the compile time once known.
export function describeInput(source, ms) {
  const parts = [];
  const other = otherFormat(source);
  if (other) parts.push(OTHER[other]);
  const m = BINARY.exec(source);
  if (m) {
    const cp = m[0].codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
    const what = m[0] === "\uFFFD" ? "bytes that are not UTF-8 (U+FFFD)" : `a control character (U+${cp})`;
    parts.push(`This is binary data, not a policy: ${what} at ${where(source, m.index)}. A policy is TOML text in UTF-8 — paste the file's contents, not the file.`);
  }
  const bytes = source.length; // UTF-16 units; close enough to say how big it is
  if (bytes > LARGE) {
    const took = ms === null || ms === undefined ? "compiling in the background…" : `compiled in ${Math.round(ms)} ms, off the main thread`;
    parts.push(`This policy is ${size(bytes)}; real policies are a few KB (the compiler's limit is 4 MB). ${took}.`);
  }
  return parts.length ? parts.join(" ") : null;
}
