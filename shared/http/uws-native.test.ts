import t from 'tap';
import uWS from 'uWebSockets.js';
import { assertNativeUws } from './uws-native.ts';

t.test('uws - the native binding is loaded here, so start does not refuse', async (t) => {
  t.equal(typeof (uWS as { SSLApp?: unknown }).SSLApp, 'function', 'native uWS (the JS fallback has no SSLApp)');
  t.doesNotThrow(() => assertNativeUws());
});
