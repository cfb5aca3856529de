#!/usr/bin/env bun
/**
 * kvr — drill and operate Apache Kvrocks cluster replication.
 * cac wiring only: commands, options, help text, exit codes. Each command's body lives in
 * lib/<command>/command.ts as `run(options, output) → exit code`.
 *
 * Start-up loads only what the command line needs: `kvr --version` and `kvr --help` (or no
 * arguments) print before anything else is loaded — the help text is rendered from this file at
 * build time (lib/ui/prerender.ts) — then cac and the output helpers load, and a command's
 * module only when that command runs. A new command is one `cli.command(…)…action(action("name"))`
 * block below plus its line in `runners`; the global help and the command list follow from them.
 */
import type { CAC } from "cac";
import pkg from "./package.json" with { type: "json" };
import type { Output } from "./lib/ui/output.ts";
import { renderedHelp } from "./lib/ui/prerender.ts" with { type: "macro" };

/** The line `kvr --version` prints. */
const versionLine = () => `kvr ${pkg.version} (bun ${Bun.version}, ${process.platform}-${process.arch})`;
/** The global help, built in at build time ("" while it is being rendered: the parser prints it then). */
const HELP = renderedHelp();
// `kvr --version`, `kvr --help` and a bare `kvr` print and exit before anything else loads.
{
  const a = process.argv.slice(2);
  if (a.length === 1 && (a[0] === "--version" || a[0] === "-v")) {
    console.info(versionLine());
    process.exit(0);
  }
  if (HELP && (a.length === 0 || (a.length === 1 && (a[0] === "--help" || a[0] === "-h")))) {
    console.info(HELP);
    process.exit(0);
  }
}

const { cac } = await import("cac");
const { createOutput, EXIT, isLevel, wantColor } = await import("./lib/ui/output.ts");
const { UsageError } = await import("./lib/ui/units.ts");

type Options = Record<string, unknown>;
type Runner = (opts: Options, out: Output) => Promise<number>;

const cli: CAC = cac("kvr");

cli
  .option("--json", "NDJSON events and results on stdout (logs stay on stderr)")
  .option("--log-level <level>", "debug | info | warn | error", { default: "info" })
  .option("--no-color", "No colour (also NO_COLOR=1, and whenever stdout is not a terminal)");

const runners: Record<string, () => Promise<Runner>> = {
  master: async () => (await import("./lib/master/command.ts")).run,
  replica: async () => (await import("./lib/replica/command.ts")).run,
  setnodes: async () => (await import("./lib/setnodes/command.ts")).run,
  drill: async () => (await import("./lib/drill/command.ts")).run,
  doctor: async () => (await import("./lib/doctor/command.ts")).run,
  guard: async () => (await import("./lib/guard/command.ts")).run,
  lab: async () => (await import("./lib/lab/command.ts")).run,
};

let exitCode: number | null = null;
function action(name: keyof typeof runners) {
  return async (opts: Options) => {
    const out = makeOutput(opts);
    try {
      const run = await runners[name]();
      exitCode = await run(opts, out);
    } catch (e) {
      exitCode = reportError(e, out);
    }
  };
}

