/**
 * Strict UTF-8 decoding: invalid bytes are an error (never replaced by U+FFFD) and a byte-order mark
 * is kept, so a body's text and its bytes correspond one to one and the signature covers exactly
 * the bytes received.
 */
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

export const decodeUtf8 = (bytes: Uint8Array): string | undefined => {
  try {
    return decoder.decode(bytes)
  } catch {
    return undefined
  }
}

/** The chunks of a body as one array (`size` bytes in all), without copying a single chunk. */
export const concatBytes = (chunks: ReadonlyArray<Uint8Array>, size: number): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!
  const bytes = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return bytes
}
