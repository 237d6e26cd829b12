/**
 * Field-encryption benchmark: ops/s for encrypting and decrypting 1 KiB values through the
 * envelope (sync surface and Effect service), against a plain AES-256-GCM baseline measured in the
 * same run (these machines are noisy: read the ratios, not the absolute figures), plus the
 * one-time key derivation.
 *
 * Run: `npx tsx bench/encryption.ts` (from the repo root, so Node 24 is used).
 */
import { createEncryption, Encryption, generateKey } from "@clerk-sync/encryption"
import { Effect } from "effect"
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from "node:crypto"
import { pathToFileURL } from "node:url"

export interface BenchRow {
  readonly name: string
  readonly value: number
  readonly unit: "ops/s" | "ms"
  /** ops/s divided by the same-run baseline's ops/s. */
  readonly vsBaseline?: number | undefined
}

export interface BenchOptions {
  /** Time per measurement round, in milliseconds. */
  readonly roundMs?: number
  /** Rounds per case; the median is reported. Cases are interleaved round by round. */
  readonly rounds?: number
}

const CONTEXT = "org_2x9Yb4uQ:seller_accounts.credentials"

const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/** Runs `op` in batches for about `ms` milliseconds and returns ops/s. */
const measure = (op: (i: number) => unknown, ms: number, batch: number): number => {
  let ops = 0
  const start = performance.now()
  let now = start
  while (now - start < ms) {
    for (let i = 0; i < batch; i++) op(i)
    ops += batch
    now = performance.now()
  }
  return (ops * 1000) / (now - start)
}

/** Runs the benchmark and returns its rows (also used by `bench/run.ts`). */
export const runEncryptionBench = async (options: BenchOptions = {}): Promise<ReadonlyArray<BenchRow>> => {
  const roundMs = options.roundMs ?? 400
  const rounds = options.rounds ?? 5

  const secret = generateKey()
  const deriveStart = performance.now()
  const encryption = await createEncryption({ key: secret })
  const deriveMs = performance.now() - deriveStart
  const service = Encryption.fromKeyRing(encryption.keyRing)

  const value = randomBytes(768).toString("base64").slice(0, 1024) // 1 KiB of text
  // A KeyObject, as the envelope uses: a raw Buffer key costs a conversion on every call.
  const rawKey = createSecretKey(randomBytes(32))
  const baselineEncrypt = () => {
    const iv = randomBytes(12)
    const cipher = createCipheriv("aes-256-gcm", rawKey, iv)
    const body = Buffer.concat([cipher.update(value, "utf8"), cipher.final()])
    return [iv, body, cipher.getAuthTag()] as const
  }
  const [iv, body, tag] = baselineEncrypt()
  const baselineDecrypt = () => {
    const decipher = createDecipheriv("aes-256-gcm", rawKey, iv)
    decipher.setAuthTag(tag)
    return Buffer.concat([decipher.update(body), decipher.final()]).toString("utf8")
  }
  const ciphertext = encryption.encrypt(value, CONTEXT)
  if (encryption.decrypt(ciphertext, CONTEXT) !== value || baselineDecrypt() !== value) throw new Error("bench self-check failed")

  const BATCH = 200
  const effectEncrypt = Effect.gen(function*() {
    for (let i = 0; i < BATCH; i++) yield* service.encrypt(value, CONTEXT)
  })
  const effectDecrypt = Effect.gen(function*() {
    for (let i = 0; i < BATCH; i++) yield* service.decrypt(ciphertext, CONTEXT)
  })

  const cases = {
    "baseline: node:crypto AES-256-GCM encrypt (no envelope)": () => measure(baselineEncrypt, roundMs, BATCH),
    "baseline: node:crypto AES-256-GCM decrypt (no envelope)": () => measure(baselineDecrypt, roundMs, BATCH),
    "encrypt 1 KiB (envelope, sync)": () => measure(() => encryption.encrypt(value, CONTEXT), roundMs, BATCH),
    "decrypt 1 KiB (envelope, sync)": () => measure(() => encryption.decrypt(ciphertext, CONTEXT), roundMs, BATCH),
    "encrypt 1 KiB (Effect service)": () => BATCH * measure(() => Effect.runSync(effectEncrypt), roundMs, 1),
    "decrypt 1 KiB (Effect service)": () => BATCH * measure(() => Effect.runSync(effectDecrypt), roundMs, 1)
  } as const
  type Case = keyof typeof cases
  const names = Object.keys(cases) as Array<Case>

  for (const name of names) cases[name]() // warm-up
  const samples = new Map<Case, Array<number>>(names.map((name) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (const name of names) samples.get(name)!.push(cases[name]())
  }
  const opsPerSec = (name: Case) => median(samples.get(name)!)
  const encryptBase = opsPerSec("baseline: node:crypto AES-256-GCM encrypt (no envelope)")
  const decryptBase = opsPerSec("baseline: node:crypto AES-256-GCM decrypt (no envelope)")

  return [
    { name: "key derivation (PBKDF2-SHA256 600k + HKDF, once per key)", value: deriveMs, unit: "ms" },
    ...names.map((name): BenchRow => ({
      name,
      value: opsPerSec(name),
      unit: "ops/s",
      vsBaseline: opsPerSec(name) / (name.includes("decrypt") ? decryptBase : encryptBase)
    }))
  ]
}

const format = (rows: ReadonlyArray<BenchRow>): string =>
  rows.map((row) => {
    const figure = row.unit === "ms" ? `${row.value.toFixed(0)} ms` : `${Math.round(row.value).toLocaleString("en-US")} ops/s`
    const ratio = row.vsBaseline === undefined ? "" : `  (${row.vsBaseline.toFixed(2)}× baseline)`
    return `${row.name.padEnd(58)} ${figure.padStart(16)}${ratio}`
  }).join("\n")

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(`encryption bench, Node ${process.version}, 1 KiB values, median of interleaved rounds`)
  console.log(format(await runEncryptionBench()))
}
