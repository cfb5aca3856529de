/** Fault spec grammar: kinds, parameters with units, triggers, commas inside msg=, clear errors. */
import { expect, test } from "bun:test";
import { parseFault, triggerText } from "../../lib/master/faults/spec.ts";
import { parseRate } from "../../lib/master/command.ts";

test("parses kinds, parameters with units and every trigger", () => {
  const f = parseFault("stall:after-bytes=10MiB,after-files=2,on=_FETCH_FILE,after-ms=1.5s,conns=3,once");
  expect(f.kind.kind).toBe("stall");
  expect(f.triggers).toEqual({ afterBytes: 10 * 1024 * 1024, afterFiles: 2, on: "_fetch_file", afterMs: 1500, conns: 3, once: true });
  expect(triggerText(f.triggers)).toBe("on=_fetch_file,after-bytes=10485760,after-files=2,after-ms=1500");
  expect(parseFault("delay:ms=250ms").params.ms).toBe(250);
  expect(parseFault("bandwidth:rate=1MiB").params.rate).toBe(1024 * 1024);
  expect(parseFault("trickle:bytes=1KiB,every=2s").params).toEqual({ bytes: 1024, every: 2000 });
  expect(parseFault("trickle").params).toEqual({ bytes: 1, every: 1000 });
  expect(parseFault("blackhole-accept").kind.scope).toBe("server");
  expect(triggerText(parseFault("reset").triggers)).toBe("immediate");
});

test("msg= keeps its commas unless a known key follows", () => {
  const f = parseFault("error:cmd=psync,msg=ERR a, b, c,once");
  expect(f.params).toEqual({ cmd: "psync", msg: "ERR a, b, c" });
  expect(f.triggers.once).toBe(true);
  expect(parseFault("error").params.msg).toBe("ERR injected fault");
});

test("bad specs say what is accepted", () => {
  expect(() => parseFault("explode")).toThrow(/unknown fault kind 'explode' \(kinds: stall, close, reset, delay, bandwidth, trickle, error, refuse, blackhole-accept\)/);
  expect(() => parseFault("delay:seconds=1")).toThrow(/delay accepts: ms=, after-bytes=/);
  expect(() => parseFault("delay:ms=soon")).toThrow(/ms=soon/);
  expect(() => parseFault("stall:conns=0")).toThrow(/conns= must be at least 1/);
  expect(() => parseFault("stall:after-bytes=")).toThrow(/needs a value/);
  expect(() => parseFault("trickle:every=0")).toThrow(/every= must be above 0/);
});

test("--rate: bare numbers are MiB/s as Kvrocks' max-replication-mb, units are bytes/s", () => {
  expect(parseRate("25")).toBe(25 * 1024 * 1024);
  expect(parseRate("0.5")).toBe(512 * 1024);
  expect(parseRate("500KiB")).toBe(500 * 1024);
  expect(parseRate("0")).toBe(0);
  expect(() => parseRate("fast")).toThrow(/--rate/);
});