cli
  .command("master", "Kvrocks-compatible master serving checkpoint files, with fault injection")
  .option("--bind <host>", "Address to listen on", { default: "127.0.0.1" })
  .option("--port <port>", "Port to listen on (0 = a free one, printed at start)", { default: "6666" })
  .option("--dir <path>", "Serve the files of this checkpoint directory")
  .option("--generate <spec>", "Serve generated files: <count>x<size>[:seed=<n>] (default 8x4MiB when no --dir)")
  .option("--db-name <name>", "Name answered to _db_name", { default: "change.me.db" })
  .option("--requirepass <pw>", "Password clients must AUTH with (or env KVR_REQUIREPASS)")
  .option("--rate <MB/s>", "Replication bandwidth shared by all fetch connections, MB/s as Kvrocks' max-replication-mb (MiB/s; or with units, e.g. 500KiB; 0 = unlimited)", { default: "0" })
  .option("--fault <spec>", "Fault to inject: kind[:key=value,...] (repeatable; see below)")
  .option("--seq <n>", "The checkpoint's sequence number (never 0; default from the checkpoint, else 100)")
  .option("--heartbeat <duration>", "Interval of 'ping' heartbeats on a PSYNC stream", { default: "2s" })
  .option("--send-timeout <duration>", "Drop a client that does not read for this long once its send buffer is full (0 = never, as Kvrocks before PR #3357)", { default: "30s" })
  .option("--idle-timeout <duration>", "Drop a client that sends no command for this long (0 = never)", { default: "300s" })
  .option("--write-rate <n/s>", "Produce this many WriteBatches per second for PSYNC streams (0 = none); deterministic: the same --seq and seed give the same history", { default: "0" })
  .option("--write-total <n>", "Stop writing after this many batches (0 = never)", { default: "0" })
  .option("--wal-window <n>", "WriteBatches retained for PSYNC; older sequences need a full sync", { default: "100000" })
  .option("--psync <mode>", "accept (a PSYNC inside the WAL window streams, as on Kvrocks) | refuse (every PSYNC is refused: every replica full-syncs)", { default: "accept" })
  .option("--node-id <id>", "Cluster mode with this 40-character node id: CLUSTERX, CLUSTER NODES|INFO (default: standalone)")
  .example("  kvr master --generate 64x4MiB --rate 25 --port 6666")
  .example("  kvr master --dir /var/lib/kvrocks/checkpoint --requirepass secret")
  .example("  kvr master --fault stall:after-bytes=10MiB --fault delay:ms=200,on=_fetch_meta")
  .example("  kvr master --generate 8x1MiB --seq 1000 --write-rate 5000 --wal-window 100000")
  .example("  redis-cli -p 6666 KVR FAULT ADD reset:after-files=3,once")
  .example("  kvr master --node-id $(printf 'a%.0s' {1..40}) --port 7000    # a cluster node: then kvr setnodes")
  .example(
    "\nFaults (kind[:key=value,...]):\n" +
      "  stall            stop sending and reading, keep the socket open (no FIN, no RST)\n" +
      "  close | reset    FIN | RST\n" +
      "  delay:ms=N       latency before each reply/chunk\n" +
      "  bandwidth:rate=R per-connection bytes/s (units: 1MiB)\n" +
      "  trickle:bytes=N,every=D   alive but crawling\n" +
      "  error:cmd=C,msg=M         reply M (an error line) to command C\n" +
      "  refuse           stop accepting (listener closed)\n" +
      "  blackhole-accept accept queue never drained: connects hang\n" +
      "Triggers: after-bytes= (file bytes sent on the connection), after-files=, on=<command>,\n" +
      "  after-ms= (since the connection opened or the fault was added), conns=<n>, once; none = at once\n" +
      "  (a new connection: at its first command other than AUTH; one that starts with KVR is never faulted)\n" +
      "  reset sends RST (SO_LINGER 0); connections that sent KVR commands are never faulted\n" +
      "Run time: KVR FAULT ADD <spec> | KVR FAULT CLEAR | KVR FAULT LIST (a used-up once/conns= fault leaves the list;\n" +
      "  the connections it hit stay hit until CLEAR); SIGUSR1 stalls every connection, live and new, until\n" +
      "  SIGUSR2 (which clears every fault)\n" +
      "Stream (--write-rate): batches of 1-4 Puts follow --seq; each batch's contents derive from (seed, sequence),\n" +
      "  so a master restarted with the same flags has the same history: a PSYNC for a later batch boundary of it\n" +
      "  fast-forwards there (no full sync). Older than --wal-window batches → out of range (full sync).\n" +
      "  A generated checkpoint fetched while writing records the head (MANIFEST-<1000000 + head>).",
  )
  .action(action("master"));

