/**
 * Where the client keeps its last `seq`, so that a reload or an app restart resumes instead of
 * starting over. Anything with `getItem`/`setItem` fits: `window.localStorage`, React Native's
 * `AsyncStorage`, Expo's `SecureStore` (wrapped), or your own.
 *
 * @since 0.1.0
 */

/** @category models */
export interface SeqStorage {
  readonly getItem: (key: string) => string | null | Promise<string | null>
  readonly setItem: (key: string, value: string) => void | Promise<void>
}

/** A storage in memory (lost on reload). @category constructors */
export const memoryStorage = (): SeqStorage => {
  const items = new Map<string, string>()
  return { getItem: (key) => items.get(key) ?? null, setItem: (key, value) => void items.set(key, value) }
}

/** `localStorage` when the platform has one (browsers), else memory. @category constructors */
export const defaultStorage = (): SeqStorage => {
  try {
    const ls = (globalThis as { localStorage?: SeqStorage }).localStorage
    if (ls && typeof ls.getItem === "function") return ls
  } catch {
    // access denied (privacy mode, sandboxed iframe)
  }
  return memoryStorage()
}
