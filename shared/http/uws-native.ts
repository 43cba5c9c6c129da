import uWS from 'uWebSockets.js';

/**
 * The uWebSockets.js package falls back to a slow JavaScript shim, without a word, when its native
 * binding does not load (wrong Node ABI, glibc too old). A chat server on the shim is many times
 * slower than it claims, so start refuses to run on it.
 */
export function assertNativeUws(): void {
  if (typeof (uWS as { SSLApp?: unknown }).SSLApp !== 'function') {
    throw new Error(
      `uWebSockets.js native binding did not load for Node ${process.versions.node} (ABI ${process.versions.modules}, ` +
      `${process.platform}-${process.arch}); refusing to run on the slow fallback`,
    );
  }
}