cli
  .command("replica", "Kvrocks-compatible replica with deadlines, instant stop and a CLUSTERX admin port")
  .option("--dir <path>", "Target directory for the checkpoint files (required; created, mode 0700, when its parent exists)")
  .option("--master <host:port>", "Master to sync from (else wait for SETNODES or SLAVEOF)")
  .option("--bind <host>", "Admin port address", { default: "127.0.0.1" })
  .option("--port <port>", "Admin port (0 = a free one, printed at start; default 6667, with --once 0)")
  .option("--node-id <id>", "This node's 40-character cluster node id")
  .option("--masterauth <pw>", "Password for the master (or env KVR_MASTERAUTH)")
  .option("--requirepass <pw>", "Password for the admin port (or env KVR_REQUIREPASS)")
  .option("--db-name <name>", "Expected master db name", { default: "change.me.db" })
  .option("--connect-timeout <duration>", "Connect deadline on every connection", { default: "3s" })
  .option("--read-timeout <duration>", "Idle read deadline on every connection during sync", { default: "3s" })
  .option("--stream-timeout <duration>", "Idle read deadline on the incremental stream", { default: "10s" })
  .option("--workers <n>", "Fetch connections: auto (1 for ≤20 files, else 4) or a number", { default: "auto" })
  .option("--retry-delay <duration>", "First delay before a retry (exponential backoff with jitter, cap 30s)", { default: "1s" })
  .option("--max-retries <n>", "Retries after a failed attempt before giving up: n allows n + 1 attempts (default: never give up; 5 with --once); see 'Giving up' below")
  .option("--max-file-size <size>", "Largest file size a master may announce", { default: "64GiB" })
  .option("--stream-fsync <policy>", "always | 1s | never: fsync of kvr-stream.log", { default: "1s" })
  .option("--lag-probe", "Poll the master's INFO for master_repl_offset and report lag")
  .option("--once", "Exit after one completed full sync, with a summary (no PSYNC: files already in --dir are skipped)")
  .example("  kvr replica --dir ./replica --master 127.0.0.1:6666 --once      # admin port: a free one")
  .example("  kvr replica --dir ./replica --port 6667 --node-id $(printf 'b%.0s' {1..40})")
  .example(
    "\nGiving up: after --max-retries retries (with --once 5 unless given), or at once when a retry cannot\n" +
      "  help: the master refused AUTH, needs a password that was not given (NOAUTH: set --masterauth or\n" +
      "  KVR_MASTERAUTH), or serves another --db-name. With --once, or when started with --master, kvr replica\n" +
      "  then exits 1 (3 when the last failure was a deadline: connect, read or write timeout). Started without\n" +
      "  --master (the master comes from CLUSTERX SETNODES or SLAVEOF), the process stays up: the run stops in\n" +
      "  state error (INFO kvr_state:error, the reason in kvr_last_error) until the next SETNODES/SLAVEOF.",
  )
  .action(action("replica"));

cli
  .command("setnodes", "Validate a topology and push it (CLUSTERX SETNODES) to nodes under deadlines")
  .usage("setnodes (--from <host:port> | --nodes-file <path> | --nodes <string> | --node <line>...) [--promote <id> [--drop-old]] [--remove <id>] (--version <n> | --bump) (--target <host:port>... | --all)")
  .option("--from <host:port>", "Read the topology from this live node (CLUSTER NODES, CLUSTERX VERSION)")
  .option("--promote <id>", "Edit: this replica becomes master of its master's slots; the old master and its other replicas follow it (repeatable)")
  .option("--drop-old", "With --promote: drop the old master from the topology instead (a dead master cannot be pushed to)")
  .option("--remove <id>", "Edit: drop this node (refused while it owns slots or has replicas) (repeatable)")
  .option("--nodes-file <path>", "Topology file ('-' = stdin; at most 8 MiB)")
  .option("--nodes <string>", "Topology string (a literal \\n separates nodes)")
  .option("--node <line>", "One node: '<id> <host> <port> <role> <master|-> [slots]' (repeatable)")
  .option("--version <n>", "Topology version to set")
  .option("--bump", "Use max(CLUSTERX VERSION of the targets) + 1")
  .option("--force", "Send FORCE (accept a lower version; re-pick myself by address)")
  .option("--target <host:port>", "Node to push to (repeatable)")
  .option("--all", "Push to every node in the topology")
  .option("--connect-timeout <duration>", "Connect deadline per target", { default: "3s" })
  .option("--timeout <duration>", "Reply deadline per target", { default: "3s" })
  .option("--auth <pw>", "Password for the targets (or env KVR_AUTH)")
  .option("--set-node-id", "Send CLUSTERX SETNODEID <the target's id in the topology> first")
  .option("--dry-run", "Validate and print the canonical topology; send nothing")
  .option("--verify", "Read CLUSTERX VERSION back from every target and report stragglers")
  .option("--retries <n>", "Re-push to failed targets this many times, with backoff", { default: "0" })
  .example("  kvr setnodes --nodes-file cluster.txt --version 7 --all --verify")
  .example('  kvr setnodes --node "$A 10.0.0.1 6666 master - 0-16383" --node "$B 10.0.0.2 6666 slave $A" --bump --all')
  .example("  kvr setnodes --nodes-file cluster.txt --version 7 --dry-run")
  .example("  kvr setnodes --from 10.0.0.1:6666 --dry-run > cluster.txt      # the live topology as a nodes file")
  .example("  kvr setnodes --from 10.0.0.1:6666 --promote $REPLICA --drop-old --bump --all --verify    # failover of a dead master")
  .example("  kvr setnodes --from 10.0.0.1:6666 --remove $SPARE --bump --all --verify")
  .example(
    "\nEdits (--promote, then --remove) apply to the topology read, before it is validated; promoting a replica of a\n" +
      "  dead master, add --drop-old so --all does not push to it.\n" +
      "Exit codes: 0 every target replied +OK; 1 a target replied an error or failed; 3 a connect or reply\ndeadline fired (and nothing else failed); 2 usage error, invalid topology or refused edit (nothing sent);\n4 --from: the node could not be read (nothing sent).",
  )
  .action(action("setnodes"));

