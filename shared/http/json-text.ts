/**
 * A handler's `data` already serialized: the server writes `text` into the `{success, data}`
 * envelope as is, so data kept as JSON (history messages) is not parsed and serialized again per
 * request. `text` must be exactly what `JSON.stringify` gives for a value of type T; with
 * response checks on (tests), it is parsed and checked against the route's response schema.
 */
export class JsonText<T = unknown> {
  /** Carries T for the route's typing only. */
  declare readonly data?: T;

  constructor(readonly text: string) {}
}
