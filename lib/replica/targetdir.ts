/**
 * Creating the replica's --dir as Kvrocks creates its own directories: only the last path
 * component, mode 0700, and only when its parent is an existing directory. Whatever exists at the
 * path is left for checkTargetDir (files.ts) to judge.
 */
import { chmod, lstat, mkdir, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";

/** Create `dir` (mode 0700) when nothing exists there and its parent is a directory; true when created. Throws a one-line reason otherwise. */
export async function createTargetDir(dir: string): Promise<boolean> {
  try {
    await lstat(dir);
    return false;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "ENOTDIR") return false;
  }
  const parent = dirname(resolve(dir));
  let st;
  try {
    st = await stat(parent);
  } catch {
    throw new Error(`--dir ${dir} does not exist, nor does its parent ${parent}: kvr creates only the last component of --dir; create the parent first`);
  }
  if (!st.isDirectory()) throw new Error(`--dir ${dir} does not exist and cannot be created: its parent ${parent} is not a directory`);
  try {
    await mkdir(dir, { mode: 0o700 });
    // The mode is exact whatever the umask.
    await chmod(dir, 0o700);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`--dir ${dir} does not exist and cannot be created in ${parent}${code ? ` (${code})` : ""}: is it writable by this user?`);
  }
  return true;
}
