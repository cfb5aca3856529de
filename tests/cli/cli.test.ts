import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { KVR_BIN, runKvr } from "../helpers/kvr.ts";
import pkg from "../../package.json" with { type: "json" };
import { tableLines } from "../../lib/ui/output.ts";
import { UsageError, formatBytes, parseDuration, parseHostPort, parsePositiveDuration, parseSize, single } from "../../lib/ui/units.ts";

describe("compiled binary", () => {
  test("the binary exists (npm test builds it first)", () => {
    expect(existsSync(KVR_BIN)).toBe(true);
  });

  test("--help lists every command and exits 0", async () => {
    const r = await runKvr(["--help"]);
    expect(r.code).toBe(0);
    for (const c of ["master", "replica", "setnodes", "drill", "doctor", "--json", "--log-level", "--no-color"]) expect(r.stdout).toContain(c);
  });

  test("--version prints the package version and exits 0", async () => {
    const r = await runKvr(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(pkg.version);
  });

  test("kvr, kvr --help and kvr -h print, without loading the parser, exactly what the parser prints; -v is --version", async () => {
    // --no-color keeps the parser in the loop (the start-up shortcut takes only a lone --help).
    const parsed = await runKvr(["--no-color", "--help"]);
    expect(parsed.code).toBe(0);
    expect(parsed.stdout).toContain("$ kvr doctor --help");
    for (const args of [[], ["--help"], ["-h"]]) {
      const r = await runKvr(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(parsed.stdout);
    }
    const v = await runKvr(["--version"]);
    expect(v.stdout).toBe(`kvr ${pkg.version} (bun ${Bun.version}, ${process.platform}-${process.arch})\n`);
    expect((await runKvr(["-v"])).stdout).toBe(v.stdout);
    expect((await runKvr(["--log-level", "warn", "--version"])).stdout).toBe(v.stdout);
  });

  test("kvr <command> --version and -v print the version too (setnodes' --version is the topology version)", async () => {
    const line = `kvr ${pkg.version} (bun ${Bun.version}, ${process.platform}-${process.arch})\n`;
    const runs = ["drill", "doctor", "lab", "master", "replica", "guard"].flatMap((c) => [[c, "--version"], [c, "-v"]]);
    const results = await Promise.all(runs.map((args) => runKvr(args)));
    results.forEach((r, i) => {
      expect({ args: runs[i], code: r.code, stdout: r.stdout }).toEqual({ args: runs[i], code: 0, stdout: line });
    });
    const s = await runKvr(["setnodes", "--version"]);
    expect(s.stdout).not.toContain(pkg.version);
  });

  test("each command's --help teaches with examples", async () => {
    for (const c of ["master", "replica", "setnodes", "drill", "doctor"]) {
      const r = await runKvr([c, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("Examples:");
      expect(r.stdout).toContain(`kvr ${c}`);
    }
  });

  test("an unknown flag exits 2 with a one-line error naming the flag", async () => {
    const r = await runKvr(["setnodes", "--no-such-flag", "--bogus-flag"]);
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toContain("--no-such-flag");
    expect(r.stdout).toBe("");
  });

  test("an unknown command exits 2", async () => {
    const r = await runKvr(["frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("frobnicate");
  });

  test("a bad --log-level value exits 2 naming the flag", async () => {
    const r = await runKvr(["setnodes", "--log-level", "loud"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--log-level");
  });

  test("a bad duration value exits 2 naming the flag", async () => {
    const r = await runKvr(["drill", "--budget", "soon"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--budget");
  });
});

describe("units", () => {
  test("sizes accept binary and decimal units; bare numbers are bytes", () => {
    expect(parseSize("s", "64MiB")).toBe(64 * 1024 * 1024);
    expect(parseSize("s", "1GB")).toBe(1e9);
    expect(parseSize("s", "1.5GB")).toBe(1.5e9);
    expect(parseSize("s", "4096")).toBe(4096);
    expect(parseSize("s", "2kib")).toBe(2048);
    expect(() => parseSize("file-size", "lots")).toThrow(UsageError);
    expect(() => parseSize("file-size", "lots")).toThrow("--file-size");
  });

  test("durations accept ms, s, m, h; bare numbers are milliseconds", () => {
    expect(parseDuration("d", "3s")).toBe(3000);
    expect(parseDuration("d", "250ms")).toBe(250);
    expect(parseDuration("d", "1.5s")).toBe(1500);
    expect(parseDuration("d", "2m")).toBe(120_000);
    expect(parseDuration("d", "700")).toBe(700);
    expect(() => parseDuration("timeout", "-1s")).toThrow("--timeout");
    expect(parsePositiveDuration("timeout", "1ms")).toBe(1);
    expect(() => parsePositiveDuration("timeout", "0s")).toThrow("--timeout: must be above 0");
  });

  test("a flag given once is its text; given twice, a usage error naming it", () => {
    expect(single("auth", undefined)).toBeUndefined();
    expect(single("auth", "")).toBe("");
    expect(single("port", 6666)).toBe("6666");
    expect(() => single("auth", ["a", "b"])).toThrow("--auth: give it once");
  });

  test("host:port, including IPv6 in brackets", () => {
    expect(parseHostPort("t", "127.0.0.1:6666")).toEqual({ host: "127.0.0.1", port: 6666 });
    expect(parseHostPort("t", "[::1]:7000")).toEqual({ host: "::1", port: 7000 });
    expect(() => parseHostPort("target", "127.0.0.1")).toThrow("--target");
    expect(() => parseHostPort("target", "h:70000")).toThrow("--target: 'h:70000': port 70000 is out of range (1–65535)");
    expect(() => parseHostPort("seed", "127.0.0.1:0")).toThrow("--seed: '127.0.0.1:0': port 0 is out of range (1–65535)");
    expect(() => parseHostPort("target", "127.0.0.1")).toThrow("is not host:port");
  });

  test("tableLines pads each column to its widest cell, leaves the last one unpadded and trims the end", () => {
    expect(tableLines(["A", "BB", "C"], [["xxx", "y", ""], ["1", "22", "z"]])).toEqual(["A    BB  C", "xxx  y", "1    22  z"]);
    expect(tableLines(["A", "B"], [["x", "y"]], (cell, row, col) => (row >= 0 && col === 0 ? `<${cell}>` : cell))).toEqual(["A  B", "<x>  y"]);
  });

  test("formatBytes", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(64 * 1024 * 1024)).toBe("64.0 MiB");
  });
});

test("an unknown global flag without a command exits 2", async () => {
  const r = await runKvr(["--bogus"]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("--bogus");
});

test("option values reach commands exactly as typed (no numeric coercion)", async () => {
  // A 40-digit node id would become a float, "0123" would lose its zero, if values were coerced.
  const id = "1".repeat(40);
  const r = await runKvr(["setnodes", "--dry-run", "--nodes", `${id} 127.0.0.1 7000 master - 0-16383`, "--version", "1"]);
  expect(r.stdout + r.stderr).toContain(id);
});
