/**
 * Checkpoint file names as they cross the wire (`_fetch_meta`, `_fetch_file`): a name is used
 * as a path inside a directory on both ends, so anything that could leave that directory is
 * refused before the disk is touched.
 */

/** Why `name` is not a safe checkpoint file name, or null when it is. */
export function unsafeFileName(name: string): string | null {
  if (name.length === 0) return "an empty file name";
  if (name === "." || name === "..") return `the file name '${name}'`;
  if (name.includes("/")) return `a file name with '/' (${JSON.stringify(name)})`;
  if (name.includes("\\")) return `a file name with '\\' (${JSON.stringify(name)})`;
  if (name.includes("\0")) return `a file name with a NUL byte (${JSON.stringify(name)})`;
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > 255) return `a file name of ${bytes} bytes (the limit is 255)`;
  return null;
}
