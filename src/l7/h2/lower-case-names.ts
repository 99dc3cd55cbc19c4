// HTTP/2 field names are lower case (RFC 9113 §8.2.1). Headers that reach an HTTP/2 peer from a route's header edits
// or a filter may carry capitals; the list is copied with lower-cased names only when one does.

/** `fields` ([name, value, ...]) itself when every name is lower case, else a copy with lower-cased names. */
export function lowerCaseNames(fields: readonly string[]): readonly string[] {
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string;
    for (let j = 0; j < name.length; j++) {
      const c = name.charCodeAt(j);
      if (c >= 65 && c <= 90) return lowered(fields);
    }
  }
  return fields;
}

function lowered(fields: readonly string[]): string[] {
  const out = new Array<string>(fields.length);
  for (let i = 0; i < fields.length; i += 2) {
    out[i] = (fields[i] as string).toLowerCase();
    out[i + 1] = fields[i + 1] as string;
  }
  return out;
}