cli
  .command("drill", "Reproduce a Kvrocks replication incident end to end and give a verdict (fetch-hang, slow-replica)")
  .usage("drill [--scenario fetch-hang|slow-replica] [options]")
  .option("--scenario <name>", "fetch-hang: master cut mid full sync, then SETNODES (default) | slow-replica: a replica that stops reading, does the master drop it (Kvrocks #3356)")
  .option("--budget <duration>", "fetch-hang: SETNODES must return within this (default 6s) | slow-replica: the master must drop the stuck replica within this of its receive window closing (default 35s)")
  .option("--give-up <duration>", "fetch-hang: stop waiting for a hung SETNODES (default 30s) | slow-replica: a connection still held this long after it stopped reading is the #3356 signature (default 90s)")
  .option("--auth <pw>", "Password of the node under test (or env KVR_AUTH); slow-replica: of --master (or of the kvr master it starts)")
  .option("--repeat <n>", "Run the drill n times; report min/median/p99 of the latency (SETNODES reply, or the drop)", { default: "1" })
  .option("--cut <mode>", "fetch-hang: stall (app level: no FIN/RST) | netns (kernel level, needs root + iproute2) (default: stall)")
  .option("--cut-at <fraction>", "fetch-hang: cut once this share of the checkpoint was served (default: 30%)")
  .option("--switch-to <role>", "fetch-hang: replica (move to master B) | master (default: replica)")
  .option("--new-master <kind>", "fetch-hang: kvr (a second kvr master) | blackhole (an address that never answers: the node cannot recover, so the recovery phase is skipped unless --recover-timeout is given) (default: kvr)")
  .option("--replica <host:port>", "fetch-hang: drill this running node (Kvrocks in cluster mode) instead of a kvr replica")
  .option("--masters-auth <pw>", "fetch-hang: password masters A and B require: the node's masterauth (or env KVR_MASTERS_AUTH; default: --auth, as a cluster shares one password; '' for none)")
  .option("--a-psync <mode>", "fetch-hang: refuse: master A refuses every PSYNC, so the node always full-syncs from it | accept: A takes a PSYNC inside its window like a Kvrocks master (a node holding A's data then streams: the drill stops, exit 4) (default: refuse)")
  .option("--keep", "fetch-hang: leave a --replica node as the drill left it (default: put its topology back at the end, as a new version)")
  .option("--replace-data", "fetch-hang: drill a --replica node even when it is a master that owns slots or has replicas (refused by default: the drill's full syncs replace the node's data)")
  .option("--advertise-host <host>", "fetch-hang: address the node under test reaches the masters at (default: 127.0.0.1)")
  .option("--files <n>", "fetch-hang: generated checkpoint, number of files (default: 64)")
  .option("--file-size <size>", "fetch-hang: generated checkpoint, size of each file (default: 2MiB)")
  .option("--rate <MB/s>", "fetch-hang: master A's rate limit in MiB/s as Kvrocks counts MB (default: a full sync takes ~10 s)")
  .option("--read-timeout <duration>", "fetch-hang: the kvr replica's read deadline (and kvr guard's, with --guard) (default: 3s)")
  .option("--guard", "fetch-hang: run kvr guard on the node under test (with --read-timeout) and report what it destroyed")
  .option("--recover-timeout <duration>", "fetch-hang: after SETNODES, wait this long for the node to stream from master B (default: 60s)")
  .option("--no-recover", "fetch-hang: skip the recovery phase (SETNODES and INFO only)")
  .option("--master <host:port>", "slow-replica: drill this running master (Kvrocks, cluster or standalone) instead of a kvr master")
  .option("--send-timeout <duration>", "slow-replica: the kvr master's --send-timeout (0 = never drop: a master before Kvrocks PR #3357) (default: 30s)")
  .option("--write-rate <n/s>", "slow-replica: WriteBatches/s of the kvr master (default 20000), or SETs/s of 1 KiB on --master keys kvr:drill:* (default 2000; 0 = none)")
  .example("  kvr drill                                   # fetch-hang on a kvr replica")
  .example("  kvr drill --cut netns --repeat 5 --json")
  .example("  KVR_AUTH=secret kvr drill --replica 10.0.0.5:6666 --advertise-host 10.0.0.1")
  .example("  KVR_AUTH=secret KVR_MASTERS_AUTH=other kvr drill --replica 10.0.0.5:6666 --advertise-host 10.0.0.1 --keep")
  .example("  kvr drill --replica 127.0.0.1:6666 --guard        # a staging node: does kvr guard rescue this build? (on its host)")
  .example("  kvr drill --scenario slow-replica --send-timeout 3s   # a kvr master that drops a stuck replica after 3 s")
  .example("  kvr drill --scenario slow-replica --send-timeout 0 --give-up 10s   # a master before #3357: FAIL")
  .example("  KVR_AUTH=secret kvr drill --scenario slow-replica --master 10.0.0.5:6666      # a running Kvrocks master (staging)")
  .example(
    "\nfetch-hang: master A cut mid full sync, SETNODES moving the node to master B must return within --budget while it\n" +
      "  answers PING; then the node must stream from B (master_link_status:up, offset ≥ B's checkpoint) within\n" +
      "  --recover-timeout. A --replica node's topology is read before the drill and put back at the end of every run,\n" +
      "  pass or fail (CLUSTERX SETNODES with the version after the drill's last); --keep leaves it as the drill left it.\n" +
      "  The node's DATA is replaced by the drill's full syncs: a replica resyncs from its master once put back; a master\n" +
      "  that owns slots or has replicas is refused (exit 4) unless --replace-data. Drill a replica or a staging node.\n" +
      "slow-replica: the drill follows the master's stream as a replica, then stops reading (socket kept open) while\n" +
      "  writes go on and a healthy kvr replica streams from the same master. PASS: the master drops the stuck replica\n" +
      "  within --budget of its receive window closing, PING and the healthy replica never stall. FAIL: still held at\n" +
      "  --give-up (the #3356 blocked-feed signature; the drill then closes its socket and times the master's recovery).\n" +
      "  On --master it SETs keys kvr:drill:<run>:<n> (in slots the node owns) and deletes them at the end.\n" +
      "Exit: 0 PASS, 1 FAIL (SETNODES hung or slow, wrong role, fetch connections left open, no recovery; a stuck replica\n" +
      "  held, PING or the healthy replica stalled), 2 usage, 4 the drill could not run (the node unreachable, not in\n" +
      "  cluster mode or not a master, its AUTH to A refused, no connection from it to A, a PSYNC into A's stream\n" +
      "  instead of a full sync, a master that owns slots or has replicas without --replace-data, writes refused,\n" +
      "  interrupted by SIGINT/SIGTERM)",
  )
  .action(action("drill"));

