/**
 * How the Node adapter recognises clerk-sync's own Fetch handler and runs the implementation on
 * its own `Incoming` instead of going through a Fetch `Request` and `Response` (web streams cost
 * more CPU than verifying the signature).
 *
 * The key is a module-local symbol, not `Symbol.for`: a handler made by another copy of this
 * package (another version, with perhaps another `Incoming` contract) is then just a Fetch handler
 * to this adapter, which stays correct. It is non-enumerable, so spreading or logging the handler
 * does not show it, and a wrapper (`(request) => handler(request)`) does not carry it: wrapping
 * always means the generic path.
 */
import type { Answer, Incoming } from "../WebhookHandler.ts"

const runIncomingKey: unique symbol = Symbol("@clerk-sync/adapter-http/runIncoming")

/** Runs the whole handler (checks, ingest, log line) on a request; never rejects. */
export type IncomingRunner = (incoming: Incoming) => Promise<Answer>

export const attachIncomingRunner = <F extends object>(handler: F, run: IncomingRunner): F =>
  Object.defineProperty(handler, runIncomingKey, { value: run, enumerable: false, writable: false, configurable: false })

export const incomingRunnerOf = (handler: unknown): IncomingRunner | undefined => {
  if (typeof handler !== "function") return undefined
  const run: unknown = (handler as { readonly [runIncomingKey]?: unknown })[runIncomingKey]
  return typeof run === "function" ? (run as IncomingRunner) : undefined
}
