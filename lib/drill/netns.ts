/**
 * The kernel-level cut: master A runs in a network namespace of its own, reached through a veth
 * pair with a private /30 (10.254.x.y/30) that only the drill uses. Cutting sets the link inside
 * the namespace down: packets to A vanish, nobody sees a FIN or RST. Needs root and iproute2.
 *
 * Names are unique per run (kvr-<pid>-<n>, veth kvr<pid>h<n>/kvr<pid>n<n>); namespaces and veths
 * left behind by a drill process that no longer exists are swept before a new one is made.
 */
import { DrillError } from "./errors.ts";
import { pidAlive, runTool } from "./sys.ts";

export interface Netns {
  /** Namespace name. */
  readonly name: string;
  /** Host-side veth and its address. */
  readonly hostIf: string;
  readonly hostAddr: string;
  /** Namespace-side veth and its address (A binds here). */
  readonly nsIf: string;
  readonly nsAddr: string;
  /** Prefix for a command run inside the namespace. */
  readonly wrap: string[];
  /** Cut: the namespace's link goes down. */
  cut(): Promise<void>;
  /** Undo the cut: the link comes back up. */
  restore(): Promise<void>;
  /** Delete the namespace and the veth pair (idempotent). */
  remove(): Promise<void>;
}

async function ip(args: string[], what: string, setup = false): Promise<string> {
  const r = await runTool(["ip", ...args]);
  if (r.code !== 0) {
    const err = r.stderr.trim();
    // Setting up as root without CAP_SYS_ADMIN / CAP_NET_ADMIN (a container, setpriv): say what is missing.
    const hint = setup && /Operation not permitted/.test(err) ? " — --cut netns needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN; use --cut stall here" : "";
    throw new DrillError(`${what} failed (ip ${args.join(" ")}): ${err || `exit ${r.code}`}${hint}`);
  }
  return r.stdout;
}

/** Throws DrillError (exit 4) unless the drill can create namespaces: root and iproute2. */
export async function checkNetnsSupport(): Promise<void> {
  if (process.platform !== "linux") throw new DrillError("--cut netns needs Linux network namespaces; use --cut stall on this system");
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new DrillError("--cut netns needs root (it creates a network namespace and a veth pair); run as root or use --cut stall");
  }
  const r = await runTool(["ip", "-V"]);
  if (r.code !== 0) throw new DrillError("--cut netns needs iproute2 (the 'ip' command was not found); install iproute2 or use --cut stall");
}

const NS_RE = /^kvr-(\d+)-\d+$/;
const IF_RE = /^kvr(\d+)[hn]\d+$/;

/** Remove namespaces and veths of drill processes that no longer exist. */
export async function sweepStale(log: (m: string) => void): Promise<void> {
  const list = await runTool(["ip", "netns", "list"]);
  for (const line of list.stdout.split("\n")) {
    const name = line.trim().split(/\s+/)[0] ?? "";
    const m = NS_RE.exec(name);
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) {
      log(`removing namespace ${name} left behind by an earlier drill (process ${m[1]} is gone)`);
      await runTool(["ip", "netns", "del", name]);
    }
  }
  const links = await runTool(["ip", "-o", "link", "show"]);
  for (const line of links.stdout.split("\n")) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? "";
    const m = IF_RE.exec(name);
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) {
      log(`removing veth ${name} left behind by an earlier drill (process ${m[1]} is gone)`);
      await runTool(["ip", "link", "del", name]);
    }
  }
}