cli
  .command("doctor", "Diagnose a live Kvrocks cluster, read-only: stuck full syncs, frozen nodes, topology splits, lag")
  .usage("doctor (--seed <host:port>... | --nodes-file <path> | --node <line>...) [options]")
  .option("--seed <host:port>", "Start discovery here (repeatable): CLUSTER NODES in cluster mode, INFO replication otherwise")
  .option("--nodes-file <path>", "Seeds from a topology file in setnodes' format ('-' = stdin)")
  .option("--node <line>", "Seed from one topology line '<id> <host> <port> <role> <master|-> [slots]' (repeatable)")
  .option("--auth <pw>", "Password for every node (or env KVR_AUTH)")
  .option("--samples <n>", "Looks at each node; growth (last I/O, lag, sync_full) needs 2 or more", { default: "2" })
  .option("--interval <duration>", "Time between looks", { default: "2s" })
  .option("--concurrency <n>", "Probes in flight at once", { default: "64" })
  .option("--connect-timeout <duration>", "Connect deadline per node", { default: "3s" })
  .option("--timeout <duration>", "Reply deadline per command: a node that does not answer within it is unresponsive", { default: "3s" })
  .option("--stuck-after <duration>", "A full sync with no I/O from its master for this long is stuck", { default: "10s" })
  .option("--max-lag <n>", "A replica more than this many sequences behind its master lags", { default: "100000" })
  .example("  kvr doctor --seed 10.0.0.1:6666")
  .example("  kvr doctor --seed 10.0.0.1:6666 --seed 10.0.0.2:6666 --samples 3 --interval 5s")
  .example("  KVR_AUTH=secret kvr doctor --nodes-file cluster.txt --json | jq -c 'select(.event == \"finding\")'")
  .example("  kvr doctor --seed 127.0.0.1:6666 --samples 1 --timeout 1s     # one quick look")
  .example(
    "\nSends only PING, AUTH, INFO server|replication|stats|cluster, CLUSTER NODES, CLUSTER INFO, CLUSTERX VERSION.\n" +
      "Findings (severity): unreachable, unresponsive, probe-error, stuck-full-sync, full-sync-loop, topology-split,\n" +
      "  role-mismatch, slot-coverage (crit); link-down, no-replica, lag (warn); mixed-versions (info).\n" +
      "Run it before every topology push: a replica stuck in a full sync answers INFO normally, and on builds\n" +
      "  without the fetch read deadline the next CLUSTERX SETNODES freezes it.\n" +
      "Exit codes, first that applies: 4 no seed answered; 3 a node unreachable or unresponsive; 1 a warn or crit\n" +
      "  finding; 0 nothing above info. 2: usage error or invalid input (nothing sent).",
  )
  .action(action("doctor"));

