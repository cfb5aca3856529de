/**
 * Reading another kvr's `--json` output: NDJSON lines from a byte stream (a child's stdout).
 */

/**
 * Call `onLine` for every complete line of `stream`, with the parsed object (null when the line
 * is not a JSON object) and the raw text; `onChunk` after each chunk's lines. Resolves at EOF.
 */
export async function readNdjson(
  stream: ReadableStream<Uint8Array>,
  onLine: (value: Record<string, unknown> | null, raw: string) => void,
  onChunk?: () => void,
): Promise<void> {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of stream) {
    buf += dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const raw = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let value: unknown = null;
      try {
        value = JSON.parse(raw);
      } catch {
        // not JSON: handed over raw
      }
      onLine(value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null, raw);
    }
    onChunk?.();
  }
}
