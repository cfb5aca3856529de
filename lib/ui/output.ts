/**
 * Human output and --json NDJSON. Logs always go to stderr; with --json, events and results go
 * to stdout as one JSON object per line. Colour only on a TTY, never with NO_COLOR/--no-color.
 */
import type { Colors as PicoColors } from "picocolors/types";

/**
 * picocolors is loaded on first use: its module body inspects process.stdout, which costs
 * several milliseconds at start-up that `kvr --version` and `--help` do not need.
 */
let pico: typeof import("picocolors") | null = null;
function createColors(enabled: boolean): PicoColors {
  pico ??= require("picocolors") as typeof import("picocolors");
  return pico.createColors(enabled);
}

export type Level = "debug" | "info" | "warn" | "error";
const LEVELS: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Colors = PicoColors;

export interface Output {
  readonly json: boolean;
  readonly color: boolean;
  readonly c: Colors;
  /** stdout is a terminal (progress lines are shown). */
  readonly tty: boolean;
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** A structured event: an NDJSON line on stdout with --json; a log line (info) otherwise. */
  event(type: string, data?: Record<string, unknown>, human?: string): void;
  /** The final result object (--json) — human output is the caller's. */
  result(data: Record<string, unknown>): void;
  /** Write a human line to stdout (ignored with --json). */
  print(line: string): void;
  /** A transient progress line on a TTY (stderr), replaced by the next one. */
  progress(line: string): void;
  /** Erase the progress line. */
  clearProgress(): void;
}

export interface OutputOptions {
  json?: boolean;
  level?: Level;
  color?: boolean;
  stdout?: { write(s: string): unknown; isTTY?: boolean };
  stderr?: { write(s: string): unknown; isTTY?: boolean };
}

/** Decide colour: --no-color, NO_COLOR and a non-TTY stdout each turn it off. */
export function wantColor(flag: boolean | undefined, isTTY: boolean | undefined): boolean {
  if (flag === false) return false;
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== "") return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== "0") return true;
  return !!isTTY;
}

export function isLevel(s: string): s is Level {
  return s in LEVELS;
}

export function createOutput(opts: OutputOptions = {}): Output {
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  const json = !!opts.json;
  const color = opts.color ?? wantColor(undefined, stdout.isTTY);
  const c = createColors(color);
  const min = LEVELS[opts.level ?? "info"];
  const tty = !!stdout.isTTY && !!stderr.isTTY && !json;
  let progressShown = false;
  const clear = () => {
    if (progressShown) {
      stderr.write("\r\x1b[2K");
      progressShown = false;
    }
  };
  const ts = () => new Date().toISOString().slice(11, 23);
  const log = (level: Level, msg: string) => {
    if (LEVELS[level] < min) return;
    clear();
    const tag = level === "error" ? c.red("error") : level === "warn" ? c.yellow("warn ") : level === "debug" ? c.dim("debug") : c.cyan("info ");
    stderr.write(`${c.dim(ts())} ${tag} ${msg}\n`);
  };
  return {
    json,
    color,
    c,
    tty,
    debug: (m) => log("debug", m),
    info: (m) => log("info", m),
    warn: (m) => log("warn", m),
    error: (m) => log("error", m),
    event(type, data = {}, human) {
      if (json) stdout.write(JSON.stringify({ ts: new Date().toISOString(), event: type, ...data }) + "\n");
      else if (human !== undefined) log("info", human);
      else log("debug", `${type} ${JSON.stringify(data)}`);
    },
    result(data) {
      if (json) stdout.write(JSON.stringify(data) + "\n");
    },
    print(line) {
      if (!json) {
        clear();
        stdout.write(line + "\n");
      }
    },
    progress(line) {
      if (!tty) return;
      stderr.write(`\r\x1b[2K${line}`);
      progressShown = true;
    },
    clearProgress: clear,
  };
}

/** Exit codes, documented in the README. */
export const EXIT = {
  OK: 0,
  /** A target or the replica under test failed (error reply, FAIL verdict, sync failure). */
  FAIL: 1,
  /** Usage error or invalid input; nothing was done. */
  USAGE: 2,
  /** A deadline fired (setnodes: a target did not connect or reply in time). */
  DEADLINE: 3,
  /** The drill itself could not run (ports, permissions, replica unreachable). */
  DRILL_ERROR: 4,
} as const;

/**
 * A table as lines of text: each column padded to its widest cell, columns two spaces apart, the
 * last column unpadded, trailing spaces trimmed. `paint(cell, row, column)` may colour a padded
 * cell (row -1 is the head).
 */
export function tableLines(head: string[], rows: string[][], paint?: (cell: string, row: number, column: number) => string): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[], row: number) =>
    cells
      .map((c, i) => {
        const padded = i === cells.length - 1 ? c : c.padEnd(widths[i]);
        return paint ? paint(padded, row, i) : padded;
      })
      .join("  ")
      .trimEnd();
  return [line(head, -1), ...rows.map(line)];
}
