// An HTTP/1.x head (start line, fields, end) serialized straight into a Buffer: the size is summed first, then every
// piece is copied in as latin1 (each char's low byte, as Buffer's 'latin1' encoding does), so that no intermediate
// string is built per field (a `+=` per field makes a cons string per step, flattened again by the write).
// Callers check values for CR / LF before (a field must never split the head).

/** Write `s` at `off` as latin1; returns the offset after it. */
export function latin1Into(buf: Buffer, off: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) buf[off + i] = s.charCodeAt(i);
  return off + n;
}

/** Bytes of `fields` ([name, value, ...]) as "name: value\r\n" lines. */
export function fieldsSize(fields: readonly string[]): number {
  let size = 0;
  for (let i = 0; i < fields.length; i += 2) size += (fields[i] as string).length + (fields[i + 1] as string).length + 4;
  return size;
}

/** Write `line`, the `fields` lines and `tail` at `off`; returns the offset after them. */
export function writeHead(buf: Buffer, off: number, line: string, fields: readonly string[], tail: string): number {
  let o = latin1Into(buf, off, line);
  for (let i = 0; i < fields.length; i += 2) {
    o = latin1Into(buf, o, fields[i] as string);
    buf[o++] = 58; // ':'
    buf[o++] = 32;
    o = latin1Into(buf, o, fields[i + 1] as string);
    buf[o++] = 13;
    buf[o++] = 10;
  }
  return latin1Into(buf, o, tail);
}
