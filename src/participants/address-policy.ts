/**
 * Which IP addresses the operator agrees to dial for a participant.
 *
 * An address a tenant can influence — a raw `endpoint.address` (when the
 * operator allows them), whatever its hostname resolves to, or an address in
 * an EndpointSlice someone wrote by hand — must not let the tenant reach what
 * only the operator can: loopback (its own metrics and health ports, a node
 * agent), the cloud metadata service, link-local ranges. Those are refused
 * unless the operator is told otherwise: `--allow-address-cidr` opens a range
 * (a test cluster on loopback), and the operator's own ports stay refused even
 * then unless one is listed exactly with `--allow-address HOST:PORT`.
 */
import { isIP } from 'node:net';

export interface AddressRules {
  /** Ranges opened explicitly (--allow-address-cidr). */
  allowCidrs: Cidr[];
  /** Exact host:port pairs opened explicitly (--allow-address). */
  allowExact: Set<string>;
  /** The operator's own listening ports (metrics, health): refused on any local address. */
  ownPorts: Set<number>;
}

export interface Cidr {
  text: string;
  family: 4 | 6;
  bits: bigint;
  prefix: number;
}

export const defaultAddressRules = (): AddressRules => ({ allowCidrs: [], allowExact: new Set(), ownPorts: new Set() });

/** Refused unless opened explicitly. */
const DENIED: Cidr[] = [
  '127.0.0.0/8', // loopback
  '0.0.0.0/8', // "this host"
  '169.254.0.0/16', // link-local, including the metadata service 169.254.169.254
  '::1/128',
  '::/128',
  'fe80::/10',
  'fd00:ec2::254/128', // AWS's IPv6 metadata service
].map(parseCidr);

/** Loopback and unspecified: where the operator's own ports listen. */
const LOCAL: Cidr[] = ['127.0.0.0/8', '0.0.0.0/32', '::1/128', '::/128'].map(parseCidr);

export function parseCidr(text: string): Cidr {
  const [addr, len] = text.split('/');
  const family = isIP(addr ?? '');
  if (family !== 4 && family !== 6) throw new Error(`"${text}" is not a CIDR (want e.g. 10.0.0.0/8 or fd00::/8)`);
  const width = family === 4 ? 32 : 128;
  const prefix = len === undefined ? width : Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > width) throw new Error(`"${text}": prefix length must be 0..${width}`);
  return { text, family, bits: toBits(addr!, family), prefix };
}

/** An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is judged as the IPv4 address it is. */
function normalize(ip: string): { ip: string; family: 4 | 6 } | undefined {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (m) return { ip: m[1]!, family: 4 };
  const f = isIP(ip);
  return f === 4 || f === 6 ? { ip, family: f } : undefined;
}

function toBits(ip: string, family: 4 | 6): bigint {
  if (family === 4) return ip.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
  let parts = ip.split('::');
  const head = parts[0] ? parts[0].split(':') : [];
  const tail = parts.length > 1 && parts[1] ? parts[1].split(':') : [];
  // A dotted IPv4 tail (::ffff:1.2.3.4 handled above; other embeddings) becomes two groups.
  const expand = (g: string[]) => g.flatMap((x) => (x.includes('.') ? ((n) => [(n >> 16n).toString(16), (n & 0xffffn).toString(16)])(toBits(x, 4)) : [x]));
  const h = expand(head);
  const t = expand(tail);
  parts = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return parts.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}

function inCidr(bits: bigint, family: 4 | 6, c: Cidr): boolean {
  if (c.family !== family) return false;
  const width = family === 4 ? 32 : 128;
  const shift = BigInt(width - c.prefix);
  return bits >> shift === c.bits >> shift;
}

/** Why `ip:port` may not be dialled, or undefined when it may. `ip` must be an IP literal. */
export function addressRefusal(ip: string, port: number, rules: AddressRules): string | undefined {
  const n = normalize(ip);
  if (!n) return `"${ip}" is not an IP address`;
  const hostPort = n.family === 6 ? `[${n.ip}]:${port}` : `${n.ip}:${port}`;
  if (rules.allowExact.has(hostPort)) return undefined;
  // Parsed once: every call of every branch asks, against a dozen ranges.
  const bits = toBits(n.ip, n.family);
  const inside = (c: Cidr) => inCidr(bits, n.family, c);
  if (rules.ownPorts.has(port) && LOCAL.some(inside)) {
    return `${hostPort} is the operator's own port (list it with --allow-address to allow it)`;
  }
  const denied = DENIED.find(inside);
  if (denied && !rules.allowCidrs.some(inside)) {
    return `${hostPort} is in ${denied.text}, which kubetx refuses (loopback, link-local or metadata addresses; open a range with --allow-address-cidr)`;
  }
  return undefined;
}

/** Splits "host:port" / "[v6]:port". */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(address) ?? /^([^:]+):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { host: m[1]!, port } : undefined;
}
