/** Where an installed package lives on disk: Pipit's own root (for the files the build puts in `dist/`) and its dependencies'. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The nearest directory at or above `start` that holds a package.json, or null. */
export function packageDirOf(start: string): string | null {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** Pipit's package root (from src/ and from a tsc build alike); the working directory if none is found. */
export const PACKAGE_ROOT = packageDirOf(path.dirname(fileURLToPath(import.meta.url))) ?? process.cwd();