cli
  .command("guard", "Destroy a stuck node's sockets to its master: the fetch read deadline for running, unpatched Kvrocks")
  .usage("guard --node <host:port> [--node ...] [--read-timeout 3s] [--dry-run]")
  .option("--node <host:port>", "A Kvrocks node on this host to watch (repeatable)")
  .option("--read-timeout <duration>", "Destroy a socket to the node's master that received nothing for this long", { default: "3s" })
  .option("--interval <duration>", "How often each node's INFO replication is read", { default: "250ms" })
  .option("--timeout <duration>", "Connect and reply deadline of each INFO: a node that misses it does not answer", { default: "1s" })
  .option("--auth <pw>", "Password of the nodes (or env KVR_AUTH)")
  .option("--dry-run", "Report what would be destroyed; destroy nothing")
  .option("--only-unresponsive", "Act only once a node stops answering, not merely because it syncs (for masters that pause: max-replication-mb)")
  .example("  sudo kvr guard --node 127.0.0.1:6666")
  .example("  KVR_AUTH=secret kvr guard --node 10.0.0.5:6666 --node 10.0.0.5:6667 --json")
  .example("  kvr guard --node 127.0.0.1:6666 --dry-run          # what it would destroy, without privileges")
  .example("  kvr drill --replica 127.0.0.1:6666 --guard          # on a staging node of the same build: prove it rescues it first")
  .example(
    "\nWhat it destroys: established TCP sockets held by the node's own process (process_id in INFO server,\n" +
      "  checked against the process listening on the node's port) whose remote end is the node's master, that\n" +
      "  received nothing for --read-timeout, while the node was last seen syncing (master_sync_in_progress:1;\n" +
      "  not with --only-unresponsive) or does not answer INFO. Never a socket of a node last seen streaming\n" +
      "  (master_link_status:up), of another process, or to another address. The node's blocked read fails at\n" +
      "  once and it retries its sync. A master that pauses longer than --read-timeout mid sync (Kvrocks'\n" +
      "  max-replication-mb sleeps after each file) has its syncs cut: use --only-unresponsive there.\n" +
      "Needs: Linux, CAP_NET_ADMIN (root, or AmbientCapabilities=CAP_NET_ADMIN), a kernel with\n" +
      "  CONFIG_INET_DIAG_DESTROY, and the node's user or CAP_SYS_PTRACE to read /proc/<pid>/fd. A self-test at\n" +
      "  start destroys a socket of its own: when that is refused, exit 4 and nothing is watched.\n" +
      "Exit: 0 stopped by SIGINT/SIGTERM, 2 usage, 4 cannot destroy sockets here (self-test failed)",
  )
  .action(action("guard"));

