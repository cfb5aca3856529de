/**
 * IP address text: parsing to bytes and back, canonical forms (IPv4-mapped IPv6 as IPv4, RFC 5952
 * for IPv6). Pure; used by Conn, the fetch thread's connect and the socket table.
 */

/** IPv4 "a.b.c.d" → 4 bytes; IPv6 text → 16 bytes; IPv4-mapped IPv6 → 4 bytes; else null. */
export function parseIp(text: string): Uint8Array | null {
  const s = text.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4) {
    const b = v4.slice(1).map(Number);
    return b.every((x) => x <= 255) ? Uint8Array.from(b) : null;
  }
  if (!s.includes(":")) return null;
  let tail: number[] = [];
  let head = s;
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const v4b = parseIp(dotted[2]);
    if (!v4b) return null;
    head = dotted[1] + "0:0";
    tail = [...v4b];
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const left = groups(halves[0]);
  const right = halves.length === 2 ? groups(halves[1]) : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return null;
  const all = [...left, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...right];
  if (all.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return null;
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 255;
  });
  if (tail.length) out.set(tail, 12);
  const mapped = out.subarray(0, 10).every((x) => x === 0) && out[10] === 255 && out[11] === 255;
  return mapped ? out.slice(12) : out;
}

/** 4 or 16 address bytes → text (RFC 5952 for IPv6; IPv4-mapped IPv6 as plain IPv4). */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join(".");
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 255 && b[11] === 255) return Array.from(b.subarray(12)).join(".");
  const g = Array.from({ length: 8 }, (_, i) => (b[2 * i] << 8) | b[2 * i + 1]);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  return best < 0 ? hex(g) : `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** The canonical text of an IP address (as formatIp gives it), or null when `text` is not one. */
export function canonicalIp(text: string): string | null {
  const b = parseIp(text);
  return b ? formatIp(b) : null;
}
