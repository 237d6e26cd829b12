/**
 * Test utilities for clerk-sync stores and publishers: the store contract suite, generators of
 * Clerk histories and deliveries, and the canonical state two stores must agree on.
 *
 * Requires `vitest` and `fast-check` (dev dependencies of your adapter).
 *
 * @since 0.1.0
 */
export * as Canonical from "./Canonical.ts"
export * as Histories from "./Histories.ts"
export { inOrderState, syncStoreContract, type ContractOptions } from "./StoreContract.ts"
export { NotificationFactory, publisherContract, type PublisherContractOptions, type PublisherHarness, type PublisherSubscriber } from "./PublisherContract.ts"