cli
  .command("lab", "A local cluster of kvr processes to rehearse runbooks on; stays up until Ctrl-C, then removes everything")
  .option("--masters <n>", "kvr masters (cluster nodes, generated data), slots split evenly: 1 to 16", { default: "3" })
  .option("--replicas <n>", "kvr replicas per master: 0 to 4", { default: "1" })
  .option("--dir <path>", "Data directory, new or empty (default: a temp dir); what the lab writes there is removed on exit")
  .option("--generate <spec>", "Each master's generated checkpoint: <count>x<size>[:seed=<n>] (as kvr master --generate)", { default: "4x256KiB" })
  .option("--write-rate <n/s>", "WriteBatches per second each master streams to its replicas (offsets move, lag is real)", { default: "10" })
  .option("--read-timeout <duration>", "The replicas' read deadline (e.g. 60s: a stalled full sync hangs as on a build without the fix)", { default: "3s" })
  .option("--timeout <duration>", "Start-up deadline: processes, topology, every replica synced", { default: "60s" })
  .example("  kvr lab                                   # 3 masters × 1 replica; prints the nodes and a seed address")
  .example("  kvr lab --masters 2 --replicas 1 --read-timeout 60s --json")
  .example("  kvr doctor --seed <seed>                  # in another terminal; then kill -9 a master and run runbooks/failover.sh")
  .example(
    "\nEvery node listens on a free port of 127.0.0.1; node ids are random; topology version 1 is pushed to every node\n" +
      "  and the lab waits until every replica streams from its master. Then: a table (--json: one `ready` event with\n" +
      "  seed, version, dir, nodesFile, nodesText, nodes[] {name, id, role, host, port, address, masterId, master, slots, pid, dir}),\n" +
      "  `node-exit` when a node dies, `stopped` at the end. Faults at run time: kill -USR1/-USR2 <master pid> (stall all /\n" +
      "  clear), or KVR FAULT ADD <spec> on a master's port (see 'kvr master --help').\n" +
      "Exit: 0 stopped by Ctrl-C/SIGTERM (everything removed), 2 usage, 4 the lab could not start (everything removed).",
  )
  .action(action("lab"));

cli.help((sections) =>
  sections.map((sec) => {
    if (sec.title !== "Options") return sec;
    let body = sec.body
      .split("\n")
      .map((l) => (/--no-(color|recover)\b/.test(l) ? l.replace(" (default: true)", "") : l).trimEnd())
      .join("\n");
    // cac hides command options named "version" from help; setnodes has one (the topology version).
    if (cli.matchedCommandName === "setnodes" && !body.includes("--version <n>")) {
      const column = /^(\s+\S.*?\s{2,})\S/.exec(body.split("\n")[0])?.[1].length ?? 20;
      body = "  --version <n>".padEnd(column) + "Topology version to set\n" + body;
    }
    return { ...sec, body };
  }),
);
cli.version(pkg.version);
cli.globalCommand.outputVersion = () => console.info(versionLine());

function makeOutput(opts: Options): Output {
  const level = String(opts.logLevel ?? "info");
  if (!isLevel(level)) throw new UsageError(`--log-level: '${level}' is not one of debug, info, warn, error`);
  return createOutput({
    json: !!opts.json,
    level,
    color: wantColor(opts.color === false ? false : undefined, process.stdout.isTTY),
  });
}

function reportError(e: unknown, out?: Output): number {
  const msg = e instanceof Error ? e.message : String(e);
  if (e instanceof UsageError || (e as Error)?.name === "CACError") {
    const cmd = cli.matchedCommandName ? `kvr ${cli.matchedCommandName} --help` : "kvr --help";
    process.stderr.write(`kvr: ${asTyped(msg)} (see '${cmd}')\n`);
    return EXIT.USAGE;
  }
  if (out) out.error(msg);
  else process.stderr.write(`kvr: ${msg}\n`);
  if (process.env.KVR_DEBUG && e instanceof Error && e.stack) process.stderr.write(e.stack + "\n");
  return EXIT.FAIL;
}

