/**
 * Values on their way into Postgres: identifiers checked, JSON made acceptable to `jsonb`, text
 * made acceptable to `text`.
 *
 * PostgreSQL cannot store U+0000 in `text` or `jsonb`, and `jsonb` rejects the escaped lone
 * surrogates that `JSON.stringify` writes for malformed UTF-16. Both are replaced by U+FFFD, so an
 * authentic but odd payload is stored (and answered 200) instead of failing forever with 503.
 */

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,47}$/

/** Validates a schema name: lower-case letters, digits and `_`, at most 48 characters. */
export const schemaName = (name: string): string => {
  if (!IDENTIFIER.test(name)) {
    throw new Error(`Invalid schema name ${JSON.stringify(name)}: use lower-case letters, digits and "_" (at most 48), starting with a letter or "_".`)
  }
  return name
}

// An escape preceded by an even number of backslashes is a real escape (not an escaped backslash
// followed by the letters "u0000").
const BAD_ESCAPE = /(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/gi

/** `JSON.stringify`, with what `jsonb` refuses replaced by U+FFFD. */
export const toJson = (value: unknown): string => {
  const json = JSON.stringify(value) ?? "null"
  return json.includes("\\u0000") || /\\ud[89a-f]/i.test(json) ? json.replace(BAD_ESCAPE, "$1\\ufffd") : json
}

/** A string `text` accepts. */
export const toText = (value: string): string => (value.includes("\u0000") ? value.replaceAll("\u0000", "\ufffd") : value)
