import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { ChatError } from '../../shared/protocol/index.ts';

/**
 * Where outgoing webhook and push requests may go. A user chooses those URLs, so without a guard
 * they would make the server call its own loopback, the cloud metadata service
 * (169.254.169.254) or the private network behind it (SSRF). Refused: loopback, private,
 * link-local, carrier-grade NAT, multicast and reserved ranges, unless `allowNetworks` names them.
 * The check runs on every address a name resolves to when the URL is registered, and again on the
 * address actually connected to (outbound-http.ts), so a name that later resolves elsewhere (DNS
 * rebinding) is refused too.
 */
export class AddressGuard {
  readonly #blocked = new BlockList();
  readonly #allowed = new BlockList();

  constructor(allowNetworks: readonly string[]) {
    for (const [net, prefix] of [
      ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
      ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
      ['224.0.0.0', 4], ['240.0.0.0', 4],
    ] as const) this.#blocked.addSubnet(net, prefix, 'ipv4');
    for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96], ['2001:db8::', 32]] as const) {
      this.#blocked.addSubnet(net, prefix, 'ipv6');
    }
    for (const cidr of allowNetworks) {
      const [net, bits] = cidr.split('/') as [string, string];
      const family = isIP(net) === 6 ? 'ipv6' : 'ipv4';
      this.#allowed.addSubnet(net, Number(bits), family);
    }
  }

  /** Whether a connection to this IP address may be made. */
  allows(ip: string): boolean {
    // an IPv4-mapped IPv6 address reaches the IPv4 address it carries
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
    const addr = mapped ?? ip;
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (this.#allowed.check(addr, family)) return true;
    return !this.#blocked.check(addr, family);
  }

  /**
   * Checks a URL a user registers: http or https, and every address its host names is allowed.
   * Throws ChatError('bad_request') saying why not.
   */
  async checkUrl(raw: string, what: string): Promise<URL> {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ChatError('bad_request', `${what} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ChatError('bad_request', `${what} must be http or https, not ${url.protocol.slice(0, -1)}`);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let addresses: string[];
    if (isIP(host) !== 0) {
      addresses = [host];
    } else {
      try {
        addresses = (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
      } catch {
        throw new ChatError('bad_request', `${what}: the host ${host} does not resolve`);
      }
    }
    const refused = addresses.find((a) => !this.allows(a));
    if (refused !== undefined) {
      throw new ChatError('bad_request', `${what} points at ${refused}, a loopback, private, link-local or reserved address (NOTIFY_ALLOW_NETWORKS allows such networks)`);
    }
    return url;
  }
}