/** The parser reports flags camelCased (`--bogusFlag`); name them as the user typed them. */
function asTyped(msg: string): string {
  const m = /^Unknown option `-{1,2}([^`]+)`/.exec(msg);
  if (!m) return msg;
  const typed = process.argv.slice(2).find((a) => {
    const name = a.replace(/^-{1,2}/, "").replace(/=.*$/s, "");
    const camel = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    return a.startsWith("-") && (camel === m[1] || camel === `no${m[1][0].toUpperCase()}${m[1].slice(1)}`);
  });
  return `unknown option '${typed?.replace(/=.*$/s, "") ?? "--" + m[1]}'`;
}

/**
 * The argument parser turns numeric-looking values into numbers ("0123" → 123, a 40-digit node
 * id → a float). Values of options that take one are marked before parsing and unmarked after,
 * so every value reaches the commands exactly as typed.
 */
const MARK = "\u0001";
function protect(argv: string[]): string[] {
  const valued = new Set<string>();
  for (const cmd of [cli.globalCommand, ...cli.commands]) {
    for (const o of cmd.options) if (!o.isBoolean) for (const n of o.names) valued.add(n);
  }
  const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const m = /^--([^=]+)=(.*)$/s.exec(a);
    if (m) {
      out.push(valued.has(camel(m[1])) ? `--${m[1]}=${MARK}${m[2]}` : a);
      continue;
    }
    out.push(a);
    if (a.startsWith("--") && valued.has(camel(a.slice(2))) && i + 1 < argv.length) out.push(MARK + argv[++i]);
  }
  return out;
}
function unprotect(v: unknown): unknown {
  if (typeof v === "string") return v.startsWith(MARK) ? v.slice(1) : v;
  if (Array.isArray(v)) return v.map(unprotect);
  return v;
}

/** The command word of argv (the first bare word, skipping the values of global flags). */
function commandWord(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--log-level") i++;
    else if (!argv[i].startsWith("-")) return argv[i];
  }
  return undefined;
}

async function main(): Promise<number> {
  // `kvr setnodes --version <n>` is the topology version, not the global boolean --version.
  const topologyVersion = commandWord(process.argv.slice(2)) === "setnodes";
  if (topologyVersion) {
    cli.globalCommand.options = cli.globalCommand.options.filter((o) => !o.names.includes("version"));
  }
  const argv = protect(process.argv.slice(2));
  let parsed;
  try {
    parsed = cli.parse(["", "kvr", ...argv], { run: false });
  } catch (e) {
    return reportError(e);
  }
  for (const k of Object.keys(parsed.options)) parsed.options[k] = unprotect(parsed.options[k]);
  if (parsed.options.help || parsed.options.h) return EXIT.OK;
  if (!topologyVersion && (parsed.options.version || parsed.options.v)) {
    // The parser prints the version itself only when no command was named (`kvr --json --version`).
    if (cli.matchedCommandName) console.info(versionLine());
    return EXIT.OK;
  }
  if (!cli.matchedCommand) {
    try {
      cli.globalCommand.checkUnknownOptions();
    } catch (e) {
      return reportError(e);
    }
    if (parsed.args.length > 0) {
      process.stderr.write(`kvr: unknown command '${unprotect(parsed.args[0])}'. Commands: ${Object.keys(runners).join(", ")}.\n`);
      return EXIT.USAGE;
    }
    cli.outputHelp();
    return EXIT.OK;
  }
  try {
    await cli.runMatchedCommand();
  } catch (e) {
    return reportError(e);
  }
  return exitCode ?? EXIT.OK;
}

const code = await main();
// Flush stdout before exiting: on a pipe whose reader lags, Bun keeps unwritten output in user
// space (writableLength says 0) and process.exit() drops it; end() waits until it is written.
// Bounded, so a reader that never reads cannot hold the exit forever. Only when a command ran:
// --help and --version print with console (written at once), and merely touching
// process.stdout costs several milliseconds of start-up.
if (exitCode !== null) await Promise.race([new Promise<void>((r) => process.stdout.end(() => r())), Bun.sleep(5000)]);
process.exit(code);