/** Every IPv4 address and route prefix in use on this host, as [network, prefixLength]. */
async function usedPrefixes(): Promise<Array<[number, number]>> {
  const out: Array<[number, number]> = [];
  const toInt = (a: string) => a.split(".").reduce((x, o) => x * 256 + Number(o), 0);
  const add = (cidr: string) => {
    const m = /^(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?$/.exec(cidr);
    if (m) out.push([toInt(m[1]), m[2] === undefined ? 32 : Number(m[2])]);
  };
  const addrs = await runTool(["ip", "-4", "-o", "addr", "show"]);
  for (const m of addrs.stdout.matchAll(/inet (\S+)/g)) add(m[1].replace(/\/\d+$/, "")); // the address itself
  const routes = await runTool(["ip", "-4", "route", "show", "table", "all"]);
  for (const line of routes.stdout.split("\n")) {
    const f = line.trim().split(/\s+/);
    const dst = ["local", "broadcast", "unicast", "blackhole", "unreachable", "prohibit"].includes(f[0]) ? f[1] : f[0];
    if (dst && dst !== "default") add(dst);
  }
  return out;
}

/** A /30 inside 10.254.0.0/16 that overlaps no address or route more specific than /16. */
async function pickSubnet(seed: number): Promise<string> {
  const used = await usedPrefixes();
  const base = (10 << 24) + (254 << 16);
  for (let k = 0; k < 64; k++) {
    const idx = (seed + k * 7919) % 16384;
    const net = base + idx * 4;
    const clash = used.some(([a, len]) => {
      if (len < 16) return false; // a broad route (default, a /8 VPN) is shadowed by our connected /30
      const mask = len >= 30 ? 0xfffffffc : (0xffffffff << (32 - len)) >>> 0;
      return ((a & mask) >>> 0) === ((net & mask) >>> 0);
    });
    if (!clash) return [net >>> 24, (net >>> 16) & 255, (net >>> 8) & 255, net & 255].join(".");
  }
  throw new DrillError("no free /30 in 10.254.0.0/16 for the drill's namespace: every candidate overlaps an address or route of this host");
}

/** Create a namespace and veth pair for run `n`; the caller registers remove() for cleanup. */
export async function createNetns(n: number, log: (m: string) => void): Promise<Netns> {
  await sweepStale(log);
  const pid = process.pid;
  const k = n % 1000;
  const name = `kvr-${pid}-${k}`;
  const hostIf = `kvr${pid}h${k}`;
  const nsIf = `kvr${pid}n${k}`;
  const net = await pickSubnet(pid * 16 + k);
  const o = net.split(".").map(Number);
  const hostAddr = `${o[0]}.${o[1]}.${o[2]}.${o[3] + 1}`;
  const nsAddr = `${o[0]}.${o[1]}.${o[2]}.${o[3] + 2}`;
  let created = false;
  const remove = async () => {
    if (!created) return;
    created = false;
    await runTool(["ip", "netns", "del", name]);
    // Deleting the namespace deletes its veth end and with it the pair; make sure.
    const still = await runTool(["ip", "link", "show", hostIf]);
    if (still.code === 0) await runTool(["ip", "link", "del", hostIf]);
  };
  try {
    await ip(["netns", "add", name], "creating the network namespace", true);
    created = true;
    await ip(["link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", name], "creating the veth pair", true);
    await ip(["addr", "add", `${hostAddr}/30`, "dev", hostIf], "addressing the host-side veth");
    await ip(["link", "set", hostIf, "up"], "bringing the host-side veth up");
    await ip(["-n", name, "addr", "add", `${nsAddr}/30`, "dev", nsIf], "addressing the namespace-side veth");
    await ip(["-n", name, "link", "set", nsIf, "up"], "bringing the namespace-side veth up");
    await ip(["-n", name, "link", "set", "lo", "up"], "bringing the namespace's loopback up");
  } catch (e) {
    await remove();
    throw e;
  }
  return {
    name,
    hostIf,
    hostAddr,
    nsIf,
    nsAddr,
    wrap: ["ip", "netns", "exec", name],
    cut: async () => void (await ip(["-n", name, "link", "set", nsIf, "down"], "cutting the namespace's link")),
    restore: async () => void (await ip(["-n", name, "link", "set", nsIf, "up"], "restoring the namespace's link")),
    remove,
  };
}
