/**
 * What to do with a request body the handler did not read to its end (an early 400/401/403/405/
 * 429/503, or a 413), shared by the Node adapter and the Effect route.
 *
 * HTTP/1.1 frames the next request on a connection after the end of this one's body, so a server
 * that stops reading has two honest choices, and the client must learn which one it made from the
 * answer itself:
 *
 * - The rest is short: read and discard it BEFORE answering, then answer normally. The connection
 *   stays usable, and a keep-alive agent (Svix, undici, Node's) sends its next request on it.
 * - The rest is long, declared long, or unknown past the bound: answer with `Connection: close`
 *   and stop reading. The client then knows not to reuse the connection, and stops uploading.
 *
 * Discarding first, rather than answering first, is what lets a short chunked body (no declared
 * length) keep the connection: it is decided on bytes seen, not guessed. A client that sent
 * `Expect: 100-continue` may be holding its body back for the answer, so it is never waited for.
 *
 * Closing is where answers get lost: closing a socket with unread bytes in the kernel's receive
 * buffer sends a RST, which makes the client's kernel drop whatever of the answer it had not yet
 * handed to the client (or the server's kernel drop what it had not yet sent). So the close is
 * graceful: a FIN after the answer, then a grace period in which nothing more is read (memory and
 * bandwidth stay bounded, the client's upload stalls on a full window), then the socket is
 * destroyed. Clients that read the answer close first (curl, undici and Node's client close when
 * the server's FIN arrives), and that ends it early.
 */

/** Default bound on discarding an unread body before answering. */
export const defaultDiscardLimitBytes = 256 * 1024

/** How long a closing connection's answer has to reach the client before the socket is destroyed. */
export const closeGraceMs = 2_000

const DIGITS = /^\d+$/

/**
 * Whether waiting for the rest of the body is pointless: it was declared longer than `limit`
 * beyond what was read, or the client may be waiting for `100 Continue` before sending it.
 */
export const skipsDiscard = (
  headers: { readonly get: (name: string) => string | null | undefined },
  bytesRead: number,
  limit: number
): boolean => {
  if (headers.get("expect") != null) return true
  const declared = headers.get("content-length")
  return declared != null && DIGITS.test(declared) && Number(declared) - bytesRead > limit
}
